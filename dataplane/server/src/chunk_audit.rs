//! The second half of a share's audit: every chunk its files reference is held intact by
//! a tier (the local CAS, else the share's remote tier), with `verify` read whole and
//! hashed. INV-02 (refcounts equal references) can hold while the chunks themselves are
//! gone; this check is what finds that.
//!
//! Each distinct hash is checked once ([`dittofs_blockstore::check_chunk`]); files that
//! reference a bad chunk are named by path ([`dittofs_vfs::Fs::paths_of`]), a walk done
//! only when something is missing. Like the refcount audit it is not a snapshot: run it on
//! a quiescent share (a chunk reclaimed between the scan and its check reads as missing).

use crate::progress::Progress;
use dittofs_blockstore::{BlockError, Presence, check_chunk};
use dittofs_metadata::MetaError;
use dittofs_metadata::audit::{
    Inv02Report, MAX_DANGLING_LISTED, MAX_FILES_PER_CHUNK, MissingChunk, MissingKind,
};
use dittofs_types::{ContentHash, Ino};
use dittofs_vfs::{Fs, FsError};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Files per scan call.
const PAGE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ChunkAuditError {
    #[error("scanning block lists: {0}")]
    Meta(#[from] MetaError),
    #[error("checking a chunk: {0}")]
    Block(#[from] BlockError),
    #[error("naming the files of missing chunks: {0}")]
    Fs(#[from] FsError),
}

/// Bad chunks found so far: kind and the inodes referencing each.
type Bad = BTreeMap<ContentHash, (MissingKind, Vec<Ino>)>;

/// Checks the chunks of `fs` and records the result in `report`.
pub async fn check_chunks(
    fs: &Fs,
    verify: bool,
    job: &dyn Progress,
    report: &mut Inv02Report,
) -> Result<(), ChunkAuditError> {
    job.phase(if verify { "verify" } else { "chunks" }, report.total_refs);
    let binding = fs.remote();
    let tier = binding.as_ref().map(|b| b.tier());
    let mut good = HashSet::new();
    let mut bad = Bad::new();
    let mut after = None;
    loop {
        let page = fs.store().scan_blocks(fs.share_id(), after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        for (ino, blocks) in &page {
            for b in blocks {
                job.add(1);
                if let Some((_, inos)) = bad.get_mut(&b.hash) {
                    note_file(inos, *ino);
                } else if !good.contains(&b.hash) {
                    match check_chunk(fs.engine(), tier, b, verify).await? {
                        Presence::Local | Presence::Remote => {
                            good.insert(b.hash);
                        }
                        Presence::Missing => note_bad(&mut bad, b.hash, MissingKind::Missing, *ino),
                        Presence::Corrupt => note_bad(&mut bad, b.hash, MissingKind::Corrupt, *ino),
                    }
                }
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    report.chunks_checked = (good.len() + bad.len()) as u64;
    report.verified = verify;
    report.missing_count = bad.len() as u64;
    report.missing = name_files(fs, bad).await?;
    Ok(())
}

fn note_bad(bad: &mut Bad, hash: ContentHash, kind: MissingKind, ino: Ino) {
    bad.insert(hash, (kind, vec![ino]));
}

fn note_file(inos: &mut Vec<Ino>, ino: Ino) {
    if inos.len() < MAX_FILES_PER_CHUNK && inos.last() != Some(&ino) {
        inos.push(ino);
    }
}

/// The listed part of `bad`, with paths instead of inode numbers.
async fn name_files(fs: &Fs, bad: Bad) -> Result<Vec<MissingChunk>, ChunkAuditError> {
    let listed: Vec<_> = bad.into_iter().take(MAX_DANGLING_LISTED).collect();
    let inos: BTreeSet<Ino> = listed
        .iter()
        .flat_map(|(_, (_, v))| v.iter().copied())
        .collect();
    let paths = if inos.is_empty() {
        BTreeMap::new()
    } else {
        fs.paths_of(&inos).await?
    };
    Ok(listed
        .into_iter()
        .map(|(hash, (kind, inos))| MissingChunk {
            hash: hash.to_hex(),
            kind,
            files: inos
                .iter()
                .map(|i| {
                    paths
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| format!("ino {} (unlinked)", i.0))
                })
                .collect(),
        })
        .collect())
}
