# Debian packages, one per install component (`cd build && cpack -G DEB`):
#
#   component       package                          contents
#   host            script-executor                  bin/script-executor, bin/sxctl
#   sdk             script-executor-sdk              include/sx/*.h, lib/libsx_sdk_util.a,
#                                                    lib/pkgconfig/sx-sdk.pc, lib/cmake/sx-sdk/,
#                                                    share/sx-sdk/plugin.map
#   plugin_<name>   script-executor-plugin-<name>    lib/script-executor/plugins/<name>.so
#                   (underscores become dashes:      (+ sx-native-supervisor for
#                   ...-plugin-backend-native)       backend_native)
#
# Only the plugins that are built (SX_PLUGIN_*) get a package.  Library
# dependencies are computed per package by dpkg-shlibdeps from what each
# binary links (so backend_docker depends on libcurl4 and backend_native
# does not); without dpkg-shlibdeps the lists below are used instead.  Every
# plugin package also depends on the host package of the same version.

set(CPACK_PACKAGE_NAME script-executor)
set(CPACK_PACKAGE_VENDOR "script-executor")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "script-executor maintainers <script-executor@localhost>")
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING IGNORE)          # one package per component
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)        # <name>_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)  # CPACK_COMPONENT_*_DEPENDS -> Depends
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)

find_program(SX_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(SX_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()

# Fallback Depends (used only when dpkg-shlibdeps is missing).
set(_sx_deps_host "libc6, libnng1, libyaml-0-2, libcjson1")
set(_sx_deps_script_run "libc6, libcjson1, libssl3")
set(_sx_deps_backend_native "libc6, libcjson1")
set(_sx_deps_backend_docker "libc6, libcjson1, libcurl4, libssl3")
set(_sx_deps_backend_k8s "libc6, libcjson1, libcurl4, libssl3, libyaml-0-2")
set(_sx_deps_backend_fake "libc6, libcjson1")
set(_sx_deps_audit_file "libc6, libcjson1")
set(_sx_deps_audit_siem "libc6, libcjson1, libcurl4, libssl3")
set(_sx_deps_image_catalog "libc6, libcjson1, libyaml-0-2")
set(_sx_deps_policy "libc6, libcjson1, libssl3")
set(_sx_deps_metrics "libc6, libcjson1, libcurl4")
set(_sx_deps_approval_sqlite "libc6, libcjson1, libsqlite3-0")
set(_sx_deps_approval_postgres "libc6, libcjson1, libpq5")

# host
set(CPACK_COMPONENT_HOST_DISPLAY_NAME "script-executor host and sxctl")
# Descriptions: the first line is the package's summary.
set(CPACK_COMPONENT_HOST_DESCRIPTION "runs the scripts of SRE runbooks safely: host and sxctl
The script-executor host serves steps over nng and loads its plugins from
<prefix>/${SX_INSTALL_PLUGINDIR}; sxctl is its command-line client.
Install the plugins a deployment needs: script-executor-plugin-*.")
set(CPACK_DEBIAN_HOST_PACKAGE_NAME script-executor)
if(NOT SX_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_HOST_PACKAGE_DEPENDS "${_sx_deps_host}")
endif()

# sdk: headers, a static library and build files; no run-time dependency.
set(CPACK_COMPONENT_SDK_DISPLAY_NAME "script-executor plugin SDK")
set(CPACK_COMPONENT_SDK_DESCRIPTION "SDK to build script-executor plugins
Headers, the sx_sdk_util helper library, the pkg-config file sx-sdk and the
CMake package sx-sdk (find_package(sx-sdk)), to build plugins outside the
script-executor source tree.")
set(CPACK_DEBIAN_SDK_PACKAGE_NAME script-executor-sdk)
set(CPACK_DEBIAN_SDK_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_SDK_PACKAGE_SHLIBDEPS OFF)

# one package per built plugin
set(_sx_plugin_summary_script_run "script.run step type")
set(_sx_plugin_summary_backend_native "exec.native backend: scripts as processes on the host")
set(_sx_plugin_summary_backend_docker "exec.docker backend: scripts in containers (Docker Engine API)")
set(_sx_plugin_summary_backend_k8s "exec.kubernetes backend: scripts as Kubernetes Jobs (Kubernetes API)")
set(_sx_plugin_summary_backend_fake "exec.fake backend: a test double")
set(_sx_plugin_summary_audit_file "audit.file sink: durable, hash-chained, rotated JSON lines")
set(_sx_plugin_summary_audit_siem "audit.siem sink: audit records to a SIEM over HTTP(S), spooled on disk")
set(_sx_plugin_summary_image_catalog "image.catalog: image_ref resolution, image defaults, approved/blocked images")
set(_sx_plugin_summary_policy "policy.default: caller identity (JWT, peer uid), RBAC, limits, script validator")
set(_sx_plugin_summary_metrics "metrics.prometheus service: Prometheus /metrics and Pushgateway pushes")
set(_sx_plugin_summary_approval_sqlite "approval.sqlite store: approvals in an SQLite file (one host)")
set(_sx_plugin_summary_approval_postgres "approval.postgres store: approvals in PostgreSQL (host replicas)")
foreach(_p script_run backend_native backend_docker backend_k8s backend_fake audit_file audit_siem policy image_catalog metrics
           approval_sqlite approval_postgres)
  if(NOT TARGET ${_p})
    continue()
  endif()
  string(TOUPPER "PLUGIN_${_p}" _C)
  string(REPLACE "_" "-" _pkg "script-executor-plugin-${_p}")
  set(CPACK_COMPONENT_${_C}_DISPLAY_NAME "plugin ${_p}")
  set(CPACK_COMPONENT_${_C}_DESCRIPTION "script-executor plugin ${_p}
The ${_sx_plugin_summary_${_p}}.
The host loads it when its config lists ${_p} in plugins.load.")
  set(CPACK_COMPONENT_${_C}_DEPENDS host)
  set(CPACK_DEBIAN_${_C}_PACKAGE_NAME ${_pkg})
  if(NOT SX_DPKG_SHLIBDEPS)
    set(CPACK_DEBIAN_${_C}_PACKAGE_DEPENDS "${_sx_deps_${_p}}")
  endif()
endforeach()

include(CPack)
