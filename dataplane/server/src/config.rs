//! `dfs` configuration: YAML file, `DITTOFS_*` environment overrides, defaults, validation.
//!
//! Every key of the file can also be set by an environment variable named
//! `DITTOFS_` + the key path joined by `_`, upper-cased: `logging.level` is
//! `DITTOFS_LOGGING_LEVEL`, `nfs.port` is `DITTOFS_NFS_PORT`. The value is parsed as YAML,
//! so lists and maps can be given too (`DITTOFS_SHARES='[{name: /a}]'`).

use dittofs_proto::defaults::SHARE_DEFAULTS;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {detail}")]
    Parse { path: String, detail: String },
    #[error("environment variable {var}: {detail}")]
    Env { var: String, detail: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// `control.token` is set but not acceptable.
    #[error("invalid configuration: control.token: {0}")]
    Token(#[source] InvalidToken),
    /// `nfs.v4.id_domain` is not a DNS domain name.
    #[error(
        "invalid configuration: nfs.v4.id_domain {domain:?} is not a DNS domain name: {source}"
    )]
    IdDomain {
        domain: String,
        #[source]
        source: BadDomain,
    },
    /// A secret is given two ways (the value and a file holding it).
    #[error(
        "invalid configuration: {first} and {second} are both set; give the secret one way only"
    )]
    SecretConflict { first: String, second: String },
}

/// Why a control token is not acceptable (configured, or read from a file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidToken {
    #[error("the control token must be at least 16 characters")]
    TooShort,
    #[error("the control token must be printable ASCII without spaces")]
    NotPrintable,
}

/// Checks a control token: at least 16 printable ASCII characters, no spaces.
pub fn check_token(t: &str) -> Result<(), InvalidToken> {
    if t.len() < 16 {
        return Err(InvalidToken::TooShort);
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidToken::NotPrintable);
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where embedded metadata, local blocks and server state live.
    pub data_dir: Option<PathBuf>,
    /// After SIGTERM/SIGINT the process exits within this many seconds: half of it for
    /// NFS connections to finish their calls (clients that are not reading are dropped
    /// at once), the rest for flushing and closing the stores. Keep it below the
    /// orchestrator's grace period (Kubernetes: terminationGracePeriodSeconds, 30 by
    /// default), which kills the process when it expires.
    pub shutdown_timeout_seconds: u32,
    pub logging: Logging,
    pub nfs: NfsSection,
    pub http: HttpSection,
    pub telemetry: Telemetry,
    pub control: ControlSection,
    pub metadata_stores: Vec<MetadataStoreCfg>,
    pub block_stores: BlockStores,
    pub shares: Vec<ShareCfg>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Logging {
    /// TRACE, DEBUG, INFO, WARN or ERROR (case-insensitive).
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NfsSection {
    pub enabled: bool,
    pub bind: String,
    /// NFS and MOUNT share this port.
    pub port: u16,
    /// Largest RPC record accepted; larger records close the connection.
    pub max_record_bytes: u32,
    /// Calls processed concurrently per connection.
    pub max_inflight_per_connection: u32,
    /// Bytes the calls and unwritten replies of one connection may hold; a client that
    /// does not read its replies stops being read once they fill it.
    pub max_buffered_bytes_per_connection: u32,
    /// Bytes all connections' calls and unwritten replies may hold together.
    pub max_buffered_bytes: u32,
    /// A connection whose client takes none of its replies for this long is closed.
    pub reply_timeout_seconds: u32,
    /// Client connections served at once; more are closed at once. 0 = a quarter of the
    /// process's file descriptor limit, so clients never take the descriptors the server
    /// needs for its files and its other listeners.
    pub max_connections: u32,
    pub portmapper: Portmapper,
    /// NFSv3 byte-range locks (NLM v4) and the status monitor (NSM v1); the grace period
    /// after a start is NFSv4's too.
    pub locks: LocksSection,
    /// NFSv4 settings.
    pub v4: V4Section,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct V4Section {
    /// Read delegations (recalled when another client or protocol writes, truncates,
    /// removes, renames or locks the file). On by default; see docs/nfs.md.
    pub delegations: bool,
    /// Write delegations as well (on by default; needs
    /// `delegations`; recalled on any other access to the file).
    pub write_delegations: bool,
    /// The NFSv4 lease: a silent client is expired after it, an unanswered delegation
    /// recall revokes the delegation after it.
    pub lease_seconds: u32,
    /// How long past its lease a silent client keeps its state while nobody conflicts
    /// with it (a courtesy client); 0: it loses its state when the lease runs out.
    pub courtesy_seconds: u32,
    /// The domain of NFSv4 owner strings (RFC 7530 section 5.9): set (e.g.
    /// `example.com`), owners with a user or group in the identity store are shown as
    /// `name@domain` and accepted so; empty (the default), owners are numeric strings,
    /// as the Linux client uses them with AUTH_SYS.
    #[serde(deserialize_with = "string_or_null")]
    pub id_domain: String,
}

/// A string key that a YAML null (`key:` or an empty `DITTOFS_*` variable) leaves empty.
fn string_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl Default for V4Section {
    fn default() -> Self {
        V4Section {
            delegations: true,
            write_delegations: true,
            lease_seconds: 90,
            courtesy_seconds: 86_400,
            id_domain: String::new(),
        }
    }
}

/// Longest accepted `nfs.v4.id_domain` (a DNS name's limit).
const MAX_DOMAIN: usize = 253;

/// Why `nfs.v4.id_domain` is not a DNS domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadDomain {
    #[error("longer than {MAX_DOMAIN} characters")]
    TooLong,
    #[error(
        "label {0:?}: use 1-63 characters of A-Z a-z 0-9 and '-', not starting or ending with '-'"
    )]
    Label(String),
}

