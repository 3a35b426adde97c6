//! Attribute operations (RFC 8881 sections 18.1, 18.7, 18.15, 18.30, 18.32): GETATTR,
//! SETATTR, ACCESS, VERIFY and NVERIFY. The values themselves are `fattr4` ([`super::fattr`]).

use super::fattr::Fattr4;
use super::types::{Bitmap4, Stateid4};
use crate::xdr::xdr_struct;

xdr_struct! {
    /// SETATTR4args.
    pub struct SetattrArgs {
        pub stateid: Stateid4,
        pub attrs: Fattr4,
    }
}

xdr_struct! {
    /// SETATTR4res after its status: the attributes set (also sent on failure).
    pub struct SetattrRes {
        pub attrsset: Bitmap4,
    }
}

xdr_struct! {
    /// ACCESS4resok.
    pub struct AccessResOk {
        pub supported: u32,
        pub access: u32,
    }
}
