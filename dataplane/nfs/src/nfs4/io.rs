//! Open and I/O operations (RFC 8881 sections 18.2, 18.3, 18.8, 18.10-18.12, 18.16,
//! 18.18, 18.22, 18.32, 18.38, 18.48): OPEN, OPEN_DOWNGRADE, CLOSE, READ, WRITE,
//! COMMIT, LOCK, LOCKT, LOCKU, DELEGRETURN, TEST_STATEID, FREE_STATEID; NFSv4.0's
//! OPEN_CONFIRM (RFC 7530 section 16.18).
//!
//! OPEN decodes every claim type; the server serves CLAIM_NULL and CLAIM_FH and refuses
//! the others. READ results carry their data as [`Bytes`] so the reply can avoid a copy.

use super::fattr::Fattr4;
use super::ns::ChangeInfo4;
use super::types::{Bitmap4, Component4, List, OPAQUE_LIMIT, Opaque4, Stateid4, Verifier4};
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrError, XdrResult, XdrWrite, xdr_struct};
use bytes::{BufMut, Bytes};

/// OPEN4_SHARE_ACCESS_READ / _WRITE / _BOTH (the low bits of `share_access`).
pub const SHARE_ACCESS_READ: u32 = 1;
pub const SHARE_ACCESS_WRITE: u32 = 2;
pub const SHARE_ACCESS_BOTH: u32 = 3;
/// OPEN4_RESULT_CONFIRM: the open-owner must OPEN_CONFIRM (NFSv4.0).
pub const OPEN4_RESULT_CONFIRM: u32 = 2;
/// OPEN4_RESULT_LOCKTYPE_POSIX.
pub const OPEN4_RESULT_LOCKTYPE_POSIX: u32 = 4;
/// OPEN4_RESULT_MAY_NOTIFY_LOCK: the server may send CB_NOTIFY_LOCK for blocked locks
/// on the file (NFSv4.1 and up).
pub const OPEN4_RESULT_MAY_NOTIFY_LOCK: u32 = 0x20;
/// `nfs_lock_type4`: READ_LT, WRITE_LT, READW_LT (blocking), WRITEW_LT (blocking).
pub const READ_LT: u32 = 1;
pub const WRITE_LT: u32 = 2;
pub const READW_LT: u32 = 3;
pub const WRITEW_LT: u32 = 4;
/// The most TEST_STATEID checks at once.
pub const MAX_TEST_STATEIDS: usize = 1024;

xdr_struct! {
    /// `open_owner4` / `lock_owner4`.
    pub struct StateOwner4 {
        pub clientid: u64,
        pub owner: Opaque4,
    }
}

/// `createhow4`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateHow4 {
    Unchecked(Fattr4),
    Guarded(Fattr4),
    Exclusive(Verifier4),
    Exclusive41(Verifier4, Fattr4),
}

impl XdrEncode for CreateHow4 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            CreateHow4::Unchecked(f) => {
                out.put_xdr_u32(0);
                f.encode(out);
            }
            CreateHow4::Guarded(f) => {
                out.put_xdr_u32(1);
                f.encode(out);
            }
            CreateHow4::Exclusive(v) => {
                out.put_xdr_u32(2);
                v.encode(out);
            }
            CreateHow4::Exclusive41(v, f) => {
                out.put_xdr_u32(3);
                v.encode(out);
                f.encode(out);
            }
        }
    }
}

impl XdrDecode for CreateHow4 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(match dec.u32()? {
            0 => CreateHow4::Unchecked(Fattr4::decode(dec)?),
            1 => CreateHow4::Guarded(Fattr4::decode(dec)?),
            2 => CreateHow4::Exclusive(Verifier4::decode(dec)?),
            3 => CreateHow4::Exclusive41(Verifier4::decode(dec)?, Fattr4::decode(dec)?),
            v => {
                return Err(XdrError::BadDiscriminant {
                    what: "createmode4",
                    value: v,
                });
            }
        })
    }
}

