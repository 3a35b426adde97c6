//! `dfsctl trash list|restore|status|empty` (the per-share recycle bin).

use super::Ctx;
use crate::cli::TrashCommand;
use crate::error::CliError;
use crate::output::{
    EmptiedView, RestoredView, TrashListView, TrashStatusView, emit, trash_list_text,
    trash_status_text,
};
use crate::parse::human_size;
use dittofs_proto::v1 as pb;

pub(super) async fn run(ctx: &mut Ctx, cmd: TrashCommand) -> Result<(), CliError> {
    match cmd {
        TrashCommand::List { share, limit } => {
            let resp = ctx
                .conn()
                .await?
                .call(
                    pb::ListTrashRequest {
                        share: share.clone(),
                        limit: limit.unwrap_or(0),
                    },
                    |mut c, r| async move { c.list_trash(r).await },
                )
                .await?;
            let view = TrashListView {
                share,
                items: resp.items.iter().map(Into::into).collect(),
                truncated: resp.truncated,
            };
            emit(ctx.format(), &view, trash_list_text)
        }
        TrashCommand::Restore {
            share,
            path,
            to,
            overwrite,
        } => {
            let resp = ctx
                .conn()
                .await?
                .call(
                    pb::RestoreTrashRequest {
                        share: share.clone(),
                        path: path.clone(),
                        to: to.unwrap_or_default(),
                        overwrite,
                    },
                    |mut c, r| async move { c.restore_trash(r).await },
                )
                .await?;
            let view = RestoredView {
                share,
                path,
                restored_to: resp.restored_to,
            };
            emit(ctx.format(), &view, |v| {
                format!(
                    "restored {:?} to {:?} in share {:?}\n",
                    v.path, v.restored_to, v.share
                )
            })
        }
        TrashCommand::Status { share } => {
            let resp = ctx
                .conn()
                .await?
                .call(pb::TrashStatusRequest { share }, |mut c, r| async move {
                    c.trash_status(r).await
                })
                .await?;
            emit(
                ctx.format(),
                &TrashStatusView::from(&resp),
                trash_status_text,
            )
        }
        TrashCommand::Empty { share, force } => {
            if !force {
                return Err(CliError::Usage(format!(
                    "emptying the recycle bin of {share:?} deletes its items permanently; \
                     add --force to confirm"
                )));
            }
            let resp = ctx
                .conn()
                .await?
                .call(
                    pb::EmptyTrashRequest {
                        share: share.clone(),
                        force: true,
                    },
                    |mut c, r| async move { c.empty_trash(r).await },
                )
                .await?;
            let view = EmptiedView {
                share,
                items_removed: resp.items_removed,
                bytes_freed: resp.bytes_freed,
            };
            emit(ctx.format(), &view, |v| {
                format!(
                    "emptied the recycle bin of {:?}: {} items removed, {} freed\n",
                    v.share,
                    v.items_removed,
                    human_size(v.bytes_freed)
                )
            })
        }
    }
}
