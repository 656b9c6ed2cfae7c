# Unit tests of the audit trail (issue 7).  Included from tests/CMakeLists.txt:
#   include(unit/audit.cmake)
#
# unit_audit_chain: the hash chain and its verifier (plugins/audit_common)
# and the audit_file plugin, driven through dlopen with the mock host.
# unit_siem_spool: audit_siem's on-disk spool, compiled from its source.
if(TARGET audit_file)
  add_executable(test_audit_chain ${CMAKE_CURRENT_LIST_DIR}/test_audit_chain.c
    ${CMAKE_CURRENT_LIST_DIR}/../support/mock_host.c)
  target_include_directories(test_audit_chain PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../support)
  target_link_libraries(test_audit_chain PRIVATE sx_audit_common sx_host_config sx_sdk
    sx_sdk_util PkgConfig::CHECK PkgConfig::CJSON OpenSSL::Crypto ${CMAKE_DL_LIBS}
    Threads::Threads)
  target_compile_definitions(test_audit_chain PRIVATE
    SX_AUDIT_FILE_SO="$<TARGET_FILE:audit_file>")
  add_dependencies(test_audit_chain audit_file)
  add_test(NAME unit_audit_chain COMMAND test_audit_chain)
  set_tests_properties(unit_audit_chain PROPERTIES TIMEOUT 300)
else()
  sx_skip_test(unit_audit_chain audit_file)
endif()

if(TARGET audit_siem)
  add_executable(test_siem_spool ${CMAKE_CURRENT_LIST_DIR}/test_siem_spool.c
    ${PROJECT_SOURCE_DIR}/plugins/audit_siem/siem_spool.c)
  target_include_directories(test_siem_spool PRIVATE ${PROJECT_SOURCE_DIR}/plugins/audit_siem)
  target_link_libraries(test_siem_spool PRIVATE sx_audit_common sx_sdk sx_sdk_util
    PkgConfig::CHECK Threads::Threads)
  add_test(NAME unit_siem_spool COMMAND test_siem_spool)
  set_tests_properties(unit_siem_spool PROPERTIES TIMEOUT 300)
else()
  sx_skip_test(unit_siem_spool audit_siem)
endif()
