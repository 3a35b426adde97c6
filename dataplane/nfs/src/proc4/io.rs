//! Opens and I/O (RFC 8881 sections 18.16, 18.2, 18.18, 18.22, 18.32, 18.3, 18.48,
//! 18.38): OPEN, CLOSE, OPEN_DOWNGRADE, READ, WRITE, COMMIT, TEST_STATEID,
//! FREE_STATEID, DELEGRETURN (18.6).
//!
//! - OPEN serves CLAIM_NULL (by name in the current directory, creating with UNCHECKED4,
//!   GUARDED4, EXCLUSIVE4 or EXCLUSIVE4_1), CLAIM_FH, CLAIM_DELEGATE_CUR /
//!   CLAIM_DELEG_CUR_FH (opens under a delegation the client holds: its stateid must
//!   be the client's delegation of that file, else NFS4ERR_BAD_STATEID) and, for
//!   reclaims after a restart, CLAIM_PREVIOUS (the current file; a delegation held
//!   before the restart is not granted again: the open is reclaimed with
//!   OPEN_DELEGATE_NONE and the client sends the locks it kept under the delegation as
//!   lock reclaims, as RFC 8881 section 10.2.1 lets it); CLAIM_DELEGATE_PREV /
//!   CLAIM_DELEG_PREV_FH are NFS4ERR_NOTSUPP. Who may reclaim and when, and the grace
//!   period that refuses other OPENs (NFS4ERR_GRACE), are `grace`'s; before the first
//!   OPEN of a client on a share is answered its client record there is durable. In
//!   NFSv4.0, OPEN, OPEN_CONFIRM, OPEN_DOWNGRADE and CLOSE are sequenced and replayed
//!   per open-owner (`seqid`); a new open-owner's OPEN sets OPEN4_RESULT_CONFIRM.
//! - Delegations (`deleg`, `recall`): an OPEN for write or with a deny mode, a WRITE
//!   (and the writes of `space`) first recall other clients' delegations of the file;
//!   an OPEN for read and a READ (and the reads of `space`) other clients' write
//!   delegations (NFS4ERR_DELAY meanwhile). An OPEN with deny NONE may get a
//!   delegation ([`wanted`]; 4.0: to a confirmed open-owner, over `cb40`'s path):
//!   read for read-only access, write (OPEN_DELEGATE_WRITE,
//!   space limit NFS_LIMIT_SIZE of the largest file size, an ACE granting nothing so
//!   the client still asks ACCESS) for write access; OPEN4_SHARE_ACCESS_WANT_NO_DELEG
//!   or _CANCEL asks for none, _WANT_READ_DELEG for no write delegation (answered with
//!   plain OPEN_DELEGATE_NONE). DELEGRETURN gives one back. READ and SETATTR accept
//!   the client's delegation stateid of the file, WRITE its write delegation's (a read
//!   delegation's is NFS4ERR_OPENMODE, another client's NFS4ERR_BAD_STATEID, a revoked
//!   one NFS4ERR_DELEG_REVOKED).
//! - An open is a share reservation in the share's `LockManager` (the one NLM uses, so
//!   NFSv4 share modes and NLM SHARE meet) and an open reference in the core (an
//!   unlinked file stays readable until its last CLOSE). One open-owner opening a file
//!   again upgrades its one stateid (RFC 8881 section 9.9). A share reservation of a
//!   courtesy client (lease expired, state kept) that refuses an OPEN is released and
//!   the OPEN goes through (`courtesy`). A 4.1/4.2 OPEN sets
//!   OPEN4_RESULT_MAY_NOTIFY_LOCK: blocked locks on the file get CB_NOTIFY_LOCK
//!   (`lockwait`).
//! - READ/WRITE accept the special stateids (anonymous, READ bypass) and otherwise a
//!   stateid of this file: an unknown one is NFS4ERR_BAD_STATEID, an outdated one
//!   NFS4ERR_OLD_STATEID, a WRITE through an open without write access
//!   NFS4ERR_OPENMODE. Permissions are the core's, as for NFSv3.

