//! `dfsctl config get` and `dfsctl config apply -f FILE [--dry-run]`.
//!
//! The file format is `spec::DesiredStateSpec`. Generation rule of `apply`: the file's
//! `generation` when non-zero, else the server's current generation + 1; so a file
//! saved with `config get` and applied unchanged is a no-op.

use super::Ctx;
use crate::cli::{ConfigCommand, OutputFormat};
use crate::error::CliError;
use crate::output::{ApplyView, ChangeView, apply_text, emit, render};
use crate::spec::DesiredStateSpec;
use dittofs_proto::v1 as pb;
use std::io::Read;
use std::path::Path;

pub(super) async fn run(ctx: &mut Ctx, cmd: ConfigCommand) -> Result<(), CliError> {
    match cmd {
        ConfigCommand::Get => {
            let state = ctx
                .conn()
                .await?
                .call(pb::GetConfigRequest {}, |mut c, r| async move {
                    c.get_config(r).await
                })
                .await?;
            let spec = DesiredStateSpec::from(&state);
            // Text would be a lossy summary; YAML is the readable form of this document.
            let format = match ctx.explicit_format() {
                Some(OutputFormat::Json) => OutputFormat::Json,
                _ => OutputFormat::Yaml,
            };
            crate::output::print(&render(format, &spec, |_| String::new())?)
        }
        ConfigCommand::Apply { file, dry_run } => {
            let spec = read_spec(&file)?;
            let mut state = pb::DesiredState::from(&spec);
            let conn = ctx.conn().await?;
            if state.generation == 0 {
                let current = conn
                    .call(pb::GetConfigRequest {}, |mut c, r| async move {
                        c.get_config(r).await
                    })
                    .await?;
                state.generation = current.generation.saturating_add(1);
            }
            let generation = state.generation;
            let resp = conn
                .call(
                    pb::ApplyConfigRequest {
                        state: Some(state),
                        dry_run,
                    },
                    |mut c, r| async move { c.apply_config(r).await },
                )
                .await?;
            let view = ApplyView {
                dry_run,
                generation,
                applied_generation: resp.applied_generation,
                restart_required: resp.restart_required,
                changes: resp
                    .changes
                    .iter()
                    .map(|c| ChangeView {
                        kind: c.kind.clone(),
                        name: c.name.clone(),
                        action: c.action.clone(),
                        detail: c.detail.clone(),
                    })
                    .collect(),
            };
            emit(ctx.format(), &view, apply_text)
        }
    }
}

/// Reads and parses a desired-state file (`-` = stdin).
fn read_spec(path: &Path) -> Result<DesiredStateSpec, CliError> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?
    };
    DesiredStateSpec::parse(&text).map_err(|e| {
        CliError::Usage(format!(
            "{} is not a valid desired state: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.yaml");
        std::fs::write(&p, "generation: 4\nshares: []\n").unwrap();
        assert_eq!(read_spec(&p).unwrap().generation, 4);
        std::fs::write(&p, "genration: 4\n").unwrap();
        let e = read_spec(&p).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("genration"), "{e}");
        assert_eq!(
            read_spec(&dir.path().join("none")).unwrap_err().exit_code(),
            2
        );
    }
}
