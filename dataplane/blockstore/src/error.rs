//! Errors of the block store.
//!
//! Invariants: every I/O error carries the path it happened on (a bare `io::Error` with
//! no context makes an EIO at the protocol layer impossible to diagnose), and a content
//! hash mismatch is always reported as [`BlockError::Corrupt`], never as data.

use dittofs_types::ContentHash;
use std::path::{Path, PathBuf};

/// Errors returned by the chunker, the CAS, the journal and the engine.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("chunk {hash} is corrupt")]
    Corrupt { hash: ContentHash },
    #[error("chunk {hash} is missing from the local store")]
    NotFound { hash: ContentHash },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("busy: {0}")]
    Busy(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("background task failed: {0}")]
    Task(String),
    /// A chunk not on the local tier could not be read from the remote tier (stalled,
    /// unreachable, corrupt object): the read fails with EIO and this message.
    #[error("remote tier: {0}")]
    Remote(String),
    /// Data of a `durability: remote` share is not confirmed on the remote yet (the
    /// remote is slow or down): the client should retry (NFS3ERR_JUKEBOX), nothing is lost.
    #[error("not yet on the remote tier: {0}")]
    RemotePending(String),
    /// The local tier is over its cap with data that only a failing remote could take
    /// (see `space`): the write is refused (ENOSPC / NFS3ERR_NOSPC), nothing is lost.
    #[error("no space: {0}")]
    NoSpace(String),
    /// The store is open in another process or belongs to another server (see `claim`).
    #[error("{0}")]
    InUse(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, BlockError>;

/// Returns a closure wrapping an `io::Error` with `path` (for `map_err`).
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BlockError + '_ {
    move |source| BlockError::Io {
        path: path.to_path_buf(),
        source,
    }
}
