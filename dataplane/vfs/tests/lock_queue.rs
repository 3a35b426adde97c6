//! Property test of the blocking queue (`dittofs_vfs::state`): random queued and
//! non-blocking locks, unlocks, explicit cancels, dropped handles and owner/client
//! releases by four owners on two files. After every step, checked from the outside
//! (snapshots and the handles only):
//! - safety: no two granted locks of different owners conflict;
//! - progress: every queued request is blocked, by a conflicting granted lock or by an
//!   earlier conflicting request that is not itself waiting for the requester (the
//!   fairness rule), so nothing grantable is left waiting;
//! - a handle that resolved `Ok` belongs to an owner that now holds every byte it
//!   asked for; `Cancelled` only reaches requests that were cancelled or released;
//! - the queue holds exactly the requests whose handles are alive and unresolved;
//! - `Deadlock` is answered exactly when queueing would close a cycle in the wait-for
//!   graph (computed here independently from the snapshots).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dittofs_types::Ino;
use dittofs_vfs::state::{
    ByteRange, ClientId, HeldLock, LockError, LockKind, LockManager, LockQueued, Owner, Protocol,
    WaitHandle, WaiterInfo,
};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

const INOS: [Ino; 2] = [Ino(2), Ino(3)];

fn owners() -> Vec<Owner> {
    let nlm = |k: u8| Owner::new(Protocol::Nlm, ClientId::Name(Arc::from("c1")), &[k]);
    let nfs = |k: u8| Owner::new(Protocol::Nfs4, ClientId::Num(2), &[k]);
    vec![nlm(0), nlm(1), nfs(0), nfs(1)]
}

#[derive(Debug, Clone)]
enum Op {
    Queue {
        ino: usize,
        owner: usize,
        excl: bool,
        off: u64,
        len: u64,
    },
    Lock {
        ino: usize,
        owner: usize,
        excl: bool,
        off: u64,
        len: u64,
    },
    Unlock {
        ino: usize,
        owner: usize,
        off: u64,
        len: u64,
    },
    Cancel {
        pick: usize,
    },
    Drop {
        pick: usize,
    },
    ReleaseOwner {
        owner: usize,
    },
    ReleaseClient {
        client: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let (i, o, off, len) = (0..2usize, 0..4usize, 0..24u64, 0..8u64);
    prop_oneof![
        5 => (i.clone(), o.clone(), any::<bool>(), off.clone(), len.clone())
            .prop_map(|(ino, owner, excl, off, len)| Op::Queue { ino, owner, excl, off, len }),
        2 => (i.clone(), o.clone(), any::<bool>(), off.clone(), len.clone())
            .prop_map(|(ino, owner, excl, off, len)| Op::Lock { ino, owner, excl, off, len }),
        4 => (i, o.clone(), off, len)
            .prop_map(|(ino, owner, off, len)| Op::Unlock { ino, owner, off, len }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Drop { pick }),
        1 => o.prop_map(|owner| Op::ReleaseOwner { owner }),
        1 => (0..2usize).prop_map(|client| Op::ReleaseClient { client }),
    ]
}

fn kind(excl: bool) -> LockKind {
    if excl {
        LockKind::Exclusive
    } else {
        LockKind::Shared
    }
}

type Req<'a> = (&'a Owner, ByteRange, LockKind);

fn req(w: &WaiterInfo) -> Req<'_> {
    (&w.owner, w.range, w.kind)
}

/// Whether `locks` cover every byte of `range`.
fn covers(locks: &[&HeldLock], range: ByteRange) -> bool {
    let mut spans: Vec<_> = locks.iter().map(|l| l.range).collect();
    spans.sort();
    let mut next = range.start();
    for s in spans {
        if s.start() > next || s.last() < next {
            continue;
        }
        if s.last() >= range.last() {
            return true;
        }
        next = s.last() + 1;
    }
    false
}

struct Pending {
    handle: WaitHandle,
    owner: Owner,
    range: ByteRange,
    /// Cancelled explicitly or its owner released: may resolve `Cancelled`.
    may_cancel: bool,
}

/// Who blocks the request `w` (owner, range, kind), by the rule stated in the header.
fn blocked_by(snap_locks: &[HeldLock], ahead: &[WaiterInfo], w: Req<'_>) -> Vec<Owner> {
    let (owner, range, kind) = w;
    let mut out: Vec<Owner> = snap_locks
        .iter()
        .filter(|l| l.blocks(owner, &range, kind))
        .map(|l| l.owner.clone())
        .collect();
    for v in ahead {
        let conflicts =
            &v.owner != owner && v.range.overlaps(&range) && v.kind.conflicts_with(kind);
        let waits_for_w = snap_locks
            .iter()
            .any(|l| &l.owner == owner && l.blocks(&v.owner, &v.range, v.kind));
        if conflicts && !waits_for_w {
            out.push(v.owner.clone());
        }
    }
    out
}

/// owner -> owners its queued requests wait for, over both files.
fn wait_for_graph(m: &LockManager) -> HashMap<Owner, HashSet<Owner>> {
    let mut g: HashMap<Owner, HashSet<Owner>> = HashMap::new();
    for ino in INOS {
        let s = m.snapshot(ino);
        for (i, w) in s.waiters.iter().enumerate() {
            let b = blocked_by(&s.locks, &s.waiters[..i], req(w));
            g.entry(w.owner.clone()).or_default().extend(b);
        }
    }
    g
}

