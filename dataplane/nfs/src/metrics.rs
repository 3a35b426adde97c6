//! Prometheus metrics of the NFS adapter: per-procedure request count, errors and latency,
//! connections, bytes read and written, and a counter for each kind of client misbehaviour
//! (see `dittofs_vfs::ratelimit`: those are logged a few times, counted every time).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProcLabels {
    pub program: &'static str,
    pub procedure: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub program: &'static str,
    pub procedure: &'static str,
    pub status: &'static str,
}

pub struct NfsMetrics {
    pub requests: Family<ProcLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub latency: Family<ProcLabels, Histogram>,
    pub connections: Gauge,
    pub connections_total: Counter,
    pub bytes_read: Counter,
    pub bytes_written: Counter,
    /// Records rejected: oversized or not an RPC call (the sum of the next two).
    pub rejected_records: Counter,
    /// Records that do not decode as an RPC call.
    pub garbage_records: Counter,
    /// Records announced larger than `max_record_bytes` (their connection is closed).
    pub oversized_records: Counter,
    /// MNT calls refused: path in no export, client not allowed, directory unreachable.
    pub mounts_refused: Counter,
    /// Calls refused because they came from a source port >= 1024 to a `secure` share.
    pub insecure_port_calls: Counter,
    /// Connections closed because their client stopped reading replies.
    pub stalled_clients: Counter,
    /// Bytes reserved right now by calls and unwritten replies (see `budget`).
    pub buffered_bytes: Gauge,
    /// Connections closed at once because `max_connections` were open.
    pub refused_connections: Counter,
    /// Failed accepts (out of descriptors, ...).
    pub accept_errors: Counter,
    /// NFSv4 read delegations granted.
    pub delegations_granted: Counter,
    /// NFSv4 delegations recalled (CB_RECALL sent, or tried).
    pub delegations_recalled: Counter,
    /// NFSv4 delegations returned (DELEGRETURN).
    pub delegations_returned: Counter,
    /// NFSv4 delegations revoked (recall not answered within the lease).
    pub delegations_revoked: Counter,
    /// Replies on a client connection that no callback waited for (dropped).
    pub cb_unexpected_replies: Counter,
    /// NFSv4.0 callback paths dialled whose CB_NULL was answered.
    pub cb_probes_answered: Counter,
    /// NFSv4.0 callback paths that could not be dialled or did not answer CB_NULL.
    pub cb_probes_failed: Counter,
    /// NFSv4 courtesy clients (lease expired, state kept) released because another
    /// request conflicted with their state.
    pub courtesy_released: Counter,
    /// CB_NOTIFY_LOCK callbacks sent (or tried) to lock-owners waiting for a lock.
    pub lock_notifies: Counter,
}

