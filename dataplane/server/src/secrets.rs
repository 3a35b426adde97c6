//! Secrets read from files, and the start-time checks of how exposed they are.
//!
//! Invariants:
//! - A secret read from a file is the file's content less its trailing line ends
//!   (`\n`, `\r\n`); an empty result is an error ([`SecretFileError::Empty`]), never an
//!   empty secret.
//! - No function here returns or formats a secret in an error or a warning: messages name
//!   the file only.
//! - [`exposed_mode`] reports a file whose permission bits let its group or others read
//!   or write it (`mode & 0o077 != 0`); [`is_loopback_bind`] says whether a listener's
//!   bind address keeps it on this host.

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
