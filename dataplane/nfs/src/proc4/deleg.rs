//! The table of NFSv4 read and write delegations (RFC 8881 sections 10.2, 10.4,
//! 18.16.3 OPEN_DELEGATE_READ/WRITE, 18.6 DELEGRETURN) on the core's leases, and the
//! back channels they are recalled through; the recalls themselves (20.2 CB_RECALL)
//! are `recall`'s. This module knows the lock managers and metrics it is handed, not
//! the server's `Shared` (which holds it).
//!
//! - A delegation is a core lease (holder = the client's owner with an empty key, the
//!   same owner every NFSv4 operation of that client breaks with, so a client's own
//!   operations never recall its delegation) plus a delegation stateid here. A read
//!   delegation is `LeaseKind::READ_HANDLE`, granted on OPEN for read only; a write
//!   delegation `READ_WRITE_HANDLE`, granted on OPEN with write access (which kind an
//!   OPEN asks for, want bits included, is `io`'s). Either is granted
//!   ([`Delegations::try_grant`]) with deny NONE, to a client whose session has a
//!   usable back channel, when no other owner holds a byte-range lock on the file and
//!   the core grants the lease: for a read lease no other client's open for write, for
//!   a write lease no other client's open at all, and no other client's lease or
//!   recall in progress either way. A client that holds a delegation of the file gets
//!   the same one again if it covers what it asks (a read delegation is not upgraded).
//!   A 4.0 client's back channel is its callback path, under a per-client key (`cb40`).
//! - Conflicting access from any protocol calls the core's `break_leases` with its
//!   `BreakCause`: writes, size changes, opens for write or with deny, REMOVE and
//!   RENAME recall any delegation; reads, opens for read, other attribute changes,
//!   GETATTR of what a writer caches and byte-range locks recall a write delegation.
//!   The breaker gets "retry" (NFS4ERR_DELAY, NFS3ERR_JUKEBOX); `recall::run_recalls`
//!   takes the core's events, sends CB_RECALL on the holder's back channel once per
//!   delegation and, if the delegation is still held one lease period after the
//!   recall, revokes it (the core lease goes; the stateid answers
//!   NFS4ERR_DELEG_REVOKED and SEQUENCE reports SEQ4_STATUS_RECALLABLE_STATE_REVOKED
//!   until the client frees it with FREE_STATEID).
//! - The holder's READ (and, with a write delegation, WRITE) may name the delegation
//!   stateid ([`Delegations::lookup`]).
//! - DELEGRETURN returns the lease; an unknown stateid is NFS4ERR_BAD_STATEID.
//! - Delegations of a destroyed or expired client go with its core state
//!   (`courtesy::release` forgets them here and releases the client's leases). A
//!   client silent past its lease keeps its delegations as a courtesy client
//!   (`courtesy`); a recall of one of them releases that client instead of sending
//!   CB_RECALL (it renews nothing, so it could not be trusted to answer), and the
//!   conflicting operation's retry goes through.
//!
//! Invariants: the table and the core agree: a delegation is inserted under the table's
//! mutex right after its lease is granted and removed before (return) or after
//! (revoke) its lease goes; grants happen under the table's mutex (the table's mutex
//! is taken before a lock manager's, never the other way); at most
//! [`MAX_DELEGATIONS`] delegations and [`MAX_REVOKED`] remembered revocations exist
//! (past that, no new grants / an arbitrary revocation is forgotten); per-client
//! counts make SEQUENCE's status flags cheap.

use super::lm::owner;
use crate::backchannel::BackChan;
use crate::config::Nfs4Config;
use crate::metrics::NfsMetrics;
use crate::nfs4::Nfs4Status;
use crate::nfs4::types::{SessionId4, Stateid4};
use crate::nlm_state::Nlm;
use dittofs_types::{Ino, ShareId};
use dittofs_vfs::state::{
    ChannelBreaker, LeaseBreaker, LeaseEvent, LeaseId, LeaseKind, LockManager,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The most delegations held at once (no new grants past it).
pub(crate) const MAX_DELEGATIONS: usize = 1 << 16;
/// The most revoked delegation stateids remembered.
pub(crate) const MAX_REVOKED: usize = 4096;
/// SEQ4_STATUS_CB_PATH_DOWN (RFC 8881 section 18.46.3).
pub(crate) const SEQ4_STATUS_CB_PATH_DOWN: u32 = 0x1;
/// SEQ4_STATUS_RECALLABLE_STATE_REVOKED.
pub(crate) const SEQ4_STATUS_RECALLABLE_STATE_REVOKED: u32 = 0x40;
/// Marks the `other` of a delegation stateid (open and lock stateids count up from 1).
const DELEG_MARK: u64 = 1 << 63;

/// One delegation.
#[derive(Clone, Debug)]
pub(crate) struct Deleg {
    pub(crate) client: u64,
    share: ShareId,
    ino: Ino,
    lease: LeaseId,
    /// A write delegation (else a read delegation).
    pub(crate) write: bool,
    /// A recall was sent (or its task started).
    recalled: bool,
    /// The file handle a CB_RECALL names.
    pub(crate) fh: Vec<u8>,
}

/// A delegation as its stateid's users see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) client: u64,
    pub(crate) file: (ShareId, Ino),
    pub(crate) write: bool,
}

