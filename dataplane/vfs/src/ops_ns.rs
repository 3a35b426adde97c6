//! Namespace operations that look up, remove or move names: LOOKUP, REMOVE, RMDIR,
//! RENAME, READDIR (RFC 1813 sections 3.3.3, 3.3.12-3.3.14, 3.3.16, 3.3.17; POSIX
//! semantics). The operations that add a name are in `crate::ops_create`.
//!
//! Each mutation: take write locks on every directory and inode involved (one call),
//! re-read them under the locks, check permissions and POSIX rules, then commit ONE
//! transaction whose checks pin what was read. REMOVE, RMDIR and a replaced RENAME
//! target go into the recycle bin when it is on, through the hooks of `crate::recycle`
//! (planned outside the locks, placed under them, in the operation's own transaction).

use crate::attr::{Attr, DirEntryOut, ReadDirPage};
use crate::cred::{Credentials, R, W, X, may, sticky_allows};
use crate::error::{FsError, FsResult};
use crate::fs::{Fs, LINK_MAX, PATH_MAX, check_name, is_dot_or_dotdot, touch};
use crate::recycle::{RecyclePlan, Slot, record_key};
use dittofs_metadata::{Check, DirEntry, InodeRecord, Op, Txn};
use dittofs_types::{FileType, Ino, Timestamp};

/// How often a delete or rename re-plans when the recycle bin changes under it before it
/// deletes permanently.
const REPLAN_ATTEMPTS: usize = 2;

/// Whether an unlink is a client's (`No`) or the recycle bin's own maintenance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Internal {
    No,
    /// Permanent; the entry must still name this inode.
    Expect(Ino),
}

/// Rounds of an operation that may recycle (plan, replans) before it gives up.
const MAX_ROUNDS: usize = 2 * REPLAN_ATTEMPTS + 4;

/// Outcome of the locked part of an operation that may recycle.
enum Done {
    Yes,
    /// The operation is allowed and its victim should be recycled: make a plan (outside
    /// the locks, it creates bin directories) and run again.
    NeedPlan,
    /// The recycle-bin directory of the plan changed: plan again.
    Replan,
}

/// What the locked part of an operation does with a victim.
#[derive(Clone, Copy)]
enum Plan<'a> {
    /// Recycling applies but nothing is planned yet: check, then ask for a plan.
    Unplanned,
    /// Delete (or replace) permanently.
    Permanent,
    /// Move the victim into the bin as planned.
    Recycle(&'a RecyclePlan),
}

/// The plan for victim `ino`: `Permanent` if recycling does not apply, the plan made for
/// that inode if any, else `Unplanned`.
fn plan_state(permanent: bool, planned: &Option<(Ino, Option<RecyclePlan>)>, ino: Ino) -> Plan<'_> {
    if permanent {
        return Plan::Permanent;
    }
    match planned {
        Some((i, Some(p))) if *i == ino => Plan::Recycle(p),
        Some((i, None)) if *i == ino => Plan::Permanent,
        _ => Plan::Unplanned,
    }
}

struct RenameArgs<'a> {
    cred: &'a Credentials,
    from_dir: Ino,
    from_name: &'a [u8],
    to_dir: Ino,
    to_name: &'a [u8],
    src: &'a DirEntry,
    dst: Option<&'a DirEntry>,
    plan: Plan<'a>,
    leaving_bin: bool,
}

/// The directories one transaction changes, each read once and written once however
/// many roles it plays (source, target, recycle-bin directory).
#[derive(Default)]
struct DirSet {
    /// (change counter as read, record being changed)
    recs: Vec<(u64, InodeRecord)>,
}

impl DirSet {
    fn add(&mut self, rec: InodeRecord) {
        if !self.recs.iter().any(|(_, r)| r.ino == rec.ino) {
            self.recs.push((rec.change, rec));
        }
    }

    fn get(&mut self, ino: Ino) -> FsResult<&mut InodeRecord> {
        self.recs
            .iter_mut()
            .find(|(_, r)| r.ino == ino)
            .map(|(_, r)| r)
            .ok_or_else(|| FsError::ServerFault(format!("directory {ino} not read")))
    }

