//! Engine tests: a naive byte model with an explicit hole bitmap checks every read and
//! every flushed block list (content, holes never materialized, validity).

use super::*;
use dittofs_types::{Ino, ShareId};
use proptest::prelude::*;
use std::collections::HashSet;

fn small_cfg() -> EngineConfig {
    EngineConfig {
        chunker: ChunkerConfig {
            min: 64,
            avg: 256,
            max: 1024,
        },
        journal_segment_bytes: 8192,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn key(ino: u64) -> FileKey {
    FileKey {
        share: ShareId(1),
        ino: Ino(ino),
    }
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The caller's view (what vfs keeps in metadata) plus the model of the content.
struct Harness {
    dir: tempfile::TempDir,
    engine: Engine,
    key: FileKey,
    blocks: Vec<BlockRef>,
    applied_seq: u64,
    data: Vec<u8>,
    present: Vec<bool>,
    size: u64,
    /// Tails the last [`FlushKind::KeepTails`] flush left dirty.
    kept: Vec<(u64, u64)>,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (engine, recs) = Engine::open(dir.path(), small_cfg()).unwrap();
        assert!(recs.is_empty());
        Harness {
            dir,
            engine,
            key: key(7),
            blocks: Vec::new(),
            applied_seq: 0,
            data: Vec::new(),
            present: Vec::new(),
            size: 0,
            kept: Vec::new(),
        }
    }

    async fn write(&mut self, off: u64, bytes: Vec<u8>) {
        let end = off as usize + bytes.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
            self.present.resize(end, false);
        }
        self.data[off as usize..end].copy_from_slice(&bytes);
        self.present[off as usize..end].fill(true);
        self.size = self.size.max(end as u64);
        self.engine
            .write(self.key, off, Bytes::from(bytes), false)
            .await
            .unwrap();
    }

    async fn flush(&mut self) {
        self.flush_with(FlushKind::Final).await;
    }

    async fn flush_with(&mut self, kind: FlushKind) {
        let Some(plan) = self
            .engine
            .prepare_flush_with(self.key, &self.blocks, None, None, kind)
            .await
            .unwrap()
        else {
            if kind == FlushKind::Final {
                assert!(!self.engine.is_dirty(self.key));
                self.kept.clear();
            }
            return;
        };
        validate_blocks(&plan.new_blocks).unwrap();
        if kind == FlushKind::Final {
            assert!(plan.kept.is_empty());
        }
        if plan.kept.is_empty() {
            assert_eq!(plan.applied_seq, plan.max_write_id);
        } else {
            assert!(plan.applied_seq < plan.max_write_id);
        }
        assert!(plan.applied_seq >= self.applied_seq);
        // "Commit" and finish.
        self.blocks = plan.new_blocks.clone();
        self.applied_seq = plan.applied_seq;
        self.kept = plan.kept.clone();
        self.engine.finish_flush(self.key, &plan);
        assert_eq!(self.engine.is_dirty(self.key), !plan.kept.is_empty());
        assert_eq!(
            plan.data_end,
            self.blocks
                .last()
                .map_or(0, BlockRef::end)
                .max(plan.data_end)
        );
        self.check_blocks();
    }

    /// Blocks and kept tails together cover exactly the present bytes (holes are never
    /// materialized), never overlap, and the blocks hold the model's bytes.
    fn check_blocks(&self) {
        let mut covered = vec![false; self.present.len()];
        for b in &self.blocks {
            let chunk = self.engine.cas().read_chunk(&b.hash).unwrap();
            assert_eq!(chunk.len(), b.size as usize);
            let (s, e) = (b.offset as usize, b.end() as usize);
            assert!(e <= self.present.len(), "block past data");
            assert_eq!(&chunk[..], &self.data[s..e]);
            covered[s..e].fill(true);
        }
        for &(s, e) in &self.kept {
            let (s, e) = (s as usize, e as usize);
            assert!(
                !covered[s..e].contains(&true),
                "a kept tail overlaps a block"
            );
            covered[s..e].fill(true);
        }
        assert_eq!(
            covered, self.present,
            "block coverage differs from data bitmap"
        );
    }

    async fn truncate(&mut self, n: u64) {
        self.flush().await;
        self.kept.clear();
        self.blocks = self.engine.truncate(&self.blocks, n).await.unwrap();
        validate_blocks(&self.blocks).unwrap();
        let keep = (n as usize).min(self.data.len());
        self.data.truncate(keep);
        self.present.truncate(keep);
        self.size = n;
        self.check_blocks();
    }

    /// Crash-free restart: drop the engine (unflushed data only in the journal), reopen
    /// and run the caller's recovery protocol.
    fn reopen(&mut self) {
        // The old engine must be gone first (it holds the store's lock): park a
        // throwaway engine in its place while the real one reopens.
        let scratch = tempfile::tempdir().unwrap();
        let (parked, _) = Engine::open(scratch.path(), small_cfg()).unwrap();
        drop(std::mem::replace(&mut self.engine, parked));
        let (engine, recs) = Engine::open(self.dir.path(), small_cfg()).unwrap();
        self.engine = engine;
        for r in &recs {
            assert_eq!(r.key, self.key);
            if r.seq > self.applied_seq {
                self.engine.restore(r.key, r);
            }
        }
        self.engine.note_applied(self.key, self.applied_seq);
    }

    async fn reclaim(&self) {
        let ids = self.engine.journal_reclaimable();
        // (the caller would sync its metadata here)
        self.engine.delete_journal_segments(&ids).await.unwrap();
    }

    async fn check_read(&self, off: u64, len: u32) {
        let got = self
            .engine
            .read(self.key, &self.blocks, self.size, off, len)
            .await
            .unwrap();
        let end = (off + u64::from(len)).min(self.size).max(off);
        let want: Vec<u8> = (off..end)
            .map(|p| self.data.get(p as usize).copied().unwrap_or(0))
            .collect();
        assert_eq!(got.len(), want.len(), "read len at {off}+{len}");
        assert!(got[..] == want[..], "read content at {off}+{len}");
    }

    /// The block list is what chunking `all` in one go gives.
    fn assert_chunked_like(&self, all: &[u8]) {
        let want: Vec<(u64, u32)> = self
            .engine
            .chunker()
            .chunk(all)
            .into_iter()
            .map(|(o, n)| (o as u64, n as u32))
            .collect();
        let got: Vec<(u64, u32)> = self.blocks.iter().map(|b| (b.offset, b.size)).collect();
        assert_eq!(got, want);
    }

    async fn check_all(&self) {
        self.check_read(0, self.size as u32 + 10).await;
    }
}

#[derive(Clone, Debug)]
enum Op {
    Write { off: u64, len: usize, seed: u64 },
    Flush,
    FlushKeepingTails,
    Truncate(u64),
    Reopen,
    Reclaim,
    Read(u64, u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..12_000, 1usize..3_000, any::<u64>())
            .prop_map(|(off, len, seed)| Op::Write { off, len, seed }),
        2 => Just(Op::Flush),
        2 => Just(Op::FlushKeepingTails),
        1 => (0u64..14_000).prop_map(Op::Truncate),
        1 => Just(Op::Reopen),
        1 => Just(Op::Reclaim),
        2 => (0u64..14_000, 1u32..5_000).prop_map(|(o, l)| Op::Read(o, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        rt().block_on(async {
            let mut h = Harness::new();
            for op in ops {
                match op {
                    Op::Write { off, len, seed } => h.write(off, pseudo_random(len, seed)).await,
                    Op::Flush => h.flush().await,
                    Op::FlushKeepingTails => h.flush_with(FlushKind::KeepTails).await,
                    Op::Truncate(n) => h.truncate(n).await,
                    Op::Reopen => h.reopen(),
                    Op::Reclaim => h.reclaim().await,
                    Op::Read(o, l) => h.check_read(o, l).await,
                }
                h.check_all().await;
            }
            h.flush().await;
            h.check_all().await;
            // Everything is applied now: all but the active segment can go.
            h.reclaim().await;
            assert_eq!(h.engine.journal().segments().len(), 1);
        });
    }
}

#[test]
fn small_overwrite_reuses_untouched_blocks() {
    rt().block_on(async {
        let mut h = Harness::new();
        h.write(0, pseudo_random(200_000, 1)).await;
        h.flush().await;
        let old: HashSet<(ContentHash, u64)> =
            h.blocks.iter().map(|b| (b.hash, b.offset)).collect();
        assert!(old.len() > 300);
        h.write(100_000, b"0123456789".to_vec()).await;
        h.flush().await;
        let new: Vec<_> = h
            .blocks
            .iter()
            .filter(|b| !old.contains(&(b.hash, b.offset)))
            .collect();
        // CDC resynchronizes within a few chunks (5 with this data and these sizes).
        assert!(
            !new.is_empty() && new.len() <= 8,
            "{} new blocks",
            new.len()
        );
        for b in &new {
            assert!(b.offset <= 100_010 + 4096 && b.end() + 4096 >= 100_000);
        }
        h.check_all().await;
    });
}

#[test]
fn appends_chunk_like_one_write() {
    rt().block_on(async {
        let mut h = Harness::new();
        let all = pseudo_random(50_000, 2);
        for piece in all.chunks(7_000).enumerate() {
            h.write((piece.0 * 7_000) as u64, piece.1.to_vec()).await;
            h.flush().await;
        }
        h.assert_chunked_like(&all);
    });
}

/// A file flushed again and again while it is being appended to (the flusher under
/// dirty-size or cap pressure) cuts only final chunks: each flush leaves the run's
/// end-of-data tail dirty, the chunks match chunking the whole file at once, and the
/// local CAS holds no chunk that the final block list does not reference (a cut tail
/// would have been garbage, never uploaded, the next flush re-cutting it). A restart in
/// between replays the kept tail from the journal.
#[test]
fn flushes_while_appending_cut_no_garbage() {
    rt().block_on(async {
        let mut h = Harness::new();
        let all = pseudo_random(50_000, 3);
        for (i, piece) in all.chunks(3_000).enumerate() {
            h.write((i * 3_000) as u64, piece.to_vec()).await;
            h.flush_with(FlushKind::KeepTails).await;
            assert!(
                h.kept.iter().all(|k| k.1 - k.0 < 1024),
                "a kept tail is shorter than the maximum chunk"
            );
            if i == 7 {
                h.reopen();
                h.check_all().await;
            }
        }
        assert!(h.engine.is_dirty(h.key), "the last tail is still dirty");
        h.flush().await;
        h.assert_chunked_like(&all);
        let live: HashSet<ContentHash> = h.blocks.iter().map(|b| b.hash).collect();
        let mut stored = HashSet::new();
        h.engine
            .cas()
            .walk(|hash, _, _| {
                stored.insert(hash);
                Ok(())
            })
            .unwrap();
        assert_eq!(stored, live, "the CAS holds exactly the file's chunks");
        h.check_all().await;
    });
}

#[test]
fn holes_stay_holes_and_reads_clip_at_size() {
    rt().block_on(async {
        let mut h = Harness::new();
        h.write(10_000, pseudo_random(500, 3)).await;
        h.write(20_000, pseudo_random(3_000, 4)).await;
        h.flush().await;
        assert_eq!(h.blocks.first().unwrap().offset, 10_000);
        assert!(h.blocks.iter().all(|b| b.offset >= 10_000));
        h.check_all().await;
        // Read past EOF is empty; read straddling EOF is clipped.
        let past = h
            .engine
            .read(h.key, &h.blocks, h.size, h.size, 100)
            .await
            .unwrap();
        assert!(past.is_empty());
        h.check_read(h.size - 10, 100).await;
        // Fill the hole between the two runs: they join into one run.
        h.write(10_500, pseudo_random(9_500, 5)).await;
        h.flush().await;
        h.check_all().await;
        h.truncate(5_000).await;
        assert!(h.blocks.is_empty());
        h.truncate(30_000).await;
        h.check_all().await;
    });
}

#[test]
fn has_writes_after_and_disk_stats() {
    rt().block_on(async {
        let mut h = Harness::new();
        h.write(0, vec![1; 100]).await;
        let plan = h.engine.prepare_flush(h.key, &[]).await.unwrap().unwrap();
        assert!(!h.engine.has_writes_after(h.key, plan.max_write_id));
        h.engine
            .write(h.key, 50, Bytes::from_static(b"x"), false)
            .await
            .unwrap();
        assert!(h.engine.has_writes_after(h.key, plan.max_write_id));
        h.engine.finish_flush(h.key, &plan);
        assert_eq!(h.engine.dirty_bytes(h.key), 1);
        let s = h.engine.disk_stats().unwrap();
        assert!(s.total_bytes >= s.free_bytes && s.free_bytes > 0);
        assert_eq!(s.cas_bytes, 100);
        assert!(s.journal_bytes >= 101);
        assert_eq!(h.engine.reclaim_journal().unwrap(), 0);
    });
}

#[test]
fn small_read_of_a_base_chunk_preads_only_its_range() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EngineConfig {
            chunker: ChunkerConfig {
                min: 64 << 10,
                avg: 256 << 10,
                max: 1 << 20,
            },
            ..EngineConfig::default()
        };
        let (engine, _) = Engine::open(dir.path(), cfg).unwrap();
        let k = key(9);
        let data = pseudo_random(4 << 20, 6);
        engine
            .write(k, 0, Bytes::from(data.clone()), false)
            .await
            .unwrap();
        let plan = engine.prepare_flush(k, &[]).await.unwrap().unwrap();
        engine.finish_flush(k, &plan);
        let b = plan.new_blocks.iter().find(|b| b.size >= 16384).unwrap();
        let before = engine.cas().bytes_read();
        let got = engine
            .read(k, &plan.new_blocks, 4 << 20, b.offset + 4096, 4096)
            .await
            .unwrap();
        assert_eq!(engine.cas().bytes_read() - before, 4096);
        let s = (b.offset + 4096) as usize;
        assert_eq!(&got[..], &data[s..s + 4096]);
    });
}

