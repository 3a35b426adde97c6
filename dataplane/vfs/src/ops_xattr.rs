//! Extended attributes of the user namespace: GET, SET, LIST, REMOVE (RFC 8276: its
//! operations GETXATTR, SETXATTR, LISTXATTRS, REMOVEXATTR; the semantics of Linux
//! `user.*` attributes, xattr(7)).
//!
//! Names are the part after `user.`: RFC 8276 carries only the user namespace and the
//! NFS client strips the prefix before it sends a name; any other adapter does the same.
//!
//! Rules (as Linux's `xattr_permission` for `user.*`):
//! - only regular files and directories carry attributes: on other types GET is
//!   `NoXattr` (ENODATA) and SET/REMOVE are `Perm` (EPERM); LIST answers an empty list;
//! - GET and LIST need read permission on the object, SET and REMOVE write permission
//!   (plain POSIX bits, the owner has no bypass as for data I/O); in a sticky directory
//!   only its owner or root may change the directory's own attributes (`Perm`);
//! - the share's access level applies as for every read (`check_readable`) and change
//!   (`check_writable`: read-only share `RoFs`);
//! - SET with [`XattrSetMode::Create`] on an existing name is `Exist`, REMOVE and SET with
//!   [`XattrSetMode::Replace`] of a missing name are `NoXattr`.
//!
//! Limits: a name is 1..=[`XATTR_NAME_MAX`] bytes without NUL (`Inval`, `NameTooLong`);
//! a value at most [`XATTR_SIZE_MAX`] bytes (`XattrTooBig`, E2BIG); names plus values of
//! one inode at most [`XATTR_TOTAL_MAX`] bytes (`NoSpc`, as Linux file systems answer
//! when an inode's attribute space is full).
//!
//! Storage and atomicity: an inode's attributes are one metadata record
//! ([`Op::SetXattrs`]). A change takes the inode's write lock, re-reads the inode and its
//! attributes, and commits ONE transaction: the new set, the inode with ctime and the
//! change counter advanced (RFC 8276: a change of an attribute changes the object's
//! change attribute, which SETXATTR and REMOVEXATTR report), and a check pinning the change counter it read. The
//! record is deleted with the inode ([`Op::DeleteInode`] at the last unlink, or at the
//! last close of a file unlinked while open), so attributes never outlive their file.
//!
//! LIST pages by cookie: cookie `n` resumes after the first `n` names in byte order
//! (0 starts). A cookie past the end (names removed meanwhile) is an empty last page; a
//! cookie no list can reach (above [`XATTR_TOTAL_MAX`], the most names an inode can
//! hold) is `BadCookie`. The caller bounds a page by a byte budget of its own (`fits`);
//! a page that cannot hold the next name is `TooSmall`.

use crate::cred::{Credentials, R, W, carries_xattrs, may, sticky_xattrs_allow};
use crate::error::{FsError, FsResult};
use crate::fs::{Fs, touch};
use dittofs_metadata::{Check, InodeRecord, Op, Txn, Xattrs};
use dittofs_types::{Ino, Timestamp};

/// Longest attribute name (after `user.`), in bytes.
pub const XATTR_NAME_MAX: usize = 255;
/// Largest attribute value, in bytes (Linux XATTR_SIZE_MAX).
pub const XATTR_SIZE_MAX: usize = 64 * 1024;
/// Largest total of name and value bytes over all attributes of one inode: room for
/// a few maximal values, small enough that rewriting the inode's record on each change
/// stays cheap.
pub const XATTR_TOTAL_MAX: usize = 256 * 1024;

/// How SET treats an existing attribute (RFC 8276 `setxattr_option4`, Linux
/// `XATTR_CREATE` / `XATTR_REPLACE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XattrSetMode {
    /// Create or replace.
    Either,
    /// Only create: `Exist` if the name is set.
    Create,
    /// Only replace: `NoXattr` if the name is not set.
    Replace,
}

/// One page of LIST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XattrPage {
    /// Names in byte order.
    pub names: Vec<Vec<u8>>,
    /// The cookie that resumes after this page.
    pub cookie: u64,
    /// Whether the page ends the list.
    pub eof: bool,
}

/// The object's change counter before and after a SET or REMOVE, both read under the
/// lock the change held (so the pair is atomic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XattrChange {
    pub before: u64,
    pub after: u64,
}

fn check_xattr_name(name: &[u8]) -> FsResult<()> {
    if name.is_empty() {
        return Err(FsError::Inval("empty attribute name"));
    }
    if name.len() > XATTR_NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if name.contains(&0) {
        return Err(FsError::Inval("attribute name contains NUL"));
    }
    Ok(())
}