use super::attr::to_setattr;
use super::courtesy::{self, Blocked};
use super::fh::check_name;
use super::lm::{lock_status, owner};
use super::seqid::{self, OP_CLOSE, OP_OPEN, OP_OPEN_CONFIRM, OP_OPEN_DOWNGRADE};
use super::seqid::{OwnerKey, Replay, Sequenced};
use super::state::{StateEntry, StateKind};
use super::{Compound, Cur, Fail, FileRef, MAX_IO, OpResult, ok};
use crate::nfs4::Nfs4Status;
use crate::nfs4::fattr::{Fattr4, SetAttrs4};
use crate::nfs4::io::*;
use crate::nfs4::ns::ChangeInfo4;
use crate::nfs4::types::{Bitmap4, Component4, Stateid4};
use bytes::Bytes;
use dittofs_types::FileType;
use dittofs_vfs::state::{Access, BreakCause, ByteRange, LeaseKind};
use dittofs_vfs::{CreateMode, MAX_FILE_SIZE, Stability, access as acc};

fn lm_access(bits: u32) -> Access {
    Access::new(
        bits & SHARE_ACCESS_READ != 0,
        bits & SHARE_ACCESS_WRITE != 0,
        false,
    )
}

/// The status of a refusal that stood after courtesy clients in its way were released.
pub(super) fn blocked_status(b: &Blocked) -> Nfs4Status {
    match b {
        Blocked::By(e) => lock_status(e),
        Blocked::Later => Nfs4Status::Delay,
    }
}

/// The file an OPEN opens, whether this OPEN created it, the directory's change info
/// and the attributes set.
struct Opened {
    file: FileRef,
    created: bool,
    cinfo: ChangeInfo4,
    attrset: Bitmap4,
}

fn no_change() -> ChangeInfo4 {
    ChangeInfo4 {
        atomic: false,
        before: 0,
        after: 0,
    }
}

/// The create mode and attributes of an OPEN4_CREATE.
fn create_how(h: &CreateHow4) -> (CreateMode, Option<&Fattr4>) {
    match h {
        CreateHow4::Unchecked(f) => (CreateMode::Unchecked, Some(f)),
        CreateHow4::Guarded(f) => (CreateMode::Guarded, Some(f)),
        CreateHow4::Exclusive(v) => (CreateMode::Exclusive(*v), None),
        CreateHow4::Exclusive41(v, f) => (CreateMode::Exclusive(*v), Some(f)),
    }
}

async fn open_by_name(
    c: &Compound<'_>,
    name: &Component4,
    how: &OpenHow4,
) -> Result<Opened, Nfs4Status> {
    check_name(&name.0)?;
    let d = c.file(Nfs4Status::RoFs)?;
    let before = d.fs.getattr(d.ino).await?.change;
    let existing = d.fs.lookup(&d.cred, d.ino, &name.0).await;
    let Some(h) = &how.0 else {
        let at = existing?;
        return Ok(Opened {
            file: FileRef { ino: at.ino, ..d },
            created: false,
            cinfo: no_change(),
            attrset: Bitmap4::default(),
        });
    };
    let (mode, attrs) = create_how(h);
    let s4 = attrs
        .map(SetAttrs4::from_fattr)
        .transpose()?
        .unwrap_or_default();
    let sa = to_setattr(&s4, &c.shared.owners())?;
    let at = d.fs.create(&d.cred, d.ino, &name.0, mode, &sa).await?;
    let after = d.fs.getattr(d.ino).await?.change;
    let created = existing.is_err();
    let attrset = match (created, attrs) {
        (true, Some(f)) => f.attrmask.clone(),
        _ => Bitmap4::default(),
    };
    Ok(Opened {
        file: FileRef { ino: at.ino, ..d },
        created,
        cinfo: ChangeInfo4 {
            atomic: false,
            before,
            after,
        },
        attrset,
    })
}

/// Checks that the caller may open `f` as a regular file with `access`.
async fn check_openable(f: &FileRef, access: u32, created: bool) -> Result<(), Nfs4Status> {
    match f.fs.getattr(f.ino).await?.kind {
        FileType::Regular => {}
        FileType::Directory => return Err(Nfs4Status::IsDir),
        FileType::Symlink => return Err(Nfs4Status::Symlink),
        _ => return Err(Nfs4Status::WrongType),
    }
    if created {
        return Ok(());
    }
    let mut need = 0;
    if access & SHARE_ACCESS_READ != 0 {
        need |= acc::READ;
    }
    if access & SHARE_ACCESS_WRITE != 0 {
        need |= acc::MODIFY;
    }
    let (granted, _) = f.fs.access(&f.cred, f.ino, need).await?;
    if granted & need != need {
        return Err(Nfs4Status::Access);
    }
    Ok(())
}

