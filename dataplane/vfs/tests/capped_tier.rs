//! A share with a remote tier over a capped local tier, driven like the server drives it
//! (the background flusher and journal reclaim on their real period, the evictor, the
//! uploader over a link of limited bandwidth) and written like an NFS client writes
//! (1 MiB UNSTABLE writes, several in flight, COMMIT at the end): copies of a file three
//! times the cap, identical and then modified, in a row (the remote e2e's dedup step,
//! scaled down 4x with the chunk sizes relative to the cap kept).
//!
//! Before the fix the third copy stalled: every flush of a file still being written cut
//! a tail chunk that the next flush re-cut, leaving the old tail in the local tier,
//! never uploaded, so never evictable; once such garbage filled the cap, writers waited
//! out their 30 s bound again and again. Now no write may wait out its bound, no chunk
//! in the local tier may be garbage that was never uploaded, every copy reads back
//! bit-exact, and the tier ends under its cap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use dittofs_blockstore::tier::Evictor;
use dittofs_blockstore::{ChunkerConfig, Engine, EngineConfig, RemoteTier, TierConfig};
use dittofs_metadata::MetadataStore;
use dittofs_metadata::memory::MemoryStore;
use dittofs_remote::{MemoryRemote, RemoteStore};
use dittofs_types::{Ino, ShareId};
use dittofs_vfs::{
    CreateMode, Credentials, DataDurability, Fs, RemoteBinding, SetAttr, ShareOptions, Stability,
};
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1 << 20;
/// The e2e's 256 MiB cap, 1 GiB file, 64 MiB journal segments and 1/4/16 MiB chunks, / 4.
const CAP: u64 = 64 * MIB;
const FILE: usize = 192 << 20;
const SEGMENT: u64 = 16 * MIB;
const CHUNKS: ChunkerConfig = ChunkerConfig {
    min: 512 << 10,
    avg: 2 << 20,
    max: 8 << 20,
};
/// Upload bandwidth of the remote (bytes/s): writers of new data wait for it.
const UPLOAD_RATE: u64 = 16 * MIB;
const WRITE: usize = 1 << 20;
const IN_FLIGHT: usize = 8;

struct Server {
    fs: Arc<Fs>,
    engine: Arc<Engine>,
    tier: RemoteTier,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn server(remote: Arc<MemoryRemote>) -> Server {
    remote.set_upload_rate(UPLOAD_RATE);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetadataStore> = Arc::new(MemoryStore::new());
    let cfg = EngineConfig {
        chunker: CHUNKS,
        journal_segment_bytes: SEGMENT,
    };
    let (engine, _) = Engine::open(&dir.path().join("blocks"), cfg).unwrap();
    let engine = Arc::new(engine);
    let stop = CancellationToken::new();
    let tier = RemoteTier::start(
        "s3",
        remote as Arc<dyn RemoteStore>,
        &dir.path().join("remote"),
        TierConfig {
            min_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            ..TierConfig::default()
        },
        stop.clone(),
    )
    .unwrap();
    let opts = ShareOptions {
        root_mode: 0o777,
        ..Default::default()
    };
    let fs = Fs::open(store.clone(), engine.clone(), ShareId(1), "/export", opts)
        .await
        .unwrap();
    fs.attach_remote(RemoteBinding {
        tier: tier.clone(),
        engine_name: "local".into(),
        durability: DataDurability::Local,
    });
    engine.set_capacity(CAP);
    Evictor::start("local", &engine, &tier, stop.clone());
    spawn_flusher(fs.clone(), store, engine.clone(), stop.clone());
    Server {
        fs,
        engine,
        tier,
        stop,
        _dir: dir,
    }
}

/// The server's background flusher: the same pass on the same period.
fn spawn_flusher(
    fs: Arc<Fs>,
    store: Arc<dyn MetadataStore>,
    engine: Arc<Engine>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(dittofs_vfs::FLUSH_TICK);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = fs
                .flush_some(dittofs_vfs::FLUSH_IDLE, dittofs_vfs::FLUSH_MAX_DIRTY)
                .await
            {
                eprintln!("background flush failed: {e}");
            }
            if store.sync().await.is_ok() {
                let _ = engine.reclaim_journal();
            }
        }
    });
}

