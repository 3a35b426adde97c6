//! The real `dfsctl` binary against a fake in-process ControlService.
//!
//! The fake answers a handful of calls with canned data (and records what it was sent);
//! everything else is UNIMPLEMENTED. It checks the client side only: the bearer token,
//! status-code -> exit-code mapping, output formats, job following, contexts, and that
//! refused commands never reach the server. The end-to-end test against the real `dfs`
//! lives elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dittofs_proto::v1 as pb;
use pb::control_service_server::{ControlService, ControlServiceServer};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::Output;
use std::sync::{Arc, Mutex};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

const TOKEN: &str = "sekret-token";

#[derive(Default)]
struct Seen {
    auth: Vec<String>,
    empty_trash_calls: u32,
    created: Vec<pb::Share>,
    edits: Vec<pb::EditShareRequest>,
    applied: Vec<pb::ApplyConfigRequest>,
    gc_requests: Vec<pb::RunGcRequest>,
    block_stores: Vec<pb::BlockStore>,
}

#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Seen>>,
}

fn share(name: &str) -> pb::Share {
    pb::Share {
        name: name.into(),
        metadata: "default".into(),
        local: "default".into(),
        remote: String::new(),
        durability: "local".into(),
        read_only: false,
        squash: "root_to_anonymous".into(),
        anon_uid: 65534,
        anon_gid: 65534,
        allowed_clients: vec!["*".into()],
        secure: false,
        root_mode: 0o777,
        chunking: None,
        trash: Some(pb::TrashConfig {
            enabled: true,
            retention_days: 7,
            max_size_bytes: 1 << 30,
            exclude: vec!["*.tmp".into()],
        }),
    }
}

fn desired_state() -> pb::DesiredState {
    pb::DesiredState {
        generation: 5,
        metadata_stores: vec![pb::MetadataStore {
            name: "default".into(),
            r#type: "sled".into(),
            path: String::new(),
        }],
        block_stores: vec![
            pb::BlockStore {
                name: "default".into(),
                kind: pb::BlockStoreKind::Local as i32,
                r#type: "fs".into(),
                path: String::new(),
                s3: None,
                max_size_bytes: 0,
                read_timeout_seconds: 0,
            },
            pb::BlockStore {
                name: "archive".into(),
                kind: pb::BlockStoreKind::Remote as i32,
                r#type: "s3".into(),
                path: String::new(),
                s3: Some(pb::S3Config {
                    bucket: "b".into(),
                    region: "us-east-1".into(),
                    endpoint: "http://127.0.0.1:8333".into(),
                    prefix: "p".into(),
                    force_path_style: true,
                    access_key_id: "AK".into(),
                    secret_access_key: "SK".into(),
                    create_bucket: false,
                }),
                max_size_bytes: 0,
                read_timeout_seconds: 0,
            },
        ],
        shares: vec![share("/export"), {
            let mut s = share("/docs");
            s.remote = "archive".into();
            s.root_mode = 0o755;
            s.chunking = Some(pb::Chunking {
                min: 1 << 20,
                avg: 4 << 20,
                max: 16 << 20,
            });
            s
        }],
        adapters: Some(pb::Adapters {
            nfs: Some(pb::NfsAdapter {
                enabled: true,
                bind: "0.0.0.0".into(),
                port: 12049,
                portmapper_enabled: false,
                portmapper_port: 10111,
            }),
        }),
        identity: None,
    }
}

fn job(
    id: &str,
    kind: &str,
    share: &str,
    state: pb::JobState,
    phase: &str,
    done: u64,
    total: u64,
) -> pb::Job {
    pb::Job {
        id: id.into(),
        kind: kind.into(),
        share: share.into(),
        state: state as i32,
        phase: phase.into(),
        done,
        total,
        error: String::new(),
        result: None,
    }
}

fn gc_summary() -> pb::GcRunSummary {
    pb::GcRunSummary {
        run_id: "run-42".into(),
        store: "default".into(),
        shares: vec!["/export".into(), "/docs".into()],
        dry_run: false,
        started_at: "2024-05-01T10:00:00Z".into(),
        duration_ms: 1500,
        grace_seconds: 1800,
        live_chunks: 1000,
        scanned_chunks: 1200,
        deleted_chunks: 150,
        deleted_bytes: 600 << 20,
        kept_in_grace: 50,
        errors: 0,
        outcome: "succeeded".into(),
        remote: None,
    }
}

fn audit(share: &str, delta: i64) -> pb::AuditReport {
    pb::AuditReport {
        share: share.into(),
        started_at: "2024-05-01T11:00:00Z".into(),
        duration_ms: 20,
        total_files: 10,
        total_refs: 40,
        total_refcount: (40 + delta) as u64,
        delta,
        dangling_count: u64::from(delta != 0),
        dangling: if delta != 0 {
            vec![pb::DanglingRef {
                hash: "ab12".into(),
                kind: "refcount_mismatch".into(),
                refs: 1,
                refcount: 3,
            }]
        } else {
            vec![]
        },
        ..Default::default()
    }
}

