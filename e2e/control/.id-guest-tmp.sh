#!/usr/bin/env bash
# e2e.sh - the control plane end to end: starts an empty `dfs`, builds two metadata
# stores, three local block stores and three shares with `dfsctl`, mounts two shares with
# the Linux kernel NFS client (qemu guest), writes, deletes into #recycle, restores with
# dfsctl, checks that deleted files' chunks are reclaimed promptly, runs GC (dry run and
# real, on a planted orphan chunk) and the audit, checks that removing a store in use
# fails clearly and that wrong/missing tokens are refused, restarts the server, checks
# that configuration and data survived (second guest boot), and that the audit finds a
# chunk file deleted by hand (exit 8, the file named).
# Secrets: the generated token is in its 0600 file only (not in dfs's output, not in
# `ps`), secrets given to dfsctl as files or environment variables stay out of `ps`, a
# second dfs (control API on 0.0.0.0, token file mode 0644) warns about both and never
# receives the first one's local token, and a too-short token exits 2.
# Identity: users (passwords on stdin, from a file, as a flag), a group, grants and the
# default level on /team; no password or hash in listings (text/json/yaml), config get,
# state.json or the server log; identity.json 0600 with hashes only; users survive the restart.
# Prints the dfsctl transcript; ends with "control-e2e: N passed, N failed".
#
# Env: NFS_PORT (default 23049; control API on NFS_PORT+2)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VM=$ROOT/e2e/vm
export DITTOFS_CACHE=${DITTOFS_CACHE:-$HOME/.cache/dittofs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$DITTOFS_CACHE/target}
NFS_PORT=${NFS_PORT:-23049}
CTL_PORT=$((NFS_PORT + 2))
log() { printf '[control-e2e %(%T)T] %s\n' -1 "$*" >&2; }
passed=0; failed=0
ok() { passed=$((passed+1)); log "PASS $*"; }
bad() { failed=$((failed+1)); log "FAIL $*"; }
finish() { echo "control-e2e: $passed passed, $failed failed"; [ "$failed" = 0 ]; exit $?; }


