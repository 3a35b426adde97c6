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
//! tokens.
//!
//! Precedence of each setting: flag or environment variable (clap merges the two) >
//! the selected context (`--context`, else `current_context`) > defaults. For the token:
//! `--token` > `--token-file` > context `token` > context `token_file` > when the server
//! is a loopback address, the token file `dfs` writes on first start
//! (`/var/lib/dittofs/control-token`, then `$XDG_DATA_HOME/dittofs/control-token` or
//! `~/.local/share/dittofs/control-token`) > none.

use crate::client::CliError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
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
    pub(crate) token: Option<String>,
    pub(crate) token_file: Option<PathBuf>,
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
    /// The token file `dfs` writes (loopback servers only).
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
    /// Warnings for stderr (e.g. an empty token file).
    pub(crate) notes: Vec<String>,
}

/// Resolves the effective settings. `fallback_tokens` are tried, in order, only when no
/// token is configured and the server is a loopback address; unreadable ones are skipped.
pub(crate) fn resolve(
    flags: &ConnFlags,
    file: &ConfigFile,
    fallback_tokens: &[PathBuf],
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

    let mut token_path = None;
    let mut notes = Vec::new();
    let (token, token_source) = if let Some(t) = &flags.token {
        (Some(t.trim().to_string()), Source::Flag)
    } else if let Some(p) = &flags.token_file {
        token_path = Some(p.clone());
        (read_token_file(p, &mut notes)?, Source::Flag)
    } else if let Some(t) = ctx.and_then(|c| c.token.clone()) {
        (Some(t.trim().to_string()), Source::Context)
    } else if let Some(p) = ctx.and_then(|c| c.token_file.clone()) {
        let t = read_token_file(&p, &mut notes)?;
        token_path = Some(p);
        (t, Source::Context)
    } else if is_loopback(&server) {
        let found = fallback_tokens.iter().find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .map(|t| (p.clone(), t))
        });
        match found {
            Some((p, t)) => {
                token_path = Some(p);
                (Some(t), Source::ServerTokenFile)
            }
            None => (None, Source::None),
        }
    } else {
        (None, Source::None)
    };
    let token = token.filter(|t| !t.is_empty());
    Ok(Resolved {
        server,
        server_source,
        token,
        token_source,
        token_path,
        context: selected.map(|(n, _)| n.to_string()),
        notes,
    })
}

/// Reads an explicitly configured token file. An unreadable file is an error; an empty
/// one means "no token" (noted, and no fallback is tried: the server will refuse).
fn read_token_file(path: &Path, notes: &mut Vec<String>) -> Result<Option<String>, CliError> {
    let path = expand_tilde(path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::Usage(format!("cannot read token file {}: {e}", path.display())))?;
    let t = text.trim().to_string();
    if t.is_empty() {
        notes.push(format!(
            "warning: token file {} is empty; calling without a token",
            path.display()
        ));
        return Ok(None);
    }
    Ok(Some(t))
}

/// `~/x` -> `$HOME/x` (for paths stored in the config file, where no shell expands them).
fn expand_tilde(p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    p.to_path_buf()
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

/// Whether a normalized URL points at a loopback host.
pub(crate) fn is_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<tonic::codegen::http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> ConnFlags {
        ConnFlags::default()
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
    fn loopback_detection() {
        assert!(is_loopback("http://127.0.0.1:9000"));
        assert!(is_loopback("http://127.1.2.3:9000"));
        assert!(is_loopback("http://localhost:9000"));
        assert!(is_loopback("http://[::1]:9000"));
        assert!(!is_loopback("http://10.0.0.1:9000"));
        assert!(!is_loopback("http://dfs.example:9000"));
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
            token: Some("flag".into()),
            token_file: Some(tok.clone()),
            context: None,
        };
        let r = resolve(&f, &file, &[]).unwrap();
        assert_eq!(r.server, "http://h:1");
        assert_eq!(r.server_source, Source::Flag);
        assert_eq!(r.token.as_deref(), Some("flag"));
        let f = ConnFlags {
            token_file: Some(tok.clone()),
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

        // An empty token file means no token, and no fallback either.
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let f = ConnFlags {
            server: Some("127.0.0.1:9000".into()),
            token_file: Some(empty),
            ..flags()
        };
        let r = resolve(&f, &ConfigFile::default(), std::slice::from_ref(&tok)).unwrap();
        assert_eq!(r.token, None);
        assert_eq!(r.token_source, Source::Flag);
        assert_eq!(r.notes.len(), 1);

        // Unreadable token file is an error.
        let f = ConnFlags {
            token_file: Some(dir.path().join("missing")),
            ..flags()
        };
        assert!(matches!(resolve(&f, &file, &[]), Err(CliError::Usage(_))));
    }

    #[test]
    fn server_token_file_only_for_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let present = dir.path().join("control-token");
        std::fs::write(&present, "srv-token\n").unwrap();
        let paths = vec![missing, present.clone()];
        let r = resolve(&flags(), &ConfigFile::default(), &paths).unwrap();
        assert_eq!(r.token.as_deref(), Some("srv-token"));
        assert_eq!(r.token_source, Source::ServerTokenFile);
        assert_eq!(r.token_path.as_deref(), Some(present.as_path()));

        let f = ConnFlags {
            server: Some("10.1.1.1:9000".into()),
            ..flags()
        };
        let r = resolve(&f, &ConfigFile::default(), &paths).unwrap();
        assert_eq!(r.token, None);

        // An explicit token wins over the server's file.
        let f = ConnFlags {
            token: Some("mine".into()),
            ..flags()
        };
        let r = resolve(&f, &ConfigFile::default(), &paths).unwrap();
        assert_eq!(r.token.as_deref(), Some("mine"));
    }
}
