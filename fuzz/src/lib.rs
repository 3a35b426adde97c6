//! The NFSv4 COMPOUND fuzz harness (issue #18, #25): one input is the arguments of a
//! COMPOUND (COMPOUND4args: tag, minor version, operations; RFC 7530 section 15.2,
//! RFC 8881 section 16.2). Each input is
//! 1. decoded like the server does (the header, then every operation until one fails),
//!    and every operation that decodes must encode and decode back to itself;
//! 2. sent, wrapped in an RPC call from root (AUTH_SYS), through the server's own entry
//!    point (`NfsServer::handle_record`: RPC decoding, the duplicate request cache,
//!    COMPOUND dispatch) onto one share on an in-memory metadata store and a block engine
//!    in a temporary directory, exported as `/export` under the pseudo root; the reply
//!    must come and echo the call's transaction ID.
//!
//! A panic, a hang (libFuzzer's `-timeout`) or an allocation past the RSS limit
//! (`-rss_limit_mb`) is a crash. The server's state (files, clients, opens) lives on
//! from input to input, as on a real server. `scripts/fuzz.sh` runs it.

#![allow(clippy::expect_used, clippy::panic)]

use bytes::{BufMut, Bytes};
use dittofs_blockstore::{Engine, EngineConfig};
use dittofs_nfs::export::ExportPolicy;
use dittofs_nfs::metrics::NfsMetrics;
use dittofs_nfs::nfs4::{CompoundHeader, Op4};
use dittofs_nfs::rpc::{Auth, OpaqueAuth, RpcCall};
use dittofs_nfs::server::{NfsServer, NfsServerConfig};
use dittofs_nfs::{Decoder, XdrEncode};
use dittofs_types::ShareId;
use dittofs_vfs::{Fs, ShareOptions, ShareRegistry};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A server with one share, and the runtime its calls run on.
pub struct Harness {
    rt: tokio::runtime::Runtime,
    server: NfsServer,
    xid: AtomicU32,
}

impl Harness {
    /// The server, its share in `$DITTOFS_FUZZ_DIR` (else a new directory under the
    /// system's temporary directory).
    pub fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = match std::env::var_os("DITTOFS_FUZZ_DIR") {
            Some(d) => std::path::PathBuf::from(d),
            None => std::env::temp_dir().join(format!("dittofs-fuzz-{}", std::process::id())),
        };
        let server = rt.block_on(server(&dir));
        Harness {
            rt,
            server,
            xid: AtomicU32::new(1),
        }
    }

    /// Runs one input (see the crate documentation).
    pub fn run(&self, data: &[u8]) {
        decode_all(data);
        let xid = self.xid.fetch_add(1, Ordering::Relaxed);
        let peer: SocketAddr = ([127, 0, 0, 1], 700).into();
        let record = call(xid, data);
        let reply = self.rt.block_on(self.server.handle_record(peer, record));
        let reply = reply.expect("a COMPOUND always gets a reply");
        let head = reply.first().expect("a reply has a header");
        assert_eq!(head.get(..4), Some(&xid.to_be_bytes()[..]), "xid echoed");
    }
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

async fn server(dir: &std::path::Path) -> NfsServer {
    let store = Arc::new(dittofs_metadata::memory::MemoryStore::new());
    let (engine, _) = Engine::open(&dir.join("blocks"), EngineConfig::default()).expect("engine");
    let opts = ShareOptions {
        root_mode: 0o777,
        ..Default::default()
    };
    let fs = Fs::open(store, Arc::new(engine), ShareId(1), "/export", opts)
        .await
        .expect("share");
    let registry = Arc::new(ShareRegistry::new());
    registry.insert(fs);
    let export = ExportPolicy::from_options(ShareId(1), "none", 65534, 65534, &[]).expect("policy");
    let metrics = Arc::new(NfsMetrics::new(&mut Default::default()));
    NfsServer::new(registry, vec![export], NfsServerConfig::default(), metrics)
}

/// An RPC call record of NFSv4 COMPOUND from root with `args`.
fn call(xid: u32, args: &[u8]) -> Bytes {
    let c = RpcCall {
        xid,
        prog: dittofs_nfs::nfs4::PROGRAM,
        vers: 4,
        proc_num: dittofs_nfs::nfs4::PROC_COMPOUND,
        cred: Auth::Sys {
            stamp: 1,
            machine: b"fuzz".to_vec(),
            uid: 0,
            gid: 0,
            gids: vec![],
        },
        verf: OpaqueAuth::none(),
    };
    let mut msg = Vec::with_capacity(64 + args.len());
    c.encode(&mut msg);
    msg.put_slice(args);
    Bytes::from(msg)
}

/// Decodes the header and the operations (at most as many as the header says, and at
/// most 1024), checking that every operation re-encodes to itself.
fn decode_all(data: &[u8]) {
    let mut d = Decoder::new(data);
    let Ok(h) = CompoundHeader::decode(&mut d) else {
        return;
    };
    for _ in 0..h.nops.min(1024) {
        let Ok(op) = Op4::decode(&mut d) else {
            return;
        };
        let bytes = op.to_xdr();
        let again = Op4::decode(&mut Decoder::new(&bytes));
        assert_eq!(
            again.as_ref(),
            Ok(&op),
            "{} re-encodes to itself",
            op.name()
        );
    }
}
