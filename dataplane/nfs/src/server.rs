//! The NFS server: TCP listener and the per-connection record loop with bounded
//! concurrency (RFC 5531 section 11; NFS program 100003 v3, MOUNT program 100005 v3, NLM
//! program 100021 v4 and NSM program 100024 v1 on one port). What one record becomes is
//! `dispatch` (call decoding, program routing, the duplicate request cache in `drc`);
//! the state every call shares is `shared`, the settings `config`.
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
//!   failed accepts) is counted every time and logged a few times (`dittofs_vfs::ratelimit`).

use crate::backchannel::{ConnHandle, is_reply};
use crate::budget::{Budget, Reservation};
use crate::call::Reply;
pub use crate::config::{Nfs4Config, NfsServerConfig, NlmConfig};
use crate::dispatch::{handle_record, reply_bound};
use crate::export::ExportPolicy;
use crate::metrics::NfsMetrics;
use crate::record::{RecordError, read_record, write_records};
use crate::shared::{ClientConn, Shared};
use bytes::Bytes;
use dittofs_vfs::{IdNames, ShareRegistry};
use std::net::SocketAddr;
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

/// The smallest per-connection budget that lets the largest record and the largest
/// reply through.
pub fn min_buffered_bytes_per_connection(max_record_bytes: usize) -> usize {
    max_record_bytes + crate::proc3::MAX_IO as usize + 8192
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

impl NfsServer {
    pub fn new(
        registry: Arc<ShareRegistry>,
        exports: Vec<ExportPolicy>,
        cfg: NfsServerConfig,
        metrics: Arc<NfsMetrics>,
    ) -> NfsServer {
        NfsServer {
            shared: Arc::new(Shared::new(registry, exports, cfg, metrics)),
        }
    }

    /// Replaces every export policy (shares added, edited or removed while serving).
    /// Calls already past their policy check finish under the old policy.
    pub fn set_exports(&self, exports: Vec<ExportPolicy>) {
        self.shared.set_exports(exports);
    }

    /// Replaces the names of user and group ids NFSv4 owner strings are made from and
    /// read by (`nfs.v4.id_domain`); the control plane calls it at start and after every
    /// change of its users or groups.
    pub fn set_id_names(&self, names: Arc<IdNames>) {
        self.shared.set_id_names(names);
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

    /// Runs one RPC call record (without its record marking) as if `peer` had sent it,
    /// and returns the reply's parts (None: nothing to send). No connection, budget or
    /// deadline: for the fuzz target (`fuzz/`), which drives the dispatcher in process.
    #[doc(hidden)]
    pub async fn handle_record(&self, peer: SocketAddr, record: Bytes) -> Option<Vec<Bytes>> {
        handle_record(&self.shared, peer, None, None, record).await
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
        let recalls = tokio::spawn(tracing::Instrument::instrument(
            crate::proc4::recall::run_recalls(self.shared.clone()),
            tracing::info_span!("task", name = "nfs4-recalls"),
        ));
        let notifies = tokio::spawn(tracing::Instrument::instrument(
            crate::proc4::notify::run_notifies(self.shared.clone()),
            tracing::info_span!("task", name = "nfs4-lock-notifies"),
        ));
        let until = self.shared.nlm.grace_until();
        self.shared.grace.load(&self.shared.registry, until).await;
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
        recalls.abort();
        notifies.abort();
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
    let handle = Arc::new(ConnHandle::new(
        tx.clone(),
        budget.clone(),
        closed.clone(),
        shared.metrics.clone(),
    ));
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
        let record = Bytes::from(record);
        if is_reply(&record) {
            // A client's answer to a callback (NFSv4.1 backchannel).
            handle.deliver(record);
            continue;
        }
        // Room for the record and the largest reply it can get, before it runs.
        let bound = reply_bound(&record);
        let reservation = tokio::select! {
            _ = closed.cancelled() => break,
            r = budget.reserve(record.len() + bound) => match r { Some(r) => r, None => break },
        };
        call_count.fetch_add(1, Ordering::Relaxed);
        let shared2 = shared.clone();
        let tx2 = tx.clone();
        let conn = Some(handle.clone());
        calls.spawn(async move {
            let _permit = permit;
            if let Some(reply) = handle_record(&shared2, peer, local, conn, record).await {
                // The record is gone: keep only what the reply holds until it is written.
                let size = reply.iter().map(|b| b.len()).sum();
                let _ = tx2.send((reply, reservation.keep(size))).await;
            }
        });
    }
    calls.close();
    calls.wait().await;
    // The handle holds a sender: the writer ends once sessions let go of it too.
    closed.cancel();
    drop(handle);
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
