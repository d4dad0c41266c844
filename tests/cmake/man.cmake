# The manual pages and bash completions against the programs' --help and configuration parsers.
if(TARGET man-pages)
  set(mcimd_rendered_man ${CMAKE_BINARY_DIR}/docs/man)
else()
  set(mcimd_rendered_man -)  # MCIMD_MAN=OFF: the sources are still checked, nothing rendered
endif()
add_test(NAME man_pages_and_completions_match_the_programs
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/man/check_docs.sh ${CMAKE_SOURCE_DIR} ${mcimd_rendered_man}
                 $<TARGET_FILE:mcimd> $<TARGET_FILE:mcimctl> $<TARGET_FILE:mcim-operator> $<TARGET_FILE:mcimd-agent>)
set_tests_properties(man_pages_and_completions_match_the_programs PROPERTIES LABELS unit TIMEOUT 120)
