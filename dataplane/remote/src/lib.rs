//! The remote block tier: content-addressed chunks in an object store.
//!
//! Object layout (one object per chunk, immutable once written):
//!
//! | key | body | metadata |
//! |---|---|---|
//! | `{prefix}cas/{hh}/{hh}/{hex}` (`hh` = first two bytes of the BLAKE3 hash in hex) | the chunk's bytes | `blake3: <hex>` |
//!
//! Invariants:
//! - `put` uploads only bytes that hash to the key: a caller bug can never store wrong
//!   content under a hash.
//! - `get` returns only bytes whose BLAKE3 hash equals the requested hash; a corrupt or
//!   truncated object is [`RemoteError::Corrupt`], never data. `get_range` returns exactly
//!   the requested length or an error (the caller verifies whole chunks; a range alone
//!   cannot be checked against the chunk hash).
//! - `delete` is idempotent; `list` walks every chunk object in key order, in pages.
//! - Every call is bounded in time by the backend's configuration (an operation timeout):
//!   a stalled server yields [`RemoteError::Unavailable`], never a hung caller.

pub mod conformance;
pub mod memory;
pub mod s3;

use async_trait::async_trait;
use bytes::Bytes;
use dittofs_types::ContentHash;

pub use memory::MemoryRemote;
pub use s3::{S3Config, S3Remote};

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

/// One chunk object on the remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub hash: ContentHash,
    pub size: u64,
    /// Last modification, unix seconds (for GC grace periods).
    pub modified_unix: i64,
}

/// One page of a walk over the chunk objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub objects: Vec<ObjectInfo>,
    /// Pass to the next `list` call; `None` = the walk is complete.
    pub next: Option<String>,
}

/// A content-addressed object store holding chunks.
#[async_trait]
pub trait RemoteStore: Send + Sync + std::fmt::Debug {
    /// Identity of the storage location (`s3://bucket/prefix@endpoint`, `memory:<name>`):
    /// stores with the same identity hold the same chunks (dedup and GC span them).
    fn identity(&self) -> String;
    /// Stores `data` under `hash`. Fails with `Invalid` if `data` does not hash to `hash`.
    async fn put(&self, hash: &ContentHash, data: Bytes) -> Result<()>;
    /// The whole chunk, verified against `hash`.
    async fn get(&self, hash: &ContentHash) -> Result<Bytes>;
    /// `len` bytes at `offset` of the chunk; exactly `len` bytes or an error.
    async fn get_range(&self, hash: &ContentHash, offset: u64, len: u64) -> Result<Bytes>;
    /// Size and time of the chunk object, `None` if absent.
    async fn head(&self, hash: &ContentHash) -> Result<Option<ObjectInfo>>;
    /// Deletes the chunk object (no error if absent).
    async fn delete(&self, hash: &ContentHash) -> Result<()>;
    /// Up to `limit` chunk objects after the cursor `after` (from a previous page).
    async fn list(&self, after: Option<String>, limit: u32) -> Result<Page>;
}

/// The object key of `hash` under `prefix` (normalized: empty or ending in `/`).
pub fn chunk_key(prefix: &str, hash: &ContentHash) -> String {
    let hex = hash.to_hex();
    format!("{prefix}cas/{}/{}/{hex}", &hex[0..2], &hex[2..4])
}

/// The hash named by a chunk key under `prefix`, if it is one.
pub fn hash_of_key(prefix: &str, key: &str) -> Option<ContentHash> {
    let rest = key.strip_prefix(prefix)?.strip_prefix("cas/")?;
    let mut parts = rest.split('/');
    let (a, b, hex) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || hex.len() != 64 || !hex.starts_with(a) || hex[2..4] != *b {
        return None;
    }
    ContentHash::from_hex(hex).ok()
}

/// Normalizes a key prefix: no leading `/`, a trailing `/` unless empty.
pub fn normalize_prefix(p: &str) -> String {
    let p = p.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

/// Checks that `data` is the chunk `hash` (full verification of a whole-chunk read).
pub fn verify(hash: &ContentHash, data: &[u8], expected_len: Option<u64>) -> Result<()> {
    if let Some(n) = expected_len
        && n != data.len() as u64
    {
        return Err(RemoteError::Corrupt {
            hash: *hash,
            detail: format!("{} bytes received, the object has {n}", data.len()),
        });
    }
    let got = ContentHash::of(data);
    if got != *hash {
        return Err(RemoteError::Corrupt {
            hash: *hash,
            detail: format!("content hashes to {got} ({} bytes)", data.len()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let h = ContentHash::of(b"abc");
        let k = chunk_key("pre/", &h);
        assert!(k.starts_with("pre/cas/"));
        assert_eq!(hash_of_key("pre/", &k), Some(h));
        assert_eq!(hash_of_key("", &k), None);
        assert_eq!(hash_of_key("pre/", "pre/cas/00/00/zz"), None);
        assert_eq!(normalize_prefix("/a/b/"), "a/b/");
        assert_eq!(normalize_prefix(""), "");
        assert!(verify(&h, b"abc", Some(3)).is_ok());
        assert!(matches!(
            verify(&h, b"abd", None),
            Err(RemoteError::Corrupt { .. })
        ));
        assert!(matches!(
            verify(&h, b"ab", Some(3)),
            Err(RemoteError::Corrupt { .. })
        ));
    }
}
