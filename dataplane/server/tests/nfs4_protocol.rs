//! NFSv4.1 and 4.2 protocol tests against the real `dfs` binary: raw COMPOUNDs over TCP
//! built with the project's codec (sessions, the pseudo root, OPEN/WRITE/CLOSE/READ, the
//! slot replay cache, bad stateids and sessions, COMPOUND limits; NFSv4.2's SEEK,
//! READ_PLUS, ALLOCATE, DEALLOCATE, COPY and CLONE; its extended attribute operations,
//! RFC 8276), read and write delegations (the test client answers the CB_COMPOUND
//! calls the server sends on its connection; an NFSv4.0 test client listens for the
//! connection the server makes to its callback address), and owner strings (numeric,
//! or `name@domain` from the identity store with `nfs.v4.id_domain`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::nlm::NlmClient;
use common::{Client, Server, http_get, privileged_client};
use dittofs_nfs::nfs4::attr::{SetattrArgs, SetattrRes};
use dittofs_nfs::nfs4::callback::{CB_COMPOUND, CbCompoundArgs, CbOp, OP_CB_SEQUENCE};
use dittofs_nfs::nfs4::dir::{ReaddirArgs, ReaddirResOk};
use dittofs_nfs::nfs4::fattr::{Fattr4, SetAttrs4, a};
use dittofs_nfs::nfs4::fh::SecinfoResOk;
use dittofs_nfs::nfs4::io::*;
use dittofs_nfs::nfs4::ns::{ChangeInfo4, CreateArgs, CreateResOk, CreateType4};
use dittofs_nfs::nfs4::session::*;
use dittofs_nfs::nfs4::types::{
    Bitmap4, ChannelAttrs4, Fh4, List, Opaque4, RdmaIrd, SessionId4, Stateid4,
};
use dittofs_nfs::nfs4::v42::*;
use dittofs_nfs::nfs4::xattr::{
    ListxattrsArgs, ListxattrsResOk, SetxattrArgs, SetxattrOption4, XattrValue4,
};
use dittofs_nfs::nfs4::{Nfs4Status, Op4, PROGRAM, decode_res_head, encode_compound};
use dittofs_nfs::nlm4::Nlm4Stat;
use dittofs_nfs::rpc::{AcceptStat, ReplyStat};
use dittofs_nfs::{Decoder, XdrDecode};

/// One decoded operation result.
#[derive(Debug)]
enum Res {
    Empty,
    Seq(SequenceResOk),
    Fh(Fh4),
    Attr(Fattr4),
    Open(Box<OpenResOk>),
    Write(WriteResOk),
    Read(ReadResOk),
    #[allow(dead_code)]
    Stateid(Stateid4),
    Exchange(Box<ExchangeIdResOk>),
    Session(Box<CreateSessionResOk>),
    Denied(LockDenied),
    SetClientId(SetClientIdResOk),
    Xattr(XattrValue4),
    XattrChange(ChangeInfo4),
    XattrList(ListxattrsResOk),
    Copy(CopyResOk),
    Seek(SeekResOk),
    ReadPlus(ReadPlusResOk),
    Readdir(ReaddirResOk),
    Other,
}

/// Decodes the body of a successful result of `op`.
fn body(op: u32, d: &mut Decoder<'_>) -> Res {
    match op {
        53 => Res::Seq(SequenceResOk::decode(d).unwrap()),
        10 => Res::Fh(Fh4::decode(d).unwrap()),
        9 => Res::Attr(Fattr4::decode(d).unwrap()),
        18 => Res::Open(Box::new(OpenResOk::decode(d).unwrap())),
        38 => Res::Write(WriteResOk::decode(d).unwrap()),
        25 => Res::Read(ReadResOk::decode(d).unwrap()),
        4 | 20 | 21 | 12 | 14 => Res::Stateid(Stateid4::decode(d).unwrap()),
        42 => Res::Exchange(Box::new(ExchangeIdResOk::decode(d).unwrap())),
        43 => Res::Session(Box::new(CreateSessionResOk::decode(d).unwrap())),
        35 => Res::SetClientId(SetClientIdResOk::decode(d).unwrap()),
        72 => Res::Xattr(XattrValue4::decode(d).unwrap()),
        73 | 75 => Res::XattrChange(ChangeInfo4::decode(d).unwrap()),
        74 => Res::XattrList(ListxattrsResOk::decode(d).unwrap()),
        60 => Res::Copy(CopyResOk::decode(d).unwrap()),
        69 => Res::Seek(SeekResOk::decode(d).unwrap()),
        68 => Res::ReadPlus(ReadPlusResOk::decode(d).unwrap()),
        26 => Res::Readdir(ReaddirResOk::decode(d).unwrap()),
        33 | 52 => {
            SecinfoResOk::decode(d).unwrap();
            Res::Other
        }
        34 => {
            SetattrRes::decode(d).unwrap();
            Res::Other
        }
        6 => {
            CreateResOk::decode(d).unwrap();
            Res::Other
        }
        28 | 5 => {
            if op == 28 {
                ChangeInfo4::decode(d).unwrap();
            } else {
                d.opaque_array::<8>().unwrap();
            }
            Res::Other
        }
        _ => Res::Empty,
    }
}

/// A COMPOUND4res: status, and (op, status, body) per result.
struct Reply {
    status: Nfs4Status,
    results: Vec<(u32, Nfs4Status, Res)>,
    raw: Vec<u8>,
}

impl Reply {
    fn parse(raw: Vec<u8>) -> Reply {
        let mut d = Decoder::new(&raw);
        let status = Nfs4Status::from_u32(d.u32().unwrap()).unwrap();
        d.opaque(1024).unwrap();
        let n = d.u32().unwrap();
        let mut results = Vec::new();
        for _ in 0..n {
            let (op, st) = decode_res_head(&mut d).unwrap();
            let b = match st {
                Nfs4Status::Ok => body(op, &mut d),
                Nfs4Status::Denied => Res::Denied(LockDenied::decode(&mut d).unwrap()),
                _ => Res::Empty,
            };
            results.push((op, st, b));
            if st != Nfs4Status::Ok {
                break;
            }
        }
        Reply {
            status,
            results,
            raw,
        }
    }

    fn last(&self) -> &(u32, Nfs4Status, Res) {
        self.results.last().expect("a result")
    }
}

/// A client with a session.
struct V4 {
    c: Client,
    clientid: u64,
    sid: SessionId4,
    seq: u32,
}

fn compound_raw(c: &mut Client, minor: u32, ops: &[Op4]) -> Vec<u8> {
    let (r, rest) = c.call_raw(PROGRAM, 4, 1, true, &encode_compound(b"t", minor, ops));
    assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::Success));
    rest
}

fn compound(c: &mut Client, ops: &[Op4]) -> Reply {
    Reply::parse(compound_raw(c, 1, ops))
}

fn chan() -> ChannelAttrs4 {
    ChannelAttrs4 {
        headerpadsize: 0,
        maxrequestsize: 1 << 20,
        maxresponsesize: 1 << 20,
        maxresponsesize_cached: 8192,
        maxoperations: 16,
        maxrequests: 4,
        rdma_ird: RdmaIrd(None),
    }
}

impl V4 {
    fn connect(port: u16, owner: &[u8]) -> V4 {
        V4::connect_with(Client::connect(port), owner)
    }

    /// EXCHANGE_ID + CREATE_SESSION on connection `c`.
    fn connect_with(mut c: Client, owner: &[u8]) -> V4 {
        let r = compound(
            &mut c,
            &[Op4::ExchangeId(Box::new(ExchangeIdArgs {
                clientowner: ClientOwner4 {
                    verifier: [7; 8],
                    ownerid: Opaque4(owner.to_vec()),
                },
                flags: 0x0007_0000, // every pNFS role offered: the server picks none
                state_protect: StateProtect4A::None,
                client_impl_id: List(vec![]),
            }))],
        );
        let Res::Exchange(x) = &r.last().2 else {
            panic!("EXCHANGE_ID: {:?}", r.status)
        };
        assert_eq!(
            x.flags & EXCHGID4_FLAG_MASK_PNFS,
            EXCHGID4_FLAG_USE_NON_PNFS
        );
        let create = Op4::CreateSession(Box::new(CreateSessionArgs {
            clientid: x.clientid,
            sequence: x.sequenceid,
            flags: CREATE_SESSION4_FLAG_PERSIST | CREATE_SESSION4_FLAG_CONN_BACK_CHAN,
            fore_chan_attrs: chan(),
            back_chan_attrs: chan(),
            cb_program: 0x4000_0000,
            sec_parms: List(vec![CallbackSecParms4::None]),
        }));
        let r = compound(&mut c, std::slice::from_ref(&create));
        let Res::Session(s) = &r.last().2 else {
            panic!("CREATE_SESSION: {:?}", r.status)
        };
        assert_eq!(s.flags & CREATE_SESSION4_FLAG_PERSIST, 0, "no persistence");
        assert_eq!(s.fore_chan_attrs.maxoperations, 16);
        // a retransmitted CREATE_SESSION gets the same session
        let again = compound(&mut c, &[create]);
        let Res::Session(s2) = &again.last().2 else {
            panic!("CREATE_SESSION replay: {:?}", again.status)
        };
        assert_eq!(s2.sessionid, s.sessionid);
        V4 {
            c,
            clientid: x.clientid,
            sid: s.sessionid,
            seq: 0,
        }
    }

    fn seq_op(&mut self, slot: u32) -> Op4 {
        self.seq += 1;
        Op4::Sequence(SequenceArgs {
            sessionid: self.sid,
            sequenceid: self.seq,
            slotid: slot,
            highest_slotid: 0,
            cachethis: true,
        })
    }

    /// SEQUENCE (slot 0) followed by `ops`.
    fn run(&mut self, ops: &[Op4]) -> Reply {
        let mut all = vec![self.seq_op(0)];
        all.extend_from_slice(ops);
        compound(&mut self.c, &all)
    }

    /// SEQUENCE (slot 0, no reply caching) followed by `ops`, as minor version `minor`.
    fn run_minor(&mut self, minor: u32, ops: &[Op4]) -> Reply {
        self.run_cached(minor, false, ops)
    }

    /// [`V4::run_minor`] asking the slot to cache the reply.
    fn run_with_cache(&mut self, minor: u32, ops: &[Op4]) -> Reply {
        self.run_cached(minor, true, ops)
    }

    fn run_cached(&mut self, minor: u32, cachethis: bool, ops: &[Op4]) -> Reply {
        let Op4::Sequence(mut s) = self.seq_op(0) else {
            unreachable!()
        };
        s.cachethis = cachethis;
        let mut all = vec![Op4::Sequence(s)];
        all.extend_from_slice(ops);
        Reply::parse(compound_raw(&mut self.c, minor, &all))
    }

    fn fh_of(&mut self, path: &[Op4]) -> Fh4 {
        let mut ops = path.to_vec();
        ops.push(Op4::Getfh);
        let r = self.run(&ops);
        match &r.last().2 {
            Res::Fh(f) => f.clone(),
            other => panic!("GETFH: {:?} {other:?}", r.status),
        }
    }
}

/// OPEN creating `name` in the current directory for reading and writing, denying nothing.
fn open_create(seqid: u32, clientid: u64, owner: &[u8], how: CreateHow4, name: &str) -> Op4 {
    Op4::Open(Box::new(OpenArgs {
        seqid,
        share_access: SHARE_ACCESS_BOTH,
        share_deny: 0,
        owner: StateOwner4 {
            clientid,
            owner: Opaque4(owner.to_vec()),
        },
        openhow: OpenHow4(Some(how)),
        claim: OpenClaim4::Null(Opaque4(name.as_bytes().to_vec())),
    }))
}

/// Create attributes setting only the mode.
fn mode_attrs(mode: u32) -> Fattr4 {
    SetAttrs4 {
        mode: Some(mode),
        ..Default::default()
    }
    .to_fattr()
}

fn lookup(name: &str) -> Op4 {
    Op4::Lookup(Opaque4(name.as_bytes().to_vec()))
}

fn attr_u64(f: &Fattr4, mask: &[u32], want: u32) -> u64 {
    // values in bit order: this helper handles masks of u64/u32-sized values only
    let mut d = Decoder::new(&f.attr_vals.0);
    for &b in mask {
        let v = match b {
            a::TYPE | a::MODE => u64::from(d.u32().unwrap()),
            a::FSID => {
                let major = d.u64().unwrap();
                d.u64().unwrap();
                major
            }
            _ => d.u64().unwrap(),
        };
        if b == want {
            return v;
        }
    }
    panic!("attribute {want} not returned")
}

