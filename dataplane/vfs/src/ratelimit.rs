//! Rate-limited logging of events a client can cause at will: records that are not RPC
//! calls, oversized records, refused mounts and source ports, clients that stop reading,
//! failed accepts (the NFS adapter), writes refused for want of space (the core). A flood
//! of them must not flood the log (2.3 million garbage records once wrote 186,484 WARN
//! lines); the counters in /metrics have every one. It lives in the core so that the core
//! and every protocol adapter above it share one mechanism.
//!
//! Invariants:
//! - every occurrence increments the kind's Prometheus counter, logged or not;
//! - per kind, the first occurrence is logged at once, then at most one line per period;
//!   a line reports how many occurrences were suppressed since the previous line (those
//!   after the last line are in the counter only);
//! - the message is built only for occurrences that are logged.

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use std::time::{Duration, Instant};

/// At most one line per kind per this period.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// The level a kind is logged at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Warn,
    Info,
}

/// One kind of event: its counter and its log window.
pub struct LimitedLog {
    /// Logged as the field `kind` (JSON logs can be filtered by it).
    kind: &'static str,
    level: Level,
    period: Duration,
    counter: Counter,
    window: Mutex<Window>,
}

/// When the kind was last logged and what was suppressed since.
#[derive(Debug, Default)]
struct Window {
    last: Option<Instant>,
    suppressed: u64,
}

impl Window {
    /// `Some(suppressed before this one)` when the occurrence at `now` is to be logged.
    fn admit(&mut self, now: Instant, period: Duration) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

impl LimitedLog {
    /// Kind `kind` logged at `level`, counted in `counter` (a clone of a registered
    /// counter).
    pub fn new(kind: &'static str, level: Level, counter: Counter) -> LimitedLog {
        LimitedLog::with_period(kind, level, counter, LOG_EVERY)
    }

    pub fn with_period(
        kind: &'static str,
        level: Level,
        counter: Counter,
        period: Duration,
    ) -> LimitedLog {
        LimitedLog {
            kind,
            level,
            period,
            counter,
            window: Mutex::new(Window::default()),
        }
    }

    /// Counts one occurrence and logs `msg()` unless this kind was logged less than a
    /// period ago.
    pub fn hit(&self, msg: impl FnOnce() -> String) {
        self.counter.inc();
        let Some(suppressed) = self.window.lock().admit(Instant::now(), self.period) else {
            return;
        };
        let msg = msg();
        let kind = self.kind;
        match (self.level, suppressed) {
            (Level::Warn, 0) => tracing::warn!(kind, "{msg}"),
            (Level::Warn, n) => tracing::warn!(
                kind,
                suppressed = n,
                "{msg} ({n} more like this since the previous line, not logged)"
            ),
            (Level::Info, 0) => tracing::info!(kind, "{msg}"),
            (Level::Info, n) => tracing::info!(
                kind,
                suppressed = n,
                "{msg} ({n} more like this since the previous line, not logged)"
            ),
        }
    }

    /// Occurrences counted so far.
    pub fn count(&self) -> u64 {
        self.counter.get()
    }

    /// The counter (a handle to the same count), to register in a metrics registry.
    pub fn counter(&self) -> Counter {
        self.counter.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first occurrence is logged, the rest of the period is suppressed, and the
    /// first occurrence of the next period is logged with the number suppressed.
    #[test]
    fn window_logs_first_then_one_per_period() {
        let t0 = Instant::now();
        let p = Duration::from_secs(10);
        let mut w = Window::default();
        assert_eq!(w.admit(t0, p), Some(0));
        for ms in [1, 500, 9_999] {
            assert_eq!(w.admit(t0 + Duration::from_millis(ms), p), None, "{ms} ms");
        }
        assert_eq!(w.admit(t0 + Duration::from_secs(10), p), Some(3));
        assert_eq!(w.admit(t0 + Duration::from_secs(11), p), None);
        assert_eq!(w.admit(t0 + Duration::from_secs(25), p), Some(1));
        assert_eq!(w.admit(t0 + Duration::from_secs(60), p), Some(0));
    }

    /// Every occurrence is counted; the message is built only when logged.
    #[test]
    fn counts_every_occurrence_builds_few_messages() {
        let log = LimitedLog::with_period(
            "test",
            Level::Warn,
            Counter::default(),
            Duration::from_secs(3600),
        );
        let mut built = 0;
        for _ in 0..10_000 {
            log.hit(|| {
                built += 1;
                "bad".into()
            });
        }
        assert_eq!(log.count(), 10_000);
        assert_eq!(built, 1);
    }
}
