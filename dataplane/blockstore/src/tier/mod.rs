//! The remote tier: one [`RemoteTier`] per remote store identity (bucket + endpoint +
//! prefix), shared by every share that targets it, over the local CAS of each engine
//! those shares use.
//!
//! Shares reach the tier only through their [`TierBinding`] ([`binding`]): it stages
//! what a flush commits, answers `durability: remote` syncs and serves the engine's
//! cold reads (as its [`crate::ColdTier`]).
//!
//! Write path ([`upload`]): a flush stores chunks in the local CAS (durable), then
//! `RemoteTier::stage` records the chunks that are not known to be on the remote as
//! durable pending markers (`<state>/pending/<engine>/<hex>`, directory fsynced) BEFORE
//! the flush commits its metadata; the uploader task uploads them in the background
//! (bounded parallelism, retries with exponential backoff, forever: a marker is removed
//! only once the chunk is proven on the remote). Markers left by a crash are resumed at
//! start. Dedup:
//! - chunk level: a chunk in the known set (uploaded or seen by HEAD in this run) is not
//!   staged; a staged chunk that HEAD finds on the remote is not uploaded again;
//! - file level: a quiesced file whose ObjectID is known (all of its chunks confirmed on
//!   the remote) stages nothing at all.
//!
//! Read path ([`read`]): a chunk missing locally (evicted) is read with verified ranged
//! GETs of the covering BLAKE3 subtree groups, kept in a bounded in-memory cache;
//! sequential reads fetch whole chunks ahead into the local CAS. Every remote call runs
//! under the read deadline: a stalled remote is an error (EIO), never a hung reader.
//!
//! Eviction ([`evict`]): only of chunks proven on the remote (known set, else HEAD).
//!
//! GC ([`gc`]): the remote sweep deletes only objects that are not live, older than the
//! grace period, not pending, and not touched by a flush since the run began (a flush
//! gate makes every flush either visible to the mark or recorded as touched).
//!
//! Invariants:
//! - A chunk is in `known` only after a PUT or HEAD on this remote confirmed it, and it
//!   leaves `known` before the GC deletes its object. `known` is never persisted.
//! - A pending marker is durable before the metadata that references its chunk; it is
//!   removed only after the chunk is confirmed on the remote or is gone from the local
//!   CAS (garbage-collected there, so nothing references it).
//! - Lock order: `gc` then `queue` then `known`; none is held across an `.await`.

pub mod binding;
pub mod evict;
pub mod gc;
pub mod owner;
pub mod read;
pub mod upload;

use crate::engine::Engine;
use crate::error::{BlockError, Result};
use dittofs_remote::RemoteStore;
use dittofs_types::{ContentHash, ObjectId};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use binding::{CommitTicket, DataDurability, Publish, TierBinding};
pub use evict::{EvictStats, Evictor};
pub use gc::{GcError, GcRun, LiveSetError, SweepCounts};
pub use owner::{RemoteClaim, claim_remote};

