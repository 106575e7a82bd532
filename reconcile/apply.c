/*
 * Plan execution on a thread pool; see apply.h. All shared state (action
 * statuses, the symbol table of known ARNs, the journal callback) is guarded
 * by one mutex; provider calls are made without holding it.
 */
#include "reconcile/apply.h"

#include "api/api.h"
#include "reconcile/request.h"
#include "util/buf.h"
#include "util/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct runner {
    const struct ibs_plan *plan;
    struct ibs_provider *p;
    const struct ibs_apply_options *opts;
    struct ibs_apply_result *res;
    struct ibs_value *symbols;     /* "Kind/name@version" -> ARN */
    struct ibs_value_index *symix; /* index of symbols */
    size_t *pending_deps;          /* per action: dependencies not yet done */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t running;
    bool stop; /* no new actions: failure (without keep_going) or cancel */
    int first_error;
    /* Backing off as a whole: when an action is still throttled after the
     * client's own retries, no worker starts anything before this time, and
     * the action is sent again (same clientToken) up to APPLY_THROTTLE_TRIES. */
    long pause_until_ms;
    unsigned throttle_streak;
    unsigned *throttle_tries; /* per action */
};

#define APPLY_THROTTLE_TRIES 4
#define APPLY_THROTTLE_BASE_MS 1000L
#define APPLY_THROTTLE_CAP_MS 20000L

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A deterministic jitter in [0, 1) for the pause of action i's try n. */
static double jitter(size_t i, unsigned n)
{
    unsigned long x = (unsigned long)i * 2654435761ul + n * 40503ul + 12345ul;
    x ^= x >> 13;
    x *= 0x5bd1e995ul;
    x ^= x >> 15;
    return (double)(x % 1000) / 1000.0;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void ibs_apply_result_release(struct ibs_apply_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->arns ? r->arns[i] : NULL);
        free(r->errors ? r->errors[i] : NULL);
    }
    free(r->status);
    free(r->arns);
    free(r->errors);
    memset(r, 0, sizeof(*r));
}

/* Resolves placeholders against the symbol table; the caller holds the lock.
 * A parentImage that names a recipe means the images that recipe builds. */
static const char *arn_of(void *ctx, const char *symbol, const char *member)
{
    struct runner *rn = ctx;
    const struct ibs_value *v = ibs_value_index_get(rn->symix, rn->symbols, symbol);
    static _Thread_local char image_arn[1100];
    const char *arn, *p;

    if (!v || v->type != IBS_VALUE_STRING)
        return NULL;
    arn = v->str;
    if (strcmp(member, "parentImage") != 0)
        return arn;
    /* arn:aws:imagebuilder:R:A:image-recipe/NAME/1.0.0 -> .../image/NAME/x.x.x */
    p = strstr(arn, ":image-recipe/");
    if (!p)
        p = strstr(arn, ":container-recipe/");
    if (!p)
        return arn;
    {
        const char *name = strchr(p, '/') + 1;
        const char *end = strchr(name, '/');
        size_t nl = end ? (size_t)(end - name) : strlen(name);
        int n = snprintf(image_arn, sizeof(image_arn), "%.*s:image/%.*s/x.x.x", (int)(p - arn), arn,
                         (int)nl, name);
        if (n < 0 || (size_t)n >= sizeof(image_arn))
            return NULL;
    }
    return image_arn;
}

static int symbol_of(char **out, const struct ibs_action *a)
{
    return ibs_request_symbol(out, a->kind, a->name,
                              ibs_model_kind_info(a->kind)->versioned ? a->version : NULL);
}

/* The ARN a Create answer names. Components and workflows answer with the
 * build version ARN (.../1.0.0/1); references use the version ARN. */
static char *created_arn(const struct ibs_action *a, const struct ibs_value *answer)
{
    const char *arn = NULL;

    for (size_t i = 0; answer && i < answer->count; i++) {
        const struct ibs_member *m = &answer->u.members[i];
        size_t kl = strlen(m->key);
        if (kl > 3 && strcmp(m->key + kl - 3, "Arn") == 0 && m->value->type == IBS_VALUE_STRING)
            arn = m->value->str;
    }
    if (!arn)
        return NULL;
    if (a->kind == IBS_KIND_COMPONENT || a->kind == IBS_KIND_WORKFLOW) {
        const char *slash = strrchr(arn, '/');
        return slash ? strndup(arn, (size_t)(slash - arn)) : strdup(arn);
    }
    return strdup(arn);
}

