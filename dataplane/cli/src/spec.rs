//! The desired-state document: serde structs mirroring `DesiredState` of the API, read by
//! `config apply` and written by `config get`. The store and share structs double as the
//! JSON/YAML views of `store ... list` and `share show/list`, so any of those documents
//! can be pasted into a config file.
//!
//! Keys are snake_case; unknown keys are errors. A block store's `kind` is `local` or
//! `remote`; `root_mode` is an octal string (`"0755"`) or a number (`493`); chunk sizes
//! and `max_size_bytes` are byte counts or size strings (`4M`, `10G`). Share fields left
//! out take the `share create` defaults (squash `root_to_anonymous`, anon 65534/65534,
//! allowed clients `["*"]`, root mode `0777`). Converting API -> document -> API is
//! lossless.

use crate::parse::{ValueError, check_chunking, format_octal_mode, parse_octal_mode, parse_size};
use dittofs_proto::defaults::SHARE_DEFAULTS;
use dittofs_proto::v1 as pb;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DesiredStateSpec {
    /// 0 or absent: `config apply` uses the server's generation + 1.
    #[serde(default)]
    pub(crate) generation: u64,
    #[serde(default)]
    pub(crate) metadata_stores: Vec<MetadataStoreSpec>,
    #[serde(default)]
    pub(crate) block_stores: Vec<BlockStoreSpec>,
    #[serde(default)]
    pub(crate) shares: Vec<ShareSpec>,
    /// Absent: keep the running adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) adapters: Option<AdaptersSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetadataStoreSpec {
    pub(crate) name: String,
    /// `memory` or `sled`.
    #[serde(rename = "type", default = "default_metadata_type")]
    pub(crate) store_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) path: String,
}

fn default_metadata_type() -> String {
    "sled".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KindSpec {
    #[default]
    Local,
    Remote,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockStoreSpec {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) kind: KindSpec,
    /// `fs` (local) or `s3` (remote); empty = by kind.
    #[serde(rename = "type", default)]
    pub(crate) store_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) s3: Option<S3Spec>,
    /// Local stores: soft cap in bytes (0 = none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) max_size_bytes: u64,
    /// Remote stores: cold-read deadline in seconds (0 = 30).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub(crate) read_timeout_seconds: u32,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct S3Spec {
    pub(crate) bucket: String,
    pub(crate) region: String,
    pub(crate) endpoint: String,
    pub(crate) prefix: String,
    pub(crate) force_path_style: bool,
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) create_bucket: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareSpec {
    pub(crate) name: String,
    pub(crate) metadata: String,
    pub(crate) local: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) remote: String,
    /// `local` (default) or `remote`.
    #[serde(default = "default_durability")]
    pub(crate) durability: String,
    #[serde(default)]
    pub(crate) read_only: bool,
    #[serde(default = "default_squash")]
    pub(crate) squash: String,
    #[serde(default = "default_anon")]
    pub(crate) anon_uid: u32,
    #[serde(default = "default_anon")]
    pub(crate) anon_gid: u32,
    #[serde(default = "default_clients")]
    pub(crate) allowed_clients: Vec<String>,
    /// Privileged source ports only (exports(5) `secure`); absent: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) secure: bool,
    #[serde(
        default = "default_root_mode",
        serialize_with = "ser_mode",
        deserialize_with = "de_mode"
    )]
    pub(crate) root_mode: u32,
    /// Absent: the server's default chunking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) chunking: Option<ChunkingSpec>,
    /// Absent: no recycle bin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) trash: Option<TrashSpec>,
}

// Share defaults: one definition, shared with the server and its configuration file.
fn default_squash() -> String {
    SHARE_DEFAULTS.squash.into()
}
fn default_durability() -> String {
    SHARE_DEFAULTS.durability.into()
}
fn default_anon() -> u32 {
    SHARE_DEFAULTS.anon_id
}
fn default_clients() -> Vec<String> {
    SHARE_DEFAULTS.allowed_clients()
}
fn default_root_mode() -> u32 {
    SHARE_DEFAULTS.root_mode
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChunkingSpec {
    #[serde(deserialize_with = "de_size_u32")]
    pub(crate) min: u32,
    #[serde(deserialize_with = "de_size_u32")]
    pub(crate) avg: u32,
    #[serde(deserialize_with = "de_size_u32")]
    pub(crate) max: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TrashSpec {
    pub(crate) enabled: bool,
    /// 0 = keep forever.
    pub(crate) retention_days: u32,
    /// 0 = unbounded.
    #[serde(deserialize_with = "de_size_u64")]
    pub(crate) max_size_bytes: u64,
    pub(crate) exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdaptersSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nfs: Option<NfsAdapterSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NfsAdapterSpec {
    pub(crate) enabled: bool,
    pub(crate) bind: String,
    pub(crate) port: u32,
    #[serde(default)]
    pub(crate) portmapper_enabled: bool,
    #[serde(default)]
    pub(crate) portmapper_port: u32,
}

// ----------------------------------------------------------------- serde helpers

fn ser_mode<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_octal_mode(*mode))
}

/// A number or a string, as written in a config file.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(u64),
    Str(String),
}

