//! The NFS server: TCP listener, per-connection record loop with bounded concurrency, the
//! duplicate request cache, and program dispatch (RFC 5531 sections 9-11; NFS program
//! 100003 v3, MOUNT program 100005 v3, NLM program 100021 v4 and NSM program 100024 v1
//! on one port).
//!
//! Invariants:
//! - a record larger than `max_record_bytes` closes the connection before it is read;
//! - at most `max_inflight_per_connection` calls of one connection run at once (the reader
//!   stops reading until a slot frees up: backpressure, not buffering);
//! - calls and unwritten replies hold at most `max_buffered_bytes_per_connection` per
//!   connection and `max_buffered_bytes` in all (see `budget`); a connection whose
//!   client has taken no byte of its replies for `reply_timeout` is closed;
//! - a retransmitted non-idempotent call (same client, xid, procedure and arguments) gets
//!   the cached reply, or is dropped while the original is still running;
//! - on shutdown no new connection or record is accepted; a connection whose client takes
//!   no byte of its replies for [`STOPPING_STALL`] is dropped (a client that was not
//!   reading when the server stopped goes at once), the others finish their in-flight
//!   calls and write the replies; `serve` returns after `shutdown_timeout` at the latest
//!   (calls still running then finish unattended until the process exits);
//! - what a client can cause at will (garbage, oversized records, stalls, refusals,
//!   failed accepts) is counted every time and logged a few times (`ratelimit`).

use crate::budget::{Budget, Reservation};
use crate::export::{ExportPolicy, Refusal};
use crate::metrics::{ErrorLabels, NfsMetrics, ProcLabels};
use crate::ratelimit::{Level, LimitedLog};
use crate::record::{RecordError, read_record, write_records};
use crate::rpc::{
    AcceptStat, Auth, AuthStat, RpcCall, RpcDecodeError, encode_accepted, encode_auth_error,
    encode_rpc_mismatch,
};
use crate::{mount3, nfs3, nlm4, nsm1};
use bytes::{Bytes, BytesMut};
use dittofs_types::ShareId;
use dittofs_vfs::ShareRegistry;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Read buffer of a connection: a burst of small calls is read with one system call.
const READ_BUFFER: usize = 64 * 1024;
/// A writer sends the replies that are ready together, up to about this many bytes.
const WRITE_BATCH_BYTES: usize = 4 << 20;

/// Once the server stops, a connection whose client takes no byte of its replies for
/// this long is dropped: at shutdown, waiting for a client that is not reading only
/// delays the exit (the pod's termination grace is finite).
pub const STOPPING_STALL: Duration = Duration::from_secs(1);

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
    /// NLM and NSM settings.
    pub locks: NlmConfig,
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
    pub nsm: Option<Arc<crate::nsmd::NsmStore>>,
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
        }
    }
}

/// The smallest per-connection budget that lets the largest record and the largest
/// reply through.
pub fn min_buffered_bytes_per_connection(max_record_bytes: usize) -> usize {
    max_record_bytes + crate::proc3::MAX_IO as usize + 8192
}

/// A reply: record parts written as one record (lets READ data go out without a copy).
pub(crate) type Reply = Vec<Bytes>;

pub(crate) struct Shared {
    pub(crate) registry: Arc<ShareRegistry>,
    /// Export policy per share; replaced as a whole when the configuration changes.
    exports: RwLock<HashMap<ShareId, Arc<ExportPolicy>>>,
    /// Open connections (for status: connected clients).
    conns: Mutex<HashMap<u64, ClientConn>>,
    next_conn: AtomicU64,
    pub(crate) cfg: NfsServerConfig,
    pub(crate) metrics: Arc<NfsMetrics>,
    drc: Drc,
    /// WRITE/COMMIT verifier: new on every start, so clients resend uncommitted writes.
    pub(crate) write_verifier: [u8; 8],
    pub(crate) mounts: Mutex<Vec<(IpAddr, Vec<u8>)>>,
    /// The server-wide budget of records and replies (see `budget`).
    budget: Arc<Semaphore>,
    /// Rate-limited log lines, one window per kind.
    pub(crate) logs: Logs,
    /// Connections accepted and not yet ended.
    open: std::sync::atomic::AtomicUsize,
    /// Lock manager and status monitor state (NLM, NSM).
    pub(crate) nlm: Arc<crate::nlmd::Nlm>,
}

