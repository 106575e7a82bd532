#!/usr/bin/env bash
# Builds ibsync and runs the whole test suite (unit, CLI, scenario, fuzz
# corpus replay, interop) with ctest.
#   scripts/test.sh              warnings as errors, build dir build/
#   scripts/test.sh --sanitize   the same under ASan+UBSan, build dir build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
extra=()
if [ "${1:-}" = "--sanitize" ]; then
    build=build-asan
    extra=(-DIBS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

if [ -x tests/interop/setup.sh ]; then
    tests/interop/setup.sh
fi

cmake -S . -B "$build" -G Ninja -DIBS_WERROR=ON "${extra[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j "$(nproc)"
