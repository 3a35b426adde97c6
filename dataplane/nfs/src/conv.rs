//! Conversions between the filesystem core's types and NFSv3 wire types
//! (RFC 1813 sections 2.5-2.6: fattr3, sattr3, nfstime3, nfsstat3).
//!
//! The `FsError` -> `nfsstat3` table lives here, at the adapter's edge: the core holds
//! no wire codes, and every NFSv3 reply status of a failed call comes from this one
//! typed conversion.

use crate::nfs3::{
    Fattr3, Ftype3, NfsStat3, NfsTime3, Sattr3, SetTime as WireSetTime, SpecData3, WccAttr, WccData,
};
use dittofs_types::{FileType, Timestamp};
use dittofs_vfs::{Attr, FsError, SetAttr, SetTime};

/// nfstime3 carries unsigned 32-bit seconds: times outside 1970..2106 are clamped.
pub(crate) fn time_to_wire(t: Timestamp) -> NfsTime3 {
    let seconds = t.secs.clamp(0, i64::from(u32::MAX)) as u32;
    NfsTime3 {
        seconds,
        nseconds: if t.secs < 0 { 0 } else { t.nanos },
    }
}

pub(crate) fn time_from_wire(t: NfsTime3) -> Timestamp {
    Timestamp {
        secs: i64::from(t.seconds),
        nanos: t.nseconds.min(999_999_999),
    }
}

pub(crate) fn ftype(k: FileType) -> Ftype3 {
    match k {
        FileType::Regular => Ftype3::Reg,
        FileType::Directory => Ftype3::Dir,
        FileType::Symlink => Ftype3::Lnk,
        FileType::CharDevice => Ftype3::Chr,
        FileType::BlockDevice => Ftype3::Blk,
        FileType::Fifo => Ftype3::Fifo,
        FileType::Socket => Ftype3::Sock,
    }
}

pub(crate) fn fattr(a: &Attr) -> Fattr3 {
    Fattr3 {
        ftype: ftype(a.kind),
        mode: a.mode & 0o7777,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        size: a.size,
        used: a.used,
        rdev: SpecData3 {
            specdata1: a.rdev.major,
            specdata2: a.rdev.minor,
        },
        fsid: u64::from(a.share.0),
        fileid: a.ino.0,
        atime: time_to_wire(a.atime),
        mtime: time_to_wire(a.mtime),
        ctime: time_to_wire(a.ctime),
    }
}

pub(crate) fn wcc_attr(a: &Attr) -> WccAttr {
    WccAttr {
        size: a.size,
        mtime: time_to_wire(a.mtime),
        ctime: time_to_wire(a.ctime),
    }
}

/// Weak cache consistency data from an optional before and after snapshot.
pub(crate) fn wcc(before: Option<&Attr>, after: Option<&Attr>) -> WccData {
    WccData {
        before: before.map(wcc_attr),
        after: after.map(fattr),
    }
}

pub(crate) fn sattr(s: &Sattr3) -> SetAttr {
    let t = |w: WireSetTime| match w {
        WireSetTime::DontChange => SetTime::DontChange,
        WireSetTime::ServerTime => SetTime::ServerNow,
        WireSetTime::ClientTime(t) => SetTime::Client(time_from_wire(t)),
    };
    SetAttr {
        mode: s.mode,
        uid: s.uid,
        gid: s.gid,
        size: s.size,
        atime: t(s.atime),
        mtime: t(s.mtime),
    }
}

/// `nfsstat3` of a failure (RFC 1813 section 2.6).
impl From<&FsError> for NfsStat3 {
    fn from(e: &FsError) -> NfsStat3 {
        match e {
            FsError::Perm => NfsStat3::Perm,
            FsError::NoEnt => NfsStat3::NoEnt,
            FsError::Io(_) => NfsStat3::Io,
            FsError::Access => NfsStat3::Acces,
            FsError::Exist => NfsStat3::Exist,
            FsError::XDev => NfsStat3::XDev,
            FsError::NxIo => NfsStat3::NxIo,
            FsError::NotDir => NfsStat3::NotDir,
            FsError::IsDir => NfsStat3::IsDir,
            FsError::Inval(_) | FsError::InvalidArgument(_) => NfsStat3::Inval,
            FsError::FBig => NfsStat3::FBig,
            FsError::NoSpc => NfsStat3::NoSpc,
            FsError::DQuot => NfsStat3::DQuot,
            FsError::RoFs => NfsStat3::RoFs,
            FsError::MLink => NfsStat3::MLink,
            FsError::NameTooLong => NfsStat3::NameTooLong,
            FsError::NotEmpty => NfsStat3::NotEmpty,
            FsError::Stale => NfsStat3::Stale,
            FsError::BadHandle => NfsStat3::BadHandle,
            FsError::NotSupp => NfsStat3::NotSupp,
            FsError::BadCookie => NfsStat3::BadCookie,
            FsError::TooSmall => NfsStat3::TooSmall,
            // NFSv3 has no extended attributes: the nearest statuses (never sent today).
            FsError::NoXattr => NfsStat3::NoEnt,
            FsError::XattrTooBig => NfsStat3::Inval,
            FsError::BadType => NfsStat3::BadType,
            // A busy object is a transient condition: the client retries later.
            FsError::Jukebox | FsError::Busy => NfsStat3::Jukebox,
            FsError::NotSync => NfsStat3::NotSync,
            FsError::ServerFault(_) => NfsStat3::ServerFault,
        }
    }
}

