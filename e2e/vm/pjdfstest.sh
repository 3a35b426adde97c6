#!/bin/bash
# pjdfstest.sh - POSIX conformance through the real Linux NFS client: boots the guest,
# mounts the server under test, runs pjdfstest (crates.io 0.2.2) as root in a fresh dir on
# the mount, then on the host compares the failures with e2e/posix/known_failures.
# NFS_VERS="4.0 4.1 4.2" runs it once per version in the same boot (a mount of each in
# turn); a "pjdfstest NFSv<V>: N passed, N failed, N skipped" line per version comes
# before the total.
#
# Env: NFS_PORT (12049)  MOUNT_PORT (= NFS_PORT)  EXPORT (/export)  MOUNT_OPTS (extra options)
#      NFS_VERS   3 (default), 4.0, 4.1, 4.2, or several separated by spaces
#      SERVER_START_CMD / SERVER_STOP_CMD   see lib.sh (else a server must already listen)
#      PJD_FILTER   pjdfstest name filters (space separated; default: every case)
#      KNOWN_FAILURES (default e2e/posix/known_failures)   VM_TIMEOUT (default 2400 s)
#      RESULTS_DIR  where pjdfstest.txt / console.log are kept (default: a new
#                   $DITTOFS_CACHE/vm/results/pjdfstest.<time>.<pid> per run)
# Output: unlisted failures with their messages, the expected-failure count, the wall time,
# and last the line "pjdfstest: N passed, N failed, N skipped" (failed = unlisted failures).
# Exit: 0 only when the run completed and every failure is listed.
#
# pjdfstest.sh --parse FILE   only the host-side check, of a saved pjdfstest output (no VM):
#                             to re-check known_failures edits against the last run
set -euo pipefail
LOG_TAG=pjdfstest
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
T0=$(now_ms)
KNOWN=${KNOWN_FAILURES:-$(cd "$VM_HERE/.." && pwd)/posix/known_failures}
RES=${RESULTS_DIR:-$VM_DIR/results/pjdfstest.$(date +%Y%m%d-%H%M%S).$$}
PJD=$CACHE/pjdfstest/bin/pjdfstest

[ -r "$KNOWN" ] || die "known failures file $KNOWN missing"
SHARE=''
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  trap '' INT TERM # a second signal (the runner's and a timeout's) must not cut it short
  server_release
  [ -z "$SHARE" ] || rm -rf "$SHARE"
}
trap cleanup EXIT

# run_guest: build what is missing, boot the guest, run pjdfstest on the mount; sets rc
run_guest() {
  "$VM_HERE/build-guest.sh"
  if [ ! -x "$PJD" ]; then
    need_cmd cargo cargo
    log "building pjdfstest 0.2.2 into $CACHE/pjdfstest (once, ~2 min)"
    # a host binary runs in the guest unchanged: both are Debian bookworm (same glibc)
    cargo install --locked pjdfstest --version 0.2.2 --root "$CACHE/pjdfstest" >"$VM_DIR/pjdfstest-build.log" 2>&1 ||
      { tail -n 20 "$VM_DIR/pjdfstest-build.log"; die "cargo install pjdfstest failed"; }
  fi

  server_ensure

  # inputs for the guest on the 9p share
  SHARE=$(mktemp -d /tmp/dittofs-pjdfstest.XXXXXX)
  cp "$PJD" "$VM_HERE/pjdfstest.toml" "$VM_HERE/guest-lib.sh" "$SHARE/"
  mkdir -p "$RES"
  rm -f "$RES"/pjdfstest*.txt
  # shellcheck disable=SC2016  # expanded in the guest
  GUEST_CMD='set -u
  . /share/guest-lib.sh
  for v in $ALL_VERS; do
    NFS_VERS=$v mount_target || exit 3
    W=/mnt/t/pjdfstest.$(date +%s).$$
    mkdir "$W" && chmod 0755 "$W" || exit 3
    t0=$(date +%s)
    # pjdfstest exits 1 when some case failed: the host decides what that means
    NO_COLOR=1 /share/pjdfstest -c /share/pjdfstest.toml -p "$W" ${PJD_FILTER:-} >"/share/pjdfstest-$v.txt" 2>&1
    echo "guest: pjdfstest over NFSv$v exit $? after $(( $(date +%s) - t0 )) s"
    rm -rf "$W"
    cd / && umount /mnt/t || exit 3
  done'
  log "booting the guest: pjdfstest on $EXPORT over NFSv${VERS// /, NFSv} (NFS port $NFS_PORT, MOUNT port $MOUNT_PORT)"
  ALL_VERS=$VERS
  VM_SHARE=$SHARE VM_TIMEOUT=${VM_TIMEOUT:-2400} "$VM_HERE/run-in-guest.sh" \
    "$(guest_env PJD_FILTER ALL_VERS) bash -c $(printf '%q' "$GUEST_CMD")" >"$RES/console.log" 2>&1 || rc=$?
  grep -a -v -e '^\[ *[0-9.]*\] ' -e '^dittofs-init' "$RES/console.log" || true
  for v in $VERS; do
    [ -f "$SHARE/pjdfstest-$v.txt" ] && cp "$SHARE/pjdfstest-$v.txt" "$RES/"
  done
  [ "$rc" = 0 ] || log "the guest side failed (status $rc); console log $RES/console.log"
}

