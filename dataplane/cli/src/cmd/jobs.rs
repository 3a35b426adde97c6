//! Long-running jobs: block GC (`store block gc`, `store block gc-status`) and the
//! refcount audit (`blockstore audit-refcounts`).
//!
//! A job is started, then followed with WatchJob (falling back to polling GetJob if the
//! stream ends before the job does). While following, a progress bar or spinner with
//! the phase and done/total is drawn on stderr when stderr is a terminal and the output
//! is text. Following has no overall deadline; Ctrl-C stops following (exit 130) and
//! leaves the job running on the server.

use super::Ctx;
use crate::cli::{BlockstoreCommand, GcArgs, OutputFormat};
use crate::client::Conn;
use crate::error::CliError;
use crate::output::{AuditView, GcSummaryView, audit_text, emit, gc_summary_text};
use dittofs_proto::v1 as pb;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// `store block gc`: RunGc, follow, print the summary.
pub(super) async fn gc(ctx: &mut Ctx, a: GcArgs) -> Result<(), CliError> {
    let req = pb::RunGcRequest {
        share: a.share.clone(),
        dry_run: a.dry_run,
        grace_seconds: grace_to_api(a.grace),
    };
    let show_progress = progress_wanted(ctx.format());
    let conn = ctx.conn().await?;
    let job = conn
        .call(req, |mut c, r| async move { c.run_gc(r).await })
        .await?;
    let job = follow(conn, job, show_progress).await?;
    let Some(pb::job::Result::Gc(summary)) = job.result else {
        return Err(CliError::Failed(format!(
            "GC job {} ended without a run summary",
            job.id
        )));
    };
    emit(
        ctx.format(),
        &GcSummaryView::from(&summary),
        gc_summary_text,
    )?;
    if summary.outcome.starts_with("failed") {
        return Err(CliError::Failed(format!(
            "GC run {} on store {:?} {}",
            summary.run_id, summary.store, summary.outcome
        )));
    }
    Ok(())
}

/// `store block gc-status`: the last persisted run.
pub(super) async fn gc_status(ctx: &mut Ctx, share: String) -> Result<(), CliError> {
    let summary = ctx
        .conn()
        .await?
        .call(pb::GcStatusRequest { share }, |mut c, r| async move {
            c.gc_status(r).await
        })
        .await?;
    emit(
        ctx.format(),
        &GcSummaryView::from(&summary),
        gc_summary_text,
    )
}

/// `blockstore audit-refcounts`: run (and follow) an audit or show the last one; drift
/// is exit code 8.
pub(super) async fn blockstore(ctx: &mut Ctx, cmd: BlockstoreCommand) -> Result<(), CliError> {
    let BlockstoreCommand::AuditRefcounts {
        share,
        last,
        verify,
    } = cmd;
    let show_progress = progress_wanted(ctx.format());
    let conn = ctx.conn().await?;
    let report = if last {
        conn.call(pb::LastAuditRequest { share }, |mut c, r| async move {
            c.last_audit(r).await
        })
        .await?
    } else {
        let job = conn
            .call(
                pb::RunAuditRequest { share, verify },
                |mut c, r| async move { c.run_audit(r).await },
            )
            .await?;
        let job = follow(conn, job, show_progress).await?;
        match job.result {
            Some(pb::job::Result::Audit(report)) => report,
            _ => {
                return Err(CliError::Failed(format!(
                    "audit job {} ended without a report",
                    job.id
                )));
            }
        }
    };
    let view = AuditView::from(&report);
    emit(ctx.format(), &view, audit_text)?;
    drift_check(&view)
}

/// Exit 8 (with a message on stderr) when the audit found drift.
fn drift_check(view: &AuditView) -> Result<(), CliError> {
    if view.clean {
        return Ok(());
    }
    if view.missing_count > 0 {
        return Err(CliError::Drift(format!(
            "share {:?}: {} referenced chunks are on no tier: the files listed cannot be \
             read in full (refcount delta {}, {} dangling entries)",
            view.share, view.missing_count, view.delta, view.dangling_count
        )));
    }
    Err(CliError::Drift(format!(
        "refcount drift in share {:?}: delta {}, {} dangling entries",
        view.share, view.delta, view.dangling_count
    )))
}

/// `--grace` to `RunGcRequest.grace_seconds`: absent = the server's default.
fn grace_to_api(grace: Option<u64>) -> Option<u64> {
    grace
}

fn progress_wanted(format: OutputFormat) -> bool {
    format == OutputFormat::Text && std::io::stderr().is_terminal()
}

fn is_final(job: &pb::Job) -> bool {
    matches!(
        pb::JobState::try_from(job.state),
        Ok(pb::JobState::Succeeded | pb::JobState::Failed)
    )
}

