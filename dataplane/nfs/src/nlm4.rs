//! Network Lock Manager protocol version 4: XDR types of program 100021 v4 (Open Group
//! "Protocols for Interworking: XNFS, Version 3W", chapter 10 "Network Lock Manager
//! Protocol", NLM v4 for NFSv3; XDR per RFC 4506).
//!
//! Invariants:
//! - decoding never panics and never allocates more than the input holds: `netobj`s
//!   are bounded by [`MAX_NETOBJ`] and strings (`caller_name`, `name`) by
//!   [`LM_MAXSTRLEN`]; anything longer or truncated is an [`XdrError`], which the
//!   service answers with GARBAGE_ARGS;
//! - offsets and lengths are unsigned 64-bit (`l_len` 0 = to end of file);
//! - encoders and decoders are exact inverses (round-trip tests below).

use bytes::BufMut;

use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrResult, XdrWrite, xdr_enum};

/// NLM program number.
pub const PROGRAM: u32 = 100_021;
/// The version served (NLM v4, the one NFSv3 clients use).
pub const VERSION: u32 = 4;
/// Longest `caller_name` / `name` accepted (XNFS `LM_MAXSTRLEN`).
pub const LM_MAXSTRLEN: usize = 1024;
/// Longest `netobj` accepted (cookies, owner handles, file handles).
pub const MAX_NETOBJ: usize = 1024;

xdr_enum! {
    /// NLM v4 procedures (XNFS chapter 10, "nlm4 procedures").
    pub enum NlmProc ("nlm4_proc") {
        Null = 0,
        Test = 1,
        Lock = 2,
        Cancel = 3,
        Unlock = 4,
        Granted = 5,
        TestMsg = 6,
        LockMsg = 7,
        CancelMsg = 8,
        UnlockMsg = 9,
        GrantedMsg = 10,
        TestRes = 11,
        LockRes = 12,
        CancelRes = 13,
        UnlockRes = 14,
        GrantedRes = 15,
        Share = 20,
        Unshare = 21,
        NmLock = 22,
        FreeAll = 23,
    }
}

xdr_enum! {
    /// `nlm4_stats`.
    pub enum Nlm4Stat ("nlm4_stats") {
        Granted = 0,
        Denied = 1,
        DeniedNoLocks = 2,
        Blocked = 3,
        DeniedGracePeriod = 4,
        Deadlck = 5,
        Rofs = 6,
        StaleFh = 7,
        Fbig = 8,
        Failed = 9,
    }
}

xdr_enum! {
    /// `fsh4_mode`: what other openers are denied (DOS share modes).
    pub enum Fsh4Mode ("fsh4_mode") {
        DenyNone = 0,
        DenyRead = 1,
        DenyWrite = 2,
        DenyRw = 3,
    }
}

xdr_enum! {
    /// `fsh4_access`: what this opener wants.
    pub enum Fsh4Access ("fsh4_access") {
        None = 0,
        Read = 1,
        Write = 2,
        Rw = 3,
    }
}

fn netobj(dec: &mut Decoder<'_>) -> XdrResult<Vec<u8>> {
    dec.opaque_vec(MAX_NETOBJ)
}

fn name(dec: &mut Decoder<'_>) -> XdrResult<Vec<u8>> {
    Ok(dec.string(LM_MAXSTRLEN)?.to_vec())
}

/// `nlm4_lock`: the lock a request is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nlm4Lock {
    pub caller_name: Vec<u8>,
    pub fh: Vec<u8>,
    pub oh: Vec<u8>,
    pub svid: i32,
    pub l_offset: u64,
    pub l_len: u64,
}

impl XdrEncode for Nlm4Lock {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_string(&self.caller_name);
        out.put_xdr_opaque(&self.fh);
        out.put_xdr_opaque(&self.oh);
        out.put_xdr_i32(self.svid);
        out.put_xdr_u64(self.l_offset);
        out.put_xdr_u64(self.l_len);
    }
}

impl XdrDecode for Nlm4Lock {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4Lock {
            caller_name: name(dec)?,
            fh: netobj(dec)?,
            oh: netobj(dec)?,
            svid: dec.i32()?,
            l_offset: dec.u64()?,
            l_len: dec.u64()?,
        })
    }
}

