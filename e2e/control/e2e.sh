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

(cd "$ROOT" && cargo build --release --quiet --bin dfs --bin dfsctl) || { bad "cargo build"; finish; }
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
[ "$(cat "$DATA/control-endpoint" 2>/dev/null)" = "127.0.0.1:$CTL_PORT $PID" ] && ok "control-endpoint records the control address and dfs's pid" || bad "control-endpoint: $(cat "$DATA/control-endpoint" 2>&1)"
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

# --- secrets and warnings: a second dfs with its control API on 0.0.0.0 (loopback
# traffic only) and a token file others can read ---
CTL2=$((CTL_PORT + 10))
TOK644=$WORK/token-644
python3 -c 'import os; print(os.urandom(24).hex())' >"$TOK644"; chmod 644 "$TOK644"
DITTOFS_NFS_ENABLED=false DITTOFS_HTTP_ENABLED=false DITTOFS_CONTROL_BIND=0.0.0.0 \
DITTOFS_CONTROL_PORT=$CTL2 DITTOFS_CONTROL_TOKEN_FILE=$TOK644 DITTOFS_METADATA_STORES='[]' \
DITTOFS_BLOCK_STORES='{local: []}' DITTOFS_SHARES='[]' \
  "$DFS" start --data-dir "$WORK/data2" >"$WORK/dfs2.log" 2>&1 </dev/null &
PID2=$!
for _ in $(seq 300); do grep -q "control token: in" "$WORK/dfs2.log" && break; sleep 0.1; done
grep -q "WARN.*control token file $TOK644 is readable by group or others (mode 0644).*chmod 600 $TOK644" "$WORK/dfs2.log" \
  && ok "a 0644 token file is warned about, with the fix" || { bad "no warning for the 0644 token file"; tail -5 "$WORK/dfs2.log" >&2; }
grep -q "WARN.*control API listens on 0.0.0.0:$CTL2 without TLS.*clear text" "$WORK/dfs2.log" \
  && ok "a control API on 0.0.0.0 is warned about (plaintext)" || bad "no warning for the non-loopback control API"
[ "$(grep -cE "WARN.*(control token file|without TLS)" "$WORK/dfs2.log")" = 2 ] && ok "one WARN line each" || bad "expected 2 WARN lines: $(grep -c WARN "$WORK/dfs2.log")"
# No context (it would supply its token), only the first dfs's local token to find.
DFSCTL_CONFIG=$WORK/no-contexts.yaml XDG_DATA_HOME=$WORK/xdg ctl --server "127.0.0.1:$CTL2" status
expect 5 "the second dfs refuses a call without a token"
grep -q "missing bearer token" "$WORK/out" && ok "the first dfs's local token was not sent to the second" || bad "a token was sent to the second dfs"
grep -q "was not sent" "$WORK/out" && grep -q -- "--token-file" "$WORK/out" && ok "the refusal says how to give a token" || bad "no hint in the refusal"
ctl --server "127.0.0.1:$CTL2" --token-file "$TOK644" status; expect 0 "the second dfs with its token file"
# A configuration file that holds control.token and that others can read: one WARN that
# names the key, never the token.
CFG644=$WORK/dfs-644.yaml
CFGTOK=$(python3 -c 'import os; print(os.urandom(24).hex())')
printf 'control:\n  bind: 127.0.0.1\n  port: %s\n  token: %s\nnfs:\n  enabled: false\nhttp:\n  enabled: false\nmetadata_stores: []\nblock_stores: {local: []}\nshares: []\n' \
  $((CTL_PORT + 12)) "$CFGTOK" >"$CFG644"
chmod 644 "$CFG644"
"$DFS" start --config "$CFG644" --data-dir "$WORK/data3" >"$WORK/dfs3.log" 2>&1 </dev/null &
PID3=$!
for _ in $(seq 300); do grep -q "control token:" "$WORK/dfs3.log" && break; sleep 0.1; done
kill -TERM "$PID3"; wait "$PID3"
grep -q "WARN.*configuration file $CFG644 holds secrets (control.token).*(mode 0644).*chmod 600" "$WORK/dfs3.log" &&
  ! grep -qF "$CFGTOK" "$WORK/dfs3.log" && ok "a 0644 config file holding control.token is warned about, the token not shown" ||
  { bad "no warning for the 0644 config file (or the token shown)"; tail -5 "$WORK/dfs3.log" >&2; }