/// Tunables of a remote tier.
#[derive(Clone, Debug)]
pub struct TierConfig {
    /// Uploads in flight at once.
    pub upload_parallelism: usize,
    /// Every remote read (ranged, whole chunk, HEAD for eviction) must finish within this.
    pub read_deadline: Duration,
    /// A `durability: remote` COMMIT waits this long for the remote's confirmation, then
    /// answers "retry later" (the data stays safe locally).
    pub commit_timeout: Duration,
    /// Whole chunks fetched ahead of a sequential reader.
    pub readahead_chunks: usize,
    /// Bytes of verified ranged reads kept in memory.
    pub range_cache_bytes: u64,
    /// First retry delay of a failed upload (doubles per attempt up to `max_backoff`).
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            upload_parallelism: 8,
            read_deadline: Duration::from_secs(30),
            commit_timeout: Duration::from_secs(60),
            readahead_chunks: 2,
            range_cache_bytes: 64 << 20,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Counters of a tier (monotonic since start, except `pending`).
#[derive(Debug, Default)]
pub struct TierStats {
    pub uploaded_chunks: AtomicU64,
    pub uploaded_bytes: AtomicU64,
    /// Staged chunks found on the remote by HEAD (not uploaded again).
    pub dedup_head_chunks: AtomicU64,
    /// Chunks of flushes that were already known on the remote (never staged).
    pub dedup_known_chunks: AtomicU64,
    pub dedup_known_bytes: AtomicU64,
    /// Quiesced files whose ObjectID was known: nothing staged.
    pub dedup_files: AtomicU64,
    pub upload_retries: AtomicU64,
    pub cold_reads: AtomicU64,
    pub cold_read_bytes: AtomicU64,
    pub readahead_chunks: AtomicU64,
    pub remote_read_errors: AtomicU64,
}

/// A snapshot of [`TierStats`] plus the queue length.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TierStatus {
    pub name: String,
    pub identity: String,
    pub pending_chunks: u64,
    pub uploaded_chunks: u64,
    pub uploaded_bytes: u64,
    pub dedup_head_chunks: u64,
    pub dedup_known_chunks: u64,
    pub dedup_known_bytes: u64,
    pub dedup_files: u64,
    pub upload_retries: u64,
    pub cold_reads: u64,
    pub cold_read_bytes: u64,
    pub readahead_chunks: u64,
    pub remote_read_errors: u64,
    pub last_upload_error: Option<String>,
}

/// The remote tier of one remote store (cheap to clone).
#[derive(Clone, Debug)]
pub struct RemoteTier {
    inner: Arc<TierInner>,
}

#[derive(Debug)]
pub(crate) struct TierInner {
    name: String,
    remote: Arc<dyn RemoteStore>,
    cfg: TierConfig,
    pending_dir: PathBuf,
    /// Engines by local block store name (registered by the shares that use them).
    engines: Mutex<HashMap<String, Engine>>,
    known: Mutex<HashSet<ContentHash>>,
    known_objects: Mutex<HashSet<ObjectId>>,
    pub(crate) queue: Mutex<upload::Queue>,
    /// Wakes the uploader (new work, a newly registered engine).
    wake: tokio::sync::Notify,
    /// Signalled after every confirmed upload (waiters of `durability: remote`).
    confirmed: tokio::sync::Notify,
    pub(crate) gc: Mutex<gc::GcGate>,
    /// Held shared by every flush of a share on this tier from staging to metadata
    /// commit; the GC takes it exclusively to start a run (see [`gc`]).
    flush_gate: tokio::sync::RwLock<()>,
    pub(crate) reads: read::ReadState,
    /// The server the location must belong to ([`owner`]); none: not checked.
    owner: Mutex<Option<crate::Owner>>,
    stats: TierStats,
    stop: CancellationToken,
}

