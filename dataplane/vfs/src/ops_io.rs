//! READ, WRITE, COMMIT (RFC 1813 sections 3.3.6, 3.3.7, 3.3.21), truncate, and the flush
//! that turns journaled writes into chunks.
//!
//! Write path: WRITE appends to the engine's journal and overlay (fsync'd first for
//! DATA_SYNC/FILE_SYNC); COMMIT fsyncs the journal. A flush (background: idle or large
//! files; foreground: truncate, shutdown) re-chunks the dirty ranges and publishes the new
//! block list + size + mtime + refcount deltas + journal watermark in ONE durable metadata
//! transaction, then prunes the overlay. Readers hold the file's read lock while they pick
//! up (block list, overlay), and the publish holds the write lock, so a read never sees a
//! pruned overlay with the old block list.

use crate::attr::{Attr, Stability};
use crate::cred::{Credentials, R, W, may_io};
use crate::error::{FsError, FsResult};
use crate::fs::{DirtyInfo, Fs, MAX_FILE_SIZE, WRITE_SPACE_WAIT};
use crate::ratelimit::{Level, LimitedLog};
use bytes::Bytes;
use dittofs_blockstore::tier::Publish;
use dittofs_blockstore::{FlushKind, RecoveredRecord, TierBinding};
use dittofs_metadata::{Check, Op, Txn};
use dittofs_types::{FileType, Ino, ObjectId, Timestamp};
use std::sync::LazyLock;

/// The inode as a flush publishes it: size covers the data, the times of the last write
/// it holds, the journal watermark, change counter `change`, and the ObjectID once
/// quiesced.
fn flushed_inode(
    rec: &mut dittofs_metadata::InodeRecord,
    plan: &dittofs_blockstore::FlushPlan,
    (written, change): (Option<DirtyInfo>, u64),
    quiesced: bool,
) {
    rec.size = rec.size.max(plan.data_end);
    if let Some(d) = written {
        rec.mtime = rec.mtime.max(d.mtime);
        rec.ctime = rec.ctime.max(d.mtime);
    }
    rec.applied_seq = rec.applied_seq.max(plan.applied_seq);
    rec.change = change;
    rec.object_id = if quiesced {
        ObjectId::compute(&plan.new_blocks)
    } else {
        ObjectId::NOT_QUIESCED
    };
}

/// Result of a WRITE.
#[derive(Clone, Debug)]
pub struct WriteOutcome {
    pub count: u32,
    pub committed: Stability,
    pub attr: Attr,
}

/// Files the background flusher flushes at once.
pub(crate) const FLUSH_PARALLEL: usize = 8;

/// Writes refused for want of space, on every share of the process: a client retrying
/// against a full tier causes one per WRITE, so they are logged a few times and counted
/// (`dittofs_vfs_writes_refused_total` in /metrics, see [`writes_refused_counter`]).
static WRITE_REFUSED: LazyLock<LimitedLog> = LazyLock::new(|| {
    LimitedLog::new(
        "write_refused",
        Level::Warn,
        prometheus_client::metrics::counter::Counter::default(),
    )
});

/// The counter of writes refused for want of space, to register in /metrics.
pub fn writes_refused_counter() -> prometheus_client::metrics::counter::Counter {
    WRITE_REFUSED.counter()
}
/// Period of the server's background flusher ([`Fs::flush_some`], then journal reclaim).
pub const FLUSH_TICK: std::time::Duration = std::time::Duration::from_millis(500);
/// A file idle this long gets its final flush.
pub const FLUSH_IDLE: std::time::Duration = std::time::Duration::from_secs(2);
/// A file with this much dirty data is flushed while it is still being written.
pub const FLUSH_MAX_DIRTY: u64 = 64 << 20;

impl Fs {
    /// READ up to `len` bytes at `offset`. Returns the data and whether it reaches EOF.
    pub async fn read(
        &self,
        cred: &Credentials,
        ino: Ino,
        offset: u64,
        len: u32,
    ) -> FsResult<(Bytes, bool, Attr)> {
        self.check_readable(cred)?;
        let _g = self.locks.read(ino).await;
        let rec = self.inode(ino).await?;
        match rec.kind {
            FileType::Regular => {}
            FileType::Directory => return Err(FsError::IsDir),
            _ => return Err(FsError::Inval("read of a special file")),
        }
        if !may_io(cred, &rec, R) {
            return Err(FsError::Access);
        }
        let attr = self.attr_of(&rec);
        if offset >= attr.size || len == 0 {
            return Ok((Bytes::new(), offset >= attr.size, attr));
        }
        let blocks = self.store.get_blocks(self.share, ino).await?;
        let remote = self.remote();
        let data = self
            .engine
            .read_tiered(
                self.key(ino),
                &blocks,
                attr.size,
                offset,
                len,
                remote.as_deref().map(TierBinding::cold),
            )
            .await?;
        let eof = offset + data.len() as u64 >= attr.size;
        Ok((data, eof, attr))
    }

