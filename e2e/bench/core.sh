#!/usr/bin/env bash
# core.sh [--quick] - the in-process benchmarks of the storage core, printed as numbers:
#   ingest: chunk+hash GiB/s vs raw BLAKE3 and raw FastCDC on the same buffer (ratio),
#           4 KiB random write/read IOPS through the engine on a 1 GiB file
#   creates: durable metadata creates/s per backend (memory, sled) at 1/4/16 tasks
# --quick shrinks every size and builds unoptimized (dev profile) so CI exercises the harness
# in about a minute (numbers meaningless).
# Benchmarks print numbers; they assert nothing about speed.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
export DITTOFS_CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$DITTOFS_CACHE/target}
PROFILE=()
if [ "${1:-}" = --quick ]; then
  export DITTOFS_BENCH_MB=${DITTOFS_BENCH_MB:-32} DITTOFS_BENCH_OPS=${DITTOFS_BENCH_OPS:-500} DITTOFS_BENCH_SECS=${DITTOFS_BENCH_SECS:-1}
  # Quick numbers mean nothing anyway: build with the dev profile, whose dependencies the
  # test stage already built (the bench profile recompiles them: ~5 min of CI on 2 cores).
  PROFILE=(--profile dev)
fi
ok=0; bad=0
for b in "dittofs-blockstore ingest" "dittofs-metadata creates"; do
  set -- $b
  echo "=== cargo bench -p $1 --bench $2"
  if cargo bench --quiet "${PROFILE[@]}" -p "$1" --bench "$2"; then ok=$((ok+1)); else bad=$((bad+1)); fi
done
echo "bench-core: $ok passed, $bad failed"
[ "$bad" = 0 ]
