//! Custom resources of `dittofs.io/v1alpha1`: MetadataStore, BlockStore, Share, GCJob.
//!
//! Design (docs/design.md, "Deployment on Kubernetes"): one data-plane StatefulSet
//! ("server group") per MetadataStore; every Share naming that MetadataStore is served by
//! it. BlockStores are definitions referenced by Shares. GCJobs run GC/audit/migration once
//! or on a schedule.
//!
//! Conventions: spec fields are camelCase; strings have bounded lengths; quantities are
//! Kubernetes quantity strings (`10Gi`, `4Mi`); invariants that span fields are CEL rules
//! (`x-kubernetes-validations`) so the apiserver refuses bad objects before the operator
//! sees them. Status has `observedGeneration` and standard conditions (`Ready`,
//! `Progressing`, `Degraded`) with CamelCase reasons.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The API group.
pub const GROUP: &str = "dittofs.io";
/// The API version.
pub const VERSION: &str = "v1alpha1";

/// A status condition (the shape of `metav1.Condition`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Progressing` or `Degraded`.
    #[schemars(length(max = 64))]
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[schemars(regex(pattern = r"^(True|False|Unknown)$"))]
    pub status: String,
    /// CamelCase machine-readable reason, e.g. `ConfigApplied`, `StoreNotFound`.
    #[schemars(length(max = 128))]
    pub reason: String,
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub message: String,
    /// RFC 3339 time of the last status change.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Reference to one key of a Secret in the object's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A persistent volume request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Size as a quantity, e.g. `10Gi`.
    #[serde(default = "default_size")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    pub size: String,
    /// StorageClass; absent = the cluster default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
}

fn default_size() -> String {
    "10Gi".into()
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            size: default_size(),
            storage_class_name: None,
        }
    }
}

/// Compute resources of the data-plane container (quantities by resource name).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

/// The Service in front of the server group.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Pin the ClusterIP (PersistentVolumes address the Service by IP, so a pinned IP
    /// survives re-creating the Service). Absent = allocated once and then kept.
    #[serde(default, rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    pub cluster_ip: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ports {
    #[serde(default = "default_nfs_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub nfs: i32,
    #[serde(default = "default_smb_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub smb: i32,
    #[serde(default = "default_grpc_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub grpc: i32,
}

fn default_nfs_port() -> i32 {
    2049
}
fn default_smb_port() -> i32 {
    445
}
fn default_grpc_port() -> i32 {
    9000
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            nfs: default_nfs_port(),
            smb: default_smb_port(),
            grpc: default_grpc_port(),
        }
    }
}

/// The data-plane pods serving every Share of one MetadataStore.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerGroupSpec {
    /// Pods; embedded metadata types (memory, sled) allow exactly 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16))]
    pub replicas: Option<i32>,
    /// Data-plane image; absent = the operator's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub image: Option<String>,
    #[serde(default)]
    pub resources: Resources,
    /// Volume of the embedded metadata store.
    #[serde(default)]
    pub storage: StorageSpec,
    #[serde(default)]
    pub service: ServiceSpec,
    #[serde(default)]
    pub ports: Ports,
    /// TRACE, DEBUG, INFO, WARN or ERROR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(TRACE|DEBUG|INFO|WARN|ERROR)$"))]
    pub log_level: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetadataStoreType {
    Memory,
    Sled,
    Postgres,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresSpec {
    /// Secret key holding the connection string (`postgres://user:pass@host/db`).
    pub connection_secret_ref: SecretKeyRef,
}

/// A metadata store and the server group (StatefulSet + Service) that serves its shares.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dittofs.io",
    version = "v1alpha1",
    kind = "MetadataStore",
    namespaced,
    status = "MetadataStoreStatus",
    shortname = "dmeta",
    category = "dittofs",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Shares","type":"integer","jsonPath":".status.shares"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("self.type == 'postgres' || !has(self.server.replicas) || self.server.replicas == 1").message("embedded metadata stores (memory, sled) run exactly one replica"),
    validation = Rule::new("self.type != 'postgres' || has(self.postgres)").message("type postgres needs spec.postgres.connectionSecretRef")
)]
#[serde(rename_all = "camelCase")]
pub struct MetadataStoreSpec {
    #[serde(rename = "type")]
    pub type_: MetadataStoreType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSpec>,
    #[serde(default)]
    pub server: ServerGroupSpec,
    /// Users of the group's data plane; passwords come from Secrets, never from here.
    /// Absent (and no Share with `permissions`) = the data plane's identity is left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub users: Vec<UserSpec>,
    /// Groups users can belong to and Share grants can name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub groups: Vec<GroupSpec>,
}

