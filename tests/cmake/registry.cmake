# operator registry: every test against SQLite and against a private PostgreSQL server started
# from Debian's postgresql package (tests/support/postgres), so neither backend goes untested.
add_library(mcimd-test-postgres STATIC ${CMAKE_CURRENT_SOURCE_DIR}/support/postgres.cpp)
target_link_libraries(mcimd-test-postgres PUBLIC mcimd-test-support)

pkg_check_modules(REGISTRY_TEST_TSS2MU REQUIRED IMPORTED_TARGET tss2-mu)
add_executable(operator_registry_test unit/operator_registry_test.cpp)
target_link_libraries(operator_registry_test PRIVATE mcimd-test-postgres mcimd-operator-lib GTest::gtest_main
                                                     PkgConfig::REGISTRY_TEST_TSS2MU OpenSSL::Crypto)
add_dependencies(operator_registry_test mcim-operator)
gtest_discover_tests(operator_registry_test DISCOVERY_MODE PRE_TEST PROPERTIES TIMEOUT 300)
# Unit tests (no TPM, no bus) with a label of their own, since each PostgreSQL case starts a
# server: `ctest -L postgresql`. gtest_discover_tests splits a property's list into separate
# arguments, so both labels are set by a file CTest reads after the discovered test list.
set(registry_test_labels "${CMAKE_CURRENT_BINARY_DIR}/operator_registry_test_labels.cmake")
file(WRITE "${registry_test_labels}"
     "if(DEFINED operator_registry_test_TESTS)\n"
     "  set_tests_properties(\${operator_registry_test_TESTS} PROPERTIES LABELS \"unit;postgresql\")\n"
     "endif()\n")
set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${registry_test_labels}")
