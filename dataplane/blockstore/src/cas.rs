//! Local content-addressed chunk store (the local tier).
//!
//! Layout: `root/blocks/{hh}/{hh}/{hex}` (the first two bytes of the BLAKE3 hash as two
//! directory levels), `root/tmp/` for chunks being written.
//!
//! Invariants:
//! - A file under `blocks/` always holds the complete chunk: it is written to `tmp/`,
//!   fsynced, then hard-linked into place (link never replaces, so concurrent writers of
//!   the same chunk cannot race) and the temp name unlinked. Only the directory entries
//!   are not yet durable after [`LocalCas::put`]; [`LocalCas::sync_dirs`] fsyncs every
//!   directory touched since the previous call (batched durability of the renames).
//! - Anything left in `tmp/` at open is garbage from a crash and is deleted.
//! - [`LocalCas::read_at`] is a ranged read: it preads exactly the requested range (a
//!   4 KiB read costs 4 KiB of I/O, never the whole chunk) through a small LRU cache of
//!   open descriptors. It cannot verify the BLAKE3 hash of a partial range; whole-chunk
//!   reads ([`LocalCas::read_chunk`]) always verify and never return mismatching bytes.
//! - `total_bytes` is the sum of the lengths of the chunk files: scanned at open and
//!   maintained by `put`/`remove`.
//! - GC safety: a chunk file's mtime is the last time a writer stored or deduplicated
//!   against it. `put` of an existing chunk refreshes the mtime, and
//!   [`LocalCas::remove_if_older`] (the GC sweep) re-checks the mtime and unlinks under the
//!   same per-hash stripe lock, so a chunk that a flush is about to reference is never
//!   deleted: either the sweep sees the fresh mtime (inside the grace period) or the flush
//!   finds the file gone and writes it again.

use crate::error::{BlockError, Result, io_err};
use dittofs_types::ContentHash;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Open chunk files kept at most: 256, or an eighth of the process's descriptor limit
/// if that is lower (clients, journal segments and the metadata store need theirs).
fn fd_cache_cap() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let limit = if rc == 0 {
        usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    (limit / 8).clamp(16, 256)
}

/// The on-disk chunk store of one data plane.
#[derive(Debug)]
pub struct LocalCas {
    blocks: PathBuf,
    tmp: PathBuf,
    total: AtomicU64,
    tmp_seq: AtomicU64,
    bytes_read: AtomicU64,
    /// Chunk files stored or refreshed by `put` (see [`LocalCas::changes`]).
    changes: AtomicU64,
    dirty_dirs: Mutex<HashSet<PathBuf>>,
    /// Held across a whole `sync_dirs` pass (drain + fsyncs): see there.
    dir_sync: Mutex<()>,
    fds: Mutex<FdCache>,
    /// Per-hash stripes serializing "dedup hit + touch" against "GC stat + unlink".
    stripes: Vec<Mutex<()>>,
}

const STRIPES: usize = 64;

#[derive(Debug, Default)]
struct FdCache {
    tick: u64,
    cap: usize,
    map: HashMap<ContentHash, (Arc<File>, u64)>,
}

impl FdCache {
    fn get(&mut self, hash: &ContentHash) -> Option<Arc<File>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(hash).map(|e| {
            e.1 = tick;
            e.0.clone()
        })
    }

    fn insert(&mut self, hash: ContentHash, f: Arc<File>) {
        if self.map.len() >= self.cap && !self.map.contains_key(&hash) {
            let oldest = self.map.iter().min_by_key(|(_, e)| e.1).map(|(h, _)| *h);
            if let Some(h) = oldest {
                self.map.remove(&h);
            }
        }
        self.tick += 1;
        self.map.insert(hash, (f, self.tick));
    }
}

/// Sets the file's mtime to now.
fn touch(path: &Path) -> Result<()> {
    let f = File::options()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    f.set_modified(SystemTime::now()).map_err(io_err(path))
}

impl LocalCas {
    /// Opens (creating if needed) the store at `root`, deletes stale temp files and
    /// scans the chunk files to initialize `total_bytes`.
    pub fn open(root: &Path) -> Result<LocalCas> {
        let blocks = root.join("blocks");
        let tmp = root.join("tmp");
        for d in [root, &blocks, &tmp] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        for entry in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let path = entry.map_err(io_err(&tmp))?.path();
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        let cas = LocalCas {
            blocks,
            tmp,
            total: AtomicU64::new(0),
            tmp_seq: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            dirty_dirs: Mutex::new(HashSet::new()),
            dir_sync: Mutex::new(()),
            fds: Mutex::new(FdCache {
                cap: fd_cache_cap(),
                ..FdCache::default()
            }),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        };
        let mut total = 0;
        cas.walk(|_, len, _| {
            total += len;
            Ok(())
        })?;
        cas.total.store(total, Ordering::Relaxed);
        Ok(cas)
    }

