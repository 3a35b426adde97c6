//! The Kubernetes objects the operator owns, built as server-side-apply documents (pure
//! functions of the custom resources, unit-tested; the reconcilers only send them).
//!
//! Data-plane pod layout (`dfs start --data-dir /var/lib/dittofs`):
//!
//! | path | volume |
//! |---|---|
//! | `/var/lib/dittofs` (control state, embedded metadata under `metadata/<name>`) | claim template `data` (sled) or emptyDir (memory) |
//! | `/var/lib/dittofs/blocks/<b>` for each local BlockStore `b` of its Shares | claim template `blocks-<b>` (fs) or emptyDir (memory) |
//!
//! The pod starts with no stores and no shares (`DITTOFS_SHARES=[]` ...): everything it
//! serves arrives with `ApplyConfig` from the operator.
//!
//! Shutdown: the pod's `terminationGracePeriodSeconds` ([`TERMINATION_GRACE_SECONDS`]) is
//! set explicitly above the server's own shutdown bound ([`SHUTDOWN_TIMEOUT_SECONDS`],
//! passed as `DITTOFS_SHUTDOWN_TIMEOUT_SECONDS`), so `dfs` always finishes its shutdown
//! (NFS calls, flush, store close) before the kubelet would SIGKILL it.

use crate::crd::{GCJob, GcOperation, MetadataStore, MetadataStoreType, Share};
use crate::desired::GroupPlan;
use crate::names::*;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

/// Nominal capacity of Share volumes: NFS ignores it, but a PV and a claim must name one.
pub const SHARE_CAPACITY: &str = "1Ti";

/// The Service port of the data plane's embedded portmapper: Linux clients find the lock
/// manager (NLM) through rpcbind on port 111 of the NFS server's address, and no mount
/// option names another port.
pub const PORTMAPPER_SERVICE_PORT: i32 = 111;

/// The pods' portmapper port (TCP and UDP; `dfs`'s default), behind the Service's 111. It
/// answers GETPORT with the NFS port for NFS, MOUNT, NLM and NSM, which is the same in the
/// pod and on the Service.
pub const PORTMAPPER_POD_PORT: i32 = 10111;

/// The data plane's shutdown bound (`shutdown_timeout_seconds`): after SIGTERM, `dfs`
/// exits within this many seconds.
pub const SHUTDOWN_TIMEOUT_SECONDS: u32 = 20;

/// The pods' termination grace: the server's bound plus a margin for the process to
/// start and end its shutdown (Kubernetes' default, 30 s, was the old in-flight timeout).
pub const TERMINATION_GRACE_SECONDS: u32 = SHUTDOWN_TIMEOUT_SECONDS + 15;

fn owner_ref<K: Resource<DynamicType = ()>>(obj: &K) -> Value {
    json!([{
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "name": obj.name_any(),
        "uid": obj.meta().uid.clone().unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

fn image_of(ms: &MetadataStore, default_image: &str) -> String {
    ms.spec
        .server
        .image
        .clone()
        .unwrap_or_else(|| default_image.to_string())
}

/// The control-token Secret (created once; the token is never rotated by the operator).
pub fn token_secret(ms: &MetadataStore, token: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": token_secret_name(&ms.name_any()),
            "namespace": ms.namespace(),
            "labels": group_labels(&ms.name_any()),
            "ownerReferences": owner_ref(ms),
        },
        "type": "Opaque",
        "stringData": { "token": token },
    })
}

pub fn service(ms: &MetadataStore) -> Value {
    let name = ms.name_any();
    let p = &ms.spec.server.ports;
    let mut spec = json!({
        "type": ms.spec.server.service.type_,
        "selector": selector_labels(&name),
        "ports": [
            { "name": "nfs", "port": p.nfs, "targetPort": "nfs", "protocol": "TCP" },
            { "name": "grpc", "port": p.grpc, "targetPort": "grpc", "protocol": "TCP" },
            { "name": "portmap", "port": PORTMAPPER_SERVICE_PORT, "targetPort": "portmap", "protocol": "TCP" },
            { "name": "portmap-udp", "port": PORTMAPPER_SERVICE_PORT, "targetPort": "portmap-udp", "protocol": "UDP" },
        ],
    });
    if let Some(ip) = &ms.spec.server.service.cluster_ip {
        spec["clusterIP"] = json!(ip);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": group_name(&name),
            "namespace": ms.namespace(),
            "labels": group_labels(&name),
            "ownerReferences": owner_ref(ms),
        },
        "spec": spec,
    })
}

