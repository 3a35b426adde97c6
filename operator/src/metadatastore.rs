//! MetadataStore -> the server group: control-token Secret, Service, StatefulSet, and the
//! desired state pushed with `ApplyConfig` to every ready pod (docs/design.md, "Deployment on
//! Kubernetes").
//!
//! Invariants:
//! - The pods start empty; what they serve is exactly `desired::plan_group` of the
//!   MetadataStore's namespace, pushed on every reconcile (dry run first, so an unchanged
//!   pod costs one cheap call). A pod that restarted with an empty state is refilled on the
//!   next reconcile, which a pod event triggers.
//! - Volume claim templates are immutable: when the set of local `fs` BlockStores changes,
//!   the StatefulSet is deleted with `propagationPolicy: Orphan` and re-created, so pods and
//!   claims survive and are adopted by the new one.
//! - No finalizer: everything made here is owned by the MetadataStore and garbage-collected
//!   with it; claims are retained (`persistentVolumeClaimRetentionPolicy: Retain`).

use crate::context::{Ctx, apply, apply_status, conditions, event_on_transition, timed};
use crate::crd::{
    BlockStore, MetadataStore, MetadataStoreStatus, MetadataStoreType, RejectedShare, Share,
};
use crate::dataplane::DataPlane;
use crate::desired::{GroupPlan, S3Credentials, plan_group};
use crate::error::{Error, Result};
use crate::identity::Passwords;
use crate::names::*;
use crate::resources;
use dittofs_proto::v1 as pb;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything in a namespace that shapes the server group of one MetadataStore.
pub struct GroupInputs {
    pub shares: Vec<Share>,
    pub block_stores: Vec<BlockStore>,
    pub creds: S3Credentials,
    /// The passwords of the MetadataStore's users (never logged).
    pub passwords: Passwords,
}

impl GroupInputs {
    /// The plan of group `ms` from these inputs.
    pub fn plan(&self, ms: &MetadataStore) -> GroupPlan {
        plan_group(
            ms,
            &self.shares,
            &self.block_stores,
            &self.creds,
            &self.passwords,
        )
    }
}

/// Reads the Shares, BlockStores and S3 credential Secrets of the namespace of `ms`, and
/// the password Secrets of its users. A missing or incomplete Secret is left out of
/// `creds` or `passwords` (the planner reports who needs it).
pub async fn group_inputs(ctx: &Ctx, ms: &MetadataStore) -> Result<GroupInputs> {
    let ns = ms.namespace().unwrap_or_default();
    let ns = ns.as_str();
    let lp = ListParams::default();
    let shares = Api::<Share>::namespaced(ctx.client.clone(), ns)
        .list(&lp)
        .await?
        .items;
    let block_stores = Api::<BlockStore>::namespaced(ctx.client.clone(), ns)
        .list(&lp)
        .await?
        .items;
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), ns);
    let mut creds = S3Credentials::new();
    for b in &block_stores {
        let Some(name) = b
            .spec
            .remote
            .as_ref()
            .and_then(|r| r.s3.as_ref())
            .and_then(|s| s.credentials_secret.clone())
        else {
            continue;
        };
        if let Some(sec) = secrets.get_opt(&name).await?
            && let (Some(id), Some(key)) = (
                secret_value(&sec, "accessKeyId"),
                secret_value(&sec, "secretAccessKey"),
            )
        {
            creds.insert(b.name_any(), (id, key));
        }
    }
    let mut passwords = Passwords::new();
    for r in ms.spec.users.iter().map(|u| &u.password_secret_ref) {
        let key = (r.name.clone(), r.key.clone());
        if passwords.contains_key(&key) {
            continue;
        }
        if let Some(p) = secrets
            .get_opt(&r.name)
            .await?
            .and_then(|sec| password_value(&sec, &r.key))
        {
            passwords.insert(key, p);
        }
    }
    Ok(GroupInputs {
        shares,
        block_stores,
        creds,
        passwords,
    })
}

/// The text of `key` in `sec` (`data`, else `stringData`), as stored.
fn secret_text(sec: &Secret, key: &str) -> Option<String> {
    sec.data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .or_else(|| sec.string_data.as_ref().and_then(|d| d.get(key).cloned()))
}

