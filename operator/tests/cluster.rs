//! Integration tests of the operator against a real Kubernetes control plane
//! (`e2e/k8s/cluster.sh`: etcd, kube-apiserver, controller-manager, scheduler, kwok) and the
//! real data plane (`dfs`, started here on loopback). The operator runs in-process, watching
//! only the test's own namespace, with its pod-address policy pointing at the local `dfs`
//! (kwok's pod IPs are fake and never dialled).
//!
//! Run: `HOOK='cargo nextest run -p dittofs-operator --run-ignored only' e2e/k8s/smoke.sh`
//! (needs `dfs` and `dfsctl` built: `cargo test --workspace --no-run` builds them).
//! Ignored by a plain `cargo test`: without a cluster they cannot run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dittofs_operator::context::{Ctx, Options};
use dittofs_operator::crd::*;
use dittofs_operator::dataplane::PodAddresses;
use dittofs_proto::v1 as pb;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Event, Namespace, PersistentVolume, PersistentVolumeClaim, Secret, Service,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_secs(90);

fn bin(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!("DITTOFS_{}_BIN", name.to_uppercase())) {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/cluster-<hash> -> target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        p.exists(),
        "{} not found: run `cargo build -p dittofs-server -p dittofs-cli` first",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn client() -> Client {
    dittofs_operator::init_crypto();
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG is not set: run these tests through e2e/k8s/smoke.sh (HOOK=...)"
    );
    Client::try_default().await.expect("cluster credentials")
}

async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Installs the CRDs (server-side apply) and waits until they are Established.
async fn install_crds(c: &Client) {
    let api = Api::<CustomResourceDefinition>::all(c.clone());
    for (_, crd) in all() {
        let name = crd.name_any();
        let mut doc = serde_json::to_value(&crd).unwrap();
        doc["apiVersion"] = json!("apiextensions.k8s.io/v1");
        doc["kind"] = json!("CustomResourceDefinition");
        api.patch(
            &name,
            &PatchParams::apply("cluster-tests").force(),
            &Patch::Apply(&doc),
        )
        .await
        .unwrap();
    }
    for (_, crd) in all() {
        let name = crd.name_any();
        wait_for(&format!("CRD {name} Established"), || async {
            let c = api.get(&name).await.ok()?;
            c.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        })
        .await;
    }
}

/// A namespace of its own per test (deleted at the end unless KEEP=1).
struct Ns {
    c: Client,
    name: String,
}

impl Ns {
    async fn new(c: &Client, prefix: &str) -> Ns {
        let name = format!("{prefix}-{}", std::process::id());
        let api = Api::<Namespace>::all(c.clone());
        let ns: Namespace =
            serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
        api.create(&PostParams::default(), &ns).await.unwrap();
        Ns { c: c.clone(), name }
    }
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.c.clone(), &self.name)
    }
    async fn delete(self) {
        if std::env::var("KEEP").as_deref() == Ok("1") {
            return;
        }
        let _ = Api::<Namespace>::all(self.c.clone())
            .delete(&self.name, &DeleteParams::default())
            .await;
    }
}

/// `dfs` on loopback, empty (no stores, no shares), with a known control token.
struct Dfs {
    child: Child,
    ctl_port: u16,
    token: String,
    _dir: tempfile::TempDir,
}

impl Dfs {
    fn start(token: &str) -> Dfs {
        let dir = tempfile::tempdir().unwrap();
        let ctl_port = free_port();
        let log = std::fs::File::create(dir.path().join("dfs.log")).unwrap();
        let child = Command::new(bin("dfs"))
            .args(["start", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("DITTOFS_NFS_BIND", "127.0.0.1")
            .env("DITTOFS_NFS_PORT", free_port().to_string())
            .env("DITTOFS_HTTP_ENABLED", "false")
            .env("DITTOFS_CONTROL_PORT", ctl_port.to_string())
            .env("DITTOFS_CONTROL_TOKEN", token)
            .env("DITTOFS_METADATA_STORES", "[]")
            .env("DITTOFS_BLOCK_STORES", "{local: []}")
            .env("DITTOFS_SHARES", "[]")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", ctl_port)).is_err() {
            assert!(Instant::now() < end, "dfs did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Dfs {
            child,
            ctl_port,
            token: token.into(),
            _dir: dir,
        }
    }
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.ctl_port)
    }
    async fn share_names(&self) -> Vec<String> {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = pb::control_service_client::ControlServiceClient::new(ch);
        let mut req = tonic::Request::new(pb::ListSharesRequest {});
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        c.list_shares(req)
            .await
            .unwrap()
            .into_inner()
            .shares
            .into_iter()
            .map(|s| s.name)
            .collect()
    }
}

