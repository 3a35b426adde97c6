//! A userspace NLM v4 / NSM v1 client for the tests, on the project's RPC and XDR codecs,
//! and a fake client host: one loopback listener that is at once the host's portmapper
//! (GETPORT answers its own port for every program), its lockd (takes NLM GRANTED
//! callbacks) and its statd (takes SM_NOTIFY). `dfs` finds it through
//! `DITTOFS_NFS_LOCKS_CLIENT_PORTMAPPER_PORT` (111 in production).

use super::Client;
use dittofs_nfs::nlm4::*;
use dittofs_nfs::nsm1;
use dittofs_nfs::record::frame_record;
use dittofs_nfs::rpc::{AcceptStat, ReplyStat, RpcCall, encode_success};
use dittofs_nfs::{Decoder, XdrDecode, XdrEncode, XdrWrite};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// One NLM client: a host name, a process id (svid) and an owner handle.
pub struct NlmClient {
    pub rpc: Client,
    pub name: Vec<u8>,
    pub svid: i32,
    pub oh: Vec<u8>,
}

impl NlmClient {
    pub fn connect(port: u16, name: &str, svid: i32) -> NlmClient {
        NlmClient::connect_addr(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            name,
            svid,
        )
    }

    pub fn connect_addr(addr: std::net::SocketAddr, name: &str, svid: i32) -> NlmClient {
        NlmClient {
            rpc: Client::connect_addr(addr),
            name: name.as_bytes().to_vec(),
            svid,
            oh: format!("{svid}@{name}").into_bytes(),
        }
    }

    pub fn alock(&self, fh: &[u8], offset: u64, len: u64) -> Nlm4Lock {
        Nlm4Lock {
            caller_name: self.name.clone(),
            fh: fh.to_vec(),
            oh: self.oh.clone(),
            svid: self.svid,
            l_offset: offset,
            l_len: len,
        }
    }

    /// Calls NLM v4 `proc_num`; panics unless the call is accepted with SUCCESS.
    pub fn call<R: XdrDecode>(&mut self, proc_num: NlmProc, args: &impl XdrEncode) -> R {
        let (reply, rest) =
            self.rpc
                .call_raw(PROGRAM, VERSION, proc_num.as_u32(), true, &args.to_xdr());
        assert_eq!(reply.stat, ReplyStat::Accepted(AcceptStat::Success));
        R::decode(&mut Decoder::new(&rest)).expect("decode NLM results")
    }

    pub fn lock_args(&self, fh: &[u8], range: (u64, u64), exclusive: bool) -> Nlm4LockArgs {
        Nlm4LockArgs {
            cookie: vec![0xC0, 0x0C],
            block: false,
            exclusive,
            alock: self.alock(fh, range.0, range.1),
            reclaim: false,
            state: 1,
        }
    }

    pub fn lock_with(&mut self, args: &Nlm4LockArgs) -> Nlm4Stat {
        let r: Nlm4Res = self.call(NlmProc::Lock, args);
        assert_eq!(r.cookie, args.cookie);
        r.stat
    }

    pub fn lock(&mut self, fh: &[u8], range: (u64, u64), exclusive: bool) -> Nlm4Stat {
        let a = self.lock_args(fh, range, exclusive);
        self.lock_with(&a)
    }

    pub fn lock_blocking(&mut self, fh: &[u8], range: (u64, u64), exclusive: bool) -> Nlm4Stat {
        let mut a = self.lock_args(fh, range, exclusive);
        a.block = true;
        self.lock_with(&a)
    }

    pub fn test(&mut self, fh: &[u8], range: (u64, u64), exclusive: bool) -> Nlm4TestRes {
        let a = Nlm4TestArgs {
            cookie: vec![1],
            exclusive,
            alock: self.alock(fh, range.0, range.1),
        };
        self.call(NlmProc::Test, &a)
    }

    pub fn unlock(&mut self, fh: &[u8], range: (u64, u64)) -> Nlm4Stat {
        let a = Nlm4UnlockArgs {
            cookie: vec![2],
            alock: self.alock(fh, range.0, range.1),
        };
        self.call::<Nlm4Res>(NlmProc::Unlock, &a).stat
    }

