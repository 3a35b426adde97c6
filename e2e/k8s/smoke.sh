#!/usr/bin/env bash
# smoke.sh - proves the e2e Kubernetes test cluster (cluster.sh) works, then optionally runs
# more tests against it. Brings a cluster up in a private state dir, runs the checks, tears
# it down on exit (trap), and ends with the line `k8s-smoke: N passed, N failed` (exit 1 on
# any failure).
#
#   e2e/k8s/smoke.sh
#   HOOK='cargo nextest run -p dittofs-operator --run-ignored ignored-only' e2e/k8s/smoke.sh
#   KEEP=1 e2e/k8s/smoke.sh      # leave the cluster running afterwards (prints how to use/stop it)
#
# HOOK runs as one more check, after the built-in ones, with the cluster's environment
# exported (KUBECONFIG, PATH with kubectl/helm, K8S_API_SERVER, ...; see `cluster.sh env`);
# its output is shown as it runs.
#
# Checks:
#   pki      the apiserver's cert verifies against the cluster CA with IP SAN 127.0.0.1, over a
#            real TLS connection, and /version reports the pinned v1.34.x (stamped, not v0.0.0)
#   auth     a wrong bearer token gets 401; RBAC: a ServiceAccount may not list secrets, the
#            admin may do anything
#   crd      a CRD (apiextensions v1, status subresource) becomes Established; a CR is
#            created and its /status subresource takes a merge patch
#   sts      a StatefulSet (2 replicas, volumeClaimTemplates, default StorageClass) goes 2/2
#            Ready with both PVCs Bound to the seeded static PVs (the scheduler binds them)
#   job      `kubectl create job --from=cronjob/...`: the Job is Complete, its pod Succeeded (kwok)
#   nfs      a static NFS PV (server 127.0.0.1: an object only, never mounted) + a PVC
#            pre-bound by volumeName are both Bound
#   gc       deleting the StatefulSet garbage-collects its pods
#   helm     `helm install --wait` of a tiny chart (kubeVersion >=1.34 constraint, so helm
#            must see the real server version; one Deployment) then `helm uninstall --wait`
#   cronjob  the CronJob controller schedules a Job itself ("* * * * *", up to ~60 s; created
#            first, checked late) and it completes
#   loopback every TCP/UDP socket of the cluster's processes is on 127.0.0.1 (listening ones
#            included)
#   hook     HOOK, when set
# Prerequisites (go, openssl, curl, ss, setsid, flock): the Debian ones are apt-get installed
# when missing (as root). A prerequisite that is still missing is a SKIP on a developer
# machine and a FAIL in CI (CI=true), never a skip there.
# Env: KEEP=1; K8S_STATE_DIR (default: a fresh mktemp dir; a cluster that is already up there
# is used and left running); K8S_BIN (prebuilt binaries; default: build-tools.sh).
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
CLUSTER=$K8S_HERE/cluster.sh
PASS=0 FAIL=0 SKIP=0 STARTED='' DONE=''
T0=$(date +%s.%N)
since() { echo "$(date +%s.%N) $1" | awk '{printf "%.1f", $1 - $2}'; }
log() { k8s_log k8s-smoke "$@"; }
in_ci() { case ${CI:-} in '' | false | 0) return 1 ;; *) return 0 ;; esac; }
W='' # check outputs, made once the prerequisites are there
exec 3>&1 4>&2 # the real stdout/stderr, for the exit trap (it can fire while a check redirects)

