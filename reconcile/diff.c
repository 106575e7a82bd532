/* Field-level differences; see diff.h for the comparison rules. */
#include "reconcile/diff.h"

#include "util/buf.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void ibs_diff_free(struct ibs_field_diff *d)
{
    if (!d)
        return;
    free(d->path);
    ibs_value_free(d->before);
    ibs_value_free(d->after);
    free(d);
}

static void diff_free_cb(void *p)
{
    ibs_diff_free(p);
}

void ibs_diff_release_all(struct ibs_vec *diffs)
{
    ibs_vec_release_with(diffs, diff_free_cb);
}

static int add(struct ibs_vec *out, const char *path, const struct ibs_value *before,
               const struct ibs_value *after)
{
    struct ibs_field_diff *d = calloc(1, sizeof(*d));
    int rc = 0;

    if (!d)
        return ibs_error_oom();
    d->path = strdup(path);
    if (!d->path)
        rc = ibs_error_oom();
    if (!rc && before)
        rc = ibs_value_clone(&d->before, before);
    if (!rc && after)
        rc = ibs_value_clone(&d->after, after);
    if (!rc)
        rc = ibs_vec_push(out, d);
    if (rc)
        ibs_diff_free(d);
    return rc;
}

static char *join(const char *path, const char *key, size_t index, bool is_index)
{
    struct ibs_buf b = IBS_BUF_INIT;
    if (is_index)
        ibs_buf_printf(&b, "%s[%zu]", path, index);
    else if (*path)
        ibs_buf_printf(&b, "%s.%s", path, key);
    else
        ibs_buf_puts(&b, key);
    return ibs_buf_detach(&b);
}

static bool scalar_equal(const struct ibs_value *a, const struct ibs_value *b)
{
    if (ibs_value_equal(a, b))
        return true;
    /* A number and a string holding the same text are the same API value. */
    if (ibs_value_is_scalar(a) && ibs_value_is_scalar(b) && a->type != IBS_VALUE_NULL &&
        b->type != IBS_VALUE_NULL && (a->type == IBS_VALUE_STRING || b->type == IBS_VALUE_STRING))
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    return false;
}

static bool all_scalars(const struct ibs_value *list)
{
    for (size_t i = 0; i < list->count; i++)
        if (!ibs_value_is_scalar(list->u.items[i]))
            return false;
    return true;
}

static int cmp_values(const void *a, const void *b)
{
    return ibs_value_compare(*(struct ibs_value *const *)a, *(struct ibs_value *const *)b);
}

/* Multiset equality of two scalar lists. */
static bool same_scalars(const struct ibs_value *a, const struct ibs_value *b)
{
    struct ibs_value **sa, **sb;
    bool eq = true;

    if (a->count != b->count)
        return false;
    if (a->count == 0)
        return true;
    sa = malloc(a->count * sizeof(*sa));
    sb = malloc(b->count * sizeof(*sb));
    if (!sa || !sb) {
        free(sa);
        free(sb);
        return ibs_value_equal(a, b);
    }
    memcpy(sa, a->u.items, a->count * sizeof(*sa));
    memcpy(sb, b->u.items, b->count * sizeof(*sb));
    qsort(sa, a->count, sizeof(*sa), cmp_values);
    qsort(sb, b->count, sizeof(*sb), cmp_values);
    for (size_t i = 0; eq && i < a->count; i++)
        eq = scalar_equal(sa[i], sb[i]);
    free(sa);
    free(sb);
    return eq;
}

static int compare(struct ibs_vec *out, const struct ibs_value *desired,
                   const struct ibs_value *live, const char *path, bool full)
{
    int rc = 0;

    if (!live || live->type == IBS_VALUE_NULL) {
        if (desired && desired->type != IBS_VALUE_NULL)
            return add(out, path, NULL, desired);
        return 0;
    }
    if (!desired || desired->type == IBS_VALUE_NULL)
        return full ? add(out, path, live, NULL) : 0;
    if (desired->type == IBS_VALUE_MAP && live->type == IBS_VALUE_MAP) {
        for (size_t i = 0; !rc && i < desired->count; i++) {
            const struct ibs_member *m = &desired->u.members[i];
            char *p = join(path, m->key, 0, false);
            if (!p)
                return IBS_ENOMEM;
            rc = compare(out, m->value, ibs_value_map_get(live, m->key), p, full);
            free(p);
        }
        for (size_t i = 0; full && !rc && i < live->count; i++) {
            const struct ibs_member *m = &live->u.members[i];
            char *p;
            if (ibs_value_map_get(desired, m->key))
                continue;
            if (!(p = join(path, m->key, 0, false)))
                return IBS_ENOMEM;
            rc = add(out, p, m->value, NULL);
            free(p);
        }
        return rc;
    }
    if (desired->type == IBS_VALUE_LIST && live->type == IBS_VALUE_LIST) {
        if (all_scalars(desired) && all_scalars(live))
            return same_scalars(desired, live) ? 0 : add(out, path, live, desired);
        if (desired->count != live->count)
            return add(out, path, live, desired);
        for (size_t i = 0; !rc && i < desired->count; i++) {
            char *p = join(path, NULL, i, true);
            if (!p)
                return IBS_ENOMEM;
            rc = compare(out, desired->u.items[i], live->u.items[i], p, full);
            free(p);
        }
        return rc;
    }
    if (ibs_value_is_scalar(desired) && ibs_value_is_scalar(live) && scalar_equal(desired, live))
        return 0;
    return add(out, path, live, desired);
}

int ibs_diff_declared(struct ibs_vec *out, const struct ibs_value *desired,
                      const struct ibs_value *live, const char *path)
{
    return compare(out, desired, live, path, false);
}

int ibs_diff_full(struct ibs_vec *out, const struct ibs_value *before,
                  const struct ibs_value *after, const char *path)
{
    return compare(out, after, before, path, true);
}
