//! Protocol tests against the real `dfs` binary: a raw ONC RPC client built on the
//! project's codec (malformed input, RPC-level errors, duplicate request cache, bad
//! handles) and the libnfs command-line client (copy in and out, listing, restart).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Client, Server, http_get, require_tool};
use dittofs_nfs::mount3::{DirPath, MntArgs, MntRes};
use dittofs_nfs::nfs3::*;
use dittofs_nfs::record::frame_record;
use dittofs_nfs::rpc::{AcceptStat, Auth, OpaqueAuth, ReplyStat, RpcCall, RpcReply};
use dittofs_nfs::{Decoder, XdrDecode, XdrEncode};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

#[test]
fn rpc_level_errors_and_server_keeps_serving() {
    let srv = Server::start();
    let mut c = Client::connect(srv.nfs_port);
    assert!(c.null_ok());
    let (r, _) = c.call_raw(100_099, 1, 0, true, &[]);
    assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::ProgUnavail));
    // NFS is served in versions 3 and 4 (tests/nfs4_protocol.rs has version 4)
    let (r, _) = c.call_raw(PROGRAM, 5, 0, true, &[]);
    assert_eq!(
        r.stat,
        ReplyStat::Accepted(AcceptStat::ProgMismatch { low: 3, high: 4 })
    );
    let (r, _) = c.call_raw(PROGRAM, 3, 99, true, &[]);
    assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::ProcUnavail));
    let (r, _) = c.call_raw(PROGRAM, 3, 0, false, &[]);
    assert_eq!(r.stat, ReplyStat::RpcMismatch { low: 2, high: 2 });
    // GETATTR with arguments cut short: GARBAGE_ARGS
    let (r, _) = c.call_raw(PROGRAM, 3, 1, true, &[0, 0, 0, 40, 1, 2]);
    assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::GarbageArgs));
    // a garbage handle is NFS3ERR_BADHANDLE, a well-formed unknown one NFS3ERR_STALE
    let r: GetattrRes = c.call(
        PROGRAM,
        1,
        &GetattrArgs {
            object: NfsFh3(vec![7u8; 30]),
        },
    );
    assert_eq!(r.status(), NfsStat3::BadHandle);
    let root = c.mount_root();
    let mut stale = root.clone();
    stale.0[12] ^= 0xff; // inode number changed: checksum fails -> BADHANDLE
    let r: GetattrRes = c.call(PROGRAM, 1, &GetattrArgs { object: stale });
    assert_eq!(r.status(), NfsStat3::BadHandle);
    assert!(c.null_ok(), "connection still usable after errors");
    // unknown export
    let r: MntRes = c.call(
        dittofs_nfs::mount3::PROGRAM,
        1,
        &MntArgs {
            dirpath: DirPath(b"/nope".to_vec()),
        },
    );
    assert!(matches!(
        r,
        MntRes::Err(dittofs_nfs::mount3::MountStat3::NoEnt)
    ));
}

#[test]
fn malformed_records_close_only_that_connection() {
    let srv = Server::start();
    // oversized record mark: the server closes the connection without reading 2 GiB
    let mut c = Client::connect(srv.nfs_port);
    c.send_raw(&0xffff_fff0u32.to_be_bytes());
    assert!(c.recv().is_none(), "connection closed");
    // garbage that is not even an RPC header
    let mut c = Client::connect(srv.nfs_port);
    c.send_raw(&frame_record(&[1, 2, 3]));
    assert!(c.recv().is_none());
    // a truncated record followed by EOF
    let mut c = Client::connect(srv.nfs_port);
    c.send_raw(&[0x80, 0, 0, 100, 1, 2, 3]);
    drop(c);
    // the server still serves everyone else
    let mut c = Client::connect(srv.nfs_port);
    assert!(c.null_ok());
    let root = c.mount_root();
    let r: GetattrRes = c.call(PROGRAM, 1, &GetattrArgs { object: root });
    assert_eq!(r.status(), NfsStat3::Ok);
}

