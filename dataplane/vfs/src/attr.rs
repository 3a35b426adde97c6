//! Attributes as the protocols see them, and attribute-change requests.

use dittofs_metadata::InodeRecord;
use dittofs_types::{DeviceId, FileType, Ino, ShareId, Timestamp};

/// Attributes of one object (the union of what NFSv3 fattr3, NFSv4 and SMB need).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub share: ShareId,
    pub ino: Ino,
    pub generation: u32,
    pub kind: FileType,
    /// Permission bits incl. suid/sgid/sticky (0o7777).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    /// Logical size including writes not yet flushed into chunks.
    pub size: u64,
    /// Bytes of storage used (size rounded up to 4 KiB).
    pub used: u64,
    pub rdev: DeviceId,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub btime: Timestamp,
    /// Changes whenever the object changes (NFSv4 change attribute).
    pub change: u64,
}

impl Attr {
    pub(crate) fn from_record(share: ShareId, r: &InodeRecord) -> Attr {
        Attr {
            share,
            ino: r.ino,
            generation: r.generation,
            kind: r.kind,
            mode: r.mode & 0o7777,
            nlink: r.nlink,
            uid: r.uid,
            gid: r.gid,
            size: r.size,
            used: r.size.div_ceil(4096) * 4096,
            rdev: r.rdev,
            atime: r.atime,
            mtime: r.mtime,
            ctime: r.ctime,
            btime: r.btime,
            change: r.change,
        }
    }
}

/// How a timestamp is changed by SETATTR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SetTime {
    #[default]
    DontChange,
    /// The server's current time ("set to server time").
    ServerNow,
    Client(Timestamp),
}

/// A SETATTR request (also the initial attributes of CREATE/MKDIR/SYMLINK/MKNOD).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: SetTime,
    pub mtime: SetTime,
}

impl SetAttr {
    pub fn is_empty(&self) -> bool {
        self.mode.is_none()
            && self.uid.is_none()
            && self.gid.is_none()
            && self.size.is_none()
            && self.atime == SetTime::DontChange
            && self.mtime == SetTime::DontChange
    }
}

/// Kind and device numbers for MKNOD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialKind {
    Char(DeviceId),
    Block(DeviceId),
    Fifo,
    Socket,
}

/// Create semantics of CREATE (RFC 1813 section 3.3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateMode {
    /// Succeeds if the file exists (applying a size of 0 if asked).
    Unchecked,
    /// Fails with `Exist` if the name exists.
    Guarded,
    /// Idempotent exclusive create: a retransmission with the same verifier succeeds.
    Exclusive([u8; 8]),
}

/// Write stability (RFC 1813 `stable_how`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stability {
    Unstable,
    DataSync,
    FileSync,
}

/// File system statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStat {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub avail_bytes: u64,
    pub total_files: u64,
    pub free_files: u64,
}

/// One directory entry returned by readdir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntryOut {
    pub name: Vec<u8>,
    pub ino: Ino,
    pub kind: FileType,
    pub cookie: u64,
}

/// A page of readdir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadDirPage {
    pub entries: Vec<DirEntryOut>,
    pub eof: bool,
    /// Cookie verifier to hand back with the next page.
    pub verifier: u64,
}
