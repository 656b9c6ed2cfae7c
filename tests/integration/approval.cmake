# The approval workflow through the real host (tests/integration/
# test_approval.c): nng + the HTTP API, JWT callers, both approval stores
# (approval_postgres against $SX_TEST_PG_DSN, tools/pg-env.sh).  Included
# from tests/CMakeLists.txt after unit/policy.cmake (sx_test_jwt).
sx_have_plugins(have script_run backend_native audit_file policy approval_sqlite approval_postgres)
if(have AND TARGET sx_test_jwt)
  add_executable(test_approval_integration ${CMAKE_CURRENT_LIST_DIR}/test_approval.c
    ${CMAKE_CURRENT_LIST_DIR}/host_harness.c)
  target_include_directories(test_approval_integration PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(test_approval_integration PRIVATE sx_test_jwt sx_tools_client nng::nng
    PkgConfig::CJSON PkgConfig::CHECK Threads::Threads)
  target_compile_definitions(test_approval_integration PRIVATE
    SX_HOST_BIN="$<TARGET_FILE:script-executor>"
    SX_SXCTL_BIN="$<TARGET_FILE:sxctl>"
    SX_PLUGIN_DIR="${SX_PLUGIN_OUTPUT_DIR}"
    SX_FIXTURE_DIR="${SX_FIXTURE_DIR}")
  add_dependencies(test_approval_integration script-executor sxctl script_run backend_native
    audit_file policy approval_sqlite approval_postgres)
  add_test(NAME integration_approval COMMAND test_approval_integration)
  set_tests_properties(integration_approval PROPERTIES TIMEOUT 600)
else()
  sx_skip_test(integration_approval ${have_MISSING})
endif()
