//! Errors of the metadata layer. The VFS maps them onto its own error enum; a backend
//! never returns protocol status codes.

use dittofs_types::{ContentHash, Ino, ShareId};

pub type MetaResult<T> = Result<T, MetaError>;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// A [`crate::Check`] of the transaction did not hold; nothing was applied.
    /// The caller re-reads and retries (or reports the conflict).
    #[error("transaction precondition failed: {0}")]
    Conflict(String),
    /// The share is not known to this store.
    #[error("{0} is not in this metadata store")]
    NoSuchShare(ShareId),
    /// A transaction would make a chunk refcount negative or referenced a missing row:
    /// the caller's bookkeeping is wrong. Nothing was applied.
    #[error("refcount of chunk {hash} in {share} would become {value}")]
    RefcountUnderflow {
        share: ShareId,
        hash: ContentHash,
        value: i128,
    },
    /// An op referenced an inode that does not exist.
    #[error("{ino} of {share} does not exist")]
    NoSuchInode { share: ShareId, ino: Ino },
    /// Stored bytes could not be decoded: the store is damaged or from a newer version.
    #[error("corrupt metadata record ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// The backend's storage failed (I/O error, engine error).
    #[error("metadata backend error: {0}")]
    Backend(String),
    /// The store was closed.
    #[error("metadata store is closed")]
    Closed,
    /// The file system under the store is full (or over quota): nothing was applied.
    #[error("metadata store: no space left: {0}")]
    NoSpace(String),
}

impl MetaError {
    pub fn backend(e: impl std::fmt::Display) -> MetaError {
        MetaError::Backend(e.to_string())
    }
}
