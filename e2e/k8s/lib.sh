#!/usr/bin/env bash
# lib.sh - helpers shared by e2e/k8s/cluster.sh and e2e/k8s/smoke.sh (sourced, not run).
# shellcheck disable=SC2034 # K8S_HERE is used by the scripts that source this file

K8S_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# k8s_log TAG MSG...: a timestamped line on stderr
k8s_log() { local tag=$1; shift; printf '[%s %(%T)T] %s\n' "$tag" -1 "$*" >&2; }

# k8s_need CMD DEBIAN-PACKAGE: CMD must exist; as root with apt-get, install the package
# (the scripts install their own prerequisites on a fresh Debian machine); else return 1
# with a message on stderr
k8s_need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing command '$1' (Debian package $2) and cannot apt-get install it" >&2; return 1
  fi
  echo "installing Debian package $2 (for $1)" >&2
  if ! apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 ||
    ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends "$2" >/dev/null; then
    echo "apt-get install $2 failed" >&2; return 1
  fi
  command -v "$1" >/dev/null 2>&1 || { echo "'$1' still missing after installing $2" >&2; return 1; }
}

# k8s_prereqs: every host command the cluster needs besides Go (openssl: PKI; curl: health
# probes; ss: port picking and the loopback check; setsid/flock: util-linux)
k8s_prereqs() {
  k8s_need openssl openssl && k8s_need curl curl && k8s_need ss iproute2 &&
    k8s_need setsid util-linux && k8s_need flock util-linux
}

# k8s_running PID: the process exists and is not a zombie (`kill -0` succeeds on a zombie)
k8s_running() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }
