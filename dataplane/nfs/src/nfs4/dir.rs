//! READDIR (RFC 8881 section 18.23): arguments, and the entry list of the result.
//!
//! The server builds the reply entry by entry against the client's `maxcount` (see
//! `proc4::dir`); [`ReaddirResOk`] decodes and encodes a whole result (tests, clients).
//! Cookies 0, 1 and 2 are reserved by the protocol: "." and ".." are never listed.

use super::fattr::Fattr4;
use super::types::{Bitmap4, Component4, Verifier4};
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrResult, XdrWrite, xdr_struct};
use bytes::BufMut;

/// Entries a decoded READDIR result may hold (client side).
const MAX_ENTRIES: usize = 1 << 16;

xdr_struct! {
    /// READDIR4args.
    pub struct ReaddirArgs {
        pub cookie: u64,
        pub cookieverf: Verifier4,
        pub dircount: u32,
        pub maxcount: u32,
        pub attr_request: Bitmap4,
    }
}

xdr_struct! {
    /// `entry4` without its `nextentry` link.
    pub struct Entry4 {
        pub cookie: u64,
        pub name: Component4,
        pub attrs: Fattr4,
    }
}

/// READDIR4resok: verifier, entries, eof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaddirResOk {
    pub cookieverf: Verifier4,
    pub entries: Vec<Entry4>,
    pub eof: bool,
}

impl XdrEncode for ReaddirResOk {
    fn encode<B: BufMut>(&self, out: &mut B) {
        self.cookieverf.encode(out);
        out.put_xdr_list(&self.entries);
        out.put_xdr_bool(self.eof);
    }
}

impl XdrDecode for ReaddirResOk {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(ReaddirResOk {
            cookieverf: Verifier4::decode(dec)?,
            entries: dec.list(MAX_ENTRIES, Entry4::decode)?,
            eof: dec.bool()?,
        })
    }
}
