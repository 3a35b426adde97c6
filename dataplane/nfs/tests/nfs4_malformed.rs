//! Hostile input for the NFSv4 codec (RFC 8881): random bytes, every truncation and
//! random mutations of a valid COMPOUND holding every operation the server decodes must
//! decode to values or errors, never panic or allocate wildly; what decodes re-encodes
//! to the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use dittofs_nfs::nfs4::attr::SetattrArgs;
use dittofs_nfs::nfs4::dir::{ReaddirArgs, ReaddirResOk};
use dittofs_nfs::nfs4::fattr::{Fattr4, SetAttrs4};
use dittofs_nfs::nfs4::io::*;
use dittofs_nfs::nfs4::ns::{CreateArgs, CreateType4, RenameArgs};
use dittofs_nfs::nfs4::session::*;
use dittofs_nfs::nfs4::types::{Bitmap4, ChannelAttrs4, Fh4, List, Opaque4, RdmaIrd, Stateid4};
use dittofs_nfs::nfs4::v42::{CloneArgs, CopyArgs, Netloc4, ReadPlusArgs, SeekArgs, SpaceArgs};
use dittofs_nfs::nfs4::xattr::{ListxattrsArgs, SetxattrArgs, SetxattrOption4, XattrValue4};
use dittofs_nfs::nfs4::{CompoundHeader, Op4, encode_compound};
use dittofs_nfs::xdr::{Decoder, XdrDecode, XdrEncode};
use proptest::prelude::*;

fn name(s: &str) -> Opaque4 {
    Opaque4(s.as_bytes().to_vec())
}

fn attrs() -> Fattr4 {
    SetAttrs4 {
        mode: Some(0o600),
        size: Some(3),
        ..Default::default()
    }
    .to_fattr()
}

fn chan() -> ChannelAttrs4 {
    ChannelAttrs4 {
        headerpadsize: 0,
        maxrequestsize: 1,
        maxresponsesize: 2,
        maxresponsesize_cached: 3,
        maxoperations: 4,
        maxrequests: 5,
        rdma_ird: RdmaIrd(Some(6)),
    }
}

