/*
 * Live state reader; see live.h.
 *
 * Cost model: every kind is listed (owner Self, every page), all kinds in
 * parallel. Components and workflows carry their tags on build versions,
 * which need one List*BuildVersions call per version; versions never change,
 * so what was learnt about them is cached (keyed by version ARN, checked
 * against dateCreated, so a deleted and re-created version is re-read).
 * Details (Get*) are fetched only when the plan asks, and cached against the
 * resource's dateUpdated (dateCreated for immutable kinds), so a warm plan of
 * an unchanged stack costs the list pages alone.
 */
#include "reconcile/live.h"

#include "api/api.h"
#include "state/cache.h"
#include "util/buf.h"
#include "util/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ibs_live_init(struct ibs_live *live)
{
    memset(live, 0, sizeof(*live));
}

static void live_resource_free(void *p)
{
    struct ibs_live_resource *r = p;
    if (!r)
        return;
    free(r->arn);
    free(r->build_arn);
    free(r->name);
    free(r->version);
    ibs_value_free(r->tags);
    ibs_value_free(r->summary);
    ibs_value_free(r->detail);
    free(r);
}

void ibs_live_release(struct ibs_live *live)
{
    ibs_vec_release_with(&live->resources, live_resource_free);
    free(live->account);
    free(live->sorted);
    ibs_live_init(live);
}

void ibs_live_arn_account(char out[13], const char *arn)
{
    const char *p = arn;
    size_t n;

    out[0] = '\0';
    for (int field = 0; field < 4 && p; field++) {
        p = strchr(p, ':');
        if (p)
            p++;
    }
    if (!p)
        return;
    n = strcspn(p, ":");
    if (n == 12) {
        memcpy(out, p, 12);
        out[12] = '\0';
    }
}

/* The version part of a version ARN ".../name/1.2.3". */
static char *arn_version(const char *arn)
{
    const char *slash = strrchr(arn, '/');
    return slash ? strdup(slash + 1) : NULL;
}

static int fill_tags(struct ibs_live_resource *r, const struct ibs_value *tags)
{
    const char *dp;
    int rc;

    ibs_value_free(r->tags);
    r->tags = NULL;
    if (tags && tags->type == IBS_VALUE_MAP) {
        if ((rc = ibs_value_clone(&r->tags, tags)))
            return rc;
    } else if (!(r->tags = ibs_value_new_map())) {
        return IBS_ENOMEM;
    }
    r->stack = ibs_value_map_get_str(r->tags, IBS_TAG_STACK);
    r->hash = ibs_value_map_get_str(r->tags, IBS_TAG_HASH);
    dp = ibs_value_map_get_str(r->tags, IBS_TAG_RETAIN);
    r->retain = dp && strcmp(dp, "Retain") == 0;
    return 0;
}

/* What one reader thread shares with the others. */
struct shared {
    struct ibs_live *live;
    struct ibs_provider *p;
    pthread_mutex_t lock; /* the cache and live->account */
};

struct kind_job {
    struct shared *sh;
    enum ibs_kind kind;
    struct ibs_vec found; /* struct ibs_live_resource * */
    size_t calls;
    size_t hits;
    int rc;
    char error[512];
};

static int list(struct ibs_value **out, struct kind_job *job, const char *op,
                struct ibs_value *input)
{
    size_t pages = 0;
    int rc = ibs_provider_list_all(out, &pages, job->sh->p, op, input);
    job->calls += pages;
    return rc;
}

/* The text of a date member (ISO string or epoch number), or "". */
static const char *date_text(const struct ibs_value *item, const char *key)
{
    const struct ibs_value *d = ibs_value_map_get(item, key);
    return d && d->str && d->type != IBS_VALUE_NULL ? d->str : "";
}