fn claim_template(name: &str, size: &str, class: Option<&String>, labels: &Value) -> Value {
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": { "requests": { "storage": size } },
    });
    if let Some(c) = class {
        spec["storageClassName"] = json!(c);
    }
    json!({ "metadata": { "name": name, "labels": labels }, "spec": spec })
}

/// Names of the claim templates a StatefulSet needs (sorted): changing this set means
/// re-creating the StatefulSet (templates are immutable), keeping its pods and claims.
pub fn claim_template_names(ms: &MetadataStore, plan: &GroupPlan) -> Vec<String> {
    let mut v: Vec<String> = plan.local_fs.iter().map(|b| block_volume_name(b)).collect();
    if ms.spec.type_ != MetadataStoreType::Memory {
        v.push("data".into());
    }
    v.sort();
    v
}

/// The StatefulSet of the server group. `fs_sizes` gives the storage of each local `fs`
/// BlockStore (size, class) by name.
pub fn statefulset(
    ms: &MetadataStore,
    plan: &GroupPlan,
    fs_storage: &dyn Fn(&str) -> (String, Option<String>),
    default_image: &str,
) -> Value {
    let name = ms.name_any();
    let server = &ms.spec.server;
    let labels = json!(group_labels(&name));
    let mut mounts = vec![json!({ "name": "data", "mountPath": DATA_DIR })];
    let mut volumes = Vec::new();
    let mut templates = Vec::new();
    if ms.spec.type_ == MetadataStoreType::Memory {
        volumes.push(json!({ "name": "data", "emptyDir": {} }));
    } else {
        templates.push(claim_template(
            "data",
            &server.storage.size,
            server.storage.storage_class_name.as_ref(),
            &labels,
        ));
    }
    for b in &plan.local_fs {
        let vol = block_volume_name(b);
        mounts.push(json!({ "name": vol, "mountPath": format!("{DATA_DIR}/blocks/{b}") }));
        let (size, class) = fs_storage(b);
        templates.push(claim_template(&vol, &size, class.as_ref(), &labels));
    }
    for b in &plan.local_memory {
        let vol = block_volume_name(b);
        mounts.push(json!({ "name": vol, "mountPath": format!("{DATA_DIR}/blocks/{b}") }));
        volumes.push(json!({ "name": vol, "emptyDir": {} }));
    }
    let env = json!([
        { "name": "DITTOFS_NFS_BIND", "value": "0.0.0.0" },
        { "name": "DITTOFS_NFS_PORT", "value": server.ports.nfs.to_string() },
        { "name": "DITTOFS_NFS_PORTMAPPER_ENABLED", "value": "true" },
        { "name": "DITTOFS_NFS_PORTMAPPER_PORT", "value": PORTMAPPER_POD_PORT.to_string() },
        { "name": "DITTOFS_CONTROL_BIND", "value": "0.0.0.0" },
        { "name": "DITTOFS_CONTROL_PORT", "value": server.ports.grpc.to_string() },
        { "name": "DITTOFS_CONTROL_TOKEN", "valueFrom": { "secretKeyRef": {
            "name": token_secret_name(&name), "key": "token" } } },
        { "name": "DITTOFS_LOGGING_LEVEL", "value": server.log_level.clone().unwrap_or_else(|| "INFO".into()) },
        { "name": "DITTOFS_SHUTDOWN_TIMEOUT_SECONDS", "value": SHUTDOWN_TIMEOUT_SECONDS.to_string() },
        { "name": "DITTOFS_METADATA_STORES", "value": "[]" },
        { "name": "DITTOFS_BLOCK_STORES", "value": "{local: []}" },
        { "name": "DITTOFS_SHARES", "value": "[]" },
    ]);
    let mut container = json!({
        "name": "dfs",
        "image": image_of(ms, default_image),
        "args": ["start", "--data-dir", DATA_DIR],
        "env": env,
        "ports": [
            { "name": "nfs", "containerPort": server.ports.nfs, "protocol": "TCP" },
            { "name": "grpc", "containerPort": server.ports.grpc, "protocol": "TCP" },
            { "name": "portmap", "containerPort": PORTMAPPER_POD_PORT, "protocol": "TCP" },
            { "name": "portmap-udp", "containerPort": PORTMAPPER_POD_PORT, "protocol": "UDP" },
        ],
        "readinessProbe": { "tcpSocket": { "port": "grpc" }, "periodSeconds": 5 },
        "livenessProbe": { "tcpSocket": { "port": "nfs" }, "periodSeconds": 10, "failureThreshold": 6 },
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
        },
    });
    if !server.resources.requests.is_empty() || !server.resources.limits.is_empty() {
        container["resources"] = json!({
            "requests": server.resources.requests,
            "limits": server.resources.limits,
        });
    }
    let mut spec = json!({
        "serviceName": group_name(&name),
        "replicas": server.replicas.unwrap_or(1),
        "selector": { "matchLabels": selector_labels(&name) },
        "template": {
            "metadata": { "labels": labels },
            "spec": {
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                    "seccompProfile": { "type": "RuntimeDefault" },
                    // Non-root and no capabilities, yet NFS wants port 2049: a namespaced,
                    // "safe" sysctl lets the pod bind it.
                    "sysctls": [{ "name": "net.ipv4.ip_unprivileged_port_start", "value": "0" }],
                },
                "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                "containers": [container],
                "volumes": volumes,
            },
        },
    });
    if !templates.is_empty() {
        spec["volumeClaimTemplates"] = json!(templates);
        spec["persistentVolumeClaimRetentionPolicy"] =
            json!({ "whenDeleted": "Retain", "whenScaled": "Retain" });
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": group_name(&name),
            "namespace": ms.namespace(),
            "labels": labels,
            "ownerReferences": owner_ref(ms),
        },
        "spec": spec,
    })
}

