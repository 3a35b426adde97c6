//! The BLAKE3 tree of a chunk, cut into at most 32 aligned groups, for verified ranged
//! reads.
//!
//! A chunk of `n` bytes is split into groups of [`group_size(n)`](group_size) bytes (a
//! power of two, at least 64 KiB, so at most 32 groups): group `i` is
//! `[i*G, min((i+1)*G, n))`. Every group is a complete subtree of the chunk's BLAKE3 tree,
//! so its chaining value (CV) is computed on its bytes alone (with its input offset), and
//! the group CVs merge, following BLAKE3's own tree rule, into the chunk hash. The CVs are
//! stored next to the chunk (S3 user metadata `dittofs-tree`): a reader fetches only the
//! groups covering a range, checks that the stored CVs merge to the chunk hash (the name of
//! the chunk, known to the reader) and that the fetched groups hash to their CVs. Every
//! byte served is thereby verified against the chunk hash, without downloading the chunk.
//!
//! A chunk of one group (`n <= G`) has no stored CVs: its root is `blake3::hash(data)`
//! and it is read (and verified) whole.

use crate::error::{RemoteError, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};
use dittofs_types::ContentHash;

/// Smallest group size (64 BLAKE3 chunks of 1 KiB).
pub const MIN_GROUP: u64 = 64 * 1024;
/// Most groups of a chunk.
pub const MAX_GROUPS: u64 = 32;
/// Version tag of the encoding.
const VERSION: &str = "1";

/// The group size of a chunk of `n` bytes: `max(64 KiB, next_power_of_two(ceil(n / 32)))`.
pub fn group_size(n: u64) -> u64 {
    n.div_ceil(MAX_GROUPS).next_power_of_two().max(MIN_GROUP)
}

/// The number of groups of a chunk of `n` bytes (1 for an empty chunk).
pub fn group_count(n: u64) -> u64 {
    n.div_ceil(group_size(n)).max(1)
}

/// The group CVs of one chunk (none when the chunk is a single group).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkTree {
    len: u64,
    group: u64,
    cvs: Vec<ChainingValue>,
}

impl ChunkTree {
    /// The tree of `data` and its BLAKE3 hash (equal to `ContentHash::of(data)`), in one
    /// pass over the data.
    pub fn compute(data: &[u8]) -> (ChunkTree, ContentHash) {
        let len = data.len() as u64;
        let group = group_size(len);
        if len <= group {
            let tree = ChunkTree {
                len,
                group,
                cvs: Vec::new(),
            };
            return (tree, ContentHash(*blake3::hash(data).as_bytes()));
        }
        let cvs: Vec<ChainingValue> = data
            .chunks(group as usize)
            .enumerate()
            .map(|(i, g)| group_cv(i as u64 * group, g))
            .collect();
        let tree = ChunkTree { len, group, cvs };
        let root = tree.root().unwrap_or(ContentHash::ZERO);
        (tree, root)
    }

    /// Length of the chunk the tree describes.
    pub fn chunk_len(&self) -> u64 {
        self.len
    }

    /// Group size of the chunk ([`group_size`] of its length).
    pub fn group_size(&self) -> u64 {
        self.group
    }

    /// Number of groups of the chunk.
    pub fn groups(&self) -> usize {
        group_count(self.len) as usize
    }

    /// Whether the chunk is a single group (then the tree holds no CVs and verifies nothing:
    /// the chunk is read whole and checked against its hash).
    pub fn is_single_group(&self) -> bool {
        self.cvs.is_empty()
    }

