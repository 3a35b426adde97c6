//! The Network Lock Manager service (NLM program 100021 v4, XNFS chapter 10): a thin
//! adapter from NLM calls onto each share's [`LockManager`], served on the NFS port.
//!
//! Mapping:
//! - owner = `Owner::new(Protocol::Nlm, ClientId::Name(caller_name), svid ++ oh)` (see
//!   `dittofs_vfs::state::owner`); `fh` is an NFSv3 handle resolved by the share
//!   registry like NFS does (unknown or bad handle: `NLM4_STALE_FH`);
//! - `l_offset`/`l_len` are a [`ByteRange`] (`l_len` 0 = to end of file; past `u64::MAX`:
//!   `NLM4_FBIG`);
//! - [`LockError`] to `nlm4_stats` in [`stat_of`]: Conflict / Cancelled /
//!   ShareViolation: DENIED, Deadlock: DEADLCK, InvalidRange: FBIG, others: FAILED.
//!
//! Blocking locks: LOCK with `block` that must wait is queued (`lock_queued`) and
//! answered `NLM4_BLOCKED`; a task waits for the grant and calls the client back with
//! NLM4_GRANTED on a new connection to its lockd (found through the portmapper of the
//! caller's address, `client_portmapper_port`, 111 in production). If the callback
//! fails or the client does not answer GRANTED, the lock is released. A retransmitted
//! LOCK of a queued request answers BLOCKED again; CANCEL withdraws it.
//!
//! Delegations: LOCK and TEST first recall the NFSv4 delegations they conflict with
//! (`recall_delegations`): DENIED (blocking: BLOCKED, not queued) while the recall is
//! outstanding, so a lock the delegation's holder kept locally is never overlooked.
//!
//! NFSv4 courtesy clients (lease expired, state kept until someone conflicts, see
//! `proc4::courtesy`): a LOCK, TEST or SHARE refused by one's lock or share reservation
//! releases that client and runs again ([`crate::proc4::courtesy::retry`]); a blocking
//! LOCK first releases the courtesy clients whose locks would queue it. The NFSv4
//! module never calls back into this one.
//!
//! Grace period: for `grace` after start only reclaims (`reclaim = true`) are served;
//! other LOCK, TEST and SHARE calls answer `NLM4_DENIED_GRACE_PERIOD` (lock state is in
//! memory only: clients told of the restart by SM_NOTIFY reclaim what they held).
//!
//! The `_MSG` procedures run the same operation and send the result back with the
//! matching `_RES` call (`_MSG` + 5) to the client's lockd; `_RES` calls are accepted and
//! ignored (this server never sends `_MSG` requests).

use crate::call::{CallCtx, Outcome, garbage_args};
use crate::nlm_state::{BlockKey, Nlm, client_id};
use crate::nlm4::*;
use crate::nsmd::Monitored;
use crate::proc4::courtesy::{self, Blocked};
use crate::rpc_client::call_via_portmap;
use crate::shared::Shared;
use crate::xdr::{Decoder, XdrDecode, XdrEncode};
use bytes::Bytes;
use dittofs_types::{Ino, ShareId};
use dittofs_vfs::state::{
    Access, BreakCause, ByteRange, LockError, LockKind, LockManager, LockQueued, Owner, Protocol,
    WaitHandle,
};
use std::net::IpAddr;
use std::sync::Arc;

fn owner_of(caller_name: &[u8], svid: i32, oh: &[u8]) -> Owner {
    let mut key = Vec::with_capacity(4 + oh.len());
    key.extend_from_slice(&svid.to_be_bytes());
    key.extend_from_slice(oh);
    Owner::new(Protocol::Nlm, client_id(caller_name), &key)
}

/// The status of a refusal that stood after the NFSv4 courtesy clients in its way were
/// released (still in the way of more: DENIED, the client tries again).
fn blocked_stat(b: &Blocked) -> Nlm4Stat {
    match b {
        Blocked::By(e) => stat_of(e),
        Blocked::Later => Nlm4Stat::Denied,
    }
}

