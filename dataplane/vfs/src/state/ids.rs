//! The identifiers the lock manager hands out: [`OpenId`] for an open, [`LeaseId`] for
//! a lease.
//!
//! Each carries the inode it belongs to, so an adapter that holds only the id (an NFSv4
//! stateid, an SMB file id) reaches the file's state without a lookup. The sequence
//! number is unique within one manager: ids are never reused while it lives.

use dittofs_types::Ino;
use std::fmt;

/// Identifies one open. Carries its inode, so closing needs nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpenId {
    ino: Ino,
    seq: u64,
}

impl OpenId {
    pub(super) fn new(ino: Ino, seq: u64) -> OpenId {
        OpenId { ino, seq }
    }

    pub fn ino(&self) -> Ino {
        self.ino
    }

    /// Unique within the manager (adapters may use it in their state IDs).
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl fmt::Display for OpenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "open#{}@{}", self.seq, self.ino)
    }
}

/// Identifies one lease. Carries its inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId {
    ino: Ino,
    seq: u64,
}

impl LeaseId {
    pub(super) fn new(ino: Ino, seq: u64) -> LeaseId {
        LeaseId { ino, seq }
    }

    pub fn ino(&self) -> Ino {
        self.ino
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lease#{}@{}", self.seq, self.ino)
    }
}
