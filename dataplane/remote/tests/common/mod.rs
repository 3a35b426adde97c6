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

/// `n` distinct free loopback ports (each held until all are picked).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Whether an HTTP server answers on `port` (any status: it is up and serving).
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; 5];
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
        && c.read_exact(&mut head).is_ok()
        && &head == b"HTTP/"
}

/// `weed mini` listeners given a port of their own besides `-s3.port` (the defaults are
/// fixed ports, and gRPC ports default to port+10000, which overflows for ephemeral ports).
const PORT_FLAGS: [&str; 13] = [
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
];

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
        // Test processes run side by side and pick ports the same way: one server starts
        // at a time, from picking its ports until it serves, so that no port just picked
        // here is handed to another test's server before this one has bound it.
        let start_lock =
            std::fs::File::create(std::env::temp_dir().join("dittofs-weed-start.lock")).unwrap();
        start_lock.lock().unwrap();
        let ports = free_ports(1 + PORT_FLAGS.len());
        let port = ports[0];
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
        // Every listener on a port of its own (PORT_FLAGS).
        for (flag, p) in PORT_FLAGS.iter().zip(&ports[1..]) {
            cmd.arg(format!("-{flag}={p}"));
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
            if answers_http(port) {
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
        drop(start_lock);
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
