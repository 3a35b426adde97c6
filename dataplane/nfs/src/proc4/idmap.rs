//! NFSv4 owner strings (RFC 7530 section 5.9, RFC 8881 section 5.9): the `owner` and
//! `owner_group` attributes between their wire form and uids/gids, through the names of
//! the control plane's identity store ([`IdNames`]) and the configured domain
//! (`nfs.v4.id_domain`). The codec (`nfs4::fattr`) carries these strings as bytes; only
//! this module gives them a meaning.
//!
//! Rules:
//! - Without a domain (the default) owners are numeric strings both ways (`"1000"`), as
//!   the Linux client uses them with AUTH_SYS (`nfs4_disable_idmapping`); any other
//!   string given is NFS4ERR_BADOWNER.
//! - With a domain, an id that has a name is shown as `name@domain`, an id without one
//!   as its numeric string. Accepted are `name@domain` whose domain matches (ASCII case
//!   folded) and whose name is a user (`owner`) or a group (`owner_group`) of the map,
//!   and numeric strings; anything else (another domain, an unknown name, a name
//!   without a domain, the empty string) is NFS4ERR_BADOWNER.
//! - A numeric string is ASCII decimal digits without leading zeros (`"0"` itself is
//!   one) whose value fits 32 bits (RFC 7530 section 5.9).
//! - An operation takes the map once ([`crate::shared::Shared::owners`]), so one READDIR
//!   shows one version of the names; the server replaces the names as a whole when its
//!   users or groups change.

use crate::nfs4::Nfs4Status;
use dittofs_vfs::IdNames;
use std::sync::Arc;

/// Which of the two spaces an owner string names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdKind {
    /// `owner`: a uid.
    User,
    /// `owner_group`: a gid.
    Group,
}

/// The domain and the names owner strings are made from and read by (cheap to clone).
#[derive(Clone, Debug, Default)]
pub(crate) struct OwnerMap {
    /// None: numeric strings only.
    domain: Option<Arc<str>>,
    names: Arc<IdNames>,
}

impl OwnerMap {
    /// A map for `domain` (None or empty: numeric strings only) over `names`.
    pub(crate) fn new(domain: Option<&str>, names: Arc<IdNames>) -> OwnerMap {
        OwnerMap {
            domain: domain.filter(|d| !d.is_empty()).map(Arc::from),
            names,
        }
    }

    /// The same domain over other names.
    pub(crate) fn with_names(&self, names: Arc<IdNames>) -> OwnerMap {
        OwnerMap {
            domain: self.domain.clone(),
            names,
        }
    }

    fn name_of(&self, kind: IdKind, id: u32) -> Option<&str> {
        match kind {
            IdKind::User => self.names.user_name(id),
            IdKind::Group => self.names.group_name(id),
        }
    }

    fn id_of(&self, kind: IdKind, name: &str) -> Option<u32> {
        match kind {
            IdKind::User => self.names.uid_of(name),
            IdKind::Group => self.names.gid_of(name),
        }
    }

    /// The owner string of `id`: `name@domain`, or the numeric string.
    pub(crate) fn show(&self, kind: IdKind, id: u32) -> Vec<u8> {
        match (&self.domain, self.name_of(kind, id)) {
            (Some(d), Some(n)) => format!("{n}@{d}").into_bytes(),
            _ => id.to_string().into_bytes(),
        }
    }

    /// The id an owner string given by a client names (see the module rules).
    pub(crate) fn parse(&self, kind: IdKind, s: &[u8]) -> Result<u32, Nfs4Status> {
        if let Some(id) = numeric(s) {
            return Ok(id);
        }
        let domain = self.domain.as_deref().ok_or(Nfs4Status::BadOwner)?;
        let text = std::str::from_utf8(s).map_err(|_| Nfs4Status::BadOwner)?;
        let (name, given) = text.split_once('@').ok_or(Nfs4Status::BadOwner)?;
        if !given.eq_ignore_ascii_case(domain) {
            return Err(Nfs4Status::BadOwner);
        }
        self.id_of(kind, name).ok_or(Nfs4Status::BadOwner)
    }
}

