# Unit test of the Kubernetes REST client of backend_k8s (k8s_api.c,
# k8s_kubeconfig.c, k8s_watch.c, k8s_logs.c), compiled from the plugin's
# sources against a small HTTP server of the test itself: needs neither the
# plugin nor an API server.  Included from tests/CMakeLists.txt:
#   include(unit/k8s_api.cmake)
set(SX_K8S_DIR ${PROJECT_SOURCE_DIR}/plugins/backend_k8s)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl>=7.85)
add_executable(test_k8s_api ${CMAKE_CURRENT_LIST_DIR}/test_k8s_api.c
  ${SX_K8S_DIR}/k8s_api.c ${SX_K8S_DIR}/k8s_kubeconfig.c ${SX_K8S_DIR}/k8s_watch.c
  ${SX_K8S_DIR}/k8s_logs.c)
target_include_directories(test_k8s_api PRIVATE ${SX_K8S_DIR})
target_link_libraries(test_k8s_api PRIVATE sx_sdk sx_sdk_util PkgConfig::CJSON PkgConfig::CURL
  PkgConfig::YAML PkgConfig::CHECK Threads::Threads)
add_test(NAME unit_k8s_api COMMAND test_k8s_api)
set_tests_properties(unit_k8s_api PROPERTIES TIMEOUT 120)
