#!/usr/bin/env bash
# cluster.sh up|down|env|status - a real Kubernetes control plane as plain processes on
# 127.0.0.1 (no Docker, no kubelet, no containers) for testing the operator:
#   etcd 3.6 + kube-apiserver, kube-controller-manager, kube-scheduler 1.34 + kwok, which fakes
#   the kubelet of one node (pods go Ready, Job pods Succeed, deleted pods go away). Pod and
#   Service IPs are fake objects: nothing listens on them, never dial them.
#
#   e2e/k8s/cluster.sh up        # build the binaries if needed (build-tools.sh), start, seed, wait
#   eval "$(e2e/k8s/cluster.sh env)"   # KUBECONFIG, PATH (kubectl, helm), caches in the state dir
#   e2e/k8s/cluster.sh status    # exit 0 when up; lists the processes
#   e2e/k8s/cluster.sh down      # stop exactly the recorded PIDs, remove the state dir
# `up` when already up and `down` when already down are no-ops (exit 0). `up` over a stale
# state dir (a process died) stops what is left of it and starts afresh.
#
# What `up` makes:
#   - a PKI of its own (EC P-256): a CA; the apiserver serving cert (IP SAN 127.0.0.1,
#     DNS localhost, kubernetes.default.svc); a front-proxy client cert; an RSA
#     service-account key pair. The CA is a real CA: rustls/kube-rs clients verify it.
#   - static-token authentication (tokens.csv) + RBAC (--authorization-mode=Node,RBAC); admin
#     kubeconfig = token of user dittofs-admin in group system:masters.
#   - one node `kwok-node-0` (annotation kwok.x-k8s.io/node=fake, no taint), Ready;
#   - StorageClass `local-static` (the default class; kubernetes.io/no-provisioner,
#     WaitForFirstConsumer) and K8S_STATIC_PVS (default 8) static `local` PVs `static-pv-N`,
#     10Gi RWO, pinned to kwok-node-0: StatefulSet volumeClaimTemplates bind to them.
#   - the `default` ServiceAccount of namespace default (pods are rejected until the
#     controller manager made a namespace's `default` SA: wait for it in new namespaces).
# Every process binds 127.0.0.1 only; ports are picked free in 20000-31999, or set with
# K8S_API_PORT, K8S_ETCD_PORT, K8S_ETCD_PEER_PORT, K8S_KCM_PORT, K8S_SCHED_PORT, K8S_KWOK_PORT.
#
# Env: K8S_STATE_DIR (default ${TMPDIR:-/tmp}/dittofs-k8s): PKI, kubeconfigs, etcd data, logs/,
#      pids ("name pid" lines), ports.env; K8S_BIN: a binary dir (default: build-tools.sh);
#      K8S_START_TIMEOUT (default 180 s per wait); K8S_KEEP_STATE=1: `down` keeps the files.
# Gotchas handled here (found with the reference recipe):
#   - standalone kwok has no built-in stages -> upstream stage files passed with -c;
#   - kwok --node-port without --server-address listens on 0.0.0.0 -> --server-address only;
#   - without node leases kwok heartbeats the node status only every ~55 s, beyond the node
#     monitor grace period (40 s): the node flaps NotReady and the node lifecycle controller
#     marks every pod NotReady for good -> --node-lease-duration-seconds=40 (lease renewals);
#   - a loopback advertise address is rejected by the endpoint reconciler ->
#     --endpoint-reconciler-type=none (the `kubernetes` Service has no endpoints);
#   - without requestheader flags KCM/scheduler complain about a missing CA bundle ->
#     front-proxy flags + a proxy client cert on the apiserver;
#   - KCM creates /usr/libexec/kubernetes/... -> --flex-volume-plugin-dir in the state dir;
#   - kubectl/helm write caches under $HOME -> KUBECACHEDIR and HELM_*_HOME in the state dir.
set -euo pipefail
set +m # no job control: a background `setsid CMD` then execs CMD in the PID that $! reports
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

