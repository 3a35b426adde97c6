//! The NFSv4 adapter's vocabulary for the core's lock manager: the owner an NFSv4
//! open-owner, lock-owner or client (delegations: an empty key) is in the core, and the
//! NFSv4 status of a lock manager refusal (RFC 8881 section 15.1).
//!
//! Invariant: every NFSv4 operation of one client names the core owner with the same
//! `ClientId::Num(client)`, so the core treats them as one client (its own operations
//! never conflict with or recall its own delegations).

use crate::nfs4::Nfs4Status;
use dittofs_vfs::state::{ClientId, LockError, Owner, Protocol};

/// The lock manager's owner for an NFSv4 open- or lock-owner of `client`.
pub(crate) fn owner(client: u64, key: &[u8]) -> Owner {
    Owner::new(Protocol::Nfs4, ClientId::Num(client), key)
}

/// The status of a lock manager refusal.
pub(crate) fn lock_status(e: &LockError) -> Nfs4Status {
    match e {
        LockError::Conflict(_) => Nfs4Status::Denied,
        LockError::ShareViolation(_) => Nfs4Status::ShareDenied,
        LockError::Deadlock => Nfs4Status::Deadlock,
        LockError::LeaseRecallPending { .. } => Nfs4Status::Delay,
        LockError::InvalidRange(_) => Nfs4Status::BadRange,
        LockError::UnknownOpen(_) => Nfs4Status::BadStateid,
        _ => Nfs4Status::ServerFault,
    }
}
