//! The gRPC control API of the real `dfs` binary: authentication, CRUD with its error
//! codes, declarative apply (idempotence, stale generations), persistence across a
//! restart, and local GC (dry run vs. real; live data intact, orphaned chunks collected)
//! with content written and read back through libnfs (`nfs-cp`, `nfs-cat`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use dittofs_proto::v1 as pb;
use dittofs_proto::v1::control_service_client::ControlServiceClient;
use std::process::Command;
use std::time::Duration;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type AuthFn =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;
type Client = ControlServiceClient<InterceptedService<Channel, AuthFn>>;

async fn client(port: u16, token: Option<String>) -> Client {
    let ch = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let f: AuthFn = Box::new(move |mut r: tonic::Request<()>| {
        if let Some(t) = &token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        Ok(r)
    });
    ControlServiceClient::with_interceptor(ch, f)
}

fn token(s: &common::Server) -> String {
    std::fs::read_to_string(s.data.join("control-token"))
        .unwrap()
        .trim()
        .to_owned()
}

fn need_libnfs() -> bool {
    let ok = Command::new("nfs-cp").arg("--help").output().is_ok();
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true: libnfs-utils (nfs-cp) is required");
    }
    ok
}

fn empty_server() -> common::Server {
    common::Server::start_with(vec![
        ("DITTOFS_METADATA_STORES".into(), "[]".into()),
        ("DITTOFS_BLOCK_STORES".into(), "{local: []}".into()),
        ("DITTOFS_SHARES".into(), "[]".into()),
    ])
}

fn share(name: &str, meta: &str, local: &str) -> pb::Share {
    pb::Share {
        name: name.into(),
        metadata: meta.into(),
        local: local.into(),
        squash: "none".into(),
        ..Default::default()
    }
}

