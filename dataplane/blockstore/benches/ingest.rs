//! Ingest and small-I/O benchmarks (not tests; prints numbers).
//!
//! - chunk+hash ingest vs raw BLAKE3 and raw FastCDC on one pseudo-random buffer;
//! - 4 KiB random write / read IOPS through the [`Engine`] on a file of the same size
//!   (written, flushed, then overwritten at random so reads hit overlay and base chunks).
//!
//! Sizes: `DITTOFS_BENCH_MB` (default 1024), `DITTOFS_BENCH_OPS` (default 20000).
//! Files go to `$HOME/.cache/dittofs/bench-tmp` (not /tmp, which may be tmpfs).

use bytes::Bytes;
use dittofs_blockstore::{BlockError, Chunker, ChunkerConfig, Engine, EngineConfig};
use dittofs_types::{BlockRef, ContentHash, FileKey, Ino, ShareId};
use std::sync::Arc;
use std::time::Instant;

type Res<T> = Result<T, BlockError>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn buffer(len: usize) -> Vec<u8> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

fn gibps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / f64::from(1u32 << 30)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}

fn ingest(data: &[u8]) -> Res<()> {
    let chunker = Chunker::new(ChunkerConfig::default())?;
    let n = data.len();
    let (h, t_hash) = timed(|| ContentHash::of(data));
    let (cuts, t_cdc) = timed(|| chunker.chunk(data));
    let (one, t_one) = timed(|| chunker.chunk_and_hash(data, 1));
    let (two, t_two) = timed(|| chunker.chunk_and_hash(data, 2));
    assert_eq!(one, two);
    assert_eq!(cuts.len(), one.len());
    let _ = h;
    let raw = gibps(n, t_hash);
    println!(
        "ingest {} MiB, {} chunks (avg {} KiB)",
        n >> 20,
        cuts.len(),
        n / cuts.len().max(1) / 1024
    );
    println!("  raw BLAKE3 (1 thread)       {:6.2} GiB/s", raw);
    println!(
        "  raw FastCDC v2020 (cuts)    {:6.2} GiB/s",
        gibps(n, t_cdc)
    );
    println!(
        "  chunk+hash, 1 thread        {:6.2} GiB/s  ({:.2}x raw BLAKE3)",
        gibps(n, t_one),
        gibps(n, t_one) / raw
    );
    println!(
        "  chunk+hash, 2 threads       {:6.2} GiB/s  ({:.2}x raw BLAKE3)",
        gibps(n, t_two),
        gibps(n, t_two) / raw
    );
    Ok(())
}

async fn random_writes(
    engine: &Engine,
    key: FileKey,
    size: u64,
    ops: usize,
    depth: usize,
    seed: u64,
) -> Res<f64> {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for d in 0..depth {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed + d as u64 * 7919);
            let block = Bytes::from(vec![d as u8; 4096]);
            for _ in 0..ops / depth {
                let off = rng.next() % (size / 4096) * 4096;
                engine.write(key, off, block.clone(), false).await?;
            }
            Res::Ok(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| BlockError::Task(e.to_string()))??;
    }
    Ok((ops / depth * depth) as f64 / t.elapsed().as_secs_f64())
}

async fn random_reads(
    engine: &Engine,
    key: FileKey,
    blocks: Arc<Vec<BlockRef>>,
    size: u64,
    ops: usize,
    depth: usize,
) -> Res<f64> {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for d in 0..depth {
        let engine = engine.clone();
        let blocks = blocks.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xABCD + d as u64 * 104_729);
            for _ in 0..ops / depth {
                let off = rng.next() % (size / 4096) * 4096;
                let got = engine.read(key, &blocks, size, off, 4096).await?;
                assert_eq!(got.len(), 4096);
            }
            Res::Ok(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| BlockError::Task(e.to_string()))??;
    }
    Ok((ops / depth * depth) as f64 / t.elapsed().as_secs_f64())
}

