//! The NFSv4.1 backchannel on the fore connection (RFC 8881 section 2.10.3.1): calls
//! the server makes to a client (CB_COMPOUND, RFC 8881 section 20: CB_SEQUENCE 20.9
//! first, then CB_RECALL 20.2 or CB_NOTIFY_LOCK 20.11; codec `nfs4::callback`) go out
//! on a TCP connection the client calls the server on, and the client's replies come
//! back on it among its calls.
//!
//! - [`ConnHandle`]: one client connection as a path for outgoing calls. The connection
//!   loop (`server`) hands every record whose message type is REPLY to
//!   [`ConnHandle::deliver`], which routes it by xid to the waiting caller; a reply
//!   nobody waits for is dropped and counted (`nfs4_cb_unexpected_replies`).
//! - [`BackChan`]: a session's back channel: the connection (weak: a closed
//!   connection is simply no back channel), the callback program, the credentials from
//!   `csa_sec_parms` (AUTH_SYS or AUTH_NONE; RPCSEC_GSS is not offered, so a client
//!   that asks only for it has no usable back channel) and one slot (slot 0, which
//!   every `ca_maxrequests` allows): one CB_COMPOUND at a time per session.
//! - NFSv4.0 (RFC 7530 sections 3.3.3, 10.2.1, 16.2) has no back channel on the fore
//!   connection: `cb40` dials the client's callback address and makes that outgoing
//!   connection a [`ConnHandle`] too (its reader delivers the replies), and a 4.0
//!   [`BackChan`] ([`BackChan::outgoing`]) sends CB_COMPOUND with minor version 0, the
//!   client's `callback_ident` and no CB_SEQUENCE; [`ConnHandle::null`] is the CB_NULL
//!   that probes such a path. The delegation table sees no difference.
//!
//! Invariants: every call is bounded by a timeout (a client that never answers costs a
//! timeout, not a stuck task); at most [`MAX_PENDING`] calls wait on one connection;
//! calls draw on the connection's reply budget like replies do.

use crate::budget::{Budget, Reservation};
use crate::metrics::NfsMetrics;
use crate::nfs4::callback::*;
use crate::nfs4::io::StateOwner4;
use crate::nfs4::types::{Fh4, List, Opaque4, SessionId4, Stateid4};
use crate::rpc::{AcceptStat, Auth, OpaqueAuth, ReplyStat, RpcCall, RpcReply};
use crate::xdr::{Decoder, XdrEncode, XdrError};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The most outgoing calls waiting for their reply on one connection.
pub(crate) const MAX_PENDING: usize = 16;
/// How long a callback may take (send and reply).
pub(crate) const CB_TIMEOUT: Duration = Duration::from_secs(10);
/// CB_NULL's procedure number (program `cb_program`, version 1): the NFSv4.0 callback
/// path's probe.
const CB_NULL: u32 = 0;

static NEXT_XID: AtomicU32 = AtomicU32::new(0x6362_0000);

/// Why a callback failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CbError {
    #[error("the client has no usable back channel")]
    NoBackChannel,
    #[error("{MAX_PENDING} callbacks already wait on the connection")]
    TooManyPending,
    #[error("the connection closed before the reply")]
    Closed,
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("malformed callback reply: {0}")]
    Decode(#[source] XdrError),
    #[error("the client refused the callback: {0:?}")]
    Refused(ReplyStat),
    #[error("CB_COMPOUND failed with status {0}")]
    Status(u32),
}

/// Whether a record is an RPC reply (message type 1) rather than a call.
pub(crate) fn is_reply(record: &[u8]) -> bool {
    record.get(4..8) == Some(&[0, 0, 0, 1][..])
}

/// The NFSv4.0 client IDs a connection's COMPOUNDs named so far. A 4.0 COMPOUND has no
/// session; `proc4::cb40` attributes an operation that names no client to the one client
/// seen on its connection, and to none once several were.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ConnClient {
    #[default]
    Unknown,
    One(u64),
    Several,
}

impl ConnClient {
    /// After a COMPOUND on the connection named client `id`.
    pub(crate) fn named(self, id: u64) -> ConnClient {
        match self {
            ConnClient::Unknown => ConnClient::One(id),
            ConnClient::One(c) if c == id => self,
            _ => ConnClient::Several,
        }
    }
}

/// One client connection as a path for outgoing calls.
pub(crate) struct ConnHandle {
    tx: mpsc::Sender<(Vec<Bytes>, Reservation)>,
    budget: Budget,
    pending: Mutex<HashMap<u32, oneshot::Sender<Bytes>>>,
    closed: CancellationToken,
    metrics: Arc<NfsMetrics>,
    /// The NFSv4.0 clients seen on this connection (`proc4::cb40`).
    pub(crate) client40: Mutex<ConnClient>,
}