#[test]
fn namespace_procedures_and_duplicate_request_cache() {
    let srv = Server::start();
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    let name = |s: &str| DirOpArgs3 {
        dir: root.clone(),
        name: Filename3(s.as_bytes().to_vec()),
    };
    let create = CreateArgs {
        where_: name("f"),
        how: CreateHow3::Guarded(Sattr3 {
            mode: Some(0o644),
            ..Default::default()
        }),
    };
    // send the same CREATE twice with the same xid: the retransmission gets the cached reply
    let args = create.to_xdr();
    let (r1, b1) = c.call_raw(PROGRAM, 3, 8, true, &args);
    assert_eq!(r1.stat, ReplyStat::Accepted(AcceptStat::Success));
    c.xid -= 1;
    let (_, b2) = c.call_raw(PROGRAM, 3, 8, true, &args);
    assert_eq!(b1, b2, "retransmitted CREATE answered from the cache");
    let first = CreateRes::decode(&mut Decoder::new(&b1)).unwrap();
    assert_eq!(first.status(), NfsStat3::Ok);
    // a fresh CREATE (new xid) of the same name is EXIST
    let r: CreateRes = c.call(PROGRAM, 8, &create);
    assert_eq!(r.status(), NfsStat3::Exist);
    // WRITE + READ + COMMIT
    let Res3::Ok(ok) = first else { panic!() };
    let fh = ok.obj.unwrap();
    let data = bytes::Bytes::from(vec![42u8; 100_000]);
    let w: WriteRes = c.call(
        PROGRAM,
        7,
        &WriteArgs {
            file: fh.clone(),
            offset: 0,
            count: data.len() as u32,
            stable: StableHow::Unstable,
            data,
        },
    );
    let Res3::Ok(w) = w else {
        panic!("write failed")
    };
    assert_eq!(w.count, 100_000);
    let cm: CommitRes = c.call(
        PROGRAM,
        21,
        &CommitArgs {
            file: fh.clone(),
            offset: 0,
            count: 0,
        },
    );
    let Res3::Ok(cm) = cm else { panic!() };
    assert_eq!(cm.verf, w.verf);
    let r: ReadRes = c.call(
        PROGRAM,
        6,
        &ReadArgs {
            file: fh.clone(),
            offset: 99_990,
            count: 100,
        },
    );
    let Res3::Ok(r) = r else { panic!() };
    assert_eq!((r.count, r.eof, &r.data[..]), (10, true, &[42u8; 10][..]));
    // REMOVE retransmission: cached OK, not NOENT
    let rm = RemoveArgs { object: name("f") }.to_xdr();
    let (_, b1) = c.call_raw(PROGRAM, 3, 12, true, &rm);
    c.xid -= 1;
    let (_, b2) = c.call_raw(PROGRAM, 3, 12, true, &rm);
    assert_eq!(b1, b2);
    assert_eq!(
        RemoveRes::decode(&mut Decoder::new(&b2)).unwrap().status(),
        NfsStat3::Ok
    );
    // the removed file's handle is now stale
    let g: GetattrRes = c.call(PROGRAM, 1, &GetattrArgs { object: fh });
    assert_eq!(g.status(), NfsStat3::Stale);
    // hostile names
    let bad: CreateRes = c.call(
        PROGRAM,
        8,
        &CreateArgs {
            where_: name("a/b"),
            how: CreateHow3::Unchecked(Sattr3::default()),
        },
    );
    assert_eq!(bad.status(), NfsStat3::Inval);
    let long = "x".repeat(256);
    let bad: CreateRes = c.call(
        PROGRAM,
        8,
        &CreateArgs {
            where_: name(&long),
            how: CreateHow3::Unchecked(Sattr3::default()),
        },
    );
    assert_eq!(bad.status(), NfsStat3::NameTooLong);
    let dotdot: LookupRes = c.call(PROGRAM, 3, &LookupArgs { what: name("..") });
    assert_eq!(dotdot.status(), NfsStat3::Ok);
    // FSINFO advertises 1 MiB transfers
    let fi: FsinfoRes = c.call(
        PROGRAM,
        19,
        &FsinfoArgs {
            fsroot: root.clone(),
        },
    );
    let Res3::Ok(fi) = fi else { panic!() };
    assert_eq!((fi.rtmax, fi.wtmax), (1 << 20, 1 << 20));
    // metrics saw the calls
    let m = http_get(srv.http_port, "/metrics").unwrap();
    assert!(
        m.contains("dittofs_nfs_requests_total{program=\"nfs3\",procedure=\"CREATE\"}"),
        "{m}"
    );
}

