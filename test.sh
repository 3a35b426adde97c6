#!/usr/bin/env bash
# test.sh - runs the whole DittoFS test suite on a fresh Debian machine, installing what
# it needs first. This is the README's test command; .ci/run calls it.
#
#   ./test.sh                 everything: lint, unit/integration/conformance/crash tests,
#                             60 s of coverage-guided fuzzing of the NFSv4 COMPOUND path
#                             (scripts/fuzz.sh; its own instrumented build, ~5 min cold),
#                             the kernel-client tier (qemu guest: pjdfstest + workload),
#                             the Kubernetes operator against a real control plane
#                             (e2e/k8s: smoke + cluster tests + chart/samples e2e),
#                             the benchmark harness in quick mode (peers side by side)
#   ./test.sh --full          the same with the kernel-client tier's full-size workload
#                             (a 1 GiB file and 10,000 small files through the emulated
#                             guest, about 10 min more); the default run uses 256 MiB and
#                             2,000 files, which exercises the same paths (the SIGKILL and
#                             restart in the middle included) within CI's time budget;
#                             nfs4.sh's NFSv4.2 copies use a 256 MiB file (default 32);
#                             the fuzz stage runs 600 s instead of 60
#   ./test.sh --no-vm         skip the kernel-client tier and the benchmark's guest pass
#                             (local iteration only; CI runs them)
#
# Caches (cargo target dir, built tools, guest image) live in $DITTOFS_CACHE
# (default ~/.cache/dittofs), outside the clone. Every shell-driven suite ends with a line
# "<suite>: N passed, N failed"; the script exits non-zero if any suite failed.
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")" || exit 1
export DITTOFS_CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$DITTOFS_CACHE/target}
export PATH="$DITTOFS_CACHE/bin:$PATH"
# rustup installs into ~/.cargo/bin, which only a login shell puts on PATH
command -v cargo >/dev/null || PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v cargo >/dev/null || { echo "test.sh: cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
# Go's official tarball installs into /usr/local/go/bin, which also only a login shell adds
command -v go >/dev/null || { [ -x /usr/local/go/bin/go ] && PATH="$PATH:/usr/local/go/bin"; }
RUN_VM=1 FULL=0
for a in "$@"; do
  case $a in
    --no-vm) RUN_VM=0 ;;
    --full) FULL=1 ;;
    *) echo "usage: $0 [--full] [--no-vm]" >&2; exit 2 ;;
  esac
done
# the guest workload's size (e2e/vm/workload.sh) and nfs4.sh's server-side copy file;
# explicit BIG_MB / SMALL_N / COPY_MB win
if [ $FULL = 1 ]; then export BIG_MB=${BIG_MB:-1024} SMALL_N=${SMALL_N:-10000} COPY_MB=${COPY_MB:-256}
else export BIG_MB=${BIG_MB:-256} SMALL_N=${SMALL_N:-2000} COPY_MB=${COPY_MB:-32}; fi
if [ "${CI:-}" = true ] && [ $RUN_VM = 0 ]; then
  echo "test.sh: --no-vm is not allowed in CI" >&2; exit 2
fi

T0=$(date +%s)
declare -a RESULTS=()
# Each stage's output is also kept here, for the digest of failures under the summary (CI
# shows only the end of a run).
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/dfs-test-logs.XXXXXX")
FAILED=0
# stage NAME LIMIT COMMAND...: runs one stage, at most LIMIT seconds (then TERM to its
# whole process group, KILL 60 s later). A hung stage thus fails on its own, with its
# output and the suites after it, instead of eating CI's whole budget. The limits are
# 2.5x or more the stage's cold time measured on a 2-core machine.
# `timeout` runs the stage in a process group of its own, which a Ctrl-C or a TERM to
# this script does not reach: the trap hands it to `timeout`, which passes it on to its
# group (once: a second TERM could cut a suite's cleanup short).
STAGE_PID=''
stop_stage() { [ -n "$STAGE_PID" ] && kill -TERM "$STAGE_PID" 2>/dev/null; wait; }
trap 'stop_stage; exit 130' INT
trap 'stop_stage; exit 143' TERM
stage() {
  local name=$1 limit=$2; shift 2
  local t0 rc; t0=$(date +%s)
  echo "=== $name"
  timeout -k 60 "$limit" "$@" > >(tee "$LOGS/$name.log") 2>&1 &
  STAGE_PID=$!
  wait "$STAGE_PID"; rc=$?
  STAGE_PID=''
  local took=$(( $(date +%s) - t0 ))
  if [ $rc = 0 ]; then RESULTS+=("$name: ok ($took s)")
  elif [ $rc = 124 ] || [ $rc = 137 ]; then
    echo "$name: timed out after $limit s" >&2
    RESULTS+=("$name: FAILED (timed out after $limit s)"); FAILED=1
  else RESULTS+=("$name: FAILED ($took s)"); FAILED=1; fi
}

