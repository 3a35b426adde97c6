#!/bin/bash
# build-guest.sh - build (once, cached) the small Debian bookworm guest that the kernel-client
# tier boots under qemu: Debian's kernel, a busybox initramfs and an ext4 root image holding
# the real Linux NFS client (nfs-common), git, tar, python3, fio (the benchmark harness's
# kernel-client pass) and /sbin/dittofs-init.
#
# Output: $DITTOFS_CACHE/vm/guest-<key>/{vmlinux,initrd.img,root.img,.complete}
#   <key> = hash of this script + guest-init.sh: editing either builds a new guest (older
#   guest-* dirs are removed); re-running with nothing changed takes well under a second.
#   The stages of one build are stamped, so an interrupted build resumes where it stopped.
#   Downloaded .debs are kept in $DITTOFS_CACHE/vm/debs across rebuilds.
#
# Needs root and Debian's apt (installs qemu-system-x86, debootstrap, busybox-static, cpio,
# e2fsprogs, xz-utils on the host when missing).  Env: GUEST_EXTRA_PKGS="fio,strace" adds
# packages; DEBIAN_MIRROR (default http://deb.debian.org/debian); GUEST_IMG_SIZE (default 4G,
# sparse: the workload keeps its 1 GiB source file on this disk).
set -euo pipefail
LOG_TAG=build-guest
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMG_SIZE=${GUEST_IMG_SIZE:-4G}
PKGS=netbase,nfs-common,git,tar,coreutils,python3,iproute2,kmod,procps,util-linux,acl,fio
[ -n "${GUEST_EXTRA_PKGS:-}" ] && PKGS=$PKGS,$GUEST_EXTRA_PKGS

if [ -e "$GUEST_DIR/.complete" ]; then
  log "guest up to date: $GUEST_DIR"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot)"
T0=$(now_ms)

# ---- host prerequisites ------------------------------------------------------------
need_cmd qemu-system-x86_64 qemu-system-x86
need_cmd debootstrap debootstrap
need_cmd cpio cpio
need_cmd mkfs.ext4 e2fsprogs
need_cmd xz xz-utils
# the initramfs needs a static busybox (Debian's 'busybox' package is dynamically linked)
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
  log "installing host package busybox-static"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
fi

# a new key: drop guests built by older versions of the scripts
mkdir -p "$VM_DIR/debs" "$GUEST_DIR"
for d in "$VM_DIR"/guest-*; do
  [ "$d" = "$GUEST_DIR" ] || rm -rf "$d"
done
ROOT=$GUEST_DIR/rootfs
BLOG=$GUEST_DIR/build.log
stage_done() { [ -e "$GUEST_DIR/.stage-$1" ]; }
stage_mark() { touch "$GUEST_DIR/.stage-$1"; }

# ---- 1. root filesystem: debootstrap minbase + our packages ------------------------
if ! stage_done rootfs; then
  log "debootstrap bookworm ($PKGS)"
  rm -rf "$ROOT"
  debootstrap --variant=minbase --cache-dir="$VM_DIR/debs" --include="$PKGS" \
    bookworm "$ROOT" "$MIRROR" >"$BLOG" 2>&1 || { tail -n 30 "$BLOG"; die "debootstrap failed (log $BLOG)"; }
  stage_mark rootfs
fi