#[test]
fn session_pseudo_root_open_write_read_close() {
    let srv = Server::start();
    let mut v = V4::connect(srv.nfs_port, b"client-one");
    // the pseudo root: a directory with its own fsid; the export is a mount point in it
    let mask = [a::TYPE, a::SIZE, a::FSID, a::FILEID];
    let bm = Bitmap4::from_bits(&mask);
    let r = v.run(&[Op4::Putrootfh, Op4::Getfh, Op4::Getattr(bm.clone())]);
    assert_eq!(r.status, Nfs4Status::Ok);
    let Res::Attr(root) = &r.last().2 else {
        panic!()
    };
    assert_eq!(attr_u64(root, &mask, a::TYPE), 2, "NF4DIR");
    let r = v.run(&[Op4::Putrootfh, lookup("export"), Op4::Getattr(bm.clone())]);
    let Res::Attr(exp) = &r.last().2 else {
        panic!("{:?}", r.status)
    };
    assert_ne!(
        attr_u64(root, &mask, a::FSID),
        attr_u64(exp, &mask, a::FSID),
        "the share is another file system"
    );
    assert_eq!(attr_u64(exp, &mask, a::FILEID), 1, "the share's root inode");
    let r = v.run(&[Op4::Putrootfh, lookup("nope")]);
    assert_eq!(r.status, Nfs4Status::NoEnt);
    let dir = v.fh_of(&[Op4::Putrootfh, lookup("export")]);

    // OPEN (create) + WRITE with the current stateid + GETFH, then CLOSE
    let open = open_create(
        0,
        0,
        b"owner-1",
        CreateHow4::Guarded(mode_attrs(0o644)),
        "f",
    );
    let data = bytes::Bytes::from(vec![42u8; 200_000]);
    let write = Op4::Write(WriteArgs {
        stateid: Stateid4::CURRENT,
        offset: 0,
        stable: 2,
        data: data.clone(),
    });
    let r = v.run(&[Op4::Putfh(dir.clone()), open.clone(), write, Op4::Getfh]);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    let Res::Open(o) = &r.results[2].2 else {
        panic!()
    };
    let Res::Write(w) = &r.results[3].2 else {
        panic!()
    };
    assert_eq!((w.count, w.committed), (200_000, 2));
    let Res::Fh(file) = &r.results[4].2 else {
        panic!()
    };
    let sid = o.stateid.clone();
    // a second GUARDED create of the name fails
    let r = v.run(&[Op4::Putfh(dir.clone()), open]);
    assert_eq!(r.status, Nfs4Status::Exist);
    // a made-up stateid is refused
    let bogus = Stateid4 {
        seqid: 1,
        other: [9; 12],
    };
    let bad_write = |sid: Stateid4| {
        Op4::Write(WriteArgs {
            stateid: sid,
            offset: 0,
            stable: 2,
            data: bytes::Bytes::from_static(b"x"),
        })
    };
    let r = v.run(&[Op4::Putfh(file.clone()), bad_write(bogus)]);
    assert_eq!(r.status, Nfs4Status::BadStateid);
    let old = Stateid4 {
        seqid: 0,
        ..sid.clone()
    };
    let r = v.run(&[Op4::Putfh(file.clone()), bad_write(old)]);
    assert_eq!(r.status, Nfs4Status::Ok, "seqid 0 is the current seqid");
    let r = v.run(&[
        Op4::Putfh(file.clone()),
        Op4::Close(CloseArgs {
            seqid: 0,
            stateid: sid.clone(),
        }),
    ]);
    assert_eq!(r.status, Nfs4Status::Ok);
    // the closed stateid is gone
    let r = v.run(&[Op4::Putfh(file.clone()), bad_write(sid)]);
    assert_eq!(r.status, Nfs4Status::BadStateid);
    // READ back with the anonymous stateid: too big for the slot's reply cache when
    // the client asks for caching, fine without
    let read = Op4::Read(ReadArgs {
        stateid: Stateid4::ANONYMOUS,
        offset: 0,
        count: 1 << 20,
    });
    let r = v.run(&[Op4::Putfh(file.clone()), read.clone()]);
    assert_eq!(r.status, Nfs4Status::RepTooBigToCache);
    assert_eq!(r.last().0, 25, "the READ got the status");
    let Op4::Sequence(mut s) = v.seq_op(0) else {
        unreachable!()
    };
    s.cachethis = false;
    let r = compound(
        &mut v.c,
        &[Op4::Sequence(s), Op4::Putfh(file.clone()), read],
    );
    let Res::Read(rd) = &r.last().2 else {
        panic!("{:?}", r.status)
    };
    assert!(rd.eof);
    assert_eq!(rd.data[0], b'x', "the seqid-0 write landed");
    assert_eq!(&rd.data[1..], &data[1..]);
    // no current file handle
    let r = v.run(&[Op4::Getfh]);
    assert_eq!(r.status, Nfs4Status::NoFileHandle);
    // operations are counted by name, failures by status
    let m = http_get(srv.http_port, "/metrics").unwrap();
    let count = |needle: &str| {
        m.lines()
            .find(|l| l.contains(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let open_line = r#"dittofs_nfs_requests_total{program="nfs4_op",procedure="Open"}"#;
    assert_eq!(count(open_line), Some(2.0), "{m}");
    let exist = r#"procedure="Open",status="Exist"}"#;
    assert_eq!(count(exist), Some(1.0), "{m}");
}

#[test]
fn slot_replay_bad_sessions_and_compound_limits() {
    let srv = Server::start();
    let mut v = V4::connect(srv.nfs_port, b"client-two");
    let seq = v.seq_op(0);
    let dir_ops = [seq, Op4::Putrootfh, lookup("export"), Op4::Getfh];
    let first = compound_raw(&mut v.c, 1, &dir_ops);
    let parsed = Reply::parse(first.clone());
    assert_eq!(parsed.status, Nfs4Status::Ok);
    let Res::Seq(sr) = &parsed.results[0].2 else {
        panic!()
    };
    // four slots granted, as asked
    assert_eq!((sr.slotid, sr.highest_slotid, sr.status_flags), (0, 3, 0));
    // the same slot and sequence ID again: the cached reply, byte for byte, even with
    // other operations after SEQUENCE (they are not run)
    let again = compound_raw(&mut v.c, 1, &dir_ops);
    assert_eq!(again, first);
    let other = [dir_ops[0].clone(), Op4::Putrootfh, lookup("nope")];
    assert_eq!(compound_raw(&mut v.c, 1, &other), first);
    // a sequence ID that skips one is misordered; a slot beyond the table is BADSLOT
    v.seq += 1;
    let r = v.run(&[Op4::Putrootfh]);
    assert_eq!(r.results[0].1, Nfs4Status::SeqMisordered);
    v.seq -= 2;
    let bad_slot = v.seq_op(99);
    let r = compound(&mut v.c, &[bad_slot]);
    assert_eq!(r.status, Nfs4Status::BadSlot);
    v.seq -= 1;
    assert_eq!(v.run(&[Op4::Putrootfh]).status, Nfs4Status::Ok);
    // an unknown session
    let r = compound(
        &mut v.c,
        &[Op4::Sequence(SequenceArgs {
            sessionid: [3; 16],
            sequenceid: 1,
            slotid: 0,
            highest_slotid: 0,
            cachethis: false,
        })],
    );
    assert_eq!(r.status, Nfs4Status::BadSession);
    // more operations than the session allows (16), and more than any COMPOUND may hold
    // (a failed SEQUENCE leaves the slot's sequence ID as it was)
    let mut many = vec![Op4::Putrootfh; 20];
    assert_eq!(v.run(&many).status, Nfs4Status::TooManyOps);
    v.seq -= 1;
    // a request larger than the session's 1 MiB
    let big = Op4::Write(WriteArgs {
        stateid: Stateid4::ANONYMOUS,
        offset: 0,
        stable: 0,
        data: bytes::Bytes::from(vec![0u8; 1 << 20]),
    });
    assert_eq!(v.run(&[big]).status, Nfs4Status::ReqTooBig);
    v.seq -= 1;
    many.resize(200, Op4::Putrootfh);
    // past the server's own bound: TOO_MANY_OPS (RESOURCE is no 4.1 error), nothing run
    let r = compound(&mut v.c, &many);
    assert_eq!(r.status, Nfs4Status::TooManyOps);
    assert!(r.results.is_empty());
    // no SEQUENCE first; SEQUENCE not first; minor version 3; an unknown operation
    assert_eq!(
        compound(&mut v.c, &[Op4::Putrootfh]).status,
        Nfs4Status::OpNotInSession
    );
    let s = v.seq_op(0);
    let r = compound(&mut v.c, &[s.clone(), s]);
    assert_eq!(r.status, Nfs4Status::SequencePos);
    let r = Reply::parse(compound_raw(&mut v.c, 3, &[Op4::Putrootfh]));
    assert_eq!(r.status, Nfs4Status::MinorVersMismatch);
    let mut raw = encode_compound(b"t", 1, &[v.seq_op(0)]);
    raw[15] = 2; // two operations...
    raw.extend_from_slice(&9999u32.to_be_bytes()); // ...the second one unknown
    let (_, rest) = v.c.call_raw(PROGRAM, 4, 1, true, &raw);
    let r = Reply::parse(rest);
    assert_eq!(r.status, Nfs4Status::OpIllegal);
    assert_eq!(r.last().0, 10044);
    // LAYOUTGET (pNFS) is not supported; the server keeps serving
    let mut raw = encode_compound(b"t", 1, &[v.seq_op(0)]);
    raw[15] = 2;
    raw.extend_from_slice(&50u32.to_be_bytes());
    let (_, rest) = v.c.call_raw(PROGRAM, 4, 1, true, &raw);
    assert_eq!(Reply::parse(rest).status, Nfs4Status::NotSupp);
    // truncated arguments: BADXDR in that operation's slot
    let mut raw = encode_compound(b"t", 1, &[v.seq_op(0), lookup("abcdef")]);
    raw.truncate(raw.len() - 4);
    let (_, rest) = v.c.call_raw(PROGRAM, 4, 1, true, &raw);
    let r = Reply::parse(rest);
    assert_eq!((r.status, r.last().0), (Nfs4Status::BadXdr, 15));
    assert_eq!(v.run(&[Op4::Putrootfh]).status, Nfs4Status::Ok);
    // NFSv3 on the same port is untouched
    assert!(v.c.null_ok());
}

#[test]
fn sessions_end_with_destroy() {
    let srv = Server::start();
    let mut v = V4::connect(srv.nfs_port, b"client-three");
    let r = compound(&mut v.c, &[Op4::DestroySession(v.sid)]);
    assert_eq!(r.status, Nfs4Status::Ok);
    assert_eq!(v.run(&[Op4::Putrootfh]).status, Nfs4Status::BadSession);
    let r = compound(&mut v.c, &[Op4::DestroySession(v.sid)]);
    assert_eq!(r.status, Nfs4Status::BadSession);
    // the client ID is known until destroyed, then stale
    let mut w = V4::connect(srv.nfs_port, b"client-four");
    let id = w.clientid;
    let r = compound(&mut w.c, &[Op4::DestroyClientid(id)]);
    assert_eq!(r.status, Nfs4Status::ClientIdBusy, "it still has a session");
    compound(&mut w.c, &[Op4::DestroySession(w.sid)]);
    let r = compound(&mut w.c, &[Op4::DestroyClientid(id)]);
    assert_eq!(r.status, Nfs4Status::Ok);
    let r = compound(&mut w.c, &[Op4::DestroyClientid(id)]);
    assert_eq!(r.status, Nfs4Status::StaleClientId);
    assert_eq!(r.raw.len() % 4, 0);
}

#[test]
fn nfs4_and_nlm_locks_conflict() {
    // lock against lock only: the OPEN takes no write delegation an NLM lock would recall
    // first (that is nlm_exclusive_lock_recalls_a_read_delegation)
    let srv = Server::start_with(vec![
        ("DITTOFS_NFS_LOCKS_GRACE_SECONDS".into(), "0".into()),
        ("DITTOFS_NFS_V4_DELEGATIONS".into(), "false".into()),
    ]);
    let mut v = V4::connect(srv.nfs_port, b"client-locks");
    let dir = v.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let open = open_create(
        0,
        v.clientid,
        b"open-owner",
        CreateHow4::Unchecked(SetAttrs4::default().to_fattr()),
        "lk",
    );
    let r = v.run(&[Op4::Putfh(dir), open, Op4::Getfh]);
    let Res::Open(o) = &r.results[2].2 else {
        panic!("{:?}", r.status)
    };
    let Res::Fh(fh) = &r.results[3].2 else {
        panic!()
    };
    let lock = |locker: Locker4, offset: u64, length: u64| {
        Op4::Lock(LockArgs {
            locktype: 2,
            reclaim: false,
            offset,
            length,
            locker,
        })
    };
    let new_owner = Locker4::New {
        open_seqid: 0,
        open_stateid: o.stateid.clone(),
        lock_seqid: 0,
        lock_owner: StateOwner4 {
            clientid: v.clientid,
            owner: Opaque4(b"lock-owner".to_vec()),
        },
    };
    // NFSv4 holds bytes 0..100: an NLM client (NFSv3) is refused and told the holder
    let r = v.run(&[Op4::Putfh(fh.clone()), lock(new_owner, 0, 100)]);
    let Res::Stateid(lsid) = &r.last().2 else {
        panic!("LOCK: {:?}", r.status)
    };
    let mut nlm = NlmClient::connect(srv.nfs_port, "v3-host", 7);
    assert_eq!(nlm.lock(&fh.0, (50, 10), true), Nlm4Stat::Denied);
    let t = nlm.test(&fh.0, (50, 10), false);
    let h = t.holder.expect("TEST names the NFSv4 holder");
    assert_eq!((h.exclusive, h.l_offset, h.l_len), (true, 0, 100));
    // released by LOCKU, the NLM client gets it; now NFSv4 is refused, with the holder
    let r = v.run(&[
        Op4::Putfh(fh.clone()),
        Op4::Locku(LockuArgs {
            locktype: 2,
            seqid: 0,
            lock_stateid: lsid.clone(),
            offset: 0,
            length: u64::MAX,
        }),
    ]);
    let Res::Stateid(after) = &r.last().2 else {
        panic!("LOCKU: {:?}", r.status)
    };
    assert_eq!(
        after.seqid,
        lsid.seqid + 1,
        "LOCKU advances the lock stateid"
    );
    assert_eq!(nlm.lock(&fh.0, (50, 10), true), Nlm4Stat::Granted);
    // the stateid before LOCKU is outdated
    let old = Locker4::Existing {
        lock_stateid: lsid.clone(),
        lock_seqid: 0,
    };
    let r = v.run(&[Op4::Putfh(fh.clone()), lock(old, 0, 100)]);
    assert_eq!(r.status, Nfs4Status::OldStateid);
    let existing = Locker4::Existing {
        lock_stateid: after.clone(),
        lock_seqid: 0,
    };
    let r = v.run(&[Op4::Putfh(fh.clone()), lock(existing, 0, 100)]);
    let Res::Denied(d) = &r.last().2 else {
        panic!("{:?}", r.status)
    };
    assert_eq!((d.offset, d.length, d.locktype), (50, 10, 2));
    // LOCKT of bytes NLM does not hold is free; of its bytes, DENIED
    let clientid = v.clientid;
    let lockt = |offset: u64| {
        Op4::Lockt(LocktArgs {
            locktype: 1,
            offset,
            length: 10,
            owner: StateOwner4 {
                clientid,
                owner: Opaque4(b"other".to_vec()),
            },
        })
    };
    let r = v.run(&[Op4::Putfh(fh.clone()), lockt(0)]);
    assert_eq!(r.status, Nfs4Status::Ok);
    let r = v.run(&[Op4::Putfh(fh.clone()), lockt(55)]);
    assert_eq!(r.status, Nfs4Status::Denied);
    assert_eq!(nlm.unlock(&fh.0, (50, 10)), Nlm4Stat::Granted);
    let r = v.run(&[Op4::Putfh(fh.clone()), lockt(55)]);
    assert_eq!(r.status, Nfs4Status::Ok);
}

#[test]
fn minor_version_zero_without_sessions() {
    let srv = Server::start();
    let mut c = Client::connect(srv.nfs_port);
    let v40 = |c: &mut Client, ops: &[Op4]| Reply::parse(compound_raw(c, 0, ops));
    let r = v40(
        &mut c,
        &[Op4::SetClientId(Box::new(SetClientIdArgs {
            client: ClientOwner4 {
                verifier: [5; 8],
                ownerid: Opaque4(b"a 4.0 client".to_vec()),
            },
            callback: CbClient4 {
                cb_program: 0x4000_0000,
                r_netid: Opaque4(b"tcp".to_vec()),
                r_addr: Opaque4(b"127.0.0.1.4.1".to_vec()),
            },
            callback_ident: 1,
        }))],
    );
    let Res::SetClientId(sc) = &r.last().2 else {
        panic!("SETCLIENTID: {:?}", r.status)
    };
    let (id, confirm) = (sc.clientid, sc.confirm);
    let wrong = SetClientIdConfirmArgs {
        clientid: id,
        confirm: [0; 8],
    };
    assert_eq!(
        v40(&mut c, &[Op4::SetClientIdConfirm(wrong)]).status,
        Nfs4Status::StaleClientId
    );
    let right = SetClientIdConfirmArgs {
        clientid: id,
        confirm,
    };
    assert_eq!(
        v40(&mut c, &[Op4::SetClientIdConfirm(right)]).status,
        Nfs4Status::Ok
    );
    assert_eq!(v40(&mut c, &[Op4::Renew(id)]).status, Nfs4Status::Ok);
    assert_eq!(
        v40(&mut c, &[Op4::Renew(id ^ 1)]).status,
        Nfs4Status::StaleClientId
    );
    // no SEQUENCE: OPEN (client ID in the owner) + WRITE + GETFH in one COMPOUND
    let open = open_create(
        1,
        id,
        b"o40",
        CreateHow4::Unchecked(SetAttrs4::default().to_fattr()),
        "v40",
    );
    let write = Op4::Write(WriteArgs {
        stateid: Stateid4::CURRENT,
        offset: 0,
        stable: 2,
        data: bytes::Bytes::from_static(b"four-oh"),
    });
    let r = v40(
        &mut c,
        &[Op4::Putrootfh, lookup("export"), open, write, Op4::Getfh],
    );
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    let Res::Open(o) = &r.results[2].2 else {
        panic!()
    };
    assert_eq!(
        o.rflags & OPEN4_RESULT_CONFIRM,
        2,
        "a new open-owner confirms"
    );
    let Res::Fh(fh) = &r.results[4].2 else {
        panic!()
    };
    let confirm = Op4::OpenConfirm(OpenConfirmArgs {
        open_stateid: o.stateid.clone(),
        seqid: 2,
    });
    let r = v40(&mut c, &[Op4::Putfh(fh.clone()), confirm]);
    let Res::Stateid(confirmed) = &r.last().2 else {
        panic!("OPEN_CONFIRM: {:?}", r.status)
    };
    let close = Op4::Close(CloseArgs {
        seqid: 3,
        stateid: confirmed.clone(),
    });
    let r = v40(&mut c, &[Op4::Putfh(fh.clone()), close]);
    let Res::Stateid(closed) = &r.last().2 else {
        panic!("CLOSE: {:?}", r.status)
    };
    assert_eq!(
        closed.seqid,
        confirmed.seqid + 1,
        "4.0 CLOSE advances the stateid"
    );
    // an open-owner of an unknown client
    let stranger = Op4::Open(Box::new(OpenArgs {
        seqid: 1,
        share_access: SHARE_ACCESS_READ,
        share_deny: 0,
        owner: StateOwner4 {
            clientid: 12345,
            owner: Opaque4(b"x".to_vec()),
        },
        openhow: OpenHow4(None),
        claim: OpenClaim4::Fh,
    }));
    let r = v40(&mut c, &[Op4::Putfh(fh.clone()), stranger]);
    assert_eq!(r.status, Nfs4Status::StaleClientId);
    // 4.0 has no attribute past 55 and no operation past 39
    let mask = Bitmap4::from_bits(&[a::SUPPORTED_ATTRS]);
    let r = v40(&mut c, &[Op4::Putfh(fh.clone()), Op4::Getattr(mask)]);
    let Res::Attr(f) = &r.last().2 else { panic!() };
    let sup = Bitmap4::decode(&mut Decoder::new(&f.attr_vals.0)).unwrap();
    assert!(sup.has(a::MOUNTED_ON_FILEID) && !sup.has(a::SUPPATTR_EXCLCREAT));
    let r = v40(&mut c, &[Op4::Putrootfh, Op4::ReclaimComplete(false)]);
    assert_eq!((r.status, r.last().0), (Nfs4Status::OpIllegal, 10044));
    // a retransmitted state-changing 4.0 COMPOUND (same xid) gets the first reply
    // from the duplicate request cache, not NOENT; a new xid runs it again
    let rm = [
        Op4::Putrootfh,
        lookup("export"),
        Op4::Remove(Opaque4(b"v40".to_vec())),
    ];
    let first = compound_raw(&mut c, 0, &rm);
    assert_eq!(Reply::parse(first.clone()).status, Nfs4Status::Ok);
    c.xid -= 1;
    assert_eq!(compound_raw(&mut c, 0, &rm), first);
    assert_eq!(v40(&mut c, &rm).status, Nfs4Status::NoEnt);
    // and 4.1 has no SETCLIENTID / RENEW
    let mut v = V4::connect(srv.nfs_port, b"a 4.1 client");
    assert_eq!(v.run(&[Op4::Renew(id)]).status, Nfs4Status::NotSupp);
}

/// A confirmed NFSv4.0 client (SETCLIENTID + SETCLIENTID_CONFIRM): its client ID.
fn v40_client(c: &mut Client, name: &[u8]) -> u64 {
    v40_client_with(c, name, 9)
}

fn stateid_of(r: &Reply) -> Stateid4 {
    match &r.last().2 {
        Res::Stateid(s) => s.clone(),
        Res::Open(o) => o.stateid.clone(),
        other => panic!("no stateid: {:?} {other:?}", r.status),
    }
}

/// NFSv4.0 owner sequence IDs (RFC 7530 section 9.1.7): the next one runs, the last one
/// is answered with the remembered reply (new xid, so not the duplicate request cache)
/// without a second effect, any other is NFS4ERR_BAD_SEQID; a new open-owner confirms;
/// errors use up their sequence ID except the listed ones; the sequence wraps.
#[test]
fn v40_owner_sequence_ids_and_replay() {
    let srv = Server::start();
    let mut c = Client::connect(srv.nfs_port);
    let id = v40_client(&mut c, b"a sequenced client");
    let mut run = |ops: &[Op4]| Reply::parse(compound_raw(&mut c, 0, ops));
    let dir = [Op4::Putrootfh, lookup("export")];
    let create = CreateHow4::Unchecked(SetAttrs4::default().to_fattr());
    // a new owner starts anywhere; its stateid serves only OPEN_CONFIRM (seqid + 1)
    let open = open_create(7, id, b"oo", create, "seq");
    let r = run(&[dir[0].clone(), dir[1].clone(), open, Op4::Getfh]);
    let Res::Open(o) = &r.results[2].2 else {
        panic!("OPEN: {:?}", r.status)
    };
    assert_eq!(o.rflags & OPEN4_RESULT_CONFIRM, OPEN4_RESULT_CONFIRM);
    let Res::Fh(fh) = &r.last().2 else { panic!() };
    let fh = Op4::Putfh(fh.clone());
    let close = |seqid, stateid: &Stateid4| {
        Op4::Close(CloseArgs {
            seqid,
            stateid: stateid.clone(),
        })
    };
    assert_eq!(
        run(&[fh.clone(), close(8, &o.stateid)]).status,
        Nfs4Status::BadStateid
    );
    let confirm = |seqid| {
        Op4::OpenConfirm(OpenConfirmArgs {
            open_stateid: o.stateid.clone(),
            seqid,
        })
    };
    assert_eq!(run(&[fh.clone(), confirm(9)]).status, Nfs4Status::BadSeqid);
    let first = run(&[fh.clone(), confirm(8)]);
    let s2 = stateid_of(&first);
    assert_eq!(s2.seqid, o.stateid.seqid + 1);
    assert_eq!(run(&[fh.clone(), confirm(8)]).raw, first.raw, "replayed");
    // OPEN again (confirmed: no confirmation); its replay sets the same current file
    let reopen = Op4::Open(Box::new(OpenArgs {
        seqid: 9,
        share_access: SHARE_ACCESS_BOTH,
        share_deny: 0,
        owner: StateOwner4 {
            clientid: id,
            owner: Opaque4(b"oo".to_vec()),
        },
        openhow: OpenHow4(None),
        claim: OpenClaim4::Null(Opaque4(b"seq".to_vec())),
    }));
    let ops = [dir[0].clone(), dir[1].clone(), reopen, Op4::Getfh];
    let first = run(&ops);
    let Res::Open(o3) = &first.results[2].2 else {
        panic!("OPEN: {:?}", first.status)
    };
    assert_eq!((o3.rflags & OPEN4_RESULT_CONFIRM, o3.stateid.seqid), (0, 3));
    assert_eq!(
        run(&ops).raw,
        first.raw,
        "OPEN replayed, with its file handle"
    );
    let s3 = o3.stateid.clone();
    // a new lock-owner: sequenced on the open-owner; its lock_seqid starts its own
    let lock = |locker| {
        Op4::Lock(LockArgs {
            locktype: 2,
            reclaim: false,
            offset: 0,
            length: 10,
            locker,
        })
    };
    let new_locker = lock(Locker4::New {
        open_seqid: 10,
        open_stateid: s3.clone(),
        lock_seqid: 0,
        lock_owner: StateOwner4 {
            clientid: id,
            owner: Opaque4(b"lk".to_vec()),
        },
    });
    let first = run(&[fh.clone(), new_locker.clone()]);
    let l1 = stateid_of(&first);
    assert_eq!(
        run(&[fh.clone(), new_locker]).raw,
        first.raw,
        "LOCK replayed"
    );
    let locku = |seqid, sid: &Stateid4| {
        Op4::Locku(LockuArgs {
            locktype: 2,
            seqid,
            lock_stateid: sid.clone(),
            offset: 0,
            length: 10,
        })
    };
    let first = run(&[fh.clone(), locku(1, &l1)]);
    let l2 = stateid_of(&first);
    assert_eq!(
        l2.seqid,
        l1.seqid + 1,
        "the replayed LOCK had no second effect"
    );
    assert_eq!(
        run(&[fh.clone(), locku(1, &l1)]).raw,
        first.raw,
        "LOCKU replayed"
    );
    let existing = |lock_seqid| {
        lock(Locker4::Existing {
            lock_stateid: l2.clone(),
            lock_seqid,
        })
    };
    assert_eq!(run(&[fh.clone(), existing(3)]).status, Nfs4Status::BadSeqid);
    assert_eq!(run(&[fh.clone(), existing(1)]).status, Nfs4Status::BadSeqid);
    assert_eq!(
        stateid_of(&run(&[fh.clone(), existing(2)])).seqid,
        l2.seqid + 1
    );
    // an error uses up its sequence ID (and is replayed) ...
    let downgrade = |seqid, share_access| {
        Op4::OpenDowngrade(OpenDowngradeArgs {
            stateid: s3.clone(),
            seqid,
            share_access,
            share_deny: 0,
        })
    };
    let first = run(&[fh.clone(), downgrade(11, 0)]);
    assert_eq!(first.status, Nfs4Status::Inval);
    assert_eq!(run(&[fh.clone(), downgrade(11, 0)]).raw, first.raw);
    let s4 = stateid_of(&run(&[fh.clone(), downgrade(12, SHARE_ACCESS_READ)]));
    // ... but not NFS4ERR_BAD_STATEID (a stateid from the future)
    let future = Stateid4 {
        seqid: s4.seqid + 5,
        ..s4.clone()
    };
    assert_eq!(
        run(&[fh.clone(), close(13, &future)]).status,
        Nfs4Status::BadStateid
    );
    let first = run(&[fh.clone(), close(13, &s4)]);
    assert_eq!(stateid_of(&first).seqid, s4.seqid + 1);
    assert_eq!(
        run(&[fh.clone(), close(13, &s4)]).raw,
        first.raw,
        "CLOSE replayed"
    );
    assert_eq!(
        run(&[fh.clone(), close(12, &s4)]).status,
        Nfs4Status::BadSeqid
    );
    // the sequence wraps: 0xffffffff is followed by 0
    let create = CreateHow4::Unchecked(SetAttrs4::default().to_fattr());
    let open = open_create(u32::MAX, id, b"wrap", create, "wrap");
    let r = run(&[dir[0].clone(), dir[1].clone(), open]);
    let w = stateid_of(&r);
    let confirm = Op4::OpenConfirm(OpenConfirmArgs {
        open_stateid: w,
        seqid: 0,
    });
    let w2 = stateid_of(&run(&[confirm]));
    assert_eq!(run(&[close(1, &w2)]).status, Nfs4Status::Ok);
}

/// A V4 session on an existing connection.
fn session_on(c: Client, owner: &[u8]) -> V4 {
    V4::connect_with(c, owner)
}

/// The export policy applies to NFSv4 as to NFSv3: a `secure` share refuses an
/// unprivileged source port (NFS4ERR_PERM) at the LOOKUP into it and at PUTFH of its
/// handles, root is squashed on a `root_squash` share, and a client not in
/// `allowed_clients` gets NFS4ERR_ACCESS.
#[test]
fn export_policy_applies_to_nfs4() {
    let srv = Server::start_with(vec![(
        "DITTOFS_SHARES".into(),
        "[{name: /export, squash: none}, {name: /secure, squash: none, secure: true}, \
          {name: /squashed, squash: root_to_anonymous, anon_uid: 65534, anon_gid: 65534}, \
          {name: /elsewhere, squash: none, allowed_clients: [10.9.9.9]}]"
            .into(),
    )]);
    let mut user = V4::connect(srv.nfs_port, b"unprivileged");
    assert!(user.c.sock.local_addr().unwrap().port() >= 1024);
    let r = user.run(&[Op4::Putrootfh, lookup("secure")]);
    assert_eq!(r.status, Nfs4Status::Perm);
    let r = user.run(&[Op4::Putrootfh, lookup("elsewhere")]);
    assert_eq!(r.status, Nfs4Status::Access);
    // the pseudo root lists every share; the open ones are served
    let r = user.run(&[Op4::Putrootfh, lookup("export"), Op4::Getfh]);
    assert_eq!(r.status, Nfs4Status::Ok);
    // root creates on the squashed share as the anonymous user
    let dir = user.fh_of(&[Op4::Putrootfh, lookup("squashed")]);
    let open = open_create(
        0,
        user.clientid,
        b"o",
        CreateHow4::Unchecked(mode_attrs(0o666)),
        "made-by-root",
    );
    let owner = Bitmap4::from_bits(&[a::OWNER, a::OWNER_GROUP]);
    let r = user.run(&[Op4::Putfh(dir), open, Op4::Getattr(owner)]);
    let Res::Attr(f) = &r.last().2 else {
        panic!("{:?}", r.status)
    };
    let mut d = Decoder::new(&f.attr_vals.0);
    assert_eq!(d.opaque(64).unwrap(), b"65534");
    assert_eq!(d.opaque(64).unwrap(), b"65534");

    let Some(root_port) = privileged_client(srv.nfs_port) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI runs as root: a privileged source port must be available");
        }
        eprintln!("SKIP (rest): cannot bind a privileged source port (not root)");
        return;
    };
    let mut root = session_on(root_port, b"privileged");
    let secure = root.fh_of(&[Op4::Putrootfh, lookup("secure")]);
    // the handle got on a privileged port is refused on an unprivileged one
    let r = user.run(&[Op4::Putfh(secure.clone())]);
    assert_eq!(r.status, Nfs4Status::Perm);
    let r = root.run(&[
        Op4::Putfh(secure),
        Op4::Getattr(Bitmap4::from_bits(&[a::TYPE])),
    ]);
    assert_eq!(r.status, Nfs4Status::Ok);
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The whole content of `fh` (READ in 256 KiB pieces, minor version 2).
fn read_file(v: &mut V4, fh: &Fh4) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let read = Op4::Read(ReadArgs {
            stateid: Stateid4::ANONYMOUS,
            offset: out.len() as u64,
            count: 256 * 1024,
        });
        let r = v.run_minor(2, &[Op4::Putfh(fh.clone()), read]);
        let Res::Read(rd) = &r.last().2 else {
            panic!("READ: {:?}", r.status)
        };
        out.extend_from_slice(&rd.data);
        if rd.eof {
            return out;
        }
    }
}

