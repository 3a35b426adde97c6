//! Hardening against clients, against the real `dfs` binary (issue #26 items 5 and 6):
//! SIGTERM is not held up by a client that never reads its replies, shares with
//! `secure: true` refuse calls from unprivileged source ports, and floods of garbage,
//! oversized records and refused mounts are counted in /metrics instead of logged one
//! line each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Client, Server, http_get, privileged_client};
use dittofs_nfs::XdrEncode;
use dittofs_nfs::mount3::{DirPath, MntArgs, MntRes, MountStat3};
use dittofs_nfs::nfs3::*;
use dittofs_nfs::record::frame_record;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The server's log (stderr) goes to a file the test reads afterwards.
fn logged_server(env: Vec<(String, String)>) -> (Server, tempfile::NamedTempFile) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let path: PathBuf = log.path().to_path_buf();
    let srv = Server::start_customized(
        env,
        Some(Box::new(move |cmd: &mut Command| {
            cmd.stderr(std::fs::File::create(&path).unwrap());
        })),
    );
    (srv, log)
}

/// The value of counter or gauge `name` (with its labels, if any) in /metrics.
fn metric(http_port: u16, name: &str) -> u64 {
    let m = http_get(http_port, "/metrics").unwrap();
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {m}"))
        .trim()
        .parse()
        .unwrap()
}

fn warn_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("WARN")).collect()
}

/// A pipelined NFS call (no reply awaited) from AUTH_SYS root.
fn call_record(xid: u32, prog: u32, proc_num: u32, args: &[u8]) -> Vec<u8> {
    common::call_record(xid, prog, proc_num, b"flood", args)
}

/// SIGTERM while a client that never reads its replies has filled its connection with
/// 1 MiB READ replies (the server's writes to it block): the stalled connection is
/// dropped at once, so `dfs` exits within a couple of seconds, with status 0, well inside
/// its shutdown bound and Kubernetes' grace period. It used to wait 5 s for the stalled
/// client (and up to the 30 s in-flight timeout in all).
#[test]
fn sigterm_drops_a_client_that_never_reads() {
    let (mut srv, log) = logged_server(vec![
        ("DITTOFS_LOGGING_LEVEL".into(), "INFO".into()),
        ("DITTOFS_SHUTDOWN_TIMEOUT_SECONDS".into(), "20".into()),
    ]);
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    let fh = c.create_file(&root, "big");
    assert_eq!(c.write_sync(&fh, 0, &vec![3u8; 1 << 20]), NfsStat3::Ok);
    let read = ReadArgs {
        file: fh,
        offset: 0,
        count: 1 << 20,
    }
    .to_xdr();
    let mut silent = TcpStream::connect(("127.0.0.1", srv.nfs_port)).unwrap();
    let burst: Vec<u8> = (0..100u32)
        .flat_map(|i| call_record(i, PROGRAM, 6, &read))
        .collect();
    silent.write_all(&burst).unwrap();
    // The server's writes to it are blocked well before this (about 32 MiB of replies
    // against the socket buffers); an idle, reading client stays connected too.
    std::thread::sleep(Duration::from_secs(3));
    assert!(c.null_ok());
    let t0 = Instant::now();
    let code = srv.stop();
    let took = t0.elapsed();
    eprintln!("dfs stopped in {took:?}");
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        took < Duration::from_secs(4),
        "dfs took {took:?} to stop with a client that reads nothing\n{text}"
    );
    assert!(text.contains("not reading"), "{text}");
    drop(silent);
}

fn mnt(c: &mut Client, path: &str) -> MntRes {
    c.call(
        dittofs_nfs::mount3::PROGRAM,
        1,
        &MntArgs {
            dirpath: DirPath(path.as_bytes().to_vec()),
        },
    )
}

fn getattr(c: &mut Client, fh: &NfsFh3) -> NfsStat3 {
    let r: GetattrRes = c.call(PROGRAM, 1, &GetattrArgs { object: fh.clone() });
    r.status()
}

/// `secure: true` (exports(5) `secure`): MNT from a source port >= 1024 is refused with
/// MNT3ERR_ACCES and every NFS call on a handle of the share with NFS3ERR_PERM, while a
/// client on a privileged port is served; a share without the option serves both.
#[test]
fn secure_share_refuses_unprivileged_ports() {
    let srv = Server::start_with(vec![(
        "DITTOFS_SHARES".into(),
        "[{name: /export, squash: none}, {name: /secure, squash: none, secure: true}]".into(),
    )]);
    let Some(mut root_port) = privileged_client(srv.nfs_port) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI runs as root: a privileged source port must be available");
        }
        eprintln!("SKIP: cannot bind a privileged source port (not root)");
        return;
    };
    let mut user_port = Client::connect(srv.nfs_port);
    assert!(user_port.sock.local_addr().unwrap().port() >= 1024);

    let MntRes::Ok(secure) = mnt(&mut root_port, "/secure") else {
        panic!("MNT /secure from a privileged port refused")
    };
    let secure = secure.fhandle;
    assert!(matches!(
        mnt(&mut user_port, "/secure"),
        MntRes::Err(MountStat3::Acces)
    ));
    assert_eq!(getattr(&mut root_port, &secure), NfsStat3::Ok);
    assert_eq!(getattr(&mut user_port, &secure), NfsStat3::Perm);
    // a handle of a file inside the share, obtained on a privileged port, is refused too
    let file = root_port.create_file(&secure, "f");
    assert_eq!(getattr(&mut user_port, &file), NfsStat3::Perm);
    assert_eq!(getattr(&mut root_port, &file), NfsStat3::Ok);
    // the share without the option serves both
    for c in [&mut root_port, &mut user_port] {
        let MntRes::Ok(open) = mnt(c, "/export") else {
            panic!("MNT /export refused")
        };
        assert_eq!(getattr(c, &open.fhandle), NfsStat3::Ok);
    }
    let refused = metric(srv.http_port, "dittofs_nfs_insecure_port_calls_total");
    assert_eq!(refused, 3, "one MNT and two GETATTRs from port >= 1024");
}