    /// `1.<log2 G>.<base64url, no padding, of the concatenated group CVs>`: ASCII, at most
    /// 1371 bytes (32 CVs), for an S3 user-metadata value.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(self.cvs.len() * 32);
        for cv in &self.cvs {
            raw.extend_from_slice(cv);
        }
        format!(
            "{VERSION}.{}.{}",
            self.group.trailing_zeros(),
            URL_SAFE_NO_PAD.encode(raw)
        )
    }

    /// Parses [`encode`](Self::encode)'s output for a chunk of `n` bytes; anything else
    /// (another version, a group size not `group_size(n)`, a wrong number of CVs, bad
    /// base64) is `Invalid`.
    pub fn decode(s: &str, n: u64) -> Result<ChunkTree> {
        let bad = |what: &str| RemoteError::Invalid(format!("chunk tree: {what}"));
        let mut parts = s.splitn(3, '.');
        let (Some(version), Some(log2), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not <version>.<log2 group>.<cvs>"));
        };
        if version != VERSION {
            return Err(bad(&format!("unknown version {version:.8?}")));
        }
        let group = group_size(n);
        if log2.is_empty()
            || log2.len() > 2
            || !log2.bytes().all(|b| b.is_ascii_digit())
            || log2 != group.trailing_zeros().to_string()
        {
            return Err(bad(&format!(
                "group size 2^{log2:.8?} is not {group} for a chunk of {n} bytes"
            )));
        }
        let want = if n <= group {
            0
        } else {
            group_count(n) as usize
        };
        // Checked before decoding: a hostile value cannot make us allocate much.
        if b64.len() != (want * 32 * 4).div_ceil(3) {
            return Err(bad(&format!(
                "{} base64 characters, {want} CVs expected",
                b64.len()
            )));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|e| bad(&format!("base64: {e}")))?;
        if raw.len() != want * 32 {
            return Err(bad(&format!("{} CV bytes, {want} CVs expected", raw.len())));
        }
        let cvs = raw
            .chunks_exact(32)
            .map(|c| {
                let mut cv = [0u8; 32];
                cv.copy_from_slice(c);
                cv
            })
            .collect();
        Ok(ChunkTree { len: n, group, cvs })
    }

    /// Whether the group CVs merge to `hash`. Always false for a single-group tree (it has
    /// no CVs to check).
    pub fn verify_root(&self, hash: &ContentHash) -> bool {
        self.root().is_some_and(|r| r == *hash)
    }

    /// Whether `data` is the bytes of the consecutive groups starting at `first_group`
    /// (whole groups; only the chunk's last group may be short), according to the CVs.
    /// Meaningful after [`verify_root`](Self::verify_root); always false for a single-group
    /// tree, an empty `data` or a `data` not ending on a group boundary.
    pub fn verify_groups(&self, first_group: usize, data: &[u8]) -> bool {
        if self.cvs.is_empty() || data.is_empty() || first_group >= self.cvs.len() {
            return false;
        }
        let g = self.group as usize;
        let start = first_group as u64 * self.group;
        let end = start.saturating_add(data.len() as u64);
        if end > self.len || (end != self.len && !data.len().is_multiple_of(g)) {
            return false;
        }
        data.chunks(g).enumerate().all(|(k, bytes)| {
            let i = first_group + k;
            self.cvs
                .get(i)
                .is_some_and(|cv| group_cv(i as u64 * self.group, bytes) == *cv)
        })
    }

    /// The root hash of the CVs (`None` for a single-group tree).
    fn root(&self) -> Option<ContentHash> {
        if self.cvs.is_empty() {
            return None;
        }
        // n > G here, so the root is a parent node: split it as BLAKE3 does.
        let left = left_subtree_len(self.len);
        let l = self.subtree_cv(0, left)?;
        let r = self.subtree_cv(left, self.len - left)?;
        Some(ContentHash(
            *merge_subtrees_root(&l, &r, Mode::Hash).as_bytes(),
        ))
    }

    /// The CV of the (non-root) subtree of `len` bytes at `start` (a group boundary).
    /// Every split of a subtree longer than one group falls on a group boundary: the left
    /// part is a power of two, at least G, and G is a power of two.
    fn subtree_cv(&self, start: u64, len: u64) -> Option<ChainingValue> {
        if len <= self.group {
            return self.cvs.get((start / self.group) as usize).copied();
        }
        let left = left_subtree_len(len);
        let l = self.subtree_cv(start, left)?;
        let r = self.subtree_cv(start + left, len - left)?;
        Some(merge_subtrees_non_root(&l, &r, Mode::Hash))
    }
}

