//! Names of user and group ids: the protocol-neutral map adapters use to show an owner
//! by name and to accept a name for an id (NFSv4 `owner`/`owner_group` as
//! `name@domain`, RFC 7530 and RFC 8881 section 5.9; SMB later).
//!
//! The control plane builds one [`IdNames`] from its identity store (users with their
//! uid, groups with their gid) and hands it to each adapter as a whole, replacing the
//! previous one after every change of users or groups, as it does with the share access
//! tables ([`crate::ShareAccess`]). An adapter keeps its own domain or syntax; this map
//! holds bare names only.
//!
//! Invariants:
//! - Users and groups are separate spaces: uid 7 and gid 7 may have different names,
//!   and a user and a group may share a name.
//! - Within one space, names and ids map one to one: inserting a pair removes any
//!   earlier pair of the same id or the same name, so `name(id(n)) == n` and
//!   `id(name(i)) == i` whenever both are defined.
//! - Names compare exactly (case-sensitive), as the identity store keeps them.
//! - An id without a name (and a name without an id) answers `None`; the adapter
//!   decides what that means (NFSv4: the numeric string, or NFS4ERR_BADOWNER).

use std::collections::HashMap;

/// One space of names: ids to names and back, one to one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NameTable {
    by_id: HashMap<u32, String>,
    by_name: HashMap<String, u32>,
}

impl NameTable {
    fn insert(&mut self, id: u32, name: &str) {
        if let Some(old) = self.by_id.remove(&id) {
            self.by_name.remove(&old);
        }
        if let Some(old) = self.by_name.remove(name) {
            self.by_id.remove(&old);
        }
        self.by_id.insert(id, name.to_owned());
        self.by_name.insert(name.to_owned(), id);
    }

    fn name(&self, id: u32) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    fn id(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }
}

/// User and group names by id and ids by name (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdNames {
    users: NameTable,
    groups: NameTable,
}

impl IdNames {
    /// A map without names: every id is shown as a number.
    pub fn new() -> IdNames {
        IdNames::default()
    }

    /// Names user `uid` `name` (replacing earlier pairs of the uid or the name).
    pub fn insert_user(&mut self, uid: u32, name: &str) {
        self.users.insert(uid, name);
    }

    /// Names group `gid` `name` (replacing earlier pairs of the gid or the name).
    pub fn insert_group(&mut self, gid: u32, name: &str) {
        self.groups.insert(gid, name);
    }

    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users.name(uid)
    }

    pub fn uid_of(&self, name: &str) -> Option<u32> {
        self.users.id(name)
    }

    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups.name(gid)
    }

    pub fn gid_of(&self, name: &str) -> Option<u32> {
        self.groups.id(name)
    }

    /// Whether no user and no group has a name.
    pub fn is_empty(&self) -> bool {
        self.users.by_id.is_empty() && self.groups.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups_are_separate_spaces() {
        let mut n = IdNames::new();
        assert!(n.is_empty());
        n.insert_user(1500, "alice");
        n.insert_group(1600, "staff");
        n.insert_group(1500, "alice");
        assert!(!n.is_empty());
        assert_eq!(n.user_name(1500), Some("alice"));
        assert_eq!(n.uid_of("alice"), Some(1500));
        assert_eq!(n.group_name(1600), Some("staff"));
        assert_eq!(n.gid_of("staff"), Some(1600));
        assert_eq!(
            n.gid_of("alice"),
            Some(1500),
            "a group may share a user's name"
        );
        assert_eq!(n.uid_of("staff"), None, "a group name is no user name");
        assert_eq!(n.user_name(1600), None, "a gid is no uid");
        assert_eq!(n.user_name(7), None);
        assert_eq!(n.uid_of("Alice"), None, "names compare exactly");
    }

    #[test]
    fn a_new_pair_replaces_the_old_pairs_of_its_id_and_name() {
        let mut n = IdNames::new();
        n.insert_user(1500, "alice");
        n.insert_user(1501, "bob");
        // alice gets bob's uid: bob's pair and alice's old uid both go
        n.insert_user(1501, "alice");
        assert_eq!(n.uid_of("alice"), Some(1501));
        assert_eq!(n.user_name(1501), Some("alice"));
        assert_eq!(n.user_name(1500), None);
        assert_eq!(n.uid_of("bob"), None);
        // a renamed uid loses its old name
        n.insert_user(1501, "carol");
        assert_eq!(n.uid_of("alice"), None);
        assert_eq!(n.user_name(1501), Some("carol"));
    }
}
