//! Shared fixture of the VFS test suites: one share over a chosen metadata backend and a
//! fresh block engine with a small chunker (so files of a few KiB span many chunks).

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use dittofs_blockstore::{ChunkerConfig, Engine, EngineConfig};
use dittofs_metadata::MetadataStore;
use dittofs_types::ShareId;
use dittofs_vfs::{Fs, ShareOptions};
use std::sync::Arc;

pub struct Fixture {
    pub fs: Arc<Fs>,
    pub store: Arc<dyn MetadataStore>,
    pub engine: Arc<Engine>,
    pub dir: tempfile::TempDir,
}

pub fn small_chunker() -> ChunkerConfig {
    ChunkerConfig {
        min: 256,
        avg: 1024,
        max: 4096,
    }
}

pub async fn open_store(backend: &str, dir: &std::path::Path) -> Arc<dyn MetadataStore> {
    match backend {
        "memory" => Arc::new(dittofs_metadata::memory::MemoryStore::new()),
        "sled" => Arc::new(
            dittofs_metadata::sled_store::SledStore::open(&dir.join("meta")).expect("open sled"),
        ),
        other => panic!("unknown backend {other}"),
    }
}

pub async fn fixture(backend: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(backend, dir.path()).await;
    let cfg = EngineConfig {
        chunker: small_chunker(),
        ..EngineConfig::default()
    };
    let (engine, recovered) = Engine::open(&dir.path().join("blocks"), cfg).expect("engine");
    assert!(recovered.is_empty());
    let engine = Arc::new(engine);
    let fs = Fs::open(
        store.clone(),
        engine.clone(),
        ShareId(1),
        "/export",
        ShareOptions {
            root_mode: 0o777,
            ..Default::default()
        },
    )
    .await
    .expect("open fs");
    Fixture {
        fs,
        store,
        engine,
        dir,
    }
}
