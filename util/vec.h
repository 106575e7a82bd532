/*
 * A growable array of pointers. The vector owns its array, not the pointed-to
 * items: ibs_vec_release() frees only the array, ibs_vec_release_with() also
 * calls a destructor on each item.
 */
#ifndef IBS_UTIL_VEC_H
#define IBS_UTIL_VEC_H

#include <stddef.h>

struct ibs_vec {
    void **items;
    size_t count;
    size_t cap;
};

#define IBS_VEC_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void ibs_vec_init(struct ibs_vec *vec);
void ibs_vec_release(struct ibs_vec *vec);
void ibs_vec_release_with(struct ibs_vec *vec, void (*free_item)(void *));
/* Appends `item`; IBS_ENOMEM leaves the vector unchanged. */
int ibs_vec_push(struct ibs_vec *vec, void *item);
/* Ensures capacity for `n` items in total. */
int ibs_vec_reserve(struct ibs_vec *vec, size_t n);
/* Removes and returns the last item, or NULL when empty. */
void *ibs_vec_pop(struct ibs_vec *vec);
void ibs_vec_sort(struct ibs_vec *vec, int (*cmp)(const void *, const void *));

#endif
