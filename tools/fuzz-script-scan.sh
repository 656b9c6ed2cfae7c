#!/usr/bin/env bash
# fuzz-script-scan.sh - build the libFuzzer target of the script scanner
# (tests/fuzz/fuzz_script_scan.c + plugins/policy/script_scan.c) with clang
# and run it for a bounded time.
#
# usage: tools/fuzz-script-scan.sh [SECONDS] [extra libFuzzer options...]
#   SECONDS  how long to fuzz (default 60)
#
# Environment:
#   SX_FUZZ_DIR  work directory (default /tmp/sx-fuzz-script-scan): the binary,
#                the grown corpus (corpus/, seeded from
#                tests/fuzz/corpus-script-scan/) and any crash-* files
#   CLANG        the compiler (default: clang, else clang-14)
#
# clang comes from Debian: apt-get install clang-14 libclang-rt-14-dev (the
# script installs them when they are missing and it runs as root).
# Exit status: 0 when no crash, leak or timeout was found, else libFuzzer's.
set -euo pipefail

secs="${1:-60}"
shift || true
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [SECONDS] [libFuzzer options]" >&2; exit 2 ;; esac

src="$(cd "$(dirname "$0")/.." && pwd)"
work="${SX_FUZZ_DIR:-/tmp/sx-fuzz-script-scan}"

find_clang() {
  if [ -n "${CLANG:-}" ]; then echo "$CLANG"; return; fi
  for c in clang clang-14; do
    if command -v "$c" >/dev/null 2>&1; then echo "$c"; return; fi
  done
}
cc="$(find_clang)"
if [ -z "$cc" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends clang-14 libclang-rt-14-dev >&2
    cc=clang-14
  else
    echo "clang not found: apt-get install clang-14 libclang-rt-14-dev" >&2
    exit 2
  fi
fi

mkdir -p "$work/corpus"
bin="$work/fuzz_script_scan"
build() {
  "$cc" -std=c11 -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$src/plugins/policy" \
    "$src/tests/fuzz/fuzz_script_scan.c" "$src/plugins/policy/script_scan.c" -o "$bin"
}
if ! build 2>"$work/build.log"; then
  if grep -q "libclang_rt.fuzzer\|-lclang_rt" "$work/build.log" && [ "$(id -u)" = 0 ]; then
    apt-get install -y --no-install-recommends libclang-rt-14-dev >&2
    build
  else
    cat "$work/build.log" >&2
    exit 2
  fi
fi

cp -n "$src/tests/fuzz/corpus-script-scan/"* "$work/corpus/" 2>/dev/null || true
echo "fuzzing for ${secs}s: $bin (corpus $work/corpus, artifacts $work/)" >&2
cd "$work"
# -rss_limit_mb: the scanner's own bound is 64 MiB of result; the rest is ASan
exec "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/corpus"
