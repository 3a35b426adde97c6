//! `dfsctl user ...`, `dfsctl group ...` and `dfsctl share permission ...` (the server's
//! identity store).
//!
//! Invariants:
//! - A password is read (stdin, file, flag or prompt) and checked before connecting, sent
//!   once in the request and never printed; a password given as a flag draws a warning
//!   (it is visible in `ps`).
//! - Outputs are built from the server's replies, which carry no password or hash.

use super::Ctx;
use crate::cli::{Grantee, GroupCommand, PasswordArgs, PermissionCommand, UserCommand};
use crate::error::CliError;
use crate::output::{
    GroupView, PermissionsView, RemovedView, UserView, emit, groups_text, permissions_text,
    removed_text, user_text, users_text,
};
use crate::secret::{self, SecretInput};
use dittofs_proto::v1 as pb;
use std::io::{BufRead, IsTerminal};

/// The password of `user` from the one form given, or the interactive prompt.
pub(crate) fn read_password(a: &PasswordArgs, user: &str) -> Result<String, CliError> {
    let forms = [
        a.password.is_some(),
        a.password_file.is_some(),
        a.password_stdin,
    ];
    if forms.iter().filter(|f| **f).count() > 1 {
        return Err(CliError::Usage(
            "give the password one way: --password-stdin, --password-file or --password".into(),
        ));
    }
    if a.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Usage(format!("cannot read the password from stdin: {e}")))?;
        return nonempty(
            line.trim_end_matches(['\n', '\r']).to_owned(),
            "standard input",
        );
    }
    let mut inputs = Vec::new();
    if let Some(value) = a.password.clone() {
        eprintln!(
            "dfsctl: warning: --password is visible to every user of this host in `ps`; prefer --password-stdin or --password-file"
        );
        inputs.push(SecretInput::Value {
            origin: "--password".into(),
            value,
        });
    }
    if let Some(path) = a.password_file.clone() {
        inputs.push(SecretInput::File {
            origin: "--password-file".into(),
            path,
        });
    }
    match secret::resolve("password", &inputs)? {
        Some(s) => nonempty(s.value, &s.origin),
        None => prompt(user),
    }
}

fn nonempty(p: String, origin: &str) -> Result<String, CliError> {
    if p.is_empty() {
        Err(CliError::Usage(format!(
            "the password from {origin} is empty"
        )))
    } else {
        Ok(p)
    }
}

/// Asks twice on the terminal (not echoed).
fn prompt(user: &str) -> Result<String, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "no password given: use --password-stdin or --password-file (standard input is not a terminal to prompt on)".into(),
        ));
    }
    let ask = |q: &str| {
        rpassword::prompt_password(q)
            .map_err(|e| CliError::Usage(format!("cannot read the password: {e}")))
    };
    let first = ask(&format!("Password for {user}: "))?;
    if ask("Again: ")? != first {
        return Err(CliError::Usage("the passwords do not match".into()));
    }
    nonempty(first, "the prompt")
}

fn removed(kind: &str, name: String, generation: u64) -> RemovedView {
    RemovedView {
        kind: kind.into(),
        name,
        removed: true,
        applied_generation: generation,
    }
}

pub(super) async fn user(ctx: &mut Ctx, cmd: UserCommand) -> Result<(), CliError> {
    let fmt = ctx.format();
    match cmd {
        UserCommand::Create(a) => {
            let password = read_password(&a.password, &a.name)?;
            let spec = pb::UserSpec {
                name: a.name,
                uid: a.uid,
                gid: a.gid,
                groups: a.groups,
                disabled: a.disabled,
                password,
            };
            let u = ctx
                .conn()
                .await?
                .call(
                    pb::CreateUserRequest { user: Some(spec) },
                    |mut c, r| async move { c.create_user(r).await },
                )
                .await?;
            emit(fmt, &UserView::from(&u), |v| {
                format!("user {:?} created (uid {})\n", v.name, v.uid)
            })
        }
        UserCommand::List => {
            let r = ctx
                .conn()
                .await?
                .call(pb::ListUsersRequest {}, |mut c, r| async move {
                    c.list_users(r).await
                })
                .await?;
            let v: Vec<UserView> = r.users.iter().map(Into::into).collect();
            emit(fmt, &v, |v| users_text(v))
        }
        UserCommand::Get { name } => {
            let u = ctx
                .conn()
                .await?
                .call(pb::GetUserRequest { name }, |mut c, r| async move {
                    c.get_user(r).await
                })
                .await?;
            emit(fmt, &UserView::from(&u), user_text)
        }
        UserCommand::Edit(a) => {
            let req = pb::EditUserRequest {
                name: a.name,
                uid: a.uid,
                gid: a.gid,
                set_groups: a.groups.is_some(),
                groups: split_names(a.groups.as_deref()),
                enabled: a.enabled,
            };
            if req.uid.is_none() && req.gid.is_none() && !req.set_groups && req.enabled.is_none() {
                return Err(CliError::Usage(
                    "nothing to change: give --uid, --gid, --groups or --enabled".into(),
                ));
            }
            let u = ctx
                .conn()
                .await?
                .call(req, |mut c, r| async move { c.edit_user(r).await })
                .await?;
            emit(fmt, &UserView::from(&u), |v| {
                format!("user {:?} updated\n", v.name)
            })
        }
        UserCommand::Remove { name } => {
            let r = ctx
                .conn()
                .await?
                .call(
                    pb::RemoveUserRequest { name: name.clone() },
                    |mut c, r| async move { c.remove_user(r).await },
                )
                .await?;
            emit(
                fmt,
                &removed("user", name, r.applied_generation),
                removed_text,
            )
        }
        UserCommand::Password { name, password } => {
            let password = read_password(&password, &name)?;
            let u = ctx
                .conn()
                .await?
                .call(
                    pb::SetPasswordRequest { name, password },
                    |mut c, r| async move { c.set_password(r).await },
                )
                .await?;
            emit(fmt, &UserView::from(&u), |v| {
                format!("password of user {:?} changed\n", v.name)
            })
        }
    }
}

