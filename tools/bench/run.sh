#!/bin/sh
# run.sh - benchmark script-executor against a bare posix_spawn.
#
# usage: tools/bench/run.sh [BUILD_DIR] [sx_bench options...]
#
# Builds nothing.  Takes the build directory (default ./build), starts
# BUILD_DIR/bin/script-executor with a copy of configs/local.yaml whose
# /tmp/script-executor paths (sockets, audit log) point into a private
# temporary directory, waits for its control socket, runs BUILD_DIR/bin/sx_bench
# against it, stops the host with SIGTERM and exits with sx_bench's status.
# Relative "build/plugins" paths in the config are pointed at BUILD_DIR/plugins;
# the host runs from the repository root.
#
# Environment: SX_BENCH_CONFIG  config to copy (default configs/local.yaml)
#              SX_BENCH_WAIT    seconds to wait for the host (default 15)
#
# Example: tools/bench/run.sh build --count 1000 --concurrency 16
set -eu

REPO=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd)

BUILD=./build
case "${1-}" in
    -h|--help)
        sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
        exit 0 ;;
    ""|-*) ;;
    *) BUILD=$1; shift ;;
esac

die() {
    echo "run.sh: $*" >&2
    exit 1
}

[ -d "$BUILD" ] || die "build directory '$BUILD' not found (build first: cmake -S . -B build && cmake --build build)"
BUILD=$(CDPATH= cd -- "$BUILD" && pwd)
HOST_BIN=$BUILD/bin/script-executor
BENCH_BIN=$BUILD/bin/sx_bench
CONFIG=${SX_BENCH_CONFIG:-$REPO/configs/local.yaml}
WAIT=${SX_BENCH_WAIT:-15}
[ -x "$HOST_BIN" ] || die "$HOST_BIN not found or not executable"
[ -x "$BENCH_BIN" ] || die "$BENCH_BIN not found or not executable"
[ -r "$CONFIG" ] || die "config $CONFIG not readable"

# Short path: ipc socket paths are limited to about 100 bytes.
TMP=$(mktemp -d /tmp/sxbench.XXXXXX)
HOST_PID=
HOST_LOG=$TMP/host.log

stop_host() {
    [ -n "$HOST_PID" ] || return 0
    if kill -0 "$HOST_PID" 2>/dev/null; then
        kill -TERM "$HOST_PID" 2>/dev/null || true
        i=0
        while kill -0 "$HOST_PID" 2>/dev/null && [ "$i" -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        if kill -0 "$HOST_PID" 2>/dev/null; then
            echo "run.sh: host did not stop within 10s of SIGTERM; killing it" >&2
            kill -KILL "$HOST_PID" 2>/dev/null || true
        fi
    fi
    wait "$HOST_PID" 2>/dev/null && HOST_STATUS=0 || HOST_STATUS=$?
    HOST_PID=
}

cleanup() {
    stop_host
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_host_log() {
    echo "run.sh: host log ($HOST_LOG):" >&2
    sed 's/^/  | /' "$HOST_LOG" >&2 || true
}

# The private config: every /tmp/script-executor path (ctl.sock,
# events.sock, audit.log, ...) moves into $TMP.
sed -e "s#/tmp/script-executor#$TMP#g" \
    -e "s#\\([\"' ]\\)build/plugins#\\1$BUILD/plugins#g" \
    "$CONFIG" > "$TMP/config.yaml"

# The control URL the host will listen on (server.listen).
URL=$(sed -n 's/^[[:space:]]*listen:[[:space:]]*//p' "$TMP/config.yaml" |
      head -n 1 | sed -e 's/[[:space:]]#.*$//' -e "s/^[\"']//" \
                      -e "s/[\"'][[:space:]]*$//" -e 's/[[:space:]]*$//')
[ -n "$URL" ] || die "no server.listen URL in $CONFIG"
case "$URL" in
    ipc://"$TMP"/*) ;;
    *) echo "run.sh: warning: the host listens on $URL, not in $TMP" >&2 ;;
esac

cd "$REPO"
"$HOST_BIN" --config "$TMP/config.yaml" >"$HOST_LOG" 2>&1 &
HOST_PID=$!

# Wait for the control socket (ipc: the socket file; otherwise a fixed pause).
i=0
while :; do
    if ! kill -0 "$HOST_PID" 2>/dev/null; then
        wait "$HOST_PID" 2>/dev/null && st=0 || st=$?
        HOST_PID=
        show_host_log
        die "host exited (status $st) before listening"
    fi
    case "$URL" in
        ipc://*) [ -S "${URL#ipc://}" ] && break ;;
        *) [ "$i" -ge 10 ] && break ;;
    esac
    [ "$i" -ge $((WAIT * 10)) ] && { show_host_log; die "host not listening on $URL after ${WAIT}s"; }
    sleep 0.1
    i=$((i + 1))
done

set +e
"$BENCH_BIN" --url "$URL" "$@"
rc=$?
set -e

HOST_STATUS=0
stop_host
if [ "$HOST_STATUS" -ne 0 ]; then
    echo "run.sh: host exited with status $HOST_STATUS after SIGTERM" >&2
    show_host_log
fi
exit "$rc"
