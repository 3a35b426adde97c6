//! Content operations beyond READ/WRITE: copies by reference, seeking data and holes,
//! punching holes and allocating (the core of NFSv4.2's COPY, CLONE, SEEK, DEALLOCATE
//! and ALLOCATE, RFC 7862 sections 4, 5, 6, 15.1, 15.2, 15.4, 15.11, 15.13; the
//! `copy_file_range`, `FICLONE`, `lseek(SEEK_DATA/SEEK_HOLE)` and `fallocate` of a
//! local file system).
//!
//! A file's committed content is its sorted list of chunk references (gaps read as
//! zeros). Every operation here first flushes the files it touches (their dirty data
//! becomes refs), then holds their flush and write locks while it works, so no write or
//! flush of theirs interleaves.
//!
//! - [`Fs::copy_range`] places the source's chunks lying wholly inside the range into
//!   the destination at the shifted offset and increments their refcounts, in ONE
//!   transaction with the destination's new block list (no data is read or written for
//!   them). The destination's refs wholly inside the target range are dropped in the
//!   same transaction; refs straddling its edges stay, and a source chunk that would
//!   overlap one of them is not placed. Whatever the placed chunks do not cover (partial
//!   chunks at the edges, and source holes where the destination still has data) is
//!   copied through the engine's write path and flushed. A whole-file copy into an
//!   empty file therefore stores no new chunk.
//! - [`Fs::deallocate`] drops the refs wholly inside the range (refcount decrements in
//!   one transaction) and writes zeros over the parts of the chunks straddling its edges;
//!   the size never changes.
//! - [`Fs::allocate`] only extends the size: a content-addressed store cannot reserve
//!   space for content it has not seen, so nothing is reserved.
//! - [`Fs::seek`] answers from the committed refs (dirty data is flushed first).
//!
//! INV-02 (sum of refcounts == refs in block lists) holds after each transaction: every
//! block-list change carries its refcount deltas (`Txn::adjust_refs`).

use crate::attr::Attr;
use crate::cred::{Credentials, R, W, may_io};
use crate::error::{FsError, FsResult};
use crate::fs::{Fs, MAX_FILE_SIZE};
use bytes::Bytes;
use dittofs_blockstore::FlushKind;
use dittofs_blockstore::tier::Publish;
use dittofs_metadata::{Check, InodeRecord, Op, Txn};
use dittofs_types::{BlockRef, FileType, Ino, ObjectId, Timestamp};

/// Largest piece copied or zeroed through the engine at once.
const PIECE: u64 = 1 << 20;

/// A copy of `len` bytes from `src` at `src_off` to `dst` at `dst_off` (`len` 0: up to
/// the end of the source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyRange {
    pub src: Ino,
    pub src_off: u64,
    pub dst: Ino,
    pub dst_off: u64,
    pub len: u64,
}

/// Result of a copy: bytes copied, of which `shared` by reference, and the
/// destination's attributes afterwards.
#[derive(Clone, Debug)]
pub struct CopyOutcome {
    pub copied: u64,
    pub shared: u64,
    pub attr: Attr,
}

/// What [`Fs::seek`] looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeekWhat {
    Data,
    Hole,
}

/// Result of a seek: the offset found and whether it is the end of the file (for
/// `Data`, `eof` means there is no data at or after the offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeekOutcome {
    pub eof: bool,
    pub offset: u64,
}

/// The source of a byte copy as read before the copy published anything: its block
/// list and size.
struct Source<'a> {
    ino: Ino,
    blocks: &'a [BlockRef],
    size: u64,
}

/// How a copy changes the destination's block list.
#[derive(Debug, Default, PartialEq, Eq)]
struct CopyPlan {
    /// The destination's new block list (sorted).
    blocks: Vec<BlockRef>,
    /// Bytes placed by reference.
    shared: u64,
    /// Destination ranges `[start, end)` still to copy through the write path.
    gaps: Vec<(u64, u64)>,
}