impl Drop for Dfs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The operator, in-process, watching one namespace.
struct Operator {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Operator {
    fn start(c: &Client, ns: &str, addresses: &[String]) -> Operator {
        let opts = Options {
            default_image: "dittofs/dataplane:test".into(),
            call_timeout: Duration::from_secs(5),
            pod_addresses: PodAddresses::fixed(addresses).unwrap(),
        };
        let ctx = std::sync::Arc::new(Ctx::new(c.clone(), opts));
        let stop = CancellationToken::new();
        let task = tokio::spawn(dittofs_operator::controller::run(
            ctx,
            Some(ns.to_string()),
            stop.clone(),
        ));
        Operator {
            stop,
            task: Some(task),
        }
    }
    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
        }
    }
}

async fn create<K>(api: &Api<K>, doc: serde_json::Value) -> K
where
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(doc).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

fn condition<'a>(conds: &'a [Condition], t: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == t)
}

async fn wait_ready_share(ns: &Ns, name: &str) -> Share {
    let api = ns.api::<Share>();
    wait_for(&format!("Share {name} Ready"), || async {
        let s = api.get(name).await.ok()?;
        let st = s.status.clone()?;
        (condition(&st.conditions, "Ready")?.status == "True").then_some(s)
    })
    .await
}

#[tokio::test]
#[ignore = "needs a Kubernetes control plane: run through e2e/k8s/smoke.sh HOOK"]
async fn crds_are_established_and_every_field_round_trips() {
    let c = client().await;
    install_crds(&c).await;
    let ns = Ns::new(&c, "t-roundtrip").await;
    // Every optional field set, so pruning of any of them would show.
    let ms: MetadataStore = serde_json::from_value(json!({
        "apiVersion": "dittofs.io/v1alpha1", "kind": "MetadataStore",
        "metadata": { "name": "full" },
        "spec": { "type": "postgres", "postgres": { "connectionSecretRef": { "name": "pg", "key": "url" } },
            "server": { "replicas": 3, "image": "img:1", "resources": { "requests": { "cpu": "1" }, "limits": { "memory": "1Gi" } },
                "storage": { "size": "3Gi", "storageClassName": "fast" },
                "service": { "type": "NodePort", "clusterIP": "10.96.0.77" },
                "ports": { "nfs": 2050, "smb": 4450, "grpc": 9001 }, "logLevel": "DEBUG" } }
    })).unwrap();
    let bs: BlockStore = serde_json::from_value(json!({
        "apiVersion": "dittofs.io/v1alpha1", "kind": "BlockStore", "metadata": { "name": "s3" },
        "spec": { "kind": "remote", "remote": { "type": "s3", "s3": { "bucket": "bkt", "region": "eu-1",
            "endpoint": "http://s3:9000", "prefix": "p/", "forcePathStyle": true, "credentialsSecret": "creds" } } }
    })).unwrap();
    let share: Share = serde_json::from_value(json!({
        "apiVersion": "dittofs.io/v1alpha1", "kind": "Share", "metadata": { "name": "full" },
        "spec": { "path": "/full", "metadataStoreRef": "full", "localBlockStoreRef": "disk", "remoteBlockStoreRef": "s3",
            "protocols": ["nfs", "smb"], "readOnly": true, "allowedClients": ["10.0.0.0/8"], "squash": "all_to_anonymous",
            "anonUid": 1000, "anonGid": 1001,
            "trash": { "enabled": true, "retentionDays": 9, "maxSize": "2Gi", "exclude": ["*.tmp"] },
            "chunking": { "min": "1Mi", "avg": "4Mi", "max": "16Mi" }, "durability": "remote",
            "persistentVolumeClaim": { "namespace": "apps", "name": "data", "mountOptions": ["nfsvers=3"] },
            "volumeDeletionPolicy": "Retain" }
    })).unwrap();
    let gc: GCJob = serde_json::from_value(json!({
        "apiVersion": "dittofs.io/v1alpha1", "kind": "GCJob", "metadata": { "name": "full" },
        "spec": { "shareRef": "full", "operation": "gc", "dryRun": true, "gracePeriod": "2h", "schedule": "0 3 * * *",
            "successfulJobsHistoryLimit": 5, "failedJobsHistoryLimit": 2 }
    })).unwrap();
    let cond = |t: &str| Condition {
        type_: t.into(),
        status: "True".into(),
        reason: "Testing".into(),
        message: "m".into(),
        last_transition_time: "2026-01-01T00:00:00Z".into(),
        observed_generation: Some(1),
    };
    let pp = PostParams::default();
    let ms2 = ns.api::<MetadataStore>().create(&pp, &ms).await.unwrap();
    assert_eq!(ms2.spec, ms.spec);
    let bs2 = ns.api::<BlockStore>().create(&pp, &bs).await.unwrap();
    assert_eq!(bs2.spec, bs.spec);
    let sh2 = ns.api::<Share>().create(&pp, &share).await.unwrap();
    assert_eq!(sh2.spec, share.spec);
    let gc2 = ns.api::<GCJob>().create(&pp, &gc).await.unwrap();
    assert_eq!(gc2.spec, gc.spec);

    let ms_status = MetadataStoreStatus {
        observed_generation: Some(1),
        conditions: vec![cond("Ready"), cond("Degraded")],
        ready_replicas: 3,
        shares: 2,
        applied_config_generation: Some(7),
        service_ip: Some("10.96.0.77".into()),
        applied_shares: vec!["full".into()],
        rejected_shares: vec![RejectedShare {
            name: "x".into(),
            message: "no".into(),
        }],
        token_secret: Some("t".into()),
    };
    let bs_status = BlockStoreStatus {
        observed_generation: Some(1),
        conditions: vec![cond("Ready")],
        used_by: vec!["full".into()],
    };
    let sh_status = ShareStatus {
        observed_generation: Some(1),
        conditions: vec![cond("Ready")],
        endpoint: Some("10.96.0.77:2050:/full".into()),
        persistent_volume: Some(VolumeRef {
            namespace: None,
            name: "pv".into(),
            phase: "Bound".into(),
        }),
        persistent_volume_claim: Some(VolumeRef {
            namespace: Some("apps".into()),
            name: "data".into(),
            phase: "Bound".into(),
        }),
    };
    let gc_status = GCJobStatus {
        observed_generation: Some(1),
        conditions: vec![cond("Ready")],
        last_run: Some(GcRunResult {
            started_at: "a".into(),
            finished_at: "b".into(),
            result: "Succeeded".into(),
            bytes_freed: 10,
            objects_swept: 2,
            audit_delta: Some(-1),
            message: "ok".into(),
        }),
        next_run: Some("2026-01-02T03:00:00Z".into()),
    };
    let ps = PatchParams::default();
    let patch = |s: serde_json::Value| Patch::Merge(json!({ "status": s }));
    let r = ns
        .api::<MetadataStore>()
        .patch_status(
            "full",
            &ps,
            &patch(serde_json::to_value(&ms_status).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, Some(ms_status));
    let r = ns
        .api::<BlockStore>()
        .patch_status("s3", &ps, &patch(serde_json::to_value(&bs_status).unwrap()))
        .await
        .unwrap();
    assert_eq!(r.status, Some(bs_status));
    let r = ns
        .api::<Share>()
        .patch_status(
            "full",
            &ps,
            &patch(serde_json::to_value(&sh_status).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, Some(sh_status));
    let r = ns
        .api::<GCJob>()
        .patch_status(
            "full",
            &ps,
            &patch(serde_json::to_value(&gc_status).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, Some(gc_status));

    // CEL rules are enforced by the apiserver.
    let mut bad = ms.clone();
    bad.metadata.name = Some("bad".into());
    bad.spec.type_ = MetadataStoreType::Sled;
    let e = ns
        .api::<MetadataStore>()
        .create(&pp, &bad)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("exactly one replica"), "{e}");
    let e = ns
        .api::<Share>()
        .patch(
            "full",
            &ps,
            &Patch::Merge(json!({ "spec": { "metadataStoreRef": "other" } })),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot change"), "{e}");
    ns.delete().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes control plane: run through e2e/k8s/smoke.sh HOOK"]
async fn reconcile_serves_shares_publishes_volumes_runs_gc_and_cleans_up() {
    let c = client().await;
    install_crds(&c).await;
    let ns = Ns::new(&c, "t-reconcile").await;
    let n = ns.name.clone();
    let token = "cluster-test-token-0123456789abcdef";
    create::<Secret>(
        &ns.api(),
        json!({ "metadata": { "name": "dittofs-main-control" }, "stringData": { "token": token } }),
    )
    .await;
    let dfs = Dfs::start(token);
    let op = Operator::start(&c, &n, &[format!("{n}/main={}", dfs.addr())]);

    let v1 = |kind: &str, name: &str, spec: serde_json::Value| {
        json!({
        "apiVersion": "dittofs.io/v1alpha1", "kind": kind, "metadata": { "name": name }, "spec": spec })
    };
    create::<MetadataStore>(
        &ns.api(),
        v1(
            "MetadataStore",
            "main",
            json!({ "type": "sled", "server": { "storage": { "size": "1Gi" } } }),
        ),
    )
    .await;
    create::<BlockStore>(
        &ns.api(),
        v1(
            "BlockStore",
            "disk",
            json!({ "kind": "local", "local": { "type": "fs", "storage": { "size": "2Gi" } } }),
        ),
    )
    .await;
    create::<Share>(&ns.api(), v1("Share", "docs", json!({ "path": "/docs", "metadataStoreRef": "main", "localBlockStoreRef": "disk",
        "trash": { "enabled": true, "retentionDays": 3 }, "persistentVolumeClaim": { "namespace": n } }))).await;
    create::<Share>(
        &ns.api(),
        v1(
            "Share",
            "keep",
            json!({ "path": "/keep", "metadataStoreRef": "main", "localBlockStoreRef": "disk",
        "volumeDeletionPolicy": "Retain" }),
        ),
    )
    .await;
    // One bad Share (missing block store) must not block the others.
    create::<Share>(
        &ns.api(),
        v1(
            "Share",
            "broken",
            json!({ "path": "/broken", "metadataStoreRef": "main", "localBlockStoreRef": "nope" }),
        ),
    )
    .await;

    let docs = wait_ready_share(&ns, "docs").await;
    wait_ready_share(&ns, "keep").await;
    // The data plane serves exactly the good shares, with the settings of the Share.
    let mut names = dfs.share_names().await;
    names.sort();
    assert_eq!(names, vec!["/docs", "/keep"]);
    let broken = ns.api::<Share>().get("broken").await.unwrap();
    let bc = broken.status.unwrap().conditions;
    assert_eq!(condition(&bc, "Ready").unwrap().status, "False");
    assert_eq!(
        condition(&bc, "Degraded").unwrap().reason,
        "BlockStoreNotFound"
    );

    // StatefulSet: claim templates for the embedded store and the fs block store.
    let sts = ns.api::<StatefulSet>().get("dittofs-main").await.unwrap();
    let mut vct: Vec<String> = sts
        .spec
        .as_ref()
        .unwrap()
        .volume_claim_templates
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.name_any())
        .collect();
    vct.sort();
    assert_eq!(vct, vec!["blocks-disk", "data"]);
    assert_eq!(sts.owner_references()[0].kind, "MetadataStore");
    let svc = ns.api::<Service>().get("dittofs-main").await.unwrap();
    let svc_spec = svc.spec.unwrap();
    // NLM: the kernel asks port 111 of the Service; both protocols reach the portmapper
    let mut pmap: Vec<(String, String)> = svc_spec
        .ports
        .iter()
        .flatten()
        .filter(|p| p.port == 111)
        .map(|p| {
            let target = match &p.target_port {
                Some(IntOrString::String(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (p.protocol.clone().unwrap_or_default(), target)
        })
        .collect();
    pmap.sort();
    assert_eq!(
        pmap,
        vec![
            ("TCP".to_string(), "portmap".to_string()),
            ("UDP".to_string(), "portmap-udp".to_string())
        ]
    );
    let ip = svc_spec.cluster_ip.unwrap();
    // PV: NFS source = Service ClusterIP + export path; RWX, Retain; claim pre-bound.
    let pv_api = Api::<PersistentVolume>::all(c.clone());
    let pv = pv_api.get(&format!("dittofs-{n}-docs")).await.unwrap();
    let pvs = pv.spec.clone().unwrap();
    assert_eq!(pvs.nfs.as_ref().unwrap().server, ip);
    assert_eq!(pvs.nfs.as_ref().unwrap().path, "/docs");
    assert_eq!(pvs.access_modes.unwrap(), vec!["ReadWriteMany"]);
    let opts = pvs.mount_options.clone().unwrap_or_default();
    assert!(opts.contains(&"port=2049".to_string()), "{opts:?}");
    assert!(!opts.contains(&"nolock".to_string()), "locks on: {opts:?}");
    assert_eq!(
        pvs.persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
    assert_eq!(
        pv.labels().get("dittofs.io/share").map(String::as_str),
        Some("docs")
    );
    let pvc = ns.api::<PersistentVolumeClaim>().get("docs").await.unwrap();
    assert_eq!(pvc.status.unwrap().phase.as_deref(), Some("Bound"));
    let st = docs.status.unwrap();
    assert_eq!(
        st.endpoint.as_deref(),
        Some(format!("{ip}:2049:/docs").as_str())
    );
    assert!(
        docs.metadata
            .finalizers
            .unwrap()
            .contains(&"dittofs.io/volumes".to_string())
    );
    let ms = ns.api::<MetadataStore>().get("main").await.unwrap();
    let mss = ms.status.unwrap();
    assert_eq!(condition(&mss.conditions, "Ready").unwrap().status, "True");
    assert_eq!(mss.applied_shares.len(), 2);
    // Events were recorded on transitions.
    let evs = ns
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert!(
        evs.iter().any(|e| e.reason.as_deref() == Some("Exported")),
        "no Exported event"
    );

    // Drift: a pod that lost its state (restart with an empty data dir) is refilled. Here:
    // the share is removed behind the operator's back and comes back on the next resync,
    // triggered by touching the MetadataStore.
    {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{}", dfs.addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut cl = pb::control_service_client::ControlServiceClient::new(ch);
        let mut req = tonic::Request::new(pb::RemoveShareRequest {
            name: "/keep".into(),
        });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        cl.remove_share(req).await.unwrap();
        ns.api::<MetadataStore>()
            .patch(
                "main",
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "annotations": { "test/touch": "1" } } })),
            )
            .await
            .unwrap();
        wait_for("/keep re-applied", || async {
            dfs.share_names()
                .await
                .contains(&"/keep".to_string())
                .then_some(())
        })
        .await;
    }

    // One-shot GCJob: a Job running dfsctl. kwok does not run containers, so the test runs the
    // Job's own command line (its args, its env, with the server and token path pointed at
    // the local data plane), exactly what the pod would do.
    create::<GCJob>(
        &ns.api(),
        v1(
            "GCJob",
            "once",
            json!({ "shareRef": "docs", "operation": "gc", "gracePeriod": "0s" }),
        ),
    )
    .await;
    let job = wait_for("GC Job", || async {
        ns.api::<Job>().get("once-1").await.ok()
    })
    .await;
    let pod = job.spec.unwrap().template.spec.unwrap();
    let ctr = &pod.containers[0];
    assert_eq!(ctr.command.as_ref().unwrap(), &vec!["dfsctl".to_string()]);
    let env: Vec<(String, String)> = ctr
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert!(env.contains(&("DFSCTL_SERVER".into(), format!("dittofs-main.{n}.svc:9000"))));
    assert_eq!(
        pod.volumes.unwrap()[0]
            .secret
            .as_ref()
            .unwrap()
            .secret_name
            .as_deref(),
        Some("dittofs-main-control")
    );
    let tokdir = tempfile::tempdir().unwrap();
    std::fs::write(tokdir.path().join("token"), token).unwrap();
    let out = Command::new(bin("dfsctl"))
        .args(ctr.args.clone().unwrap())
        .envs(env.iter().cloned())
        .env("DFSCTL_SERVER", dfs.addr())
        .env("DFSCTL_TOKEN_FILE", tokdir.path().join("token"))
        .env("HOME", tokdir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dfsctl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gc = wait_for("GCJob result", || async {
        let g = ns.api::<GCJob>().get("once").await.ok()?;
        let st = g.status.clone()?;
        (condition(&st.conditions, "Ready")?.status == "True").then_some(st)
    })
    .await;
    let last = gc.last_run.unwrap();
    assert_eq!(last.result, "Succeeded");
    assert!(last.message.contains("store disk"), "{}", last.message);

    // Scheduled GCJob: a CronJob in UTC with the history limits; next run in status.
    create::<GCJob>(
        &ns.api(),
        v1(
            "GCJob",
            "weekly",
            json!({ "shareRef": "docs", "operation": "audit",
        "schedule": "0 4 * * 0", "successfulJobsHistoryLimit": 2 }),
        ),
    )
    .await;
    let cj = wait_for("CronJob", || async {
        ns.api::<CronJob>().get("weekly").await.ok()
    })
    .await;
    let cjs = cj.spec.unwrap();
    assert_eq!(cjs.schedule, "0 4 * * 0");
    assert_eq!(cjs.time_zone.as_deref(), Some("Etc/UTC"));
    assert_eq!(cjs.successful_jobs_history_limit, Some(2));
    let args = cjs
        .job_template
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap();
    assert_eq!(
        args,
        vec!["-o", "json", "blockstore", "audit-refcounts", "/docs"]
    );
    wait_for("GCJob nextRun", || async {
        ns.api::<GCJob>()
            .get("weekly")
            .await
            .ok()?
            .status?
            .next_run
            .filter(|n| n.ends_with("T04:00:00Z"))
    })
    .await;

    // Deleting a Share: policy Delete removes PV and claim; Retain keeps the PV; both stop
    // being exported; the finalizer is released so the Share goes away.
    ns.api::<Share>()
        .delete("docs", &DeleteParams::default())
        .await
        .unwrap();
    ns.api::<Share>()
        .delete("keep", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("Shares gone", || async {
        let l = ns.api::<Share>().list(&ListParams::default()).await.ok()?;
        (!l.items
            .iter()
            .any(|s| s.name_any() == "docs" || s.name_any() == "keep"))
        .then_some(())
    })
    .await;
    wait_for("PV and claim of docs gone", || async {
        let pv = pv_api.get_opt(&format!("dittofs-{n}-docs")).await.ok()?;
        let pvc = ns
            .api::<PersistentVolumeClaim>()
            .get_opt("docs")
            .await
            .ok()?;
        (pv.is_none() && pvc.is_none()).then_some(())
    })
    .await;
    assert!(
        pv_api
            .get_opt(&format!("dittofs-{n}-keep"))
            .await
            .unwrap()
            .is_some(),
        "Retain policy PV was deleted"
    );
    wait_for("exports removed", || async {
        dfs.share_names().await.is_empty().then_some(())
    })
    .await;

    // Shares carry the operator's finalizer: remove the last one while it still runs.
    ns.api::<Share>()
        .delete("broken", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("Share broken gone", || async {
        ns.api::<Share>()
            .get_opt("broken")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    op.stop().await;
    let _ = pv_api
        .delete(&format!("dittofs-{n}-keep"), &DeleteParams::default())
        .await;
    ns.delete().await;
}
