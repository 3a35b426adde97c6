//! Extended attribute operations of NFSv4.2 (RFC 8276, "File System Extended
//! Attributes in NFSv4"): GETXATTR (72), SETXATTR (73), LISTXATTRS (74), REMOVEXATTR
//! (75). The ACCESS bits that come with them (XAREAD 0x40, XAWRITE 0x80, XALIST 0x100)
//! are answered by ACCESS, the `xattr_support` attribute (82) is in `fattr.rs`.
//!
//! A name (`xattrkey4`) is a `component4` (at most `OPAQUE_LIMIT` bytes on the wire);
//! a value (`xattrvalue4`) decodes up to [`VALUE_DECODE_LIMIT`], far above what the core
//! stores, so an oversized value reaches the core and is answered NFS4ERR_XATTR2BIG
//! instead of NFS4ERR_BADXDR. A `setxattr_option4` outside its three values is BADXDR.

use super::ns::ChangeInfo4;
use super::types::{Component4, List};
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrResult, XdrWrite, xdr_enum, xdr_struct};
use bytes::BufMut;

/// OP_GETXATTR, OP_SETXATTR, OP_LISTXATTRS, OP_REMOVEXATTR.
pub const OP_GETXATTR: u32 = 72;
pub const OP_SETXATTR: u32 = 73;
pub const OP_LISTXATTRS: u32 = 74;
pub const OP_REMOVEXATTR: u32 = 75;

/// The largest `xattrvalue4` decoded (the session's request bound is below it anyway).
pub const VALUE_DECODE_LIMIT: usize = 1 << 20;
/// The most names a LISTXATTRS4resok carries when decoded (client side).
pub const MAX_LIST_NAMES: usize = 1 << 16;

/// `xattrvalue4`: an attribute's value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XattrValue4(pub Vec<u8>);

impl XdrEncode for XattrValue4 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.0);
    }
}

impl XdrDecode for XattrValue4 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.opaque_vec(VALUE_DECODE_LIMIT).map(XattrValue4)
    }
}

xdr_enum! {
    /// `setxattr_option4`.
    pub enum SetxattrOption4 ("setxattr_option4") {
        /// Create or replace.
        Either = 0,
        /// Create only (NFS4ERR_EXIST if set).
        Create = 1,
        /// Replace only (NFS4ERR_NOXATTR if not set).
        Replace = 2,
    }
}

xdr_struct! {
    /// SETXATTR4args.
    pub struct SetxattrArgs {
        pub option: SetxattrOption4,
        pub key: Component4,
        pub value: XattrValue4,
    }
}

xdr_struct! {
    /// LISTXATTRS4args: resume at `cookie` (0 starts), the result's XDR size at most
    /// `maxcount` bytes.
    pub struct ListxattrsArgs {
        pub cookie: u64,
        pub maxcount: u32,
    }
}

xdr_struct! {
    /// LISTXATTRS4resok.
    pub struct ListxattrsResOk {
        pub cookie: u64,
        pub names: List<Component4, MAX_LIST_NAMES>,
        pub eof: bool,
    }
}

/// Bytes of a LISTXATTRS4resok besides its names: cookie, array count, eof.
pub const LIST_RES_FIXED: usize = 8 + 4 + 4;

/// Bytes one name takes in a LISTXATTRS4resok: length word and padded bytes.
pub fn list_name_size(name: &[u8]) -> usize {
    4 + name.len().div_ceil(4) * 4
}

xdr_struct! {
    /// SETXATTR4resok and REMOVEXATTR4resok: the object's change attribute around it.
    pub struct XattrChangeRes {
        pub info: ChangeInfo4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setxattr_round_trip_and_bad_option() {
        let a = SetxattrArgs {
            option: SetxattrOption4::Replace,
            key: Component4::from_name(b"color"),
            value: XattrValue4(vec![1, 2, 3]),
        };
        let b = a.to_xdr();
        assert_eq!(
            b,
            [
                &[0, 0, 0, 2, 0, 0, 0, 5][..],
                b"color\0\0\0",
                &[0, 0, 0, 3, 1, 2, 3, 0]
            ]
            .concat()
        );
        assert_eq!(SetxattrArgs::from_xdr(&b).unwrap(), a);
        let mut bad = b.clone();
        bad[3] = 3;
        assert!(SetxattrArgs::from_xdr(&bad).is_err());
        for n in 0..b.len() {
            assert!(SetxattrArgs::from_xdr(&b[..n]).is_err(), "{n}");
        }
    }

    /// `setxattr_option4` (SETXATTR4_EITHER 0, _CREATE 1, _REPLACE 2) and the operation
    /// numbers as RFC 8276 gives them.
    #[test]
    fn xattr_wire_numbers_are_the_rfcs() {
        use SetxattrOption4::*;
        for (opt, n) in [(Either, 0u32), (Create, 1), (Replace, 2)] {
            assert_eq!(opt.to_xdr(), n.to_be_bytes(), "{opt:?}");
            assert_eq!(SetxattrOption4::from_xdr(&n.to_be_bytes()).unwrap(), opt);
        }
        let ops = [OP_GETXATTR, OP_SETXATTR, OP_LISTXATTRS, OP_REMOVEXATTR];
        assert_eq!(ops, [72, 73, 74, 75]);
    }

    #[test]
    fn values_over_the_core_limit_still_decode() {
        let mut v = Vec::new();
        v.put_xdr_opaque(&vec![7u8; 64 * 1024 + 1]);
        assert_eq!(XattrValue4::from_xdr(&v).unwrap().0.len(), 64 * 1024 + 1);
        let mut v = Vec::new();
        v.put_xdr_u32(VALUE_DECODE_LIMIT as u32 + 1);
        assert!(XattrValue4::from_xdr(&v).is_err());
    }

    #[test]
    fn list_result_size_is_what_is_encoded() {
        let names = vec![
            Component4::from_name(b"a"),
            Component4::from_name(b"four"),
            Component4::from_name(b"fives"),
        ];
        let want: usize = names.iter().map(|n| list_name_size(&n.0)).sum();
        let r = ListxattrsResOk {
            cookie: 3,
            names: List(names),
            eof: true,
        };
        assert_eq!(r.to_xdr().len(), LIST_RES_FIXED + want);
        assert_eq!(ListxattrsResOk::from_xdr(&r.to_xdr()).unwrap(), r);
    }
}
