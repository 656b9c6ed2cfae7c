# Unit tests of the policy plugin (plugins/policy).  Included from
# tests/CMakeLists.txt: include(unit/policy.cmake)
#   unit_policy_jwt  jwt.c compiled in: HS256/RS256/ES256 with keys made in
#                    the test (tests/support/test_jwt.c mints the tokens)
#   unit_policy      the real policy.so through its entry point with the mock
#                    host: config, authentication, RBAC, limits, validator

add_library(sx_test_jwt STATIC ${CMAKE_CURRENT_LIST_DIR}/../support/test_jwt.c)
target_include_directories(sx_test_jwt PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../support)
target_link_libraries(sx_test_jwt PUBLIC OpenSSL::Crypto)

add_executable(test_policy_jwt ${CMAKE_CURRENT_LIST_DIR}/test_policy_jwt.c
  ${PROJECT_SOURCE_DIR}/plugins/policy/jwt.c)
target_include_directories(test_policy_jwt PRIVATE ${PROJECT_SOURCE_DIR}/plugins/policy)
target_link_libraries(test_policy_jwt PRIVATE sx_test_jwt sx_sdk sx_sdk_util PkgConfig::CJSON
  PkgConfig::CHECK OpenSSL::Crypto m)
add_test(NAME unit_policy_jwt COMMAND test_policy_jwt)
set_tests_properties(unit_policy_jwt PROPERTIES TIMEOUT 120)

if(NOT TARGET sx_mock_host)
  add_library(sx_mock_host STATIC ${CMAKE_CURRENT_LIST_DIR}/../support/mock_host.c)
  target_include_directories(sx_mock_host PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../support)
  target_link_libraries(sx_mock_host PUBLIC sx_host_config sx_sdk sx_sdk_util Threads::Threads)
endif()
add_executable(test_policy ${CMAKE_CURRENT_LIST_DIR}/test_policy.c)
target_link_libraries(test_policy PRIVATE sx_mock_host sx_test_jwt sx_host_config sx_sdk
  sx_sdk_util PkgConfig::CHECK PkgConfig::CJSON ${CMAKE_DL_LIBS} Threads::Threads)
target_compile_definitions(test_policy PRIVATE SX_POLICY_SO="$<TARGET_FILE:policy>")
add_dependencies(test_policy policy)
add_test(NAME unit_policy COMMAND test_policy)
set_tests_properties(unit_policy PROPERTIES TIMEOUT 120)
