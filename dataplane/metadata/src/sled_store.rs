//! `sled` backend: an embedded, persistent store over sled 0.34.
//!
//! # Key layout
//!
//! All integers are big-endian so that sled's byte order is numeric order; every key of
//! a share starts with the share id, so a share is one contiguous range of each tree.
//!
//! | tree      | key                                        | value                        |
//! |-----------|--------------------------------------------|------------------------------|
//! | `meta`    | `b"format"`                                | format version, u32 BE       |
//! | `shares`  | share u32                                  | [`ShareRecord`]              |
//! | `inodes`  | share u32 · ino u64                        | [`InodeRecord`]              |
//! | `dirents` | share u32 · dir u64 · name bytes           | [`DirEntry`]                 |
//! | `cookies` | share u32 · dir u64 · cookie u64           | name bytes (raw)             |
//! | `blocks`  | share u32 · ino u64                        | `Vec<BlockRef>` (non-empty)  |
//! | `xattrs`  | share u32 · ino u64                        | [`Xattrs`] (non-empty)       |
//! | `chunks`  | share u32 · hash [u8; 32]                  | [`ChunkRow`] (refcount > 0)  |
//! | `orphans` | share u32 · ino u64                        | empty                        |
//! | `aux`     | share u32 · key bytes                      | value bytes (raw)            |
//!
//! Values other than `meta`, `cookies` and `aux` are `postcard` ([`crate::record::encode`]).
//! `aux` is the opaque per-share key/value space of [`Op::PutAux`]; the VFS recycle bin
//! keeps `b"trash/" · ino u64` -> postcard record there. The tree was added without a
//! format bump: an older store simply has it empty. So was `xattrs` (the extended
//! attributes of an inode as one record, removed with the inode).
//!
//! # Atomicity and durability
//!
//! [`MetadataStore::commit`] is one sled transaction over the nine data trees: it reads the
//! share record, evaluates every [`Check`], and applies every [`Op`] (read-modify-write of
//! chunk rows included) inside the transaction closure, so an abort (failed check, refcount
//! underflow, attributes for an unknown inode) discards every write of the transaction. sled seals the writes
//! of one transaction as one recovery batch.
//!
//! sled fsyncs only on `flush()`. Commits are numbered after they are applied; a
//! `Durable` commit waits until the "flushed up to" watermark covers its number. Waiters
//! queue on one async mutex (FIFO); the holder re-checks the watermark, samples the commit
//! counter, runs one `flush` on the blocking pool and publishes the sampled number, so
//! every durable committer that arrived during a flush is covered by the next single
//! flush (group commit). sled's own background flush (every 500 ms) stays on; it only
//! makes buffered commits durable sooner.
//!
//! Deleting a share removes its record first (commits then fail with `NoSuchShare`) and
//! then sweeps its key ranges. A crash during the sweep leaves unreachable keys; they are
//! swept again before a share with the same id is created.

use crate::error::{MetaError, MetaResult};
use crate::memory::{new_root_inode, new_share_record};
use crate::record::{
    ChunkEntry, ChunkRow, DirEntry, InodeRecord, ShareRecord, Xattrs, decode, encode,
};
use crate::store::{Durability, MetadataStore, StoreInfo};
use crate::txn::{Check, Op, Txn};
use async_trait::async_trait;
use dittofs_types::{BlockRef, ContentHash, Ino, ShareId, Timestamp};
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// On-disk format version written to the `meta` tree; [`SledStore::open`] refuses others.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_KEY: &[u8] = b"format";
/// How long [`SledStore::open`] waits for the database lock.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The embedded persistent backend.
pub struct SledStore {
    db: sled::Db,
    t: Trees,
    /// Number of write operations applied so far (commit numbers are 1-based).
    applied: AtomicU64,
    /// Every write numbered at or below this value is on stable storage.
    flushed: AtomicU64,
    /// Serializes flushes; waiters queue here in FIFO order.
    flush_lock: tokio::sync::Mutex<()>,
    /// Serializes share creation and deletion (they sweep key ranges outside a transaction).
    admin: parking_lot::Mutex<()>,
    closed: AtomicBool,
}

struct Trees {
    shares: sled::Tree,
    inodes: sled::Tree,
    dirents: sled::Tree,
    cookies: sled::Tree,
    blocks: sled::Tree,
    chunks: sled::Tree,
    orphans: sled::Tree,
    aux: sled::Tree,
    xattrs: sled::Tree,
}

