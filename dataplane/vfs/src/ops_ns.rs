//! Namespace operations: LOOKUP, CREATE, MKDIR, SYMLINK, MKNOD, LINK, REMOVE, RMDIR,
//! RENAME, READDIR (RFC 1813 sections 3.3.3, 3.3.8-3.3.17; POSIX semantics).
//!
//! Each mutation: take write locks on every directory and inode involved (one call),
//! re-read them under the locks, check permissions and POSIX rules, then commit ONE
//! transaction whose checks pin what was read.

use crate::attr::{Attr, CreateMode, DirEntryOut, ReadDirPage, SetAttr, SetTime, SpecialKind};
use crate::cred::{Credentials, R, W, X, may, sticky_allows};
use crate::error::{FsError, FsResult};
use crate::fs::{Fs, LINK_MAX, PATH_MAX, check_name, is_dot_or_dotdot, touch};
use dittofs_metadata::{Check, DirEntry, InodeRecord, Op, Txn};
use dittofs_types::{DeviceId, FileType, Ino, ObjectId, Timestamp};

/// What a new inode is.
enum NewKind {
    File(Option<[u8; 8]>),
    Dir,
    Symlink(Vec<u8>),
    Special(SpecialKind),
}

impl Fs {
    /// Looks `name` up in `dir` ("." and ".." included). Needs search (x) permission.
    pub async fn lookup(&self, cred: &Credentials, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        let d = self.inode(dir).await?;
        if d.kind != FileType::Directory {
            return Err(FsError::NotDir);
        }
        if !may(cred, &d, X) {
            return Err(FsError::Access);
        }
        if name == b"." {
            return Ok(self.attr_of(&d));
        }
        if name == b".." {
            return self.getattr(d.parent).await;
        }
        if name.len() > crate::fs::NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        let e = self
            .store
            .lookup(self.share, dir, name)
            .await?
            .ok_or(FsError::NoEnt)?;
        let rec = self
            .store
            .get_inode(self.share, e.ino)
            .await?
            .ok_or(FsError::NoEnt)?;
        Ok(self.attr_of(&rec))
    }

    /// Checks that the caller may add or remove entries of directory `d`.
    fn check_dir_write(&self, cred: &Credentials, d: &InodeRecord) -> FsResult<()> {
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
        self.check_writable()?;
        check_name(name)?;
        if is_dot_or_dotdot(name) {
            return Err(FsError::Exist);
        }
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
        self.check_writable()?;
        check_name(name)?;
        if is_dot_or_dotdot(name) {
            return Err(FsError::Exist);
        }
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
        self.check_writable()?;
        check_name(name)?;
        if is_dot_or_dotdot(name) {
            return Err(FsError::Exist);
        }
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
        self.check_writable()?;
        check_name(name)?;
        if is_dot_or_dotdot(name) {
            return Err(FsError::Exist);
        }
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

    async fn make_node(
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
        self.check_writable()?;
        check_name(name)?;
        if is_dot_or_dotdot(name) {
            return Err(FsError::Exist);
        }
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

    /// REMOVE of a non-directory.
    pub async fn remove(&self, cred: &Credentials, dir: Ino, name: &[u8]) -> FsResult<()> {
        self.unlink_common(cred, dir, name, false).await
    }

    /// RMDIR of an empty directory.
    pub async fn rmdir(&self, cred: &Credentials, dir: Ino, name: &[u8]) -> FsResult<()> {
        self.unlink_common(cred, dir, name, true).await
    }

    async fn unlink_common(
        &self,
        cred: &Credentials,
        dir: Ino,
        name: &[u8],
        want_dir: bool,
    ) -> FsResult<()> {
        self.check_writable()?;
        if name == b"." {
            return Err(FsError::Inval("cannot remove '.'"));
        }
        if name == b".." {
            return Err(if want_dir {
                FsError::NotEmpty
            } else {
                FsError::Inval("cannot remove '..'")
            });
        }
        check_name(name)?;
        let e = self
            .store
            .lookup(self.share, dir, name)
            .await?
            .ok_or(FsError::NoEnt)?;
        let _g = self.locks.write_many(&[dir, e.ino]).await;
        let mut d = self.inode(dir).await?;
        self.check_dir_write(cred, &d)?;
        // Re-check under the lock: the entry may have changed while we waited.
        let e2 = self
            .store
            .lookup(self.share, dir, name)
            .await?
            .ok_or(FsError::NoEnt)?;
        if e2.ino != e.ino {
            return Err(FsError::Jukebox);
        }
        let mut v = self.inode(e.ino).await?;
        if want_dir {
            if v.kind != FileType::Directory {
                return Err(FsError::NotDir);
            }
            if !self.store.dir_is_empty(self.share, v.ino).await? {
                return Err(FsError::NotEmpty);
            }
        } else if v.kind == FileType::Directory {
            return Err(FsError::IsDir);
        }
        if !sticky_allows(cred, &d, &v) {
            return Err(FsError::Perm);
        }
        let now = Timestamp::now();
        let (dc, vc) = (d.change, v.change);
        if want_dir {
            d.nlink = d.nlink.saturating_sub(1);
        }
        touch(&mut d, now, true);
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino: dir,
            change: dc,
        });
        t.check(Check::InodeChange {
            ino: v.ino,
            change: vc,
        });
        t.check(Check::Dirent {
            dir,
            name: name.to_vec(),
            ino: Some(v.ino),
        });
        t.op(Op::DeleteDirent {
            dir,
            name: name.to_vec(),
        });
        t.op(Op::PutInode(d));
        let destroyed = self.drop_link(&mut t, &mut v, now).await?;
        self.commit(t).await?;
        if destroyed {
            self.forget_content(v.ino);
        }
        Ok(())
    }

