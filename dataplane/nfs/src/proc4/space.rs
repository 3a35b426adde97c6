//! NFSv4.2 data operations (RFC 7862 sections 4, 5, 6, 15.1, 15.2, 15.4, 15.10, 15.11,
//! 15.13): ALLOCATE, DEALLOCATE, COPY, CLONE, SEEK, READ_PLUS, over the core's
//! `copy_range`, `allocate`, `deallocate` and `seek`.
//!
//! - Stateids are checked as READ and WRITE check them (`io::check_io`): the source of
//!   COPY/CLONE and the file of SEEK and READ_PLUS for reading, the destination and the
//!   file of ALLOCATE/DEALLOCATE for writing; so are other clients' delegations
//!   recalled (a write any, a read a write delegation).
//! - COPY and CLONE copy from the saved file handle to the current one, within one
//!   share (another share is NFS4ERR_XDEV). COPY is intra-server only and always
//!   synchronous: the reply has no callback stateid and says `cr_consecutive` and
//!   `cr_synchronous` even when the client asked for an asynchronous copy, and the data
//!   is FILE_SYNC4 (the core publishes it durably). A COPY naming source servers
//!   (inter-server copy) is NFS4ERR_NOTSUPP; so are COPY_NOTIFY, OFFLOAD_CANCEL and
//!   OFFLOAD_STATUS (no copy ever runs in the background).
//! - SEEK from an offset at or past the end is NFS4ERR_NXIO; no data after the offset
//!   is `sr_eof` with the size.
//! - READ_PLUS reads as READ does and splits the bytes into data and hole segments at
//!   the file's holes (found with SEEK), at most `MAX_SEGMENTS` of them.

use super::io::check_io;
use super::{Compound, Cur, FileRef, MAX_IO, OpResult, ok};
use crate::nfs4::Nfs4Status;
use crate::nfs4::types::{List, Stateid4};
use crate::nfs4::v42::*;
use bytes::Bytes;
use dittofs_vfs::{CopyRange, FsError, SeekWhat};

/// What READ_PLUS's segments may add to a reply beyond its data.
pub(super) const SEGMENT_BYTES: usize = 24 * MAX_SEGMENTS;

/// stable_how4 FILE_SYNC4.
const FILE_SYNC4: u32 = 2;

pub(super) async fn allocate(c: &mut Compound<'_>, a: &SpaceArgs) -> OpResult {
    let f = c.file(Nfs4Status::IsDir)?;
    check_io(c, &a.stateid, &f, true)?;
    f.fs.allocate(&f.cred, f.ino, a.offset, a.length).await?;
    Ok(Vec::new())
}

pub(super) async fn deallocate(c: &mut Compound<'_>, a: &SpaceArgs) -> OpResult {
    let f = c.file(Nfs4Status::IsDir)?;
    check_io(c, &a.stateid, &f, true)?;
    f.fs.deallocate(&f.cred, f.ino, a.offset, a.length).await?;
    Ok(Vec::new())
}

/// The source (saved file handle) and destination (current one) of COPY/CLONE, their
/// stateids checked.
fn copy_files(
    c: &Compound<'_>,
    src_sid: &Stateid4,
    dst_sid: &Stateid4,
) -> Result<(FileRef, FileRef), Nfs4Status> {
    let dst = c.file(Nfs4Status::IsDir)?;
    let src = match c.saved.as_ref().ok_or(Nfs4Status::NoFileHandle)? {
        Cur::File(f) => f.clone(),
        Cur::Pseudo(_) => return Err(Nfs4Status::IsDir),
    };
    check_io(c, src_sid, &src, false)?;
    check_io(c, dst_sid, &dst, true)?;
    Ok((src, dst))
}

