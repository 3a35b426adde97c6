//! The protocol-neutral lock and lease manager of one share: opens with share
//! reservations, POSIX byte-range locks with a fair blocking queue and deadlock
//! detection, a mandatory I/O check, and leases/delegations with recall.
//!
//! Not to be confused with the crate's internal per-inode mutexes (`locks.rs`), which
//! serialise metadata operations; this module holds the locks clients ask for.
//!
//! Spec sections implemented (each submodule names its own):
//! - NLM v4 (Open Group XNFS, "Network Lock Manager Protocol"; the locking side of RFC
//!   1813 NFSv3): TEST, LOCK (blocking and not), CANCEL, UNLOCK, GRANTED, FREE_ALL.
//! - NFSv4.x: RFC 8881 section 9 "File Locking and Share Reservations" and section 10
//!   "Delegations" (RFC 7530 sections 9 and 10 for NFSv4.0).
//! - SMB2/3: MS-SMB2 3.3.5.9 (CREATE share access), 3.3.5.14 (LOCK), 3.3.1.4 and
//!   3.3.4.7 (leases and their breaks); MS-FSA 2.1.4.10 (byte-range conflicts).
//!
//! Design and invariants:
//! - One [`LockManager`] per share, cheap to clone (an `Arc`). All state sits behind
//!   one mutex (deadlock detection needs a consistent view across files); no await and
//!   no callback runs while it is held.
//! - Per-file state lives in a map whose entries are removed as soon as they hold
//!   nothing (no open, lock, waiter or lease): the map never grows with files merely
//!   touched.
//! - State is in memory only. After a restart clients reclaim it during the grace
//!   period (NLM SM_NOTIFY + reclaim, NFSv4 RFC 8881 section 8.4.2); the adapters run
//!   the grace period.
//! - No wire codes: [`LockError`] is mapped by each adapter.
//! - Adapters are told, outside the mutex, of what they cannot poll for: lease recalls
//!   ([`LeaseBreaker`]) and files whose byte-range locks were released
//!   ([`UnlockListener`]: an unlock, a close that drops its owner's locks, the release of
//!   an owner or client), so NFSv4 can send CB_NOTIFY_LOCK to the lock-owners that poll
//!   for a blocked lock. NLM's blocked locks need no such event: they wait in the file's
//!   queue (`waiters`) and are granted there, while an NFSv4 client polls and is never
//!   granted a lock on its behalf.

mod byte_range;
mod error;
mod ids;
mod lease;
mod locking;
mod open;
mod owner;
mod share;
mod waiters;

pub use byte_range::{ByteRange, HeldLock, LockKind, RangeError};
pub use error::{LockConflict, LockError, ShareConflict};
pub use ids::{LeaseId, OpenId};
pub use lease::{
    BreakCause, BreakOutcome, ChannelBreaker, LeaseBreaker, LeaseEvent, LeaseInfo, LeaseKind,
};
pub use locking::{CancelOutcome, LockQueued, UnlockListener};
pub use open::{Access, OpenInfo};
pub use owner::{ClientId, Owner, Protocol};
pub use waiters::{WaitHandle, WaiterId, WaiterInfo};

use byte_range::LockList;
use dittofs_types::Ino;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;
use waiters::Waiter;

/// Everything known about one file.
#[derive(Default)]
pub(crate) struct InodeState {
    locks: LockList,
    opens: Vec<OpenInfo>,
    waiters: Vec<Waiter>,
    leases: Vec<LeaseInfo>,
}

impl InodeState {
    fn is_empty(&self) -> bool {
        self.locks.is_empty()
            && self.opens.is_empty()
            && self.waiters.is_empty()
            && self.leases.is_empty()
    }
}

#[derive(Default)]
pub(crate) struct Table {
    inodes: HashMap<Ino, InodeState>,
}

struct Inner {
    table: Mutex<Table>,
    breaker: Option<Arc<dyn LeaseBreaker>>,
    unlocks: Option<Arc<dyn UnlockListener>>,
    next_seq: AtomicU64,
    /// Bumped whenever a lease is acknowledged, returned or removed.
    lease_changes: watch::Sender<u64>,
}

/// Who a [`LockManager`] tells of what happens in it (see the module header).
#[derive(Clone, Default)]
pub struct Hooks {
    /// Sent lease recalls and revocations.
    pub breaker: Option<Arc<dyn LeaseBreaker>>,
    /// Told of files whose byte-range locks were released.
    pub unlocks: Option<Arc<dyn UnlockListener>>,
}

/// The lock and lease manager of one share.
#[derive(Clone)]
pub struct LockManager {
    inner: Arc<Inner>,
}

/// One file's state, for diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InodeSnapshot {
    pub locks: Vec<HeldLock>,
    pub opens: Vec<OpenInfo>,
    pub waiters: Vec<WaiterInfo>,
    pub leases: Vec<LeaseInfo>,
}

/// What a release took away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub locks: usize,
    pub opens: usize,
    pub waiters: usize,
    pub leases: usize,
}

