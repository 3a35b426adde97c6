//! Share -> a cluster-scoped NFS PersistentVolume (server = the group's Service ClusterIP,
//! path = the export path, ReadWriteMany, reclaim Retain, labelled back to the Share) and
//! optionally a claim pre-bound to it in the namespace the Share names.
//!
//! Invariants:
//! - The finalizer `dittofs.io/volumes` is the only one the operator sets: a PV is
//!   cluster-scoped and the claim may live in another namespace, so neither can be owned by
//!   the Share. On deletion, `volumeDeletionPolicy: Delete` removes the claim and the PV
//!   (only objects labelled as this Share's), `Retain` leaves them; the Share's data always
//!   stays in its stores (the MetadataStore reconcile drops the export, not the tree).
//! - Ready means: the group serves the Share (it is in the MetadataStore's
//!   `status.appliedShares`), the PV exists and is Available/Bound, and the claim (if asked
//!   for) is Bound.

use crate::context::{Ctx, Verdict, apply, apply_status, event_on_transition, timed};
use crate::crd::{MetadataStore, Share, ShareStatus, VolumeDeletionPolicy, VolumeRef};
use crate::error::Result;
use crate::metadatastore::group_inputs;
use crate::names::*;
use crate::resources;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use std::sync::Arc;
use std::time::Duration;

pub async fn reconcile(share: Arc<Share>, ctx: Arc<Ctx>) -> Result<Action> {
    timed(&ctx, "share", async {
        if share.metadata.deletion_timestamp.is_some() {
            cleanup(&share, &ctx).await
        } else {
            reconcile_inner(&share, &ctx).await
        }
    })
    .await
}

