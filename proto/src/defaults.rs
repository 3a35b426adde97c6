//! The defaults of a share's options, defined once for every place that reads a share:
//! the `dfs` configuration file (a key left out), the control API (an empty string or a
//! zero in a `Share`, see `control.proto`) and `dfsctl`'s documents and flags (a key or
//! flag left out). Each of those reads these values; tests in `dittofs-server` and
//! `dittofs-cli` check that their parsing of an empty share gives [`SHARE_DEFAULTS`].

use crate::v1;

/// The value each share option takes when it is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareDefaults {
    /// Metadata and local block store name.
    pub store: &'static str,
    /// `local`: COMMIT/fsync return once data is durable on the local tier.
    pub durability: &'static str,
    pub squash: &'static str,
    /// Anonymous uid and gid (squashed callers).
    pub anon_id: u32,
    pub allowed_clients: &'static [&'static str],
    pub root_mode: u32,
}

/// The share defaults (see the module documentation).
pub const SHARE_DEFAULTS: ShareDefaults = ShareDefaults {
    store: "default",
    durability: "local",
    squash: "root_to_anonymous",
    anon_id: 65534,
    allowed_clients: &["*"],
    root_mode: 0o777,
};

impl ShareDefaults {
    pub fn allowed_clients(&self) -> Vec<String> {
        self.allowed_clients
            .iter()
            .map(|c| (*c).to_owned())
            .collect()
    }

    /// `s` as the server reads it: every empty or zero field that has a default takes it
    /// (`read_only`, `secure`, `remote`, `chunking` and `trash` have none: empty means off).
    pub fn fill(&self, mut s: v1::Share) -> v1::Share {
        let text = |v: &mut String, d: &str| {
            if v.is_empty() {
                *v = d.to_owned();
            }
        };
        let number = |v: &mut u32, d: u32| {
            if *v == 0 {
                *v = d;
            }
        };
        text(&mut s.metadata, self.store);
        text(&mut s.local, self.store);
        text(&mut s.durability, self.durability);
        text(&mut s.squash, self.squash);
        number(&mut s.anon_uid, self.anon_id);
        number(&mut s.anon_gid, self.anon_id);
        number(&mut s.root_mode, self.root_mode);
        if s.allowed_clients.is_empty() {
            s.allowed_clients = self.allowed_clients();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_sets_only_what_is_missing() {
        let empty = SHARE_DEFAULTS.fill(v1::Share {
            name: "/a".into(),
            ..Default::default()
        });
        assert_eq!(
            (empty.metadata.as_str(), empty.local.as_str()),
            ("default", "default")
        );
        assert_eq!(
            (empty.anon_uid, empty.anon_gid, empty.root_mode),
            (65534, 65534, 0o777)
        );
        assert_eq!(empty.allowed_clients, ["*"]);
        assert_eq!(
            (empty.squash.as_str(), empty.durability.as_str()),
            ("root_to_anonymous", "local")
        );
        assert!(empty.remote.is_empty() && empty.chunking.is_none() && empty.trash.is_none());
        let given = v1::Share {
            name: "/b".into(),
            metadata: "m".into(),
            squash: "none".into(),
            anon_uid: 1,
            root_mode: 0o700,
            allowed_clients: vec!["10.0.0.0/8".into()],
            ..Default::default()
        };
        let filled = SHARE_DEFAULTS.fill(given.clone());
        assert_eq!(
            (filled.metadata, filled.squash),
            (given.metadata, given.squash)
        );
        assert_eq!((filled.anon_uid, filled.root_mode), (1, 0o700));
        assert_eq!(filled.allowed_clients, given.allowed_clients);
    }
}