# Secrets given as files or environment variables stay out of `ps` (dfsctl waits on a
# listener that never answers while ps is read).
HANG_PORT=$((CTL_PORT + 11))
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); time.sleep(30)' "$HANG_PORT" &
HANG=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$HANG_PORT") 2>/dev/null && break; sleep 0.1; done
python3 -c 'import os; print("s3-" + os.urandom(16).hex())' >"$WORK/s3-secret"; chmod 600 "$WORK/s3-secret"
S3SECRET=$(cat "$WORK/s3-secret")
DFSCTL=$CARGO_TARGET_DIR/release/dfsctl
"$DFSCTL" --server "127.0.0.1:$HANG_PORT" --timeout 6 --token-file "$DATA/control-token" \
  store block remote add --name s3 --bucket b --secret-access-key-file "$WORK/s3-secret" >/dev/null 2>&1 &
C1=$!
DFSCTL_TOKEN=$TOKEN DFSCTL_S3_SECRET_ACCESS_KEY=$S3SECRET "$DFSCTL" --server "127.0.0.1:$HANG_PORT" --timeout 6 \
  store block remote add --name s3 --bucket b >/dev/null 2>&1 &
C2=$!
sleep 2
ps -eo pid,args >"$WORK/ps.txt"
kill "$C1" "$C2" 2>/dev/null; wait "$C1" "$C2" 2>/dev/null
kill "$HANG" 2>/dev/null; wait "$HANG" 2>/dev/null; HANG=''
[ "$(grep -cE "^ *($C1|$C2) .*dfsctl.*store block remote add" "$WORK/ps.txt")" = 2 ] \
  && ok "both dfsctl runs (secrets from files, from the environment) seen in ps" || bad "dfsctl runs not in ps (refused their flags?)"
! grep -qF "$TOKEN" "$WORK/ps.txt" && ! grep -qF "$S3SECRET" "$WORK/ps.txt" && ! grep -qF "$(cat "$TOK644")" "$WORK/ps.txt" \
  && ok "no token or S3 secret in ps -eo args (dfs and dfsctl)" || bad "a secret is visible in ps"

kill -TERM "$PID2"; wait "$PID2"; rc=$?; PID2=''
[ "$rc" = 0 ] && [ ! -e "$WORK/data2/control-endpoint" ] && ok "second dfs stopped; its control-endpoint removed" || bad "second dfs stop (exit $rc) or endpoint left"

# Bad configuration exits 2 with a message naming the key.
short_start() {
  DITTOFS_NFS_ENABLED=false DITTOFS_HTTP_ENABLED=false DITTOFS_CONTROL_PORT=$((CTL_PORT + 12)) \
    timeout 60 "$DFS" start --data-dir "$WORK/data3" >"$WORK/dfs3.log" 2>&1 </dev/null
}
DITTOFS_CONTROL_TOKEN=short short_start; rc=$?
[ "$rc" = 2 ] && grep -q "control.token.*at least 16" "$WORK/dfs3.log" && ok "a too-short control.token exits 2" || { bad "too-short token: exit $rc"; cat "$WORK/dfs3.log" >&2; }
printf 'short\n' >"$WORK/short-token"; chmod 600 "$WORK/short-token"
DITTOFS_CONTROL_TOKEN_FILE=$WORK/short-token short_start; rc=$?
[ "$rc" = 2 ] && grep -q "short-token.*at least 16" "$WORK/dfs3.log" && ok "a too-short token file exits 2" || { bad "too-short token file: exit $rc"; cat "$WORK/dfs3.log" >&2; }
DITTOFS_CONTROL_TOKEN=0123456789abcdef0123 DITTOFS_CONTROL_TOKEN_FILE=$WORK/short-token short_start; rc=$?
[ "$rc" = 2 ] && grep -q "control.token and control.token_file" "$WORK/dfs3.log" && ok "token and token_file together exit 2" || { bad "token + token_file: exit $rc"; cat "$WORK/dfs3.log" >&2; }

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
# Linux refuses a hard link to a file the caller neither owns nor may read and write
# (fs.protected_hardlinks) with EPERM before any LINK call: off, so the LINK reaches dfs.
echo 0 > /proc/sys/fs/protected_hardlinks
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

