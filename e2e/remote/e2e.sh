#!/usr/bin/env bash
# e2e.sh - the S3 tier end to end, against a real S3 server (SeaweedFS `weed mini` on
# loopback) and the real `dfs`, driven through NFS by native libnfs clients (nfs-cp,
# nfs-cat) and, for deletes, by the Linux kernel NFS client in the qemu guest:
#   1. write a file larger than the local tier's cap, wait for uploads, check that the
#      local tier was evicted down under its cap, read it back cold, compare;
#   2. dedup: copy a 1 GiB file twice and a 5%-modified copy onto the full tier; the
#      bucket grows by about 1x plus the changed chunks (numbers printed), and no copy
#      stalls on the local tier's cap (each within 2x of the first copy's time + 15 s);
#   3. GC: delete files (kernel client), GC with grace 0: their objects are gone, every
#      live file still reads back bit-exact;
#   3b. a second server on the same bucket + prefix refuses to start (its GC would sweep
#      the first one's chunks);
#   4. faults: S3 stopped during writes (and dfs killed meanwhile): writes succeed, nothing
#      is lost, uploads resume when both are back; S3 stalled (SIGSTOP) or stopped during
#      cold reads: the read fails within the configured deadline with a clear error.
# Ends with "remote-e2e: N passed, N failed".
#
# Env: DEDUP_MIB (default 1024), BIG_MIB (default 600), CAP_MIB (default 256),
#      COPY_TIMEOUT (seconds one nfs-cp may take, default 600)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VM=$ROOT/e2e/vm
export DITTOFS_CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$DITTOFS_CACHE/target}
DEDUP_MIB=${DEDUP_MIB:-1024}
BIG_MIB=${BIG_MIB:-600}
CAP_MIB=${CAP_MIB:-256}
READ_TIMEOUT=5
log() { printf '[remote-e2e %(%T)T] %s\n' -1 "$*" >&2; }
passed=0; failed=0
ok() { passed=$((passed+1)); log "PASS $*"; }
bad() { failed=$((failed+1)); log "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "remote-e2e: $passed passed, $failed failed"; [ "$failed" = 0 ]; exit $?; }

WEED=${DITTOFS_WEED_BIN:-$DITTOFS_CACHE/bin/weed}
for t in "$WEED" nfs-cp nfs-cat python3 cmp; do
  command -v "$t" >/dev/null || { bad "prerequisite $t missing (run scripts/install-deps.sh)"; finish; }
done
(cd "$ROOT" && cargo build --release --quiet --bin dfs --bin dfsctl) || { bad "cargo build"; finish; }
DFS=$CARGO_TARGET_DIR/release/dfs
DFSCTL=$CARGO_TARGET_DIR/release/dfsctl
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dfs-remote.XXXXXX")
export DFSCTL_CONFIG=$WORK/dfsctl.yaml
DFS_PID='' WEED_PID=''
# Disk: the source files, their read-back copies, SeaweedFS's volumes and dfs's data
# directory all live under $WORK, at most about 2x BIG + 4x DEDUP at once. A full disk
# would show up as stalls and NOSPC far from the cause: say so up front instead.
NEED=$(((2 * BIG_MIB + 4 * DEDUP_MIB + 512) << 20))
AVAIL=$(df --output=avail -B1 "$WORK" | tail -1)
log "free space under $WORK: $((AVAIL >> 20)) MiB (the suite needs about $((NEED >> 20)) MiB)"
if [ "$AVAIL" -lt "$NEED" ]; then
  bad "not enough free space under ${TMPDIR:-/tmp} ($((AVAIL >> 20)) MiB, needs $((NEED >> 20)) MiB; set TMPDIR elsewhere)"
  rm -rf "$WORK"; finish
fi

# ---- ports: free ones in 20000-31999, never reused within the run ----
USED=$(ss -Htan | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
port() { local p; while :; do p=$((20000 + RANDOM % 12000)); grep -qx "$p" <<<"$USED" || break; done
  USED+=$'\n'$p; echo "$p"; }
NFS_PORT=$(port); CTL_PORT=$(port); S3_PORT=$(port)
# (`weed mini` sizes its volumes and their count from the free disk space unless told:
# fixed here, so the S3 server behaves the same on every machine: 256 MiB volumes, up to
# 48 of them, more than the suite ever writes before a vacuum.)
WEED_FLAGS=(-master.volumeSizeLimitMB=256 -volume.max=48)
for f in master.port master.port.grpc volume.port volume.port.grpc filer.port filer.port.grpc \
  s3.port.grpc s3.port.iceberg s3.port.lance admin.port admin.port.grpc metricsPort s3.metricsPort; do
  WEED_FLAGS+=("-$f=$(port)")
done

cleanup() {
  trap '' INT TERM # a second signal (the runner's and a timeout's) must not cut it short
  [ -n "$WEED_PID" ] && kill -CONT "$WEED_PID" 2>/dev/null
  for p in $DFS_PID $WEED_PID; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p"; wait "$p" 2>/dev/null; fi
  done
  if [ "$failed" != 0 ]; then
    log "dfs log tail:"; tail -40 "$WORK/dfs.log" >&2
    log "weed log tail:"; tail -10 "$WORK/weed.log" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() { # wait_port PORT PID TRIES: until PORT accepts (every 0.1 s), or PID died
  for _ in $(seq "$3"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
start_weed() {
  mkdir -p "$WORK/s3"
  AWS_ACCESS_KEY_ID=dittofs-e2e AWS_SECRET_ACCESS_KEY=dittofs-e2e-secret \
    setsid "$WEED" mini -dir="$WORK/s3" -ip=127.0.0.1 -ip.bind=127.0.0.1 -admin.ui=false \
    -webdav=false -s3.port="$S3_PORT" "${WEED_FLAGS[@]}" >>"$WORK/weed.log" 2>&1 </dev/null &
  WEED_PID=$!
  wait_port "$S3_PORT" "$WEED_PID" 600
}
stop_weed() { kill -TERM "$WEED_PID" 2>/dev/null; wait "$WEED_PID" 2>/dev/null; WEED_PID=''; }

write_config() { # write_config CAP_BYTES
  cat >"$WORK/dfs.yaml" <<EOF
data_dir: $WORK/data
logging: {level: INFO}
nfs: {bind: 127.0.0.1, port: $NFS_PORT, portmapper: {enabled: false}}
http: {enabled: false}
control: {bind: 127.0.0.1, port: $CTL_PORT}
metadata_stores: [{name: default, type: sled}]
block_stores:
  local: [{name: default, type: fs, max_size: $1}]
  remote:
    - name: s3
      type: s3
      bucket: dittofs-e2e
      region: us-east-1
      endpoint: http://127.0.0.1:$S3_PORT
      prefix: tier
      force_path_style: true
      access_key_id: dittofs-e2e
      secret_access_key: dittofs-e2e-secret
      read_timeout_seconds: $READ_TIMEOUT
      create_bucket: true
shares: [{name: /export, remote: s3, squash: none}]
EOF
}
start_dfs() {
  "$DFS" start --config "$WORK/dfs.yaml" >>"$WORK/dfs.log" 2>&1 </dev/null &
  DFS_PID=$!
  wait_port "$CTL_PORT" "$DFS_PID" 300
}
stop_dfs() { kill -"${1:-TERM}" "$DFS_PID"; wait "$DFS_PID" 2>/dev/null; DFS_PID=''; }

URL() { echo "nfs://127.0.0.1/export/$1?nfsport=$NFS_PORT&mountport=$NFS_PORT&version=3"; }
# nfs-cp SRC DST, bounded (COPY_TIMEOUT s): a stalled copy fails the check with the
# server's state instead of hanging the suite.
COPY_TIMEOUT=${COPY_TIMEOUT:-600}
copy() {
  timeout -k 10 "$COPY_TIMEOUT" nfs-cp "$1" "$2" >"$WORK/nfs.out" 2>&1 && return 0
  local rc=$?
  cat "$WORK/nfs.out" >&2
  if [ $rc = 124 ]; then
    log "nfs-cp $1 -> $2 stalled for $COPY_TIMEOUT s; server state:"
    "$DFSCTL" store block remote status >&2 2>&1
    tail -20 "$WORK/dfs.log" >&2
  fi
  return 1
}
put() { copy "$1" "$(URL "$2")"; }
get() { copy "$(URL "$1")" "$2"; }
mib() { python3 -c "print(f'{$1/1048576:.1f} MiB')"; }

# status FIELD...: prints fields of `dfsctl -o json store block remote status` (remote s3
# and local default), e.g. `status r.pending_chunks l.used_bytes`; SCAN=1 adds --scan.
status() {
  local scan=(); [ -n "${SCAN:-}" ] && scan=(--scan)
  "$DFSCTL" -o json store block remote status "${scan[@]}" >"$WORK/status.json" 2>"$WORK/status.err" || return 1
  python3 - "$WORK/status.json" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = [x for x in d["remotes"] if x["name"] == "s3"][0]
l = [x for x in d["locals"] if x["name"] == "default"][0]
print(" ".join(str(eval(e, {"r": type("o", (), r), "l": type("o", (), l)})) for e in sys.argv[2:]))
PY
}
# Waits until everything written is chunked and uploaded (max $1 s, default 300): nothing
# dirty, nothing pending, and no upload for 4 s in a row (the last chunk of a file whose
# writer went quiet while its data was already chunked is staged 2 s later; it may be
# uploaded between two polls, so "pending" alone can miss it).
settle() {
  local end=$((SECONDS + ${1:-300})) s last='' quiet=0
  while [ $SECONDS -lt $end ]; do
    s=$(status l.dirty_bytes r.pending_chunks r.uploaded_bytes) || return 1
    if [ "${s% *}" = "0 0" ] && [ "$s" = "$last" ]; then quiet=$((quiet + 1)); else quiet=0; fi
    [ $quiet -ge 4 ] && return 0
    last=$s
    sleep 1
  done
  log "not settled: dirty bytes, pending chunks, uploaded bytes = $s; last error: $(status r.last_upload_error)"
  return 1
}

# ---- bring up ----
start_weed || { bad "weed (SeaweedFS) did not start"; tail -20 "$WORK/weed.log" >&2; finish; }
write_config $((CAP_MIB << 20))
start_dfs || { bad "dfs did not start"; tail -20 "$WORK/dfs.log" >&2; finish; }
"$DFSCTL" context set e2e --server "127.0.0.1:$CTL_PORT" --token-file "$WORK/data/control-token" >/dev/null &&
  "$DFSCTL" context use e2e >/dev/null || { bad "dfsctl context"; finish; }
ok "weed on 127.0.0.1:$S3_PORT, dfs on 127.0.0.1:$NFS_PORT (local cap $CAP_MIB MiB)"

# ---- 1. write beyond the cap, evict, read back cold ----
head -c $((BIG_MIB << 20)) /dev/urandom >"$WORK/big.bin"
t0=$SECONDS
check "nfs-cp of a $BIG_MIB MiB file onto a $CAP_MIB MiB local tier" put "$WORK/big.bin" big.bin
check "chunked and uploaded" settle
log "write + upload took $((SECONDS - t0)) s"
sleep 3 # one more evictor pass
read -r used evicted cap <<<"$(status l.used_bytes l.evicted_bytes l.max_size_bytes)"
log "local tier: used $(mib "$used") of $(mib "$cap"), evicted $(mib "$evicted")"
check "local tier evicted (evicted $(mib "$evicted"))" test "$evicted" -ge $(((BIG_MIB - CAP_MIB) << 20))
check "local tier under its cap (used $(mib "$used"))" test "$used" -le "$cap"
read -r cold0 <<<"$(status r.cold_read_bytes)"
check "read back through NFS" get big.bin "$WORK/big.back"
check "read back bit-exact" cmp -s "$WORK/big.bin" "$WORK/big.back"
rm -f "$WORK/big.bin"
read -r cold1 ra <<<"$(status r.cold_read_bytes r.readahead_chunks)"
log "cold reads: $(mib $((cold1 - cold0))), readahead chunks $ra"
check "the read came from the remote (cold $(mib $((cold1 - cold0))))" test $((cold1 - cold0)) -ge $(((BIG_MIB - CAP_MIB) << 20))
rm -f "$WORK/big.back"

# ---- 2. dedup ----
head -c $((DEDUP_MIB << 20)) /dev/urandom >"$WORK/d.bin"
cp "$WORK/d.bin" "$WORK/d-mod.bin"
CHANGED=0
for k in 1 3 5 7 9; do # 5 regions of 1% each, spread over the file
  n=$(((DEDUP_MIB << 20) / 100)); off=$(((DEDUP_MIB << 20) * k / 10))
  head -c "$n" /dev/urandom | dd of="$WORK/d-mod.bin" bs=1M seek="$off" oflag=seek_bytes conv=notrunc status=none
  CHANGED=$((CHANGED + n))
done
bucket() { SCAN=1 status r.scan_bytes; }
b0=$(bucket); u0=$(status r.uploaded_bytes)
# timed_put SRC NAME: copies and records the time it took in TOOK_<NAME> (-1: failed).
timed_put() {
  local t=$SECONDS; local var=TOOK_${2%.bin}
  if put "$1" "$2"; then printf -v "$var" %s $((SECONDS - t)); log "nfs-cp of $2 took ${!var} s"
  else printf -v "$var" %s -1; return 1; fi
}
timed_put "$WORK/d.bin" d1.bin && settle; b1=$(bucket)
timed_put "$WORK/d.bin" d2.bin && settle; b2=$(bucket)
timed_put "$WORK/d-mod.bin" d3.bin && settle; b3=$(bucket)
# Each copy lands on a tier already full (cap < file): a copy that crawls because
# writers wait for space nothing will free (30 s per batch of writes) is a stall. The
# dedup copies upload little, so they are no slower than the first one; the slack only
# absorbs noise, a single stalled batch exceeds it.
for c in d2 d3; do
  took=TOOK_$c
  check "$c copy did not stall (${!took} s; first copy $TOOK_d1 s)" \
    test "${!took}" -ge 0 -a "$TOOK_d1" -ge 0 -a "${!took}" -le $((2 * TOOK_d1 + 15))
done
read -r u3 dk df <<<"$(status r.uploaded_bytes r.dedup_known_bytes r.dedup_files)"
g1=$((b1 - b0)) g2=$((b2 - b1)) g3=$((b3 - b2)) F=$((DEDUP_MIB << 20))
echo "----- dedup -----"
printf '%-34s %12s %10s\n' "step" "bucket grew" "x file"
for row in "first copy ($DEDUP_MIB MiB):$g1" "second identical copy:$g2" "copy with 5% changed ($(mib $CHANGED)):$g3"; do
  printf '%-34s %12s %10s\n' "${row%%:*}" "$(mib "${row##*:}")" "$(python3 -c "print(f'{${row##*:}/$F:.3f}')")"
done
printf '%-34s %12s %10s\n' "total for 3 copies" "$(mib $((b3 - b0)))" "$(python3 -c "print(f'{($b3-$b0)/$F:.3f}')")"
echo "uploaded $(mib $((u3 - u0))); deduplicated before upload: $(mib "$dk") known chunks, $df whole files"
echo "-----------------"
check "first copy stored once (+$(mib $g1))" test "$g1" -ge "$F" -a "$g1" -le $((F + (F / 50)))
# (a client pausing for 2 s mid-file gets a final flush: its cut at the end of the data is
# uploaded and becomes garbage. Writes held back by the local tier's cap do not count as a
# pause: the file stays "being written" while its writer waits for space.)
check "identical copy adds almost nothing (+$(mib $g2))" test "$g2" -le $((F / 100))
# Each changed region also re-cuts the chunks around it: at most about two chunks
# (16 MiB max each) per region on top of the changed bytes.
check "5%-modified copy adds about the changed chunks (+$(mib $g3))" test "$g3" -ge "$CHANGED" -a "$g3" -le $((CHANGED + 5 * 32 * 1048576))

# ---- 3. GC ----
SHARE=$(mktemp -d "$WORK/guest.XXXX")
MOPT="nfsvers=3,tcp,port=$NFS_PORT,mountport=$NFS_PORT,nolock"
VM_SHARE=$SHARE VM_TIMEOUT=600 "$VM/run-in-guest.sh" "set -e
mkdir -p /mnt/e && mount -t nfs -o $MOPT 10.0.2.2:/export /mnt/e
rm /mnt/e/d1.bin /mnt/e/d2.bin /mnt/e/big.bin
ls /mnt/e > /share/ls.txt
umount /mnt/e
echo GUEST-DONE" >"$WORK/guest.log" 2>&1
check "kernel client deleted d1, d2 and big" grep -q '^GUEST-DONE' "$WORK/guest.log"
grep -q '^GUEST-DONE' "$WORK/guest.log" || grep -av '^\[ *[0-9.]*\] ' "$WORK/guest.log" | tail -20 >&2
"$DFSCTL" -o json store block gc /export --grace 0 >"$WORK/gc.json" 2>"$WORK/gc.err"
check "GC with grace 0 ran" test $? = 0
python3 - "$WORK/gc.json" <<'PY' >&2 || true
import json, sys
g = json.load(open(sys.argv[1])); r = g.get("remote") or {}
print(f"GC: local deleted {g['deleted_chunks']} chunks; remote scanned {r.get('scanned_objects')}, "
      f"live {r.get('live_objects')}, deleted {r.get('deleted_objects')} objects "
      f"({r.get('deleted_bytes', 0)/1048576:.1f} MiB), errors {r.get('errors')}")
PY
b4=$(bucket)
log "bucket after GC: $(mib "$b4") (was $(mib "$b3"); live data: d3 = $(mib "$F"))"
# Left: d3 only (d1/d2 shared its unchanged chunks; their own chunks and big.bin's are gone).
check "objects of deleted files are gone (bucket $(mib "$b4"))" test "$b4" -le $((F + CHANGED * 3)) -a "$b4" -ge "$F"
# Every chunk d3 references survived the GC (a swept one reads as EIO) ...
check "d3 reads back after GC" get d3.bin "$WORK/d3.back"
check "d3 bit-exact after GC" cmp -s "$WORK/d-mod.bin" "$WORK/d3.back"
# ... and if its copy was cut short, what the server acknowledged of it (a prefix, with
# holes where writes never arrived) still matches the source.
acknowledged_intact() {
  [ -s "$WORK/d3.back" ] || return 1
  python3 - "$WORK/d-mod.bin" "$WORK/d3.back" <<'PY'
import sys
src, back = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
P = 4096  # a page that differs from the source must be a hole (never written)
bad = sum(1 for i in range(0, len(back), 1 << 20) if back[i:i + (1 << 20)] != src[i:i + (1 << 20)]
          for j in range(i, min(i + (1 << 20), len(back)), P)
          if (b := back[j:j + P]) != src[j:j + len(b)] and b.count(0) != len(b))
print(f"d3 on the server: {len(back) / 1048576:.1f} MiB, {bad} pages differ from the source", file=sys.stderr)
sys.exit(1 if bad or len(back) > len(src) else 0)
PY
}
check "what the server holds of d3 matches the source after GC" acknowledged_intact
rm -f "$WORK/d3.back" "$WORK/d.bin"

# ---- 3b. one server group per bucket + prefix ----
# A second dfs (its own data directory and local store) on the same bucket + prefix would
# sweep the first one's chunks at its first GC: it must refuse to start, saying why.
second_server() {
  local d=$WORK/second np cp; np=$(port); cp=$(port)
  mkdir -p "$d"
  sed -e "s#^data_dir: .*#data_dir: $d/data#" -e "s#port: $NFS_PORT#port: $np#" \
    -e "s#port: $CTL_PORT#port: $cp#" "$WORK/dfs.yaml" >"$d/dfs.yaml"
  timeout -k 5 60 "$DFS" start --config "$d/dfs.yaml" >"$d/log" 2>&1; local rc=$?
  log "second server on the same prefix: exit $rc: $(grep -o 'belongs to another server[^:]*' "$d/log" | head -1)"
  [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "belongs to another server" "$d/log"
}
check "a second server on the same bucket + prefix is refused" second_server
check "the first server still serves d3" eval 'get d3.bin "$WORK/d3.back" && cmp -s "$WORK/d-mod.bin" "$WORK/d3.back"'
rm -f "$WORK/d3.back"

# ---- 4a. S3 stopped during writes; dfs killed meanwhile; both come back ----
stop_weed
head -c $((64 << 20)) /dev/urandom >"$WORK/f1.bin"
check "writes succeed while S3 is down" put "$WORK/f1.bin" f1.bin
sleep 5 # flushed into chunks, uploads failing
read -r pend err <<<"$(status r.pending_chunks "bool(r.last_upload_error)")"
check "uploads pending while S3 is down ($pend chunks)" test "$pend" -gt 0
check "the upload error is reported" test "$err" = True
stop_dfs KILL
check "dfs restarts while S3 is still down" start_dfs
check "pending uploads reloaded after the crash" test "$(status r.pending_chunks)" -gt 0
start_weed || bad "weed restart"
check "uploads resume when S3 is back" settle 120
check "f1 reads back bit-exact" eval 'get f1.bin "$WORK/f1.back" && cmp -s "$WORK/f1.bin" "$WORK/f1.back"'

# ---- 4b. cold reads with S3 stalled, then stopped ----
stop_dfs
write_config $((1 << 20)) # a 1 MiB cap: everything on the remote is evicted
check "dfs restarts with a 1 MiB cap" start_dfs
sleep 4
read -r used evicted <<<"$(status l.used_bytes l.evicted_bytes)"
log "after the restart with a 1 MiB cap: used $(mib "$used"), evicted $(mib "$evicted")"
# (what stays: the write journal's open segment and chunks not proven on the remote yet)
check "local tier evicted (used $(mib "$used"))" test "$used" -le $((16 << 20))
kill -STOP "$WEED_PID"
t0=$(date +%s.%N)
timeout -k 10 120 nfs-cat "$(URL f1.bin)" >/dev/null 2>"$WORK/stall.err"; rc=$?
took=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
kill -CONT "$WEED_PID"
log "cold read with S3 stalled: exit $rc after $took s: $(head -c 200 "$WORK/stall.err")"
check "cold read on a stalled S3 fails" test "$rc" != 0
check "within the ${READ_TIMEOUT} s deadline plus slack ($took s)" python3 -c "import sys; sys.exit(0 if $took < $READ_TIMEOUT * 3 + 5 else 1)"
check "the server says why" grep -q "no answer from the remote store within $READ_TIMEOUT s" "$WORK/dfs.log"
stop_weed
t0=$(date +%s.%N)
timeout -k 10 120 nfs-cat "$(URL d3.bin)" >/dev/null 2>"$WORK/down.err"; rc=$?
took=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
log "cold read with S3 stopped: exit $rc after $took s"
check "cold read on a stopped S3 fails fast ($took s)" python3 -c "import sys; sys.exit(0 if $rc != 0 and $took < $READ_TIMEOUT * 3 + 5 else 1)"
start_weed || bad "weed restart"
# (weed opens its S3 port before its filer and volume server are up: for a few seconds
# GETs answer 500 InternalError, which the server retries 3 times and then reports as
# EIO. "Back" means serving, so the read is tried for up to 30 s.)
reads_again() {
  local i
  for i in $(seq 30); do
    # nfs-cp refuses an existing destination: a failed attempt's partial copy goes first
    # (else one early failure fails all 30 attempts, as it did once under load).
    rm -f "$WORK/f1.back2"
    timeout -k 10 120 nfs-cp "$(URL f1.bin)" "$WORK/f1.back2" >/dev/null 2>&1 && { log "f1 read after $i attempt(s)"; return 0; }
    sleep 1
  done
  return 1
}
check "f1 reads again once S3 is back" reads_again
check "f1 bit-exact after S3 came back" cmp -s "$WORK/f1.bin" "$WORK/f1.back2"
check "clean stop" stop_dfs
finish