/// A user of a server group. Names: 1-32 of `A-Z a-z 0-9 _ . -`, not starting with `-`
/// or `.`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$"))]
    pub name: String,
    /// Absent = the lowest free uid from 1000 (picked by the data plane).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Primary group id; absent = the uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Supplementary groups (names of `spec.groups`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub groups: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
    /// The key of a Secret in this namespace holding the password (clear text). The
    /// operator pushes it to the pods, which keep only hashes.
    pub password_secret_ref: SecretKeyRef,
}

/// A group of a server group's users.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupSpec {
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$"))]
    pub name: String,
    /// Absent = the lowest free gid from 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataStoreStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub ready_replicas: i32,
    /// Shares served by this group.
    #[serde(default)]
    pub shares: i32,
    /// Generation of the desired state last applied to every ready pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_config_generation: Option<i64>,
    /// Service address (`ClusterIP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_ip: Option<String>,
    /// Shares (object names) that every ready pod serves.
    #[serde(default)]
    pub applied_shares: Vec<String>,
    /// Shares the pods refused (invalid or unsupported for this data plane), with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_shares: Vec<RejectedShare>,
    /// Secret (key `token`) with the bearer token of the pods' control API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
}

/// A Share a data-plane pod refused.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedShare {
    pub name: String,
    #[schemars(length(max = 1024))]
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockStoreKind {
    Local,
    Remote,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LocalBlockType {
    Fs,
    Memory,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalBlockSpec {
    #[serde(rename = "type")]
    pub type_: LocalBlockType,
    /// Volume of an `fs` store (a PVC of the server group's pods).
    #[serde(default)]
    pub storage: StorageSpec,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RemoteBlockType {
    S3,
    Memory,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub region: String,
    /// S3-compatible endpoint URL; empty = AWS.
    #[serde(default)]
    #[schemars(length(max = 512))]
    pub endpoint: String,
    #[serde(default)]
    #[schemars(length(max = 512))]
    pub prefix: String,
    #[serde(default)]
    pub force_path_style: bool,
    /// Create the bucket when it does not exist (S3-compatible servers, first setup).
    #[serde(default)]
    pub create_bucket: bool,
    /// Secret with keys `accessKeyId` and `secretAccessKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub credentials_secret: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteBlockSpec {
    #[serde(rename = "type")]
    pub type_: RemoteBlockType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,
}

/// A block store definition (local tier or remote tier) that Shares reference.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dittofs.io",
    version = "v1alpha1",
    kind = "BlockStore",
    namespaced,
    status = "BlockStoreStatus",
    shortname = "dblock",
    category = "dittofs",
    printcolumn = r#"{"name":"Kind","type":"string","jsonPath":".spec.kind"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("self.kind == 'local' ? (has(self.local) && !has(self.remote)) : (has(self.remote) && !has(self.local))").message("kind local needs spec.local, kind remote needs spec.remote (and not the other)"),
    validation = Rule::new("!has(self.remote) || self.remote.type != 's3' || has(self.remote.s3)").message("remote type s3 needs spec.remote.s3")
)]
#[serde(rename_all = "camelCase")]
pub struct BlockStoreSpec {
    pub kind: BlockStoreKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalBlockSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteBlockSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockStoreStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Shares using this store.
    #[serde(default)]
    pub used_by: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Nfs,
    Smb,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Squash {
    None,
    #[default]
    RootToAnonymous,
    AllToAnonymous,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// COMMIT/fsync return once data is durable on the local tier.
    #[default]
    Local,
    /// COMMIT/fsync wait for the remote tier.
    Remote,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrashSpec {
    #[serde(default)]
    pub enabled: bool,
    /// 0 = keep forever.
    #[serde(default)]
    #[schemars(range(min = 0, max = 36500))]
    pub retention_days: i32,
    /// Quantity; absent = unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    pub max_size: Option<String>,
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub exclude: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChunkingSpec {
    pub min: String,
    pub avg: String,
    pub max: String,
}

/// The optional pre-bound claim created for a Share.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Default: the Share's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub name: Option<String>,
    /// NFS mount options of the PersistentVolume (default `nfsvers=4.2,proto=tcp,port=` on
    /// the group's NFS port; for NFSv3 list `nfsvers=3,proto=tcp,port=,mountport=,mountproto=tcp`:
    /// NLM locks are then found through the Service's port 111).
    #[serde(default)]
    pub mount_options: Vec<String>,
}

/// A share: an export of one metadata store's tree with its content in block stores,
/// published as an NFS PersistentVolume.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dittofs.io",
    version = "v1alpha1",
    kind = "Share",
    namespaced,
    status = "ShareStatus",
    shortname = "dshare",
    category = "dittofs",
    printcolumn = r#"{"name":"Path","type":"string","jsonPath":".spec.path"}"#,
    printcolumn = r#"{"name":"Metadata","type":"string","jsonPath":".spec.metadataStoreRef"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint"}"#,
    printcolumn = r#"{"name":"PV","type":"string","jsonPath":".status.persistentVolume.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("self.metadataStoreRef == oldSelf.metadataStoreRef && self.localBlockStoreRef == oldSelf.localBlockStoreRef").message("a share's metadata and local block store cannot change: its data lives there"),
    validation = Rule::new("self.durability != 'remote' || has(self.remoteBlockStoreRef)").message("durability remote needs remoteBlockStoreRef")
)]
#[serde(rename_all = "camelCase")]
pub struct ShareSpec {
    /// Export path, e.g. `/docs`.
    #[schemars(regex(pattern = r"^/[^\x00]{1,255}$"))]
    pub path: String,
    #[schemars(length(min = 1, max = 253))]
    pub metadata_store_ref: String,
    #[schemars(length(min = 1, max = 253))]
    pub local_block_store_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub remote_block_store_ref: Option<String>,
    #[serde(default = "default_protocols")]
    pub protocols: Vec<Protocol>,
    #[serde(default)]
    pub read_only: bool,
    /// `*`, an IP or a CIDR; empty = everyone.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub allowed_clients: Vec<String>,
    #[serde(default)]
    pub squash: Squash,
    /// Serve only clients on privileged source ports (< 1024), as exports(5) `secure`.
    /// Kubelet's kernel NFS client uses one; recommended with `squash: none`.
    #[serde(default)]
    pub secure: bool,
    #[serde(default = "default_anon")]
    pub anon_uid: i64,
    #[serde(default = "default_anon")]
    pub anon_gid: i64,
    #[serde(default)]
    pub trash: TrashSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunking: Option<ChunkingSpec>,
    #[serde(default)]
    pub durability: Durability,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<ClaimSpec>,
    /// What happens to the PersistentVolume (and the claim made for it) when the Share is
    /// deleted. The data itself always stays in the stores.
    #[serde(default)]
    pub volume_deletion_policy: VolumeDeletionPolicy,
    /// Who may do what on this Share (users and groups of its MetadataStore). Absent =
    /// the data plane's default (everyone read-write, within the export's own rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<PermissionsSpec>,
}

/// Access level of a caller on a Share (`admin` = read-write for file operations).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AccessLevel {
    None,
    Read,
    ReadWrite,
    Admin,
}

