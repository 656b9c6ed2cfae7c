#!/usr/bin/env bash
# The out-of-tree SDK test (ctest: out_of_tree_example).
#
#   tools/test-out-of-tree.sh BUILD_DIR
#
# 1. installs BUILD_DIR (already built) into a temporary prefix; checks that
#    sx-sdk.pc and the CMake package carry the installed headers' ABI version
#    and that find_package(sx-sdk 1.N) accepts it for every N up to its minor
#    and refuses the next minor and the next major;
# 2. copies sdk/examples/backend_example to a directory outside the source
#    tree and builds it against the installed SDK only: with CMake
#    (find_package(sx-sdk), CMAKE_PREFIX_PATH=prefix) and, separately, with
#    plain cc and pkg-config (PKG_CONFIG_PATH=prefix); checks that each .so
#    exports only sx_plugin_entry;
# 3. installs the CMake-built plugin into the prefix's plugin directory
#    (`cmake --install`, the example's default destination);
# 4. starts the INSTALLED host on a config that sets no plugins.dir (so the
#    installed host's default plugin directory is what is tested), loading
#    script_run and backend_example;
# 5. runs steps through it over nng with the INSTALLED sxctl: stdout, stderr
#    and exit code, stdin and args, env, timeout, describe and render;
# 6. stops the host with SIGTERM and expects exit 0.
# Exits non-zero on the first failure.  Environment: CMAKE_COMMAND (default
# cmake), CC (default cc), SX_KEEP_TMP=1 keeps the temporary directory.
set -euo pipefail

