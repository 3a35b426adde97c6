//! The four controllers and what wakes them up:
//!
//! | controller | own kind | also triggered by |
//! |---|---|---|
//! | metadatastore | MetadataStore | its StatefulSet, Service (owned); Shares (their `metadataStoreRef`); BlockStores and Secrets (every group of the namespace); data-plane pods (label `dittofs.io/metadata-store`) |
//! | share | Share | MetadataStores (their Shares); BlockStores (Shares using them); PVs and claims labelled by the operator (annotation `dittofs.io/share`) |
//! | blockstore | BlockStore | Shares (the stores they reference) |
//! | gcjob | GCJob | Jobs and CronJobs (owned); Shares (GCJobs naming them) |
//!
//! Every controller requeues periodically as well, which corrects drift the watches miss.
//! Reconciles of different objects run concurrently; one failing object backs off alone.

use crate::context::Ctx;
use crate::crd::{BlockStore, GCJob, MetadataStore, Share};
use crate::error::Error;
use crate::names::{LABEL_METADATA_STORE, managed_selector};
use crate::{blockstore, gcjob, metadatastore, share};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Config as WatchConfig;
use kube::{Client, Resource, ResourceExt};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn error_policy<K: ResourceExt>(obj: Arc<K>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(object = %obj.name_any(), namespace = ?obj.namespace(), reason = err.reason(), "reconcile failed: {err}");
    Action::requeue(err.retry_after())
}

async fn drain<S, T, E>(name: &'static str, stream: S)
where
    S: futures::Stream<Item = Result<T, E>>,
    T: std::fmt::Debug,
    E: std::fmt::Display,
{
    stream
        .for_each(|r| async move {
            match r {
                Ok(o) => tracing::debug!(controller = name, "reconciled {o:?}"),
                Err(e) => tracing::debug!(controller = name, "{e}"),
            }
        })
        .await;
}

/// Runs the four controllers until `shutdown` is cancelled (in-flight reconciles finish).
pub async fn run(ctx: Arc<Ctx>, namespace: Option<String>, shutdown: CancellationToken) {
    let c = &ctx.client;
    let ns = namespace.as_deref();
    let managed = WatchConfig::default().labels(&managed_selector());
    let stop = |t: &CancellationToken| {
        let t = t.clone();
        async move { t.cancelled().await }
    };

    // --- MetadataStore
    let ms_ctl = Controller::new(api::<MetadataStore>(c, ns), WatchConfig::default());
    let ms_store = ms_ctl.store();
    let (s1, s2) = (ms_store.clone(), ms_store.clone());
    let all_in_ns = move |store: &kube::runtime::reflector::Store<MetadataStore>,
                          ns: Option<String>| {
        store
            .state()
            .into_iter()
            .filter(|m| m.namespace() == ns)
            .map(|m| ObjectRef::from_obj(&*m))
            .collect::<Vec<_>>()
    };
    let ms_ctl = ms_ctl
        .owns(api::<StatefulSet>(c, ns), managed.clone())
        .owns(api::<Service>(c, ns), managed.clone())
        .watches(api::<Share>(c, ns), WatchConfig::default(), |s: Share| {
            s.namespace()
                .map(|ns| ObjectRef::new(&s.spec.metadata_store_ref).within(&ns))
        })
        .watches(
            api::<BlockStore>(c, ns),
            WatchConfig::default(),
            move |b: BlockStore| all_in_ns(&s1, b.namespace()),
        )
        .watches(
            api::<Secret>(c, ns),
            WatchConfig::default(),
            move |s: Secret| all_in_ns(&s2, s.namespace()),
        )
        .watches(api::<Pod>(c, ns), managed.clone(), |p: Pod| {
            let ms = p.labels().get(LABEL_METADATA_STORE).cloned();
            ms.zip(p.namespace())
                .map(|(m, ns)| ObjectRef::new(&m).within(&ns))
        })
        .graceful_shutdown_on(stop(&shutdown))
        .run(metadatastore::reconcile, error_policy, ctx.clone());

    // --- Share
    let share_ctl = Controller::new(api::<Share>(c, ns), WatchConfig::default());
    let share_store = share_ctl.store();
    let (st1, st2) = (share_store.clone(), share_store.clone());
    let by_annotation = |meta: &kube::api::ObjectMeta| {
        meta.annotations
            .as_ref()
            .and_then(|a| a.get("dittofs.io/share"))
            .and_then(|v| v.split_once('/'))
            .map(|(ns, n)| ObjectRef::<Share>::new(n).within(ns))
    };
    let share_ctl = share_ctl
        .watches(
            api::<MetadataStore>(c, ns),
            WatchConfig::default(),
            move |m: MetadataStore| {
                st1.state()
                    .into_iter()
                    .filter(|s| {
                        s.namespace() == m.namespace() && s.spec.metadata_store_ref == m.name_any()
                    })
                    .map(|s| ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            api::<BlockStore>(c, ns),
            WatchConfig::default(),
            move |b: BlockStore| {
                let name = b.name_any();
                st2.state()
                    .into_iter()
                    .filter(|s| {
                        s.namespace() == b.namespace()
                            && (s.spec.local_block_store_ref == name
                                || s.spec.remote_block_store_ref.as_deref() == Some(&name))
                    })
                    .map(|s| ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            Api::<PersistentVolume>::all(c.clone()),
            managed.clone(),
            move |pv: PersistentVolume| by_annotation(&pv.metadata),
        )
        .watches(
            Api::<PersistentVolumeClaim>::all(c.clone()),
            managed.clone(),
            move |pvc: PersistentVolumeClaim| by_annotation(&pvc.metadata),
        )
        .graceful_shutdown_on(stop(&shutdown))
        .run(share::reconcile, error_policy, ctx.clone());

    // --- BlockStore
    let bs_ctl = Controller::new(api::<BlockStore>(c, ns), WatchConfig::default())
        .watches(api::<Share>(c, ns), WatchConfig::default(), |s: Share| {
            let ns = s.namespace().unwrap_or_default();
            let mut v = vec![ObjectRef::new(&s.spec.local_block_store_ref).within(&ns)];
            if let Some(r) = &s.spec.remote_block_store_ref {
                v.push(ObjectRef::new(r).within(&ns));
            }
            v
        })
        .graceful_shutdown_on(stop(&shutdown))
        .run(blockstore::reconcile, error_policy, ctx.clone());

    // --- GCJob
    let gc_ctl = Controller::new(api::<GCJob>(c, ns), WatchConfig::default());
    let gc_store = gc_ctl.store();
    let gc_ctl = gc_ctl
        .watches(
            api::<Share>(c, ns),
            WatchConfig::default(),
            move |s: Share| {
                gc_store
                    .state()
                    .into_iter()
                    .filter(|g| g.namespace() == s.namespace() && g.spec.share_ref == s.name_any())
                    .map(|g| ObjectRef::from_obj(&*g))
                    .collect::<Vec<_>>()
            },
        )
        .owns(api::<Job>(c, ns), managed.clone())
        .owns(api::<CronJob>(c, ns), managed)
        .graceful_shutdown_on(stop(&shutdown))
        .run(gcjob::reconcile, error_policy, ctx.clone());

    tokio::join!(
        drain("metadatastore", ms_ctl),
        drain("share", share_ctl),
        drain("blockstore", bs_ctl),
        drain("gcjob", gc_ctl),
    );
}
