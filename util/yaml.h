/*
 * YAML stream → ibs_value documents (libfyaml stays inside util/yaml.c).
 *
 * Built for hostile input: nesting depth, total node count (which bounds
 * alias expansion, so "billion laughs" documents fail fast), scalar size and
 * input size are limited; invalid UTF-8, NUL bytes and syntax errors become
 * diagnostics at their line and column, never crashes.
 *
 * Plain scalars are typed with the YAML 1.2 core schema (null, true/false,
 * integers, floats, else string); quoted and block scalars are strings.
 * `str` keeps the scalar text as written, so callers that expect a string can
 * still take `1.10` as the text "1.10".
 */
#ifndef IBS_UTIL_YAML_H
#define IBS_UTIL_YAML_H

#include "util/diag.h"
#include "util/value.h"
#include "util/vec.h"

#include <stddef.h>

struct ibs_yaml_limits {
    size_t max_depth;  /* nesting of sequences/mappings; default 128 */
    size_t max_nodes;  /* nodes per stream, counting alias expansions; default 2,000,000 */
    size_t max_scalar; /* bytes per scalar; default 16 MiB */
    size_t max_input;  /* bytes of input; default 64 MiB */
};

/* Fills `limits` with the defaults above. */
void ibs_yaml_limits_init(struct ibs_yaml_limits *limits);

/*
 * Parses every document of the YAML stream `data` (`len` bytes, need not be
 * NUL-terminated) and appends one struct ibs_value * per document to `out`
 * (the caller owns them: free each with ibs_value_free()). An empty document
 * (e.g. a lone `---`) yields a NULL-typed value. `file` names the input in
 * locations and diagnostics; it is borrowed and must outlive the values.
 * `limits` may be NULL for the defaults.
 *
 * Problems (syntax errors, duplicate mapping keys, unsupported tags, limits
 * exceeded, invalid UTF-8) are added to `diags` as errors at their position.
 * Returns 0 when the stream was parsed without error, IBS_EINVALID when at
 * least one diagnostic was added (documents parsed before the error are still
 * appended to `out`), IBS_ENOMEM on allocation failure.
 */
int ibs_yaml_parse(struct ibs_vec *out, struct ibs_diags *diags, const char *file, const char *data,
                   size_t len, const struct ibs_yaml_limits *limits);

/*
 * Appends `v` to `out` as block-style YAML (keys in map order, strings
 * quoted where YAML would otherwise retype them, multi-line strings as
 * literal blocks). Used to show values in plans.
 */
int ibs_yaml_emit(struct ibs_buf *out, const struct ibs_value *v);

#endif