/// Maps a lock manager error to `nlm4_stats`.
pub(crate) fn stat_of(e: &LockError) -> Nlm4Stat {
    match e {
        LockError::Conflict(_) | LockError::Cancelled | LockError::ShareViolation(_) => {
            Nlm4Stat::Denied
        }
        LockError::Deadlock => Nlm4Stat::Deadlck,
        LockError::InvalidRange(_) => Nlm4Stat::Fbig,
        _ => Nlm4Stat::Failed,
    }
}

fn holder_of(c: &dittofs_vfs::state::LockConflict) -> Nlm4Holder {
    let (svid, oh) = if c.owner.protocol == Protocol::Nlm && c.owner.key.len() >= 4 {
        let mut s = [0u8; 4];
        s.copy_from_slice(&c.owner.key[..4]);
        (i32::from_be_bytes(s), c.owner.key[4..].to_vec())
    } else {
        (0, Vec::new())
    };
    Nlm4Holder {
        exclusive: c.kind == LockKind::Exclusive,
        svid,
        oh,
        l_offset: c.range.start(),
        l_len: c.range.length().unwrap_or(0),
    }
}

fn kind(exclusive: bool) -> LockKind {
    if exclusive {
        LockKind::Exclusive
    } else {
        LockKind::Shared
    }
}

/// A resolved lock request: the share's manager, the file, the owner and the range.
struct Req {
    share: ShareId,
    lm: LockManager,
    ino: Ino,
    owner: Owner,
    range: ByteRange,
}

async fn resolve(shared: &Shared, ctx: &CallCtx, l: &Nlm4Lock) -> Result<Req, Nlm4Stat> {
    let (fs, ino) = shared
        .registry
        .resolve(&l.fh)
        .await
        .map_err(|_| Nlm4Stat::StaleFh)?;
    let share = fs.share_id();
    let policy = shared.export(share).ok_or(Nlm4Stat::StaleFh)?;
    if shared
        .admit(&policy, ctx.client, fs.name(), "NLM call")
        .is_err()
    {
        return Err(Nlm4Stat::Failed);
    }
    let range = ByteRange::new(l.l_offset, l.l_len).map_err(|_| Nlm4Stat::Fbig)?;
    Ok(Req {
        share,
        lm: shared.nlm.manager(share),
        ino,
        owner: owner_of(&l.caller_name, l.svid, &l.oh),
        range,
    })
}

pub(crate) fn proc_name(p: NlmProc) -> &'static str {
    match p {
        NlmProc::Null => "NULL",
        NlmProc::Test => "TEST",
        NlmProc::Lock => "LOCK",
        NlmProc::Cancel => "CANCEL",
        NlmProc::Unlock => "UNLOCK",
        NlmProc::Granted => "GRANTED",
        NlmProc::TestMsg => "TEST_MSG",
        NlmProc::LockMsg => "LOCK_MSG",
        NlmProc::CancelMsg => "CANCEL_MSG",
        NlmProc::UnlockMsg => "UNLOCK_MSG",
        NlmProc::GrantedMsg => "GRANTED_MSG",
        NlmProc::TestRes => "TEST_RES",
        NlmProc::LockRes => "LOCK_RES",
        NlmProc::CancelRes => "CANCEL_RES",
        NlmProc::UnlockRes => "UNLOCK_RES",
        NlmProc::GrantedRes => "GRANTED_RES",
        NlmProc::Share => "SHARE",
        NlmProc::Unshare => "UNSHARE",
        NlmProc::NmLock => "NM_LOCK",
        NlmProc::FreeAll => "FREE_ALL",
    }
}

fn outcome(xid: u32, stat: Nlm4Stat, res: &impl XdrEncode) -> Outcome {
    Outcome::reply(xid, res, stat_name(stat))
}

fn stat_name(s: Nlm4Stat) -> Option<&'static str> {
    Some(match s {
        Nlm4Stat::Granted | Nlm4Stat::Blocked => return None,
        Nlm4Stat::Denied => "DENIED",
        Nlm4Stat::DeniedNoLocks => "DENIED_NOLOCKS",
        Nlm4Stat::DeniedGracePeriod => "DENIED_GRACE_PERIOD",
        Nlm4Stat::Deadlck => "DEADLCK",
        Nlm4Stat::Rofs => "ROFS",
        Nlm4Stat::StaleFh => "STALE_FH",
        Nlm4Stat::Fbig => "FBIG",
        Nlm4Stat::Failed => "FAILED",
    })
}