#[derive(Default)]
struct Inner {
    next: u64,
    delegs: HashMap<[u8; 12], Deleg>,
    by_lease: HashMap<LeaseId, [u8; 12]>,
    /// Delegations held per client (SEQUENCE asks on every call).
    held: HashMap<u64, usize>,
    /// Revoked stateids and their client.
    revoked: HashMap<[u8; 12], u64>,
    /// Revoked stateids per client.
    revoked_of: HashMap<u64, usize>,
    /// Back channels by session: (client, channel).
    back: HashMap<SessionId4, (u64, Arc<BackChan>)>,
}

/// One less of `client` in `counts` (the entry goes at zero).
fn count_down(counts: &mut HashMap<u64, usize>, client: u64) {
    if let Some(n) = counts.get_mut(&client) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&client);
        }
    }
}

impl Inner {
    /// A new delegation stateid's `other`: the server's epoch and a marked counter.
    fn next_other(&mut self, epoch: [u8; 4]) -> [u8; 12] {
        self.next += 1;
        let mut other = [0u8; 12];
        other[..4].copy_from_slice(&epoch);
        other[4..].copy_from_slice(&(DELEG_MARK | self.next).to_be_bytes());
        other
    }

    /// The delegation of `lease` granted again: its stateid and whether it is a write
    /// delegation, if it covers `kind`.
    fn again(&self, lease: LeaseId, kind: LeaseKind) -> Option<(Stateid4, bool)> {
        let other = *self.by_lease.get(&lease)?;
        let d = self.delegs.get(&other)?;
        let covers = d.write || !kind.write();
        covers.then_some((Stateid4 { seqid: 1, other }, d.write))
    }

    fn add(&mut self, other: [u8; 12], d: Deleg) {
        *self.held.entry(d.client).or_default() += 1;
        self.by_lease.insert(d.lease, other);
        self.delegs.insert(other, d);
    }

    fn take(&mut self, other: &[u8; 12]) -> Option<Deleg> {
        let d = self.delegs.remove(other)?;
        self.by_lease.remove(&d.lease);
        count_down(&mut self.held, d.client);
        Some(d)
    }

    /// Remembers a revoked stateid (forgetting an arbitrary one when full).
    fn add_revoked(&mut self, other: [u8; 12], client: u64) {
        if self.revoked.len() >= MAX_REVOKED
            && let Some(old) = self.revoked.keys().next().copied()
        {
            self.take_revoked(&old);
        }
        self.revoked.insert(other, client);
        *self.revoked_of.entry(client).or_default() += 1;
    }

    fn take_revoked(&mut self, other: &[u8; 12]) -> bool {
        let Some(client) = self.revoked.remove(other) else {
            return false;
        };
        count_down(&mut self.revoked_of, client);
        true
    }
}

/// The server's delegations and back channels.
pub(crate) struct Delegations {
    enabled: bool,
    lease: Duration,
    epoch: [u8; 4],
    inner: Mutex<Inner>,
    breaker: Arc<ChannelBreaker>,
    events: Mutex<Option<mpsc::UnboundedReceiver<LeaseEvent>>>,
}

impl Delegations {
    pub(crate) fn new(cfg: &Nfs4Config) -> Delegations {
        let (breaker, rx) = ChannelBreaker::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Delegations {
            enabled: cfg.delegations,
            lease: cfg.lease,
            epoch: (now.subsec_nanos() ^ std::process::id()).to_be_bytes(),
            inner: Mutex::new(Inner::default()),
            breaker: Arc::new(breaker),
            events: Mutex::new(Some(rx)),
        }
    }

