//! NFS version 4 protocol codec, minor versions 0, 1 and 2 (RFC 7530, RFC 8881, RFC 7862): program
//! 100003 version 4, procedures NULL and COMPOUND (RFC 8881 section 16).
//!
//! A COMPOUND is a header ([`CompoundHeader`]: tag, minor version, operation count) and
//! that many operations, each an operation number and its arguments ([`Op4`]). The
//! server decodes operations one at a time as it runs them (an operation after a failed
//! one is never decoded), so a malformed operation fails as NFS4ERR_BADXDR in its own
//! slot of the result, an unknown number as OP_ILLEGAL (RFC 8881 section 15.2), and an
//! operation of the protocol this server does not implement as NFS4ERR_NOTSUPP.
//!
//! Minor version 0 (RFC 7530) is served too: its five operations of its own
//! (SETCLIENTID, SETCLIENTID_CONFIRM, RENEW, OPEN_CONFIRM, RELEASE_LOCKOWNER) decode
//! here, and [`Op4::in_minor_version`] says which operations a minor version has
//! (4.2's, numbers 59 and up, are not 4.1's).
//!
//! Files by operation family, next to their handlers in `proc4/`:
//! * `status.rs`: `nfsstat4` and the mapping of the core's errors;
//! * `types.rs`: stateids, bitmaps, handles, names, times, channel attributes;
//! * `fattr.rs`: `fattr4` (attribute numbers, encoding, settable attributes);
//! * `session.rs`: EXCHANGE_ID, CREATE_SESSION, SEQUENCE, ...;
//! * `fh.rs`: PUTFH ... LOOKUP, SECINFO; `attr.rs`: GETATTR, SETATTR, ACCESS, VERIFY;
//! * `io.rs`: OPEN, CLOSE, READ, WRITE, COMMIT, LOCK, stateid tests;
//! * `ns.rs`: CREATE, LINK, READLINK, REMOVE, RENAME; `dir.rs`: READDIR;
//! * `v42.rs`: NFSv4.2's ALLOCATE, COPY, DEALLOCATE, READ_PLUS, SEEK, CLONE (RFC 7862);
//!   its other operations (COPY_NOTIFY, OFFLOAD_*, IO_ADVISE, LAYOUTERROR, LAYOUTSTATS,
//!   WRITE_SAME) are NFS4ERR_NOTSUPP.
//! * `xattr.rs`: GETXATTR, SETXATTR, LISTXATTRS, REMOVEXATTR (NFSv4.2, RFC 8276);
//! * `callback.rs`: the callback program's CB_COMPOUND the server sends (CB_SEQUENCE,
//!   CB_RECALL, CB_NOTIFY_LOCK).

pub mod attr;
pub mod callback;
pub mod dir;
pub mod fattr;
pub mod fh;
pub mod io;
pub mod ns;
pub mod session;
mod status;
pub mod types;
pub mod v42;
pub mod xattr;

pub use status::Nfs4Status;

use self::attr::SetattrArgs;
use self::dir::ReaddirArgs;
use self::fattr::Fattr4;
use self::io::*;
use self::ns::{CreateArgs, RenameArgs};
use self::session::*;
use self::types::{Bitmap4, Component4, Fh4, OPAQUE_LIMIT, SessionId4, Stateid4};
use self::v42::{CloneArgs, CopyArgs, ReadPlusArgs, SeekArgs, SpaceArgs};
use self::xattr::{ListxattrsArgs, SetxattrArgs};
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrError, XdrResult, XdrWrite};
use bytes::BufMut;

/// RPC program number of NFS.
pub const PROGRAM: u32 = 100_003;
/// The NFS protocol version of this codec.
pub const VERSION: u32 = 4;
/// NFSPROC4_NULL.
pub const PROC_NULL: u32 = 0;
/// NFSPROC4_COMPOUND.
pub const PROC_COMPOUND: u32 = 1;
/// OP_ILLEGAL: the operation number of the result of an unknown operation.
pub const OP_ILLEGAL: u32 = 10044;

