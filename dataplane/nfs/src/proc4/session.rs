//! Client ID and session operations (RFC 8881 sections 18.35-18.37, 18.46, 18.50,
//! 18.51, 18.34): EXCHANGE_ID, CREATE_SESSION, SEQUENCE, DESTROY_SESSION,
//! DESTROY_CLIENTID, RECLAIM_COMPLETE, BIND_CONN_TO_SESSION, BACKCHANNEL_CTL (18.33).
//!
//! - NFSv4.0: SETCLIENTID makes (or finds) the client record as EXCHANGE_ID does, with
//!   a confirm verifier derived from the client ID; SETCLIENTID_CONFIRM confirms it;
//!   RENEW renews its lease, and answers NFS4ERR_CB_PATH_DOWN (lease renewed all the
//!   same) while the client holds delegations without a usable callback path (RFC 7530
//!   section 16.29). The callback address (`cb_client4`, `callback_ident`) is kept at
//!   SETCLIENTID and used from SETCLIENTID_CONFIRM on (`cb40`).
//! - EXCHANGE_ID answers USE_NON_PNFS whatever pNFS roles the client offers (the server
//!   is neither metadata nor data server) and refuses state protection other than
//!   SP4_NONE with NFS4ERR_NOTSUPP.
//! - CREATE_SESSION grants the smaller of the client's and the server's limits (request
//!   and reply size [`MAX_MSG`], operations [`MAX_OPS`], slots [`MAX_SLOTS`], reply cache
//!   [`MAX_CACHED`]), never persistence or RDMA. The back channel (`backchannel`):
//!   with CREATE_SESSION4_FLAG_CONN_BACK_CHAN, AUTH_NONE or AUTH_SYS among
//!   `csa_sec_parms` and room for CB_SEQUENCE + one operation, callbacks go out on the
//!   creating connection with one slot (the reply says `ca_maxrequests` 1); else the
//!   flag is cleared in the reply. BIND_CONN_TO_SESSION for the back direction moves
//!   the callbacks to that connection, BACKCHANNEL_CTL changes program and
//!   credentials. SEQUENCE reports SEQ4_STATUS_CB_PATH_DOWN and
//!   SEQ4_STATUS_RECALLABLE_STATE_REVOKED (`deleg`).
//! - RECLAIM_COMPLETE (not `rca_one_fs`, which is accepted and changes nothing) ends
//!   the client's reclaims; NFS4ERR_COMPLETE_ALREADY the second time. Once every
//!   client recorded before a restart sent it, the grace period ends (`grace`).

use super::state::{Limits, Session, SlotCheck};
use super::{Compound, MAX_CACHED, MAX_MSG, MAX_OPS, OpResult, ok};
use crate::backchannel::{BackChan, cb_cred};
use crate::nfs4::Nfs4Status;
use crate::nfs4::session::*;
use crate::nfs4::types::{ChannelAttrs4, List, NfsTime4, Opaque4, RdmaIrd, SessionId4};
use crate::xdr::XdrEncode;
use bytes::Bytes;
use std::sync::Arc;

/// The most slots a session gets.
pub(crate) const MAX_SLOTS: u32 = 64;

pub(super) async fn exchange_id(c: &mut Compound<'_>, a: &ExchangeIdArgs) -> OpResult {
    if a.state_protect != StateProtect4A::None {
        return Err(Nfs4Status::NotSupp.into());
    }
    let owner = &a.clientowner;
    let (clientid, sequenceid, confirmed, released) = c
        .shared
        .nfs4
        .exchange_id(&owner.ownerid.0, owner.verifier)?;
    super::courtesy::release(c.shared, released).await;
    let mut flags = EXCHGID4_FLAG_USE_NON_PNFS;
    if confirmed {
        flags |= EXCHGID4_FLAG_CONFIRMED_R;
    }
    ok(&ExchangeIdResOk {
        clientid,
        sequenceid,
        flags,
        state_protect: 0,
        server_owner: ServerOwner4 {
            minor_id: 0,
            major_id: Opaque4(b"dittofs".to_vec()),
        },
        server_scope: Opaque4(b"dittofs".to_vec()),
        server_impl_id: List(vec![NfsImplId4 {
            domain: Opaque4(b"dittofs.io".to_vec()),
            name: Opaque4(format!("dittofs {}", env!("CARGO_PKG_VERSION")).into_bytes()),
            date: NfsTime4 {
                seconds: 0,
                nseconds: 0,
            },
        }]),
    })
}