/// Checks an id domain: dot-separated labels of 1-63 letters, digits and hyphens (not
/// at a label's ends), at most 253 characters; empty is "no domain".
pub fn check_id_domain(d: &str) -> Result<(), BadDomain> {
    if d.is_empty() {
        return Ok(());
    }
    if d.len() > MAX_DOMAIN {
        return Err(BadDomain::TooLong);
    }
    let ok_label = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    match d.split('.').find(|l| !ok_label(l)) {
        Some(bad) => Err(BadDomain::Label(bad.to_owned())),
        None => Ok(()),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LocksSection {
    /// After a start, only reclaims of locks held before are granted for this long
    /// (clients learn of the restart through SM_NOTIFY). Linux lockd uses 90 s.
    pub grace_seconds: u32,
    /// Port of the clients' portmappers (rpcbind), asked where their lockd and statd
    /// take callbacks. 111; other values are for tests only.
    pub client_portmapper_port: u16,
}

impl Default for LocksSection {
    fn default() -> Self {
        LocksSection {
            grace_seconds: 90,
            client_portmapper_port: 111,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Portmapper {
    pub enabled: bool,
    pub port: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    pub enabled: bool,
    /// Loopback by default: /metrics is not meant for the world.
    pub bind: String,
    pub port: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    /// OTLP/gRPC endpoint (e.g. http://127.0.0.1:4317); empty = no trace export.
    pub otlp_endpoint: String,
    pub service_name: String,
}

/// The gRPC control API (`dfsctl`, the operator).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSection {
    pub enabled: bool,
    /// Loopback by default: the API is administrative.
    pub bind: String,
    pub port: u16,
    /// Bearer token clients must send (prefer `token_file` or `DITTOFS_CONTROL_TOKEN`
    /// over writing it in the file). Empty: read `token_file`; if that is empty too,
    /// `<data_dir>/control-token` is used, generated (mode 0600) on first start. Setting
    /// both `token` and `token_file` is a configuration error.
    pub token: String,
    pub token_file: String,
}

impl ControlSection {
    /// A configured token must be acceptable, and given one way only.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.token.is_empty() {
            return Ok(());
        }
        if !self.token_file.is_empty() {
            return Err(ConfigError::SecretConflict {
                first: "control.token".into(),
                second: "control.token_file".into(),
            });
        }
        check_token(self.token.trim()).map_err(ConfigError::Token)
    }
}

impl Default for ControlSection {
    fn default() -> Self {
        ControlSection {
            enabled: true,
            bind: "127.0.0.1".into(),
            port: 9000,
            token: String::new(),
            token_file: String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetadataStoreCfg {
    pub name: String,
    /// `memory` or `sled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Directory of a persistent store (default: `<data_dir>/metadata/<name>`).
    #[serde(default)]
    pub path: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BlockStores {
    pub local: Vec<LocalBlockStoreCfg>,
    /// Remote tiers (S3, or `memory` for tests). Shares name one with `remote:`; shares
    /// whose remotes have the same bucket + endpoint + prefix share uploads, dedup and GC.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote: Vec<RemoteBlockStoreCfg>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteBlockStoreCfg {
    pub name: String,
    /// `s3`, or `memory` (an in-process object store that is lost at exit: tests only).
    #[serde(rename = "type")]
    pub kind: String,
    pub bucket: String,
    pub region: String,
    /// S3-compatible endpoint URL (empty: AWS).
    pub endpoint: String,
    pub prefix: String,
    pub force_path_style: bool,
    pub access_key_id: String,
    /// Empty: `secret_access_key_file`, else `AWS_SECRET_ACCESS_KEY` in the environment.
    pub secret_access_key: String,
    /// A file holding the secret key (its trailing newline ignored), read when the store
    /// is opened; excludes `secret_access_key`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_access_key_file: String,
    /// A cold read (of a chunk evicted from the local tier) fails with EIO when the
    /// remote has not answered within this many seconds; 0 = 30.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub read_timeout_seconds: u32,
    /// Create the bucket when it does not exist (S3-compatible servers, first setup).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub create_bucket: bool,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// Per-share recycle bin (`#recycle` at the share root).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrashCfg {
    pub enabled: bool,
    /// Purge items older than this many days; 0 = keep forever.
    pub retention_days: u32,
    /// Cap in bytes, oldest evicted first; 0 = unbounded.
    pub max_size: u64,
    /// Deletions whose name or share-relative path matches a glob bypass the bin.
    pub exclude: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocalBlockStoreCfg {
    pub name: String,
    /// `fs` (directory on local disk).
    #[serde(rename = "type", default = "default_fs")]
    pub kind: String,
    /// Default: `<data_dir>/blocks/<name>`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Soft cap of the local tier in bytes (chunks + write journal); 0 = unbounded.
    /// Above it, chunks already on the remote are evicted (only when every share on this
    /// store uses the same remote); writers wait (bounded) for flushes, uploads and
    /// eviction to make room (docs/remote-tier.md, "Backpressure").
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_size: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn default_fs() -> String {
    "fs".into()
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShareCfg {
    /// Export path, e.g. `/export`.
    pub name: String,
    #[serde(default = "default_name")]
    pub metadata: String,
    #[serde(default = "default_name")]
    pub local: String,
    #[serde(default)]
    pub read_only: bool,
    /// `none`, `root_to_anonymous` (default) or `all_to_anonymous`.
    #[serde(default = "default_squash")]
    pub squash: String,
    #[serde(default = "default_anon")]
    pub anon_uid: u32,
    #[serde(default = "default_anon")]
    pub anon_gid: u32,
    /// Client address patterns allowed to mount: `*`, an IP, a CIDR (`10.0.0.0/8`).
    #[serde(default = "default_clients")]
    pub allowed_clients: Vec<String>,
    /// Serve only calls from privileged source ports (< 1024), as exports(5) `secure`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secure: bool,
    /// Mode of the share root when the share is first created (octal string or number).
    #[serde(default = "default_root_mode")]
    pub root_mode: u32,
    /// FastCDC chunk sizes in bytes for this share (default: 1 MiB / 4 MiB / 16 MiB).
    #[serde(default)]
    pub chunking: Option<Chunking>,
    /// Remote block store (S3 tier); none = local tier only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// `local` (default): COMMIT/fsync return once data is durable on the local tier and
    /// uploads follow; `remote`: once it is also confirmed on the remote (needs `remote`).
    #[serde(default = "default_durability")]
    pub durability: String,
    #[serde(default)]
    pub trash: TrashCfg,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Chunking {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

/// Default of `shutdown_timeout_seconds`: well below Kubernetes' default grace (30 s).
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS: u32 = 20;

// Share defaults: one definition, shared with the control API and dfsctl.
fn default_name() -> String {
    SHARE_DEFAULTS.store.into()
}
fn default_durability() -> String {
    SHARE_DEFAULTS.durability.into()
}
fn default_squash() -> String {
    SHARE_DEFAULTS.squash.into()
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

impl ShareCfg {
    /// Share `name` with every option at its default (as a file entry with the name only).
    pub fn with_defaults(name: &str) -> ShareCfg {
        ShareCfg {
            name: name.into(),
            metadata: default_name(),
            local: default_name(),
            read_only: false,
            squash: default_squash(),
            anon_uid: default_anon(),
            anon_gid: default_anon(),
            allowed_clients: default_clients(),
            secure: false,
            root_mode: default_root_mode(),
            chunking: None,
            remote: None,
            durability: default_durability(),
            trash: TrashCfg::default(),
        }
    }
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            level: "INFO".into(),
            format: "text".into(),
        }
    }
}

impl Default for NfsSection {
    fn default() -> Self {
        NfsSection {
            enabled: true,
            bind: "0.0.0.0".into(),
            port: 12049,
            max_record_bytes: 4 * 1024 * 1024,
            max_inflight_per_connection: 64,
            max_buffered_bytes_per_connection: 32 << 20,
            max_buffered_bytes: 512 << 20,
            reply_timeout_seconds: 30,
            max_connections: 0,
            portmapper: Portmapper::default(),
            locks: LocksSection::default(),
            v4: V4Section::default(),
        }
    }
}

impl Default for Portmapper {
    fn default() -> Self {
        Portmapper {
            enabled: false,
            port: 10111,
        }
    }
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            enabled: true,
            bind: "127.0.0.1".into(),
            port: 12080,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: None,
            shutdown_timeout_seconds: DEFAULT_SHUTDOWN_TIMEOUT_SECONDS,
            logging: Logging::default(),
            nfs: NfsSection::default(),
            http: HttpSection::default(),
            telemetry: Telemetry::default(),
            control: ControlSection::default(),
            metadata_stores: vec![MetadataStoreCfg {
                name: default_name(),
                kind: "sled".into(),
                path: None,
            }],
            block_stores: BlockStores {
                local: vec![LocalBlockStoreCfg {
                    name: default_name(),
                    kind: "fs".into(),
                    path: None,
                    max_size: 0,
                }],
                remote: Vec::new(),
            },
            shares: vec![ShareCfg::with_defaults("/export")],
        }
    }
}

/// The data directory when none is configured: `/var/lib/dittofs` for root,
/// `$XDG_DATA_HOME/dittofs` or `~/.local/share/dittofs` otherwise.
pub fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return PathBuf::from("/var/lib/dittofs");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("dittofs");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/dittofs"),
        None => PathBuf::from("./dittofs-data"),
    }
}

impl Config {
    /// Loads `file` (if given) over the defaults, then applies `DITTOFS_*` variables from
    /// `env`, then validates.
    pub fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut value = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                let v: serde_yaml::Value =
                    serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
                        path: p.display().to_string(),
                        detail: e.to_string(),
                    })?;
                if v.is_null() {
                    serde_yaml::Value::Mapping(Default::default())
                } else {
                    v
                }
            }
            None => serde_yaml::Value::Mapping(Default::default()),
        };
        apply_env(&mut value, env)?;
        let cfg: Config =
            serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Parse {
                path: file
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(environment)".into()),
                detail: format!("{}: {}", e.path(), e.inner()),
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        match self.logging.level.to_ascii_uppercase().as_str() {
            "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" => {}
            other => {
                return bad(format!(
                    "logging.level {other:?}: use TRACE, DEBUG, INFO, WARN or ERROR"
                ));
            }
        }
        if !matches!(self.logging.format.as_str(), "text" | "json") {
            return bad(format!(
                "logging.format {:?}: use text or json",
                self.logging.format
            ));
        }
        if self.nfs.max_record_bytes < 64 * 1024 || self.nfs.max_record_bytes > 64 * 1024 * 1024 {
            return bad("nfs.max_record_bytes must be between 64 KiB and 64 MiB".into());
        }
        let least = dittofs_nfs::server::min_buffered_bytes_per_connection(
            self.nfs.max_record_bytes as usize,
        );
        if (self.nfs.max_buffered_bytes_per_connection as usize) < least {
            return bad(format!(
                "nfs.max_buffered_bytes_per_connection must be at least {least} (one largest \
                 record, nfs.max_record_bytes, plus one largest reply, 1 MiB)"
            ));
        }
        if self.nfs.max_buffered_bytes < self.nfs.max_buffered_bytes_per_connection {
            return bad(
                "nfs.max_buffered_bytes must be at least nfs.max_buffered_bytes_per_connection"
                    .into(),
            );
        }
        if !(2..=3600).contains(&self.nfs.v4.lease_seconds) {
            return bad("nfs.v4.lease_seconds must be between 2 and 3600".into());
        }
        if self.nfs.v4.courtesy_seconds > 7 * 86_400 {
            return bad("nfs.v4.courtesy_seconds must be at most 604800 (a week)".into());
        }
        check_id_domain(&self.nfs.v4.id_domain).map_err(|source| ConfigError::IdDomain {
            domain: self.nfs.v4.id_domain.clone(),
            source,
        })?;
        if self.nfs.reply_timeout_seconds == 0 {
            return bad("nfs.reply_timeout_seconds must be at least 1".into());
        }
        if self.nfs.max_inflight_per_connection == 0 {
            return bad("nfs.max_inflight_per_connection must be at least 1".into());
        }
        if !(2..=3600).contains(&self.shutdown_timeout_seconds) {
            return bad("shutdown_timeout_seconds must be between 2 and 3600".into());
        }
        self.control.validate()?;
        validate_state(&self.metadata_stores, &self.block_stores, &self.shares)
    }
}

/// Checks a set of stores and shares (the config file's, or a desired state applied
/// through the control API): names, types, references, share options.
pub fn validate_state(
    metadata_stores: &[MetadataStoreCfg],
    block_stores: &BlockStores,
    shares_cfg: &[ShareCfg],
) -> Result<(), ConfigError> {
    let bad = |m: String| Err(ConfigError::Invalid(m));
    let mut names = std::collections::BTreeSet::new();
    for m in metadata_stores {
        check_store_name("metadata store", &m.name)?;
        if !matches!(m.kind.as_str(), "memory" | "sled") {
            return bad(format!(
                "metadata store {:?}: type {:?} is not one of memory, sled",
                m.name, m.kind
            ));
        }
        if !names.insert(m.name.clone()) {
            return bad(format!("metadata store {:?} defined twice", m.name));
        }
    }
    let mut locals = std::collections::BTreeSet::new();
    for l in &block_stores.local {
        check_store_name("local block store", &l.name)?;
        if l.kind != "fs" {
            return bad(format!(
                "local block store {:?}: type {:?} is not fs",
                l.name, l.kind
            ));
        }
        if !locals.insert(l.name.clone()) {
            return bad(format!("local block store {:?} defined twice", l.name));
        }
    }
    let mut remotes = std::collections::BTreeSet::new();
    for r in &block_stores.remote {
        check_store_name("remote block store", &r.name)?;
        if r.kind != "s3" && r.kind != "memory" {
            return bad(format!(
                "remote block store {:?}: type {:?} is not s3 or memory",
                r.name, r.kind
            ));
        }
        if r.kind == "s3" && r.bucket.is_empty() {
            return bad(format!(
                "remote block store {:?}: bucket is required",
                r.name
            ));
        }
        if !r.secret_access_key.is_empty() && !r.secret_access_key_file.is_empty() {
            return Err(ConfigError::SecretConflict {
                first: format!("remote block store {:?}: secret_access_key", r.name),
                second: "secret_access_key_file".into(),
            });
        }
        if locals.contains(&r.name) || !remotes.insert(r.name.clone()) {
            return bad(format!("block store {:?} defined twice", r.name));
        }
    }
    let mut shares = std::collections::BTreeSet::new();
    for s in shares_cfg {
        if !s.name.starts_with('/')
            || s.name.len() < 2
            || s.name.contains("//")
            || s.name.contains('\0')
        {
            return bad(format!(
                "share {:?}: the name must be an absolute path like /export",
                s.name
            ));
        }
        if !shares.insert(s.name.clone()) {
            return bad(format!("share {:?} defined twice", s.name));
        }
        if !names.contains(&s.metadata) {
            return bad(format!(
                "share {:?}: metadata store {:?} is not defined",
                s.name, s.metadata
            ));
        }
        if !locals.contains(&s.local) {
            return bad(format!(
                "share {:?}: local block store {:?} is not defined",
                s.name, s.local
            ));
        }
        if !matches!(
            s.squash.as_str(),
            "none" | "root_to_anonymous" | "all_to_anonymous"
        ) {
            return bad(format!(
                "share {:?}: squash {:?} is not one of none, root_to_anonymous, all_to_anonymous",
                s.name, s.squash
            ));
        }
        if let Some(c) = s.chunking {
            dittofs_blockstore::ChunkerConfig {
                min: c.min,
                avg: c.avg,
                max: c.max,
            }
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("share {:?}: chunking: {e}", s.name)))?;
        }
        if s.root_mode > 0o7777 {
            return bad(format!(
                "share {:?}: root_mode {:o} is not a permission mode",
                s.name, s.root_mode
            ));
        }
        if let Some(r) = &s.remote
            && !remotes.contains(r)
        {
            return bad(format!(
                "share {:?}: remote block store {r:?} is not defined",
                s.name
            ));
        }
        match s.durability.as_str() {
            "local" => {}
            "remote" if s.remote.is_some() => {}
            "remote" => {
                return bad(format!(
                    "share {:?}: durability remote needs a remote block store",
                    s.name
                ));
            }
            other => {
                return bad(format!(
                    "share {:?}: durability {other:?} is not local or remote",
                    s.name
                ));
            }
        }
        for g in &s.trash.exclude {
            globset::Glob::new(g).map_err(|e| {
                ConfigError::Invalid(format!("share {:?}: trash exclude glob {g:?}: {e}", s.name))
            })?;
        }
        for c in &s.allowed_clients {
            dittofs_nfs::export::ClientPattern::parse(c).map_err(|e| {
                ConfigError::Invalid(format!("share {:?}: allowed client {c:?}: {e}", s.name))
            })?;
        }
    }
    Ok(())
}