/// `open_claim4`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenClaim4 {
    Null(Component4),
    Previous(u32),
    DelegateCur(Stateid4, Component4),
    DelegatePrev(Component4),
    Fh,
    DelegPrevFh,
    DelegCurFh(Stateid4),
}

impl XdrEncode for OpenClaim4 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            OpenClaim4::Null(c) => {
                out.put_xdr_u32(0);
                c.encode(out);
            }
            OpenClaim4::Previous(t) => {
                out.put_xdr_u32(1);
                out.put_xdr_u32(*t);
            }
            OpenClaim4::DelegateCur(s, c) => {
                out.put_xdr_u32(2);
                s.encode(out);
                c.encode(out);
            }
            OpenClaim4::DelegatePrev(c) => {
                out.put_xdr_u32(3);
                c.encode(out);
            }
            OpenClaim4::Fh => out.put_xdr_u32(4),
            OpenClaim4::DelegCurFh(s) => {
                out.put_xdr_u32(5);
                s.encode(out);
            }
            OpenClaim4::DelegPrevFh => out.put_xdr_u32(6),
        }
    }
}

impl XdrDecode for OpenClaim4 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(match dec.u32()? {
            0 => OpenClaim4::Null(Component4::decode(dec)?),
            1 => OpenClaim4::Previous(dec.u32()?),
            2 => OpenClaim4::DelegateCur(Stateid4::decode(dec)?, Component4::decode(dec)?),
            3 => OpenClaim4::DelegatePrev(Component4::decode(dec)?),
            4 => OpenClaim4::Fh,
            5 => OpenClaim4::DelegCurFh(Stateid4::decode(dec)?),
            6 => OpenClaim4::DelegPrevFh,
            v => {
                return Err(XdrError::BadDiscriminant {
                    what: "open_claim_type4",
                    value: v,
                });
            }
        })
    }
}

/// `openflag4`: no create, or create how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenHow4(pub Option<CreateHow4>);

impl XdrEncode for OpenHow4 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match &self.0 {
            None => out.put_xdr_u32(0),
            Some(h) => {
                out.put_xdr_u32(1);
                h.encode(out);
            }
        }
    }
}

impl XdrDecode for OpenHow4 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        match dec.u32()? {
            0 => Ok(OpenHow4(None)),
            1 => Ok(OpenHow4(Some(CreateHow4::decode(dec)?))),
            v => Err(XdrError::BadDiscriminant {
                what: "opentype4",
                value: v,
            }),
        }
    }
}

xdr_struct! {
    /// OPEN4args.
    pub struct OpenArgs {
        pub seqid: u32,
        pub share_access: u32,
        pub share_deny: u32,
        pub owner: StateOwner4,
        pub openhow: OpenHow4,
        pub claim: OpenClaim4,
    }
}

/// OPEN4_SHARE_ACCESS_WANT_DELEG_MASK: the delegation wishes in `share_access` (RFC
/// 8881 section 18.16.3), and the values this server honours.
pub const SHARE_ACCESS_WANT_DELEG_MASK: u32 = 0xff00;
pub const SHARE_ACCESS_WANT_READ_DELEG: u32 = 0x0100;
pub const SHARE_ACCESS_WANT_NO_DELEG: u32 = 0x0400;
pub const SHARE_ACCESS_WANT_CANCEL: u32 = 0x0500;

/// `open_delegation4` as this server grants it: none, a read delegation or a write
/// delegation (its `nfs_space_limit4` NFS_LIMIT_SIZE with `space_limit`). The
/// `nfsace4` permissions are all zero: the client checks access with ACCESS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenDelegation4 {
    None,
    Read {
        stateid: Stateid4,
        recall: bool,
    },
    Write {
        stateid: Stateid4,
        recall: bool,
        space_limit: u64,
    },
}

