//! The dfsctl config file (saved contexts) and the resolution of connection settings.
//!
//! The file is `$DFSCTL_CONFIG`, else `$XDG_CONFIG_HOME/dfsctl/config`, else
//! `~/.config/dfsctl/config`; YAML:
//!
//! ```yaml
//! current_context: prod
//! contexts:
//!   prod:
//!     server: http://10.0.0.5:9000
//!     token_file: /etc/dittofs/control-token
//! ```
//!
//! It is written atomically (temporary file + rename) with mode 0600 since it may hold
//! tokens; one that holds tokens and that others can read is warned about.
//!
//! Precedence of each setting: flag or environment variable (clap merges the two) >
//! the selected context (`--context`, else `current_context`) > defaults. For the token,
//! at most one of `--token`/`DFSCTL_TOKEN` and `--token-file`/`DFSCTL_TOKEN_FILE` may be
//! given (both is a usage error, see `crate::secret`); then the context's `token` or
//! `token_file` (not both), sent only to the context's own server (its `server`, else the
//! default): with `--server` naming another, the context's token is not sent; then, with none of these, the token of a local `dfs` data
//! directory (`/var/lib/dittofs/control-token`, then `$XDG_DATA_HOME/dittofs/control-token`
//! or `~/.local/share/dittofs/control-token`), but only for the server that token belongs
//! to: the address its `dfs` recorded in `control-endpoint` beside it must be the one the
//! server URL reaches (same port, a loopback host). Otherwise no token is sent.

use crate::error::CliError;
use crate::secret::{SecretInput, exposed_mode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// The default control address (`dittofs_proto::DEFAULT_CONTROL_ADDR` as a URL).
pub(crate) fn default_server() -> String {
    format!("http://{}", dittofs_proto::DEFAULT_CONTROL_ADDR)
}

/// Port assumed when a server address has none (the control API's default port).
const DEFAULT_PORT: u16 = 9000;

/// The whole config file.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) current_context: Option<String>,
    #[serde(default)]
    pub(crate) contexts: BTreeMap<String, Context>,
}

/// One saved context.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Context {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token_file: Option<PathBuf>,
}

/// Where the config file lives, from the environment (`None`: no HOME at all).
pub(crate) fn config_path() -> Option<PathBuf> {
    config_path_from(&|k| std::env::var_os(k).filter(|v| !v.is_empty()))
}

fn config_path_from(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(p) = env("DFSCTL_CONFIG") {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = env("XDG_CONFIG_HOME").map(PathBuf::from)
        && x.is_absolute()
    {
        return Some(x.join("dfsctl").join("config"));
    }
    env("HOME").map(|h| {
        PathBuf::from(h)
            .join(".config")
            .join("dfsctl")
            .join("config")
    })
}

/// Candidate token files written by `dfs`, in the order they are tried.
pub(crate) fn fallback_token_paths() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut out = vec![PathBuf::from("/var/lib/dittofs/control-token")];
    match env("XDG_DATA_HOME").map(PathBuf::from) {
        Some(x) if x.is_absolute() => out.push(x.join("dittofs").join("control-token")),
        _ => {
            if let Some(h) = env("HOME") {
                out.push(PathBuf::from(h).join(".local/share/dittofs/control-token"));
            }
        }
    }
    out
}