D=${K8S_STATE_DIR:-${TMPDIR:-/tmp}/dittofs-k8s}
case $D in /*) ;; *) D=$PWD/$D ;; esac
D=${D%/}
MARK=$D/.dittofs-k8s # only a directory carrying this marker is ever removed
NODE=kwok-node-0
TIMEOUT=${K8S_START_TIMEOUT:-180}
log() { k8s_log cluster "$@"; }
die() { log "ERROR: $*"; exit 1; }

# ---- process records -------------------------------------------------------------------
# ours PID: a live process whose command line names the state dir (guards against PID reuse)
ours() { k8s_running "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$D/"; }
pids() { [ -f "$D/pids" ] && cat "$D/pids"; } # "name pid" lines, in start order
all_alive() { # all_alive [quiet]: every recorded process is running (else report the first dead one)
  local n p
  [ -s "$D/pids" ] || return 1
  while read -r n p; do
    ours "$p" && continue
    [ -n "${1:-}" ] || { log "$n (pid $p) is not running; log tail:"; tail -n 20 "$D/logs/$n.log" >&2 || true; }
    return 1
  done <"$D/pids"
}
stop_all() { # SIGTERM in reverse start order, SIGKILL after 10 s; only processes that are ours
  local lines i n p end stopped=()
  mapfile -t lines < <(pids || true)
  for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
    read -r n p <<<"${lines[i]}"
    ours "$p" || continue
    kill -TERM "$p" 2>/dev/null || true
    end=$((SECONDS + 10))
    while k8s_running "$p" && [ $SECONDS -lt $end ]; do sleep 0.1; done
    if k8s_running "$p"; then log "$n (pid $p) ignored SIGTERM: SIGKILL"; kill -KILL "$p" 2>/dev/null || true; fi
    wait "$p" 2>/dev/null || true # reaps it when this shell started it (a failed `up`)
    stopped+=("$n=$p")
  done
  [ ${#stopped[@]} -eq 0 ] || log "stopped ${stopped[*]}"
}
remove_state() {
  if [ -n "${K8S_KEEP_STATE:-}" ]; then log "state kept in $D"; return; fi
  [ -f "$MARK" ] && rm -rf "$D"
}

# ---- small helpers for `up` ------------------------------------------------------------
pick_port() { # pick_port VAR: VAR's env value if set (must be free), else a free port in 20000-31999
  local var=$1 p=${!1:-}
  if [ -n "$p" ]; then
    grep -qx "$p" <<<"$USED" && die "$var=$p is in use"
  else
    while :; do p=$((20000 + RANDOM % 12000)); grep -qx "$p" <<<"$USED" || break; done
  fi
  USED+=$'\n'$p
  printf -v "$var" '%s' "$p"
}
start() { # start NAME CMD...: in its own session, stdin /dev/null, output to logs/NAME.log, no inherited fds
  local n=$1; shift
  (
    for fd in /proc/"$BASHPID"/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
    exec setsid "$@" </dev/null >"$D/logs/$n.log" 2>&1
  ) &
  local pid=$! end=$((SECONDS + 10))
  echo "$n $pid" >>"$D/pids"
  # Until the subshell has exec'd, /proc/PID/cmdline is this script's, not one naming $D, and
  # `ours` would call the process dead (a CI run on a loaded machine failed on exactly that):
  # wait for the exec, or for the process to die, before anything checks liveness.
  while k8s_running "$pid" && ! ours "$pid" && [ $SECONDS -lt $end ]; do sleep 0.05; done
}
fail_up() { # a start-up step failed: say which, stop everything, keep the logs
  log "ERROR: $*"
  all_alive || true
  stop_all
  log "logs kept in $D/logs"
  exit 1
}
wait_for() { # wait_for WHAT CMD...: retry CMD every 0.5 s until it succeeds, a process died, or TIMEOUT
  local what=$1 end=$((SECONDS + TIMEOUT)); shift
  until "$@" >"$D/wait.out" 2>&1; do
    all_alive quiet || fail_up "a process died while waiting for $what"
    [ $SECONDS -lt $end ] || fail_up "$what: not within ${TIMEOUT} s; last output: $(tail -n 3 "$D/wait.out")"
    sleep 0.5
  done
}
kc() { "$BIN/kubectl" --kubeconfig="$D/admin.kubeconfig" "$@"; }
healthz() { curl -sfk --max-time 2 "https://127.0.0.1:$1/healthz"; } # KCM/scheduler: self-signed, open /healthz
readyz() { curl -sf --max-time 2 --cacert "$D/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
  "https://127.0.0.1:$K8S_API_PORT/readyz"; }

# ---- PKI ---------------------------------------------------------------------------------
make_pki() {
  local P=$D/pki
  mkdir -p "$P"
  ossl() { openssl "$@" 2>>"$D/logs/openssl.log"; }
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=dittofs-k8s-e2e-ca \
    -keyout "$P/ca.key" -out "$P/ca.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
  leaf() { # leaf NAME SUBJECT EXTENSIONS
    ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$P/$1.key" -out "$P/$1.csr"
    ossl x509 -req -in "$P/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 30 -out "$P/$1.crt" \
      -extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n%b' "$3")
  }
  leaf apiserver /CN=kube-apiserver 'extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n'
  leaf front-proxy /CN=front-proxy-client 'extendedKeyUsage=clientAuth\n'
  ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$P/sa.key"
  ossl pkey -in "$P/sa.key" -pubout -out "$P/sa.pub"
  chmod 600 "$P"/*.key
}
write_kubeconfig() { # write_kubeconfig FILE USER TOKEN
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: dittofs-e2e
  cluster:
    server: https://127.0.0.1:$K8S_API_PORT
    certificate-authority: $D/pki/ca.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: dittofs-e2e
  context:
    cluster: dittofs-e2e
    user: $2
current-context: dittofs-e2e
EOF
  chmod 600 "$1"
}

seed_manifests() { # the fake node, the default StorageClass, the static PVs
  local i
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: $NODE
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-static
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF
  for ((i = 0; i < ${K8S_STATIC_PVS:-8}; i++)); do cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: static-pv-$i
  labels: {dittofs.io/static-pv: "true"}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local-static
  local: {path: /mnt/static-pv-$i}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {key: kubernetes.io/hostname, operator: In, values: [$NODE]}
EOF
  done
}

cmd_up() {
  local t0=$SECONDS n stages=() s
  # (a subshell: the old ports/K8S_BIN must not leak into a fresh start)
  # shellcheck source=/dev/null
  if all_alive quiet && (ADMIN_TOKEN=$(cat "$D/admin.token") && . "$D/ports.env" && readyz) >/dev/null 2>&1; then
    log "already up ($D)"; return 0
  fi
  if [ -e "$D" ]; then
    if [ -f "$MARK" ]; then
      log "stale state in $D: stopping what is left of it"; stop_all; rm -rf "$D"
    elif [ -n "$(ls -A "$D")" ]; then
      die "$D exists, is not empty and is not a cluster state dir: refusing to use it"
    fi
  fi
  k8s_prereqs || die "missing prerequisites"
  BIN=${K8S_BIN:-$("$K8S_HERE/build-tools.sh")} || die "build-tools.sh failed"
  for n in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl helm; do
    [ -x "$BIN/$n" ] || die "$BIN/$n missing"
  done
  for s in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    [ -f "$BIN/kwok-stages/$s.yaml" ] || die "kwok stage file $BIN/kwok-stages/$s.yaml missing"
    stages+=(-c "$BIN/kwok-stages/$s.yaml")
  done

  mkdir -p "$D/logs" "$D/kcache" "$D/helm"
  chmod 700 "$D"
  touch "$MARK"
  USED=$(ss -Htan | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
  for n in K8S_ETCD_PORT K8S_ETCD_PEER_PORT K8S_API_PORT K8S_KCM_PORT K8S_SCHED_PORT K8S_KWOK_PORT; do pick_port "$n"; done
  for n in K8S_ETCD_PORT K8S_ETCD_PEER_PORT K8S_API_PORT K8S_KCM_PORT K8S_SCHED_PORT K8S_KWOK_PORT; do
    echo "$n=${!n}"; done >"$D/ports.env"
  echo "K8S_BIN=$BIN" >>"$D/ports.env"

  make_pki || die "PKI generation failed (see $D/logs/openssl.log)"
  ADMIN_TOKEN=$(openssl rand -hex 24)
  local kcm_tok sched_tok kwok_tok
  kcm_tok=$(openssl rand -hex 24) sched_tok=$(openssl rand -hex 24) kwok_tok=$(openssl rand -hex 24)
  printf '%s\n' "$ADMIN_TOKEN,dittofs-admin,uid-admin,\"system:masters\"" \
    "$kcm_tok,system:kube-controller-manager,uid-kcm" "$sched_tok,system:kube-scheduler,uid-sched" \
    "$kwok_tok,kwok,uid-kwok,\"system:masters\"" >"$D/pki/tokens.csv"
  echo "$ADMIN_TOKEN" >"$D/admin.token"; chmod 600 "$D/pki/tokens.csv" "$D/admin.token"
  write_kubeconfig "$D/admin.kubeconfig" dittofs-admin "$ADMIN_TOKEN"
  write_kubeconfig "$D/kcm.kubeconfig" system:kube-controller-manager "$kcm_tok"
  write_kubeconfig "$D/sched.kubeconfig" system:kube-scheduler "$sched_tok"
  write_kubeconfig "$D/kwok.kubeconfig" kwok "$kwok_tok"
  log "PKI and kubeconfigs in $((SECONDS - t0)) s; ports $(tr '\n' ' ' <"$D/ports.env" | sed 's/K8S_BIN=.*//')"

  local P=$D/pki ep=http://127.0.0.1:$K8S_ETCD_PORT pp=http://127.0.0.1:$K8S_ETCD_PEER_PORT
  start etcd "$BIN/etcd" --name=e2e --data-dir="$D/etcd" --unsafe-no-fsync --log-level=warn \
    --listen-client-urls="$ep" --advertise-client-urls="$ep" \
    --listen-peer-urls="$pp" --initial-advertise-peer-urls="$pp" --initial-cluster="e2e=$pp"
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers="$ep" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$K8S_API_PORT" \
    --endpoint-reconciler-type=none --profiling=false --allow-privileged=true \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
    --token-auth-file="$P/tokens.csv" --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --requestheader-client-ca-file="$P/ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$P/front-proxy.crt" --proxy-client-key-file="$P/front-proxy.key"
  wait_for "kube-apiserver /readyz" readyz
  log "kube-apiserver ready after $((SECONDS - t0)) s"
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$D/kcm.kubeconfig" \
    --authentication-kubeconfig="$D/kcm.kubeconfig" --authorization-kubeconfig="$D/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$K8S_KCM_PORT" --leader-elect=false --controllers='*' \
    --profiling=false --use-service-account-credentials=true --service-account-private-key-file="$P/sa.key" \
    --root-ca-file="$P/ca.crt" --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
    --service-cluster-ip-range=10.96.0.0/16 --flex-volume-plugin-dir="$D/flexvolume"
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$D/sched.kubeconfig" \
    --authentication-kubeconfig="$D/sched.kubeconfig" --authorization-kubeconfig="$D/sched.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$K8S_SCHED_PORT" --leader-elect=false --profiling=false
  start kwok "$BIN/kwok" --kubeconfig="$D/kwok.kubeconfig" "${stages[@]}" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake --node-ip=127.0.0.1 \
    --cidr=10.244.0.0/16 --server-address="127.0.0.1:$K8S_KWOK_PORT" --node-lease-duration-seconds=40
  wait_for "kube-controller-manager /healthz" healthz "$K8S_KCM_PORT"
  wait_for "kube-scheduler /healthz" healthz "$K8S_SCHED_PORT"

  export KUBECACHEDIR=$D/kcache
  seed_manifests >"$D/seed.yaml"
  wait_for "seeding node, StorageClass, PVs" kc apply -f "$D/seed.yaml"
  wait_for "node $NODE Ready" kc wait "node/$NODE" --for=condition=Ready --timeout=2s
  wait_for "ServiceAccount default/default" kc -n default get serviceaccount default
  log "pids: $(awk '{printf "%s=%s ", $1, $2}' "$D/pids")"
  log "cluster up in $((SECONDS - t0)) s: eval \"\$($0 env)\"  (state: $D)"
}