fn de_mode<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match NumOrString::deserialize(d)? {
        NumOrString::Num(n) => match u32::try_from(n) {
            Ok(m) if m <= 0o7777 => Ok(m),
            _ => Err(serde::de::Error::custom(format!(
                "root_mode {n} is out of range; write octal modes as strings, e.g. \"0755\""
            ))),
        },
        NumOrString::Str(s) => parse_octal_mode(&s).map_err(serde::de::Error::custom),
    }
}

fn de_size_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumOrString::deserialize(d)? {
        NumOrString::Num(n) => Ok(n),
        NumOrString::Str(s) => parse_size(&s).map_err(serde::de::Error::custom),
    }
}

fn de_size_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = de_size_u64(d)?;
    u32::try_from(n).map_err(|_| serde::de::Error::custom(format!("chunk size {n} is too large")))
}

// ----------------------------------------------------------------- API <-> document

impl From<&pb::MetadataStore> for MetadataStoreSpec {
    fn from(m: &pb::MetadataStore) -> Self {
        MetadataStoreSpec {
            name: m.name.clone(),
            store_type: m.r#type.clone(),
            path: m.path.clone(),
        }
    }
}

impl From<&MetadataStoreSpec> for pb::MetadataStore {
    fn from(m: &MetadataStoreSpec) -> Self {
        pb::MetadataStore {
            name: m.name.clone(),
            r#type: m.store_type.clone(),
            path: m.path.clone(),
        }
    }
}

impl KindSpec {
    pub(crate) fn to_api(self) -> pb::BlockStoreKind {
        match self {
            KindSpec::Local => pb::BlockStoreKind::Local,
            KindSpec::Remote => pb::BlockStoreKind::Remote,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KindSpec::Local => "local",
            KindSpec::Remote => "remote",
        }
    }
}

impl From<&pb::BlockStore> for BlockStoreSpec {
    fn from(b: &pb::BlockStore) -> Self {
        let kind = match pb::BlockStoreKind::try_from(b.kind) {
            Ok(pb::BlockStoreKind::Remote) => KindSpec::Remote,
            Ok(pb::BlockStoreKind::Local) => KindSpec::Local,
            // Not expected from a server; guess from the type.
            _ if b.r#type == "s3" || b.s3.is_some() => KindSpec::Remote,
            _ => KindSpec::Local,
        };
        BlockStoreSpec {
            name: b.name.clone(),
            kind,
            store_type: b.r#type.clone(),
            path: b.path.clone(),
            s3: b.s3.as_ref().map(|s| S3Spec {
                bucket: s.bucket.clone(),
                region: s.region.clone(),
                endpoint: s.endpoint.clone(),
                prefix: s.prefix.clone(),
                force_path_style: s.force_path_style,
                access_key_id: s.access_key_id.clone(),
                secret_access_key: s.secret_access_key.clone(),
                create_bucket: s.create_bucket,
            }),
            max_size_bytes: b.max_size_bytes,
            read_timeout_seconds: b.read_timeout_seconds,
        }
    }
}

impl From<&BlockStoreSpec> for pb::BlockStore {
    fn from(b: &BlockStoreSpec) -> Self {
        let store_type = if b.store_type.is_empty() {
            match b.kind {
                KindSpec::Local => "fs".to_string(),
                KindSpec::Remote => "s3".to_string(),
            }
        } else {
            b.store_type.clone()
        };
        pb::BlockStore {
            name: b.name.clone(),
            kind: b.kind.to_api() as i32,
            r#type: store_type,
            path: b.path.clone(),
            s3: b.s3.as_ref().map(|s| pb::S3Config {
                bucket: s.bucket.clone(),
                region: s.region.clone(),
                endpoint: s.endpoint.clone(),
                prefix: s.prefix.clone(),
                force_path_style: s.force_path_style,
                access_key_id: s.access_key_id.clone(),
                secret_access_key: s.secret_access_key.clone(),
                create_bucket: s.create_bucket,
            }),
            max_size_bytes: b.max_size_bytes,
            read_timeout_seconds: b.read_timeout_seconds,
        }
    }
}

