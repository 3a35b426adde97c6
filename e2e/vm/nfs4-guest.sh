# shellcheck shell=bash
# nfs4-guest.sh - runs INSIDE the guest (see nfs4.sh): for NFSv4.0, 4.1 and 4.2, mounts
# $VM_SERVER:/export and does ordinary file work, one "PASS name" / "FAIL name" line per
# checked step (4.2 also user extended attributes, RFC 8276; 4.1 must not offer them);
# then mounts the pseudo root. Last line "nfs4-guest: done".
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
mkdir -p /mnt/v4 /mnt/root
work 4.0
work 4.1
work 4.2
step "pseudo root mount" mount -t nfs -o "vers=4.2,proto=tcp,port=$NFS_PORT" "$S:/" /mnt/root
step "pseudo root lists the export" expect export ls /mnt/root
step "through the pseudo root" sh -c "echo x > /mnt/root/export/p && test \$(cat /mnt/root/export/p) = x && rm /mnt/root/export/p"
step "pseudo root umount" umount /mnt/root
dmesg | grep -i -E 'nfs|rpc' | tail -20
echo "nfs4-guest: done"
