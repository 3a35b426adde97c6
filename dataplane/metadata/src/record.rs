//! Records persisted by every metadata backend.
//!
//! Backends encode these with `postcard` (see [`encode`]/[`decode`]); the field order is
//! part of the on-disk format: append new fields only behind a format-version bump.

use crate::error::{MetaError, MetaResult};
use dittofs_types::{ContentHash, DeviceId, FileType, Ino, ObjectId, ShareId, Timestamp};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// One inode (file, directory, symlink or special file) of a share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InodeRecord {
    pub ino: Ino,
    /// Handle generation: a handle naming this inode must carry the same value.
    pub generation: u32,
    pub kind: FileType,
    /// Permission bits including suid/sgid/sticky (mask 0o7777); no `S_IFMT` bits.
    pub mode: u32,
    /// Number of directory entries naming this inode (directories: 2 + subdirectories).
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    /// Committed size in bytes. Unflushed writes may extend the size the VFS reports.
    pub size: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub btime: Timestamp,
    /// Character/block devices only.
    pub rdev: DeviceId,
    /// Incremented on every committed change of this inode (NFSv4 change attribute,
    /// optimistic-concurrency token of [`crate::Check::InodeChange`]).
    pub change: u64,
    /// Directories: the parent directory (the root is its own parent). Others: 0.
    pub parent: Ino,
    /// Directories: the cookie the next inserted entry gets (starts at 3; 0-2 are reserved
    /// by NFS for "start", ".", "..").
    pub next_cookie: u64,
    /// Symlinks: the target, as opaque bytes.
    pub symlink_target: Option<Vec<u8>>,
    /// File-level fingerprint, [`ObjectId::NOT_QUIESCED`] while content is dirty.
    pub object_id: ObjectId,
    /// NFSv3/NFSv4 exclusive-create verifier, kept until the first SETATTR.
    pub create_verifier: Option<[u8; 8]>,
    /// Highest write-journal sequence number whose data is included in the committed
    /// block list; journal replay skips records at or below it.
    pub applied_seq: u64,
}

/// A name in a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: Ino,
    pub kind: FileType,
    /// Position of the entry in the directory's readdir order; unique within the
    /// directory, never reused, stable while the entry exists.
    pub cookie: u64,
}

/// Reference count of one chunk within one share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRow {
    /// Number of [`dittofs_types::BlockRef`]s over all files of the share naming this hash.
    pub refcount: u64,
    /// Chunk length in bytes.
    pub size: u32,
}

/// A share's identity inside a metadata store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRecord {
    pub id: ShareId,
    pub name: String,
    /// Random value fixed at creation; handles carry it so that handles of a deleted and
    /// re-created share are stale instead of naming the wrong files.
    pub incarnation: u32,
    pub created: Timestamp,
    /// Inode numbers below this value may have been handed out; the allocator resumes here
    /// after a restart, so numbers are never reused.
    pub next_ino: u64,
}

/// The extended attributes of one inode: name -> value, in byte order of the names.
/// A backend keeps them as one record per inode (replaced whole by
/// [`crate::Op::SetXattrs`], deleted with the inode by [`crate::Op::DeleteInode`]); the
/// VFS bounds their total size, so the record stays small.
pub type Xattrs = std::collections::BTreeMap<Vec<u8>, Vec<u8>>;

/// Chunk hash plus its row, as returned by scans.
pub type ChunkEntry = (ContentHash, ChunkRow);

pub fn encode<T: Serialize>(v: &T) -> MetaResult<Vec<u8>> {
    postcard::to_stdvec(v).map_err(|e| MetaError::Corrupt {
        what: "encode",
        detail: e.to_string(),
    })
}

pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> MetaResult<T> {
    postcard::from_bytes(bytes).map_err(|e| MetaError::Corrupt {
        what,
        detail: e.to_string(),
    })
}
