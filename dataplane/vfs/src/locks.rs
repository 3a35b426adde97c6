//! Striped per-inode locks.
//!
//! Invariant: an operation acquires every stripe it needs in ONE call of
//! [`LockTable::write_many`] / [`LockTable::read`] (sorted, deduplicated), and never
//! acquires more while holding some. That makes deadlock impossible. Namespace changes take
//! write locks on every directory and inode they touch; READ/WRITE take a read lock on the
//! file; publishing a flushed block list takes the file's write lock, so a reader always
//! sees a consistent (block list, overlay) pair.

use dittofs_types::Ino;
use tokio::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

const STRIPES: usize = 1024;

fn stripe(ino: Ino) -> usize {
    // Fibonacci hashing spreads sequential inode numbers over the stripes.
    (ino.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % STRIPES
}

pub(crate) struct LockTable {
    stripes: Vec<RwLock<()>>,
}

pub(crate) struct WriteGuards<'a> {
    _guards: Vec<RwLockWriteGuard<'a, ()>>,
}

impl LockTable {
    pub(crate) fn new() -> LockTable {
        LockTable {
            stripes: (0..STRIPES).map(|_| RwLock::new(())).collect(),
        }
    }

    pub(crate) async fn read(&self, ino: Ino) -> RwLockReadGuard<'_, ()> {
        self.stripes[stripe(ino)].read().await
    }

    pub(crate) async fn write_many(&self, inos: &[Ino]) -> WriteGuards<'_> {
        let mut idx: Vec<usize> = inos.iter().map(|i| stripe(*i)).collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].write().await);
        }
        WriteGuards { _guards: guards }
    }
}

/// Striped mutexes serialising the block-list changes (flush, truncate) of one file.
pub(crate) struct FlushLocks {
    stripes: Vec<Mutex<()>>,
}

impl FlushLocks {
    pub(crate) fn new() -> FlushLocks {
        FlushLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    pub(crate) async fn lock(&self, ino: Ino) -> MutexGuard<'_, ()> {
        self.stripes[stripe(ino)].lock().await
    }

    /// The flush locks of several files (a copy between two files), taken in stripe
    /// order in one call: every other holder takes a single stripe, so this cannot
    /// deadlock.
    pub(crate) async fn lock_many(&self, inos: &[Ino]) -> Vec<MutexGuard<'_, ()>> {
        let mut idx: Vec<usize> = inos.iter().map(|i| stripe(*i)).collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].lock().await);
        }
        guards
    }
}
