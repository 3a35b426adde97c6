# shellcheck shell=bash
# nfs4-guest.sh - runs INSIDE the guest (see nfs4.sh): for NFSv4.0, 4.1 and 4.2, mounts
# $VM_SERVER:/export and does ordinary file work, one "PASS name" / "FAIL name" line per
# checked step (4.2 also user extended attributes, RFC 8276; 4.1 must not offer them);
# then NFSv4.2's data operations (v42data: server-side copies by reference
# measured on the server's /metrics at $VM_SERVER:$HTTP_PORT, hole punching, SEEK_DATA/
# SEEK_HOLE; a file of $COPY_MB MiB); then mounts the pseudo root. First, a read
# delegation check: a file opened read-only through a 4.2 mount (the kernel client takes
# a read delegation) is written through a second, NFSv3 mount of the same export; the
# open's next read must see the new data (the server recalled the delegation; nfs4.sh
# checks the counters). Then two clients at once (a 4.0 and a 4.2 mount: two client IDs):
# fcntl locks conflict between them both ways, a blocked lock is granted once the other
# unlocks, a 4.0 writer recalls the 4.2 client's read delegation, and what either
# writes the other reads (the 4.2 client under a write delegation). Last line
# "nfs4-guest: done".
# Then (always last, it ends the guest's NFS state) an fcntl lock held over NFSv4.2 while
# the host SIGKILLs and restarts dfs (asked for through /share/.vmtest/restart-request,
# answered in restart-done): the kernel reclaims it, its I/O goes on, another process's
# lock on the bytes is refused until it is unlocked. RECLAIM=1 runs only that part;
# ONLY="STEP..." only the named step functions (e.g. delegation two_clients).
set -u
S=${VM_SERVER:-10.0.2.2}
step() { # step NAME COMMAND...: runs COMMAND, prints PASS/FAIL NAME
  local name=$1; shift
  if out=$("$@" 2>&1); then echo "PASS $name"; else echo "FAIL $name: $out" | head -5; fi
}
known() { # known NAME WHY COMMAND...: a step that fails for a reason not fixed yet (WHY,
  # tracked in issue #18): KNOWN NAME when it fails (counted apart by nfs4.sh), PASS when
  # it passes
  local name=$1 why=$2; shift 2
  if out=$("$@" 2>&1); then echo "PASS $name"; else echo "KNOWN $name ($why): $out" | head -5; fi
}
expect() { # expect WANT COMMAND...: COMMAND's output must be WANT
  local want=$1; shift
  local got; got=$("$@" 2>&1)
  [ "$got" = "$want" ] || { echo "got '$got', want '$want'"; return 1; }
}
lock_check() { # an exclusive fcntl lock taken, a second one refused, then released
  python3 - "$1" <<'PY'
import fcntl, os, sys
a = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(a, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
pid = os.fork()
if pid == 0:
    b = os.open(sys.argv[1], os.O_RDWR)
    try:
        fcntl.lockf(b, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        os._exit(1)
    except OSError:
        os._exit(0)
_, st = os.waitpid(pid, 0)
fcntl.lockf(a, fcntl.LOCK_UN, 10, 0)
sys.exit(os.WEXITSTATUS(st))
PY
}
xattr_check() { # user.* attributes through the 4.2 client: set, get, list, replace,
  # create/replace flags, a 60 KiB value, ENODATA, EACCES for another user, gone with
  # the file (a new file of the same name has none)
  python3 - "$1" <<'PY'
import errno, os, sys
d = sys.argv[1]
p = os.path.join(d, "x")
def err(fn, *a):
    try:
        fn(*a)
    except OSError as e:
        return e.errno
    return 0
def users(path):
    return sorted(n for n in os.listxattr(path) if n.startswith("user."))
with open(p, "w") as f:
    f.write("data")
os.chmod(p, 0o644)
os.setxattr(p, "user.color", b"blue")
assert os.getxattr(p, "user.color") == b"blue"
os.setxattr(p, "user.color", b"green", os.XATTR_REPLACE)
assert os.getxattr(p, "user.color") == b"green"
assert err(os.setxattr, p, "user.color", b"red", os.XATTR_CREATE) == errno.EEXIST
assert err(os.setxattr, p, "user.nope", b"x", os.XATTR_REPLACE) == errno.ENODATA
big = bytes(i % 251 for i in range(60 * 1024))
os.setxattr(p, "user.big", big)
assert os.getxattr(p, "user.big") == big
assert users(p) == ["user.big", "user.color"], users(p)
os.setxattr(d, "user.dir", b"1")
assert os.getxattr(d, "user.dir") == b"1"
pid = os.fork()
if pid == 0:
    os.setgid(1000); os.setuid(1000)
    ok = os.getxattr(p, "user.color") == b"green"
    ok = ok and err(os.setxattr, p, "user.color", b"x") == errno.EACCES
    os._exit(0 if ok else 1)
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0, "uid 1000"
os.removexattr(p, "user.color")
assert err(os.getxattr, p, "user.color") == errno.ENODATA
assert users(p) == ["user.big"], users(p)
os.removexattr(d, "user.dir")
os.unlink(p)
open(p, "w").close()
assert users(p) == [], users(p)
assert err(os.getxattr, p, "user.big") == errno.ENODATA
os.unlink(p)
PY
}
xattr_unsupported() { # 4.1 has no extended attributes: the client answers EOPNOTSUPP
  python3 -c 'import errno, os, sys
p = sys.argv[1] + "/x"; open(p, "w").close()
try: os.setxattr(p, "user.a", b"1"); sys.exit("set")
except OSError as e: assert e.errno == errno.EOPNOTSUPP, e
finally: os.unlink(p)' "$1"
}
work() { # work VERSION: the file work on /mnt/v4
  local v=$1 m=/mnt/v4
  step "$v mount" mount -t nfs -o "vers=$v,proto=tcp,port=$NFS_PORT" "$S:/export" $m || return
  step "$v mount type" expect "nfs4 vers=$v" sh -c "grep ' $m ' /proc/mounts | grep -o 'nfs4\|vers=[0-9.]*' | tr '\n' ' ' | sed 's/ \$//'"
  step "$v ls -l" ls -la $m
  step "$v mkdir" mkdir $m/d
  step "$v create+write" sh -c "head -c 3000000 /dev/urandom > /tmp/src && cp /tmp/src $m/d/f && sync"
  step "$v read back" cmp /tmp/src $m/d/f
  step "$v stat size" expect 3000000 stat -c %s $m/d/f
  step "$v append" sh -c "echo tail >> $m/d/f && tail -c 5 $m/d/f | grep -q tail"
  step "$v rename" sh -c "mv $m/d/f $m/d/g && test ! -e $m/d/f && test -f $m/d/g"
  step "$v hard link" sh -c "ln $m/d/g $m/d/h && test \$(stat -c %h $m/d/g) = 2"
  step "$v symlink" ln -s g $m/d/s
  step "$v readlink" expect g readlink $m/d/s
  step "$v chmod" sh -c "chmod 640 $m/d/g && test \$(stat -c %a $m/d/g) = 640"
  step "$v chown" sh -c "chown 1000:1001 $m/d/g && test \"\$(stat -c %u:%g $m/d/g)\" = 1000:1001"
  step "$v truncate" sh -c "truncate -s 10 $m/d/g && test \$(stat -c %s $m/d/g) = 10"
  step "$v lock" lock_check $m/d/g
  case $v in
    4.2) step "$v xattrs" xattr_check $m/d ;;
    4.1) step "$v no xattrs" xattr_unsupported $m/d ;;
  esac
  step "$v ls names" expect "g h s" sh -c "ls $m/d | tr '\n' ' ' | sed 's/ \$//'"
  step "$v df" sh -c "df -k $m | tail -1 | awk '{ exit !(\$2 > 0) }'"
  step "$v remount" sh -c "umount $m && mount -t nfs -o vers=$v,proto=tcp,port=$NFS_PORT $S:/export $m && test \$(stat -c %s $m/d/g) = 10"
  step "$v rm" rm $m/d/g $m/d/h $m/d/s
  step "$v rmdir" rmdir $m/d
  step "$v empty" expect "" ls -A $m
  step "$v umount" umount $m
}
coherent_read() { # a read-only open on 4.2 (delegated) sees a write made through another
  # client (v3, or 4.0)
  python3 - "$1" "$2" <<'PY'
import os, sys
v4, v3 = sys.argv[1], sys.argv[2]
with open(v4, "w") as f:
    f.write("old-content")
fd = os.open(v4, os.O_RDONLY)  # the kernel client takes the read delegation
assert os.pread(fd, 100, 0) == b"old-content"
with open(v3, "r+") as f:  # the server recalls the delegation (JUKEBOX, retried)
    f.write("NEW")
got = os.pread(fd, 100, 0)
os.close(fd)
if got != b"NEW-content":
    sys.exit(f"stale read through the delegated open: {got!r}")
PY
}
written_read() { # written_read W R: what one client wrote and closed (a 4.0 client may
  # keep it cached under a write delegation) another client reads (the server recalls
  # the delegation: the holder writes back first); then the writer's next open sees
  # the reader's append
  python3 - "$1" "$2" <<'PY'
import sys
w, r = sys.argv[1], sys.argv[2]
with open(w, "w") as f:
    f.write("from-the-writer")
with open(r) as f:
    got = f.read()
if got != "from-the-writer":
    sys.exit(f"the reader got {got!r}")
with open(r, "a") as f:
    f.write("+reader")
with open(w) as f:
    got = f.read()
if got != "from-the-writer+reader":
    sys.exit(f"the writer got {got!r} after the reader's append")
PY
}
delegation() { # 4.2 read delegation recalled by a v3 writer on a second mount
  local m=/mnt/v4 v3=/mnt/v3
  step "deleg 4.2 mount" mount -t nfs -o "vers=4.2,proto=tcp,port=$NFS_PORT,noac" "$S:/export" $m || return
  step "deleg v3 mount" mount -t nfs -o "vers=3,proto=tcp,port=$NFS_PORT,mountport=$NFS_PORT,mountproto=tcp,nolock,noac,lookupcache=none" "$S:/export" $v3
  step "deleg coherent read after a v3 write" coherent_read $m/deleg $v3/deleg
  rm -f $m/deleg
  umount $v3
  umount $m
}
lock_pair() { # lock_pair HOLDER WAITER: the same file through two clients: the holder's
  # fcntl lock refuses the waiter's; a blocking lock of the waiter waits, then is granted
  # once the holder unlocks (the client polls, or retries on CB_NOTIFY_LOCK); then the
  # waiter's lock refuses the holder
  python3 - "$1" "$2" <<'PY'
import fcntl, os, select, sys, time
holder, waiter = sys.argv[1], sys.argv[2]
def try_lock(fd):
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        return True
    except OSError:
        return False
a = os.open(holder, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(a, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    b = os.open(waiter, os.O_RDWR)
    os.write(w, b"granted-early" if try_lock(b) else b"refused")
    fcntl.lockf(b, fcntl.LOCK_EX, 10, 0)  # blocks until the holder unlocks
    os.write(w, b"|granted")
    time.sleep(3)  # hold it while the parent tries
    os._exit(0)
os.close(w)
first = os.read(r, 64)
if first != b"refused":
    sys.exit(f"the waiter's lock was not refused: {first!r}")
time.sleep(2)
if select.select([r], [], [], 0)[0]:
    sys.exit("the blocking lock was granted while the holder held the range")
t0 = time.time()
fcntl.lockf(a, fcntl.LOCK_UN, 10, 0)
ready = select.select([r], [], [], 60)[0]
if not ready or os.read(r, 64) != b"|granted":
    sys.exit("the blocked lock was not granted within 60 s of the unlock")
waited = time.time() - t0
if try_lock(a):
    sys.exit("the holder locked the range the waiter now holds")
os.waitpid(pid, 0)
print(f"granted {waited:.1f} s after the unlock")
PY
}
two_clients() { # NFSv4.0 and 4.2 mounts are two clients of the server (two client IDs):
  # locks conflict between them both ways, a blocked lock is granted after the unlock,
  # the 4.2 client's read delegation is recalled when the 4.0 client writes, and its
  # write delegation when the 4.0 client reads. (The 4.0 client gets no delegations
  # here: the server cannot dial its callback service behind qemu's user-mode network;
  # nlm_kernel.rs tests NFSv4.0 delegations on a tap device.)
  local m=/mnt/v4 o=/mnt/v40
  step "2 clients 4.2 mount" mount -t nfs -o "vers=4.2,proto=tcp,port=$NFS_PORT,noac" "$S:/export" $m || return
  step "2 clients 4.0 mount" mount -t nfs -o "vers=4.0,proto=tcp,port=$NFS_PORT,noac" "$S:/export" $o
  known "2 clients 4.2 deleg recalled by a 4.0 writer" \
    "the 4.2 reader's next read after the recall can still come from its cache" \
    coherent_read $m/deleg2 $o/deleg2
  step "2 clients 4.0 writes, 4.2 reads, and back" written_read $o/wdeleg $m/wdeleg
  step "2 clients 4.2 writes (write deleg), 4.0 reads, and back" written_read $m/wdeleg2 $o/wdeleg2
  step "2 clients 4.2 lock blocks 4.0, granted after unlock" lock_pair $m/lk $o/lk
  step "2 clients 4.0 lock blocks 4.2, granted after unlock" lock_pair $o/lk $m/lk
  rm -f $m/deleg2 $m/lk $m/wdeleg $m/wdeleg2
  umount $o
  umount $m
}
metric() { # metric NAME [LABELS]: the sum of NAME's samples (whose labels contain LABELS)
  python3 - "$S" "$HTTP_PORT" "$1" "${2:-}" <<'PY'
import sys, urllib.request
host, port, name, labels = sys.argv[1:5]
body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10).read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines()
              if (l.startswith(name + "{") or l.startswith(name + " ")) and labels in l)))
