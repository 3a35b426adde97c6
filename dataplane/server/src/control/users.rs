//! The identity calls of the control API (users, groups, share permissions) and the
//! identity part of a desired state: conversions between `dittofs.control.v1` messages
//! and [`crate::identity`], and the read-modify-persist of each call.
//!
//! Invariants:
//! - No reply built here carries a password or a hash: [`user_to_pb`] reports only
//!   whether a password is set, and [`identity_to_pb`] leaves every password empty.
//! - Passwords are hashed off the async threads (argon2 costs tens of milliseconds) and
//!   before the store's lock is taken.
//! - Every successful change pushes the new access tables and id names to the adapters
//!   (`Runtime::refresh_exports`), so a grant, a disabled user or a new name (NFSv4
//!   `name@domain` owners) takes effect at the next call.

use crate::error::{ControlError, ControlResult};
use crate::identity::{
    Grantee, Group, Identity, IdentityError, Password, PasswordHashes, SharePermissions, User,
    check_name,
};
use crate::runtime::Runtime;
use dittofs_proto::v1 as pb;
use dittofs_vfs::AccessLevel;

/// Hashes a password on the blocking pool.
async fn hash(user: &str, clear: String) -> ControlResult<PasswordHashes> {
    let p = Password::new(user, clear)?;
    tokio::task::spawn_blocking(move || PasswordHashes::of(&p))
        .await
        .map_err(|e| ControlError::Internal(format!("hashing a password: {e}")))?
        .map_err(ControlError::from)
}

pub fn user_to_pb(name: &str, u: &User) -> pb::User {
    pb::User {
        name: name.to_owned(),
        uid: u.uid,
        gid: u.gid,
        groups: u.groups.clone(),
        enabled: u.enabled,
        has_password: u.hashes.is_some(),
    }
}

fn group_to_pb(id: &Identity, name: &str, g: &Group) -> pb::Group {
    pb::Group {
        name: name.to_owned(),
        gid: g.gid,
        members: id.members(name),
    }
}

fn perms_to_pb(share: &str, p: &SharePermissions) -> pb::SharePermissions {
    let grants = |kind: &str, m: &std::collections::BTreeMap<String, AccessLevel>| {
        m.iter()
            .map(|(n, l)| pb::Grant {
                kind: kind.to_owned(),
                name: n.clone(),
                level: l.as_str().to_owned(),
            })
            .collect::<Vec<_>>()
    };
    let mut all = grants("user", &p.users);
    all.extend(grants("group", &p.groups));
    pb::SharePermissions {
        share: share.to_owned(),
        default_level: p.default_or_rw().as_str().to_owned(),
        grants: all,
    }
}

/// The identity as a desired-state section: no passwords.
pub fn identity_to_pb(id: &Identity) -> pb::IdentityState {
    pb::IdentityState {
        users: id
            .users
            .iter()
            .map(|(n, u)| pb::UserSpec {
                name: n.clone(),
                uid: Some(u.uid),
                gid: Some(u.gid),
                groups: u.groups.clone(),
                disabled: !u.enabled,
                password: String::new(),
            })
            .collect(),
        groups: id
            .groups
            .iter()
            .map(|(n, g)| group_to_pb(id, n, g))
            .collect(),
        permissions: id.shares.iter().map(|(s, p)| perms_to_pb(s, p)).collect(),
    }
}

fn level(s: &str) -> ControlResult<AccessLevel> {
    AccessLevel::parse(s).map_err(|e| IdentityError::Level(e).into())
}

/// A user of a request: ids given or picked, password hashed (`keep`: the hashes kept
/// when no password is given).
async fn user_from_spec(
    id: &Identity,
    spec: pb::UserSpec,
    keep: Option<PasswordHashes>,
) -> ControlResult<User> {
    check_name("user", &spec.name)?;
    let uid = match spec.uid {
        Some(u) => u,
        None => id.free_uid()?,
    };
    let hashes = match (spec.password.is_empty(), keep) {
        (true, Some(k)) => k,
        (false, Some(k)) if k.verify(&spec.password) => k,
        _ => hash(&spec.name, spec.password).await?,
    };
    Ok(User {
        uid,
        gid: spec.gid.unwrap_or(uid),
        groups: spec.groups,
        enabled: !spec.disabled,
        hashes: Some(hashes),
    })
}

