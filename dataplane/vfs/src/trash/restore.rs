//! Restoring from the recycle bin ([`Fs::trash_restore`]): validates the item path
//! (confined to `#recycle`) and the destination (confined to the share, outside the
//! bin), recreates missing parents from the bin's mirror directories, then moves the
//! item with the internal rename, merging into an existing directory.

use super::TRASH_DIR;
use crate::cred::Credentials;
use crate::error::{FsError, FsResult};
use crate::fs::{Fs, NAME_MAX};
use crate::ops_ns::Internal;
use crate::recycle::{TrashRecord, record_key};
use dittofs_metadata::record::decode;
use dittofs_types::{FileType, Ino};
use std::future::Future;
use std::pin::Pin;

/// Mode of directories created without a model (original gone).
const DEFAULT_DIR_MODE: u32 = 0o755;

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

fn invalid(msg: impl Into<String>) -> FsError {
    FsError::InvalidArgument(msg.into())
}

/// Splits a relative path into validated components (empty components are skipped).
fn components(rest: &[u8]) -> FsResult<Vec<Vec<u8>>> {
    if rest.contains(&0) {
        return Err(invalid("path contains NUL"));
    }
    if rest.first() == Some(&b'/') {
        return Err(invalid("absolute path"));
    }
    let mut out = Vec::new();
    for c in rest.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if c == b"." || c == b".." {
            return Err(invalid("'.' and '..' are not allowed in the path"));
        }
        if c.len() > NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        out.push(c.to_vec());
    }
    if out.is_empty() {
        return Err(invalid("empty path"));
    }
    Ok(out)
}