/// An audit whose refcounts add up but one referenced chunk is on no tier.
fn audit_missing(share: &str) -> pb::AuditReport {
    pb::AuditReport {
        chunks_checked: 12,
        missing_count: 1,
        missing: vec![pb::MissingChunk {
            hash: "cd34".into(),
            kind: "missing".into(),
            files: vec!["/a/b.bin".into()],
        }],
        ..audit(share, 0)
    }
}

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented("not in the fake"))
}

type JobStream = Pin<Box<dyn Stream<Item = Result<pb::Job, Status>> + Send>>;

#[tonic::async_trait]
impl ControlService for Fake {
    async fn apply_config(
        &self,
        r: Request<pb::ApplyConfigRequest>,
    ) -> Result<Response<pb::ApplyConfigResponse>, Status> {
        let req = r.into_inner();
        let generation = req.state.as_ref().map(|s| s.generation).unwrap_or(0);
        let changes = if req.state.as_ref()
            == Some(&{
                let mut d = desired_state();
                d.generation = generation;
                d
            }) {
            vec![]
        } else {
            vec![pb::Change {
                kind: "share".into(),
                name: "/new".into(),
                action: "added".into(),
                detail: String::new(),
            }]
        };
        let dry_run = req.dry_run;
        self.seen.lock().unwrap().applied.push(req);
        Ok(Response::new(pb::ApplyConfigResponse {
            applied_generation: if dry_run { 5 } else { generation },
            changes,
            restart_required: false,
        }))
    }
    async fn get_config(
        &self,
        _: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::DesiredState>, Status> {
        Ok(Response::new(desired_state()))
    }
    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        Ok(Response::new(pb::StatusResponse {
            version: "9.9.9-fake".into(),
            applied_generation: 5,
            data_dir: "/var/lib/dittofs".into(),
            started_at_unix: 1_700_000_000,
            shares: vec![pb::ShareStatus {
                name: "/export".into(),
                share_id: 1,
                health: pb::Health::Ok as i32,
                metadata: "default".into(),
                local: "default".into(),
                ..Default::default()
            }],
            stores: vec![pb::StoreStatus {
                name: "default".into(),
                kind: "local".into(),
                r#type: "fs".into(),
                health: pb::Health::Ok as i32,
                used_by: vec!["/export".into()],
                bytes_used: 5 << 30,
                bytes_available: 100 << 30,
                ..Default::default()
            }],
            adapters: vec![pb::AdapterStatus {
                name: "nfs".into(),
                enabled: true,
                bind: "0.0.0.0".into(),
                port: 12049,
                running: true,
            }],
            clients: vec![pb::ClientInfo {
                address: "10.0.0.7:812".into(),
                protocol: "nfs3".into(),
                connected_at_unix: 1_700_000_100,
                calls: 42,
            }],
        }))
    }
    async fn add_metadata_store(
        &self,
        _: Request<pb::AddMetadataStoreRequest>,
    ) -> Result<Response<pb::MetadataStore>, Status> {
        unimplemented()
    }
    async fn list_metadata_stores(
        &self,
        _: Request<pb::ListMetadataStoresRequest>,
    ) -> Result<Response<pb::ListMetadataStoresResponse>, Status> {
        unimplemented()
    }
    async fn remove_metadata_store(
        &self,
        _: Request<pb::RemoveMetadataStoreRequest>,
    ) -> Result<Response<pb::RemoveResponse>, Status> {
        Err(Status::failed_precondition(
            "metadata store \"default\" is used by share \"/export\"",
        ))
    }
    async fn add_block_store(
        &self,
        r: Request<pb::AddBlockStoreRequest>,
    ) -> Result<Response<pb::BlockStore>, Status> {
        let store = r.into_inner().store.unwrap_or_default();
        self.seen.lock().unwrap().block_stores.push(store.clone());
        Ok(Response::new(store))
    }
    async fn list_block_stores(
        &self,
        _: Request<pb::ListBlockStoresRequest>,
    ) -> Result<Response<pb::ListBlockStoresResponse>, Status> {
        Ok(Response::new(pb::ListBlockStoresResponse {
            stores: desired_state().block_stores,
        }))
    }
    async fn remove_block_store(
        &self,
        _: Request<pb::RemoveBlockStoreRequest>,
    ) -> Result<Response<pb::RemoveResponse>, Status> {
        unimplemented()
    }
    async fn create_share(
        &self,
        r: Request<pb::CreateShareRequest>,
    ) -> Result<Response<pb::Share>, Status> {
        let s = r.into_inner().share.unwrap_or_default();
        if s.name == "/export" {
            return Err(Status::already_exists("share \"/export\" exists"));
        }
        self.seen.lock().unwrap().created.push(s.clone());
        Ok(Response::new(s))
    }
    async fn edit_share(
        &self,
        r: Request<pb::EditShareRequest>,
    ) -> Result<Response<pb::Share>, Status> {
        let req = r.into_inner();
        let name = req.name.clone();
        self.seen.lock().unwrap().edits.push(req);
        Ok(Response::new(share(&name)))
    }
    async fn get_share(
        &self,
        r: Request<pb::GetShareRequest>,
    ) -> Result<Response<pb::Share>, Status> {
        let name = r.into_inner().name;
        if name == "/missing" {
            return Err(Status::not_found("share \"/missing\" does not exist"));
        }
        Ok(Response::new(share(&name)))
    }
    async fn list_shares(
        &self,
        _: Request<pb::ListSharesRequest>,
    ) -> Result<Response<pb::ListSharesResponse>, Status> {
        Ok(Response::new(pb::ListSharesResponse {
            shares: desired_state().shares,
        }))
    }
    async fn remove_share(
        &self,
        _: Request<pb::RemoveShareRequest>,
    ) -> Result<Response<pb::RemoveResponse>, Status> {
        unimplemented()
    }
    async fn run_gc(&self, r: Request<pb::RunGcRequest>) -> Result<Response<pb::Job>, Status> {
        let req = r.into_inner();
        let share = req.share.clone();
        self.seen.lock().unwrap().gc_requests.push(req);
        Ok(Response::new(job(
            "gc-1",
            "gc",
            &share,
            pb::JobState::Running,
            "",
            0,
            0,
        )))
    }
    async fn gc_status(
        &self,
        _: Request<pb::GcStatusRequest>,
    ) -> Result<Response<pb::GcRunSummary>, Status> {
        Ok(Response::new(gc_summary()))
    }
    async fn remote_status(
        &self,
        r: Request<pb::RemoteStatusRequest>,
    ) -> Result<Response<pb::RemoteStatusResponse>, Status> {
        let r = r.into_inner();
        if !r.name.is_empty() && r.name != "archive" {
            return Err(Status::not_found(format!(
                "remote block store {:?} does not exist",
                r.name
            )));
        }
        Ok(Response::new(pb::RemoteStatusResponse {
            remotes: vec![pb::RemoteTierStatus {
                name: "archive".into(),
                identity: "s3://b/p@http://127.0.0.1:8333".into(),
                shares: vec!["/docs".into()],
                pending_chunks: 3,
                uploaded_chunks: 10,
                uploaded_bytes: 40 << 20,
                last_upload_error: "remote store unavailable: connection refused".into(),
                scan: r.scan.then_some(pb::RemoteScan {
                    objects: 10,
                    bytes: 40 << 20,
                }),
                ..Default::default()
            }],
            locals: vec![pb::LocalTierStatus {
                name: "default".into(),
                used_bytes: 5 << 20,
                max_size_bytes: 1 << 30,
                evicting: true,
                evicted_chunks: 2,
                evicted_bytes: 8 << 20,
                dirty_bytes: 0,
            }],
        }))
    }
    async fn run_audit(
        &self,
        r: Request<pb::RunAuditRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let share = r.into_inner().share;
        let id = if share == "/bad" {
            "audit-bad"
        } else {
            "audit-1"
        };
        Ok(Response::new(job(
            id,
            "audit",
            &share,
            pb::JobState::Running,
            "scan",
            0,
            0,
        )))
    }
    async fn last_audit(
        &self,
        r: Request<pb::LastAuditRequest>,
    ) -> Result<Response<pb::AuditReport>, Status> {
        let share = r.into_inner().share;
        if share == "/lost" {
            return Ok(Response::new(audit_missing(&share)));
        }
        Ok(Response::new(audit(&share, 2)))
    }
    async fn get_job(&self, _: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        unimplemented()
    }
    type WatchJobStream = JobStream;
    async fn watch_job(
        &self,
        r: Request<pb::GetJobRequest>,
    ) -> Result<Response<JobStream>, Status> {
        let id = r.into_inner().id;
        let running = pb::JobState::Running;
        let updates = match id.as_str() {
            "gc-1" => {
                let mut last = job(
                    "gc-1",
                    "gc",
                    "/export",
                    pb::JobState::Succeeded,
                    "sweep",
                    4,
                    4,
                );
                last.result = Some(pb::job::Result::Gc(gc_summary()));
                vec![
                    job("gc-1", "gc", "/export", running, "mark", 1, 0),
                    job("gc-1", "gc", "/export", running, "sweep", 2, 4),
                    last,
                ]
            }
            "audit-1" => {
                let mut last = job(
                    "audit-1",
                    "audit",
                    "/export",
                    pb::JobState::Succeeded,
                    "scan",
                    9,
                    9,
                );
                last.result = Some(pb::job::Result::Audit(audit("/export", 0)));
                vec![
                    job("audit-1", "audit", "/export", running, "scan", 3, 9),
                    last,
                ]
            }
            "audit-bad" => {
                let mut last = job(
                    "audit-bad",
                    "audit",
                    "/bad",
                    pb::JobState::Failed,
                    "scan",
                    0,
                    0,
                );
                last.error = "metadata store \"m\" failed: disk on fire".into();
                vec![last]
            }
            _ => return Err(Status::not_found(format!("job {id:?} does not exist"))),
        };
        let stream = tokio_stream::iter(updates.into_iter().map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }
    async fn list_trash(
        &self,
        _: Request<pb::ListTrashRequest>,
    ) -> Result<Response<pb::ListTrashResponse>, Status> {
        Ok(Response::new(pb::ListTrashResponse {
            items: vec![pb::TrashItem {
                path: "#recycle/report.txt".into(),
                original_path: "/report.txt".into(),
                kind: "file".into(),
                size: 2048,
                deleted_at: "2024-05-01T09:00:00Z".into(),
                deleted_at_unix: 1_714_554_000,
            }],
            truncated: true,
        }))
    }
    async fn restore_trash(
        &self,
        _: Request<pb::RestoreTrashRequest>,
    ) -> Result<Response<pb::RestoreTrashResponse>, Status> {
        unimplemented()
    }
    async fn trash_status(
        &self,
        _: Request<pb::TrashStatusRequest>,
    ) -> Result<Response<pb::TrashStatusResponse>, Status> {
        unimplemented()
    }
    async fn empty_trash(
        &self,
        r: Request<pb::EmptyTrashRequest>,
    ) -> Result<Response<pb::EmptyTrashResponse>, Status> {
        assert!(r.into_inner().force, "dfsctl must send force = true");
        self.seen.lock().unwrap().empty_trash_calls += 1;
        Ok(Response::new(pb::EmptyTrashResponse {
            items_removed: 3,
            bytes_freed: 4096,
        }))
    }
    // The identity calls are tested against the real server (e2e/control).
    async fn create_user(
        &self,
        _: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        unimplemented()
    }
    async fn get_user(&self, _: Request<pb::GetUserRequest>) -> Result<Response<pb::User>, Status> {
        unimplemented()
    }
    async fn list_users(
        &self,
        _: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        unimplemented()
    }
    async fn edit_user(
        &self,
        _: Request<pb::EditUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        unimplemented()
    }
    async fn set_password(
        &self,
        _: Request<pb::SetPasswordRequest>,
    ) -> Result<Response<pb::User>, Status> {
        unimplemented()
    }
    async fn remove_user(
        &self,
        _: Request<pb::RemoveUserRequest>,
    ) -> Result<Response<pb::RemoveResponse>, Status> {
        unimplemented()
    }
    async fn create_group(
        &self,
        _: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        unimplemented()
    }
    async fn list_groups(
        &self,
        _: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        unimplemented()
    }
    async fn edit_group_members(
        &self,
        _: Request<pb::EditGroupMembersRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        unimplemented()
    }
    async fn remove_group(
        &self,
        _: Request<pb::RemoveGroupRequest>,
    ) -> Result<Response<pb::RemoveResponse>, Status> {
        unimplemented()
    }
    async fn grant_share_permission(
        &self,
        _: Request<pb::GrantSharePermissionRequest>,
    ) -> Result<Response<pb::SharePermissions>, Status> {
        unimplemented()
    }
    async fn revoke_share_permission(
        &self,
        _: Request<pb::RevokeSharePermissionRequest>,
    ) -> Result<Response<pb::SharePermissions>, Status> {
        unimplemented()
    }
    async fn get_share_permissions(
        &self,
        _: Request<pb::GetSharePermissionsRequest>,
    ) -> Result<Response<pb::SharePermissions>, Status> {
        unimplemented()
    }
    async fn set_share_default_level(
        &self,
        _: Request<pb::SetShareDefaultLevelRequest>,
    ) -> Result<Response<pb::SharePermissions>, Status> {
        unimplemented()
    }
}

/// Starts the fake on 127.0.0.1:0; the server checks the bearer token.
async fn start() -> (SocketAddr, Arc<Mutex<Seen>>) {
    let fake = Fake::default();
    let seen = fake.seen.clone();
    let seen_auth = seen.clone();
    let svc = ControlServiceServer::with_interceptor(fake, move |req: Request<()>| {
        let auth = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        seen_auth.lock().unwrap().auth.push(auth.clone());
        if auth == format!("Bearer {TOKEN}") {
            Ok(req)
        } else {
            Err(Status::unauthenticated("invalid bearer token"))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, seen)
}

/// Runs dfsctl with a clean environment rooted in `home`.
async fn dfsctl(home: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_dfsctl"));
    cmd.args(args)
        .env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .stdin(std::process::Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().await.unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `--server ADDR --token TOKEN` followed by `args`.
fn with_auth<'a>(server: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--server", server, "--token", TOKEN];
    v.extend_from_slice(args);
    v
}

#[tokio::test]
async fn token_arrives_and_json_parses() {
    let (addr, seen) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string(); // host:port without a scheme
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["status", "-o", "json"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["version"], "9.9.9-fake");
    assert_eq!(j["stores"][0]["bytes_used"], 5u64 << 30);
    assert_eq!(j["clients"][0]["connected_at"], "2023-11-14T22:15:00Z");
    assert!(
        seen.lock()
            .unwrap()
            .auth
            .iter()
            .all(|a| a == &format!("Bearer {TOKEN}"))
    );

    // Text status and the http:// form of --server; token from the environment.
    let url = format!("http://{addr}");
    let o = dfsctl(
        home.path(),
        &["status", "--server", &url],
        &[("DFSCTL_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("version:             9.9.9-fake"), "{text}");
    assert!(text.contains("5.0 GiB"), "{text}");
    assert!(text.contains("nfs3"), "{text}");
}

#[tokio::test]
async fn lists_are_json_arrays_and_yaml() {
    let (addr, _) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["share", "list", "-o", "json"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let arr = j.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[1]["name"], "/docs");
    assert_eq!(arr[1]["root_mode"], "0755");
    assert_eq!(arr[1]["chunking"]["max"], 16 << 20);

    let o = dfsctl(home.path(), &with_auth(&server, &["share", "list"]), &[]).await;
    let text = stdout(&o);
    assert!(text.starts_with("NAME     METADATA"), "{text}");
    assert!(
        text.contains("/docs    default   default  archive"),
        "{text}"
    );

    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["share", "show", "/docs", "-o", "yaml"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let y: serde_yaml::Value = serde_yaml::from_str(&stdout(&o)).unwrap();
    assert_eq!(y["name"], "/docs");

    // Secrets are masked in block store listings.
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["store", "block", "list", "-o", "json"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j[1]["s3"]["secret_access_key"], "***");
    assert_eq!(j[1]["kind"], "remote");
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["store", "block", "list"]),
        &[],
    )
    .await;
    assert!(
        stdout(&o).contains("s3://b/p (us-east-1, http://127.0.0.1:8333, path-style)"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("SK"));

    // Trash list: an object with `truncated`.
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["trash", "list", "/docs", "-o", "json"]),
        &[],
    )
    .await;
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["truncated"], true);
    assert_eq!(j["items"][0]["path"], "#recycle/report.txt");
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["trash", "list", "/docs"]),
        &[],
    )
    .await;
    assert!(stdout(&o).contains("truncated"), "{}", stdout(&o));
}

#[tokio::test]
async fn status_codes_map_to_exit_codes() {
    let (addr, _) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();

    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["share", "show", "/missing"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 3);
    assert_eq!(
        stderr(&o).trim(),
        "dfsctl: share \"/missing\" does not exist"
    );
    assert!(stdout(&o).is_empty());

    let o = dfsctl(
        home.path(),
        &["--server", &server, "--token", "wrong", "share", "list"],
        &[],
    )
    .await;
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid bearer token"),
        "{}",
        stderr(&o)
    );

    // An empty token file is a usage error (2), not a call without a token.
    let o = dfsctl(
        home.path(),
        &[
            "--server",
            &server,
            "--token-file",
            "/dev/null",
            "share",
            "list",
        ],
        &[("DFSCTL_TOKEN", "")],
    )
    .await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("/dev/null"), "{}", stderr(&o));
    assert!(stderr(&o).contains("is empty"), "{}", stderr(&o));

