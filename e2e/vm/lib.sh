# shellcheck shell=bash
# lib.sh - helpers sourced by the e2e/vm host scripts (not executable on its own).
#
# Paths:
#   DITTOFS_CACHE   cache root (default ~/.cache/dittofs); the guest lives in $VM_DIR
#   VM_DIR          = $DITTOFS_CACHE/vm
#   GUEST_DIR       = $VM_DIR/guest-<key>, key = sha256 of build-guest.sh + guest-init.sh,
#                     so editing either file makes build-guest.sh build a new guest

VM_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
VM_DIR=$CACHE/vm

log() { printf '[%s %(%T)T] %s\n' "${LOG_TAG:-vm}" -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# with set -e a failing command would end the script silently: name it
trap 'log "ERROR: line $LINENO: \"$BASH_COMMAND\" failed (status $?)"' ERR

# guest_key: short content hash of the files that define the guest image
guest_key() { cat "$VM_HERE/build-guest.sh" "$VM_HERE/guest-init.sh" | sha256sum | cut -c1-16; }
GUEST_DIR=$VM_DIR/guest-$(guest_key)

# need_guest: fail clearly when the guest for the current scripts was not built
need_guest() {
  [ -e "$GUEST_DIR/.complete" ] ||
    die "no guest for this version of the scripts at $GUEST_DIR: run e2e/vm/build-guest.sh first"
}

# need_cmd CMD PKG: the host command CMD must exist; without it, apt-get install PKG
# when root (the scripts install their own prerequisites), else fail with a clear message
need_cmd() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "missing host command '$1' (Debian package $2) and cannot apt-get install it"
  fi
  log "installing host package $2 (for $1)"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null ||
    die "apt-get install $2 failed"
  command -v "$1" >/dev/null 2>&1 || die "'$1' still missing after installing $2"
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT SECONDS: poll until the port accepts, or fail
wait_port() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do port_open "$1" && return 0; sleep 0.1; done
  return 1
}

# now_ms: wall clock in milliseconds
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Server under test, for pjdfstest.sh and workload.sh. The caller supplies shell snippets:
#   SERVER_START_CMD  starts the server in the background and returns (used when nothing
#                     listens on 127.0.0.1:$NFS_PORT yet, and to restart it in workload.sh)
#   SERVER_STOP_CMD   stops it at the end (optional; only run when we started it)
#   SERVER_KILL_CMD   SIGKILLs it (workload.sh's restart step)
NFS_PORT=${NFS_PORT:-12049}
MOUNT_PORT=${MOUNT_PORT:-$NFS_PORT}
EXPORT=${EXPORT:-/export}
SERVER_STARTED=

server_start() {
  log "starting the server: $SERVER_START_CMD"
  bash -c "$SERVER_START_CMD" || die "SERVER_START_CMD failed"
  wait_port "$NFS_PORT" "${SERVER_START_TIMEOUT:-60}" ||
    die "the server does not accept on 127.0.0.1:$NFS_PORT after SERVER_START_CMD"
}

# server_ensure: a server must accept on 127.0.0.1:$NFS_PORT (and $MOUNT_PORT)
server_ensure() {
  if ! port_open "$NFS_PORT" && [ -n "${SERVER_START_CMD:-}" ]; then
    server_start
    SERVER_STARTED=1
  fi
  port_open "$NFS_PORT" || die "no NFS server on 127.0.0.1:$NFS_PORT: start one or set SERVER_START_CMD"
  port_open "$MOUNT_PORT" || die "no MOUNT service on 127.0.0.1:$MOUNT_PORT"
}

# server_release: stop the server if this script started it and SERVER_STOP_CMD is set
server_release() {
  if [ -n "$SERVER_STARTED" ] && [ -n "${SERVER_STOP_CMD:-}" ]; then
    log "stopping the server: $SERVER_STOP_CMD"
    bash -c "$SERVER_STOP_CMD" || log "SERVER_STOP_CMD failed"
  fi
}

# guest_env: the variables the guest-side scripts read, as shell assignments for a command line
guest_env() {
  local v out="VM_SERVER=10.0.2.2"
  for v in NFS_PORT MOUNT_PORT EXPORT MOUNT_OPTS NFS_VERS "$@"; do
    [ -n "${!v:-}" ] && out+=" $v=$(printf '%q' "${!v}")"
  done
  echo "$out"
}