#[test]
fn durable_writes_survive_reopen_and_discard_frees_journal() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path(), small_cfg()).unwrap();
        let writers: Vec<_> = (0..4u64)
            .map(|t| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    for i in 0..10u64 {
                        let d = Bytes::from(pseudo_random(700, t * 100 + i));
                        engine
                            .write(key(t + 2), i * 700, d, i % 3 == 0)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        engine.commit_durable().await.unwrap();
        assert_eq!(engine.dirty_files().len(), 4);
        assert_eq!(engine.dirty_end(key(2)), Some(7_000));
        assert_eq!(engine.dirty_bytes(key(3)), 7_000);
        drop(engine);
        let (engine, recs) = Engine::open(dir.path(), small_cfg()).unwrap();
        assert_eq!(recs.len(), 40);
        for r in &recs {
            engine.restore(r.key, r);
        }
        for t in 0..4u64 {
            let got = engine.read(key(t + 2), &[], 7_000, 0, 7_000).await.unwrap();
            let want: Vec<u8> = (0..10)
                .flat_map(|i| pseudo_random(700, t * 100 + i))
                .collect();
            assert_eq!(&got[..], &want[..]);
            engine.discard(key(t + 2));
        }
        assert!(engine.dirty_files().is_empty());
        let before = engine.journal_bytes();
        let ids = engine.journal_reclaimable();
        engine.delete_journal_segments(&ids).await.unwrap();
        assert!(engine.journal_bytes() < before);
        assert_eq!(engine.journal().segments().len(), 1);
    });
}