impl ConfigFile {
    /// Reads the file; a missing or empty file is an empty config.
    pub(crate) fn load(path: &Path) -> Result<ConfigFile, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => {
                return Err(CliError::Usage(format!(
                    "cannot read config file {}: {e}",
                    path.display()
                )));
            }
        };
        Self::parse(&text).map_err(|e| {
            CliError::Usage(format!("config file {} is not valid: {e}", path.display()))
        })
    }

    pub(crate) fn parse(text: &str) -> Result<ConfigFile, serde_yaml::Error> {
        if text.trim().is_empty() {
            return Ok(ConfigFile::default());
        }
        serde_yaml::from_str(text)
    }

    /// A warning when the file at `path` holds tokens and its group or others may read it.
    pub(crate) fn exposure_warning(&self, path: &Path) -> Option<String> {
        if !self.contexts.values().any(|c| c.token.is_some()) {
            return None;
        }
        let mode = exposed_mode(path)?;
        Some(format!(
            "warning: config file {p} holds tokens and is readable by group or others (mode {mode:04o}); fix with: chmod 600 {p}",
            p = path.display()
        ))
    }

    /// Writes the file atomically with mode 0600, creating its directory (0700).
    pub(crate) fn save(&self, path: &Path) -> Result<(), CliError> {
        let fail = |what: &str, e: std::io::Error| {
            CliError::Failed(format!("cannot {what} {}: {e}", path.display()))
        };
        let text = serde_yaml::to_string(self)
            .map_err(|e| CliError::Failed(format!("cannot encode config file: {e}")))?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir)
                .map_err(|e| fail("create the directory of", e))?;
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config".into());
        let tmp = path.with_file_name(format!(".{file_name}.tmp.{}", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let result = (|| {
            let mut f = opts.open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail("write", e));
        }
        Ok(())
    }

    /// The context selected by `--context` (must exist) or `current_context`.
    pub(crate) fn selected<'a>(
        &'a self,
        requested: Option<&'a str>,
    ) -> Result<Option<(&'a str, &'a Context)>, CliError> {
        match requested {
            Some(name) => match self.contexts.get(name) {
                Some(c) => Ok(Some((name, c))),
                None => Err(CliError::NotFound(format!(
                    "context {name:?} does not exist (see `dfsctl context list`)"
                ))),
            },
            None => match self.current_context.as_deref() {
                // A dangling current_context is ignored rather than fatal.
                Some(name) => Ok(self.contexts.get(name).map(|c| (name, c))),
                None => Ok(None),
            },
        }
    }
}

/// Connection-related flags (after clap merged flags and environment variables).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnFlags {
    pub(crate) server: Option<String>,
    /// The token's forms given as flags or environment variables (at most one may be).
    pub(crate) token: Vec<SecretInput>,
    pub(crate) context: Option<String>,
}

/// Where a setting came from (for `context show` and error hints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// A flag or its environment variable.
    Flag,
    /// The selected context.
    Context,
    /// A built-in default.
    Default,
    /// The token file of a local `dfs` data directory (for the server recorded beside it).
    ServerTokenFile,
    /// No token anywhere.
    None,
}

/// Effective connection settings.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// Normalized URL, e.g. `http://127.0.0.1:9000`.
    pub(crate) server: String,
    pub(crate) server_source: Source,
    pub(crate) token: Option<String>,
    pub(crate) token_source: Source,
    /// The file the token was read from, if any.
    pub(crate) token_path: Option<PathBuf>,
    pub(crate) context: Option<String>,
    /// A local `dfs` token that was not sent because it belongs to another server.
    pub(crate) withheld: Option<Withheld>,
    /// The selected context's server, when its token was not sent because `--server`
    /// named another one.
    pub(crate) context_withheld: Option<String>,
}

/// The token of a local data directory, not sent to a server it does not belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Withheld {
    pub(crate) path: PathBuf,
    /// The control address its `dfs` recorded (`None`: none recorded, or unreadable).
    pub(crate) endpoint: Option<SocketAddr>,
}

