//! One record in, one reply out: decodes the RPC call a record holds (RFC 5531 section
//! 9), refuses what no program here serves (PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL,
//! AUTH_ERROR for flavors other than AUTH_NONE/AUTH_SYS, RPC_MISMATCH, GARBAGE_ARGS),
//! answers retransmitted non-idempotent calls from the duplicate request cache, runs the
//! program's handler (NFSv3 `proc3`, NFSv4 `proc4`, MOUNT `mountd`, NLM `nlmd`, NSM `statd`) and counts
//! the call in the metrics. Record marking itself (RFC 5531 section 11) is `record`; the
//! connection loop that reads records and writes replies is `server`.

use crate::call::{CallCtx, Reply, header_only};
use crate::drc::{DrcKey, DrcState};
use crate::metrics::{ErrorLabels, ProcLabels};
use crate::rpc::{
    AcceptStat, Auth, AuthStat, RpcCall, RpcDecodeError, encode_accepted, encode_auth_error,
    encode_rpc_mismatch,
};
use crate::shared::Shared;
use crate::{mount3, mountd, nfs3, nfs4, nlm4, nlmd, nsm1, proc3, proc4, statd};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Instant;

/// The largest reply `record` can get (see [`proc3::reply_bound`] and
/// [`proc4::reply_bound`]); a few KiB for anything that is not a well-formed NFS call.
pub(crate) fn reply_bound(record: &Bytes) -> usize {
    const SMALL: usize = 4096;
    match RpcCall::decode(record) {
        Ok((c, args)) if (c.prog, c.vers) == (nfs3::PROGRAM, nfs3::VERSION) => {
            nfs3::Nfs3Proc::from_u32(c.proc_num).map_or(SMALL, |p| proc3::reply_bound(p, args))
        }
        Ok((c, args)) if (c.prog, c.vers, c.proc_num) == (nfs4::PROGRAM, nfs4::VERSION, 1) => {
            proc4::reply_bound(&record.slice(record.len() - args.len()..))
        }
        _ => SMALL,
    }
}

/// A procedure of one of the programs served here.
#[derive(Clone, Copy)]
enum Proc {
    Nfs3(nfs3::Nfs3Proc),
    /// NFSv4 NULL (0) or COMPOUND (1).
    Nfs4(u32),
    Mount3(mount3::MountProc),
    Nlm4(nlm4::NlmProc),
    Nsm1(nsm1::NsmProc),
}

impl Proc {
    /// The program's label and the procedure's name (metrics), and whether the
    /// procedure may simply run again when retransmitted (else: the DRC answers).
    fn describe(self) -> (&'static str, &'static str, bool) {
        match self {
            Proc::Nfs3(p) => ("nfs3", proc3::proc_name(p), proc3::is_idempotent(p)),
            // NFSv4.1 answers retransmissions from the session's slots, not the DRC.
            Proc::Nfs4(0) => ("nfs4", "NULL", true),
            Proc::Nfs4(_) => ("nfs4", "COMPOUND", true),
            Proc::Mount3(p) => ("mount3", mountd::proc_name(p), true),
            // No duplicate request cache for NLM: its calls are safe to repeat (a
            // retransmitted LOCK of the same owner is granted or blocked again).
            Proc::Nlm4(p) => ("nlm4", nlmd::proc_name(p), true),
            Proc::Nsm1(p) => ("nsm1", statd::proc_name(p), true),
        }
    }
}

/// The procedure `call` asks for, or the accept status that refuses it.
fn route(call: &RpcCall) -> Result<Proc, AcceptStat> {
    let n = call.proc_num;
    if (call.prog, call.vers) == (nfs4::PROGRAM, nfs4::VERSION) {
        return (n <= nfs4::PROC_COMPOUND)
            .then_some(Proc::Nfs4(n))
            .ok_or(AcceptStat::ProcUnavail);
    }
    let (version, found) = match call.prog {
        nfs3::PROGRAM => (nfs3::VERSION, nfs3::Nfs3Proc::from_u32(n).map(Proc::Nfs3)),
        mount3::PROGRAM => (
            mount3::VERSION,
            mount3::MountProc::from_u32(n).map(Proc::Mount3),
        ),
        nlm4::PROGRAM => (nlm4::VERSION, nlm4::NlmProc::from_u32(n).map(Proc::Nlm4)),
        nsm1::PROGRAM => (nsm1::VERSION, nsm1::NsmProc::from_u32(n).map(Proc::Nsm1)),
        _ => return Err(AcceptStat::ProgUnavail),
    };
    if call.vers != version {
        // NFS (100003) is served in versions 3 and 4.
        let high = if call.prog == nfs3::PROGRAM {
            nfs4::VERSION
        } else {
            version
        };
        return Err(AcceptStat::ProgMismatch { low: version, high });
    }
    found.ok_or(AcceptStat::ProcUnavail)
}

