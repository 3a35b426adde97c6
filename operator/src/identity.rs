//! The identity section of a server group's desired state (`DesiredState.identity`):
//! the MetadataStore's users and groups, their passwords read from Secrets, and the
//! `permissions` of the group's served Shares. Pure: the Secret values come in as a map
//! filled by the reconciler.
//!
//! Invariants:
//! - A password exists only in [`Passwords`] and in the `UserSpec.password` pushed to the
//!   pods (which keep hashes only); no error, log line, status or Event carries one
//!   (errors name the Secret and key, never the value).
//! - No users, no groups and no Share with `permissions` = no identity section: the pods
//!   keep theirs (the data plane's default is read-write for everyone).
//! - A Share whose grants cannot be expressed (unknown user or group, two grants for one
//!   name), or that has `permissions` while the group's users cannot be built (missing
//!   Secret or key, duplicate name, unknown group), is not served: a Share is never served
//!   with less protection than its spec asks for.

use crate::crd::{MetadataStore, PermissionsSpec};
use dittofs_proto::v1 as pb;
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Password values read from Secrets: (Secret name, key) -> clear text.
pub type Passwords = BTreeMap<(String, String), String>;

/// First gid given to a group of the spec without one.
pub const FIRST_AUTO_GID: u32 = 1000;

/// Why a group's users and groups cannot be pushed. Never holds a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("user {user}: Secret {secret} (key {key}) is missing, or the key is absent or empty")]
    MissingPassword {
        user: String,
        secret: String,
        key: String,
    },
    #[error("{what} {name} is defined twice")]
    Duplicate { what: &'static str, name: String },
    #[error("user {user}: group {group} is not in spec.groups")]
    UnknownGroup { user: String, group: String },
}

impl IdentityError {
    /// The CamelCase reason of conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            IdentityError::MissingPassword { .. } => "SecretNotFound",
            IdentityError::Duplicate { .. } | IdentityError::UnknownGroup { .. } => {
                "InvalidIdentity"
            }
        }
    }
}

/// The users and groups of `ms` (no permissions yet), or why they cannot be built.
pub fn users_and_groups(
    ms: &MetadataStore,
    passwords: &Passwords,
) -> Result<pb::IdentityState, IdentityError> {
    let mut groups = BTreeSet::new();
    let mut state = pb::IdentityState::default();
    // The data plane takes a group's gid as given: pick the free ones here, in spec order.
    let mut taken: BTreeSet<u32> = ms.spec.groups.iter().filter_map(|g| g.gid).collect();
    let mut next = FIRST_AUTO_GID;
    for g in &ms.spec.groups {
        if !groups.insert(g.name.as_str()) {
            return Err(duplicate("group", &g.name));
        }
        if let Some(gid) = g
            .gid
            .filter(|gid| state.groups.iter().any(|x| x.gid == *gid))
        {
            return Err(duplicate("gid", &gid.to_string()));
        }
        let gid = g.gid.unwrap_or_else(|| {
            while taken.contains(&next) {
                next += 1;
            }
            taken.insert(next);
            next
        });
        state.groups.push(pb::Group {
            name: g.name.clone(),
            gid,
            members: vec![],
        });
    }
    let mut users = BTreeSet::new();
    let mut uids = BTreeSet::new();
    for u in &ms.spec.users {
        if !users.insert(u.name.as_str()) {
            return Err(duplicate("user", &u.name));
        }
        if let Some(uid) = u.uid.filter(|uid| !uids.insert(*uid)) {
            return Err(duplicate("uid", &uid.to_string()));
        }
        if let Some(g) = u.groups.iter().find(|g| !groups.contains(g.as_str())) {
            return Err(IdentityError::UnknownGroup {
                user: u.name.clone(),
                group: g.clone(),
            });
        }
        let r = &u.password_secret_ref;
        let password = passwords
            .get(&(r.name.clone(), r.key.clone()))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| IdentityError::MissingPassword {
                user: u.name.clone(),
                secret: r.name.clone(),
                key: r.key.clone(),
            })?;
        state.users.push(pb::UserSpec {
            name: u.name.clone(),
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
            disabled: u.disabled,
            password: password.clone(),
        });
    }
    Ok(state)
}

fn duplicate(what: &'static str, name: &str) -> IdentityError {
    IdentityError::Duplicate {
        what,
        name: name.to_string(),
    }
}