    fn next_cookie(&mut self, ino: Ino) -> FsResult<u64> {
        let d = self.get(ino)?;
        let c = d.next_cookie;
        d.next_cookie += 1;
        Ok(c)
    }

    /// Pins every directory's change counter and writes each back, touched at `now`.
    fn finish(self, t: &mut Txn, now: Timestamp) {
        for (change, mut r) in self.recs {
            t.check(Check::InodeChange { ino: r.ino, change });
            touch(&mut r, now, true);
            t.op(Op::PutInode(r));
        }
    }
}

impl Fs {
    /// Looks `name` up in `dir` ("." and ".." included). Needs search (x) permission.
    pub async fn lookup(&self, cred: &Credentials, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        self.check_readable(cred)?;
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

    /// Resolves a share-relative path of directories, as a MOUNT of a subdirectory of the
    /// share needs (`a/b` or `/a/b/`): components are separated by `/`; empty components
    /// (`//`, a leading or trailing `/`) and `.` are skipped; `..` is refused with `NoEnt`
    /// (a path never climbs, so it never leaves the share whatever its spelling). Every
    /// component is looked up as [`Fs::lookup`] does for `cred` (search permission on
    /// each directory: `Access`); symlinks are not followed. Errors: `NoEnt` (missing),
    /// `NotDir` (a component, the last one included, is not a directory), `Access`,
    /// `NameTooLong` (a component over `NAME_MAX`, or the path over `PATH_MAX`). An empty
    /// path is the root.
    pub async fn resolve_dir_path(&self, cred: &Credentials, path: &[u8]) -> FsResult<Ino> {
        if path.len() > PATH_MAX {
            return Err(FsError::NameTooLong);
        }
        let (mut ino, mut kind) = (Ino::ROOT, FileType::Directory);
        for name in path.split(|&b| b == b'/') {
            if name.is_empty() || name == b"." {
                continue;
            }
            if name == b".." {
                return Err(FsError::NoEnt);
            }
            self.check_readable(cred)?;
            if kind != FileType::Directory {
                return Err(FsError::NotDir);
            }
            let a = self.lookup(cred, ino, name).await?;
            (ino, kind) = (a.ino, a.kind);
        }
        if kind != FileType::Directory {
            return Err(FsError::NotDir);
        }
        Ok(ino)
    }

    /// REMOVE of a non-directory. With the recycle bin on, the file moves into
    /// `#recycle` instead (see [`crate::trash`]).
    pub async fn remove(&self, cred: &Credentials, dir: Ino, name: &[u8]) -> FsResult<()> {
        self.unlink_common(cred, dir, name, false, Internal::No)
            .await
    }

    /// RMDIR of an empty directory. With the recycle bin on, the directory moves into
    /// `#recycle` instead (see [`crate::trash`]).
    pub async fn rmdir(&self, cred: &Credentials, dir: Ino, name: &[u8]) -> FsResult<()> {
        self.unlink_common(cred, dir, name, true, Internal::No)
            .await
    }

    /// REMOVE/RMDIR. `internal` (recycle-bin maintenance) deletes permanently, ignores
    /// the read-only flag and the protection of `#recycle`, and with
    /// `Internal::Expect(ino)` only removes the entry if it still names `ino` (`NoEnt`
    /// otherwise).
    pub(crate) async fn unlink_common(
        &self,
        cred: &Credentials,
        dir: Ino,
        name: &[u8],
        want_dir: bool,
        internal: Internal,
    ) -> FsResult<()> {
        if internal == Internal::No {
            self.check_writable(cred)?;
        }
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
        let mut permanent = internal != Internal::No;
        // The plan made for the victim inode it was made for.
        let mut planned: Option<(Ino, Option<RecyclePlan>)> = None;
        let mut replans = 0;
        for _ in 0..MAX_ROUNDS {
            let e = self
                .store
                .lookup(self.share, dir, name)
                .await?
                .ok_or(FsError::NoEnt)?;
            if let Internal::Expect(x) = internal
                && x != e.ino
            {
                return Err(FsError::NoEnt);
            }
            let trash_on = self.live().opts.trash.enabled;
            if internal == Internal::No
                && trash_on
                && self.is_bin_entry(dir, name)
                && e.kind == FileType::Directory
            {
                // The bin itself: only an empty one may go (permanently).
                if want_dir && !self.store.dir_is_empty(self.share, e.ino).await? {
                    return Err(FsError::Perm);
                }
                permanent = true;
            }
            let plan = plan_state(permanent || !trash_on, &planned, e.ino);
            match self
                .unlink_locked(cred, dir, name, want_dir, &e, plan)
                .await?
            {
                Done::Yes => return Ok(()),
                Done::NeedPlan => {
                    let p = self.recycle_plan(dir, name, e.kind).await?;
                    planned = Some((e.ino, p));
                }
                Done::Replan => {
                    planned = None;
                    permanent |= self.replan_gives_up(&mut replans, name, "delete");
                }
            }
        }
        Err(FsError::Jukebox)
    }

    /// A recycle plan went stale (the bin changed under it). Counts the attempt; true
    /// once there were too many, and the operation falls back to a permanent delete
    /// (the user's delete or rename must never fail because of the bin).
    fn replan_gives_up(&self, replans: &mut usize, name: &[u8], op: &str) -> bool {
        *replans += 1;
        if *replans <= REPLAN_ATTEMPTS {
            return false;
        }
        tracing::warn!(
            share = %self.name,
            name = %String::from_utf8_lossy(name),
            "recycle bin kept changing under a {op}; the victim is deleted permanently"
        );
        true
    }

    /// The locked part of [`Fs::unlink_common`]: re-validates and checks permissions,
    /// then moves the victim into the bin or unlinks it (see [`Plan`]). `Replan` when
    /// the bin directory of the plan vanished meanwhile.
    async fn unlink_locked(
        &self,
        cred: &Credentials,
        dir: Ino,
        name: &[u8],
        want_dir: bool,
        e: &DirEntry,
        plan: Plan<'_>,
    ) -> FsResult<Done> {
        let mut lock_set = vec![dir, e.ino];
        if let Plan::Recycle(p) = plan {
            lock_set.push(p.bin_dir);
        }
        let _g = self.locks.write_many(&lock_set).await;
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
        let p = match plan {
            // Allowed: now decide where the victim goes (outside the locks).
            Plan::Unplanned => return Ok(Done::NeedPlan),
            Plan::Permanent => None,
            Plan::Recycle(p) => Some(p),
        };
        let now = Timestamp::now();
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino: dir,
            change: d.change,
        });
        t.check(Check::InodeChange {
            ino: v.ino,
            change: v.change,
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
        if want_dir {
            d.nlink = d.nlink.saturating_sub(1);
        }
        if let Some(p) = p {
            if p.bin_dir == dir || p.bin_dir == v.ino {
                return Ok(Done::Replan);
            }
            match self.bin_slot(p, &v).await? {
                Slot::Gone => return Ok(Done::Replan),
                Slot::Permanent => {}
                Slot::Free(mut bin, tname) => {
                    t.check(Check::InodeChange {
                        ino: bin.ino,
                        change: bin.change,
                    });
                    touch(&mut d, now, true);
                    t.op(Op::PutInode(d));
                    self.recycle_ops(&mut t, &mut bin, &tname, &mut v, p, now)?;
                    touch(&mut bin, now, true);
                    t.op(Op::PutInode(*bin));
                    self.commit(t).await?;
                    return Ok(Done::Yes);
                }
            }
        }
        touch(&mut d, now, true);
        t.op(Op::PutInode(d));
        let destroyed = self.drop_link(&mut t, &mut v, now).await?;
        self.commit(t).await?;
        if destroyed {
            self.forget_content(v.ino);
        }
        Ok(Done::Yes)
    }

    /// Adds to `t` the effect of removing one name of `v`: nlink down; at zero the inode is
    /// deleted with its chunk references, or kept as an orphan while open. Returns whether
    /// the inode is gone (the caller then drops its unflushed content after the commit).
    /// A recycle-bin record of the inode goes with its last name.
    async fn drop_link(&self, t: &mut Txn, v: &mut InodeRecord, now: Timestamp) -> FsResult<bool> {
        let last = v.kind == FileType::Directory || v.nlink <= 1;
        if !last {
            v.nlink -= 1;
            touch(v, now, false);
            t.op(Op::PutInode(v.clone()));
            return Ok(false);
        }
        t.op(Op::DeleteAux {
            key: record_key(v.ino),
        });
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
    /// target. Refuses to move a directory into its own subtree. With the recycle bin on,
    /// a replaced target moves into `#recycle` in the same transaction.
    pub async fn rename(
        &self,
        cred: &Credentials,
        from_dir: Ino,
        from_name: &[u8],
        to_dir: Ino,
        to_name: &[u8],
    ) -> FsResult<()> {
        self.rename_inner(cred, from_dir, from_name, to_dir, to_name, false)
            .await
    }

    /// RENAME; `internal` (recycle-bin restore) ignores the read-only flag and the
    /// protection of `#recycle`.
    pub(crate) async fn rename_inner(
        &self,
        cred: &Credentials,
        from_dir: Ino,
        from_name: &[u8],
        to_dir: Ino,
        to_name: &[u8],
        internal: bool,
    ) -> FsResult<()> {
        if !internal {
            self.check_writable(cred)?;
        }
        if is_dot_or_dotdot(from_name) || is_dot_or_dotdot(to_name) {
            return Err(FsError::Inval("cannot rename '.' or '..'"));
        }
        check_name(from_name)?;
        check_name(to_name)?;
        let mut permanent = false;
        let mut planned: Option<(Ino, Option<RecyclePlan>)> = None;
        let mut replans = 0;
        for _ in 0..MAX_ROUNDS {
            let src = self
                .store
                .lookup(self.share, from_dir, from_name)
                .await?
                .ok_or(FsError::NoEnt)?;
            let dst = self.store.lookup(self.share, to_dir, to_name).await?;
            let trash_on = self.live().opts.trash.enabled;
            if trash_on && !internal {
                if self.is_bin_entry(from_dir, from_name) && src.kind == FileType::Directory {
                    return Err(FsError::Perm);
                }
                if self.is_bin_entry(to_dir, to_name) && dst.is_some() {
                    return Err(FsError::Perm);
                }
            }
            let recycles = trash_on && !permanent && dst.as_ref().is_some_and(|d| d.ino != src.ino);
            let plan = match &dst {
                Some(d) => plan_state(!recycles, &planned, d.ino),
                None => Plan::Permanent,
            };
            // A name leaving the bin (restore by rename) takes its record along.
            let leaving_bin = (trash_on || internal)
                && from_dir != to_dir
                && self.in_bin(from_dir).await?
                && !self.in_bin(to_dir).await?;
            let args = RenameArgs {
                cred,
                from_dir,
                from_name,
                to_dir,
                to_name,
                src: &src,
                dst: dst.as_ref(),
                plan,
                leaving_bin,
            };
            match self.rename_locked(args).await? {
                Done::Yes => return Ok(()),
                Done::NeedPlan => {
                    let Some(d) = &dst else {
                        return Err(FsError::ServerFault("plan asked without a victim".into()));
                    };
                    let mut p = self.recycle_plan(to_dir, to_name, d.kind).await?;
                    if let Some(p) = p.as_mut()
                        && src.kind == FileType::Directory
                        && self.is_descendant(p.bin_dir, src.ino).await?
                    {
                        // The victim's mirror lies inside the directory being moved (a
                        // restore by rename): park the victim at the top of the bin.
                        p.bin_dir = p.bin_root;
                    }
                    planned = Some((d.ino, p));
                }
                Done::Replan => {
                    planned = None;
                    permanent |= self.replan_gives_up(&mut replans, to_name, "rename");
                }
            }
        }
        Err(FsError::Jukebox)
    }

    /// The locked part of [`Fs::rename_inner`].
    async fn rename_locked(&self, a: RenameArgs<'_>) -> FsResult<Done> {
        let RenameArgs {
            cred,
            from_dir,
            from_name,
            to_dir,
            to_name,
            src,
            dst,
            plan,
            leaving_bin,
        } = a;
        let moves_dir_across = src.kind == FileType::Directory && from_dir != to_dir;
        let _rl = if moves_dir_across {
            Some(self.rename_lock.lock().await)
        } else {
            None
        };
        let mut lock_set = vec![from_dir, to_dir, src.ino];
        if let Some(d) = dst {
            lock_set.push(d.ino);
        }
        if let Plan::Recycle(p) = plan {
            lock_set.push(p.bin_dir);
        }
        let _g = self.locks.write_many(&lock_set).await;
        // Re-validate under the locks.
        let src2 = self
            .store
            .lookup(self.share, from_dir, from_name)
            .await?
            .ok_or(FsError::NoEnt)?;
        let dst2 = self.store.lookup(self.share, to_dir, to_name).await?;
        if src2.ino != src.ino || dst2.as_ref().map(|e| e.ino) != dst.map(|e| e.ino) {
            return Err(FsError::Jukebox);
        }
        let fd = self.inode(from_dir).await?;
        self.check_dir_write(cred, &fd)?;
        let td = if to_dir == from_dir {
            fd.clone()
        } else {
            self.inode(to_dir).await?
        };
        self.check_dir_write(cred, &td)?;
        let mut s = self.inode(src.ino).await?;
        if !sticky_allows(cred, &fd, &s) {
            return Err(FsError::Perm);
        }
        let mut victim = match dst {
            Some(e) => Some(self.inode(e.ino).await?),
            None => None,
        };
        if let Some(v) = &victim {
            if v.ino == s.ino {
                // Two names of the same file: POSIX says do nothing.
                return Ok(Done::Yes);
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
        let plan = match (plan, &victim) {
            // Allowed: now decide where the victim goes (outside the locks).
            (Plan::Unplanned, Some(_)) => return Ok(Done::NeedPlan),
            (Plan::Recycle(p), Some(_)) => Some(p),
            _ => None,
        };
        // Where the victim goes, if it is recycled.
        let mut recycle = None;
        if let (Some(p), Some(v)) = (plan, victim.as_ref()) {
            if p.bin_dir == v.ino
                || (s.kind == FileType::Directory && self.is_descendant(p.bin_dir, s.ino).await?)
            {
                return Ok(Done::Replan);
            }
            match self.bin_slot(p, v).await? {
                Slot::Gone => return Ok(Done::Replan),
                Slot::Permanent => {}
                Slot::Free(bin, tname) => recycle = Some((*bin, tname)),
            }
        }
        let now = Timestamp::now();
        let mut dirs = DirSet::default();
        dirs.add(fd);
        dirs.add(td);
        if let Some((bin, _)) = &recycle {
            dirs.add(bin.clone());
        }
        let mut t = Txn::new(self.share);
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
                let d = dirs.get(to_dir)?;
                d.nlink = d.nlink.saturating_sub(1);
            }
            match (&recycle, plan) {
                (Some((bin, tname)), Some(p)) => {
                    let b = dirs.get(bin.ino)?;
                    self.recycle_ops(&mut t, b, tname, v, p, now)?;
                }
                _ => {
                    if self.drop_link(&mut t, v, now).await? {
                        destroyed = Some(v.ino);
                    }
                }
            }
        }
        if s.kind == FileType::Directory && from_dir != to_dir {
            let f = dirs.get(from_dir)?;
            f.nlink = f.nlink.saturating_sub(1);
            dirs.get(to_dir)?.nlink += 1;
            s.parent = to_dir;
        }
        t.op(Op::DeleteDirent {
            dir: from_dir,
            name: from_name.to_vec(),
        });
        touch(&mut s, now, false);
        let cookie = dirs.next_cookie(to_dir)?;
        t.op(Op::PutDirent {
            dir: to_dir,
            entry: DirEntry {
                name: to_name.to_vec(),
                ino: s.ino,
                kind: s.kind,
                cookie,
            },
        });
        if leaving_bin {
            t.op(Op::DeleteAux {
                key: record_key(s.ino),
            });
        }
        dirs.finish(&mut t, now);
        t.op(Op::PutInode(s));
        self.commit(t).await?;
        if let Some(ino) = destroyed {
            self.forget_content(ino);
        }
        Ok(Done::Yes)
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
        self.check_readable(cred)?;
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