/// Default NFS mount options of Share volumes: NFSv4.2 (the version Linux mounts by
/// default) over TCP on the group's NFS port. v4 carries its locks, leases and reclaim in
/// the NFS protocol itself: no MOUNT, portmapper or rpc.statd on the node is needed. A
/// Share that must be mounted over v3 lists its own options (`nfsvers=3,...,mountport=`).
pub fn default_mount_options(nfs_port: i32) -> Vec<String> {
    vec![
        "nfsvers=4.2".into(),
        "proto=tcp".into(),
        format!("port={nfs_port}"),
    ]
}

/// The claim (namespace, name) a Share asks for, if any.
pub fn claim_of(share: &Share) -> Option<(String, String)> {
    share.spec.persistent_volume_claim.as_ref().map(|c| {
        (
            c.namespace.clone(),
            c.name.clone().unwrap_or_else(|| share.name_any()),
        )
    })
}

/// The cluster-scoped PersistentVolume of a Share (no owner reference: a cluster-scoped
/// object cannot be owned by a namespaced one; the Share's finalizer removes it).
pub fn persistent_volume(share: &Share, service_ip: &str, nfs_port: i32) -> Value {
    let ns = share.namespace().unwrap_or_default();
    let name = share.name_any();
    let mount_options = share
        .spec
        .persistent_volume_claim
        .as_ref()
        .filter(|c| !c.mount_options.is_empty())
        .map(|c| c.mount_options.clone())
        .unwrap_or_else(|| default_mount_options(nfs_port));
    let mut spec = json!({
        "capacity": { "storage": SHARE_CAPACITY },
        "accessModes": ["ReadWriteMany"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "",
        "volumeMode": "Filesystem",
        "mountOptions": mount_options,
        "nfs": { "server": service_ip, "path": share.spec.path, "readOnly": share.spec.read_only },
    });
    if let Some((cns, cname)) = claim_of(share) {
        spec["claimRef"] = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": cns, "name": cname,
        });
    }
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": pv_name(&ns, &name),
            "labels": share_labels(&ns, &name),
            "annotations": { "dittofs.io/share": format!("{ns}/{name}") },
        },
        "spec": spec,
    })
}

/// The claim pre-bound to the Share's PV.
pub fn persistent_volume_claim(share: &Share) -> Option<Value> {
    let (cns, cname) = claim_of(share)?;
    let ns = share.namespace().unwrap_or_default();
    let name = share.name_any();
    Some(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": cname,
            "namespace": cns,
            "labels": share_labels(&ns, &name),
            "annotations": { "dittofs.io/share": format!("{ns}/{name}") },
        },
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": pv_name(&ns, &name),
            "volumeMode": "Filesystem",
            "resources": { "requests": { "storage": SHARE_CAPACITY } },
        },
    }))
}

