//! Unit tests of the manager: queue fairness, cancellation, deadlock detection,
//! releases and the mandatory check.

use super::*;
use std::time::Duration;

const INO: Ino = Ino(42);

fn nlm(client: &str, svid: u8) -> Owner {
    Owner::new(Protocol::Nlm, ClientId::Name(Arc::from(client)), &[svid])
}

fn r(start: u64, last: u64) -> ByteRange {
    ByteRange::inclusive(start, last).unwrap()
}

fn queue(m: &LockManager, o: &Owner, range: ByteRange, kind: LockKind) -> WaitHandle {
    match m.lock_queued(INO, o, range, kind).unwrap() {
        LockQueued::Queued(h) => h,
        LockQueued::Granted => panic!("{o} granted at once"),
    }
}

fn granted(h: &mut WaitHandle) -> Option<Result<(), LockError>> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(h).poll(&mut cx) {
        std::task::Poll::Ready(r) => Some(r),
        std::task::Poll::Pending => None,
    }
}

use std::future::Future;

#[test]
fn fifo_fairness_with_three_waiters() {
    let m = LockManager::new();
    let (a, b, c, d) = (nlm("h1", 1), nlm("h2", 1), nlm("h3", 1), nlm("h4", 1));
    m.lock(INO, &a, r(0, 9), LockKind::Exclusive).unwrap();
    let mut hb = queue(&m, &b, r(0, 9), LockKind::Exclusive);
    let mut hc = queue(&m, &c, r(5, 5), LockKind::Shared);
    // d's shared request does not conflict with c's, but must not pass b's exclusive.
    let mut hd = queue(&m, &d, r(8, 20), LockKind::Shared);
    assert!(granted(&mut hb).is_none());
    assert!(m.unlock(INO, &a, ByteRange::WHOLE));
    assert_eq!(granted(&mut hb), Some(Ok(())));
    assert!(granted(&mut hc).is_none() && granted(&mut hd).is_none());
    m.unlock(INO, &b, r(0, 9));
    // Both shared requests are compatible: granted together, in order.
    assert_eq!(granted(&mut hc), Some(Ok(())));
    assert_eq!(granted(&mut hd), Some(Ok(())));
    assert_eq!(m.snapshot(INO).locks.len(), 2);
}

#[test]
fn shared_request_queues_behind_waiting_exclusive() {
    let m = LockManager::new();
    let (a, b, c) = (nlm("h1", 1), nlm("h2", 1), nlm("h3", 1));
    m.lock(INO, &a, r(0, 9), LockKind::Shared).unwrap();
    let _hb = queue(&m, &b, r(0, 9), LockKind::Exclusive);
    // Compatible with the holder, but b waits first: no writer starvation.
    let _hc = queue(&m, &c, r(0, 0), LockKind::Shared);
    // A non-blocking request only looks at the holders.
    m.lock(INO, &c, r(1, 1), LockKind::Shared).unwrap();
}

#[test]
fn holder_is_not_queued_behind_its_own_waiter() {
    let m = LockManager::new();
    let (a, b) = (nlm("h1", 1), nlm("h2", 1));
    m.lock(INO, &a, r(0, 9), LockKind::Shared).unwrap();
    let _hb = queue(&m, &b, r(0, 9), LockKind::Exclusive);
    // a extends its lock over bytes b waits for: b waits for a, so a is not queued.
    let got = m.lock_queued(INO, &a, r(0, 19), LockKind::Shared).unwrap();
    assert!(matches!(got, LockQueued::Granted));
}

#[test]
fn dropping_a_waiter_wakes_the_next() {
    let m = LockManager::new();
    let (a, b, c) = (nlm("h1", 1), nlm("h2", 1), nlm("h3", 1));
    m.lock(INO, &a, r(0, 0), LockKind::Shared).unwrap();
    let hb = queue(&m, &b, ByteRange::WHOLE, LockKind::Exclusive);
    let mut hc = queue(&m, &c, r(5, 5), LockKind::Exclusive);
    assert!(granted(&mut hc).is_none(), "behind b");
    drop(hb);
    assert_eq!(granted(&mut hc), Some(Ok(())));
    assert_eq!(m.snapshot(INO).waiters, vec![]);
}

