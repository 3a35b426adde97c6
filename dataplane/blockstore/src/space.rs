//! The local tier's soft cap and the backpressure it puts on writers.
//!
//! A writer waits only for work that goes on without it. While the tier (CAS + journal)
//! is over its cap, a writer waits, at most for its bound, only while
//! - the flusher has journal to turn into chunks: a dirty file it has not yet reduced to
//!   the tails it must leave uncut ([`crate::FlushKind::KeepTails`]), or journal
//!   segments it may reclaim. The flusher flushes every dirty file of an over-cap tier,
//!   a waiting writer's own file included, without waiting for any writer;
//! - chunks of this engine are pending upload: the uploader sends them whatever writers,
//!   flushes and journal reclaims do, and each confirmation makes a chunk evictable; or
//! - the evictor has not yet looked at the local chunks as they are now (a chunk was
//!   stored or refreshed, or an upload confirmed, since its last pass ended above its
//!   target): the writer wakes the evictor at once and waits for that pass, which needs
//!   nothing from any writer.
//!
//! Nothing else over the cap is waited on: the journal's open segment and segments held
//! by the uncut tails of files being written (only their own writers can move those),
//! and chunks that are neither pending nor proven on the remote (garbage until the GC,
//! or data of a share without that remote). So no wait can close a cycle: nothing a
//! writer waits for waits for a writer. docs/remote-tier.md ("Backpressure") has the
//! whole argument.
//!
//! At its bound a writer fails with [`BlockError::NoSpace`] only when space truly cannot
//! be made: uploads are pending, the remote is failing, and not one upload was confirmed
//! during the whole wait. Otherwise it writes: the cap is a target, and failing a write
//! that could have gone through would lose the client's data for nothing.
//!
//! Invariants: every state change that can end a wait (cap changed, an upload
//! confirmed, the pending count reaching zero, an eviction pass ending, a flush or a
//! journal reclaim done) wakes the waiters; a waiter also re-checks every [`RECHECK`].
//! No lock is held across an `.await`.

use crate::error::{BlockError, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often a waiting writer re-checks without being woken.
const RECHECK: Duration = Duration::from_millis(200);
/// At most one warning per this period about writes going over the cap.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What the engine reports about its tier each time a writer looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    /// Bytes of CAS + journal.
    pub(crate) used: u64,
    /// Bytes of journal (for messages).
    pub(crate) journal: u64,
    /// [`crate::LocalCas::changes`]: moves whenever a chunk is stored or refreshed.
    pub(crate) cas_changes: u64,
    /// The flusher has journal to turn into chunks or to reclaim (see the module doc).
    pub(crate) flush_work: bool,
}

/// The uploads of this engine's chunks, as the remote tier last reported them.
#[derive(Debug, Default)]
struct Uploads {
    pending: u64,
    /// The last upload attempt's error, while the remote is failing.
    failing: Option<String>,
    /// Uploads (or HEADs) confirmed since start.
    confirmed: u64,
}

/// The evictor of this engine, as far as writers care.
#[derive(Debug, Default)]
struct EvictorView {
    running: bool,
    /// `(cas changes, confirmed uploads)` when a pass that started then ended above its
    /// target: until either moves, another pass would find nothing more to evict.
    stuck_at: Option<(u64, u64)>,
}

/// Why a writer over the cap waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Blocker {
    Flush,
    Uploads,
    Eviction,
}

/// Space accounting and writer backpressure of one engine.
#[derive(Debug, Default)]
pub(crate) struct Space {
    capacity: AtomicU64,
    /// Wakes waiting writers.
    wake: Notify,
    /// Wakes the evictor before its next tick.
    kick: Notify,
    uploads: Mutex<Uploads>,
    evictor: Mutex<EvictorView>,
    last_warning: Mutex<Option<Instant>>,
}

