//! An open of a file as data: its share reservation ([`Access`] granted and denied)
//! and owner.
//!
//! The compatibility rule of two opens (RFC 8881 section 9.7, MS-FSA 2.1.5.1.2) is
//! [`OpenInfo::compatible`]; the manager's open, change and close operations are in
//! `share.rs`, which keeps the opens of a file pairwise compatible.

use super::ids::OpenId;
use super::owner::Owner;
use std::fmt;

/// A set of read / write / delete, used both for access and for deny.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access(u8);

impl Access {
    pub const NONE: Access = Access(0);
    pub const READ: Access = Access(1);
    pub const WRITE: Access = Access(2);
    pub const DELETE: Access = Access(4);
    pub const READ_WRITE: Access = Access(3);
    pub const ALL: Access = Access(7);

    pub fn new(read: bool, write: bool, delete: bool) -> Access {
        Access(u8::from(read) | (u8::from(write) << 1) | (u8::from(delete) << 2))
    }

    pub fn read(self) -> bool {
        self.0 & 1 != 0
    }

    pub fn write(self) -> bool {
        self.0 & 2 != 0
    }

    pub fn delete(self) -> bool {
        self.0 & 4 != 0
    }

    pub fn intersects(self, other: Access) -> bool {
        self.0 & other.0 != 0
    }

    pub fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = |on: bool, c: char| if on { c } else { '-' };
        write!(
            f,
            "{}{}{}",
            flag(self.read(), 'r'),
            flag(self.write(), 'w'),
            flag(self.delete(), 'd')
        )
    }
}

/// One open of a file and its share reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenInfo {
    pub id: OpenId,
    pub owner: Owner,
    pub access: Access,
    pub deny: Access,
}

impl OpenInfo {
    /// Whether an open with `access` and `deny` may coexist with this one.
    pub fn compatible(&self, access: Access, deny: Access) -> bool {
        !access.intersects(self.deny) && !deny.intersects(self.access)
    }
}
