/* The ibs_value tree; see value.h for ownership. */
#include "util/value.h"

#include "util/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ibs_value *ibs_value_new(enum ibs_value_type type)
{
    struct ibs_value *v = calloc(1, sizeof(*v));
    if (!v) {
        ibs_error_oom();
        return NULL;
    }
    v->type = type;
    return v;
}

static int set_text(struct ibs_value *v, const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (!p)
        return ibs_error_oom();
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    free(v->str);
    v->str = p;
    v->len = len;
    return 0;
}

static struct ibs_value *new_scalar(enum ibs_value_type type, const char *text)
{
    struct ibs_value *v = ibs_value_new(type);
    if (v && set_text(v, text, strlen(text))) {
        free(v);
        return NULL;
    }
    return v;
}

struct ibs_value *ibs_value_new_null(void)
{
    return new_scalar(IBS_VALUE_NULL, "null");
}

struct ibs_value *ibs_value_new_bool(bool b)
{
    struct ibs_value *v = new_scalar(IBS_VALUE_BOOL, b ? "true" : "false");
    if (v)
        v->num.b = b;
    return v;
}

struct ibs_value *ibs_value_new_int(int64_t i)
{
    char text[32];
    struct ibs_value *v;

    snprintf(text, sizeof(text), "%" PRId64, i);
    v = new_scalar(IBS_VALUE_INT, text);
    if (v)
        v->num.i = i;
    return v;
}

struct ibs_value *ibs_value_new_float(double d)
{
    char text[64];
    struct ibs_value *v;

    snprintf(text, sizeof(text), "%.17g", d);
    v = new_scalar(IBS_VALUE_FLOAT, text);
    if (v)
        v->num.d = d;
    return v;
}

struct ibs_value *ibs_value_new_stringn(const char *s, size_t len)
{
    struct ibs_value *v = ibs_value_new(IBS_VALUE_STRING);
    if (v && set_text(v, s, len)) {
        free(v);
        return NULL;
    }
    return v;
}

struct ibs_value *ibs_value_new_string(const char *s)
{
    return ibs_value_new_stringn(s, strlen(s));
}

struct ibs_value *ibs_value_new_list(void)
{
    return ibs_value_new(IBS_VALUE_LIST);
}

struct ibs_value *ibs_value_new_map(void)
{
    return ibs_value_new(IBS_VALUE_MAP);
}

void ibs_value_free(struct ibs_value *v)
{
    if (!v)
        return;
    if (v->type == IBS_VALUE_LIST) {
        for (size_t i = 0; i < v->count; i++)
            ibs_value_free(v->u.items[i]);
        free(v->u.items);
    } else if (v->type == IBS_VALUE_MAP) {
        for (size_t i = 0; i < v->count; i++) {
            free(v->u.members[i].key);
            ibs_value_free(v->u.members[i].value);
        }
        free(v->u.members);
    }
    free(v->str);
    free(v);
}

static size_t elem_size(const struct ibs_value *v)
{
    return v->type == IBS_VALUE_LIST ? sizeof(struct ibs_value *) : sizeof(struct ibs_member);
}

/* Reallocates a list's or map's array to `ncap` elements (>= count); false
 * when out of memory, leaving the array as it was. */
static bool set_cap(struct ibs_value *v, size_t ncap)
{
    size_t elem = elem_size(v);
    void *p;

    if (ncap > SIZE_MAX / elem)
        return false;
    p = realloc(v->type == IBS_VALUE_LIST ? (void *)v->u.items : (void *)v->u.members, ncap * elem);
    if (!p)
        return false;
    if (v->type == IBS_VALUE_LIST)
        v->u.items = p;
    else
        v->u.members = p;
    v->cap = ncap;
    return true;
}

static int resize(struct ibs_value *v, size_t ncap)
{
    return set_cap(v, ncap) ? 0 : ibs_error_oom();
}

/* Room for one more element, doubling. */
static int grow(struct ibs_value *v)
{
    if (v->count < v->cap)
        return 0;
    return resize(v, v->cap ? v->cap * 2 : 4);
}