/// Resolves the effective settings. `local_tokens` are the token files of local data
/// directories, tried in order only when no token is given; one is used only for the
/// server its `dfs` recorded beside it (see the module header).
pub(crate) fn resolve(
    flags: &ConnFlags,
    file: &ConfigFile,
    local_tokens: &[PathBuf],
) -> Result<Resolved, CliError> {
    let selected = file.selected(flags.context.as_deref())?;
    let ctx = selected.map(|(_, c)| c);

    let (raw_server, server_source) = if let Some(s) = &flags.server {
        (s.clone(), Source::Flag)
    } else if let Some(s) = ctx.and_then(|c| c.server.clone()) {
        (s, Source::Context)
    } else {
        (default_server(), Source::Default)
    };
    let server = normalize_server(&raw_server)?;

    let mut resolved = Resolved {
        server,
        server_source,
        token: None,
        token_source: Source::None,
        token_path: None,
        context: selected.map(|(n, _)| n.to_string()),
        withheld: None,
        context_withheld: None,
    };
    if let Some(t) = crate::secret::resolve("control token", &flags.token)? {
        resolved.set_token(t, Source::Flag);
    } else if let Some(t) =
        crate::secret::resolve("control token", &context_token_inputs(selected))?
    {
        let own = context_server(ctx);
        if own == resolved.server {
            resolved.set_token(t, Source::Context);
        } else {
            // --server (or DFSCTL_SERVER) points elsewhere: the context's token stays home.
            resolved.context_withheld = Some(own);
        }
    } else {
        match find_local_token(&resolved.server, local_tokens) {
            LocalToken::Use { path, token } => {
                resolved.token = Some(token);
                resolved.token_source = Source::ServerTokenFile;
                resolved.token_path = Some(path);
            }
            LocalToken::Withheld(w) => resolved.withheld = Some(w),
            LocalToken::None => {}
        }
    }
    Ok(resolved)
}

impl Resolved {
    fn set_token(&mut self, t: crate::secret::Secret, source: Source) {
        self.token = Some(t.value.trim().to_string()).filter(|t| !t.is_empty());
        self.token_source = source;
        self.token_path = t.path;
    }
}

/// The server a context's token belongs to: its own, else the default (normalized when
/// it can be; a malformed one then matches no server).
fn context_server(ctx: Option<&Context>) -> String {
    let raw = ctx
        .and_then(|c| c.server.clone())
        .unwrap_or_else(default_server);
    normalize_server(&raw).unwrap_or(raw)
}

/// The token forms of the selected context (both set by hand is a conflict).
fn context_token_inputs(selected: Option<(&str, &Context)>) -> Vec<SecretInput> {
    let Some((name, c)) = selected else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(t) = &c.token {
        out.push(SecretInput::Value {
            origin: format!("the token of context {name:?}"),
            value: t.clone(),
        });
    }
    if let Some(p) = &c.token_file {
        out.push(SecretInput::File {
            origin: format!("the token_file of context {name:?}"),
            path: p.clone(),
        });
    }
    out
}

/// What the local data directories offer for a server URL.
enum LocalToken {
    Use { path: PathBuf, token: String },
    Withheld(Withheld),
    None,
}

/// The first local token whose `dfs` recorded the address `url` reaches.
fn find_local_token(url: &str, token_paths: &[PathBuf]) -> LocalToken {
    let mut withheld = None;
    for path in token_paths {
        let endpoint = read_endpoint(path);
        if endpoint.is_some_and(|e| endpoint_matches(url, e)) {
            let token = std::fs::read_to_string(path).ok();
            if let Some(token) = token
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
            {
                return LocalToken::Use {
                    path: path.clone(),
                    token,
                };
            }
        } else if withheld.is_none() && path.exists() {
            withheld = Some(Withheld {
                path: path.clone(),
                endpoint,
            });
        }
    }
    withheld.map_or(LocalToken::None, LocalToken::Withheld)
}

/// The control address recorded beside a local token file (`control-endpoint`:
/// `ADDR PID`), if the `dfs` that recorded it still runs (`None` for a record a crash
/// left behind). A record without a process id (older `dfs`) is taken as it is.
fn read_endpoint(token_path: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(token_path.with_file_name("control-endpoint")).ok()?;
    let mut fields = text.split_whitespace();
    let addr = fields.next()?.parse().ok()?;
    match fields.next() {
        None => Some(addr),
        Some(pid) => dfs_running(pid.parse().ok()?).then_some(addr),
    }
}

