//! The store-level conformance suite: every backend runs these functions unchanged.
//!
//! Each check is a `pub async fn` taking the store (`&dyn MetadataStore`; the concurrency
//! check takes an `Arc` to spawn tasks; the persistence check takes the whole
//! [`Fixture`] to close and reopen it). [`conformance_tests!`](crate::conformance_tests)
//! expands to one `#[tokio::test]` per function, so every backend's test binary has the
//! same test names:
//!
//! ```ignore
//! mod memory {
//!     dittofs_metadata::conformance_tests!(dittofs_metadata::conformance::Fixture::memory());
//! }
//! mod sled {
//!     dittofs_metadata::conformance_tests!(dittofs_metadata::conformance::Fixture::sled());
//! }
//! ```
//!
//! The factory expression must evaluate to a future of [`Fixture`]; it is evaluated once
//! per test. The crate using the macro needs `tokio` (with `macros` and `rt-multi-thread`).

// Test support: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::{MetaError, MetaResult};
use crate::memory::MemoryStore;
use crate::record::{DirEntry, InodeRecord, ShareRecord, Xattrs};
use crate::sled_store::SledStore;
use crate::store::{Durability, MetadataStore};
use crate::txn::{Check, Op, Txn};
use dittofs_types::{BlockRef, ContentHash, FileType, Ino, ObjectId, ShareId, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

/// Future returned by a fixture's open function.
pub type OpenFuture = Pin<Box<dyn Future<Output = MetaResult<Arc<dyn MetadataStore>>> + Send>>;
/// Opens a persistent store in the given directory.
pub type OpenFn = Box<dyn Fn(PathBuf) -> OpenFuture + Send + Sync>;

/// A store under test, plus what is needed to reopen it (persistent backends).
pub struct Fixture {
    store: Arc<dyn MetadataStore>,
    persistent: Option<(tempfile::TempDir, OpenFn)>,
}

impl Fixture {
    /// A volatile store (the persistence check is skipped).
    pub fn volatile(store: Arc<dyn MetadataStore>) -> Fixture {
        Fixture {
            store,
            persistent: None,
        }
    }

    /// A persistent store living in `dir`, reopened with `open`.
    pub async fn persistent(dir: tempfile::TempDir, open: OpenFn) -> MetaResult<Fixture> {
        let store = open(dir.path().to_path_buf()).await?;
        Ok(Fixture {
            store,
            persistent: Some((dir, open)),
        })
    }

    pub async fn memory() -> Fixture {
        Fixture::volatile(Arc::new(MemoryStore::new()))
    }

    pub async fn sled() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let open: OpenFn = Box::new(|p: PathBuf| {
            Box::pin(async move {
                let s: Arc<dyn MetadataStore> = Arc::new(SledStore::open(&p)?);
                Ok(s)
            })
        });
        Fixture::persistent(dir, open).await.expect("open sled")
    }

    pub fn store(&self) -> &dyn MetadataStore {
        self.store.as_ref()
    }

    pub fn shared(&self) -> Arc<dyn MetadataStore> {
        self.store.clone()
    }

    /// The directory of a persistent store.
    pub fn path(&self) -> Option<&Path> {
        self.persistent.as_ref().map(|(d, _)| d.path())
    }

    /// Closes the store, drops it and opens it again from its directory. `None` for a
    /// volatile store.
    pub async fn reopen(self) -> MetaResult<Option<Fixture>> {
        let Fixture { store, persistent } = self;
        let Some((dir, open)) = persistent else {
            return Ok(None);
        };
        store.close().await?;
        drop(store);
        let store = open(dir.path().to_path_buf()).await?;
        Ok(Some(Fixture {
            store,
            persistent: Some((dir, open)),
        }))
    }
}

/// Expands to one `#[tokio::test]` per conformance check, each building a fresh store
/// with the given factory expression (a future of [`Fixture`]).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@plain $factory;
            share_create_get_list_delete,
            share_create_is_idempotent,
            share_root_inode_shape,
            share_delete_removes_everything,
            shares_are_isolated,
            commit_to_unknown_share_errors,
            inode_put_get_replace,
            inode_delete_removes_blocks_and_orphan_mark,
            dirent_put_lookup_delete,
            dirent_put_replace_removes_old_cookie,
            dirent_delete_absent_is_noop,
            readdir_in_cookie_order,
            readdir_resumes_strictly_after_cookie,
            readdir_resumes_after_deleted_cookie,
            readdir_limits_and_bounds,
            dir_is_empty_tracks_entries,
            large_directory,
            check_inode_change_success_and_conflict,
            check_dirent_success_and_conflict,
            failed_check_applies_nothing,
            adjust_chunk_create_increment_remove,
            adjust_chunk_underflow_aborts_whole_txn,
            adjust_chunk_underflow_after_in_txn_increment,
            set_blocks_replace_and_empty_deletes,
            ops_apply_in_order,
            scan_inodes_ascending_resume_limit,
            scan_blocks_ascending_resume_limit,
            scan_chunks_ascending_resume_limit,
            orphans_add_list_remove,
            reserve_inodes_is_monotonic,
            adjust_refs_nets_per_hash,
            buffered_commit_is_visible_and_sync_succeeds,
            aux_put_get_replace_delete,
            aux_is_atomic_with_the_transaction,
            aux_scan_prefix_order_resume,
            aux_shares_are_isolated,
            aux_cleared_by_delete_share,
            xattrs_set_get_replace_empty_deletes,
            xattrs_go_with_the_inode,
            xattrs_need_an_existing_inode,
            xattrs_are_atomic_with_the_transaction,
            xattrs_shares_are_isolated_and_cleared_by_delete_share,
        );
        $crate::conformance_tests!(@shared $factory;
            readdir_stable_under_concurrent_changes,
            concurrent_durable_commits_all_land,
        );
        $crate::conformance_tests!(@fixture $factory;
            persistence_reopen,
        );
    };
    (@plain $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let fx: $crate::conformance::Fixture = $factory.await;
                $crate::conformance::$name(fx.store()).await;
            }
        )*
    };
    (@shared $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let fx: $crate::conformance::Fixture = $factory.await;
                $crate::conformance::$name(fx.shared()).await;
            }
        )*
    };
    (@fixture $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let fx: $crate::conformance::Fixture = $factory.await;
                $crate::conformance::$name(fx).await;
            }
        )*
    };
}

// ---- helpers ----

const S: ShareId = ShareId(1);

fn t(secs: i64) -> Timestamp {
    Timestamp { secs, nanos: 0 }
}

/// A regular file record.
pub fn file_rec(ino: u64) -> InodeRecord {
    InodeRecord {
        ino: Ino(ino),
        generation: 1,
        kind: FileType::Regular,
        mode: 0o644,
        nlink: 1,
        uid: 1000,
        gid: 1000,
        size: 0,
        atime: t(10),
        mtime: t(10),
        ctime: t(10),
        btime: t(10),
        rdev: Default::default(),
        change: 1,
        parent: Ino(0),
        next_cookie: 0,
        symlink_target: None,
        object_id: ObjectId::NOT_QUIESCED,
        create_verifier: None,
        applied_seq: 0,
    }
}

/// A directory record.
pub fn dir_rec(ino: u64, parent: u64) -> InodeRecord {
    InodeRecord {
        kind: FileType::Directory,
        mode: 0o755,
        nlink: 2,
        parent: Ino(parent),
        next_cookie: 3,
        ..file_rec(ino)
    }
}

pub fn entry(name: &str, ino: u64, cookie: u64) -> DirEntry {
    DirEntry {
        name: name.as_bytes().to_vec(),
        ino: Ino(ino),
        kind: FileType::Regular,
        cookie,
    }
}

pub fn hash(n: u32) -> ContentHash {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&n.to_be_bytes());
    h[31] = 0x5a;
    ContentHash(h)
}

fn bref(n: u32, offset: u64) -> BlockRef {
    BlockRef {
        hash: hash(n),
        offset,
        size: 4096,
    }
}

/// The root record with `next_cookie` raised to `next` (to keep the directory's cookie
/// invariant when a check inserts entries into the root directly).
async fn root_upto(s: &dyn MetadataStore, share: ShareId, next: u64) -> Op {
    let mut r = s.get_inode(share, Ino::ROOT).await.unwrap().expect("root");
    r.next_cookie = r.next_cookie.max(next);
    r.change += 1;
    Op::PutInode(r)
}

async fn new_share(s: &dyn MetadataStore, id: ShareId) -> ShareRecord {
    s.create_share(id, &format!("share-{}", id.0), 0o755)
        .await
        .unwrap()
}

async fn commit(s: &dyn MetadataStore, share: ShareId, ops: Vec<Op>) {
    s.commit(
        Txn {
            share,
            checks: vec![],
            ops,
        },
        Durability::Durable,
    )
    .await
    .unwrap();
}

async fn try_commit(
    s: &dyn MetadataStore,
    share: ShareId,
    checks: Vec<Check>,
    ops: Vec<Op>,
) -> MetaResult<()> {
    s.commit(Txn { share, checks, ops }, Durability::Durable)
        .await
}

/// Pages through the whole directory with page size `limit`.
pub async fn read_all(
    s: &dyn MetadataStore,
    share: ShareId,
    dir: Ino,
    limit: usize,
) -> Vec<DirEntry> {
    let mut out: Vec<DirEntry> = Vec::new();
    let mut after = 0;
    loop {
        let page = s.read_dir(share, dir, after, limit).await.unwrap();
        assert!(page.len() <= limit, "read_dir returned more than the limit");
        let Some(last) = page.last() else { break };
        after = last.cookie;
        out.extend(page);
    }
    out
}

fn names(v: &[DirEntry]) -> Vec<String> {
    v.iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect()
}

fn cookies(v: &[DirEntry]) -> Vec<u64> {
    v.iter().map(|e| e.cookie).collect()
}

/// A snapshot of everything a share holds, read through the trait.
#[derive(Debug, PartialEq, Eq)]
pub struct ShareDump {
    pub next_ino: u64,
    pub inodes: Vec<InodeRecord>,
    /// Directory inode -> entries in cookie order.
    pub dirs: BTreeMap<Ino, Vec<DirEntry>>,
    pub blocks: Vec<(Ino, Vec<BlockRef>)>,
    pub chunks: Vec<(ContentHash, crate::record::ChunkRow)>,
    pub orphans: Vec<Ino>,
    /// Auxiliary key/value entries, ascending by key.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// The extended attributes of every inode that has some, ascending by inode.
    pub xattrs: Vec<(Ino, Xattrs)>,
}

