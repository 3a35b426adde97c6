//! A minimal embedded portmapper (RFC 1833 section 3, PMAP program 100000 version 2) for
//! clients that ask rpcbind where NFS and MOUNT live. It only answers for this server:
//! GETPORT returns our port for NFS v3, MOUNT v1-v3, NLM v4 and NSM v1 over TCP, DUMP lists those
//! mappings, SET/UNSET are refused, CALLIT is not offered. Served over TCP and UDP.

use crate::record::{read_record, write_record};
use crate::rpc::{AcceptStat, RpcCall, encode_accepted, encode_success};
use crate::xdr::{Decoder, XdrWrite};
use bytes::BytesMut;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

pub const PROGRAM: u32 = 100_000;
pub const VERSION: u32 = 2;
const IPPROTO_TCP: u32 = 6;

fn mappings(port: u16) -> Vec<(u32, u32, u32, u32)> {
    let p = u32::from(port);
    vec![
        (PROGRAM, VERSION, IPPROTO_TCP, 0),
        (crate::nfs3::PROGRAM, 3, IPPROTO_TCP, p),
        (crate::mount3::PROGRAM, 1, IPPROTO_TCP, p),
        (crate::mount3::PROGRAM, 2, IPPROTO_TCP, p),
        (crate::mount3::PROGRAM, 3, IPPROTO_TCP, p),
        (crate::nlm4::PROGRAM, crate::nlm4::VERSION, IPPROTO_TCP, p),
        (crate::nsm1::PROGRAM, crate::nsm1::VERSION, IPPROTO_TCP, p),
    ]
}

/// Answers one PMAP call (None: not even an xid could be read).
pub fn answer(record: &[u8], port: u16) -> Option<Vec<u8>> {
    let (call, args) = match RpcCall::decode(record) {
        Ok(x) => x,
        Err(e) => {
            let xid = e.xid()?;
            let mut b = BytesMut::new();
            encode_accepted(&mut b, xid, AcceptStat::GarbageArgs);
            return Some(b.to_vec());
        }
    };
    let mut b = BytesMut::with_capacity(128);
    if call.prog != PROGRAM {
        encode_accepted(&mut b, call.xid, AcceptStat::ProgUnavail);
        return Some(b.to_vec());
    }
    if call.vers != VERSION {
        encode_accepted(
            &mut b,
            call.xid,
            AcceptStat::ProgMismatch {
                low: VERSION,
                high: VERSION,
            },
        );
        return Some(b.to_vec());
    }
    let mut dec = Decoder::new(args);
    match call.proc_num {
        0 => encode_success(&mut b, call.xid),
        1 | 2 => {
            // SET / UNSET: registrations belong to a system rpcbind, not to us.
            encode_success(&mut b, call.xid);
            b.put_xdr_bool(false);
        }
        3 => {
            let parsed = (|| {
                Some((
                    dec.u32().ok()?,
                    dec.u32().ok()?,
                    dec.u32().ok()?,
                    dec.u32().ok()?,
                ))
            })();
            let Some((prog, vers, prot, _)) = parsed else {
                encode_accepted(&mut b, call.xid, AcceptStat::GarbageArgs);
                return Some(b.to_vec());
            };
            let found = mappings(port)
                .into_iter()
                .find(|m| m.0 == prog && m.1 == vers && m.2 == prot)
                .map(|m| m.3);
            encode_success(&mut b, call.xid);
            b.put_xdr_u32(found.unwrap_or(0));
        }
        4 => {
            encode_success(&mut b, call.xid);
            for (prog, vers, prot, p) in mappings(port) {
                b.put_xdr_bool(true);
                b.put_xdr_u32(prog);
                b.put_xdr_u32(vers);
                b.put_xdr_u32(prot);
                b.put_xdr_u32(p);
            }
            b.put_xdr_bool(false);
        }
        _ => encode_accepted(&mut b, call.xid, AcceptStat::ProcUnavail),
    }
    Some(b.to_vec())
}

/// Serves PMAP on `listener` (TCP) and on a UDP socket bound to the same address, until
/// `stop` is cancelled. `nfs_port` is the port reported for NFS and MOUNT.
pub async fn serve(listener: TcpListener, nfs_port: u16, stop: CancellationToken) {
    let udp = match listener.local_addr() {
        Ok(a) => UdpSocket::bind(a)
            .await
            .map_err(|e| tracing::warn!(error = %e, "portmapper UDP bind failed; TCP only"))
            .ok(),
        Err(_) => None,
    };
    let udp_task = udp.map(|sock| {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 9000];
            loop {
                let r = tokio::select! {
                    _ = stop.cancelled() => break,
                    r = sock.recv_from(&mut buf) => r,
                };
                if let Ok((n, peer)) = r
                    && let Some(reply) = answer(&buf[..n], nfs_port)
                {
                    let _ = sock.send_to(&reply, peer).await;
                }
            }
        })
    });
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((mut sock, _)) = accepted else {
            continue;
        };
        let stop2 = stop.clone();
        tokio::spawn(async move {
            loop {
                let rec = tokio::select! {
                    _ = stop2.cancelled() => break,
                    r = read_record(&mut sock, 64 * 1024) => r,
                };
                let Ok(Some(rec)) = rec else { break };
                let Some(reply) = answer(&rec, nfs_port) else {
                    break;
                };
                if write_record(&mut sock, &reply).await.is_err() {
                    break;
                }
            }
        });
    }
    if let Some(t) = udp_task {
        let _ = t.await;
    }
}