static int record(struct runner *rn, const struct ibs_action *a, const char *event, const char *arn,
                  const char *error)
{
    struct ibs_value *rec;
    int rc;

    if (!rn->opts || !rn->opts->record)
        return 0;
    rec = ibs_value_new_map();
    if (!rec)
        return IBS_ENOMEM;
    if ((rc = ibs_value_map_set(rec, "event", ibs_value_new_string(event))) ||
        (rc = ibs_value_map_set(rec, "plan", ibs_value_new_string(rn->plan->id))) ||
        (rc = ibs_value_map_set(rec, "action", ibs_value_new_string(a->key))) ||
        (rc = ibs_value_map_set(rec, "token", ibs_value_new_string(a->client_token))) ||
        (arn && (rc = ibs_value_map_set(rec, "arn", ibs_value_new_string(arn)))) ||
        (error && (rc = ibs_value_map_set(rec, "error", ibs_value_new_string(error)))))
        goto done;
    rc = rn->opts->record(rn->opts->record_ctx, rec);
done:
    ibs_value_free(rec);
    return rc;
}

static int set_member(struct ibs_value *map, const char *key, const char *s)
{
    return ibs_value_map_set(map, key, ibs_value_new_string(s));
}

static int call(struct runner *rn, struct ibs_value **out, const char *op,
                const struct ibs_value *input)
{
    struct ibs_value *ignored = NULL;
    int rc = ibs_provider_call(out ? out : &ignored, NULL, rn->p, op, input);
    ibs_value_free(ignored);
    return rc;
}

static int do_tags(struct runner *rn, const struct ibs_action *a, const char *arn)
{
    struct ibs_value *in = NULL;
    int rc = 0;

    if (a->tags && a->tags->count) {
        struct ibs_value *tags = NULL;
        if (!(in = ibs_value_new_map()))
            return IBS_ENOMEM;
        if ((rc = set_member(in, "resourceArn", arn)) || (rc = ibs_value_clone(&tags, a->tags)) ||
            (rc = ibs_value_map_set(in, "tags", tags)) || (rc = call(rn, NULL, "TagResource", in)))
            goto done;
        ibs_value_free(in);
        in = NULL;
    }
    if (a->untag.count) {
        struct ibs_value *keys = ibs_value_new_list();
        if (!(in = ibs_value_new_map()) || !keys) {
            ibs_value_free(keys);
            rc = IBS_ENOMEM;
            goto done;
        }
        for (size_t i = 0; !rc && i < a->untag.count; i++)
            rc = ibs_value_list_append(keys, ibs_value_new_string(a->untag.items[i]));
        if (rc) {
            ibs_value_free(keys);
            goto done;
        }
        if ((rc = set_member(in, "resourceArn", arn)) ||
            (rc = ibs_value_map_set(in, "tagKeys", keys)) ||
            (rc = call(rn, NULL, "UntagResource", in)))
            goto done;
    }
done:
    ibs_value_free(in);
    return rc;
}

/* Keeps only the members the Update request has, and adds the ARN. */
static int update_request(struct ibs_value **out, const struct ibs_action *a,
                          struct ibs_value *resolved)
{
    const struct ibs_kind_info *info = ibs_model_kind_info(a->kind);
    const struct ibs_api_operation *op = ibs_api_operation_find(info->update_op);
    struct ibs_value *req = NULL;
    int rc = 0;

    *out = NULL;
    if (!op)
        return ibs_error_set(IBS_EUNSUPPORTED, "%s cannot be updated", info->name);
    if (!(req = ibs_value_new_map()))
        return IBS_ENOMEM;
    for (size_t i = 0; i < resolved->count; i++) {
        struct ibs_member *m = &resolved->u.members[i];
        if (!ibs_api_member_find(op->input, m->key))
            continue;
        if ((rc = ibs_value_map_append(req, m->key, strlen(m->key), m->key_loc, m->value))) {
            m->value = NULL;
            goto done;
        }
        m->value = NULL;
    }
    if ((rc = set_member(req, info->arn_member, a->arn)))
        goto done;
    *out = req;
    req = NULL;
done:
    ibs_value_free(req);
    return rc;
}

