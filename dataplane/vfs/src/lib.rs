//! The protocol-neutral filesystem core of DittoFS.
//!
//! [`Fs`] is one share's filesystem: POSIX semantics (permissions, sticky directories,
//! setgid inheritance, suid/sgid clearing, timestamps, link counts, name rules) over a
//! [`dittofs_metadata::MetadataStore`] (one transaction per namespace change) and a
//! [`dittofs_blockstore::Engine`] (content). Protocol adapters (NFS, SMB) depend on this
//! crate only; they never see a concrete store.
//!
//! [`ShareRegistry`] maps handles and export names to shares. [`grant`] holds the
//! per-share access levels (users' grants) the core enforces on top of POSIX modes;
//! [`IdNames`] the names of user and group ids adapters show owners by (NFSv4
//! `name@domain`), both filled by the control plane from its identity store.
//! [`trash`] administers the per-share recycle bin (`#recycle`); the move into it is the
//! private `recycle` module. [`state::LockManager`] is a share's lock, share-mode and
//! lease manager (the locks clients ask for, not the internal per-inode mutexes).
//! Extended attributes of the user namespace are `Fs::get_xattr` and friends (private
//! module `ops_xattr`). `Fs::put_client_record` and friends (`client_records`) keep, per
//! share, which clients held state there, so that they may reclaim it after a restart.
//! [`ratelimit`] logs what clients can cause at will a few times
//! and counts every occurrence (the NFS adapter's floods, the core's refused writes).

mod admin;
pub mod attr;
mod client_records;
pub mod cred;
pub mod error;
mod fs;
pub mod grant;
pub mod handle;
pub mod idnames;
mod locks;
mod ops_attr;
mod ops_create;
mod ops_io;
mod ops_ns;
mod ops_space;
mod ops_xattr;
mod paths;
pub mod ratelimit;
mod recycle;
pub mod registry;
pub mod state;
pub mod trash;

pub use attr::{
    Attr, CreateMode, DirEntryOut, FsStat, ReadDirPage, SetAttr, SetTime, SpecialKind, Stability,
};
pub use cred::{Credentials, access};
pub use error::{FsError, FsResult, IoCause};
pub use fs::{
    DataDurability, Fs, LINK_MAX, MAX_FILE_SIZE, NAME_MAX, PATH_MAX, RemoteBinding, ShareOptions,
};
pub use grant::{AccessLevel, Disabled, ShareAccess, UnknownLevel, UserAccess};
pub use handle::{FileHandle, HANDLE_LEN};
pub use idnames::IdNames;
pub use ops_io::{FLUSH_IDLE, FLUSH_MAX_DIRTY, FLUSH_TICK, WriteOutcome, writes_refused_counter};
pub use ops_space::{CopyOutcome, CopyRange, SeekOutcome, SeekWhat};
pub use ops_xattr::{
    XATTR_NAME_MAX, XATTR_SIZE_MAX, XATTR_TOTAL_MAX, XattrChange, XattrPage, XattrSetMode,
};
pub use registry::ShareRegistry;
pub use trash::{ReapReport, TRASH_DIR, TrashItem, TrashPolicy, TrashStatus};
