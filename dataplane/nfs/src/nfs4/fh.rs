//! File handle and lookup operations (RFC 8881 sections 18.7, 18.14, 18.15, 18.19-18.22,
//! 18.27, 18.29, 18.45): PUTFH, PUTPUBFH, PUTROOTFH, GETFH, SAVEFH, RESTOREFH, LOOKUP,
//! LOOKUPP, SECINFO and SECINFO_NO_NAME. Most take no arguments or one handle or name
//! (see [`super::Op4`]); this file has the results.

use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrResult, XdrWrite};
use bytes::BufMut;

/// AUTH_SYS, the only flavor SECINFO lists.
pub const AUTH_SYS: u32 = 1;

/// SECINFO4resok / SECINFO_NO_NAME4resok for flavors without parameters (no
/// RPCSEC_GSS): the flavor numbers in order of preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecinfoResOk(pub Vec<u32>);

impl XdrEncode for SecinfoResOk {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_u32(self.0.len() as u32);
        for f in &self.0 {
            out.put_xdr_u32(*f);
        }
    }
}

impl XdrDecode for SecinfoResOk {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.array(16, |d| d.u32()).map(SecinfoResOk)
    }
}
