//! What one server group (the pods of one MetadataStore) should serve: the protocol-neutral
//! desired state pushed to every pod with `ApplyConfig` (`dittofs.control.v1.DesiredState`).
//!
//! Invariant: a Share whose references are broken, whose path collides with an older Share
//! of the same group, whose remote location (S3 bucket + endpoint + prefix) another group
//! already uses, or whose settings cannot be expressed is left out of the desired state
//! (and reported on that Share) instead of failing the whole group: one bad object never
//! blocks the others. Leaving a Share out removes its export, never its data.
//!
//! One remote location serves one group: only that group's GC knows which of its chunks
//! are live (the data plane refuses a location another server claimed). The group whose
//! oldest Share uses the location (creation time, then name) owns it.

use crate::crd::{
    BlockStore, BlockStoreKind, Durability, LocalBlockType, MetadataStore, MetadataStoreType,
    RemoteBlockType, Share, Squash,
};
use crate::identity::{IdentityError, Passwords, share_permissions, users_and_groups};
use crate::names::parse_quantity;
use dittofs_proto::v1 as pb;
use kube::ResourceExt;
use std::collections::BTreeMap;

/// S3 credentials resolved from Secrets: BlockStore name -> (access key id, secret key).
pub type S3Credentials = BTreeMap<String, (String, String)>;

/// The result of planning one group.
#[derive(Debug, Default, PartialEq)]
pub struct GroupPlan {
    pub state: pb::DesiredState,
    /// Share object names included in `state`.
    pub served: Vec<String>,
    /// Share object name -> (reason, message) for every Share of the group left out.
    pub excluded: BTreeMap<String, (String, String)>,
    /// Local `fs` block stores that need a volume on the pods, and memory ones (emptyDir).
    pub local_fs: Vec<String>,
    pub local_memory: Vec<String>,
    /// Why the group's users and groups cannot be pushed (`state.identity` is then None
    /// and the pods keep theirs; the Shares with `permissions` are left out).
    pub identity_error: Option<IdentityError>,
}

