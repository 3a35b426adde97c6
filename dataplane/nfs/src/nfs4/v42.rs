//! NFSv4.2 data operations (RFC 7862 sections 15.1, 15.2, 15.4, 15.10, 15.11, 15.13 and
//! the XDR of section 7 of RFC 7863): ALLOCATE, COPY, DEALLOCATE, READ_PLUS, SEEK,
//! CLONE. COPY's `ca_source_server` (`netloc4`) decodes in full so an inter-server copy
//! can be refused cleanly. READ_PLUS results carry their data as [`Bytes`].

use super::types::{List, OPAQUE_LIMIT, Stateid4, Verifier4};
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrError, XdrResult, XdrWrite, xdr_struct};
use bytes::{BufMut, Bytes};

/// `data_content4`: NFS4_CONTENT_DATA.
pub const CONTENT_DATA: u32 = 0;
/// `data_content4`: NFS4_CONTENT_HOLE.
pub const CONTENT_HOLE: u32 = 1;
/// The most source servers a COPY may name.
pub const MAX_SOURCE_SERVERS: usize = 16;

xdr_struct! {
    /// ALLOCATE4args and DEALLOCATE4args (the same fields).
    pub struct SpaceArgs {
        pub stateid: Stateid4,
        pub offset: u64,
        pub length: u64,
    }
}

/// `netloc4`: where a server is (name, URL or network address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Netloc4 {
    Name(Vec<u8>),
    Url(Vec<u8>),
    NetAddr { netid: Vec<u8>, addr: Vec<u8> },
}

impl XdrEncode for Netloc4 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            Netloc4::Name(n) => {
                out.put_xdr_u32(1);
                out.put_xdr_opaque(n);
            }
            Netloc4::Url(u) => {
                out.put_xdr_u32(2);
                out.put_xdr_opaque(u);
            }
            Netloc4::NetAddr { netid, addr } => {
                out.put_xdr_u32(3);
                out.put_xdr_opaque(netid);
                out.put_xdr_opaque(addr);
            }
        }
    }
}

impl XdrDecode for Netloc4 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(match dec.u32()? {
            1 => Netloc4::Name(dec.opaque_vec(OPAQUE_LIMIT)?),
            2 => Netloc4::Url(dec.opaque_vec(OPAQUE_LIMIT)?),
            3 => Netloc4::NetAddr {
                netid: dec.opaque_vec(OPAQUE_LIMIT)?,
                addr: dec.opaque_vec(OPAQUE_LIMIT)?,
            },
            value => {
                return Err(XdrError::BadDiscriminant {
                    what: "netloc_type4",
                    value,
                });
            }
        })
    }
}

xdr_struct! {
    /// COPY4args.
    pub struct CopyArgs {
        pub src_stateid: Stateid4,
        pub dst_stateid: Stateid4,
        pub src_offset: u64,
        pub dst_offset: u64,
        pub count: u64,
        pub consecutive: bool,
        pub synchronous: bool,
        pub source_server: List<Netloc4, MAX_SOURCE_SERVERS>,
    }
}

xdr_struct! {
    /// `write_response4` (`wr_callback_id<1>` has the wire form of an optional).
    pub struct WriteResponse4 {
        pub callback_id: Option<Stateid4>,
        pub count: u64,
        pub committed: u32,
        pub writeverf: Verifier4,
    }
}

xdr_struct! {
    /// COPY4resok: the write response and `copy_requirements4`.
    pub struct CopyResOk {
        pub response: WriteResponse4,
        pub consecutive: bool,
        pub synchronous: bool,
    }
}

xdr_struct! {
    /// CLONE4args.
    pub struct CloneArgs {
        pub src_stateid: Stateid4,
        pub dst_stateid: Stateid4,
        pub src_offset: u64,
        pub dst_offset: u64,
        pub count: u64,
    }
}

xdr_struct! {
    /// SEEK4args (`what`: [`CONTENT_DATA`] or [`CONTENT_HOLE`]).
    pub struct SeekArgs {
        pub stateid: Stateid4,
        pub offset: u64,
        pub what: u32,
    }
}

xdr_struct! {
    /// `seek_res4`.
    pub struct SeekResOk {
        pub eof: bool,
        pub offset: u64,
    }
}

xdr_struct! {
    /// READ_PLUS4args.
    pub struct ReadPlusArgs {
        pub stateid: Stateid4,
        pub offset: u64,
        pub count: u32,
    }
}