/// The identity of an ApplyConfig: replaces the current one. A user without a password
/// keeps its stored hashes; permissions must name shares of `shares`.
pub async fn identity_from_pb(
    cur: &Identity,
    s: pb::IdentityState,
    shares: &[String],
) -> ControlResult<Identity> {
    let mut next = Identity::default();
    for g in s.groups {
        check_name("group", &g.name)?;
        if next
            .groups
            .insert(g.name.clone(), Group { gid: g.gid })
            .is_some()
        {
            return Err(IdentityError::GroupExists(g.name).into());
        }
    }
    for u in s.users {
        let keep = cur.users.get(&u.name).and_then(|c| c.hashes.clone());
        let name = u.name.clone();
        let user = user_from_spec(&next, u, keep).await?;
        if next.users.insert(name.clone(), user).is_some() {
            return Err(IdentityError::UserExists(name).into());
        }
    }
    for p in s.permissions {
        if !shares.contains(&p.share) {
            return Err(IdentityError::NoShare(p.share).into());
        }
        let mut perms = SharePermissions {
            default_level: (!p.default_level.is_empty())
                .then(|| level(&p.default_level))
                .transpose()?,
            ..Default::default()
        };
        for g in p.grants {
            let map = match g.kind.as_str() {
                "user" => &mut perms.users,
                "group" => &mut perms.groups,
                other => {
                    return Err(ControlError::Invalid(format!(
                        "share {:?}: grant kind {other:?} is neither \"user\" nor \"group\"",
                        p.share
                    )));
                }
            };
            map.insert(g.name, level(&g.level)?);
        }
        next.shares.insert(p.share, perms);
    }
    next.validate()?;
    Ok(next)
}

/// Added, changed and removed entries of two maps, as `Change`s of `kind`.
fn diff_map<V: PartialEq>(
    kind: &str,
    cur: &std::collections::BTreeMap<String, V>,
    next: &std::collections::BTreeMap<String, V>,
) -> Vec<pb::Change> {
    let change = |name: &String, action: &str| pb::Change {
        kind: kind.to_owned(),
        name: name.clone(),
        action: action.to_owned(),
        detail: String::new(),
    };
    let mut out: Vec<pb::Change> = next
        .iter()
        .filter_map(|(n, v)| match cur.get(n) {
            None => Some(change(n, "added")),
            Some(c) if c != v => Some(change(n, "changed")),
            Some(_) => None,
        })
        .collect();
    out.extend(
        cur.keys()
            .filter(|n| !next.contains_key(*n))
            .map(|n| change(n, "removed")),
    );
    out
}

/// What replacing `cur` by `next` changes (kinds "user", "group", "permissions"); a
/// password equal to the stored one is no change.
pub fn identity_changes(cur: &Identity, next: &Identity) -> Vec<pb::Change> {
    let mut out = diff_map("user", &cur.users, &next.users);
    out.extend(diff_map("group", &cur.groups, &next.groups));
    out.extend(diff_map("permissions", &cur.shares, &next.shares));
    out
}

/// Runs one change of the identity and pushes the result to the adapters.
fn change<T>(
    rt: &Runtime,
    f: impl FnOnce(&mut Identity) -> Result<T, IdentityError>,
) -> ControlResult<T> {
    let out = rt.identity().update(f)?;
    rt.refresh_exports();
    Ok(out)
}

pub async fn create_user(rt: &Runtime, spec: Option<pb::UserSpec>) -> ControlResult<pb::User> {
    let spec = spec.ok_or_else(|| ControlError::Invalid("user is required".into()))?;
    let name = spec.name.clone();
    if rt.identity().snapshot().users.contains_key(&name) {
        return Err(IdentityError::UserExists(name).into());
    }
    let user = user_from_spec(&rt.identity().snapshot(), spec, None).await?;
    let out = user_to_pb(&name, &user);
    change(rt, |id| {
        if id.users.contains_key(&name) {
            return Err(IdentityError::UserExists(name.clone()));
        }
        id.users.insert(name.clone(), user);
        Ok(())
    })?;
    tracing::info!(user = %name, uid = out.uid, "user created");
    Ok(out)
}

pub fn get_user(rt: &Runtime, name: &str) -> ControlResult<pb::User> {
    let id = rt.identity().snapshot();
    Ok(user_to_pb(name, id.user(name)?))
}

pub fn list_users(rt: &Runtime) -> pb::ListUsersResponse {
    let id = rt.identity().snapshot();
    pb::ListUsersResponse {
        users: id.users.iter().map(|(n, u)| user_to_pb(n, u)).collect(),
    }
}

