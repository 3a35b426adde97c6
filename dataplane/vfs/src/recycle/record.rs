//! The records of recycled objects in the share's auxiliary key space
//! ([`dittofs_metadata::Op::PutAux`]): key `b"trash/" ++ ino u64 BE`, value postcard of
//! [`TrashRecord`]. The key layout is part of the on-disk format (see the key-layout
//! table of `docs/architecture.md`).

use dittofs_types::{Ino, Timestamp};
use serde::{Deserialize, Serialize};

/// Prefix of the recycle-bin records in the auxiliary key space.
pub(crate) const RECORD_PREFIX: &[u8] = b"trash/";

/// The stored record of an item (postcard; field order is the format).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TrashRecord {
    pub(crate) original_path: Vec<u8>,
    pub(crate) deleted_at: Timestamp,
    /// Size at deletion (informational: listings compute sizes afresh).
    pub(crate) size: u64,
}

/// Auxiliary key of the record of `ino`.
pub(crate) fn record_key(ino: Ino) -> Vec<u8> {
    let mut k = Vec::with_capacity(RECORD_PREFIX.len() + 8);
    k.extend_from_slice(RECORD_PREFIX);
    k.extend_from_slice(&ino.0.to_be_bytes());
    k
}

/// The inode of a record key; `None` for a key of another shape.
pub(crate) fn ino_of_record_key(k: &[u8]) -> Option<Ino> {
    let tail = k.strip_prefix(RECORD_PREFIX)?;
    let b: [u8; 8] = tail.try_into().ok()?;
    Some(Ino(u64::from_be_bytes(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_roundtrip() {
        let k = record_key(Ino(0x0102_0304_0506_0708));
        assert_eq!(&k[..6], b"trash/");
        assert_eq!(ino_of_record_key(&k), Some(Ino(0x0102_0304_0506_0708)));
        assert_eq!(ino_of_record_key(b"trash/x"), None);
        assert!(record_key(Ino(255)) < record_key(Ino(256)));
    }
}