/* Runs one action; on success *out_arn is the ARN acted on or created. */
static int execute(struct runner *rn, const struct ibs_action *a, char **out_arn)
{
    const struct ibs_kind_info *info = ibs_model_kind_info(a->kind);
    struct ibs_value *resolved = NULL, *answer = NULL, *req = NULL;
    int rc = 0;

    *out_arn = NULL;
    if (a->request) {
        pthread_mutex_lock(&rn->lock);
        rc = ibs_request_resolve(&resolved, a->request, arn_of, rn);
        pthread_mutex_unlock(&rn->lock);
        if (rc)
            return rc;
    }
    switch (a->type) {
    case IBS_ACTION_CREATE:
    case IBS_ACTION_NEW_VERSION:
        if ((rc = set_member(resolved, "clientToken", a->client_token)))
            goto done;
        if ((rc = call(rn, &answer, info->create_op, resolved)))
            goto done;
        *out_arn = created_arn(a, answer);
        if (!*out_arn)
            rc = ibs_error_set(IBS_EINVALID, "%s answered without an ARN", info->create_op);
        break;
    case IBS_ACTION_UPDATE:
        if ((rc = update_request(&req, a, resolved)))
            goto done;
        if ((rc = set_member(req, "clientToken", a->client_token)))
            goto done;
        if ((rc = call(rn, NULL, info->update_op, req)))
            goto done;
        if ((rc = do_tags(rn, a, a->arn)))
            goto done;
        *out_arn = strdup(a->arn);
        break;
    case IBS_ACTION_TAG:
        if ((rc = do_tags(rn, a, a->arn)))
            goto done;
        *out_arn = strdup(a->arn);
        break;
    case IBS_ACTION_DELETE:
        if (!(req = ibs_value_new_map()) || (rc = set_member(req, info->arn_member, a->arn))) {
            rc = rc ? rc : IBS_ENOMEM;
            goto done;
        }
        rc = call(rn, NULL, info->delete_op, req);
        /* Already gone (e.g. deleted by an interrupted run): done. */
        if (rc == IBS_ENOTFOUND)
            rc = 0;
        if (!rc)
            *out_arn = strdup(a->arn);
        break;
    default:
        rc = ibs_error_set(IBS_EINVALID, "unknown action type");
    }
    if (!rc && !*out_arn)
        rc = ibs_error_oom();
done:
    ibs_value_free(resolved);
    ibs_value_free(answer);
    ibs_value_free(req);
    return rc;
}

/* Marks everything that depends (transitively) on `failed` as skipped. */
static void skip_dependents(struct runner *rn, size_t failed)
{
    bool changed = true;
    (void)failed;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < rn->plan->actions.count; i++) {
            const struct ibs_action *a = rn->plan->actions.items[i];
            if (rn->res->status[i] != IBS_APPLY_PENDING)
                continue;
            for (size_t k = 0; k < a->ndeps; k++) {
                enum ibs_apply_status s = rn->res->status[a->deps[k]];
                if (s == IBS_APPLY_FAILED || s == IBS_APPLY_SKIPPED) {
                    rn->res->status[i] = IBS_APPLY_SKIPPED;
                    changed = true;
                    break;
                }
            }
        }
    }
}

/* The next runnable action, or SIZE_MAX; the caller holds the lock. */
static size_t next_ready(struct runner *rn)
{
    if (rn->stop || (rn->opts && rn->opts->cancel && *rn->opts->cancel))
        return SIZE_MAX;
    for (size_t i = 0; i < rn->plan->actions.count; i++)
        if (rn->res->status[i] == IBS_APPLY_PENDING && rn->pending_deps[i] == 0)
            return i;
    return SIZE_MAX;
}