impl Space {
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity.load(Ordering::Relaxed)
    }

    pub(crate) fn set_capacity(&self, bytes: u64) {
        self.capacity.store(bytes, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    /// Wakes waiting writers (space may have been freed).
    pub(crate) fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// The remote tier's report: `pending` chunks of this engine wait for upload;
    /// `failing`: the last attempt's error while uploads fail.
    pub(crate) fn set_uploads(&self, pending: u64, failing: Option<String>) {
        let mut u = self.uploads.lock();
        let drained = pending == 0 && u.pending > 0;
        u.pending = pending;
        u.failing = failing;
        drop(u);
        if drained {
            self.wake.notify_waiters();
        }
    }

    /// A chunk of this engine is confirmed on the remote (now evictable).
    pub(crate) fn upload_confirmed(&self) {
        self.uploads.lock().confirmed += 1;
        self.wake.notify_waiters();
    }

    /// The evictor's identity of "the chunks as they are now" (see [`EvictorView`]).
    pub(crate) fn signature(&self, cas_changes: u64) -> (u64, u64) {
        (cas_changes, self.uploads.lock().confirmed)
    }

    pub(crate) fn set_evictor_running(&self, running: bool) {
        let mut e = self.evictor.lock();
        e.running = running;
        e.stuck_at = None;
        drop(e);
        self.wake.notify_waiters();
    }

    /// The evictor finished a pass that started at `signature`; `stuck`: it ended above
    /// its target.
    pub(crate) fn eviction_pass_done(&self, signature: (u64, u64), stuck: bool) {
        self.evictor.lock().stuck_at = stuck.then_some(signature);
        self.wake.notify_waiters();
    }

    /// Resolves when a writer asks for an eviction pass (a permit is kept if the evictor
    /// is busy, so a request is never lost).
    pub(crate) async fn eviction_requested(&self) {
        self.kick.notified().await;
    }

    fn blocker(&self, p: &Probe) -> Option<Blocker> {
        if p.flush_work {
            return Some(Blocker::Flush);
        }
        if self.uploads.lock().pending > 0 {
            return Some(Blocker::Uploads);
        }
        let sig = self.signature(p.cas_changes);
        let e = self.evictor.lock();
        (e.running && e.stuck_at != Some(sig)).then_some(Blocker::Eviction)
    }

    /// Backpressure for one write (see the module documentation). `probe` reads the
    /// tier's state; it is called again after every wake-up.
    pub(crate) async fn wait(&self, probe: impl Fn() -> Probe, max_wait: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + max_wait;
        let confirmed_before = self.uploads.lock().confirmed;
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let p = probe();
            let cap = self.capacity();
            if cap == 0 || p.used <= cap {
                return Ok(());
            }
            let Some(blocker) = self.blocker(&p) else {
                self.warn(|| {
                    format!(
                        "local tier over its cap ({} of {} MiB, {} MiB of it write journal) \
                         with nothing that waiting could free (nothing to flush, no upload \
                         pending, nothing evictable): writing anyway; the journal shrinks \
                         when files being written are done, the GC reclaims unreferenced \
                         chunks",
                        p.used >> 20,
                        cap >> 20,
                        p.journal >> 20
                    )
                });
                return Ok(());
            };
            if blocker == Blocker::Eviction {
                self.kick.notify_one();
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return self.at_bound(&p, cap, max_wait, confirmed_before);
            }
            let _ = tokio::time::timeout_at(deadline.min(now + RECHECK), notified).await;
        }
    }

    /// The writer waited `max_wait` and the tier is still over its cap.
    fn at_bound(
        &self,
        p: &Probe,
        cap: u64,
        max_wait: Duration,
        confirmed_before: u64,
    ) -> Result<()> {
        let u = self.uploads.lock();
        if u.pending > 0
            && u.confirmed == confirmed_before
            && let Some(why) = &u.failing
        {
            return Err(BlockError::NoSpace(format!(
                "local tier full ({} of {} MiB) of data not yet on the remote: {} chunks \
                 wait for upload and none was confirmed in {} s (last upload error: {why})",
                p.used >> 20,
                cap >> 20,
                u.pending,
                max_wait.as_secs()
            )));
        }
        let pending = u.pending;
        drop(u);
        self.warn(|| {
            format!(
                "local tier still over its cap ({} of {} MiB) after {} s, {pending} chunks \
                 pending upload: writing anyway",
                p.used >> 20,
                cap >> 20,
                max_wait.as_secs()
            )
        });
        Ok(())
    }

    /// Logs `msg` unless a warning was logged less than [`WARN_EVERY`] ago.
    fn warn(&self, msg: impl FnOnce() -> String) {
        let mut last = self.last_warning.lock();
        if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!("{}", msg());
    }
}
