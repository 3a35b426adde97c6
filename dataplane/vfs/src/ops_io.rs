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
use crate::fs::{DataDurability, DirtyInfo, Fs, MAX_FILE_SIZE, WRITE_SPACE_WAIT};
use bytes::Bytes;
use dittofs_blockstore::RecoveredRecord;
use dittofs_metadata::{Check, Op, Txn};
use dittofs_types::{BlockRef, ContentHash, FileType, Ino, ObjectId, Timestamp};

/// Result of a WRITE.
#[derive(Clone, Debug)]
pub struct WriteOutcome {
    pub count: u32,
    pub committed: Stability,
    pub attr: Attr,
}

/// Files the background flusher flushes at once.
pub(crate) const FLUSH_PARALLEL: usize = 8;

impl Fs {
    /// READ up to `len` bytes at `offset`. Returns the data and whether it reaches EOF.
    pub async fn read(
        &self,
        cred: &Credentials,
        ino: Ino,
        offset: u64,
        len: u32,
    ) -> FsResult<(Bytes, bool, Attr)> {
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
                remote.as_ref().map(|r| &r.tier),
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
        self.check_writable()?;
        let len = data.len() as u64;
        if offset
            .checked_add(len)
            .is_none_or(|end| end > MAX_FILE_SIZE)
        {
            return Err(FsError::FBig);
        }
        // Backpressure: a local tier over its cap (waiting for uploads and eviction)
        // delays writers, bounded; it never fails them.
        if len > 0
            && self
                .engine
                .wait_for_space(self.key(ino), WRITE_SPACE_WAIT)
                .await
        {
            tracing::warn!(share = %self.name, "local tier still over its cap after {} s: writing anyway",
                WRITE_SPACE_WAIT.as_secs());
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
                let now = Timestamp::now();
                let mut d = self.dirty.lock();
                let e = d.entry(ino).or_insert(DirtyInfo {
                    mtime: now,
                    epoch: 0,
                });
                e.mtime = now;
                e.epoch += 1;
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
        let Some(r) = self
            .remote()
            .filter(|r| r.durability == DataDurability::Remote)
        else {
            return Ok(());
        };
        match self.store.get_inode(self.share, ino).await? {
            Some(rec) if rec.kind == FileType::Regular => {}
            _ => return Ok(()),
        }
        self.flush_file(ino).await?;
        let blocks = self.store.get_blocks(self.share, ino).await?;
        let hashes: Vec<ContentHash> = blocks.iter().map(|b| b.hash).collect();
        r.tier.wait_remote(&r.engine_name, &hashes).await?;
        Ok(())
    }

    /// Stages `blocks` for upload (remote shares; the tier skips and counts those it
    /// knows). `object`: the file's ObjectID when these complete a quiesced file (it
    /// becomes known for file-level dedup once they are confirmed). The caller holds the
    /// tier's flush guard until its metadata commit.
    async fn stage_chunks(
        &self,
        r: &crate::fs::RemoteBinding,
        blocks: &[BlockRef],
        object: Option<ObjectId>,
    ) -> FsResult<()> {
        if blocks.is_empty() && object.is_none() {
            return Ok(());
        }
        let hashes: Vec<ContentHash> = blocks.iter().map(|b| b.hash).collect();
        let sizes: Vec<u64> = blocks.iter().map(|b| u64::from(b.size)).collect();
        r.tier
            .stage(&r.engine_name, &hashes, &sizes, object)
            .await?;
        Ok(())
    }

    /// Flushes the dirty data of `ino` into chunks and publishes the new block list: a
    /// final flush (the file is idle, synced, truncated, or the server stops), so on a
    /// remote share every chunk of the file is staged for upload. A clean file only gets
    /// its deferred tail staged.
    pub async fn flush_file(&self, ino: Ino) -> FsResult<()> {
        let _f = self.flush_locks.lock(ino).await;
        self.flush_locked(ino, false, true).await
    }

    /// A flush while writes are still arriving (dirty-size or local-tier pressure): on a
    /// remote share the last chunk, cut by the end of the data, is deferred, not staged.
    async fn flush_partial(&self, ino: Ino) -> FsResult<()> {
        let _f = self.flush_locks.lock(ino).await;
        self.flush_locked(ino, false, false).await
    }

    /// Stages the deferred tail of a clean file (and with it, the file's ObjectID).
    async fn stage_deferred(&self, ino: Ino) -> FsResult<()> {
        let _f = self.flush_locks.lock(ino).await;
        self.stage_deferred_locked(ino).await
    }

    /// [`Fs::stage_deferred`]; the caller holds the file's flush lock.
    async fn stage_deferred_locked(&self, ino: Ino) -> FsResult<()> {
        let Some(r) = self.remote() else {
            self.deferred.lock().remove(&ino);
            return Ok(());
        };
        let Some((cuts, _)) = self.deferred.lock().get(&ino).cloned() else {
            return Ok(());
        };
        {
            let _gate = r.tier.flush_guard().await;
            let blocks = self.store.get_blocks(self.share, ino).await?;
            if blocks.iter().any(|b| cuts.contains(&b.hash)) {
                let object = Some(ObjectId::compute(&blocks));
                let unknown: Vec<BlockRef> = blocks
                    .iter()
                    .filter(|b| !r.tier.is_known(&b.hash))
                    .copied()
                    .collect();
                self.stage_chunks(&r, &unknown, object).await?;
            }
        }
        for h in &cuts {
            r.tier.undefer(&r.engine_name, h, &self.defer_tag(ino));
        }
        self.deferred.lock().remove(&ino);
        Ok(())
    }

    fn defer_tag(&self, ino: Ino) -> String {
        format!("{}-{}", self.share.0, ino.0)
    }

    /// The flush body; the caller holds the file's flush lock. With `have_write_lock`
    /// the caller also holds the file's write lock (truncate). `final_flush`: see
    /// [`Fs::flush_file`] and [`Fs::flush_partial`].
    async fn flush_locked(
        &self,
        ino: Ino,
        have_write_lock: bool,
        final_flush: bool,
    ) -> FsResult<()> {
        let key = self.key(ino);
        if !self.engine.is_dirty(key) {
            if final_flush && self.deferred.lock().contains_key(&ino) {
                // Clean, but its last flush deferred the tail: stage it now.
                self.stage_deferred_locked(ino).await?;
            }
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
                remote.as_ref().map(|r| &r.tier),
            )
            .await?
        else {
            return Ok(());
        };
        // Remote shares: from staging until the metadata commit, the GC must either see
        // this flush's block list or know its chunks as touched (see tier::gc).
        let _gate = match &remote {
            Some(r) => Some(r.tier.flush_guard().await),
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
        let before = rec.change;
        rec.size = rec.size.max(plan.data_end);
        if let Some(d) = epoch_mtime {
            if d.mtime > rec.mtime {
                rec.mtime = d.mtime;
            }
            if d.mtime > rec.ctime {
                rec.ctime = d.mtime;
            }
        }
        rec.applied_seq = rec.applied_seq.max(plan.applied_seq);
        rec.change += 1;
        rec.object_id = ObjectId::NOT_QUIESCED;
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
        let quiesced = {
            // The overlay will be empty after this publish iff nothing newer was written.
            let dirty_after = self.engine.has_writes_after(key, plan.max_write_id);
            !dirty_after
        };
        if quiesced {
            rec.object_id = ObjectId::compute(&plan.new_blocks);
        }
        // Remote shares: stage (or defer) before the commit, drop old deferrals after.
        let mut undefer: Vec<ContentHash> = Vec::new();
        if let Some(r) = &remote {
            let tag = self.defer_tag(ino);
            let prev: Vec<ContentHash> = self
                .deferred
                .lock()
                .get(&ino)
                .map(|d| d.0.clone())
                .unwrap_or_default();
            // Chunks cut by the end of a data run (the end of the file, or a hole that
            // later writes fill): the next flush re-chunks them.
            let forced: Vec<ContentHash> = if final_flush {
                Vec::new()
            } else {
                plan.new_blocks
                    .iter()
                    .enumerate()
                    .filter(|(i, b)| {
                        plan.new_blocks
                            .get(i + 1)
                            .is_none_or(|n| n.offset != b.end())
                    })
                    .map(|(_, b)| b.hash)
                    .collect()
            };
            let before: std::collections::HashSet<ContentHash> =
                old_blocks.iter().map(|b| b.hash).collect();
            let stage: Vec<BlockRef> = if final_flush && quiesced {
                // The new chunks and every older one the tier does not know yet (deferred
                // cuts, chunks of an earlier run): then the ObjectID can be known.
                plan.new_blocks
                    .iter()
                    .filter(|b| !before.contains(&b.hash) || !r.tier.is_known(&b.hash))
                    .copied()
                    .collect()
            } else {
                plan.new_blocks
                    .iter()
                    .filter(|b| {
                        (!before.contains(&b.hash) || prev.contains(&b.hash))
                            && !forced.contains(&b.hash)
                    })
                    .copied()
                    .collect()
            };
            let object = (final_flush && quiesced).then_some(rec.object_id);
            self.stage_chunks(r, &stage, object).await?;
            for h in forced.iter().filter(|h| !prev.contains(h)) {
                r.tier.defer(&r.engine_name, h, &tag).await?;
            }
            undefer = prev.into_iter().filter(|p| !forced.contains(p)).collect();
            let mut d = self.deferred.lock();
            if forced.is_empty() {
                d.remove(&ino);
            } else {
                d.insert(ino, (forced, std::time::Instant::now()));
            }
        }
        t.op(Op::PutInode(rec));
        self.commit(t).await?;
        if let Some(r) = &remote {
            for p in &undefer {
                r.tier.undefer(&r.engine_name, p, &self.defer_tag(ino));
            }
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
        self.flush_locked(ino, true, true).await?;
        let mut rec = self.inode(ino).await?;
        let old_blocks = self.store.get_blocks(self.share, ino).await?;
        let remote = self.remote();
        let new_blocks = self
            .engine
            .truncate_with(
                &old_blocks,
                size,
                self.chunker(),
                remote.as_ref().map(|r| &r.tier),
            )
            .await?;
        let _gate = match &remote {
            Some(r) => {
                let g = r.tier.flush_guard().await;
                let object = Some(ObjectId::compute(&new_blocks));
                self.stage_chunks(r, &new_blocks, object).await?;
                Some(g)
            }
            None => None,
        };
        let before = rec.change;
        let now = Timestamp::now();
        rec.size = size;
        rec.mtime = now;
        rec.ctime = now;
        rec.change += 1;
        rec.object_id = ObjectId::compute(&new_blocks);
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
        if let Some(d) = self.dirty.lock().get_mut(&ino) {
            d.epoch += 1;
        }
        Ok(())
    }

    /// Re-inserts journal records recovered at startup (those of this share whose data is
    /// not yet in the committed block list), then flushes the affected files.
    pub async fn recover(&self, records: &[RecoveredRecord]) -> FsResult<usize> {
        let mut touched = std::collections::BTreeSet::new();
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
            touched.insert(r.key.ino);
        }
        for ino in &touched {
            self.flush_file(*ino).await?;
        }
        Ok(touched.len())
    }

    /// Flushes every dirty file of this share, and stages every deferred tail.
    pub async fn flush_all(&self) -> FsResult<()> {
        for (key, _, _) in self.engine.dirty_files() {
            if key.share == self.share {
                self.flush_file(key.ino).await?;
            }
        }
        let deferred: Vec<Ino> = self.deferred.lock().keys().copied().collect();
        for ino in deferred {
            self.stage_deferred(ino).await?;
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
        let now = std::time::Instant::now();
        let mut todo: Vec<(Ino, bool)> = Vec::new();
        for (key, bytes, last) in self.engine.dirty_files() {
            if key.share != self.share {
                continue;
            }
            // A local tier over its cap flushes everything: chunks can only be uploaded
            // and then evicted once they left the journal.
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
        // Files that went clean with a deferred tail and stayed idle: stage it. (Not while
        // a writer of the file waits for space: it is being written, its tail will move.)
        let idle_deferred: Vec<Ino> = self
            .deferred
            .lock()
            .iter()
            .filter(|(ino, (_, since))| {
                now.duration_since(*since) >= idle && !self.engine.writers_waiting(self.key(**ino))
            })
            .map(|(ino, _)| *ino)
            .collect();
        for ino in idle_deferred {
            if !self.engine.is_dirty(self.key(ino)) {
                self.stage_deferred(ino).await?;
            }
        }
        Ok(n)
    }
}
