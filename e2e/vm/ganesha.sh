#!/bin/bash
# ganesha.sh start|stop|kill - NFS-Ganesha (Debian's 4.3, VFS FSAL) as a STAND-IN server for
# validating the e2e/vm harness while dfs is not there: NFSv3 + MOUNT over TCP on 127.0.0.1,
# export path /export, no root squash.  The scripts reach it with
#   NFS_PORT=$GANESHA_NFS_PORT MOUNT_PORT=$GANESHA_MNT_PORT EXPORT=/export MOUNT_OPTS=noacl
# noacl: ganesha 4.3 answers the NFSACL side protocol (program 100227) on its NFS port but
# fails every SETACL ("Bad xdr_free for NFSACL_SETACL" -> EIO in the client), so `cp -a`
# fails; Enable_NFSACL = false does not stop it. noacl keeps the client from asking.
#
#   start   install (apt) if missing, start rpcbind if none answers (ganesha 4.3 exits when
#           it cannot register v3), start ganesha, wait until the NFS port accepts
#   stop    SIGTERM the processes this script started (pid files), wait for them
#   kill    SIGKILL ganesha only (a crash, for the workload's restart step); `start` again
#           restarts it on the same export, so NFS file handles stay valid
#
# Env: GANESHA_NFS_PORT (20490)  GANESHA_MNT_PORT (20048)
#      GANESHA_DIR state + exported dir (default /tmp/dittofs-ganesha; export = $GANESHA_DIR/export)
#      GANESHA_PROTOCOLS "3" (default) or "3, 4": NFSv4.x too (same port, pseudo path /export,
#      numeric owners so the kernel client's AUTH_SYS ids need no idmapd)
set -euo pipefail
LOG_TAG=ganesha
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
NFS_PORT=${GANESHA_NFS_PORT:-20490}
MNT_PORT=${GANESHA_MNT_PORT:-20048}
PROTOCOLS=${GANESHA_PROTOCOLS:-3}
case $PROTOCOLS in 3 | "3, 4" | "3,4") ;; *) echo "GANESHA_PROTOCOLS: 3 or \"3, 4\", not '$PROTOCOLS'" >&2; exit 2 ;; esac
D=${GANESHA_DIR:-/tmp/dittofs-ganesha}

# stop_pidfile FILE SIGNAL: signal the pid in FILE and wait until it is gone (or a zombie:
# on hosts whose PID 1 does not reap, a dead orphan stays one)
stop_pidfile() {
  [ -f "$1" ] || return 0
  local p i
  p=$(cat "$1")
  rm -f "$1"
  kill "-$2" "$p" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    [ -e "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] || return 0
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null || true
}

case ${1:-} in
start)
  if ! command -v ganesha.nfsd >/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so ]; then
    log "installing nfs-ganesha nfs-ganesha-vfs rpcbind"
    apt-get update -qq
    # keep the package's postinst from starting a system-wide daemon
    rm_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && rm_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nfs-ganesha nfs-ganesha-vfs rpcbind >/dev/null
    [ -z "$rm_policy" ] || rm -f /usr/sbin/policy-rc.d
  fi
  mkdir -p "$D/recov" "$D/export"
  chmod 1777 "$D/export"
  if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
    setsid rpcbind -f -w >"$D/rpcbind.log" 2>&1 </dev/null &
    echo $! >"$D/rpcbind.pid"
    for ((i = 0; i < 50; i++)); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  cat >"$D/ganesha.conf" <<EOF
NFS_CORE_PARAM {
  Bind_addr = 127.0.0.1;
  NFS_Port = $NFS_PORT;
  MNT_Port = $MNT_PORT;
  Protocols = $PROTOCOLS;
  Enable_NLM = false;        # clients mount with -o nolock
  Enable_RQUOTA = false;
  Enable_UDP = false;
  mount_path_pseudo = true;  # v3 MOUNT answers for the path /export
  Plugins_Dir = "/usr/lib/x86_64-linux-gnu/ganesha";
}
NFSv4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = "$D/recov"; Only_Numeric_Owners = true; }
EXPORT {
  Export_Id = 1;
  Path = "$D/export";
  Pseudo = /export;
  Protocols = $PROTOCOLS;
  Transports = TCP;
  Access_Type = RW;
  Squash = No_Root_Squash;   # pjdfstest runs as root and chowns
  SecType = sys;
  PrivilegedPort = false;    # slirp relays the guest's connections from unprivileged ports
  FSAL { Name = VFS; }
}
LOG { Default_Log_Level = WARN; }
EOF
  setsid ganesha.nfsd -F -f "$D/ganesha.conf" -L "$D/ganesha.log" -p "$D/ganesha.pidfile" \
    >"$D/stdout.log" 2>&1 </dev/null &
  echo $! >"$D/ganesha.pid"
  wait_port "$NFS_PORT" 20 || { tail -n 20 "$D/ganesha.log" "$D/stdout.log"; die "ganesha did not start"; }
  log "ganesha pid $(cat "$D/ganesha.pid") on 127.0.0.1:$NFS_PORT (MOUNT $MNT_PORT), /export = $D/export"
  ;;
stop)
  stop_pidfile "$D/ganesha.pid" TERM
  stop_pidfile "$D/rpcbind.pid" TERM
  ;;
kill)
  stop_pidfile "$D/ganesha.pid" KILL
  ;;
*) echo "usage: $0 start|stop|kill" >&2; exit 2 ;;
esac
