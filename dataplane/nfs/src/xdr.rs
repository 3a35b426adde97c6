//! XDR: External Data Representation Standard (RFC 4506).
//!
//! * Decoding (RFC 4506 sections 4.1-4.19): [`Decoder`] is a cursor over a borrowed
//!   `&[u8]`. Every variable-length item (opaque, string, array) has its length checked
//!   against a caller-supplied maximum *and* against the remaining input before anything
//!   is allocated, so hostile lengths such as `0xFFFF_FFFF` produce an [`XdrError`]
//!   instead of a huge allocation. Decoding never panics.
//! * Encoding: [`XdrWrite`] extends any [`bytes::BufMut`] (`Vec<u8>`, `BytesMut`, ...)
//!   with the XDR primitives, padding every opaque/string to a multiple of four bytes
//!   (RFC 4506 section 3, "basic block size").
//! * [`XdrEncode`] / [`XdrDecode`] are implemented by every protocol type of this crate.

use bytes::{BufMut, Bytes};

/// Size of the XDR basic block (RFC 4506 section 3): every item occupies a multiple of 4 bytes.
pub const BLOCK: usize = 4;

/// Number of zero bytes needed after `len` bytes of data to reach a 4-byte boundary.
#[inline]
pub const fn pad_len(len: usize) -> usize {
    (BLOCK - (len % BLOCK)) % BLOCK
}

/// Encoded size of a variable-length opaque/string of `len` bytes (length word + data + pad).
#[inline]
pub const fn opaque_len(len: usize) -> usize {
    4 + len + pad_len(len)
}

/// A decoding failure. Always a value; decoders never panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XdrError {
    /// The input ended before the item was complete.
    #[error("XDR input truncated: needed {needed} bytes, {remaining} remaining")]
    Truncated {
        /// Bytes the item needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A variable-length item declared a length above the allowed maximum.
    #[error("XDR length {len} exceeds maximum {max}")]
    TooLong {
        /// Declared length (bytes or element count).
        len: u32,
        /// Allowed maximum.
        max: usize,
    },
    /// An enum or union discriminant had no defined arm.
    #[error("invalid XDR discriminant {value} for {what}")]
    BadDiscriminant {
        /// Name of the XDR type being decoded.
        what: &'static str,
        /// Value found on the wire.
        value: u32,
    },
    /// A boolean was neither 0 nor 1 (RFC 4506 section 4.4).
    #[error("invalid XDR boolean {0}")]
    BadBool(u32),
    /// A string was required to be UTF-8 and was not.
    #[error("XDR string is not valid UTF-8")]
    BadUtf8,
}

/// Result alias for XDR decoding.
pub type XdrResult<T> = Result<T, XdrError>;

/// Cursor-based XDR decoder over a borrowed buffer.
///
/// When built with [`Decoder::from_bytes`], [`Decoder::opaque_bytes`] returns
/// zero-copy slices of the underlying [`Bytes`] (used for WRITE payloads).
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    backing: Option<&'a Bytes>,
}

