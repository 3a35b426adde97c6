//! The composition root and runtime registry: owns the named metadata stores, local block
//! engines and shares, applies a new desired state while serving (stores and shares
//! added, changed and removed without touching the others), runs the background flusher
//! and trash reaper, and shuts everything down in order (flush content, sync metadata,
//! close).
//!
//! Invariants:
//! - Applies are serialized (`apply_lock`); readers take short snapshots of `inner` and
//!   never hold its lock across an await.
//! - A store is removed only when no share of the new state uses it; a share's metadata
//!   and local store never change in place (its data lives there): remove and re-create.
//! - A removed share is first unregistered (new calls get STALE), then flushed; its data
//!   stays in its stores, so re-creating it with the same name serves the same files with
//!   the same handles (ids come from `share-ids.json`).
//! - The new state is persisted only after it was applied; at start the persisted state is
//!   applied before any listener serves.

use crate::config::{self, LocalBlockStoreCfg, MetadataStoreCfg, RemoteBlockStoreCfg, ShareCfg};
use crate::error::{ControlError, ControlResult};
use crate::identity::{self, IdentityStore};
use crate::state::{self, DesiredState};
use dittofs_blockstore::tier::{Evictor, RemoteClaim, claim_remote};
use dittofs_blockstore::{
    BlockError, Engine, EngineConfig, Owner, RecoveredRecord, RemoteTier, TierConfig,
};
use dittofs_metadata::MetadataStore;
use dittofs_nfs::export::ExportPolicy;
use dittofs_types::ShareId;
use dittofs_vfs::{DataDurability, Fs, RemoteBinding, ShareOptions, ShareRegistry, TrashPolicy};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// One served share and its configuration.
#[derive(Clone)]
pub struct ShareEntry {
    pub cfg: ShareCfg,
    pub fs: Arc<Fs>,
}

/// An open local block store.
#[derive(Clone)]
pub struct EngineEntry {
    pub engine: Arc<Engine>,
    /// Its directory (GC and audit state live under it).
    pub path: PathBuf,
    /// Journal records found at open, handed to every share opened on this engine.
    recovered: Arc<Vec<RecoveredRecord>>,
}

/// One change made (or, dry run, to be made) by an apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: &'static str,
    pub name: String,
    pub action: &'static str,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub generation: u64,
    pub changes: Vec<Change>,
    pub restart_required: bool,
}

/// An open remote tier. Remote stores with the same identity (bucket + endpoint +
/// prefix) share one tier: uploads, dedup and GC span all their shares.
#[derive(Clone)]
pub struct TierEntry {
    pub tier: RemoteTier,
    /// Its state directory (pending uploads).
    pub path: PathBuf,
}

#[derive(Default)]
struct Inner {
    state: DesiredState,
    stores: BTreeMap<String, Arc<dyn MetadataStore>>,
    engines: BTreeMap<String, EngineEntry>,
    /// By remote block store name (several names may map to one tier).
    tiers: BTreeMap<String, TierEntry>,
    /// Evictors by local block store name, each with the token that stops it.
    evictors: BTreeMap<String, (Evictor, CancellationToken)>,
    shares: BTreeMap<String, ShareEntry>,
}

pub struct Runtime {
    data_dir: PathBuf,
    pub registry: Arc<ShareRegistry>,
    inner: RwLock<Inner>,
    apply_lock: tokio::sync::Mutex<()>,
    nfs: Mutex<Option<dittofs_nfs::server::NfsServer>>,
    /// Users, groups and share grants (`control/identity.json`).
    identity: IdentityStore,
    pub started_at: SystemTime,
    /// Stops the tiers' background tasks (uploader, readahead, evictors) at shutdown.
    stop: CancellationToken,
}

/// Share options of the core from a share's configuration.
pub fn share_options(s: &ShareCfg) -> ShareOptions {
    ShareOptions {
        read_only: s.read_only,
        root_mode: s.root_mode,
        chunker: s.chunking.map(|c| dittofs_blockstore::ChunkerConfig {
            min: c.min,
            avg: c.avg,
            max: c.max,
        }),
        trash: TrashPolicy {
            enabled: s.trash.enabled,
            retention_days: s.trash.retention_days,
            max_size: s.trash.max_size,
            exclude: s.trash.exclude.clone(),
        },
    }
}

/// The NFS export policy of a share.
pub fn export_policy(id: ShareId, s: &ShareCfg) -> ControlResult<ExportPolicy> {
    ExportPolicy::from_options(id, &s.squash, s.anon_uid, s.anon_gid, &s.allowed_clients)
        .map(|p| p.with_secure(s.secure))
        .map_err(|e| ControlError::Invalid(format!("share {:?}: {e}", s.name)))
}

