//! `dfsctl status`, `dfsctl version` and `dfsctl completion`.

use super::Ctx;
use crate::cli::Cli;
use crate::error::CliError;
use crate::output::{StatusView, VersionView, emit, status_text, version_text};
use clap::CommandFactory;
use dittofs_proto::v1::GetStatusRequest;

/// GetStatus, rendered.
pub(super) async fn status(ctx: &mut Ctx) -> Result<(), CliError> {
    let s = ctx
        .conn()
        .await?
        .call(GetStatusRequest {}, |mut c, r| async move {
            c.get_status(r).await
        })
        .await?;
    emit(ctx.format(), &StatusView::from(&s), status_text)
}

/// The client version, plus the server's when it answers. Never fails because of the
/// server: an unreachable or refusing server is reported in the output.
pub(super) async fn version(ctx: &mut Ctx) -> Result<(), CliError> {
    let (server, answer) = match ctx.conn().await {
        Ok(conn) => (
            conn.server().to_string(),
            conn.call(GetStatusRequest {}, |mut c, r| async move {
                c.get_status(r).await
            })
            .await,
        ),
        Err(e) => {
            let server = ctx
                .resolve()
                .map(|r| r.server)
                .unwrap_or_else(|_| "(unresolved)".into());
            (server, Err(e))
        }
    };
    let (server_version, server_error) = match answer {
        Ok(s) => (Some(s.version), None),
        // Keep the first line only: the hints are noise here.
        Err(e) => (
            None,
            Some(e.to_string().lines().next().unwrap_or_default().to_string()),
        ),
    };
    let view = VersionView {
        client_version: env!("CARGO_PKG_VERSION").to_string(),
        server,
        server_version,
        server_error,
    };
    emit(ctx.format(), &view, version_text)
}

/// Prints a completion script for `shell`.
pub(super) fn completion(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "dfsctl", &mut buf);
    crate::output::print(&String::from_utf8_lossy(&buf))
}