impl Trees {
    /// The trees holding per-share ranges (everything but `shares`).
    fn ranged(&self) -> [&sled::Tree; 8] {
        [
            &self.inodes,
            &self.dirents,
            &self.cookies,
            &self.blocks,
            &self.xattrs,
            &self.chunks,
            &self.orphans,
            &self.aux,
        ]
    }
}

// ---- keys ----

fn k_share(s: ShareId) -> [u8; 4] {
    s.0.to_be_bytes()
}

fn k_ino(s: ShareId, ino: Ino) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&s.0.to_be_bytes());
    k[4..].copy_from_slice(&ino.0.to_be_bytes());
    k
}

fn k_dirent(s: ShareId, dir: Ino, name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(12 + name.len());
    k.extend_from_slice(&k_ino(s, dir));
    k.extend_from_slice(name);
    k
}

fn k_cookie(s: ShareId, dir: Ino, cookie: u64) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..12].copy_from_slice(&k_ino(s, dir));
    k[12..].copy_from_slice(&cookie.to_be_bytes());
    k
}

fn k_aux(s: ShareId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + key.len());
    k.extend_from_slice(&s.0.to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn k_chunk(s: ShareId, h: &ContentHash) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..4].copy_from_slice(&s.0.to_be_bytes());
    k[4..].copy_from_slice(&h.0);
    k
}

fn ino_of_key(k: &[u8]) -> MetaResult<Ino> {
    k.get(4..12)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(|b| Ino(u64::from_be_bytes(b)))
        .ok_or_else(|| MetaError::Corrupt {
            what: "inode key",
            detail: format!("{} bytes", k.len()),
        })
}

fn hash_of_key(k: &[u8]) -> MetaResult<ContentHash> {
    k.get(4..36)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(ContentHash)
        .ok_or_else(|| MetaError::Corrupt {
            what: "chunk key",
            detail: format!("{} bytes", k.len()),
        })
}

fn be(e: sled::Error) -> MetaError {
    match &e {
        sled::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            MetaError::NoSpace(e.to_string())
        }
        _ => MetaError::backend(e),
    }
}

/// Start bound of a scan resuming strictly after `after` within `prefix`-keyed rows.
fn after_bound<const N: usize>(first: [u8; N], after: Option<[u8; N]>) -> Bound<Vec<u8>> {
    match after {
        Some(a) => Bound::Excluded(a.to_vec()),
        None => Bound::Included(first.to_vec()),
    }
}

// ---- the transaction body ----

type TxResult<T> = ConflictableTransactionResult<T, MetaError>;

fn abort<T>(e: MetaError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn tx_decode<T: serde::de::DeserializeOwned>(what: &'static str, b: &[u8]) -> TxResult<T> {
    decode(what, b).map_err(ConflictableTransactionError::Abort)
}

fn tx_encode<T: serde::Serialize>(v: &T) -> TxResult<Vec<u8>> {
    encode(v).map_err(ConflictableTransactionError::Abort)
}

struct TxView<'a> {
    share: ShareId,
    shares: &'a TransactionalTree,
    inodes: &'a TransactionalTree,
    dirents: &'a TransactionalTree,
    cookies: &'a TransactionalTree,
    blocks: &'a TransactionalTree,
    chunks: &'a TransactionalTree,
    orphans: &'a TransactionalTree,
    aux: &'a TransactionalTree,
    xattrs: &'a TransactionalTree,
}