/// A COMPOUND's header: tag, minor version and the number of operations that follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompoundHeader {
    pub tag: Vec<u8>,
    pub minorversion: u32,
    pub nops: u32,
}

impl CompoundHeader {
    /// Decodes the header; the operations stay in `dec`.
    pub fn decode(dec: &mut Decoder<'_>) -> XdrResult<CompoundHeader> {
        Ok(CompoundHeader {
            tag: dec.opaque_vec(OPAQUE_LIMIT)?,
            minorversion: dec.u32()?,
            nops: dec.u32()?,
        })
    }

    /// Encodes the header (client side); the operations follow.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.tag);
        out.put_xdr_u32(self.minorversion);
        out.put_xdr_u32(self.nops);
    }
}

/// Writes a COMPOUND4res: the status of the last operation run, the tag, and `nres`
/// results already encoded in `results`.
pub fn encode_compound_res<B: BufMut>(
    out: &mut B,
    status: Nfs4Status,
    tag: &[u8],
    nres: u32,
    results: &[u8],
) {
    status.encode(out);
    out.put_xdr_opaque(tag);
    out.put_xdr_u32(nres);
    out.put_slice(results);
}

/// Why an operation could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpDecodeError {
    /// Not an operation number of NFSv4.x: answered as OP_ILLEGAL.
    Illegal(u32),
    /// An operation of the protocol this server does not implement.
    NotSupp(u32),
    /// The arguments do not decode (NFS4ERR_BADXDR).
    Xdr(u32, XdrError),
}

/// One operation of a COMPOUND with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op4 {
    Access(u32),
    Close(CloseArgs),
    Commit(CommitArgs),
    Create(CreateArgs),
    Delegreturn(Stateid4),
    Getattr(Bitmap4),
    Getfh,
    Link(Component4),
    Lock(LockArgs),
    Lockt(LocktArgs),
    Locku(LockuArgs),
    Lookup(Component4),
    Lookupp,
    Nverify(Fattr4),
    Open(Box<OpenArgs>),
    OpenDowngrade(OpenDowngradeArgs),
    Putfh(Fh4),
    Putpubfh,
    Putrootfh,
    Read(ReadArgs),
    Readdir(ReaddirArgs),
    Readlink,
    Remove(Component4),
    Rename(RenameArgs),
    Restorefh,
    Savefh,
    Secinfo(Component4),
    Setattr(SetattrArgs),
    Verify(Fattr4),
    Write(WriteArgs),
    BindConnToSession(BindConnArgs),
    BackchannelCtl(BackchannelCtlArgs),
    ExchangeId(Box<ExchangeIdArgs>),
    CreateSession(Box<CreateSessionArgs>),
    DestroySession(SessionId4),
    FreeStateid(Stateid4),
    SecinfoNoName(u32),
    Sequence(SequenceArgs),
    TestStateid(TestStateidArgs),
    DestroyClientid(u64),
    ReclaimComplete(bool),
    OpenConfirm(OpenConfirmArgs),
    Renew(u64),
    SetClientId(Box<SetClientIdArgs>),
    SetClientIdConfirm(SetClientIdConfirmArgs),
    ReleaseLockowner(StateOwner4),
    Allocate(SpaceArgs),
    Copy(Box<CopyArgs>),
    Deallocate(SpaceArgs),
    ReadPlus(ReadPlusArgs),
    Seek(SeekArgs),
    Clone(CloneArgs),
    Getxattr(Component4),
    Setxattr(SetxattrArgs),
    Listxattrs(ListxattrsArgs),
    Removexattr(Component4),
}

impl Op4 {
    /// Whether the operation exists in minor version `minor` (RFC 7530 section 16,
    /// RFC 8881 section 18: 4.1 removed five 4.0 operations and added 40-58; RFC 7862
    /// section 11, RFC 8276: 4.2 added 59 and up).
    pub fn in_minor_version(&self, minor: u32) -> bool {
        in_minor_version(self.opnum(), minor)
    }
}