    /// WRITE `data` at `offset`. UNSTABLE data may be lost in a crash until COMMIT;
    /// DATA_SYNC/FILE_SYNC return after the data is on stable storage.
    pub async fn write(
        &self,
        cred: &Credentials,
        ino: Ino,
        offset: u64,
        data: Bytes,
        stability: Stability,
    ) -> FsResult<WriteOutcome> {
        self.check_writable(cred)?;
        let len = data.len() as u64;
        if len > 0 {
            self.check_room_for(len)?;
        }
        if offset
            .checked_add(len)
            .is_none_or(|end| end > MAX_FILE_SIZE)
        {
            return Err(FsError::FBig);
        }
        // Backpressure: a local tier over its cap delays writers (bounded) while uploads
        // and eviction make room; it fails them (NOSPC) only when the remote has taken
        // nothing for the whole bound (see dittofs_blockstore's `space`).
        if len > 0 {
            self.engine
                .wait_for_space(self.key(ino), WRITE_SPACE_WAIT)
                .await
                .inspect_err(|e| {
                    WRITE_REFUSED.hit(|| format!("share {}: write refused: {e}", self.name))
                })?;
        }
        let rec = {
            let _g = self.locks.read(ino).await;
            let rec = self.inode(ino).await?;
            match rec.kind {
                FileType::Regular => {}
                FileType::Directory => return Err(FsError::IsDir),
                _ => return Err(FsError::Inval("write to a special file")),
            }
            if !may_io(cred, &rec, W) {
                return Err(FsError::Access);
            }
            if len > 0 {
                self.engine
                    .write(
                        self.key(ino),
                        offset,
                        data,
                        stability != Stability::Unstable,
                    )
                    .await?;
                self.note_write(ino, Timestamp::now());
            }
            rec
        };
        // Writing clears suid, and sgid when group-executable, unless the writer is root.
        if !cred.is_root() && (rec.mode & 0o4000 != 0 || rec.mode & 0o2010 == 0o2010) {
            self.kill_suid(ino).await?;
        }
        if stability != Stability::Unstable && len > 0 {
            self.sync_remote(ino).await?;
        }
        let rec = self.inode(ino).await?;
        Ok(WriteOutcome {
            count: len as u32,
            committed: stability,
            attr: self.attr_of(&rec),
        })
    }

