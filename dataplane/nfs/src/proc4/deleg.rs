//! NFSv4.1/4.2 read delegations (RFC 8881 sections 10.2, 10.4, 18.6 DELEGRETURN, 20.2
//! CB_RECALL) on the core's leases, and the back channels they are recalled through.
//!
//! - A delegation is a core lease (`LeaseKind::READ_HANDLE`, holder = the client's
//!   owner with an empty key, the same owner every NFSv4 operation of that client
//!   breaks with, so a client's own operations never recall its delegation) plus a
//!   delegation stateid here. It is granted on OPEN for read with deny NONE
//!   ([`Delegations::try_grant`]) to a client whose session has a usable back channel,
//!   when the core grants the lease (no other client's open for write, no recall in
//!   progress) and no other owner holds a byte-range lock on the file. Minor version
//!   0 never gets one (its callback path is a separate connection this server does not
//!   make).
//! - Any conflicting access from any protocol (v3 WRITE/SETATTR size/REMOVE/RENAME, v4
//!   OPEN for write or with deny, WRITE, SETATTR size, REMOVE, RENAME) calls the core's
//!   `break_leases`, which answers "retry" (NFS4ERR_DELAY, NFS3ERR_JUKEBOX) and tells
//!   the breaker; [`run_recalls`] takes those events, sends CB_RECALL on the holder's
//!   back channel and, if the delegation is still held one lease period after the
//!   recall, revokes it (the core lease goes; the stateid answers
//!   NFS4ERR_DELEG_REVOKED and SEQUENCE reports SEQ4_STATUS_RECALLABLE_STATE_REVOKED
//!   until the client frees it with FREE_STATEID).
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
//! (revoke) its lease goes; at most [`MAX_DELEGATIONS`] delegations and
//! [`MAX_REVOKED`] remembered revocations exist (past that, no new grants / an
//! arbitrary revocation is forgotten); per-client counts make SEQUENCE's status flags
//! cheap.