/// limitby4 NFS_LIMIT_SIZE / NFS_LIMIT_BLOCKS.
const NFS_LIMIT_SIZE: u32 = 1;
const NFS_LIMIT_BLOCKS: u32 = 2;

/// An `nfsace4` granting nothing: type ALLOWED, flag 0, access mask 0, who "".
fn put_empty_ace<B: BufMut>(out: &mut B) {
    for _ in 0..4 {
        out.put_xdr_u32(0);
    }
}

impl XdrEncode for OpenDelegation4 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            OpenDelegation4::None => out.put_xdr_u32(0),
            OpenDelegation4::Read { stateid, recall } => {
                out.put_xdr_u32(1);
                stateid.encode(out);
                out.put_xdr_bool(*recall);
                put_empty_ace(out);
            }
            OpenDelegation4::Write {
                stateid,
                recall,
                space_limit,
            } => {
                out.put_xdr_u32(2);
                stateid.encode(out);
                out.put_xdr_bool(*recall);
                out.put_xdr_u32(NFS_LIMIT_SIZE);
                out.put_xdr_u64(*space_limit);
                put_empty_ace(out);
            }
        }
    }
}

/// Skips an `nfsace4`.
fn skip_ace(dec: &mut Decoder<'_>) -> XdrResult<()> {
    for _ in 0..3 {
        dec.u32()?;
    }
    dec.opaque(OPAQUE_LIMIT)?;
    Ok(())
}

/// An `nfs_space_limit4` as a size in bytes (blocks times bytes per block).
fn space_limit(dec: &mut Decoder<'_>) -> XdrResult<u64> {
    match dec.u32()? {
        NFS_LIMIT_SIZE => dec.u64(),
        NFS_LIMIT_BLOCKS => {
            let (blocks, per_block) = (dec.u32()?, dec.u32()?);
            Ok(u64::from(blocks) * u64::from(per_block))
        }
        v => Err(XdrError::BadDiscriminant {
            what: "limitby4",
            value: v,
        }),
    }
}

impl XdrDecode for OpenDelegation4 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        match dec.u32()? {
            0 => Ok(OpenDelegation4::None),
            1 => {
                let stateid = Stateid4::decode(dec)?;
                let recall = dec.bool()?;
                skip_ace(dec)?;
                Ok(OpenDelegation4::Read { stateid, recall })
            }
            2 => {
                let stateid = Stateid4::decode(dec)?;
                let recall = dec.bool()?;
                let space_limit = space_limit(dec)?;
                skip_ace(dec)?;
                Ok(OpenDelegation4::Write {
                    stateid,
                    recall,
                    space_limit,
                })
            }
            v => Err(XdrError::BadDiscriminant {
                what: "open_delegation_type4",
                value: v,
            }),
        }
    }
}

xdr_struct! {
    /// OPEN4resok.
    pub struct OpenResOk {
        pub stateid: Stateid4,
        pub cinfo: ChangeInfo4,
        pub rflags: u32,
        pub attrset: Bitmap4,
        pub delegation: OpenDelegation4,
    }
}

xdr_struct! {
    /// CLOSE4args.
    pub struct CloseArgs {
        pub seqid: u32,
        pub stateid: Stateid4,
    }
}

xdr_struct! {
    /// OPEN_CONFIRM4args (NFSv4.0).
    pub struct OpenConfirmArgs {
        pub open_stateid: Stateid4,
        pub seqid: u32,
    }
}

xdr_struct! {
    /// OPEN_DOWNGRADE4args.
    pub struct OpenDowngradeArgs {
        pub stateid: Stateid4,
        pub seqid: u32,
        pub share_access: u32,
        pub share_deny: u32,
    }
}

xdr_struct! {
    /// READ4args.
    pub struct ReadArgs {
        pub stateid: Stateid4,
        pub offset: u64,
        pub count: u32,
    }
}

/// READ4resok.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResOk {
    pub eof: bool,
    pub data: Bytes,
}

