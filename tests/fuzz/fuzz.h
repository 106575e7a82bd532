/*
 * The libFuzzer entry point, declared for fuzz targets and for the replay
 * driver (replay.c) that runs a target over a corpus without libFuzzer.
 */
#ifndef IBS_TESTS_FUZZ_H
#define IBS_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
