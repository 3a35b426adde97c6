//! Lock-owners waiting for a blocked lock, told by CB_NOTIFY_LOCK when to retry (RFC
//! 8881 sections 9.6 "Blocking Locks", 20.11 CB_NOTIFY_LOCK, 18.16.3
//! OPEN4_RESULT_MAY_NOTIFY_LOCK, which every 4.1/4.2 OPEN sets).
//!
//! - A 4.1/4.2 LOCK of blocking type (READW_LT, WRITEW_LT) that is denied registers its
//!   lock-owner on the file ([`LockWaits::wait`]) for one lease: the client polls
//!   anyway, so a registration it no longer needs costs one callback at most.
//! - The core reports every release of byte-range locks on a file, whatever its path
//!   (LOCKU, CLOSE, FREE_STATEID, RELEASE_LOCKOWNER, an expired or released client, NLM
//!   UNLOCK and FREE_ALL): `dittofs_vfs::state::UnlockListener`, per share through
//!   `nlm_state::FileUnlocked`. The file's registrations are then taken off the table
//!   and `notify::run_notifies` sends each one CB_NOTIFY_LOCK (the file handle and the
//!   `lock_owner4`) on a usable back channel of its client, fire and forget within the
//!   back channel's timeout. The client retries its LOCK itself: nothing is granted on
//!   its behalf, so a notification changes no state and a lost one only costs the client
//!   its polling interval.
//! - A LOCK that succeeds removes its owner's registration on the file; a departed
//!   client's registrations go with it (`courtesy::release`).
//!
//! The core's queue of blocked locks (`dittofs_vfs::state` `waiters`, NLM's blocking
//! locks) does not fit: a queued request is granted in the queue, taking the lock for
//! its owner, while NFSv4 grants nothing the client did not ask for again.
//!
//! Invariants: at most [`MAX_LOCK_WAITERS`] registrations (a new one first drops the
//! expired ones, then the one expiring first), one per (file, client, lock-owner); a
//! registration is notified at most once; the table's mutex is never held while
//! anything else is called.

use crate::config::Nfs4Config;
use crate::nlm_state::FileUnlocked;
use dittofs_types::{Ino, ShareId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The most lock-owners remembered as waiting.
pub(crate) const MAX_LOCK_WAITERS: usize = 4096;

/// A file of a share.
type File = (ShareId, Ino);

/// A lock-owner waiting for a lock on a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub(crate) client: u64,
    pub(crate) owner: Vec<u8>,
    /// The file's handle, as CB_NOTIFY_LOCK names it.
    pub(crate) fh: Vec<u8>,
    until: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    files: HashMap<File, Vec<Waiter>>,
    len: usize,
}

impl Inner {
    /// Removes the registrations `gone` says go; how many went.
    fn remove_where(&mut self, gone: impl Fn(&File, &Waiter) -> bool) -> usize {
        let mut n = 0;
        self.files.retain(|f, ws| {
            let before = ws.len();
            ws.retain(|w| !gone(f, w));
            n += before - ws.len();
            !ws.is_empty()
        });
        self.len -= n;
        n
    }

    /// Room for one more: the expired registrations go, then the one expiring first.
    fn make_room(&mut self, now: Instant) {
        self.remove_where(|_, w| w.until <= now);
        if self.len < MAX_LOCK_WAITERS {
            return;
        }
        let first = self
            .files
            .iter()
            .flat_map(|(f, ws)| {
                ws.iter()
                    .map(move |w| (w.until, *f, w.client, w.owner.clone()))
            })
            .min();
        if let Some((until, file, client, owner)) = first {
            self.remove_where(|f, w| {
                (w.until, *f, w.client, &w.owner) == (until, file, client, &owner)
            });
        }
    }
}

/// The lock-owners waiting for locks, and the queue of notifications to send.
pub(crate) struct LockWaits {
    lease: Duration,
    inner: Mutex<Inner>,
    tx: mpsc::UnboundedSender<Vec<Waiter>>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Vec<Waiter>>>>,
}

impl LockWaits {
    /// The lists of waiters to notify, once (the notify task takes them).
    pub(crate) fn take_notices(&self) -> Option<mpsc::UnboundedReceiver<Vec<Waiter>>> {
        self.rx.lock().take()
    }

