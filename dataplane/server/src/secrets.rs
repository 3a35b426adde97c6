//! Secrets read from files, and the start-time checks of how exposed they are.
//!
//! Invariants:
//! - A secret read from a file is the file's content less its trailing line ends
//!   (`\n`, `\r\n`); an empty result is an error ([`SecretFileError::Empty`]), never an
//!   empty secret.
//! - No function here returns or formats a secret in an error or a warning: messages name
//!   the file only.
//! - [`exposed_mode`] reports a file whose permission bits let its group or others read
//!   or write it (`mode & 0o077 != 0`); [`secrets_in_config`] names the keys of a
//!   configuration file that hold secrets in clear (never their values);
//!   [`is_loopback_bind`] says whether a listener's bind address keeps it on this host.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Why a secret could not be read from its file.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{} is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
}

/// Reads a secret from `path`: the content less its trailing line ends, never empty.
pub fn read_secret_file(path: &Path) -> Result<String, SecretFileError> {
    let bytes = std::fs::read(path).map_err(|source| SecretFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| SecretFileError::NotText {
        path: path.to_owned(),
    })?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(SecretFileError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(secret.to_owned())
}

/// The permission bits of `path` when its group or others have any access to it
/// (`None` when only the owner has, or when it cannot be examined).
pub fn exposed_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Whether a bind address (`127.0.0.1`, `::1`, `[::1]`, `localhost`) accepts
/// connections from this host only. Unspecified (`0.0.0.0`, `::`), other addresses and
/// host names are not.
pub fn is_loopback_bind(addr: &str) -> bool {
    let host = addr.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Keys whose non-empty string values are secrets when written in a configuration file.
const SECRET_KEYS: [&str; 2] = ["token", "secret_access_key"];

/// The dotted paths of the keys of YAML `text` that hold a secret in clear
/// (`control.token`, `block_stores.remote[0].secret_access_key`); empty when there are
/// none or the text is not YAML (the loader reports that).
pub fn secrets_in_config(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(v) = serde_yaml::from_str::<serde_yaml::Value>(text) {
        collect_secret_keys(&v, "", &mut out);
    }
    out
}

fn collect_secret_keys(v: &serde_yaml::Value, at: &str, out: &mut Vec<String>) {
    use serde_yaml::Value;
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                let Some(k) = k.as_str() else { continue };
                let path = if at.is_empty() {
                    k.to_string()
                } else {
                    format!("{at}.{k}")
                };
                let secret = child.as_str().is_some_and(|s| !s.trim().is_empty());
                if secret && SECRET_KEYS.contains(&k) {
                    out.push(path);
                } else {
                    collect_secret_keys(child, &path, out);
                }
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_secret_keys(child, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secrets_in_a_config_are_named_not_shown() {
        let text = "control:\n  token: 0123456789abcdef-secret\n  token_file: /etc/t\n\
                    block_stores:\n  remote:\n    - name: s3\n      secret_access_key: KEY-secret\n\
                    \x20     access_key_id: AKIA\nnfs:\n  token: ''\n";
        let keys = secrets_in_config(text);
        assert_eq!(
            keys,
            ["control.token", "block_stores.remote[0].secret_access_key"]
        );
        assert!(
            !keys
                .iter()
                .any(|k| k.contains("secret-") || k.contains("KEY"))
        );
        assert!(secrets_in_config("control:\n  token_file: /etc/t\n").is_empty());
        assert!(secrets_in_config(": not yaml: [").is_empty());
    }

    #[test]
    fn secret_file_content_less_line_ends() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "abc\n").unwrap();
        assert_eq!(read_secret_file(&p).unwrap(), "abc");
        std::fs::write(&p, "a b\r\n\n").unwrap();
        assert_eq!(read_secret_file(&p).unwrap(), "a b");
        std::fs::write(&p, "\n").unwrap();
        let e = read_secret_file(&p).unwrap_err();
        assert!(matches!(e, SecretFileError::Empty { .. }), "{e:?}");
        assert!(e.to_string().contains("is empty"), "{e}");
        let e = read_secret_file(&dir.path().join("none")).unwrap_err();
        assert!(matches!(e, SecretFileError::Read { .. }), "{e:?}");
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_secret_file(&p),
            Err(SecretFileError::NotText { .. })
        ));
    }

    #[test]
    fn exposed_modes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "x").unwrap();
        for (mode, exposed) in [
            (0o600, false),
            (0o400, false),
            (0o644, true),
            (0o640, true),
            (0o606, true),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(exposed_mode(&p), exposed.then_some(mode), "{mode:o}");
        }
        assert_eq!(exposed_mode(&dir.path().join("none")), None);
    }

    #[test]
    fn loopback_binds() {
        for a in ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"] {
            assert!(is_loopback_bind(a), "{a}");
        }
        for a in ["0.0.0.0", "::", "[::]", "10.0.0.5", "dfs.example", ""] {
            assert!(!is_loopback_bind(a), "{a}");
        }
    }
}