int ibs_value_reserve(struct ibs_value *v, size_t n)
{
    if (v->type != IBS_VALUE_LIST && v->type != IBS_VALUE_MAP)
        return ibs_error_set(IBS_EINVALID, "reserve room in a %s", ibs_value_type_name(v->type));
    if (n <= v->cap)
        return 0;
    /* Exactly n for a new array (the caller knows the final size), else doubling. */
    return resize(v, v->cap && v->cap * 2 > n ? v->cap * 2 : n);
}

void ibs_value_shrink(struct ibs_value *v)
{
    /* When the array cannot move it stays as it is: still correct, nothing to report. */
    if (v && (v->type == IBS_VALUE_LIST || v->type == IBS_VALUE_MAP) && v->count &&
        v->count < v->cap)
        set_cap(v, v->count);
}

int ibs_value_list_append(struct ibs_value *list, struct ibs_value *item)
{
    int rc;

    if (list->type != IBS_VALUE_LIST) {
        ibs_value_free(item);
        return ibs_error_set(IBS_EINVALID, "append to a %s", ibs_value_type_name(list->type));
    }
    rc = grow(list);
    if (rc) {
        ibs_value_free(item);
        return rc;
    }
    list->u.items[list->count++] = item;
    return 0;
}

int ibs_value_map_append(struct ibs_value *map, const char *key, size_t keylen,
                         struct ibs_loc key_loc, struct ibs_value *item)
{
    char *k = NULL;
    int rc;

    if (map->type != IBS_VALUE_MAP) {
        rc = ibs_error_set(IBS_EINVALID, "set a member of a %s", ibs_value_type_name(map->type));
        goto fail;
    }
    rc = grow(map);
    if (rc)
        goto fail;
    k = malloc(keylen + 1);
    if (!k) {
        rc = ibs_error_oom();
        goto fail;
    }
    memcpy(k, key, keylen);
    k[keylen] = '\0';
    map->u.members[map->count].key = k;
    map->u.members[map->count].key_loc = key_loc;
    map->u.members[map->count].value = item;
    map->count++;
    return 0;
fail:
    ibs_value_free(item);
    return rc;
}

static struct ibs_member *find_member(const struct ibs_value *map, const char *key)
{
    if (!map || map->type != IBS_VALUE_MAP)
        return NULL;
    for (size_t i = 0; i < map->count; i++)
        if (strcmp(map->u.members[i].key, key) == 0)
            return &map->u.members[i];
    return NULL;
}

int ibs_value_map_set(struct ibs_value *map, const char *key, struct ibs_value *item)
{
    struct ibs_member *m = find_member(map, key);
    struct ibs_loc none = {NULL, 0, 0};

    if (m) {
        ibs_value_free(m->value);
        m->value = item;
        return 0;
    }
    return ibs_value_map_append(map, key, strlen(key), none, item);
}

struct ibs_value *ibs_value_map_get(const struct ibs_value *map, const char *key)
{
    struct ibs_member *m = find_member(map, key);
    return m ? m->value : NULL;
}

const struct ibs_member *ibs_value_map_member(const struct ibs_value *map, const char *key)
{
    return find_member(map, key);
}

struct ibs_value *ibs_value_map_take(struct ibs_value *map, const char *key)
{
    struct ibs_member *m = find_member(map, key);
    struct ibs_value *v;
    size_t idx;

    if (!m)
        return NULL;
    v = m->value;
    free(m->key);
    idx = (size_t)(m - map->u.members);
    memmove(m, m + 1, (map->count - idx - 1) * sizeof(*m));
    map->count--;
    return v;
}

bool ibs_value_map_remove(struct ibs_value *map, const char *key)
{
    struct ibs_member *m = find_member(map, key);
    if (!m)
        return false;
    ibs_value_free(ibs_value_map_take(map, key));
    return true;
}

const char *ibs_value_map_get_str(const struct ibs_value *map, const char *key)
{
    struct ibs_value *v = ibs_value_map_get(map, key);
    return v && v->type == IBS_VALUE_STRING ? v->str : NULL;
}

bool ibs_value_is_scalar(const struct ibs_value *v)
{
    return v && v->type != IBS_VALUE_LIST && v->type != IBS_VALUE_MAP;
}

