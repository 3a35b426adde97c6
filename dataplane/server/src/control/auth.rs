//! Bearer-token authentication of the control API.
//!
//! Every call must carry `authorization: Bearer <token>`. The token comes from
//! `control.token` (or `DITTOFS_CONTROL_TOKEN`), else the file `control.token_file`, else
//! `<data_dir>/control-token`, which is generated (256 random bits, mode 0600) on first
//! start. Comparison is constant-time. A token that cannot be resolved is a
//! [`TokenError`] naming where it came from.

use crate::config::ControlSection;
use crate::state::StateError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a token is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidToken {
    #[error("the control token must be at least 16 characters")]
    TooShort,
    #[error("the control token must be printable ASCII without spaces")]
    NotPrintable,
}

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
    #[error("control token file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A generated token could not be persisted.
    #[error(transparent)]
    Write(#[from] StateError),
}

/// Where the token came from (printed at start so an admin knows where to look).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Config,
    File(String),
    Generated(String),
}

/// Resolves the token; generates and persists one when none is configured.
pub fn resolve_token(
    cfg: &ControlSection,
    data_dir: &Path,
) -> Result<(String, TokenSource), TokenError> {
    if !cfg.token.is_empty() {
        return Ok((check(cfg.token.trim().to_owned())?, TokenSource::Config));
    }
    let (path, configured) = if cfg.token_file.is_empty() {
        (data_dir.join("control-token"), false)
    } else {
        (Path::new(&cfg.token_file).to_owned(), true)
    };
    match std::fs::read_to_string(&path) {
        Ok(t) => check(t.trim().to_owned())
            .map_err(|source| TokenError::InvalidFile {
                path: path.clone(),
                source,
            })
            .map(|t| (t, TokenSource::File(path.display().to_string()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !configured => {
            let bytes: [u8; 32] = rand::random();
            let token = hex::encode(bytes);
            crate::state::write_atomic(&path, format!("{token}\n").as_bytes(), 0o600)?;
            Ok((token, TokenSource::Generated(path.display().to_string())))
        }
        Err(source) => Err(TokenError::Read { path, source }),
    }
}

fn check(t: String) -> Result<String, InvalidToken> {
    if t.len() < 16 {
        return Err(InvalidToken::TooShort);
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidToken::NotPrintable);
    }
    Ok(t)
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
                "missing bearer token: pass --token, --token-file or a dfsctl context (the server's token is in <data_dir>/control-token unless configured)",
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
        assert!(matches!(e, TokenError::Read { .. }), "{e:?}");
        assert!(e.to_string().contains("/nonexistent/token"), "{e}");

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
