//! NFSv4.1 server state, in memory (RFC 8881 sections 2.4, 2.10, 8, 9): client IDs,
//! sessions with their slot tables and reply caches, and the stateids of opens and
//! lock-owners; and NFSv4.0's owner sequence records (`owners::Owners`, under the same
//! mutex, removed with their client) and the callback path a client's SETCLIENTID
//! offered until its SETCLIENTID_CONFIRM (`cb40`).
//!
//! Invariants:
//! - a client ID and a stateid carry this server instance's `epoch`: those of a previous
//!   instance are unknown (NFS4ERR_STALE_CLIENTID, NFS4ERR_BAD_STATEID), never mistaken
//!   for current ones;
//! - a slot runs one request at a time: [`Session::begin`] takes it (the sequence ID one
//!   above the last), [`Session::finish`] stores the reply, and a request with the last
//!   sequence ID gets that stored reply again, byte for byte (RFC 8881 section 2.10.6.1);
//! - what clients can make is bounded: [`MAX_CLIENTS`] client records (more is
//!   NFS4ERR_DELAY until one expires), [`MAX_SESSIONS`] sessions per client
//!   (NFS4ERR_NOSPC), [`MAX_STATES_PER_CLIENT`] stateids per client and
//!   [`MAX_STATES`] in all (NFS4ERR_NOSPC), so a hostile client cannot grow the
//!   server's memory without end;
//! - a client whose lease (`lease` seconds, renewed by every SEQUENCE, RENEW and use of
//!   its stateids) ran out and that holds nothing (no stateid, no delegation) is removed
//!   with its sessions by [`Nfs4State::expire`]. One that holds state stays, as a
//!   *courtesy client* (RFC 8881 section 8.4.3 leaves this to the server): coming back
//!   before anything else happens, it simply goes on (its lease renewed). It is removed
//!   when another client's request conflicts with its state ([`Nfs4State::take_courtesy`],
//!   driven by `courtesy`), when it has been silent `lease + courtesy` (the
//!   `nfs.v4.courtesy_seconds` limit), or when more than [`MAX_COURTESY`] courtesy clients
//!   exist (the longest silent go first; a new client at [`MAX_CLIENTS`] also makes room
//!   by removing the longest silent one). Whether a client is a courtesy client is a
//!   function of its last renewal and the clock, never a flag: the one decision point is
//!   the removal under the mutex, so a client renewing and a conflict racing for it
//!   cannot both win;
//! - what a removed client held in the core (share reservations, byte-range locks, open
//!   references) is handed back to the caller to release, with the client's owner (whose
//!   persisted records `grace` deletes then, not before), so nothing here awaits or
//!   calls into the core under the mutex.

use super::owners::Owners;
use crate::cblink::Callback;
use crate::nfs4::Nfs4Status;
use crate::nfs4::types::{SessionId4, Stateid4, Verifier4};
use bytes::Bytes;
use dittofs_types::{Ino, ShareId};
use dittofs_vfs::state::OpenId;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most client records.
pub(crate) const MAX_CLIENTS: usize = 1024;
/// The most sessions of one client.
pub(crate) const MAX_SESSIONS: usize = 8;
/// The most stateids (opens, lock-owners per file) of one client.
pub(crate) const MAX_STATES_PER_CLIENT: usize = 1 << 16;
/// The most stateids in all.
pub(crate) const MAX_STATES: usize = 1 << 18;
/// The most courtesy clients (expired, state kept) at once.
pub(crate) const MAX_COURTESY: usize = 256;

/// One slot of a session's table.
#[derive(Debug, Default)]
struct Slot {
    seq: u32,
    busy: bool,
    reply: Option<Bytes>,
}

/// What a SEQUENCE's slot and sequence ID say about the request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SlotCheck {
    /// A new request: run it, then [`Session::finish`].
    New,
    /// A retransmission of the last request: its reply.
    Replay(Bytes),
}

/// A session: its client, its negotiated limits and its slot table.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) client: u64,
    pub(crate) max_req: u32,
    pub(crate) max_ops: u32,
    pub(crate) max_resp: u32,
    pub(crate) max_resp_cached: u32,
    slots: Mutex<Vec<Slot>>,
}

impl Session {
    /// The number of slots.
    pub(crate) fn nslots(&self) -> u32 {
        self.slots.lock().len() as u32
    }

