//! `dfsctl share create|edit|list|show|remove`.

use super::Ctx;
use crate::cli::{ShareCommand, ShareCreateArgs, ShareEditArgs};
use crate::error::CliError;
use crate::output::{RemovedView, emit, removed_text, share_text, shares_text};
use crate::spec::ShareSpec;
use dittofs_proto::v1 as pb;

pub(super) async fn run(ctx: &mut Ctx, cmd: ShareCommand) -> Result<(), CliError> {
    match cmd {
        ShareCommand::Create(a) => {
            let share = create_request(&a);
            let created = ctx
                .conn()
                .await?
                .call(
                    pb::CreateShareRequest { share: Some(share) },
                    |mut c, r| async move { c.create_share(r).await },
                )
                .await?;
            emit(ctx.format(), &ShareSpec::from(&created), |v| {
                format!("share {:?} created\n", v.name)
            })
        }
        ShareCommand::Edit(a) => {
            let req = edit_request(&a)?;
            if req.trash_enabled == Some(false) {
                eprintln!(
                    "dfsctl: warning: disabling the recycle bin of {:?} permanently deletes everything in it",
                    a.name
                );
            }
            let edited = ctx
                .conn()
                .await?
                .call(req, |mut c, r| async move { c.edit_share(r).await })
                .await?;
            emit(ctx.format(), &ShareSpec::from(&edited), |v| {
                format!("share {:?} updated\n", v.name)
            })
        }
        ShareCommand::List => {
            let resp = ctx
                .conn()
                .await?
                .call(pb::ListSharesRequest {}, |mut c, r| async move {
                    c.list_shares(r).await
                })
                .await?;
            let views: Vec<ShareSpec> = resp.shares.iter().map(Into::into).collect();
            emit(ctx.format(), &views, |v| shares_text(v))
        }
        ShareCommand::Show { name } => {
            let share = ctx
                .conn()
                .await?
                .call(pb::GetShareRequest { name }, |mut c, r| async move {
                    c.get_share(r).await
                })
                .await?;
            emit(ctx.format(), &ShareSpec::from(&share), share_text)
        }
        ShareCommand::Permission(c) => super::users::permission(ctx, c).await,
        ShareCommand::Remove { name } => {
            let resp = ctx
                .conn()
                .await?
                .call(
                    pb::RemoveShareRequest { name: name.clone() },
                    |mut c, r| async move { c.remove_share(r).await },
                )
                .await?;
            let view = RemovedView {
                kind: "share".into(),
                name,
                removed: true,
                applied_generation: resp.applied_generation,
            };
            emit(ctx.format(), &view, removed_text)
        }
    }
}

/// The share of `share create`; absent flags take the documented defaults (clap fills them).
fn create_request(a: &ShareCreateArgs) -> pb::Share {
    pb::Share {
        name: a.name.clone(),
        metadata: a.metadata.clone(),
        local: a.local.clone(),
        remote: a.remote.clone().unwrap_or_default(),
        durability: a.durability.clone(),
        read_only: a.read_only,
        squash: a.squash.as_api().into(),
        anon_uid: a.anon_uid,
        anon_gid: a.anon_gid,
        allowed_clients: a.allowed_clients.clone(),
        secure: a.secure,
        root_mode: a.root_mode,
        chunking: a.chunking,
        trash: a.enable_trash.then(|| pb::TrashConfig {
            enabled: true,
            retention_days: a.trash_retention_days.unwrap_or(0),
            max_size_bytes: a.trash_max_size.unwrap_or(0),
            exclude: a.trash_exclude.clone(),
        }),
    }
}

