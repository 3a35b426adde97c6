//! Administration of the per-share recycle bin: [`Fs::trash_list`],
//! [`Fs::trash_status`], [`Fs::trash_empty`], [`Fs::trash_restore`] and the hourly
//! [`Fs::trash_reap`] (retention days, size cap), used by the control API and `dfsctl
//! trash`.
//!
//! The move of a victim into the bin (what REMOVE, RMDIR and RENAME do when the bin is
//! on: layout, names, records, invariants) is `crate::recycle`, below the namespace
//! operations; this module sits above them: every purge is the ordinary locked unlink
//! (`crate::ops_ns`) and every restore the ordinary rename, run as root and marked
//! internal (permanent, allowed on `#recycle`). Administrative calls of one share are
//! serialised by `Fs::trash_admin`.
//!
//! # Sizes
//!
//! Computed when listing/reaping, from the walk of the bin: a file's size (including
//! unflushed writes), a directory's is the sum of the regular files below it. The bin's
//! total ([`TrashStatus::bytes`], compared with [`TrashPolicy::max_size`]) is the sum over
//! all regular files inside `#recycle`. Expiring or evicting a directory item that holds
//! younger items removes only what is not theirs and turns the directory into
//! scaffolding.

mod reap;
mod restore;
mod walk;

pub use crate::recycle::{TRASH_DIR, TrashPolicy};
pub use reap::ReapReport;

use crate::cred::Credentials;
use crate::error::{FsError, FsResult};
use crate::fs::Fs;
use crate::ops_ns::Internal;
use dittofs_types::{FileType, Ino, Timestamp};
use walk::Tree;

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

impl Fs {
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
}
