//! The behaviour every [`RemoteStore`] must have, as a suite the backends' tests run
//! (memory in-process; S3 against a real server started by the test).

use crate::{ChunkTree, RemoteError, RemoteStore, group_size};
use async_trait::async_trait;
use bytes::Bytes;
use dittofs_types::ContentHash;
use std::collections::BTreeSet;

/// Fault injection the suite needs from the backend under test.
#[async_trait]
pub trait Faults: Send + Sync {
    /// Stores `data` under `hash`'s key with `tree` as its `dittofs-tree` metadata,
    /// bypassing verification (`None`: no tree, as an older writer stored objects).
    async fn overwrite(&self, hash: &ContentHash, data: Bytes, tree: Option<String>);
}

/// Deterministic pseudo-random bytes (BLAKE3 XOF of `seed`).
pub fn bytes_of(seed: &str, len: usize) -> Bytes {
    let mut buf = vec![0u8; len];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut buf);
    Bytes::from(buf)
}

/// Why a case failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The store answered, but against the contract (the message says how).
    #[error("{0}")]
    Contract(String),
    /// A call the contract says succeeds failed; `step` names it.
    #[error("{step}: {source}")]
    Call {
        step: String,
        #[source]
        source: RemoteError,
    },
}

/// The result of one case.
pub type Outcome = Result<(), Failure>;

/// For `map_err`: a failed call of `step`.
fn call(step: impl Into<String>) -> impl FnOnce(RemoteError) -> Failure {
    let step = step.into();
    move |source| Failure::Call { step, source }
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Failure::Contract(format!($($msg)+)));
        }
    };
}

