#!/usr/bin/env bash
# run.sh [--quick] [bench.py options] - the side-by-side benchmark: DittoFS against
# nfs-ganesha (Debian, VFS FSAL) and the local disk, the same native clients and workloads
# for each, then a shorter kernel-client pass through the qemu guest, then the storage
# core's in-process benchmarks. One table on stdout, results.json + results.png +
# report.txt in the results directory (docs/benchmarks.md explains the workloads).
#
# This script installs what the harness needs (idempotent, cached under $DITTOFS_CACHE):
#   fio 3.33 with the libnfs engine, built from Debian's own source package (Debian's
#     binary fio has no libnfs engine); needs a deb-src entry, added for Debian's archive
#   smallfiles (e2e/bench/smallfiles.c, the metadata/small-file load tool, on libnfs)
#   nfs-ganesha + nfs-ganesha-vfs + rpcbind (e2e/vm/ganesha.sh installs them)
#   matplotlib (PyPI, pinned) for the chart
#   the qemu guest of the kernel-client pass (e2e/vm/build-guest.sh; not with --no-kernel)
#   dfs (cargo build --release)
# then runs bench.py (its --help lists the options). Last line: "bench: N passed, N failed".
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export DITTOFS_CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$DITTOFS_CACHE/target}
B=$DITTOFS_CACHE/bench
mkdir -p "$B/bin"
log() { printf '[bench-setup] %s\n' "$*" >&2; }
for a in "$@"; do [ "$a" = -h ] || [ "$a" = --help ] && exec python3 "$HERE/bench.py" --help; done

