#!/usr/bin/env bash
# The frozen SDK headers of every previous minor are what plugins of that
# minor were compiled against (tests/fixtures/sdk-1.N/README.md): each
# fixture directory's include/sx/*.h must match its SHA256SUMS byte for byte,
# and SHA256SUMS must list every header there (a header added later would
# not be checked by sha256sum alone).  ctest: unit_abi_layout_frozen_headers.
#
#   check_frozen_headers.sh FIXTURE_DIR...    (tests/fixtures/sdk-1.0 ...)
set -uo pipefail
[ $# -gt 0 ] || { echo "FAIL usage: check_frozen_headers.sh FIXTURE_DIR..."; exit 1; }
status=0
for dir in "$@"; do
  if ! (cd "$dir" && sha256sum --check --strict --quiet SHA256SUMS); then
    echo "FAIL $dir: a frozen header changed (or SHA256SUMS is malformed); never edit them"
    status=1
    continue
  fi
  listed=$(awk '{print $2}' "$dir/SHA256SUMS" | sort)
  present=$(cd "$dir" && ls include/sx/*.h | sort)
  if [ "$listed" != "$present" ]; then
    echo "FAIL $dir: SHA256SUMS lists [$(echo $listed)], include/sx has [$(echo $present)]"
    status=1
    continue
  fi
  echo "ok   $dir: $(echo "$present" | wc -l) headers as pinned"
done
exit $status