stage install-deps 2400 scripts/install-deps.sh || true
if [ $FAILED = 1 ]; then printf '%s\n' "${RESULTS[@]}"; exit 1; fi
stage fmt 300 cargo fmt --all -- --check
stage clippy 2400 cargo clippy --workspace --all-targets --quiet -- -D warnings
stage licenses 300 python3 scripts/license-check.py
stage build 2400 cargo build --workspace --release --quiet
stage nextest 1800 cargo nextest run --workspace --profile ci
if [ $FULL = 1 ]; then stage fuzz 2400 scripts/fuzz.sh 600; else stage fuzz 1200 scripts/fuzz.sh 60; fi
if [ $RUN_VM = 1 ]; then
  stage kernel-client-tier 1800 e2e/vm/tier.sh
  stage readme-mount 600 e2e/vm/readme-mount.sh
  # NFSv4.1 and 4.2 through the kernel client: mount, ordinary file work, pseudo root.
  stage nfs4-kernel 1500 e2e/vm/nfs4.sh
  # NLM with the kernel client: the guest mounts without nolock and contends for locks
  # with a userspace NLM client on the host; guest and dfs share a network namespace of
  # the test's own (a tap device: dfs calls back into the guest; needs root).
  stage nlm-kernel 600 cargo nextest run -p dittofs-server --profile ci --run-ignored ignored-only -E 'binary(nlm_kernel)'
  stage control-e2e 900 e2e/control/e2e.sh
  # The S3 tier against a real SeaweedFS: eviction, cold reads, dedup, GC, faults.
  stage remote-e2e 1200 e2e/remote/e2e.sh
fi
# Kubernetes: a real control plane on loopback (binaries built from the Go module proxy
# into $DITTOFS_CACHE/k8s-bin once: 10-30 min cold, instant warm), the operator's cluster
# integration tests (operator/tests/cluster.rs) as smoke.sh's HOOK, then the chart/samples e2e.
stage k8s-tools 3000 e2e/k8s/build-tools.sh
# (workspace-wide builds: the same feature set as the nextest stage, so nothing recompiles)
stage k8s-smoke 1800 env HOOK="cargo nextest run --workspace --profile ci --run-ignored ignored-only -E 'package(dittofs-operator)'" \
  e2e/k8s/smoke.sh
stage operator-e2e 1200 e2e/k8s/operator-e2e.sh
# The side-by-side harness in --quick mode (every workload briefly, numbers meaningless, no
# thresholds): DittoFS, nfs-ganesha and the local disk through the same native clients, the
# kernel-client pass in the guest, and the storage core's in-process benchmarks.
if [ $RUN_VM = 1 ]; then stage bench-quick 1800 e2e/bench/run.sh --quick
else stage bench-quick 1800 e2e/bench/run.sh --quick --no-kernel; fi

echo "=== summary ($(( $(date +%s) - T0 )) s)"
printf '  %s\n' "${RESULTS[@]}"
passed=0; failed=0
for r in "${RESULTS[@]}"; do case $r in *FAILED*) failed=$((failed+1));; *) passed=$((passed+1));; esac; done
# what each failed stage reported failing (its FAIL lines, errors, stalls, panics)
for r in "${RESULTS[@]}"; do
  case $r in *FAILED*) ;; *) continue ;; esac
  name=${r%%:*}
  echo "--- $name: what failed (last lines of its log that say so; whole log above)"
  grep -aE 'FAIL|FAILED|panicked|[Ee]rror|timed out|stalled|not settled|No space' "$LOGS/$name.log" 2>/dev/null |
    grep -av 'PASS' | tail -25 | cut -c1-400 | sed 's/^/    /'
done
rm -rf "$LOGS"
echo "stages: $passed passed, $failed failed"
exit $FAILED
