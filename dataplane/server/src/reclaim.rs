//! Prompt reclaim of chunks no file references (see `dittofs_blockstore`'s release): every
//! [`TICK`], each local block store's released chunks are deleted if no share of any
//! metadata store references them, so space freed by deletes and truncates comes back in
//! seconds rather than at the next GC. Like the GC's mark, every share of every open
//! metadata store counts (over-counting only keeps a chunk; the GC still runs).
//!
//! Invariant: the epoch is taken before the refcounts are read (the engine keeps every
//! chunk a flush or truncate pinned since), and a candidate whose refcount cannot be
//! read is kept and looked at again.

use crate::runtime::Runtime;
use dittofs_metadata::{MetaResult, MetadataStore};
use dittofs_types::{ContentHash, ShareId};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often released chunks are looked at.
pub const TICK: Duration = Duration::from_secs(1);

/// Runs the reclaimer until `stop` is cancelled.
pub fn spawn(rt: Arc<Runtime>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let span = tracing::info_span!("task", name = "reclaimer");
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let mut tick = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                pass(&rt).await;
            }
        },
        span,
    ))
}

/// One look at every engine's released chunks.
pub async fn pass(rt: &Runtime) {
    let stores = match all_shares(rt).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "reclaim: cannot list shares; next time");
            return;
        }
    };
    for (name, e) in rt.engines() {
        let (epoch, released) = e.engine.take_released();
        if released.is_empty() {
            continue;
        }
        let mut dead = Vec::new();
        let mut retry = Vec::new();
        for h in released {
            match unreferenced(&stores, h).await {
                Ok(true) => dead.push(h),
                Ok(false) => {}
                Err(_) => retry.push(h),
            }
        }
        e.engine.note_released(retry);
        if dead.is_empty() {
            continue;
        }
        match e.engine.reclaim(dead, epoch).await {
            Ok((n, bytes)) if n > 0 => {
                tracing::debug!(store = %name, chunks = n, bytes, "reclaimed unreferenced chunks")
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(store = %name, error = %err, "reclaim failed; the GC will collect")
            }
        }
    }
}

type StoreShares = Vec<(Arc<dyn MetadataStore>, Vec<ShareId>)>;

/// Every open metadata store with the ids of all its shares.
async fn all_shares(rt: &Runtime) -> MetaResult<StoreShares> {
    let mut out = Vec::new();
    for store in rt.metadata_stores().into_values() {
        let ids = store.list_shares().await?.iter().map(|s| s.id).collect();
        out.push((store, ids));
    }
    Ok(out)
}

/// Whether no share of any store references `hash`.
async fn unreferenced(stores: &StoreShares, hash: ContentHash) -> MetaResult<bool> {
    for (store, shares) in stores {
        for &share in shares {
            if store
                .get_chunk(share, hash)
                .await?
                .is_some_and(|row| row.refcount > 0)
            {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
