//! Where a referenced chunk is, for audits: on the local tier, on the remote tier, on
//! neither (missing), or present but not its content (corrupt).
//!
//! A refcount audit that only compares numbers says "clean" while the chunks themselves
//! are gone (a foreign GC, a disk restored from an old backup, a hand-deleted file); this
//! check closes that gap. Without `verify` it costs one `stat` per local chunk and one
//! HEAD per remote chunk (length compared with the block's); with `verify` every copy
//! that is consulted is read whole and its BLAKE3 hash compared with its name.
//!
//! Invariant: a chunk is reported `Missing`/`Corrupt` only when no tier holds a good
//! copy; a remote that cannot be asked (network, credentials) is an error of the check,
//! never a verdict on the chunk.

use crate::engine::Engine;
use crate::error::{BlockError, Result};
use crate::tier::RemoteTier;
use dittofs_types::BlockRef;

/// Where [`check_chunk`] found a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Local,
    Remote,
    /// On no tier.
    Missing,
    /// Only copies of the wrong length or (with `verify`) the wrong content.
    Corrupt,
}

/// One copy's verdict.
enum Copy {
    Good,
    Bad,
    Absent,
}

/// Looks `block`'s chunk up on the local tier, then on `tier` if it is not good locally.
pub async fn check_chunk(
    engine: &Engine,
    tier: Option<&RemoteTier>,
    block: &BlockRef,
    verify: bool,
) -> Result<Presence> {
    let local = local_copy(engine, block, verify).await?;
    if matches!(local, Copy::Good) {
        return Ok(Presence::Local);
    }
    let remote = match tier {
        Some(t) => remote_copy(t, block, verify).await?,
        None => Copy::Absent,
    };
    Ok(match (local, remote) {
        (_, Copy::Good) => Presence::Remote,
        (Copy::Absent, Copy::Absent) => Presence::Missing,
        _ => Presence::Corrupt,
    })
}

async fn local_copy(engine: &Engine, block: &BlockRef, verify: bool) -> Result<Copy> {
    let want = u64::from(block.size);
    match engine.cas().chunk_len(&block.hash)? {
        None => return Ok(Copy::Absent),
        Some(n) if n != want => return Ok(Copy::Bad),
        Some(_) if !verify => return Ok(Copy::Good),
        Some(_) => {}
    }
    match engine.read_local_chunk(block.hash).await {
        Ok(_) => Ok(Copy::Good),
        Err(BlockError::Corrupt { .. }) => Ok(Copy::Bad),
        Err(e) => Err(e),
    }
}

async fn remote_copy(tier: &RemoteTier, block: &BlockRef, verify: bool) -> Result<Copy> {
    let remote = tier.remote();
    let failed = |e: dittofs_remote::RemoteError| {
        BlockError::Remote(format!("checking chunk {}: {e}", block.hash))
    };
    let Some(info) = remote.head(&block.hash).await.map_err(failed)? else {
        return Ok(Copy::Absent);
    };
    if info.size != u64::from(block.size) {
        return Ok(Copy::Bad);
    }
    if !verify {
        return Ok(Copy::Good);
    }
    // `get` verifies the content against the hash.
    match remote.get(&block.hash).await {
        Ok(data) if data.len() as u64 == info.size => Ok(Copy::Good),
        Ok(_) | Err(dittofs_remote::RemoteError::Corrupt { .. }) => Ok(Copy::Bad),
        Err(e) => Err(failed(e)),
    }
}
