//! Per-file map of dirty (journaled, not yet chunked) data.
//!
//! Invariants:
//! - Extents are non-empty and non-overlapping, keyed by file offset. The newest write
//!   wins: inserting a write trims or splits the older extents it overlaps, and each
//!   surviving piece keeps its original `write_id` and its journal location advanced by
//!   the trimmed prefix (`loc.len` is always the piece's length).
//! - `dirty` is the sum of extent lengths.
//! - Callers insert in increasing `write_id` order (the engine uses the journal seq), so
//!   [`Overlay::prune`]`(w)` removes exactly the data that a flush snapshot taken when the
//!   newest write id was `w` has put into blocks; newer writes survive.
//!   [`Overlay::prune_except`] does the same for a flush that left some ranges (the tails
//!   it did not cut) out of its blocks: their data stays, with its write ids.

use crate::journal::JournalLoc;
use std::collections::BTreeMap;

/// One dirty piece: `loc.len` bytes at file `offset`, stored in the journal at `loc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub loc: JournalLoc,
    pub write_id: u64,
}

impl Extent {
    pub fn len(&self) -> u64 {
        u64::from(self.loc.len)
    }

    pub fn is_empty(&self) -> bool {
        self.loc.len == 0
    }

    pub fn end(&self) -> u64 {
        self.offset + self.len()
    }

    /// The sub-extent covering `[from, to)` (which must lie inside this extent).
    pub fn slice(&self, from: u64, to: u64) -> Extent {
        let skip = from - self.offset;
        Extent {
            offset: from,
            loc: JournalLoc {
                data_pos: self.loc.data_pos + skip,
                len: (to - from) as u32,
                ..self.loc
            },
            write_id: self.write_id,
        }
    }
}

/// The dirty extents of one file.
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    map: BTreeMap<u64, Extent>,
    dirty: u64,
}

impl Overlay {
    pub fn new() -> Overlay {
        Overlay::default()
    }

    /// Records a write of `loc.len` bytes at `offset`, superseding older data there.
    pub fn insert(&mut self, offset: u64, loc: JournalLoc, write_id: u64) {
        if loc.len == 0 {
            return;
        }
        let new = Extent {
            offset,
            loc,
            write_id,
        };
        let end = new.end();
        let mut hit: Vec<u64> = Vec::new();
        if let Some((&s, e)) = self.map.range(..offset).next_back()
            && e.end() > offset
        {
            hit.push(s);
        }
        hit.extend(self.map.range(offset..end).map(|(&s, _)| s));
        for s in hit {
            let Some(e) = self.map.remove(&s) else {
                continue;
            };
            self.dirty -= e.len();
            if e.offset < offset {
                let left = e.slice(e.offset, offset);
                self.dirty += left.len();
                self.map.insert(left.offset, left);
            }
            if e.end() > end {
                let right = e.slice(end, e.end());
                self.dirty += right.len();
                self.map.insert(right.offset, right);
            }
        }
        self.dirty += new.len();
        self.map.insert(offset, new);
    }

    /// One past the last dirty byte (0 when clean).
    pub fn end(&self) -> u64 {
        self.map.values().next_back().map_or(0, Extent::end)
    }

