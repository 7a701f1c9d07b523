# Warnings every squadron target compiles with; applied by squadron_target().
add_library(squadron_warnings INTERFACE)
target_compile_options(squadron_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
  -Wnull-dereference -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 reports false positives inside Asio's coroutine machinery and std::string SSO code.
  target_compile_options(squadron_warnings INTERFACE -Wno-maybe-uninitialized -Wno-restrict
    -Wno-array-bounds -Wno-stringop-overflow -Wno-null-dereference)
endif()

# Unit tests live beside the code: squadron_unit_test(name src...) builds one gtest binary
# labelled "unit" (run under ASan+UBSan in CI).
function(squadron_unit_test name)
  if(NOT SQUADRON_TESTS)
    return()
  endif()
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE GTest::gtest_main GTest::gmock squadron_warnings)
  gtest_discover_tests(${name} PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
endfunction()