/// Bytes the attributes take against [`XATTR_TOTAL_MAX`].
fn total_size(x: &Xattrs) -> usize {
    x.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// Whether `cred` may change the attributes of `rec` (after the share's checks).
fn may_change(cred: &Credentials, rec: &InodeRecord) -> FsResult<()> {
    if !carries_xattrs(rec.kind) || !sticky_xattrs_allow(cred, rec) {
        return Err(FsError::Perm);
    }
    if !may(cred, rec, W) {
        return Err(FsError::Access);
    }
    Ok(())
}

impl Fs {
    /// The value of attribute `name` of `ino`.
    pub async fn get_xattr(&self, cred: &Credentials, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        self.check_readable(cred)?;
        check_xattr_name(name)?;
        let _g = self.locks.read(ino).await;
        let rec = self.inode(ino).await?;
        if !carries_xattrs(rec.kind) {
            return Err(FsError::NoXattr);
        }
        if !may(cred, &rec, R) {
            return Err(FsError::Access);
        }
        let mut x = self.store.get_xattrs(self.share, ino).await?;
        x.remove(name).ok_or(FsError::NoXattr)
    }

    /// The names of `ino`'s attributes from `cookie` on, as many as `fits` accepts (it
    /// is asked once per name, in order, and should count what it accepts).
    pub async fn list_xattrs(
        &self,
        cred: &Credentials,
        ino: Ino,
        cookie: u64,
        mut fits: impl FnMut(&[u8]) -> bool,
    ) -> FsResult<XattrPage> {
        self.check_readable(cred)?;
        if cookie > XATTR_TOTAL_MAX as u64 {
            return Err(FsError::BadCookie);
        }
        let _g = self.locks.read(ino).await;
        let rec = self.inode(ino).await?;
        if !may(cred, &rec, R) {
            return Err(FsError::Access);
        }
        let x = self.store.get_xattrs(self.share, ino).await?;
        let mut rest = x.into_keys().skip(cookie as usize).peekable();
        let mut names = Vec::new();
        while let Some(n) = rest.next_if(|n| fits(n)) {
            names.push(n);
        }
        let eof = rest.peek().is_none();
        if names.is_empty() && !eof {
            return Err(FsError::TooSmall);
        }
        Ok(XattrPage {
            cookie: cookie + names.len() as u64,
            names,
            eof,
        })
    }

    /// Sets attribute `name` of `ino` to `value` as `mode` allows.
    pub async fn set_xattr(
        &self,
        cred: &Credentials,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        mode: XattrSetMode,
    ) -> FsResult<XattrChange> {
        self.check_writable(cred)?;
        check_xattr_name(name)?;
        if value.len() > XATTR_SIZE_MAX {
            return Err(FsError::XattrTooBig);
        }
        self.check_room()?;
        self.change_xattrs(cred, ino, |x| {
            let exists = x.contains_key(name);
            match mode {
                XattrSetMode::Create if exists => return Err(FsError::Exist),
                XattrSetMode::Replace if !exists => return Err(FsError::NoXattr),
                _ => {}
            }
            x.insert(name.to_vec(), value.to_vec());
            if total_size(x) > XATTR_TOTAL_MAX {
                return Err(FsError::NoSpc);
            }
            Ok(())
        })
        .await
    }

    /// Removes attribute `name` of `ino`.
    pub async fn remove_xattr(
        &self,
        cred: &Credentials,
        ino: Ino,
        name: &[u8],
    ) -> FsResult<XattrChange> {
        self.check_writable(cred)?;
        check_xattr_name(name)?;
        self.change_xattrs(cred, ino, |x| match x.remove(name) {
            Some(_) => Ok(()),
            None => Err(FsError::NoXattr),
        })
        .await
    }

    /// Applies `edit` to the attributes of `ino` under its write lock and commits the new
    /// set with the inode's ctime and change counter advanced, in one transaction.
    async fn change_xattrs(
        &self,
        cred: &Credentials,
        ino: Ino,
        edit: impl FnOnce(&mut Xattrs) -> FsResult<()>,
    ) -> FsResult<XattrChange> {
        let _g = self.locks.write_many(&[ino]).await;
        let mut rec = self.inode(ino).await?;
        may_change(cred, &rec)?;
        let mut x = self.store.get_xattrs(self.share, ino).await?;
        edit(&mut x)?;
        let before = rec.change;
        touch(&mut rec, Timestamp::now(), false);
        let mut t = Txn::new(self.share);
        t.check(Check::InodeChange {
            ino,
            change: before,
        });
        t.op(Op::PutInode(rec.clone()));
        t.op(Op::SetXattrs { ino, xattrs: x });
        self.commit(t).await?;
        // the change attribute, as GETATTR shows it (a file's unflushed writes count)
        Ok(XattrChange {
            before: self.change_attr(ino, before),
            after: self.change_attr(ino, rec.change),
        })
    }
}
