//! The connection of an NFSv4.0 client's callback path (RFC 7530 sections 3.3.3,
//! 10.2.1, 16.1 CB_NULL): NFSv4.0 has no back channel on the client's own connection,
//! so the server dials the address the client gave in SETCLIENTID and calls its
//! callback program (`cb_program`, version 1) there.
//!
//! - [`dial`] connects (at most [`CONNECT_TIMEOUT`]) and makes the connection a
//!   `backchannel::ConnHandle`: a writer task sends the calls queued on it (each write
//!   bounded by `CB_TIMEOUT`: a client that takes nothing loses the connection), a reader
//!   task hands the replies to `ConnHandle::deliver`, matched by xid (records up to
//!   [`MAX_REPLY`]; calls from the client on this connection are not served and are
//!   dropped). Either task ending closes the link; dropping the [`Link`] closes it too.
//! - [`maintain`] is the life of one client's path: dial, then CB_NULL; only once the
//!   client answered it is the connection bound to the client's `BackChan` (which then
//!   is usable, so delegations may be granted). When a working connection drops, it is
//!   dialled and probed again after a pause ([`FIRST_PAUSE`] doubling to [`MAX_PAUSE`],
//!   back to the first after a successful probe). A path whose first probe fails is
//!   given up (no delegations until the client's next SETCLIENTID). The task ends when
//!   `stop` is cancelled, which the `BackChan` does when it is dropped (its client went,
//!   or a new SETCLIENTID_CONFIRM replaced it), and it holds the channel only weakly.
//!
//! Invariants: the server connects only to the one address the client gave (checked
//! by `uaddr::dialable` before this module sees it), never from a request's task (the
//! path is made in the background), with every connect, write and call bounded by a
//! timeout; at most one connection per client path exists at a time.

use crate::backchannel::{BackChan, CB_TIMEOUT, CbError, ConnHandle, is_reply};
use crate::budget::{Budget, Reservation};
use crate::metrics::NfsMetrics;
use crate::record::{read_record, write_record_parts};
use crate::rpc::Auth;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// How long a connect to a callback address may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest record read from a callback connection.
pub(crate) const MAX_REPLY: usize = 64 * 1024;
/// The pause before the first redial of a dropped path, and the longest one.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_secs(1);
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(60);
/// A link's share of the buffer budget (callbacks are a few hundred bytes each).
const LINK_BUDGET: u32 = 256 * 1024;

/// The callback path an NFSv4.0 client offered in SETCLIENTID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Callback {
    pub(crate) addr: SocketAddr,
    pub(crate) program: u32,
    pub(crate) ident: u32,
}

/// What links draw on: the server's buffer budget and metrics.
#[derive(Clone)]
pub(crate) struct LinkEnv {
    pub(crate) global: Arc<Semaphore>,
    pub(crate) metrics: Arc<NfsMetrics>,
}

/// Why a path could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("connecting to {addr} failed: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {0} took longer than {CONNECT_TIMEOUT:?}")]
    ConnectTimeout(SocketAddr),
    #[error("CB_NULL to {addr} failed: {source}")]
    Probe {
        addr: SocketAddr,
        #[source]
        source: CbError,
    },
}

/// One outgoing callback connection; closed when dropped.
pub(crate) struct Link {
    pub(crate) handle: Arc<ConnHandle>,
    pub(crate) closed: CancellationToken,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

/// Connects to `addr` and serves the connection as a [`ConnHandle`].
pub(crate) async fn dial(addr: SocketAddr, env: &LinkEnv) -> Result<Link, LinkError> {
    let sock = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| LinkError::ConnectTimeout(addr))?
        .map_err(|source| LinkError::Connect { addr, source })?;
    let _ = sock.set_nodelay(true);
    let (rd, wr) = sock.into_split();
    let closed = CancellationToken::new();
    let (tx, rx) = mpsc::channel(crate::backchannel::MAX_PENDING);
    let budget = Budget::new(
        LINK_BUDGET,
        env.global.clone(),
        env.metrics.buffered_bytes.clone(),
    );
    let handle = Arc::new(ConnHandle::new(
        tx,
        budget,
        closed.clone(),
        env.metrics.clone(),
    ));
    tokio::spawn(write_calls(wr, rx, closed.clone()));
    tokio::spawn(read_replies(rd, Arc::downgrade(&handle), closed.clone()));
    Ok(Link { handle, closed })
}

/// Sends the queued calls until the link closes or a write does not finish in time.
async fn write_calls(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<(Vec<Bytes>, Reservation)>,
    closed: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            _ = closed.cancelled() => break,
            m = rx.recv() => m,
        };
        let Some((parts, _reservation)) = next else {
            break;
        };
        let parts: Vec<&[u8]> = parts.iter().map(|b| b.as_ref()).collect();
        let written = tokio::time::timeout(CB_TIMEOUT, write_record_parts(&mut wr, &parts)).await;
        if !matches!(written, Ok(Ok(()))) {
            break;
        }
    }
    closed.cancel();
    let _ = tokio::time::timeout(CONNECT_TIMEOUT, wr.shutdown()).await;
}

/// Hands the replies read to `handle` until the link closes or the client does.
async fn read_replies(rd: OwnedReadHalf, handle: Weak<ConnHandle>, closed: CancellationToken) {
    let mut rd = BufReader::new(rd);
    loop {
        let rec = tokio::select! {
            _ = closed.cancelled() => break,
            r = read_record(&mut rd, MAX_REPLY) => r,
        };
        let Ok(Some(rec)) = rec else {
            break;
        };
        if !is_reply(&rec) {
            continue;
        }
        match handle.upgrade() {
            Some(h) => h.deliver(Bytes::from(rec)),
            None => break,
        }
    }
    closed.cancel();
}

