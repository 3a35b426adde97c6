//! Settings of the NFS server ([`NfsServerConfig`]), of its NFSv4 state
//! ([`Nfs4Config`]) and of its lock manager and status monitor ([`NlmConfig`]), with the defaults `dfs` starts from. Re-exported by
//! [`crate::server`], where they have always been named.

use crate::nsmd::NsmStore;
use std::sync::Arc;
use std::time::Duration;

/// Listener settings.
#[derive(Clone, Debug)]
pub struct NfsServerConfig {
    pub max_record_bytes: usize,
    pub max_inflight_per_connection: usize,
    /// Bytes the calls and unwritten replies of one connection may hold (at least one
    /// largest record plus one largest reply).
    pub max_buffered_bytes_per_connection: u32,
    /// The same for all connections together.
    pub max_buffered_bytes: u32,
    /// A connection whose client takes no byte of its replies for this long is closed.
    pub reply_timeout: Duration,
    /// Once stopped, connections have this long to finish their calls and write their
    /// replies; then `serve` returns. Keep it below the process's own shutdown bound.
    pub shutdown_timeout: Duration,
    /// Connections served at once (0 = no limit); more are accepted and closed at once,
    /// so the descriptors files and the other listeners need are never taken by clients.
    pub max_connections: usize,
    /// Port NFS and MOUNT are served on (reported by the portmapper).
    pub port: u16,
    /// NLM and NSM settings (its grace period after start is NFSv4's too).
    pub locks: NlmConfig,
    /// NFSv4 settings.
    pub v4: Nfs4Config,
}

/// NFSv4 settings.
#[derive(Clone, Debug)]
pub struct Nfs4Config {
    /// Read delegations (4.1/4.2 clients with a back channel, 4.0 clients with a callback
    /// path) (`nfs.v4.delegations`; the server's default is on).
    pub delegations: bool,
    /// Write delegations too (`nfs.v4.write_delegations`; needs `delegations`).
    pub write_delegations: bool,
    /// The lease: a client that renews nothing for this long is expired; a delegation
    /// recall not answered in this long revokes the delegation (RFC 8881 section 8.1).
    pub lease: Duration,
    /// How long past its lease an expired client keeps its state while nobody conflicts
    /// with it (a courtesy client, `proc4::courtesy`); zero: its state goes with the
    /// lease (`nfs.v4.courtesy_seconds`).
    pub courtesy: Duration,
    /// The domain of owner strings (`nfs.v4.id_domain`): with one, owners with a name in
    /// the identity store are `name@domain` (`proc4::idmap`); None or empty: numeric
    /// strings only.
    pub id_domain: Option<String>,
}

impl Default for Nfs4Config {
    fn default() -> Self {
        Nfs4Config {
            delegations: true,
            write_delegations: true,
            lease: Duration::from_secs(90),
            courtesy: Duration::from_secs(86_400),
            id_domain: None,
        }
    }
}

/// Settings of the lock manager (NLM) and status monitor (NSM) services.
#[derive(Clone, Debug)]
pub struct NlmConfig {
    /// After start, only lock reclaims are served for this long (Linux lockd: 90 s).
    pub grace: std::time::Duration,
    /// Port of the clients' portmappers, asked where their lockd and statd listen for
    /// callbacks (GRANTED, SM_NOTIFY). 111 everywhere but in tests.
    pub client_portmapper_port: u16,
    /// The persisted NSM state (None: in memory, state 1, nobody notified on start).
    pub nsm: Option<Arc<NsmStore>>,
}

impl Default for NlmConfig {
    fn default() -> Self {
        NlmConfig {
            grace: std::time::Duration::from_secs(90),
            client_portmapper_port: 111,
            nsm: None,
        }
    }
}

impl Default for NfsServerConfig {
    fn default() -> Self {
        NfsServerConfig {
            max_record_bytes: 4 << 20,
            max_inflight_per_connection: 64,
            max_buffered_bytes_per_connection: 32 << 20,
            max_buffered_bytes: 512 << 20,
            reply_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            max_connections: 0,
            port: 12049,
            locks: NlmConfig::default(),
            v4: Nfs4Config::default(),
        }
    }
}
