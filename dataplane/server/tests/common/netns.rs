//! A network for a qemu guest that the server can call back: the calling thread moves
//! into a new, anonymous network namespace of its own (`unshare(CLONE_NEWNET)`), in which
//! a tap device gets the host side's address [`HOST_ADDR`]; `e2e/vm/run-in-guest.sh` with
//! `VM_TAP` plugs the guest's NIC into it, and the guest (`guest-init.sh`) has
//! [`GUEST_ADDR`] on the same /24. Servers started from this thread listen in the same
//! namespace and reach the guest's own services (rpcbind, lockd, statd), which qemu user
//! networking cannot offer.
//!
//! Invariants: the host's network namespace is never changed. Only the calling thread,
//! and the processes and threads it starts afterwards, are in the new namespace (the test
//! process's other threads stay where they were); the tap and the addresses exist only
//! inside it. The namespace has no name: it and its tap go away when the last process in
//! it exits, also when the test is killed, so nothing is left to clean up by name. The
//! thread never returns to the host's namespace.

use super::{on_path, require};
use std::path::Path;
use std::process::Command;

/// The host side of the guest's link (the address the guest mounts from).
pub const HOST_ADDR: &str = "10.0.2.2";
/// The guest's address (set by `guest-init.sh`).
pub const GUEST_ADDR: &str = "10.0.2.15";
/// The tap device inside the namespace (no other name can clash there).
pub const TAP: &str = "dfsguest0";

/// The namespace the calling thread is in; deletes its tap when dropped.
#[derive(Debug)]
pub struct GuestNet {
    pub tap: &'static str,
}

fn ip(args: &str) {
    let st = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .expect("run ip");
    assert!(
        st.success(),
        "`ip {args}` failed inside the test's namespace"
    );
}

impl GuestNet {
    /// Checks the prerequisites (root, `ip`, tap support), moves the calling thread into
    /// a new network namespace and makes the tap there (loopback up, [`HOST_ADDR`]/24 on
    /// the tap). None: a prerequisite is missing outside CI (the test is skipped).
    pub fn enter() -> Option<GuestNet> {
        // SAFETY: geteuid(2) has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !require(
            root,
            "root is needed for a network namespace and a tap device",
        ) || !require(
            on_path("ip"),
            "`ip` (Debian package iproute2) is not installed",
        ) || !require(
            Path::new("/dev/net/tun").exists(),
            "/dev/net/tun is missing: no tap devices on this host (modprobe tun)",
        ) {
            return None;
        }
        // SAFETY: unshare(2) with CLONE_NEWNET changes only the calling thread's namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );
        ip("link set lo up");
        ip(&format!("tuntap add dev {TAP} mode tap"));
        ip(&format!("addr add {HOST_ADDR}/24 dev {TAP}"));
        ip(&format!("link set {TAP} up"));
        Some(GuestNet { tap: TAP })
    }
}

impl Drop for GuestNet {
    fn drop(&mut self) {
        // the namespace would take it along anyway; this frees it as soon as qemu is gone
        let _ = Command::new("ip").args(["link", "del", self.tap]).status();
    }
}
