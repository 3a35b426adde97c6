//! GCJob -> a Job (one-shot, one per spec generation) or a CronJob (`schedule`) that runs
//! `dfsctl` against the server group of the Share's MetadataStore with the group's control
//! token; the result of the run (the data plane's last GC summary or audit report of the
//! share) is read back over the control API and recorded in `status.lastRun`.
//!
//! Invariant: a result is attributed to a run only if the data plane says it started at or
//! after that run's Job started, so an older result is never shown as this run's.

use crate::context::{Ctx, Verdict, apply, apply_status, event_on_transition, timed};
use crate::crd::{GCJob, GCJobStatus, GcOperation, GcRunResult, MetadataStore, Share};
use crate::error::{Error, Result};
use crate::metadatastore::connect_any;
use crate::names::*;
use crate::resources;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::Action;
use std::sync::Arc;
use std::time::Duration;

/// How long a finished one-shot Job may wait for its result to show up on the data plane.
const RESULT_WAIT: i64 = 600;

pub async fn reconcile(gc: Arc<GCJob>, ctx: Arc<Ctx>) -> Result<Action> {
    timed(&ctx, "gcjob", reconcile_inner(&gc, &ctx)).await
}

fn unix(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

/// RFC 3339 time `duration_ms` after unix second `start`.
fn finished_at(start: i64, duration_ms: u64) -> String {
    chrono::DateTime::from_timestamp(start + (duration_ms / 1000) as i64, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The next time `schedule` fires after now (UTC, as the CronJob is in Etc/UTC).
pub fn next_run(schedule: &str) -> Option<String> {
    let cron: croner::Cron = schedule.parse().ok()?;
    cron.find_next_occurrence(&chrono::Utc::now(), false)
        .ok()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The data plane's latest result for the GCJob's operation on `share_path`, if it started
/// at or after `since` (unix seconds).
async fn fetch_result(
    ctx: &Ctx,
    gc: &GCJob,
    ms: &MetadataStore,
    share_path: &str,
    since: i64,
) -> Result<Option<GcRunResult>> {
    let mut dp = connect_any(ctx, ms).await?;
    Ok(match gc.spec.operation {
        GcOperation::Gc => dp.gc_status(share_path).await?.and_then(|s| {
            let start = unix(&s.started_at)?;
            (start >= since).then(|| {
                let ok = s.outcome == "succeeded";
                GcRunResult {
                    started_at: s.started_at.clone(),
                    finished_at: finished_at(start, s.duration_ms),
                    result: if ok { "Succeeded" } else { "Failed" }.into(),
                    bytes_freed: s.deleted_bytes as i64,
                    objects_swept: s.deleted_chunks as i64,
                    audit_delta: None,
                    message: format!(
                        "{}store {}: {} live, {} scanned, {} deleted, {} kept in grace, {} errors ({})",
                        if s.dry_run { "dry run, " } else { "" },
                        s.store, s.live_chunks, s.scanned_chunks, s.deleted_chunks, s.kept_in_grace, s.errors, s.outcome
                    ),
                }
            })
        }),
        GcOperation::Audit => dp.last_audit(share_path).await?.and_then(|a| {
            let start = unix(&a.started_at)?;
            (start >= since).then(|| {
                let clean = a.delta == 0 && a.dangling_count == 0;
                GcRunResult {
                    started_at: a.started_at.clone(),
                    finished_at: finished_at(start, a.duration_ms),
                    result: if clean { "Succeeded" } else { "Failed" }.into(),
                    bytes_freed: 0,
                    objects_swept: 0,
                    audit_delta: Some(a.delta),
                    message: format!(
                        "{} files, {} refs, refcount total {}, delta {}, {} dangling",
                        a.total_files, a.total_refs, a.total_refcount, a.delta, a.dangling_count
                    ),
                }
            })
        }),
        GcOperation::Migrate => None,
    })
}

fn job_state(job: &Job) -> (&'static str, Option<i64>) {
    let st = job.status.clone().unwrap_or_default();
    let cond = |t: &str| {
        st.conditions
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c.type_ == t && c.status == "True"))
    };
    let start = st.start_time.as_ref().map(|t| t.0.as_second()).or_else(|| {
        job.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
    });
    let state = if cond("Complete") || st.succeeded.unwrap_or(0) > 0 {
        "Succeeded"
    } else if cond("Failed") {
        "Failed"
    } else {
        "Running"
    };
    (state, start)
}

async fn reconcile_inner(gc: &GCJob, ctx: &Ctx) -> Result<Action> {
    if gc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change()); // the Job/CronJob is owned: garbage-collected
    }
    let ns = gc.namespace().unwrap_or_default();
    let name = gc.name_any();
    let api = Api::<GCJob>::namespaced(ctx.client.clone(), &ns);
    let old = gc.status.clone().unwrap_or_default();
    let generation = gc.metadata.generation;
    let mut status = GCJobStatus {
        observed_generation: generation,
        last_run: old.last_run.clone(),
        ..Default::default()
    };
    let mut requeue = Duration::from_secs(300);

    let verdict: Verdict = 'v: {
        let Some(share) = Api::<Share>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&gc.spec.share_ref)
            .await?
        else {
            break 'v Verdict::degraded(
                "ShareNotFound",
                format!("Share {} does not exist", gc.spec.share_ref),
            );
        };
        let Some(ms) = Api::<MetadataStore>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&share.spec.metadata_store_ref)
            .await?
        else {
            break 'v Verdict::degraded(
                "MetadataStoreNotFound",
                format!(
                    "MetadataStore {} does not exist",
                    share.spec.metadata_store_ref
                ),
            );
        };
        let doc = match resources::gc_workload(gc, &ms, &share.spec.path, &ctx.opts.default_image) {
            Ok(d) => d,
            Err(e) => break 'v Verdict::degraded("OperationNotSupported", e.to_string()),
        };
        let cron_api = Api::<CronJob>::namespaced(ctx.client.clone(), &ns);
        let job_api = Api::<Job>::namespaced(ctx.client.clone(), &ns);
        let path = share.spec.path.clone();
        match &gc.spec.schedule {
            Some(schedule) => {
                let cj = apply(&cron_api, &name, &doc).await?;
                status.next_run = next_run(schedule);
                let last = cj
                    .status
                    .as_ref()
                    .and_then(|s| s.last_schedule_time.as_ref())
                    .map(|t| t.0.as_second());
                if let Some(since) = last {
                    let recorded = old
                        .last_run
                        .as_ref()
                        .and_then(|r| unix(&r.started_at))
                        .unwrap_or(i64::MIN);
                    match fetch_result(ctx, gc, &ms, &path, since).await {
                        Ok(Some(r))
                            if unix(&r.started_at).unwrap_or(0) > recorded
                                || old.last_run.is_none() =>
                        {
                            ctx.event(
                                gc,
                                r.result != "Succeeded",
                                if r.result == "Succeeded" {
                                    "RunSucceeded"
                                } else {
                                    "RunFailed"
                                },
                                "RecordResult",
                                r.message.clone(),
                            )
                            .await;
                            status.last_run = Some(r);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(gcjob = %name, "no result yet: {e}"),
                    }
                }
                // Wake up shortly after the next run to collect its result.
                if let Some(next) = status.next_run.as_deref().and_then(unix) {
                    let secs = (next - chrono::Utc::now().timestamp()).clamp(0, 600) + 30;
                    requeue = Duration::from_secs(secs as u64);
                }
                break 'v Verdict::ready("Scheduled", format!("CronJob {name}: {schedule} (UTC)"));
            }
            None => {
                // Switched from scheduled to one-shot: the CronJob goes.
                if cron_api.get_opt(&name).await?.is_some() {
                    cron_api.delete(&name, &DeleteParams::background()).await?;
                }
                let job_name = oneshot_job_name(&name, generation.unwrap_or(1));
                let job = apply(&job_api, &job_name, &doc).await?;
                let (state, start) = job_state(&job);
                let since = start.unwrap_or(i64::MAX);
                let already = old
                    .last_run
                    .as_ref()
                    .and_then(|r| unix(&r.started_at))
                    .is_some_and(|t| t >= since);
                match state {
                    "Running" => {
                        requeue = Duration::from_secs(10);
                        break 'v Verdict::progressing(
                            "Running",
                            format!("Job {job_name} is running"),
                        );
                    }
                    _ if already => {
                        let r = status.last_run.clone().unwrap_or_default();
                        let ok = state == "Succeeded" && r.result == "Succeeded";
                        break 'v Verdict::outcome(
                            ok,
                            if ok { "Completed" } else { "RunFailed" },
                            r.message,
                        );
                    }
                    _ => match fetch_result(ctx, gc, &ms, &path, since).await {
                        Ok(Some(r)) => {
                            let ok = state == "Succeeded" && r.result == "Succeeded";
                            ctx.event(
                                gc,
                                !ok,
                                if ok { "RunSucceeded" } else { "RunFailed" },
                                "RecordResult",
                                r.message.clone(),
                            )
                            .await;
                            let msg = r.message.clone();
                            status.last_run = Some(r);
                            break 'v Verdict::outcome(
                                ok,
                                if ok { "Completed" } else { "RunFailed" },
                                msg,
                            );
                        }
                        other => {
                            let waited = chrono::Utc::now().timestamp() - since;
                            if waited > RESULT_WAIT {
                                let why = match other {
                                    Err(e) => e.to_string(),
                                    _ => "the data plane has no result of this run".into(),
                                };
                                break 'v Verdict::degraded(
                                    if state == "Failed" {
                                        "JobFailed"
                                    } else {
                                        "NoResult"
                                    },
                                    format!("Job {job_name} {state}: {why}"),
                                );
                            }
                            requeue = Duration::from_secs(10);
                            break 'v Verdict::progressing(
                                "WaitingForResult",
                                format!(
                                    "Job {job_name} {state}; waiting for the data plane's result"
                                ),
                            );
                        }
                    },
                }
            }
        }
    };
    status.conditions = verdict.conditions(&old.conditions, generation);
    event_on_transition(ctx, gc, &old.conditions, &status.conditions).await;
    if gc.status.as_ref() != Some(&status) {
        apply_status(&api, &name, &status).await?;
    }
    if verdict.degraded_now() && verdict.reason.ends_with("NotFound") {
        requeue = Error::MissingRef(String::new()).retry_after();
    }
    Ok(Action::requeue(requeue))
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_run_parses_cron() {
        let n = super::next_run("0 3 * * *").unwrap();
        assert!(n.ends_with("T03:00:00Z"), "{n}");
        assert!(super::next_run("@daily").is_some());
        assert!(super::next_run("not a cron").is_none());
    }
}
