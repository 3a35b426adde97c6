//! Content-defined chunking: FastCDC 2020 with normalization level 2.
//!
//! Invariants:
//! - A [`Chunker`] only exists for a validated [`ChunkerConfig`] (fastcdc checks its
//!   bounds with debug assertions only, so [`ChunkerConfig::validate`] enforces them).
//! - A cut decision looks at no more than `max` bytes: the next cut of a run depends only
//!   on the first `min(max, remaining)` bytes of the rest of the run. [`StreamChunker`]
//!   relies on this: it asks for a cut only when it holds at least `max` bytes or the end
//!   of the run, so its cut points are identical to chunking the whole run at once.
//! - Every chunk is non-empty; a run shorter than `min` (or its tail) becomes one chunk.

use crate::error::{BlockError, Result};
use dittofs_types::ContentHash;
use fastcdc::v2020::{self, Normalization};
use std::sync::Mutex;
use std::sync::mpsc;

/// Chunk size bounds in bytes. All three must be even and inside fastcdc's v2020 limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkerConfig {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl Default for ChunkerConfig {
    /// 1 MiB / 4 MiB / 16 MiB (docs/design.md, "Content").
    fn default() -> Self {
        ChunkerConfig {
            min: 1 << 20,
            avg: 4 << 20,
            max: 16 << 20,
        }
    }
}

impl ChunkerConfig {
    /// Checks fastcdc v2020's bounds, evenness and `min <= avg <= max`.
    pub fn validate(&self) -> Result<()> {
        let check = |name: &str, v: u32, lo: usize, hi: usize| -> Result<()> {
            let v = v as usize;
            if v < lo || v > hi {
                return Err(BlockError::Config(format!(
                    "chunker {name} {v} outside {lo}..={hi}"
                )));
            }
            if !v.is_multiple_of(2) {
                return Err(BlockError::Config(format!("chunker {name} {v} is odd")));
            }
            Ok(())
        };
        check("min", self.min, v2020::MINIMUM_MIN, v2020::MINIMUM_MAX)?;
        check("avg", self.avg, v2020::AVERAGE_MIN, v2020::AVERAGE_MAX)?;
        check("max", self.max, v2020::MAXIMUM_MIN, v2020::MAXIMUM_MAX)?;
        if !(self.min <= self.avg && self.avg <= self.max) {
            return Err(BlockError::Config(format!(
                "chunker sizes must satisfy min <= avg <= max (got {}/{}/{})",
                self.min, self.avg, self.max
            )));
        }
        Ok(())
    }
}

/// A validated chunker (cheap to copy).
#[derive(Clone, Copy, Debug)]
pub struct Chunker {
    cfg: ChunkerConfig,
    mask_s: u64,
    mask_l: u64,
}

impl Chunker {
    pub fn new(cfg: ChunkerConfig) -> Result<Chunker> {
        cfg.validate()?;
        let (mask_s, mask_l) = v2020::select_masks(cfg.avg as usize, Normalization::Level2);
        Ok(Chunker {
            cfg,
            mask_s,
            mask_l,
        })
    }

    pub fn config(&self) -> ChunkerConfig {
        self.cfg
    }

    /// Length of the chunk that starts at `data[0]`. `data` must hold at least `max`
    /// bytes or the whole rest of the run. Returns 0 only for empty `data`.
    pub fn next_cut(&self, data: &[u8]) -> usize {
        let (_, n) = v2020::cut(
            data,
            self.cfg.min as usize,
            self.cfg.avg as usize,
            self.cfg.max as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
        );
        n
    }

    /// Cuts the whole run `data` into `(offset, len)` chunks.
    pub fn chunk(&self, data: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let n = self.next_cut(&data[pos..]);
            out.push((pos, n));
            pos += n;
        }
        out
    }

    /// Cuts `data` and hashes every chunk: `(offset, len, hash)` in offset order.
    ///
    /// Chunking is sequential; hashing runs on `threads` threads (the calling one
    /// included, once it has finished cutting), overlapping with the cutting.
    pub fn chunk_and_hash(&self, data: &[u8], threads: usize) -> Vec<(usize, usize, ContentHash)> {
        let helpers = threads.saturating_sub(1);
        if helpers == 0 {
            return self
                .chunk(data)
                .into_iter()
                .map(|(o, n)| (o, n, ContentHash::of(&data[o..o + n])))
                .collect();
        }
        let (tx, rx) = mpsc::channel::<(usize, usize)>();
        let rx = Mutex::new(rx);
        let drain = |rx: &Mutex<mpsc::Receiver<(usize, usize)>>| {
            let mut done = Vec::new();
            loop {
                let next = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => break,
                };
                let Ok((o, n)) = next else { break };
                done.push((o, n, ContentHash::of(&data[o..o + n])));
            }
            done
        };
        let mut all = std::thread::scope(|s| {
            let workers: Vec<_> = (0..helpers).map(|_| s.spawn(|| drain(&rx))).collect();
            let mut pos = 0;
            while pos < data.len() {
                let n = self.next_cut(&data[pos..]);
                // The receiver lives until the scope ends, so this cannot fail.
                let _ = tx.send((pos, n));
                pos += n;
            }
            drop(tx);
            let mut all = drain(&rx);
            for w in workers {
                if let Ok(mut part) = w.join() {
                    all.append(&mut part);
                }
            }
            all
        });
        all.sort_unstable_by_key(|c| c.0);
        all
    }
}

