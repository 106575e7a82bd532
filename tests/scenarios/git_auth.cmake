# Git authentication scenario (include() this file from tests/CMakeLists.txt):
# smart HTTP with a token and SSH with keys and known_hosts, against servers
# the script starts on loopback (python3, git http-backend, sshd from
# openssh-server). Exit status 77 means the SSH part was skipped (no sshd).
add_test(NAME scenario/git_auth
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/git_auth.sh $<TARGET_FILE:ibsync> ${CMAKE_SOURCE_DIR})
set_tests_properties(scenario/git_auth PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)
