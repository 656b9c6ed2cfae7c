# Unit test of the policy plugin's script scanner
# (plugins/policy/script_scan.c, compiled in so it is tested on its own).
# Included from tests/CMakeLists.txt: include(unit/script_scan.cmake)
add_executable(test_script_scan ${CMAKE_CURRENT_LIST_DIR}/test_script_scan.c
  ${PROJECT_SOURCE_DIR}/plugins/policy/script_scan.c)
target_include_directories(test_script_scan PRIVATE ${PROJECT_SOURCE_DIR}/plugins/policy)
target_link_libraries(test_script_scan PRIVATE PkgConfig::CHECK)
add_test(NAME unit_script_scan COMMAND test_script_scan)
set_tests_properties(unit_script_scan PROPERTIES TIMEOUT 120)
