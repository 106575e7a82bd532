/*
 * Persistent cache; see cache.h.
 *
 * In memory: an open-addressing hash table (linear probing, FNV-1a, at most
 * 3/4 full, backward-shift deletion so there are no tombstones). On disk:
 *
 *     {"format":1,"name":"NAME","entries":{
 *     "key1":value1,
 *     "key2":value2
 *     }}
 *
 * one entry per line, sorted by key (and values with sorted keys), so that
 * the file is diffable and the same content always gives the same bytes. Loading takes the keys and
 * values out of the parsed document instead of copying them.
 */
#include "state/cache.h"

#include "state/fsutil.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IBS_CACHE_DIR "cache"
#define IBS_CACHE_FILE_MAX ((size_t)512 * 1024 * 1024)
#define IBS_CACHE_MIN_CAP 16

struct slot {
    char *key; /* NULL: empty slot */
    struct ibs_value *value;
    uint64_t hash;
};

struct ibs_cache {
    char *name;
    char *dir;  /* DIR/cache */
    char *path; /* DIR/cache/<name>.json */
    char *warning;
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t count;
    bool dirty;
};

/* FNV-1a, 64 bit: a table hash, not a content digest. */
static uint64_t hash_key(const char *key)
{
    uint64_t h = 14695981039346656037ULL;

    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct slot *find_slot(const struct ibs_cache *c, const char *key, uint64_t h)
{
    size_t mask = c->cap - 1;

    if (!c->cap)
        return NULL;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct slot *s = &c->slots[i];
        if (!s->key)
            return s;
        if (s->hash == h && strcmp(s->key, key) == 0)
            return s;
    }
}

static int grow(struct ibs_cache *c)
{
    size_t ncap = c->cap ? c->cap * 2 : IBS_CACHE_MIN_CAP;
    struct slot *old = c->slots;
    size_t oldcap = c->cap;
    struct slot *slots;

    if (ncap > SIZE_MAX / 2 / sizeof(*slots))
        return ibs_error_oom();
    slots = calloc(ncap, sizeof(*slots));
    if (!slots)
        return ibs_error_oom();
    c->slots = slots;
    c->cap = ncap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key)
            *find_slot(c, old[i].key, old[i].hash) = old[i];
    free(old);
    return 0;
}

/* Inserts or replaces; takes ownership of key and value, even on failure. */
static int insert_owned(struct ibs_cache *c, char *key, struct ibs_value *value, bool *out_changed)
{
    uint64_t h = hash_key(key);
    struct slot *s;
    int rc = 0;

    *out_changed = false;
    if ((c->count + 1) * 4 > c->cap * 3 && (rc = grow(c)))
        goto fail;
    s = find_slot(c, key, h);
    if (s->key) {
        *out_changed = !ibs_value_equal(s->value, value);
        ibs_value_free(s->value);
        s->value = value;
        free(key);
        return 0;
    }
    s->key = key;
    s->value = value;
    s->hash = h;
    c->count++;
    *out_changed = true;
    return 0;
fail:
    free(key);
    ibs_value_free(value);
    return rc;
}

static void clear_entries(struct ibs_cache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        free(c->slots[i].key);
        ibs_value_free(c->slots[i].value);
    }
    free(c->slots);
    c->slots = NULL;
    c->cap = 0;
    c->count = 0;
}

static int set_warning(struct ibs_cache *c, const char *why)
{
    struct ibs_buf b = IBS_BUF_INIT;

    ibs_buf_printf(&b, "cache %s %s; starting with an empty cache", c->path, why);
    free(c->warning);
    c->warning = ibs_buf_detach(&b);
    return c->warning ? 0 : IBS_ENOMEM;
}

