# Interoperability with the AWS SDK for JavaScript, included from
# tests/CMakeLists.txt: providers/aws/sigv4 against the SDK's signer
# (@smithy/signature-v4), and `ibsync emulator` against the SDK's Image
# Builder client (@aws-sdk/client-imagebuilder).
# Registered only when node is installed. The Node.js dependencies are not
# vendored: tests/interop/setup.sh installs them with `npm ci`, and without
# them the test fails with a message saying so rather than passing.
find_program(IBS_NODE node)
if(IBS_NODE)
  add_executable(sigv4_interop ${CMAKE_CURRENT_LIST_DIR}/sigv4_interop.c)
  target_link_libraries(sigv4_interop PRIVATE ibs_providers ibs_api ibs_util PkgConfig::CJSON)
  add_test(NAME interop/sigv4
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:sigv4_interop> ${IBS_NODE})
  set_tests_properties(interop/sigv4 PROPERTIES TIMEOUT 120)
  add_test(NAME interop/sdk
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run-sdk.sh $<TARGET_FILE:ibsync> ${IBS_NODE})
  set_tests_properties(interop/sdk PROPERTIES TIMEOUT 300)
endif()
