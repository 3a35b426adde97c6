//! NLM v4 and NSM v1 against the real `dfs` binary, with the userspace NLM client and
//! fake client host of `common::nlm`: two clients contending for locks, TEST naming the
//! holder, blocking locks granted through a GRANTED callback, CANCEL, a refused callback,
//! the grace period, FREE_ALL, a client's SM_NOTIFY, and SM_NOTIFY sent by a restarted
//! server to the clients it monitored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::nlm::{FakeHost, NlmClient};
use common::{Client, Server, free_port};
use dittofs_nfs::nlm4::*;
use dittofs_nfs::nsm1;
use dittofs_nfs::rpc::{AcceptStat, ReplyStat};
use dittofs_nfs::{Decoder, XdrDecode, XdrEncode, XdrWrite};
use std::sync::atomic::Ordering;
use std::time::Duration;

const WHOLE: (u64, u64) = (0, 0);

fn start(host: &FakeHost, grace: u32) -> Server {
    Server::start_with(vec![
        host.env(),
        ("DITTOFS_NFS_LOCKS_GRACE_SECONDS".into(), grace.to_string()),
    ])
}

/// A new file's NFSv3 handle bytes.
fn new_file(srv: &Server, name: &str) -> Vec<u8> {
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    c.create_file(&root, name).0
}

#[test]
fn nlm_two_clients_exclusive_shared_test_and_unlock() {
    let host = FakeHost::start();
    let srv = start(&host, 0);
    let fh = new_file(&srv, "f");
    let mut a = NlmClient::connect(srv.nfs_port, "client-a", 100);
    let mut b = NlmClient::connect(srv.nfs_port, "client-b", 200);

    assert_eq!(a.lock(&fh, WHOLE, true), Nlm4Stat::Granted);
    assert_eq!(b.lock(&fh, (10, 5), true), Nlm4Stat::Denied);
    assert_eq!(b.lock(&fh, (10, 5), false), Nlm4Stat::Denied);
    let t = b.test(&fh, (10, 5), true);
    assert_eq!(t.stat, Nlm4Stat::Denied);
    let h = t.holder.expect("holder");
    assert!(h.exclusive);
    assert_eq!((h.svid, h.oh.clone()), (100, a.oh.clone()));
    assert_eq!((h.l_offset, h.l_len), (0, 0));
    // the holder's own TEST finds nothing in its way
    assert_eq!(a.test(&fh, (10, 5), true).stat, Nlm4Stat::Granted);

    assert_eq!(a.unlock(&fh, WHOLE), Nlm4Stat::Granted);
    assert_eq!(b.lock(&fh, (10, 5), true), Nlm4Stat::Granted);
    assert_eq!(
        a.lock(&fh, (15, 5), true),
        Nlm4Stat::Granted,
        "disjoint range"
    );
    assert_eq!(a.lock(&fh, (14, 1), false), Nlm4Stat::Denied);
    assert_eq!(b.unlock(&fh, WHOLE), Nlm4Stat::Granted);
    assert_eq!(a.unlock(&fh, WHOLE), Nlm4Stat::Granted);

    // shared + shared, then an exclusive request is refused by either holder
    assert_eq!(a.lock(&fh, WHOLE, false), Nlm4Stat::Granted);
    assert_eq!(b.lock(&fh, WHOLE, false), Nlm4Stat::Granted);
    let t = NlmClient::connect(srv.nfs_port, "client-c", 300).test(&fh, (0, 1), true);
    assert_eq!(t.stat, Nlm4Stat::Denied);
    assert!(!t.holder.expect("holder").exclusive);

    // same host, another process (svid): a different owner
    let mut a2 = NlmClient::connect(srv.nfs_port, "client-a", 101);
    assert_eq!(a2.lock(&fh, WHOLE, true), Nlm4Stat::Denied);
}

#[test]
fn nlm_errors_stale_handle_fbig_garbage() {
    let host = FakeHost::start();
    let srv = start(&host, 0);
    let fh = new_file(&srv, "f");
    let mut a = NlmClient::connect(srv.nfs_port, "client-a", 1);
    assert_eq!(a.lock(&[0xde, 0xad], WHOLE, true), Nlm4Stat::StaleFh);
    assert_eq!(a.test(&[0; 40], WHOLE, true).stat, Nlm4Stat::StaleFh);
    assert_eq!(a.lock(&fh, (u64::MAX, 2), true), Nlm4Stat::Fbig);
    // truncated arguments, an oversized netobj, an unknown procedure, another version
    let good = a.lock_args(&fh, WHOLE, true).to_xdr();
    let (r, _) = a
        .rpc
        .call_raw(PROGRAM, VERSION, 2, true, &good[..good.len() - 3]);
    assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::GarbageArgs));
    let mut big = Vec::new();
    big.put_xdr_opaque(&[0u8; 2000]);
    let (r, _) = a.rpc.call_raw(PROGRAM, VERSION, 2, true, &big);
    assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::GarbageArgs));
    let (r, _) = a.rpc.call_raw(PROGRAM, VERSION, 17, true, &[]);
    assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::ProcUnavail));
    let (r, _) = a.rpc.call_raw(PROGRAM, 1, 0, true, &[]);
    assert_eq!(
        r.stat,
        ReplyStat::Accepted(AcceptStat::ProgMismatch { low: 4, high: 4 })
    );
    // and the server still serves
    assert_eq!(a.lock(&fh, WHOLE, true), Nlm4Stat::Granted);
}