impl<'a> Decoder<'a> {
    /// Decoder over a plain slice; [`Decoder::opaque_bytes`] copies.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            backing: None,
        }
    }

    /// Decoder over a [`Bytes`] buffer; [`Decoder::opaque_bytes`] is zero-copy.
    pub fn from_bytes(bytes: &'a Bytes) -> Self {
        Self {
            buf: bytes.as_ref(),
            pos: 0,
            backing: Some(bytes),
        }
    }

    /// Current offset from the start of the buffer.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Number of unread bytes.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes (without consuming them).
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Take `n` raw bytes (no padding handling).
    fn take(&mut self, n: usize) -> XdrResult<&'a [u8]> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(XdrError::Truncated {
                needed: n,
                remaining,
            });
        }
        let start = self.pos;
        let end = start + n;
        let out = self.buf.get(start..end).ok_or(XdrError::Truncated {
            needed: n,
            remaining,
        })?;
        self.pos = end;
        Ok(out)
    }

    fn take_array<const N: usize>(&mut self) -> XdrResult<[u8; N]> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// Skip the padding that follows `len` bytes of opaque data.
    fn skip_pad(&mut self, len: usize) -> XdrResult<()> {
        // RFC 4506 says pad bytes are zero; like most implementations we do not
        // reject non-zero padding (be liberal in what you accept).
        self.take(pad_len(len)).map(|_| ())
    }

    /// Unsigned integer (RFC 4506 section 4.2).
    pub fn u32(&mut self) -> XdrResult<u32> {
        Ok(u32::from_be_bytes(self.take_array::<4>()?))
    }

    /// Signed integer (RFC 4506 section 4.1).
    pub fn i32(&mut self) -> XdrResult<i32> {
        Ok(i32::from_be_bytes(self.take_array::<4>()?))
    }

    /// Unsigned hyper integer (RFC 4506 section 4.5).
    pub fn u64(&mut self) -> XdrResult<u64> {
        Ok(u64::from_be_bytes(self.take_array::<8>()?))
    }

    /// Signed hyper integer (RFC 4506 section 4.5).
    pub fn i64(&mut self) -> XdrResult<i64> {
        Ok(i64::from_be_bytes(self.take_array::<8>()?))
    }

    /// Boolean (RFC 4506 section 4.4): 0 or 1, anything else is an error.
    pub fn bool(&mut self) -> XdrResult<bool> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(XdrError::BadBool(v)),
        }
    }

    /// Fixed-length opaque data of `n` bytes (RFC 4506 section 4.9), padding skipped.
    pub fn opaque_fixed(&mut self, n: usize) -> XdrResult<&'a [u8]> {
        let data = self.take(n)?;
        self.skip_pad(n)?;
        Ok(data)
    }

    /// Fixed-length opaque data into an array (e.g. 8-byte verifiers).
    pub fn opaque_array<const N: usize>(&mut self) -> XdrResult<[u8; N]> {
        let data = self.take_array::<N>()?;
        self.skip_pad(N)?;
        Ok(data)
    }

    /// Read and validate a length word against `max` and the remaining input.
    fn length(&mut self, max: usize, elem_min_size: usize) -> XdrResult<usize> {
        let len = self.u32()?;
        let n = len as usize;
        if n > max {
            return Err(XdrError::TooLong { len, max });
        }
        let needed = n.saturating_mul(elem_min_size);
        let remaining = self.remaining();
        if needed > remaining {
            return Err(XdrError::Truncated { needed, remaining });
        }
        Ok(n)
    }

    /// Variable-length opaque data of at most `max` bytes (RFC 4506 section 4.10),
    /// borrowed from the input.
    pub fn opaque(&mut self, max: usize) -> XdrResult<&'a [u8]> {
        let n = self.length(max, 1)?;
        self.opaque_fixed(n)
    }

    /// Variable-length opaque data as an owned vector.
    pub fn opaque_vec(&mut self, max: usize) -> XdrResult<Vec<u8>> {
        self.opaque(max).map(<[u8]>::to_vec)
    }

    /// Variable-length opaque data as [`Bytes`]: a zero-copy slice when the decoder was
    /// built with [`Decoder::from_bytes`], a copy otherwise.
    pub fn opaque_bytes(&mut self, max: usize) -> XdrResult<Bytes> {
        let start = self.pos + 4;
        let data = self.opaque(max)?;
        Ok(match self.backing {
            Some(b) => b.slice(start..start + data.len()),
            None => Bytes::copy_from_slice(data),
        })
    }

    /// String of at most `max` bytes (RFC 4506 section 4.11) as raw bytes; XDR strings
    /// are ASCII by definition but NFS names are arbitrary bytes.
    pub fn string(&mut self, max: usize) -> XdrResult<&'a [u8]> {
        self.opaque(max)
    }

    /// String of at most `max` bytes that must be valid UTF-8.
    pub fn string_utf8(&mut self, max: usize) -> XdrResult<&'a str> {
        std::str::from_utf8(self.string(max)?).map_err(|_| XdrError::BadUtf8)
    }

    /// Optional data (RFC 4506 section 4.19): a boolean followed by the item when true.
    pub fn optional<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> XdrResult<T>,
    ) -> XdrResult<Option<T>> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Variable-length array of at most `max` elements (RFC 4506 section 4.13). Each
    /// element is assumed to occupy at least 4 bytes on the wire, which bounds the
    /// count by the remaining input before the vector is allocated.
    pub fn array<T>(
        &mut self,
        max: usize,
        mut f: impl FnMut(&mut Self) -> XdrResult<T>,
    ) -> XdrResult<Vec<T>> {
        let n = self.length(max, BLOCK)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(f(self)?);
        }
        Ok(out)
    }

    /// A linked list encoded as optional-data chains (`*next` pointers, as used by
    /// READDIR entries and MOUNT lists): `bool, item, bool, item, ..., false`. Each item
    /// consumes input, so the list length is bounded by the input; `max` bounds it further.
    pub fn list<T>(
        &mut self,
        max: usize,
        mut f: impl FnMut(&mut Self) -> XdrResult<T>,
    ) -> XdrResult<Vec<T>> {
        let mut out = Vec::new();
        while self.bool()? {
            if out.len() >= max {
                return Err(XdrError::TooLong {
                    len: u32::try_from(out.len().saturating_add(1)).unwrap_or(u32::MAX),
                    max,
                });
            }
            out.push(f(self)?);
        }
        Ok(out)
    }

    /// Decode a value implementing [`XdrDecode`].
    pub fn decode<T: XdrDecode>(&mut self) -> XdrResult<T> {
        T::decode(self)
    }
}

