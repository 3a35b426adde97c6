//! Byte-range locks (RFC 8881 sections 18.10-18.12; codecs in `nfs4::io`): LOCK, LOCKT,
//! LOCKU (and NFSv4.0's RELEASE_LOCKOWNER) on the share's `LockManager`, the same one NLM (NFSv3) locks go to, so a v3
//! client's lock and a v4 client's lock on the same bytes conflict.
//!
//! A lock-owner gets one lock stateid per file, made by its first LOCK from an open
//! stateid and removed with that open (CLOSE) or by FREE_STATEID. The owner in the lock
//! manager is `{Nfs4, client ID, lock-owner bytes}`. Blocking lock types (READW_LT,
//! WRITEW_LT) are answered like the others: a conflict is NFS4ERR_DENIED with the
//! holder, and the client polls (RFC 8881 section 9.6); a 4.1/4.2 lock-owner so denied
//! is remembered for a lease (`lockwait`) and told by CB_NOTIFY_LOCK when a lock on the
//! file is released, so it retries at once instead of at its next poll (nothing is
//! granted on its behalf). LOCK and LOCKT first recall other clients' delegations of
//! the file that the lock conflicts with (a holder may keep locks it has not told the
//! server about; NFS4ERR_DELAY meanwhile). A lock of a courtesy client (lease expired,
//! state kept) in the way of a LOCK or LOCKT is released with the rest of that client's
//! state and the request runs again (`courtesy`). Lock state is advisory, as for
//! NLM: READ and WRITE do not check it. In NFSv4.0, LOCK and LOCKU are sequenced and
//! replayed per lock-owner (`seqid`); a new lock-owner's LOCK (open_to_lock_owner4) on
//! its open-owner, and its `lock_seqid` starts the lock-owner's sequence.
//!
//! After a restart (`grace`): during the grace period LOCK and LOCKT are NFS4ERR_GRACE
//! unless the LOCK is a reclaim (`reclaim` set) of a client that may reclaim on the
//! share; a reclaim goes into the same lock manager (so an NLM client is refused the
//! bytes a reclaimed lock holds) and a conflict is NFS4ERR_RECLAIM_CONFLICT. Outside the
//! grace period a reclaim is NFS4ERR_NO_GRACE.

use super::courtesy::{self, Blocked};
use super::lm::{lock_status, owner};
use super::recall::break_for;
use super::seqid::{self, OP_LOCK, OP_LOCKU, OwnerKey, Sequenced};
use super::state::{StateEntry, StateKind};
use super::{Compound, Fail, OpResult, ok};
use crate::nfs4::Nfs4Status;
use crate::nfs4::io::{
    LockArgs, LockDenied, Locker4, LocktArgs, LockuArgs, READW_LT, StateOwner4, WRITEW_LT,
};
use crate::nfs4::types::{Opaque4, Stateid4};
use crate::xdr::XdrEncode;
use dittofs_types::ShareId;
use dittofs_vfs::state::{BreakCause, ByteRange, ClientId, LockConflict, LockError, LockKind};

fn kind(locktype: u32) -> Result<LockKind, Nfs4Status> {
    match locktype {
        1 | 3 => Ok(LockKind::Shared),
        2 | 4 => Ok(LockKind::Exclusive),
        _ => Err(Nfs4Status::Inval),
    }
}

fn range(offset: u64, length: u64) -> Result<ByteRange, Nfs4Status> {
    if length == 0 {
        return Err(Nfs4Status::Inval);
    }
    ByteRange::new(offset, length).map_err(|_| Nfs4Status::BadRange)
}

/// NFS4ERR_DENIED with the conflicting lock.
fn denied(cf: &LockConflict) -> Fail {
    let clientid = match cf.owner.client {
        ClientId::Num(n) => n,
        ClientId::Name(_) => 0,
    };
    Fail {
        status: Nfs4Status::Denied,
        body: LockDenied {
            offset: cf.range.start(),
            length: cf.range.length().unwrap_or(u64::MAX),
            locktype: if cf.kind == LockKind::Exclusive { 2 } else { 1 },
            owner: StateOwner4 {
                clientid,
                owner: Opaque4(cf.owner.key.to_vec()),
            },
        }
        .to_xdr(),
    }
}