/// The page-cache fast path of reads returns exactly what the blocking path returns, over
/// chunks, journal extents and holes; it declines (false) while a chunk's file is not
/// open yet, and serves the read once it is.
#[test]
fn cached_reads_match_blocking_reads() {
    rt().block_on(async {
        let mut h = Harness::new();
        h.write(0, pseudo_random(6000, 1)).await;
        h.write(9000, pseudo_random(3000, 2)).await; // hole 6000..9000
        h.flush().await;
        h.write(100, pseudo_random(700, 3)).await; // overlay over chunks
        h.write(12_500, pseudo_random(100, 4)).await; // overlay past a hole
        h.reopen(); // a fresh engine: no chunk file open
        let inner = &h.engine.inner;
        let pieces = {
            let st = inner.existing(h.key).unwrap();
            let st = st.lock();
            inner.pieces(&st.overlay.extents_in(0, 13_000)).unwrap()
        };
        let fill = |off: u64, len: usize, mode: ReadMode| {
            let mut buf = vec![0xAAu8; len];
            let ok = inner
                .fill_with(&h.blocks, &pieces, off, &mut buf, None, mode)
                .unwrap();
            ok.then_some(buf)
        };
        // no chunk file is open: the fast path declines reads of chunks
        assert_eq!(fill(0, 50, ReadMode::CachedOnly), None);
        // only overlay and hole: no chunk needed
        assert!(fill(12_400, 200, ReadMode::CachedOnly).is_some());
        h.check_all().await; // opens every chunk file
        let mut hits = 0;
        for (off, len) in [
            (0, 13_000),
            (0, 1),
            (50, 900),
            (5990, 3100),
            (8999, 2),
            (12_450, 150),
        ] {
            let want = fill(off, len, ReadMode::Blocking).unwrap();
            let model: Vec<u8> = (off..off + len as u64)
                .map(|p| h.data.get(p as usize).copied().unwrap_or(0))
                .collect();
            assert_eq!(want, model, "blocking read at {off}+{len}");
            if let Some(got) = fill(off, len, ReadMode::CachedOnly) {
                assert_eq!(got, want, "cached read at {off}+{len}");
                hits += 1;
            }
        }
        // just written and just read: the page cache holds all of it
        assert_eq!(hits, 6);
    });
}