impl AccessLevel {
    /// The level as the data plane spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::None => "none",
            AccessLevel::Read => "read",
            AccessLevel::ReadWrite => "read-write",
            AccessLevel::Admin => "admin",
        }
    }
}

/// Per-Share access: a caller gets its user's grant, else the highest grant of its
/// groups, else `defaultLevel`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionsSpec {
    /// Level of callers without a grant; absent = `read-write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_level: Option<AccessLevel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub grants: Vec<GrantSpec>,
}

/// One grant: exactly one of `user` and `group`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(
    validation = Rule::new("has(self.user) != has(self.group)").message("a grant names exactly one of user and group")
)]
#[serde(rename_all = "camelCase")]
pub struct GrantSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub group: Option<String>,
    pub level: AccessLevel,
}

/// Fate of a Share's PersistentVolume and claim when the Share is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum VolumeDeletionPolicy {
    /// Delete the PV and the claim the operator created (the default).
    #[default]
    Delete,
    /// Leave both; they keep pointing at the (no longer exported) path.
    Retain,
}

fn default_protocols() -> Vec<Protocol> {
    vec![Protocol::Nfs]
}
fn default_anon() -> i64 {
    65534
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// `Available`, `Bound`, `Pending`, `Released`, `Failed`.
    #[serde(default)]
    pub phase: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShareStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// `ClusterIP:port:/path` of the NFS export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume: Option<VolumeRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<VolumeRef>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GcOperation {
    Gc,
    Audit,
    Migrate,
}

