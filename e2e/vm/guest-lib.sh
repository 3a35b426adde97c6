# shellcheck shell=bash
# guest-lib.sh - sourced INSIDE the guest (bash) by the guest-side scripts.
# mount_target: NFSv3 mount of $VM_SERVER:$EXPORT at /mnt/t over TCP, NFS and MOUNT on the
# ports $NFS_PORT / $MOUNT_PORT (no rpcbind/portmap query), without NLM; $MOUNT_OPTS is
# appended to the options when set. NFS_VERS=4.1 or 4.2 mounts that NFSv4 version
# instead (NFS port only; locks go to the NFSv4 server).
mount_target() {
  local opts=vers=3,proto=tcp,port=$NFS_PORT,mountport=$MOUNT_PORT,mountproto=tcp,nolock
  case ${NFS_VERS:-3} in
    4*) opts=vers=$NFS_VERS,proto=tcp,port=$NFS_PORT ;;
  esac
  [ -n "${MOUNT_OPTS:-}" ] && opts=$opts,$MOUNT_OPTS
  mkdir -p /mnt/t
  if ! mount -t nfs -o "$opts" "$VM_SERVER:$EXPORT" /mnt/t; then
    echo "guest: mount -t nfs -o $opts $VM_SERVER:$EXPORT /mnt/t FAILED"
    dmesg | tail -n 20
    return 1
  fi
  grep ' /mnt/t ' /proc/mounts
}
