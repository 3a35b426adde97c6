//! The composition root and runtime registry: owns the named metadata stores, local block
//! engines and shares, applies a new desired state while serving (stores and shares
//! added, changed and removed without touching the others: [`crate::plan`] computes the
//! steps, `Runtime::execute` carries them out), runs the background flusher
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

use crate::config::{LocalBlockStoreCfg, MetadataStoreCfg, RemoteBlockStoreCfg, ShareCfg};
use crate::error::{ControlError, ControlResult};
use crate::identity::{self, Identity, IdentityStore};
use crate::plan::{self, Action, Generation, Plan, Step, export_policy};
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

pub use crate::plan::Change;

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
        let deadline = read_deadline(r);
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

/// The remote tier every share of `users` uses, if they all use the same one (and there
/// is at least one share).
fn single_tier(users: &[&ShareCfg], tiers: &BTreeMap<String, TierEntry>) -> Option<RemoteTier> {
    let tier_of = |s: &&ShareCfg| Some(tiers.get(s.remote.as_ref()?)?.tier.clone());
    let first = tier_of(users.first()?)?;
    users
        .iter()
        .all(|s| tier_of(s).is_some_and(|t| t.identity() == first.identity()))
        .then_some(first)
}

/// The share a step adds, if it adds one.
fn added_share(step: &Step) -> Option<&ShareCfg> {
    match step {
        Step::Share(Action::Add(s)) => Some(s),
        _ => None,
    }
}

/// How long a cold read waits for remote block store `r`.
fn read_deadline(r: &RemoteBlockStoreCfg) -> Duration {
    match r.read_timeout_seconds {
        0 => TierConfig::default().read_deadline,
        n => Duration::from_secs(u64::from(n)),
    }
}

/// Stores by name: those an apply opened (not yet published), or those a new share can
/// use (the open ones, replaced ones swapped for their new instances).
#[derive(Clone, Default)]
struct Stores {
    stores: BTreeMap<String, Arc<dyn MetadataStore>>,
    engines: BTreeMap<String, EngineEntry>,
    tiers: BTreeMap<String, TierEntry>,
}

impl Stores {
    fn extend(&mut self, other: Stores) {
        self.stores.extend(other.stores);
        self.engines.extend(other.engines);
        self.tiers.extend(other.tiers);
    }

    /// Undoes an apply's opens (a later step failed): the metadata stores are closed,
    /// the engines released when dropped.
    async fn close(&self) {
        for s in self.stores.values() {
            let _ = s.close().await;
        }
    }
}

/// What an apply took out of service, retired once nothing routes to it.
#[derive(Default)]
struct Retired {
    shares: Vec<ShareEntry>,
    stores: Vec<Arc<dyn MetadataStore>>,
    engines: Vec<EngineEntry>,
}

