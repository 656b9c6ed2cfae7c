# integration_metrics: the metrics plugin, HTTP probes and structured logs
# through the real host (tests/integration/test_metrics.c).  Needs promtool
# (Debian's prometheus package, tools/install-deps.sh) and, for its Docker
# readiness case, the Docker engine (tools/docker-env.sh).
# Included from tests/CMakeLists.txt:  include(integration/metrics.cmake)
sx_have_plugins(have script_run backend_native backend_fake audit_file metrics backend_docker)
if(have)
  pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
  add_executable(test_metrics ${CMAKE_CURRENT_LIST_DIR}/test_metrics.c
    ${CMAKE_CURRENT_LIST_DIR}/host_harness.c)
  target_link_libraries(test_metrics PRIVATE nng::nng PkgConfig::CJSON PkgConfig::CHECK
    PkgConfig::CURL Threads::Threads)
  target_compile_definitions(test_metrics PRIVATE
    SX_HOST_BIN="$<TARGET_FILE:script-executor>"
    SX_PLUGIN_DIR="${SX_PLUGIN_OUTPUT_DIR}"
    SX_FIXTURE_DIR="${SX_FIXTURE_DIR}")
  add_dependencies(test_metrics script-executor script_run backend_native backend_fake
    audit_file metrics backend_docker)
  add_test(NAME integration_metrics COMMAND test_metrics)
  set_tests_properties(integration_metrics PROPERTIES TIMEOUT 600)
else()
  sx_skip_test(integration_metrics ${have_MISSING})
endif()
