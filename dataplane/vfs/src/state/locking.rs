//! The byte-range lock operations of [`LockManager`]: lock (non-blocking, queued,
//! waiting), unlock, test, cancel and the mandatory I/O check.
//!
//! Non-blocking requests (NLM LOCK with `block = false`, NFSv4 LOCK, SMB LOCK with
//! `FAIL_IMMEDIATELY`) are checked against granted locks only, like `F_SETLK`; queued
//! requests also respect the queue (see `waiters`). The mandatory check implements
//! MS-FSA 2.1.4.10 "Algorithm to Check for a Byte-Range Lock Conflict": a read
//! conflicts with another owner's exclusive lock, a write with any lock of another
//! owner. NLM and NFSv4 locks are advisory; their adapters do not call it.
//!
//! Every operation that releases locks of a file ([`LockManager::unlock`],
//! `close_releasing_locks`, `release_owner`/`release_client`) tells the manager's
//! [`UnlockListener`] after the mutex is dropped. A LOCK that turns an owner's exclusive
//! range into a shared one does not (it frees nothing for a writer).

use super::LockManager;
use super::byte_range::{ByteRange, LockKind};
use super::error::{LockConflict, LockError};
use super::owner::Owner;
use super::waiters::{WaitHandle, Waiter, WaiterId, WaiterInfo, blockers};
use dittofs_types::Ino;

/// Told of files whose byte-range locks were released (NFSv4 CB_NOTIFY_LOCK, RFC 8881
/// section 20.11). Called outside the manager's mutex; must not block.
pub trait UnlockListener: Send + Sync {
    /// Some lock on `ino` was released.
    fn unlocked(&self, ino: Ino);
}

/// The outcome of [`LockManager::lock_queued`].
#[derive(Debug)]
pub enum LockQueued {
    /// Granted at once.
    Granted,
    /// Queued; the handle resolves when granted (NLM answers `LCK_BLOCKED` now and
    /// sends GRANTED then).
    Queued(WaitHandle),
}

/// What [`LockManager::cancel`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The request was queued and is withdrawn.
    Cancelled,
    /// No such request is queued: it was granted, cancelled or released before.
    NotQueued,
}

impl LockManager {
    /// Non-blocking lock: grants or reports the first conflicting lock.
    pub fn lock(
        &self,
        ino: Ino,
        owner: &Owner,
        range: ByteRange,
        kind: LockKind,
    ) -> Result<(), LockError> {
        self.edit(ino, |st| {
            if let Some(held) = st.locks.conflict(owner, &range, kind) {
                return Err(LockError::Conflict(LockConflict::from(held)));
            }
            st.locks.insert(owner, range, kind);
            // Replacing the owner's exclusive range by a shared one may admit waiters.
            st.grant_ready();
            Ok(())
        })
    }

    /// Blocking lock without waiting here: grants at once, queues, or refuses with
    /// [`LockError::Deadlock`].
    pub fn lock_queued(
        &self,
        ino: Ino,
        owner: &Owner,
        range: ByteRange,
        kind: LockKind,
    ) -> Result<LockQueued, LockError> {
        let seq = self.next_seq();
        let mut table = self.inner.table.lock();
        let blocked_by: Vec<Owner> = match table.inodes.get(&ino) {
            Some(st) => blockers(&st.locks, &st.waiters, owner, &range, kind)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        if !blocked_by.is_empty() && table.would_deadlock(owner, blocked_by.clone()) {
            tracing::debug!(%owner, %range, "lock refused: deadlock");
            return Err(LockError::Deadlock);
        }
        let st = table.inodes.entry(ino).or_default();
        if blocked_by.is_empty() {
            st.locks.insert(owner, range, kind);
            st.grant_ready();
            return Ok(LockQueued::Granted);
        }
        let id = WaiterId { ino, seq };
        let info = WaiterInfo {
            id,
            owner: owner.clone(),
            range,
            kind,
        };
        let (waiter, rx) = Waiter::new(info);
        st.waiters.push(waiter);
        Ok(LockQueued::Queued(WaitHandle::new(id, rx, self.clone())))
    }

    /// Blocking lock: waits in the file's queue until granted. Dropping the future
    /// withdraws the request.
    pub async fn lock_wait(
        &self,
        ino: Ino,
        owner: &Owner,
        range: ByteRange,
        kind: LockKind,
    ) -> Result<(), LockError> {
        match self.lock_queued(ino, owner, range, kind)? {
            LockQueued::Granted => Ok(()),
            LockQueued::Queued(handle) => handle.await,
        }
    }

    /// Withdraws a queued request (NLM CANCEL); its handle resolves to
    /// [`LockError::Cancelled`] and the requests behind it are re-examined.
    pub fn cancel(&self, id: WaiterId) -> CancelOutcome {
        self.edit(id.ino, |st| {
            let Some(at) = st.waiters.iter().position(|w| w.info.id == id) else {
                return CancelOutcome::NotQueued;
            };
            st.waiters.remove(at).finish(Err(LockError::Cancelled));
            st.grant_ready();
            CancelOutcome::Cancelled
        })
    }

    /// Unlocks `range` for `owner` (splitting its locks), then grants what became free.
    /// Returns whether `owner` held any byte of it (POSIX and NLM treat an unlock of
    /// nothing as success; SMB answers `STATUS_RANGE_NOT_LOCKED`).
    pub fn unlock(&self, ino: Ino, owner: &Owner, range: ByteRange) -> bool {
        let any = self.edit(ino, |st| {
            let any = st.locks.remove(owner, &range);
            if any {
                st.grant_ready();
            }
            any
        });
        if any {
            self.unlocked(ino);
        }
        any
    }

    /// The lock that would refuse this request (NLM TEST, NFSv4 LOCKT), if any.
    pub fn test_lock(
        &self,
        ino: Ino,
        owner: &Owner,
        range: ByteRange,
        kind: LockKind,
    ) -> Option<LockConflict> {
        let table = self.inner.table.lock();
        let st = table.inodes.get(&ino)?;
        st.locks
            .conflict(owner, &range, kind)
            .map(LockConflict::from)
    }

    /// Mandatory check of a read (`write == false`) or write of `len` bytes at `offset`
    /// by `owner`. A zero-length I/O touches nothing and passes; an end past
    /// `u64::MAX` is clipped.
    pub fn check_io(
        &self,
        ino: Ino,
        owner: &Owner,
        offset: u64,
        len: u64,
        write: bool,
    ) -> Result<(), LockError> {
        if len == 0 {
            return Ok(());
        }
        let last = offset.saturating_add(len - 1);
        let Some(range) = ByteRange::inclusive(offset, last) else {
            return Ok(());
        };
        let kind = if write {
            LockKind::Exclusive
        } else {
            LockKind::Shared
        };
        match self.test_lock(ino, owner, range, kind) {
            Some(c) => Err(LockError::Conflict(c)),
            None => Ok(()),
        }
    }
}