finish() {
  local rc=$?
  [ -n "$DONE" ] && return; DONE=1
  trap '' INT TERM # a second signal must not cut the teardown short
  exec 1>&3 2>&4
  if [ "$rc" -ne 0 ] && [ "$FAIL" -eq 0 ] && [ "$SKIP" -eq 0 ]; then echo "FAIL aborted (exit $rc)"; FAIL=$((FAIL + 1)); fi
  if [ -n "$STARTED" ]; then
    if [ -n "${KEEP:-}" ]; then
      log "KEEP=1: cluster left running; use it with: eval \"\$(K8S_STATE_DIR=$K8S_STATE_DIR $CLUSTER env)\""
      log "stop it with: K8S_STATE_DIR=$K8S_STATE_DIR $CLUSTER down"
    elif [ "$FAIL" -gt 0 ]; then
      K8S_KEEP_STATE=1 "$CLUSTER" down; log "cluster logs kept in $K8S_STATE_DIR/logs, check output in $W"
    else
      "$CLUSTER" down
    fi
  fi
  if [ -n "$W" ] && [ "$FAIL" -eq 0 ]; then rm -rf "$W"; fi
  echo "TIME total $(since "$T0") s"
  if [ "$SKIP" -gt 0 ]; then echo "k8s-smoke: $PASS passed, $FAIL failed, $SKIP skipped"
  else echo "k8s-smoke: $PASS passed, $FAIL failed"; fi
  [ "$FAIL" -eq 0 ]; exit $?
}
trap finish EXIT
trap 'exit 130' INT TERM

# check NAME CMD...: PASS/FAIL line with the time taken; on failure the tail of the output
check() {
  local n=$1 t; t=$(date +%s.%N); shift
  rm -f "$W/retry.out"
  if "$@" >"$W/check.out" 2>&1; then echo "PASS $n ($(since "$t") s)"; PASS=$((PASS + 1))
  else echo "FAIL $n ($(since "$t") s)"; FAIL=$((FAIL + 1))
    tail -n 8 "$W/check.out" "$W/retry.out" 2>/dev/null | sed 's/^/     /'
  fi
}
# retry SECONDS CMD...: every second until CMD succeeds, the cluster lost a process, or time is up
retry() {
  local end=$((SECONDS + $1)); shift
  until "$@" >"$W/retry.out" 2>&1; do
    "$CLUSTER" status >/dev/null || { echo "the cluster lost a process"; return 1; }
    [ $SECONDS -lt $end ] || return 1
    sleep 1
  done
}
missing() { # a prerequisite is missing: FAIL in CI, SKIP elsewhere; either way stop here
  if in_ci; then echo "FAIL prerequisite: $*"; FAIL=$((FAIL + 1))
  else echo "SKIP: $* (not CI: skipped)"; SKIP=$((SKIP + 1)); fi
  exit 0
}

# ---- prerequisites, binaries, cluster ------------------------------------------------------
if [ -z "${K8S_BIN:-}" ]; then
  command -v go >/dev/null || missing "go (>= 1.26) is needed to build the cluster binaries"
fi
k8s_prereqs || missing "host commands for the cluster (see above)"
if [ -z "${K8S_BIN:-}" ]; then
  t=$(date +%s.%N)
  K8S_BIN=$("$K8S_HERE/build-tools.sh") || { echo "FAIL build-tools.sh"; FAIL=$((FAIL + 1)); exit 1; }
  echo "TIME build-tools $(since "$t") s ($K8S_BIN)"
fi
export K8S_BIN
W=$(mktemp -d "${TMPDIR:-/tmp}/dittofs-k8s-smoke-work.XXXXXX")
export K8S_STATE_DIR=${K8S_STATE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dittofs-k8s-smoke.XXXXXX")}
if "$CLUSTER" status >/dev/null 2>&1; then
  log "using the cluster already up in $K8S_STATE_DIR (left running)"
else
  STARTED=1 t=$(date +%s.%N)
  "$CLUSTER" up || { echo "FAIL cluster.sh up"; FAIL=$((FAIL + 1)); exit 1; }
  echo "TIME cluster up $(since "$t") s"
fi
eval "$("$CLUSTER" env)"
# shellcheck source=/dev/null
. "$K8S_STATE_DIR/ports.env"
T1=$(date +%s.%N)
k() { kubectl "$@"; }
kn() { kubectl -n smoke "$@"; }

k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: smoke}
EOF
retry 60 kn get serviceaccount default || { echo "FAIL no default ServiceAccount in namespace smoke"; FAIL=$((FAIL + 1)); exit 1; }