static void finish(struct runner *rn, size_t i, int rc, char *arn, const char *error)
{
    const struct ibs_action *a = rn->plan->actions.items[i];

    rn->res->status[i] = rc ? IBS_APPLY_FAILED : IBS_APPLY_DONE;
    if (rc) {
        rn->res->errors[i] = strdup(error ? error : "failed");
        rn->res->failed++;
        if (!rn->first_error)
            rn->first_error = rc;
        if (rn->opts && rn->opts->keep_going)
            skip_dependents(rn, i);
        else
            rn->stop = true;
        free(arn);
        return;
    }
    rn->res->arns[i] = arn;
    rn->res->done++;
    if (a->type == IBS_ACTION_CREATE || a->type == IBS_ACTION_NEW_VERSION) {
        char *sym = NULL;
        if (!symbol_of(&sym, a))
            ibs_value_index_set(rn->symix, rn->symbols, sym, ibs_value_new_string(arn));
        free(sym);
    }
    for (size_t j = 0; j < rn->plan->actions.count; j++) {
        const struct ibs_action *o = rn->plan->actions.items[j];
        for (size_t k = 0; k < o->ndeps; k++)
            if (o->deps[k] == i)
                rn->pending_deps[j]--;
    }
}

static void *worker(void *arg)
{
    struct runner *rn = arg;

    pthread_mutex_lock(&rn->lock);
    for (;;) {
        size_t i;
        long pause = rn->pause_until_ms - now_ms();

        if (pause > 0 && !rn->stop) {
            pthread_mutex_unlock(&rn->lock);
            sleep_ms(pause > 200 ? 200 : pause);
            pthread_mutex_lock(&rn->lock);
            continue;
        }
        i = next_ready(rn);
        const struct ibs_action *a;
        char *arn = NULL;
        long start;
        int rc;

        if (i == SIZE_MAX) {
            if (rn->running == 0)
                break;
            pthread_cond_wait(&rn->cond, &rn->lock);
            continue;
        }
        a = rn->plan->actions.items[i];
        rn->res->status[i] = IBS_APPLY_RUNNING;
        rn->running++;
        rc = record(rn, a, "start", NULL, NULL);
        if (rn->opts && rn->opts->progress)
            rn->opts->progress(rn->opts->progress_ctx, a, IBS_APPLY_EVENT_START, NULL, 0);
        pthread_mutex_unlock(&rn->lock);

        start = now_ms();
        if (!rc)
            rc = execute(rn, a, &arn);
        if (rc == IBS_ETHROTTLED) {
            /* Throttled through every attempt of the client: pause every
             * worker (exponential, jittered, capped) and put it back. */
            pthread_mutex_lock(&rn->lock);
            if (++rn->throttle_tries[i] < APPLY_THROTTLE_TRIES &&
                !(rn->opts && rn->opts->cancel && *rn->opts->cancel)) {
                unsigned shift = rn->throttle_streak < 5 ? rn->throttle_streak : 5;
                long delay = APPLY_THROTTLE_BASE_MS << shift;
                if (delay > APPLY_THROTTLE_CAP_MS)
                    delay = APPLY_THROTTLE_CAP_MS;
                delay = delay / 2 + (long)(jitter(i, rn->throttle_tries[i]) * (double)(delay / 2));
                rn->throttle_streak++;
                if (now_ms() + delay > rn->pause_until_ms)
                    rn->pause_until_ms = now_ms() + delay;
                rn->res->status[i] = IBS_APPLY_PENDING;
                rn->running--;
                pthread_cond_broadcast(&rn->cond);
                continue;
            }
            pthread_mutex_unlock(&rn->lock);
        } else if (rc == 0 && rn->throttle_streak) {
            pthread_mutex_lock(&rn->lock);
            rn->throttle_streak = 0;
            pthread_mutex_unlock(&rn->lock);
        }
        {
            const char *msg = rc ? ibs_error_last()->message : NULL;
            char *err = msg ? strdup(msg) : NULL;
            long elapsed = now_ms() - start;

            pthread_mutex_lock(&rn->lock);
            if (!rc && (rc = record(rn, a, "done", arn, NULL))) {
                free(err);
                err = strdup(ibs_error_last()->message);
            } else if (rc) {
                record(rn, a, "failed", NULL, err);
            }
            if (rn->opts && rn->opts->progress)
                rn->opts->progress(rn->opts->progress_ctx, a,
                                   rc ? IBS_APPLY_EVENT_FAILED : IBS_APPLY_EVENT_DONE,
                                   rc ? err : arn, elapsed);
            finish(rn, i, rc, arn, err);
            free(err);
        }
        rn->running--;
        pthread_cond_broadcast(&rn->cond);
    }
    pthread_cond_broadcast(&rn->cond);
    pthread_mutex_unlock(&rn->lock);
    return NULL;
}