/// The reply to a record that is not a decodable call (None: nothing to send).
fn undecodable(shared: &Shared, peer: SocketAddr, e: RpcDecodeError) -> Option<Reply> {
    shared.metrics.rejected_records.inc();
    shared
        .logs
        .garbage
        .hit(|| format!("garbage record from {peer} (not an RPC call): {e}"));
    match e {
        RpcDecodeError::Garbage { xid: Some(xid), .. } => Some(header_only(|b| {
            encode_accepted(b, xid, AcceptStat::GarbageArgs)
        })),
        RpcDecodeError::RpcMismatch { xid, .. } => {
            Some(header_only(|b| encode_rpc_mismatch(b, xid)))
        }
        RpcDecodeError::BadCred { xid, .. } => Some(header_only(|b| {
            encode_auth_error(b, xid, AuthStat::BadCred)
        })),
        _ => None,
    }
}

/// Decodes one call and produces its reply (None: nothing to send).
pub(crate) async fn handle_record(
    shared: &Shared,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    conn: Option<std::sync::Arc<crate::backchannel::ConnHandle>>,
    record: Bytes,
) -> Option<Reply> {
    let (call, args) = match RpcCall::decode(&record) {
        Ok((c, args)) => {
            let off = record.len() - args.len();
            (c, record.slice(off..))
        }
        Err(e) => return undecodable(shared, peer, e),
    };
    let xid = call.xid;
    if let Auth::Other(_) = call.cred {
        return Some(header_only(|b| {
            encode_auth_error(b, xid, AuthStat::TooWeak)
        }));
    }
    let proc = match route(&call) {
        Ok(p) => p,
        Err(stat) => return Some(header_only(|b| encode_accepted(b, xid, stat))),
    };
    let (_, _, idempotent) = proc.describe();
    // NFSv4.0 has no session slots: its state-changing COMPOUNDs use the DRC
    let v40 = matches!(proc, Proc::Nfs4(1)) && nfs4::v40_wants_replay_cache(&args);
    let drc_key = (!idempotent || v40).then(|| DrcKey::new(peer.ip(), &call, &args));
    if let Some(k) = &drc_key {
        match shared.drc.begin(k) {
            DrcState::New => {}
            DrcState::InProgress => return None,
            DrcState::Done(reply) => return Some(reply),
        }
    }
    let ctx = CallCtx {
        client: peer,
        local,
        auth: call.cred.clone(),
        conn,
    };
    let reply = run(shared, proc, &ctx, xid, args).await;
    if let Some(k) = drc_key {
        shared.drc.finish(k, &reply);
    }
    Some(reply)
}

/// Runs the handler of `proc` and counts the call (requests, latency, errors).
async fn run(shared: &Shared, proc: Proc, ctx: &CallCtx, xid: u32, args: Bytes) -> Reply {
    let started = Instant::now();
    let outcome = match proc {
        Proc::Nfs3(p) => proc3::dispatch(shared, ctx, xid, p, args).await,
        Proc::Nfs4(p) => proc4::dispatch(shared, ctx, xid, p, args).await,
        Proc::Nlm4(p) => nlmd::dispatch(shared, ctx, xid, p, args).await,
        Proc::Nsm1(p) => statd::dispatch(shared, ctx, xid, p, args).await,
        Proc::Mount3(p) => mountd::dispatch(shared, ctx, xid, p, args).await,
    };
    let (program, procedure, _) = proc.describe();
    let labels = ProcLabels { program, procedure };
    shared.metrics.requests.get_or_create(&labels).inc();
    shared
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    if let Some(status) = outcome.error {
        shared
            .metrics
            .errors
            .get_or_create(&ErrorLabels {
                program,
                procedure,
                status,
            })
            .inc();
    }
    outcome.reply
}
