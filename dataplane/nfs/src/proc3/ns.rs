//! NFSv3 namespace procedures: LOOKUP, READLINK, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE,
//! RMDIR, RENAME, LINK (RFC 1813 sections 3.3.3, 3.3.5, 3.3.8-3.3.15; codecs in
//! `nfs3::ns`). Every change of a directory answers with that directory's `wcc_data`
//! (RENAME with both); RENAME and LINK across shares are XDEV.

use super::{Handled, Target, handle_bytes, resolve};
use crate::call::CallCtx;
use crate::conv::{fattr, sattr};
use crate::nfs3::*;
use crate::shared::Shared;
use dittofs_types::DeviceId;
use dittofs_vfs::state::BreakCause;
use dittofs_vfs::{Attr, CreateMode, FsError, SetAttr, SpecialKind};

pub(super) async fn lookup(shared: &Shared, ctx: &CallCtx, a: &LookupArgs) -> Handled<LookupRes> {
    let t = resolve(shared, ctx, &a.what.dir).await?;
    let dir_attr = t.attr().await;
    let found = match t.fs.lookup(&t.cred, t.ino, &a.what.name.0).await {
        Ok(attr) => t.fs.attr_and_handle(attr.ino).await,
        Err(e) => Err(e),
    };
    Ok(match found {
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
    })
}

pub(super) async fn readlink(
    shared: &Shared,
    ctx: &CallCtx,
    a: &ReadlinkArgs,
) -> Handled<ReadlinkRes> {
    let t = resolve(shared, ctx, &a.symlink).await?;
    let attr = t.attr().await;
    Ok(match t.fs.readlink(&t.cred, t.ino).await {
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
    })
}

/// What CREATE, MKDIR, SYMLINK and MKNOD make.
enum Make {
    File(CreateMode),
    Dir,
    Symlink(Vec<u8>),
    Special(SpecialKind),
}

pub(super) async fn create(shared: &Shared, ctx: &CallCtx, a: &CreateArgs) -> Handled<CreateRes> {
    let (how, sa) = match &a.how {
        CreateHow3::Unchecked(s) => (CreateMode::Unchecked, sattr(s)),
        CreateHow3::Guarded(s) => (CreateMode::Guarded, sattr(s)),
        CreateHow3::Exclusive(v) => (CreateMode::Exclusive(*v), SetAttr::default()),
    };
    make(shared, ctx, &a.where_, Make::File(how), &sa).await
}

pub(super) async fn mkdir(shared: &Shared, ctx: &CallCtx, a: &MkdirArgs) -> Handled<MkdirRes> {
    make(shared, ctx, &a.where_, Make::Dir, &sattr(&a.attributes)).await
}

pub(super) async fn symlink(
    shared: &Shared,
    ctx: &CallCtx,
    a: &SymlinkArgs,
) -> Handled<SymlinkRes> {
    let target = Make::Symlink(a.symlink.symlink_data.0.clone());
    let sa = sattr(&a.symlink.symlink_attributes);
    make(shared, ctx, &a.where_, target, &sa).await
}

pub(super) async fn mknod(shared: &Shared, ctx: &CallCtx, a: &MknodArgs) -> Handled<MknodRes> {
    let dev = |d: &DeviceData3| DeviceId {
        major: d.spec.specdata1,
        minor: d.spec.specdata2,
    };
    let (kind, sa) = match &a.what {
        MknodData3::Chr(d) => (SpecialKind::Char(dev(d)), sattr(&d.dev_attributes)),
        MknodData3::Blk(d) => (SpecialKind::Block(dev(d)), sattr(&d.dev_attributes)),
        MknodData3::Sock(s) => (SpecialKind::Socket, sattr(s)),
        MknodData3::Fifo(s) => (SpecialKind::Fifo, sattr(s)),
        MknodData3::Other(_) => {
            return Err(Res3::Fail(NfsStat3::BadType, CreateResFail::default()));
        }
    };
    make(shared, ctx, &a.where_, Make::Special(kind), &sa).await
}

