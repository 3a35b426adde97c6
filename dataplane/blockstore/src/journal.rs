//! Durable write-back journal: absorbs small writes until a flush chunks them.
//!
//! Layout: `root/journal/{first_seq:020}.seg`, append-only segment files. A record is a
//! 40-byte little-endian header `{magic u32, crc32c u32, seq u64, share u32, ino u64,
//! offset u64, len u32}` followed by `len` data bytes; the CRC covers the header after the
//! crc field plus the data.
//!
//! Invariants:
//! - Sequence numbers are global and strictly increasing; a seq that was ever made durable
//!   by [`Journal::sync`] is never reused, even across restarts and after every segment
//!   was reclaimed: a segment's name is its first seq, the active segment file always
//!   exists (it is created and its directory fsynced at open, before any older segment can
//!   be deleted) and open resumes at `max(last valid seq + 1, highest segment name)`.
//!   Seqs of records lost in a crash (never synced) may be handed out again, so a caller
//!   must sync before it records a seq as applied (the engine syncs in `prepare_flush`).
//! - Appends go only to the active segment, with pwrite and no userspace buffer, so a
//!   record's data can be pread back as soon as `append` returns. Appends are serialized
//!   by one lock, so every seq below the next one is completely written.
//! - [`Journal::sync`] returns once every record appended before the call is durable.
//!   Concurrent callers share one fsync (group commit); a caller already covered by a
//!   finished fsync returns at once.
//! - Replay returns valid records in seq order; a torn or CRC-bad record ends the replay
//!   of its segment (the tail of a crash). Open starts a new active segment, so a torn
//!   tail is never appended to.
//! - Reclaim: a non-active segment may be deleted once, for every file with records in
//!   it, the caller's durable metadata covers that file's max seq in the segment
//!   ([`Journal::note_applied`]) or the file is gone ([`Journal::forget`]). The caller
//!   must make its metadata durable between [`Journal::reclaimable`] and
//!   [`Journal::delete_segments`]: `note_applied` may run right after a metadata commit
//!   that is not yet fsynced.

use crate::error::{BlockError, Result, io_err};
use dittofs_types::{FileKey, Ino, ShareId};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: u32 = 0x444A_4631; // "DJF1"
const HEADER_LEN: usize = 40;

/// Records at least this large get their data CRC computed before the journal lock.
const CRC_OUTSIDE_LOCK: usize = 64 * 1024;

/// Default segment roll size: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Where the data of one journal record lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JournalLoc {
    pub seq: u64,
    /// Segment id (= first seq of the segment).
    pub segment: u64,
    /// File offset of the data inside the segment file.
    pub data_pos: u64,
    pub len: u32,
}

/// A record found by replay at open (its data stays in the journal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveredRecord {
    pub key: FileKey,
    /// File offset the data was written at.
    pub offset: u64,
    pub seq: u64,
    pub loc: JournalLoc,
}

#[derive(Debug)]
struct Segment {
    file: Arc<File>,
    len: u64,
    /// Highest seq per file in this segment.
    max_seq: HashMap<FileKey, u64>,
}

#[derive(Debug)]
struct Inner {
    next_seq: u64,
    active: u64,
    segments: BTreeMap<u64, Segment>,
    /// Rolled segments with appended data not yet fsynced.
    unsynced: Vec<Arc<File>>,
    active_unsynced: bool,
    dir_unsynced: bool,
    /// Per file: all its records with seq <= this are applied (u64::MAX: forgotten).
    applied: HashMap<FileKey, u64>,
    bytes_total: u64,
}

#[derive(Debug)]
struct SyncState {
    durable_seq: u64,
    leader: bool,
}

/// The write-back journal.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    segment_bytes: u64,
    inner: Mutex<Inner>,
    sync: Mutex<SyncState>,
    sync_cv: Condvar,
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn crc_of(header: &[u8; HEADER_LEN], data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&header[8..]), data)
}

