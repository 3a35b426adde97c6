#!/usr/bin/env bash
# operator-e2e.sh - the operator end to end on a real control plane (cluster.sh): the Helm
# chart, the samples of deploy/samples/, and the operator running with the chart's own
# ServiceAccount token (so the chart's RBAC is proven sufficient), against real `dfs` data
# planes on loopback. Ends with `operator-e2e: N passed, N failed` (exit 1 on any failure).
#
#   e2e/k8s/operator-e2e.sh            # KEEP=1 leaves the cluster and processes running
#
# Steps: cluster up; `helm install --wait` (CRDs Established, operator Deployment available
# under kwok, RBAC objects); the operator binary runs locally as system:serviceaccount:
# dittofs-system:dittofs with `--pod-address` pointing each sample MetadataStore at a local
# `dfs` (kwok pod IPs are fake); `kubectl apply -f deploy/samples/`; the operator creates the
# control-token Secrets; one `dfs` per group starts with that token; then assertions:
# conditions of every object, PV/PVC Bound, Events, finalizers, metrics, the CronJob's own
# dfsctl command line run against the data plane, Share deletion (PV and claim removed,
# export dropped), no RBAC denial in the operator's log, `helm uninstall --wait`.
# The S3 sample (`media`) is applied with its endpoint and credentials pointed at a
# SeaweedFS (`weed mini`) this script starts on loopback; a file written to /media through
# NFS (libnfs nfs-cp) must reach that bucket.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
ROOT=$(cd "$K8S_HERE/../.." && pwd)
CLUSTER=$K8S_HERE/cluster.sh
PASS=0 FAIL=0 DONE='' STARTED=''
T0=$SECONDS
in_ci() { case ${CI:-} in '' | false | 0) return 1 ;; *) return 0 ;; esac; }
log() { k8s_log operator-e2e "$@"; }
W=$(mktemp -d "${TMPDIR:-/tmp}/dittofs-operator-e2e.XXXXXX")
PIDS=()
exec 3>&1 4>&2

finish() {
  local rc=$? p
  [ -n "$DONE" ] && return; DONE=1
  trap '' INT TERM # a second signal must not cut the teardown short
  exec 1>&3 2>&4
  if [ "$rc" -ne 0 ] && [ "$FAIL" -eq 0 ]; then echo "FAIL aborted (exit $rc)"; FAIL=$((FAIL + 1)); fi
  if [ -z "${KEEP:-}" ]; then
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "$STARTED" ]; then
      if [ "$FAIL" -gt 0 ]; then K8S_KEEP_STATE=1 "$CLUSTER" down; else "$CLUSTER" down; fi
    fi
    rm -f "${PORTS_TAKEN:-}"
    if [ "$FAIL" -eq 0 ]; then rm -rf "$W"; else log "logs kept in $W${K8S_STATE_DIR:+ and $K8S_STATE_DIR/logs}"; fi
  else
    log "KEEP=1: left running (pids ${PIDS[*]}); cluster: eval \"\$(K8S_STATE_DIR=${K8S_STATE_DIR:-} $CLUSTER env)\""
  fi
  echo "TIME total $((SECONDS - T0)) s"
  echo "operator-e2e: $PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]; exit $?
}
trap finish EXIT
trap 'exit 130' INT TERM

check() { # check NAME CMD...
  local n=$1 t=$SECONDS; shift
  if "$@" >"$W/check.out" 2>&1; then echo "PASS $n ($((SECONDS - t)) s)"; PASS=$((PASS + 1))
  else echo "FAIL $n ($((SECONDS - t)) s)"; FAIL=$((FAIL + 1)); tail -n 12 "$W/check.out" | sed 's/^/     /'; fi
}
retry() { # retry SECONDS CMD...: every second until CMD succeeds or time is up
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 1; done
}
# A free port in 20000-31999, below the ephemeral range: a port the kernel handed out
# with bind(0) can be taken as the local port of an outgoing connection (kubectl, the
# operator) before the dfs that is meant to listen on it starts (it then exits at once).
PORTS_TAKEN=$(mktemp) # (a file: free_port runs in command substitutions)
free_port() {
  python3 - "$PORTS_TAKEN" <<'PY'
import random, socket, sys
taken = set(open(sys.argv[1]).read().split())
while True:
    p = random.randint(20000, 31999)
    if str(p) in taken:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    open(sys.argv[1], "a").write(f"{p}\n")
    print(p)
    break
PY
}

