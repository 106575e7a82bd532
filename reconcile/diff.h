/*
 * Field-level differences between desired and live values.
 *
 * Only what the desired state declares is compared: members the service fills
 * in (defaults, dates, ARNs) are not drift. Lists of scalars compare as
 * multisets (the service may return them reordered); lists of maps compare
 * item by item in order (component order in a recipe matters). Scalars
 * compare by value, a string and a number by their text.
 */
#ifndef IBS_RECONCILE_DIFF_H
#define IBS_RECONCILE_DIFF_H

#include "util/value.h"
#include "util/vec.h"

struct ibs_field_diff {
    char *path;               /* "distributions[0].region" */
    struct ibs_value *before; /* live value, NULL when absent */
    struct ibs_value *after;  /* desired value, NULL when removed */
};

/*
 * Appends to `out` (struct ibs_field_diff *, owned by the caller: free with
 * ibs_diff_free) one entry per differing declared member of `desired`
 * against `live`. `path` prefixes the paths ("" for none).
 */
int ibs_diff_declared(struct ibs_vec *out, const struct ibs_value *desired,
                      const struct ibs_value *live, const char *path);

/*
 * Appends every difference between two complete values (both sides
 * authoritative: members missing on one side are reported), for showing how
 * a new version differs from the current one.
 */
int ibs_diff_full(struct ibs_vec *out, const struct ibs_value *before,
                  const struct ibs_value *after, const char *path);

void ibs_diff_free(struct ibs_field_diff *d);
/* Frees every entry and the vector's array. */
void ibs_diff_release_all(struct ibs_vec *diffs);

#endif
