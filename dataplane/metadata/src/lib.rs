//! The metadata store contract of DittoFS and its backends.
//!
//! The filesystem core (`dittofs-vfs`) is the only writer. It reads through the
//! [`MetadataStore`] methods and changes state only by committing a [`Txn`]: a list of
//! [`Check`]s (optimistic preconditions) and [`Op`]s that a backend validates and
//! applies atomically, all or nothing. Every namespace change (create, link, unlink,
//! rename, setattr) and every content commit (new block list + size + mtime + chunk
//! refcount deltas) is exactly one `Txn`.
//!
//! Durability is explicit: [`Durability::Durable`] returns only once the transaction is
//! on stable storage; [`Durability::Buffered`] may be lost in a crash, but never partially
//! (a later durable commit or [`MetadataStore::sync`] makes every earlier commit durable,
//! in commit order).
//!
//! Backends: `memory::MemoryStore` (volatile) and `sled_store::SledStore` (embedded,
//! persistent). Each must pass the suite in `conformance` unchanged.

pub mod audit;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod error;
pub mod memory;
pub mod record;
pub mod sled_store;
pub mod store;
pub mod txn;

pub use audit::{Inv02Report, audit_inv02};
pub use error::{MetaError, MetaResult};
pub use record::{ChunkRow, DirEntry, InodeRecord, ShareRecord, Xattrs};
pub use sled_store::SledStore;
pub use store::{Durability, MetadataStore, StoreInfo};
pub use txn::{Check, Op, Txn};