/// The request of `share edit`: only the given flags are set. Refuses an edit that
/// changes nothing, and disabling the recycle bin without --force.
fn edit_request(a: &ShareEditArgs) -> Result<pb::EditShareRequest, CliError> {
    let req = pb::EditShareRequest {
        name: a.name.clone(),
        read_only: a.read_only,
        squash: a.squash.map(|s| s.as_api().to_string()),
        anon_uid: a.anon_uid,
        anon_gid: a.anon_gid,
        set_allowed_clients: !a.allowed_clients.is_empty(),
        allowed_clients: a.allowed_clients.clone(),
        trash_enabled: a.enable_trash,
        trash_retention_days: a.trash_retention_days,
        trash_max_size_bytes: a.trash_max_size,
        set_trash_exclude: a.clear_trash_exclude || !a.trash_exclude.is_empty(),
        trash_exclude: a.trash_exclude.clone(),
        chunking: a.chunking,
        remote: a.remote.clone(),
        secure: a.secure,
    };
    let changes_something = req.read_only.is_some()
        || req.squash.is_some()
        || req.anon_uid.is_some()
        || req.anon_gid.is_some()
        || req.set_allowed_clients
        || req.secure.is_some()
        || req.trash_enabled.is_some()
        || req.trash_retention_days.is_some()
        || req.trash_max_size_bytes.is_some()
        || req.set_trash_exclude
        || req.chunking.is_some()
        || req.remote.is_some();
    if !changes_something {
        return Err(CliError::Usage(format!(
            "nothing to change for share {:?}: give at least one setting (see `dfsctl share edit --help`)",
            a.name
        )));
    }
    if req.trash_enabled == Some(false) && !a.force {
        return Err(CliError::Usage(format!(
            "--enable-trash false permanently deletes everything in the recycle bin of {:?}; \
             add --force to confirm",
            a.name
        )));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use dittofs_proto::defaults::SHARE_DEFAULTS;

    fn edit(args: &[&str]) -> ShareEditArgs {
        let mut argv = vec!["dfsctl", "share", "edit", "/x"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Share(ShareCommand::Edit(a)) => a,
            _ => panic!("not an edit"),
        }
    }

    #[test]
    fn create_with_defaults() {
        let cli = Cli::try_parse_from([
            "dfsctl",
            "share",
            "create",
            "--name",
            "/x",
            "--metadata",
            "m",
            "--local",
            "l",
        ])
        .unwrap();
        let Command::Share(ShareCommand::Create(a)) = cli.command else {
            panic!("not a create")
        };
        let s = create_request(&a);
        // The flags' defaults are the ones the server and its config file use.
        let bare = pb::Share {
            name: "/x".into(),
            metadata: "m".into(),
            local: "l".into(),
            ..Default::default()
        };
        assert_eq!(s, SHARE_DEFAULTS.fill(bare));
        assert_eq!(s.squash, "root_to_anonymous");
        assert_eq!((s.anon_uid, s.anon_gid, s.root_mode), (65534, 65534, 0o777));
        assert_eq!(s.allowed_clients, ["*"]);
        assert_eq!(s.remote, "");
        assert!(s.trash.is_none());
        assert!(s.chunking.is_none());
        assert!(!s.secure, "any source port unless --secure");
    }

    #[test]
    fn edit_sets_only_given_fields() {
        let r = edit_request(&edit(&["--read-only", "true"])).unwrap();
        assert_eq!(r.read_only, Some(true));
        assert!(r.squash.is_none() && r.remote.is_none() && r.trash_enabled.is_none());
        assert!(!r.set_allowed_clients && !r.set_trash_exclude);

        let r = edit_request(&edit(&["--allowed-clients", "a,b", "--remote", ""])).unwrap();
        assert!(r.set_allowed_clients);
        assert_eq!(r.allowed_clients, ["a", "b"]);
        assert_eq!(r.remote.as_deref(), Some(""));

        let r = edit_request(&edit(&["--clear-trash-exclude"])).unwrap();
        assert!(r.set_trash_exclude);
        assert!(r.trash_exclude.is_empty());

        let r = edit_request(&edit(&[
            "--trash-exclude",
            "*.tmp",
            "--trash-max-size",
            "512M",
        ]))
        .unwrap();
        assert_eq!(r.trash_exclude, ["*.tmp"]);
        assert_eq!(r.trash_max_size_bytes, Some(512 << 20));

        let r = edit_request(&edit(&["--chunking", "64K/256K/1M", "--squash", "none"])).unwrap();
        assert_eq!(r.chunking.map(|c| c.min), Some(64 << 10));
        assert_eq!(r.squash.as_deref(), Some("none"));
        assert!(r.secure.is_none());

        let r = edit_request(&edit(&["--secure", "true"])).unwrap();
        assert_eq!(r.secure, Some(true));
        let r = edit_request(&edit(&["--secure", "false"])).unwrap();
        assert_eq!(r.secure, Some(false));
    }

    #[test]
    fn edit_refusals() {
        let e = edit_request(&edit(&[])).unwrap_err();
        assert!(matches!(e, CliError::Usage(_)));
        let e = edit_request(&edit(&["--force"])).unwrap_err();
        assert!(e.to_string().contains("nothing to change"), "{e}");
        let e = edit_request(&edit(&["--enable-trash", "false"])).unwrap_err();
        assert!(matches!(e, CliError::Usage(_)));
        assert!(e.to_string().contains("--force"), "{e}");
        assert!(e.to_string().contains("permanently"), "{e}");
        let r = edit_request(&edit(&["--enable-trash", "false", "--force"])).unwrap();
        assert_eq!(r.trash_enabled, Some(false));
        assert!(edit_request(&edit(&["--enable-trash", "true"])).is_ok());
    }
}
