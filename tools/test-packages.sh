#!/usr/bin/env bash
# test-packages.sh BUILD_DIR - build the Debian packages with CPack into a
# temporary directory and check what selective deployment promises:
#   - one package for the host, one for the SDK, one per built plugin;
#   - each plugin package holds its .so (backend_native also its supervisor)
#     under /usr/lib/script-executor/plugins and depends on the host package;
#   - the native plugin does not pull libcurl; the Docker plugin does;
#   - the SDK package holds the headers, sx-sdk.pc and the CMake package.
# Exits non-zero with a message naming the first broken promise.
set -euo pipefail
build=$(cd "${1:?usage: test-packages.sh BUILD_DIR}" && pwd)
out=$(mktemp -d /tmp/sx-packages.XXXXXX)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log" 2>&1) ||
  { cat "$out/cpack.log" >&2; fail "cpack -G DEB"; }

deb() { ls "$out"/"$1"_*.deb 2>/dev/null | head -1; }
field() { dpkg-deb -f "$1" "$2"; }
contents() { dpkg-deb -c "$1" | awk '{print $6}'; }   # read whole: no early-closed pipe
has_file() { local c; c=$(contents "$1"); grep -qx "$2" <<<"$c" || fail "$(basename "$1") lacks $2"; }

for p in script-executor script-executor-sdk; do
  [ -n "$(deb $p)" ] || fail "no package $p (have: $(ls "$out"/*.deb | xargs -n1 basename | tr '\n' ' '))"
done
has_file "$(deb script-executor)" ./usr/bin/script-executor
has_file "$(deb script-executor)" ./usr/bin/sxctl
sdk=$(deb script-executor-sdk)
has_file "$sdk" ./usr/include/sx/sx_plugin.h
has_file "$sdk" ./usr/include/sx/sx_backend.h
sdk_files=$(contents "$sdk")
grep -q 'pkgconfig/sx-sdk.pc$' <<<"$sdk_files" || fail "SDK package lacks sx-sdk.pc"
grep -q 'cmake/sx-sdk/sx-sdk-config.cmake$' <<<"$sdk_files" || fail "SDK package lacks sx-sdk-config.cmake"

sr_files=$(contents "$(deb script-executor-plugin-script-run)")
plugdir=$(grep '/script_run.so$' <<<"$sr_files" | sed 's#/script_run.so$##')
[ -n "$plugdir" ] || fail "script_run.so not in its package"
for so in "$build"/plugins/*.so; do
  name=$(basename "$so" .so)
  pkg=script-executor-plugin-${name//_/-}
  f=$(deb "$pkg")
  [ -n "$f" ] || fail "no package $pkg for the built plugin $name"
  has_file "$f" "$plugdir/$name.so"
  grep -q 'script-executor (= ' <<<"$(field "$f" Depends)" || fail "$pkg does not depend on the host package"
done
native=$(deb script-executor-plugin-backend-native)
if [ -n "$native" ]; then
  has_file "$native" "$plugdir/sx-native-supervisor"
  if grep -q libcurl <<<"$(field "$native" Depends)"; then fail "backend-native depends on libcurl"; fi
fi
docker=$(deb script-executor-plugin-backend-docker)
if [ -n "$docker" ]; then
  grep -q libcurl <<<"$(field "$docker" Depends)" || fail "backend-docker does not depend on libcurl"
fi
if grep -q libcurl <<<"$(field "$(deb script-executor)" Depends)"; then fail "the host depends on libcurl"; fi

echo "packages:"
for f in "$out"/*.deb; do
  printf '  %-42s Depends: %s\n' "$(field "$f" Package)" "$(field "$f" Depends)"
done
echo "PASS: one package per component, plugins in $plugdir, native without libcurl"
