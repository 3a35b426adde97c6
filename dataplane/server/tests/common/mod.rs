//! Starts the real `dfs` binary on free loopback ports with a temporary data directory.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod netns;
pub mod nlm;

use dittofs_nfs::mount3::{DirPath, MntArgs, MntRes};
use dittofs_nfs::nfs3::*;
use dittofs_nfs::record::frame_record;
use dittofs_nfs::rpc::{AcceptStat, Auth, OpaqueAuth, ReplyStat, RpcCall, RpcReply};
use dittofs_nfs::{Decoder, XdrDecode, XdrEncode};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Changes made to the `dfs` command before each spawn.
pub type Customize = Box<dyn Fn(&mut Command)>;

pub struct Server {
    pub child: Option<Child>,
    pub nfs_port: u16,
    pub http_port: u16,
    pub control_port: u16,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub extra_env: Vec<(String, String)>,
    /// Applied to the command before every spawn (limits, log capture).
    pub customize: Option<Customize>,
    /// A command `dfs` runs under (e.g. `nsenter` into a mount namespace); empty: none.
    pub wrap: Vec<std::ffi::OsString>,
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Server {
    /// Starts `dfs` with squash none (tests act as root) and waits until it is ready.
    pub fn start() -> Server {
        Server::start_with(Vec::new())
    }

    pub fn start_with(extra_env: Vec<(String, String)>) -> Server {
        Server::start_customized(extra_env, None)
    }

    /// [`Server::start_with`], `customize` applied to the command of every spawn.
    pub fn start_customized(
        extra_env: Vec<(String, String)>,
        customize: Option<Customize>,
    ) -> Server {
        let mut s = Server::unstarted(extra_env);
        s.customize = customize;
        s.spawn();
        s
    }

    /// A server not started yet: set `customize`, `wrap` or `data`, then `spawn`.
    pub fn unstarted(extra_env: Vec<(String, String)>) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        Server {
            child: None,
            nfs_port: free_port(),
            http_port: free_port(),
            control_port: free_port(),
            data,
            _tmp: Some(tmp),
            extra_env,
            customize: None,
            wrap: Vec::new(),
        }
    }

    pub fn command(&self) -> Command {
        self.command_with_dir(&self.data)
    }

    pub fn command_with_dir(&self, dir: &std::path::Path) -> Command {
        let mut c = match self.wrap.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(env!("CARGO_BIN_EXE_dfs"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_dfs")),
        };
        c.arg("start")
            .arg("--data-dir")
            .arg(dir)
            .env("DITTOFS_NFS_BIND", "127.0.0.1")
            .env("DITTOFS_NFS_PORT", self.nfs_port.to_string())
            .env("DITTOFS_HTTP_PORT", self.http_port.to_string())
            .env("DITTOFS_CONTROL_PORT", self.control_port.to_string())
            .env("DITTOFS_SHARES", "[{name: /export, squash: none}]")
            .env("DITTOFS_LOGGING_LEVEL", "WARN")
            // read delegations as by default; write delegations (also on by default) only
            // where a test asks for them: the others open files for write from one client
            // and read them from another or over NFSv3 without waiting for recalls
            .env("DITTOFS_NFS_V4_DELEGATIONS", "true")
            .env("DITTOFS_NFS_V4_WRITE_DELEGATIONS", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c
    }

    pub fn spawn(&mut self) {
        let mut cmd = self.command();
        if let Some(c) = &self.customize {
            c(&mut cmd);
        }
        let child = cmd.spawn().expect("spawn dfs");
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("dfs exited early: {st}");
            }
            if http_get(self.http_port, "/ready")
                .map(|b| b.contains("ready"))
                .unwrap_or(false)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("dfs did not become ready");
    }

    /// SIGTERM and wait (graceful), returning the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) on the pid of a child we spawned and still own.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        c.wait().ok().and_then(|s| s.code())
    }

