/*
 * Live state: what an Image Builder account holds, read through a provider.
 *
 * Reading is driven by the List calls (owner Self, every page). Versioned
 * kinds list their versions; components and workflows also need their build
 * versions (List*BuildVersions) for tags and the build ARN. Details (Get*)
 * are fetched only when the plan needs them (ibs_live_detail).
 *
 * Resources ibsync manages carry the tags ibsync:stack=<stack> and
 * ibsync:hash=<content hash>; only those are ever pruned.
 */
#ifndef IBS_RECONCILE_LIVE_H
#define IBS_RECONCILE_LIVE_H

#include "providers/provider.h"
#include "reconcile/model.h"
#include "util/value.h"
#include "util/vec.h"

#include <stdbool.h>
#include <stddef.h>

#define IBS_TAG_STACK "ibsync:stack"
#define IBS_TAG_HASH "ibsync:hash"
#define IBS_TAG_RETAIN "ibsync:deletion-policy"

struct ibs_cache;

struct ibs_live_resource {
    size_t index; /* position in live->resources */
    enum ibs_kind kind;
    char *arn;       /* resource ARN; for versioned kinds the version ARN
                        (component/name/1.0.0) */
    char *build_arn; /* components and workflows: the build version ARN used by
                        Get, Delete and tags; else a copy of arn */
    char *name;
    char *version;             /* versioned kinds, else NULL */
    struct ibs_value *tags;    /* map (never NULL) */
    struct ibs_value *summary; /* the List entry */
    struct ibs_value *detail;  /* the Get answer's resource, NULL until fetched */
    const char *date_updated;  /* borrowed from summary, or NULL */
    const char *stack;         /* tag ibsync:stack (borrowed), or NULL */
    const char *hash;          /* tag ibsync:hash (borrowed), or NULL */
    bool retain;               /* tag ibsync:deletion-policy=Retain */
};

struct ibs_live {
    struct ibs_vec resources; /* struct ibs_live_resource * (owned) */
    char *account;            /* from the ARNs or the provider, NULL if unknown */
    size_t calls;             /* API calls made by ibs_live_read and ibs_live_detail */
    size_t cache_hits;        /* calls saved by the cache */
    /*
     * Facts about immutable versions (build ARN and tags) and details of
     * resources whose dateUpdated has not moved are kept in this cache
     * (borrowed, may be NULL). A missing or stale entry only costs a call.
     */
    struct ibs_cache *cache;
    bool refresh_full;                 /* ignore the cache's entries (still refresh them) */
    struct ibs_live_resource **sorted; /* by (kind, name), for ibs_live_find */
};

void ibs_live_init(struct ibs_live *live);
void ibs_live_release(struct ibs_live *live);

/* Reads every Self-owned resource of every kind into `live` (initialised by
 * the caller): one thread per kind, each following its list's pages. */
int ibs_live_read(struct ibs_live *live, struct ibs_provider *p);

/*
 * Fetches (once) the full resource of `r` with its Get call; *out is
 * borrowed from `r`.
 */
int ibs_live_detail(const struct ibs_value **out, struct ibs_live *live, struct ibs_provider *p,
                    struct ibs_live_resource *r);

/*
 * Fetches, several at a time, the details a plan of `stack` needs for drift
 * checks (its infrastructure and distribution configurations and lifecycle
 * policies), so that the plan does not wait for them one by one.
 */
int ibs_live_prefetch(struct ibs_live *live, struct ibs_provider *p, const char *stack);

/* All live resources of `kind` called `name` (any version) into `out`
 * (borrowed pointers). Names compare exactly. O(log n): the first call
 * builds an index (not thread-safe). */
int ibs_live_find(struct ibs_vec *out, const struct ibs_live *live, enum ibs_kind kind,
                  const char *name);

/* The account id in field 5 of an ARN into out (13 bytes), or "" . */
void ibs_live_arn_account(char out[13], const char *arn);

#endif