/// Whether process `pid` runs a program named `dfs` (Linux `/proc`; elsewhere, where
/// there is no `/proc`, whether it can be told at all is unknown: assumed running).
fn dfs_running(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dfs")
}

/// Whether `url` reaches the server whose control listener is bound to `endpoint`: the
/// same port, and a loopback host the bound address accepts (that same address, or any
/// loopback address of its family when it is bound to the unspecified address).
pub(crate) fn endpoint_matches(url: &str, endpoint: SocketAddr) -> bool {
    let Ok(uri) = url.parse::<tonic::codegen::http::Uri>() else {
        return false;
    };
    let (Some(host), Some(port)) = (uri.host(), uri.port_u16()) else {
        return false;
    };
    if port != endpoint.port() {
        return false;
    }
    let bound = endpoint.ip();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return bound.is_loopback() || bound.is_unspecified();
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() && bound.is_unspecified() => ip.is_ipv4() || bound.is_ipv6(),
        Ok(ip) if ip.is_loopback() => ip == bound,
        _ => false,
    }
}

/// Accepts `host:port`, `http://host:port`, `host` (port 9000), IPv6 `[::1]:9000`;
/// returns `http://host:port`. TLS (`https://`) is not supported by this build.
pub(crate) fn normalize_server(s: &str) -> Result<String, CliError> {
    let t = s.trim().trim_end_matches('/');
    let bad = |why: &str| CliError::Usage(format!("invalid server address {s:?}: {why}"));
    let rest = match t.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => {
            return Err(bad(
                "https is not supported by this dfsctl build; use http://HOST:PORT",
            ));
        }
        Some((scheme, _)) => return Err(bad(&format!("unsupported scheme {scheme:?}"))),
        None => t,
    };
    if rest.is_empty() {
        return Err(bad("no host"));
    }
    if rest.contains(['/', '?', '#', '@']) {
        return Err(bad("expected HOST:PORT without a path"));
    }
    let authority = if has_port(rest) {
        rest.to_string()
    } else {
        format!("{rest}:{DEFAULT_PORT}")
    };
    let url = format!("http://{authority}");
    let uri: tonic::codegen::http::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(url)
}

