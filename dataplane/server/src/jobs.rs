//! Long-running control operations (GC, audit) as jobs: an id, a phase, progress counters
//! and, at the end, a result or an error. Clients poll `GetJob` or stream `WatchJob`.
//!
//! Invariants: at most one job per (kind, key) runs at a time (key: the block store for GC,
//! the share for an audit); finished jobs are kept (the newest 256) so a client that
//! reconnects can still read the result.

use crate::maintenance::{GcSummary, MaintenanceError};
use crate::progress::Progress;
use dittofs_metadata::audit::Inv02Report;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const KEEP_FINISHED: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug)]
pub enum JobResult {
    Gc(Box<GcSummary>),
    Audit(Inv02Report),
}

/// Why a job failed. Its text is the job's `error` as `GetJob` and `WatchJob` show it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The GC run failed (its persisted summary's `outcome` has the same text).
    #[error("failed: {0}")]
    Gc(#[source] MaintenanceError),
    #[error(transparent)]
    Audit(MaintenanceError),
    /// The server stopped before the job ended.
    #[error("server shutting down")]
    ShuttingDown,
}

/// A point-in-time view of a job.
#[derive(Clone, Debug)]
pub struct JobSnapshot {
    pub id: String,
    pub kind: &'static str,
    pub share: String,
    pub state: JobState,
    pub phase: String,
    pub done: u64,
    pub total: u64,
    pub error: String,
    pub result: Option<JobResult>,
}

/// The running side of a job: the task reports progress through it.
#[derive(Debug)]
pub struct JobHandle {
    pub id: String,
    kind: &'static str,
    key: String,
    share: String,
    done: AtomicU64,
    total: AtomicU64,
    /// State, phase, the failure, the result.
    inner: Mutex<(JobState, String, Option<JobError>, Option<JobResult>)>,
}

impl Progress for JobHandle {
    fn phase(&self, name: &str, total: u64) {
        self.inner.lock().1 = name.to_owned();
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    fn set(&self, n: u64) {
        self.done.store(n, Ordering::Relaxed);
    }
}

impl JobHandle {
    pub fn finish(&self, r: Result<JobResult, JobError>) {
        let mut g = self.inner.lock();
        match r {
            Ok(res) => {
                g.0 = JobState::Succeeded;
                g.3 = Some(res);
            }
            Err(e) => {
                g.0 = JobState::Failed;
                g.2 = Some(e);
            }
        }
    }

    pub fn snapshot(&self) -> JobSnapshot {
        let g = self.inner.lock();
        JobSnapshot {
            id: self.id.clone(),
            kind: self.kind,
            share: self.share.clone(),
            state: g.0,
            phase: g.1.clone(),
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            error: g.2.as_ref().map(ToString::to_string).unwrap_or_default(),
            result: g.3.clone(),
        }
    }

    fn running(&self) -> bool {
        self.inner.lock().0 == JobState::Running
    }
}

/// A job of the same kind and key is still running (at most one runs at a time).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("job {id} is already running")]
pub struct AlreadyRunning {
    /// The running job's id.
    pub id: String,
}

#[derive(Default)]
pub struct Jobs {
    seq: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<JobHandle>>>,
}

impl Jobs {
    /// Registers a new running job, or returns the id of the one already running for
    /// (`kind`, `key`).
    pub fn start(
        &self,
        kind: &'static str,
        key: &str,
        share: &str,
    ) -> Result<Arc<JobHandle>, AlreadyRunning> {
        let mut map = self.map.lock();
        if let Some(j) = map
            .values()
            .find(|j| j.kind == kind && j.key == key && j.running())
        {
            return Err(AlreadyRunning { id: j.id.clone() });
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let h = Arc::new(JobHandle {
            id: format!("{kind}-{n}"),
            kind,
            key: key.to_owned(),
            share: share.to_owned(),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            inner: Mutex::new((JobState::Running, "starting".into(), None, None)),
        });
        map.insert(n, h.clone());
        while map.len() > KEEP_FINISHED {
            let Some(oldest) = map.iter().find(|(_, j)| !j.running()).map(|(k, _)| *k) else {
                break;
            };
            map.remove(&oldest);
        }
        Ok(h)
    }

    pub fn get(&self, id: &str) -> Option<Arc<JobHandle>> {
        self.map.lock().values().find(|j| j.id == id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_job_per_key_and_results_are_kept() {
        let jobs = Jobs::default();
        let a = jobs.start("gc", "local1", "/a").unwrap();
        assert_eq!(
            jobs.start("gc", "local1", "/b").unwrap_err(),
            AlreadyRunning { id: a.id.clone() }
        );
        let b = jobs.start("gc", "local2", "/c").unwrap();
        a.phase("mark", 10);
        a.add(3);
        let s = jobs.get(&a.id).unwrap().snapshot();
        assert_eq!((s.phase.as_str(), s.done, s.total), ("mark", 3, 10));
        let scratch = MaintenanceError::ScratchDir {
            path: "/gc-state/1".into(),
            source: std::io::Error::other("no space"),
        };
        a.finish(Err(JobError::Gc(scratch)));
        let s = jobs.get(&a.id).unwrap().snapshot();
        assert_eq!(s.state, JobState::Failed);
        assert_eq!(s.error, "failed: /gc-state/1: no space");
        b.finish(Err(JobError::ShuttingDown));
        assert_eq!(b.snapshot().error, "server shutting down");
        assert!(jobs.start("gc", "local1", "/a").is_ok());
        assert_ne!(a.id, b.id);
        assert!(jobs.get("gc-999").is_none());
    }
}