/// The NFSv3 + MOUNT server.
#[derive(Clone)]
pub struct NfsServer {
    shared: Arc<Shared>,
}

/// One connected client, as reported by [`NfsServer::clients`].
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub addr: SocketAddr,
    pub connected_at: std::time::SystemTime,
    /// RPC calls received on this connection.
    pub calls: u64,
}

struct ClientConn {
    addr: SocketAddr,
    since: std::time::SystemTime,
    calls: Arc<AtomicU64>,
}

/// What clients can cause at will, each kind counted in its metric and logged a few
/// times (see `ratelimit`).
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
    fn new(m: &NfsMetrics) -> Logs {
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

/// Per-call context handed to the handlers.
pub(crate) struct CallCtx {
    pub(crate) client: SocketAddr,
    /// The server address the client connected to (None when unknown).
    pub(crate) local: Option<SocketAddr>,
    pub(crate) auth: Auth,
}

impl NfsServer {
    pub fn new(
        registry: Arc<ShareRegistry>,
        exports: Vec<ExportPolicy>,
        cfg: NfsServerConfig,
        metrics: Arc<NfsMetrics>,
    ) -> NfsServer {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut v = (now.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32);
        if v == 0 {
            v = 1;
        }
        NfsServer {
            shared: Arc::new(Shared {
                registry,
                exports: RwLock::new(
                    exports
                        .into_iter()
                        .map(|e| (e.share, Arc::new(e)))
                        .collect(),
                ),
                conns: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(1),
                budget: Arc::new(Semaphore::new(cfg.max_buffered_bytes as usize)),
                logs: Logs::new(&metrics),
                nlm: Arc::new(crate::nlmd::Nlm::new(cfg.locks.clone())),
                cfg,
                metrics,
                drc: Drc::new(8192),
                write_verifier: v.to_be_bytes(),
                mounts: Mutex::new(Vec::new()),
                open: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    /// Replaces every export policy (shares added, edited or removed while serving).
    /// Calls already past their policy check finish under the old policy.
    pub fn set_exports(&self, exports: Vec<ExportPolicy>) {
        let map = exports
            .into_iter()
            .map(|e| (e.share, Arc::new(e)))
            .collect();
        *self.shared.exports.write() = map;
    }

    /// Clients connected right now.
    pub fn clients(&self) -> Vec<ClientInfo> {
        let mut v: Vec<ClientInfo> = self
            .shared
            .conns
            .lock()
            .values()
            .map(|c| ClientInfo {
                addr: c.addr,
                connected_at: c.since,
                calls: c.calls.load(Ordering::Relaxed),
            })
            .collect();
        v.sort_by_key(|c| (c.connected_at, c.addr));
        v
    }

    /// The current write verifier (tests: it must change across restarts).
    pub fn write_verifier(&self) -> [u8; 8] {
        self.shared.write_verifier
    }

    /// Accepts connections until `stop` is cancelled, then waits for every connection to
    /// finish its in-flight calls.
    pub async fn serve(
        self,
        listener: TcpListener,
        stop: CancellationToken,
    ) -> std::io::Result<()> {
        let tracker = TaskTracker::new();
        let nlm = self.shared.nlm.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let port = nlm.client_portmapper_port();
                nlm.nsm.notify_previous(port).await;
            },
            tracing::info_span!("task", name = "sm-notify"),
        ));
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                a = listener.accept() => a,
            };
            let (sock, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning, and say so once in
                    // a while (the counter has every one).
                    self.shared
                        .logs
                        .accept_failed
                        .hit(|| format!("accept failed (backing off {ACCEPT_BACKOFF:?}): {e}"));
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let max = self.shared.cfg.max_connections;
            // Counted at accept (a connection's task registers it later).
            if max > 0 && self.shared.open.load(Ordering::Relaxed) >= max {
                self.shared.logs.too_many_connections.hit(|| {
                    format!("{max} connections open (nfs.max_connections): closing a new one from {peer}")
                });
                drop(sock);
                continue;
            }
            self.shared.open.fetch_add(1, Ordering::Relaxed);
            let _ = sock.set_nodelay(true);
            let shared = self.shared.clone();
            let stop = stop.clone();
            tracker.spawn(tracing::Instrument::instrument(
                async move { connection(shared, sock, peer, stop).await },
                tracing::debug_span!("task", name = "nfs-conn", %peer),
            ));
        }
        drop(listener);
        tracker.close();
        let limit = self.shared.cfg.shutdown_timeout;
        if tokio::time::timeout(limit, tracker.wait()).await.is_err() {
            tracing::warn!(
                connections = tracker.len(),
                "connections still busy {limit:?} after the stop; not waiting for them"
            );
        }
        Ok(())
    }
}

/// Pause after a failed accept (out of descriptors: the backlog would fail again at once).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

async fn connection(
    shared: Arc<Shared>,
    sock: TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
) {
    shared.metrics.connections.inc();
    shared.metrics.connections_total.inc();
    let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let call_count = Arc::new(AtomicU64::new(0));
    shared.conns.lock().insert(
        conn_id,
        ClientConn {
            addr: peer,
            since: std::time::SystemTime::now(),
            calls: call_count.clone(),
        },
    );
    let local = sock.local_addr().ok();
    let (rd, wr) = sock.into_split();
    // Buffered: a record header and a small call arrive in one read, not one each.
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    // Cancelled when the server stops or the client stops taking its replies.
    let closed = stop.child_token();
    let (tx, rx) = mpsc::channel::<(Reply, Reservation)>(shared.cfg.max_inflight_per_connection);
    let writer = tokio::spawn(tracing::Instrument::instrument(
        write_replies(shared.clone(), wr, rx, peer, closed.clone(), stop.clone()),
        tracing::debug_span!("task", name = "nfs-conn-writer"),
    ));
    let budget = Budget::new(
        shared.cfg.max_buffered_bytes_per_connection,
        shared.budget.clone(),
        shared.metrics.buffered_bytes.clone(),
    );
    let slots = Arc::new(Semaphore::new(shared.cfg.max_inflight_per_connection));
    let calls = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            _ = closed.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let rec = tokio::select! {
            _ = closed.cancelled() => break,
            r = read_record(&mut rd, shared.cfg.max_record_bytes) => r,
        };
        let record = match rec {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(RecordError::RecordTooLarge { size, max }) => {
                shared.metrics.rejected_records.inc();
                shared.logs.oversized.hit(|| {
                    format!("oversized record from {peer}: {size} bytes exceed the limit of {max} (nfs.max_record_bytes); closing the connection")
                });
                break;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection read ended");
                break;
            }
        };
        // Room for the record and the largest reply it can get, before it runs.
        let bound = reply_bound(&record);
        let reservation = tokio::select! {
            _ = closed.cancelled() => break,
            r = budget.reserve(record.len() + bound) => match r { Some(r) => r, None => break },
        };
        call_count.fetch_add(1, Ordering::Relaxed);
        let shared2 = shared.clone();
        let tx2 = tx.clone();
        calls.spawn(async move {
            let _permit = permit;
            if let Some(reply) = handle_record(&shared2, peer, local, Bytes::from(record)).await {
                // The record is gone: keep only what the reply holds until it is written.
                let size = reply.iter().map(|b| b.len()).sum();
                let _ = tx2.send((reply, reservation.keep(size))).await;
            }
        });
    }
    calls.close();
    calls.wait().await;
    drop(tx);
    let _ = writer.await;
    shared.conns.lock().remove(&conn_id);
    shared.open.fetch_sub(1, Ordering::Relaxed);
    shared.metrics.connections.dec();
}

