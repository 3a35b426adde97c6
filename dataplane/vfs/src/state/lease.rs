//! Leases and delegations: grants, recalls (breaks), acknowledgements, revocation.
//!
//! One model for SMB2/3 leases (MS-SMB2 3.3.1.4 "Algorithm for Leasing in an Object
//! Store", 3.3.4.7 "Object Store Indicates a Lease Break") and NFSv4 delegations (RFC
//! 8881 section 10 "Client-Side Caching" / 10.4 "Open Delegation", RFC 7530 section
//! 10.4): a lease is a set of caching rights on one file held by one holder:
//! R (read caching), W (write caching), H (handle caching). An NFSv4 read delegation is
//! `READ_HANDLE`, a write delegation `READ_WRITE_HANDLE` (the client caches opens too),
//! so a rename or remove recalls both.
//!
//! Breaking: an operation of another holder names a [`BreakCause`]; each lease whose
//! kind loses flags to that cause is marked breaking towards the reduced kind and the
//! [`LeaseBreaker`] is told once per change of target. The operation either returns
//! [`LockError::LeaseRecallPending`] ([`LockManager::break_leases`], NFSv4's
//! `NFS4ERR_DELAY`) or waits ([`LockManager::break_leases_wait`], SMB) until every such
//! lease is acknowledged ([`LockManager::ack_break`]) or the timeout passes, after
//! which the holder loses the lease (revoked; RFC 8881 section 10.4.6 / MS-SMB2
//! 3.3.2.5 lease break acknowledgment timer).
//!
//! Invariants: a kind without R is NONE (W and H need R); a lease of NONE is removed;
//! a holder's own operations never break its own lease; the breaker is called outside
//! the manager's mutex.

use super::LockManager;
use super::error::LockError;
use super::ids::LeaseId;
use super::open::OpenInfo;
use super::owner::Owner;
use dittofs_types::Ino;
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc;

/// Caching rights: a combination of R, W and H.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LeaseKind(u8);

const R: u8 = 1;
const W: u8 = 2;
const H: u8 = 4;

impl LeaseKind {
    pub const NONE: LeaseKind = LeaseKind(0);
    pub const READ: LeaseKind = LeaseKind(R);
    pub const READ_WRITE: LeaseKind = LeaseKind(R | W);
    pub const READ_HANDLE: LeaseKind = LeaseKind(R | H);
    pub const READ_WRITE_HANDLE: LeaseKind = LeaseKind(R | W | H);

    /// From flags; anything without R is NONE.
    pub fn new(read: bool, write: bool, handle: bool) -> LeaseKind {
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        LeaseKind(flag(read, R) | flag(write, W) | flag(handle, H)).normalized()
    }

    pub fn read(self) -> bool {
        self.0 & R != 0
    }

    pub fn write(self) -> bool {
        self.0 & W != 0
    }

    pub fn handle(self) -> bool {
        self.0 & H != 0
    }

    pub fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The flags of both.
    pub fn intersect(self, other: LeaseKind) -> LeaseKind {
        LeaseKind(self.0 & other.0).normalized()
    }

    /// This kind without `flags`.
    fn without(self, flags: u8) -> LeaseKind {
        LeaseKind(self.0 & !flags).normalized()
    }

    fn normalized(self) -> LeaseKind {
        if self.0 & R == 0 { LeaseKind(0) } else { self }
    }
}

impl fmt::Debug for LeaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("NONE");
        }
        let flag = |on: bool, c: &'static str| if on { c } else { "" };
        write!(
            f,
            "R{}{}",
            flag(self.write(), "W"),
            flag(self.handle(), "H")
        )
    }
}

/// What another holder is doing, which decides which flags it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakCause {
    /// An open; `write` when it asks for write (or delete) access. Any open breaks W;
    /// a writing open also breaks R (a read delegation cannot stand a writer).
    Open { write: bool },
    /// A write of data.
    Write,
    /// A size change (SETATTR size, truncate, allocation).
    SetSize,
    /// A byte-range lock or a test for one. A delegation holder may hold its locks
    /// locally (RFC 8881 section 10.4: a client with a delegation need not send LOCK),
    /// so any lock breaks W, and an exclusive one also R (a read delegation's holder
    /// may hold read locks only the client knows of).
    Lock { exclusive: bool },
    /// A rename of the file or of a name linked to it: breaks H.
    Rename,
    /// A remove of a name linked to the file: breaks H.
    Delete,
    /// A read of the data, or of the attributes a W holder may have changed without
    /// telling the server yet (size, change, times): breaks W (RFC 8881 section
    /// 10.4.3; a reader does not disturb R).
    Read,
    /// A change of attributes other than the size (mode, owner, times): breaks W (the
    /// holder caches the attributes its writes change).
    SetAttr,
}

