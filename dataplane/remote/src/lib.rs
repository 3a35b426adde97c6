//! The remote block tier: content-addressed chunks in an object store.
//!
//! Object layout (one object per chunk, immutable once written):
//!
//! | key | body | metadata |
//! |---|---|---|
//! | `{prefix}cas/{hh}/{hh}/{hex}` (`hh` = first two bytes of the BLAKE3 hash in hex) | the chunk's bytes | `blake3: <hex>`, `dittofs-tree: <tree>` |
//!
//! `<tree>` is the chunk's [`tree::ChunkTree`] encoded (`1.<log2 G>.<base64url CVs>`, at
//! most 1371 bytes): the chaining values of its (at most 32) aligned groups, which let a
//! reader verify a range of whole groups against the chunk hash. Objects written without
//! it (older writers) are read whole.
//!
//! Invariants:
//! - `put` uploads only bytes that hash to the key: a caller bug can never store wrong
//!   content under a hash.
//! - `get` returns only bytes whose BLAKE3 hash equals the requested hash; a corrupt or
//!   truncated object is [`RemoteError::Corrupt`], never data.
//! - `get_range_verified` returns only bytes verified against the chunk hash: it fetches
//!   the groups covering the range in one ranged request and checks them against the
//!   object's tree, itself checked against the hash (a chunk of one group, or an object
//!   without a tree, is read whole and verified). `get_range_raw` is the unverified
//!   building block: exactly the requested length or an error.
//! - `delete` is idempotent; `list` walks every chunk object in key order, in pages.
//! - Every call is bounded in time by the backend's configuration (an operation timeout):
//!   a stalled server yields [`RemoteError::Unavailable`], never a hung caller.

pub mod conformance;
mod error;
pub mod memory;
#[cfg(feature = "s3")]
pub mod s3;
pub mod tree;

use async_trait::async_trait;
use bytes::Bytes;
use dittofs_types::ContentHash;

pub use error::{RemoteError, Result};
pub use memory::MemoryRemote;
#[cfg(feature = "s3")]
pub use s3::{S3Config, S3Remote};
pub use tree::{ChunkTree, group_size};

/// User-metadata key of the chunk hash (hex).
pub const META_HASH: &str = "blake3";
/// User-metadata key of the encoded [`ChunkTree`].
pub const META_TREE: &str = "dittofs-tree";

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

/// A range of a chunk object as the store returned it: nothing is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRange {
    /// Exactly the requested bytes.
    pub data: Bytes,
    /// Length of the whole object.
    pub object_len: u64,
    /// The object's `dittofs-tree` metadata, `None` if it has none.
    pub tree: Option<String>,
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
    /// `len` bytes at `offset` of the chunk object, UNVERIFIED, in one request, with the
    /// object's length and tree metadata: exactly `len` bytes or an error (`Invalid` for an
    /// empty range or one past the end of the object).
    async fn get_range_raw(&self, hash: &ContentHash, offset: u64, len: u64) -> Result<RawRange>;
    /// Size and time of the chunk object, `None` if absent.
    async fn head(&self, hash: &ContentHash) -> Result<Option<ObjectInfo>>;
    /// Deletes the chunk object (no error if absent).
    async fn delete(&self, hash: &ContentHash) -> Result<()>;
    /// Up to `limit` chunk objects after the cursor `after` (from a previous page).
    async fn list(&self, after: Option<String>, limit: u32) -> Result<Page>;

    /// The location's ownership record (`{prefix}dittofs-owner.json`, outside the chunk
    /// keys: never listed, never swept), `None` if there is none.
    async fn get_owner_record(&self) -> Result<Option<Bytes>>;
    /// Writes the ownership record (replacing any).
    async fn put_owner_record(&self, data: Bytes) -> Result<()>;

    /// Creates the container (S3 bucket) if it does not exist. Default: nothing to do.
    async fn create_if_missing(&self) -> Result<()> {
        Ok(())
    }

    /// `len` bytes at `offset` of the chunk `hash` of `chunk_len` bytes, every byte verified
    /// against `hash`. Fetches only the groups covering the range (one ranged request) when
    /// the object has a tree; a chunk of one group, or an object without a tree, is fetched
    /// whole. `Invalid` for an empty range or one past `chunk_len`; `Corrupt` when the
    /// object, its length or its tree do not match `hash` and `chunk_len`.
    async fn get_range_verified(
        &self,
        hash: &ContentHash,
        chunk_len: u64,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        let end = offset
            .checked_add(len)
            .filter(|&e| len > 0 && e <= chunk_len)
            .ok_or_else(|| {
                RemoteError::Invalid(format!(
                    "range {offset}+{len} of chunk {hash} of {chunk_len} bytes"
                ))
            })?;
        let g = group_size(chunk_len);
        if chunk_len <= g {
            return whole_then_slice(self, hash, chunk_len, offset, end).await;
        }
        let (first, last) = (offset / g, (end - 1) / g);
        let (ga, gb) = (first * g, ((last + 1) * g).min(chunk_len));
        let corrupt = |detail: String| RemoteError::Corrupt {
            hash: *hash,
            detail,
        };
        let raw = match self.get_range_raw(hash, ga, gb - ga).await {
            Ok(r) => r,
            // The range is within chunk_len: the object is shorter than the chunk.
            Err(RemoteError::Invalid(e)) => {
                return Err(corrupt(format!(
                    "range [{ga}, {gb}) of a chunk of {chunk_len} bytes: {e}"
                )));
            }
            Err(e) => return Err(e),
        };
        let Some(encoded) = raw.tree else {
            // Written without a tree: only the whole chunk can be verified.
            return whole_then_slice(self, hash, chunk_len, offset, end).await;
        };
        if raw.object_len != chunk_len {
            return Err(corrupt(format!(
                "the object has {} bytes, the chunk {chunk_len}",
                raw.object_len
            )));
        }
        let tree = ChunkTree::decode(&encoded, chunk_len).map_err(|e| corrupt(e.to_string()))?;
        if !tree.verify_root(hash) {
            return Err(corrupt("its tree does not match the hash".into()));
        }
        if raw.data.len() as u64 != gb - ga || !tree.verify_groups(first as usize, &raw.data) {
            return Err(corrupt(format!("bytes [{ga}, {gb}) do not match the tree")));
        }
        Ok(raw.data.slice((offset - ga) as usize..(end - ga) as usize))
    }
}

/// The verified whole chunk, sliced to `[offset, end)` (`end <= chunk_len` checked).
async fn whole_then_slice<S: RemoteStore + ?Sized>(
    s: &S,
    hash: &ContentHash,
    chunk_len: u64,
    offset: u64,
    end: u64,
) -> Result<Bytes> {
    let data = s.get(hash).await?;
    if data.len() as u64 != chunk_len {
        // The bytes are the chunk (verified): the caller's length is wrong.
        return Err(RemoteError::Invalid(format!(
            "chunk {hash} has {} bytes, not {chunk_len}",
            data.len()
        )));
    }
    Ok(data.slice(offset as usize..end as usize))
}

/// The object key of `hash` under `prefix` (normalized: empty or ending in `/`).
pub fn chunk_key(prefix: &str, hash: &ContentHash) -> String {
    let hex = hash.to_hex();
    format!("{prefix}cas/{}/{}/{hex}", &hex[0..2], &hex[2..4])
}

/// The key of the ownership record under `prefix` (normalized).
pub fn owner_key(prefix: &str) -> String {
    format!("{prefix}dittofs-owner.json")
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
        assert_eq!(hash_of_key("pre/", &owner_key("pre/")), None);
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