async fn make(
    shared: &Shared,
    ctx: &CallCtx,
    at: &DirOpArgs3,
    what: Make,
    sa: &SetAttr,
) -> Handled<CreateRes> {
    let t = resolve(shared, ctx, &at.dir).await?;
    let (res, dir_wcc) = t.around(make_in(&t, &at.name.0, what, sa)).await;
    let made = match res {
        Ok(attr) => t.fs.attr_and_handle(attr.ino).await,
        Err(e) => Err(e),
    };
    Ok(match made {
        Ok((attr, h)) => Res3::Ok(CreateResOk {
            obj: Some(handle_bytes(h)),
            obj_attributes: Some(fattr(&attr)),
            dir_wcc,
        }),
        Err(e) => Res3::Fail(NfsStat3::from(&e), CreateResFail { dir_wcc }),
    })
}

async fn make_in(t: &Target, name: &[u8], what: Make, sa: &SetAttr) -> Result<Attr, FsError> {
    match what {
        Make::File(how) => t.fs.create(&t.cred, t.ino, name, how, sa).await,
        Make::Dir => t.fs.mkdir(&t.cred, t.ino, name, sa).await,
        Make::Symlink(target) => t.fs.symlink(&t.cred, t.ino, name, &target, sa).await,
        Make::Special(k) => t.fs.mknod(&t.cred, t.ino, name, k, sa).await,
    }
}

/// REMOVE (`dir` false) or RMDIR.
pub(super) async fn remove(
    shared: &Shared,
    ctx: &CallCtx,
    at: &DirOpArgs3,
    dir: bool,
) -> Handled<RemoveRes> {
    let t = resolve(shared, ctx, &at.dir).await?;
    let name = &at.name.0;
    if let Ok(victim) = t.fs.lookup(&t.cred, t.ino, name).await {
        super::recall_delegations(shared, ctx, &t, victim.ino, BreakCause::Delete)?;
    }
    let (res, dir_wcc) = if dir {
        t.around(t.fs.rmdir(&t.cred, t.ino, name)).await
    } else {
        t.around(t.fs.remove(&t.cred, t.ino, name)).await
    };
    Ok(match res {
        Ok(()) => Res3::Ok(RemoveResOk { dir_wcc }),
        Err(e) => Res3::Fail(NfsStat3::from(&e), CreateResFail { dir_wcc }),
    })
}

/// The two targets of RENAME or LINK, resolved and on one share (else XDEV).
async fn same_share<T, F: Default>(
    shared: &Shared,
    ctx: &CallCtx,
    a: &NfsFh3,
    b: &NfsFh3,
) -> Result<(Target, Target), Res3<T, F>> {
    let first = resolve(shared, ctx, a).await?;
    let second = resolve(shared, ctx, b).await?;
    if first.fs.share_id() != second.fs.share_id() {
        return Err(Res3::Fail(NfsStat3::XDev, F::default()));
    }
    Ok((first, second))
}

pub(super) async fn rename(shared: &Shared, ctx: &CallCtx, a: &RenameArgs) -> Handled<RenameRes> {
    let (from, to) = same_share(shared, ctx, &a.from.dir, &a.to.dir).await?;
    if let Ok(moved) = from.fs.lookup(&from.cred, from.ino, &a.from.name.0).await {
        super::recall_delegations(shared, ctx, &from, moved.ino, BreakCause::Rename)?;
    }
    if let Ok(over) = to.fs.lookup(&to.cred, to.ino, &a.to.name.0).await {
        super::recall_delegations(shared, ctx, &to, over.ino, BreakCause::Delete)?;
    }
    let fb = from.attr().await;
    let (res, todir_wcc) = to
        .around(
            from.fs
                .rename(&from.cred, from.ino, &a.from.name.0, to.ino, &a.to.name.0),
        )
        .await;
    let fa = from.attr().await;
    let fromdir_wcc = crate::conv::wcc(fb.as_ref(), fa.as_ref());
    Ok(match res {
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
    })
}

pub(super) async fn link(shared: &Shared, ctx: &CallCtx, a: &LinkArgs) -> Handled<LinkRes> {
    let (file, dir) = same_share(shared, ctx, &a.file, &a.link.dir).await?;
    let (res, linkdir_wcc) = dir
        .around(dir.fs.link(&dir.cred, file.ino, dir.ino, &a.link.name.0))
        .await;
    let file_attributes = file.attr().await.as_ref().map(fattr);
    Ok(match res {
        Ok(_) => Res3::Ok(LinkResOk {
            file_attributes,
            linkdir_wcc,
        }),
        Err(e) => Res3::Fail(
            NfsStat3::from(&e),
            LinkResFail {
                file_attributes,
                linkdir_wcc,
            },
        ),
    })
}
