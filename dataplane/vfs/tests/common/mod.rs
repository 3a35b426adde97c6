//! Shared fixture of the VFS test suites: one share over a chosen metadata backend and a
//! fresh block engine with a small chunker (so files of a few KiB span many chunks).

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use bytes::Bytes;
use dittofs_blockstore::{ChunkerConfig, Engine, EngineConfig};
use dittofs_metadata::MetadataStore;
use dittofs_types::{Ino, ShareId};
use dittofs_vfs::{Credentials, Fs, ShareOptions, Stability};
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

/// Share 1 (`/export`, root mode 0777) over `store` and an engine in `dir/blocks`.
pub async fn open_fs_engine(
    store: Arc<dyn MetadataStore>,
    dir: &std::path::Path,
) -> (Arc<Fs>, Arc<Engine>) {
    let cfg = EngineConfig {
        chunker: small_chunker(),
        ..EngineConfig::default()
    };
    let (engine, recovered) = Engine::open(&dir.join("blocks"), cfg).expect("engine");
    assert!(recovered.is_empty());
    let engine = Arc::new(engine);
    (share_over(store, engine.clone()).await, engine)
}

/// Share 1 (`/export`, root mode 0777) over `store` and `engine`.
async fn share_over(store: Arc<dyn MetadataStore>, engine: Arc<Engine>) -> Arc<Fs> {
    Fs::open(
        store,
        engine,
        ShareId(1),
        "/export",
        ShareOptions {
            root_mode: 0o777,
            ..Default::default()
        },
    )
    .await
    .expect("open fs")
}

/// A fixture over an existing store and engine (after a simulated restart): the share
/// opened again, nothing recovered yet.
pub async fn reopen(
    store: Arc<dyn MetadataStore>,
    engine: Arc<Engine>,
    dir: tempfile::TempDir,
) -> Fixture {
    let fs = share_over(store.clone(), engine.clone()).await;
    Fixture {
        fs,
        store,
        engine,
        dir,
    }
}

/// [`open_fs_engine`]'s share.
pub async fn open_fs(store: Arc<dyn MetadataStore>, dir: &std::path::Path) -> Arc<Fs> {
    open_fs_engine(store, dir).await.0
}

pub async fn fixture(backend: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(backend, dir.path()).await;
    let (fs, engine) = open_fs_engine(store.clone(), dir.path()).await;
    Fixture {
        fs,
        store,
        engine,
        dir,
    }
}

/// Writes `data` at `off` of `ino` as root (unstable: the engine's journal).
pub async fn write(fx: &Fixture, ino: Ino, off: u64, data: &[u8]) {
    fx.fs
        .write(
            &Credentials::root(),
            ino,
            off,
            Bytes::copy_from_slice(data),
            Stability::Unstable,
        )
        .await
        .expect("write");
}

/// The whole content of `ino`, read as root in 64 KiB pieces.
pub async fn read_all(fx: &Fixture, ino: Ino) -> Vec<u8> {
    let size = fx.fs.getattr(ino).await.expect("getattr").size;
    let mut out = Vec::new();
    while (out.len() as u64) < size {
        let (d, _eof, _) = fx
            .fs
            .read(&Credentials::root(), ino, out.len() as u64, 64 * 1024)
            .await
            .expect("read");
        assert!(!d.is_empty(), "short read at {}", out.len());
        out.extend_from_slice(&d);
    }
    out
}
