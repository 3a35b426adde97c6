//! A full disk, for real: the `dfs` binary runs with its data directory on a 64 MiB tmpfs
//! mounted in a mount namespace of its own (so nothing is left mounted whatever happens
//! to the test), driven over NFS by the raw RPC client:
//! - FILE_SYNC writes are acknowledged until the disk reaches its reserve, then WRITE,
//!   CREATE, MKDIR and SETATTR answer NFS3ERR_NOSPC (never NFS3ERR_IO);
//! - REMOVE works on the full disk and gives space back: writes resume, no restart;
//! - filled again, SIGKILLed and restarted on the full disk, the server starts, every
//!   acknowledged byte reads back, and the INV-02 audit is clean.
//!
//! Needs root (a tmpfs in a new mount namespace) and `unshare`/`nsenter` (util-linux):
//! missing either fails in CI and skips elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Client, Server};
use dittofs_nfs::nfs3::*;
use dittofs_proto::v1 as pb;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "disk-full-test-token-0123456789abcdef";
const PIECE: usize = 1 << 20;
/// Where the small writes that use up the last room go (past the 4 MiB of a file).
const TOPUP: u64 = 64 << 20;

/// A process holding a mount namespace with a tmpfs of `mib` MiB at `dir`.
struct Tmpfs {
    holder: Child,
}

impl Tmpfs {
    fn mount(dir: &std::path::Path, mib: u32) -> Tmpfs {
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={mib}m dittofs-test \"$0\" && echo ready && exec sleep 3600"
            ))
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "tmpfs not mounted");
        Tmpfs { holder }
    }

    /// The `nsenter` prefix that runs a command inside the namespace.
    fn enter(&self) -> Vec<std::ffi::OsString> {
        ["nsenter", "-t", &self.holder.id().to_string(), "-m", "--"]
            .iter()
            .map(Into::into)
            .collect()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn prerequisites() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tools = ["unshare", "nsenter"].iter().all(|t| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if root && tools {
        return true;
    }
    let why = "root and unshare/nsenter (util-linux) are needed to mount a tmpfs";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true: {why}");
    }
    eprintln!("SKIP: {why}");
    false
}

fn piece(file: u32, i: u64) -> Vec<u8> {
    common::pseudo_random(PIECE, u64::from(file) << 32 | i)
}

/// Files written so far: name -> (handle, pieces acknowledged).
type Written = BTreeMap<String, (NfsFh3, u64)>;

/// Writes 4 MiB files of 1 MiB FILE_SYNC pieces until a WRITE is refused; returns its
/// status. Every acknowledged piece is recorded in `written`.
fn fill(c: &mut Client, root: &NfsFh3, written: &mut Written, first: u32) -> NfsStat3 {
    for f in first.. {
        let name = format!("f{f}");
        let fh = match c.create(root, &name) {
            Res3::Ok(ok) => ok.obj.unwrap(),
            Res3::Fail(st, _) => return st,
        };
        written.insert(name.clone(), (fh.clone(), 0));
        for i in 0..4u64 {
            let st = c.write_sync(&fh, i * PIECE as u64, &piece(f, i));
            if st != NfsStat3::Ok {
                return st;
            }
            if let Some(e) = written.get_mut(&name) {
                e.1 = i + 1;
            }
        }
    }
    unreachable!()
}

fn read_back(c: &mut Client, written: &Written) {
    for (name, (fh, pieces)) in written {
        let f: u32 = name[1..].parse().unwrap();
        for i in 0..*pieces {
            let data = c.read_ok(fh, i * PIECE as u64, PIECE as u32);
            assert!(data[..] == piece(f, i)[..], "{name} piece {i} differs");
        }
    }
}

