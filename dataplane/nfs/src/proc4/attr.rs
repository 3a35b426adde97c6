//! Attribute operations (RFC 8881 sections 18.7, 18.30, 18.1, 18.31, 18.15): GETATTR,
//! SETATTR, ACCESS, VERIFY, NVERIFY; and [`source`], the attributes of a current file
//! handle (a share's object from the core, or a pseudo directory).
//!
//! File system IDs: the pseudo file system is `(0, 0)`, share `n` is `(n, 1)`, so the
//! client sees a mount point where a share joins the pseudo tree; a share root's
//! `mounted_on_fileid` is the file ID of the pseudo directory entry it stands on.
//! SETATTR's size change needs no stateid (the special stateids are accepted), but a
//! stateid given must be valid (a delegation stateid is). Delegations (`deleg`,
//! `recall`): a size change first recalls other clients' delegations, any other
//! attribute change and a GETATTR, VERIFY or NVERIFY asking for an attribute a writer
//! caches (change, size, space used, mtime, ctime) other clients' write delegations
//! (NFS4ERR_DELAY until returned or revoked). Owner strings are made from uids/gids and
//! read back into them by `idmap` (numeric, or `name@domain` with `nfs.v4.id_domain`),
//! with the map taken once per operation ([`AttrCtx`]); a string with no id is
//! NFS4ERR_BADOWNER before anything changes.

use super::idmap::{IdKind, OwnerMap};
use super::pseudo;
use super::{Compound, Cur, Fail, MAX_IO, OpResult, ok};
use crate::nfs4::Nfs4Status;
use crate::nfs4::attr::{AccessResOk, SetattrArgs, SetattrRes};
use crate::nfs4::fattr::{
    self, AttrSource, Fattr4, FsStats4, Ftype4, SetAttrs4, SetTime4, a, encode_attrs,
};
use crate::nfs4::types::{Bitmap4, Fh4, NfsTime4};
use crate::xdr::XdrEncode;
use dittofs_types::{FileType, Ino, Timestamp};
use dittofs_vfs::state::BreakCause;
use dittofs_vfs::{Attr, Fs, MAX_FILE_SIZE, SetAttr, SetTime, access as acc};

/// ACCESS bits the server answers (READ, LOOKUP, MODIFY, EXTEND, DELETE, EXECUTE), and
/// in NFSv4.2 the extended attribute bits XAREAD, XAWRITE, XALIST (RFC 8276), which the
/// Linux client asks for and requires before it uses the attribute operations.
const ACCESS_ALL: u32 = 0x3f;
const ACCESS_XATTR: u32 = acc::XATTR_ALL;

pub(super) fn time4(t: Timestamp) -> NfsTime4 {
    NfsTime4 {
        seconds: t.secs,
        nseconds: t.nanos,
    }
}

fn ftype(k: FileType) -> Ftype4 {
    match k {
        FileType::Regular => Ftype4::Reg,
        FileType::Directory => Ftype4::Dir,
        FileType::Symlink => Ftype4::Lnk,
        FileType::CharDevice => Ftype4::Chr,
        FileType::BlockDevice => Ftype4::Blk,
        FileType::Fifo => Ftype4::Fifo,
        FileType::Socket => Ftype4::Sock,
    }
}

async fn stats(fs: &Fs, mask: &Bitmap4) -> Result<FsStats4, Nfs4Status> {
    if !fattr::needs_fs_stats(mask) {
        return Ok(FsStats4::default());
    }
    let s = fs.statfs().await?;
    Ok(FsStats4 {
        files_avail: s.free_files,
        files_free: s.free_files,
        files_total: s.total_files,
        space_avail: s.avail_bytes,
        space_free: s.free_bytes,
        space_total: s.total_bytes,
    })
}

/// What the attributes of every object depend on besides the object itself.
pub(super) struct AttrCtx {
    /// The lease, in seconds.
    pub(super) lease: u32,
    /// The minor version asking.
    pub(super) minor: u32,
    /// Owner strings (taken once, so one operation sees one version of the names).
    pub(super) owners: OwnerMap,
}

/// The attribute context of the operation running in `c`.
pub(super) fn ctx(c: &Compound<'_>) -> AttrCtx {
    AttrCtx {
        lease: c.shared.nfs4.lease.as_secs() as u32,
        minor: c.minor,
        owners: c.shared.owners(),
    }
}