fn reaches(g: &HashMap<Owner, HashSet<Owner>>, from: Vec<Owner>, to: &Owner) -> bool {
    let mut seen = HashSet::new();
    let mut stack = from;
    while let Some(o) = stack.pop() {
        if &o == to {
            return true;
        }
        if seen.insert(o.clone()) {
            stack.extend(g.get(&o).into_iter().flatten().cloned());
        }
    }
    false
}

fn queue(
    m: &LockManager,
    pending: &mut Vec<Pending>,
    owner: &Owner,
    ino: Ino,
    range: ByteRange,
    k: LockKind,
) {
    let s = m.snapshot(ino);
    let blockers = blocked_by(&s.locks, &s.waiters, (owner, range, k));
    let cycle = !blockers.is_empty() && reaches(&wait_for_graph(m), blockers.clone(), owner);
    match m.lock_queued(ino, owner, range, k) {
        Err(LockError::Deadlock) => assert!(cycle, "Deadlock without a cycle"),
        Err(e) => panic!("unexpected {e:?}"),
        Ok(LockQueued::Granted) => assert!(
            blockers.is_empty(),
            "granted though blocked by {blockers:?}"
        ),
        Ok(LockQueued::Queued(handle)) => {
            assert!(!cycle, "queued into a cycle");
            assert!(!blockers.is_empty(), "queued though nothing blocks it");
            pending.push(Pending {
                handle,
                owner: owner.clone(),
                range,
                may_cancel: false,
            });
        }
    }
}

fn apply(m: &LockManager, pending: &mut Vec<Pending>, owners: &[Owner], op: &Op) {
    match *op {
        Op::Queue {
            ino,
            owner,
            excl,
            off,
            len,
        } => {
            let range = ByteRange::new(off, len).unwrap();
            queue(m, pending, &owners[owner], INOS[ino], range, kind(excl));
        }
        Op::Lock {
            ino,
            owner,
            excl,
            off,
            len,
        } => {
            let range = ByteRange::new(off, len).unwrap();
            let _ = m.lock(INOS[ino], &owners[owner], range, kind(excl));
        }
        Op::Unlock {
            ino,
            owner,
            off,
            len,
        } => {
            m.unlock(INOS[ino], &owners[owner], ByteRange::new(off, len).unwrap());
        }
        Op::Cancel { pick } if !pending.is_empty() => {
            let n = pending.len();
            let p = &mut pending[pick % n];
            p.may_cancel = true;
            m.cancel(p.handle.id());
        }
        Op::Drop { pick } if !pending.is_empty() => {
            let n = pending.len();
            let gone = pending.remove(pick % n);
            let id = gone.handle.id();
            drop(gone);
            assert!(m.snapshot(id.ino()).waiters.iter().all(|w| w.id != id));
        }
        Op::ReleaseOwner { owner } => {
            mark_released(pending, |o| o == &owners[owner]);
            m.release_owner(&owners[owner]);
        }
        Op::ReleaseClient { client } => {
            let o = &owners[client * 2];
            mark_released(pending, |x| x.same_client(o));
            m.release_client(o.protocol, &o.client);
        }
        Op::Cancel { .. } | Op::Drop { .. } => {}
    }
}

fn mark_released(pending: &mut [Pending], pred: impl Fn(&Owner) -> bool) {
    pending
        .iter_mut()
        .filter(|p| pred(&p.owner))
        .for_each(|p| p.may_cancel = true);
}

/// Polls every handle; checks what resolved.
fn settle(m: &LockManager, pending: &mut Vec<Pending>) {
    let mut cx = Context::from_waker(Waker::noop());
    pending.retain_mut(|p| match std::pin::Pin::new(&mut p.handle).poll(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Ok(())) => {
            let held = m.snapshot(p.handle.id().ino()).locks;
            let mine: Vec<_> = held.iter().filter(|l| l.owner == p.owner).collect();
            assert!(
                covers(&mine, p.range),
                "granted but not held: {:?}",
                p.range
            );
            false
        }
        Poll::Ready(Err(e)) => {
            assert_eq!(e, LockError::Cancelled);
            assert!(p.may_cancel, "cancelled though nobody cancelled it");
            false
        }
    });
}

fn check(m: &LockManager, pending: &[Pending]) {
    let mut queued = HashSet::new();
    for ino in INOS {
        let s = m.snapshot(ino);
        for (i, a) in s.locks.iter().enumerate() {
            for b in &s.locks[i + 1..] {
                assert!(
                    !b.blocks(&a.owner, &a.range, a.kind),
                    "granted conflict {a:?} {b:?}"
                );
            }
        }
        for (i, w) in s.waiters.iter().enumerate() {
            let b = blocked_by(&s.locks, &s.waiters[..i], req(w));
            assert!(!b.is_empty(), "grantable yet waiting: {w:?}");
            queued.insert(w.id);
        }
    }
    let alive: HashSet<_> = pending.iter().map(|p| p.handle.id()).collect();
    assert_eq!(queued, alive, "queue vs live handles");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn queue_is_safe_fair_and_live(ops in prop::collection::vec(op(), 1..=50)) {
        let owners = owners();
        let m = LockManager::new();
        let mut pending = Vec::new();
        for op in &ops {
            apply(&m, &mut pending, &owners, op);
            settle(&m, &mut pending);
            check(&m, &pending);
        }
        // Releasing one owner may grant another's request: settle after each.
        for o in &owners {
            mark_released(&mut pending, |x| x == o);
            m.release_owner(o);
            settle(&m, &mut pending);
            check(&m, &pending);
        }
        prop_assert!(pending.is_empty());
        prop_assert_eq!(m.inodes_in_use(), 0);
    }
}