/// `nlm4_holder`: who holds a conflicting lock (TEST answers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nlm4Holder {
    pub exclusive: bool,
    pub svid: i32,
    pub oh: Vec<u8>,
    pub l_offset: u64,
    pub l_len: u64,
}

impl XdrEncode for Nlm4Holder {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_bool(self.exclusive);
        out.put_xdr_i32(self.svid);
        out.put_xdr_opaque(&self.oh);
        out.put_xdr_u64(self.l_offset);
        out.put_xdr_u64(self.l_len);
    }
}

impl XdrDecode for Nlm4Holder {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4Holder {
            exclusive: dec.bool()?,
            svid: dec.i32()?,
            oh: netobj(dec)?,
            l_offset: dec.u64()?,
            l_len: dec.u64()?,
        })
    }
}

/// `nlm4_testargs` (TEST, TEST_MSG; GRANTED and GRANTED_MSG too).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nlm4TestArgs {
    pub cookie: Vec<u8>,
    pub exclusive: bool,
    pub alock: Nlm4Lock,
}

impl XdrEncode for Nlm4TestArgs {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.cookie);
        out.put_xdr_bool(self.exclusive);
        self.alock.encode(out);
    }
}

impl XdrDecode for Nlm4TestArgs {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4TestArgs {
            cookie: netobj(dec)?,
            exclusive: dec.bool()?,
            alock: Nlm4Lock::decode(dec)?,
        })
    }
}

/// `nlm4_lockargs` (LOCK, LOCK_MSG, NM_LOCK).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nlm4LockArgs {
    pub cookie: Vec<u8>,
    pub block: bool,
    pub exclusive: bool,
    pub alock: Nlm4Lock,
    pub reclaim: bool,
    pub state: i32,
}

impl XdrEncode for Nlm4LockArgs {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.cookie);
        out.put_xdr_bool(self.block);
        out.put_xdr_bool(self.exclusive);
        self.alock.encode(out);
        out.put_xdr_bool(self.reclaim);
        out.put_xdr_i32(self.state);
    }
}

impl XdrDecode for Nlm4LockArgs {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4LockArgs {
            cookie: netobj(dec)?,
            block: dec.bool()?,
            exclusive: dec.bool()?,
            alock: Nlm4Lock::decode(dec)?,
            reclaim: dec.bool()?,
            state: dec.i32()?,
        })
    }
}

/// `nlm4_cancargs` (CANCEL, CANCEL_MSG).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nlm4CancArgs {
    pub cookie: Vec<u8>,
    pub block: bool,
    pub exclusive: bool,
    pub alock: Nlm4Lock,
}

impl XdrEncode for Nlm4CancArgs {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.cookie);
        out.put_xdr_bool(self.block);
        out.put_xdr_bool(self.exclusive);
        self.alock.encode(out);
    }
}

impl XdrDecode for Nlm4CancArgs {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4CancArgs {
            cookie: netobj(dec)?,
            block: dec.bool()?,
            exclusive: dec.bool()?,
            alock: Nlm4Lock::decode(dec)?,
        })
    }
}

/// `nlm4_unlockargs` (UNLOCK, UNLOCK_MSG).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nlm4UnlockArgs {
    pub cookie: Vec<u8>,
    pub alock: Nlm4Lock,
}

impl XdrEncode for Nlm4UnlockArgs {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.cookie);
        self.alock.encode(out);
    }
}

impl XdrDecode for Nlm4UnlockArgs {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4UnlockArgs {
            cookie: netobj(dec)?,
            alock: Nlm4Lock::decode(dec)?,
        })
    }
}

/// `nlm4_share`: a DOS share reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nlm4Share {
    pub caller_name: Vec<u8>,
    pub fh: Vec<u8>,
    pub oh: Vec<u8>,
    pub mode: Fsh4Mode,
    pub access: Fsh4Access,
}

impl XdrEncode for Nlm4Share {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_string(&self.caller_name);
        out.put_xdr_opaque(&self.fh);
        out.put_xdr_opaque(&self.oh);
        self.mode.encode(out);
        self.access.encode(out);
    }
}

