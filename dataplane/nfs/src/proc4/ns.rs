//! Namespace operations (RFC 8881 sections 18.4, 18.25, 18.26, 18.9, 18.24): CREATE
//! (directories, symlinks, devices, FIFOs and sockets; regular files are OPEN's),
//! REMOVE (files and empty directories alike), RENAME (saved handle = source
//! directory, current = target directory), LINK (saved = the object, current = the
//! directory), READLINK.
//!
//! The pseudo file system is read-only: a change in it is NFS4ERR_ROFS. Two handles of
//! different shares in RENAME or LINK are NFS4ERR_XDEV. The `change_info4` of each
//! directory is its change attribute read before and after the operation (not atomic).
//! REMOVE and RENAME first recall other clients' delegations on the files they unlink
//! or move (NFS4ERR_DELAY until returned: `deleg`).

use super::attr::to_setattr;
use super::fh::check_name;
use super::recall::break_for;
use super::{Compound, Cur, FileRef, OpResult, ok};
use crate::nfs4::Nfs4Status;
use crate::nfs4::fattr::SetAttrs4;
use crate::nfs4::ns::{ChangeInfo4, CreateArgs, CreateResOk, CreateType4, RenameArgs, RenameResOk};
use crate::nfs4::types::Opaque4;
use dittofs_types::{DeviceId, FileType};
use dittofs_vfs::state::BreakCause;
use dittofs_vfs::{Attr, FsResult, SpecialKind};
use std::sync::Arc;

/// Runs `op` on directory `d` and returns its result with the directory's change info.
async fn around<R>(
    d: &FileRef,
    op: impl Future<Output = FsResult<R>>,
) -> Result<(R, ChangeInfo4), Nfs4Status> {
    let before = d.fs.getattr(d.ino).await?.change;
    let r = op.await?;
    let after = d.fs.getattr(d.ino).await?.change;
    Ok((
        r,
        ChangeInfo4 {
            atomic: false,
            before,
            after,
        },
    ))
}

fn special(t: &CreateType4) -> Option<SpecialKind> {
    let dev = |major, minor| DeviceId { major, minor };
    match *t {
        CreateType4::Blk(a, b) => Some(SpecialKind::Block(dev(a, b))),
        CreateType4::Chr(a, b) => Some(SpecialKind::Char(dev(a, b))),
        CreateType4::Sock => Some(SpecialKind::Socket),
        CreateType4::Fifo => Some(SpecialKind::Fifo),
        _ => None,
    }
}

pub(super) async fn create(c: &mut Compound<'_>, a: &CreateArgs) -> OpResult {
    let d = c.file(Nfs4Status::RoFs)?;
    check_name(&a.objname.0)?;
    let sa = to_setattr(&SetAttrs4::from_fattr(&a.createattrs)?, &c.shared.owners())?;
    let name = &a.objname.0;
    let (fs, cred) = (Arc::clone(&d.fs), d.cred.clone());
    let made: Result<(Attr, ChangeInfo4), Nfs4Status> = match &a.objtype {
        CreateType4::Dir => around(&d, fs.mkdir(&cred, d.ino, name, &sa)).await,
        CreateType4::Link(target) => {
            around(&d, fs.symlink(&cred, d.ino, name, &target.0, &sa)).await
        }
        CreateType4::Other(_) => Err(Nfs4Status::BadType),
        t => match special(t) {
            Some(k) => around(&d, fs.mknod(&cred, d.ino, name, k, &sa)).await,
            None => Err(Nfs4Status::BadType),
        },
    };
    let (at, cinfo) = made?;
    c.cur = Some(Cur::File(FileRef { ino: at.ino, ..d }));
    ok(&CreateResOk {
        cinfo,
        attrset: a.createattrs.attrmask.clone(),
    })
}

pub(super) async fn remove(c: &mut Compound<'_>, name: &[u8]) -> OpResult {
    let d = c.file(Nfs4Status::RoFs)?;
    check_name(name)?;
    let victim = d.fs.lookup(&d.cred, d.ino, name).await?;
    break_for(c, d.fs.share_id(), victim.ino, BreakCause::Delete)?;
    let (fs, cred) = (Arc::clone(&d.fs), d.cred.clone());
    let ((), cinfo) = if victim.kind == FileType::Directory {
        around(&d, fs.rmdir(&cred, d.ino, name)).await?
    } else {
        around(&d, fs.remove(&cred, d.ino, name)).await?
    };
    ok(&cinfo)
}

/// The saved and the current handle as objects of the same share.
fn saved_and_current(c: &Compound<'_>) -> Result<(FileRef, FileRef), Nfs4Status> {
    let saved = match c.saved.as_ref().ok_or(Nfs4Status::NoFileHandle)? {
        Cur::File(f) => f.clone(),
        Cur::Pseudo(_) => return Err(Nfs4Status::RoFs),
    };
    let cur = c.file(Nfs4Status::RoFs)?;
    if saved.fs.share_id() != cur.fs.share_id() {
        return Err(Nfs4Status::XDev);
    }
    Ok((saved, cur))
}

pub(super) async fn rename(c: &mut Compound<'_>, a: &RenameArgs) -> OpResult {
    let (from, to) = saved_and_current(c)?;
    check_name(&a.oldname.0)?;
    check_name(&a.newname.0)?;
    let share = from.fs.share_id();
    let moved = from.fs.lookup(&from.cred, from.ino, &a.oldname.0).await?;
    break_for(c, share, moved.ino, BreakCause::Rename)?;
    if let Ok(over) = to.fs.lookup(&to.cred, to.ino, &a.newname.0).await {
        break_for(c, share, over.ino, BreakCause::Delete)?;
    }
    let from_before = from.fs.getattr(from.ino).await?.change;
    let (fs, cred) = (Arc::clone(&to.fs), to.cred.clone());
    let op = fs.rename(&cred, from.ino, &a.oldname.0, to.ino, &a.newname.0);
    let ((), target_cinfo) = around(&to, op).await?;
    let from_after = from.fs.getattr(from.ino).await?.change;
    ok(&RenameResOk {
        source_cinfo: ChangeInfo4 {
            atomic: false,
            before: from_before,
            after: from_after,
        },
        target_cinfo,
    })
}

pub(super) async fn link(c: &mut Compound<'_>, name: &[u8]) -> OpResult {
    let (obj, dir) = saved_and_current(c)?;
    check_name(name)?;
    let (fs, cred) = (Arc::clone(&dir.fs), dir.cred.clone());
    let (_, cinfo) = around(&dir, fs.link(&cred, obj.ino, dir.ino, name)).await?;
    ok(&cinfo)
}

pub(super) async fn readlink(c: &mut Compound<'_>) -> OpResult {
    let f = c.file(Nfs4Status::Inval)?;
    let target = f.fs.readlink(&f.cred, f.ino).await?;
    ok(&Opaque4(target))
}
