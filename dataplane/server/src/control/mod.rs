//! The gRPC `ControlService` (`dittofs.control.v1`): a thin adapter over the runtime
//! registry ([`crate::runtime::Runtime`]), the job table and the maintenance module. CRUD
//! calls are read-modify-apply of the desired state, so every path to a change goes
//! through `Runtime::apply` (validation, diff, persistence in one place).

pub mod auth;
pub mod convert;
pub mod users;

use crate::config::NfsSection;
use crate::error::{ControlError, ControlResult};
use crate::identity::Grantee;
use crate::jobs::{JobError, JobResult, JobState, Jobs};
use crate::maintenance::{self, GcInput};
use crate::runtime::{Runtime, ShareEntry};
use crate::state::DesiredState;
use convert::*;
use dittofs_metadata::audit::rfc3339_utc;
use dittofs_proto::v1 as pb;
use dittofs_proto::v1::control_service_server::ControlService;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Adapter and listener facts the status call reports.
#[derive(Clone, Debug, Default)]
pub struct ServerInfo {
    pub nfs: NfsSection,
    pub nfs_running: bool,
}

pub struct Control {
    rt: Arc<Runtime>,
    jobs: Arc<Jobs>,
    info: ServerInfo,
    nfs: Option<dittofs_nfs::server::NfsServer>,
    stop: CancellationToken,
}

type R<T> = Result<Response<T>, Status>;

fn file_kind(k: dittofs_types::FileType) -> &'static str {
    use dittofs_types::FileType::*;
    match k {
        Regular => "file",
        Directory => "directory",
        Symlink => "symlink",
        _ => "other",
    }
}

impl Control {
    pub fn new(
        rt: Arc<Runtime>,
        info: ServerInfo,
        nfs: Option<dittofs_nfs::server::NfsServer>,
        stop: CancellationToken,
    ) -> Control {
        Control {
            rt,
            jobs: Arc::new(Jobs::default()),
            info,
            nfs,
            stop,
        }
    }

    async fn apply_edit(
        &self,
        f: impl FnOnce(&mut DesiredState) -> ControlResult<()>,
    ) -> ControlResult<u64> {
        let mut st = self.rt.state();
        f(&mut st)?;
        st.generation = 0; // next generation
        Ok(self.rt.apply(st, false).await?.generation)
    }

    /// The reply of a removal that does not change the desired state (users, groups).
    fn unchanged_generation(&self) -> pb::RemoveResponse {
        pb::RemoveResponse {
            applied_generation: self.rt.state().generation,
        }
    }

    fn share(&self, name: &str) -> ControlResult<ShareEntry> {
        self.rt.share(name)
    }

    fn store_dir(&self, local: &str) -> ControlResult<std::path::PathBuf> {
        self.rt
            .engines()
            .get(local)
            .map(|e| e.path.clone())
            .ok_or_else(|| {
                ControlError::NotFound(format!("local block store {local:?} is not open"))
            })
    }
}

/// A remote store sent back with the redacted secret keeps the stored one (the key, or
/// the file holding it).
fn keep_redacted_secrets(new: &mut DesiredState, cur: &DesiredState) {
    for r in &mut new.block_stores.remote {
        if r.secret_access_key == REDACTED {
            let stored = cur.block_stores.remote.iter().find(|c| c.name == r.name);
            r.secret_access_key = stored
                .map(|c| c.secret_access_key.clone())
                .unwrap_or_default();
            r.secret_access_key_file = stored
                .map(|c| c.secret_access_key_file.clone())
                .unwrap_or_default();
        }
    }
}

fn nonempty<'a>(what: &str, s: &'a str) -> ControlResult<&'a str> {
    if s.is_empty() {
        Err(ControlError::Invalid(format!("{what} is required")))
    } else {
        Ok(s)
    }
}

