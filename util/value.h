/*
 * ibs_value: the JSON-like tree that every module uses for resource specs,
 * API requests and responses. YAML (util/yaml.h) and JSON (util/json.h) are
 * parsed into it, so no other library's objects cross a module boundary.
 *
 * Every scalar keeps its source text in `str` (so `1.10` or `0755` read from
 * YAML can still be used as the string the user wrote), and every node keeps
 * the location it was read from. Maps keep insertion order.
 *
 * Ownership: a value owns its children, its strings and its keys. `loc.file`
 * is borrowed: it must outlive the value (the loader keeps file names in the
 * model; parsers take the name from their caller).
 */
#ifndef IBS_UTIL_VALUE_H
#define IBS_UTIL_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ibs_value_type {
    IBS_VALUE_NULL,
    IBS_VALUE_BOOL,
    IBS_VALUE_INT,
    IBS_VALUE_FLOAT,
    IBS_VALUE_STRING,
    IBS_VALUE_LIST,
    IBS_VALUE_MAP,
};

struct ibs_loc {
    const char *file; /* borrowed; NULL when unknown */
    unsigned line;    /* 1-based; 0 when unknown */
    unsigned col;     /* 1-based; 0 when unknown */
};

struct ibs_value;

struct ibs_member {
    char *key;
    struct ibs_loc key_loc;
    struct ibs_value *value;
};

struct ibs_value {
    enum ibs_value_type type;
    bool quoted;        /* scalar was a quoted string in its source */
    struct ibs_loc loc; /* where the node starts */
    char *str;          /* scalar text (NUL-terminated, may contain NULs); NULL for list/map */
    size_t len;         /* length of str */
    union {
        bool b;
        int64_t i;
        double d;
    } num;
    size_t count; /* list items or map members */
    size_t cap;
    union {
        struct ibs_value **items;   /* IBS_VALUE_LIST */
        struct ibs_member *members; /* IBS_VALUE_MAP */
    } u;
};

/* Constructors return NULL (with the error set) when out of memory. */
struct ibs_value *ibs_value_new(enum ibs_value_type type);
struct ibs_value *ibs_value_new_null(void);
struct ibs_value *ibs_value_new_bool(bool b);
struct ibs_value *ibs_value_new_int(int64_t i);
struct ibs_value *ibs_value_new_float(double d);
/* Copies `len` bytes of `s`. */
struct ibs_value *ibs_value_new_stringn(const char *s, size_t len);
struct ibs_value *ibs_value_new_string(const char *s);
struct ibs_value *ibs_value_new_list(void);
struct ibs_value *ibs_value_new_map(void);

/*
 * Gives back the unused capacity of a list's or map's array (they grow by
 * doubling); for trees that are built once and kept. Never fails: when the
 * allocator cannot move the array, it stays as it is. Accepts NULL.
 */
void ibs_value_shrink(struct ibs_value *v);

/*
 * Makes room in a list or map for `n` elements in all, so that appending up
 * to n allocates nothing more (exactly n when it had no array yet).
 * IBS_EINVALID for a scalar.
 */
int ibs_value_reserve(struct ibs_value *v, size_t n);

/* Frees a value and all its children. Accepts NULL. */
void ibs_value_free(struct ibs_value *v);

/* Deep copy into *out (locations are copied, file names stay borrowed). */
int ibs_value_clone(struct ibs_value **out, const struct ibs_value *v);

/* Appends `item` to a list; takes ownership of item even on failure. */
int ibs_value_list_append(struct ibs_value *list, struct ibs_value *item);

/*
 * Sets map[key] = item, replacing (and freeing) an existing value for the
 * key. The key is copied; item is owned by the map from then on, even when
 * the call fails.
 */
int ibs_value_map_set(struct ibs_value *map, const char *key, struct ibs_value *item);
/* Appends a member without looking for duplicates (parsers use this). */
int ibs_value_map_append(struct ibs_value *map, const char *key, size_t keylen,
                         struct ibs_loc key_loc, struct ibs_value *item);
/* Borrowed value of `key`, or NULL. NULL-safe for `map`. */
struct ibs_value *ibs_value_map_get(const struct ibs_value *map, const char *key);
/* The member for `key`, or NULL. */
const struct ibs_member *ibs_value_map_member(const struct ibs_value *map, const char *key);
/* Removes and frees map[key]; returns whether it was present. */
bool ibs_value_map_remove(struct ibs_value *map, const char *key);
/* Removes map[key] and hands its value to the caller (NULL if absent). */
struct ibs_value *ibs_value_map_take(struct ibs_value *map, const char *key);

/* Convenience accessors: NULL / fallback when absent or of another type. */
const char *ibs_value_map_get_str(const struct ibs_value *map, const char *key);

/*
 * A hash index of one map's keys, for maps too large for the linear lookups
 * above (a plan's symbol table holds a member per resource: set and get by
 * scanning made a 10,000-resource plan quadratic). It holds member
 * positions, so it stays valid only while the map changes through
 * ibs_value_index_set() alone; the map must outlive it.
 */
struct ibs_value_index;

/* Indexes `map` (IBS_EINVALID if it is not a map). Free with ibs_value_index_free(). */
int ibs_value_index_new(struct ibs_value_index **out, const struct ibs_value *map);

/* As ibs_value_map_get(map, key), in constant time. Borrowed. */
const struct ibs_value *ibs_value_index_get(const struct ibs_value_index *ix,
                                            const struct ibs_value *map, const char *key);

/* As ibs_value_map_set(map, key, item), keeping the index up to date. */
int ibs_value_index_set(struct ibs_value_index *ix, struct ibs_value *map, const char *key,
                        struct ibs_value *item);

/* Accepts NULL. The map is not touched. */
void ibs_value_index_free(struct ibs_value_index *ix);

bool ibs_value_is_scalar(const struct ibs_value *v);

/*
 * Structural equality: maps compare regardless of member order, numbers by
 * value (1 == 1.0), strings byte-wise. Locations are ignored.
 */
bool ibs_value_equal(const struct ibs_value *a, const struct ibs_value *b);

/* A total order over values (type first, then content); for sorting. */
int ibs_value_compare(const struct ibs_value *a, const struct ibs_value *b);

/* "null", "boolean", "integer", "number", "string", "list", "map". */
const char *ibs_value_type_name(enum ibs_value_type type);

#endif
