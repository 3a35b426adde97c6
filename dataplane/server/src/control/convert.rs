//! Conversions between the wire types of `dittofs.control.v1` and the server's
//! configuration/state types. Wire defaults (empty strings, zeros) map to the same
//! defaults the config file uses, so a minimal request means what a minimal YAML means.

use crate::config::{
    BlockStores, Chunking, LocalBlockStoreCfg, MetadataStoreCfg, NfsSection, Portmapper,
    RemoteBlockStoreCfg, ShareCfg, TrashCfg,
};
use crate::error::{ControlError, ControlResult};
use crate::jobs::{JobResult, JobSnapshot, JobState};
use crate::maintenance::GcSummary;
use crate::state::DesiredState;
use dittofs_metadata::audit::{DanglingKind, Inv02Report, MissingKind};
use dittofs_proto::defaults::SHARE_DEFAULTS;
use dittofs_proto::v1 as pb;

/// What a stored secret is reported as (and, sent back, means "keep it").
pub const REDACTED: &str = "(set)";

fn opt_path(s: &str) -> Option<std::path::PathBuf> {
    (!s.is_empty()).then(|| s.into())
}

fn path_str(p: &Option<std::path::PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

pub fn metadata_from_pb(m: pb::MetadataStore) -> MetadataStoreCfg {
    MetadataStoreCfg {
        name: m.name,
        kind: if m.r#type.is_empty() {
            "sled".into()
        } else {
            m.r#type
        },
        path: opt_path(&m.path),
    }
}

pub fn metadata_to_pb(m: &MetadataStoreCfg) -> pb::MetadataStore {
    pb::MetadataStore {
        name: m.name.clone(),
        r#type: m.kind.clone(),
        path: path_str(&m.path),
    }
}

pub enum BlockCfg {
    Local(LocalBlockStoreCfg),
    Remote(RemoteBlockStoreCfg),
}

pub fn block_from_pb(b: pb::BlockStore) -> ControlResult<BlockCfg> {
    match pb::BlockStoreKind::try_from(b.kind).unwrap_or(pb::BlockStoreKind::Unspecified) {
        pb::BlockStoreKind::Local => Ok(BlockCfg::Local(LocalBlockStoreCfg {
            name: b.name,
            kind: if b.r#type.is_empty() {
                "fs".into()
            } else {
                b.r#type
            },
            path: opt_path(&b.path),
            max_size: b.max_size_bytes,
        })),
        pb::BlockStoreKind::Remote => {
            let s3 = b.s3.unwrap_or_default();
            Ok(BlockCfg::Remote(RemoteBlockStoreCfg {
                name: b.name,
                kind: if b.r#type.is_empty() {
                    "s3".into()
                } else {
                    b.r#type
                },
                bucket: s3.bucket,
                region: s3.region,
                endpoint: s3.endpoint,
                prefix: s3.prefix,
                force_path_style: s3.force_path_style,
                access_key_id: s3.access_key_id,
                secret_access_key: s3.secret_access_key,
                secret_access_key_file: String::new(),
                read_timeout_seconds: b.read_timeout_seconds,
                create_bucket: s3.create_bucket,
            }))
        }
        pb::BlockStoreKind::Unspecified => Err(ControlError::Invalid(format!(
            "block store {:?}: kind must be local or remote",
            b.name
        ))),
    }
}

pub fn local_to_pb(l: &LocalBlockStoreCfg) -> pb::BlockStore {
    pb::BlockStore {
        name: l.name.clone(),
        kind: pb::BlockStoreKind::Local as i32,
        r#type: l.kind.clone(),
        path: path_str(&l.path),
        s3: None,
        max_size_bytes: l.max_size,
        read_timeout_seconds: 0,
    }
}

/// Remote store as reported to clients: the secret key is never sent back (a key set in
/// the store, directly or as a file, is reported as the redaction marker).
pub fn remote_to_pb(r: &RemoteBlockStoreCfg) -> pb::BlockStore {
    pb::BlockStore {
        name: r.name.clone(),
        kind: pb::BlockStoreKind::Remote as i32,
        r#type: r.kind.clone(),
        path: String::new(),
        max_size_bytes: 0,
        read_timeout_seconds: r.read_timeout_seconds,
        s3: Some(pb::S3Config {
            bucket: r.bucket.clone(),
            region: r.region.clone(),
            endpoint: r.endpoint.clone(),
            prefix: r.prefix.clone(),
            force_path_style: r.force_path_style,
            access_key_id: r.access_key_id.clone(),
            create_bucket: r.create_bucket,
            secret_access_key: if r.secret_access_key.is_empty()
                && r.secret_access_key_file.is_empty()
            {
                String::new()
            } else {
                REDACTED.into()
            },
        }),
    }
}

