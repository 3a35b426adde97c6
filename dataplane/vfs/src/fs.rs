//! [`Fs`]: the filesystem of one share over a metadata store and a block engine.
//!
//! Every method is protocol-neutral: it takes [`Credentials`], inode numbers and byte
//! names, enforces POSIX semantics, and commits each namespace change as one metadata
//! transaction. The operations live in `ops_*.rs`; this file holds the shared state and
//! helpers.

use crate::attr::Attr;
use crate::cred::Credentials;
use crate::error::{FsError, FsResult};
use crate::handle::FileHandle;
use crate::locks::{FlushLocks, LockTable};
use crate::recycle::policy::TrashPolicy;
use dittofs_blockstore::{Chunker, ChunkerConfig, Engine, RemoteTier, TierBinding};
use dittofs_metadata::{Durability, InodeRecord, MetadataStore, Op, Txn};
use dittofs_types::{FileKey, Ino, ShareId, Timestamp};
use parking_lot::{Mutex as PlMutex, RwLock as PlRwLock};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Longest name component (POSIX NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Longest symlink target / path.
pub const PATH_MAX: usize = 4096;
/// Largest file size (bytes).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Highest link count of a file.
pub const LINK_MAX: u32 = 65_000;
/// What a new name or attribute change is counted as against the disk reserve (its
/// metadata): a client refused a WRITE is refused a CREATE too.
const NAME_BYTES: u64 = 64 * 1024;
/// Inode numbers reserved per durable allocator commit.
const INO_RESERVE: u64 = 4096;

/// Per-share behaviour. Changeable while serving with [`Fs::set_options`] (except
/// `root_mode`, which only matters when the share is first created).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareOptions {
    pub read_only: bool,
    /// Mode of the root directory when the share is first created.
    pub root_mode: u32,
    /// Per-share FastCDC sizes (`None`: the block store's default, 1/4/16 MiB).
    pub chunker: Option<ChunkerConfig>,
    /// The recycle bin (`#recycle`, see [`crate::trash`]); disabled by default.
    pub trash: TrashPolicy,
}

impl Default for ShareOptions {
    fn default() -> Self {
        ShareOptions {
            read_only: false,
            root_mode: 0o755,
            chunker: None,
            trash: TrashPolicy::default(),
        }
    }
}

pub use dittofs_blockstore::DataDurability;

/// What [`Fs::attach_remote`] binds a share to: its remote tier, the name its engine is
/// registered under there, and the durability contract.
#[derive(Clone, Debug)]
pub struct RemoteBinding {
    pub tier: RemoteTier,
    pub engine_name: String,
    pub durability: DataDurability,
}

/// Longest time a writer waits for local-tier space (uploads, eviction): then it writes
/// anyway, or fails with NOSPC if the remote took nothing meanwhile.
pub(crate) const WRITE_SPACE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The options currently in force, with what is derived from them (validated once).
pub(crate) struct Live {
    pub(crate) opts: ShareOptions,
    /// The share's chunker when it overrides the engine's.
    pub(crate) chunker: Option<Chunker>,
    /// Compiled `opts.trash.exclude`.
    pub(crate) exclude: globset::GlobSet,
}

impl Live {
    /// Validates `opts` (chunker sizes, exclude globs) and compiles what they need.
    pub(crate) fn build(share: &str, opts: ShareOptions) -> FsResult<Live> {
        let chunker =
            match &opts.chunker {
                Some(c) => Some(Chunker::new(*c).map_err(|e| {
                    FsError::InvalidArgument(format!("share {share}: chunking: {e}"))
                })?),
                None => None,
            };
        let exclude = crate::recycle::policy::compile_excludes(share, &opts.trash.exclude)?;
        Ok(Live {
            opts,
            chunker,
            exclude,
        })
    }
}

