#!/usr/bin/env bash
# k8s-contract.sh - run the backend contract suite on exec.kubernetes against
# the fake Kubernetes API server (tests/k8s_fake): start the fake, write the
# executor entry with its kubeconfig, run the suite with the pod leftover
# hook, stop the fake (it removes its containers).  ctest contract_kubernetes.
#
# usage: tests/contract/k8s-contract.sh SUITE [suite options...]
#   e.g. tests/contract/k8s-contract.sh build/bin/contract_suite --plugin backend_k8s \
#            --kind exec.kubernetes --dialect sh --interpreter /bin/sh
# Needs the Docker engine and sx-test/minimal:latest (tools/docker-env.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suite=${1:?usage: k8s-contract.sh SUITE [options]}
shift
work=$(mktemp -d /tmp/sx-k8s-contract-XXXXXX)
fake_pid=
cleanup() {
  if [ -n "$fake_pid" ]; then
    kill -TERM "$fake_pid" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$fake_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
"$here/../k8s_fake/k8s-fake" --listen 127.0.0.1:0 --port-file "$work/port" \
  --kubeconfig-out "$work/kubeconfig" --namespace sx-test --label-prefix "sxk8s-contract-$$" \
  --exit-with-parent >"$work/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 1 600); do
  [ -s "$work/port" ] && break
  kill -0 "$fake_pid" 2>/dev/null || { echo "k8s-contract: the fake exited:" >&2; cat "$work/fake.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/port" ] || { echo "k8s-contract: the fake did not start" >&2; exit 1; }
export K8S_FAKE_URL="http://127.0.0.1:$(cat "$work/port")"
export K8S_FAKE_NS=sx-test
sed -e "s|@KUBECONFIG@|$work/kubeconfig|" -e "s|@HOSTID@|contract-k8s-$$|" \
  "$here/kubernetes.yaml.in" >"$work/executor.yaml"
rc=0
"$suite" "$@" --executor-yaml "$work/executor.yaml" \
  --leftover-cmd "sh $here/leftovers-k8s.sh %s" || rc=$?
exit $rc