/// XDR encoding primitives for any [`BufMut`] (`Vec<u8>`, `BytesMut`, ...).
pub trait XdrWrite: BufMut {
    /// Unsigned integer, big-endian (RFC 4506 section 4.2).
    fn put_xdr_u32(&mut self, v: u32) {
        self.put_u32(v);
    }
    /// Signed integer (RFC 4506 section 4.1).
    fn put_xdr_i32(&mut self, v: i32) {
        self.put_i32(v);
    }
    /// Unsigned hyper (RFC 4506 section 4.5).
    fn put_xdr_u64(&mut self, v: u64) {
        self.put_u64(v);
    }
    /// Signed hyper (RFC 4506 section 4.5).
    fn put_xdr_i64(&mut self, v: i64) {
        self.put_i64(v);
    }
    /// Boolean (RFC 4506 section 4.4).
    fn put_xdr_bool(&mut self, v: bool) {
        self.put_u32(u32::from(v));
    }
    /// A linked list as optional-data chains (`*next` pointers): `true, item, ...,
    /// false` (the encoder of [`Decoder::list`]).
    fn put_xdr_list<T: XdrEncode>(&mut self, items: &[T])
    where
        Self: Sized,
    {
        for item in items {
            self.put_xdr_bool(true);
            item.encode(self);
        }
        self.put_xdr_bool(false);
    }
    /// `n` zero bytes of padding after `len` data bytes.
    fn put_xdr_pad(&mut self, len: usize) {
        self.put_bytes(0, pad_len(len));
    }
    /// Fixed-length opaque (RFC 4506 section 4.9): data then padding.
    fn put_xdr_opaque_fixed(&mut self, data: &[u8]) {
        self.put_slice(data);
        self.put_xdr_pad(data.len());
    }
    /// Variable-length opaque (RFC 4506 section 4.10): length, data, padding.
    /// Lengths above `u32::MAX` cannot be represented; callers bound their data.
    fn put_xdr_opaque(&mut self, data: &[u8]) {
        self.put_xdr_opaque_len(data.len());
        self.put_xdr_opaque_fixed(data);
    }
    /// Only the length word of a variable-length opaque whose data the caller will
    /// append itself (followed by [`XdrWrite::put_xdr_pad`]).
    fn put_xdr_opaque_len(&mut self, len: usize) {
        self.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    }
    /// String (RFC 4506 section 4.11): same wire form as variable-length opaque.
    fn put_xdr_string(&mut self, s: &[u8]) {
        self.put_xdr_opaque(s);
    }
    /// Encode a value implementing [`XdrEncode`].
    fn put_xdr<T: XdrEncode + ?Sized>(&mut self, v: &T)
    where
        Self: Sized,
    {
        v.encode(self);
    }
}

