//! INV-02 audit: the sum of chunk refcounts of a share equals the number of block refs
//! over all its files, and every chunk row's refcount equals the number of refs naming
//! its hash.
//!
//! The audit streams the block lists and the chunk rows in pages through the
//! [`MetadataStore`] scans. Memory: one counter per *distinct* referenced hash (a
//! `BTreeMap<ContentHash, u64>`, about 80 bytes per hash), so the audit of a share with
//! tens of millions of distinct chunks needs GiBs; a bounded-memory version would spill
//! sorted runs to disk and merge them with the (already sorted) chunk scan.
//!
//! The scans are not a snapshot: run the audit on a quiescent share, or treat a non-zero
//! delta as "re-run to confirm".

use crate::error::MetaResult;
use crate::store::MetadataStore;
use dittofs_types::{ContentHash, ShareId, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;

/// Rows per scan call.
const PAGE: usize = 1024;
/// At most this many [`Dangling`] items are listed (all are counted).
pub const MAX_DANGLING_LISTED: usize = 10_000;

/// Result of [`audit_inv02`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Inv02Report {
    pub share: String,
    /// When the audit started, RFC 3339 UTC (`2026-11-03T10:15:30Z`).
    pub started_at: String,
    pub duration_ms: u64,
    /// Files with a non-empty block list.
    pub total_files: u64,
    /// Number of block refs over all files (sum of `len(blocks)`).
    pub total_refs: u64,
    /// Sum of the refcounts of all chunk rows.
    pub total_refcount: u64,
    /// `total_refcount - total_refs`; 0 when INV-02 holds.
    pub delta: i64,
    /// Number of inconsistent hashes found (may exceed `dangling.len()`).
    pub dangling_count: u64,
    /// Inconsistent hashes, ascending, at most [`MAX_DANGLING_LISTED`].
    pub dangling: Vec<Dangling>,
    /// Distinct referenced chunks whose presence on a tier was checked (filled by the
    /// caller that can see the block store; 0 in reports written before that check).
    #[serde(default)]
    pub chunks_checked: u64,
    /// Whether the checked chunks were read whole and hashed (`--verify`), not only
    /// looked up.
    #[serde(default)]
    pub verified: bool,
    /// Referenced chunks that no tier holds intact (may exceed `missing.len()`).
    #[serde(default)]
    pub missing_count: u64,
    /// Those chunks with the files that reference them, at most [`MAX_DANGLING_LISTED`].
    #[serde(default)]
    pub missing: Vec<MissingChunk>,
}

impl Inv02Report {
    /// Whether INV-02 holds, no hash is inconsistent and no referenced chunk is missing.
    pub fn is_clean(&self) -> bool {
        self.delta == 0 && self.dangling_count == 0 && self.missing_count == 0
    }
}

/// A chunk that files reference but no tier holds intact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MissingChunk {
    /// Hex BLAKE3 hash.
    pub hash: String,
    pub kind: MissingKind,
    /// Share-relative paths of the files referencing it (`ino N (unlinked)` for an open
    /// file without a name), at most [`MAX_FILES_PER_CHUNK`].
    pub files: Vec<String>,
}

/// Files listed per [`MissingChunk`].
pub const MAX_FILES_PER_CHUNK: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingKind {
    /// On no tier.
    Missing,
    /// Only copies of the wrong length or, when verified, the wrong content.
    Corrupt,
}

/// One hash whose refcount does not match its references.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Dangling {
    /// Hex BLAKE3 hash.
    pub hash: String,
    pub kind: DanglingKind,
    /// Block refs naming the hash.
    pub refs: u64,
    /// Refcount of its chunk row (0 when the row is missing).
    pub refcount: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DanglingKind {
    /// Files reference the hash but it has no chunk row.
    MissingRow,
    /// The row exists but its refcount differs from the number of refs (a row that no
    /// file references is reported with `refs: 0`).
    RefcountMismatch,
}