/// Writes `data` as a new file `name` like an NFS client: UNSTABLE writes of 1 MiB,
/// [`IN_FLIGHT`] at a time, then COMMIT. Returns the inode.
async fn copy_in(fs: &Arc<Fs>, name: &str, data: &Arc<Vec<u8>>) -> Ino {
    let cred = Credentials::root();
    let a = fs
        .create(
            &cred,
            Ino::ROOT,
            name.as_bytes(),
            CreateMode::Unchecked,
            &SetAttr::default(),
        )
        .await
        .unwrap();
    let ino = a.ino;
    let results: Vec<_> = futures_util::stream::iter((0..data.len()).step_by(WRITE))
        .map(|off| {
            let (fs, data, cred) = (fs.clone(), data.clone(), cred.clone());
            async move {
                let end = (off + WRITE).min(data.len());
                let chunk = Bytes::copy_from_slice(&data[off..end]);
                fs.write(&cred, ino, off as u64, chunk, Stability::Unstable)
                    .await
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for r in results {
        r.unwrap();
    }
    fs.commit_writes(ino).await.unwrap();
    ino
}

async fn read_back(fs: &Fs, ino: Ino, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let (b, _, _) = fs
            .read(&Credentials::root(), ino, out.len() as u64, WRITE as u32)
            .await
            .unwrap();
        assert!(!b.is_empty(), "short read at {}", out.len());
        out.extend_from_slice(&b);
    }
    out
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; n];
    r.fill(&mut v[..]);
    v
}

/// Waits until nothing is dirty and nothing is pending upload (at most `max`).
async fn settle(s: &Server, max: Duration) {
    let end = Instant::now() + max;
    while Instant::now() < end {
        if s.engine.dirty_files().is_empty() && s.tier.pending() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "not settled after {max:?}: dirty files {}, pending {}",
        s.engine.dirty_files().len(),
        s.tier.pending()
    );
}

/// Chunks in the local tier that no file references and the remote does not hold:
/// garbage that only the GC (after its grace period) could remove.
async fn never_uploaded_garbage(s: &Server, inos: &[Ino]) -> (usize, u64) {
    let mut live = HashSet::new();
    for ino in inos {
        for b in s.fs.store().get_blocks(ShareId(1), *ino).await.unwrap() {
            live.insert(b.hash);
        }
    }
    let (mut n, mut bytes) = (0, 0);
    s.engine
        .cas()
        .walk(|h, len, _| {
            if !live.contains(&h) && !s.tier.is_known(&h) {
                n += 1;
                bytes += len;
            }
            Ok(())
        })
        .unwrap();
    (n, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_onto_a_capped_tier_never_stall() {
    let s = server(Arc::new(MemoryRemote::new("s3"))).await;
    let data = Arc::new(random(FILE, 1));
    let mut modified = (*data).clone();
    for k in [1usize, 3, 5, 7, 9] {
        let off = FILE * k / 10;
        let n = FILE / 100;
        modified[off..off + n].copy_from_slice(&random(n, k as u64 + 100));
    }
    let copies = [
        ("d1", data.clone()),
        ("d2", data.clone()),
        ("d3", Arc::new(modified)),
    ];
    let mut inos = Vec::new();
    for (name, content) in &copies {
        let t = Instant::now();
        let ino = copy_in(&s.fs, name, content).await;
        let took = t.elapsed();
        eprintln!(
            "{name}: {} MiB in {took:?}; local tier {} of {} MiB",
            FILE >> 20,
            s.engine.used_bytes() >> 20,
            CAP >> 20
        );
        // Writers wait at most 30 s: a copy that takes this long waited out its bound.
        assert!(
            took < Duration::from_secs(25),
            "{name}: the copy took {took:?}: writers stalled on the local tier's cap"
        );
        inos.push(ino);
    }
    settle(&s, Duration::from_secs(60)).await;
    let (n, bytes) = never_uploaded_garbage(&s, &inos).await;
    assert_eq!(
        (n, bytes),
        (0, 0),
        "chunks in the local tier that no file references and the remote never got"
    );
    for ((name, content), ino) in copies.iter().zip(&inos) {
        assert!(
            read_back(&s.fs, *ino, FILE).await == ***content,
            "{name} differs"
        );
    }
    // The evictor brings the tier under its cap.
    let end = Instant::now() + Duration::from_secs(10);
    while s.engine.used_bytes() > CAP && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        s.engine.used_bytes() <= CAP,
        "local tier at {} MiB of {} MiB once settled",
        s.engine.used_bytes() >> 20,
        CAP >> 20
    );
}