apt_install() { # packages... (only the missing ones)
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && return 0
  log "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---- fio with the libnfs engine -------------------------------------------------------
# fio 3.33's nfs engine never blocks in getevents (it polls once and returns 0), so at the
# end of a job fio stops reaping and closes the file with writes still in flight: files
# came out short (11.5 of 16 MiB) and the next job read past their end. The sed below
# makes getevents wait, while anything is outstanding, until at least `min` completions
# are buffered (or the queue is full, as before). The engine also has no fsync: a second
# edit queues DDIR_SYNC/DDIR_DATASYNC as libnfs's nfs_fsync_async (an NFSv3 COMMIT), so
# the sequential write can end with --end_fsync=1 like the local-disk run.
# FIO_BUILD names these edits: bump it when they change, so the cached binary is rebuilt.
FIO_VERSION=3.33
FIO_BUILD=$FIO_VERSION-nfswait1-sync1
FIO=$B/bin/fio-$FIO_BUILD
if ! { [ -x "$FIO" ] && "$FIO" --version | grep -q "fio-$FIO_VERSION" && "$FIO" --enghelp=nfs >/dev/null 2>&1; }; then
  apt_install libnfs-dev libaio-dev zlib1g-dev pkg-config dpkg-dev build-essential
  # apt-get source needs a deb-src entry: the deb stanzas of Debian's own archive, as deb-src
  SRC_LIST=/etc/apt/sources.list.d/dittofs-deb-src.sources
  if [ ! -e "$SRC_LIST" ] && [ -e /etc/apt/sources.list.d/debian.sources ]; then
    log "adding $SRC_LIST (deb-src for Debian's archive)"
    awk 'BEGIN{RS=""; ORS="\n\n"} /URIs:[^\n]*debian/ && /Types: deb/ {sub(/Types: deb/, "Types: deb-src"); print}' \
      /etc/apt/sources.list.d/debian.sources > "$SRC_LIST"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
  fi
  log "building fio $FIO_VERSION with the libnfs engine from Debian's source package (about 2 min, once)"
  rm -rf "$B/fio-src" && mkdir -p "$B/fio-src"
  # (as root apt warns that it downloads unsandboxed: harmless, so not shown)
  (cd "$B/fio-src" && apt-get source -qq fio >"$B/fio-source.log" 2>&1) \
    || { cat "$B/fio-source.log"; log "apt-get source fio failed (is there a deb-src entry?)"; exit 1; }
  [ -d "$B/fio-src/fio-$FIO_VERSION" ] || { log "Debian's fio source is not $FIO_VERSION: update FIO_VERSION and the edits below"; exit 1; }
  n=$B/fio-src/fio-$FIO_VERSION/engines/nfs.c
  sed -i -e 's/^static int nfs_event_loop(struct thread_data \*td, bool flush) {$/static int nfs_event_loop(struct thread_data *td, unsigned int want) {/' \
    -e 's/^\(\s*\)#define SHOULD_WAIT() .*$/\1#define SHOULD_WAIT() (o->outstanding_events \&\& (o->outstanding_events == td->o.iodepth || o->buffered_event_count < (int)want))/' \
    -e 's/^\(\s*\)return nfs_event_loop(td, false);$/\1return nfs_event_loop(td, min);/' \
    -e 's/^\(\s*\)case DDIR_TRIM:$/\1case DDIR_SYNC:\n\1case DDIR_DATASYNC:\n\1\terr = nfs_fsync_async(o->context, nfs_data->nfsfh, nfs_callback, io_u);\n\1\tbreak;\n&/' "$n"
  [ "$(grep -c -e 'unsigned int want) {' -e '< (int)want))' -e 'nfs_event_loop(td, min)' -e 'nfs_fsync_async(o->context' "$n")" = 4 ] \
    || { log "fio's engines/nfs.c is not the 3.33 this script patches"; exit 1; }
  (cd "$B"/fio-src/fio-*/ && ./configure --enable-libnfs >"$B/fio-configure.log" 2>&1 \
     && grep -q 'NFS engine *yes' "$B/fio-configure.log" && make -j"$(nproc)" >"$B/fio-make.log" 2>&1) \
    || { log "fio build failed: see $B/fio-configure.log / fio-make.log"; tail -20 "$B/fio-make.log" 2>/dev/null; exit 1; }
  rm -f "$B"/bin/fio-*
  install -m 0755 "$B"/fio-src/fio-*/fio "$FIO"
  "$FIO" --enghelp=nfs >/dev/null || { log "fio has no nfs engine"; exit 1; }
fi

# ---- smallfiles (rebuilt when its source changes) -------------------------------------
apt_install libnfs-dev gcc
SF_KEY=$(sha256sum "$HERE/smallfiles.c" | cut -c1-16)
SF=$B/bin/smallfiles-$SF_KEY
if [ ! -x "$SF" ]; then
  log "compiling smallfiles"
  rm -f "$B"/bin/smallfiles-*
  gcc -O2 -Wall -Wextra -Werror -o "$SF" "$HERE/smallfiles.c" -lnfs -lpthread
fi

# ---- matplotlib for the chart ---------------------------------------------------------
MPL_VERSION=3.9.2
PYLIB=$B/pylib-mpl-$MPL_VERSION
if ! PYTHONPATH=$PYLIB python3 -c 'import matplotlib' 2>/dev/null; then
  log "pip install matplotlib==$MPL_VERSION (into $PYLIB)"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --target "$PYLIB" "matplotlib==$MPL_VERSION" \
    || { log "pip install matplotlib failed"; exit 1; }
fi

# ---- perf, for --profile ----------------------------------------------------------------
for a in "$@"; do [ "$a" = --profile ] && apt_install linux-perf; done

# ---- the qemu guest, for the kernel-client pass (cached; a few minutes the first time) ---
no_kernel=0
for a in "$@"; do [ "$a" = --no-kernel ] && no_kernel=1; done
[ $no_kernel = 1 ] || "$ROOT/e2e/vm/build-guest.sh"

# ---- dfs ------------------------------------------------------------------------------
(cd "$ROOT" && cargo build --release --quiet --bin dfs)

export PYTHONPATH=$PYLIB${PYTHONPATH:+:$PYTHONPATH}
exec python3 "$HERE/bench.py" --fio "$FIO" --smallfiles "$SF" --dfs "$CARGO_TARGET_DIR/release/dfs" "$@"