/// `a,b` -> [a, b]; `''` -> [].
fn split_names(s: Option<&str>) -> Vec<String> {
    s.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) async fn group(ctx: &mut Ctx, cmd: GroupCommand) -> Result<(), CliError> {
    let fmt = ctx.format();
    let members = |name: String, add: Vec<String>, remove: Vec<String>| {
        pb::EditGroupMembersRequest { name, add, remove }
    };
    let req = match cmd {
        GroupCommand::Create { name, gid } => {
            let g = ctx
                .conn()
                .await?
                .call(
                    pb::CreateGroupRequest { name, gid },
                    |mut c, r| async move { c.create_group(r).await },
                )
                .await?;
            return emit(fmt, &GroupView::from(&g), |v| {
                format!("group {:?} created (gid {})\n", v.name, v.gid)
            });
        }
        GroupCommand::List => {
            let r = ctx
                .conn()
                .await?
                .call(pb::ListGroupsRequest {}, |mut c, r| async move {
                    c.list_groups(r).await
                })
                .await?;
            let v: Vec<GroupView> = r.groups.iter().map(Into::into).collect();
            return emit(fmt, &v, |v| groups_text(v));
        }
        GroupCommand::Remove { name } => {
            let r = ctx
                .conn()
                .await?
                .call(
                    pb::RemoveGroupRequest { name: name.clone() },
                    |mut c, r| async move { c.remove_group(r).await },
                )
                .await?;
            return emit(
                fmt,
                &removed("group", name, r.applied_generation),
                removed_text,
            );
        }
        GroupCommand::AddMember { group, users } => members(group, users, Vec::new()),
        GroupCommand::RemoveMember { group, users } => members(group, Vec::new(), users),
    };
    let g = ctx
        .conn()
        .await?
        .call(req, |mut c, r| async move { c.edit_group_members(r).await })
        .await?;
    emit(fmt, &GroupView::from(&g), |v| {
        groups_text(std::slice::from_ref(v))
    })
}

fn names(who: Grantee) -> (String, String) {
    (who.user.unwrap_or_default(), who.group.unwrap_or_default())
}

pub(super) async fn permission(ctx: &mut Ctx, cmd: PermissionCommand) -> Result<(), CliError> {
    let fmt = ctx.format();
    let conn = ctx.conn().await?;
    let p = match cmd {
        PermissionCommand::Grant { share, who, level } => {
            let (user, group) = names(who);
            let req = pb::GrantSharePermissionRequest {
                share,
                user,
                group,
                level: level.as_str().into(),
            };
            conn.call(
                req,
                |mut c, r| async move { c.grant_share_permission(r).await },
            )
            .await?
        }
        PermissionCommand::Revoke { share, who } => {
            let (user, group) = names(who);
            let req = pb::RevokeSharePermissionRequest { share, user, group };
            conn.call(
                req,
                |mut c, r| async move { c.revoke_share_permission(r).await },
            )
            .await?
        }
        PermissionCommand::List { share } => {
            conn.call(
                pb::GetSharePermissionsRequest { share },
                |mut c, r| async move { c.get_share_permissions(r).await },
            )
            .await?
        }
        PermissionCommand::Default { share, level } => {
            let req = pb::SetShareDefaultLevelRequest {
                share,
                level: level.as_str().into(),
            };
            conn.call(
                req,
                |mut c, r| async move { c.set_share_default_level(r).await },
            )
            .await?
        }
    };
    emit(fmt, &PermissionsView::from(&p), permissions_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn args(flag: Option<&str>, file: Option<&std::path::Path>, stdin: bool) -> PasswordArgs {
        PasswordArgs {
            password_stdin: stdin,
            password_file: file.map(Into::into),
            password: flag.map(Into::into),
        }
    }

    #[test]
    fn password_forms() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::File::create(&f)
            .unwrap()
            .write_all(b"from-file\n")
            .unwrap();
        assert_eq!(
            read_password(&args(None, Some(&f), false), "a").unwrap(),
            "from-file"
        );
        assert_eq!(
            read_password(&args(Some("flag"), None, false), "a").unwrap(),
            "flag"
        );
        let two = read_password(&args(Some("x"), Some(&f), false), "a").unwrap_err();
        assert!(two.to_string().contains("one way"), "{two}");
        let empty = read_password(&args(Some(""), None, false), "a");
        assert!(empty.is_err(), "an empty flag is no password");
        assert_eq!(split_names(Some("a, b,,")), vec!["a", "b"]);
        assert!(split_names(Some("")).is_empty());
    }
}