/// Reads a whole share (for comparisons across a reopen or against a model).
pub async fn dump_share(s: &dyn MetadataStore, share: ShareId) -> MetaResult<ShareDump> {
    let rec = s
        .get_share(share)
        .await?
        .ok_or(MetaError::NoSuchShare(share))?;
    let mut inodes = Vec::new();
    let mut after = None;
    loop {
        let page = s.scan_inodes(share, after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.ino);
        inodes.extend(page);
    }
    let mut dirs = BTreeMap::new();
    for r in inodes.iter().filter(|r| r.kind == FileType::Directory) {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page = s.read_dir(share, r.ino, after, 500).await?;
            let Some(last) = page.last() else { break };
            after = last.cookie;
            all.extend(page);
        }
        dirs.insert(r.ino, all);
    }
    let mut blocks = Vec::new();
    let mut after = None;
    loop {
        let page = s.scan_blocks(share, after, 500).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        blocks.extend(page);
    }
    let mut chunks = Vec::new();
    let mut after = None;
    loop {
        let page = s.scan_chunks(share, after, 500).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        chunks.extend(page);
    }
    let mut orphans = s.list_orphans(share).await?;
    orphans.sort();
    let mut aux: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        let after = aux.last().map(|(k, _)| k.clone());
        let page = s.scan_aux(share, b"", after.as_deref(), 500).await?;
        if page.is_empty() {
            break;
        }
        aux.extend(page);
    }
    let mut xattrs = Vec::new();
    for r in &inodes {
        let x = s.get_xattrs(share, r.ino).await?;
        if !x.is_empty() {
            xattrs.push((r.ino, x));
        }
    }
    Ok(ShareDump {
        next_ino: rec.next_ino,
        inodes,
        dirs,
        blocks,
        chunks,
        orphans,
        aux,
        xattrs,
    })
}

/// Checks the structural invariants of a share through the trait and returns one line
/// per violation: every entry names an existing inode of the entry's kind, lookup agrees
/// with readdir, cookies ascend and stay below the directory's `next_cookie`, every
/// non-directory inode's `nlink` equals the number of entries naming it (orphans: 0),
/// INV-02 (sum of refcounts == number of refs, every referenced hash has a row, no row
/// with refcount 0, every row's refcount equals its refs), block lists belong to
/// existing inodes.
pub async fn check_invariants(s: &dyn MetadataStore, share: ShareId) -> MetaResult<Vec<String>> {
    let d = dump_share(s, share).await?;
    let mut bad = Vec::new();
    let by_ino: BTreeMap<Ino, &InodeRecord> = d.inodes.iter().map(|r| (r.ino, r)).collect();
    let mut names_of: BTreeMap<Ino, u32> = BTreeMap::new();
    for (dir, entries) in &d.dirs {
        let mut prev = 0u64;
        let dir_rec = by_ino[dir];
        for e in entries {
            if e.cookie <= prev {
                bad.push(format!("{dir}: cookie {} after {prev}", e.cookie));
            }
            prev = e.cookie;
            if e.cookie >= dir_rec.next_cookie {
                bad.push(format!(
                    "{dir}: cookie {} >= next_cookie {}",
                    e.cookie, dir_rec.next_cookie
                ));
            }
            match by_ino.get(&e.ino) {
                None => bad.push(format!("{dir}: entry {:?} names missing {}", e.name, e.ino)),
                Some(r) if r.kind != e.kind => {
                    bad.push(format!("{dir}: entry {:?} kind differs", e.name))
                }
                Some(_) => {}
            }
            match s.lookup(share, *dir, &e.name).await? {
                Some(l) if l == *e => {}
                other => bad.push(format!(
                    "{dir}: lookup {:?} = {other:?}, readdir has {e:?}",
                    e.name
                )),
            }
            *names_of.entry(e.ino).or_insert(0) += 1;
        }
    }
    let orphans: BTreeSet<Ino> = d.orphans.iter().copied().collect();
    for r in &d.inodes {
        if r.kind == FileType::Directory {
            continue;
        }
        let n = names_of.get(&r.ino).copied().unwrap_or(0);
        if r.nlink != n {
            bad.push(format!("{}: nlink {} but {n} entries", r.ino, r.nlink));
        }
        if n == 0 && !orphans.contains(&r.ino) {
            bad.push(format!("{}: unreachable and not an orphan", r.ino));
        }
    }
    for o in &d.orphans {
        if !by_ino.contains_key(o) {
            bad.push(format!("orphan mark of missing {o}"));
        }
    }
    let mut refs: BTreeMap<ContentHash, u64> = BTreeMap::new();
    let mut total_refs = 0u64;
    for (ino, list) in &d.blocks {
        if !by_ino.contains_key(ino) {
            bad.push(format!("block list of missing {ino}"));
        }
        if list.is_empty() {
            bad.push(format!("empty block list stored for {ino}"));
        }
        for b in list {
            *refs.entry(b.hash).or_insert(0) += 1;
            total_refs += 1;
        }
    }
    let mut total_refcount = 0u64;
    for (h, row) in &d.chunks {
        total_refcount += row.refcount;
        if row.refcount == 0 {
            bad.push(format!("chunk {h} has refcount 0"));
        }
        let n = refs.remove(h).unwrap_or(0);
        if n != row.refcount {
            bad.push(format!("chunk {h}: refcount {} but {n} refs", row.refcount));
        }
    }
    for (h, n) in refs {
        bad.push(format!("{n} refs to {h} without a chunk row"));
    }
    if total_refcount != total_refs {
        bad.push(format!(
            "INV-02: sum of refcounts {total_refcount} != refs {total_refs}"
        ));
    }
    Ok(bad)
}

// ---- shares ----

pub async fn share_create_get_list_delete(s: &dyn MetadataStore) {
    assert!(s.list_shares().await.unwrap().is_empty());
    assert_eq!(s.get_share(S).await.unwrap(), None);
    let a = new_share(s, S).await;
    assert_eq!(a.id, S);
    assert_eq!(a.name, "share-1");
    assert!(a.next_ino >= Ino::FIRST_ALLOC);
    let b = new_share(s, ShareId(2)).await;
    assert_eq!(s.get_share(S).await.unwrap(), Some(a.clone()));
    let mut listed = s.list_shares().await.unwrap();
    listed.sort_by_key(|r| r.id);
    assert_eq!(listed, vec![a, b.clone()]);
    s.delete_share(S).await.unwrap();
    assert_eq!(s.get_share(S).await.unwrap(), None);
    assert_eq!(s.list_shares().await.unwrap(), vec![b]);
    // Deleting an absent share is not an error.
    s.delete_share(ShareId(77)).await.unwrap();
}

pub async fn share_create_is_idempotent(s: &dyn MetadataStore) {
    let a = new_share(s, S).await;
    commit(s, S, vec![Op::PutInode(file_rec(5))]).await;
    let root = s.get_inode(S, Ino::ROOT).await.unwrap();
    let again = s.create_share(S, "other-name", 0o700).await.unwrap();
    assert_eq!(again, a, "second create returns the existing record");
    assert_eq!(s.get_inode(S, Ino::ROOT).await.unwrap(), root);
    assert!(s.get_inode(S, Ino(5)).await.unwrap().is_some());
    assert_eq!(s.list_shares().await.unwrap().len(), 1);
}

pub async fn share_root_inode_shape(s: &dyn MetadataStore) {
    s.create_share(S, "r", 0o40755).await.unwrap();
    let r = s.get_inode(S, Ino::ROOT).await.unwrap().expect("root");
    assert_eq!(r.ino, Ino::ROOT);
    assert_eq!(r.kind, FileType::Directory);
    assert_eq!(r.mode, 0o755, "mode keeps only permission bits");
    assert_eq!(r.nlink, 2);
    assert_eq!((r.uid, r.gid), (0, 0));
    assert_eq!(r.parent, Ino::ROOT);
    assert_eq!(r.next_cookie, 3);
    assert_eq!(r.size, 0);
    assert!(r.generation != 0);
    assert!(r.change >= 1);
    assert_eq!(r.symlink_target, None);
    assert!(!r.object_id.is_quiesced());
    assert!(s.dir_is_empty(S, Ino::ROOT).await.unwrap());
    assert!(s.read_dir(S, Ino::ROOT, 0, 10).await.unwrap().is_empty());
    assert_eq!(s.scan_inodes(S, None, 10).await.unwrap(), vec![r]);
}

pub async fn share_delete_removes_everything(s: &dyn MetadataStore) {
    let old = new_share(s, S).await;
    let blocks = vec![bref(1, 0)];
    let mut txn = Txn::new(S);
    txn.op(Op::PutInode(file_rec(2)))
        .op(Op::PutDirent {
            dir: Ino::ROOT,
            entry: entry("a", 2, 3),
        })
        .op(Op::SetBlocks {
            ino: Ino(2),
            blocks: blocks.clone(),
        })
        .op(Op::AddOrphan(Ino(2)))
        .op(Op::ReserveInodes { next_ino: 100 })
        .adjust_refs(&[], &blocks);
    s.commit(txn, Durability::Durable).await.unwrap();
    s.delete_share(S).await.unwrap();
    assert!(matches!(
        try_commit(s, S, vec![], vec![Op::PutInode(file_rec(3))]).await,
        Err(MetaError::NoSuchShare(id)) if id == S
    ));
    let new = new_share(s, S).await;
    assert_eq!(new.id, S);
    assert!(
        new.next_ino < 100,
        "allocation state of the deleted share is gone"
    );
    let _ = old;
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), None);
    assert!(s.dir_is_empty(S, Ino::ROOT).await.unwrap());
    assert_eq!(s.lookup(S, Ino::ROOT, b"a").await.unwrap(), None);
    assert!(s.get_blocks(S, Ino(2)).await.unwrap().is_empty());
    assert!(s.scan_chunks(S, None, 10).await.unwrap().is_empty());
    assert!(s.list_orphans(S).await.unwrap().is_empty());
    assert_eq!(s.scan_inodes(S, None, 10).await.unwrap().len(), 1);
}