cmd_down() {
  if [ ! -e "$D" ]; then log "already down ($D does not exist)"; return 0; fi
  [ -f "$MARK" ] || die "$D is not a cluster state dir (no $MARK): not touching it"
  stop_all
  remove_state
  log "down"
}

cmd_env() {
  all_alive quiet || die "no cluster running with state dir $D (run: $0 up)"
  # shellcheck source=/dev/null
  . "$D/ports.env"
  printf 'export %s=%q\n' KUBECONFIG "$D/admin.kubeconfig" KUBECACHEDIR "$D/kcache" \
    HELM_CACHE_HOME "$D/helm/cache" HELM_CONFIG_HOME "$D/helm/config" HELM_DATA_HOME "$D/helm/data" \
    K8S_STATE_DIR "$D" K8S_BIN "$K8S_BIN" K8S_API_SERVER "https://127.0.0.1:$K8S_API_PORT"
  # shellcheck disable=SC2016 # $PATH is for the shell that evals this
  printf 'export PATH=%q:"$PATH"\n' "$K8S_BIN"
}

cmd_status() {
  if all_alive quiet; then echo "up: $D"; pids; else echo "down: $D"; return 1; fi
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|env|status   (state dir: K8S_STATE_DIR, default \${TMPDIR:-/tmp}/dittofs-k8s)" >&2; exit 2 ;;
esac