/// GC, audit or migration of one share, once or on a cron schedule.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dittofs.io",
    version = "v1alpha1",
    kind = "GCJob",
    plural = "gcjobs",
    namespaced,
    status = "GCJobStatus",
    shortname = "dgc",
    category = "dittofs",
    printcolumn = r#"{"name":"Share","type":"string","jsonPath":".spec.shareRef"}"#,
    printcolumn = r#"{"name":"Operation","type":"string","jsonPath":".spec.operation"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Last","type":"string","jsonPath":".status.lastRun.result"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("!has(self.schedule) || self.schedule.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([^ ]+ +){4}[^ ]+)$')").message("schedule must be a 5-field cron expression or @hourly/@daily/@weekly/@monthly/@yearly"),
    validation = Rule::new("!has(self.gracePeriod) || self.operation == 'gc'").message("gracePeriod applies to operation gc only")
)]
#[serde(rename_all = "camelCase")]
pub struct GCJobSpec {
    #[schemars(length(min = 1, max = 253))]
    pub share_ref: String,
    pub operation: GcOperation,
    #[serde(default)]
    pub dry_run: bool,
    /// Duration like `1h`, `30m`, `0s`; absent = the server's default (1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(s|m|h|d)$"))]
    pub grace_period: Option<String>,
    /// Cron schedule; absent = run once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub successful_jobs_history_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub failed_jobs_history_limit: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcRunResult {
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    /// `Succeeded` or `Failed`.
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub bytes_freed: i64,
    #[serde(default)]
    pub objects_swept: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_delta: Option<i64>,
    #[serde(default)]
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GCJobStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<GcRunResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

/// Where `crdgen` writes the CRDs (relative to the repository root): the plain manifests
/// and the Helm chart's `crds/` (both checked in, both drift-tested).
pub const OUTPUT_DIRS: [&str; 2] = ["crds", "charts/dittofs/crds"];

/// Every CRD with the file name it is written to under `crds/`.
pub fn all() -> Vec<(
    &'static str,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
)> {
    use kube::CustomResourceExt;
    vec![
        ("metadatastores.dittofs.io.yaml", MetadataStore::crd()),
        ("blockstores.dittofs.io.yaml", BlockStore::crd()),
        ("shares.dittofs.io.yaml", Share::crd()),
        ("gcjobs.dittofs.io.yaml", GCJob::crd()),
    ]
}

/// The YAML of one CRD as checked in under `crds/`.
pub fn to_yaml(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Result<String, serde_yaml::Error> {
    let body = serde_yaml::to_string(crd)?;
    Ok(format!(
        "# Generated by `cargo run -p dittofs-operator --bin crdgen` from operator/src/crd.rs.\n# Do not edit: CI fails when this file and the Rust types differ.\n{body}"
    ))
}
