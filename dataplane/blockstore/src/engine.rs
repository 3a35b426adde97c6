//! The block engine: journaled writes, merged reads, and flushes that re-chunk dirty
//! regions into the local CAS. It never touches metadata: the caller (vfs) commits the
//! block lists it returns.
//!
//! Invariants:
//! - Per file, a journal append and the matching overlay insert happen under the file's
//!   lock, so the overlay's write ids (= journal seqs) grow in the order writes are
//!   applied. Hence a flush snapshot taken under that lock holds every write of the file
//!   with seq <= its highest seq, which makes `FlushPlan::applied_seq` a valid
//!   "everything up to here is in the blocks" watermark for the journal.
//! - Reads see the merged view: newest overlay data, else the committed block covering
//!   the byte, else zeros (hole). Journal segment files are captured under the file lock,
//!   so a segment reclaimed concurrently stays readable for reads already in flight.
//! - A flush never materializes a hole: windows stop at the end of a contiguous data run.
//!   Every chunk a `FlushPlan` references is in the CAS and its directory entry durable
//!   before the plan is returned. Blocks away from dirty ranges are reused unchanged;
//!   a window ends at the first cut point past the dirty range that coincides with the
//!   start of an unchanged base block (boundaries realigned) or at the end of the run.
//! - A [`FlushKind::KeepTails`] flush leaves a run's end-of-data tail out of its blocks
//!   (see there): that data stays in the overlay, `applied_seq` stays below its oldest
//!   write (recovery replays it), and the plan's `data_end` still covers it.
//! - Blocking work (file I/O, hashing, fsync) runs in `spawn_blocking`; no lock is held
//!   across an `.await`. Lock order: file map, then one file's state, then journal.
//!
//! Recovery protocol for the caller: `Engine::open` returns the journal records in seq
//! order. For each, skip it if its seq is <= the inode's committed `applied_seq`, else
//! [`Engine::restore`] it (in the returned order, before new writes to that file). Then,
//! for every key seen, call [`Engine::note_applied`] with the inode's `applied_seq`, or
//! [`Engine::discard`] if the inode is gone, so old segments become reclaimable.
//!
//! Flush protocol: at most one `prepare_flush` .. `finish_flush` per file at a time (the
//! caller serializes them, e.g. under its per-inode lock); writes may continue meanwhile.
//! `truncate` requires the file to be clean, so the caller flushes first.
//!
//! Journal reclaim protocol: `ids = engine.journal_reclaimable()`, then make the metadata
//! store durable (its `sync()`), then `engine.delete_journal_segments(&ids)`.

use crate::cas::LocalCas;
use crate::chunker::{Chunker, ChunkerConfig, StreamChunker};
use crate::claim::{Owner, StoreLock};
use crate::cold::ColdTier;
use crate::error::{BlockError, Result};
use crate::journal::{DEFAULT_SEGMENT_BYTES, Journal, RecoveredRecord};
use crate::overlay::{Extent, Overlay};
use crate::release::{PinGuard, Pins};
use crate::reserve::Reserve;
use crate::space::{Probe, Space};
use bytes::Bytes;
use dittofs_types::{BlockRef, ContentHash, FileKey, validate_blocks};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Engine settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    pub chunker: ChunkerConfig,
    /// Journal segment roll size in bytes.
    pub journal_segment_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            chunker: ChunkerConfig::default(),
            journal_segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// Result of [`Engine::prepare_flush`]: commit `new_blocks` (with refcount deltas and
/// `applied_seq`) in one metadata transaction, then call [`Engine::finish_flush`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlushPlan {
    pub new_blocks: Vec<BlockRef>,
    /// max(end of the last block, end of the dirty data).
    pub data_end: u64,
    /// Highest journal seq included in `new_blocks`.
    pub applied_seq: u64,
    /// Highest overlay write id included (equal to `applied_seq` in this engine).
    pub max_write_id: u64,
    /// Chunks newly written to the CAS (dedup hits excluded).
    pub chunks_written: usize,
    pub bytes_written: u64,
    /// Ranges left out of `new_blocks` by a [`FlushKind::KeepTails`] flush (sorted): their
    /// data stays dirty, and `applied_seq` stays below the oldest write in them.
    pub kept: Vec<(u64, u64)>,
    /// The chunks this flush stored, pinned against prompt reclaim until the plan is
    /// dropped: keep the plan until its metadata is committed ([`crate::release`]).
    pub pins: Arc<PinGuard>,
}

/// What a flush cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushKind {
    /// Everything dirty becomes chunks (the file is idle, synced, truncated, or the server
    /// stops).
    Final,
    /// The file is still being written: a data run's last chunk that only the end of the
    /// data cut (shorter than the maximum, all of it dirty) is not cut. More data would
    /// cut it elsewhere, so cutting it now would only make garbage; its bytes stay in the
    /// overlay and the journal until a later flush. Every chunk this flush does cut sits
    /// at a content-defined (or maximum-size) boundary that later writes past the run's
    /// end cannot move.
    KeepTails,
}

/// Disk usage of the store's file system plus the store's own footprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskStats {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub avail_bytes: u64,
    pub total_files: u64,
    pub free_files: u64,
    /// Bytes in the local CAS.
    pub cas_bytes: u64,
    /// Bytes in journal segments.
    pub journal_bytes: u64,
}

