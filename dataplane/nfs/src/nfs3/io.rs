//! NFSv3 data procedures (RFC 1813 sections 3.3.6 READ, 3.3.7 WRITE, 3.3.21 COMMIT).
//!
//! WRITE payloads decode as [`Bytes`]; with [`Decoder::from_bytes`] they are zero-copy
//! slices of the request buffer. READ results can be encoded header-only
//! ([`ReadResOk::encode_head`]) so the caller can send the payload without copying it
//! into the reply buffer (see [`crate::record::write_record_parts`]).

use bytes::{BufMut, Bytes};

use super::types::{NfsFh3, PostOpAttr, Res3, WccData, WriteVerf3};
use crate::xdr::{
    Decoder, XdrDecode, XdrEncode, XdrResult, XdrWrite, opaque_len, pad_len, xdr_enum, xdr_struct,
};

xdr_struct! {
    /// `READ3args` (RFC 1813 section 3.3.6).
    pub struct ReadArgs {
        /// File to read.
        pub file: NfsFh3,
        /// Byte offset.
        pub offset: u64,
        /// Number of bytes wanted.
        pub count: u32,
    }
}

/// `READ3resok` (RFC 1813 section 3.3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResOk {
    /// Attributes of the file.
    pub file_attributes: PostOpAttr,
    /// Number of bytes returned (should equal `data.len()`).
    pub count: u32,
    /// True when the read reached end of file.
    pub eof: bool,
    /// The bytes read.
    pub data: Bytes,
}

impl ReadResOk {
    /// Encode everything up to and including the length word of `data`. The caller
    /// then sends `data` followed by `pad_len(data.len())` zero bytes
    /// ([`ReadResOk::padding`]).
    pub fn encode_head<B: BufMut>(&self, out: &mut B) {
        self.file_attributes.encode(out);
        out.put_xdr_u32(self.count);
        out.put_xdr_bool(self.eof);
        out.put_xdr_opaque_len(self.data.len());
    }

    /// The XDR padding that must follow `data`.
    pub fn padding(&self) -> &'static [u8] {
        const ZEROS: [u8; 3] = [0; 3];
        ZEROS.get(..pad_len(self.data.len())).unwrap_or_default()
    }

    /// Encoded size of the whole `resok` arm.
    pub fn xdr_len(&self) -> usize {
        super::types::post_op_attr_len(&self.file_attributes) + 8 + opaque_len(self.data.len())
    }
}

impl XdrEncode for ReadResOk {
    fn encode<B: BufMut>(&self, out: &mut B) {
        self.encode_head(out);
        out.put_slice(&self.data);
        out.put_xdr_pad(self.data.len());
    }
}

impl XdrDecode for ReadResOk {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self {
            file_attributes: PostOpAttr::decode(dec)?,
            count: dec.u32()?,
            eof: dec.bool()?,
            data: dec.opaque_bytes(usize::MAX)?,
        })
    }
}

xdr_struct! {
    /// `READ3resfail` (RFC 1813 section 3.3.6).
    #[derive(Default)]
    pub struct ReadResFail {
        /// Attributes of the file.
        pub file_attributes: PostOpAttr,
    }
}

/// `READ3res` (RFC 1813 section 3.3.6).
pub type ReadRes = Res3<ReadResOk, ReadResFail>;

xdr_enum! {
    /// `stable_how` (RFC 1813 section 3.3.7).
    pub enum StableHow ("stable_how") {
        /// UNSTABLE: data may be cached until COMMIT.
        Unstable = 0,
        /// DATA_SYNC: data (and metadata needed to retrieve it) durable before reply.
        DataSync = 1,
        /// FILE_SYNC: data and all metadata durable before reply.
        FileSync = 2,
    }
}

/// `WRITE3args` (RFC 1813 section 3.3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteArgs {
    /// File to write.
    pub file: NfsFh3,
    /// Byte offset.
    pub offset: u64,
    /// Number of bytes to write, as sent by the client (the server should check it
    /// against `data.len()`).
    pub count: u32,
    /// Requested stability.
    pub stable: StableHow,
    /// The data: a zero-copy slice when decoded with [`Decoder::from_bytes`].
    pub data: Bytes,
}

impl XdrEncode for WriteArgs {
    fn encode<B: BufMut>(&self, out: &mut B) {
        self.file.encode(out);
        out.put_xdr_u64(self.offset);
        out.put_xdr_u32(self.count);
        self.stable.encode(out);
        out.put_xdr_opaque(&self.data);
    }
}

impl XdrDecode for WriteArgs {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self {
            file: NfsFh3::decode(dec)?,
            offset: dec.u64()?,
            count: dec.u32()?,
            stable: StableHow::decode(dec)?,
            // Unbounded in the RFC; the record size limit and the remaining-input
            // check bound it, and no allocation happens for the zero-copy path.
            data: dec.opaque_bytes(usize::MAX)?,
        })
    }
}

xdr_struct! {
    /// `WRITE3resok` (RFC 1813 section 3.3.7).
    pub struct WriteResOk {
        /// Weak cache consistency data of the file.
        pub file_wcc: WccData,
        /// Number of bytes written.
        pub count: u32,
        /// Stability actually achieved.
        pub committed: StableHow,
        /// Server write verifier (changes on every restart).
        pub verf: WriteVerf3,
    }
}

xdr_struct! {
    /// `WRITE3resfail` (RFC 1813 section 3.3.7).
    #[derive(Default)]
    pub struct WriteResFail {
        /// Weak cache consistency data of the file.
        pub file_wcc: WccData,
    }
}

/// `WRITE3res` (RFC 1813 section 3.3.7).
pub type WriteRes = Res3<WriteResOk, WriteResFail>;

xdr_struct! {
    /// `COMMIT3args` (RFC 1813 section 3.3.21).
    pub struct CommitArgs {
        /// File to commit.
        pub file: NfsFh3,
        /// Start of the range (0 = from the beginning).
        pub offset: u64,
        /// Length of the range (0 = to end of file).
        pub count: u32,
    }
}

xdr_struct! {
    /// `COMMIT3resok` (RFC 1813 section 3.3.21).
    pub struct CommitResOk {
        /// Weak cache consistency data of the file.
        pub file_wcc: WccData,
        /// Server write verifier.
        pub verf: WriteVerf3,
    }
}

xdr_struct! {
    /// `COMMIT3resfail` (RFC 1813 section 3.3.21).
    #[derive(Default)]
    pub struct CommitResFail {
        /// Weak cache consistency data of the file.
        pub file_wcc: WccData,
    }
}

/// `COMMIT3res` (RFC 1813 section 3.3.21).
pub type CommitRes = Res3<CommitResOk, CommitResFail>;
