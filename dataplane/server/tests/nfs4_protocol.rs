//! NFSv4.1 protocol tests against the real `dfs` binary: raw COMPOUNDs over TCP built
//! with the project's codec (sessions, the pseudo root, OPEN/WRITE/CLOSE/READ, the slot
//! replay cache, bad stateids and sessions, COMPOUND limits).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::nlm::NlmClient;
use common::{Client, Server, http_get, privileged_client};
use dittofs_nfs::nfs4::attr::SetattrRes;
use dittofs_nfs::nfs4::fattr::{Fattr4, SetAttrs4, a};
use dittofs_nfs::nfs4::fh::SecinfoResOk;
use dittofs_nfs::nfs4::io::*;
use dittofs_nfs::nfs4::ns::ChangeInfo4;
use dittofs_nfs::nfs4::session::*;
use dittofs_nfs::nfs4::types::{
    Bitmap4, ChannelAttrs4, Fh4, List, Opaque4, RdmaIrd, SessionId4, Stateid4,
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
        4 | 21 | 12 | 14 => Res::Stateid(Stateid4::decode(d).unwrap()),
        42 => Res::Exchange(Box::new(ExchangeIdResOk::decode(d).unwrap())),
        43 => Res::Session(Box::new(CreateSessionResOk::decode(d).unwrap())),
        35 => Res::SetClientId(SetClientIdResOk::decode(d).unwrap()),
        33 | 52 => {
            SecinfoResOk::decode(d).unwrap();
            Res::Other
        }
        34 => {
            SetattrRes::decode(d).unwrap();
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
    let r = compound(&mut v.c, &many);
    assert_eq!(r.status, Nfs4Status::Resource);
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
    let srv = Server::start_with(vec![("DITTOFS_NFS_LOCKS_GRACE_SECONDS".into(), "0".into())]);
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
    assert_eq!(o.rflags & 2, 0, "no OPEN_CONFIRM asked for");
    let Res::Fh(fh) = &r.results[4].2 else {
        panic!()
    };
    let close = Op4::Close(CloseArgs {
        seqid: 2,
        stateid: o.stateid.clone(),
    });
    let r = v40(&mut c, &[Op4::Putfh(fh.clone()), close]);
    let Res::Stateid(closed) = &r.last().2 else {
        panic!("CLOSE: {:?}", r.status)
    };
    assert_eq!(
        closed.seqid,
        o.stateid.seqid + 1,
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
fn v40_client(c: &mut Client, owner: &[u8], verifier: u8) -> u64 {
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
                r_netid: Opaque4(b"tcp".to_vec()),
                r_addr: Opaque4(b"127.0.0.1.4.1".to_vec()),
            },
            callback_ident: 1,
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
    let e = v40_client(&mut c40, b"a 4.0 reclaimer", 1);
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
    let deleg = open_claim(a.clientid, b"oa", OpenClaim4::Previous(1));
    let r = a.run(&[Op4::Putfh(fh.clone()), deleg]);
    assert_eq!(
        r.status,
        Nfs4Status::ReclaimBad,
        "no delegation ever granted"
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
    let e = v40_client(&mut c40, b"a 4.0 reclaimer", 1);
    let r = Reply::parse(compound_raw(
        &mut c40,
        0,
        &[
            Op4::Putfh(dir.clone()),
            lookup("re"),
            open_claim(e, b"oe", OpenClaim4::Previous(0)),
        ],
    ));
    assert_eq!(r.status, Nfs4Status::Ok, "4.0 reclaim");
    v40_client(&mut c40, b"a 4.0 reclaimer", 2);
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
    loop {
        let r = a.run(&[
            Op4::Putfh(fh.clone()),
            open_claim(a.clientid, b"o2", OpenClaim4::Fh),
        ]);
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
    let e = v40_client(&mut c40, b"a 4.0 reclaimer", 2);
    let r = Reply::parse(compound_raw(
        &mut c40,
        0,
        &[
            Op4::Putfh(dir.clone()),
            lookup("re"),
            open_claim(e, b"oe", OpenClaim4::Previous(0)),
        ],
    ));
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
