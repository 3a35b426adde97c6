#!/usr/bin/env bash
# build-tools.sh - builds the binaries of the e2e Kubernetes test cluster from the Go module
# proxy alone (no prebuilt downloads, no Docker):
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl   (tools/k8s:  k8s.io/kubernetes)
#   etcd                                                               (tools/etcd: go.etcd.io/etcd/server/v3)
#   kwok + its stage files in kwok-stages/                             (tools/kwok: sigs.k8s.io/kwok)
#   helm                                                               (tools/helm: helm.sh/helm/v3)
# The versions are pinned by the go.mod/go.sum files under tools/ (regenerate them with
# tools/pin.sh). Output: $DITTOFS_CACHE/k8s-bin/<key>/ (DITTOFS_CACHE defaults to
# ~/.cache/dittofs), <key> = hash of those go.mod/go.sum files plus BUILD_REV below: a changed
# pin builds a new directory (older ones are then removed), an unchanged one is a no-op that
# returns in a few milliseconds.
#
# Stdout: exactly one line, the binary directory (so `BIN=$(e2e/k8s/build-tools.sh)` works);
# progress and versions go to stderr.
# Cold build on 2 cores: about 10-15 minutes (module downloads ~2.5 GiB into GOMODCACHE, build
# cache ~4 GiB, binaries ~0.5 GiB). Needs: go >= 1.26 (GOTOOLCHAIN=local: never downloads a
# toolchain), the Go module proxy, flock (util-linux), sha256sum (coreutils).
#
# Build flags: CGO_ENABLED=0, -trimpath, -mod=readonly (go.sum must already be complete),
# versions stamped with -X so /version reports the real v1.34.x (helm and kubectl check it),
# and helm's own version + the Kubernetes version helm assumes offline (as helm's Makefile).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=$HERE/tools
BUILD_REV=1 # bump when a change to this script's build commands must rebuild the binaries
MODULES=(k8s etcd kwok helm)
ROOT=${DITTOFS_CACHE:-$HOME/.cache/dittofs}/k8s-bin
log() { printf '[build-tools %(%T)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

key=$({ echo "build-tools rev $BUILD_REV"
  for m in "${MODULES[@]}"; do cat "$TOOLS/$m/go.mod" "$TOOLS/$m/go.sum"; done; } | sha256sum | cut -c1-16)
BIN=$ROOT/$key
if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi # the fast path: nothing else runs

command -v go >/dev/null || die "go not found (Go >= 1.26 is needed to build the test cluster)"
command -v flock >/dev/null || die "flock not found (Debian package util-linux)"
mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
flock 9 # one build at a time; a second caller waits, then finds the finished directory
if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"
T0=$SECONDS
OUT=$BIN.partial # survives an interruption: families already built there are not rebuilt
mkdir -p "$OUT"
log "building into $BIN with $(go version) (key over tools/*/go.{mod,sum} + rev $BUILD_REV)"
have() { local b; for b in "$@"; do [ -x "$OUT/$b" ] || return 1; done; }
modver() { go list -C "$TOOLS/$1" -m -f '{{.Version}}' "$2"; } # modver MODULE-DIR MODULE-PATH
moddir() { go list -C "$TOOLS/$1" -m -f '{{.Dir}}' "$2"; }
step() { # step NAME CMD...: run CMD, log its duration, keep its output in $OUT/build-NAME.log
  local n=$1 t=$SECONDS; shift
  log "$n ..."
  "$@" >"$OUT/build-$n.log" 2>&1 || { tail -n 30 "$OUT/build-$n.log" >&2; die "$n failed (log: $OUT/build-$n.log)"; }
  log "$n done in $((SECONDS - t)) s"
}

dl() { local m; for m in "${MODULES[@]}"; do (cd "$TOOLS/$m" && go mod download -x); done; }
step modules dl

build_k8s() {
  local v minor p ldf='-s -w -buildid='
  v=$(modver k8s k8s.io/kubernetes); minor=$(echo "$v" | cut -d. -f2)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ldf+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  p=k8s.io/kubernetes/cmd
  go build -C "$TOOLS/k8s" -v -trimpath -tags selinux,notest -ldflags "$ldf" -o "$OUT/" \
    "$p/kube-apiserver" "$p/kube-controller-manager" "$p/kube-scheduler" "$p/kubectl"
}
have kube-apiserver kube-controller-manager kube-scheduler kubectl || step k8s build_k8s

build_etcd() {
  local v; v=$(modver etcd go.etcd.io/etcd/server/v3)
  go build -C "$TOOLS/etcd" -v -trimpath -ldflags "-s -w -buildid= -X go.etcd.io/etcd/api/v3/version.GitSHA=$v" \
    -o "$OUT/etcd" go.etcd.io/etcd/server/v3 # -o names it; the package's default name is "server"
}
have etcd || step etcd build_etcd

build_kwok() {
  local dir; dir=$(moddir kwok sigs.k8s.io/kwok)
  go build -C "$TOOLS/kwok" -v -trimpath -ldflags '-s -w -buildid=' -o "$OUT/kwok" sigs.k8s.io/kwok/cmd/kwok
  # standalone kwok has no built-in stages (kwokctl injects them): ship upstream's stage files
  rm -rf "$OUT/kwok-stages"; cp -R "$dir/kustomize/stage" "$OUT/kwok-stages"; chmod -R u+w "$OUT/kwok-stages"
}
have kwok || step kwok build_kwok

build_helm() {
  local v cg minor p=helm.sh/helm/v3 ldf='-s -w -buildid='
  v=$(modver helm helm.sh/helm/v3)
  cg=$(modver helm k8s.io/client-go); minor=$(echo "$cg" | cut -d. -f2) # v0.36.x -> Kubernetes 1.36
  ldf+=" -X $p/internal/version.version=$v -X $p/internal/version.gitTreeState=clean"
  ldf+=" -X $p/pkg/chartutil.k8sVersionMajor=1 -X $p/pkg/chartutil.k8sVersionMinor=$minor"
  ldf+=" -X $p/pkg/lint/rules.k8sVersionMajor=1 -X $p/pkg/lint/rules.k8sVersionMinor=$minor"
  go build -C "$TOOLS/helm" -v -trimpath -ldflags "$ldf" -o "$OUT/helm" "$p/cmd/helm"
}
have helm || step helm build_helm

{ "$OUT/kube-apiserver" --version; "$OUT/kubectl" version --client 2>/dev/null | head -n 1
  "$OUT/etcd" --version | head -n 1; "$OUT/kwok" --version; "$OUT/helm" version --short; } >"$OUT/VERSIONS" ||
  die "a built binary does not run"
sed 's/^/  /' "$OUT/VERSIONS" >&2
rm -rf "$BIN"; mv "$OUT" "$BIN"; touch "$BIN/.complete"
for old in "$ROOT"/*; do # binaries of older pins: ~0.5 GiB each
  if [ "$old" != "$BIN" ] && [ -d "$old" ] && [[ $(basename "$old") =~ ^[0-9a-f]{16}(\.partial)?$ ]]; then
    log "removing old build $old"; rm -rf "$old"
  fi
done
log "done in $((SECONDS - T0)) s: $BIN ($(du -sh "$BIN" | cut -f1))"
echo "$BIN"