#[test]
fn nlm_blocking_lock_is_granted_by_callback_and_cancel_withdraws() {
    let host = FakeHost::start();
    let srv = start(&host, 0);
    let fh = new_file(&srv, "f");
    let mut a = NlmClient::connect(srv.nfs_port, "client-a", 1);
    let mut b = NlmClient::connect(srv.nfs_port, "client-b", 2);

    assert_eq!(a.lock(&fh, WHOLE, true), Nlm4Stat::Granted);
    let mut args = b.lock_args(&fh, (0, 100), true);
    args.block = true;
    args.cookie = b"wait-b".to_vec();
    assert_eq!(b.lock_with(&args), Nlm4Stat::Blocked);
    assert_eq!(b.lock_with(&args), Nlm4Stat::Blocked, "retransmission");
    assert!(host.next_call(Duration::from_millis(300)).is_none());

    assert_eq!(a.unlock(&fh, WHOLE), Nlm4Stat::Granted);
    let cb = host
        .next_call(Duration::from_secs(10))
        .expect("GRANTED callback");
    assert_eq!((cb.prog, cb.proc_num), (PROGRAM, NlmProc::Granted.as_u32()));
    let g = Nlm4TestArgs::decode(&mut Decoder::new(&cb.args)).unwrap();
    assert_eq!(g.cookie, b"wait-b");
    assert!(g.exclusive);
    assert_eq!(g.alock, args.alock);
    // b holds it now
    let t = a.test(&fh, (50, 1), false);
    assert_eq!(t.holder.expect("holder").svid, 2);

    // a queues behind b, cancels, and gets nothing when b unlocks
    assert_eq!(a.lock_blocking(&fh, (0, 10), true), Nlm4Stat::Blocked);
    assert_eq!(a.cancel(&fh, (0, 10), true), Nlm4Stat::Granted);
    assert_eq!(b.unlock(&fh, WHOLE), Nlm4Stat::Granted);
    assert!(host.next_call(Duration::from_secs(1)).is_none());
    let mut c = NlmClient::connect(srv.nfs_port, "client-c", 3);
    assert_eq!(c.test(&fh, WHOLE, true).stat, Nlm4Stat::Granted);
}

