//! NFSv3 attribute procedures (RFC 1813 sections 3.3.1 GETATTR, 3.3.2 SETATTR,
//! 3.3.4 ACCESS).

use super::types::{Fattr3, NfsFh3, NfsTime3, PostOpAttr, Res3, Sattr3, WccData};
use crate::xdr::xdr_struct;

xdr_struct! {
    /// `GETATTR3args` (RFC 1813 section 3.3.1).
    pub struct GetattrArgs {
        /// Object whose attributes are wanted.
        pub object: NfsFh3,
    }
}

xdr_struct! {
    /// `GETATTR3resok` (RFC 1813 section 3.3.1).
    pub struct GetattrResOk {
        /// Attributes of the object.
        pub obj_attributes: Fattr3,
    }
}

/// `GETATTR3res` (RFC 1813 section 3.3.1); `resfail` is void.
pub type GetattrRes = Res3<GetattrResOk, ()>;

/// `sattrguard3` (RFC 1813 section 3.3.2): `Some(ctime)` makes the server check the
/// object's ctime first (NFS3ERR_NOT_SYNC on mismatch).
pub type SattrGuard3 = Option<NfsTime3>;

xdr_struct! {
    /// `SETATTR3args` (RFC 1813 section 3.3.2).
    pub struct SetattrArgs {
        /// Object to change.
        pub object: NfsFh3,
        /// Attributes to set.
        pub new_attributes: Sattr3,
        /// Optional ctime guard.
        pub guard: SattrGuard3,
    }
}

xdr_struct! {
    /// `SETATTR3resok` (RFC 1813 section 3.3.2).
    pub struct SetattrResOk {
        /// Weak cache consistency data of the object.
        pub obj_wcc: WccData,
    }
}

xdr_struct! {
    /// `SETATTR3resfail` (RFC 1813 section 3.3.2).
    #[derive(Default)]
    pub struct SetattrResFail {
        /// Weak cache consistency data of the object.
        pub obj_wcc: WccData,
    }
}

/// `SETATTR3res` (RFC 1813 section 3.3.2).
pub type SetattrRes = Res3<SetattrResOk, SetattrResFail>;

/// ACCESS3_READ: read data or read a directory.
pub const ACCESS3_READ: u32 = 0x0001;
/// ACCESS3_LOOKUP: look up a name in a directory.
pub const ACCESS3_LOOKUP: u32 = 0x0002;
/// ACCESS3_MODIFY: rewrite existing data or modify directory entries.
pub const ACCESS3_MODIFY: u32 = 0x0004;
/// ACCESS3_EXTEND: write new data or add directory entries.
pub const ACCESS3_EXTEND: u32 = 0x0008;
/// ACCESS3_DELETE: delete a directory entry.
pub const ACCESS3_DELETE: u32 = 0x0010;
/// ACCESS3_EXECUTE: execute a file.
pub const ACCESS3_EXECUTE: u32 = 0x0020;

xdr_struct! {
    /// `ACCESS3args` (RFC 1813 section 3.3.4).
    pub struct AccessArgs {
        /// Object to check.
        pub object: NfsFh3,
        /// Bit mask of `ACCESS3_*` rights to check.
        pub access: u32,
    }
}

xdr_struct! {
    /// `ACCESS3resok` (RFC 1813 section 3.3.4).
    pub struct AccessResOk {
        /// Attributes of the object.
        pub obj_attributes: PostOpAttr,
        /// Granted subset of the requested rights.
        pub access: u32,
    }
}

xdr_struct! {
    /// `ACCESS3resfail` (RFC 1813 section 3.3.4).
    #[derive(Default)]
    pub struct AccessResFail {
        /// Attributes of the object.
        pub obj_attributes: PostOpAttr,
    }
}

/// `ACCESS3res` (RFC 1813 section 3.3.4).
pub type AccessRes = Res3<AccessResOk, AccessResFail>;