/// The fore channel the server grants for what the client asked.
fn fore_channel(asked: &ChannelAttrs4) -> ChannelAttrs4 {
    ChannelAttrs4 {
        headerpadsize: 0,
        maxrequestsize: asked.maxrequestsize.min(MAX_MSG),
        maxresponsesize: asked.maxresponsesize.min(MAX_MSG),
        maxresponsesize_cached: asked.maxresponsesize_cached.min(MAX_CACHED),
        maxoperations: asked.maxoperations.min(MAX_OPS),
        maxrequests: asked.maxrequests.clamp(1, MAX_SLOTS),
        rdma_ird: RdmaIrd(None),
    }
}

/// The back channel the server uses: what the client asked with one slot (each
/// CB_COMPOUND is CB_SEQUENCE and one operation, so fewer than 2 operations or no
/// slot is no back channel).
fn back_channel(asked: &ChannelAttrs4) -> Option<ChannelAttrs4> {
    if asked.maxrequests == 0 || asked.maxoperations < 2 {
        return None;
    }
    Some(ChannelAttrs4 {
        headerpadsize: 0,
        maxrequests: 1,
        rdma_ird: RdmaIrd(None),
        ..asked.clone()
    })
}

pub(super) fn create_session(c: &mut Compound<'_>, a: &CreateSessionArgs) -> OpResult {
    let st = &c.shared.nfs4;
    if let Some(reply) = st.create_session_check(a.clientid, a.sequence)? {
        return Ok(reply.to_vec());
    }
    let fore = fore_channel(&a.fore_chan_attrs);
    let cred = cb_cred(&a.sec_parms.0);
    let usable = back_channel(&a.back_chan_attrs).filter(|_| cred.is_some());
    let back = usable.clone().unwrap_or(ChannelAttrs4 {
        rdma_ird: RdmaIrd(None),
        ..a.back_chan_attrs.clone()
    });
    let limits = Limits {
        max_req: fore.maxrequestsize,
        max_ops: fore.maxoperations,
        max_resp: fore.maxresponsesize,
        max_resp_cached: fore.maxresponsesize_cached,
        slots: fore.maxrequests,
    };
    let on_conn = a.flags & CREATE_SESSION4_FLAG_CONN_BACK_CHAN != 0 && c.ctx.conn.is_some();
    let flags = if on_conn && usable.is_some() {
        CREATE_SESSION4_FLAG_CONN_BACK_CHAN
    } else {
        0
    };
    let mut made = None;
    let reply = st.create_session(a.clientid, limits, |sessionid| {
        made = Some(sessionid);
        Bytes::from(
            CreateSessionResOk {
                sessionid,
                sequence: a.sequence,
                flags,
                fore_chan_attrs: fore.clone(),
                back_chan_attrs: back.clone(),
            }
            .to_xdr(),
        )
    })?;
    if let (Some(sessionid), Some(cred), Some(_)) = (made, cred, usable) {
        let conn = c.ctx.conn.as_ref().filter(|_| flags != 0);
        let chan = BackChan::new(conn, a.cb_program, cred, sessionid, c.minor);
        c.shared
            .deleg
            .set_back(a.clientid, sessionid, Arc::new(chan));
    }
    Ok(reply.to_vec())
}

/// BACKCHANNEL_CTL: the callback program and credentials change (for every back
/// channel of the client: the COMPOUND does not name its session to the handlers).
pub(super) fn backchannel_ctl(c: &mut Compound<'_>, a: &BackchannelCtlArgs) -> OpResult {
    let client = c.clientid()?;
    let cred = cb_cred(&a.sec_parms.0).ok_or(Nfs4Status::Inval)?;
    c.shared.deleg.set_program(client, a.cb_program, cred);
    Ok(Vec::new())
}