impl ConnHandle {
    pub(crate) fn new(
        tx: mpsc::Sender<(Vec<Bytes>, Reservation)>,
        budget: Budget,
        closed: CancellationToken,
        metrics: Arc<NfsMetrics>,
    ) -> ConnHandle {
        ConnHandle {
            tx,
            budget,
            pending: Mutex::new(HashMap::new()),
            closed,
            metrics,
            client40: Mutex::new(ConnClient::Unknown),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled() || self.tx.is_closed()
    }

    /// Hands a REPLY record to the call waiting for its xid; one nobody waits for is
    /// dropped and counted.
    pub(crate) fn deliver(&self, record: Bytes) {
        let xid = record
            .get(0..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let waiter = xid.and_then(|x| self.pending.lock().remove(&x));
        match waiter {
            Some(w) => {
                let _ = w.send(record);
            }
            None => {
                self.metrics.cb_unexpected_replies.inc();
            }
        }
    }

    /// CB_NULL to `program` (the NFSv4.0 callback path's probe): Ok when the client
    /// answered it.
    pub(crate) async fn null(&self, program: u32, cred: Auth) -> Result<(), CbError> {
        let header = RpcCall {
            xid: NEXT_XID.fetch_add(1, Ordering::Relaxed),
            prog: program,
            vers: 1,
            proc_num: CB_NULL,
            cred,
            verf: OpaqueAuth::none(),
        };
        self.call(header, &[], CB_TIMEOUT).await.map(|_| ())
    }

    /// Sends the call `header` + `args` and waits (at most `timeout`) for its reply;
    /// returns the reply's results.
    async fn call(
        &self,
        header: RpcCall,
        args: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, CbError> {
        let xid = header.xid;
        let (wtx, wrx) = oneshot::channel();
        {
            let mut p = self.pending.lock();
            if p.len() >= MAX_PENDING {
                return Err(CbError::TooManyPending);
            }
            p.insert(xid, wtx);
        }
        let r = tokio::time::timeout(timeout, self.send_and_wait(header, args, wrx)).await;
        self.pending.lock().remove(&xid);
        let record = r.map_err(|_| CbError::Timeout(timeout))??;
        let (reply, rest) = RpcReply::decode(&record).map_err(CbError::Decode)?;
        if reply.stat != ReplyStat::Accepted(AcceptStat::Success) {
            return Err(CbError::Refused(reply.stat));
        }
        let off = record.len() - rest.len();
        Ok(record.slice(off..))
    }

    async fn send_and_wait(
        &self,
        header: RpcCall,
        args: &[u8],
        wrx: oneshot::Receiver<Bytes>,
    ) -> Result<Bytes, CbError> {
        let mut msg = Vec::with_capacity(128 + args.len());
        header.encode(&mut msg);
        msg.extend_from_slice(args);
        let reservation = self
            .budget
            .reserve(msg.len())
            .await
            .ok_or(CbError::Closed)?;
        self.tx
            .send((vec![Bytes::from(msg)], reservation))
            .await
            .map_err(|_| CbError::Closed)?;
        tokio::select! {
            r = wrx => r.map_err(|_| CbError::Closed),
            _ = self.closed.cancelled() => Err(CbError::Closed),
        }
    }
}

/// A session's back channel.
pub(crate) struct BackChan {
    conn: Mutex<Weak<ConnHandle>>,
    program: Mutex<(u32, Auth)>,
    sessionid: SessionId4,
    minor: u32,
    /// Slot 0's last sequence ID; held for the whole call (one call at a time).
    slot: tokio::sync::Mutex<u32>,
    /// NFSv4.0: SETCLIENTID's `callback_ident`, and what stops the path's connection
    /// when the channel goes.
    ident: u32,
    _stop: Option<DropGuard>,
}

/// `program`'s credentials from `csa_sec_parms`: AUTH_SYS or AUTH_NONE (None: neither
/// was offered).
pub(crate) fn cb_cred(parms: &[crate::nfs4::session::CallbackSecParms4]) -> Option<Auth> {
    use crate::nfs4::session::CallbackSecParms4 as P;
    parms.iter().find_map(|p| match p {
        P::None => Some(Auth::None),
        P::Sys(s) => Some(Auth::Sys {
            stamp: s.stamp,
            machine: s.machinename.0.clone(),
            uid: s.uid,
            gid: s.gid,
            gids: s.gids.0.clone(),
        }),
        P::Gss { .. } => None,
    })
}

impl BackChan {
    /// A back channel on `conn` (None: no connection bound for callbacks yet).
    pub(crate) fn new(
        conn: Option<&Arc<ConnHandle>>,
        program: u32,
        cred: Auth,
        sessionid: SessionId4,
        minor: u32,
    ) -> BackChan {
        BackChan {
            conn: Mutex::new(conn.map(Arc::downgrade).unwrap_or_default()),
            program: Mutex::new((program, cred)),
            sessionid,
            minor,
            slot: tokio::sync::Mutex::new(0),
            ident: 0,
            _stop: None,
        }
    }

    /// An NFSv4.0 client's callback path (not connected yet, see `cb40`), in the table
    /// under `key`; dropping it cancels `stop`.
    pub(crate) fn outgoing(
        (program, cred): (u32, Auth),
        key: SessionId4,
        ident: u32,
        stop: CancellationToken,
    ) -> BackChan {
        BackChan {
            ident,
            _stop: Some(stop.drop_guard()),
            ..BackChan::new(None, program, cred, key, 0)
        }
    }

    /// BIND_CONN_TO_SESSION for the back direction: calls go out on `conn` now.
    pub(crate) fn rebind(&self, conn: &Arc<ConnHandle>) {
        *self.conn.lock() = Arc::downgrade(conn);
    }

    /// BACKCHANNEL_CTL: a new program and credentials.
    pub(crate) fn set_program(&self, program: u32, cred: Auth) {
        *self.program.lock() = (program, cred);
    }

    /// Whether the connection is still there.
    pub(crate) fn usable(&self) -> bool {
        self.conn.lock().upgrade().is_some_and(|c| !c.is_closed())
    }

    /// CB_COMPOUND { CB_SEQUENCE (not in 4.0), CB_RECALL(stateid, truncate false, fh) }.
    pub(crate) async fn recall(&self, stateid: &Stateid4, fh: &[u8]) -> Result<(), CbError> {
        self.compound(CbOp::Recall(CbRecallArgs {
            stateid: stateid.clone(),
            truncate: false,
            fh: Fh4(fh.to_vec()),
        }))
        .await
    }

    /// CB_COMPOUND { CB_SEQUENCE, CB_NOTIFY_LOCK(fh, lock owner `clientid`/`owner`) }.
    pub(crate) async fn notify_lock(
        &self,
        fh: &[u8],
        clientid: u64,
        owner: &[u8],
    ) -> Result<(), CbError> {
        self.compound(CbOp::NotifyLock(CbNotifyLockArgs {
            fh: Fh4(fh.to_vec()),
            lock_owner: StateOwner4 {
                clientid,
                owner: Opaque4(owner.to_vec()),
            },
        }))
        .await
    }

    /// Runs one CB_COMPOUND of CB_SEQUENCE (not in 4.0) and `op`.
    async fn compound(&self, op: CbOp) -> Result<(), CbError> {
        let conn = self.conn.lock().upgrade().ok_or(CbError::NoBackChannel)?;
        let mut seq = self.slot.lock().await;
        let next = seq.wrapping_add(1);
        let args = self.compound_args(op, next).to_xdr();
        let (program, cred) = self.program.lock().clone();
        let header = RpcCall {
            xid: NEXT_XID.fetch_add(1, Ordering::Relaxed),
            prog: program,
            vers: 1,
            proc_num: CB_COMPOUND,
            cred,
            verf: OpaqueAuth::none(),
        };
        let res = conn.call(header, &args, CB_TIMEOUT).await;
        // The slot is used once the client may have seen the call.
        if !matches!(res, Err(CbError::TooManyPending | CbError::NoBackChannel)) {
            *seq = next;
        }
        let status = Decoder::new(&res?).u32().map_err(CbError::Decode)?;
        if status != 0 {
            return Err(CbError::Status(status));
        }
        Ok(())
    }

    /// CB_COMPOUND4args: tag, minor version, `callback_ident` (NFSv4.0's; 0 in 4.1),
    /// CB_SEQUENCE with slot 0's sequence ID `next` (not in 4.0), then `op`.
    fn compound_args(&self, op: CbOp, next: u32) -> CbCompoundArgs {
        let mut ops = Vec::with_capacity(2);
        if self.minor > 0 {
            ops.push(CbOp::Sequence(CbSequenceArgs {
                sessionid: self.sessionid,
                sequenceid: next,
                slotid: 0,
                highest_slotid: 0,
                cachethis: false,
                referring_call_lists: List(Vec::new()),
            }));
        }
        ops.push(op);
        CbCompoundArgs {
            tag: Opaque4(Vec::new()),
            minorversion: self.minor,
            callback_ident: self.ident,
            ops: List(ops),
        }
    }
}
