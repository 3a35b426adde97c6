//! NFSv3 file system information: FSSTAT, FSINFO, PATHCONF (RFC 1813 sections 3.3.18,
//! 3.3.19, 3.3.20; codecs in `nfs3::fs`). FSINFO advertises `MAX_IO` for reads and
//! writes and nanosecond timestamps; PATHCONF the core's name and link limits.

use super::{Handled, MAX_IO, resolve};
use crate::call::CallCtx;
use crate::conv::fattr;
use crate::nfs3::*;
use crate::shared::Shared;

pub(super) async fn fsstat(shared: &Shared, ctx: &CallCtx, a: &FsstatArgs) -> Handled<FsstatRes> {
    let t = resolve(shared, ctx, &a.fsroot).await?;
    let attr = t.attr().await;
    Ok(match t.fs.statfs().await {
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
    })
}

pub(super) async fn fsinfo(shared: &Shared, ctx: &CallCtx, a: &FsinfoArgs) -> Handled<FsinfoRes> {
    let t = resolve(shared, ctx, &a.fsroot).await?;
    let attr = t.attr().await;
    Ok(Res3::Ok(FsinfoResOk {
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
    }))
}

pub(super) async fn pathconf(
    shared: &Shared,
    ctx: &CallCtx,
    a: &PathconfArgs,
) -> Handled<PathconfRes> {
    let t = resolve(shared, ctx, &a.object).await?;
    let attr = t.attr().await;
    Ok(Res3::Ok(PathconfResOk {
        obj_attributes: attr.as_ref().map(fattr),
        linkmax: dittofs_vfs::LINK_MAX,
        name_max: dittofs_vfs::NAME_MAX as u32,
        no_trunc: true,
        chown_restricted: true,
        case_insensitive: false,
        case_preserving: true,
    }))
}
