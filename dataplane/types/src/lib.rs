//! Value types shared by every data-plane crate.
//!
//! Nothing here does I/O. The metadata store persists these types, the block store
//! produces [`BlockRef`]s, and the protocol adapters see them through the `vfs` crate.
//!
//! Invariants carried by the types:
//! - [`Ino`] 0 is never a valid inode (NFS fileid 0 crashes macOS clients); the root of
//!   every share is [`Ino::ROOT`].
//! - A file's content is a list of [`BlockRef`] sorted by `offset`, non-overlapping;
//!   gaps between refs are holes that read as zeros.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifier of a share inside one data plane. Stable for the life of the share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShareId(pub u32);

impl fmt::Display for ShareId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "share#{}", self.0)
    }
}

/// Inode number, unique within a share and never reused (allocated from a
/// monotonically increasing, durably persisted counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ino(pub u64);

impl Ino {
    /// The root directory of every share.
    pub const ROOT: Ino = Ino(1);
    /// First inode number handed out by the allocator after the root.
    pub const FIRST_ALLOC: u64 = 2;
}

impl fmt::Display for Ino {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ino:{}", self.0)
    }
}

/// Addresses one file of one share (the key of per-file state in the engines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileKey {
    pub share: ShareId,
    pub ino: Ino,
}

/// BLAKE3-256 digest of a chunk's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    pub const ZERO: ContentHash = ContentHash([0u8; 32]);

    /// Hash of `data` (BLAKE3-256).
    pub fn of(data: &[u8]) -> ContentHash {
        ContentHash(*blake3::hash(data).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 lowercase or uppercase hex digits.
    pub fn from_hex(s: &str) -> Result<ContentHash, TypesError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| TypesError::BadHex(s.to_owned()))?;
        Ok(ContentHash(out))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One chunk of a file: `size` bytes of the chunk `hash` placed at file `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockRef {
    pub hash: ContentHash,
    pub offset: u64,
    pub size: u32,
}

impl BlockRef {
    /// One past the last file byte this ref covers.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.size)
    }
}

/// Checks that `blocks` is sorted by offset, non-overlapping and has no empty ref.
pub fn validate_blocks(blocks: &[BlockRef]) -> Result<(), TypesError> {
    let mut prev_end = 0u64;
    for (i, b) in blocks.iter().enumerate() {
        if b.size == 0 {
            return Err(TypesError::BadBlocks(format!("ref {i} is empty")));
        }
        if i > 0 && b.offset < prev_end {
            return Err(TypesError::BadBlocks(format!(
                "ref {i} at {} overlaps previous ending at {prev_end}",
                b.offset
            )));
        }
        prev_end = b.end();
    }
    Ok(())
}

/// File-level content fingerprint (docs/design.md, "Content"):
/// `BLAKE3("dittofs:objectid:v1\0" || h0 || ... || hN-1)` over the refs in offset order.
/// All-zero means "not quiesced".
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    pub const NOT_QUIESCED: ObjectId = ObjectId([0u8; 32]);
    const DOMAIN: &'static [u8] = b"dittofs:objectid:v1\0";

    /// Computes the ObjectID of a quiesced file from its (offset-sorted) refs.
    pub fn compute(blocks: &[BlockRef]) -> ObjectId {
        let mut h = blake3::Hasher::new();
        h.update(Self::DOMAIN);
        for b in blocks {
            h.update(&b.hash.0);
        }
        ObjectId(*h.finalize().as_bytes())
    }

    pub fn is_quiesced(&self) -> bool {
        *self != Self::NOT_QUIESCED
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", &hex::encode(self.0)[..16])
    }
}

/// The kind of a filesystem object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl FileType {
    /// The `S_IFMT` bits of this type.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => 0o100000,
            FileType::Directory => 0o040000,
            FileType::Symlink => 0o120000,
            FileType::CharDevice => 0o020000,
            FileType::BlockDevice => 0o060000,
            FileType::Fifo => 0o010000,
            FileType::Socket => 0o140000,
        }
    }
}

/// Seconds and nanoseconds since the Unix epoch (may be negative: pre-1970 dates are valid).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                // Clock before 1970: represent it faithfully as a negative time.
                let d = e.duration();
                if d.subsec_nanos() == 0 {
                    Timestamp {
                        secs: -(d.as_secs() as i64),
                        nanos: 0,
                    }
                } else {
                    Timestamp {
                        secs: -(d.as_secs() as i64) - 1,
                        nanos: 1_000_000_000 - d.subsec_nanos(),
                    }
                }
            }
        }
    }

    pub fn as_nanos(&self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }
}

/// Device numbers of a character or block special file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct DeviceId {
    pub major: u32,
    pub minor: u32,
}

/// Errors of this crate (parsing and validation only).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TypesError {
    #[error("not a 64-digit hex hash: {0:?}")]
    BadHex(String),
    #[error("invalid block list: {0}")]
    BadBlocks(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_hex_roundtrip() {
        let h = ContentHash::of(b"hello");
        assert_eq!(ContentHash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(ContentHash::from_hex("zz").is_err());
    }

    #[test]
    fn object_id_depends_on_order_and_content() {
        let a = BlockRef {
            hash: ContentHash::of(b"a"),
            offset: 0,
            size: 1,
        };
        let b = BlockRef {
            hash: ContentHash::of(b"b"),
            offset: 1,
            size: 1,
        };
        assert_ne!(ObjectId::compute(&[a, b]), ObjectId::compute(&[b, a]));
        assert_eq!(ObjectId::compute(&[a, b]), ObjectId::compute(&[a, b]));
        assert!(ObjectId::compute(&[]).is_quiesced());
    }

    #[test]
    fn validate_blocks_rejects_overlap_and_empty() {
        let h = ContentHash::ZERO;
        assert!(
            validate_blocks(&[
                BlockRef {
                    hash: h,
                    offset: 0,
                    size: 10
                },
                BlockRef {
                    hash: h,
                    offset: 5,
                    size: 10
                }
            ])
            .is_err()
        );
        assert!(
            validate_blocks(&[BlockRef {
                hash: h,
                offset: 0,
                size: 0
            }])
            .is_err()
        );
        assert!(
            validate_blocks(&[
                BlockRef {
                    hash: h,
                    offset: 0,
                    size: 10
                },
                BlockRef {
                    hash: h,
                    offset: 20,
                    size: 1
                }
            ])
            .is_ok()
        );
    }

    #[test]
    fn timestamp_now_is_after_2020() {
        assert!(Timestamp::now().secs > 1_577_836_800);
    }
}