/// One of every operation the server decodes.
fn every_op() -> Vec<Op4> {
    let sid = Stateid4 {
        seqid: 2,
        other: [5; 12],
    };
    let owner = StateOwner4 {
        clientid: 1,
        owner: name("o"),
    };
    vec![
        Op4::Sequence(SequenceArgs {
            sessionid: [1; 16],
            sequenceid: 1,
            slotid: 0,
            highest_slotid: 0,
            cachethis: true,
        }),
        Op4::Access(0x3f),
        Op4::Close(CloseArgs {
            seqid: 0,
            stateid: sid.clone(),
        }),
        Op4::Commit(CommitArgs {
            offset: 0,
            count: 0,
        }),
        Op4::Create(CreateArgs {
            objtype: CreateType4::Link(name("target")),
            objname: name("l"),
            createattrs: attrs(),
        }),
        Op4::Delegreturn(sid.clone()),
        Op4::Getattr(Bitmap4::from_bits(&[1, 4, 33])),
        Op4::Getfh,
        Op4::Link(name("h")),
        Op4::Lock(LockArgs {
            locktype: 2,
            reclaim: false,
            offset: 0,
            length: 10,
            locker: Locker4::Existing {
                lock_stateid: sid.clone(),
                lock_seqid: 0,
            },
        }),
        Op4::Lockt(LocktArgs {
            locktype: 1,
            offset: 0,
            length: 1,
            owner: owner.clone(),
        }),
        Op4::Locku(LockuArgs {
            locktype: 1,
            seqid: 0,
            lock_stateid: sid.clone(),
            offset: 0,
            length: 1,
        }),
        Op4::Lookup(name("x")),
        Op4::Lookupp,
        Op4::Nverify(attrs()),
        Op4::Open(Box::new(OpenArgs {
            seqid: 0,
            share_access: 3,
            share_deny: 0,
            owner,
            openhow: OpenHow4(Some(CreateHow4::Exclusive41([9; 8], attrs()))),
            claim: OpenClaim4::Null(name("f")),
        })),
        Op4::OpenDowngrade(OpenDowngradeArgs {
            stateid: sid.clone(),
            seqid: 0,
            share_access: 1,
            share_deny: 0,
        }),
        Op4::Putfh(Fh4(vec![1; 25])),
        Op4::Putpubfh,
        Op4::Putrootfh,
        Op4::Read(ReadArgs {
            stateid: sid.clone(),
            offset: 1,
            count: 2,
        }),
        Op4::Readdir(ReaddirArgs {
            cookie: 0,
            cookieverf: [0; 8],
            dircount: 100,
            maxcount: 1000,
            attr_request: Bitmap4::from_bits(&[0, 1, 55]),
        }),
        Op4::Readlink,
        Op4::Remove(name("r")),
        Op4::Rename(RenameArgs {
            oldname: name("a"),
            newname: name("b"),
        }),
        Op4::Restorefh,
        Op4::Savefh,
        Op4::Secinfo(name("s")),
        Op4::Setattr(SetattrArgs {
            stateid: sid.clone(),
            attrs: attrs(),
        }),
        Op4::Verify(attrs()),
        Op4::Write(WriteArgs {
            stateid: sid.clone(),
            offset: 0,
            stable: 0,
            data: Bytes::from_static(b"data"),
        }),
        Op4::Allocate(SpaceArgs {
            stateid: sid.clone(),
            offset: 1,
            length: 2,
        }),
        Op4::Copy(Box::new(CopyArgs {
            src_stateid: sid.clone(),
            dst_stateid: sid.clone(),
            src_offset: 1,
            dst_offset: 2,
            count: 3,
            consecutive: true,
            synchronous: false,
            source_server: List(vec![Netloc4::Url(b"nfs://x".to_vec())]),
        })),
        Op4::Deallocate(SpaceArgs {
            stateid: sid.clone(),
            offset: 4,
            length: 5,
        }),
        Op4::ReadPlus(ReadPlusArgs {
            stateid: sid.clone(),
            offset: 6,
            count: 7,
        }),
        Op4::Seek(SeekArgs {
            stateid: sid.clone(),
            offset: 8,
            what: 1,
        }),
        Op4::Clone(CloneArgs {
            src_stateid: sid.clone(),
            dst_stateid: sid.clone(),
            src_offset: 9,
            dst_offset: 10,
            count: 11,
        }),
        Op4::BindConnToSession(BindConnArgs {
            sessionid: [2; 16],
            dir: 3,
            use_conn_in_rdma_mode: false,
        }),
        Op4::ExchangeId(Box::new(ExchangeIdArgs {
            clientowner: ClientOwner4 {
                verifier: [1; 8],
                ownerid: name("owner"),
            },
            flags: 1,
            state_protect: StateProtect4A::MachCred {
                enforce: Bitmap4::from_bits(&[3]),
                allow: Bitmap4::default(),
            },
            client_impl_id: List(vec![]),
        })),
        Op4::CreateSession(Box::new(CreateSessionArgs {
            clientid: 1,
            sequence: 1,
            flags: 0,
            fore_chan_attrs: chan(),
            back_chan_attrs: chan(),
            cb_program: 1,
            sec_parms: List(vec![CallbackSecParms4::Gss {
                service: 1,
                from_server: name("a"),
                from_client: name("b"),
            }]),
        })),
        Op4::DestroySession([3; 16]),
        Op4::FreeStateid(sid.clone()),
        Op4::SecinfoNoName(0),
        Op4::TestStateid(List(vec![sid.clone(), Stateid4::ANONYMOUS])),
        Op4::DestroyClientid(5),
        Op4::ReclaimComplete(true),
        Op4::Getxattr(name("user-key")),
        Op4::Setxattr(SetxattrArgs {
            option: SetxattrOption4::Create,
            key: name("k"),
            value: XattrValue4(b"value".to_vec()),
        }),
        Op4::Listxattrs(ListxattrsArgs {
            cookie: 2,
            maxcount: 4096,
        }),
        Op4::Removexattr(name("k")),
    ]
}

/// Decodes a COMPOUND as the server does: the header, then operations until one fails.
/// Returns the operations that decoded.
fn decode_compound(buf: &[u8]) -> Vec<Op4> {
    let b = Bytes::copy_from_slice(buf);
    let mut d = Decoder::from_bytes(&b);
    let Ok(h) = CompoundHeader::decode(&mut d) else {
        return Vec::new();
    };
    let mut ops = Vec::new();
    for _ in 0..h.nops.min(256) {
        match Op4::decode(&mut d) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    // what decoded encodes again, and decodes to the same value
    for op in &ops {
        let again = Op4::decode(&mut Decoder::new(&op.to_xdr())).unwrap();
        assert_eq!(&again, op);
    }
    ops
}

/// Result decoders a client would use.
fn decode_results(buf: &[u8]) {
    let _ = ExchangeIdResOk::from_xdr(buf);
    let _ = CreateSessionResOk::from_xdr(buf);
    let _ = SequenceResOk::from_xdr(buf);
    let _ = OpenResOk::from_xdr(buf);
    let _ = ReadResOk::from_xdr(buf);
    let _ = ReaddirResOk::from_xdr(buf);
    let _ = Fattr4::from_xdr(buf);
    if let Ok(f) = Fattr4::from_xdr(buf) {
        let _ = SetAttrs4::from_fattr(&f);
    }
}

#[test]
fn every_operation_round_trips_in_one_compound() {
    let ops = every_op();
    let buf = encode_compound(b"tag", 1, &ops);
    assert_eq!(decode_compound(&buf), ops);
}

#[test]
fn every_truncation_decodes_a_prefix_of_the_operations() {
    let ops = every_op();
    let buf = encode_compound(b"tag", 1, &ops);
    let mut last = 0;
    for n in 0..buf.len() {
        let got = decode_compound(&buf[..n]);
        assert!(got.len() < ops.len(), "a cut compound cannot decode whole");
        assert_eq!(&got[..], &ops[..got.len()]);
        assert!(
            got.len() >= last,
            "more bytes never decode fewer operations"
        );
        last = got.len();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_compound(&buf);
        decode_results(&buf);
    }

    #[test]
    fn random_mutations_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16)
    ) {
        let mut buf = encode_compound(b"tag", 2, &every_op());
        for (at, v) in flips {
            let i = at % buf.len();
            buf[i] = v;
        }
        decode_compound(&buf);
        decode_results(&buf);
    }
}