pub async fn shares_are_isolated(s: &dyn MetadataStore) {
    let a = ShareId(1);
    let b = ShareId(2);
    new_share(s, a).await;
    new_share(s, b).await;
    let blocks = vec![bref(1, 0)];
    let mut txn = Txn::new(a);
    txn.op(Op::PutInode(file_rec(2)))
        .op(Op::PutDirent {
            dir: Ino::ROOT,
            entry: entry("x", 2, 3),
        })
        .op(Op::SetBlocks {
            ino: Ino(2),
            blocks: blocks.clone(),
        })
        .op(Op::AddOrphan(Ino(2)))
        .adjust_refs(&[], &blocks);
    s.commit(txn, Durability::Durable).await.unwrap();
    assert_eq!(s.get_inode(b, Ino(2)).await.unwrap(), None);
    assert_eq!(s.lookup(b, Ino::ROOT, b"x").await.unwrap(), None);
    assert!(s.dir_is_empty(b, Ino::ROOT).await.unwrap());
    assert!(s.get_blocks(b, Ino(2)).await.unwrap().is_empty());
    assert_eq!(s.get_chunk(b, hash(1)).await.unwrap(), None);
    assert!(s.list_orphans(b).await.unwrap().is_empty());
    assert!(s.scan_blocks(b, None, 10).await.unwrap().is_empty());
    assert_eq!(s.scan_inodes(b, None, 10).await.unwrap().len(), 1);
    // Same hash in share b is counted separately.
    commit(
        s,
        b,
        vec![Op::AdjustChunk {
            hash: hash(1),
            delta: 5,
            size: 4096,
        }],
    )
    .await;
    assert_eq!(s.get_chunk(a, hash(1)).await.unwrap().unwrap().refcount, 1);
    s.delete_share(b).await.unwrap();
    assert!(s.get_inode(a, Ino(2)).await.unwrap().is_some());
    assert_eq!(s.get_chunk(a, hash(1)).await.unwrap().unwrap().refcount, 1);
}

pub async fn commit_to_unknown_share_errors(s: &dyn MetadataStore) {
    new_share(s, S).await;
    for d in [Durability::Buffered, Durability::Durable] {
        let mut txn = Txn::new(ShareId(9));
        txn.op(Op::PutInode(file_rec(2)));
        assert!(matches!(
            s.commit(txn, d).await,
            Err(MetaError::NoSuchShare(ShareId(9)))
        ));
    }
    assert_eq!(s.get_inode(ShareId(9), Ino(2)).await.unwrap(), None);
}

// ---- inodes ----

pub async fn inode_put_get_replace(s: &dyn MetadataStore) {
    new_share(s, S).await;
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), None);
    let mut r = file_rec(2);
    r.symlink_target = Some(b"/x/y".to_vec());
    r.kind = FileType::Symlink;
    r.create_verifier = Some([1, 2, 3, 4, 5, 6, 7, 8]);
    r.object_id = ObjectId([7u8; 32]);
    r.size = u64::MAX;
    r.atime = Timestamp {
        secs: -5,
        nanos: 999_999_999,
    };
    commit(s, S, vec![Op::PutInode(r.clone())]).await;
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), Some(r.clone()));
    r.change += 1;
    r.mode = 0o600;
    commit(s, S, vec![Op::PutInode(r.clone())]).await;
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), Some(r));
}

pub async fn inode_delete_removes_blocks_and_orphan_mark(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let blocks = vec![bref(1, 0), bref(2, 4096)];
    let mut txn = Txn::new(S);
    txn.op(Op::PutInode(file_rec(2)))
        .op(Op::SetBlocks {
            ino: Ino(2),
            blocks: blocks.clone(),
        })
        .op(Op::AddOrphan(Ino(2)))
        .adjust_refs(&[], &blocks);
    s.commit(txn, Durability::Durable).await.unwrap();
    commit(s, S, vec![Op::DeleteInode(Ino(2))]).await;
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), None);
    assert!(s.get_blocks(S, Ino(2)).await.unwrap().is_empty());
    assert!(s.list_orphans(S).await.unwrap().is_empty());
    // Refcounts are the caller's business.
    assert_eq!(s.get_chunk(S, hash(1)).await.unwrap().unwrap().refcount, 1);
    // Deleting an absent inode is a no-op.
    commit(s, S, vec![Op::DeleteInode(Ino(99))]).await;
}

// ---- directory entries ----

pub async fn dirent_put_lookup_delete(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let e = DirEntry {
        name: vec![0xff, b'a', 0, b'z'],
        ino: Ino(2),
        kind: FileType::Regular,
        cookie: 3,
    };
    commit(
        s,
        S,
        vec![
            Op::PutInode(file_rec(2)),
            Op::PutDirent {
                dir: Ino::ROOT,
                entry: e.clone(),
            },
        ],
    )
    .await;
    assert_eq!(
        s.lookup(S, Ino::ROOT, &e.name).await.unwrap(),
        Some(e.clone())
    );
    assert_eq!(s.lookup(S, Ino::ROOT, b"other").await.unwrap(), None);
    assert_eq!(s.lookup(S, Ino(2), &e.name).await.unwrap(), None);
    // A name that is a prefix of the stored name is a different name.
    assert_eq!(s.lookup(S, Ino::ROOT, &e.name[..2]).await.unwrap(), None);
    assert_eq!(
        s.read_dir(S, Ino::ROOT, 0, 10).await.unwrap(),
        vec![e.clone()]
    );
    commit(
        s,
        S,
        vec![Op::DeleteDirent {
            dir: Ino::ROOT,
            name: e.name.clone(),
        }],
    )
    .await;
    assert_eq!(s.lookup(S, Ino::ROOT, &e.name).await.unwrap(), None);
    assert!(s.read_dir(S, Ino::ROOT, 0, 10).await.unwrap().is_empty());
    assert!(s.dir_is_empty(S, Ino::ROOT).await.unwrap());
}

pub async fn dirent_put_replace_removes_old_cookie(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(
        s,
        S,
        vec![
            Op::PutDirent {
                dir: Ino::ROOT,
                entry: entry("a", 2, 3),
            },
            Op::PutDirent {
                dir: Ino::ROOT,
                entry: entry("b", 3, 4),
            },
        ],
    )
    .await;
    commit(
        s,
        S,
        vec![Op::PutDirent {
            dir: Ino::ROOT,
            entry: entry("a", 7, 5),
        }],
    )
    .await;
    let all = read_all(s, S, Ino::ROOT, 10).await;
    assert_eq!(all, vec![entry("b", 3, 4), entry("a", 7, 5)]);
    assert_eq!(
        s.lookup(S, Ino::ROOT, b"a").await.unwrap(),
        Some(entry("a", 7, 5))
    );
    // Nothing is left at the old cookie: resuming before it yields only live entries.
    assert_eq!(
        s.read_dir(S, Ino::ROOT, 2, 1).await.unwrap(),
        vec![entry("b", 3, 4)]
    );
    // Deleting the name removes the (new) cookie too.
    commit(
        s,
        S,
        vec![Op::DeleteDirent {
            dir: Ino::ROOT,
            name: b"a".to_vec(),
        }],
    )
    .await;
    assert_eq!(read_all(s, S, Ino::ROOT, 10).await, vec![entry("b", 3, 4)]);
    // Replacing with the same cookie keeps exactly one index entry.
    commit(
        s,
        S,
        vec![Op::PutDirent {
            dir: Ino::ROOT,
            entry: entry("b", 9, 4),
        }],
    )
    .await;
    assert_eq!(read_all(s, S, Ino::ROOT, 10).await, vec![entry("b", 9, 4)]);
}

pub async fn dirent_delete_absent_is_noop(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(
        s,
        S,
        vec![Op::PutDirent {
            dir: Ino::ROOT,
            entry: entry("keep", 2, 3),
        }],
    )
    .await;
    commit(
        s,
        S,
        vec![Op::DeleteDirent {
            dir: Ino::ROOT,
            name: b"nope".to_vec(),
        }],
    )
    .await;
    assert_eq!(
        read_all(s, S, Ino::ROOT, 10).await,
        vec![entry("keep", 2, 3)]
    );
}

pub async fn readdir_in_cookie_order(s: &dyn MetadataStore) {
    new_share(s, S).await;
    // Name order is the reverse of cookie order.
    let ops = (0..50u64)
        .map(|i| Op::PutDirent {
            dir: Ino::ROOT,
            entry: entry(&format!("n{:03}", 100 - i), 100 + i, 3 + i * 2),
        })
        .collect();
    commit(s, S, ops).await;
    let all = read_all(s, S, Ino::ROOT, 1000).await;
    assert_eq!(all.len(), 50);
    assert_eq!(
        cookies(&all),
        (0..50).map(|i| 3 + i * 2).collect::<Vec<_>>()
    );
    assert_eq!(names(&all)[0], "n100");
    assert_eq!(names(&all)[49], "n051");
    // Paged reads give the same sequence.
    for limit in [1usize, 3, 7, 49, 50, 51] {
        assert_eq!(read_all(s, S, Ino::ROOT, limit).await, all, "limit {limit}");
    }
}

pub async fn readdir_resumes_strictly_after_cookie(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let ops = (0..10u64)
        .map(|i| Op::PutDirent {
            dir: Ino::ROOT,
            entry: entry(&format!("e{i}"), 10 + i, 10 + i * 10),
        })
        .collect();
    commit(s, S, ops).await;
    let page = s.read_dir(S, Ino::ROOT, 40, 3).await.unwrap();
    assert_eq!(cookies(&page), vec![50, 60, 70]);
    // A cookie between entries resumes at the next larger one.
    let page = s.read_dir(S, Ino::ROOT, 41, 2).await.unwrap();
    assert_eq!(cookies(&page), vec![50, 60]);
    let page = s.read_dir(S, Ino::ROOT, 0, 2).await.unwrap();
    assert_eq!(cookies(&page), vec![10, 20]);
    let page = s.read_dir(S, Ino::ROOT, 100, 5).await.unwrap();
    assert!(page.is_empty());
    let page = s.read_dir(S, Ino::ROOT, 90, 5).await.unwrap();
    assert_eq!(cookies(&page), vec![100]);
}

