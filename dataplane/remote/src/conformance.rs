//! The behaviour every [`RemoteStore`] must have, as a suite the backends' tests run
//! (memory in-process; S3 against a real server started by the test).

use crate::{RemoteError, RemoteStore};
use async_trait::async_trait;
use bytes::Bytes;
use dittofs_types::ContentHash;
use std::collections::BTreeSet;

/// Fault injection the suite needs from the backend under test.
#[async_trait]
pub trait Faults: Send + Sync {
    /// Stores `data` under `hash`'s key, bypassing verification.
    async fn overwrite(&self, hash: &ContentHash, data: Bytes);
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

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

async fn put_get_range(s: &dyn RemoteStore, tag: &str) -> Outcome {
    let data = bytes_of(&format!("{tag}-big"), (1 << 20) + 17);
    let h = ContentHash::of(&data);
    s.put(&h, data.clone())
        .await
        .map_err(|e| format!("put: {e}"))?;
    s.put(&h, data.clone())
        .await
        .map_err(|e| format!("second put (idempotent): {e}"))?;
    let got = s.get(&h).await.map_err(|e| format!("get: {e}"))?;
    ensure!(got == data, "get returned different bytes");
    let info = s
        .head(&h)
        .await
        .map_err(|e| format!("head: {e}"))?
        .ok_or("head: missing")?;
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
    for (off, len) in [
        (0u64, 1u64),
        (4096, 65536),
        (data.len() as u64 - 10, 10),
        (0, data.len() as u64),
    ] {
        let r = s
            .get_range(&h, off, len)
            .await
            .map_err(|e| format!("range {off}+{len}: {e}"))?;
        ensure!(
            r == data.slice(off as usize..(off + len) as usize),
            "range {off}+{len}: wrong bytes"
        );
    }
    ensure!(
        s.get_range(&h, data.len() as u64 - 1, 2).await.is_err(),
        "a range past the end succeeded"
    );
    ensure!(
        matches!(s.get_range(&h, 0, 0).await, Err(RemoteError::Invalid(_))),
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
        s.head(&h).await.map_err(|e| e.to_string())?.is_none(),
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
        matches!(s.get_range(&h, 0, 1).await, Err(RemoteError::NotFound(_))),
        "range of a missing chunk is not NotFound"
    );
    ensure!(
        s.head(&h).await.map_err(|e| e.to_string())?.is_none(),
        "head of a missing chunk is Some"
    );
    s.delete(&h)
        .await
        .map_err(|e| format!("delete of a missing chunk: {e}"))?;
    Ok(())
}

async fn detects_corruption(s: &dyn RemoteStore, f: &dyn Faults, tag: &str) -> Outcome {
    let data = bytes_of(&format!("{tag}-victim"), 300_000);
    let h = ContentHash::of(&data);
    s.put(&h, data.clone())
        .await
        .map_err(|e| format!("put: {e}"))?;
    let mut flipped = data.to_vec();
    flipped[123_456] ^= 0x40;
    f.overwrite(&h, Bytes::from(flipped)).await;
    ensure!(
        matches!(s.get(&h).await, Err(RemoteError::Corrupt { .. })),
        "a bit flip was served"
    );
    f.overwrite(&h, data.slice(..200_000)).await;
    ensure!(
        matches!(s.get(&h).await, Err(RemoteError::Corrupt { .. })),
        "a truncated object was served"
    );
    ensure!(
        s.get_range(&h, 199_990, 20).await.is_err(),
        "a range over the truncation succeeded"
    );
    f.overwrite(&h, Bytes::new()).await;
    ensure!(
        matches!(s.get(&h).await, Err(RemoteError::Corrupt { .. })),
        "an empty object was served"
    );
    s.delete(&h).await.map_err(|e| format!("delete: {e}"))?;
    Ok(())
}

async fn lists_in_pages_and_deletes(s: &dyn RemoteStore, tag: &str) -> Outcome {
    let mut want = BTreeSet::new();
    for i in 0..23 {
        let d = bytes_of(&format!("{tag}-list-{i}"), 100 + i);
        let h = ContentHash::of(&d);
        s.put(&h, d).await.map_err(|e| format!("put {i}: {e}"))?;
        want.insert(h);
    }
    let walk = |limit: u32| async move {
        let mut seen = BTreeSet::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let p = s
                .list(cursor, limit)
                .await
                .map_err(|e| format!("list: {e}"))?;
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
        Ok::<_, String>((seen, pages))
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
        s.delete(h).await.map_err(|e| format!("delete: {e}"))?;
        ensure!(
            s.head(h).await.map_err(|e| e.to_string())?.is_none(),
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
        r.map_err(|e| format!("parallel put: {e}"))?;
    }
    let gets = datas.iter().map(|d| {
        let h = ContentHash::of(d);
        async move { s.get(&h).await.map(|g| g == *d) }
    });
    for r in futures::future::join_all(gets).await {
        ensure!(
            r.map_err(|e| format!("parallel get: {e}"))?,
            "parallel get returned wrong bytes"
        );
    }
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
        (
            "lists_in_pages_and_deletes",
            lists_in_pages_and_deletes(s, tag).await,
        ),
        ("concurrent_clients", concurrent_clients(s, tag).await),
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