/// Whether operation number `n` exists in minor version `minor`.
pub fn in_minor_version(n: u32, minor: u32) -> bool {
    let v40_only = matches!(n, 20 | 30 | 35 | 36 | 39);
    match minor {
        0 => n < 40,
        1 => !v40_only && n < 59,
        _ => !v40_only,
    }
}

/// Operation numbers of NFSv4.0-4.2 that this server does not implement.
fn known_unsupported(n: u32) -> bool {
    matches!(n, 7 | 19 | 46..=51 | 54 | 56 | 61 | 63..=67 | 70)
}

macro_rules! ops {
    ($( $num:literal => $variant:ident $( ( $ty:ty ) )? ),* $(,)?) => {
        impl Op4 {
            /// The operation's name (metrics labels, logs).
            pub fn name(&self) -> &'static str {
                match self {
                    $( Op4::$variant $( (ops!(@ignore $ty)) )? => stringify!($variant), )*
                }
            }

            /// The operation number.
            pub fn opnum(&self) -> u32 {
                match self {
                    $( Op4::$variant $( (ops!(@ignore $ty)) )? => $num, )*
                }
            }

            /// Decodes one operation: its number, then its arguments.
            pub fn decode(dec: &mut Decoder<'_>) -> Result<Op4, OpDecodeError> {
                let n = dec.u32().map_err(|e| OpDecodeError::Xdr(OP_ILLEGAL, e))?;
                let op = match n {
                    $( $num => ops!(@dec dec, n, $variant $( , $ty )?), )*
                    _ if known_unsupported(n) => return Err(OpDecodeError::NotSupp(n)),
                    _ => return Err(OpDecodeError::Illegal(n)),
                };
                Ok(op)
            }
        }

        impl XdrEncode for Op4 {
            fn encode<B: BufMut>(&self, out: &mut B) {
                out.put_xdr_u32(self.opnum());
                match self {
                    $( ops!(@pat $variant v $( , $ty )?) => { ops!(@enc out, v $( , $ty )?) } )*
                }
            }
        }
    };
    (@ignore $ty:ty) => { _ };
    (@dec $dec:ident, $n:ident, $variant:ident) => { Op4::$variant };
    (@dec $dec:ident, $n:ident, $variant:ident, $ty:ty) => {
        Op4::$variant(<$ty>::decode($dec).map_err(|e| OpDecodeError::Xdr($n, e))?)
    };
    (@pat $variant:ident $v:ident) => { Op4::$variant };
    (@pat $variant:ident $v:ident, $ty:ty) => { Op4::$variant($v) };
    (@enc $out:ident, $v:ident) => { () };
    (@enc $out:ident, $v:ident, $ty:ty) => { $v.encode($out) };
}

ops! {
    3 => Access(u32),
    4 => Close(CloseArgs),
    5 => Commit(CommitArgs),
    6 => Create(CreateArgs),
    8 => Delegreturn(Stateid4),
    9 => Getattr(Bitmap4),
    10 => Getfh,
    11 => Link(Component4),
    12 => Lock(LockArgs),
    13 => Lockt(LocktArgs),
    14 => Locku(LockuArgs),
    15 => Lookup(Component4),
    16 => Lookupp,
    17 => Nverify(Fattr4),
    18 => Open(Box<OpenArgs>),
    21 => OpenDowngrade(OpenDowngradeArgs),
    22 => Putfh(Fh4),
    23 => Putpubfh,
    24 => Putrootfh,
    25 => Read(ReadArgs),
    26 => Readdir(ReaddirArgs),
    27 => Readlink,
    28 => Remove(Component4),
    29 => Rename(RenameArgs),
    31 => Restorefh,
    32 => Savefh,
    33 => Secinfo(Component4),
    34 => Setattr(SetattrArgs),
    37 => Verify(Fattr4),
    38 => Write(WriteArgs),
    40 => BackchannelCtl(BackchannelCtlArgs),
    41 => BindConnToSession(BindConnArgs),
    42 => ExchangeId(Box<ExchangeIdArgs>),
    43 => CreateSession(Box<CreateSessionArgs>),
    44 => DestroySession(SessionId4),
    45 => FreeStateid(Stateid4),
    52 => SecinfoNoName(u32),
    53 => Sequence(SequenceArgs),
    55 => TestStateid(TestStateidArgs),
    57 => DestroyClientid(u64),
    58 => ReclaimComplete(bool),
    20 => OpenConfirm(OpenConfirmArgs),
    30 => Renew(u64),
    35 => SetClientId(Box<SetClientIdArgs>),
    36 => SetClientIdConfirm(SetClientIdConfirmArgs),
    39 => ReleaseLockowner(StateOwner4),
    59 => Allocate(SpaceArgs),
    60 => Copy(Box<CopyArgs>),
    62 => Deallocate(SpaceArgs),
    68 => ReadPlus(ReadPlusArgs),
    69 => Seek(SeekArgs),
    71 => Clone(CloneArgs),
    72 => Getxattr(Component4),
    73 => Setxattr(SetxattrArgs),
    74 => Listxattrs(ListxattrsArgs),
    75 => Removexattr(Component4),
}

