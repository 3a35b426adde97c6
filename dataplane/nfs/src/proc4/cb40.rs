//! NFSv4.0 callback paths (RFC 7530 sections 3.3.3, 10.2.1, 16.33 SETCLIENTID, 16.34
//! SETCLIENTID_CONFIRM) and the client a 4.0 operation acts for, which a 4.0 COMPOUND
//! (no session) does not say.
//!
//! - SETCLIENTID ([`offered`]): `cb_client4` (netid and universal address, parsed
//!   strictly by `uaddr`) and `callback_ident` are kept with the client record as its
//!   offer. An address that does not parse, or that the server does not dial
//!   (`uaddr::dialable`), is kept as "no path": SETCLIENTID succeeds all the same and
//!   the client gets no delegations.
//! - SETCLIENTID_CONFIRM ([`confirmed`]) takes the offer: the client's previous path
//!   goes, and (with delegations on) a new 4.0 `BackChan` (minor version 0, the client's
//!   `callback_ident`, AUTH_SYS credentials uid 0 / machine "dittofs") goes into the
//!   delegation table under the client's synthetic key ([`key`], which no session ID
//!   has), not connected yet; `cblink::maintain` dials and probes it with CB_NULL in the
//!   background. Only once the client answered is the path usable, and `deleg` grants
//!   and recalls the client's (read) delegations over it as over a 4.1 session's back
//!   channel.
//!   A retransmitted confirmation (no new offer) changes nothing.
//! - The path goes with its channel: with its client (`Delegations::forget_clients`
//!   drops every back channel of a departed client) or replaced by the next confirmed
//!   SETCLIENTID (same key). Dropping the channel stops its task and closes its
//!   connection.
//! - Whose operation: [`note_client`] takes the client from an operation's arguments
//!   (the client ID of OPEN, LOCK with a new lock-owner and LOCKT; the stateid of READ,
//!   WRITE, SETATTR and LOCK) for the rest of the COMPOUND;
//!   [`breaker`] is then the client a break acts for (a session's client in 4.1/4.2), so
//!   a 4.0 client's own operations do not recall its own delegation. The clients named
//!   on a connection (also by RENEW and SETCLIENTID_CONFIRM) are remembered with it
//!   (`ConnClient`): a 4.0 operation whose arguments name no client (REMOVE, RENAME,
//!   GETATTR) acts for the one client seen on its connection (a Linux client uses one
//!   connection per client ID), and breaks every delegation of the file it conflicts
//!   with when several were seen or none. A 4.0 READ may name the client's delegation
//!   stateid: in 4.0 the stateid alone says whose it is (`io::check_io`). DELEGRETURN acts for the delegation's own client and renews its lease
//!   ([`delegreturn_client`]): 4.0 sequences it by no owner seqid.

use super::Compound;
use crate::backchannel::{BackChan, ConnClient};
use crate::cblink::{self, Callback, LinkEnv};
use crate::nfs4::io::Locker4;
use crate::nfs4::session::SetClientIdArgs;
use crate::nfs4::types::{SessionId4, Stateid4};
use crate::nfs4::{Nfs4Status, Op4};
use crate::rpc::Auth;
use crate::uaddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The second half of a 4.0 path's key in the delegation table (a session ID has the
/// server's epoch and a counter there).
const KEY_MARK: [u8; 8] = *b"NFSv4.0\0";

/// The delegation table's key of `client`'s 4.0 callback path.
pub(crate) fn key(client: u64) -> SessionId4 {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&client.to_be_bytes());
    k[8..].copy_from_slice(&KEY_MARK);
    k
}

/// The credentials of the server's 4.0 callbacks.
fn cred() -> Auth {
    Auth::Sys {
        stamp: 0,
        machine: b"dittofs".to_vec(),
        uid: 0,
        gid: 0,
        gids: Vec::new(),
    }
}

/// SETCLIENTID of `clientid` with arguments `a`: keeps its callback offer.
pub(super) fn offered(c: &Compound<'_>, clientid: u64, a: &SetClientIdArgs) {
    let cb = &a.callback;
    let offer = uaddr::parse(&cb.r_netid.0, &cb.r_addr.0)
        .and_then(|addr| uaddr::dialable(&addr, c.ctx.client.ip()).map(|()| addr));
    let offer = match offer {
        Ok(addr) => Some(Callback {
            addr,
            program: cb.cb_program,
            ident: a.callback_ident,
        }),
        Err(e) => {
            tracing::debug!(client = %c.ctx.client, error = %e, "NFSv4.0 callback address refused; no delegations");
            None
        }
    };
    c.shared.nfs4.offer_callback(clientid, offer);
}