fn decode<T: XdrDecode>(args: &Bytes) -> Option<T> {
    T::decode(&mut Decoder::from_bytes(args)).ok()
}

pub(crate) async fn dispatch(
    shared: &Shared,
    ctx: &CallCtx,
    xid: u32,
    p: NlmProc,
    args: Bytes,
) -> Outcome {
    match p {
        NlmProc::Null
        | NlmProc::TestRes
        | NlmProc::LockRes
        | NlmProc::CancelRes
        | NlmProc::UnlockRes
        | NlmProc::GrantedRes
        | NlmProc::GrantedMsg => outcome(xid, Nlm4Stat::Granted, &()),
        NlmProc::Test => match decode::<Nlm4TestArgs>(&args) {
            Some(a) => {
                let r = test(shared, ctx, &a).await;
                outcome(xid, r.stat, &r)
            }
            None => garbage_args(xid),
        },
        NlmProc::Lock | NlmProc::NmLock => match decode::<Nlm4LockArgs>(&args) {
            Some(a) => {
                let r = lock(shared, ctx, &a, p == NlmProc::Lock).await;
                outcome(xid, r.stat, &r)
            }
            None => garbage_args(xid),
        },
        NlmProc::Cancel => match decode::<Nlm4CancArgs>(&args) {
            Some(a) => {
                let r = cancel(shared, ctx, &a).await;
                outcome(xid, r.stat, &r)
            }
            None => garbage_args(xid),
        },
        NlmProc::Unlock => match decode::<Nlm4UnlockArgs>(&args) {
            Some(a) => {
                let r = unlock(shared, ctx, &a).await;
                outcome(xid, r.stat, &r)
            }
            None => garbage_args(xid),
        },
        NlmProc::Granted => match decode::<Nlm4TestArgs>(&args) {
            // This server never has blocked requests of its own.
            Some(a) => {
                let r = Nlm4Res {
                    cookie: a.cookie,
                    stat: Nlm4Stat::Denied,
                };
                outcome(xid, r.stat, &r)
            }
            None => garbage_args(xid),
        },
        NlmProc::TestMsg | NlmProc::LockMsg | NlmProc::CancelMsg | NlmProc::UnlockMsg => {
            message(shared, ctx, p, xid, &args).await
        }
        NlmProc::Share | NlmProc::Unshare => match decode::<Nlm4ShareArgs>(&args) {
            Some(a) => {
                let r = share(shared, ctx, &a, p == NlmProc::Share).await;
                outcome(xid, r.stat, &r)
            }
            None => garbage_args(xid),
        },
        NlmProc::FreeAll => match decode::<Nlm4Notify>(&args) {
            Some(a) => {
                let id = client_id(&a.name);
                let n = shared.nlm.release_clients(std::slice::from_ref(&id));
                tracing::info!(client = %id, locks = n, "NLM FREE_ALL");
                outcome(xid, Nlm4Stat::Granted, &())
            }
            None => garbage_args(xid),
        },
    }
}

/// A `_MSG` call: runs the operation, answers with an empty reply and sends the result
/// to the client's lockd with the matching `_RES` procedure.
async fn message(shared: &Shared, ctx: &CallCtx, p: NlmProc, xid: u32, args: &Bytes) -> Outcome {
    let res: Option<Vec<u8>> = match p {
        NlmProc::TestMsg => match decode::<Nlm4TestArgs>(args) {
            Some(a) => Some(test(shared, ctx, &a).await.to_xdr()),
            None => None,
        },
        NlmProc::LockMsg => match decode::<Nlm4LockArgs>(args) {
            Some(a) => Some(lock(shared, ctx, &a, true).await.to_xdr()),
            None => None,
        },
        NlmProc::CancelMsg => match decode::<Nlm4CancArgs>(args) {
            Some(a) => Some(cancel(shared, ctx, &a).await.to_xdr()),
            None => None,
        },
        _ => match decode::<Nlm4UnlockArgs>(args) {
            Some(a) => Some(unlock(shared, ctx, &a).await.to_xdr()),
            None => None,
        },
    };
    let Some(res) = res else {
        return garbage_args(xid);
    };
    let ip = ctx.client.ip();
    let pmap = shared.nlm.client_portmapper_port();
    let proc_res = p.as_u32() + 5;
    tokio::spawn(async move {
        if let Err(e) = call_via_portmap(ip, pmap, (PROGRAM, VERSION, proc_res), &res).await {
            tracing::info!(client = %ip, error = %e, "NLM _RES callback failed");
        }
    });
    outcome(xid, Nlm4Stat::Granted, &())
}

