//! `dfsctl store metadata ...` and `dfsctl store block ...` (add, list, remove; GC is in
//! `jobs`). Store settings come from individual flags and/or a `--config` JSON object
//! whose unknown keys are refused; a key given both ways must agree, except the S3
//! secret key, which is given one way only (`--secret-access-key`,
//! `--secret-access-key-file`, `DFSCTL_S3_SECRET_ACCESS_KEY` or `--config`; see
//! `crate::secret`).

use super::{Ctx, jobs};
use crate::cli::{
    BlockCommand, BlockCommonArgs, BlockKind, LocalCommand, LocalFlags, MetadataAddArgs,
    MetadataCommand, RemoteCommand, S3_SECRET_ENV, S3Flags, StoreCommand,
};
use crate::error::CliError;
use crate::output::{RemovedView, block_stores_text, emit, metadata_stores_text, removed_text};
use crate::secret::SecretInput;
use crate::spec::{BlockStoreSpec, MetadataStoreSpec};
use dittofs_proto::v1 as pb;
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub(super) async fn run(ctx: &mut Ctx, cmd: StoreCommand) -> Result<(), CliError> {
    match cmd {
        StoreCommand::Metadata(c) => metadata(ctx, c).await,
        StoreCommand::Block(c) => block(ctx, c).await,
    }
}

async fn metadata(ctx: &mut Ctx, cmd: MetadataCommand) -> Result<(), CliError> {
    match cmd {
        MetadataCommand::Add(a) => {
            let store = metadata_store(&a)?;
            let added = ctx
                .conn()
                .await?
                .call(
                    pb::AddMetadataStoreRequest { store: Some(store) },
                    |mut c, r| async move { c.add_metadata_store(r).await },
                )
                .await?;
            let view = MetadataStoreSpec::from(&added);
            emit(ctx.format(), &view, |v| {
                format!("metadata store {:?} added\n", v.name)
            })
        }
        MetadataCommand::List => {
            let resp = ctx
                .conn()
                .await?
                .call(pb::ListMetadataStoresRequest {}, |mut c, r| async move {
                    c.list_metadata_stores(r).await
                })
                .await?;
            let views: Vec<MetadataStoreSpec> = resp.stores.iter().map(Into::into).collect();
            emit(ctx.format(), &views, |v| metadata_stores_text(v))
        }
        MetadataCommand::Remove { name } => {
            let resp = ctx
                .conn()
                .await?
                .call(
                    pb::RemoveMetadataStoreRequest { name: name.clone() },
                    |mut c, r| async move { c.remove_metadata_store(r).await },
                )
                .await?;
            removed(ctx, "metadata store", name, resp)
        }
    }
}

async fn block(ctx: &mut Ctx, cmd: BlockCommand) -> Result<(), CliError> {
    match cmd {
        BlockCommand::Local(LocalCommand::Add(a)) => {
            add_block(
                ctx,
                block_store(
                    BlockKind::Local,
                    &a.common,
                    Some(&a.store_type),
                    Some(&a.local),
                    None,
                    None,
                )?,
            )
            .await
        }
        BlockCommand::Local(LocalCommand::List) => list_blocks(ctx, Some(BlockKind::Local)).await,
        BlockCommand::Local(LocalCommand::Remove { name }) => {
            remove_block(ctx, name, Some(BlockKind::Local)).await
        }
        BlockCommand::Remote(RemoteCommand::Add(a)) => {
            add_block(
                ctx,
                block_store(
                    BlockKind::Remote,
                    &a.common,
                    Some(&a.store_type),
                    None,
                    Some(&a.s3),
                    s3_secret_env().as_deref(),
                )?,
            )
            .await
        }
        BlockCommand::Remote(RemoteCommand::List) => {
            list_blocks(ctx, Some(BlockKind::Remote)).await
        }
        BlockCommand::Remote(RemoteCommand::Remove { name }) => {
            remove_block(ctx, name, Some(BlockKind::Remote)).await
        }
        BlockCommand::Remote(RemoteCommand::Status { name, scan }) => {
            let resp = ctx
                .conn()
                .await?
                .call(
                    pb::RemoteStatusRequest {
                        name: name.unwrap_or_default(),
                        scan,
                    },
                    |mut c, r| async move { c.remote_status(r).await },
                )
                .await?;
            emit(
                ctx.format(),
                &crate::output::TierStatusView::from(&resp),
                crate::output::tier_status_text,
            )
        }
        BlockCommand::Add(a) => {
            add_block(
                ctx,
                block_store(
                    a.kind,
                    &a.common,
                    a.store_type.as_deref(),
                    Some(&a.local),
                    Some(&a.s3),
                    s3_secret_env().as_deref(),
                )?,
            )
            .await
        }
        BlockCommand::List { kind } => list_blocks(ctx, kind).await,
        BlockCommand::Remove { name, kind } => remove_block(ctx, name, kind).await,
        BlockCommand::Gc(a) => jobs::gc(ctx, a).await,
        BlockCommand::GcStatus { share } => jobs::gc_status(ctx, share).await,
    }
}