impl BlockStoreSpec {
    /// A copy with the S3 secret replaced by `***` (for listings).
    pub(crate) fn redacted(mut self) -> Self {
        if let Some(s3) = &mut self.s3
            && !s3.secret_access_key.is_empty()
        {
            s3.secret_access_key = "***".into();
        }
        self
    }
}

impl From<&pb::Share> for ShareSpec {
    fn from(s: &pb::Share) -> Self {
        ShareSpec {
            name: s.name.clone(),
            metadata: s.metadata.clone(),
            local: s.local.clone(),
            remote: s.remote.clone(),
            durability: if s.durability.is_empty() {
                default_durability()
            } else {
                s.durability.clone()
            },
            read_only: s.read_only,
            squash: s.squash.clone(),
            anon_uid: s.anon_uid,
            anon_gid: s.anon_gid,
            allowed_clients: s.allowed_clients.clone(),
            secure: s.secure,
            root_mode: s.root_mode,
            chunking: s.chunking.map(|c| ChunkingSpec {
                min: c.min,
                avg: c.avg,
                max: c.max,
            }),
            trash: s.trash.as_ref().map(|t| TrashSpec {
                enabled: t.enabled,
                retention_days: t.retention_days,
                max_size_bytes: t.max_size_bytes,
                exclude: t.exclude.clone(),
            }),
        }
    }
}

impl From<&ShareSpec> for pb::Share {
    fn from(s: &ShareSpec) -> Self {
        pb::Share {
            name: s.name.clone(),
            metadata: s.metadata.clone(),
            local: s.local.clone(),
            remote: s.remote.clone(),
            durability: s.durability.clone(),
            read_only: s.read_only,
            squash: s.squash.clone(),
            anon_uid: s.anon_uid,
            anon_gid: s.anon_gid,
            allowed_clients: s.allowed_clients.clone(),
            secure: s.secure,
            root_mode: s.root_mode,
            chunking: s.chunking.map(|c| pb::Chunking {
                min: c.min,
                avg: c.avg,
                max: c.max,
            }),
            trash: s.trash.as_ref().map(|t| pb::TrashConfig {
                enabled: t.enabled,
                retention_days: t.retention_days,
                max_size_bytes: t.max_size_bytes,
                exclude: t.exclude.clone(),
            }),
        }
    }
}

impl From<&pb::DesiredState> for DesiredStateSpec {
    fn from(d: &pb::DesiredState) -> Self {
        DesiredStateSpec {
            generation: d.generation,
            metadata_stores: d.metadata_stores.iter().map(Into::into).collect(),
            block_stores: d.block_stores.iter().map(Into::into).collect(),
            shares: d.shares.iter().map(Into::into).collect(),
            adapters: d.adapters.as_ref().map(|a| AdaptersSpec {
                nfs: a.nfs.as_ref().map(|n| NfsAdapterSpec {
                    enabled: n.enabled,
                    bind: n.bind.clone(),
                    port: n.port,
                    portmapper_enabled: n.portmapper_enabled,
                    portmapper_port: n.portmapper_port,
                }),
            }),
        }
    }
}

impl From<&DesiredStateSpec> for pb::DesiredState {
    fn from(d: &DesiredStateSpec) -> Self {
        pb::DesiredState {
            generation: d.generation,
            metadata_stores: d.metadata_stores.iter().map(Into::into).collect(),
            block_stores: d.block_stores.iter().map(Into::into).collect(),
            shares: d.shares.iter().map(Into::into).collect(),
            adapters: d.adapters.as_ref().map(|a| pb::Adapters {
                nfs: a.nfs.as_ref().map(|n| pb::NfsAdapter {
                    enabled: n.enabled,
                    bind: n.bind.clone(),
                    port: n.port,
                    portmapper_enabled: n.portmapper_enabled,
                    portmapper_port: n.portmapper_port,
                }),
            }),
            // Users and grants are managed with `dfsctl user|group|share permission`;
            // a desired-state file leaves them as they are.
            identity: None,
        }
    }
}

/// Why a desired-state file was refused (the message names the key or the object).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpecError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("share {share:?}: {source}")]
    Chunking {
        share: String,
        #[source]
        source: ValueError,
    },
    #[error("block store {0:?}: `s3` settings need kind: remote")]
    S3OnLocal(String),
}

