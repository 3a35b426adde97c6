//! The one error enum of the filesystem core and every protocol mapping of it.
//!
//! Adapters never invent status codes: NFSv3 (RFC 1813 section 2.6), NFSv4 (RFC 7530
//! section 13), SMB (MS-ERREF 2.3 NTSTATUS) and errno values all come from the tables
//! below, so one failure reads the same through every protocol.

use dittofs_metadata::MetaError;

pub type FsResult<T> = Result<T, FsError>;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FsError {
    #[error("operation not permitted")]
    Perm,
    #[error("no such file or directory")]
    NoEnt,
    #[error("I/O error: {0}")]
    Io(String),
    #[error("permission denied")]
    Access,
    #[error("file exists")]
    Exist,
    #[error("cross-device link")]
    XDev,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("invalid argument: {0}")]
    Inval(&'static str),
    /// An invalid argument with a message built at run time (a bad glob, a hostile
    /// recycle-bin path); maps like [`FsError::Inval`].
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("file too large")]
    FBig,
    #[error("no space left on device")]
    NoSpc,
    #[error("disk quota exceeded")]
    DQuot,
    #[error("read-only file system")]
    RoFs,
    #[error("too many links")]
    MLink,
    #[error("file name too long")]
    NameTooLong,
    #[error("directory not empty")]
    NotEmpty,
    #[error("stale file handle")]
    Stale,
    #[error("malformed file handle")]
    BadHandle,
    #[error("operation not supported")]
    NotSupp,
    #[error("readdir cookie is no longer valid")]
    BadCookie,
    #[error("buffer too small")]
    TooSmall,
    #[error("object type not supported by this operation")]
    BadType,
    #[error("resource temporarily unavailable, retry later")]
    Jukebox,
    #[error("device or resource busy")]
    Busy,
    #[error("object changed since the guard time (sattrguard3)")]
    NotSync,
    #[error("internal server error: {0}")]
    ServerFault(String),
}

impl FsError {
    /// Linux errno value.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::Perm => 1,
            FsError::NoEnt => 2,
            FsError::Io(_) => 5,
            FsError::Access => 13,
            FsError::Exist => 17,
            FsError::XDev => 18,
            FsError::NotDir => 20,
            FsError::IsDir => 21,
            FsError::Inval(_) | FsError::InvalidArgument(_) => 22,
            FsError::FBig => 27,
            FsError::NoSpc => 28,
            FsError::DQuot => 122,
            FsError::RoFs => 30,
            FsError::MLink => 31,
            FsError::NameTooLong => 36,
            FsError::NotEmpty => 39,
            FsError::Stale => 116,
            FsError::BadHandle => 116,
            FsError::NotSupp => 95,
            FsError::BadCookie => 22,
            FsError::TooSmall => 22,
            FsError::BadType => 22,
            FsError::Jukebox => 11,
            FsError::Busy => 16,
            FsError::NotSync => 22,
            FsError::ServerFault(_) => 5,
        }
    }

    /// `nfsstat3` (RFC 1813 section 2.6).
    pub fn nfsstat3(&self) -> u32 {
        match self {
            FsError::Perm => 1,
            FsError::NoEnt => 2,
            FsError::Io(_) => 5,
            FsError::Access => 13,
            FsError::Exist => 17,
            FsError::XDev => 18,
            FsError::NotDir => 20,
            FsError::IsDir => 21,
            FsError::Inval(_) | FsError::InvalidArgument(_) => 22,
            FsError::FBig => 27,
            FsError::NoSpc => 28,
            FsError::DQuot => 69,
            FsError::RoFs => 30,
            FsError::MLink => 31,
            FsError::NameTooLong => 63,
            FsError::NotEmpty => 66,
            FsError::Stale => 70,
            FsError::BadHandle => 10001,
            FsError::NotSupp => 10004,
            FsError::BadCookie => 10003,
            FsError::TooSmall => 10005,
            FsError::BadType => 10007,
            FsError::Jukebox => 10008,
            FsError::Busy => 10008,
            FsError::NotSync => 10002,
            FsError::ServerFault(_) => 10006,
        }
    }

    /// `nfsstat4` (RFC 7530 section 13.1). NFSv4 kept the NFSv3 numbers for every
    /// error both versions have; only the v3-specific ones differ.
    pub fn nfsstat4(&self) -> u32 {
        match self {
            // NFS3ERR_NOT_SYNC has no v4 counterpart (v4 guards with VERIFY/NVERIFY).
            FsError::NotSync => 22,
            other => other.nfsstat3(),
        }
    }

    /// NTSTATUS (MS-ERREF section 2.3.1).
    pub fn ntstatus(&self) -> u32 {
        match self {
            FsError::Perm | FsError::Access => 0xC000_0022, // STATUS_ACCESS_DENIED
            FsError::NoEnt => 0xC000_0034,                  // STATUS_OBJECT_NAME_NOT_FOUND
            FsError::Io(_) => 0xC000_0185,                  // STATUS_IO_DEVICE_ERROR
            FsError::Exist => 0xC000_0035,                  // STATUS_OBJECT_NAME_COLLISION
            FsError::XDev => 0xC000_00D4,                   // STATUS_NOT_SAME_DEVICE
            FsError::NotDir => 0xC000_0103,                 // STATUS_NOT_A_DIRECTORY
            FsError::IsDir => 0xC000_00BA,                  // STATUS_FILE_IS_A_DIRECTORY
            FsError::Inval(_)
            | FsError::InvalidArgument(_)
            | FsError::BadCookie
            | FsError::BadType => 0xC000_000D, // STATUS_INVALID_PARAMETER
            FsError::FBig => 0xC000_007F,                   // STATUS_DISK_FULL
            FsError::NoSpc => 0xC000_007F,                  // STATUS_DISK_FULL
            FsError::DQuot => 0xC000_0044,                  // STATUS_QUOTA_EXCEEDED
            FsError::RoFs => 0xC000_00A2,                   // STATUS_MEDIA_WRITE_PROTECTED
            FsError::MLink => 0xC000_0361,                  // STATUS_TOO_MANY_LINKS
            FsError::NameTooLong => 0xC000_0033,            // STATUS_OBJECT_NAME_INVALID
            FsError::NotEmpty => 0xC000_0101,               // STATUS_DIRECTORY_NOT_EMPTY
            FsError::Stale | FsError::BadHandle => 0xC000_0128, // STATUS_FILE_CLOSED
            FsError::NotSupp => 0xC000_00BB,                // STATUS_NOT_SUPPORTED
            FsError::TooSmall => 0xC000_0023,               // STATUS_BUFFER_TOO_SMALL
            FsError::Jukebox | FsError::Busy => 0xC000_0043, // STATUS_SHARING_VIOLATION
            FsError::NotSync => 0xC000_000D,                // STATUS_INVALID_PARAMETER
            FsError::ServerFault(_) => 0xC000_0001,         // STATUS_UNSUCCESSFUL
        }
    }
}