/// Whether a COMPOUND's reply belongs in the duplicate request cache: an NFSv4.0
/// COMPOUND (4.1 and 4.2 replay from their session slots) with an operation that
/// changes state (RFC 7530 section 9.1.7 asks for replay of those) and without one
/// whose reply is bulk data (READ, READDIR), so the cache never holds large replies.
/// What does not decode is not cached.
pub fn v40_wants_replay_cache(args: &bytes::Bytes) -> bool {
    let mut d = Decoder::from_bytes(args);
    let Ok(h) = CompoundHeader::decode(&mut d) else {
        return false;
    };
    if h.minorversion != 0 {
        return false;
    }
    let mut changes = false;
    for _ in 0..h.nops {
        let Ok(op) = Op4::decode(&mut d) else {
            return false;
        };
        match op {
            Op4::Read(_) | Op4::Readdir(_) => return false,
            Op4::Open(_)
            | Op4::OpenConfirm(_)
            | Op4::OpenDowngrade(_)
            | Op4::Close(_)
            | Op4::Create(_)
            | Op4::Remove(_)
            | Op4::Rename(_)
            | Op4::Link(_)
            | Op4::Setattr(_)
            | Op4::Lock(_)
            | Op4::Locku(_)
            | Op4::SetClientId(_)
            | Op4::SetClientIdConfirm(_)
            | Op4::ReleaseLockowner(_) => changes = true,
            _ => {}
        }
    }
    changes
}

/// Encodes a whole COMPOUND4args (client side, tests).
pub fn encode_compound(tag: &[u8], minorversion: u32, ops: &[Op4]) -> Vec<u8> {
    let mut out = Vec::new();
    CompoundHeader {
        tag: tag.to_vec(),
        minorversion,
        nops: ops.len() as u32,
    }
    .encode(&mut out);
    for op in ops {
        op.encode(&mut out);
    }
    out
}