/// Returns once a writer of `k` waits in `wait_for_space` (fails after a second).
async fn until_waiting(engine: &Engine, k: FileKey) {
    for _ in 0..100 {
        if engine.writers_waiting(k) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no writer of {k:?} is waiting for space");
}

/// A writer waiting for space keeps its file active: `dirty_files` reports it as just
/// written and `writers_waiting` says so, for exactly as long as the wait lasts (also
/// when the wait is cancelled).
#[test]
fn a_writer_waiting_for_space_keeps_its_file_active() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path(), small_cfg()).unwrap();
        let k = key(3);
        engine
            .write(k, 0, pseudo_random(4096, 1).into(), false)
            .await
            .unwrap();
        let written = engine.dirty_files()[0].2;
        std::thread::sleep(Duration::from_millis(50));
        // under the cap: no wait, nothing counted
        engine
            .wait_for_space(k, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!engine.writers_waiting(k));
        assert_eq!(engine.dirty_files()[0].2, written);

        engine.set_capacity(1); // over the cap from now on
        engine.space().set_uploads(1, None); // and an upload would make room
        let e2 = engine.clone();
        let waiting =
            tokio::spawn(async move { e2.wait_for_space(k, Duration::from_secs(30)).await });
        until_waiting(&engine, k).await;
        assert!(!engine.writers_waiting(key(4)));
        let seen = engine.dirty_files()[0].2;
        assert!(
            seen > written + Duration::from_millis(40),
            "waiting writer reported as active"
        );

        waiting.abort(); // a cancelled wait drops its count
        assert!(waiting.await.unwrap_err().is_cancelled());
        assert!(!engine.writers_waiting(k));
        assert_eq!(engine.dirty_files()[0].2, written);

        // a wait that reaches its bound while the remote is not failing writes anyway,
        // and drops its count too
        engine
            .wait_for_space(k, Duration::from_millis(20))
            .await
            .unwrap();
        assert!(!engine.writers_waiting(k));
    });
}

