//! NFSv3 file system information procedures (RFC 1813 sections 3.3.18 FSSTAT,
//! 3.3.19 FSINFO, 3.3.20 PATHCONF).

use super::types::{NfsFh3, NfsTime3, PostOpAttr, Res3};
use crate::xdr::xdr_struct;

xdr_struct! {
    /// `FSSTAT3args` (RFC 1813 section 3.3.18).
    pub struct FsstatArgs {
        /// Any handle in the file system.
        pub fsroot: NfsFh3,
    }
}

xdr_struct! {
    /// `FSSTAT3resok` (RFC 1813 section 3.3.18).
    pub struct FsstatResOk {
        /// Attributes of the object.
        pub obj_attributes: PostOpAttr,
        /// Total size in bytes.
        pub tbytes: u64,
        /// Free bytes.
        pub fbytes: u64,
        /// Free bytes available to the caller.
        pub abytes: u64,
        /// Total file slots.
        pub tfiles: u64,
        /// Free file slots.
        pub ffiles: u64,
        /// Free file slots available to the caller.
        pub afiles: u64,
        /// Seconds for which the information is expected to stay valid.
        pub invarsec: u32,
    }
}

xdr_struct! {
    /// `FSSTAT3resfail` (RFC 1813 section 3.3.18).
    #[derive(Default)]
    pub struct FsstatResFail {
        /// Attributes of the object.
        pub obj_attributes: PostOpAttr,
    }
}

/// `FSSTAT3res` (RFC 1813 section 3.3.18).
pub type FsstatRes = Res3<FsstatResOk, FsstatResFail>;

/// FSF3_LINK: the file system supports hard links.
pub const FSF3_LINK: u32 = 0x0001;
/// FSF3_SYMLINK: the file system supports symbolic links.
pub const FSF3_SYMLINK: u32 = 0x0002;
/// FSF3_HOMOGENEOUS: PATHCONF is the same for every file.
pub const FSF3_HOMOGENEOUS: u32 = 0x0008;
/// FSF3_CANSETTIME: SETATTR can set times.
pub const FSF3_CANSETTIME: u32 = 0x0010;

xdr_struct! {
    /// `FSINFO3args` (RFC 1813 section 3.3.19).
    pub struct FsinfoArgs {
        /// Root handle of the file system.
        pub fsroot: NfsFh3,
    }
}

xdr_struct! {
    /// `FSINFO3resok` (RFC 1813 section 3.3.19).
    pub struct FsinfoResOk {
        /// Attributes of the object.
        pub obj_attributes: PostOpAttr,
        /// Maximum READ size.
        pub rtmax: u32,
        /// Preferred READ size.
        pub rtpref: u32,
        /// Suggested READ size multiple.
        pub rtmult: u32,
        /// Maximum WRITE size.
        pub wtmax: u32,
        /// Preferred WRITE size.
        pub wtpref: u32,
        /// Suggested WRITE size multiple.
        pub wtmult: u32,
        /// Preferred READDIR size.
        pub dtpref: u32,
        /// Maximum file size.
        pub maxfilesize: u64,
        /// Server time granularity.
        pub time_delta: NfsTime3,
        /// Bit mask of `FSF3_*` properties.
        pub properties: u32,
    }
}

xdr_struct! {
    /// `FSINFO3resfail` (RFC 1813 section 3.3.19).
    #[derive(Default)]
    pub struct FsinfoResFail {
        /// Attributes of the object.
        pub obj_attributes: PostOpAttr,
    }
}

/// `FSINFO3res` (RFC 1813 section 3.3.19).
pub type FsinfoRes = Res3<FsinfoResOk, FsinfoResFail>;

xdr_struct! {
    /// `PATHCONF3args` (RFC 1813 section 3.3.20).
    pub struct PathconfArgs {
        /// Object to query.
        pub object: NfsFh3,
    }
}

xdr_struct! {
    /// `PATHCONF3resok` (RFC 1813 section 3.3.20).
    pub struct PathconfResOk {
        /// Attributes of the object.
        pub obj_attributes: PostOpAttr,
        /// Maximum number of hard links.
        pub linkmax: u32,
        /// Maximum name length.
        pub name_max: u32,
        /// True if over-long names are rejected rather than truncated.
        pub no_trunc: bool,
        /// True if changing owner is restricted to privileged users.
        pub chown_restricted: bool,
        /// True if names are case-insensitive.
        pub case_insensitive: bool,
        /// True if name case is preserved.
        pub case_preserving: bool,
    }
}

xdr_struct! {
    /// `PATHCONF3resfail` (RFC 1813 section 3.3.20).
    #[derive(Default)]
    pub struct PathconfResFail {
        /// Attributes of the object.
        pub obj_attributes: PostOpAttr,
    }
}

/// `PATHCONF3res` (RFC 1813 section 3.3.20).
pub type PathconfRes = Res3<PathconfResOk, PathconfResFail>;
