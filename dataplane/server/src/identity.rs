//! The identity store: users, groups and per-share grants, persisted in
//! `<data_dir>/control/identity.json` (mode 0600), and their resolution into the
//! per-share access tables ([`ShareAccess`]) the protocol adapters enforce through the core.
//!
//! Invariants:
//! - A password is never stored: only its NT hash (MD4 of the UTF-16LE password, what
//!   NTLMv2 (MS-NLMP section 3.3.2) needs) and an argon2id PHC string (for API checks).
//!   Neither leaves this module in a reply or a log line: [`PasswordHashes`] and
//!   [`Password`] print as redacted in `Debug` and have no `Display`.
//! - The file is written atomically with mode 0600 (temp + fsync + rename); `state.json`
//!   never holds users.
//! - Every change is made on a copy, [`Identity::validate`]d as a whole (names, unique
//!   uids, gids and names, known groups, known grant targets), persisted, then swapped
//!   in: a refused change leaves nothing behind.
//! - Grants are keyed by share name and outlive the share's removal, like its data.
//! - The names of uids and gids the adapters show owners by ([`IdNames`], NFSv4
//!   `name@domain`) are the users' and groups' names ([`Identity::id_names`]), pushed
//!   with the access tables after every change.
//!
//! Resolution of a share's level for a user: the user's own grant, else the highest grant
//! of its groups (the group whose gid is its primary gid, and its supplementary groups),
//! else the share's default level (`read-write` when never set).

use crate::state::{self, StateError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use dittofs_vfs::{AccessLevel, IdNames, ShareAccess, UnknownLevel, UserAccess};
use md4::Digest;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// First id handed out when a caller gives none.
pub const FIRST_AUTO_ID: u32 = 1000;
/// Longest accepted password, in bytes.
pub const MAX_PASSWORD: usize = 1024;
const MAX_NAME: usize = 32;

/// A change of users, groups or grants that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "{what} name {name:?} is not valid: use 1-{MAX_NAME} characters of A-Z a-z 0-9 _ . -, not starting with '-' or '.'"
    )]
    BadName { what: &'static str, name: String },
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("group {0:?} already exists")]
    GroupExists(String),
    #[error("uid {uid} is already used by user {user:?}")]
    UidTaken { uid: u32, user: String },
    #[error("gid {gid} is already used by group {group:?}")]
    GidTaken { gid: u32, group: String },
    #[error("user {0:?} does not exist")]
    NoUser(String),
    #[error("group {0:?} does not exist")]
    NoGroup(String),
    #[error("share {0:?} does not exist")]
    NoShare(String),
    #[error("user {0:?}: a password is required (it cannot be empty)")]
    EmptyPassword(String),
    #[error("user {0:?}: the password is longer than {MAX_PASSWORD} bytes")]
    LongPassword(String),
    #[error("group {group:?} is a supplementary group of {users}; remove it from them first")]
    GroupInUse { group: String, users: String },
    #[error("give exactly one of a user and a group")]
    GrantTarget,
    #[error(transparent)]
    Level(#[from] UnknownLevel),
    #[error("no free {0} left")]
    NoFreeId(&'static str),
    #[error("hashing the password failed: {0}")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("{}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: Box<IdentityError>,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

impl IdentityError {
    /// The gRPC class of the refusal.
    pub fn to_control(&self) -> crate::error::ControlError {
        use crate::error::ControlError as C;
        let msg = self.to_string();
        match self {
            IdentityError::UserExists(_) | IdentityError::GroupExists(_) => C::Exists(msg),
            IdentityError::NoUser(_) | IdentityError::NoGroup(_) | IdentityError::NoShare(_) => {
                C::NotFound(msg)
            }
            IdentityError::GroupInUse { .. } => C::Precondition(msg),
            IdentityError::Hash(_) | IdentityError::Corrupt { .. } | IdentityError::State(_) => {
                C::Internal(msg)
            }
            _ => C::Invalid(msg),
        }
    }
}

impl From<IdentityError> for crate::error::ControlError {
    fn from(e: IdentityError) -> Self {
        e.to_control()
    }
}

type Result<T> = std::result::Result<T, IdentityError>;

/// A clear-text password on its way to being hashed (redacted in `Debug`, no `Display`).
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(redacted)")
    }
}

impl Password {
    /// Checks a password given for user `user` (for the error message).
    pub fn new(user: &str, clear: String) -> Result<Password> {
        if clear.is_empty() {
            return Err(IdentityError::EmptyPassword(user.to_owned()));
        }
        if clear.len() > MAX_PASSWORD {
            return Err(IdentityError::LongPassword(user.to_owned()));
        }
        Ok(Password(clear))
    }
}

