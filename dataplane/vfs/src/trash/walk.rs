//! Walks of the recycle bin and the permanent deletes built on them: the breadth-first
//! walk of `#recycle` ([`Node`]s, with sizes), the item tree the reaper works on
//! ([`Tree`]), the records, and the purge of a subtree bottom-up through the ordinary
//! unlink (chunk references, open-file orphans and records are released as for any
//! delete).

use crate::cred::Credentials;
use crate::error::{FsError, FsResult};
use crate::fs::Fs;
use crate::ops_ns::Internal;
use crate::recycle::{PAGE, RECORD_PREFIX, TrashRecord, ino_of_record_key, record_key};
use dittofs_metadata::record::decode;
use dittofs_metadata::{DirEntry, Op, Txn};
use dittofs_types::{FileType, Ino};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Records deleted per transaction.
const DELETE_BATCH: usize = 512;

/// One object met by a walk of the bin.
pub(super) struct Node {
    /// Index of the containing node; `None`: directly in `#recycle`.
    pub(super) parent: Option<usize>,
    pub(super) dir: Ino,
    pub(super) name: Vec<u8>,
    pub(super) ino: Ino,
    pub(super) kind: FileType,
    /// Regular files: size; others 0.
    pub(super) size: u64,
    /// Path below `#recycle`.
    pub(super) path: Vec<u8>,
}

/// A walk of the bin plus the reaper's bookkeeping.
pub(super) struct Tree {
    pub(super) nodes: Vec<Node>,
    pub(super) children: Vec<Vec<usize>>,
    pub(super) removed: Vec<bool>,
    /// Has a record (is an item).
    pub(super) item: Vec<bool>,
}

impl Tree {
    pub(super) fn new(nodes: Vec<Node>, records: &BTreeMap<Ino, TrashRecord>) -> Tree {
        let n = nodes.len();
        let mut children = vec![Vec::new(); n];
        for (i, node) in nodes.iter().enumerate() {
            if let Some(p) = node.parent {
                children[p].push(i);
            }
        }
        let item = nodes.iter().map(|n| records.contains_key(&n.ino)).collect();
        Tree {
            nodes,
            children,
            removed: vec![false; n],
            item,
        }
    }

