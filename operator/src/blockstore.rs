//! BlockStore: a definition that Shares reference; the MetadataStore reconcile turns it into
//! volumes and data-plane configuration. Here only its own status: which Shares use it and
//! whether it is usable (an S3 store's credentials Secret exists and has both keys).

use crate::context::{Ctx, apply_status, conditions, event_on_transition, timed};
use crate::crd::{BlockStore, BlockStoreStatus, Share};
use crate::error::Result;
use crate::metadatastore::secret_value;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use std::sync::Arc;
use std::time::Duration;

pub async fn reconcile(bs: Arc<BlockStore>, ctx: Arc<Ctx>) -> Result<Action> {
    timed(&ctx, "blockstore", reconcile_inner(&bs, &ctx)).await
}

async fn reconcile_inner(bs: &BlockStore, ctx: &Ctx) -> Result<Action> {
    if bs.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = bs.namespace().unwrap_or_default();
    let name = bs.name_any();
    let old = bs.status.clone().unwrap_or_default();
    let mut used_by: Vec<String> = Api::<Share>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|s| {
            s.spec.local_block_store_ref == name
                || s.spec.remote_block_store_ref.as_deref() == Some(&name)
        })
        .map(|s| s.name_any())
        .collect();
    used_by.sort();
    let mut problem: Option<(&str, String)> = None;
    if let Some(sec) = bs
        .spec
        .remote
        .as_ref()
        .and_then(|r| r.s3.as_ref())
        .and_then(|s| s.credentials_secret.clone())
    {
        match Api::<Secret>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&sec)
            .await?
        {
            None => {
                problem = Some((
                    "SecretNotFound",
                    format!("credentials Secret {sec} does not exist"),
                ))
            }
            Some(s) => {
                if secret_value(&s, "accessKeyId").is_none()
                    || secret_value(&s, "secretAccessKey").is_none()
                {
                    problem = Some((
                        "SecretIncomplete",
                        format!("Secret {sec} needs keys accessKeyId and secretAccessKey"),
                    ));
                }
            }
        }
    }
    let generation = bs.metadata.generation;
    let conds = match &problem {
        None => conditions(
            &old.conditions,
            generation,
            &[
                (
                    "Ready",
                    true,
                    "Valid",
                    format!("used by {} share(s)", used_by.len()),
                ),
                ("Progressing", false, "Stable", String::new()),
                ("Degraded", false, "AsExpected", String::new()),
            ],
        ),
        Some((reason, msg)) => conditions(
            &old.conditions,
            generation,
            &[
                ("Ready", false, reason, msg.clone()),
                ("Progressing", false, "Stable", String::new()),
                ("Degraded", true, reason, msg.clone()),
            ],
        ),
    };
    event_on_transition(ctx, bs, &old.conditions, &conds).await;
    let status = BlockStoreStatus {
        observed_generation: generation,
        conditions: conds,
        used_by,
    };
    if bs.status.as_ref() != Some(&status) {
        apply_status(
            &Api::<BlockStore>::namespaced(ctx.client.clone(), &ns),
            &name,
            &status,
        )
        .await?;
    }
    Ok(Action::requeue(Duration::from_secs(if problem.is_some() {
        30
    } else {
        300
    })))
}