impl<B: BufMut + ?Sized> XdrWrite for B {}

/// A type with an XDR encoding.
pub trait XdrEncode {
    /// Append the XDR encoding of `self` to `out`.
    fn encode<B: BufMut>(&self, out: &mut B);

    /// Encode into a fresh vector.
    fn to_xdr(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

/// A type decodable from XDR.
pub trait XdrDecode: Sized {
    /// Decode one value from `dec`.
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self>;

    /// Decode from a complete buffer, ignoring trailing bytes.
    fn from_xdr(buf: &[u8]) -> XdrResult<Self> {
        Self::decode(&mut Decoder::new(buf))
    }
}

impl XdrEncode for u32 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_u32(*self);
    }
}
impl XdrDecode for u32 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.u32()
    }
}
impl XdrEncode for i32 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_i32(*self);
    }
}
impl XdrDecode for i32 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.i32()
    }
}
impl XdrEncode for u64 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_u64(*self);
    }
}
impl XdrDecode for u64 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.u64()
    }
}
impl XdrEncode for i64 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_i64(*self);
    }
}
impl XdrDecode for i64 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.i64()
    }
}
impl XdrEncode for bool {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_bool(*self);
    }
}
impl XdrDecode for bool {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.bool()
    }
}
/// XDR `void` (RFC 4506 section 4.16).
impl XdrEncode for () {
    fn encode<B: BufMut>(&self, _out: &mut B) {}
}
impl XdrDecode for () {
    fn decode(_dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(())
    }
}
/// Fixed-length opaque of `N` bytes (RFC 4506 section 4.9).
impl<const N: usize> XdrEncode for [u8; N] {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque_fixed(self);
    }
}
impl<const N: usize> XdrDecode for [u8; N] {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.opaque_array::<N>()
    }
}
/// A boxed value has the encoding of the value.
impl<T: XdrEncode> XdrEncode for Box<T> {
    fn encode<B: BufMut>(&self, out: &mut B) {
        (**self).encode(out);
    }
}
impl<T: XdrDecode> XdrDecode for Box<T> {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        T::decode(dec).map(Box::new)
    }
}
/// Optional data (RFC 4506 section 4.19); also the wire form of NFSv3's
/// `union switch (bool)` types such as `post_op_attr`.
impl<T: XdrEncode> XdrEncode for Option<T> {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            Some(v) => {
                out.put_xdr_bool(true);
                v.encode(out);
            }
            None => out.put_xdr_bool(false),
        }
    }
}
impl<T: XdrDecode> XdrDecode for Option<T> {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        dec.optional(T::decode)
    }
}

/// Define a plain XDR struct whose fields are encoded in declaration order
/// (RFC 4506 section 4.14) and derive its [`XdrEncode`] / [`XdrDecode`] impls.
macro_rules! xdr_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::xdr::XdrEncode for $name {
            #[allow(unused_variables)]
            fn encode<B: ::bytes::BufMut>(&self, out: &mut B) {
                $( $crate::xdr::XdrEncode::encode(&self.$field, out); )*
            }
        }

        impl $crate::xdr::XdrDecode for $name {
            #[allow(unused_variables)]
            fn decode(dec: &mut $crate::xdr::Decoder<'_>) -> $crate::xdr::XdrResult<Self> {
                Ok(Self { $( $field: $crate::xdr::XdrDecode::decode(dec)?, )* })
            }
        }
    };
}
pub(crate) use xdr_struct;

