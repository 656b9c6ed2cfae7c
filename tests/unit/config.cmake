# Unit test of the host's YAML config module (host/config.c).
# Included from tests/CMakeLists.txt: include(unit/config.cmake)

# sx_host_config is defined by host/CMakeLists.txt.
add_executable(test_config ${CMAKE_CURRENT_LIST_DIR}/test_config.c)
target_link_libraries(test_config PRIVATE sx_host_config PkgConfig::CHECK)
add_test(NAME unit_config COMMAND test_config)