impl XdrEncode for ReadResOk {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_bool(self.eof);
        out.put_xdr_opaque(&self.data);
    }
}

impl XdrDecode for ReadResOk {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(ReadResOk {
            eof: dec.bool()?,
            data: dec.opaque_bytes(usize::MAX)?,
        })
    }
}

/// WRITE4args; `data` is a zero-copy slice of the request when decoded from `Bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteArgs {
    pub stateid: Stateid4,
    pub offset: u64,
    pub stable: u32,
    pub data: Bytes,
}

impl XdrEncode for WriteArgs {
    fn encode<B: BufMut>(&self, out: &mut B) {
        self.stateid.encode(out);
        out.put_xdr_u64(self.offset);
        out.put_xdr_u32(self.stable);
        out.put_xdr_opaque(&self.data);
    }
}

impl XdrDecode for WriteArgs {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(WriteArgs {
            stateid: Stateid4::decode(dec)?,
            offset: dec.u64()?,
            stable: dec.u32()?,
            data: dec.opaque_bytes(usize::MAX)?,
        })
    }
}

xdr_struct! {
    /// WRITE4resok.
    pub struct WriteResOk {
        pub count: u32,
        pub committed: u32,
        pub writeverf: Verifier4,
    }
}

xdr_struct! {
    /// COMMIT4args.
    pub struct CommitArgs {
        pub offset: u64,
        pub count: u32,
    }
}

/// `locker4`: a new lock-owner (from an open) or an existing lock stateid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locker4 {
    New {
        open_seqid: u32,
        open_stateid: Stateid4,
        lock_seqid: u32,
        lock_owner: StateOwner4,
    },
    Existing {
        lock_stateid: Stateid4,
        lock_seqid: u32,
    },
}

impl XdrEncode for Locker4 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            Locker4::New {
                open_seqid,
                open_stateid,
                lock_seqid,
                lock_owner,
            } => {
                out.put_xdr_bool(true);
                out.put_xdr_u32(*open_seqid);
                open_stateid.encode(out);
                out.put_xdr_u32(*lock_seqid);
                lock_owner.encode(out);
            }
            Locker4::Existing {
                lock_stateid,
                lock_seqid,
            } => {
                out.put_xdr_bool(false);
                lock_stateid.encode(out);
                out.put_xdr_u32(*lock_seqid);
            }
        }
    }
}

impl XdrDecode for Locker4 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        if dec.bool()? {
            Ok(Locker4::New {
                open_seqid: dec.u32()?,
                open_stateid: Stateid4::decode(dec)?,
                lock_seqid: dec.u32()?,
                lock_owner: StateOwner4::decode(dec)?,
            })
        } else {
            Ok(Locker4::Existing {
                lock_stateid: Stateid4::decode(dec)?,
                lock_seqid: dec.u32()?,
            })
        }
    }
}

xdr_struct! {
    /// LOCK4args (`locktype`: READ_LT 1, WRITE_LT 2, READW_LT 3, WRITEW_LT 4).
    pub struct LockArgs {
        pub locktype: u32,
        pub reclaim: bool,
        pub offset: u64,
        pub length: u64,
        pub locker: Locker4,
    }
}

xdr_struct! {
    /// LOCK4denied: the conflicting lock.
    pub struct LockDenied {
        pub offset: u64,
        pub length: u64,
        pub locktype: u32,
        pub owner: StateOwner4,
    }
}

xdr_struct! {
    /// LOCKT4args.
    pub struct LocktArgs {
        pub locktype: u32,
        pub offset: u64,
        pub length: u64,
        pub owner: StateOwner4,
    }
}

xdr_struct! {
    /// LOCKU4args.
    pub struct LockuArgs {
        pub locktype: u32,
        pub seqid: u32,
        pub lock_stateid: Stateid4,
        pub offset: u64,
        pub length: u64,
    }
}