fn size_of(v: &mut V4, fh: &Fh4) -> u64 {
    let bm = Bitmap4::from_bits(&[a::SIZE]);
    let r = v.run_minor(2, &[Op4::Putfh(fh.clone()), Op4::Getattr(bm)]);
    let Res::Attr(f) = &r.last().2 else {
        panic!("GETATTR: {:?}", r.status)
    };
    attr_u64(f, &[a::SIZE], a::SIZE)
}

fn seek_op(offset: u64, what: u32) -> Op4 {
    Op4::Seek(SeekArgs {
        stateid: Stateid4::ANONYMOUS,
        offset,
        what,
    })
}

/// OPEN (create) `name` in `dir` and WRITE `parts` (offset, data) through the new
/// stateid: the file's handle and open stateid.
fn create_with(v: &mut V4, dir: &Fh4, name: &str, parts: &[(u64, &[u8])]) -> (Fh4, Stateid4) {
    let open = open_create(
        0,
        0,
        name.as_bytes(),
        CreateHow4::Unchecked(mode_attrs(0o644)),
        name,
    );
    let mut ops = vec![Op4::Putfh(dir.clone()), open];
    for (offset, data) in parts {
        ops.push(Op4::Write(WriteArgs {
            stateid: Stateid4::CURRENT,
            offset: *offset,
            stable: 2,
            data: bytes::Bytes::copy_from_slice(data),
        }));
    }
    ops.push(Op4::Getfh);
    let r = v.run_minor(2, &ops);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    let Res::Open(o) = &r.results[2].2 else {
        panic!()
    };
    let Res::Fh(fh) = &r.last().2 else { panic!() };
    (fh.clone(), o.stateid.clone())
}

fn seek_res(r: &Reply) -> (bool, u64) {
    match &r.last().2 {
        Res::Seek(s) => (s.eof, s.offset),
        other => panic!("SEEK: {:?} {other:?}", r.status),
    }
}

#[test]
fn v42_seek_read_plus_deallocate_allocate() {
    let srv = Server::start();
    let mut v = V4::connect(srv.nfs_port, b"v42-space");
    let dir = v.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let data = noise(7, 300_000);
    let (f, sid) = create_with(&mut v, &dir, "sparse", &[(0, &data), (2_000_000, &data)]);
    let mut seek = |offset, what| v.run_minor(2, &[Op4::Putfh(f.clone()), seek_op(offset, what)]);
    assert_eq!(seek_res(&seek(0, CONTENT_DATA)), (false, 0));
    assert_eq!(seek_res(&seek(10, CONTENT_HOLE)), (false, 300_000));
    assert_eq!(seek_res(&seek(300_000, CONTENT_DATA)), (false, 2_000_000));
    assert_eq!(seek_res(&seek(2_000_000, CONTENT_HOLE)), (true, 2_300_000));
    assert_eq!(seek(2_300_000, CONTENT_DATA).status, Nfs4Status::Nxio);
    assert_eq!(seek(0, 7).status, Nfs4Status::Inval);
    // READ_PLUS across the hole: a data segment, then a hole segment.
    let rp = Op4::ReadPlus(ReadPlusArgs {
        stateid: sid.clone(),
        offset: 250_000,
        count: 500_000,
    });
    let r = v.run_minor(2, &[Op4::Putfh(f.clone()), rp]);
    let Res::ReadPlus(p) = &r.last().2 else {
        panic!("READ_PLUS: {:?}", r.status)
    };
    assert!(!p.eof);
    assert_eq!(
        p.contents.0,
        vec![
            ReadPlusContent::Data {
                offset: 250_000,
                data: bytes::Bytes::copy_from_slice(&data[250_000..]),
            },
            ReadPlusContent::Hole {
                offset: 300_000,
                length: 450_000,
            },
        ]
    );
    // DEALLOCATE a range inside the first run: zeros, same size.
    let punch = Op4::Deallocate(SpaceArgs {
        stateid: sid.clone(),
        offset: 100_000,
        length: 50_000,
    });
    let r = v.run_minor(2, &[Op4::Putfh(f.clone()), punch]);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    let got = read_file(&mut v, &f);
    assert_eq!(got.len(), 2_300_000);
    assert_eq!(&got[..100_000], &data[..100_000]);
    assert!(got[100_000..150_000].iter().all(|&b| b == 0));
    assert_eq!(&got[150_000..300_000], &data[150_000..]);
    assert_eq!(&got[2_000_000..], &data[..]);
    // ALLOCATE past the end extends the size.
    let alloc = |offset, length| {
        Op4::Allocate(SpaceArgs {
            stateid: sid.clone(),
            offset,
            length,
        })
    };
    let r = v.run_minor(2, &[Op4::Putfh(f.clone()), alloc(3_000_000, 1_000_000)]);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    assert_eq!(size_of(&mut v, &f), 4_000_000);
    // A made-up stateid is refused as READ and WRITE refuse it.
    let bogus = Stateid4 {
        seqid: 1,
        other: [9; 12],
    };
    let r = v.run_minor(
        2,
        &[
            Op4::Putfh(f.clone()),
            Op4::Deallocate(SpaceArgs {
                stateid: bogus,
                offset: 0,
                length: 1,
            }),
        ],
    );
    assert_eq!(r.status, Nfs4Status::BadStateid);
    // 4.2 operations do not exist in 4.1 (NOTSUPP) nor in 4.0 (OP_ILLEGAL).
    let r = v.run_minor(1, &[Op4::Putfh(f.clone()), seek_op(0, CONTENT_DATA)]);
    assert_eq!((r.status, r.last().0), (Nfs4Status::NotSupp, 69));
    let r = v.run_minor(1, &[Op4::Putfh(f.clone()), alloc(0, 1)]);
    assert_eq!(r.status, Nfs4Status::NotSupp);
    let r = Reply::parse(compound_raw(&mut v.c, 0, &[Op4::Putfh(f), seek_op(0, 0)]));
    assert_eq!((r.status, r.last().0), (Nfs4Status::OpIllegal, 10044));
}

#[test]
fn v42_copy_and_clone() {
    let srv = Server::start();
    let mut v = V4::connect(srv.nfs_port, b"v42-copy");
    let dir = v.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let data = noise(11, 700_000);
    let (src, src_sid) = create_with(&mut v, &dir, "src", &[(0, &data)]);
    let (dst, dst_sid) = create_with(&mut v, &dir, "dst", &[]);
    let copy = |src_offset, dst_offset, count| {
        Op4::Copy(Box::new(CopyArgs {
            src_stateid: src_sid.clone(),
            dst_stateid: dst_sid.clone(),
            src_offset,
            dst_offset,
            count,
            consecutive: false,
            synchronous: false,
            source_server: List(vec![]),
        }))
    };
    let between = |op: Op4| {
        vec![
            Op4::Putfh(src.clone()),
            Op4::Savefh,
            Op4::Putfh(dst.clone()),
            op,
        ]
    };
    // Whole file (count 0: to the end), asked asynchronous, done synchronously.
    let r = v.run_minor(2, &between(copy(0, 0, 0)));
    let Res::Copy(c) = &r.last().2 else {
        panic!("COPY: {:?} {:?}", r.status, r.results)
    };
    assert_eq!(c.response.callback_id, None);
    assert_eq!((c.response.count, c.response.committed), (700_000, 2));
    assert!(c.consecutive && c.synchronous);
    assert_eq!(read_file(&mut v, &dst), data);
    // Partial, unaligned, over existing content and past its end.
    let r = v.run_minor(2, &between(copy(12_345, 650_000, 100_000)));
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    let mut model = data.clone();
    model.resize(750_000, 0);
    model[650_000..].copy_from_slice(&data[12_345..112_345]);
    assert_eq!(read_file(&mut v, &dst), model);
    // CLONE, whole and partial.
    let clone = |src_offset, dst_offset, count| {
        Op4::Clone(CloneArgs {
            src_stateid: src_sid.clone(),
            dst_stateid: dst_sid.clone(),
            src_offset,
            dst_offset,
            count,
        })
    };
    let r = v.run_minor(2, &between(clone(1, 3, 5_000)));
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    model[3..5_003].copy_from_slice(&data[1..5_001]);
    assert_eq!(read_file(&mut v, &dst), model);
    let (whole, whole_sid) = create_with(&mut v, &dir, "whole", &[]);
    let r = v.run_minor(
        2,
        &[
            Op4::Putfh(src.clone()),
            Op4::Savefh,
            Op4::Putfh(whole.clone()),
            Op4::Clone(CloneArgs {
                src_stateid: src_sid.clone(),
                dst_stateid: whole_sid,
                src_offset: 0,
                dst_offset: 0,
                count: 0,
            }),
        ],
    );
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    assert_eq!(read_file(&mut v, &whole), data);
    // Past the source's end; overlapping within one file; without a saved handle.
    let r = v.run_minor(2, &between(copy(600_000, 0, 100_001)));
    assert_eq!(r.status, Nfs4Status::Inval);
    let r = v.run_minor(
        2,
        &[
            Op4::Putfh(src.clone()),
            Op4::Savefh,
            Op4::Clone(CloneArgs {
                src_stateid: Stateid4::ANONYMOUS,
                dst_stateid: Stateid4::ANONYMOUS,
                src_offset: 0,
                dst_offset: 10,
                count: 100,
            }),
        ],
    );
    assert_eq!(r.status, Nfs4Status::Inval);
    let r = v.run_minor(2, &[Op4::Putfh(dst.clone()), copy(0, 0, 1)]);
    assert_eq!(r.status, Nfs4Status::NoFileHandle);
    // Bad stateids: the source's is checked against the source.
    let mut bad = between(copy(0, 0, 1));
    if let Some(Op4::Copy(a)) = bad.last_mut() {
        a.src_stateid = dst_sid.clone();
    }
    assert_eq!(v.run_minor(2, &bad).status, Nfs4Status::BadStateid);
    // An inter-server copy is not supported.
    let mut inter = between(copy(0, 0, 1));
    if let Some(Op4::Copy(a)) = inter.last_mut() {
        a.source_server = List(vec![Netloc4::Name(b"elsewhere".to_vec())]);
    }
    assert_eq!(v.run_minor(2, &inter).status, Nfs4Status::NotSupp);
    // Not in 4.1.
    assert_eq!(
        v.run_minor(1, &between(clone(0, 0, 1))).status,
        Nfs4Status::NotSupp
    );
    assert_eq!(
        read_file(&mut v, &dst),
        model,
        "failed copies changed nothing"
    );
}

// ---- delegations and the backchannel (RFC 8881 sections 10.4, 18.6, 20.2, 20.9) ----