    /// The lease period (a recalled delegation not returned within it is revoked).
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// The lock managers' recall events, once (the recall task takes them).
    pub(crate) fn take_events(&self) -> Option<mpsc::UnboundedReceiver<LeaseEvent>> {
        self.events.lock().take()
    }

    /// The breaker every share's lock manager reports recalls to.
    pub(crate) fn breaker(&self) -> Arc<dyn LeaseBreaker> {
        self.breaker.clone()
    }

    /// CREATE_SESSION with CONN_BACK_CHAN, or BIND_CONN_TO_SESSION for the back
    /// direction: `chan` is `session`'s back channel.
    pub(crate) fn set_back(&self, client: u64, session: SessionId4, chan: Arc<BackChan>) {
        self.inner.lock().back.insert(session, (client, chan));
    }

    /// The back channel of `session`.
    pub(crate) fn back_of(&self, session: &SessionId4) -> Option<Arc<BackChan>> {
        self.inner.lock().back.get(session).map(|(_, b)| b.clone())
    }

    /// BACKCHANNEL_CTL: a new program and credentials for `client`'s back channels.
    pub(crate) fn set_program(&self, client: u64, program: u32, cred: crate::rpc::Auth) {
        let g = self.inner.lock();
        for (_, b) in g.back.values().filter(|(c, _)| *c == client) {
            b.set_program(program, cred.clone());
        }
    }

    pub(crate) fn drop_session(&self, session: &SessionId4) {
        self.inner.lock().back.remove(session);
    }

    /// The clients holding delegations.
    pub(crate) fn holders(&self) -> std::collections::HashSet<u64> {
        self.inner.lock().held.keys().copied().collect()
    }

    /// A usable back channel of `client`.
    pub(crate) fn back_for(&self, client: u64) -> Option<Arc<BackChan>> {
        let g = self.inner.lock();
        g.back
            .values()
            .find(|(c, b)| *c == client && b.usable())
            .map(|(_, b)| b.clone())
    }

    /// Grants a delegation of `kind` (`READ_HANDLE`: read, `READ_WRITE_HANDLE`: write)
    /// on `ino` to `client` if it may have one (see the module header): its stateid and
    /// whether it is a write delegation. A client already holding a delegation of the
    /// file gets that one again if it covers `kind`, else none (a read delegation is
    /// never turned into a write delegation in place). A new one is counted in
    /// `metrics`.
    pub(crate) fn try_grant(
        &self,
        (lm, metrics): (&LockManager, &NfsMetrics),
        client: u64,
        (share, ino): (ShareId, Ino),
        fh: &[u8],
        kind: LeaseKind,
    ) -> Option<(Stateid4, bool)> {
        if !self.enabled || self.back_for(client).is_none() {
            return None;
        }
        let holder = owner(client, b"");
        // Under the table's mutex: grants of one client do not race each other.
        let mut g = self.inner.lock();
        let snap = lm.snapshot(ino);
        if snap.locks.iter().any(|l| !l.owner.same_client(&holder)) {
            return None;
        }
        if let Some(held) = snap.leases.iter().find(|l| l.holder == holder) {
            // Not while it is being recalled.
            return held.breaking.is_none().then(|| g.again(held.id, kind))?;
        }
        if g.delegs.len() >= MAX_DELEGATIONS {
            return None;
        }
        let lease = lm.grant_lease(ino, &holder, kind).ok()?;
        let other = g.next_other(self.epoch);
        let write = kind.write();
        let d = Deleg {
            client,
            share,
            ino,
            lease,
            write,
            recalled: false,
            fh: fh.to_vec(),
        };
        g.add(other, d);
        metrics.delegations_granted.inc();
        Some((Stateid4 { seqid: 1, other }, write))
    }

    /// DELEGRETURN of `sid` by `client`: the delegation's lease goes back to the core.
    pub(crate) fn delegreturn(
        &self,
        (nlm, metrics): (&Nlm, &NfsMetrics),
        client: u64,
        sid: &Stateid4,
    ) -> Result<(), Nfs4Status> {
        let d = {
            let mut g = self.inner.lock();
            match g.delegs.get(&sid.other) {
                Some(d) if d.client == client => {}
                Some(_) => return Err(Nfs4Status::BadStateid),
                None if g.revoked.contains_key(&sid.other) => {
                    return Err(Nfs4Status::DelegRevoked);
                }
                None => return Err(Nfs4Status::BadStateid),
            }
            g.take(&sid.other).ok_or(Nfs4Status::BadStateid)?
        };
        let _ = nlm.manager(d.share).return_lease(d.lease);
        metrics.delegations_returned.inc();
        Ok(())
    }

