//! Extended attribute operations of NFSv4.2 (RFC 8276): GETXATTR, SETXATTR, LISTXATTRS,
//! REMOVEXATTR on the current file handle, over the core's user attributes
//! (`Fs::get_xattr` and friends: names without the `user.` prefix, which the client
//! strips; permissions, limits and the transaction are the core's).
//!
//! - Statuses: a missing attribute NFS4ERR_NOXATTR, a value over the core's 64 KiB
//!   NFS4ERR_XATTR2BIG, SETXATTR4_CREATE of an existing one NFS4ERR_EXIST, a symlink or
//!   special file NFS4ERR_PERM for changes (NOXATTR for GETXATTR), the rest through
//!   the core's error mapping (`nfs4::status`).
//! - SETXATTR and REMOVEXATTR return the object's `change_info4`, atomic: the core reads
//!   both values under the lock its one transaction holds.
//! - LISTXATTRS: `maxcount` bounds the whole LISTXATTRS4resok (cookie, names, eof, as
//!   the Linux client counts it); names are added while they fit, a budget that cannot
//!   hold the next name is NFS4ERR_TOOSMALL; the cookie is the core's (the number of
//!   names already returned), a cookie no list can reach NFS4ERR_BAD_COOKIE.
//! - The pseudo file system has no extended attributes (`xattr_support` false there):
//!   NFS4ERR_NOTSUPP.
//! - Only minor version 2 has these operations (4.1: NOTSUPP, 4.0: OP_ILLEGAL, see
//!   `Op4::in_minor_version`).

use super::{Compound, OpResult, ok};
use crate::nfs4::Nfs4Status;
use crate::nfs4::ns::ChangeInfo4;
use crate::nfs4::types::{List, Opaque4};
use crate::nfs4::xattr::{
    LIST_RES_FIXED, ListxattrsArgs, ListxattrsResOk, SetxattrArgs, SetxattrOption4, XattrChangeRes,
    XattrValue4, list_name_size,
};
use dittofs_vfs::{XattrChange, XattrSetMode};

fn change_res(ch: XattrChange) -> XattrChangeRes {
    XattrChangeRes {
        info: ChangeInfo4 {
            atomic: true,
            before: ch.before,
            after: ch.after,
        },
    }
}

pub(super) async fn getxattr(c: &mut Compound<'_>, name: &[u8]) -> OpResult {
    let f = c.file(Nfs4Status::NotSupp)?;
    let v = f.fs.get_xattr(&f.cred, f.ino, name).await?;
    ok(&XattrValue4(v))
}

pub(super) async fn setxattr(c: &mut Compound<'_>, a: &SetxattrArgs) -> OpResult {
    let f = c.file(Nfs4Status::NotSupp)?;
    let mode = match a.option {
        SetxattrOption4::Either => XattrSetMode::Either,
        SetxattrOption4::Create => XattrSetMode::Create,
        SetxattrOption4::Replace => XattrSetMode::Replace,
    };
    let ch =
        f.fs.set_xattr(&f.cred, f.ino, &a.key.0, &a.value.0, mode)
            .await?;
    ok(&change_res(ch))
}

pub(super) async fn listxattrs(c: &mut Compound<'_>, a: &ListxattrsArgs) -> OpResult {
    let f = c.file(Nfs4Status::NotSupp)?;
    let mut left = (a.maxcount as usize)
        .checked_sub(LIST_RES_FIXED)
        .ok_or(Nfs4Status::TooSmall)?;
    let page =
        f.fs.list_xattrs(&f.cred, f.ino, a.cookie, |name| {
            let size = list_name_size(name);
            let fits = size <= left;
            if fits {
                left -= size;
            }
            fits
        })
        .await?;
    ok(&ListxattrsResOk {
        cookie: page.cookie,
        names: List(page.names.into_iter().map(Opaque4).collect()),
        eof: page.eof,
    })
}

pub(super) async fn removexattr(c: &mut Compound<'_>, name: &[u8]) -> OpResult {
    let f = c.file(Nfs4Status::NotSupp)?;
    let ch = f.fs.remove_xattr(&f.cred, f.ino, name).await?;
    ok(&change_res(ch))
}