/// Plans the group of `ms` from the Shares and BlockStores of its namespace.
/// `shares` may contain Shares of other groups; they are ignored.
pub fn plan_group(
    ms: &MetadataStore,
    shares: &[Share],
    block_stores: &[BlockStore],
    creds: &S3Credentials,
    passwords: &Passwords,
) -> GroupPlan {
    let ms_name = ms.name_any();
    let mut plan = GroupPlan::default();
    let metadata_type = match ms.spec.type_ {
        MetadataStoreType::Memory => "memory",
        MetadataStoreType::Sled => "sled",
        MetadataStoreType::Postgres => {
            // The data plane has no PostgreSQL metadata backend yet: nothing can be served.
            for s in shares
                .iter()
                .filter(|s| s.spec.metadata_store_ref == ms_name)
            {
                plan.excluded.insert(
                    s.name_any(),
                    (
                        "MetadataTypeUnsupported".into(),
                        "metadata store type postgres is not supported by this data plane yet"
                            .into(),
                    ),
                );
            }
            return plan;
        }
    };
    plan.state.metadata_stores.push(pb::MetadataStore {
        name: ms_name.clone(),
        r#type: metadata_type.into(),
        path: String::new(), // <data_dir>/metadata/<name>, on the `data` volume
    });
    let stores: BTreeMap<String, &BlockStore> =
        block_stores.iter().map(|b| (b.name_any(), b)).collect();

    // Oldest first, so that on a path collision the Share that was there first keeps it.
    let mut mine: Vec<&Share> = shares
        .iter()
        .filter(|s| s.spec.metadata_store_ref == ms_name && s.metadata.deletion_timestamp.is_none())
        .collect();
    mine.sort_by(|a, b| {
        (
            a.metadata.creation_timestamp.as_ref().map(|t| t.0),
            a.name_any(),
        )
            .cmp(&(
                b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                b.name_any(),
            ))
    });
    let owners = remote_owners(shares, &stores);
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    let mut local_defs: BTreeMap<String, pb::BlockStore> = BTreeMap::new();
    let mut remote_defs: BTreeMap<String, pb::BlockStore> = BTreeMap::new();
    let users = users_and_groups(ms, passwords);
    let mut permissions = Vec::new();
    for s in mine {
        let name = s.name_any();
        match share_entry(s, &stores, creds) {
            Err((reason, msg)) => {
                plan.excluded.insert(name, (reason.into(), msg));
            }
            Ok((share, local, remote)) => {
                if let Some((owner, place)) = remote
                    .as_ref()
                    .and_then(|r| location(stores.get(&r.name)?))
                    .and_then(|place| Some((owners.get(&place)?, place)))
                    .filter(|(owner, _)| **owner != ms_name)
                {
                    plan.excluded.insert(
                        name,
                        (
                            "RemoteInUse".into(),
                            format!(
                                "remote location {place} is already used by server group {owner}: \
                                 one group per bucket + endpoint + prefix (its GC would delete \
                                 the other group's chunks); give this BlockStore its own prefix"
                            ),
                        ),
                    );
                    continue;
                }
                if let Some(other) = paths.get(&share.name) {
                    plan.excluded.insert(
                        name,
                        (
                            "PathConflict".into(),
                            format!("path {} is already exported by Share {other}", share.name),
                        ),
                    );
                    continue;
                }
                if let Err(why) = permissions_of(s, ms, &users, &mut permissions) {
                    plan.excluded.insert(name, why);
                    continue;
                }
                paths.insert(share.name.clone(), name.clone());
                local_defs.insert(local.0.name.clone(), local.0);
                match local.1 {
                    LocalBlockType::Fs => push_unique(&mut plan.local_fs, &share.local),
                    LocalBlockType::Memory => push_unique(&mut plan.local_memory, &share.local),
                }
                if let Some(r) = remote {
                    remote_defs.insert(r.name.clone(), r);
                }
                plan.state.shares.push(share);
                plan.served.push(name);
            }
        }
    }
    plan.state.block_stores = local_defs
        .into_values()
        .chain(remote_defs.into_values())
        .collect();
    match users {
        Ok(mut identity) => {
            identity.permissions = permissions;
            let empty = identity.users.is_empty()
                && identity.groups.is_empty()
                && identity.permissions.is_empty();
            plan.state.identity = (!empty).then_some(identity);
        }
        Err(e) => plan.identity_error = Some(e),
    }
    plan
}

/// Adds the `permissions` of Share `s` (if any) to `out`; Err = why `s` cannot be served.
fn permissions_of(
    s: &Share,
    ms: &MetadataStore,
    users: &Result<pb::IdentityState, IdentityError>,
    out: &mut Vec<pb::SharePermissions>,
) -> Result<(), (String, String)> {
    let Some(spec) = &s.spec.permissions else {
        return Ok(());
    };
    if let Err(e) = users {
        return Err((
            "IdentityUnavailable".into(),
            format!(
                "the users of MetadataStore {} cannot be pushed ({e}): a Share with permissions is not served without them",
                ms.name_any()
            ),
        ));
    }
    let p = share_permissions(&s.spec.path, spec, ms)
        .map_err(|msg| ("InvalidPermissions".to_string(), msg))?;
    out.push(p);
    Ok(())
}

/// The location (`s3://bucket/prefix@endpoint`) of a remote BlockStore; None for others.
fn location(bs: &BlockStore) -> Option<String> {
    let s3 = bs.spec.remote.as_ref()?.s3.as_ref()?;
    Some(format!(
        "s3://{}/{}@{}",
        s3.bucket,
        s3.prefix.trim_matches('/'),
        s3.endpoint
    ))
}