/// SETCLIENTID_CONFIRM of `clientid`: its offered path replaces the previous one.
pub(super) fn confirmed(c: &Compound<'_>, clientid: u64) {
    let Some(offer) = c.shared.nfs4.take_callback(clientid) else {
        return;
    };
    let (deleg, k) = (&c.shared.deleg, key(clientid));
    deleg.drop_session(&k);
    let Some(cb) = offer.filter(|_| c.shared.cfg.v4.delegations) else {
        return;
    };
    let stop = CancellationToken::new();
    let program = (cb.program, cred());
    let chan = Arc::new(BackChan::outgoing(program, k, cb.ident, stop.clone()));
    deleg.set_back(clientid, k, chan.clone());
    // The client may have gone meanwhile (its forget_clients ran before set_back).
    if !c.shared.nfs4.has_client(clientid) {
        deleg.drop_session(&k);
        return;
    }
    let env = LinkEnv {
        global: c.shared.budget.clone(),
        metrics: c.shared.metrics.clone(),
    };
    let task = cblink::maintain(cb, cred(), Arc::downgrade(&chan), stop, env);
    let span =
        tracing::debug_span!("task", name = "nfs4-cb40", client = %format_args!("{clientid:#x}"));
    tokio::spawn(tracing::Instrument::instrument(task, span));
}

/// Notes the client a 4.0 operation `op` acts for, when its arguments say.
pub(super) fn note_client(c: &mut Compound<'_>, op: &Op4) {
    let named = match op {
        Op4::Open(a) => Some(a.owner.clientid),
        Op4::Lockt(a) => Some(a.owner.clientid),
        Op4::Lock(a) => match &a.locker {
            Locker4::New { lock_owner, .. } => Some(lock_owner.clientid),
            Locker4::Existing { lock_stateid, .. } => stateid_client(c, lock_stateid),
        },
        Op4::Read(a) => stateid_client(c, &a.stateid),
        Op4::Write(a) => stateid_client(c, &a.stateid),
        Op4::Setattr(a) => stateid_client(c, &a.stateid),
        Op4::Renew(id) => Some(*id),
        Op4::SetClientIdConfirm(a) => Some(a.clientid),
        _ => None,
    };
    if let Some(id) = named {
        c.client40 = named;
        if let Some(conn) = &c.ctx.conn {
            let mut seen = conn.client40.lock();
            *seen = seen.named(id);
        }
    }
}

/// The one 4.0 client seen on the connection of `c`, if only one was.
fn conn_client(c: &Compound<'_>) -> Option<u64> {
    match *c.ctx.conn.as_ref()?.client40.lock() {
        ConnClient::One(id) => Some(id),
        _ => None,
    }
}

/// The client of stateid `sid` (an open, lock or delegation stateid).
fn stateid_client(c: &Compound<'_>, sid: &Stateid4) -> Option<u64> {
    let sid = c.stateid(sid).ok()?;
    if sid.is_anonymous() {
        return None;
    }
    match c.shared.deleg.lookup(&sid) {
        Some(Ok(held)) => Some(held.client),
        Some(Err(_)) => None,
        None => c.shared.nfs4.state(&sid).ok().map(|e| e.client),
    }
}

/// The client a break of delegations acts for: the session's, the one a 4.0
/// COMPOUND named, the one 4.0 client seen on the connection, or 0 (never a client
/// ID: every delegation of the file breaks).
pub(super) fn breaker(c: &Compound<'_>) -> u64 {
    c.session
        .as_ref()
        .map(|s| s.client)
        .or(c.client40)
        .or_else(|| conn_client(c))
        .unwrap_or(0)
}

/// The client a DELEGRETURN of `sid` acts for: the session's, or in 4.0 the
/// delegation's own (its lease is renewed).
pub(super) fn delegreturn_client(c: &Compound<'_>, sid: &Stateid4) -> Result<u64, Nfs4Status> {
    if c.minor > 0 {
        return c.clientid();
    }
    match c.shared.deleg.lookup(sid) {
        Some(Ok(held)) => {
            let client = held.client;
            c.shared.nfs4.renew(client)?;
            Ok(client)
        }
        Some(Err(e)) => Err(e),
        None => Err(Nfs4Status::BadStateid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_names_one_client_until_a_second_appears() {
        let seen = ConnClient::Unknown.named(7);
        assert_eq!(seen, ConnClient::One(7));
        assert_eq!(seen.named(7), ConnClient::One(7));
        let two = seen.named(8);
        assert_eq!(two, ConnClient::Several);
        assert_eq!(two.named(7), ConnClient::Several, "never back to one");
    }

    #[test]
    fn keys_are_per_client_and_marked() {
        assert_ne!(key(1), key(2));
        assert_eq!(
            &key(0x1234_5678_9abc_def0)[..8],
            &0x1234_5678_9abc_def0u64.to_be_bytes()
        );
        assert_eq!(&key(7)[8..], b"NFSv4.0\0");
    }
}