/// The attributes of an object of share `fs` (its handle `fh`).
pub(super) fn from_attr(fs: &Fs, at: &Attr, fh: Fh4, cx: &AttrCtx, st: FsStats4) -> AttrSource {
    let mounted_on = if at.ino == Ino::ROOT {
        pseudo::fileid(&pseudo::export_path(fs))
    } else {
        at.ino.0
    };
    AttrSource {
        kind: ftype(at.kind),
        change: at.change,
        size: at.size,
        fsid: (u64::from(at.share.0), 1),
        fileid: at.ino.0,
        mounted_on_fileid: mounted_on,
        mode: at.mode,
        nlink: at.nlink,
        owner: cx.owners.show(IdKind::User, at.uid),
        owner_group: cx.owners.show(IdKind::Group, at.gid),
        rdev: (at.rdev.major, at.rdev.minor),
        space_used: at.used,
        atime: time4(at.atime),
        mtime: time4(at.mtime),
        ctime: time4(at.ctime),
        btime: time4(at.btime),
        fh,
        lease_time: cx.lease,
        max_io: u64::from(MAX_IO),
        max_file_size: MAX_FILE_SIZE,
        stats: st,
        minor: cx.minor,
        xattr_support: true,
    }
}

/// The attributes of pseudo directory `path` (owned by root).
pub(super) fn pseudo_source(c: &Compound<'_>, cx: &AttrCtx, path: &[u8]) -> AttrSource {
    let names: Vec<u8> = pseudo::children(&c.shared.registry, path)
        .into_iter()
        .flat_map(|(n, _)| n.into_iter().chain(Some(b'/')))
        .collect();
    let zero = NfsTime4 {
        seconds: 0,
        nseconds: 0,
    };
    AttrSource {
        kind: Ftype4::Dir,
        change: pseudo::fileid(&names),
        size: 4096,
        fsid: (0, 0),
        fileid: pseudo::fileid(path),
        mounted_on_fileid: pseudo::fileid(path),
        mode: 0o555,
        nlink: 2,
        owner: cx.owners.show(IdKind::User, 0),
        owner_group: cx.owners.show(IdKind::Group, 0),
        rdev: (0, 0),
        space_used: 4096,
        atime: zero.clone(),
        mtime: zero.clone(),
        ctime: zero.clone(),
        btime: zero,
        fh: pseudo::handle(path).unwrap_or_default(),
        lease_time: cx.lease,
        max_io: u64::from(MAX_IO),
        max_file_size: MAX_FILE_SIZE,
        stats: FsStats4::default(),
        minor: cx.minor,
        xattr_support: false,
    }
}

/// The attributes `mask` may ask for of the current file handle `cur`.
pub(super) async fn source(
    c: &Compound<'_>,
    cur: &Cur,
    mask: &Bitmap4,
) -> Result<AttrSource, Nfs4Status> {
    let cx = ctx(c);
    match cur {
        Cur::Pseudo(p) => Ok(pseudo_source(c, &cx, p)),
        Cur::File(f) => {
            let (at, h) = f.fs.attr_and_handle(f.ino).await?;
            let st = stats(&f.fs, mask).await?;
            let fh = Fh4(h.encode().to_vec());
            Ok(from_attr(&f.fs, &at, fh, &cx, st))
        }
    }
}

/// The attributes a write delegation's holder may have changed without telling the
/// server yet (RFC 8881 section 10.4.3).
const CACHED_BY_WRITERS: [u32; 5] = [
    a::CHANGE,
    a::SIZE,
    a::SPACE_USED,
    a::TIME_METADATA,
    a::TIME_MODIFY,
];

/// Before `mask` of `cur` is read: recalls another client's write delegation of the
/// file if `mask` asks for what its holder may have changed (NFS4ERR_DELAY meanwhile;
/// a recall rather than CB_GETATTR, which section 10.4.3 allows).
fn recall_writer(c: &Compound<'_>, cur: &Cur, mask: &Bitmap4) -> Result<(), Nfs4Status> {
    let Cur::File(f) = cur else {
        return Ok(());
    };
    if !CACHED_BY_WRITERS.iter().any(|b| mask.has(*b)) {
        return Ok(());
    }
    let cause = BreakCause::Read;
    super::recall::break_for(c, f.fs.share_id(), f.ino, cause)
}

