//! Transactions: a batch of preconditions and mutations applied atomically.

use crate::record::{DirEntry, InodeRecord, Xattrs};
use dittofs_types::{BlockRef, ContentHash, Ino, ShareId};

/// A precondition checked atomically with the apply. If any check fails the backend
/// applies nothing and returns [`crate::MetaError::Conflict`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The inode exists and its `change` counter equals `change`.
    InodeChange { ino: Ino, change: u64 },
    /// The directory entry `name` in `dir` currently names `ino` (`None` = absent).
    Dirent {
        dir: Ino,
        name: Vec<u8>,
        ino: Option<Ino>,
    },
}

/// A mutation. Ops apply in order; later ops see the effect of earlier ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Insert or replace the inode record.
    PutInode(InodeRecord),
    /// Delete the inode record, its block list, its extended attributes and its orphan
    /// mark (if any). Does not touch chunk refcounts: the caller adds the matching
    /// [`Op::AdjustChunk`]s.
    DeleteInode(Ino),
    /// Insert the entry, replacing any entry of the same name in `dir` (the replaced
    /// entry's cookie index is removed).
    PutDirent { dir: Ino, entry: DirEntry },
    /// Remove the entry `name` from `dir` (no-op if absent).
    DeleteDirent { dir: Ino, name: Vec<u8> },
    /// Replace the whole block list of `ino` (empty list = delete the list).
    SetBlocks { ino: Ino, blocks: Vec<BlockRef> },
    /// `refcount += delta` of the chunk row; the row is created at `delta > 0` when missing
    /// and removed when the count reaches 0. A result below 0 aborts the transaction with
    /// [`crate::MetaError::RefcountUnderflow`].
    AdjustChunk {
        hash: ContentHash,
        delta: i64,
        size: u32,
    },
    /// Replace the whole set of extended attributes of `ino` (empty = delete the set). A
    /// non-empty set for an inode that does not exist at this point of the transaction
    /// aborts it with [`crate::MetaError::NoSuchInode`], so attributes never outlive
    /// their inode.
    SetXattrs { ino: Ino, xattrs: Xattrs },
    /// Mark `ino` as unlinked-but-open (nlink 0, content still readable).
    AddOrphan(Ino),
    /// Clear the orphan mark.
    RemoveOrphan(Ino),
    /// Raise the share's inode allocation high-water mark to at least `next_ino`.
    ReserveInodes { next_ino: u64 },
    /// Insert or replace `key` in the share's auxiliary key/value space (opaque to the
    /// store; the VFS keeps e.g. recycle-bin records there, see
    /// [`crate::MetadataStore::get_aux`]).
    PutAux { key: Vec<u8>, value: Vec<u8> },
    /// Remove `key` from the auxiliary space (no-op if absent).
    DeleteAux { key: Vec<u8> },
}

/// One atomic unit of change for one share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    pub share: ShareId,
    pub checks: Vec<Check>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new(share: ShareId) -> Txn {
        Txn {
            share,
            checks: Vec::new(),
            ops: Vec::new(),
        }
    }

    pub fn check(&mut self, c: Check) -> &mut Self {
        self.checks.push(c);
        self
    }

    pub fn op(&mut self, o: Op) -> &mut Self {
        self.ops.push(o);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Adds refcount ops for a block-list change: `+1` per ref in `new`, `-1` per ref in
    /// `old` (netted per hash, zero deltas dropped), so INV-02 holds after the commit.
    pub fn adjust_refs(&mut self, old: &[BlockRef], new: &[BlockRef]) -> &mut Self {
        let mut deltas: std::collections::BTreeMap<ContentHash, (i64, u32)> = Default::default();
        for b in new {
            let e = deltas.entry(b.hash).or_insert((0, b.size));
            e.0 += 1;
        }
        for b in old {
            let e = deltas.entry(b.hash).or_insert((0, b.size));
            e.0 -= 1;
        }
        for (hash, (delta, size)) in deltas {
            if delta != 0 {
                self.ops.push(Op::AdjustChunk { hash, delta, size });
            }
        }
        self
    }
}