# ---- 2. kernel: Debian's linux-image, unpacked with dpkg -x (not installed) ----------
if ! stage_done kernel; then
  # apt inside the chroot (the guest's own suite), with the host's resolver
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  chroot "$ROOT" apt-get update -qq >>"$BLOG" 2>&1 || die "apt-get update in the guest rootfs failed (log $BLOG)"
  KPKG=$(chroot "$ROOT" apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
  [ -n "$KPKG" ] || die "cannot resolve linux-image-amd64 in the guest's apt"
  log "kernel $KPKG"
  K=$GUEST_DIR/kpkg
  rm -rf "$K" && mkdir -p "$K/x"
  chroot "$ROOT" sh -c "cd /tmp && apt-get download $KPKG" >>"$BLOG" 2>&1 || die "downloading $KPKG failed (log $BLOG)"
  mv "$ROOT"/tmp/linux-image-*.deb "$K/"
  dpkg -x "$K"/linux-image-*.deb "$K/x"
  KVER=$(ls "$K/x/lib/modules")
  # TCG boots the uncompressed ELF vmlinux through its PVH entry: no BIOS, no decompression
  OFF=$(LC_ALL=C grep -m 1 -obUaP '\xfd7zXZ\x00' "$K/x/boot/vmlinuz-$KVER" | awk -F: 'NR == 1 {print $1}')
  # (tail gets SIGPIPE when xz stops at the end of the stream: expected)
  { tail -c +$((OFF + 1)) "$K/x/boot/vmlinuz-$KVER" || true; } | xz -dc --single-stream >"$GUEST_DIR/vmlinux"
  [ "$(head -c 4 "$GUEST_DIR/vmlinux" | tail -c 3)" = ELF ] || die "could not extract vmlinux from vmlinuz-$KVER"
  # modules: drop hardware a virtio guest never has (saves ~250 MB of image)
  M=$K/x/lib/modules/$KVER/kernel
  rm -rf "$M"/sound "$M"/drivers/{gpu,media,infiniband,usb,iio,hwmon,scsi,staging,bluetooth,isdn,mtd,input,hid} \
    "$M"/drivers/{platform,video,misc,mmc,spi,i2c,power,leds,w1,ata,md,nvme,target} \
    "$M"/drivers/net/{wireless,ethernet,can,usb,ieee802154,wwan,dsa,phy,hamradio}
  rm -rf "$ROOT/lib/modules" && mkdir -p "$ROOT/lib/modules"
  mv "$K/x/lib/modules/$KVER" "$ROOT/lib/modules/"
  chroot "$ROOT" depmod -a "$KVER"
  chroot "$ROOT" apt-get clean
  rm -rf "$K" "$ROOT"/var/lib/apt/lists/* "$ROOT/etc/resolv.conf"
  echo "$KVER" >"$GUEST_DIR/kver"
  stage_mark kernel
fi
KVER=$(cat "$GUEST_DIR/kver")

# ---- 3. guest configuration (cheap: redone every build) ----------------------------
echo dittofs-vm >"$ROOT/etc/hostname"
printf '127.0.0.1 localhost dittofs-vm\n' >"$ROOT/etc/hosts"
: >"$ROOT/etc/fstab"
# pjdfstest's second dummy user: tests/tests (uid/gid 1000); nobody/nogroup exist already
chroot "$ROOT" sh -c 'getent passwd tests >/dev/null || useradd -M -u 1000 -U -s /usr/sbin/nologin tests'
install -m 755 "$VM_HERE/guest-init.sh" "$ROOT/sbin/dittofs-init"

# ---- 4. initramfs: static busybox + the modules to mount an ext4 virtio disk ------
IR=$GUEST_DIR/initramfs
rm -rf "$IR" && mkdir -p "$IR"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$IR/bin/busybox"
chroot "$ROOT" modprobe -a -S "$KVER" --show-depends virtio_pci virtio_blk ext4 crc32c_generic |
  awk '$1 == "insmod" && !seen[$2]++ {print $2}' | while read -r ko; do
    cp "$ROOT$ko" "$IR/lib/modules/"
    basename "$ko" >>"$IR/modlist"
  done
cat >"$IR/init" <<'EOF'
#!/bin/busybox sh
# load virtio + ext4 (in dependency order), mount /dev/vda and hand over to dittofs-init
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t devtmpfs dev /dev
for m in $($B cat /modlist); do $B insmod /lib/modules/$m 2>/dev/null; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 500 ]; do $B usleep 20000; i=$((i+1)); done
$B mount -t ext4 -o ro /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; $B poweroff -f; }
$B umount /proc; $B umount /dev
exec $B switch_root /newroot /sbin/dittofs-init
EOF
chmod 755 "$IR/init"
(cd "$IR" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$GUEST_DIR/initrd.img")
rm -rf "$IR"

# ---- 5. ext4 root image straight from the directory (mkfs.ext4 -d, no loop mount) --
rm -f "$GUEST_DIR/root.img"
mkfs.ext4 -q -F -L dittofs-root -E lazy_itable_init=1 -d "$ROOT" "$GUEST_DIR/root.img" "$IMG_SIZE" >>"$BLOG" 2>&1 ||
  die "mkfs.ext4 failed (log $BLOG)"
rm -f "$GUEST_DIR"/.stage-* && rm -rf "$ROOT"
touch "$GUEST_DIR/.complete"
log "guest built in $((($(now_ms) - T0) / 1000)) s: kernel $KVER, $(du -sh "$GUEST_DIR/root.img" | cut -f1) used of $IMG_SIZE image, in $GUEST_DIR"