/// The block-store gauges of /metrics follow unflushed data: an UNSTABLE write shows as one
/// dirty file until the background flusher chunks it (idle 2 s), then the count is 0 and
/// the local tier holds the bytes.
#[test]
fn dirty_data_gauges_follow_the_flusher() {
    let srv = Server::start();
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    let gauge = |name: &str| common::blockstore_gauge(srv.http_port, name);
    assert_eq!(gauge("dirty_files"), 0);
    let r: CreateRes = c.call(
        PROGRAM,
        8,
        &CreateArgs {
            where_: DirOpArgs3 {
                dir: root,
                name: Filename3(b"g".to_vec()),
            },
            how: CreateHow3::Unchecked(Sattr3::default()),
        },
    );
    let Res3::Ok(ok) = r else {
        panic!("create failed")
    };
    let data = bytes::Bytes::from(vec![7u8; 100_000]);
    let w: WriteRes = c.call(
        PROGRAM,
        7,
        &WriteArgs {
            file: ok.obj.unwrap(),
            offset: 0,
            count: data.len() as u32,
            stable: StableHow::Unstable,
            data,
        },
    );
    assert!(matches!(w, Res3::Ok(_)), "write failed");
    assert_eq!(gauge("dirty_files"), 1);
    assert_eq!(gauge("dirty_bytes"), 100_000);
    let t0 = std::time::Instant::now();
    while gauge("dirty_files") != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the flusher never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(gauge("dirty_bytes"), 0);
    assert!(gauge("used_bytes") >= 100_000);
}

