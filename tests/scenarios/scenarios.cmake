# Scenario tests of `ibsync emulator` as a process (include() this file from
# tests/CMakeLists.txt): each tests/scenarios/emulator_*.sh gets the ibsync
# binary and emulator_client, a small libcurl client that signs with
# ibsync's SigV4 signer (also used by bench/emulator.sh).
add_executable(emulator_client ${CMAKE_CURRENT_LIST_DIR}/emulator_client.c)
target_link_libraries(emulator_client PRIVATE ibs_providers ibs_api ibs_util PkgConfig::CURL
                      Threads::Threads)

file(GLOB IBS_SCENARIO_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/emulator_*.sh)
foreach(script ${IBS_SCENARIO_TESTS})
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME scenario/${name}
           COMMAND bash ${script} $<TARGET_FILE:ibsync> $<TARGET_FILE:emulator_client>)
  set_tests_properties(scenario/${name} PROPERTIES TIMEOUT 120)
endforeach()
