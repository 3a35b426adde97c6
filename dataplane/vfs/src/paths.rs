//! Paths of inodes, for reports (an audit naming the files that lost chunks), never for
//! the data path: files keep no link to their directory, so the share's tree is walked
//! from the root, breadth first, until every wanted inode has been seen once.
//!
//! Invariant: read-only; the walk is not a snapshot (entries renamed meanwhile may be
//! missed or named twice), which a report states rather than hides. An inode that is
//! open but unlinked has no path and is left out of the result.

use crate::error::FsResult;
use crate::fs::Fs;
use dittofs_types::{FileType, Ino};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Directory entries per `read_dir` call.
const PAGE: usize = 1024;

impl Fs {
    /// One path (share-relative, starting with `/`) of each inode of `wanted` that the
    /// tree holds.
    pub async fn paths_of(&self, wanted: &BTreeSet<Ino>) -> FsResult<BTreeMap<Ino, String>> {
        let mut found = BTreeMap::new();
        let mut dirs = VecDeque::from([(Ino::ROOT, String::new())]);
        while let Some((dir, path)) = dirs.pop_front() {
            if found.len() == wanted.len() {
                break;
            }
            let mut after = 0;
            loop {
                let page = self
                    .store()
                    .read_dir(self.share_id(), dir, after, PAGE)
                    .await?;
                for e in &page {
                    let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
                    if wanted.contains(&e.ino) {
                        found.entry(e.ino).or_insert_with(|| p.clone());
                    }
                    if e.kind == FileType::Directory {
                        dirs.push_back((e.ino, p));
                    }
                }
                match page.last() {
                    Some(last) if page.len() == PAGE => after = last.cookie,
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}