PY
}
server_copied() { # server_copied WRITES COPIES CLONES: no WRITE since, a COPY and a CLONE
  local w c k
  w=$(op_count Write) c=$(op_count Copy) k=$(op_count Clone)
  echo "WRITE $1 -> $w, COPY $2 -> $c, CLONE $3 -> $k"
  [ "$w" = "$1" ] && [ "$c" -gt "$2" ] && [ "$k" -gt "$3" ]
}
op_count() { metric dittofs_nfs_requests_total "program=\"nfs4_op\",procedure=\"$1\""; }
settled_used() { # the server's used bytes once nothing is dirty and the value is steady
  local prev=-1 cur n=0
  for _ in $(seq 240); do
    sleep 1
    [ "$(metric dittofs_blockstore_dirty_files)" = 0 ] || continue
    cur=$(metric dittofs_blockstore_used_bytes)
    if [ "$cur" = "$prev" ]; then n=$((n + 1)); else n=0; fi
    prev=$cur
    [ $n -ge 3 ] && { echo "$cur"; return 0; }
  done
  echo "used bytes never settled (last $prev)" >&2; return 1
}
gen() { # gen FILE MIB: MIB MiB of seeded pseudo-random bytes (the same every run)
  python3 - "$1" "$2" <<'PY'
import random, sys
random.seed(0xD1770F5)
with open(sys.argv[1], "wb") as f:
    for _ in range(int(sys.argv[2])):
        f.write(random.randbytes(1 << 20))
PY
}
gen_sync() { gen "$@" && sync; }
cfr() { # cfr SRC DST: copy_file_range of the whole file
  python3 - "$1" "$2" <<'PY'
import os, sys
s = os.open(sys.argv[1], os.O_RDONLY)
d = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
n = os.fstat(s).st_size
while n > 0:
    k = os.copy_file_range(s, d, n)
    if k <= 0:
        sys.exit(f"copy_file_range returned {k} with {n} left")
    n -= k
PY
}
no_growth() { # no_growth BEFORE AFTER: the copies stored (almost) nothing new
  [ "$1" -ge $((COPY_MB << 20)) ] && [ $(($2 - $1)) -le $((1 << 20)) ]
}
same_sums() { # the three files have one sha256
  [ "$(sha256sum "$@" | awk '{print $1}' | sort -u | wc -l)" = 1 ]
}
punch_check() { # 2 MiB at 1 MiB punched: zeros there, the rest unchanged
  fallocate -p -o 1048576 -l 2097152 "$1" || return 1
  python3 - "$1" "$2" <<'PY'
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert len(a) == len(b), (len(a), len(b))
assert a[1 << 20:3 << 20] == bytes(2 << 20), "punched range is not zeros"
assert a[:1 << 20] == b[:1 << 20] and a[3 << 20:] == b[3 << 20:], "data outside the punch changed"
PY
}
seek_check() { # SEEK_DATA/SEEK_HOLE on 1 MiB at 0 and 1 MiB at 32 MiB of a 40 MiB file
  python3 - "$1" <<'PY'
import errno, os, sys
p = sys.argv[1]
fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
M = 1 << 20
os.pwrite(fd, os.urandom(M), 0)
os.pwrite(fd, os.urandom(M), 32 * M)
os.ftruncate(fd, 40 * M)
os.fsync(fd)
got = [os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE),
       os.lseek(fd, M, os.SEEK_DATA), os.lseek(fd, 32 * M, os.SEEK_HOLE)]