/// Store names: 1-63 characters from `A-Za-z0-9._-`, starting with a letter or digit (they
/// become directory names under the data directory and Kubernetes object names).
fn check_store_name(what: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "{what} name {name:?}: use 1-63 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"
        )))
    }
}

/// Variables with the `DITTOFS_` prefix that are not configuration keys (CLI, test and
/// benchmark tooling); they are never reported as unknown.
const NOT_CONFIG: &[&str] = &[
    "DITTOFS_CONFIG",
    "DITTOFS_CACHE",
    "DITTOFS_BENCH_",
    "DITTOFS_CRASH_",
];

fn config_key_paths() -> Result<Vec<Vec<String>>, ConfigError> {
    let defaults =
        serde_yaml::to_value(Config::default()).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let mut paths = Vec::new();
    collect_paths(&defaults, &mut Vec::new(), &mut paths);
    Ok(paths)
}

/// `DITTOFS_*` variables in `env` that name no configuration key (likely typos); `dfs`
/// prints a warning for each.
pub fn unknown_env(env: &[(String, String)]) -> Vec<String> {
    let Ok(paths) = config_key_paths() else {
        return Vec::new();
    };
    env.iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("DITTOFS_") && !NOT_CONFIG.iter().any(|p| k.starts_with(p)))
        .filter(|k| !paths.iter().any(|p| env_name(p) == **k))
        .cloned()
        .collect()
}

