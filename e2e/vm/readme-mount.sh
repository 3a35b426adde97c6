#!/usr/bin/env bash
# readme-mount.sh - proves the README's promise from a clean data directory: the README's
# run command (`cargo run --release --bin dfs -- start`, embedded defaults, port 12049) and,
# in the guest, the README's Linux mount command verbatim (server address 10.0.2.2 instead
# of localhost, since the guest reaches the host's loopback there). Without `nolock` the
# Linux client needs rpc.statd, so the guest starts rpcbind + rpc.statd first, as a normal
# Linux host has them. Ends with "readme-mount: N passed, N failed".
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export DITTOFS_CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$DITTOFS_CACHE/target}
log() { printf '[readme-mount %(%T)T] %s\n' -1 "$*" >&2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dfs-readme.XXXXXX")
PID=''
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  trap '' INT TERM # a second signal (the runner's and a timeout's) must not cut it short
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID"; wait "$PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
if (exec 3<>/dev/tcp/127.0.0.1/12049) 2>/dev/null; then
  log "port 12049 is busy: cannot run the README command as written"; echo "readme-mount: 0 passed, 1 failed"; exit 1
fi
(cd "$ROOT" && cargo build --release --quiet --bin dfs) || { echo "readme-mount: 0 passed, 1 failed"; exit 1; }
# The README command, with the data directory pointed at a temp dir (DITTOFS_DATA_DIR)
# so the test does not write to /var/lib/dittofs.
(cd "$ROOT" && DITTOFS_DATA_DIR="$WORK/data" DITTOFS_HTTP_PORT=0 DITTOFS_CONTROL_PORT=0 exec cargo run --release --quiet --bin dfs -- start) > "$WORK/dfs.out" 2>&1 &
PID=$!
for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/12049) 2>/dev/null && break; sleep 0.1; done
grep -q "data directory: $WORK/data" "$WORK/dfs.out" || { log "dfs did not print its data directory"; cat "$WORK/dfs.out" >&2; }
MOUNT_CMD=$(grep -o 'sudo mount -t nfs -o nfsvers=3,tcp,port=12049,mountport=12049 localhost:/export /mnt/test' "$ROOT/README.md" | head -1)
[ -n "$MOUNT_CMD" ] || { log "README has no Linux mount command"; echo "readme-mount: 0 passed, 1 failed"; exit 1; }
GUEST_CMD="${MOUNT_CMD#sudo }"
GUEST_CMD="${GUEST_CMD/localhost:/10.0.2.2:}"
log "guest runs: $GUEST_CMD"
"$HERE/run-in-guest.sh" "set -e
rpcbind -w 2>/dev/null || rpcbind; rpc.statd
mkdir -p /mnt/test
$GUEST_CMD
echo hello-from-the-readme > /mnt/test/readme-check.txt
sync
umount /mnt/test
$GUEST_CMD
test \"\$(cat /mnt/test/readme-check.txt)\" = hello-from-the-readme
rm /mnt/test/readme-check.txt
umount /mnt/test
echo README-MOUNT-OK" 2>&1 | tee "$WORK/guest.log" | grep -E "README-MOUNT-OK|mount|error|rc=" >&2
if grep -q README-MOUNT-OK "$WORK/guest.log"; then echo "readme-mount: 1 passed, 0 failed"; exit 0; fi
tail -30 "$WORK/guest.log" >&2
echo "readme-mount: 0 passed, 1 failed"; exit 1