async fn audit_clean(port: u16) {
    let ch = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = pb::control_service_client::ControlServiceClient::with_interceptor(
        ch,
        |mut r: tonic::Request<()>| {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
            Ok(r)
        },
    );
    let job = c
        .run_audit(pb::RunAuditRequest {
            share: "/export".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = c
            .get_job(pb::GetJobRequest { id: job.id.clone() })
            .await
            .unwrap()
            .into_inner();
        if j.state != pb::JobState::Running as i32 {
            let Some(pb::job::Result::Audit(a)) = j.result else {
                panic!("audit: {j:?}")
            };
            assert_eq!(
                (a.delta, a.dangling_count, a.missing_count),
                (0, 0, 0),
                "audit not clean: {a:?}"
            );
            eprintln!(
                "audit clean: {} files, {} refs",
                a.total_files, a.total_refs
            );
            return;
        }
        assert!(Instant::now() < deadline, "audit did not finish: {j:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn a_full_disk_answers_nospc_frees_space_on_delete_and_restarts() {
    if !prerequisites() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(dir.path(), 64);
    let mut srv = Server::unstarted(vec![("DITTOFS_CONTROL_TOKEN".into(), TOKEN.into())]);
    srv.data = dir.path().join("data");
    srv.wrap = fs.enter();
    srv.spawn();
    let mut c = Client::connect(srv.nfs_port);
    let root = c.mount_root();
    let mut written = Written::new();

    // 1. full: NOSPC, never IO
    let st = fill(&mut c, &root, &mut written, 0);
    assert_eq!(st, NfsStat3::NoSpc, "the refused WRITE/CREATE");
    let acked: u64 = written.values().map(|(_, n)| n).sum();
    eprintln!("acknowledged {acked} MiB before the disk was full");
    assert!(acked >= 16, "only {acked} MiB fit on a 64 MiB disk");
    // small writes use up what is left above the reserve, then are refused too. (Room
    // comes back meanwhile: the flusher turns journal into chunks and deletes whole
    // journal segments, up to 1/16 of the disk each, so the bound is a quarter of the
    // disk, not what was left at the first refusal.)
    let (last, _) = written.values().last().unwrap().clone();
    let mut topped = 0u64;
    while c.write_sync(&last, TOPUP + topped * 4096, &[0xAB; 4096]) == NfsStat3::Ok {
        topped += 1;
        assert!(topped < 4096, "4 KiB writes never refused (16 MiB of them)");
    }
    eprintln!("{topped} more 4 KiB writes fit after the first refusal");
    assert!(matches!(
        c.create(&root, "more"),
        Res3::Fail(NfsStat3::NoSpc, _)
    ));
    let mk: MkdirRes = c.call(
        PROGRAM,
        9,
        &MkdirArgs {
            where_: DirOpArgs3 {
                dir: root.clone(),
                name: Filename3(b"d".to_vec()),
            },
            attributes: Sattr3::default(),
        },
    );
    assert_eq!(mk.status(), NfsStat3::NoSpc);
    let (fh0, _) = written["f0"].clone();
    let sa: SetattrRes = c.call(
        PROGRAM,
        2,
        &SetattrArgs {
            object: fh0,
            new_attributes: Sattr3 {
                mode: Some(0o600),
                ..Default::default()
            },
            guard: None,
        },
    );
    assert_eq!(sa.status(), NfsStat3::NoSpc);

    // 2. deletes work and give space back: writes resume without a restart
    let victims: Vec<String> = written.keys().take(written.len() / 2).cloned().collect();
    for v in &victims {
        let rm: RemoveRes = c.call(
            PROGRAM,
            12,
            &RemoveArgs {
                object: DirOpArgs3 {
                    dir: root.clone(),
                    name: Filename3(v.as_bytes().to_vec()),
                },
            },
        );
        assert_eq!(rm.status(), NfsStat3::Ok, "REMOVE {v} on a full disk");
        written.remove(v);
    }
    let t0 = Instant::now();
    let resumed = loop {
        match c.create(&root, "again") {
            Res3::Ok(ok) => break ok.obj.unwrap(),
            Res3::Fail(st, _) => {
                assert_eq!(st, NfsStat3::NoSpc);
                assert!(
                    t0.elapsed() < Duration::from_secs(15),
                    "15 s after the deletes the disk is still full"
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    };
    eprintln!("writes resumed {:?} after the deletes", t0.elapsed());
    assert_eq!(c.write_sync(&resumed, 0, &piece(999, 0)), NfsStat3::Ok);
    written.insert("f999".into(), (resumed, 1));

    // 3. full again, SIGKILL, restart on the full disk: every acknowledged byte is there
    let st = fill(&mut c, &root, &mut written, 1000);
    assert_eq!(st, NfsStat3::NoSpc);
    srv.crash();
    srv.spawn();
    let mut c = Client::connect(srv.nfs_port);
    read_back(&mut c, &written);
    // (read in pieces: one READ returns at most the server's rtmax, 1 MiB)
    let mut at = 0;
    while at < topped * 4096 {
        let n = (topped * 4096 - at).min(PIECE as u64);
        let data = c.read_ok(&last, TOPUP + at, n as u32);
        assert_eq!(
            data.len() as u64,
            n,
            "short read at {at} of the 4 KiB writes"
        );
        assert!(
            data.iter().all(|&b| b == 0xAB),
            "4 KiB writes at {at}: wrong bytes"
        );
        at += n;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(audit_clean(srv.control_port));
}
