//! The NFSv4.1 callback program's COMPOUND (RFC 8881 sections 16.2 and 20: program
//! `csa_cb_program`, version 1, procedure CB_COMPOUND): the operations this server sends,
//! CB_SEQUENCE (20.9), CB_RECALL (20.2) and CB_NOTIFY_LOCK (20.11), as a server encodes
//! them and a client (the tests) decodes them.
//!
//! Invariants: every list is decoded with a bound (at most [`MAX_CB_OPS`] operations,
//! [`MAX_REFERRING`] referring call lists and calls), handles and owners with the
//! protocol's; an operation this codec does not know is a decode error, never skipped.

use super::io::StateOwner4;
use super::types::{Fh4, List, Opaque4, SessionId4, Stateid4};
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrError, XdrResult, XdrWrite, xdr_struct};
use bytes::BufMut;

/// CB_COMPOUND's procedure number.
pub const CB_COMPOUND: u32 = 1;
/// OP_CB_RECALL.
pub const OP_CB_RECALL: u32 = 4;
/// OP_CB_SEQUENCE.
pub const OP_CB_SEQUENCE: u32 = 11;
/// OP_CB_NOTIFY_LOCK.
pub const OP_CB_NOTIFY_LOCK: u32 = 13;
/// The most operations of a CB_COMPOUND decoded.
pub const MAX_CB_OPS: usize = 16;
/// The most referring call lists (and calls per list) decoded.
pub const MAX_REFERRING: usize = 64;

xdr_struct! {
    /// `referring_call4`.
    pub struct ReferringCall4 {
        pub sequenceid: u32,
        pub slotid: u32,
    }
}

xdr_struct! {
    /// `referring_call_list4`.
    pub struct ReferringCallList4 {
        pub sessionid: SessionId4,
        pub calls: List<ReferringCall4, MAX_REFERRING>,
    }
}

xdr_struct! {
    /// `CB_SEQUENCE4args`.
    pub struct CbSequenceArgs {
        pub sessionid: SessionId4,
        pub sequenceid: u32,
        pub slotid: u32,
        pub highest_slotid: u32,
        pub cachethis: bool,
        pub referring_call_lists: List<ReferringCallList4, MAX_REFERRING>,
    }
}

xdr_struct! {
    /// `CB_RECALL4args`.
    pub struct CbRecallArgs {
        pub stateid: Stateid4,
        pub truncate: bool,
        pub fh: Fh4,
    }
}

xdr_struct! {
    /// `CB_NOTIFY_LOCK4args`: the lock of `lock_owner` on `fh` may be free now.
    pub struct CbNotifyLockArgs {
        pub fh: Fh4,
        pub lock_owner: StateOwner4,
    }
}

/// One callback operation with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CbOp {
    Sequence(CbSequenceArgs),
    Recall(CbRecallArgs),
    NotifyLock(CbNotifyLockArgs),
}

impl CbOp {
    /// The operation number.
    pub fn opnum(&self) -> u32 {
        match self {
            CbOp::Sequence(_) => OP_CB_SEQUENCE,
            CbOp::Recall(_) => OP_CB_RECALL,
            CbOp::NotifyLock(_) => OP_CB_NOTIFY_LOCK,
        }
    }
}

impl XdrEncode for CbOp {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_u32(self.opnum());
        match self {
            CbOp::Sequence(a) => a.encode(out),
            CbOp::Recall(a) => a.encode(out),
            CbOp::NotifyLock(a) => a.encode(out),
        }
    }
}

impl XdrDecode for CbOp {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(match dec.u32()? {
            OP_CB_SEQUENCE => CbOp::Sequence(CbSequenceArgs::decode(dec)?),
            OP_CB_RECALL => CbOp::Recall(CbRecallArgs::decode(dec)?),
            OP_CB_NOTIFY_LOCK => CbOp::NotifyLock(CbNotifyLockArgs::decode(dec)?),
            v => {
                return Err(XdrError::BadDiscriminant {
                    what: "nfs_cb_opnum4",
                    value: v,
                });
            }
        })
    }
}