/// Follows `job` until it ends; a FAILED job is an error carrying the job's message.
async fn follow(conn: &Conn, job: pb::Job, show_progress: bool) -> Result<pb::Job, CliError> {
    let progress = show_progress.then(|| Progress::new(&job));
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling available: never interrupt.
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        r = watch(conn, job.clone(), progress.as_ref()) => r,
        () = interrupted => Err(CliError::Interrupted(format!(
            "interrupted; {} job {} keeps running on the server",
            job.kind, job.id
        ))),
    };
    if let Some(p) = progress {
        p.finish();
    }
    let job = result?;
    if pb::JobState::try_from(job.state) == Ok(pb::JobState::Failed) {
        let error = if job.error.is_empty() {
            "no reason given"
        } else {
            job.error.as_str()
        };
        return Err(CliError::Failed(format!(
            "{} job {} on share {:?} failed: {error}",
            job.kind, job.id, job.share
        )));
    }
    Ok(job)
}

async fn watch(
    conn: &Conn,
    job: pb::Job,
    progress: Option<&Progress>,
) -> Result<pb::Job, CliError> {
    if is_final(&job) {
        return Ok(job);
    }
    let id = job.id.clone();
    let mut stream = conn
        .stream(
            pb::GetJobRequest { id: id.clone() },
            |mut c, r| async move { c.watch_job(r).await },
        )
        .await?;
    loop {
        match stream.message().await {
            Ok(Some(j)) => {
                if let Some(p) = progress {
                    p.update(&j);
                }
                if is_final(&j) {
                    return Ok(j);
                }
            }
            Ok(None) => break,
            Err(status) => return Err(conn.status_error(status)),
        }
    }
    // The stream ended before the job did: poll.
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let j = conn
            .call(
                pb::GetJobRequest { id: id.clone() },
                |mut c, r| async move { c.get_job(r).await },
            )
            .await?;
        if let Some(p) = progress {
            p.update(&j);
        }
        if is_final(&j) {
            return Ok(j);
        }
    }
}

/// The stderr progress display: a spinner while the total is unknown, a bar otherwise.
struct Progress {
    bar: ProgressBar,
    bounded: std::cell::Cell<bool>,
}

impl Progress {
    fn new(job: &pb::Job) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(Self::spinner_style());
        bar.enable_steady_tick(Duration::from_millis(120));
        let p = Progress {
            bar,
            bounded: std::cell::Cell::new(false),
        };
        p.update(job);
        p
    }

    fn spinner_style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {msg}: {pos} done ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    fn bar_style() -> ProgressStyle {
        ProgressStyle::with_template(
            "{spinner} {msg}: [{bar:30}] {pos}/{len} ({percent}%, {elapsed})",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    fn update(&self, job: &pb::Job) {
        let phase = if job.phase.is_empty() {
            "starting"
        } else {
            job.phase.as_str()
        };
        self.bar
            .set_message(format!("{} {}: {phase}", job.kind, job.share));
        if job.total > 0 {
            if !self.bounded.get() {
                self.bar.set_style(Self::bar_style());
                self.bounded.set(true);
            }
            self.bar.set_length(job.total);
        } else if self.bounded.get() {
            self.bar.set_style(Self::spinner_style());
            self.bounded.set(false);
        }
        self.bar.set_position(job.done);
    }

    fn finish(self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_means_exit_8() {
        let mut report = pb::AuditReport {
            share: "/a".into(),
            ..Default::default()
        };
        assert!(drift_check(&AuditView::from(&report)).is_ok());
        report.delta = 2;
        let e = drift_check(&AuditView::from(&report)).unwrap_err();
        assert_eq!(e.exit_code(), 8);
        report.delta = 0;
        report.dangling_count = 1;
        let e = drift_check(&AuditView::from(&report)).unwrap_err();
        assert_eq!(e.exit_code(), 8);
        assert!(e.to_string().contains("1 dangling"), "{e}");
    }

    #[test]
    fn progress_display_switches_between_spinner_and_bar() {
        // Not a terminal under test: indicatif draws nothing, but every path runs.
        let mut j = pb::Job {
            kind: "gc".into(),
            share: "/a".into(),
            ..Default::default()
        };
        let p = Progress::new(&j);
        assert!(!p.bounded.get());
        j.phase = "sweep".into();
        j.done = 3;
        j.total = 10;
        p.update(&j);
        assert!(p.bounded.get());
        assert_eq!(p.bar.length(), Some(10));
        assert_eq!(p.bar.position(), 3);
        j.total = 0;
        p.update(&j);
        assert!(!p.bounded.get());
        p.finish();
    }

    #[test]
    fn grace_mapping() {
        assert_eq!(grace_to_api(None), None);
        assert_eq!(grace_to_api(Some(0)), Some(0));
        assert_eq!(grace_to_api(Some(1800)), Some(1800));
    }

    #[test]
    fn final_states() {
        let mut j = pb::Job::default();
        assert!(!is_final(&j));
        j.state = pb::JobState::Running as i32;
        assert!(!is_final(&j));
        j.state = pb::JobState::Succeeded as i32;
        assert!(is_final(&j));
        j.state = pb::JobState::Failed as i32;
        assert!(is_final(&j));
    }
}
