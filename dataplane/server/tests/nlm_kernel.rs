//! NLM with the Linux kernel client: the qemu guest of `e2e/vm` mounts the real `dfs`
//! without `nolock` (its rpcbind and rpc.statd running, as on a normal host) and contends
//! for locks with the userspace NLM client of `common::nlm` on the host: `flock` refused
//! while the host holds the file, granted once it unlocks, the guest's lock seen by the
//! host's TEST and LOCK, then `lockf` byte ranges (shared with shared, exclusive refused).
//!
//! Ignored by default: it needs the guest (`e2e/vm/build-guest.sh`), root and port 111
//! (the kernel asks the server's rpcbind on 111 for NLM; `dfs` serves its embedded
//! portmapper there). Run: `cargo test -p dittofs-server --test nlm_kernel -- --ignored`.
//! Only non-blocking locks: under qemu user networking the guest is not reachable from
//! the host, so a GRANTED callback for a blocking lock cannot reach its lockd.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::nlm::NlmClient;
use common::{Client, Server};
use dittofs_nfs::nlm4::Nlm4Stat;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WHOLE: (u64, u64) = (0, 0);

/// The guest runner; SIGTERMed if the test fails first (its trap stops qemu).
struct Guest(Option<std::process::Child>);

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            // SAFETY: kill(2) on the pid of a child we spawned and still own.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let _ = c.wait();
        }
    }
}

fn wait_for(path: &Path, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "guest never wrote {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn guest_script(port: u16) -> String {
    format!(
        r#"set -e
(rpcbind -w 2>/dev/null || rpcbind); rpc.statd; sleep 1
mkdir -p /mnt/t
mount -t nfs -o vers=3,proto=tcp,port={port},mountport={port},mountproto=tcp 10.0.2.2:/export /mnt/t
if flock -n -x /mnt/t/f true; then echo GUEST-GOT-A-HELD-LOCK; exit 1; fi
touch /share/refused
for i in $(seq 600); do [ -e /share/released ] && break; sleep 0.1; done
flock -n -x /mnt/t/f -c 'touch /share/holds; for i in $(seq 600); do [ -e /share/checked ] && break; sleep 0.1; done'
python3 /share/lockf.py
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

#[test]
#[ignore = "needs the e2e/vm guest, root and port 111"]
fn nlm_linux_kernel_client_contends_with_a_userspace_client() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let srv = Server::start_with(vec![
        ("DITTOFS_NFS_LOCKS_GRACE_SECONDS".into(), "0".into()),
        ("DITTOFS_NFS_PORTMAPPER_ENABLED".into(), "true".into()),
        ("DITTOFS_NFS_PORTMAPPER_PORT".into(), "111".into()),
    ]);
    let mut c = Client::connect(srv.nfs_port);
    let dir = c.mount_root();
    let fh = c.create_file(&dir, "f").0;
    let mut host = NlmClient::connect(srv.nfs_port, "host-client", 4242);
    assert_eq!(host.lock(&fh, WHOLE, true), Nlm4Stat::Granted);

    let share = tempfile::tempdir().unwrap();
    std::fs::write(share.path().join("lockf.py"), LOCKF_PY).unwrap();
    let guest = Command::new(root.join("e2e/vm/run-in-guest.sh"))
        .arg(guest_script(srv.nfs_port))
        .env("VM_SHARE", share.path())
        .env("VM_TIMEOUT", "600")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run-in-guest.sh");
    let mut guest = Guest(Some(guest));
    let s = share.path();

    // 1. refused while the host holds the file; granted once the host unlocks
    wait_for(&s.join("refused"), 300);
    assert_eq!(host.unlock(&fh, WHOLE), Nlm4Stat::Granted);
    std::fs::write(s.join("released"), "").unwrap();
    wait_for(&s.join("holds"), 60);
    let t = host.test(&fh, WHOLE, true);
    assert_eq!(t.stat, Nlm4Stat::Denied, "the guest's flock is an NLM lock");
    assert!(t.holder.expect("holder").exclusive);
    assert_eq!(host.lock(&fh, (100, 1), false), Nlm4Stat::Denied);
    std::fs::write(s.join("checked"), "").unwrap();

    // 2. the guest's shared lockf(0..10): shared fits, exclusive does not, elsewhere is free
    wait_for(&s.join("range"), 60);
    assert_eq!(host.lock(&fh, (0, 10), false), Nlm4Stat::Granted);
    assert_eq!(host.lock(&fh, (5, 1), true), Nlm4Stat::Denied);
    assert_eq!(host.lock(&fh, (20, 5), true), Nlm4Stat::Granted);
    assert_eq!(host.unlock(&fh, WHOLE), Nlm4Stat::Granted);
    std::fs::write(s.join("checked2"), "").unwrap();

    let out = guest
        .0
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
    // the guest's lock was released by its unlock: the file is free again
    assert_eq!(host.test(&fh, WHOLE, true).stat, Nlm4Stat::Granted);
}
