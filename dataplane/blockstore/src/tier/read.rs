//! Cold reads: chunks that are not in the local CAS are read from the remote.
//!
//! - A read of part of an evicted chunk fetches only the BLAKE3 subtree groups covering
//!   it (`dittofs_remote::tree`), verified against the chunk hash by the remote layer,
//!   and keeps them in a bounded in-memory LRU. A fetch that covers the whole chunk also
//!   puts it back into the local CAS.
//! - A reader continuing where its previous read of the file ended is sequential: the
//!   chunk it is in and the next `readahead_chunks` are fetched whole, in the background,
//!   into the local CAS; a cold read of a chunk being fetched ahead waits for that fetch.
//! - Every remote call runs under the tier's read deadline.

use super::{RemoteTier, spawn_named, with_deadline};
use crate::engine::Engine;
use crate::error::{BlockError, Result};
use bytes::{Bytes, BytesMut};
use dittofs_types::{BlockRef, ContentHash, FileKey};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Readahead fetches in flight at once (per tier).
const MAX_READAHEAD: usize = 16;
/// Files whose last read position is remembered (sequential detection).
const MAX_TRACKED_FILES: usize = 8192;

#[derive(Debug, Default)]
struct RangeCache {
    tick: u64,
    bytes: u64,
    map: HashMap<(ContentHash, u64), (Bytes, u64)>,
}

/// Per-tier read state.
#[derive(Debug)]
pub(crate) struct ReadState {
    cap: u64,
    cache: Mutex<RangeCache>,
    /// Next expected offset per file.
    last_end: Mutex<HashMap<FileKey, u64>>,
    /// Whole-chunk fetches in flight, with a notifier for readers waiting on them.
    inflight: Mutex<HashMap<ContentHash, Arc<tokio::sync::Notify>>>,
}

impl ReadState {
    pub(crate) fn new(cap: u64) -> ReadState {
        ReadState {
            cap,
            cache: Mutex::new(RangeCache::default()),
            last_end: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, hash: &ContentHash, group: u64) -> Option<Bytes> {
        let mut c = self.cache.lock();
        c.tick += 1;
        let tick = c.tick;
        c.map.get_mut(&(*hash, group)).map(|(b, t)| {
            *t = tick;
            b.clone()
        })
    }

    fn insert(&self, hash: ContentHash, group: u64, data: Bytes) {
        if self.cap == 0 || data.len() as u64 > self.cap {
            return;
        }
        let mut c = self.cache.lock();
        c.tick += 1;
        let tick = c.tick;
        let n = data.len() as u64;
        if let Some((old, _)) = c.map.insert((hash, group), (data, tick)) {
            c.bytes -= old.len() as u64;
        }
        c.bytes += n;
        while c.bytes > self.cap {
            let Some(victim) = c.map.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k) else {
                break;
            };
            if let Some((b, _)) = c.map.remove(&victim) {
                c.bytes -= b.len() as u64;
            }
        }
    }

    /// Drops cached groups of `hash` (the GC deleted the object).
    pub(crate) fn forget(&self, hash: &ContentHash) {
        let mut c = self.cache.lock();
        let keys: Vec<_> = c.map.keys().filter(|(h, _)| h == hash).copied().collect();
        for k in keys {
            if let Some((b, _)) = c.map.remove(&k) {
                c.bytes -= b.len() as u64;
            }
        }
    }
}

impl RemoteTier {
    /// `len` bytes at `off` inside the chunk `block`, which is not in `engine`'s local
    /// CAS: verified bytes from the remote (or the range cache), within the read deadline.
    pub(crate) async fn read_cold(
        &self,
        engine: &Engine,
        block: &BlockRef,
        off: u64,
        len: u64,
    ) -> Result<Bytes> {
        let t = &self.inner;
        let size = u64::from(block.size);
        let hash = block.hash;
        if len == 0 {
            return Ok(Bytes::new());
        }
        if off.checked_add(len).is_none_or(|e| e > size) {
            return Err(BlockError::Invalid(format!(
                "read of {len} bytes at {off} in chunk {hash} of {size} bytes"
            )));
        }
        // A whole-chunk fetch of this chunk is under way: wait for it, then read locally.
        // The waiter is created under the lock the fetch removes its entry under, so
        // its notification cannot be missed.
        let waiting;
        let notified;
        {
            let g = t.reads.inflight.lock();
            waiting = g.get(&hash).cloned();
            notified = waiting.as_ref().map(|n| n.notified());
        }
        if let Some(notified) = notified {
            let _ = tokio::time::timeout(t.cfg.read_deadline, notified).await;
            if let Some(b) = local_range(engine, hash, off, len).await? {
                return Ok(b);
            }
        }
        let g = dittofs_remote::tree::group_size(size);
        let (first, last) = (off / g, (off + len - 1) / g);
        let mut groups: Vec<Bytes> = Vec::new();
        for i in first..=last {
            match t.reads.cached(&hash, i) {
                Some(b) => groups.push(b),
                None => break,
            }
        }
        if groups.len() as u64 != last - first + 1 {
            let (ga, gb) = (first * g, ((last + 1) * g).min(size));
            let data = with_deadline(
                t.cfg.read_deadline,
                || format!("read of chunk {hash} [{ga}, {gb})"),
                t.remote.get_range_verified(&hash, size, ga, gb - ga),
            )
            .await
            .inspect_err(|e| {
                t.stats.remote_read_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(tier = %t.name, error = %e, "cold read failed (the client gets EIO)");
            })?;
            if data.len() as u64 != gb - ga {
                return Err(BlockError::Remote(format!(
                    "chunk {hash}: {} bytes received for a range of {}",
                    data.len(),
                    gb - ga
                )));
            }
            t.stats.cold_reads.fetch_add(1, Ordering::Relaxed);
            t.stats
                .cold_read_bytes
                .fetch_add(gb - ga, Ordering::Relaxed);
            if ga == 0 && gb == size {
                // The whole chunk: back into the local tier (best effort, it is a cache).
                let e = engine.clone();
                let d = data.clone();
                let stored =
                    tokio::task::spawn_blocking(move || e.cas().put(&hash, &d).map(|_| ())).await;
                if let Ok(Err(e)) = stored {
                    tracing::warn!(%hash, error = %e, "cannot cache a fetched chunk locally");
                }
            }
            groups.clear();
            for (k, i) in (first..=last).enumerate() {
                let lo = (k as u64 * g) as usize;
                let hi = (((k as u64) + 1) * g).min(gb - ga) as usize;
                let part = data.slice(lo..hi);
                t.reads.insert(hash, i, part.clone());
                groups.push(part);
            }
        }
        let mut out = BytesMut::with_capacity(len as usize);
        let mut pos = first * g;
        for b in &groups {
            let (s, e) = (pos, pos + b.len() as u64);
            let lo = off.max(s);
            let hi = (off + len).min(e);
            if lo < hi {
                out.extend_from_slice(&b[(lo - s) as usize..(hi - s) as usize]);
            }
            pos = e;
        }
        if out.len() as u64 != len {
            return Err(BlockError::Corrupt { hash });
        }
        Ok(out.freeze())
    }

