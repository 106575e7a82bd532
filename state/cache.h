/*
 * A persistent key → value cache for facts that never change once known
 * (details of immutable resource versions, for example), so that a warm
 * `ibsync plan` can skip API calls.
 *
 * A cache lives in DIR/cache/<name>.json as one JSON document with a format
 * version. A cache that is missing, stale or corrupt only makes a plan
 * slower, never wrong: a file that cannot be used opens as an empty cache
 * with a warning (ibs_cache_warning) instead of failing.
 *
 * Lookups are O(1) (a hash table). A cache is not thread-safe: callers that
 * share one between threads serialise every call.
 */
#ifndef IBS_STATE_CACHE_H
#define IBS_STATE_CACHE_H

#include "util/value.h"

#include <stdbool.h>
#include <stddef.h>

/* The file format this ibsync reads and writes. */
#define IBS_CACHE_VERSION 1

struct ibs_cache;

/*
 * Opens the cache `name` (any string; mapped to a safe file name) under
 * `state_dir` and loads its file if there is one. Never fails because of the
 * file's state: when it is unreadable, not JSON, or of another format
 * version, the cache starts empty and ibs_cache_warning() says why. Fails
 * only for an empty name (IBS_EINVALID) or out of memory. *out is owned by
 * the caller (ibs_cache_free).
 */
int ibs_cache_open(struct ibs_cache **out, const char *state_dir, const char *name);

/*
 * NULL when the file loaded (or did not exist yet); otherwise why it was
 * discarded, e.g. "cache .ibsync/cache/x.json is corrupt (...); starting
 * empty". Owned by the cache.
 */
const char *ibs_cache_warning(const struct ibs_cache *cache);

/* Number of entries. */
size_t ibs_cache_count(const struct ibs_cache *cache);

/*
 * Looks `key` up: *out is the value, borrowed (valid until the key is put or
 * removed again, or the cache is freed), or NULL when absent. A miss is not
 * an error: returns 0 either way.
 */
int ibs_cache_get(const struct ibs_value **out, const struct ibs_cache *cache, const char *key);

/*
 * Sets cache[key] = value. The key is copied; `value` is owned by the cache
 * from then on, even when the call fails (IBS_ENOMEM). Putting a value equal
 * to the current one does not make the cache dirty.
 */
int ibs_cache_put(struct ibs_cache *cache, const char *key, struct ibs_value *value);

/* Removes and frees cache[key]; returns whether it was present. */
bool ibs_cache_remove(struct ibs_cache *cache, const char *key);

/*
 * Writes the cache to its file atomically (state/fsutil.h), creating
 * DIR/cache/ if needed, if anything changed since it was opened or last
 * saved; otherwise does nothing. Entries are written sorted by key.
 */
int ibs_cache_save(struct ibs_cache *cache);

/* Frees the cache without saving. Accepts NULL. */
void ibs_cache_free(struct ibs_cache *cache);

#endif