    fn path_of(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_hex();
        self.blocks.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// Stores `data` under `hash` (which the caller computed from `data`).
    /// Returns true if the chunk was newly written, false if it was already present.
    pub fn put(&self, hash: &ContentHash, data: &[u8]) -> Result<bool> {
        let path = self.path_of(hash);
        let guard = self.stripe(hash).lock();
        match fs::metadata(&path) {
            Ok(m) if m.len() == data.len() as u64 => {
                // Dedup hit: refresh the mtime so a concurrent GC keeps it (see header).
                touch(&path)?;
                self.changes.fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
            Ok(m) => {
                tracing::warn!(%hash, len = m.len(), "replacing chunk file of wrong length");
                self.remove(hash)?;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        drop(guard);
        let Some(d2) = path.parent() else {
            return Err(BlockError::Invalid(format!(
                "bad chunk path {}",
                path.display()
            )));
        };
        if !d2.is_dir() {
            let mut dirty = Vec::new();
            for d in [d2.parent(), Some(d2)].into_iter().flatten() {
                match fs::create_dir(d) {
                    Ok(()) => dirty.extend(d.parent().map(Path::to_path_buf)),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_err(d)(e)),
                }
            }
            self.dirty_dirs.lock().extend(dirty);
        }
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{}.{seq}", hash.to_hex()));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_data()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                self.dirty_dirs.lock().insert(d2.to_path_buf());
                self.total.fetch_add(data.len() as u64, Ordering::Relaxed);
                self.changes.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Fsyncs every directory whose entries changed since the last call, making the
    /// preceding `put`s and `remove`s durable.
    ///
    /// Concurrent callers (flushes running in parallel, COMMIT) are serialized: a caller
    /// that finds the set empty because another pass drained it must not return before
    /// that pass has fsynced those directories, or it would publish metadata naming a
    /// chunk whose directory entry is not durable yet. Waiting for the lock is waiting
    /// for that pass; one pass then covers every caller that arrived meanwhile.
    pub fn sync_dirs(&self) -> Result<()> {
        let _pass = self.dir_sync.lock();
        let dirs: Vec<PathBuf> = self.dirty_dirs.lock().drain().collect();
        // Parents first is not required: each fsync covers one directory's entries.
        for (i, d) in dirs.iter().enumerate() {
            let synced = File::open(d).and_then(|f| f.sync_all());
            if let Err(e) = synced {
                self.dirty_dirs.lock().extend(dirs[i..].iter().cloned());
                return Err(io_err(d)(e));
            }
        }
        Ok(())
    }

    fn fd(&self, hash: &ContentHash) -> Result<Arc<File>> {
        if let Some(f) = self.fds.lock().get(hash) {
            return Ok(f);
        }
        let path = self.path_of(hash);
        let f = match File::open(&path) {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(BlockError::NotFound { hash: *hash });
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        self.fds.lock().insert(*hash, f.clone());
        Ok(f)
    }

    /// [`LocalCas::read_at`] that never waits for the disk: `Ok(false)` unless the chunk's
    /// file is already open and the whole range is in the page cache (then it is read
    /// and `Ok(true)`). Lets a reader skip the hop to a blocking thread on a cache hit.
    pub fn read_at_cached(&self, hash: &ContentHash, offset: u64, buf: &mut [u8]) -> Result<bool> {
        let Some(f) = self.fds.lock().get(hash) else {
            return Ok(false);
        };
        let hit = pread_cached(&f, buf, offset).map_err(io_err(&self.path_of(hash)))?;
        if hit {
            self.bytes_read
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        Ok(hit)
    }

    /// Ranged read of `buf.len()` bytes at `offset` inside the chunk (one pread of
    /// exactly that range). Returns the bytes read (short only at the chunk's end).
    pub fn read_at(&self, hash: &ContentHash, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let f = self.fd(hash)?;
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(&self.path_of(hash))(e)),
            }
        }
        self.bytes_read.fetch_add(done as u64, Ordering::Relaxed);
        Ok(done)
    }

    /// Reads the whole chunk and verifies its BLAKE3 hash.
    pub fn read_chunk(&self, hash: &ContentHash) -> Result<Vec<u8>> {
        let f = self.fd(hash)?;
        let len = f.metadata().map_err(io_err(&self.path_of(hash)))?.len();
        let mut buf = vec![0u8; len as usize];
        let n = self.read_at(hash, 0, &mut buf)?;
        if n != buf.len() || ContentHash::of(&buf) != *hash {
            return Err(BlockError::Corrupt { hash: *hash });
        }
        Ok(buf)
    }

    /// Length of the chunk file, `None` if absent.
    pub fn chunk_len(&self, hash: &ContentHash) -> Result<Option<u64>> {
        let path = self.path_of(hash);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    pub fn contains(&self, hash: &ContentHash) -> Result<bool> {
        Ok(self.chunk_len(hash)?.is_some())
    }

    /// Deletes the chunk; true if it existed. Durable after the next `sync_dirs`.
    pub fn remove(&self, hash: &ContentHash) -> Result<bool> {
        let path = self.path_of(hash);
        self.fds.lock().map.remove(hash);
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(&path)(e)),
        };
        match fs::remove_file(&path) {
            Ok(()) => {
                self.total.fetch_sub(len, Ordering::Relaxed);
                if let Some(d) = path.parent() {
                    self.dirty_dirs.lock().insert(d.to_path_buf());
                }
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn stripe(&self, hash: &ContentHash) -> &Mutex<()> {
        &self.stripes[usize::from(hash.as_bytes()[0]) % STRIPES]
    }

    /// Deletes the chunk if `may` says so, asked under the chunk's lock (so no `put`
    /// deduplicates against it meanwhile). Returns the freed length, or None if the chunk
    /// is absent or kept.
    pub fn remove_if(&self, hash: &ContentHash, may: impl FnOnce() -> bool) -> Result<Option<u64>> {
        let _g = self.stripe(hash).lock();
        if !may() {
            return Ok(None);
        }
        let len = self.chunk_len(hash)?;
        Ok(if self.remove(hash)? { len } else { None })
    }

    /// GC sweep step: deletes the chunk if its file was last written or deduplicated
    /// against before `cutoff`. Returns the freed length, or None if the chunk is absent
    /// or young. Serialized with `put`'s dedup path (see the module header).
    pub fn remove_if_older(&self, hash: &ContentHash, cutoff: SystemTime) -> Result<Option<u64>> {
        let _g = self.stripe(hash).lock();
        let path = self.path_of(hash);
        match fs::metadata(&path) {
            Ok(m) => {
                let mtime = m.modified().map_err(io_err(&path))?;
                if mtime >= cutoff {
                    return Ok(None);
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        }
        let len = self.chunk_len(hash)?;
        Ok(if self.remove(hash)? { len } else { None })
    }

    /// Calls `f(hash, len, mtime)` for every chunk file. Files whose name is not a hash
    /// are skipped with a warning.
    pub fn walk(
        &self,
        mut f: impl FnMut(ContentHash, u64, SystemTime) -> Result<()>,
    ) -> Result<()> {
        let list = |d: &Path| -> Result<Vec<PathBuf>> {
            let mut v = Vec::new();
            for e in fs::read_dir(d).map_err(io_err(d))? {
                v.push(e.map_err(io_err(d))?.path());
            }
            v.sort();
            Ok(v)
        };
        for d1 in list(&self.blocks)? {
            for d2 in list(&d1)? {
                for file in list(&d2)? {
                    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    let Ok(hash) = ContentHash::from_hex(name) else {
                        tracing::warn!(path = %file.display(), "unexpected file in chunk store");
                        continue;
                    };
                    let m = fs::metadata(&file).map_err(io_err(&file))?;
                    let mtime = m.modified().map_err(io_err(&file))?;
                    f(hash, m.len(), mtime)?;
                }
            }
        }
        Ok(())
    }

    /// Sum of the sizes of all chunk files.
    /// How many times `put` stored or refreshed a chunk file (monotonic): when it has
    /// not moved, the set of chunks and their mtimes is what an earlier look saw.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    pub fn total_bytes(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Bytes read from chunk files since open (ranged and whole reads).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}

/// Reads exactly `buf.len()` bytes at `offset` only if the page cache holds them all
/// (`preadv2` with `RWF_NOWAIT`). `Ok(false)`: some of the range would need the disk (or
/// lies past the end of the file); nothing is promised about `buf` then.
pub(crate) fn pread_cached(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut done = 0usize;
    while done < buf.len() {
        let rest = &mut buf[done..];
        let iov = libc::iovec {
            iov_base: rest.as_mut_ptr().cast(),
            iov_len: rest.len(),
        };
        let Ok(off) = libc::off_t::try_from(offset + done as u64) else {
            return Ok(false);
        };
        // SAFETY: `iov` describes `rest`, a live, exclusively borrowed buffer of exactly
        // `iov_len` bytes; the fd stays open for the call (borrowed from `f`).
        let n = unsafe { libc::preadv2(f.as_raw_fd(), &iov, 1, off, libc::RWF_NOWAIT) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EOPNOTSUPP) => Ok(false),
                Some(libc::EINTR) => continue,
                _ => Err(e),
            };
        }
        if n == 0 {
            return Ok(false);
        }
        done += n as usize;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn gc_removes_only_old_chunks_and_dedup_refreshes_age() {
        let dir = tempfile::tempdir().unwrap();
        let cas = LocalCas::open(dir.path()).unwrap();
        let a = data(4_000, 7);
        let ha = ContentHash::of(&a);
        cas.put(&ha, &a).unwrap();
        let path = cas.path_of(&ha);
        let old = SystemTime::now() - std::time::Duration::from_secs(7200);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let cutoff = SystemTime::now() - std::time::Duration::from_secs(3600);
        // A dedup hit makes the chunk young again: the sweep must keep it.
        assert!(!cas.put(&ha, &a).unwrap());
        assert_eq!(cas.remove_if_older(&ha, cutoff).unwrap(), None);
        assert!(cas.contains(&ha).unwrap());
        // Old and untouched: deleted, length reported, accounting updated.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(cas.remove_if_older(&ha, cutoff).unwrap(), Some(4_000));
        assert!(!cas.contains(&ha).unwrap());
        assert_eq!(cas.total_bytes(), 0);
        assert_eq!(cas.remove_if_older(&ha, cutoff).unwrap(), None);
    }

    #[test]
    fn put_read_dedup_remove_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cas = LocalCas::open(dir.path()).unwrap();
        let a = data(10_000, 1);
        let ha = ContentHash::of(&a);
        assert!(cas.put(&ha, &a).unwrap());
        assert!(!cas.put(&ha, &a).unwrap());
        cas.sync_dirs().unwrap();
        assert!(cas.contains(&ha).unwrap());
        assert_eq!(cas.chunk_len(&ha).unwrap(), Some(10_000));
        assert_eq!(cas.total_bytes(), 10_000);
        assert_eq!(cas.read_chunk(&ha).unwrap(), a);
        let mut buf = [0u8; 100];
        assert_eq!(cas.read_at(&ha, 9_950, &mut buf).unwrap(), 50);
        assert_eq!(&buf[..50], &a[9_950..]);
        let hex = ha.to_hex();
        assert!(
            dir.path()
                .join("blocks")
                .join(&hex[..2])
                .join(&hex[2..4])
                .join(&hex)
                .is_file()
        );

        let b = data(500, 2);
        let hb = ContentHash::of(&b);
        cas.put(&hb, &b).unwrap();
        fs::write(dir.path().join("tmp").join("stale"), b"x").unwrap();
        drop(cas);

        let cas = LocalCas::open(dir.path()).unwrap();
        assert_eq!(cas.total_bytes(), 10_500);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        let mut seen = Vec::new();
        cas.walk(|h, len, _| {
            seen.push((h, len));
            Ok(())
        })
        .unwrap();
        seen.sort();
        let mut want = vec![(ha, 10_000), (hb, 500)];
        want.sort();
        assert_eq!(seen, want);
        assert!(cas.remove(&ha).unwrap());
        assert!(!cas.remove(&ha).unwrap());
        assert_eq!(cas.total_bytes(), 500);
        assert!(matches!(
            cas.read_at(&ha, 0, &mut buf),
            Err(BlockError::NotFound { .. })
        ));
    }

    #[test]
    fn corrupt_chunk_is_detected_and_ranged_read_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let cas = LocalCas::open(dir.path()).unwrap();
        let a = data(1 << 20, 3);
        let h = ContentHash::of(&a);
        cas.put(&h, &a).unwrap();
        let hex = h.to_hex();
        let path = dir
            .path()
            .join("blocks")
            .join(&hex[..2])
            .join(&hex[2..4])
            .join(&hex);
        // Overwrite everything but [8192, 12288) on disk: a ranged read of that
        // window still returns the right bytes, and only 4 KiB are read.
        let mut on_disk = vec![0xEEu8; a.len()];
        on_disk[8192..12288].copy_from_slice(&a[8192..12288]);
        fs::write(&path, &on_disk).unwrap();
        let before = cas.bytes_read();
        let mut buf = vec![0u8; 4096];
        assert_eq!(cas.read_at(&h, 8192, &mut buf).unwrap(), 4096);
        assert_eq!(&buf[..], &a[8192..12288]);
        assert_eq!(cas.bytes_read() - before, 4096);
        assert!(matches!(
            cas.read_chunk(&h),
            Err(BlockError::Corrupt { .. })
        ));
    }

    #[test]
    fn concurrent_puts_of_one_chunk_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let cas = LocalCas::open(dir.path()).unwrap();
        let a = data(4096, 9);
        let h = ContentHash::of(&a);
        let news: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| cas.put(&h, &a).unwrap()))
                .collect();
            hs.into_iter().map(|t| usize::from(t.join().unwrap())).sum()
        });
        assert_eq!(news, 1);
        assert_eq!(cas.total_bytes(), 4096);
    }
}