pub async fn readdir_resumes_after_deleted_cookie(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let ops = (0..6u64)
        .map(|i| Op::PutDirent {
            dir: Ino::ROOT,
            entry: entry(&format!("e{i}"), 10 + i, 3 + i),
        })
        .collect();
    commit(s, S, ops).await;
    let page = s.read_dir(S, Ino::ROOT, 0, 3).await.unwrap();
    assert_eq!(cookies(&page), vec![3, 4, 5]);
    // The entry the client resumes after disappears before the next page.
    commit(
        s,
        S,
        vec![
            Op::DeleteDirent {
                dir: Ino::ROOT,
                name: b"e2".to_vec(),
            },
            Op::DeleteDirent {
                dir: Ino::ROOT,
                name: b"e3".to_vec(),
            },
        ],
    )
    .await;
    let page = s.read_dir(S, Ino::ROOT, 5, 3).await.unwrap();
    assert_eq!(names(&page), vec!["e4", "e5"]);
    assert_eq!(cookies(&page), vec![7, 8]);
}

pub async fn readdir_limits_and_bounds(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(
        s,
        S,
        vec![
            Op::PutDirent {
                dir: Ino::ROOT,
                entry: entry("a", 2, 3),
            },
            Op::PutDirent {
                dir: Ino::ROOT,
                entry: entry("max", 3, u64::MAX),
            },
            // Entries of another directory are never mixed in.
            Op::PutDirent {
                dir: Ino(2),
                entry: entry("sub", 4, 3),
            },
        ],
    )
    .await;
    assert!(s.read_dir(S, Ino::ROOT, 0, 0).await.unwrap().is_empty());
    assert_eq!(
        cookies(&s.read_dir(S, Ino::ROOT, 3, 10).await.unwrap()),
        vec![u64::MAX]
    );
    assert!(
        s.read_dir(S, Ino::ROOT, u64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(names(&read_all(s, S, Ino::ROOT, 1).await), vec!["a", "max"]);
    assert_eq!(names(&read_all(s, S, Ino(2), 5).await), vec!["sub"]);
    assert!(s.read_dir(S, Ino(77), 0, 5).await.unwrap().is_empty());
}

pub async fn dir_is_empty_tracks_entries(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(
        s,
        S,
        vec![
            Op::PutInode(dir_rec(2, 1)),
            Op::PutDirent {
                dir: Ino(2),
                entry: entry("x", 3, 3),
            },
        ],
    )
    .await;
    assert!(!s.dir_is_empty(S, Ino(2)).await.unwrap());
    assert!(s.dir_is_empty(S, Ino::ROOT).await.unwrap());
    assert!(s.dir_is_empty(S, Ino(3)).await.unwrap());
    commit(
        s,
        S,
        vec![Op::DeleteDirent {
            dir: Ino(2),
            name: b"x".to_vec(),
        }],
    )
    .await;
    assert!(s.dir_is_empty(S, Ino(2)).await.unwrap());
}

/// Adds `name` to `dir` the way the VFS does: read the directory, take its next cookie,
/// commit guarded by the directory's change counter; retry on conflict.
async fn insert_guarded(s: &dyn MetadataStore, dir: Ino, name: &str, ino: u64) -> u64 {
    loop {
        let d = s.get_inode(S, dir).await.unwrap().expect("dir");
        let cookie = d.next_cookie;
        let mut nd = d.clone();
        nd.next_cookie += 1;
        nd.change += 1;
        let r = try_commit(
            s,
            S,
            vec![
                Check::InodeChange {
                    ino: dir,
                    change: d.change,
                },
                Check::Dirent {
                    dir,
                    name: name.as_bytes().to_vec(),
                    ino: None,
                },
            ],
            vec![
                Op::PutDirent {
                    dir,
                    entry: entry(name, ino, cookie),
                },
                Op::PutInode(nd),
            ],
        )
        .await;
        match r {
            Ok(()) => return cookie,
            Err(MetaError::Conflict(_)) => tokio::task::yield_now().await,
            Err(e) => panic!("insert {name}: {e}"),
        }
    }
}

async fn remove_guarded(s: &dyn MetadataStore, dir: Ino, name: &str) {
    loop {
        let d = s.get_inode(S, dir).await.unwrap().expect("dir");
        let mut nd = d.clone();
        nd.change += 1;
        let r = try_commit(
            s,
            S,
            vec![Check::InodeChange {
                ino: dir,
                change: d.change,
            }],
            vec![
                Op::DeleteDirent {
                    dir,
                    name: name.as_bytes().to_vec(),
                },
                Op::PutInode(nd),
            ],
        )
        .await;
        match r {
            Ok(()) => return,
            Err(MetaError::Conflict(_)) => tokio::task::yield_now().await,
            Err(e) => panic!("remove {name}: {e}"),
        }
    }
}

pub async fn readdir_stable_under_concurrent_changes(s: Arc<dyn MetadataStore>) {
    new_share(s.as_ref(), S).await;
    let dir = Ino(2);
    commit(
        s.as_ref(),
        S,
        vec![
            Op::PutInode(dir_rec(2, 1)),
            Op::PutDirent {
                dir: Ino::ROOT,
                entry: DirEntry {
                    kind: FileType::Directory,
                    ..entry("d", 2, 3)
                },
            },
        ],
    )
    .await;
    // Stable entries interleaved with entries that come and go.
    let mut stable = BTreeSet::new();
    for i in 0..60u64 {
        let name = format!("stable-{i}");
        insert_guarded(s.as_ref(), dir, &name, 1000 + i).await;
        stable.insert(name);
        insert_guarded(s.as_ref(), dir, &format!("early-{i}"), 5000 + i).await;
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let s = s.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..60u64 {
                let name = format!("w{w}-{i}");
                insert_guarded(s.as_ref(), dir, &name, 10_000 + w * 1000 + i).await;
                // Remove an early entry and, later, this writer's older entries.
                if i % 3 == w {
                    remove_guarded(s.as_ref(), dir, &format!("early-{}", i)).await;
                }
                if i >= 10 {
                    remove_guarded(s.as_ref(), dir, &format!("w{w}-{}", i - 10)).await;
                }
            }
        }));
    }
    let reader = {
        let s = s.clone();
        let done = done.clone();
        let stable = stable.clone();
        tokio::spawn(async move {
            let mut scans = 0u32;
            while scans < 3 || !done.load(std::sync::atomic::Ordering::Acquire) {
                let mut seen = BTreeSet::new();
                let mut after = 0u64;
                loop {
                    let page = s.read_dir(S, dir, after, 7).await.unwrap();
                    let Some(last) = page.last() else { break };
                    for e in &page {
                        assert!(e.cookie > after, "cookie {} not after {after}", e.cookie);
                        after = e.cookie;
                        let n = String::from_utf8_lossy(&e.name).into_owned();
                        assert!(seen.insert(n.clone()), "{n} returned twice in one scan");
                    }
                    after = last.cookie;
                    tokio::task::yield_now().await;
                }
                for n in &stable {
                    assert!(seen.contains(n), "stable entry {n} missed by scan {scans}");
                }
                scans += 1;
            }
            scans
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let scans = reader.await.unwrap();
    assert!(scans >= 3);
    // Final state: stable entries, the early ones not removed, the last 10 per writer.
    let all = read_all(s.as_ref(), S, dir, 7).await;
    let got: BTreeSet<String> = names(&all).into_iter().collect();
    // Every early entry was removed by exactly one writer (the one with `i % 3 == w`).
    let mut want = stable.clone();
    for w in 0..3u64 {
        for i in 50..60u64 {
            want.insert(format!("w{w}-{i}"));
        }
    }
    assert_eq!(got, want);
    let d = s.get_inode(S, dir).await.unwrap().unwrap();
    assert_eq!(
        d.next_cookie,
        3 + 120 + 180,
        "one cookie per insert, none reused"
    );
}

pub async fn concurrent_durable_commits_all_land(s: Arc<dyn MetadataStore>) {
    new_share(s.as_ref(), S).await;
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u64 {
                let ino = 100 + w * 100 + i;
                commit(
                    s.as_ref(),
                    S,
                    vec![
                        Op::PutInode(file_rec(ino)),
                        Op::AdjustChunk {
                            hash: hash(1),
                            delta: 1,
                            size: 4096,
                        },
                    ],
                )
                .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        s.get_chunk(S, hash(1)).await.unwrap().unwrap().refcount,
        200
    );
    assert_eq!(s.scan_inodes(S, None, 1000).await.unwrap().len(), 201);
}

pub async fn large_directory(s: &dyn MetadataStore) {
    const N: u64 = 100_000;
    const BATCH: u64 = 1000;
    new_share(s, S).await;
    let name_of = |i: u64| format!("file-{:06}", (i * 7919) % N);
    let mut root = s.get_inode(S, Ino::ROOT).await.unwrap().unwrap();
    for b in 0..N / BATCH {
        let mut ops: Vec<Op> = (b * BATCH..(b + 1) * BATCH)
            .map(|i| Op::PutDirent {
                dir: Ino::ROOT,
                entry: entry(&name_of(i), 1_000_000 + i, 3 + i),
            })
            .collect();
        root.next_cookie += BATCH;
        root.change += 1;
        ops.push(Op::PutInode(root.clone()));
        s.commit(
            Txn {
                share: S,
                checks: vec![],
                ops,
            },
            Durability::Buffered,
        )
        .await
        .unwrap();
    }
    s.sync().await.unwrap();
    let all = read_all(s, S, Ino::ROOT, 1000).await;
    assert_eq!(all.len() as u64, N);
    for (i, e) in all.iter().enumerate() {
        let i = i as u64;
        assert_eq!(e.cookie, 3 + i);
        assert_eq!(e.name, name_of(i).into_bytes());
        assert_eq!(e.ino, Ino(1_000_000 + i));
    }
    for i in (0..N).step_by(997) {
        let e = s
            .lookup(S, Ino::ROOT, name_of(i).as_bytes())
            .await
            .unwrap()
            .expect("lookup");
        assert_eq!(e.cookie, 3 + i);
    }
    let page = s.read_dir(S, Ino::ROOT, 3 + 77_776, 3).await.unwrap();
    assert_eq!(cookies(&page), vec![3 + 77_777, 3 + 77_778, 3 + 77_779]);
    assert!(!s.dir_is_empty(S, Ino::ROOT).await.unwrap());
}

// ---- checks ----

pub async fn check_inode_change_success_and_conflict(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let mut r = file_rec(2);
    r.change = 7;
    commit(s, S, vec![Op::PutInode(r.clone())]).await;
    let mut r2 = r.clone();
    r2.change = 8;
    r2.size = 10;
    try_commit(
        s,
        S,
        vec![Check::InodeChange {
            ino: Ino(2),
            change: 7,
        }],
        vec![Op::PutInode(r2.clone())],
    )
    .await
    .unwrap();
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), Some(r2.clone()));
    // Stale token.
    let mut r3 = r2.clone();
    r3.size = 99;
    let res = try_commit(
        s,
        S,
        vec![Check::InodeChange {
            ino: Ino(2),
            change: 7,
        }],
        vec![Op::PutInode(r3.clone())],
    )
    .await;
    assert!(matches!(res, Err(MetaError::Conflict(_))), "{res:?}");
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), Some(r2));
    // Missing inode.
    let res = try_commit(
        s,
        S,
        vec![Check::InodeChange {
            ino: Ino(55),
            change: 1,
        }],
        vec![Op::PutInode(file_rec(56))],
    )
    .await;
    assert!(matches!(res, Err(MetaError::Conflict(_))), "{res:?}");
    assert_eq!(s.get_inode(S, Ino(56)).await.unwrap(), None);
}