fn overlaps(b: &BlockRef, start: u64, end: u64) -> bool {
    b.offset < end && start < b.end()
}

/// The plan of copying `len` bytes from `src_off` of `src` to `dst_off` of `dst`.
fn plan_copy(src: &[BlockRef], dst: &[BlockRef], src_off: u64, dst_off: u64, len: u64) -> CopyPlan {
    let (t0, t1) = (dst_off, dst_off + len);
    let mut blocks = Vec::new();
    let mut edges = Vec::new();
    for b in dst {
        if !overlaps(b, t0, t1) {
            blocks.push(*b);
        } else if b.offset < t0 || b.end() > t1 {
            blocks.push(*b);
            edges.push(*b);
        }
    }
    let mut placed: Vec<BlockRef> = Vec::new();
    for b in src
        .iter()
        .filter(|b| b.offset >= src_off && b.end() <= src_off + len)
    {
        let nb = BlockRef {
            hash: b.hash,
            offset: b.offset - src_off + dst_off,
            size: b.size,
        };
        if !edges.iter().any(|e| overlaps(e, nb.offset, nb.end())) {
            placed.push(nb);
        }
    }
    let mut gaps = Vec::new();
    let mut pos = t0;
    for p in &placed {
        if p.offset > pos {
            gaps.push((pos, p.offset));
        }
        pos = p.end();
    }
    if pos < t1 {
        gaps.push((pos, t1));
    }
    // A gap that is a hole in the source and in the new destination list is already
    // zeros: nothing to write.
    let shift = |x: u64| x - dst_off + src_off;
    gaps.retain(|&(a, b)| {
        src.iter().any(|s| overlaps(s, shift(a), shift(b)))
            || edges.iter().any(|e| overlaps(e, a, b))
    });
    let shared = placed.iter().map(|b| u64::from(b.size)).sum();
    blocks.extend(placed);
    blocks.sort_by_key(|b| b.offset);
    CopyPlan {
        blocks,
        shared,
        gaps,
    }
}

/// A regular file the caller may read (`R`) or write (`W`).
fn io_file(cred: &Credentials, rec: &InodeRecord, want: u32) -> FsResult<()> {
    match rec.kind {
        FileType::Regular => {}
        FileType::Directory => return Err(FsError::IsDir),
        _ => return Err(FsError::Inval("not a regular file")),
    }
    if !may_io(cred, rec, want) {
        return Err(FsError::Access);
    }
    Ok(())
}

/// The length a copy of `r` covers in a source of `size` bytes: `len` 0 is up to the
/// end; a range past the end is invalid (RFC 7862 sections 15.2.3, 15.13.3).
fn copy_len(r: &CopyRange, size: u64) -> FsResult<u64> {
    if r.src_off > size {
        return Err(FsError::Inval(
            "copy source offset past the end of the file",
        ));
    }
    let len = if r.len == 0 { size - r.src_off } else { r.len };
    if r.src_off.checked_add(len).is_none_or(|e| e > size) {
        return Err(FsError::Inval("copy source range past the end of the file"));
    }
    if r.dst_off.checked_add(len).is_none_or(|e| e > MAX_FILE_SIZE) {
        return Err(FsError::FBig);
    }
    if r.src == r.dst && r.src_off < r.dst_off + len && r.dst_off < r.src_off + len {
        return Err(FsError::Inval(
            "copy within one file with overlapping ranges",
        ));
    }
    Ok(len)
}

