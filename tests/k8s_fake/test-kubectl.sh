#!/usr/bin/env bash
# Fidelity check of k8s-fake with the real kubectl (ctest k8s_fake_kubectl): start the fake over
# HTTPS with a bearer token, create Secrets, ConfigMaps and a Job derived from the project's
# reference Job (shared/k8s/examples/good-job.json: every field the service emits) with kubectl,
# and check that get / list / logs / wait / delete give the answers a real cluster gives.
# Needs Docker with the sx-test images (tools/docker-env.sh) and kubectl on PATH.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fake="$here/k8s-fake"
py=python3
python3 -c 'import jsonschema' 2>/dev/null || py=/usr/bin/python3

command -v kubectl >/dev/null || { echo "FAIL: kubectl not found (Debian package kubernetes-client; tools/install-deps.sh)"; exit 1; }
command -v docker >/dev/null || { echo "FAIL: docker not found (tools/docker-env.sh)"; exit 1; }

run_id="$$-$RANDOM"
work=$(mktemp -d /tmp/k8s-fake-kubectl.XXXXXX)
label="sxk8s-kubectl-$run_id"
token="kubectl-test-$RANDOM$RANDOM"
ns=script-runner
pass=0
fail=0
fake_pid=

cleanup() {
  if [ -n "$fake_pid" ] && kill -0 "$fake_pid" 2>/dev/null; then
    kill -TERM "$fake_pid"
    wait "$fake_pid"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok()   { pass=$((pass + 1)); echo "ok   - $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL - $1"; shift; [ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/       /'; }
# expect DESC PATTERN TEXT: TEXT matches the extended regex PATTERN
expect() { if printf '%s\n' "$3" | grep -Eq -- "$2"; then ok "$1"; else bad "$1" "wanted /$2/ in:" "$3"; fi; }

"$fake" --listen 127.0.0.1:0 --port-file "$work/port" --kubeconfig-out "$work/kubeconfig" \
  --tls-dir "$work/tls" --token "$token" --namespace "$ns" --label-prefix "$label" \
  --service-account "$ns/script-runner" --priority-class script-runner-low \
  --node-label node-role.example.com/scripts=true --state-log "$work/state.jsonl" \
  --exit-with-parent >"$work/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 600); do   # start-up: the port file is the readiness signal (60 s at most)
  [ -s "$work/port" ] && break
  kill -0 "$fake_pid" 2>/dev/null || break
  sleep 0.1
done
if [ ! -s "$work/port" ]; then
  echo "FAIL: k8s-fake did not start"; cat "$work/fake.log"; exit 1
fi
export KUBECONFIG="$work/kubeconfig"
k() { kubectl --request-timeout=60s "$@" 2>&1; }
echo "# k8s-fake on port $(cat "$work/port"), $(kubectl version --client 2>/dev/null | head -1)"

job="script-exec-$(printf '%04x%04x' $RANDOM $RANDOM)"

# ------------------------------------------------------------ objects the Job references
printf '{"retries": 3}\n' >"$work/settings.json"
out=$(k create secret generic script-runner-secrets --from-literal=api-token=tok-123)
expect "kubectl create secret" '^secret/script-runner-secrets created$' "$out"
out=$(k create secret generic script-runner-env-secrets --from-literal=ENV_SECRET=env-s)
expect "kubectl create secret (envFrom)" 'created$' "$out"
out=$(k create configmap script-runner-config --from-literal=log.level=info --from-file=settings.json="$work/settings.json")
expect "kubectl create configmap" '^configmap/script-runner-config created$' "$out"
out=$(k create configmap script-runner-env --from-literal=MODE=test)
expect "kubectl create configmap (envFrom)" 'created$' "$out"
out=$(k create secret docker-registry registry-credentials --docker-server=127.0.0.1:5000 \
      --docker-username=sx-ci --docker-password=sx-ci-password)
expect "kubectl create secret docker-registry" 'created$' "$out"
out=$(k get secrets)
expect "kubectl get secrets: type and key count" '^registry-credentials +kubernetes.io/dockerconfigjson +1 ' "$out"

# ------------------------------------------------------------ the Job: good-job.json, runnable here
mkjob() {  # mkjob NAME SCRIPT [uppercase]
  "$py" - "$here/kubectl-job.json" "$1" "$2" "${3:-}" <<'EOF'
import json, sys
src, name, script, variant = sys.argv[1:5]
j = json.load(open(src))
j["metadata"]["name"] = name if variant != "uppercase" else name.upper()
c = j["spec"]["template"]["spec"]["containers"][0]
c["command"] = ["/bin/bash", "-c", script]
print(json.dumps(j, indent=2))
EOF
}
script='echo "token=$(cat /etc/script-runner/secrets/api-token) level=$LOG_LEVEL mode=$CFG_MODE env=$ENV_SECRET id=$SCRIPT_ID"; echo "to stderr" >&2; cat /etc/script-runner/config/settings.json; echo "user=$(id -u) cwd=$(pwd)"'
mkjob "$job" "$script" >"$work/job.json"
if "$py" "$here/validate_job.py" "$work/job.json" >"$work/validate.out"; then
  ok "the Job passes validate-job (schema, API rules, PSS restricted)"
else
  bad "the Job passes validate-job" "$(cat "$work/validate.out")"
fi

out=$(k create -f "$work/job.json")
expect "kubectl create -f job.json" "^job.batch/$job created$" "$out"
out=$(k create -f "$work/job.json")
expect "kubectl create again: AlreadyExists" "Error from server \(AlreadyExists\).*jobs.batch \"$job\" already exists" "$out"
out=$(k wait --for=condition=complete "job/$job" --timeout=90s)
expect "kubectl wait --for=condition=complete" "^job.batch/$job condition met$" "$out"

out=$(k get jobs)
expect "kubectl get jobs: header" '^NAME +STATUS +COMPLETIONS +DURATION +AGE$' "$out"
expect "kubectl get jobs: Complete 1/1" "^$job +Complete +1/1 +[0-9]+s +[0-9]+s$" "$out"
out=$(k get pods -l "job-name=$job")
expect "kubectl get pods -l job-name: header" '^NAME +READY +STATUS +RESTARTS +AGE$' "$out"
expect "kubectl get pods -l job-name: one Completed pod" "^$job-[a-z0-9]{5} +0/1 +Completed +0 +[0-9]+s$" "$out"
pod=$(k get pods -l "job-name=$job" -o 'jsonpath={.items[*].metadata.name}')
expect "exactly one pod for the Job" "^$job-[a-z0-9]{5}$" "$pod"
out=$(k get pods -o wide -l "job-name=$job")
expect "kubectl get pods -o wide: node column" "^$pod +0/1 +Completed +0 +[0-9]+s +[0-9.]+|<none> +k8s-fake-node " "$out"

k get job "$job" -o json >"$work/job-out.json"
out=$("$py" - "$work/job-out.json" "$job" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
st = j["status"]
conds = {c["type"]: c["status"] for c in st.get("conditions", [])}
tl = j["spec"]["template"]["metadata"]["labels"]
print("kind=%s name=%s succeeded=%s complete=%s failed=%s active=%s start=%s completion=%s" % (
    j["kind"], j["metadata"]["name"], st.get("succeeded"), conds.get("Complete"), st.get("failed", 0),
    st.get("active", 0), bool(st.get("startTime")), bool(st.get("completionTime"))))
print("selector=%s job-name-label=%s rv=%s" % (
    j["spec"]["selector"]["matchLabels"].get("batch.kubernetes.io/controller-uid") == j["metadata"]["uid"],
    tl.get("batch.kubernetes.io/job-name"), j["metadata"]["resourceVersion"].isdigit()))
print("annotation=%s image=%s" % (j["metadata"]["annotations"]["script-runner.example.com/requested-by"],
                                  j["spec"]["template"]["spec"]["containers"][0]["image"]))
EOF
)
expect "kubectl get job -o json: status" "^kind=Job name=$job succeeded=1 complete=True failed=0 active=0 start=True completion=True$" "$out"
expect "kubectl get job -o json: defaulted selector and pod labels" "^selector=True job-name-label=$job rv=True$" "$out"
expect "kubectl get job -o json: spec as created" '^annotation=alice@example.com image=sx-test/full:latest$' "$out"
out=$(k get pod "$pod" -o 'jsonpath={.status.phase} {.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason}')
expect "pod phase, exit code and reason" '^Succeeded 0 Completed$' "$out"

want_log='token=tok-123 level=info mode=test env=env-s id=7f3a9c2e'
out=$(k logs "$pod")
expect "kubectl logs POD: env, envFrom, secret volume" "^$want_log$" "$out"
expect "kubectl logs POD: configmap volume file" '^\{"retries": 3\}$' "$out"
expect "kubectl logs POD: stderr merged" '^to stderr$' "$out"
expect "kubectl logs POD: runAsUser and workingDir" '^user=65534 cwd=/workspace$' "$out"
out=$(k logs "job/$job")
expect "kubectl logs job/NAME" "^$want_log$" "$out"
n=$(docker ps -aq --filter "label=$label" --filter "label=$label.pod=$ns/$pod" | wc -l)
[ "$n" -eq 1 ] && ok "the pod's container carries the label prefix" || bad "the pod's container carries the label prefix ($n)"

out=$(k get events --field-selector "involvedObject.name=$pod")
expect "kubectl get events: Started" "Normal +Started +pod/$pod +Started container script" "$out"

# ------------------------------------------------------------ follow a running Job's log
fjob="$job-f"
mkjob "$fjob" 'echo one; sleep 2; echo two >&2; sleep 1; echo three' >"$work/fjob.json"
k create -f "$work/fjob.json" >/dev/null
out=$(k wait --for=condition=ready pod -l "job-name=$fjob" --timeout=60s)
expect "kubectl wait --for=condition=ready pod" 'condition met' "$out"
out=$(k logs -f "job/$fjob")
expect "kubectl logs -f streams to the end" '^one two three$' "$(printf '%s' "$out" | tr '\n' ' ')"
out=$(k get pods -l "job-name=$fjob" -o 'jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}')
expect "followed pod terminated with exit code 0" '^0$' "$out"
out=$(k logs "job/$fjob" --tail=1)
[ "$out" = three ] && ok "kubectl logs --tail=1" || bad "kubectl logs --tail=1" "$out"

# ------------------------------------------------------------ a failing Job
xjob="$job-x"
mkjob "$xjob" 'echo failing; exit 3' >"$work/xjob.json"
k create -f "$work/xjob.json" >/dev/null
out=$(k wait --for=condition=failed "job/$xjob" --timeout=60s)
expect "kubectl wait --for=condition=failed" 'condition met' "$out"
out=$(k get jobs "$xjob")
expect "kubectl get jobs: Failed 0/1" "^$xjob +Failed +0/1 " "$out"
out=$(k get pods -l "job-name=$xjob")
expect "kubectl get pods: Error" " 0/1 +Error +0 " "$out"
out=$(k get pods -l "job-name=$xjob" -o 'jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}')
expect "exit code 3 in the terminated state" '^3$' "$out"
out=$(k get job "$xjob" -o 'jsonpath={.status.conditions[?(@.type=="Failed")].reason}')
expect "Job Failed reason BackoffLimitExceeded" '^BackoffLimitExceeded$' "$out"

# ------------------------------------------------------------ what a real server refuses
mkjob "$job" true uppercase >"$work/bad.json"
out=$(k create -f "$work/bad.json")
expect "invalid Job refused (422 Invalid)" 'is invalid: metadata.name: Invalid value: "SCRIPT-EXEC-' "$out"
"$py" - "$work/job.json" >"$work/unknown.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
j["metadata"]["name"] += "-u"
j["spec"]["template"]["spec"]["containers"][0]["timeoutSeconds"] = 5
print(json.dumps(j))
EOF
out=$(k create -f "$work/unknown.json")
# kubectl >= 1.27 asks for fieldValidation=Strict (400); older ones get the server default, Warn:
# the field is dropped and named in a Warning header that kubectl prints
expect "unknown field refused or warned about" 'unknown field "spec.template.spec.containers\[0\].timeoutSeconds"' "$out"
k delete job "$job-u" --ignore-not-found >/dev/null
out=$(k get job no-such-job)
expect "kubectl get missing job: NotFound" 'Error from server \(NotFound\): jobs.batch "no-such-job" not found' "$out"
out=$(KUBECONFIG= kubectl --server "https://127.0.0.1:$(cat "$work/port")" --certificate-authority "$work/tls/ca.crt" \
      --token wrong get jobs -n "$ns" 2>&1)
expect "bad token: Unauthorized" 'error: You must be logged in to the server \(Unauthorized\)|Unauthorized' "$out"

# ------------------------------------------------------------ delete
out=$(k delete job "$job")
expect "kubectl delete job" "^job.batch \"$job\" deleted$" "$out"
out=$(k get job "$job")
expect "deleted job is gone" 'NotFound' "$out"
# (kubectl < 1.24 answers "no matching resources found" when the pod is already gone)
if out=$(k wait --for=delete "pod/$pod" --timeout=60s) || [ "$out" = "error: no matching resources found" ]; then
  ok "its pod is garbage-collected (propagationPolicy Background)"
else
  bad "its pod is garbage-collected (propagationPolicy Background)" "$out"
fi
out=$(k get pods -l "job-name=$job")
expect "kubectl get pods after delete" "^No resources found in $ns namespace.$" "$out"
k delete job "$fjob" "$xjob" >/dev/null

# ------------------------------------------------------------ shutdown removes every container
sjob="$job-s"
mkjob "$sjob" 'sleep 300' >"$work/sjob.json"
k create -f "$work/sjob.json" >/dev/null
k wait --for=condition=ready pod -l "job-name=$sjob" --timeout=60s >/dev/null
n=$(docker ps -q --filter "label=$label" | wc -l)
[ "$n" -eq 1 ] && ok "a running Job's container before shutdown" || bad "a running Job's container before shutdown ($n)"
kill -TERM "$fake_pid"; wait "$fake_pid"; rc=$?; fake_pid=
[ "$rc" -eq 0 ] && ok "k8s-fake exits 0 on SIGTERM" || bad "k8s-fake exits 0 on SIGTERM (rc $rc)" "$(tail -20 "$work/fake.log")"
n=$(docker ps -aq --filter "label=$label" | wc -l)
[ "$n" -eq 0 ] && ok "no container left after shutdown" || bad "no container left after shutdown ($n)"

if [ "$fail" -ne 0 ]; then echo "--- k8s-fake log"; tail -40 "$work/fake.log"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
