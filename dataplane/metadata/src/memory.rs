//! `memory` backend: everything in ordered maps behind one lock. Volatile by design
//! (`persistent: false`); `Durable` commits are as durable as the process.
//!
//! | map        | key                       | value          |
//! |------------|---------------------------|----------------|
//! | `shares`   | ShareId                   | ShareRecord    |
//! | `inodes`   | (ShareId, Ino)            | InodeRecord    |
//! | `dirents`  | (ShareId, dir, name)      | DirEntry       |
//! | `cookies`  | (ShareId, dir, cookie)    | name           |
//! | `blocks`   | (ShareId, Ino)            | Vec<BlockRef>  |
//! | `chunks`   | (ShareId, ContentHash)    | ChunkRow       |
//! | `xattrs`   | (ShareId, Ino)            | Xattrs (non-empty) |
//! | `orphans`  | (ShareId, Ino)            | ()             |
//! | `aux`      | (ShareId, key bytes)      | value bytes    |

use crate::error::{MetaError, MetaResult};
use crate::record::{ChunkEntry, ChunkRow, DirEntry, InodeRecord, ShareRecord, Xattrs};
use crate::store::{Durability, MetadataStore, StoreInfo};
use crate::txn::{Check, Op, Txn};
use async_trait::async_trait;
use dittofs_types::{BlockRef, ContentHash, FileType, Ino, ObjectId, ShareId, Timestamp};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

#[derive(Default, Clone)]
struct State {
    shares: BTreeMap<ShareId, ShareRecord>,
    inodes: BTreeMap<(ShareId, Ino), InodeRecord>,
    dirents: BTreeMap<(ShareId, Ino, Vec<u8>), DirEntry>,
    cookies: BTreeMap<(ShareId, Ino, u64), Vec<u8>>,
    blocks: BTreeMap<(ShareId, Ino), Vec<BlockRef>>,
    xattrs: BTreeMap<(ShareId, Ino), Xattrs>,
    chunks: BTreeMap<(ShareId, ContentHash), ChunkRow>,
    orphans: BTreeSet<(ShareId, Ino)>,
    aux: BTreeMap<(ShareId, Vec<u8>), Vec<u8>>,
}

/// The volatile in-memory backend.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

/// Builds the root directory record every backend creates with a new share.
pub fn new_root_inode(root_mode: u32, now: Timestamp) -> InodeRecord {
    InodeRecord {
        ino: Ino::ROOT,
        generation: 1,
        kind: FileType::Directory,
        mode: root_mode & 0o7777,
        nlink: 2,
        uid: 0,
        gid: 0,
        size: 0,
        atime: now,
        mtime: now,
        ctime: now,
        btime: now,
        rdev: Default::default(),
        change: 1,
        parent: Ino::ROOT,
        next_cookie: 3,
        symlink_target: None,
        object_id: ObjectId::NOT_QUIESCED,
        create_verifier: None,
        applied_seq: 0,
    }
}

/// A fresh share record (incarnation from the OS RNG-seeded hasher).
pub fn new_share_record(id: ShareId, name: &str, now: Timestamp) -> ShareRecord {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(id.0);
    h.write_i64(now.secs);
    h.write_u32(now.nanos);
    ShareRecord {
        id,
        name: name.to_owned(),
        incarnation: h.finish() as u32,
        created: now,
        next_ino: Ino::FIRST_ALLOC,
    }
}

impl State {
    /// A check that does not hold is a [`MetaError::Conflict`] saying what changed.
    fn check(&self, share: ShareId, c: &Check) -> MetaResult<()> {
        let conflict = |m: String| Err(MetaError::Conflict(m));
        match c {
            Check::InodeChange { ino, change } => match self.inodes.get(&(share, *ino)) {
                Some(r) if r.change == *change => Ok(()),
                Some(r) => conflict(format!("{ino} changed ({} != {change})", r.change)),
                None => conflict(format!("{ino} is gone")),
            },
            Check::Dirent { dir, name, ino } => {
                let cur = self
                    .dirents
                    .get(&(share, *dir, name.clone()))
                    .map(|e| e.ino);
                if cur == *ino {
                    Ok(())
                } else {
                    conflict(format!(
                        "entry {:?} in {dir} is {cur:?}, expected {ino:?}",
                        String::from_utf8_lossy(name)
                    ))
                }
            }
        }
    }