/// Applies `DITTOFS_<PATH>` variables onto the YAML tree. A variable names a key path of
/// the default configuration (every key, leaf or not); other `DITTOFS_*` variables are
/// left alone here (see [`unknown_env`]).
fn apply_env(value: &mut serde_yaml::Value, env: &[(String, String)]) -> Result<(), ConfigError> {
    let paths = config_key_paths()?;
    for (var, raw) in env {
        let Some(path) = paths.iter().find(|p| env_name(p) == *var) else {
            continue;
        };
        let parsed: serde_yaml::Value =
            serde_yaml::from_str(raw).map_err(|e| ConfigError::Env {
                var: var.clone(),
                detail: e.to_string(),
            })?;
        set_path(value, path, parsed);
    }
    Ok(())
}

fn env_name(path: &[String]) -> String {
    format!("DITTOFS_{}", path.join("_").to_ascii_uppercase())
}

fn collect_paths(v: &serde_yaml::Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let serde_yaml::Value::Mapping(m) = v {
        for (k, child) in m {
            if let Some(k) = k.as_str() {
                prefix.push(k.to_owned());
                out.push(prefix.clone());
                collect_paths(child, prefix, out);
                prefix.pop();
            }
        }
    }
}

fn set_path(v: &mut serde_yaml::Value, path: &[String], new: serde_yaml::Value) {
    let mut cur = v;
    for (i, k) in path.iter().enumerate() {
        if !cur.is_mapping() {
            *cur = serde_yaml::Value::Mapping(Default::default());
        }
        let serde_yaml::Value::Mapping(m) = cur else {
            return;
        };
        let key = serde_yaml::Value::String(k.clone());
        if i == path.len() - 1 {
            m.insert(key, new);
            return;
        }
        cur = m
            .entry(key)
            .or_insert(serde_yaml::Value::Mapping(Default::default()));
    }
}