async fn test(shared: &Shared, ctx: &CallCtx, a: &Nlm4TestArgs) -> Nlm4TestRes {
    let res = |stat, holder| Nlm4TestRes {
        cookie: a.cookie.clone(),
        stat,
        holder,
    };
    if shared.nlm.in_grace() {
        return res(Nlm4Stat::DeniedGracePeriod, None);
    }
    let r = match resolve(shared, ctx, &a.alock).await {
        Ok(r) => r,
        Err(s) => return res(s, None),
    };
    let recalled = recall_delegations(&r, a.exclusive);
    match courtesy::retry(shared, || test_once(&r, kind(a.exclusive))).await {
        Err(Blocked::By(LockError::Conflict(c))) => res(Nlm4Stat::Denied, Some(holder_of(&c))),
        Err(b) => res(blocked_stat(&b), None),
        Ok(()) => match recalled {
            Err(s) => res(s, Some(delegated_holder())),
            Ok(()) => res(Nlm4Stat::Granted, None),
        },
    }
}

/// Recalls the delegations an NLM lock (or test) of `exclusive` kind conflicts with
/// (their holders may hold locks the server does not know of yet, RFC 8881 section
/// 10.4): while a recall is outstanding the answer is NLM4_DENIED (NLM has no "retry";
/// the caller's next try after the return meets the real locks). Blocking requests get
/// NLM4_BLOCKED without being queued; the client polls again.
fn recall_delegations(r: &Req, exclusive: bool) -> Result<(), Nlm4Stat> {
    match r
        .lm
        .break_leases(r.ino, &r.owner, BreakCause::lock(kind(exclusive)))
    {
        Ok(()) => Ok(()),
        Err(LockError::LeaseRecallPending { .. }) => Err(Nlm4Stat::Denied),
        Err(e) => Err(stat_of(&e)),
    }
}

/// The holder NLM TEST names while a delegation of the file is being recalled: the
/// whole file, exclusive, as its holder may have locked any of it.
fn delegated_holder() -> Nlm4Holder {
    Nlm4Holder {
        exclusive: true,
        svid: 0,
        oh: Vec::new(),
        l_offset: 0,
        l_len: 0,
    }
}

/// TEST as a refusal: the conflicting lock, if any.
fn test_once(r: &Req, k: LockKind) -> Result<(), LockError> {
    match r.lm.test_lock(r.ino, &r.owner, r.range, k) {
        Some(c) => Err(LockError::Conflict(c)),
        None => Ok(()),
    }
}

async fn lock(shared: &Shared, ctx: &CallCtx, a: &Nlm4LockArgs, monitor: bool) -> Nlm4Res {
    let stat = lock_stat(shared, ctx, a, monitor).await;
    Nlm4Res {
        cookie: a.cookie.clone(),
        stat,
    }
}

