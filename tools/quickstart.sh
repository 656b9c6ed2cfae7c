#!/usr/bin/env bash
# Install dependencies, build, start the host on the embedded default
# (configs/local.yaml: native backend, local audit file), run the example
# runbook configs/examples/native-check.yaml through sxctl, stop the host.
#   --keep   leave the host running afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1
bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "built: build/bin/script-executor, build/bin/sxctl, build/plugins/*.so"

mkdir -p /tmp/script-executor
build/bin/script-executor --config configs/local.yaml 2>>/tmp/script-executor/host.log &
host=$!
trap '[ $keep -eq 1 ] || { kill -TERM $host 2>/dev/null; wait $host 2>/dev/null; }' EXIT
for _ in $(seq 100); do
  build/bin/sxctl health >/dev/null 2>&1 && break
  kill -0 $host 2>/dev/null || { echo "host failed to start:"; tail -5 /tmp/script-executor/host.log; exit 1; }
  sleep 0.1
done
echo "host running (pid $host), log /tmp/script-executor/host.log, audit /tmp/script-executor/audit.log"
build/bin/sxctl run configs/examples/native-check.yaml
echo "audit records written: $(wc -l < /tmp/script-executor/audit.log)"
if [ $keep -eq 1 ]; then
  echo "host left running: build/bin/sxctl describe | health | exec -- 'echo hi'; stop with kill $host"
fi