/// The commented sample written by `dfs init`.
pub const SAMPLE: &str = r#"# DittoFS server configuration (dfs start --config FILE).
# Every key can also be set with an environment variable: DITTOFS_ + the key path in
# upper case joined by '_', e.g. DITTOFS_LOGGING_LEVEL=DEBUG or DITTOFS_NFS_PORT=2049.

# Where embedded metadata and local blocks live. Default: /var/lib/dittofs for root,
# ~/.local/share/dittofs otherwise.
# data_dir: /var/lib/dittofs

# After SIGTERM the process exits within this bound: half for NFS calls in flight
# (clients not reading their replies are dropped at once), half for flushing and
# closing the stores. Keep it below the orchestrator's grace period (Kubernetes'
# terminationGracePeriodSeconds, 30 s by default; the operator sets 35).
shutdown_timeout_seconds: 20

logging:
  level: INFO        # TRACE, DEBUG, INFO, WARN, ERROR
  format: text       # text or json

nfs:
  enabled: true
  bind: 0.0.0.0
  port: 12049        # NFSv3 and MOUNT on the same port
  max_record_bytes: 4194304
  max_inflight_per_connection: 64
  max_buffered_bytes_per_connection: 33554432  # calls + unwritten replies per connection
  max_buffered_bytes: 536870912                # ... and for all connections together
  reply_timeout_seconds: 30     # close a connection whose client reads no reply this long
  max_connections: 0            # 0 = a quarter of the file descriptor limit
  portmapper:        # embedded rpcbind (program 100000 v2) for clients that insist on it
    enabled: false
    port: 10111
  locks:             # NLM v4 + NSM v1 (fcntl/flock from NFSv3 clients mounted without nolock)
    grace_seconds: 90            # after a start only lock reclaims are granted this long
                                 # (NLM, and NFSv4 when clients held state before)
    client_portmapper_port: 111  # clients' rpcbind, for GRANTED and SM_NOTIFY callbacks
  v4:
    delegations: true  # read delegations (recalled on any conflicting access; docs/nfs.md)
    write_delegations: true  # write delegations too (recalled on any other access)
    lease_seconds: 90  # NFSv4 lease; an unanswered delegation recall is revoked after it
    courtesy_seconds: 86400  # a silent client keeps its state this long past its lease
                             # until someone conflicts with it (0: lost with the lease)
    id_domain: ""      # e.g. example.com: owners as name@example.com for the users and
                       # groups of the identity store; empty: numeric owners ("1000")