async fn put_get_range(s: &dyn RemoteStore, tag: &str) -> Outcome {
    let data = bytes_of(&format!("{tag}-big"), (1 << 20) + 17);
    let h = ContentHash::of(&data);
    s.put(&h, data.clone()).await.map_err(call("put"))?;
    s.put(&h, data.clone())
        .await
        .map_err(call("second put (idempotent)"))?;
    let got = s.get(&h).await.map_err(call("get"))?;
    ensure!(got == data, "get returned different bytes");
    let info = s
        .head(&h)
        .await
        .map_err(call("head"))?
        .ok_or_else(|| Failure::Contract("head: missing".into()))?;
    ensure!(
        info.size == data.len() as u64,
        "head size {} != {}",
        info.size,
        data.len()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    ensure!(
        (info.modified_unix - now).abs() < 3600,
        "head time {} far from now {now}",
        info.modified_unix
    );
    let (tree, _) = ChunkTree::compute(&data);
    for (off, len) in [
        (0u64, 1u64),
        (4096, 65536),
        (data.len() as u64 - 10, 10),
        (0, data.len() as u64),
    ] {
        let r = s
            .get_range_raw(&h, off, len)
            .await
            .map_err(call(format!("range {off}+{len}")))?;
        ensure!(
            r.data == data.slice(off as usize..(off + len) as usize),
            "range {off}+{len}: wrong bytes"
        );
        ensure!(
            r.object_len == data.len() as u64,
            "range {off}+{len}: object length {}",
            r.object_len
        );
        ensure!(
            r.tree.as_deref() == Some(tree.encode().as_str()),
            "range {off}+{len}: tree metadata {:?}",
            r.tree.map(|t| t.chars().take(40).collect::<String>())
        );
    }
    ensure!(
        s.get_range_raw(&h, data.len() as u64 - 1, 2).await.is_err(),
        "a range past the end succeeded"
    );
    ensure!(
        matches!(
            s.get_range_raw(&h, 0, 0).await,
            Err(RemoteError::Invalid(_))
        ),
        "an empty range succeeded"
    );
    Ok(())
}

async fn refuses_wrong_content(s: &dyn RemoteStore, tag: &str) -> Outcome {
    let a = bytes_of(&format!("{tag}-a"), 1000);
    let b = bytes_of(&format!("{tag}-b"), 1000);
    let h = ContentHash::of(&a);
    ensure!(
        matches!(s.put(&h, b).await, Err(RemoteError::Invalid(_))),
        "put of bytes not matching the hash succeeded"
    );
    ensure!(
        s.head(&h).await.map_err(call("head"))?.is_none(),
        "refused put left an object"
    );
    Ok(())
}

async fn missing_objects(s: &dyn RemoteStore, tag: &str) -> Outcome {
    let h = ContentHash::of(format!("{tag}-never-stored").as_bytes());
    ensure!(
        matches!(s.get(&h).await, Err(RemoteError::NotFound(x)) if x == h),
        "get of a missing chunk is not NotFound"
    );
    ensure!(
        matches!(
            s.get_range_raw(&h, 0, 1).await,
            Err(RemoteError::NotFound(_))
        ),
        "range of a missing chunk is not NotFound"
    );
    ensure!(
        matches!(
            s.get_range_verified(&h, 1 << 20, 70_000, 10).await,
            Err(RemoteError::NotFound(_))
        ),
        "verified range of a missing chunk is not NotFound"
    );
    ensure!(
        s.head(&h).await.map_err(call("head"))?.is_none(),
        "head of a missing chunk is Some"
    );
    s.delete(&h)
        .await
        .map_err(call("delete of a missing chunk"))?;
    Ok(())
}

async fn detects_corruption(s: &dyn RemoteStore, f: &dyn Faults, tag: &str) -> Outcome {
    let data = bytes_of(&format!("{tag}-victim"), 300_000);
    let h = ContentHash::of(&data);
    s.put(&h, data.clone()).await.map_err(call("put"))?;
    let mut flipped = data.to_vec();
    flipped[123_456] ^= 0x40;
    f.overwrite(&h, Bytes::from(flipped), None).await;
    ensure!(
        matches!(s.get(&h).await, Err(RemoteError::Corrupt { .. })),
        "a bit flip was served"
    );
    f.overwrite(&h, data.slice(..200_000), None).await;
    ensure!(
        matches!(s.get(&h).await, Err(RemoteError::Corrupt { .. })),
        "a truncated object was served"
    );
    ensure!(
        s.get_range_raw(&h, 199_990, 20).await.is_err(),
        "a range over the truncation succeeded"
    );
    f.overwrite(&h, Bytes::new(), None).await;
    ensure!(
        matches!(s.get(&h).await, Err(RemoteError::Corrupt { .. })),
        "an empty object was served"
    );
    s.delete(&h).await.map_err(call("delete"))?;
    Ok(())
}

/// splitmix64: deterministic pseudo-random numbers for the range cases.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// `get_range_verified(off, len)` equals the slice of `data`.
async fn expect_range(
    s: &dyn RemoteStore,
    h: &ContentHash,
    data: &Bytes,
    off: u64,
    len: u64,
) -> Outcome {
    let n = data.len() as u64;
    let r = s
        .get_range_verified(h, n, off, len)
        .await
        .map_err(call(format!("verified range {off}+{len} of {n}")))?;
    ensure!(
        r == data.slice(off as usize..(off + len) as usize),
        "verified range {off}+{len} of {n}: wrong bytes ({} received)",
        r.len()
    );
    Ok(())
}

/// `get_range_verified(off, len)` fails with `Corrupt`.
async fn expect_corrupt(
    s: &dyn RemoteStore,
    h: &ContentHash,
    n: u64,
    off: u64,
    len: u64,
    what: &str,
) -> Outcome {
    match s.get_range_verified(h, n, off, len).await {
        Err(RemoteError::Corrupt { .. }) => Ok(()),
        Ok(_) => Err(Failure::Contract(format!(
            "{what}: range {off}+{len} of {n} was served"
        ))),
        Err(e) => Err(Failure::Contract(format!(
            "{what}: range {off}+{len} of {n}: {e} (not Corrupt)"
        ))),
    }
}

async fn verified_ranges(s: &dyn RemoteStore, tag: &str) -> Outcome {
    let mut rng = Rng(0x5EED);
    // 1 group; 2 groups (the second of 3 bytes); 17 of 64 KiB; 21 of 256 KiB; 32 of 64 KiB
    // (the longest tree metadata: 1371 bytes).
    for size in [1024usize, 65536 + 3, (1 << 20) + 5, (5 << 20) + 11, 2 << 20] {
        let data = bytes_of(&format!("{tag}-vr-{size}"), size);
        let h = ContentHash::of(&data);
        s.put(&h, data.clone())
            .await
            .map_err(call(format!("put {size}")))?;
        let n = size as u64;
        let g = group_size(n);
        let mut ranges = vec![(0, 1), (n - 1, 1), (0, n), (n / 2, n - n / 2)];
        if n > g {
            ranges.extend([
                (g - 1, 2),
                (g, g.min(n - g)),
                (g - 5, (g + 10).min(n - g + 5)),
                (n - 1 - (n - 1) % g, (n - 1) % g + 1),
            ]);
        }
        for _ in 0..24 {
            let off = rng.below(n);
            let max = if rng.below(2) == 0 { 8192 } else { n - off };
            ranges.push((off, 1 + rng.below(max.min(n - off))));
        }
        for (off, len) in ranges {
            expect_range(s, &h, &data, off, len).await?;
        }
        for (off, len) in [(0, 0), (n, 1), (n - 1, 2), (0, n + 1), (1, u64::MAX)] {
            ensure!(
                matches!(
                    s.get_range_verified(&h, n, off, len).await,
                    Err(RemoteError::Invalid(_))
                ),
                "invalid range {off}+{len} of {n} was not Invalid"
            );
        }
        s.delete(&h).await.map_err(call("delete"))?;
    }
    Ok(())
}

async fn verified_ranges_detect_corruption(
    s: &dyn RemoteStore,
    f: &dyn Faults,
    tag: &str,
) -> Outcome {
    // 1 MiB + 5: 17 groups of 64 KiB.
    let size = (1usize << 20) + 5;
    let n = size as u64;
    let g = group_size(n);
    let data = bytes_of(&format!("{tag}-vrc"), size);
    let h = ContentHash::of(&data);
    let (tree, _) = ChunkTree::compute(&data);
    let enc = tree.encode();
    s.put(&h, data.clone()).await.map_err(call("put"))?;
    // One flipped byte in group 5, the tree intact (bit rot of the body).
    let mut flipped = data.to_vec();
    flipped[(5 * g + 1234) as usize] ^= 0x01;
    f.overwrite(&h, Bytes::from(flipped), Some(enc.clone()))
        .await;
    expect_corrupt(s, &h, n, 5 * g + 10, 100, "flip, same group").await?;
    expect_corrupt(s, &h, n, 4 * g + 10, 2 * g, "flip, spanning groups").await?;
    expect_corrupt(s, &h, n, 0, n, "flip, whole chunk").await?;
    expect_range(s, &h, &data, 2 * g + 7, 4096).await?;
    expect_range(s, &h, &data, 6 * g, g).await?;
    expect_range(s, &h, &data, n - 3, 3).await?;
    // Truncated: the tree no longer describes the object.
    f.overwrite(&h, data.slice(..size - 1000), Some(enc.clone()))
        .await;
    expect_corrupt(s, &h, n, 2 * g, 10, "truncated, early range").await?;
    expect_corrupt(s, &h, n, n - 10, 10, "truncated, range past the end").await?;
    // Intact bytes, a tampered tree (one CV bit flipped, valid encoding).
    let mut bad_tree = enc.clone().into_bytes();
    let at = bad_tree.len() - 20;
    bad_tree[at] = if bad_tree[at] == b'A' { b'B' } else { b'A' };
    let bad_tree = String::from_utf8(bad_tree).map_err(|e| Failure::Contract(e.to_string()))?;
    f.overwrite(&h, data.clone(), Some(bad_tree)).await;
    expect_corrupt(s, &h, n, 3 * g, 10, "tampered tree").await?;
    // Other bytes with their own (consistent) tree under this hash.
    let other = bytes_of(&format!("{tag}-vrc-other"), size);
    let (other_tree, _) = ChunkTree::compute(&other);
    f.overwrite(&h, other, Some(other_tree.encode())).await;
    expect_corrupt(s, &h, n, 3 * g, 10, "substituted bytes and tree").await?;
    // Malformed trees (an empty value is not one: S3 servers may drop empty metadata).
    for t in ["garbage", "1", "1.16.", "2.16.AAAA", "1.17.AAAA"] {
        f.overwrite(&h, data.clone(), Some(t.to_string())).await;
        expect_corrupt(s, &h, n, 3 * g, 10, &format!("tree {t:?}")).await?;
    }
    // The right object, asked for with a wrong chunk length.
    f.overwrite(&h, data.clone(), Some(enc.clone())).await;
    expect_range(s, &h, &data, 3 * g, 10).await?;
    expect_corrupt(s, &h, n + 1, 3 * g, 10, "wrong chunk length").await?;
    expect_corrupt(s, &h, n - 1, 3 * g, 10, "wrong chunk length").await?;
    s.delete(&h).await.map_err(call("delete"))?;
    Ok(())
}

async fn treeless_objects_are_read_whole(
    s: &dyn RemoteStore,
    f: &dyn Faults,
    tag: &str,
) -> Outcome {
    for size in [1000usize, (1 << 20) + 5] {
        let n = size as u64;
        let g = group_size(n);
        let data = bytes_of(&format!("{tag}-legacy-{size}"), size);
        let h = ContentHash::of(&data);
        f.overwrite(&h, data.clone(), None).await;
        let raw = s.get_range_raw(&h, 0, 1).await.map_err(call("raw range"))?;
        ensure!(raw.tree.is_none(), "a tree-less object has a tree");
        for (off, len) in [(0, 1), (n / 3, n / 2), (n - 7, 7)] {
            expect_range(s, &h, &data, off, len).await?;
        }
        // A flipped byte anywhere fails every range (the whole chunk is checked).
        let mut flipped = data.to_vec();
        flipped[size / 2] ^= 0x80;
        f.overwrite(&h, Bytes::from(flipped), None).await;
        expect_corrupt(s, &h, n, 0, 10.min(g), "tree-less flip").await?;
        expect_corrupt(s, &h, n, n - 1, 1, "tree-less flip").await?;
        // A single-group chunk with a tree: read whole too.
        if n <= g {
            let (tree, _) = ChunkTree::compute(&data);
            f.overwrite(&h, data.clone(), Some(tree.encode())).await;
            expect_range(s, &h, &data, 10, 20).await?;
            let mut flipped = data.to_vec();
            flipped[size - 1] ^= 0x80;
            f.overwrite(&h, Bytes::from(flipped), Some(tree.encode()))
                .await;
            expect_corrupt(s, &h, n, 0, 10, "single group flip").await?;
        }
        s.delete(&h).await.map_err(call("delete"))?;
    }
    Ok(())
}

async fn lists_in_pages_and_deletes(s: &dyn RemoteStore, tag: &str) -> Outcome {
    let mut want = BTreeSet::new();
    for i in 0..23 {
        let d = bytes_of(&format!("{tag}-list-{i}"), 100 + i);
        let h = ContentHash::of(&d);
        s.put(&h, d).await.map_err(call(format!("put {i}")))?;
        want.insert(h);
    }
    let walk = |limit: u32| async move {
        let mut seen = BTreeSet::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let p = s.list(cursor, limit).await.map_err(call("list"))?;
            pages += 1;
            ensure!(
                p.objects.len() <= limit as usize,
                "page of {} > limit {limit}",
                p.objects.len()
            );
            for o in p.objects {
                ensure!(seen.insert(o.hash), "{} listed twice", o.hash);
            }
            match p.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
            ensure!(pages < 1000, "list does not terminate");
        }
        Ok::<_, Failure>((seen, pages))
    };
    let (seen, pages) = walk(7).await?;
    ensure!(
        want.is_subset(&seen),
        "list missed {} chunks",
        want.difference(&seen).count()
    );
    ensure!(pages >= 4, "23+ objects in pages of 7 took {pages} pages");
    let victims: Vec<ContentHash> = want.iter().take(5).copied().collect();
    for h in &victims {
        s.delete(h).await.map_err(call("delete"))?;
        ensure!(
            s.head(h).await.map_err(call("head"))?.is_none(),
            "deleted chunk still there"
        );
    }
    let (seen, _) = walk(1000).await?;
    ensure!(
        victims.iter().all(|h| !seen.contains(h)),
        "deleted chunks still listed"
    );
    ensure!(
        want.iter().skip(5).all(|h| seen.contains(h)),
        "a kept chunk disappeared"
    );
    Ok(())
}