    /// SIGKILL: a crash.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "nfs://127.0.0.1/export{path}?nfsport={p}&mountport={p}&version=3",
            p = self.nfs_port
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.crash();
    }
}

pub fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The value of gauge `dittofs_blockstore_<name>` of the local store `default`.
pub fn blockstore_gauge(http_port: u16, name: &str) -> u64 {
    let m = http_get(http_port, "/metrics").expect("/metrics");
    let key = format!("dittofs_blockstore_{name}{{store=\"default\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in {m}"))
        .trim()
        .parse()
        .expect("a number")
}

/// `len` pseudo-random bytes (xorshift64 from `seed`): incompressible, reproducible.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Is the prerequisite there? In CI (`CI=true`) a missing one fails the test with `why`;
/// elsewhere the test is skipped with the same message.
pub fn require(ok: bool, why: &str) -> bool {
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("prerequisite missing: {why}");
        }
        eprintln!("SKIP: {why}");
    }
    ok
}

/// Whether `tool` is a command on PATH.
pub fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Fails the test in CI when `tool` is not installed; skips it with a message elsewhere.
pub fn require_tool(tool: &str) -> bool {
    require(
        on_path(tool),
        &format!("{tool} is not installed (scripts/install-deps.sh installs it)"),
    )
}

/// A raw ONC RPC client over TCP built on the project's codecs (malformed input, exact
/// procedures, chosen AUTH_SYS identities).
pub struct Client {
    pub sock: TcpStream,
    pub xid: u32,
    /// AUTH_SYS identity sent with every call: (uid, gid, supplementary groups).
    pub cred: (u32, u32, Vec<u32>),
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Client::connect_addr(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    }

    pub fn connect_addr(addr: std::net::SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// A client on a connected socket (e.g. one bound to a chosen source port).
    pub fn from_stream(sock: TcpStream) -> Client {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            sock,
            xid: 1000,
            cred: (0, 0, Vec::new()),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).unwrap();
    }