async fn engine_bench(data: &[u8], ops: usize) -> Res<()> {
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    let base = std::path::Path::new(&home).join(".cache/dittofs/bench-tmp");
    std::fs::create_dir_all(&base).map_err(|e| BlockError::Io {
        path: base.clone(),
        source: e,
    })?;
    let dir = tempfile::tempdir_in(&base).map_err(|e| BlockError::Io {
        path: base.clone(),
        source: e,
    })?;
    let (engine, _) = Engine::open(dir.path(), EngineConfig::default())?;
    let key = FileKey {
        share: ShareId(1),
        ino: Ino(2),
    };
    let size = data.len() as u64;
    println!(
        "engine on a {} MiB file ({})",
        size >> 20,
        dir.path().display()
    );

    let t = Instant::now();
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        engine
            .write(key, (i << 20) as u64, Bytes::copy_from_slice(piece), false)
            .await?;
    }
    engine.commit_durable().await?;
    let t_write = t.elapsed().as_secs_f64();
    let (plan, t_flush) = {
        let t = Instant::now();
        let plan = engine.prepare_flush(key, &[]).await?;
        (plan, t.elapsed().as_secs_f64())
    };
    let Some(plan) = plan else {
        return Err(BlockError::Invalid("nothing to flush".into()));
    };
    engine.finish_flush(key, &plan);
    println!(
        "  sequential 1 MiB writes to journal + fsync  {:6.2} GiB/s",
        gibps(data.len(), t_write)
    );
    println!(
        "  flush (journal -> CDC -> BLAKE3 -> CAS)     {:6.2} GiB/s  ({} chunks)",
        gibps(data.len(), t_flush),
        plan.new_blocks.len()
    );
    let blocks = Arc::new(plan.new_blocks.clone());

    let base_iops = random_reads(&engine, key, blocks.clone(), size, ops, 1).await?;
    println!("  4 KiB random reads, base chunks only, QD1    {base_iops:9.0} IOPS");
    let base_iops = random_reads(&engine, key, blocks.clone(), size, ops, 16).await?;
    println!("  4 KiB random reads, base chunks only, QD16   {base_iops:9.0} IOPS");

    let w1 = random_writes(&engine, key, size, ops, 1, 1).await?;
    println!("  4 KiB random writes (journal), QD1           {w1:9.0} IOPS");
    let w16 = random_writes(&engine, key, size, ops, 16, 2).await?;
    println!("  4 KiB random writes (journal), QD16          {w16:9.0} IOPS");
    let t = Instant::now();
    let n_durable = (ops / 10).max(16);
    for i in 0..n_durable as u64 {
        let off = (i * 7_919 % (size / 4096)) * 4096;
        engine
            .write(key, off, Bytes::from(vec![7u8; 4096]), true)
            .await?;
    }
    println!(
        "  4 KiB random writes, durable (fsync each)    {:9.0} IOPS",
        n_durable as f64 / t.elapsed().as_secs_f64()
    );
    let dirty = engine.dirty_bytes(key);
    println!(
        "  overlay now covers {:.1}% of the file",
        dirty as f64 * 100.0 / size as f64
    );
    let r1 = random_reads(&engine, key, blocks.clone(), size, ops, 1).await?;
    println!("  4 KiB random reads, overlay + base, QD1      {r1:9.0} IOPS");
    let r16 = random_reads(&engine, key, blocks.clone(), size, ops, 16).await?;
    println!("  4 KiB random reads, overlay + base, QD16     {r16:9.0} IOPS");

    let (plan2, t_flush2) = {
        let t = Instant::now();
        let plan = engine.prepare_flush(key, &blocks).await?;
        (plan, t.elapsed().as_secs_f64())
    };
    if let Some(p) = plan2 {
        let reused = p
            .new_blocks
            .iter()
            .filter(|b| {
                blocks
                    .binary_search_by_key(&b.offset, |o| o.offset)
                    .is_ok_and(|i| blocks[i].hash == b.hash)
            })
            .count();
        println!(
            "  re-flush after random writes: {:.2} s, {} of {} blocks reused, {} MiB new",
            t_flush2,
            reused,
            p.new_blocks.len(),
            p.bytes_written >> 20
        );
        engine.finish_flush(key, &p);
    }
    Ok(())
}

fn main() -> Res<()> {
    let mb = env_usize("DITTOFS_BENCH_MB", 1024).max(1);
    let ops = env_usize("DITTOFS_BENCH_OPS", 20_000).max(16);
    let (data, t) = timed(|| buffer(mb << 20));
    println!("generated {mb} MiB of pseudo-random data in {t:.2} s");
    ingest(&data)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| BlockError::Task(e.to_string()))?;
    rt.block_on(engine_bench(&data, ops))
}
