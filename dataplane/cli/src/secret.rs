//! Secrets given to `dfsctl` (the control token, the S3 secret key) and where each came
//! from.
//!
//! A secret can be given as a value (a flag, visible to every user in `ps`, or an
//! environment variable, visible only to the user and root) or as a file holding it.
//!
//! Invariants:
//! - At most one form of a secret may be given: two non-empty forms are a
//!   [`SecretError::Conflict`] naming both, whatever their values.
//! - An empty value (`DFSCTL_TOKEN=`) counts as not given.
//! - A file's secret is its content less the trailing line ends (`\n`, `\r\n`); a file
//!   that is empty after that is [`SecretError::EmptyFile`], never an empty secret.
//! - No message here contains a secret: errors name the form or the file only.

use std::path::{Path, PathBuf};

/// One way a secret may have been given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretInput {
    /// The secret itself; `origin` is how it was given (`--token`, `DFSCTL_TOKEN`).
    Value { origin: String, value: String },
    /// A file holding the secret; `origin` is how the path was given.
    File { origin: String, path: PathBuf },
}

impl SecretInput {
    fn origin(&self) -> &str {
        match self {
            SecretInput::Value { origin, .. } | SecretInput::File { origin, .. } => origin,
        }
    }

    /// Whether this form says anything (an empty value or path does not).
    fn is_given(&self) -> bool {
        match self {
            SecretInput::Value { value, .. } => !value.is_empty(),
            SecretInput::File { path, .. } => !path.as_os_str().is_empty(),
        }
    }
}

/// A resolved secret: its value, the form it came from and the file, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Secret {
    pub(crate) value: String,
    pub(crate) origin: String,
    pub(crate) path: Option<PathBuf>,
}

/// Why a secret could not be resolved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretError {
    #[error("the {what} is given twice, by {first} and by {second}: give one")]
    Conflict {
        what: &'static str,
        first: String,
        second: String,
    },
    #[error("cannot read the {what} from {} ({origin}): {source}", path.display())]
    Read {
        what: &'static str,
        origin: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the {what} file {} ({origin}) is empty", path.display())]
    EmptyFile {
        what: &'static str,
        origin: String,
        path: PathBuf,
    },
    #[error("the {what} file {} ({origin}) is not UTF-8 text", path.display())]
    NotText {
        what: &'static str,
        origin: String,
        path: PathBuf,
    },
}

/// Resolves the secret called `what` from the forms given (see the module invariants).
pub(crate) fn resolve(
    what: &'static str,
    inputs: &[SecretInput],
) -> Result<Option<Secret>, SecretError> {
    let mut given = inputs.iter().filter(|i| i.is_given());
    let Some(first) = given.next() else {
        return Ok(None);
    };
    if let Some(second) = given.next() {
        return Err(SecretError::Conflict {
            what,
            first: first.origin().to_owned(),
            second: second.origin().to_owned(),
        });
    }
    match first {
        SecretInput::Value { origin, value } => Ok(Some(Secret {
            value: strip_line_ends(value).to_owned(),
            origin: origin.clone(),
            path: None,
        })),
        SecretInput::File { origin, path } => {
            let path = expand_tilde(path);
            let value = read_file(what, origin, &path)?;
            Ok(Some(Secret {
                value,
                origin: origin.clone(),
                path: Some(path),
            }))
        }
    }
}