http:                # /health, /ready, /metrics (Prometheus)
  enabled: true
  bind: 127.0.0.1
  port: 12080

telemetry:
  otlp_endpoint: ""  # e.g. http://127.0.0.1:4317 to export traces over OTLP/gRPC
  service_name: dittofs

metadata_stores:
  - name: default
    type: sled       # sled (embedded, persistent) or memory
    # path: /var/lib/dittofs/metadata/default

block_stores:
  local:
    - name: default
      type: fs
      # path: /var/lib/dittofs/blocks/default
      # max_size: 53687091200   # soft cap in bytes (chunks + journal); above it, chunks
      #                         # already on the remote are evicted; 0/absent = unbounded
  # remote:                     # S3 tier: chunks are uploaded after they are durable locally
  #   - name: s3
  #     type: s3                # s3, or memory (in-process, lost at exit: tests only)
  #     bucket: my-bucket
  #     region: us-east-1
  #     endpoint: ""            # e.g. http://127.0.0.1:8333 for an S3-compatible server
  #     prefix: dittofs         # key prefix: objects are <prefix>/cas/hh/hh/<blake3 hex>
  #     force_path_style: false # most S3-compatible servers need true
  #     access_key_id: ""       # empty: from the environment (AWS_ACCESS_KEY_ID, ...)
  #     secret_access_key: ""   # empty: secret_access_key_file, else AWS_SECRET_ACCESS_KEY
  #     secret_access_key_file: /etc/dittofs/s3-secret   # mode 0600; excludes secret_access_key
  #     read_timeout_seconds: 30  # a cold read fails with EIO after this long
  #     create_bucket: false