pub(super) async fn getattr(c: &mut Compound<'_>, mask: &Bitmap4) -> OpResult {
    let cur = c.cur()?.clone();
    recall_writer(c, &cur, mask)?;
    let src = source(c, &cur, mask).await?;
    ok(&encode_attrs(mask, &src))
}

/// The core's form of a SETATTR/CREATE/OPEN attribute request; owner strings are read
/// through `owners` (NFS4ERR_BADOWNER when one names no id).
pub(super) fn to_setattr(s: &SetAttrs4, owners: &OwnerMap) -> Result<SetAttr, Nfs4Status> {
    let t = |w: &SetTime4| match w {
        SetTime4::DontChange => SetTime::DontChange,
        SetTime4::ServerTime => SetTime::ServerNow,
        SetTime4::Client(t) => SetTime::Client(Timestamp {
            secs: t.seconds,
            nanos: t.nseconds,
        }),
    };
    Ok(SetAttr {
        mode: s.mode.map(|m| m & 0o7777),
        uid: s
            .owner
            .as_deref()
            .map(|o| owners.parse(IdKind::User, o))
            .transpose()?,
        gid: s
            .group
            .as_deref()
            .map(|g| owners.parse(IdKind::Group, g))
            .transpose()?,
        size: s.size,
        atime: t(&s.atime),
        mtime: t(&s.mtime),
    })
}

pub(super) async fn setattr(c: &mut Compound<'_>, a: &SetattrArgs) -> OpResult {
    let fail = |st: Nfs4Status| Fail {
        status: st,
        body: SetattrRes {
            attrsset: Bitmap4::default(),
        }
        .to_xdr(),
    };
    let f = c.file(Nfs4Status::RoFs).map_err(fail)?;
    let sa = SetAttrs4::from_fattr(&a.attrs)
        .and_then(|s| to_setattr(&s, &c.shared.owners()))
        .map_err(fail)?;
    let sid = c.stateid(&a.stateid).map_err(fail)?;
    if !sid.is_anonymous() {
        c.known_stateid(&sid).map_err(fail)?;
    }
    let cause = match sa.size {
        Some(_) => BreakCause::SetSize,
        None => BreakCause::SetAttr,
    };
    super::recall::break_for(c, f.fs.share_id(), f.ino, cause).map_err(fail)?;
    f.fs.setattr(&f.cred, f.ino, &sa, None)
        .await
        .map_err(|e| fail(Nfs4Status::from(&e)))?;
    ok(&SetattrRes {
        attrsset: a.attrs.attrmask.clone(),
    })
}

pub(super) async fn access(c: &mut Compound<'_>, want: u32) -> OpResult {
    let known = match c.minor {
        2.. => ACCESS_ALL | ACCESS_XATTR,
        _ => ACCESS_ALL,
    };
    let supported = want & known;
    let granted = match c.cur()? {
        Cur::Pseudo(_) => supported & (acc::READ | acc::LOOKUP | acc::EXECUTE),
        Cur::File(f) => f.fs.access(&f.cred, f.ino, supported).await?.0,
    };
    ok(&AccessResOk {
        supported,
        access: granted,
    })
}

/// VERIFY (`same` true: fails NOT_SAME unless equal) and NVERIFY (fails SAME if equal).
pub(super) async fn verify(c: &mut Compound<'_>, given: &Fattr4, same: bool) -> OpResult {
    let mask = &given.attrmask;
    if mask.has(a::RDATTR_ERROR) {
        return Err(Nfs4Status::Inval.into());
    }
    let sup = fattr::supported_for(c.minor);
    if mask.bits().any(|b| !sup.has(b)) {
        return Err(Nfs4Status::AttrNotSupp.into());
    }
    let cur = c.cur()?.clone();
    recall_writer(c, &cur, mask)?;
    let mine = encode_attrs(mask, &source(c, &cur, mask).await?);
    let equal = mine.attrmask == *mask && mine.attr_vals == given.attr_vals;
    match (same, equal) {
        (true, false) => Err(Nfs4Status::NotSame.into()),
        (false, true) => Err(Nfs4Status::Same.into()),
        _ => Ok(Vec::new()),
    }
}
