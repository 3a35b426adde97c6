//! Opens and share reservations (share modes).
//!
//! An open records what its owner may do with the file (`access`) and what it refuses
//! to everyone else (`deny`), each a set of read / write / delete. The compatibility
//! rule is the one of NFSv4 share reservations (RFC 8881 section 9.7 "Share
//! Reservations", RFC 7530 section 9.9) and of SMB share modes (MS-SMB2 3.3.5.9 step
//! "sharing mode", MS-FSA 2.1.5.1.2 "Open of an Existing File": SMB's `ShareAccess` is
//! the complement of `deny`):
//!
//! a new open conflicts with an existing open when the new access intersects the
//! existing deny, or the new deny intersects the existing access.
//!
//! The rule applies between any two opens, including two opens of the same owner (as
//! Windows and NFSv4 do). Invariant: the opens of a file are pairwise compatible;
//! [`crate::state::LockManager::change_open`] keeps it when an open is upgraded or
//! downgraded (RFC 8881 section 18.18 OPEN_DOWNGRADE).

use super::LockManager;
use super::error::{LockError, ShareConflict};
use super::ids::OpenId;
use super::open::{Access, OpenInfo};
use super::owner::Owner;
use dittofs_types::Ino;

/// The first open in `opens` (other than `except`) incompatible with access/deny.
pub(crate) fn share_conflict(
    opens: &[OpenInfo],
    except: Option<OpenId>,
    access: Access,
    deny: Access,
) -> Option<ShareConflict> {
    let open = opens
        .iter()
        .filter(|o| Some(o.id) != except)
        .find(|o| !o.compatible(access, deny))?;
    Some(ShareConflict {
        open: open.id,
        owner: open.owner.clone(),
        access: open.access,
        deny: open.deny,
    })
}

impl LockManager {
    /// Opens `ino` for `owner` with a share reservation, or refuses with
    /// [`LockError::ShareViolation`]. Leases are not broken here: adapters call
    /// [`LockManager::break_leases`] (or its waiting form) first.
    pub fn open(
        &self,
        ino: Ino,
        owner: &Owner,
        access: Access,
        deny: Access,
    ) -> Result<OpenId, LockError> {
        let seq = self.next_seq();
        self.edit(ino, |st| {
            if let Some(c) = share_conflict(&st.opens, None, access, deny) {
                return Err(LockError::ShareViolation(c));
            }
            let id = OpenId::new(ino, seq);
            st.opens.push(OpenInfo {
                id,
                owner: owner.clone(),
                access,
                deny,
            });
            Ok(id)
        })
    }

    /// Changes an open's access and deny (upgrade or OPEN_DOWNGRADE); refused if another
    /// open would conflict with the new reservation.
    pub fn change_open(&self, id: OpenId, access: Access, deny: Access) -> Result<(), LockError> {
        self.edit(id.ino(), |st| {
            if !st.opens.iter().any(|o| o.id == id) {
                return Err(LockError::UnknownOpen(id));
            }
            if let Some(c) = share_conflict(&st.opens, Some(id), access, deny) {
                return Err(LockError::ShareViolation(c));
            }
            for o in st.opens.iter_mut().filter(|o| o.id == id) {
                o.access = access;
                o.deny = deny;
            }
            Ok(())
        })
    }

    /// Releases an open's share reservation. Byte-range locks stay (NFSv4 refuses a
    /// CLOSE with locks held; its adapter checks first).
    pub fn close(&self, id: OpenId) -> Result<(), LockError> {
        self.close_inner(id).map(|_| ())
    }

    /// Closes an open and releases every byte-range lock of its owner on the file
    /// (SMB CLOSE, MS-SMB2 3.3.5.10, where the lock owner is the open; POSIX close()).
    /// Returns how many locks went.
    pub fn close_releasing_locks(&self, id: OpenId) -> Result<usize, LockError> {
        let owner = self.close_inner(id)?;
        let n = self.edit(id.ino(), |st| {
            let n = st.locks.remove_where(|o| o == &owner);
            st.grant_ready();
            n
        });
        if n > 0 {
            self.unlocked(id.ino());
        }
        Ok(n)
    }

    fn close_inner(&self, id: OpenId) -> Result<Owner, LockError> {
        self.edit(id.ino(), |st| {
            let at = st.opens.iter().position(|o| o.id == id);
            let open = at.map(|i| st.opens.remove(i));
            open.map(|o| o.owner).ok_or(LockError::UnknownOpen(id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::owner::{ClientId, Protocol};

    fn owner(k: u8) -> Owner {
        Owner::new(Protocol::Smb, ClientId::Num(7), &[k])
    }

    #[test]
    fn access_and_deny_rule() {
        let m = LockManager::new();
        let ino = Ino(10);
        let reader = m.open(ino, &owner(1), Access::READ, Access::WRITE).unwrap();
        // Another reader that denies nothing: fine.
        m.open(ino, &owner(2), Access::READ, Access::NONE).unwrap();
        // A writer: refused by the first open's deny-write.
        let err = m
            .open(ino, &owner(3), Access::WRITE, Access::NONE)
            .unwrap_err();
        let LockError::ShareViolation(c) = err else {
            panic!("{err:?}")
        };
        assert_eq!(c.open, reader);
        // Denying read: refused because readers hold read access.
        assert!(
            m.open(ino, &owner(3), Access::DELETE, Access::READ)
                .is_err()
        );
        // Same owner is not exempt.
        assert!(m.open(ino, &owner(1), Access::WRITE, Access::NONE).is_err());
        m.close(reader).unwrap();
        m.open(ino, &owner(3), Access::WRITE, Access::NONE).unwrap();
        assert_eq!(m.close(reader), Err(LockError::UnknownOpen(reader)));
    }

    #[test]
    fn downgrade_and_upgrade_are_checked() {
        let m = LockManager::new();
        let ino = Ino(11);
        let a = m
            .open(ino, &owner(1), Access::READ_WRITE, Access::WRITE)
            .unwrap();
        assert!(m.open(ino, &owner(2), Access::WRITE, Access::NONE).is_err());
        m.change_open(a, Access::READ, Access::NONE).unwrap();
        let b = m.open(ino, &owner(2), Access::WRITE, Access::NONE).unwrap();
        assert!(m.change_open(a, Access::READ, Access::WRITE).is_err());
        m.close(a).unwrap();
        m.close(b).unwrap();
        assert_eq!(m.inodes_in_use(), 0);
    }
}