# --- guest 1: write, delete into the bin ---
SHARE=$(mktemp -d "$WORK/guest.XXXX")
MOPT="nfsvers=3,tcp,port=$NFS_PORT,mountport=$NFS_PORT,nolock"
VM_SHARE=$SHARE VM_TIMEOUT=900 "$VM/run-in-guest.sh" "set -e
mkdir -p /mnt/docs /mnt/media
mount -t nfs -o $MOPT 10.0.2.2:/docs /mnt/docs
mount -t nfs -o $MOPT 10.0.2.2:/media /mnt/media
mkdir -p /mnt/docs/reports
echo 'quarterly numbers' > /mnt/docs/reports/q1.txt
head -c 8M /dev/urandom > /mnt/docs/big.bin
echo scratch > /mnt/docs/junk.tmp
head -c 16M /dev/urandom > /mnt/media/video.bin
head -c 8M /dev/urandom > /mnt/media/old.bin
sync
(cd /mnt/docs && md5sum reports/q1.txt big.bin) > /share/docs.md5
(cd /mnt/media && md5sum video.bin) > /share/media.md5
sleep 4   # the server chunks idle files after 2 s: old.bin's chunks become garbage when deleted
rm /mnt/docs/reports/q1.txt /mnt/docs/junk.tmp /mnt/media/old.bin
test -f '/mnt/docs/#recycle/reports/q1.txt' && echo RECYCLED-OK
test ! -e '/mnt/docs/#recycle/junk.tmp' && echo EXCLUDE-OK
test ! -e '/mnt/media/#recycle' && echo NO-BIN-OK
umount /mnt/docs /mnt/media
$TEAM_GUEST
echo GUEST1-DONE" >"$WORK/guest1.log" 2>&1
for m in RECYCLED-OK EXCLUDE-OK NO-BIN-OK GUEST1-DONE; do
  grep -q "^$m" "$WORK/guest1.log" && ok "guest 1: $m" || bad "guest 1: $m"
done
grep -q GUEST1-DONE "$WORK/guest1.log" || grep -av '^\[ *[0-9.]*\] ' "$WORK/guest1.log" | tail -30 >&2
team_checks "$WORK/guest1.log"

# --- recycle bin ---
ctl trash list /docs; expect 0 "trash list"
grep -q '#recycle/reports/q1.txt' "$WORK/out" && ok "deleted file listed in the bin" || bad "deleted file not listed"
ctl trash status /docs; expect 0 "trash status"
ctl trash empty /docs; expect 2 "trash empty without --force refused"
ctl trash restore /docs '#recycle/reports/q1.txt'; expect 0 "trash restore"