rc=0
VERS=${NFS_VERS:-3}
if [ "${1:-}" = --parse ]; then
  [ -r "${2:-}" ] || die "usage: $0 --parse PJDFSTEST_OUTPUT"
  OUTS=("$2") LABELS=("")
else
  OUTS=() LABELS=()
  for v in $VERS; do OUTS+=("$RES/pjdfstest-$v.txt") LABELS+=("NFSv$v"); done
  run_guest
fi

# ---- host side: per-case results against the known failures ----------------------
patterns=()
while IFS= read -r line || [ -n "$line" ]; do
  [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
  [[ $line =~ ^[[:space:]]*([^[:space:]#]+)[[:space:]]+#[[:space:]]*([^[:space:]].*)$ ]] ||
    die "$KNOWN: entry without a '# reason': $line"
  patterns+=("${BASH_REMATCH[1]}")
done <"$KNOWN"
listed() {
  local p
  for p in "${patterns[@]}"; do
    # shellcheck disable=SC2053  # the pattern is a glob on purpose
    [[ $1 == $p ]] && return 0
  done
  return 1
}

# check OUTPUT LABEL: one run's cases against the known failures; adds to the totals
passed=0 failed=0 skipped=0 status=0
check() {
  local out=$1 label=${2:+ $2} p=0 s=0 expected=0 complete=0 last='' line name
  local unlisted=() listed_passing=()
  declare -A msg=()
  if [ -f "$out" ]; then
    # strip colour codes; case lines are "NAME <padding> ok|FAILED|skipped", a failure's
    # message (assertion, left/right values) follows up to the next case line
    while IFS= read -r line; do
      if [[ $line =~ ^([A-Za-z0-9_:]+)[[:space:]]+(ok|FAILED|skipped)$ ]]; then
        name=${BASH_REMATCH[1]} last=
        case ${BASH_REMATCH[2]} in
          ok) p=$((p + 1)); if listed "$name"; then listed_passing+=("$name"); fi ;;
          skipped) s=$((s + 1)) ;;
          FAILED)
            if listed "$name"; then expected=$((expected + 1)); else unlisted+=("$name"); last=$name; fi ;;
        esac
      elif [[ $line == Summary:* ]]; then
        complete=1 last=
      elif [ -n "$last" ] && [ -n "$line" ]; then
        msg[$last]+="${line#$'\t'}"$'\n'
      fi
    done < <(sed 's/\x1b\[[0-9;]*m//g' "$out")
  fi
  for name in "${unlisted[@]}"; do
    echo "FAILED$label (not in known_failures): $name"
    printf '%s' "${msg[$name]:-}" | sed -n '1,6s/^/    /p'
  done
  for name in "${listed_passing[@]}"; do
    echo "note$label: $name is listed in known_failures but passed: remove the entry"
  done
  echo "pjdfstest$label: $expected expected failures (listed in $KNOWN)"
  echo "pjdfstest$label: results in $out"
  if [ "$complete" != 1 ]; then
    echo "pjdfstest$label: the run did NOT complete (no Summary line; guest status $rc)"
    status=1
  fi
  [ ${#unlisted[@]} -eq 0 ] || status=1
  [ -z "$label" ] || echo "pjdfstest$label: $p passed, ${#unlisted[@]} failed, $s skipped"
  passed=$((passed + p)) failed=$((failed + ${#unlisted[@]})) skipped=$((skipped + s))
}
for i in "${!OUTS[@]}"; do check "${OUTS[$i]}" "${LABELS[$i]}"; done
echo "pjdfstest: tier wall time $((($(now_ms) - T0) / 1000)) s"
echo "pjdfstest: $passed passed, $failed failed, $skipped skipped"
exit "$status"
