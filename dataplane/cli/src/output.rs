//! Rendering of results: `text` (aligned tables and key/value lines, human-readable
//! sizes) or `json` / `yaml` (serde view structs with exact numbers; prost types do not
//! derive serde). Lists are JSON arrays, single objects JSON objects.
//!
//! View structs for stores and shares live in `spec` (they double as the config-file
//! schema); the rest are here, each with a `from` the API type and a text renderer.

use crate::cli::OutputFormat;
use crate::error::CliError;
use crate::parse::{
    format_chunking, format_duration_secs, format_octal_mode, format_unix, human_size,
};
use crate::spec::{BlockStoreSpec, KindSpec, MetadataStoreSpec, ShareSpec};
use dittofs_proto::v1 as pb;
use serde::Serialize;
use std::io::Write;

/// Renders `value` as JSON or YAML, or calls `text` for the text format.
pub(crate) fn render<T: Serialize>(
    format: OutputFormat,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<String, CliError> {
    match format {
        OutputFormat::Text => Ok(text(value)),
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| CliError::Failed(format!("cannot encode JSON: {e}"))),
        OutputFormat::Yaml => serde_yaml::to_string(value)
            .map_err(|e| CliError::Failed(format!("cannot encode YAML: {e}"))),
    }
}

/// Writes to stdout; a closed pipe (`dfsctl ... | head`) is not an error.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let r = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Failed(format!("cannot write output: {e}")))
        }
        _ => Ok(()),
    }
}