pub async fn check_dirent_success_and_conflict(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let absent = |name: &str| Check::Dirent {
        dir: Ino::ROOT,
        name: name.as_bytes().to_vec(),
        ino: None,
    };
    let names_ino = |name: &str, ino: u64| Check::Dirent {
        dir: Ino::ROOT,
        name: name.as_bytes().to_vec(),
        ino: Some(Ino(ino)),
    };
    let put = |name: &str, ino: u64, cookie: u64| Op::PutDirent {
        dir: Ino::ROOT,
        entry: entry(name, ino, cookie),
    };
    try_commit(s, S, vec![absent("a")], vec![put("a", 2, 3)])
        .await
        .unwrap();
    // "a" exists now: absent check fails.
    let res = try_commit(s, S, vec![absent("a")], vec![put("a", 9, 4)]).await;
    assert!(matches!(res, Err(MetaError::Conflict(_))), "{res:?}");
    // Wrong inode.
    let res = try_commit(s, S, vec![names_ino("a", 9)], vec![put("b", 9, 4)]).await;
    assert!(matches!(res, Err(MetaError::Conflict(_))), "{res:?}");
    // Expected inode on an absent name.
    let res = try_commit(s, S, vec![names_ino("zz", 2)], vec![put("b", 9, 4)]).await;
    assert!(matches!(res, Err(MetaError::Conflict(_))), "{res:?}");
    assert_eq!(read_all(s, S, Ino::ROOT, 10).await, vec![entry("a", 2, 3)]);
    // Right inode, plus another absent name.
    try_commit(
        s,
        S,
        vec![names_ino("a", 2), absent("b")],
        vec![put("b", 2, 4)],
    )
    .await
    .unwrap();
    assert_eq!(
        read_all(s, S, Ino::ROOT, 10).await,
        vec![entry("a", 2, 3), entry("b", 2, 4)]
    );
}

pub async fn failed_check_applies_nothing(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(s, S, vec![Op::PutInode(file_rec(2))]).await;
    let before = dump_share(s, S).await.unwrap();
    let blocks = vec![bref(1, 0)];
    let mut txn = Txn::new(S);
    // First check holds, second fails.
    txn.check(Check::InodeChange {
        ino: Ino(2),
        change: 1,
    })
    .check(Check::Dirent {
        dir: Ino::ROOT,
        name: b"x".to_vec(),
        ino: Some(Ino(2)),
    })
    .op(Op::PutInode(file_rec(3)))
    .op(Op::PutDirent {
        dir: Ino::ROOT,
        entry: entry("y", 3, 3),
    })
    .op(Op::SetBlocks {
        ino: Ino(2),
        blocks: blocks.clone(),
    })
    .op(Op::AddOrphan(Ino(2)))
    .op(Op::ReserveInodes { next_ino: 1000 })
    .op(Op::DeleteInode(Ino(2)))
    .op(Op::PutAux {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
    })
    .adjust_refs(&[], &blocks);
    let res = s.commit(txn, Durability::Durable).await;
    assert!(matches!(res, Err(MetaError::Conflict(_))), "{res:?}");
    assert_eq!(dump_share(s, S).await.unwrap(), before);
}

// ---- chunks and block lists ----

pub async fn adjust_chunk_create_increment_remove(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let adj = |delta: i64| Op::AdjustChunk {
        hash: hash(1),
        delta,
        size: 1234,
    };
    assert_eq!(s.get_chunk(S, hash(1)).await.unwrap(), None);
    commit(s, S, vec![adj(1)]).await;
    let row = s.get_chunk(S, hash(1)).await.unwrap().unwrap();
    assert_eq!((row.refcount, row.size), (1, 1234));
    commit(s, S, vec![adj(2)]).await;
    assert_eq!(s.get_chunk(S, hash(1)).await.unwrap().unwrap().refcount, 3);
    commit(s, S, vec![adj(-2)]).await;
    assert_eq!(s.get_chunk(S, hash(1)).await.unwrap().unwrap().refcount, 1);
    commit(s, S, vec![adj(-1)]).await;
    assert_eq!(
        s.get_chunk(S, hash(1)).await.unwrap(),
        None,
        "row removed at 0"
    );
    assert!(s.scan_chunks(S, None, 10).await.unwrap().is_empty());
    // Several adjustments of one hash in one txn see each other.
    commit(s, S, vec![adj(1), adj(1), adj(-1), adj(4)]).await;
    assert_eq!(s.get_chunk(S, hash(1)).await.unwrap().unwrap().refcount, 5);
    // Zero net within one txn removes the row.
    commit(s, S, vec![adj(1), adj(-6)]).await;
    assert_eq!(s.get_chunk(S, hash(1)).await.unwrap(), None);
}

pub async fn adjust_chunk_underflow_aborts_whole_txn(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(
        s,
        S,
        vec![Op::AdjustChunk {
            hash: hash(2),
            delta: 1,
            size: 10,
        }],
    )
    .await;
    let before = dump_share(s, S).await.unwrap();
    let res = try_commit(
        s,
        S,
        vec![],
        vec![
            Op::PutInode(file_rec(5)),
            Op::PutDirent {
                dir: Ino::ROOT,
                entry: entry("f", 5, 3),
            },
            Op::SetBlocks {
                ino: Ino(5),
                blocks: vec![bref(1, 0)],
            },
            Op::AdjustChunk {
                hash: hash(1),
                delta: 1,
                size: 10,
            },
            Op::AdjustChunk {
                hash: hash(2),
                delta: -1,
                size: 10,
            },
            Op::ReserveInodes { next_ino: 500 },
            // Missing row.
            Op::AdjustChunk {
                hash: hash(3),
                delta: -1,
                size: 10,
            },
            Op::PutInode(file_rec(6)),
        ],
    )
    .await;
    match res {
        Err(MetaError::RefcountUnderflow {
            share,
            hash: h,
            value,
        }) => {
            assert_eq!((share, h, value), (S, hash(3), -1));
        }
        other => panic!("expected underflow, got {other:?}"),
    }
    assert_eq!(dump_share(s, S).await.unwrap(), before);
}

pub async fn adjust_chunk_underflow_after_in_txn_increment(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let before = dump_share(s, S).await.unwrap();
    let res = try_commit(
        s,
        S,
        vec![],
        vec![
            Op::PutInode(file_rec(5)),
            Op::AdjustChunk {
                hash: hash(1),
                delta: 1,
                size: 10,
            },
            Op::AdjustChunk {
                hash: hash(1),
                delta: -2,
                size: 10,
            },
        ],
    )
    .await;
    assert!(
        matches!(res, Err(MetaError::RefcountUnderflow { value: -1, .. })),
        "{res:?}"
    );
    assert_eq!(dump_share(s, S).await.unwrap(), before);
}

pub async fn set_blocks_replace_and_empty_deletes(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let a = vec![bref(1, 0), bref(2, 4096), bref(1, 8192)];
    commit(
        s,
        S,
        vec![
            Op::PutInode(file_rec(2)),
            Op::SetBlocks {
                ino: Ino(2),
                blocks: a.clone(),
            },
        ],
    )
    .await;
    assert_eq!(s.get_blocks(S, Ino(2)).await.unwrap(), a);
    let b = vec![bref(3, 0)];
    commit(
        s,
        S,
        vec![Op::SetBlocks {
            ino: Ino(2),
            blocks: b.clone(),
        }],
    )
    .await;
    assert_eq!(s.get_blocks(S, Ino(2)).await.unwrap(), b);
    commit(
        s,
        S,
        vec![Op::SetBlocks {
            ino: Ino(2),
            blocks: vec![],
        }],
    )
    .await;
    assert!(s.get_blocks(S, Ino(2)).await.unwrap().is_empty());
    assert!(
        s.scan_blocks(S, None, 10).await.unwrap().is_empty(),
        "an empty list is not stored"
    );
    assert!(s.get_inode(S, Ino(2)).await.unwrap().is_some());
}

pub async fn ops_apply_in_order(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let mut r = file_rec(2);
    r.size = 1;
    let mut r2 = r.clone();
    r2.size = 2;
    commit(
        s,
        S,
        vec![
            Op::PutInode(r),
            Op::PutInode(r2.clone()),
            Op::PutDirent {
                dir: Ino::ROOT,
                entry: entry("gone", 2, 3),
            },
            Op::DeleteDirent {
                dir: Ino::ROOT,
                name: b"gone".to_vec(),
            },
            Op::PutDirent {
                dir: Ino::ROOT,
                entry: entry("kept", 2, 4),
            },
            Op::PutInode(file_rec(3)),
            Op::DeleteInode(Ino(3)),
            Op::DeleteInode(Ino(4)),
            Op::PutInode(file_rec(4)),
            Op::AddOrphan(Ino(4)),
            Op::RemoveOrphan(Ino(4)),
            Op::SetBlocks {
                ino: Ino(2),
                blocks: vec![bref(1, 0)],
            },
            Op::SetBlocks {
                ino: Ino(2),
                blocks: vec![bref(2, 0)],
            },
        ],
    )
    .await;
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), Some(r2));
    assert_eq!(
        read_all(s, S, Ino::ROOT, 10).await,
        vec![entry("kept", 2, 4)]
    );
    assert_eq!(s.get_inode(S, Ino(3)).await.unwrap(), None);
    assert!(s.get_inode(S, Ino(4)).await.unwrap().is_some());
    assert!(s.list_orphans(S).await.unwrap().is_empty());
    assert_eq!(s.get_blocks(S, Ino(2)).await.unwrap(), vec![bref(2, 0)]);
}