    // No token at all (the fallback files do not exist in this HOME).
    if !Path::new("/var/lib/dittofs/control-token").exists() {
        let o = dfsctl(home.path(), &["--server", &server, "share", "list"], &[]).await;
        assert_eq!(code(&o), 5, "{}", stderr(&o));
        assert!(stderr(&o).contains("no token was given"), "{}", stderr(&o));
    }

    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["store", "metadata", "list"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("not in the fake"), "{}", stderr(&o));

    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["store", "metadata", "remove", "default"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 4, "{}", stderr(&o));

    let args = [
        "share",
        "create",
        "--name",
        "/export",
        "--metadata",
        "m",
        "--local",
        "l",
    ];
    let o = dfsctl(home.path(), &with_auth(&server, &args), &[]).await;
    assert_eq!(code(&o), 4, "{}", stderr(&o));
}

#[tokio::test]
async fn unreachable_server_is_exit_6() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();
    let o = dfsctl(home.path(), &with_auth(&server, &["status"]), &[]).await;
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("dfsctl: cannot reach the dfs control API at "),
        "{err}"
    );
    assert!(err.contains(&format!("http://{addr}")), "{err}");
    assert!(err.contains("`dfs` is running"), "{err}");

    // `version` still succeeds and says what went wrong.
    let o = dfsctl(home.path(), &with_auth(&server, &["version"]), &[]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("client:  {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains("cannot reach"), "{out}");
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["version", "-o", "json"]),
        &[],
    )
    .await;
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["server_version"], serde_json::Value::Null);

    // Completion needs no server.
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["completion", "zsh"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("dfsctl"));
}

