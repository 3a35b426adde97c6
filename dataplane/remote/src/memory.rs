//! In-memory remote store: for tests and for `type: memory` remote tiers (data is lost at
//! exit). Faults can be injected (`set_unavailable`, `corrupt`) to test callers.

use crate::{ObjectInfo, Page, RemoteError, RemoteStore, Result, chunk_key, hash_of_key, verify};
use async_trait::async_trait;
use bytes::Bytes;
use dittofs_types::ContentHash;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct MemoryRemote {
    name: String,
    /// key -> (bytes, modified unix seconds)
    objects: Mutex<BTreeMap<String, (Bytes, i64)>>,
    unavailable: AtomicBool,
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

    /// Replaces the stored bytes of `hash` (fault injection; no verification).
    pub fn corrupt(&self, hash: &ContentHash, data: Bytes) {
        self.objects
            .lock()
            .insert(chunk_key("", hash), (data, now()));
    }

    /// Sets the modification time of `hash` (tests of grace periods).
    pub fn set_modified(&self, hash: &ContentHash, unix: i64) {
        if let Some(o) = self.objects.lock().get_mut(&chunk_key("", hash)) {
            o.1 = unix;
        }
    }

    pub fn len(&self) -> usize {
        self.objects.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self, hash: &ContentHash) -> Result<Bytes> {
        self.objects
            .lock()
            .get(&chunk_key("", hash))
            .map(|o| o.0.clone())
            .ok_or(RemoteError::NotFound(*hash))
    }

    fn up(&self) -> Result<()> {
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
        self.up()?;
        verify(hash, &data, None).map_err(|e| RemoteError::Invalid(format!("put: {e}")))?;
        self.objects
            .lock()
            .insert(chunk_key("", hash), (data, now()));
        Ok(())
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        self.up()?;
        let data = self.bytes(hash)?;
        verify(hash, &data, None)?;
        Ok(data)
    }

    async fn get_range(&self, hash: &ContentHash, offset: u64, len: u64) -> Result<Bytes> {
        self.up()?;
        if len == 0 {
            return Err(RemoteError::Invalid("empty range".into()));
        }
        let data = self.bytes(hash)?;
        let end = offset
            .checked_add(len)
            .ok_or_else(|| RemoteError::Invalid("range overflows".into()))?;
        if end > data.len() as u64 {
            return Err(RemoteError::Invalid(format!(
                "range {offset}..{end} is beyond the chunk's {} bytes",
                data.len()
            )));
        }
        Ok(data.slice(offset as usize..end as usize))
    }

    async fn head(&self, hash: &ContentHash) -> Result<Option<ObjectInfo>> {
        self.up()?;
        Ok(self
            .objects
            .lock()
            .get(&chunk_key("", hash))
            .map(|(d, t)| ObjectInfo {
                hash: *hash,
                size: d.len() as u64,
                modified_unix: *t,
            }))
    }

    async fn delete(&self, hash: &ContentHash) -> Result<()> {
        self.up()?;
        self.objects.lock().remove(&chunk_key("", hash));
        Ok(())
    }

    async fn list(&self, after: Option<String>, limit: u32) -> Result<Page> {
        self.up()?;
        let objects = self.objects.lock();
        let limit = limit.max(1) as usize;
        let start = after.clone().unwrap_or_default();
        let mut page = Page::default();
        for (k, (d, t)) in objects.range::<String, _>((
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
                    size: d.len() as u64,
                    modified_unix: *t,
                });
            }
        }
        Ok(page)
    }
}