/// The writer of a connection: sends the replies that are ready in one `writev`, gives
/// their reservations back once written, and closes the connection (`closed`) when its
/// client takes no byte of them for `reply_timeout` (a client that does not read its
/// replies), or for [`STOPPING_STALL`] once the server stops.
async fn write_replies(
    shared: Arc<Shared>,
    wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<(Reply, Reservation)>,
    peer: SocketAddr,
    closed: CancellationToken,
    stop: CancellationToken,
) {
    let progress = Arc::new(Progress::new());
    let mut wr = Tracked {
        inner: wr,
        progress: progress.clone(),
    };
    let mut batch: Vec<(Reply, Reservation)> = Vec::new();
    while let Some(first) = rx.recv().await {
        // Replies that finished meanwhile go out in the same writev.
        let mut bytes: usize = first.0.iter().map(|b| b.len()).sum();
        batch.push(first);
        while bytes < WRITE_BATCH_BYTES {
            let Ok(more) = rx.try_recv() else { break };
            bytes += more.0.iter().map(|b| b.len()).sum::<usize>();
            batch.push(more);
        }
        let parts: Vec<Vec<&[u8]>> = batch
            .iter()
            .map(|(r, _)| r.iter().map(|b| b.as_ref()).collect())
            .collect();
        let records: Vec<&[&[u8]]> = parts.iter().map(|p| &p[..]).collect();
        progress.touch();
        let res = tokio::select! {
            r = write_records(&mut wr, &records) => Ok(r),
            limit = stalled(&progress, &stop, shared.cfg.reply_timeout) => Err(limit),
        };
        drop(records);
        drop(parts);
        batch.clear();
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write to client failed");
                break;
            }
            Err(limit) => {
                let stopping = if stop.is_cancelled() {
                    " (the server is stopping)"
                } else {
                    ""
                };
                shared.logs.stalled.hit(|| {
                    format!(
                        "client {peer} is not reading its replies (no byte taken for \
                         {limit:?}): closing the connection{stopping}"
                    )
                });
                break;
            }
        }
    }
    closed.cancel();
    // Replies still queued, or sent by calls that finish now, are dropped unsent.
    drop(rx);
    let _ = wr.shutdown().await;
}

