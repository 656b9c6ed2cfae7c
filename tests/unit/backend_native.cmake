# Unit test of the backend_native plugin (plugins/backend_native): drives the
# real .so through dlopen + sx_plugin_entry with the mock host of
# tests/support.  Included from tests/CMakeLists.txt:
#   include(unit/backend_native.cmake)

# sx_host_config (host/CMakeLists.txt) backs the mock host's config_* functions.

# The test stand-in for the host API, shareable by other plugin tests.
add_library(sx_mock_host STATIC ${CMAKE_CURRENT_LIST_DIR}/../support/mock_host.c)
target_include_directories(sx_mock_host PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../support)
target_link_libraries(sx_mock_host PUBLIC sx_host_config sx_sdk sx_sdk_util Threads::Threads)

add_executable(test_backend_native ${CMAKE_CURRENT_LIST_DIR}/test_backend_native.c)
target_link_libraries(test_backend_native PRIVATE
  sx_mock_host sx_host_config sx_sdk sx_sdk_util
  PkgConfig::CHECK PkgConfig::CJSON ${CMAKE_DL_LIBS} Threads::Threads)
target_compile_definitions(test_backend_native PRIVATE
  SX_BACKEND_NATIVE_SO="$<TARGET_FILE:backend_native>"
  SX_NATIVE_SUPERVISOR="$<TARGET_FILE:sx-native-supervisor>")
add_dependencies(test_backend_native backend_native sx-native-supervisor)
add_test(NAME unit_backend_native COMMAND test_backend_native)
set_tests_properties(unit_backend_native PROPERTIES TIMEOUT 300)