impl From<MetaError> for FsError {
    fn from(e: MetaError) -> FsError {
        match e {
            MetaError::Conflict(_) => FsError::Jukebox,
            MetaError::NoSuchShare(_) => FsError::Stale,
            MetaError::NoSuchInode { .. } => FsError::Stale,
            MetaError::NoSpace(_) => FsError::NoSpc,
            other => FsError::Io(other.to_string()),
        }
    }
}

/// ENOSPC and EDQUOT of the file system under a store, as the client must see them.
fn full_disk(e: &std::io::Error) -> Option<FsError> {
    match e.kind() {
        std::io::ErrorKind::StorageFull => Some(FsError::NoSpc),
        std::io::ErrorKind::QuotaExceeded => Some(FsError::DQuot),
        _ => None,
    }
}

impl From<dittofs_blockstore::BlockError> for FsError {
    fn from(e: dittofs_blockstore::BlockError) -> FsError {
        use dittofs_blockstore::BlockError;
        match e {
            // Retryable: the data is safe locally, only the remote confirmation is late.
            BlockError::RemotePending(_) => FsError::Jukebox,
            // The local tier is full of data a failing remote does not take, or the disk
            // is at its reserve.
            BlockError::NoSpace(_) => FsError::NoSpc,
            BlockError::Io { ref source, .. } => {
                full_disk(source).unwrap_or_else(|| FsError::Io(e.to_string()))
            }
            other => FsError::Io(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_distinct_where_protocols_distinguish() {
        assert_eq!(FsError::NoEnt.nfsstat3(), 2);
        assert_eq!(FsError::NameTooLong.nfsstat3(), 63);
        assert_eq!(FsError::NotEmpty.errno(), 39);
        assert_eq!(FsError::Stale.nfsstat4(), 70);
        assert_eq!(FsError::NoEnt.ntstatus(), 0xC000_0034);
        let bad = FsError::InvalidArgument("bad glob".into());
        assert_eq!(bad.errno(), 22);
        assert_eq!(bad.nfsstat3(), 22);
        assert_eq!(bad.nfsstat4(), 22);
        assert_eq!(bad.ntstatus(), 0xC000_000D);
    }

    /// A full disk or quota under any store reaches the client as NOSPC / DQUOT, not EIO.
    #[test]
    fn full_disks_are_nospc_and_quotas_dquot() {
        use dittofs_blockstore::BlockError;
        let io = |kind| BlockError::Io {
            path: "/x".into(),
            source: std::io::Error::from(kind),
        };
        assert_eq!(
            FsError::from(io(std::io::ErrorKind::StorageFull)),
            FsError::NoSpc
        );
        assert_eq!(
            FsError::from(io(std::io::ErrorKind::QuotaExceeded)),
            FsError::DQuot
        );
        assert!(matches!(
            FsError::from(io(std::io::ErrorKind::PermissionDenied)),
            FsError::Io(_)
        ));
        assert_eq!(
            FsError::from(BlockError::NoSpace("at the reserve".into())),
            FsError::NoSpc
        );
        assert_eq!(
            FsError::from(MetaError::NoSpace("sled".into())),
            FsError::NoSpc
        );
        assert_eq!(
            (FsError::NoSpc.nfsstat3(), FsError::DQuot.nfsstat3()),
            (28, 69)
        );
        assert_eq!(
            (FsError::DQuot.errno(), FsError::DQuot.nfsstat4()),
            (122, 69)
        );
    }
}