/// The chaining value of the group `bytes` starting at `offset` (a multiple of its
/// power-of-two size, at least 1 KiB, so a valid BLAKE3 subtree; `bytes` not empty).
fn group_cv(offset: u64, bytes: &[u8]) -> ChainingValue {
    blake3::Hasher::new()
        .set_input_offset(offset)
        .update(bytes)
        .finalize_non_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: a tiny deterministic PRNG for test lengths.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn data_of(len: usize, seed: u64) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        blake3::Hasher::new()
            .update(&seed.to_le_bytes())
            .finalize_xof()
            .fill(&mut buf);
        buf
    }

    /// Everything that must hold for one chunk.
    fn check(len: usize, seed: u64, rng: &mut Rng) {
        let data = data_of(len, seed);
        let (tree, root) = ChunkTree::compute(&data);
        let want = ContentHash::of(&data);
        assert_eq!(root, want, "root of {len} bytes");
        let n = len as u64;
        let g = group_size(n);
        assert_eq!(tree.group_size(), g);
        assert_eq!(tree.chunk_len(), n);
        let enc = tree.encode();
        assert!(enc.len() <= 1400, "{} bytes encoded", enc.len());
        assert!(enc.is_ascii());
        let dec = ChunkTree::decode(&enc, n).unwrap();
        assert_eq!(dec, tree, "decode(encode) of {len} bytes");
        if n <= g {
            assert!(tree.is_single_group());
            assert!(
                !tree.verify_root(&want),
                "a single-group tree verifies nothing"
            );
            assert!(!tree.verify_groups(0, &data));
            return;
        }
        let groups = tree.groups();
        assert!(groups as u64 <= MAX_GROUPS && groups >= 2);
        assert!(dec.verify_root(&want));
        assert!(!dec.verify_root(&ContentHash::of(b"other")));
        assert!(dec.verify_groups(0, &data), "whole chunk of {len} bytes");
        // A few random runs of groups.
        for _ in 0..3 {
            let a = rng.below(groups as u64) as usize;
            let b = a + 1 + rng.below((groups - a) as u64) as usize;
            let (s, e) = (a * g as usize, (b * g as usize).min(len));
            assert!(
                dec.verify_groups(a, &data[s..e]),
                "groups {a}..{b} of {len}"
            );
            // Shifted to the wrong group, flipped, or cut mid-group: refused.
            if a + 1 < groups && e - s == g as usize {
                assert!(!dec.verify_groups(a + 1, &data[s..e]));
            }
            let mut bad = data[s..e].to_vec();
            let at = rng.below(bad.len() as u64) as usize;
            bad[at] ^= 1;
            assert!(
                !dec.verify_groups(a, &bad),
                "flip in groups {a}..{b} of {len}"
            );
            if e - s > 1 {
                assert!(!dec.verify_groups(a, &data[s..e - 1]));
            }
        }
        // A tampered CV breaks the root.
        let mut t = dec.clone();
        let i = rng.below(groups as u64) as usize;
        t.cvs[i][0] ^= 1;
        assert!(!t.verify_root(&want));
    }

    #[test]
    fn group_sizes() {
        assert_eq!(group_size(0), 64 << 10);
        assert_eq!(group_size(1), 64 << 10);
        assert_eq!(group_size(2 << 20), 64 << 10);
        assert_eq!(group_size((2 << 20) + 1), 128 << 10);
        assert_eq!(group_size(4 << 20), 128 << 10);
        assert_eq!(group_size(16 << 20), 512 << 10);
        assert_eq!(group_size(u64::MAX), 1 << 59);
        assert_eq!(group_count(0), 1);
        assert_eq!(group_count(65536), 1);
        assert_eq!(group_count(65537), 2);
        assert_eq!(group_count((2 << 20) + 1), 17);
        assert_eq!(group_count(16 << 20), 32);
        for n in [
            1u64,
            1000,
            65537,
            3 << 20,
            16 << 20,
            (16 << 20) + 1,
            1 << 40,
        ] {
            assert!(group_count(n) <= MAX_GROUPS, "{n}");
        }
    }

    #[test]
    fn matches_blake3_on_boundary_lengths() {
        let mut rng = Rng(1);
        for len in [
            0usize,
            1,
            1023,
            1024,
            1025,
            65535,
            65536,
            65537,
            131072,
            (1 << 20) + 7,
            (2 << 20) + 1,
            4 << 20,
            16 << 20,
            // 3 groups; 31 and 32 groups of 64 KiB; 33 groups' worth.
            3 * 65536 - 5,
            31 * 65536 + 1,
            32 * 65536,
        ] {
            check(len, len as u64, &mut rng);
        }
    }

    #[test]
    fn matches_blake3_on_random_lengths() {
        let mut rng = Rng(0xD1770F5);
        for i in 0..200 {
            // Mostly up to 3 MiB (every group size up to 128 KiB), some up to 16 MiB.
            let max = if i % 10 == 0 { 16 << 20 } else { 3 << 20 };
            let len = rng.below(max + 1) as usize;
            check(len, 1000 + i, &mut rng);
        }
    }

    #[test]
    fn encoded_size_of_32_groups() {
        let data = data_of(16 << 20, 7);
        let (tree, _) = ChunkTree::compute(&data);
        assert_eq!(tree.groups(), 32);
        let enc = tree.encode();
        assert!(enc.starts_with("1.19."));
        assert_eq!(enc.len(), 5 + 1366);
    }

    #[test]
    fn decode_rejects_malformed() {
        let n = (1u64 << 20) + 5;
        let data = data_of(n as usize, 3);
        let (tree, _) = ChunkTree::compute(&data);
        let enc = tree.encode();
        assert!(ChunkTree::decode(&enc, n).is_ok());
        let b64 = enc.splitn(3, '.').nth(2).unwrap().to_string();
        let mut cases: Vec<String> = vec![
            String::new(),
            "1".into(),
            "1.16".into(),
            format!("2.16.{b64}"),
            format!("01.16.{b64}"),
            format!("1.17.{b64}"),
            format!("1.016.{b64}"),
            format!("1.+16.{b64}"),
            format!("1. 16.{b64}"),
            format!("1.16.{b64}="),
            format!("1.16.{b64}A"),
            format!("1.16.{}", &b64[..b64.len() - 1]),
            format!("1.16.{}", &b64[..b64.len() - 43]),
            format!("1.16.{b64}{}", &b64[..43]),
            format!("1.16.+{}", &b64[1..]),
            format!("1.16.{}!", &b64[..b64.len() - 1]),
            format!("1.16.{}.", &b64[..b64.len() - 1]),
            format!("1.99999999999999999999.{b64}"),
            "1.16.".into(),
            "\u{e9}.16.x".into(),
        ];
        // Non-canonical trailing bits in the last base64 character (17 CVs = 544 bytes:
        // the last character carries 2 bits and 4 zero bits).
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut last = b64.clone().into_bytes();
        let c = last.pop().unwrap();
        let idx = ALPHABET.iter().position(|&a| a == c).unwrap();
        last.push(ALPHABET[idx | 1]);
        cases.push(format!("1.16.{}", String::from_utf8(last).unwrap()));
        for c in &cases {
            assert!(
                matches!(ChunkTree::decode(c, n), Err(RemoteError::Invalid(_))),
                "accepted {c:.40?}"
            );
        }
        // The right tree for another length.
        assert!(ChunkTree::decode(&enc, n + 65536).is_err());
        assert!(ChunkTree::decode(&enc, 65536).is_err());
        assert!(ChunkTree::decode(&enc, (2 << 20) + 1).is_err());
        // Single-group trees carry no CVs.
        assert!(ChunkTree::decode("1.16.", 100).is_ok());
        assert!(ChunkTree::decode("1.16.", 0).is_ok());
        assert!(ChunkTree::decode(&enc, 100).is_err());
        // Random garbage never panics.
        let mut rng = Rng(9);
        for _ in 0..2000 {
            let len = rng.below(64) as usize;
            let s: String = (0..len)
                .map(|_| b"1.6AZaz09-_+/=\xff"[rng.below(15) as usize] as char)
                .collect();
            let _ = ChunkTree::decode(&s, rng.below(1 << 22));
            let _ = ChunkTree::decode(&format!("1.16.{s}"), 100_000);
        }
    }
}