# --- prompt reclaim: old.bin's chunks leave the disk without a GC ---
chunk_bytes() { find "$WORK/blocks-2/blocks" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
for _ in $(seq 100); do [ "$(chunk_bytes)" -le $((17 << 20)) ] && break; sleep 0.1; done
b=$(chunk_bytes)
[ "$b" -ge $((16 << 20)) ] && [ "$b" -le $((17 << 20)) ] \
  && ok "deleted old.bin's chunks reclaimed without GC (/media holds $b bytes: video.bin)" \
  || bad "/media's chunks hold $b bytes (expected video.bin's 16 MiB only)"

# --- GC and audit ---
# A chunk no file references (as a crash between a chunk's write and its commit leaves):
# GC's to find and delete it.
ORPHAN=$(python3 -c 'import os; print(os.urandom(32).hex())')
mkdir -p "$WORK/blocks-2/blocks/${ORPHAN:0:2}/${ORPHAN:2:2}"
head -c 65536 /dev/urandom > "$WORK/blocks-2/blocks/${ORPHAN:0:2}/${ORPHAN:2:2}/$ORPHAN"
ctl store block gc /media --dry-run --grace 0; expect 0 "gc dry run"
ctl -o json store block gc-status /media
[ "$(json "d['deleted_chunks'] == 1 and d['dry_run']")" = True ] && ok "dry run found the orphan chunk (only)" || bad "dry run: expected 1 garbage chunk"
[ -f "$WORK/blocks-2/blocks/${ORPHAN:0:2}/${ORPHAN:2:2}/$ORPHAN" ] && ok "dry run deleted nothing" || bad "dry run deleted the orphan"
ctl store block gc /media --grace 0; expect 0 "gc"
ctl -o json store block gc-status /media
[ "$(json "d['deleted_chunks'] == 1 and not d['dry_run'] and d['outcome'] == 'succeeded'")" = True ] && ok "gc deleted the orphan chunk" || bad "gc: expected 1 deleted chunk"
[ ! -e "$WORK/blocks-2/blocks/${ORPHAN:0:2}/${ORPHAN:2:2}/$ORPHAN" ] && ok "orphan chunk file gone" || bad "orphan chunk file still there"
ctl store block gc /docs --grace 0; expect 0 "gc of local-1 (trash content must survive)"
for s in /docs /media /scratch; do
  ctl blockstore audit-refcounts "$s"; expect 0 "audit $s"
done
ctl -o json blockstore audit-refcounts /docs
[ "$(json "d['delta']")" = 0 ] && ok "audit delta 0" || bad "audit delta not 0"

# --- refusals ---
ctl store metadata remove meta-a; expect 4 "removing a metadata store in use refused"
grep -q 'in use by share' "$WORK/out" && ok "clear in-use message" || bad "in-use message"
ctl store block local remove local-2; expect 4 "removing a block store in use refused"
ctl share remove /nope; expect 3 "removing an unknown share"

# --- restart ---
ctl -o yaml config get; cp "$WORK/out" "$WORK/config-before.yaml"
stop_dfs && ok "clean stop (exit 0)" || bad "dfs exit status on SIGTERM"
start_dfs || { bad "dfs did not restart"; tail -20 "$WORK/dfs.log" >&2; finish; }
ctl -o yaml config get
cmp -s "$WORK/out" "$WORK/config-before.yaml" && ok "same configuration after restart" || bad "configuration changed across restart"
ctl share list; expect 0 "share list after restart"
ctl -o json user list
cmp -s "$WORK/out" "$WORK/users.json" && ok "users unchanged across the restart" || bad "users changed across restart"

# --- guest 2: data after GC and restart ---
VM_SHARE=$SHARE VM_TIMEOUT=900 "$VM/run-in-guest.sh" "set -e
mkdir -p /mnt/docs /mnt/media
mount -t nfs -o $MOPT 10.0.2.2:/docs /mnt/docs
mount -t nfs -o $MOPT 10.0.2.2:/media /mnt/media
(cd /mnt/docs && md5sum -c /share/docs.md5) && echo DOCS-OK
(cd /mnt/media && md5sum -c /share/media.md5) && echo MEDIA-OK
test ! -e /mnt/media/old.bin && test ! -e /mnt/docs/junk.tmp && echo DELETED-OK
test ! -e '/mnt/docs/#recycle/reports/q1.txt' && echo RESTORED-OUT-OF-BIN-OK
umount /mnt/docs /mnt/media
echo GUEST2-DONE" >"$WORK/guest2.log" 2>&1
for m in DOCS-OK MEDIA-OK DELETED-OK RESTORED-OUT-OF-BIN-OK GUEST2-DONE; do
  grep -q "^$m" "$WORK/guest2.log" && ok "guest 2: $m" || bad "guest 2: $m"
done
grep -q '^MEDIA-OK' "$WORK/guest2.log" && grep -q '^DOCS-OK' "$WORK/guest2.log" || grep -av '^\[ *[0-9.]*\] ' "$WORK/guest2.log" | tail -30 >&2
ctl blockstore audit-refcounts /media; expect 0 "audit after restart"
# A chunk file lost behind the server's back (a bad restore, a foreign GC): the refcounts
# still add up, the audit must still say what is gone and which file needs it.
LOST=$(find "$WORK/blocks-2/blocks" -type f | head -1)
rm -f "$LOST"
ctl blockstore audit-refcounts /media; expect 8 "audit with a chunk file deleted by hand exits 8"
grep -q "/video.bin .*${LOST##*/} .*missing" "$WORK/out" && ok "the missing chunk is listed with /video.bin" || bad "missing chunk not listed with its file"
echo "----- end of transcript -----"
stop_dfs && ok "clean stop after the run" || bad "final stop"
[ -z "$(secrets_in "$WORK/dfs.log")" ] && grep -q 'user created' "$WORK/dfs.log" \
  && ok "the server log records user changes without a password or hash" || bad "server log: $(secrets_in "$WORK/dfs.log")"
finish