#[derive(Debug)]
struct FileState {
    overlay: Overlay,
    last_write: Instant,
    /// Writers of this file waiting in [`Engine::wait_for_space`]. A write that has
    /// arrived but waits for room is activity: while any waits, the file is not idle
    /// (an idle file gets a final flush, whose end-of-data tail chunk would be uploaded
    /// and become garbage the moment the waiting write lands).
    waiters: u32,
    /// The overlay's highest write id when a [`FlushKind::KeepTails`] flush found nothing
    /// to cut but tails (0: none): until a newer write arrives, another such flush would
    /// find the same.
    kept_at: u64,
    /// Highest write id a finished flush covered. After a flush that kept tails, the
    /// overlay's own highest id can be lower (the newest writes were cut, older ones
    /// kept); the next flush's watermark must still pass this one.
    flushed_max: u64,
}

/// Counts one waiting writer on a file for as long as it lives (so a cancelled wait
/// cannot leave the count raised).
struct Waiter(Arc<Mutex<FileState>>);

impl Waiter {
    fn new(state: Arc<Mutex<FileState>>) -> Waiter {
        state.lock().waiters += 1;
        Waiter(state)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.waiters = st.waiters.saturating_sub(1);
    }
}

/// An overlay extent with the journal segment holding its bytes.
type Piece = (Extent, Arc<File>);

/// How [`Inner::fill_with`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadMode {
    /// From disk if need be (a blocking thread).
    Blocking,
    /// Only what the page cache holds (`RWF_NOWAIT`): never waits for the disk.
    CachedOnly,
}

/// Largest read tried from the page cache on the calling (async) thread.
const CACHED_READ_MAX: u64 = 256 * 1024;

#[derive(Debug)]
struct Inner {
    /// Held while the engine lives: no other process opens this store ([`crate::claim`]).
    _lock: StoreLock,
    root: PathBuf,
    cas: LocalCas,
    journal: Journal,
    chunker: Chunker,
    files: Mutex<HashMap<FileKey, Arc<Mutex<FileState>>>>,
    /// The soft cap of the local tier (CAS + journal) and writer backpressure; see
    /// [`Engine::wait_for_space`].
    space: Space,
    /// Free space kept on the file systems under the store ([`crate::reserve`]).
    reserve: Reserve,
    /// Chunks held by plans, and chunks that lost references ([`crate::release`]).
    pins: Arc<Pins>,
}

/// A `[start, end)` range of file offsets.
type Range = (u64, u64);

/// What [`Inner::rechunk`] made of a flush snapshot.
struct Rechunked {
    blocks: Vec<BlockRef>,
    /// See [`FlushPlan::kept`].
    kept: Vec<(u64, u64)>,
    /// Chunks newly stored (dedup hits excluded) and their bytes.
    written: usize,
    written_bytes: u64,
    /// Every chunk stored (new or deduplicated), pinned.
    pins: PinGuard,
}

/// A stretch of a read that lies in a chunk absent from the local CAS.
#[derive(Clone, Copy, Debug)]
struct Missing {
    block: BlockRef,
    /// Offset inside the chunk.
    off: u64,
    /// Position in the read buffer.
    pos: usize,
    len: usize,
}

/// How many times a flush or truncate re-fetches an evicted base chunk before giving up
/// (each retry follows a fetch into the local CAS; the bound only stops a livelock with
/// an evictor under extreme pressure).
const MAX_REFETCH: usize = 64;

/// An active journal segment this large whose records are all applied is closed at the
/// next reclaim, so its space comes back without waiting for it to fill.
const IDLE_ROLL_BYTES: u64 = 1 << 20;

/// The block engine (cheap to share; all methods take `&self`).
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BlockError::Task(e.to_string()))?
}

/// The lowest write id of the pieces that intersect `ranges` (sorted, disjoint).
fn oldest_write_in(pieces: &[Piece], ranges: &[Range]) -> Option<u64> {
    pieces
        .iter()
        .filter(|(e, _)| {
            let k = ranges.partition_point(|r| r.1 <= e.offset);
            ranges.get(k).is_some_and(|r| r.0 < e.end())
        })
        .map(|(e, _)| e.write_id)
        .min()
}

