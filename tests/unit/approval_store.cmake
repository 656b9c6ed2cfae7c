# The approval store contract (tests/unit/test_approval_store.c), once per
# store plugin that is built.  Included from tests/CMakeLists.txt.
function(sx_approval_store_test plugin type)
  add_executable(test_${plugin} ${CMAKE_CURRENT_LIST_DIR}/test_approval_store.c)
  target_link_libraries(test_${plugin} PRIVATE sx_mock_host sx_host_config sx_sdk sx_sdk_util
    PkgConfig::CHECK PkgConfig::CJSON ${CMAKE_DL_LIBS} Threads::Threads)
  target_compile_definitions(test_${plugin} PRIVATE
    SX_APPROVAL_SO="$<TARGET_FILE:${plugin}>" SX_APPROVAL_TYPE="${type}")
  add_dependencies(test_${plugin} ${plugin})
  add_test(NAME unit_${plugin} COMMAND test_${plugin})
  set_tests_properties(unit_${plugin} PROPERTIES TIMEOUT 300)
endfunction()
if(TARGET approval_sqlite AND TARGET sx_mock_host)
  sx_approval_store_test(approval_sqlite sqlite)
else()
  sx_skip_test(unit_approval_sqlite approval_sqlite)
endif()
if(TARGET approval_postgres AND TARGET sx_mock_host)
  sx_approval_store_test(approval_postgres postgres)
endif()
