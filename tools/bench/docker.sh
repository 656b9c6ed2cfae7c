#!/bin/sh
# docker.sh - a container through the whole path (nng -> host -> backend_docker
# -> Engine API) against the docker CLI running the same container with the
# same hardening, measured in the same run.
#
# usage: tools/bench/docker.sh [BUILD_DIR] [--count N] [--concurrency C]
#
# Needs the engine and the sx-test/minimal image (tools/docker-env.sh).
# Both sides run `sh -c true`-equivalent work in sx-test/minimal:
#   baseline: docker run --rm --init --user 65534:65534 --read-only
#             --cap-drop ALL --security-opt no-new-privileges --pids-limit 1024
#             --tmpfs /tmp:... --tmpfs /workspace:... -w /workspace IMAGE sh -c true
#   host:     execute {"inline_script": "true", "interpreter": "/bin/sh"}
# Two passes, each with its own host and its own baseline measurement:
#   archive   executor box  (script_delivery: archive, the default)
#   bind      executor fast (script_delivery: bind)
# Each prints both latencies, their ratio (goal: below 1, faster than the CLI)
# and containers/second at concurrency 4 (override with --concurrency).
# Exits non-zero when either pass fails.
set -eu
REPO=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd)
BUILD=./build
case "${1-}" in
    ""|-*) ;;
    *) BUILD=$1; shift ;;
esac
IMAGE=sx-test/minimal:latest
docker image inspect "$IMAGE" >/dev/null 2>&1 || {
    echo "docker.sh: $IMAGE missing: run bash tools/docker-env.sh" >&2; exit 1; }
BASELINE="docker run --rm --init --user 65534:65534 --read-only --cap-drop ALL \
--security-opt no-new-privileges --pids-limit 1024 \
--tmpfs /tmp:rw,noexec,nosuid,nodev,size=64m,mode=1777 \
--tmpfs /workspace:rw,nosuid,nodev,size=64m,mode=1777 -w /workspace $IMAGE sh -c true"

# pass DELIVERY EXECUTOR [sx_bench options...]
pass() {
    delivery=$1
    executor=$2
    shift 2
    echo "=== script_delivery: $delivery (executor $executor) ==="
    SX_BENCH_CONFIG=$REPO/tools/bench/docker-bench.yaml sh "$REPO/tools/bench/run.sh" "$BUILD" \
        --baseline "$BASELINE" --warmup 3 --count 30 --concurrency 4 --executor "$executor" "$@"
}

rc=0
pass archive box "$@" || rc=$?
echo
pass bind fast "$@" || rc=$?
exit "$rc"
