//! MOUNT protocol version 3 (RFC 1813 appendix I): MNT hands out the root handle of a
//! share by export path, DUMP/UMNT/UMNTALL keep the advisory mount list, EXPORT lists the
//! shares with their allowed client patterns.

use crate::export::ClientPattern;
use crate::mount3::*;
use crate::nfs3::NfsFh3;
use crate::rpc::{AUTH_SYS, AcceptStat, RpcCall, encode_success};
use crate::server::{CallCtx, Outcome, Shared};
use crate::xdr::{Decoder, XdrEncode};
use bytes::{Bytes, BytesMut};

pub(crate) fn proc_name(p: MountProc) -> &'static str {
    match p {
        MountProc::Null => "NULL",
        MountProc::Mnt => "MNT",
        MountProc::Dump => "DUMP",
        MountProc::Umnt => "UMNT",
        MountProc::Umntall => "UMNTALL",
        MountProc::Export => "EXPORT",
    }
}

fn ok_reply(xid: u32, res: &impl XdrEncode) -> Vec<Bytes> {
    let mut b = BytesMut::with_capacity(128);
    encode_success(&mut b, xid);
    res.encode(&mut b);
    vec![b.freeze()]
}

pub(crate) async fn dispatch(
    shared: &Shared,
    ctx: &CallCtx,
    call: &RpcCall,
    args: Bytes,
) -> Outcome {
    let xid = call.xid;
    let Some(p) = MountProc::from_u32(call.proc_num) else {
        return crate::server::rpc_error(xid, AcceptStat::ProcUnavail, "PROC_UNAVAIL");
    };
    let mut dec = Decoder::from_bytes(&args);
    let parsed = match MountArgs::decode(p, &mut dec) {
        Ok(a) => a,
        Err(_) => {
            return crate::server::rpc_error(xid, AcceptStat::GarbageArgs, "GARBAGE_ARGS");
        }
    };
    match parsed {
        MountArgs::Null => Outcome {
            reply: ok_reply(xid, &()),
            error: None,
        },
        MountArgs::Mnt(a) => {
            let res = mnt(shared, ctx, &a.dirpath.0).await;
            let error = match &res {
                MntRes::Ok(_) => None,
                MntRes::Err(MountStat3::NoEnt) => Some("NOENT"),
                MntRes::Err(MountStat3::Acces) => Some("ACCES"),
                MntRes::Err(_) => Some("OTHER"),
            };
            Outcome {
                reply: ok_reply(xid, &res),
                error,
            }
        }
        MountArgs::Dump => {
            let mounts = shared
                .mounts
                .lock()
                .iter()
                .map(|(ip, path)| MountBody {
                    hostname: MountName(ip.to_string().into_bytes()),
                    directory: DirPath(path.clone()),
                })
                .collect();
            Outcome {
                reply: ok_reply(xid, &DumpRes { mounts }),
                error: None,
            }
        }
        MountArgs::Umnt(a) => {
            let ip = ctx.client.ip();
            shared
                .mounts
                .lock()
                .retain(|(i, p)| !(*i == ip && *p == a.dirpath.0));
            Outcome {
                reply: ok_reply(xid, &()),
                error: None,
            }
        }
        MountArgs::Umntall => {
            let ip = ctx.client.ip();
            shared.mounts.lock().retain(|(i, _)| *i != ip);
            Outcome {
                reply: ok_reply(xid, &()),
                error: None,
            }
        }
        MountArgs::Export => {
            let exports = shared
                .registry
                .list()
                .into_iter()
                .map(|fs| {
                    let groups = shared
                        .export(fs.share_id())
                        .map(|p| {
                            if p.allowed.contains(&ClientPattern::Any) {
                                Vec::new()
                            } else {
                                p.allowed
                                    .iter()
                                    .map(|c| MountName(pattern_text(c).into_bytes()))
                                    .collect()
                            }
                        })
                        .unwrap_or_default();
                    ExportNode {
                        dir: DirPath(fs.name().as_bytes().to_vec()),
                        groups,
                    }
                })
                .collect();
            Outcome {
                reply: ok_reply(xid, &ExportRes { exports }),
                error: None,
            }
        }
    }
}

fn pattern_text(c: &ClientPattern) -> String {
    match c {
        ClientPattern::Any => "*".into(),
        ClientPattern::Addr(a) => a.to_string(),
        ClientPattern::Cidr(a, p) => format!("{a}/{p}"),
    }
}

async fn mnt(shared: &Shared, ctx: &CallCtx, path: &[u8]) -> MntRes {
    let Ok(path_str) = std::str::from_utf8(path) else {
        return MntRes::Err(MountStat3::NoEnt);
    };
    let Some(fs) = shared.registry.by_name(path_str) else {
        tracing::info!(client = %ctx.client, path = path_str, "MNT of an unknown export");
        return MntRes::Err(MountStat3::NoEnt);
    };
    let Some(policy) = shared.export(fs.share_id()) else {
        return MntRes::Err(MountStat3::NoEnt);
    };
    if !policy.allows(ctx.client.ip()) {
        tracing::warn!(client = %ctx.client, path = path_str, "MNT refused: client not in allowed_clients");
        return MntRes::Err(MountStat3::Acces);
    }
    match fs.root_handle().await {
        Ok(h) => {
            let mut m = shared.mounts.lock();
            let entry = (ctx.client.ip(), path.to_vec());
            if !m.contains(&entry) {
                m.push(entry);
            }
            MntRes::Ok(MntResOk {
                fhandle: NfsFh3(h.encode().to_vec()),
                auth_flavors: vec![AUTH_SYS],
            })
        }
        Err(_) => MntRes::Err(MountStat3::ServerFault),
    }
}