/// Where a metadata store keeps its files (None: in memory).
fn metadata_path(data_dir: &Path, m: &MetadataStoreCfg) -> Option<PathBuf> {
    (m.kind != "memory").then(|| {
        m.path
            .clone()
            .unwrap_or_else(|| data_dir.join("metadata").join(&m.name))
    })
}

fn open_metadata(data_dir: &Path, m: &MetadataStoreCfg) -> ControlResult<Arc<dyn MetadataStore>> {
    Ok(match metadata_path(data_dir, m) {
        None => Arc::new(dittofs_metadata::memory::MemoryStore::new()),
        Some(path) => {
            let s = dittofs_metadata::sled_store::SledStore::open(&path).map_err(|e| {
                ControlError::Internal(format!(
                    "metadata store {:?}: cannot open {}: {e}",
                    m.name,
                    path.display()
                ))
            })?;
            Arc::new(s)
        }
    })
}

/// The remote store client of a remote block store's configuration.
pub fn remote_store(
    r: &RemoteBlockStoreCfg,
) -> ControlResult<Arc<dyn dittofs_remote::RemoteStore>> {
    Ok(match r.kind.as_str() {
        "memory" => Arc::new(dittofs_remote::MemoryRemote::new(&r.name)),
        _ => Arc::new(
            dittofs_remote::S3Remote::new(&dittofs_remote::S3Config {
                bucket: r.bucket.clone(),
                region: r.region.clone(),
                endpoint: r.endpoint.clone(),
                prefix: r.prefix.clone(),
                force_path_style: r.force_path_style,
                access_key_id: r.access_key_id.clone(),
                secret_access_key: remote_secret(r)?,
                operation_timeout: None,
                max_attempts: None,
            })
            .map_err(|e| ControlError::Invalid(format!("remote block store {:?}: {e}", r.name)))?,
        ),
    })
}

/// The S3 secret key of a remote store: `secret_access_key`, else the content of
/// `secret_access_key_file`, else (with an `access_key_id`) `AWS_SECRET_ACCESS_KEY` from
/// the environment; empty when none is set (the S3 client then takes id and key from the
/// environment). The error names the file, never its content.
fn remote_secret(r: &RemoteBlockStoreCfg) -> ControlResult<String> {
    if !r.secret_access_key.is_empty() {
        return Ok(r.secret_access_key.clone());
    }
    if !r.secret_access_key_file.is_empty() {
        return crate::secrets::read_secret_file(Path::new(&r.secret_access_key_file)).map_err(
            |e| {
                ControlError::Invalid(format!(
                    "remote block store {:?}: secret_access_key_file: {e}",
                    r.name
                ))
            },
        );
    }
    if r.access_key_id.is_empty() {
        return Ok(String::new());
    }
    Ok(std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default())
}

/// This server's identity as the owner of its block stores.
fn owner(data_dir: &Path) -> ControlResult<Owner> {
    Ok(Owner {
        server_id: state::server_id(data_dir).map_err(|e| ControlError::Internal(e.to_string()))?,
        data_dir: data_dir.display().to_string(),
    })
}

fn open_engine(
    data_dir: &Path,
    l: &LocalBlockStoreCfg,
    owner: &Owner,
) -> ControlResult<EngineEntry> {
    let path = l
        .path
        .clone()
        .unwrap_or_else(|| data_dir.join("blocks").join(&l.name));
    let cannot = |e: BlockError| {
        let msg = format!(
            "local block store {:?}: cannot open {}: {e}",
            l.name,
            path.display()
        );
        match e {
            BlockError::InUse(_) => ControlError::Precondition(msg),
            _ => ControlError::Internal(msg),
        }
    };
    let (engine, rec) = Engine::open(&path, EngineConfig::default()).map_err(cannot)?;
    // One store, one server: a store another server claimed is refused (its GC alone
    // knows which chunks are live), before anything of its journal is replayed.
    engine.claim(owner).map_err(cannot)?;
    // The data directory holds the embedded metadata stores by default: keep the disk
    // reserve there too (stores elsewhere are added when applied).
    engine.guard_path(data_dir);
    if !rec.is_empty() {
        tracing::info!(store = %l.name, records = rec.len(), "replaying write journal");
    }
    Ok(EngineEntry {
        engine: Arc::new(engine),
        path,
        recovered: Arc::new(rec),
    })
}