/// `render` + `print`.
pub(crate) fn emit<T: Serialize>(
    format: OutputFormat,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<(), CliError> {
    print(&render(format, value, text)?)
}

/// A text table: upper-case headers, columns padded to their widest cell, two spaces apart.
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&str]) -> Self {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; cols];
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, c) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(c);
                } else {
                    let w = widths.get(i).copied().unwrap_or(0);
                    line.push_str(&format!("{c:<w$}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Key/value lines with the values aligned.
pub(crate) fn kv(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let key = format!("{k}:");
        out.push_str(format!("{key:<w$}  {v}").trim_end());
        out.push('\n');
    }
    out
}

fn dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

fn list_or_dash(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

// ----------------------------------------------------------------- stores

pub(crate) fn metadata_stores_text(stores: &[MetadataStoreSpec]) -> String {
    if stores.is_empty() {
        return "no metadata stores\n".into();
    }
    let mut t = Table::new(&["NAME", "TYPE", "PATH"]);
    for s in stores {
        let path = if s.path.is_empty() {
            "(default)".into()
        } else {
            s.path.clone()
        };
        t.row(vec![s.name.clone(), s.store_type.clone(), path]);
    }
    t.render()
}

/// Where a block store keeps its data, in one cell.
fn block_location(s: &BlockStoreSpec) -> String {
    match (&s.kind, &s.s3) {
        (KindSpec::Remote, Some(s3)) => {
            let mut loc = format!("s3://{}", s3.bucket);
            if !s3.prefix.is_empty() {
                loc.push('/');
                loc.push_str(s3.prefix.trim_start_matches('/'));
            }
            let mut extra = Vec::new();
            if !s3.region.is_empty() {
                extra.push(s3.region.clone());
            }
            if !s3.endpoint.is_empty() {
                extra.push(s3.endpoint.clone());
            }
            if s3.force_path_style {
                extra.push("path-style".into());
            }
            if !extra.is_empty() {
                loc.push_str(&format!(" ({})", extra.join(", ")));
            }
            loc
        }
        _ if s.path.is_empty() => "(default)".into(),
        _ => s.path.clone(),
    }
}

pub(crate) fn block_stores_text(stores: &[BlockStoreSpec]) -> String {
    if stores.is_empty() {
        return "no block stores\n".into();
    }
    let mut t = Table::new(&["NAME", "KIND", "TYPE", "LOCATION"]);
    for s in stores {
        t.row(vec![
            s.name.clone(),
            s.kind.as_str().into(),
            s.store_type.clone(),
            block_location(s),
        ]);
    }
    t.render()
}

// ----------------------------------------------------------------- shares

pub(crate) fn share_text(s: &ShareSpec) -> String {
    let chunking = s
        .chunking
        .map(|c| {
            format_chunking(&pb::Chunking {
                min: c.min,
                avg: c.avg,
                max: c.max,
            })
        })
        .unwrap_or_else(|| "(server default)".into());
    let mut pairs = vec![
        ("name", s.name.clone()),
        ("metadata", s.metadata.clone()),
        ("local", s.local.clone()),
        ("remote", dash(&s.remote)),
        ("read_only", s.read_only.to_string()),
        ("squash", s.squash.clone()),
        ("anon_uid", s.anon_uid.to_string()),
        ("anon_gid", s.anon_gid.to_string()),
        ("allowed_clients", list_or_dash(&s.allowed_clients)),
        ("secure", s.secure.to_string()),
        ("root_mode", format_octal_mode(s.root_mode)),
        ("chunking", chunking),
    ];
    match &s.trash {
        Some(t) if t.enabled => {
            pairs.push(("trash", "enabled".into()));
            pairs.push((
                "trash_retention",
                if t.retention_days == 0 {
                    "forever".into()
                } else {
                    format!("{} days", t.retention_days)
                },
            ));
            pairs.push((
                "trash_max_size",
                if t.max_size_bytes == 0 {
                    "unbounded".into()
                } else {
                    human_size(t.max_size_bytes)
                },
            ));
            pairs.push(("trash_exclude", list_or_dash(&t.exclude)));
        }
        _ => pairs.push(("trash", "disabled".into())),
    }
    kv(&pairs)
}

pub(crate) fn shares_text(shares: &[ShareSpec]) -> String {
    if shares.is_empty() {
        return "no shares\n".into();
    }
    let mut t = Table::new(&[
        "NAME", "METADATA", "LOCAL", "REMOTE", "RO", "SQUASH", "TRASH", "CLIENTS",
    ]);
    for s in shares {
        let trash = s.trash.as_ref().is_some_and(|t| t.enabled);
        t.row(vec![
            s.name.clone(),
            s.metadata.clone(),
            s.local.clone(),
            dash(&s.remote),
            yes_no(s.read_only),
            s.squash.clone(),
            yes_no(trash),
            list_or_dash(&s.allowed_clients),
        ]);
    }
    t.render()
}

// ----------------------------------------------------------------- removal

/// The result of a remove command.
#[derive(Debug, Serialize)]
pub(crate) struct RemovedView {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) removed: bool,
    pub(crate) applied_generation: u64,
}

pub(crate) fn removed_text(v: &RemovedView) -> String {
    format!(
        "{} {:?} removed (generation {})\n",
        v.kind, v.name, v.applied_generation
    )
}

// ----------------------------------------------------------------- status

fn health(h: i32) -> String {
    match pb::Health::try_from(h) {
        Ok(pb::Health::Ok) => "ok",
        Ok(pb::Health::Degraded) => "degraded",
        Ok(pb::Health::Failed) => "failed",
        _ => "unknown",
    }
    .into()
}

#[derive(Debug, Serialize)]
pub(crate) struct StatusView {
    pub(crate) version: String,
    pub(crate) applied_generation: u64,
    pub(crate) data_dir: String,
    pub(crate) started_at: String,
    pub(crate) started_at_unix: u64,
    pub(crate) shares: Vec<ShareStatusView>,
    pub(crate) stores: Vec<StoreStatusView>,
    pub(crate) adapters: Vec<AdapterStatusView>,
    pub(crate) clients: Vec<ClientView>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ShareStatusView {
    pub(crate) name: String,
    pub(crate) share_id: u32,
    pub(crate) health: String,
    pub(crate) message: String,
    pub(crate) metadata: String,
    pub(crate) local: String,
    pub(crate) remote: String,
    pub(crate) read_only: bool,
    pub(crate) trash_enabled: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct StoreStatusView {
    pub(crate) name: String,
    pub(crate) kind: String,
    #[serde(rename = "type")]
    pub(crate) store_type: String,
    pub(crate) health: String,
    pub(crate) message: String,
    pub(crate) used_by: Vec<String>,
    pub(crate) bytes_used: u64,
    pub(crate) bytes_available: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct AdapterStatusView {
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) bind: String,
    pub(crate) port: u32,
    pub(crate) running: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct ClientView {
    pub(crate) address: String,
    pub(crate) protocol: String,
    pub(crate) connected_at: String,
    pub(crate) connected_at_unix: u64,
    pub(crate) calls: u64,
}

fn unix_or_empty(secs: u64) -> String {
    if secs == 0 {
        String::new()
    } else {
        format_unix(secs)
    }
}

impl From<&pb::StatusResponse> for StatusView {
    fn from(s: &pb::StatusResponse) -> Self {
        StatusView {
            version: s.version.clone(),
            applied_generation: s.applied_generation,
            data_dir: s.data_dir.clone(),
            started_at: unix_or_empty(s.started_at_unix),
            started_at_unix: s.started_at_unix,
            shares: s
                .shares
                .iter()
                .map(|x| ShareStatusView {
                    name: x.name.clone(),
                    share_id: x.share_id,
                    health: health(x.health),
                    message: x.message.clone(),
                    metadata: x.metadata.clone(),
                    local: x.local.clone(),
                    remote: x.remote.clone(),
                    read_only: x.read_only,
                    trash_enabled: x.trash_enabled,
                })
                .collect(),
            stores: s
                .stores
                .iter()
                .map(|x| StoreStatusView {
                    name: x.name.clone(),
                    kind: x.kind.clone(),
                    store_type: x.r#type.clone(),
                    health: health(x.health),
                    message: x.message.clone(),
                    used_by: x.used_by.clone(),
                    bytes_used: x.bytes_used,
                    bytes_available: x.bytes_available,
                })
                .collect(),
            adapters: s
                .adapters
                .iter()
                .map(|x| AdapterStatusView {
                    name: x.name.clone(),
                    enabled: x.enabled,
                    bind: x.bind.clone(),
                    port: x.port,
                    running: x.running,
                })
                .collect(),
            clients: s
                .clients
                .iter()
                .map(|x| ClientView {
                    address: x.address.clone(),
                    protocol: x.protocol.clone(),
                    connected_at: unix_or_empty(x.connected_at_unix),
                    connected_at_unix: x.connected_at_unix,
                    calls: x.calls,
                })
                .collect(),
        }
    }
}

pub(crate) fn status_text(s: &StatusView) -> String {
    let mut out = kv(&[
        ("version", dash(&s.version)),
        ("applied_generation", s.applied_generation.to_string()),
        ("data_dir", dash(&s.data_dir)),
        ("started_at", dash(&s.started_at)),
    ]);
    out.push_str("\nSHARES\n");
    if s.shares.is_empty() {
        out.push_str("(none)\n");
    } else {
        let mut t = Table::new(&[
            "NAME", "ID", "HEALTH", "METADATA", "LOCAL", "REMOTE", "RO", "TRASH", "MESSAGE",
        ]);
        for x in &s.shares {
            t.row(vec![
                x.name.clone(),
                x.share_id.to_string(),
                x.health.clone(),
                x.metadata.clone(),
                x.local.clone(),
                dash(&x.remote),
                yes_no(x.read_only),
                yes_no(x.trash_enabled),
                x.message.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    out.push_str("\nSTORES\n");
    if s.stores.is_empty() {
        out.push_str("(none)\n");
    } else {
        let mut t = Table::new(&[
            "NAME",
            "KIND",
            "TYPE",
            "HEALTH",
            "USED",
            "AVAILABLE",
            "USED_BY",
            "MESSAGE",
        ]);
        for x in &s.stores {
            let size = |n: u64| {
                if n == 0 {
                    "-".to_string()
                } else {
                    human_size(n)
                }
            };
            t.row(vec![
                x.name.clone(),
                x.kind.clone(),
                x.store_type.clone(),
                x.health.clone(),
                size(x.bytes_used),
                size(x.bytes_available),
                list_or_dash(&x.used_by),
                x.message.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    out.push_str("\nADAPTERS\n");
    if s.adapters.is_empty() {
        out.push_str("(none)\n");
    } else {
        let mut t = Table::new(&["NAME", "ENABLED", "BIND", "PORT", "RUNNING"]);
        for x in &s.adapters {
            t.row(vec![
                x.name.clone(),
                yes_no(x.enabled),
                x.bind.clone(),
                x.port.to_string(),
                yes_no(x.running),
            ]);
        }
        out.push_str(&t.render());
    }
    out.push_str("\nCLIENTS\n");
    if s.clients.is_empty() {
        out.push_str("(none)\n");
    } else {
        let mut t = Table::new(&["ADDRESS", "PROTOCOL", "CONNECTED_AT", "CALLS"]);
        for x in &s.clients {
            t.row(vec![
                x.address.clone(),
                x.protocol.clone(),
                dash(&x.connected_at),
                x.calls.to_string(),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

// ----------------------------------------------------------------- version

#[derive(Debug, Serialize)]
pub(crate) struct VersionView {
    pub(crate) client_version: String,
    pub(crate) server: String,
    pub(crate) server_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server_error: Option<String>,
}

pub(crate) fn version_text(v: &VersionView) -> String {
    let server = match (&v.server_version, &v.server_error) {
        (Some(ver), _) => format!("{ver} ({})", v.server),
        (None, Some(e)) => format!("unknown: {e}"),
        (None, None) => "unknown".into(),
    };
    kv(&[("client", v.client_version.clone()), ("server", server)])
}

// ----------------------------------------------------------------- tiers

#[derive(Debug, Serialize)]
pub(crate) struct RemoteTierView {
    pub(crate) name: String,
    pub(crate) identity: String,
    pub(crate) shares: Vec<String>,
    pub(crate) pending_chunks: u64,
    pub(crate) uploaded_chunks: u64,
    pub(crate) uploaded_bytes: u64,
    pub(crate) dedup_head_chunks: u64,
    pub(crate) dedup_known_chunks: u64,
    pub(crate) dedup_known_bytes: u64,
    pub(crate) dedup_files: u64,
    pub(crate) upload_retries: u64,
    pub(crate) last_upload_error: String,
    pub(crate) cold_reads: u64,
    pub(crate) cold_read_bytes: u64,
    pub(crate) readahead_chunks: u64,
    pub(crate) remote_read_errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scan_objects: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scan_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct LocalTierView {
    pub(crate) name: String,
    pub(crate) used_bytes: u64,
    pub(crate) max_size_bytes: u64,
    pub(crate) evicting: bool,
    pub(crate) evicted_chunks: u64,
    pub(crate) evicted_bytes: u64,
    pub(crate) dirty_bytes: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct TierStatusView {
    pub(crate) remotes: Vec<RemoteTierView>,
    pub(crate) locals: Vec<LocalTierView>,
}

impl From<&pb::RemoteStatusResponse> for TierStatusView {
    fn from(r: &pb::RemoteStatusResponse) -> Self {
        TierStatusView {
            remotes: r
                .remotes
                .iter()
                .map(|t| RemoteTierView {
                    name: t.name.clone(),
                    identity: t.identity.clone(),
                    shares: t.shares.clone(),
                    pending_chunks: t.pending_chunks,
                    uploaded_chunks: t.uploaded_chunks,
                    uploaded_bytes: t.uploaded_bytes,
                    dedup_head_chunks: t.dedup_head_chunks,
                    dedup_known_chunks: t.dedup_known_chunks,
                    dedup_known_bytes: t.dedup_known_bytes,
                    dedup_files: t.dedup_files,
                    upload_retries: t.upload_retries,
                    last_upload_error: t.last_upload_error.clone(),
                    cold_reads: t.cold_reads,
                    cold_read_bytes: t.cold_read_bytes,
                    readahead_chunks: t.readahead_chunks,
                    remote_read_errors: t.remote_read_errors,
                    scan_objects: t.scan.as_ref().map(|s| s.objects),
                    scan_bytes: t.scan.as_ref().map(|s| s.bytes),
                })
                .collect(),
            locals: r
                .locals
                .iter()
                .map(|l| LocalTierView {
                    name: l.name.clone(),
                    used_bytes: l.used_bytes,
                    max_size_bytes: l.max_size_bytes,
                    evicting: l.evicting,
                    evicted_chunks: l.evicted_chunks,
                    evicted_bytes: l.evicted_bytes,
                    dirty_bytes: l.dirty_bytes,
                })
                .collect(),
        }
    }
}

pub(crate) fn tier_status_text(v: &TierStatusView) -> String {
    let mut out = String::new();
    for t in &v.remotes {
        let mut pairs = vec![
            ("remote", format!("{} ({})", t.name, t.identity)),
            ("shares", list_or_dash(&t.shares)),
            ("pending_chunks", t.pending_chunks.to_string()),
            (
                "uploaded",
                format!(
                    "{} chunks, {}",
                    t.uploaded_chunks,
                    human_size(t.uploaded_bytes)
                ),
            ),
            (
                "dedup",
                format!(
                    "{} already on the remote, {} known ({}), {} whole files",
                    t.dedup_head_chunks,
                    t.dedup_known_chunks,
                    human_size(t.dedup_known_bytes),
                    t.dedup_files
                ),
            ),
            ("upload_retries", t.upload_retries.to_string()),
            ("last_upload_error", dash(&t.last_upload_error)),
            (
                "cold_reads",
                format!(
                    "{} ({}), readahead {} chunks, {} errors",
                    t.cold_reads,
                    human_size(t.cold_read_bytes),
                    t.readahead_chunks,
                    t.remote_read_errors
                ),
            ),
        ];
        if let (Some(n), Some(b)) = (t.scan_objects, t.scan_bytes) {
            pairs.push(("on_remote", format!("{n} objects, {}", human_size(b))));
        }
        out.push_str(&kv(&pairs));
        out.push('\n');
    }
    for l in &v.locals {
        out.push_str(&kv(&[
            ("local", l.name.clone()),
            ("used", human_size(l.used_bytes)),
            ("not_yet_chunked", human_size(l.dirty_bytes)),
            (
                "max_size",
                if l.max_size_bytes == 0 {
                    "-".into()
                } else {
                    human_size(l.max_size_bytes)
                },
            ),
            (
                "eviction",
                if l.evicting {
                    format!(
                        "on: {} chunks, {} evicted",
                        l.evicted_chunks,
                        human_size(l.evicted_bytes)
                    )
                } else {
                    "off".into()
                },
            ),
        ]));
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("no block stores\n");
    }
    out
}

// ----------------------------------------------------------------- GC and audit

#[derive(Debug, Serialize)]
pub(crate) struct GcSummaryView {
    pub(crate) run_id: String,
    pub(crate) store: String,
    pub(crate) shares: Vec<String>,
    pub(crate) dry_run: bool,
    pub(crate) started_at: String,
    pub(crate) duration_ms: u64,
    pub(crate) grace_seconds: u64,
    pub(crate) live_chunks: u64,
    pub(crate) scanned_chunks: u64,
    pub(crate) deleted_chunks: u64,
    pub(crate) deleted_bytes: u64,
    pub(crate) kept_in_grace: u64,
    pub(crate) errors: u64,
    pub(crate) outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) remote: Option<RemoteGcView>,
}

/// The remote sweep of a GC run.
#[derive(Debug, Serialize)]
pub(crate) struct RemoteGcView {
    pub(crate) store: String,
    pub(crate) identity: String,
    pub(crate) pending_chunks: u64,
    pub(crate) scanned_objects: u64,
    pub(crate) live_objects: u64,
    pub(crate) deleted_objects: u64,
    pub(crate) deleted_bytes: u64,
    pub(crate) kept_in_grace: u64,
    pub(crate) kept_in_use: u64,
    pub(crate) errors: u64,
    pub(crate) failed: Vec<String>,
}

impl From<&pb::GcRunSummary> for GcSummaryView {
    fn from(g: &pb::GcRunSummary) -> Self {
        GcSummaryView {
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
            remote: g.remote.as_ref().map(|r| RemoteGcView {
                store: r.store.clone(),
                identity: r.identity.clone(),
                pending_chunks: r.pending_chunks,
                scanned_objects: r.scanned_objects,
                live_objects: r.live_objects,
                deleted_objects: r.deleted_objects,
                deleted_bytes: r.deleted_bytes,
                kept_in_grace: r.kept_in_grace,
                kept_in_use: r.kept_in_use,
                errors: r.errors,
                failed: r.failed.clone(),
            }),
        }
    }
}

pub(crate) fn gc_summary_text(g: &GcSummaryView) -> String {
    let (deleted_key, bytes_key) = if g.dry_run {
        ("would_delete_chunks", "would_free")
    } else {
        ("deleted_chunks", "freed")
    };
    kv(&[
        ("run_id", dash(&g.run_id)),
        ("store", dash(&g.store)),
        ("shares", list_or_dash(&g.shares)),
        ("dry_run", g.dry_run.to_string()),
        ("started_at", dash(&g.started_at)),
        ("duration_ms", g.duration_ms.to_string()),
        ("grace", format_duration_secs(g.grace_seconds)),
        ("live_chunks", g.live_chunks.to_string()),
        ("scanned_chunks", g.scanned_chunks.to_string()),
        (deleted_key, g.deleted_chunks.to_string()),
        (bytes_key, human_size(g.deleted_bytes)),
        ("kept_in_grace", g.kept_in_grace.to_string()),
        ("errors", g.errors.to_string()),
        ("outcome", dash(&g.outcome)),
    ]) + &g.remote.as_ref().map_or(String::new(), |r| {
        let (deleted_key, bytes_key) = if g.dry_run {
            ("remote_would_delete", "remote_would_free")
        } else {
            ("remote_deleted", "remote_freed")
        };
        kv(&[
            ("remote", format!("{} ({})", r.store, r.identity)),
            ("remote_pending", r.pending_chunks.to_string()),
            ("remote_scanned", r.scanned_objects.to_string()),
            ("remote_live", r.live_objects.to_string()),
            (deleted_key, r.deleted_objects.to_string()),
            (bytes_key, human_size(r.deleted_bytes)),
            ("remote_kept_in_grace", r.kept_in_grace.to_string()),
            ("remote_kept_in_use", r.kept_in_use.to_string()),
            ("remote_errors", r.errors.to_string()),
            ("remote_failed", list_or_dash(&r.failed)),
        ])
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct AuditView {
    pub(crate) share: String,
    pub(crate) started_at: String,
    pub(crate) duration_ms: u64,
    pub(crate) total_files: u64,
    pub(crate) total_refs: u64,
    pub(crate) total_refcount: u64,
    pub(crate) delta: i64,
    pub(crate) dangling_count: u64,
    pub(crate) dangling: Vec<DanglingView>,
    pub(crate) chunks_checked: u64,
    pub(crate) verified: bool,
    pub(crate) missing_count: u64,
    pub(crate) missing: Vec<MissingView>,
    /// delta == 0, no dangling entries and no missing chunks.
    pub(crate) clean: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct MissingView {
    pub(crate) hash: String,
    pub(crate) kind: String,
    pub(crate) files: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct DanglingView {
    pub(crate) hash: String,
    pub(crate) kind: String,
    pub(crate) refs: u64,
    pub(crate) refcount: u64,
}

impl From<&pb::AuditReport> for AuditView {
    fn from(a: &pb::AuditReport) -> Self {
        AuditView {
            share: a.share.clone(),
            started_at: a.started_at.clone(),
            duration_ms: a.duration_ms,
            total_files: a.total_files,
            total_refs: a.total_refs,
            total_refcount: a.total_refcount,
            delta: a.delta,
            dangling_count: a.dangling_count,
            dangling: a
                .dangling
                .iter()
                .map(|d| DanglingView {
                    hash: d.hash.clone(),
                    kind: d.kind.clone(),
                    refs: d.refs,
                    refcount: d.refcount,
                })
                .collect(),
            chunks_checked: a.chunks_checked,
            verified: a.verified,
            missing_count: a.missing_count,
            missing: a
                .missing
                .iter()
                .map(|m| MissingView {
                    hash: m.hash.clone(),
                    kind: m.kind.clone(),
                    files: m.files.clone(),
                })
                .collect(),
            clean: a.delta == 0 && a.dangling_count == 0 && a.missing_count == 0,
        }
    }
}

pub(crate) fn audit_text(a: &AuditView) -> String {
    let mut out = kv(&[
        ("share", a.share.clone()),
        ("started_at", dash(&a.started_at)),
        ("duration_ms", a.duration_ms.to_string()),
        ("total_files", a.total_files.to_string()),
        ("total_refs", a.total_refs.to_string()),
        ("total_refcount", a.total_refcount.to_string()),
        ("delta", a.delta.to_string()),
        ("dangling_count", a.dangling_count.to_string()),
        (
            "chunks_checked",
            format!(
                "{}{}",
                a.chunks_checked,
                if a.verified { " (read and hashed)" } else { "" }
            ),
        ),
        ("missing_chunks", a.missing_count.to_string()),
        (
            "result",
            if a.clean {
                "clean".into()
            } else {
                "DRIFT".into()
            },
        ),
    ]);
    missing_text(a, &mut out);
    if !a.dangling.is_empty() {
        out.push_str("\nDANGLING\n");
        let mut t = Table::new(&["HASH", "KIND", "REFS", "REFCOUNT"]);
        for d in &a.dangling {
            t.row(vec![
                d.hash.clone(),
                d.kind.clone(),
                d.refs.to_string(),
                d.refcount.to_string(),
            ]);
        }
        out.push_str(&t.render());
        if a.dangling_count > a.dangling.len() as u64 {
            out.push_str(&format!(
                "({} more not listed)\n",
                a.dangling_count - a.dangling.len() as u64
            ));
        }
    }
    out
}

/// The MISSING table of an audit: one row per file of each chunk no tier holds intact.
fn missing_text(a: &AuditView, out: &mut String) {
    if a.missing.is_empty() {
        return;
    }
    out.push_str("\nMISSING CHUNKS (data of these files cannot be read)\n");
    let mut t = Table::new(&["FILE", "HASH", "KIND"]);
    for m in &a.missing {
        for f in &m.files {
            t.row(vec![f.clone(), m.hash.clone(), m.kind.clone()]);
        }
    }
    out.push_str(&t.render());
    if a.missing_count > a.missing.len() as u64 {
        out.push_str(&format!(
            "({} more chunks not listed)\n",
            a.missing_count - a.missing.len() as u64
        ));
    }
}

// ----------------------------------------------------------------- trash

#[derive(Debug, Serialize)]
pub(crate) struct TrashListView {
    pub(crate) share: String,
    pub(crate) items: Vec<TrashItemView>,
    /// More items exist than were returned (raise --limit).
    pub(crate) truncated: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct TrashItemView {
    pub(crate) path: String,
    pub(crate) original_path: String,
    pub(crate) kind: String,
    pub(crate) size: u64,
    pub(crate) deleted_at: String,
    pub(crate) deleted_at_unix: u64,
}

impl From<&pb::TrashItem> for TrashItemView {
    fn from(t: &pb::TrashItem) -> Self {
        TrashItemView {
            path: t.path.clone(),
            original_path: t.original_path.clone(),
            kind: t.kind.clone(),
            size: t.size,
            deleted_at: t.deleted_at.clone(),
            deleted_at_unix: t.deleted_at_unix,
        }
    }
}

pub(crate) fn trash_list_text(v: &TrashListView) -> String {
    if v.items.is_empty() {
        return format!("the recycle bin of {:?} is empty\n", v.share);
    }
    let mut t = Table::new(&["PATH", "ORIGINAL_PATH", "KIND", "SIZE", "DELETED_AT"]);
    for i in &v.items {
        let when = if i.deleted_at.is_empty() {
            unix_or_empty(i.deleted_at_unix)
        } else {
            i.deleted_at.clone()
        };
        t.row(vec![
            i.path.clone(),
            i.original_path.clone(),
            i.kind.clone(),
            human_size(i.size),
            dash(&when),
        ]);
    }
    let mut out = t.render();
    if v.truncated {
        out.push_str(&format!(
            "(list truncated at {} items; use --limit for more)\n",
            v.items.len()
        ));
    }
    out
}

#[derive(Debug, Serialize)]
pub(crate) struct TrashStatusView {
    pub(crate) share: String,
    pub(crate) enabled: bool,
    pub(crate) items: u64,
    pub(crate) bytes: u64,
    pub(crate) oldest_deleted_at: String,
    pub(crate) retention_days: u32,
    pub(crate) max_size_bytes: u64,
    pub(crate) exclude: Vec<String>,
}

impl From<&pb::TrashStatusResponse> for TrashStatusView {
    fn from(t: &pb::TrashStatusResponse) -> Self {
        TrashStatusView {
            share: t.share.clone(),
            enabled: t.enabled,
            items: t.items,
            bytes: t.bytes,
            oldest_deleted_at: t.oldest_deleted_at.clone(),
            retention_days: t.retention_days,
            max_size_bytes: t.max_size_bytes,
            exclude: t.exclude.clone(),
        }
    }
}

pub(crate) fn trash_status_text(t: &TrashStatusView) -> String {
    kv(&[
        ("share", t.share.clone()),
        ("enabled", t.enabled.to_string()),
        ("items", t.items.to_string()),
        ("size", human_size(t.bytes)),
        ("oldest_deleted_at", dash(&t.oldest_deleted_at)),
        (
            "retention",
            if t.retention_days == 0 {
                "forever".into()
            } else {
                format!("{} days", t.retention_days)
            },
        ),
        (
            "max_size",
            if t.max_size_bytes == 0 {
                "unbounded".into()
            } else {
                human_size(t.max_size_bytes)
            },
        ),
        ("exclude", list_or_dash(&t.exclude)),
    ])
}

#[derive(Debug, Serialize)]
pub(crate) struct RestoredView {
    pub(crate) share: String,
    pub(crate) path: String,
    pub(crate) restored_to: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct EmptiedView {
    pub(crate) share: String,
    pub(crate) items_removed: u64,
    pub(crate) bytes_freed: u64,
}

// ----------------------------------------------------------------- config apply

#[derive(Debug, Serialize)]
pub(crate) struct ApplyView {
    pub(crate) dry_run: bool,
    pub(crate) generation: u64,
    pub(crate) applied_generation: u64,
    pub(crate) restart_required: bool,
    pub(crate) changes: Vec<ChangeView>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChangeView {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) action: String,
    pub(crate) detail: String,
}

pub(crate) fn apply_text(a: &ApplyView) -> String {
    let mut out = String::new();
    if a.changes.is_empty() {
        out.push_str("no changes\n");
    } else {
        let mut t = Table::new(&["ACTION", "KIND", "NAME", "DETAIL"]);
        for c in &a.changes {
            t.row(vec![
                c.action.clone(),
                c.kind.clone(),
                c.name.clone(),
                c.detail.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    if a.dry_run {
        out.push_str(&format!(
            "dry run: nothing applied (generation {})\n",
            a.generation
        ));
    } else {
        out.push_str(&format!("applied generation {}\n", a.applied_generation));
    }
    if a.restart_required {
        out.push_str("restart required: some changes take effect at the next start of dfs\n");
    }
    out
}

// ----------------------------------------------------------------- users, groups, grants

/// A user as shown (the server never sends a password or a hash).
#[derive(Debug, Serialize)]
pub(crate) struct UserView {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) groups: Vec<String>,
    pub(crate) enabled: bool,
    pub(crate) has_password: bool,
}

impl From<&pb::User> for UserView {
    fn from(u: &pb::User) -> Self {
        UserView {
            name: u.name.clone(),
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
            enabled: u.enabled,
            has_password: u.has_password,
        }
    }
}

pub(crate) fn users_text(users: &[UserView]) -> String {
    let mut t = Table::new(&["NAME", "UID", "GID", "GROUPS", "ENABLED", "PASSWORD"]);
    for u in users {
        t.row(vec![
            u.name.clone(),
            u.uid.to_string(),
            u.gid.to_string(),
            list_or_dash(&u.groups),
            yes_no(u.enabled),
            if u.has_password { "set" } else { "-" }.into(),
        ]);
    }
    t.render()
}

pub(crate) fn user_text(u: &UserView) -> String {
    kv(&[
        ("name", u.name.clone()),
        ("uid", u.uid.to_string()),
        ("gid", u.gid.to_string()),
        ("groups", list_or_dash(&u.groups)),
        ("enabled", yes_no(u.enabled)),
        ("password", if u.has_password { "set" } else { "-" }.into()),
    ])
}

#[derive(Debug, Serialize)]
pub(crate) struct GroupView {
    pub(crate) name: String,
    pub(crate) gid: u32,
    pub(crate) members: Vec<String>,
}

impl From<&pb::Group> for GroupView {
    fn from(g: &pb::Group) -> Self {
        GroupView {
            name: g.name.clone(),
            gid: g.gid,
            members: g.members.clone(),
        }
    }
}

pub(crate) fn groups_text(groups: &[GroupView]) -> String {
    let mut t = Table::new(&["NAME", "GID", "MEMBERS"]);
    for g in groups {
        t.row(vec![
            g.name.clone(),
            g.gid.to_string(),
            list_or_dash(&g.members),
        ]);
    }
    t.render()
}

#[derive(Debug, Serialize)]
pub(crate) struct GrantView {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) level: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct PermissionsView {
    pub(crate) share: String,
    pub(crate) default_level: String,
    pub(crate) grants: Vec<GrantView>,
}

impl From<&pb::SharePermissions> for PermissionsView {
    fn from(p: &pb::SharePermissions) -> Self {
        PermissionsView {
            share: p.share.clone(),
            default_level: p.default_level.clone(),
            grants: p
                .grants
                .iter()
                .map(|g| GrantView {
                    kind: g.kind.clone(),
                    name: g.name.clone(),
                    level: g.level.clone(),
                })
                .collect(),
        }
    }
}

pub(crate) fn permissions_text(p: &PermissionsView) -> String {
    let mut out = kv(&[
        ("share", p.share.clone()),
        ("default level", p.default_level.clone()),
    ]);
    let mut t = Table::new(&["KIND", "NAME", "LEVEL"]);
    for g in &p.grants {
        t.row(vec![g.kind.clone(), g.name.clone(), g.level.clone()]);
    }
    out.push_str(&t.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share() -> pb::Share {
        pb::Share {
            name: "/docs".into(),
            metadata: "default".into(),
            local: "fast".into(),
            remote: String::new(),
            durability: "local".into(),
            read_only: false,
            squash: "root_to_anonymous".into(),
            anon_uid: 65534,
            anon_gid: 65534,
            allowed_clients: vec!["10.0.0.0/8".into(), "127.0.0.1".into()],
            secure: false,
            root_mode: 0o755,
            chunking: Some(pb::Chunking {
                min: 1 << 20,
                avg: 4 << 20,
                max: 16 << 20,
            }),
            trash: Some(pb::TrashConfig {
                enabled: true,
                retention_days: 30,
                max_size_bytes: 10 << 30,
                exclude: vec!["*.tmp".into()],
            }),
        }
    }

    fn gc() -> pb::GcRunSummary {
        pb::GcRunSummary {
            run_id: "run-1".into(),
            store: "default".into(),
            shares: vec!["/a".into(), "/b".into()],
            dry_run: false,
            started_at: "2024-05-01T10:00:00Z".into(),
            duration_ms: 1234,
            grace_seconds: 3600,
            live_chunks: 100,
            scanned_chunks: 120,
            deleted_chunks: 15,
            deleted_bytes: 3 << 20,
            kept_in_grace: 5,
            errors: 0,
            outcome: "succeeded".into(),
            remote: None,
        }
    }

    #[test]
    fn table_alignment() {
        let mut t = Table::new(&["NAME", "X"]);
        t.row(vec!["a-long-name".into(), "1".into()]);
        t.row(vec!["b".into(), "".into()]);
        assert_eq!(t.render(), "NAME         X\na-long-name  1\nb\n");
        assert_eq!(
            kv(&[("a", "1".into()), ("long", "2".into())]),
            "a:     1\nlong:  2\n"
        );
    }

    #[test]
    fn share_rendering() {
        let v = ShareSpec::from(&share());
        let text = render(OutputFormat::Text, &v, share_text).unwrap();
        assert!(text.contains("name:             /docs\n"), "{text}");
        assert!(text.contains("root_mode:        0755\n"), "{text}");
        assert!(text.contains("chunking:         1M/4M/16M\n"), "{text}");
        assert!(
            text.contains("allowed_clients:  10.0.0.0/8,127.0.0.1\n"),
            "{text}"
        );
        assert!(text.contains("trash_max_size:   10.0 GiB\n"), "{text}");
        assert!(text.contains("remote:           -\n"), "{text}");

        let json = render(OutputFormat::Json, &v, share_text).unwrap();
        let j: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(j["name"], "/docs");
        assert_eq!(j["root_mode"], "0755");
        assert_eq!(j["chunking"]["avg"], 4 << 20);
        assert_eq!(j["trash"]["max_size_bytes"], 10u64 << 30);
        assert!(j.get("remote").is_none());

        let yaml = render(OutputFormat::Yaml, &v, share_text).unwrap();
        let y: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(y["squash"], "root_to_anonymous");
        assert_eq!(y["trash"]["retention_days"], 30);

        let list = render(OutputFormat::Json, &vec![v.clone(), v], |v| shares_text(v)).unwrap();
        let j: serde_json::Value = serde_json::from_str(&list).unwrap();
        assert_eq!(j.as_array().map(Vec::len), Some(2));

        let mut plain = share();
        plain.trash = None;
        plain.chunking = None;
        let text = share_text(&ShareSpec::from(&plain));
        assert!(text.contains("trash:            disabled\n"), "{text}");
        assert!(
            text.contains("chunking:         (server default)\n"),
            "{text}"
        );
        let table = shares_text(&[ShareSpec::from(&plain)]);
        assert!(
            table.starts_with("NAME   METADATA  LOCAL  REMOTE  RO  SQUASH"),
            "{table}"
        );
    }

    #[test]
    fn gc_summary_rendering() {
        let v = GcSummaryView::from(&gc());
        let text = gc_summary_text(&v);
        assert!(text.contains("deleted_chunks:  15\n"), "{text}");
        assert!(text.contains("freed:           3.0 MiB\n"), "{text}");
        assert!(text.contains("grace:           1h\n"), "{text}");
        assert!(text.contains("shares:          /a,/b\n"), "{text}");
        let mut dry = gc();
        dry.dry_run = true;
        let text = gc_summary_text(&GcSummaryView::from(&dry));
        assert!(text.contains("would_delete_chunks:  15"), "{text}");

        let json = render(OutputFormat::Json, &v, gc_summary_text).unwrap();
        let j: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(j["deleted_bytes"], 3u64 << 20);
        assert_eq!(j["outcome"], "succeeded");
        let yaml = render(OutputFormat::Yaml, &v, gc_summary_text).unwrap();
        let y: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(y["run_id"], "run-1");
        assert_eq!(y["grace_seconds"], 3600);
    }

    #[test]
    fn audit_rendering() {
        let report = pb::AuditReport {
            share: "/a".into(),
            started_at: "t".into(),
            duration_ms: 5,
            total_files: 10,
            total_refs: 20,
            total_refcount: 21,
            delta: -1,
            dangling_count: 2,
            dangling: vec![pb::DanglingRef {
                hash: "abcd".into(),
                kind: "refcount_mismatch".into(),
                refs: 1,
                refcount: 2,
            }],
            chunks_checked: 7,
            verified: true,
            missing_count: 3,
            missing: vec![pb::MissingChunk {
                hash: "ef01".into(),
                kind: "corrupt".into(),
                files: vec!["/x".into(), "/y/z".into()],
            }],
        };
        let v = AuditView::from(&report);
        assert!(!v.clean);
        let text = audit_text(&v);
        assert!(text.contains("delta:           -1\n"), "{text}");
        assert!(text.contains("abcd  refcount_mismatch  1     2"), "{text}");
        assert!(text.contains("(1 more not listed)"), "{text}");
        assert!(
            text.contains("chunks_checked:  7 (read and hashed)\n"),
            "{text}"
        );
        assert!(
            text.contains("/x    ef01  corrupt\n/y/z  ef01  corrupt\n"),
            "{text}"
        );
        assert!(text.contains("(2 more chunks not listed)"), "{text}");
    }

    #[test]
    fn status_rendering() {
        let s = pb::StatusResponse {
            version: "0.1.0".into(),
            applied_generation: 3,
            data_dir: "/var/lib/dittofs".into(),
            started_at_unix: 1_700_000_000,
            shares: vec![pb::ShareStatus {
                name: "/export".into(),
                share_id: 1,
                health: pb::Health::Ok as i32,
                metadata: "default".into(),
                local: "default".into(),
                ..Default::default()
            }],
            stores: vec![pb::StoreStatus {
                name: "default".into(),
                kind: "local".into(),
                r#type: "fs".into(),
                health: pb::Health::Degraded as i32,
                used_by: vec!["/export".into()],
                bytes_used: 2048,
                ..Default::default()
            }],
            adapters: vec![],
            clients: vec![],
        };
        let v = StatusView::from(&s);
        let text = status_text(&v);
        assert!(
            text.contains("started_at:          2023-11-14T22:13:20Z"),
            "{text}"
        );
        assert!(text.contains("degraded"), "{text}");
        assert!(text.contains("2.0 KiB"), "{text}");
        let j: serde_json::Value =
            serde_json::from_str(&render(OutputFormat::Json, &v, status_text).unwrap()).unwrap();
        assert_eq!(j["stores"][0]["used_by"][0], "/export");
        assert_eq!(j["stores"][0]["type"], "fs");
        assert_eq!(j["shares"][0]["health"], "ok");
    }
}