/// Copies `len` bytes (0: to the end) from `src` to `dst`: bytes copied.
async fn run_copy(
    src: &FileRef,
    dst: &FileRef,
    src_off: u64,
    dst_off: u64,
    len: u64,
) -> Result<u64, FsError> {
    let r = CopyRange {
        src: src.ino,
        src_off,
        dst: dst.ino,
        dst_off,
        len,
    };
    Ok(src.fs.copy_range(&dst.cred, &dst.fs, &r).await?.copied)
}

pub(super) async fn copy(c: &mut Compound<'_>, a: &CopyArgs) -> OpResult {
    if !a.source_server.0.is_empty() {
        return Err(Nfs4Status::NotSupp.into());
    }
    let (src, dst) = copy_files(c, &a.src_stateid, &a.dst_stateid)?;
    let n = run_copy(&src, &dst, a.src_offset, a.dst_offset, a.count).await?;
    c.shared.metrics.bytes_written.inc_by(n);
    ok(&CopyResOk {
        response: WriteResponse4 {
            callback_id: None,
            count: n,
            committed: FILE_SYNC4,
            writeverf: c.shared.write_verifier,
        },
        consecutive: true,
        synchronous: true,
    })
}

pub(super) async fn clone(c: &mut Compound<'_>, a: &CloneArgs) -> OpResult {
    let (src, dst) = copy_files(c, &a.src_stateid, &a.dst_stateid)?;
    run_copy(&src, &dst, a.src_offset, a.dst_offset, a.count).await?;
    Ok(Vec::new())
}

pub(super) async fn seek(c: &mut Compound<'_>, a: &SeekArgs) -> OpResult {
    let f = c.file(Nfs4Status::IsDir)?;
    check_io(c, &a.stateid, &f, false)?;
    let what = match a.what {
        CONTENT_DATA => SeekWhat::Data,
        CONTENT_HOLE => SeekWhat::Hole,
        _ => return Err(Nfs4Status::Inval.into()),
    };
    let s = f.fs.seek(&f.cred, f.ino, a.offset, what).await?;
    ok(&SeekResOk {
        eof: s.eof,
        offset: s.offset,
    })
}

pub(super) async fn read_plus(c: &mut Compound<'_>, a: &ReadPlusArgs) -> OpResult {
    let f = c.file(Nfs4Status::IsDir)?;
    check_io(c, &a.stateid, &f, false)?;
    let (data, eof, _) =
        f.fs.read(&f.cred, f.ino, a.offset, a.count.min(MAX_IO))
            .await?;
    c.shared.metrics.bytes_read.inc_by(data.len() as u64);
    let contents = segments(&f, a.offset, data).await?;
    ok(&ReadPlusResOk {
        eof,
        contents: List(contents),
    })
}

/// Splits `data` read at `offset` into data and hole segments at the file's holes.
async fn segments(f: &FileRef, offset: u64, data: Bytes) -> Result<Vec<ReadPlusContent>, FsError> {
    let end = offset + data.len() as u64;
    let mut out = Vec::new();
    let mut pos = offset;
    let piece = |a: u64, b: u64| data.slice((a - offset) as usize..(b - offset) as usize);
    while pos < end {
        if out.len() + 2 >= MAX_SEGMENTS {
            out.push(ReadPlusContent::Data {
                offset: pos,
                data: piece(pos, end),
            });
            break;
        }
        let d = match f.fs.seek(&f.cred, f.ino, pos, SeekWhat::Data).await {
            Ok(s) if !s.eof && s.offset < end => s.offset,
            Ok(_) | Err(FsError::NxIo) => end,
            Err(e) => return Err(e),
        };
        if d > pos {
            out.push(ReadPlusContent::Hole {
                offset: pos,
                length: d - pos,
            });
        }
        if d >= end {
            break;
        }
        let h = f.fs.seek(&f.cred, f.ino, d, SeekWhat::Hole).await?;
        let h = h.offset.clamp(d + 1, end);
        out.push(ReadPlusContent::Data {
            offset: d,
            data: piece(d, h),
        });
        pos = h;
    }
    Ok(out)
}
