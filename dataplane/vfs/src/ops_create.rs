//! Namespace operations that add a name: CREATE, MKDIR, SYMLINK, MKNOD, LINK (RFC 1813
//! sections 3.3.8-3.3.11, 3.3.15; POSIX semantics), and the permission rule every
//! operation that adds or removes an entry applies to its directory.
//!
//! Each one takes write locks on the directory and the inode (one call), re-reads them
//! under the locks, checks permissions and POSIX rules (name free, link limit, setgid
//! inheritance), then commits ONE transaction whose checks pin the directory's change
//! counter and the absence of the name. Nothing here knows the recycle bin: the bin
//! (`crate::recycle`) creates its directories through [`Fs::make_node`], and the
//! operations that remove names (`crate::ops_ns`) build on this module.

use crate::attr::{Attr, CreateMode, SetAttr, SetTime, SpecialKind};
use crate::cred::{Credentials, W, X, may};
use crate::error::{FsError, FsResult};
use crate::fs::{Fs, LINK_MAX, PATH_MAX, check_name, is_dot_or_dotdot, touch};
use dittofs_metadata::{Check, DirEntry, InodeRecord, Op, Txn};
use dittofs_types::{DeviceId, FileType, Ino, ObjectId, Timestamp};

/// What a new inode is.
pub(crate) enum NewKind {
    File(Option<[u8; 8]>),
    Dir,
    Symlink(Vec<u8>),
    Special(SpecialKind),
}

impl Fs {
    /// What every operation that adds a name checks first: the share is writable (for this caller) and
    /// has room, and `name` is a valid new name (`.` and `..` always exist).
    fn check_new_name(&self, cred: &Credentials, name: &[u8]) -> FsResult<()> {
        self.check_writable(cred)?;
        self.check_room()?;
        check_name(name)?;
        if is_dot_or_dotdot(name) {
            return Err(FsError::Exist);
        }
        Ok(())
    }

    /// Checks that the caller may add or remove entries of directory `d`.
    pub(crate) fn check_dir_write(&self, cred: &Credentials, d: &InodeRecord) -> FsResult<()> {
        if d.kind != FileType::Directory {
            return Err(FsError::NotDir);
        }
        if d.nlink == 0 {
            return Err(FsError::NoEnt);
        }
        if !may(cred, d, W | X) {
            return Err(FsError::Access);
        }
        Ok(())
    }

    /// CREATE of a regular file.
    pub async fn create(
        &self,
        cred: &Credentials,
        dir: Ino,
        name: &[u8],
        how: CreateMode,
        sa: &SetAttr,
    ) -> FsResult<Attr> {
        self.check_new_name(cred, name)?;
        let verifier = match how {
            CreateMode::Exclusive(v) => Some(v),
            _ => None,
        };
        // Existing-name paths first (no allocation needed).
        if let Some(e) = self.store.lookup(self.share, dir, name).await? {
            let rec = self.inode(e.ino).await?;
            return match how {
                CreateMode::Guarded => Err(FsError::Exist),
                CreateMode::Exclusive(v) => {
                    if rec.create_verifier == Some(v) {
                        Ok(self.attr_of(&rec))
                    } else {
                        Err(FsError::Exist)
                    }
                }
                CreateMode::Unchecked => {
                    if rec.kind != FileType::Regular {
                        return Err(FsError::Exist);
                    }
                    let d = self.inode(dir).await?;
                    if !may(cred, &d, X) {
                        return Err(FsError::Access);
                    }
                    if sa.size == Some(0) {
                        let only_size = SetAttr {
                            size: Some(0),
                            ..Default::default()
                        };
                        return self.setattr(cred, e.ino, &only_size, None).await;
                    }
                    Ok(self.attr_of(&rec))
                }
            };
        }
        let mode = sa.mode.unwrap_or(0o644);
        self.make_node(cred, dir, name, NewKind::File(verifier), mode, sa)
            .await
    }

    pub async fn mkdir(
        &self,
        cred: &Credentials,
        dir: Ino,
        name: &[u8],
        sa: &SetAttr,
    ) -> FsResult<Attr> {
        self.check_new_name(cred, name)?;
        self.make_node(cred, dir, name, NewKind::Dir, sa.mode.unwrap_or(0o755), sa)
            .await
    }

    pub async fn symlink(
        &self,
        cred: &Credentials,
        dir: Ino,
        name: &[u8],
        target: &[u8],
        sa: &SetAttr,
    ) -> FsResult<Attr> {
        self.check_new_name(cred, name)?;
        if target.is_empty() {
            return Err(FsError::NoEnt);
        }
        if target.len() > PATH_MAX || target.contains(&0) {
            return Err(FsError::NameTooLong);
        }
        self.make_node(
            cred,
            dir,
            name,
            NewKind::Symlink(target.to_vec()),
            0o777,
            sa,
        )
        .await
    }

    pub async fn mknod(
        &self,
        cred: &Credentials,
        dir: Ino,
        name: &[u8],
        kind: SpecialKind,
        sa: &SetAttr,
    ) -> FsResult<Attr> {
        self.check_new_name(cred, name)?;
        if matches!(kind, SpecialKind::Char(_) | SpecialKind::Block(_)) && !cred.is_root() {
            return Err(FsError::Perm);
        }
        self.make_node(
            cred,
            dir,
            name,
            NewKind::Special(kind),
            sa.mode.unwrap_or(0o644),
            sa,
        )
        .await
    }