// ---- scans ----

pub async fn scan_inodes_ascending_resume_limit(s: &dyn MetadataStore) {
    new_share(s, S).await;
    new_share(s, ShareId(2)).await;
    // Inserted out of order, across byte boundaries.
    let inos = [300u64, 2, 256, 255, 70_000, 1 << 40, u64::MAX];
    commit(
        s,
        S,
        inos.iter().map(|i| Op::PutInode(file_rec(*i))).collect(),
    )
    .await;
    commit(s, ShareId(2), vec![Op::PutInode(file_rec(3))]).await;
    let mut want: Vec<u64> = inos.to_vec();
    want.push(1);
    want.sort();
    let all: Vec<u64> = s
        .scan_inodes(S, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.ino.0)
        .collect();
    assert_eq!(all, want);
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = s.scan_inodes(S, after, 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.ino);
        got.extend(page.iter().map(|r| r.ino.0));
    }
    assert_eq!(got, want);
    // Resume after a key that does not exist.
    let page = s.scan_inodes(S, Some(Ino(257)), 2).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.ino.0).collect::<Vec<_>>(),
        vec![300, 70_000]
    );
    assert!(
        s.scan_inodes(S, Some(Ino(u64::MAX)), 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.scan_inodes(S, None, 0).await.unwrap().is_empty());
}

pub async fn scan_blocks_ascending_resume_limit(s: &dyn MetadataStore) {
    new_share(s, S).await;
    new_share(s, ShareId(2)).await;
    let inos = [9u64, 3, 4000, 5, 1 << 33];
    commit(
        s,
        S,
        inos.iter()
            .map(|i| Op::SetBlocks {
                ino: Ino(*i),
                blocks: vec![bref(*i as u32, 0), bref(7, 4096)],
            })
            .collect(),
    )
    .await;
    commit(
        s,
        ShareId(2),
        vec![Op::SetBlocks {
            ino: Ino(4),
            blocks: vec![bref(1, 0)],
        }],
    )
    .await;
    let mut want: Vec<u64> = inos.to_vec();
    want.sort();
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = s.scan_blocks(S, after, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        for (ino, list) in page {
            assert_eq!(list, vec![bref(ino.0 as u32, 0), bref(7, 4096)]);
            got.push(ino.0);
        }
    }
    assert_eq!(got, want);
    let page = s.scan_blocks(S, Some(Ino(6)), 10).await.unwrap();
    assert_eq!(
        page.iter().map(|(i, _)| i.0).collect::<Vec<_>>(),
        vec![9, 4000, 1 << 33]
    );
}