/// Resolves once the writes of a connection have made no progress for the limit in
/// force, `reply_timeout` while serving and [`STOPPING_STALL`] once `stop` is cancelled
/// (a stop shortens the wait of a write already under way); returns that limit.
async fn stalled(
    progress: &Progress,
    stop: &CancellationToken,
    reply_timeout: Duration,
) -> Duration {
    loop {
        let stopping = stop.is_cancelled();
        let limit = if stopping {
            STOPPING_STALL.min(reply_timeout)
        } else {
            reply_timeout
        };
        let idle = progress.idle();
        if idle >= limit {
            return limit;
        }
        let wait = tokio::time::sleep(limit - idle);
        if stopping {
            wait.await;
        } else {
            tokio::select! {
                _ = wait => {}
                _ = stop.cancelled() => {}
            }
        }
    }
}

/// When a connection's writes last got bytes onto the socket (or a batch started).
struct Progress {
    base: Instant,
    /// Milliseconds after `base`.
    last: AtomicU64,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            base: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Time since the last progress.
    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last)
    }
}

/// A connection's write half that notes every write that took bytes in [`Progress`].
struct Tracked<W> {
    inner: W,
    progress: Arc<Progress>,
}

impl<W> Tracked<W> {
    fn noted(
        &self,
        r: std::task::Poll<std::io::Result<usize>>,
    ) -> std::task::Poll<std::io::Result<usize>> {
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.progress.touch();
        }
        r
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Tracked<W> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        this.noted(r)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.noted(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The largest reply `record` can get (see [`crate::proc3::reply_bound`]); a few KiB for
/// anything that is not a well-formed NFSv3 call.
fn reply_bound(record: &[u8]) -> usize {
    const SMALL: usize = 4096;
    match RpcCall::decode(record) {
        Ok((c, args)) if (c.prog, c.vers) == (nfs3::PROGRAM, nfs3::VERSION) => {
            nfs3::Nfs3Proc::from_u32(c.proc_num)
                .map_or(SMALL, |p| crate::proc3::reply_bound(p, args))
        }
        _ => SMALL,
    }
}

/// An accepted-but-failed reply (PROC_UNAVAIL, GARBAGE_ARGS, ...) as a dispatch outcome.
pub(crate) fn rpc_error(xid: u32, stat: AcceptStat, name: &'static str) -> Outcome {
    Outcome {
        reply: header_only(|b| encode_accepted(b, xid, stat)),
        error: Some(name),
    }
}

fn header_only(f: impl FnOnce(&mut BytesMut)) -> Reply {
    let mut b = BytesMut::with_capacity(32);
    f(&mut b);
    vec![b.freeze()]
}

/// Decodes one call and produces its reply (None: nothing to send).
pub(crate) async fn handle_record(
    shared: &Shared,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    record: Bytes,
) -> Option<Reply> {
    let (call, args) = match RpcCall::decode(&record) {
        Ok((c, args)) => {
            let off = record.len() - args.len();
            (c, record.slice(off..))
        }
        Err(e) => {
            shared.metrics.rejected_records.inc();
            shared
                .logs
                .garbage
                .hit(|| format!("garbage record from {peer} (not an RPC call): {e}"));
            return match e {
                RpcDecodeError::Garbage { xid: Some(xid), .. } => Some(header_only(|b| {
                    encode_accepted(b, xid, AcceptStat::GarbageArgs)
                })),
                RpcDecodeError::RpcMismatch { xid, .. } => {
                    Some(header_only(|b| encode_rpc_mismatch(b, xid)))
                }
                RpcDecodeError::BadCred { xid, .. } => Some(header_only(|b| {
                    encode_auth_error(b, xid, AuthStat::BadCred)
                })),
                _ => None,
            };
        }
    };
    let xid = call.xid;
    if let Auth::Other(_) = call.cred {
        return Some(header_only(|b| {
            encode_auth_error(b, xid, AuthStat::TooWeak)
        }));
    }
    let (program, procedure, idempotent) = match (call.prog, call.vers) {
        (nfs3::PROGRAM, nfs3::VERSION) => match nfs3::Nfs3Proc::from_u32(call.proc_num) {
            Some(p) => (
                "nfs3",
                crate::proc3::proc_name(p),
                crate::proc3::is_idempotent(p),
            ),
            None => {
                return Some(header_only(|b| {
                    encode_accepted(b, xid, AcceptStat::ProcUnavail)
                }));
            }
        },
        (nfs3::PROGRAM, _) => {
            return Some(header_only(|b| {
                encode_accepted(b, xid, AcceptStat::ProgMismatch { low: 3, high: 3 })
            }));
        }
        (mount3::PROGRAM, mount3::VERSION) => match mount3::MountProc::from_u32(call.proc_num) {
            Some(p) => ("mount3", crate::mountd::proc_name(p), true),
            None => {
                return Some(header_only(|b| {
                    encode_accepted(b, xid, AcceptStat::ProcUnavail)
                }));
            }
        },
        (mount3::PROGRAM, _) => {
            return Some(header_only(|b| {
                encode_accepted(b, xid, AcceptStat::ProgMismatch { low: 3, high: 3 })
            }));
        }
        (nlm4::PROGRAM, nlm4::VERSION) => match nlm4::NlmProc::from_u32(call.proc_num) {
            // No duplicate request cache: NLM calls are safe to repeat (a retransmitted
            // LOCK of the same owner is granted or blocked again).
            Some(p) => ("nlm4", crate::nlmd::proc_name(p), true),
            None => {
                return Some(header_only(|b| {
                    encode_accepted(b, xid, AcceptStat::ProcUnavail)
                }));
            }
        },
        (nlm4::PROGRAM, _) => {
            return Some(header_only(|b| {
                encode_accepted(b, xid, AcceptStat::ProgMismatch { low: 4, high: 4 })
            }));
        }
        (nsm1::PROGRAM, nsm1::VERSION) => match nsm1::NsmProc::from_u32(call.proc_num) {
            Some(p) => ("nsm1", crate::nsmd::proc_name(p), true),
            None => {
                return Some(header_only(|b| {
                    encode_accepted(b, xid, AcceptStat::ProcUnavail)
                }));
            }
        },
        (nsm1::PROGRAM, _) => {
            return Some(header_only(|b| {
                encode_accepted(b, xid, AcceptStat::ProgMismatch { low: 1, high: 1 })
            }));
        }
        _ => {
            return Some(header_only(|b| {
                encode_accepted(b, xid, AcceptStat::ProgUnavail)
            }));
        }
    };
    let drc_key = if idempotent {
        None
    } else {
        Some(DrcKey::new(peer.ip(), &call, &args))
    };
    if let Some(k) = &drc_key {
        match shared.drc.begin(k) {
            DrcState::New => {}
            DrcState::InProgress => return None,
            DrcState::Done(reply) => return Some(reply),
        }
    }
    let started = Instant::now();
    let ctx = CallCtx {
        client: peer,
        local,
        auth: call.cred.clone(),
    };
    let outcome = match program {
        "nfs3" => crate::proc3::dispatch(shared, &ctx, &call, args).await,
        "nlm4" => crate::nlmd::dispatch(shared, &ctx, &call, args).await,
        "nsm1" => crate::nsmd::dispatch(shared, &ctx, &call, args).await,
        _ => crate::mountd::dispatch(shared, &ctx, &call, args).await,
    };
    let labels = ProcLabels { program, procedure };
    shared.metrics.requests.get_or_create(&labels).inc();
    shared
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    if let Some(status) = outcome.error {
        shared
            .metrics
            .errors
            .get_or_create(&ErrorLabels {
                program,
                procedure,
                status,
            })
            .inc();
    }
    if let Some(k) = drc_key {
        shared.drc.finish(k, &outcome.reply);
    }
    Some(outcome.reply)
}

/// What a dispatcher returns: the reply and, for metrics, the error status name if any.
pub(crate) struct Outcome {
    pub(crate) reply: Reply,
    pub(crate) error: Option<&'static str>,
}

// ---- duplicate request cache ------------------------------------------------------------

#[derive(Clone, PartialEq, Eq, Hash)]
struct DrcKey {
    client: IpAddr,
    xid: u32,
    prog: u32,
    proc_num: u32,
    args_hash: u64,
}

impl DrcKey {
    fn new(client: IpAddr, call: &RpcCall, args: &[u8]) -> DrcKey {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        args.hash(&mut h);
        DrcKey {
            client,
            xid: call.xid,
            prog: call.prog,
            proc_num: call.proc_num,
            args_hash: h.finish(),
        }
    }
}

enum DrcState {
    New,
    InProgress,
    Done(Reply),
}

enum DrcEntry {
    InProgress,
    Done(Reply),
}

/// Bounded cache of non-idempotent calls and their replies (oldest evicted first).
struct Drc {
    cap: usize,
    inner: Mutex<(HashMap<DrcKey, DrcEntry>, VecDeque<DrcKey>)>,
}

impl Drc {
    fn new(cap: usize) -> Drc {
        Drc {
            cap,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn begin(&self, k: &DrcKey) -> DrcState {
        let mut g = self.inner.lock();
        let (map, order) = &mut *g;
        match map.get(k) {
            Some(DrcEntry::InProgress) => return DrcState::InProgress,
            Some(DrcEntry::Done(r)) => return DrcState::Done(r.clone()),
            None => {}
        }
        map.insert(k.clone(), DrcEntry::InProgress);
        order.push_back(k.clone());
        while order.len() > self.cap {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        DrcState::New
    }

    fn finish(&self, k: DrcKey, reply: &Reply) {
        let mut g = self.inner.lock();
        if let Some(e) = g.0.get_mut(&k) {
            *e = DrcEntry::Done(reply.clone());
        }
    }
}