/// A GCJob operation the data plane cannot run (the GCJob is reported degraded).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedOperation {
    #[error("operation migrate is not supported by this data plane yet")]
    Migrate,
}

/// The `dfsctl` arguments of a GCJob (after the global flags), or why it cannot run.
pub fn dfsctl_args(gc: &GCJob, share_path: &str) -> Result<Vec<String>, UnsupportedOperation> {
    let mut args: Vec<String> = vec!["-o".into(), "json".into()];
    match gc.spec.operation {
        GcOperation::Gc => {
            args.extend(["store", "block", "gc", share_path].map(String::from));
            if gc.spec.dry_run {
                args.push("--dry-run".into());
            }
            if let Some(g) = &gc.spec.grace_period {
                args.extend(["--grace".into(), g.clone()]);
            }
        }
        GcOperation::Audit => {
            args.extend(["blockstore", "audit-refcounts", share_path].map(String::from));
        }
        GcOperation::Migrate => {
            return Err(UnsupportedOperation::Migrate);
        }
    }
    Ok(args)
}

/// The pod template that runs `dfsctl` against the server group.
fn job_spec(gc: &GCJob, ms: &MetadataStore, args: &[String], default_image: &str) -> Value {
    let ms_name = ms.name_any();
    let server = format!(
        "{}.{}.svc:{}",
        group_name(&ms_name),
        ms.namespace().unwrap_or_default(),
        ms.spec.server.ports.grpc
    );
    json!({
        "backoffLimit": 2,
        "activeDeadlineSeconds": 6 * 3600,
        "template": {
            "metadata": { "labels": { LABEL_GCJOB: gc.name_any(), LABEL_MANAGED_BY: MANAGER } },
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": 65532,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "containers": [{
                    "name": "dfsctl",
                    "image": image_of(ms, default_image),
                    "command": ["dfsctl"],
                    "args": args,
                    "env": [
                        { "name": "DFSCTL_SERVER", "value": server },
                        { "name": "DFSCTL_TOKEN_FILE", "value": format!("{TOKEN_MOUNT}/token") },
                    ],
                    "volumeMounts": [{ "name": "token", "mountPath": TOKEN_MOUNT, "readOnly": true }],
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": { "drop": ["ALL"] },
                    },
                }],
                "volumes": [{ "name": "token", "secret": {
                    "secretName": token_secret_name(&ms_name), "defaultMode": 0o400 } }],
            },
        },
    })
}

