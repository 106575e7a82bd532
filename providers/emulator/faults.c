/*
 * Fault decisions for the emulator's HTTP server: settings, a seeded PRNG
 * and a token bucket behind one mutex (see faults.h for the order of the
 * checks).
 *
 * The PRNG is SplitMix64: tiny, statistically sound for this use, and
 * fully determined by its 64-bit state, which makes "same seed, same order
 * of calls, same faults" easy to guarantee. Each decision draws exactly
 * four values (throttle, error, error kind, drop) even when a rate is 0 or
 * an earlier check already decided, so that changing one rate at run time
 * does not shift the sequence the other rates see.
 */
#include "providers/emulator/faults.h"

#include "util/error.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct ibs_faults {
    pthread_mutex_t lock;
    struct ibs_faults_config cfg;
    uint64_t state;   /* SplitMix64 state */
    double tokens;    /* token bucket content */
    int64_t refilled; /* ms of the last refill; -1 before the first call */
};

/* Messages as the API reference describes the errors; "(injected)" tells a
 * reader of a client's log that the emulator, not a bug, produced them. */
static const char throttle_message[] =
    "You have exceeded the permitted request rate for the specific operation. (injected)";
static const char rate_limit_message[] =
    "You have exceeded the permitted request rate for the specific operation. (rate limit)";
static const char service_message[] =
    "This exception is thrown when the service encounters an unrecoverable exception. (injected)";
static const char unavailable_message[] =
    "The service is unable to process your request at this time. (injected)";

static uint64_t next_u64(struct ibs_faults *f)
{
    uint64_t z = (f->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1): the top 53 bits as a double's mantissa. */
static double next_unit(struct ibs_faults *f)
{
    return (double)(next_u64(f) >> 11) * (1.0 / 9007199254740992.0);
}

static int check_rate(const char *name, double v)
{
    if (!isfinite(v) || v < 0.0 || v > 1.0)
        return ibs_error_set(IBS_EINVALID, "%s must be between 0 and 1, not %g", name, v);
    return 0;
}

int ibs_faults_check(const struct ibs_faults_config *cfg)
{
    int rc;

    if (cfg->latency_ms < 0 || cfg->latency_ms > IBS_FAULTS_MAX_LATENCY_MS)
        return ibs_error_set(IBS_EINVALID, "latencyMs must be between 0 and %d, not %lld",
                             IBS_FAULTS_MAX_LATENCY_MS, (long long)cfg->latency_ms);
    if ((rc = check_rate("throttleRate", cfg->throttle_rate)) ||
        (rc = check_rate("errorRate", cfg->error_rate)) ||
        (rc = check_rate("dropRate", cfg->drop_rate)))
        return rc;
    if (!isfinite(cfg->rate_limit) || cfg->rate_limit < 0.0 ||
        cfg->rate_limit > IBS_FAULTS_MAX_RATE_LIMIT)
        return ibs_error_set(IBS_EINVALID, "rateLimit must be between 0 and %.0f, not %g",
                             IBS_FAULTS_MAX_RATE_LIMIT, cfg->rate_limit);
    if (cfg->seed < 0)
        return ibs_error_set(IBS_EINVALID, "seed must not be negative, not %lld",
                             (long long)cfg->seed);
    return 0;
}

/* The bucket holds one second's worth of calls, and at least one. */
static double bucket_capacity(const struct ibs_faults_config *cfg)
{
    return cfg->rate_limit < 1.0 ? 1.0 : cfg->rate_limit;
}

static void refill_reset(struct ibs_faults *f)
{
    f->tokens = bucket_capacity(&f->cfg);
    f->refilled = -1;
}

int ibs_faults_new(struct ibs_faults **out, const struct ibs_faults_config *cfg)
{
    struct ibs_faults *f;
    int rc;

    *out = NULL;
    if ((rc = ibs_faults_check(cfg)))
        return rc;
    if (!(f = calloc(1, sizeof(*f))))
        return ibs_error_oom();
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f);
        return ibs_error_set(IBS_ERROR, "faults: cannot create mutex");
    }
    f->cfg = *cfg;
    f->state = (uint64_t)cfg->seed;
    refill_reset(f);
    *out = f;
    return 0;
}