pub fn edit_user(rt: &Runtime, req: pb::EditUserRequest) -> ControlResult<pb::User> {
    let user = change(rt, |id| {
        let u = id.user_mut(&req.name)?;
        if let Some(uid) = req.uid {
            u.uid = uid;
        }
        if let Some(gid) = req.gid {
            u.gid = gid;
        }
        if req.set_groups {
            u.groups = req.groups;
        }
        if let Some(e) = req.enabled {
            u.enabled = e;
        }
        Ok(u.clone())
    })?;
    tracing::info!(user = %req.name, enabled = user.enabled, "user edited");
    Ok(user_to_pb(&req.name, &user))
}

pub async fn set_password(rt: &Runtime, req: pb::SetPasswordRequest) -> ControlResult<pb::User> {
    rt.identity().snapshot().user(&req.name)?;
    let hashes = hash(&req.name, req.password).await?;
    let user = change(rt, |id| {
        let u = id.user_mut(&req.name)?;
        u.hashes = Some(hashes);
        Ok(u.clone())
    })?;
    tracing::info!(user = %req.name, "password changed");
    Ok(user_to_pb(&req.name, &user))
}

pub fn remove_user(rt: &Runtime, name: &str) -> ControlResult<()> {
    change(rt, |id| id.remove_user(name))?;
    tracing::info!(user = %name, "user removed");
    Ok(())
}

pub fn create_group(rt: &Runtime, req: pb::CreateGroupRequest) -> ControlResult<pb::Group> {
    check_name("group", &req.name)?;
    let g = change(rt, |id| {
        if id.groups.contains_key(&req.name) {
            return Err(IdentityError::GroupExists(req.name.clone()));
        }
        let g = Group {
            gid: match req.gid {
                Some(g) => g,
                None => id.free_gid()?,
            },
        };
        id.groups.insert(req.name.clone(), g.clone());
        Ok(group_to_pb(id, &req.name, &g))
    })?;
    tracing::info!(group = %req.name, gid = g.gid, "group created");
    Ok(g)
}

pub fn list_groups(rt: &Runtime) -> pb::ListGroupsResponse {
    let id = rt.identity().snapshot();
    pb::ListGroupsResponse {
        groups: id
            .groups
            .iter()
            .map(|(n, g)| group_to_pb(&id, n, g))
            .collect(),
    }
}

pub fn edit_group_members(
    rt: &Runtime,
    req: pb::EditGroupMembersRequest,
) -> ControlResult<pb::Group> {
    change(rt, |id| {
        let g = id
            .groups
            .get(&req.name)
            .cloned()
            .ok_or_else(|| IdentityError::NoGroup(req.name.clone()))?;
        for name in &req.add {
            let u = id.user_mut(name)?;
            if !u.groups.contains(&req.name) {
                u.groups.push(req.name.clone());
            }
        }
        for name in &req.remove {
            id.user_mut(name)?.groups.retain(|x| x != &req.name);
        }
        Ok(group_to_pb(id, &req.name, &g))
    })
}

pub fn remove_group(rt: &Runtime, name: &str) -> ControlResult<()> {
    change(rt, |id| id.remove_group(name))?;
    tracing::info!(group = %name, "group removed");
    Ok(())
}

fn require_share(rt: &Runtime, share: &str) -> ControlResult<()> {
    match rt.state().share(share) {
        Some(_) => Ok(()),
        None => Err(IdentityError::NoShare(share.to_owned()).into()),
    }
}

fn perms_reply(id: &Identity, share: &str) -> pb::SharePermissions {
    perms_to_pb(share, &id.permissions(share))
}

/// Sets (`level` Some) or revokes a grant.
pub fn set_grant(
    rt: &Runtime,
    share: &str,
    who: Grantee,
    level_name: Option<&str>,
) -> ControlResult<pb::SharePermissions> {
    require_share(rt, share)?;
    let level = level_name.map(level).transpose()?;
    change(rt, |id| {
        let known = match &who {
            Grantee::User(n) => id.user(n).map(|_| ()),
            Grantee::Group(n) if id.groups.contains_key(n) => Ok(()),
            Grantee::Group(n) => Err(IdentityError::NoGroup(n.clone())),
        };
        known?;
        id.set_grant(share, &who, level);
        Ok(perms_reply(id, share))
    })
}

pub fn get_permissions(rt: &Runtime, share: &str) -> ControlResult<pb::SharePermissions> {
    require_share(rt, share)?;
    Ok(perms_reply(&rt.identity().snapshot(), share))
}

pub fn set_default_level(
    rt: &Runtime,
    share: &str,
    level_name: &str,
) -> ControlResult<pb::SharePermissions> {
    require_share(rt, share)?;
    let l = level(level_name)?;
    change(rt, |id| {
        id.shares.entry(share.to_owned()).or_default().default_level = Some(l);
        Ok(perms_reply(id, share))
    })
}