/// The open stateid of `owner` on `f` with `access`/`deny` added: the existing one
/// upgraded, or a new one. Courtesy clients whose share reservations refuse it are
/// released first.
async fn open_state(
    c: &Compound<'_>,
    client: u64,
    key: &[u8],
    f: &FileRef,
    access: u32,
    deny: u32,
) -> Result<Stateid4, Nfs4Status> {
    let st = &c.shared.nfs4;
    let lm = c.shared.nlm.manager(f.fs.share_id());
    let file = (f.fs.share_id(), f.ino);
    if let Some((sid, e)) = st.find_state(client, key, file, false) {
        let StateKind::Open {
            access: a0,
            deny: d0,
        } = e.kind
        else {
            return Err(Nfs4Status::ServerFault);
        };
        let (a1, d1) = (a0 | access, d0 | deny);
        if let Some(id) = e.lm_open {
            courtesy::retry(c.shared, || {
                lm.change_open(id, lm_access(a1), lm_access(d1))
            })
            .await
            .map_err(|b| blocked_status(&b))?;
        }
        return st.update_state(&sid, |e| {
            e.kind = StateKind::Open {
                access: a1,
                deny: d1,
            }
        });
    }
    let who = owner(client, key);
    let id = courtesy::retry(c.shared, || {
        lm.open(f.ino, &who, lm_access(access), lm_access(deny))
    })
    .await
    .map_err(|b| blocked_status(&b))?;
    let sid = st
        .add_state(StateEntry {
            client,
            share: f.fs.share_id(),
            ino: f.ino,
            owner: key.to_vec(),
            seqid: 1,
            kind: StateKind::Open { access, deny },
            lm_open: Some(id),
        })
        .inspect_err(|_| {
            let _ = lm.close(id);
        })?;
    f.fs.open_ref(f.ino);
    Ok(sid)
}

/// The file of an open under a delegation (`sid` must be `client`'s delegation of it).
fn under_delegation(
    c: &Compound<'_>,
    client: u64,
    sid: &Stateid4,
    f: FileRef,
) -> Result<Opened, Nfs4Status> {
    match c.shared.deleg.lookup(sid) {
        Some(Ok(held)) if (held.client, held.file) == (client, (f.fs.share_id(), f.ino)) => {
            Ok(Opened {
                file: f,
                created: false,
                cinfo: no_change(),
                attrset: Bitmap4::default(),
            })
        }
        Some(Err(e)) => Err(e),
        _ => Err(Nfs4Status::BadStateid),
    }
}

/// An open of the current file with no name (CLAIM_FH, CLAIM_PREVIOUS).
fn open_current(c: &Compound<'_>) -> Result<Opened, Nfs4Status> {
    Ok(Opened {
        file: c.file(Nfs4Status::IsDir)?,
        created: false,
        cinfo: no_change(),
        attrset: Bitmap4::default(),
    })
}

/// The checks before a reclaim (CLAIM_PREVIOUS, of any delegation type) of `client`.
fn check_reclaim(c: &Compound<'_>, client: u64) -> Result<Opened, Nfs4Status> {
    let o = open_current(c)?;
    let owner = c.shared.nfs4.owner_of(client)?;
    c.shared.grace.check_reclaim(&owner, o.file.fs.share_id())?;
    Ok(o)
}

/// The checks before a new (non-reclaim) open of `client`: none during the grace
/// period; the client's record on the share made durable first.
async fn check_new_open(c: &Compound<'_>, client: u64) -> Result<(), Fail> {
    c.shared.grace.check_new()?;
    if let Ok(f) = c.file(Nfs4Status::RoFs) {
        let owner = c.shared.nfs4.owner_of(client)?;
        c.shared.grace.record(&f.fs, &owner).await?;
    }
    Ok(())
}