/// The S3 secret key from the environment, if set.
fn s3_secret_env() -> Option<String> {
    std::env::var(S3_SECRET_ENV).ok()
}

fn api_kind(kind: Option<BlockKind>) -> pb::BlockStoreKind {
    match kind {
        None => pb::BlockStoreKind::Unspecified,
        Some(BlockKind::Local) => pb::BlockStoreKind::Local,
        Some(BlockKind::Remote) => pb::BlockStoreKind::Remote,
    }
}

fn kind_label(kind: Option<BlockKind>) -> &'static str {
    match kind {
        None => "block store",
        Some(BlockKind::Local) => "local block store",
        Some(BlockKind::Remote) => "remote block store",
    }
}

async fn add_block(ctx: &mut Ctx, store: pb::BlockStore) -> Result<(), CliError> {
    let added = ctx
        .conn()
        .await?
        .call(
            pb::AddBlockStoreRequest { store: Some(store) },
            |mut c, r| async move { c.add_block_store(r).await },
        )
        .await?;
    let view = BlockStoreSpec::from(&added).redacted();
    emit(ctx.format(), &view, |v| {
        format!("{} block store {:?} added\n", v.kind.as_str(), v.name)
    })
}

async fn list_blocks(ctx: &mut Ctx, kind: Option<BlockKind>) -> Result<(), CliError> {
    let resp = ctx
        .conn()
        .await?
        .call(
            pb::ListBlockStoresRequest {
                kind: api_kind(kind) as i32,
            },
            |mut c, r| async move { c.list_block_stores(r).await },
        )
        .await?;
    let views: Vec<BlockStoreSpec> = resp
        .stores
        .iter()
        .map(|s| BlockStoreSpec::from(s).redacted())
        .collect();
    emit(ctx.format(), &views, |v| block_stores_text(v))
}

async fn remove_block(
    ctx: &mut Ctx,
    name: String,
    kind: Option<BlockKind>,
) -> Result<(), CliError> {
    let resp = ctx
        .conn()
        .await?
        .call(
            pb::RemoveBlockStoreRequest {
                name: name.clone(),
                kind: api_kind(kind) as i32,
            },
            |mut c, r| async move { c.remove_block_store(r).await },
        )
        .await?;
    removed(ctx, kind_label(kind), name, resp)
}

fn removed(ctx: &Ctx, kind: &str, name: String, resp: pb::RemoveResponse) -> Result<(), CliError> {
    let view = RemovedView {
        kind: kind.into(),
        name,
        removed: true,
        applied_generation: resp.applied_generation,
    };
    emit(ctx.format(), &view, removed_text)
}

// ----------------------------------------------------------------- request building

/// `--config` of metadata and local block stores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct PathConfig {
    #[serde(default)]
    path: Option<String>,
}

/// `--config` of remote (S3) block stores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct S3ConfigJson {
    #[serde(default)]
    bucket: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    force_path_style: Option<bool>,
    #[serde(default)]
    create_bucket: Option<bool>,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    secret_access_key: Option<String>,
}

fn parse_config<T: DeserializeOwned + Default>(json: Option<&str>) -> Result<T, CliError> {
    match json {
        None => Ok(T::default()),
        Some(s) => {
            let bad = |e: serde_json::Error| CliError::Usage(format!("--config: {e}"));
            let value: serde_json::Value = serde_json::from_str(s).map_err(bad)?;
            // serde would also accept an array for a struct: insist on an object.
            if !value.is_object() {
                return Err(CliError::Usage("--config: expected a JSON object".into()));
            }
            serde_json::from_value(value).map_err(bad)
        }
    }
}

/// One setting from `--config` and/or its flag; both given must agree.
fn merge<T: PartialEq>(
    key: &str,
    from_config: Option<T>,
    from_flag: Option<T>,
) -> Result<Option<T>, CliError> {
    match (from_config, from_flag) {
        (Some(a), Some(b)) if a != b => Err(CliError::Usage(format!(
            "`{key}` is given both in --config and as --{} with different values",
            key.replace('_', "-")
        ))),
        (a, b) => Ok(b.or(a)),
    }
}

