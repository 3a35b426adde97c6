//! NFSv3 procedures over the filesystem core (RFC 1813 section 3.3). Each handler
//! resolves handles through the share registry, applies the share's export policy
//! (client address, squashing), calls one core operation and builds the reply with weak
//! cache consistency data wherever RFC 1813 has it.

use crate::conv::{fattr, sattr, time_from_wire, wcc};
use crate::export::Refusal;
use crate::nfs3::*;
use crate::rpc::{AcceptStat, RpcCall, encode_success};
use crate::server::{CallCtx, Outcome, Reply, Shared};
use crate::xdr::{Decoder, XdrDecode, XdrEncode};
use bytes::{Bytes, BytesMut};
use dittofs_types::{DeviceId, Ino};
use dittofs_vfs::{Attr, CreateMode, Credentials, Fs, FsError, SetAttr, SpecialKind, Stability};
use std::sync::Arc;

/// Largest READ/WRITE transfer advertised in FSINFO.
pub(crate) const MAX_IO: u32 = 1 << 20;

pub(crate) fn proc_name(p: Nfs3Proc) -> &'static str {
    match p {
        Nfs3Proc::Null => "NULL",
        Nfs3Proc::Getattr => "GETATTR",
        Nfs3Proc::Setattr => "SETATTR",
        Nfs3Proc::Lookup => "LOOKUP",
        Nfs3Proc::Access => "ACCESS",
        Nfs3Proc::Readlink => "READLINK",
        Nfs3Proc::Read => "READ",
        Nfs3Proc::Write => "WRITE",
        Nfs3Proc::Create => "CREATE",
        Nfs3Proc::Mkdir => "MKDIR",
        Nfs3Proc::Symlink => "SYMLINK",
        Nfs3Proc::Mknod => "MKNOD",
        Nfs3Proc::Remove => "REMOVE",
        Nfs3Proc::Rmdir => "RMDIR",
        Nfs3Proc::Rename => "RENAME",
        Nfs3Proc::Link => "LINK",
        Nfs3Proc::Readdir => "READDIR",
        Nfs3Proc::Readdirplus => "READDIRPLUS",
        Nfs3Proc::Fsstat => "FSSTAT",
        Nfs3Proc::Fsinfo => "FSINFO",
        Nfs3Proc::Pathconf => "PATHCONF",
        Nfs3Proc::Commit => "COMMIT",
    }
}

/// Bytes the reply of `p` with arguments `args` can take at most (what a connection
/// reserves of its reply budget before running the call): a READ's data or a
/// READDIR(PLUS)'s listing, as bounded by the client's count, plus a few KiB for the
/// rest; a few KiB for every other procedure. Unparsable arguments get the small bound
/// (the call fails with GARBAGE_ARGS anyway).
pub(crate) fn reply_bound(p: Nfs3Proc, args: &[u8]) -> usize {
    const SMALL: usize = 4096;
    let mut d = Decoder::new(args);
    let data = match p {
        Nfs3Proc::Read => ReadArgs::decode(&mut d).ok().map(|a| a.count),
        Nfs3Proc::Readdir => ReaddirArgs::decode(&mut d).ok().map(|a| a.count),
        Nfs3Proc::Readdirplus => ReaddirplusArgs::decode(&mut d).ok().map(|a| a.maxcount),
        _ => None,
    };
    data.map_or(SMALL, |n| n.min(MAX_IO) as usize + SMALL)
}

/// Procedures whose retransmission must be answered from the duplicate request cache.
pub(crate) fn is_idempotent(p: Nfs3Proc) -> bool {
    !matches!(
        p,
        Nfs3Proc::Setattr
            | Nfs3Proc::Create
            | Nfs3Proc::Mkdir
            | Nfs3Proc::Symlink
            | Nfs3Proc::Mknod
            | Nfs3Proc::Remove
            | Nfs3Proc::Rmdir
            | Nfs3Proc::Rename
            | Nfs3Proc::Link
    )
}

