#!/bin/bash
# workload.sh - real-application I/O through the Linux NFSv3 client (host side): boots the
# guest, which runs workload-guest.sh on the mount (1 GiB file + 10,000 small files copied in
# and verified by sha256, tar pipe, git, renames, rm -rf, and a server restart in the middle).
#
# The restart: the guest writes + fsyncs files, then creates .vmtest/restart-request on the
# 9p share; this script then runs SERVER_KILL_CMD (must SIGKILL the server), waits for the
# port to close, runs SERVER_START_CMD, waits for the port, and writes .vmtest/restart-done
# ("ok" or the error). The guest checks its open directory/file and every fsynced byte.
#
# Env: NFS_PORT (12049)  MOUNT_PORT (= NFS_PORT)  EXPORT (/export)  MOUNT_OPTS
#      SERVER_START_CMD SERVER_KILL_CMD [SERVER_STOP_CMD]   (see lib.sh); without the first
#        two the restart step is skipped - except with CI=true, where that is an error
#      BIG_MB (1024)  SMALL_N (10000)  VM_TIMEOUT (default 3600 s)
#      RESULTS_DIR (default: a new $DITTOFS_CACHE/vm/results/workload.<time>.<pid>, for console.log)
# Output: PASS/FAIL per step, the wall time, and last "workload: N passed, N failed".
set -euo pipefail
LOG_TAG=workload
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
T0=$(now_ms)
# one results dir per run: concurrent runs must not share a console log
RES=${RESULTS_DIR:-$VM_DIR/results/workload.$(date +%Y%m%d-%H%M%S).$$}
export BIG_MB=${BIG_MB:-1024} SMALL_N=${SMALL_N:-10000}

RESTART=1
if [ -z "${SERVER_KILL_CMD:-}" ] || [ -z "${SERVER_START_CMD:-}" ]; then
  [ "${CI:-}" = true ] && die "CI=true: SERVER_KILL_CMD and SERVER_START_CMD are required (server restart step)"
  log "WARNING: SERVER_KILL_CMD/SERVER_START_CMD not set: the server-restart step is skipped"
  RESTART=0
fi
export RESTART

"$VM_HERE/build-guest.sh"
SHARE='' VM_PID='' TAIL_PID=''
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  trap '' INT TERM # a second signal (the runner's and a timeout's) must not cut it short
  # only our own children: run-in-guest.sh (its trap stops its qemu) and the log tail
  [ -z "$VM_PID" ] || kill "$VM_PID" 2>/dev/null || true
  [ -z "$TAIL_PID" ] || kill "$TAIL_PID" 2>/dev/null || true
  [ -z "$VM_PID" ] || wait "$VM_PID" 2>/dev/null || true
  server_release
  [ -z "$SHARE" ] || rm -rf "$SHARE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
server_ensure

# restart_server: SIGKILL + start through the caller's hooks; prints "ok" or the error
restart_server() {
  local t0 i
  t0=$(now_ms)
  bash -c "$SERVER_KILL_CMD" >&2 || { echo "SERVER_KILL_CMD failed"; return; }
  for ((i = 0; i < 100; i++)); do port_open "$NFS_PORT" || break; sleep 0.1; done
  port_open "$NFS_PORT" && { echo "port $NFS_PORT still open 10 s after SERVER_KILL_CMD"; return; }
  bash -c "$SERVER_START_CMD" >&2 || { echo "SERVER_START_CMD failed"; return; }
  wait_port "$NFS_PORT" "${SERVER_START_TIMEOUT:-60}" || { echo "server not back on port $NFS_PORT"; return; }
  log "server killed and restarted in $(($(now_ms) - t0)) ms"
  echo ok
}

SHARE=$(mktemp -d /tmp/dittofs-workload.XXXXXX)
cp "$VM_HERE/guest-lib.sh" "$VM_HERE/workload-guest.sh" "$SHARE/"
mkdir -p "$RES" "$SHARE/.vmtest"
: >"$RES/console.log"
log "booting the guest: workload on $EXPORT (NFS port $NFS_PORT, MOUNT port $MOUNT_PORT), BIG_MB=$BIG_MB SMALL_N=$SMALL_N"
VM_SHARE=$SHARE VM_TIMEOUT=${VM_TIMEOUT:-3600} "$VM_HERE/run-in-guest.sh" \
  "$(guest_env BIG_MB SMALL_N RESTART RESTART_TIMEOUT) bash /share/workload-guest.sh" >"$RES/console.log" 2>&1 &
VM_PID=$!
# show the guest's lines as they come (not the kernel's timestamped ones)
tail -n +1 -f --pid="$VM_PID" "$RES/console.log" | grep -a --line-buffered -v -e '^\[ *[0-9.]*\] ' -e '^dittofs-init' &
TAIL_PID=$!
while kill -0 "$VM_PID" 2>/dev/null; do
  if [ -e "$SHARE/.vmtest/restart-request" ]; then
    rm -f "$SHARE/.vmtest/restart-request"
    log "the guest asks for a server restart"
    if [ "$RESTART" = 1 ]; then res=$(restart_server); else res="no restart hooks"; fi
    [ "$res" = ok ] || log "restart failed: $res"
    printf '%s\n' "$res" >"$SHARE/.vmtest/restart-done"
  fi
  sleep 0.5
done
rc=0
wait "$VM_PID" || rc=$?
VM_PID=
wait "$TAIL_PID" 2>/dev/null || true
TAIL_PID=

passed=$(grep -a -c '^PASS ' "$RES/console.log" || true)
failed=$(grep -a -c '^FAIL ' "$RES/console.log" || true)
if ! grep -a -q '^workload-guest: done ' "$RES/console.log"; then
  echo "FAIL the guest run did not complete (status $rc); console log $RES/console.log"
  failed=$((failed + 1))
elif [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
  echo "FAIL the guest exited with status $rc"
  failed=1
fi
echo "workload: tier wall time $((($(now_ms) - T0) / 1000)) s (BIG_MB=$BIG_MB SMALL_N=$SMALL_N)"
echo "workload: $passed passed, $failed failed"
[ "$failed" = 0 ] || exit 1
