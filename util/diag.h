/*
 * Diagnostics: validation collects every problem instead of stopping at the
 * first, then reports them sorted by file and line as
 *
 *     file:line:col: error: member.path: message
 *
 * A struct ibs_diags owns copies of all strings it is given.
 */
#ifndef IBS_UTIL_DIAG_H
#define IBS_UTIL_DIAG_H

#include "util/buf.h"
#include "util/value.h"

#include <stdarg.h>

#include <stddef.h>

enum ibs_severity {
    IBS_SEV_ERROR,
    IBS_SEV_WARNING,
};

struct ibs_diag {
    enum ibs_severity severity;
    char *file;    /* may be NULL */
    unsigned line; /* 0 when unknown */
    unsigned col;
    char *path; /* member path such as "spec.distributions[0].region"; may be NULL */
    char *message;
};

struct ibs_diags {
    struct ibs_diag *items;
    size_t count;
    size_t cap;
    size_t errors;  /* how many items are errors */
    size_t limit;   /* stop recording after this many (0: default of 1000) */
    size_t dropped; /* diagnostics not recorded because of the limit */
};

void ibs_diag_init(struct ibs_diags *d);
void ibs_diag_release(struct ibs_diags *d);

/*
 * Records a diagnostic at `loc` (may be NULL) for member `path` (may be NULL).
 * Returns 0, or IBS_ENOMEM.
 */
int ibs_diag_add(struct ibs_diags *d, enum ibs_severity sev, const struct ibs_loc *loc,
                 const char *path, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int ibs_diag_vadd(struct ibs_diags *d, enum ibs_severity sev, const struct ibs_loc *loc,
                  const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/* Sorts by file, line, column, then message (stable for equal keys). */
void ibs_diag_sort(struct ibs_diags *d);

/* Appends one diagnostic, formatted as in the header comment, without newline. */
int ibs_diag_format(struct ibs_buf *out, const struct ibs_diag *diag);

/* Appends every diagnostic, one per line. */
int ibs_diag_format_all(struct ibs_buf *out, const struct ibs_diags *d);

#endif
