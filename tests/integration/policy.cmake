# The policy pipeline through the real host over nng (tests/integration/
# test_policy.c): JWT and peer-uid identity, RBAC, limits, the script
# validator.  Included from tests/CMakeLists.txt after unit/policy.cmake
# (which defines sx_test_jwt).
sx_have_plugins(have script_run backend_native audit_file policy)
if(have AND TARGET sx_test_jwt)
  add_executable(test_policy_integration ${CMAKE_CURRENT_LIST_DIR}/test_policy.c
    ${CMAKE_CURRENT_LIST_DIR}/host_harness.c)
  target_include_directories(test_policy_integration PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(test_policy_integration PRIVATE sx_test_jwt nng::nng PkgConfig::CJSON
    PkgConfig::CHECK Threads::Threads)
  target_compile_definitions(test_policy_integration PRIVATE
    SX_HOST_BIN="$<TARGET_FILE:script-executor>"
    SX_PLUGIN_DIR="${SX_PLUGIN_OUTPUT_DIR}"
    SX_FIXTURE_DIR="${SX_FIXTURE_DIR}")
  add_dependencies(test_policy_integration script-executor script_run backend_native audit_file
    policy)
  add_test(NAME integration_policy COMMAND test_policy_integration)
  set_tests_properties(integration_policy PROPERTIES TIMEOUT 300)
else()
  sx_skip_test(integration_policy ${have_MISSING})
endif()