/// `read_plus_content`: data at an offset, or a hole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadPlusContent {
    Data { offset: u64, data: Bytes },
    Hole { offset: u64, length: u64 },
}

impl XdrEncode for ReadPlusContent {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            ReadPlusContent::Data { offset, data } => {
                out.put_xdr_u32(CONTENT_DATA);
                out.put_xdr_u64(*offset);
                out.put_xdr_opaque(data);
            }
            ReadPlusContent::Hole { offset, length } => {
                out.put_xdr_u32(CONTENT_HOLE);
                out.put_xdr_u64(*offset);
                out.put_xdr_u64(*length);
            }
        }
    }
}

impl XdrDecode for ReadPlusContent {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(match dec.u32()? {
            CONTENT_DATA => ReadPlusContent::Data {
                offset: dec.u64()?,
                data: dec.opaque_bytes(usize::MAX)?,
            },
            CONTENT_HOLE => ReadPlusContent::Hole {
                offset: dec.u64()?,
                length: dec.u64()?,
            },
            value => {
                return Err(XdrError::BadDiscriminant {
                    what: "data_content4",
                    value,
                });
            }
        })
    }
}

/// The most segments a READ_PLUS reply holds.
pub const MAX_SEGMENTS: usize = 1024;

xdr_struct! {
    /// `read_plus_res4`.
    pub struct ReadPlusResOk {
        pub eof: bool,
        pub contents: List<ReadPlusContent, MAX_SEGMENTS>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: XdrEncode + XdrDecode + PartialEq + std::fmt::Debug>(v: &T) {
        let b = v.to_xdr();
        let mut d = Decoder::new(&b);
        assert_eq!(&T::decode(&mut d).unwrap(), v);
        assert!(d.is_empty());
    }

    #[test]
    fn v42_arguments_and_results_round_trip() {
        round_trip(&CopyArgs {
            src_stateid: Stateid4::ANONYMOUS,
            dst_stateid: Stateid4::ANONYMOUS,
            src_offset: 1,
            dst_offset: 2,
            count: 3,
            consecutive: true,
            synchronous: false,
            source_server: List(vec![
                Netloc4::Name(b"a".to_vec()),
                Netloc4::NetAddr {
                    netid: b"tcp".to_vec(),
                    addr: b"1.2.3.4.8.1".to_vec(),
                },
            ]),
        });
        round_trip(&ReadPlusResOk {
            eof: true,
            contents: List(vec![
                ReadPlusContent::Data {
                    offset: 0,
                    data: Bytes::from_static(b"xyz"),
                },
                ReadPlusContent::Hole {
                    offset: 3,
                    length: 100,
                },
            ]),
        });
        round_trip(&CopyResOk {
            response: WriteResponse4 {
                callback_id: None,
                count: 5,
                committed: 2,
                writeverf: [7; 8],
            },
            consecutive: true,
            synchronous: true,
        });
    }

    /// `netloc_type4` (NL4_NAME 1, NL4_URL 2, NL4_NETADDR 3) and `data_content4`
    /// (NFS4_CONTENT_DATA 0, NFS4_CONTENT_HOLE 1) as RFC 7863 numbers them.
    #[test]
    fn v42_wire_numbers_are_the_rfcs() {
        let locs = [
            (Netloc4::Name(b"a".to_vec()), 1u32),
            (Netloc4::Url(b"b".to_vec()), 2),
            (
                Netloc4::NetAddr {
                    netid: b"tcp".to_vec(),
                    addr: b"c".to_vec(),
                },
                3,
            ),
        ];
        for (loc, n) in locs {
            assert_eq!(loc.to_xdr()[..4], n.to_be_bytes(), "{loc:?}");
        }
        let data = ReadPlusContent::Data {
            offset: 0,
            data: Bytes::new(),
        };
        let hole = ReadPlusContent::Hole {
            offset: 0,
            length: 1,
        };
        for (c, n) in [(data, 0u32), (hole, 1)] {
            assert_eq!(c.to_xdr()[..4], n.to_be_bytes(), "{c:?}");
        }
        assert_eq!((CONTENT_DATA, CONTENT_HOLE), (0, 1));
    }

    #[test]
    fn bad_discriminants_fail_to_decode() {
        let mut v = Vec::new();
        v.put_xdr_u32(9);
        assert!(Netloc4::decode(&mut Decoder::new(&v)).is_err());
        assert!(ReadPlusContent::decode(&mut Decoder::new(&v)).is_err());
    }
}
