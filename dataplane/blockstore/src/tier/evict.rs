//! Eviction of the local tier under its size cap.
//!
//! Runs for an engine whose shares all target one remote tier (the runtime does not start
//! it otherwise: a chunk of a share without a remote must never leave the local tier).
//! When the local tier (CAS + journal) is above `high` of its cap, the least recently
//! written chunks are evicted until it is below `low`, each only once it is proven on the
//! remote: in the tier's known set, else confirmed by a HEAD of the right length. The
//! removal re-checks the chunk's mtime under the CAS's per-hash lock, so a chunk that a
//! flush just stored or deduplicated against is kept.
//! Chunks not yet on the remote are skipped (the uploader gets to them). A writer over the
//! cap wakes the evictor before its next tick and waits for the pass; a pass that ends
//! above its target is reported with the state it started from, so writers do not wait
//! for another pass until new chunks are stored or confirmed ([`crate::space`]).

use super::{RemoteTier, spawn_named, with_deadline};
use crate::engine::Engine;
use dittofs_types::ContentHash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Fraction of the cap above which eviction starts, and the level it evicts down to.
const HIGH: f64 = 0.95;
const LOW: f64 = 0.85;
const TICK: Duration = Duration::from_secs(1);

/// Counters of one evictor.
#[derive(Debug, Default)]
pub struct EvictStats {
    pub passes: AtomicU64,
    pub evicted_chunks: AtomicU64,
    pub evicted_bytes: AtomicU64,
    /// Candidates skipped because the remote does not have them (yet).
    pub not_on_remote: AtomicU64,
    pub errors: AtomicU64,
}

/// Tells the engine's writers that no evictor runs any more when the task ends.
struct RunningFlag(Engine);

impl Drop for RunningFlag {
    fn drop(&mut self) {
        self.0.space().set_evictor_running(false);
    }
}

/// The evictor of one engine.
#[derive(Debug, Clone)]
pub struct Evictor {
    engine: Engine,
    tier: RemoteTier,
    stats: Arc<EvictStats>,
}

impl Evictor {
    /// Starts the evictor task of `engine` (local block store `name`) over `tier`.
    pub fn start(
        name: &str,
        engine: &Engine,
        tier: &RemoteTier,
        stop: CancellationToken,
    ) -> Evictor {
        let ev = Evictor {
            engine: engine.clone(),
            tier: tier.clone(),
            stats: Arc::new(EvictStats::default()),
        };
        let task = ev.clone();
        spawn_named(
            tracing::info_span!("evictor", store = %name, tier = %tier.name()),
            async move {
                let space = task.engine.space();
                space.set_evictor_running(true);
                let _running = RunningFlag(task.engine.clone());
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(TICK) => {}
                        _ = space.eviction_requested() => {}
                    }
                    let cap = task.engine.capacity();
                    if cap == 0 || (task.engine.used_bytes() as f64) < cap as f64 * HIGH {
                        continue;
                    }
                    let target = (cap as f64 * LOW) as u64;
                    let signature = space.signature(task.engine.cas().changes());
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = task.pass(target) => {}
                    }
                    space.eviction_pass_done(signature, task.engine.used_bytes() > target);
                }
            },
        );
        ev
    }

    pub fn stats(&self) -> &EvictStats {
        &self.stats
    }

    /// One eviction pass down to `target` bytes; returns the bytes evicted.
    pub async fn pass(&self, target: u64) -> u64 {
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        let eng = self.engine.clone();
        let listed = tokio::task::spawn_blocking(move || {
            let mut v: Vec<(SystemTime, ContentHash, u64)> = Vec::new();
            eng.cas().walk(|h, len, mtime| {
                v.push((mtime, h, len));
                Ok(())
            })?;
            v.sort_unstable();
            Ok::<_, crate::BlockError>(v)
        })
        .await;
        let candidates = match listed {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "eviction: cannot list the local tier");
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                return 0;
            }
            Err(e) => {
                tracing::warn!(error = %e, "eviction: listing task failed");
                return 0;
            }
        };
        let mut freed = 0;
        for (mtime, hash, len) in candidates {
            if self.engine.used_bytes() <= target {
                break;
            }
            if !self.proven(&hash, len).await {
                self.stats.not_on_remote.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let eng = self.engine.clone();
            let removed = tokio::task::spawn_blocking(move || {
                // Only if nobody stored or deduplicated against it since we listed it.
                eng.cas()
                    .remove_if_older(&hash, mtime + Duration::from_nanos(1))
            })
            .await;
            match removed {
                Ok(Ok(Some(n))) => {
                    freed += n;
                    self.stats.evicted_chunks.fetch_add(1, Ordering::Relaxed);
                    self.stats.evicted_bytes.fetch_add(n, Ordering::Relaxed);
                    self.engine.notify_space();
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(%hash, error = %e, "eviction: cannot remove a chunk");
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "eviction: remove task failed"),
            }
        }
        if freed > 0 {
            let eng = self.engine.clone();
            let _ = tokio::task::spawn_blocking(move || eng.cas().sync_dirs()).await;
            tracing::debug!(freed, used = self.engine.used_bytes(), "eviction pass");
        }
        freed
    }

    /// Whether the remote holds `hash` with length `len` (known, else HEAD).
    async fn proven(&self, hash: &ContentHash, len: u64) -> bool {
        if self.tier.is_known(hash) {
            return true;
        }
        let t = &self.tier.inner;
        let epoch = t.gc.lock().deletions;
        match with_deadline(
            t.cfg.read_deadline,
            || format!("HEAD of chunk {hash}"),
            t.remote.head(hash),
        )
        .await
        {
            Ok(Some(info)) if info.size == len => {
                // The HEAD proves nothing if the GC claimed any object since it was sent
                // (it may have deleted this one after answering): try again next pass.
                let g = t.gc.lock();
                if g.deletions != epoch || g.deleting.contains(hash) {
                    return false;
                }
                t.mark_known(*hash);
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::debug!(%hash, error = %e, "eviction: remote unavailable");
                false
            }
        }
    }
}
