//! The remote half of GC: the sweep over the remote's listing, and the gate that keeps
//! it from deleting a chunk a concurrent flush is about to reference.
//!
//! Protocol (the mark itself reads metadata and lives in the server):
//! 1. [`RemoteTier::begin_gc`] takes the flush gate exclusively: every flush that staged
//!    chunks before this point has committed its metadata (so the mark will see it), and
//!    every flush after it records its chunks in `touched`.
//! 2. The caller marks: all block lists of all shares of every metadata store into an
//!    on-disk live set, plus [`GcRun::pending`].
//! 3. [`GcRun::sweep`] walks the remote. An object is deleted only if it is not live, was
//!    last modified before the cutoff (mark start - grace), is not pending upload and was
//!    not touched since step 1. The check and the `deleting` mark are one critical section
//!    with `stage`, and the uploader never confirms a chunk while it is being deleted, so
//!    a chunk is either kept or deleted before anyone relies on it being on the remote.
//! 4. Dropping the [`GcRun`] ends the run.
//!
//! A run that cannot start or a sweep that stops is a [`GcError`]; the lower error
//! (listing, live-set lookup) is kept as its source.

use super::{RemoteTier, with_deadline};
use crate::BlockError;
use dittofs_types::ContentHash;
use std::collections::HashSet;
use std::time::Duration;

/// The error a live-set lookup ([`GcRun::sweep`]'s `is_live`) may fail with.
pub type LiveSetError = Box<dyn std::error::Error + Send + Sync>;

/// Why a remote GC run did not start, or why its sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The ownership record names another server (see [`super::owner`]).
    #[error("GC refused on remote {remote:?}: {source}")]
    NotOwner {
        remote: String,
        #[source]
        source: BlockError,
    },
    /// The remote did not answer the ownership check: nothing may be deleted.
    #[error(
        "GC refused on remote {remote:?}: cannot verify that the location belongs to this server ({why})"
    )]
    Unverified { remote: String, why: String },
    #[error("a GC run is already active on remote {0:?}")]
    AlreadyActive(String),
    /// Listing the remote failed; the sweep stopped.
    #[error("sweep: {0}")]
    Listing(#[source] BlockError),
    /// The mark's live set could not answer; the sweep stopped (fail closed).
    #[error("live set: {0}")]
    LiveSet(#[source] LiveSetError),
}

/// Objects requested per listing page.
const PAGE: u32 = 1000;
/// Failed deletes kept by hash in the summary (the count is exact).
const MAX_FAILED_LISTED: usize = 20;

#[derive(Debug, Default)]
pub(crate) struct GcGate {
    pub(crate) active: bool,
    pub(crate) touched: HashSet<ContentHash>,
    pub(crate) deleting: HashSet<ContentHash>,
    /// Bumped whenever the sweep claims an object for deletion (see `evict::proven`).
    pub(crate) deletions: u64,
}

/// What a sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SweepCounts {
    pub scanned_objects: u64,
    pub live_objects: u64,
    /// Deleted (or, dry run, would be deleted).
    pub deleted_objects: u64,
    pub deleted_bytes: u64,
    pub kept_in_grace: u64,
    /// Not live but pending upload or referenced by a flush during the run.
    pub kept_in_use: u64,
    pub errors: u64,
    /// Some of the objects whose delete failed (retried by the next run).
    pub failed: Vec<String>,
}

/// An active GC run on a tier (ends when dropped).
#[derive(Debug)]
pub struct GcRun {
    tier: RemoteTier,
}

impl RemoteTier {
    /// Starts a GC run (see the module documentation). Fails if one is already active,
    /// or if the location cannot be proven this server's ([`super::owner`]).
    pub async fn begin_gc(&self) -> Result<GcRun, GcError> {
        self.verify_owner().await?;
        let _exclusive = self.inner.flush_gate.write().await;
        let mut g = self.inner.gc.lock();
        if g.active {
            return Err(GcError::AlreadyActive(self.inner.name.clone()));
        }
        g.active = true;
        g.touched.clear();
        Ok(GcRun { tier: self.clone() })
    }
}

impl Drop for GcRun {
    fn drop(&mut self) {
        let mut g = self.tier.inner.gc.lock();
        g.active = false;
        g.touched.clear();
    }
}

impl GcRun {
    /// Chunks waiting for upload (part of the live set).
    pub fn pending(&self) -> Vec<ContentHash> {
        self.tier.inner.queue.lock().hashes()
    }

    /// Walks the remote and deletes what is garbage (see the module documentation).
    /// `is_live` answers from the mark's live set; an error there aborts the sweep.
    /// `cutoff_unix`: objects modified at or after it are kept. `progress(n)` is called
    /// with the number of objects examined so far after every page.
    pub async fn sweep(
        &self,
        is_live: &(dyn Fn(&ContentHash) -> Result<bool, LiveSetError> + Sync),
        cutoff_unix: i64,
        dry_run: bool,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<SweepCounts, GcError> {
        let t = &self.tier.inner;
        let mut c = SweepCounts::default();
        let mut after: Option<String> = None;
        let deadline = t.cfg.read_deadline.max(Duration::from_secs(60));
        loop {
            let page = with_deadline(deadline, || "listing of the remote".into(), {
                t.remote.list(after.clone(), PAGE)
            })
            .await
            .map_err(GcError::Listing)?;
            for o in &page.objects {
                c.scanned_objects += 1;
                if is_live(&o.hash).map_err(GcError::LiveSet)? {
                    c.live_objects += 1;
                    continue;
                }
                if o.modified_unix >= cutoff_unix {
                    c.kept_in_grace += 1;
                    continue;
                }
                if dry_run {
                    c.deleted_objects += 1;
                    c.deleted_bytes += o.size;
                    continue;
                }
                {
                    let mut g = t.gc.lock();
                    if g.touched.contains(&o.hash) || t.queue.lock().contains(&o.hash) {
                        c.kept_in_use += 1;
                        continue;
                    }
                    g.deleting.insert(o.hash);
                    g.deletions += 1;
                    t.known.lock().remove(&o.hash);
                    // Any file-level dedup entry might include this chunk.
                    t.known_objects.lock().clear();
                }
                t.reads.forget(&o.hash);
                let r = with_deadline(
                    deadline,
                    || format!("delete of chunk {}", o.hash),
                    t.remote.delete(&o.hash),
                )
                .await;
                t.gc.lock().deleting.remove(&o.hash);
                match r {
                    Ok(()) => {
                        c.deleted_objects += 1;
                        c.deleted_bytes += o.size;
                    }
                    Err(e) => {
                        tracing::warn!(hash = %o.hash, error = %e, "remote GC could not delete an object");
                        c.errors += 1;
                        if c.failed.len() < MAX_FAILED_LISTED {
                            c.failed.push(o.hash.to_hex());
                        }
                    }
                }
            }
            progress(c.scanned_objects);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        Ok(c)
    }
}