fn metadata_store(a: &MetadataAddArgs) -> Result<pb::MetadataStore, CliError> {
    let cfg: PathConfig = parse_config(a.config.as_deref())?;
    let path = merge("path", cfg.path, a.path.clone())?.unwrap_or_default();
    Ok(pb::MetadataStore {
        name: a.name.clone(),
        r#type: a.store_type.clone(),
        path,
    })
}

fn s3_flags_given(s: &S3Flags) -> Option<&'static str> {
    [
        (s.bucket.is_some(), "--bucket"),
        (s.region.is_some(), "--region"),
        (s.endpoint.is_some(), "--endpoint"),
        (s.prefix.is_some(), "--prefix"),
        (s.force_path_style, "--force-path-style"),
        (s.create_bucket, "--create-bucket"),
        (s.access_key_id.is_some(), "--access-key-id"),
        (s.secret_access_key.is_some(), "--secret-access-key"),
        (
            s.secret_access_key_file.is_some(),
            "--secret-access-key-file",
        ),
    ]
    .into_iter()
    .find_map(|(given, flag)| given.then_some(flag))
}

/// The forms of the S3 secret key: the flag, the file, the environment (`env`) and
/// `secret_access_key` of `--config`.
fn s3_secret_inputs(
    f: &S3Flags,
    env: Option<&str>,
    from_config: Option<String>,
) -> Vec<SecretInput> {
    let value = |origin: &str, v: Option<String>| {
        v.map(|value| SecretInput::Value {
            origin: origin.into(),
            value,
        })
    };
    [
        value("--secret-access-key", f.secret_access_key.clone()),
        f.secret_access_key_file
            .clone()
            .map(|path| SecretInput::File {
                origin: "--secret-access-key-file".into(),
                path,
            }),
        value(S3_SECRET_ENV, env.map(str::to_owned)),
        value("`secret_access_key` in --config", from_config),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The request's block store. `s3_secret_env` is `DFSCTL_S3_SECRET_ACCESS_KEY` (read by
/// the caller; ignored for local and memory stores).
fn block_store(
    kind: BlockKind,
    common: &BlockCommonArgs,
    store_type: Option<&str>,
    local: Option<&LocalFlags>,
    s3: Option<&S3Flags>,
    s3_secret_env: Option<&str>,
) -> Result<pb::BlockStore, CliError> {
    let (default_type, kind_name) = match kind {
        BlockKind::Local => ("fs", "local"),
        BlockKind::Remote => ("s3", "remote"),
    };
    let store_type = store_type.unwrap_or(default_type).to_string();
    // `memory` remotes are for tests (an in-process object store lost at exit).
    if store_type != default_type && !(kind_name == "remote" && store_type == "memory") {
        return Err(CliError::Usage(format!(
            "--type {store_type} is not a {kind_name} block store type (use --type {default_type})"
        )));
    }
    let mut store = pb::BlockStore {
        name: common.name.clone(),
        kind: match kind {
            BlockKind::Local => pb::BlockStoreKind::Local,
            BlockKind::Remote => pb::BlockStoreKind::Remote,
        } as i32,
        r#type: store_type,
        path: String::new(),
        s3: None,
        max_size_bytes: local.and_then(|l| l.max_size).unwrap_or(0),
        read_timeout_seconds: 0,
    };
    match kind {
        BlockKind::Local => {
            if let Some(flag) = s3.and_then(s3_flags_given) {
                return Err(CliError::Usage(format!(
                    "{flag} applies to remote block stores only"
                )));
            }
            let cfg: PathConfig = parse_config(common.config.as_deref())?;
            let flag_path = local.and_then(|l| l.path.clone());
            store.path = merge("path", cfg.path, flag_path)?.unwrap_or_default();
        }
        BlockKind::Remote => {
            if local.and_then(|l| l.path.as_ref()).is_some() {
                return Err(CliError::Usage(
                    "--path applies to local block stores only".into(),
                ));
            }
            if local.and_then(|l| l.max_size).is_some() {
                return Err(CliError::Usage(
                    "--max-size applies to local block stores only".into(),
                ));
            }
            if store.r#type == "memory" {
                if let Some(flag) = s3.and_then(s3_flags_given) {
                    return Err(CliError::Usage(format!(
                        "{flag} applies to s3 remote block stores only"
                    )));
                }
                return Ok(store);
            }
            let cfg: S3ConfigJson = parse_config(common.config.as_deref())?;
            let empty = S3Flags {
                bucket: None,
                region: None,
                endpoint: None,
                prefix: None,
                force_path_style: false,
                create_bucket: false,
                access_key_id: None,
                secret_access_key: None,
                secret_access_key_file: None,
            };
            let f = s3.unwrap_or(&empty);
            let secret = crate::secret::resolve(
                "S3 secret access key",
                &s3_secret_inputs(f, s3_secret_env, cfg.secret_access_key.clone()),
            )?;
            let s3 = pb::S3Config {
                bucket: merge("bucket", cfg.bucket, f.bucket.clone())?.unwrap_or_default(),
                region: merge("region", cfg.region, f.region.clone())?.unwrap_or_default(),
                endpoint: merge("endpoint", cfg.endpoint, f.endpoint.clone())?.unwrap_or_default(),
                prefix: merge("prefix", cfg.prefix, f.prefix.clone())?.unwrap_or_default(),
                force_path_style: merge(
                    "force_path_style",
                    cfg.force_path_style,
                    f.force_path_style.then_some(true),
                )?
                .unwrap_or(false),
                access_key_id: merge("access_key_id", cfg.access_key_id, f.access_key_id.clone())?
                    .unwrap_or_default(),
                secret_access_key: secret.map(|s| s.value).unwrap_or_default(),
                create_bucket: merge(
                    "create_bucket",
                    cfg.create_bucket,
                    f.create_bucket.then_some(true),
                )?
                .unwrap_or(false),
            };
            if s3.bucket.is_empty() {
                return Err(CliError::Usage(
                    "a remote s3 store needs a bucket: --bucket or \"bucket\" in --config".into(),
                ));
            }
            store.s3 = Some(s3);
        }
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(config: Option<&str>) -> BlockCommonArgs {
        BlockCommonArgs {
            name: "b".into(),
            config: config.map(Into::into),
        }
    }

    fn no_s3() -> S3Flags {
        S3Flags {
            bucket: None,
            region: None,
            endpoint: None,
            prefix: None,
            force_path_style: false,
            create_bucket: false,
            access_key_id: None,
            secret_access_key: None,
            secret_access_key_file: None,
        }
    }

    /// `block_store` without `DFSCTL_S3_SECRET_ACCESS_KEY`.
    fn build(
        kind: BlockKind,
        common: &BlockCommonArgs,
        store_type: Option<&str>,
        local: Option<&LocalFlags>,
        s3: Option<&S3Flags>,
    ) -> Result<pb::BlockStore, CliError> {
        block_store(kind, common, store_type, local, s3, None)
    }

    fn secret_of(
        flags: &S3Flags,
        env: Option<&str>,
        config: Option<&str>,
    ) -> Result<String, CliError> {
        let json = config.map(|k| format!(r#"{{"bucket":"b","secret_access_key":"{k}"}}"#));
        let flags = S3Flags {
            bucket: config.is_none().then(|| "b".to_string()),
            ..flags.clone()
        };
        block_store(
            BlockKind::Remote,
            &common(json.as_deref()),
            None,
            None,
            Some(&flags),
            env,
        )
        .map(|s| s.s3.map(|s3| s3.secret_access_key).unwrap_or_default())
    }

    #[test]
    fn s3_secret_key_one_way_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s3-secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let with_file = S3Flags {
            secret_access_key_file: Some(file.clone()),
            ..no_s3()
        };
        let with_flag = S3Flags {
            secret_access_key: Some("from-flag".into()),
            ..no_s3()
        };
        assert_eq!(secret_of(&no_s3(), None, None).unwrap(), "");
        assert_eq!(secret_of(&with_file, None, None).unwrap(), "from-file");
        assert_eq!(secret_of(&with_flag, None, None).unwrap(), "from-flag");
        assert_eq!(
            secret_of(&no_s3(), Some("from-env"), None).unwrap(),
            "from-env"
        );
        assert_eq!(
            secret_of(&no_s3(), Some(""), Some("from-json")).unwrap(),
            "from-json"
        );
        for (flags, env, config) in [
            (&with_file, Some("from-env"), None),
            (&with_flag, None, Some("from-json")),
            (&with_file, None, Some("from-file")),
            (&with_flag, Some("from-flag"), None),
        ] {
            let e = secret_of(flags, env, config).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(e.to_string().contains("given twice"), "{e}");
            assert!(!e.to_string().contains("from-"), "no secret in {e}");
        }
        std::fs::write(&file, "").unwrap();
        let e = secret_of(&with_file, None, None).unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
        // The file form is an S3 flag: refused for local stores; the environment is not.
        let e = build(
            BlockKind::Local,
            &common(None),
            None,
            None,
            Some(&with_file),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--secret-access-key-file"), "{e}");
        assert!(block_store(BlockKind::Local, &common(None), None, None, None, Some("x")).is_ok());
    }

    #[test]
    fn metadata_config_json() {
        let a = MetadataAddArgs {
            name: "m".into(),
            store_type: "sled".into(),
            path: None,
            config: Some(r#"{"path":"/var/lib/dfs/metadata"}"#.into()),
        };
        let s = metadata_store(&a).unwrap();
        assert_eq!(s.path, "/var/lib/dfs/metadata");
        assert_eq!(s.r#type, "sled");

        let a = MetadataAddArgs {
            config: Some(r#"{"pth":"/x"}"#.into()),
            ..a
        };
        let e = metadata_store(&a).unwrap_err();
        assert!(matches!(e, CliError::Usage(_)));
        assert!(e.to_string().contains("unknown field `pth`"), "{e}");

        let a = MetadataAddArgs {
            config: Some(r#"["path"]"#.into()),
            ..a
        };
        assert!(
            metadata_store(&a)
                .unwrap_err()
                .to_string()
                .contains("a JSON object")
        );

        let a = MetadataAddArgs {
            config: Some(r#"{"path":"/a"}"#.into()),
            path: Some("/b".into()),
            ..a
        };
        assert!(
            metadata_store(&a)
                .unwrap_err()
                .to_string()
                .contains("--path")
        );
    }

    #[test]
    fn remote_config_json_and_flags() {
        let json = r#"{"region":"us-east-1","bucket":"b","endpoint":"http://127.0.0.1:8333","prefix":"p","force_path_style":true,"access_key_id":"AK","secret_access_key":"SK"}"#;
        let s = build(
            BlockKind::Remote,
            &common(Some(json)),
            None,
            None,
            Some(&no_s3()),
        )
        .unwrap();
        assert_eq!(s.kind, pb::BlockStoreKind::Remote as i32);
        assert_eq!(s.r#type, "s3");
        let s3 = s.s3.unwrap();
        assert_eq!(s3.bucket, "b");
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.endpoint, "http://127.0.0.1:8333");
        assert_eq!(s3.prefix, "p");
        assert!(s3.force_path_style);
        assert_eq!(s3.secret_access_key, "SK");

        let flags = S3Flags {
            bucket: Some("b2".into()),
            region: Some("eu-west-1".into()),
            ..no_s3()
        };
        let s = build(BlockKind::Remote, &common(None), None, None, Some(&flags)).unwrap();
        assert_eq!(s.s3.as_ref().map(|x| x.bucket.as_str()), Some("b2"));

        let e = build(
            BlockKind::Remote,
            &common(Some(r#"{"bucket":"b","regoin":"x"}"#)),
            None,
            None,
            Some(&no_s3()),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `regoin`"), "{e}");

        let e = build(BlockKind::Remote, &common(None), None, None, Some(&no_s3())).unwrap_err();
        assert!(e.to_string().contains("bucket"), "{e}");
    }

    #[test]
    fn kinds_and_types_must_match() {
        let local = LocalFlags {
            path: Some("/srv".into()),
            max_size: None,
        };
        let s = build(
            BlockKind::Local,
            &common(None),
            None,
            Some(&local),
            Some(&no_s3()),
        )
        .unwrap();
        assert_eq!((s.r#type.as_str(), s.path.as_str()), ("fs", "/srv"));
        let s = build(
            BlockKind::Local,
            &common(Some(r#"{"path":"/p"}"#)),
            Some("fs"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(s.path, "/p");

        let bucket = S3Flags {
            bucket: Some("b".into()),
            ..no_s3()
        };
        let e = build(BlockKind::Local, &common(None), None, None, Some(&bucket)).unwrap_err();
        assert!(e.to_string().contains("--bucket"), "{e}");
        let e = build(
            BlockKind::Remote,
            &common(None),
            None,
            Some(&local),
            Some(&bucket),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--path"), "{e}");
        assert!(build(BlockKind::Local, &common(None), Some("s3"), None, None).is_err());
        // Local stores have no S3 keys.
        let e = build(
            BlockKind::Local,
            &common(Some(r#"{"bucket":"b"}"#)),
            None,
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `bucket`"), "{e}");
    }
}