/// The store client of each remote in `remotes`, its bucket created if asked, its
/// location claimed for `owner` ([`claim_remote`]): a location another server owns is
/// refused; one whose remote does not answer is served (the GC verifies before it sweeps).
async fn prepare_remotes<'a>(
    remotes: impl Iterator<Item = &'a RemoteBlockStoreCfg>,
    owner: &Owner,
) -> ControlResult<BTreeMap<String, Arc<dyn dittofs_remote::RemoteStore>>> {
    let mut out = BTreeMap::new();
    for r in remotes {
        let store = remote_store(r)?;
        if r.create_bucket {
            match tokio::time::timeout(Duration::from_secs(5), store.create_if_missing()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(remote = %r.name, error = %e, "cannot create the bucket")
                }
                Err(_) => tracing::warn!(remote = %r.name, "creating the bucket timed out"),
            }
        }
        let deadline = match r.read_timeout_seconds {
            0 => TierConfig::default().read_deadline,
            n => Duration::from_secs(u64::from(n)),
        };
        match claim_remote(store.as_ref(), owner, deadline.min(Duration::from_secs(10))).await {
            Ok(RemoteClaim::Owned) => {}
            Ok(RemoteClaim::Claimed) => {
                tracing::info!(remote = %r.name, identity = %store.identity(), "claimed the remote location for this server")
            }
            Ok(RemoteClaim::Unverified(e)) => tracing::warn!(remote = %r.name, error = %e,
                "cannot verify who owns the remote location; GC refuses to sweep it until it can"),
            Err(e) => {
                return Err(ControlError::Precondition(format!(
                    "remote block store {:?}: {e}",
                    r.name
                )));
            }
        }
        out.insert(r.name.clone(), store);
    }
    Ok(out)
}

/// The remote binding of share `s`, if it has a remote and its tier is open.
fn remote_binding(s: &ShareCfg, tiers: &BTreeMap<String, TierEntry>) -> Option<RemoteBinding> {
    let t = tiers.get(s.remote.as_ref()?)?;
    Some(RemoteBinding {
        tier: t.tier.clone(),
        engine_name: s.local.clone(),
        durability: if s.durability == "remote" {
            DataDurability::Remote
        } else {
            DataDurability::Local
        },
    })
}

/// Differences between two lists of named items.
fn diff_named<'a, T: PartialEq>(
    cur: &'a [T],
    new: &'a [T],
    name: impl Fn(&T) -> &str,
) -> (Vec<&'a T>, Vec<(&'a T, &'a T)>, Vec<&'a T>) {
    let added = new
        .iter()
        .filter(|n| !cur.iter().any(|c| name(c) == name(n)))
        .collect();
    let changed = new
        .iter()
        .filter_map(|n| {
            cur.iter()
                .find(|c| name(c) == name(n))
                .filter(|c| *c != n)
                .map(|c| (c, n))
        })
        .collect();
    let removed = cur
        .iter()
        .filter(|c| !new.iter().any(|n| name(c) == name(n)))
        .collect();
    (added, changed, removed)
}

fn change(kind: &'static str, name: &str, action: &'static str, detail: String) -> Change {
    Change {
        kind,
        name: name.to_owned(),
        action,
        detail,
    }
}

/// What a share edit changes, in words (for the change list).
fn share_diff(a: &ShareCfg, b: &ShareCfg) -> String {
    let mut v = Vec::new();
    if a.read_only != b.read_only {
        v.push(format!("read_only {} -> {}", a.read_only, b.read_only));
    }
    if a.squash != b.squash || a.anon_uid != b.anon_uid || a.anon_gid != b.anon_gid {
        v.push("identity squashing".into());
    }
    if a.allowed_clients != b.allowed_clients {
        v.push("allowed_clients".into());
    }
    if a.secure != b.secure {
        v.push(format!("secure {} -> {}", a.secure, b.secure));
    }
    if a.trash != b.trash {
        v.push(format!(
            "trash {} -> {}",
            if a.trash.enabled { "on" } else { "off" },
            if b.trash.enabled { "on" } else { "off" }
        ));
    }
    if a.chunking != b.chunking {
        v.push("chunking (applies to new writes)".into());
    }
    if a.root_mode != b.root_mode {
        v.push("root_mode (recorded; the root exists already, chmod it instead)".into());
    }
    v.join(", ")
}

impl Runtime {
    /// An empty runtime; [`Runtime::apply`] the initial state next.
    pub fn new(data_dir: &Path) -> Arc<Runtime> {
        Arc::new(Runtime {
            data_dir: data_dir.to_owned(),
            registry: Arc::new(ShareRegistry::new()),
            inner: RwLock::new(Inner::default()),
            apply_lock: tokio::sync::Mutex::new(()),
            nfs: Mutex::new(None),
            identity: IdentityStore::new(identity::identity_path(data_dir)),
            started_at: SystemTime::now(),
            stop: CancellationToken::new(),
        })
    }

    /// Open remote tiers by remote block store name.
    pub fn tiers(&self) -> BTreeMap<String, TierEntry> {
        self.inner.read().tiers.clone()
    }