/// A CB_COMPOUND { CB_SEQUENCE, CB_RECALL } as the server sends it.
#[derive(Debug)]
struct CbRecall {
    xid: u32,
    prog: u32,
    sessionid: SessionId4,
    cb_seq: u32,
    stateid: Stateid4,
    truncate: bool,
    fh: Vec<u8>,
}

/// Decodes one callback record (a CALL from the server).
fn parse_cb(rec: &[u8]) -> CbRecall {
    let (call, args) = dittofs_nfs::rpc::RpcCall::decode(rec).expect("a call from the server");
    assert_eq!((call.vers, call.proc_num), (1, 1), "CB_COMPOUND v1");
    let mut d = Decoder::new(args);
    d.opaque(1024).unwrap(); // tag
    assert_eq!(d.u32().unwrap(), 1, "minor version of the session");
    d.u32().unwrap(); // callback_ident
    assert_eq!(d.u32().unwrap(), 2, "CB_SEQUENCE + CB_RECALL");
    assert_eq!(d.u32().unwrap(), 11, "CB_SEQUENCE first");
    let sessionid = d.opaque_array::<16>().unwrap();
    let cb_seq = d.u32().unwrap();
    assert_eq!(d.u32().unwrap(), 0, "slot 0");
    d.u32().unwrap();
    d.bool().unwrap();
    assert_eq!(d.u32().unwrap(), 0, "no referring calls");
    assert_eq!(d.u32().unwrap(), 4, "CB_RECALL");
    let stateid = Stateid4::decode(&mut d).unwrap();
    let truncate = d.bool().unwrap();
    let fh = d.opaque(128).unwrap().to_vec();
    CbRecall {
        xid: call.xid,
        prog: call.prog,
        sessionid,
        cb_seq,
        stateid,
        truncate,
        fh,
    }
}

impl V4 {
    /// Waits for the next callback on this client's connection.
    fn recv_cb(&mut self) -> CbRecall {
        let rec = self.c.recv().expect("a callback record");
        assert_eq!(&rec[4..8], &[0, 0, 0, 0], "an RPC CALL");
        parse_cb(&rec)
    }

    /// Answers a CB_COMPOUND with NFS4_OK for both operations.
    fn answer_cb(&mut self, cb: &CbRecall) {
        use dittofs_nfs::XdrWrite;
        let mut m = Vec::new();
        dittofs_nfs::rpc::encode_success(&mut m, cb.xid);
        m.put_xdr_u32(0); // status
        m.put_xdr_opaque(b""); // tag
        m.put_xdr_u32(2);
        m.put_xdr_u32(11);
        m.put_xdr_u32(0);
        m.extend_from_slice(&cb.sessionid);
        for v in [cb.cb_seq, 0, 0, 0] {
            m.put_xdr_u32(v);
        }
        m.put_xdr_u32(4);
        m.put_xdr_u32(0);
        self.c.send_raw(&dittofs_nfs::record::frame_record(&m));
    }
}

/// OPEN of an existing `name` in `dir` with `access`, denying nothing.
fn open_existing(v: &mut V4, dir: &Fh4, owner: &[u8], access: u32, name: &str) -> Reply {
    let open = Op4::Open(Box::new(OpenArgs {
        seqid: 0,
        share_access: access,
        share_deny: 0,
        owner: StateOwner4 {
            clientid: v.clientid,
            owner: Opaque4(owner.to_vec()),
        },
        openhow: OpenHow4(None),
        claim: OpenClaim4::Null(Opaque4(name.as_bytes().to_vec())),
    }));
    v.run(&[Op4::Putfh(dir.clone()), open, Op4::Getfh])
}

/// The OPEN result of an [`open_existing`] reply.
fn opened(r: &Reply) -> &OpenResOk {
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    match &r.results[2].2 {
        Res::Open(o) => o,
        other => panic!("{other:?}"),
    }
}

/// The delegation an [`open_existing`] got (its stateid, and whether it is a write
/// delegation, whose space limit must be the largest file size), and the file's handle.
fn granted(r: &Reply) -> (Option<(Stateid4, bool)>, Fh4) {
    let o = opened(r);
    let Res::Fh(fh) = &r.results[3].2 else {
        panic!("{:?}", r.results)
    };
    let d = match &o.delegation {
        OpenDelegation4::Read { stateid, recall } => {
            assert!(!recall);
            Some((stateid.clone(), false))
        }
        OpenDelegation4::Write {
            stateid,
            recall,
            space_limit,
        } => {
            assert!(!recall);
            assert_eq!(*space_limit, dittofs_vfs::MAX_FILE_SIZE, "NFS_LIMIT_SIZE");
            Some((stateid.clone(), true))
        }
        OpenDelegation4::None => None,
    };
    (d, fh.clone())
}

/// The read delegation an OPEN got (a write delegation fails the test), and the
/// file's handle.
fn delegation_of(r: &Reply) -> (Option<Stateid4>, Fh4) {
    let (d, fh) = granted(r);
    let sid = d.map(|(sid, write)| {
        assert!(!write, "a read delegation, not a write delegation");
        sid
    });
    (sid, fh)
}

/// The write delegation an OPEN must have got, and the file's handle.
fn write_delegation_of(r: &Reply) -> (Stateid4, Fh4) {
    match granted(r) {
        (Some((sid, true)), fh) => (sid, fh),
        (other, _) => panic!("no write delegation: {other:?}"),
    }
}

/// A file `name` with `data`, written and closed by `v` (which asks for no delegation).
fn make_file(v: &mut V4, dir: &Fh4, name: &str, data: &[u8]) {
    let mut open = open_create(
        0,
        v.clientid,
        b"maker",
        CreateHow4::Unchecked(mode_attrs(0o666)),
        name,
    );
    if let Op4::Open(o) = &mut open {
        // the maker keeps no delegation that a test's other clients would recall
        o.share_access |= SHARE_ACCESS_WANT_NO_DELEG;
    }
    let write = Op4::Write(WriteArgs {
        stateid: Stateid4::CURRENT,
        offset: 0,
        stable: 2,
        data: bytes::Bytes::copy_from_slice(data),
    });
    let close = Op4::Close(CloseArgs {
        seqid: 0,
        stateid: Stateid4::CURRENT,
    });
    let r = v.run(&[Op4::Putfh(dir.clone()), open, write, close]);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
}

fn metric(srv: &Server, name: &str) -> f64 {
    let m = http_get(srv.http_port, "/metrics").unwrap();
    m.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{name} not in {m}"))
}

/// A server with a 3 s lease and write delegations on (`nfs.v4.write_delegations`).
fn short_lease_server() -> Server {
    Server::start_with(vec![
        ("DITTOFS_NFS_V4_LEASE_SECONDS".to_string(), "3".to_string()),
        (
            "DITTOFS_NFS_V4_WRITE_DELEGATIONS".to_string(),
            "true".to_string(),
        ),
    ])
}

#[test]
fn read_delegation_is_recalled_by_a_writer_and_returned() {
    let srv = short_lease_server();
    let mut holder = V4::connect(srv.nfs_port, b"deleg-holder");
    let mut writer = V4::connect(srv.nfs_port, b"deleg-writer");
    let dir = holder.fh_of(&[Op4::Putrootfh, lookup("export")]);
    make_file(&mut writer, &dir, "d", b"old");
    // a lone reader with a back channel gets a read delegation
    let r = open_existing(&mut holder, &dir, b"reader", SHARE_ACCESS_READ, "d");
    let (deleg, fh) = delegation_of(&r);
    let deleg = deleg.expect("a read delegation");
    // reads may use the delegation stateid
    let read = Op4::Read(ReadArgs {
        stateid: deleg.clone(),
        offset: 0,
        count: 16,
    });
    let r = holder.run(&[Op4::Putfh(fh.clone()), read.clone()]);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    // another client opening for write must wait for the recall
    let r = open_existing(&mut writer, &dir, b"w", SHARE_ACCESS_BOTH, "d");
    assert_eq!(r.status, Nfs4Status::Delay);
    let cb = holder.recv_cb();
    assert_eq!(cb.stateid, deleg);
    assert_eq!(cb.fh, fh.0);
    assert_eq!(cb.prog, 0x4000_0000, "csa_cb_program");
    assert_eq!(cb.sessionid, holder.sid);
    assert_eq!(cb.cb_seq, 1, "the back channel's first slot sequence");
    assert!(!cb.truncate);
    holder.answer_cb(&cb);
    // answered but not returned yet: still DELAY
    let r = open_existing(&mut writer, &dir, b"w", SHARE_ACCESS_BOTH, "d");
    assert_eq!(r.status, Nfs4Status::Delay);
    let r = holder.run(&[Op4::Delegreturn(deleg.clone())]);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    let r = open_existing(&mut writer, &dir, b"w", SHARE_ACCESS_BOTH, "d");
    assert_eq!(
        r.status,
        Nfs4Status::Ok,
        "the retry succeeds after DELEGRETURN"
    );
    let (none, _) = granted(&r);
    assert!(
        none.is_none(),
        "no write delegation while another client has the file open"
    );
    // a returned or made-up delegation stateid is BAD_STATEID
    let r = holder.run(&[Op4::Delegreturn(deleg.clone())]);
    assert_eq!(r.status, Nfs4Status::BadStateid);
    let bogus = Stateid4 {
        seqid: 1,
        other: [9; 12],
    };
    let r = holder.run(&[Op4::Delegreturn(bogus)]);
    assert_eq!(r.status, Nfs4Status::BadStateid);
    // while the writer has it open, a reader gets no delegation
    let r = open_existing(&mut holder, &dir, b"reader", SHARE_ACCESS_READ, "d");
    assert!(delegation_of(&r).0.is_none());
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_granted_total"), 1.0);
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_recalled_total"), 1.0);
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_returned_total"), 1.0);
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_revoked_total"), 0.0);
}

