//! Opaque file handles (docs/design.md, "File handles").
//!
//! Layout, 25 bytes (NFSv3 allows 64, NFSv4 128):
//!
//! | bytes | field                                  |
//! |-------|----------------------------------------|
//! | 0     | format version (1)                     |
//! | 1..5  | share id, u32 BE                       |
//! | 5..9  | share incarnation, u32 BE              |
//! | 9..17 | inode number, u64 BE                   |
//! | 17..21| inode generation, u32 BE               |
//! | 21..25| first 4 bytes of BLAKE3(bytes 0..21)   |
//!
//! A handle that fails to parse or whose check bytes do not match is `BadHandle`; a
//! well-formed handle naming a deleted inode, an inode with another generation or a share
//! with another incarnation is `Stale`. Neither ever panics.

use crate::error::{FsError, FsResult};
use dittofs_types::{Ino, ShareId};

pub const HANDLE_LEN: usize = 25;
const VERSION: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileHandle {
    pub share: ShareId,
    pub incarnation: u32,
    pub ino: Ino,
    pub generation: u32,
}

impl FileHandle {
    pub fn encode(&self) -> [u8; HANDLE_LEN] {
        let mut b = [0u8; HANDLE_LEN];
        b[0] = VERSION;
        b[1..5].copy_from_slice(&self.share.0.to_be_bytes());
        b[5..9].copy_from_slice(&self.incarnation.to_be_bytes());
        b[9..17].copy_from_slice(&self.ino.0.to_be_bytes());
        b[17..21].copy_from_slice(&self.generation.to_be_bytes());
        let sum = blake3::hash(&b[..21]);
        b[21..25].copy_from_slice(&sum.as_bytes()[..4]);
        b
    }

    pub fn decode(bytes: &[u8]) -> FsResult<FileHandle> {
        if bytes.len() != HANDLE_LEN || bytes[0] != VERSION {
            return Err(FsError::BadHandle);
        }
        let sum = blake3::hash(&bytes[..21]);
        if bytes[21..25] != sum.as_bytes()[..4] {
            return Err(FsError::BadHandle);
        }
        let u32_at =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut ino = [0u8; 8];
        ino.copy_from_slice(&bytes[9..17]);
        let ino = Ino(u64::from_be_bytes(ino));
        if ino.0 == 0 {
            return Err(FsError::BadHandle);
        }
        Ok(FileHandle {
            share: ShareId(u32_at(1)),
            incarnation: u32_at(5),
            ino,
            generation: u32_at(17),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roundtrip() {
        let h = FileHandle {
            share: ShareId(7),
            incarnation: 0xdead_beef,
            ino: Ino(42),
            generation: 3,
        };
        assert_eq!(FileHandle::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn tampering_is_bad_handle() {
        let h = FileHandle {
            share: ShareId(7),
            incarnation: 1,
            ino: Ino(42),
            generation: 3,
        };
        let mut b = h.encode();
        b[12] ^= 1;
        assert_eq!(FileHandle::decode(&b), Err(FsError::BadHandle));
        assert_eq!(FileHandle::decode(&b[..10]), Err(FsError::BadHandle));
        assert_eq!(FileHandle::decode(&[]), Err(FsError::BadHandle));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = FileHandle::decode(&bytes);
        }
    }
}