assert got == [0, M, 32 * M, 33 * M], got
try:
    os.lseek(fd, 34 * M, os.SEEK_DATA)
    sys.exit("SEEK_DATA past the last data succeeded")
except OSError as e:
    assert e.errno == errno.ENXIO, e
PY
}
v42data() { # NFSv4.2 COPY/CLONE by reference, DEALLOCATE, SEEK through the kernel client
  local m=/mnt/v4
  step "4.2 data mount" mount -t nfs -o "vers=4.2,proto=tcp,port=$NFS_PORT" "$S:/export" $m || return
  local t0=$SECONDS
  step "4.2 metrics reachable" metric dittofs_blockstore_used_bytes
  step "4.2 write ${COPY_MB} MiB" gen_sync $m/big "$COPY_MB"
  echo "guest: wrote $COPY_MB MiB in $((SECONDS - t0)) s"
  local before after writes copies clones
  before=$(settled_used)
  writes=$(op_count Write) copies=$(op_count Copy) clones=$(op_count Clone)
  step "4.2 cp --reflink=always" cp --reflink=always $m/big $m/ref
  step "4.2 copy_file_range" cfr $m/big $m/cfr
  after=$(settled_used)
  echo "guest: server used bytes $before -> $after; $(server_copied "$writes" "$copies" "$clones")"
  # The server did the copies: a client falling back to READ+WRITE would send WRITEs
  # (and content-defined chunks dedup such a copy too, so used bytes alone cannot tell).
  step "4.2 copies done by the server" server_copied "$writes" "$copies" "$clones"
  step "4.2 copies store no new chunks" no_growth "${before:-0}" "${after:-0}"
  step "4.2 copies identical" same_sums $m/big $m/ref $m/cfr
  step "4.2 fallocate punch" punch_check $m/cfr $m/big
  step "4.2 original unchanged by the punch" same_sums $m/big $m/ref
  step "4.2 seek data/hole" seek_check $m/sparse
  step "4.2 data rm" rm $m/big $m/ref $m/cfr $m/sparse
  step "4.2 data umount" umount $m
}
reclaim_check() { # holds an fcntl lock across the host's SIGKILL + restart of dfs
  python3 - "$1" <<'PY'
import fcntl, os, sys, time
path, rq, done = sys.argv[1], "/share/.vmtest/restart-request", "/share/.vmtest/restart-done"
def step(name, ok, why=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + why), flush=True)
    return ok
