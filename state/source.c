/*
 * The generic half of desired-state sources: path normalisation (pure string
 * logic, shared by every backend and by the loader for relative includes),
 * and the entry points that dispatch to a backend table (source_backend.h).
 *
 * Paths handed to backends are always normalised here first, so a backend
 * never sees "..", "." or duplicate slashes and cannot be tricked into
 * leaving its root by the path syntax alone (symbolic links are the
 * backends' business).
 */
#include "state/source_backend.h"

#include "util/buf.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int ibs_source_strdup(char **out, const char *s)
{
    *out = strdup(s);
    return *out ? 0 : ibs_error_oom();
}

int ibs_source_too_big(const char *path, unsigned long long size, size_t max_size)
{
    return ibs_error_set(IBS_EINVALID, "\"%s\" is %llu bytes; the limit is %zu", path, size,
                         max_size);
}

/*
 * Appends the components of s[0..len) to `b` (a normalised path without
 * leading or trailing slash), applying "." and "..". `rel` is only used in
 * the error message.
 */
static int push_components(struct ibs_buf *b, const char *s, size_t len, const char *rel)
{
    size_t i = 0;
    int rc = 0;

    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != '/')
            j++;
        size_t n = j - i;
        /* Empty components (duplicate slashes) and "." are dropped. */
        if (n == 2 && s[i] == '.' && s[i + 1] == '.') {
            if (b->size == 0) {
                rc = ibs_error_set(IBS_EINVALID, "path \"%s\" leaves the source root", rel);
                goto done;
            }
            const char *slash = strrchr(b->ptr, '/');
            ibs_buf_truncate(b, slash ? (size_t)(slash - b->ptr) : 0);
        } else if (n > 1 || (n == 1 && s[i] != '.')) {
            if (b->size)
                ibs_buf_putc(b, '/');
            ibs_buf_put(b, s + i, n);
        }
        i = j + 1;
    }
    rc = ibs_buf_oom(b);
done:
    return rc;
}

int ibs_source_normalize(char **out, const char *base, const char *rel)
{
    struct ibs_buf b = IBS_BUF_INIT;
    const char *slash;
    int rc = 0;

    *out = NULL;
    if (!base)
        base = "";
    if (!rel) {
        rc = ibs_error_set(IBS_EINVALID, "no path given");
        goto done;
    }
    if (rel[0] == '/' || base[0] == '/') {
        rc = ibs_error_set(IBS_EINVALID, "path \"%s\" is absolute", rel[0] == '/' ? rel : base);
        goto done;
    }
    /* The directory of `base` is everything before its last slash. */
    slash = strrchr(base, '/');
    if (slash) {
        rc = push_components(&b, base, (size_t)(slash - base), rel);
        if (rc)
            goto done;
    }
    rc = push_components(&b, rel, strlen(rel), rel);
    if (rc)
        goto done;
    *out = ibs_buf_detach(&b);
    if (!*out)
        rc = IBS_ENOMEM;
done:
    ibs_buf_release(&b);
    return rc;
}

/* strcmp() compares as unsigned char, which is the bytewise order we promise. */
static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int ibs_source_list(struct ibs_vec *out, struct ibs_source *src)
{
    struct ibs_vec found = IBS_VEC_INIT;
    int rc;

    rc = src->ops->list(&found, src);
    if (rc)
        goto done;
    ibs_vec_sort(&found, compare_paths);
    /* Reserve first so that `out` is either fully extended or untouched. */
    if (found.count > SIZE_MAX - out->count) {
        rc = ibs_error_oom();
        goto done;
    }
    rc = ibs_vec_reserve(out, out->count + found.count);
    if (rc)
        goto done;
    for (size_t i = 0; i < found.count; i++)
        out->items[out->count++] = found.items[i];
    found.count = 0;
done:
    ibs_vec_release_with(&found, free);
    return rc;
}

int ibs_source_read(char **out, size_t *out_len, struct ibs_source *src, const char *path,
                    size_t max_size)
{
    char *norm = NULL;
    int rc;

    *out = NULL;
    *out_len = 0;
    rc = ibs_source_normalize(&norm, NULL, path);
    if (rc)
        goto done;
    rc = src->ops->read(out, out_len, src, norm, max_size);
done:
    free(norm);
    return rc;
}

const char *ibs_source_commit(const struct ibs_source *src)
{
    return src->commit;
}

const char *ibs_source_name(const struct ibs_source *src)
{
    return src->name;
}

const char *ibs_source_describe(const struct ibs_source *src)
{
    return src->description;
}

void ibs_source_free(struct ibs_source *src)
{
    if (!src)
        return;
    free(src->commit);
    free(src->name);
    free(src->description);
    src->ops->free(src);
}
