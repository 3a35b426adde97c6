//! NLM with the Linux kernel client: the qemu guest of `e2e/vm` mounts the real `dfs`
//! without `nolock` (its rpcbind and rpc.statd running, as on a normal host) and contends
//! for locks with the userspace NLM client of `common::nlm` on the host:
//!
//! 1. `flock` refused while the host holds the file, granted once it unlocks; the guest's
//!    lock seen by the host's TEST and LOCK;
//! 2. `lockf` byte ranges (shared with shared, exclusive refused);
//! 3. a blocking `flock` of the guest waits (NLM4_BLOCKED) until the host unlocks and is
//!    woken by the server's NLM GRANTED callback into the guest's lockd (well before the
//!    kernel's own 30 s re-poll);
//! 4. that lock held across a SIGKILL and restart of `dfs`: the new `dfs` sends SM_NOTIFY
//!    to the guest's statd, the kernel reclaims the lock in the grace period; the host's
//!    conflicting LOCK gets NLM4_DENIED_GRACE_PERIOD during grace and DENIED after it
//!    (the guest holds the reclaimed lock), and is granted once the guest unlocks;
//! 5. NFSv4.2 and NLM locks meet (RFC 8881 section 9, one lock manager): the guest's
//!    `lockf` through a 4.2 mount refuses the host's NLM LOCK and shows in its TEST; the
//!    host's NLM lock refuses the guest's 4.2 `lockf`, and a blocking one waits until the
//!    host unlocks (the 4.2 client polls, or retries at once on CB_NOTIFY_LOCK); that
//!    lock held across a SIGKILL and restart of `dfs`: the kernel reclaims it (CLAIM_PREVIOUS,
//!    LOCK reclaim) and the host's NLM LOCK is refused in grace and after it.
//!
//! The guest is on a tap device in a network namespace of the test's own thread
//! (`common::netns`), where `dfs` listens on the tap's host side and serves its embedded
//! portmapper on port 111 (the kernel asks port 111 for NLM), so the server can call back
//! into the guest. Ignored by default: it needs the guest (`e2e/vm/build-guest.sh`), root
//! and tap support. Run: `cargo test -p dittofs-server --test nlm_kernel -- --ignored`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::netns::{GuestNet, HOST_ADDR};
use common::nlm::NlmClient;
use common::{Client, Server, http_get};
use dittofs_nfs::nfs3::NfsFh3;
use dittofs_nfs::nlm4::Nlm4Stat;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WHOLE: (u64, u64) = (0, 0);
/// The grace period of the restarted `dfs`: long enough for the guest's reclaim under TCG.
const GRACE: Duration = Duration::from_secs(10);
/// A GRANTED callback wakes the guest at once; without it the kernel re-polls after 30 s.
const WOKEN_WITHIN: Duration = Duration::from_secs(10);

/// The guest runner and its `/share` directory; SIGTERMed if the test fails first (its
/// trap stops qemu).
struct Guest {
    child: Option<std::process::Child>,
    share: PathBuf,
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            // SAFETY: kill(2) on the pid of a child we spawned and still own.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let _ = c.wait();
        }
    }
}

impl Guest {
    /// Panics when the guest runner has exited (nothing more will come from the guest).
    fn assert_running(&mut self) {
        let c = self.child.as_mut().expect("guest");
        if let Ok(Some(st)) = c.try_wait() {
            panic!("the guest exited early ({st}); its console output is above");
        }
    }

    /// Polls `cond` every 100 ms until it holds; panics with `what` after `secs` or when
    /// the guest is gone.
    fn wait_until(&mut self, what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            self.assert_running();
            assert!(Instant::now() < deadline, "{what} (after {secs} s)");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the guest's `say NAME` (a file in /share).
    fn wait_for(&mut self, name: &str, secs: u64) {
        let path = self.share.join(name);
        let what = format!("guest never wrote {}", path.display());
        self.wait_until(&what, secs, || path.exists());
    }

    /// What the guest's `await NAME` waits for.
    fn touch(&self, name: &str) {
        std::fs::write(self.share.join(name), "").unwrap();
    }

    fn said(&self, name: &str) -> bool {
        self.share.join(name).exists()
    }

    /// Waits for the guest to finish; panics unless its script ran to the end.
    fn finish(mut self) {
        let out = self
            .child
            .take()
            .expect("guest")
            .wait_with_output()
            .expect("guest");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("GUEST-NLM-OK"),
            "guest failed ({}):\n{text}",
            out.status
        );
    }
}

