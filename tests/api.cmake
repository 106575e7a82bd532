# api/: the generated tables in api/model_gen.c must be what tools/gen_api.py
# makes of api/data/ (include() this file from tests/CMakeLists.txt).
find_program(IBS_PYTHON3 NAMES python3 REQUIRED)
add_test(NAME api/generated-up-to-date
         COMMAND ${IBS_PYTHON3} ${CMAKE_SOURCE_DIR}/tools/gen_api.py --check
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(api/generated-up-to-date PROPERTIES TIMEOUT 120)
