//! What every call handler shares: the share registry, the export table (swapped as a
//! whole while serving), configuration, metrics, the duplicate request cache, the
//! buffer budget, the rate-limited logs, the mount list, the NLM/NSM state and the
//! NFSv4 state (clients and sessions, delegations, the grace period, lock-owners
//! waiting for CB_NOTIFY_LOCK), the NFSv4 owner names (swapped as a whole when the
//! identity store changes); and the export policy's admission check every handler
//! applies to a call on a share.

use crate::config::NfsServerConfig;
use crate::drc::Drc;
use crate::export::{ExportPolicy, Refusal};
use crate::metrics::NfsMetrics;
use crate::nlm_state::Nlm;
use crate::proc4::deleg::Delegations;
use crate::proc4::grace::Grace;
use crate::proc4::idmap::OwnerMap;
use crate::proc4::lockwait::LockWaits;
use crate::proc4::state::Nfs4State;
use dittofs_types::ShareId;
use dittofs_vfs::ratelimit::{Level, LimitedLog};
use dittofs_vfs::{IdNames, ShareRegistry};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use tokio::sync::Semaphore;

/// Entries of the duplicate request cache.
const DRC_ENTRIES: usize = 8192;

pub(crate) struct Shared {
    pub(crate) registry: Arc<ShareRegistry>,
    /// Export policy per share; replaced as a whole when the configuration changes.
    pub(crate) exports: RwLock<HashMap<ShareId, Arc<ExportPolicy>>>,
    /// Open connections (for status: connected clients).
    pub(crate) conns: Mutex<HashMap<u64, ClientConn>>,
    pub(crate) next_conn: AtomicU64,
    pub(crate) cfg: NfsServerConfig,
    pub(crate) metrics: Arc<NfsMetrics>,
    pub(crate) drc: Drc,
    /// WRITE/COMMIT verifier: new on every start, so clients resend uncommitted writes.
    pub(crate) write_verifier: [u8; 8],
    pub(crate) mounts: Mutex<Vec<(IpAddr, Vec<u8>)>>,
    /// The server-wide budget of records and replies (see `budget`).
    pub(crate) budget: Arc<Semaphore>,
    /// Rate-limited log lines, one window per kind.
    pub(crate) logs: Logs,
    /// Connections accepted and not yet ended.
    pub(crate) open: std::sync::atomic::AtomicUsize,
    /// Lock manager and status monitor state (NLM, NSM).
    pub(crate) nlm: Arc<Nlm>,
    /// NFSv4 clients, sessions and stateids.
    pub(crate) nfs4: Nfs4State,
    /// NFSv4 delegations and back channels.
    pub(crate) deleg: Delegations,
    /// NFSv4 client records across restarts and the grace period.
    pub(crate) grace: Grace,
    /// NFSv4 lock-owners waiting for a blocked lock (CB_NOTIFY_LOCK).
    pub(crate) lock_waits: Arc<LockWaits>,
    /// NFSv4 owner strings: the configured domain and the identity store's names.
    owners: RwLock<OwnerMap>,
}

/// One open connection (for status: connected clients).
pub(crate) struct ClientConn {
    pub(crate) addr: SocketAddr,
    pub(crate) since: std::time::SystemTime,
    pub(crate) calls: Arc<AtomicU64>,
}

/// What clients can cause at will, each kind counted in its metric and logged a few
/// times (see `dittofs_vfs::ratelimit`).
pub(crate) struct Logs {
    pub(crate) garbage: LimitedLog,
    pub(crate) oversized: LimitedLog,
    pub(crate) stalled: LimitedLog,
    pub(crate) accept_failed: LimitedLog,
    pub(crate) too_many_connections: LimitedLog,
    /// MNT from a client not in `allowed_clients`.
    pub(crate) mount_not_allowed: LimitedLog,
    /// MNT of a path in no export, or of a directory the caller cannot reach.
    pub(crate) mount_failed: LimitedLog,
    pub(crate) insecure_port: LimitedLog,
}