#[test]
fn explicit_cancel_wakes_the_next_and_resolves_cancelled() {
    let m = LockManager::new();
    let (a, b, c) = (nlm("h1", 1), nlm("h2", 1), nlm("h3", 1));
    m.lock(INO, &a, r(0, 0), LockKind::Shared).unwrap();
    let mut hb = queue(&m, &b, ByteRange::WHOLE, LockKind::Exclusive);
    let mut hc = queue(&m, &c, r(5, 5), LockKind::Exclusive);
    assert_eq!(m.cancel(hb.id()), CancelOutcome::Cancelled);
    assert_eq!(granted(&mut hb), Some(Err(LockError::Cancelled)));
    assert_eq!(granted(&mut hc), Some(Ok(())));
    assert_eq!(m.cancel(hc.id()), CancelOutcome::NotQueued);
    assert_eq!(m.cancel(hb.id()), CancelOutcome::NotQueued);
}

#[test]
fn deadlock_is_refused() {
    let m = LockManager::new();
    let (a, b) = (nlm("h1", 1), nlm("h2", 1));
    m.lock(INO, &a, r(1, 1), LockKind::Exclusive).unwrap();
    m.lock(INO, &b, r(2, 2), LockKind::Exclusive).unwrap();
    let _ha = queue(&m, &a, r(2, 2), LockKind::Exclusive);
    let err = m.lock_queued(INO, &b, r(1, 1), LockKind::Exclusive);
    assert_eq!(err.map(|_| ()), Err(LockError::Deadlock));
    assert_eq!(m.snapshot(INO).waiters.len(), 1, "b was not queued");
}

#[test]
fn deadlock_across_files_and_three_owners() {
    let m = LockManager::new();
    let (a, b, c) = (nlm("h1", 1), nlm("h2", 1), nlm("h3", 1));
    let (f1, f2, f3) = (Ino(100), Ino(101), Ino(102));
    m.lock(f1, &a, ByteRange::WHOLE, LockKind::Exclusive)
        .unwrap();
    m.lock(f2, &b, ByteRange::WHOLE, LockKind::Exclusive)
        .unwrap();
    m.lock(f3, &c, ByteRange::WHOLE, LockKind::Exclusive)
        .unwrap();
    let q = |ino, o: &Owner| m.lock_queued(ino, o, r(0, 0), LockKind::Shared);
    let _a = q(f2, &a).unwrap(); // a waits for b
    let _b = q(f3, &b).unwrap(); // b waits for c
    assert_eq!(q(f1, &c).map(|_| ()), Err(LockError::Deadlock));
    // Without the cycle the same request just waits.
    let d = nlm("h4", 1);
    assert!(matches!(q(f1, &d), Ok(LockQueued::Queued(_))));
}

#[tokio::test]
async fn release_client_wakes_waiters_and_cancels_its_own() {
    let m = LockManager::new();
    let (a1, a2, b) = (nlm("h1", 1), nlm("h1", 2), nlm("h2", 1));
    m.lock(INO, &a1, r(0, 9), LockKind::Exclusive).unwrap();
    m.open(INO, &a2, Access::READ, Access::NONE).unwrap();
    let ha2 = queue(&m, &a2, r(5, 29), LockKind::Exclusive);
    let hb = queue(&m, &b, r(0, 29), LockKind::Exclusive);
    let wb = tokio::spawn(hb);
    tokio::task::yield_now().await;
    let gone = m.release_client(Protocol::Nlm, &ClientId::Name(Arc::from("h1")));
    assert_eq!((gone.locks, gone.opens, gone.waiters), (1, 1, 1));
    assert_eq!(ha2.await, Err(LockError::Cancelled));
    let got = tokio::time::timeout(Duration::from_secs(5), wb).await;
    assert_eq!(got.unwrap().unwrap(), Ok(()));
    assert_eq!(m.snapshot(INO).locks[0].owner, b);
    m.release_owner(&b);
    assert_eq!(m.inodes_in_use(), 0);
}

#[tokio::test]
async fn lock_wait_is_cancelled_by_dropping_the_future() {
    let m = LockManager::new();
    let (a, b) = (nlm("h1", 1), nlm("h2", 1));
    m.lock(INO, &a, ByteRange::WHOLE, LockKind::Exclusive)
        .unwrap();
    let wait = m.lock_wait(INO, &b, r(3, 3), LockKind::Shared);
    let timed = tokio::time::timeout(Duration::from_millis(20), wait).await;
    assert!(timed.is_err());
    assert!(m.snapshot(INO).waiters.is_empty());
    m.unlock(INO, &a, ByteRange::WHOLE);
    assert_eq!(
        m.inodes_in_use(),
        0,
        "nothing granted to the dropped request"
    );
}