# ---- prerequisites: binaries, cluster ----------------------------------------------------
if [ -z "${K8S_BIN:-}" ]; then
  command -v go >/dev/null || { if in_ci; then echo "FAIL prerequisite: go"; FAIL=1; exit 1; else echo "SKIP: no go"; exit 0; fi; }
fi
k8s_prereqs || { echo "FAIL prerequisite: host commands"; FAIL=$((FAIL + 1)); exit 1; }
export K8S_BIN=${K8S_BIN:-$("$K8S_HERE/build-tools.sh")} || exit 1
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# `cargo test --no-run` over the workspace builds the three binaries with the feature set
# of the test builds (a no-op after `cargo nextest run --workspace`; a `-p` build would
# unify features differently and recompile half the dependency tree).
(cd "$ROOT" && cargo test -q --workspace --no-run >"$W/build.log" 2>&1) ||
  { tail -20 "$W/build.log"; echo "FAIL cargo build"; FAIL=$((FAIL + 1)); exit 1; }
OPERATOR=$TARGET/debug/dittofs-operator DFS=$TARGET/debug/dfs DFSCTL=$TARGET/debug/dfsctl
export K8S_STATE_DIR=$W/cluster # always a cluster of its own (never one a developer has up)
STARTED=1
"$CLUSTER" up || { echo "FAIL cluster.sh up"; FAIL=$((FAIL + 1)); exit 1; }
eval "$("$CLUSTER" env)"
cd "$ROOT" || exit 1

# ---- helm install ----------------------------------------------------------------------
check helm-lint helm lint --strict charts/dittofs
check helm-install helm install dittofs charts/dittofs -n dittofs-system --create-namespace --wait --timeout 180s \
  --set image.tag=e2e --set dataplane.image.tag=e2e
crds_established() { kubectl wait crd metadatastores.dittofs.io blockstores.dittofs.io shares.dittofs.io gcjobs.dittofs.io --for=condition=Established --timeout=60s; }
check crds-established crds_established
operator_deployment() { kubectl -n dittofs-system rollout status deploy/dittofs --timeout=60s && kubectl -n dittofs-system get sa dittofs clusterrolebinding 2>/dev/null; kubectl get clusterrole dittofs >/dev/null; }
check operator-deployment-available operator_deployment

