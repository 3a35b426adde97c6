//! Byte ranges and one file's list of POSIX byte-range locks.
//!
//! A [`ByteRange`] is inclusive at both ends (`start..=last`), so a range that runs to
//! the end of the file (`last == u64::MAX`) needs no special case and no arithmetic
//! can overflow: the only `+ 1` is on a `last` known to be below `u64::MAX`.
//!
//! Semantics (POSIX `fcntl` record locks, which NLM v4 and RFC 8881 section 9.2 / RFC
//! 7530 section 9.2 "Lock Ranges" follow; MS-FSA 2.1.4.10 gives the same conflict rule
//! for byte-range locks):
//! - two locks conflict when their ranges overlap, their owners differ and at least one
//!   is exclusive;
//! - an owner never conflicts with itself: a new lock replaces the owner's own locks on
//!   the bytes it covers (an owner's shared range becomes exclusive or the reverse,
//!   splitting the old range when needed);
//! - unlocking a sub-range splits the owner's lock around it.
//!
//! Invariants of a [`LockList`] after every operation: the ranges of one owner are
//! disjoint, and no two ranges of one owner with the same kind overlap or touch (they
//! are merged).

use super::owner::Owner;
use std::fmt;

/// Shared (read) or exclusive (write) lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LockKind {
    Shared,
    Exclusive,
}

impl LockKind {
    /// Whether locks of these kinds held by different owners on overlapping bytes
    /// conflict.
    pub fn conflicts_with(self, other: LockKind) -> bool {
        self == LockKind::Exclusive || other == LockKind::Exclusive
    }
}

/// Inclusive byte range `start..=last`; `last == u64::MAX` means "to end of file".
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteRange {
    start: u64,
    last: u64,
}

/// An `(offset, length)` pair that names no range: the end lies beyond `u64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("range offset {offset} length {len} ends beyond the largest offset")]
pub struct RangeError {
    pub offset: u64,
    pub len: u64,
}

impl ByteRange {
    /// Everything from `start` to the end of the file.
    pub fn to_eof(start: u64) -> ByteRange {
        ByteRange {
            start,
            last: u64::MAX,
        }
    }

    /// The whole file.
    pub const WHOLE: ByteRange = ByteRange {
        start: 0,
        last: u64::MAX,
    };

    /// From the wire form: `len` 0 (NLM, POSIX) or `u64::MAX` (NFSv4) means to end of
    /// file; a range whose end would pass `u64::MAX` is refused.
    pub fn new(offset: u64, len: u64) -> Result<ByteRange, RangeError> {
        if len == 0 || len == u64::MAX {
            return Ok(ByteRange::to_eof(offset));
        }
        match offset.checked_add(len - 1) {
            Some(last) => Ok(ByteRange {
                start: offset,
                last,
            }),
            None => Err(RangeError { offset, len }),
        }
    }

    /// `start..=last`, or `None` when `last < start`.
    pub fn inclusive(start: u64, last: u64) -> Option<ByteRange> {
        (start <= last).then_some(ByteRange { start, last })
    }

    pub fn start(&self) -> u64 {
        self.start
    }

    /// The last byte covered (`u64::MAX` for a range to end of file).
    pub fn last(&self) -> u64 {
        self.last
    }

    pub fn is_to_eof(&self) -> bool {
        self.last == u64::MAX
    }

    /// Number of bytes, `None` for a range to end of file (adapters send 0 for NLM,
    /// `u64::MAX` for NFSv4).
    pub fn length(&self) -> Option<u64> {
        (!self.is_to_eof()).then(|| self.last - self.start + 1)
    }

    pub fn overlaps(&self, other: &ByteRange) -> bool {
        self.start <= other.last && other.start <= self.last
    }

    /// Whether `other` starts right after `self` ends.
    fn touches_before(&self, other: &ByteRange) -> bool {
        self.last != u64::MAX && self.last + 1 == other.start
    }

    /// The parts of `self` outside `cut`: at most one before and one after.
    fn minus(&self, cut: &ByteRange) -> [Option<ByteRange>; 2] {
        let before = (self.start < cut.start).then(|| ByteRange {
            start: self.start,
            last: cut.start - 1,
        });
        let after = (self.last > cut.last).then(|| ByteRange {
            start: cut.last + 1,
            last: self.last,
        });
        [before, after]
    }
}