#[tokio::test]
async fn refusals_never_reach_the_server() {
    let (addr, seen) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();

    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["trash", "empty", "/docs"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("permanently"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));

    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &["share", "edit", "/docs", "--enable-trash", "false"],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["share", "edit", "/docs"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 2);

    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &[
                "store",
                "block",
                "remote",
                "add",
                "--name",
                "r",
                "--config",
                r#"{"bucket":"b","bukket":"c"}"#,
            ],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("bukket"), "{}", stderr(&o));

    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.empty_trash_calls, 0);
        assert!(seen.edits.is_empty());
        assert!(seen.auth.is_empty(), "the server was contacted");
    }

    // With --force both go through.
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["trash", "empty", "/docs", "--force"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("3 items removed, 4.0 KiB freed"),
        "{}",
        stdout(&o)
    );
    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &[
                "share",
                "edit",
                "/docs",
                "--enable-trash",
                "false",
                "--force",
            ],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("warning"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "share \"/docs\" updated\n");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.empty_trash_calls, 1);
    assert_eq!(seen.edits.len(), 1);
    assert_eq!(seen.edits[0].trash_enabled, Some(false));
    assert_eq!(seen.edits[0].read_only, None);
}

#[tokio::test]
async fn share_create_sends_defaults_and_flags() {
    let (addr, seen) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();
    let args = [
        "share",
        "create",
        "--name",
        "/x",
        "--metadata",
        "m",
        "--local",
        "l",
    ];
    let o = dfsctl(home.path(), &with_auth(&server, &args), &[]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "share \"/x\" created\n");
    let args = [
        "share",
        "create",
        "--name",
        "/y",
        "--metadata",
        "m",
        "--local",
        "l",
        "--remote",
        "r",
        "--read-only",
        "--squash",
        "none",
        "--allowed-clients",
        "10.0.0.0/8,127.0.0.1",
        "--root-mode",
        "0750",
        "--chunking",
        "512K/2M/8M",
        "--enable-trash",
        "--trash-retention-days",
        "30",
        "--trash-max-size",
        "10G",
        "--trash-exclude",
        "*.tmp",
        "-o",
        "json",
    ];
    let o = dfsctl(home.path(), &with_auth(&server, &args), &[]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["name"], "/y");
    let seen = seen.lock().unwrap();
    let d = &seen.created[0];
    assert_eq!(d.squash, "root_to_anonymous");
    assert_eq!((d.anon_uid, d.anon_gid, d.root_mode), (65534, 65534, 0o777));
    assert_eq!(d.allowed_clients, ["*"]);
    assert!(d.trash.is_none() && d.chunking.is_none() && d.remote.is_empty());
    let y = &seen.created[1];
    assert_eq!(y.squash, "none");
    assert!(y.read_only);
    assert_eq!(y.remote, "r");
    assert_eq!(y.allowed_clients, ["10.0.0.0/8", "127.0.0.1"]);
    assert_eq!(y.root_mode, 0o750);
    assert_eq!(
        y.chunking,
        Some(pb::Chunking {
            min: 512 << 10,
            avg: 2 << 20,
            max: 8 << 20
        })
    );
    let t = y.trash.clone().unwrap();
    assert!(t.enabled);
    assert_eq!((t.retention_days, t.max_size_bytes), (30, 10 << 30));
    assert_eq!(t.exclude, ["*.tmp"]);
}

