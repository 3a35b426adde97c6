//! A real S3 server for tests: SeaweedFS `weed mini` on loopback ports picked here, data in
//! a temporary directory, stopped (SIGKILL of the one process started) on drop.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use dittofs_remote::S3Config;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "dittofs-test";
pub const SECRET_KEY: &str = "dittofs-test-secret-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok(v) if !v.is_empty() && v != "false" && v != "0")
}

/// The `weed` binary: $DITTOFS_WEED_BIN, $DITTOFS_CACHE/bin/weed, ~/.cache/dittofs/bin/weed.
pub fn weed_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DITTOFS_WEED_BIN") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var("DITTOFS_CACHE")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cache/dittofs")))
        .ok()?;
    let p = cache.join("bin/weed");
    p.exists().then_some(p)
}

pub struct S3Server {
    child: Option<Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts the server, or returns None (skip) outside CI when `weed` is not installed.
    pub fn start() -> Option<S3Server> {
        let Some(bin) = weed_bin() else {
            assert!(
                !in_ci(),
                "weed (SeaweedFS) is not installed: run scripts/install-deps.sh"
            );
            eprintln!("SKIP: weed (SeaweedFS) not installed; run scripts/install-deps.sh");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let mut cmd = Command::new(&bin);
        cmd.arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-admin.ui=false",
                "-webdav=false",
            ])
            .arg(format!("-s3.port={port}"));
        // Every listener on a port of its own (the defaults are fixed ports, and gRPC ports
        // default to port+10000, which overflows for ephemeral ports).
        for flag in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "admin.port",
            "admin.port.grpc",
            "metricsPort",
            "s3.metricsPort",
        ] {
            cmd.arg(format!("-{flag}={}", free_port()));
        }
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().unwrap();
        let mut s = S3Server {
            child: Some(child),
            port,
            _dir: dir,
        };
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Some(c) = s.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("weed exited ({st}): {}", s.log());
            }
            assert!(
                Instant::now() < end,
                "weed S3 did not listen on {port}: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(s)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("weed.log")).unwrap_or_default()
    }

    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            region: "us-east-1".into(),
            endpoint: format!("http://127.0.0.1:{}", self.port),
            prefix: prefix.into(),
            force_path_style: true,
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            operation_timeout: Some(Duration::from_secs(20)),
            max_attempts: Some(3),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