impl From<FsError> for NfsStat3 {
    fn from(e: FsError) -> NfsStat3 {
        NfsStat3::from(&e)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn times_clamp_and_roundtrip() {
        let t = Timestamp {
            secs: 1_700_000_000,
            nanos: 5,
        };
        assert_eq!(time_from_wire(time_to_wire(t)), t);
        assert_eq!(
            time_to_wire(Timestamp { secs: -5, nanos: 7 }),
            NfsTime3 {
                seconds: 0,
                nseconds: 0
            }
        );
        assert_eq!(
            time_to_wire(Timestamp {
                secs: 1 << 40,
                nanos: 0
            })
            .seconds,
            u32::MAX
        );
    }

    /// One of each `FsError` variant (a new variant must be added here and mapped).
    pub(crate) fn every_fs_error() -> Vec<FsError> {
        let cause = dittofs_metadata::MetaError::Closed;
        vec![
            FsError::Perm,
            FsError::NoEnt,
            FsError::Io(cause.into()),
            FsError::Access,
            FsError::Exist,
            FsError::XDev,
            FsError::NotDir,
            FsError::IsDir,
            FsError::Inval("x"),
            FsError::InvalidArgument("bad glob".into()),
            FsError::FBig,
            FsError::NoSpc,
            FsError::DQuot,
            FsError::RoFs,
            FsError::MLink,
            FsError::NameTooLong,
            FsError::NotEmpty,
            FsError::Stale,
            FsError::BadHandle,
            FsError::NotSupp,
            FsError::BadCookie,
            FsError::TooSmall,
            FsError::NoXattr,
            FsError::XattrTooBig,
            FsError::BadType,
            FsError::Jukebox,
            FsError::Busy,
            FsError::NotSync,
            FsError::ServerFault("x".into()),
            FsError::NxIo,
        ]
    }

    /// The table as it was in the core (`FsError::nfsstat3`), number by number: moving it
    /// to the adapter changed no reply.
    #[test]
    fn nfsstat3_numbers_are_unchanged() {
        let expected = [
            1, 2, 5, 13, 17, 18, 20, 21, 22, 22, 27, 28, 69, 30, 31, 63, 66, 70, 10001, 10004,
            10003, 10005, 2, 22, 10007, 10008, 10008, 10002, 10006, 6,
        ];
        let got: Vec<u32> = every_fs_error()
            .iter()
            .map(|e| NfsStat3::from(e).as_u32())
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn mappings_are_distinct_where_protocols_distinguish() {
        assert_eq!(NfsStat3::from(FsError::NoEnt), NfsStat3::NoEnt);
        assert_eq!(NfsStat3::from(FsError::NameTooLong).as_u32(), 63);
        let bad = FsError::InvalidArgument("bad glob".into());
        assert_eq!(NfsStat3::from(&bad), NfsStat3::Inval);
        assert_eq!(NfsStat3::from(&bad).as_u32(), 22);
    }

    /// A full disk or quota under any store reaches the client as NOSPC / DQUOT, not EIO
    /// (the core's test of the same name checks the `FsError` they become).
    #[test]
    fn full_disks_are_nospc_and_quotas_dquot() {
        use dittofs_blockstore::BlockError;
        let io = |kind| BlockError::Io {
            path: "/x".into(),
            source: std::io::Error::from(kind),
        };
        let stat = |e: BlockError| NfsStat3::from(FsError::from(e)).as_u32();
        assert_eq!(stat(io(std::io::ErrorKind::StorageFull)), 28);
        assert_eq!(stat(io(std::io::ErrorKind::QuotaExceeded)), 69);
        assert_eq!(stat(io(std::io::ErrorKind::PermissionDenied)), 5);
        assert_eq!(
            (
                NfsStat3::from(FsError::NoSpc).as_u32(),
                NfsStat3::from(FsError::DQuot).as_u32()
            ),
            (28, 69)
        );
    }

    #[test]
    fn every_fs_error_maps_to_a_known_status() {
        for e in [
            FsError::NoEnt,
            FsError::Stale,
            FsError::BadHandle,
            FsError::NameTooLong,
            FsError::NotSync,
            FsError::Jukebox,
        ] {
            assert_ne!(NfsStat3::from(&e), NfsStat3::ServerFault, "{e:?}");
        }
    }
}