    /// What `sid` is as a delegation stateid: None when it is not one; whose and of
    /// which file it is; NFS4ERR_DELEG_REVOKED when it was revoked.
    pub(crate) fn lookup(&self, sid: &Stateid4) -> Option<Result<Held, Nfs4Status>> {
        let g = self.inner.lock();
        if let Some(d) = g.delegs.get(&sid.other) {
            return Some(Ok(Held {
                client: d.client,
                file: (d.share, d.ino),
                write: d.write,
            }));
        }
        g.revoked
            .contains_key(&sid.other)
            .then_some(Err(Nfs4Status::DelegRevoked))
    }

    /// FREE_STATEID of a revoked delegation stateid: forgotten (true when it was one).
    pub(crate) fn free_revoked(&self, sid: &Stateid4) -> bool {
        self.inner.lock().take_revoked(&sid.other)
    }

    /// The SEQUENCE status flags for `client`: CB_PATH_DOWN when it holds delegations
    /// without a usable back channel, RECALLABLE_STATE_REVOKED while a revoked
    /// delegation of its is not freed.
    pub(crate) fn status_flags(&self, client: u64) -> u32 {
        let (holds, revoked) = {
            let g = self.inner.lock();
            let holds = g.held.contains_key(&client);
            let revoked = g.revoked_of.contains_key(&client);
            (holds, revoked)
        };
        let mut flags = 0;
        if holds && self.back_for(client).is_none() {
            flags |= SEQ4_STATUS_CB_PATH_DOWN;
        }
        if revoked {
            flags |= SEQ4_STATUS_RECALLABLE_STATE_REVOKED;
        }
        flags
    }

    /// Forgets everything of departed clients (their core leases are released with
    /// the rest of their core state).
    pub(crate) fn forget_clients(&self, clients: &[u64]) {
        if clients.is_empty() {
            return;
        }
        let mut g = self.inner.lock();
        let gone: Vec<[u8; 12]> = g
            .delegs
            .iter()
            .filter(|(_, d)| clients.contains(&d.client))
            .map(|(o, _)| *o)
            .collect();
        for o in gone {
            g.take(&o);
        }
        let revoked: Vec<[u8; 12]> = g
            .revoked
            .iter()
            .filter(|(_, c)| clients.contains(c))
            .map(|(o, _)| *o)
            .collect();
        for o in revoked {
            g.take_revoked(&o);
        }
        g.back.retain(|_, (c, _)| !clients.contains(c));
    }

    /// The delegation of `lease` to recall: its stateid and what it is of; None when
    /// it is gone or already being recalled (a write delegation broken by a read and
    /// then by a write is recalled once: NFSv4 recalls the whole delegation).
    pub(crate) fn recalling(&self, lease: LeaseId) -> Option<(Stateid4, Deleg)> {
        let mut g = self.inner.lock();
        let other = *g.by_lease.get(&lease)?;
        let d = g.delegs.get_mut(&other)?;
        if d.recalled {
            return None;
        }
        d.recalled = true;
        Some((Stateid4 { seqid: 1, other }, d.clone()))
    }

    /// Takes the delegation away if it is still held; whether it was.
    pub(crate) fn revoke(&self, (nlm, metrics): (&Nlm, &NfsMetrics), sid: &Stateid4) -> bool {
        let d = {
            let mut g = self.inner.lock();
            let Some(d) = g.take(&sid.other) else {
                return false;
            };
            g.add_revoked(sid.other, d.client);
            d
        };
        nlm.manager(d.share).revoke_lease(d.lease);
        metrics.delegations_revoked.inc();
        tracing::info!(client = %format_args!("{:#x}", d.client), "delegation revoked: recall not answered within the lease");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SEQUENCE status flags this server sets, as RFC 8881 section 18.46 numbers them.
    #[test]
    fn sequence_status_flags_are_the_rfcs() {
        assert_eq!(SEQ4_STATUS_CB_PATH_DOWN, 0x1);
        assert_eq!(SEQ4_STATUS_RECALLABLE_STATE_REVOKED, 0x40);
    }
}