# ---- the operator, with the chart ServiceAccount's credentials --------------------------
sa_kubeconfig() {
  local tok server ca
  tok=$(kubectl -n dittofs-system create token dittofs --duration=2h) || return 1
  server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  [ -n "$ca" ] || { ca=$W/ca.crt; kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$ca"; }
  cat >"$W/sa.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "$server", certificate-authority: "$ca"}}]
users: [{name: dittofs-sa, user: {token: "$tok"}}]
contexts: [{name: e2e, context: {cluster: e2e, user: dittofs-sa}}]
current-context: e2e
KC
  KUBECONFIG=$W/sa.kubeconfig kubectl auth whoami -o jsonpath='{.status.userInfo.username}' | grep -qx system:serviceaccount:dittofs-system:dittofs
}
check operator-credentials-are-the-chart-serviceaccount sa_kubeconfig
declare -A CTL NFS
for g in quick main tiered team; do CTL[$g]=$(free_port); NFS[$g]=$(free_port); done
METRICS=$(free_port)
KUBECONFIG=$W/sa.kubeconfig setsid "$OPERATOR" --metrics-bind "127.0.0.1:$METRICS" --call-timeout 5 \
  --default-image ghcr.io/dittofs/dittofs:e2e \
  --pod-address "default/quick=127.0.0.1:${CTL[quick]}" --pod-address "default/main=127.0.0.1:${CTL[main]}" \
  --pod-address "default/tiered=127.0.0.1:${CTL[tiered]}" --pod-address "default/team=127.0.0.1:${CTL[team]}" \
  >"$W/operator.log" 2>&1 </dev/null &
PIDS+=($!)
check operator-ready retry 30 curl -sf "http://127.0.0.1:$METRICS/readyz"

# ---- a real S3 server for the sled-s3 sample ------------------------------------------
WEED=${DITTOFS_WEED_BIN:-${DITTOFS_CACHE:-$HOME/.cache/dittofs}/bin/weed}
S3=$(free_port)
weed_flags=()
for f in master.port master.port.grpc volume.port volume.port.grpc filer.port filer.port.grpc \
  s3.port.grpc s3.port.iceberg s3.port.lance admin.port admin.port.grpc metricsPort s3.metricsPort; do
  weed_flags+=("-$f=$(free_port)")
done
mkdir -p "$W/s3"
AWS_ACCESS_KEY_ID=e2e-access AWS_SECRET_ACCESS_KEY=e2e-secret setsid "$WEED" mini -dir="$W/s3" \
  -ip=127.0.0.1 -ip.bind=127.0.0.1 -admin.ui=false -webdav=false -s3.port="$S3" "${weed_flags[@]}" \
  >"$W/weed.log" 2>&1 </dev/null &
PIDS+=($!)
check s3-server-up retry 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/$S3"
mkdir -p "$W/samples"
cp deploy/samples/*.yaml "$W/samples/"
sed -i -e "s#http://minio.storage.svc:9000#http://127.0.0.1:$S3#" -e 's#REPLACE-WITH-ACCESS-KEY-ID#e2e-access#' \
  -e 's#REPLACE-WITH-SECRET-ACCESS-KEY#e2e-secret#' "$W/samples/sled-s3.yaml"
pw() { python3 -c 'import os, sys; print(sys.argv[1] + os.urandom(12).hex())' "$1"; }
PW_ALICE=$(pw pwA-) PW_ALICE2=$(pw pwA2-) PW_BOB=$(pw pwB-)
sed -i -e "s#REPLACE-WITH-ALICE-PASSWORD#$PW_ALICE#" -e "s#REPLACE-WITH-BOB-PASSWORD#$PW_BOB#" \
  "$W/samples/users-and-permissions.yaml"

# ---- samples ---------------------------------------------------------------------------
check apply-samples kubectl apply -f "$W/samples/"
# The operator makes each group's control token; the local data planes use it.
tokens() { local g; for g in quick main tiered team; do kubectl -n default get secret "dittofs-$g-control" -o jsonpath='{.data.token}' >/dev/null || return 1; done; }
check operator-created-token-secrets retry 60 tokens
for g in quick main tiered team; do
  tok=$(kubectl -n default get secret "dittofs-$g-control" -o jsonpath='{.data.token}' | base64 -d)
  mkdir -p "$W/dfs-$g"
  DITTOFS_NFS_BIND=127.0.0.1 DITTOFS_NFS_PORT=${NFS[$g]} DITTOFS_HTTP_ENABLED=false DITTOFS_CONTROL_PORT=${CTL[$g]} \
    DITTOFS_CONTROL_TOKEN=$tok DITTOFS_METADATA_STORES='[]' DITTOFS_BLOCK_STORES='{local: []}' DITTOFS_SHARES='[]' \
    setsid "$DFS" start --data-dir "$W/dfs-$g/data" >"$W/dfs-$g.log" 2>&1 </dev/null &
  PIDS+=($!)
  printf '%s' "$tok" >"$W/dfs-$g/token"
done
cond() { # cond KIND NAME TYPE STATUS [REASON]
  local got; got=$(kubectl -n default get "$1" "$2" -o jsonpath="{.status.conditions[?(@.type==\"$3\")].status} {.status.conditions[?(@.type==\"$3\")].reason}")
  echo "$1/$2 $3: $got"
  [ "${got%% *}" = "$4" ] && { [ -z "${5:-}" ] || [ "${got#* }" = "$5" ]; }
}
check metadatastore-quick-ready retry 90 cond metadatastore quick Ready True ConfigApplied
check metadatastore-main-ready retry 90 cond metadatastore main Ready True ConfigApplied
check metadatastore-tiered-ready retry 90 cond metadatastore tiered Ready True ConfigApplied
check metadatastore-tiered-not-degraded retry 30 cond metadatastore tiered Degraded False
for b in quick-blocks main-blocks tiered-cache s3-tier; do check "blockstore-$b-ready" retry 60 cond blockstore "$b" Ready True; done
check share-quick-ready retry 60 cond share quick Ready True Exported
check share-docs-ready retry 60 cond share docs Ready True Exported
check share-media-ready retry 60 cond share media Ready True Exported
# A file written to /media through NFS is chunked and uploaded to the bucket.
media_uploaded() {
  "$DFSCTL" --server "127.0.0.1:${CTL[tiered]}" --token-file "$W/dfs-tiered/token" -o json \
    store block remote status s3-tier --scan >"$W/s3-status.json" || return 1
  python3 - "$W/s3-status.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["remotes"][0]
print(f"pending {r['pending_chunks']}, uploaded {r['uploaded_bytes']} B, bucket {r.get('scan_bytes')} B")
sys.exit(0 if r["pending_chunks"] == 0 and (r.get("scan_bytes") or 0) >= 5000000 else 1)
PY
}
media_upload() {
  head -c 5000000 /dev/urandom >"$W/media.bin"
  nfs-cp "$W/media.bin" "nfs://127.0.0.1/media/clip.bin?nfsport=${NFS[tiered]}&mountport=${NFS[tiered]}&version=3" || return 1
  retry 60 media_uploaded
}
check media-file-reaches-s3 media_upload
# ---- users, groups and permissions (sample users-and-permissions.yaml, group `team`) --
check metadatastore-team-ready retry 90 cond metadatastore team Ready True ConfigApplied
check metadatastore-team-not-degraded retry 30 cond metadatastore team Degraded False
check share-team-ready retry 60 cond share team Ready True Exported
team_ctl() { "$DFSCTL" --server "127.0.0.1:${CTL[team]}" --token-file "$W/dfs-team/token" "$@"; }
team_not_served() { ! team_ctl share list -o json | grep -q '"/team"'; }
# The users, their group and /team's grants reached the data plane, passwords set.
team_identity() {
  team_ctl -o json user list >"$W/team-users.json" && team_ctl -o json share permission list /team >"$W/team-perms.json" || return 1
  python3 - "$W/team-users.json" "$W/team-perms.json" <<'PY'
import json, sys
users = {u["name"]: u for u in json.load(open(sys.argv[1]))}
perms = json.load(open(sys.argv[2]))
got = sorted((n, u["uid"], u["groups"], u["has_password"]) for n, u in users.items())
grants = sorted(f"{g['kind']}:{g['name']}={g['level']}" for g in perms["grants"])
print(got, perms["default_level"], grants)
sys.exit(0 if got == [("alice", 5001, ["staff"], True), ("bob", 5002, [], True)]
         and perms["default_level"] == "read" and grants == ["group:staff=read-write", "user:alice=admin"] else 1)
PY
}
check team-users-and-grants-pushed retry 30 team_identity
alice_nt() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["users"]["alice"]["hashes"]["nt"])' "$W/dfs-team/data/control/identity.json"; }
nt_changed() { [ "$(alice_nt)" != "$1" ]; }
# Editing the Secret re-pushes the password: the pod's stored hash changes.
password_change() {
  local before; before=$(alice_nt) || return 1
  kubectl -n default patch secret team-passwords -p "{\"stringData\": {\"alice\": \"$PW_ALICE2\"}}" >/dev/null &&
    retry 60 nt_changed "$before"
}
check team-password-change-re-pushed password_change
# A user's key removed: the group is Degraded (SecretNotFound, naming Secret and key), /team
# is no longer served (never served less protected); the key back: /team is served again.
key_removed() {
  kubectl -n default patch secret team-passwords --type=json -p '[{"op": "remove", "path": "/data/bob"}]' || return 1
  retry 60 cond metadatastore team Degraded True SecretNotFound || return 1
  local msg; msg=$(kubectl -n default get metadatastore team -o jsonpath='{.status.conditions[?(@.type=="Degraded")].message}')
  echo "message: $msg"
  [[ $msg == *team-passwords* && $msg == *bob* ]] || return 1
  retry 60 cond share team Ready False IdentityUnavailable && retry 60 team_not_served
}
check team-missing-key-secretnotfound key_removed
key_restored() {
  kubectl -n default patch secret team-passwords -p "{\"stringData\": {\"bob\": \"$PW_BOB\"}}" &&
    retry 60 cond share team Ready True Exported && retry 60 cond metadatastore team Degraded False
}
check team-key-restored-serves-again key_restored
# No password in the operator's log, the data plane's log, statuses or Events.
no_password_shown() {
  kubectl get metadatastores,shares -A -o yaml >"$W/team-objects.yaml"
  kubectl -n default get events -o yaml >"$W/team-events.yaml"
  ! grep -lF -e "$PW_ALICE" -e "$PW_ALICE2" -e "$PW_BOB" "$W/operator.log" "$W/dfs-team.log" "$W/team-objects.yaml" \
    "$W/team-events.yaml" "$W/dfs-team/data/control/identity.json"
}
check team-no-password-shown no_password_shown
check gcjob-nightly-scheduled retry 60 cond gcjob docs-nightly-gc Ready True Scheduled
check gcjob-weekly-scheduled retry 60 cond gcjob docs-weekly-audit Ready True Scheduled
volumes() {
  kubectl get pv dittofs-default-docs dittofs-default-quick -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase} {.spec.nfs.server} {.spec.nfs.path}{"\n"}{end}'
  [ "$(kubectl get pv dittofs-default-docs -o jsonpath='{.status.phase}')" = Bound ] &&
    [ "$(kubectl -n default get pvc docs -o jsonpath='{.status.phase}')" = Bound ] &&
    [ "$(kubectl -n default get pvc quick-data -o jsonpath='{.status.phase}')" = Bound ] &&
    [ "$(kubectl get pv dittofs-default-docs -o jsonpath='{.spec.nfs.server}')" = "$(kubectl -n default get svc dittofs-main -o jsonpath='{.spec.clusterIP}')" ]
}
check pv-pvc-bound-to-service-ip volumes
served() { "$DFSCTL" --server "127.0.0.1:${CTL[main]}" --token-file "$W/dfs-main/token" share list -o json | grep -q '"/docs"'; }
check data-plane-serves-docs served
finalizer() { kubectl -n default get share docs -o jsonpath='{.metadata.finalizers}' | grep -q dittofs.io/volumes; }
check share-finalizer finalizer
events() {
  kubectl -n default get events --field-selector involvedObject.name=docs,involvedObject.kind=Share -o custom-columns=REASON:.reason,MSG:.message | tee /dev/stderr | grep -q Exported &&
    kubectl -n default get events --field-selector involvedObject.name=main,involvedObject.kind=MetadataStore -o custom-columns=REASON:.reason | grep -q ConfigApplied &&
    kubectl -n default get events --field-selector involvedObject.name=media,involvedObject.kind=Share -o custom-columns=REASON:.reason | grep -q Exported
}
check events-recorded events
metrics() { curl -sf "http://127.0.0.1:$METRICS/metrics" | tee "$W/metrics.txt" | grep -E '^dittofs_operator_reconciles_total\{controller="share"\} [1-9]' && grep -q reconcile_duration_seconds_bucket "$W/metrics.txt"; }
check metrics-exported metrics
# The nightly CronJob's own command line (kwok runs no containers): run it here.
cron_command() {
  kubectl -n default create job --from=cronjob/docs-nightly-gc manual-gc >/dev/null || return 1
  local args; args=$(kubectl -n default get job manual-gc -o jsonpath='{.spec.template.spec.containers[0].args[*]}')
  echo "dfsctl $args"
  # shellcheck disable=SC2086 # word splitting of the Job's args is intended
  DFSCTL_SERVER=127.0.0.1:${CTL[main]} DFSCTL_TOKEN_FILE=$W/dfs-main/token "$DFSCTL" $args
}
check cronjob-command-runs-gc cron_command
kubectl get metadatastores,blockstores,shares,gcjobs -A 2>&1 | tee "$W/get.txt"
# Deleting a Share (volumeDeletionPolicy Delete): PV and claim go, the export goes, the
# finalizer is released.
delete_share() {
  kubectl -n default delete share docs --wait=true --timeout=60s &&
    retry 60 bash -c "! kubectl get pv dittofs-default-docs >/dev/null 2>&1 && ! kubectl -n default get pvc docs >/dev/null 2>&1" &&
    retry 60 bash -c "! '$DFSCTL' --server 127.0.0.1:${CTL[main]} --token-file '$W/dfs-main/token' share list -o json | grep -q '\"/docs\"'"
}
check share-delete-cleans-up delete_share
no_denials() { ! grep -iE 'forbidden|is not allowed|cannot (list|watch|get|patch|create)' "$W/operator.log"; }
check rbac-sufficient no_denials
# Shares carry a finalizer: clean them up while the operator still runs.
check samples-deleted kubectl delete -f deploy/samples/ --ignore-not-found --wait=true --timeout=90s
check helm-uninstall helm uninstall dittofs -n dittofs-system --wait --timeout 120s