# cronjob (part 1) first, so that the CronJob controller's own Job runs while the rest goes on
kn apply -f - >/dev/null <<EOF
apiVersion: batch/v1
kind: CronJob
metadata: {name: gc}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers: [{name: gc, image: registry.invalid/gc:0}]
EOF

# ---- pki ----
pki_check() {
  local P=$K8S_STATE_DIR/pki v
  openssl verify -CAfile "$P/ca.crt" -purpose sslserver "$P/apiserver.crt" &&
    openssl x509 -in "$P/apiserver.crt" -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1' &&
    v=$(curl -sSf --cacert "$P/ca.crt" "$K8S_API_SERVER/version") && echo "$v" &&
    grep -Eq '"gitVersion": "v1\.34\.[0-9]+"' <<<"$v"
}
check "pki: apiserver cert (IP SAN 127.0.0.1) verifies against the CA over TLS; /version v1.34.x" pki_check

# ---- auth ----
auth_check() {
  local out
  out=$(k --token=not-a-valid-token get namespaces 2>&1) && { echo "a bad token was accepted"; return 1; }
  echo "$out"; grep -q Unauthorized <<<"$out" || return 1
  [ "$(kn auth can-i list secrets --as=system:serviceaccount:smoke:default)" = no ] &&
    [ "$(k auth can-i '*' '*' --all-namespaces)" = yes ]
}
check "auth: bad token -> Unauthorized; RBAC denies a ServiceAccount, allows the admin" auth_check

# ---- crd ----
k apply -f - >/dev/null <<EOF
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.smoke.example.com}
spec:
  group: smoke.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
          status: {type: object, properties: {phase: {type: string}}}
EOF
cat >"$W/w1.yaml" <<EOF
apiVersion: smoke.example.com/v1alpha1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
EOF
crd_check() {
  retry 30 k wait crd/widgets.smoke.example.com --for=condition=Established --timeout=1s &&
    retry 15 kn apply -f "$W/w1.yaml" &&
    kn patch widget w1 --subresource=status --type=merge -p '{"status":{"phase":"Ready"}}' &&
    [ "$(kn get widget w1 -o jsonpath='{.status.phase}/{.spec.size}')" = Ready/3 ] &&
    # a patch of the main resource must not touch status (the subresource is enabled)
    kn patch widget w1 --type=merge -p '{"status":{"phase":"Ignored"},"spec":{"size":4}}' &&
    [ "$(kn get widget w1 -o jsonpath='{.status.phase}/{.spec.size}')" = Ready/4 ]
}
check "crd: Established; CR created; /status patched (and ignored on the main resource)" crd_check

# ---- sts ----
kn apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 2049}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 2
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: registry.invalid/web:0
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
EOF
sts_ready() {
  [ "$(kn get sts web -o jsonpath='{.status.readyReplicas}')" = 2 ] &&
    kn wait pod/web-0 pod/web-1 --for=condition=Ready --timeout=1s &&
    kn wait pvc/data-web-0 pvc/data-web-1 --for=jsonpath='{.status.phase}'=Bound --timeout=1s &&
    kn get pvc data-web-0 data-web-1 -o jsonpath='{.items[*].spec.volumeName}' | grep -Eq '^static-pv-[0-9]+ static-pv-[0-9]+$'
}
check "sts: StatefulSet 2/2 Ready, volumeClaimTemplate PVCs Bound to seeded static PVs" retry 120 sts_ready

# ---- job ----
kn create job gc-manual --from=cronjob/gc >/dev/null
job_done() {
  kn wait job/gc-manual --for=condition=Complete --timeout=1s &&
    [ "$(kn get pods -l job-name=gc-manual -o jsonpath='{.items[*].status.phase}')" = Succeeded ]
}
check "job: Job from the CronJob (kubectl create job --from) Complete, pod Succeeded" retry 90 job_done

# ---- nfs ----
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata: {name: smoke-nfs-pv}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  mountOptions: [nfsvers=4.1]
  nfs: {server: 127.0.0.1, path: /export}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: nfs-pvc, namespace: smoke}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: ""
  volumeName: smoke-nfs-pv
  resources: {requests: {storage: 10Gi}}