/* Checks the document and moves its entries into the table. */
static int adopt(struct ibs_cache *c, struct ibs_value *doc, struct ibs_buf *why)
{
    const struct ibs_value *format = ibs_value_map_get(doc, "format");
    struct ibs_value *entries = ibs_value_map_get(doc, "entries");
    bool changed;
    int rc;

    if (doc->type != IBS_VALUE_MAP || !format || format->type != IBS_VALUE_INT) {
        ibs_buf_puts(why, "is corrupt (no format version)");
        return ibs_buf_oom(why);
    }
    if (format->num.i != IBS_CACHE_VERSION) {
        ibs_buf_printf(why, "has format %lld, this ibsync uses format %d", (long long)format->num.i,
                       IBS_CACHE_VERSION);
        return ibs_buf_oom(why);
    }
    if (!entries || entries->type != IBS_VALUE_MAP) {
        ibs_buf_puts(why, "is corrupt (\"entries\" is not a map)");
        return ibs_buf_oom(why);
    }
    for (size_t i = 0; i < entries->count; i++) {
        struct ibs_member *m = &entries->u.members[i];
        char *key = m->key;
        struct ibs_value *value = m->value;
        /* The table owns them now; freeing the document skips NULLs. */
        m->key = NULL;
        m->value = NULL;
        if ((rc = insert_owned(c, key, value, &changed)))
            return rc;
    }
    return 0;
}

static int load(struct ibs_cache *c)
{
    struct ibs_buf why = IBS_BUF_INIT;
    struct ibs_value *doc = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    rc = ibs_fs_read_file(&text, &len, c->path, IBS_CACHE_FILE_MAX);
    if (rc == IBS_ENOTFOUND) {
        rc = 0;
        goto done;
    }
    if (rc == IBS_ENOMEM)
        goto done;
    if (rc) {
        ibs_buf_printf(&why, "cannot be read (%s)", ibs_error_last()->message);
        rc = ibs_buf_oom(&why);
        goto done;
    }
    rc = ibs_json_parse(&doc, text, len);
    if (rc == IBS_ENOMEM)
        goto done;
    if (rc) {
        ibs_buf_printf(&why, "is corrupt (%s)", ibs_error_last()->message);
        rc = ibs_buf_oom(&why);
        goto done;
    }
    rc = adopt(c, doc, &why);
done:
    if (!rc && why.size) {
        clear_entries(c);
        rc = set_warning(c, why.ptr);
    }
    if (!rc)
        ibs_error_clear();
    ibs_value_free(doc);
    free(text);
    ibs_buf_release(&why);
    return rc;
}

int ibs_cache_open(struct ibs_cache **out, const char *state_dir, const char *name)
{
    struct ibs_buf dir = IBS_BUF_INIT;
    struct ibs_buf path = IBS_BUF_INIT;
    struct ibs_cache *c = NULL;
    char *fname = NULL;
    int rc;

    *out = NULL;
    if ((rc = ibs_fs_key_to_name(&fname, name)))
        goto done;
    if (!(c = calloc(1, sizeof(*c)))) {
        rc = ibs_error_oom();
        goto done;
    }
    ibs_buf_printf(&dir, "%s/%s", state_dir, IBS_CACHE_DIR);
    ibs_buf_printf(&path, "%s/%s.json", dir.ptr, fname);
    if ((rc = ibs_buf_oom(&dir)) || (rc = ibs_buf_oom(&path)))
        goto done;
    c->name = strdup(name);
    c->dir = ibs_buf_detach(&dir);
    c->path = ibs_buf_detach(&path);
    if (!c->name || !c->dir || !c->path) {
        rc = ibs_error_oom();
        goto done;
    }
    if ((rc = load(c)))
        goto done;
    *out = c;
    c = NULL;
done:
    ibs_cache_free(c);
    free(fname);
    ibs_buf_release(&path);
    ibs_buf_release(&dir);
    return rc;
}

const char *ibs_cache_warning(const struct ibs_cache *cache)
{
    return cache->warning;
}

size_t ibs_cache_count(const struct ibs_cache *cache)
{
    return cache->count;
}