    fn apply(&mut self, share: ShareId, op: Op) -> MetaResult<()> {
        match op {
            Op::PutInode(r) => {
                self.inodes.insert((share, r.ino), r);
            }
            Op::DeleteInode(ino) => {
                self.inodes.remove(&(share, ino));
                self.blocks.remove(&(share, ino));
                self.xattrs.remove(&(share, ino));
                self.orphans.remove(&(share, ino));
            }
            Op::PutDirent { dir, entry } => {
                if let Some(old) = self.dirents.get(&(share, dir, entry.name.clone())) {
                    self.cookies.remove(&(share, dir, old.cookie));
                }
                self.cookies
                    .insert((share, dir, entry.cookie), entry.name.clone());
                self.dirents.insert((share, dir, entry.name.clone()), entry);
            }
            Op::DeleteDirent { dir, name } => {
                if let Some(old) = self.dirents.remove(&(share, dir, name)) {
                    self.cookies.remove(&(share, dir, old.cookie));
                }
            }
            Op::SetBlocks { ino, blocks } => {
                if blocks.is_empty() {
                    self.blocks.remove(&(share, ino));
                } else {
                    self.blocks.insert((share, ino), blocks);
                }
            }
            Op::SetXattrs { ino, xattrs } => {
                if xattrs.is_empty() {
                    self.xattrs.remove(&(share, ino));
                } else {
                    self.xattrs.insert((share, ino), xattrs);
                }
            }
            Op::AdjustChunk { hash, delta, size } => {
                let cur = self
                    .chunks
                    .get(&(share, hash))
                    .map(|r| r.refcount)
                    .unwrap_or(0);
                let next = i128::from(cur) + i128::from(delta);
                if next < 0 {
                    return Err(MetaError::RefcountUnderflow {
                        share,
                        hash,
                        value: next,
                    });
                }
                if next == 0 {
                    self.chunks.remove(&(share, hash));
                } else {
                    self.chunks.insert(
                        (share, hash),
                        ChunkRow {
                            refcount: next as u64,
                            size,
                        },
                    );
                }
            }
            Op::AddOrphan(ino) => {
                self.orphans.insert((share, ino));
            }
            Op::RemoveOrphan(ino) => {
                self.orphans.remove(&(share, ino));
            }
            Op::ReserveInodes { next_ino } => {
                let rec = self
                    .shares
                    .get_mut(&share)
                    .ok_or(MetaError::NoSuchShare(share))?;
                rec.next_ino = rec.next_ino.max(next_ino);
            }
            Op::PutAux { key, value } => {
                self.aux.insert((share, key), value);
            }
            Op::DeleteAux { key } => {
                self.aux.remove(&(share, key));
            }
        }
        Ok(())
    }