xdr_struct! {
    /// `CB_COMPOUND4args`.
    pub struct CbCompoundArgs {
        pub tag: Opaque4,
        pub minorversion: u32,
        /// Unused in 4.1 (the session names the client).
        pub callback_ident: u32,
        pub ops: List<CbOp, MAX_CB_OPS>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compound(op: CbOp) -> CbCompoundArgs {
        let seq = CbSequenceArgs {
            sessionid: [9; 16],
            sequenceid: 3,
            slotid: 0,
            highest_slotid: 0,
            cachethis: false,
            referring_call_lists: List(vec![ReferringCallList4 {
                sessionid: [8; 16],
                calls: List(vec![ReferringCall4 {
                    sequenceid: 5,
                    slotid: 1,
                }]),
            }]),
        };
        CbCompoundArgs {
            tag: Opaque4(b"t".to_vec()),
            minorversion: 1,
            callback_ident: 0,
            ops: List(vec![CbOp::Sequence(seq), op]),
        }
    }

    fn roundtrip(args: &CbCompoundArgs) {
        let bytes = args.to_xdr();
        let mut d = Decoder::new(&bytes);
        assert_eq!(&CbCompoundArgs::decode(&mut d).unwrap(), args);
        assert_eq!(d.remaining(), 0);
        // every truncation fails cleanly
        for n in 0..bytes.len() {
            assert!(CbCompoundArgs::decode(&mut Decoder::new(&bytes[..n])).is_err());
        }
    }

    /// `nfs_cb_opnum4` as RFC 8881 numbers it (section 20 and its XDR; CB_RECALL is
    /// RFC 7530's too): each operation's first word on the wire, and back.
    #[test]
    fn callback_op_wire_numbers_are_the_rfcs() {
        let fh = Fh4(vec![1]);
        let seq = CbOp::Sequence(CbSequenceArgs {
            sessionid: [1; 16],
            sequenceid: 1,
            slotid: 0,
            highest_slotid: 0,
            cachethis: false,
            referring_call_lists: List(vec![]),
        });
        let recall = CbOp::Recall(CbRecallArgs {
            stateid: Stateid4::ANONYMOUS,
            truncate: false,
            fh: fh.clone(),
        });
        let notify = CbOp::NotifyLock(CbNotifyLockArgs {
            fh,
            lock_owner: StateOwner4 {
                clientid: 1,
                owner: Opaque4(b"o".to_vec()),
            },
        });
        // OP_CB_RECALL 4, OP_CB_SEQUENCE 11, OP_CB_NOTIFY_LOCK 13
        for (op, n) in [(recall, 4u32), (seq, 11), (notify, 13)] {
            let bytes = op.to_xdr();
            assert_eq!(bytes[..4], n.to_be_bytes(), "{op:?}");
            assert_eq!(op.opnum(), n);
            assert_eq!(CbOp::from_xdr(&bytes).unwrap(), op);
        }
        assert_eq!(CB_COMPOUND, 1);
    }

    #[test]
    fn callback_operations_roundtrip() {
        let notify = CbOp::NotifyLock(CbNotifyLockArgs {
            fh: Fh4(vec![1, 2, 3]),
            lock_owner: StateOwner4 {
                clientid: 0x1234_5678_9abc_def0,
                owner: Opaque4(b"lock-owner".to_vec()),
            },
        });
        roundtrip(&compound(notify.clone()));
        let recall = CbOp::Recall(CbRecallArgs {
            stateid: Stateid4 {
                seqid: 1,
                other: [4; 12],
            },
            truncate: false,
            fh: Fh4(vec![7; 25]),
        });
        roundtrip(&compound(recall));
        // CB_NOTIFY_LOCK's wire form: opnum 13, nfs_fh4, clientid, owner
        let bytes = notify.to_xdr();
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.u32().unwrap(), 13);
        assert_eq!(d.opaque(128).unwrap(), &[1, 2, 3]);
        assert_eq!(d.u64().unwrap(), 0x1234_5678_9abc_def0);
        assert_eq!(d.opaque(1024).unwrap(), b"lock-owner");
        // an operation this codec does not know is an error
        let mut unknown = Vec::new();
        unknown.put_xdr_u32(5);
        assert!(CbOp::decode(&mut Decoder::new(&unknown)).is_err());
    }
}