impl DesiredStateSpec {
    /// Parses a YAML or JSON document (JSON is tried first when it starts with `{`, for
    /// its better error positions).
    pub(crate) fn parse(text: &str) -> Result<DesiredStateSpec, SpecError> {
        let spec: DesiredStateSpec = if text.trim_start().starts_with('{') {
            serde_json::from_str(text)?
        } else {
            serde_yaml::from_str(text)?
        };
        spec.check()?;
        Ok(spec)
    }

    /// Client-side checks the serde types cannot express (the server validates the rest).
    fn check(&self) -> Result<(), SpecError> {
        for s in &self.shares {
            if let Some(c) = s.chunking {
                check_chunking(&pb::Chunking {
                    min: c.min,
                    avg: c.avg,
                    max: c.max,
                })
                .map_err(|source| SpecError::Chunking {
                    share: s.name.clone(),
                    source,
                })?;
            }
        }
        for b in &self.block_stores {
            if b.kind == KindSpec::Local && b.s3.is_some() {
                return Err(SpecError::S3OnLocal(b.name.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A share document with the required keys only means what a `Share` with those
    /// fields only means to the server: the shared defaults.
    #[test]
    fn a_share_document_takes_the_shared_defaults() {
        let spec = DesiredStateSpec::parse("shares: [{name: /a, metadata: m, local: l}]").unwrap();
        let bare = pb::Share {
            name: "/a".into(),
            metadata: "m".into(),
            local: "l".into(),
            ..Default::default()
        };
        assert_eq!(
            pb::DesiredState::from(&spec).shares,
            [SHARE_DEFAULTS.fill(bare)]
        );
    }

    fn sample() -> pb::DesiredState {
        pb::DesiredState {
            generation: 7,
            metadata_stores: vec![
                pb::MetadataStore {
                    name: "default".into(),
                    r#type: "sled".into(),
                    path: String::new(),
                },
                pb::MetadataStore {
                    name: "fast".into(),
                    r#type: "memory".into(),
                    path: "/x".into(),
                },
            ],
            block_stores: vec![
                pb::BlockStore {
                    name: "default".into(),
                    kind: pb::BlockStoreKind::Local as i32,
                    r#type: "fs".into(),
                    path: "/srv/blocks".into(),
                    s3: None,
                    max_size_bytes: 50 << 30,
                    read_timeout_seconds: 0,
                },
                pb::BlockStore {
                    name: "archive".into(),
                    kind: pb::BlockStoreKind::Remote as i32,
                    r#type: "s3".into(),
                    path: String::new(),
                    s3: Some(pb::S3Config {
                        bucket: "b".into(),
                        region: "us-east-1".into(),
                        endpoint: "http://127.0.0.1:8333".into(),
                        prefix: "p".into(),
                        force_path_style: true,
                        access_key_id: "AK".into(),
                        secret_access_key: "SK".into(),
                        create_bucket: false,
                    }),
                    max_size_bytes: 0,
                    read_timeout_seconds: 0,
                },
            ],
            shares: vec![
                pb::Share {
                    name: "/export".into(),
                    metadata: "default".into(),
                    local: "default".into(),
                    remote: String::new(),
                    durability: "local".into(),
                    read_only: false,
                    squash: "root_to_anonymous".into(),
                    anon_uid: 65534,
                    anon_gid: 65534,
                    allowed_clients: vec!["*".into()],
                    secure: false,
                    root_mode: 0o777,
                    chunking: None,
                    trash: None,
                },
                pb::Share {
                    name: "/docs".into(),
                    metadata: "fast".into(),
                    local: "default".into(),
                    remote: "archive".into(),
                    durability: "remote".into(),
                    read_only: true,
                    squash: "none".into(),
                    anon_uid: 1000,
                    anon_gid: 0,
                    allowed_clients: vec!["10.0.0.0/8".into(), "127.0.0.1".into()],
                    secure: false,
                    root_mode: 0o1755,
                    chunking: Some(pb::Chunking {
                        min: 1 << 20,
                        avg: 4 << 20,
                        max: 16 << 20,
                    }),
                    trash: Some(pb::TrashConfig {
                        enabled: true,
                        retention_days: 30,
                        max_size_bytes: 10 << 30,
                        exclude: vec!["*.tmp".into()],
                    }),
                },
            ],
            adapters: Some(pb::Adapters {
                nfs: Some(pb::NfsAdapter {
                    enabled: true,
                    bind: "0.0.0.0".into(),
                    port: 12049,
                    portmapper_enabled: false,
                    portmapper_port: 10111,
                }),
            }),
            identity: None,
        }
    }

    #[test]
    fn round_trip_yaml_and_json() {
        let original = sample();
        let spec = DesiredStateSpec::from(&original);
        let yaml = serde_yaml::to_string(&spec).unwrap();
        assert!(yaml.contains("root_mode: '1755'"), "{yaml}");
        assert!(yaml.contains("kind: remote"), "{yaml}");
        let back = DesiredStateSpec::parse(&yaml).unwrap();
        assert_eq!(back, spec);
        assert_eq!(pb::DesiredState::from(&back), original);

        let json = serde_json::to_string_pretty(&spec).unwrap();
        let back = DesiredStateSpec::parse(&json).unwrap();
        assert_eq!(pb::DesiredState::from(&back), original);

        // Without adapters the document has no `adapters` key and stays absent.
        let mut no_adapters = original.clone();
        no_adapters.adapters = None;
        let yaml = serde_yaml::to_string(&DesiredStateSpec::from(&no_adapters)).unwrap();
        assert!(!yaml.contains("adapters"), "{yaml}");
        let back = DesiredStateSpec::parse(&yaml).unwrap();
        assert_eq!(pb::DesiredState::from(&back), no_adapters);
    }

    #[test]
    fn hand_written_file_with_defaults() {
        let text = r#"
metadata_stores:
  - name: default
block_stores:
  - name: default
  - name: archive
    kind: remote
    s3: {bucket: b, region: r}
shares:
  - name: /docs
    metadata: default
    local: default
    root_mode: "0755"
    chunking: {min: 1M, avg: 4M, max: 16M}
    trash: {enabled: true, max_size_bytes: 10G, exclude: ["*.tmp"]}
  - name: /num
    metadata: default
    local: default
    root_mode: 493
  - name: /unquoted
    metadata: default
    local: default
    root_mode: 0750
"#;
        let spec = DesiredStateSpec::parse(text).unwrap();
        assert_eq!(spec.generation, 0);
        let state = pb::DesiredState::from(&spec);
        assert_eq!(state.metadata_stores[0].r#type, "sled");
        assert_eq!(state.block_stores[0].r#type, "fs");
        assert_eq!(state.block_stores[0].kind, pb::BlockStoreKind::Local as i32);
        assert_eq!(state.block_stores[1].r#type, "s3");
        assert_eq!(
            state.block_stores[1].kind,
            pb::BlockStoreKind::Remote as i32
        );
        let docs = &state.shares[0];
        assert_eq!(docs.root_mode, 0o755);
        assert_eq!(docs.squash, "root_to_anonymous");
        assert_eq!((docs.anon_uid, docs.anon_gid), (65534, 65534));
        assert_eq!(docs.allowed_clients, ["*"]);
        assert_eq!(docs.chunking.map(|c| c.max), Some(16 << 20));
        let trash = docs.trash.clone().unwrap();
        assert_eq!(trash.max_size_bytes, 10 << 30);
        assert_eq!(trash.retention_days, 0);
        assert_eq!(state.shares[1].root_mode, 0o755);
        // YAML leaves a leading-zero number as a string: read as octal.
        assert_eq!(state.shares[2].root_mode, 0o750);
        assert!(state.adapters.is_none());
    }

    #[test]
    fn bad_files_are_refused_with_the_key() {
        let e = DesiredStateSpec::parse(
            "shares:\n  - {name: /x, metadata: m, local: l, squahs: none}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("squahs"), "{e}");
        let e = DesiredStateSpec::parse("{\"generation\": 1, \"sharez\": []}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sharez"), "{e}");
        let e = DesiredStateSpec::parse("block_stores: [{name: a, kind: middle}]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("middle"), "{e}");
        let e = DesiredStateSpec::parse(
            "shares: [{name: /x, metadata: m, local: l, root_mode: '0999'}]",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("0999"), "{e}");
        let e = DesiredStateSpec::parse(
            "shares: [{name: /x, metadata: m, local: l, root_mode: 70000}]",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("out of range"), "{e}");
        let e = DesiredStateSpec::parse(
            "shares: [{name: /x, metadata: m, local: l, chunking: {min: 4M, avg: 1M, max: 16M}}]",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("MIN <= AVG"), "{e}");
        let e = DesiredStateSpec::parse("block_stores: [{name: a, s3: {bucket: b}}]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kind: remote"), "{e}");
    }

    #[test]
    fn redaction_hides_only_the_secret() {
        let spec = BlockStoreSpec::from(&sample().block_stores[1]).redacted();
        let s3 = spec.s3.unwrap();
        assert_eq!(s3.secret_access_key, "***");
        assert_eq!(s3.access_key_id, "AK");
    }
}