impl BreakCause {
    /// The cause of a lock (or lock test) of `kind`.
    pub fn lock(kind: super::LockKind) -> BreakCause {
        BreakCause::Lock {
            exclusive: kind == super::LockKind::Exclusive,
        }
    }

    fn broken_flags(self) -> u8 {
        match self {
            BreakCause::Open { write: false }
            | BreakCause::Lock { exclusive: false }
            | BreakCause::Read
            | BreakCause::SetAttr => W,
            BreakCause::Open { write: true }
            | BreakCause::Lock { exclusive: true }
            | BreakCause::Write
            | BreakCause::SetSize => R | W,
            BreakCause::Rename | BreakCause::Delete => H,
        }
    }
}

/// One lease as the manager holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    pub id: LeaseId,
    pub holder: Owner,
    /// The rights the holder has now.
    pub kind: LeaseKind,
    /// While a recall is outstanding: the kind the holder must come down to.
    pub breaking: Option<LeaseKind>,
}

impl LeaseInfo {
    /// Whether `cause` by another holder must wait for this lease.
    fn conflicts(&self, cause: BreakCause) -> bool {
        self.kind.without(cause.broken_flags()) != self.kind
    }
}

/// Implemented by protocol adapters: sends the recall (SMB LEASE_BREAK notification,
/// NFSv4 CB_RECALL). Called outside the manager's mutex; must not block.
pub trait LeaseBreaker: Send + Sync {
    /// The holder must come down to `to` and then call [`LockManager::ack_break`].
    fn recall(&self, lease: LeaseId, holder: &Owner, to: LeaseKind);
    /// The holder did not answer in time and lost the lease.
    fn revoked(&self, _lease: LeaseId, _holder: &Owner) {}
}

/// A recall or revocation, as sent by [`ChannelBreaker`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseEvent {
    Recall {
        lease: LeaseId,
        holder: Owner,
        to: LeaseKind,
    },
    Revoked {
        lease: LeaseId,
        holder: Owner,
    },
}

/// A [`LeaseBreaker`] that queues events on a channel (for adapters that run a
/// callback task, and for tests).
pub struct ChannelBreaker {
    tx: mpsc::UnboundedSender<LeaseEvent>,
}

impl ChannelBreaker {
    pub fn new() -> (ChannelBreaker, mpsc::UnboundedReceiver<LeaseEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ChannelBreaker { tx }, rx)
    }
}

impl LeaseBreaker for ChannelBreaker {
    fn recall(&self, lease: LeaseId, holder: &Owner, to: LeaseKind) {
        let event = LeaseEvent::Recall {
            lease,
            holder: holder.clone(),
            to,
        };
        if self.tx.send(event).is_err() {
            tracing::debug!(%lease, "lease recall dropped: no receiver");
        }
    }

    fn revoked(&self, lease: LeaseId, holder: &Owner) {
        let event = LeaseEvent::Revoked {
            lease,
            holder: holder.clone(),
        };
        if self.tx.send(event).is_err() {
            tracing::debug!(%lease, "lease revocation dropped: no receiver");
        }
    }
}

/// What [`LockManager::break_leases_wait`] had to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BreakOutcome {
    /// Leases recalled during the call (acknowledged or revoked).
    pub recalled: Vec<LeaseId>,
    /// Leases taken away because the timeout passed.
    pub revoked: Vec<LeaseId>,
}

/// The holder of the first lease (other than `holder`'s own) that refuses `kind`.
fn grant_conflict<'a>(
    leases: &'a [LeaseInfo],
    opens: &'a [OpenInfo],
    holder: &Owner,
    kind: LeaseKind,
) -> Option<&'a Owner> {
    let lease = leases
        .iter()
        .filter(|l| &l.holder != holder)
        .find(|l| l.breaking.is_some() || l.kind.write() || (kind.write() && !l.kind.is_none()));
    let open = opens
        .iter()
        .filter(|o| !o.owner.same_client(holder))
        .find(|o| kind.write() || o.access.write());
    lease.map(|l| &l.holder).or(open.map(|o| &o.owner))
}

type Recall = (LeaseId, Owner, LeaseKind);