EOF
nfs_bound() {
  k wait pv/smoke-nfs-pv --for=jsonpath='{.status.phase}'=Bound --timeout=1s &&
    kn wait pvc/nfs-pvc --for=jsonpath='{.status.phase}'=Bound --timeout=1s
}
check "nfs: static NFS PV + PVC (volumeName) Bound" retry 60 nfs_bound

# ---- gc ----
no_web_pods() { [ -z "$(kn get pods -l app=web -o name)" ]; }
gc_check() { ! no_web_pods && kn delete sts web --wait=true && retry 60 no_web_pods; }
check "gc: StatefulSet deleted -> its pods garbage-collected" gc_check

# ---- helm ----
mkdir -p "$W/chart/templates"
cat >"$W/chart/Chart.yaml" <<EOF
apiVersion: v2
name: smokechart
version: 0.1.0
kubeVersion: ">=1.34.0-0"
EOF
cat >"$W/chart/templates/deployment.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-smokechart
  labels: {app: {{ .Release.Name }}-smokechart}
spec:
  replicas: 1
  selector: {matchLabels: {app: {{ .Release.Name }}-smokechart}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}-smokechart}}
    spec:
      containers: [{name: c, image: registry.invalid/smoke:0}]
EOF
helm_cycle() {
  helm install smoke "$W/chart" -n smoke --wait --timeout 90s &&
    [ "$(kn get deploy smoke-smokechart -o jsonpath='{.status.readyReplicas}')" = 1 ] &&
    helm uninstall smoke -n smoke --wait --timeout 60s &&
    ! kn get deploy smoke-smokechart 2>/dev/null && [ -z "$(helm list -n smoke -q)" ]
}
check "helm: install --wait (kubeVersion >=1.34, 1 Deployment Ready) + uninstall --wait" helm_cycle

# ---- cronjob (part 2): the CronJob controller's own Job, named gc-<minutes> ----
cron_done() {
  kn get jobs -o jsonpath='{range .items[?(@.status.succeeded==1)]}{.metadata.name}{"\n"}{end}' |
    grep -E '^gc-[0-9]+$'
}
check "cronjob: CronJob-scheduled Job (\"* * * * *\") Complete" retry 90 cron_done

# ---- loopback: local address loopback; peer loopback, or a wildcard for listening sockets ----
mapfile -t CPIDS < <(awk '{print $2}' "$K8S_STATE_DIR/pids")
sockets() { ss -Htuanp | grep -E "pid=($(IFS='|'; echo "${CPIDS[*]}"))," | awk '{print $1, $2, $5, $6}'; }
only_loopback() {
  local s; s=$(sockets); echo "$s"
  [ "$(grep -c LISTEN <<<"$s")" -ge 6 ] || { echo "expected >= 6 listening sockets"; return 1; }
  awk -v lo='^(127[.]0[.]0[.]1|[[]::ffff:127[.]0[.]0[.]1[]]|[[]::1[]]):' \
    '$3 !~ lo || ($4 !~ lo && $4 !~ /:[*]$/) {print "NOT LOOPBACK: " $0; bad++} END {exit bad > 0}' <<<"$s"
}
check "loopback: every socket of the ${#CPIDS[@]} cluster processes is on 127.0.0.1 ($(sockets | wc -l) now)" only_loopback

# ---- hook ----
if [ -n "${HOOK:-}" ]; then
  log "HOOK: $HOOK"
  t=$(date +%s.%N)
  if (cd "$K8S_HERE/../.." && bash -c "$HOOK") >&3 2>&4; then echo "PASS hook: $HOOK ($(since "$t") s)"; PASS=$((PASS + 1))
  else echo "FAIL hook: $HOOK ($(since "$t") s)"; FAIL=$((FAIL + 1)); fi
fi

if [ "$FAIL" -gt 0 ]; then k get nodes,pods,pvc,jobs -A -o wide; k get pv; fi
echo "TIME checks $(since "$T1") s"
