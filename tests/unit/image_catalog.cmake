# Unit test of the image_catalog plugin (plugins/image_catalog): its modules
# compiled in, and the real .so driven through dlopen with the mock host of
# tests/support (compiled in here, so the test does not depend on other
# plugins' tests).  Included from tests/CMakeLists.txt:
#   include(unit/image_catalog.cmake)

set(SX_IMG_DIR ${PROJECT_SOURCE_DIR}/plugins/image_catalog)
add_executable(test_image_catalog ${CMAKE_CURRENT_LIST_DIR}/test_image_catalog.c
  ${CMAKE_CURRENT_LIST_DIR}/../support/mock_host.c
  ${SX_IMG_DIR}/img_catalog.c
  ${SX_IMG_DIR}/img_glob.c
  ${SX_IMG_DIR}/img_name.c
  ${SX_IMG_DIR}/img_rules.c
  ${SX_IMG_DIR}/img_store.c
  ${SX_IMG_DIR}/img_watch.c)
target_include_directories(test_image_catalog PRIVATE ${SX_IMG_DIR}
  ${CMAKE_CURRENT_LIST_DIR}/../support)
target_link_libraries(test_image_catalog PRIVATE sx_host_config sx_sdk sx_sdk_util
  PkgConfig::CHECK PkgConfig::CJSON ${CMAKE_DL_LIBS} Threads::Threads)
target_compile_definitions(test_image_catalog PRIVATE
  SX_IMAGE_CATALOG_SO="$<TARGET_FILE:image_catalog>"
  SX_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_image_catalog image_catalog)
add_test(NAME unit_image_catalog COMMAND test_image_catalog)
set_tests_properties(unit_image_catalog PROPERTIES TIMEOUT 300)