async fn concurrent_clients(s: &dyn RemoteStore, tag: &str) -> Outcome {
    let datas: Vec<Bytes> = (0..16)
        .map(|i| bytes_of(&format!("{tag}-par-{i}"), 50_000 + i * 1000))
        .collect();
    let puts = datas.iter().map(|d| s.put_owned(d.clone()));
    for r in futures::future::join_all(puts).await {
        r.map_err(call("parallel put"))?;
    }
    let gets = datas.iter().map(|d| {
        let h = ContentHash::of(d);
        async move { s.get(&h).await.map(|g| g == *d) }
    });
    for r in futures::future::join_all(gets).await {
        ensure!(
            r.map_err(call("parallel get"))?,
            "parallel get returned wrong bytes"
        );
    }
    Ok(())
}

/// The ownership record: read back as written, replaced by a later write, and never
/// listed among the chunks.
async fn owner_record(s: &dyn RemoteStore, tag: &str) -> Outcome {
    let get = || async { s.get_owner_record().await.map_err(call("get")) };
    let listed = || async {
        let mut n = 0;
        let mut cursor = None;
        loop {
            let p = s.list(cursor, 1000).await.map_err(call("list"))?;
            n += p.objects.len();
            match p.next {
                Some(c) => cursor = Some(c),
                None => return Ok::<_, Failure>(n),
            }
        }
    };
    let before = listed().await?;
    let a = Bytes::from(format!("{{\"server_id\": \"{tag}-a\"}}"));
    let b = Bytes::from(format!("{{\"server_id\": \"{tag}-b\"}}"));
    s.put_owner_record(a.clone()).await.map_err(call("put"))?;
    ensure!(get().await? == Some(a), "the record does not read back");
    s.put_owner_record(b.clone())
        .await
        .map_err(call("put again"))?;
    ensure!(get().await? == Some(b), "the record was not replaced");
    ensure!(
        listed().await? == before,
        "the owner record is listed among the chunks"
    );
    Ok(())
}