#[test]
fn nlm_refused_grant_callback_releases_the_lock() {
    let host = FakeHost::start();
    host.accept_grants.store(false, Ordering::SeqCst);
    let srv = start(&host, 0);
    let fh = new_file(&srv, "f");
    let mut a = NlmClient::connect(srv.nfs_port, "client-a", 1);
    let mut b = NlmClient::connect(srv.nfs_port, "client-b", 2);
    assert_eq!(a.lock(&fh, WHOLE, true), Nlm4Stat::Granted);
    assert_eq!(b.lock_blocking(&fh, WHOLE, true), Nlm4Stat::Blocked);
    assert_eq!(a.unlock(&fh, WHOLE), Nlm4Stat::Granted);
    let cb = host
        .next_call(Duration::from_secs(10))
        .expect("GRANTED callback");
    assert_eq!(cb.proc_num, NlmProc::Granted.as_u32());
    // the refused lock is released: a gets it again
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while a.lock(&fh, WHOLE, true) != Nlm4Stat::Granted {
        assert!(std::time::Instant::now() < deadline, "lock not released");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nlm_grace_period_refuses_new_locks_and_grants_reclaims() {
    let host = FakeHost::start();
    let srv = start(&host, 3);
    let fh = new_file(&srv, "f");
    let mut a = NlmClient::connect(srv.nfs_port, "client-a", 1);
    let mut b = NlmClient::connect(srv.nfs_port, "client-b", 2);
    assert_eq!(a.lock(&fh, (0, 10), true), Nlm4Stat::DeniedGracePeriod);
    assert_eq!(a.test(&fh, (0, 10), true).stat, Nlm4Stat::DeniedGracePeriod);
    let mut reclaim = a.lock_args(&fh, (0, 10), true);
    reclaim.reclaim = true;
    assert_eq!(a.lock_with(&reclaim), Nlm4Stat::Granted);
    let mut other = b.lock_args(&fh, (0, 10), true);
    other.reclaim = true;
    assert_eq!(
        b.lock_with(&other),
        Nlm4Stat::Denied,
        "reclaims still conflict"
    );
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(b.lock(&fh, (20, 10), true), Nlm4Stat::Granted);
    assert_eq!(b.lock(&fh, (0, 10), true), Nlm4Stat::Denied);
}

#[test]
fn nlm_free_all_and_client_reboot_notify_release_locks() {
    let host = FakeHost::start();
    let srv = start(&host, 0);
    let fh = new_file(&srv, "f");
    let mut a = NlmClient::connect(srv.nfs_port, "client-a", 1);
    let mut b = NlmClient::connect(srv.nfs_port, "client-b", 2);
    assert_eq!(a.lock(&fh, (0, 10), true), Nlm4Stat::Granted);
    assert_eq!(b.lock_blocking(&fh, (0, 10), true), Nlm4Stat::Blocked);
    let n = Nlm4Notify {
        name: b"client-a".to_vec(),
        state: 7,
    };
    let (r, _) = a.rpc.call_raw(
        PROGRAM,
        VERSION,
        NlmProc::FreeAll.as_u32(),
        true,
        &n.to_xdr(),
    );
    assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::Success));
    // b's queued request is granted (callback) once a's locks went
    let cb = host
        .next_call(Duration::from_secs(10))
        .expect("GRANTED callback");
    assert_eq!(cb.proc_num, NlmProc::Granted.as_u32());
    assert_eq!(a.test(&fh, (0, 1), true).holder.expect("b holds").svid, 2);

    // client-b reboots: its statd's SM_NOTIFY releases everything of client-b
    let chg = nsm1::StatChge {
        mon_name: b"client-b".to_vec(),
        state: 3,
    };
    let (r, _) = b.rpc.call_raw(
        nsm1::PROGRAM,
        nsm1::VERSION,
        nsm1::NsmProc::Notify.as_u32(),
        true,
        &chg.to_xdr(),
    );
    assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::Success));
    assert_eq!(a.lock(&fh, (0, 10), true), Nlm4Stat::Granted);
}

#[test]
fn nlm_restarted_server_sends_sm_notify_with_its_new_state() {
    let host = FakeHost::start();
    let pmap = free_port();
    let mut srv = Server::start_with(vec![
        host.env(),
        ("DITTOFS_NFS_LOCKS_GRACE_SECONDS".into(), "0".into()),
        ("DITTOFS_NFS_PORTMAPPER_ENABLED".into(), "true".into()),
        ("DITTOFS_NFS_PORTMAPPER_PORT".into(), pmap.to_string()),
    ]);
    // the embedded portmapper names the NFS port for NLM v4 and NSM v1
    let mut pm = Client::connect(pmap);
    for (prog, vers) in [(PROGRAM, VERSION), (nsm1::PROGRAM, nsm1::VERSION)] {
        let mut args = Vec::new();
        for v in [prog, vers, 6, 0] {
            args.put_xdr_u32(v);
        }
        let (r, rest) = pm.call_raw(100_000, 2, 3, true, &args);
        assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::Success));
        let port = Decoder::new(&rest).u32().unwrap();
        assert_eq!(port, u32::from(srv.nfs_port), "GETPORT {prog} v{vers}");
    }

    let fh = new_file(&srv, "f");
    let mut a = NlmClient::connect(srv.nfs_port, "client-a", 1);
    let first = a.sm_stat();
    assert_eq!(first % 2, 1, "odd while up");
    assert_eq!(a.lock(&fh, WHOLE, true), Nlm4Stat::Granted);
    assert!(host.next_call(Duration::from_millis(200)).is_none());

    srv.crash();
    srv.spawn();
    let n = host.next_call(Duration::from_secs(15)).expect("SM_NOTIFY");
    assert_eq!((n.prog, n.proc_num), (nsm1::PROGRAM, 6));
    let chg = nsm1::StatChge::decode(&mut Decoder::new(&n.args)).unwrap();
    assert_eq!(chg.state, first + 2);
    assert_eq!(chg.mon_name, b"127.0.0.1");
    let mut a = NlmClient::connect(srv.nfs_port, "client-a", 1);
    assert_eq!(a.sm_stat(), first + 2);
    // the lock did not survive; it can be taken again (grace 0)
    let mut b = NlmClient::connect(srv.nfs_port, "client-b", 2);
    assert_eq!(b.lock(&fh, WHOLE, true), Nlm4Stat::Granted);
    // notified once: a second restart with nobody monitored sends nothing
    srv.crash();
    srv.spawn();
    let n = host
        .next_call(Duration::from_secs(3))
        .expect("client-b was monitored");
    assert_eq!(n.proc_num, 6);
    assert!(host.next_call(Duration::from_secs(1)).is_none());
}

