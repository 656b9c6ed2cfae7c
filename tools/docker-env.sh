#!/usr/bin/env bash
# Prepare what the Docker integration tests and the Docker benchmark need, on a
# Debian 12 machine, without any container registry on the internet:
#   - the packages (docker.io, docker-registry, apache2-utils, mmdebstrap,
#     busybox-static, ca-certificates, curl, gpg, socat, openssl; apparmor where the kernel
#     has it enabled), installed only when missing;
#   - a running Docker engine (dockerd started in the background when
#     `docker info` fails; no systemd is assumed);
#   - two images built offline: sx-test/minimal:latest (busybox-static) and
#     sx-test/full:latest (Debian bookworm minbase + bash, python3, ruby);
#   - a local registry on 127.0.0.1:5000 with basic auth (user sx-ci, password
#     sx-ci-password: a fixed test-only credential, loopback only) holding
#     127.0.0.1:5000/sx-test/minimal:latest, which is absent locally so that
#     the tests exercise pulls.
# Idempotent: a second run only checks and takes a few seconds.
# See docs/test-environment.md.
#   --reset   stop the test registry, remove the sx-test images and the
#             registry data (dockerd is left running)
set -euo pipefail

REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_USER=sx-ci
REGISTRY_PASSWORD=sx-ci-password          # fixed test credential, loopback only
REGISTRY_DIR=/var/lib/sx-test-registry
REGISTRY_LOG=/var/log/sx-test-registry.log
DOCKERD_LOG=/var/log/sx-dockerd.log
MINIMAL=sx-test/minimal:latest
FULL=sx-test/full:latest
PUSHED=$REGISTRY_ADDR/sx-test/minimal:latest
DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "docker-env: $*"; }
die() { echo "docker-env: ERROR: $*" >&2; exit 1; }

mode=setup
case "${1:-}" in
  "") ;;
  --reset) mode=reset ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (use --reset or --help)" ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E bash "$0" "$@"
fi

# One run at a time (run-tests.sh may be started twice in parallel).
exec 9>/run/sx-docker-env.lock    # daemonize closes it in the daemons
flock -w 900 9 || die "another tools/docker-env.sh holds /run/sx-docker-env.lock"