/// Define a C-like XDR enum (RFC 4506 section 4.3) with explicit discriminants, a
/// `from_u32` constructor, and [`XdrEncode`] / [`XdrDecode`] impls; unknown values decode
/// to [`XdrError::BadDiscriminant`].
macro_rules! xdr_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($wire:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// Every defined value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The value for a wire discriminant, if defined.
            pub fn from_u32(v: u32) -> Option<Self> {
                match v {
                    $( x if x == $value => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The wire discriminant.
            pub fn as_u32(self) -> u32 {
                self as u32
            }

            /// The value's name (metrics labels, logs).
            #[allow(dead_code)]
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => stringify!($variant), )*
                }
            }
        }

        impl $crate::xdr::XdrEncode for $name {
            fn encode<B: ::bytes::BufMut>(&self, out: &mut B) {
                out.put_u32(*self as u32);
            }
        }

        impl $crate::xdr::XdrDecode for $name {
            fn decode(dec: &mut $crate::xdr::Decoder<'_>) -> $crate::xdr::XdrResult<Self> {
                let v = dec.u32()?;
                Self::from_u32(v).ok_or($crate::xdr::XdrError::BadDiscriminant { what: $wire, value: v })
            }
        }
    };
}
pub(crate) use xdr_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut v = Vec::new();
        v.put_xdr_u32(7);
        v.put_xdr_i32(-2);
        v.put_xdr_u64(u64::MAX - 1);
        v.put_xdr_i64(-3);
        v.put_xdr_bool(true);
        v.put_xdr_opaque(b"abcde");
        v.put_xdr_opaque_fixed(b"xy");
        v.put_xdr_string(b"");
        assert_eq!(v.len(), 4 + 4 + 8 + 8 + 4 + 12 + 4 + 4);
        let mut d = Decoder::new(&v);
        assert_eq!(d.u32().unwrap(), 7);
        assert_eq!(d.i32().unwrap(), -2);
        assert_eq!(d.u64().unwrap(), u64::MAX - 1);
        assert_eq!(d.i64().unwrap(), -3);
        assert!(d.bool().unwrap());
        assert_eq!(d.opaque(5).unwrap(), b"abcde");
        assert_eq!(d.opaque_fixed(2).unwrap(), b"xy");
        assert_eq!(d.string(0).unwrap(), b"");
        assert!(d.is_empty());
    }

    #[test]
    fn padding_bytes_are_zero() {
        let mut v = Vec::new();
        v.put_xdr_opaque(b"a");
        assert_eq!(v, [0, 0, 0, 1, b'a', 0, 0, 0]);
    }

    #[test]
    fn hostile_lengths_are_rejected_without_allocating() {
        let buf = [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4];
        assert_eq!(
            Decoder::new(&buf).opaque(usize::MAX),
            Err(XdrError::Truncated {
                needed: 0xFFFF_FFFF,
                remaining: 4
            })
        );
        assert!(matches!(
            Decoder::new(&buf).opaque(64),
            Err(XdrError::TooLong { .. })
        ));
        assert!(matches!(
            Decoder::new(&buf).array(usize::MAX, |d| d.u32()),
            Err(XdrError::Truncated { .. })
        ));
        // Length fits but the padding is missing.
        assert!(matches!(
            Decoder::new(&[0, 0, 0, 1, 9]).opaque(8),
            Err(XdrError::Truncated { .. })
        ));
    }

    #[test]
    fn bad_bool() {
        assert_eq!(
            Decoder::new(&[0, 0, 0, 2]).bool(),
            Err(XdrError::BadBool(2))
        );
    }

    #[test]
    fn zero_copy_bytes() {
        let mut v = Vec::new();
        v.put_xdr_opaque(b"hello");
        let b = Bytes::from(v);
        let mut d = Decoder::from_bytes(&b);
        let got = d.opaque_bytes(16).unwrap();
        assert_eq!(&got[..], b"hello");
        assert_eq!(got.as_ptr(), b[4..].as_ptr());
        let mut d = Decoder::new(&b);
        assert_eq!(&d.opaque_bytes(16).unwrap()[..], b"hello");
    }

    #[test]
    fn lists() {
        let mut v = Vec::new();
        for i in 0..3u32 {
            v.put_xdr_bool(true);
            v.put_xdr_u32(i);
        }
        v.put_xdr_bool(false);
        assert_eq!(
            Decoder::new(&v).list(10, |d| d.u32()).unwrap(),
            vec![0, 1, 2]
        );
        assert!(Decoder::new(&v).list(2, |d| d.u32()).is_err());
    }
}
