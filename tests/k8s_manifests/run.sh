#!/usr/bin/env bash
# run.sh SOURCE_DIR HOST_BIN PLUGIN_DIR VALIDATE_JOB - ctest k8s_manifests.
#
# The deployment manifests of configs/k8s/ without a cluster:
#   1. `kubectl create --dry-run=client --validate=false -f configs/k8s/` loads
#      every file and maps every kind (against discovery-stub, which serves the
#      API discovery documents kubectl asks for in client dry-run: no cluster,
#      no network), and yields exactly the expected objects;
#      negative controls: an unknown kind and a YAML error are refused;
#   2. the Deployment's pod template passes validate-job (the official schema
#      of a pod template, API rules, Pod Security Standards "restricted"),
#      wrapped in a Job shell (restartPolicy Never is the only change);
#   3. the config in the ConfigMap loads in the real host with exactly its
#      plugins (`script-executor --check-config`), in-cluster configuration
#      faked by a service account directory; negative control: a typo in an
#      option is refused by name.
# Exits non-zero with a message naming the first failure.
set -euo pipefail
src=${1:?usage: run.sh SOURCE_DIR HOST_BIN PLUGIN_DIR VALIDATE_JOB}
host=${2:?}
plugins=${3:?}
validate=${4:?}
manifests="$src/configs/k8s"
tmp=$(mktemp -d /tmp/sx-k8s-manifests.XXXXXX)
stub_pid=""
cleanup() {
  if [ -n "$stub_pid" ]; then kill "$stub_pid" 2>/dev/null || true; wait "$stub_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v kubectl >/dev/null || fail "kubectl not found (Debian: kubernetes-client)"
[ -r "$validate" ] || fail "validate-job not found at $validate"

# --- 1. kubectl create --dry-run=client -------------------------------------
mkfifo "$tmp/port"
python3 "$src/tests/k8s_manifests/discovery-stub" >"$tmp/port" 2>"$tmp/stub.log" &
stub_pid=$!
read -r -t 20 port <"$tmp/port" || fail "the discovery stub did not start: $(cat "$tmp/stub.log")"
cat >"$tmp/kubeconfig" <<KUBE
apiVersion: v1
kind: Config
clusters:
- name: discovery-stub
  cluster: {server: "http://127.0.0.1:$port"}
users:
- name: nobody
  user: {}
contexts:
- name: discovery-stub
  context: {cluster: discovery-stub, user: nobody}
current-context: discovery-stub
KUBE
kc() { kubectl --kubeconfig "$tmp/kubeconfig" --cache-dir "$tmp/cache" "$@"; }

kc create --dry-run=client --validate=false -f "$manifests/" -o name >"$tmp/names" 2>"$tmp/err" ||
  fail "kubectl create --dry-run=client -f configs/k8s/: $(cat "$tmp/err")"
cat >"$tmp/expected" <<NAMES
configmap/script-executor-config
configmap/script-executor-scripts
deployment.apps/script-executor
namespace/opscontrolroom-system
networkpolicy.networking.k8s.io/script-executor
role.rbac.authorization.k8s.io/script-executor
rolebinding.rbac.authorization.k8s.io/script-executor
service/script-executor
serviceaccount/script-executor
serviceaccount/script-executor-runner
NAMES
sort "$tmp/names" | diff -u "$tmp/expected" - >&2 || fail "kubectl created other objects than expected"
kc create --dry-run=client --validate=false -f "$manifests/" -o json >"$tmp/all.json" 2>"$tmp/err" ||
  fail "kubectl -o json: $(cat "$tmp/err")"
echo "kubectl create --dry-run=client: $(wc -l <"$tmp/names") objects"

# negative controls: the same with a misspelt kind, and with broken YAML
mkdir "$tmp/bad1" "$tmp/bad2"
cp "$manifests"/*.yaml "$tmp/bad1/"
cp "$manifests"/*.yaml "$tmp/bad2/"
sed -i 's/^kind: Deployment$/kind: Deploymnt/' "$tmp/bad1/30-deployment.yaml"
grep -q 'kind: Deploymnt' "$tmp/bad1/30-deployment.yaml" || fail "negative control not set up"
if kc create --dry-run=client --validate=false -f "$tmp/bad1/" -o name >"$tmp/out" 2>"$tmp/err"; then
  fail "kubectl accepted kind Deploymnt"
fi
grep -q 'Deploymnt' "$tmp/err" || fail "kubectl's refusal does not name the kind: $(cat "$tmp/err")"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n' >"$tmp/bad2/99-broken.yaml"
if kc create --dry-run=client --validate=false -f "$tmp/bad2/" -o name >"$tmp/out" 2>"$tmp/err"; then
  fail "kubectl accepted broken YAML"
fi

# --- 2. the Deployment's pod template, as a Job, through validate-job ----
python3 - "$tmp/all.json" "$tmp/pod-template-job.json" <<'PY'
import json, sys
def objects(path):
    # kubectl -o json prints one object per file/document, concatenated (or a List)
    text, dec, pos, out = open(path).read(), json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return out
        doc, pos = dec.raw_decode(text, pos)
        out += doc["items"] if doc.get("kind") == "List" else [doc]
items = objects(sys.argv[1])
deps = [i for i in items if i.get("kind") == "Deployment"]
assert len(deps) == 1, "expected one Deployment, found %d" % len(deps)
tpl = deps[0]["spec"]["template"]
tpl["spec"]["restartPolicy"] = "Never"   # a Job's; a Deployment's is Always
job = {"apiVersion": "batch/v1", "kind": "Job",
       "metadata": {"name": "deployment-pod-template", "namespace": deps[0]["metadata"]["namespace"]},
       "spec": {"template": tpl}}
json.dump(job, open(sys.argv[2], "w"), indent=1)
PY
python3 "$validate" "$tmp/pod-template-job.json" >"$tmp/validate.out" 2>&1 ||
  fail "the Deployment's pod template fails validate-job: $(cat "$tmp/validate.out")"
grep -q '^ok: ' "$tmp/validate.out" || fail "validate-job said: $(cat "$tmp/validate.out")"
echo "validate-job (restricted) on the Deployment's pod template: ok"

# --- 3. the ConfigMap's config in the real host ---------------------------
mkdir -p "$tmp/sa" "$tmp/log" "$tmp/run"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=kubernetes -days 1 \
  -keyout "$tmp/sa/ca.key" -out "$tmp/sa/ca.crt" >/dev/null 2>&1 || fail "openssl req"
echo "not-a-real-token" >"$tmp/sa/token"
echo "opscontrolroom-system" >"$tmp/sa/namespace"
python3 - "$tmp/all.json" "$tmp" <<'PY'
import json, sys
def objects(path):
    # kubectl -o json prints one object per file/document, concatenated (or a List)
    text, dec, pos, out = open(path).read(), json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return out
        doc, pos = dec.raw_decode(text, pos)
        out += doc["items"] if doc.get("kind") == "List" else [doc]
tmp = sys.argv[2]
items = objects(sys.argv[1])
cm = [i for i in items if i.get("kind") == "ConfigMap" and i["metadata"]["name"] == "script-executor-config"][0]
cfg = cm["data"]["config.yaml"]
# where the container has volumes, the test has its temp dir
for a, b in (("/var/log/script-executor", tmp + "/log"), ("/run/script-executor", tmp + "/run")):
    cfg = cfg.replace(a, b)
marker = "in_cluster: true"
assert cfg.count(marker) == 1, "the config has no single 'in_cluster: true'"
i = cfg.index(marker)
indent = cfg[cfg.rfind("\n", 0, i) + 1:i]
cfg = cfg.replace(marker, marker + "\n" + indent + "in_cluster_dir: " + tmp + "/sa", 1)
open(tmp + "/config.yaml", "w").write(cfg)
open(tmp + "/config-typo.yaml", "w").write(cfg.replace("unschedulable_grace:", "unschedulable_grce:"))
PY
export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=6443
"$host" --config "$tmp/config.yaml" --plugin-dir "$plugins" --check-config >"$tmp/check.out" 2>&1 ||
  fail "the ConfigMap's config does not load: $(cat "$tmp/check.out")"
grep -q 'backend_k8s' "$tmp/check.out" || fail "--check-config does not list backend_k8s: $(cat "$tmp/check.out")"
echo "script-executor --check-config on the ConfigMap's config: ok"
rc=0
"$host" --config "$tmp/config-typo.yaml" --plugin-dir "$plugins" --check-config >"$tmp/typo.out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "a typo in the config was not refused (exit $rc): $(cat "$tmp/typo.out")"
grep -q "unschedulable_grce" "$tmp/typo.out" || fail "the refusal does not name the key: $(cat "$tmp/typo.out")"

# --- 4. the image and RBAC fit the config -------------------------------------
# configs/k8s/Dockerfile builds exactly the plugins the config loads (each an
# SX_PLUGIN_* option), and the Role lets the executor read the scripts
# ConfigMap (with.script_path) and nothing else of ConfigMaps.
python3 - "$tmp/all.json" "$manifests/Dockerfile" "$src/plugins/CMakeLists.txt" <<'PY' ||
import json, re, sys
text, dec, pos, items = open(sys.argv[1]).read(), json.JSONDecoder(), 0, []
while True:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos == len(text):
        break
    doc, pos = dec.raw_decode(text, pos)
    items += doc["items"] if doc.get("kind") == "List" else [doc]
cfg = [i for i in items if i.get("kind") == "ConfigMap"
       and i["metadata"]["name"] == "script-executor-config"][0]["data"]["config.yaml"]
load = re.search(r"^\s*load:\s*\[([^\]]*)\]", cfg, re.M)
assert load, "no plugins.load list in the config"
load = sorted(x.strip() for x in load.group(1).split(","))
m = re.search(r'^ARG PLUGINS="([^"]*)"', open(sys.argv[2]).read(), re.M)
assert m, "no ARG PLUGINS in configs/k8s/Dockerfile"
image = sorted(m.group(1).split())
assert image == load, "Dockerfile PLUGINS %s != the config's plugins.load %s" % (image, load)
known = [x.lower() for x in re.findall(r"^option\(SX_PLUGIN_([A-Z0-9_]+) ", open(sys.argv[3]).read(), re.M)]
assert set(image) <= set(known), "not plugins: %s" % (set(image) - set(known))
role = [i for i in items if i.get("kind") == "Role"][0]
cm_rules = [r for r in role["rules"] if "configmaps" in r.get("resources", [])]
assert [r["verbs"] for r in cm_rules] == [["get"]], "configmaps rules: %s" % cm_rules
print("Dockerfile plugins = config plugins.load = %s; Role: configmaps get only" % image)
PY
  fail "configs/k8s/Dockerfile, the config and the Role do not fit together"
echo "PASS: configs/k8s loads with kubectl (client dry-run), its pod template is restricted, its config loads"
