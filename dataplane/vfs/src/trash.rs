//! The per-share recycle bin: `#recycle` at the share root.
//!
//! # Behaviour
//!
//! Opt-in per share ([`TrashPolicy::enabled`]). While it is on, REMOVE and RMDIR
//! ([`Fs::remove`], [`Fs::rmdir`]) and the replacement of an existing target by RENAME
//! (a non-directory, or an empty directory) *move* the victim into `#recycle` instead of
//! destroying it. The victim keeps its inode, block list and chunk references, so GC keeps
//! its content until the bin lets go of it. Users browse `#recycle` like any directory and
//! may restore by moving an item back out; administrators use [`Fs::trash_list`],
//! [`Fs::trash_restore`], [`Fs::trash_status`], [`Fs::trash_empty`] and the hourly
//! [`Fs::trash_reap`] (retention days, size cap). Not recycled: in-place truncation and
//! overwrites of content, deletions inside the bin, names matching an exclude glob, and
//! everything on a share whose bin is off.
//!
//! # Layout
//!
//! The bin mirrors the original path: deleting `/a/b/file` moves it to
//! `#recycle/a/b/file`. `#recycle` itself is created on demand (mode 01777, owner 0:0);
//! the intermediate "scaffolding" directories copy mode and owner of the original
//! directories (created in their own idempotent transactions before the move). A taken
//! name gets a suffix before the extension: `report (2).txt`, `report (3).txt`, ... (after
//! 1000 tries `report (ino N).txt`). A scaffolding component taken by a non-directory is
//! skipped the same way (`a (2)/...`). An emptied directory whose mirror already exists
//! (the `rm -rf` pattern: children first, then the directory) is simply deleted: its
//! mirror already holds what it contained.
//!
//! # Records
//!
//! Every recycled object (an *item*) has a record in the share's auxiliary key space
//! ([`dittofs_metadata::Op::PutAux`]): key `b"trash/" ++ ino u64 BE`, value postcard of
//! `{original_path bytes, deleted_at, size at deletion}`. Scaffolding directories have no
//! record and are not items.
//!
//! # Invariants
//!
//! - The move is ONE transaction: entry out of the source directory, entry into the bin
//!   directory, nlink/parent/ctime/mtime of both directories and the victim, and the
//!   record. Its checks pin the source directory, the victim, the bin directory and the
//!   absence of the chosen name, exactly like the other namespace operations. A replaced
//!   rename target is recycled inside the rename's own transaction, so the target name
//!   never disappears for an observer.
//! - Permission checks are exactly those of the user's unlink/rename: the locked part of
//!   the operation runs all of them first and only then asks for a plan (which creates
//!   scaffolding, outside the locks) and runs again with it, so a refused delete leaves
//!   nothing in the bin. Placing the victim into the bin is internal and checks nothing
//!   on bin directories.
//! - A record never outlives the inode's last name: every permanent unlink of a last link
//!   deletes the inode's record in the same transaction. A record whose inode is no longer
//!   inside the bin (restored by a user rename across directories takes its record along;
//!   other moves leave it behind) is *stale*: not listed, deleted by the reaper.
//! - The user's delete is never lost: when the bin cannot take the victim (`#recycle` is
//!   not a directory, the bin directory kept vanishing, link limit), the delete proceeds
//!   permanently with a warning.
//! - `#recycle` at the root may not be renamed, replaced or removed while the bin is on,
//!   except RMDIR of an empty one.
//!
//! # Sizes
//!
//! Computed when listing/reaping, from the walk of the bin: a file's size (including
//! unflushed writes), a directory's is the sum of the regular files below it. The bin's
//! total ([`TrashStatus::bytes`], compared with [`TrashPolicy::max_size`]) is the sum over
//! all regular files inside `#recycle`. Expiring or evicting a directory item that holds
//! younger items removes only what is not theirs and turns the directory into
//! scaffolding.

use crate::attr::SetAttr;
use crate::cred::Credentials;
use crate::error::{FsError, FsResult};
use crate::fs::{Fs, LINK_MAX, NAME_MAX, touch};
use crate::ops_ns::{Internal, NewKind};
use dittofs_metadata::record::{decode, encode};
use dittofs_metadata::{Check, DirEntry, InodeRecord, Op, Txn};
use dittofs_types::{FileType, Ino, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;

/// Name of the recycle bin directory at the share root.
pub const TRASH_DIR: &str = "#recycle";
/// Prefix of the recycle-bin records in the auxiliary key space.
const RECORD_PREFIX: &[u8] = b"trash/";
/// Mode of `#recycle` (world-writable, sticky: users only remove their own items).
const BIN_MODE: u32 = 0o1777;
/// Mode of directories created without a model (original gone).
const DEFAULT_DIR_MODE: u32 = 0o755;
/// Suffixes ` (2)` .. ` (MAX_SUFFIX)` are tried before ` (ino N)`.
const MAX_SUFFIX: u32 = 1000;
/// Directory page size of the walks.
const PAGE: usize = 1024;
/// Records deleted per transaction.
const DELETE_BATCH: usize = 512;
/// Bound of parent-chain walks (a corrupt chain must not loop forever).
const MAX_DEPTH: usize = 100_000;
/// Cap of the directory-name hint cache.
const MAX_NAME_HINTS: usize = 65_536;
const SECS_PER_DAY: i64 = 86_400;

/// Recycle-bin policy of a share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrashPolicy {
    pub enabled: bool,
    /// Items deleted more than this many days ago are purged by [`Fs::trash_reap`];
    /// 0 = keep forever.
    pub retention_days: u32,
    /// Cap of the bin's total size in bytes, oldest items evicted first; 0 = unbounded.
    pub max_size: u64,
    /// Globs matched against a victim's name and its share-relative path (no leading
    /// `/`; directories also as `path/`); a match deletes permanently. `*` does not
    /// cross `/`, `**` does: `*.tmp`, `build/**`.
    pub exclude: Vec<String>,
}