impl Fs {
    /// Copies a range of `r.src` (a file of this share) to `r.dst` of share `to`, by
    /// reference where whole chunks allow (see the module documentation). Needs read
    /// access to the source and write access to the destination; another share is
    /// [`FsError::XDev`]; a source range past its end is [`FsError::Inval`].
    pub async fn copy_range(
        &self,
        cred: &Credentials,
        to: &Fs,
        r: &CopyRange,
    ) -> FsResult<CopyOutcome> {
        if to.share != self.share {
            return Err(FsError::XDev);
        }
        self.check_readable(cred)?;
        self.check_writable(cred)?;
        let _f = self.flush_locks.lock_many(&[r.src, r.dst]).await;
        let _g = self.locks.write_many(&[r.src, r.dst]).await;
        self.flush_locked(r.src, true, FlushKind::Final).await?;
        self.flush_locked(r.dst, true, FlushKind::Final).await?;
        let src = self.inode(r.src).await?;
        let mut dst = self.inode(r.dst).await?;
        io_file(cred, &src, R)?;
        io_file(cred, &dst, W)?;
        let len = copy_len(r, src.size)?;
        if len == 0 {
            return Ok(CopyOutcome {
                copied: 0,
                shared: 0,
                attr: self.attr_of(&dst),
            });
        }
        let src_blocks = self.store.get_blocks(self.share, r.src).await?;
        let dst_blocks = self.store.get_blocks(self.share, r.dst).await?;
        let plan = plan_copy(&src_blocks, &dst_blocks, r.src_off, r.dst_off, len);
        let gap_bytes: u64 = plan.gaps.iter().map(|(a, b)| b - a).sum();
        self.check_room_for(gap_bytes)?;
        // Writing clears suid, and sgid when group-executable, unless the writer is root.
        if !cred.is_root() {
            dst.mode &= !0o4000;
            if dst.mode & 0o2010 == 0o2010 {
                dst.mode &= !0o2000;
            }
        }
        let size = dst.size.max(r.dst_off + len);
        let pin = (r.src != r.dst).then_some((r.src, src.change));
        self.publish_blocks(dst, &dst_blocks, &plan.blocks, size, pin)
            .await?;
        let from = Source {
            ino: r.src,
            blocks: &src_blocks,
            size: src.size,
        };
        for &(a, b) in &plan.gaps {
            let at = a - r.dst_off + r.src_off;
            self.copy_bytes(&from, at, r.dst, a, b - a).await?;
        }
        self.flush_locked(r.dst, true, FlushKind::Final).await?;
        let rec = self.inode(r.dst).await?;
        Ok(CopyOutcome {
            copied: len,
            shared: plan.shared,
            attr: self.attr_of(&rec),
        })
    }