/* A cached {created, build_arn, tags} for a version, if still valid. */
static const struct ibs_value *cached_builds(struct kind_job *job, const char *key,
                                             const char *created)
{
    const struct ibs_value *v = NULL;
    const char *c;

    if (!job->sh->live->cache || job->sh->live->refresh_full)
        return NULL;
    if (ibs_cache_get(&v, job->sh->live->cache, key) || !v)
        return NULL;
    c = ibs_value_map_get_str(v, "created");
    if (!c || strcmp(c, created) != 0 || !ibs_value_map_get_str(v, "build_arn"))
        return NULL;
    return v;
}

static int remember_builds(struct kind_job *job, const char *key, const char *created,
                           const struct ibs_live_resource *r)
{
    struct ibs_value *v = ibs_value_new_map(), *tags = NULL;
    int rc;

    if (!job->sh->live->cache) {
        ibs_value_free(v);
        return 0;
    }
    if (!v)
        return IBS_ENOMEM;
    if ((rc = ibs_value_map_set(v, "created", ibs_value_new_string(created))) ||
        (rc = ibs_value_map_set(v, "build_arn", ibs_value_new_string(r->build_arn))) ||
        (rc = ibs_value_clone(&tags, r->tags)) || (rc = ibs_value_map_set(v, "tags", tags))) {
        ibs_value_free(v);
        return rc;
    }
    return ibs_cache_put(job->sh->live->cache, key, v);
}

/* The newest build of a component or workflow version, with its tags. */
static int read_builds(struct kind_job *job, struct ibs_live_resource *r)
{
    const bool component = r->kind == IBS_KIND_COMPONENT;
    const char *op = component ? "ListComponentBuildVersions" : "ListWorkflowBuildVersions";
    const char *created = date_text(r->summary, "dateCreated");
    struct ibs_value *input = NULL, *builds = NULL, *best = NULL;
    const struct ibs_value *hit;
    struct ibs_buf key = IBS_BUF_INIT;
    long best_build = -1;
    int rc = 0;

    ibs_buf_printf(&key, "builds %s", r->arn);
    if ((rc = ibs_buf_oom(&key)))
        goto done;
    pthread_mutex_lock(&job->sh->lock);
    hit = cached_builds(job, key.ptr, created);
    if (hit) {
        free(r->build_arn);
        r->build_arn = strdup(ibs_value_map_get_str(hit, "build_arn"));
        rc = r->build_arn ? fill_tags(r, ibs_value_map_get(hit, "tags")) : ibs_error_oom();
        job->hits++;
    }
    pthread_mutex_unlock(&job->sh->lock);
    if (hit)
        goto done;
    if (!(input = ibs_value_new_map())) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if ((rc = ibs_value_map_set(input, component ? "componentVersionArn" : "workflowVersionArn",
                                ibs_value_new_string(r->arn))))
        goto done;
    if ((rc = list(&builds, job, op, input)))
        goto done;
    for (size_t i = 0; i < builds->count; i++) {
        struct ibs_value *b = builds->u.items[i];
        const char *arn = ibs_value_map_get_str(b, "arn");
        const char *slash = arn ? strrchr(arn, '/') : NULL;
        long n = slash ? strtol(slash + 1, NULL, 10) : -1;
        if (n > best_build) {
            best_build = n;
            best = b;
        }
    }
    if (!best)
        goto done;
    free(r->build_arn);
    if (!(r->build_arn = strdup(ibs_value_map_get_str(best, "arn")))) {
        rc = ibs_error_oom();
        goto done;
    }
    if ((rc = fill_tags(r, ibs_value_map_get(best, "tags"))))
        goto done;
    pthread_mutex_lock(&job->sh->lock);
    rc = remember_builds(job, key.ptr, created, r);
    pthread_mutex_unlock(&job->sh->lock);
done:
    ibs_buf_release(&key);
    ibs_value_free(input);
    ibs_value_free(builds);
    return rc;
}

/* Build versions of every listed version, IBS_LIVE_FANOUT at a time: the
 * calls are independent, and one after another they would cost a round
 * trip each on a cold cache. */