DFS=$CARGO_TARGET_DIR/release/dfs
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dfs-control.XXXXXX")
# The data directory sits where dfsctl looks for a local token when XDG_DATA_HOME=$WORK/xdg.
DATA=$WORK/xdg/dittofs
export DFSCTL_CONFIG=$WORK/dfsctl.yaml
PID=''; PID2=''; HANG=''
cleanup() {
  trap '' INT TERM # a second signal (the runner's and a timeout's) must not cut it short
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID"; wait "$PID" 2>/dev/null; fi
  if [ -n "$PID2" ] && kill -0 "$PID2" 2>/dev/null; then kill -TERM "$PID2"; wait "$PID2" 2>/dev/null; fi
  if [ -n "$HANG" ] && kill -0 "$HANG" 2>/dev/null; then kill "$HANG"; wait "$HANG" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

start_dfs() {
  # An empty server: no stores, no shares until dfsctl creates them (after the first
  # apply, <data>/control/state.json is what the server starts from).
  DITTOFS_NFS_BIND=127.0.0.1 DITTOFS_NFS_PORT=$NFS_PORT DITTOFS_HTTP_ENABLED=false \
  DITTOFS_CONTROL_PORT=$CTL_PORT DITTOFS_METADATA_STORES='[]' DITTOFS_BLOCK_STORES='{local: []}' \
  DITTOFS_SHARES='[]' "$DFS" start --data-dir "$DATA" >>"$WORK/dfs.log" 2>&1 </dev/null &
  PID=$!
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$CTL_PORT") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
stop_dfs() {
  kill -TERM "$PID"; wait "$PID"; local rc=$?; PID=''; return $rc
}

# dfsctl with the transcript: prints "$ dfsctl ARGS", its output, and its exit code in $RC.
RC=0
ctl() {
  printf '$ dfsctl %s\n' "$*"
  "$CARGO_TARGET_DIR/release/dfsctl" "$@" >"$WORK/out" 2>&1; RC=$?
  sed 's/^/  /' "$WORK/out"
  [ "$RC" = 0 ] || printf '  (exit %s)\n' "$RC"
}
expect() { # exit-code description  (checks the last ctl)
  if [ "$RC" = "$1" ]; then ok "$2"; else bad "$2 (exit $RC, expected $1)"; fi
}
json() { python3 -c "import json,sys; d=json.load(open('$WORK/out')); print($1)"; }

start_dfs || { bad "dfs did not start"; tail -20 "$WORK/dfs.log" >&2; finish; }
# The banner follows the listeners: the port can answer before the line is written.
for _ in $(seq 100); do grep -q "control token: generated in" "$WORK/dfs.log" && break; sleep 0.1; done
grep -q "control token: generated in $DATA/control-token" "$WORK/dfs.log" \
  && ok "the banner names the generated token's file" || bad "no 'control token: generated in $DATA/control-token' line"
TOKEN=$(cat "$DATA/control-token")
[ "$(stat -c %a "$DATA/control-token")" = 600 ] && [ ${#TOKEN} -ge 16 ] && ok "generated token in a 0600 file" || bad "control-token file mode or content"
! grep -qF "$TOKEN" "$WORK/dfs.log" && ok "the token is not in dfs's stdout/stderr" || bad "dfs printed its token"
[ "$(cat "$DATA/control-endpoint" 2>/dev/null)" = "127.0.0.1:$CTL_PORT" ] && ok "control-endpoint records the control address" || bad "control-endpoint: $(cat "$DATA/control-endpoint" 2>&1)"
! grep -qE "WARN.*(control token file|without TLS)" "$WORK/dfs.log" && ok "no warning for a loopback control API and a 0600 token" || { bad "unexpected warning"; grep WARN "$WORK/dfs.log" >&2; }

echo "----- transcript -----"
# --- authentication ---
ctl --server "127.0.0.1:$CTL_PORT" --token wrong-token-0123456789 status; expect 5 "wrong token refused"
ctl --server "127.0.0.1:$CTL_PORT" --token-file /dev/null status; expect 2 "an empty token file is a usage error"
grep -q "is empty" "$WORK/out" && ok "the empty token file is named" || bad "empty token file message"
DFSCTL_TOKEN=$TOKEN ctl --server "127.0.0.1:$CTL_PORT" --token-file "$DATA/control-token" status; expect 2 "DFSCTL_TOKEN and --token-file together refused"
! grep -qF "$TOKEN" "$WORK/out" && ok "the conflict message does not show the token" || bad "token in the conflict message"
XDG_DATA_HOME=$WORK/xdg ctl --server "127.0.0.1:$CTL_PORT" status; expect 0 "no token given: the local dfs's token is used for its own address"
ctl context set e2e --server "127.0.0.1:$CTL_PORT" --token-file "$DATA/control-token"; expect 0 "context set"
ctl context use e2e; expect 0 "context use"

# --- stores and shares ---
ctl store metadata add --name meta-a --type sled; expect 0 "metadata store meta-a"
ctl store metadata add --name meta-b --type sled --config "{\"path\":\"$WORK/meta-b\"}"; expect 0 "metadata store meta-b (path via --config)"
ctl store block local add --name local-1 --type fs; expect 0 "block store local-1"
ctl store block local add --name local-2 --type fs --path "$WORK/blocks-2"; expect 0 "block store local-2"
ctl store block add --kind local --name local-3 --type fs; expect 0 "block store local-3 (generic form)"
ctl store metadata add --name meta-a --type sled; expect 4 "duplicate store refused"
ctl share create --name /docs --metadata meta-a --local local-1 --enable-trash --trash-retention-days 7 --trash-exclude '*.tmp'
expect 0 "share /docs (trash on)"
ctl share create --name /media --metadata meta-b --local local-2; expect 0 "share /media"
ctl share create --name /scratch --metadata meta-a --local local-3 --read-only; expect 0 "share /scratch"
ctl share create --name /bad --metadata nope --local local-1; expect 3 "share on an unknown store refused"
ctl share list; expect 0 "share list"
ctl -o json share list
[ "$(json 'len(d)')" = 3 ] && ok "three shares listed as JSON" || bad "share list -o json"
ctl status; expect 0 "status"

# --- users, groups and share permissions (on /team, which guest 1 uses as four uids) ---
MOPT_TEAM="nfsvers=3,tcp,port=$NFS_PORT,mountport=$NFS_PORT,nolock,actimeo=0"
# Passwords go in on stdin, from a file and (once, with its warning) as a flag; none of
# them, and no hash, may come back in a listing, state.json or the server log.
PW_A=$(python3 -c 'import os; print("pwA-" + os.urandom(12).hex())')
PW_B=$(python3 -c 'import os; print("pwB-" + os.urandom(12).hex())')
PW_C=$(python3 -c 'import os; print("pwC-" + os.urandom(12).hex())')
PW_A2=$(python3 -c 'import os; print("pwA2-" + os.urandom(12).hex())')
printf '%s\n' "$PW_B" >"$WORK/pw-b"; chmod 600 "$WORK/pw-b"
ctl share create --name /team --metadata meta-a --local local-3; expect 0 "share /team"
ctl group create staff --gid 5000; expect 0 "group staff"
ctl user create alice --uid 5001 --groups staff --password-stdin <<<"$PW_A"; expect 0 "user alice (password on stdin)"
ctl user create bob --uid 5002 --groups staff --password-file "$WORK/pw-b"; expect 0 "user bob (password from a file)"
ctl user create carol --uid 5003 --password "$PW_C"; expect 0 "user carol (password as a flag)"
grep -q "visible to every user" "$WORK/out" && ok "--password draws the ps warning" || bad "no warning for --password"
ctl user create dave --uid 5001 --password-stdin <<<"x"; expect 2 "a second user with uid 5001 refused"
grep -q 'uid 5001 is already used by user "alice"' "$WORK/out" && ok "the duplicate uid's owner is named" || bad "duplicate uid message"
ctl user create dave --groups nope --password-stdin <<<"x"; expect 3 "an unknown group refused"
ctl user create dave --password-stdin </dev/null; expect 2 "an empty password refused"
ctl user create -- -dave --password-stdin <<<"x"; expect 2 "a bad user name refused"
ctl user create dave --uid 5004 </dev/null; expect 2 "no password and no terminal: usage error"
ctl share permission grant /team --user alice --level write; expect 2 "an unknown level refused"
ctl share permission grant /team --user nobody --level read; expect 3 "a grant to an unknown user refused"
ctl share permission grant /team --user alice --level read; expect 0 "grant alice read on /team"
ctl share permission grant /team --group staff --level read-write; expect 0 "grant staff read-write on /team"
ctl share permission default /team --level none; expect 0 "default level of /team: none"
ctl -o json share permission list /team
[ "$(json "d['default_level'] + ' ' + ' '.join(sorted(g['kind'] + ':' + g['name'] + '=' + g['level'] for g in d['grants']))")" = "none group:staff=read-write user:alice=read" ] \
  && ok "permission list shows both grants and the default" || bad "permission list: $(cat "$WORK/out")"
ctl user edit carol --enabled false; expect 0 "disable carol"
ctl user password alice --password-stdin <<<"$PW_A2"; expect 0 "alice's password changed"
ctl group list; expect 0 "group list"
grep -q "staff.*5000.*alice,bob" "$WORK/out" && ok "group list shows the members" || bad "group members"
ctl group remove staff; expect 4 "a group with members is not removed"
ctl user list; expect 0 "user list"
IDENT=$DATA/control/identity.json
secrets_in() { # file: prints each password or hash found in it
  for s in "$PW_A" "$PW_B" "$PW_C" "$PW_A2" '$argon2'; do grep -qF -- "$s" "$1" && echo "$s"; done
  python3 -c 'import json,sys; [print(u["hashes"]["nt"]) for u in json.load(open(sys.argv[1]))["users"].values()]' "$IDENT" \
    | while read -r h; do grep -qF "$h" "$1" && echo "nt:$h"; done
}
for f in yaml json; do
  ctl -o "$f" user list; cp "$WORK/out" "$WORK/users.$f"
  [ -z "$(secrets_in "$WORK/users.$f")" ] && grep -q "has_password" "$WORK/users.$f" \
    && ok "user list -o $f: no password, no hash" || bad "user list -o $f shows a secret: $(secrets_in "$WORK/users.$f")"
done
ctl -o yaml user get carol
grep -q "enabled: false" "$WORK/out" && [ -z "$(secrets_in "$WORK/out")" ] && ok "user get: carol disabled, no secret" || bad "user get carol"
ctl -o json config get
[ -z "$(secrets_in "$WORK/out")" ] && ok "config get: no secret" || bad "config get shows a secret"
[ "$(stat -c %a "$IDENT")" = 600 ] && [ "$(stat -c %a "$DATA/control/state.json")" = 600 ] \
  && ok "identity.json and state.json are 0600" || bad "modes: $(stat -c '%n %a' "$IDENT" "$DATA/control/state.json")"
[ -z "$(for s in "$PW_A" "$PW_B" "$PW_C" "$PW_A2"; do grep -lF -- "$s" "$IDENT" "$DATA/control/state.json"; done)" ] \
  && grep -q '"argon2": "\$argon2id\$' "$IDENT" && ! grep -q argon2 "$DATA/control/state.json" \
  && ok "identity.json holds hashes only, state.json no user" || bad "a clear password or misplaced hash in the state files"
# The kernel client on /team as four uids (guest 1 runs it): bob (staff: read-write)
# writes; alice (own grant: read) gets EACCES on every kind of change, EPERM or success
# would mean the grant was not what refused it (chmod of bob's file is EPERM by POSIX);
# carol (disabled) and an unknown uid (default none) cannot list it. Root mounts it
# (squashed to the anonymous uid: default none, which still serves the mount).
TEAM_GUEST='mkdir -p /mnt/team
mount -t nfs -o '"$MOPT_TEAM"' 10.0.2.2:/team /mnt/team
as() { u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
as 5002 sh -c "umask 0; echo hello > /mnt/team/f && mkdir /mnt/team/d && echo BOB-WRITE-OK"
for op in "touch /mnt/team/new" "echo x >> /mnt/team/f" "chmod 600 /mnt/team/f" "truncate -s 0 /mnt/team/f" \
    "mv /mnt/team/f /mnt/team/g" "rm /mnt/team/f" "ln /mnt/team/f /mnt/team/h" "ln -s f /mnt/team/s" \
    "mkdir /mnt/team/d2" "rmdir /mnt/team/d"; do
  if out=$(as 5001 sh -c "$op" 2>&1); then echo "ALICE-ALLOWED: $op"
  elif echo "$out" | grep -q "Permission denied"; then echo "ALICE-REFUSED: $op"
  else echo "ALICE-OTHER: $op: $out"; fi
done
[ "$(as 5001 cat /mnt/team/f)" = hello ] && echo ALICE-READ-OK
as 5003 ls /mnt/team >/dev/null 2>&1 || echo CAROL-REFUSED
as 5009 ls /mnt/team >/dev/null 2>&1 || echo NOBODY-LIST-REFUSED
as 5009 stat /mnt/team >/dev/null && echo NOBODY-STAT-OK
umount /mnt/team
echo TEAM-DONE'
team_checks() { # guest log
  for m in BOB-WRITE-OK ALICE-READ-OK CAROL-REFUSED NOBODY-LIST-REFUSED NOBODY-STAT-OK TEAM-DONE; do
    grep -q "^$m" "$1" && ok "guest: $m" || bad "guest: $m"
  done
  [ "$(grep -c '^ALICE-REFUSED' "$1")" = 10 ] && ! grep -qE '^ALICE-(ALLOWED|OTHER)' "$1" \
    && ok "guest: read grant refuses create, write, chmod, truncate, rename, remove, link, symlink, mkdir, rmdir with EACCES" \
    || bad "guest: read grant: $(grep -E '^ALICE-' "$1" | tr '\n' ';')"
}


SHARE=$(mktemp -d "$WORK/guest.XXXX")
VM_SHARE=$SHARE VM_TIMEOUT=900 "$VM/run-in-guest.sh" "set -e
$TEAM_GUEST" >"$WORK/guest1.log" 2>&1
grep -av '^\[ *[0-9.]*\] ' "$WORK/guest1.log" | grep -E "^(ALICE|BOB|CAROL|NOBODY|TEAM)" >&2
team_checks "$WORK/guest1.log"
stop_dfs
finish