fn lock_fail(b: Blocked) -> Fail {
    match &b {
        Blocked::By(LockError::Conflict(cf)) => denied(cf),
        Blocked::By(e) => lock_status(e).into(),
        Blocked::Later => Nfs4Status::Delay.into(),
    }
}

/// The lock stateid a LOCK uses: an existing one, or the lock-owner's on this file
/// (made from the open stateid when new).
fn lock_stateid(c: &Compound<'_>, client: u64, locker: &Locker4) -> Result<Stateid4, Nfs4Status> {
    let st = &c.shared.nfs4;
    match locker {
        Locker4::Existing { lock_stateid, .. } => {
            let sid = c.stateid(lock_stateid)?;
            match st.state(&sid)?.kind {
                StateKind::Lock { .. } => Ok(sid),
                StateKind::Open { .. } => Err(Nfs4Status::BadStateid),
            }
        }
        Locker4::New {
            open_stateid,
            lock_owner,
            ..
        } => {
            let osid = c.stateid(open_stateid)?;
            let open = st.state(&osid)?;
            if !matches!(open.kind, StateKind::Open { .. }) {
                return Err(Nfs4Status::BadStateid);
            }
            let file = (open.share, open.ino);
            if let Some((sid, _)) = st.find_state(client, &lock_owner.owner.0, file, true) {
                return Ok(sid);
            }
            st.add_state(StateEntry {
                client,
                share: open.share,
                ino: open.ino,
                owner: lock_owner.owner.0.clone(),
                seqid: 1,
                kind: StateKind::Lock { open: osid.other },
                lm_open: None,
            })
        }
    }
}

/// The client a LOCK acts for (NFSv4.0: the one its new lock-owner or lock stateid
/// names).
fn lock_client(c: &Compound<'_>, locker: &Locker4) -> Result<u64, Nfs4Status> {
    if c.minor > 0 {
        return c.clientid();
    }
    match locker {
        Locker4::New { lock_owner, .. } => c.client_of(lock_owner.clientid),
        Locker4::Existing { lock_stateid, .. } => {
            Ok(c.shared.nfs4.state(&c.stateid(lock_stateid)?)?.client)
        }
    }
}

/// A LOCK's grace period checks: a reclaim only by a client that may reclaim on the
/// share, anything else not during the grace period.
fn check_grace(c: &Compound<'_>, client: u64, share: ShareId, reclaim: bool) -> Result<(), Fail> {
    if !reclaim {
        return Ok(c.shared.grace.check_new()?);
    }
    let owner = c.shared.nfs4.owner_of(client)?;
    Ok(c.shared.grace.check_reclaim(&owner, share)?)
}

pub(super) async fn lock(c: &mut Compound<'_>, a: &LockArgs) -> OpResult {
    if c.minor > 0 {
        return lock_run(c, a).await;
    }
    // NFSv4.0: a new lock-owner's LOCK is sequenced on its open-owner
    let (key, seq) = match &a.locker {
        Locker4::New {
            open_stateid,
            open_seqid,
            ..
        } => (seqid::owner_of(c, open_stateid, false, false)?, *open_seqid),
        Locker4::Existing {
            lock_stateid,
            lock_seqid,
        } => (seqid::owner_of(c, lock_stateid, true, false)?, *lock_seqid),
    };
    let shared = c.shared;
    let g = match seqid::sequence(&shared.nfs4, key, seq, OP_LOCK)? {
        Sequenced::Replay(r) => return seqid::replayed(r),
        Sequenced::Run(g) => g,
    };
    let r = lock_run(c, a).await;
    if let (
        Ok(_),
        Locker4::New {
            lock_seqid,
            lock_owner,
            ..
        },
    ) = (&r, &a.locker)
    {
        let lk = OwnerKey {
            client: g.key.client,
            lock: true,
            owner: lock_owner.owner.0.clone(),
        };
        shared.nfs4.owners(|o| o.start(&lk, *lock_seqid));
    }
    g.finish(&r, None);
    r
}

