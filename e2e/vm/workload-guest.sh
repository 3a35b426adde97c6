#!/bin/bash
# workload-guest.sh - the guest side of workload.sh (runs INSIDE the VM as root, started by
# workload.sh through run-in-guest.sh). Real-application I/O on the NFSv3 mount; every step
# prints "PASS <step> (<s>)" or "FAIL <step> (<s>): why", and the last line is
# "workload-guest: done N passed, N failed".
#
# Env (set by workload.sh): VM_SERVER NFS_PORT MOUNT_PORT EXPORT [MOUNT_OPTS]
#   BIG_MB (1024) size of the big file   SMALL_N (10000, >= 300) small files (0-8 KiB, 100 per dir)
#   RESTART=1  run the server-restart step (the host restarts the server on request)
#   RESTART_TIMEOUT (300) seconds to wait for the host's restart-done
set -uo pipefail
# shellcheck source=guest-lib.sh
. /share/guest-lib.sh
BIG_MB=${BIG_MB:-1024}
SMALL_N=${SMALL_N:-10000}
SRC=/var/tmp/wl-src           # the source tree, on the guest's own disk (not RAM)
MAN=/tmp/wl-manifest          # sha256 of every source file, in guest tmpfs
RQ=/share/.vmtest/restart-request
DONE=/share/.vmtest/restart-done
pass=0 fail=0

# step NAME FUNCTION: run FUNCTION, report PASS/FAIL with its time
step() {
  local t0 rc
  t0=$(date +%s%N)
  "$2" >/tmp/step.out 2>&1
  rc=$?
  local dt=$((($(date +%s%N) - t0) / 1000000))
  if [ "$rc" = 0 ]; then
    pass=$((pass + 1))
    printf 'PASS %s (%d.%03d s)\n' "$1" $((dt / 1000)) $((dt % 1000))
    grep '^info: ' /tmp/step.out | sed 's/^info: /    /'
  else
    fail=$((fail + 1))
    printf 'FAIL %s (%d.%03d s): exit %s\n' "$1" $((dt / 1000)) $((dt % 1000)) "$rc"
    tail -n 15 /tmp/step.out | sed 's/^/    /'
  fi
  return "$rc"
}

# cold: write back and forget cached pages/attributes so the next reads ask the server
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# verify DIR [MANIFEST]: every file of the manifest has its sha256 under DIR, and DIR holds
# exactly as many files as the manifest lists
verify() {
  local m=${2:-$MAN} n
  (cd "$1" && sha256sum --quiet --strict -c "$m") || return 1
  n=$(find "$1" -type f | wc -l)
  [ "$n" = "$(wc -l <"$m")" ] || { echo "$1 holds $n files, manifest $m lists $(wc -l <"$m")"; return 1; }
}

do_mount() {
  mount_target || return 1
  W=/mnt/t/workload.$(date +%s).$$
  mkdir "$W"
}