    /// Reads one reply record; None when the server closed the connection.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut mark = [0u8; 4];
            if self.sock.read_exact(&mut mark).is_err() {
                return None;
            }
            let m = u32::from_be_bytes(mark);
            let mut frag = vec![0u8; (m & 0x7fff_ffff) as usize];
            self.sock.read_exact(&mut frag).ok()?;
            out.extend_from_slice(&frag);
            if m & 0x8000_0000 != 0 {
                return Some(out);
            }
        }
    }

    pub fn call_raw(
        &mut self,
        prog: u32,
        vers: u32,
        proc_num: u32,
        rpcvers_ok: bool,
        args: &[u8],
    ) -> (RpcReply, Vec<u8>) {
        self.xid += 1;
        let call = RpcCall {
            xid: self.xid,
            prog,
            vers,
            proc_num,
            cred: Auth::Sys {
                stamp: 1,
                machine: b"test".to_vec(),
                uid: self.cred.0,
                gid: self.cred.1,
                gids: self.cred.2.clone(),
            },
            verf: OpaqueAuth::none(),
        };
        let mut msg = Vec::new();
        call.encode(&mut msg);
        if !rpcvers_ok {
            msg[8..12].copy_from_slice(&3u32.to_be_bytes());
        }
        msg.extend_from_slice(args);
        self.send_raw(&frame_record(&msg));
        let rec = self.recv().expect("reply");
        let (reply, rest) = RpcReply::decode(&rec).expect("decode reply");
        assert_eq!(reply.xid, self.xid);
        let rest = rest.to_vec();
        (reply, rest)
    }

    pub fn call<A: XdrEncode, R: XdrDecode>(&mut self, prog: u32, proc_num: u32, args: &A) -> R {
        let (reply, rest) = self.call_raw(prog, 3, proc_num, true, &args.to_xdr());
        assert_eq!(reply.stat, ReplyStat::Accepted(AcceptStat::Success));
        R::decode(&mut Decoder::new(&rest)).expect("decode results")
    }

    pub fn null_ok(&mut self) -> bool {
        self.call_raw(PROGRAM, 3, 0, true, &[]).0.stat == ReplyStat::Accepted(AcceptStat::Success)
    }

    /// CREATE (unchecked) of `name` in `dir`.
    pub fn create(&mut self, dir: &NfsFh3, name: &str) -> CreateRes {
        self.call(
            PROGRAM,
            8,
            &CreateArgs {
                where_: DirOpArgs3 {
                    dir: dir.clone(),
                    name: Filename3(name.as_bytes().to_vec()),
                },
                how: CreateHow3::Unchecked(Sattr3::default()),
            },
        )
    }

    /// CREATE that must succeed: the new file's handle.
    pub fn create_file(&mut self, dir: &NfsFh3, name: &str) -> NfsFh3 {
        match self.create(dir, name) {
            Res3::Ok(ok) => ok.obj.expect("a handle"),
            Res3::Fail(st, _) => panic!("CREATE {name}: {st:?}"),
        }
    }

    /// FILE_SYNC WRITE of `data` at `offset`: its status.
    pub fn write_sync(&mut self, fh: &NfsFh3, offset: u64, data: &[u8]) -> NfsStat3 {
        let w: WriteRes = self.call(
            PROGRAM,
            7,
            &WriteArgs {
                file: fh.clone(),
                offset,
                count: data.len() as u32,
                stable: StableHow::FileSync,
                data: bytes::Bytes::copy_from_slice(data),
            },
        );
        w.status()
    }

    /// READ that must succeed: the data.
    pub fn read_ok(&mut self, fh: &NfsFh3, offset: u64, count: u32) -> bytes::Bytes {
        let r: ReadRes = self.call(
            PROGRAM,
            6,
            &ReadArgs {
                file: fh.clone(),
                offset,
                count,
            },
        );
        match r {
            Res3::Ok(r) => r.data,
            Res3::Fail(st, _) => panic!("READ at {offset}: {st:?}"),
        }
    }

    pub fn mount_root(&mut self) -> NfsFh3 {
        let r: MntRes = self.call(
            dittofs_nfs::mount3::PROGRAM,
            1,
            &MntArgs {
                dirpath: DirPath(b"/export".to_vec()),
            },
        );
        match r {
            MntRes::Ok(ok) => ok.fhandle,
            MntRes::Err(e) => panic!("mount failed: {e:?}"),
        }
    }
}

/// A framed NFSv3-program call record from AUTH_SYS root on `machine`, for clients that
/// pipeline calls without awaiting replies (floods, non-readers).
pub fn call_record(xid: u32, prog: u32, proc_num: u32, machine: &[u8], args: &[u8]) -> Vec<u8> {
    let call = RpcCall {
        xid,
        prog,
        vers: 3,
        proc_num,
        cred: Auth::Sys {
            stamp: 1,
            machine: machine.to_vec(),
            uid: 0,
            gid: 0,
            gids: vec![],
        },
        verf: OpaqueAuth::none(),
    };
    let mut msg = Vec::new();
    call.encode(&mut msg);
    msg.extend_from_slice(args);
    frame_record(&msg)
}

/// A client socket bound to a privileged source port (< 1024: needs root), or None when
/// this process may not bind one.
pub fn privileged_client(port: u16) -> Option<Client> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    for local in (600..1024u16).rev() {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_reuseaddr(true).unwrap();
        match sock.bind(([127, 0, 0, 1], local).into()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return None,
            Err(_) => continue,
        }
        let Ok(stream) = rt.block_on(sock.connect(([127, 0, 0, 1], port).into())) else {
            continue;
        };
        let std = stream.into_std().unwrap();
        std.set_nonblocking(false).unwrap();
        assert!(std.local_addr().unwrap().port() < 1024);
        return Some(Client::from_stream(std));
    }
    None
}