async fn lock_stat(shared: &Shared, ctx: &CallCtx, a: &Nlm4LockArgs, monitor: bool) -> Nlm4Stat {
    let nlm = &shared.nlm;
    if nlm.in_grace() && !a.reclaim {
        return Nlm4Stat::DeniedGracePeriod;
    }
    let r = match resolve(shared, ctx, &a.alock).await {
        Ok(r) => r,
        Err(s) => return s,
    };
    let k = kind(a.exclusive);
    if let Err(s) = recall_delegations(&r, a.exclusive) {
        return if a.block { Nlm4Stat::Blocked } else { s };
    }
    if !a.block {
        return match courtesy::retry(shared, || r.lm.lock(r.ino, &r.owner, r.range, k)).await {
            Ok(()) => granted(nlm, ctx, &a.alock, monitor),
            Err(b) => blocked_stat(&b),
        };
    }
    // courtesy clients' locks in the way go before the request would queue behind them
    let _ = courtesy::retry(shared, || test_once(&r, k)).await;
    let key = BlockKey {
        share: r.share,
        ino: r.ino,
        owner: r.owner.clone(),
        range: r.range,
        exclusive: a.exclusive,
    };
    let mut blocked = nlm.blocked.lock();
    if blocked.contains_key(&key) {
        return Nlm4Stat::Blocked;
    }
    match r.lm.lock_queued(r.ino, &r.owner, r.range, k) {
        Ok(LockQueued::Granted) => {
            drop(blocked);
            granted(nlm, ctx, &a.alock, monitor)
        }
        Ok(LockQueued::Queued(handle)) => {
            blocked.insert(key.clone(), handle.id());
            drop(blocked);
            let cb = Callback {
                nlm: nlm.clone(),
                ip: ctx.client.ip(),
                server: ctx.local.map(|a| a.ip()),
                args: Nlm4TestArgs {
                    cookie: a.cookie.clone(),
                    exclusive: a.exclusive,
                    alock: a.alock.clone(),
                },
            };
            tokio::spawn(wait_and_call_back(cb, key, handle, r.lm));
            Nlm4Stat::Blocked
        }
        Err(e) => stat_of(&e),
    }
}

/// A granted lock: the client is monitored from now on (it is told when we restart).
fn granted(nlm: &Nlm, ctx: &CallCtx, l: &Nlm4Lock, monitor: bool) -> Nlm4Stat {
    if monitor {
        nlm.nsm.monitor(Monitored {
            name: l.caller_name.clone(),
            client: ctx.client.ip(),
            server: ctx.local.map(|a| a.ip()),
        });
    }
    Nlm4Stat::Granted
}

/// Where and what to send when a queued request is granted.
struct Callback {
    nlm: Arc<Nlm>,
    ip: IpAddr,
    server: Option<IpAddr>,
    args: Nlm4TestArgs,
}

/// Waits for a queued request; once granted, calls the client back with NLM4_GRANTED
/// and releases the lock again if that fails or the client refuses it.
async fn wait_and_call_back(cb: Callback, key: BlockKey, handle: WaitHandle, lm: LockManager) {
    let res = handle.await;
    cb.nlm.blocked.lock().remove(&key);
    if res.is_err() {
        return;
    }
    let pmap = cb.nlm.client_portmapper_port();
    let sent = call_via_portmap(
        cb.ip,
        pmap,
        (PROGRAM, VERSION, NlmProc::Granted.as_u32()),
        &cb.args.to_xdr(),
    )
    .await;
    let accepted = match sent {
        Ok(body) => matches!(
            Nlm4Res::decode(&mut Decoder::new(&body)),
            Ok(Nlm4Res {
                stat: Nlm4Stat::Granted,
                ..
            })
        ),
        Err(e) => {
            tracing::info!(client = %cb.ip, error = %e, "NLM GRANTED callback failed; releasing the lock");
            false
        }
    };
    if accepted {
        cb.nlm.nsm.monitor(Monitored {
            name: cb.args.alock.caller_name.clone(),
            client: cb.ip,
            server: cb.server,
        });
    } else {
        lm.unlock(key.ino, &key.owner, key.range);
    }
}

async fn cancel(shared: &Shared, ctx: &CallCtx, a: &Nlm4CancArgs) -> Nlm4Res {
    let res = |stat| Nlm4Res {
        cookie: a.cookie.clone(),
        stat,
    };
    let r = match resolve(shared, ctx, &a.alock).await {
        Ok(r) => r,
        Err(s) => return res(s),
    };
    let key = BlockKey {
        share: r.share,
        ino: r.ino,
        owner: r.owner,
        range: r.range,
        exclusive: a.exclusive,
    };
    let id = shared.nlm.blocked.lock().remove(&key);
    match id {
        Some(id) => {
            r.lm.cancel(id);
            res(Nlm4Stat::Granted)
        }
        // Nothing queued (granted or cancelled meanwhile): Linux lockd answers GRANTED.
        None => res(Nlm4Stat::Granted),
    }
}

async fn unlock(shared: &Shared, ctx: &CallCtx, a: &Nlm4UnlockArgs) -> Nlm4Res {
    let stat = match resolve(shared, ctx, &a.alock).await {
        Ok(r) => {
            r.lm.unlock(r.ino, &r.owner, r.range);
            Nlm4Stat::Granted
        }
        Err(s) => s,
    };
    Nlm4Res {
        cookie: a.cookie.clone(),
        stat,
    }
}