do_generate() {
  rm -rf "$SRC" && mkdir -p "$SRC"
  head -c "${BIG_MB}M" /dev/urandom >"$SRC/big.bin" || return 1
  # small files: seeded sizes and contents, 100 per directory
  python3 - "$SRC" "$SMALL_N" <<'EOF' || return 1
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(20240601)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.dat" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randrange(0, 8193)))
EOF
  (cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$MAN"
  echo "info: source $(wc -l <"$MAN") files, $(du -sm "$SRC" | cut -f1) MiB"
}

do_copy_in() { cp -a "$SRC" "$W/tree" && cold; }
do_verify_copy() { verify "$W/tree"; }

do_tar() {
  mkdir "$W/tree2" && (cd "$W/tree" && tar cf - .) | (cd "$W/tree2" && tar xf -) || return 1
  cold
  verify "$W/tree2"
}

do_git() {
  local r=$W/repo g=(git -c user.name=e2e -c user.email=e2e@dittofs.invalid -c init.defaultBranch=main)
  mkdir "$r" && cp -a "$SRC/d000" "$SRC/d001" "$SRC/d002" "$r/" || return 1
  for i in $(seq 1 50); do printf 'line %s\n' $(seq "$i") >"$r/text$i.txt"; done
  cd "$r" || return 1
  "${g[@]}" init -q && "${g[@]}" add -A && "${g[@]}" commit -q -m first || return 1
  # a second commit that modifies, deletes and renames, then repack (gc writes + renames packs)
  echo change >>text1.txt && git rm -q text2.txt && git mv text3.txt d000/text3.txt || return 1
  "${g[@]}" commit -q -a -m second && "${g[@]}" gc -q || return 1
  cd / && cold && cd "$r" || return 1
  git fsck --full --strict || return 1
  [ -z "$(git status --porcelain)" ] || { git status --porcelain | head; return 1; }
  [ "$(git rev-list --count HEAD)" = 2 ] || return 1
  cd /
}

do_rename() {
  local t=$W/tree2 m=/tmp/wl-manifest-renamed first
  first=$(find "$t/d000" -type f -printf '%f\n' | sort | sed -n 1p)
  # a file into another directory, the big file into a subdirectory, a directory into another one
  mv "$t/d000/$first" "$t/d001/renamed-$first" &&
    mv "$t/big.bin" "$t/d000/big-moved.bin" &&
    mv "$t/d002" "$t/d001/moved-dir" || return 1
  # tree2 was verified whole after the tar step: here the moved entries at their new
  # names (sha256), the old names gone, and the same number of files as before
  grep -e "  ./d000/$first\$" -e '  ./big.bin$' -e '  ./d002/' "$MAN" |
    sed -e "s#  ./d000/$first\$#  ./d001/renamed-$first#" -e 's#  ./big.bin$#  ./d000/big-moved.bin#' \
      -e 's#  ./d002/#  ./d001/moved-dir/#' >"$m"
  cold
  if [ -e "$t/d000/$first" ] || [ -e "$t/big.bin" ] || [ -e "$t/d002" ]; then
    echo "an old name still exists"
    return 1
  fi
  (cd "$t" && sha256sum --quiet --strict -c "$m") || return 1
  [ "$(find "$t" -type f | wc -l)" = "$(wc -l <"$MAN")" ] || { echo "file count changed"; return 1; }
}

do_restart() {
  local d=$W/restart
  mkdir -p "$d/sub" || return 1
  rm -f "$RQ" "$DONE"
  # one python process keeps a file open and its cwd in $d/sub across the server restart
  python3 - "$d" "$RQ" "$DONE" "${RESTART_TIMEOUT:-300}" <<'EOF'
import hashlib, os, sys, time
d, rq, done, tmo = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sha = lambda b: hashlib.sha256(b).hexdigest()
files = {}
for i in range(24):  # 0 B .. 2 MiB, plus one of 16 MiB
    size = 16 << 20 if i == 23 else (i * 357913) % (2 << 20)
    data = os.urandom(size)
    p = os.path.join(d, "sub" if i % 2 else "", "r%02d.bin" % i)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.fsync(fd)  # NFSv3 COMMIT: the server promises the bytes are on stable storage
    os.close(fd)
    files[p] = sha(data)
for dd in (d, os.path.join(d, "sub")):
    fd = os.open(dd, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
held = os.path.join(d, "sub", "r01.bin")
hfd = os.open(held, os.O_RDONLY)  # an open file handle across the restart
os.chdir(os.path.join(d, "sub"))  # and an open (current) directory
before = sorted(os.listdir("."))
print("info: wrote + fsynced %d files (%d MiB); asking the host to restart the server" %
      (len(files), sum(os.path.getsize(p) for p in files) >> 20), flush=True)
open(rq, "w").close()
t0 = time.time()
while not os.path.exists(done):
    if time.time() - t0 > tmo:
        sys.exit("no restart-done from the host after %d s" % tmo)
    time.sleep(0.5)
status = open(done).read().strip()
print("info: host restart %s after %.1f s" % (status, time.time() - t0), flush=True)
if status != "ok":
    sys.exit("host-side restart failed: " + status)
with open("/proc/sys/vm/drop_caches", "w") as f:
    f.write("3\n")
bad = 0
after = sorted(os.listdir("."))  # cwd opened before the restart
if after != before:
    print("listing of the held cwd changed: %s -> %s" % (before, after)); bad += 1
size = os.fstat(hfd).st_size
if sha(os.pread(hfd, size, 0)) != files[held]:
    print("held fd of %s reads different bytes" % held); bad += 1
for p, h in files.items():  # every fsynced byte, by path
    with open(p, "rb") as f:
        if sha(f.read()) != h:
            print("after restart %s differs" % p); bad += 1
with open("new-after-restart.bin", "wb") as f:  # and the mount still takes writes
    f.write(b"x" * 100000)
    f.flush()
    os.fsync(f.fileno())
if os.path.getsize("new-after-restart.bin") != 100000:
    print("write after restart failed"); bad += 1
sys.exit(1 if bad else 0)
EOF
}

do_rm() {
  rm -rf "$W/tree" "$W/tree2" "$W/repo" "$W/restart" || return 1
  cold
  if [ -n "$(find "$W" -mindepth 1 -print -quit)" ]; then
    echo "left over after rm -rf: $(find "$W" -mindepth 1 | wc -l) entries"
    return 1
  fi
  rmdir "$W"
}

[ "$SMALL_N" -ge 300 ] || { echo "workload-guest: SMALL_N must be >= 300 (the rename step uses d000-d002)"; exit 2; }
T0=$(date +%s)
echo "workload-guest: BIG_MB=$BIG_MB SMALL_N=$SMALL_N RESTART=${RESTART:-0}"
step mount do_mount || { echo "workload-guest: done $pass passed, $fail failed"; exit 1; }
step generate-source do_generate
step copy-in do_copy_in
step verify-copy do_verify_copy
step tar-pipe do_tar
step git do_git
step rename do_rename
if [ "${RESTART:-0}" = 1 ]; then
  step server-restart do_restart
else
  echo "SKIP server-restart (no SERVER_KILL_CMD/SERVER_START_CMD)"
fi
step rm-rf do_rm
cd / && umount /mnt/t
echo "workload-guest: $(($(date +%s) - T0)) s in the guest"
echo "workload-guest: done $pass passed, $fail failed"
[ "$fail" = 0 ]