    /// Evictor counters by local block store name.
    pub fn evictors(&self) -> BTreeMap<String, Evictor> {
        self.inner
            .read()
            .evictors
            .iter()
            .map(|(k, (e, _))| (k.clone(), e.clone()))
            .collect()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The applied desired state.
    pub fn state(&self) -> DesiredState {
        self.inner.read().state.clone()
    }

    pub fn shares(&self) -> Vec<ShareEntry> {
        self.inner.read().shares.values().cloned().collect()
    }

    pub fn share(&self, name: &str) -> ControlResult<ShareEntry> {
        self.inner
            .read()
            .shares
            .get(name)
            .cloned()
            .ok_or_else(|| ControlError::NotFound(format!("share {name:?} does not exist")))
    }

    /// The identity store (users, groups, grants). After changing it, call
    /// [`Runtime::refresh_exports`] so the adapters see the change.
    pub fn identity(&self) -> &IdentityStore {
        &self.identity
    }

    pub fn metadata_stores(&self) -> BTreeMap<String, Arc<dyn MetadataStore>> {
        self.inner.read().stores.clone()
    }

    pub fn engines(&self) -> BTreeMap<String, EngineEntry> {
        self.inner.read().engines.clone()
    }

    /// Hands the NFS server to the runtime so share changes update its export table.
    pub fn attach_nfs(&self, server: dittofs_nfs::server::NfsServer) {
        *self.nfs.lock() = Some(server);
        self.refresh_exports();
    }

    /// Export policies of every served share, each with its access table (users' levels).
    pub fn export_policies(&self) -> Vec<ExportPolicy> {
        let identity = self.identity.snapshot();
        self.shares()
            .iter()
            .filter_map(|s| match export_policy(s.fs.share_id(), &s.cfg) {
                Ok(p) => Some(p.with_access(Arc::new(identity.share_access(&s.cfg.name)))),
                Err(e) => {
                    // Validated before apply, so this is unreachable in practice; an
                    // unexported share is the safe outcome.
                    tracing::error!(error = %e, "share not exported");
                    None
                }
            })
            .collect()
    }

    /// Pushes the export policies (and the identity's access tables) to the NFS server.
    pub fn refresh_exports(&self) {
        let policies = self.export_policies();
        if let Some(nfs) = self.nfs.lock().as_ref() {
            nfs.set_exports(policies);
        }
    }

    /// Validates `desired` against the current state and applies it: opens new stores,
    /// opens/edits/closes shares, closes removed stores, persists the result. With
    /// `dry_run`, only reports what would change. All-or-nothing for stores and new
    /// shares: a failure to open one undoes the others.
    pub async fn apply(&self, desired: DesiredState, dry_run: bool) -> ControlResult<ApplyOutcome> {
        self.apply_inner(desired, dry_run, true).await
    }

    /// Applies the state the server starts with (persisted state, or the config file's
    /// stores and shares). A state from the config file is not persisted, so editing the
    /// file keeps working until the first change made through the API.
    pub async fn apply_initial(
        &self,
        desired: DesiredState,
        persist: bool,
    ) -> ControlResult<ApplyOutcome> {
        self.apply_inner(desired, false, persist).await
    }

    async fn apply_inner(
        &self,
        mut desired: DesiredState,
        dry_run: bool,
        persist: bool,
    ) -> ControlResult<ApplyOutcome> {
        let _serial = self.apply_lock.lock().await;
        let cur = self.state();
        if !persist {
            // Initial state: taken as is.
        } else if desired.generation == 0 {
            desired.generation = cur.generation + 1;
        } else if desired.generation < cur.generation {
            return Err(ControlError::Stale(format!(
                "generation {} is older than the applied generation {}; re-read the state and retry",
                desired.generation, cur.generation
            )));
        }
        if desired.nfs.is_none() {
            desired.nfs = cur.nfs.clone();
        }
        // Stores still needed by a share: a clearer message than "not defined".
        for s in &desired.shares {
            for (kind, store, present) in [
                (
                    "metadata",
                    &s.metadata,
                    desired.metadata_stores.iter().any(|m| m.name == s.metadata),
                ),
                (
                    "local block",
                    &s.local,
                    desired.block_stores.local.iter().any(|l| l.name == s.local),
                ),
            ] {
                let existed = cur.metadata_stores.iter().any(|m| &m.name == store)
                    || cur.block_stores.local.iter().any(|l| &l.name == store);
                if !present && existed {
                    return Err(ControlError::Precondition(format!(
                        "{kind} store {store:?} is in use by share {:?}; remove the share first",
                        s.name
                    )));
                }
            }
        }
        config::validate_state(
            &desired.metadata_stores,
            &desired.block_stores,
            &desired.shares,
        )
        .map_err(|e| ControlError::Invalid(e.to_string().replace("invalid configuration: ", "")))?;
        for s in &desired.shares {
            export_policy(ShareId(1), s)?;
        }

        let mut changes = Vec::new();
        let (m_add, m_chg, m_rm) =
            diff_named(&cur.metadata_stores, &desired.metadata_stores, |m| &m.name);
        let (l_add, l_chg, l_rm) =
            diff_named(&cur.block_stores.local, &desired.block_stores.local, |l| {
                &l.name
            });
        let (r_add, r_chg, r_rm) = diff_named(
            &cur.block_stores.remote,
            &desired.block_stores.remote,
            |r| &r.name,
        );
        let (s_add, s_chg, s_rm) = diff_named(&cur.shares, &desired.shares, |s| &s.name);
        for (old, new) in &s_chg {
            if old.remote != new.remote {
                return Err(ControlError::Precondition(format!(
                    "share {:?}: its remote block store cannot change (its data was uploaded there); remove the share and create it again",
                    new.name
                )));
            }
            if old.metadata != new.metadata || old.local != new.local {
                return Err(ControlError::Precondition(format!(
                    "share {:?}: its metadata and local block store cannot change (its data lives there); remove the share and create it again",
                    new.name
                )));
            }
        }
        let in_use = |kind: &str, name: &str| -> Option<String> {
            let mut users = cur.users_of(kind, name);
            users.retain(|u| desired.share(u).is_some());
            users.into_iter().next()
        };
        for (old, _) in &m_chg {
            if let Some(u) = in_use("metadata", &old.name) {
                return Err(ControlError::Precondition(format!(
                    "metadata store {:?} is in use by share {u:?}; its type and path cannot change",
                    old.name
                )));
            }
        }
        for (old, _) in &r_chg {
            if let Some(u) = in_use("remote", &old.name) {
                return Err(ControlError::Precondition(format!(
                    "remote block store {:?} is in use by share {u:?}; it cannot change",
                    old.name
                )));
            }
        }
        for r in &r_rm {
            if let Some(u) = in_use("remote", &r.name) {
                return Err(ControlError::Precondition(format!(
                    "remote block store {:?} is in use by share {u:?}; remove the share first",
                    r.name
                )));
            }
        }
        for (old, _) in &l_chg {
            if let Some(u) = in_use("local", &old.name) {
                return Err(ControlError::Precondition(format!(
                    "local block store {:?} is in use by share {u:?}; its type and path cannot change",
                    old.name
                )));
            }
        }
        for m in &m_add {
            changes.push(change("metadata_store", &m.name, "added", m.kind.clone()));
        }
        for (_, m) in &m_chg {
            changes.push(change("metadata_store", &m.name, "changed", m.kind.clone()));
        }
        for m in &m_rm {
            changes.push(change("metadata_store", &m.name, "removed", String::new()));
        }
        for l in &l_add {
            changes.push(change("block_store", &l.name, "added", "local fs".into()));
        }
        for (_, l) in &l_chg {
            changes.push(change("block_store", &l.name, "changed", "local fs".into()));
        }
        for l in &l_rm {
            changes.push(change("block_store", &l.name, "removed", "local".into()));
        }
        for r in &r_add {
            changes.push(change(
                "block_store",
                &r.name,
                "added",
                format!("remote {}", r.kind),
            ));
        }
        for (_, r) in &r_chg {
            changes.push(change(
                "block_store",
                &r.name,
                "changed",
                format!("remote {}", r.kind),
            ));
        }
        for r in &r_rm {
            changes.push(change("block_store", &r.name, "removed", "remote".into()));
        }
        for s in &s_add {
            changes.push(change(
                "share",
                &s.name,
                "added",
                format!("metadata {}, local {}", s.metadata, s.local),
            ));
        }
        for (old, new) in &s_chg {
            changes.push(change("share", &new.name, "changed", share_diff(old, new)));
        }
        for s in &s_rm {
            changes.push(change(
                "share",
                &s.name,
                "removed",
                "no longer served; its data stays in its stores".into(),
            ));
        }
        let restart_required = desired.nfs != cur.nfs;
        if restart_required {
            changes.push(change(
                "adapter",
                "nfs",
                "changed",
                "takes effect at the next start".into(),
            ));
        }
        if dry_run || (changes.is_empty() && desired == cur) {
            return Ok(ApplyOutcome {
                generation: if dry_run {
                    cur.generation
                } else {
                    desired.generation
                },
                changes,
                restart_required,
            });
        }

        // 1. Open new (and re-open changed, unused) stores; remotes first (network).
        let owner = owner(&self.data_dir)?;
        let remotes = prepare_remotes(
            r_add.iter().copied().chain(r_chg.iter().map(|(_, n)| *n)),
            &owner,
        )
        .await?;
        let mut new_stores: BTreeMap<String, Arc<dyn MetadataStore>> = BTreeMap::new();
        let mut new_engines: BTreeMap<String, EngineEntry> = BTreeMap::new();
        let mut new_tiers: BTreeMap<String, TierEntry> = BTreeMap::new();
        let cur_tiers = self.tiers();
        let opened = (|| -> ControlResult<()> {
            for m in m_add.iter().copied().chain(m_chg.iter().map(|(_, n)| *n)) {
                new_stores.insert(m.name.clone(), open_metadata(&self.data_dir, m)?);
            }
            for l in l_add.iter().copied().chain(l_chg.iter().map(|(_, n)| *n)) {
                new_engines.insert(l.name.clone(), open_engine(&self.data_dir, l, &owner)?);
            }
            for r in r_add.iter().copied().chain(r_chg.iter().map(|(_, n)| *n)) {
                let store = remotes.get(&r.name).cloned().ok_or_else(|| {
                    ControlError::Internal(format!("remote block store {:?} not prepared", r.name))
                })?;
                let identity = store.identity();
                let same = cur_tiers
                    .iter()
                    .chain(new_tiers.iter())
                    .find(|(n, t)| *n != &r.name && t.tier.identity() == identity)
                    .map(|(_, t)| t.clone());
                let entry = match same {
                    Some(t) => t,
                    None => {
                        let path = self.data_dir.join("remote").join(&r.name);
                        let tier = RemoteTier::start(
                            &r.name,
                            store,
                            &path,
                            TierConfig {
                                read_deadline: match r.read_timeout_seconds {
                                    0 => TierConfig::default().read_deadline,
                                    n => Duration::from_secs(u64::from(n)),
                                },
                                ..TierConfig::default()
                            },
                            self.stop.child_token(),
                        )
                        .map_err(|e| {
                            ControlError::Internal(format!("remote block store {:?}: {e}", r.name))
                        })?;
                        tier.set_owner(owner.clone());
                        TierEntry { tier, path }
                    }
                };
                new_tiers.insert(r.name.clone(), entry);
            }
            Ok(())
        })();
        if let Err(e) = opened {
            for s in new_stores.values() {
                let _ = s.close().await;
            }
            return Err(e);
        }
        // Every engine keeps the disk reserve on every metadata store's file system: a
        // metadata store that runs out of space may not recover.
        for m in &desired.metadata_stores {
            if let Some(path) = metadata_path(&self.data_dir, m) {
                let cur = self.inner.read().engines.clone();
                for e in cur.values().chain(new_engines.values()) {
                    e.engine.guard_path(&path);
                }
            }
        }
        let (all_stores, all_engines, all_tiers) = {
            let inner = self.inner.read();
            let mut st = inner.stores.clone();
            let mut en = inner.engines.clone();
            let mut ti = inner.tiers.clone();
            for (old, _) in &m_chg {
                st.remove(&old.name);
            }
            for (old, _) in &l_chg {
                en.remove(&old.name);
            }
            st.extend(new_stores.clone());
            en.extend(new_engines.clone());
            ti.extend(new_tiers.clone());
            (st, en, ti)
        };

        // 2. Open new shares.
        let ids = if s_add.is_empty() {
            BTreeMap::new()
        } else {
            let names: Vec<String> = s_add.iter().map(|s| s.name.clone()).collect();
            state::share_ids(&self.data_dir, &names)
                .map_err(|e| ControlError::Internal(e.to_string()))?
        };
        let mut opened_shares = Vec::new();
        for s in &s_add {
            match self
                .open_share(s, &ids, &all_stores, &all_engines, &all_tiers)
                .await
            {
                Ok(e) => opened_shares.push(e),
                Err(e) => {
                    for n in new_stores.values() {
                        let _ = n.close().await;
                    }
                    return Err(e);
                }
            }
        }

        // 3. Edit changed shares (options apply in place; the export table is refreshed
        //    below).
        for (_, new) in &s_chg {
            let entry = self.share(&new.name)?;
            entry
                .fs
                .set_options(share_options(new))
                .await
                .map_err(|e| ControlError::from_fs(&format!("share {:?}", new.name), e))?;
            if let Some(b) = remote_binding(new, &all_tiers) {
                entry.fs.attach_remote(b);
            }
        }

        // 4. Publish.
        let (removed_shares, old_stores, old_engines) = {
            let mut inner = self.inner.write();
            let mut removed_shares = Vec::new();
            for s in &s_rm {
                if let Some(e) = inner.shares.remove(&s.name) {
                    self.registry.remove(e.fs.share_id());
                    removed_shares.push(e);
                }
            }
            for e in opened_shares {
                self.registry.insert(e.fs.clone());
                inner.shares.insert(e.cfg.name.clone(), e);
            }
            for (_, new) in &s_chg {
                if let Some(e) = inner.shares.get_mut(&new.name) {
                    e.cfg = (*new).clone();
                }
            }
            let mut old_stores = Vec::new();
            for name in m_rm
                .iter()
                .map(|m| &m.name)
                .chain(m_chg.iter().map(|(o, _)| &o.name))
            {
                old_stores.extend(inner.stores.remove(name));
            }
            let mut old_engines = Vec::new();
            for name in l_rm
                .iter()
                .map(|l| &l.name)
                .chain(l_chg.iter().map(|(o, _)| &o.name))
            {
                old_engines.extend(inner.engines.remove(name));
            }
            inner.stores.extend(new_stores);
            inner.engines.extend(new_engines);
            for r in &r_rm {
                inner.tiers.remove(&r.name);
            }
            inner.tiers.extend(new_tiers);
            inner.state = desired.clone();
            (removed_shares, old_stores, old_engines)
        };
        self.refresh_exports();
        self.refresh_evictors();

        // 5. Retire removed shares and stores (nothing routes to them any more).
        for e in &removed_shares {
            if let Err(err) = e.fs.flush_all().await {
                tracing::error!(share = %e.cfg.name, error = %err, "flush of a removed share failed; its journal keeps the data");
            }
        }
        for e in &old_engines {
            if let Err(err) = e.engine.commit_durable().await {
                tracing::error!(error = %err, "journal sync of a removed block store failed");
            }
        }
        for s in &old_stores {
            if let Err(err) = s.close().await {
                tracing::error!(error = %err, "closing a removed metadata store failed");
            }
        }

        if persist {
            state::save(&self.data_dir, &desired).map_err(|e| {
                ControlError::Internal(format!(
                    "applied, but saving the state failed (it will be lost at restart): {e}"
                ))
            })?;
        }
        tracing::info!(
            generation = desired.generation,
            changes = changes.len(),
            "configuration applied"
        );
        Ok(ApplyOutcome {
            generation: desired.generation,
            changes,
            restart_required,
        })
    }

    async fn open_share(
        &self,
        s: &ShareCfg,
        ids: &BTreeMap<String, u32>,
        stores: &BTreeMap<String, Arc<dyn MetadataStore>>,
        engines: &BTreeMap<String, EngineEntry>,
        tiers: &BTreeMap<String, TierEntry>,
    ) -> ControlResult<ShareEntry> {
        let serr = |d: String| ControlError::Internal(format!("share {:?}: {d}", s.name));
        let store = stores
            .get(&s.metadata)
            .cloned()
            .ok_or_else(|| serr(format!("metadata store {:?} is not open", s.metadata)))?;
        let eng = engines
            .get(&s.local)
            .cloned()
            .ok_or_else(|| serr(format!("local block store {:?} is not open", s.local)))?;
        let id = ShareId(
            ids.get(&s.name)
                .copied()
                .ok_or_else(|| serr("no share id assigned".into()))?,
        );
        let fs = Fs::open(store, eng.engine.clone(), id, &s.name, share_options(s))
            .await
            .map_err(|e| serr(e.to_string()))?;
        if let Some(r) = &s.remote {
            let b = remote_binding(s, tiers)
                .ok_or_else(|| serr(format!("remote block store {r:?} is not open")))?;
            fs.attach_remote(b);
        }
        let n = fs
            .recover(&eng.recovered)
            .await
            .map_err(|e| serr(format!("journal replay: {e}")))?;
        if n > 0 {
            tracing::info!(share = %s.name, files = n, "recovered unflushed writes");
        }
        Ok(ShareEntry { cfg: s.clone(), fs })
    }

    /// Background flusher: turns idle or large dirty files into chunks and reclaims
    /// journal segments whose data is committed. Runs until `stop` is cancelled.
    pub fn spawn_flusher(self: &Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let rt = self.clone();
        let span = tracing::info_span!("task", name = "flusher");
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let mut tick = tokio::time::interval(dittofs_vfs::FLUSH_TICK);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    for s in rt.shares() {
                        if let Err(e) =
                            s.fs.flush_some(dittofs_vfs::FLUSH_IDLE, dittofs_vfs::FLUSH_MAX_DIRTY)
                                .await
                        {
                            tracing::warn!(share = %s.cfg.name, error = %e, "background flush failed");
                        }
                    }
                    rt.reclaim_journals().await;
                }
            },
            span,
        ))
    }

    /// Hourly recycle-bin reaper (retention days, max size, stale records).
    pub fn spawn_trash_reaper(
        self: &Arc<Self>,
        every: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let rt = self.clone();
        let span = tracing::info_span!("task", name = "trash-reaper");
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    for s in rt.shares() {
                        if !s.cfg.trash.enabled {
                            continue;
                        }
                        match s.fs.trash_reap(dittofs_types::Timestamp::now()).await {
                            Ok(r) if r.expired + r.evicted > 0 => tracing::info!(
                                share = %s.cfg.name, expired = r.expired, evicted = r.evicted,
                                bytes = r.bytes_freed, "recycle bin reaped"
                            ),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(share = %s.cfg.name, error = %e, "recycle bin reaper failed")
                            }
                        }
                    }
                }
            },
            span,
        ))
    }

    async fn reclaim_journals(&self) {
        // Flush commits are durable, so every segment the journal reports reclaimable is
        // fully reflected in durable metadata; sync anyway to cover buffered commits.
        for store in self.metadata_stores().values() {
            if let Err(e) = store.sync().await {
                tracing::warn!(error = %e, "metadata sync before journal reclaim failed");
                return;
            }
        }
        for (name, e) in self.engines() {
            if let Err(err) = e.engine.reclaim_journal() {
                tracing::warn!(store = %name, error = %err, "journal reclaim failed");
            }
        }
    }

    /// Starts, keeps or stops the evictor of every local block store: one runs (and the
    /// store's cap is enforced) only when the store has a cap and every share on it uses
    /// the same remote tier; a chunk of a share without that remote must stay local.
    fn refresh_evictors(&self) {
        let mut inner = self.inner.write();
        let state = inner.state.clone();
        let mut wanted: BTreeMap<String, RemoteTier> = BTreeMap::new();
        for l in &state.block_stores.local {
            let Some(entry) = inner.engines.get(&l.name) else {
                continue;
            };
            let users: Vec<&ShareCfg> = state.shares.iter().filter(|s| s.local == l.name).collect();
            let tiers: Vec<Option<RemoteTier>> = users
                .iter()
                .map(|s| {
                    s.remote
                        .as_ref()
                        .and_then(|r| inner.tiers.get(r))
                        .map(|t| t.tier.clone())
                })
                .collect();
            let single = match tiers.first() {
                Some(Some(first))
                    if tiers
                        .iter()
                        .all(|t| t.as_ref().is_some_and(|t| t.identity() == first.identity())) =>
                {
                    Some(first.clone())
                }
                _ => None,
            };
            match (l.max_size, single) {
                (0, _) => entry.engine.set_capacity(0),
                (cap, Some(tier)) => {
                    entry.engine.set_capacity(cap);
                    wanted.insert(l.name.clone(), tier);
                }
                (cap, None) => {
                    entry.engine.set_capacity(0);
                    if !users.is_empty() {
                        tracing::warn!(store = %l.name, cap,
                            "max_size not enforced: eviction needs every share on the store to use the same remote");
                    }
                }
            }
        }
        let stale: Vec<String> = inner
            .evictors
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for k in stale {
            if let Some((_, stop)) = inner.evictors.remove(&k) {
                stop.cancel();
            }
        }
        for (name, tier) in wanted {
            if inner.evictors.contains_key(&name) {
                continue;
            }
            let Some(entry) = inner.engines.get(&name) else {
                continue;
            };
            let stop = self.stop.child_token();
            let ev = Evictor::start(&name, &entry.engine, &tier, stop.clone());
            inner.evictors.insert(name, (ev, stop));
        }
    }

    /// Flushes every share, syncs and closes the stores.
    pub async fn shutdown(&self) {
        let _serial = self.apply_lock.lock().await;
        for s in self.shares() {
            if let Err(e) = s.fs.flush_all().await {
                tracing::error!(share = %s.cfg.name, error = %e, "flush at shutdown failed; the journal keeps the data");
            }
        }
        for e in self.engines().values() {
            if let Err(err) = e.engine.commit_durable().await {
                tracing::error!(error = %err, "journal sync at shutdown failed");
            }
        }
        self.reclaim_journals().await;
        // Pending uploads are durable (markers) and resume at the next start; give the
        // uploaders a moment to finish what is in flight, then stop the tier tasks.
        for (name, t) in self.tiers() {
            let left = t.tier.drain(Duration::from_secs(5)).await;
            if left > 0 {
                tracing::info!(remote = %name, pending = left, "uploads resume at the next start");
            }
        }
        self.stop.cancel();
        for (name, store) in self.metadata_stores() {
            if let Err(e) = store.close().await {
                tracing::error!(store = %name, error = %e, "closing metadata store failed");
            }
        }
    }
}
