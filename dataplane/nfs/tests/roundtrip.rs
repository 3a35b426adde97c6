//! Round trips and golden encodings for every NFSv3 (RFC 1813 section 3.3) and MOUNT v3
//! (RFC 1813 appendix I) procedure, plus targeted malformed-input checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use bytes::Bytes;
use dittofs_nfs::mount3::{self, MountArgs, MountProc, MountRes};
use dittofs_nfs::nfs3::*;
use dittofs_nfs::rpc::{Auth, OpaqueAuth, RpcCall};
use dittofs_nfs::xdr::{Decoder, XdrDecode, XdrEncode, XdrError, XdrWrite};

use common::*;

#[test]
fn every_nfs3_args_round_trips() {
    let mut seen = HashSet::new();
    for a in nfs3_args() {
        let p = a.proc_num();
        seen.insert(p);
        let bytes = a.to_xdr();
        assert_eq!(bytes.len() % 4, 0, "{p:?} not 4-aligned");
        let mut dec = Decoder::new(&bytes);
        let back = Nfs3Args::decode(p, &mut dec).unwrap();
        assert_eq!(back, a);
        assert!(dec.is_empty(), "{p:?} left bytes");
        // Same through the zero-copy decoder.
        let b = Bytes::from(bytes);
        let back = Nfs3Args::decode(p, &mut Decoder::from_bytes(&b)).unwrap();
        assert_eq!(back, a);
    }
    assert_eq!(seen.len(), 22, "all 22 procedures have argument samples");
}

#[test]
fn every_nfs3_res_round_trips() {
    let mut ok = HashSet::new();
    let mut fail = HashSet::new();
    for r in nfs3_res() {
        let p = r.proc_num();
        if r.status() == NfsStat3::Ok {
            ok.insert(p);
        } else {
            fail.insert(p);
        }
        let bytes = r.to_xdr();
        assert_eq!(bytes.len() % 4, 0);
        let mut dec = Decoder::new(&bytes);
        let back = Nfs3Res::decode(p, &mut dec).unwrap();
        assert_eq!(back, r);
        assert!(dec.is_empty(), "{p:?} left bytes");
    }
    assert_eq!(ok.len(), 22);
    assert_eq!(
        fail.len(),
        21,
        "every procedure but NULL has a resfail sample"
    );
}