#[tonic::async_trait]
impl ControlService for Control {
    async fn apply_config(
        &self,
        req: Request<pb::ApplyConfigRequest>,
    ) -> R<pb::ApplyConfigResponse> {
        let req = req.into_inner();
        let state = req
            .state
            .ok_or_else(|| ControlError::Invalid("state is required".into()))?;
        let identity = state.identity.clone();
        let mut desired = state_from_pb(state, &self.info.nfs)?;
        keep_redacted_secrets(&mut desired, &self.rt.state());
        // The identity is checked before anything changes and replaced after the stores
        // and shares were applied (its grants may name shares this apply creates).
        let identity = match identity {
            Some(i) => {
                let shares: Vec<String> = desired.shares.iter().map(|s| s.name.clone()).collect();
                Some(users::identity_from_pb(&self.rt.identity().snapshot(), i, &shares).await?)
            }
            None => None,
        };
        let out = self.rt.apply(desired, req.dry_run).await?;
        let mut identity_changes = Vec::new();
        if let Some(i) = identity {
            identity_changes = users::identity_changes(&self.rt.identity().snapshot(), &i);
            if !req.dry_run {
                self.rt.identity().replace(i).map_err(ControlError::from)?;
                self.rt.refresh_exports();
            }
        }
        Ok(Response::new(pb::ApplyConfigResponse {
            applied_generation: out.generation,
            changes: out
                .changes
                .into_iter()
                .map(|c| pb::Change {
                    kind: c.kind.into(),
                    name: c.name,
                    action: c.action.into(),
                    detail: c.detail,
                })
                .chain(identity_changes)
                .collect(),
            restart_required: out.restart_required,
        }))
    }

    async fn get_config(&self, _: Request<pb::GetConfigRequest>) -> R<pb::DesiredState> {
        let mut st = state_to_pb(&self.rt.state());
        st.identity = Some(users::identity_to_pb(&self.rt.identity().snapshot()));
        Ok(Response::new(st))
    }

