//! The composition root: builds the named metadata stores, local block engines and shares
//! from the configuration, owns them, runs the background flusher, and shuts them down in
//! order (flush content, sync metadata, close).

use crate::config::{Config, ShareCfg};
use dittofs_blockstore::{Engine, EngineConfig, RecoveredRecord};
use dittofs_metadata::MetadataStore;
use dittofs_types::ShareId;
use dittofs_vfs::{Fs, ShareOptions, ShareRegistry};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("data directory {path}: {detail}")]
    DataDir { path: PathBuf, detail: String },
    #[error("metadata store {name:?}: {detail}")]
    Metadata { name: String, detail: String },
    #[error("local block store {name:?}: {detail}")]
    Blocks { name: String, detail: String },
    #[error("share {name:?}: {detail}")]
    Share { name: String, detail: String },
}

/// One served share and its configuration.
pub struct ShareEntry {
    pub cfg: ShareCfg,
    pub fs: Arc<Fs>,
}

pub struct Runtime {
    pub registry: Arc<ShareRegistry>,
    pub shares: Vec<ShareEntry>,
    stores: BTreeMap<String, Arc<dyn MetadataStore>>,
    engines: BTreeMap<String, Arc<Engine>>,
}

/// Persistent name -> id map so a share keeps its id (and its handles) across restarts.
fn share_ids(data_dir: &Path, names: &[String]) -> Result<BTreeMap<String, u32>, RuntimeError> {
    let path = data_dir.join("share-ids.json");
    let err = |detail: String| RuntimeError::DataDir {
        path: path.clone(),
        detail,
    };
    let mut map: BTreeMap<String, u32> = match std::fs::read(&path) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| err(format!("corrupt share id map: {e}")))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(err(e.to_string())),
    };
    let mut changed = false;
    for n in names {
        if !map.contains_key(n) {
            let next = map.values().max().copied().unwrap_or(0) + 1;
            map.insert(n.clone(), next);
            changed = true;
        }
    }
    if changed {
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&map).map_err(|e| err(e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(|e| err(e.to_string()))?;
        let f = std::fs::File::open(&tmp).map_err(|e| err(e.to_string()))?;
        f.sync_all().map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))?;
    }
    Ok(map)
}

impl Runtime {
    pub async fn build(cfg: &Config, data_dir: &Path) -> Result<Runtime, RuntimeError> {
        let mut stores: BTreeMap<String, Arc<dyn MetadataStore>> = BTreeMap::new();
        for m in &cfg.metadata_stores {
            let store: Arc<dyn MetadataStore> = match m.kind.as_str() {
                "memory" => Arc::new(dittofs_metadata::memory::MemoryStore::new()),
                _ => {
                    let path = m
                        .path
                        .clone()
                        .unwrap_or_else(|| data_dir.join("metadata").join(&m.name));
                    let s = dittofs_metadata::sled_store::SledStore::open(&path).map_err(|e| {
                        RuntimeError::Metadata {
                            name: m.name.clone(),
                            detail: format!("{}: {e}", path.display()),
                        }
                    })?;
                    Arc::new(s)
                }
            };
            stores.insert(m.name.clone(), store);
        }
        let mut engines = BTreeMap::new();
        let mut recovered: BTreeMap<String, Vec<RecoveredRecord>> = BTreeMap::new();
        for l in &cfg.block_stores.local {
            let path = l
                .path
                .clone()
                .unwrap_or_else(|| data_dir.join("blocks").join(&l.name));
            let (engine, rec) =
                Engine::open(&path, EngineConfig::default()).map_err(|e| RuntimeError::Blocks {
                    name: l.name.clone(),
                    detail: format!("{}: {e}", path.display()),
                })?;
            if !rec.is_empty() {
                tracing::info!(store = %l.name, records = rec.len(), "replaying write journal");
            }
            recovered.insert(l.name.clone(), rec);
            engines.insert(l.name.clone(), Arc::new(engine));
        }
        let names: Vec<String> = cfg.shares.iter().map(|s| s.name.clone()).collect();
        let ids = share_ids(data_dir, &names)?;
        let registry = Arc::new(ShareRegistry::new());
        let mut shares = Vec::new();
        for s in &cfg.shares {
            let serr = |detail: String| RuntimeError::Share {
                name: s.name.clone(),
                detail,
            };
            let store = stores
                .get(&s.metadata)
                .cloned()
                .ok_or_else(|| serr(format!("unknown metadata store {:?}", s.metadata)))?;
            let engine = engines
                .get(&s.local)
                .cloned()
                .ok_or_else(|| serr(format!("unknown local block store {:?}", s.local)))?;
            let id = ShareId(
                ids.get(&s.name)
                    .copied()
                    .ok_or_else(|| serr("no share id".into()))?,
            );
            let chunker = s.chunking.map(|c| dittofs_blockstore::ChunkerConfig {
                min: c.min,
                avg: c.avg,
                max: c.max,
            });
            let opts = ShareOptions {
                read_only: s.read_only,
                root_mode: s.root_mode,
                chunker,
            };
            let fs = Fs::open(store, engine, id, &s.name, opts)
                .await
                .map_err(|e| serr(e.to_string()))?;
            if let Some(recs) = recovered.get(&s.local) {
                let n = fs
                    .recover(recs)
                    .await
                    .map_err(|e| serr(format!("journal replay: {e}")))?;
                if n > 0 {
                    tracing::info!(share = %s.name, files = n, "recovered unflushed writes");
                }
            }
            registry.insert(fs.clone());
            shares.push(ShareEntry { cfg: s.clone(), fs });
        }
        Ok(Runtime {
            registry,
            shares,
            stores,
            engines,
        })
    }

    /// Background flusher: turns idle or large dirty files into chunks and reclaims
    /// journal segments whose data is committed. Runs until `stop` is cancelled.
    pub fn spawn_flusher(self: &Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let rt = self.clone();
        let span = tracing::info_span!("task", name = "flusher");
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    for s in &rt.shares {
                        if let Err(e) = s.fs.flush_some(Duration::from_secs(2), 64 << 20).await {
                            tracing::warn!(share = %s.cfg.name, error = %e, "background flush failed");
                        }
                    }
                    rt.reclaim_journals().await;
                }
            },
            span,
        ))
    }

    async fn reclaim_journals(&self) {
        // Flush commits are durable, so every segment the journal reports reclaimable is
        // fully reflected in durable metadata; sync anyway to cover buffered commits.
        for store in self.stores.values() {
            if let Err(e) = store.sync().await {
                tracing::warn!(error = %e, "metadata sync before journal reclaim failed");
                return;
            }
        }
        for (name, engine) in &self.engines {
            if let Err(e) = engine.reclaim_journal() {
                tracing::warn!(store = %name, error = %e, "journal reclaim failed");
            }
        }
    }

    /// Flushes every share, syncs and closes the stores.
    pub async fn shutdown(&self) {
        for s in &self.shares {
            if let Err(e) = s.fs.flush_all().await {
                tracing::error!(share = %s.cfg.name, error = %e, "flush at shutdown failed; the journal keeps the data");
            }
        }
        for engine in self.engines.values() {
            if let Err(e) = engine.commit_durable().await {
                tracing::error!(error = %e, "journal sync at shutdown failed");
            }
        }
        self.reclaim_journals().await;
        for (name, store) in &self.stores {
            if let Err(e) = store.close().await {
                tracing::error!(store = %name, error = %e, "closing metadata store failed");
            }
        }
    }
}