/// Merges sorted-by-start intervals that overlap or touch.
fn merge_intervals(sorted: impl IntoIterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in sorted {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

impl Engine {
    /// Opens the CAS and the journal under `root`. Returns the journal's records for the
    /// caller's recovery (see the module documentation).
    /// Fails with [`BlockError::InUse`] while another engine (in any process) has the
    /// store open.
    pub fn open(root: &Path, cfg: EngineConfig) -> Result<(Engine, Vec<RecoveredRecord>)> {
        let chunker = Chunker::new(cfg.chunker)?;
        let lock = crate::claim::lock(root)?;
        let cas = LocalCas::open(root)?;
        // A segment is at most a sixteenth of the file system (at least 1 MiB): on a small
        // disk, a segment that takes long to fill keeps the space of data long chunked.
        let segment = match crate::reserve::fs_space(root) {
            Ok((_, total)) if total > 0 => cfg.journal_segment_bytes.min((total / 16).max(1 << 20)),
            _ => cfg.journal_segment_bytes,
        };
        let (journal, records) = Journal::open(root, segment)?;
        let inner = Inner {
            _lock: lock,
            root: root.to_path_buf(),
            cas,
            journal,
            chunker,
            files: Mutex::new(HashMap::new()),
            space: Space::default(),
            reserve: Reserve::new(root),
            pins: Arc::new(Pins::default()),
        };
        Ok((
            Engine {
                inner: Arc::new(inner),
            },
            records,
        ))
    }

    /// Checks that this store belongs to `owner`, claiming it if it belongs to nobody yet;
    /// [`BlockError::InUse`] if another server owns it (see [`crate::claim`]).
    pub fn claim(&self, owner: &Owner) -> Result<()> {
        crate::claim::check_owner(&self.inner.root, owner)
    }

    pub fn cas(&self) -> &LocalCas {
        &self.inner.cas
    }

    /// The local copy of chunk `hash`, read whole and verified (on a blocking thread).
    pub async fn read_local_chunk(&self, hash: ContentHash) -> Result<Vec<u8>> {
        let inner = self.inner.clone();
        blocking(move || inner.cas.read_chunk(&hash)).await
    }

    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    pub fn chunker(&self) -> Chunker {
        self.inner.chunker
    }

    /// Journals `data` at `offset` and makes it visible to reads. With `durable`, returns
    /// only once the journal is fsynced. Returns the write's seq (0 for empty data).
    pub async fn write(
        &self,
        key: FileKey,
        offset: u64,
        data: Bytes,
        durable: bool,
    ) -> Result<u64> {
        if data.is_empty() {
            return Ok(0);
        }
        if offset.checked_add(data.len() as u64).is_none() {
            return Err(BlockError::Invalid(format!(
                "write of {} bytes at {offset} overflows",
                data.len()
            )));
        }
        let inner = self.inner.clone();
        let seq = blocking(move || {
            let state = inner.file(key);
            let mut st = state.lock();
            let loc = inner.journal.append(key, offset, &data)?;
            st.overlay.insert(offset, loc, loc.seq);
            st.last_write = Instant::now();
            Ok(loc.seq)
        })
        .await?;
        if durable {
            let inner = self.inner.clone();
            blocking(move || inner.journal.sync()).await?;
        }
        Ok(seq)
    }

    /// Re-inserts a replayed record into the overlay (see the recovery protocol).
    pub fn restore(&self, key: FileKey, rec: &RecoveredRecord) {
        let state = self.inner.file(key);
        let mut st = state.lock();
        st.overlay.insert(rec.offset, rec.loc, rec.seq);
        st.last_write = Instant::now();
    }

    /// Makes every write so far and every chunk put so far durable.
    pub async fn commit_durable(&self) -> Result<()> {
        let inner = self.inner.clone();
        blocking(move || {
            inner.journal.sync()?;
            inner.cas.sync_dirs()
        })
        .await
    }

    /// End of the dirty data of `key`, `None` if it has none.
    pub fn dirty_end(&self, key: FileKey) -> Option<u64> {
        let state = self.inner.existing(key)?;
        let st = state.lock();
        (!st.overlay.is_empty()).then(|| st.overlay.end())
    }

    pub fn dirty_bytes(&self, key: FileKey) -> u64 {
        self.inner
            .existing(key)
            .map_or(0, |s| s.lock().overlay.dirty_bytes())
    }

    pub fn is_dirty(&self, key: FileKey) -> bool {
        self.dirty_bytes(key) > 0
    }

    /// Every file with dirty data: (key, dirty bytes, time of its last write; now while a
    /// writer of it waits for space).
    pub fn dirty_files(&self) -> Vec<(FileKey, u64, Instant)> {
        let files: Vec<_> = self
            .inner
            .files
            .lock()
            .iter()
            .map(|(k, s)| (*k, s.clone()))
            .collect();
        files
            .into_iter()
            .filter_map(|(k, s)| {
                let st = s.lock();
                let last = if st.waiters > 0 {
                    Instant::now()
                } else {
                    st.last_write
                };
                (!st.overlay.is_empty()).then(|| (k, st.overlay.dirty_bytes(), last))
            })
            .collect()
    }

    /// Reads `min(len, size - offset)` bytes at `offset` of the merged view (dirty data
    /// over `blocks`, holes as zeros); `size` is the logical size the caller reports.
    /// Block data is read with ranged CAS reads (a 4 KiB read preads 4 KiB).
    pub async fn read(
        &self,
        key: FileKey,
        blocks: &[BlockRef],
        size: u64,
        offset: u64,
        len: u32,
    ) -> Result<Bytes> {
        self.read_tiered(key, blocks, size, offset, len, None).await
    }

    /// [`Engine::read`] with a colder tier: parts of chunks that are not in the local
    /// CAS (evicted) are read from `tier` (verified ranged reads), which also hears of
    /// every read (readahead for sequential readers). Without a tier a missing chunk is
    /// an error.
    pub async fn read_tiered(
        &self,
        key: FileKey,
        blocks: &[BlockRef],
        size: u64,
        offset: u64,
        len: u32,
        tier: Option<&dyn ColdTier>,
    ) -> Result<Bytes> {
        if offset >= size || len == 0 {
            return Ok(Bytes::new());
        }
        let n = u64::from(len).min(size - offset);
        let end = offset + n;
        let pieces = match self.inner.existing(key) {
            Some(state) => {
                let st = state.lock();
                self.inner.pieces(&st.overlay.extents_in(offset, end))?
            }
            None => Vec::new(),
        };
        let first = blocks.partition_point(|b| b.end() <= offset);
        let last = blocks.partition_point(|b| b.offset < end);
        let window = blocks[first..last.max(first)].to_vec();
        // A small read whose data is all in the page cache is served on this thread: the
        // hop to a blocking thread and back costs more than the copy. Anything else (a
        // read that would wait for the disk, a chunk evicted to the remote) goes to the
        // blocking pool.
        let mut cached = None;
        if n <= CACHED_READ_MAX {
            let mut buf = vec![0u8; n as usize];
            if self.inner.fill_with(
                &window,
                &pieces,
                offset,
                &mut buf,
                None,
                ReadMode::CachedOnly,
            )? {
                cached = Some(buf);
            }
        }
        let (mut buf, missing) = match cached {
            Some(buf) => (buf, Vec::new()),
            None => {
                let inner = self.inner.clone();
                let allow_missing = tier.is_some();
                blocking(move || {
                    let mut buf = vec![0u8; n as usize];
                    let mut missing = Vec::new();
                    let m = allow_missing.then_some(&mut missing);
                    inner.fill(&window, &pieces, offset, &mut buf, m)?;
                    Ok((buf, missing))
                })
                .await?
            }
        };
        if let Some(tier) = tier {
            for m in &missing {
                let data = tier.read_missing(&m.block, m.off, m.len as u64).await?;
                if data.len() != m.len {
                    return Err(BlockError::Corrupt { hash: m.block.hash });
                }
                buf[m.pos..m.pos + m.len].copy_from_slice(&data);
            }
            tier.after_read(key, blocks, offset, end);
        }
        Ok(Bytes::from(buf))
    }

    /// Snapshots all dirty data of `key`, re-chunks the dirty windows against `blocks`
    /// (the committed list) and stores the new chunks durably. `None` if not dirty.
    pub async fn prepare_flush(
        &self,
        key: FileKey,
        blocks: &[BlockRef],
    ) -> Result<Option<FlushPlan>> {
        self.prepare_flush_with(key, blocks, None, None, FlushKind::Final)
            .await
    }

    /// [`Engine::prepare_flush`] with a per-share chunker (`None`: the engine's), colder
    /// tier (a base chunk the re-chunking needs that was evicted is fetched back from
    /// `tier` first) and kind. `None` also when a [`FlushKind::KeepTails`] flush would
    /// change nothing.
    pub async fn prepare_flush_with(
        &self,
        key: FileKey,
        blocks: &[BlockRef],
        chunker: Option<Chunker>,
        tier: Option<&dyn ColdTier>,
        kind: FlushKind,
    ) -> Result<Option<FlushPlan>> {
        let mut attempts = 0;
        loop {
            match self.prepare_flush_once(key, blocks, chunker, kind).await {
                Err(BlockError::NotFound { hash }) if tier.is_some() && attempts < MAX_REFETCH => {
                    attempts += 1;
                    self.refetch(tier, blocks, hash).await?;
                }
                other => return other,
            }
        }
    }

    /// Brings an evicted chunk of `blocks` back into the local CAS from `tier`.
    async fn refetch(
        &self,
        tier: Option<&dyn ColdTier>,
        blocks: &[BlockRef],
        hash: ContentHash,
    ) -> Result<()> {
        let (Some(tier), Some(b)) = (tier, blocks.iter().find(|b| b.hash == hash)) else {
            return Err(BlockError::NotFound { hash });
        };
        tier.fetch_missing(b).await
    }

    async fn prepare_flush_once(
        &self,
        key: FileKey,
        blocks: &[BlockRef],
        chunker: Option<Chunker>,
        kind: FlushKind,
    ) -> Result<Option<FlushPlan>> {
        let chunker = chunker.unwrap_or(self.inner.chunker);
        validate_blocks(blocks).map_err(|e| BlockError::Invalid(e.to_string()))?;
        let Some(state) = self.inner.existing(key) else {
            return Ok(None);
        };
        let (snap, max_write_id) = {
            let st = state.lock();
            let newest = st.overlay.max_write_id();
            if st.overlay.is_empty() || (kind == FlushKind::KeepTails && st.kept_at == newest) {
                return Ok(None);
            }
            let max = newest.max(st.flushed_max);
            (self.inner.pieces(&st.overlay.snapshot())?, max)
        };
        let blocks = blocks.to_vec();
        let inner = self.inner.clone();
        let plan = blocking(move || {
            // The seqs this plan marks as applied must be durable in the journal: seqs
            // lost in a crash are reused, and a reused seq <= applied_seq would be
            // skipped by recovery.
            inner.journal.sync()?;
            let keep_tails = kind == FlushKind::KeepTails;
            let cut = inner.rechunk(&blocks, &snap, chunker, keep_tails)?;
            inner.cas.sync_dirs()?;
            if keep_tails && cut.blocks == blocks {
                return Ok(None);
            }
            let dirty_end = snap.last().map_or(0, |(e, _)| e.end());
            let base_end = blocks.last().map_or(0, BlockRef::end);
            // Recovery replays every record above `applied_seq`: that must include the
            // writes whose data stays in the overlay.
            let oldest_kept = oldest_write_in(&snap, &cut.kept);
            Ok(Some(FlushPlan {
                new_blocks: cut.blocks,
                data_end: dirty_end.max(base_end),
                applied_seq: oldest_kept.map_or(max_write_id, |w| w - 1),
                max_write_id,
                chunks_written: cut.written,
                bytes_written: cut.written_bytes,
                kept: cut.kept,
                pins: Arc::new(cut.pins),
            }))
        })
        .await?;
        if plan.is_none() {
            // Nothing but tails: skip such flushes until the file is written again.
            let mut st = state.lock();
            if st.overlay.max_write_id() <= max_write_id {
                st.kept_at = st.overlay.max_write_id();
            }
            drop(st);
            self.inner.space.wake();
        }
        Ok(plan)
    }

    /// After the caller committed `plan`: drops the flushed dirty data and tells the
    /// journal that `key` is applied up to `plan.applied_seq`.
    pub fn finish_flush(&self, key: FileKey, plan: &FlushPlan) {
        if let Some(state) = self.inner.existing(key) {
            let mut st = state.lock();
            st.overlay.prune_except(plan.max_write_id, &plan.kept);
            st.flushed_max = st.flushed_max.max(plan.max_write_id);
            let left = st.overlay.max_write_id();
            if !plan.kept.is_empty() && left <= plan.max_write_id {
                // Only the kept tails are left: nothing more to cut until the next write.
                st.kept_at = left;
            }
        }
        self.inner.journal.note_applied(key, plan.applied_seq);
        self.inner.drop_if_clean(key);
        self.inner.space.wake();
    }

    /// Cuts `blocks` at `new_size`. The file must have no dirty data: the caller flushes
    /// first, under the lock that keeps writers out (this signature carries no key, so
    /// the engine cannot check it). The ref straddling `new_size` is replaced by the
    /// re-chunked prefix. Growing keeps the blocks (the new tail is a hole).
    pub async fn truncate(&self, blocks: &[BlockRef], new_size: u64) -> Result<Vec<BlockRef>> {
        Ok(self.truncate_with(blocks, new_size, None, None).await?.0)
    }

    /// [`Engine::truncate`] with a per-share chunker (`None`: the engine's) and colder
    /// tier (an evicted chunk straddling the new end is fetched back first). The guard
    /// pins the chunks stored for the new end: keep it until the new list is committed.
    pub async fn truncate_with(
        &self,
        blocks: &[BlockRef],
        new_size: u64,
        chunker: Option<Chunker>,
        tier: Option<&dyn ColdTier>,
    ) -> Result<(Vec<BlockRef>, PinGuard)> {
        let chunker = chunker.unwrap_or(self.inner.chunker);
        let k = blocks.partition_point(|b| b.end() <= new_size);
        let mut out = blocks[..k].to_vec();
        let pins = self.inner.pins.guard();
        let Some(&straddle) = blocks.get(k).filter(|b| b.offset < new_size) else {
            return Ok((out, pins));
        };
        if tier.is_some() && !self.inner.cas.contains(&straddle.hash)? {
            self.refetch(tier, blocks, straddle.hash).await?;
        }
        let inner = self.inner.clone();
        let (tail, pins) = blocking(move || {
            let data = inner.cas.read_chunk(&straddle.hash)?;
            let keep = (new_size - straddle.offset) as usize;
            let prefix = data.get(..keep).ok_or(BlockError::Corrupt {
                hash: straddle.hash,
            })?;
            let mut refs = Vec::new();
            for (o, n) in chunker.chunk(prefix) {
                let piece = &prefix[o..o + n];
                let hash = ContentHash::of(piece);
                pins.pin(hash);
                inner.cas.put(&hash, piece)?;
                refs.push(BlockRef {
                    hash,
                    offset: straddle.offset + o as u64,
                    size: n as u32,
                });
            }
            inner.cas.sync_dirs()?;
            Ok((refs, pins))
        })
        .await?;
        out.extend(tail);
        Ok((out, pins))
    }

    /// Chunks that lost references in a metadata commit (their refcount may be zero now):
    /// candidates for prompt reclaim ([`crate::release`]).
    pub fn note_released(&self, hashes: impl IntoIterator<Item = ContentHash>) {
        self.inner.pins.note_released(hashes);
    }

    /// The chunks noted as released since the last call, and the epoch to pass to
    /// [`Engine::reclaim`]: take it before reading their refcounts. One reclaimer per
    /// engine.
    pub fn take_released(&self) -> (u64, Vec<ContentHash>) {
        self.inner.pins.take_released()
    }

    /// Deletes `hashes` from the local CAS, which the caller found unreferenced in every
    /// share on this store after taking `epoch`, except those a flush or truncate pinned
    /// since (they are noted again, to be looked at next time). Returns the chunks and
    /// bytes freed.
    pub async fn reclaim(&self, hashes: Vec<ContentHash>, epoch: u64) -> Result<(usize, u64)> {
        let inner = self.inner.clone();
        let freed = blocking(move || {
            let (mut n, mut bytes, mut kept) = (0usize, 0u64, Vec::new());
            for h in hashes {
                match inner
                    .cas
                    .remove_if(&h, || inner.pins.may_delete(&h, epoch))?
                {
                    Some(len) => {
                        n += 1;
                        bytes += len;
                    }
                    None if inner.cas.contains(&h)? => kept.push(h),
                    None => {}
                }
            }
            inner.pins.note_released(kept);
            if n > 0 {
                inner.cas.sync_dirs()?;
            }
            Ok((n, bytes))
        })
        .await?;
        if freed.0 > 0 {
            self.inner.space.wake();
        }
        Ok(freed)
    }

    /// Whether `key` has dirty data newer than `max_write_id` (i.e. the file will still be
    /// dirty after `finish_flush` of a plan with that `max_write_id`).
    pub fn has_writes_after(&self, key: FileKey, max_write_id: u64) -> bool {
        self.inner
            .existing(key)
            .is_some_and(|s| s.lock().overlay.max_write_id() > max_write_id)
    }

    /// The file is deleted: drops its dirty data and its journal claims.
    pub fn discard(&self, key: FileKey) {
        if let Some(state) = self.inner.existing(key) {
            state.lock().overlay = Overlay::new();
        }
        self.inner.journal.forget(key);
        self.inner.drop_if_clean(key);
    }

    /// The block list of a copy (the CAS makes copies free; the caller adds refcounts).
    pub fn copy_payload(&self, blocks: &[BlockRef]) -> Vec<BlockRef> {
        blocks.to_vec()
    }

    /// See [`Journal::note_applied`] (used after recovery).
    pub fn note_applied(&self, key: FileKey, applied_seq: u64) {
        self.inner.journal.note_applied(key, applied_seq);
    }

    /// Journal segments that may be deleted once the caller's metadata is durable.
    pub fn journal_reclaimable(&self) -> Vec<u64> {
        self.inner.journal.reclaimable()
    }

    /// Deletes journal segments (after the caller made its metadata durable).
    pub async fn delete_journal_segments(&self, ids: &[u64]) -> Result<()> {
        let inner = self.inner.clone();
        let ids = ids.to_vec();
        blocking(move || inner.delete_journal_segments(&ids)).await
    }

    pub fn journal_bytes(&self) -> u64 {
        self.inner.journal.bytes_total()
    }

    /// Deletes every reclaimable journal segment; returns how many. Precondition: every
    /// `note_applied`/`finish_flush` so far reflects metadata that is already durable
    /// (call the metadata store's `sync()` first, and make sure no flush commit that is
    /// not yet durable can call `finish_flush` in between; durable commits satisfy this).
    pub fn reclaim_journal(&self) -> Result<usize> {
        self.inner.journal.roll_if_applied(IDLE_ROLL_BYTES)?;
        let ids = self.inner.journal.reclaimable();
        self.inner.delete_journal_segments(&ids)?;
        Ok(ids.len())
    }

    /// Sets the soft cap of the local tier in bytes (0 = none).
    pub fn set_capacity(&self, bytes: u64) {
        self.inner.space.set_capacity(bytes);
    }

    pub fn capacity(&self) -> u64 {
        self.inner.space.capacity()
    }

    /// Bytes the local tier holds (CAS + journal).
    pub fn used_bytes(&self) -> u64 {
        self.inner.cas.total_bytes() + self.inner.journal.bytes_total()
    }

    /// Whether the local tier is above its cap.
    pub fn over_capacity(&self) -> bool {
        let cap = self.capacity();
        cap > 0 && self.used_bytes() > cap
    }

    /// Backpressure for a writer of `key`: while the local tier is over its cap, waits
    /// (at most `max_wait`) for uploads and eviction to make room, but only for those:
    /// see [`crate::space`] for what is waited on and why no wait depends on a writer.
    /// Meanwhile `key` counts as being written ([`Engine::writers_waiting`]).
    ///
    /// Returns `Ok` when the write may proceed (room was made, nothing more can be made
    /// by waiting, or the bound passed while uploads progress: the cap is soft), and
    /// [`BlockError::NoSpace`] only when the tier is full of data that a failing remote
    /// has not taken for the whole bound.
    pub async fn wait_for_space(&self, key: FileKey, max_wait: Duration) -> Result<()> {
        if !self.over_capacity() {
            return Ok(());
        }
        let _waiter = Waiter::new(self.inner.file(key));
        let inner = &self.inner;
        let probe = || Probe {
            used: inner.cas.total_bytes() + inner.journal.bytes_total(),
            journal: inner.journal.bytes_total(),
            cas_changes: inner.cas.changes(),
            flush_work: inner.flush_work(),
        };
        inner.space.wait(probe, max_wait).await
    }

    /// Whether a writer of `key` is waiting in [`Engine::wait_for_space`].
    pub fn writers_waiting(&self, key: FileKey) -> bool {
        self.inner
            .existing(key)
            .is_some_and(|s| s.lock().waiters > 0)
    }

    /// Wakes writers waiting in [`Engine::wait_for_space`] (space was freed).
    pub fn notify_space(&self) {
        self.inner.space.wake();
    }

    /// The local tier's space accounting (for the remote tier and the evictor).
    pub(crate) fn space(&self) -> &Space {
        &self.inner.space
    }

    /// Space of the file system holding the store (statvfs of its root).
    // The statvfs field types differ between platforms (u32 on macOS).
    #[allow(clippy::unnecessary_cast)]
    pub fn disk_stats(&self) -> Result<DiskStats> {
        let st = crate::reserve::statvfs(&self.inner.root)?;
        let frsize = st.f_frsize as u64;
        Ok(DiskStats {
            total_bytes: st.f_blocks as u64 * frsize,
            free_bytes: st.f_bfree as u64 * frsize,
            avail_bytes: st.f_bavail as u64 * frsize,
            total_files: st.f_files as u64,
            free_files: st.f_ffree as u64,
            cas_bytes: self.inner.cas.total_bytes(),
            journal_bytes: self.inner.journal.bytes_total(),
        })
    }

    /// Whether `need` bytes of new data (0 for a name) may be stored:
    /// [`BlockError::NoSpace`] while a file system under the store is at its reserve
    /// ([`crate::reserve`]). Operations that free space (deletes, renames, truncates) do
    /// not ask.
    pub fn check_room(&self, need: u64) -> Result<()> {
        self.inner.reserve.check(need)
    }

    /// Keeps the reserve on the file system of `path` too (a metadata store's directory).
    pub fn guard_path(&self, path: &Path) {
        self.inner.reserve.add_path(path);
    }
}

impl Inner {
    /// Deletes journal segments; journal bytes count against the local tier's cap, so
    /// writers waiting for space are woken.
    fn delete_journal_segments(&self, ids: &[u64]) -> Result<()> {
        self.journal.delete_segments(ids)?;
        if !ids.is_empty() {
            self.space.wake();
        }
        Ok(())
    }

    /// Whether the flusher has journal to turn into chunks (a dirty file not yet reduced
    /// to the tails a [`FlushKind::KeepTails`] flush leaves) or segments to reclaim.
    fn flush_work(&self) -> bool {
        let files: Vec<_> = self.files.lock().values().cloned().collect();
        let unflushed = files.iter().any(|s| {
            let st = s.lock();
            !st.overlay.is_empty() && st.kept_at != st.overlay.max_write_id()
        });
        unflushed || !self.journal.reclaimable().is_empty()
    }

    fn file(&self, key: FileKey) -> Arc<Mutex<FileState>> {
        self.files
            .lock()
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Mutex::new(FileState {
                    overlay: Overlay::new(),
                    last_write: Instant::now(),
                    waiters: 0,
                    kept_at: 0,
                    flushed_max: 0,
                }))
            })
            .clone()
    }

    fn existing(&self, key: FileKey) -> Option<Arc<Mutex<FileState>>> {
        self.files.lock().get(&key).cloned()
    }

    /// Forgets a clean file's state unless someone holds it (who could be about to
    /// insert: only the map hands out new references, and we hold the map lock).
    fn drop_if_clean(&self, key: FileKey) {
        let mut files = self.files.lock();
        if let Some(s) = files.get(&key)
            && Arc::strong_count(s) == 1
            && s.lock().overlay.is_empty()
        {
            files.remove(&key);
        }
    }

    fn pieces(&self, extents: &[Extent]) -> Result<Vec<Piece>> {
        extents
            .iter()
            .map(|e| {
                self.journal
                    .segment_file(e.loc.segment)
                    .map(|f| (*e, f))
                    .ok_or_else(|| {
                        BlockError::Invalid(format!("journal segment {} is gone", e.loc.segment))
                    })
            })
            .collect()
    }

    /// Fills `buf` with the merged view at `start`: `pieces` (sorted, non-overlapping)
    /// over `blocks`, zeros in holes. With `missing`, parts of chunks absent from the CAS
    /// are recorded there (left as zeros) instead of failing the read.
    fn fill(
        &self,
        blocks: &[BlockRef],
        pieces: &[Piece],
        start: u64,
        buf: &mut [u8],
        missing: Option<&mut Vec<Missing>>,
    ) -> Result<()> {
        self.fill_with(blocks, pieces, start, buf, missing, ReadMode::Blocking)
            .map(|_| ())
    }

    /// [`Inner::fill`] in either [`ReadMode`]. Returns false only in
    /// [`ReadMode::CachedOnly`], when some of the data is not in the page cache (then
    /// `buf` is unspecified and the caller reads again in blocking mode).
    fn fill_with(
        &self,
        blocks: &[BlockRef],
        pieces: &[Piece],
        start: u64,
        buf: &mut [u8],
        mut missing: Option<&mut Vec<Missing>>,
        mode: ReadMode,
    ) -> Result<bool> {
        let end = start + buf.len() as u64;
        let mut pos = start;
        let first = pieces.partition_point(|(e, _)| e.end() <= start);
        for (e, f) in pieces[first..].iter().take_while(|(e, _)| e.offset < end) {
            let e = e.slice(e.offset.max(start), e.end().min(end));
            if e.offset > pos {
                let lo = (pos - start) as usize;
                let gap = &mut buf[lo..(e.offset - start) as usize];
                if !self.fill_blocks(blocks, pos, gap, lo, missing.as_deref_mut(), mode)? {
                    return Ok(false);
                }
            }
            let dst = &mut buf[(e.offset - start) as usize..(e.end() - start) as usize];
            let io = |source| BlockError::Io {
                path: format!("journal segment {}", e.loc.segment).into(),
                source,
            };
            match mode {
                ReadMode::Blocking => f.read_exact_at(dst, e.loc.data_pos).map_err(io)?,
                ReadMode::CachedOnly => {
                    if !crate::cas::pread_cached(f, dst, e.loc.data_pos).map_err(io)? {
                        return Ok(false);
                    }
                }
            }
            pos = e.end();
        }
        if pos < end {
            let lo = (pos - start) as usize;
            return self.fill_blocks(blocks, pos, &mut buf[lo..], lo, missing, mode);
        }
        Ok(true)
    }

    /// Fills `buf` from the blocks covering `[start, start + len)`, zeros elsewhere.
    /// `base` is the position of `buf` inside the whole read buffer (for `missing`).
    /// False only in [`ReadMode::CachedOnly`], when a chunk range is not cached.
    fn fill_blocks(
        &self,
        blocks: &[BlockRef],
        start: u64,
        buf: &mut [u8],
        base: usize,
        mut missing: Option<&mut Vec<Missing>>,
        mode: ReadMode,
    ) -> Result<bool> {
        let end = start + buf.len() as u64;
        let mut pos = start;
        let mut i = blocks.partition_point(|b| b.end() <= start);
        while pos < end {
            let Some(b) = blocks.get(i).filter(|b| b.offset < end) else {
                buf[(pos - start) as usize..].fill(0);
                break;
            };
            if b.offset > pos {
                buf[(pos - start) as usize..(b.offset - start) as usize].fill(0);
                pos = b.offset;
            }
            let upto = end.min(b.end());
            let dst = &mut buf[(pos - start) as usize..(upto - start) as usize];
            if mode == ReadMode::CachedOnly {
                if !self.cas.read_at_cached(&b.hash, pos - b.offset, dst)? {
                    return Ok(false);
                }
                pos = upto;
                i += 1;
                continue;
            }
            match self.cas.read_at(&b.hash, pos - b.offset, dst) {
                Ok(n) if n == dst.len() => {}
                Ok(_) => return Err(BlockError::Corrupt { hash: b.hash }),
                Err(BlockError::NotFound { .. }) if missing.is_some() => {
                    if let Some(m) = missing.as_deref_mut() {
                        m.push(Missing {
                            block: *b,
                            off: pos - b.offset,
                            pos: base + (pos - start) as usize,
                            len: dst.len(),
                        });
                    }
                }
                Err(e) => return Err(e),
            }
            pos = upto;
            i += 1;
        }
        Ok(true)
    }

    /// The re-chunk algorithm (see the module invariants); with `keep_tails`, see
    /// [`FlushKind::KeepTails`]. Cutting runs on this thread; hashing and storing the
    /// chunks on a helper thread (the two overlap).
    fn rechunk(
        &self,
        blocks: &[BlockRef],
        snap: &[Piece],
        chunker: Chunker,
        keep_tails: bool,
    ) -> Result<Rechunked> {
        let pins = self.pins.guard();
        let pins_ref = &pins;
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(2);
            let store = s.spawn(move || {
                let mut done = Vec::new();
                for (idx, data) in rx {
                    let hash = ContentHash::of(&data);
                    pins_ref.pin(hash);
                    let new = self.cas.put(&hash, &data)?;
                    done.push((idx, hash, new.then_some(data.len() as u64)));
                }
                Ok::<_, BlockError>(done)
            });
            let cut = self.cut_windows(blocks, snap, chunker, keep_tails, &tx);
            drop(tx);
            let stored = store
                .join()
                .map_err(|_| BlockError::Task("chunk store thread panicked".into()))?;
            // A failed store (a full disk) stops the cutter too: report its cause.
            let stored = stored?;
            let (mut out, kept) = cut?;
            let (mut written, mut written_bytes) = (0usize, 0u64);
            for (idx, hash, new) in stored {
                out[idx].hash = hash;
                if let Some(n) = new {
                    written += 1;
                    written_bytes += n;
                }
            }
            Ok((out, kept, written, written_bytes))
        })
        .map(|(blocks, kept, written, written_bytes)| Rechunked {
            blocks,
            kept,
            written,
            written_bytes,
            pins,
        })
    }

    /// Computes the new block list; new chunks get a placeholder hash and are sent with
    /// their index in the list to `store`. Also returns the tails left dirty (only with
    /// `keep_tails`).
    fn cut_windows(
        &self,
        blocks: &[BlockRef],
        snap: &[Piece],
        chunker: Chunker,
        keep_tails: bool,
        store: &mpsc::SyncSender<(usize, Vec<u8>)>,
    ) -> Result<(Vec<BlockRef>, Vec<Range>)> {
        let dirty = merge_intervals(snap.iter().map(|(e, _)| (e.offset, e.end())));
        let mut all: Vec<(u64, u64)> = blocks
            .iter()
            .map(|b| (b.offset, b.end()))
            .chain(dirty.iter().copied())
            .collect();
        all.sort_unstable();
        let runs = merge_intervals(all);
        // An old block starting at `at` that no remaining dirty interval touches.
        let unchanged_start = |at: u64, rest: &[(u64, u64)]| {
            let k = blocks.partition_point(|b| b.offset < at);
            blocks
                .get(k)
                .is_some_and(|b| b.offset == at && rest.first().is_none_or(|d| d.0 >= b.end()))
        };
        let max = chunker.config().max as usize;
        // A run's last chunk that only the end of the data cut, all of it dirty.
        let is_tail = |co: u64, n: usize, run_end: u64| {
            let d = dirty.get(dirty.partition_point(|d| d.1 <= co));
            keep_tails
                && co + n as u64 == run_end
                && n < max
                && d.is_some_and(|d| d.0 <= co && d.1 >= run_end)
        };
        // The feed buffer never needs more than one data run (a window starts inside a run
        // and is fed up to its end): a small file must not pay for zeroing a whole
        // max-size chunk buffer (16 MiB by default) on every flush.
        let longest_run = runs.iter().map(|r| r.1 - r.0).max().unwrap_or(0);
        let mut scratch = vec![0u8; (max as u64).min(longest_run) as usize];
        let mut out = Vec::with_capacity(blocks.len() + 8);
        let mut kept = Vec::new();
        let (mut bi, mut prev_we, mut i) = (0usize, 0u64, 0usize);
        while let Some(&(ds, de0)) = dirty.get(i) {
            i += 1;
            let mut de = de0;
            let k = blocks.partition_point(|b| b.end() <= ds);
            let ws = match (blocks.get(k), k.checked_sub(1).and_then(|p| blocks.get(p))) {
                (Some(b), _) if b.offset <= ds => b.offset,
                (_, Some(prev)) if prev.end() == ds => prev.offset,
                _ => ds,
            };
            debug_assert!(ws >= prev_we);
            let ws = ws.max(prev_we);
            while let Some(b) = blocks.get(bi).filter(|b| b.offset < ws) {
                out.push(*b);
                bi += 1;
            }
            let run_end = runs
                .get(runs.partition_point(|r| r.1 <= ws))
                .map(|r| r.1)
                .ok_or_else(|| BlockError::Invalid(format!("no data run at {ws}")))?;
            let mut sc = StreamChunker::new(chunker, ws);
            let mut fed = ws;
            let we = loop {
                while sc.needs_input() && fed < run_end {
                    let n = (max as u64).min(run_end - fed) as usize;
                    self.fill(blocks, snap, fed, &mut scratch[..n], None)?;
                    sc.push(&scratch[..n]);
                    fed += n as u64;
                }
                let Some((co, data)) = sc.next_chunk(fed == run_end) else {
                    break fed;
                };
                if is_tail(co, data.len(), run_end) {
                    kept.push((co, run_end));
                    while dirty.get(i).is_some_and(|d| d.0 < run_end) {
                        i += 1;
                    }
                    break run_end;
                }
                store
                    .send((out.len(), data.to_vec()))
                    .map_err(|_| BlockError::Task("chunk store thread stopped".into()))?;
                let ce = co + data.len() as u64;
                out.push(BlockRef {
                    hash: ContentHash::ZERO,
                    offset: co,
                    size: data.len() as u32,
                });
                while let Some(&(s, e)) = dirty.get(i).filter(|d| d.0 < ce) {
                    debug_assert!(s >= ws);
                    de = de.max(e);
                    i += 1;
                }
                if ce >= run_end || (ce >= de && unchanged_start(ce, &dirty[i..])) {
                    break ce;
                }
            };
            while blocks.get(bi).is_some_and(|b| b.offset < we) {
                bi += 1;
            }
            prev_we = we;
        }
        out.extend_from_slice(&blocks[bi..]);
        Ok((out, kept))
    }
}

#[cfg(test)]
mod tests;
