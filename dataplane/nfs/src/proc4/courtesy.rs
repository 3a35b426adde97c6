//! Lease expiry, courtesy clients and the release of what departed NFSv4 clients held
//! (RFC 8881 sections 8.3 and 8.4.3; RFC 7530 section 9.6.3).
//!
//! - Expiry ([`sweep`], before every COMPOUND, at most once a second in `state`): a
//!   client silent past its lease that holds nothing goes; one that holds opens, locks or
//!   delegations stays as a *courtesy client* (`state::Nfs4State::expire` has the
//!   limits: `nfs.v4.courtesy_seconds` past the lease, at most `state::MAX_COURTESY`).
//!   Its SEQUENCE, RENEW or any use of its stateids before it is released renews its
//!   lease and it goes on with everything it held.
//! - A conflict releases it: every request that the lock manager refuses because of
//!   another NFSv4 client's state (OPEN and its upgrade: share reservations; LOCK,
//!   LOCKT: byte ranges; NLM LOCK, TEST, SHARE from NFSv3 clients, through `nlmd`) runs
//!   through [`retry`]: the refusal names the holder (`LockError::Conflict`,
//!   `ShareViolation`), and if that holder is a courtesy client it is released and the
//!   request runs again, at once, inside the same call. So the request succeeds without
//!   a round trip (the alternative, NFS4ERR_DELAY, costs the client a retry delay and
//!   NLM has no "retry" answer at all). A holder that renews is a real conflict
//!   (DENIED, SHARE_DENIED). A delegation of a courtesy client is not recalled: `deleg`
//!   releases the client instead of sending CB_RECALL, and the breaker's retry
//!   (NFS4ERR_DELAY, NFS3ERR_JUKEBOX) then finds the file free.
//! - [`release`] gives back what departed clients (expired, destroyed, restarted,
//!   released courtesy clients) held: first, without awaiting, the core state (share
//!   reservations, byte-range locks, leases in every share's lock manager, their
//!   delegations and blocked-lock registrations); then the open references and, last,
//!   the clients' persisted records (`grace`): a courtesy client's record stays until its
//!   state is gone, so it can still reclaim after a restart while it holds state.
//!
//! Invariants: the decision to release a courtesy client is taken once, under the state
//! mutex (`state::Nfs4State::take_courtesy`), so a client renewing and a conflict racing
//! for it cannot both win; a request releases at most [`MAX_RELEASES`] clients and then
//! answers "retry later" ([`Blocked::Later`]), so no request runs unbounded. This module
//! imports no NFSv3/NLM module: `nlmd` calls [`retry`], never the other way round.

use super::state::{Released, Taken};
use crate::shared::Shared;
use dittofs_vfs::state::{ClientId, LockError, Owner, Protocol};
use std::collections::HashSet;
use std::time::Instant;

/// The most courtesy clients one request releases.
pub(crate) const MAX_RELEASES: usize = 16;

/// Why a request run through [`retry`] failed.
#[derive(Debug)]
pub(crate) enum Blocked {
    /// Refused by state that stands (an active client's, another protocol's) or for
    /// another reason.
    By(LockError),
    /// Still refused by courtesy state after [`MAX_RELEASES`] releases: retry later.
    Later,
}

/// What [`release_client`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Courtesy {
    /// A courtesy client: released.
    Released,
    /// A client that renews its lease: its state stands.
    Active,
    /// No such client any more (another request is releasing it, or did).
    Gone,
}

/// The NFSv4 client whose state refused a request, if it was one.
fn nfs4_holder(e: &LockError) -> Option<u64> {
    let owner: &Owner = match e {
        LockError::Conflict(c) => &c.owner,
        LockError::ShareViolation(s) => &s.owner,
        _ => return None,
    };
    match (owner.protocol, &owner.client) {
        (Protocol::Nfs4, ClientId::Num(id)) => Some(*id),
        _ => None,
    }
}

/// Runs `attempt` until it succeeds or is refused by state that stands, releasing the
/// courtesy clients in its way (see the module header).
pub(crate) async fn retry<T>(
    shared: &Shared,
    mut attempt: impl FnMut() -> Result<T, LockError>,
) -> Result<T, Blocked> {
    let mut released = 0;
    loop {
        let e = match attempt() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let Some(id) = nfs4_holder(&e) else {
            return Err(Blocked::By(e));
        };
        if released == MAX_RELEASES {
            return Err(match shared.nfs4.renews(id, Instant::now()) {
                true => Blocked::By(e),
                false => Blocked::Later,
            });
        }
        released += 1;
        match release_client(shared, id).await {
            Courtesy::Active => return Err(Blocked::By(e)),
            Courtesy::Released => {}
            // released by another request right now: its state is going
            Courtesy::Gone => tokio::task::yield_now().await,
        }
    }
}

/// Releases client `id` if it is a courtesy client now; what it was.
pub(crate) async fn release_client(shared: &Shared, id: u64) -> Courtesy {
    let rel = match shared.nfs4.take_courtesy(id, Instant::now()) {
        Taken::Released(rel) => rel,
        Taken::Active => return Courtesy::Active,
        Taken::Unknown => return Courtesy::Gone,
    };
    tracing::info!(client = %format_args!("{id:#x}"), opens = rel.opens.len(), "courtesy client released: another client's request conflicts with its state");
    shared.metrics.courtesy_released.inc();
    release(shared, rel).await;
    Courtesy::Released
}

/// Releases what clients whose lease ran out held (courtesy clients stay, see
/// `state`); once the grace period is over, deletes the records of clients that did
/// not come back.
pub(crate) async fn sweep(shared: &Shared) {
    let now = Instant::now();
    if shared.nfs4.sweep_due(now) {
        let delegating: HashSet<u64> = shared.deleg.holders();
        let rel = shared.nfs4.expire(now, &delegating);
        release(shared, rel).await;
    }
    shared.grace.sweep(&shared.registry).await;
}

/// Gives back what departed clients held: their opens (share reservations and open
/// references), every byte-range lock and lease of theirs, their blocked-lock
/// registrations and, last, their client records.
pub(crate) async fn release(shared: &Shared, rel: Released) {
    if rel.clients.is_empty() {
        return;
    }
    release_core(shared, &rel);
    for e in &rel.opens {
        if let Some(fs) = shared.registry.by_id(e.share) {
            let _ = fs.close_ref(e.ino).await;
        }
    }
    shared.grace.forget(&shared.registry, &rel.owners).await;
}

/// The part of [`release`] in the lock managers and tables (no await).
fn release_core(shared: &Shared, rel: &Released) {
    shared.deleg.forget_clients(&rel.clients);
    shared.lock_waits.forget_clients(&rel.clients);
    for e in &rel.opens {
        if let Some(id) = e.lm_open {
            let _ = shared.nlm.manager(e.share).close(id);
        }
    }
    let managers: Vec<_> = shared.nlm.managers.lock().values().cloned().collect();
    for id in &rel.clients {
        for lm in &managers {
            lm.release_client(Protocol::Nfs4, &ClientId::Num(*id));
        }
    }
}
