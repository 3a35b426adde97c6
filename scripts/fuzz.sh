#!/usr/bin/env bash
# fuzz.sh - runs the coverage-guided fuzz targets of fuzz/ (libFuzzer through the
# libfuzzer-sys crate, cargo-fuzz's layout) for a bounded time each, and prints one count
# line per target:
#   fuzz-nfs4: N executions in S s, 0 crashes
# Fails (exit 1) on a crash, a hang (-timeout) or an allocation past -rss_limit_mb; the
# input is kept under $DITTOFS_CACHE/fuzz-artifacts/. Usage: scripts/fuzz.sh [SECONDS]
# (default 60).
#
# The build is plain cargo on the stable toolchain with LLVM's SanitizerCoverage passes
# (edge counters, the PC table and comparison tracing that libFuzzer's feedback reads),
# `--cfg fuzzing`, debug assertions and overflow checks: what `cargo fuzz build
# --sanitizer none` does, without installing cargo-fuzz. `--target` is explicit so build
# scripts and proc-macros, which run inside the build, are not instrumented. The fuzz
# crates use dittofs-remote without its `s3` feature: no AWS SDK in this build (about
# 5 minutes cold on 2 cores). The instrumented target dir and the growing corpus are
# cached in $DITTOFS_CACHE (the committed seeds are in fuzz/seeds/).
set -euo pipefail
SECS=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
log() { printf '[fuzz] %s\n' "$*"; }
die() { printf '[fuzz] FAIL: %s\n' "$*" >&2; exit 1; }

[[ $SECS =~ ^[0-9]+$ ]] && [ "$SECS" -gt 0 ] || die "usage: scripts/fuzz.sh [SECONDS > 0]"
command -v c++ >/dev/null || die "no C++ compiler: libfuzzer-sys builds libFuzzer from source (apt-get install g++)"
HOST=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$HOST" ] || die "rustc -vV names no host target"
SANCOV=(-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=3
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions
  -Coverflow-checks)
# instrumented builds (another target dir than the workspace's)
export CARGO_TARGET_DIR="${DITTOFS_FUZZ_TARGET:-$CACHE/fuzz-target}"
cd "$ROOT"
# target name -> label of its count line
declare -A LABEL=([nfs4_compound]=fuzz-nfs4)
failed=0
for t in "${!LABEL[@]}"; do
  log "build $t"
  RUSTFLAGS="${SANCOV[*]}" cargo build --locked --release --quiet --manifest-path fuzz/Cargo.toml \
    --target "$HOST" --bin "$t" || die "$t does not build"
  corpus="$CACHE/fuzz-corpus/$t" artifacts="$CACHE/fuzz-artifacts/$t" work=$(mktemp -d)
  mkdir -p "$corpus" "$artifacts"
  out="$work/libfuzzer.log"
  log "run $t for $SECS s (corpus $corpus + fuzz/seeds/$t)"
  rc=0
  DITTOFS_FUZZ_DIR="$work/share" "$CARGO_TARGET_DIR/$HOST/release/$t" "$corpus" "fuzz/seeds/$t" \
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