    pub(super) fn subtree(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            out.push(j);
            stack.extend(self.children[j].iter().copied());
        }
        out
    }

    /// Sum of the sizes of the live nodes of the subtree of `i`.
    pub(super) fn bytes(&self, i: usize) -> u64 {
        self.subtree(i)
            .into_iter()
            .filter(|&j| !self.removed[j])
            .map(|j| self.nodes[j].size)
            .sum()
    }

    pub(super) fn total_bytes(&self) -> u64 {
        (0..self.nodes.len())
            .filter(|&j| !self.removed[j])
            .map(|j| self.nodes[j].size)
            .sum()
    }

    /// Marks the subtree of `i` removed; returns the bytes that were still live.
    pub(super) fn remove(&mut self, i: usize) -> u64 {
        let mut freed = 0;
        for j in self.subtree(i) {
            if !self.removed[j] {
                self.removed[j] = true;
                freed += self.nodes[j].size;
            }
        }
        freed
    }

    /// Whether a live item lies strictly below `i`.
    pub(super) fn has_item_below(&self, i: usize) -> bool {
        self.subtree(i)
            .into_iter()
            .any(|j| j != i && !self.removed[j] && self.item[j])
    }

    /// The maximal live subtrees below `i` holding no item: what belongs to `i` alone.
    pub(super) fn owned_roots(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.children[i].clone();
        while let Some(c) = stack.pop() {
            if self.removed[c] || self.item[c] {
                continue;
            }
            if self.has_item_below(c) {
                stack.extend(self.children[c].iter().copied());
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl Fs {
    /// Every entry of directory `dir`.
    pub(super) async fn list_dir(&self, dir: Ino) -> FsResult<Vec<DirEntry>> {
        let mut out: Vec<DirEntry> = Vec::new();
        let mut cookie = 0;
        loop {
            let page = self.store.read_dir(self.share, dir, cookie, PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            cookie = last.cookie;
            out.extend(page);
        }
    }

    /// Walks `#recycle` breadth-first. `None`: no bin directory.
    pub(super) async fn walk_bin(&self) -> FsResult<Option<Vec<Node>>> {
        let Some(bin) = self.bin_root_ino().await? else {
            return Ok(None);
        };
        let mut nodes: Vec<Node> = Vec::new();
        let mut queue: VecDeque<(Ino, Option<usize>)> = VecDeque::from([(bin, None)]);
        let mut seen: HashSet<Ino> = HashSet::from([bin]);
        while let Some((dir, parent)) = queue.pop_front() {
            for e in self.list_dir(dir).await? {
                let Some(rec) = self.store.get_inode(self.share, e.ino).await? else {
                    continue;
                };
                let size = if rec.kind == FileType::Regular {
                    self.attr_of(&rec).size
                } else {
                    0
                };
                let path = match parent {
                    Some(p) => {
                        let mut path = nodes[p].path.clone();
                        path.push(b'/');
                        path.extend_from_slice(&e.name);
                        path
                    }
                    None => e.name.clone(),
                };
                let idx = nodes.len();
                if rec.kind == FileType::Directory && seen.insert(e.ino) {
                    queue.push_back((e.ino, Some(idx)));
                }
                nodes.push(Node {
                    parent,
                    dir,
                    name: e.name,
                    ino: e.ino,
                    kind: rec.kind,
                    size,
                    path,
                });
            }
        }
        Ok(Some(nodes))
    }

    /// Every record of the share (undecodable ones are skipped with a warning).
    pub(super) async fn load_records(&self) -> FsResult<BTreeMap<Ino, TrashRecord>> {
        let mut out = BTreeMap::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .store
                .scan_aux(self.share, RECORD_PREFIX, after.as_deref(), PAGE)
                .await?;
            let Some((last, _)) = page.last() else {
                return Ok(out);
            };
            after = Some(last.clone());
            for (k, v) in page {
                let Some(ino) = ino_of_record_key(&k) else {
                    continue;
                };
                match decode::<TrashRecord>("trash record", &v) {
                    Ok(r) => {
                        out.insert(ino, r);
                    }
                    Err(e) => {
                        tracing::warn!(share = %self.name, %ino, "ignoring recycle-bin record: {e}")
                    }
                }
            }
        }
    }

    /// Deletes the records of `inos` (absent ones are fine).
    pub(super) async fn delete_records(&self, inos: &[Ino]) -> FsResult<()> {
        for batch in inos.chunks(DELETE_BATCH) {
            let mut t = Txn::new(self.share);
            for ino in batch {
                t.op(Op::DeleteAux {
                    key: record_key(*ino),
                });
            }
            self.commit(t).await?;
        }
        Ok(())
    }

    /// The inodes of the subtree of directory `dir` (inclusive).
    pub(super) async fn subtree_inos(&self, dir: Ino) -> FsResult<Vec<Ino>> {
        let mut out = vec![dir];
        let mut queue = VecDeque::from([dir]);
        let mut seen = HashSet::from([dir]);
        while let Some(d) = queue.pop_front() {
            for e in self.list_dir(d).await? {
                out.push(e.ino);
                if e.kind == FileType::Directory && seen.insert(e.ino) {
                    queue.push_back(e.ino);
                }
            }
        }
        Ok(out)
    }

    /// Permanently deletes `dir/name` (inode `ino`) and everything below it, bottom-up,
    /// through the normal unlink (chunk references, open-file orphans, records).
    pub(super) async fn purge_tree(
        &self,
        dir: Ino,
        name: &[u8],
        ino: Ino,
        is_dir: bool,
    ) -> FsResult<()> {
        let root = Credentials::root();
        // (dir, name, ino, is_dir, children already pushed, NotEmpty retries)
        let mut stack: Vec<(Ino, Vec<u8>, Ino, bool, bool, u8)> =
            vec![(dir, name.to_vec(), ino, is_dir, false, 0)];
        while let Some((d, n, i, is_dir, expanded, retries)) = stack.pop() {
            if is_dir && !expanded {
                let children = match self.list_dir(i).await {
                    Ok(c) => c,
                    Err(FsError::NoEnt | FsError::Stale) => continue,
                    Err(e) => return Err(e),
                };
                stack.push((d, n, i, true, true, retries));
                for e in children {
                    stack.push((i, e.name, e.ino, e.kind == FileType::Directory, false, 0));
                }
                continue;
            }
            match self
                .unlink_common(&root, d, &n, is_dir, Internal::Expect(i))
                .await
            {
                Ok(()) | Err(FsError::NoEnt | FsError::Stale) => {}
                // Something was added meanwhile: list again.
                Err(FsError::NotEmpty) if retries < 3 => {
                    stack.push((d, n, i, true, false, retries + 1));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Purges item `i` of `tree` (the reaper's expiry/eviction): the whole subtree, or,
    /// when younger items lie inside a directory item, only what is not theirs (the
    /// directory then becomes scaffolding). Prunes emptied scaffolding above it.
    /// Returns the bytes freed.
    pub(super) async fn purge_item(&self, tree: &mut Tree, i: usize) -> FsResult<u64> {
        let mut freed = 0;
        if tree.has_item_below(i) {
            for r in tree.owned_roots(i) {
                let n = &tree.nodes[r];
                self.purge_tree(n.dir, &n.name, n.ino, n.kind == FileType::Directory)
                    .await?;
                freed += tree.remove(r);
            }
            self.delete_records(&[tree.nodes[i].ino]).await?;
            tree.item[i] = false;
        } else {
            let n = &tree.nodes[i];
            self.purge_tree(n.dir, &n.name, n.ino, n.kind == FileType::Directory)
                .await?;
            freed += tree.remove(i);
            tree.item[i] = false;
        }
        self.prune_scaffolding(tree, tree.nodes[i].parent).await?;
        Ok(freed)
    }

    /// Removes empty scaffolding directories (no record) from `start` upwards (not
    /// `#recycle` itself).
    pub(super) async fn prune_scaffolding(
        &self,
        tree: &mut Tree,
        start: Option<usize>,
    ) -> FsResult<()> {
        let mut cur = start;
        while let Some(p) = cur {
            let n = &tree.nodes[p];
            if tree.removed[p] || tree.item[p] || n.kind != FileType::Directory {
                return Ok(());
            }
            if !self.store.dir_is_empty(self.share, n.ino).await? {
                return Ok(());
            }
            match self
                .unlink_common(
                    &Credentials::root(),
                    n.dir,
                    &n.name,
                    true,
                    Internal::Expect(n.ino),
                )
                .await
            {
                Ok(()) => {
                    tree.removed[p] = true;
                }
                Err(FsError::NoEnt | FsError::NotEmpty | FsError::Stale) => return Ok(()),
                Err(e) => return Err(e),
            }
            cur = tree.nodes[p].parent;
        }
        Ok(())
    }
}
