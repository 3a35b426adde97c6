#!/bin/sh
# guest-init.sh - PID 1 of the test guest (installed as /sbin/dittofs-init by build-guest.sh).
# Mounts the basics, sets up the network that qemu user networking (slirp) offers, mounts
# the host's share dir at /share (9p), runs /share/.vmtest/cmd.sh as root with bash, stores
# its exit status in /share/.vmtest/rc, then powers the VM off (qemu then exits).
#
# Network: one virtio NIC, 10.0.2.15/24 and NO default route, so the guest can address only
# the slirp subnet; 10.0.2.2 is qemu's alias for the host's 127.0.0.1.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
hostname dittofs-vm
ip link set lo up
modprobe -q virtio_net
modprobe -q 9pnet_virtio
modprobe -q 9p
IF=
for n in /sys/class/net/*; do
  [ "${n##*/}" = lo ] || { IF=${n##*/}; break; }
done
if [ -n "$IF" ]; then
  ip addr add 10.0.2.15/24 dev "$IF"
  ip link set "$IF" up
fi
export VM_SERVER=10.0.2.2
mkdir -p /share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none share /share
echo "dittofs-init: up after $(cut -d' ' -f1 /proc/uptime)s"
if [ -f /share/.vmtest/cmd.sh ]; then
  cd /share && bash /share/.vmtest/cmd.sh </dev/null
  echo $? >/share/.vmtest/rc
else
  echo "dittofs-init: /share/.vmtest/cmd.sh missing"
  echo 99 >/share/.vmtest/rc
fi
dmesg >/share/.vmtest/dmesg.txt 2>/dev/null
echo "dittofs-init: done after $(cut -d' ' -f1 /proc/uptime)s rc=$(cat /share/.vmtest/rc)"
cd /
sync
umount /share 2>/dev/null
# no init system in the image: ask the kernel to power off (qemu runs with -no-reboot)
echo 1 >/proc/sys/kernel/sysrq
echo o >/proc/sysrq-trigger
sleep 30