async fn set_finalizers(ctx: &Ctx, share: &Share, finalizers: Vec<String>) -> Result<()> {
    let api = Api::<Share>::namespaced(ctx.client.clone(), &share.namespace().unwrap_or_default());
    // A merge patch with resourceVersion: fails (409) instead of clobbering a concurrent edit.
    let patch = serde_json::json!({
        "metadata": { "finalizers": finalizers, "resourceVersion": share.resource_version() }
    });
    api.patch(
        &share.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

fn is_ours(labels: &std::collections::BTreeMap<String, String>, ns: &str, name: &str) -> bool {
    let want = share_labels(ns, name);
    [LABEL_MANAGED_BY, LABEL_SHARE, LABEL_SHARE_NAMESPACE]
        .iter()
        .all(|k| labels.get(*k) == want.get(*k))
}

async fn cleanup(share: &Share, ctx: &Ctx) -> Result<Action> {
    if !share.finalizers().iter().any(|f| f == SHARE_FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = share.namespace().unwrap_or_default();
    let name = share.name_any();
    if share.spec.volume_deletion_policy == VolumeDeletionPolicy::Delete {
        if let Some((cns, cname)) = resources::claim_of(share) {
            let api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &cns);
            if let Some(pvc) = api.get_opt(&cname).await?
                && is_ours(pvc.labels(), &ns, &name)
                && pvc.metadata.deletion_timestamp.is_none()
            {
                api.delete(&cname, &DeleteParams::default()).await?;
            }
        }
        let api = Api::<PersistentVolume>::all(ctx.client.clone());
        let pv = pv_name(&ns, &name);
        if let Some(v) = api.get_opt(&pv).await?
            && is_ours(v.labels(), &ns, &name)
            && v.metadata.deletion_timestamp.is_none()
        {
            api.delete(&pv, &DeleteParams::default()).await?;
        }
        ctx.event(
            share,
            false,
            "VolumesDeleted",
            "Cleanup",
            format!("deleted PersistentVolume {pv} and its claim"),
        )
        .await;
    } else {
        ctx.event(
            share,
            false,
            "VolumesRetained",
            "Cleanup",
            "volumeDeletionPolicy Retain: PersistentVolume and claim kept".into(),
        )
        .await;
    }
    let rest: Vec<String> = share
        .finalizers()
        .iter()
        .filter(|f| *f != SHARE_FINALIZER)
        .cloned()
        .collect();
    set_finalizers(ctx, share, rest).await?;
    Ok(Action::await_change())
}

async fn reconcile_inner(share: &Share, ctx: &Ctx) -> Result<Action> {
    if !share.finalizers().iter().any(|f| f == SHARE_FINALIZER) {
        let mut f = share.finalizers().to_vec();
        f.push(SHARE_FINALIZER.into());
        set_finalizers(ctx, share, f).await?;
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let ns = share.namespace().unwrap_or_default();
    let name = share.name_any();
    let api = Api::<Share>::namespaced(ctx.client.clone(), &ns);
    let old = share.status.clone().unwrap_or_default();
    let generation = share.metadata.generation;
    let mut status = ShareStatus {
        observed_generation: generation,
        ..Default::default()
    };

    let ms = Api::<MetadataStore>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&share.spec.metadata_store_ref)
        .await?;
    // (ready, reason, message) of the Share; filled step by step.
    let verdict: Verdict = 'v: {
        let Some(ms) = ms else {
            break 'v Verdict::degraded(
                "MetadataStoreNotFound",
                format!(
                    "MetadataStore {} does not exist",
                    share.spec.metadata_store_ref
                ),
            );
        };
        let inputs = group_inputs(ctx, &ms).await?;
        let plan = inputs.plan(&ms);
        if let Some((reason, msg)) = plan.excluded.get(&name) {
            break 'v Verdict::degraded(reason, msg.clone());
        }
        let ms_status = ms.status.clone().unwrap_or_default();
        let Some(ip) = ms_status.service_ip.clone() else {
            break 'v Verdict::progressing(
                "WaitingForService",
                format!(
                    "the Service of MetadataStore {} has no ClusterIP yet",
                    ms.name_any()
                ),
            );
        };
        let port = ms.spec.server.ports.nfs;
        status.endpoint = Some(format!("{ip}:{port}:{}", share.spec.path));
        let pv_api = Api::<PersistentVolume>::all(ctx.client.clone());
        let pv_doc = resources::persistent_volume(share, &ip, port);
        let pv = apply(&pv_api, &pv_name(&ns, &name), &pv_doc).await?;
        let pv_phase = pv
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        status.persistent_volume = Some(VolumeRef {
            namespace: None,
            name: pv.name_any(),
            phase: pv_phase.clone(),
        });
        let mut claim_ok = true;
        if let (Some(doc), Some((cns, cname))) = (
            resources::persistent_volume_claim(share),
            resources::claim_of(share),
        ) {
            let pvc_api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &cns);
            match apply(&pvc_api, &cname, &doc).await {
                Ok(pvc) => {
                    let phase = pvc
                        .status
                        .as_ref()
                        .and_then(|s| s.phase.clone())
                        .unwrap_or_default();
                    claim_ok = phase == "Bound";
                    status.persistent_volume_claim = Some(VolumeRef {
                        namespace: Some(cns),
                        name: cname,
                        phase,
                    });
                }
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 403 || e.code == 422 => {
                    break 'v Verdict::degraded(
                        "ClaimRejected",
                        format!("claim {cns}/{cname}: {}", e.message),
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(r) = ms_status.rejected_shares.iter().find(|r| r.name == name) {
            break 'v Verdict::degraded("RejectedByDataPlane", r.message.clone());
        }
        if !ms_status.applied_shares.contains(&name) {
            break 'v Verdict::progressing(
                "WaitingForDataPlane",
                format!(
                    "MetadataStore {} has not applied this share to its pods yet",
                    ms.name_any()
                ),
            );
        }
        if !(pv_phase == "Available" || pv_phase == "Bound") || !claim_ok {
            break 'v Verdict::progressing(
                "WaitingForVolume",
                format!("PersistentVolume {pv_phase:?}, claim bound: {claim_ok}"),
            );
        }
        Verdict::ready(
            "Exported",
            format!("served at {}", status.endpoint.clone().unwrap_or_default()),
        )
    };
    status.conditions = verdict.conditions(&old.conditions, generation);
    event_on_transition(ctx, share, &old.conditions, &status.conditions).await;
    if share.status.as_ref() != Some(&status) {
        apply_status(&api, &name, &status).await?;
    }
    Ok(Action::requeue(Duration::from_secs(if verdict.ready {
        300
    } else {
        15
    })))
}