#[test]
fn nlm_share_reservations_and_async_msg_results() {
    let host = FakeHost::start();
    let srv = start(&host, 0);
    let fh = new_file(&srv, "f");
    let mut a = NlmClient::connect(srv.nfs_port, "client-a", 1);
    let mut b = NlmClient::connect(srv.nfs_port, "client-b", 2);
    let share = |c: &NlmClient, access, mode| Nlm4ShareArgs {
        cookie: vec![9],
        share: Nlm4Share {
            caller_name: c.name.clone(),
            fh: fh.clone(),
            oh: c.oh.clone(),
            mode,
            access,
        },
        reclaim: false,
    };
    let sa = share(&a, Fsh4Access::Rw, Fsh4Mode::DenyWrite);
    let r: Nlm4ShareRes = a.call(NlmProc::Share, &sa);
    assert_eq!(r.stat, Nlm4Stat::Granted);
    let sb = share(&b, Fsh4Access::Write, Fsh4Mode::DenyNone);
    let r: Nlm4ShareRes = b.call(NlmProc::Share, &sb);
    assert_eq!(r.stat, Nlm4Stat::Denied, "a denies writers");
    let rb = share(&b, Fsh4Access::Read, Fsh4Mode::DenyNone);
    let r: Nlm4ShareRes = b.call(NlmProc::Share, &rb);
    assert_eq!(r.stat, Nlm4Stat::Granted, "readers are welcome");
    let r: Nlm4ShareRes = a.call(NlmProc::Unshare, &sa);
    assert_eq!(r.stat, Nlm4Stat::Granted);
    let r: Nlm4ShareRes = b.call(NlmProc::Share, &sb);
    assert_eq!(r.stat, Nlm4Stat::Granted, "upgrade once a is gone");

    // TEST_MSG: an empty reply now, the result as a TEST_RES call to the client's lockd
    assert_eq!(a.lock(&fh, WHOLE, true), Nlm4Stat::Granted);
    let t = Nlm4TestArgs {
        cookie: b"msg".to_vec(),
        exclusive: true,
        alock: b.alock(&fh, 0, 1),
    };
    let (r, rest) = b.rpc.call_raw(
        PROGRAM,
        VERSION,
        NlmProc::TestMsg.as_u32(),
        true,
        &t.to_xdr(),
    );
    assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::Success));
    assert!(rest.is_empty());
    let cb = host.next_call(Duration::from_secs(10)).expect("TEST_RES");
    assert_eq!(cb.proc_num, NlmProc::TestRes.as_u32());
    let res = Nlm4TestRes::decode(&mut Decoder::new(&cb.args)).unwrap();
    assert_eq!(res.cookie, b"msg");
    assert_eq!(res.stat, Nlm4Stat::Denied);
    assert_eq!(res.holder.expect("holder").svid, 1);
}

#[test]
fn nlm_deadlock_is_refused_and_a_retransmitted_wait_is_granted_once() {
    let host = FakeHost::start();
    let srv = start(&host, 0);
    let f1 = new_file(&srv, "f1");
    let f2 = new_file(&srv, "f2");
    let mut a = NlmClient::connect(srv.nfs_port, "client-a", 1);
    let mut b = NlmClient::connect(srv.nfs_port, "client-b", 2);
    assert_eq!(a.lock(&f1, WHOLE, true), Nlm4Stat::Granted);
    assert_eq!(b.lock(&f2, WHOLE, true), Nlm4Stat::Granted);
    assert_eq!(a.lock_blocking(&f2, WHOLE, true), Nlm4Stat::Blocked);
    assert_eq!(a.lock_blocking(&f2, WHOLE, true), Nlm4Stat::Blocked);
    assert_eq!(b.lock_blocking(&f1, WHOLE, true), Nlm4Stat::Deadlck);
    assert_eq!(b.unlock(&f2, WHOLE), Nlm4Stat::Granted);
    let cb = host
        .next_call(Duration::from_secs(10))
        .expect("GRANTED callback");
    assert_eq!(cb.proc_num, NlmProc::Granted.as_u32());
    assert!(
        host.next_call(Duration::from_millis(500)).is_none(),
        "one grant for a retransmitted request"
    );
    assert_eq!(
        b.test(&f2, WHOLE, false).holder.expect("a holds f2").svid,
        1
    );
}