/// Dials `cb` and probes it with CB_NULL.
async fn connect_and_probe(cb: &Callback, cred: &Auth, env: &LinkEnv) -> Result<Link, LinkError> {
    let link = dial(cb.addr, env).await?;
    match link.handle.null(cb.program, cred.clone()).await {
        Ok(()) => Ok(link),
        Err(source) => Err(LinkError::Probe {
            addr: cb.addr,
            source,
        }),
    }
}

/// Makes and keeps `chan`'s path to `cb` until `stop` (see the module header).
pub(crate) async fn maintain(
    cb: Callback,
    cred: Auth,
    chan: Weak<BackChan>,
    stop: CancellationToken,
    env: LinkEnv,
) {
    let mut pause = FIRST_PAUSE;
    let mut was_up = false;
    loop {
        let made = tokio::select! {
            _ = stop.cancelled() => return,
            r = connect_and_probe(&cb, &cred, &env) => r,
        };
        match made {
            Ok(link) => {
                env.metrics.cb_probes_answered.inc();
                let Some(c) = chan.upgrade() else {
                    return;
                };
                c.rebind(&link.handle);
                drop(c);
                (was_up, pause) = (true, FIRST_PAUSE);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = link.closed.cancelled() => {}
                }
                tracing::debug!(addr = %cb.addr, "NFSv4.0 callback connection closed; dialling again");
            }
            Err(e) => {
                env.metrics.cb_probes_failed.inc();
                tracing::debug!(error = %e, "NFSv4.0 callback path not usable");
                if !was_up {
                    return;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::write_record;
    use crate::rpc::{AcceptStat, RpcCall, encode_accepted, encode_success};
    use tokio::net::TcpListener;

    fn env() -> LinkEnv {
        let mut registry = prometheus_client::registry::Registry::default();
        LinkEnv {
            global: Arc::new(Semaphore::new(1 << 20)),
            metrics: Arc::new(NfsMetrics::new(&mut registry)),
        }
    }

    /// A path to a local listener: its channel, the listener, the metrics.
    async fn path() -> (Arc<BackChan>, TcpListener, LinkEnv) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cb = Callback {
            addr: listener.local_addr().unwrap(),
            program: 0x4000_0007,
            ident: 5,
        };
        let stop = CancellationToken::new();
        let key = [1; 16];
        let chan = Arc::new(BackChan::outgoing(
            (cb.program, Auth::None),
            key,
            5,
            stop.clone(),
        ));
        let env = env();
        let task = maintain(cb, Auth::None, Arc::downgrade(&chan), stop, env.clone());
        tokio::spawn(task);
        (chan, listener, env)
    }

    /// Reads the CB_NULL on `sock`: its xid.
    async fn cb_null(sock: &mut TcpStream) -> u32 {
        let rec = read_record(sock, 4096).await.unwrap().expect("CB_NULL");
        let (call, args) = RpcCall::decode(&rec).unwrap();
        assert_eq!((call.prog, call.vers, call.proc_num), (0x4000_0007, 1, 0));
        assert!(args.is_empty());
        call.xid
    }

    async fn eventually(what: &str, f: impl Fn() -> bool) {
        for _ in 0..500 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never: {what}");
    }

    #[tokio::test]
    async fn usable_once_cb_null_is_answered_and_closed_with_the_channel() {
        let (chan, listener, env) = path().await;
        let (mut sock, _) = listener.accept().await.unwrap();
        let xid = cb_null(&mut sock).await;
        assert!(!chan.usable(), "not before the answer");
        let mut m = Vec::new();
        encode_success(&mut m, xid);
        write_record(&mut sock, &m).await.unwrap();
        eventually("usable", || chan.usable()).await;
        assert_eq!(env.metrics.cb_probes_answered.get(), 1);
        drop(chan);
        let end = tokio::time::timeout(Duration::from_secs(5), read_record(&mut sock, 4096)).await;
        assert!(
            matches!(end, Ok(Ok(None))),
            "the connection closes with its channel"
        );
    }

    #[tokio::test]
    async fn a_refused_probe_is_no_path_and_not_retried() {
        let (chan, listener, env) = path().await;
        let (mut sock, _) = listener.accept().await.unwrap();
        let xid = cb_null(&mut sock).await;
        let mut m = Vec::new();
        encode_accepted(&mut m, xid, AcceptStat::ProgUnavail);
        write_record(&mut sock, &m).await.unwrap();
        eventually("the failure counted", || {
            env.metrics.cb_probes_failed.get() == 1
        })
        .await;
        let end = tokio::time::timeout(Duration::from_secs(5), read_record(&mut sock, 4096)).await;
        assert!(matches!(end, Ok(Ok(None))), "the connection is closed");
        let again = tokio::time::timeout(FIRST_PAUSE * 2, listener.accept()).await;
        assert!(again.is_err(), "a failed first probe is not retried");
        assert!(!chan.usable());
    }

    #[tokio::test]
    async fn a_dropped_connection_is_made_again() {
        let (chan, listener, _env) = path().await;
        for _ in 0..2 {
            let (mut sock, _) = listener.accept().await.unwrap();
            let xid = cb_null(&mut sock).await;
            let mut m = Vec::new();
            encode_success(&mut m, xid);
            write_record(&mut sock, &m).await.unwrap();
            eventually("usable", || chan.usable()).await;
            drop(sock);
            eventually("down", || !chan.usable()).await;
        }
    }
}
