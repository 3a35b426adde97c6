//! Export policy of a share over NFS: which clients may mount it, from which source
//! ports, and how their AUTH_SYS identities are squashed (RFC 1813 leaves all three to
//! the server; these are the knobs the reference FAQ and exports(5) users expect).
//!
//! Invariants:
//! - [`ExportPolicy::admits`] is the one check of a caller's address: MOUNT (MNT), every
//!   NFS call on a handle of the share and every NLM call on one go through it;
//! - `secure` (exports(5) `secure`, RFC 2623 section 2.1 "port monitoring") admits only
//!   source ports below 1024, which only a privileged process can bind: with AUTH_SYS the
//!   server trusts the identity a client sends, and a privileged port at least shows that
//!   the client host's root sent it, not any local user. Off by default (see docs/nfs.md).
//!
//! - [`ExportPolicy::caller`] is the one mapping of a call's identity: AUTH_SYS (or
//!   AUTH_NONE, anonymous) is squashed first, then the resulting uid is looked up in the
//!   share's access table ([`ShareAccess`], pushed by the control plane with the policy):
//!   a user's level goes on the credentials for the core to enforce, an unknown uid gets
//!   the share's default level, a disabled user is refused ([`Disabled`]; the NFS
//!   handlers answer NFS3ERR_ACCES / MNT3ERR_ACCES).
//!
//! A bad option is an [`ExportError`] whose message names the offending value; the
//! server prefixes it with the share (and option) it came from.

use crate::rpc::Auth;
use dittofs_types::ShareId;
use dittofs_vfs::{Credentials, Disabled, ShareAccess};
use std::net::{AddrParseError, IpAddr, SocketAddr};
use std::num::ParseIntError;
use std::sync::Arc;

/// An export option that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The address part of a CIDR block.
    #[error("{addr:?} is not an IP address")]
    BadAddress {
        addr: String,
        #[source]
        source: AddrParseError,
    },
    #[error("{prefix:?} is not a prefix length")]
    BadPrefix {
        prefix: String,
        #[source]
        source: ParseIntError,
    },
    #[error("prefix /{prefix} is longer than {max}")]
    PrefixTooLong { prefix: u8, max: u8 },
    /// Neither `*`, an address nor a CIDR block.
    #[error("{pattern:?} is not \"*\", an IP address or a CIDR block")]
    BadPattern {
        pattern: String,
        #[source]
        source: AddrParseError,
    },
    #[error("unknown squash mode {0:?}")]
    UnknownSquash(String),
}

/// Identity mapping of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Squash {
    /// Identities are used as sent.
    None,
    /// Root's identities become the anonymous ones (default), as Linux knfsd's
    /// `root_squash` does: uid 0 becomes `anon_uid`, and gid 0 becomes `anon_gid` both as
    /// the primary group and wherever it stands among the supplementary groups. Other ids
    /// are kept (a caller with uid 1000 and gid 0 keeps uid 1000).
    RootToAnonymous,
    /// Every caller becomes the anonymous user, with no supplementary groups.
    AllToAnonymous,
}

/// A client address pattern: `*`, an address, or a CIDR block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientPattern {
    Any,
    Addr(IpAddr),
    Cidr(IpAddr, u8),
}

impl ClientPattern {
    pub fn parse(s: &str) -> Result<ClientPattern, ExportError> {
        let s = s.trim();
        if s == "*" {
            return Ok(ClientPattern::Any);
        }
        if let Some((a, p)) = s.split_once('/') {
            let addr: IpAddr = a.parse().map_err(|source| ExportError::BadAddress {
                addr: a.to_owned(),
                source,
            })?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = p.parse().map_err(|source| ExportError::BadPrefix {
                prefix: p.to_owned(),
                source,
            })?;
            if prefix > max {
                return Err(ExportError::PrefixTooLong { prefix, max });
            }
            return Ok(ClientPattern::Cidr(addr, prefix));
        }
        s.parse::<IpAddr>()
            .map(ClientPattern::Addr)
            .map_err(|source| ExportError::BadPattern {
                pattern: s.to_owned(),
                source,
            })
    }

    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match self {
            ClientPattern::Any => true,
            ClientPattern::Addr(a) => canonical(*a) == ip,
            ClientPattern::Cidr(net, prefix) => match (canonical(*net), ip) {
                (IpAddr::V4(n), IpAddr::V4(i)) => {
                    let mask = if *prefix == 0 {
                        0
                    } else {
                        u32::MAX << (32 - u32::from(*prefix))
                    };
                    u32::from(n) & mask == u32::from(i) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(i)) => {
                    let mask = if *prefix == 0 {
                        0
                    } else {
                        u128::MAX << (128 - u32::from(*prefix))
                    };
                    u128::from(n) & mask == u128::from(i) & mask
                }
                _ => false,
            },
        }
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Source ports below this are privileged (only root may bind them).
pub const FIRST_UNPRIVILEGED_PORT: u16 = 1024;

/// Why [`ExportPolicy::admits`] refused a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The address matches no `allowed_clients` pattern.
    NotAllowed,
    /// The share is `secure` and the source port is 1024 or above.
    InsecurePort,
}

