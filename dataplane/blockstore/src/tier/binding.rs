//! The binding of one share to its remote tier: the only interface the protocol-neutral
//! core (vfs) uses toward the remote tier, and the home of the upload policy it used to
//! hold.
//!
//! ```text
//! impl ColdTier for TierBinding     // engine: reads of chunks missing locally
//! TierBinding::before_commit()      // flush/truncate, before its metadata commit
//!     -> CommitTicket::stage(Publish) // what the commit will reference, durable
//!     -> CommitTicket::after_commit() // once the commit is durable (or failed)
//! TierBinding::sync(blocks)         // COMMIT/fsync of a `durability: remote` share
//! ```
//!
//! Who calls it when: the vfs flush takes a [`CommitTicket`] before it takes the file's
//! write lock, stages the flush's [`Publish`] right before its metadata commit and ends
//! the ticket after it; a truncate does the same around its commit; COMMIT (and
//! FILE_SYNC writes) on a share whose [`TierBinding::syncs_remote`] is true flushes the
//! file and then calls [`TierBinding::sync`] with its committed block list; reads,
//! flushes and truncates hand the binding to the engine as its [`ColdTier`].
//!
//! Policy held here (not in the core): which chunks of a flush are staged (new ones, and
//! once the file is quiesced every one the tier does not know yet, so its ObjectID can
//! become known for file-level dedup), what a truncate stages (the whole new list), and
//! what `durability: remote` waits for.
//!
//! Invariants: the ticket holds the tier's flush gate (shared) from before staging until
//! after the commit, so a GC run either sees the commit's block list or knows its chunks
//! as touched (see [`super::gc`]); staged markers are durable before `stage` returns,
//! hence before the metadata that references them.

use super::RemoteTier;
use crate::cold::ColdTier;
use crate::engine::Engine;
use crate::error::Result;
use bytes::Bytes;
use dittofs_types::{BlockRef, ContentHash, FileKey, ObjectId};
use std::collections::HashSet;

/// Where a share's committed data must be before COMMIT / FILE_SYNC returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DataDurability {
    /// Durable on the local tier (journal fsync); uploads to the remote follow in the
    /// background.
    #[default]
    Local,
    /// Flushed into chunks and confirmed on the remote tier.
    Remote,
}

/// One share's binding to its remote tier: the tier, the share's engine (registered with
/// the tier under `engine_name`) and the durability contract.
#[derive(Debug)]
pub struct TierBinding {
    tier: RemoteTier,
    engine: Engine,
    engine_name: String,
    durability: DataDurability,
}

/// What a metadata commit of a remote share publishes.
#[derive(Clone, Copy, Debug)]
pub enum Publish<'a> {
    /// A flush replacing the block list `old` by `new`; `object` is the file's ObjectID
    /// when the flush quiesces it.
    Flush {
        old: &'a [BlockRef],
        new: &'a [BlockRef],
        object: Option<ObjectId>,
    },
    /// A truncate: `new` is the file's whole (quiesced) block list.
    Truncate { new: &'a [BlockRef] },
}

/// Held by a flush or truncate from before it stages until after its metadata commit.
#[derive(Debug)]
pub struct CommitTicket<'a> {
    binding: &'a TierBinding,
    _gate: tokio::sync::RwLockReadGuard<'a, ()>,
}

impl TierBinding {
    /// Binds `engine` (local block store `engine_name`) to `tier`; the tier learns the
    /// engine under that name (idempotent), so its pending uploads can proceed.
    pub fn new(
        tier: RemoteTier,
        engine: &Engine,
        engine_name: &str,
        durability: DataDurability,
    ) -> TierBinding {
        tier.register_engine(engine_name, engine);
        TierBinding {
            tier,
            engine: engine.clone(),
            engine_name: engine_name.to_owned(),
            durability,
        }
    }

    /// The binding as the engine's source of evicted chunks.
    pub fn cold(&self) -> &dyn ColdTier {
        self
    }

    /// The remote tier (status, presence checks).
    pub fn tier(&self) -> &RemoteTier {
        &self.tier
    }

    /// Whether COMMIT/fsync must flush the file and [`TierBinding::sync`] it.
    pub fn syncs_remote(&self) -> bool {
        self.durability == DataDurability::Remote
    }

    /// Before a flush or truncate commits its metadata: the ticket to stage with and to
    /// hold until the commit is durable.
    pub async fn before_commit(&self) -> CommitTicket<'_> {
        CommitTicket {
            binding: self,
            _gate: self.tier.flush_guard().await,
        }
    }

    /// `durability: remote`: returns once every chunk of `blocks` (a file's committed
    /// list) is confirmed on the remote; late: [`crate::BlockError::RemotePending`].
    /// Returns at once for `durability: local`.
    pub async fn sync(&self, blocks: &[BlockRef]) -> Result<()> {
        if !self.syncs_remote() {
            return Ok(());
        }
        let hashes: Vec<ContentHash> = blocks.iter().map(|b| b.hash).collect();
        self.tier.wait_remote(&self.engine_name, &hashes).await
    }

    /// Stages `blocks` for upload (the tier skips and counts those it knows). `object`:
    /// the file's ObjectID when these complete a quiesced file.
    async fn stage_blocks(&self, blocks: &[BlockRef], object: Option<ObjectId>) -> Result<()> {
        if blocks.is_empty() && object.is_none() {
            return Ok(());
        }
        let hashes: Vec<ContentHash> = blocks.iter().map(|b| b.hash).collect();
        let sizes: Vec<u64> = blocks.iter().map(|b| u64::from(b.size)).collect();
        self.tier
            .stage(&self.engine_name, &hashes, &sizes, object)
            .await
    }
}

impl CommitTicket<'_> {
    /// Stages what the commit publishes, durable when this returns; call it before the
    /// metadata commit. A flush stages its new chunks and, once the file is quiesced
    /// (`object`), every older one the tier does not know yet, so the ObjectID can
    /// become known; a truncate stages its whole list.
    pub async fn stage(&self, publish: Publish<'_>) -> Result<()> {
        let b = self.binding;
        match publish {
            Publish::Flush { old, new, object } => {
                let old: HashSet<ContentHash> = old.iter().map(|b| b.hash).collect();
                let stage: Vec<BlockRef> = new
                    .iter()
                    .filter(|x| {
                        !old.contains(&x.hash) || (object.is_some() && !b.tier.is_known(&x.hash))
                    })
                    .copied()
                    .collect();
                b.stage_blocks(&stage, object).await
            }
            Publish::Truncate { new } => b.stage_blocks(new, Some(ObjectId::compute(new))).await,
        }
    }

    /// After the metadata commit (or its failure): lets a GC run start again.
    pub fn after_commit(self) {}
}

#[async_trait::async_trait]
impl ColdTier for TierBinding {
    async fn read_missing(&self, block: &BlockRef, off: u64, len: u64) -> Result<Bytes> {
        self.tier.read_cold(&self.engine, block, off, len).await
    }

    async fn fetch_missing(&self, block: &BlockRef) -> Result<()> {
        self.tier.fetch_into_local(&self.engine, block).await
    }

    fn after_read(&self, key: FileKey, blocks: &[BlockRef], start: u64, end: u64) {
        self.tier.after_read(&self.engine, key, blocks, start, end);
    }
}
