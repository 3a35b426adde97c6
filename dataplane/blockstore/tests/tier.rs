//! The remote tier over a real engine and the in-memory remote (with fault injection):
//! uploads and their durability across a restart, chunk- and file-level dedup, eviction
//! only of uploaded chunks, verified cold reads and readahead, a stalled remote failing
//! within the deadline, what a share's binding stages for a flush, a quiescing flush and a
//! truncate, `durability: remote` waits, and the GC sweep's protections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use dittofs_blockstore::tier::{Evictor, GcError, Publish, RemoteClaim, claim_remote};
use dittofs_blockstore::{
    BlockError, ChunkerConfig, DataDurability, Engine, EngineConfig, Owner, RemoteTier,
    TierBinding, TierConfig,
};
use dittofs_remote::{MemoryRemote, RemoteStore};
use dittofs_types::{BlockRef, ContentHash, FileKey, Ino, ObjectId, ShareId};
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ENGINE: &str = "local";

fn small_chunks() -> EngineConfig {
    EngineConfig {
        chunker: ChunkerConfig {
            min: 64 << 10,
            avg: 256 << 10,
            max: 1 << 20,
        },
        ..EngineConfig::default()
    }
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; n];
    r.fill(&mut v[..]);
    v
}

fn key(ino: u64) -> FileKey {
    FileKey {
        share: ShareId(1),
        ino: Ino(ino),
    }
}

fn cfg() -> TierConfig {
    TierConfig {
        read_deadline: Duration::from_secs(2),
        commit_timeout: Duration::from_secs(2),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..TierConfig::default()
    }
}

struct Setup {
    dir: tempfile::TempDir,
    /// The share's binding (`durability: remote`), as a vfs share holds it.
    binding: TierBinding,
    engine: Engine,
    remote: Arc<MemoryRemote>,
    tier: RemoteTier,
    stop: CancellationToken,
}

