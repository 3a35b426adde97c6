//! Prompt reclaim of chunks no file references any more.
//!
//! Refcounts are exact (INV-02), so a chunk whose count reached zero in every share on
//! this store can go at once instead of waiting for the GC's grace period: deleting files
//! on a full disk then frees space within seconds. The caller (who reads metadata) tells
//! the engine which chunks lost references ([`crate::Engine::note_released`]); a
//! reclaimer takes them with an epoch ([`crate::Engine::take_released`]), checks that
//! every share's refcount is zero, and asks the engine to delete them
//! ([`crate::Engine::reclaim`]).
//!
//! The race it must not lose: a flush (or truncate) that stores or deduplicates against
//! a chunk and references it in a metadata commit that the reclaimer's reads missed.
//! Every chunk such an operation stores is *pinned* before it is stored and unpinned only
//! when its plan is dropped, after the commit. The engine deletes a chunk only if, under
//! the chunk's CAS lock, it is not pinned and was not unpinned since the epoch the
//! reclaimer took before reading refcounts. So either the operation committed before the
//! reads (they saw the reference), or it still holds the pin, or it unpinned after the
//! epoch (the chunk is kept and looked at again), or it stores the chunk after the delete
//! (and writes it anew). The GC stays the safety net for everything else.

use dittofs_types::ContentHash;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug, Default)]
struct State {
    /// Bumped at every unpin.
    epoch: u64,
    /// Chunks held by plans not yet dropped, with how many hold each.
    pinned: HashMap<ContentHash, u32>,
    /// The epoch at which a chunk was last unpinned (forgotten at the next take: one
    /// reclaimer per engine).
    unpinned_at: HashMap<ContentHash, u64>,
    /// Chunks that lost a reference since the reclaimer last looked.
    released: HashSet<ContentHash>,
}

/// The pins and released chunks of one engine.
#[derive(Debug, Default)]
pub(crate) struct Pins {
    state: Mutex<State>,
}

/// Chunks pinned by one plan; unpinned when the last clone is dropped.
#[derive(Debug)]
pub struct PinGuard {
    pins: Arc<Pins>,
    hashes: Mutex<Vec<ContentHash>>,
}

impl Pins {
    /// A guard holding nothing yet.
    pub(crate) fn guard(self: &Arc<Self>) -> PinGuard {
        PinGuard {
            pins: self.clone(),
            hashes: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn note_released(&self, hashes: impl IntoIterator<Item = ContentHash>) {
        self.state.lock().released.extend(hashes);
    }

    /// The released chunks and the epoch to check them against.
    pub(crate) fn take_released(&self) -> (u64, Vec<ContentHash>) {
        let mut s = self.state.lock();
        // Unpins up to now pass any check against this epoch or a later one: forget them.
        let epoch = s.epoch;
        s.unpinned_at.retain(|_, e| *e > epoch);
        (epoch, s.released.drain().collect())
    }

    /// Whether `hash` may be deleted by a reclaimer that took `epoch` before it read the
    /// refcounts (see the module documentation).
    pub(crate) fn may_delete(&self, hash: &ContentHash, epoch: u64) -> bool {
        let s = self.state.lock();
        // An unpin bumps the epoch first and records the new value: one at or below
        // `epoch` happened before the reclaimer took it.
        !s.pinned.contains_key(hash) && s.unpinned_at.get(hash).is_none_or(|&e| e <= epoch)
    }
}

impl PinGuard {
    /// Pins `hash` for as long as this guard lives (call before storing the chunk).
    pub(crate) fn pin(&self, hash: ContentHash) {
        *self.pins.state.lock().pinned.entry(hash).or_insert(0) += 1;
        self.hashes.lock().push(hash);
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let hashes = std::mem::take(&mut *self.hashes.lock());
        if hashes.is_empty() {
            return;
        }
        let mut s = self.pins.state.lock();
        s.epoch += 1;
        let epoch = s.epoch;
        for h in hashes {
            if let Some(n) = s.pinned.get_mut(&h) {
                *n -= 1;
                if *n == 0 {
                    s.pinned.remove(&h);
                }
            }
            s.unpinned_at.insert(h, epoch);
        }
    }
}

/// Plans are compared by their content; the pins they hold do not matter.
impl PartialEq for PinGuard {
    fn eq(&self, _: &PinGuard) -> bool {
        true
    }
}

impl Eq for PinGuard {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_or_recently_unpinned_chunks_are_kept() {
        let pins = Arc::new(Pins::default());
        let (a, b) = (ContentHash::of(b"a"), ContentHash::of(b"b"));
        pins.note_released([a, b]);
        let (e0, mut released) = pins.take_released();
        released.sort();
        assert_eq!(released.len(), 2);
        assert!(pins.may_delete(&a, e0) && pins.may_delete(&b, e0));
        let g = pins.guard();
        g.pin(a);
        assert!(!pins.may_delete(&a, e0), "pinned");
        drop(g);
        assert!(
            !pins.may_delete(&a, e0),
            "unpinned after the epoch was taken"
        );
        let (e1, released) = pins.take_released();
        assert!(released.is_empty());
        assert!(pins.may_delete(&a, e1), "unpinned before the next epoch");
        assert!(pins.may_delete(&b, e1));
    }
}
