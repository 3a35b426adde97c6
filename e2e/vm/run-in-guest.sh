#!/bin/bash
# run-in-guest.sh 'COMMAND' - boot the guest made by build-guest.sh under qemu, run COMMAND
# (bash, as root) inside it, power off, and exit with COMMAND's exit status.
#
# In the guest:
#   /share        the host directory $VM_SHARE over 9p, read-write (inputs in, results out);
#                 the guest starts in /share
#   $VM_SERVER    10.0.2.2 = the host's 127.0.0.1 (qemu user networking, "slirp"): a server
#                 listening on host loopback port P is reached from the guest as 10.0.2.2:P.
#                 The guest has no default route, so it can address nothing else.
#                 With VM_TAP the guest's NIC is that tap device instead (no slirp): the
#                 caller made it, normally in a network namespace of its own, with
#                 10.0.2.2/24 on the host side; the guest is then reachable at 10.0.2.15
#                 (servers can call back into it: NLM GRANTED, SM_NOTIFY).
#   stdout/stderr of COMMAND (and kernel warnings) go to the serial console = our stdout;
#   the guest's dmesg is saved to $VM_SHARE/.vmtest/dmesg.txt
#
# Env: VM_SHARE  host dir for /share (default: a temp dir, deleted afterwards)
#      VM_ACCEL  auto|tcg|kvm (auto: kvm only where /dev/kvm is real hardware KVM; on the
#                PVM nested "KVM" of these machines an unmodified kernel cannot run, so TCG)
#      VM_TAP    a tap device to plug the guest into (default: qemu user networking)
#      VM_MEM (MiB, default 2048)  VM_SMP (default 2)  VM_TIMEOUT (seconds, default 3600)
# Exit: COMMAND's status; 125 when the guest never reported one (crash, timeout: see output)
set -euo pipefail
LOG_TAG=run-in-guest
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 'COMMAND'" >&2; exit 2; }
need_guest
need_cmd qemu-system-x86_64 qemu-system-x86
need_cmd timeout coreutils

ACCEL=${VM_ACCEL:-auto}
if [ "$ACCEL" = auto ]; then
  if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then ACCEL=kvm; else ACCEL=tcg; fi
fi
# shellcheck disable=SC2054  # the commas belong to qemu's option syntax
case $ACCEL in
  kvm) ACC=(-accel kvm -cpu host) ;;
  # full emulation, one host thread per vCPU; the guest kernel is booted through its PVH
  # entry (uncompressed vmlinux), which skips the BIOS and the decompressor
  tcg) ACC=(-accel tcg,thread=multi,tb-size=512 -cpu max) ;;
  *) die "bad VM_ACCEL=$ACCEL (auto|tcg|kvm)" ;;
esac

# shellcheck disable=SC2054
if [ -n "${VM_TAP:-}" ]; then
  # (ip, not /sys/class/net: sysfs shows the namespace it was mounted in)
  ip link show dev "$VM_TAP" >/dev/null 2>&1 || die "VM_TAP=$VM_TAP: no such network device here"
  NET=(-netdev "tap,id=n0,ifname=$VM_TAP,script=no,downscript=no")
else
  NET=(-netdev user,id=n0,net=10.0.2.0/24,host=10.0.2.2)
fi

QEMU_PID=
TMP_SHARE=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  trap '' INT TERM # a second signal (the runner's and a timeout's) must not cut it short
  # only what this script started: the qemu (timeout) process and its own temp dir
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then kill "$QEMU_PID" 2>/dev/null || true; fi
  if [ -n "$TMP_SHARE" ]; then rm -rf "$TMP_SHARE"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${VM_SHARE:-}" ]; then
  SHARE=$VM_SHARE
else
  TMP_SHARE=$(mktemp -d /tmp/dittofs-vm-share.XXXXXX)
  SHARE=$TMP_SHARE
fi
mkdir -p "$SHARE/.vmtest"
rm -f "$SHARE/.vmtest/rc" "$SHARE/.vmtest/dmesg.txt"
printf '%s\n' "$1" >"$SHARE/.vmtest/cmd.sh"

T0=$(now_ms)
# -no-reboot + the guest's sysrq power-off make qemu exit when the command is done.
# snapshot=on: the root image is never modified (writes go to a throw-away overlay).
timeout -k 10 "${VM_TIMEOUT:-3600}" qemu-system-x86_64 "${ACC[@]}" -machine q35 \
  -m "${VM_MEM:-2048}" -smp "${VM_SMP:-2}" -display none -monitor none -serial stdio -no-reboot \
  -kernel "$GUEST_DIR/vmlinux" -initrd "$GUEST_DIR/initrd.img" \
  -append "console=ttyS0 quiet loglevel=4 panic=-1" \
  -drive file="$GUEST_DIR/root.img",if=virtio,format=raw,snapshot=on,cache=unsafe \
  -virtfs local,path="$SHARE",mount_tag=share,security_model=passthrough,id=share \
  "${NET[@]}" -device virtio-net-pci,netdev=n0 \
  </dev/null &
QEMU_PID=$!
qrc=0
wait "$QEMU_PID" || qrc=$?
QEMU_PID=
rc=$(cat "$SHARE/.vmtest/rc" 2>/dev/null || echo 125)
[ "$qrc" = 124 ] && log "guest killed after VM_TIMEOUT=${VM_TIMEOUT:-3600} s"
[ "$rc" = 125 ] && log "the guest did not report an exit status (qemu status $qrc)"
log "accel=$ACCEL status=$rc wall=$((($(now_ms) - T0) / 1000)).$(((($(now_ms) - T0) % 1000) / 100)) s"
exit "$rc"