/// The stored forms of a password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordHashes {
    /// MD4 of the UTF-16LE password, hex (the NTLM "NT hash").
    pub nt: String,
    /// argon2id PHC string (`$argon2id$v=19$...`).
    pub argon2: String,
}

impl std::fmt::Debug for PasswordHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHashes(redacted)")
    }
}

/// MD4 of the UTF-16LE encoding of `clear` (MS-NLMP section 3.3.1, NTOWFv1).
pub fn nt_hash(clear: &str) -> [u8; 16] {
    let utf16: Vec<u8> = clear.encode_utf16().flat_map(u16::to_le_bytes).collect();
    md4::Md4::digest(&utf16).into()
}

impl PasswordHashes {
    /// Hashes a password (argon2id with default parameters and a random 16-byte salt).
    pub fn of(p: &Password) -> Result<PasswordHashes> {
        let salt =
            SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(IdentityError::Hash)?;
        let phc = argon2::Argon2::default()
            .hash_password(p.0.as_bytes(), &salt)
            .map_err(IdentityError::Hash)?;
        Ok(PasswordHashes {
            nt: hex::encode(nt_hash(&p.0)),
            argon2: phc.to_string(),
        })
    }

    /// Whether `clear` is the password these hashes were made from.
    pub fn verify(&self, clear: &str) -> bool {
        PasswordHash::new(&self.argon2).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(clear.as_bytes(), &h)
                .is_ok()
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub uid: u32,
    /// Primary group id (need not name a group of this store).
    pub gid: u32,
    /// Supplementary group names (each a group of this store).
    #[serde(default)]
    pub groups: Vec<String>,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<PasswordHashes>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub gid: u32,
}

/// One share's grants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharePermissions {
    /// Level of callers without a grant; `None` = `read-write`.
    pub default_level: Option<AccessLevel>,
    pub users: BTreeMap<String, AccessLevel>,
    pub groups: BTreeMap<String, AccessLevel>,
}

impl SharePermissions {
    pub fn default_or_rw(&self) -> AccessLevel {
        self.default_level.unwrap_or(AccessLevel::ReadWrite)
    }
}

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grantee {
    User(String),
    Group(String),
}

impl Grantee {
    /// From the two optional names of a request: exactly one must be given.
    pub fn from_names(user: &str, group: &str) -> Result<Grantee> {
        match (user.is_empty(), group.is_empty()) {
            (false, true) => Ok(Grantee::User(user.to_owned())),
            (true, false) => Ok(Grantee::Group(group.to_owned())),
            _ => Err(IdentityError::GrantTarget),
        }
    }
}

/// Users, groups and grants (the content of `identity.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, Group>,
    /// By share name.
    pub shares: BTreeMap<String, SharePermissions>,
}

/// Checks a user or group name.
pub fn check_name(what: &'static str, name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with(['-', '.'])
        && name.chars().all(ok_char);
    if valid {
        Ok(())
    } else {
        Err(IdentityError::BadName {
            what,
            name: name.to_owned(),
        })
    }
}

/// Refuses a second owner of one id (`taken` builds the error from the id and the first).
fn unique_ids<'a>(
    ids: impl Iterator<Item = (&'a String, u32)>,
    taken: impl Fn(u32, String) -> IdentityError,
) -> Result<()> {
    let mut seen: BTreeMap<u32, &String> = BTreeMap::new();
    for (name, id) in ids {
        if let Some(first) = seen.insert(id, name) {
            return Err(taken(id, first.clone()));
        }
    }
    Ok(())
}

impl Identity {
    /// The whole store's consistency (see the module invariants).
    pub fn validate(&self) -> Result<()> {
        for (name, u) in &self.users {
            check_name("user", name)?;
            if let Some(g) = u.groups.iter().find(|g| !self.groups.contains_key(*g)) {
                return Err(IdentityError::NoGroup(g.clone()));
            }
        }
        for name in self.groups.keys() {
            check_name("group", name)?;
        }
        unique_ids(self.users.iter().map(|(n, u)| (n, u.uid)), |uid, user| {
            IdentityError::UidTaken { uid, user }
        })?;
        unique_ids(self.groups.iter().map(|(n, g)| (n, g.gid)), |gid, group| {
            IdentityError::GidTaken { gid, group }
        })?;
        for p in self.shares.values() {
            if let Some(u) = p.users.keys().find(|u| !self.users.contains_key(*u)) {
                return Err(IdentityError::NoUser(u.clone()));
            }
            if let Some(g) = p.groups.keys().find(|g| !self.groups.contains_key(*g)) {
                return Err(IdentityError::NoGroup(g.clone()));
            }
        }
        Ok(())
    }

