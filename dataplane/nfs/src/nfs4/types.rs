//! Basic NFSv4 types (RFC 8881 section 3, RFC 7530 section 2): stateids, bitmaps, file
//! handles, names, times, verifiers, session IDs and channel attributes.
//!
//! Invariants: every variable-length item is decoded with its protocol bound
//! (`nfs_fh4` 128 bytes, `component4`/owners [`OPAQUE_LIMIT`], bitmaps [`MAX_BITMAP_WORDS`]
//! words), so a hostile length fails as an `XdrError` before anything is allocated.

use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrResult, XdrWrite, xdr_struct};
use bytes::BufMut;

/// NFS4_FHSIZE: the largest file handle.
pub const NFS4_FHSIZE: usize = 128;
/// NFS4_OPAQUE_LIMIT: the largest owner, name or other opaque of the protocol.
pub const OPAQUE_LIMIT: usize = 1024;
/// Bitmap words accepted (attribute numbers up to 32 * 8; NFSv4.2 uses three words).
pub const MAX_BITMAP_WORDS: usize = 8;

/// `verifier4`.
pub type Verifier4 = [u8; 8];
/// `sessionid4`.
pub type SessionId4 = [u8; 16];

xdr_struct! {
    /// `stateid4` (RFC 8881 section 3.3.12).
    pub struct Stateid4 {
        pub seqid: u32,
        pub other: [u8; 12],
    }
}

impl Stateid4 {
    /// The anonymous stateid (all zeros): I/O without an open.
    pub const ANONYMOUS: Stateid4 = Stateid4 {
        seqid: 0,
        other: [0; 12],
    };
    /// The READ bypass stateid (all ones).
    pub const BYPASS: Stateid4 = Stateid4 {
        seqid: u32::MAX,
        other: [0xff; 12],
    };
    /// The current stateid (seqid 1, other zero): the stateid of the previous operation.
    pub const CURRENT: Stateid4 = Stateid4 {
        seqid: 1,
        other: [0; 12],
    };
    /// The invalid stateid (seqid all ones, other zero), returned by CLOSE.
    pub const INVALID: Stateid4 = Stateid4 {
        seqid: u32::MAX,
        other: [0; 12],
    };

    /// Anonymous or READ bypass: I/O checked by permissions only.
    pub fn is_anonymous(&self) -> bool {
        *self == Stateid4::ANONYMOUS || *self == Stateid4::BYPASS
    }
}

/// `bitmap4`: attribute (or operation) numbers as bits of 32-bit words. Two bitmaps
/// are equal when they have the same bits (trailing zero words do not count).
#[derive(Clone, Debug, Default)]
pub struct Bitmap4(pub Vec<u32>);

impl PartialEq for Bitmap4 {
    fn eq(&self, other: &Bitmap4) -> bool {
        let n = self.0.len().max(other.0.len());
        (0..n).all(|i| self.0.get(i).unwrap_or(&0) == other.0.get(i).unwrap_or(&0))
    }
}

impl Eq for Bitmap4 {}

impl Bitmap4 {
    /// A bitmap with the given bits set.
    pub fn from_bits(bits: &[u32]) -> Bitmap4 {
        let mut b = Bitmap4::default();
        for &n in bits {
            b.set(n);
        }
        b
    }

    /// Whether bit `n` is set.
    pub fn has(&self, n: u32) -> bool {
        let (w, b) = ((n / 32) as usize, n % 32);
        self.0.get(w).is_some_and(|v| v & (1 << b) != 0)
    }

    /// Sets bit `n`.
    pub fn set(&mut self, n: u32) {
        let (w, b) = ((n / 32) as usize, n % 32);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }

    /// The set bits, lowest first.
    pub fn bits(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &v)| {
            (0..32u32)
                .filter(move |b| v & (1 << b) != 0)
                .map(move |b| w as u32 * 32 + b)
        })
    }

    /// The bits set in both.
    pub fn and(&self, other: &Bitmap4) -> Bitmap4 {
        Bitmap4(self.0.iter().zip(&other.0).map(|(a, b)| a & b).collect())
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }
}

impl XdrEncode for Bitmap4 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        let n = self.0.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        out.put_xdr_u32(n as u32);
        for w in &self.0[..n] {
            out.put_xdr_u32(*w);
        }
    }
}

impl XdrDecode for Bitmap4 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.array(MAX_BITMAP_WORDS, |d| d.u32()).map(Bitmap4)
    }
}

macro_rules! opaque_type {
    ($(#[$m:meta])* $name:ident, $max:expr) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name(pub Vec<u8>);

        impl XdrEncode for $name {
            fn encode<B: BufMut>(&self, out: &mut B) {
                out.put_xdr_opaque(&self.0);
            }
        }

        impl XdrDecode for $name {
            fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
                dec.opaque_vec($max).map($name)
            }
        }
    };
}

