//! Content-addressed block layer of DittoFS.
//!
//! File content is a list of [`BlockRef`](dittofs_types::BlockRef)s sorted by offset
//! (gaps are holes reading as zeros) plus, while dirty, an in-memory [`overlay`] of
//! recent writes whose bytes live in the durable write-back [`journal`]. A flush
//! ([`Engine::prepare_flush`]) re-chunks the dirty regions with FastCDC ([`chunker`]),
//! stores new chunks in the local CAS ([`cas`]) and returns the new block list for the
//! caller to commit in its metadata transaction. This crate never touches metadata.
//!
//! Invariants held across modules:
//! - Chunks are immutable and named by the BLAKE3 hash of their bytes; whole-chunk reads
//!   verify it, ranged reads read exactly the requested range.
//! - A block list returned to the caller only references chunks whose files and
//!   directory entries are durable.
//! - Journal seqs are global, increasing and never reused; per file they order writes,
//!   and `applied_seq` watermarks let the journal reclaim segments.

pub mod cas;
pub mod chunker;
mod claim;
pub mod cold;
pub mod engine;
pub mod error;
pub mod journal;
pub mod overlay;
pub mod presence;
mod release;
mod reserve;
mod space;
pub mod tier;

pub use cas::LocalCas;
pub use chunker::{Chunker, ChunkerConfig, StreamChunker};
pub use claim::Owner;
pub use cold::ColdTier;
pub use engine::{DiskStats, Engine, EngineConfig, FlushKind, FlushPlan};
pub use error::{BlockError, Result};
pub use journal::{Journal, JournalLoc, RecoveredRecord};
pub use overlay::{Extent, Overlay};
pub use presence::{Presence, check_chunk};
pub use release::PinGuard;
pub use tier::{DataDurability, RemoteTier, TierBinding, TierConfig, TierStatus};
