//! The recycle bin's directories: `#recycle` itself and the "scaffolding" directories
//! that mirror a victim's path, created on demand outside the locks of the operation
//! that recycles (each in its own idempotent MKDIR transaction, through
//! `crate::ops_create`), and the walk from a directory up to the share root that names
//! the mirror.
//!
//! Invariants: a directory found by name is reused, a name taken by a non-directory is
//! skipped with a suffix (`a (2)`), and a MKDIR that lost a race (`Exist`) looks again; a
//! parent chain longer than `MAX_DEPTH` is a fault, never an endless loop.

use super::names::{MAX_SUFFIX, suffixed};
use super::policy::TRASH_DIR;
use crate::attr::SetAttr;
use crate::cred::Credentials;
use crate::error::{FsError, FsResult};
use crate::fs::Fs;
use crate::ops_create::NewKind;
use dittofs_metadata::InodeRecord;
use dittofs_types::{FileType, Ino};

/// Mode of `#recycle` (world-writable, sticky: users only remove their own items).
const BIN_MODE: u32 = 0o1777;
/// Directory page size of the walks.
pub(crate) const PAGE: usize = 1024;
/// Bound of parent-chain walks (a corrupt chain must not loop forever).
const MAX_DEPTH: usize = 100_000;
/// Cap of the directory-name hint cache.
const MAX_NAME_HINTS: usize = 65_536;

impl Fs {
    /// Whether directory `dir` is `#recycle` or lies below it.
    pub(crate) async fn in_bin(&self, dir: Ino) -> FsResult<bool> {
        let Some(bin) = self.bin_root_ino().await? else {
            return Ok(false);
        };
        let mut cur = dir;
        for _ in 0..MAX_DEPTH {
            if cur == bin {
                return Ok(true);
            }
            if cur == Ino::ROOT {
                return Ok(false);
            }
            cur = match self.store.get_inode(self.share, cur).await? {
                Some(r) if r.kind == FileType::Directory => r.parent,
                _ => return Ok(false),
            };
        }
        Err(FsError::ServerFault(
            "directory parent chain too deep or cyclic".into(),
        ))
    }

    /// The directories from the root (exclusive) down to `dir` (inclusive), with their
    /// names. A directory renamed meanwhile is looked up again (a few times, then
    /// `Jukebox`: the client retries).
    pub(super) async fn dir_chain(&self, dir: Ino) -> FsResult<Vec<(Vec<u8>, InodeRecord)>> {
        let mut out = Vec::new();
        let mut cur = dir;
        for _ in 0..MAX_DEPTH {
            if cur == Ino::ROOT {
                out.reverse();
                return Ok(out);
            }
            let mut found = None;
            for _ in 0..3 {
                let rec = self.inode(cur).await?;
                if rec.kind != FileType::Directory {
                    return Err(FsError::NotDir);
                }
                match self.name_in_dir(rec.parent, cur).await {
                    Ok(name) => {
                        found = Some((name, rec));
                        break;
                    }
                    Err(FsError::NoEnt) => {}
                    Err(e) => return Err(e),
                }
            }
            let (name, rec) = found.ok_or(FsError::Jukebox)?;
            cur = rec.parent;
            out.push((name, rec));
        }
        Err(FsError::ServerFault(
            "directory parent chain too deep or cyclic".into(),
        ))
    }

    /// The name of directory `child` in `parent`: a verified hint, else a scan of
    /// `parent` (which records hints for every subdirectory it passes).
    async fn name_in_dir(&self, parent: Ino, child: Ino) -> FsResult<Vec<u8>> {
        let hint = self.dir_names.lock().get(&child).cloned();
        if let Some((p, n)) = hint
            && p == parent
            && self
                .store
                .lookup(self.share, parent, &n)
                .await?
                .is_some_and(|e| e.ino == child)
        {
            return Ok(n);
        }
        let mut cookie = 0;
        loop {
            let page = self
                .store
                .read_dir(self.share, parent, cookie, PAGE)
                .await?;
            let Some(last) = page.last() else {
                return Err(FsError::NoEnt);
            };
            cookie = last.cookie;
            let mut found = None;
            {
                let mut hints = self.dir_names.lock();
                if hints.len() > MAX_NAME_HINTS {
                    hints.clear();
                }
                for e in page {
                    if e.kind != FileType::Directory {
                        continue;
                    }
                    if e.ino == child {
                        found = Some(e.name.clone());
                    }
                    hints.insert(e.ino, (parent, e.name));
                }
            }
            if let Some(n) = found {
                return Ok(n);
            }
        }
    }

    /// `#recycle` if it exists as a directory.
    pub(crate) async fn bin_root_ino(&self) -> FsResult<Option<Ino>> {
        Ok(self
            .store
            .lookup(self.share, Ino::ROOT, TRASH_DIR.as_bytes())
            .await?
            .filter(|e| e.kind == FileType::Directory)
            .map(|e| e.ino))
    }

    /// `#recycle`, created if missing; `None` if the name is taken by a non-directory.
    pub(super) async fn ensure_bin_root(&self) -> FsResult<Option<Ino>> {
        for _ in 0..4 {
            match self
                .store
                .lookup(self.share, Ino::ROOT, TRASH_DIR.as_bytes())
                .await?
            {
                Some(e) if e.kind == FileType::Directory => return Ok(Some(e.ino)),
                Some(_) => return Ok(None),
                None => match self
                    .mkdir_internal(Ino::ROOT, TRASH_DIR.as_bytes(), BIN_MODE, 0, 0)
                    .await
                {
                    Ok(ino) => return Ok(Some(ino)),
                    Err(FsError::Exist) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Err(FsError::Jukebox)
    }

    /// A directory `name` (or `name (2)`, ... when taken by a non-directory) in `parent`,
    /// created with the given mode/owner if missing.
    pub(super) async fn ensure_dir(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<Ino> {
        let mut n = 1u32;
        let mut races = 0;
        while n <= MAX_SUFFIX {
            let cand = if n == 1 {
                name.to_vec()
            } else {
                suffixed(name, &n.to_string(), true)
            };
            match self.store.lookup(self.share, parent, &cand).await? {
                Some(e) if e.kind == FileType::Directory => return Ok(e.ino),
                Some(_) => n += 1,
                None => match self.mkdir_internal(parent, &cand, mode, uid, gid).await {
                    Ok(ino) => return Ok(ino),
                    Err(FsError::Exist) if races < 4 => races += 1,
                    Err(e) => return Err(e),
                },
            }
        }
        Err(FsError::ServerFault(
            "no free directory name in the recycle bin".into(),
        ))
    }

    /// MKDIR as root with the given mode and owner (no permission checks).
    pub(crate) async fn mkdir_internal(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<Ino> {
        let sa = SetAttr {
            uid: Some(uid),
            gid: Some(gid),
            ..Default::default()
        };
        let a = self
            .make_node(&Credentials::root(), parent, name, NewKind::Dir, mode, &sa)
            .await?;
        Ok(a.ino)
    }
}