impl XdrDecode for Nlm4Share {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4Share {
            caller_name: name(dec)?,
            fh: netobj(dec)?,
            oh: netobj(dec)?,
            mode: Fsh4Mode::decode(dec)?,
            access: Fsh4Access::decode(dec)?,
        })
    }
}

/// `nlm4_shareargs` (SHARE, UNSHARE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nlm4ShareArgs {
    pub cookie: Vec<u8>,
    pub share: Nlm4Share,
    pub reclaim: bool,
}

impl XdrEncode for Nlm4ShareArgs {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.cookie);
        self.share.encode(out);
        out.put_xdr_bool(self.reclaim);
    }
}

impl XdrDecode for Nlm4ShareArgs {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4ShareArgs {
            cookie: netobj(dec)?,
            share: Nlm4Share::decode(dec)?,
            reclaim: dec.bool()?,
        })
    }
}

/// `nlm4_notify` (FREE_ALL): a host that rebooted, and its new state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nlm4Notify {
    pub name: Vec<u8>,
    pub state: i32,
}

impl XdrEncode for Nlm4Notify {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_string(&self.name);
        out.put_xdr_i32(self.state);
    }
}

impl XdrDecode for Nlm4Notify {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4Notify {
            name: name(dec)?,
            state: dec.i32()?,
        })
    }
}

/// `nlm4_res`: the answer of LOCK, CANCEL, UNLOCK, GRANTED (and their _RES calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nlm4Res {
    pub cookie: Vec<u8>,
    pub stat: Nlm4Stat,
}

impl XdrEncode for Nlm4Res {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.cookie);
        self.stat.encode(out);
    }
}

impl XdrDecode for Nlm4Res {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4Res {
            cookie: netobj(dec)?,
            stat: Nlm4Stat::decode(dec)?,
        })
    }
}

/// `nlm4_testres`: the answer of TEST; a DENIED answer names the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nlm4TestRes {
    pub cookie: Vec<u8>,
    pub stat: Nlm4Stat,
    /// Present exactly when `stat` is [`Nlm4Stat::Denied`].
    pub holder: Option<Nlm4Holder>,
}

impl XdrEncode for Nlm4TestRes {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.cookie);
        self.stat.encode(out);
        if self.stat == Nlm4Stat::Denied {
            self.holder.clone().unwrap_or_default().encode(out);
        }
    }
}

impl XdrDecode for Nlm4TestRes {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        let cookie = netobj(dec)?;
        let stat = Nlm4Stat::decode(dec)?;
        let holder = match stat {
            Nlm4Stat::Denied => Some(Nlm4Holder::decode(dec)?),
            _ => None,
        };
        Ok(Nlm4TestRes {
            cookie,
            stat,
            holder,
        })
    }
}

/// `nlm4_shareres`: the answer of SHARE and UNSHARE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nlm4ShareRes {
    pub cookie: Vec<u8>,
    pub stat: Nlm4Stat,
    pub sequence: i32,
}

impl XdrEncode for Nlm4ShareRes {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.cookie);
        self.stat.encode(out);
        out.put_xdr_i32(self.sequence);
    }
}

impl XdrDecode for Nlm4ShareRes {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Nlm4ShareRes {
            cookie: netobj(dec)?,
            stat: Nlm4Stat::decode(dec)?,
            sequence: dec.i32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lock() -> Nlm4Lock {
        Nlm4Lock {
            caller_name: b"client-a".to_vec(),
            fh: vec![1, 2, 3, 4, 5],
            oh: b"owner".to_vec(),
            svid: -7,
            l_offset: 1 << 40,
            l_len: 0,
        }
    }

    fn round_trip<T: XdrEncode + XdrDecode + PartialEq + std::fmt::Debug>(v: T) {
        let bytes = v.to_xdr();
        assert_eq!(bytes.len() % 4, 0);
        let mut dec = Decoder::new(&bytes);
        assert_eq!(T::decode(&mut dec).unwrap(), v);
        assert!(dec.is_empty());
    }