/// One recycled object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashItem {
    /// Where it is now: `#recycle/dir/file`.
    pub path: String,
    /// Where it was deleted from: `/dir/file`.
    pub original_path: String,
    pub kind: FileType,
    /// Bytes: the file's size, or the sum of the regular files below a directory.
    pub size: u64,
    pub deleted_at: Timestamp,
}

/// Summary of a share's bin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashStatus {
    pub policy: TrashPolicy,
    /// Number of items (recycled objects still inside the bin).
    pub items: u64,
    /// Sum of the sizes of all regular files inside `#recycle`.
    pub bytes: u64,
    /// Deletion time of the oldest item.
    pub oldest: Option<Timestamp>,
}

/// What one [`Fs::trash_reap`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReapReport {
    /// Items purged for being older than the retention.
    pub expired: u64,
    /// Items purged to bring the bin under its size cap.
    pub evicted: u64,
    /// Bytes of the regular files purged.
    pub bytes_freed: u64,
}

/// The stored record of an item (postcard; field order is the format).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TrashRecord {
    original_path: Vec<u8>,
    deleted_at: Timestamp,
    /// Size at deletion (informational: listings compute sizes afresh).
    size: u64,
}

/// Auxiliary key of the record of `ino`.
pub(crate) fn record_key(ino: Ino) -> Vec<u8> {
    let mut k = Vec::with_capacity(RECORD_PREFIX.len() + 8);
    k.extend_from_slice(RECORD_PREFIX);
    k.extend_from_slice(&ino.0.to_be_bytes());
    k
}

fn ino_of_record_key(k: &[u8]) -> Option<Ino> {
    let tail = k.strip_prefix(RECORD_PREFIX)?;
    let b: [u8; 8] = tail.try_into().ok()?;
    Some(Ino(u64::from_be_bytes(b)))
}

/// Compiles the exclude globs of a policy; a bad glob is an [`FsError::InvalidArgument`].
pub(crate) fn compile_excludes(share: &str, globs: &[String]) -> FsResult<globset::GlobSet> {
    let mut b = globset::GlobSetBuilder::new();
    for g in globs {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                FsError::InvalidArgument(format!("share {share}: trash exclude glob {g:?}: {e}"))
            })?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| FsError::InvalidArgument(format!("share {share}: trash exclude globs: {e}")))
}

fn excluded(set: &globset::GlobSet, name: &[u8], rel: &[u8], is_dir: bool) -> bool {
    if set.is_empty() {
        return false;
    }
    let name = String::from_utf8_lossy(name);
    let rel = String::from_utf8_lossy(rel);
    set.is_match(name.as_ref())
        || set.is_match(rel.as_ref())
        || (is_dir && set.is_match(format!("{rel}/")))
}