/// A one-shot Job (no schedule) or a CronJob (schedule) for the GCJob.
pub fn gc_workload(
    gc: &GCJob,
    ms: &MetadataStore,
    share_path: &str,
    default_image: &str,
) -> Result<Value, UnsupportedOperation> {
    let args = dfsctl_args(gc, share_path)?;
    let labels =
        json!({ LABEL_GCJOB: gc.name_any(), LABEL_MANAGED_BY: MANAGER, LABEL_NAME: "dittofs" });
    let job = job_spec(gc, ms, &args, default_image);
    Ok(match &gc.spec.schedule {
        None => json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": oneshot_job_name(&gc.name_any(), gc.metadata.generation.unwrap_or(1)),
                "namespace": gc.namespace(),
                "labels": labels,
                "ownerReferences": owner_ref(gc),
            },
            "spec": job,
        }),
        Some(schedule) => json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {
                "name": gc.name_any(),
                "namespace": gc.namespace(),
                "labels": labels,
                "ownerReferences": owner_ref(gc),
            },
            "spec": {
                "schedule": schedule,
                "timeZone": "Etc/UTC",
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 600,
                "successfulJobsHistoryLimit": gc.spec.successful_jobs_history_limit.unwrap_or(3),
                "failedJobsHistoryLimit": gc.spec.failed_jobs_history_limit.unwrap_or(1),
                "jobTemplate": { "metadata": { "labels": labels }, "spec": job },
            },
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::*;
    use crate::desired::{S3Credentials, plan_group};
    use crate::identity::Passwords;

    fn ms(t: MetadataStoreType) -> MetadataStore {
        let mut m = MetadataStore::new(
            "main",
            MetadataStoreSpec {
                type_: t,
                postgres: None,
                server: Default::default(),
                users: vec![],
                groups: vec![],
            },
        );
        m.metadata.namespace = Some("ns".into());
        m.metadata.uid = Some("uid-1".into());
        m
    }

    fn share(claim: bool) -> Share {
        let mut v = serde_json::json!({
            "path": "/docs", "metadataStoreRef": "main", "localBlockStoreRef": "disk",
        });
        if claim {
            v["persistentVolumeClaim"] = serde_json::json!({ "namespace": "apps" });
        }
        let mut s = Share::new("docs", serde_json::from_value(v).unwrap());
        s.metadata.namespace = Some("ns".into());
        s
    }

    /// The plan of `m`'s group serving one Share on the `disk` block store.
    fn one_share_plan(m: &MetadataStore) -> crate::desired::GroupPlan {
        plan_group(
            m,
            &[share(false)],
            &[disk()],
            &S3Credentials::new(),
            &Passwords::new(),
        )
    }

    fn disk() -> BlockStore {
        BlockStore::new(
            "disk",
            BlockStoreSpec {
                kind: BlockStoreKind::Local,
                local: Some(LocalBlockSpec {
                    type_: LocalBlockType::Fs,
                    storage: Default::default(),
                }),
                remote: None,
            },
        )
    }

    #[test]
    fn statefulset_has_volumes_for_embedded_store_and_fs_blocks() {
        let m = ms(MetadataStoreType::Sled);
        let plan = one_share_plan(&m);
        let sts = statefulset(&m, &plan, &|_| ("7Gi".into(), Some("fast".into())), "img:1");
        let tpl: Vec<&str> = sts["spec"]["volumeClaimTemplates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(tpl, vec!["data", "blocks-disk"]);
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"][1]["spec"]["storageClassName"],
            "fast"
        );
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"][1]["spec"]["resources"]["requests"]["storage"],
            "7Gi"
        );
        let c = &sts["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "img:1");
        assert_eq!(
            c["volumeMounts"][1]["mountPath"],
            "/var/lib/dittofs/blocks/disk"
        );
        assert_eq!(sts["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(claim_template_names(&m, &plan), vec!["blocks-disk", "data"]);
        // memory metadata: no claim for it
        let m = ms(MetadataStoreType::Memory);
        let sts = statefulset(&m, &plan, &|_| ("1Gi".into(), None), "img:1");
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            sts["spec"]["template"]["spec"]["volumes"][0]["name"],
            "data"
        );
    }

    /// The kubelet SIGKILLs a pod its grace period after SIGTERM: the grace is explicit
    /// and above the shutdown bound the server is told.
    #[test]
    fn pods_stop_within_their_termination_grace() {
        let m = ms(MetadataStoreType::Sled);
        let plan = one_share_plan(&m);
        let sts = statefulset(&m, &plan, &|_| ("1Gi".into(), None), "img:1");
        let pod = &sts["spec"]["template"]["spec"];
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        let env = pod["containers"][0]["env"].as_array().unwrap();
        let bound: u64 = env
            .iter()
            .find(|e| e["name"] == "DITTOFS_SHUTDOWN_TIMEOUT_SECONDS")
            .and_then(|e| e["value"].as_str())
            .unwrap()
            .parse()
            .unwrap();
        assert!(grace > bound + 5, "grace {grace} s, server bound {bound} s");
        assert!(bound < 30, "the bound is below Kubernetes' default grace");
    }

    /// (name, port, protocol) of each entry of a ports array.
    fn ports(v: &Value, port_key: &str) -> Vec<(String, i64, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let s = |k: &str| p[k].as_str().unwrap().to_string();
                (s("name"), p[port_key].as_i64().unwrap(), s("protocol"))
            })
            .collect()
    }

    #[test]
    fn service_maps_port_111_onto_the_pods_portmapper() {
        let m = ms(MetadataStoreType::Sled);
        let plan = one_share_plan(&m);
        let sts = statefulset(&m, &plan, &|_| ("7Gi".into(), None), "img:1");
        let container = &sts["spec"]["template"]["spec"]["containers"][0];
        let svc = service(&m);
        let svc_ports = svc["spec"]["ports"].as_array().unwrap();
        let pod_ports = ports(&container["ports"], "containerPort");
        for proto in ["TCP", "UDP"] {
            let p = svc_ports
                .iter()
                .find(|p| p["port"] == 111 && p["protocol"] == proto)
                .unwrap_or_else(|| panic!("no Service port 111/{proto}"));
            // the target is a named port of the container with the same protocol
            let target = p["targetPort"].as_str().unwrap();
            let (_, pod_port, _) = pod_ports
                .iter()
                .find(|(n, _, pr)| n == target && pr == proto)
                .unwrap_or_else(|| panic!("no container port {target}/{proto}"));
            assert_eq!(*pod_port, i64::from(PORTMAPPER_POD_PORT));
        }
        let env = container["env"].as_array().unwrap();
        let var = |k: &str| {
            env.iter()
                .find(|e| e["name"] == k)
                .map(|e| e["value"].clone())
        };
        assert_eq!(var("DITTOFS_NFS_PORTMAPPER_ENABLED"), Some(json!("true")));
        assert_eq!(
            var("DITTOFS_NFS_PORTMAPPER_PORT"),
            Some(json!(PORTMAPPER_POD_PORT.to_string()))
        );
        // the portmapper advertises the pod's NFS port: it must be the Service's too
        let nfs = |v: &Vec<(String, i64, String)>| v.iter().find(|p| p.0 == "nfs").unwrap().1;
        assert_eq!(nfs(&ports(&svc["spec"]["ports"], "port")), nfs(&pod_ports));
    }

    #[test]
    fn pv_and_claim_are_prebound() {
        let s = share(true);
        let pv = persistent_volume(&s, "10.0.0.7", 2049);
        assert_eq!(pv["metadata"]["name"], "dittofs-ns-docs");
        assert_eq!(pv["spec"]["nfs"]["server"], "10.0.0.7");
        assert_eq!(pv["spec"]["nfs"]["path"], "/docs");
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["claimRef"]["namespace"], "apps");
        assert_eq!(pv["spec"]["claimRef"]["name"], "docs");
        assert_eq!(
            pv["spec"]["mountOptions"],
            serde_json::json!(["nfsvers=4.2", "proto=tcp", "port=2049"]),
            "NFSv4.2 by default: locks and reclaim in the protocol, no portmapper needed"
        );
        let pvc = persistent_volume_claim(&s).unwrap();
        assert_eq!(pvc["spec"]["volumeName"], "dittofs-ns-docs");
        assert_eq!(pvc["metadata"]["namespace"], "apps");
        assert!(persistent_volume_claim(&share(false)).is_none());
        assert!(
            persistent_volume(&share(false), "1.2.3.4", 2049)["spec"]
                .get("claimRef")
                .is_none()
        );
    }

    #[test]
    fn gc_jobs_and_cronjobs() {
        let m = ms(MetadataStoreType::Sled);
        let mut g = GCJob::new(
            "nightly",
            GCJobSpec {
                share_ref: "docs".into(),
                operation: GcOperation::Gc,
                dry_run: true,
                grace_period: Some("30m".into()),
                schedule: None,
                successful_jobs_history_limit: None,
                failed_jobs_history_limit: None,
            },
        );
        g.metadata.namespace = Some("ns".into());
        g.metadata.generation = Some(2);
        let j = gc_workload(&g, &m, "/docs", "img").unwrap();
        assert_eq!(j["kind"], "Job");
        assert_eq!(j["metadata"]["name"], "nightly-2");
        let c = &j["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["args"],
            serde_json::json!([
                "-o",
                "json",
                "store",
                "block",
                "gc",
                "/docs",
                "--dry-run",
                "--grace",
                "30m"
            ])
        );
        assert_eq!(c["env"][0]["value"], "dittofs-main.ns.svc:9000");
        g.spec.schedule = Some("0 3 * * *".into());
        g.spec.operation = GcOperation::Audit;
        let cj = gc_workload(&g, &m, "/docs", "img").unwrap();
        assert_eq!(cj["kind"], "CronJob");
        assert_eq!(cj["spec"]["schedule"], "0 3 * * *");
        assert_eq!(
            cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"],
            serde_json::json!(["-o", "json", "blockstore", "audit-refcounts", "/docs"])
        );
        g.spec.operation = GcOperation::Migrate;
        assert_eq!(
            gc_workload(&g, &m, "/docs", "img").err(),
            Some(UnsupportedOperation::Migrate)
        );
    }
}