pub fn share_from_pb(s: pb::Share) -> ShareCfg {
    let s = SHARE_DEFAULTS.fill(s);
    let t = s.trash.unwrap_or_default();
    ShareCfg {
        name: s.name,
        metadata: s.metadata,
        local: s.local,
        read_only: s.read_only,
        squash: s.squash,
        anon_uid: s.anon_uid,
        anon_gid: s.anon_gid,
        allowed_clients: s.allowed_clients,
        secure: s.secure,
        root_mode: s.root_mode,
        chunking: s.chunking.map(|c| Chunking {
            min: c.min,
            avg: c.avg,
            max: c.max,
        }),
        remote: (!s.remote.is_empty()).then_some(s.remote),
        durability: s.durability,
        trash: TrashCfg {
            enabled: t.enabled,
            retention_days: t.retention_days,
            max_size: t.max_size_bytes,
            exclude: t.exclude,
        },
    }
}

pub fn share_to_pb(s: &ShareCfg) -> pb::Share {
    pb::Share {
        name: s.name.clone(),
        metadata: s.metadata.clone(),
        local: s.local.clone(),
        remote: s.remote.clone().unwrap_or_default(),
        durability: s.durability.clone(),
        read_only: s.read_only,
        squash: s.squash.clone(),
        anon_uid: s.anon_uid,
        anon_gid: s.anon_gid,
        allowed_clients: s.allowed_clients.clone(),
        secure: s.secure,
        root_mode: s.root_mode,
        chunking: s.chunking.map(|c| pb::Chunking {
            min: c.min,
            avg: c.avg,
            max: c.max,
        }),
        trash: Some(pb::TrashConfig {
            enabled: s.trash.enabled,
            retention_days: s.trash.retention_days,
            max_size_bytes: s.trash.max_size,
            exclude: s.trash.exclude.clone(),
        }),
    }
}

pub fn nfs_from_pb(n: pb::NfsAdapter, base: &NfsSection) -> ControlResult<NfsSection> {
    let port = |p: u32, what: &str| -> ControlResult<u16> {
        u16::try_from(p).map_err(|_| ControlError::Invalid(format!("{what} {p} is not a port")))
    };
    Ok(NfsSection {
        enabled: n.enabled,
        bind: if n.bind.is_empty() {
            base.bind.clone()
        } else {
            n.bind
        },
        port: if n.port == 0 {
            base.port
        } else {
            port(n.port, "nfs port")?
        },
        portmapper: Portmapper {
            enabled: n.portmapper_enabled,
            port: if n.portmapper_port == 0 {
                base.portmapper.port
            } else {
                port(n.portmapper_port, "portmapper port")?
            },
        },
        ..base.clone()
    })
}

pub fn nfs_to_pb(n: &NfsSection) -> pb::NfsAdapter {
    pb::NfsAdapter {
        enabled: n.enabled,
        bind: n.bind.clone(),
        port: u32::from(n.port),
        portmapper_enabled: n.portmapper.enabled,
        portmapper_port: u32::from(n.portmapper.port),
    }
}

pub fn state_from_pb(s: pb::DesiredState, base_nfs: &NfsSection) -> ControlResult<DesiredState> {
    let mut block_stores = BlockStores::default();
    for b in s.block_stores {
        match block_from_pb(b)? {
            BlockCfg::Local(l) => block_stores.local.push(l),
            BlockCfg::Remote(r) => block_stores.remote.push(r),
        }
    }
    Ok(DesiredState {
        generation: s.generation,
        metadata_stores: s
            .metadata_stores
            .into_iter()
            .map(metadata_from_pb)
            .collect(),
        block_stores,
        shares: s.shares.into_iter().map(share_from_pb).collect(),
        nfs: match s.adapters.and_then(|a| a.nfs) {
            Some(n) => Some(nfs_from_pb(n, base_nfs)?),
            None => None,
        },
    })
}

pub fn state_to_pb(s: &DesiredState) -> pb::DesiredState {
    pb::DesiredState {
        generation: s.generation,
        metadata_stores: s.metadata_stores.iter().map(metadata_to_pb).collect(),
        block_stores: s
            .block_stores
            .local
            .iter()
            .map(local_to_pb)
            .chain(s.block_stores.remote.iter().map(remote_to_pb))
            .collect(),
        shares: s.shares.iter().map(share_to_pb).collect(),
        adapters: s.nfs.as_ref().map(|n| pb::Adapters {
            nfs: Some(nfs_to_pb(n)),
        }),
        // Filled by GetConfig from the identity store (it is not part of state.json).
        identity: None,
    }
}

