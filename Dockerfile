# script-executor on Debian 12 with only the plugins a deployment needs.
#
#   docker build -t script-executor .            # PLUGINS="script_run backend_native audit_file"
#   docker build --build-arg PLUGINS="script_run backend_docker audit_file" -t script-executor:docker .
#   docker run -d -v sx-run:/run/script-executor script-executor
#
# PLUGINS (space-separated) picks the plugins to build, one CMake option
# each (SX_PLUGIN_<NAME>=ON/OFF, every option of plugins/CMakeLists.txt; the
# others are switched off): script_run backend_native backend_docker
# backend_k8s backend_fake audit_file audit_siem policy image_catalog
# approval_sqlite approval_postgres metrics.  The build stage makes the
# Debian packages (cpack, one per plugin); the runtime stage installs the
# host's and the chosen plugins' packages with apt, so it gets exactly their
# library dependencies (libcurl only with backend_docker, backend_k8s,
# audit_siem or metrics; libsqlite3 with approval_sqlite; libpq with
# approval_postgres).  For Kubernetes see configs/k8s/Dockerfile.
# EXTRA_PACKAGES: more Debian packages for the runtime image, e.g. the
# interpreters scripts use ("python3 ruby"); bash is in the base image.
#
# The image reads /etc/script-executor/config.yaml: packaging/config.yaml,
# written for the default PLUGINS.  With other plugins, mount a config that
# loads them (-v ./my.yaml:/etc/script-executor/config.yaml:ro).

ARG PLUGINS="script_run backend_native audit_file"

FROM debian:12 AS build
ARG PLUGINS
RUN set -eu; \
    dev="build-essential cmake pkg-config file libnng-dev libyaml-dev libcjson-dev libssl-dev"; \
    case " $PLUGINS " in *" backend_docker "*|*" backend_k8s "*|*" audit_siem "*|*" metrics "*) \
      dev="$dev libcurl4-openssl-dev" ;; esac; \
    case " $PLUGINS " in *" approval_sqlite "*) dev="$dev libsqlite3-dev" ;; esac; \
    case " $PLUGINS " in *" approval_postgres "*) dev="$dev libpq-dev" ;; esac; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $dev; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN set -eu; \
    known=$(sed -n 's/^option(SX_PLUGIN_\([A-Z0-9_]*\) .*/\1/p' plugins/CMakeLists.txt | tr 'A-Z' 'a-z'); \
    known=$(echo $known); \
    [ -n "$(echo $PLUGINS)" ] || { echo "PLUGINS is empty" >&2; exit 1; }; \
    for p in $PLUGINS; do \
      case " $known " in *" $p "*) ;; \
        *) echo "unknown plugin '$p' in PLUGINS (known: $known)" >&2; exit 1 ;; esac; \
    done; \
    opts=""; \
    for p in $known; do \
      case " $PLUGINS " in *" $p "*) on=ON ;; *) on=OFF ;; esac; \
      opts="$opts -DSX_PLUGIN_$(echo "$p" | tr 'a-z' 'A-Z')=$on"; \
    done; \
    echo "plugin options:$opts"; \
    cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
          -DSX_BUILD_TESTS=OFF $opts; \
    cmake --build /build -j"$(nproc)"; \
    cd /build && cpack -G DEB; \
    mkdir /debs; \
    cp packages/script-executor_*.deb /debs/; \
    for p in $PLUGINS; do \
      cp packages/script-executor-plugin-$(echo "$p" | tr '_' '-')_*.deb /debs/; \
    done; \
    ls -l /debs

FROM debian:12
ARG EXTRA_PACKAGES=""
COPY --from=build /debs/ /tmp/debs/
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      /tmp/debs/*.deb $EXTRA_PACKAGES; \
    rm -rf /var/lib/apt/lists/* /tmp/debs; \
    mkdir -p /etc/script-executor /run/script-executor /var/log/script-executor
COPY packaging/config.yaml /etc/script-executor/config.yaml
VOLUME ["/run/script-executor", "/var/log/script-executor"]
HEALTHCHECK --interval=30s --timeout=5s \
  CMD ["sxctl", "--url", "ipc:///run/script-executor/ctl.sock", "--reply-timeout", "3", "health"]
ENTRYPOINT ["script-executor"]
CMD ["--config", "/etc/script-executor/config.yaml"]
