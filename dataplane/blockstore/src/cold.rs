//! What the engine needs from a colder tier: the bytes of chunks that are missing from
//! the local CAS (evicted), as a trait object the engine is handed per call and whose
//! policy (where the bytes come from, caching, readahead) it does not own.
//!
//! The remote tier's per-share binding (`tier::TierBinding`) implements it; the
//! engine depends only on this trait, never on the tier, so the two do not call each
//! other in both directions: the tier side uses the engine (its CAS, its space
//! accounting), the engine uses only a [`ColdTier`].
//!
//! Invariants an implementation keeps:
//! - bytes returned are verified against the chunk's hash (never unverified data);
//! - every call is bounded in time (a stalled colder tier is an error, not a hang).

use crate::error::Result;
use bytes::Bytes;
use dittofs_types::{BlockRef, FileKey};

/// The source of chunks missing from the local CAS of one engine.
#[async_trait::async_trait]
pub trait ColdTier: Send + Sync {
    /// `len` bytes at `off` inside the chunk `block`, which is not in the local CAS.
    async fn read_missing(&self, block: &BlockRef, off: u64, len: u64) -> Result<Bytes>;

    /// Brings the whole chunk `block` back into the local CAS (before a flush or a
    /// truncate re-chunks a file whose base chunk was evicted).
    async fn fetch_missing(&self, block: &BlockRef) -> Result<()>;

    /// Called after every read of `[start, end)` of file `key` (block list `blocks`):
    /// lets the tier start fetching ahead for sequential readers.
    fn after_read(&self, key: FileKey, blocks: &[BlockRef], start: u64, end: u64);
}