    async fn get_status(&self, _: Request<pb::GetStatusRequest>) -> R<pb::StatusResponse> {
        let st = self.rt.state();
        let ok = pb::Health::Ok as i32;
        let shares = self
            .rt
            .shares()
            .iter()
            .map(|s| pb::ShareStatus {
                name: s.cfg.name.clone(),
                share_id: s.fs.share_id().0,
                health: ok,
                message: String::new(),
                metadata: s.cfg.metadata.clone(),
                local: s.cfg.local.clone(),
                remote: s.cfg.remote.clone().unwrap_or_default(),
                read_only: s.cfg.read_only,
                trash_enabled: s.cfg.trash.enabled,
            })
            .collect();
        let mut stores = Vec::new();
        for m in &st.metadata_stores {
            stores.push(pb::StoreStatus {
                name: m.name.clone(),
                kind: "metadata".into(),
                r#type: m.kind.clone(),
                health: ok,
                used_by: st.users_of("metadata", &m.name),
                ..Default::default()
            });
        }
        let engines = self.rt.engines();
        for l in &st.block_stores.local {
            let (health, message, used, avail) =
                match engines.get(&l.name).map(|e| e.engine.disk_stats()) {
                    Some(Ok(d)) => (ok, String::new(), d.cas_bytes, d.avail_bytes),
                    Some(Err(e)) => (pb::Health::Degraded as i32, e.to_string(), 0, 0),
                    None => (pb::Health::Failed as i32, "not open".into(), 0, 0),
                };
            stores.push(pb::StoreStatus {
                name: l.name.clone(),
                kind: "local".into(),
                r#type: l.kind.clone(),
                health,
                message,
                used_by: st.users_of("local", &l.name),
                bytes_used: used,
                bytes_available: avail,
            });
        }
        for r in &st.block_stores.remote {
            stores.push(pb::StoreStatus {
                name: r.name.clone(),
                kind: "remote".into(),
                r#type: r.kind.clone(),
                health: ok,
                message: "registered (remote tier not in this build)".into(),
                used_by: st.users_of("remote", &r.name),
                ..Default::default()
            });
        }
        let clients = self
            .nfs
            .as_ref()
            .map(|n| n.clients())
            .unwrap_or_default()
            .into_iter()
            .map(|c| pb::ClientInfo {
                address: c.addr.to_string(),
                protocol: "nfs3".into(),
                connected_at_unix: c
                    .connected_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                calls: c.calls,
            })
            .collect();
        Ok(Response::new(pb::StatusResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            applied_generation: st.generation,
            data_dir: self.rt.data_dir().display().to_string(),
            started_at_unix: self
                .rt
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            shares,
            stores,
            adapters: vec![pb::AdapterStatus {
                name: "nfs".into(),
                enabled: self.info.nfs.enabled,
                bind: self.info.nfs.bind.clone(),
                port: u32::from(self.info.nfs.port),
                running: self.info.nfs_running,
            }],
            clients,
        }))
    }

    async fn add_metadata_store(
        &self,
        req: Request<pb::AddMetadataStoreRequest>,
    ) -> R<pb::MetadataStore> {
        let m = req
            .into_inner()
            .store
            .ok_or_else(|| ControlError::Invalid("store is required".into()))?;
        let m = metadata_from_pb(m);
        nonempty("store name", &m.name)?;
        let m2 = m.clone();
        self.apply_edit(move |st| {
            if st.metadata_stores.iter().any(|x| x.name == m2.name) {
                return Err(ControlError::Exists(format!(
                    "metadata store {:?} already exists",
                    m2.name
                )));
            }
            st.metadata_stores.push(m2);
            Ok(())
        })
        .await?;
        Ok(Response::new(metadata_to_pb(&m)))
    }

    async fn list_metadata_stores(
        &self,
        _: Request<pb::ListMetadataStoresRequest>,
    ) -> R<pb::ListMetadataStoresResponse> {
        Ok(Response::new(pb::ListMetadataStoresResponse {
            stores: self
                .rt
                .state()
                .metadata_stores
                .iter()
                .map(metadata_to_pb)
                .collect(),
        }))
    }

    async fn remove_metadata_store(
        &self,
        req: Request<pb::RemoveMetadataStoreRequest>,
    ) -> R<pb::RemoveResponse> {
        let name = req.into_inner().name;
        let generation = self
            .apply_edit(|st| {
                if !st.metadata_stores.iter().any(|m| m.name == name) {
                    return Err(ControlError::NotFound(format!(
                        "metadata store {name:?} does not exist"
                    )));
                }
                if let Some(u) = st.users_of("metadata", &name).first() {
                    return Err(ControlError::Precondition(format!(
                        "metadata store {name:?} is in use by share {u:?}; remove the share first"
                    )));
                }
                st.metadata_stores.retain(|m| m.name != name);
                Ok(())
            })
            .await?;
        Ok(Response::new(pb::RemoveResponse {
            applied_generation: generation,
        }))
    }

    async fn add_block_store(&self, req: Request<pb::AddBlockStoreRequest>) -> R<pb::BlockStore> {
        let b = req
            .into_inner()
            .store
            .ok_or_else(|| ControlError::Invalid("store is required".into()))?;
        let cfg = block_from_pb(b)?;
        let (name, out) = match &cfg {
            BlockCfg::Local(l) => (l.name.clone(), local_to_pb(l)),
            BlockCfg::Remote(r) => (r.name.clone(), remote_to_pb(r)),
        };
        nonempty("store name", &name)?;
        self.apply_edit(move |st| {
            if st.block_stores.local.iter().any(|x| x.name == name)
                || st.block_stores.remote.iter().any(|x| x.name == name)
            {
                return Err(ControlError::Exists(format!(
                    "block store {name:?} already exists"
                )));
            }
            match cfg {
                BlockCfg::Local(l) => st.block_stores.local.push(l),
                BlockCfg::Remote(r) => st.block_stores.remote.push(r),
            }
            Ok(())
        })
        .await?;
        Ok(Response::new(out))
    }

    async fn list_block_stores(
        &self,
        req: Request<pb::ListBlockStoresRequest>,
    ) -> R<pb::ListBlockStoresResponse> {
        let kind = pb::BlockStoreKind::try_from(req.into_inner().kind).unwrap_or_default();
        let st = self.rt.state();
        let mut stores = Vec::new();
        if kind != pb::BlockStoreKind::Remote {
            stores.extend(st.block_stores.local.iter().map(local_to_pb));
        }
        if kind != pb::BlockStoreKind::Local {
            stores.extend(st.block_stores.remote.iter().map(remote_to_pb));
        }
        Ok(Response::new(pb::ListBlockStoresResponse { stores }))
    }

    async fn remove_block_store(
        &self,
        req: Request<pb::RemoveBlockStoreRequest>,
    ) -> R<pb::RemoveResponse> {
        let req = req.into_inner();
        let kind = pb::BlockStoreKind::try_from(req.kind).unwrap_or_default();
        let name = req.name;
        let generation = self
            .apply_edit(|st| {
                let local = kind != pb::BlockStoreKind::Remote
                    && st.block_stores.local.iter().any(|l| l.name == name);
                let remote = kind != pb::BlockStoreKind::Local
                    && st.block_stores.remote.iter().any(|r| r.name == name);
                if !local && !remote {
                    return Err(ControlError::NotFound(format!(
                        "block store {name:?} does not exist"
                    )));
                }
                let users = st.users_of(if local { "local" } else { "remote" }, &name);
                if let Some(u) = users.first() {
                    return Err(ControlError::Precondition(format!(
                        "block store {name:?} is in use by share {u:?}; remove the share first"
                    )));
                }
                if local {
                    st.block_stores.local.retain(|l| l.name != name);
                } else {
                    st.block_stores.remote.retain(|r| r.name != name);
                }
                Ok(())
            })
            .await?;
        Ok(Response::new(pb::RemoveResponse {
            applied_generation: generation,
        }))
    }

    async fn create_share(&self, req: Request<pb::CreateShareRequest>) -> R<pb::Share> {
        let s = req
            .into_inner()
            .share
            .ok_or_else(|| ControlError::Invalid("share is required".into()))?;
        let s = share_from_pb(s);
        nonempty("share name", &s.name)?;
        let s2 = s.clone();
        self.apply_edit(move |st| {
            if st.share(&s2.name).is_some() {
                return Err(ControlError::Exists(format!(
                    "share {:?} already exists (use share edit)",
                    s2.name
                )));
            }
            for (kind, store, exists) in [
                (
                    "metadata store",
                    &s2.metadata,
                    st.metadata_stores.iter().any(|m| m.name == s2.metadata),
                ),
                (
                    "local block store",
                    &s2.local,
                    st.block_stores.local.iter().any(|l| l.name == s2.local),
                ),
            ] {
                if !exists {
                    return Err(ControlError::NotFound(format!(
                        "{kind} {store:?} does not exist"
                    )));
                }
            }
            st.shares.push(s2);
            Ok(())
        })
        .await?;
        Ok(Response::new(share_to_pb(&self.rt.share(&s.name)?.cfg)))
    }

    async fn edit_share(&self, req: Request<pb::EditShareRequest>) -> R<pb::Share> {
        let e = req.into_inner();
        let name = e.name.clone();
        self.apply_edit(move |st| {
            let s = st
                .shares
                .iter_mut()
                .find(|s| s.name == e.name)
                .ok_or_else(|| {
                    ControlError::NotFound(format!("share {:?} does not exist", e.name))
                })?;
            if let Some(v) = e.read_only {
                s.read_only = v;
            }
            if let Some(v) = e.squash {
                s.squash = v;
            }
            if let Some(v) = e.anon_uid {
                s.anon_uid = v;
            }
            if let Some(v) = e.anon_gid {
                s.anon_gid = v;
            }
            if e.set_allowed_clients {
                s.allowed_clients = if e.allowed_clients.is_empty() {
                    vec!["*".into()]
                } else {
                    e.allowed_clients
                };
            }
            if let Some(v) = e.secure {
                s.secure = v;
            }
            if let Some(v) = e.trash_enabled {
                s.trash.enabled = v;
            }
            if let Some(v) = e.trash_retention_days {
                s.trash.retention_days = v;
            }
            if let Some(v) = e.trash_max_size_bytes {
                s.trash.max_size = v;
            }
            if e.set_trash_exclude {
                s.trash.exclude = e.trash_exclude;
            }
            if let Some(c) = e.chunking {
                s.chunking = Some(crate::config::Chunking {
                    min: c.min,
                    avg: c.avg,
                    max: c.max,
                });
            }
            if let Some(r) = e.remote {
                s.remote = (!r.is_empty()).then_some(r);
            }
            Ok(())
        })
        .await?;
        Ok(Response::new(share_to_pb(&self.rt.share(&name)?.cfg)))
    }

    async fn get_share(&self, req: Request<pb::GetShareRequest>) -> R<pb::Share> {
        Ok(Response::new(share_to_pb(
            &self.share(&req.into_inner().name)?.cfg,
        )))
    }

    async fn list_shares(&self, _: Request<pb::ListSharesRequest>) -> R<pb::ListSharesResponse> {
        Ok(Response::new(pb::ListSharesResponse {
            shares: self.rt.state().shares.iter().map(share_to_pb).collect(),
        }))
    }

    async fn remove_share(&self, req: Request<pb::RemoveShareRequest>) -> R<pb::RemoveResponse> {
        let name = req.into_inner().name;
        let generation = self
            .apply_edit(|st| {
                if st.share(&name).is_none() {
                    return Err(ControlError::NotFound(format!(
                        "share {name:?} does not exist"
                    )));
                }
                st.shares.retain(|s| s.name != name);
                Ok(())
            })
            .await?;
        Ok(Response::new(pb::RemoveResponse {
            applied_generation: generation,
        }))
    }

    async fn run_gc(&self, req: Request<pb::RunGcRequest>) -> R<pb::Job> {
        let req = req.into_inner();
        let share = self.share(&req.share)?;
        let store = share.cfg.local.clone();
        let eng = self.rt.engines().get(&store).cloned().ok_or_else(|| {
            ControlError::NotFound(format!("local block store {store:?} is not open"))
        })?;
        let job = self.jobs.start("gc", &store, &req.share).map_err(|e| {
            ControlError::Precondition(format!(
                "a GC of block store {store:?} is already running (job {})",
                e.id
            ))
        })?;
        let remote = match &share.cfg.remote {
            Some(r) => {
                let t = self.rt.tiers().get(r).cloned().ok_or_else(|| {
                    ControlError::NotFound(format!("remote block store {r:?} is not open"))
                })?;
                Some((r.clone(), t.tier))
            }
            None => None,
        };
        let input = GcInput {
            remote,
            store: store.clone(),
            engine: eng.engine.clone(),
            store_dir: eng.path.clone(),
            shares: self.rt.state().users_of("local", &store),
            metadata: self.rt.metadata_stores().into_iter().collect(),
            dry_run: req.dry_run,
            grace: req
                .grace_seconds
                .map_or(maintenance::DEFAULT_GRACE, Duration::from_secs),
        };
        let (j2, stop) = (job.clone(), self.stop.clone());
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                tokio::select! {
                    r = maintenance::run_gc(input, &*j2) => {
                        j2.finish(r.map(|s| JobResult::Gc(Box::new(s))).map_err(JobError::Gc));
                    }
                    _ = stop.cancelled() => j2.finish(Err(JobError::ShuttingDown)),
                }
            },
            tracing::info_span!("task", name = "gc", store = %store),
        ));
        Ok(Response::new(job_to_pb(&job.snapshot())))
    }

    async fn remote_status(
        &self,
        req: Request<pb::RemoteStatusRequest>,
    ) -> R<pb::RemoteStatusResponse> {
        let req = req.into_inner();
        let tiers = self.rt.tiers();
        if !req.name.is_empty() && !tiers.contains_key(&req.name) {
            return Err(ControlError::NotFound(format!(
                "remote block store {:?} does not exist",
                req.name
            ))
            .into());
        }
        let state = self.rt.state();
        let mut remotes = Vec::new();
        for (name, t) in tiers {
            if !req.name.is_empty() && name != req.name {
                continue;
            }
            let s = t.tier.status();
            let scan = if req.scan {
                Some(scan_remote(t.tier.remote().as_ref()).await?)
            } else {
                None
            };
            remotes.push(pb::RemoteTierStatus {
                shares: state.users_of("remote", &name),
                name,
                identity: s.identity,
                pending_chunks: s.pending_chunks,
                uploaded_chunks: s.uploaded_chunks,
                uploaded_bytes: s.uploaded_bytes,
                dedup_head_chunks: s.dedup_head_chunks,
                dedup_known_chunks: s.dedup_known_chunks,
                dedup_known_bytes: s.dedup_known_bytes,
                dedup_files: s.dedup_files,
                upload_retries: s.upload_retries,
                cold_reads: s.cold_reads,
                cold_read_bytes: s.cold_read_bytes,
                readahead_chunks: s.readahead_chunks,
                remote_read_errors: s.remote_read_errors,
                last_upload_error: s.last_upload_error.unwrap_or_default(),
                scan,
            });
        }
        let evictors = self.rt.evictors();
        let locals = self
            .rt
            .engines()
            .into_iter()
            .map(|(name, e)| {
                let ev = evictors.get(&name);
                let get = |f: fn(
                    &dittofs_blockstore::tier::EvictStats,
                ) -> &std::sync::atomic::AtomicU64| {
                    ev.map_or(0, |ev| {
                        f(ev.stats()).load(std::sync::atomic::Ordering::Relaxed)
                    })
                };
                pb::LocalTierStatus {
                    used_bytes: e.engine.used_bytes(),
                    max_size_bytes: state
                        .block_stores
                        .local
                        .iter()
                        .find(|l| l.name == name)
                        .map_or(0, |l| l.max_size),
                    evicting: ev.is_some(),
                    evicted_chunks: get(|s| &s.evicted_chunks),
                    evicted_bytes: get(|s| &s.evicted_bytes),
                    dirty_bytes: e.engine.dirty_files().iter().map(|(_, n, _)| n).sum(),
                    name,
                }
            })
            .collect();
        Ok(Response::new(pb::RemoteStatusResponse { remotes, locals }))
    }

    async fn gc_status(&self, req: Request<pb::GcStatusRequest>) -> R<pb::GcRunSummary> {
        let share = self.share(&req.into_inner().share)?;
        let dir = self.store_dir(&share.cfg.local)?;
        match maintenance::last_gc(&dir).map_err(|e| ControlError::Internal(e.to_string()))? {
            Some(s) => Ok(Response::new(gc_to_pb(&s))),
            None => Err(ControlError::NotFound(format!(
                "no GC has run on block store {:?} yet",
                share.cfg.local
            ))
            .into()),
        }
    }

    async fn run_audit(&self, req: Request<pb::RunAuditRequest>) -> R<pb::Job> {
        let pb::RunAuditRequest {
            share: name,
            verify,
        } = req.into_inner();
        let share = self.share(&name)?;
        let dir = self.store_dir(&share.cfg.local)?;
        let job = self.jobs.start("audit", &name, &name).map_err(|e| {
            ControlError::Precondition(format!(
                "an audit of share {name:?} is already running (job {})",
                e.id
            ))
        })?;
        let (j2, stop) = (job.clone(), self.stop.clone());
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let fs = share.fs.clone();
                tokio::select! {
                    r = maintenance::run_audit(&fs, verify, &dir, &*j2) => {
                        j2.finish(r.map(JobResult::Audit).map_err(JobError::Audit));
                    }
                    _ = stop.cancelled() => j2.finish(Err(JobError::ShuttingDown)),
                }
            },
            tracing::info_span!("task", name = "audit"),
        ));
        Ok(Response::new(job_to_pb(&job.snapshot())))
    }

    async fn last_audit(&self, req: Request<pb::LastAuditRequest>) -> R<pb::AuditReport> {
        let name = req.into_inner().share;
        let share = self.share(&name)?;
        let dir = self.store_dir(&share.cfg.local)?;
        match maintenance::last_audit(&dir, &name)
            .map_err(|e| ControlError::Internal(e.to_string()))?
        {
            Some(r) => Ok(Response::new(audit_to_pb(&r))),
            None => Err(
                ControlError::NotFound(format!("share {name:?} has not been audited yet")).into(),
            ),
        }
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> R<pb::Job> {
        let id = req.into_inner().id;
        let j = self.jobs.get(&id).ok_or_else(|| {
            ControlError::NotFound(format!(
                "job {id:?} does not exist (finished jobs are kept until the server restarts)"
            ))
        })?;
        Ok(Response::new(job_to_pb(&j.snapshot())))
    }

    type WatchJobStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::Job, Status>> + Send + 'static>>;

    async fn watch_job(&self, req: Request<pb::GetJobRequest>) -> R<Self::WatchJobStream> {
        let id = req.into_inner().id;
        let j = self
            .jobs
            .get(&id)
            .ok_or_else(|| ControlError::NotFound(format!("job {id:?} does not exist")))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let stop = self.stop.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                loop {
                    let snap = j.snapshot();
                    let done = snap.state != JobState::Running;
                    if tx.send(Ok(job_to_pb(&snap))).await.is_err() || done {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            },
            tracing::debug_span!("task", name = "watch-job"),
        ));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn list_trash(&self, req: Request<pb::ListTrashRequest>) -> R<pb::ListTrashResponse> {
        let req = req.into_inner();
        let share = self.share(&req.share)?;
        let limit = if req.limit == 0 {
            10_000
        } else {
            req.limit as usize
        };
        let (items, truncated) = share
            .fs
            .trash_list(limit)
            .await
            .map_err(|e| ControlError::from_fs(&format!("share {:?}", req.share), e))?;
        Ok(Response::new(pb::ListTrashResponse {
            items: items
                .into_iter()
                .map(|i| pb::TrashItem {
                    path: i.path,
                    original_path: i.original_path,
                    kind: file_kind(i.kind).into(),
                    size: i.size,
                    deleted_at: rfc3339_utc(i.deleted_at),
                    deleted_at_unix: u64::try_from(i.deleted_at.secs).unwrap_or(0),
                })
                .collect(),
            truncated,
        }))
    }

    async fn restore_trash(
        &self,
        req: Request<pb::RestoreTrashRequest>,
    ) -> R<pb::RestoreTrashResponse> {
        let req = req.into_inner();
        let share = self.share(&req.share)?;
        if !share.cfg.trash.enabled {
            return Err(ControlError::Precondition(format!(
                "share {:?} has no recycle bin (enable it with: dfsctl share edit {} --enable-trash true)",
                req.share, req.share
            ))
            .into());
        }
        nonempty("path", &req.path)?;
        let to = (!req.to.is_empty()).then_some(req.to.as_str());
        let restored = share
            .fs
            .trash_restore(&req.path, to, req.overwrite)
            .await
            .map_err(|e| ControlError::from_fs(&req.path, e))?;
        Ok(Response::new(pb::RestoreTrashResponse {
            restored_to: restored,
        }))
    }

    async fn trash_status(
        &self,
        req: Request<pb::TrashStatusRequest>,
    ) -> R<pb::TrashStatusResponse> {
        let name = req.into_inner().share;
        let share = self.share(&name)?;
        let s = share
            .fs
            .trash_status()
            .await
            .map_err(|e| ControlError::from_fs(&format!("share {name:?}"), e))?;
        Ok(Response::new(pb::TrashStatusResponse {
            share: name,
            enabled: s.policy.enabled,
            items: s.items,
            bytes: s.bytes,
            oldest_deleted_at: s.oldest.map(rfc3339_utc).unwrap_or_default(),
            retention_days: s.policy.retention_days,
            max_size_bytes: s.policy.max_size,
            exclude: s.policy.exclude,
        }))
    }

    async fn empty_trash(&self, req: Request<pb::EmptyTrashRequest>) -> R<pb::EmptyTrashResponse> {
        let req = req.into_inner();
        if !req.force {
            return Err(ControlError::Invalid(
                "emptying the recycle bin deletes its contents permanently; set force to confirm"
                    .into(),
            )
            .into());
        }
        let share = self.share(&req.share)?;
        let (items, bytes) = share
            .fs
            .trash_empty()
            .await
            .map_err(|e| ControlError::from_fs(&format!("share {:?}", req.share), e))?;
        Ok(Response::new(pb::EmptyTrashResponse {
            items_removed: items,
            bytes_freed: bytes,
        }))
    }

    async fn create_user(&self, req: Request<pb::CreateUserRequest>) -> R<pb::User> {
        let user = users::create_user(&self.rt, req.into_inner().user).await?;
        Ok(Response::new(user))
    }

    async fn get_user(&self, req: Request<pb::GetUserRequest>) -> R<pb::User> {
        Ok(Response::new(users::get_user(
            &self.rt,
            &req.into_inner().name,
        )?))
    }

    async fn list_users(&self, _: Request<pb::ListUsersRequest>) -> R<pb::ListUsersResponse> {
        Ok(Response::new(users::list_users(&self.rt)))
    }

    async fn edit_user(&self, req: Request<pb::EditUserRequest>) -> R<pb::User> {
        Ok(Response::new(users::edit_user(&self.rt, req.into_inner())?))
    }

    async fn set_password(&self, req: Request<pb::SetPasswordRequest>) -> R<pb::User> {
        let user = users::set_password(&self.rt, req.into_inner()).await?;
        Ok(Response::new(user))
    }

    async fn remove_user(&self, req: Request<pb::RemoveUserRequest>) -> R<pb::RemoveResponse> {
        users::remove_user(&self.rt, &req.into_inner().name)?;
        Ok(Response::new(self.unchanged_generation()))
    }

    async fn create_group(&self, req: Request<pb::CreateGroupRequest>) -> R<pb::Group> {
        Ok(Response::new(users::create_group(
            &self.rt,
            req.into_inner(),
        )?))
    }

    async fn list_groups(&self, _: Request<pb::ListGroupsRequest>) -> R<pb::ListGroupsResponse> {
        Ok(Response::new(users::list_groups(&self.rt)))
    }

    async fn edit_group_members(&self, req: Request<pb::EditGroupMembersRequest>) -> R<pb::Group> {
        Ok(Response::new(users::edit_group_members(
            &self.rt,
            req.into_inner(),
        )?))
    }

    async fn remove_group(&self, req: Request<pb::RemoveGroupRequest>) -> R<pb::RemoveResponse> {
        users::remove_group(&self.rt, &req.into_inner().name)?;
        Ok(Response::new(self.unchanged_generation()))
    }

    async fn grant_share_permission(
        &self,
        req: Request<pb::GrantSharePermissionRequest>,
    ) -> R<pb::SharePermissions> {
        let r = req.into_inner();
        let who = Grantee::from_names(&r.user, &r.group).map_err(ControlError::from)?;
        let p = users::set_grant(&self.rt, &r.share, who, Some(&r.level))?;
        tracing::info!(share = %r.share, user = %r.user, group = %r.group, level = %r.level, "share permission granted");
        Ok(Response::new(p))
    }

    async fn revoke_share_permission(
        &self,
        req: Request<pb::RevokeSharePermissionRequest>,
    ) -> R<pb::SharePermissions> {
        let r = req.into_inner();
        let who = Grantee::from_names(&r.user, &r.group).map_err(ControlError::from)?;
        let p = users::set_grant(&self.rt, &r.share, who, None)?;
        tracing::info!(share = %r.share, user = %r.user, group = %r.group, "share permission revoked");
        Ok(Response::new(p))
    }

    async fn get_share_permissions(
        &self,
        req: Request<pb::GetSharePermissionsRequest>,
    ) -> R<pb::SharePermissions> {
        let share = req.into_inner().share;
        Ok(Response::new(users::get_permissions(&self.rt, &share)?))
    }

    async fn set_share_default_level(
        &self,
        req: Request<pb::SetShareDefaultLevelRequest>,
    ) -> R<pb::SharePermissions> {
        let r = req.into_inner();
        let p = users::set_default_level(&self.rt, &r.share, &r.level)?;
        tracing::info!(share = %r.share, level = %r.level, "share default level set");
        Ok(Response::new(p))
    }
}