    pub fn cancel(&mut self, fh: &[u8], range: (u64, u64), exclusive: bool) -> Nlm4Stat {
        let a = Nlm4CancArgs {
            cookie: vec![3],
            block: true,
            exclusive,
            alock: self.alock(fh, range.0, range.1),
        };
        self.call::<Nlm4Res>(NlmProc::Cancel, &a).stat
    }

    /// SM_STAT of the server's status monitor: its state number.
    pub fn sm_stat(&mut self) -> i32 {
        let mut args = Vec::new();
        args.put_xdr_string(b"server");
        let (reply, rest) = self.rpc.call_raw(
            nsm1::PROGRAM,
            nsm1::VERSION,
            nsm1::NsmProc::Stat.as_u32(),
            true,
            &args,
        );
        assert_eq!(reply.stat, ReplyStat::Accepted(AcceptStat::Success));
        let r = nsm1::SmStatRes::decode(&mut Decoder::new(&rest)).expect("sm_stat_res");
        assert_eq!(r.res_stat, nsm1::STAT_SUCC);
        r.state
    }
}

/// A call the fake host received: program, procedure and arguments.
#[derive(Debug, Clone)]
pub struct Received {
    pub prog: u32,
    pub proc_num: u32,
    pub args: Vec<u8>,
}

/// The fake client host (portmapper + lockd + statd on one loopback port).
pub struct FakeHost {
    pub port: u16,
    pub calls: mpsc::Receiver<Received>,
    /// Whether GRANTED callbacks are answered GRANTED (else DENIED).
    pub accept_grants: Arc<AtomicBool>,
}

impl FakeHost {
    pub fn start() -> FakeHost {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind fake host");
        let port = l.local_addr().expect("addr").port();
        let (tx, rx) = mpsc::channel();
        let accept = Arc::new(AtomicBool::new(true));
        let accept2 = accept.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let (tx, accept) = (tx.clone(), accept2.clone());
                std::thread::spawn(move || serve(s, port, &tx, &accept));
            }
        });
        FakeHost {
            port,
            calls: rx,
            accept_grants: accept,
        }
    }

    /// The next NLM or NSM call (portmapper calls are skipped), if one comes in `wait`.
    pub fn next_call(&self, wait: Duration) -> Option<Received> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let c = self.calls.recv_timeout(left).ok()?;
            if c.prog != 100_000 {
                return Some(c);
            }
        }
    }

    /// The env `dfs` needs to call this host back.
    pub fn env(&self) -> (String, String) {
        (
            "DITTOFS_NFS_LOCKS_CLIENT_PORTMAPPER_PORT".into(),
            self.port.to_string(),
        )
    }
}

fn serve(mut s: TcpStream, port: u16, tx: &mpsc::Sender<Received>, accept: &AtomicBool) {
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    while let Some(rec) = read_record_sync(&mut s) {
        let Ok((call, args)) = RpcCall::decode(&rec) else {
            return;
        };
        let _ = tx.send(Received {
            prog: call.prog,
            proc_num: call.proc_num,
            args: args.to_vec(),
        });
        let mut out = Vec::new();
        encode_success(&mut out, call.xid);
        match call.prog {
            100_000 => out.put_xdr_u32(u32::from(port)),
            PROGRAM if call.proc_num == NlmProc::Granted.as_u32() => {
                let a = Nlm4TestArgs::decode(&mut Decoder::new(args)).expect("granted args");
                let stat = if accept.load(Ordering::SeqCst) {
                    Nlm4Stat::Granted
                } else {
                    Nlm4Stat::Denied
                };
                Nlm4Res {
                    cookie: a.cookie,
                    stat,
                }
                .encode(&mut out);
            }
            _ => {}
        }
        if s.write_all(&frame_record(&out)).is_err() {
            return;
        }
    }
}

/// One record (all its fragments); None at end of stream or on an error.
fn read_record_sync(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut mark = [0u8; 4];
        s.read_exact(&mut mark).ok()?;
        let m = u32::from_be_bytes(mark);
        let len = (m & 0x7fff_ffff) as usize;
        if out.len() + len > 1 << 20 {
            return None;
        }
        let mut frag = vec![0u8; len];
        s.read_exact(&mut frag).ok()?;
        out.extend_from_slice(&frag);
        if m & 0x8000_0000 != 0 {
            return Some(out);
        }
    }
}