impl fmt::Debug for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_to_eof() {
            write!(f, "[{}..EOF]", self.start)
        } else {
            write!(f, "[{}..={}]", self.start, self.last)
        }
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A granted byte-range lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLock {
    pub owner: Owner,
    pub range: ByteRange,
    pub kind: LockKind,
}

impl HeldLock {
    /// Whether this lock stops `owner` from locking `range` with `kind`.
    pub fn blocks(&self, owner: &Owner, range: &ByteRange, kind: LockKind) -> bool {
        &self.owner != owner && self.range.overlaps(range) && self.kind.conflicts_with(kind)
    }
}

/// The granted locks of one file, sorted by start offset.
#[derive(Clone, Debug, Default)]
pub(crate) struct LockList {
    locks: Vec<HeldLock>,
}

impl LockList {
    pub(crate) fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &HeldLock> {
        self.locks.iter()
    }

    /// The first lock (lowest offset) that stops `owner` from taking `range` as `kind`.
    pub(crate) fn conflict(
        &self,
        owner: &Owner,
        range: &ByteRange,
        kind: LockKind,
    ) -> Option<&HeldLock> {
        self.locks.iter().find(|l| l.blocks(owner, range, kind))
    }

    /// Grants `range` to `owner` as `kind`, replacing and merging its own locks.
    /// The caller has checked for conflicts.
    pub(crate) fn insert(&mut self, owner: &Owner, range: ByteRange, kind: LockKind) {
        self.remove(owner, &range);
        let mut merged = range;
        self.locks.retain(|l| {
            let join = &l.owner == owner
                && l.kind == kind
                && (l.range.touches_before(&merged) || merged.touches_before(&l.range));
            if join {
                merged.start = merged.start.min(l.range.start);
                merged.last = merged.last.max(l.range.last);
            }
            !join
        });
        let at = self
            .locks
            .partition_point(|l| l.range.start <= merged.start);
        let lock = HeldLock {
            owner: owner.clone(),
            range: merged,
            kind,
        };
        self.locks.insert(at, lock);
    }

    /// Removes `owner`'s locks on `range`, splitting ranges that stick out. Returns
    /// whether any byte was unlocked.
    pub(crate) fn remove(&mut self, owner: &Owner, range: &ByteRange) -> bool {
        let hit = |l: &HeldLock| &l.owner == owner && l.range.overlaps(range);
        if !self.locks.iter().any(hit) {
            return false;
        }
        let mut kept = Vec::with_capacity(self.locks.len() + 1);
        for lock in self.locks.drain(..) {
            if !hit(&lock) {
                kept.push(lock);
                continue;
            }
            for part in lock.range.minus(range).into_iter().flatten() {
                kept.push(HeldLock {
                    range: part,
                    ..lock.clone()
                });
            }
        }
        kept.sort_by_key(|l| l.range.start);
        self.locks = kept;
        true
    }