impl TxView<'_> {
    fn run(&self, txn: &Txn) -> TxResult<()> {
        if self.shares.get(k_share(self.share))?.is_none() {
            return abort(MetaError::NoSuchShare(self.share));
        }
        for c in &txn.checks {
            self.check(c)?;
        }
        for o in &txn.ops {
            self.apply(o)?;
        }
        Ok(())
    }

    fn check(&self, c: &Check) -> TxResult<()> {
        let s = self.share;
        match c {
            Check::InodeChange { ino, change } => match self.inodes.get(k_ino(s, *ino))? {
                Some(b) => {
                    let r: InodeRecord = tx_decode("inode", &b)?;
                    if r.change == *change {
                        Ok(())
                    } else {
                        abort(MetaError::Conflict(format!(
                            "{ino} changed ({} != {change})",
                            r.change
                        )))
                    }
                }
                None => abort(MetaError::Conflict(format!("{ino} is gone"))),
            },
            Check::Dirent { dir, name, ino } => {
                let cur = match self.dirents.get(k_dirent(s, *dir, name))? {
                    Some(b) => Some(tx_decode::<DirEntry>("dirent", &b)?.ino),
                    None => None,
                };
                if cur == *ino {
                    Ok(())
                } else {
                    abort(MetaError::Conflict(format!(
                        "entry {:?} in {dir} is {cur:?}, expected {ino:?}",
                        String::from_utf8_lossy(name)
                    )))
                }
            }
        }
    }

    fn apply(&self, op: &Op) -> TxResult<()> {
        let s = self.share;
        match op {
            Op::PutInode(r) => {
                self.inodes.insert(&k_ino(s, r.ino), tx_encode(r)?)?;
            }
            Op::DeleteInode(ino) => {
                let k = k_ino(s, *ino);
                self.inodes.remove(&k)?;
                self.blocks.remove(&k)?;
                self.xattrs.remove(&k)?;
                self.orphans.remove(&k)?;
            }
            Op::PutDirent { dir, entry } => {
                let k = k_dirent(s, *dir, &entry.name);
                if let Some(old) = self.dirents.get(&k)? {
                    let old: DirEntry = tx_decode("dirent", &old)?;
                    self.cookies.remove(&k_cookie(s, *dir, old.cookie))?;
                }
                self.cookies
                    .insert(&k_cookie(s, *dir, entry.cookie), entry.name.as_slice())?;
                self.dirents.insert(k, tx_encode(entry)?)?;
            }
            Op::DeleteDirent { dir, name } => {
                if let Some(old) = self.dirents.remove(k_dirent(s, *dir, name))? {
                    let old: DirEntry = tx_decode("dirent", &old)?;
                    self.cookies.remove(&k_cookie(s, *dir, old.cookie))?;
                }
            }
            Op::SetBlocks { ino, blocks } => {
                let k = k_ino(s, *ino);
                if blocks.is_empty() {
                    self.blocks.remove(&k)?;
                } else {
                    self.blocks.insert(&k, tx_encode(blocks)?)?;
                }
            }
            Op::SetXattrs { ino, xattrs } => {
                let k = k_ino(s, *ino);
                if xattrs.is_empty() {
                    self.xattrs.remove(&k)?;
                } else if self.inodes.get(k)?.is_none() {
                    return abort(MetaError::NoSuchInode {
                        share: s,
                        ino: *ino,
                    });
                } else {
                    self.xattrs.insert(&k, tx_encode(xattrs)?)?;
                }
            }
            Op::AdjustChunk { hash, delta, size } => {
                let k = k_chunk(s, hash);
                let cur = match self.chunks.get(k)? {
                    Some(b) => tx_decode::<ChunkRow>("chunk", &b)?.refcount,
                    None => 0,
                };
                let next = i128::from(cur) + i128::from(*delta);
                if next < 0 {
                    return abort(MetaError::RefcountUnderflow {
                        share: s,
                        hash: *hash,
                        value: next,
                    });
                }
                if next == 0 {
                    self.chunks.remove(&k[..])?;
                } else {
                    let row = ChunkRow {
                        refcount: u64::try_from(next).unwrap_or(u64::MAX),
                        size: *size,
                    };
                    self.chunks.insert(&k[..], tx_encode(&row)?)?;
                }
            }
            Op::AddOrphan(ino) => {
                self.orphans.insert(&k_ino(s, *ino), &[][..])?;
            }
            Op::RemoveOrphan(ino) => {
                self.orphans.remove(&k_ino(s, *ino))?;
            }
            Op::ReserveInodes { next_ino } => {
                let k = k_share(s);
                let Some(b) = self.shares.get(k)? else {
                    return abort(MetaError::NoSuchShare(s));
                };
                let mut rec: ShareRecord = tx_decode("share", &b)?;
                if *next_ino > rec.next_ino {
                    rec.next_ino = *next_ino;
                    self.shares.insert(&k, tx_encode(&rec)?)?;
                }
            }
            Op::PutAux { key, value } => {
                self.aux.insert(k_aux(s, key), value.as_slice())?;
            }
            Op::DeleteAux { key } => {
                self.aux.remove(k_aux(s, key))?;
            }
        }
        Ok(())
    }
}