/// `name` with ` (tag)` inserted before the extension (files only; a leading dot is not
/// an extension), shortened to fit [`NAME_MAX`].
fn suffixed(name: &[u8], tag: &str, is_dir: bool) -> Vec<u8> {
    let suffix = format!(" ({tag})");
    let split = if is_dir {
        None
    } else {
        name.iter()
            .rposition(|&c| c == b'.')
            .filter(|&i| i > 0 && name.len() - i <= 32)
    };
    let (stem, ext) = match split {
        Some(i) => name.split_at(i),
        None => (name, &[][..]),
    };
    let room = NAME_MAX.saturating_sub(suffix.len() + ext.len());
    let mut cut = stem.len().min(room);
    // Do not split a UTF-8 sequence when shortening.
    while cut > 0 && cut < stem.len() && (stem[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    let mut out = Vec::with_capacity(cut + suffix.len() + ext.len());
    out.extend_from_slice(&stem[..cut]);
    out.extend_from_slice(suffix.as_bytes());
    out.extend_from_slice(ext);
    out
}

fn invalid(msg: impl Into<String>) -> FsError {
    FsError::InvalidArgument(msg.into())
}

/// Splits a relative path into validated components (empty components are skipped).
fn components(rest: &[u8]) -> FsResult<Vec<Vec<u8>>> {
    if rest.contains(&0) {
        return Err(invalid("path contains NUL"));
    }
    if rest.first() == Some(&b'/') {
        return Err(invalid("absolute path"));
    }
    let mut out = Vec::new();
    for c in rest.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if c == b"." || c == b".." {
            return Err(invalid("'.' and '..' are not allowed in the path"));
        }
        if c.len() > NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        out.push(c.to_vec());
    }
    if out.is_empty() {
        return Err(invalid("empty path"));
    }
    Ok(out)
}

/// Components of an item path given with or without the leading `#recycle/`.
fn parse_bin_path(path: &str) -> FsResult<Vec<Vec<u8>>> {
    if path.contains('\0') {
        return Err(invalid("path contains NUL"));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed == TRASH_DIR || trimmed == format!("/{TRASH_DIR}") {
        return Err(invalid("the path names the recycle bin itself"));
    }
    let rest = if let Some(r) = path
        .strip_prefix(TRASH_DIR)
        .and_then(|r| r.strip_prefix('/'))
    {
        r
    } else if let Some(r) = path
        .strip_prefix('/')
        .and_then(|r| r.strip_prefix(TRASH_DIR))
        .and_then(|r| r.strip_prefix('/'))
    {
        r
    } else if path.starts_with('/') {
        return Err(invalid(format!(
            "{path:?} is outside the recycle bin (paths are relative to {TRASH_DIR})"
        )));
    } else {
        path
    };
    components(rest.as_bytes()).map_err(|e| match e {
        FsError::InvalidArgument(m) => invalid(format!("{path:?}: {m}")),
        other => other,
    })
}

/// Components of a share-relative destination path (`/a/b` or `a/b`), outside the bin.
fn parse_share_path(path: &[u8]) -> FsResult<Vec<Vec<u8>>> {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    let comps = components(&path[start..])?;
    if comps
        .first()
        .is_some_and(|c| c.as_slice() == TRASH_DIR.as_bytes())
    {
        return Err(invalid("the destination lies inside the recycle bin"));
    }
    Ok(comps)
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    out
}

fn display_path(comps: &[Vec<u8>]) -> String {
    format!("/{}", String::from_utf8_lossy(&join(comps)))
}

/// Where a victim goes: decided (and scaffolding created) before the operation locks.
#[derive(Clone, Debug)]
pub(crate) struct RecyclePlan {
    /// `#recycle`.
    pub(crate) bin_root: Ino,
    /// The mirror of the victim's directory inside the bin.
    pub(crate) bin_dir: Ino,
    /// The victim's name.
    pub(crate) name: Vec<u8>,
    /// `/a/b/name`.
    pub(crate) original_path: Vec<u8>,
}

/// The slot a victim takes in its bin directory (decided under the locks).
pub(crate) enum Slot {
    /// The bin directory is gone: plan again.
    Gone,
    /// Delete permanently (an empty directory whose mirror exists; link limit).
    Permanent,
    /// Move into the bin directory (as read) under this name.
    Free(Box<InodeRecord>, Vec<u8>),
}

/// One object met by a walk of the bin.
struct Node {
    /// Index of the containing node; `None`: directly in `#recycle`.
    parent: Option<usize>,
    dir: Ino,
    name: Vec<u8>,
    ino: Ino,
    kind: FileType,
    /// Regular files: size; others 0.
    size: u64,
    /// Path below `#recycle`.
    path: Vec<u8>,
}

/// A walk of the bin plus the reaper's bookkeeping.
struct Tree {
    nodes: Vec<Node>,
    children: Vec<Vec<usize>>,
    removed: Vec<bool>,
    /// Has a record (is an item).
    item: Vec<bool>,
}

impl Tree {
    fn new(nodes: Vec<Node>, records: &BTreeMap<Ino, TrashRecord>) -> Tree {
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

    fn subtree(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            out.push(j);
            stack.extend(self.children[j].iter().copied());
        }
        out
    }

    /// Sum of the sizes of the live nodes of the subtree of `i`.
    fn bytes(&self, i: usize) -> u64 {
        self.subtree(i)
            .into_iter()
            .filter(|&j| !self.removed[j])
            .map(|j| self.nodes[j].size)
            .sum()
    }

    fn total_bytes(&self) -> u64 {
        (0..self.nodes.len())
            .filter(|&j| !self.removed[j])
            .map(|j| self.nodes[j].size)
            .sum()
    }

    /// Marks the subtree of `i` removed; returns the bytes that were still live.
    fn remove(&mut self, i: usize) -> u64 {
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
    fn has_item_below(&self, i: usize) -> bool {
        self.subtree(i)
            .into_iter()
            .any(|j| j != i && !self.removed[j] && self.item[j])
    }

    /// The maximal live subtrees below `i` holding no item: what belongs to `i` alone.
    fn owned_roots(&self, i: usize) -> Vec<usize> {
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

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Fs {
    // ---- hooks of the namespace operations ----

    /// Whether `dir/name` is the bin's own entry at the share root.
    pub(crate) fn is_bin_entry(&self, dir: Ino, name: &[u8]) -> bool {
        dir == Ino::ROOT && name == TRASH_DIR.as_bytes()
    }

    /// Decides whether deleting `dir/name` (of type `kind`) recycles, and if so makes sure
    /// the bin directory mirroring `dir` exists. `None`: delete permanently (bin off,
    /// inside the bin, excluded, `#recycle` not a directory).
    pub(crate) async fn recycle_plan(
        &self,
        dir: Ino,
        name: &[u8],
        kind: FileType,
    ) -> FsResult<Option<RecyclePlan>> {
        let live = self.live();
        if !live.opts.trash.enabled || self.is_bin_entry(dir, name) {
            return Ok(None);
        }
        let chain = self.dir_chain(dir).await?;
        if chain
            .first()
            .is_some_and(|(n, _)| n.as_slice() == TRASH_DIR.as_bytes())
        {
            return Ok(None);
        }
        let mut rel = Vec::new();
        for (n, _) in &chain {
            rel.extend_from_slice(n);
            rel.push(b'/');
        }
        rel.extend_from_slice(name);
        if excluded(&live.exclude, name, &rel, kind == FileType::Directory) {
            return Ok(None);
        }
        let Some(bin_root) = self.ensure_bin_root().await? else {
            tracing::warn!(
                share = %self.name,
                path = %String::from_utf8_lossy(&rel),
                "{TRASH_DIR} is not a directory; deleting permanently"
            );
            return Ok(None);
        };
        let mut cur = bin_root;
        for (n, rec) in &chain {
            cur = match self.ensure_dir(cur, n, rec.mode, rec.uid, rec.gid).await {
                Ok(ino) => ino,
                // The bin cannot take it (link limit, no name left): never fail the delete.
                Err(e @ (FsError::MLink | FsError::NoSpc | FsError::ServerFault(_))) => {
                    tracing::warn!(
                        share = %self.name,
                        path = %String::from_utf8_lossy(&rel),
                        "recycle bin directory unavailable ({e}); deleting permanently"
                    );
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
        }
        let mut original_path = vec![b'/'];
        original_path.extend_from_slice(&rel);
        Ok(Some(RecyclePlan {
            bin_root,
            bin_dir: cur,
            name: name.to_vec(),
            original_path,
        }))
    }

    /// Under the operation's locks (which include `plan.bin_dir`): the name victim `v`
    /// takes in the bin directory.
    pub(crate) async fn bin_slot(&self, plan: &RecyclePlan, v: &InodeRecord) -> FsResult<Slot> {
        let bin = match self.store.get_inode(self.share, plan.bin_dir).await? {
            Some(b) if b.kind == FileType::Directory && b.nlink > 0 => b,
            _ => return Ok(Slot::Gone),
        };
        let is_dir = v.kind == FileType::Directory;
        if is_dir && bin.nlink >= LINK_MAX {
            tracing::warn!(share = %self.name, "recycle bin directory is full of directories; deleting permanently");
            return Ok(Slot::Permanent);
        }
        match self.store.lookup(self.share, bin.ino, &plan.name).await? {
            None => return Ok(Slot::Free(Box::new(bin), plan.name.clone())),
            // An empty directory whose mirror exists: the mirror already has it all.
            Some(e) if is_dir && e.kind == FileType::Directory => return Ok(Slot::Permanent),
            Some(_) => {}
        }
        let mut tags: Vec<String> = (2..=MAX_SUFFIX).map(|n| n.to_string()).collect();
        tags.push(format!("ino {}", v.ino.0));
        for _ in 0..8 {
            tags.push(format!("{:08x}", rand::random::<u32>()));
        }
        for tag in tags {
            let cand = suffixed(&plan.name, &tag, is_dir);
            if self
                .store
                .lookup(self.share, bin.ino, &cand)
                .await?
                .is_none()
            {
                return Ok(Slot::Free(Box::new(bin), cand));
            }
        }
        tracing::warn!(share = %self.name, "no free name in the recycle bin; deleting permanently");
        Ok(Slot::Permanent)
    }

    /// Adds to `t` the move of victim `v` into bin directory `bin` as `tname`: the entry,
    /// the victim's new parent/ctime, the bin directory's cookie/nlink (the caller pins
    /// and writes `bin` back, touched) and the record. The caller removes the victim's
    /// old entry.
    pub(crate) fn recycle_ops(
        &self,
        t: &mut Txn,
        bin: &mut InodeRecord,
        tname: &[u8],
        v: &mut InodeRecord,
        plan: &RecyclePlan,
        now: Timestamp,
    ) -> FsResult<()> {
        let cookie = bin.next_cookie;
        bin.next_cookie += 1;
        if v.kind == FileType::Directory {
            bin.nlink += 1;
            v.parent = bin.ino;
        }
        let size = if v.kind == FileType::Regular {
            self.attr_of(v).size
        } else {
            0
        };
        touch(v, now, false);
        t.check(Check::Dirent {
            dir: bin.ino,
            name: tname.to_vec(),
            ino: None,
        });
        t.op(Op::PutDirent {
            dir: bin.ino,
            entry: DirEntry {
                name: tname.to_vec(),
                ino: v.ino,
                kind: v.kind,
                cookie,
            },
        });
        t.op(Op::PutInode(v.clone()));
        let rec = TrashRecord {
            original_path: plan.original_path.clone(),
            deleted_at: now,
            size,
        };
        t.op(Op::PutAux {
            key: record_key(v.ino),
            value: encode(&rec)?,
        });
        Ok(())
    }

    /// Whether directory `dir` is `#recycle` or lies below it.
    pub(crate) async fn in_bin(&self, dir: Ino) -> FsResult<bool> {
        let Some(bin) = self.bin_root_ino().await? else {
            return Ok(false);
        };
        let mut cur = dir;
        for _ in 0..MAX_DEPTH {
            if cur == bin {
                return Ok(true);
            }
            if cur == Ino::ROOT {
                return Ok(false);
            }
            cur = match self.store.get_inode(self.share, cur).await? {
                Some(r) if r.kind == FileType::Directory => r.parent,
                _ => return Ok(false),
            };
        }
        Err(FsError::ServerFault(
            "directory parent chain too deep or cyclic".into(),
        ))
    }

    // ---- paths and scaffolding ----

    /// The directories from the root (exclusive) down to `dir` (inclusive), with their
    /// names. A directory renamed meanwhile is looked up again (a few times, then
    /// `Jukebox`: the client retries).
    async fn dir_chain(&self, dir: Ino) -> FsResult<Vec<(Vec<u8>, InodeRecord)>> {
        let mut out = Vec::new();
        let mut cur = dir;
        for _ in 0..MAX_DEPTH {
            if cur == Ino::ROOT {
                out.reverse();
                return Ok(out);
            }
            let mut found = None;
            for _ in 0..3 {
                let rec = self.inode(cur).await?;
                if rec.kind != FileType::Directory {
                    return Err(FsError::NotDir);
                }
                match self.name_in_dir(rec.parent, cur).await {
                    Ok(name) => {
                        found = Some((name, rec));
                        break;
                    }
                    Err(FsError::NoEnt) => {}
                    Err(e) => return Err(e),
                }
            }
            let (name, rec) = found.ok_or(FsError::Jukebox)?;
            cur = rec.parent;
            out.push((name, rec));
        }
        Err(FsError::ServerFault(
            "directory parent chain too deep or cyclic".into(),
        ))
    }

    /// The name of directory `child` in `parent`: a verified hint, else a scan of
    /// `parent` (which records hints for every subdirectory it passes).
    async fn name_in_dir(&self, parent: Ino, child: Ino) -> FsResult<Vec<u8>> {
        let hint = self.dir_names.lock().get(&child).cloned();
        if let Some((p, n)) = hint
            && p == parent
            && self
                .store
                .lookup(self.share, parent, &n)
                .await?
                .is_some_and(|e| e.ino == child)
        {
            return Ok(n);
        }
        let mut cookie = 0;
        loop {
            let page = self
                .store
                .read_dir(self.share, parent, cookie, PAGE)
                .await?;
            let Some(last) = page.last() else {
                return Err(FsError::NoEnt);
            };
            cookie = last.cookie;
            let mut found = None;
            {
                let mut hints = self.dir_names.lock();
                if hints.len() > MAX_NAME_HINTS {
                    hints.clear();
                }
                for e in page {
                    if e.kind != FileType::Directory {
                        continue;
                    }
                    if e.ino == child {
                        found = Some(e.name.clone());
                    }
                    hints.insert(e.ino, (parent, e.name));
                }
            }
            if let Some(n) = found {
                return Ok(n);
            }
        }
    }

    /// `#recycle` if it exists as a directory.
    async fn bin_root_ino(&self) -> FsResult<Option<Ino>> {
        Ok(self
            .store
            .lookup(self.share, Ino::ROOT, TRASH_DIR.as_bytes())
            .await?
            .filter(|e| e.kind == FileType::Directory)
            .map(|e| e.ino))
    }

    /// `#recycle`, created if missing; `None` if the name is taken by a non-directory.
    async fn ensure_bin_root(&self) -> FsResult<Option<Ino>> {
        for _ in 0..4 {
            match self
                .store
                .lookup(self.share, Ino::ROOT, TRASH_DIR.as_bytes())
                .await?
            {
                Some(e) if e.kind == FileType::Directory => return Ok(Some(e.ino)),
                Some(_) => return Ok(None),
                None => match self
                    .mkdir_internal(Ino::ROOT, TRASH_DIR.as_bytes(), BIN_MODE, 0, 0)
                    .await
                {
                    Ok(ino) => return Ok(Some(ino)),
                    Err(FsError::Exist) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Err(FsError::Jukebox)
    }

    /// A directory `name` (or `name (2)`, ... when taken by a non-directory) in `parent`,
    /// created with the given mode/owner if missing.
    async fn ensure_dir(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<Ino> {
        let mut n = 1u32;
        let mut races = 0;
        while n <= MAX_SUFFIX {
            let cand = if n == 1 {
                name.to_vec()
            } else {
                suffixed(name, &n.to_string(), true)
            };
            match self.store.lookup(self.share, parent, &cand).await? {
                Some(e) if e.kind == FileType::Directory => return Ok(e.ino),
                Some(_) => n += 1,
                None => match self.mkdir_internal(parent, &cand, mode, uid, gid).await {
                    Ok(ino) => return Ok(ino),
                    Err(FsError::Exist) if races < 4 => races += 1,
                    Err(e) => return Err(e),
                },
            }
        }
        Err(FsError::ServerFault(
            "no free directory name in the recycle bin".into(),
        ))
    }

    /// MKDIR as root with the given mode and owner (no permission checks).
    async fn mkdir_internal(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<Ino> {
        let sa = SetAttr {
            uid: Some(uid),
            gid: Some(gid),
            ..Default::default()
        };
        let a = self
            .make_node(&Credentials::root(), parent, name, NewKind::Dir, mode, &sa)
            .await?;
        Ok(a.ino)
    }

    // ---- walks and records ----

    /// Every entry of directory `dir`.
    async fn list_dir(&self, dir: Ino) -> FsResult<Vec<DirEntry>> {
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
    async fn walk_bin(&self) -> FsResult<Option<Vec<Node>>> {
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
    async fn load_records(&self) -> FsResult<BTreeMap<Ino, TrashRecord>> {
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
    async fn delete_records(&self, inos: &[Ino]) -> FsResult<()> {
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
    async fn subtree_inos(&self, dir: Ino) -> FsResult<Vec<Ino>> {
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
    async fn purge_tree(&self, dir: Ino, name: &[u8], ino: Ino, is_dir: bool) -> FsResult<()> {
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

    /// Empties the bin (the caller holds `trash_admin`): everything below `#recycle` is
    /// deleted permanently, then the records that existed before; `remove_root` also
    /// removes `#recycle`. Returns (items, bytes) as walked before deleting.
    pub(crate) async fn empty_bin_locked(&self, remove_root: bool) -> FsResult<(u64, u64)> {
        let records = self.load_records().await?;
        let Some(nodes) = self.walk_bin().await? else {
            let inos: Vec<Ino> = records.keys().copied().collect();
            self.delete_records(&inos).await?;
            return Ok((0, 0));
        };
        let items = nodes
            .iter()
            .filter(|n| records.contains_key(&n.ino))
            .count() as u64;
        let bytes: u64 = nodes.iter().map(|n| n.size).sum();
        for n in nodes.iter().filter(|n| n.parent.is_none()) {
            self.purge_tree(n.dir, &n.name, n.ino, n.kind == FileType::Directory)
                .await?;
        }
        if remove_root && let Some(bin) = self.bin_root_ino().await? {
            match self
                .unlink_common(
                    &Credentials::root(),
                    Ino::ROOT,
                    TRASH_DIR.as_bytes(),
                    true,
                    Internal::Expect(bin),
                )
                .await
            {
                Ok(()) | Err(FsError::NoEnt) => {}
                Err(FsError::NotEmpty) => {
                    tracing::warn!(share = %self.name, "{TRASH_DIR} filled up again while it was emptied; kept")
                }
                Err(e) => return Err(e),
            }
        }
        let inos: Vec<Ino> = records.keys().copied().collect();
        self.delete_records(&inos).await?;
        Ok((items, bytes))
    }

    /// Purges item `i` of `tree` (the reaper's expiry/eviction): the whole subtree, or,
    /// when younger items lie inside a directory item, only what is not theirs (the
    /// directory then becomes scaffolding). Prunes emptied scaffolding above it.
    /// Returns the bytes freed.
    async fn purge_item(&self, tree: &mut Tree, i: usize) -> FsResult<u64> {
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
    async fn prune_scaffolding(&self, tree: &mut Tree, start: Option<usize>) -> FsResult<()> {
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

    // ---- the administrative API ----

    /// The items in the bin (recycled objects that are still inside it), oldest first
    /// (then by path), at most `limit`; `true` when more exist.
    pub async fn trash_list(&self, limit: usize) -> FsResult<(Vec<TrashItem>, bool)> {
        let records = self.load_records().await?;
        let Some(nodes) = self.walk_bin().await? else {
            return Ok((Vec::new(), false));
        };
        let tree = Tree::new(nodes, &records);
        let mut items: Vec<TrashItem> = Vec::new();
        for (i, n) in tree.nodes.iter().enumerate() {
            let Some(rec) = records.get(&n.ino) else {
                continue;
            };
            items.push(TrashItem {
                path: format!("{TRASH_DIR}/{}", String::from_utf8_lossy(&n.path)),
                original_path: String::from_utf8_lossy(&rec.original_path).into_owned(),
                kind: n.kind,
                size: tree.bytes(i),
                deleted_at: rec.deleted_at,
            });
        }
        items.sort_by(|a, b| (a.deleted_at, &a.path).cmp(&(b.deleted_at, &b.path)));
        let truncated = items.len() > limit;
        items.truncate(limit);
        Ok((items, truncated))
    }

    /// Policy, number of items, total bytes in `#recycle` and the oldest deletion time.
    pub async fn trash_status(&self) -> FsResult<TrashStatus> {
        let policy = self.live().opts.trash.clone();
        let records = self.load_records().await?;
        let nodes = self.walk_bin().await?.unwrap_or_default();
        let mut items = 0;
        let mut oldest: Option<Timestamp> = None;
        for n in &nodes {
            if let Some(r) = records.get(&n.ino) {
                items += 1;
                oldest = Some(oldest.map_or(r.deleted_at, |o| o.min(r.deleted_at)));
            }
        }
        Ok(TrashStatus {
            policy,
            items,
            bytes: nodes.iter().map(|n| n.size).sum(),
            oldest,
        })
    }

    /// Permanently deletes everything in the bin and every record; `#recycle` stays
    /// (empty). Returns (items, bytes) that were in the bin.
    pub async fn trash_empty(&self) -> FsResult<(u64, u64)> {
        let _admin = self.trash_admin.lock().await;
        self.empty_bin_locked(false).await
    }

    /// Restores the item at `path` (`#recycle/a/b`, `/#recycle/a/b` or `a/b`) to `to`
    /// (share-relative, e.g. `/a/b`), or to its recorded original path (an object
    /// without a record, such as scaffolding, goes to its mirrored path). Missing parent
    /// directories are created (mode and owner from the bin's mirror directories, else
    /// 0755 root). An existing directory at the destination is merged into recursively;
    /// an existing non-directory is replaced only with `overwrite` (and is itself
    /// recycled); otherwise [`FsError::Exist`]. Returns the restored path (`/a/b`).
    ///
    /// Hostile paths (NUL, `..`, absolute outside `#recycle`, a destination inside the
    /// bin) are [`FsError::InvalidArgument`]; a missing item is [`FsError::NoEnt`].
    pub async fn trash_restore(
        &self,
        path: &str,
        to: Option<&str>,
        overwrite: bool,
    ) -> FsResult<String> {
        let comps = parse_bin_path(path)?;
        let dest_override = match to {
            Some(t) => Some(parse_share_path(t.as_bytes())?),
            None => None,
        };
        let _admin = self.trash_admin.lock().await;
        let bin = self.bin_root_ino().await?.ok_or(FsError::NoEnt)?;
        let Some((name, dirs)) = comps.split_last() else {
            return Err(invalid("empty path"));
        };
        let mut src_dir = bin;
        for c in dirs {
            match self.store.lookup(self.share, src_dir, c).await? {
                Some(e) if e.kind == FileType::Directory => src_dir = e.ino,
                _ => return Err(FsError::NoEnt),
            }
        }
        let item = self
            .store
            .lookup(self.share, src_dir, name)
            .await?
            .ok_or(FsError::NoEnt)?;
        let record = match self
            .store
            .get_aux(self.share, &record_key(item.ino))
            .await?
        {
            Some(v) => decode::<TrashRecord>("trash record", &v).ok(),
            None => None,
        };
        let dest = match dest_override {
            Some(d) => d,
            None => record
                .and_then(|r| parse_share_path(&r.original_path).ok())
                .unwrap_or_else(|| comps.clone()),
        };
        let (dest_name, _) = dest.split_last().ok_or_else(|| invalid("empty path"))?;
        let dest_dir = self.restore_parents(&dest).await?;
        let nested = if item.kind == FileType::Directory {
            let records = self.load_records().await?;
            self.subtree_inos(item.ino)
                .await?
                .into_iter()
                .filter(|i| records.contains_key(i))
                .collect()
        } else {
            Vec::new()
        };
        let root = Credentials::root();
        match self.store.lookup(self.share, dest_dir, dest_name).await? {
            None => {
                self.rename_inner(&root, src_dir, name, dest_dir, dest_name, true)
                    .await?
            }
            Some(x) => match (
                item.kind == FileType::Directory,
                x.kind == FileType::Directory,
            ) {
                (true, true) => {
                    if !overwrite {
                        self.merge_conflicts(item.ino, x.ino).await?;
                    }
                    self.merge_dir(src_dir, name.clone(), item.ino, x.ino, overwrite)
                        .await?;
                }
                (false, false) if overwrite => {
                    self.rename_inner(&root, src_dir, name, dest_dir, dest_name, true)
                        .await?
                }
                _ => return Err(FsError::Exist),
            },
        }
        self.delete_records(&nested).await?;
        Ok(display_path(&dest))
    }

    /// Makes sure the parent directories of `dest` exist; returns the last one.
    async fn restore_parents(&self, dest: &[Vec<u8>]) -> FsResult<Ino> {
        let mut cur = Ino::ROOT;
        let mut mirror = self.bin_root_ino().await?;
        let parents = dest.split_last().map(|(_, p)| p).unwrap_or_default();
        for c in parents {
            mirror = match mirror {
                Some(m) => self
                    .store
                    .lookup(self.share, m, c)
                    .await?
                    .filter(|e| e.kind == FileType::Directory)
                    .map(|e| e.ino),
                None => None,
            };
            cur = match self.store.lookup(self.share, cur, c).await? {
                Some(e) if e.kind == FileType::Directory => e.ino,
                Some(_) => return Err(FsError::NotDir),
                None => {
                    let (mode, uid, gid) = match mirror {
                        Some(m) => {
                            let r = self.inode(m).await?;
                            (r.mode, r.uid, r.gid)
                        }
                        None => (DEFAULT_DIR_MODE, 0, 0),
                    };
                    match self.mkdir_internal(cur, c, mode, uid, gid).await {
                        Ok(ino) => ino,
                        Err(FsError::Exist) => match self.store.lookup(self.share, cur, c).await? {
                            Some(e) if e.kind == FileType::Directory => e.ino,
                            _ => return Err(FsError::NotDir),
                        },
                        Err(e) => return Err(e),
                    }
                }
            };
        }
        Ok(cur)
    }

    /// `Exist` if merging directory `src` into `dst` would have to replace something.
    async fn merge_conflicts(&self, src: Ino, dst: Ino) -> FsResult<()> {
        let mut pairs = vec![(src, dst)];
        while let Some((s, d)) = pairs.pop() {
            for c in self.list_dir(s).await? {
                match self.store.lookup(self.share, d, &c.name).await? {
                    None => {}
                    Some(x) if x.kind == FileType::Directory && c.kind == FileType::Directory => {
                        pairs.push((c.ino, x.ino));
                    }
                    Some(_) => return Err(FsError::Exist),
                }
            }
        }
        Ok(())
    }

    /// Moves the children of bin directory `s_ino` (named `s_name` in `s_parent`) into
    /// directory `d_ino` one by one, merging subdirectories, then removes `s_ino` if it
    /// ended up empty (recycled victims of `overwrite` stay in it).
    fn merge_dir(
        &self,
        s_parent: Ino,
        s_name: Vec<u8>,
        s_ino: Ino,
        d_ino: Ino,
        overwrite: bool,
    ) -> BoxFut<'_, FsResult<()>> {
        Box::pin(async move {
            let root = Credentials::root();
            for c in self.list_dir(s_ino).await? {
                let c_dir = c.kind == FileType::Directory;
                match self.store.lookup(self.share, d_ino, &c.name).await? {
                    None => {
                        self.rename_inner(&root, s_ino, &c.name, d_ino, &c.name, true)
                            .await?
                    }
                    Some(x) if c_dir && x.kind == FileType::Directory => {
                        self.merge_dir(s_ino, c.name.clone(), c.ino, x.ino, overwrite)
                            .await?
                    }
                    Some(x) if overwrite && !c_dir && x.kind != FileType::Directory => {
                        self.rename_inner(&root, s_ino, &c.name, d_ino, &c.name, true)
                            .await?
                    }
                    Some(_) => return Err(FsError::Exist),
                }
            }
            match self
                .unlink_common(&root, s_parent, &s_name, true, Internal::Expect(s_ino))
                .await
            {
                Ok(()) | Err(FsError::NotEmpty | FsError::NoEnt) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// The hourly maintenance: deletes stale records, purges items deleted before `now`
    /// minus the retention, then evicts the oldest items while the bin exceeds its size
    /// cap. No-op while the bin is off. Safe while serving: every purge is an ordinary
    /// locked unlink; an item that changes meanwhile is skipped until the next run.
    pub async fn trash_reap(&self, now: Timestamp) -> FsResult<ReapReport> {
        let _admin = self.trash_admin.lock().await;
        let policy = self.live().opts.trash.clone();
        let mut report = ReapReport::default();
        if !policy.enabled {
            return Ok(report);
        }
        let records = self.load_records().await?;
        let nodes = self.drop_stale_records(&records).await?;
        let mut tree = Tree::new(nodes, &records);
        let mut order: Vec<(Timestamp, usize)> = (0..tree.nodes.len())
            .filter_map(|i| records.get(&tree.nodes[i].ino).map(|r| (r.deleted_at, i)))
            .collect();
        order.sort_by(|a, b| (a.0, &tree.nodes[a.1].path).cmp(&(b.0, &tree.nodes[b.1].path)));
        if policy.retention_days > 0 {
            let keep = i64::from(policy.retention_days) * SECS_PER_DAY;
            let cutoff = Timestamp {
                secs: now.secs.saturating_sub(keep),
                nanos: now.nanos,
            };
            for &(at, i) in &order {
                if at >= cutoff {
                    break;
                }
                if tree.removed[i] || !tree.item[i] {
                    continue;
                }
                match self.purge_item(&mut tree, i).await {
                    Ok(b) => {
                        report.expired += 1;
                        report.bytes_freed += b;
                    }
                    Err(e) => self.reap_skip(&tree, i, &e),
                }
            }
        }
        if policy.max_size > 0 {
            let mut total = tree.total_bytes();
            for &(_, i) in &order {
                if total <= policy.max_size {
                    break;
                }
                if tree.removed[i] || !tree.item[i] {
                    continue;
                }
                match self.purge_item(&mut tree, i).await {
                    Ok(b) => {
                        report.evicted += 1;
                        report.bytes_freed += b;
                        total = total.saturating_sub(b);
                    }
                    Err(e) => self.reap_skip(&tree, i, &e),
                }
            }
        }
        if report.expired + report.evicted > 0 {
            // A purged item whose inode keeps a name outside the bin (a hard link) leaves
            // its record behind: stale now, so it goes in this run, not the next.
            let records = self.load_records().await?;
            self.drop_stale_records(&records).await?;
        }
        Ok(report)
    }

    /// Deletes the records whose inode is not (any more) inside the bin, and returns the
    /// bin's nodes. A record missing from one walk is confirmed stale by a second, so an
    /// item moved within the bin during the first one keeps its record.
    async fn drop_stale_records(
        &self,
        records: &BTreeMap<Ino, TrashRecord>,
    ) -> FsResult<Vec<Node>> {
        let present = |nodes: &[Node]| -> HashSet<Ino> { nodes.iter().map(|n| n.ino).collect() };
        let nodes = self.walk_bin().await?.unwrap_or_default();
        let seen = present(&nodes);
        if records.keys().all(|i| seen.contains(i)) {
            return Ok(nodes);
        }
        let nodes = self.walk_bin().await?.unwrap_or_default();
        let seen2 = present(&nodes);
        let stale: Vec<Ino> = records
            .keys()
            .filter(|i| !seen.contains(i) && !seen2.contains(i))
            .copied()
            .collect();
        if !stale.is_empty() {
            tracing::info!(share = %self.name, records = stale.len(), "deleting stale recycle-bin records");
            self.delete_records(&stale).await?;
        }
        Ok(nodes)
    }

    fn reap_skip(&self, tree: &Tree, i: usize, e: &FsError) {
        tracing::warn!(
            share = %self.name,
            item = %String::from_utf8_lossy(&tree.nodes[i].path),
            "recycle-bin reaper skipped an item: {e}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_go_before_the_extension() {
        assert_eq!(suffixed(b"report.txt", "2", false), b"report (2).txt");
        assert_eq!(suffixed(b"a.tar.gz", "3", false), b"a.tar (3).gz");
        assert_eq!(suffixed(b".bashrc", "2", false), b".bashrc (2)");
        assert_eq!(suffixed(b"noext", "2", false), b"noext (2)");
        assert_eq!(suffixed(b"dir.d", "2", true), b"dir.d (2)");
        let long = vec![b'x'; NAME_MAX];
        let s = suffixed(&long, "2", false);
        assert_eq!(s.len(), NAME_MAX);
        assert!(s.ends_with(b" (2)"));
        // Multi-byte UTF-8 is not split when shortening.
        let mut uni = "é".repeat(200).into_bytes();
        uni.extend_from_slice(b".txt");
        let s = suffixed(&uni, "12", false);
        assert!(s.len() <= NAME_MAX);
        assert!(std::str::from_utf8(&s).is_ok());
        assert!(s.ends_with(b" (12).txt"));
    }

    #[test]
    fn record_keys_roundtrip() {
        let k = record_key(Ino(0x0102_0304_0506_0708));
        assert_eq!(&k[..6], b"trash/");
        assert_eq!(ino_of_record_key(&k), Some(Ino(0x0102_0304_0506_0708)));
        assert_eq!(ino_of_record_key(b"trash/x"), None);
        assert!(record_key(Ino(255)) < record_key(Ino(256)));
    }

    #[test]
    fn bin_paths_are_confined() {
        let ok = |p: &str| parse_bin_path(p).unwrap();
        assert_eq!(ok("#recycle/a/b"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(ok("/#recycle/a/b/"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(ok("a/b"), vec![b"a".to_vec(), b"b".to_vec()]);
        for bad in [
            "#recycle/../x",
            "../x",
            "a/../../x",
            "/etc",
            "/etc/passwd",
            "#recycle//etc",
            "a\0b",
            "#recycle",
            "/#recycle/",
            "",
            "#recycle/./a",
        ] {
            assert!(
                matches!(parse_bin_path(bad), Err(FsError::InvalidArgument(_))),
                "{bad:?} accepted"
            );
        }
        assert!(parse_share_path(b"/a/b").is_ok());
        assert!(parse_share_path(b"a").is_ok());
        for bad in [&b"/"[..], b"/#recycle/x", b"/a/../b", b"/a\0"] {
            assert!(
                matches!(parse_share_path(bad), Err(FsError::InvalidArgument(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn excludes_match_name_and_path() {
        let set = compile_excludes(
            "s",
            &[
                "*.tmp".to_string(),
                "build/**".to_string(),
                "docs/*.md".to_string(),
            ],
        )
        .unwrap();
        assert!(excluded(&set, b"x.tmp", b"a/b/x.tmp", false));
        assert!(excluded(&set, b"o", b"build/o", false));
        assert!(excluded(&set, b"o", b"build/x/y/o", false));
        assert!(excluded(&set, b"build", b"build", true));
        assert!(!excluded(&set, b"build", b"build", false));
        assert!(excluded(&set, b"r.md", b"docs/r.md", false));
        assert!(!excluded(&set, b"r.md", b"docs/sub/r.md", false));
        assert!(!excluded(&set, b"x.txt", b"a/x.txt", false));
        assert!(matches!(
            compile_excludes("s", &["a[".to_string()]),
            Err(FsError::InvalidArgument(m)) if m.contains("a[")
        ));
    }
}
