//! The per-share recycle bin (`#recycle` at the share root): the hooks REMOVE, RMDIR and
//! RENAME call to move a victim into the bin.
//!
//! This module sits below the namespace operations that call it (`crate::ops_ns`) and
//! uses only the operations that add names (`crate::ops_create`, for the bin's own
//! directories). The administration of the bin (list, restore, empty, reap) is
//! `crate::trash`, above the namespace operations.
//!
//! # Behaviour
//!
//! Opt-in per share ([`TrashPolicy::enabled`]). While it is on, REMOVE and RMDIR
//! ([`Fs::remove`], [`Fs::rmdir`]) and the replacement of an existing target by RENAME
//! (a non-directory, or an empty directory) *move* the victim into `#recycle` instead of
//! destroying it. The victim keeps its inode, block list and chunk references, so GC keeps
//! its content until the bin lets go of it. Users browse `#recycle` like any directory and
//! may restore by moving an item back out; administrators use `Fs::trash_list`,
//! `Fs::trash_restore`, `Fs::trash_status`, `Fs::trash_empty` and the hourly
//! `Fs::trash_reap` (retention days, size cap). Not recycled: in-place truncation and
//! overwrites of content, deletions inside the bin, names matching an exclude glob, and
//! everything on a share whose bin is off.
//!
//! # Layout
//!
//! The bin mirrors the original path: deleting `/a/b/file` moves it to
//! `#recycle/a/b/file`. `#recycle` itself is created on demand (mode 01777, owner 0:0);
//! the intermediate "scaffolding" directories copy mode and owner of the original
//! directories (created in their own idempotent transactions before the move). A taken
//! name gets a suffix before the extension: `report (2).txt`, `report (3).txt`, ... (after
//! 1000 tries `report (ino N).txt`). A scaffolding component taken by a non-directory is
//! skipped the same way (`a (2)/...`). An emptied directory whose mirror already exists
//! (the `rm -rf` pattern: children first, then the directory) is simply deleted: its
//! mirror already holds what it contained.
//!
//! # Records
//!
//! Every recycled object (an *item*) has a record in the share's auxiliary key space
//! ([`dittofs_metadata::Op::PutAux`]): key `b"trash/" ++ ino u64 BE`, value postcard of
//! `{original_path bytes, deleted_at, size at deletion}`. Scaffolding directories have no
//! record and are not items.
//!
//! # Invariants
//!
//! - The move is ONE transaction: entry out of the source directory, entry into the bin
//!   directory, nlink/parent/ctime/mtime of both directories and the victim, and the
//!   record. Its checks pin the source directory, the victim, the bin directory and the
//!   absence of the chosen name, exactly like the other namespace operations. A replaced
//!   rename target is recycled inside the rename's own transaction, so the target name
//!   never disappears for an observer.
//! - Permission checks are exactly those of the user's unlink/rename: the locked part of
//!   the operation runs all of them first and only then asks for a plan (which creates
//!   scaffolding, outside the locks) and runs again with it, so a refused delete leaves
//!   nothing in the bin. Placing the victim into the bin is internal and checks nothing
//!   on bin directories.
//! - A record never outlives the inode's last name: every permanent unlink of a last link
//!   deletes the inode's record in the same transaction. A record whose inode is no longer
//!   inside the bin (restored by a user rename across directories takes its record along;
//!   other moves leave it behind) is *stale*: not listed, deleted by the reaper.
//! - The user's delete is never lost: when the bin cannot take the victim (`#recycle` is
//!   not a directory, the bin directory kept vanishing, link limit), the delete proceeds
//!   permanently with a warning.
//! - `#recycle` at the root may not be renamed, replaced or removed while the bin is on,
//!   except RMDIR of an empty one.
//!
//! Sizes, listing, restoring, emptying and reaping: see `crate::trash`.

mod names;
pub(crate) mod policy;
mod record;
mod scaffold;

pub use policy::{TRASH_DIR, TrashPolicy};
pub(crate) use record::{RECORD_PREFIX, TrashRecord, ino_of_record_key, record_key};

use crate::error::{FsError, FsResult};
use crate::fs::{Fs, LINK_MAX, touch};
use dittofs_metadata::record::encode;
use dittofs_metadata::{Check, DirEntry, InodeRecord, Op, Txn};
use dittofs_types::{FileType, Ino, Timestamp};
use names::{MAX_SUFFIX, suffixed};
use policy::excluded;
pub(crate) use scaffold::PAGE;

/// Where a victim goes: decided (and scaffolding created) before the operation locks.
#[derive(Clone, Debug)]
pub(crate) struct RecyclePlan {
    /// `#recycle`.
    pub(crate) bin_root: Ino,
    /// The mirror of the victim's directory inside the bin.
    pub(crate) bin_dir: Ino,
    /// The victim's name.
    pub(crate) name: Vec<u8>,
    /// `/a/b/name`.
    pub(crate) original_path: Vec<u8>,
}

/// The slot a victim takes in its bin directory (decided under the locks).
pub(crate) enum Slot {
    /// The bin directory is gone: plan again.
    Gone,
    /// Delete permanently (an empty directory whose mirror exists; link limit).
    Permanent,
    /// Move into the bin directory (as read) under this name.
    Free(Box<InodeRecord>, Vec<u8>),
}

impl Fs {
    /// Whether `dir/name` is the bin's own entry at the share root.
    pub(crate) fn is_bin_entry(&self, dir: Ino, name: &[u8]) -> bool {
        dir == Ino::ROOT && name == TRASH_DIR.as_bytes()
    }