async fn lock_run(c: &mut Compound<'_>, a: &LockArgs) -> OpResult {
    let client = lock_client(c, &a.locker)?;
    let f = c.file(Nfs4Status::IsDir)?;
    let (k, r) = (kind(a.locktype)?, range(a.offset, a.length)?);
    check_grace(c, client, f.fs.share_id(), a.reclaim)?;
    let sid = lock_stateid(c, client, &a.locker)?;
    let e = c.shared.nfs4.state(&sid)?;
    let file = (e.share, e.ino);
    if file != (f.fs.share_id(), f.ino) {
        return Err(Nfs4Status::BadStateid.into());
    }
    break_for(c, e.share, e.ino, BreakCause::lock(k))?;
    let lm = c.shared.nlm.manager(e.share);
    let who = owner(client, &e.owner);
    let waits = &c.shared.lock_waits;
    match courtesy::retry(c.shared, || lm.lock(e.ino, &who, r, k)).await {
        Ok(()) => waits.granted(file, client, &e.owner),
        Err(Blocked::By(LockError::Conflict(_))) if a.reclaim => {
            return Err(Nfs4Status::ReclaimConflict.into());
        }
        Err(b) => {
            if c.minor > 0
                && matches!(a.locktype, READW_LT | WRITEW_LT)
                && matches!(b, Blocked::By(LockError::Conflict(_)))
                && let Ok(h) = f.fs.handle_of(f.ino).await
            {
                waits.wait(file, client, &e.owner, &h.encode());
            }
            return Err(lock_fail(b));
        }
    }
    let new = c.shared.nfs4.update_state(&sid, |_| {})?;
    c.cur_stateid = Some(new.clone());
    ok(&new)
}

pub(super) async fn lockt(c: &mut Compound<'_>, a: &LocktArgs) -> OpResult {
    let client = c.client_of(a.owner.clientid)?;
    let f = c.file(Nfs4Status::IsDir)?;
    c.shared.grace.check_new()?;
    let (k, r) = (kind(a.locktype)?, range(a.offset, a.length)?);
    break_for(c, f.fs.share_id(), f.ino, BreakCause::lock(k))?;
    let who = owner(client, &a.owner.owner.0);
    let lm = c.shared.nlm.manager(f.fs.share_id());
    let test = || match lm.test_lock(f.ino, &who, r, k) {
        Some(cf) => Err(LockError::Conflict(cf)),
        None => Ok(()),
    };
    courtesy::retry(c.shared, test).await.map_err(lock_fail)?;
    Ok(Vec::new())
}

pub(super) fn locku(c: &mut Compound<'_>, a: &LockuArgs) -> OpResult {
    if c.minor > 0 {
        return locku_run(c, a);
    }
    let key = seqid::owner_of(c, &a.lock_stateid, true, false)?;
    let shared = c.shared;
    let g = match seqid::sequence(&shared.nfs4, key, a.seqid, OP_LOCKU)? {
        Sequenced::Replay(r) => return seqid::replayed(r),
        Sequenced::Run(g) => g,
    };
    let r = locku_run(c, a);
    g.finish(&r, None);
    r
}

fn locku_run(c: &mut Compound<'_>, a: &LockuArgs) -> OpResult {
    let r = range(a.offset, a.length)?;
    let sid = c.stateid(&a.lock_stateid)?;
    let e = c.shared.nfs4.state(&sid)?;
    if !matches!(e.kind, StateKind::Lock { .. }) {
        return Err(Nfs4Status::BadStateid.into());
    }
    c.shared
        .nlm
        .manager(e.share)
        .unlock(e.ino, &owner(e.client, &e.owner), r);
    let new = c.shared.nfs4.update_state(&sid, |_| {})?;
    c.cur_stateid = Some(new.clone());
    ok(&new)
}

/// RELEASE_LOCKOWNER (NFSv4.0): the lock-owner's lock stateids go, with its locks.
pub(super) fn release_lockowner(c: &mut Compound<'_>, o: &StateOwner4) -> OpResult {
    let client = c.client_of(o.clientid)?;
    for e in c.shared.nfs4.remove_lock_owner(client, &o.owner.0) {
        c.shared
            .nlm
            .manager(e.share)
            .unlock(e.ino, &owner(client, &e.owner), ByteRange::to_eof(0));
    }
    Ok(Vec::new())
}
