# Unit test of the host's YAML config module (host/config.c).
# Included from tests/CMakeLists.txt: include(unit/config.cmake)

# host/CMakeLists.txt may already define the library; define it here only
# when it does not, so the test builds either way.
if(NOT TARGET sx_host_config)
  add_library(sx_host_config STATIC ${PROJECT_SOURCE_DIR}/host/config.c)
  target_include_directories(sx_host_config PUBLIC ${PROJECT_SOURCE_DIR}/host)
  target_link_libraries(sx_host_config PUBLIC sx_sdk sx_sdk_util PkgConfig::YAML)
endif()

add_executable(test_config ${CMAKE_CURRENT_LIST_DIR}/test_config.c)
target_link_libraries(test_config PRIVATE sx_host_config PkgConfig::CHECK)
add_test(NAME unit_config COMMAND test_config)
