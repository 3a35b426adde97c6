//! One RPC call as the program handlers (MOUNT, NFSv3, NLM, NSM) see it: who called
//! ([`CallCtx`]: client and server address, credentials) and what goes back ([`Outcome`]:
//! the reply's record parts and, for metrics, the error status name). RFC 5531 section 9.
//!
//! Every accepted reply of every handler is built here: [`success`] (header + result) and
//! [`rpc_error`] (an accepted call that failed at the RPC level: PROC_UNAVAIL,
//! GARBAGE_ARGS, ...), so the header is written in one place.

use crate::rpc::{AcceptStat, Auth, encode_accepted, encode_success};
use crate::xdr::XdrEncode;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;

/// A reply: record parts written as one record (lets READ data go out without a copy).
pub(crate) type Reply = Vec<Bytes>;

/// Per-call context handed to the handlers.
pub(crate) struct CallCtx {
    pub(crate) client: SocketAddr,
    /// The server address the client connected to (None when unknown).
    pub(crate) local: Option<SocketAddr>,
    pub(crate) auth: Auth,
    /// The connection the call came on, as a path for callbacks (NFSv4.1 backchannel).
    pub(crate) conn: Option<std::sync::Arc<crate::backchannel::ConnHandle>>,
}

/// What a dispatcher returns: the reply and, for metrics, the error status name if any.
pub(crate) struct Outcome {
    pub(crate) reply: Reply,
    pub(crate) error: Option<&'static str>,
}

impl Outcome {
    /// A successful RPC reply carrying `res`; `error` names a failed procedure-level
    /// status for the metrics (`None`: the procedure succeeded).
    pub(crate) fn reply(xid: u32, res: &impl XdrEncode, error: Option<&'static str>) -> Outcome {
        Outcome {
            reply: success(xid, res),
            error,
        }
    }

    /// A successful RPC reply carrying `res`, counted as a success.
    pub(crate) fn ok(xid: u32, res: &impl XdrEncode) -> Outcome {
        Outcome::reply(xid, res, None)
    }
}

/// An accepted, successful reply: the RPC header, then `res`.
pub(crate) fn success(xid: u32, res: &impl XdrEncode) -> Reply {
    let mut b = BytesMut::with_capacity(256);
    encode_success(&mut b, xid);
    res.encode(&mut b);
    vec![b.freeze()]
}

/// An accepted-but-failed reply (PROC_UNAVAIL, GARBAGE_ARGS, ...) as a dispatch outcome.
pub(crate) fn rpc_error(xid: u32, stat: AcceptStat, name: &'static str) -> Outcome {
    Outcome {
        reply: header_only(|b| encode_accepted(b, xid, stat)),
        error: Some(name),
    }
}

/// GARBAGE_ARGS: the arguments do not decode.
pub(crate) fn garbage_args(xid: u32) -> Outcome {
    rpc_error(xid, AcceptStat::GarbageArgs, "GARBAGE_ARGS")
}

/// A reply of the RPC header alone, written by `f`.
pub(crate) fn header_only(f: impl FnOnce(&mut BytesMut)) -> Reply {
    let mut b = BytesMut::with_capacity(32);
    f(&mut b);
    vec![b.freeze()]
}