async fn opened(c: &Compound<'_>, client: u64, a: &OpenArgs) -> Result<Opened, Fail> {
    if !matches!(a.claim, OpenClaim4::Previous(_)) {
        check_new_open(c, client).await?;
    }
    Ok(match &a.claim {
        OpenClaim4::Null(name) => open_by_name(c, name, &a.openhow).await?,
        OpenClaim4::Fh => open_current(c)?,
        OpenClaim4::DelegateCur(sid, name) => {
            let o = open_by_name(c, name, &OpenHow4(None)).await?;
            under_delegation(c, client, sid, o.file)?
        }
        OpenClaim4::DelegCurFh(sid) => {
            under_delegation(c, client, sid, c.file(Nfs4Status::IsDir)?)?
        }
        OpenClaim4::Previous(_) => check_reclaim(c, client)?,
        _ => return Err(Nfs4Status::NotSupp.into()),
    })
}

/// The delegation an OPEN may get (RFC 8881 section 18.16.3, RFC 7530 section 10.4):
/// for a plain open (CLAIM_NULL, CLAIM_FH) with deny NONE by a `confirmed` open-owner
/// (always so in 4.1/4.2), a read delegation for read-only access, a write delegation
/// for write access; in 4.1/4.2 unless the client's OPEN4_SHARE_ACCESS_WANT_* bits say
/// otherwise (NO_DELEG and CANCEL: none; READ_DELEG: no write delegation).
fn wanted((minor, confirmed): (u32, bool), a: &OpenArgs) -> Option<LeaseKind> {
    let plain = matches!(a.claim, OpenClaim4::Null(_) | OpenClaim4::Fh);
    if !confirmed || !plain || a.share_deny != 0 {
        return None;
    }
    let want = a.share_access & SHARE_ACCESS_WANT_DELEG_MASK;
    let read_only = a.share_access & 0xff == SHARE_ACCESS_READ;
    if minor == 0 {
        return Some(if read_only {
            LeaseKind::READ_HANDLE
        } else {
            LeaseKind::READ_WRITE_HANDLE
        });
    }
    match want {
        SHARE_ACCESS_WANT_NO_DELEG | SHARE_ACCESS_WANT_CANCEL => None,
        _ if read_only => Some(LeaseKind::READ_HANDLE),
        SHARE_ACCESS_WANT_READ_DELEG => None,
        _ => Some(LeaseKind::READ_WRITE_HANDLE),
    }
}

/// The delegation an OPEN gets: the one [`wanted`], if `deleg` grants it.
async fn delegation(
    c: &Compound<'_>,
    a: &OpenArgs,
    (client, confirmed): (u64, bool),
    f: &FileRef,
) -> OpenDelegation4 {
    let Some(kind) = wanted((c.minor, confirmed), a) else {
        return OpenDelegation4::None;
    };
    if kind.write() && !c.shared.cfg.v4.write_delegations {
        return OpenDelegation4::None;
    }
    let Ok(h) = f.fs.handle_of(f.ino).await else {
        return OpenDelegation4::None;
    };
    let lm = c.shared.nlm.manager(f.fs.share_id());
    let file = (f.fs.share_id(), f.ino);
    let (deleg, with) = (&c.shared.deleg, (&lm, &*c.shared.metrics));
    match deleg.try_grant(with, client, file, &h.encode(), kind) {
        Some((stateid, true)) => OpenDelegation4::Write {
            stateid,
            recall: false,
            space_limit: MAX_FILE_SIZE,
        },
        Some((stateid, false)) => OpenDelegation4::Read {
            stateid,
            recall: false,
        },
        None => OpenDelegation4::None,
    }
}

pub(super) async fn open(c: &mut Compound<'_>, a: &OpenArgs) -> OpResult {
    let client = c.client_of(a.owner.clientid)?;
    if c.minor > 0 {
        return open_run(c, a, client, true).await;
    }
    let key = OwnerKey {
        client,
        lock: false,
        owner: a.owner.owner.0.clone(),
    };
    let shared = c.shared;
    let g = match seqid::sequence(&shared.nfs4, key, a.seqid, OP_OPEN)? {
        Sequenced::Replay(r) => return open_replayed(c, r),
        Sequenced::Run(g) => g,
    };
    let r = open_run(c, a, client, g.confirmed).await;
    let ino = match (&r, &c.cur) {
        (Ok(_), Some(Cur::File(f))) => Some(f.ino),
        _ => None,
    };
    g.finish(&r, ino);
    r
}

/// A replayed NFSv4.0 OPEN: its result, and the file it opened as the current file.
fn open_replayed(c: &mut Compound<'_>, r: Replay) -> OpResult {
    if let Some(ino) = r.ino {
        let f = c.file(Nfs4Status::IsDir)?;
        c.cur = Some(Cur::File(FileRef { ino, ..f }));
    }
    seqid::replayed(r)
}

