# Usage scenarios (include() this file from tests/CMakeLists.txt): the CI
# examples (examples/ci/), the Kubernetes manifests (deploy/kubernetes/) and
# the shell snippets of README-usage.md and docs/, run as they are, against
# `ibsync emulator` and local stand-ins for STS, GitLab, a git server and a
# Pushgateway (tests/usage/README.md). Each gets the ibsync binary and the
# source directory. They need node and npm (tests/usage/setup.sh runs
# `npm ci` the first time), python3, git and curl, and usage_k8s needs root
# (it runs the pod in mount namespaces): missing any of these fails the test
# with a message saying so; none is skipped.
foreach(name usage_ci usage_k8s)
  add_test(NAME scenario/${name}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${name}.sh $<TARGET_FILE:ibsync> ${CMAKE_SOURCE_DIR})
  set_tests_properties(scenario/${name} PROPERTIES TIMEOUT 300)
endforeach()
