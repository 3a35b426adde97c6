//! GETATTR, SETATTR, ACCESS, READLINK, FSSTAT (RFC 1813 sections 3.3.1-3.3.5, 3.3.18;
//! POSIX chmod/chown/utimensat/truncate semantics as Linux implements them).

use crate::attr::{Attr, FsStat, SetAttr, SetTime};
use crate::cred::{Credentials, W, access, access_mask, may};
use crate::error::{FsError, FsResult};
use crate::fs::{Fs, MAX_FILE_SIZE, touch};
use dittofs_metadata::{Check, Op, Txn};
use dittofs_types::{FileType, Ino, Timestamp};

impl Fs {
    /// Attributes of `ino`, including unflushed writes.
    pub async fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        let rec = self.inode(ino).await?;
        Ok(self.attr_of(&rec))
    }

    /// NFS ACCESS: the subset of `requested` (see [`access`]) the caller holds.
    pub async fn access(
        &self,
        cred: &Credentials,
        ino: Ino,
        requested: u32,
    ) -> FsResult<(u32, Attr)> {
        let rec = self.inode(ino).await?;
        let mut granted = access_mask(cred, &rec, requested);
        if self.read_only() || !cred.level.may_write() {
            granted &= !(access::MODIFY | access::EXTEND | access::DELETE | access::XATTR_WRITE);
        }
        if !cred.level.may_read() {
            granted = 0;
        }
        Ok((granted, self.attr_of(&rec)))
    }

    /// Target of a symlink.
    pub async fn readlink(&self, cred: &Credentials, ino: Ino) -> FsResult<Vec<u8>> {
        self.check_readable(cred)?;
        let rec = self.inode(ino).await?;
        if rec.kind != FileType::Symlink {
            return Err(FsError::Inval("not a symlink"));
        }
        rec.symlink_target
            .ok_or_else(|| FsError::ServerFault("symlink without target".into()))
    }

    /// SETATTR. `guard_ctime`: NFSv3 sattrguard3 (fail with `NotSync`-like `Inval` when the
    /// object's ctime differs). A size change flushes and truncates the content first.
    pub async fn setattr(
        &self,
        cred: &Credentials,
        ino: Ino,
        sa: &SetAttr,
        guard_ctime: Option<Timestamp>,
    ) -> FsResult<Attr> {
        self.check_writable(cred)?;
        if let Some(size) = sa.size {
            let rec = self.inode(ino).await?;
            if let Some(g) = guard_ctime
                && self.attr_of(&rec).ctime != g
            {
                return Err(FsError::NotSync);
            }
            match rec.kind {
                FileType::Regular => {}
                FileType::Directory => return Err(FsError::IsDir),
                _ => return Err(FsError::Inval("size of a special file")),
            }
            if size > MAX_FILE_SIZE {
                return Err(FsError::FBig);
            }
            if !crate::cred::may_io(cred, &rec, W) {
                return Err(FsError::Access);
            }
            // Shrinking frees space and must work on a full disk; growing does not.
            if size >= rec.size {
                self.check_room()?;
            }
            self.truncate(ino, size).await?;
            let rest = SetAttr {
                size: None,
                ..sa.clone()
            };
            if rest.is_empty() {
                return self.getattr(ino).await;
            }
            return self.setattr_meta(cred, ino, &rest, None).await;
        }
        self.check_room()?;
        self.setattr_meta(cred, ino, sa, guard_ctime).await
    }

    async fn setattr_meta(
        &self,
        cred: &Credentials,
        ino: Ino,
        sa: &SetAttr,
        guard_ctime: Option<Timestamp>,
    ) -> FsResult<Attr> {
        let _g = self.locks.write_many(&[ino]).await;
        let mut rec = self.inode(ino).await?;
        if let Some(g) = guard_ctime
            && self.attr_of(&rec).ctime != g
        {
            return Err(FsError::NotSync);
        }
        let before = rec.change;
        let owner = cred.is_root() || cred.uid == rec.uid;
        let now = Timestamp::now();

        // chown/chgrp first: POSIX evaluates the mode change against the new owner.
        if sa.uid.is_some() || sa.gid.is_some() {
            let new_uid = sa.uid.unwrap_or(rec.uid);
            let new_gid = sa.gid.unwrap_or(rec.gid);
            if !cred.is_root() {
                if new_uid != rec.uid {
                    return Err(FsError::Perm);
                }
                if cred.uid != rec.uid {
                    return Err(FsError::Perm);
                }
                if new_gid != rec.gid && !cred.in_group(new_gid) {
                    return Err(FsError::Perm);
                }
            }
            // Linux clears suid always and sgid when group-executable, on any chown of a
            // non-directory (even by root, even to the same ids).
            if rec.kind != FileType::Directory {
                if rec.mode & 0o4000 != 0 {
                    rec.mode &= !0o4000;
                }
                if rec.mode & 0o2010 == 0o2010 {
                    rec.mode &= !0o2000;
                }
            }
            rec.uid = new_uid;
            rec.gid = new_gid;
        }
        if let Some(mode) = sa.mode {
            if !owner {
                return Err(FsError::Perm);
            }
            let mut mode = mode & 0o7777;
            // A non-root caller outside the file's group cannot set sgid (it is dropped).
            if !cred.is_root() && mode & 0o2000 != 0 && !cred.in_group(rec.gid) {
                mode &= !0o2000;
            }
            rec.mode = mode;
        }
        let explicit_time =
            matches!(sa.atime, SetTime::Client(_)) || matches!(sa.mtime, SetTime::Client(_));
        let now_time =
            matches!(sa.atime, SetTime::ServerNow) || matches!(sa.mtime, SetTime::ServerNow);
        if explicit_time && !owner {
            return Err(FsError::Perm);
        }
        if now_time && !owner && !may(cred, &rec, W) {
            return Err(FsError::Access);
        }
        match sa.atime {
            SetTime::DontChange => {}
            SetTime::ServerNow => rec.atime = now,
            SetTime::Client(t) => rec.atime = t,
        }
        match sa.mtime {
            SetTime::DontChange => {}
            SetTime::ServerNow => rec.mtime = now,
            SetTime::Client(t) => rec.mtime = t,
        }
        if sa.mtime != SetTime::DontChange {
            // An explicit mtime wins over the time of earlier unflushed writes.
            if let Some(d) = self.dirty.lock().get_mut(&ino) {
                d.mtime = Timestamp {
                    secs: i64::MIN,
                    nanos: 0,
                };
                d.epoch += 1;
            }
        }
        rec.create_verifier = None;
        touch(&mut rec, now, false);
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino,
            change: before,
        });
        t.op(Op::PutInode(rec.clone()));
        self.commit(t).await?;
        Ok(self.attr_of(&rec))
    }

    /// File system statistics from the block store's disk and the share's usage.
    pub async fn statfs(&self) -> FsResult<FsStat> {
        let s = self.engine.disk_stats().map_err(FsError::from)?;
        Ok(FsStat {
            total_bytes: s.total_bytes,
            free_bytes: s.free_bytes,
            avail_bytes: s.avail_bytes,
            total_files: s.total_files.max(1 << 20),
            free_files: s.free_files.max(1 << 19),
        })
    }
}
