//! NFSv4 status codes (RFC 7530 section 13) and the mapping of the core's errors onto
//! them.
//!
//! There is no NFSv4 server yet; this module keeps the NFSv4 adapter's edge of the error
//! mapping so that the core holds no wire codes. [`Nfs4Status`] has the statuses a core
//! error can become (plus `NFS4_OK`); the NFSv4 adapter extends it with the
//! state-related ones (NFS4ERR_STALE_CLIENTID, ...) when it is built.
//!
//! NFSv4 kept the NFSv3 number of every error both versions have, so for each
//! [`FsError`] the v4 status equals the v3 one (`crate::nfs3::NfsStat3`) except
//! `NotSync` (NFS3ERR_NOT_SYNC has no v4 counterpart: v4 guards with VERIFY/NVERIFY).

use crate::xdr::xdr_enum;
use dittofs_vfs::FsError;

xdr_enum! {
    /// `nfsstat4` (RFC 7530 section 13.1): the statuses the core's errors map to.
    pub enum Nfs4Status ("nfsstat4") {
        /// NFS4_OK: success.
        Ok = 0,
        /// NFS4ERR_PERM: caller is not privileged.
        Perm = 1,
        /// NFS4ERR_NOENT: no such file or directory.
        NoEnt = 2,
        /// NFS4ERR_IO: I/O error.
        Io = 5,
        /// NFS4ERR_ACCESS: permission denied.
        Access = 13,
        /// NFS4ERR_EXIST: file exists.
        Exist = 17,
        /// NFS4ERR_XDEV: cross-file-system link or rename.
        XDev = 18,
        /// NFS4ERR_NOTDIR: not a directory.
        NotDir = 20,
        /// NFS4ERR_ISDIR: is a directory.
        IsDir = 21,
        /// NFS4ERR_INVAL: invalid argument.
        Inval = 22,
        /// NFS4ERR_FBIG: file too large.
        FBig = 27,
        /// NFS4ERR_NOSPC: no space left on device.
        NoSpc = 28,
        /// NFS4ERR_ROFS: read-only file system.
        RoFs = 30,
        /// NFS4ERR_MLINK: too many hard links.
        MLink = 31,
        /// NFS4ERR_NAMETOOLONG: name too long.
        NameTooLong = 63,
        /// NFS4ERR_NOTEMPTY: directory not empty.
        NotEmpty = 66,
        /// NFS4ERR_DQUOT: quota exceeded.
        DQuot = 69,
        /// NFS4ERR_STALE: stale file handle.
        Stale = 70,
        /// NFS4ERR_BADHANDLE: illegal file handle.
        BadHandle = 10001,
        /// NFS4ERR_BAD_COOKIE: READDIR cookie is stale.
        BadCookie = 10003,
        /// NFS4ERR_NOTSUPP: operation not supported.
        NotSupp = 10004,
        /// NFS4ERR_TOOSMALL: response limit exceeded.
        TooSmall = 10005,
        /// NFS4ERR_SERVERFAULT: undefined server error.
        ServerFault = 10006,
        /// NFS4ERR_BADTYPE: type not supported.
        BadType = 10007,
        /// NFS4ERR_DELAY: file "busy"; retry later.
        Delay = 10008,
    }
}

/// `nfsstat4` of a failure (RFC 7530 section 13.1).
impl From<&FsError> for Nfs4Status {
    fn from(e: &FsError) -> Nfs4Status {
        match e {
            FsError::Perm => Nfs4Status::Perm,
            FsError::NoEnt => Nfs4Status::NoEnt,
            FsError::Io(_) => Nfs4Status::Io,
            FsError::Access => Nfs4Status::Access,
            FsError::Exist => Nfs4Status::Exist,
            FsError::XDev => Nfs4Status::XDev,
            FsError::NotDir => Nfs4Status::NotDir,
            FsError::IsDir => Nfs4Status::IsDir,
            FsError::Inval(_) | FsError::InvalidArgument(_) => Nfs4Status::Inval,
            FsError::FBig => Nfs4Status::FBig,
            FsError::NoSpc => Nfs4Status::NoSpc,
            FsError::DQuot => Nfs4Status::DQuot,
            FsError::RoFs => Nfs4Status::RoFs,
            FsError::MLink => Nfs4Status::MLink,
            FsError::NameTooLong => Nfs4Status::NameTooLong,
            FsError::NotEmpty => Nfs4Status::NotEmpty,
            FsError::Stale => Nfs4Status::Stale,
            FsError::BadHandle => Nfs4Status::BadHandle,
            FsError::NotSupp => Nfs4Status::NotSupp,
            FsError::BadCookie => Nfs4Status::BadCookie,
            FsError::TooSmall => Nfs4Status::TooSmall,
            FsError::BadType => Nfs4Status::BadType,
            FsError::Jukebox | FsError::Busy => Nfs4Status::Delay,
            // No NOT_SYNC in v4: a failed guard is an invalid argument.
            FsError::NotSync => Nfs4Status::Inval,
            FsError::ServerFault(_) => Nfs4Status::ServerFault,
        }
    }
}

impl From<FsError> for Nfs4Status {
    fn from(e: FsError) -> Nfs4Status {
        Nfs4Status::from(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::every_fs_error;
    use crate::nfs3::NfsStat3;
    use crate::xdr::XdrEncode;

    #[test]
    fn mappings_are_distinct_where_protocols_distinguish() {
        assert_eq!(Nfs4Status::from(FsError::Stale).as_u32(), 70);
        assert_eq!(Nfs4Status::from(FsError::DQuot).as_u32(), 69);
        let bad = FsError::InvalidArgument("bad glob".into());
        assert_eq!(Nfs4Status::from(&bad).as_u32(), 22);
        assert_eq!(Nfs4Status::from(FsError::NotSync), Nfs4Status::Inval);
        assert_eq!(NfsStat3::from(FsError::NotSync).as_u32(), 10002);
    }

    /// The v4 number of every error is the v3 one but for `NotSync` (as the core's
    /// `nfsstat4` computed it before the tables moved to the adapter).
    #[test]
    fn v4_numbers_are_v3_numbers_but_not_sync() {
        for e in every_fs_error() {
            let v3 = NfsStat3::from(&e).as_u32();
            let want = if e == FsError::NotSync { 22 } else { v3 };
            assert_eq!(Nfs4Status::from(&e).as_u32(), want, "{e:?}");
        }
    }

    #[test]
    fn encodes_as_its_number() {
        let mut out = Vec::new();
        Nfs4Status::Delay.encode(&mut out);
        assert_eq!(out, 10008u32.to_be_bytes());
    }
}