/// OPEN itself; `confirmed` false (a new NFSv4.0 open-owner) asks for OPEN_CONFIRM.
async fn open_run(c: &mut Compound<'_>, a: &OpenArgs, client: u64, confirmed: bool) -> OpResult {
    let access = a.share_access & 0xff;
    if !(1..=3).contains(&access) || a.share_deny > 3 {
        return Err(Nfs4Status::Inval.into());
    }
    if c.minor == 0 && matches!(a.openhow.0, Some(CreateHow4::Exclusive41(..))) {
        return Err(Nfs4Status::Inval.into());
    }
    let o = opened(c, client, a).await?;
    check_openable(&o.file, access, o.created).await?;
    let write = access & SHARE_ACCESS_WRITE != 0 || a.share_deny != 0;
    let (share, ino) = (o.file.fs.share_id(), o.file.ino);
    super::recall::break_for(c, share, ino, BreakCause::Open { write })?;
    let reclaim = matches!(a.claim, OpenClaim4::Previous(_));
    let owner_key = &a.owner.owner.0;
    let sid = match open_state(c, client, owner_key, &o.file, access, a.share_deny).await {
        Err(Nfs4Status::ShareDenied) if reclaim => return Err(Nfs4Status::ReclaimConflict.into()),
        r => r?,
    };
    if reclaim {
        let owner = c.shared.nfs4.owner_of(client)?;
        c.shared.grace.reclaimed(&owner, share);
    }
    let delegation = delegation(c, a, (client, confirmed), &o.file).await;
    c.cur = Some(Cur::File(o.file));
    c.cur_stateid = Some(sid.clone());
    ok(&OpenResOk {
        stateid: sid,
        cinfo: o.cinfo,
        rflags: open_rflags(c.minor, confirmed),
        attrset: o.attrset,
        delegation,
    })
}

/// OPEN's `rflags`: POSIX locks; CONFIRM for a new 4.0 open-owner; MAY_NOTIFY_LOCK in
/// 4.1/4.2 (CB_NOTIFY_LOCK needs a back channel).
fn open_rflags(minor: u32, confirmed: bool) -> u32 {
    let mut flags = OPEN4_RESULT_LOCKTYPE_POSIX;
    if !confirmed {
        flags |= OPEN4_RESULT_CONFIRM;
    }
    if minor > 0 {
        flags |= OPEN4_RESULT_MAY_NOTIFY_LOCK;
    }
    flags
}

/// DELEGRETURN: the client gives its delegation back.
pub(super) fn delegreturn(c: &mut Compound<'_>, sid: &Stateid4) -> OpResult {
    let sid = c.stateid(sid)?;
    let client = super::cb40::delegreturn_client(c, &sid)?;
    c.shared
        .deleg
        .delegreturn((&c.shared.nlm, &c.shared.metrics), client, &sid)?;
    Ok(Vec::new())
}

/// A stateid this server knows: an open or lock stateid, or a delegation's.
pub(super) async fn close(c: &mut Compound<'_>, a: &CloseArgs) -> OpResult {
    if c.minor > 0 {
        return close_run(c, a).await;
    }
    let key = seqid::owner_of(c, &a.stateid, false, true)?;
    let shared = c.shared;
    let g = match seqid::sequence(&shared.nfs4, key, a.seqid, OP_CLOSE)? {
        Sequenced::Replay(r) => return seqid::replayed(r),
        Sequenced::Run(g) => g,
    };
    let other = c.stateid(&a.stateid)?.other;
    let r = close_run(c, a).await;
    if r.is_ok() {
        shared.nfs4.owners(|o| o.closed(&g.key, other));
    }
    g.finish(&r, None);
    r
}

