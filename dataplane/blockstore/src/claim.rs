//! One owner per local block store.
//!
//! A block store's chunks are referenced by the metadata of the server that writes them,
//! and only that server's GC knows which are live: a second server on the same directory
//! would replay the first one's journal and its GC would delete every chunk the first one
//! references. So a store is claimed twice over:
//! - while open, by an exclusive `flock` on `<root>/store.lock` (which also holds the pid
//!   of the process, for the message): a second open fails at once, whatever its owner;
//! - for good, by `<root>/owner.json`, naming the server (its id and data directory)
//!   that first opened it: a different server is refused even while the owner is down.
//!   Handing a store over is an explicit act: stop the owner, delete the file.
//!
//! Invariants: the lock is taken before anything in the store is read or written, and
//! held until the [`StoreLock`] is dropped (the engine keeps it); the owner file is
//! written durably (temporary file, fsync, rename, directory fsync) before it is relied on.

use crate::error::{BlockError, Result, io_err};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "store.lock";
const OWNER_FILE: &str = "owner.json";

/// The server a block store belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// A stable identifier of the server (kept in its data directory).
    pub server_id: String,
    /// Where that server keeps its data (for messages only).
    pub data_dir: String,
}

/// The exclusive lock of an open store; released when dropped.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

/// Takes the exclusive lock of the store at `root` (creating `root` if needed).
pub(crate) fn lock(root: &Path) -> Result<StoreLock> {
    std::fs::create_dir_all(root).map_err(io_err(root))?;
    let path = root.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    // SAFETY: flock on a valid open descriptor has no memory-safety preconditions.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        let holder = holder.trim();
        return Err(BlockError::InUse(format!(
            "local block store {} is open in another process{}: one store serves one \
             server (its GC would delete chunks the other references)",
            root.display(),
            if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            }
        )));
    }
    file.set_len(0).map_err(io_err(&path))?;
    write!(file, "{}", std::process::id()).map_err(io_err(&path))?;
    Ok(StoreLock { _file: file })
}

/// Checks that the store at `root` belongs to `owner`, claiming it if nobody has.
pub(crate) fn check_owner(root: &Path, owner: &Owner) -> Result<()> {
    let path = root.join(OWNER_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let found: Owner = serde_json::from_slice(&bytes).map_err(|e| {
                BlockError::InUse(format!(
                    "{}: unreadable owner file ({e}); fix or delete it to let this server claim \
                     the store",
                    path.display()
                ))
            })?;
            if found.server_id == owner.server_id {
                return Ok(());
            }
            Err(BlockError::InUse(format!(
                "local block store {} belongs to another server (id {}, data directory {}); \
                 one store serves one server, whose GC alone knows which chunks are live. To \
                 hand it over, stop that server for good and delete {}",
                root.display(),
                found.server_id,
                found.data_dir,
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_owner(root, &path, owner),
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn write_owner(root: &Path, path: &PathBuf, owner: &Owner) -> Result<()> {
    let tmp = root.join(format!("{OWNER_FILE}.tmp"));
    let body = serde_json::to_vec_pretty(owner)
        .map_err(|e| BlockError::Invalid(format!("owner record: {e}")))?;
    (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()
    })()
    .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(io_err(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(id: &str) -> Owner {
        Owner {
            server_id: id.into(),
            data_dir: format!("/data/{id}"),
        }
    }

    #[test]
    fn one_lock_at_a_time_and_one_owner_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err().to_string();
        assert!(err.contains("open in another process"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        let _again = lock(dir.path()).unwrap();

        check_owner(dir.path(), &owner("a")).unwrap(); // claimed
        check_owner(dir.path(), &owner("a")).unwrap(); // its own
        let err = check_owner(dir.path(), &owner("b"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("belongs to another server (id a"), "{err}");
        assert!(err.contains("/data/a"), "{err}");
        std::fs::remove_file(dir.path().join(OWNER_FILE)).unwrap(); // handed over
        check_owner(dir.path(), &owner("b")).unwrap();
        std::fs::write(dir.path().join(OWNER_FILE), b"{garbage").unwrap();
        let err = check_owner(dir.path(), &owner("b"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unreadable owner file"), "{err}");
    }
}
