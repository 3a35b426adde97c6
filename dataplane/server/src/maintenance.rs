//! Local-tier garbage collection and the INV-02 audit.
//!
//! GC of one local block store (mark-sweep):
//! - Mark: every `BlockRef` hash of every share of every registered metadata store, plus
//!   every chunk row with a non-zero refcount, goes into a live set kept on disk
//!   (`<store>/gc-state/<run-id>/live`, a temporary sled tree), so memory stays bounded.
//!   Shares are not filtered by block store: over-marking only keeps a chunk longer,
//!   under-marking would lose data. Trashed files, open-but-unlinked files and files of
//!   shares that are configured but not served all still have block lists, so they are
//!   covered. The mark is fail-closed: any error aborts the run before anything is deleted.
//! - Sweep: every chunk file not in the live set and last written/deduplicated before
//!   `mark start - grace` is deleted (`LocalCas::remove_if_older`, which re-checks the age
//!   under the same lock a dedup hit takes). Data still in the write journal is not in the
//!   CAS yet, and chunks written by a flush racing the run are younger than the cutoff.
//!   Per-file delete failures are counted and the sweep continues.
//! - The summary is persisted at `<store>/gc-state/last-run.json`.
//!
//! With a remote tier (the share's remote; one tier per bucket + endpoint + prefix), the
//! same run also collects the remote (`dittofs_blockstore::tier::gc`): the run starts on
//! the tier before the mark (the flush gate: every flush is either in the mark or recorded
//! as touched), the chunks pending upload join the live set, and after the local sweep
//! the remote sweep deletes objects that are not live, older than the cutoff and not
//! touched. Shares of every metadata store are marked, so all shares that target the
//! same remote are covered. Per-object delete failures are counted and listed; the next
//! run retries them.
//!
//! Audit: [`dittofs_metadata::audit::audit_inv02`] for one share; the last result of each
//! share is kept in `<store>/audit-state/last-inv02.json` (a map share name -> report).
//!
//! A run that fails is a [`MaintenanceError`] saying which step failed, with the store's
//! error as its source; its Display is the run's `outcome` / the job's error.

use crate::progress::Progress;
use crate::state::{StateError, load_json, save_json};
use dittofs_blockstore::tier::{GcError, LiveSetError, SweepCounts};
use dittofs_blockstore::{BlockError, Engine, RemoteTier};
use dittofs_metadata::audit::{Inv02Report, audit_inv02, rfc3339_utc};
use dittofs_metadata::{MetaError, MetadataStore};
use dittofs_types::{ContentHash, Timestamp};
use dittofs_vfs::Fs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Default grace period: chunks younger than this are never collected.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
const PAGE: usize = 1024;

/// Result of one GC run (persisted as `last-run.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GcSummary {
    pub run_id: String,
    pub store: String,
    pub shares: Vec<String>,
    pub dry_run: bool,
    pub started_at: String,
    pub duration_ms: u64,
    pub grace_seconds: u64,
    pub live_chunks: u64,
    pub scanned_chunks: u64,
    pub deleted_chunks: u64,
    pub deleted_bytes: u64,
    pub kept_in_grace: u64,
    pub errors: u64,
    /// "succeeded" or "failed: <why>".
    pub outcome: String,
    /// The remote tier's sweep, when the share has a remote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteGcSummary>,
}

/// The remote half of a GC run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteGcSummary {
    /// Remote block store name and identity (`s3://bucket/prefix@endpoint`).
    pub store: String,
    pub identity: String,
    /// Chunks pending upload, kept as live.
    pub pending_chunks: u64,
    #[serde(flatten)]
    pub sweep: SweepCounts,
}

/// What a GC run works on.
pub struct GcInput {
    pub store: String,
    pub engine: Arc<Engine>,
    pub store_dir: PathBuf,
    /// Shares served from this block store (for the report).
    pub shares: Vec<String>,
    /// Every registered metadata store (the mark reads all their shares).
    pub metadata: Vec<(String, Arc<dyn MetadataStore>)>,
    pub dry_run: bool,
    pub grace: Duration,
    /// The remote tier to collect too: (remote block store name, tier).
    pub remote: Option<(String, RemoteTier)>,
}