int ibs_value_clone(struct ibs_value **out, const struct ibs_value *v)
{
    struct ibs_value *c = NULL;
    struct ibs_value *child = NULL;
    int rc = 0;

    *out = NULL;
    c = ibs_value_new(v->type);
    if (!c)
        return IBS_ENOMEM;
    c->quoted = v->quoted;
    c->loc = v->loc;
    c->num = v->num;
    if (v->str && (rc = set_text(c, v->str, v->len)))
        goto done;
    if (v->count && (rc = ibs_value_reserve(c, v->count)))
        goto done;
    for (size_t i = 0; i < v->count; i++) {
        if (v->type == IBS_VALUE_LIST) {
            if ((rc = ibs_value_clone(&child, v->u.items[i])))
                goto done;
            if ((rc = ibs_value_list_append(c, child)))
                goto done;
        } else {
            const struct ibs_member *m = &v->u.members[i];
            if ((rc = ibs_value_clone(&child, m->value)))
                goto done;
            if ((rc = ibs_value_map_append(c, m->key, strlen(m->key), m->key_loc, child)))
                goto done;
        }
    }
    *out = c;
    c = NULL;
done:
    ibs_value_free(c);
    return rc;
}

static bool is_number(const struct ibs_value *v)
{
    return v->type == IBS_VALUE_INT || v->type == IBS_VALUE_FLOAT;
}

static double as_double(const struct ibs_value *v)
{
    return v->type == IBS_VALUE_INT ? (double)v->num.i : v->num.d;
}

static int cmp_num(const struct ibs_value *a, const struct ibs_value *b)
{
    if (a->type == IBS_VALUE_INT && b->type == IBS_VALUE_INT)
        return a->num.i < b->num.i ? -1 : a->num.i > b->num.i;
    double x = as_double(a), y = as_double(b);
    return x < y ? -1 : x > y;
}

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

static int type_rank(const struct ibs_value *v)
{
    return is_number(v) ? IBS_VALUE_INT : (int)v->type;
}

static int cmp_member_keys(const void *a, const void *b)
{
    const struct ibs_member *const *x = a, *const *y = b;
    return strcmp((*x)->key, (*y)->key);
}

/* Compares two maps as sorted member lists. Allocation failure falls back to
 * the order-dependent comparison, which is still a valid (if stricter) order. */
static int cmp_maps(const struct ibs_value *a, const struct ibs_value *b)
{
    const struct ibs_member **sa = NULL, **sb = NULL;
    int c = 0;

    if (a->count != b->count)
        return a->count < b->count ? -1 : 1;
    if (a->count == 0)
        return 0;
    sa = malloc(a->count * sizeof(*sa));
    sb = malloc(b->count * sizeof(*sb));
    if (!sa || !sb) {
        for (size_t i = 0; i < a->count && !c; i++) {
            c = strcmp(a->u.members[i].key, b->u.members[i].key);
            if (!c)
                c = ibs_value_compare(a->u.members[i].value, b->u.members[i].value);
        }
        goto done;
    }
    for (size_t i = 0; i < a->count; i++) {
        sa[i] = &a->u.members[i];
        sb[i] = &b->u.members[i];
    }
    qsort(sa, a->count, sizeof(*sa), cmp_member_keys);
    qsort(sb, b->count, sizeof(*sb), cmp_member_keys);
    for (size_t i = 0; i < a->count && !c; i++) {
        c = strcmp(sa[i]->key, sb[i]->key);
        if (!c)
            c = ibs_value_compare(sa[i]->value, sb[i]->value);
    }
done:
    free(sa);
    free(sb);
    return c < 0 ? -1 : c > 0;
}

int ibs_value_compare(const struct ibs_value *a, const struct ibs_value *b)
{
    int ra = type_rank(a), rb = type_rank(b);

    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (a->type) {
    case IBS_VALUE_NULL:
        return 0;
    case IBS_VALUE_BOOL:
        return (int)a->num.b - (int)b->num.b;
    case IBS_VALUE_INT:
    case IBS_VALUE_FLOAT:
        return cmp_num(a, b);
    case IBS_VALUE_STRING:
        return cmp_bytes(a->str, a->len, b->str, b->len);
    case IBS_VALUE_LIST:
        for (size_t i = 0; i < a->count && i < b->count; i++) {
            int c = ibs_value_compare(a->u.items[i], b->u.items[i]);
            if (c)
                return c;
        }
        return a->count < b->count ? -1 : a->count > b->count;
    case IBS_VALUE_MAP:
        return cmp_maps(a, b);
    }
    return 0;
}

