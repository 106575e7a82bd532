/*
 * Private to state/source*.c: the backend table behind struct ibs_source.
 *
 * A backend allocates a struct that starts with a struct ibs_source, fills
 * in `ops` and the common strings, and implements list/read/free. The
 * generic entry points in source.c normalise paths, sort listings and free
 * the common strings, so backends only deal with their storage.
 */
#ifndef IBS_STATE_SOURCE_BACKEND_H
#define IBS_STATE_SOURCE_BACKEND_H

#include "state/source.h"

struct ibs_source_ops {
    const char *kind; /* "dir", "git" */
    /*
     * Appends heap strings (root-relative paths, any order) to `out`. On
     * failure the caller frees whatever was appended.
     */
    int (*list)(struct ibs_vec *out, struct ibs_source *src);
    /* As ibs_source_read; `path` is already normalised (may be ""). */
    int (*read)(char **out, size_t *out_len, struct ibs_source *src, const char *path,
                size_t max_size);
    /* Frees the backend's own data and the struct itself (not the common strings). */
    void (*free)(struct ibs_source *src);
};

struct ibs_source {
    const struct ibs_source_ops *ops;
    char *commit;      /* 40 hex, or NULL */
    char *name;        /* never NULL once opened */
    char *description; /* never NULL once opened; free of credentials */
};

/* strdup() that records IBS_ENOMEM; sets *out to NULL on failure. */
int ibs_source_strdup(char **out, const char *s);

/* The error for a file larger than the limit (same wording for all backends). */
int ibs_source_too_big(const char *path, unsigned long long size, size_t max_size);

#endif