/// A resolved handle: its share, inode and the caller's credentials for that share.
struct Target {
    fs: Arc<Fs>,
    ino: Ino,
    cred: Credentials,
}

impl Shared {
    /// Resolves a handle and applies the export policy of its share.
    async fn target(&self, ctx: &CallCtx, fh: &NfsFh3) -> Result<Target, FsError> {
        let (fs, ino) = self.registry.resolve(fh.as_bytes()).await?;
        let policy = self.export(fs.share_id()).ok_or(FsError::Stale)?;
        // knfsd's statuses: a client not allowed gets ACCES, an unprivileged port on a
        // secure share PERM (the call, not the file, is refused).
        match self.admit(&policy, ctx.client, fs.name(), "NFS call") {
            Ok(()) => {}
            Err(Refusal::NotAllowed) => return Err(FsError::Access),
            Err(Refusal::InsecurePort) => return Err(FsError::Perm),
        }
        // A disabled user is refused like a client that is not allowed.
        let cred = policy.caller(&ctx.auth).map_err(|_| FsError::Access)?;
        Ok(Target { fs, ino, cred })
    }
}

fn handle_bytes(h: dittofs_vfs::FileHandle) -> NfsFh3 {
    NfsFh3(h.encode().to_vec())
}

async fn attr_opt(fs: &Fs, ino: Ino) -> Option<Attr> {
    fs.getattr(ino).await.ok()
}

fn reply(xid: u32, res: &impl XdrEncode) -> Reply {
    let mut b = BytesMut::with_capacity(256);
    encode_success(&mut b, xid);
    res.encode(&mut b);
    vec![b.freeze()]
}

fn outcome(xid: u32, st: NfsStat3, res: &impl XdrEncode) -> Outcome {
    Outcome {
        reply: reply(xid, res),
        error: if st == NfsStat3::Ok {
            None
        } else {
            Some(stat_name(st))
        },
    }
}

fn stat_name(s: NfsStat3) -> &'static str {
    match s {
        NfsStat3::Ok => "OK",
        NfsStat3::Perm => "PERM",
        NfsStat3::NoEnt => "NOENT",
        NfsStat3::Acces => "ACCES",
        NfsStat3::Exist => "EXIST",
        NfsStat3::NotDir => "NOTDIR",
        NfsStat3::IsDir => "ISDIR",
        NfsStat3::Inval => "INVAL",
        NfsStat3::NotEmpty => "NOTEMPTY",
        NfsStat3::Stale => "STALE",
        NfsStat3::BadHandle => "BADHANDLE",
        NfsStat3::NameTooLong => "NAMETOOLONG",
        NfsStat3::RoFs => "ROFS",
        NfsStat3::Io => "IO",
        NfsStat3::ServerFault => "SERVERFAULT",
        _ => "OTHER",
    }
}