async fn close_run(c: &mut Compound<'_>, a: &CloseArgs) -> OpResult {
    let sid = c.stateid(&a.stateid)?;
    let e = c.shared.nfs4.state(&sid)?;
    if !matches!(e.kind, StateKind::Open { .. }) {
        return Err(Nfs4Status::BadStateid.into());
    }
    let (e, locks) = c.shared.nfs4.remove_state(&sid)?;
    let lm = c.shared.nlm.manager(e.share);
    for l in locks {
        lm.unlock(l.ino, &owner(l.client, &l.owner), ByteRange::to_eof(0));
    }
    if let Some(id) = e.lm_open {
        let _ = lm.close(id);
    }
    if let Some(fs) = c.shared.registry.by_id(e.share) {
        fs.close_ref(e.ino).await?;
    }
    c.cur_stateid = None;
    // NFSv4.0 returns the stateid advanced, 4.1 the invalid stateid (RFC 8881 18.2.4)
    match c.minor {
        0 => ok(&Stateid4 {
            seqid: e.seqid.wrapping_add(1),
            other: sid.other,
        }),
        _ => ok(&Stateid4::INVALID),
    }
}

/// OPEN_CONFIRM (NFSv4.0): confirms a new open-owner (its OPEN set
/// OPEN4_RESULT_CONFIRM, see `seqid`); the open stateid advances. An owner already
/// confirmed is NFS4ERR_BAD_STATEID.
pub(super) fn open_confirm(c: &mut Compound<'_>, a: &OpenConfirmArgs) -> OpResult {
    let key = seqid::owner_of(c, &a.open_stateid, false, false)?;
    let shared = c.shared;
    let g = match seqid::sequence(&shared.nfs4, key, a.seqid, OP_OPEN_CONFIRM)? {
        Sequenced::Replay(r) => return seqid::replayed(r),
        Sequenced::Run(g) => g,
    };
    let r = match g.confirmed {
        true => Err(Nfs4Status::BadStateid.into()),
        false => confirm_run(c, a),
    };
    if r.is_ok() {
        shared.nfs4.owners(|o| o.confirm(&g.key));
    }
    g.finish(&r, None);
    r
}

fn confirm_run(c: &mut Compound<'_>, a: &OpenConfirmArgs) -> OpResult {
    let sid = c.stateid(&a.open_stateid)?;
    if !matches!(c.shared.nfs4.state(&sid)?.kind, StateKind::Open { .. }) {
        return Err(Nfs4Status::BadStateid.into());
    }
    let new = c.shared.nfs4.update_state(&sid, |_| {})?;
    c.cur_stateid = Some(new.clone());
    ok(&new)
}

pub(super) fn open_downgrade(c: &mut Compound<'_>, a: &OpenDowngradeArgs) -> OpResult {
    if c.minor > 0 {
        return downgrade_run(c, a);
    }
    let key = seqid::owner_of(c, &a.stateid, false, false)?;
    let shared = c.shared;
    let g = match seqid::sequence(&shared.nfs4, key, a.seqid, OP_OPEN_DOWNGRADE)? {
        Sequenced::Replay(r) => return seqid::replayed(r),
        Sequenced::Run(g) => g,
    };
    let r = downgrade_run(c, a);
    g.finish(&r, None);
    r
}

fn downgrade_run(c: &mut Compound<'_>, a: &OpenDowngradeArgs) -> OpResult {
    let sid = c.stateid(&a.stateid)?;
    let e = c.shared.nfs4.state(&sid)?;
    let StateKind::Open { access, deny } = e.kind else {
        return Err(Nfs4Status::BadStateid.into());
    };
    let (na, nd) = (a.share_access & 0xff, a.share_deny);
    if na == 0 || na & !access != 0 || nd & !deny != 0 {
        return Err(Nfs4Status::Inval.into());
    }
    if let Some(id) = e.lm_open {
        c.shared
            .nlm
            .manager(e.share)
            .change_open(id, lm_access(na), lm_access(nd))
            .map_err(|e| lock_status(&e))?;
    }
    let new = c.shared.nfs4.update_state(&sid, |e| {
        e.kind = StateKind::Open {
            access: na,
            deny: nd,
        }
    })?;
    c.cur_stateid = Some(new.clone());
    ok(&new)
}

/// Checks the stateid of a READ (`write` false) or WRITE of `f`, then recalls other
/// clients' delegations of the file that the access conflicts with (a read breaks a
/// write delegation, a write any delegation: NFS4ERR_DELAY meanwhile).
pub(super) fn check_io(
    c: &Compound<'_>,
    sid: &Stateid4,
    f: &FileRef,
    write: bool,
) -> Result<(), Nfs4Status> {
    check_stateid(c, sid, f, write)?;
    let cause = if write {
        BreakCause::Write
    } else {
        BreakCause::Read
    };
    super::recall::break_for(c, f.fs.share_id(), f.ino, cause)
}

