//! MOUNT protocol version 3 (RFC 1813 appendix I): MNT hands out the handle of a share's
//! root or of a directory inside it (`/export/a/b`, see [`split_export`]), DUMP/UMNT/UMNTALL keep the advisory mount list, EXPORT lists the
//! shares with their allowed client patterns.

use crate::call::{CallCtx, Outcome, garbage_args};
use crate::export::{ClientPattern, Refusal};
use crate::mount3::*;
use crate::nfs3::NfsFh3;
use crate::rpc::AUTH_SYS;
use crate::shared::Shared;
use crate::xdr::Decoder;
use bytes::Bytes;
use dittofs_vfs::FsError;

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

pub(crate) async fn dispatch(
    shared: &Shared,
    ctx: &CallCtx,
    xid: u32,
    p: MountProc,
    args: Bytes,
) -> Outcome {
    let mut dec = Decoder::from_bytes(&args);
    let parsed = match MountArgs::decode(p, &mut dec) {
        Ok(a) => a,
        Err(_) => {
            return garbage_args(xid);
        }
    };
    match parsed {
        MountArgs::Null => Outcome::ok(xid, &()),
        MountArgs::Mnt(a) => {
            let res = mnt(shared, ctx, &a.dirpath.0).await;
            let error = match &res {
                MntRes::Ok(_) => None,
                MntRes::Err(MountStat3::NoEnt) => Some("NOENT"),
                MntRes::Err(MountStat3::Acces) => Some("ACCES"),
                MntRes::Err(MountStat3::NotDir) => Some("NOTDIR"),
                MntRes::Err(MountStat3::NameTooLong) => Some("NAMETOOLONG"),
                MntRes::Err(_) => Some("OTHER"),
            };
            Outcome::reply(xid, &res, error)
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
            Outcome::ok(xid, &DumpRes { mounts })
        }
        MountArgs::Umnt(a) => {
            let ip = ctx.client.ip();
            shared
                .mounts
                .lock()
                .retain(|(i, p)| !(*i == ip && *p == a.dirpath.0));
            Outcome::ok(xid, &())
        }
        MountArgs::Umntall => {
            let ip = ctx.client.ip();
            shared.mounts.lock().retain(|(i, _)| *i != ip);
            Outcome::ok(xid, &())
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
            Outcome::ok(xid, &ExportRes { exports })
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

/// Splits a MNT path into the export it lies in and the path inside it: the export whose
/// name is the longest prefix of `path` counted in whole components (`/export` matches
/// `/export` and `/export/a/b`, never `/exportx`; `/` matches everything). Empty
/// components (`//`, a trailing `/`) and `.` are ignored on both sides. `None` when no
/// export matches, or when a component is `..` (a MNT path never climbs: `/export/../x`
/// names nothing, whatever exists). The remainder is share-relative, components joined
/// by `/` (empty: the share root).
pub(crate) fn split_export<S: AsRef<str>>(names: &[S], path: &[u8]) -> Option<(usize, Vec<u8>)> {
    let comps = |p: &[u8]| -> Vec<Vec<u8>> {
        p.split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .map(<[u8]>::to_vec)
            .collect()
    };
    let want = comps(path);
    if want.iter().any(|c| c == b"..") {
        return None;
    }
    let (idx, n) = names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let have = comps(name.as_ref().as_bytes());
            want.starts_with(&have).then_some((i, have.len()))
        })
        .max_by_key(|&(_, n)| n)?;
    Some((idx, want[n..].join(&b'/')))
}

/// The MNT status of a failure to resolve the path inside a share.
fn mount_stat(e: &FsError) -> MountStat3 {
    match e {
        FsError::NoEnt | FsError::Stale => MountStat3::NoEnt,
        FsError::NotDir => MountStat3::NotDir,
        FsError::Access => MountStat3::Acces,
        FsError::Perm => MountStat3::Perm,
        FsError::NameTooLong => MountStat3::NameTooLong,
        FsError::Inval(_) | FsError::InvalidArgument(_) => MountStat3::Inval,
        FsError::Io(_) => MountStat3::Io,
        _ => MountStat3::ServerFault,
    }
}

/// MNT of an export or of a directory inside one (`/export/a/b`). The share's policy
/// (allowed clients, secure ports) applies to every path inside it. The path inside the
/// share is resolved with the caller's credentials as the share maps them (AUTH_SYS
/// squashed, or anonymous), exactly like a chain of LOOKUPs from the share root: a client
/// cannot get the handle of a directory it could not reach by LOOKUP. Every later NFS
/// call on the handle is checked against the share's policy as usual.
async fn mnt(shared: &Shared, ctx: &CallCtx, path: &[u8]) -> MntRes {
    let shown = String::from_utf8_lossy(path);
    let shares = shared.registry.list();
    let names: Vec<&str> = shares.iter().map(|f| f.name()).collect();
    let Some((idx, rest)) = split_export(&names, path) else {
        shared
            .logs
            .mount_failed
            .hit(|| format!("MNT refused: {shown} from {} is in no export", ctx.client));
        return MntRes::Err(MountStat3::NoEnt);
    };
    let Some(fs) = shares.get(idx) else {
        return MntRes::Err(MountStat3::NoEnt);
    };
    let Some(policy) = shared.export(fs.share_id()) else {
        return MntRes::Err(MountStat3::NoEnt);
    };
    match shared.admit(&policy, ctx.client, fs.name(), "MNT") {
        Ok(()) => {}
        Err(Refusal::NotAllowed) => {
            shared.logs.mount_not_allowed.hit(|| {
                format!(
                    "MNT refused: {} is not in allowed_clients of {shown}",
                    ctx.client
                )
            });
            return MntRes::Err(MountStat3::Acces);
        }
        // As rpc.mountd answers an "illegal port" (counted and logged by `admit`).
        Err(Refusal::InsecurePort) => return MntRes::Err(MountStat3::Acces),
    }
    let Ok(cred) = policy.caller(&ctx.auth) else {
        // A disabled user (the client's root after squashing, usually) mounts nothing.
        return MntRes::Err(MountStat3::Acces);
    };
    let handle = match fs.resolve_dir_path(&cred, &rest).await {
        Ok(ino) => fs.handle_of(ino).await,
        Err(e) => {
            shared
                .logs
                .mount_failed
                .hit(|| format!("MNT refused: {shown} from {}: {e}", ctx.client));
            return MntRes::Err(mount_stat(&e));
        }
    };
    match handle {
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
        Err(e) => MntRes::Err(mount_stat(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(names: &[&str], path: &str) -> Option<(usize, String)> {
        split_export(names, path.as_bytes())
            .map(|(i, r)| (i, String::from_utf8_lossy(&r).into_owned()))
    }

    #[test]
    fn export_is_a_whole_component_prefix() {
        let names = ["/export", "/exportx", "/export/deep"];
        assert_eq!(split(&names, "/export"), Some((0, String::new())));
        assert_eq!(split(&names, "/export/"), Some((0, String::new())));
        assert_eq!(split(&names, "/export/a/b"), Some((0, "a/b".into())));
        assert_eq!(split(&names, "/export/a/b/"), Some((0, "a/b".into())));
        assert_eq!(split(&names, "/exportx"), Some((1, String::new())));
        assert_eq!(split(&names, "/exportx/a"), Some((1, "a".into())));
        // the longest export wins
        assert_eq!(split(&names, "/export/deep/er"), Some((2, "er".into())));
        assert_eq!(split(&names, "/export/deeper"), Some((0, "deeper".into())));
        // a name that merely starts like an export is no export
        assert_eq!(split(&["/export"], "/exportx"), None);
        assert_eq!(split(&["/export"], "/exportx/a"), None);
        assert_eq!(split(&["/export"], "/expor"), None);
        assert_eq!(split(&["/export"], "/"), None);
        assert_eq!(split(&["/export"], ""), None);
    }

    #[test]
    fn empty_and_dot_components_are_ignored() {
        let names = ["/export"];
        assert_eq!(split(&names, "//export//a///b//"), Some((0, "a/b".into())));
        assert_eq!(split(&names, "/./export/./a/."), Some((0, "a".into())));
        assert_eq!(split(&names, "export/a"), Some((0, "a".into())));
        assert_eq!(split(&["export/"], "/export/a"), Some((0, "a".into())));
    }

    #[test]
    fn root_export_matches_everything_but_longer_exports_win() {
        let names = ["/", "/export"];
        assert_eq!(split(&names, "/"), Some((0, String::new())));
        assert_eq!(split(&names, "/other/x"), Some((0, "other/x".into())));
        assert_eq!(split(&names, "/export/x"), Some((1, "x".into())));
    }

    #[test]
    fn dot_dot_never_matches() {
        let names = ["/", "/export", "/other"];
        assert_eq!(split(&names, "/export/../other"), None);
        assert_eq!(split(&names, "/export/a/../../"), None);
        assert_eq!(split(&names, "/../export"), None);
        assert_eq!(split(&names, "/export/.."), None);
        // a name merely containing dots is an ordinary name
        assert_eq!(
            split(&names, "/export/..a/b.."),
            Some((1, "..a/b..".into()))
        );
    }

    #[test]
    fn errors_map_to_mount_codes() {
        assert_eq!(mount_stat(&FsError::NoEnt), MountStat3::NoEnt);
        assert_eq!(mount_stat(&FsError::NotDir), MountStat3::NotDir);
        assert_eq!(mount_stat(&FsError::Access), MountStat3::Acces);
        assert_eq!(mount_stat(&FsError::NameTooLong), MountStat3::NameTooLong);
        assert_eq!(
            mount_stat(&FsError::ServerFault("x".into())),
            MountStat3::ServerFault
        );
    }
}