/// Reads and drops whatever the server sends on `sock` until it closes.
fn drain(mut sock: TcpStream) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut sink = vec![0u8; 64 << 10];
        while matches!(sock.read(&mut sink), Ok(n) if n > 0) {}
    })
}

/// A flood of bad input: 100,000 records that are not RPC calls (too short for an xid,
/// replies instead of calls, truncated headers: some get GARBAGE_ARGS, the rest no
/// answer), 300 connections announcing an oversized record, 1,000 MNTs of a share the
/// client is not allowed to mount. Each kind is counted exactly in /metrics and logged
/// a few times at most (it was one WARN line per oversized record and refused MNT).
#[test]
fn floods_are_counted_not_logged() {
    const GARBAGE_CONNS: u32 = 4;
    const GARBAGE_PER_CONN: u32 = 25_000;
    const OVERSIZED: u32 = 300;
    const MOUNTS: u32 = 1_000;
    let (mut srv, log) = logged_server(vec![(
        "DITTOFS_SHARES".into(),
        "[{name: /export, squash: none}, {name: /closed, allowed_clients: [10.9.9.9]}]".into(),
    )]);
    let t0 = Instant::now();
    let mut readers = Vec::new();
    for conn in 0..GARBAGE_CONNS {
        let mut sock = TcpStream::connect(("127.0.0.1", srv.nfs_port)).unwrap();
        readers.push(drain(sock.try_clone().unwrap()));
        let mut burst = Vec::new();
        for i in 0..GARBAGE_PER_CONN {
            let xid = (conn << 20 | i).to_be_bytes();
            let rec: Vec<u8> = match i % 3 {
                0 => vec![1, 2, 3],
                1 => [&xid[..], &[0, 0, 0, 7]].concat(),
                _ => [&xid[..], &[0, 0, 0, 0, 0, 0, 0, 2, 0, 1]].concat(),
            };
            burst.extend_from_slice(&frame_record(&rec));
        }
        sock.write_all(&burst).unwrap();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
    }
    for _ in 0..OVERSIZED {
        let mut sock = TcpStream::connect(("127.0.0.1", srv.nfs_port)).unwrap();
        sock.write_all(&0x7fff_fff0u32.to_be_bytes()).unwrap();
        readers.push(drain(sock));
    }
    let mut c = Client::connect(srv.nfs_port);
    for _ in 0..MOUNTS {
        assert!(matches!(
            mnt(&mut c, "/closed"),
            MntRes::Err(MountStat3::Acces)
        ));
    }
    for r in readers {
        r.join().unwrap();
    }
    eprintln!("flood sent and answered in {:?}", t0.elapsed());
    let garbage = u64::from(GARBAGE_CONNS * GARBAGE_PER_CONN);
    assert_eq!(
        metric(srv.http_port, "dittofs_nfs_garbage_records_total"),
        garbage
    );
    assert_eq!(
        metric(srv.http_port, "dittofs_nfs_oversized_records_total"),
        u64::from(OVERSIZED)
    );
    assert_eq!(
        metric(srv.http_port, "dittofs_nfs_rejected_records_total"),
        garbage + u64::from(OVERSIZED)
    );
    assert_eq!(
        metric(srv.http_port, "dittofs_nfs_mounts_refused_total"),
        u64::from(MOUNTS)
    );
    // The core's limited log is registered too (no write was refused here).
    assert_eq!(metric(srv.http_port, "dittofs_vfs_writes_refused_total"), 0);
    assert!(c.null_ok(), "the server still serves");
    srv.stop();
    let text = std::fs::read_to_string(log.path()).unwrap();
    let warns = warn_lines(&text);
    eprintln!("{} WARN lines:\n{}", warns.len(), warns.join("\n"));
    assert!(
        warns.len() <= 12,
        "{} WARN lines ({} bytes of log) for the flood",
        warns.len(),
        text.len()
    );
    // each kind is reported, with what was suppressed
    for kind in ["garbage", "oversized", "MNT refused"] {
        assert!(warns.iter().any(|l| l.contains(kind)), "no {kind} line");
    }
}