    pub(crate) async fn make_node(
        &self,
        cred: &Credentials,
        dir: Ino,
        name: &[u8],
        kind: NewKind,
        mode: u32,
        sa: &SetAttr,
    ) -> FsResult<Attr> {
        let ino = self.alloc_ino().await?;
        let _g = self.locks.write_many(&[dir, ino]).await;
        let mut d = self.inode(dir).await?;
        self.check_dir_write(cred, &d)?;
        if self.store.lookup(self.share, dir, name).await?.is_some() {
            return Err(FsError::Exist);
        }
        if let NewKind::Dir = kind
            && d.nlink >= LINK_MAX
        {
            return Err(FsError::MLink);
        }
        let now = Timestamp::now();
        let (ftype, symlink_target, rdev, verifier) = match kind {
            NewKind::File(v) => (FileType::Regular, None, DeviceId::default(), v),
            NewKind::Dir => (FileType::Directory, None, DeviceId::default(), None),
            NewKind::Symlink(t) => (FileType::Symlink, Some(t), DeviceId::default(), None),
            NewKind::Special(SpecialKind::Char(dev)) => (FileType::CharDevice, None, dev, None),
            NewKind::Special(SpecialKind::Block(dev)) => (FileType::BlockDevice, None, dev, None),
            NewKind::Special(SpecialKind::Fifo) => {
                (FileType::Fifo, None, DeviceId::default(), None)
            }
            NewKind::Special(SpecialKind::Socket) => {
                (FileType::Socket, None, DeviceId::default(), None)
            }
        };
        let sgid_dir = d.mode & 0o2000 != 0;
        let uid = cred.uid;
        let gid = if sgid_dir { d.gid } else { cred.gid };
        let mut mode = mode & 0o7777;
        if ftype == FileType::Directory && sgid_dir {
            mode |= 0o2000;
        }
        // A non-member creating a setgid file in a setgid directory loses the bit.
        if ftype != FileType::Directory
            && mode & 0o2000 != 0
            && !cred.is_root()
            && !cred.in_group(gid)
        {
            mode &= !0o2000;
        }
        let is_dir = ftype == FileType::Directory;
        let mut rec = InodeRecord {
            ino,
            generation: Fs::new_generation(),
            kind: ftype,
            mode,
            nlink: if is_dir { 2 } else { 1 },
            uid,
            gid,
            size: 0,
            atime: now,
            mtime: now,
            ctime: now,
            btime: now,
            rdev,
            change: 1,
            parent: if is_dir { dir } else { Ino(0) },
            next_cookie: 3,
            symlink_target,
            object_id: if ftype == FileType::Regular {
                ObjectId::compute(&[])
            } else {
                ObjectId::NOT_QUIESCED
            },
            create_verifier: verifier,
            applied_seq: 0,
        };
        if let Some(t) = &rec.symlink_target {
            rec.size = t.len() as u64;
        }
        // Initial attributes from the request (uid/gid only honoured for root callers, the
        // way a local filesystem would after a follow-up chown).
        if cred.is_root() {
            if let Some(u) = sa.uid {
                rec.uid = u;
            }
            if let Some(g) = sa.gid {
                rec.gid = g;
            }
        }
        if verifier.is_none() {
            if let SetTime::Client(t) = sa.atime {
                rec.atime = t;
            }
            if let SetTime::Client(t) = sa.mtime {
                rec.mtime = t;
            }
        }
        let cookie = d.next_cookie;
        d.next_cookie += 1;
        if is_dir {
            d.nlink += 1;
        }
        let before = d.change;
        touch(&mut d, now, true);
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino: dir,
            change: before,
        });
        t.check(Check::Dirent {
            dir,
            name: name.to_vec(),
            ino: None,
        });
        t.op(Op::PutInode(rec.clone()));
        t.op(Op::PutDirent {
            dir,
            entry: DirEntry {
                name: name.to_vec(),
                ino,
                kind: ftype,
                cookie,
            },
        });
        t.op(Op::PutInode(d));
        self.commit(t).await?;
        Ok(self.attr_of(&rec))
    }

    /// LINK: a new name `name` in `dir` for the non-directory `ino`.
    pub async fn link(
        &self,
        cred: &Credentials,
        ino: Ino,
        dir: Ino,
        name: &[u8],
    ) -> FsResult<Attr> {
        self.check_new_name(cred, name)?;
        let _g = self.locks.write_many(&[dir, ino]).await;
        let mut d = self.inode(dir).await?;
        let mut f = self.inode(ino).await?;
        if f.kind == FileType::Directory {
            return Err(FsError::Perm);
        }
        self.check_dir_write(cred, &d)?;
        if f.nlink == 0 {
            return Err(FsError::NoEnt);
        }
        if f.nlink >= LINK_MAX {
            return Err(FsError::MLink);
        }
        if self.store.lookup(self.share, dir, name).await?.is_some() {
            return Err(FsError::Exist);
        }
        let now = Timestamp::now();
        let (dc, fc) = (d.change, f.change);
        let cookie = d.next_cookie;
        d.next_cookie += 1;
        touch(&mut d, now, true);
        f.nlink += 1;
        touch(&mut f, now, false);
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino: dir,
            change: dc,
        });
        t.check(Check::InodeChange { ino, change: fc });
        t.check(Check::Dirent {
            dir,
            name: name.to_vec(),
            ino: None,
        });
        t.op(Op::PutDirent {
            dir,
            entry: DirEntry {
                name: name.to_vec(),
                ino,
                kind: f.kind,
                cookie,
            },
        });
        t.op(Op::PutInode(d));
        t.op(Op::PutInode(f.clone()));
        self.commit(t).await?;
        Ok(self.attr_of(&f))
    }
}