/// A password in a Secret: the key's value as is (spaces are part of a password), but for
/// one trailing newline (what `kubectl create secret --from-file` of an `echo`ed file
/// adds). None when absent or empty.
fn password_value(sec: &Secret, key: &str) -> Option<String> {
    let raw = secret_text(sec, key)?;
    let p = raw
        .strip_suffix("\r\n")
        .or_else(|| raw.strip_suffix('\n'))
        .unwrap_or(&raw);
    (!p.is_empty()).then(|| p.to_string())
}

/// A token or key in a Secret, surrounding whitespace trimmed; None when absent or empty.
pub fn secret_value(sec: &Secret, key: &str) -> Option<String> {
    secret_text(sec, key)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The control token of group `ms`, creating its Secret on first use.
pub async fn control_token(ctx: &Ctx, ms: &MetadataStore) -> Result<String> {
    let ns = ms.namespace().unwrap_or_default();
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &ns);
    let name = token_secret_name(&ms.name_any());
    if let Some(sec) = api.get_opt(&name).await? {
        return secret_value(&sec, "token")
            .ok_or_else(|| Error::Invalid(format!("Secret {name} has no key `token`")));
    }
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let sec: Secret = serde_json::from_value(resources::token_secret(ms, &token))?;
    match api.create(&PostParams::default(), &sec).await {
        Ok(_) => {
            ctx.event(
                ms,
                false,
                "TokenCreated",
                "CreateSecret",
                format!("created Secret {name} with a new control token"),
            )
            .await;
            Ok(token)
        }
        // Someone (a user, or a racing reconcile) made it first: use theirs.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let sec = api.get(&name).await?;
            secret_value(&sec, "token")
                .ok_or_else(|| Error::Invalid(format!("Secret {name} has no key `token`")))
        }
        Err(e) => Err(e.into()),
    }
}

fn pod_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Ready pods of group `ms` (sorted by name).
pub async fn ready_pods(ctx: &Ctx, ms: &MetadataStore) -> Result<Vec<Pod>> {
    let ns = ms.namespace().unwrap_or_default();
    let sel = selector_labels(&ms.name_any())
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut pods: Vec<Pod> = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default().labels(&sel))
        .await?
        .items
        .into_iter()
        .filter(pod_ready)
        .collect();
    pods.sort_by_key(|p| p.name_any());
    Ok(pods)
}

