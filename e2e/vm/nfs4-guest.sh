# shellcheck shell=bash
# nfs4-guest.sh - runs INSIDE the guest (see nfs4.sh): for NFSv4.0, 4.1 and 4.2, mounts
# $VM_SERVER:/export and does ordinary file work, one "PASS name" / "FAIL name" line per
# checked step; then mounts the pseudo root. Last line "nfs4-guest: done".
# Then (always last, it ends the guest's NFS state) an fcntl lock held over NFSv4.2 while
# the host SIGKILLs and restarts dfs (asked for through /share/.vmtest/restart-request,
# answered in restart-done): the kernel reclaims it, its I/O goes on, another process's
# lock on the bytes is refused until it is unlocked. RECLAIM=1 runs only that part.
set -u
S=${VM_SERVER:-10.0.2.2}
step() { # step NAME COMMAND...: runs COMMAND, prints PASS/FAIL NAME
  local name=$1; shift
  if out=$("$@" 2>&1); then echo "PASS $name"; else echo "FAIL $name: $out" | head -5; fi
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
  step "$v ls names" expect "g h s" sh -c "ls $m/d | tr '\n' ' ' | sed 's/ \$//'"
  step "$v df" sh -c "df -k $m | tail -1 | awk '{ exit !(\$2 > 0) }'"
  step "$v remount" sh -c "umount $m && mount -t nfs -o vers=$v,proto=tcp,port=$NFS_PORT $S:/export $m && test \$(stat -c %s $m/d/g) = 10"
  step "$v rm" rm $m/d/g $m/d/h $m/d/s
  step "$v rmdir" rmdir $m/d
  step "$v empty" expect "" ls -A $m
  step "$v umount" umount $m
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
mkdir -p /mnt/v4 /mnt/root
[ "${RECLAIM:-}" = 1 ] && { reclaim 4.2; dmesg | grep -i -E 'nfs|rpc' | tail -20; echo "nfs4-guest: done"; exit 0; }
work 4.0
work 4.1
work 4.2
step "pseudo root mount" mount -t nfs -o "vers=4.2,proto=tcp,port=$NFS_PORT" "$S:/" /mnt/root
step "pseudo root lists the export" expect export ls /mnt/root
step "through the pseudo root" sh -c "echo x > /mnt/root/export/p && test \$(cat /mnt/root/export/p) = x && rm /mnt/root/export/p"
step "pseudo root umount" umount /mnt/root
reclaim 4.2
dmesg | grep -i -E 'nfs|rpc' | tail -20
echo "nfs4-guest: done"