fn tx_err(e: TransactionError<MetaError>) -> MetaError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => be(e),
    }
}

impl SledStore {
    /// Opens (creating if needed) the store in directory `path`.
    ///
    /// sled locks the directory's database file. After a store of this process was
    /// dropped, sled's background I/O threads may hold the file for a moment longer, so a
    /// lock failure is retried for up to [`LOCK_WAIT`] before it is returned.
    pub fn open(path: &Path) -> MetaResult<SledStore> {
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::Config::new().path(path).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(be(e)),
            }
        };
        let meta = db.open_tree("meta").map_err(be)?;
        match meta.get(FORMAT_KEY).map_err(be)? {
            Some(v) => {
                let v = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| MetaError::Corrupt {
                        what: "format version",
                        detail: format!("{} bytes", v.len()),
                    })?;
                if v != FORMAT_VERSION {
                    return Err(MetaError::Corrupt {
                        what: "format version",
                        detail: format!("store has format {v}, this build reads {FORMAT_VERSION}"),
                    });
                }
            }
            None => {
                meta.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())
                    .map_err(be)?;
                db.flush().map_err(be)?;
            }
        }
        let tree = |name: &str| db.open_tree(name).map_err(be);
        let t = Trees {
            shares: tree("shares")?,
            inodes: tree("inodes")?,
            dirents: tree("dirents")?,
            cookies: tree("cookies")?,
            blocks: tree("blocks")?,
            chunks: tree("chunks")?,
            orphans: tree("orphans")?,
            aux: tree("aux")?,
            xattrs: tree("xattrs")?,
        };
        Ok(SledStore {
            db,
            t,
            applied: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            flush_lock: tokio::sync::Mutex::new(()),
            admin: parking_lot::Mutex::new(()),
            closed: AtomicBool::new(false),
        })
    }

    fn ensure_open(&self) -> MetaResult<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(MetaError::Closed)
        } else {
            Ok(())
        }
    }

    /// Numbers a write that has been applied; the number is what [`Self::wait_durable`]
    /// waits for.
    fn note_applied(&self) -> u64 {
        self.applied.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Returns once every write numbered `seq` or lower is on stable storage.
    async fn wait_durable(&self, seq: u64) -> MetaResult<()> {
        if self.flushed.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let _turn = self.flush_lock.lock().await;
        if self.flushed.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        // Everything numbered up to `target` was applied before this flush starts.
        let target = self.applied.load(Ordering::Acquire);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(MetaError::backend)?
            .map_err(be)?;
        self.flushed.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    /// Deletes every key of `share` in the ranged trees (not the share record).
    fn sweep_share(&self, share: ShareId) -> MetaResult<()> {
        let prefix = k_share(share);
        for tree in self.t.ranged() {
            let mut batch = sled::Batch::default();
            let mut n = 0usize;
            for kv in tree.scan_prefix(prefix) {
                let (k, _) = kv.map_err(be)?;
                batch.remove(k);
                n += 1;
                if n.is_multiple_of(10_000) {
                    tree.apply_batch(std::mem::take(&mut batch)).map_err(be)?;
                }
            }
            tree.apply_batch(batch).map_err(be)?;
        }
        Ok(())
    }

    fn read_share(&self, id: ShareId) -> MetaResult<Option<ShareRecord>> {
        match self.t.shares.get(k_share(id)).map_err(be)? {
            Some(b) => Ok(Some(decode("share", &b)?)),
            None => Ok(None),
        }
    }

    /// Checks that the `dirents` and `cookies` trees agree (every entry has exactly its
    /// cookie indexed, every cookie names an entry carrying that cookie). Returns one line
    /// per problem found; empty means consistent. Reads without a snapshot: run it on a
    /// quiescent store.
    pub fn verify_indexes(&self) -> MetaResult<Vec<String>> {
        let mut problems = Vec::new();
        for kv in self.t.dirents.iter() {
            let (k, v) = kv.map_err(be)?;
            let e: DirEntry = decode("dirent", &v)?;
            let (Some(head), Some(name)) = (k.get(..12), k.get(12..)) else {
                problems.push(format!("short dirent key {k:?}"));
                continue;
            };
            if name != e.name.as_slice() {
                problems.push(format!("dirent key name differs from record: {e:?}"));
            }
            let mut ck = head.to_vec();
            ck.extend_from_slice(&e.cookie.to_be_bytes());
            match self.t.cookies.get(&ck).map_err(be)? {
                Some(n) if n.as_ref() == name => {}
                other => problems.push(format!(
                    "dirent {:?} cookie {} indexed as {:?}",
                    String::from_utf8_lossy(name),
                    e.cookie,
                    other.map(|n| String::from_utf8_lossy(&n).into_owned())
                )),
            }
        }
        for kv in self.t.cookies.iter() {
            let (k, name) = kv.map_err(be)?;
            let (Some(head), Some(cookie)) = (k.get(..12), k.get(12..20)) else {
                problems.push(format!("short cookie key {k:?}"));
                continue;
            };
            let mut dk = head.to_vec();
            dk.extend_from_slice(&name);
            match self.t.dirents.get(&dk).map_err(be)? {
                Some(v) => {
                    let e: DirEntry = decode("dirent", &v)?;
                    if e.cookie.to_be_bytes().as_slice() != cookie {
                        problems.push(format!(
                            "cookie index entry {cookie:?} names {:?} whose cookie is {}",
                            String::from_utf8_lossy(&name),
                            e.cookie
                        ));
                    }
                }
                None => problems.push(format!(
                    "cookie index entry {cookie:?} names missing {:?}",
                    String::from_utf8_lossy(&name)
                )),
            }
        }
        Ok(problems)
    }
}

#[async_trait]
impl MetadataStore for SledStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            kind: "sled",
            persistent: true,
        }
    }

    async fn create_share(
        &self,
        id: ShareId,
        name: &str,
        root_mode: u32,
    ) -> MetaResult<ShareRecord> {
        self.ensure_open()?;
        let rec = {
            let _admin = self.admin.lock();
            match self.read_share(id)? {
                Some(r) => r,
                None => {
                    // Leftovers of a deletion interrupted by a crash.
                    self.sweep_share(id)?;
                    let now = Timestamp::now();
                    let rec = new_share_record(id, name, now);
                    let rec_b = encode(&rec)?;
                    let root_b = encode(&new_root_inode(root_mode, now))?;
                    (&self.t.shares, &self.t.inodes)
                        .transaction(|(shares, inodes)| {
                            shares.insert(&k_share(id), rec_b.as_slice())?;
                            inodes.insert(&k_ino(id, Ino::ROOT), root_b.as_slice())?;
                            Ok::<(), ConflictableTransactionError<MetaError>>(())
                        })
                        .map_err(tx_err)?;
                    rec
                }
            }
        };
        // Durable in both cases: an existing record may come from a concurrent creator
        // whose flush has not finished yet.
        let seq = self.note_applied();
        self.wait_durable(seq).await?;
        Ok(rec)
    }

    async fn get_share(&self, id: ShareId) -> MetaResult<Option<ShareRecord>> {
        self.ensure_open()?;
        self.read_share(id)
    }

    async fn list_shares(&self) -> MetaResult<Vec<ShareRecord>> {
        self.ensure_open()?;
        self.t
            .shares
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(be)?;
                decode("share", &v)
            })
            .collect()
    }

    async fn delete_share(&self, id: ShareId) -> MetaResult<()> {
        self.ensure_open()?;
        {
            let _admin = self.admin.lock();
            // Removing the record first makes every later commit to the share fail (the
            // transaction reads it), so the sweep below cannot race with writers.
            self.t.shares.remove(k_share(id)).map_err(be)?;
            self.sweep_share(id)?;
        }
        let seq = self.note_applied();
        self.wait_durable(seq).await
    }

    async fn get_inode(&self, share: ShareId, ino: Ino) -> MetaResult<Option<InodeRecord>> {
        self.ensure_open()?;
        match self.t.inodes.get(k_ino(share, ino)).map_err(be)? {
            Some(b) => Ok(Some(decode("inode", &b)?)),
            None => Ok(None),
        }
    }

    async fn lookup(&self, share: ShareId, dir: Ino, name: &[u8]) -> MetaResult<Option<DirEntry>> {
        self.ensure_open()?;
        match self.t.dirents.get(k_dirent(share, dir, name)).map_err(be)? {
            Some(b) => Ok(Some(decode("dirent", &b)?)),
            None => Ok(None),
        }
    }

    async fn read_dir(
        &self,
        share: ShareId,
        dir: Ino,
        after_cookie: u64,
        limit: usize,
    ) -> MetaResult<Vec<DirEntry>> {
        self.ensure_open()?;
        let mut out = Vec::new();
        if limit == 0 || after_cookie == u64::MAX {
            return Ok(out);
        }
        let range = k_cookie(share, dir, after_cookie + 1)..=k_cookie(share, dir, u64::MAX);
        for kv in self.t.cookies.range(range) {
            let (k, name) = kv.map_err(be)?;
            let cookie = k
                .get(12..20)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| MetaError::Corrupt {
                    what: "cookie key",
                    detail: format!("{} bytes", k.len()),
                })?;
            // The two trees are read without a snapshot: an entry removed or re-inserted
            // (new cookie) since the index row was read is skipped here; a re-inserted one
            // is met again at its new cookie.
            if let Some(b) = self
                .t
                .dirents
                .get(k_dirent(share, dir, &name))
                .map_err(be)?
            {
                let e: DirEntry = decode("dirent", &b)?;
                if e.cookie == cookie {
                    out.push(e);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    async fn dir_is_empty(&self, share: ShareId, dir: Ino) -> MetaResult<bool> {
        self.ensure_open()?;
        match self.t.cookies.scan_prefix(k_ino(share, dir)).next() {
            None => Ok(true),
            Some(kv) => kv.map(|_| false).map_err(be),
        }
    }

    async fn get_blocks(&self, share: ShareId, ino: Ino) -> MetaResult<Vec<BlockRef>> {
        self.ensure_open()?;
        match self.t.blocks.get(k_ino(share, ino)).map_err(be)? {
            Some(b) => decode("blocks", &b),
            None => Ok(Vec::new()),
        }
    }

    async fn get_xattrs(&self, share: ShareId, ino: Ino) -> MetaResult<Xattrs> {
        self.ensure_open()?;
        match self.t.xattrs.get(k_ino(share, ino)).map_err(be)? {
            Some(b) => decode("xattrs", &b),
            None => Ok(Xattrs::new()),
        }
    }

    async fn commit(&self, txn: Txn, durability: Durability) -> MetaResult<()> {
        self.ensure_open()?;
        let t = &self.t;
        (
            &t.shares, &t.inodes, &t.dirents, &t.cookies, &t.blocks, &t.chunks, &t.orphans, &t.aux,
            &t.xattrs,
        )
            .transaction(
                |(shares, inodes, dirents, cookies, blocks, chunks, orphans, aux, xattrs)| {
                    TxView {
                        share: txn.share,
                        shares,
                        inodes,
                        dirents,
                        cookies,
                        blocks,
                        chunks,
                        orphans,
                        aux,
                        xattrs,
                    }
                    .run(&txn)
                },
            )
            .map_err(tx_err)?;
        let seq = self.note_applied();
        if durability == Durability::Durable {
            self.wait_durable(seq).await?;
        }
        Ok(())
    }

    async fn sync(&self) -> MetaResult<()> {
        self.ensure_open()?;
        let seq = self.applied.load(Ordering::Acquire);
        self.wait_durable(seq).await
    }

    async fn scan_inodes(
        &self,
        share: ShareId,
        after: Option<Ino>,
        limit: usize,
    ) -> MetaResult<Vec<InodeRecord>> {
        self.ensure_open()?;
        let start = after_bound(k_ino(share, Ino(0)), after.map(|a| k_ino(share, a)));
        let end = Bound::Included(k_ino(share, Ino(u64::MAX)).to_vec());
        self.t
            .inodes
            .range::<Vec<u8>, _>((start, end))
            .take(limit)
            .map(|kv| {
                let (_, v) = kv.map_err(be)?;
                decode("inode", &v)
            })
            .collect()
    }

    async fn scan_blocks(
        &self,
        share: ShareId,
        after: Option<Ino>,
        limit: usize,
    ) -> MetaResult<Vec<(Ino, Vec<BlockRef>)>> {
        self.ensure_open()?;
        let start = after_bound(k_ino(share, Ino(0)), after.map(|a| k_ino(share, a)));
        let end = Bound::Included(k_ino(share, Ino(u64::MAX)).to_vec());
        self.t
            .blocks
            .range::<Vec<u8>, _>((start, end))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(be)?;
                Ok((ino_of_key(&k)?, decode("blocks", &v)?))
            })
            .collect()
    }

    async fn scan_chunks(
        &self,
        share: ShareId,
        after: Option<ContentHash>,
        limit: usize,
    ) -> MetaResult<Vec<ChunkEntry>> {
        self.ensure_open()?;
        let start = after_bound(
            k_chunk(share, &ContentHash([0u8; 32])),
            after.map(|a| k_chunk(share, &a)),
        );
        let end = Bound::Included(k_chunk(share, &ContentHash([0xffu8; 32])).to_vec());
        self.t
            .chunks
            .range::<Vec<u8>, _>((start, end))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(be)?;
                Ok((hash_of_key(&k)?, decode("chunk", &v)?))
            })
            .collect()
    }

    async fn get_chunk(&self, share: ShareId, hash: ContentHash) -> MetaResult<Option<ChunkRow>> {
        self.ensure_open()?;
        match self.t.chunks.get(k_chunk(share, &hash)).map_err(be)? {
            Some(b) => Ok(Some(decode("chunk", &b)?)),
            None => Ok(None),
        }
    }

    async fn list_orphans(&self, share: ShareId) -> MetaResult<Vec<Ino>> {
        self.ensure_open()?;
        self.t
            .orphans
            .scan_prefix(k_share(share))
            .map(|kv| {
                let (k, _) = kv.map_err(be)?;
                ino_of_key(&k)
            })
            .collect()
    }

    async fn get_aux(&self, share: ShareId, key: &[u8]) -> MetaResult<Option<Vec<u8>>> {
        self.ensure_open()?;
        Ok(self
            .t
            .aux
            .get(k_aux(share, key))
            .map_err(be)?
            .map(|v| v.to_vec()))
    }

    async fn scan_aux(
        &self,
        share: ShareId,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> MetaResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.ensure_open()?;
        let full_prefix = k_aux(share, prefix);
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(k_aux(share, a)),
            _ => Bound::Included(full_prefix.clone()),
        };
        let mut out = Vec::new();
        for kv in self.t.aux.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv.map_err(be)?;
            if !k.starts_with(&full_prefix) {
                break;
            }
            out.push((k[4..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    async fn close(&self) -> MetaResult<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let seq = self.applied.load(Ordering::Acquire);
        self.wait_durable(seq).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically() {
        let s = ShareId(7);
        assert!(k_ino(s, Ino(255)) < k_ino(s, Ino(256)));
        assert!(k_ino(ShareId(1), Ino(u64::MAX)) < k_ino(ShareId(2), Ino(0)));
        assert!(k_cookie(s, Ino(1), 9) < k_cookie(s, Ino(1), 10));
        assert!(k_cookie(s, Ino(1), u64::MAX) < k_cookie(s, Ino(2), 0));
        assert_eq!(ino_of_key(&k_ino(s, Ino(42))).unwrap(), Ino(42));
        let h = ContentHash([9u8; 32]);
        assert_eq!(hash_of_key(&k_chunk(s, &h)).unwrap(), h);
    }

    #[tokio::test]
    async fn refuses_other_format_version() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            let meta = s.db.open_tree("meta").unwrap();
            meta.insert(FORMAT_KEY, &99u32.to_be_bytes()).unwrap();
            s.db.flush().unwrap();
        }
        match SledStore::open(dir.path()) {
            Err(MetaError::Corrupt { what, .. }) => assert_eq!(what, "format version"),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a store of another format"),
        }
    }

    #[tokio::test]
    async fn closed_store_refuses_calls() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        s.create_share(ShareId(1), "a", 0o755).await.unwrap();
        s.close().await.unwrap();
        assert!(matches!(
            s.get_share(ShareId(1)).await,
            Err(MetaError::Closed)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn group_commit_shares_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
        s.create_share(ShareId(1), "a", 0o755).await.unwrap();
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..20u64 {
                    let mut txn = Txn::new(ShareId(1));
                    txn.op(Op::ReserveInodes {
                        next_ino: 100 + t * 1000 + i,
                    });
                    s.commit(txn, Durability::Durable).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            s.flushed.load(Ordering::Acquire),
            s.applied.load(Ordering::Acquire)
        );
    }
}