    pub(crate) fn new(cfg: &Nfs4Config) -> LockWaits {
        let (tx, rx) = mpsc::unbounded_channel();
        LockWaits {
            lease: cfg.lease,
            inner: Mutex::new(Inner::default()),
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    /// A blocking LOCK of `owner` of `client` on `file` (handle `fh`) was denied: it
    /// is told when a lock there is released within the next lease.
    pub(crate) fn wait(&self, file: File, client: u64, owner: &[u8], fh: &[u8]) {
        let now = Instant::now();
        let until = now + self.lease;
        let mut g = self.inner.lock();
        let known = g.files.get_mut(&file).and_then(|ws| {
            ws.iter_mut()
                .find(|w| w.client == client && w.owner == owner)
        });
        if let Some(w) = known {
            w.until = until;
            return;
        }
        if g.len >= MAX_LOCK_WAITERS {
            g.make_room(now);
        }
        g.files.entry(file).or_default().push(Waiter {
            client,
            owner: owner.to_vec(),
            fh: fh.to_vec(),
            until,
        });
        g.len += 1;
    }

    /// `owner` of `client` got its lock on `file`: it waits no more.
    pub(crate) fn granted(&self, file: File, client: u64, owner: &[u8]) {
        let mut g = self.inner.lock();
        if g.files.contains_key(&file) {
            g.remove_where(|f, w| *f == file && w.client == client && w.owner == owner);
        }
    }

    /// The registrations of departed clients go.
    pub(crate) fn forget_clients(&self, clients: &[u64]) {
        let mut g = self.inner.lock();
        if g.len > 0 {
            g.remove_where(|_, w| clients.contains(&w.client));
        }
    }

    /// Takes the unexpired registrations on `file` off the table.
    fn take(&self, file: File, now: Instant) -> Vec<Waiter> {
        let mut g = self.inner.lock();
        let Some(ws) = g.files.remove(&file) else {
            return Vec::new();
        };
        g.len -= ws.len();
        ws.into_iter().filter(|w| w.until > now).collect()
    }

    /// How many registrations there are.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().len
    }
}

impl FileUnlocked for LockWaits {
    fn unlocked(&self, share: ShareId, ino: Ino) {
        let waiters = self.take((share, ino), Instant::now());
        if !waiters.is_empty() && self.tx.send(waiters).is_err() {
            tracing::debug!("CB_NOTIFY_LOCK dropped: no sender task");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: File = (ShareId(1), Ino(5));

    fn waits(lease: Duration) -> LockWaits {
        LockWaits::new(&Nfs4Config {
            lease,
            ..Nfs4Config::default()
        })
    }

    #[test]
    fn registrations_are_taken_once_and_expire() {
        let w = waits(Duration::from_secs(90));
        w.wait(F, 1, b"a", b"fh");
        w.wait(F, 1, b"a", b"fh"); // again: the same registration
        w.wait(F, 2, b"b", b"fh");
        w.wait((ShareId(1), Ino(6)), 1, b"a", b"fh6");
        assert_eq!(w.len(), 3);
        // a granted owner waits no more; another file is not touched
        w.granted(F, 2, b"b");
        assert_eq!(w.len(), 2);
        let got = w.take(F, Instant::now());
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].client, &got[0].owner[..], &got[0].fh[..]),
            (1, &b"a"[..], &b"fh"[..])
        );
        assert!(w.take(F, Instant::now()).is_empty(), "notified once");
        // past the lease a registration is not notified
        let later = Instant::now() + Duration::from_secs(91);
        assert!(w.take((ShareId(1), Ino(6)), later).is_empty());
        assert_eq!(w.len(), 0);
        // a departed client's registrations go
        w.wait(F, 3, b"c", b"fh");
        w.wait(F, 4, b"d", b"fh");
        w.forget_clients(&[3]);
        assert_eq!(w.take(F, Instant::now())[0].client, 4);
    }

    #[test]
    fn the_table_is_bounded() {
        let w = waits(Duration::from_secs(90));
        for i in 0..MAX_LOCK_WAITERS + 10 {
            w.wait((ShareId(1), Ino(i as u64 + 2)), 1, b"o", b"fh");
        }
        assert_eq!(w.len(), MAX_LOCK_WAITERS);
        // the ones expiring first went
        assert!(w.take((ShareId(1), Ino(2)), Instant::now()).is_empty());
        let last = Ino((MAX_LOCK_WAITERS + 11) as u64);
        assert_eq!(w.take((ShareId(1), last), Instant::now()).len(), 1);
    }

    #[tokio::test]
    async fn an_unlock_queues_the_files_waiters() {
        let w = waits(Duration::from_secs(90));
        let mut rx = w.rx.lock().take().unwrap();
        w.unlocked(F.0, F.1);
        w.wait(F, 1, b"a", b"fh");
        w.unlocked(ShareId(2), F.1);
        w.unlocked(F.0, F.1);
        let sent = rx.recv().await.unwrap();
        assert_eq!(sent.len(), 1);
        assert!(
            rx.try_recv().is_err(),
            "one notification, only for the waited file"
        );
    }
}
