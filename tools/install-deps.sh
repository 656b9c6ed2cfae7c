#!/usr/bin/env bash
# Install the Debian 12 packages needed to build and test the script executor.
# Idempotent: does nothing when everything is present.
set -euo pipefail
packages=(
  build-essential cmake pkg-config          # toolchain
  libnng-dev libyaml-dev libcjson-dev       # nng, libyaml, cJSON
  libssl-dev check libsubunit-dev           # OpenSSL (SHA-256), check (unit tests)
  libcurl4-openssl-dev                      # libcurl (Docker, Kubernetes backends; audit_siem)
  libsqlite3-dev libpq-dev                  # approval stores (approval_sqlite, approval_postgres)
  postgresql                                # the real server the approval_postgres tests use
  python3 ruby                              # interpreters scripts may use
  util-linux procps                         # setsid, ps (process-tree tests)
  prometheus                                # promtool: checks the metrics plugin's output (tests)
  python3-jsonschema openssl                # k8s-fake (tests/k8s_fake): Job schema, TLS certificates
  clang-14 libclang-rt-14-dev               # libFuzzer: the script scanner's fuzz target (CI, 60 s)
)
# kubectl for the k8s-fake fidelity test (ctest k8s_fake_kubectl): Debian's kubernetes-client,
# unless a kubectl is already installed (another package's /usr/bin/kubectl would conflict).
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