/// Opens the engine under `dir`, waiting (up to 10 s) for the tasks of a stopped
/// previous setup to let go of it: an engine is open in one place at a time.
async fn open_engine(dir: &std::path::Path) -> Engine {
    for _ in 0..1000 {
        match Engine::open(&dir.join("blocks"), small_chunks()) {
            Ok((engine, _)) => return engine,
            Err(BlockError::InUse(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("open: {e}"),
        }
    }
    panic!("the engine of a stopped setup is still open after 10 s");
}

async fn setup_with(dir: tempfile::TempDir, remote: Arc<MemoryRemote>) -> Setup {
    let engine = open_engine(dir.path()).await;
    let stop = CancellationToken::new();
    let tier = RemoteTier::start(
        "r",
        remote.clone() as Arc<dyn RemoteStore>,
        &dir.path().join("remote"),
        cfg(),
        stop.clone(),
    )
    .unwrap();
    let binding = TierBinding::new(tier.clone(), &engine, ENGINE, DataDurability::Remote);
    Setup {
        dir,
        binding,
        engine,
        remote,
        tier,
        stop,
    }
}

impl Setup {
    /// Stops the tier and lets go of the engine ("crash"), keeping the state directory
    /// and the remote for a restart.
    fn stop(self) -> (tempfile::TempDir, Arc<MemoryRemote>) {
        self.stop.cancel();
        (self.dir, self.remote)
    }
}

async fn setup() -> Setup {
    setup_with(
        tempfile::tempdir().unwrap(),
        Arc::new(MemoryRemote::new("t")),
    )
    .await
}

/// Writes `data` as file `ino` and flushes it into chunks (no metadata, nothing staged):
/// the block list is returned.
async fn flush_unstaged(s: &Setup, ino: u64, data: &[u8]) -> Vec<BlockRef> {
    s.engine
        .write(key(ino), 0, Bytes::copy_from_slice(data), false)
        .await
        .unwrap();
    let plan = s
        .engine
        .prepare_flush(key(ino), &[])
        .await
        .unwrap()
        .unwrap();
    s.engine.finish_flush(key(ino), &plan);
    plan.new_blocks
}

/// Stages `publish` through the share's binding, as a flush or truncate does before its
/// metadata commit.
async fn stage(s: &Setup, publish: Publish<'_>) {
    let ticket = s.binding.before_commit().await;
    ticket.stage(publish).await.unwrap();
    ticket.after_commit();
}

/// [`flush_unstaged`], then stages the new chunks like a flush of a remote share does.
async fn write_file(s: &Setup, ino: u64, data: &[u8], quiesce: bool) -> Vec<BlockRef> {
    let new = flush_unstaged(s, ino, data).await;
    let object = quiesce.then(|| ObjectId::compute(&new));
    let publish = Publish::Flush {
        old: &[],
        new: &new,
        object,
    };
    stage(s, publish).await;
    new
}

fn pending_markers(s: &Setup) -> usize {
    let d = s.dir.path().join("remote").join("pending").join(ENGINE);
    std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0)
}

/// A read through the share's binding, as a vfs share of a remote tier reads.
async fn read_at(
    s: &Setup,
    ino: u64,
    blocks: &[BlockRef],
    size: u64,
    off: u64,
    len: u32,
) -> Result<Bytes, BlockError> {
    let cold = Some(s.binding.cold());
    s.engine
        .read_tiered(key(ino), blocks, size, off, len, cold)
        .await
}

async fn read_all(s: &Setup, ino: u64, blocks: &[BlockRef], size: u64, step: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < size {
        let b = read_at(s, ino, blocks, size, off, step).await.unwrap();
        assert!(!b.is_empty());
        off += b.len() as u64;
        out.extend_from_slice(&b);
    }
    out
}

#[tokio::test]
async fn uploads_once_and_dedups_across_files_and_restarts() {
    let s = setup().await;
    let data = random(3 << 20, 1);
    let blocks = write_file(&s, 2, &data, true).await;
    assert!(
        blocks.len() > 3,
        "expected several chunks, got {}",
        blocks.len()
    );
    assert_eq!(s.tier.drain(Duration::from_secs(10)).await, 0);
    assert_eq!(pending_markers(&s), 0, "markers are removed once uploaded");
    let st = s.tier.status();
    assert_eq!(st.uploaded_chunks, blocks.len() as u64);
    assert_eq!(st.uploaded_bytes, data.len() as u64);
    assert_eq!(s.remote.len(), blocks.len());
    for b in &blocks {
        assert!(s.tier.is_known(&b.hash));
    }

    // Same content in another file: chunk-level dedup, nothing staged at all (file-level:
    // the ObjectID is known once every chunk was confirmed).
    write_file(&s, 3, &data, true).await;
    let st = s.tier.status();
    assert_eq!(st.uploaded_chunks, blocks.len() as u64, "no second upload");
    assert_eq!(st.dedup_files, 1, "file-level dedup: {st:?}");
    // A non-quiesced flush of the same content is deduplicated chunk by chunk.
    write_file(&s, 4, &data, false).await;
    let st = s.tier.status();
    assert_eq!(st.dedup_known_chunks, blocks.len() as u64, "{st:?}");
    assert_eq!(st.dedup_known_bytes, data.len() as u64);

    // A restarted tier knows nothing, but HEAD finds the chunks: still no upload.
    let (dir, remote) = s.stop();
    let s2 = setup_with(dir, remote).await;
    write_file(&s2, 5, &data, false).await;
    assert_eq!(s2.tier.drain(Duration::from_secs(10)).await, 0);
    let st = s2.tier.status();
    assert_eq!(st.uploaded_chunks, 0, "{st:?}");
    assert_eq!(st.dedup_head_chunks, blocks.len() as u64);
    assert_eq!(s2.remote.len(), blocks.len());
}

#[tokio::test]
async fn pending_uploads_survive_a_restart_and_resume() {
    let s = setup().await;
    s.remote.set_unavailable(true);
    let data = random(2 << 20, 2);
    let blocks = write_file(&s, 2, &data, false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = s.tier.status();
    assert_eq!(st.pending_chunks, blocks.len() as u64);
    assert!(st.upload_retries > 0, "uploads are retried: {st:?}");
    assert!(st.last_upload_error.is_some_and(|e| e.contains("down")));
    assert_eq!(pending_markers(&s), blocks.len(), "markers are durable");
    assert!(s.remote.is_empty());

    // "Crash": stop the tier; a new one over the same state finds the markers.
    let (dir, remote) = s.stop();
    let s2 = setup_with(dir, remote.clone()).await;
    assert_eq!(s2.tier.pending(), blocks.len());
    remote.set_unavailable(false);
    assert_eq!(s2.tier.drain(Duration::from_secs(10)).await, 0);
    assert_eq!(remote.len(), blocks.len());
    for b in &blocks {
        assert_eq!(remote.get(&b.hash).await.unwrap().len(), b.size as usize);
    }
    assert_eq!(pending_markers(&s2), 0);
}

#[tokio::test]
async fn evicts_only_uploaded_chunks_and_reads_them_back_cold() {
    let s = setup().await;
    let data = random(4 << 20, 3);
    let blocks = write_file(&s, 2, &data, false).await;
    // Nothing is on the remote yet (it is down): eviction must not touch anything.
    s.remote.set_unavailable(true);
    let ev = Evictor::start(ENGINE, &s.engine, &s.tier, s.stop.child_token());
    let before = s.engine.cas().total_bytes();
    assert_eq!(ev.pass(0).await, 0);
    assert_eq!(s.engine.cas().total_bytes(), before);
    assert!(
        ev.stats()
            .not_on_remote
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );

    s.remote.set_unavailable(false);
    assert_eq!(s.tier.drain(Duration::from_secs(10)).await, 0);
    let freed = ev.pass(0).await;
    assert_eq!(freed, data.len() as u64, "everything uploaded can go");
    assert_eq!(s.engine.cas().total_bytes(), 0);

    // Random small reads: verified ranged reads (not whole chunks).
    let size = data.len() as u64;
    for (i, off) in [5u64, 300_000, 1_048_570, 4_000_000]
        .into_iter()
        .enumerate()
    {
        let got = read_at(&s, 2, &blocks, size, off, 4096).await.unwrap();
        let end = (off + 4096).min(size) as usize;
        assert_eq!(&got[..], &data[off as usize..end], "read {i} at {off}");
    }
    let st = s.tier.status();
    assert!(st.cold_reads >= 4);
    assert!(
        st.cold_read_bytes < 4 * (256 << 10),
        "ranged reads fetch groups, not chunks: {st:?}"
    );
    // Without the tier the evicted chunk is an error, never zeros.
    assert!(matches!(
        s.engine.read(key(2), &blocks, size, 0, 10).await,
        Err(BlockError::NotFound { .. })
    ));
    // A sequential reader gets everything right and triggers readahead.
    let all = read_all(&s, 2, &blocks, size, 128 << 10).await;
    assert_eq!(all, data);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.tier.status().readahead_chunks > 0);
}

#[tokio::test]
async fn corrupt_objects_are_never_served() {
    let s = setup().await;
    let data = random(2 << 20, 4);
    let blocks = write_file(&s, 2, &data, false).await;
    assert_eq!(s.tier.drain(Duration::from_secs(10)).await, 0);
    let ev = Evictor::start(ENGINE, &s.engine, &s.tier, s.stop.child_token());
    ev.pass(0).await;
    let b = blocks[0];
    let mut bad = s.remote.get(&b.hash).await.unwrap().to_vec();
    bad[10] ^= 1;
    s.remote.corrupt(&b.hash, Bytes::from(bad));
    let err = read_at(&s, 2, &blocks, data.len() as u64, 0, 4096)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BlockError::Remote(ref m) if m.contains("corrupt")),
        "{err}"
    );
}