    /// Copies `len` bytes of `src` at `from` to `dst` at `to` through the engine's read
    /// and write paths; the caller holds both files' write locks.
    async fn copy_bytes(
        &self,
        src: &Source<'_>,
        from: u64,
        dst: Ino,
        to: u64,
        len: u64,
    ) -> FsResult<()> {
        let remote = self.remote();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(PIECE) as u32;
            let data = self
                .engine
                .read_tiered(
                    self.key(src.ino),
                    src.blocks,
                    src.size,
                    from + done,
                    n,
                    remote.as_deref().map(|r| r.cold()),
                )
                .await?;
            // Reads stop at the source's end, which `copy_len` keeps the range inside.
            if data.len() != n as usize {
                return Err(FsError::ServerFault("short read inside the source".into()));
            }
            self.write_locked(dst, to + done, data).await?;
            done += u64::from(n);
        }
        Ok(())
    }

    /// Writes `data` at `offset` of `ino` into the engine's journal (durably) while the
    /// caller holds the file's write lock; a flush publishes it.
    async fn write_locked(&self, ino: Ino, offset: u64, data: Bytes) -> FsResult<()> {
        self.engine.write(self.key(ino), offset, data, true).await?;
        self.note_write(ino, Timestamp::now());
        Ok(())
    }

    /// Publishes `new` as the block list of `rec` (replacing `old`) with size `size` and
    /// new times, in one transaction pinning `rec` and `pin` (another inode and the
    /// change counter read). The caller holds the file's flush and write locks and has
    /// flushed it.
    async fn publish_blocks(
        &self,
        mut rec: InodeRecord,
        old: &[BlockRef],
        new: &[BlockRef],
        size: u64,
        pin: Option<(Ino, u64)>,
    ) -> FsResult<()> {
        let ino = rec.ino;
        let object = ObjectId::compute(new);
        let remote = self.remote();
        let ticket = match &remote {
            Some(r) => {
                let t = r.before_commit().await;
                t.stage(Publish::Flush {
                    old,
                    new,
                    object: Some(object),
                })
                .await?;
                Some(t)
            }
            None => None,
        };
        let before = crate::ops_io::stamp_content(&mut rec, size, object);
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino,
            change: before,
        });
        if let Some((ino, change)) = pin {
            t.check(Check::InodeChange { ino, change });
        }
        t.op(Op::SetBlocks {
            ino,
            blocks: new.to_vec(),
        });
        t.adjust_refs(old, new);
        t.op(Op::PutInode(rec));
        self.commit(t).await?;
        if let Some(t) = ticket {
            t.after_commit();
        }
        if let Some(d) = self.dirty.lock().get_mut(&ino) {
            d.epoch += 1;
        }
        Ok(())
    }

    /// Punches a hole over `[offset, offset + len)` (clipped to the size, which never
    /// changes): chunks wholly inside are dropped, the parts of chunks straddling the
    /// edges are overwritten with zeros.
    pub async fn deallocate(
        &self,
        cred: &Credentials,
        ino: Ino,
        offset: u64,
        len: u64,
    ) -> FsResult<Attr> {
        self.check_writable(cred)?;
        let _f = self.flush_locks.lock(ino).await;
        let _g = self.locks.write_many(&[ino]).await;
        self.flush_locked(ino, true, FlushKind::Final).await?;
        let rec = self.inode(ino).await?;
        io_file(cred, &rec, W)?;
        let end = offset.saturating_add(len).min(rec.size);
        if offset >= end {
            return Ok(self.attr_of(&rec));
        }
        let old = self.store.get_blocks(self.share, ino).await?;
        let (inside, keep): (Vec<BlockRef>, Vec<BlockRef>) = old
            .iter()
            .partition(|b| b.offset >= offset && b.end() <= end);
        let size = rec.size;
        if !inside.is_empty() {
            self.publish_blocks(rec, &old, &keep, size, None).await?;
        }
        for b in keep.iter().filter(|b| overlaps(b, offset, end)) {
            let (a, z) = (b.offset.max(offset), b.end().min(end));
            let mut pos = a;
            while pos < z {
                let n = (z - pos).min(PIECE);
                let zeros = Bytes::from(vec![0u8; n as usize]);
                self.write_locked(ino, pos, zeros).await?;
                pos += n;
            }
        }
        self.flush_locked(ino, true, FlushKind::Final).await?;
        let rec = self.inode(ino).await?;
        Ok(self.attr_of(&rec))
    }

    /// Guarantees `[offset, offset + len)` is part of the file: extends the size when
    /// the range ends past it. A content-addressed store cannot reserve room for content
    /// it has not seen, so no space is reserved (a later write may still fail with
    /// NOSPC); the range reads as zeros until written.
    pub async fn allocate(
        &self,
        cred: &Credentials,
        ino: Ino,
        offset: u64,
        len: u64,
    ) -> FsResult<Attr> {
        self.check_writable(cred)?;
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= MAX_FILE_SIZE)
            .ok_or(FsError::FBig)?;
        let rec = self.inode(ino).await?;
        io_file(cred, &rec, W)?;
        if end > self.attr_of(&rec).size {
            self.truncate(ino, end).await?;
        }
        self.getattr(ino).await
    }

    /// The first data (or hole) at or after `offset`: the end of the file is a hole;
    /// no data after `offset` is `eof` with the size. An offset at or past the end is
    /// [`FsError::NxIo`].
    pub async fn seek(
        &self,
        cred: &Credentials,
        ino: Ino,
        offset: u64,
        what: SeekWhat,
    ) -> FsResult<SeekOutcome> {
        self.check_readable(cred)?;
        self.flush_file(ino).await?;
        let _g = self.locks.read(ino).await;
        let rec = self.inode(ino).await?;
        io_file(cred, &rec, R)?;
        let size = self.attr_of(&rec).size;
        if offset >= size {
            return Err(FsError::NxIo);
        }
        let blocks = self.store.get_blocks(self.share, ino).await?;
        Ok(seek_in(&blocks, size, offset, what))
    }
}