    /// Takes slot `slot` for a request with sequence ID `seq`.
    pub(crate) fn begin(&self, slot: u32, seq: u32) -> Result<SlotCheck, Nfs4Status> {
        let mut slots = self.slots.lock();
        let s = slots.get_mut(slot as usize).ok_or(Nfs4Status::BadSlot)?;
        if seq == s.seq.wrapping_add(1) && !s.busy {
            s.seq = seq;
            s.busy = true;
            s.reply = None;
            return Ok(SlotCheck::New);
        }
        if seq != s.seq {
            return Err(Nfs4Status::SeqMisordered);
        }
        if s.busy {
            return Err(Nfs4Status::Delay);
        }
        s.reply
            .clone()
            .map(SlotCheck::Replay)
            .ok_or(Nfs4Status::RetryUncachedRep)
    }

    /// Ends the request on `slot`, keeping `reply` for retransmissions (None: not
    /// cached, a retransmission gets NFS4ERR_RETRY_UNCACHED_REP).
    pub(crate) fn finish(&self, slot: u32, reply: Option<Bytes>) {
        if let Some(s) = self.slots.lock().get_mut(slot as usize) {
            s.busy = false;
            s.reply = reply;
        }
    }
}

/// A client ID (EXCHANGE_ID) and what it holds.
#[derive(Debug)]
struct Client {
    owner: Vec<u8>,
    verifier: Verifier4,
    confirmed: bool,
    /// The CREATE_SESSION sequence ID expected next.
    cs_seq: u32,
    /// The reply to the last CREATE_SESSION (its replay).
    cs_reply: Option<Bytes>,
    last_renew: Instant,
    reclaim_complete: bool,
    /// NFSv4.0: the callback path the last SETCLIENTID offered (None inside: none
    /// usable), until SETCLIENTID_CONFIRM takes it (`cb40`).
    cb_offer: Option<Option<Callback>>,
}

/// What a stateid stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StateKind {
    /// An open of `owner` (open-owner bytes) with its share access and deny bits.
    Open { access: u32, deny: u32 },
    /// The locks of a lock-owner on a file, opened through the open stateid `open`.
    Lock { open: [u8; 12] },
}

/// A stateid's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateEntry {
    pub(crate) client: u64,
    pub(crate) share: ShareId,
    pub(crate) ino: Ino,
    pub(crate) owner: Vec<u8>,
    pub(crate) seqid: u32,
    pub(crate) kind: StateKind,
    /// The share reservation in the lock manager (opens only).
    pub(crate) lm_open: Option<OpenId>,
}

/// What an expired or destroyed client held in the core, for the caller to release.
#[derive(Debug, Default)]
pub(crate) struct Released {
    pub(crate) clients: Vec<u64>,
    /// Their owners (`co_ownerid`, SETCLIENTID `id`): their records go too.
    pub(crate) owners: Vec<Vec<u8>>,
    pub(crate) opens: Vec<StateEntry>,
}

impl Released {
    /// Adds what another client held.
    fn add(&mut self, r: Released) {
        self.clients.extend(r.clients);
        self.owners.extend(r.owners);
        self.opens.extend(r.opens);
    }
}

#[derive(Debug, Default)]
struct Inner {
    clients: HashMap<u64, Client>,
    sessions: HashMap<SessionId4, Arc<Session>>,
    states: HashMap<[u8; 12], StateEntry>,
    /// Stateids per client.
    per_client: HashMap<u64, usize>,
    counter: u64,
    last_sweep: Option<Instant>,
    /// NFSv4.0 open- and lock-owner sequence IDs (`seqid`).
    owners: Owners,
}

/// The server's NFSv4 state.
#[derive(Debug)]
pub(crate) struct Nfs4State {
    epoch: u32,
    pub(crate) lease: Duration,
    /// How long past its lease a courtesy client keeps its state at most.
    courtesy: Duration,
    inner: Mutex<Inner>,
}

/// What [`Nfs4State::take_courtesy`] found.
#[derive(Debug)]
pub(crate) enum Taken {
    /// The client was a courtesy client: removed, here is what it held.
    Released(Released),
    /// The client renews its lease: its state stands.
    Active,
    /// No such client (removed already: its state is released or being released).
    Unknown,
}

/// Negotiated session limits (see `proc4::session`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_req: u32,
    pub(crate) max_ops: u32,
    pub(crate) max_resp: u32,
    pub(crate) max_resp_cached: u32,
    pub(crate) slots: u32,
}