# ----------------------------------------------------------------- helpers --
registry_pid() {      # pid of the registry this script started, if alive
  local pid
  pid=$(cat "$REGISTRY_DIR/registry.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "docker-registry serve $REGISTRY_DIR/config.yml" || return 1
  echo "$pid"
}

stop_our_registry() {
  local pid
  pid=$(registry_pid) || { rm -f "$REGISTRY_DIR/registry.pid"; return 0; }
  say "stopping test registry (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  if [ -d "/proc/$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$REGISTRY_DIR/registry.pid"
}

daemonize() {         # run "$@" in the background, detached, output to log $1
  local log=$1; shift
  (
    for fd in "/proc/$BASHPID/fd/"*; do  # no inherited lock or pipe
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid nohup "$@" >>"$log" 2>&1 </dev/null
  ) &
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true; }

registry_ok() {       # 401 without credentials and 200 with the test ones
  [ "$(http_code "http://$REGISTRY_ADDR/v2/")" = 401 ] &&
  [ "$(http_code -u "$REGISTRY_USER:$REGISTRY_PASSWORD" "http://$REGISTRY_ADDR/v2/")" = 200 ]
}

if [ "$mode" = reset ]; then
  stop_our_registry
  if docker info >/dev/null 2>&1; then
    for img in "$PUSHED" "$MINIMAL" "$FULL"; do
      docker image inspect "$img" >/dev/null 2>&1 || continue
      # No --force: an image a container still uses is kept (and said so).
      if err=$(docker rmi "$img" 2>&1 >/dev/null); then
        say "removed image $img"
      else
        say "WARNING: kept image $img: $err"
      fi
    done
  else
    say "docker engine not reachable: images not removed"
  fi
  rm -rf "$REGISTRY_DIR"
  say "removed $REGISTRY_DIR (logs kept: $REGISTRY_LOG, $DOCKERD_LOG)"
  exit 0
fi

start=$(date +%s)

# ---------------------------------------------------------------- packages --
packages=(docker.io docker-registry apache2-utils mmdebstrap busybox-static
          ca-certificates
          curl util-linux gpg   # checks below; flock, setsid, setpriv; mmdebstrap keyring check
          socat openssl)        # the Docker tcp:// and TLS tests put a proxy in front of the socket
# Engine 20.10 cannot start containers when the kernel has AppArmor enabled
# but apparmor_parser is missing (moby/moby#44900, fixed only in 23.0); the
# package is a Recommends of docker.io, which we install without them.
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; then
  packages+=(apparmor)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ------------------------------------------------------------ docker engine --
if ! docker info >/dev/null 2>&1; then
  dockerd_pid=
  if pgrep -x dockerd >/dev/null; then
    say "dockerd is running but not answering yet; waiting"
  else
    say "starting dockerd (log: $DOCKERD_LOG)"
    daemonize "$DOCKERD_LOG" dockerd
    dockerd_pid=$!
  fi
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    if [ -n "$dockerd_pid" ] && [[ "$(ps -o stat= -p "$dockerd_pid" 2>/dev/null || echo Z)" == Z* ]]; then
      tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
      die "dockerd exited during startup (see $DOCKERD_LOG)"
    fi
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
    die "the Docker engine did not answer 'docker info' within 60 s (see $DOCKERD_LOG)"
  fi
fi

# ------------------------------------------------------------------ images --
tmp=$(mktemp -d /tmp/sx-docker-env.XXXXXX)
DOCKER_CONFIG_TMP=
cleanup() {
  [ -n "$DOCKER_CONFIG_TMP" ] && rm -rf "$DOCKER_CONFIG_TMP"
  rm -rf "$tmp"
}
trap cleanup EXIT

if docker image inspect "$MINIMAL" >/dev/null 2>&1; then
  say "$MINIMAL present"
else
  say "building $MINIMAL (busybox-static)"
  root=$tmp/minimal
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,home}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list-full); do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
  done
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF
  chmod 0700 "$root/root"
  chmod 1777 "$root/tmp"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . |
    docker import --change "ENV PATH=$DEFAULT_PATH" --change 'CMD ["/bin/sh"]' \
      - "$MINIMAL" >/dev/null
  out=$(docker run --rm "$MINIMAL" sh -c 'id; cat /proc/self/status | head -1') ||
    die "$MINIMAL does not run"
  grep -q 'uid=0(root)' <<<"$out" || die "$MINIMAL: unexpected 'id' output: $out"
  say "$MINIMAL ok: $(echo "$out" | tr '\n' ' ')"
fi

debian_mirror() {     # the host's main Debian mirror for bookworm (not -security)
  local f uri
  if [ -n "${SX_DEBIAN_MIRROR:-}" ]; then echo "$SX_DEBIAN_MIRROR"; return; fi
  for f in /etc/apt/sources.list.d/*.sources; do      # deb822 paragraphs
    [ -f "$f" ] || continue
    uri=$(awk 'BEGIN { RS = "" }
      { types = ""; uris = ""; suites = " "; n = split($0, l, "\n")
        for (i = 1; i <= n; i++) {
          if (l[i] ~ /^Types:/)  types = l[i]
          if (l[i] ~ /^URIs:/)   { split(l[i], w, /[ \t]+/); uris = w[2] }
          if (l[i] ~ /^Suites:/) suites = l[i] " "
          if (l[i] ~ /^Enabled:[ \t]*no/) types = ""
        }
        if (types ~ /[ \t]deb([ \t]|$)/ && suites ~ /[ \t]bookworm[ \t]/ && uris != "") { print uris; exit }
      }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do  # one-line
    [ -f "$f" ] || continue
    uri=$(sed -e 's/\[[^]]*\]//' "$f" |
      awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  echo http://deb.debian.org/debian
}

if docker image inspect "$FULL" >/dev/null 2>&1; then
  say "$FULL present"
else
  mirror=$(debian_mirror)
  say "building $FULL with mmdebstrap from $mirror (about a minute)"
  t0=$(date +%s)
  mmdebstrap --quiet --variant=minbase --include=bash,python3-minimal,ruby \
    bookworm "$tmp/full.tar" "$mirror" || die "mmdebstrap failed"
  t1=$(date +%s)
  docker import --change "ENV PATH=$DEFAULT_PATH" --change 'CMD ["/bin/bash"]' \
    "$tmp/full.tar" "$FULL" >/dev/null
  rm -f "$tmp/full.tar"
  t2=$(date +%s)
  for check in "bash -c 'echo bash \$BASH_VERSION'" \
               "python3 -c 'import sys; print(\"python\", sys.version.split()[0])'" \
               "ruby -e 'puts \"ruby \" + RUBY_VERSION'"; do
    out=$(eval docker run --rm "$FULL" "$check") || die "$FULL: '$check' failed"
    say "$FULL: $out"
  done
  say "$FULL built: mmdebstrap $((t1 - t0)) s, docker import $((t2 - t1)) s"
fi

# ---------------------------------------------------------------- registry --
mkdir -p "$REGISTRY_DIR/data"
if ! htpasswd -vb "$REGISTRY_DIR/htpasswd" "$REGISTRY_USER" "$REGISTRY_PASSWORD" >/dev/null 2>&1; then
  htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$REGISTRY_DIR/htpasswd.new"
  mv "$REGISTRY_DIR/htpasswd.new" "$REGISTRY_DIR/htpasswd"
  stop_our_registry     # reread the password file
fi
cat >"$REGISTRY_DIR/config.yml.new" <<EOF
# Test registry for the Docker backend tests (written by tools/docker-env.sh).
# Loopback only; basic auth with the fixed test credential $REGISTRY_USER.
version: 0.1
log:
  level: info
  fields:
    service: sx-test-registry
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
  secret: sx-test-registry-upload-state-secret
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: sx-test-registry
    path: $REGISTRY_DIR/htpasswd
EOF
if cmp -s "$REGISTRY_DIR/config.yml.new" "$REGISTRY_DIR/config.yml"; then
  rm "$REGISTRY_DIR/config.yml.new"
else
  mv "$REGISTRY_DIR/config.yml.new" "$REGISTRY_DIR/config.yml"
  stop_our_registry     # reread the configuration
fi
if getent passwd docker-registry >/dev/null; then
  chown -R docker-registry: "$REGISTRY_DIR"
  chmod 0640 "$REGISTRY_DIR/htpasswd"
fi

describe_port_owner() {
  if command -v ss >/dev/null; then
    ss -ltnpH "sport = :${REGISTRY_ADDR##*:}" 2>/dev/null || true
  fi
}

if registry_ok && registry_pid >/dev/null; then
  say "test registry answering on $REGISTRY_ADDR"
else
  # Debian's docker-registry package starts its own service (":5000", the
  # package's config) where an init system runs; it would hold the port.
  if [ -d /run/systemd/system ] && systemctl is-active --quiet docker-registry 2>/dev/null; then
    say "stopping and disabling the docker-registry systemd service (it holds port 5000)"
    systemctl stop docker-registry
    systemctl disable --quiet docker-registry 2>/dev/null || true
  fi
  deb_pid=$(cat /var/run/docker-registry.pid 2>/dev/null || true)
  if [ -n "$deb_pid" ] && tr '\0' ' ' <"/proc/$deb_pid/cmdline" 2>/dev/null |
       grep -q 'docker-registry serve /etc/docker/registry/config.yml'; then
    say "stopping the docker-registry init.d service (it holds port 5000)"
    /etc/init.d/docker-registry stop || true
    rm -f /var/run/docker-registry.pid
  fi
  if registry_pid >/dev/null && ! registry_ok; then
    stop_our_registry   # ours, but not answering as it should
  fi
  if registry_ok && ! registry_pid >/dev/null; then
    say "WARNING: a registry not started by this script answers on $REGISTRY_ADDR with the test credential; using it"
  else
    if [ "$(http_code "http://$REGISTRY_ADDR/v2/")" != 000 ] || [ -n "$(describe_port_owner)" ]; then
      describe_port_owner >&2
      die "port ${REGISTRY_ADDR##*:} is held by another program, not the test registry; stop it and rerun"
    fi
    say "starting test registry on $REGISTRY_ADDR (log: $REGISTRY_LOG)"
    runas=()
    getent passwd docker-registry >/dev/null &&
      runas=(setpriv --reuid=docker-registry --regid=docker-registry --init-groups)
    touch "$REGISTRY_LOG"
    daemonize "$REGISTRY_LOG" "${runas[@]}" docker-registry serve "$REGISTRY_DIR/config.yml"
    echo $! >"$REGISTRY_DIR/registry.pid"
    for _ in $(seq 100); do registry_ok && break; sleep 0.1; done
    if ! registry_ok; then
      tail -n 20 "$REGISTRY_LOG" >&2 || true
      die "test registry did not come up on $REGISTRY_ADDR (see $REGISTRY_LOG)"
    fi
  fi
fi

# ----------------------------------------------------- push the test image --
grep -q '"127.0.0.0/8"' <<<"$(docker info --format '{{json .RegistryConfig.InsecureRegistryCIDRs}}')" ||
  die "the engine does not treat 127.0.0.0/8 registries as insecure (plain HTTP); check /etc/docker/daemon.json"

local_id=$(docker image inspect -f '{{.Id}}' "$MINIMAL")
remote_config=$(curl -s --max-time 10 -u "$REGISTRY_USER:$REGISTRY_PASSWORD" \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$REGISTRY_ADDR/v2/sx-test/minimal/manifests/latest" |
  tr -d ' \n' | sed -n 's/.*"config":{[^}]*"digest":"\([^"]*\)".*/\1/p' || true)
if [ "$remote_config" = "$local_id" ]; then
  say "$PUSHED up to date in the registry"
else
  say "pushing $PUSHED"
  # A throw-away client config: the credential never lands in ~/.docker.
  DOCKER_CONFIG_TMP=$(mktemp -d /tmp/sx-docker-config.XXXXXX)
  export DOCKER_CONFIG=$DOCKER_CONFIG_TMP
  docker tag "$MINIMAL" "$PUSHED"
  printf '%s' "$REGISTRY_PASSWORD" |
    docker login --username "$REGISTRY_USER" --password-stdin "$REGISTRY_ADDR" \
      >"$DOCKER_CONFIG_TMP/login.log" 2>&1 ||
    { cat "$DOCKER_CONFIG_TMP/login.log" >&2; die "docker login $REGISTRY_ADDR failed"; }
  push_rc=0
  docker push "$PUSHED" >/dev/null || push_rc=$?
  docker logout "$REGISTRY_ADDR" >/dev/null || true
  unset DOCKER_CONFIG
  [ "$push_rc" -eq 0 ] || die "docker push $PUSHED failed"
fi
# The tests start with the image absent locally: they exercise pulls.
if docker image inspect "$PUSHED" >/dev/null 2>&1; then
  docker rmi "$PUSHED" >/dev/null
fi

# Check authentication through the Engine API, as the plugin uses it.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
engine_pull() {       # $1: X-Registry-Auth value or empty; prints "status body"
  local hdr=()
  [ -n "$1" ] && hdr=(-H "X-Registry-Auth: $1")
  curl -s --max-time 60 --unix-socket /var/run/docker.sock -X POST "${hdr[@]}" \
    -w ' HTTP %{http_code}' \
    "http://d/v1.41/images/create?fromImage=$REGISTRY_ADDR/sx-test/minimal&tag=latest" || true
}
good_auth=$(printf '{"username":"%s","password":"%s","serveraddress":"%s"}' \
  "$REGISTRY_USER" "$REGISTRY_PASSWORD" "$REGISTRY_ADDR" | b64url)
out=$(engine_pull "")
if [[ "$out" == *" HTTP 200" ]] && ! grep -q '"error"' <<<"$out"; then
  die "an unauthenticated pull of $PUSHED through the Engine API did not fail: $out"
fi
out=$(engine_pull "$good_auth")
if [[ "$out" != *" HTTP 200" ]] || grep -q '"error"' <<<"$out" ||
   ! docker image inspect "$PUSHED" >/dev/null 2>&1; then
  die "an authenticated pull of $PUSHED through the Engine API failed: $out"
fi
docker rmi "$PUSHED" >/dev/null
say "Engine API pull of $PUSHED: refused without credentials, works with them"

# ----------------------------------------------------------------- summary --
echo
echo "== Docker test environment ready ($(( $(date +%s) - start )) s) =="
docker version --format 'docker client {{.Client.Version}}, engine {{.Server.Version}} (API {{.Server.APIVersion}})'
docker images --format '{{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}' | grep -E '^sx-test/' | sed 's/^/  image: /' || true
echo "  registry: http://$REGISTRY_ADDR (user $REGISTRY_USER, password $REGISTRY_PASSWORD; test-only, loopback)"
echo "            holds $PUSHED (not present locally)"
echo "  logs: $DOCKERD_LOG (if started here), $REGISTRY_LOG"