void ibs_faults_free(struct ibs_faults *f)
{
    if (!f)
        return;
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void ibs_faults_get(struct ibs_faults_config *out, struct ibs_faults *f)
{
    pthread_mutex_lock(&f->lock);
    *out = f->cfg;
    pthread_mutex_unlock(&f->lock);
}

int ibs_faults_set(struct ibs_faults *f, const struct ibs_faults_config *cfg)
{
    int rc;

    if ((rc = ibs_faults_check(cfg)))
        return rc;
    pthread_mutex_lock(&f->lock);
    f->cfg = *cfg;
    f->state = (uint64_t)cfg->seed;
    refill_reset(f);
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static int member_number(double *out, const struct ibs_member *m)
{
    if (m->value->type == IBS_VALUE_INT)
        *out = (double)m->value->num.i;
    else if (m->value->type == IBS_VALUE_FLOAT)
        *out = m->value->num.d;
    else
        return ibs_error_set(IBS_EINVALID, "%s must be a number, not a %s", m->key,
                             ibs_value_type_name(m->value->type));
    return 0;
}

static int member_integer(int64_t *out, const struct ibs_member *m)
{
    if (m->value->type != IBS_VALUE_INT)
        return ibs_error_set(IBS_EINVALID, "%s must be an integer, not a %s", m->key,
                             ibs_value_type_name(m->value->type));
    *out = m->value->num.i;
    return 0;
}

int ibs_faults_update(struct ibs_faults *f, const struct ibs_value *patch)
{
    struct ibs_faults_config cfg;
    bool reseed = false, refill = false;
    int rc = 0;

    if (!patch || patch->type != IBS_VALUE_MAP)
        return ibs_error_set(IBS_EINVALID, "the fault settings must be a JSON object");
    pthread_mutex_lock(&f->lock);
    cfg = f->cfg;
    for (size_t i = 0; i < patch->count && !rc; i++) {
        const struct ibs_member *m = &patch->u.members[i];
        if (strcmp(m->key, "latencyMs") == 0) {
            rc = member_integer(&cfg.latency_ms, m);
        } else if (strcmp(m->key, "throttleRate") == 0) {
            rc = member_number(&cfg.throttle_rate, m);
        } else if (strcmp(m->key, "errorRate") == 0) {
            rc = member_number(&cfg.error_rate, m);
        } else if (strcmp(m->key, "dropRate") == 0) {
            rc = member_number(&cfg.drop_rate, m);
        } else if (strcmp(m->key, "rateLimit") == 0) {
            rc = member_number(&cfg.rate_limit, m);
            refill = true;
        } else if (strcmp(m->key, "seed") == 0) {
            rc = member_integer(&cfg.seed, m);
            reseed = true;
        } else {
            rc = ibs_error_set(IBS_EINVALID,
                               "unknown member \"%s\" (expected latencyMs, throttleRate, "
                               "errorRate, dropRate, rateLimit or seed)",
                               m->key);
        }
    }
    if (!rc)
        rc = ibs_faults_check(&cfg);
    if (!rc) {
        f->cfg = cfg;
        if (reseed)
            f->state = (uint64_t)cfg.seed;
        if (refill)
            refill_reset(f);
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* Takes one token from the bucket; false when it is empty. */
static bool bucket_take(struct ibs_faults *f, int64_t now_ms)
{
    double cap = bucket_capacity(&f->cfg);

    if (f->cfg.rate_limit <= 0.0)
        return true;
    if (f->refilled >= 0 && now_ms > f->refilled)
        f->tokens += (double)(now_ms - f->refilled) * f->cfg.rate_limit / 1000.0;
    if (f->refilled < 0 || now_ms > f->refilled)
        f->refilled = now_ms;
    if (f->tokens > cap)
        f->tokens = cap;
    if (f->tokens < 1.0)
        return false;
    f->tokens -= 1.0;
    return true;
}

void ibs_faults_decide(struct ibs_fault_decision *out, struct ibs_faults *f, int64_t now_ms)
{
    double u_throttle, u_error, u_kind, u_drop;
    bool allowed;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&f->lock);
    u_throttle = next_unit(f);
    u_error = next_unit(f);
    u_kind = next_unit(f);
    u_drop = next_unit(f);
    allowed = bucket_take(f, now_ms);
    out->latency_ms = f->cfg.latency_ms;
    if (!allowed || u_throttle < f->cfg.throttle_rate) {
        out->fault = IBS_FAULT_THROTTLE;
        out->status = 429;
        out->aws_code = "CallRateLimitExceededException";
        out->message = allowed ? throttle_message : rate_limit_message;
    } else if (u_error < f->cfg.error_rate) {
        out->fault = IBS_FAULT_ERROR;
        if (u_kind < 0.5) {
            out->status = 500;
            out->aws_code = "ServiceException";
            out->message = service_message;
        } else {
            out->status = 503;
            out->aws_code = "ServiceUnavailableException";
            out->message = unavailable_message;
        }
    } else if (u_drop < f->cfg.drop_rate) {
        out->fault = IBS_FAULT_DROP;
    }
    pthread_mutex_unlock(&f->lock);
}

/* ibs_value_map_set() for a freshly built item that may be NULL (out of memory). */
static int put(struct ibs_value *map, const char *key, struct ibs_value *item)
{
    if (!item)
        return IBS_ENOMEM;
    return ibs_value_map_set(map, key, item);
}

int ibs_faults_to_value(struct ibs_value **out, const struct ibs_faults_config *cfg)
{
    struct ibs_value *map = ibs_value_new_map();
    int rc = 0;

    *out = NULL;
    if (!map)
        return IBS_ENOMEM;
    if ((rc = put(map, "latencyMs", ibs_value_new_int(cfg->latency_ms))) ||
        (rc = put(map, "throttleRate", ibs_value_new_float(cfg->throttle_rate))) ||
        (rc = put(map, "errorRate", ibs_value_new_float(cfg->error_rate))) ||
        (rc = put(map, "dropRate", ibs_value_new_float(cfg->drop_rate))) ||
        (rc = put(map, "rateLimit", ibs_value_new_float(cfg->rate_limit))) ||
        (rc = put(map, "seed", ibs_value_new_int(cfg->seed))))
        goto done;
    *out = map;
    map = NULL;
done:
    ibs_value_free(map);
    return rc;
}

const char *ibs_faults_name(enum ibs_fault fault)
{
    switch (fault) {
    case IBS_FAULT_THROTTLE:
        return "throttle";
    case IBS_FAULT_ERROR:
        return "error";
    case IBS_FAULT_DROP:
        return "drop";
    case IBS_FAULT_NONE:
        break;
    }
    return "none";
}