/// Chunks one long run supplied piecewise, with a bounded buffer (at most `2 * max`).
///
/// Feed with [`push`](Self::push) while [`needs_input`](Self::needs_input) is true and
/// the run has more bytes, then take chunks with [`next_chunk`](Self::next_chunk),
/// passing `eof = true` once the whole run has been pushed.
#[derive(Debug)]
pub struct StreamChunker {
    chunker: Chunker,
    buf: Vec<u8>,
    head: usize,
    pos: u64,
}

impl StreamChunker {
    /// A stream whose first byte sits at `start` (offsets of chunks are absolute).
    pub fn new(chunker: Chunker, start: u64) -> StreamChunker {
        StreamChunker {
            chunker,
            buf: Vec::new(),
            head: 0,
            pos: start,
        }
    }

    /// Whether a cut can not be decided yet without more bytes (fewer than `max` buffered).
    pub fn needs_input(&self) -> bool {
        self.buf.len() - self.head < self.chunker.cfg.max as usize
    }

    /// Offset of the first byte not yet returned in a chunk.
    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.head > 0 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next chunk `(absolute offset, bytes)`, or `None` if more input is needed
    /// (`eof == false`) or everything was returned.
    pub fn next_chunk(&mut self, eof: bool) -> Option<(u64, &[u8])> {
        let avail = &self.buf[self.head..];
        if avail.is_empty() || (!eof && avail.len() < self.chunker.cfg.max as usize) {
            return None;
        }
        let n = self.chunker.next_cut(avail);
        let off = self.pos;
        let start = self.head;
        self.head += n;
        self.pos += n as u64;
        Some((off, &self.buf[start..start + n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> Chunker {
        Chunker::new(ChunkerConfig {
            min: 64,
            avg: 256,
            max: 1024,
        })
        .unwrap()
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn default_is_valid_and_bounds_are_enforced() {
        ChunkerConfig::default().validate().unwrap();
        let bad = [
            (62, 256, 1024),
            (64, 254, 1024),
            (64, 256, 1022),
            (65, 256, 1024),
            (2 << 20, 4 << 20, 16 << 20),
            (1 << 20, 8 << 20, 16 << 20),
            (1 << 20, 4 << 20, 32 << 20),
            (512, 256, 1024),
            (64, 2048, 1024),
        ];
        for (min, avg, max) in bad {
            assert!(
                ChunkerConfig { min, avg, max }.validate().is_err(),
                "{min}/{avg}/{max}"
            );
        }
    }

    #[test]
    fn chunks_cover_input_within_bounds() {
        let c = small();
        let data = pseudo_random(100_000, 7);
        let cuts = c.chunk(&data);
        let mut pos = 0;
        for (i, &(o, n)) in cuts.iter().enumerate() {
            assert_eq!(o, pos);
            assert!(n <= 1024);
            assert!(n >= 64 || i == cuts.len() - 1);
            pos += n;
        }
        assert_eq!(pos, data.len());
        assert!(cuts.len() > 100);
        let hashed = c.chunk_and_hash(&data, 3);
        assert_eq!(hashed.len(), cuts.len());
        for ((o, n), (o2, n2, h)) in cuts.iter().zip(hashed) {
            assert_eq!((*o, *n), (o2, n2));
            assert_eq!(h, ContentHash::of(&data[o2..o2 + n2]));
        }
    }

    proptest! {
        #[test]
        fn streaming_matches_whole(len in 0usize..20_000, seed in any::<u64>(),
                                   pieces in prop::collection::vec(1usize..3000, 1..20)) {
            let c = small();
            let data = pseudo_random(len, seed);
            let whole: Vec<(u64, usize)> =
                c.chunk(&data).into_iter().map(|(o, n)| (o as u64 + 1000, n)).collect();
            let mut s = StreamChunker::new(c, 1000);
            let mut got = Vec::new();
            let mut fed = 0;
            let mut p = 0;
            loop {
                while s.needs_input() && fed < data.len() {
                    let n = pieces[p % pieces.len()].min(data.len() - fed);
                    p += 1;
                    s.push(&data[fed..fed + n]);
                    fed += n;
                }
                match s.next_chunk(fed == data.len()) {
                    Some((o, bytes)) => {
                        let rel = (o - 1000) as usize;
                        prop_assert_eq!(bytes, &data[rel..rel + bytes.len()]);
                        got.push((o, bytes.len()));
                    }
                    None => break,
                }
            }
            prop_assert_eq!(got, whole);
        }
    }
}
