# shellcheck shell=bash
# nfs4-guest.sh - runs INSIDE the guest (see nfs4.sh): for NFSv4.0, 4.1 and 4.2, mounts
# $VM_SERVER:/export and does ordinary file work, one "PASS name" / "FAIL name" line per
# checked step; then mounts the pseudo root. First, a read delegation check: a file
# opened read-only through a 4.2 mount (the kernel client takes a read delegation) is
# written through a second, NFSv3 mount of the same export; the open's next read must
# see the new data (the server recalled the delegation; nfs4.sh checks the counters).
# Last line "nfs4-guest: done".
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
coherent_read() { # a read-only open on 4.2 (delegated) sees a write made through v3
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
delegation() { # 4.2 read delegation recalled by a v3 writer on a second mount
  local m=/mnt/v4 v3=/mnt/v3
  step "deleg 4.2 mount" mount -t nfs -o "vers=4.2,proto=tcp,port=$NFS_PORT,noac" "$S:/export" $m || return
  step "deleg v3 mount" mount -t nfs -o "vers=3,proto=tcp,port=$NFS_PORT,mountport=$NFS_PORT,mountproto=tcp,nolock,noac,lookupcache=none" "$S:/export" $v3
  step "deleg coherent read after a v3 write" coherent_read $m/deleg $v3/deleg
  rm -f $m/deleg
  umount $v3
  umount $m
}
mkdir -p /mnt/v4 /mnt/v3 /mnt/root
delegation
work 4.0
work 4.1
work 4.2
step "pseudo root mount" mount -t nfs -o "vers=4.2,proto=tcp,port=$NFS_PORT" "$S:/" /mnt/root
step "pseudo root lists the export" expect export ls /mnt/root
step "through the pseudo root" sh -c "echo x > /mnt/root/export/p && test \$(cat /mnt/root/export/p) = x && rm /mnt/root/export/p"
step "pseudo root umount" umount /mnt/root
dmesg | grep -i -E 'nfs|rpc' | tail -20
echo "nfs4-guest: done"
