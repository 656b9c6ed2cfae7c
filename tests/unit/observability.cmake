# Unit tests of the host's HTTP server, route table and bus subscriptions
# (linked against the host's static library), and of the metrics plugin's
# registry, text format and event collector (compiled from its sources).
# Included from tests/CMakeLists.txt:  include(unit/observability.cmake)
foreach(t http_routes http_server subscriptions)
  add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE sx_host_core PkgConfig::CHECK)
  add_test(NAME unit_${t} COMMAND test_${t})
  set_tests_properties(unit_${t} PROPERTIES TIMEOUT 120)
endforeach()

if(TARGET metrics)
  set(_sx_metrics_dir ${PROJECT_SOURCE_DIR}/plugins/metrics)
  add_executable(test_metrics_text ${CMAKE_CURRENT_LIST_DIR}/test_metrics_text.c
    ${_sx_metrics_dir}/prom.c ${_sx_metrics_dir}/collector.c)
  target_include_directories(test_metrics_text PRIVATE ${_sx_metrics_dir})
  target_link_libraries(test_metrics_text PRIVATE sx_sdk PkgConfig::CJSON PkgConfig::CHECK
    Threads::Threads m)
  add_test(NAME unit_metrics_text COMMAND test_metrics_text)
else()
  sx_skip_test(unit_metrics_text metrics)
endif()
