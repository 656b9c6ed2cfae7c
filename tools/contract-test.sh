#!/usr/bin/env bash
# contract-test.sh - run the backend contract suite against a backend plugin
# (yours or ours), through the real host over nng: exit codes, stdout/stderr,
# stdin, env, working dir, timeout, cancel, output cap, termination reasons,
# render, refusal of unsupported parameters, events, cleanup.  What each case
# checks: docs/contract-suite.md.
#
# usage:
#   tools/contract-test.sh --plugin-dir DIR --plugin NAME --kind KIND
#                          [--executor-yaml FILE] [--dialect sh|fake]
#                          [--leftover-cmd CMD] [--case NAME] [--build-dir DIR]
#                          [any other contract_suite option]
#
#   --plugin-dir DIR      where NAME.so is (the host also needs script_run.so and
#                         audit_file.so: taken from this build's plugins when DIR
#                         lacks them; DIR's files win)
#   --plugin NAME         the plugin to load (repeat for several)
#   --kind KIND           the executor kind it provides, e.g. exec.mycloud
#   --executor-yaml FILE  the executor entry's own keys, e.g. "image: ..."; not
#                         name/kind/max_output_bytes (the suite sets them)
#   --dialect sh          cases as POSIX /bin/sh scripts (default); `fake` is
#                         backend_fake's directive language
#   --interpreter PATH    the interpreter the steps ask for (default /bin/sh)
#   --leftover-cmd CMD    sh command printing how many objects of execution %s
#                         exist (processes, containers, pods...); without it the
#                         cleanup case is skipped (and says so)
#   --xfail CASE[,CASE]   known bugs of your backend: printed loudly, not failed
#   --fail-on-skip        a skipped case fails the run
#   --case NAME           run only that case (CK_RUN_CASE); --list prints them
#   --build-dir DIR       the build with the suite (default: $SX_BUILD_DIR or
#                         build/); the suite target is built there if missing
#   --help                the suite's full option list
#
# Examples (from the repository root, after a build in build/):
#   tools/contract-test.sh --plugin-dir ~/src/myback/build --plugin backend_myback \
#       --kind exec.myback --executor-yaml myback.yaml \
#       --leftover-cmd 'myback-cli list --label run=%s | wc -l'
#   tools/contract-test.sh --plugin-dir build/plugins --plugin backend_docker \
#       --kind exec.docker --executor-yaml tests/contract/docker.yaml \
#       --leftover-cmd 'sh tests/contract/leftovers-docker.sh %s'
#   tests/contract/k8s-contract.sh build/bin/contract_suite --plugin backend_k8s \
#       --kind exec.kubernetes --dialect sh --interpreter /bin/sh
#       (exec.kubernetes against the fake API server it starts; ctest
#       contract_kubernetes; against a real cluster pass --executor-yaml with
#       your kubeconfig, see docs/contract-suite.md)
#
# Exit status: 0 every case passed or was skipped (skips are printed), 1 a case
# failed, 2 usage error.  Every option may also come from the environment
# (CONTRACT_PLUGIN_DIR, CONTRACT_PLUGINS, CONTRACT_KIND, ...; see --help).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${SX_BUILD_DIR:-$root/build}
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) build=${2:?--build-dir needs a directory}; shift 2 ;;
    --build-dir=*) build=${1#*=}; shift ;;
    --case) export CK_RUN_CASE=${2:?--case needs a name}; shift 2 ;;
    --case=*) export CK_RUN_CASE=${1#*=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

suite=${CONTRACT_SUITE:-$build/bin/contract_suite}
if [ ! -x "$suite" ]; then
  if [ -f "$build/CMakeCache.txt" ]; then
    echo "contract-test: building the suite in $build" >&2
    cmake --build "$build" --target contract_suite >&2
  else
    echo "contract-test: no suite at $suite and no configured build in $build;" >&2
    echo "  build first: cmake -S $root -B $build && cmake --build $build --target contract_suite" >&2
    exit 2
  fi
fi
exec "$suite" ${args[@]+"${args[@]}"}
