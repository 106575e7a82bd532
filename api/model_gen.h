/*
 * The tables that tools/gen_api.py generates into api/model_gen.c. Private to
 * api/: other modules use the lookups in api/api.h.
 */
#ifndef IBS_API_MODEL_GEN_H
#define IBS_API_MODEL_GEN_H

#include "api/api.h"

#include <stddef.h>

/* Operations, sorted by name (strcmp order). */
extern const struct ibs_api_operation ibs_api_gen_operations[];
extern const size_t ibs_api_gen_noperations;

/* Every shape, sorted by name (strcmp order). */
extern const struct ibs_api_shape *const ibs_api_gen_shapes[];
extern const size_t ibs_api_gen_nshapes;

/* Every error code of the reference with its HTTP status, sorted by code. */
extern const struct ibs_api_error ibs_api_gen_errors[];
extern const size_t ibs_api_gen_nerrors;

#endif