shares:
  - name: /export
    metadata: default
    local: default
    read_only: false
    squash: root_to_anonymous   # none | root_to_anonymous | all_to_anonymous
    anon_uid: 65534
    anon_gid: 65534
    allowed_clients: ["*"]      # "*", an address, or a CIDR like 10.0.0.0/8
    # secure: true              # only privileged source ports (< 1024), as exports(5)
    #                           # `secure`; recommended with squash: none
    # remote: s3                # the share's remote tier (absent: local only)
    # durability: local         # local: COMMIT/fsync = durable locally, uploads follow;
    #                           # remote: COMMIT/fsync wait for the remote's confirmation
    root_mode: 0o777            # mode of the share root when first created
    # chunking: {min: 1048576, avg: 4194304, max: 16777216}   # FastCDC sizes (bytes)
    trash:                      # recycle bin: deletes go to #recycle at the share root
      enabled: false
      retention_days: 0         # purge after N days; 0 = keep forever
      max_size: 0               # bytes; oldest evicted first; 0 = unbounded
      exclude: []               # globs (name or path) that bypass the bin, e.g. "*.tmp"

# The gRPC control API used by dfsctl and the Kubernetes operator. Stores and shares
# changed through it are saved in <data_dir>/control/state.json and, once that file
# exists, take precedence over the metadata_stores/block_stores/shares of this file.
control:
  enabled: true
  bind: 127.0.0.1
  port: 9000
  # The listener is plaintext (no TLS): on an address other than loopback the token and
  # every call cross the network in clear (dfs warns at start). Keep it on a trusted network.
  token: ""          # bearer token (or DITTOFS_CONTROL_TOKEN), or token_file, not both;
  token_file: ""     # neither: <data_dir>/control-token, generated (mode 0600) on first
                     # start; its path is printed, never the token
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, &[]).unwrap();
        assert_eq!(c.nfs.port, 12049);
        assert_eq!(c.shares[0].name, "/export");
        // read and write delegations are on by default
        assert!(c.nfs.v4.delegations && c.nfs.v4.write_delegations);
    }

    #[test]
    fn sample_parses_to_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, SAMPLE).unwrap();
        let c = Config::load(Some(&p), &[]).unwrap();
        let mut d = Config::default();
        d.telemetry.service_name = "dittofs".into();
        assert_eq!(c, d);
    }

    #[test]
    fn env_overrides_any_key() {
        let c = Config::load(
            None,
            &env(&[
                ("DITTOFS_LOGGING_LEVEL", "debug"),
                ("DITTOFS_NFS_PORT", "2049"),
            ]),
        )
        .unwrap();
        assert_eq!(c.logging.level, "debug");
        assert_eq!(c.nfs.port, 2049);
        let c = Config::load(
            None,
            &env(&[(
                "DITTOFS_SHARES",
                "[{name: /a}, {name: /b, read_only: true}]",
            )]),
        )
        .unwrap();
        assert_eq!(c.shares.len(), 2);
        assert!(c.shares[1].read_only);
    }

    /// The shutdown bound defaults below Kubernetes' default grace (30 s) and is checked;
    /// `secure` is a share option, off unless given.
    #[test]
    fn shutdown_bound_and_secure_shares() {
        let c = Config::load(None, &[]).unwrap();
        assert_eq!(c.shutdown_timeout_seconds, 20);
        assert!(!c.shares[0].secure);
        let c = Config::load(
            None,
            &env(&[
                ("DITTOFS_SHUTDOWN_TIMEOUT_SECONDS", "8"),
                ("DITTOFS_SHARES", "[{name: /a, secure: true}, {name: /b}]"),
            ]),
        )
        .unwrap();
        assert_eq!(c.shutdown_timeout_seconds, 8);
        assert!(c.shares[0].secure && !c.shares[1].secure);
        let e = Config::load(None, &env(&[("DITTOFS_SHUTDOWN_TIMEOUT_SECONDS", "1")])).unwrap_err();
        assert!(e.to_string().contains("shutdown_timeout_seconds"), "{e}");
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert_eq!(
            unknown_env(&env(&[
                ("DITTOFS_NFS_PORTT", "1"),
                ("DITTOFS_CACHE", "/x"),
                ("DITTOFS_NFS_PORT", "1")
            ])),
            vec!["DITTOFS_NFS_PORTT".to_string()]
        );
        assert!(
            Config::load(None, &env(&[("DITTOFS_NFS_PORTT", "1")])).is_ok(),
            "unknown variables warn, not fail"
        );
        let e = Config::load(None, &env(&[("DITTOFS_NFS_PORT", "99999")])).unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
        let e = Config::load(None, &env(&[("DITTOFS_LOGGING_LEVEL", "loud")])).unwrap_err();
        assert!(e.to_string().contains("logging.level"));
        let e = Config::load(
            None,
            &env(&[("DITTOFS_SHARES", "[{name: /a, metadata: nope}]")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("nope"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "nfs: {port: 1, bogus: 2}\n").unwrap();
        let e = Config::load(Some(&p), &[]).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        assert!(Config::load(Some(Path::new("/nonexistent/x.yaml")), &[]).is_err());
    }

    #[test]
    fn id_domain_is_a_dns_name_or_empty() {
        let c = Config::load(None, &[]).unwrap();
        assert_eq!(c.nfs.v4.id_domain, "", "numeric owners by default");
        for ok in [
            "example.com",
            "Lab.Example.ORG",
            "a",
            "x-1.b2",
            "",
            &"a".repeat(63),
        ] {
            let c = Config::load(None, &env(&[("DITTOFS_NFS_V4_ID_DOMAIN", ok)])).unwrap();
            assert_eq!(c.nfs.v4.id_domain, ok);
        }
        let cases = [
            ("exa mple.com", "\"exa mple\""),
            ("example..com", "\"\""),
            (".example.com", "\"\""),
            ("example.com.", "\"\""),
            ("-x.com", "\"-x\""),
            ("x-.com", "\"x-\""),
            ("user@example.com", "\"user@example\""),
            ("ex_ample.com", "\"ex_ample\""),
            ("exämple.com", "\"exämple\""),
        ];
        for (bad, label) in cases {
            let e = Config::load(None, &env(&[("DITTOFS_NFS_V4_ID_DOMAIN", bad)])).unwrap_err();
            let m = e.to_string();
            assert!(
                m.contains("nfs.v4.id_domain") && m.contains(label) && m.contains("1-63"),
                "{bad}: {m}"
            );
            assert!(
                matches!(&e, ConfigError::IdDomain { domain, source: BadDomain::Label(_) } if domain == bad),
                "{e:?}"
            );
        }
        let long = vec!["a".repeat(63); 4].join(".");
        let e = Config::load(None, &env(&[("DITTOFS_NFS_V4_ID_DOMAIN", &long)])).unwrap_err();
        assert!(e.to_string().contains("longer than 253"), "{e}");
        let label64 = format!("{}.com", "a".repeat(64));
        assert!(matches!(
            check_id_domain(&label64),
            Err(BadDomain::Label(l)) if l.len() == 64
        ));
    }

    #[test]
    fn secrets_are_checked_and_given_one_way() {
        let e = Config::load(None, &env(&[("DITTOFS_CONTROL_TOKEN", "short")])).unwrap_err();
        assert!(
            matches!(e, ConfigError::Token(InvalidToken::TooShort)),
            "{e:?}"
        );
        assert!(e.to_string().contains("control.token"), "{e}");
        let e = Config::load(
            None,
            &env(&[("DITTOFS_CONTROL_TOKEN", "has a space in it!!")]),
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Token(InvalidToken::NotPrintable)));
        assert!(
            Config::load(
                None,
                &env(&[("DITTOFS_CONTROL_TOKEN", "0123456789abcdef\n")])
            )
            .is_ok()
        );
        let e = Config::load(
            None,
            &env(&[
                ("DITTOFS_CONTROL_TOKEN", "0123456789abcdef"),
                ("DITTOFS_CONTROL_TOKEN_FILE", "/etc/tok"),
            ]),
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::SecretConflict { .. }), "{e:?}");
        assert!(e.to_string().contains("control.token_file"), "{e}");

        let remote = |extra: &str| {
            format!(
                "{{local: [{{name: default}}], remote: [{{name: r, type: s3, bucket: b{extra}}}]}}"
            )
        };
        let with_file = remote(", secret_access_key_file: /etc/s3");
        let c = Config::load(None, &env(&[("DITTOFS_BLOCK_STORES", &with_file)])).unwrap();
        assert_eq!(c.block_stores.remote[0].secret_access_key_file, "/etc/s3");
        let both = remote(", secret_access_key: k, secret_access_key_file: /etc/s3");
        let e = Config::load(None, &env(&[("DITTOFS_BLOCK_STORES", &both)])).unwrap_err();
        assert!(matches!(e, ConfigError::SecretConflict { .. }), "{e:?}");
    }
}