pub fn gc_to_pb(g: &GcSummary) -> pb::GcRunSummary {
    pb::GcRunSummary {
        run_id: g.run_id.clone(),
        store: g.store.clone(),
        shares: g.shares.clone(),
        dry_run: g.dry_run,
        started_at: g.started_at.clone(),
        duration_ms: g.duration_ms,
        grace_seconds: g.grace_seconds,
        live_chunks: g.live_chunks,
        scanned_chunks: g.scanned_chunks,
        deleted_chunks: g.deleted_chunks,
        deleted_bytes: g.deleted_bytes,
        kept_in_grace: g.kept_in_grace,
        errors: g.errors,
        outcome: g.outcome.clone(),
        remote: g.remote.as_ref().map(|r| pb::RemoteGcSummary {
            store: r.store.clone(),
            identity: r.identity.clone(),
            pending_chunks: r.pending_chunks,
            scanned_objects: r.sweep.scanned_objects,
            live_objects: r.sweep.live_objects,
            deleted_objects: r.sweep.deleted_objects,
            deleted_bytes: r.sweep.deleted_bytes,
            kept_in_grace: r.sweep.kept_in_grace,
            kept_in_use: r.sweep.kept_in_use,
            errors: r.sweep.errors,
            failed: r.sweep.failed.clone(),
        }),
    }
}

pub fn audit_to_pb(r: &Inv02Report) -> pb::AuditReport {
    pb::AuditReport {
        share: r.share.clone(),
        started_at: r.started_at.clone(),
        duration_ms: r.duration_ms,
        total_files: r.total_files,
        total_refs: r.total_refs,
        total_refcount: r.total_refcount,
        delta: r.delta,
        dangling_count: r.dangling_count,
        dangling: r
            .dangling
            .iter()
            .map(|d| pb::DanglingRef {
                hash: d.hash.clone(),
                kind: match d.kind {
                    DanglingKind::MissingRow => "missing_row".into(),
                    DanglingKind::RefcountMismatch => "refcount_mismatch".into(),
                },
                refs: d.refs,
                refcount: d.refcount,
            })
            .collect(),
        chunks_checked: r.chunks_checked,
        verified: r.verified,
        missing_count: r.missing_count,
        missing: r
            .missing
            .iter()
            .map(|m| pb::MissingChunk {
                hash: m.hash.clone(),
                kind: match m.kind {
                    MissingKind::Missing => "missing".into(),
                    MissingKind::Corrupt => "corrupt".into(),
                },
                files: m.files.clone(),
            })
            .collect(),
    }
}

pub fn job_to_pb(j: &JobSnapshot) -> pb::Job {
    pb::Job {
        id: j.id.clone(),
        kind: j.kind.into(),
        share: j.share.clone(),
        state: match j.state {
            JobState::Running => pb::JobState::Running,
            JobState::Succeeded => pb::JobState::Succeeded,
            JobState::Failed => pb::JobState::Failed,
        } as i32,
        phase: j.phase.clone(),
        done: j.done,
        total: j.total,
        error: j.error.clone(),
        result: j.result.as_ref().map(|r| match r {
            JobResult::Gc(g) => pb::job::Result::Gc(gc_to_pb(g)),
            JobResult::Audit(a) => pb::job::Result::Audit(audit_to_pb(a)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config file (a share entry with its name only), the control API (a `Share`
    /// with its name only) and the shared defaults give the same share.
    #[test]
    fn config_file_and_api_take_the_shared_defaults() {
        let from_file: crate::config::Config =
            serde_yaml::from_str("shares: [{name: /a}]").unwrap();
        let from_api = share_from_pb(pb::Share {
            name: "/a".into(),
            ..Default::default()
        });
        assert_eq!(from_file.shares[0], from_api);
        assert_eq!(from_api, ShareCfg::with_defaults("/a"));
        let d = SHARE_DEFAULTS;
        assert_eq!(
            (from_api.metadata.as_str(), from_api.local.as_str()),
            (d.store, d.store)
        );
        assert_eq!(
            (from_api.squash.as_str(), from_api.durability.as_str()),
            (d.squash, d.durability)
        );
        assert_eq!(
            (from_api.anon_uid, from_api.anon_gid),
            (d.anon_id, d.anon_id)
        );
        assert_eq!(from_api.allowed_clients, d.allowed_clients());
        assert_eq!(from_api.root_mode, d.root_mode);
        assert!(!from_api.read_only && !from_api.secure && from_api.remote.is_none());
    }

    #[test]
    fn share_defaults_and_round_trip() {
        let s = share_from_pb(pb::Share {
            name: "/a".into(),
            ..Default::default()
        });
        assert_eq!(s.squash, "root_to_anonymous");
        assert_eq!((s.anon_uid, s.root_mode), (65534, 0o777));
        assert_eq!(s.allowed_clients, vec!["*".to_string()]);
        assert_eq!(share_from_pb(share_to_pb(&s)), s);
        assert!(!s.secure);
        let secure = ShareCfg { secure: true, ..s };
        assert_eq!(share_from_pb(share_to_pb(&secure)), secure);
        let st = DesiredState::from_config(&crate::config::Config::default());
        assert_eq!(
            state_from_pb(state_to_pb(&st), &NfsSection::default()).unwrap(),
            st
        );
        assert!(
            block_from_pb(pb::BlockStore {
                name: "x".into(),
                ..Default::default()
            })
            .is_err()
        );
    }
}