/// What the core remembers about a file with unflushed writes.
///
/// The file's change attribute is `max(record's change counter, base) + pending`
/// ([`DirtyInfo::change`]): every write moves it at once, though the record's counter
/// only moves when a flush publishes the data. A flush moves the pending writes into the
/// counter it publishes ([`Fs::fold_writes`], applied before its commit, undone if the
/// commit fails), so the attribute never goes back and a flush does not move it. After
/// a crash, recovery counts every recovered journal record as a pending write (at least
/// as many as were pending), so no value seen before the crash comes back for other
/// content.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DirtyInfo {
    /// Time of the last write; becomes mtime/ctime at flush.
    pub(crate) mtime: Timestamp,
    /// Bumped on every write and explicit time change, so a flush knows whether the
    /// mtime it captured is still the one to apply.
    pub(crate) epoch: u64,
    /// Writes not yet counted in the record's change counter.
    pub(crate) pending: u64,
    /// The change counter the last fold published (0 before any).
    pub(crate) base: u64,
}

impl DirtyInfo {
    /// A file's change attribute when its record's counter is `change`.
    pub(crate) fn change(&self, change: u64) -> u64 {
        change.max(self.base) + self.pending
    }
}

/// What [`Fs::fold_writes`] moved, to put back if the flush's commit fails.
pub(crate) struct Fold {
    moved: u64,
    base: u64,
}

struct InoAlloc {
    next: u64,
    reserved_until: u64,
}

/// The filesystem of one share.
pub struct Fs {
    pub(crate) share: ShareId,
    pub(crate) name: String,
    pub(crate) incarnation: u32,
    pub(crate) store: Arc<dyn MetadataStore>,
    pub(crate) engine: Arc<Engine>,
    /// Options in force; replaced as a whole by [`Fs::set_options`].
    live: PlRwLock<Arc<Live>>,
    pub(crate) locks: LockTable,
    pub(crate) flush_locks: FlushLocks,
    /// Serialises directory renames that change the parent, so the "not into its own
    /// subtree" walk cannot race with another such rename.
    pub(crate) rename_lock: Mutex<()>,
    alloc: Mutex<InoAlloc>,
    pub(crate) dirty: PlMutex<HashMap<Ino, DirtyInfo>>,
    pub(crate) opens: PlMutex<HashMap<Ino, u32>>,
    /// Serialises the recycle bin's maintenance (option changes, restore, empty, reap).
    pub(crate) trash_admin: Mutex<()>,
    /// Directory -> (parent, name) hints for building share-relative paths; verified
    /// with a lookup on every use, so a stale hint only costs a directory scan.
    pub(crate) dir_names: PlMutex<HashMap<Ino, (Ino, Vec<u8>)>>,
    /// The remote tier, if the share has one (attached before recovery, never changed).
    pub(crate) remote: PlRwLock<Option<Arc<TierBinding>>>,
}

impl Fs {
    /// Opens (creating if needed) share `id` named `name` in `store`, using `engine` for
    /// content. Purges orphans left by a previous run. Journal records recovered by the
    /// engine are handed in with [`Fs::recover`].
    pub async fn open(
        store: Arc<dyn MetadataStore>,
        engine: Arc<Engine>,
        id: ShareId,
        name: &str,
        opts: ShareOptions,
    ) -> FsResult<Arc<Fs>> {
        let live = Live::build(name, opts)?;
        let rec = store.create_share(id, name, live.opts.root_mode).await?;
        let fs = Arc::new(Fs {
            share: id,
            name: name.to_owned(),
            incarnation: rec.incarnation,
            store,
            engine,
            live: PlRwLock::new(Arc::new(live)),
            locks: LockTable::new(),
            flush_locks: FlushLocks::new(),
            rename_lock: Mutex::new(()),
            alloc: Mutex::new(InoAlloc {
                next: rec.next_ino,
                reserved_until: rec.next_ino,
            }),
            dirty: PlMutex::new(HashMap::new()),
            opens: PlMutex::new(HashMap::new()),
            trash_admin: Mutex::new(()),
            dir_names: PlMutex::new(HashMap::new()),
            remote: PlRwLock::new(None),
        });
        fs.purge_orphans().await?;
        Ok(fs)
    }