use super::courtesy::Courtesy;
use super::io::owner;
use crate::backchannel::BackChan;
use crate::config::Nfs4Config;
use crate::nfs4::Nfs4Status;
use crate::nfs4::types::{SessionId4, Stateid4};
use crate::shared::Shared;
use dittofs_types::{Ino, ShareId};
use dittofs_vfs::state::{
    BreakCause, ChannelBreaker, LeaseBreaker, LeaseEvent, LeaseId, LeaseKind, LockManager, Protocol,
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
struct Deleg {
    client: u64,
    share: ShareId,
    ino: Ino,
    lease: LeaseId,
    fh: Vec<u8>,
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

    /// Grants a read delegation on `ino` to `client` if it may have one (see the module
    /// header); its stateid (the one the client holds already, if it does; a new one is
    /// counted in `metrics`).
    pub(crate) fn try_grant(
        &self,
        lm: &LockManager,
        client: u64,
        (share, ino): (ShareId, Ino),
        fh: &[u8],
        metrics: &crate::metrics::NfsMetrics,
    ) -> Option<Stateid4> {
        if !self.enabled || self.back_for(client).is_none() {
            return None;
        }
        let holder = owner(client, b"");
        let snap = lm.snapshot(ino);
        if snap.locks.iter().any(|l| !l.owner.same_client(&holder)) {
            return None;
        }
        let mut g = self.inner.lock();
        if g.delegs.len() >= MAX_DELEGATIONS {
            return None;
        }
        let lease = lm.grant_lease(ino, &holder, LeaseKind::READ_HANDLE).ok()?;
        if let Some(other) = g.by_lease.get(&lease) {
            return Some(Stateid4 {
                seqid: 1,
                other: *other,
            });
        }
        g.next += 1;
        let mut other = [0u8; 12];
        other[..4].copy_from_slice(&self.epoch);
        other[4..].copy_from_slice(&(DELEG_MARK | g.next).to_be_bytes());
        let d = Deleg {
            client,
            share,
            ino,
            lease,
            fh: fh.to_vec(),
        };
        g.add(other, d);
        metrics.delegations_granted.inc();
        Some(Stateid4 { seqid: 1, other })
    }

    /// DELEGRETURN of `sid` by `client`: the delegation's lease goes back to the core.
    pub(crate) fn delegreturn(
        &self,
        shared: &Shared,
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
        let _ = shared.nlm.manager(d.share).return_lease(d.lease);
        shared.metrics.delegations_returned.inc();
        Ok(())
    }

    /// What `sid` is as a delegation stateid: None when it is not one; the file it is
    /// for; NFS4ERR_DELEG_REVOKED when it was revoked.
    pub(crate) fn lookup(&self, sid: &Stateid4) -> Option<Result<(u64, ShareId, Ino), Nfs4Status>> {
        let g = self.inner.lock();
        if let Some(d) = g.delegs.get(&sid.other) {
            return Some(Ok((d.client, d.share, d.ino)));
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

    /// The delegation of `lease` being recalled: its stateid and client.
    fn recalling(&self, lease: LeaseId) -> Option<(Stateid4, Deleg)> {
        let g = self.inner.lock();
        let other = *g.by_lease.get(&lease)?;
        let d = g.delegs.get(&other)?.clone();
        Some((Stateid4 { seqid: 1, other }, d))
    }

    /// Takes the delegation away if it is still held; whether it was.
    fn revoke(&self, shared: &Shared, sid: &Stateid4) -> bool {
        let d = {
            let mut g = self.inner.lock();
            let Some(d) = g.take(&sid.other) else {
                return false;
            };
            g.add_revoked(sid.other, d.client);
            d
        };
        shared.nlm.manager(d.share).revoke_lease(d.lease);
        shared.metrics.delegations_revoked.inc();
        tracing::info!(client = %format_args!("{:#x}", d.client), "delegation revoked: recall not answered within the lease");
        true
    }
}

/// Breaks the delegations of other clients on `ino` that `cause` conflicts with:
/// NFS4ERR_DELAY while they are being recalled (the client retries).
pub(super) fn break_for(
    c: &super::Compound<'_>,
    share: ShareId,
    ino: Ino,
    cause: BreakCause,
) -> Result<(), Nfs4Status> {
    // 4.0 gets no delegations: client 0 (never a client ID) breaks every one.
    let client = c.session.as_ref().map_or(0, |s| s.client);
    c.shared
        .nlm
        .manager(share)
        .break_leases(ino, &owner(client, b""), cause)
        .map_err(|e| super::io::lock_status(&e))
}

/// Takes the lock managers' recall events: CB_RECALL to the holder, revocation one
/// lease period later if the delegation is still held. Runs until the server drops.
pub(crate) async fn run_recalls(shared: Arc<Shared>) {
    let Some(mut rx) = shared.deleg.events.lock().take() else {
        return;
    };
    while let Some(ev) = rx.recv().await {
        let LeaseEvent::Recall { lease, holder, .. } = ev else {
            continue;
        };
        if holder.protocol != Protocol::Nfs4 {
            continue;
        }
        let Some((sid, d)) = shared.deleg.recalling(lease) else {
            continue;
        };
        shared.metrics.delegations_recalled.inc();
        let shared = shared.clone();
        tokio::spawn(async move { recall(shared, sid, d).await });
    }
}

/// Recalls one delegation and revokes it if not returned within the lease; a courtesy
/// client's is not recalled: the client is released.
async fn recall(shared: Arc<Shared>, sid: Stateid4, d: Deleg) {
    if super::courtesy::release_client(&shared, d.client).await != Courtesy::Active {
        return;
    }
    let lease = shared.deleg.lease;
    let deadline = tokio::time::Instant::now() + lease;
    let sent = match shared.deleg.back_for(d.client) {
        Some(b) => {
            let timeout = lease.min(crate::backchannel::CB_TIMEOUT);
            tokio::time::timeout(timeout, b.recall(&sid, &d.fh))
                .await
                .unwrap_or(Err(crate::backchannel::CbError::Timeout(timeout)))
        }
        None => Err(crate::backchannel::CbError::NoBackChannel),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "CB_RECALL failed; the delegation is revoked unless returned within the lease");
    }
    tokio::time::sleep_until(deadline).await;
    shared.deleg.revoke(&shared, &sid);
}