/// Audits INV-02 for one share.
pub async fn audit_inv02(
    store: &dyn MetadataStore,
    share: ShareId,
    share_name: &str,
) -> MetaResult<Inv02Report> {
    let started_at = rfc3339_utc(Timestamp::now());
    let clock = std::time::Instant::now();

    let mut refs_per_hash: BTreeMap<ContentHash, u64> = BTreeMap::new();
    let mut total_files = 0u64;
    let mut total_refs = 0u64;
    let mut after = None;
    loop {
        let page = store.scan_blocks(share, after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        for (_, blocks) in &page {
            if blocks.is_empty() {
                continue;
            }
            total_files += 1;
            total_refs += blocks.len() as u64;
            for b in blocks {
                *refs_per_hash.entry(b.hash).or_insert(0) += 1;
            }
        }
        if page.len() < PAGE {
            break;
        }
    }

    let mut dangling = Vec::new();
    let mut dangling_count = 0u64;
    let mut note = |d: Dangling| {
        dangling_count += 1;
        if dangling.len() < MAX_DANGLING_LISTED {
            dangling.push(d);
        }
    };
    let mut total_refcount = 0u64;
    let mut after = None;
    loop {
        let page = store.scan_chunks(share, after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        for (hash, row) in &page {
            total_refcount = total_refcount.saturating_add(row.refcount);
            // Report referenced-but-missing hashes that sort before this row, in order.
            while let Some(entry) = refs_per_hash.first_entry() {
                if entry.key() >= hash {
                    break;
                }
                let (h, n) = entry.remove_entry();
                note(Dangling {
                    hash: h.to_hex(),
                    kind: DanglingKind::MissingRow,
                    refs: n,
                    refcount: 0,
                });
            }
            let refs = refs_per_hash.remove(hash).unwrap_or(0);
            if refs != row.refcount {
                note(Dangling {
                    hash: hash.to_hex(),
                    kind: DanglingKind::RefcountMismatch,
                    refs,
                    refcount: row.refcount,
                });
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    for (h, n) in refs_per_hash {
        note(Dangling {
            hash: h.to_hex(),
            kind: DanglingKind::MissingRow,
            refs: n,
            refcount: 0,
        });
    }

    let delta = i128::from(total_refcount) - i128::from(total_refs);
    Ok(Inv02Report {
        share: share_name.to_owned(),
        started_at,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        total_files,
        total_refs,
        total_refcount,
        delta: i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX }),
        dangling_count,
        dangling,
        chunks_checked: 0,
        verified: false,
        missing_count: 0,
        missing: Vec::new(),
    })
}

/// Formats `t` as RFC 3339 UTC with second precision (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn rfc3339_utc(t: Timestamp) -> String {
    let days = t.secs.div_euclid(86_400);
    let sod = t.secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Proleptic Gregorian date of a day count relative to 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift to an era-based calendar starting on March 1st, year 0 (400-year cycles of
    // 146097 days), so that the leap day is the last day of the "year".
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use crate::record::InodeRecord;
    use crate::store::Durability;
    use crate::txn::{Op, Txn};
    use dittofs_types::{BlockRef, Ino};

    fn ts(secs: i64) -> String {
        rfc3339_utc(Timestamp { secs, nanos: 0 })
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(ts(0), "1970-01-01T00:00:00Z");
        assert_eq!(ts(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(ts(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(ts(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(ts(-1), "1969-12-31T23:59:59Z");
    }

    fn h(n: u8) -> ContentHash {
        ContentHash([n; 32])
    }

    fn refs(hashes: &[u8]) -> Vec<BlockRef> {
        hashes
            .iter()
            .enumerate()
            .map(|(i, n)| BlockRef {
                hash: h(*n),
                offset: i as u64 * 10,
                size: 10,
            })
            .collect()
    }

    fn file(ino: u64) -> InodeRecord {
        let mut r = crate::memory::new_root_inode(0o644, Timestamp::default());
        r.ino = Ino(ino);
        r.kind = dittofs_types::FileType::Regular;
        r.nlink = 1;
        r.parent = Ino(0);
        r
    }

    async fn setup() -> (MemoryStore, ShareId) {
        let s = MemoryStore::new();
        let share = ShareId(3);
        s.create_share(share, "s", 0o755).await.unwrap();
        // Two files sharing chunk 1; file 3 repeats chunk 2.
        for (ino, list) in [(2u64, vec![1u8, 2]), (3, vec![1, 2, 2, 3])] {
            let blocks = refs(&list);
            let mut t = Txn::new(share);
            t.op(Op::PutInode(file(ino)));
            t.op(Op::SetBlocks {
                ino: Ino(ino),
                blocks: blocks.clone(),
            });
            t.adjust_refs(&[], &blocks);
            s.commit(t, Durability::Durable).await.unwrap();
        }
        (s, share)
    }

    #[tokio::test]
    async fn clean_share_has_zero_delta() {
        let (s, share) = setup().await;
        let r = audit_inv02(&s, share, "s").await.unwrap();
        assert_eq!(r.total_files, 2);
        assert_eq!(r.total_refs, 6);
        assert_eq!(r.total_refcount, 6);
        assert_eq!(r.delta, 0);
        assert!(r.dangling.is_empty());
        assert!(r.is_clean());
        assert!(r.started_at.ends_with('Z'));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["share"], "s");
        assert_eq!(json["delta"], 0);
    }

    #[tokio::test]
    async fn broken_state_reports_delta_and_dangling() {
        let (s, share) = setup().await;
        // Break it: a file references chunk 9 without a row (missing row), chunk 3 loses
        // its row, chunk 1 is over-counted by 2 and an unreferenced row 7 exists.
        let mut t = Txn::new(share);
        t.op(Op::PutInode(file(4)));
        t.op(Op::SetBlocks {
            ino: Ino(4),
            blocks: refs(&[9]),
        });
        t.op(Op::AdjustChunk {
            hash: h(3),
            delta: -1,
            size: 10,
        });
        t.op(Op::AdjustChunk {
            hash: h(1),
            delta: 2,
            size: 10,
        });
        t.op(Op::AdjustChunk {
            hash: h(7),
            delta: 1,
            size: 10,
        });
        s.commit(t, Durability::Durable).await.unwrap();

        let r = audit_inv02(&s, share, "s").await.unwrap();
        assert_eq!(r.total_files, 3);
        assert_eq!(r.total_refs, 7);
        // rows: 1 -> 4, 2 -> 3, 7 -> 1
        assert_eq!(r.total_refcount, 8);
        assert_eq!(r.delta, 1);
        assert!(!r.is_clean());
        let got: Vec<(String, DanglingKind, u64, u64)> = r
            .dangling
            .iter()
            .map(|d| (d.hash.clone(), d.kind, d.refs, d.refcount))
            .collect();
        assert_eq!(
            got,
            vec![
                (h(1).to_hex(), DanglingKind::RefcountMismatch, 2, 4),
                (h(3).to_hex(), DanglingKind::MissingRow, 1, 0),
                (h(7).to_hex(), DanglingKind::RefcountMismatch, 0, 1),
                (h(9).to_hex(), DanglingKind::MissingRow, 1, 0),
            ]
        );
        assert_eq!(r.dangling_count, 4);
    }

    #[tokio::test]
    async fn many_files_span_pages() {
        let s = MemoryStore::new();
        let share = ShareId(1);
        s.create_share(share, "big", 0o755).await.unwrap();
        let mut t = Txn::new(share);
        for ino in 2..2 + 3000u64 {
            let blocks = refs(&[(ino % 200) as u8, 250]);
            t.op(Op::SetBlocks {
                ino: Ino(ino),
                blocks: blocks.clone(),
            });
            t.adjust_refs(&[], &blocks);
        }
        s.commit(t, Durability::Buffered).await.unwrap();
        let r = audit_inv02(&s, share, "big").await.unwrap();
        assert_eq!((r.total_files, r.total_refs, r.delta), (3000, 6000, 0));
        assert!(r.is_clean());
    }
}