/// The seed corpus of the COMPOUND fuzz target (`fuzz/seeds/nfs4_compound`): COMPOUNDs
/// a client sends, in NFSv4.0 (no session needed, so the fuzzer reaches the operations)
/// and 4.1, and one of every operation.
fn fuzz_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let export = || name("export");
    let root = || [Op4::Putrootfh, Op4::Lookup(export())];
    let anon = Stateid4::ANONYMOUS;
    let owner = |o: &str| StateOwner4 {
        clientid: 0,
        owner: name(o),
    };
    let mut browse = root().to_vec();
    browse.extend([
        Op4::Getfh,
        Op4::Getattr(Bitmap4::from_bits(&[0, 1, 4, 20, 33, 35, 53])),
        Op4::Access(0x3f),
        Op4::Readdir(ReaddirArgs {
            cookie: 0,
            cookieverf: [0; 8],
            dircount: 4096,
            maxcount: 8192,
            attr_request: Bitmap4::from_bits(&[1, 4, 20]),
        }),
    ]);
    let mut ns = root().to_vec();
    ns.extend([
        Op4::Create(CreateArgs {
            objtype: CreateType4::Dir,
            objname: name("d"),
            createattrs: attrs(),
        }),
        Op4::Savefh,
        Op4::Create(CreateArgs {
            objtype: CreateType4::Link(name("target")),
            objname: name("l"),
            createattrs: attrs(),
        }),
        Op4::Readlink,
        Op4::Restorefh,
        Op4::Lookupp,
        Op4::Rename(RenameArgs {
            oldname: name("d"),
            newname: name("e"),
        }),
        Op4::Remove(name("e")),
    ]);
    let mut io = root().to_vec();
    io.extend([
        Op4::Open(Box::new(OpenArgs {
            seqid: 0,
            share_access: SHARE_ACCESS_BOTH,
            share_deny: 0,
            owner: owner("o"),
            openhow: OpenHow4(Some(CreateHow4::Unchecked(attrs()))),
            claim: OpenClaim4::Null(name("f")),
        })),
        Op4::Write(WriteArgs {
            stateid: anon.clone(),
            offset: 0,
            stable: 2,
            data: Bytes::from_static(b"hello"),
        }),
        Op4::Read(ReadArgs {
            stateid: anon.clone(),
            offset: 0,
            count: 16,
        }),
        Op4::Commit(CommitArgs {
            offset: 0,
            count: 0,
        }),
        Op4::Lockt(LocktArgs {
            locktype: 2,
            offset: 0,
            length: 1,
            owner: owner("lo"),
        }),
        Op4::Close(CloseArgs {
            seqid: 1,
            stateid: anon,
        }),
    ]);
    let setclientid = Op4::SetClientId(Box::new(SetClientIdArgs {
        client: ClientOwner4 {
            verifier: [1; 8],
            ownerid: name("fuzz"),
        },
        callback: CbClient4 {
            cb_program: 0x4000_0000,
            r_netid: name("tcp"),
            r_addr: name("127.0.0.1.4.1"),
        },
        callback_ident: 1,
    }));
    let exchange = Op4::ExchangeId(Box::new(ExchangeIdArgs {
        clientowner: ClientOwner4 {
            verifier: [2; 8],
            ownerid: name("fuzz41"),
        },
        flags: 0,
        state_protect: StateProtect4A::None,
        client_impl_id: List(vec![]),
    }));
    vec![
        ("v40-browse", encode_compound(b"", 0, &browse)),
        ("v40-namespace", encode_compound(b"", 0, &ns)),
        ("v40-open-io", encode_compound(b"", 0, &io)),
        ("v40-setclientid", encode_compound(b"", 0, &[setclientid])),
        ("v41-exchange-id", encode_compound(b"", 1, &[exchange])),
        ("every-op", encode_compound(b"all", 1, &every_op())),
    ]
}

/// The committed seeds are the ones [`fuzz_seeds`] makes and decode completely; with
/// `DITTOFS_WRITE_FUZZ_SEEDS=1` this (re)writes them instead.
#[test]
fn fuzz_seed_corpus_is_current() {
    // the checkout the test runs in (a cached binary keeps the path it was built at)
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        )
        .join("../../fuzz/seeds/nfs4_compound");
    let write = std::env::var_os("DITTOFS_WRITE_FUZZ_SEEDS").is_some();
    for (file, bytes) in fuzz_seeds() {
        let ops = decode_compound(&bytes);
        assert!(!ops.is_empty(), "{file}");
        let path = dir.join(file);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert_eq!(
            committed, bytes,
            "{file} is stale: DITTOFS_WRITE_FUZZ_SEEDS=1"
        );
    }
}
