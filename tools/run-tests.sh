#!/usr/bin/env bash
# Run every test: install dependencies, prepare the Docker test environment
# (tools/docker-env.sh, see docs/test-environment.md), build, run the suite
# with ctest, then build again with AddressSanitizer + UndefinedBehaviorSanitizer
# (leaks are failures) and run the suite once more; last, fuzz the script
# scanner for a bounded time (SX_FUZZ_SECONDS, default 60; about 75 s with
# the build of the target).
#   --plain      only the plain build
#   --sanitize   only the sanitizer build
#   --fuzz       only the fuzz run
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
bash tools/install-deps.sh
bash tools/docker-env.sh        # Docker engine, test images, test registry
# PostgreSQL on 127.0.0.1:5432 for the approval_postgres tests (tools/pg-env.sh)
SX_TEST_PG_DSN=$(bash tools/pg-env.sh | tail -1)
export SX_TEST_PG_DSN
jobs=$(nproc)

if [ "$mode" = all ] || [ "$mode" = --plain ]; then
  echo "== plain build (RelWithDebInfo) =="
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$jobs"
  (cd build && ctest --output-on-failure --timeout 900)
fi

if [ "$mode" = all ] || [ "$mode" = --sanitize ]; then
  echo "== ASan + UBSan build (Debug) =="
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSX_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  # Plugins stay mapped at exit (SX_NO_DLCLOSE) so leak reports can name
  # their frames; any leak or UB report fails the test that caused it.
  (cd build-asan && SX_NO_DLCLOSE=1 \
     ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure --timeout 900)
fi

if [ "$mode" = all ] || [ "$mode" = --fuzz ]; then
  # libFuzzer + ASan + UBSan on plugins/policy/script_scan.c (the script
  # validator's scanner); a crash, leak or hang fails the run.
  echo "== fuzz: script scanner, ${SX_FUZZ_SECONDS:-60}s =="
  SX_FUZZ_DIR="${SX_FUZZ_DIR:-$PWD/build-fuzz}" bash tools/fuzz-script-scan.sh "${SX_FUZZ_SECONDS:-60}"
fi
