#!/usr/bin/env bash
# fuzz.sh - runs the coverage-guided fuzz targets of fuzz/ (libFuzzer through cargo-fuzz,
# on the stable toolchain with `--sanitizer none`: only the sancov instrumentation, which
# needs no nightly flag) for a bounded time each, and prints one count line per target:
#   fuzz-nfs4: N executions in S s, 0 crashes
# Fails (exit 1) on a crash, a hang (-timeout) or an allocation past -rss_limit_mb; the
# input is kept under $DITTOFS_CACHE/fuzz-artifacts/. Usage: scripts/fuzz.sh [SECONDS]
# (default 60). cargo-fuzz is pinned and built once into $DITTOFS_CACHE (as install-deps.sh
# does for its tools); its build dir, the instrumented target dir and the growing corpus
# are cached there too (the committed seeds are in fuzz/seeds/).
set -euo pipefail
SECS=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
CARGO_FUZZ_VERSION=0.13.2
log() { printf '[fuzz] %s\n' "$*"; }
die() { printf '[fuzz] FAIL: %s\n' "$*" >&2; exit 1; }

[[ $SECS =~ ^[0-9]+$ ]] && [ "$SECS" -gt 0 ] || die "usage: scripts/fuzz.sh [SECONDS > 0]"
command -v c++ >/dev/null || die "no C++ compiler: libfuzzer-sys builds libFuzzer from source (apt-get install g++)"
FUZZ="$CACHE/fuzz-root/bin/cargo-fuzz"
if ! "$FUZZ" --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION"; then
  log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION (a few minutes, once)"
  CARGO_TARGET_DIR="$CACHE/fuzz-root/build" cargo install --locked cargo-fuzz \
    --version "$CARGO_FUZZ_VERSION" --root "$CACHE/fuzz-root" >"$CACHE/fuzz-install.log" 2>&1 \
    || { tail -20 "$CACHE/fuzz-install.log"; die "cargo-fuzz $CARGO_FUZZ_VERSION did not install"; }
  "$FUZZ" --version | grep -q " $CARGO_FUZZ_VERSION" || die "cargo-fuzz $CARGO_FUZZ_VERSION not at $FUZZ"
fi

# instrumented builds (another --target dir than the workspace's)
export CARGO_TARGET_DIR="${DITTOFS_FUZZ_TARGET:-$CACHE/fuzz-target}"
cd "$ROOT"
# target name -> label of its count line
declare -A LABEL=([nfs4_compound]=fuzz-nfs4)
failed=0
for t in "${!LABEL[@]}"; do
  log "build $t"
  "$FUZZ" build --sanitizer none "$t" || die "$t does not build"
  corpus="$CACHE/fuzz-corpus/$t" artifacts="$CACHE/fuzz-artifacts/$t" work=$(mktemp -d)
  mkdir -p "$corpus" "$artifacts"
  out="$work/libfuzzer.log"
  log "run $t for $SECS s (corpus $corpus + fuzz/seeds/$t)"
  rc=0
  DITTOFS_FUZZ_DIR="$work/share" "$FUZZ" run --sanitizer none "$t" "$corpus" "fuzz/seeds/$t" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$out" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$out" | tail -1)
  grep -E '^#[0-9]+[[:space:]]+DONE' "$out" | tail -1 || true   # coverage, features, corpus
  if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
    echo "${LABEL[$t]}: $runs executions in ${secs:-$SECS} s, 0 crashes"
  else
    tail -40 "$out"
    echo "${LABEL[$t]}: ${runs:-?} executions, 1 crash (exit $rc): $(grep -o 'Test unit written to .*' "$out" | tail -1)"
    failed=1
  fi
  rm -rf "$work"
done
exit $failed
