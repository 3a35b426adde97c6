#!/usr/bin/env bash
# tier.sh - the kernel-client tier against dfs: builds dfs (release), starts it on loopback
# with a fresh data directory (squash none: pjdfstest runs as root and chowns), then
# through the Linux NFSv3 client in the qemu guest runs pjdfstest and the workload (which
# SIGKILLs and restarts dfs in the middle), then the workload again, a quarter of its size,
# through an NFSv4.2 mount (the restart there is an NFSv4 reclaim in the grace period).
# Ends with
# "kernel-client-tier: N passed, N failed".
#
# Env: NFS_PORT (default 22049)  DFS (a dfs binary to use instead of building one)
#      BIG_MB / SMALL_N (workload sizes, defaults 1024 / 10000)
#      TIER_SUITES (default "pjdfstest workload workload@4.2"; SUITE@VERS runs SUITE with
#      NFS_VERS=VERS, an NFSv4 mount of that minor version)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export DITTOFS_CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$DITTOFS_CACHE/target}
export NFS_PORT=${NFS_PORT:-22049}
export MOUNT_PORT=$NFS_PORT
# Workload size: the issue's tree, a 1 GiB file and 10,000 small files (about 17 min
# through the emulated guest against dfs here). BIG_MB / SMALL_N shrink it for local runs.
export BIG_MB=${BIG_MB:-1024} SMALL_N=${SMALL_N:-10000}
T0=$(date +%s)
log() { printf '[tier %(%T)T] %s\n' -1 "$*" >&2; }

if [ -z "${DFS:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet --bin dfs) || { log "cargo build failed"; echo "kernel-client-tier: 0 passed, 1 failed"; exit 1; }
  DFS=$CARGO_TARGET_DIR/release/dfs
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dfs-tier.XXXXXX")
HTTP_PORT=$((NFS_PORT + 1))
# The start command is also used by workload.sh to restart the server after its SIGKILL.
export SERVER_START_CMD="DITTOFS_NFS_BIND=127.0.0.1 DITTOFS_NFS_PORT=$NFS_PORT DITTOFS_HTTP_PORT=$HTTP_PORT DITTOFS_CONTROL_PORT=$((NFS_PORT + 2)) \
DITTOFS_SHARES='[{name: /export, squash: none}]' setsid '$DFS' start --data-dir '$WORK/data' >>'$WORK/dfs.log' 2>&1 </dev/null & echo \$! > '$WORK/pid'"
export SERVER_KILL_CMD="kill -KILL \$(cat '$WORK/pid')"
export SERVER_STOP_CMD="kill -TERM \$(cat '$WORK/pid')"
cleanup() {
  trap '' INT TERM # a second signal (the runner's and a timeout's) must not cut it short
  if [ -s "$WORK/pid" ] && kill -0 "$(cat "$WORK/pid")" 2>/dev/null; then
    kill -TERM "$(cat "$WORK/pid")"
    for _ in $(seq 100); do kill -0 "$(cat "$WORK/pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
bash -c "$SERVER_START_CMD"
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$NFS_PORT") 2>/dev/null && break; sleep 0.1; done

passed=0; failed=0
for s in ${TIER_SUITES:-pjdfstest workload workload@4.2}; do
  log "=== $s"
  # SUITE@VERS: the suite through an NFSv4 mount of that minor version (guest-lib.sh)
  # (the NFSv4 pass of the workload is a quarter of its size: the same paths, in less
  # of CI's time; the full-size data goes through the NFSv3 pass)
  name=${s%@*} vers=3 big=$BIG_MB small=$SMALL_N
  [ "$name" != "$s" ] && vers=${s#*@} big=$(( (BIG_MB + 3) / 4 )) small=$(( (SMALL_N + 3) / 4 ))
  if NFS_VERS=$vers BIG_MB=$big SMALL_N=$small "$HERE/$name.sh"; then passed=$((passed+1)); else failed=$((failed+1)); log "$s FAILED (dfs log: last lines below)"; tail -20 "$WORK/dfs.log" >&2; fi
done
# a clean shutdown must exit 0
if kill -TERM "$(cat "$WORK/pid")" 2>/dev/null; then
  for _ in $(seq 300); do kill -0 "$(cat "$WORK/pid")" 2>/dev/null || break; sleep 0.1; done
fi
log "tier wall time $(( $(date +%s) - T0 )) s"
echo "kernel-client-tier: $passed passed, $failed failed"
[ "$failed" = 0 ]
