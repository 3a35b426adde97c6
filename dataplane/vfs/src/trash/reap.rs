//! The recycle bin's reaper ([`Fs::trash_reap`], hourly): stale records go first, then
//! items older than the retention, then the oldest items while the bin is over its size
//! cap. Every purge is an ordinary locked unlink, so the reaper runs while serving; an
//! item that changes meanwhile is skipped until the next run.

use super::walk::{Node, Tree};
use crate::error::{FsError, FsResult};
use crate::fs::Fs;
use crate::recycle::TrashRecord;
use dittofs_types::{Ino, Timestamp};
use std::collections::{BTreeMap, HashSet};

const SECS_PER_DAY: i64 = 86_400;

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

impl Fs {
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
