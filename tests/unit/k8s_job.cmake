# Unit test of the Kubernetes backend's pure parts (plugins/backend_k8s): the
# executor options and their layering over the config's sections, the Job and
# Secret builder for every parameter and refusal, the API-acceptance checks.
# Compiled from the plugin's sources with the mock host (its config functions
# are the host's real config module).  The Jobs are checked with the offline
# validator ../shared/k8s/validate-job (python3 + python3-jsonschema); a
# missing validator fails the test, it is never skipped.  Included from
# tests/CMakeLists.txt:
#   include(unit/k8s_job.cmake)

set(SX_K8S_DIR ${PROJECT_SOURCE_DIR}/plugins/backend_k8s)
set(SX_VALIDATE_JOB "${PROJECT_SOURCE_DIR}/../shared/k8s/validate-job" CACHE FILEPATH
  "the offline Job validator (validate-job of the shared k8s directory)")
if(NOT TARGET sx_mock_host)
  add_library(sx_mock_host STATIC ${CMAKE_CURRENT_LIST_DIR}/../support/mock_host.c)
  target_include_directories(sx_mock_host PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../support)
  target_link_libraries(sx_mock_host PUBLIC sx_host_config sx_sdk sx_sdk_util Threads::Threads)
endif()
add_executable(test_k8s_job ${CMAKE_CURRENT_LIST_DIR}/test_k8s_job.c
  ${SX_K8S_DIR}/k8s_job.c
  ${SX_K8S_DIR}/k8s_options.c
  ${SX_K8S_DIR}/k8s_validate.c)
target_include_directories(test_k8s_job PRIVATE ${SX_K8S_DIR})
target_link_libraries(test_k8s_job PRIVATE sx_mock_host sx_host_config sx_sdk sx_sdk_util
  PkgConfig::CJSON PkgConfig::CHECK OpenSSL::Crypto Threads::Threads m)
target_compile_definitions(test_k8s_job PRIVATE SX_VALIDATE_JOB="${SX_VALIDATE_JOB}")
add_test(NAME unit_k8s_job COMMAND test_k8s_job)
set_tests_properties(unit_k8s_job PROPERTIES TIMEOUT 300)