/// Remote location -> the group (MetadataStore) that owns it: the group of the oldest
/// Share using it (creation time, then name), among Shares not being deleted.
fn remote_owners(
    shares: &[Share],
    stores: &BTreeMap<String, &BlockStore>,
) -> BTreeMap<String, String> {
    let mut all: Vec<&Share> = shares
        .iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect();
    all.sort_by_key(|s| {
        (
            s.metadata.creation_timestamp.as_ref().map(|t| t.0),
            s.name_any(),
        )
    });
    let mut owners = BTreeMap::new();
    for s in all {
        let place = s
            .spec
            .remote_block_store_ref
            .as_ref()
            .and_then(|r| stores.get(r))
            .and_then(|bs| location(bs));
        if let Some(place) = place {
            owners
                .entry(place)
                .or_insert_with(|| s.spec.metadata_store_ref.clone());
        }
    }
    owners
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

type Entry = (
    pb::Share,
    (pb::BlockStore, LocalBlockType),
    Option<pb::BlockStore>,
);

/// One Share as the data plane sees it, or why it cannot be served.
fn share_entry(
    s: &Share,
    stores: &BTreeMap<String, &BlockStore>,
    creds: &S3Credentials,
) -> Result<Entry, (&'static str, String)> {
    let spec = &s.spec;
    let local_bs = stores.get(&spec.local_block_store_ref).ok_or((
        "BlockStoreNotFound",
        format!("BlockStore {} does not exist", spec.local_block_store_ref),
    ))?;
    let local_spec = match (&local_bs.spec.kind, &local_bs.spec.local) {
        (BlockStoreKind::Local, Some(l)) => l,
        _ => {
            return Err((
                "BlockStoreKindMismatch",
                format!(
                    "localBlockStoreRef {} is not a local BlockStore",
                    spec.local_block_store_ref
                ),
            ));
        }
    };
    // Both local types are a directory for the data plane; `memory` is an emptyDir volume
    // (gone with the pod), `fs` a PersistentVolumeClaim.
    // The local tier's cap: 90% of an `fs` volume (room for the journal's growth between
    // evictor passes and the file system's own overhead); none for `memory` (emptyDir).
    let max_size_bytes = match local_spec.type_ {
        LocalBlockType::Fs => parse_quantity(&local_spec.storage.size)
            .map(|b| b / 10 * 9)
            .map_err(|e| {
                (
                    "InvalidSpec",
                    format!(
                        "BlockStore {}: storage.size: {e}",
                        spec.local_block_store_ref
                    ),
                )
            })?,
        LocalBlockType::Memory => 0,
    };
    let local = pb::BlockStore {
        name: spec.local_block_store_ref.clone(),
        kind: pb::BlockStoreKind::Local as i32,
        r#type: "fs".into(),
        path: String::new(), // <data_dir>/blocks/<name>: the mount point of its volume
        s3: None,
        max_size_bytes,
        read_timeout_seconds: 0,
    };
    let remote = match &spec.remote_block_store_ref {
        None => None,
        Some(r) => {
            let bs = stores.get(r).ok_or((
                "BlockStoreNotFound",
                format!("BlockStore {r} does not exist"),
            ))?;
            let rs = match (&bs.spec.kind, &bs.spec.remote) {
                (BlockStoreKind::Remote, Some(rs)) => rs,
                _ => {
                    return Err((
                        "BlockStoreKindMismatch",
                        format!("remoteBlockStoreRef {r} is not a remote BlockStore"),
                    ));
                }
            };
            let (typ, s3) = match (&rs.type_, &rs.s3) {
                (RemoteBlockType::Memory, _) => ("memory", None),
                (RemoteBlockType::S3, Some(s3)) => {
                    let (id, key) = match &s3.credentials_secret {
                        None => (String::new(), String::new()),
                        Some(sec) => creds.get(r).cloned().ok_or((
                            "SecretNotFound",
                            format!("Secret {sec} (keys accessKeyId, secretAccessKey) of BlockStore {r} is missing or incomplete"),
                        ))?,
                    };
                    (
                        "s3",
                        Some(pb::S3Config {
                            bucket: s3.bucket.clone(),
                            region: s3.region.clone(),
                            endpoint: s3.endpoint.clone(),
                            prefix: s3.prefix.clone(),
                            force_path_style: s3.force_path_style,
                            access_key_id: id,
                            secret_access_key: key,
                            create_bucket: s3.create_bucket,
                        }),
                    )
                }
                (RemoteBlockType::S3, None) => {
                    return Err((
                        "InvalidSpec",
                        format!("BlockStore {r} has no spec.remote.s3"),
                    ));
                }
            };
            Some(pb::BlockStore {
                name: r.clone(),
                kind: pb::BlockStoreKind::Remote as i32,
                r#type: typ.into(),
                path: String::new(),
                s3,
                max_size_bytes: 0,
                read_timeout_seconds: 0,
            })
        }
    };
    if spec.durability == Durability::Remote && remote.is_none() {
        return Err((
            "InvalidSpec",
            "durability remote needs remoteBlockStoreRef".into(),
        ));
    }
    let chunking = match &spec.chunking {
        None => None,
        Some(c) => {
            let q = |v: &str| -> Result<u32, (&'static str, String)> {
                parse_quantity(v)
                    .map_err(|e| ("InvalidSpec", format!("chunking: {e}")))
                    .and_then(|b| {
                        u32::try_from(b)
                            .map_err(|_| ("InvalidSpec", format!("chunking: {v} is too large")))
                    })
            };
            Some(pb::Chunking {
                min: q(&c.min)?,
                avg: q(&c.avg)?,
                max: q(&c.max)?,
            })
        }
    };
    let max_size_bytes = match &spec.trash.max_size {
        None => 0,
        Some(q) => parse_quantity(q).map_err(|e| ("InvalidSpec", format!("trash.maxSize: {e}")))?,
    };
    let id = |v: i64, what: &str| {
        u32::try_from(v).map_err(|_| ("InvalidSpec", format!("{what} {v} is out of range")))
    };
    let share = pb::Share {
        name: spec.path.clone(),
        metadata: spec.metadata_store_ref.clone(),
        local: spec.local_block_store_ref.clone(),
        remote: spec.remote_block_store_ref.clone().unwrap_or_default(),
        durability: match spec.durability {
            Durability::Local => "local",
            Durability::Remote => "remote",
        }
        .into(),
        read_only: spec.read_only,
        squash: match spec.squash {
            Squash::None => "none",
            Squash::RootToAnonymous => "root_to_anonymous",
            Squash::AllToAnonymous => "all_to_anonymous",
        }
        .into(),
        anon_uid: id(spec.anon_uid, "anonUid")?,
        anon_gid: id(spec.anon_gid, "anonGid")?,
        allowed_clients: spec.allowed_clients.clone(),
        secure: spec.secure,
        root_mode: 0,
        chunking,
        trash: Some(pb::TrashConfig {
            enabled: spec.trash.enabled,
            retention_days: u32::try_from(spec.trash.retention_days).unwrap_or(0),
            max_size_bytes,
            exclude: spec.trash.exclude.clone(),
        }),
    };
    Ok((share, (local, local_spec.type_), remote))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::*;

    pub(crate) fn ms(name: &str, t: MetadataStoreType) -> MetadataStore {
        let mut m = MetadataStore::new(
            name,
            MetadataStoreSpec {
                type_: t,
                postgres: None,
                server: Default::default(),
                users: vec![],
                groups: vec![],
            },
        );
        m.metadata.namespace = Some("ns".into());
        m
    }

    fn local(name: &str, t: LocalBlockType) -> BlockStore {
        BlockStore::new(
            name,
            BlockStoreSpec {
                kind: BlockStoreKind::Local,
                local: Some(LocalBlockSpec {
                    type_: t,
                    storage: Default::default(),
                }),
                remote: None,
            },
        )
    }

    fn share(name: &str, path: &str, ms: &str, local: &str) -> Share {
        let spec: ShareSpec = serde_json::from_value(serde_json::json!({
            "path": path, "metadataStoreRef": ms, "localBlockStoreRef": local,
        }))
        .unwrap();
        Share::new(name, spec)
    }

    #[test]
    fn plans_served_and_excluded_shares() {
        let m = ms("main", MetadataStoreType::Sled);
        let mut docs = share("docs", "/docs", "main", "disk");
        docs.spec.trash.enabled = true;
        docs.spec.trash.max_size = Some("1Gi".into());
        docs.spec.chunking = Some(ChunkingSpec {
            min: "1Mi".into(),
            avg: "4Mi".into(),
            max: "16Mi".into(),
        });
        let shares = vec![
            docs,
            share("tmp", "/tmp", "main", "ram"),
            share("broken", "/broken", "main", "nope"),
            share("dup", "/docs", "main", "disk"),
            share("other", "/other", "elsewhere", "disk"),
        ];
        let bs = vec![
            local("disk", LocalBlockType::Fs),
            local("ram", LocalBlockType::Memory),
        ];
        let p = plan_group(&m, &shares, &bs, &S3Credentials::new(), &Passwords::new());
        assert_eq!(p.served, vec!["docs", "tmp"]);
        assert_eq!(p.excluded["broken"].0, "BlockStoreNotFound");
        assert_eq!(p.excluded["dup"].0, "PathConflict");
        assert!(!p.excluded.contains_key("other"));
        assert_eq!(p.local_fs, vec!["disk"]);
        assert_eq!(p.local_memory, vec!["ram"]);
        assert_eq!(p.state.metadata_stores[0].r#type, "sled");
        assert_eq!(p.state.block_stores.len(), 2);
        let d = &p.state.shares[0];
        assert_eq!(d.name, "/docs");
        assert_eq!(d.squash, "root_to_anonymous");
        assert_eq!(d.anon_uid, 65534);
        assert_eq!(d.chunking.as_ref().map(|c| c.avg), Some(4 << 20));
        assert_eq!(
            d.trash.as_ref().map(|t| (t.enabled, t.max_size_bytes)),
            Some((true, 1 << 30))
        );
    }

    #[test]
    fn s3_needs_its_secret() {
        let m = ms("main", MetadataStoreType::Sled);
        let mut s = share("media", "/media", "main", "disk");
        s.spec.remote_block_store_ref = Some("s3".into());
        let mut remote = s3_store("s3", "");
        if let Some(s3) = remote.spec.remote.as_mut().and_then(|r| r.s3.as_mut()) {
            s3.credentials_secret = Some("creds".into());
        }
        let bs = vec![local("disk", LocalBlockType::Fs), remote];
        let p = plan_group(
            &m,
            std::slice::from_ref(&s),
            &bs,
            &S3Credentials::new(),
            &Passwords::new(),
        );
        assert_eq!(p.excluded["media"].0, "SecretNotFound");
        let creds =
            S3Credentials::from([("s3".to_string(), ("id".to_string(), "key".to_string()))]);
        let p = plan_group(&m, &[s], &bs, &creds, &Passwords::new());
        assert_eq!(p.served, vec!["media"]);
        let r = p
            .state
            .block_stores
            .iter()
            .find(|b| b.name == "s3")
            .unwrap();
        assert_eq!(r.s3.as_ref().map(|s| s.access_key_id.as_str()), Some("id"));
    }

    fn s3_store(name: &str, prefix: &str) -> BlockStore {
        BlockStore::new(
            name,
            BlockStoreSpec {
                kind: BlockStoreKind::Remote,
                local: None,
                remote: Some(RemoteBlockSpec {
                    type_: RemoteBlockType::S3,
                    s3: Some(S3Spec {
                        bucket: "b".into(),
                        region: "r".into(),
                        endpoint: "http://s3:9000".into(),
                        prefix: prefix.into(),
                        force_path_style: true,
                        create_bucket: false,
                        credentials_secret: None,
                    }),
                }),
            },
        )
    }

    /// A remote location serves one group: the group of the oldest Share using it keeps
    /// it; a Share of another group on it (through the same or another BlockStore naming
    /// the same bucket + endpoint + prefix) is left out with a reason; another prefix is
    /// fine.
    #[test]
    fn a_remote_location_serves_one_group() {
        let at = |s: &mut Share, secs: i64| {
            s.metadata.creation_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::from_second(secs).unwrap(),
                ));
        };
        let on = |name: &str, ms: &str, remote: &str, secs: i64| {
            let mut s = share(name, &format!("/{name}"), ms, "disk");
            s.spec.remote_block_store_ref = Some(remote.into());
            at(&mut s, secs);
            s
        };
        let shares = vec![
            on("first", "a", "s3", 10),
            on("second", "b", "s3", 20),
            on("alias", "b", "s3-again", 30),
            on("own", "b", "s3-other", 40),
        ];
        let bs = vec![
            local("disk", LocalBlockType::Fs),
            s3_store("s3", "p/"),
            s3_store("s3-again", "/p"),
            s3_store("s3-other", "q"),
        ];
        let a = plan_group(
            &ms("a", MetadataStoreType::Sled),
            &shares,
            &bs,
            &S3Credentials::new(),
            &Passwords::new(),
        );
        assert_eq!(a.served, vec!["first"]);
        let b = plan_group(
            &ms("b", MetadataStoreType::Sled),
            &shares,
            &bs,
            &S3Credentials::new(),
            &Passwords::new(),
        );
        assert_eq!(b.served, vec!["own"]);
        for s in ["second", "alias"] {
            let (reason, msg) = &b.excluded[s];
            assert_eq!(reason, "RemoteInUse");
            assert!(msg.contains("server group a"), "{msg}");
        }
    }

    #[test]
    fn postgres_serves_nothing_yet() {
        let m = ms("pg", MetadataStoreType::Postgres);
        let p = plan_group(
            &m,
            &[share("a", "/a", "pg", "disk")],
            &[local("disk", LocalBlockType::Fs)],
            &S3Credentials::new(),
            &Passwords::new(),
        );
        assert!(p.served.is_empty());
        assert_eq!(p.excluded["a"].0, "MetadataTypeUnsupported");
    }

    fn with_users(name: &str, users: &[(&str, &str)]) -> MetadataStore {
        let mut m = ms(name, MetadataStoreType::Sled);
        m.spec.groups = vec![GroupSpec {
            name: "staff".into(),
            gid: Some(3000),
        }];
        m.spec.users = users
            .iter()
            .map(|(u, secret)| UserSpec {
                name: (*u).into(),
                uid: None,
                gid: None,
                groups: vec!["staff".into()],
                disabled: false,
                password_secret_ref: SecretKeyRef {
                    name: (*secret).into(),
                    key: "password".into(),
                },
            })
            .collect();
        m
    }

    fn read_only_for(s: &mut Share, user: &str) {
        s.spec.permissions = Some(PermissionsSpec {
            default_level: Some(AccessLevel::None),
            grants: vec![GrantSpec {
                user: Some(user.into()),
                group: None,
                level: AccessLevel::Read,
            }],
        });
    }

    /// Each group gets its own users and the permissions of its own served Shares.
    #[test]
    fn identity_is_planned_per_group() {
        let (a, b) = (
            with_users("a", &[("alice", "alice-pw")]),
            with_users("b", &[("bob", "bob-pw")]),
        );
        let mut docs = share("docs", "/docs", "a", "disk");
        read_only_for(&mut docs, "alice");
        let mut media = share("media", "/media", "b", "disk");
        read_only_for(&mut media, "bob");
        let shares = vec![docs, media, share("open", "/open", "a", "disk")];
        let bs = vec![local("disk", LocalBlockType::Fs)];
        let pw = Passwords::from([
            (("alice-pw".into(), "password".into()), "pa".into()),
            (("bob-pw".into(), "password".into()), "pb".into()),
        ]);
        let pa = plan_group(&a, &shares, &bs, &S3Credentials::new(), &pw);
        assert_eq!(pa.served, vec!["docs", "open"]);
        let id = pa.state.identity.as_ref().unwrap();
        let users: Vec<(&str, &str)> = id
            .users
            .iter()
            .map(|u| (u.name.as_str(), u.password.as_str()))
            .collect();
        assert_eq!(users, vec![("alice", "pa")]);
        assert_eq!(id.groups[0].gid, 3000);
        assert_eq!(id.permissions.len(), 1);
        assert_eq!(id.permissions[0].share, "/docs");
        assert_eq!(id.permissions[0].grants[0].level, "read");
        let pb_ = plan_group(&b, &shares, &bs, &S3Credentials::new(), &pw);
        let id = pb_.state.identity.as_ref().unwrap();
        assert_eq!(id.users[0].name, "bob");
        assert_eq!(id.permissions[0].share, "/media");
        // No users, groups or permissions: no identity section at all.
        let plain = plan_group(
            &ms("a", MetadataStoreType::Sled),
            &[share("open", "/open", "a", "disk")],
            &bs,
            &S3Credentials::new(),
            &pw,
        );
        assert_eq!(plain.state.identity, None);
        assert_eq!(plain.identity_error, None);
    }

    /// A missing password Secret keeps the pods' identity and takes the Shares that need
    /// it out; a grant to an unknown user takes that Share out. Others stay served.
    #[test]
    fn shares_with_permissions_fail_closed() {
        let a = with_users("a", &[("alice", "alice-pw")]);
        let mut docs = share("docs", "/docs", "a", "disk");
        read_only_for(&mut docs, "alice");
        let mut typo = share("typo", "/typo", "a", "disk");
        read_only_for(&mut typo, "alcie");
        let shares = vec![docs, typo, share("open", "/open", "a", "disk")];
        let bs = vec![local("disk", LocalBlockType::Fs)];
        let p = plan_group(&a, &shares, &bs, &S3Credentials::new(), &Passwords::new());
        assert_eq!(p.served, vec!["open"]);
        assert_eq!(p.state.identity, None);
        let e = p.identity_error.as_ref().unwrap();
        assert_eq!(e.reason(), "SecretNotFound");
        let (reason, msg) = &p.excluded["docs"];
        assert_eq!(reason, "IdentityUnavailable");
        assert!(msg.contains("alice-pw"), "{msg}");
        let pw = Passwords::from([(("alice-pw".into(), "password".into()), "pa".into())]);
        let p = plan_group(&a, &shares, &bs, &S3Credentials::new(), &pw);
        assert_eq!(p.served, vec!["docs", "open"]);
        assert_eq!(p.excluded["typo"].0, "InvalidPermissions");
        let id = p.state.identity.as_ref().unwrap();
        let perms: Vec<&str> = id.permissions.iter().map(|x| x.share.as_str()).collect();
        assert_eq!(perms, vec!["/docs"]);
    }

    /// No password reaches a text the operator writes: excluded Shares' messages and the
    /// identity error (which end up in conditions, Events and logs).
    #[test]
    fn no_password_in_any_plan_text() {
        let a = with_users("a", &[("alice", "alice-pw"), ("bob", "bob-pw")]);
        let mut docs = share("docs", "/docs", "a", "disk");
        read_only_for(&mut docs, "alice");
        let mut typo = share("typo", "/typo", "a", "disk");
        read_only_for(&mut typo, "mallory");
        let shares = vec![docs, typo];
        let bs = vec![local("disk", LocalBlockType::Fs)];
        let only_alice =
            Passwords::from([(("alice-pw".into(), "password".into()), "Hunter2-pw".into())]);
        let both = {
            let mut p = only_alice.clone();
            p.insert(("bob-pw".into(), "password".into()), "Bobs-pw-9".into());
            p
        };
        for pw in [only_alice, both] {
            let p = plan_group(&a, &shares, &bs, &S3Credentials::new(), &pw);
            assert!(!p.excluded.is_empty());
            let mut texts: Vec<String> = p.excluded.values().map(|(_, m)| m.clone()).collect();
            texts.extend(p.identity_error.iter().map(|e| format!("{e} {e:?}")));
            for t in &texts {
                assert!(!t.contains("Hunter2") && !t.contains("Bobs-pw"), "{t}");
            }
        }
    }
}
