//! Bearer-token authentication of the control API.
//!
//! Every call must carry `authorization: Bearer <token>`. The token comes from
//! `control.token` (or `DITTOFS_CONTROL_TOKEN`), else the file `control.token_file`, else
//! `<data_dir>/control-token`, which is generated (256 random bits, mode 0600) on first
//! start. Comparison is constant-time. A token that cannot be resolved is a
//! [`TokenError`] naming where it came from, never the token itself: the token is never
//! printed or logged (the banner names its file).
//!
//! `<data_dir>/control-endpoint` holds the address the control listener is bound to
//! and the process id of the `dfs` that bound it (`127.0.0.1:9000 4242`), while `dfs`
//! runs (written at start, removed at a clean stop). `dfsctl` sends the token of a local
//! data directory only to the server of that address, and only while that process is a
//! running `dfs` (a crash leaves the file behind; its port may since be someone else's).

pub use crate::config::InvalidToken;
use crate::config::{ControlSection, check_token};
use crate::secrets::{SecretFileError, read_secret_file};
use crate::state::StateError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the control token could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The configured token (`control.token`).
    #[error(transparent)]
    Invalid(#[from] InvalidToken),
    /// The token in a file.
    #[error("{}: {source}", path.display())]
    InvalidFile {
        path: PathBuf,
        #[source]
        source: InvalidToken,
    },
    #[error("control token file: {0}")]
    Read(#[source] SecretFileError),
    /// A generated token could not be persisted.
    #[error(transparent)]
    Write(#[from] StateError),
}

impl TokenError {
    /// Whether the configuration is at fault (a bad or unreadable token or token file),
    /// rather than the data directory failing to take a generated token.
    pub fn is_config(&self) -> bool {
        !matches!(self, TokenError::Write(_))
    }
}

/// Where the token came from (the banner names it, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Config,
    File(PathBuf),
    Generated(PathBuf),
}

/// The token file of a data directory.
pub fn default_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control-token")
}

/// Resolves the token; generates and persists one when none is configured.
pub fn resolve_token(
    cfg: &ControlSection,
    data_dir: &Path,
) -> Result<(String, TokenSource), TokenError> {
    if !cfg.token.is_empty() {
        let t = cfg.token.trim();
        check_token(t)?;
        return Ok((t.to_owned(), TokenSource::Config));
    }
    let (path, configured) = if cfg.token_file.is_empty() {
        (default_token_path(data_dir), false)
    } else {
        (PathBuf::from(&cfg.token_file), true)
    };
    match read_secret_file(&path) {
        Ok(t) => {
            let t = t.trim().to_owned();
            check_token(&t).map_err(|source| TokenError::InvalidFile {
                path: path.clone(),
                source,
            })?;
            Ok((t, TokenSource::File(path)))
        }
        Err(SecretFileError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && !configured =>
        {
            let bytes: [u8; 32] = rand::random();
            let token = hex::encode(bytes);
            crate::state::write_atomic(&path, format!("{token}\n").as_bytes(), 0o600)?;
            Ok((token, TokenSource::Generated(path)))
        }
        Err(e) => Err(TokenError::Read(e)),
    }
}

/// The file recording the control listener's address (see the module header).
pub fn endpoint_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control-endpoint")
}

/// Records the bound address of the control listener (`127.0.0.1:9000`, `0.0.0.0:9000`)
/// and this process's id.
pub fn record_endpoint(data_dir: &Path, addr: SocketAddr) -> Result<(), StateError> {
    let pid = std::process::id();
    crate::state::write_atomic(
        &endpoint_path(data_dir),
        format!("{addr} {pid}\n").as_bytes(),
        0o644,
    )
}

/// Removes the record at a clean stop (a stopped server's port may be taken by another).
pub fn forget_endpoint(data_dir: &Path) {
    let _ = std::fs::remove_file(endpoint_path(data_dir));
}

/// tonic interceptor refusing calls without the right bearer token.
#[derive(Clone)]
pub struct BearerAuth {
    expected: Arc<Vec<u8>>,
}

impl BearerAuth {
    pub fn new(token: &str) -> BearerAuth {
        BearerAuth {
            expected: Arc::new(format!("Bearer {token}").into_bytes()),
        }
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match req.metadata().get("authorization") {
            None => Err(tonic::Status::unauthenticated(
                "missing bearer token: give dfsctl --token-file FILE (or DFSCTL_TOKEN, or a context: dfsctl context set NAME --server ADDR --token-file FILE); the server's token is in <data_dir>/control-token unless configured",
            )),
            Some(v) if ct_eq(v.as_bytes(), &self.expected) => Ok(req),
            Some(_) => Err(tonic::Status::unauthenticated("wrong bearer token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn token_sources_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ControlSection::default();
        let (t1, src) = resolve_token(&cfg, dir.path()).unwrap();
        assert!(matches!(src, TokenSource::Generated(_)));
        let (t2, src) = resolve_token(&cfg, dir.path()).unwrap();
        assert_eq!(
            (t1.clone(), matches!(src, TokenSource::File(_))),
            (t2, true)
        );
        cfg.token = "short".into();
        assert!(matches!(
            resolve_token(&cfg, dir.path()),
            Err(TokenError::Invalid(InvalidToken::TooShort))
        ));
        cfg.token = String::new();
        cfg.token_file = "/nonexistent/token".into();
        let e = resolve_token(&cfg, dir.path()).unwrap_err();
        assert!(matches!(e, TokenError::Read(_)), "{e:?}");
        assert!(e.is_config());
        assert!(e.to_string().contains("/nonexistent/token"), "{e}");
        // A configured file: trailing newline ignored, a short or empty one refused.
        let f = dir.path().join("tok");
        std::fs::write(&f, "0123456789abcdef0123\n").unwrap();
        cfg.token_file = f.display().to_string();
        let (t, src) = resolve_token(&cfg, dir.path()).unwrap();
        assert_eq!(
            (t.as_str(), src),
            ("0123456789abcdef0123", TokenSource::File(f.clone()))
        );
        std::fs::write(&f, "short\n").unwrap();
        let e = resolve_token(&cfg, dir.path()).unwrap_err();
        assert!(
            matches!(e, TokenError::InvalidFile { .. }) && e.is_config(),
            "{e:?}"
        );
        assert!(
            !e.to_string().contains("short"),
            "the token is not echoed: {e}"
        );
        std::fs::write(&f, "").unwrap();
        assert!(matches!(
            resolve_token(&cfg, dir.path()),
            Err(TokenError::Read(_))
        ));

        let mut auth = BearerAuth::new(&t1);
        let mut req = tonic::Request::new(());
        assert_eq!(
            auth.call(req).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        req = tonic::Request::new(());
        req.metadata_mut()
            .insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(
            auth.call(req).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        req = tonic::Request::new(());
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t1}").parse().unwrap());
        assert!(auth.call(req).is_ok());
    }
}