int ibs_apply_run(struct ibs_apply_result *out, const struct ibs_plan *plan, struct ibs_provider *p,
                  const struct ibs_apply_options *opts)
{
    struct runner rn;
    size_t n = plan->actions.count;
    unsigned nthreads = opts && opts->parallelism ? opts->parallelism : 4;
    pthread_t *threads = NULL;
    unsigned started = 0;
    long start = now_ms();
    int rc = 0;

    memset(out, 0, sizeof(*out));
    memset(&rn, 0, sizeof(rn));
    rn.plan = plan;
    rn.p = p;
    rn.opts = opts;
    rn.res = out;
    out->n = n;
    out->status = calloc(n ? n : 1, sizeof(*out->status));
    out->arns = calloc(n ? n : 1, sizeof(char *));
    out->errors = calloc(n ? n : 1, sizeof(char *));
    rn.pending_deps = calloc(n ? n : 1, sizeof(size_t));
    rn.throttle_tries = calloc(n ? n : 1, sizeof(unsigned));
    threads = calloc(nthreads, sizeof(pthread_t));
    if (!out->status || !out->arns || !out->errors || !rn.pending_deps || !rn.throttle_tries ||
        !threads) {
        rc = ibs_error_oom();
        goto done;
    }
    if ((rc = ibs_value_clone(&rn.symbols, plan->symbols)) ||
        (rc = ibs_value_index_new(&rn.symix, rn.symbols)))
        goto done;
    for (size_t i = 0; i < n; i++)
        rn.pending_deps[i] = ((const struct ibs_action *)plan->actions.items[i])->ndeps;
    /* Actions an interrupted run completed count as done. */
    for (size_t i = 0; i < n; i++) {
        const struct ibs_action *a = plan->actions.items[i];
        const char *arn =
            opts && opts->completed ? ibs_value_map_get_str(opts->completed, a->key) : NULL;
        if (arn) {
            char *copy = strdup(arn);
            if (!copy) {
                rc = ibs_error_oom();
                goto done;
            }
            out->status[i] = IBS_APPLY_RUNNING; /* excluded from scheduling below */
            finish(&rn, i, 0, copy, NULL);
        }
    }
    pthread_mutex_init(&rn.lock, NULL);
    pthread_cond_init(&rn.cond, NULL);
    for (started = 0; started < nthreads; started++)
        if (pthread_create(&threads[started], NULL, worker, &rn) != 0)
            break;
    if (started == 0)
        worker(&rn);
    for (unsigned t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    pthread_cond_destroy(&rn.cond);
    pthread_mutex_destroy(&rn.lock);
    for (size_t i = 0; i < n; i++)
        if (out->status[i] == IBS_APPLY_PENDING) {
            out->status[i] = IBS_APPLY_SKIPPED;
            out->skipped++;
        } else if (out->status[i] == IBS_APPLY_SKIPPED) {
            out->skipped++;
        }
    if (rn.first_error)
        rc = ibs_error_set(rn.first_error, "%zu of %zu actions failed, %zu not run", out->failed, n,
                           out->skipped);
    else if (out->skipped && opts && opts->cancel && *opts->cancel)
        rc = ibs_error_set(IBS_ECANCELED, "interrupted: %zu of %zu actions not run", out->skipped,
                           n);
    else if (out->skipped)
        rc = ibs_error_set(IBS_ECONFLICT,
                           "%zu of %zu actions could not be scheduled: their dependencies form "
                           "a cycle",
                           out->skipped, n);
done:
    out->elapsed_ms = now_ms() - start;
    ibs_value_index_free(rn.symix);
    ibs_value_free(rn.symbols);
    free(rn.pending_deps);
    free(rn.throttle_tries);
    free(threads);
    return rc;
}
