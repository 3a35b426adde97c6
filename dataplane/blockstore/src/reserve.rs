//! The disk reserve: writes that grow what a share stores stop while a file system under
//! the store (its block directory, its metadata store) has less than the reserve free.
//!
//! Why: what frees space needs some first. A delete commits metadata, a truncate or a
//! flush writes a chunk and commits, journal segments are replaced. An embedded metadata
//! engine that meets ENOSPC may never write again (sled 0.34 fails every later write),
//! so the last bytes of a disk are kept for the operations that give space back: new data
//! (WRITE), new names (CREATE, MKDIR, SYMLINK, LINK, MKNOD) and attribute changes other
//! than shrinking get ENOSPC at the reserve; REMOVE, RMDIR, RENAME and truncates go on.
//!
//! The reserve of a file system is 5% of its size, at least 8 MiB and at most 256 MiB.
//! Free space is read with `statvfs` at most every [`FRESH`], so a client sees space
//! come back within that time of being freed, with no restart.

use crate::error::{BlockError, Result};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a reading of free space is used.
const FRESH: Duration = Duration::from_millis(250);
const MIN_RESERVE: u64 = 8 << 20;
const MAX_RESERVE: u64 = 256 << 20;

/// `statvfs` of the file system holding `path`.
pub(crate) fn statvfs(path: &Path) -> Result<libc::statvfs> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| BlockError::Invalid(format!("path {} has a NUL", path.display())))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated string and `st` points to writable memory of
    // the right type; statvfs fills it on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(crate::error::io_err(path)(std::io::Error::last_os_error()));
    }
    // SAFETY: statvfs returned 0, so the struct is initialized.
    Ok(unsafe { st.assume_init() })
}

/// Free (for an unprivileged writer) and total bytes of the file system holding `path`.
// The statvfs field types differ between platforms (u32 on macOS).
#[allow(clippy::unnecessary_cast)]
pub(crate) fn fs_space(path: &Path) -> Result<(u64, u64)> {
    let st = statvfs(path)?;
    let frsize = st.f_frsize as u64;
    Ok((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
}

/// The reserve kept on a file system of `total` bytes.
pub(crate) fn reserve_of(total: u64) -> u64 {
    (total / 20).clamp(MIN_RESERVE, MAX_RESERVE)
}

/// The last reading of the guarded file systems.
#[derive(Clone, Debug)]
struct Reading {
    at: Instant,
    /// Bytes that may still be stored before the tightest file system reaches its
    /// reserve (negative: past it), less what was admitted since the reading.
    headroom: i128,
    /// Why the tightest file system is short, when it is.
    short: String,
}

/// The guarded paths of one engine and the last reading of their space.
#[derive(Debug)]
pub(crate) struct Reserve {
    paths: Mutex<Vec<PathBuf>>,
    last: Mutex<Option<Reading>>,
    /// Free and total bytes of a path's file system ([`fs_space`]; tests fake it).
    space: fn(&Path) -> Result<(u64, u64)>,
}

impl Reserve {
    pub(crate) fn new(root: &Path) -> Reserve {
        Reserve {
            paths: Mutex::new(vec![root.to_path_buf()]),
            last: Mutex::new(None),
            space: fs_space,
        }
    }

    /// Guards `path` too (e.g. the directory of a metadata store).
    pub(crate) fn add_path(&self, path: &Path) {
        let mut p = self.paths.lock();
        if !p.iter().any(|q| q == path) {
            p.push(path.to_path_buf());
        }
        *self.last.lock() = None;
    }

    /// Admits `need` more bytes if every guarded file system keeps more than its reserve
    /// free afterwards, else [`BlockError::NoSpace`] naming the one that is short. What
    /// is admitted is counted against the last reading, so a burst between two readings
    /// cannot run past the reserve.
    pub(crate) fn check(&self, need: u64) -> Result<()> {
        let need = i128::from(need);
        let mut last = self.last.lock();
        if let Some(r) = last.as_mut()
            && r.at.elapsed() < FRESH
            && r.headroom > need
        {
            r.headroom -= need;
            return Ok(());
        }
        let mut r = self.read();
        let admitted = r.headroom > need;
        if admitted {
            r.headroom -= need;
        }
        let short = r.short.clone();
        *last = Some(r);
        if admitted {
            Ok(())
        } else {
            Err(BlockError::NoSpace(short))
        }
    }

    /// Reads the space of every guarded file system (one that cannot be read, e.g.
    /// gone, does not stop writes: the stores report their own errors).
    fn read(&self) -> Reading {
        let paths = self.paths.lock().clone();
        let mut r = Reading {
            at: Instant::now(),
            headroom: i128::MAX,
            short: String::new(),
        };
        for p in &paths {
            let Ok((avail, total)) = (self.space)(p) else {
                continue;
            };
            let reserve = reserve_of(total);
            let headroom = i128::from(avail) - i128::from(reserve);
            if headroom < r.headroom {
                r.headroom = headroom;
                r.short = format!(
                    "the file system of {} has {} MiB free, at or near its reserve of {} MiB: \
                     new data and names are refused until space is freed (deletes, renames \
                     and truncates still work)",
                    p.display(),
                    avail >> 20,
                    reserve >> 20
                );
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_bounds() {
        assert_eq!(reserve_of(64 << 20), 8 << 20);
        assert_eq!(reserve_of(1 << 30), (1 << 30) / 20);
        assert_eq!(reserve_of(1 << 40), 256 << 20);
        let dir = tempfile::tempdir().unwrap();
        let (avail, total) = fs_space(dir.path()).unwrap();
        assert!(total > 0 && avail <= total);
    }

    /// Bytes the test "wrote" to its fake file system.
    static WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// A 64 MiB file system with 20 MiB free before the test writes: 12 MiB above its
    /// 8 MiB reserve.
    fn fake_space(_: &Path) -> Result<(u64, u64)> {
        let written = WRITTEN.load(std::sync::atomic::Ordering::SeqCst);
        Ok(((20 << 20) - written, 64 << 20))
    }

    /// Writes admitted between two readings count against the first, and a reading shows
    /// what they took: 1 MiB writes stop at the reserve, not past it, whatever the timing.
    #[test]
    fn writes_stop_at_the_reserve() {
        let r = Reserve {
            space: fake_space,
            ..Reserve::new(Path::new("/anywhere"))
        };
        let mut admitted = 0;
        while r.check(1 << 20).is_ok() {
            WRITTEN.fetch_add(1 << 20, std::sync::atomic::Ordering::SeqCst);
            admitted += 1;
            assert!(admitted <= 12, "admitted past the reserve");
            if admitted % 4 == 0 {
                *r.last.lock() = None; // a reading now and then
            }
        }
        assert_eq!(
            admitted, 11,
            "12 MiB above the reserve: 11 whole MiB with room left"
        );
        let err = r.check(1 << 20).unwrap_err().to_string();
        assert!(err.contains("reserve of 8 MiB"), "{err}");
        // space freed shows at the next reading
        WRITTEN.store(0, std::sync::atomic::Ordering::SeqCst);
        *r.last.lock() = None;
        r.check(1 << 20).unwrap();
    }
}