impl Logs {
    pub(crate) fn new(m: &NfsMetrics) -> Logs {
        let warn = |kind, c: &prometheus_client::metrics::counter::Counter| {
            LimitedLog::new(kind, Level::Warn, c.clone())
        };
        Logs {
            garbage: warn("garbage_record", &m.garbage_records),
            oversized: warn("oversized_record", &m.oversized_records),
            stalled: warn("stalled_client", &m.stalled_clients),
            accept_failed: warn("accept_failed", &m.accept_errors),
            too_many_connections: warn("too_many_connections", &m.refused_connections),
            mount_not_allowed: warn("mount_not_allowed", &m.mounts_refused),
            mount_failed: LimitedLog::new("mount_failed", Level::Info, m.mounts_refused.clone()),
            insecure_port: warn("insecure_port", &m.insecure_port_calls),
        }
    }
}

impl Shared {
    /// The state of a server that has just started: a new write verifier, no
    /// connections, no mounts.
    pub(crate) fn new(
        registry: Arc<ShareRegistry>,
        exports: Vec<ExportPolicy>,
        cfg: NfsServerConfig,
        metrics: Arc<NfsMetrics>,
    ) -> Shared {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut v = (now.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32);
        if v == 0 {
            v = 1;
        }
        let deleg = Delegations::new(&cfg.v4);
        let lock_waits = Arc::new(LockWaits::new(&cfg.v4));
        let unlocks = Some(lock_waits.clone() as Arc<dyn crate::nlm_state::FileUnlocked>);
        Shared {
            registry,
            exports: RwLock::new(export_map(exports)),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            budget: Arc::new(Semaphore::new(cfg.max_buffered_bytes as usize)),
            logs: Logs::new(&metrics),
            nlm: Arc::new(Nlm::new(cfg.locks.clone(), Some(deleg.breaker()), unlocks)),
            nfs4: Nfs4State::new(cfg.v4.lease, cfg.v4.courtesy),
            deleg,
            lock_waits,
            grace: Grace::new(),
            owners: RwLock::new(OwnerMap::new(
                cfg.v4.id_domain.as_deref(),
                Arc::new(IdNames::new()),
            )),
            cfg,
            metrics,
            drc: Drc::new(DRC_ENTRIES),
            write_verifier: v.to_be_bytes(),
            mounts: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
        }
    }

    /// Replaces every export policy.
    pub(crate) fn set_exports(&self, exports: Vec<ExportPolicy>) {
        *self.exports.write() = export_map(exports);
    }

    /// Replaces the names of user and group ids (the domain stays the configured one).
    pub(crate) fn set_id_names(&self, names: Arc<IdNames>) {
        let mut cur = self.owners.write();
        *cur = cur.with_names(names);
    }

    /// The owner map an NFSv4 operation uses (taken once per operation).
    pub(crate) fn owners(&self) -> OwnerMap {
        self.owners.read().clone()
    }

    /// The export policy of a share (None: not exported, e.g. removed while serving).
    pub(crate) fn export(&self, share: ShareId) -> Option<Arc<ExportPolicy>> {
        self.exports.read().get(&share).cloned()
    }

    /// Applies `policy`'s address and port checks to a call of `what` (a procedure name)
    /// from `client` on share `share`; a refused port is counted and logged here.
    pub(crate) fn admit(
        &self,
        policy: &ExportPolicy,
        client: SocketAddr,
        share: &str,
        what: &str,
    ) -> Result<(), Refusal> {
        let r = policy.admits(client);
        if r == Err(Refusal::InsecurePort) {
            self.logs.insecure_port.hit(|| {
                format!(
                    "{what} from {client} refused: share {share} is secure and the source \
                     port is not privileged (< 1024)"
                )
            });
        }
        r
    }
}

fn export_map(exports: Vec<ExportPolicy>) -> HashMap<ShareId, Arc<ExportPolicy>> {
    exports
        .into_iter()
        .map(|e| (e.share, Arc::new(e)))
        .collect()
}
