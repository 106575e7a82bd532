# Smoke test of the benchmark harness (include() this file from
# tests/CMakeLists.txt): bench/plan.sh on a small stack against
# `ibsync emulator`, checking that it runs and reports every figure; not a
# performance test. Its baseline runs the AWS SDK for JavaScript, so it is
# registered only when node is installed (the SDK comes from
# tests/interop/setup.sh, as for interop/sdk).
find_program(IBS_NODE node)
if(IBS_NODE)
  add_test(NAME scenario/bench_smoke
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/bench_smoke.sh $<TARGET_FILE:ibsync>
                   ${CMAKE_SOURCE_DIR})
  set_tests_properties(scenario/bench_smoke PROPERTIES TIMEOUT 120)
endif()
