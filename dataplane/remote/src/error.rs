//! The one error type of the remote tier, [`RemoteError`], and the crate's `Result`.
//!
//! It sits below every other module, so that `tree` (which the crate root uses to
//! verify ranges) names its failures without importing the root. A retry may cure only
//! [`RemoteError::Unavailable`] ([`RemoteError::is_transient`]).

use dittofs_types::ContentHash;

/// Errors of the remote tier.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("chunk {0} is not on the remote store")]
    NotFound(ContentHash),
    /// The object exists but its bytes do not match the hash (or its length is wrong).
    #[error("chunk {hash} on the remote store is corrupt: {detail}")]
    Corrupt { hash: ContentHash, detail: String },
    /// The server could not be reached, timed out or failed (worth retrying).
    #[error("remote store unavailable: {0}")]
    Unavailable(String),
    /// The request was refused (credentials, bucket, permissions): retrying will not help.
    #[error("remote store refused the request: {0}")]
    Refused(String),
    /// The caller asked for something invalid (bad range, data not matching its hash).
    #[error("invalid remote request: {0}")]
    Invalid(String),
}

impl RemoteError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, RemoteError::Unavailable(_))
    }
}

pub type Result<T, E = RemoteError> = std::result::Result<T, E>;