    /// Adds to `t` the effect of removing one name of `v`: nlink down; at zero the inode is
    /// deleted with its chunk references, or kept as an orphan while open. Returns whether
    /// the inode is gone (the caller then drops its unflushed content after the commit).
    async fn drop_link(&self, t: &mut Txn, v: &mut InodeRecord, now: Timestamp) -> FsResult<bool> {
        let last = v.kind == FileType::Directory || v.nlink <= 1;
        if !last {
            v.nlink -= 1;
            touch(v, now, false);
            t.op(Op::PutInode(v.clone()));
            return Ok(false);
        }
        if v.kind != FileType::Directory && self.is_open(v.ino) {
            v.nlink = 0;
            touch(v, now, false);
            t.op(Op::PutInode(v.clone()));
            t.op(Op::AddOrphan(v.ino));
            return Ok(false);
        }
        let blocks = self.store.get_blocks(self.share, v.ino).await?;
        t.op(Op::DeleteInode(v.ino));
        t.adjust_refs(&blocks, &[]);
        Ok(true)
    }

    fn forget_content(&self, ino: Ino) {
        self.engine.discard(self.key(ino));
        self.dirty.lock().remove(&ino);
    }

    /// RENAME `from_dir/from_name` to `to_dir/to_name`, atomically replacing a compatible
    /// target. Refuses to move a directory into its own subtree.
    pub async fn rename(
        &self,
        cred: &Credentials,
        from_dir: Ino,
        from_name: &[u8],
        to_dir: Ino,
        to_name: &[u8],
    ) -> FsResult<()> {
        self.check_writable()?;
        if is_dot_or_dotdot(from_name) || is_dot_or_dotdot(to_name) {
            return Err(FsError::Inval("cannot rename '.' or '..'"));
        }
        check_name(from_name)?;
        check_name(to_name)?;
        let src = self
            .store
            .lookup(self.share, from_dir, from_name)
            .await?
            .ok_or(FsError::NoEnt)?;
        let dst = self.store.lookup(self.share, to_dir, to_name).await?;
        let moves_dir_across = src.kind == FileType::Directory && from_dir != to_dir;
        let _rl = if moves_dir_across {
            Some(self.rename_lock.lock().await)
        } else {
            None
        };
        let mut lock_set = vec![from_dir, to_dir, src.ino];
        if let Some(d) = &dst {
            lock_set.push(d.ino);
        }
        let _g = self.locks.write_many(&lock_set).await;
        // Re-validate under the locks.
        let src2 = self
            .store
            .lookup(self.share, from_dir, from_name)
            .await?
            .ok_or(FsError::NoEnt)?;
        let dst2 = self.store.lookup(self.share, to_dir, to_name).await?;
        if src2.ino != src.ino || dst2.as_ref().map(|e| e.ino) != dst.as_ref().map(|e| e.ino) {
            return Err(FsError::Jukebox);
        }
        let mut fd = self.inode(from_dir).await?;
        self.check_dir_write(cred, &fd)?;
        let mut td = if to_dir == from_dir {
            fd.clone()
        } else {
            self.inode(to_dir).await?
        };
        self.check_dir_write(cred, &td)?;
        let mut s = self.inode(src.ino).await?;
        if !sticky_allows(cred, &fd, &s) {
            return Err(FsError::Perm);
        }
        let mut victim = match &dst {
            Some(e) => Some(self.inode(e.ino).await?),
            None => None,
        };
        if let Some(v) = &victim {
            if v.ino == s.ino {
                // Two names of the same file: POSIX says do nothing.
                return Ok(());
            }
            if !sticky_allows(cred, &td, v) {
                return Err(FsError::Perm);
            }
            match (s.kind == FileType::Directory, v.kind == FileType::Directory) {
                (true, false) => return Err(FsError::NotDir),
                (false, true) => return Err(FsError::IsDir),
                (true, true) => {
                    if !self.store.dir_is_empty(self.share, v.ino).await? {
                        return Err(FsError::NotEmpty);
                    }
                }
                (false, false) => {}
            }
        }
        if s.kind == FileType::Directory {
            if self.is_descendant(to_dir, s.ino).await? {
                return Err(FsError::Inval(
                    "cannot move a directory into its own subtree",
                ));
            }
            // Moving a directory to another parent rewrites its "..": needs write on it.
            if from_dir != to_dir && !may(cred, &s, W) {
                return Err(FsError::Access);
            }
            if from_dir != to_dir && victim.is_none() && td.nlink >= LINK_MAX {
                return Err(FsError::MLink);
            }
        }
        let now = Timestamp::now();
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino: from_dir,
            change: fd.change,
        });
        if to_dir != from_dir {
            t.check(Check::InodeChange {
                ino: to_dir,
                change: td.change,
            });
        }
        t.check(Check::InodeChange {
            ino: s.ino,
            change: s.change,
        });
        t.check(Check::Dirent {
            dir: from_dir,
            name: from_name.to_vec(),
            ino: Some(s.ino),
        });
        t.check(Check::Dirent {
            dir: to_dir,
            name: to_name.to_vec(),
            ino: victim.as_ref().map(|v| v.ino),
        });

        let mut destroyed = None;
        if let Some(v) = victim.as_mut() {
            t.check(Check::InodeChange {
                ino: v.ino,
                change: v.change,
            });
            if v.kind == FileType::Directory {
                // the replaced directory's ".." no longer counts against the target dir
                if to_dir == from_dir {
                    fd.nlink = fd.nlink.saturating_sub(1);
                } else {
                    td.nlink = td.nlink.saturating_sub(1);
                }
            }
            if self.drop_link(&mut t, v, now).await? {
                destroyed = Some(v.ino);
            }
        }
        if s.kind == FileType::Directory && from_dir != to_dir {
            fd.nlink = fd.nlink.saturating_sub(1);
            td.nlink += 1;
            s.parent = to_dir;
        }
        t.op(Op::DeleteDirent {
            dir: from_dir,
            name: from_name.to_vec(),
        });
        touch(&mut s, now, false);
        if to_dir == from_dir {
            let cookie = fd.next_cookie;
            fd.next_cookie += 1;
            t.op(Op::PutDirent {
                dir: to_dir,
                entry: DirEntry {
                    name: to_name.to_vec(),
                    ino: s.ino,
                    kind: s.kind,
                    cookie,
                },
            });
            touch(&mut fd, now, true);
            t.op(Op::PutInode(fd));
        } else {
            let cookie = td.next_cookie;
            td.next_cookie += 1;
            t.op(Op::PutDirent {
                dir: to_dir,
                entry: DirEntry {
                    name: to_name.to_vec(),
                    ino: s.ino,
                    kind: s.kind,
                    cookie,
                },
            });
            touch(&mut fd, now, true);
            touch(&mut td, now, true);
            t.op(Op::PutInode(fd));
            t.op(Op::PutInode(td));
        }
        t.op(Op::PutInode(s));
        self.commit(t).await?;
        if let Some(ino) = destroyed {
            self.forget_content(ino);
        }
        Ok(())
    }

    /// Cookie verifier of a directory: constant for the directory's life, because cookies
    /// are never reused and stay valid while their entry exists (and resuming after a
    /// removed entry's cookie still works).
    pub(crate) fn cookie_verifier(&self, d: &InodeRecord) -> u64 {
        (u64::from(self.incarnation) << 32) | u64::from(d.generation)
    }

    /// READDIR: up to `max` entries after `cookie` (0 = from the start). A non-zero
    /// `verifier` must match the directory's verifier unless `cookie` is 0.
    pub async fn readdir(
        &self,
        cred: &Credentials,
        dir: Ino,
        cookie: u64,
        verifier: u64,
        max: usize,
    ) -> FsResult<ReadDirPage> {
        let d = self.inode(dir).await?;
        if d.kind != FileType::Directory {
            return Err(FsError::NotDir);
        }
        if !may(cred, &d, R) {
            return Err(FsError::Access);
        }
        let v = self.cookie_verifier(&d);
        if cookie != 0 && verifier != 0 && verifier != v {
            return Err(FsError::BadCookie);
        }
        let max = max.max(1);
        let mut entries = self
            .store
            .read_dir(self.share, dir, cookie, max + 1)
            .await?;
        let eof = entries.len() <= max;
        entries.truncate(max);
        Ok(ReadDirPage {
            entries: entries
                .into_iter()
                .map(|e| DirEntryOut {
                    name: e.name,
                    ino: e.ino,
                    kind: e.kind,
                    cookie: e.cookie,
                })
                .collect(),
            eof,
            verifier: v,
        })
    }
}
