//! Blocked lock requests: the fair queue, grants, cancellation and deadlock detection.
//!
//! Each file keeps its waiting requests in arrival order. A request (new or queued)
//! is *blocked by* an owner when that owner holds a conflicting lock, or has an earlier
//! queued request that conflicts with it, unless that earlier request is itself waiting
//! for a lock the requester holds (queueing behind it would deadlock two owners that
//! POSIX lets proceed). Whenever a file's locks or queue change, the queue is scanned
//! in order and every request that is no longer blocked is granted; so a shared request
//! never overtakes an earlier exclusive one on the same bytes (no writer starvation)
//! and the first of several equal waiters wins.
//!
//! Deadlock (NLM v4 `nlm4_deadlck`, RFC 8881 section 18.10.4 `NFS4ERR_DEADLOCK`, POSIX
//! `EDEADLK`): before a request is queued, the wait-for graph is followed from the
//! owners blocking it (owner -> owners its queued requests are blocked by, across all
//! files of the share); if it leads back to the requester, the request is refused.
//! Detection runs when a request is queued, as in POSIX implementations: a cycle that
//! only forms later, when a grant puts a new holder in front of queued requests, is not
//! detected (the clients' cancels and the owners' releases break it).
//!
//! Grant notification: a queued request is a [`WaitHandle`], a future that resolves
//! when the lock is granted (NLM's asynchronous GRANTED callback is sent when it does).
//! Dropping the handle or [`crate::state::LockManager::cancel`] (NLM CANCEL) removes
//! the request. A grant is final: a handle dropped after its grant but before being
//! polled leaves the lock held (its owner unlocks or is released as usual), as a
//! granted `F_SETLKW` stays granted.

use super::LockManager;
use super::byte_range::{ByteRange, LockKind, LockList};
use super::error::LockError;
use super::owner::Owner;
use super::{InodeState, Table};
use dittofs_types::Ino;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Identifies one queued request. Carries its inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId {
    pub(crate) ino: Ino,
    pub(crate) seq: u64,
}

impl WaiterId {
    pub fn ino(&self) -> Ino {
        self.ino
    }
}

impl fmt::Display for WaiterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "waiter#{}@{}", self.seq, self.ino)
    }
}

/// A queued request as [`crate::state::LockManager::snapshot`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaiterInfo {
    pub id: WaiterId,
    pub owner: Owner,
    pub range: ByteRange,
    pub kind: LockKind,
}

type Reply = oneshot::Sender<Result<(), LockError>>;

pub(crate) struct Waiter {
    pub(crate) info: WaiterInfo,
    reply: Reply,
}

impl Waiter {
    pub(crate) fn new(info: WaiterInfo) -> (Waiter, oneshot::Receiver<Result<(), LockError>>) {
        let (reply, rx) = oneshot::channel();
        (Waiter { info, reply }, rx)
    }

    /// Ends the wait with `result`; a receiver already gone is not an error.
    pub(crate) fn finish(self, result: Result<(), LockError>) {
        let _ = self.reply.send(result);
    }
}

/// The owners that keep `owner` from taking `range` as `kind` now, given the granted
/// `locks` and the requests queued `ahead` of it (module header has the rule).
pub(crate) fn blockers<'a>(
    locks: &'a LockList,
    ahead: &'a [Waiter],
    owner: &'a Owner,
    range: &'a ByteRange,
    kind: LockKind,
) -> impl Iterator<Item = &'a Owner> + 'a {
    let holders = locks.iter().filter(move |l| l.blocks(owner, range, kind));
    let queued = ahead.iter().filter(move |w| {
        let w = &w.info;
        let waits_for_me = || {
            locks
                .iter()
                .any(|l| &l.owner == owner && l.blocks(&w.owner, &w.range, w.kind))
        };
        &w.owner != owner
            && w.range.overlaps(range)
            && w.kind.conflicts_with(kind)
            && !waits_for_me()
    });
    holders
        .map(|l| &l.owner)
        .chain(queued.map(|w| &w.info.owner))
}

impl InodeState {
    /// Grants, in arrival order, every queued request no longer blocked.
    pub(crate) fn grant_ready(&mut self) {
        while let Some(i) = self.first_grantable() {
            let w = self.waiters.remove(i);
            let info = &w.info;
            self.locks.insert(&info.owner, info.range, info.kind);
            tracing::debug!(waiter = %info.id, owner = %info.owner, range = %info.range, "queued lock granted");
            w.finish(Ok(()));
        }
    }

    fn first_grantable(&self) -> Option<usize> {
        (0..self.waiters.len()).find(|&i| {
            let w = &self.waiters[i].info;
            let ahead = &self.waiters[..i];
            blockers(&self.locks, ahead, &w.owner, &w.range, w.kind)
                .next()
                .is_none()
        })
    }
}

impl Table {
    /// Whether `me`, blocked by `first`, would close a cycle of waiting owners.
    pub(crate) fn would_deadlock(&self, me: &Owner, first: Vec<Owner>) -> bool {
        let mut seen = HashSet::new();
        let mut stack = first;
        while let Some(o) = stack.pop() {
            if &o == me {
                return true;
            }
            if seen.insert(o.clone()) {
                stack.extend(self.blockers_of_owner(&o));
            }
        }
        false
    }

    /// Everyone the queued requests of `owner` wait for, over all files.
    fn blockers_of_owner(&self, owner: &Owner) -> Vec<Owner> {
        let mut out = Vec::new();
        for st in self.inodes.values() {
            for (i, w) in st.waiters.iter().enumerate() {
                let w = &w.info;
                if &w.owner == owner {
                    let ahead = &st.waiters[..i];
                    out.extend(blockers(&st.locks, ahead, &w.owner, &w.range, w.kind).cloned());
                }
            }
        }
        out
    }
}

/// A queued lock request; resolves to `Ok(())` when granted, or to
/// [`LockError::Cancelled`] when cancelled or its owner is released. Dropping it
/// before it resolves withdraws the request.
#[must_use = "dropping a WaitHandle withdraws the request"]
pub struct WaitHandle {
    id: WaiterId,
    rx: oneshot::Receiver<Result<(), LockError>>,
    manager: LockManager,
    done: bool,
}

impl WaitHandle {
    pub(crate) fn new(
        id: WaiterId,
        rx: oneshot::Receiver<Result<(), LockError>>,
        manager: LockManager,
    ) -> WaitHandle {
        WaitHandle {
            id,
            rx,
            manager,
            done: false,
        }
    }

    /// The request's id, for [`crate::state::LockManager::cancel`].
    pub fn id(&self) -> WaiterId {
        self.id
    }
}

impl Future for WaitHandle {
    type Output = Result<(), LockError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = Pin::new(&mut self.rx).poll(cx);
        polled.map(|r| {
            self.done = true;
            r.unwrap_or(Err(LockError::Cancelled))
        })
    }
}

impl Drop for WaitHandle {
    fn drop(&mut self) {
        if !self.done {
            self.manager.cancel(self.id);
        }
    }
}

impl fmt::Debug for WaitHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitHandle").field("id", &self.id).finish()
    }
}