    pub fn share_id(&self) -> ShareId {
        self.share
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options in force (a copy: they may change while serving).
    pub fn options(&self) -> ShareOptions {
        self.live.read().opts.clone()
    }

    /// Installs options already validated and compiled (see `crate::admin`).
    pub(crate) fn install_live(&self, live: Live) {
        *self.live.write() = Arc::new(live);
    }

    /// The options in force and what is compiled from them.
    pub(crate) fn live(&self) -> Arc<Live> {
        self.live.read().clone()
    }

    /// The share's chunker when it overrides the engine's.
    pub(crate) fn chunker(&self) -> Option<Chunker> {
        self.live.read().chunker
    }

    pub(crate) fn read_only(&self) -> bool {
        self.live.read().opts.read_only
    }

    /// Attaches the share's remote tier (before [`Fs::recover`], so recovered data is
    /// staged for upload too). The tier learns the engine under `binding.engine_name`.
    /// The core reaches the remote tier only through the [`TierBinding`] made here.
    pub fn attach_remote(&self, binding: RemoteBinding) {
        let b = TierBinding::new(
            binding.tier,
            &self.engine,
            &binding.engine_name,
            binding.durability,
        );
        *self.remote.write() = Some(Arc::new(b));
    }

    /// The share's remote tier binding, if any.
    pub fn remote(&self) -> Option<Arc<TierBinding>> {
        self.remote.read().clone()
    }

    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub(crate) fn key(&self, ino: Ino) -> FileKey {
        FileKey {
            share: self.share,
            ino,
        }
    }

    /// Handle of the share root.
    pub async fn root_handle(&self) -> FsResult<FileHandle> {
        self.handle_of(Ino::ROOT).await
    }

    /// Handle of an inode of this share.
    pub async fn handle_of(&self, ino: Ino) -> FsResult<FileHandle> {
        let rec = self.inode(ino).await?;
        Ok(self.handle_for(&rec))
    }

    pub(crate) fn handle_for(&self, rec: &InodeRecord) -> FileHandle {
        FileHandle {
            share: self.share,
            incarnation: self.incarnation,
            ino: rec.ino,
            generation: rec.generation,
        }
    }

    /// Validates a decoded handle against this share: `Stale` if the inode is gone or the
    /// handle belongs to another incarnation/generation.
    pub async fn resolve(&self, h: &FileHandle) -> FsResult<Ino> {
        if h.share != self.share || h.incarnation != self.incarnation {
            return Err(FsError::Stale);
        }
        match self.store.get_inode(self.share, h.ino).await? {
            Some(r) if r.generation == h.generation && (r.nlink > 0 || self.is_open(r.ino)) => {
                Ok(h.ino)
            }
            _ => Err(FsError::Stale),
        }
    }

    /// Loads an inode; a missing inode is `Stale` (callers hold a handle to it).
    pub(crate) async fn inode(&self, ino: Ino) -> FsResult<InodeRecord> {
        self.store
            .get_inode(self.share, ino)
            .await?
            .ok_or(FsError::Stale)
    }

    /// Attributes including the effect of unflushed writes (size, mtime).
    pub(crate) fn attr_of(&self, rec: &InodeRecord) -> Attr {
        let mut a = Attr::from_record(self.share, rec);
        if let Some(end) = self.engine.dirty_end(self.key(rec.ino))
            && end > a.size
        {
            a.size = end;
            a.used = end.div_ceil(4096) * 4096;
        }
        if let Some(d) = self.dirty.lock().get(&rec.ino) {
            a.change = d.change(a.change);
            if d.mtime > a.mtime {
                a.mtime = d.mtime;
            }
            if d.mtime > a.ctime {
                a.ctime = d.mtime;
            }
        }
        a
    }

    /// The change attribute of `ino` when its record's counter is `change` (see
    /// [`DirtyInfo`]).
    pub(crate) fn change_attr(&self, ino: Ino, change: u64) -> u64 {
        self.dirty
            .lock()
            .get(&ino)
            .map_or(change, |d| d.change(change))
    }

    /// Notes a write of `ino` (its data in the engine; the caller holds the file's lock):
    /// its mtime and change attribute move now, the record's at the next flush.
    pub(crate) fn note_write(&self, ino: Ino, mtime: Timestamp) {
        let mut d = self.dirty.lock();
        let e = d.entry(ino).or_insert(DirtyInfo {
            mtime,
            epoch: 0,
            pending: 0,
            base: 0,
        });
        e.mtime = mtime;
        e.epoch += 1;
        e.pending += 1;
    }

    /// Moves the pending writes of `ino` into the change counter a flush publishes, for
    /// a record whose counter is `change` (the caller holds the file's write lock):
    /// returns the counter to publish and what to undo if the commit fails. The change
    /// attribute stays where it is, or moves by one when nothing was pending.
    pub(crate) fn fold_writes(&self, ino: Ino, change: u64) -> (u64, Option<Fold>) {
        let mut d = self.dirty.lock();
        let Some(e) = d.get_mut(&ino) else {
            return (change + 1, None);
        };
        let new = change.max(e.base) + e.pending.max(1);
        let fold = Fold {
            moved: e.pending,
            base: e.base,
        };
        e.pending = 0;
        e.base = new;
        (new, Some(fold))
    }

    /// Undoes [`Fs::fold_writes`] after a failed commit.
    pub(crate) fn unfold_writes(&self, ino: Ino, fold: Option<Fold>) {
        if let (Some(f), Some(e)) = (fold, self.dirty.lock().get_mut(&ino)) {
            e.pending += f.moved;
            e.base = f.base;
        }
    }

    /// Commits `txn` durably. Chunks it takes references from are then noted with the
    /// engine as released: if no share references them any more, they are reclaimed at
    /// once instead of at the next GC (see `dittofs_blockstore`'s release).
    pub(crate) async fn commit(&self, txn: Txn) -> FsResult<()> {
        let released: Vec<dittofs_types::ContentHash> = txn
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::AdjustChunk { hash, delta, .. } if *delta < 0 => Some(*hash),
                _ => None,
            })
            .collect();
        self.store
            .commit(txn, Durability::Durable)
            .await
            .map_err(FsError::from)?;
        if !released.is_empty() {
            self.engine.note_released(released);
        }
        Ok(())
    }

    /// The one check of every change (create, write, setattr, rename, remove, link,
    /// symlink, mkdir, mknod): a read-only share is `RoFs` for everyone; a caller whose
    /// share grant is below `read-write` gets `Access` (the refusal is the caller's, not
    /// the file system's, so EACCES as for a mode that refuses). Committing data already
    /// written needs no check.
    pub(crate) fn check_writable(&self, cred: &Credentials) -> FsResult<()> {
        if self.read_only() {
            Err(FsError::RoFs)
        } else if !cred.level.may_write() {
            Err(FsError::Access)
        } else {
            Ok(())
        }
    }

    /// The one check of reading names and contents (lookup, path resolution, readdir,
    /// read, readlink): a caller whose share grant is `none` gets `Access`. Attributes
    /// (GETATTR, FSSTAT) stay readable, so a client can still mount the share.
    pub(crate) fn check_readable(&self, cred: &Credentials) -> FsResult<()> {
        if cred.level.may_read() {
            Ok(())
        } else {
            Err(FsError::Access)
        }
    }

    /// New data or names may be stored: NOSPC while a file system under the share's
    /// stores is at its reserve (see `dittofs_blockstore`'s reserve: operations that free
    /// space do not ask).
    pub(crate) fn check_room(&self) -> FsResult<()> {
        self.check_room_for(NAME_BYTES)
    }

    /// [`Fs::check_room`] for `bytes` of new data.
    pub(crate) fn check_room_for(&self, bytes: u64) -> FsResult<()> {
        Ok(self.engine.check_room(bytes)?)
    }

    /// Allocates a never-used inode number (durably reserving ranges ahead).
    pub(crate) async fn alloc_ino(&self) -> FsResult<Ino> {
        let mut a = self.alloc.lock().await;
        if a.next >= a.reserved_until {
            let until = a.next + INO_RESERVE;
            let mut t = Txn::new(self.share);
            t.op(Op::ReserveInodes { next_ino: until });
            self.commit(t).await?;
            a.reserved_until = until;
        }
        let ino = Ino(a.next);
        a.next += 1;
        Ok(ino)
    }

    pub(crate) fn new_generation() -> u32 {
        rand::random::<u32>() | 1
    }

    pub(crate) fn is_open(&self, ino: Ino) -> bool {
        self.opens.lock().get(&ino).copied().unwrap_or(0) > 0
    }

    /// Records an open of `ino` (SMB/NFSv4 opens): an unlinked file stays readable until
    /// its last close.
    pub fn open_ref(&self, ino: Ino) {
        *self.opens.lock().entry(ino).or_insert(0) += 1;
    }

    /// Drops an open; the last close of an unlinked file frees it.
    pub async fn close_ref(&self, ino: Ino) -> FsResult<()> {
        let last = {
            let mut o = self.opens.lock();
            match o.get_mut(&ino) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    o.remove(&ino);
                    true
                }
                None => false,
            }
        };
        if last {
            let _g = self.locks.write_many(&[ino]).await;
            if let Some(rec) = self.store.get_inode(self.share, ino).await?
                && rec.nlink == 0
            {
                self.destroy_locked(&rec, true).await?;
            }
        }
        Ok(())
    }

    /// Deletes an inode whose last link is gone and releases its chunk references.
    /// The caller holds the inode's write lock.
    pub(crate) async fn destroy_locked(&self, rec: &InodeRecord, was_orphan: bool) -> FsResult<()> {
        let blocks = self.store.get_blocks(self.share, rec.ino).await?;
        let mut t = Txn::new(self.share);
        t.op(Op::DeleteInode(rec.ino));
        if was_orphan {
            t.op(Op::RemoveOrphan(rec.ino));
        }
        t.adjust_refs(&blocks, &[]);
        self.commit(t).await?;
        self.engine.discard(self.key(rec.ino));
        self.dirty.lock().remove(&rec.ino);
        Ok(())
    }

    async fn purge_orphans(&self) -> FsResult<()> {
        for ino in self.store.list_orphans(self.share).await? {
            let _g = self.locks.write_many(&[ino]).await;
            match self.store.get_inode(self.share, ino).await? {
                Some(rec) if rec.nlink == 0 => self.destroy_locked(&rec, true).await?,
                _ => {
                    let mut t = Txn::new(self.share);
                    t.op(Op::RemoveOrphan(ino));
                    self.commit(t).await?;
                }
            }
        }
        Ok(())
    }

    /// Whether `ino` is `ancestor` or lies below it (walks `parent` links up to the root).
    pub(crate) async fn is_descendant(&self, ino: Ino, ancestor: Ino) -> FsResult<bool> {
        let mut cur = ino;
        // Bounded walk: a corrupt parent chain must not loop forever.
        for _ in 0..100_000 {
            if cur == ancestor {
                return Ok(true);
            }
            if cur == Ino::ROOT {
                return Ok(false);
            }
            cur = self.inode(cur).await?.parent;
        }
        Err(FsError::ServerFault(
            "directory parent chain too deep or cyclic".into(),
        ))
    }
}

/// Validates a name component for creation or lookup.
pub(crate) fn check_name(name: &[u8]) -> FsResult<()> {
    if name.is_empty() {
        return Err(FsError::Inval("empty name"));
    }
    if name.len() > NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(FsError::Inval("name contains '/' or NUL"));
    }
    Ok(())
}

pub(crate) fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// Marks `rec` changed at `now` (ctime + change counter; `mtime` too if asked).
pub(crate) fn touch(rec: &mut InodeRecord, now: Timestamp, mtime: bool) {
    rec.ctime = now;
    if mtime {
        rec.mtime = now;
    }
    rec.change += 1;
}

impl Fs {
    /// Attributes and handle of `ino` from one inode read (READDIRPLUS, LOOKUP).
    pub async fn attr_and_handle(&self, ino: Ino) -> FsResult<(Attr, FileHandle)> {
        let rec = self.inode(ino).await?;
        Ok((self.attr_of(&rec), self.handle_for(&rec)))
    }
}