/// How one share is exported over NFS.
#[derive(Clone, Debug)]
pub struct ExportPolicy {
    pub share: ShareId,
    pub squash: Squash,
    pub anon_uid: u32,
    pub anon_gid: u32,
    pub allowed: Vec<ClientPattern>,
    /// Only callers on a privileged source port (< 1024) are served.
    pub secure: bool,
    /// Users' levels on the share (default: everyone `read-write`).
    pub access: Arc<ShareAccess>,
}

impl ExportPolicy {
    /// Builds a policy from configuration strings.
    pub fn from_options(
        share: ShareId,
        squash: &str,
        anon_uid: u32,
        anon_gid: u32,
        allowed: &[String],
    ) -> Result<ExportPolicy, ExportError> {
        let squash = match squash {
            "none" | "no_root_squash" => Squash::None,
            "root_to_anonymous" | "root_squash" | "" => Squash::RootToAnonymous,
            "all_to_anonymous" | "all_squash" => Squash::AllToAnonymous,
            other => return Err(ExportError::UnknownSquash(other.to_owned())),
        };
        let allowed = allowed
            .iter()
            .map(|p| ClientPattern::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ExportPolicy {
            share,
            squash,
            anon_uid,
            anon_gid,
            allowed,
            secure: false,
            access: Arc::default(),
        })
    }

    /// The same policy, requiring privileged source ports when `secure` is true.
    pub fn with_secure(self, secure: bool) -> ExportPolicy {
        ExportPolicy { secure, ..self }
    }

    /// The same policy with the share's access table.
    pub fn with_access(self, access: Arc<ShareAccess>) -> ExportPolicy {
        ExportPolicy { access, ..self }
    }