#[tokio::test]
async fn a_stalled_remote_fails_cold_reads_within_the_deadline() {
    let s = setup().await;
    let data = random(1 << 20, 5);
    let blocks = write_file(&s, 2, &data, false).await;
    assert_eq!(s.tier.drain(Duration::from_secs(10)).await, 0);
    let ev = Evictor::start(ENGINE, &s.engine, &s.tier, s.stop.child_token());
    ev.pass(0).await;
    s.remote.set_stalled(true);
    let t0 = std::time::Instant::now();
    let err = read_at(&s, 2, &blocks, data.len() as u64, 0, 4096)
        .await
        .unwrap_err();
    let took = t0.elapsed();
    s.remote.set_stalled(false);
    assert!(
        matches!(err, BlockError::Remote(ref m) if m.contains("no answer")),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "failed after {took:?}");
}

#[tokio::test]
async fn the_binding_stages_what_each_commit_needs_on_the_remote() {
    let s = setup().await;
    // Nothing is confirmed: every staged chunk keeps its marker.
    s.remote.set_unavailable(true);
    let old = flush_unstaged(&s, 2, &random(1 << 20, 9)).await;
    let added = flush_unstaged(&s, 3, &random(1 << 20, 10)).await;
    let new: Vec<BlockRef> = old.iter().chain(&added).copied().collect();

    // A flush of a file still dirty: only the chunks its commit adds.
    let publish = Publish::Flush {
        old: &old,
        new: &new,
        object: None,
    };
    stage(&s, publish).await;
    assert_eq!(pending_markers(&s), added.len());

    // The flush that quiesces it: also every older chunk the tier does not know.
    let publish = Publish::Flush {
        old: &old,
        new: &new,
        object: Some(ObjectId::compute(&new)),
    };
    stage(&s, publish).await;
    assert_eq!(pending_markers(&s), new.len());

    // A truncate: its whole new list.
    let cut = flush_unstaged(&s, 4, &random(1 << 20, 11)).await;
    stage(&s, Publish::Truncate { new: &cut }).await;
    assert_eq!(pending_markers(&s), new.len() + cut.len());
}

