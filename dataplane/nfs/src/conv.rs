//! Conversions between the filesystem core's types and NFSv3 wire types
//! (RFC 1813 sections 2.5-2.6: fattr3, sattr3, nfstime3, nfsstat3).

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

pub(crate) fn status(e: &FsError) -> NfsStat3 {
    NfsStat3::from_u32(e.nfsstat3()).unwrap_or(NfsStat3::ServerFault)
}

#[cfg(test)]
mod tests {
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
            assert_ne!(status(&e), NfsStat3::ServerFault, "{e:?}");
        }
    }
}