/// TEST_STATEID4args.
pub type TestStateidArgs = List<Stateid4, MAX_TEST_STATEIDS>;
/// TEST_STATEID4resok: one status per stateid.
pub type TestStateidResOk = List<u32, MAX_TEST_STATEIDS>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfs4::fattr::SetAttrs4;

    #[test]
    fn open_args_round_trip_every_claim() {
        let attrs = SetAttrs4 {
            mode: Some(0o644),
            ..Default::default()
        }
        .to_fattr();
        let claims = [
            OpenClaim4::Null(Component4::from_name(b"f")),
            OpenClaim4::Previous(0),
            OpenClaim4::DelegateCur(Stateid4::ANONYMOUS, Component4::from_name(b"g")),
            OpenClaim4::DelegatePrev(Component4::from_name(b"h")),
            OpenClaim4::Fh,
            OpenClaim4::DelegPrevFh,
            OpenClaim4::DelegCurFh(Stateid4::BYPASS),
        ];
        let hows = [
            None,
            Some(CreateHow4::Unchecked(attrs.clone())),
            Some(CreateHow4::Guarded(attrs.clone())),
            Some(CreateHow4::Exclusive([7; 8])),
            Some(CreateHow4::Exclusive41([8; 8], attrs)),
        ];
        for claim in claims {
            for how in hows.iter().cloned() {
                let a = OpenArgs {
                    seqid: 0,
                    share_access: SHARE_ACCESS_BOTH,
                    share_deny: 0,
                    owner: StateOwner4 {
                        clientid: 9,
                        owner: Opaque4(b"o".to_vec()),
                    },
                    openhow: OpenHow4(how),
                    claim: claim.clone(),
                };
                assert_eq!(OpenArgs::from_xdr(&a.to_xdr()).unwrap(), a);
            }
        }
    }

    /// The claim numbers on the wire are RFC 8881's (section 18.16.1, open_claim_type4),
    /// not only our encoder's and decoder's agreement: a swapped pair round-trips.
    #[test]
    fn open_claim_wire_numbers_are_the_rfcs() {
        let sid = Stateid4::BYPASS;
        let name = Component4::from_name(b"f");
        let wire = [
            (OpenClaim4::Null(name.clone()), 0u32),
            (OpenClaim4::Previous(0), 1),
            (OpenClaim4::DelegateCur(sid.clone(), name.clone()), 2),
            (OpenClaim4::DelegatePrev(name), 3),
            (OpenClaim4::Fh, 4),
            (OpenClaim4::DelegCurFh(sid.clone()), 5),
            (OpenClaim4::DelegPrevFh, 6),
        ];
        for (claim, number) in wire {
            let bytes = claim.to_xdr();
            assert_eq!(bytes[..4], number.to_be_bytes(), "{claim:?}");
        }
        // CLAIM_DELEG_CUR_FH as the Linux client sends it: 5, then the stateid
        let mut raw = 5u32.to_be_bytes().to_vec();
        raw.extend_from_slice(&sid.to_xdr());
        assert_eq!(
            OpenClaim4::from_xdr(&raw).unwrap(),
            OpenClaim4::DelegCurFh(sid)
        );
    }

    /// `createmode4`, `opentype4` and `open_delegation_type4` on the wire, and the OPEN
    /// and LOCK constants, as RFC 8881 section 18.16 and its XDR number them (4.0's
    /// subset: RFC 7530).
    #[test]
    fn open_and_lock_wire_numbers_are_the_rfcs() {
        let f = crate::nfs4::fattr::SetAttrs4::default().to_fattr();
        let hows = [
            (CreateHow4::Unchecked(f.clone()), 0u32),
            (CreateHow4::Guarded(f.clone()), 1),
            (CreateHow4::Exclusive([1; 8]), 2),
            (CreateHow4::Exclusive41([1; 8], f), 3),
        ];
        for (how, n) in hows {
            assert_eq!(how.to_xdr()[..4], n.to_be_bytes(), "createmode4 {how:?}");
            let open = OpenHow4(Some(how)).to_xdr(); // OPEN4_CREATE 1, then the mode
            assert_eq!(open[..8], [1u32.to_be_bytes(), n.to_be_bytes()].concat());
        }
        assert_eq!(OpenHow4(None).to_xdr(), 0u32.to_be_bytes()); // OPEN4_NOCREATE
        let (stateid, recall) = (Stateid4::ANONYMOUS, false);
        let read = OpenDelegation4::Read {
            stateid: stateid.clone(),
            recall,
        };
        let space_limit = 0;
        let write = OpenDelegation4::Write {
            stateid,
            recall,
            space_limit,
        };
        for (d, n) in [(OpenDelegation4::None, 0u32), (read, 1), (write, 2)] {
            assert_eq!(d.to_xdr()[..4], n.to_be_bytes(), "{d:?}");
        }
        macro_rules! rfc {
            ($($ours:ident = $n:literal)*) => { $(assert_eq!($ours, $n, stringify!($ours));)* };
        }
        rfc!(
            SHARE_ACCESS_READ = 1 SHARE_ACCESS_WRITE = 2 SHARE_ACCESS_BOTH = 3
            SHARE_ACCESS_WANT_DELEG_MASK = 0xff00 SHARE_ACCESS_WANT_READ_DELEG = 0x100
            SHARE_ACCESS_WANT_NO_DELEG = 0x400 SHARE_ACCESS_WANT_CANCEL = 0x500
            OPEN4_RESULT_CONFIRM = 0x2 OPEN4_RESULT_LOCKTYPE_POSIX = 0x4
            OPEN4_RESULT_MAY_NOTIFY_LOCK = 0x20 NFS_LIMIT_SIZE = 1 NFS_LIMIT_BLOCKS = 2
            READ_LT = 1 WRITE_LT = 2 READW_LT = 3 WRITEW_LT = 4
        );
    }

    #[test]
    fn write_data_is_zero_copy_and_lock_args_round_trip() {
        let w = WriteArgs {
            stateid: Stateid4::ANONYMOUS,
            offset: 3,
            stable: 2,
            data: Bytes::from_static(b"hello"),
        };
        let b = Bytes::from(w.to_xdr());
        let mut d = Decoder::from_bytes(&b);
        let back = WriteArgs::decode(&mut d).unwrap();
        assert_eq!(back, w);
        let l = LockArgs {
            locktype: 2,
            reclaim: false,
            offset: 0,
            length: u64::MAX,
            locker: Locker4::New {
                open_seqid: 0,
                open_stateid: Stateid4::CURRENT,
                lock_seqid: 0,
                lock_owner: StateOwner4 {
                    clientid: 1,
                    owner: Opaque4(vec![1, 2]),
                },
            },
        };
        assert_eq!(LockArgs::from_xdr(&l.to_xdr()).unwrap(), l);
    }

    #[test]
    fn delegations_round_trip_with_their_space_limit() {
        let sid = Stateid4 {
            seqid: 1,
            other: [3; 12],
        };
        let ds = [
            OpenDelegation4::None,
            OpenDelegation4::Read {
                stateid: sid.clone(),
                recall: false,
            },
            OpenDelegation4::Write {
                stateid: sid,
                recall: true,
                space_limit: 1 << 40,
            },
        ];
        for d in ds {
            assert_eq!(OpenDelegation4::from_xdr(&d.to_xdr()).unwrap(), d);
        }
        // open_write_delegation4: type, stateid (16), recall, limitby NFS_LIMIT_SIZE,
        // filesize, then an empty nfsace4 (4 words)
        let w = OpenDelegation4::Write {
            stateid: Stateid4::ANONYMOUS,
            recall: false,
            space_limit: 5,
        };
        let b = w.to_xdr();
        assert_eq!(b.len(), 4 + 16 + 4 + 4 + 8 + 16);
        assert_eq!(&b[24..36], &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5]);
    }
}