    /// Decides whether deleting `dir/name` (of type `kind`) recycles, and if so makes sure
    /// the bin directory mirroring `dir` exists. `None`: delete permanently (bin off,
    /// inside the bin, excluded, `#recycle` not a directory).
    pub(crate) async fn recycle_plan(
        &self,
        dir: Ino,
        name: &[u8],
        kind: FileType,
    ) -> FsResult<Option<RecyclePlan>> {
        let live = self.live();
        if !live.opts.trash.enabled || self.is_bin_entry(dir, name) {
            return Ok(None);
        }
        let chain = self.dir_chain(dir).await?;
        if chain
            .first()
            .is_some_and(|(n, _)| n.as_slice() == TRASH_DIR.as_bytes())
        {
            return Ok(None);
        }
        let mut rel = Vec::new();
        for (n, _) in &chain {
            rel.extend_from_slice(n);
            rel.push(b'/');
        }
        rel.extend_from_slice(name);
        if excluded(&live.exclude, name, &rel, kind == FileType::Directory) {
            return Ok(None);
        }
        let Some(bin_root) = self.ensure_bin_root().await? else {
            tracing::warn!(
                share = %self.name,
                path = %String::from_utf8_lossy(&rel),
                "{TRASH_DIR} is not a directory; deleting permanently"
            );
            return Ok(None);
        };
        let mut cur = bin_root;
        for (n, rec) in &chain {
            cur = match self.ensure_dir(cur, n, rec.mode, rec.uid, rec.gid).await {
                Ok(ino) => ino,
                // The bin cannot take it (link limit, no name left): never fail the delete.
                Err(e @ (FsError::MLink | FsError::NoSpc | FsError::ServerFault(_))) => {
                    tracing::warn!(
                        share = %self.name,
                        path = %String::from_utf8_lossy(&rel),
                        "recycle bin directory unavailable ({e}); deleting permanently"
                    );
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
        }
        let mut original_path = vec![b'/'];
        original_path.extend_from_slice(&rel);
        Ok(Some(RecyclePlan {
            bin_root,
            bin_dir: cur,
            name: name.to_vec(),
            original_path,
        }))
    }

    /// Under the operation's locks (which include `plan.bin_dir`): the name victim `v`
    /// takes in the bin directory.
    pub(crate) async fn bin_slot(&self, plan: &RecyclePlan, v: &InodeRecord) -> FsResult<Slot> {
        let bin = match self.store.get_inode(self.share, plan.bin_dir).await? {
            Some(b) if b.kind == FileType::Directory && b.nlink > 0 => b,
            _ => return Ok(Slot::Gone),
        };
        let is_dir = v.kind == FileType::Directory;
        if is_dir && bin.nlink >= LINK_MAX {
            tracing::warn!(share = %self.name, "recycle bin directory is full of directories; deleting permanently");
            return Ok(Slot::Permanent);
        }
        match self.store.lookup(self.share, bin.ino, &plan.name).await? {
            None => return Ok(Slot::Free(Box::new(bin), plan.name.clone())),
            // An empty directory whose mirror exists: the mirror already has it all.
            Some(e) if is_dir && e.kind == FileType::Directory => return Ok(Slot::Permanent),
            Some(_) => {}
        }
        let mut tags: Vec<String> = (2..=MAX_SUFFIX).map(|n| n.to_string()).collect();
        tags.push(format!("ino {}", v.ino.0));
        for _ in 0..8 {
            tags.push(format!("{:08x}", rand::random::<u32>()));
        }
        for tag in tags {
            let cand = suffixed(&plan.name, &tag, is_dir);
            if self
                .store
                .lookup(self.share, bin.ino, &cand)
                .await?
                .is_none()
            {
                return Ok(Slot::Free(Box::new(bin), cand));
            }
        }
        tracing::warn!(share = %self.name, "no free name in the recycle bin; deleting permanently");
        Ok(Slot::Permanent)
    }

    /// Adds to `t` the move of victim `v` into bin directory `bin` as `tname`: the entry,
    /// the victim's new parent/ctime, the bin directory's cookie/nlink (the caller pins
    /// and writes `bin` back, touched) and the record. The caller removes the victim's
    /// old entry.
    pub(crate) fn recycle_ops(
        &self,
        t: &mut Txn,
        bin: &mut InodeRecord,
        tname: &[u8],
        v: &mut InodeRecord,
        plan: &RecyclePlan,
        now: Timestamp,
    ) -> FsResult<()> {
        let cookie = bin.next_cookie;
        bin.next_cookie += 1;
        if v.kind == FileType::Directory {
            bin.nlink += 1;
            v.parent = bin.ino;
        }
        let size = if v.kind == FileType::Regular {
            self.attr_of(v).size
        } else {
            0
        };
        touch(v, now, false);
        t.check(Check::Dirent {
            dir: bin.ino,
            name: tname.to_vec(),
            ino: None,
        });
        t.op(Op::PutDirent {
            dir: bin.ino,
            entry: DirEntry {
                name: tname.to_vec(),
                ino: v.ino,
                kind: v.kind,
                cookie,
            },
        });
        t.op(Op::PutInode(v.clone()));
        let rec = TrashRecord {
            original_path: plan.original_path.clone(),
            deleted_at: now,
            size,
        };
        t.op(Op::PutAux {
            key: record_key(v.ino),
            value: encode(&rec)?,
        });
        Ok(())
    }
}
