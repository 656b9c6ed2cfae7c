# Unit test of the Docker backend's internal modules (plugins/backend_docker):
# the ustar writer, the attach-stream demultiplexer, image references and
# registry credentials, the local secret/configmap store, and the masking of
# secret values in output.  Compiled from
# the plugin's sources, so it needs neither the plugin nor a Docker Engine;
# the tar tests run the system `tar`.  Included from tests/CMakeLists.txt:
#   include(unit/docker_modules.cmake)

set(SX_DOCKER_MODULES_DIR ${PROJECT_SOURCE_DIR}/plugins/backend_docker)
add_executable(test_docker_modules ${CMAKE_CURRENT_LIST_DIR}/test_docker_modules.c
  ${SX_DOCKER_MODULES_DIR}/docker_tar.c
  ${SX_DOCKER_MODULES_DIR}/docker_stream.c
  ${SX_DOCKER_MODULES_DIR}/docker_image.c
  ${PROJECT_SOURCE_DIR}/plugins/common/output_mask.c
  ${SX_DOCKER_MODULES_DIR}/local_store.c)
target_include_directories(test_docker_modules PRIVATE ${SX_DOCKER_MODULES_DIR}
  ${PROJECT_SOURCE_DIR}/plugins/common)
target_link_libraries(test_docker_modules PRIVATE sx_sdk sx_sdk_util PkgConfig::CJSON
  PkgConfig::CHECK OpenSSL::Crypto)
add_test(NAME unit_docker_modules COMMAND test_docker_modules)
set_tests_properties(unit_docker_modules PROPERTIES TIMEOUT 300)