/// Convenience for the suite: `put` under the data's own hash.
#[async_trait]
trait PutOwned {
    async fn put_owned(&self, data: Bytes) -> crate::Result<()>;
}

#[async_trait]
impl<T: RemoteStore + ?Sized> PutOwned for T {
    async fn put_owned(&self, data: Bytes) -> crate::Result<()> {
        let h = ContentHash::of(&data);
        self.put(&h, data).await
    }
}

/// Runs every case; returns (name, outcome) per case. `tag` makes the data unique per run
/// (use a fresh key prefix or bucket per run for the listing case).
pub async fn run_all(
    s: &dyn RemoteStore,
    f: &dyn Faults,
    tag: &str,
) -> Vec<(&'static str, Outcome)> {
    vec![
        ("put_get_range", put_get_range(s, tag).await),
        ("refuses_wrong_content", refuses_wrong_content(s, tag).await),
        ("missing_objects", missing_objects(s, tag).await),
        ("detects_corruption", detects_corruption(s, f, tag).await),
        ("verified_ranges", verified_ranges(s, tag).await),
        (
            "verified_ranges_detect_corruption",
            verified_ranges_detect_corruption(s, f, tag).await,
        ),
        (
            "treeless_objects_are_read_whole",
            treeless_objects_are_read_whole(s, f, tag).await,
        ),
        (
            "lists_in_pages_and_deletes",
            lists_in_pages_and_deletes(s, tag).await,
        ),
        ("concurrent_clients", concurrent_clients(s, tag).await),
        ("owner_record", owner_record(s, tag).await),
    ]
}

/// Panics with every failed case (for `#[test]`s).
pub fn assert_all(results: &[(&'static str, Outcome)]) {
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
        .collect();
    assert!(
        failed.is_empty(),
        "remote store conformance failed:\n  {}",
        failed.join("\n  ")
    );
}