#[tokio::test]
async fn gc_follows_the_job() {
    let (addr, seen) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();
    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &["store", "block", "gc", "/export", "--grace", "30m"],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("run_id:          run-42"), "{out}");
    assert!(out.contains("deleted_chunks:  150"), "{out}");
    assert!(out.contains("freed:           600 MiB"), "{out}");
    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &[
                "store",
                "block",
                "gc",
                "/export",
                "--dry-run",
                "--grace",
                "0",
                "-o",
                "json",
            ],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["deleted_bytes"], 600u64 << 20);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.gc_requests[0].grace_seconds, Some(1800));
        assert!(!seen.gc_requests[0].dry_run);
        assert_eq!(
            seen.gc_requests[1].grace_seconds,
            Some(0),
            "--grace 0 is sent as zero grace"
        );
        assert!(seen.gc_requests[1].dry_run);
    }

    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &["store", "block", "gc-status", "/export", "-o", "yaml"],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let y: serde_yaml::Value = serde_yaml::from_str(&stdout(&o)).unwrap();
    assert_eq!(y["run_id"], "run-42");
}

#[tokio::test]
async fn remote_status_text_json_and_unknown_name() {
    let (addr, _) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["store", "block", "remote", "status"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("pending_chunks:"), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert!(text.contains("on: 2 chunks"), "{text}");
    assert!(!text.contains("on_remote"), "no scan unless asked: {text}");

    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &[
                "store", "block", "remote", "status", "archive", "--scan", "-o", "json",
            ],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["remotes"][0]["pending_chunks"], 3);
    assert_eq!(j["remotes"][0]["scan_bytes"], 40 << 20);
    assert_eq!(j["locals"][0]["evicted_bytes"], 8 << 20);

    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["store", "block", "remote", "status", "nope"]),
        &[],
    )
    .await;
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