impl Retired {
    /// Flushes removed shares, syncs removed engines' journals, closes removed stores.
    async fn retire(self) {
        for e in &self.shares {
            if let Err(err) = e.fs.flush_all().await {
                tracing::error!(share = %e.cfg.name, error = %err, "flush of a removed share failed; its journal keeps the data");
            }
        }
        for e in &self.engines {
            if let Err(err) = e.engine.commit_durable().await {
                tracing::error!(error = %err, "journal sync of a removed block store failed");
            }
        }
        for s in &self.stores {
            if let Err(err) = s.close().await {
                tracing::error!(error = %err, "closing a removed metadata store failed");
            }
        }
    }
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
        self.export_policies_of(&self.identity.snapshot())
    }

    fn export_policies_of(&self, identity: &Identity) -> Vec<ExportPolicy> {
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

    /// Pushes the export policies, the identity's access tables and the names of its
    /// uids and gids (NFSv4 owners) to the NFS server, all from one identity snapshot.
    pub fn refresh_exports(&self) {
        let identity = self.identity.snapshot();
        let policies = self.export_policies_of(&identity);
        if let Some(nfs) = self.nfs.lock().as_ref() {
            nfs.set_exports(policies);
            nfs.set_id_names(Arc::new(identity.id_names()));
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
        desired: DesiredState,
        dry_run: bool,
        persist: bool,
    ) -> ControlResult<ApplyOutcome> {
        let _serial = self.apply_lock.lock().await;
        let cur = self.state();
        let rule = if persist {
            Generation::Checked
        } else {
            Generation::AsGiven
        };
        let plan = plan::plan(&cur, desired, rule)?;
        let outcome = |generation| ApplyOutcome {
            generation,
            changes: plan.summary(),
            restart_required: plan.restart_required(),
        };
        if dry_run {
            return Ok(outcome(plan.current_generation));
        }
        if plan.noop(&cur) {
            return Ok(outcome(plan.desired.generation));
        }
        self.execute(&plan).await?;
        if persist {
            state::save(&self.data_dir, &plan.desired).map_err(|e| {
                ControlError::Internal(format!(
                    "applied, but saving the state failed (it will be lost at restart): {e}"
                ))
            })?;
        }
        tracing::info!(
            generation = plan.desired.generation,
            changes = plan.steps.len(),
            "configuration applied"
        );
        Ok(outcome(plan.desired.generation))
    }

    /// Carries out a plan in phases that keep its order: open the new stores (remote
    /// locations verified first, over the network), open the new shares, edit the changed
    /// ones, then publish everything in one swap (shares and stores removed, new ones in,
    /// the new state), refresh the export table and evictors, and retire what was removed
    /// (flush, journal sync, close). A failure before the swap closes the stores opened so
    /// far and leaves the runtime as it was (share edits excepted: they apply in place).
    async fn execute(&self, plan: &Plan) -> ControlResult<()> {
        let opened = self.open_stores(plan).await?;
        self.guard_metadata_paths(&plan.desired, &opened);
        let shares = match self.open_and_edit_shares(plan, &opened).await {
            Ok(shares) => shares,
            Err(e) => {
                opened.close().await;
                return Err(e);
            }
        };
        let retired = self.publish(plan, opened, shares);
        self.refresh_exports();
        self.refresh_evictors();
        retired.retire().await;
        Ok(())
    }

    /// Opens the stores a plan adds or replaces; all or none.
    async fn open_stores(&self, plan: &Plan) -> ControlResult<Stores> {
        let owner = owner(&self.data_dir)?;
        let remotes = prepare_remotes(
            plan.steps.iter().filter_map(|s| match s {
                Step::RemoteStore(a) => a.new_cfg(),
                _ => None,
            }),
            &owner,
        )
        .await?;
        let mut opened = Stores::default();
        if let Err(e) = self.open_each(plan, &remotes, &owner, &mut opened) {
            opened.close().await;
            return Err(e);
        }
        Ok(opened)
    }

    fn open_each(
        &self,
        plan: &Plan,
        remotes: &BTreeMap<String, Arc<dyn dittofs_remote::RemoteStore>>,
        owner: &Owner,
        opened: &mut Stores,
    ) -> ControlResult<()> {
        let cur_tiers = self.tiers();
        for step in &plan.steps {
            match step {
                Step::MetadataStore(a) => {
                    if let Some(m) = a.new_cfg() {
                        let s = open_metadata(&self.data_dir, m)?;
                        opened.stores.insert(m.name.clone(), s);
                    }
                }
                Step::LocalStore(a) => {
                    if let Some(l) = a.new_cfg() {
                        let e = open_engine(&self.data_dir, l, owner)?;
                        opened.engines.insert(l.name.clone(), e);
                    }
                }
                Step::RemoteStore(a) => {
                    if let Some(r) = a.new_cfg() {
                        let open = cur_tiers.iter().chain(opened.tiers.iter());
                        let t = self.open_tier(r, remotes, owner, open)?;
                        opened.tiers.insert(r.name.clone(), t);
                    }
                }
                Step::Share(_) | Step::Nfs => {}
            }
        }
        Ok(())
    }

    /// The tier of remote block store `r`: the open one of another name with the same
    /// identity (bucket + endpoint + prefix), else a new one.
    fn open_tier<'a>(
        &self,
        r: &RemoteBlockStoreCfg,
        remotes: &BTreeMap<String, Arc<dyn dittofs_remote::RemoteStore>>,
        owner: &Owner,
        mut open: impl Iterator<Item = (&'a String, &'a TierEntry)>,
    ) -> ControlResult<TierEntry> {
        let store = remotes.get(&r.name).cloned().ok_or_else(|| {
            ControlError::Internal(format!("remote block store {:?} not prepared", r.name))
        })?;
        let identity = store.identity();
        if let Some((_, t)) = open.find(|(n, t)| **n != r.name && t.tier.identity() == identity) {
            return Ok(t.clone());
        }
        let path = self.data_dir.join("remote").join(&r.name);
        let config = TierConfig {
            read_deadline: read_deadline(r),
            ..TierConfig::default()
        };
        let tier = RemoteTier::start(&r.name, store, &path, config, self.stop.child_token())
            .map_err(|e| ControlError::Internal(format!("remote block store {:?}: {e}", r.name)))?;
        tier.set_owner(owner.clone());
        Ok(TierEntry { tier, path })
    }

    /// Every engine keeps the disk reserve on every metadata store's file system: a
    /// metadata store that runs out of space may not recover.
    fn guard_metadata_paths(&self, desired: &DesiredState, opened: &Stores) {
        let cur = self.engines();
        for m in &desired.metadata_stores {
            if let Some(path) = metadata_path(&self.data_dir, m) {
                for e in cur.values().chain(opened.engines.values()) {
                    e.engine.guard_path(&path);
                }
            }
        }
    }

    /// Opens the shares a plan adds and edits the ones it changes (options apply in place;
    /// the export table is refreshed after the swap). Returns the opened shares.
    async fn open_and_edit_shares(
        &self,
        plan: &Plan,
        opened: &Stores,
    ) -> ControlResult<Vec<ShareEntry>> {
        let view = {
            let inner = self.inner.read();
            let mut v = Stores {
                stores: inner.stores.clone(),
                engines: inner.engines.clone(),
                tiers: inner.tiers.clone(),
            };
            v.extend(opened.clone());
            v
        };
        let added: Vec<&ShareCfg> = plan.steps.iter().filter_map(added_share).collect();
        let mut shares = Vec::new();
        if !added.is_empty() {
            let names: Vec<String> = added.iter().map(|s| s.name.clone()).collect();
            let ids = state::share_ids(&self.data_dir, &names)
                .map_err(|e| ControlError::Internal(e.to_string()))?;
            for s in added {
                shares.push(self.open_share(s, &ids, &view).await?);
            }
        }
        for step in &plan.steps {
            if let Step::Share(Action::Change { new, .. }) = step {
                self.edit_share(new, &view.tiers).await?;
            }
        }
        Ok(shares)
    }

    async fn edit_share(
        &self,
        new: &ShareCfg,
        tiers: &BTreeMap<String, TierEntry>,
    ) -> ControlResult<()> {
        let entry = self.share(&new.name)?;
        entry
            .fs
            .set_options(share_options(new))
            .await
            .map_err(|e| ControlError::from_fs(&format!("share {:?}", new.name), e))?;
        if let Some(b) = remote_binding(new, tiers) {
            entry.fs.attach_remote(b);
        }
        Ok(())
    }

    /// The swap: removed shares unregistered (new calls get STALE), new shares registered,
    /// changed ones take their new configuration, removed and replaced stores taken out,
    /// opened ones in, the new state recorded. Returns what is to be retired.
    fn publish(&self, plan: &Plan, opened: Stores, shares: Vec<ShareEntry>) -> Retired {
        let mut inner = self.inner.write();
        let mut retired = Retired::default();
        for step in &plan.steps {
            match step {
                Step::Share(Action::Remove(s)) => {
                    if let Some(e) = inner.shares.remove(&s.name) {
                        self.registry.remove(e.fs.share_id());
                        retired.shares.push(e);
                    }
                }
                Step::Share(Action::Change { new, .. }) => {
                    if let Some(e) = inner.shares.get_mut(&new.name) {
                        e.cfg = new.clone();
                    }
                }
                Step::MetadataStore(a) => {
                    let old = a.old_cfg().and_then(|o| inner.stores.remove(&o.name));
                    retired.stores.extend(old);
                }
                Step::LocalStore(a) => {
                    let old = a.old_cfg().and_then(|o| inner.engines.remove(&o.name));
                    retired.engines.extend(old);
                }
                Step::RemoteStore(Action::Remove(r)) => {
                    inner.tiers.remove(&r.name);
                }
                Step::Share(Action::Add(_)) | Step::RemoteStore(_) | Step::Nfs => {}
            }
        }
        for e in shares {
            self.registry.insert(e.fs.clone());
            inner.shares.insert(e.cfg.name.clone(), e);
        }
        inner.stores.extend(opened.stores);
        inner.engines.extend(opened.engines);
        inner.tiers.extend(opened.tiers);
        inner.state = plan.desired.clone();
        retired
    }

    async fn open_share(
        &self,
        s: &ShareCfg,
        ids: &BTreeMap<String, u32>,
        view: &Stores,
    ) -> ControlResult<ShareEntry> {
        let serr = |d: String| ControlError::Internal(format!("share {:?}: {d}", s.name));
        let store = view
            .stores
            .get(&s.metadata)
            .cloned()
            .ok_or_else(|| serr(format!("metadata store {:?} is not open", s.metadata)))?;
        let eng = view
            .engines
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
            let b = remote_binding(s, &view.tiers)
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
            let single = single_tier(&users, &inner.tiers);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_that_cannot_open_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(dir.path());
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"not a directory").unwrap();
        let mut desired = DesiredState {
            metadata_stores: vec![MetadataStoreCfg {
                name: "m".into(),
                kind: "sled".into(),
                path: None,
            }],
            ..Default::default()
        };
        desired.block_stores.local = vec![LocalBlockStoreCfg {
            name: "l".into(),
            kind: "fs".into(),
            path: Some(file.join("blocks")),
            max_size: 0,
        }];
        desired.shares = vec![ShareCfg {
            metadata: "m".into(),
            local: "l".into(),
            ..ShareCfg::with_defaults("/a")
        }];

        let err = rt.apply(desired.clone(), false).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("local block store \"l\": cannot open"),
            "{err}"
        );
        assert_eq!(rt.state(), DesiredState::default(), "nothing published");
        assert!(rt.metadata_stores().is_empty() && rt.engines().is_empty());
        assert!(rt.shares().is_empty() && !state::state_path(dir.path()).exists());

        // The failed apply left nothing open: the same stores open now.
        desired.block_stores.local[0].path = None;
        let out = rt.apply(desired, false).await.unwrap();
        assert_eq!(out.generation, 1);
        let served = rt.share("/a").unwrap();
        assert!(rt.registry.by_id(served.fs.share_id()).is_some());
        rt.shutdown().await;
    }
}