/// Components of an item path given with or without the leading `#recycle/`.
fn parse_bin_path(path: &str) -> FsResult<Vec<Vec<u8>>> {
    if path.contains('\0') {
        return Err(invalid("path contains NUL"));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed == TRASH_DIR || trimmed == format!("/{TRASH_DIR}") {
        return Err(invalid("the path names the recycle bin itself"));
    }
    let rest = if let Some(r) = path
        .strip_prefix(TRASH_DIR)
        .and_then(|r| r.strip_prefix('/'))
    {
        r
    } else if let Some(r) = path
        .strip_prefix('/')
        .and_then(|r| r.strip_prefix(TRASH_DIR))
        .and_then(|r| r.strip_prefix('/'))
    {
        r
    } else if path.starts_with('/') {
        return Err(invalid(format!(
            "{path:?} is outside the recycle bin (paths are relative to {TRASH_DIR})"
        )));
    } else {
        path
    };
    components(rest.as_bytes()).map_err(|e| match e {
        FsError::InvalidArgument(m) => invalid(format!("{path:?}: {m}")),
        other => other,
    })
}

/// Components of a share-relative destination path (`/a/b` or `a/b`), outside the bin.
fn parse_share_path(path: &[u8]) -> FsResult<Vec<Vec<u8>>> {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    let comps = components(&path[start..])?;
    if comps
        .first()
        .is_some_and(|c| c.as_slice() == TRASH_DIR.as_bytes())
    {
        return Err(invalid("the destination lies inside the recycle bin"));
    }
    Ok(comps)
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    out
}

fn display_path(comps: &[Vec<u8>]) -> String {
    format!("/{}", String::from_utf8_lossy(&join(comps)))
}

impl Fs {
    /// Restores the item at `path` (`#recycle/a/b`, `/#recycle/a/b` or `a/b`) to `to`
    /// (share-relative, e.g. `/a/b`), or to its recorded original path (an object
    /// without a record, such as scaffolding, goes to its mirrored path). Missing parent
    /// directories are created (mode and owner from the bin's mirror directories, else
    /// 0755 root). An existing directory at the destination is merged into recursively;
    /// an existing non-directory is replaced only with `overwrite` (and is itself
    /// recycled); otherwise [`FsError::Exist`]. Returns the restored path (`/a/b`).
    ///
    /// Hostile paths (NUL, `..`, absolute outside `#recycle`, a destination inside the
    /// bin) are [`FsError::InvalidArgument`]; a missing item is [`FsError::NoEnt`].
    pub async fn trash_restore(
        &self,
        path: &str,
        to: Option<&str>,
        overwrite: bool,
    ) -> FsResult<String> {
        let comps = parse_bin_path(path)?;
        let dest_override = match to {
            Some(t) => Some(parse_share_path(t.as_bytes())?),
            None => None,
        };
        let _admin = self.trash_admin.lock().await;
        let bin = self.bin_root_ino().await?.ok_or(FsError::NoEnt)?;
        let Some((name, dirs)) = comps.split_last() else {
            return Err(invalid("empty path"));
        };
        let mut src_dir = bin;
        for c in dirs {
            match self.store.lookup(self.share, src_dir, c).await? {
                Some(e) if e.kind == FileType::Directory => src_dir = e.ino,
                _ => return Err(FsError::NoEnt),
            }
        }
        let item = self
            .store
            .lookup(self.share, src_dir, name)
            .await?
            .ok_or(FsError::NoEnt)?;
        let record = match self
            .store
            .get_aux(self.share, &record_key(item.ino))
            .await?
        {
            Some(v) => decode::<TrashRecord>("trash record", &v).ok(),
            None => None,
        };
        let dest = match dest_override {
            Some(d) => d,
            None => record
                .and_then(|r| parse_share_path(&r.original_path).ok())
                .unwrap_or_else(|| comps.clone()),
        };
        let (dest_name, _) = dest.split_last().ok_or_else(|| invalid("empty path"))?;
        let dest_dir = self.restore_parents(&dest).await?;
        let nested = if item.kind == FileType::Directory {
            let records = self.load_records().await?;
            self.subtree_inos(item.ino)
                .await?
                .into_iter()
                .filter(|i| records.contains_key(i))
                .collect()
        } else {
            Vec::new()
        };
        let root = Credentials::root();
        match self.store.lookup(self.share, dest_dir, dest_name).await? {
            None => {
                self.rename_inner(&root, src_dir, name, dest_dir, dest_name, true)
                    .await?
            }
            Some(x) => match (
                item.kind == FileType::Directory,
                x.kind == FileType::Directory,
            ) {
                (true, true) => {
                    if !overwrite {
                        self.merge_conflicts(item.ino, x.ino).await?;
                    }
                    self.merge_dir(src_dir, name.clone(), item.ino, x.ino, overwrite)
                        .await?;
                }
                (false, false) if overwrite => {
                    self.rename_inner(&root, src_dir, name, dest_dir, dest_name, true)
                        .await?
                }
                _ => return Err(FsError::Exist),
            },
        }
        self.delete_records(&nested).await?;
        Ok(display_path(&dest))
    }

    /// Makes sure the parent directories of `dest` exist; returns the last one.
    async fn restore_parents(&self, dest: &[Vec<u8>]) -> FsResult<Ino> {
        let mut cur = Ino::ROOT;
        let mut mirror = self.bin_root_ino().await?;
        let parents = dest.split_last().map(|(_, p)| p).unwrap_or_default();
        for c in parents {
            mirror = match mirror {
                Some(m) => self
                    .store
                    .lookup(self.share, m, c)
                    .await?
                    .filter(|e| e.kind == FileType::Directory)
                    .map(|e| e.ino),
                None => None,
            };
            cur = match self.store.lookup(self.share, cur, c).await? {
                Some(e) if e.kind == FileType::Directory => e.ino,
                Some(_) => return Err(FsError::NotDir),
                None => {
                    let (mode, uid, gid) = match mirror {
                        Some(m) => {
                            let r = self.inode(m).await?;
                            (r.mode, r.uid, r.gid)
                        }
                        None => (DEFAULT_DIR_MODE, 0, 0),
                    };
                    match self.mkdir_internal(cur, c, mode, uid, gid).await {
                        Ok(ino) => ino,
                        Err(FsError::Exist) => match self.store.lookup(self.share, cur, c).await? {
                            Some(e) if e.kind == FileType::Directory => e.ino,
                            _ => return Err(FsError::NotDir),
                        },
                        Err(e) => return Err(e),
                    }
                }
            };
        }
        Ok(cur)
    }

    /// `Exist` if merging directory `src` into `dst` would have to replace something.
    async fn merge_conflicts(&self, src: Ino, dst: Ino) -> FsResult<()> {
        let mut pairs = vec![(src, dst)];
        while let Some((s, d)) = pairs.pop() {
            for c in self.list_dir(s).await? {
                match self.store.lookup(self.share, d, &c.name).await? {
                    None => {}
                    Some(x) if x.kind == FileType::Directory && c.kind == FileType::Directory => {
                        pairs.push((c.ino, x.ino));
                    }
                    Some(_) => return Err(FsError::Exist),
                }
            }
        }
        Ok(())
    }

    /// Moves the children of bin directory `s_ino` (named `s_name` in `s_parent`) into
    /// directory `d_ino` one by one, merging subdirectories, then removes `s_ino` if it
    /// ended up empty (recycled victims of `overwrite` stay in it).
    fn merge_dir(
        &self,
        s_parent: Ino,
        s_name: Vec<u8>,
        s_ino: Ino,
        d_ino: Ino,
        overwrite: bool,
    ) -> BoxFut<'_, FsResult<()>> {
        Box::pin(async move {
            let root = Credentials::root();
            for c in self.list_dir(s_ino).await? {
                let c_dir = c.kind == FileType::Directory;
                match self.store.lookup(self.share, d_ino, &c.name).await? {
                    None => {
                        self.rename_inner(&root, s_ino, &c.name, d_ino, &c.name, true)
                            .await?
                    }
                    Some(x) if c_dir && x.kind == FileType::Directory => {
                        self.merge_dir(s_ino, c.name.clone(), c.ino, x.ino, overwrite)
                            .await?
                    }
                    Some(x) if overwrite && !c_dir && x.kind != FileType::Directory => {
                        self.rename_inner(&root, s_ino, &c.name, d_ino, &c.name, true)
                            .await?
                    }
                    Some(_) => return Err(FsError::Exist),
                }
            }
            match self
                .unlink_common(&root, s_parent, &s_name, true, Internal::Expect(s_ino))
                .await
            {
                Ok(()) | Err(FsError::NotEmpty | FsError::NoEnt) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_paths_are_confined() {
        let ok = |p: &str| parse_bin_path(p).unwrap();
        assert_eq!(ok("#recycle/a/b"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(ok("/#recycle/a/b/"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(ok("a/b"), vec![b"a".to_vec(), b"b".to_vec()]);
        for bad in [
            "#recycle/../x",
            "../x",
            "a/../../x",
            "/etc",
            "/etc/passwd",
            "#recycle//etc",
            "a\0b",
            "#recycle",
            "/#recycle/",
            "",
            "#recycle/./a",
        ] {
            assert!(
                matches!(parse_bin_path(bad), Err(FsError::InvalidArgument(_))),
                "{bad:?} accepted"
            );
        }
        assert!(parse_share_path(b"/a/b").is_ok());
        assert!(parse_share_path(b"a").is_ok());
        for bad in [&b"/"[..], b"/#recycle/x", b"/a/../b", b"/a\0"] {
            assert!(
                matches!(parse_share_path(bad), Err(FsError::InvalidArgument(_))),
                "{bad:?} accepted"
            );
        }
    }
}