#[test]
fn test_lock_and_mandatory_io() {
    let m = LockManager::new();
    let smb = |k| Owner::new(Protocol::Smb, ClientId::Num(3), &[k]);
    let (a, b) = (smb(1), smb(2));
    m.lock(INO, &a, r(100, 199), LockKind::Shared).unwrap();
    m.lock(INO, &a, ByteRange::to_eof(1000), LockKind::Exclusive)
        .unwrap();
    let c = m
        .test_lock(INO, &b, r(150, 150), LockKind::Exclusive)
        .unwrap();
    assert_eq!(
        (c.owner, c.range, c.kind),
        (a.clone(), r(100, 199), LockKind::Shared)
    );
    assert!(
        m.test_lock(INO, &b, r(150, 150), LockKind::Shared)
            .is_none()
    );
    assert!(m.check_io(INO, &b, 150, 10, false).is_ok());
    assert!(m.check_io(INO, &b, 150, 10, true).is_err());
    assert!(m.check_io(INO, &b, 190, 0, true).is_ok(), "zero length");
    assert!(m.check_io(INO, &b, 200, 800, true).is_ok(), "ends at 999");
    assert!(m.check_io(INO, &b, 200, 801, false).is_err());
    assert!(m.check_io(INO, &b, u64::MAX, u64::MAX, false).is_err());
    assert!(m.check_io(INO, &a, 0, u64::MAX, true).is_ok(), "own locks");
    assert!(Protocol::Smb.mandatory_locks() && !Protocol::Nlm.mandatory_locks());
}

#[test]
fn close_releasing_locks_takes_the_owners_locks() {
    let m = LockManager::new();
    let o = Owner::new(Protocol::Smb, ClientId::Num(1), &[1]);
    let open = m.open(INO, &o, Access::READ_WRITE, Access::NONE).unwrap();
    m.lock(INO, &o, r(0, 0), LockKind::Exclusive).unwrap();
    m.lock(INO, &o, r(9, 9), LockKind::Exclusive).unwrap();
    assert_eq!(m.close_releasing_locks(open), Ok(2));
    assert_eq!(m.inodes_in_use(), 0);
}

/// Records the files an [`UnlockListener`] is told of.
#[derive(Default)]
struct Unlocks(Mutex<Vec<Ino>>);

impl UnlockListener for Unlocks {
    fn unlocked(&self, ino: Ino) {
        self.0.lock().push(ino);
    }
}

#[test]
fn every_release_of_locks_is_reported_once_per_file() {
    let seen = Arc::new(Unlocks::default());
    let m = LockManager::with_hooks(Hooks {
        breaker: None,
        unlocks: Some(seen.clone()),
    });
    let took = |want: &[Ino]| assert_eq!(std::mem::take(&mut *seen.0.lock()), want);
    let (a, b) = (nlm("h1", 1), nlm("h2", 1));
    m.lock(INO, &a, r(0, 9), LockKind::Exclusive).unwrap();
    // an unlock of bytes not held, a lock, an open: nothing released
    assert!(!m.unlock(INO, &a, r(20, 29)));
    m.lock(INO, &b, r(10, 19), LockKind::Shared).unwrap();
    let open = m.open(Ino(7), &b, Access::READ, Access::NONE).unwrap();
    took(&[]);
    assert!(m.unlock(INO, &a, r(0, 4)));
    took(&[INO]);
    // a close dropping its owner's locks; a close without locks is silent
    m.lock(Ino(7), &b, r(0, 0), LockKind::Shared).unwrap();
    assert_eq!(m.close_releasing_locks(open), Ok(1));
    took(&[Ino(7)]);
    let open = m.open(Ino(7), &b, Access::READ, Access::NONE).unwrap();
    assert_eq!(m.close_releasing_locks(open), Ok(0));
    took(&[]);
    // a client's release names each file it held locks on
    m.lock(Ino(8), &a, r(0, 0), LockKind::Shared).unwrap();
    m.release_client(Protocol::Nlm, &ClientId::Name(Arc::from("h1")));
    let mut got = std::mem::take(&mut *seen.0.lock());
    got.sort();
    assert_eq!(got, vec![Ino(8), INO]);
    m.release_owner(&b);
    took(&[INO]);
    assert_eq!(m.inodes_in_use(), 0);
}