    /// Fetches the whole chunk `block` from the remote into `engine`'s local CAS
    /// (verified; within the read deadline). Used before re-chunking or truncating a
    /// file whose base chunk was evicted.
    pub(crate) async fn fetch_into_local(&self, engine: &Engine, block: &BlockRef) -> Result<()> {
        let t = &self.inner;
        let hash = block.hash;
        let data = with_deadline(
            t.cfg.read_deadline,
            || format!("fetch of chunk {hash}"),
            t.remote.get(&hash),
        )
        .await
        .inspect_err(|e| {
            t.stats.remote_read_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(tier = %t.name, error = %e, "fetch from the remote failed");
        })?;
        t.stats.cold_reads.fetch_add(1, Ordering::Relaxed);
        t.stats
            .cold_read_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let e = engine.clone();
        tokio::task::spawn_blocking(move || {
            e.cas().put(&hash, &data)?;
            e.cas().sync_dirs()
        })
        .await
        .map_err(|e| BlockError::Task(e.to_string()))?
    }

    /// Called after every read of a remote-backed file: detects sequential readers and
    /// starts whole-chunk readahead of the chunks they will need next.
    pub(crate) fn after_read(
        &self,
        engine: &Engine,
        key: FileKey,
        blocks: &[BlockRef],
        start: u64,
        end: u64,
    ) {
        let t = &self.inner;
        let sequential = {
            let mut m = t.reads.last_end.lock();
            if m.len() >= MAX_TRACKED_FILES {
                m.clear();
            }
            m.insert(key, end) == Some(start)
        };
        if !sequential || t.cfg.readahead_chunks == 0 {
            return;
        }
        let i = blocks.partition_point(|b| b.end() <= start);
        for b in blocks[i..].iter().take(1 + t.cfg.readahead_chunks) {
            if matches!(engine.cas().contains(&b.hash), Ok(true)) {
                continue;
            }
            let notify = {
                let mut inflight = t.reads.inflight.lock();
                if inflight.len() >= MAX_READAHEAD || inflight.contains_key(&b.hash) {
                    continue;
                }
                let n = Arc::new(tokio::sync::Notify::new());
                inflight.insert(b.hash, n.clone());
                n
            };
            let (tier, eng, block) = (self.clone(), engine.clone(), *b);
            spawn_named(
                tracing::debug_span!("tier-readahead", tier = %t.name, hash = %b.hash),
                async move {
                    let stop = tier.inner.stop.clone();
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        r = tier.fetch_into_local(&eng, &block) => match r {
                            Ok(()) => {
                                tier.inner.stats.readahead_chunks.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => tracing::debug!(error = %e, "readahead failed"),
                        },
                    }
                    tier.inner.reads.inflight.lock().remove(&block.hash);
                    notify.notify_waiters();
                },
            );
        }
    }
}

/// The range from the local CAS, `None` if the chunk is (still) not there.
async fn local_range(
    engine: &Engine,
    hash: ContentHash,
    off: u64,
    len: u64,
) -> Result<Option<Bytes>> {
    let e = engine.clone();
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len as usize];
        match e.cas().read_at(&hash, off, &mut buf) {
            Ok(n) if n as u64 == len => Ok(Some(Bytes::from(buf))),
            Ok(_) => Err(BlockError::Corrupt { hash }),
            Err(BlockError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(|e| BlockError::Task(e.to_string()))?
}
