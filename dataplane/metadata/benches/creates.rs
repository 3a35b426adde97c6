//! Durable creates per second, per backend and concurrency.
//!
//! One create = one `Txn` (PutInode of the new file + PutDirent + PutInode of the parent
//! directory with its next cookie taken) committed `Durable`. Each task creates in its own
//! directory, so the tasks never conflict; concurrency only tests how the backend batches
//! durable commits (group commit).
//!
//! `cargo bench -p dittofs-metadata --bench creates`; `DITTOFS_BENCH_SECS` (default 3)
//! sets the duration of each measurement, `DITTOFS_BENCH_BACKENDS` (default
//! `memory,sled`) the backends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dittofs_metadata::conformance::{dir_rec, file_rec};
use dittofs_metadata::memory::MemoryStore;
use dittofs_metadata::{DirEntry, Durability, MetadataStore, Op, SledStore, Txn};
use dittofs_types::{FileType, Ino, ShareId};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHARE: ShareId = ShareId(1);

async fn run(store: Arc<dyn MetadataStore>, tasks: u64, dur: Duration) -> (u64, Duration) {
    store.create_share(SHARE, "bench", 0o755).await.unwrap();
    // One directory per task under the root.
    let mut t = Txn::new(SHARE);
    let mut root = store.get_inode(SHARE, Ino::ROOT).await.unwrap().unwrap();
    for i in 0..tasks {
        let dir = 2 + i;
        t.op(Op::PutInode(dir_rec(dir, 1))).op(Op::PutDirent {
            dir: Ino::ROOT,
            entry: DirEntry {
                name: format!("d{i}").into_bytes(),
                ino: Ino(dir),
                kind: FileType::Directory,
                cookie: root.next_cookie,
            },
        });
        root.next_cookie += 1;
        root.nlink += 1;
    }
    root.change += 1;
    t.op(Op::PutInode(root));
    store.commit(t, Durability::Durable).await.unwrap();

    let start = Instant::now();
    let deadline = start + dur;
    let mut handles = Vec::new();
    for i in 0..tasks {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let dir_ino = 2 + i;
            let mut dir = store.get_inode(SHARE, Ino(dir_ino)).await.unwrap().unwrap();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let ino = 1_000_000 * (i + 1) + n;
                let mut t = Txn::new(SHARE);
                t.op(Op::PutInode(file_rec(ino))).op(Op::PutDirent {
                    dir: Ino(dir_ino),
                    entry: DirEntry {
                        name: format!("f{n}").into_bytes(),
                        ino: Ino(ino),
                        kind: FileType::Regular,
                        cookie: dir.next_cookie,
                    },
                });
                dir.next_cookie += 1;
                dir.change += 1;
                t.op(Op::PutInode(dir.clone()));
                store.commit(t, Durability::Durable).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    let elapsed = start.elapsed();
    store.close().await.unwrap();
    (total, elapsed)
}

fn main() {
    let secs: f64 = std::env::var("DITTOFS_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let backends =
        std::env::var("DITTOFS_BENCH_BACKENDS").unwrap_or_else(|_| "memory,sled".to_owned());
    let dur = Duration::from_secs_f64(secs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("durable creates (PutInode + PutDirent + parent PutInode per txn), {secs} s each");
    println!(
        "{:<8} {:>6} {:>10} {:>12}",
        "backend", "tasks", "creates", "creates/s"
    );
    for backend in backends.split(',') {
        for tasks in [1u64, 4, 16] {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn MetadataStore> = match backend {
                "memory" => Arc::new(MemoryStore::new()),
                "sled" => Arc::new(SledStore::open(dir.path()).unwrap()),
                other => panic!("unknown backend {other}"),
            };
            let (n, elapsed) = rt.block_on(run(store, tasks, dur));
            println!(
                "{backend:<8} {tasks:>6} {n:>10} {:>12.0}",
                n as f64 / elapsed.as_secs_f64()
            );
        }
    }
}