impl NfsMetrics {
    pub fn new(registry: &mut Registry) -> NfsMetrics {
        let m = NfsMetrics {
            requests: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
            }),
            connections: Gauge::default(),
            connections_total: Counter::default(),
            bytes_read: Counter::default(),
            bytes_written: Counter::default(),
            rejected_records: Counter::default(),
            garbage_records: Counter::default(),
            oversized_records: Counter::default(),
            mounts_refused: Counter::default(),
            insecure_port_calls: Counter::default(),
            stalled_clients: Counter::default(),
            buffered_bytes: Gauge::default(),
            refused_connections: Counter::default(),
            accept_errors: Counter::default(),
            delegations_granted: Counter::default(),
            delegations_recalled: Counter::default(),
            delegations_returned: Counter::default(),
            delegations_revoked: Counter::default(),
            cb_unexpected_replies: Counter::default(),
            cb_probes_answered: Counter::default(),
            cb_probes_failed: Counter::default(),
            courtesy_released: Counter::default(),
            lock_notifies: Counter::default(),
        };
        registry.register(
            "nfs_requests",
            "RPC calls handled, by program and procedure",
            m.requests.clone(),
        );
        registry.register(
            "nfs_errors",
            "Calls answered with an error status",
            m.errors.clone(),
        );
        registry.register(
            "nfs_request_duration_seconds",
            "Latency of RPC calls",
            m.latency.clone(),
        );
        registry.register(
            "nfs_connections",
            "Open client connections",
            m.connections.clone(),
        );
        registry.register(
            "nfs_connections_accepted",
            "Client connections accepted",
            m.connections_total.clone(),
        );
        registry.register(
            "nfs_read_bytes",
            "Bytes returned by READ",
            m.bytes_read.clone(),
        );
        registry.register(
            "nfs_written_bytes",
            "Bytes accepted by WRITE",
            m.bytes_written.clone(),
        );
        registry.register(
            "nfs_rejected_records",
            "Records rejected (oversized or malformed framing)",
            m.rejected_records.clone(),
        );
        registry.register(
            "nfs_garbage_records",
            "Records that are not RPC calls (too short, not a CALL, bad header)",
            m.garbage_records.clone(),
        );
        registry.register(
            "nfs_oversized_records",
            "Records larger than nfs.max_record_bytes (the connection is closed)",
            m.oversized_records.clone(),
        );
        registry.register(
            "nfs_mounts_refused",
            "MNT calls refused (path in no export, client not allowed, directory unreachable)",
            m.mounts_refused.clone(),
        );
        registry.register(
            "nfs_insecure_port_calls",
            "Calls refused on a secure share because their source port is 1024 or above",
            m.insecure_port_calls.clone(),
        );
        registry.register(
            "nfs_stalled_clients_closed",
            "Connections closed because the client did not read its replies in time (or at shutdown)",
            m.stalled_clients.clone(),
        );
        registry.register(
            "nfs_buffered_bytes",
            "Bytes reserved by calls running and replies not yet written",
            m.buffered_bytes.clone(),
        );
        registry.register(
            "nfs_connections_refused",
            "Connections closed at once because nfs.max_connections were open",
            m.refused_connections.clone(),
        );
        registry.register(
            "nfs_accept_errors",
            "Failed accepts (e.g. out of file descriptors)",
            m.accept_errors.clone(),
        );
        m.register_nfs4(registry);
        m
    }

    fn register_nfs4(&self, registry: &mut Registry) {
        let counters = [
            (
                "nfs4_delegations_granted",
                "NFSv4 read delegations granted",
                &self.delegations_granted,
            ),
            (
                "nfs4_delegations_recalled",
                "NFSv4 delegations recalled (CB_RECALL)",
                &self.delegations_recalled,
            ),
            (
                "nfs4_delegations_returned",
                "NFSv4 delegations returned (DELEGRETURN)",
                &self.delegations_returned,
            ),
            (
                "nfs4_delegations_revoked",
                "NFSv4 delegations revoked: recall not answered within the lease",
                &self.delegations_revoked,
            ),
            (
                "nfs4_cb_unexpected_replies",
                "Replies on client connections that no callback waited for (dropped)",
                &self.cb_unexpected_replies,
            ),
            (
                "nfs4_cb_probes_answered",
                "NFSv4.0 callback paths dialled whose CB_NULL the client answered",
                &self.cb_probes_answered,
            ),
            (
                "nfs4_cb_probes_failed",
                "NFSv4.0 callback paths not dialled or whose CB_NULL was not answered",
                &self.cb_probes_failed,
            ),
            (
                "nfs4_courtesy_released",
                "NFSv4 courtesy clients (lease expired, state kept) released on a conflict",
                &self.courtesy_released,
            ),
            (
                "nfs4_lock_notifies",
                "CB_NOTIFY_LOCK callbacks sent to lock-owners waiting for a lock",
                &self.lock_notifies,
            ),
        ];
        for (name, help, c) in counters {
            registry.register(name, help, c.clone());
        }
    }

    /// Metrics that are not exported anywhere (tests).
    pub fn unregistered() -> NfsMetrics {
        NfsMetrics::new(&mut Registry::default())
    }
}