impl RemoteTier {
    /// Creates the tier of `remote` named `name` with its state under `state_dir`, loads
    /// the pending markers left by a previous run and starts the uploader task (stopped by
    /// `stop`). Engines are attached later by each share's [`TierBinding::new`]; pending
    /// uploads of an engine wait until it is registered.
    pub fn start(
        name: &str,
        remote: Arc<dyn RemoteStore>,
        state_dir: &Path,
        cfg: TierConfig,
        stop: CancellationToken,
    ) -> Result<RemoteTier> {
        if cfg.upload_parallelism == 0 {
            return Err(BlockError::Config(
                "upload parallelism must be at least 1".into(),
            ));
        }
        let pending_dir = state_dir.join("pending");
        std::fs::create_dir_all(&pending_dir).map_err(crate::error::io_err(&pending_dir))?;
        upload::promote_deferred(state_dir, &pending_dir)?;
        let queue = upload::Queue::load(&pending_dir)?;
        let resumed = queue.len();
        let inner = Arc::new(TierInner {
            name: name.to_owned(),
            remote,
            reads: read::ReadState::new(cfg.range_cache_bytes),
            cfg,
            pending_dir,
            engines: Mutex::new(HashMap::new()),
            known: Mutex::new(HashSet::new()),
            known_objects: Mutex::new(HashSet::new()),
            queue: Mutex::new(queue),
            wake: tokio::sync::Notify::new(),
            confirmed: tokio::sync::Notify::new(),
            gc: Mutex::new(gc::GcGate::default()),
            flush_gate: tokio::sync::RwLock::new(()),
            owner: Mutex::new(None),
            stats: TierStats::default(),
            stop,
        });
        if resumed > 0 {
            tracing::info!(tier = %name, resumed, "resuming pending uploads");
        }
        let task = inner.clone();
        spawn_named(
            tracing::info_span!("tier-upload", tier = %name),
            upload::run(task),
        );
        Ok(RemoteTier { inner })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The remote's identity (`s3://bucket/prefix@endpoint`).
    pub fn identity(&self) -> String {
        self.inner.remote.identity()
    }

    pub fn remote(&self) -> &Arc<dyn RemoteStore> {
        &self.inner.remote
    }

    pub fn config(&self) -> &TierConfig {
        &self.inner.cfg
    }

    /// Attaches the engine of local block store `name` (idempotent).
    pub(crate) fn register_engine(&self, name: &str, engine: &Engine) {
        self.inner
            .engines
            .lock()
            .insert(name.to_owned(), engine.clone());
        self.inner.publish();
        self.inner.wake.notify_one();
    }

    /// Whether `hash` is known to be on the remote (confirmed in this run).
    pub fn is_known(&self, hash: &ContentHash) -> bool {
        self.inner.known.lock().contains(hash)
    }

    /// A snapshot of the counters.
    pub fn status(&self) -> TierStatus {
        let s = &self.inner.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let q = self.inner.queue.lock();
        TierStatus {
            name: self.inner.name.clone(),
            identity: self.identity(),
            pending_chunks: q.len() as u64,
            uploaded_chunks: g(&s.uploaded_chunks),
            uploaded_bytes: g(&s.uploaded_bytes),
            dedup_head_chunks: g(&s.dedup_head_chunks),
            dedup_known_chunks: g(&s.dedup_known_chunks),
            dedup_known_bytes: g(&s.dedup_known_bytes),
            dedup_files: g(&s.dedup_files),
            upload_retries: g(&s.upload_retries),
            cold_reads: g(&s.cold_reads),
            cold_read_bytes: g(&s.cold_read_bytes),
            readahead_chunks: g(&s.readahead_chunks),
            remote_read_errors: g(&s.remote_read_errors),
            last_upload_error: q.last_error.clone(),
        }
    }

    /// Held by a flush from before `RemoteTier::stage` until its metadata is committed.
    pub(crate) async fn flush_guard(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.inner.flush_gate.read().await
    }
}

impl TierInner {
    fn engine(&self, name: &str) -> Option<Engine> {
        self.engines.lock().get(name).cloned()
    }

    fn mark_known(&self, hash: ContentHash) {
        self.known.lock().insert(hash);
    }

    /// Tells every registered engine how many of its chunks are pending and whether
    /// uploads are failing (its writers' backpressure depends on it: `crate::space`).
    fn publish(&self) {
        let names: Vec<String> = self.engines.lock().keys().cloned().collect();
        let (counts, failing): (Vec<(String, u64)>, Option<String>) = {
            let q = self.queue.lock();
            let counts = names
                .into_iter()
                .map(|n| {
                    let c = q.pending_for(&n);
                    (n, c)
                })
                .collect();
            (counts, q.last_error.clone())
        };
        for (name, pending) in counts {
            if let Some(e) = self.engine(&name) {
                let failing = failing.clone().filter(|_| pending > 0);
                e.space().set_uploads(pending, failing);
            }
        }
    }
}

/// Runs `fut` under `deadline`; a timeout becomes [`BlockError::Remote`] naming `what`.
pub(crate) async fn with_deadline<T>(
    deadline: Duration,
    what: impl FnOnce() -> String,
    fut: impl std::future::Future<Output = dittofs_remote::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(deadline, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(BlockError::Remote(format!("{}: {e}", what()))),
        Err(_) => Err(BlockError::Remote(format!(
            "{}: no answer from the remote store within {} s",
            what(),
            deadline.as_secs_f64()
        ))),
    }
}

/// Spawns a background task inside `span` (its name in logs and traces). Every task of
/// the tier watches the tier's cancellation token.
pub(crate) fn spawn_named(
    span: tracing::Span,
    fut: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(tracing::Instrument::instrument(fut, span))
}
