//! NFSv3 data procedures: READ, WRITE, COMMIT (RFC 1813 sections 3.3.6, 3.3.7, 3.3.21;
//! codecs in `nfs3::io`). READ data goes out as its own record part, not copied into
//! the reply buffer; WRITE and COMMIT return the server's write verifier (new at every
//! start, so clients resend uncommitted UNSTABLE writes after a restart).

use super::{Handled, MAX_IO, resolve, status_outcome, target};
use crate::call::{CallCtx, Outcome};
use crate::conv::{fattr, wcc};
use crate::nfs3::*;
use crate::rpc::encode_success;
use crate::shared::Shared;
use crate::xdr::XdrEncode;
use bytes::{Bytes, BytesMut};
use dittofs_vfs::state::BreakCause;
use dittofs_vfs::{Attr, Stability};

pub(super) async fn read(shared: &Shared, ctx: &CallCtx, xid: u32, a: &ReadArgs) -> Outcome {
    let fail = |st: NfsStat3, attr: Option<Attr>| {
        let r: ReadRes = Res3::Fail(
            st,
            ReadResFail {
                file_attributes: attr.as_ref().map(fattr),
            },
        );
        status_outcome(xid, st, &r)
    };
    let t = match target(shared, ctx, &a.file).await {
        Ok(t) => t,
        Err(e) => return fail(NfsStat3::from(&e), None),
    };
    if let Err(st) = super::recall(shared, ctx, &t, t.ino, BreakCause::Read) {
        return fail(st, None);
    }
    let count = a.count.min(MAX_IO);
    match t.fs.read(&t.cred, t.ino, a.offset, count).await {
        Ok((data, eof, attr)) => {
            shared.metrics.bytes_read.inc_by(data.len() as u64);
            let ok = ReadResOk {
                file_attributes: Some(fattr(&attr)),
                count: data.len() as u32,
                eof,
                data,
            };
            Outcome {
                reply: read_reply(xid, &ok),
                error: None,
            }
        }
        Err(e) => fail(NfsStat3::from(&e), t.attr().await),
    }
}

/// A successful READ reply as record parts: header, the data itself, XDR padding.
fn read_reply(xid: u32, ok: &ReadResOk) -> Vec<Bytes> {
    let mut head = BytesMut::with_capacity(160);
    encode_success(&mut head, xid);
    NfsStat3::Ok.encode(&mut head);
    ok.encode_head(&mut head);
    let pad = ok.padding();
    let mut parts = vec![head.freeze(), ok.data.clone()];
    if !pad.is_empty() {
        parts.push(Bytes::from_static(pad));
    }
    parts
}

pub(super) async fn write(shared: &Shared, ctx: &CallCtx, a: WriteArgs) -> Handled<WriteRes> {
    let t = resolve(shared, ctx, &a.file).await?;
    let before = t.attr().await;
    if (a.count as usize) > a.data.len() {
        return Err(Res3::Fail(
            NfsStat3::Inval,
            WriteResFail {
                file_wcc: wcc(before.as_ref(), before.as_ref()),
            },
        ));
    }
    super::recall_delegations(shared, ctx, &t, t.ino, BreakCause::Write)?;
    let data = a.data.slice(..a.count as usize);
    let stability = match a.stable {
        StableHow::Unstable => Stability::Unstable,
        StableHow::DataSync => Stability::DataSync,
        StableHow::FileSync => Stability::FileSync,
    };
    Ok(
        match t.fs.write(&t.cred, t.ino, a.offset, data, stability).await {
            Ok(w) => {
                shared.metrics.bytes_written.inc_by(u64::from(w.count));
                Res3::Ok(WriteResOk {
                    file_wcc: wcc(before.as_ref(), Some(&w.attr)),
                    count: w.count,
                    committed: a.stable,
                    verf: shared.write_verifier,
                })
            }
            Err(e) => Res3::Fail(
                NfsStat3::from(&e),
                WriteResFail {
                    file_wcc: t.wcc_since(before).await,
                },
            ),
        },
    )
}

pub(super) async fn commit(shared: &Shared, ctx: &CallCtx, a: &CommitArgs) -> Handled<CommitRes> {
    let t = resolve(shared, ctx, &a.file).await?;
    let before = t.attr().await;
    Ok(match t.fs.commit_writes(t.ino).await {
        Ok(after) => Res3::Ok(CommitResOk {
            file_wcc: wcc(before.as_ref(), Some(&after)),
            verf: shared.write_verifier,
        }),
        Err(e) => Res3::Fail(
            NfsStat3::from(&e),
            CommitResFail {
                file_wcc: wcc(before.as_ref(), before.as_ref()),
            },
        ),
    })
}