/// Connects to one ready pod of the group (for reads: GC/audit results).
pub async fn connect_any(ctx: &Ctx, ms: &MetadataStore) -> Result<DataPlane> {
    let ns = ms.namespace().unwrap_or_default();
    let token = control_token(ctx, ms).await?;
    let mut last = Error::DataPlane {
        addr: group_name(&ms.name_any()),
        msg: "no ready pod".into(),
    };
    for pod in ready_pods(ctx, ms).await? {
        let Some(addr) =
            ctx.opts
                .pod_addresses
                .resolve(&ns, &ms.name_any(), &pod, ms.spec.server.ports.grpc)
        else {
            last = Error::DataPlane {
                addr: pod.name_any(),
                msg: "no address for the pod".into(),
            };
            continue;
        };
        match DataPlane::connect(&addr, &token, ctx.opts.call_timeout).await {
            Ok(d) => return Ok(d),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Outcome of pushing the desired state to the ready pods.
struct Push {
    ok: usize,
    errors: Vec<String>,
    changes: Vec<String>,
    min_generation: Option<u64>,
    /// Share object name -> why a pod refused it.
    rejected: BTreeMap<String, String>,
    /// Pods the identity section was (re)pushed to.
    identity_pushed: Vec<String>,
}

/// `full` restricted to `shares`: the stores they need (all local ones, and the remote
/// ones of `shares`) and the permissions of their paths.
fn restricted(full: &pb::DesiredState, shares: Vec<pb::Share>) -> pb::DesiredState {
    let mut s = full.clone();
    s.block_stores.retain(|b| {
        b.kind == pb::BlockStoreKind::Local as i32 || shares.iter().any(|x| x.remote == b.name)
    });
    if let Some(id) = s.identity.as_mut() {
        id.permissions
            .retain(|p| shares.iter().any(|x| x.name == p.share));
    }
    s.shares = shares;
    s
}

/// Applies the group's state to one pod (`force`: even when a dry run shows no change,
/// for a new identity). When the pod refuses it, finds the Shares it refuses one by one
/// (dry runs) and applies the rest: one bad Share never keeps the others from being
/// served.
async fn push_pod(
    dp: &mut DataPlane,
    plan: &GroupPlan,
    force: bool,
) -> Result<(Vec<pb::Change>, u64, Vec<(String, String)>)> {
    match dp.apply(&plan.state, force).await {
        Ok((changes, generation)) => return Ok((changes, generation, vec![])),
        Err(Error::Rejected { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut accepted = restricted(&plan.state, vec![]);
    dp.check(&accepted).await?; // the stores alone are refused: nothing can be served
    let mut rejected = Vec::new();
    for (share, object) in plan.state.shares.iter().zip(&plan.served) {
        let mut shares = accepted.shares.clone();
        shares.push(share.clone());
        let candidate = restricted(&plan.state, shares);
        match dp.check(&candidate).await {
            Ok(()) => accepted = candidate,
            Err(Error::Rejected { msg, .. }) => rejected.push((object.clone(), msg)),
            Err(e) => return Err(e),
        }
    }
    let (changes, generation) = dp.apply(&accepted, force).await?;
    Ok((changes, generation, rejected))
}

async fn push(ctx: &Ctx, ms: &MetadataStore, plan: &GroupPlan, pods: &[Pod], token: &str) -> Push {
    let ns = ms.namespace().unwrap_or_default();
    let mut out = Push {
        ok: 0,
        errors: vec![],
        changes: vec![],
        min_generation: None,
        rejected: BTreeMap::new(),
        identity_pushed: vec![],
    };
    let fingerprint = plan
        .state
        .identity
        .as_ref()
        .map(|i| ctx.identities.fingerprint(i));
    for pod in pods {
        let pod_name = pod.name_any();
        let pod_key = pod.uid().unwrap_or_else(|| pod_name.clone());
        let Some(addr) =
            ctx.opts
                .pod_addresses
                .resolve(&ns, &ms.name_any(), pod, ms.spec.server.ports.grpc)
        else {
            out.errors.push(format!(
                "{pod_name}: no address for the pod (see --pod-address)"
            ));
            continue;
        };
        let force =
            fingerprint.is_some_and(|fp| ctx.identities.needs_push(&pod_key, fp, Instant::now()));
        let result = async {
            let mut dp = DataPlane::connect(&addr, token, ctx.opts.call_timeout).await?;
            push_pod(&mut dp, plan, force).await
        }
        .await;
        match result {
            Ok((changes, generation, rejected)) => {
                out.ok += 1;
                out.min_generation =
                    Some(out.min_generation.map_or(generation, |g| g.min(generation)));
                for c in changes {
                    out.changes
                        .push(format!("{pod_name}: {} {} {}", c.kind, c.name, c.action));
                }
                out.rejected.extend(rejected);
                if let (Some(fp), true) = (fingerprint, force) {
                    ctx.identities.record(&pod_key, fp, Instant::now());
                    out.identity_pushed.push(pod_name);
                }
            }
            Err(e) => {
                ctx.identities.forget(&pod_key);
                out.errors.push(format!("{pod_name}: {e}"));
            }
        }
    }
    out
}

pub async fn reconcile(ms: Arc<MetadataStore>, ctx: Arc<Ctx>) -> Result<Action> {
    timed(&ctx, "metadatastore", reconcile_inner(&ms, &ctx)).await
}

async fn reconcile_inner(ms: &MetadataStore, ctx: &Ctx) -> Result<Action> {
    if ms.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change()); // owned objects are garbage-collected
    }
    let ns = ms.namespace().unwrap_or_default();
    let name = ms.name_any();
    let msapi = Api::<MetadataStore>::namespaced(ctx.client.clone(), &ns);
    let old = ms.status.clone().unwrap_or_default();
    let generation = ms.metadata.generation;
    let inputs = group_inputs(ctx, ms).await?;
    let plan = inputs.plan(ms);
    let n_shares = inputs
        .shares
        .iter()
        .filter(|s| s.spec.metadata_store_ref == name)
        .count();

    if ms.spec.type_ == MetadataStoreType::Postgres {
        let msg =
            "metadata store type postgres is not supported by this data plane yet".to_string();
        let conds = conditions(
            &old.conditions,
            generation,
            &[
                ("Ready", false, "MetadataTypeUnsupported", msg.clone()),
                ("Progressing", false, "MetadataTypeUnsupported", msg.clone()),
                ("Degraded", true, "MetadataTypeUnsupported", msg),
            ],
        );
        event_on_transition(ctx, ms, &old.conditions, &conds).await;
        let status = MetadataStoreStatus {
            observed_generation: generation,
            conditions: conds,
            shares: n_shares as i32,
            ..Default::default()
        };
        apply_status(&msapi, &name, &status).await?;
        return Ok(Action::requeue(Duration::from_secs(600)));
    }

    let token = control_token(ctx, ms).await?;

    // Service first: Share PVs need its ClusterIP.
    let svc_api = Api::<Service>::namespaced(ctx.client.clone(), &ns);
    let svc = apply(&svc_api, &group_name(&name), &resources::service(ms)).await?;
    let service_ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .filter(|ip| ip != "None");

    // StatefulSet (re-created, orphaning its pods, when the claim templates change).
    let sts_api = Api::<StatefulSet>::namespaced(ctx.client.clone(), &ns);
    let bs_by_name: std::collections::BTreeMap<String, &BlockStore> = inputs
        .block_stores
        .iter()
        .map(|b| (b.name_any(), b))
        .collect();
    let fs_storage = |b: &str| -> (String, Option<String>) {
        let st = bs_by_name
            .get(b)
            .and_then(|b| b.spec.local.as_ref())
            .map(|l| l.storage.clone())
            .unwrap_or_default();
        (st.size, st.storage_class_name)
    };
    let sts_doc = resources::statefulset(ms, &plan, &fs_storage, &ctx.opts.default_image);
    let want_templates = resources::claim_template_names(ms, &plan);
    if let Some(existing) = sts_api.get_opt(&group_name(&name)).await? {
        if existing.metadata.deletion_timestamp.is_some() {
            return Ok(Action::requeue(Duration::from_secs(2)));
        }
        let mut have: Vec<String> = existing
            .spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.as_ref())
            .map(|v| v.iter().map(|t| t.name_any()).collect())
            .unwrap_or_default();
        have.sort();
        if have != want_templates {
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Orphan),
                ..Default::default()
            };
            sts_api.delete(&group_name(&name), &dp).await?;
            ctx.event(ms, false, "VolumesChanged", "RecreateStatefulSet",
                format!("volume claim templates {have:?} -> {want_templates:?}: re-creating the StatefulSet (pods and claims kept)")).await;
            return Ok(Action::requeue(Duration::from_secs(2)));
        }
    }
    let sts = apply(&sts_api, &group_name(&name), &sts_doc).await?;
    let replicas = ms.spec.server.replicas.unwrap_or(1);
    let ready_replicas = sts
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);

    // Push the desired state to every ready pod.
    let pods = ready_pods(ctx, ms).await?;
    let pushed = push(ctx, ms, &plan, &pods, &token).await;
    if !pushed.changes.is_empty() {
        ctx.event(
            ms,
            false,
            "ConfigApplied",
            "ApplyConfig",
            pushed.changes.join("; "),
        )
        .await;
    }
    if let (Some(id), false) = (&plan.state.identity, pushed.identity_pushed.is_empty()) {
        let msg = format!(
            "users, groups and share permissions ({} user(s), {} group(s), {} share(s) with permissions) pushed to {}",
            id.users.len(),
            id.groups.len(),
            id.permissions.len(),
            pushed.identity_pushed.join(", ")
        );
        tracing::info!(metadatastore = %name, namespace = %ns, "{msg}");
        ctx.event(ms, false, "IdentityApplied", "ApplyConfig", msg)
            .await;
    }
    let all_pushed = pushed.errors.is_empty() && !pods.is_empty();
    let served: Vec<String> = plan
        .served
        .iter()
        .filter(|s| !pushed.rejected.contains_key(*s))
        .cloned()
        .collect();
    let applied_shares: Vec<String> = if all_pushed {
        served.clone()
    } else {
        old.applied_shares
            .iter()
            .filter(|s| served.contains(s))
            .cloned()
            .collect()
    };
    let rejected_shares: Vec<RejectedShare> = pushed
        .rejected
        .iter()
        .map(|(name, message)| RejectedShare {
            name: name.clone(),
            message: message.chars().take(1000).collect(),
        })
        .collect();
    let rejected_text = rejected_shares
        .iter()
        .map(|r| format!("{}: {}", r.name, r.message))
        .collect::<Vec<_>>()
        .join("; ");
    if !rejected_shares.is_empty() && rejected_shares != old.rejected_shares {
        ctx.event(
            ms,
            true,
            "SharesRejected",
            "ApplyConfig",
            rejected_text.clone(),
        )
        .await;
    }
    let complete = all_pushed && ready_replicas >= replicas && pods.len() as i32 >= replicas;
    let (ready_reason, ready_msg) = if complete {
        (
            "ConfigApplied",
            format!("{} pod(s) serve {} share(s)", pods.len(), served.len()),
        )
    } else if !pushed.errors.is_empty() {
        ("ConfigPushFailed", pushed.errors.join("; "))
    } else {
        (
            "PodsNotReady",
            format!("{ready_replicas}/{replicas} pods ready"),
        )
    };
    let (degraded, degraded_reason, degraded_msg) = if !pushed.errors.is_empty() {
        (true, "ConfigPushFailed", pushed.errors.join("; "))
    } else if !rejected_shares.is_empty() {
        (true, "SharesRejected", rejected_text)
    } else if let Some(e) = &plan.identity_error {
        (true, e.reason(), e.to_string())
    } else {
        (false, "AsExpected", String::new())
    };
    let conds = conditions(
        &old.conditions,
        generation,
        &[
            ("Ready", complete, ready_reason, ready_msg),
            (
                "Progressing",
                !complete,
                if complete { "Stable" } else { "RollingOut" },
                format!(
                    "{ready_replicas}/{replicas} pods ready, {} configured",
                    pushed.ok
                ),
            ),
            ("Degraded", degraded, degraded_reason, degraded_msg),
        ],
    );
    event_on_transition(ctx, ms, &old.conditions, &conds).await;
    let status = MetadataStoreStatus {
        observed_generation: generation,
        conditions: conds,
        ready_replicas,
        shares: n_shares as i32,
        applied_config_generation: pushed
            .min_generation
            .map(|g| g as i64)
            .or(old.applied_config_generation),
        service_ip,
        applied_shares,
        rejected_shares,
        token_secret: Some(token_secret_name(&name)),
    };
    if ms.status.as_ref() != Some(&status) {
        apply_status(&msapi, &name, &status).await?;
    }
    // Periodic re-push corrects drift (a pod edited by hand, a restart the watch missed).
    Ok(Action::requeue(Duration::from_secs(if complete {
        120
    } else {
        10
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(data: &[(&str, &str)], string_data: &[(&str, &str)]) -> Secret {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        Secret {
            data: Some(
                map(data)
                    .into_iter()
                    .map(|(k, v)| (k, ByteString(v.into_bytes())))
                    .collect(),
            ),
            string_data: Some(map(string_data)),
            ..Default::default()
        }
    }

    #[test]
    fn passwords_keep_their_spaces_but_not_a_trailing_newline() {
        let s = secret(
            &[("a", " two words \n"), ("b", "x\r\n"), ("empty", "\n")],
            &[("c", "from-string-data")],
        );
        assert_eq!(password_value(&s, "a").as_deref(), Some(" two words "));
        assert_eq!(password_value(&s, "b").as_deref(), Some("x"));
        assert_eq!(password_value(&s, "c").as_deref(), Some("from-string-data"));
        assert_eq!(password_value(&s, "empty"), None);
        assert_eq!(password_value(&s, "absent"), None);
        // Tokens and keys are trimmed.
        assert_eq!(secret_value(&s, "a").as_deref(), Some("two words"));
    }
}