/// SEQUENCE: the session, and whether the request is new or a retransmission
/// (`nops` operations in `size` bytes of arguments).
pub(super) fn sequence(
    c: &mut Compound<'_>,
    a: &SequenceArgs,
    nops: u32,
    size: usize,
) -> Result<(Vec<u8>, Arc<Session>, SlotCheck), super::Fail> {
    let s = c.shared.nfs4.session(&a.sessionid)?;
    if nops > s.max_ops {
        return Err(Nfs4Status::TooManyOps.into());
    }
    if size > s.max_req as usize {
        return Err(Nfs4Status::ReqTooBig.into());
    }
    let check = s.begin(a.slotid, a.sequenceid)?;
    let high = s.nslots().saturating_sub(1);
    let body = SequenceResOk {
        sessionid: a.sessionid,
        sequenceid: a.sequenceid,
        slotid: a.slotid,
        highest_slotid: high,
        target_highest_slotid: high,
        status_flags: c.shared.deleg.status_flags(s.client),
    }
    .to_xdr();
    Ok((body, s, check))
}

pub(super) fn destroy_session(c: &mut Compound<'_>, id: &SessionId4) -> OpResult {
    c.shared.nfs4.destroy_session(id)?;
    c.shared.deleg.drop_session(id);
    Ok(Vec::new())
}

pub(super) async fn destroy_clientid(c: &mut Compound<'_>, id: u64) -> OpResult {
    let released = c.shared.nfs4.destroy_client(id)?;
    super::courtesy::release(c.shared, released).await;
    Ok(Vec::new())
}

pub(super) fn reclaim_complete(c: &mut Compound<'_>, one_fs: bool) -> OpResult {
    let id = c.clientid()?;
    if !one_fs {
        c.shared.nfs4.reclaim_complete(id)?;
        let owner = c.shared.nfs4.owner_of(id)?;
        c.shared.grace.reclaim_complete(&owner);
    }
    Ok(Vec::new())
}

pub(super) fn bind_conn(c: &mut Compound<'_>, a: &BindConnArgs) -> OpResult {
    c.shared.nfs4.session(&a.sessionid)?;
    if a.dir & 2 != 0
        && let (Some(b), Some(conn)) = (c.shared.deleg.back_of(&a.sessionid), &c.ctx.conn)
    {
        b.rebind(conn);
    }
    // CDFC4_FORE 1, CDFC4_BACK 2, CDFC4_FORE_OR_BOTH 3, CDFC4_BACK_OR_BOTH 7 ->
    // CDFS4_FORE 1, CDFS4_BACK 2, CDFS4_BOTH 3.
    let dir = match a.dir {
        1 => 1,
        2 => 2,
        3 | 7 => 3,
        _ => return Err(Nfs4Status::Inval.into()),
    };
    ok(&BindConnResOk {
        sessionid: a.sessionid,
        dir,
        use_conn_in_rdma_mode: false,
    })
}

pub(super) async fn setclientid(c: &mut Compound<'_>, a: &SetClientIdArgs) -> OpResult {
    let owner = &a.client;
    let (clientid, _, _, released) = c
        .shared
        .nfs4
        .exchange_id(&owner.ownerid.0, owner.verifier)?;
    super::courtesy::release(c.shared, released).await;
    super::cb40::offered(c, clientid, a);
    ok(&SetClientIdResOk {
        clientid,
        confirm: c.shared.nfs4.confirm_verifier(clientid),
    })
}

pub(super) fn setclientid_confirm(c: &mut Compound<'_>, a: &SetClientIdConfirmArgs) -> OpResult {
    c.shared.nfs4.confirm(a.clientid, a.confirm)?;
    super::cb40::confirmed(c, a.clientid);
    Ok(Vec::new())
}

pub(super) fn renew(c: &mut Compound<'_>, clientid: u64) -> OpResult {
    c.shared.nfs4.renew(clientid)?;
    if c.shared.deleg.status_flags(clientid) & super::deleg::SEQ4_STATUS_CB_PATH_DOWN != 0 {
        return Err(Nfs4Status::CbPathDown.into());
    }
    Ok(Vec::new())
}
