//! The NSM service (program 100024 v1, XNFS chapter 11) on the server's status monitor
//! store (`nsmd`): SM_STAT, SM_MON records the host with the caller's address (it is
//! sent SM_NOTIFY after our next restart), SM_UNMON / SM_UNMON_ALL forget hosts, and
//! SM_NOTIFY from a rebooted client releases all its NLM state (by its name, and every
//! name monitored at its address).

use crate::call::{CallCtx, Outcome, garbage_args};
use crate::nlm_state::client_id;
use crate::nsm1::*;
use crate::nsmd::Monitored;
use crate::shared::Shared;
use crate::xdr::{Decoder, XdrDecode};
use bytes::Bytes;

pub(crate) fn proc_name(p: NsmProc) -> &'static str {
    match p {
        NsmProc::Null => "NULL",
        NsmProc::Stat => "STAT",
        NsmProc::Mon => "MON",
        NsmProc::Unmon => "UNMON",
        NsmProc::UnmonAll => "UNMON_ALL",
        NsmProc::SimuCrash => "SIMU_CRASH",
        NsmProc::Notify => "NOTIFY",
    }
}

/// Serves one NSM call. SM_MON records the host with the caller's address (it is sent
/// SM_NOTIFY after our next restart); SM_NOTIFY from a rebooted client releases all
/// its NLM state (by its name, and every name monitored at its address).
pub(crate) async fn dispatch(
    shared: &Shared,
    ctx: &CallCtx,
    xid: u32,
    p: NsmProc,
    args: Bytes,
) -> Outcome {
    let nsm = &shared.nlm.nsm;
    let mut dec = Decoder::from_bytes(&args);
    let ok = |state| SmStatRes {
        res_stat: STAT_SUCC,
        state,
    };
    let done = match p {
        NsmProc::Null => Some(Outcome::ok(xid, &())),
        NsmProc::Stat => decode_sm_name(&mut dec)
            .ok()
            .map(|_| Outcome::ok(xid, &ok(nsm.state()))),
        NsmProc::Mon => Mon::decode(&mut dec).ok().map(|m| {
            nsm.monitor(Monitored {
                name: m.mon_id.mon_name,
                client: ctx.client.ip(),
                server: ctx.local.map(|a| a.ip()),
            });
            Outcome::ok(xid, &ok(nsm.state()))
        }),
        NsmProc::Unmon => MonId::decode(&mut dec).ok().map(|m| {
            nsm.unmonitor(|h| h.name == m.mon_name);
            Outcome::ok(xid, &nsm.state())
        }),
        NsmProc::UnmonAll => MyId::decode(&mut dec).ok().map(|_| {
            let ip = ctx.client.ip();
            nsm.unmonitor(|h| h.client == ip);
            Outcome::ok(xid, &nsm.state())
        }),
        NsmProc::SimuCrash => {
            nsm.simulate_crash();
            Some(Outcome::ok(xid, &()))
        }
        NsmProc::Notify => StatChge::decode(&mut dec).ok().map(|c| {
            client_rebooted(shared, ctx, &c);
            Outcome::ok(xid, &())
        }),
    };
    done.unwrap_or_else(|| garbage_args(xid))
}

fn client_rebooted(shared: &Shared, ctx: &CallCtx, c: &StatChge) {
    let ip = ctx.client.ip();
    let mut names = vec![client_id(&c.mon_name)];
    for h in shared.nlm.nsm.monitored() {
        let id = client_id(&h.name);
        if h.client == ip && !names.contains(&id) {
            names.push(id);
        }
    }
    let n = shared.nlm.release_clients(&names);
    tracing::info!(%ip, state = c.state, locks = n, "SM_NOTIFY: client rebooted, its locks released");
}
