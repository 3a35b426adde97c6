//! Per-share access levels: what a share's grants allow a caller to do, on top of the
//! POSIX mode checks (never instead of them).
//!
//! The control plane resolves its users, groups and grants into one [`ShareAccess`]
//! table per share (level by uid, disabled users, the share's default level) and hands
//! it to each protocol adapter; an adapter looks its caller up and puts the level on the
//! [`crate::Credentials`] it passes to the core. The core checks the level in one place
//! per operation family (`Fs::check_writable` for every change, `Fs::check_readable`
//! for reads of content and names; see `fs.rs`).
//!
//! Invariants:
//! - `None < Read < ReadWrite < Admin`; reading needs `Read`, changing needs `ReadWrite`.
//!   `Admin` is `ReadWrite` for file operations (it exists for share administration).
//! - A table with no entries answers its default for every caller, and the default
//!   table's default is `ReadWrite`: a share without grants behaves as before grants
//!   existed.
//! - A disabled user is refused outright ([`Disabled`]); adapters refuse the call
//!   (NFSv3: NFS3ERR_ACCES) before it reaches the core.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a grant allows on a share.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum AccessLevel {
    /// Nothing: content and names are refused (attributes stay readable).
    None,
    /// Reads only: every change is refused with `FsError::Access`.
    Read,
    /// Reads and changes (subject to the POSIX mode checks).
    #[default]
    ReadWrite,
    /// As `ReadWrite` for file operations.
    Admin,
}

/// A level name that is none of `none`, `read`, `read-write`, `admin`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown access level {0:?} (use none, read, read-write or admin)")]
pub struct UnknownLevel(pub String);

impl AccessLevel {
    pub const ALL: [AccessLevel; 4] = [
        AccessLevel::None,
        AccessLevel::Read,
        AccessLevel::ReadWrite,
        AccessLevel::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::None => "none",
            AccessLevel::Read => "read",
            AccessLevel::ReadWrite => "read-write",
            AccessLevel::Admin => "admin",
        }
    }

    /// Parses a level name (`read_write` and `rw` are accepted for `read-write`).
    pub fn parse(s: &str) -> Result<AccessLevel, UnknownLevel> {
        match s {
            "none" => Ok(AccessLevel::None),
            "read" | "ro" => Ok(AccessLevel::Read),
            "read-write" | "read_write" | "rw" => Ok(AccessLevel::ReadWrite),
            "admin" => Ok(AccessLevel::Admin),
            other => Err(UnknownLevel(other.to_owned())),
        }
    }

    pub fn may_read(self) -> bool {
        self >= AccessLevel::Read
    }

    pub fn may_write(self) -> bool {
        self >= AccessLevel::ReadWrite
    }
}

impl std::fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A known user's standing on one share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAccess {
    Enabled(AccessLevel),
    /// The account is disabled: every call is refused.
    Disabled,
}

/// The caller is a disabled user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("user with uid {uid} is disabled")]
pub struct Disabled {
    pub uid: u32,
}

/// One share's resolved access table (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShareAccess {
    default: AccessLevel,
    by_uid: HashMap<u32, UserAccess>,
}

impl ShareAccess {
    /// A table answering `default` for every caller until users are added.
    pub fn new(default: AccessLevel) -> ShareAccess {
        ShareAccess {
            default,
            by_uid: HashMap::new(),
        }
    }

    /// Records a known user's standing (a later entry for the same uid replaces it).
    pub fn insert(&mut self, uid: u32, access: UserAccess) {
        self.by_uid.insert(uid, access);
    }

    pub fn default_level(&self) -> AccessLevel {
        self.default
    }

    /// The level of the caller with `uid` (after the adapter's squashing): the known
    /// user's level, the default for an unknown uid, [`Disabled`] for a disabled user.
    pub fn level_of_uid(&self, uid: u32) -> Result<AccessLevel, Disabled> {
        match self.by_uid.get(&uid) {
            Some(UserAccess::Enabled(l)) => Ok(*l),
            Some(UserAccess::Disabled) => Err(Disabled { uid }),
            None => Ok(self.default),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_print_and_order() {
        for l in AccessLevel::ALL {
            assert_eq!(AccessLevel::parse(l.as_str()), Ok(l));
        }
        assert_eq!(AccessLevel::parse("rw"), Ok(AccessLevel::ReadWrite));
        let e = AccessLevel::parse("write").unwrap_err();
        assert!(e.to_string().contains("\"write\""), "{e}");
        assert!(!AccessLevel::None.may_read());
        assert!(AccessLevel::Read.may_read() && !AccessLevel::Read.may_write());
        assert!(AccessLevel::ReadWrite.may_write() && AccessLevel::Admin.may_write());
        assert_eq!(AccessLevel::default(), AccessLevel::ReadWrite);
    }

    #[test]
    fn table_answers_users_default_and_disabled() {
        let mut t = ShareAccess::new(AccessLevel::Read);
        t.insert(1000, UserAccess::Enabled(AccessLevel::ReadWrite));
        t.insert(1001, UserAccess::Disabled);
        assert_eq!(t.level_of_uid(1000), Ok(AccessLevel::ReadWrite));
        assert_eq!(t.level_of_uid(1001), Err(Disabled { uid: 1001 }));
        assert_eq!(t.level_of_uid(7), Ok(AccessLevel::Read));
        assert_eq!(
            ShareAccess::default().level_of_uid(7),
            Ok(AccessLevel::ReadWrite)
        );
    }
}