    /// Removes every lock `pred` selects; returns how many.
    pub(crate) fn remove_where(&mut self, pred: impl Fn(&Owner) -> bool) -> usize {
        let before = self.locks.len();
        self.locks.retain(|l| !pred(&l.owner));
        before - self.locks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::owner::{ClientId, Protocol};

    fn owner(k: u8) -> Owner {
        Owner::new(Protocol::Nlm, ClientId::Num(1), &[k])
    }

    fn r(start: u64, last: u64) -> ByteRange {
        ByteRange::inclusive(start, last).unwrap()
    }

    fn ranges(list: &LockList, o: &Owner) -> Vec<(ByteRange, LockKind)> {
        list.iter()
            .filter(|l| &l.owner == o)
            .map(|l| (l.range, l.kind))
            .collect()
    }

    #[test]
    fn wire_lengths() {
        assert_eq!(ByteRange::new(5, 0).unwrap(), ByteRange::to_eof(5));
        assert_eq!(ByteRange::new(5, u64::MAX).unwrap(), ByteRange::to_eof(5));
        assert_eq!(ByteRange::new(5, 10).unwrap(), r(5, 14));
        assert_eq!(ByteRange::new(5, 10).unwrap().length(), Some(10));
        // Ends exactly at the largest offset: fine, and it is "to EOF".
        let top = ByteRange::new(u64::MAX - 9, 10).unwrap();
        assert!(top.is_to_eof());
        assert_eq!(top.length(), None);
        assert_eq!(
            ByteRange::new(u64::MAX - 9, 11),
            Err(RangeError {
                offset: u64::MAX - 9,
                len: 11
            })
        );
        assert_eq!(ByteRange::new(u64::MAX, 2).map(|_| ()).unwrap_err().len, 2);
        assert!(ByteRange::inclusive(3, 2).is_none());
    }

    #[test]
    fn overlap_at_the_top() {
        let eof = ByteRange::to_eof(u64::MAX);
        assert!(eof.overlaps(&ByteRange::WHOLE));
        assert!(!eof.overlaps(&r(0, u64::MAX - 1)));
        assert!(r(0, u64::MAX - 1).touches_before(&eof));
        assert!(!eof.touches_before(&ByteRange::WHOLE));
    }

    #[test]
    fn same_kind_merges_touching_and_overlapping() {
        let a = owner(1);
        let mut l = LockList::default();
        l.insert(&a, r(0, 9), LockKind::Shared);
        l.insert(&a, r(20, 29), LockKind::Shared);
        l.insert(&a, r(10, 19), LockKind::Shared);
        assert_eq!(ranges(&l, &a), vec![(r(0, 29), LockKind::Shared)]);
        l.insert(&a, r(25, 40), LockKind::Shared);
        assert_eq!(ranges(&l, &a), vec![(r(0, 40), LockKind::Shared)]);
    }

    #[test]
    fn other_kind_splits_the_owners_range() {
        let a = owner(1);
        let mut l = LockList::default();
        l.insert(&a, r(0, 99), LockKind::Shared);
        l.insert(&a, r(10, 19), LockKind::Exclusive);
        assert_eq!(
            ranges(&l, &a),
            vec![
                (r(0, 9), LockKind::Shared),
                (r(10, 19), LockKind::Exclusive),
                (r(20, 99), LockKind::Shared),
            ]
        );
        // Back to shared: the three pieces become one again.
        l.insert(&a, r(10, 19), LockKind::Shared);
        assert_eq!(ranges(&l, &a), vec![(r(0, 99), LockKind::Shared)]);
    }

    #[test]
    fn unlock_splits_and_reports() {
        let a = owner(1);
        let b = owner(2);
        let mut l = LockList::default();
        l.insert(&a, ByteRange::to_eof(10), LockKind::Exclusive);
        l.insert(&b, r(0, 5), LockKind::Shared);
        assert!(l.remove(&a, &r(20, 29)));
        assert_eq!(
            ranges(&l, &a),
            vec![
                (r(10, 19), LockKind::Exclusive),
                (ByteRange::to_eof(30), LockKind::Exclusive),
            ]
        );
        assert!(!l.remove(&a, &r(0, 9)), "nothing of a's there");
        assert!(l.remove(&a, &ByteRange::to_eof(u64::MAX)));
        assert_eq!(
            ranges(&l, &a).last(),
            Some(&(r(30, u64::MAX - 1), LockKind::Exclusive))
        );
        assert_eq!(ranges(&l, &b), vec![(r(0, 5), LockKind::Shared)]);
    }

    #[test]
    fn conflicts_need_other_owner_overlap_and_exclusive() {
        let a = owner(1);
        let b = owner(2);
        let mut l = LockList::default();
        l.insert(&a, r(10, 19), LockKind::Shared);
        assert!(l.conflict(&b, &r(0, 100), LockKind::Shared).is_none());
        assert!(l.conflict(&a, &r(0, 100), LockKind::Exclusive).is_none());
        assert!(l.conflict(&b, &r(20, 100), LockKind::Exclusive).is_none());
        let hit = l.conflict(&b, &r(19, 19), LockKind::Exclusive).unwrap();
        assert_eq!((hit.owner.clone(), hit.range), (a, r(10, 19)));
    }
}