#[tokio::test]
async fn remote_durability_waits_for_the_remote_and_reports_late_confirmation() {
    let s = setup().await;
    s.remote.set_unavailable(true);
    let data = random(1 << 20, 6);
    let blocks = write_file(&s, 2, &data, false).await;
    let err = s.binding.sync(&blocks).await.unwrap_err();
    assert!(
        matches!(err, BlockError::RemotePending(ref m) if m.contains("not confirmed")),
        "{err}"
    );
    s.remote.set_unavailable(false);
    s.binding.sync(&blocks).await.unwrap();
    for b in &blocks {
        assert!(s.remote.head(&b.hash).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn gc_sweep_deletes_only_old_unreferenced_untouched_objects() {
    let s = setup().await;
    let live = write_file(&s, 2, &random(1 << 20, 7), false).await;
    let dead = write_file(&s, 3, &random(1 << 20, 8), false).await;
    assert_eq!(s.tier.drain(Duration::from_secs(10)).await, 0);
    let old = 1_000_000_000; // 2001: far older than any cutoff
    for b in live.iter().chain(&dead) {
        s.remote.set_modified(&b.hash, old);
    }
    let live_set: std::collections::HashSet<ContentHash> = live.iter().map(|b| b.hash).collect();
    let is_live = |h: &ContentHash| Ok(live_set.contains(h));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    // Dry run: reports, deletes nothing.
    let run = s.tier.begin_gc().await.unwrap();
    assert!(s.tier.begin_gc().await.is_err(), "one run at a time");
    let c = run.sweep(&is_live, now, true, &|_| {}).await.unwrap();
    drop(run);
    assert_eq!(c.deleted_objects, dead.len() as u64);
    assert_eq!(c.live_objects, live.len() as u64);
    assert_eq!(s.remote.len(), live.len() + dead.len());

    // A flush that references a "dead" chunk during the run protects it (touched).
    let run = s.tier.begin_gc().await.unwrap();
    let revived = dead[0];
    let publish = Publish::Flush {
        old: &[],
        new: &[revived],
        object: None,
    };
    stage(&s, publish).await;
    let c = run.sweep(&is_live, now, false, &|_| {}).await.unwrap();
    drop(run);
    assert_eq!(c.kept_in_use, 1, "{c:?}");
    assert_eq!(c.deleted_objects, dead.len() as u64 - 1);
    assert!(s.remote.head(&revived.hash).await.unwrap().is_some());
    for b in &dead[1..] {
        assert!(s.remote.head(&b.hash).await.unwrap().is_none());
        assert!(
            !s.tier.is_known(&b.hash),
            "deleted chunks leave the known set"
        );
    }
    for b in &live {
        assert!(s.remote.head(&b.hash).await.unwrap().is_some());
    }

    // Young objects are kept by the grace period.
    let young = write_file(&s, 4, &random(256 << 10, 9), false).await;
    assert_eq!(s.tier.drain(Duration::from_secs(10)).await, 0);
    let run = s.tier.begin_gc().await.unwrap();
    let c = run
        .sweep(&|_| Ok(false), now - 3600, false, &|_| {})
        .await
        .unwrap();
    drop(run);
    assert_eq!(c.kept_in_grace, young.len() as u64, "{c:?}");
}

/// One owner per remote location: the first server's claim writes the ownership record,
/// a second server's claim is refused and so is its GC; a remote that does not answer
/// leaves the claim unverified, and the GC then refuses too (it cannot prove ownership).
#[tokio::test]
async fn a_remote_location_has_one_owner() {
    let owner = |id: &str| Owner {
        server_id: id.into(),
        data_dir: format!("/data/{id}"),
    };
    let a = setup().await;
    let b = setup_with(tempfile::tempdir().unwrap(), a.remote.clone()).await;
    let d = Duration::from_secs(2);
    let remote = a.remote.as_ref() as &dyn RemoteStore;
    assert_eq!(
        claim_remote(remote, &owner("a"), d).await.unwrap(),
        RemoteClaim::Claimed
    );
    assert_eq!(
        claim_remote(remote, &owner("a"), d).await.unwrap(),
        RemoteClaim::Owned
    );
    let err = claim_remote(remote, &owner("b"), d).await.unwrap_err();
    assert!(
        matches!(&err, BlockError::InUse(m) if m.contains("belongs to another server (id a")),
        "{err}"
    );
    a.tier.set_owner(owner("a"));
    b.tier.set_owner(owner("b"));
    drop(a.tier.begin_gc().await.expect("the owner's GC runs"));
    let refused = b.tier.begin_gc().await.unwrap_err();
    assert!(matches!(refused, GcError::NotOwner { .. }), "{refused}");
    assert!(
        refused.to_string().contains("belongs to another server"),
        "{refused}"
    );
    a.remote.set_unavailable(true);
    assert!(matches!(
        claim_remote(remote, &owner("a"), d).await.unwrap(),
        RemoteClaim::Unverified(_)
    ));
    let refused = a.tier.begin_gc().await.unwrap_err();
    assert!(matches!(refused, GcError::Unverified { .. }), "{refused}");
    assert!(refused.to_string().contains("cannot verify"), "{refused}");
}

/// The audit's presence check: a chunk is Local while its file exists, Remote once only
/// the remote holds it, Missing when neither does; an unreachable remote is an error,
/// never a verdict; `verify` finds a local copy whose bytes were changed.
#[tokio::test]
async fn chunk_presence_looks_on_both_tiers() {
    use dittofs_blockstore::{Presence, check_chunk};
    let s = setup().await;
    let blocks = write_file(&s, 2, &random(2 << 20, 9), false).await;
    assert!(blocks.len() >= 2, "{blocks:?}");
    let presence = |b: BlockRef, verify: bool| {
        let (engine, tier) = (&s.engine, &s.tier);
        async move { check_chunk(engine, Some(tier), &b, verify).await }
    };
    for b in &blocks {
        assert_eq!(presence(*b, true).await.unwrap(), Presence::Local);
    }
    assert_eq!(s.tier.drain(Duration::from_secs(10)).await, 0);
    let (gone, lost) = (blocks[0], blocks[1]);
    s.engine.cas().remove(&gone.hash).unwrap();
    s.engine.cas().remove(&lost.hash).unwrap();
    s.remote.delete(&lost.hash).await.unwrap();
    assert_eq!(presence(gone, false).await.unwrap(), Presence::Remote);
    assert_eq!(presence(gone, true).await.unwrap(), Presence::Remote);
    assert_eq!(presence(lost, false).await.unwrap(), Presence::Missing);
    assert_eq!(
        check_chunk(&s.engine, None, &gone, false).await.unwrap(),
        Presence::Missing,
        "without a tier only the local copy counts"
    );
    s.remote.set_unavailable(true);
    assert!(
        presence(lost, false).await.is_err(),
        "a remote that cannot answer is no verdict"
    );
    s.remote.set_unavailable(false);

    // A local copy of the right length with other bytes: only `verify` sees it.
    let bent = blocks[blocks.len() - 1];
    let data = s.engine.read_local_chunk(bent.hash).await.unwrap();
    s.engine.cas().remove(&bent.hash).unwrap();
    s.remote.delete(&bent.hash).await.unwrap();
    let other = vec![0x5a; data.len()];
    s.engine.cas().put(&bent.hash, &other).unwrap();
    assert_eq!(presence(bent, false).await.unwrap(), Presence::Local);
    assert_eq!(presence(bent, true).await.unwrap(), Presence::Corrupt);
}