    pub fn dirty_bytes(&self) -> u64 {
        self.dirty
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The extents intersecting `[start, end)`, clipped to it, in offset order.
    pub fn extents_in(&self, start: u64, end: u64) -> Vec<Extent> {
        let mut out = Vec::new();
        if start >= end {
            return out;
        }
        if let Some((_, e)) = self.map.range(..start).next_back()
            && e.end() > start
        {
            out.push(e.slice(start, e.end().min(end)));
        }
        out.extend(
            self.map
                .range(start..end)
                .map(|(_, e)| e.slice(e.offset, e.end().min(end))),
        );
        out
    }

    /// All extents in offset order.
    pub fn snapshot(&self) -> Vec<Extent> {
        self.map.values().copied().collect()
    }

    /// Highest write id present (0 when clean).
    pub fn max_write_id(&self) -> u64 {
        self.map.values().map(|e| e.write_id).max().unwrap_or(0)
    }

    /// Removes every extent with `write_id <= max_write_id`.
    pub fn prune(&mut self, max_write_id: u64) {
        self.prune_except(max_write_id, &[]);
    }

    /// Removes every extent with `write_id <= max_write_id` except the parts that lie in
    /// `keep` (sorted, non-overlapping `[start, end)` ranges): a flush that left those
    /// ranges out of its blocks keeps their data dirty.
    pub fn prune_except(&mut self, max_write_id: u64, keep: &[(u64, u64)]) {
        let old = std::mem::take(&mut self.map);
        for e in old.into_values() {
            if e.write_id > max_write_id {
                self.map.insert(e.offset, e);
                continue;
            }
            let first = keep.partition_point(|k| k.1 <= e.offset);
            for &(ks, ke) in keep[first..].iter().take_while(|k| k.0 < e.end()) {
                let part = e.slice(ks.max(e.offset), ke.min(e.end()));
                self.map.insert(part.offset, part);
            }
        }
        self.dirty = self.map.values().map(Extent::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Model: per byte, `(write_id, position inside that write's data)`.
    type Model = Vec<Option<(u64, u64)>>;

    fn check(ov: &Overlay, model: &Model) {
        let mut seen: Model = vec![None; model.len()];
        let mut prev_end = 0;
        let mut total = 0;
        for e in ov.snapshot() {
            assert!(!e.is_empty());
            assert!(e.offset >= prev_end, "overlap");
            prev_end = e.end();
            total += e.len();
            // Each write w at offset o has data_pos 1000*w, so byte p of it is at
            // data_pos + (p - o); recover p - o from the piece's loc.
            for i in 0..e.len() {
                let pos_in_write = e.loc.data_pos + i - 1000 * e.write_id;
                seen[(e.offset + i) as usize] = Some((e.write_id, pos_in_write));
            }
            assert_eq!(e.loc.seq, e.write_id);
        }
        assert_eq!(&seen, model);
        assert_eq!(ov.dirty_bytes(), total);
        let model_end = model.iter().rposition(Option::is_some).map_or(0, |p| p + 1);
        assert_eq!(ov.end(), model_end as u64);
    }

    proptest! {
        #[test]
        fn overlay_matches_byte_model(
            ops in prop::collection::vec((0u64..200, 1u32..60, prop::bool::weighted(0.1)), 1..60),
            q in (0u64..260, 0u64..80),
        ) {
            let mut ov = Overlay::new();
            let mut model: Model = vec![None; 260];
            for (w, &(off, len, prune)) in ops.iter().enumerate() {
                let w = w as u64 + 1;
                if prune {
                    // keep bytes [off, off + len) of the pruned writes (a flush's tail)
                    let cut = w / 2;
                    let keep = [(off, off + u64::from(len))];
                    ov.prune_except(cut, &keep);
                    for (p, b) in model.iter_mut().enumerate() {
                        let kept = (off..off + u64::from(len)).contains(&(p as u64));
                        if !kept && b.is_some_and(|(id, _)| id <= cut) {
                            *b = None;
                        }
                    }
                    check(&ov, &model);
                    continue;
                }
                let loc = JournalLoc { seq: w, segment: 1, data_pos: 1000 * w, len };
                ov.insert(off, loc, w);
                for i in 0..u64::from(len) {
                    model[(off + i) as usize] = Some((w, i));
                }
                check(&ov, &model);
            }
            let (s, n) = q;
            let got = ov.extents_in(s, s + n);
            let mut covered = vec![false; 260];
            for e in &got {
                prop_assert!(e.offset >= s && e.end() <= s + n && !e.is_empty());
                for p in e.offset..e.end() {
                    covered[p as usize] = true;
                    let pos_in_write = e.loc.data_pos + (p - e.offset) - 1000 * e.write_id;
                    prop_assert_eq!(model[p as usize], Some((e.write_id, pos_in_write)));
                }
            }
            for p in s..(s + n).min(260) {
                prop_assert_eq!(covered[p as usize], model[p as usize].is_some());
            }
        }
    }
}