/// The header of a record with `data`. `data_crc`: the CRC of `data` if the caller took it
/// before the journal lock (large records); the record CRC is then the header's combined
/// with it, which equals [`crc_of`] over header and data. Small records are CRCed whole
/// here: cheaper than combining.
fn encode_header(
    seq: u64,
    key: FileKey,
    offset: u64,
    data: &[u8],
    data_crc: Option<u32>,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h[16..20].copy_from_slice(&key.share.0.to_le_bytes());
    h[20..28].copy_from_slice(&key.ino.0.to_le_bytes());
    h[28..36].copy_from_slice(&offset.to_le_bytes());
    h[36..40].copy_from_slice(&(data.len() as u32).to_le_bytes());
    let crc = match data_crc {
        Some(c) => crc32c::crc32c_combine(crc32c::crc32c(&h[8..]), c, data.len()),
        None => crc_of(&h, data),
    };
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Writes `parts` back to back at `pos` with `pwritev` (no copy into one buffer first),
/// retrying on short writes and EINTR.
fn pwritev_all(file: &File, parts: &[&[u8]], mut pos: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut slices: Vec<std::io::IoSlice<'_>> =
        parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
    let mut rest: &mut [std::io::IoSlice<'_>] = &mut slices;
    while !rest.is_empty() {
        let off = libc::off_t::try_from(pos)
            .map_err(|_| std::io::Error::from(ErrorKind::InvalidInput))?;
        let cnt = libc::c_int::try_from(rest.len().min(1024))
            .map_err(|_| std::io::Error::from(ErrorKind::InvalidInput))?;
        // SAFETY: IoSlice is ABI-compatible with `struct iovec` on Unix; `rest` holds `cnt`
        // (or more) valid slices borrowed from `parts` for the whole call, and the fd is
        // borrowed from `file`.
        let n = unsafe { libc::pwritev(file.as_raw_fd(), rest.as_ptr().cast(), cnt, off) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(ErrorKind::WriteZero.into());
        }
        pos += n as u64;
        std::io::IoSlice::advance_slices(&mut rest, n as usize);
    }
    Ok(())
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Reads the valid records of one segment, stopping at the first invalid one.
fn replay_segment(path: &Path, id: u64, file: &File) -> Result<(Vec<RecoveredRecord>, u64)> {
    let size = file.metadata().map_err(io_err(path))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut pos = 0u64;
    let mut last_seq = 0u64;
    let mut out = Vec::new();
    let mut data = Vec::new();
    loop {
        let mut h = [0u8; HEADER_LEN];
        if size - pos < HEADER_LEN as u64 {
            if size != pos {
                tracing::warn!(path = %path.display(), pos, "journal: torn header at segment tail");
            }
            break;
        }
        r.read_exact(&mut h).map_err(io_err(path))?;
        let len = le_u32(&h[36..]);
        let seq = le_u64(&h[8..]);
        let bad = if le_u32(&h[0..]) != MAGIC {
            Some("bad magic")
        } else if u64::from(len) > size - pos - HEADER_LEN as u64 {
            Some("record past end of segment")
        } else if seq < id || seq <= last_seq {
            Some("sequence out of order")
        } else {
            data.resize(len as usize, 0);
            r.read_exact(&mut data).map_err(io_err(path))?;
            (crc_of(&h, &data) != le_u32(&h[4..])).then_some("crc mismatch")
        };
        if let Some(why) = bad {
            tracing::warn!(path = %path.display(), pos, why, "journal: replay of segment ends");
            break;
        }
        let key = FileKey {
            share: ShareId(le_u32(&h[16..])),
            ino: Ino(le_u64(&h[20..])),
        };
        out.push(RecoveredRecord {
            key,
            offset: le_u64(&h[28..]),
            seq,
            loc: JournalLoc {
                seq,
                segment: id,
                data_pos: pos + HEADER_LEN as u64,
                len,
            },
        });
        last_seq = seq;
        pos += HEADER_LEN as u64 + u64::from(len);
    }
    Ok((out, size))
}

impl Journal {
    /// Opens the journal under `root/journal/`, replays it and starts a new active
    /// segment. Returns all valid records in seq order.
    pub fn open(root: &Path, segment_bytes: u64) -> Result<(Journal, Vec<RecoveredRecord>)> {
        if segment_bytes < HEADER_LEN as u64 {
            return Err(BlockError::Config(format!(
                "journal segment size {segment_bytes} too small"
            )));
        }
        let dir = root.join("journal");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut ids = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = e.map_err(io_err(&dir))?.path();
            let id = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok());
            match id {
                Some(id) => ids.push(id),
                None => tracing::warn!(path = %path.display(), "journal: ignoring unknown file"),
            }
        }
        ids.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut records = Vec::new();
        let mut next_seq = 1u64;
        let mut bytes_total = 0;
        for &id in &ids {
            let path = seg_path(&dir, id);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            // What a crashed process left in the page cache is made durable now, so
            // that everything replayed counts as synced.
            file.sync_data().map_err(io_err(&path))?;
            let (recs, len) = replay_segment(&path, id, &file)?;
            let mut max_seq = HashMap::new();
            for r in &recs {
                max_seq.insert(r.key, r.seq);
                next_seq = next_seq.max(r.seq + 1);
            }
            next_seq = next_seq.max(id);
            bytes_total += len;
            records.extend(recs);
            segments.insert(
                id,
                Segment {
                    file: Arc::new(file),
                    len,
                    max_seq,
                },
            );
        }
        records.sort_by_key(|r| r.seq);

        // New active segment. A segment already named `next_seq` has no valid record
        // (else next_seq would be larger): reuse it from scratch.
        let active = next_seq;
        let path = seg_path(&dir, active);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if let Some(old) = segments.remove(&active) {
            bytes_total -= old.len;
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))?;
        segments.insert(
            active,
            Segment {
                file: Arc::new(file),
                len: 0,
                max_seq: HashMap::new(),
            },
        );
        let journal = Journal {
            dir,
            segment_bytes,
            inner: Mutex::new(Inner {
                next_seq,
                active,
                segments,
                unsynced: Vec::new(),
                active_unsynced: false,
                dir_unsynced: false,
                applied: HashMap::new(),
                bytes_total,
            }),
            sync: Mutex::new(SyncState {
                durable_seq: next_seq - 1,
                leader: false,
            }),
            sync_cv: Condvar::new(),
        };
        Ok((journal, records))
    }

    /// Appends one record (not yet durable: see [`Journal::sync`]).
    pub fn append(&self, key: FileKey, offset: u64, data: &[u8]) -> Result<JournalLoc> {
        let len = u32::try_from(data.len())
            .map_err(|_| BlockError::Invalid(format!("journal record of {} bytes", data.len())))?;
        // A large record's data CRC is taken outside the lock (other appends then wait
        // only for the write itself) and combined with the header's; a small one is
        // cheaper to CRC whole under the lock than to combine.
        let data_crc = (data.len() >= CRC_OUTSIDE_LOCK).then(|| crc32c::crc32c(data));
        let mut g = self.inner.lock();
        let seq = g.next_seq;
        let rec_len = (HEADER_LEN + data.len()) as u64;
        let active_len = g.segments.get(&g.active).map_or(0, |s| s.len);
        if active_len > 0 && active_len + rec_len > self.segment_bytes {
            self.roll(&mut g, seq)?;
        }
        let active = g.active;
        let Some(seg) = g.segments.get_mut(&active) else {
            return Err(BlockError::Invalid("journal has no active segment".into()));
        };
        let header = encode_header(seq, key, offset, data, data_crc);
        let pos = seg.len;
        pwritev_all(&seg.file, &[&header, data], pos)
            .map_err(io_err(&seg_path(&self.dir, active)))?;
        seg.len += rec_len;
        seg.max_seq.insert(key, seq);
        g.next_seq = seq + 1;
        g.bytes_total += rec_len;
        g.active_unsynced = true;
        Ok(JournalLoc {
            seq,
            segment: active,
            data_pos: pos + HEADER_LEN as u64,
            len,
        })
    }

    fn roll(&self, g: &mut Inner, first_seq: u64) -> Result<()> {
        let path = seg_path(&self.dir, first_seq);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if g.active_unsynced
            && let Some(old) = g.segments.get(&g.active)
        {
            let file = old.file.clone();
            g.unsynced.push(file);
        }
        g.segments.insert(
            first_seq,
            Segment {
                file: Arc::new(file),
                len: 0,
                max_seq: HashMap::new(),
            },
        );
        g.active = first_seq;
        g.active_unsynced = false;
        g.dir_unsynced = true;
        Ok(())
    }

    /// Starts a new active segment if the active one holds at least `min_len` bytes, all
    /// of them applied or forgotten: it can then be reclaimed like a full one. (On a
    /// small disk, an active segment that takes long to fill would otherwise keep the
    /// space of data already chunked or deleted.) Returns whether it rolled.
    pub fn roll_if_applied(&self, min_len: u64) -> Result<bool> {
        let mut g = self.inner.lock();
        let Some(seg) = g.segments.get(&g.active) else {
            return Ok(false);
        };
        let done = seg
            .max_seq
            .iter()
            .all(|(k, &s)| g.applied.get(k).is_some_and(|&a| a >= s));
        if seg.len < min_len.max(1) || !done {
            return Ok(false);
        }
        let next = g.next_seq;
        self.roll(&mut g, next)?;
        Ok(true)
    }

    /// Makes every record appended before this call durable (group commit).
    pub fn sync(&self) -> Result<()> {
        let target = self.inner.lock().next_seq - 1;
        {
            let mut st = self.sync.lock();
            loop {
                if st.durable_seq >= target {
                    return Ok(());
                }
                if !st.leader {
                    st.leader = true;
                    break;
                }
                self.sync_cv.wait(&mut st);
            }
        }
        let res = self.sync_as_leader();
        let mut st = self.sync.lock();
        st.leader = false;
        if let Ok(upto) = res {
            st.durable_seq = st.durable_seq.max(upto);
        }
        self.sync_cv.notify_all();
        res.map(|_| ())
    }

    /// Fsyncs everything appended so far; returns the highest seq now durable.
    fn sync_as_leader(&self) -> Result<u64> {
        let (upto, mut files, dir) = {
            let mut g = self.inner.lock();
            let mut files = std::mem::take(&mut g.unsynced);
            if g.active_unsynced
                && let Some(s) = g.segments.get(&g.active)
            {
                files.push(s.file.clone());
            }
            g.active_unsynced = false;
            let dir = std::mem::take(&mut g.dir_unsynced);
            (g.next_seq - 1, files, dir)
        };
        let mut result = Ok(());
        for (i, f) in files.iter().enumerate() {
            if let Err(e) = f.sync_data() {
                result = Err(io_err(&self.dir)(e));
                files.drain(..i);
                break;
            }
        }
        if result.is_ok() {
            files.clear();
            if dir {
                result = File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(&self.dir));
            }
        }
        if result.is_err() {
            let mut g = self.inner.lock();
            g.unsynced.extend(files);
            g.dir_unsynced |= dir;
        }
        result.map(|()| upto)
    }

    /// Reads `buf.len()` bytes of the record at `loc`, starting `off` bytes into its data.
    pub fn read(&self, loc: &JournalLoc, off: u32, buf: &mut [u8]) -> Result<()> {
        let file = self.segment_file(loc.segment).ok_or_else(|| {
            BlockError::Invalid(format!("journal segment {} is gone", loc.segment))
        })?;
        if u64::from(off) + buf.len() as u64 > u64::from(loc.len) {
            return Err(BlockError::Invalid(format!(
                "read of {} bytes at {off} past journal record of {}",
                buf.len(),
                loc.len
            )));
        }
        file.read_exact_at(buf, loc.data_pos + u64::from(off))
            .map_err(io_err(&seg_path(&self.dir, loc.segment)))
    }

    /// The open file of segment `id` (stays readable even if the segment is deleted
    /// afterwards).
    pub fn segment_file(&self, id: u64) -> Option<Arc<File>> {
        self.inner.lock().segments.get(&id).map(|s| s.file.clone())
    }

    /// The caller's metadata now holds every write of `key` with seq <= `applied_seq`.
    pub fn note_applied(&self, key: FileKey, applied_seq: u64) {
        let mut g = self.inner.lock();
        let e = g.applied.entry(key).or_insert(0);
        *e = (*e).max(applied_seq);
    }

    /// The file is deleted: none of its records is needed any more.
    pub fn forget(&self, key: FileKey) {
        self.inner.lock().applied.insert(key, u64::MAX);
    }

    /// Non-active segments all of whose records are applied or forgotten.
    pub fn reclaimable(&self) -> Vec<u64> {
        let g = self.inner.lock();
        g.segments
            .iter()
            .filter(|&(&id, seg)| {
                id != g.active
                    && seg
                        .max_seq
                        .iter()
                        .all(|(k, &s)| g.applied.get(k).is_some_and(|&a| a >= s))
            })
            .map(|(&id, _)| id)
            .collect()
    }

    /// Deletes segments returned by [`Journal::reclaimable`] (after the caller made its
    /// metadata durable). The active segment is never deleted.
    pub fn delete_segments(&self, ids: &[u64]) -> Result<()> {
        let mut g = self.inner.lock();
        if g.dir_unsynced {
            // The active segment's directory entry must be durable before older
            // segments vanish: its name carries the seq floor.
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(&self.dir))?;
            g.dir_unsynced = false;
        }
        for &id in ids {
            if id == g.active {
                continue;
            }
            let Some(seg) = g.segments.remove(&id) else {
                continue;
            };
            g.bytes_total -= seg.len;
            let path = seg_path(&self.dir, id);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        let live: HashSet<FileKey> = g
            .segments
            .values()
            .flat_map(|s| s.max_seq.keys().copied())
            .collect();
        g.applied.retain(|k, _| live.contains(k));
        Ok(())
    }

    /// Bytes in all segment files (for backpressure).
    pub fn bytes_total(&self) -> u64 {
        self.inner.lock().bytes_total
    }

    /// Ids of all segments, oldest first (the last one is the active segment).
    pub fn segments(&self) -> Vec<u64> {
        self.inner.lock().segments.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn key(ino: u64) -> FileKey {
        FileKey {
            share: ShareId(3),
            ino: Ino(ino),
        }
    }

    /// The header CRC built from the data's CRC (taken outside the lock) is the CRC that
    /// replay checks over header and data.
    #[test]
    fn combined_crc_is_the_record_crc() {
        for len in [0usize, 1, 7, 4096, 100_003] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let whole = encode_header(42, key(5), 1 << 33, &data, None);
            let combined = encode_header(42, key(5), 1 << 33, &data, Some(crc32c::crc32c(&data)));
            assert_eq!(whole, combined, "len {len}");
            assert_eq!(le_u32(&whole[4..8]), crc_of(&whole, &data), "len {len}");
        }
    }

    #[test]
    fn append_read_replay_roundtrip_with_rolls() {
        let dir = tempfile::tempdir().unwrap();
        let (j, recs) = Journal::open(dir.path(), 300).unwrap();
        assert!(recs.is_empty());
        let mut locs = Vec::new();
        for i in 0..20u64 {
            let data = vec![i as u8; 50 + i as usize];
            let loc = j.append(key(i % 3 + 2), i * 100, &data).unwrap();
            let mut back = vec![0u8; 10];
            j.read(&loc, 5, &mut back).unwrap();
            assert_eq!(back, vec![i as u8; 10]);
            locs.push(loc);
        }
        assert_eq!(locs[0].seq, 1);
        assert!(j.segments().len() > 3);
        j.sync().unwrap();
        drop(j);
        let (j, recs) = Journal::open(dir.path(), 300).unwrap();
        assert_eq!(recs.len(), 20);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1);
            assert_eq!(r.loc, locs[i]);
            assert_eq!(r.key, key(i as u64 % 3 + 2));
            assert_eq!(r.offset, i as u64 * 100);
            let mut back = vec![0u8; r.loc.len as usize];
            j.read(&r.loc, 0, &mut back).unwrap();
            assert_eq!(back, vec![i as u8; 50 + i]);
        }
        assert_eq!(j.append(key(2), 0, b"x").unwrap().seq, 21);
    }

    #[test]
    fn torn_tail_ends_replay_of_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        for i in 0..5u8 {
            j.append(key(2), 0, &[i; 100]).unwrap();
        }
        j.sync().unwrap();
        let seg = seg_path(&dir.path().join("journal"), j.segments()[0]);
        drop(j);
        // Corrupt one data byte of record 4 and append garbage.
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_all_at(&[0xFF], 3 * 140 + 40 + 7).unwrap();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        let (j, recs) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            recs.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // Seqs resume after the last valid record (and never below the segment names).
        assert_eq!(j.append(key(2), 0, b"y").unwrap().seq, 4);
        assert_eq!(*j.segments().last().unwrap(), 4);
    }

    #[test]
    fn reclaim_and_seq_floor_survive_empty_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), 200).unwrap();
        let a = j.append(key(2), 0, &[1; 100]).unwrap();
        let b = j.append(key(3), 0, &[2; 100]).unwrap();
        let c = j.append(key(2), 0, &[3; 100]).unwrap();
        assert_eq!(j.segments().len(), 3);
        assert!(j.reclaimable().is_empty());
        j.note_applied(key(2), a.seq);
        assert_eq!(j.reclaimable(), vec![a.segment]);
        j.forget(key(3));
        assert_eq!(j.reclaimable(), vec![a.segment, b.segment]);
        j.note_applied(key(2), c.seq);
        // The active segment is never reclaimable.
        assert_eq!(j.reclaimable(), vec![a.segment, b.segment]);
        let before = j.bytes_total();
        j.delete_segments(&j.reclaimable()).unwrap();
        assert_eq!(j.bytes_total(), before - 280);
        assert_eq!(j.segments(), vec![c.segment]);
        j.sync().unwrap();
        drop(j);
        // Reopen twice: old segments become reclaimable, seqs keep increasing.
        let (j, recs) = Journal::open(dir.path(), 200).unwrap();
        assert_eq!(recs.len(), 1);
        j.note_applied(key(2), c.seq);
        j.delete_segments(&j.reclaimable()).unwrap();
        assert_eq!(j.segments().len(), 1);
        drop(j);
        let (j, recs) = Journal::open(dir.path(), 200).unwrap();
        assert!(recs.is_empty());
        assert_eq!(j.append(key(2), 0, b"z").unwrap().seq, c.seq + 1);
    }

    #[test]
    fn group_commit_from_many_threads() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), 4096).unwrap();
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let j = &j;
                s.spawn(move || {
                    for i in 0..20u64 {
                        j.append(key(t + 2), i, &[t as u8; 64]).unwrap();
                        j.sync().unwrap();
                    }
                });
            }
        });
        assert_eq!(j.sync.lock().durable_seq, 160);
        drop(j);
        let (_, recs) = Journal::open(dir.path(), 4096).unwrap();
        assert_eq!(recs.len(), 160);
    }
}
