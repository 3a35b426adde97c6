//! Caller identity and POSIX permission rules.
//!
//! Adapters map their authentication (AUTH_SYS after squashing, an SMB session's
//! mapped ids) to a [`Credentials`]; every permission decision of the core is made here,
//! following POSIX and Linux where POSIX leaves room (root bypass, exec needing some x bit).
//! The credentials also carry the caller's share access level ([`AccessLevel`], from the
//! share's grants, see [`crate::grant`]); the core checks it before the POSIX rules, so a
//! grant can only take rights away, never add any (root included).

use crate::grant::AccessLevel;
use dittofs_metadata::InodeRecord;
use dittofs_types::FileType;

/// Who is asking. Supplementary groups are capped by the adapters (AUTH_SYS: 16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// The caller's level on the share (`ReadWrite` unless a grant says otherwise).
    pub level: AccessLevel,
}

impl Credentials {
    pub fn root() -> Credentials {
        Credentials::user(0, 0)
    }

    pub fn user(uid: u32, gid: u32) -> Credentials {
        Credentials {
            uid,
            gid,
            groups: Vec::new(),
            level: AccessLevel::ReadWrite,
        }
    }

    /// The same caller with the share access level `level`.
    pub fn with_level(self, level: AccessLevel) -> Credentials {
        Credentials { level, ..self }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether the caller belongs to group `gid` (primary or supplementary).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// Access bits as in NFSv3 ACCESS (RFC 1813 section 3.3.4), plus the extended
/// attribute bits of NFSv4.2 ACCESS (RFC 8276): the same numbers, so an adapter passes
/// them through.
pub mod access {
    pub const READ: u32 = 0x01;
    pub const LOOKUP: u32 = 0x02;
    pub const MODIFY: u32 = 0x04;
    pub const EXTEND: u32 = 0x08;
    pub const DELETE: u32 = 0x10;
    pub const EXECUTE: u32 = 0x20;
    /// The NFSv3 bits.
    pub const ALL: u32 = 0x3f;
    /// Read extended attributes (GET).
    pub const XATTR_READ: u32 = 0x40;
    /// Change extended attributes (SET, REMOVE).
    pub const XATTR_WRITE: u32 = 0x80;
    /// List extended attributes.
    pub const XATTR_LIST: u32 = 0x100;
    /// The extended attribute bits.
    pub const XATTR_ALL: u32 = 0x1c0;
}

pub(crate) const R: u32 = 4;
pub(crate) const W: u32 = 2;
pub(crate) const X: u32 = 1;

/// The rwx triplet of `mode` that applies to `cred` (owner, group or other class).
fn class_bits(cred: &Credentials, ino: &InodeRecord) -> u32 {
    if cred.uid == ino.uid {
        (ino.mode >> 6) & 7
    } else if cred.in_group(ino.gid) {
        (ino.mode >> 3) & 7
    } else {
        ino.mode & 7
    }
}

/// POSIX check of `want` (a combination of R/W/X) on `ino`.
/// Root passes everything except X on a non-directory without any x bit.
pub(crate) fn may(cred: &Credentials, ino: &InodeRecord, want: u32) -> bool {
    if cred.is_root() {
        if want & X != 0 && ino.kind != FileType::Directory && ino.mode & 0o111 == 0 {
            return false;
        }
        return true;
    }
    class_bits(cred, ino) & want == want
}

/// Data access check for READ/WRITE: like [`may`], but the owner may always read and
/// write (NFS servers must honour permissions checked at open time by the client, so a
/// file created with mode 0 stays writable through the descriptor that created it).
pub(crate) fn may_io(cred: &Credentials, ino: &InodeRecord, want: u32) -> bool {
    cred.uid == ino.uid || may(cred, ino, want)
}

/// The NFS ACCESS answer: which of `requested` the caller holds on `ino`.
pub(crate) fn access_mask(cred: &Credentials, ino: &InodeRecord, requested: u32) -> u32 {
    let mut granted = 0;
    let r = may(cred, ino, R);
    let w = may(cred, ino, W);
    let x = may(cred, ino, X);
    if r {
        granted |= access::READ;
    }
    if ino.kind == FileType::Directory {
        if x {
            granted |= access::LOOKUP;
        }
        if w && x {
            granted |= access::MODIFY | access::EXTEND | access::DELETE;
        }
    } else {
        if w {
            granted |= access::MODIFY | access::EXTEND;
        }
        if x {
            granted |= access::EXECUTE;
        }
    }
    granted |= xattr_mask(cred, ino, r, w);
    granted & requested
}

/// The extended attribute bits of an ACCESS answer, by the rules of `crate::ops_xattr`:
/// reading and listing need `r`, changing needs `w` on a regular file or directory (in
/// a sticky directory, also ownership or root).
fn xattr_mask(cred: &Credentials, ino: &InodeRecord, r: bool, w: bool) -> u32 {
    let mut granted = 0;
    if r {
        granted |= access::XATTR_READ | access::XATTR_LIST;
    }
    if w && carries_xattrs(ino.kind) && sticky_xattrs_allow(cred, ino) {
        granted |= access::XATTR_WRITE;
    }
    granted
}

/// Whether objects of `kind` carry user extended attributes (regular files and
/// directories, as Linux allows `user.*`).
pub(crate) fn carries_xattrs(kind: FileType) -> bool {
    matches!(kind, FileType::Regular | FileType::Directory)
}

/// Sticky-directory rule for extended attributes: only the owner of a sticky directory
/// or root may change the directory's own attributes.
pub(crate) fn sticky_xattrs_allow(cred: &Credentials, ino: &InodeRecord) -> bool {
    let sticky_dir = ino.kind == FileType::Directory && ino.mode & 0o1000 != 0;
    !sticky_dir || cred.is_root() || cred.uid == ino.uid
}

/// Sticky-directory rule: in a directory with S_ISVTX only the owner of the entry, the
/// owner of the directory or root may remove or rename the entry.
pub(crate) fn sticky_allows(cred: &Credentials, dir: &InodeRecord, victim: &InodeRecord) -> bool {
    dir.mode & 0o1000 == 0 || cred.is_root() || cred.uid == dir.uid || cred.uid == victim.uid
}

#[cfg(test)]
mod tests {
    use super::*;
    use dittofs_metadata::memory::new_root_inode;
    use dittofs_types::Timestamp;

    fn node(kind: FileType, mode: u32, uid: u32, gid: u32) -> InodeRecord {
        let mut r = new_root_inode(mode, Timestamp::default());
        r.kind = kind;
        r.uid = uid;
        r.gid = gid;
        r
    }

    #[test]
    fn classes() {
        let f = node(FileType::Regular, 0o640, 10, 20);
        assert!(may(&Credentials::user(10, 1), &f, R | W));
        assert!(may(&Credentials::user(11, 20), &f, R));
        assert!(!may(&Credentials::user(11, 20), &f, W));
        let mut c = Credentials::user(11, 1);
        assert!(!may(&c, &f, R));
        c.groups.push(20);
        assert!(may(&c, &f, R));
        // owner class is exclusive: owner without r is denied even if others have it
        let g = node(FileType::Regular, 0o044, 10, 20);
        assert!(!may(&Credentials::user(10, 1), &g, R));
        assert!(may_io(&Credentials::user(10, 1), &g, R));
    }

    #[test]
    fn root_exec_needs_some_x() {
        let f = node(FileType::Regular, 0o644, 10, 20);
        assert!(!may(&Credentials::root(), &f, X));
        assert!(may(
            &Credentials::root(),
            &node(FileType::Regular, 0o010, 1, 1),
            X
        ));
        assert!(may(
            &Credentials::root(),
            &node(FileType::Directory, 0o000, 1, 1),
            X
        ));
    }
}