impl LockManager {
    /// Grants (or changes, for a holder that already has one on `ino`) a lease; a kind
    /// without R is [`LockError::EmptyLease`]. Refused
    /// with [`LockError::LeaseConflict`] while another holder's lease is being recalled
    /// or would conflict, or another client's open would (any open for a W lease, an
    /// open with write access for an R lease: RFC 8881 section 10.4.1).
    pub fn grant_lease(
        &self,
        ino: Ino,
        holder: &Owner,
        kind: LeaseKind,
    ) -> Result<LeaseId, LockError> {
        if kind.is_none() {
            return Err(LockError::EmptyLease);
        }
        let seq = self.next_seq();
        self.edit(ino, |st| {
            if let Some(h) = grant_conflict(&st.leases, &st.opens, holder, kind) {
                return Err(LockError::LeaseConflict { holder: h.clone() });
            }
            if let Some(l) = st.leases.iter_mut().find(|l| &l.holder == holder) {
                if l.breaking.is_some() {
                    // No upgrade while the holder owes an acknowledgment.
                    return Err(LockError::LeaseConflict {
                        holder: l.holder.clone(),
                    });
                }
                l.kind = kind;
                return Ok(l.id);
            }
            let id = LeaseId::new(ino, seq);
            let breaking = None;
            let holder = holder.clone();
            st.leases.push(LeaseInfo {
                id,
                holder,
                kind,
                breaking,
            });
            Ok(id)
        })
    }

    /// Starts recalling every lease on `ino` of a holder other than `by` that `cause`
    /// conflicts with. `Ok` when none is left in the way; otherwise
    /// [`LockError::LeaseRecallPending`] naming the leases not yet acknowledged.
    pub fn break_leases(&self, ino: Ino, by: &Owner, cause: BreakCause) -> Result<(), LockError> {
        // Reads and attribute queries call this for every file they touch: no entry is
        // made for a file without state.
        let (recalls, pending) = self.edit_existing(ino, |st| {
            let mut recalls: Vec<Recall> = Vec::new();
            let mut pending = Vec::new();
            for l in st.leases.iter_mut() {
                if &l.holder == by || !l.conflicts(cause) {
                    continue;
                }
                pending.push(l.id);
                let from = l.breaking.unwrap_or(l.kind);
                let to = from.without(cause.broken_flags());
                if l.breaking != Some(to) {
                    l.breaking = Some(to);
                    recalls.push((l.id, l.holder.clone(), to));
                }
            }
            (recalls, pending)
        });
        self.send_recalls(recalls);
        if pending.is_empty() {
            Ok(())
        } else {
            Err(LockError::LeaseRecallPending { leases: pending })
        }
    }

    fn send_recalls(&self, recalls: Vec<Recall>) {
        for (id, holder, to) in recalls {
            tracing::debug!(lease = %id, %holder, ?to, "lease recall");
            if let Some(b) = &self.inner.breaker {
                b.recall(id, &holder, to);
            }
        }
    }

