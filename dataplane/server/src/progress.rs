//! How long-running work (GC, the audits) reports its progress, without knowing who
//! follows it.
//!
//! The work takes a `&dyn Progress`; the job registry's handle implements it, so the
//! work sits below the registry (which holds the work's results) and never imports it.
//! Counters are advisory: a reader may see a phase's count before its total.

/// Progress of one run: the current phase and a counter within it.
pub trait Progress: Sync {
    /// Enters a new phase and resets its counter; `total` 0 = unknown.
    fn phase(&self, name: &str, total: u64);
    /// Adds `n` to the current phase's counter.
    fn add(&self, n: u64);
    /// Sets the current phase's counter.
    fn set(&self, n: u64);
}