/// Runs `wait_for_space` of `k` in a task and returns it once the writer waits.
async fn waiting_writer(
    engine: &Engine,
    k: FileKey,
    max: Duration,
) -> tokio::task::JoinHandle<Result<()>> {
    let e2 = engine.clone();
    let h = tokio::spawn(async move { e2.wait_for_space(k, max).await });
    until_waiting(engine, k).await;
    h
}

/// Asserts that `h` ends (well before its bound) and returns what it returned.
async fn released(h: tokio::task::JoinHandle<Result<()>>) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(10), h)
        .await
        .expect("the writer was released well before its bound")
        .unwrap()
}

/// A writer over the cap waits only for what goes on without it (`crate::space`):
/// the flusher's work on the journal, uploads pending for this engine, or an eviction
/// pass over chunks the evictor has not seen. Once only the journal's open segment and
/// chunks nobody can move are over the cap, it does not wait at all; a remote failing
/// for its whole bound fails it.
#[test]
fn writers_wait_only_for_uploads_and_eviction() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path(), small_cfg()).unwrap();
        let k = key(5);
        let write_some = |seed: u64| {
            let engine = engine.clone();
            async move {
                for i in 0..16u64 {
                    // 4 KiB writes fill several 8 KiB journal segments
                    let data = pseudo_random(4096, i + seed);
                    engine.write(k, i << 12, data.into(), false).await.unwrap();
                }
            }
        };
        write_some(0).await;
        engine.set_capacity(16 << 10);
        assert!(engine.over_capacity());
        let long = Duration::from_secs(120);

        // Unflushed journal: the writer waits for the flusher (flush, then reclaim).
        let w = waiting_writer(&engine, k, long).await;
        let plan = engine.prepare_flush(k, &[]).await.unwrap().unwrap();
        engine.finish_flush(k, &plan);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !w.is_finished(),
            "released before the journal was reclaimed"
        );
        assert!(engine.reclaim_journal().unwrap() > 0);
        released(w).await.unwrap();

        // Over the cap with chunks nobody can move, no upload pending, no evictor, and
        // the journal's open segment: no wait at all.
        assert!(engine.over_capacity());
        let t = Instant::now();
        engine.wait_for_space(k, long).await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(5));

        // Uploads pending: the writer waits until they drain (or room is made).
        engine.space().set_uploads(3, None);
        let w = waiting_writer(&engine, k, long).await;
        engine.space().set_uploads(0, None);
        released(w).await.unwrap();

        // The remote failing for the whole bound: NoSpace, saying why.
        engine
            .space()
            .set_uploads(3, Some("connection refused".into()));
        let err = engine
            .wait_for_space(k, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, BlockError::NoSpace(m) if m.contains("connection refused")),
            "{err}"
        );
        // ... but an upload confirmed meanwhile means room can be made: it writes.
        let w = waiting_writer(&engine, k, Duration::from_millis(500)).await;
        engine.space().upload_confirmed();
        released(w).await.unwrap();
        engine.space().set_uploads(0, None);

        // An evictor runs: the writer waits for one pass over the chunks as they are.
        engine.space().set_evictor_running(true);
        let sig = engine.space().signature(engine.cas().changes());
        let w = waiting_writer(&engine, k, long).await;
        engine.space().eviction_pass_done(sig, true);
        released(w).await.unwrap();
        // The pass found nothing more to evict and nothing changed since: no wait.
        let t = Instant::now();
        engine.wait_for_space(k, long).await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(5));
        // Chunks stored since: worth another pass, so the writer waits for it.
        write_some(100).await;
        let plan = engine
            .prepare_flush(k, &plan.new_blocks)
            .await
            .unwrap()
            .unwrap();
        engine.finish_flush(k, &plan);
        engine.reclaim_journal().unwrap();
        let w = waiting_writer(&engine, k, long).await;
        let sig = engine.space().signature(engine.cas().changes());
        engine.space().eviction_pass_done(sig, true);
        released(w).await.unwrap();
        assert!(!engine.writers_waiting(k));
    });
}

