//! Shared state of the controllers: the Kubernetes client, the event recorder, options,
//! metrics, and helpers for conditions and Events.

use crate::crd::Condition;
use crate::dataplane::PodAddresses;
use crate::identity::PushedIdentities;
use crate::names::{MANAGER, now_rfc3339};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;

/// Operator settings (from the command line).
#[derive(Clone, Debug)]
pub struct Options {
    /// Data-plane image for MetadataStores that name none.
    pub default_image: String,
    /// Deadline of every call to a data-plane pod.
    pub call_timeout: Duration,
    pub pod_addresses: PodAddresses,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: String,
}

/// Prometheus metrics of the reconcilers.
pub struct Metrics {
    pub reconciles: Family<ControllerLabel, Counter>,
    pub errors: Family<ControllerLabel, Counter>,
    pub duration: Family<ControllerLabel, Histogram>,
    pub registry: Registry,
}

impl Metrics {
    pub fn new() -> Self {
        let reconciles = Family::<ControllerLabel, Counter>::default();
        let errors = Family::<ControllerLabel, Counter>::default();
        let duration = Family::<ControllerLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let mut registry = Registry::with_prefix("dittofs_operator");
        registry.register("reconciles", "Reconciliations run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            duration.clone(),
        );
        Metrics {
            reconciles,
            errors,
            duration,
            registry,
        }
    }

    /// Records one reconcile of `controller`.
    pub fn observe(&self, controller: &str, seconds: f64, failed: bool) {
        let l = ControllerLabel {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&l).inc();
        self.duration.get_or_create(&l).observe(seconds);
        if failed {
            self.errors.get_or_create(&l).inc();
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub struct Ctx {
    pub client: Client,
    pub recorder: Recorder,
    pub opts: Options,
    pub metrics: Metrics,
    /// The identity sections last pushed to each pod (salted digests, in memory only).
    pub identities: PushedIdentities,
}

impl Ctx {
    pub fn new(client: Client, opts: Options) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Ctx {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            opts,
            metrics: Metrics::new(),
            identities: PushedIdentities::new(rand::random()),
        }
    }

    /// Publishes an Event on `obj` (failures are logged: an Event is never worth a retry).
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(object = %obj.name_any(), reason, "cannot publish event: {e}");
        }
    }
}

/// Server-side apply of `doc` with our field manager, forcing ownership of its fields.
pub async fn apply<K>(api: &Api<K>, name: &str, doc: &serde_json::Value) -> kube::Result<K>
where
    K: Clone + DeserializeOwned + Debug,
{
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(doc),
    )
    .await
}

/// Server-side apply of the status subresource.
pub async fn apply_status<K, S>(api: &Api<K>, name: &str, status: &S) -> kube::Result<K>
where
    K: Clone + DeserializeOwned + Debug + Resource<DynamicType = ()>,
    S: Serialize,
{
    let doc = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&doc),
    )
    .await
}

/// Builds the condition list: the new conditions, keeping each one's transition time when
/// its status did not change.
pub fn conditions(
    old: &[Condition],
    generation: Option<i64>,
    new: &[(&str, bool, &str, String)],
) -> Vec<Condition> {
    new.iter()
        .map(|(t, ok, reason, msg)| {
            let status = if *ok { "True" } else { "False" };
            let since = old
                .iter()
                .find(|c| c.type_ == *t && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(now_rfc3339);
            Condition {
                type_: (*t).to_string(),
                status: status.into(),
                reason: (*reason).to_string(),
                message: msg.clone(),
                last_transition_time: since,
                observed_generation: generation,
            }
        })
        .collect()
}

/// The outcome of one reconcile as the three standard conditions: exactly one of ready,
/// progressing (waiting for something that will come) or degraded (needs a change by
/// someone), with one CamelCase reason and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ready: bool,
    pub progressing: bool,
    pub reason: String,
    pub message: String,
}

impl Verdict {
    pub fn ready(reason: &str, message: impl Into<String>) -> Self {
        Verdict {
            ready: true,
            progressing: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn progressing(reason: &str, message: impl Into<String>) -> Self {
        Verdict {
            ready: false,
            progressing: true,
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn degraded(reason: &str, message: impl Into<String>) -> Self {
        Verdict {
            ready: false,
            progressing: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
    /// Ready when `ok`, else degraded, with the same reason/message.
    pub fn outcome(ok: bool, reason: &str, message: impl Into<String>) -> Self {
        if ok {
            Self::ready(reason, message)
        } else {
            Self::degraded(reason, message)
        }
    }
    pub fn degraded_now(&self) -> bool {
        !self.ready && !self.progressing
    }
    /// Ready / Progressing / Degraded, transition times kept from `old`.
    pub fn conditions(&self, old: &[Condition], generation: Option<i64>) -> Vec<Condition> {
        let deg = self.degraded_now();
        let quiet = |on: bool| if on { self.reason.as_str() } else { "" };
        conditions(
            old,
            generation,
            &[
                ("Ready", self.ready, &self.reason, self.message.clone()),
                (
                    "Progressing",
                    self.progressing,
                    if self.progressing {
                        quiet(true)
                    } else {
                        "Stable"
                    },
                    if self.progressing {
                        self.message.clone()
                    } else {
                        String::new()
                    },
                ),
                (
                    "Degraded",
                    deg,
                    if deg { quiet(true) } else { "AsExpected" },
                    if deg {
                        self.message.clone()
                    } else {
                        String::new()
                    },
                ),
            ],
        )
    }
}

/// Runs one reconcile of `controller` and records it in the metrics.
pub async fn timed<T, E>(
    ctx: &Ctx,
    controller: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let r = fut.await;
    ctx.metrics
        .observe(controller, started.elapsed().as_secs_f64(), r.is_err());
    r
}

/// The (status, reason) of the Ready condition in `conds`, if any.
pub fn ready_of(conds: &[Condition]) -> Option<(String, String)> {
    conds
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Publishes an Event when the Ready condition changed between `old` and `new`.
pub async fn event_on_transition<K: Resource<DynamicType = ()>>(
    ctx: &Ctx,
    obj: &K,
    old: &[Condition],
    new: &[Condition],
) {
    let (Some(n), o) = (ready_of(new), ready_of(old)) else {
        return;
    };
    if o.as_ref() == Some(&n) {
        return;
    }
    let msg = new
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    ctx.event(obj, n.0 != "True", &n.1, "Reconcile", msg).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let first = conditions(&[], Some(1), &[("Ready", false, "Waiting", "x".into())]);
        let mut old = first.clone();
        old[0].last_transition_time = "2020-01-01T00:00:00Z".into();
        let same = conditions(
            &old,
            Some(2),
            &[("Ready", false, "StillWaiting", "y".into())],
        );
        assert_eq!(same[0].last_transition_time, "2020-01-01T00:00:00Z");
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = conditions(&old, Some(2), &[("Ready", true, "Ok", String::new())]);
        assert_ne!(flipped[0].last_transition_time, "2020-01-01T00:00:00Z");
        assert_eq!(ready_of(&flipped), Some(("True".into(), "Ok".into())));
    }
}