impl Nfs4State {
    pub(crate) fn new(lease: Duration, courtesy: Duration) -> Nfs4State {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let epoch = (now.as_secs() as u32) ^ std::process::id().rotate_left(16);
        Nfs4State {
            epoch: epoch.max(1),
            lease,
            courtesy,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn next(inner: &mut Inner) -> u64 {
        inner.counter += 1;
        inner.counter
    }

    fn new_clientid(&self, inner: &mut Inner) -> u64 {
        (u64::from(self.epoch) << 32) | (Self::next(inner) & 0xffff_ffff)
    }

    /// EXCHANGE_ID: the client ID of `owner`, its CREATE_SESSION sequence ID and whether
    /// it is confirmed. A new verifier (the client restarted) replaces the old record;
    /// what it held is returned to be released.
    pub(crate) fn exchange_id(
        &self,
        owner: &[u8],
        verifier: Verifier4,
    ) -> Result<(u64, u32, bool, Released), Nfs4Status> {
        let mut g = self.inner.lock();
        let found = g
            .clients
            .iter()
            .find(|(_, c)| c.owner == owner)
            .map(|(id, c)| (*id, c.verifier == verifier));
        let mut released = Released::default();
        if let Some((id, same)) = found {
            if same {
                let c = &g.clients[&id];
                return Ok((id, c.cs_seq, c.confirmed, released));
            }
            released = Self::remove_client(&mut g, id);
        }
        if g.clients.len() >= MAX_CLIENTS {
            let oldest = self.expired(&g, Instant::now()).into_iter().min();
            let (_, id) = oldest.ok_or(Nfs4Status::Delay)?;
            released.add(Self::remove_client(&mut g, id));
        }
        let id = self.new_clientid(&mut g);
        g.clients.insert(
            id,
            Client {
                owner: owner.to_vec(),
                verifier,
                confirmed: false,
                cs_seq: 1,
                cs_reply: None,
                last_renew: Instant::now(),
                reclaim_complete: false,
                cb_offer: None,
            },
        );
        Ok((id, 1, false, released))
    }

    /// CREATE_SESSION's sequencing: Ok(None) to create a session, Ok(Some(reply)) for a
    /// retransmission of the last one.
    pub(crate) fn create_session_check(
        &self,
        clientid: u64,
        seq: u32,
    ) -> Result<Option<Bytes>, Nfs4Status> {
        let g = self.inner.lock();
        let c = g.clients.get(&clientid).ok_or(Nfs4Status::StaleClientId)?;
        if seq == c.cs_seq {
            return Ok(None);
        }
        if seq == c.cs_seq.wrapping_sub(1) {
            return c
                .cs_reply
                .clone()
                .map(Some)
                .ok_or(Nfs4Status::SeqMisordered);
        }
        Err(Nfs4Status::SeqMisordered)
    }

    /// Creates a session for `clientid` (confirming the client) and records `reply`
    /// (built by `make` from the new session's ID) as CREATE_SESSION's replay.
    pub(crate) fn create_session(
        &self,
        clientid: u64,
        limits: Limits,
        make: impl FnOnce(SessionId4) -> Bytes,
    ) -> Result<Bytes, Nfs4Status> {
        let mut g = self.inner.lock();
        if !g.clients.contains_key(&clientid) {
            return Err(Nfs4Status::StaleClientId);
        }
        if g.sessions.values().filter(|s| s.client == clientid).count() >= MAX_SESSIONS {
            return Err(Nfs4Status::NoSpc);
        }
        let n = Self::next(&mut g);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&clientid.to_be_bytes());
        id[8..12].copy_from_slice(&self.epoch.to_be_bytes());
        id[12..].copy_from_slice(&(n as u32).to_be_bytes());
        let slots = (0..limits.slots).map(|_| Slot::default()).collect();
        let s = Session {
            client: clientid,
            max_req: limits.max_req,
            max_ops: limits.max_ops,
            max_resp: limits.max_resp,
            max_resp_cached: limits.max_resp_cached,
            slots: Mutex::new(slots),
        };
        g.sessions.insert(id, Arc::new(s));
        let reply = make(id);
        if let Some(c) = g.clients.get_mut(&clientid) {
            c.confirmed = true;
            c.cs_seq = c.cs_seq.wrapping_add(1);
            c.cs_reply = Some(reply.clone());
            c.last_renew = Instant::now();
        }
        Ok(reply)
    }

    /// The session `id`, renewing its client's lease.
    pub(crate) fn session(&self, id: &SessionId4) -> Result<Arc<Session>, Nfs4Status> {
        let mut g = self.inner.lock();
        let s = g.sessions.get(id).cloned().ok_or(Nfs4Status::BadSession)?;
        if let Some(c) = g.clients.get_mut(&s.client) {
            c.last_renew = Instant::now();
        }
        Ok(s)
    }

    /// DESTROY_SESSION.
    pub(crate) fn destroy_session(&self, id: &SessionId4) -> Result<(), Nfs4Status> {
        let mut g = self.inner.lock();
        g.sessions
            .remove(id)
            .map(|_| ())
            .ok_or(Nfs4Status::BadSession)
    }

    /// DESTROY_CLIENTID: refused while the client has sessions.
    pub(crate) fn destroy_client(&self, id: u64) -> Result<Released, Nfs4Status> {
        let mut g = self.inner.lock();
        if !g.clients.contains_key(&id) {
            return Err(Nfs4Status::StaleClientId);
        }
        if g.sessions.values().any(|s| s.client == id) {
            return Err(Nfs4Status::ClientIdBusy);
        }
        Ok(Self::remove_client(&mut g, id))
    }

    /// Renews the lease of `clientid` (NFSv4.0 RENEW and operations naming it).
    pub(crate) fn renew(&self, clientid: u64) -> Result<(), Nfs4Status> {
        let mut g = self.inner.lock();
        let c = g
            .clients
            .get_mut(&clientid)
            .ok_or(Nfs4Status::StaleClientId)?;
        c.last_renew = Instant::now();
        Ok(())
    }

    /// The SETCLIENTID_CONFIRM verifier of `clientid`.
    pub(crate) fn confirm_verifier(&self, clientid: u64) -> Verifier4 {
        (clientid ^ u64::from(self.epoch).rotate_left(17)).to_be_bytes()
    }

    /// SETCLIENTID_CONFIRM: confirms the client when the verifier is its own.
    pub(crate) fn confirm(&self, clientid: u64, v: Verifier4) -> Result<(), Nfs4Status> {
        let want = self.confirm_verifier(clientid);
        let mut g = self.inner.lock();
        let c = g
            .clients
            .get_mut(&clientid)
            .ok_or(Nfs4Status::StaleClientId)?;
        if v != want {
            return Err(Nfs4Status::StaleClientId);
        }
        c.confirmed = true;
        c.last_renew = Instant::now();
        Ok(())
    }

    /// SETCLIENTID: `offer` is the callback path `clientid` offers (None: no usable one).
    pub(crate) fn offer_callback(&self, clientid: u64, offer: Option<Callback>) {
        if let Some(c) = self.inner.lock().clients.get_mut(&clientid) {
            c.cb_offer = Some(offer);
        }
    }

    /// SETCLIENTID_CONFIRM: the callback path offered since the last confirmation, if
    /// a SETCLIENTID offered one (None inside: it offered none usable).
    pub(crate) fn take_callback(&self, clientid: u64) -> Option<Option<Callback>> {
        self.inner
            .lock()
            .clients
            .get_mut(&clientid)?
            .cb_offer
            .take()
    }

    /// Whether `clientid` is a client record.
    pub(crate) fn has_client(&self, clientid: u64) -> bool {
        self.inner.lock().clients.contains_key(&clientid)
    }

    /// RELEASE_LOCKOWNER: removes the lock stateids of a lock-owner; returns them.
    pub(crate) fn remove_lock_owner(&self, client: u64, owner: &[u8]) -> Vec<StateEntry> {
        let mut g = self.inner.lock();
        let mut gone = Vec::new();
        g.states.retain(|_, s| {
            let hit =
                s.client == client && s.owner == owner && matches!(s.kind, StateKind::Lock { .. });
            if hit {
                gone.push(s.clone());
            }
            !hit
        });
        if let Some(n) = g.per_client.get_mut(&client) {
            *n = n.saturating_sub(gone.len());
        }
        gone
    }

    /// Runs `f` on the NFSv4.0 owner sequence records.
    pub(crate) fn owners<R>(&self, f: impl FnOnce(&mut Owners) -> R) -> R {
        f(&mut self.inner.lock().owners)
    }

    /// The owner of client `id` (its `co_ownerid` or SETCLIENTID `id`).
    pub(crate) fn owner_of(&self, id: u64) -> Result<Vec<u8>, Nfs4Status> {
        let g = self.inner.lock();
        let c = g.clients.get(&id).ok_or(Nfs4Status::StaleClientId)?;
        Ok(c.owner.clone())
    }

    /// RECLAIM_COMPLETE: once per client.
    pub(crate) fn reclaim_complete(&self, id: u64) -> Result<(), Nfs4Status> {
        let mut g = self.inner.lock();
        let c = g.clients.get_mut(&id).ok_or(Nfs4Status::StaleClientId)?;
        if c.reclaim_complete {
            return Err(Nfs4Status::CompleteAlready);
        }
        c.reclaim_complete = true;
        Ok(())
    }

    fn remove_client(g: &mut Inner, id: u64) -> Released {
        let owners = g.clients.remove(&id).map(|c| c.owner).into_iter().collect();
        g.per_client.remove(&id);
        g.owners.forget_client(id);
        g.sessions.retain(|_, s| s.client != id);
        let mut opens = Vec::new();
        g.states.retain(|_, st| {
            if st.client != id {
                return true;
            }
            if matches!(st.kind, StateKind::Open { .. }) {
                opens.push(st.clone());
            }
            false
        });
        Released {
            clients: vec![id],
            owners,
            opens,
        }
    }

    /// Sweeps the clients whose lease ran out (at most once a second): those holding
    /// nothing (no stateid; `delegating` lists the clients holding delegations), those
    /// silent past the courtesy limit and the longest silent courtesy clients past
    /// [`MAX_COURTESY`] are removed with everything they held; the others stay as
    /// courtesy clients.
    pub(crate) fn expire(&self, now: Instant, delegating: &HashSet<u64>) -> Released {
        if !self.sweep_due(now) {
            return Released::default();
        }
        let mut g = self.inner.lock();
        g.last_sweep = Some(now);
        let limit = self.lease.saturating_add(self.courtesy);
        let mut dead = Vec::new();
        let mut courtesy = Vec::new();
        for (renewed, id) in self.expired(&g, now) {
            let holds = g.per_client.get(&id).is_some_and(|n| *n > 0) || delegating.contains(&id);
            if !holds || now.saturating_duration_since(renewed) > limit {
                dead.push(id);
            } else {
                courtesy.push((renewed, id));
            }
        }
        if courtesy.len() > MAX_COURTESY {
            courtesy.sort();
            let extra = courtesy.len() - MAX_COURTESY;
            dead.extend(courtesy[..extra].iter().map(|(_, id)| *id));
        }
        let mut out = Released::default();
        for id in dead {
            out.add(Self::remove_client(&mut g, id));
        }
        out
    }

    /// The clients whose lease ran out at `now`, with their last renewal.
    fn expired(&self, g: &Inner, now: Instant) -> Vec<(Instant, u64)> {
        g.clients
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.last_renew) > self.lease)
            .map(|(id, c)| (c.last_renew, *id))
            .collect()
    }

    /// Whether a sweep ([`Nfs4State::expire`]) is due at `now` (at most one a second).
    pub(crate) fn sweep_due(&self, now: Instant) -> bool {
        let g = self.inner.lock();
        g.last_sweep
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
    }

    /// Whether client `id` exists and its lease runs at `now`.
    pub(crate) fn renews(&self, id: u64, now: Instant) -> bool {
        let g = self.inner.lock();
        g.clients
            .get(&id)
            .is_some_and(|c| now.saturating_duration_since(c.last_renew) <= self.lease)
    }

    /// A conflict with the state of client `id`: removed (with what it held, to be
    /// released) if it is a courtesy client at `now`.
    pub(crate) fn take_courtesy(&self, id: u64, now: Instant) -> Taken {
        let mut g = self.inner.lock();
        let Some(c) = g.clients.get(&id) else {
            return Taken::Unknown;
        };
        if now.saturating_duration_since(c.last_renew) <= self.lease {
            return Taken::Active;
        }
        Taken::Released(Self::remove_client(&mut g, id))
    }

    /// A new stateid for `entry` (seqid 1); NFS4ERR_NOSPC past the bounds.
    pub(crate) fn add_state(&self, mut entry: StateEntry) -> Result<Stateid4, Nfs4Status> {
        let mut g = self.inner.lock();
        let mine = g.per_client.get(&entry.client).copied().unwrap_or(0);
        if mine >= MAX_STATES_PER_CLIENT || g.states.len() >= MAX_STATES {
            return Err(Nfs4Status::NoSpc);
        }
        *g.per_client.entry(entry.client).or_insert(0) += 1;
        let n = Self::next(&mut g);
        let mut other = [0u8; 12];
        other[..4].copy_from_slice(&self.epoch.to_be_bytes());
        other[4..].copy_from_slice(&n.to_be_bytes());
        entry.seqid = 1;
        g.states.insert(other, entry);
        Ok(Stateid4 { seqid: 1, other })
    }

    /// The state of the open (or lock) stateid of `client`/`owner` on a file.
    pub(crate) fn find_state(
        &self,
        client: u64,
        owner: &[u8],
        ino: (ShareId, Ino),
        lock: bool,
    ) -> Option<(Stateid4, StateEntry)> {
        let g = self.inner.lock();
        g.states
            .iter()
            .find(|(_, e)| {
                e.client == client
                    && e.owner == owner
                    && (e.share, e.ino) == ino
                    && matches!(e.kind, StateKind::Lock { .. }) == lock
            })
            .map(|(o, e)| {
                (
                    Stateid4 {
                        seqid: e.seqid,
                        other: *o,
                    },
                    e.clone(),
                )
            })
    }

    /// Looks a stateid up: BAD_STATEID when unknown (or of another instance),
    /// OLD_STATEID when its seqid is behind (seqid 0 means "the current one").
    /// Using a stateid renews its client's lease.
    pub(crate) fn state(&self, sid: &Stateid4) -> Result<StateEntry, Nfs4Status> {
        let mut g = self.inner.lock();
        let e = g.states.get(&sid.other).ok_or(Nfs4Status::BadStateid)?;
        if sid.seqid != 0 && sid.seqid < e.seqid {
            return Err(Nfs4Status::OldStateid);
        }
        if sid.seqid > e.seqid {
            return Err(Nfs4Status::BadStateid);
        }
        let e = e.clone();
        if let Some(c) = g.clients.get_mut(&e.client) {
            c.last_renew = Instant::now();
        }
        Ok(e)
    }

    /// Changes a stateid's state with `f` and advances its seqid; returns the new stateid.
    pub(crate) fn update_state(
        &self,
        sid: &Stateid4,
        f: impl FnOnce(&mut StateEntry),
    ) -> Result<Stateid4, Nfs4Status> {
        let mut g = self.inner.lock();
        let e = g.states.get_mut(&sid.other).ok_or(Nfs4Status::BadStateid)?;
        f(e);
        e.seqid = e.seqid.wrapping_add(1).max(1);
        Ok(Stateid4 {
            seqid: e.seqid,
            other: sid.other,
        })
    }

    /// Removes a stateid (CLOSE, FREE_STATEID) with the lock stateids opened through
    /// it; returns what it was and the lock stateids removed with it.
    pub(crate) fn remove_state(
        &self,
        sid: &Stateid4,
    ) -> Result<(StateEntry, Vec<StateEntry>), Nfs4Status> {
        let mut g = self.inner.lock();
        let e = g.states.remove(&sid.other).ok_or(Nfs4Status::BadStateid)?;
        let mut locks = Vec::new();
        g.states.retain(|_, s| {
            let of_it = s.kind == StateKind::Lock { open: sid.other };
            if of_it {
                locks.push(s.clone());
            }
            !of_it
        });
        if let Some(n) = g.per_client.get_mut(&e.client) {
            *n = n.saturating_sub(1 + locks.len());
        }
        Ok((e, locks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_req: 1 << 20,
            max_ops: 8,
            max_resp: 1 << 20,
            max_resp_cached: 4096,
            slots: 2,
        }
    }

    fn session(st: &Nfs4State) -> (SessionId4, Arc<Session>) {
        let (id, seq, confirmed, _) = st.exchange_id(b"client-a", [1; 8]).unwrap();
        assert_eq!((seq, confirmed), (1, false));
        assert_eq!(st.create_session_check(id, 1), Ok(None));
        let reply = st
            .create_session(id, limits(), |sid| Bytes::copy_from_slice(&sid))
            .unwrap();
        let mut sid = [0u8; 16];
        sid.copy_from_slice(&reply);
        (sid, st.session(&sid).unwrap())
    }

    #[test]
    fn slots_replay_the_last_reply_exactly_once_per_sequence() {
        let st = Nfs4State::new(Duration::from_secs(90), Duration::from_secs(3600));
        let (_, s) = session(&st);
        assert_eq!(s.begin(0, 1), Ok(SlotCheck::New));
        // the same sequence while the first is running: DELAY
        assert_eq!(s.begin(0, 1), Err(Nfs4Status::Delay));
        s.finish(0, Some(Bytes::from_static(b"reply-1")));
        assert_eq!(
            s.begin(0, 1),
            Ok(SlotCheck::Replay(Bytes::from_static(b"reply-1")))
        );
        assert_eq!(s.begin(0, 3), Err(Nfs4Status::SeqMisordered));
        assert_eq!(s.begin(0, 0), Err(Nfs4Status::SeqMisordered));
        assert_eq!(s.begin(0, 2), Ok(SlotCheck::New));
        s.finish(0, None);
        assert_eq!(s.begin(0, 2), Err(Nfs4Status::RetryUncachedRep));
        // slots are independent; slot 2 does not exist
        assert_eq!(s.begin(1, 1), Ok(SlotCheck::New));
        assert_eq!(s.begin(2, 1), Err(Nfs4Status::BadSlot));
    }

    #[test]
    fn create_session_is_sequenced_and_replayed() {
        let st = Nfs4State::new(Duration::from_secs(90), Duration::from_secs(3600));
        let (sid, s) = session(&st);
        let id = s.client;
        assert!(matches!(st.create_session_check(id, 1), Ok(Some(_))));
        assert_eq!(st.create_session_check(id, 2), Ok(None));
        assert_eq!(
            st.create_session_check(id, 5),
            Err(Nfs4Status::SeqMisordered)
        );
        assert_eq!(
            st.create_session_check(7, 1),
            Err(Nfs4Status::StaleClientId)
        );
        // same owner and verifier: the same, now confirmed, client
        let (again, _, confirmed, _) = st.exchange_id(b"client-a", [1; 8]).unwrap();
        assert_eq!((again, confirmed), (id, true));
        // a new verifier (client restart) is a new client; the old sessions go
        let (new, _, confirmed, rel) = st.exchange_id(b"client-a", [2; 8]).unwrap();
        assert!(new != id && !confirmed);
        assert_eq!(rel.clients, vec![id]);
        assert_eq!(st.session(&sid).unwrap_err(), Nfs4Status::BadSession);
    }

    #[test]
    fn stateids_check_seqid_and_expire_with_their_client() {
        let st = Nfs4State::new(Duration::from_secs(90), Duration::from_secs(3600));
        let (session_id, s) = session(&st);
        let e = StateEntry {
            client: s.client,
            share: ShareId(1),
            ino: Ino(5),
            owner: b"o".to_vec(),
            seqid: 0,
            kind: StateKind::Open { access: 3, deny: 0 },
            lm_open: None,
        };
        let sid = st.add_state(e).unwrap();
        assert!(st.state(&sid).is_ok());
        let sid2 = st.update_state(&sid, |_| {}).unwrap();
        assert_eq!(sid2.seqid, 2);
        assert_eq!(st.state(&sid), Err(Nfs4Status::OldStateid));
        let zero = Stateid4 { seqid: 0, ..sid2 };
        assert!(st.state(&zero).is_ok());
        let future = Stateid4 { seqid: 9, ..sid2 };
        assert_eq!(st.state(&future), Err(Nfs4Status::BadStateid));
        // nothing expires within the lease
        let none = HashSet::new();
        assert!(st.expire(Instant::now(), &none).clients.is_empty());
        // past the lease the client keeps its state (courtesy); past the limit it goes
        let later = Instant::now() + Duration::from_secs(200);
        assert!(st.expire(later, &none).clients.is_empty());
        let limit = Instant::now() + Duration::from_secs(90 + 3600 + 5);
        let rel = st.expire(limit, &none);
        assert_eq!(rel.clients, vec![s.client]);
        assert_eq!(rel.opens.len(), 1);
        assert_eq!(st.state(&sid2), Err(Nfs4Status::BadStateid));
        assert_eq!(st.session(&session_id).unwrap_err(), Nfs4Status::BadSession);
    }

    fn open_entry(client: u64, ino: u64) -> StateEntry {
        StateEntry {
            client,
            share: ShareId(1),
            ino: Ino(ino),
            owner: b"o".to_vec(),
            seqid: 0,
            kind: StateKind::Open { access: 3, deny: 0 },
            lm_open: None,
        }
    }

    #[test]
    fn courtesy_clients_keep_their_state_until_a_conflict() {
        let st = Nfs4State::new(Duration::from_secs(90), Duration::from_secs(3600));
        let (session_id, s) = session(&st);
        let a = s.client;
        let sid = st.add_state(open_entry(a, 5)).unwrap();
        // a client holding nothing goes with its lease; one holding a delegation stays
        let (idle, ..) = st.exchange_id(b"idle", [0; 8]).unwrap();
        let (deleg, ..) = st.exchange_id(b"delegating", [0; 8]).unwrap();
        let delegating = HashSet::from([deleg]);
        let t1 = Instant::now() + Duration::from_secs(100);
        let rel = st.expire(t1, &delegating);
        assert_eq!(rel.clients, vec![idle]);
        assert!(
            st.find_state(a, b"o", (ShareId(1), Ino(5)), false)
                .is_some()
        );
        // within its lease a client's state is never taken
        assert!(matches!(st.take_courtesy(a, Instant::now()), Taken::Active));
        // the courtesy client comes back: its session works and it is active again
        assert!(st.session(&session_id).is_ok());
        assert!(matches!(st.take_courtesy(a, Instant::now()), Taken::Active));
        assert!(st.state(&sid).is_ok());
        // silent again past the lease, a conflict takes everything it held
        let t2 = Instant::now() + Duration::from_secs(100);
        let Taken::Released(rel) = st.take_courtesy(a, t2) else {
            panic!("a courtesy client is released")
        };
        assert_eq!(rel.clients, vec![a]);
        assert_eq!(rel.owners, vec![b"client-a".to_vec()]);
        assert_eq!(rel.opens.len(), 1);
        assert!(matches!(st.take_courtesy(a, t2), Taken::Unknown));
        assert_eq!(st.session(&session_id).unwrap_err(), Nfs4Status::BadSession);
        assert_eq!(st.state(&sid), Err(Nfs4Status::BadStateid));
        assert_eq!(st.renew(a), Err(Nfs4Status::StaleClientId));
    }

    #[test]
    fn courtesy_clients_are_bounded() {
        let lease = Duration::from_millis(300);
        let st = Nfs4State::new(lease, Duration::from_secs(3600));
        let none = HashSet::new();
        let mut ids = Vec::new();
        for i in 0..=MAX_COURTESY {
            let (id, ..) = st.exchange_id(format!("c{i}").as_bytes(), [0; 8]).unwrap();
            st.add_state(open_entry(id, 2)).unwrap();
            ids.push(id);
        }
        std::thread::sleep(lease + Duration::from_millis(50));
        // one too many: the longest silent goes
        let rel = st.expire(Instant::now(), &none);
        assert_eq!(rel.clients, vec![ids[0]]);
        assert_eq!(rel.opens.len(), 1);
        // at MAX_CLIENTS a new client makes room by removing the longest silent one
        for i in 0..MAX_CLIENTS - MAX_COURTESY {
            st.exchange_id(format!("new{i}").as_bytes(), [0; 8])
                .unwrap();
        }
        let (_, _, _, rel) = st.exchange_id(b"one-more", [0; 8]).unwrap();
        assert_eq!(rel.clients, vec![ids[1]]);
        // nobody expired: a new client waits
        for id in &ids[2..] {
            st.renew(*id).unwrap();
        }
        let full = st.exchange_id(b"too-many", [0; 8]);
        assert!(matches!(full, Err(Nfs4Status::Delay)), "{full:?}");
    }

    #[test]
    fn what_clients_make_is_bounded() {
        let st = Nfs4State::new(Duration::from_secs(90), Duration::from_secs(3600));
        for i in 0..MAX_CLIENTS {
            st.exchange_id(format!("c{i}").as_bytes(), [0; 8]).unwrap();
        }
        assert_eq!(
            st.exchange_id(b"one-more", [0; 8]).unwrap_err(),
            Nfs4Status::Delay
        );
        // a known client still gets its record back
        assert!(st.exchange_id(b"c7", [0; 8]).is_ok());
        let (id, ..) = st.exchange_id(b"c8", [0; 8]).unwrap();
        for _ in 0..MAX_SESSIONS {
            st.create_session(id, limits(), |_| Bytes::new()).unwrap();
        }
        assert_eq!(
            st.create_session(id, limits(), |_| Bytes::new())
                .unwrap_err(),
            Nfs4Status::NoSpc
        );
        let entry = |client| StateEntry {
            client,
            share: ShareId(1),
            ino: Ino(2),
            owner: vec![],
            seqid: 0,
            kind: StateKind::Open { access: 1, deny: 0 },
            lm_open: None,
        };
        let mut sids = Vec::new();
        for _ in 0..MAX_STATES_PER_CLIENT {
            sids.push(st.add_state(entry(id)).unwrap());
        }
        assert_eq!(st.add_state(entry(id)).unwrap_err(), Nfs4Status::NoSpc);
        // another client is not affected; a removed stateid makes room again
        let (other, ..) = st.exchange_id(b"c9", [0; 8]).unwrap();
        assert!(st.add_state(entry(other)).is_ok());
        st.remove_state(&sids[0]).unwrap();
        assert!(st.add_state(entry(id)).is_ok());
    }
}
