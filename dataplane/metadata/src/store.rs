//! The [`MetadataStore`] trait every backend implements.

use crate::error::MetaResult;
use crate::record::{ChunkEntry, DirEntry, InodeRecord, ShareRecord, Xattrs};
use crate::txn::Txn;
use async_trait::async_trait;
use dittofs_types::{BlockRef, ContentHash, Ino, ShareId};

/// How durable a commit must be before `commit` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Visible to readers at once; reaches stable storage with the next durable commit or
    /// [`MetadataStore::sync`]. May be lost in a crash, never torn.
    Buffered,
    /// On stable storage (fsync'd) before `commit` returns.
    Durable,
}

/// Static facts about a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreInfo {
    /// Backend kind: `memory`, `sled`, ...
    pub kind: &'static str,
    /// Whether committed state survives a restart of the process.
    pub persistent: bool,
}

/// A metadata store holding any number of shares.
///
/// Contract (checked by [`crate::conformance`]):
/// - reads see every commit that returned before the read started;
/// - `commit` validates all checks and applies all ops atomically, or applies nothing;
/// - a failed commit leaves the store unchanged and reports why;
/// - scans return keys in ascending order and resume strictly after the given key.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    fn info(&self) -> StoreInfo;

    // ---- shares ----
    /// Creates the share with an empty root directory (mode `root_mode`, owner 0:0), or
    /// returns the existing record if a share with this id exists.
    async fn create_share(
        &self,
        id: ShareId,
        name: &str,
        root_mode: u32,
    ) -> MetaResult<ShareRecord>;
    async fn get_share(&self, id: ShareId) -> MetaResult<Option<ShareRecord>>;
    async fn list_shares(&self) -> MetaResult<Vec<ShareRecord>>;
    /// Deletes the share and everything in it.
    async fn delete_share(&self, id: ShareId) -> MetaResult<()>;

    // ---- reads ----
    async fn get_inode(&self, share: ShareId, ino: Ino) -> MetaResult<Option<InodeRecord>>;
    async fn lookup(&self, share: ShareId, dir: Ino, name: &[u8]) -> MetaResult<Option<DirEntry>>;
    /// Entries of `dir` with cookie > `after_cookie`, ascending by cookie, at most `limit`.
    async fn read_dir(
        &self,
        share: ShareId,
        dir: Ino,
        after_cookie: u64,
        limit: usize,
    ) -> MetaResult<Vec<DirEntry>>;
    /// Whether `dir` has no entries.
    async fn dir_is_empty(&self, share: ShareId, dir: Ino) -> MetaResult<bool>;
    async fn get_blocks(&self, share: ShareId, ino: Ino) -> MetaResult<Vec<BlockRef>>;
    /// The extended attributes of `ino` (empty when it has none or does not exist).
    async fn get_xattrs(&self, share: ShareId, ino: Ino) -> MetaResult<Xattrs>;

    // ---- writes ----
    async fn commit(&self, txn: Txn, durability: Durability) -> MetaResult<()>;
    /// Makes every commit that returned before this call durable.
    async fn sync(&self) -> MetaResult<()>;

    // ---- scans (audit, GC mark, recovery); ascending, resuming strictly after `after` ----
    async fn scan_inodes(
        &self,
        share: ShareId,
        after: Option<Ino>,
        limit: usize,
    ) -> MetaResult<Vec<InodeRecord>>;
    async fn scan_blocks(
        &self,
        share: ShareId,
        after: Option<Ino>,
        limit: usize,
    ) -> MetaResult<Vec<(Ino, Vec<BlockRef>)>>;
    async fn scan_chunks(
        &self,
        share: ShareId,
        after: Option<ContentHash>,
        limit: usize,
    ) -> MetaResult<Vec<ChunkEntry>>;
    async fn get_chunk(
        &self,
        share: ShareId,
        hash: ContentHash,
    ) -> MetaResult<Option<crate::record::ChunkRow>>;
    async fn list_orphans(&self, share: ShareId) -> MetaResult<Vec<Ino>>;

    // ---- auxiliary key/value space (per share, changed by `Op::PutAux`/`Op::DeleteAux`) ----
    /// The value of auxiliary `key` of `share`, if set.
    async fn get_aux(&self, share: ShareId, key: &[u8]) -> MetaResult<Option<Vec<u8>>>;
    /// Auxiliary entries of `share` whose key starts with `prefix` and sorts strictly after
    /// `after` (byte order), ascending by key, at most `limit`.
    async fn scan_aux(
        &self,
        share: ShareId,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> MetaResult<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Flushes and releases resources; later calls may fail with `Closed`.
    async fn close(&self) -> MetaResult<()>;
}
