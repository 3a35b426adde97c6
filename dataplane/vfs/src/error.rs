//! The one error enum of the filesystem core.
//!
//! Invariants:
//! * The core holds no wire codes. [`FsError`] names what failed in POSIX terms; each
//!   protocol adapter maps it to its own status codes at its edge with a typed
//!   conversion (NFSv3 and NFSv4: `impl From<&FsError>` in `dittofs-nfs`), so one
//!   failure reads the same through every protocol an adapter speaks.
//! * Lower-layer failures are kept, not flattened: [`FsError::Io`] holds the metadata or
//!   block-store error as its [`std::error::Error::source`] ([`IoCause`]), shared so that
//!   `FsError` stays `Clone`. Its `Display` still includes the cause's text, so a log
//!   line or a control-API message printing `{e}` reads as it always did.
//! * Errors compare by kind: two `FsError::Io` are equal whatever their causes
//!   (see [`IoCause`]'s `PartialEq`), which is what callers and tests branch on.

use std::sync::Arc;

use dittofs_blockstore::BlockError;
use dittofs_metadata::MetaError;

pub type FsResult<T> = Result<T, FsError>;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FsError {
    #[error("operation not permitted")]
    Perm,
    #[error("no such file or directory")]
    NoEnt,
    /// A store under the file system failed; the cause is kept as the source.
    #[error("I/O error: {0}")]
    Io(#[source] IoCause),
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
    /// The extended attribute is not set (ENODATA).
    #[error("no such attribute")]
    NoXattr,
    /// An extended attribute value over the size limit (E2BIG).
    #[error("attribute value too large")]
    XattrTooBig,
    #[error("object type not supported by this operation")]
    BadType,
    #[error("resource temporarily unavailable, retry later")]
    Jukebox,
    #[error("device or resource busy")]
    Busy,
    /// A seek for data or a hole from an offset at or past the end of the file.
    #[error("no such device or address: offset at or past the end of the file")]
    NxIo,
    #[error("object changed since the guard time (sattrguard3)")]
    NotSync,
    /// A broken invariant of the core itself (not a failure underneath it), described.
    #[error("internal server error: {0}")]
    ServerFault(String),
}

/// The lower-layer failure behind [`FsError::Io`], as its typed source. Shared (`Arc`)
/// because `FsError` is `Clone` and neither lower error is.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IoCause {
    #[error(transparent)]
    Meta(Arc<MetaError>),
    #[error(transparent)]
    Block(Arc<BlockError>),
}

/// Any two causes are equal: errors compare by kind, so `FsError::Io(a) == FsError::Io(b)`
/// for every `a` and `b` (inspect [`std::error::Error::source`] to tell causes apart).
impl PartialEq for IoCause {
    fn eq(&self, _: &IoCause) -> bool {
        true
    }
}

impl Eq for IoCause {}

impl From<MetaError> for IoCause {
    fn from(e: MetaError) -> IoCause {
        IoCause::Meta(Arc::new(e))
    }
}

impl From<BlockError> for IoCause {
    fn from(e: BlockError) -> IoCause {
        IoCause::Block(Arc::new(e))
    }
}

impl From<MetaError> for FsError {
    fn from(e: MetaError) -> FsError {
        match e {
            MetaError::Conflict(_) => FsError::Jukebox,
            MetaError::NoSuchShare(_) => FsError::Stale,
            MetaError::NoSuchInode { .. } => FsError::Stale,
            MetaError::NoSpace(_) => FsError::NoSpc,
            other => FsError::Io(other.into()),
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

impl From<BlockError> for FsError {
    fn from(e: BlockError) -> FsError {
        match e {
            // Retryable: the data is safe locally, only the remote confirmation is late.
            BlockError::RemotePending(_) => FsError::Jukebox,
            // The local tier is full of data a failing remote does not take, or the disk
            // is at its reserve.
            BlockError::NoSpace(_) => FsError::NoSpc,
            BlockError::Io { ref source, .. } => {
                full_disk(source).unwrap_or_else(|| FsError::Io(e.into()))
            }
            other => FsError::Io(other.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A full disk or quota under any store reaches the client as NOSPC / DQUOT, not EIO.
    /// (The NFS adapter's test of the same name checks the wire codes these become.)
    #[test]
    fn full_disks_are_nospc_and_quotas_dquot() {
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
    }

    /// The lower error is the source, down to the OS error, and the message still reads
    /// as the flattened string did.
    #[test]
    fn io_keeps_its_cause_as_the_source() {
        let e = FsError::from(BlockError::Io {
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        });
        let cause = e.source().map(ToString::to_string);
        assert_eq!(
            e.to_string(),
            format!("I/O error: {}", cause.unwrap_or_default())
        );
        let block = e.source().and_then(|s| s.downcast_ref::<IoCause>());
        assert!(matches!(block, Some(IoCause::Block(_))), "{e:?}");
        let os = e.source().and_then(|s| s.source());
        let os = os.and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            os.map(std::io::Error::kind),
            Some(std::io::ErrorKind::PermissionDenied)
        );

        let e = FsError::from(MetaError::Closed);
        assert_eq!(e.to_string(), "I/O error: metadata store is closed");
        let meta = e.source().and_then(|s| s.downcast_ref::<IoCause>());
        assert!(matches!(meta, Some(IoCause::Meta(m)) if matches!(**m, MetaError::Closed)));
    }

    #[test]
    fn io_errors_compare_by_kind() {
        let a = FsError::from(MetaError::Closed);
        let b = FsError::from(BlockError::NoSpace("x".into()));
        assert_eq!(a, FsError::from(MetaError::Backend("y".into())));
        assert_ne!(a, b);
    }
}
