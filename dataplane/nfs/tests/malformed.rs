//! Hostile input: every decoder (XDR per RFC 4506, RPC per RFC 5531, MOUNT and NFSv3 per
//! RFC 1813) fed random bytes, every truncation and random mutations of valid messages
//! must return a value (usually an error) and never panic or allocate wildly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use dittofs_nfs::mount3::{MountArgs, MountProc, MountRes};
use dittofs_nfs::nfs3::{Nfs3Args, Nfs3Proc, Nfs3Res};
use dittofs_nfs::rpc::{Auth, OpaqueAuth, RpcCall, RpcDecodeError, RpcReply};
use dittofs_nfs::xdr::{Decoder, XdrEncode};
use proptest::prelude::*;

use common::*;

/// Run every decoder of the crate over `buf`; re-encode whatever decodes.
fn decode_everything(buf: &[u8]) {
    let b = Bytes::copy_from_slice(buf);
    for &p in Nfs3Proc::ALL {
        if let Ok(a) = Nfs3Args::decode(p, &mut Decoder::new(buf)) {
            let _ = a.to_xdr();
        }
        let _ = Nfs3Args::decode(p, &mut Decoder::from_bytes(&b));
        if let Ok(r) = Nfs3Res::decode(p, &mut Decoder::new(buf)) {
            let _ = r.to_xdr();
        }
    }
    for &p in MountProc::ALL {
        let _ = MountArgs::decode(p, &mut Decoder::new(buf));
        let _ = MountRes::decode(p, &mut Decoder::new(buf));
    }
    let _ = RpcCall::decode(buf);
    let _ = RpcReply::decode(buf);
}

/// Encoded valid messages, tagged with how to decode them.
#[derive(Debug, Clone)]
enum Msg {
    Args(Nfs3Proc, Vec<u8>),
    Res(Nfs3Proc, Vec<u8>),
    MArgs(MountProc, Vec<u8>),
    MRes(MountProc, Vec<u8>),
    Call(Vec<u8>),
}

fn valid_messages() -> Vec<Msg> {
    let mut v = Vec::new();
    for a in nfs3_args() {
        v.push(Msg::Args(a.proc_num(), a.to_xdr()));
    }
    for r in nfs3_res() {
        v.push(Msg::Res(r.proc_num(), r.to_xdr()));
    }
    for a in mount_args() {
        v.push(Msg::MArgs(a.proc_num(), a.to_xdr()));
    }
    for r in mount_res() {
        v.push(Msg::MRes(r.proc_num(), r.to_xdr()));
    }
    v.push(Msg::Call(sample_call()));
    v
}

fn sample_call() -> Vec<u8> {
    let mut buf = Vec::new();
    RpcCall {
        xid: 77,
        prog: 100_003,
        vers: 3,
        proc_num: 3,
        cred: Auth::Sys {
            stamp: 3,
            machine: b"machine-name".to_vec(),
            uid: 1,
            gid: 2,
            gids: vec![3, 4, 5],
        },
        verf: OpaqueAuth::none(),
    }
    .encode(&mut buf);
    buf
}

/// Decode `buf` as the message kind of `m`; `Ok(true)` if it decoded.
fn decode_as(m: &Msg, buf: &[u8]) -> bool {
    match m {
        Msg::Args(p, _) => Nfs3Args::decode(*p, &mut Decoder::new(buf)).is_ok(),
        Msg::Res(p, _) => Nfs3Res::decode(*p, &mut Decoder::new(buf)).is_ok(),
        Msg::MArgs(p, _) => MountArgs::decode(*p, &mut Decoder::new(buf)).is_ok(),
        Msg::MRes(p, _) => MountRes::decode(*p, &mut Decoder::new(buf)).is_ok(),
        Msg::Call(_) => RpcCall::decode(buf).is_ok(),
    }
}

fn bytes_of(m: &Msg) -> &[u8] {
    match m {
        Msg::Args(_, b) | Msg::Res(_, b) | Msg::MArgs(_, b) | Msg::MRes(_, b) | Msg::Call(b) => b,
    }
}

#[test]
fn every_truncation_of_every_valid_message_is_an_error() {
    for m in valid_messages() {
        let full = bytes_of(&m);
        assert!(decode_as(&m, full), "{m:?} must decode");
        for cut in 0..full.len() {
            assert!(
                !decode_as(&m, &full[..cut]),
                "{m:?} truncated at {cut} decoded"
            );
            decode_everything(&full[..cut]);
        }
    }
}

#[test]
fn rpc_version_other_than_two_is_rejected() {
    for v in [0u32, 1, 3, u32::MAX] {
        let mut buf = sample_call();
        buf[8..12].copy_from_slice(&v.to_be_bytes());
        assert_eq!(
            RpcCall::decode(&buf),
            Err(RpcDecodeError::RpcMismatch {
                xid: 77,
                rpcvers: v
            })
        );
    }
}

#[test]
fn hostile_lengths_everywhere() {
    // Place 0xFFFFFFFF at every word position of every valid message.
    for m in valid_messages() {
        let full = bytes_of(&m);
        for w in (0..full.len()).step_by(4) {
            let mut buf = full.to_vec();
            buf[w..w + 4].copy_from_slice(&[0xFF; 4]);
            let _ = decode_as(&m, &buf);
            decode_everything(&buf);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&buf);
    }

    #[test]
    fn random_words_never_panic(words in proptest::collection::vec(
        prop_oneof![Just(0u32), Just(1), Just(2), Just(3), Just(0xFFFF_FFFF), Just(64), Just(65), any::<u32>()],
        0..64,
    )) {
        let buf: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        decode_everything(&buf);
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        idx in any::<prop::sample::Index>(),
        muts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let msgs = valid_messages();
        let m = idx.get(&msgs);
        let mut buf = bytes_of(m).to_vec();
        if !buf.is_empty() {
            for (pos, byte) in &muts {
                let i = pos.index(buf.len());
                buf[i] = *byte;
            }
        }
        if truncate {
            let n = cut.index(buf.len() + 1);
            buf.truncate(n);
        }
        let _ = decode_as(m, &buf);
        decode_everything(&buf);
    }

    #[test]
    fn re_encoding_is_stable_for_mutated_inputs(
        idx in any::<prop::sample::Index>(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        // Whatever a mutated message decodes to must re-encode and decode to itself.
        let all = nfs3_args();
        let a = idx.get(&all);
        let mut buf = a.to_xdr();
        if !buf.is_empty() {
            let i = pos.index(buf.len());
            buf[i] = byte;
        }
        if let Ok(got) = Nfs3Args::decode(a.proc_num(), &mut Decoder::new(&buf)) {
            let again = got.to_xdr();
            let back = Nfs3Args::decode(a.proc_num(), &mut Decoder::new(&again)).unwrap();
            prop_assert_eq!(back, got);
        }
    }
}
