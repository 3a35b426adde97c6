//! The set of shares an adapter serves, by id (handles) and by export name (MOUNT).

use crate::error::{FsError, FsResult};
use crate::fs::Fs;
use crate::handle::FileHandle;
use dittofs_types::{Ino, ShareId};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Shares currently served. Cheap to clone-read; updated by the runtime while serving.
#[derive(Default)]
pub struct ShareRegistry {
    shares: RwLock<BTreeMap<ShareId, Arc<Fs>>>,
}

impl ShareRegistry {
    pub fn new() -> ShareRegistry {
        ShareRegistry::default()
    }

    pub fn insert(&self, fs: Arc<Fs>) {
        self.shares.write().insert(fs.share_id(), fs);
    }

    pub fn remove(&self, id: ShareId) -> Option<Arc<Fs>> {
        self.shares.write().remove(&id)
    }

    pub fn by_id(&self, id: ShareId) -> Option<Arc<Fs>> {
        self.shares.read().get(&id).cloned()
    }

    /// Looks a share up by its export name (`/export`; a missing leading '/' is tolerated).
    pub fn by_name(&self, name: &str) -> Option<Arc<Fs>> {
        let want = name.trim_end_matches('/');
        let want = if want.is_empty() { "/" } else { want };
        self.shares
            .read()
            .values()
            .find(|f| {
                let n = f.name();
                n == want || n.trim_start_matches('/') == want.trim_start_matches('/')
            })
            .cloned()
    }

    pub fn list(&self) -> Vec<Arc<Fs>> {
        self.shares.read().values().cloned().collect()
    }

    /// Decodes and validates a wire handle: the share and the inode it names.
    pub async fn resolve(&self, bytes: &[u8]) -> FsResult<(Arc<Fs>, Ino)> {
        let h = FileHandle::decode(bytes)?;
        let fs = self.by_id(h.share).ok_or(FsError::Stale)?;
        let ino = fs.resolve(&h).await?;
        Ok((fs, ino))
    }
}