#define IBS_LIVE_FANOUT 8

struct builds_pool {
    struct kind_job *job;
    pthread_mutex_t lock; /* next, rc, and the job's counters */
    size_t next;
    int rc;
    char error[512];
};

static void *builds_worker(void *arg)
{
    struct builds_pool *bp = arg;

    for (;;) {
        struct kind_job local;
        struct ibs_live_resource *r;
        int rc;

        pthread_mutex_lock(&bp->lock);
        if (bp->rc || bp->next >= bp->job->found.count) {
            pthread_mutex_unlock(&bp->lock);
            return NULL;
        }
        r = bp->job->found.items[bp->next++];
        pthread_mutex_unlock(&bp->lock);
        /* Counters per call, merged under the pool's lock. */
        memset(&local, 0, sizeof(local));
        local.sh = bp->job->sh;
        local.kind = bp->job->kind;
        rc = read_builds(&local, r);
        pthread_mutex_lock(&bp->lock);
        bp->job->calls += local.calls;
        bp->job->hits += local.hits;
        if (rc && !bp->rc) {
            bp->rc = rc;
            snprintf(bp->error, sizeof(bp->error), "%s", ibs_error_last()->message);
        }
        pthread_mutex_unlock(&bp->lock);
    }
}

static int read_all_builds(struct kind_job *job)
{
    struct builds_pool bp;
    pthread_t threads[IBS_LIVE_FANOUT];
    size_t started = 0;

    memset(&bp, 0, sizeof(bp));
    bp.job = job;
    pthread_mutex_init(&bp.lock, NULL);
    for (size_t t = 0; t < IBS_LIVE_FANOUT && t < job->found.count; t++, started++)
        if (pthread_create(&threads[t], NULL, builds_worker, &bp) != 0)
            break;
    if (started == 0)
        builds_worker(&bp);
    for (size_t t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    pthread_mutex_destroy(&bp.lock);
    if (bp.rc)
        return ibs_error_set(bp.rc, "%s", bp.error);
    return 0;
}

static int note_account(struct shared *sh, const char *arn)
{
    char acct[13];
    int rc = 0;

    ibs_live_arn_account(acct, arn);
    if (!acct[0])
        return 0;
    pthread_mutex_lock(&sh->lock);
    if (!sh->live->account && !(sh->live->account = strdup(acct)))
        rc = ibs_error_oom();
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

static int read_kind(struct kind_job *job)
{
    const struct ibs_kind_info *info = ibs_model_kind_info(job->kind);
    const struct ibs_api_operation *op = ibs_api_operation_find(info->list_op);
    struct ibs_value *input = ibs_value_new_map(), *items = NULL;
    struct ibs_live_resource *r = NULL;
    int rc = 0;

    if (!input)
        return IBS_ENOMEM;
    if (!op) {
        rc = ibs_error_set(IBS_ERROR, "API model lacks %s", info->list_op);
        goto done;
    }
    if (ibs_api_member_find(op->input, "owner") &&
        (rc = ibs_value_map_set(input, "owner", ibs_value_new_string("Self"))))
        goto done;
    /* Every version, not the latest per name. */
    if (ibs_api_member_find(op->input, "byName") &&
        (rc = ibs_value_map_set(input, "byName", ibs_value_new_bool(false))))
        goto done;
    if ((rc = list(&items, job, info->list_op, input)))
        goto done;
    if ((rc = ibs_vec_reserve(&job->found, items->count)))
        goto done;
    for (size_t i = 0; i < items->count; i++) {
        struct ibs_value *item = items->u.items[i];
        const char *arn = ibs_value_map_get_str(item, "arn");
        const char *name = ibs_value_map_get_str(item, "name");

        if (!arn || !name)
            continue;
        if (!(r = calloc(1, sizeof(*r)))) {
            rc = ibs_error_oom();
            goto done;
        }
        r->kind = job->kind;
        r->arn = strdup(arn);
        r->build_arn = strdup(arn);
        r->name = strdup(name);
        if (!r->arn || !r->build_arn || !r->name) {
            rc = ibs_error_oom();
            goto done;
        }
        if (info->versioned) {
            const char *v = ibs_value_map_get_str(item, "version");
            r->version = v ? strdup(v) : arn_version(arn);
            if (!r->version) {
                rc = ibs_error_set(IBS_EINVALID, "cannot read the version of %s", arn);
                goto done;
            }
        }
        /* The summary moves into the resource: no copy per item. */
        r->summary = item;
        items->u.items[i] = NULL; /* ibs_value_free skips NULL items */
        if (ibs_value_map_get_str(r->summary, "dateUpdated"))
            r->date_updated = ibs_value_map_get_str(r->summary, "dateUpdated");
        if ((rc = fill_tags(r, ibs_value_map_get(r->summary, "tags"))))
            goto done;
        if ((rc = note_account(job->sh, arn)))
            goto done;
        if ((rc = ibs_vec_push(&job->found, r)))
            goto done;
        r = NULL;
    }
    if (job->kind == IBS_KIND_COMPONENT || job->kind == IBS_KIND_WORKFLOW)
        rc = read_all_builds(job);
done:
    live_resource_free(r);
    ibs_value_free(input);
    ibs_value_free(items);
    return rc;
}

static void *kind_thread(void *arg)
{
    struct kind_job *job = arg;
    job->rc = read_kind(job);
    if (job->rc)
        snprintf(job->error, sizeof(job->error), "reading %s: %s",
                 ibs_model_kind_info(job->kind)->list_op, ibs_error_last()->message);
    return NULL;
}

int ibs_live_read(struct ibs_live *live, struct ibs_provider *p)
{
    struct shared sh;
    struct kind_job jobs[IBS_KIND_COUNT];
    pthread_t threads[IBS_KIND_COUNT];
    bool started[IBS_KIND_COUNT];
    int rc = 0;

    memset(jobs, 0, sizeof(jobs));
    sh.live = live;
    sh.p = p;
    pthread_mutex_init(&sh.lock, NULL);
    for (int k = 0; k < IBS_KIND_COUNT; k++) {
        jobs[k].sh = &sh;
        jobs[k].kind = (enum ibs_kind)k;
        started[k] = pthread_create(&threads[k], NULL, kind_thread, &jobs[k]) == 0;
        if (!started[k])
            kind_thread(&jobs[k]);
    }
    for (int k = 0; k < IBS_KIND_COUNT; k++) {
        if (started[k])
            pthread_join(threads[k], NULL);
        live->calls += jobs[k].calls;
        live->cache_hits += jobs[k].hits;
    }
    pthread_mutex_destroy(&sh.lock);
    /* Merge in kind order, so that everything downstream is deterministic. */
    for (int k = 0; k < IBS_KIND_COUNT; k++) {
        struct kind_job *job = &jobs[k];
        if (job->rc && !rc)
            rc = ibs_error_set(job->rc, "%s", job->error);
        for (size_t i = 0; i < job->found.count; i++) {
            struct ibs_live_resource *r = job->found.items[i];
            if (rc || ibs_vec_push(&live->resources, r)) {
                live_resource_free(r);
                rc = rc ? rc : ibs_error_oom();
                continue;
            }
            r->index = live->resources.count - 1;
        }
        ibs_vec_release(&job->found);
    }
    if (rc)
        return rc;
    if (!live->account && p->account && !(live->account = strdup(p->account)))
        return ibs_error_oom();
    return 0;
}

/* What dates a detail: dateUpdated when the kind has one, else dateCreated. */
static int detail_key(struct ibs_buf *key, struct ibs_buf *stamp, const struct ibs_live_resource *r)
{
    const char *u = date_text(r->summary, "dateUpdated");
    ibs_buf_printf(key, "detail %s", r->build_arn);
    ibs_buf_printf(stamp, "%s|%s", date_text(r->summary, "dateCreated"), u);
    return ibs_buf_oom(key) || ibs_buf_oom(stamp) ? IBS_ENOMEM : 0;
}

/* The detail of `r`, from the cache or its Get call. `lock` (may be NULL)
 * guards the cache and the counters when several threads fetch. */
static int fetch_detail(struct ibs_live *live, struct ibs_provider *p, struct ibs_live_resource *r,
                        pthread_mutex_t *lock)
{
    const struct ibs_kind_info *info = ibs_model_kind_info(r->kind);
    struct ibs_value *input = NULL, *answer = NULL, *entry = NULL, *copy = NULL;
    struct ibs_buf key = IBS_BUF_INIT, stamp = IBS_BUF_INIT;
    const struct ibs_value *hit = NULL;
    bool cached = false;
    int rc;

    if ((rc = detail_key(&key, &stamp, r)))
        goto done;
    if (lock)
        pthread_mutex_lock(lock);
    if (live->cache && !live->refresh_full && ibs_cache_get(&hit, live->cache, key.ptr) == 0 &&
        hit) {
        const char *s = ibs_value_map_get_str(hit, "stamp");
        const struct ibs_value *d = ibs_value_map_get(hit, "detail");
        if (s && d && strcmp(s, stamp.ptr) == 0) {
            rc = ibs_value_clone(&r->detail, d);
            live->cache_hits++;
            cached = true;
        }
    }
    if (!cached)
        live->calls++;
    if (lock)
        pthread_mutex_unlock(lock);
    if (cached || rc)
        goto done;
    if (!(input = ibs_value_new_map())) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if ((rc = ibs_value_map_set(input, info->arn_member, ibs_value_new_string(r->build_arn))))
        goto done;
    if ((rc = ibs_provider_call(&answer, NULL, p, info->get_op, input)))
        goto done;
    r->detail = ibs_value_map_take(answer, info->get_key);
    if (!r->detail) {
        rc = ibs_error_set(IBS_EINVALID, "%s answered without \"%s\"", info->get_op, info->get_key);
        goto done;
    }
    if (live->cache) {
        if (!(entry = ibs_value_new_map()) ||
            (rc = ibs_value_map_set(entry, "stamp", ibs_value_new_string(stamp.ptr))) ||
            (rc = ibs_value_clone(&copy, r->detail)) ||
            (rc = ibs_value_map_set(entry, "detail", copy))) {
            rc = rc ? rc : IBS_ENOMEM;
            goto done;
        }
        if (lock)
            pthread_mutex_lock(lock);
        rc = ibs_cache_put(live->cache, key.ptr, entry);
        if (lock)
            pthread_mutex_unlock(lock);
        entry = NULL;
    }
done:
    ibs_value_free(entry);
    ibs_buf_release(&key);
    ibs_buf_release(&stamp);
    ibs_value_free(input);
    ibs_value_free(answer);
    return rc;
}

int ibs_live_detail(const struct ibs_value **out, struct ibs_live *live, struct ibs_provider *p,
                    struct ibs_live_resource *r)
{
    int rc;

    *out = NULL;
    if (!r->detail) {
        /* ListImagePipelines answers whole ImagePipeline objects: the summary
         * is the detail, no Get needed. */
        if (r->kind == IBS_KIND_IMAGE_PIPELINE)
            rc = ibs_value_clone(&r->detail, r->summary);
        else
            rc = fetch_detail(live, p, r, NULL);
        if (rc)
            return rc;
    }
    *out = r->detail;
    return 0;
}

struct prefetch_pool {
    struct ibs_live *live;
    struct ibs_provider *p;
    struct ibs_vec todo;  /* struct ibs_live_resource * */
    pthread_mutex_t lock; /* next, rc, the cache and the counters */
    size_t next;
    int rc;
    char error[512];
};

static void *prefetch_worker(void *arg)
{
    struct prefetch_pool *pp = arg;

    for (;;) {
        struct ibs_live_resource *r;
        int rc;

        pthread_mutex_lock(&pp->lock);
        if (pp->rc || pp->next >= pp->todo.count) {
            pthread_mutex_unlock(&pp->lock);
            return NULL;
        }
        r = pp->todo.items[pp->next++];
        pthread_mutex_unlock(&pp->lock);
        rc = fetch_detail(pp->live, pp->p, r, &pp->lock);
        if (rc) {
            pthread_mutex_lock(&pp->lock);
            if (!pp->rc) {
                pp->rc = rc;
                snprintf(pp->error, sizeof(pp->error), "%s", ibs_error_last()->message);
            }
            pthread_mutex_unlock(&pp->lock);
        }
    }
}

int ibs_live_prefetch(struct ibs_live *live, struct ibs_provider *p, const char *stack)
{
    struct prefetch_pool pp;
    pthread_t threads[IBS_LIVE_FANOUT];
    size_t started = 0;
    int rc = 0;

    memset(&pp, 0, sizeof(pp));
    pp.live = live;
    pp.p = p;
    for (size_t i = 0; i < live->resources.count; i++) {
        struct ibs_live_resource *r = live->resources.items[i];
        if (r->detail || !r->stack || strcmp(r->stack, stack) != 0 ||
            (r->kind != IBS_KIND_INFRASTRUCTURE_CONFIGURATION &&
             r->kind != IBS_KIND_DISTRIBUTION_CONFIGURATION &&
             r->kind != IBS_KIND_LIFECYCLE_POLICY))
            continue;
        if ((rc = ibs_vec_push(&pp.todo, r)))
            goto done;
    }
    pthread_mutex_init(&pp.lock, NULL);
    for (size_t t = 0; t < IBS_LIVE_FANOUT && t < pp.todo.count; t++, started++)
        if (pthread_create(&threads[t], NULL, prefetch_worker, &pp) != 0)
            break;
    if (started == 0)
        prefetch_worker(&pp);
    for (size_t t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    pthread_mutex_destroy(&pp.lock);
    if (pp.rc)
        rc = ibs_error_set(pp.rc, "%s", pp.error);
done:
    ibs_vec_release(&pp.todo);
    return rc;
}

static int cmp_kind_name(enum ibs_kind ka, const char *na, enum ibs_kind kb, const char *nb)
{
    if (ka != kb)
        return ka < kb ? -1 : 1;
    return strcmp(na, nb);
}

static int cmp_live(const void *a, const void *b)
{
    const struct ibs_live_resource *x = *(struct ibs_live_resource *const *)a;
    const struct ibs_live_resource *y = *(struct ibs_live_resource *const *)b;
    int c = cmp_kind_name(x->kind, x->name, y->kind, y->name);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

int ibs_live_find(struct ibs_vec *out, const struct ibs_live *live_c, enum ibs_kind kind,
                  const char *name)
{
    struct ibs_live *live = (struct ibs_live *)live_c;
    size_t n = live->resources.count, lo = 0, hi = n;
    int rc = 0;

    if (!live->sorted && n) {
        live->sorted = malloc(n * sizeof(*live->sorted));
        if (!live->sorted)
            return ibs_error_oom();
        memcpy(live->sorted, live->resources.items, n * sizeof(*live->sorted));
        qsort(live->sorted, n, sizeof(*live->sorted), cmp_live);
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_kind_name(live->sorted[mid]->kind, live->sorted[mid]->name, kind, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; !rc && lo < n && live->sorted[lo]->kind == kind &&
           strcmp(live->sorted[lo]->name, name) == 0;
         lo++)
        rc = ibs_vec_push(out, live->sorted[lo]);
    return rc;
}
