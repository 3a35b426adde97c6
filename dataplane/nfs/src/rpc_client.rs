//! A small outgoing ONC RPC client over TCP (RFC 5531, record marking section 11) for
//! the server's callbacks to clients: portmapper GETPORT (RFC 1833 section 3.2, PMAP v2
//! proc 3), NLM GRANTED / `_RES` calls and NSM SM_NOTIFY.
//!
//! Invariants: every call runs on a new connection and is bounded by a timeout (a
//! client that does not answer never holds a task forever); replies are bounded to
//! 64 KiB; calls carry AUTH_NONE credentials (Linux lockd and statd accept them).

use crate::record::{RecordError, read_record, write_record};
use crate::rpc::{AcceptStat, Auth, OpaqueAuth, ReplyStat, RpcCall, RpcReply};
use crate::xdr::{Decoder, XdrError, XdrWrite};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;

/// How long one outgoing call (connect, send, reply) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REPLY: usize = 64 * 1024;
const PMAP_PROGRAM: u32 = 100_000;
const PMAP_VERSION: u32 = 2;
const PMAP_GETPORT: u32 = 3;
const IPPROTO_TCP: u32 = 6;

static NEXT_XID: AtomicU32 = AtomicU32::new(0x4e4c_0000);

/// Why an outgoing call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the reply from {addr} failed: {source}")]
    Record {
        addr: SocketAddr,
        #[source]
        source: RecordError,
    },
    #[error("{addr} closed the connection without a reply")]
    NoReply { addr: SocketAddr },
    #[error("{addr} did not answer within {CALL_TIMEOUT:?}")]
    Timeout { addr: SocketAddr },
    #[error("malformed reply from {addr}: {source}")]
    Decode {
        addr: SocketAddr,
        #[source]
        source: XdrError,
    },
    #[error("{addr} refused the call: {stat:?}")]
    Refused { addr: SocketAddr, stat: ReplyStat },
    #[error("program {prog} v{vers} is not registered with the portmapper of {ip}")]
    NotRegistered { ip: IpAddr, prog: u32, vers: u32 },
}

/// Calls `prog`/`vers`/`proc_num` at `addr` with the encoded `args`; returns the
/// encoded results of a successful reply.
pub async fn call(
    addr: SocketAddr,
    prog: u32,
    vers: u32,
    proc_num: u32,
    args: &[u8],
) -> Result<Vec<u8>, CallError> {
    tokio::time::timeout(CALL_TIMEOUT, call_inner(addr, prog, vers, proc_num, args))
        .await
        .map_err(|_| CallError::Timeout { addr })?
}

async fn call_inner(
    addr: SocketAddr,
    prog: u32,
    vers: u32,
    proc_num: u32,
    args: &[u8],
) -> Result<Vec<u8>, CallError> {
    let io = |source| CallError::Io { addr, source };
    let mut sock = TcpStream::connect(addr).await.map_err(io)?;
    let xid = NEXT_XID.fetch_add(1, Ordering::Relaxed);
    let header = RpcCall {
        xid,
        prog,
        vers,
        proc_num,
        cred: Auth::None,
        verf: OpaqueAuth::none(),
    };
    let mut msg = Vec::with_capacity(64 + args.len());
    header.encode(&mut msg);
    msg.extend_from_slice(args);
    write_record(&mut sock, &msg).await.map_err(io)?;
    loop {
        let rec = read_record(&mut sock, MAX_REPLY)
            .await
            .map_err(|source| CallError::Record { addr, source })?
            .ok_or(CallError::NoReply { addr })?;
        let (reply, rest) =
            RpcReply::decode(&rec).map_err(|source| CallError::Decode { addr, source })?;
        if reply.xid != xid {
            continue;
        }
        if reply.stat != ReplyStat::Accepted(AcceptStat::Success) {
            return Err(CallError::Refused {
                addr,
                stat: reply.stat,
            });
        }
        return Ok(rest.to_vec());
    }
}

/// Asks the portmapper at `ip:pmap_port` for the TCP port of `prog`/`vers`.
pub async fn getport(ip: IpAddr, pmap_port: u16, prog: u32, vers: u32) -> Result<u16, CallError> {
    let addr = SocketAddr::new(ip, pmap_port);
    let mut args = Vec::with_capacity(16);
    args.put_xdr_u32(prog);
    args.put_xdr_u32(vers);
    args.put_xdr_u32(IPPROTO_TCP);
    args.put_xdr_u32(0);
    let res = call(addr, PMAP_PROGRAM, PMAP_VERSION, PMAP_GETPORT, &args).await?;
    let port = Decoder::new(&res)
        .u32()
        .map_err(|source| CallError::Decode { addr, source })?;
    match u16::try_from(port) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(CallError::NotRegistered { ip, prog, vers }),
    }
}

/// Finds `prog`/`vers` through the portmapper of `ip` and calls it.
pub async fn call_via_portmap(
    ip: IpAddr,
    pmap_port: u16,
    (prog, vers, proc_num): (u32, u32, u32),
    args: &[u8],
) -> Result<Vec<u8>, CallError> {
    let port = getport(ip, pmap_port, prog, vers).await?;
    call(SocketAddr::new(ip, port), prog, vers, proc_num, args).await
}