/// The stateid check of [`check_io`]: a special stateid, the caller's delegation of
/// `f` (a write needs a write delegation: NFS4ERR_OPENMODE), or an open or lock
/// stateid of `f` (a write needs write access).
fn check_stateid(
    c: &Compound<'_>,
    sid: &Stateid4,
    f: &FileRef,
    write: bool,
) -> Result<(), Nfs4Status> {
    let sid = c.stateid(sid)?;
    if sid.is_anonymous() {
        return Ok(());
    }
    if let Some(d) = c.shared.deleg.lookup(&sid) {
        let d = d?;
        // 4.0: the stateid alone names its client.
        let mine = c.session.as_ref().is_none_or(|s| s.client == d.client);
        if !mine || d.file != (f.fs.share_id(), f.ino) {
            return Err(Nfs4Status::BadStateid);
        }
        if write && !d.write {
            return Err(Nfs4Status::OpenMode);
        }
        return Ok(());
    }
    let e = c.shared.nfs4.state(&sid)?;
    if (e.share, e.ino) != (f.fs.share_id(), f.ino) {
        return Err(Nfs4Status::BadStateid);
    }
    match e.kind {
        StateKind::Open { access, .. } if write && access & SHARE_ACCESS_WRITE == 0 => {
            Err(Nfs4Status::OpenMode)
        }
        _ => Ok(()),
    }
}

pub(super) async fn read(c: &mut Compound<'_>, a: &ReadArgs) -> OpResult {
    let f = c.file(Nfs4Status::IsDir)?;
    check_io(c, &a.stateid, &f, false)?;
    let (data, eof, _) =
        f.fs.read(&f.cred, f.ino, a.offset, a.count.min(MAX_IO))
            .await?;
    c.shared.metrics.bytes_read.inc_by(data.len() as u64);
    ok(&ReadResOk { eof, data })
}

pub(super) async fn write(c: &mut Compound<'_>, a: WriteArgs) -> OpResult {
    let f = c.file(Nfs4Status::IsDir)?;
    check_io(c, &a.stateid, &f, true)?;
    if a.data.len() > MAX_IO as usize {
        return Err(Nfs4Status::Inval.into());
    }
    let stable = match a.stable {
        0 => Stability::Unstable,
        1 => Stability::DataSync,
        _ => Stability::FileSync,
    };
    let data: Bytes = a.data;
    let w = f.fs.write(&f.cred, f.ino, a.offset, data, stable).await?;
    c.shared.metrics.bytes_written.inc_by(u64::from(w.count));
    let committed = match w.committed {
        Stability::Unstable => 0,
        Stability::DataSync => 1,
        Stability::FileSync => 2,
    };
    ok(&WriteResOk {
        count: w.count,
        committed,
        writeverf: c.shared.write_verifier,
    })
}

pub(super) async fn commit(c: &mut Compound<'_>) -> OpResult {
    let f = c.file(Nfs4Status::IsDir)?;
    f.fs.commit_writes(f.ino).await?;
    ok(&c.shared.write_verifier)
}

pub(super) fn test_stateid(c: &mut Compound<'_>, a: &TestStateidArgs) -> OpResult {
    let st =
        a.0.iter()
            .map(|s| match c.known_stateid(s) {
                Ok(()) => Nfs4Status::Ok.as_u32(),
                Err(e) => e.as_u32(),
            })
            .collect();
    ok(&crate::nfs4::types::List::<u32, MAX_TEST_STATEIDS>(st))
}

pub(super) fn free_stateid(c: &mut Compound<'_>, sid: &Stateid4) -> OpResult {
    let sid = c.stateid(sid)?;
    if c.shared.deleg.free_revoked(&sid) {
        return Ok(Vec::new());
    }
    if let Some(Ok(_)) = c.shared.deleg.lookup(&sid) {
        return Err(Nfs4Status::LocksHeld.into());
    }
    let e = c.shared.nfs4.state(&sid)?;
    if matches!(e.kind, StateKind::Open { .. }) {
        return Err(Nfs4Status::LocksHeld.into());
    }
    let (e, _) = c.shared.nfs4.remove_state(&sid)?;
    c.shared
        .nlm
        .manager(e.share)
        .unlock(e.ino, &owner(e.client, &e.owner), ByteRange::to_eof(0));
    Ok(Vec::new())
}