/// [`Fs::seek`] over a block list.
fn seek_in(blocks: &[BlockRef], size: u64, offset: u64, what: SeekWhat) -> SeekOutcome {
    let from = blocks.partition_point(|b| b.end() <= offset);
    match what {
        SeekWhat::Data => match blocks.get(from).filter(|b| b.offset < size) {
            Some(b) => SeekOutcome {
                eof: false,
                offset: b.offset.max(offset),
            },
            None => SeekOutcome {
                eof: true,
                offset: size,
            },
        },
        SeekWhat::Hole => {
            let mut pos = offset;
            for b in &blocks[from..] {
                if b.offset > pos {
                    break;
                }
                pos = pos.max(b.end());
            }
            let pos = pos.min(size);
            SeekOutcome {
                eof: pos >= size,
                offset: pos,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dittofs_types::ContentHash;

    fn r(n: u8, offset: u64, size: u32) -> BlockRef {
        BlockRef {
            hash: ContentHash([n; 32]),
            offset,
            size,
        }
    }

    #[test]
    fn whole_file_copy_into_empty_file_is_all_refs() {
        let src = [r(1, 0, 100), r(2, 100, 50), r(3, 200, 30)];
        let p = plan_copy(&src, &[], 0, 0, 230);
        assert_eq!(p.blocks, src.to_vec());
        assert_eq!(p.shared, 180);
        assert!(p.gaps.is_empty(), "the hole 150..200 stays a hole");
    }

    #[test]
    fn partial_chunks_and_straddling_destination_refs_are_byte_copied() {
        let src = [r(1, 0, 100), r(2, 100, 100), r(3, 200, 100)];
        // Copy 50..250 to 1000; the destination has a ref straddling 1000 and one
        // wholly inside the target.
        let dst = [r(9, 950, 120), r(8, 1100, 10)];
        let p = plan_copy(&src, &dst, 50, 1000, 200);
        // Chunk 2 (100..200) lands at 1050..1150, overlapping the straddling ref.
        assert_eq!(p.blocks, vec![r(9, 950, 120)]);
        assert_eq!(p.gaps, vec![(1000, 1200)]);
        let p = plan_copy(&src, &[], 50, 1000, 200);
        assert_eq!(p.blocks, vec![r(2, 1050, 100)]);
        assert_eq!(p.gaps, vec![(1000, 1050), (1150, 1200)]);
    }

    #[test]
    fn seeks_find_data_and_holes() {
        let b = [r(1, 100, 100), r(2, 200, 50), r(3, 400, 100)];
        let at = |eof, offset| SeekOutcome { eof, offset };
        let cases = [
            (0, SeekWhat::Data, at(false, 100)),
            (150, SeekWhat::Data, at(false, 150)),
            (260, SeekWhat::Data, at(false, 400)),
            (550, SeekWhat::Data, at(true, 600)),
            (0, SeekWhat::Hole, at(false, 0)),
            (120, SeekWhat::Hole, at(false, 250)),
            (450, SeekWhat::Hole, at(false, 500)),
        ];
        for (off, what, want) in cases {
            assert_eq!(seek_in(&b, 600, off, what), want, "{what:?} from {off}");
        }
        let full = [r(1, 0, 600)];
        assert_eq!(seek_in(&full, 600, 10, SeekWhat::Hole), at(true, 600));
    }
}