fn local(name: &str) -> pb::BlockStore {
    pb::BlockStore {
        name: name.into(),
        kind: pb::BlockStoreKind::Local as i32,
        r#type: "fs".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn unauthenticated_and_wrong_token_calls_are_refused() {
    let s = common::Server::start();
    let mut none = client(s.control_port, None).await;
    let e = none.get_status(pb::GetStatusRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let mut wrong = client(s.control_port, Some("x".repeat(64))).await;
    let e = wrong
        .list_shares(pb::ListSharesRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // A refused mutation changes nothing.
    let e = wrong
        .remove_share(pb::RemoveShareRequest {
            name: "/export".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut good = client(s.control_port, Some(token(&s))).await;
    let st = good
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.shares.len(), 1);
    assert_eq!(st.shares[0].name, "/export");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.data.join("control-token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "token file must not be readable by others");
}

#[tokio::test]
async fn crud_errors_apply_and_persistence() {
    let mut s = empty_server();
    let mut c = client(s.control_port, Some(token(&s))).await;
    for (n, t) in [("meta-a", "sled"), ("meta-b", "memory")] {
        c.add_metadata_store(pb::AddMetadataStoreRequest {
            store: Some(pb::MetadataStore {
                name: n.into(),
                r#type: t.into(),
                path: String::new(),
            }),
        })
        .await
        .unwrap();
    }
    let e = c
        .add_metadata_store(pb::AddMetadataStoreRequest {
            store: Some(pb::MetadataStore {
                name: "meta-a".into(),
                r#type: "sled".into(),
                path: String::new(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    let e = c
        .add_metadata_store(pb::AddMetadataStoreRequest {
            store: Some(pb::MetadataStore {
                name: "../evil".into(),
                r#type: "sled".into(),
                path: String::new(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = c
        .add_metadata_store(pb::AddMetadataStoreRequest {
            store: Some(pb::MetadataStore {
                name: "x".into(),
                r#type: "oracle".into(),
                path: String::new(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    for n in ["local-1", "local-2"] {
        c.add_block_store(pb::AddBlockStoreRequest {
            store: Some(local(n)),
        })
        .await
        .unwrap();
    }
    c.create_share(pb::CreateShareRequest {
        share: Some(share("/a", "meta-a", "local-1")),
    })
    .await
    .unwrap();
    c.create_share(pb::CreateShareRequest {
        share: Some(share("/b", "meta-a", "local-2")),
    })
    .await
    .unwrap();
    let e = c
        .create_share(pb::CreateShareRequest {
            share: Some(share("/c", "nope", "local-1")),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("nope"), "{}", e.message());
    let e = c
        .create_share(pb::CreateShareRequest {
            share: Some(share("relative", "meta-a", "local-1")),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .remove_metadata_store(pb::RemoveMetadataStoreRequest {
            name: "meta-a".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("in use by share"), "{}", e.message());
    let e = c
        .remove_block_store(pb::RemoveBlockStoreRequest {
            name: "local-2".into(),
            kind: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    c.remove_metadata_store(pb::RemoveMetadataStoreRequest {
        name: "meta-b".into(),
    })
    .await
    .unwrap();
    let e = c
        .get_share(pb::GetShareRequest { name: "/zz".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Editing: read-only takes effect; moving a share to another store is refused.
    let sh = c
        .edit_share(pb::EditShareRequest {
            name: "/b".into(),
            read_only: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(sh.read_only);

    // Declarative apply: re-applying the current state changes nothing; an older
    // generation is refused; a share move is a precondition failure.
    let cur = c
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    let r = c
        .apply_config(pb::ApplyConfigRequest {
            state: Some(cur.clone()),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.changes.is_empty(), "{:?}", r.changes);
    let mut old = cur.clone();
    old.generation = 1;
    let e = c
        .apply_config(pb::ApplyConfigRequest {
            state: Some(old),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    let mut moved = cur.clone();
    moved.generation = cur.generation + 1;
    moved.shares[0].local = "local-2".into();
    let e = c
        .apply_config(pb::ApplyConfigRequest {
            state: Some(moved),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let mut dry = cur.clone();
    dry.generation = 0;
    dry.shares.retain(|s| s.name != "/b");
    let r = c
        .apply_config(pb::ApplyConfigRequest {
            state: Some(dry),
            dry_run: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.changes.len(), 1);
    assert_eq!(r.changes[0].action, "removed");
    assert_eq!(
        c.list_shares(pb::ListSharesRequest {})
            .await
            .unwrap()
            .into_inner()
            .shares
            .len(),
        2,
        "dry run applied nothing"
    );

    // Restart: same configuration, served before anyone calls the API.
    assert_eq!(s.stop(), Some(0));
    s.spawn();
    let mut c = client(s.control_port, Some(token(&s))).await;
    let after = c
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after, cur);
    if need_libnfs() {
        let out = Command::new("nfs-ls")
            .arg(format!(
                "nfs://127.0.0.1/a?nfsport={p}&mountport={p}&version=3",
                p = s.nfs_port
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

async fn wait_job(c: &mut Client, id: &str) -> pb::Job {
    for _ in 0..600 {
        let j = c
            .get_job(pb::GetJobRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner();
        if j.state != pb::JobState::Running as i32 {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn gc_collects_orphans_and_keeps_live_data() {
    if !need_libnfs() {
        return;
    }
    let s = common::Server::start();
    let mut c = client(s.control_port, Some(token(&s))).await;
    // Live data: a 3 MiB file written over NFS and flushed into chunks.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    let data: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    let url = s.url("/live.bin");
    let st = Command::new("nfs-cp").arg(&src).arg(&url).status().unwrap();
    assert!(st.success());
    let chunks = s.data.join("blocks/default/blocks");
    let count = |d: &std::path::Path| walkdir_count(d);
    for _ in 0..100 {
        if count(&chunks) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = count(&chunks);
    assert!(live > 0, "the flusher did not chunk the file");
    // An orphaned chunk (a crash leftover), old enough to be collected.
    let orphan = [7u8; 32];
    let hex = hex::encode(orphan);
    let dir = chunks.join(&hex[..2]).join(&hex[2..4]);
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join(&hex)).unwrap();
    std::io::Write::write_all(&mut &f, b"garbage").unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
        .unwrap();

    let run = |dry: bool| pb::RunGcRequest {
        share: "/export".into(),
        dry_run: dry,
        grace_seconds: Some(1),
    };
    let j = c.run_gc(run(true)).await.unwrap().into_inner();
    let j = wait_job(&mut c, &j.id).await;
    let Some(pb::job::Result::Gc(g)) = j.result else {
        panic!("{j:?}")
    };
    assert_eq!((g.deleted_chunks, g.dry_run), (1, true), "{g:?}");
    assert!(dir.join(&hex).exists(), "dry run deleted");
    let j = c.run_gc(run(false)).await.unwrap().into_inner();
    let j = wait_job(&mut c, &j.id).await;
    let Some(pb::job::Result::Gc(g)) = j.result else {
        panic!("{j:?}")
    };
    assert_eq!(g.deleted_chunks, 1, "{g:?}");
    assert_eq!(g.deleted_bytes, 7);
    assert_eq!(g.outcome, "succeeded");
    assert!(!dir.join(&hex).exists());
    assert_eq!(count(&chunks), live, "a live chunk was collected");
    let last = c
        .gc_status(pb::GcStatusRequest {
            share: "/export".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.run_id, g.run_id);
    assert!(
        s.data
            .join("blocks/default/gc-state/last-run.json")
            .exists()
    );
    // Content intact after GC.
    let out = Command::new("nfs-cat").arg(&url).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout == data, "content changed after GC");
    // Audit: delta 0, persisted.
    let j = c
        .run_audit(pb::RunAuditRequest {
            share: "/export".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let j = wait_job(&mut c, &j.id).await;
    let Some(pb::job::Result::Audit(a)) = j.result else {
        panic!("{j:?}")
    };
    assert_eq!((a.delta, a.total_files), (0, 1), "{a:?}");
    assert_eq!(
        (a.missing_count, a.chunks_checked),
        (0, live as u64),
        "{a:?}"
    );
    assert!(
        s.data
            .join("blocks/default/audit-state/last-inv02.json")
            .exists()
    );
    let e = c
        .run_gc(pb::RunGcRequest {
            share: "/nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

fn walkdir_count(d: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(d) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { walkdir_count(&p) } else { 1 }
        })
        .sum()
}

async fn audit(c: &mut Client, verify: bool) -> pb::AuditReport {
    let j = c
        .run_audit(pb::RunAuditRequest {
            share: "/export".into(),
            verify,
        })
        .await
        .unwrap()
        .into_inner();
    let j = wait_job(c, &j.id).await;
    let Some(pb::job::Result::Audit(a)) = j.result else {
        panic!("{j:?}")
    };
    a
}

/// Chunk files under `d`, by path.
fn chunk_files(d: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![d.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path());
            }
        }
    }
    out
}

/// Copies `data` to `name` on the share and waits until the flusher has chunked it;
/// returns the chunk files it added.
async fn put_chunked(s: &common::Server, name: &str, data: &[u8]) -> Vec<std::path::PathBuf> {
    let chunks = s.data.join("blocks/default/blocks");
    let before = chunk_files(&chunks);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::write(&src, data).unwrap();
    let st = Command::new("nfs-cp")
        .arg(&src)
        .arg(s.url(name))
        .status()
        .unwrap();
    assert!(st.success());
    for _ in 0..200 {
        let new: Vec<_> = chunk_files(&chunks).difference(&before).cloned().collect();
        let bytes: u64 = new.iter().map(|p| p.metadata().unwrap().len()).sum();
        if bytes == data.len() as u64 {
            return new;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} was not chunked");
}

/// The audit checks that every referenced chunk exists (not only that refcounts add up):
/// a chunk file deleted by hand is reported with the file that needs it; a chunk
/// overwritten with other bytes of the same length is found by `verify` only.
#[tokio::test]
async fn audit_reports_chunks_that_no_tier_holds() {
    if !need_libnfs() {
        return;
    }
    let s = common::Server::start();
    let mut c = client(s.control_port, Some(token(&s))).await;
    let data = |seed: u32| -> Vec<u8> {
        (0..2u32 << 20)
            .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    };
    let lost = put_chunked(&s, "/lost.bin", &data(1)).await;
    let bent = put_chunked(&s, "/bent.bin", &data(2)).await;
    // (a flush stores its chunks before it commits the block list that names them: the
    // audit sees both files once both commits are done)
    let mut a = audit(&mut c, false).await;
    for _ in 0..50 {
        if a.chunks_checked as usize == lost.len() + bent.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        a = audit(&mut c, false).await;
    }
    assert_eq!(a.missing_count, 0, "{a:?}");
    assert_eq!(a.chunks_checked as usize, lost.len() + bent.len(), "{a:?}");

    std::fs::remove_file(&lost[0]).unwrap();
    let len = bent[0].metadata().unwrap().len() as usize;
    std::fs::write(&bent[0], vec![0x5a; len]).unwrap();
    let a = audit(&mut c, false).await;
    let listed: Vec<_> = a
        .missing
        .iter()
        .map(|m| (m.kind.as_str(), m.files.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![("missing", vec!["/lost.bin".to_owned()])],
        "{a:?}"
    );
    assert_eq!(a.missing_count, 1);
    eprintln!(
        "audit: {} chunks checked, missing: {listed:?}",
        a.chunks_checked
    );

    let a = audit(&mut c, true).await;
    let mut listed: Vec<_> = a
        .missing
        .iter()
        .map(|m| (m.kind.as_str(), m.files.clone()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("corrupt", vec!["/bent.bin".to_owned()]),
            ("missing", vec!["/lost.bin".to_owned()])
        ],
        "{a:?}"
    );
    assert!(a.verified);
    eprintln!(
        "audit --verify: {} chunks checked, missing: {listed:?}",
        a.chunks_checked
    );
}