/// The control API's gRPC server failed.
#[derive(Debug, thiserror::Error)]
#[error("control API: {0}")]
pub struct ServeError(#[source] tonic::transport::Error);

/// Serves the control API on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    control: Control,
    token: &str,
    stop: CancellationToken,
) -> Result<(), ServeError> {
    let svc = dittofs_proto::v1::control_service_server::ControlServiceServer::with_interceptor(
        control,
        auth::BearerAuth::new(token),
    );
    let server = tonic::transport::Server::builder()
        .add_service(svc)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            stop.clone().cancelled_owned(),
        );
    // Graceful shutdown waits for clients to hang up; an idle client (a dfsctl context,
    // the operator's channel) never does, so connections get 5 s, then are dropped.
    tokio::select! {
        r = server => r.map_err(ServeError),
        _ = async {
            stop.cancelled().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        } => {
            tracing::info!("control API clients still connected 5 s after shutdown began; closing them");
            Ok(())
        }
    }
}

/// Walks the whole remote listing: number and bytes of chunk objects.
async fn scan_remote(remote: &dyn dittofs_remote::RemoteStore) -> Result<pb::RemoteScan, Status> {
    let mut scan = pb::RemoteScan::default();
    let mut after = None;
    loop {
        let page = tokio::time::timeout(Duration::from_secs(60), remote.list(after, 1000))
            .await
            .map_err(|_| ControlError::Unavailable("listing the remote timed out".into()))?
            .map_err(|e| ControlError::Unavailable(format!("listing the remote: {e}")))?;
        for o in &page.objects {
            scan.objects += 1;
            scan.bytes += o.size;
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(scan),
        }
    }
}