    /// Fails with [`MetaError::NoSuchInode`] when an [`Op::SetXattrs`] of `ops` gives a
    /// non-empty set to an inode that does not exist at that point of the transaction
    /// (checked before anything is applied).
    fn check_xattr_targets(&self, share: ShareId, ops: &[Op]) -> MetaResult<()> {
        let mut exists: BTreeMap<Ino, bool> = BTreeMap::new();
        for o in ops {
            match o {
                Op::PutInode(r) => {
                    exists.insert(r.ino, true);
                }
                Op::DeleteInode(ino) => {
                    exists.insert(*ino, false);
                }
                Op::SetXattrs { ino, xattrs } if !xattrs.is_empty() => {
                    let here = exists
                        .get(ino)
                        .copied()
                        .unwrap_or_else(|| self.inodes.contains_key(&(share, *ino)));
                    if !here {
                        return Err(MetaError::NoSuchInode { share, ino: *ino });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[async_trait]
impl MetadataStore for MemoryStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            kind: "memory",
            persistent: false,
        }
    }

    async fn create_share(
        &self,
        id: ShareId,
        name: &str,
        root_mode: u32,
    ) -> MetaResult<ShareRecord> {
        let mut s = self.state.lock();
        if let Some(r) = s.shares.get(&id) {
            return Ok(r.clone());
        }
        let now = Timestamp::now();
        let rec = new_share_record(id, name, now);
        s.shares.insert(id, rec.clone());
        s.inodes
            .insert((id, Ino::ROOT), new_root_inode(root_mode, now));
        Ok(rec)
    }

    async fn get_share(&self, id: ShareId) -> MetaResult<Option<ShareRecord>> {
        Ok(self.state.lock().shares.get(&id).cloned())
    }

    async fn list_shares(&self) -> MetaResult<Vec<ShareRecord>> {
        Ok(self.state.lock().shares.values().cloned().collect())
    }

    async fn delete_share(&self, id: ShareId) -> MetaResult<()> {
        let mut s = self.state.lock();
        s.shares.remove(&id);
        s.inodes.retain(|k, _| k.0 != id);
        s.dirents.retain(|k, _| k.0 != id);
        s.cookies.retain(|k, _| k.0 != id);
        s.blocks.retain(|k, _| k.0 != id);
        s.xattrs.retain(|k, _| k.0 != id);
        s.chunks.retain(|k, _| k.0 != id);
        s.orphans.retain(|k| k.0 != id);
        s.aux.retain(|k, _| k.0 != id);
        Ok(())
    }

    async fn get_inode(&self, share: ShareId, ino: Ino) -> MetaResult<Option<InodeRecord>> {
        Ok(self.state.lock().inodes.get(&(share, ino)).cloned())
    }

    async fn lookup(&self, share: ShareId, dir: Ino, name: &[u8]) -> MetaResult<Option<DirEntry>> {
        Ok(self
            .state
            .lock()
            .dirents
            .get(&(share, dir, name.to_vec()))
            .cloned())
    }

    async fn read_dir(
        &self,
        share: ShareId,
        dir: Ino,
        after_cookie: u64,
        limit: usize,
    ) -> MetaResult<Vec<DirEntry>> {
        let s = self.state.lock();
        let range = (
            Bound::Excluded((share, dir, after_cookie)),
            Bound::Included((share, dir, u64::MAX)),
        );
        let mut out = Vec::new();
        for (_, name) in s.cookies.range(range).take(limit) {
            if let Some(e) = s.dirents.get(&(share, dir, name.clone())) {
                out.push(e.clone());
            }
        }
        Ok(out)
    }

    async fn dir_is_empty(&self, share: ShareId, dir: Ino) -> MetaResult<bool> {
        let s = self.state.lock();
        let range = (
            Bound::Included((share, dir, 0u64)),
            Bound::Included((share, dir, u64::MAX)),
        );
        Ok(s.cookies.range(range).next().is_none())
    }

    async fn get_blocks(&self, share: ShareId, ino: Ino) -> MetaResult<Vec<BlockRef>> {
        Ok(self
            .state
            .lock()
            .blocks
            .get(&(share, ino))
            .cloned()
            .unwrap_or_default())
    }

    async fn get_xattrs(&self, share: ShareId, ino: Ino) -> MetaResult<Xattrs> {
        Ok(self
            .state
            .lock()
            .xattrs
            .get(&(share, ino))
            .cloned()
            .unwrap_or_default())
    }

    async fn commit(&self, txn: Txn, _durability: Durability) -> MetaResult<()> {
        let mut s = self.state.lock();
        if !s.shares.contains_key(&txn.share) {
            return Err(MetaError::NoSuchShare(txn.share));
        }
        for c in &txn.checks {
            s.check(txn.share, c)?;
        }
        s.check_xattr_targets(txn.share, &txn.ops)?;
        // Apply on a copy-on-failure basis: ops are validated while applying, so keep
        // an undo copy only of what can fail (chunk rows, share record).
        let backup_chunks: Vec<(ContentHash, Option<ChunkRow>)> = txn
            .ops
            .iter()
            .filter_map(|o| match o {
                Op::AdjustChunk { hash, .. } => {
                    Some((*hash, s.chunks.get(&(txn.share, *hash)).copied()))
                }
                _ => None,
            })
            .collect();
        // Refcount underflow (and a missing inode for attributes, checked above) are the
        // only op failures: pre-validate them so nothing is applied.
        let mut sim: BTreeMap<ContentHash, i128> = BTreeMap::new();
        for o in &txn.ops {
            if let Op::AdjustChunk { hash, delta, .. } = o {
                let base = backup_chunks
                    .iter()
                    .find(|(h, _)| h == hash)
                    .and_then(|(_, r)| r.map(|r| i128::from(r.refcount)))
                    .unwrap_or(0);
                let v = sim.entry(*hash).or_insert(base);
                *v += i128::from(*delta);
                if *v < 0 {
                    return Err(MetaError::RefcountUnderflow {
                        share: txn.share,
                        hash: *hash,
                        value: *v,
                    });
                }
            }
        }
        for o in txn.ops {
            s.apply(txn.share, o)?;
        }
        Ok(())
    }

    async fn sync(&self) -> MetaResult<()> {
        Ok(())
    }

    async fn scan_inodes(
        &self,
        share: ShareId,
        after: Option<Ino>,
        limit: usize,
    ) -> MetaResult<Vec<InodeRecord>> {
        let s = self.state.lock();
        let start = match after {
            Some(a) => Bound::Excluded((share, a)),
            None => Bound::Included((share, Ino(0))),
        };
        Ok(s.inodes
            .range((start, Bound::Included((share, Ino(u64::MAX)))))
            .take(limit)
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn scan_blocks(
        &self,
        share: ShareId,
        after: Option<Ino>,
        limit: usize,
    ) -> MetaResult<Vec<(Ino, Vec<BlockRef>)>> {
        let s = self.state.lock();
        let start = match after {
            Some(a) => Bound::Excluded((share, a)),
            None => Bound::Included((share, Ino(0))),
        };
        Ok(s.blocks
            .range((start, Bound::Included((share, Ino(u64::MAX)))))
            .take(limit)
            .map(|(k, v)| (k.1, v.clone()))
            .collect())
    }

    async fn scan_chunks(
        &self,
        share: ShareId,
        after: Option<ContentHash>,
        limit: usize,
    ) -> MetaResult<Vec<ChunkEntry>> {
        let s = self.state.lock();
        let start = match after {
            Some(a) => Bound::Excluded((share, a)),
            None => Bound::Included((share, ContentHash([0u8; 32]))),
        };
        Ok(s.chunks
            .range((start, Bound::Included((share, ContentHash([0xffu8; 32])))))
            .take(limit)
            .map(|(k, v)| (k.1, *v))
            .collect())
    }

    async fn get_chunk(&self, share: ShareId, hash: ContentHash) -> MetaResult<Option<ChunkRow>> {
        Ok(self.state.lock().chunks.get(&(share, hash)).copied())
    }

    async fn list_orphans(&self, share: ShareId) -> MetaResult<Vec<Ino>> {
        Ok(self
            .state
            .lock()
            .orphans
            .iter()
            .filter(|k| k.0 == share)
            .map(|k| k.1)
            .collect())
    }

    async fn get_aux(&self, share: ShareId, key: &[u8]) -> MetaResult<Option<Vec<u8>>> {
        Ok(self.state.lock().aux.get(&(share, key.to_vec())).cloned())
    }

    async fn scan_aux(
        &self,
        share: ShareId,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> MetaResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let s = self.state.lock();
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded((share, a.to_vec())),
            _ => Bound::Included((share, prefix.to_vec())),
        };
        Ok(s.aux
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.0 == share && k.1.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.1.clone(), v.clone()))
            .collect())
    }

    async fn close(&self) -> MetaResult<()> {
        Ok(())
    }
}
