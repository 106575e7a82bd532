/*
 * JSON text ↔ ibs_value (cJSON stays inside util/json.c). Used for API
 * bodies, plan files, journals and caches.
 */
#ifndef IBS_UTIL_JSON_H
#define IBS_UTIL_JSON_H

#include "util/buf.h"
#include "util/value.h"

#include <stddef.h>

enum {
    IBS_JSON_PRETTY = 1 << 0, /* indented, one member per line */
    IBS_JSON_SORTED = 1 << 1, /* map members sorted by key (canonical form) */
};

/*
 * Parses one JSON value from `text` (`len` bytes). On success *out is a new
 * value owned by the caller. On failure returns IBS_EINVALID with the error
 * message naming the byte offset (and line) of the problem; *out is NULL.
 * Integers that fit int64 become IBS_VALUE_INT, other numbers
 * IBS_VALUE_FLOAT.
 */
int ibs_json_parse(struct ibs_value **out, const char *text, size_t len);

/* Appends `v` as JSON to `out`. Non-finite floats are written as null. */
int ibs_json_write(struct ibs_buf *out, const struct ibs_value *v, unsigned flags);

#endif