bool ibs_value_equal(const struct ibs_value *a, const struct ibs_value *b)
{
    if (!a || !b)
        return a == b;
    return ibs_value_compare(a, b) == 0;
}

const char *ibs_value_type_name(enum ibs_value_type type)
{
    switch (type) {
    case IBS_VALUE_NULL:
        return "null";
    case IBS_VALUE_BOOL:
        return "boolean";
    case IBS_VALUE_INT:
        return "integer";
    case IBS_VALUE_FLOAT:
        return "number";
    case IBS_VALUE_STRING:
        return "string";
    case IBS_VALUE_LIST:
        return "list";
    case IBS_VALUE_MAP:
        return "map";
    }
    return "unknown";
}

/* ---- index ---------------------------------------------------------------- */

/*
 * Open addressing over member positions (position + 1; 0 is an empty slot),
 * at most half full. Keys are read from the map, so the index holds no
 * strings of its own; for duplicate keys it keeps the first, as
 * ibs_value_map_get() finds the first.
 */
struct ibs_value_index {
    size_t cap; /* a power of two */
    size_t n;
    size_t *slots;
};

static uint64_t key_hash(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(0x100000001b3);
    return h;
}

/* The slot of `key`, or the empty slot where it would go. */
static size_t *index_slot(const struct ibs_value_index *ix, const struct ibs_value *map,
                          const char *key)
{
    size_t mask = ix->cap - 1;
    for (size_t i = (size_t)key_hash(key) & mask;; i = (i + 1) & mask) {
        size_t *s = &ix->slots[i];
        if (!*s || strcmp(map->u.members[*s - 1].key, key) == 0)
            return s;
    }
}

/* Rebuilds the table for `cap` slots from the map's members. */
static int index_rehash(struct ibs_value_index *ix, const struct ibs_value *map, size_t cap)
{
    size_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return ibs_error_oom();
    free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    ix->n = 0;
    for (size_t i = 0; i < map->count; i++) {
        size_t *s = index_slot(ix, map, map->u.members[i].key);
        if (!*s) {
            *s = i + 1;
            ix->n++;
        }
    }
    return 0;
}

int ibs_value_index_new(struct ibs_value_index **out, const struct ibs_value *map)
{
    struct ibs_value_index *ix;
    size_t cap = 16;
    int rc;

    *out = NULL;
    if (!map || map->type != IBS_VALUE_MAP)
        return ibs_error_set(IBS_EINVALID, "index a %s",
                             map ? ibs_value_type_name(map->type) : "missing value");
    while (cap < 2 * map->count + 2)
        cap *= 2;
    ix = calloc(1, sizeof(*ix));
    if (!ix)
        return ibs_error_oom();
    if ((rc = index_rehash(ix, map, cap))) {
        free(ix);
        return rc;
    }
    *out = ix;
    return 0;
}

const struct ibs_value *ibs_value_index_get(const struct ibs_value_index *ix,
                                            const struct ibs_value *map, const char *key)
{
    const size_t *s = index_slot(ix, map, key);
    return *s ? map->u.members[*s - 1].value : NULL;
}

int ibs_value_index_set(struct ibs_value_index *ix, struct ibs_value *map, const char *key,
                        struct ibs_value *item)
{
    struct ibs_loc none = {NULL, 0, 0};
    size_t *s = index_slot(ix, map, key);
    int rc;

    if (*s) {
        struct ibs_member *m = &map->u.members[*s - 1];
        ibs_value_free(m->value);
        m->value = item;
        return 0;
    }
    if ((rc = ibs_value_map_append(map, key, strlen(key), none, item)))
        return rc;
    if (2 * (ix->n + 1) > ix->cap)
        return index_rehash(ix, map, ix->cap * 2);
    *index_slot(ix, map, key) = map->count;
    ix->n++;
    return 0;
}

void ibs_value_index_free(struct ibs_value_index *ix)
{
    if (!ix)
        return;
    free(ix->slots);
    free(ix);
}
