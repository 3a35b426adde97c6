//! Network Status Monitor protocol version 1: XDR types of program 100024 v1 (Open
//! Group XNFS, chapter 11 "Network Status Monitor Protocol"; XDR per RFC 4506).
//!
//! Invariants: names are bounded by [`SM_MAXSTRLEN`]; malformed or truncated input is
//! an [`crate::XdrError`] (GARBAGE_ARGS), never a panic; encoders and decoders are
//! inverses.

use bytes::BufMut;

use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrResult, XdrWrite, xdr_enum};

/// NSM program number.
pub const PROGRAM: u32 = 100_024;
/// The only NSM version.
pub const VERSION: u32 = 1;
/// Longest host name accepted (XNFS `SM_MAXSTRLEN`).
pub const SM_MAXSTRLEN: usize = 1024;

xdr_enum! {
    /// NSM v1 procedures.
    pub enum NsmProc ("sm_proc") {
        Null = 0,
        Stat = 1,
        Mon = 2,
        Unmon = 3,
        UnmonAll = 4,
        SimuCrash = 5,
        Notify = 6,
    }
}

/// `res` of `sm_stat_res`: 0 = `stat_succ`, 1 = `stat_fail`.
pub const STAT_SUCC: u32 = 0;
/// `stat_fail`.
pub const STAT_FAIL: u32 = 1;

fn name(dec: &mut Decoder<'_>) -> XdrResult<Vec<u8>> {
    Ok(dec.string(SM_MAXSTRLEN)?.to_vec())
}

/// `my_id`: the RPC procedure the monitor calls back when a host's state changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MyId {
    pub my_name: Vec<u8>,
    pub my_prog: u32,
    pub my_vers: u32,
    pub my_proc: u32,
}

impl XdrEncode for MyId {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_string(&self.my_name);
        out.put_xdr_u32(self.my_prog);
        out.put_xdr_u32(self.my_vers);
        out.put_xdr_u32(self.my_proc);
    }
}

impl XdrDecode for MyId {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(MyId {
            my_name: name(dec)?,
            my_prog: dec.u32()?,
            my_vers: dec.u32()?,
            my_proc: dec.u32()?,
        })
    }
}

/// `mon_id`: the host to monitor and who to tell.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonId {
    pub mon_name: Vec<u8>,
    pub my_id: MyId,
}

impl XdrEncode for MonId {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_string(&self.mon_name);
        self.my_id.encode(out);
    }
}

impl XdrDecode for MonId {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(MonId {
            mon_name: name(dec)?,
            my_id: MyId::decode(dec)?,
        })
    }
}

/// `mon` (SM_MON): a `mon_id` and 16 private bytes echoed in the callback.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mon {
    pub mon_id: MonId,
    pub priv_data: [u8; 16],
}

impl XdrEncode for Mon {
    fn encode<B: BufMut>(&self, out: &mut B) {
        self.mon_id.encode(out);
        out.put_xdr_opaque_fixed(&self.priv_data);
    }
}

impl XdrDecode for Mon {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Mon {
            mon_id: MonId::decode(dec)?,
            priv_data: dec.opaque_array::<16>()?,
        })
    }
}

/// `sm_stat_res` (SM_STAT, SM_MON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmStatRes {
    pub res_stat: u32,
    pub state: i32,
}

impl XdrEncode for SmStatRes {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_u32(self.res_stat);
        out.put_xdr_i32(self.state);
    }
}

impl XdrDecode for SmStatRes {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(SmStatRes {
            res_stat: dec.u32()?,
            state: dec.i32()?,
        })
    }
}

/// `stat_chge` (SM_NOTIFY): a host and its new state number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatChge {
    pub mon_name: Vec<u8>,
    pub state: i32,
}

impl XdrEncode for StatChge {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_string(&self.mon_name);
        out.put_xdr_i32(self.state);
    }
}

impl XdrDecode for StatChge {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(StatChge {
            mon_name: name(dec)?,
            state: dec.i32()?,
        })
    }
}

/// Reads the `sm_name` argument of SM_STAT.
pub fn decode_sm_name(dec: &mut Decoder<'_>) -> XdrResult<Vec<u8>> {
    name(dec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips() {
        let mon = Mon {
            mon_id: MonId {
                mon_name: b"server".to_vec(),
                my_id: MyId {
                    my_name: b"localhost".to_vec(),
                    my_prog: 100_021,
                    my_vers: 4,
                    my_proc: 16,
                },
            },
            priv_data: [7; 16],
        };
        let b = mon.to_xdr();
        assert_eq!(Mon::decode(&mut Decoder::new(&b)).unwrap(), mon);
        let s = StatChge {
            mon_name: b"h".to_vec(),
            state: 3,
        };
        assert_eq!(StatChge::decode(&mut Decoder::new(&s.to_xdr())).unwrap(), s);
        let r = SmStatRes {
            res_stat: STAT_SUCC,
            state: 5,
        };
        assert_eq!(
            SmStatRes::decode(&mut Decoder::new(&r.to_xdr())).unwrap(),
            r
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Mon::decode(&mut Decoder::new(&bytes));
            let _ = MonId::decode(&mut Decoder::new(&bytes));
            let _ = MyId::decode(&mut Decoder::new(&bytes));
            let _ = StatChge::decode(&mut Decoder::new(&bytes));
        }
    }
}