fn share_access(a: Fsh4Access) -> Access {
    Access::new(
        matches!(a, Fsh4Access::Read | Fsh4Access::Rw),
        matches!(a, Fsh4Access::Write | Fsh4Access::Rw),
        false,
    )
}

fn share_deny(m: Fsh4Mode) -> Access {
    Access::new(
        matches!(m, Fsh4Mode::DenyRead | Fsh4Mode::DenyRw),
        matches!(m, Fsh4Mode::DenyWrite | Fsh4Mode::DenyRw),
        false,
    )
}

async fn share(shared: &Shared, ctx: &CallCtx, a: &Nlm4ShareArgs, open: bool) -> Nlm4ShareRes {
    let stat = share_stat(shared, ctx, a, open).await;
    Nlm4ShareRes {
        cookie: a.cookie.clone(),
        stat,
        sequence: 0,
    }
}

async fn share_stat(shared: &Shared, ctx: &CallCtx, a: &Nlm4ShareArgs, open: bool) -> Nlm4Stat {
    let nlm = &shared.nlm;
    if open && nlm.in_grace() && !a.reclaim {
        return Nlm4Stat::DeniedGracePeriod;
    }
    let s = &a.share;
    let l = Nlm4Lock {
        caller_name: s.caller_name.clone(),
        fh: s.fh.clone(),
        oh: s.oh.clone(),
        ..Nlm4Lock::default()
    };
    let r = match resolve(shared, ctx, &l).await {
        Ok(r) => r,
        Err(st) => return st,
    };
    let owner = Owner::new(Protocol::Nlm, client_id(&s.caller_name), &s.oh);
    let key = (r.share, r.ino, owner.clone());
    if !open {
        if let Some(id) = nlm.shares.lock().remove(&key) {
            let _ = r.lm.close(id);
        }
        return Nlm4Stat::Granted;
    }
    let (access, deny) = (share_access(s.access), share_deny(s.mode));
    // the table's mutex is held within one attempt, never across a release
    let attempt = || {
        let mut shares = nlm.shares.lock();
        if let Some(old) = shares.get(&key) {
            return r.lm.change_open(*old, access, deny);
        }
        let id = r.lm.open(r.ino, &owner, access, deny)?;
        shares.insert(key.clone(), id);
        Ok(())
    };
    match courtesy::retry(shared, attempt).await {
        Ok(()) => Nlm4Stat::Granted,
        Err(b) => blocked_stat(&b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dittofs_vfs::state::{LockConflict, RangeError};

    #[test]
    fn errors_map_to_nlm_stats() {
        let owner = owner_of(b"host", 7, b"oh");
        let c = LockConflict {
            owner: owner.clone(),
            range: ByteRange::new(5, 10).unwrap(),
            kind: LockKind::Exclusive,
        };
        assert_eq!(stat_of(&LockError::Conflict(c.clone())), Nlm4Stat::Denied);
        assert_eq!(stat_of(&LockError::Deadlock), Nlm4Stat::Deadlck);
        assert_eq!(stat_of(&LockError::Cancelled), Nlm4Stat::Denied);
        assert_eq!(
            stat_of(&LockError::InvalidRange(RangeError {
                offset: u64::MAX,
                len: 2
            })),
            Nlm4Stat::Fbig
        );
        assert_eq!(stat_of(&LockError::EmptyLease), Nlm4Stat::Failed);
        let h = holder_of(&c);
        assert_eq!(
            (h.svid, h.oh.as_slice(), h.l_offset, h.l_len),
            (7, &b"oh"[..], 5, 10)
        );
        assert!(h.exclusive);
    }

    #[test]
    fn owners_differ_by_host_svid_and_oh() {
        let a = owner_of(b"host", 1, b"x");
        assert_eq!(a, owner_of(b"host", 1, b"x"));
        assert_ne!(a, owner_of(b"other", 1, b"x"));
        assert_ne!(a, owner_of(b"host", 2, b"x"));
        assert_ne!(a, owner_of(b"host", 1, b"y"));
    }
}