#[tokio::test]
async fn audit_exit_codes() {
    let (addr, _) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();

    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["blockstore", "audit-refcounts", "/export"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for key in [
        "share:",
        "started_at:",
        "duration_ms:",
        "total_files:",
        "total_refs:",
        "total_refcount:",
        "delta:",
    ] {
        assert!(out.contains(key), "{key} missing in {out}");
    }

    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &["blockstore", "audit-refcounts", "/export", "--last"],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    assert!(stdout(&o).contains("delta:           2"), "{}", stdout(&o));
    assert!(stdout(&o).contains("ab12"), "{}", stdout(&o));
    assert!(stderr(&o).contains("drift"), "{}", stderr(&o));
    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &[
                "blockstore",
                "audit-refcounts",
                "/export",
                "--last",
                "-o",
                "json",
            ],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 8);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["delta"], 2);
    assert_eq!(j["clean"], false);

    // Refcounts fine, a chunk on no tier: drift too, the file named.
    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &["blockstore", "audit-refcounts", "/lost", "--last"],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    assert!(stdout(&o).contains("missing_chunks:  1"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("/a/b.bin  cd34  missing"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("on no tier"), "{}", stderr(&o));
    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &[
                "blockstore",
                "audit-refcounts",
                "/lost",
                "--last",
                "--verify",
            ],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 2, "--last with --verify: {}", stderr(&o));

    // A FAILED job: exit 1 with the job's error.
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["blockstore", "audit-refcounts", "/bad"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("disk on fire"), "{}", stderr(&o));
}

