//! File handle and lookup operations (RFC 8881 sections 18.19-18.22, 18.27, 18.29,
//! 18.14, 18.15, 18.45): PUTROOTFH, PUTPUBFH (the same root), PUTFH, GETFH, SAVEFH,
//! RESTOREFH, LOOKUP, LOOKUPP, SECINFO, SECINFO_NO_NAME.
//!
//! Crossing from a pseudo directory into a share ([`enter`]) applies the share's export
//! policy exactly as every NFSv3 call does (`proc3::target`): a client not allowed gets
//! NFS4ERR_ACCESS, an unprivileged port on a secure share NFS4ERR_PERM, and the caller's
//! AUTH_SYS identity is squashed and given its access level. A PUTFH of a share's
//! handle goes through the same check. SECINFO lists AUTH_SYS and, as the RFC asks,
//! leaves no current file handle.

use super::pseudo::{self, Child};
use super::{Compound, Cur, FileRef, OpResult, ok};
use crate::call::CallCtx;
use crate::export::Refusal;
use crate::nfs4::Nfs4Status;
use crate::nfs4::fh::{AUTH_SYS, SecinfoResOk};
use crate::nfs4::types::Fh4;
use crate::shared::Shared;
use dittofs_types::Ino;
use dittofs_vfs::Fs;
use std::sync::Arc;

/// `ino` of share `fs` as the caller may use it (export policy applied).
pub(super) fn file_ref(
    shared: &Shared,
    ctx: &CallCtx,
    fs: Arc<Fs>,
    ino: Ino,
) -> Result<FileRef, Nfs4Status> {
    let policy = shared.export(fs.share_id()).ok_or(Nfs4Status::Stale)?;
    match shared.admit(&policy, ctx.client, fs.name(), "NFSv4 call") {
        Ok(()) => {}
        Err(Refusal::NotAllowed) => return Err(Nfs4Status::Access),
        Err(Refusal::InsecurePort) => return Err(Nfs4Status::Perm),
    }
    let cred = policy.caller(&ctx.auth).map_err(|_| Nfs4Status::Access)?;
    Ok(FileRef { fs, ino, cred })
}

/// The root of share `fs`, entered from the pseudo file system.
fn enter(c: &Compound<'_>, fs: Arc<Fs>) -> Result<Cur, Nfs4Status> {
    file_ref(c.shared, c.ctx, fs, Ino::ROOT).map(Cur::File)
}

/// The root of the server's namespace: the share exported at `/`, else the pseudo root.
fn root(c: &Compound<'_>) -> Result<Cur, Nfs4Status> {
    match pseudo::share_at(&c.shared.registry, b"/") {
        Some(fs) => enter(c, fs),
        None => Ok(Cur::Pseudo(b"/".to_vec())),
    }
}

pub(super) fn putrootfh(c: &mut Compound<'_>) -> OpResult {
    c.cur = Some(root(c)?);
    Ok(Vec::new())
}

pub(super) async fn putfh(c: &mut Compound<'_>, fh: &Fh4) -> OpResult {
    if let Some(path) = pseudo::parse_handle(&fh.0) {
        if !pseudo::is_node(&c.shared.registry, &path) {
            return Err(Nfs4Status::Stale.into());
        }
        c.cur = Some(Cur::Pseudo(path));
        return Ok(Vec::new());
    }
    let (fs, ino) = c.shared.registry.resolve(&fh.0).await?;
    c.cur = Some(Cur::File(file_ref(c.shared, c.ctx, fs, ino)?));
    Ok(Vec::new())
}

/// The handle of a current file handle.
pub(super) async fn handle_of(cur: &Cur) -> Result<Fh4, Nfs4Status> {
    match cur {
        Cur::Pseudo(p) => pseudo::handle(p).ok_or(Nfs4Status::NameTooLong),
        Cur::File(f) => {
            let h = f.fs.handle_of(f.ino).await?;
            Ok(Fh4(h.encode().to_vec()))
        }
    }
}

pub(super) async fn getfh(c: &mut Compound<'_>) -> OpResult {
    ok(&handle_of(c.cur()?).await?)
}

pub(super) fn savefh(c: &mut Compound<'_>) -> OpResult {
    c.saved = Some(c.cur()?.clone());
    Ok(Vec::new())
}

pub(super) fn restorefh(c: &mut Compound<'_>) -> OpResult {
    c.cur = Some(c.saved.clone().ok_or(Nfs4Status::RestoreFh)?);
    Ok(Vec::new())
}

/// Checks a `component4` (RFC 8881 section 14.5): empty is INVAL, "." and ".." are
/// BADNAME, a "/" or NUL is BADCHAR, more than 255 bytes NAMETOOLONG.
pub(super) fn check_name(name: &[u8]) -> Result<(), Nfs4Status> {
    match name {
        [] => Err(Nfs4Status::Inval),
        b"." | b".." => Err(Nfs4Status::BadName),
        n if n.iter().any(|&b| b == b'/' || b == 0) => Err(Nfs4Status::BadChar),
        n if n.len() > 255 => Err(Nfs4Status::NameTooLong),
        _ => Ok(()),
    }
}

/// What `name` in the current directory is.
async fn lookup_in(c: &Compound<'_>, name: &[u8]) -> Result<Cur, Nfs4Status> {
    check_name(name)?;
    match c.cur()? {
        Cur::Pseudo(path) => match pseudo::lookup(&c.shared.registry, path, name) {
            Some(Child::Share(fs)) => enter(c, fs),
            Some(Child::Pseudo(p)) => Ok(Cur::Pseudo(p)),
            None => Err(Nfs4Status::NoEnt),
        },
        Cur::File(f) => {
            let a = f.fs.lookup(&f.cred, f.ino, name).await?;
            Ok(Cur::File(FileRef {
                ino: a.ino,
                ..f.clone()
            }))
        }
    }
}

pub(super) async fn lookup(c: &mut Compound<'_>, name: &[u8]) -> OpResult {
    c.cur = Some(lookup_in(c, name).await?);
    Ok(Vec::new())
}

pub(super) async fn lookupp(c: &mut Compound<'_>) -> OpResult {
    let next = match c.cur()? {
        Cur::Pseudo(p) => Cur::Pseudo(pseudo::parent(p).ok_or(Nfs4Status::NoEnt)?),
        Cur::File(f) if f.ino == Ino::ROOT => {
            let path = pseudo::export_path(&f.fs);
            Cur::Pseudo(pseudo::parent(&path).ok_or(Nfs4Status::NoEnt)?)
        }
        Cur::File(f) => {
            let a = f.fs.lookup(&f.cred, f.ino, b"..").await?;
            Cur::File(FileRef {
                ino: a.ino,
                ..f.clone()
            })
        }
    };
    c.cur = Some(next);
    Ok(Vec::new())
}

/// SECINFO (with a name, which must exist) and SECINFO_NO_NAME (without).
pub(super) async fn secinfo(c: &mut Compound<'_>, name: Option<&[u8]>) -> OpResult {
    if let Some(n) = name {
        lookup_in(c, n).await?;
    } else {
        c.cur()?;
    }
    c.cur = None;
    ok(&SecinfoResOk(vec![AUTH_SYS]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_the_rfc_says() {
        assert_eq!(check_name(b""), Err(Nfs4Status::Inval));
        assert_eq!(check_name(b".."), Err(Nfs4Status::BadName));
        assert_eq!(check_name(b"a/b"), Err(Nfs4Status::BadChar));
        assert_eq!(check_name(&[b'x'; 256]), Err(Nfs4Status::NameTooLong));
        assert_eq!(check_name(b"ok"), Ok(()));
    }
}