/// Why a GC run or an audit stopped.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The run's scratch directory could not be made.
    #[error("{}: {source}", path.display())]
    ScratchDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The remote run did not start or its sweep stopped.
    #[error(transparent)]
    RemoteGc(#[from] GcError),
    /// The on-disk live set failed (the run is fail-closed: nothing more is deleted).
    #[error("live set: {0}")]
    LiveSet(#[source] sled::Error),
    #[error("mark: metadata store {store:?}: {source}")]
    Mark {
        store: String,
        #[source]
        source: MetaError,
    },
    #[error("sweep: {0}")]
    Sweep(#[source] BlockError),
    #[error("sweep task: {0}")]
    SweepTask(#[source] tokio::task::JoinError),
    #[error("audit of {share:?}: {source}")]
    Audit {
        share: String,
        #[source]
        source: MetaError,
    },
    #[error("audit of {share:?}: {source}")]
    ChunkAudit {
        share: String,
        #[source]
        source: crate::chunk_audit::ChunkAuditError,
    },
    /// A result file could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
}

pub fn gc_last_path(store_dir: &Path) -> PathBuf {
    store_dir.join("gc-state").join("last-run.json")
}

pub fn audit_last_path(store_dir: &Path) -> PathBuf {
    store_dir.join("audit-state").join("last-inv02.json")
}

/// Runs GC. The summary is persisted even when the run failed (then `outcome` says why
/// and nothing was deleted after the failure point), and the failure is returned.
pub async fn run_gc(input: GcInput, job: &dyn Progress) -> Result<GcSummary, MaintenanceError> {
    let started = SystemTime::now();
    let clock = std::time::Instant::now();
    let run_id = format!(
        "{}-{:04x}",
        rfc3339_utc(Timestamp::now()).replace([':', '-'], ""),
        rand::random::<u16>()
    );
    let mut sum = GcSummary {
        run_id: run_id.clone(),
        store: input.store.clone(),
        shares: input.shares.clone(),
        dry_run: input.dry_run,
        started_at: rfc3339_utc(Timestamp::now()),
        grace_seconds: input.grace.as_secs(),
        ..GcSummary::default()
    };
    let run_dir = input.store_dir.join("gc-state").join(&run_id);
    let result = gc_inner(&input, job, &run_dir, started, &mut sum).await;
    sum.duration_ms = clock.elapsed().as_millis() as u64;
    sum.outcome = match &result {
        Ok(()) => "succeeded".into(),
        Err(e) => format!("failed: {e}"),
    };
    if let Err(e) = std::fs::remove_dir_all(&run_dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %run_dir.display(), error = %e, "cannot remove GC scratch directory");
    }
    if let Err(e) = save_json(&gc_last_path(&input.store_dir), &sum, 0o644) {
        tracing::warn!(error = %e, "cannot persist the GC summary");
    }
    tracing::info!(store = %sum.store, dry_run = sum.dry_run, deleted = sum.deleted_chunks,
        bytes = sum.deleted_bytes, live = sum.live_chunks, outcome = %sum.outcome, "GC finished");
    result.map(|()| sum)
}

async fn gc_inner(
    input: &GcInput,
    job: &dyn Progress,
    run_dir: &Path,
    started: SystemTime,
    sum: &mut GcSummary,
) -> Result<(), MaintenanceError> {
    std::fs::create_dir_all(run_dir).map_err(|source| MaintenanceError::ScratchDir {
        path: run_dir.to_owned(),
        source,
    })?;
    // The remote run starts before the mark (see the module documentation).
    let remote_run = match &input.remote {
        Some((name, tier)) => Some((name.clone(), tier.clone(), tier.begin_gc().await?)),
        None => None,
    };
    let live = sled::Config::new()
        .path(run_dir.join("live"))
        .temporary(true)
        .open()
        .map_err(MaintenanceError::LiveSet)?;
    let add = |h: &ContentHash| -> Result<(), MaintenanceError> {
        live.insert(h.as_bytes(), &[])
            .map(|_| ())
            .map_err(MaintenanceError::LiveSet)
    };

    // ---- mark (fail-closed) ----
    job.phase("mark", 0);
    for (store_name, store) in &input.metadata {
        let ctx = |source| MaintenanceError::Mark {
            store: store_name.clone(),
            source,
        };
        for share in store.list_shares().await.map_err(ctx)? {
            let mut after = None;
            loop {
                let page = store
                    .scan_blocks(share.id, after, PAGE)
                    .await
                    .map_err(ctx)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(*last);
                for (_, blocks) in &page {
                    for b in blocks {
                        add(&b.hash)?;
                    }
                    job.add(1);
                }
            }
            let mut after = None;
            loop {
                let page = store
                    .scan_chunks(share.id, after, PAGE)
                    .await
                    .map_err(ctx)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(*last);
                for (h, row) in &page {
                    if row.refcount > 0 {
                        add(h)?;
                    }
                }
            }
        }
    }
    let mut pending_chunks = 0;
    if let Some((_, _, run)) = &remote_run {
        for h in run.pending() {
            add(&h)?;
            pending_chunks += 1;
        }
    }
    sum.live_chunks = live.len() as u64;

    // ---- sweep ----
    job.phase("sweep", 0);
    let cutoff = started
        .checked_sub(input.grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let engine = input.engine.clone();
    let dry = input.dry_run;
    let counts = tokio::task::spawn_blocking({
        let live = live.clone();
        move || -> Result<[u64; 5], MaintenanceError> {
            // scanned, deleted, bytes, kept_in_grace, errors
            let mut c = [0u64; 5];
            let cas = engine.cas();
            cas.walk(|hash, len, mtime| {
                c[0] += 1;
                let is_live = live.contains_key(hash.as_bytes()).map_err(|e| {
                    dittofs_blockstore::BlockError::Invalid(format!("live set: {e}"))
                })?;
                if is_live {
                    return Ok(());
                }
                if mtime >= cutoff {
                    c[3] += 1;
                } else if dry {
                    c[1] += 1;
                    c[2] += len;
                } else {
                    match cas.remove_if_older(&hash, cutoff) {
                        Ok(Some(n)) => {
                            c[1] += 1;
                            c[2] += n;
                        }
                        Ok(None) => c[3] += 1,
                        Err(e) => {
                            tracing::warn!(%hash, error = %e, "GC could not delete a chunk");
                            c[4] += 1;
                        }
                    }
                }
                Ok(())
            })
            .map_err(MaintenanceError::Sweep)?;
            if !dry {
                cas.sync_dirs().map_err(MaintenanceError::Sweep)?;
            }
            Ok(c)
        }
    })
    .await
    .map_err(MaintenanceError::SweepTask)??;
    job.add(counts[0]);
    [
        sum.scanned_chunks,
        sum.deleted_chunks,
        sum.deleted_bytes,
        sum.kept_in_grace,
        sum.errors,
    ] = counts;

    // ---- remote sweep ----
    if let Some((name, tier, run)) = remote_run {
        job.phase("remote sweep", 0);
        let cutoff_unix = cutoff
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let is_live = |h: &ContentHash| -> Result<bool, LiveSetError> {
            Ok(live.contains_key(h.as_bytes())?)
        };
        let progress = |n: u64| job.set(n);
        let sweep = run
            .sweep(&is_live, cutoff_unix, input.dry_run, &progress)
            .await?;
        sum.remote = Some(RemoteGcSummary {
            store: name,
            identity: tier.identity(),
            pending_chunks,
            sweep,
        });
    }
    Ok(())
}

/// Runs the INV-02 audit of one share and records it as the share's last audit.
/// `verify`: read and hash every referenced chunk instead of only looking it up.
pub async fn run_audit(
    fs: &Fs,
    verify: bool,
    store_dir: &Path,
    job: &dyn Progress,
) -> Result<Inv02Report, MaintenanceError> {
    let share_name = fs.name();
    job.phase("scan", 0);
    let mut report = audit_inv02(fs.store().as_ref(), fs.share_id(), share_name)
        .await
        .map_err(|source| MaintenanceError::Audit {
            share: share_name.to_owned(),
            source,
        })?;
    crate::chunk_audit::check_chunks(fs, verify, job, &mut report)
        .await
        .map_err(|source| MaintenanceError::ChunkAudit {
            share: share_name.to_owned(),
            source,
        })?;
    let path = audit_last_path(store_dir);
    let mut all: BTreeMap<String, Inv02Report> = load_json(&path)?.unwrap_or_default();
    all.insert(share_name.to_owned(), report.clone());
    save_json(&path, &all, 0o644)?;
    Ok(report)
}

pub fn last_audit(store_dir: &Path, share_name: &str) -> Result<Option<Inv02Report>, StateError> {
    let all: Option<BTreeMap<String, Inv02Report>> = load_json(&audit_last_path(store_dir))?;
    Ok(all.and_then(|mut m| m.remove(share_name)))
}

pub fn last_gc(store_dir: &Path) -> Result<Option<GcSummary>, StateError> {
    load_json(&gc_last_path(store_dir))
}