    /// The lowest id from [`FIRST_AUTO_ID`] that `used` does not hold.
    fn free_id(used: impl Iterator<Item = u32>, what: &'static str) -> Result<u32> {
        let used: std::collections::BTreeSet<u32> = used.collect();
        (FIRST_AUTO_ID..u32::MAX)
            .find(|id| !used.contains(id))
            .ok_or(IdentityError::NoFreeId(what))
    }

    pub fn free_uid(&self) -> Result<u32> {
        Self::free_id(self.users.values().map(|u| u.uid), "uid")
    }

    pub fn free_gid(&self) -> Result<u32> {
        Self::free_id(self.groups.values().map(|g| g.gid), "gid")
    }

    pub fn user(&self, name: &str) -> Result<&User> {
        self.users
            .get(name)
            .ok_or_else(|| IdentityError::NoUser(name.to_owned()))
    }

    pub fn user_mut(&mut self, name: &str) -> Result<&mut User> {
        self.users
            .get_mut(name)
            .ok_or_else(|| IdentityError::NoUser(name.to_owned()))
    }

    /// Users having `group` among their supplementary groups.
    pub fn members(&self, group: &str) -> Vec<String> {
        self.users
            .iter()
            .filter(|(_, u)| u.groups.iter().any(|g| g == group))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Removes a user and its grants.
    pub fn remove_user(&mut self, name: &str) -> Result<()> {
        self.users
            .remove(name)
            .ok_or_else(|| IdentityError::NoUser(name.to_owned()))?;
        for p in self.shares.values_mut() {
            p.users.remove(name);
        }
        Ok(())
    }

    /// Removes a group and its grants; refused while users have it as a supplementary group.
    pub fn remove_group(&mut self, name: &str) -> Result<()> {
        if !self.groups.contains_key(name) {
            return Err(IdentityError::NoGroup(name.to_owned()));
        }
        let members = self.members(name);
        if !members.is_empty() {
            return Err(IdentityError::GroupInUse {
                group: name.to_owned(),
                users: members.join(", "),
            });
        }
        self.groups.remove(name);
        for p in self.shares.values_mut() {
            p.groups.remove(name);
        }
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) a grant on `share`.
    pub fn set_grant(&mut self, share: &str, who: &Grantee, level: Option<AccessLevel>) {
        let p = self.shares.entry(share.to_owned()).or_default();
        let (map, name) = match who {
            Grantee::User(n) => (&mut p.users, n),
            Grantee::Group(n) => (&mut p.groups, n),
        };
        match level {
            Some(l) => map.insert(name.clone(), l),
            None => map.remove(name),
        };
    }

    /// The permissions of `share` (empty ones when it has none).
    pub fn permissions(&self, share: &str) -> SharePermissions {
        self.shares.get(share).cloned().unwrap_or_default()
    }

    /// The level a user has on a share (see the module documentation).
    pub fn level_of(&self, perms: &SharePermissions, name: &str, user: &User) -> AccessLevel {
        if let Some(l) = perms.users.get(name) {
            return *l;
        }
        let primary = self
            .groups
            .iter()
            .filter(|(_, g)| g.gid == user.gid)
            .map(|(n, _)| n);
        primary
            .chain(user.groups.iter())
            .filter_map(|g| perms.groups.get(g).copied())
            .max()
            .unwrap_or_else(|| perms.default_or_rw())
    }

    /// The access table of `share` for the protocol adapters.
    pub fn share_access(&self, share: &str) -> ShareAccess {
        let perms = self.permissions(share);
        let mut t = ShareAccess::new(perms.default_or_rw());
        for (name, u) in &self.users {
            let access = if u.enabled {
                UserAccess::Enabled(self.level_of(&perms, name, u))
            } else {
                UserAccess::Disabled
            };
            t.insert(u.uid, access);
        }
        t
    }
}

impl Identity {
    /// The names of the users' uids and the groups' gids, for the adapters (disabled
    /// users keep their names: the files they own are still theirs).
    pub fn id_names(&self) -> IdNames {
        let mut n = IdNames::new();
        for (name, u) in &self.users {
            n.insert_user(u.uid, name);
        }
        for (name, g) in &self.groups {
            n.insert_group(g.gid, name);
        }
        n
    }
}

/// The identity store of a server: the current [`Identity`] and its file.
pub struct IdentityStore {
    path: PathBuf,
    data: RwLock<Identity>,
    /// Serializes changes (read-modify-persist-swap).
    write: Mutex<()>,
}

pub fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control").join("identity.json")
}

