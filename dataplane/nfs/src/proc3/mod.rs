//! NFSv3 procedures over the filesystem core (RFC 1813 section 3.3). Each handler
//! resolves handles through the share registry, applies the share's export policy
//! (client address, secure port, squashing: [`target`]), calls one core operation and
//! builds the reply with weak cache consistency data wherever RFC 1813 has it (section
//! 2.6, `wcc_data`).
//!
//! The handlers are grouped by procedure family, one file per codec file of
//! [`crate::nfs3`]: `attr` (GETATTR, SETATTR, ACCESS), `ns` (LOOKUP, READLINK, CREATE,
//! MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK), `io` (READ, WRITE, COMMIT),
//! `dir` (READDIR, READDIRPLUS) and `fs` (FSSTAT, FSINFO, PATHCONF). A handle that does
//! not resolve fails every procedure the same way ([`resolve`]): the status of the
//! error and an empty `resfail` body (no attributes, empty wcc).
//!
//! WRITE, SETATTR of the size, REMOVE and RENAME first recall NFSv4 delegations of
//! the file, READ, GETATTR and any other SETATTR its NFSv4 write delegation (the
//! holder may cache data and attributes the server has not seen:
//! [`recall_delegations`]): NFS3ERR_JUKEBOX until they are returned or revoked.
//! Attributes in other replies (LOOKUP, ACCESS, READDIRPLUS, wcc data) do not recall:
//! they are the server's.

mod attr;
mod dir;
mod fs;
mod io;
mod ns;

use crate::call::{CallCtx, Outcome, garbage_args};
use crate::export::Refusal;
use crate::nfs3::*;
use crate::shared::Shared;
use crate::xdr::{Decoder, XdrDecode, XdrEncode};
use bytes::Bytes;
use dittofs_types::Ino;
use dittofs_vfs::state::{BreakCause, ClientId, Owner, Protocol};
use dittofs_vfs::{Attr, Credentials, Fs, FsError};
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

impl Target {
    /// The target's attributes, if it can still be read (for `post_op_attr`/wcc).
    async fn attr(&self) -> Option<Attr> {
        attr_opt(&self.fs, self.ino).await
    }

    /// Runs `op` (a change of this directory or file) and returns its result with the
    /// target's `wcc_data`: attributes before and after.
    async fn around<R>(&self, op: impl Future<Output = R>) -> (R, WccData) {
        let before = self.attr().await;
        let r = op.await;
        (r, self.wcc_since(before).await)
    }

    /// The `wcc_data` of a change: attributes `before` it and as they are now.
    async fn wcc_since(&self, before: Option<Attr>) -> WccData {
        let after = self.attr().await;
        crate::conv::wcc(before.as_ref(), after.as_ref())
    }
}

/// Resolves a handle and applies the export policy of its share: the client address
/// and source port (knfsd's statuses: a client not allowed gets ACCES, an unprivileged
/// port on a secure share PERM: the call, not the file, is refused), then squashing.
async fn target(shared: &Shared, ctx: &CallCtx, fh: &NfsFh3) -> Result<Target, FsError> {
    let (fs, ino) = shared.registry.resolve(fh.as_bytes()).await?;
    let policy = shared.export(fs.share_id()).ok_or(FsError::Stale)?;
    match shared.admit(&policy, ctx.client, fs.name(), "NFS call") {
        Ok(()) => {}
        Err(Refusal::NotAllowed) => return Err(FsError::Access),
        Err(Refusal::InsecurePort) => return Err(FsError::Perm),
    }
    // A disabled user is refused like a client that is not allowed.
    let cred = policy.caller(&ctx.auth).map_err(|_| FsError::Access)?;
    Ok(Target { fs, ino, cred })
}

/// [`target`], or the procedure's failure reply: the error's status and an empty
/// `resfail` body (no attributes, empty wcc), as every NFSv3 procedure answers a handle
/// it cannot use.
async fn resolve<T, F: Default>(
    shared: &Shared,
    ctx: &CallCtx,
    fh: &NfsFh3,
) -> Result<Target, Res3<T, F>> {
    target(shared, ctx, fh)
        .await
        .map_err(|e| Res3::Fail(NfsStat3::from(&e), F::default()))
}

/// Recalls the NFSv4 delegations on `ino` that an NFSv3 access (`cause`) conflicts
/// with; while they are being recalled the procedure fails with NFS3ERR_JUKEBOX (the
/// client retries) and an empty `resfail` body.
fn recall_delegations<T, F: Default>(
    shared: &Shared,
    ctx: &CallCtx,
    t: &Target,
    ino: Ino,
    cause: BreakCause,
) -> Result<(), Res3<T, F>> {
    recall(shared, ctx, t, ino, cause).map_err(|st| Res3::Fail(st, F::default()))
}