def other_lock():  # a second process (another lock-owner) tries the locked bytes
    pid = os.fork()
    if pid == 0:
        b = os.open(path, os.O_RDWR)
        try:
            fcntl.lockf(b, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
            os._exit(0)
        except OSError:
            os._exit(1)
    return os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 0
a = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.write(a, b"before")
fcntl.lockf(a, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
open(rq, "w").close()
t0 = time.time()
while not os.path.exists(done):
    if time.time() - t0 > 120:
        sys.exit(step("reclaim restart", False, "no restart-done from the host"))
    time.sleep(0.2)
status = open(done).read().strip()
os.unlink(done)
if not step("reclaim restart", status == "ok", status):
    sys.exit(1)
try:  # the held descriptor's I/O makes the client find the restart and reclaim
    os.pwrite(a, b"after!", 0)
    os.fsync(a)
    ok = os.pread(a, 6, 0) == b"after!"
    step("reclaim I/O after the restart", ok, "read back differs")
except OSError as e:
    step("reclaim I/O after the restart", False, str(e))
step("reclaimed lock refuses another owner", not other_lock(), "second lock granted")
try:
    os.pwrite(a, b"still", 0)
    os.fsync(a)
    step("reclaim I/O of the lock holder", os.pread(a, 5, 0) == b"still", "read back differs")
except OSError as e:
    step("reclaim I/O of the lock holder", False, str(e))
fcntl.lockf(a, fcntl.LOCK_UN, 10, 0)
step("reclaim unlock frees the bytes", other_lock(), "second lock refused after unlock")
os.close(a)
PY
}
reclaim() { # reclaim VERSION: an fcntl lock reclaimed after the host restarts dfs
  local v=$1 m=/mnt/v4
  step "$v reclaim mount" mount -t nfs -o "vers=$v,proto=tcp,port=$NFS_PORT" "$S:/export" $m || return
  reclaim_check $m/reclaim
  step "$v reclaim cleanup" sh -c "rm $m/reclaim && umount $m"
}
mkdir -p /mnt/v4 /mnt/v40 /mnt/v3 /mnt/root
[ "${RECLAIM:-}" = 1 ] && { reclaim 4.2; dmesg | grep -i -E 'nfs|rpc' | tail -20; echo "nfs4-guest: done"; exit 0; }
if [ -n "${ONLY:-}" ]; then # ONLY="delegation two_clients": just those steps
  [ -z "${NFS_DEBUG:-}" ] || echo "$NFS_DEBUG" >/proc/sys/sunrpc/nfs_debug # rpcdebug flags
  for f in $ONLY; do "$f"; done
  dmesg | grep -i -E 'nfs|rpc' | tail -20; echo "nfs4-guest: done"; exit 0
fi
delegation
two_clients
work 4.0
work 4.1
work 4.2
v42data
step "pseudo root mount" mount -t nfs -o "vers=4.2,proto=tcp,port=$NFS_PORT" "$S:/" /mnt/root
step "pseudo root lists the export" expect export ls /mnt/root
step "through the pseudo root" sh -c "echo x > /mnt/root/export/p && test \$(cat /mnt/root/export/p) = x && rm /mnt/root/export/p"
step "pseudo root umount" umount /mnt/root
reclaim 4.2
dmesg | grep -i -E 'nfs|rpc' | tail -20
echo "nfs4-guest: done"