impl Default for LockManager {
    fn default() -> LockManager {
        LockManager::new()
    }
}

impl LockManager {
    /// A manager whose leases are never recalled by anyone (no adapter grants leases).
    pub fn new() -> LockManager {
        LockManager::with_hooks(Hooks::default())
    }

    /// A manager that sends lease recalls to `breaker`.
    pub fn with_breaker(breaker: Arc<dyn LeaseBreaker>) -> LockManager {
        LockManager::with_hooks(Hooks {
            breaker: Some(breaker),
            unlocks: None,
        })
    }

    /// A manager that tells `hooks` of recalls and released locks.
    pub fn with_hooks(hooks: Hooks) -> LockManager {
        let inner = Inner {
            table: Mutex::new(Table::default()),
            breaker: hooks.breaker,
            unlocks: hooks.unlocks,
            next_seq: AtomicU64::new(1),
            lease_changes: watch::Sender::new(0),
        };
        LockManager {
            inner: Arc::new(inner),
        }
    }

    fn next_seq(&self) -> u64 {
        self.inner.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `f` on `ino`'s state (created if absent) and drops the state if it ends
    /// empty.
    fn edit<R>(&self, ino: Ino, f: impl FnOnce(&mut InodeState) -> R) -> R {
        let mut table = self.inner.table.lock();
        let st = table.inodes.entry(ino).or_default();
        let out = f(st);
        if st.is_empty() {
            table.inodes.remove(&ino);
        }
        out
    }

    /// Runs `f` on `ino`'s state if it has any (else on an empty state, not kept).
    fn edit_existing<R>(&self, ino: Ino, f: impl FnOnce(&mut InodeState) -> R) -> R {
        let mut table = self.inner.table.lock();
        match table.inodes.get_mut(&ino) {
            Some(st) => f(st),
            None => f(&mut InodeState::default()),
        }
    }

    /// Everything held on or queued for `ino`.
    pub fn snapshot(&self, ino: Ino) -> InodeSnapshot {
        let table = self.inner.table.lock();
        let Some(st) = table.inodes.get(&ino) else {
            return InodeSnapshot::default();
        };
        InodeSnapshot {
            locks: st.locks.iter().cloned().collect(),
            opens: st.opens.clone(),
            waiters: st.waiters.iter().map(|w| w.info.clone()).collect(),
            leases: st.leases.clone(),
        }
    }

    /// How many files have any state (0 when everything was released).
    pub fn inodes_in_use(&self) -> usize {
        self.inner.table.lock().inodes.len()
    }

    /// Releases everything of one owner on every file (NFSv4 RELEASE_LOCKOWNER, SMB
    /// close of an open's owner): locks, opens, queued requests (they resolve to
    /// [`LockError::Cancelled`]) and leases it holds; then grants what became free.
    pub fn release_owner(&self, owner: &Owner) -> Released {
        self.release_where(|o| o == owner)
    }

    /// Releases everything of one client (NLM FREE_ALL or a host reboot, NFSv4 lease
    /// expiry, SMB session logoff).
    pub fn release_client(&self, protocol: Protocol, client: &ClientId) -> Released {
        self.release_where(|o| o.is_of_client(protocol, client))
    }

    fn release_where(&self, pred: impl Fn(&Owner) -> bool) -> Released {
        let mut total = Released::default();
        let mut unlocked = Vec::new();
        let mut table = self.inner.table.lock();
        for (ino, st) in table.inodes.iter_mut() {
            let r = st.release_where(&pred);
            if r.locks > 0 {
                unlocked.push(*ino);
            }
            total.locks += r.locks;
            total.opens += r.opens;
            total.waiters += r.waiters;
            total.leases += r.leases;
        }
        table.inodes.retain(|_, st| !st.is_empty());
        drop(table);
        if total.leases > 0 {
            self.leases_changed();
        }
        unlocked.into_iter().for_each(|ino| self.unlocked(ino));
        total
    }

    /// Tells the [`UnlockListener`] that locks on `ino` were released (never called
    /// under the mutex).
    pub(crate) fn unlocked(&self, ino: Ino) {
        if let Some(l) = &self.inner.unlocks {
            l.unlocked(ino);
        }
    }
}

impl InodeState {
    fn release_where(&mut self, pred: &impl Fn(&Owner) -> bool) -> Released {
        let locks = self.locks.remove_where(pred);
        let opens = self.opens.len();
        self.opens.retain(|o| !pred(&o.owner));
        let leases = self.leases.len();
        self.leases.retain(|l| !pred(&l.holder));
        let (gone, kept) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition::<Vec<_>, _>(|w| pred(&w.info.owner));
        self.waiters = kept;
        let waiters = gone.len();
        gone.into_iter()
            .for_each(|w| w.finish(Err(LockError::Cancelled)));
        self.grant_ready();
        Released {
            locks,
            opens: opens - self.opens.len(),
            waiters,
            leases: leases - self.leases.len(),
        }
    }
}

#[cfg(test)]
mod tests;