    /// Like [`LockManager::break_leases`] but waits until the recalled leases are
    /// acknowledged; after `timeout` the leases still outstanding are revoked and the
    /// call proceeds. Uses `tokio::time`, so paused-time tests are deterministic.
    pub async fn break_leases_wait(
        &self,
        ino: Ino,
        by: &Owner,
        cause: BreakCause,
        timeout: Duration,
    ) -> Result<BreakOutcome, LockError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.inner.lease_changes.subscribe();
        let mut outcome = BreakOutcome::default();
        loop {
            let leases = match self.break_leases(ino, by, cause) {
                Ok(()) => return Ok(outcome),
                Err(LockError::LeaseRecallPending { leases }) => leases,
                Err(e) => return Err(e),
            };
            for id in &leases {
                if !outcome.recalled.contains(id) {
                    outcome.recalled.push(*id);
                }
            }
            let waited = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(waited, Ok(Ok(()))) {
                outcome.revoked.extend(self.revoke(&leases));
            }
        }
    }

    /// Takes a lease away whose recall was not acknowledged in time by a protocol that
    /// answers the conflicting operations "retry" instead of waiting
    /// ([`LockManager::break_leases`]: NFSv4 revokes a delegation one lease period after
    /// CB_RECALL, RFC 8881 section 10.4.6). The breaker is told; `false` when the lease
    /// was already gone.
    pub fn revoke_lease(&self, id: LeaseId) -> bool {
        !self.revoke(&[id]).is_empty()
    }

    /// Takes leases away (recall timeout); returns those that were still there.
    fn revoke(&self, ids: &[LeaseId]) -> Vec<LeaseId> {
        let mut gone = Vec::new();
        for id in ids {
            if let Some(l) = self.remove_lease(*id) {
                tracing::info!(lease = %id, holder = %l.holder, "lease revoked: recall not acknowledged in time");
                if let Some(b) = &self.inner.breaker {
                    b.revoked(l.id, &l.holder);
                }
                gone.push(l.id);
            }
        }
        gone
    }

    fn remove_lease(&self, id: LeaseId) -> Option<LeaseInfo> {
        let gone = self.edit(id.ino(), |st| {
            let at = st.leases.iter().position(|l| l.id == id)?;
            Some(st.leases.remove(at))
        });
        self.leases_changed();
        gone
    }

    /// The holder acknowledges a recall (SMB LEASE_BREAK acknowledgment) keeping at most
    /// `kept`; without a recall outstanding this is a voluntary downgrade. The new kind
    /// is returned; a lease that comes down to NONE is removed.
    pub fn ack_break(&self, id: LeaseId, kept: LeaseKind) -> Result<LeaseKind, LockError> {
        let kind = self.edit(id.ino(), |st| {
            let at = st.leases.iter().position(|l| l.id == id);
            let at = at.ok_or(LockError::UnknownLease(id))?;
            let l = &mut st.leases[at];
            l.kind = l.breaking.take().unwrap_or(l.kind).intersect(kept);
            let kind = l.kind;
            if kind.is_none() {
                st.leases.remove(at);
            }
            Ok::<LeaseKind, LockError>(kind)
        })?;
        self.leases_changed();
        Ok(kind)
    }

    /// The holder gives the lease back (NFSv4 DELEGRETURN, SMB close of the last open
    /// with the lease key).
    pub fn return_lease(&self, id: LeaseId) -> Result<(), LockError> {
        self.ack_break(id, LeaseKind::NONE).map(|_| ())
    }

    pub(crate) fn leases_changed(&self) {
        self.inner
            .lease_changes
            .send_modify(|g| *g = g.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::open::Access;
    use crate::state::owner::{ClientId, Protocol};
    use std::sync::Arc;

    fn smb(client: u64, key: u8) -> Owner {
        Owner::new(Protocol::Smb, ClientId::Num(client), &[key])
    }

    fn nfs4(client: u64) -> Owner {
        Owner::new(Protocol::Nfs4, ClientId::Num(client), &[])
    }

    fn manager() -> (LockManager, mpsc::UnboundedReceiver<LeaseEvent>) {
        let (b, rx) = ChannelBreaker::new();
        (LockManager::with_breaker(Arc::new(b)), rx)
    }

    #[test]
    fn kinds_need_read() {
        assert_eq!(LeaseKind::new(false, true, true), LeaseKind::NONE);
        let m = LockManager::new();
        let none = m.grant_lease(Ino(4), &nfs4(1), LeaseKind::new(false, true, false));
        assert_eq!(none, Err(LockError::EmptyLease));
        assert_eq!(m.inodes_in_use(), 0);
        assert_eq!(LeaseKind::READ_WRITE_HANDLE.without(R), LeaseKind::NONE);
        assert_eq!(
            LeaseKind::READ_WRITE_HANDLE.without(W),
            LeaseKind::READ_HANDLE
        );
        assert_eq!(format!("{:?}", LeaseKind::READ_WRITE_HANDLE), "RWH");
    }

    #[tokio::test(start_paused = true)]
    async fn conflicting_open_recalls_and_ack_lets_it_proceed() {
        let (m, mut events) = manager();
        let ino = Ino(5);
        let holder = nfs4(1);
        let lease = m.grant_lease(ino, &holder, LeaseKind::READ_HANDLE).unwrap();
        let other = nfs4(2);
        let cause = BreakCause::Open { write: true };
        let waiter = {
            let m = m.clone();
            let other = other.clone();
            tokio::spawn(async move {
                m.break_leases_wait(ino, &other, cause, Duration::from_secs(30))
                    .await
            })
        };
        let ev = events.recv().await.unwrap();
        assert_eq!(
            ev,
            LeaseEvent::Recall {
                lease,
                holder: holder.clone(),
                to: LeaseKind::NONE
            }
        );
        assert!(!waiter.is_finished());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiter.is_finished(), "must wait for the ack");
        assert_eq!(m.ack_break(lease, LeaseKind::NONE), Ok(LeaseKind::NONE));
        let outcome = waiter.await.unwrap().unwrap();
        assert_eq!(outcome.recalled, vec![lease]);
        assert!(outcome.revoked.is_empty());
        m.open(ino, &other, Access::WRITE, Access::NONE).unwrap();
        assert!(events.try_recv().is_err(), "no revocation");
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_revokes_the_lease() {
        let (m, mut events) = manager();
        let ino = Ino(6);
        let holder = smb(1, 9);
        let lease = m.grant_lease(ino, &holder, LeaseKind::READ_WRITE).unwrap();
        let start = tokio::time::Instant::now();
        let out = m
            .break_leases_wait(ino, &smb(2, 1), BreakCause::Write, Duration::from_secs(35))
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(35));
        assert_eq!(out.revoked, vec![lease]);
        assert!(matches!(
            events.recv().await,
            Some(LeaseEvent::Recall { .. })
        ));
        assert!(matches!(
            events.recv().await,
            Some(LeaseEvent::Revoked { .. })
        ));
        assert_eq!(
            m.ack_break(lease, LeaseKind::NONE),
            Err(LockError::UnknownLease(lease))
        );
        assert_eq!(m.inodes_in_use(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_silent_holder_loses_its_lease() {
        let (m, mut events) = manager();
        let ino = Ino(12);
        let quick = m
            .grant_lease(ino, &nfs4(1), LeaseKind::READ_HANDLE)
            .unwrap();
        let silent = m
            .grant_lease(ino, &nfs4(2), LeaseKind::READ_HANDLE)
            .unwrap();
        let task = {
            let m = m.clone();
            tokio::spawn(async move {
                m.break_leases_wait(ino, &nfs4(3), BreakCause::Delete, Duration::from_secs(10))
                    .await
            })
        };
        for _ in 0..2 {
            assert!(matches!(
                events.recv().await,
                Some(LeaseEvent::Recall { .. })
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Delete breaks H only: the holder keeps R.
        assert_eq!(
            m.ack_break(quick, LeaseKind::READ_HANDLE),
            Ok(LeaseKind::READ)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!task.is_finished(), "still waiting for the second holder");
        let out = task.await.unwrap().unwrap();
        assert_eq!(out.recalled, vec![quick, silent]);
        assert_eq!(out.revoked, vec![silent]);
        let left = m.snapshot(ino).leases;
        assert_eq!(left.len(), 1);
        assert_eq!(
            (left[0].id, left[0].kind, left[0].breaking),
            (quick, LeaseKind::READ, None)
        );
    }

    #[tokio::test]
    async fn own_operations_do_not_break() {
        let (m, mut events) = manager();
        let ino = Ino(7);
        let holder = smb(1, 9);
        m.grant_lease(ino, &holder, LeaseKind::READ_WRITE_HANDLE)
            .unwrap();
        for cause in [
            BreakCause::Write,
            BreakCause::Delete,
            BreakCause::Open { write: true },
        ] {
            m.break_leases(ino, &holder, cause).unwrap();
        }
        // The same client with another lease key is another holder.
        let err = m
            .break_leases(ino, &smb(1, 8), BreakCause::Rename)
            .unwrap_err();
        assert!(matches!(err, LockError::LeaseRecallPending { .. }));
        let Some(LeaseEvent::Recall { to, .. }) = events.recv().await else {
            panic!("no recall")
        };
        assert_eq!(to, LeaseKind::READ_WRITE, "rename breaks only H");
        assert!(events.try_recv().is_err());
    }

    #[test]
    fn an_exclusive_lock_recalls_a_read_lease_a_shared_one_does_not() {
        let (m, mut events) = manager();
        let ino = Ino(9);
        m.grant_lease(ino, &nfs4(1), LeaseKind::READ_HANDLE)
            .unwrap();
        m.break_leases(
            ino,
            &nfs4(2),
            BreakCause::lock(super::super::LockKind::Shared),
        )
        .unwrap();
        assert!(events.try_recv().is_err(), "a shared lock leaves R alone");
        assert!(
            m.break_leases(
                ino,
                &nfs4(2),
                BreakCause::lock(super::super::LockKind::Exclusive)
            )
            .is_err(),
            "an exclusive lock waits for the read lease's recall"
        );
        assert!(events.try_recv().is_ok());
    }

    #[test]
    fn only_conflicting_causes_recall() {
        let (m, mut events) = manager();
        let ino = Ino(8);
        let lease = m.grant_lease(ino, &nfs4(1), LeaseKind::READ).unwrap();
        // Readers and shared lockers do not disturb a read lease; a rename has no H to
        // break.
        for cause in [
            BreakCause::Open { write: false },
            BreakCause::Lock { exclusive: false },
            BreakCause::Rename,
        ] {
            m.break_leases(ino, &nfs4(2), cause).unwrap();
        }
        assert!(events.try_recv().is_err());
        // A second breaker while the recall is outstanding: no duplicate recall.
        assert!(m.break_leases(ino, &nfs4(2), BreakCause::Write).is_err());
        assert!(m.break_leases(ino, &nfs4(3), BreakCause::SetSize).is_err());
        assert!(events.try_recv().is_ok());
        assert!(events.try_recv().is_err());
        // No new lease while a recall is outstanding.
        assert!(m.grant_lease(ino, &nfs4(4), LeaseKind::READ).is_err());
        // Nor an upgrade of the lease being recalled.
        assert!(
            m.grant_lease(ino, &nfs4(1), LeaseKind::READ_HANDLE)
                .is_err()
        );
        m.return_lease(lease).unwrap();
        m.grant_lease(ino, &nfs4(4), LeaseKind::READ).unwrap();
    }

    #[test]
    fn reads_and_attribute_changes_break_only_write_caching() {
        let (m, mut events) = manager();
        let ino = Ino(11);
        let reader = m
            .grant_lease(ino, &nfs4(1), LeaseKind::READ_HANDLE)
            .unwrap();
        for cause in [BreakCause::Read, BreakCause::SetAttr] {
            m.break_leases(ino, &nfs4(2), cause).unwrap();
        }
        assert!(events.try_recv().is_err(), "a read lease stays");
        m.return_lease(reader).unwrap();
        let writer = m
            .grant_lease(ino, &nfs4(1), LeaseKind::READ_WRITE_HANDLE)
            .unwrap();
        m.break_leases(ino, &nfs4(1), BreakCause::Read).unwrap();
        let err = m.break_leases(ino, &nfs4(2), BreakCause::Read);
        assert_eq!(
            err,
            Err(LockError::LeaseRecallPending {
                leases: vec![writer]
            })
        );
        let Ok(LeaseEvent::Recall { to, .. }) = events.try_recv() else {
            panic!("no recall")
        };
        assert_eq!(to, LeaseKind::READ_HANDLE, "a read breaks W only");
        // The same recall outstanding: a change of attributes sends no second one.
        assert!(m.break_leases(ino, &nfs4(3), BreakCause::SetAttr).is_err());
        assert!(events.try_recv().is_err());
        m.return_lease(writer).unwrap();
        m.break_leases(ino, &nfs4(2), BreakCause::Read).unwrap();
        assert_eq!(
            m.inodes_in_use(),
            0,
            "no entry made for a file without state"
        );
    }

    #[test]
    fn revoke_lease_takes_it_away_once() {
        let (m, mut events) = manager();
        let ino = Ino(10);
        let lease = m
            .grant_lease(ino, &nfs4(1), LeaseKind::READ_HANDLE)
            .unwrap();
        let by = nfs4(2);
        assert!(m.break_leases(ino, &by, BreakCause::Write).is_err());
        assert!(m.revoke_lease(lease));
        assert!(!m.revoke_lease(lease), "already gone");
        m.break_leases(ino, &by, BreakCause::Write).unwrap();
        assert!(matches!(events.try_recv(), Ok(LeaseEvent::Recall { .. })));
        assert!(matches!(events.try_recv(), Ok(LeaseEvent::Revoked { .. })));
        assert_eq!(m.inodes_in_use(), 0);
    }

    #[test]
    fn grants_respect_opens_and_leases() {
        let m = LockManager::new();
        let ino = Ino(9);
        m.open(ino, &nfs4(1), Access::READ, Access::NONE).unwrap();
        // Client 2 cannot get a write delegation while client 1 has the file open...
        let err = m.grant_lease(ino, &nfs4(2), LeaseKind::READ_WRITE_HANDLE);
        assert_eq!(err, Err(LockError::LeaseConflict { holder: nfs4(1) }));
        // ...but a read delegation is fine, and client 1 may have one too.
        m.grant_lease(ino, &nfs4(2), LeaseKind::READ_HANDLE)
            .unwrap();
        m.grant_lease(ino, &nfs4(1), LeaseKind::READ_HANDLE)
            .unwrap();
        assert!(m.grant_lease(ino, &nfs4(1), LeaseKind::READ_WRITE).is_err());
    }
}
