/* Pointer vectors; see vec.h. */
#include "util/vec.h"

#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>

void ibs_vec_init(struct ibs_vec *vec)
{
    vec->items = NULL;
    vec->count = 0;
    vec->cap = 0;
}

void ibs_vec_release(struct ibs_vec *vec)
{
    free(vec->items);
    ibs_vec_init(vec);
}

void ibs_vec_release_with(struct ibs_vec *vec, void (*free_item)(void *))
{
    for (size_t i = 0; i < vec->count; i++)
        free_item(vec->items[i]);
    ibs_vec_release(vec);
}

int ibs_vec_reserve(struct ibs_vec *vec, size_t n)
{
    size_t ncap;
    void **p;

    if (n <= vec->cap)
        return 0;
    ncap = vec->cap ? vec->cap : 8;
    while (ncap < n) {
        if (ncap > SIZE_MAX / 2 / sizeof(void *))
            return ibs_error_oom();
        ncap *= 2;
    }
    p = realloc(vec->items, ncap * sizeof(void *));
    if (!p)
        return ibs_error_oom();
    vec->items = p;
    vec->cap = ncap;
    return 0;
}

int ibs_vec_push(struct ibs_vec *vec, void *item)
{
    int rc = ibs_vec_reserve(vec, vec->count + 1);
    if (rc)
        return rc;
    vec->items[vec->count++] = item;
    return 0;
}

void *ibs_vec_pop(struct ibs_vec *vec)
{
    return vec->count ? vec->items[--vec->count] : NULL;
}

void ibs_vec_sort(struct ibs_vec *vec, int (*cmp)(const void *, const void *))
{
    if (vec->count > 1)
        qsort(vec->items, vec->count, sizeof(void *), cmp);
}