#[test]
fn every_mount_message_round_trips() {
    let mut seen = HashSet::new();
    for a in mount_args() {
        seen.insert(a.proc_num());
        let bytes = a.to_xdr();
        let mut dec = Decoder::new(&bytes);
        assert_eq!(MountArgs::decode(a.proc_num(), &mut dec).unwrap(), a);
        assert!(dec.is_empty());
    }
    assert_eq!(seen.len(), 6);
    let mut seen = HashSet::new();
    for r in mount_res() {
        seen.insert(r.proc_num());
        let bytes = r.to_xdr();
        let mut dec = Decoder::new(&bytes);
        assert_eq!(MountRes::decode(r.proc_num(), &mut dec).unwrap(), r);
        assert!(dec.is_empty());
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(MountProc::ALL.len(), 6);
    assert_eq!(Nfs3Proc::ALL.len(), 22);
}

#[test]
fn nfsstat3_values_match_rfc() {
    let expect: &[(NfsStat3, u32)] = &[
        (NfsStat3::Ok, 0),
        (NfsStat3::Perm, 1),
        (NfsStat3::NoEnt, 2),
        (NfsStat3::Io, 5),
        (NfsStat3::NxIo, 6),
        (NfsStat3::Acces, 13),
        (NfsStat3::Exist, 17),
        (NfsStat3::XDev, 18),
        (NfsStat3::NoDev, 19),
        (NfsStat3::NotDir, 20),
        (NfsStat3::IsDir, 21),
        (NfsStat3::Inval, 22),
        (NfsStat3::FBig, 27),
        (NfsStat3::NoSpc, 28),
        (NfsStat3::RoFs, 30),
        (NfsStat3::MLink, 31),
        (NfsStat3::NameTooLong, 63),
        (NfsStat3::NotEmpty, 66),
        (NfsStat3::DQuot, 69),
        (NfsStat3::Stale, 70),
        (NfsStat3::Remote, 71),
        (NfsStat3::BadHandle, 10001),
        (NfsStat3::NotSync, 10002),
        (NfsStat3::BadCookie, 10003),
        (NfsStat3::NotSupp, 10004),
        (NfsStat3::TooSmall, 10005),
        (NfsStat3::ServerFault, 10006),
        (NfsStat3::BadType, 10007),
        (NfsStat3::Jukebox, 10008),
    ];
    assert_eq!(NfsStat3::ALL.len(), expect.len());
    for (s, v) in expect {
        assert_eq!(s.as_u32(), *v);
        assert_eq!(NfsStat3::from_u32(*v), Some(*s));
    }
    assert_eq!(NfsStat3::from_u32(3), None);
}

#[test]
fn golden_getattr_args_and_fattr3() {
    let a = GetattrArgs {
        object: NfsFh3(vec![0xAB, 0xCD, 0xEF]),
    };
    assert_eq!(a.to_xdr(), [0, 0, 0, 3, 0xAB, 0xCD, 0xEF, 0]);
    let f = fattr(Ftype3::Reg).to_xdr();
    assert_eq!(f.len(), FATTR3_XDR_LEN);
    assert_eq!(&f[..4], &[0, 0, 0, 1]); // NF3REG
    assert_eq!(&f[20..28], &[0, 0, 0, 1, 0, 0, 0, 1]); // size 0x1_0000_0001
}

#[test]
fn golden_sattr3_and_set_time() {
    // sattr3 with nothing set: six FALSE / DONT_CHANGE words.
    assert_eq!(Sattr3::default().to_xdr(), [0u8; 24]);
    let s = Sattr3 {
        mode: Some(0o644),
        atime: SetTime::ServerTime,
        mtime: SetTime::ClientTime(t(1, 2)),
        ..Sattr3::default()
    };
    let words: Vec<u32> = s
        .to_xdr()
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(words, [1, 0o644, 0, 0, 0, 1, 2, 1, 2]);
}

#[test]
fn golden_write_args() {
    let w = WriteArgs {
        file: NfsFh3(vec![9; 4]),
        offset: 0x0102_0304_0506_0708,
        count: 3,
        stable: StableHow::FileSync,
        data: Bytes::from_static(b"xyz"),
    };
    let expect: Vec<u8> = [
        &[0, 0, 0, 4, 9, 9, 9, 9][..],
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &[0, 0, 0, 3],
        &[0, 0, 0, 2],
        &[0, 0, 0, 3, b'x', b'y', b'z', 0],
    ]
    .concat();
    assert_eq!(w.to_xdr(), expect);
}

#[test]
fn write_data_is_zero_copy() {
    let w = WriteArgs {
        file: fh(1, 8),
        offset: 0,
        count: 10,
        stable: StableHow::Unstable,
        data: Bytes::from_static(b"0123456789"),
    };
    let buf = Bytes::from(w.to_xdr());
    let got = WriteArgs::decode(&mut Decoder::from_bytes(&buf)).unwrap();
    let off = got.data.as_ptr() as usize - buf.as_ptr() as usize;
    assert_eq!(off, 4 + 8 + 8 + 4 + 4 + 4);
}

#[test]
fn read_res_head_plus_payload_equals_full_encoding() {
    for len in 0..8usize {
        let r = ReadResOk {
            file_attributes: Some(fattr(Ftype3::Reg)),
            count: len as u32,
            eof: false,
            data: Bytes::from(vec![7u8; len]),
        };
        let mut split = Vec::new();
        r.encode_head(&mut split);
        split.extend_from_slice(&r.data);
        split.extend_from_slice(r.padding());
        assert_eq!(split, r.to_xdr());
        assert_eq!(r.xdr_len(), split.len());
    }
}

#[test]
fn readdir_builder_respects_count() {
    let count = 300u32;
    let mut b = ReaddirBuilder::new(Some(fattr(Ftype3::Dir)), [1; 8], count);
    let mut i = 0u64;
    loop {
        let e = Entry3 {
            fileid: i + 1,
            name: Filename3(format!("file-{i}").into_bytes()),
            cookie: i + 1,
        };
        if !b.try_push(e) {
            break;
        }
        i += 1;
    }
    assert!(!b.is_empty());
    let predicted = b.encoded_len();
    let res: ReaddirRes = Res3::Ok(b.finish(false));
    let bytes = res.to_xdr();
    assert_eq!(bytes.len(), predicted);
    assert!(bytes.len() <= count as usize);
    // One more entry would not have fit.
    let res2: ReaddirRes = ReaddirRes::from_xdr(&bytes).unwrap();
    assert_eq!(res2, res);

    // A count too small for anything.
    let mut tiny = ReaddirBuilder::new(None, [0; 8], 16);
    assert!(!tiny.try_push(Entry3 {
        fileid: 1,
        name: Filename3::from("a"),
        cookie: 1
    }));
    assert!(tiny.is_empty());
}

#[test]
fn readdirplus_builder_respects_both_limits() {
    let entry = |i: u64| Entryplus3 {
        fileid: i + 1,
        name: Filename3(format!("e{i}").into_bytes()),
        cookie: i + 1,
        name_attributes: Some(fattr(Ftype3::Reg)),
        name_handle: Some(fh(i as u8, 32)),
    };
    // maxcount-bound.
    let maxcount = 1000u32;
    let mut b = ReaddirplusBuilder::new(None, [0; 8], 1 << 20, maxcount);
    let mut i = 0;
    while b.try_push(entry(i)) {
        i += 1;
    }
    assert!(i > 0);
    let predicted = b.encoded_len();
    let bytes = ReaddirplusRes::Ok(b.finish(true)).to_xdr();
    assert_eq!(bytes.len(), predicted);
    assert!(bytes.len() <= maxcount as usize);
    // dircount-bound: each entry's directory part is 4+8+(4+4)+8 = 28 bytes.
    let mut b = ReaddirplusBuilder::new(None, [0; 8], 28 * 3, 1 << 20);
    let mut n = 0;
    while b.try_push(entry(n)) {
        n += 1;
    }
    assert_eq!(n, 3);
    assert_eq!(b.dir_info_len(), 84);
}

#[test]
fn entry_sizes_match_encoding() {
    for r in nfs3_res() {
        match r {
            Nfs3Res::Readdir(Res3::Ok(ok)) => {
                for e in ok.entries {
                    assert_eq!(e.xdr_len(), 4 + e.to_xdr().len());
                }
            }
            Nfs3Res::Readdirplus(Res3::Ok(ok)) => {
                for e in ok.entries {
                    assert_eq!(e.xdr_len(), 4 + e.to_xdr().len());
                }
            }
            _ => {}
        }
    }
}

#[test]
fn bad_discriminants_are_errors() {
    // ftype3 0 and 8 inside fattr3.
    for bad in [0u32, 8] {
        let mut v = fattr(Ftype3::Reg).to_xdr();
        v[..4].copy_from_slice(&bad.to_be_bytes());
        assert_eq!(
            Fattr3::from_xdr(&v),
            Err(XdrError::BadDiscriminant {
                what: "ftype3",
                value: bad
            })
        );
    }
    // createmode3 = 3.
    let mut v = dirop("x").to_xdr();
    v.put_xdr_u32(3);
    assert!(matches!(
        CreateArgs::from_xdr(&v),
        Err(XdrError::BadDiscriminant {
            what: "createmode3",
            ..
        })
    ));
    // stable_how = 3.
    let mut v = fh(1, 4).to_xdr();
    v.put_xdr_u64(0);
    v.put_xdr_u32(0);
    v.put_xdr_u32(3);
    v.put_xdr_opaque(b"");
    assert!(matches!(
        WriteArgs::from_xdr(&v),
        Err(XdrError::BadDiscriminant {
            what: "stable_how",
            ..
        })
    ));
    // time_how = 3 in sattr3.
    let mut v = vec![0u8; 16];
    v.put_xdr_u32(3);
    assert!(matches!(
        Sattr3::from_xdr(&v),
        Err(XdrError::BadDiscriminant {
            what: "time_how",
            ..
        })
    ));
    // set_mode3 discriminant 2 (bool).
    assert_eq!(Sattr3::from_xdr(&[0, 0, 0, 2]), Err(XdrError::BadBool(2)));
    // Undefined nfsstat3 in a result.
    assert!(matches!(
        GetattrRes::from_xdr(&[0, 0, 0, 3]),
        Err(XdrError::BadDiscriminant {
            what: "nfsstat3",
            ..
        })
    ));
    // Undefined mountstat3.
    assert!(mount3::MntRes::from_xdr(&[0, 0, 0, 3]).is_err());
    // mknoddata3 with ftype 0.
    let mut v = dirop("x").to_xdr();
    v.put_xdr_u32(0);
    assert!(MknodArgs::from_xdr(&v).is_err());
}

#[test]
fn oversized_lengths_are_errors() {
    // File handle of 65 bytes.
    let mut v = Vec::new();
    v.put_xdr_opaque(&[0u8; 65]);
    assert_eq!(
        NfsFh3::from_xdr(&v),
        Err(XdrError::TooLong { len: 65, max: 64 })
    );
    // Name length 0xFFFFFFFF.
    let mut v = fh(1, 8).to_xdr();
    v.put_xdr_u32(u32::MAX);
    assert!(matches!(
        LookupArgs::from_xdr(&v),
        Err(XdrError::TooLong { .. })
    ));
    // Name just above the decode cap, fully present.
    let mut v = fh(1, 8).to_xdr();
    v.put_xdr_string(&vec![b'n'; MAX_NAME_DECODE + 1]);
    assert!(LookupArgs::from_xdr(&v).is_err());
    // A 255+ byte name below the cap decodes (NAME_MAX is the server's business).
    let mut v = fh(1, 8).to_xdr();
    v.put_xdr_string(&[b'n'; 300]);
    assert_eq!(LookupArgs::from_xdr(&v).unwrap().what.name.0.len(), 300);
    // WRITE data length beyond the input.
    let mut v = fh(1, 4).to_xdr();
    v.put_xdr_u64(0);
    v.put_xdr_u32(0xFFFF_FFFF);
    v.put_xdr_u32(0);
    v.put_xdr_u32(0xFFFF_FFFF);
    assert!(matches!(
        WriteArgs::from_xdr(&v),
        Err(XdrError::Truncated { .. })
    ));
}

#[test]
fn full_call_with_args() {
    let call = RpcCall {
        xid: 5,
        prog: PROGRAM,
        vers: VERSION,
        proc_num: Nfs3Proc::Lookup.as_u32(),
        cred: Auth::Sys {
            stamp: 1,
            machine: b"host".to_vec(),
            uid: 0,
            gid: 0,
            gids: vec![0],
        },
        verf: OpaqueAuth::none(),
    };
    let args = LookupArgs {
        what: dirop("name"),
    };
    let mut buf = Vec::new();
    call.encode(&mut buf);
    args.encode(&mut buf);
    let (got, rest) = RpcCall::decode(&buf).unwrap();
    assert_eq!(got, call);
    let p = Nfs3Proc::from_u32(got.proc_num).unwrap();
    assert_eq!(
        Nfs3Args::decode(p, &mut Decoder::new(rest)).unwrap(),
        Nfs3Args::Lookup(args)
    );
}

#[test]
fn fail_with_ok_status_is_encoded_as_serverfault() {
    let r: GetattrRes = Res3::Fail(NfsStat3::Ok, ());
    assert_eq!(r.to_xdr(), 10006u32.to_be_bytes());
    assert_eq!(
        mount3::MntRes::Err(mount3::MountStat3::Ok).to_xdr(),
        10006u32.to_be_bytes()
    );
}