/// A numeric owner string's value: decimal digits, no leading zero, at most `u32::MAX`.
fn numeric(s: &[u8]) -> Option<u32> {
    let digits = !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if !digits || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdKind::{Group, User};
    use Nfs4Status::BadOwner;

    fn names() -> Arc<IdNames> {
        let mut n = IdNames::new();
        n.insert_user(1500, "alice");
        n.insert_group(1600, "staff");
        Arc::new(n)
    }

    fn mapped() -> OwnerMap {
        OwnerMap::new(Some("example.com"), names())
    }

    #[test]
    fn names_with_the_domain_numbers_without_a_name() {
        let m = mapped();
        assert_eq!(m.show(User, 1500), b"alice@example.com");
        assert_eq!(m.show(Group, 1600), b"staff@example.com");
        assert_eq!(m.show(User, 1600), b"1600", "a gid's name is no user's");
        assert_eq!(m.show(Group, 1500), b"1500");
        assert_eq!(m.show(User, 0), b"0");
    }

    #[test]
    fn without_a_domain_everything_is_numeric() {
        for m in [
            OwnerMap::new(None, names()),
            OwnerMap::new(Some(""), names()),
            OwnerMap::default(),
        ] {
            assert_eq!(m.show(User, 1500), b"1500");
            assert_eq!(m.show(Group, 1600), b"1600");
            assert_eq!(m.parse(User, b"1500"), Ok(1500));
            assert_eq!(m.parse(User, b"alice@example.com"), Err(BadOwner));
            assert_eq!(m.parse(User, b"alice"), Err(BadOwner));
        }
    }

    #[test]
    fn parse_accepts_known_names_of_the_domain_and_numbers() {
        let m = mapped();
        let cases: &[(IdKind, &[u8], Result<u32, Nfs4Status>)] = &[
            (User, b"alice@example.com", Ok(1500)),
            (User, b"alice@EXAMPLE.Com", Ok(1500)),
            (Group, b"staff@example.com", Ok(1600)),
            (User, b"1500", Ok(1500)),
            (Group, b"42", Ok(42)),
            (User, b"0", Ok(0)),
            (User, b"4294967295", Ok(u32::MAX)),
            // refused
            (User, b"alice@other.org", Err(BadOwner)),
            (User, b"alice@example.com.evil", Err(BadOwner)),
            (User, b"alice@", Err(BadOwner)),
            (User, b"bob@example.com", Err(BadOwner)),
            (User, b"Alice@example.com", Err(BadOwner)),
            (User, b"staff@example.com", Err(BadOwner)),
            (Group, b"alice@example.com", Err(BadOwner)),
            (User, b"@example.com", Err(BadOwner)),
            (User, b"alice", Err(BadOwner)),
            (User, b"", Err(BadOwner)),
            (User, b"01500", Err(BadOwner)),
            (User, b"+1500", Err(BadOwner)),
            (User, b"-1", Err(BadOwner)),
            (User, b" 1500", Err(BadOwner)),
            (User, b"4294967296", Err(BadOwner)),
            (User, b"1500@example.com", Err(BadOwner)),
            (User, b"al\xffice@example.com", Err(BadOwner)),
        ];
        for (kind, s, want) in cases {
            assert_eq!(
                m.parse(*kind, s),
                *want,
                "{kind:?} {:?}",
                String::from_utf8_lossy(s)
            );
        }
    }

    #[test]
    fn new_names_keep_the_domain() {
        let m = OwnerMap::new(Some("example.com"), Arc::new(IdNames::new()));
        assert_eq!(m.parse(User, b"alice@example.com"), Err(BadOwner));
        let m = m.with_names(names());
        assert_eq!(m.parse(User, b"alice@example.com"), Ok(1500));
        assert_eq!(m.show(User, 1500), b"alice@example.com");
    }
}