/// The permissions of the Share exported at `path`, checked against the group's users and
/// groups; Err is the message of the Share's `InvalidPermissions` condition.
pub fn share_permissions(
    path: &str,
    spec: &PermissionsSpec,
    ms: &MetadataStore,
) -> Result<pb::SharePermissions, String> {
    let mut seen = BTreeSet::new();
    let mut grants = Vec::with_capacity(spec.grants.len());
    for g in &spec.grants {
        let (kind, name, known) = match (&g.user, &g.group) {
            (Some(u), None) => ("user", u, ms.spec.users.iter().any(|x| &x.name == u)),
            (None, Some(n)) => ("group", n, ms.spec.groups.iter().any(|x| &x.name == n)),
            _ => return Err("a grant names exactly one of user and group".into()),
        };
        if !known {
            return Err(format!(
                "grant to {kind} {name}: MetadataStore {} has no such {kind} in spec.{kind}s",
                ms.name_any()
            ));
        }
        if !seen.insert((kind, name)) {
            return Err(format!("{kind} {name} has two grants"));
        }
        grants.push(pb::Grant {
            kind: kind.into(),
            name: name.clone(),
            level: g.level.as_str().into(),
        });
    }
    Ok(pb::SharePermissions {
        share: path.to_string(),
        default_level: spec
            .default_level
            .map(|l| l.as_str().to_string())
            .unwrap_or_default(),
        grants,
    })
}

/// How long a pod is trusted to still hold the identity last pushed to it; after that it
/// is pushed again (this corrects hand edits on the pod: its dry run cannot show identity
/// changes, since passwords are only ever stored as hashes).
pub const REPUSH_AFTER: Duration = Duration::from_secs(600);

/// A salted digest of an identity section (passwords included); kept in memory only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

/// What identity the operator last pushed to each pod (by pod UID), so that an unchanged
/// identity is not re-hashed by the pods on every reconcile while a changed one (a
/// password Secret updated) is pushed at once.
pub struct PushedIdentities {
    salt: [u8; 16],
    pods: Mutex<HashMap<String, (Fingerprint, Instant)>>,
}

impl PushedIdentities {
    pub fn new(salt: [u8; 16]) -> Self {
        PushedIdentities {
            salt,
            pods: Mutex::new(HashMap::new()),
        }
    }