opaque_type!(
    /// `nfs_fh4`: a file handle of at most 128 bytes.
    Fh4,
    NFS4_FHSIZE
);
opaque_type!(
    /// `component4` / `utf8str_*` / owner opaques: at most [`OPAQUE_LIMIT`] bytes.
    Opaque4,
    OPAQUE_LIMIT
);

impl Opaque4 {
    /// An opaque holding `b`.
    pub fn from_name(b: &[u8]) -> Opaque4 {
        Opaque4(b.to_vec())
    }
}

/// `component4`: one name.
pub type Component4 = Opaque4;

xdr_struct! {
    /// `nfstime4` (RFC 8881 section 3.3.1).
    pub struct NfsTime4 {
        pub seconds: i64,
        pub nseconds: u32,
    }
}

xdr_struct! {
    /// `channel_attrs4` (RFC 8881 section 18.36); `rdma_ird` has at most one element.
    pub struct ChannelAttrs4 {
        pub headerpadsize: u32,
        pub maxrequestsize: u32,
        pub maxresponsesize: u32,
        pub maxresponsesize_cached: u32,
        pub maxoperations: u32,
        pub maxrequests: u32,
        pub rdma_ird: RdmaIrd,
    }
}

/// `uint32_t ca_rdma_ird<1>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdmaIrd(pub Option<u32>);

impl XdrEncode for RdmaIrd {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self.0 {
            Some(v) => {
                out.put_xdr_u32(1);
                out.put_xdr_u32(v);
            }
            None => out.put_xdr_u32(0),
        }
    }
}

impl XdrDecode for RdmaIrd {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(RdmaIrd(dec.array(1, |d| d.u32())?.first().copied()))
    }
}

/// A counted array of `T` with at most `MAX` elements (`T list<MAX>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct List<T, const MAX: usize>(pub Vec<T>);

impl<T: XdrEncode, const MAX: usize> XdrEncode for List<T, MAX> {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_u32(self.0.len() as u32);
        for v in &self.0 {
            v.encode(out);
        }
    }
}

impl<T: XdrDecode, const MAX: usize> XdrDecode for List<T, MAX> {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.array(MAX, T::decode).map(List)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_bits_and_encoding() {
        let b = Bitmap4::from_bits(&[0, 33, 75]);
        assert!(b.has(33) && b.has(75) && !b.has(1));
        assert_eq!(b.bits().collect::<Vec<_>>(), vec![0, 33, 75]);
        let round = Bitmap4::from_xdr(&b.to_xdr()).unwrap();
        assert_eq!(round, b);
        // trailing zero words are not sent, and do not count
        let z = Bitmap4(vec![1, 0, 0]);
        assert_eq!(z.to_xdr(), vec![0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(z, Bitmap4(vec![1]));
        assert_eq!(Bitmap4(vec![0, 0]), Bitmap4::default());
        assert_ne!(Bitmap4(vec![0, 1]), Bitmap4::default());
    }

    #[test]
    fn hostile_bitmaps_and_handles_fail_cleanly() {
        let mut v = Vec::new();
        v.put_xdr_u32(1000);
        assert!(Bitmap4::from_xdr(&v).is_err());
        let mut v = Vec::new();
        v.put_xdr_opaque(&[1u8; 129]);
        assert!(Fh4::from_xdr(&v).is_err());
    }

    /// The special stateids on the wire (RFC 8881 section 8.2.3): anonymous all zeros,
    /// READ bypass all ones, current `{1, 0}`, invalid `{NFS4_UINT32_MAX, 0}`.
    #[test]
    fn special_stateid_wire_bytes_are_the_rfcs() {
        let word = |seqid: u32, other: u8| [&seqid.to_be_bytes()[..], &[other; 12]].concat();
        assert_eq!(Stateid4::ANONYMOUS.to_xdr(), word(0, 0));
        assert_eq!(Stateid4::BYPASS.to_xdr(), word(u32::MAX, 0xff));
        assert_eq!(Stateid4::CURRENT.to_xdr(), word(1, 0));
        assert_eq!(Stateid4::INVALID.to_xdr(), word(u32::MAX, 0));
        assert_eq!((NFS4_FHSIZE, OPAQUE_LIMIT), (128, 1024));
    }

    #[test]
    fn special_stateids() {
        assert!(Stateid4::ANONYMOUS.is_anonymous());
        assert!(Stateid4::BYPASS.is_anonymous());
        assert!(!Stateid4::CURRENT.is_anonymous());
        let s = Stateid4 {
            seqid: 7,
            other: [3; 12],
        };
        assert_eq!(Stateid4::from_xdr(&s.to_xdr()).unwrap(), s);
    }
}