build=$(cd "${1:?usage: test-out-of-tree.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
cmake=${CMAKE_COMMAND:-cmake}
cc=${CC:-cc}

tmp=$(mktemp -d /tmp/sx-out-of-tree.XXXXXX)
host_pid=
cleanup() {
  if [ -n "$host_pid" ] && kill -0 "$host_pid" 2>/dev/null; then
    kill -KILL "$host_pid" 2>/dev/null || true
    wait "$host_pid" 2>/dev/null || true
  fi
  if [ "${SX_KEEP_TMP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/host.log" ] && tail -20 "$tmp/host.log" >&2; exit 1; }
step() { echo "== $*"; }

prefix=$tmp/prefix
case "$src/" in "$tmp"/*) fail "temporary directory inside the source tree" ;; esac

step "install $build into $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
# lib/ or lib/<multiarch>/ (GNUInstallDirs, for a /usr prefix on Debian)
pc=$(find "$prefix" -name sx-sdk.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || fail "not installed: sx-sdk.pc"
libdir=$(dirname "$(dirname "$pc")")
for f in "$prefix/bin/script-executor" "$prefix/bin/sxctl" "$prefix/include/sx/sx_backend.h" \
         "$libdir/libsx_sdk_util.a" "$libdir/cmake/sx-sdk/sx-sdk-config.cmake" \
         "$libdir/cmake/sx-sdk/sx-sdk-config-version.cmake" "$prefix/share/sx-sdk/plugin.map" \
         "$libdir/script-executor/plugins/script_run.so"; do
  [ -e "$f" ] || fail "not installed: $f"
done
plugindir=$libdir/script-executor/plugins

# The package version is the ABI version of the installed headers; a plugin
# asking for any older minor of the same major accepts it (as the loader
# does), a newer minor or another major does not.
abi_major=$(sed -n 's/^#define SX_ABI_MAJOR \([0-9][0-9]*\)$/\1/p' "$prefix/include/sx/sx_plugin.h")
abi_minor=$(sed -n 's/^#define SX_ABI_MINOR \([0-9][0-9]*\)$/\1/p' "$prefix/include/sx/sx_plugin.h")
[ -n "$abi_major" ] && [ -n "$abi_minor" ] || fail "no SX_ABI_MAJOR/MINOR in the installed sx_plugin.h"
step "SDK version: $abi_major.$abi_minor (pkg-config, CMake package)"
[ "$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --modversion sx-sdk)" = "$abi_major.$abi_minor" ] \
  || fail "sx-sdk.pc says $(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --modversion sx-sdk), the headers $abi_major.$abi_minor"
[ "$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --variable=abi_minor sx-sdk)" = "$abi_minor" ] \
  || fail "sx-sdk.pc abi_minor is not $abi_minor"
mkdir -p "$tmp/find"
cat >"$tmp/find/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(find_sx_sdk NONE)
find_package(sx-sdk ${WANT} REQUIRED)
if(NOT SX_SDK_VERSION STREQUAL "${EXPECT}")
  message(FATAL_ERROR "SX_SDK_VERSION is ${SX_SDK_VERSION}, expected ${EXPECT}")
endif()
EOF
find_sdk() {  # find_sdk VERSION -> 0 when find_package(sx-sdk VERSION) accepts the install
  rm -rf "$tmp/find-build"
  "$cmake" -S "$tmp/find" -B "$tmp/find-build" -DCMAKE_PREFIX_PATH="$prefix" -DWANT="$1" \
    -DEXPECT="$abi_major.$abi_minor" >"$tmp/find.log" 2>&1
}
for m in $(seq 0 "$abi_minor"); do
  find_sdk "$abi_major.$m" || { cat "$tmp/find.log"; fail "find_package(sx-sdk $abi_major.$m) refused $abi_major.$abi_minor"; }
done
find_sdk "$abi_major.$((abi_minor + 1))" && fail "find_package(sx-sdk $abi_major.$((abi_minor + 1))) accepted $abi_major.$abi_minor"
find_sdk "$((abi_major + 1)).0" && fail "find_package(sx-sdk $((abi_major + 1)).0) accepted $abi_major.$abi_minor"

step "copy the example out of the tree and build it with CMake (find_package(sx-sdk))"
cp -r "$src/sdk/examples/backend_example" "$tmp/example"
"$cmake" -S "$tmp/example" -B "$tmp/example-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="-Werror ${SX_EXAMPLE_CFLAGS:-}" \
  -DCMAKE_MODULE_LINKER_FLAGS="${SX_EXAMPLE_LDFLAGS:-}" >"$tmp/example-configure.log" \
  || { cat "$tmp/example-configure.log"; fail "configure the example"; }
grep -q "$src" "$tmp/example-build/CMakeCache.txt" && fail "the example's build refers to the source tree"
"$cmake" --build "$tmp/example-build" >"$tmp/example-build.log" 2>&1 \
  || { cat "$tmp/example-build.log"; fail "build the example"; }
grep -qi "warning" "$tmp/example-build.log" && { cat "$tmp/example-build.log"; fail "warnings building the example"; }

exports_only_entry() {
  local syms
  syms=$(nm -D --defined-only "$1" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u)
  [ "$syms" = sx_plugin_entry ] || fail "$1 exports: $(echo $syms)"
}
exports_only_entry "$tmp/example-build/backend_example.so"

step "build it again with cc and pkg-config (PKG_CONFIG_PATH=$libdir/pkgconfig)"
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion sx-sdk)" = "$(sed -n 's/^Version: //p' "$pc")" ] \
  || fail "pkg-config does not find sx-sdk"
[ "$(cd "$(pkg-config --variable=plugindir sx-sdk)" && pwd -P)" = "$(cd "$plugindir" && pwd -P)" ] \
  || fail "pkg-config plugindir is not the installed plugin directory"
# shellcheck disable=SC2046  # word splitting of the flags is intended
"$cc" -std=c11 -Wall -Wextra -Werror -fPIC -shared ${SX_EXAMPLE_CFLAGS:-} \
  $(pkg-config --cflags sx-sdk) $(pkg-config --variable=plugin_cflags sx-sdk) \
  "$tmp/example/backend_example.c" -o "$tmp/pkgconfig-backend_example.so" \
  $(pkg-config --variable=plugin_ldflags sx-sdk) $(pkg-config --libs sx-sdk) ${SX_EXAMPLE_LDFLAGS:-} \
  || fail "build the example with pkg-config"
exports_only_entry "$tmp/pkgconfig-backend_example.so"

step "install the example into the prefix's plugin directory"
"$cmake" --install "$tmp/example-build" >"$tmp/example-install.log" \
  || { cat "$tmp/example-install.log"; fail "install the example"; }
[ -f "$plugindir/backend_example.so" ] || fail "backend_example.so not in $plugindir"

step "start the installed host (no plugins.dir in the config)"
mkdir -p "$tmp/work" "$tmp/run"
url="ipc://$tmp/run/ctl.sock"
events="ipc://$tmp/run/events.sock"
cat >"$tmp/config.yaml" <<EOF
script_executor:
  server:
    listen: "$url"
    events: "$events"
  plugins:
    load: [script_run, backend_example]
  executors:
    - name: example
      kind: exec.example
      default_work_dir: "$tmp/work"
      default_env: {GREETING: hello}
  logging:
    level: info
EOF
cd "$tmp"               # no build/plugins here: only the install layout can be found
"$prefix/bin/script-executor" --config "$tmp/config.yaml" --check-config >"$tmp/check.out" 2>&1 \
  || { cat "$tmp/check.out"; fail "--check-config"; }
grep -q "backend_example .*$plugindir/backend_example.so" "$tmp/check.out" \
  || { cat "$tmp/check.out"; fail "backend_example not loaded from $plugindir"; }
grep -q "script_run .*$plugindir/script_run.so" "$tmp/check.out" \
  || { cat "$tmp/check.out"; fail "script_run not loaded from $plugindir"; }

"$prefix/bin/script-executor" --config "$tmp/config.yaml" 2>"$tmp/host.log" &
host_pid=$!
sxctl=("$prefix/bin/sxctl" --url "$url" --events-url "$events")
for _ in $(seq 100); do
  "${sxctl[@]}" --reply-timeout 1 health >/dev/null 2>&1 && break
  kill -0 "$host_pid" 2>/dev/null || fail "the host exited at start-up"
  sleep 0.1
done
"${sxctl[@]}" health >/dev/null || fail "the host does not answer"

step "sxctl exec --executor example -- 'echo hi'"
out=$("${sxctl[@]}" exec --executor example --interpreter /bin/sh -- 'echo hi') || fail "exec: exit $?"
echo "$out"
[ "$out" = hi ] || fail "expected 'hi', got '$out'"

step "stdout, stderr and exit code kept apart"
rc=0
"${sxctl[@]}" --json exec --executor example --interpreter /bin/sh -- \
  'echo to-out; echo to-err >&2; exit 3' >"$tmp/r1.json" || rc=$?
[ "$rc" = 3 ] || fail "expected sxctl to exit 3, got $rc"
python3 - "$tmp/r1.json" <<'EOF' || fail "exit-code reply"
import json, sys
r = json.load(open(sys.argv[1]))
r = r[0] if isinstance(r, list) else r
o = r["output"]
assert r["status"] == "failed", r
assert o["exit_code"] == 3 and o["stdout"] == "to-out\n" and o["stderr"] == "to-err\n", o
assert o["termination"]["reason"] == "exited", o
EOF

step "stdin, args, env, working directory"
printf 'from-stdin' >"$tmp/stdin.txt"
out=$("${sxctl[@]}" exec --executor example --interpreter /bin/sh --env NAME=world \
        --stdin-file "$tmp/stdin.txt" -- 'printf "%s %s %s " "$GREETING" "$NAME" "$1"; cat; echo " $(pwd)"' arg1) \
  || fail "exec with stdin: exit $?"
[ "$out" = "hello world arg1 from-stdin $tmp/work" ] || fail "got '$out'"

step "timeout kills the script"
rc=0
"${sxctl[@]}" --json exec --executor example --interpreter /bin/sh --timeout 1s -- 'sleep 30' \
  >"$tmp/r2.json" || rc=$?
[ "$rc" != 0 ] || fail "a timed-out step succeeded"
python3 - "$tmp/r2.json" <<'EOF' || fail "timeout reply"
import json, sys
r = json.load(open(sys.argv[1]))
r = r[0] if isinstance(r, list) else r
assert r["status"] == "timed_out", r
assert r["output"]["termination"]["reason"] == "timed_out", r
assert r["output"]["duration_seconds"] < 10, r
EOF

step "cancel (host->exec_cancel_fd) kills the script"
"${sxctl[@]}" --json exec --executor example --interpreter /bin/sh --execution-id oot-cancel \
  -- 'sleep 30' >"$tmp/r3.json" 2>&1 &
exec_pid=$!
for _ in $(seq 100); do
  "${sxctl[@]}" status oot-cancel exec 2>/dev/null | grep -q running && break
  sleep 0.1
done
"${sxctl[@]}" cancel oot-cancel exec >/dev/null || fail "cancel"
rc=0
wait "$exec_pid" || rc=$?
[ "$rc" != 0 ] || fail "a cancelled step succeeded"
grep -q '"cancelled"' "$tmp/r3.json" || { cat "$tmp/r3.json"; fail "cancel reply"; }

step "describe, render, and a parameter the backend does not support"
"${sxctl[@]}" describe >"$tmp/describe.out" || fail "describe"
grep -q "exec.example" "$tmp/describe.out" || { cat "$tmp/describe.out"; fail "describe lacks exec.example"; }
cat >"$tmp/render.yaml" <<'EOF'
id: example.render
steps:
  - name: one
    type: script.run
    with: {executor: example, interpreter: /bin/sh, inline_script: "echo hi", args: [a1]}
EOF
"${sxctl[@]}" --json render "$tmp/render.yaml" >"$tmp/render.json" || fail "render"
grep -q '"<script file>"' "$tmp/render.json" && grep -q '"a1"' "$tmp/render.json" \
  || { cat "$tmp/render.json"; fail "render output"; }
cat >"$tmp/unsupported.yaml" <<'EOF'
id: example.unsupported
steps:
  - name: one
    type: script.run
    with: {executor: example, interpreter: /bin/sh, inline_script: "echo hi", image: "alpine:3"}
EOF
rc=0
"${sxctl[@]}" --json run "$tmp/unsupported.yaml" >"$tmp/unsupported.json" || rc=$?
[ "$rc" != 0 ] && grep -q unsupported_parameter "$tmp/unsupported.json" \
  || { cat "$tmp/unsupported.json"; fail "'image' was not refused as unsupported_parameter"; }

step "stop the host (SIGTERM, exit 0)"
kill -TERM "$host_pid"
rc=0
wait "$host_pid" || rc=$?
host_pid=
[ "$rc" = 0 ] || fail "the host exited with $rc"
echo "PASS: the example plugin, built out of the tree against the installed SDK, ran in the installed host"