int ibs_cache_get(const struct ibs_value **out, const struct ibs_cache *cache, const char *key)
{
    const struct slot *s = find_slot(cache, key, hash_key(key));

    *out = s && s->key ? s->value : NULL;
    return 0;
}

int ibs_cache_put(struct ibs_cache *cache, const char *key, struct ibs_value *value)
{
    char *copy = strdup(key);
    bool changed = false;
    int rc;

    if (!copy) {
        ibs_value_free(value);
        return ibs_error_oom();
    }
    rc = insert_owned(cache, copy, value, &changed);
    if (changed)
        cache->dirty = true;
    return rc;
}

bool ibs_cache_remove(struct ibs_cache *cache, const char *key)
{
    struct slot *s = find_slot(cache, key, hash_key(key));
    size_t mask = cache->cap - 1;
    size_t hole, i;

    if (!s || !s->key)
        return false;
    free(s->key);
    ibs_value_free(s->value);
    /* Backward shift: pull later members of the probe run into the hole
     * unless that would move one before its home slot. */
    hole = (size_t)(s - cache->slots);
    for (i = (hole + 1) & mask; cache->slots[i].key; i = (i + 1) & mask) {
        size_t home = (size_t)cache->slots[i].hash & mask;
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            cache->slots[hole] = cache->slots[i];
            hole = i;
        }
    }
    memset(&cache->slots[hole], 0, sizeof(cache->slots[hole]));
    cache->count--;
    cache->dirty = true;
    return true;
}

static int cmp_slots(const void *a, const void *b)
{
    const struct slot *x = *(const struct slot *const *)a;
    const struct slot *y = *(const struct slot *const *)b;
    return strcmp(x->key, y->key);
}

/* Appends `s` as a JSON string without copying it into a value. */
static int write_json_string(struct ibs_buf *out, const char *s)
{
    struct ibs_value v;

    memset(&v, 0, sizeof(v));
    v.type = IBS_VALUE_STRING;
    v.str = (char *)s;
    v.len = strlen(s);
    return ibs_json_write(out, &v, 0);
}

int ibs_cache_save(struct ibs_cache *cache)
{
    struct ibs_buf b = IBS_BUF_INIT;
    struct slot **sorted = NULL;
    size_t n = 0;
    int rc = 0;

    if (!cache->dirty)
        goto done;
    if (cache->count && !(sorted = malloc(cache->count * sizeof(*sorted)))) {
        rc = ibs_error_oom();
        goto done;
    }
    for (size_t i = 0; i < cache->cap; i++)
        if (cache->slots[i].key)
            sorted[n++] = &cache->slots[i];
    if (n > 1)
        qsort(sorted, n, sizeof(*sorted), cmp_slots);
    ibs_buf_printf(&b, "{\"format\":%d,\"name\":", IBS_CACHE_VERSION);
    write_json_string(&b, cache->name);
    ibs_buf_puts(&b, ",\"entries\":{\n");
    for (size_t i = 0; i < n; i++) {
        write_json_string(&b, sorted[i]->key);
        ibs_buf_putc(&b, ':');
        ibs_json_write(&b, sorted[i]->value, IBS_JSON_SORTED);
        ibs_buf_puts(&b, i + 1 < n ? ",\n" : "\n");
    }
    ibs_buf_puts(&b, "}}\n");
    /* Appends after a failed one are no-ops: one check covers them all. */
    if ((rc = ibs_buf_oom(&b)))
        goto done;
    if ((rc = ibs_fs_mkdirs(cache->dir, 0755)) ||
        (rc = ibs_fs_write_atomic(cache->path, b.ptr, b.size, 0644)))
        goto done;
    cache->dirty = false;
done:
    free(sorted);
    ibs_buf_release(&b);
    return rc;
}

void ibs_cache_free(struct ibs_cache *cache)
{
    if (!cache)
        return;
    clear_entries(cache);
    free(cache->name);
    free(cache->dir);
    free(cache->path);
    free(cache->warning);
    free(cache);
}