impl IdentityStore {
    /// An empty store persisted at `path` (call [`IdentityStore::load`] to read it).
    pub fn new(path: PathBuf) -> IdentityStore {
        IdentityStore {
            path,
            data: RwLock::new(Identity::default()),
            write: Mutex::new(()),
        }
    }

    /// Reads the file, if any; a file that does not parse or validate is an error (never
    /// silently replaced).
    pub fn load(&self) -> Result<()> {
        let Some(id) = state::load_json::<Identity>(&self.path)? else {
            return Ok(());
        };
        id.validate().map_err(|e| IdentityError::Corrupt {
            path: self.path.clone(),
            source: Box::new(e),
        })?;
        *self.data.write() = id;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn snapshot(&self) -> Identity {
        self.data.read().clone()
    }

    /// Applies `f` to a copy, validates and persists it, then makes it current.
    pub fn update<T>(&self, f: impl FnOnce(&mut Identity) -> Result<T>) -> Result<T> {
        let _serial = self.write.lock();
        let mut next = self.snapshot();
        let out = f(&mut next)?;
        self.replace_locked(next)?;
        Ok(out)
    }

    /// Replaces the whole identity (validated and persisted first).
    pub fn replace(&self, next: Identity) -> Result<()> {
        let _serial = self.write.lock();
        self.replace_locked(next)
    }

    fn replace_locked(&self, next: Identity) -> Result<()> {
        next.validate()?;
        state::save_json(&self.path, &next, 0o600)?;
        *self.data.write() = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, groups: &[&str]) -> User {
        User {
            uid,
            gid: uid,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            enabled: true,
            hashes: None,
        }
    }

    fn pw(s: &str) -> Password {
        Password(s.to_owned())
    }

    #[test]
    fn nt_hash_matches_the_ms_nlmp_example() {
        // MS-NLMP 4.2.2.1.2: NTOWFv1("Password") = a4f49c40 6510bdca b6824ee7 c30fd852.
        assert_eq!(
            hex::encode(nt_hash("Password")),
            "a4f49c406510bdcab6824ee7c30fd852"
        );
        assert_ne!(nt_hash("password"), nt_hash("Password"));
    }

    #[test]
    fn hashes_verify_only_their_password_and_never_print() {
        let h = PasswordHashes::of(&pw("s3cret-pw")).unwrap();
        assert!(h.argon2.starts_with("$argon2id$"), "{}", h.argon2);
        assert!(h.verify("s3cret-pw"));
        assert!(!h.verify("s3cret-pW"));
        let again = PasswordHashes::of(&pw("s3cret-pw")).unwrap();
        assert_ne!(h.argon2, again.argon2, "salted");
        assert_eq!(h.nt, again.nt);
        let shown = format!("{h:?} {:?}", pw("s3cret-pw"));
        assert!(
            !shown.contains("s3cret") && !shown.contains(&h.nt),
            "{shown}"
        );
    }

    #[test]
    fn passwords_and_names_are_checked() {
        assert!(matches!(
            Password::new("al", String::new()),
            Err(IdentityError::EmptyPassword(_))
        ));
        assert!(matches!(
            Password::new("al", "x".repeat(MAX_PASSWORD + 1)),
            Err(IdentityError::LongPassword(_))
        ));
        for ok in ["alice", "a", "svc_backup", "a.b-c", &"x".repeat(32)] {
            check_name("user", ok).unwrap();
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "ä", &"x".repeat(33)] {
            let e = check_name("user", bad).unwrap_err();
            assert!(e.to_string().contains("user name"), "{e}");
        }
    }

    #[test]
    fn validation_refuses_duplicates_and_unknown_references() {
        let mut id = Identity::default();
        id.groups.insert("staff".into(), Group { gid: 50 });
        id.users.insert("alice".into(), user(1000, &["staff"]));
        id.validate().unwrap();
        let mut dup = id.clone();
        dup.users.insert("bob".into(), user(1000, &[]));
        let e = dup.validate().unwrap_err();
        assert_eq!(e.to_string(), "uid 1000 is already used by user \"alice\"");
        let mut dup = id.clone();
        dup.groups.insert("wheel".into(), Group { gid: 50 });
        assert!(matches!(
            dup.validate(),
            Err(IdentityError::GidTaken { gid: 50, .. })
        ));
        let mut unknown = id.clone();
        unknown.users.insert("bob".into(), user(1001, &["nope"]));
        assert!(matches!(unknown.validate(), Err(IdentityError::NoGroup(g)) if g == "nope"));
        let mut grant = id.clone();
        grant.set_grant(
            "/s",
            &Grantee::User("carol".into()),
            Some(AccessLevel::Read),
        );
        assert!(matches!(grant.validate(), Err(IdentityError::NoUser(u)) if u == "carol"));
        assert_eq!(id.free_uid().unwrap(), 1001);
        assert_eq!(id.free_gid().unwrap(), 1000);
        let e = id.clone().remove_group("staff").unwrap_err();
        assert_eq!(
            e.to_string(),
            "group \"staff\" is a supplementary group of alice; remove it from them first"
        );
    }

    #[test]
    fn levels_resolve_user_then_groups_then_default() {
        let mut id = Identity::default();
        id.groups.insert("ro".into(), Group { gid: 60 });
        id.groups.insert("rw".into(), Group { gid: 61 });
        id.users.insert("own".into(), user(1000, &["rw"]));
        id.users.insert("grp".into(), user(1001, &["ro", "rw"]));
        let mut prim = user(1002, &[]);
        prim.gid = 60;
        id.users.insert("prim".into(), prim);
        id.users.insert("plain".into(), user(1003, &[]));
        let mut off = user(1004, &[]);
        off.enabled = false;
        id.users.insert("off".into(), off);
        id.set_grant("/s", &Grantee::User("own".into()), Some(AccessLevel::Read));
        id.set_grant("/s", &Grantee::Group("ro".into()), Some(AccessLevel::Read));
        id.set_grant(
            "/s",
            &Grantee::Group("rw".into()),
            Some(AccessLevel::ReadWrite),
        );
        id.shares.entry("/s".into()).or_default().default_level = Some(AccessLevel::None);
        let t = id.share_access("/s");
        let level = |uid| t.level_of_uid(uid);
        assert_eq!(level(1000), Ok(AccessLevel::Read), "own grant beats groups");
        assert_eq!(level(1001), Ok(AccessLevel::ReadWrite), "highest group");
        assert_eq!(level(1002), Ok(AccessLevel::Read), "primary gid's group");
        assert_eq!(level(1003), Ok(AccessLevel::None), "share default");
        assert!(level(1004).is_err(), "disabled");
        assert_eq!(level(4242), Ok(AccessLevel::None), "unknown uid: default");
        let other = id.share_access("/other");
        assert_eq!(other.level_of_uid(1000), Ok(AccessLevel::ReadWrite));
    }

    #[test]
    fn id_names_are_the_users_and_groups() {
        let mut id = Identity::default();
        id.groups.insert("staff".into(), Group { gid: 1600 });
        let mut alice = user(1500, &["staff"]);
        alice.gid = 1600;
        id.users.insert("alice".into(), alice);
        let mut off = user(1501, &[]);
        off.enabled = false;
        id.users.insert("off".into(), off);
        let n = id.id_names();
        assert_eq!(n.user_name(1500), Some("alice"));
        assert_eq!(n.uid_of("alice"), Some(1500));
        assert_eq!(
            n.user_name(1501),
            Some("off"),
            "disabled users keep their names"
        );
        assert_eq!(n.group_name(1600), Some("staff"));
        assert_eq!(n.gid_of("staff"), Some(1600));
        assert_eq!(n.group_name(1500), None, "a user's own gid names no group");
        assert!(Identity::default().id_names().is_empty());
    }

    #[test]
    fn store_persists_0600_without_clear_passwords_and_refuses_bad_changes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = IdentityStore::new(identity_path(dir.path()));
        let hashes = PasswordHashes::of(&pw("clear-text-pw")).unwrap();
        store
            .update(|id| {
                let mut u = user(1000, &[]);
                u.hashes = Some(hashes.clone());
                id.users.insert("alice".into(), u);
                Ok(())
            })
            .unwrap();
        let meta = std::fs::metadata(store.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("clear-text-pw"), "{text}");
        assert!(text.contains(&hashes.nt));
        let refused = store.update(|id| {
            id.users.insert("bob".into(), user(1000, &[]));
            Ok(())
        });
        assert!(matches!(refused, Err(IdentityError::UidTaken { .. })));
        assert!(
            !store.snapshot().users.contains_key("bob"),
            "nothing left behind"
        );
        let reopened = IdentityStore::new(identity_path(dir.path()));
        reopened.load().unwrap();
        assert_eq!(reopened.snapshot(), store.snapshot());
        std::fs::write(
            store.path(),
            br#"{"users":{"-bad":{"uid":1,"gid":1,"enabled":true}}}"#,
        )
        .unwrap();
        let e = IdentityStore::new(identity_path(dir.path()))
            .load()
            .unwrap_err();
        assert!(e.to_string().contains("identity.json"), "{e}");
    }
}