/// Reads a secret file: its content less trailing line ends, never empty.
fn read_file(what: &'static str, origin: &str, path: &Path) -> Result<String, SecretError> {
    let bytes = std::fs::read(path).map_err(|source| SecretError::Read {
        what,
        origin: origin.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| SecretError::NotText {
        what,
        origin: origin.to_owned(),
        path: path.to_owned(),
    })?;
    let value = strip_line_ends(&text);
    if value.is_empty() {
        return Err(SecretError::EmptyFile {
            what,
            origin: origin.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(value.to_owned())
}

fn strip_line_ends(s: &str) -> &str {
    s.trim_end_matches(['\n', '\r'])
}

/// `~/x` -> `$HOME/x` (for paths stored in the config file, where no shell expands them).
pub(crate) fn expand_tilde(p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    p.to_path_buf()
}

/// The permission bits of a file its group or others may access (`mode & 0o077 != 0`);
/// `None` when only its owner may, or when it cannot be examined.
pub(crate) fn exposed_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(origin: &str, v: &str) -> SecretInput {
        SecretInput::Value {
            origin: origin.into(),
            value: v.into(),
        }
    }

    fn file(origin: &str, p: &Path) -> SecretInput {
        SecretInput::File {
            origin: origin.into(),
            path: p.to_owned(),
        }
    }

    #[test]
    fn each_form_alone() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "from-file\n").unwrap();
        let none: Option<Secret> = None;
        assert_eq!(resolve("token", &[]).unwrap(), none);
        let s = resolve("token", &[value("--token", "flag-value"), value("ENV", "")])
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.value.as_str(), s.origin.as_str()),
            ("flag-value", "--token")
        );
        let s = resolve(
            "token",
            &[value("--token", ""), value("ENV", "env-value\n")],
        )
        .unwrap()
        .unwrap();
        assert_eq!((s.value.as_str(), s.origin.as_str()), ("env-value", "ENV"));
        let s = resolve("token", &[value("--token", ""), file("--token-file", &f)])
            .unwrap()
            .unwrap();
        assert_eq!(s.value, "from-file");
        assert_eq!(s.path.as_deref(), Some(f.as_path()));
    }

    #[test]
    fn file_content_less_trailing_line_ends() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        for (content, want) in [
            ("abc", "abc"),
            ("abc\n", "abc"),
            ("abc\r\n", "abc"),
            ("abc\n\n", "abc"),
            (" a b \n", " a b "),
        ] {
            std::fs::write(&f, content).unwrap();
            let s = resolve("key", &[file("--key-file", &f)]).unwrap().unwrap();
            assert_eq!(s.value, want, "{content:?}");
        }
    }

    #[test]
    fn two_forms_conflict_whatever_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "same\n").unwrap();
        let e = resolve(
            "S3 secret access key",
            &[
                value("--secret-access-key", "same"),
                file("--secret-access-key-file", &f),
            ],
        )
        .unwrap_err();
        assert!(matches!(e, SecretError::Conflict { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("--secret-access-key-file"), "{text}");
        assert!(!text.contains("same"), "no secret in the message: {text}");
        let e = resolve("token", &[value("--token", "a"), value("ENV", "b")]).unwrap_err();
        assert!(matches!(e, SecretError::Conflict { .. }), "{e:?}");
    }

    #[test]
    fn empty_missing_and_binary_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        for content in ["", "\n", "\r\n"] {
            std::fs::write(&f, content).unwrap();
            let e = resolve("token", &[file("--token-file", &f)]).unwrap_err();
            assert!(
                matches!(e, SecretError::EmptyFile { .. }),
                "{content:?}: {e:?}"
            );
            assert!(e.to_string().contains("is empty"), "{e}");
        }
        let e = resolve("token", &[file("--token-file", &dir.path().join("none"))]).unwrap_err();
        assert!(matches!(e, SecretError::Read { .. }), "{e:?}");
        assert!(e.to_string().contains("--token-file"), "{e}");
        std::fs::write(&f, [0xff, 0x00]).unwrap();
        let e = resolve("token", &[file("--token-file", &f)]).unwrap_err();
        assert!(matches!(e, SecretError::NotText { .. }), "{e:?}");
    }

    #[cfg(unix)]
    #[test]
    fn exposed_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c");
        std::fs::write(&f, "x").unwrap();
        for (mode, exposed) in [(0o600, false), (0o644, true), (0o640, true), (0o400, false)] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(exposed_mode(&f), exposed.then_some(mode), "{mode:o}");
        }
    }
}