#[tokio::test]
async fn contexts_and_server_token_file() {
    let (addr, seen) = start().await;
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("dfsctl.yaml");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let env = [("DFSCTL_CONFIG", cfg_s.as_str())];
    let server = addr.to_string();

    // context set takes the flags typed on its command line.
    let o = dfsctl(
        home.path(),
        &[
            "context", "set", "lab", "--server", &server, "--token", TOKEN,
        ],
        &env,
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("now the current context"),
        "{}",
        stdout(&o)
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("current_context: lab"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let o = dfsctl(
        home.path(),
        &[
            "context",
            "set",
            "broken",
            "--server",
            "127.0.0.1:1",
            "--token",
            "x",
        ],
        &env,
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // No flags: the current context supplies server and token.
    let o = dfsctl(home.path(), &["share", "show", "/docs"], &env).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        seen.lock()
            .unwrap()
            .auth
            .contains(&format!("Bearer {TOKEN}"))
    );

    // --context / DFSCTL_CONTEXT select another; flags beat the context.
    let o = dfsctl(home.path(), &["--context", "broken", "status"], &env).await;
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    let o = dfsctl(
        home.path(),
        &["status", "--server", &server],
        &[env[0], ("DFSCTL_CONTEXT", "broken")],
    )
    .await;
    assert_eq!(
        code(&o),
        5,
        "the server flag wins, the context's token stays: {}",
        stderr(&o)
    );
    assert!(
        !seen.lock().unwrap().auth.iter().any(|a| a == "Bearer x"),
        "context broken's token was sent to another server"
    );
    assert!(
        stderr(&o).contains("the token of context \"broken\" belongs to http://127.0.0.1:1"),
        "{}",
        stderr(&o)
    );
    let o = dfsctl(home.path(), &["--context", "nope", "status"], &env).await;
    assert_eq!(code(&o), 3, "{}", stderr(&o));

    let o = dfsctl(home.path(), &["context", "list", "-o", "json"], &env).await;
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 2);
    assert!(!stdout(&o).contains(TOKEN), "tokens are not listed");
    let o = dfsctl(home.path(), &["context", "use", "broken"], &env).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = dfsctl(home.path(), &["context", "show"], &env).await;
    assert!(stdout(&o).contains("broken"), "{}", stdout(&o));
    let o = dfsctl(home.path(), &["context", "remove", "broken"], &env).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = dfsctl(home.path(), &["context", "use", "broken"], &env).await;
    assert_eq!(code(&o), 3);

    // No token anywhere: the token of the local dfs whose recorded address is this one.
    let data = home.path().join("data").join("dittofs");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("control-token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(data.join("control-endpoint"), format!("{addr}\n")).unwrap();
    let o = dfsctl(home.path(), &["--server", &server, "status"], &[]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        seen.lock().unwrap().auth.last().map(String::as_str),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

/// A dfs data directory under `home`'s XDG_DATA_HOME whose server recorded `endpoint`.
fn local_data_dir(home: &Path, endpoint: &str) {
    let data = home.join("data").join("dittofs");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("control-token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(data.join("control-endpoint"), format!("{endpoint}\n")).unwrap();
}

#[tokio::test]
async fn local_token_is_not_sent_to_another_server() {
    let (addr, seen) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();
    // The local dfs listens on another port of this host (the fake plays a second
    // server, or a tunnel to a remote one): its token must not arrive here.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    local_data_dir(home.path(), &other.local_addr().unwrap().to_string());
    let o = dfsctl(home.path(), &["--server", &server, "status"], &[]).await;
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert_eq!(
        seen.lock().unwrap().auth,
        vec![String::new()],
        "no authorization header"
    );
    let err = stderr(&o);
    assert!(err.contains("--token-file"), "{err}");
    assert!(err.contains("was not sent"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
}

#[tokio::test]
async fn token_and_s3_secret_from_files_and_environment() {
    let (addr, seen) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();
    let tok = home.path().join("token");
    std::fs::write(&tok, format!("{TOKEN}\n")).unwrap();
    let tok = tok.to_str().unwrap();
    let key = home.path().join("s3-secret");
    std::fs::write(&key, "key-from-file\n").unwrap();
    let key = key.to_str().unwrap();
    let add = |extra: &[&'static str]| {
        let mut v = vec![
            "store", "block", "remote", "add", "--name", "s3", "--bucket", "b",
        ];
        v.extend_from_slice(extra);
        v
    };

    let mut args = vec!["--server", server.as_str(), "--token-file", tok];
    args.extend(add(&["--secret-access-key-file"]));
    args.push(key);
    let o = dfsctl(home.path(), &args, &[]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&o).contains("key-from-file"), "{}", stdout(&o));
    let o = dfsctl(
        home.path(),
        &[&["--server", server.as_str()][..], &add(&[])].concat(),
        &[
            ("DFSCTL_TOKEN_FILE", tok),
            ("DFSCTL_S3_SECRET_ACCESS_KEY", "key-from-env"),
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let keys: Vec<String> = seen
        .lock()
        .unwrap()
        .block_stores
        .iter()
        .filter_map(|b| b.s3.as_ref().map(|s| s.secret_access_key.clone()))
        .collect();
    assert_eq!(keys, ["key-from-file", "key-from-env"]);

    // Two forms of one secret: a usage error before anything is sent.
    let before = seen.lock().unwrap().auth.len();
    let mut args = vec!["--server", server.as_str(), "--token-file", tok];
    args.extend(add(&["--secret-access-key-file"]));
    args.push(key);
    let o = dfsctl(
        home.path(),
        &args,
        &[("DFSCTL_S3_SECRET_ACCESS_KEY", "key-from-env")],
    )
    .await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("DFSCTL_S3_SECRET_ACCESS_KEY"),
        "{}",
        stderr(&o)
    );
    let o = dfsctl(
        home.path(),
        &["--server", &server, "--token-file", tok, "status"],
        &[("DFSCTL_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("DFSCTL_TOKEN and by --token-file"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains(TOKEN), "{}", stderr(&o));
    assert_eq!(
        seen.lock().unwrap().auth.len(),
        before,
        "nothing reached the server"
    );
}

#[tokio::test]
async fn config_get_apply_round_trip() {
    let (addr, seen) = start().await;
    let home = tempfile::tempdir().unwrap();
    let server = addr.to_string();

    let o = dfsctl(home.path(), &with_auth(&server, &["config", "get"]), &[]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let yaml = stdout(&o);
    assert!(yaml.contains("generation: 5"), "{yaml}");
    assert!(yaml.contains("root_mode: '0755'"), "{yaml}");
    let file = home.path().join("state.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let f = file.to_str().unwrap();

    // Unchanged: a no-op with the same generation and the same state.
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["config", "apply", "-f", f]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("no changes"), "{}", stdout(&o));
    assert_eq!(seen.lock().unwrap().applied[0].state, Some(desired_state()));

    // JSON from `config get -o json` works too.
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["config", "get", "-o", "json"]),
        &[],
    )
    .await;
    let json_file = home.path().join("state.json");
    std::fs::write(&json_file, stdout(&o)).unwrap();
    let o = dfsctl(
        home.path(),
        &with_auth(
            &server,
            &[
                "config",
                "apply",
                "-f",
                json_file.to_str().unwrap(),
                "--dry-run",
            ],
        ),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("dry run"), "{}", stdout(&o));
    assert!(seen.lock().unwrap().applied[1].dry_run);

    // Without a generation: current + 1; changes are listed.
    std::fs::write(
        &file,
        "shares:\n  - {name: /new, metadata: default, local: default}\n",
    )
    .unwrap();
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["config", "apply", "-f", f, "-o", "json"]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["applied_generation"], 6);
    assert_eq!(j["changes"][0]["name"], "/new");
    let state = seen.lock().unwrap().applied[2].state.clone().unwrap();
    assert_eq!(state.generation, 6);
    assert_eq!(state.shares[0].root_mode, 0o777);
    assert_eq!(state.shares[0].allowed_clients, ["*"]);

    // A bad file is a usage error naming the key.
    std::fs::write(&file, "sharez: []\n").unwrap();
    let o = dfsctl(
        home.path(),
        &with_auth(&server, &["config", "apply", "-f", f]),
        &[],
    )
    .await;
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("sharez"), "{}", stderr(&o));
}
