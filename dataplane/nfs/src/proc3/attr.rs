//! NFSv3 attribute procedures: GETATTR, SETATTR (with its ctime guard), ACCESS (RFC 1813
//! sections 3.3.1, 3.3.2, 3.3.4; codecs in `nfs3::attr`).

use super::{Handled, resolve};
use crate::call::CallCtx;
use crate::conv::{fattr, sattr, time_from_wire, wcc};
use crate::nfs3::*;
use crate::shared::Shared;
use dittofs_vfs::state::BreakCause;

pub(super) async fn getattr(
    shared: &Shared,
    ctx: &CallCtx,
    a: &GetattrArgs,
) -> Handled<GetattrRes> {
    let t = resolve(shared, ctx, &a.object).await?;
    super::recall_delegations(shared, ctx, &t, t.ino, BreakCause::Read)?;
    let attr = t.fs.getattr(t.ino).await;
    Ok(match attr {
        Ok(attr) => Res3::Ok(GetattrResOk {
            obj_attributes: fattr(&attr),
        }),
        Err(e) => Res3::Fail(NfsStat3::from(&e), ()),
    })
}

pub(super) async fn setattr(
    shared: &Shared,
    ctx: &CallCtx,
    a: &SetattrArgs,
) -> Handled<SetattrRes> {
    let t = resolve(shared, ctx, &a.object).await?;
    let before = t.attr().await;
    let guard = a.guard.map(time_from_wire);
    let sa = sattr(&a.new_attributes);
    let cause = match sa.size {
        Some(_) => BreakCause::SetSize,
        None => BreakCause::SetAttr,
    };
    super::recall_delegations(shared, ctx, &t, t.ino, cause)?;
    Ok(match t.fs.setattr(&t.cred, t.ino, &sa, guard).await {
        Ok(after) => Res3::Ok(SetattrResOk {
            obj_wcc: wcc(before.as_ref(), Some(&after)),
        }),
        Err(e) => Res3::Fail(
            NfsStat3::from(&e),
            SetattrResFail {
                obj_wcc: t.wcc_since(before).await,
            },
        ),
    })
}

pub(super) async fn access(shared: &Shared, ctx: &CallCtx, a: &AccessArgs) -> Handled<AccessRes> {
    let t = resolve(shared, ctx, &a.object).await?;
    // NFSv3 has only the six bits of RFC 1813 (not the core's extended attribute bits).
    let asked = a.access & dittofs_vfs::access::ALL;
    Ok(match t.fs.access(&t.cred, t.ino, asked).await {
        Ok((granted, attr)) => Res3::Ok(AccessResOk {
            obj_attributes: Some(fattr(&attr)),
            access: granted,
        }),
        Err(e) => Res3::Fail(NfsStat3::from(&e), AccessResFail::default()),
    })
}