/// [`recall_delegations`] as a status: NFS3ERR_JUKEBOX while a recall is outstanding.
fn recall(
    shared: &Shared,
    ctx: &CallCtx,
    t: &Target,
    ino: Ino,
    cause: BreakCause,
) -> Result<(), NfsStat3> {
    let by = Owner::new(
        Protocol::Nlm,
        ClientId::Name(Arc::from("nfsv3")),
        ctx.client.ip().to_string().as_bytes(),
    );
    shared
        .nlm
        .manager(t.fs.share_id())
        .break_leases(ino, &by, cause)
        .map_err(|_| NfsStat3::Jukebox)
}

fn handle_bytes(h: dittofs_vfs::FileHandle) -> NfsFh3 {
    NfsFh3(h.encode().to_vec())
}

async fn attr_opt(fs: &Fs, ino: Ino) -> Option<Attr> {
    fs.getattr(ino).await.ok()
}

/// What a procedure handler returns: its result either way; `Err` when it ended early
/// (a handle it cannot use, arguments it refuses), so that `?` can end it.
type Handled<R> = Result<R, R>;

/// The RPC reply of an NFSv3 result, counted as an error unless NFS3_OK.
fn outcome<T: XdrEncode, F: XdrEncode>(xid: u32, r: Handled<Res3<T, F>>) -> Outcome {
    let (Ok(r) | Err(r)) = r;
    status_outcome(xid, r.status(), &r)
}

fn status_outcome(xid: u32, st: NfsStat3, res: &impl XdrEncode) -> Outcome {
    let error = (st != NfsStat3::Ok).then(|| stat_name(st));
    Outcome::reply(xid, res, error)
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
    xid: u32,
    p: Nfs3Proc,
    args: Bytes,
) -> Outcome {
    let mut dec = Decoder::from_bytes(&args);
    let parsed = match Nfs3Args::decode(p, &mut dec) {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(client = %ctx.client, proc = proc_name(p), error = %e, "undecodable arguments");
            return garbage_args(xid);
        }
    };
    let (s, c) = (shared, ctx);
    match parsed {
        Nfs3Args::Null => Outcome::ok(xid, &()),
        Nfs3Args::Getattr(a) => outcome(xid, attr::getattr(s, c, &a).await),
        Nfs3Args::Setattr(a) => outcome(xid, attr::setattr(s, c, &a).await),
        Nfs3Args::Access(a) => outcome(xid, attr::access(s, c, &a).await),
        Nfs3Args::Lookup(a) => outcome(xid, ns::lookup(s, c, &a).await),
        Nfs3Args::Readlink(a) => outcome(xid, ns::readlink(s, c, &a).await),
        Nfs3Args::Create(a) => outcome(xid, ns::create(s, c, &a).await),
        Nfs3Args::Mkdir(a) => outcome(xid, ns::mkdir(s, c, &a).await),
        Nfs3Args::Symlink(a) => outcome(xid, ns::symlink(s, c, &a).await),
        Nfs3Args::Mknod(a) => outcome(xid, ns::mknod(s, c, &a).await),
        Nfs3Args::Remove(a) => outcome(xid, ns::remove(s, c, &a.object, false).await),
        Nfs3Args::Rmdir(a) => outcome(xid, ns::remove(s, c, &a.object, true).await),
        Nfs3Args::Rename(a) => outcome(xid, ns::rename(s, c, &a).await),
        Nfs3Args::Link(a) => outcome(xid, ns::link(s, c, &a).await),
        Nfs3Args::Read(a) => io::read(s, c, xid, &a).await,
        Nfs3Args::Write(a) => outcome(xid, io::write(s, c, a).await),
        Nfs3Args::Commit(a) => outcome(xid, io::commit(s, c, &a).await),
        Nfs3Args::Readdir(a) => outcome(xid, dir::readdir(s, c, &a).await),
        Nfs3Args::Readdirplus(a) => outcome(xid, dir::readdirplus(s, c, &a).await),
        Nfs3Args::Fsstat(a) => outcome(xid, fs::fsstat(s, c, &a).await),
        Nfs3Args::Fsinfo(a) => outcome(xid, fs::fsinfo(s, c, &a).await),
        Nfs3Args::Pathconf(a) => outcome(xid, fs::pathconf(s, c, &a).await),
    }
}