    async fn kill_suid(&self, ino: Ino) -> FsResult<()> {
        let _g = self.locks.write_many(&[ino]).await;
        let mut rec = self.inode(ino).await?;
        let before = rec.change;
        rec.mode &= !0o4000;
        if rec.mode & 0o2010 == 0o2010 {
            rec.mode &= !0o2000;
        }
        crate::fs::touch(&mut rec, Timestamp::now(), false);
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino,
            change: before,
        });
        t.op(Op::PutInode(rec));
        self.commit(t).await
    }

    /// COMMIT: every write acknowledged so far (on any file of the engine) is durable.
    /// On a `durability: remote` share the file is also flushed and its chunks confirmed
    /// on the remote (late confirmation: [`FsError::Jukebox`], the client retries).
    pub async fn commit_writes(&self, ino: Ino) -> FsResult<Attr> {
        self.engine.commit_durable().await?;
        self.sync_remote(ino).await?;
        self.getattr(ino).await
    }

    /// `durability: remote`: flushes `ino` and waits until all of its chunks are on the
    /// remote. No-op for other shares and for non-regular files.
    async fn sync_remote(&self, ino: Ino) -> FsResult<()> {
        let Some(r) = self.remote().filter(|r| r.syncs_remote()) else {
            return Ok(());
        };
        match self.store.get_inode(self.share, ino).await? {
            Some(rec) if rec.kind == FileType::Regular => {}
            _ => return Ok(()),
        }
        self.flush_file(ino).await?;
        let blocks = self.store.get_blocks(self.share, ino).await?;
        r.sync(&blocks).await?;
        Ok(())
    }

    /// Flushes the dirty data of `ino` into chunks and publishes the new block list: a
    /// final flush (the file is idle, synced, truncated, or the server stops), so on a
    /// remote share every chunk of the file is staged for upload.
    pub async fn flush_file(&self, ino: Ino) -> FsResult<()> {
        let _f = self.flush_locks.lock(ino).await;
        self.flush_locked(ino, false, FlushKind::Final).await
    }

    /// A flush while writes are still arriving (dirty-size or local-tier pressure): the
    /// end-of-data tail of each data run stays dirty (see [`FlushKind::KeepTails`]), so
    /// every chunk it cuts is final and nothing it stages becomes garbage.
    async fn flush_partial(&self, ino: Ino) -> FsResult<()> {
        let _f = self.flush_locks.lock(ino).await;
        self.flush_locked(ino, false, FlushKind::KeepTails).await
    }

    /// The flush body; the caller holds the file's flush lock. With `have_write_lock`
    /// the caller also holds the file's write lock (truncate).
    pub(crate) async fn flush_locked(
        &self,
        ino: Ino,
        have_write_lock: bool,
        kind: FlushKind,
    ) -> FsResult<()> {
        let key = self.key(ino);
        if !self.engine.is_dirty(key) {
            return Ok(());
        }
        let epoch_mtime = self.dirty.lock().get(&ino).copied();
        // Only flush/truncate change the block list, and both hold the flush lock: the
        // list read here stays current until we publish.
        let old_blocks = self.store.get_blocks(self.share, ino).await?;
        let remote = self.remote();
        let Some(plan) = self
            .engine
            .prepare_flush_with(
                key,
                &old_blocks,
                self.chunker(),
                remote.as_deref().map(TierBinding::cold),
                kind,
            )
            .await?
        else {
            return Ok(());
        };
        // Remote shares: from staging until the metadata commit, the GC must either see
        // this flush's block list or know its chunks as touched (see tier::gc).
        let ticket = match &remote {
            Some(r) => Some(r.before_commit().await),
            None => None,
        };
        let _g = if have_write_lock {
            None
        } else {
            Some(self.locks.write_many(&[ino]).await)
        };
        let Some(mut rec) = self.store.get_inode(self.share, ino).await? else {
            // Deleted meanwhile: its content was discarded; the new chunks are garbage for GC.
            return Ok(());
        };
        // The overlay will be empty after this publish iff nothing newer was written and
        // no tail stays dirty.
        let quiesced =
            plan.kept.is_empty() && !self.engine.has_writes_after(key, plan.max_write_id);
        let before = rec.change;
        let (change, fold) = self.fold_writes(ino, before);
        flushed_inode(&mut rec, &plan, (epoch_mtime, change), quiesced);
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino,
            change: before,
        });
        t.op(Op::SetBlocks {
            ino,
            blocks: plan.new_blocks.clone(),
        });
        t.adjust_refs(&old_blocks, &plan.new_blocks);
        if let Some(ticket) = &ticket {
            let object = quiesced.then_some(rec.object_id);
            let staged = ticket
                .stage(Publish::Flush {
                    old: &old_blocks,
                    new: &plan.new_blocks,
                    object,
                })
                .await;
            if let Err(e) = staged {
                self.unfold_writes(ino, fold);
                return Err(e.into());
            }
        }
        t.op(Op::PutInode(rec));
        if let Err(e) = self.commit(t).await {
            self.unfold_writes(ino, fold);
            return Err(e);
        }
        if let Some(ticket) = ticket {
            ticket.after_commit();
        }
        self.engine.finish_flush(key, &plan);
        if quiesced {
            let mut d = self.dirty.lock();
            if let (Some(cur), Some(snap)) = (d.get(&ino), epoch_mtime)
                && cur.epoch == snap.epoch
            {
                d.remove(&ino);
            }
        }
        Ok(())
    }

    /// Sets the size of a regular file (flushing dirty data first).
    pub(crate) async fn truncate(&self, ino: Ino, size: u64) -> FsResult<()> {
        let _f = self.flush_locks.lock(ino).await;
        let _g = self.locks.write_many(&[ino]).await;
        self.flush_locked(ino, true, FlushKind::Final).await?;
        let mut rec = self.inode(ino).await?;
        let old_blocks = self.store.get_blocks(self.share, ino).await?;
        let remote = self.remote();
        // `_pins` keeps the new end's chunks from prompt reclaim until the commit.
        let (new_blocks, _pins) = self
            .engine
            .truncate_with(
                &old_blocks,
                size,
                self.chunker(),
                remote.as_deref().map(TierBinding::cold),
            )
            .await?;
        let ticket = match &remote {
            Some(r) => {
                let ticket = r.before_commit().await;
                ticket.stage(Publish::Truncate { new: &new_blocks }).await?;
                Some(ticket)
            }
            None => None,
        };
        let before = stamp_content(&mut rec, size, ObjectId::compute(&new_blocks));
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino,
            change: before,
        });
        t.op(Op::SetBlocks {
            ino,
            blocks: new_blocks.clone(),
        });
        t.adjust_refs(&old_blocks, &new_blocks);
        t.op(Op::PutInode(rec));
        self.commit(t).await?;
        if let Some(ticket) = ticket {
            ticket.after_commit();
        }
        if let Some(d) = self.dirty.lock().get_mut(&ino) {
            d.epoch += 1;
        }
        Ok(())
    }

    /// Re-inserts journal records recovered at startup (those of this share whose data is
    /// not yet in the committed block list), then flushes the affected files. Each
    /// record counts as a pending write of its file (see [`DirtyInfo`]), its mtime left
    /// as recorded.
    pub async fn recover(&self, records: &[RecoveredRecord]) -> FsResult<usize> {
        let mut touched = std::collections::BTreeSet::new();
        let unchanged_mtime = Timestamp {
            secs: i64::MIN,
            nanos: 0,
        };
        for r in records.iter().filter(|r| r.key.share == self.share) {
            let Some(rec) = self.store.get_inode(self.share, r.key.ino).await? else {
                // The file is gone: its records are garbage, let the journal forget them.
                self.engine.discard(r.key);
                continue;
            };
            if r.seq <= rec.applied_seq || rec.kind != FileType::Regular {
                // Already in the committed block list: tell the journal so the segment
                // holding it can be reclaimed.
                self.engine.note_applied(r.key, rec.applied_seq);
                continue;
            }
            self.engine.restore(r.key, r);
            self.note_write(r.key.ino, unchanged_mtime);
            touched.insert(r.key.ino);
        }
        // A full disk must not keep the share from serving: writes that cannot be flushed
        // without eating the disk's reserve stay in the journal (and readable) until the
        // flusher finds room.
        let mut waiting = 0;
        for ino in &touched {
            let dirty = self.engine.dirty_bytes(self.key(*ino));
            let flushed = match self.check_room_for(dirty) {
                Ok(()) => self.flush_file(*ino).await,
                Err(e) => Err(e),
            };
            match flushed {
                Ok(()) => {}
                Err(FsError::NoSpc | FsError::DQuot) => waiting += 1,
                Err(e) => return Err(e),
            }
        }
        if waiting > 0 {
            tracing::warn!(share = %self.name, files = waiting,
                "no space to flush recovered writes: they stay in the journal until space is freed");
        }
        Ok(touched.len())
    }

    /// Flushes every dirty file of this share.
    pub async fn flush_all(&self) -> FsResult<()> {
        for (key, _, _) in self.engine.dirty_files() {
            if key.share == self.share {
                self.flush_file(key.ino).await?;
            }
        }
        Ok(())
    }

    /// One pass of the background flusher: flushes files idle for `idle` or holding more
    /// than `max_dirty` bytes, up to [`FLUSH_PARALLEL`] at a time (a small file's flush
    /// is mostly waiting for fsyncs, which overlap and share journal commits). Every
    /// started flush runs to its end; the first error is returned after all of them.
    /// Returns how many files were flushed.
    pub async fn flush_some(&self, idle: std::time::Duration, max_dirty: u64) -> FsResult<usize> {
        use futures_util::StreamExt;
        if self.engine.check_room(0).is_err() {
            // At the disk's reserve a flush (chunks first, the journal freed after) would
            // eat the room deletes need; the data stays safe in the journal meanwhile.
            return Ok(0);
        }
        let now = std::time::Instant::now();
        let mut todo: Vec<(Ino, bool)> = Vec::new();
        for (key, bytes, last) in self.engine.dirty_files() {
            // A flush writes the file's chunks before its journal can go: room for them
            // is admitted like a write's, so flushes never eat into the reserve that
            // deletes need. A file without room stays in the journal until space is
            // freed.
            if key.share != self.share || self.check_room_for(bytes).is_err() {
                continue;
            }
            // A local tier over its cap flushes everything (but the tails of files being
            // written): chunks can only be uploaded and then evicted once they left the
            // journal. A file whose writer waits for space is not idle (see
            // `Engine::dirty_files`): its tail would move as soon as the write lands.
            if now.duration_since(last) >= idle {
                todo.push((key.ino, true));
            } else if bytes >= max_dirty || self.engine.over_capacity() {
                todo.push((key.ino, false));
            }
        }
        let n = todo.len();
        let results: Vec<FsResult<()>> = futures_util::stream::iter(todo)
            .map(|(ino, last)| async move {
                if last {
                    self.flush_file(ino).await
                } else {
                    self.flush_partial(ino).await
                }
            })
            .buffer_unordered(FLUSH_PARALLEL)
            .collect()
            .await;
        results.into_iter().collect::<FsResult<Vec<()>>>()?;
        Ok(n)
    }
}

/// Marks `rec`'s content as changed to `size` bytes with fingerprint `object` (mtime and
/// ctime now, change counter + 1); the change counter before, for the Txn's check.
pub(crate) fn stamp_content(
    rec: &mut dittofs_metadata::InodeRecord,
    size: u64,
    object: ObjectId,
) -> u64 {
    let before = rec.change;
    let now = Timestamp::now();
    rec.size = size;
    rec.mtime = now;
    rec.ctime = now;
    rec.change += 1;
    rec.object_id = object;
    before
}