fn has_port(authority: &str) -> bool {
    if let Some(after) = authority.strip_prefix('[') {
        // [v6]:port
        return after
            .split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':'));
    }
    authority.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> ConnFlags {
        ConnFlags::default()
    }

    fn token_value(v: &str) -> SecretInput {
        SecretInput::Value {
            origin: "--token".into(),
            value: v.into(),
        }
    }

    fn token_file(p: &Path) -> SecretInput {
        SecretInput::File {
            origin: "--token-file".into(),
            path: p.to_owned(),
        }
    }

    #[test]
    fn server_normalization() {
        assert_eq!(
            normalize_server("127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            normalize_server("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(normalize_server("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(
            normalize_server("dfs.example").unwrap(),
            "http://dfs.example:9000"
        );
        assert_eq!(normalize_server("[::1]:9001").unwrap(), "http://[::1]:9001");
        assert_eq!(normalize_server("[::1]").unwrap(), "http://[::1]:9000");
        assert!(normalize_server("https://h:1").is_err());
        assert!(normalize_server("ftp://h:1").is_err());
        assert!(normalize_server("").is_err());
        assert!(normalize_server("http://h:1/path").is_err());
    }

    #[test]
    fn endpoint_matching() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        // Bound to a loopback address: that address (or localhost) and port only.
        assert!(endpoint_matches(
            "http://127.0.0.1:9000",
            at("127.0.0.1:9000")
        ));
        assert!(endpoint_matches(
            "http://localhost:9000",
            at("127.0.0.1:9000")
        ));
        assert!(!endpoint_matches(
            "http://127.0.0.1:9001",
            at("127.0.0.1:9000")
        ));
        assert!(!endpoint_matches(
            "http://127.0.0.2:9000",
            at("127.0.0.1:9000")
        ));
        assert!(!endpoint_matches("http://[::1]:9000", at("127.0.0.1:9000")));
        assert!(endpoint_matches("http://[::1]:9000", at("[::1]:9000")));
        // Bound to every address: any loopback address of its family.
        assert!(endpoint_matches(
            "http://127.0.0.1:9000",
            at("0.0.0.0:9000")
        ));
        assert!(!endpoint_matches("http://[::1]:9000", at("0.0.0.0:9000")));
        assert!(endpoint_matches("http://127.0.0.1:9000", at("[::]:9000")));
        // Never another host, even the one the server is bound to.
        assert!(!endpoint_matches(
            "http://10.0.0.5:9000",
            at("0.0.0.0:9000")
        ));
        assert!(!endpoint_matches(
            "http://10.0.0.5:9000",
            at("10.0.0.5:9000")
        ));
        assert!(!endpoint_matches(
            "http://dfs.example:9000",
            at("0.0.0.0:9000")
        ));
        assert!(!endpoint_matches("not a url", at("127.0.0.1:9000")));
    }

    #[test]
    fn file_round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config");
        let mut f = ConfigFile {
            current_context: Some("prod".into()),
            ..Default::default()
        };
        f.contexts.insert(
            "prod".into(),
            Context {
                server: Some("http://10.0.0.5:9000".into()),
                token: Some("s3cret".into()),
                token_file: None,
            },
        );
        f.contexts.insert(
            "lab".into(),
            Context {
                server: Some("127.0.0.1:9000".into()),
                token: None,
                token_file: Some("/etc/tok".into()),
            },
        );
        f.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("current_context: prod"), "{text}");
        assert!(text.contains("token_file: /etc/tok"), "{text}");
        assert_eq!(ConfigFile::load(&path).unwrap(), f);
        // Missing and empty files are empty configs.
        assert_eq!(
            ConfigFile::load(&dir.path().join("none")).unwrap(),
            ConfigFile::default()
        );
        assert_eq!(ConfigFile::parse("\n").unwrap(), ConfigFile::default());
        // Typos are reported.
        assert!(ConfigFile::parse("contexts: {a: {sever: x}}").is_err());
    }

    #[test]
    fn config_path_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let all = env(&[
            ("DFSCTL_CONFIG", "/c"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(config_path_from(&all), Some("/c".into()));
        let xdg = env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(config_path_from(&xdg), Some("/x/dfsctl/config".into()));
        let rel = env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")]);
        assert_eq!(
            config_path_from(&rel),
            Some("/h/.config/dfsctl/config".into())
        );
        assert_eq!(config_path_from(&env(&[])), None);
    }

    #[test]
    fn precedence_flag_context_default() {
        let dir = tempfile::tempdir().unwrap();
        let tok = dir.path().join("tok");
        std::fs::write(&tok, "from-file\n").unwrap();
        let mut file = ConfigFile {
            current_context: Some("a".into()),
            ..Default::default()
        };
        file.contexts.insert(
            "a".into(),
            Context {
                server: Some("10.0.0.1:9000".into()),
                token: Some("ctx-a".into()),
                token_file: None,
            },
        );
        file.contexts.insert(
            "b".into(),
            Context {
                server: Some("http://10.0.0.2:9001".into()),
                token: None,
                token_file: Some(tok.clone()),
            },
        );

        // Defaults: no file, no flags.
        let r = resolve(&flags(), &ConfigFile::default(), &[]).unwrap();
        assert_eq!(r.server, "http://127.0.0.1:9000");
        assert_eq!(r.server_source, Source::Default);
        assert_eq!(r.token, None);
        assert_eq!(r.token_source, Source::None);

        // Current context.
        let r = resolve(&flags(), &file, &[]).unwrap();
        assert_eq!(r.server, "http://10.0.0.1:9000");
        assert_eq!(r.token.as_deref(), Some("ctx-a"));
        assert_eq!(r.token_source, Source::Context);
        assert_eq!(r.context.as_deref(), Some("a"));

        // --context picks another one; its token file is read.
        let f = ConnFlags {
            context: Some("b".into()),
            ..flags()
        };
        let r = resolve(&f, &file, &[]).unwrap();
        assert_eq!(r.server, "http://10.0.0.2:9001");
        assert_eq!(r.token.as_deref(), Some("from-file"));
        assert_eq!(r.token_path.as_deref(), Some(tok.as_path()));

        // Flags beat the context, field by field.
        let f = ConnFlags {
            server: Some("h:1".into()),
            token: vec![token_value("flag")],
            context: None,
        };
        let r = resolve(&f, &file, &[]).unwrap();
        assert_eq!(r.server, "http://h:1");
        assert_eq!(r.server_source, Source::Flag);
        assert_eq!(r.token.as_deref(), Some("flag"));
        // --server naming another server: the context's token is not sent there.
        let f = ConnFlags {
            server: Some("h:1".into()),
            ..flags()
        };
        let r = resolve(&f, &file, &[]).unwrap();
        assert_eq!(r.server, "http://h:1");
        assert_eq!(r.token, None);
        assert_eq!(r.token_source, Source::None);
        assert_eq!(r.context_withheld.as_deref(), Some("http://10.0.0.1:9000"));
        // ... but it is, to the context's own server given in another spelling.
        let f = ConnFlags {
            server: Some("http://10.0.0.1:9000/".into()),
            ..flags()
        };
        let r = resolve(&f, &file, &[]).unwrap();
        assert_eq!(r.token.as_deref(), Some("ctx-a"));
        assert_eq!(r.context_withheld, None);
        let f = ConnFlags {
            token: vec![token_file(&tok)],
            ..flags()
        };
        let r = resolve(&f, &file, &[]).unwrap();
        assert_eq!(r.server, "http://10.0.0.1:9000");
        assert_eq!(r.token.as_deref(), Some("from-file"));
        assert_eq!(r.token_source, Source::Flag);

        // Unknown --context is an error; a dangling current_context is ignored.
        let f = ConnFlags {
            context: Some("zzz".into()),
            ..flags()
        };
        assert!(matches!(
            resolve(&f, &file, &[]),
            Err(CliError::NotFound(_))
        ));
        let mut dangling = file.clone();
        dangling.current_context = Some("gone".into());
        assert_eq!(
            resolve(&flags(), &dangling, &[]).unwrap().server_source,
            Source::Default
        );

        // A token and a token file together are a usage error, in flags or a context.
        let f = ConnFlags {
            token: vec![token_value("flag"), token_file(&tok)],
            ..flags()
        };
        let e = resolve(&f, &file, &[]).unwrap_err();
        assert!(e.to_string().contains("--token-file"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let mut both = file.clone();
        if let Some(c) = both.contexts.get_mut("a") {
            c.token_file = Some(tok.clone());
        }
        let e = resolve(&flags(), &both, &[]).unwrap_err();
        assert!(e.to_string().contains("context \"a\""), "{e}");

        // An empty token file is a usage error (never "no token").
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let f = ConnFlags {
            server: Some("127.0.0.1:9000".into()),
            token: vec![token_file(&empty)],
            ..flags()
        };
        let e = resolve(&f, &ConfigFile::default(), std::slice::from_ref(&tok)).unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
        assert_eq!(e.exit_code(), 2);

        // Unreadable token file is an error.
        let f = ConnFlags {
            token: vec![token_file(&dir.path().join("missing"))],
            ..flags()
        };
        assert_eq!(resolve(&f, &file, &[]).unwrap_err().exit_code(), 2);
    }

    /// A data directory with its token and, if given, the endpoint its dfs recorded.
    fn data_dir(root: &Path, name: &str, endpoint: Option<&str>) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("control-token"), format!("token-of-{name}\n")).unwrap();
        if let Some(e) = endpoint {
            std::fs::write(dir.join("control-endpoint"), format!("{e}\n")).unwrap();
        }
        dir.join("control-token")
    }

    #[test]
    fn local_token_only_for_its_own_server() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing").join("control-token");
        let a = data_dir(dir.path(), "a", Some("127.0.0.1:9000"));
        let b = data_dir(dir.path(), "b", Some("0.0.0.0:9100"));
        let paths = vec![missing, a.clone(), b.clone()];
        let at = |server: &str| ConnFlags {
            server: Some(server.into()),
            ..flags()
        };

        let r = resolve(&flags(), &ConfigFile::default(), &paths).unwrap();
        assert_eq!(r.token.as_deref(), Some("token-of-a"));
        assert_eq!(r.token_source, Source::ServerTokenFile);
        assert_eq!(r.token_path.as_deref(), Some(a.as_path()));
        let r = resolve(&at("localhost:9100"), &ConfigFile::default(), &paths).unwrap();
        assert_eq!(r.token.as_deref(), Some("token-of-b"));

        // Another port on loopback (another dfs, a tunnel to a remote one): nothing sent.
        let r = resolve(&at("127.0.0.1:9200"), &ConfigFile::default(), &paths).unwrap();
        assert_eq!((r.token, r.token_source), (None, Source::None));
        let w = r.withheld.unwrap();
        assert_eq!(w.path, a);
        assert_eq!(w.endpoint, Some("127.0.0.1:9000".parse().unwrap()));
        // Another host: nothing sent either.
        let r = resolve(&at("10.1.1.1:9000"), &ConfigFile::default(), &paths).unwrap();
        assert_eq!(r.token, None);

        // No endpoint recorded (dfs stopped cleanly, or an older dfs): nothing sent.
        let c = data_dir(dir.path(), "c", None);
        let r = resolve(&flags(), &ConfigFile::default(), std::slice::from_ref(&c)).unwrap();
        assert_eq!(r.token, None);
        assert_eq!(r.withheld.map(|w| w.endpoint), Some(None));

        // A record a crashed dfs left behind (its process gone, or the id now another
        // program's): nothing sent, as if none were recorded.
        let own_pid = std::process::id();
        for stale in [
            format!("127.0.0.1:9000 {own_pid}"),
            "127.0.0.1:9000 4294967295".into(),
        ] {
            let d = data_dir(dir.path(), "d", Some(&stale));
            let r = resolve(&flags(), &ConfigFile::default(), std::slice::from_ref(&d)).unwrap();
            assert_eq!(r.token, None, "{stale}");
            assert_eq!(r.withheld.map(|w| w.endpoint), Some(None), "{stale}");
        }

        // An explicit token wins over the local one.
        let f = ConnFlags {
            token: vec![token_value("mine")],
            ..flags()
        };
        let r = resolve(&f, &ConfigFile::default(), &paths).unwrap();
        assert_eq!(r.token.as_deref(), Some("mine"));
        assert_eq!(r.withheld, None);
    }

    #[cfg(unix)]
    #[test]
    fn config_file_with_tokens_readable_by_others_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let mut f = ConfigFile::default();
        f.contexts.insert(
            "p".into(),
            Context {
                server: Some("h:1".into()),
                token_file: Some("/etc/tok".into()),
                token: None,
            },
        );
        f.save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(f.exposure_warning(&path), None, "no token in it");
        if let Some(c) = f.contexts.get_mut("p") {
            c.token = Some("inline".into());
            c.token_file = None;
        }
        let w = f.exposure_warning(&path).unwrap();
        assert!(w.contains("chmod 600") && w.contains("0644"), "{w}");
        assert!(!w.contains("inline"), "{w}");
        f.save(&path).unwrap();
        assert_eq!(f.exposure_warning(&path), None, "saved with mode 0600");
    }
}
