//! NFSv4 status codes (RFC 7530 section 13, RFC 8881 section 15) and the mapping of the
//! core's errors onto them: the NFSv4 adapter's edge of the error mapping, so that the
//! core holds no wire codes. [`Nfs4Status`] has the statuses a core error can become,
//! `NFS4_OK`, and the state, session and compound statuses the NFSv4.1 server returns
//! itself (RFC 8881 section 15.1).
//!
//! NFSv4 kept the NFSv3 number of every error both versions have, so for each
//! [`FsError`] the v4 status equals the v3 one (`crate::nfs3::NfsStat3`) except
//! `NotSync` (NFS3ERR_NOT_SYNC has no v4 counterpart: v4 guards with VERIFY/NVERIFY)
//! and the extended attribute errors, which only NFSv4.2 has (RFC 8276:
//! NFS4ERR_NOXATTR, NFS4ERR_XATTR2BIG).

use crate::xdr::xdr_enum;
use dittofs_vfs::FsError;

xdr_enum! {
    /// `nfsstat4` (RFC 7530 section 13.1, RFC 8881 section 15.1).
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
        /// NFS4ERR_NXIO: SEEK from an offset at or past the end of the file.
        Nxio = 6,
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
        /// NFS4ERR_SAME: VERIFY/NVERIFY: attributes are the same.
        Same = 10009,
        /// NFS4ERR_DENIED: lock unavailable.
        Denied = 10010,
        /// NFS4ERR_EXPIRED: the lease has expired.
        Expired = 10011,
        /// NFS4ERR_LOCKED: I/O failed due to a lock.
        Locked = 10012,
        /// NFS4ERR_GRACE: in grace period.
        Grace = 10013,
        /// NFS4ERR_SHARE_DENIED: share reservation denied.
        ShareDenied = 10015,
        /// NFS4ERR_WRONGSEC: wrong security flavor.
        WrongSec = 10016,
        /// NFS4ERR_CLID_INUSE: client ID in use.
        ClidInUse = 10017,
        /// NFS4ERR_RESOURCE: resource exhaustion (too many operations).
        Resource = 10018,
        /// NFS4ERR_MOVED: the file system moved (never returned: no migration).
        Moved = 10019,
        /// NFS4ERR_NOFILEHANDLE: no current filehandle.
        NoFileHandle = 10020,
        /// NFS4ERR_MINOR_VERS_MISMATCH: minor version not supported.
        MinorVersMismatch = 10021,
        /// NFS4ERR_STALE_CLIENTID: the client ID is not (or no longer) known.
        StaleClientId = 10022,
        /// NFS4ERR_STALE_STATEID: stateid of a previous server instance.
        StaleStateid = 10023,
        /// NFS4ERR_OLD_STATEID: stateid with an old seqid.
        OldStateid = 10024,
        /// NFS4ERR_BAD_STATEID: unknown stateid.
        BadStateid = 10025,
        /// NFS4ERR_BAD_SEQID: bad owner seqid.
        BadSeqid = 10026,
        /// NFS4ERR_NOT_SAME: VERIFY: attributes differ.
        NotSame = 10027,
        /// NFS4ERR_LOCK_RANGE: lock range not supported.
        LockRange = 10028,
        /// NFS4ERR_SYMLINK: the object is a symbolic link.
        Symlink = 10029,
        /// NFS4ERR_RESTOREFH: no saved filehandle.
        RestoreFh = 10030,
        /// NFS4ERR_ATTRNOTSUPP: attribute not supported.
        AttrNotSupp = 10032,
        /// NFS4ERR_NO_GRACE: reclaim outside the grace period.
        NoGrace = 10033,
        /// NFS4ERR_RECLAIM_BAD: a reclaim of state that cannot have existed before.
        ReclaimBad = 10034,
        /// NFS4ERR_RECLAIM_CONFLICT: a reclaim conflicting with state granted since.
        ReclaimConflict = 10035,
        /// NFS4ERR_BADXDR: the arguments do not decode.
        BadXdr = 10036,
        /// NFS4ERR_LOCKS_HELD: locks still held.
        LocksHeld = 10037,
        /// NFS4ERR_OPENMODE: I/O not allowed by the open's access.
        OpenMode = 10038,
        /// NFS4ERR_BADOWNER: owner string not mappable.
        BadOwner = 10039,
        /// NFS4ERR_BADCHAR: bad character in a name.
        BadChar = 10040,
        /// NFS4ERR_BADNAME: bad name.
        BadName = 10041,
        /// NFS4ERR_BAD_RANGE: lock range outside the file's limits.
        BadRange = 10042,
        /// NFS4ERR_OP_ILLEGAL: unknown operation number.
        OpIllegal = 10044,
        /// NFS4ERR_DEADLOCK: the lock would deadlock.
        Deadlock = 10045,
        /// NFS4ERR_CB_PATH_DOWN: NFSv4.0 RENEW: the callback path is down while the
        /// client holds delegations.
        CbPathDown = 10048,
        /// NFS4ERR_BADSESSION: unknown session.
        BadSession = 10052,
        /// NFS4ERR_BADSLOT: slot ID beyond the session's table.
        BadSlot = 10053,
        /// NFS4ERR_COMPLETE_ALREADY: RECLAIM_COMPLETE done before.
        CompleteAlready = 10054,
        /// NFS4ERR_CONN_NOT_BOUND_TO_SESSION.
        ConnNotBoundToSession = 10055,
        /// NFS4ERR_SEQ_MISORDERED: slot sequence ID out of order.
        SeqMisordered = 10063,
        /// NFS4ERR_SEQUENCE_POS: SEQUENCE not first in the COMPOUND.
        SequencePos = 10064,
        /// NFS4ERR_REQ_TOO_BIG: request larger than the session allows.
        ReqTooBig = 10065,
        /// NFS4ERR_REP_TOO_BIG: reply larger than the session allows.
        RepTooBig = 10066,
        /// NFS4ERR_REP_TOO_BIG_TO_CACHE: reply too large for the slot's cache.
        RepTooBigToCache = 10067,
        /// NFS4ERR_RETRY_UNCACHED_REP: the retried reply was not cached.
        RetryUncachedRep = 10068,
        /// NFS4ERR_TOO_MANY_OPS: more operations than the session allows.
        TooManyOps = 10070,
        /// NFS4ERR_OP_NOT_IN_SESSION: operation needs a SEQUENCE first.
        OpNotInSession = 10071,
        /// NFS4ERR_CLIENTID_BUSY: the client still has sessions.
        ClientIdBusy = 10074,
        /// NFS4ERR_SEQ_FALSE_RETRY: retry with different arguments.
        SeqFalseRetry = 10076,
        /// NFS4ERR_NOT_ONLY_OP: operation must be alone in the COMPOUND.
        NotOnlyOp = 10081,
        /// NFS4ERR_WRONG_TYPE: wrong type of object.
        WrongType = 10083,
        /// NFS4ERR_DELEG_REVOKED: the delegation was revoked.
        DelegRevoked = 10087,
        /// NFS4ERR_NOXATTR: the extended attribute does not exist (RFC 8276).
        NoXattr = 10095,
        /// NFS4ERR_XATTR2BIG: the extended attribute value is too large (RFC 8276).
        Xattr2Big = 10096,
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
            FsError::NxIo => Nfs4Status::Nxio,
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
            FsError::NoXattr => Nfs4Status::NoXattr,
            FsError::XattrTooBig => Nfs4Status::Xattr2Big,
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
    /// `nfsstat4` computed it before the tables moved to the adapter) and the extended
    /// attribute errors of NFSv4.2.
    #[test]
    fn v4_numbers_are_v3_numbers_but_not_sync_and_xattrs() {
        for e in every_fs_error() {
            let v3 = NfsStat3::from(&e).as_u32();
            let want = match e {
                FsError::NotSync => 22,
                FsError::NoXattr => 10095,
                FsError::XattrTooBig => 10096,
                _ => v3,
            };
            assert_eq!(Nfs4Status::from(&e).as_u32(), want, "{e:?}");
        }
    }

    /// `nfsstat4` as the RFCs number it (RFC 8881 section 15.1; RFC 7863, the XDR of
    /// RFC 7862; RFC 8276; NFS4ERR_ left off): every status of ours has
    /// its RFC name and number on the wire, and no RFC number of a status we lack
    /// decodes as one of ours.
    #[test]
    fn nfsstat4_wire_numbers_are_the_rfcs() {
        const RFC: &str = "
            OK 0 PERM 1 NOENT 2 IO 5 NXIO 6 ACCESS 13 EXIST 17 XDEV 18 NOTDIR 20 ISDIR 21
            INVAL 22 FBIG 27 NOSPC 28 ROFS 30 MLINK 31 NAMETOOLONG 63 NOTEMPTY 66 DQUOT 69
            STALE 70 BADHANDLE 10001 BAD_COOKIE 10003 NOTSUPP 10004 TOOSMALL 10005
            SERVERFAULT 10006 BADTYPE 10007 DELAY 10008 SAME 10009 DENIED 10010
            EXPIRED 10011 LOCKED 10012 GRACE 10013 FHEXPIRED 10014 SHARE_DENIED 10015
            WRONGSEC 10016 CLID_INUSE 10017 RESOURCE 10018 MOVED 10019 NOFILEHANDLE 10020
            MINOR_VERS_MISMATCH 10021 STALE_CLIENTID 10022 STALE_STATEID 10023
            OLD_STATEID 10024 BAD_STATEID 10025 BAD_SEQID 10026 NOT_SAME 10027
            LOCK_RANGE 10028 SYMLINK 10029 RESTOREFH 10030 LEASE_MOVED 10031
            ATTRNOTSUPP 10032 NO_GRACE 10033 RECLAIM_BAD 10034 RECLAIM_CONFLICT 10035
            BADXDR 10036 LOCKS_HELD 10037 OPENMODE 10038 BADOWNER 10039 BADCHAR 10040
            BADNAME 10041 BAD_RANGE 10042 LOCK_NOTSUPP 10043 OP_ILLEGAL 10044
            DEADLOCK 10045 FILE_OPEN 10046 ADMIN_REVOKED 10047 CB_PATH_DOWN 10048
            BADIOMODE 10049 BADLAYOUT 10050 BAD_SESSION_DIGEST 10051 BADSESSION 10052
            BADSLOT 10053 COMPLETE_ALREADY 10054 CONN_NOT_BOUND_TO_SESSION 10055
            DELEG_ALREADY_WANTED 10056 BACK_CHAN_BUSY 10057 LAYOUTTRYLATER 10058
            LAYOUTUNAVAILABLE 10059 NOMATCHING_LAYOUT 10060 RECALLCONFLICT 10061
            UNKNOWN_LAYOUTTYPE 10062 SEQ_MISORDERED 10063 SEQUENCE_POS 10064
            REQ_TOO_BIG 10065 REP_TOO_BIG 10066 REP_TOO_BIG_TO_CACHE 10067
            RETRY_UNCACHED_REP 10068 UNSAFE_COMPOUND 10069 TOO_MANY_OPS 10070
            OP_NOT_IN_SESSION 10071 HASH_ALG_UNSUPP 10072 CLIENTID_BUSY 10074
            PNFS_IO_HOLE 10075 SEQ_FALSE_RETRY 10076 BAD_HIGH_SLOT 10077 DEADSESSION 10078
            ENCR_ALG_UNSUPP 10079 PNFS_NO_LAYOUT 10080 NOT_ONLY_OP 10081 WRONG_CRED 10082
            WRONG_TYPE 10083 DIRDELEG_UNAVAIL 10084 REJECT_DELEG 10085
            RETURNCONFLICT 10086 DELEG_REVOKED 10087 PARTNER_NOTSUPP 10088
            PARTNER_NO_AUTH 10089 UNION_NOTSUPP 10090 OFFLOAD_DENIED 10091 WRONG_LFS 10092
            BADLABEL 10093 OFFLOAD_NO_REQS 10094 NOXATTR 10095 XATTR2BIG 10096";
        let words: Vec<&str> = RFC.split_whitespace().collect();
        let mut ours = 0;
        for pair in words.chunks(2) {
            let (name, n) = (pair[0], pair[1].parse::<u32>().unwrap());
            let want = name.replace('_', "").to_lowercase();
            let st = Nfs4Status::ALL
                .iter()
                .find(|s| s.name().to_lowercase() == want);
            match st {
                Some(&st) => {
                    assert_eq!(st.as_u32(), n, "NFS4ERR_{name}");
                    assert_eq!(st.to_xdr(), n.to_be_bytes(), "NFS4ERR_{name}");
                    assert_eq!(Nfs4Status::from_u32(n), Some(st), "NFS4ERR_{name}");
                    ours += 1;
                }
                None => assert_eq!(Nfs4Status::from_u32(n), None, "NFS4ERR_{name} = {n}"),
            }
        }
        assert_eq!(
            ours,
            Nfs4Status::ALL.len(),
            "every status of ours has an RFC name"
        );
    }

    #[test]
    fn encodes_as_its_number() {
        let mut out = Vec::new();
        Nfs4Status::Delay.encode(&mut out);
        assert_eq!(out, 10008u32.to_be_bytes());
    }
}