    #[test]
    fn every_type_round_trips() {
        round_trip(lock());
        round_trip(Nlm4TestArgs {
            cookie: vec![9; 3],
            exclusive: true,
            alock: lock(),
        });
        round_trip(Nlm4LockArgs {
            cookie: vec![1],
            block: true,
            exclusive: false,
            alock: lock(),
            reclaim: true,
            state: 3,
        });
        round_trip(Nlm4CancArgs {
            cookie: vec![],
            block: true,
            exclusive: true,
            alock: lock(),
        });
        round_trip(Nlm4UnlockArgs {
            cookie: vec![2; 8],
            alock: lock(),
        });
        round_trip(Nlm4ShareArgs {
            cookie: vec![],
            share: Nlm4Share {
                caller_name: b"h".to_vec(),
                fh: vec![0; 64],
                oh: vec![1],
                mode: Fsh4Mode::DenyWrite,
                access: Fsh4Access::Rw,
            },
            reclaim: false,
        });
        round_trip(Nlm4Notify {
            name: b"host".to_vec(),
            state: 5,
        });
        round_trip(Nlm4Res {
            cookie: vec![4],
            stat: Nlm4Stat::Blocked,
        });
        round_trip(Nlm4ShareRes {
            cookie: vec![],
            stat: Nlm4Stat::Granted,
            sequence: 0,
        });
        for (stat, holder) in [
            (Nlm4Stat::Granted, None),
            (
                Nlm4Stat::Denied,
                Some(Nlm4Holder {
                    exclusive: true,
                    svid: 42,
                    oh: b"o".to_vec(),
                    l_offset: 10,
                    l_len: 20,
                }),
            ),
        ] {
            round_trip(Nlm4TestRes {
                cookie: vec![7],
                stat,
                holder,
            });
        }
    }

    #[test]
    fn golden_unlock_args() {
        let a = Nlm4UnlockArgs {
            cookie: vec![0xAB],
            alock: Nlm4Lock {
                caller_name: b"c".to_vec(),
                fh: vec![],
                oh: vec![],
                svid: 1,
                l_offset: 2,
                l_len: 3,
            },
        };
        let want: Vec<u8> = [
            &[0, 0, 0, 1, 0xAB, 0, 0, 0][..],
            &[0, 0, 0, 1, b'c', 0, 0, 0],
            &[0, 0, 0, 0, 0, 0, 0, 0],
            &[0, 0, 0, 1],
            &[0, 0, 0, 0, 0, 0, 0, 2],
            &[0, 0, 0, 0, 0, 0, 0, 3],
        ]
        .concat();
        assert_eq!(a.to_xdr(), want);
    }

    #[test]
    fn oversized_and_truncated_inputs_are_errors() {
        // a netobj cookie of 1025 bytes
        let mut v = vec![0, 0, 4, 1];
        v.extend(std::iter::repeat_n(0u8, 1028));
        assert!(Nlm4UnlockArgs::decode(&mut Decoder::new(&v)).is_err());
        // a caller_name claiming 4 GiB
        let mut v = vec![0, 0, 0, 0];
        v.extend([0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(Nlm4UnlockArgs::decode(&mut Decoder::new(&v)).is_err());
        // every truncation of a valid LOCK
        let full = Nlm4LockArgs {
            alock: lock(),
            ..Default::default()
        }
        .to_xdr();
        for n in 0..full.len() {
            assert!(Nlm4LockArgs::decode(&mut Decoder::new(&full[..n])).is_err());
        }
        // an unknown nlm4_stats
        let v = [0, 0, 0, 0, 0, 0, 0, 99];
        assert!(Nlm4Res::decode(&mut Decoder::new(&v)).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut d = Decoder::new(&bytes);
            let _ = Nlm4LockArgs::decode(&mut d);
            let _ = Nlm4TestArgs::decode(&mut Decoder::new(&bytes));
            let _ = Nlm4CancArgs::decode(&mut Decoder::new(&bytes));
            let _ = Nlm4UnlockArgs::decode(&mut Decoder::new(&bytes));
            let _ = Nlm4ShareArgs::decode(&mut Decoder::new(&bytes));
            let _ = Nlm4Notify::decode(&mut Decoder::new(&bytes));
            let _ = Nlm4TestRes::decode(&mut Decoder::new(&bytes));
            let _ = Nlm4ShareRes::decode(&mut Decoder::new(&bytes));
        }
    }
}