    pub fn fingerprint(&self, state: &pb::IdentityState) -> Fingerprint {
        use prost::Message;
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.salt);
        h.update(state.encode_to_vec());
        Fingerprint(h.finalize().into())
    }

    /// Must `fp` be pushed to `pod` at `now`?
    pub fn needs_push(&self, pod: &str, fp: Fingerprint, now: Instant) -> bool {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        !matches!(pods.get(pod), Some((f, at)) if *f == fp && now.duration_since(*at) < REPUSH_AFTER)
    }

    pub fn record(&self, pod: &str, fp: Fingerprint, now: Instant) {
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.insert(pod.to_string(), (fp, now));
    }

    /// Forgets `pod` (its push failed: push again next time).
    pub fn forget(&self, pod: &str) {
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.remove(pod);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{
        AccessLevel, GrantSpec, GroupSpec, MetadataStoreSpec, MetadataStoreType, SecretKeyRef,
        UserSpec,
    };

    pub(crate) fn user(name: &str, secret: &str, groups: &[&str]) -> UserSpec {
        UserSpec {
            name: name.into(),
            uid: None,
            gid: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            disabled: false,
            password_secret_ref: SecretKeyRef {
                name: secret.into(),
                key: "password".into(),
            },
        }
    }

    fn group(name: &str, gid: Option<u32>) -> GroupSpec {
        GroupSpec {
            name: name.into(),
            gid,
        }
    }

    fn store(users: Vec<UserSpec>, groups: Vec<GroupSpec>) -> MetadataStore {
        MetadataStore::new(
            "main",
            MetadataStoreSpec {
                type_: MetadataStoreType::Sled,
                postgres: None,
                server: Default::default(),
                users,
                groups,
            },
        )
    }

    fn pw(secret: &str, value: &str) -> Passwords {
        Passwords::from([((secret.into(), "password".into()), value.into())])
    }

    #[test]
    fn users_get_their_secret_passwords_and_groups_free_gids() {
        let mut alice = user("alice", "alice-pw", &["staff"]);
        alice.uid = Some(2001);
        let ms = store(
            vec![alice, user("bob", "bob-pw", &[])],
            vec![group("staff", None), group("ops", Some(1000))],
        );
        let mut p = pw("alice-pw", "s3cret-a");
        p.extend(pw("bob-pw", "s3cret-b"));
        let id = users_and_groups(&ms, &p).unwrap();
        let gids: Vec<(&str, u32)> = id.groups.iter().map(|g| (g.name.as_str(), g.gid)).collect();
        assert_eq!(gids, vec![("staff", 1001), ("ops", 1000)]);
        assert_eq!(id.users[0].password, "s3cret-a");
        assert_eq!(id.users[0].uid, Some(2001));
        assert_eq!(id.users[0].groups, vec!["staff"]);
        assert_eq!(
            (id.users[1].name.as_str(), id.users[1].password.as_str()),
            ("bob", "s3cret-b")
        );
    }

    #[test]
    fn a_missing_secret_names_the_secret_and_key_not_a_value() {
        let ms = store(
            vec![user("alice", "alice-pw", &[]), user("bob", "bob-pw", &[])],
            vec![],
        );
        let e = users_and_groups(&ms, &pw("alice-pw", "s3cret-a")).unwrap_err();
        assert_eq!(e.reason(), "SecretNotFound");
        let text = e.to_string();
        assert!(
            text.contains("bob") && text.contains("bob-pw") && text.contains("password"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        // An empty value counts as missing.
        let e =
            users_and_groups(&store(vec![user("a", "s", &[])], vec![]), &pw("s", "")).unwrap_err();
        assert_eq!(e.reason(), "SecretNotFound");
    }

    #[test]
    fn duplicates_and_unknown_groups_are_refused() {
        let p = pw("s", "x");
        let twice = store(vec![user("a", "s", &[]), user("a", "s", &[])], vec![]);
        assert_eq!(
            users_and_groups(&twice, &p),
            Err(IdentityError::Duplicate {
                what: "user",
                name: "a".into()
            })
        );
        let groups = store(vec![], vec![group("g", None), group("g", None)]);
        assert_eq!(
            users_and_groups(&groups, &p).unwrap_err().reason(),
            "InvalidIdentity"
        );
        let gids = store(vec![], vec![group("g", Some(7)), group("h", Some(7))]);
        assert_eq!(
            users_and_groups(&gids, &p),
            Err(IdentityError::Duplicate {
                what: "gid",
                name: "7".into()
            })
        );
        let (mut a, mut b) = (user("a", "s", &[]), user("b", "s", &[]));
        (a.uid, b.uid) = (Some(5), Some(5));
        assert_eq!(
            users_and_groups(&store(vec![a, b], vec![]), &p),
            Err(IdentityError::Duplicate {
                what: "uid",
                name: "5".into()
            })
        );
        let unknown = store(vec![user("a", "s", &["nope"])], vec![]);
        assert_eq!(
            users_and_groups(&unknown, &p),
            Err(IdentityError::UnknownGroup {
                user: "a".into(),
                group: "nope".into()
            })
        );
    }

    fn grant(user: Option<&str>, group: Option<&str>, level: AccessLevel) -> GrantSpec {
        GrantSpec {
            user: user.map(String::from),
            group: group.map(String::from),
            level,
        }
    }

    #[test]
    fn share_grants_name_known_users_and_groups_once() {
        let ms = store(vec![user("alice", "s", &[])], vec![group("staff", None)]);
        let spec = PermissionsSpec {
            default_level: Some(AccessLevel::None),
            grants: vec![
                grant(Some("alice"), None, AccessLevel::Read),
                grant(None, Some("staff"), AccessLevel::ReadWrite),
            ],
        };
        let p = share_permissions("/docs", &spec, &ms).unwrap();
        assert_eq!(p.share, "/docs");
        assert_eq!(p.default_level, "none");
        let g: Vec<(&str, &str, &str)> = p
            .grants
            .iter()
            .map(|g| (g.kind.as_str(), g.name.as_str(), g.level.as_str()))
            .collect();
        assert_eq!(
            g,
            vec![("user", "alice", "read"), ("group", "staff", "read-write")]
        );
        let unknown = PermissionsSpec {
            default_level: None,
            grants: vec![grant(Some("mallory"), None, AccessLevel::Admin)],
        };
        let e = share_permissions("/docs", &unknown, &ms).unwrap_err();
        assert!(
            e.contains("mallory") && e.contains("MetadataStore main"),
            "{e}"
        );
        let twice = PermissionsSpec {
            default_level: None,
            grants: vec![
                grant(Some("alice"), None, AccessLevel::Read),
                grant(Some("alice"), None, AccessLevel::Admin),
            ],
        };
        assert!(
            share_permissions("/docs", &twice, &ms)
                .unwrap_err()
                .contains("two grants")
        );
        let both = PermissionsSpec {
            default_level: None,
            grants: vec![grant(Some("alice"), Some("staff"), AccessLevel::Read)],
        };
        assert!(share_permissions("/docs", &both, &ms).is_err());
    }

    #[test]
    fn an_identity_is_pushed_again_when_it_changes_or_grows_old() {
        let ids = PushedIdentities::new([1; 16]);
        let a = pb::IdentityState {
            users: vec![pb::UserSpec {
                name: "alice".into(),
                password: "one".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut b = a.clone();
        b.users[0].password = "two".into();
        let (fa, fb) = (ids.fingerprint(&a), ids.fingerprint(&b));
        assert_ne!(fa, fb, "a password change must change the fingerprint");
        let t0 = Instant::now();
        assert!(ids.needs_push("pod-1", fa, t0));
        ids.record("pod-1", fa, t0);
        assert!(!ids.needs_push("pod-1", fa, t0 + Duration::from_secs(1)));
        assert!(ids.needs_push("pod-1", fb, t0 + Duration::from_secs(1)));
        assert!(ids.needs_push("pod-2", fa, t0));
        assert!(ids.needs_push("pod-1", fa, t0 + REPUSH_AFTER));
        ids.forget("pod-1");
        assert!(ids.needs_push("pod-1", fa, t0));
        // Another process (salt) gives other digests: nothing to compare across restarts.
        assert_ne!(PushedIdentities::new([2; 16]).fingerprint(&a), fa);
    }
}