/// Prompt reclaim: chunks the caller found unreferenced go at once, except while a flush
/// that stored or deduplicated against them holds its plan, or if it let go of them after
/// the reclaimer took its epoch (it may have committed a reference the reclaimer's reads
/// missed); those are noted again and go at the next look.
#[test]
fn reclaim_spares_chunks_a_flush_holds_or_held() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path(), small_cfg()).unwrap();
        let data = pseudo_random(20_000, 9);
        let flush = |k: FileKey| {
            let (engine, data) = (engine.clone(), data.clone());
            async move {
                engine.write(k, 0, data.into(), false).await.unwrap();
                engine.prepare_flush(k, &[]).await.unwrap().unwrap()
            }
        };
        let chunks = |e: &Engine| {
            let mut n = 0;
            e.cas()
                .walk(|_, _, _| {
                    n += 1;
                    Ok(())
                })
                .unwrap();
            n
        };
        let a = flush(key(1)).await;
        engine.finish_flush(key(1), &a);
        let hashes: Vec<ContentHash> = a.new_blocks.iter().map(|b| b.hash).collect();
        drop(a); // "committed"; then the file is deleted: its chunks are released
        engine.note_released(hashes.clone());
        let (epoch, released) = engine.take_released();
        assert_eq!(released.len(), hashes.len());
        // meanwhile a flush of the same content deduplicates against them, not committed yet
        let b = flush(key(2)).await;
        assert_eq!(
            engine.reclaim(released.clone(), epoch).await.unwrap(),
            (0, 0)
        );
        assert_eq!(chunks(&engine), hashes.len(), "pinned chunks kept");
        // its plan is dropped (committed) before this pass ends: the pass's epoch still
        // must not delete them (the reads may have missed that commit)
        drop(b);
        assert_eq!(engine.reclaim(released, epoch).await.unwrap(), (0, 0));
        // the next pass looks at them again and (if the caller finds them unreferenced)
        // deletes them
        let (epoch, again) = engine.take_released();
        assert_eq!(again.len(), hashes.len(), "kept chunks are looked at again");
        let (n, bytes) = engine.reclaim(again, epoch).await.unwrap();
        assert_eq!((n, bytes), (hashes.len(), data.len() as u64));
        assert_eq!(chunks(&engine), 0);
    });
}