pub async fn scan_chunks_ascending_resume_limit(s: &dyn MetadataStore) {
    new_share(s, S).await;
    new_share(s, ShareId(2)).await;
    let mut hs: Vec<ContentHash> = (0..20u32).map(|i| hash(i * 7919 % 1000)).collect();
    hs.push(ContentHash([0u8; 32]));
    hs.push(ContentHash([0xffu8; 32]));
    commit(
        s,
        S,
        hs.iter()
            .enumerate()
            .map(|(i, h)| Op::AdjustChunk {
                hash: *h,
                delta: 1 + i as i64,
                size: 100,
            })
            .collect(),
    )
    .await;
    commit(
        s,
        ShareId(2),
        vec![Op::AdjustChunk {
            hash: hash(5),
            delta: 1,
            size: 1,
        }],
    )
    .await;
    let mut sorted = hs.clone();
    sorted.sort();
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = s.scan_chunks(S, after, 4).await.unwrap();
        assert!(page.len() <= 4);
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        got.extend(page);
    }
    assert_eq!(got.iter().map(|(h, _)| *h).collect::<Vec<_>>(), sorted);
    for (h, row) in &got {
        let i = hs.iter().position(|x| x == h).unwrap();
        assert_eq!(row.refcount, 1 + i as u64);
        assert_eq!(s.get_chunk(S, *h).await.unwrap(), Some(*row));
    }
    let page = s.scan_chunks(S, Some(sorted[5]), 2).await.unwrap();
    assert_eq!(
        page.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
        sorted[6..8].to_vec()
    );
    assert!(
        s.scan_chunks(S, Some(ContentHash([0xffu8; 32])), 5)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- misc ops ----

pub async fn orphans_add_list_remove(s: &dyn MetadataStore) {
    new_share(s, S).await;
    new_share(s, ShareId(2)).await;
    commit(
        s,
        S,
        vec![
            Op::PutInode(file_rec(5)),
            Op::PutInode(file_rec(3)),
            Op::AddOrphan(Ino(5)),
            Op::AddOrphan(Ino(3)),
            Op::AddOrphan(Ino(3)),
        ],
    )
    .await;
    commit(s, ShareId(2), vec![Op::AddOrphan(Ino(9))]).await;
    let mut o = s.list_orphans(S).await.unwrap();
    o.sort();
    assert_eq!(o, vec![Ino(3), Ino(5)]);
    commit(
        s,
        S,
        vec![Op::RemoveOrphan(Ino(5)), Op::RemoveOrphan(Ino(77))],
    )
    .await;
    assert_eq!(s.list_orphans(S).await.unwrap(), vec![Ino(3)]);
    commit(s, S, vec![Op::DeleteInode(Ino(3))]).await;
    assert!(s.list_orphans(S).await.unwrap().is_empty());
    assert_eq!(s.list_orphans(ShareId(2)).await.unwrap(), vec![Ino(9)]);
}

pub async fn reserve_inodes_is_monotonic(s: &dyn MetadataStore) {
    let rec = new_share(s, S).await;
    let start = rec.next_ino;
    commit(
        s,
        S,
        vec![Op::ReserveInodes {
            next_ino: start + 100,
        }],
    )
    .await;
    assert_eq!(s.get_share(S).await.unwrap().unwrap().next_ino, start + 100);
    commit(
        s,
        S,
        vec![Op::ReserveInodes {
            next_ino: start + 10,
        }],
    )
    .await;
    assert_eq!(s.get_share(S).await.unwrap().unwrap().next_ino, start + 100);
    commit(
        s,
        S,
        vec![
            Op::ReserveInodes {
                next_ino: start + 500,
            },
            Op::ReserveInodes {
                next_ino: start + 200,
            },
        ],
    )
    .await;
    let after = s.get_share(S).await.unwrap().unwrap();
    assert_eq!(after.next_ino, start + 500);
    assert_eq!((after.incarnation, after.name), (rec.incarnation, rec.name));
}

pub async fn adjust_refs_nets_per_hash(s: &dyn MetadataStore) {
    // Pure netting.
    let old = vec![bref(1, 0), bref(2, 4096), bref(2, 8192), bref(3, 12288)];
    let new = vec![bref(2, 0), bref(3, 4096), bref(4, 8192), bref(4, 12288)];
    let mut txn = Txn::new(S);
    txn.adjust_refs(&old, &new);
    let mut deltas: Vec<(ContentHash, i64)> = txn
        .ops
        .iter()
        .map(|o| match o {
            Op::AdjustChunk { hash, delta, size } => {
                assert_eq!(*size, 4096);
                (*hash, *delta)
            }
            other => panic!("unexpected op {other:?}"),
        })
        .collect();
    deltas.sort();
    let mut want = vec![(hash(1), -1), (hash(2), -1), (hash(4), 2)];
    want.sort();
    assert_eq!(deltas, want, "hash 3 nets to zero and is dropped");
    assert!(Txn::new(S).adjust_refs(&old, &old).is_empty());

    // Applied against a store, INV-02 holds before and after.
    new_share(s, S).await;
    let mut t1 = Txn::new(S);
    t1.op(root_upto(s, S, 4).await)
        .op(Op::PutInode(file_rec(2)))
        .op(Op::PutDirent {
            dir: Ino::ROOT,
            entry: entry("f", 2, 3),
        })
        .op(Op::SetBlocks {
            ino: Ino(2),
            blocks: old.clone(),
        })
        .adjust_refs(&[], &old);
    s.commit(t1, Durability::Durable).await.unwrap();
    assert!(check_invariants(s, S).await.unwrap().is_empty());
    let mut t2 = Txn::new(S);
    t2.op(Op::SetBlocks {
        ino: Ino(2),
        blocks: new.clone(),
    })
    .adjust_refs(&old, &new);
    s.commit(t2, Durability::Durable).await.unwrap();
    assert_eq!(check_invariants(s, S).await.unwrap(), Vec::<String>::new());
    assert_eq!(s.get_chunk(S, hash(1)).await.unwrap(), None);
    assert_eq!(s.get_chunk(S, hash(2)).await.unwrap().unwrap().refcount, 1);
    assert_eq!(s.get_chunk(S, hash(4)).await.unwrap().unwrap().refcount, 2);
}

pub async fn buffered_commit_is_visible_and_sync_succeeds(s: &dyn MetadataStore) {
    new_share(s, S).await;
    s.sync().await.unwrap();
    let mut txn = Txn::new(S);
    txn.op(Op::PutInode(file_rec(2)));
    s.commit(txn, Durability::Buffered).await.unwrap();
    assert!(s.get_inode(S, Ino(2)).await.unwrap().is_some());
    s.sync().await.unwrap();
    s.sync().await.unwrap();
    // An empty transaction is accepted.
    s.commit(Txn::new(S), Durability::Durable).await.unwrap();
}

// ---- auxiliary key/value space ----

fn put_aux(key: &[u8], value: &[u8]) -> Op {
    Op::PutAux {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn del_aux(key: &[u8]) -> Op {
    Op::DeleteAux { key: key.to_vec() }
}

/// Pages through `scan_aux(prefix)` with page size `limit`, returning the keys.
async fn aux_keys(
    s: &dyn MetadataStore,
    share: ShareId,
    prefix: &[u8],
    limit: usize,
) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    loop {
        let after = out.last().cloned();
        let page = s
            .scan_aux(share, prefix, after.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.len() <= limit, "scan_aux returned more than the limit");
        if page.is_empty() {
            break;
        }
        out.extend(page.into_iter().map(|(k, _)| k));
    }
    out
}

pub async fn aux_put_get_replace_delete(s: &dyn MetadataStore) {
    new_share(s, S).await;
    assert_eq!(s.get_aux(S, b"a").await.unwrap(), None);
    commit(s, S, vec![put_aux(b"a", b"1"), put_aux(b"b", b"")]).await;
    assert_eq!(s.get_aux(S, b"a").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        s.get_aux(S, b"b").await.unwrap(),
        Some(Vec::new()),
        "an empty value is a value"
    );
    commit(s, S, vec![put_aux(b"a", b"22")]).await;
    assert_eq!(s.get_aux(S, b"a").await.unwrap(), Some(b"22".to_vec()));
    commit(s, S, vec![del_aux(b"a"), del_aux(b"absent")]).await;
    assert_eq!(s.get_aux(S, b"a").await.unwrap(), None);
    assert_eq!(s.get_aux(S, b"b").await.unwrap(), Some(Vec::new()));
    // Ops apply in order within one transaction.
    commit(
        s,
        S,
        vec![put_aux(b"c", b"1"), del_aux(b"c"), put_aux(b"d", b"1")],
    )
    .await;
    assert_eq!(s.get_aux(S, b"c").await.unwrap(), None);
    assert_eq!(s.get_aux(S, b"d").await.unwrap(), Some(b"1".to_vec()));
    commit(s, S, vec![put_aux(b"e", b"1"), put_aux(b"e", b"2")]).await;
    assert_eq!(s.get_aux(S, b"e").await.unwrap(), Some(b"2".to_vec()));
    // Binary keys (NUL, 0xff) are plain bytes.
    commit(s, S, vec![put_aux(&[0, 0xff, 7], &[1, 2, 3])]).await;
    assert_eq!(
        s.get_aux(S, &[0, 0xff, 7]).await.unwrap(),
        Some(vec![1, 2, 3])
    );
    // Aux entries are not inodes, entries or chunks.
    assert_eq!(s.scan_inodes(S, None, 10).await.unwrap().len(), 1);
    assert!(s.dir_is_empty(S, Ino::ROOT).await.unwrap());
}

pub async fn aux_is_atomic_with_the_transaction(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(
        s,
        S,
        vec![put_aux(b"keep", b"1"), Op::PutInode(file_rec(2))],
    )
    .await;
    let before = dump_share(s, S).await.unwrap();
    // A failing check: neither the aux ops nor the others apply.
    let res = try_commit(
        s,
        S,
        vec![Check::InodeChange {
            ino: Ino(2),
            change: 99,
        }],
        vec![
            put_aux(b"new", b"x"),
            del_aux(b"keep"),
            Op::PutInode(file_rec(3)),
        ],
    )
    .await;
    assert!(matches!(res, Err(MetaError::Conflict(_))), "{res:?}");
    assert_eq!(dump_share(s, S).await.unwrap(), before);
    // A failing op after the aux ops (refcount underflow): nothing applies either.
    let res = try_commit(
        s,
        S,
        vec![],
        vec![
            put_aux(b"new", b"x"),
            del_aux(b"keep"),
            Op::AdjustChunk {
                hash: hash(1),
                delta: -1,
                size: 4096,
            },
        ],
    )
    .await;
    assert!(
        matches!(res, Err(MetaError::RefcountUnderflow { .. })),
        "{res:?}"
    );
    assert_eq!(dump_share(s, S).await.unwrap(), before);
    assert_eq!(s.get_aux(S, b"new").await.unwrap(), None);
    assert_eq!(s.get_aux(S, b"keep").await.unwrap(), Some(b"1".to_vec()));
    // A passing check: everything applies together.
    try_commit(
        s,
        S,
        vec![Check::InodeChange {
            ino: Ino(2),
            change: 1,
        }],
        vec![
            put_aux(b"new", b"x"),
            del_aux(b"keep"),
            Op::DeleteInode(Ino(2)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(s.get_aux(S, b"new").await.unwrap(), Some(b"x".to_vec()));
    assert_eq!(s.get_aux(S, b"keep").await.unwrap(), None);
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), None);
}

pub async fn aux_scan_prefix_order_resume(s: &dyn MetadataStore) {
    new_share(s, S).await;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for i in [300u64, 2, 1, 256, 255, 70_000] {
        let mut k = b"trash/".to_vec();
        k.extend_from_slice(&i.to_be_bytes());
        keys.push(k);
    }
    let mut ops: Vec<Op> = keys.iter().map(|k| put_aux(k, b"v")).collect();
    // Neighbours of the prefix on both sides, and the bare prefix itself.
    ops.push(put_aux(b"trash", b"before"));
    ops.push(put_aux(b"trash.", b"after"));
    ops.push(put_aux(b"trasi", b"after"));
    ops.push(put_aux(b"tras", b"before"));
    ops.push(put_aux(b"trash/", b"bare prefix"));
    commit(s, S, ops).await;
    keys.push(b"trash/".to_vec());
    keys.sort();
    for limit in [1, 2, 3, 100] {
        assert_eq!(
            aux_keys(s, S, b"trash/", limit).await,
            keys,
            "limit {limit}"
        );
    }
    // Ascending byte order: big-endian numbers come out numerically.
    let all = s.scan_aux(S, b"trash/", None, 100).await.unwrap();
    assert_eq!(all.len(), 7);
    assert_eq!(all[0], (b"trash/".to_vec(), b"bare prefix".to_vec()));
    let nums: Vec<u64> = all[1..]
        .iter()
        .map(|(k, _)| u64::from_be_bytes(k[6..14].try_into().unwrap()))
        .collect();
    assert_eq!(nums, vec![1, 2, 255, 256, 300, 70_000]);
    // Resume strictly after a key, also after one that does not exist.
    let after = s.scan_aux(S, b"trash/", Some(&keys[3]), 100).await.unwrap();
    assert_eq!(
        after.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        keys[4..].to_vec()
    );
    let mut gap = b"trash/".to_vec();
    gap.extend_from_slice(&3u64.to_be_bytes());
    let after = s.scan_aux(S, b"trash/", Some(&gap), 100).await.unwrap();
    assert_eq!(
        after.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        keys[3..].to_vec(),
        "resumes after the absent key 3 at 255"
    );
    // `after` below the prefix starts at the prefix; above it, nothing.
    assert_eq!(
        s.scan_aux(S, b"trash/", Some(b"a"), 100)
            .await
            .unwrap()
            .len(),
        7
    );
    assert!(
        s.scan_aux(S, b"trash/", Some(b"u"), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.scan_aux(S, b"trash/", None, 0).await.unwrap().is_empty(),
        "limit 0"
    );
    // The empty prefix lists everything.
    assert_eq!(aux_keys(s, S, b"", 4).await.len(), 11);
    assert!(aux_keys(s, S, b"none/", 4).await.is_empty());
}

pub async fn aux_shares_are_isolated(s: &dyn MetadataStore) {
    let a = ShareId(1);
    let b = ShareId(2);
    let c = ShareId(3);
    new_share(s, a).await;
    new_share(s, b).await;
    new_share(s, c).await;
    commit(s, a, vec![put_aux(b"k", b"a"), put_aux(b"k2", b"a")]).await;
    commit(s, c, vec![put_aux(b"k", b"c")]).await;
    assert_eq!(s.get_aux(b, b"k").await.unwrap(), None);
    assert!(s.scan_aux(b, b"", None, 10).await.unwrap().is_empty());
    assert_eq!(s.get_aux(a, b"k").await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(s.get_aux(c, b"k").await.unwrap(), Some(b"c".to_vec()));
    assert_eq!(
        aux_keys(s, a, b"", 1).await,
        vec![b"k".to_vec(), b"k2".to_vec()]
    );
    assert_eq!(aux_keys(s, c, b"k", 1).await, vec![b"k".to_vec()]);
    commit(s, b, vec![del_aux(b"k")]).await;
    assert_eq!(s.get_aux(a, b"k").await.unwrap(), Some(b"a".to_vec()));
}

pub async fn aux_cleared_by_delete_share(s: &dyn MetadataStore) {
    new_share(s, S).await;
    new_share(s, ShareId(2)).await;
    commit(
        s,
        S,
        vec![put_aux(b"trash/1", b"x"), put_aux(b"other", b"y")],
    )
    .await;
    commit(s, ShareId(2), vec![put_aux(b"trash/1", b"z")]).await;
    s.delete_share(S).await.unwrap();
    new_share(s, S).await;
    assert_eq!(s.get_aux(S, b"trash/1").await.unwrap(), None);
    assert!(s.scan_aux(S, b"", None, 10).await.unwrap().is_empty());
    assert_eq!(
        s.get_aux(ShareId(2), b"trash/1").await.unwrap(),
        Some(b"z".to_vec())
    );
}

// ---- extended attributes ----

fn xattrs_of(pairs: &[(&[u8], &[u8])]) -> Xattrs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn set_xattrs(ino: u64, pairs: &[(&[u8], &[u8])]) -> Op {
    Op::SetXattrs {
        ino: Ino(ino),
        xattrs: xattrs_of(pairs),
    }
}

pub async fn xattrs_set_get_replace_empty_deletes(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(s, S, vec![Op::PutInode(file_rec(2))]).await;
    assert!(s.get_xattrs(S, Ino(2)).await.unwrap().is_empty());
    let big = vec![0xa5u8; 64 * 1024];
    let first: &[(&[u8], &[u8])] = &[(b"b", b"2"), (b"a", b""), (&[0, 0xff], &big)];
    commit(s, S, vec![set_xattrs(2, first)]).await;
    let got = s.get_xattrs(S, Ino(2)).await.unwrap();
    assert_eq!(got, xattrs_of(first));
    let names: Vec<&[u8]> = got.keys().map(Vec::as_slice).collect();
    assert_eq!(names, vec![&[0u8, 0xff][..], b"a", b"b"], "byte order");
    assert_eq!(
        got[&b"a".to_vec()],
        Vec::<u8>::new(),
        "an empty value is a value"
    );
    // Replaced as a whole: names left out are gone.
    commit(s, S, vec![set_xattrs(2, &[(b"c", b"3")])]).await;
    assert_eq!(
        s.get_xattrs(S, Ino(2)).await.unwrap(),
        xattrs_of(&[(b"c", b"3")])
    );
    // Ops apply in order; the empty set deletes the record.
    commit(
        s,
        S,
        vec![set_xattrs(2, &[(b"d", b"4")]), set_xattrs(2, &[])],
    )
    .await;
    assert!(s.get_xattrs(S, Ino(2)).await.unwrap().is_empty());
    commit(s, S, vec![set_xattrs(2, &[]), set_xattrs(99, &[])]).await;
    // Attributes are not inodes, blocks or aux entries.
    assert_eq!(s.scan_inodes(S, None, 10).await.unwrap().len(), 2);
    assert!(s.scan_blocks(S, None, 10).await.unwrap().is_empty());
    assert!(s.scan_aux(S, b"", None, 10).await.unwrap().is_empty());
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), Some(file_rec(2)));
}

pub async fn xattrs_go_with_the_inode(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(
        s,
        S,
        vec![
            Op::PutInode(file_rec(2)),
            Op::PutInode(file_rec(3)),
            set_xattrs(2, &[(b"a", b"1")]),
            set_xattrs(3, &[(b"a", b"3")]),
        ],
    )
    .await;
    commit(s, S, vec![Op::DeleteInode(Ino(2))]).await;
    assert!(s.get_xattrs(S, Ino(2)).await.unwrap().is_empty());
    assert_eq!(
        s.get_xattrs(S, Ino(3)).await.unwrap(),
        xattrs_of(&[(b"a", b"3")]),
        "only the deleted inode's attributes go"
    );
    // A record put again under the same number starts without attributes.
    commit(s, S, vec![Op::PutInode(file_rec(2))]).await;
    assert!(s.get_xattrs(S, Ino(2)).await.unwrap().is_empty());
    // Delete and set in one transaction, in both orders.
    commit(
        s,
        S,
        vec![set_xattrs(2, &[(b"x", b"1")]), Op::DeleteInode(Ino(2))],
    )
    .await;
    assert!(s.get_xattrs(S, Ino(2)).await.unwrap().is_empty());
    let d = dump_share(s, S).await.unwrap();
    assert_eq!(d.xattrs, vec![(Ino(3), xattrs_of(&[(b"a", b"3")]))]);
}

pub async fn xattrs_need_an_existing_inode(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(s, S, vec![Op::PutInode(file_rec(2))]).await;
    let before = dump_share(s, S).await.unwrap();
    for ops in [
        vec![Op::PutInode(file_rec(5)), set_xattrs(7, &[(b"a", b"1")])],
        vec![Op::DeleteInode(Ino(2)), set_xattrs(2, &[(b"a", b"1")])],
        vec![
            set_xattrs(2, &[(b"a", b"1")]),
            set_xattrs(8, &[(b"a", b"1")]),
        ],
    ] {
        let res = try_commit(s, S, vec![], ops).await;
        assert!(matches!(res, Err(MetaError::NoSuchInode { .. })), "{res:?}");
        assert_eq!(dump_share(s, S).await.unwrap(), before, "nothing applied");
    }
    // An inode put earlier in the same transaction takes attributes.
    commit(
        s,
        S,
        vec![Op::PutInode(file_rec(6)), set_xattrs(6, &[(b"a", b"6")])],
    )
    .await;
    assert_eq!(
        s.get_xattrs(S, Ino(6)).await.unwrap(),
        xattrs_of(&[(b"a", b"6")])
    );
}

pub async fn xattrs_are_atomic_with_the_transaction(s: &dyn MetadataStore) {
    new_share(s, S).await;
    commit(
        s,
        S,
        vec![Op::PutInode(file_rec(2)), set_xattrs(2, &[(b"keep", b"1")])],
    )
    .await;
    let before = dump_share(s, S).await.unwrap();
    let mut touched = file_rec(2);
    touched.change = 2;
    let res = try_commit(
        s,
        S,
        vec![Check::InodeChange {
            ino: Ino(2),
            change: 99,
        }],
        vec![
            Op::PutInode(touched.clone()),
            set_xattrs(2, &[(b"new", b"x")]),
        ],
    )
    .await;
    assert!(matches!(res, Err(MetaError::Conflict(_))), "{res:?}");
    let res = try_commit(
        s,
        S,
        vec![],
        vec![
            set_xattrs(2, &[(b"new", b"x")]),
            Op::AdjustChunk {
                hash: hash(1),
                delta: -1,
                size: 4096,
            },
        ],
    )
    .await;
    assert!(
        matches!(res, Err(MetaError::RefcountUnderflow { .. })),
        "{res:?}"
    );
    assert_eq!(dump_share(s, S).await.unwrap(), before);
    try_commit(
        s,
        S,
        vec![Check::InodeChange {
            ino: Ino(2),
            change: 1,
        }],
        vec![
            Op::PutInode(touched.clone()),
            set_xattrs(2, &[(b"new", b"x")]),
        ],
    )
    .await
    .unwrap();
    assert_eq!(s.get_inode(S, Ino(2)).await.unwrap(), Some(touched));
    assert_eq!(
        s.get_xattrs(S, Ino(2)).await.unwrap(),
        xattrs_of(&[(b"new", b"x")])
    );
}

pub async fn xattrs_shares_are_isolated_and_cleared_by_delete_share(s: &dyn MetadataStore) {
    new_share(s, S).await;
    new_share(s, ShareId(2)).await;
    for share in [S, ShareId(2)] {
        commit(
            s,
            share,
            vec![
                Op::PutInode(file_rec(2)),
                set_xattrs(2, &[(b"who", &share.0.to_be_bytes())]),
            ],
        )
        .await;
    }
    assert_eq!(
        s.get_xattrs(S, Ino(2)).await.unwrap(),
        xattrs_of(&[(b"who", &1u32.to_be_bytes())])
    );
    s.delete_share(S).await.unwrap();
    new_share(s, S).await;
    assert!(s.get_xattrs(S, Ino(2)).await.unwrap().is_empty());
    assert_eq!(
        s.get_xattrs(ShareId(2), Ino(2)).await.unwrap(),
        xattrs_of(&[(b"who", &2u32.to_be_bytes())])
    );
}

// ---- persistence ----

/// Everything committed (durable, or buffered and then synced) is there after a close
/// and reopen; skipped for volatile stores.
pub async fn persistence_reopen(fx: Fixture) {
    if !fx.store().info().persistent {
        return;
    }
    let s = fx.store();
    let rec = new_share(s, S).await;
    let rec2 = new_share(s, ShareId(2)).await;
    let blocks = vec![bref(1, 0), bref(2, 4096)];
    let mut txn = Txn::new(S);
    txn.op(root_upto(s, S, 4).await)
        .op(Op::PutInode(dir_rec(2, 1)))
        .op(Op::PutDirent {
            dir: Ino::ROOT,
            entry: DirEntry {
                kind: FileType::Directory,
                ..entry("d", 2, 3)
            },
        })
        .op(Op::PutInode(file_rec(3)))
        .op(Op::PutDirent {
            dir: Ino(2),
            entry: entry("f", 3, 3),
        })
        .op(Op::SetBlocks {
            ino: Ino(3),
            blocks: blocks.clone(),
        })
        .op(Op::PutInode(InodeRecord {
            nlink: 0,
            ..file_rec(4)
        }))
        .op(Op::AddOrphan(Ino(4)))
        .op(Op::ReserveInodes { next_ino: 50 })
        .op(Op::PutAux {
            key: b"trash/x".to_vec(),
            value: b"durable".to_vec(),
        })
        .op(Op::SetXattrs {
            ino: Ino(3),
            xattrs: xattrs_of(&[(b"k", b"durable"), (b"empty", b"")]),
        })
        .adjust_refs(&[], &blocks);
    s.commit(txn, Durability::Durable).await.unwrap();
    // A buffered commit made durable by a later durable one.
    let mut b = Txn::new(S);
    b.op(Op::PutDirent {
        dir: Ino(2),
        entry: entry("buffered", 3, 4),
    });
    s.commit(b, Durability::Buffered).await.unwrap();
    commit(s, ShareId(2), vec![Op::PutInode(file_rec(9))]).await;
    // And one made durable by sync.
    let mut b = Txn::new(S);
    b.op(Op::PutInode(InodeRecord {
        nlink: 2,
        ..file_rec(3)
    }));
    let mut dir = dir_rec(2, 1);
    dir.next_cookie = 5;
    b.op(Op::PutInode(dir));
    s.commit(b, Durability::Buffered).await.unwrap();
    s.sync().await.unwrap();
    let before = dump_share(s, S).await.unwrap();
    let before2 = dump_share(s, ShareId(2)).await.unwrap();
    assert_eq!(check_invariants(s, S).await.unwrap(), Vec::<String>::new());

    let fx = fx.reopen().await.unwrap().expect("persistent");
    let s = fx.store();
    assert_eq!(
        s.get_share(S).await.unwrap(),
        Some(ShareRecord {
            next_ino: 50,
            ..rec.clone()
        })
    );
    let mut shares = s.list_shares().await.unwrap();
    shares.sort_by_key(|r| r.id);
    assert_eq!(shares[0].incarnation, rec.incarnation);
    assert_eq!(shares[1].id, rec2.id);
    let after = dump_share(s, S).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(after.next_ino, 50);
    assert_eq!(dump_share(s, ShareId(2)).await.unwrap(), before2);
    assert_eq!(
        s.lookup(S, Ino(2), b"buffered").await.unwrap(),
        Some(entry("buffered", 3, 4))
    );
    assert_eq!(
        s.get_aux(S, b"trash/x").await.unwrap(),
        Some(b"durable".to_vec())
    );
    assert_eq!(
        s.get_xattrs(S, Ino(3)).await.unwrap(),
        xattrs_of(&[(b"k", b"durable"), (b"empty", b"")])
    );
    // The reopened store takes new commits, and a second reopen keeps them.
    commit(s, S, vec![Op::PutInode(file_rec(10))]).await;
    let fx = fx.reopen().await.unwrap().expect("persistent");
    assert!(fx.store().get_inode(S, Ino(10)).await.unwrap().is_some());
    fx.store().close().await.unwrap();
}