/// Decodes and runs one NFSv3 call.
pub(crate) async fn dispatch(
    shared: &Shared,
    ctx: &CallCtx,
    call: &RpcCall,
    args: Bytes,
) -> Outcome {
    let xid = call.xid;
    let Some(p) = Nfs3Proc::from_u32(call.proc_num) else {
        return crate::server::rpc_error(xid, AcceptStat::ProcUnavail, "PROC_UNAVAIL");
    };
    let mut dec = Decoder::from_bytes(&args);
    let parsed = match Nfs3Args::decode(p, &mut dec) {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(client = %ctx.client, proc = proc_name(p), error = %e, "undecodable arguments");
            return crate::server::rpc_error(xid, AcceptStat::GarbageArgs, "GARBAGE_ARGS");
        }
    };
    match parsed {
        Nfs3Args::Null => Outcome {
            reply: reply(xid, &()),
            error: None,
        },
        Nfs3Args::Getattr(a) => {
            let r: GetattrRes = match getattr(shared, ctx, &a).await {
                Ok(attr) => Res3::Ok(GetattrResOk {
                    obj_attributes: fattr(&attr),
                }),
                Err(e) => Res3::Fail(NfsStat3::from(&e), ()),
            };
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Setattr(a) => {
            let r = setattr(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Lookup(a) => {
            let r = lookup(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Access(a) => {
            let r = access(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Readlink(a) => {
            let r = readlink(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Read(a) => read(shared, ctx, xid, &a).await,
        Nfs3Args::Write(a) => {
            let r = write(shared, ctx, a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Create(a) => {
            let how = match &a.how {
                CreateHow3::Unchecked(s) => (CreateMode::Unchecked, sattr(s)),
                CreateHow3::Guarded(s) => (CreateMode::Guarded, sattr(s)),
                CreateHow3::Exclusive(v) => (CreateMode::Exclusive(*v), SetAttr::default()),
            };
            let r = make(shared, ctx, &a.where_, Make::File(how.0), &how.1).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Mkdir(a) => {
            let r = make(shared, ctx, &a.where_, Make::Dir, &sattr(&a.attributes)).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Symlink(a) => {
            let target = a.symlink.symlink_data.0.clone();
            let r = make(
                shared,
                ctx,
                &a.where_,
                Make::Symlink(target),
                &sattr(&a.symlink.symlink_attributes),
            )
            .await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Mknod(a) => {
            let (kind, sa) = match &a.what {
                MknodData3::Chr(d) => (Some(SpecialKind::Char(dev(d))), sattr(&d.dev_attributes)),
                MknodData3::Blk(d) => (Some(SpecialKind::Block(dev(d))), sattr(&d.dev_attributes)),
                MknodData3::Sock(s) => (Some(SpecialKind::Socket), sattr(s)),
                MknodData3::Fifo(s) => (Some(SpecialKind::Fifo), sattr(s)),
                MknodData3::Other(_) => (None, SetAttr::default()),
            };
            let r = match kind {
                Some(k) => make(shared, ctx, &a.where_, Make::Special(k), &sa).await,
                None => Res3::Fail(
                    NfsStat3::BadType,
                    CreateResFail {
                        dir_wcc: WccData::default(),
                    },
                ),
            };
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Remove(a) => {
            let r = remove(shared, ctx, &a.object, false).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Rmdir(a) => {
            let r = remove(shared, ctx, &a.object, true).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Rename(a) => {
            let r = rename(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Link(a) => {
            let r = link(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Readdir(a) => {
            let r = readdir(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Readdirplus(a) => {
            let r = readdirplus(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Fsstat(a) => {
            let r = fsstat(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Fsinfo(a) => {
            let r = fsinfo(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Pathconf(a) => {
            let r = pathconf(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
        Nfs3Args::Commit(a) => {
            let r = commit(shared, ctx, &a).await;
            outcome(xid, r.status(), &r)
        }
    }
}

fn dev(d: &DeviceData3) -> DeviceId {
    DeviceId {
        major: d.spec.specdata1,
        minor: d.spec.specdata2,
    }
}

async fn getattr(shared: &Shared, ctx: &CallCtx, a: &GetattrArgs) -> Result<Attr, FsError> {
    let t = shared.target(ctx, &a.object).await?;
    t.fs.getattr(t.ino).await
}

async fn setattr(shared: &Shared, ctx: &CallCtx, a: &SetattrArgs) -> SetattrRes {
    let t = match shared.target(ctx, &a.object).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                SetattrResFail {
                    obj_wcc: WccData::default(),
                },
            );
        }
    };
    let before = attr_opt(&t.fs, t.ino).await;
    let guard = a.guard.map(time_from_wire);
    match t
        .fs
        .setattr(&t.cred, t.ino, &sattr(&a.new_attributes), guard)
        .await
    {
        Ok(after) => Res3::Ok(SetattrResOk {
            obj_wcc: wcc(before.as_ref(), Some(&after)),
        }),
        Err(e) => {
            let after = attr_opt(&t.fs, t.ino).await;
            Res3::Fail(
                NfsStat3::from(&e),
                SetattrResFail {
                    obj_wcc: wcc(before.as_ref(), after.as_ref()),
                },
            )
        }
    }
}

async fn lookup(shared: &Shared, ctx: &CallCtx, a: &LookupArgs) -> LookupRes {
    let t = match shared.target(ctx, &a.what.dir).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                LookupResFail {
                    dir_attributes: None,
                },
            );
        }
    };
    let dir_attr = attr_opt(&t.fs, t.ino).await;
    match t.fs.lookup(&t.cred, t.ino, &a.what.name.0).await {
        Ok(attr) => match t.fs.attr_and_handle(attr.ino).await {
            Ok((attr, h)) => Res3::Ok(LookupResOk {
                object: handle_bytes(h),
                obj_attributes: Some(fattr(&attr)),
                dir_attributes: dir_attr.as_ref().map(fattr),
            }),
            Err(e) => Res3::Fail(
                NfsStat3::from(&e),
                LookupResFail {
                    dir_attributes: dir_attr.as_ref().map(fattr),
                },
            ),
        },
        Err(e) => Res3::Fail(
            NfsStat3::from(&e),
            LookupResFail {
                dir_attributes: dir_attr.as_ref().map(fattr),
            },
        ),
    }
}

async fn access(shared: &Shared, ctx: &CallCtx, a: &AccessArgs) -> AccessRes {
    let t = match shared.target(ctx, &a.object).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                AccessResFail {
                    obj_attributes: None,
                },
            );
        }
    };
    match t.fs.access(&t.cred, t.ino, a.access).await {
        Ok((granted, attr)) => Res3::Ok(AccessResOk {
            obj_attributes: Some(fattr(&attr)),
            access: granted,
        }),
        Err(e) => Res3::Fail(
            NfsStat3::from(&e),
            AccessResFail {
                obj_attributes: None,
            },
        ),
    }
}

async fn readlink(shared: &Shared, ctx: &CallCtx, a: &ReadlinkArgs) -> ReadlinkRes {
    let t = match shared.target(ctx, &a.symlink).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                ReadlinkResFail {
                    symlink_attributes: None,
                },
            );
        }
    };
    let attr = attr_opt(&t.fs, t.ino).await;
    match t.fs.readlink(&t.cred, t.ino).await {
        Ok(target) => Res3::Ok(ReadlinkResOk {
            symlink_attributes: attr.as_ref().map(fattr),
            data: NfsPath3(target),
        }),
        Err(e) => Res3::Fail(
            NfsStat3::from(&e),
            ReadlinkResFail {
                symlink_attributes: attr.as_ref().map(fattr),
            },
        ),
    }
}

async fn read(shared: &Shared, ctx: &CallCtx, xid: u32, a: &ReadArgs) -> Outcome {
    let fail = |st: NfsStat3, attr: Option<Attr>| {
        let r: ReadRes = Res3::Fail(
            st,
            ReadResFail {
                file_attributes: attr.as_ref().map(fattr),
            },
        );
        outcome(xid, st, &r)
    };
    let t = match shared.target(ctx, &a.file).await {
        Ok(t) => t,
        Err(e) => return fail(NfsStat3::from(&e), None),
    };
    let count = a.count.min(MAX_IO);
    match t.fs.read(&t.cred, t.ino, a.offset, count).await {
        Ok((data, eof, attr)) => {
            shared.metrics.bytes_read.inc_by(data.len() as u64);
            let ok = ReadResOk {
                file_attributes: Some(fattr(&attr)),
                count: data.len() as u32,
                eof,
                data,
            };
            let mut head = BytesMut::with_capacity(160);
            encode_success(&mut head, xid);
            NfsStat3::Ok.encode(&mut head);
            ok.encode_head(&mut head);
            let pad = ok.padding();
            let mut parts = vec![head.freeze(), ok.data.clone()];
            if !pad.is_empty() {
                parts.push(Bytes::from_static(pad));
            }
            Outcome {
                reply: parts,
                error: None,
            }
        }
        Err(e) => {
            let attr = attr_opt(&t.fs, t.ino).await;
            fail(NfsStat3::from(&e), attr)
        }
    }
}

async fn write(shared: &Shared, ctx: &CallCtx, a: WriteArgs) -> WriteRes {
    let t = match shared.target(ctx, &a.file).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                WriteResFail {
                    file_wcc: WccData::default(),
                },
            );
        }
    };
    let before = attr_opt(&t.fs, t.ino).await;
    if (a.count as usize) > a.data.len() {
        return Res3::Fail(
            NfsStat3::Inval,
            WriteResFail {
                file_wcc: wcc(before.as_ref(), before.as_ref()),
            },
        );
    }
    let data = a.data.slice(..a.count as usize);
    let stability = match a.stable {
        StableHow::Unstable => Stability::Unstable,
        StableHow::DataSync => Stability::DataSync,
        StableHow::FileSync => Stability::FileSync,
    };
    match t.fs.write(&t.cred, t.ino, a.offset, data, stability).await {
        Ok(w) => {
            shared.metrics.bytes_written.inc_by(u64::from(w.count));
            Res3::Ok(WriteResOk {
                file_wcc: wcc(before.as_ref(), Some(&w.attr)),
                count: w.count,
                committed: a.stable,
                verf: shared.write_verifier,
            })
        }
        Err(e) => {
            let after = attr_opt(&t.fs, t.ino).await;
            Res3::Fail(
                NfsStat3::from(&e),
                WriteResFail {
                    file_wcc: wcc(before.as_ref(), after.as_ref()),
                },
            )
        }
    }
}

enum Make {
    File(CreateMode),
    Dir,
    Symlink(Vec<u8>),
    Special(SpecialKind),
}

async fn make(
    shared: &Shared,
    ctx: &CallCtx,
    at: &DirOpArgs3,
    what: Make,
    sa: &SetAttr,
) -> CreateRes {
    let t = match shared.target(ctx, &at.dir).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                CreateResFail {
                    dir_wcc: WccData::default(),
                },
            );
        }
    };
    let before = attr_opt(&t.fs, t.ino).await;
    let name = &at.name.0;
    let res = match what {
        Make::File(how) => t.fs.create(&t.cred, t.ino, name, how, sa).await,
        Make::Dir => t.fs.mkdir(&t.cred, t.ino, name, sa).await,
        Make::Symlink(target) => t.fs.symlink(&t.cred, t.ino, name, &target, sa).await,
        Make::Special(k) => t.fs.mknod(&t.cred, t.ino, name, k, sa).await,
    };
    let after = attr_opt(&t.fs, t.ino).await;
    let dir_wcc = wcc(before.as_ref(), after.as_ref());
    match res {
        Ok(attr) => {
            let (attr, h) = match t.fs.attr_and_handle(attr.ino).await {
                Ok(x) => x,
                Err(e) => return Res3::Fail(NfsStat3::from(&e), CreateResFail { dir_wcc }),
            };
            Res3::Ok(CreateResOk {
                obj: Some(handle_bytes(h)),
                obj_attributes: Some(fattr(&attr)),
                dir_wcc,
            })
        }
        Err(e) => Res3::Fail(NfsStat3::from(&e), CreateResFail { dir_wcc }),
    }
}

async fn remove(shared: &Shared, ctx: &CallCtx, at: &DirOpArgs3, dir: bool) -> RemoveRes {
    let t = match shared.target(ctx, &at.dir).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                CreateResFail {
                    dir_wcc: WccData::default(),
                },
            );
        }
    };
    let before = attr_opt(&t.fs, t.ino).await;
    let res = if dir {
        t.fs.rmdir(&t.cred, t.ino, &at.name.0).await
    } else {
        t.fs.remove(&t.cred, t.ino, &at.name.0).await
    };
    let after = attr_opt(&t.fs, t.ino).await;
    let dir_wcc = wcc(before.as_ref(), after.as_ref());
    match res {
        Ok(()) => Res3::Ok(RemoveResOk { dir_wcc }),
        Err(e) => Res3::Fail(NfsStat3::from(&e), CreateResFail { dir_wcc }),
    }
}

async fn rename(shared: &Shared, ctx: &CallCtx, a: &RenameArgs) -> RenameRes {
    let empty = || RenameResFail {
        fromdir_wcc: WccData::default(),
        todir_wcc: WccData::default(),
    };
    let from = match shared.target(ctx, &a.from.dir).await {
        Ok(t) => t,
        Err(e) => return Res3::Fail(NfsStat3::from(&e), empty()),
    };
    let to = match shared.target(ctx, &a.to.dir).await {
        Ok(t) => t,
        Err(e) => return Res3::Fail(NfsStat3::from(&e), empty()),
    };
    if from.fs.share_id() != to.fs.share_id() {
        return Res3::Fail(NfsStat3::XDev, empty());
    }
    let fb = attr_opt(&from.fs, from.ino).await;
    let tb = attr_opt(&to.fs, to.ino).await;
    let res = from
        .fs
        .rename(&from.cred, from.ino, &a.from.name.0, to.ino, &a.to.name.0)
        .await;
    let fa = attr_opt(&from.fs, from.ino).await;
    let ta = attr_opt(&to.fs, to.ino).await;
    let (fromdir_wcc, todir_wcc) = (wcc(fb.as_ref(), fa.as_ref()), wcc(tb.as_ref(), ta.as_ref()));
    match res {
        Ok(()) => Res3::Ok(RenameResOk {
            fromdir_wcc,
            todir_wcc,
        }),
        Err(e) => Res3::Fail(
            NfsStat3::from(&e),
            RenameResFail {
                fromdir_wcc,
                todir_wcc,
            },
        ),
    }
}

async fn link(shared: &Shared, ctx: &CallCtx, a: &LinkArgs) -> LinkRes {
    let empty = || LinkResFail {
        file_attributes: None,
        linkdir_wcc: WccData::default(),
    };
    let file = match shared.target(ctx, &a.file).await {
        Ok(t) => t,
        Err(e) => return Res3::Fail(NfsStat3::from(&e), empty()),
    };
    let dir = match shared.target(ctx, &a.link.dir).await {
        Ok(t) => t,
        Err(e) => return Res3::Fail(NfsStat3::from(&e), empty()),
    };
    if file.fs.share_id() != dir.fs.share_id() {
        return Res3::Fail(NfsStat3::XDev, empty());
    }
    let db = attr_opt(&dir.fs, dir.ino).await;
    let res = dir
        .fs
        .link(&dir.cred, file.ino, dir.ino, &a.link.name.0)
        .await;
    let da = attr_opt(&dir.fs, dir.ino).await;
    let fa = attr_opt(&file.fs, file.ino).await;
    let linkdir_wcc = wcc(db.as_ref(), da.as_ref());
    match res {
        Ok(_) => Res3::Ok(LinkResOk {
            file_attributes: fa.as_ref().map(fattr),
            linkdir_wcc,
        }),
        Err(e) => Res3::Fail(
            NfsStat3::from(&e),
            LinkResFail {
                file_attributes: fa.as_ref().map(fattr),
                linkdir_wcc,
            },
        ),
    }
}

/// Cookies 1 and 2 are "." and ".." (synthesised, as Linux clients expect from NFSv3
/// servers); real entries carry cookies from 3 up.
async fn dot_entries(fs: &Fs, dir: Ino, cookie: u64) -> Result<Vec<(Vec<u8>, Ino, u64)>, FsError> {
    let mut out = Vec::new();
    if cookie == 0 {
        out.push((b".".to_vec(), dir, 1));
    }
    if cookie <= 1 {
        let parent = fs.lookup(&Credentials::root(), dir, b"..").await?.ino;
        out.push((b"..".to_vec(), parent, 2));
    }
    Ok(out)
}

/// One page of a directory for READDIR/READDIRPLUS: the resolved directory, its
/// attributes, the verifier to return, the entries (dots first) and whether the page
/// reaches the end. Errors carry the directory attributes when they could be read.
struct DirPage {
    t: Target,
    dir_attr: Option<Attr>,
    verifier: u64,
    entries: Vec<(Vec<u8>, Ino, u64)>,
    eof: bool,
}

async fn dir_page(
    shared: &Shared,
    ctx: &CallCtx,
    dir: &NfsFh3,
    cookie: u64,
    cookieverf: CookieVerf3,
    max: usize,
) -> Result<DirPage, (NfsStat3, Option<Attr>)> {
    let t = shared
        .target(ctx, dir)
        .await
        .map_err(|e| (NfsStat3::from(&e), None))?;
    let dir_attr = attr_opt(&t.fs, t.ino).await;
    // Cookies up to 2 are the synthesised dots: the core starts after them, with no
    // verifier to check yet.
    let verf = if cookie <= 2 {
        0
    } else {
        u64::from_be_bytes(cookieverf)
    };
    let page = match t.fs.readdir(&t.cred, t.ino, cookie.max(2), verf, max).await {
        Ok(p) => p,
        Err(e) => return Err((NfsStat3::from(&e), dir_attr)),
    };
    let mut entries = match dot_entries(&t.fs, t.ino, cookie).await {
        Ok(d) => d,
        Err(e) => return Err((NfsStat3::from(&e), dir_attr)),
    };
    entries.extend(page.entries.into_iter().map(|e| (e.name, e.ino, e.cookie)));
    Ok(DirPage {
        t,
        dir_attr,
        verifier: page.verifier,
        entries,
        eof: page.eof,
    })
}

async fn readdir(shared: &Shared, ctx: &CallCtx, a: &ReaddirArgs) -> ReaddirRes {
    let max = ((a.count as usize) / 24).clamp(8, 4096);
    let p = match dir_page(shared, ctx, &a.dir, a.cookie, a.cookieverf, max).await {
        Ok(p) => p,
        Err((st, da)) => {
            return Res3::Fail(
                st,
                ReaddirResFail {
                    dir_attributes: da.as_ref().map(fattr),
                },
            );
        }
    };
    let mut b = ReaddirBuilder::new(
        p.dir_attr.as_ref().map(fattr),
        p.verifier.to_be_bytes(),
        a.count,
    );
    let mut all_fit = true;
    for (name, ino, cookie) in p.entries {
        if !b.try_push(Entry3 {
            fileid: ino.0,
            name: Filename3(name),
            cookie,
        }) {
            all_fit = false;
            break;
        }
    }
    if b.is_empty() {
        return Res3::Fail(
            NfsStat3::TooSmall,
            ReaddirResFail {
                dir_attributes: p.dir_attr.as_ref().map(fattr),
            },
        );
    }
    Res3::Ok(b.finish(all_fit && p.eof))
}

async fn readdirplus(shared: &Shared, ctx: &CallCtx, a: &ReaddirplusArgs) -> ReaddirplusRes {
    let max = ((a.dircount as usize) / 16).clamp(8, 1024);
    let p = match dir_page(shared, ctx, &a.dir, a.cookie, a.cookieverf, max).await {
        Ok(p) => p,
        Err((st, da)) => {
            return Res3::Fail(
                st,
                ReaddirplusResFail {
                    dir_attributes: da.as_ref().map(fattr),
                },
            );
        }
    };
    let mut b = ReaddirplusBuilder::new(
        p.dir_attr.as_ref().map(fattr),
        p.verifier.to_be_bytes(),
        a.dircount,
        a.maxcount,
    );
    let mut all_fit = true;
    for (name, ino, cookie) in p.entries {
        // An entry removed since the page was read is sent without attributes.
        let (attrs, fh) = match p.t.fs.attr_and_handle(ino).await {
            Ok((attr, h)) => (Some(fattr(&attr)), Some(handle_bytes(h))),
            Err(_) => (None, None),
        };
        let e = Entryplus3 {
            fileid: ino.0,
            name: Filename3(name),
            cookie,
            name_attributes: attrs,
            name_handle: fh,
        };
        if !b.try_push(e) {
            all_fit = false;
            break;
        }
    }
    if b.is_empty() {
        return Res3::Fail(
            NfsStat3::TooSmall,
            ReaddirplusResFail {
                dir_attributes: p.dir_attr.as_ref().map(fattr),
            },
        );
    }
    Res3::Ok(b.finish(all_fit && p.eof))
}

async fn fsstat(shared: &Shared, ctx: &CallCtx, a: &FsstatArgs) -> FsstatRes {
    let t = match shared.target(ctx, &a.fsroot).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                FsstatResFail {
                    obj_attributes: None,
                },
            );
        }
    };
    let attr = attr_opt(&t.fs, t.ino).await;
    match t.fs.statfs().await {
        Ok(s) => Res3::Ok(FsstatResOk {
            obj_attributes: attr.as_ref().map(fattr),
            tbytes: s.total_bytes,
            fbytes: s.free_bytes,
            abytes: s.avail_bytes,
            tfiles: s.total_files,
            ffiles: s.free_files,
            afiles: s.free_files,
            invarsec: 0,
        }),
        Err(e) => Res3::Fail(
            NfsStat3::from(&e),
            FsstatResFail {
                obj_attributes: attr.as_ref().map(fattr),
            },
        ),
    }
}

async fn fsinfo(shared: &Shared, ctx: &CallCtx, a: &FsinfoArgs) -> FsinfoRes {
    let t = match shared.target(ctx, &a.fsroot).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                FsinfoResFail {
                    obj_attributes: None,
                },
            );
        }
    };
    let attr = attr_opt(&t.fs, t.ino).await;
    Res3::Ok(FsinfoResOk {
        obj_attributes: attr.as_ref().map(fattr),
        rtmax: MAX_IO,
        rtpref: MAX_IO,
        rtmult: 4096,
        wtmax: MAX_IO,
        wtpref: MAX_IO,
        wtmult: 4096,
        dtpref: 64 * 1024,
        maxfilesize: dittofs_vfs::MAX_FILE_SIZE,
        time_delta: NfsTime3 {
            seconds: 0,
            nseconds: 1,
        },
        properties: FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME,
    })
}

async fn pathconf(shared: &Shared, ctx: &CallCtx, a: &PathconfArgs) -> PathconfRes {
    let t = match shared.target(ctx, &a.object).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                PathconfResFail {
                    obj_attributes: None,
                },
            );
        }
    };
    let attr = attr_opt(&t.fs, t.ino).await;
    Res3::Ok(PathconfResOk {
        obj_attributes: attr.as_ref().map(fattr),
        linkmax: dittofs_vfs::LINK_MAX,
        name_max: dittofs_vfs::NAME_MAX as u32,
        no_trunc: true,
        chown_restricted: true,
        case_insensitive: false,
        case_preserving: true,
    })
}

async fn commit(shared: &Shared, ctx: &CallCtx, a: &CommitArgs) -> CommitRes {
    let t = match shared.target(ctx, &a.file).await {
        Ok(t) => t,
        Err(e) => {
            return Res3::Fail(
                NfsStat3::from(&e),
                CommitResFail {
                    file_wcc: WccData::default(),
                },
            );
        }
    };
    let before = attr_opt(&t.fs, t.ino).await;
    match t.fs.commit_writes(t.ino).await {
        Ok(after) => Res3::Ok(CommitResOk {
            file_wcc: wcc(before.as_ref(), Some(&after)),
            verf: shared.write_verifier,
        }),
        Err(e) => Res3::Fail(
            NfsStat3::from(&e),
            CommitResFail {
                file_wcc: wcc(before.as_ref(), before.as_ref()),
            },
        ),
    }
}