/// `holder` ignores a recall but keeps its lease renewed while `other` retries `ops`
/// (DELAY meanwhile): the delegation is revoked within the lease, `ops` then goes
/// through (its reply is returned), and the holder's SEQUENCE reports
/// SEQ4_STATUS_RECALLABLE_STATE_REVOKED.
fn revoked_after_the_lease(srv: &Server, holder: &mut V4, other: &mut V4, ops: &[Op4]) -> Reply {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let r = loop {
        assert_eq!(holder.run(&[]).status, Nfs4Status::Ok);
        let r = other.run(ops);
        if r.status != Nfs4Status::Delay {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "never revoked");
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert_eq!(metric(srv, "dittofs_nfs4_delegations_revoked_total"), 1.0);
    let seq = holder.run(&[]);
    let Res::Seq(s) = &seq.results[0].2 else {
        panic!()
    };
    assert_ne!(
        s.status_flags & 0x40,
        0,
        "SEQ4_STATUS_RECALLABLE_STATE_REVOKED"
    );
    r
}

#[test]
fn unanswered_recall_revokes_the_delegation_after_the_lease() {
    let srv = short_lease_server();
    let mut holder = V4::connect(srv.nfs_port, b"silent-holder");
    let mut writer = V4::connect(srv.nfs_port, b"impatient-writer");
    let dir = holder.fh_of(&[Op4::Putrootfh, lookup("export")]);
    make_file(&mut writer, &dir, "s", b"data");
    let r = open_existing(&mut holder, &dir, b"reader", SHARE_ACCESS_READ, "s");
    let (deleg, fh) = delegation_of(&r);
    let deleg = deleg.expect("a read delegation");
    let truncate = SetAttrs4 {
        size: Some(0),
        ..Default::default()
    }
    .to_fattr();
    let setattr = Op4::Setattr(SetattrArgs {
        stateid: Stateid4::ANONYMOUS,
        attrs: truncate,
    });
    let r = writer.run(&[Op4::Putfh(fh.clone()), setattr.clone()]);
    assert_eq!(r.status, Nfs4Status::Delay, "a truncate recalls");
    let cb = holder.recv_cb();
    assert_eq!(cb.stateid, deleg);
    let r = revoked_after_the_lease(
        &srv,
        &mut holder,
        &mut writer,
        &[Op4::Putfh(fh.clone()), setattr],
    );
    assert_eq!(r.status, Nfs4Status::Ok);
    // the holder learns of it: SEQUENCE flag, DELEG_REVOKED on use
    let read = Op4::Read(ReadArgs {
        stateid: deleg.clone(),
        offset: 0,
        count: 4,
    });
    let r = holder.run(&[Op4::Putfh(fh.clone()), read]);
    assert_eq!(r.status, Nfs4Status::DelegRevoked);
    let r = holder.run(&[Op4::Delegreturn(deleg.clone())]);
    assert_eq!(r.status, Nfs4Status::DelegRevoked);
    let r = holder.run(&[Op4::FreeStateid(deleg.clone())]);
    assert_eq!(r.status, Nfs4Status::Ok);
    let r = holder.run(&[]);
    let Res::Seq(s) = &r.results[0].2 else {
        panic!()
    };
    assert_eq!(s.status_flags & 0x40, 0, "freed");
}

#[test]
fn nfs3_write_recalls_a_delegation() {
    let srv = short_lease_server();
    let mut v3 = Client::connect(srv.nfs_port);
    let root = v3.mount_root();
    let file = v3.create_file(&root, "v3f");
    assert_eq!(
        v3.write_sync(&file, 0, b"before"),
        dittofs_nfs::nfs3::NfsStat3::Ok
    );
    let mut holder = V4::connect(srv.nfs_port, b"v3-peer");
    let dir = holder.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let r = open_existing(&mut holder, &dir, b"reader", SHARE_ACCESS_READ, "v3f");
    let (deleg, fh) = delegation_of(&r);
    let deleg = deleg.expect("a read delegation");
    assert_eq!(
        v3.write_sync(&file, 0, b"after!"),
        dittofs_nfs::nfs3::NfsStat3::Jukebox
    );
    let cb = holder.recv_cb();
    assert_eq!(cb.stateid, deleg);
    holder.answer_cb(&cb);
    let r = holder.run(&[Op4::Delegreturn(deleg)]);
    assert_eq!(r.status, Nfs4Status::Ok);
    assert_eq!(
        v3.write_sync(&file, 0, b"after!"),
        dittofs_nfs::nfs3::NfsStat3::Ok
    );
    let read = Op4::Read(ReadArgs {
        stateid: Stateid4::ANONYMOUS,
        offset: 0,
        count: 16,
    });
    let r = holder.run(&[Op4::Putfh(fh), read]);
    let Res::Read(rd) = &r.last().2 else {
        panic!("{:?}", r.status)
    };
    assert_eq!(&rd.data[..], b"after!");
}

/// A delegation's holder may keep its locks in the client (RFC 8881 section 10.4), so
/// an NLM lock recalls it: an exclusive NLM LOCK and TEST are DENIED while the read
/// delegation is recalled, a shared one does not recall it, and after DELEGRETURN the
/// NLM lock is granted.
#[test]
fn nlm_exclusive_lock_recalls_a_read_delegation() {
    let srv = Server::start_with(vec![
        ("DITTOFS_NFS_LOCKS_GRACE_SECONDS".into(), "0".into()),
        ("DITTOFS_NFS_V4_LEASE_SECONDS".into(), "3".into()),
    ]);
    let mut v3 = Client::connect(srv.nfs_port);
    let root = v3.mount_root();
    let file = v3.create_file(&root, "nlmf");
    let mut holder = V4::connect(srv.nfs_port, b"nlm-peer");
    let dir = holder.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let r = open_existing(&mut holder, &dir, b"reader", SHARE_ACCESS_READ, "nlmf");
    let deleg = delegation_of(&r).0.expect("a read delegation");
    let mut nlm = NlmClient::connect(srv.nfs_port, "nlm-host", 9);
    assert_eq!(
        nlm.lock(&file.0, (0, 10), false),
        Nlm4Stat::Granted,
        "shared"
    );
    assert_eq!(nlm.unlock(&file.0, (0, 10)), Nlm4Stat::Granted);
    assert_eq!(
        nlm.lock(&file.0, (0, 10), true),
        Nlm4Stat::Denied,
        "recalling"
    );
    let t = nlm.test(&file.0, (0, 10), true);
    assert_eq!(t.stat, Nlm4Stat::Denied);
    assert!(t.holder.expect("a holder").exclusive);
    let cb = holder.recv_cb();
    assert_eq!(cb.stateid, deleg, "one recall");
    holder.answer_cb(&cb);
    assert_eq!(
        holder.run(&[Op4::Delegreturn(deleg)]).status,
        Nfs4Status::Ok
    );
    assert_eq!(nlm.lock(&file.0, (0, 10), true), Nlm4Stat::Granted);
    assert_eq!(nlm.unlock(&file.0, (0, 10)), Nlm4Stat::Granted);
}

fn write_op(stateid: &Stateid4, offset: u64, data: &[u8]) -> Op4 {
    Op4::Write(WriteArgs {
        stateid: stateid.clone(),
        offset,
        stable: 2,
        data: bytes::Bytes::copy_from_slice(data),
    })
}

fn read_op(stateid: &Stateid4, count: u32) -> Op4 {
    Op4::Read(ReadArgs {
        stateid: stateid.clone(),
        offset: 0,
        count,
    })
}

fn read_data(r: &Reply) -> Vec<u8> {
    match &r.last().2 {
        Res::Read(rd) => rd.data.to_vec(),
        other => panic!("READ: {:?} {other:?}", r.status),
    }
}

fn getattr_op(bit: u32) -> Op4 {
    Op4::Getattr(Bitmap4::from_bits(&[bit]))
}

#[test]
fn write_delegation_is_recalled_by_a_reader_and_returned() {
    let srv = short_lease_server();
    let mut holder = V4::connect(srv.nfs_port, b"wdeleg-holder");
    let mut reader = V4::connect(srv.nfs_port, b"wdeleg-reader");
    let dir = holder.fh_of(&[Op4::Putrootfh, lookup("export")]);
    make_file(&mut holder, &dir, "w", b"old contents");
    // a lone writer with a back channel gets a write delegation
    let r = open_existing(&mut holder, &dir, b"writer", SHARE_ACCESS_BOTH, "w");
    let (deleg, fh) = write_delegation_of(&r);
    let put = Op4::Putfh(fh.clone());
    // its own operations go through: a WRITE under the delegation, SETATTR, GETATTR
    let chmod = Op4::Setattr(SetattrArgs {
        stateid: deleg.clone(),
        attrs: mode_attrs(0o640),
    });
    let mine = [put.clone(), write_op(&deleg, 0, b"new"), chmod];
    assert_eq!(holder.run(&mine).status, Nfs4Status::Ok);
    assert_eq!(size_of(&mut holder, &fh), 12);
    // a read-only OPEN of its own gets the same write delegation (not a downgrade)
    let r = open_existing(&mut holder, &dir, b"reader2", SHARE_ACCESS_READ, "w");
    assert_eq!(granted(&r).0, Some((deleg.clone(), true)));
    // another client: an attribute a writer does not change is served at once; the
    // holder's delegation stateid is not its to use
    let r = reader.run(&[put.clone(), getattr_op(a::FILEID)]);
    assert_eq!(r.status, Nfs4Status::Ok);
    let r = reader.run(&[put.clone(), read_op(&deleg, 16)]);
    assert_eq!(r.status, Nfs4Status::BadStateid);
    // its read OPEN waits for the recall
    let r = open_existing(&mut reader, &dir, b"r", SHARE_ACCESS_READ, "w");
    assert_eq!(r.status, Nfs4Status::Delay);
    let cb = holder.recv_cb();
    assert_eq!(cb.stateid, deleg);
    assert_eq!(cb.fh, fh.0);
    holder.answer_cb(&cb);
    // and so does its GETATTR of the size (the holder may have cached a change)
    let r = reader.run(&[put.clone(), getattr_op(a::SIZE)]);
    assert_eq!(r.status, Nfs4Status::Delay);
    // the holder flushes what it cached with the delegation stateid, then returns it
    let flush = write_op(&deleg, 3, b" contents, flushed");
    assert_eq!(holder.run(&[put.clone(), flush]).status, Nfs4Status::Ok);
    let r = holder.run(&[Op4::Delegreturn(deleg.clone())]);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    let r = open_existing(&mut reader, &dir, b"r", SHARE_ACCESS_READ, "w");
    assert_eq!(
        granted(&r).0,
        None,
        "the holder still has it open for write"
    );
    let sid = opened(&r).stateid.clone();
    let r = reader.run(&[put, read_op(&sid, 64)]);
    assert_eq!(read_data(&r), b"new contents, flushed");
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_granted_total"), 1.0);
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_recalled_total"), 1.0);
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_returned_total"), 1.0);
}

fn v3_getattr(v3: &mut Client, fh: &dittofs_nfs::nfs3::NfsFh3) -> dittofs_nfs::nfs3::GetattrRes {
    let args = dittofs_nfs::nfs3::GetattrArgs { object: fh.clone() };
    v3.call(dittofs_nfs::nfs3::PROGRAM, 1, &args)
}

fn v3_read(v3: &mut Client, fh: &dittofs_nfs::nfs3::NfsFh3) -> dittofs_nfs::nfs3::NfsStat3 {
    let args = dittofs_nfs::nfs3::ReadArgs {
        file: fh.clone(),
        offset: 0,
        count: 64,
    };
    let r: dittofs_nfs::nfs3::ReadRes = v3.call(dittofs_nfs::nfs3::PROGRAM, 6, &args);
    r.status()
}

#[test]
fn nfs3_read_and_getattr_wait_for_a_write_delegation() {
    use dittofs_nfs::nfs3::{NfsStat3, Res3};
    let srv = short_lease_server();
    let mut v3 = Client::connect(srv.nfs_port);
    let root = v3.mount_root();
    let file = v3.create_file(&root, "v3w");
    assert_eq!(v3.write_sync(&file, 0, b"from v3"), NfsStat3::Ok);
    let mut holder = V4::connect(srv.nfs_port, b"v3-writer-peer");
    let dir = holder.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let r = open_existing(&mut holder, &dir, b"writer", SHARE_ACCESS_BOTH, "v3w");
    let (deleg, fh) = write_delegation_of(&r);
    let w = write_op(&deleg, 0, b"from v4, longer");
    assert_eq!(holder.run(&[Op4::Putfh(fh), w]).status, Nfs4Status::Ok);
    // NFSv3 GETATTR and READ of the file wait until the holder has returned it
    assert_eq!(v3_getattr(&mut v3, &file).status(), NfsStat3::Jukebox);
    let cb = holder.recv_cb();
    assert_eq!(cb.stateid, deleg);
    assert_eq!(v3_read(&mut v3, &file), NfsStat3::Jukebox);
    // a write breaks more of the delegation, but NFSv4 recalls it once
    assert_eq!(v3.write_sync(&file, 0, b"v3 again"), NfsStat3::Jukebox);
    holder.answer_cb(&cb);
    let r = holder.run(&[Op4::Delegreturn(deleg)]);
    assert_eq!(r.status, Nfs4Status::Ok);
    let Res3::Ok(at) = v3_getattr(&mut v3, &file) else {
        panic!("GETATTR after DELEGRETURN")
    };
    assert_eq!(at.obj_attributes.size, 15);
    assert_eq!(&v3.read_ok(&file, 0, 64)[..], b"from v4, longer");
}

#[test]
fn no_write_delegation_while_another_client_has_the_file_open() {
    let srv = short_lease_server();
    let mut a = V4::connect(srv.nfs_port, b"open-a");
    let mut b = V4::connect(srv.nfs_port, b"open-b");
    let dir = a.fh_of(&[Op4::Putrootfh, lookup("export")]);
    make_file(&mut a, &dir, "o", b"x");
    // the want bits: no delegation at all, no write delegation
    let no_deleg = SHARE_ACCESS_READ | SHARE_ACCESS_WANT_NO_DELEG;
    let r = open_existing(&mut a, &dir, b"ra", no_deleg, "o");
    assert_eq!(granted(&r).0, None);
    let a_read = opened(&r).stateid.clone();
    let read_deleg_only = SHARE_ACCESS_BOTH | SHARE_ACCESS_WANT_READ_DELEG;
    let r = open_existing(&mut a, &dir, b"wa", read_deleg_only, "o");
    assert_eq!(granted(&r).0, None);
    let a_write = opened(&r).stateid.clone();
    // b opens for write while a has it open: no write delegation
    let r = open_existing(&mut b, &dir, b"wb", SHARE_ACCESS_BOTH, "o");
    assert_eq!(granted(&r).0, None);
    // a's opens gone, b's own open does not stand in its way
    for sid in [a_read, a_write] {
        let close = Op4::Close(CloseArgs {
            seqid: 0,
            stateid: sid,
        });
        let r = a.run(&[Op4::Putfh(dir.clone()), lookup("o"), close]);
        assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    }
    let r = open_existing(&mut b, &dir, b"wb2", SHARE_ACCESS_BOTH, "o");
    write_delegation_of(&r);
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_granted_total"), 1.0);
}

#[test]
fn unanswered_recall_revokes_a_write_delegation_after_the_lease() {
    let srv = short_lease_server();
    let mut holder = V4::connect(srv.nfs_port, b"silent-writer");
    let mut other = V4::connect(srv.nfs_port, b"patient-reader");
    let dir = holder.fh_of(&[Op4::Putrootfh, lookup("export")]);
    make_file(&mut holder, &dir, "u", b"data");
    let r = open_existing(&mut holder, &dir, b"writer", SHARE_ACCESS_BOTH, "u");
    let (deleg, fh) = write_delegation_of(&r);
    let read = [Op4::Putfh(fh.clone()), read_op(&Stateid4::ANONYMOUS, 16)];
    assert_eq!(other.run(&read).status, Nfs4Status::Delay, "a READ recalls");
    assert_eq!(holder.recv_cb().stateid, deleg);
    let r = revoked_after_the_lease(&srv, &mut holder, &mut other, &read);
    assert_eq!(read_data(&r), b"data");
    let w = write_op(&deleg, 0, b"late");
    let r = holder.run(&[Op4::Putfh(fh), w]);
    assert_eq!(r.status, Nfs4Status::DelegRevoked);
    let r = holder.run(&[Op4::FreeStateid(deleg)]);
    assert_eq!(r.status, Nfs4Status::Ok);
}

#[test]
fn delegations_can_be_switched_off() {
    let srv = Server::start_with(vec![(
        "DITTOFS_NFS_V4_DELEGATIONS".to_string(),
        "false".to_string(),
    )]);
    let mut v = V4::connect(srv.nfs_port, b"no-deleg");
    let dir = v.fh_of(&[Op4::Putrootfh, lookup("export")]);
    make_file(&mut v, &dir, "n", b"x");
    let r = open_existing(&mut v, &dir, b"reader", SHARE_ACCESS_READ, "n");
    assert!(delegation_of(&r).0.is_none());
    // by default read delegations only: a writer gets none
    let srv = Server::start();
    let mut v = V4::connect(srv.nfs_port, b"default-deleg");
    let dir = v.fh_of(&[Op4::Putrootfh, lookup("export")]);
    make_file(&mut v, &dir, "w", b"x");
    let r = open_existing(&mut v, &dir, b"writer", SHARE_ACCESS_BOTH, "w");
    assert_eq!(granted(&r).0, None, "no write delegation unless enabled");
    let r = open_existing(&mut v, &dir, b"reader", SHARE_ACCESS_READ, "w");
    assert!(delegation_of(&r).0.is_some(), "read delegations are on");
}

#[test]
fn replies_nobody_waits_for_are_dropped_and_counted() {
    use dittofs_nfs::XdrWrite;
    let srv = Server::start();
    let mut v = V4::connect(srv.nfs_port, b"stray-replies");
    for xid in 0..50u32 {
        let mut m = Vec::new();
        dittofs_nfs::rpc::encode_success(&mut m, 0x7700_0000 + xid);
        m.put_xdr_u32(0);
        v.c.send_raw(&dittofs_nfs::record::frame_record(&m));
    }
    // the connection still serves calls, and the replies were counted
    let r = v.run(&[Op4::Putrootfh]);
    assert_eq!(r.status, Nfs4Status::Ok);
    assert_eq!(
        metric(&srv, "dittofs_nfs4_cb_unexpected_replies_total"),
        50.0
    );
}

// ---- NFSv4.0 callback path (RFC 7530 sections 3.3.3, 10.2.1, 16.2) ----

/// A test client's NFSv4.0 callback service: a listener on 127.0.0.1.
struct CbService {
    listener: std::net::TcpListener,
}

impl CbService {
    fn new() -> CbService {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        CbService { listener }
    }

    /// Its universal address (RFC 5665): `127.0.0.1.p1.p2`.
    fn uaddr(&self) -> String {
        let port = self.listener.local_addr().unwrap().port();
        format!("127.0.0.1.{}.{}", port >> 8, port & 0xff)
    }

    /// The server's next callback connection (at most 10 s).
    fn accept(&self) -> Client {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    sock.set_nonblocking(false).unwrap();
                    return Client::from_stream(sock);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "no callback connection"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// Receives CB_NULL (program 0x4000_0000 version 1, AUTH_SYS) on `cb` and answers it.
fn answer_cb_null(cb: &mut Client) {
    let rec = cb.recv().expect("CB_NULL");
    let (call, args) = dittofs_nfs::rpc::RpcCall::decode(&rec).expect("an RPC call");
    assert_eq!((call.prog, call.vers, call.proc_num), (0x4000_0000, 1, 0));
    assert!(matches!(call.cred, dittofs_nfs::rpc::Auth::Sys { .. }));
    assert!(args.is_empty());
    let mut m = Vec::new();
    dittofs_nfs::rpc::encode_success(&mut m, call.xid);
    cb.send_raw(&dittofs_nfs::record::frame_record(&m));
}

/// A 4.0 CB_COMPOUND { CB_RECALL } as the server sends it: (xid, callback_ident,
/// stateid, truncate, fh).
fn parse_cb40(rec: &[u8]) -> (u32, u32, Stateid4, bool, Vec<u8>) {
    let (call, args) = dittofs_nfs::rpc::RpcCall::decode(rec).expect("a call from the server");
    assert_eq!((call.prog, call.vers, call.proc_num), (0x4000_0000, 1, 1));
    let mut d = Decoder::new(args);
    d.opaque(1024).unwrap(); // tag
    assert_eq!(d.u32().unwrap(), 0, "minor version 0");
    let ident = d.u32().unwrap();
    assert_eq!(
        d.u32().unwrap(),
        1,
        "CB_RECALL alone: no CB_SEQUENCE in 4.0"
    );
    assert_eq!(d.u32().unwrap(), 4, "CB_RECALL");
    let stateid = Stateid4::decode(&mut d).unwrap();
    let truncate = d.bool().unwrap();
    let fh = d.opaque(128).unwrap().to_vec();
    assert_eq!(d.remaining(), 0);
    (call.xid, ident, stateid, truncate, fh)
}

/// Answers a 4.0 CB_COMPOUND { CB_RECALL } with NFS4_OK.
fn answer_cb40(cb: &mut Client, xid: u32) {
    use dittofs_nfs::XdrWrite;
    let mut m = Vec::new();
    dittofs_nfs::rpc::encode_success(&mut m, xid);
    m.put_xdr_u32(0); // status
    m.put_xdr_opaque(b""); // tag
    m.put_xdr_u32(1);
    m.put_xdr_u32(4);
    m.put_xdr_u32(0);
    cb.send_raw(&dittofs_nfs::record::frame_record(&m));
}

/// A 4.0 OPEN of `name` in `dir` by `owner` of `id` with `seqid` and `access`:
/// PUTFH, OPEN, GETFH.
fn open40(
    c: &mut Client,
    (id, owner, seqid): (u64, &[u8], u32),
    dir: &Fh4,
    access: u32,
    claim: OpenClaim4,
) -> Reply {
    let open = Op4::Open(Box::new(OpenArgs {
        seqid,
        share_access: access,
        share_deny: 0,
        owner: StateOwner4 {
            clientid: id,
            owner: Opaque4(owner.to_vec()),
        },
        openhow: OpenHow4(None),
        claim,
    }));
    Reply::parse(compound_raw(
        c,
        0,
        &[Op4::Putfh(dir.clone()), open, Op4::Getfh],
    ))
}

fn name(n: &str) -> OpenClaim4 {
    OpenClaim4::Null(Opaque4(n.as_bytes().to_vec()))
}

/// A new 4.0 open-owner `owner` opens `file` for reading and confirms (OPEN_CONFIRM
/// with seqid 2): it got no delegation (an unconfirmed owner gets none).
fn confirmed_owner40(c: &mut Client, id: u64, owner: &[u8], dir: &Fh4, file: &str) {
    let r = open40(c, (id, owner, 1), dir, SHARE_ACCESS_READ, name(file));
    let Res::Open(o) = &r.results[1].2 else {
        panic!("OPEN: {:?}", r.results)
    };
    assert_eq!(o.rflags & OPEN4_RESULT_CONFIRM, OPEN4_RESULT_CONFIRM);
    assert!(
        delegation_of_40(&r).0.is_none(),
        "an unconfirmed owner's OPEN"
    );
    let Res::Fh(fh) = &r.results[2].2 else {
        panic!()
    };
    let confirm = Op4::OpenConfirm(OpenConfirmArgs {
        open_stateid: o.stateid.clone(),
        seqid: 2,
    });
    let r = Reply::parse(compound_raw(c, 0, &[Op4::Putfh(fh.clone()), confirm]));
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
}

/// The read delegation a 4.0 OPEN (PUTFH, OPEN, GETFH) got, and the file's handle.
fn delegation_of_40(r: &Reply) -> (Option<Stateid4>, Fh4) {
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    let (Res::Open(o), Res::Fh(fh)) = (&r.results[1].2, &r.results[2].2) else {
        panic!("{:?}", r.results)
    };
    let sid = match &o.delegation {
        OpenDelegation4::Read { stateid, recall } => {
            assert!(!recall);
            Some(stateid.clone())
        }
        OpenDelegation4::Write { .. } => panic!("a write delegation for 4.0"),
        OpenDelegation4::None => None,
    };
    (sid, fh.clone())
}

/// Polls `f` (every 50 ms, at most 10 s) until it is true.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// An NFSv4.0 client with a callback service gets read delegations once the server's
/// CB_NULL reached it; its own opens and writes do not recall them; another client's
/// OPEN for write gets NFS4ERR_DELAY and the holder a 4.0 CB_RECALL (minor version 0,
/// its callback_ident, no CB_SEQUENCE) on the callback connection, which the server
/// makes again when it drops (RENEW says NFS4ERR_CB_PATH_DOWN meanwhile); the holder
/// opens under the delegation (CLAIM_DELEGATE_CUR) and returns it without a session.
/// A 4.0 FILE_SYNC WRITE of `data` at offset 0 of `fh` with `stateid`.
fn write40(c: &mut Client, fh: &Fh4, stateid: &Stateid4, data: &'static [u8]) -> Reply {
    let write = Op4::Write(WriteArgs {
        stateid: stateid.clone(),
        offset: 0,
        stable: 2,
        data: bytes::Bytes::from_static(data),
    });
    Reply::parse(compound_raw(c, 0, &[Op4::Putfh(fh.clone()), write]))
}

/// A 4.0 delegation test's cast: the holder (a 4.0 client with callback identifier
/// `ident`, whose CB_NULL probe was answered on `cb`, with a confirmed open-owner
/// `owner` of `file`) and a 4.1 peer that made `file` ("old") in the export `dir`.
struct V40Cast {
    holder: Client,
    id: u64,
    cb: Client,
    peer: V4,
    dir: Fh4,
}

fn v40_cast(srv: &Server, svc: &CbService, ident: u32, (owner, file): (&[u8], &str)) -> V40Cast {
    let mut holder = Client::connect(srv.nfs_port);
    let name = [b"v40-holder-".as_slice(), file.as_bytes()].concat();
    let id = v40_client_cb(&mut holder, &name, 3, ("tcp", &svc.uaddr()), ident);
    let mut cb = svc.accept();
    answer_cb_null(&mut cb);
    let peer_name = [b"v40-peer-".as_slice(), file.as_bytes()].concat();
    let mut peer = V4::connect(srv.nfs_port, &peer_name);
    let dir = peer.fh_of(&[Op4::Putrootfh, lookup("export")]);
    make_file(&mut peer, &dir, file, b"old");
    confirmed_owner40(&mut holder, id, owner, &dir, file);
    V40Cast {
        holder,
        id,
        cb,
        peer,
        dir,
    }
}

#[test]
fn v40_read_delegation_is_recalled_over_the_callback_path() {
    let srv = Server::start();
    let svc = CbService::new();
    let V40Cast {
        mut holder,
        id,
        cb,
        peer: mut writer,
        dir,
    } = v40_cast(&srv, &svc, 0x5eed, (b"r", "d40"));
    // a confirmed owner's OPEN for read gets a read delegation once the path is up
    let mut seqid = 2;
    let mut open_read = |holder: &mut Client| {
        seqid += 1;
        let r = open40(
            holder,
            (id, b"r", seqid),
            &dir,
            SHARE_ACCESS_READ,
            name("d40"),
        );
        delegation_of_40(&r)
    };
    let mut found = None;
    eventually("a read delegation", || {
        let (d, fh) = open_read(&mut holder);
        found = d.map(|d| (d, fh));
        found.is_some()
    });
    let (deleg, fh) = found.expect("a read delegation");
    assert_eq!(
        open_read(&mut holder).0,
        Some(deleg.clone()),
        "the same one again"
    );
    // READ may name the delegation stateid (4.0: no session says whose it is)
    let read = Op4::Read(ReadArgs {
        stateid: deleg.clone(),
        offset: 0,
        count: 16,
    });
    let r = Reply::parse(compound_raw(
        &mut holder,
        0,
        &[Op4::Putfh(fh.clone()), read],
    ));
    let Res::Read(rd) = &r.last().2 else {
        panic!("READ with the delegation stateid: {:?}", r.results)
    };
    assert_eq!(&rd.data[..], b"old");
    let renew = |c: &mut Client| Reply::parse(compound_raw(c, 0, &[Op4::Renew(id)])).status;
    assert_eq!(renew(&mut holder), Nfs4Status::Ok);
    // the callback connection drops: RENEW reports the path down until it is back
    drop(cb);
    eventually("CB_PATH_DOWN", || {
        renew(&mut holder) == Nfs4Status::CbPathDown
    });
    let mut cb = svc.accept();
    answer_cb_null(&mut cb);
    eventually("the path up again", || renew(&mut holder) == Nfs4Status::Ok);
    // the holder's own OPEN for write and WRITE recall nothing
    seqid += 1;
    let r = open40(
        &mut holder,
        (id, b"r", seqid),
        &dir,
        SHARE_ACCESS_BOTH,
        name("d40"),
    );
    assert_eq!(
        r.status,
        Nfs4Status::Ok,
        "own OPEN for write: {:?}",
        r.results
    );
    let Res::Open(o) = &r.results[1].2 else {
        panic!()
    };
    let r = write40(&mut holder, &fh, &o.stateid, b"new");
    assert_eq!(r.status, Nfs4Status::Ok, "own WRITE: {:?}", r.results);
    // another client's OPEN for write recalls it over the callback connection
    let r = open_existing(&mut writer, &dir, b"w", SHARE_ACCESS_BOTH, "d40");
    assert_eq!(r.status, Nfs4Status::Delay);
    let (xid, ident, stateid, truncate, rfh) = parse_cb40(&cb.recv().expect("CB_RECALL"));
    assert_eq!((ident, &stateid, truncate), (0x5eed, &deleg, false));
    assert_eq!(rfh, fh.0);
    answer_cb40(&mut cb, xid);
    let r = open_existing(&mut writer, &dir, b"w", SHARE_ACCESS_BOTH, "d40");
    assert_eq!(r.status, Nfs4Status::Delay, "recalled, not returned yet");
    // opens under the delegation, then returns it (4.0: no session, no seqid)
    seqid += 1;
    let cur = OpenClaim4::DelegateCur(deleg.clone(), Opaque4(b"d40".to_vec()));
    let r = open40(&mut holder, (id, b"r", seqid), &dir, SHARE_ACCESS_READ, cur);
    assert_eq!(
        r.status,
        Nfs4Status::Ok,
        "CLAIM_DELEGATE_CUR: {:?}",
        r.results
    );
    let ret = [Op4::Putfh(fh.clone()), Op4::Delegreturn(deleg.clone())];
    let r = Reply::parse(compound_raw(&mut holder, 0, &ret));
    assert_eq!(r.status, Nfs4Status::Ok, "DELEGRETURN: {:?}", r.results);
    let r = open_existing(&mut writer, &dir, b"w", SHARE_ACCESS_BOTH, "d40");
    assert_eq!(
        r.status,
        Nfs4Status::Ok,
        "the writer's retry after DELEGRETURN"
    );
    let r = Reply::parse(compound_raw(&mut holder, 0, &ret));
    assert_eq!(r.status, Nfs4Status::BadStateid, "returned already");
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_granted_total"), 1.0);
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_recalled_total"), 1.0);
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_returned_total"), 1.0);
    assert_eq!(metric(&srv, "dittofs_nfs4_cb_probes_answered_total"), 2.0);
}

/// An NFSv4.0 client gets write delegations too (with `nfs.v4.write_delegations`): an
/// OPEN for write of a confirmed owner with a callback path gets OPEN_DELEGATE_WRITE;
/// the holder's own GETATTR of the size, which names no client, is attributed to the
/// one client of its connection and recalls nothing; it writes with the delegation's
/// stateid; another client's OPEN for read gets DELAY and the holder a CB_RECALL of
/// the write delegation; after DELEGRETURN the reader reads what the holder wrote.
#[test]
fn v40_write_delegation_is_recalled_by_a_reader() {
    let srv = Server::start_with(vec![(
        "DITTOFS_NFS_V4_WRITE_DELEGATIONS".into(),
        "true".into(),
    )]);
    let svc = CbService::new();
    let V40Cast {
        mut holder,
        id,
        mut cb,
        peer: mut reader,
        dir,
    } = v40_cast(&srv, &svc, 0x77, (b"w", "w40"));
    let mut seqid = 2;
    let mut found = None;
    eventually("a write delegation", || {
        seqid += 1;
        let r = open40(
            &mut holder,
            (id, b"w", seqid),
            &dir,
            SHARE_ACCESS_BOTH,
            name("w40"),
        );
        assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
        let (Res::Open(o), Res::Fh(fh)) = (&r.results[1].2, &r.results[2].2) else {
            panic!("{:?}", r.results)
        };
        if let OpenDelegation4::Write { stateid, .. } = &o.delegation {
            found = Some((stateid.clone(), fh.clone()));
        }
        found.is_some()
    });
    let (deleg, fh) = found.expect("a write delegation");
    let own = [Op4::Putfh(fh.clone()), getattr_op(a::SIZE)];
    let r = Reply::parse(compound_raw(&mut holder, 0, &own));
    assert_eq!(
        r.status,
        Nfs4Status::Ok,
        "the holder's own GETATTR: {:?}",
        r.results
    );
    let r = write40(&mut holder, &fh, &deleg, b"new");
    assert_eq!(
        r.status,
        Nfs4Status::Ok,
        "WRITE under the delegation: {:?}",
        r.results
    );
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_recalled_total"), 0.0);
    let r = open_existing(&mut reader, &dir, b"r", SHARE_ACCESS_READ, "w40");
    assert_eq!(
        r.status,
        Nfs4Status::Delay,
        "the reader waits for the recall"
    );
    let (xid, ident, stateid, _, rfh) = parse_cb40(&cb.recv().expect("CB_RECALL"));
    assert_eq!((ident, &stateid, &rfh), (0x77, &deleg, &fh.0));
    answer_cb40(&mut cb, xid);
    let ret = [Op4::Putfh(fh.clone()), Op4::Delegreturn(deleg.clone())];
    let r = Reply::parse(compound_raw(&mut holder, 0, &ret));
    assert_eq!(r.status, Nfs4Status::Ok, "DELEGRETURN: {:?}", r.results);
    let r = open_existing(&mut reader, &dir, b"r", SHARE_ACCESS_READ, "w40");
    assert_eq!(
        r.status,
        Nfs4Status::Ok,
        "the reader's retry after DELEGRETURN"
    );
    assert_eq!(read_file(&mut reader, &fh), b"new");
}

/// No delegation without a working callback path: a client whose callback address
/// does not answer, and clients whose SETCLIENTID gave a bogus or refused address
/// (SETCLIENTID itself succeeds; the server never dials those).
#[test]
fn v40_clients_without_a_callback_path_get_no_delegation() {
    let srv = Server::start();
    let mut writer = V4::connect(srv.nfs_port, b"v40-file-maker");
    let dir = writer.fh_of(&[Op4::Putrootfh, lookup("export")]);
    make_file(&mut writer, &dir, "n40", b"x");
    let silent = CbService::new().uaddr(); // the listener is gone: nothing answers
    let offers = [
        ("tcp", silent.as_str()),
        ("tcp", "127.0.0.1.4"),
        ("tcp", "127.0.0.1.300.1"),
        ("udp", "127.0.0.1.8.1"),
        ("tcp", "0.0.0.0.8.1"),
        ("tcp6", "::1%lo.8.1"),
        ("tcp", "localhost.8.1"),
    ];
    for (i, offer) in offers.into_iter().enumerate() {
        let mut c = Client::connect(srv.nfs_port);
        let owner = format!("v40-no-path-{i}");
        let id = v40_client_cb(&mut c, owner.as_bytes(), 4, offer, 9);
        if i == 0 {
            eventually("the failed probe", || {
                metric(&srv, "dittofs_nfs4_cb_probes_failed_total") == 1.0
            });
        }
        confirmed_owner40(&mut c, id, b"r", &dir, "n40");
        let r = open40(&mut c, (id, b"r", 3), &dir, SHARE_ACCESS_READ, name("n40"));
        assert!(delegation_of_40(&r).0.is_none(), "{offer:?}");
    }
    assert_eq!(metric(&srv, "dittofs_nfs4_delegations_granted_total"), 0.0);
    assert_eq!(
        metric(&srv, "dittofs_nfs4_cb_probes_failed_total"),
        1.0,
        "only the silent address was dialled"
    );
    assert_eq!(metric(&srv, "dittofs_nfs4_cb_probes_answered_total"), 0.0);
}

fn getxattr(name: &str) -> Op4 {
    Op4::Getxattr(Opaque4(name.as_bytes().to_vec()))
}

fn setxattr(option: SetxattrOption4, name: &str, value: &[u8]) -> Op4 {
    Op4::Setxattr(SetxattrArgs {
        option,
        key: Opaque4(name.as_bytes().to_vec()),
        value: XattrValue4(value.to_vec()),
    })
}

fn listxattrs(cookie: u64, maxcount: u32) -> Op4 {
    Op4::Listxattrs(ListxattrsArgs { cookie, maxcount })
}

fn removexattr(name: &str) -> Op4 {
    Op4::Removexattr(Opaque4(name.as_bytes().to_vec()))
}

/// The status of the last result and, when it succeeded, its body.
fn outcome(r: &Reply) -> (Nfs4Status, &Res) {
    let (_, st, body) = r.last();
    (*st, body)
}

/// A new empty file `name` in directory `dir` (mode 0644, made by the session's
/// caller), closed again; its handle.
fn new_file(v: &mut V4, dir: &Fh4, name: &str) -> Fh4 {
    let open = open_create(
        0,
        0,
        name.as_bytes(),
        CreateHow4::Guarded(mode_attrs(0o644)),
        name,
    );
    let r = v.run(&[Op4::Putfh(dir.clone()), open, Op4::Getfh]);
    let (Res::Open(o), Res::Fh(fh)) = (&r.results[2].2, &r.results[3].2) else {
        panic!("OPEN {name}: {:?}", r.results)
    };
    let close = Op4::Close(CloseArgs {
        seqid: 0,
        stateid: o.stateid.clone(),
    });
    assert_eq!(
        v.run(&[Op4::Putfh(fh.clone()), close]).status,
        Nfs4Status::Ok
    );
    fh.clone()
}

/// GETXATTR, SETXATTR (EITHER/CREATE/REPLACE, change_info4), LISTXATTRS (paging by
/// cookie, TOOSMALL, BAD_COOKIE), REMOVEXATTR and their errors over NFSv4.2; the
/// `xattr_support` attribute and the ACCESS bits; NOTSUPP in 4.1 and the pseudo root,
/// OP_ILLEGAL in 4.0; the attributes gone with the file.
#[test]
fn extended_attributes_over_nfs42() {
    let srv = Server::start();
    let mut v = V4::connect(srv.nfs_port, b"xattr-client");
    let dir = v.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let f = new_file(&mut v, &dir, "f");
    let at = |fh: &Fh4, op: Op4| vec![Op4::Putfh(fh.clone()), op];

    // xattr_support: true on the share in 4.2, false on the pseudo root, absent in 4.1
    let mask = Bitmap4::from_bits(&[a::SUPPORTED_ATTRS, a::XATTR_SUPPORT]);
    let support = |v: &mut V4, minor, first: Op4| {
        let r = v.run_minor(minor, &[first, Op4::Getattr(mask.clone())]);
        let Res::Attr(f) = outcome(&r).1 else {
            panic!("{:?}", r.status)
        };
        let mut d = Decoder::new(&f.attr_vals.0);
        let sup = Bitmap4::decode(&mut d).unwrap();
        let value = f.attrmask.has(a::XATTR_SUPPORT).then(|| d.u32().unwrap());
        (sup.has(a::XATTR_SUPPORT), value)
    };
    assert_eq!(support(&mut v, 2, Op4::Putfh(f.clone())), (true, Some(1)));
    assert_eq!(support(&mut v, 2, Op4::Putrootfh), (true, Some(0)));
    assert_eq!(support(&mut v, 1, Op4::Putfh(f.clone())), (false, None));

    // ACCESS: the xattr bits are known in 4.2 only
    let r = v.run_minor(2, &at(&f, Op4::Access(0x1ff)));
    let body = &r.raw[r.raw.len() - 8..];
    assert_eq!(
        body,
        [0, 0, 1, 0xff, 0, 0, 1, 0xcd],
        "all supported; root: READ, MODIFY, EXTEND and the three xattr bits"
    );
    let r = v.run_minor(1, &at(&f, Op4::Access(0x1ff)));
    assert_eq!(&r.raw[r.raw.len() - 8..], [0, 0, 0, 0x3f, 0, 0, 0, 0x0d]);

    // SETXATTR / GETXATTR / flags
    let r = v.run_minor(
        2,
        &at(&f, setxattr(SetxattrOption4::Create, "color", b"blue")),
    );
    let (Nfs4Status::Ok, Res::XattrChange(ci)) = outcome(&r) else {
        panic!("{:?}", r.results)
    };
    assert!(ci.atomic && ci.after > ci.before, "{ci:?}");
    let change = Bitmap4::from_bits(&[a::CHANGE]);
    let r = v.run_minor(2, &at(&f, Op4::Getattr(change)));
    let Res::Attr(now) = outcome(&r).1 else {
        panic!()
    };
    assert_eq!(attr_u64(now, &[a::CHANGE], a::CHANGE), ci.after);
    let get = |v: &mut V4, name: &str| v.run_minor(2, &at(&f, getxattr(name)));
    let r = get(&mut v, "color");
    let (Nfs4Status::Ok, Res::Xattr(val)) = outcome(&r) else {
        panic!()
    };
    assert_eq!(val.0, b"blue");
    for (op, want) in [
        (
            setxattr(SetxattrOption4::Create, "color", b"red"),
            Nfs4Status::Exist,
        ),
        (
            setxattr(SetxattrOption4::Replace, "shape", b"round"),
            Nfs4Status::NoXattr,
        ),
        (
            setxattr(SetxattrOption4::Replace, "color", b"green"),
            Nfs4Status::Ok,
        ),
        (getxattr("shape"), Nfs4Status::NoXattr),
        (removexattr("shape"), Nfs4Status::NoXattr),
        (
            setxattr(SetxattrOption4::Either, "", b"x"),
            Nfs4Status::Inval,
        ),
    ] {
        let r = v.run_minor(2, &at(&f, op.clone()));
        assert_eq!(outcome(&r).0, want, "{op:?}");
    }
    let r = get(&mut v, "color");
    let Res::Xattr(val) = outcome(&r).1 else {
        panic!()
    };
    assert_eq!(val.0, b"green");

    // the largest value, one byte more, and a reply past the slot's cache
    let big: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let r = v.run_minor(2, &at(&f, setxattr(SetxattrOption4::Either, "big", &big)));
    assert_eq!(r.status, Nfs4Status::Ok);
    let too_big = vec![1u8; 64 * 1024 + 1];
    let r = v.run_minor(
        2,
        &at(&f, setxattr(SetxattrOption4::Either, "big", &too_big)),
    );
    assert_eq!(outcome(&r).0, Nfs4Status::Xattr2Big);
    let r = get(&mut v, "big");
    let Res::Xattr(val) = outcome(&r).1 else {
        panic!("{:?}", r.status)
    };
    assert_eq!(val.0, big);
    let r = v.run_with_cache(2, &at(&f, getxattr("big")));
    assert_eq!(r.status, Nfs4Status::RepTooBigToCache);

    // LISTXATTRS: names in byte order, paged by cookie within maxcount
    for name in ["b1", "b2", "b3"] {
        let r = v.run_minor(2, &at(&f, setxattr(SetxattrOption4::Either, name, b"")));
        assert_eq!(r.status, Nfs4Status::Ok);
    }
    let want = ["b1", "b2", "b3", "big", "color"];
    let list = |v: &mut V4, cookie, maxcount| {
        let r = v.run_minor(2, &at(&f, listxattrs(cookie, maxcount)));
        match outcome(&r) {
            (Nfs4Status::Ok, Res::XattrList(l)) => Ok(l.clone()),
            (st, _) => Err(st),
        }
    };
    let all = list(&mut v, 0, 4096).unwrap();
    let names: Vec<&[u8]> = all.names.0.iter().map(|n| n.0.as_slice()).collect();
    assert_eq!(names, want.map(str::as_bytes));
    assert!(all.eof);
    // 16 fixed bytes + two 8-byte names per page
    let (mut cookie, mut paged) = (0, Vec::new());
    loop {
        let page = list(&mut v, cookie, 16 + 16).unwrap();
        assert!(page.names.0.len() <= 2, "{page:?}");
        paged.extend(page.names.0.iter().map(|n| n.0.clone()));
        cookie = page.cookie;
        if page.eof {
            break;
        }
    }
    assert_eq!(paged, want.map(|n| n.as_bytes().to_vec()));
    assert_eq!(list(&mut v, 0, 16 + 7), Err(Nfs4Status::TooSmall));
    assert_eq!(list(&mut v, 0, 8), Err(Nfs4Status::TooSmall));
    assert_eq!(list(&mut v, 1 << 40, 4096), Err(Nfs4Status::BadCookie));
    let end = list(&mut v, 5, 4096).unwrap();
    assert!(end.names.0.is_empty() && end.eof);

    // REMOVEXATTR
    let r = v.run_minor(2, &at(&f, removexattr("b2")));
    let (Nfs4Status::Ok, Res::XattrChange(ci)) = outcome(&r) else {
        panic!()
    };
    assert!(ci.atomic && ci.after > ci.before);
    assert_eq!(list(&mut v, 0, 4096).unwrap().names.0.len(), 4);

    // permissions: another user reads a 0644 file's attributes, cannot change them
    v.c.cred = (1000, 1000, vec![]);
    assert_eq!(outcome(&get(&mut v, "color")).0, Nfs4Status::Ok);
    let r = v.run_minor(2, &at(&f, setxattr(SetxattrOption4::Either, "color", b"x")));
    assert_eq!(outcome(&r).0, Nfs4Status::Access);
    let r = v.run_minor(2, &at(&f, Op4::Access(0x1ff)));
    assert_eq!(
        &r.raw[r.raw.len() - 4..],
        [0, 0, 1, 0x41],
        "READ + XAREAD + XALIST"
    );
    v.c.cred = (0, 0, vec![]);
    // a symlink carries none
    let link = Op4::Create(CreateArgs {
        objtype: CreateType4::Link(Opaque4(b"f".to_vec())),
        objname: Opaque4(b"l".to_vec()),
        createattrs: SetAttrs4::default().to_fattr(),
    });
    let r = v.run_minor(
        2,
        &[
            Op4::Putfh(dir.clone()),
            link,
            setxattr(SetxattrOption4::Either, "k", b"v"),
        ],
    );
    assert_eq!(outcome(&r).0, Nfs4Status::Perm);

    // the pseudo root has none; 4.1 and 4.0 do not have the operations
    let r = v.run_minor(2, &[Op4::Putrootfh, getxattr("color")]);
    assert_eq!(outcome(&r).0, Nfs4Status::NotSupp);
    let r = v.run_minor(1, &at(&f, getxattr("color")));
    assert_eq!((outcome(&r).0, r.last().0), (Nfs4Status::NotSupp, 72));
    let r = v.run_minor(1, &at(&f, listxattrs(0, 4096)));
    assert_eq!(outcome(&r).0, Nfs4Status::NotSupp);
    let mut c40 = Client::connect(srv.nfs_port);
    let r = Reply::parse(compound_raw(&mut c40, 0, &at(&f, removexattr("color"))));
    assert_eq!((r.status, r.last().0), (Nfs4Status::OpIllegal, 10044));

    // the attributes go with the file: a new file of the same name has none
    let rm = Op4::Remove(Opaque4(b"f".to_vec()));
    assert_eq!(v.run(&[Op4::Putfh(dir.clone()), rm]).status, Nfs4Status::Ok);
    let r = v.run_minor(2, &at(&f, getxattr("color")));
    assert_eq!(outcome(&r).0, Nfs4Status::Stale);
    let f2 = new_file(&mut v, &dir, "f");
    let r = v.run_minor(2, &at(&f2, listxattrs(0, 4096)));
    let (Nfs4Status::Ok, Res::XattrList(l)) = outcome(&r) else {
        panic!()
    };
    assert!(l.names.0.is_empty() && l.eof);
}

/// OPEN of the current file (`claim`: CLAIM_FH or CLAIM_PREVIOUS) for reading and writing.
fn open_claim(clientid: u64, owner: &[u8], claim: OpenClaim4) -> Op4 {
    Op4::Open(Box::new(OpenArgs {
        seqid: 0,
        share_access: SHARE_ACCESS_BOTH,
        share_deny: 0,
        owner: StateOwner4 {
            clientid,
            owner: Opaque4(owner.to_vec()),
        },
        openhow: OpenHow4(None),
        claim,
    }))
}

/// An exclusive LOCK of `offset`/`length` by a new lock-owner of `open`.
fn lock_new(clientid: u64, open: &Stateid4, offset: u64, reclaim: bool) -> Op4 {
    Op4::Lock(LockArgs {
        locktype: 2,
        reclaim,
        offset,
        length: 100,
        locker: Locker4::New {
            open_seqid: 0,
            open_stateid: open.clone(),
            lock_seqid: 0,
            lock_owner: StateOwner4 {
                clientid,
                owner: Opaque4(b"lock-owner".to_vec()),
            },
        },
    })
}

fn open_stateid(r: &Reply) -> Stateid4 {
    match &r.last().2 {
        Res::Open(o) => o.stateid.clone(),
        other => panic!("OPEN: {:?} {other:?}", r.status),
    }
}

/// An NFSv4.0 client: SETCLIENTID (+ CONFIRM) of `owner` with `verifier`; its ID.
fn v40_client_with(c: &mut Client, owner: &[u8], verifier: u8) -> u64 {
    v40_client_cb(c, owner, verifier, ("tcp", "127.0.0.1.4.1"), 1)
}

/// [`v40_client_with`] offering the callback address `(netid, uaddr)` and `ident`.
fn v40_client_cb(
    c: &mut Client,
    owner: &[u8],
    verifier: u8,
    (netid, uaddr): (&str, &str),
    ident: u32,
) -> u64 {
    let r = Reply::parse(compound_raw(
        c,
        0,
        &[Op4::SetClientId(Box::new(SetClientIdArgs {
            client: ClientOwner4 {
                verifier: [verifier; 8],
                ownerid: Opaque4(owner.to_vec()),
            },
            callback: CbClient4 {
                cb_program: 0x4000_0000,
                r_netid: Opaque4(netid.as_bytes().to_vec()),
                r_addr: Opaque4(uaddr.as_bytes().to_vec()),
            },
            callback_ident: ident,
        }))],
    ));
    let Res::SetClientId(sc) = &r.last().2 else {
        panic!("SETCLIENTID: {:?}", r.status)
    };
    let confirm = Op4::SetClientIdConfirm(SetClientIdConfirmArgs {
        clientid: sc.clientid,
        confirm: sc.confirm,
    });
    assert_eq!(
        Reply::parse(compound_raw(c, 0, &[confirm])).status,
        Nfs4Status::Ok
    );
    sc.clientid
}

/// Clients' state across restarts (RFC 8881 section 8.4): records written before the
/// first OPEN is answered survive SIGKILL; a grace period only when clients held state;
/// reclaims only by them (4.1 and 4.0), new OPEN/LOCK/LOCKT refused meanwhile; the
/// grace period ends at its time or once every recorded client sent RECLAIM_COMPLETE;
/// a reclaimed lock refuses an NLM lock; records of clients that did not come back, of
/// destroyed clients and of restarted ones are gone at the next restart.
/// The 4.0 client `e` on `c40` reclaims its open of `dir`/re (OPEN CLAIM_PREVIOUS).
fn reclaim40(c40: &mut Client, dir: &Fh4, e: u64) -> Reply {
    Reply::parse(compound_raw(
        c40,
        0,
        &[
            Op4::Putfh(dir.clone()),
            lookup("re"),
            open_claim(e, b"oe", OpenClaim4::Previous(0)),
        ],
    ))
}

#[test]
fn state_reclaimed_after_a_restart() {
    let grace = (
        "DITTOFS_NFS_LOCKS_GRACE_SECONDS".to_string(),
        "8".to_string(),
    );
    let mut srv = Server::start_with(vec![grace]);
    let port = srv.nfs_port;
    let create = |id, owner: &[u8], name| {
        let how = CreateHow4::Unchecked(SetAttrs4::default().to_fattr());
        open_create(0, id, owner, how, name)
    };
    // fresh data directory: no grace period, state is granted at once
    let mut a = V4::connect(port, b"reclaimer");
    let dir = a.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let r = a.run(&[Op4::Putfh(dir.clone()), create(0, b"oa", "rc"), Op4::Getfh]);
    let (Res::Open(o), Res::Fh(fh)) = (&r.results[2].2, &r.results[3].2) else {
        panic!("{:?}", r.status)
    };
    let sid = o.stateid.clone();
    let fh = fh.clone();
    let r = a.run(&[Op4::Putfh(fh.clone()), lock_new(a.clientid, &sid, 0, false)]);
    assert_eq!(r.status, Nfs4Status::Ok, "LOCK without a grace period");
    let mut d = V4::connect(port, b"gone-for-good");
    let r = d.run(&[Op4::Putfh(dir.clone()), create(0, b"od", "rd")]);
    assert_eq!(r.status, Nfs4Status::Ok);
    let mut c40 = Client::connect(port);
    let e = v40_client_with(&mut c40, b"a 4.0 reclaimer", 1);
    let r = Reply::parse(compound_raw(
        &mut c40,
        0,
        &[Op4::Putfh(dir.clone()), create(e, b"oe", "re")],
    ));
    assert_eq!(r.status, Nfs4Status::Ok);

    srv.crash();
    srv.spawn();
    // the recorded clients come back (same owners and verifiers, new client IDs)
    let mut a = V4::connect(port, b"reclaimer");
    let prev = |id| open_claim(id, b"oa", OpenClaim4::Previous(0));
    let r = a.run(&[
        Op4::Putfh(fh.clone()),
        open_claim(a.clientid, b"oa", OpenClaim4::Fh),
    ]);
    assert_eq!(
        r.status,
        Nfs4Status::Grace,
        "a new OPEN in the grace period"
    );
    let lockt = Op4::Lockt(LocktArgs {
        locktype: 1,
        offset: 0,
        length: 1,
        owner: StateOwner4 {
            clientid: a.clientid,
            owner: Opaque4(b"t".to_vec()),
        },
    });
    assert_eq!(
        a.run(&[Op4::Putfh(fh.clone()), lockt.clone()]).status,
        Nfs4Status::Grace
    );
    let mut s = V4::connect(port, b"never-had-state");
    let r = s.run(&[Op4::Putfh(fh.clone()), prev(s.clientid)]);
    assert_eq!(
        r.status,
        Nfs4Status::ReclaimBad,
        "a client without a record"
    );
    // a delegation is not reclaimed: the open is, without it (the client then sends the
    // locks it kept under the delegation as reclaims)
    let deleg = open_claim(a.clientid, b"oa", OpenClaim4::Previous(2));
    let r = a.run(&[Op4::Putfh(fh.clone()), deleg]);
    assert_eq!(r.status, Nfs4Status::Ok, "the open of a write delegation");
    let Res::Open(o) = &r.last().2 else {
        panic!("{:?}", r.status)
    };
    assert!(
        matches!(o.delegation, OpenDelegation4::None),
        "no delegation on a reclaim: {:?}",
        o.delegation
    );
    let r = a.run(&[Op4::Putfh(fh.clone()), prev(a.clientid)]);
    let sid = open_stateid(&r);
    let r = a.run(&[Op4::Putfh(fh.clone()), lock_new(a.clientid, &sid, 0, true)]);
    assert_eq!(r.status, Nfs4Status::Ok, "LOCK reclaim");
    let r = a.run(&[
        Op4::Putfh(fh.clone()),
        lock_new(a.clientid, &sid, 500, false),
    ]);
    assert_eq!(
        r.status,
        Nfs4Status::Grace,
        "a new LOCK in the grace period"
    );
    // the 4.0 client reclaims after SETCLIENTID/CONFIRM with its id; restarted (a new
    // verifier), it loses what it had, record included
    let mut c40 = Client::connect(port);
    let e = v40_client_with(&mut c40, b"a 4.0 reclaimer", 1);
    let r = reclaim40(&mut c40, &dir, e);
    assert_eq!(r.status, Nfs4Status::Ok, "4.0 reclaim");
    v40_client_with(&mut c40, b"a 4.0 reclaimer", 2);
    // RECLAIM_COMPLETE: no more reclaims by a; the grace period goes on for d
    assert_eq!(a.run(&[Op4::ReclaimComplete(false)]).status, Nfs4Status::Ok);
    let r = a.run(&[Op4::ReclaimComplete(false)]);
    assert_eq!(r.status, Nfs4Status::CompleteAlready);
    let r = a.run(&[Op4::Putfh(fh.clone()), prev(a.clientid)]);
    assert_eq!(
        r.status,
        Nfs4Status::NoGrace,
        "a reclaim after RECLAIM_COMPLETE"
    );
    let mut nlm = NlmClient::connect(port, "v3-host", 7);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // (no delegation: the NLM lock below would recall it, a call this client does not
    // answer; the reclaimed lock is what must refuse it)
    let mut o2 = open_claim(a.clientid, b"o2", OpenClaim4::Fh);
    if let Op4::Open(o) = &mut o2 {
        o.share_access |= SHARE_ACCESS_WANT_NO_DELEG;
    }
    loop {
        let r = a.run(&[Op4::Putfh(fh.clone()), o2.clone()]);
        if r.status == Nfs4Status::Ok {
            break;
        }
        assert_eq!(r.status, Nfs4Status::Grace);
        assert!(
            std::time::Instant::now() < deadline,
            "the grace period never ends"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // after the grace period: reclaims NO_GRACE, the reclaimed lock holds against NLM
    let mut d = V4::connect(port, b"gone-for-good");
    let r = d.run(&[Op4::Putfh(fh.clone()), prev(d.clientid)]);
    assert_eq!(
        r.status,
        Nfs4Status::NoGrace,
        "a reclaim after the grace period"
    );
    assert_eq!(nlm.lock(&fh.0, (50, 10), true), Nlm4Stat::Denied);
    assert_eq!(
        a.run(&[Op4::Putfh(fh.clone()), lockt]).status,
        Nfs4Status::Denied
    );

    srv.crash();
    srv.spawn();
    // d did not reclaim and e restarted: their records are gone; a's is kept
    let mut d = V4::connect(port, b"gone-for-good");
    let r = d.run(&[Op4::Putfh(fh.clone()), prev(d.clientid)]);
    assert_eq!(
        r.status,
        Nfs4Status::ReclaimBad,
        "the record of a client that never came back"
    );
    let mut c40 = Client::connect(port);
    let e = v40_client_with(&mut c40, b"a 4.0 reclaimer", 2);
    let r = reclaim40(&mut c40, &dir, e);
    assert_eq!(
        r.status,
        Nfs4Status::ReclaimBad,
        "the record of a restarted client"
    );
    let mut a = V4::connect(port, b"reclaimer");
    open_stateid(&a.run(&[Op4::Putfh(fh.clone()), prev(a.clientid)]));
    // a was the only recorded client: its RECLAIM_COMPLETE ends the grace period at once
    assert_eq!(a.run(&[Op4::ReclaimComplete(false)]).status, Nfs4Status::Ok);
    let r = d.run(&[
        Op4::Putfh(fh.clone()),
        open_claim(d.clientid, b"od", OpenClaim4::Fh),
    ]);
    assert_eq!(
        r.status,
        Nfs4Status::Ok,
        "a new OPEN once every client reclaimed"
    );
    // destroyed clients leave no record
    for v in [&mut a, &mut d] {
        assert_eq!(
            compound(&mut v.c, &[Op4::DestroySession(v.sid)]).status,
            Nfs4Status::Ok
        );
        let r = compound(&mut v.c, &[Op4::DestroyClientid(v.clientid)]);
        assert_eq!(r.status, Nfs4Status::Ok);
    }

    srv.crash();
    srv.spawn();
    // no records: no grace period, and nothing to reclaim
    let mut a = V4::connect(port, b"reclaimer");
    let r = a.run(&[
        Op4::Putfh(fh.clone()),
        open_claim(a.clientid, b"oa", OpenClaim4::Fh),
    ]);
    assert_eq!(r.status, Nfs4Status::Ok, "no grace period without records");
    let r = a.run(&[Op4::Putfh(fh.clone()), prev(a.clientid)]);
    assert_eq!(r.status, Nfs4Status::NoGrace);
}

/// Creates groups `(name, gid)` and users `(name, uid, gid)` through the control API.
fn add_identity(srv: &Server, groups: &[(&str, u32)], users: &[(&str, u32, u32)]) {
    use dittofs_proto::v1 as pb;
    let token = std::fs::read_to_string(srv.data.join("control-token")).unwrap();
    let bearer: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", token.trim()).parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("http://127.0.0.1:{}", srv.control_port);
        let ch = tonic::transport::Channel::from_shared(url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let auth = move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", bearer.clone());
            Ok(r)
        };
        let mut c = pb::control_service_client::ControlServiceClient::with_interceptor(ch, auth);
        for &(name, gid) in groups {
            let g = pb::CreateGroupRequest {
                name: name.into(),
                gid: Some(gid),
            };
            c.create_group(g).await.unwrap();
        }
        for &(name, uid, gid) in users {
            let user = pb::UserSpec {
                name: name.into(),
                uid: Some(uid),
                gid: Some(gid),
                groups: vec![],
                disabled: false,
                password: "pw-not-used-here".into(),
            };
            let u = pb::CreateUserRequest { user: Some(user) };
            c.create_user(u).await.unwrap();
        }
    });
}

/// The `owner` and `owner_group` strings of `fh`.
fn owners_of(v: &mut V4, fh: &Fh4) -> (String, String) {
    let mask = Bitmap4::from_bits(&[a::OWNER, a::OWNER_GROUP]);
    let r = v.run(&[Op4::Putfh(fh.clone()), Op4::Getattr(mask.clone())]);
    let Res::Attr(f) = &r.last().2 else {
        panic!("GETATTR: {:?}", r.status)
    };
    assert_eq!(f.attrmask, mask);
    let mut d = Decoder::new(&f.attr_vals.0);
    let owner = String::from_utf8(d.opaque(1024).unwrap().to_vec()).unwrap();
    let group = String::from_utf8(d.opaque(1024).unwrap().to_vec()).unwrap();
    assert!(d.is_empty());
    (owner, group)
}

/// Owner attributes for SETATTR, CREATE and OPEN.
fn owner_attrs(owner: Option<&str>, group: Option<&str>) -> Fattr4 {
    SetAttrs4 {
        owner: owner.map(|o| o.as_bytes().to_vec()),
        group: group.map(|g| g.as_bytes().to_vec()),
        ..Default::default()
    }
    .to_fattr()
}

/// SETATTR of the owner and/or group of `fh` (anonymous stateid); the status.
fn chown(v: &mut V4, fh: &Fh4, owner: Option<&str>, group: Option<&str>) -> Nfs4Status {
    let set = Op4::Setattr(SetattrArgs {
        stateid: Stateid4::ANONYMOUS,
        attrs: owner_attrs(owner, group),
    });
    v.run(&[Op4::Putfh(fh.clone()), set]).status
}

/// The owner strings READDIR of `dir` reports for entry `name`.
fn listed_owners(v: &mut V4, dir: &Fh4, name: &str) -> (String, String) {
    let mask = Bitmap4::from_bits(&[a::OWNER, a::OWNER_GROUP]);
    let rd = Op4::Readdir(ReaddirArgs {
        cookie: 0,
        cookieverf: [0; 8],
        dircount: 8192,
        maxcount: 32768,
        attr_request: mask,
    });
    let r = v.run(&[Op4::Putfh(dir.clone()), rd]);
    let Res::Readdir(l) = &r.last().2 else {
        panic!("READDIR: {:?}", r.status)
    };
    let e = l.entries.iter().find(|e| e.name.0 == name.as_bytes());
    let mut d = Decoder::new(&e.expect(name).attrs.attr_vals.0);
    let mut text = || String::from_utf8(d.opaque(1024).unwrap().to_vec()).unwrap();
    (text(), text())
}

fn pair(o: &str, g: &str) -> (String, String) {
    (o.to_owned(), g.to_owned())
}

/// With `nfs.v4.id_domain`, owners with a name in the identity store are `name@domain`
/// in GETATTR and READDIR and are accepted so by SETATTR, OPEN and CREATE (the domain
/// compared case-insensitively), numeric strings always; other domains and unknown names
/// are NFS4ERR_BADOWNER and change nothing; ids without a name stay numeric, and names
/// follow the identity store while the server runs.
#[test]
fn owners_are_names_at_the_id_domain() {
    let srv = Server::start_with(vec![(
        "DITTOFS_NFS_V4_ID_DOMAIN".into(),
        "example.com".into(),
    )]);
    let mut v = V4::connect(srv.nfs_port, b"idmap-client");
    let dir = v.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let f = new_file(&mut v, &dir, "f");
    // no names yet: numbers
    assert_eq!(owners_of(&mut v, &f), pair("0", "0"));
    assert_eq!(
        chown(&mut v, &f, Some("alice@example.com"), None),
        Nfs4Status::BadOwner
    );

    add_identity(&srv, &[("staff", 1600)], &[("alice", 1500, 1600)]);
    let alice = pair("alice@example.com", "staff@example.com");
    assert_eq!(
        chown(
            &mut v,
            &f,
            Some("alice@example.com"),
            Some("staff@example.com")
        ),
        Nfs4Status::Ok
    );
    assert_eq!(owners_of(&mut v, &f), alice);
    assert_eq!(listed_owners(&mut v, &dir, "f"), alice);

    // refused strings change nothing
    for (owner, group) in [
        (Some("bob@example.com"), None),
        (Some("alice@other.org"), None),
        (Some("alice"), None),
        (Some(""), None),
        (Some("01500"), None),
        (None, Some("alice@example.com")),
        (Some("0"), Some("nobody@example.com")),
    ] {
        assert_eq!(
            chown(&mut v, &f, owner, group),
            Nfs4Status::BadOwner,
            "{owner:?} {group:?}"
        );
        assert_eq!(owners_of(&mut v, &f), alice, "{owner:?} {group:?}");
    }

    // numbers are always accepted; ids without a name read back as numbers
    assert_eq!(chown(&mut v, &f, Some("4242"), Some("77")), Nfs4Status::Ok);
    assert_eq!(owners_of(&mut v, &f), pair("4242", "77"));
    assert_eq!(
        chown(&mut v, &f, Some("1500"), Some("1600")),
        Nfs4Status::Ok
    );
    assert_eq!(owners_of(&mut v, &f), alice);
    assert_eq!(chown(&mut v, &f, Some("0"), None), Nfs4Status::Ok);
    assert_eq!(owners_of(&mut v, &f), pair("0", "staff@example.com"));
    assert_eq!(
        chown(&mut v, &f, Some("alice@EXAMPLE.Com"), None),
        Nfs4Status::Ok
    );
    assert_eq!(owners_of(&mut v, &f), alice);

    // create attributes: OPEN and CREATE take names too
    let open = open_create(
        0,
        v.clientid,
        b"idmap-open",
        CreateHow4::Guarded(owner_attrs(Some("alice@example.com"), None)),
        "g",
    );
    let r = v.run(&[Op4::Putfh(dir.clone()), open, Op4::Getfh]);
    let Res::Fh(g) = &r.last().2 else {
        panic!("OPEN: {:?}", r.status)
    };
    assert_eq!(owners_of(&mut v, g).0, "alice@example.com");
    let mkdir = |name: &str, group: &str| {
        Op4::Create(CreateArgs {
            objtype: CreateType4::Dir,
            objname: Opaque4(name.as_bytes().to_vec()),
            createattrs: owner_attrs(None, Some(group)),
        })
    };
    let r = v.run(&[Op4::Putfh(dir.clone()), mkdir("d", "staff@example.com")]);
    assert_eq!(r.status, Nfs4Status::Ok);
    assert_eq!(listed_owners(&mut v, &dir, "d").1, "staff@example.com");
    let r = v.run(&[Op4::Putfh(dir.clone()), mkdir("e", "staff@other.org")]);
    assert_eq!(r.status, Nfs4Status::BadOwner);
    let open = open_create(
        0,
        v.clientid,
        b"idmap-open2",
        CreateHow4::Guarded(owner_attrs(Some("bob@example.com"), None)),
        "h",
    );
    let r = v.run(&[Op4::Putfh(dir.clone()), open]);
    assert_eq!(r.status, Nfs4Status::BadOwner);
    let r = v.run(&[Op4::Putfh(dir.clone()), lookup("h")]);
    assert_eq!(
        r.status,
        Nfs4Status::NoEnt,
        "a refused OPEN creates nothing"
    );

    // a user added while serving is known at the next call
    add_identity(&srv, &[], &[("bob", 1501, 1600)]);
    assert_eq!(
        chown(&mut v, &f, Some("bob@example.com"), None),
        Nfs4Status::Ok
    );
    assert_eq!(
        owners_of(&mut v, &f),
        pair("bob@example.com", "staff@example.com")
    );
}

/// Without `nfs.v4.id_domain` owners are numeric strings both ways, even for ids with a
/// name in the identity store; `name@domain` is NFS4ERR_BADOWNER.
#[test]
fn owners_stay_numeric_without_an_id_domain() {
    let srv = Server::start();
    add_identity(&srv, &[("staff", 1600)], &[("alice", 1500, 1600)]);
    let mut v = V4::connect(srv.nfs_port, b"numeric-client");
    let dir = v.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let f = new_file(&mut v, &dir, "f");
    assert_eq!(
        chown(&mut v, &f, Some("1500"), Some("1600")),
        Nfs4Status::Ok
    );
    assert_eq!(owners_of(&mut v, &f), pair("1500", "1600"));
    assert_eq!(listed_owners(&mut v, &dir, "f"), pair("1500", "1600"));
    for owner in ["alice@example.com", "alice", "01500"] {
        assert_eq!(
            chown(&mut v, &f, Some(owner), None),
            Nfs4Status::BadOwner,
            "{owner}"
        );
    }
    assert_eq!(owners_of(&mut v, &f), pair("1500", "1600"));
}

// ---- courtesy clients (RFC 8881 section 8.4.3) and CB_NOTIFY_LOCK (20.11) ----

/// A server with a 3 s lease, no NLM grace period and no delegations (these tests are
/// about locks and opens; a write delegation of one client would be recalled first by
/// another's OPEN or LOCK, a callback the test clients here do not answer).
fn courtesy_server() -> Server {
    Server::start_with(vec![
        ("DITTOFS_NFS_V4_LEASE_SECONDS".to_string(), "3".to_string()),
        (
            "DITTOFS_NFS_LOCKS_GRACE_SECONDS".to_string(),
            "0".to_string(),
        ),
        (
            "DITTOFS_NFS_V4_DELEGATIONS".to_string(),
            "false".to_string(),
        ),
    ])
}

/// OPEN creating `name` in `dir` (read and write, denying `deny`) by `owner`: its
/// stateid and the file's handle.
fn open_deny(v: &mut V4, dir: &Fh4, owner: &[u8], deny: u32, name: &str) -> (Stateid4, Fh4) {
    let open = Op4::Open(Box::new(OpenArgs {
        seqid: 0,
        share_access: SHARE_ACCESS_BOTH,
        share_deny: deny,
        owner: StateOwner4 {
            clientid: v.clientid,
            owner: Opaque4(owner.to_vec()),
        },
        openhow: OpenHow4(Some(CreateHow4::Unchecked(mode_attrs(0o666)))),
        claim: OpenClaim4::Null(Opaque4(name.as_bytes().to_vec())),
    }));
    let r = v.run(&[Op4::Putfh(dir.clone()), open, Op4::Getfh]);
    assert_eq!(r.status, Nfs4Status::Ok, "OPEN {name}: {:?}", r.results);
    let (Res::Open(o), Res::Fh(fh)) = (&r.results[2].2, &r.results[3].2) else {
        panic!("{:?}", r.results)
    };
    (o.stateid.clone(), fh.clone())
}

/// A LOCK of `locktype` on `fh`, 100 bytes at `offset`, by lock-owner `owner` of `v`
/// (new to the server or not) through `open`.
fn lock_by(
    v: &mut V4,
    fh: &Fh4,
    open: &Stateid4,
    owner: &[u8],
    locktype: u32,
    offset: u64,
) -> Reply {
    let lock = Op4::Lock(LockArgs {
        locktype,
        reclaim: false,
        offset,
        length: 100,
        locker: Locker4::New {
            open_seqid: 0,
            open_stateid: open.clone(),
            lock_seqid: 0,
            lock_owner: StateOwner4 {
                clientid: v.clientid,
                owner: Opaque4(owner.to_vec()),
            },
        },
    });
    v.run(&[Op4::Putfh(fh.clone()), lock])
}

/// Sleeps past the lease (3 s) while `others` keep renewing theirs.
fn outlive_lease(others: &mut [&mut V4]) {
    for _ in 0..9 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        for v in others.iter_mut() {
            assert_eq!(v.run(&[]).status, Nfs4Status::Ok);
        }
    }
}

/// A client silent past its lease keeps its lock while nobody conflicts (another
/// client's LOCK of another file does not release it), goes on with it once it renews,
/// and loses everything when, silent again, its lock is in the way of another client's
/// LOCK, which then succeeds.
#[test]
fn courtesy_client_keeps_its_lock_until_someone_conflicts() {
    let srv = courtesy_server();
    let mut a = V4::connect(srv.nfs_port, b"courtesy-a");
    let mut b = V4::connect(srv.nfs_port, b"courtesy-b");
    let dir = a.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let (oa, f1) = open_deny(&mut a, &dir, b"oa", 0, "c1");
    let r = lock_by(&mut a, &f1, &oa, b"la", WRITE_LT, 0);
    let Res::Stateid(la) = &r.last().2 else {
        panic!("LOCK: {:?}", r.status)
    };
    let (ob2, f2) = open_deny(&mut b, &dir, b"ob", 0, "c2");
    // A falls silent past its lease; B locks another file: nobody conflicts with A
    outlive_lease(&mut [&mut b]);
    let r = lock_by(&mut b, &f2, &ob2, b"lb", WRITE_LT, 0);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    // A comes back: its session, its lock stateid and its lock are still there
    let existing = Op4::Lock(LockArgs {
        locktype: WRITE_LT,
        reclaim: false,
        offset: 100,
        length: 100,
        locker: Locker4::Existing {
            lock_stateid: la.clone(),
            lock_seqid: 0,
        },
    });
    let r = a.run(&[Op4::Putfh(f1.clone()), existing]);
    assert_eq!(
        r.status,
        Nfs4Status::Ok,
        "the courtesy client goes on: {:?}",
        r.results
    );
    let (ob1, _) = open_deny(&mut b, &dir, b"ob", 0, "c1");
    let r = lock_by(&mut b, &f1, &ob1, b"lb", WRITE_LT, 50);
    let Res::Denied(d) = &r.last().2 else {
        panic!("A renews: its lock stands: {:?}", r.status)
    };
    assert_eq!((d.offset, d.owner.clientid), (0, a.clientid));
    assert_eq!(metric(&srv, "dittofs_nfs4_courtesy_released_total"), 0.0);
    // A silent again: B's conflicting LOCK goes through (at once, or after DELAYs)
    outlive_lease(&mut [&mut b]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = lock_by(&mut b, &f1, &ob1, b"lb", WRITE_LT, 50);
        if r.status == Nfs4Status::Ok {
            break;
        }
        assert_eq!(r.status, Nfs4Status::Delay, "{:?}", r.results);
        assert!(std::time::Instant::now() < deadline, "never released");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(metric(&srv, "dittofs_nfs4_courtesy_released_total"), 1.0);
    // A's state is gone with its client
    assert_eq!(a.run(&[]).status, Nfs4Status::BadSession);
    let r = compound(&mut a.c, &[Op4::DestroyClientid(a.clientid)]);
    assert_eq!(r.status, Nfs4Status::StaleClientId);
    // B's own lock of c2 stands
    let lockt = Op4::Lockt(LocktArgs {
        locktype: READ_LT,
        offset: 0,
        length: 10,
        owner: StateOwner4 {
            clientid: b.clientid,
            owner: Opaque4(b"someone-else".to_vec()),
        },
    });
    assert_eq!(b.run(&[Op4::Putfh(f2), lockt]).status, Nfs4Status::Denied);
}

/// Courtesy clients released by an NFSv3 client's NLM LOCK (their byte-range lock) and
/// by an NFSv4 OPEN (their deny mode): both succeed at once.
#[test]
fn nlm_lock_and_open_release_courtesy_clients() {
    let srv = courtesy_server();
    let mut a = V4::connect(srv.nfs_port, b"courtesy-locker");
    let mut c = V4::connect(srv.nfs_port, b"courtesy-denier");
    let mut b = V4::connect(srv.nfs_port, b"courtesy-opener");
    let dir = a.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let (oa, f3) = open_deny(&mut a, &dir, b"oa", 0, "c3");
    let r = lock_by(&mut a, &f3, &oa, b"la", WRITE_LT, 0);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    // C opens c4 denying writers
    open_deny(&mut c, &dir, b"oc", SHARE_ACCESS_WRITE, "c4");
    let mut nlm = NlmClient::connect(srv.nfs_port, "v3-host", 7);
    assert_eq!(
        nlm.lock(&f3.0, (50, 10), true),
        Nlm4Stat::Denied,
        "A renews"
    );
    let r = open_existing(&mut b, &dir, b"ob", SHARE_ACCESS_BOTH, "c4");
    assert_eq!(r.status, Nfs4Status::ShareDenied, "C renews");
    outlive_lease(&mut [&mut b]);
    // both silent past their lease: the NLM LOCK and the OPEN release them
    assert_eq!(nlm.lock(&f3.0, (50, 10), true), Nlm4Stat::Granted);
    assert_eq!(a.run(&[]).status, Nfs4Status::BadSession);
    let r = open_existing(&mut b, &dir, b"ob", SHARE_ACCESS_BOTH, "c4");
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    assert_eq!(c.run(&[]).status, Nfs4Status::BadSession);
    assert_eq!(metric(&srv, "dittofs_nfs4_courtesy_released_total"), 2.0);
}

/// A CB_COMPOUND from the server, decoded with the project's callback codec.
fn recv_callback(v: &mut V4) -> (u32, CbCompoundArgs) {
    let rec = v.c.recv().expect("a callback record");
    let (call, args) = dittofs_nfs::rpc::RpcCall::decode(&rec).expect("a call");
    assert_eq!((call.vers, call.proc_num), (1, CB_COMPOUND));
    let cb = CbCompoundArgs::decode(&mut Decoder::new(args)).expect("CB_COMPOUND4args");
    (call.xid, cb)
}

/// Answers a CB_COMPOUND of CB_SEQUENCE + one operation with NFS4_OK.
fn answer_callback(v: &mut V4, xid: u32, cb: &CbCompoundArgs) {
    use dittofs_nfs::XdrWrite;
    let CbOp::Sequence(s) = &cb.ops.0[0] else {
        panic!("CB_SEQUENCE first: {cb:?}")
    };
    let mut m = Vec::new();
    dittofs_nfs::rpc::encode_success(&mut m, xid);
    m.put_xdr_u32(0); // status
    m.put_xdr_opaque(b""); // tag
    m.put_xdr_u32(2);
    m.put_xdr_u32(OP_CB_SEQUENCE);
    m.put_xdr_u32(0);
    m.extend_from_slice(&s.sessionid);
    for x in [s.sequenceid, s.slotid, 0, 0] {
        m.put_xdr_u32(x);
    }
    m.put_xdr_u32(cb.ops.0[1].opnum());
    m.put_xdr_u32(0);
    v.c.send_raw(&dittofs_nfs::record::frame_record(&m));
}

/// A 4.1 lock-owner denied a blocking lock (WRITEW_LT) gets CB_NOTIFY_LOCK when the
/// holder unlocks, then gets the lock by asking again; OPEN says notifications may come.
#[test]
fn cb_notify_lock_tells_a_blocked_owner_to_retry() {
    // (no delegations: the holder's would be recalled by the waiter's OPEN first)
    let srv = Server::start_with(vec![(
        "DITTOFS_NFS_V4_DELEGATIONS".to_string(),
        "false".to_string(),
    )]);
    let mut a = V4::connect(srv.nfs_port, b"notify-holder");
    let mut b = V4::connect(srv.nfs_port, b"notify-waiter");
    let dir = a.fh_of(&[Op4::Putrootfh, lookup("export")]);
    let (oa, fh) = open_deny(&mut a, &dir, b"oa", 0, "n");
    let r = lock_by(&mut a, &fh, &oa, b"la", WRITE_LT, 0);
    let Res::Stateid(la) = &r.last().2 else {
        panic!("LOCK: {:?}", r.status)
    };
    let r = open_existing(&mut b, &dir, b"ob", SHARE_ACCESS_BOTH, "n");
    let Res::Open(o) = &r.results[2].2 else {
        panic!("{:?}", r.results)
    };
    assert_ne!(o.rflags & OPEN4_RESULT_MAY_NOTIFY_LOCK, 0);
    let ob = o.stateid.clone();
    // a non-blocking denied lock is not remembered; a blocking one is
    let r = lock_by(&mut b, &fh, &ob, b"other-owner", WRITE_LT, 0);
    assert_eq!(r.status, Nfs4Status::Denied);
    let r = lock_by(&mut b, &fh, &ob, b"waiter", WRITEW_LT, 0);
    assert_eq!(r.status, Nfs4Status::Denied);
    let unlock = Op4::Locku(LockuArgs {
        locktype: WRITE_LT,
        seqid: 0,
        lock_stateid: la.clone(),
        offset: 0,
        length: u64::MAX,
    });
    let r = a.run(&[Op4::Putfh(fh.clone()), unlock]);
    assert_eq!(r.status, Nfs4Status::Ok);
    let (xid, cb) = recv_callback(&mut b);
    assert_eq!(cb.ops.0.len(), 2, "{cb:?}");
    let CbOp::NotifyLock(n) = &cb.ops.0[1] else {
        panic!("CB_NOTIFY_LOCK: {cb:?}")
    };
    assert_eq!(n.fh, fh);
    assert_eq!(n.lock_owner.clientid, b.clientid);
    assert_eq!(n.lock_owner.owner.0, b"waiter");
    answer_callback(&mut b, xid, &cb);
    let r = lock_by(&mut b, &fh, &ob, b"waiter", WRITEW_LT, 0);
    assert_eq!(r.status, Nfs4Status::Ok, "{:?}", r.results);
    assert_eq!(metric(&srv, "dittofs_nfs4_lock_notifies_total"), 1.0);
}