/// One decoded result of a COMPOUND4res (client side): operation number, status and
/// the undecoded rest is left in the decoder for the caller.
pub fn decode_res_head(dec: &mut Decoder<'_>) -> XdrResult<(u32, Nfs4Status)> {
    let op = dec.u32()?;
    let st = dec.u32()?;
    let st = Nfs4Status::from_u32(st).ok_or(XdrError::BadDiscriminant {
        what: "nfsstat4",
        value: st,
    })?;
    Ok((op, st))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfs4::types::Opaque4;
    use bytes::Bytes;

    fn sample_ops() -> Vec<Op4> {
        vec![
            Op4::Sequence(SequenceArgs {
                sessionid: [1; 16],
                sequenceid: 1,
                slotid: 0,
                highest_slotid: 0,
                cachethis: true,
            }),
            Op4::Putrootfh,
            Op4::Lookup(Opaque4(b"export".to_vec())),
            Op4::Getfh,
            Op4::Getattr(Bitmap4::from_bits(&[1, 3, 4])),
            Op4::Read(ReadArgs {
                stateid: Stateid4::ANONYMOUS,
                offset: 0,
                count: 10,
            }),
            Op4::DestroyClientid(7),
            Op4::ReclaimComplete(false),
        ]
    }

    #[test]
    fn compound_round_trip() {
        let ops = sample_ops();
        let b = encode_compound(b"t", 1, &ops);
        let mut d = Decoder::new(&b);
        let h = CompoundHeader::decode(&mut d).unwrap();
        assert_eq!(
            (h.tag.as_slice(), h.minorversion, h.nops),
            (&b"t"[..], 1, 8)
        );
        for want in &ops {
            assert_eq!(&Op4::decode(&mut d).unwrap(), want);
        }
        assert!(d.is_empty());
    }

    #[test]
    fn only_v40_state_changes_without_bulk_replies_are_cached() {
        let b = |minor, ops: &[Op4]| Bytes::from(encode_compound(b"", minor, ops));
        let rm = Op4::Remove(Opaque4(b"f".to_vec()));
        let read = Op4::Read(ReadArgs {
            stateid: Stateid4::ANONYMOUS,
            offset: 0,
            count: 1,
        });
        assert!(v40_wants_replay_cache(&b(0, &[Op4::Putrootfh, rm.clone()])));
        assert!(!v40_wants_replay_cache(&b(
            1,
            &[Op4::Putrootfh, rm.clone()]
        )));
        assert!(!v40_wants_replay_cache(&b(
            0,
            &[Op4::Putrootfh, Op4::Getfh]
        )));
        assert!(!v40_wants_replay_cache(&b(0, &[rm, read])));
        assert!(!v40_wants_replay_cache(&Bytes::from_static(&[0, 0, 0])));
    }

    /// 4.2's operations (59 and up) are not 4.1's nor 4.0's; 4.1's are not 4.0's.
    #[test]
    fn operations_belong_to_their_minor_versions() {
        let get = Op4::Getxattr(Opaque4(b"k".to_vec()));
        let list = Op4::Listxattrs(self::xattr::ListxattrsArgs {
            cookie: 0,
            maxcount: 100,
        });
        for op in [&get, &list] {
            assert_eq!(
                [0, 1, 2].map(|m| op.in_minor_version(m)),
                [false, false, true]
            );
        }
        let seq = &sample_ops()[0];
        assert_eq!(
            [0, 1, 2].map(|m| seq.in_minor_version(m)),
            [false, true, true]
        );
        assert_eq!(
            [0, 1, 2].map(|m| Op4::Renew(1).in_minor_version(m)),
            [true, false, false]
        );
        assert_eq!(
            [0, 1, 2].map(|m| Op4::Getfh.in_minor_version(m)),
            [true, true, true]
        );
        assert_eq!((get.opnum(), get.name()), (72, "Getxattr"));
        let b = encode_compound(b"", 2, &[get.clone(), list.clone()]);
        let mut d = Decoder::new(&b);
        CompoundHeader::decode(&mut d).unwrap();
        assert_eq!(Op4::decode(&mut d).unwrap(), get);
        assert_eq!(Op4::decode(&mut d).unwrap(), list);
    }

    /// `nfs_opnum4` as the RFCs number it (RFC 7530; RFC 8881 and its XDR, RFC 5662;
    /// RFC 7863, the XDR of RFC 7862; RFC 8276): each number decodes to the
    /// operation of that name (NOTSUPP for those not implemented) and encodes back as
    /// that number, so a swap our encoder and decoder agree on still fails here.
    #[test]
    fn op_wire_numbers_are_the_rfcs() {
        const RFC: &str = "
            ACCESS 3 CLOSE 4 COMMIT 5 CREATE 6 DELEGPURGE 7 DELEGRETURN 8 GETATTR 9 GETFH 10
            LINK 11 LOCK 12 LOCKT 13 LOCKU 14 LOOKUP 15 LOOKUPP 16 NVERIFY 17 OPEN 18
            OPENATTR 19 OPEN_CONFIRM 20 OPEN_DOWNGRADE 21 PUTFH 22 PUTPUBFH 23 PUTROOTFH 24
            READ 25 READDIR 26 READLINK 27 REMOVE 28 RENAME 29 RENEW 30 RESTOREFH 31
            SAVEFH 32 SECINFO 33 SETATTR 34 SETCLIENTID 35 SETCLIENTID_CONFIRM 36 VERIFY 37
            WRITE 38 RELEASE_LOCKOWNER 39 BACKCHANNEL_CTL 40 BIND_CONN_TO_SESSION 41
            EXCHANGE_ID 42 CREATE_SESSION 43 DESTROY_SESSION 44 FREE_STATEID 45
            GET_DIR_DELEGATION 46 GETDEVICEINFO 47 GETDEVICELIST 48 LAYOUTCOMMIT 49
            LAYOUTGET 50 LAYOUTRETURN 51 SECINFO_NO_NAME 52 SEQUENCE 53 SET_SSV 54
            TEST_STATEID 55 WANT_DELEGATION 56 DESTROY_CLIENTID 57 RECLAIM_COMPLETE 58
            ALLOCATE 59 COPY 60 COPY_NOTIFY 61 DEALLOCATE 62 IO_ADVISE 63 LAYOUTERROR 64
            LAYOUTSTATS 65 OFFLOAD_CANCEL 66 OFFLOAD_STATUS 67 READ_PLUS 68 SEEK 69
            WRITE_SAME 70 CLONE 71 GETXATTR 72 SETXATTR 73 LISTXATTRS 74 REMOVEXATTR 75";
        let words: Vec<&str> = RFC.split_whitespace().collect();
        let mut implemented = 0;
        for (i, pair) in words.chunks(2).enumerate() {
            let (name, n) = (pair[0], pair[1].parse::<u32>().unwrap());
            assert_eq!(n, i as u32 + 3, "the RFCs number 3 to 75 without a gap");
            let mut raw = n.to_be_bytes().to_vec();
            if name == "CREATE" {
                raw.extend_from_slice(&2u32.to_be_bytes()); // NF4DIR: zero is no type
            }
            raw.extend_from_slice(&[0; 256]);
            match Op4::decode(&mut Decoder::new(&raw)) {
                Ok(op) => {
                    let want = name.replace('_', "").to_lowercase();
                    assert_eq!(op.name().to_lowercase(), want, "OP_{name} = {n}");
                    assert_eq!(op.opnum(), n, "OP_{name}");
                    assert_eq!(op.to_xdr()[..4], n.to_be_bytes(), "OP_{name}");
                    implemented += 1;
                }
                Err(e) => assert_eq!(e, OpDecodeError::NotSupp(n), "OP_{name} = {n}"),
            }
        }
        assert_eq!(
            implemented, 56,
            "every Op4 variant is one of the RFCs' operations"
        );
        assert_eq!(OP_ILLEGAL, 10044);
        for n in [0, 1, 2, 76, OP_ILLEGAL] {
            let raw = n.to_be_bytes();
            let e = Op4::decode(&mut Decoder::new(&raw));
            assert_eq!(e, Err(OpDecodeError::Illegal(n)));
        }
        assert_eq!(
            (PROGRAM, VERSION, PROC_NULL, PROC_COMPOUND),
            (100_003, 4, 0, 1)
        );
    }

    #[test]
    fn unknown_unsupported_and_truncated_ops_fail_cleanly() {
        let mut v = Vec::new();
        v.put_xdr_u32(9999);
        assert_eq!(
            Op4::decode(&mut Decoder::new(&v)),
            Err(OpDecodeError::Illegal(9999))
        );
        let mut v = Vec::new();
        v.put_xdr_u32(50); // LAYOUTGET
        assert_eq!(
            Op4::decode(&mut Decoder::new(&v)),
            Err(OpDecodeError::NotSupp(50))
        );
        let full = Op4::Lookup(Opaque4(b"abc".to_vec())).to_xdr();
        for n in 0..full.len() {
            assert!(matches!(
                Op4::decode(&mut Decoder::new(&full[..n])),
                Err(OpDecodeError::Xdr(..))
            ));
        }
    }
}
