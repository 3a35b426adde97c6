//! The errors of the lock and lease manager.
//!
//! No wire codes here: each adapter maps a [`LockError`] to its own status (NLM v4
//! `nlm4_denied` / `nlm4_deadlck`, NFSv4 `NFS4ERR_DENIED` / `NFS4ERR_DEADLOCK` /
//! `NFS4ERR_SHARE_DENIED` / `NFS4ERR_DELAY` per RFC 8881 section 15.1, SMB
//! `STATUS_LOCK_NOT_GRANTED` / `STATUS_FILE_LOCK_CONFLICT` /
//! `STATUS_SHARING_VIOLATION` per MS-SMB2 3.3.5.9 and 3.3.5.14). Conflicts carry the
//! holder, because NLM TEST and NFSv4 LOCKT/LOCK denials return it.

use super::byte_range::{ByteRange, HeldLock, LockKind, RangeError};
use super::ids::{LeaseId, OpenId};
use super::open::Access;
use super::owner::Owner;

/// A lock that stands in the way: its owner, range and kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockConflict {
    pub owner: Owner,
    pub range: ByteRange,
    pub kind: LockKind,
}

impl From<&HeldLock> for LockConflict {
    fn from(l: &HeldLock) -> LockConflict {
        LockConflict {
            owner: l.owner.clone(),
            range: l.range,
            kind: l.kind,
        }
    }
}

/// The open whose share reservation refuses a new open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareConflict {
    pub open: OpenId,
    pub owner: Owner,
    pub access: Access,
    pub deny: Access,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The range is locked by another owner (non-blocking request, or I/O refused by a
    /// mandatory check).
    #[error("{} lock on {} held by {}", kind_name(.0.kind), .0.range, .0.owner)]
    Conflict(LockConflict),
    /// Waiting would close a cycle of owners waiting for each other.
    #[error("waiting for the lock would deadlock")]
    Deadlock,
    /// The wait ended without a grant: cancelled, or its owner or client was released.
    #[error("lock request cancelled")]
    Cancelled,
    /// Share reservations refuse the open.
    #[error("share violation: open {} holds access {:?} deny {:?}", .0.open, .0.access, .0.deny)]
    ShareViolation(ShareConflict),
    /// The open is not (or no longer) known.
    #[error("no such open: {0}")]
    UnknownOpen(OpenId),
    /// The lease is not (or no longer) known.
    #[error("no such lease: {0}")]
    UnknownLease(LeaseId),
    /// A lease was asked for without R (W and H need R).
    #[error("a lease needs read caching")]
    EmptyLease,
    /// The lease cannot be granted: another holder's lease or open stands in the way.
    #[error("lease refused: conflicts with {holder}")]
    LeaseConflict { holder: Owner },
    /// Leases of other holders are being recalled; retry when they are returned (NFSv4
    /// answers `NFS4ERR_DELAY`, SMB waits on [`crate::state::LockManager::break_leases_wait`]).
    #[error("waiting for {} lease recall(s)", .leases.len())]
    LeaseRecallPending { leases: Vec<LeaseId> },
    /// The offset and length name no range.
    #[error(transparent)]
    InvalidRange(#[from] RangeError),
}

fn kind_name(kind: LockKind) -> &'static str {
    match kind {
        LockKind::Shared => "shared",
        LockKind::Exclusive => "exclusive",
    }
}