/// The value of counter `name` in this `dfs`'s /metrics (0 when absent).
fn counter(http_port: u16, name: &str) -> u64 {
    let m = http_get(http_port, "/metrics").expect("/metrics");
    let key = format!("{name} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0, |v| v.trim().parse::<f64>().expect("a number") as u64)
}

/// 6: the guest's NFSv4.0 client gets a write delegation of `fh` ("h") over its
/// callback path, writes under it and closes the file; the host's exclusive NLM lock
/// recalls it (DENIED until the client wrote back and returned it, then granted), and
/// a READ sees the guest's data.
fn v40_write_delegation(g: &mut Guest, host: &mut NlmClient, fh: &NfsFh3, srv: &Server) {
    let http = srv.http_port;
    let granted = counter(http, "dittofs_nfs4_delegations_granted_total");
    g.wait_for("v40-opening", 120);
    let deadline = Instant::now() + Duration::from_secs(90);
    while counter(http, "dittofs_nfs4_delegations_granted_total") <= granted {
        g.assert_running();
        let probes = ["answered", "failed"]
            .map(|k| counter(http, &format!("dittofs_nfs4_cb_probes_{k}_total")));
        assert!(
            Instant::now() < deadline,
            "no delegation for the guest's 4.0 client in 90 s (CB_NULL probes answered, failed: {probes:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    g.touch("v40-delegated");
    g.wait_for("v40-wrote", 60);
    let recalled = counter(http, "dittofs_nfs4_delegations_recalled_total");
    g.wait_until("the host's NLM lock granted after the recall", 90, || {
        host.lock(&fh.0, WHOLE, true) == Nlm4Stat::Granted
    });
    assert!(
        counter(http, "dittofs_nfs4_delegations_recalled_total") > recalled,
        "the NLM lock recalled the 4.0 client's delegation"
    );
    let nfs = SocketAddr::new(HOST_ADDR.parse().unwrap(), srv.nfs_port);
    let data = Client::connect_addr(nfs).read_ok(fh, 0, 64);
    assert_eq!(&data[..], b"from-4.0", "written back before DELEGRETURN");
    assert_eq!(host.unlock(&fh.0, WHOLE), Nlm4Stat::Granted);
    g.touch("v40-recalled");
}

/// How many NLM calls of `procedure` this `dfs` has answered (its /metrics).
fn nlm_calls(http_port: u16, procedure: &str) -> u64 {
    let m = http_get(http_port, "/metrics").expect("/metrics");
    let key = format!("dittofs_nfs_requests_total{{program=\"nlm4\",procedure=\"{procedure}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0, |v| v.trim().parse().expect("a number"))
}

fn guest_script(port: u16) -> String {
    format!(
        r#"set -e
say() {{ touch "/share/$1"; }}
await() {{
  for _ in $(seq 1200); do [ -e "/share/$1" ] && return 0; sleep 0.1; done
  echo "guest: no /share/$1 after 120 s"; exit 1
}}
(rpcbind -w 2>/dev/null || rpcbind); rpc.statd; sleep 1
mkdir -p /mnt/t
mount -t nfs -o vers=3,proto=tcp,port={port},mountport={port},mountproto=tcp {HOST_ADDR}:/export /mnt/t
exec 9<>/mnt/t/f
# 1. refused while the host holds the file, granted once it unlocked
if flock -n -x 9; then echo GUEST-GOT-A-HELD-LOCK; exit 1; fi
say refused; await released
flock -n -x 9; say holds; await checked; flock -u 9
# 2. byte ranges, from another process (another lock owner)
python3 /share/lockf.py; say lockf-done
# 3. a blocking flock waits for the host's lock
await host-holds; say waiting
flock -w 90 -x 9; say granted
# 4. held across the server's restart (reclaimed after its SM_NOTIFY), then released
await restart-checked
flock -u 9; say unlocked
exec 9>&-
# 5. NFSv4.2 locks against the host's NLM locks
mkdir -p /mnt/v4
mount -t nfs -o vers=4.2,proto=tcp,port={port} {HOST_ADDR}:/export /mnt/v4
python3 /share/v4lock.py
umount /mnt/v4
# 6. NFSv4.0 (the server dials the guest's callback service): a write delegation,
#    recalled by the host's NLM lock
mkdir -p /mnt/v40
mount -t nfs -o vers=4.0,proto=tcp,port={port} {HOST_ADDR}:/export /mnt/v40
python3 /share/v40deleg.py
umount /mnt/v40
umount /mnt/t
echo GUEST-NLM-OK"#
    )
}

const LOCKF_PY: &str = r#"import fcntl, os, time
fd = os.open('/mnt/t/f', os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 10, 0)
open('/share/range', 'w').close()
while not os.path.exists('/share/checked2'):
    time.sleep(0.1)
fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
os.close(fd)
"#;

const V4LOCK_PY: &str = r#"import fcntl, os, time
def say(n):
    open('/share/' + n, 'w').close()
def wait(n):
    for _ in range(1200):
        if os.path.exists('/share/' + n):
            return
        time.sleep(0.1)
    raise SystemExit('guest: no /share/' + n)
fd = os.open('/mnt/v4/g', os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
say('v4-holds'); wait('v4-checked')
fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
say('v4-unlocked'); wait('host-holds-g')
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
    raise SystemExit('guest: the 4.2 lock was granted while the host held the range')
except OSError:
    pass
say('v4-refused')
fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
say('v4-granted'); wait('v4-restarted')
os.pwrite(fd, b'after', 0)  # finds the restarted server: reclaims the open and the lock
os.fsync(fd)
say('v4-io'); wait('v4-seen')
fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
os.close(fd)
"#;

const V40DELEG_PY: &str = r#"import os, time
def say(n):
    open('/share/' + n, 'w').close()
say('v40-opening')
for _ in range(1200):  # until the host saw a delegation granted (after the CB_NULL probe)
    fd = os.open('/mnt/v40/h', os.O_RDWR)
    if os.path.exists('/share/v40-delegated'):
        break
    os.close(fd)
    time.sleep(0.1)
else:
    raise SystemExit('guest: no delegation for the 4.0 client')
os.pwrite(fd, b'from-4.0', 0)
os.close(fd)  # close-to-open: the next opener sees it (the client may keep it cached
say('v40-wrote')  # under the delegation until a recall)
for _ in range(1200):
    if os.path.exists('/share/v40-recalled'):
        break
    time.sleep(0.1)
"#;

/// A blocked NFSv4 lock is retried by the client: at once on CB_NOTIFY_LOCK, else by its
/// polling (which backs off to 30 s between tries).
const V4_RETRIED_WITHIN: Duration = Duration::from_secs(60);

/// 5: NFSv4.2 locks of the guest and NLM locks of the host on one file `fh` ("g").
fn v4_against_nlm(g: &mut Guest, host: &mut NlmClient, fh: &[u8]) {
    g.wait_for("v4-holds", 120);
    // The guest's open may hold a delegation and its lock only in the client: the first
    // NLM LOCK recalls the delegation (DENIED meanwhile), the guest sends its lock to
    // the server and returns the delegation; from then on its real lock is what refuses.
    assert_eq!(
        host.lock(fh, (5, 1), true),
        Nlm4Stat::Denied,
        "the guest's NFSv4.2 lock refuses an NLM lock"
    );
    g.wait_until("other bytes of the file never became free", 30, || {
        host.lock(fh, (20, 5), true) == Nlm4Stat::Granted
    });
    assert_eq!(
        host.lock(fh, (5, 1), true),
        Nlm4Stat::Denied,
        "the guest's NFSv4.2 lock, known to the server, refuses an NLM lock"
    );
    let t = host.test(fh, (0, 10), false);
    assert_eq!(t.stat, Nlm4Stat::Denied, "NLM TEST sees the NFSv4.2 lock");
    assert!(t.holder.expect("holder").exclusive);
    assert_eq!(host.unlock(fh, WHOLE), Nlm4Stat::Granted);
    g.touch("v4-checked");
    g.wait_for("v4-unlocked", 60);
    assert_eq!(host.lock(fh, (0, 10), true), Nlm4Stat::Granted);
    g.touch("host-holds-g");
    g.wait_for("v4-refused", 60);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !g.said("v4-granted"),
        "the 4.2 lock was granted while the host held it"
    );
    let t0 = Instant::now();
    assert_eq!(host.unlock(fh, WHOLE), Nlm4Stat::Granted);
    g.wait_for("v4-granted", V4_RETRIED_WITHIN.as_secs());
    eprintln!(
        "the guest's blocked NFSv4.2 lock got the range {:?} after the host's UNLOCK",
        t0.elapsed()
    );
    assert_eq!(
        host.lock(fh, (0, 10), true),
        Nlm4Stat::Denied,
        "the guest holds the granted 4.2 lock"
    );
}

/// 5, continued: the guest's NFSv4.2 lock across a SIGKILL and restart of `dfs`: the
/// host's conflicting NLM LOCK is refused in the grace period (GRACE_PERIOD) and, once
/// the guest reclaimed (its RECLAIM_COMPLETE may end the grace period early) or grace
/// ran out, by the reclaimed lock (DENIED); never granted. Returns the host's client on
/// the restarted server.
fn v4_reclaim_against_nlm(
    g: &mut Guest,
    srv: &mut Server,
    fh: &[u8],
    nfs: SocketAddr,
) -> NlmClient {
    srv.crash();
    let started = Instant::now();
    srv.spawn();
    let mut host = NlmClient::connect_addr(nfs, "host-client", 4242);
    assert_eq!(host.lock(fh, (0, 10), true), Nlm4Stat::DeniedGracePeriod);
    g.touch("v4-restarted");
    g.wait_for("v4-io", 120);
    eprintln!(
        "the guest's I/O after the restart went through {:?} after it",
        started.elapsed()
    );
    let deadline = started + GRACE + Duration::from_secs(5);
    loop {
        match host.lock(fh, (0, 10), true) {
            Nlm4Stat::DeniedGracePeriod if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(250));
            }
            st => {
                assert_eq!(st, Nlm4Stat::Denied, "the guest's reclaimed NFSv4.2 lock");
                break;
            }
        }
    }
    let t = host.test(fh, (0, 10), true);
    assert_eq!(t.stat, Nlm4Stat::Denied);
    g.touch("v4-seen");
    host
}

/// 1: the guest's non-blocking `flock` against the host's exclusive lock.
fn nonblocking_flock(g: &mut Guest, host: &mut NlmClient, fh: &[u8]) {
    g.wait_for("refused", 300);
    assert_eq!(host.unlock(fh, WHOLE), Nlm4Stat::Granted);
    g.touch("released");
    g.wait_for("holds", 60);
    let t = host.test(fh, WHOLE, true);
    assert_eq!(t.stat, Nlm4Stat::Denied, "the guest's flock is an NLM lock");
    assert!(t.holder.expect("holder").exclusive);
    assert_eq!(host.lock(fh, (100, 1), false), Nlm4Stat::Denied);
    g.touch("checked");
}

/// 2: the guest's shared lockf(0..10): shared fits, exclusive does not, elsewhere is free.
fn lockf_ranges(g: &mut Guest, host: &mut NlmClient, fh: &[u8]) {
    g.wait_for("range", 60);
    assert_eq!(host.lock(fh, (0, 10), false), Nlm4Stat::Granted);
    assert_eq!(host.lock(fh, (5, 1), true), Nlm4Stat::Denied);
    assert_eq!(host.lock(fh, (20, 5), true), Nlm4Stat::Granted);
    assert_eq!(host.unlock(fh, WHOLE), Nlm4Stat::Granted);
    g.touch("checked2");
}

/// 3: the guest's blocking `flock` is queued behind the host's lock and woken by the
/// server's GRANTED callback when the host unlocks.
fn blocking_waiter(g: &mut Guest, host: &mut NlmClient, fh: &[u8], http_port: u16) {
    g.wait_for("lockf-done", 60);
    assert_eq!(host.lock(fh, WHOLE, true), Nlm4Stat::Granted);
    let before = nlm_calls(http_port, "LOCK");
    g.touch("host-holds");
    g.wait_for("waiting", 60);
    // counted once answered: the guest's request is queued (NLM4_BLOCKED) from here on
    g.wait_until("the guest's blocking LOCK never reached dfs", 60, || {
        nlm_calls(http_port, "LOCK") > before
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!g.said("granted"), "granted while the host held the file");
    let t0 = Instant::now();
    assert_eq!(host.unlock(fh, WHOLE), Nlm4Stat::Granted);
    g.wait_for("granted", 90);
    let waited = t0.elapsed();
    eprintln!("the guest's blocked flock got the lock {waited:?} after the host's UNLOCK");
    assert!(
        waited < WOKEN_WITHIN,
        "the guest's waiter took {waited:?}: not woken by a GRANTED callback (the kernel re-polls after 30 s)"
    );
    let t = host.test(fh, WHOLE, true);
    assert_eq!(t.stat, Nlm4Stat::Denied, "the guest holds the granted lock");
    assert!(t.holder.expect("holder").exclusive);
}

/// 4: SIGKILL + restart with a grace period while the guest holds the file; returns the
/// host's client on the new server.
fn restart_and_reclaim(g: &mut Guest, srv: &mut Server, fh: &[u8], nfs: SocketAddr) -> NlmClient {
    srv.crash();
    let grace = (
        "DITTOFS_NFS_LOCKS_GRACE_SECONDS".into(),
        GRACE.as_secs().to_string(),
    );
    srv.extra_env.retain(|(k, _)| *k != grace.0);
    srv.extra_env.push(grace);
    let started = Instant::now();
    srv.spawn();
    let mut host = NlmClient::connect_addr(nfs, "host-client", 4242);
    assert_eq!(host.lock(fh, WHOLE, true), Nlm4Stat::DeniedGracePeriod);
    // SM_NOTIFY -> the guest's statd -> its lockd -> LOCK with reclaim, before grace ends
    let left = GRACE.saturating_sub(started.elapsed()).as_secs();
    g.wait_until(
        "the guest did not reclaim its lock during grace",
        left,
        || nlm_calls(srv.http_port, "LOCK") >= 2,
    );
    eprintln!(
        "the guest reclaimed {:?} after the restart",
        started.elapsed()
    );
    assert_eq!(host.lock(fh, WHOLE, true), Nlm4Stat::DeniedGracePeriod);
    std::thread::sleep(
        (started + GRACE + Duration::from_millis(500)).saturating_duration_since(Instant::now()),
    );
    assert_eq!(
        host.lock(fh, WHOLE, true),
        Nlm4Stat::Denied,
        "the guest's reclaimed lock"
    );
    let t = host.test(fh, WHOLE, true);
    assert_eq!(t.stat, Nlm4Stat::Denied);
    assert!(t.holder.expect("holder").exclusive);
    g.touch("restart-checked");
    g.wait_for("unlocked", 60);
    assert_eq!(host.lock(fh, WHOLE, true), Nlm4Stat::Granted);
    assert_eq!(host.unlock(fh, WHOLE), Nlm4Stat::Granted);
    host
}

#[test]
#[ignore = "needs the e2e/vm guest, root and tap devices"]
fn nlm_linux_kernel_client_contends_with_a_userspace_client() {
    let Some(net) = GuestNet::enter() else {
        return;
    };
    // the checkout the test runs in (a cached binary keeps the path it was built at)
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..");
    let mut srv = Server::unstarted(vec![
        ("DITTOFS_NFS_BIND".into(), HOST_ADDR.into()),
        ("DITTOFS_NFS_LOCKS_GRACE_SECONDS".into(), "0".into()),
        ("DITTOFS_NFS_PORTMAPPER_ENABLED".into(), "true".into()),
        ("DITTOFS_NFS_PORTMAPPER_PORT".into(), "111".into()),
        // write delegations as by default (the common test server turns them off)
        ("DITTOFS_NFS_V4_WRITE_DELEGATIONS".into(), "true".into()),
    ]);
    srv.spawn();
    let nfs = SocketAddr::new(HOST_ADDR.parse().unwrap(), srv.nfs_port);
    let mut c = Client::connect_addr(nfs);
    let dir = c.mount_root();
    let fh = c.create_file(&dir, "f").0;
    let fh_g = c.create_file(&dir, "g").0;
    let fh_h = c.create_file(&dir, "h");
    let mut host = NlmClient::connect_addr(nfs, "host-client", 4242);
    assert_eq!(host.lock(&fh, WHOLE, true), Nlm4Stat::Granted);

    let share = tempfile::tempdir().unwrap();
    std::fs::write(share.path().join("lockf.py"), LOCKF_PY).unwrap();
    std::fs::write(share.path().join("v4lock.py"), V4LOCK_PY).unwrap();
    std::fs::write(share.path().join("v40deleg.py"), V40DELEG_PY).unwrap();
    let child = Command::new(root.join("e2e/vm/run-in-guest.sh"))
        .arg(guest_script(srv.nfs_port))
        .env("VM_SHARE", share.path())
        .env("VM_TAP", net.tap)
        .env("VM_TIMEOUT", "600")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run-in-guest.sh");
    let mut g = Guest {
        child: Some(child),
        share: share.path().to_path_buf(),
    };

    nonblocking_flock(&mut g, &mut host, &fh);
    lockf_ranges(&mut g, &mut host, &fh);
    blocking_waiter(&mut g, &mut host, &fh, srv.http_port);
    let mut host = restart_and_reclaim(&mut g, &mut srv, &fh, nfs);
    v4_against_nlm(&mut g, &mut host, &fh_g);
    let mut host = v4_reclaim_against_nlm(&mut g, &mut srv, &fh_g, nfs);
    v40_write_delegation(&mut g, &mut host, &fh_h, &srv);
    g.finish();
    // the guest's lock was released by its unlock: the file is free again
    assert_eq!(host.test(&fh, WHOLE, true).stat, Nlm4Stat::Granted);
}
