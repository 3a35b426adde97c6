//! In-memory remote store: for tests and for `type: memory` remote tiers (data is lost at
//! exit). Faults can be injected (`set_unavailable`, `set_stalled`, `corrupt`,
//! `put_unverified`, `set_upload_rate`) to test callers.

use crate::{
    ChunkTree, ObjectInfo, Page, RawRange, RemoteError, RemoteStore, Result, chunk_key,
    hash_of_key, owner_key, verify,
};
use async_trait::async_trait;
use bytes::Bytes;
use dittofs_types::ContentHash;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug)]
struct Object {
    data: Bytes,
    /// Modified, unix seconds.
    modified: i64,
    /// The `dittofs-tree` metadata.
    tree: Option<String>,
}

#[derive(Debug, Default)]
pub struct MemoryRemote {
    name: String,
    /// key -> object
    objects: Mutex<BTreeMap<String, Object>>,
    unavailable: AtomicBool,
    stalled: AtomicBool,
    /// Upload bandwidth in bytes per second shared by all PUTs (0 = unlimited), and the
    /// time the link is busy until.
    upload_rate: AtomicU64,
    link_busy_until: Mutex<Option<tokio::time::Instant>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl MemoryRemote {
    pub fn new(name: &str) -> Self {
        MemoryRemote {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Every call fails with `Unavailable` while set.
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::SeqCst);
    }

    /// While set, every call hangs (until cleared): a stalled server.
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    /// Limits uploads to `bytes_per_sec` in total, like a real link (0 = unlimited): a PUT
    /// returns once its bytes have had their turn.
    pub fn set_upload_rate(&self, bytes_per_sec: u64) {
        self.upload_rate.store(bytes_per_sec, Ordering::SeqCst);
    }

    /// Waits for `len` bytes' turn on the upload link (see [`Self::set_upload_rate`]).
    async fn upload_turn(&self, len: usize) {
        let rate = self.upload_rate.load(Ordering::SeqCst);
        if rate == 0 {
            return;
        }
        let took = std::time::Duration::from_secs_f64(len as f64 / rate as f64);
        let done = {
            let mut busy = self.link_busy_until.lock();
            let start = busy.map_or_else(tokio::time::Instant::now, |b| {
                b.max(tokio::time::Instant::now())
            });
            *busy = Some(start + took);
            start + took
        };
        tokio::time::sleep_until(done).await;
    }

    /// Replaces the stored bytes of `hash`, keeping its tree metadata (fault injection: bit
    /// rot, a truncation; no verification).
    pub fn corrupt(&self, hash: &ContentHash, data: Bytes) {
        let mut objects = self.objects.lock();
        let tree = objects
            .get(&chunk_key("", hash))
            .and_then(|o| o.tree.clone());
        objects.insert(
            chunk_key("", hash),
            Object {
                data,
                modified: now(),
                tree,
            },
        );
    }

    /// Stores `data` under `hash` with `tree` as its tree metadata, without checking either
    /// (fault injection; `None` = an object written by an older writer).
    pub fn put_unverified(&self, hash: &ContentHash, data: Bytes, tree: Option<String>) {
        self.objects.lock().insert(
            chunk_key("", hash),
            Object {
                data,
                modified: now(),
                tree,
            },
        );
    }

    /// Sets the modification time of `hash` (tests of grace periods).
    pub fn set_modified(&self, hash: &ContentHash, unix: i64) {
        if let Some(o) = self.objects.lock().get_mut(&chunk_key("", hash)) {
            o.modified = unix;
        }
    }

    pub fn len(&self) -> usize {
        self.objects.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn object(&self, hash: &ContentHash) -> Result<(Bytes, Option<String>)> {
        self.objects
            .lock()
            .get(&chunk_key("", hash))
            .map(|o| (o.data.clone(), o.tree.clone()))
            .ok_or(RemoteError::NotFound(*hash))
    }

    async fn up(&self) -> Result<()> {
        // A stalled store never answers (the caller's deadline must fire).
        while self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if self.unavailable.load(Ordering::SeqCst) {
            Err(RemoteError::Unavailable(format!(
                "memory:{} is down (injected)",
                self.name
            )))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl RemoteStore for MemoryRemote {
    fn identity(&self) -> String {
        format!("memory:{}", self.name)
    }

    async fn put(&self, hash: &ContentHash, data: Bytes) -> Result<()> {
        self.up().await?;
        self.upload_turn(data.len()).await;
        let (tree, root) = ChunkTree::compute(&data);
        if root != *hash {
            return Err(RemoteError::Invalid(format!(
                "put: {} bytes hashing to {root} under {hash}",
                data.len()
            )));
        }
        self.put_unverified(hash, data, Some(tree.encode()));
        Ok(())
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        self.up().await?;
        let (data, _) = self.object(hash)?;
        verify(hash, &data, None)?;
        Ok(data)
    }

    async fn get_range_raw(&self, hash: &ContentHash, offset: u64, len: u64) -> Result<RawRange> {
        self.up().await?;
        if len == 0 {
            return Err(RemoteError::Invalid("empty range".into()));
        }
        let (data, tree) = self.object(hash)?;
        let end = offset
            .checked_add(len)
            .ok_or_else(|| RemoteError::Invalid("range overflows".into()))?;
        if end > data.len() as u64 {
            return Err(RemoteError::Invalid(format!(
                "range {offset}..{end} is beyond the chunk's {} bytes",
                data.len()
            )));
        }
        Ok(RawRange {
            object_len: data.len() as u64,
            data: data.slice(offset as usize..end as usize),
            tree,
        })
    }

    async fn head(&self, hash: &ContentHash) -> Result<Option<ObjectInfo>> {
        self.up().await?;
        Ok(self
            .objects
            .lock()
            .get(&chunk_key("", hash))
            .map(|o| ObjectInfo {
                hash: *hash,
                size: o.data.len() as u64,
                modified_unix: o.modified,
            }))
    }

    async fn delete(&self, hash: &ContentHash) -> Result<()> {
        self.up().await?;
        self.objects.lock().remove(&chunk_key("", hash));
        Ok(())
    }

    async fn get_owner_record(&self) -> Result<Option<Bytes>> {
        self.up().await?;
        Ok(self
            .objects
            .lock()
            .get(&owner_key(""))
            .map(|o| o.data.clone()))
    }

    async fn put_owner_record(&self, data: Bytes) -> Result<()> {
        self.up().await?;
        self.objects.lock().insert(
            owner_key(""),
            Object {
                data,
                modified: now(),
                tree: None,
            },
        );
        Ok(())
    }

    async fn list(&self, after: Option<String>, limit: u32) -> Result<Page> {
        self.up().await?;
        let objects = self.objects.lock();
        let limit = limit.max(1) as usize;
        let start = after.clone().unwrap_or_default();
        let mut page = Page::default();
        for (k, o) in objects.range::<String, _>((
            if after.is_some() {
                std::ops::Bound::Excluded(start)
            } else {
                std::ops::Bound::Unbounded
            },
            std::ops::Bound::Unbounded,
        )) {
            if page.objects.len() == limit {
                page.next = page.objects.last().map(|o| chunk_key("", &o.hash));
                break;
            }
            if let Some(hash) = hash_of_key("", k) {
                page.objects.push(ObjectInfo {
                    hash,
                    size: o.data.len() as u64,
                    modified_unix: o.modified,
                });
            }
        }
        Ok(page)
    }
}