    /// An open export without squashing (tests, trusted setups).
    pub fn open(share: ShareId) -> ExportPolicy {
        ExportPolicy {
            share,
            squash: Squash::None,
            anon_uid: 65534,
            anon_gid: 65534,
            allowed: vec![ClientPattern::Any],
            secure: false,
            access: Arc::default(),
        }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|p| p.matches(ip))
    }

    /// Whether a call from `client` (address and source port) is served.
    pub fn admits(&self, client: SocketAddr) -> Result<(), Refusal> {
        if !self.allows(client.ip()) {
            return Err(Refusal::NotAllowed);
        }
        if self.secure && client.port() >= FIRST_UNPRIVILEGED_PORT {
            return Err(Refusal::InsecurePort);
        }
        Ok(())
    }

    /// The credentials of a call's identity (see the module invariants).
    pub fn caller(&self, auth: &Auth) -> Result<Credentials, Disabled> {
        let cred = match auth {
            Auth::Sys { uid, gid, gids, .. } => self.credentials(Some((*uid, *gid, gids))),
            _ => self.credentials(None),
        };
        let level = self.access.level_of_uid(cred.uid)?;
        Ok(cred.with_level(level))
    }

    /// Maps an AUTH_SYS identity (or none: AUTH_NONE is anonymous) to the credentials
    /// the filesystem sees (squashing only; [`ExportPolicy::caller`] adds the level).
    pub fn credentials(&self, sys: Option<(u32, u32, &[u32])>) -> Credentials {
        let anon = Credentials::user(self.anon_uid, self.anon_gid);
        let Some((uid, gid, gids)) = sys else {
            return anon;
        };
        let root_gid = |g: u32| if g == 0 { self.anon_gid } else { g };
        match self.squash {
            Squash::AllToAnonymous => anon,
            Squash::RootToAnonymous => Credentials {
                groups: gids.iter().map(|&g| root_gid(g)).collect(),
                ..Credentials::user(if uid == 0 { self.anon_uid } else { uid }, root_gid(gid))
            },
            Squash::None => Credentials {
                groups: gids.to_vec(),
                ..Credentials::user(uid, gid)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(ClientPattern::parse("*").unwrap().matches(ip("1.2.3.4")));
        assert!(
            ClientPattern::parse("10.0.0.0/8")
                .unwrap()
                .matches(ip("10.9.8.7"))
        );
        assert!(
            !ClientPattern::parse("10.0.0.0/8")
                .unwrap()
                .matches(ip("11.0.0.1"))
        );
        assert!(
            ClientPattern::parse("127.0.0.1")
                .unwrap()
                .matches(ip("::ffff:127.0.0.1"))
        );
        assert!(ClientPattern::parse("::1/128").unwrap().matches(ip("::1")));
        assert!(
            ClientPattern::parse("0.0.0.0/0")
                .unwrap()
                .matches(ip("8.8.8.8"))
        );
        assert!(ClientPattern::parse("10.0.0.0/33").is_err());
        assert!(ClientPattern::parse("host.example").is_err());
    }

    /// Refusals name the offending value, as the strings did, and keep the parse error.
    #[test]
    fn refusals_name_the_value() {
        use std::error::Error as _;
        let msg = |s: &str| ClientPattern::parse(s).err().map(|e| e.to_string());
        let cases = [
            ("10.0.0.0/33", "prefix /33 is longer than 32"),
            ("x/8", "\"x\" is not an IP address"),
            ("1.2.3.4/999", "\"999\" is not a prefix length"),
            (
                "host.example",
                "\"host.example\" is not \"*\", an IP address or a CIDR block",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(msg(input).as_deref(), Some(want), "{input}");
        }
        let e = ClientPattern::parse("x/8").err();
        assert!(e.as_ref().and_then(|e| e.source()).is_some(), "{e:?}");
        let squash = ExportPolicy::from_options(ShareId(1), "bogus", 1, 1, &[]);
        assert_eq!(
            squash.err().map(|e| e.to_string()).as_deref(),
            Some("unknown squash mode \"bogus\"")
        );
    }

    /// The squash matrix: each mode against AUTH_SYS identities with uid 0, gid 0, and
    /// group 0 among the supplementary groups (knfsd's rules: root_squash maps all three,
    /// all_squash maps everyone and drops the groups, none keeps everything).
    #[test]
    fn squash_matrix() {
        let policy = |mode: &str| {
            ExportPolicy::from_options(ShareId(1), mode, 65534, 65533, &["*".into()]).unwrap()
        };
        let cred = |uid, gid, groups: &[u32]| Credentials {
            groups: groups.to_vec(),
            ..Credentials::user(uid, gid)
        };
        let anon = cred(65534, 65533, &[]);
        type Case<'a> = ((u32, u32, &'a [u32]), Credentials);
        let cases: [(&str, Vec<Case>); 3] = [
            (
                "root_to_anonymous",
                vec![
                    ((0, 0, &[0, 5]), cred(65534, 65533, &[65533, 5])),
                    ((0, 7, &[8]), cred(65534, 7, &[8])),
                    ((1000, 0, &[]), cred(1000, 65533, &[])),
                    ((1000, 100, &[4, 0, 27]), cred(1000, 100, &[4, 65533, 27])),
                    ((1000, 100, &[4]), cred(1000, 100, &[4])),
                ],
            ),
            (
                "all_to_anonymous",
                vec![
                    ((0, 0, &[0]), anon.clone()),
                    ((1000, 0, &[]), anon.clone()),
                    ((1000, 100, &[0, 4]), anon.clone()),
                ],
            ),
            (
                "none",
                vec![
                    ((0, 0, &[0]), cred(0, 0, &[0])),
                    ((1000, 0, &[]), cred(1000, 0, &[])),
                    ((1000, 100, &[0, 4]), cred(1000, 100, &[0, 4])),
                ],
            ),
        ];
        for (mode, rows) in cases {
            let p = policy(mode);
            for ((uid, gid, groups), want) in rows {
                assert_eq!(
                    p.credentials(Some((uid, gid, groups))),
                    want,
                    "{mode}: uid {uid} gid {gid} groups {groups:?}"
                );
            }
            assert_eq!(p.credentials(None), anon, "{mode}: AUTH_NONE");
        }
    }

    /// `secure` admits privileged source ports only; the address check comes first.
    #[test]
    fn secure_admits_privileged_ports_only() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        let open =
            ExportPolicy::from_options(ShareId(1), "", 1, 1, &["10.0.0.0/8".into()]).unwrap();
        assert_eq!(open.admits(at("10.1.1.1:40000")), Ok(()));
        assert_eq!(open.admits(at("10.1.1.1:700")), Ok(()));
        assert_eq!(open.admits(at("11.1.1.1:700")), Err(Refusal::NotAllowed));
        let secure = open.with_secure(true);
        assert_eq!(secure.admits(at("10.1.1.1:1023")), Ok(()));
        assert_eq!(secure.admits(at("10.1.1.1:1")), Ok(()));
        assert_eq!(
            secure.admits(at("10.1.1.1:1024")),
            Err(Refusal::InsecurePort)
        );
        assert_eq!(
            secure.admits(at("[::ffff:10.1.1.1]:40000")),
            Err(Refusal::InsecurePort)
        );
        assert_eq!(
            secure.admits(at("11.1.1.1:40000")),
            Err(Refusal::NotAllowed)
        );
    }

    #[test]
    fn squash() {
        let p = ExportPolicy::from_options(
            ShareId(1),
            "root_to_anonymous",
            65534,
            65534,
            &["*".into()],
        )
        .unwrap();
        assert_eq!(p.credentials(Some((0, 0, &[1]))).uid, 65534);
        assert_eq!(
            p.credentials(Some((5, 6, &[7]))),
            Credentials {
                groups: vec![7],
                ..Credentials::user(5, 6)
            }
        );
        assert_eq!(p.credentials(None).uid, 65534);
        let p = ExportPolicy::from_options(ShareId(1), "all_to_anonymous", 99, 98, &[]).unwrap();
        assert_eq!(p.credentials(Some((5, 6, &[]))).gid, 98);
        assert!(!p.allows("1.2.3.4".parse().unwrap()));
        let p = ExportPolicy::from_options(ShareId(1), "none", 1, 1, &["*".into()]).unwrap();
        assert_eq!(p.credentials(Some((0, 0, &[]))).uid, 0);
        assert!(ExportPolicy::from_options(ShareId(1), "weird", 1, 1, &[]).is_err());
    }

    /// The level comes from the squashed uid; unknown uids get the default, disabled
    /// users are refused.
    #[test]
    fn caller_levels_follow_the_squashed_uid() {
        use dittofs_vfs::{AccessLevel, UserAccess};
        let mut t = ShareAccess::new(AccessLevel::Read);
        t.insert(1000, UserAccess::Enabled(AccessLevel::ReadWrite));
        t.insert(1001, UserAccess::Disabled);
        t.insert(65534, UserAccess::Enabled(AccessLevel::None));
        let p = ExportPolicy::from_options(ShareId(1), "root_to_anonymous", 65534, 65534, &[])
            .unwrap()
            .with_access(Arc::new(t));
        let sys = |uid| Auth::Sys {
            stamp: 0,
            machine: Vec::new(),
            uid,
            gid: 100,
            gids: Vec::new(),
        };
        let level = |uid| p.caller(&sys(uid)).map(|c| (c.uid, c.level));
        assert_eq!(level(1000), Ok((1000, AccessLevel::ReadWrite)));
        assert_eq!(level(1001), Err(Disabled { uid: 1001 }));
        assert_eq!(level(7), Ok((7, AccessLevel::Read)), "unknown uid: default");
        assert_eq!(
            level(0),
            Ok((65534, AccessLevel::None)),
            "root squashed first"
        );
        assert_eq!(
            p.caller(&Auth::None).map(|c| c.level),
            Ok(AccessLevel::None),
            "AUTH_NONE is the anonymous uid"
        );
    }
}