/// Deleting a file gives its space back within seconds, not at the next GC (whose grace
/// is an hour): an 8 MiB file is written, chunked by the flusher, then removed; the local
/// tier's usage falls by its size within 10 s.
#[test]
fn deletes_free_space_within_seconds() {
    let srv = Server::start();
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    let gauge = |name: &str| common::blockstore_gauge(srv.http_port, name);
    let name = |s: &str| DirOpArgs3 {
        dir: root.clone(),
        name: Filename3(s.as_bytes().to_vec()),
    };
    let fh = c.create_file(&root, "big");
    let data = common::pseudo_random(8 << 20, 0x9e37_79b9_7f4a_7c15);
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        assert_eq!(c.write_sync(&fh, (i << 20) as u64, piece), NfsStat3::Ok);
    }
    let t0 = std::time::Instant::now();
    while gauge("dirty_files") != 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "never flushed");
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = gauge("used_bytes");
    assert!(
        before >= 8 << 20,
        "the file is on the local tier ({before} B)"
    );
    let rm: RemoveRes = c.call(
        PROGRAM,
        12,
        &RemoveArgs {
            object: name("big"),
        },
    );
    assert_eq!(rm.status(), NfsStat3::Ok);
    let t0 = std::time::Instant::now();
    loop {
        let used = gauge("used_bytes");
        if used + (8 << 20) <= before {
            eprintln!(
                "space back after {:?}: {} -> {} bytes",
                t0.elapsed(),
                before,
                used
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "10 s after the delete the local tier still holds {used} of {before} bytes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Root squash as Linux knfsd applies it, through the protocol: a `root:root 0660` file is
/// read and written through its group bits by uid 1000 with gid 0, or with 0 among its
/// supplementary groups, only where squashing is off; `root_to_anonymous` maps gid 0
/// (primary and supplementary) as well as uid 0, `all_to_anonymous` maps everyone.
#[test]
fn root_squash_maps_group_zero_too() {
    let mut srv = Server::start(); // squash: none
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    let created: CreateRes = c.call(
        PROGRAM,
        8,
        &CreateArgs {
            where_: DirOpArgs3 {
                dir: root.clone(),
                name: Filename3(b"secret".to_vec()),
            },
            how: CreateHow3::Guarded(Sattr3 {
                mode: Some(0o660),
                ..Default::default()
            }),
        },
    );
    let Res3::Ok(ok) = created else {
        panic!("create failed")
    };
    let fh = ok.obj.unwrap();
    // (READ status, WRITE status) for one identity on the current export
    let try_io = |port: u16, cred: (u32, u32, Vec<u32>)| {
        let mut c = Client::connect(port);
        c.cred = cred;
        let r: ReadRes = c.call(
            PROGRAM,
            6,
            &ReadArgs {
                file: fh.clone(),
                offset: 0,
                count: 10,
            },
        );
        let w: WriteRes = c.call(
            PROGRAM,
            7,
            &WriteArgs {
                file: fh.clone(),
                offset: 0,
                count: 1,
                stable: StableHow::FileSync,
                data: bytes::Bytes::from_static(b"x"),
            },
        );
        (r.status(), w.status())
    };
    let ok = (NfsStat3::Ok, NfsStat3::Ok);
    let denied = (NfsStat3::Acces, NfsStat3::Acces);
    let identities = [
        ("uid 0", (0, 0, vec![])),
        ("gid 0", (1000, 0, vec![])),
        ("group 0 supplementary", (1000, 100, vec![4, 0])),
        ("no root ids", (1000, 100, vec![4])),
    ];
    let matrix = [
        ("none", [ok, ok, ok, denied]),
        ("root_to_anonymous", [denied, denied, denied, denied]),
        ("all_to_anonymous", [denied, denied, denied, denied]),
    ];
    for (mode, want) in matrix {
        srv.stop();
        srv.extra_env = vec![(
            "DITTOFS_SHARES".into(),
            format!("[{{name: /export, squash: {mode}}}]"),
        )];
        srv.spawn();
        for ((who, cred), want) in identities.iter().zip(want) {
            assert_eq!(try_io(srv.nfs_port, cred.clone()), want, "{mode}: {who}");
        }
    }
}

/// One local block store serves one server: a second `dfs` (its own data directory) on
/// the same block store directory is refused with a clear message while the first runs
/// (the store's lock) and after it stopped (the store's owner file), and nothing the
/// first acknowledged is lost; the first restarts on it as before.
#[test]
fn a_second_server_on_the_same_block_store_is_refused() {
    let blocks = tempfile::tempdir().unwrap();
    let env = vec![(
        "DITTOFS_BLOCK_STORES".to_string(),
        format!(
            "{{local: [{{name: default, type: fs, path: {}}}]}}",
            blocks.path().display()
        ),
    )];
    let mut first = Server::start_with(env.clone());
    let mut c = Client::connect(first.nfs_port);
    let root = c.mount_root();
    let fh = c.create_file(&root, "kept");
    let data = bytes::Bytes::from(vec![7u8; 200_000]);
    assert_eq!(c.write_sync(&fh, 0, &data), NfsStat3::Ok);
    let second_start = |first: &Server| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = first.command_with_dir(dir.path());
        cmd.env("DITTOFS_NFS_PORT", common::free_port().to_string())
            .env("DITTOFS_HTTP_PORT", common::free_port().to_string())
            .env("DITTOFS_CONTROL_PORT", common::free_port().to_string())
            .stderr(std::process::Stdio::piped());
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = second_start(&first);
    assert_ne!(code, Some(0), "the second server started: {err}");
    assert!(err.contains("is open in another process"), "{err}");
    // the first one still serves everything it acknowledged
    let read = |port: u16| {
        let mut c = Client::connect(port);
        let r: ReadRes = c.call(
            PROGRAM,
            6,
            &ReadArgs {
                file: fh.clone(),
                offset: 0,
                count: 200_000,
            },
        );
        let Res3::Ok(r) = r else {
            panic!("read failed")
        };
        r.data
    };
    assert_eq!(read(first.nfs_port), data);
    // stopped, the store still belongs to the first server
    assert_eq!(first.stop(), Some(0));
    let (code, err) = second_start(&first);
    assert_ne!(code, Some(0), "the second server started: {err}");
    assert!(err.contains("belongs to another server"), "{err}");
    assert!(err.contains("owner.json"), "{err}");
    first.spawn();
    assert_eq!(read(first.nfs_port), data);
}

/// Peak and current resident memory of process `pid`, in bytes (VmHWM, VmRSS).
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    };
    (kib("VmHWM:"), kib("VmRSS:"))
}

/// Clients that pipeline calls and never read the replies: 32 connections each send 200
/// READs of 1 MiB. Each connection stops being read once its budget (6 MiB here) is
/// spent, so the server's memory grows by at most 32 x 6 MiB (it grew by 4.2 GiB before
/// replies were bounded); another client is served meanwhile; the non-readers are closed
/// once they have taken no reply for the reply timeout (5 s here).
#[test]
fn clients_that_never_read_are_bounded_and_closed() {
    const CONNS: usize = 32;
    const PER_CONN: u64 = 6 << 20;
    let srv = Server::start_with(vec![
        (
            "DITTOFS_NFS_MAX_BUFFERED_BYTES_PER_CONNECTION".into(),
            PER_CONN.to_string(),
        ),
        (
            "DITTOFS_NFS_MAX_BUFFERED_BYTES".into(),
            (256u64 << 20).to_string(),
        ),
        ("DITTOFS_NFS_REPLY_TIMEOUT_SECONDS".into(), "5".into()),
    ]);
    let pid = srv.child.as_ref().unwrap().id();
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    let fh = c.create_file(&root, "big");
    let data = bytes::Bytes::from(vec![9u8; 1 << 20]);
    assert_eq!(c.write_sync(&fh, 0, &data), NfsStat3::Ok);
    let read_args = ReadArgs {
        file: fh.clone(),
        offset: 0,
        count: 1 << 20,
    }
    .to_xdr();
    let (before, _) = rss(pid);
    let mut silent = Vec::new();
    for conn in 0..CONNS {
        let mut sock = TcpStream::connect(("127.0.0.1", srv.nfs_port)).unwrap();
        let mut burst = Vec::new();
        for i in 0..200u32 {
            let xid = (conn as u32) << 16 | i;
            burst.extend(common::call_record(xid, PROGRAM, 6, b"silent", &read_args));
        }
        sock.write_all(&burst).unwrap();
        silent.push(sock);
    }
    std::thread::sleep(Duration::from_secs(2));
    // another client is served meanwhile
    let mut other = Client::connect(srv.nfs_port);
    let r: ReadRes = other.call(
        PROGRAM,
        6,
        &ReadArgs {
            file: fh,
            offset: 0,
            count: 1 << 20,
        },
    );
    let Res3::Ok(r) = r else {
        panic!("read failed")
    };
    assert_eq!(r.data, data);
    let buffered = |srv: &Server| -> u64 {
        let m = http_get(srv.http_port, "/metrics").unwrap();
        let line = m
            .lines()
            .find(|l| l.starts_with("dittofs_nfs_buffered_bytes "))
            .unwrap_or_else(|| panic!("no buffered gauge in {m}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let held = buffered(&srv);
    assert!(
        held <= CONNS as u64 * PER_CONN,
        "{held} bytes held for {CONNS} connections"
    );
    // the non-readers are closed after the reply timeout (5 s) ...
    std::thread::sleep(Duration::from_secs(8));
    for (i, sock) in silent.iter_mut().enumerate() {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut sink = vec![0u8; 1 << 20];
        let closed = loop {
            match sock.read(&mut sink) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(closed, "non-reading connection {i} is still open");
    }
    let m = http_get(srv.http_port, "/metrics").unwrap();
    assert!(
        m.contains(&format!("dittofs_nfs_stalled_clients_closed_total {CONNS}")),
        "{m}"
    );
    assert_eq!(buffered(&srv), 0, "reservations given back");
    // ... and the server's memory stayed within the budgets (plus allocator slack)
    let (peak, _) = rss(pid);
    let grew = peak.saturating_sub(before);
    eprintln!("dfs peak RSS grew by {} MiB", grew >> 20);
    assert!(
        grew < CONNS as u64 * PER_CONN + (64 << 20),
        "dfs peak RSS grew by {} MiB",
        grew >> 20
    );
}

/// Out of descriptors: dfs runs with a limit of 512 open files while 500 more clients
/// connect. It serves at most a quarter of its limit in connections (the rest are
/// closed at once), so an existing client still reads a chunk the server must open,
/// /health answers, and the log says so a few times, not once per connection.
#[test]
fn descriptor_exhaustion_leaves_room_for_files_and_health() {
    use std::os::unix::process::CommandExt;
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().to_path_buf();
    let mut srv = Server::start_customized(
        vec![("DITTOFS_LOGGING_LEVEL".into(), "INFO".into())],
        Some(Box::new(move |cmd: &mut Command| {
            let f = std::fs::File::create(&log_path).unwrap();
            cmd.stderr(f);
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                cmd.pre_exec(|| {
                    let lim = libc::rlimit {
                        rlim_cur: 512,
                        rlim_max: 512,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        })),
    );
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    let fh = c.create_file(&root, "f");
    let data = bytes::Bytes::from(vec![5u8; 300_000]);
    assert_eq!(c.write_sync(&fh, 0, &data), NfsStat3::Ok);
    // idle for 2 s: the flusher moves the data into chunk files, not yet opened for reading
    std::thread::sleep(Duration::from_secs(4));
    let mut crowd: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", srv.nfs_port)).ok())
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    eprintln!("{} clients connected", crowd.len());
    let r: ReadRes = c.call(
        PROGRAM,
        6,
        &ReadArgs {
            file: fh,
            offset: 0,
            count: 300_000,
        },
    );
    let Res3::Ok(r) = r else {
        panic!("READ on an existing connection failed: {r:?}")
    };
    assert_eq!(r.data, data);
    let health = http_get(srv.http_port, "/health").expect("/health answers");
    assert!(health.contains("200 OK"), "{health}");
    let mut closed = 0;
    for s in &mut crowd {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            _ => {}
        }
    }
    assert!(
        closed >= 500 - 128,
        "only {closed} of 500 extra connections were turned away"
    );
    let m = http_get(srv.http_port, "/metrics").unwrap();
    assert!(m.contains("dittofs_nfs_connections_refused_total"), "{m}");
    drop(crowd);
    srv.stop();
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(text.contains("open file limit"), "{text}");
    let warnings = text.matches("nfs.max_connections").count();
    assert!(
        (1..=5).contains(&warnings),
        "{warnings} warnings about refused connections"
    );
}

#[test]
fn write_verifier_changes_across_restarts() {
    let mut srv = Server::start();
    let verf = |srv: &Server| {
        let mut c = Client::connect(srv.nfs_port);
        let root = c.mount_root();
        let cm: CommitRes = c.call(
            PROGRAM,
            21,
            &CommitArgs {
                file: root,
                offset: 0,
                count: 0,
            },
        );
        match cm {
            Res3::Ok(ok) => ok.verf,
            Res3::Fail(..) => panic!("commit failed"),
        }
    };
    let v1 = verf(&srv);
    assert_eq!(srv.stop(), Some(0), "graceful stop exits 0");
    srv.spawn();
    assert_ne!(v1, verf(&srv));
}

#[test]
fn libnfs_client_copies_in_and_out_across_restart() {
    if !require_tool("nfs-cp") {
        return;
    }
    let mut srv = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    let data = common::pseudo_random(3 * 1024 * 1024 + 123, 0x1234_5678);
    std::fs::write(&src, &data).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run(&["nfs-cp", src.to_str().unwrap(), &srv.url("/big.bin")]);
    let ls = run(&["nfs-ls", &srv.url("/")]);
    assert!(ls.contains("big.bin"), "{ls}");
    let back = tmp.path().join("back.bin");
    run(&["nfs-cp", &srv.url("/big.bin"), back.to_str().unwrap()]);
    assert!(
        std::fs::read(&back).unwrap() == data,
        "bytes differ after round trip"
    );
    // crash (SIGKILL) and restart: the data is recovered from the journal / chunks
    srv.crash();
    srv.spawn();
    let back2 = tmp.path().join("back2.bin");
    run(&["nfs-cp", &srv.url("/big.bin"), back2.to_str().unwrap()]);
    assert!(
        std::fs::read(&back2).unwrap() == data,
        "bytes differ after crash + restart"
    );
    // an unknown export is refused
    let out = Command::new("nfs-ls")
        .arg(format!(
            "nfs://127.0.0.1/nope?nfsport={p}&mountport={p}&version=3",
            p = srv.nfs_port
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let srv = Server::start();
    // busy port
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = srv.command_with_dir(dir.path());
    cmd.stderr(std::process::Stdio::piped());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
    // bad config value
    let out = Command::new(env!("CARGO_BIN_EXE_dfs"))
        .arg("start")
        .env("DITTOFS_NFS_PORT", "notaport")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nfs"));
    // unwritable data directory
    let out = Command::new(env!("CARGO_BIN_EXE_dfs"))
        .args(["start", "--data-dir", "/proc/dittofs-cannot-exist"])
        .env("DITTOFS_NFS_PORT", common::free_port().to_string())
        .env("DITTOFS_HTTP_PORT", common::free_port().to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("data directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // init writes a sample that start accepts
    let sample = dir.path().join("c.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_dfs"))
        .args(["init", "--output"])
        .arg(&sample)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(&sample)
            .unwrap()
            .contains("DITTOFS_LOGGING_LEVEL")
    );
}

#[test]
fn embedded_portmapper_reports_our_port() {
    let pm_port = common::free_port();
    let srv = Server::start_with(vec![
        ("DITTOFS_NFS_PORTMAPPER_ENABLED".into(), "true".into()),
        ("DITTOFS_NFS_PORTMAPPER_PORT".into(), pm_port.to_string()),
    ]);
    let mut c = Client::connect(pm_port);
    // GETPORT(prog, vers, prot=TCP, port)
    let getport = |c: &mut Client, prog: u32, vers: u32| {
        let mut args = Vec::new();
        for v in [prog, vers, 6u32, 0] {
            args.extend_from_slice(&v.to_be_bytes());
        }
        let (r, rest) = c.call_raw(100_000, 2, 3, true, &args);
        assert_eq!(r.stat, ReplyStat::Accepted(AcceptStat::Success));
        u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]])
    };
    assert_eq!(getport(&mut c, PROGRAM, 3), u32::from(srv.nfs_port));
    assert_eq!(
        getport(&mut c, dittofs_nfs::mount3::PROGRAM, 3),
        u32::from(srv.nfs_port)
    );
    assert_eq!(getport(&mut c, PROGRAM, 4), 0, "NFSv4 is not registered");
    // rpcbind v3/v4 are refused with PROG_MISMATCH so clients fall back to v2
    let (r, _) = c.call_raw(100_000, 4, 3, true, &[]);
    assert_eq!(
        r.stat,
        ReplyStat::Accepted(AcceptStat::ProgMismatch { low: 2, high: 2 })
    );
    // UDP too
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let call = RpcCall {
        xid: 77,
        prog: 100_000,
        vers: 2,
        proc_num: 0,
        cred: Auth::None,
        verf: OpaqueAuth::none(),
    };
    let mut msg = Vec::new();
    call.encode(&mut msg);
    udp.send_to(&msg, ("127.0.0.1", pm_port)).unwrap();
    let mut buf = [0u8; 512];
    let n = udp.recv(&mut buf).unwrap();
    let (reply, _) = RpcReply::decode(&buf[..n]).unwrap();
    assert_eq!(
        (reply.xid, reply.stat),
        (77, ReplyStat::Accepted(AcceptStat::Success))
    );
}

/// MNT of `path` over the raw MOUNT protocol: the handle, or the refusal.
fn mnt_path(c: &mut Client, path: &[u8]) -> Result<NfsFh3, dittofs_nfs::mount3::MountStat3> {
    let r: MntRes = c.call(
        dittofs_nfs::mount3::PROGRAM,
        1,
        &MntArgs {
            dirpath: DirPath(path.to_vec()),
        },
    );
    match r {
        MntRes::Ok(ok) => Ok(ok.fhandle),
        MntRes::Err(e) => Err(e),
    }
}

/// MKDIR that must succeed: the new directory's handle.
fn mkdir_ok(c: &mut Client, dir: &NfsFh3, name: &str, mode: u32) -> NfsFh3 {
    let r: MkdirRes = c.call(
        PROGRAM,
        9,
        &MkdirArgs {
            where_: DirOpArgs3 {
                dir: dir.clone(),
                name: Filename3(name.as_bytes().to_vec()),
            },
            attributes: Sattr3 {
                mode: Some(mode),
                ..Default::default()
            },
        },
    );
    match r {
        Res3::Ok(ok) => ok.obj.expect("a handle"),
        Res3::Fail(st, _) => panic!("MKDIR {name}: {st:?}"),
    }
}

/// MOUNT of a subdirectory of a share: the longest export prefix in whole components,
/// then the rest resolved inside the share (NOENT, NOTDIR, no escape with `..`), through
/// the raw MOUNT protocol and through libnfs (`nfs-ls`/`nfs-cat` of subdirectory URLs).
#[test]
fn mount_of_a_subdirectory() {
    use dittofs_nfs::mount3::MountStat3;
    let srv = Server::start();
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    let a = mkdir_ok(&mut c, &root, "a", 0o755);
    let b = mkdir_ok(&mut c, &a, "b", 0o755);
    let f = c.create_file(&b, "f");
    assert_eq!(c.write_sync(&f, 0, b"hello from b\n"), NfsStat3::Ok);
    let _ = c.create_file(&root, "top");
    let private = mkdir_ok(&mut c, &root, "private", 0o700);
    mkdir_ok(&mut c, &private, "inner", 0o777);

    // the handle of /export/a/b is the directory's own handle, whatever the spelling
    for p in [
        &b"/export/a/b"[..],
        b"/export/a/b/",
        b"//export//a/./b//",
        b"export/a/b",
    ] {
        assert_eq!(
            mnt_path(&mut c, p),
            Ok(b.clone()),
            "{}",
            String::from_utf8_lossy(p)
        );
    }
    assert_eq!(mnt_path(&mut c, b"/export/"), Ok(root.clone()));
    // the mounted handle works: LOOKUP of f inside it
    let fh = mnt_path(&mut c, b"/export/a/b").unwrap();
    let l: LookupRes = c.call(
        PROGRAM,
        3,
        &LookupArgs {
            what: DirOpArgs3 {
                dir: fh,
                name: Filename3(b"f".to_vec()),
            },
        },
    );
    assert_eq!(l.status(), NfsStat3::Ok);
    // DUMP lists the path as requested; UMNT of that path removes it
    let dump = |c: &mut Client| -> Vec<Vec<u8>> {
        let d: dittofs_nfs::mount3::DumpRes = c.call(dittofs_nfs::mount3::PROGRAM, 2, &());
        d.mounts.into_iter().map(|m| m.directory.0).collect()
    };
    let listed = dump(&mut c);
    assert!(listed.contains(&b"/export/a/b/".to_vec()), "{listed:?}");
    assert!(listed.contains(&b"/export/a/b".to_vec()), "{listed:?}");
    let _: () = c.call(
        dittofs_nfs::mount3::PROGRAM,
        3,
        &dittofs_nfs::mount3::UmntArgs {
            dirpath: DirPath(b"/export/a/b/".to_vec()),
        },
    );
    let listed = dump(&mut c);
    assert!(!listed.contains(&b"/export/a/b/".to_vec()), "{listed:?}");
    assert!(listed.contains(&b"/export/a/b".to_vec()), "{listed:?}");

    // refusals
    let refused: &[(&[u8], MountStat3)] = &[
        (b"/export/a/b/f", MountStat3::NotDir),
        (b"/export/top/x", MountStat3::NotDir),
        (b"/export/nope", MountStat3::NoEnt),
        (b"/export/a/nope/b", MountStat3::NoEnt),
        (b"/exportx", MountStat3::NoEnt),
        (b"/exportx/a", MountStat3::NoEnt),
        (b"/", MountStat3::NoEnt),
        (b"/export/../export", MountStat3::NoEnt),
        (b"/export/a/../../", MountStat3::NoEnt),
        (b"/export/a/..", MountStat3::NoEnt),
        (b"/../export/a", MountStat3::NoEnt),
    ];
    for (p, want) in refused {
        assert_eq!(
            mnt_path(&mut c, p),
            Err(*want),
            "{}",
            String::from_utf8_lossy(p)
        );
    }
    let long = format!("/export/{}", "n".repeat(256));
    assert_eq!(
        mnt_path(&mut c, long.as_bytes()),
        Err(MountStat3::NameTooLong)
    );
    // resolved with the caller's credentials: another user cannot reach a directory
    // below one it may not search, root (squash none) can
    assert!(mnt_path(&mut c, b"/export/private/inner").is_ok());
    let mut other = Client::connect(srv.nfs_port);
    other.cred = (1000, 1000, Vec::new());
    assert_eq!(
        mnt_path(&mut other, b"/export/private/inner"),
        Err(MountStat3::Acces)
    );
    assert!(mnt_path(&mut other, b"/export/a/b").is_ok());

    // libnfs: nfs-ls of a subdirectory URL lists it, nfs-cat reads through one
    if !require_tool("nfs-ls") {
        return;
    }
    let run = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let ls = run(&["nfs-ls", &srv.url("/a/b")]);
    assert!(
        ls.contains(" f") || ls.lines().any(|l| l.ends_with('f')),
        "{ls}"
    );
    assert!(!ls.contains("top"), "{ls}");
    let ls = run(&["nfs-ls", &srv.url("/a")]);
    assert!(ls.lines().any(|l| l.ends_with(" b") || l == "b"), "{ls}");
    if require_tool("nfs-cat") {
        assert_eq!(run(&["nfs-cat", &srv.url("/a/b/f")]), "hello from b\n");
    }
    let fails = |url: String| {
        let out = Command::new("nfs-ls").arg(&url).output().unwrap();
        assert!(!out.status.success(), "{url}");
    };
    fails(srv.url("/nope"));
    fails(srv.url("/a/b/f"));
    fails(srv.url("/a/../.."));
}

/// A share restricted to other clients refuses its subdirectories too.
#[test]
fn mount_of_a_subdirectory_keeps_allowed_clients() {
    use dittofs_nfs::mount3::MountStat3;
    let mut srv = Server::start();
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    mkdir_ok(&mut c, &root, "a", 0o755);
    srv.stop();
    srv.extra_env = vec![(
        "DITTOFS_SHARES".into(),
        "[{name: /export, squash: none, allowed_clients: [\"10.9.9.9\"]}]".into(),
    )];
    srv.spawn();
    let mut c = Client::connect(srv.nfs_port);
    assert_eq!(mnt_path(&mut c, b"/export"), Err(MountStat3::Acces));
    assert_eq!(mnt_path(&mut c, b"/export/a"), Err(MountStat3::Acces));
    assert_eq!(mnt_path(&mut c, b"/export/nope"), Err(MountStat3::Acces));
}
