/*
 * The "aws" provider: one Image Builder call = bind once, then up to
 * max_attempts signed attempts with the SDKs' "standard" retry mode, plus,
 * in "adaptive" mode (opt-in), client-side rate limiting shared by
 * every thread that calls the provider.
 *
 * Retry decision, per attempt that failed:
 *   - retryable: throttling errors (the SDKs' list, plus Image Builder's
 *     CallRateLimitExceededException, and any HTTP 429), transient errors
 *     (RequestTimeout, RequestTimeoutException, InternalError, HTTP 500,
 *     502, 503, 504) and transport failures (IBS_EIO, IBS_ETIMEOUT: no
 *     response). Nothing else is retried (a 400 never is).
 *   - not when max_attempts is reached, nor when the retry quota cannot pay
 *     for it. The quota is the SDKs' token bucket shared by all calls of a
 *     provider: it starts at 500 tokens, a retry costs 5 (10 after a
 *     timeout or connection failure), a call that succeeds gives back what
 *     its last retry cost, or 1 when it succeeded at once (never above the
 *     initial amount). A long outage thus stops retrying instead of
 *     multiplying the load.
 *   - backoff before attempt n+1: full jitter, rand01 * min(cap, base *
 *     2^(n-1)), with cap 20 s and base 1 s after throttling but 50 ms
 *     otherwise. botocore's standard mode uses a 1 s base for every error;
 *     ibsync splits it as its design fixes: throttling means the account's
 *     rate limit is shared with other callers, so backing off long helps,
 *     while a lost connection or a 500 is usually over at once. (Image
 *     Builder's LimitExceeded-style quota errors are not throttling and
 *     are not retried.)
 * Operations that are not idempotent (Create*, Update*, Start*, Import*,
 * Cancel*...) carry a clientToken in this API; ibs_aws_request_bind fixes it
 * once per call, so each retry repeats the same token and the service
 * deduplicates. An operation of that kind without a token would only be
 * retried after throttling (the request was refused, not performed).
 *
 * Adaptive mode (the AWS SDKs' retry_mode = adaptive): botocore's
 * ClientRateLimiter (botocore/retries/adaptive.py, bucket.py,
 * throttling.py), the algorithm the Java SDK's RateLimitingTokenBucket and
 * the Go SDK's adaptive rate limiter implement too. The retries above stay
 * as they are; in addition, each provider has one token bucket and every
 * attempt takes one token before it is sent. With parallel workers each
 * backing off on its own, their retries still arrive at the account's
 * limit together; one bucket for all of them spaces the attempts out
 * instead. The parts (constants IBS_AWS_RATE_* in client.h):
 *   - send rate: every attempt that was answered, or failed in transport,
 *     is counted; whenever the clock enters a new half-second bucket
 *     (floor(2t)/2), the count over the time since the previous bucket
 *     gives the current rate, smoothed: measured = 0.8 * current + 0.2 *
 *     measured. (The first bucket starts at floor(t) of the creation time,
 *     as in botocore.)
 *   - CUBIC (as in TCP's congestion control, RFC 8312): on a throttling
 *     response, W_max = the measured rate (once limiting is on, the lower
 *     of it and the fill rate), K = cbrt(W_max * (1 - beta) / C), and the
 *     new rate is W_max * beta; on any other answer at time t, the rate is
 *     C * (t - t_throttle - K)^3 + W_max, which starts at W_max * beta,
 *     is back at W_max after K seconds and grows faster beyond it.
 *     beta = 0.7, C = 0.4; before any throttle W_max = 0.
 *   - the fill rate after every answer is min(that rate, 2 * measured)
 *     but at least 0.5 tokens/s; the bucket holds max(rate, 1) tokens.
 *     Tokens accrue at the old rate up to the moment the rate changes.
 *   - acquiring: nothing until the first throttling response (limiting
 *     starts "enabled" by it, as in the SDKs); after that, a token is taken
 *     when the bucket holds one, else the caller sleeps (1 - tokens) /
 *     fill_rate seconds, rounded up to the ms, and looks again.
 * The bucket starts empty at creation, filling at 1 token/s, so the first
 * attempt after an early throttle waits up to 2 s (0.5 tokens/s): the
 * measured rate is still 0 then. Sleeping happens outside the lock through
 * the config's sleep_ms, the clock is the config's, so tests run on a fake
 * clock; a waiter whose rate rose meanwhile sleeps its computed time out
 * (at most 2 s) instead of being woken, unlike botocore's condition
 * variable. Standard mode (retry_mode "standard" or "legacy") has no
 * limiter.
 *
 * Every attempt fetches credentials again (they may have been refreshed)
 * and is signed anew (X-Amz-Date changes). Secrets never reach a log line
 * or an error message: the service sometimes echoes the Authorization or
 * X-Amz-Security-Token header in its message (IncompleteSignature), so the
 * signature, token and secret are masked in service messages too.
 */
#include "providers/aws/client.h"

#include "providers/aws/credentials.h"
#include "providers/aws/sigv4.h"
#include "util/error.h"
#include "util/version.h"

#include <openssl/rand.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USER_AGENT "ibsync/" IBS_VERSION
/* Header members of one operation (Image Builder has none today). */
#define MAX_HEADER_MEMBERS 8

struct aws_provider {
    struct ibs_aws_config cfg; /* callbacks; string members point into owned copies */
    struct ibs_aws_endpoint endpoint;
    struct ibs_http_client *http;
    unsigned max_attempts;
    long base_ms, throttle_base_ms, cap_ms;
    pthread_mutex_t mu; /* guards quota and stats */
    unsigned quota, quota_max;
    struct ibs_aws_stats stats;
    struct ibs_aws_rate_limiter *limiter; /* adaptive mode; NULL in standard mode */
};

static _Thread_local struct ibs_aws_call_stat last_call;

static const struct ibs_provider_ops aws_ops;

/* ---- defaults for the test hooks -------------------------------------- */

static double default_rand01(void *ctx)
{
    uint64_t r = 0;
    (void)ctx;
    if (RAND_bytes((unsigned char *)&r, (int)sizeof(r)) != 1)
        return 1.0 / 2;
    return (double)(r >> 11) / (double)(UINT64_C(1) << 53);
}

static void default_sleep(void *ctx, long ms)
{
    struct timespec ts;
    (void)ctx;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double default_clock(void *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void log_line(const struct aws_provider *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void log_line(const struct aws_provider *p, const char *fmt, ...)
{
    struct ibs_buf line = IBS_BUF_INIT;
    va_list ap;

    if (!p->cfg.http.log)
        return;
    va_start(ap, fmt);
    ibs_buf_vprintf(&line, fmt, ap);
    va_end(ap);
    if (!line.oom)
        p->cfg.http.log(p->cfg.http.log_ctx, line.ptr);
    ibs_buf_release(&line);
}

/* ---- adaptive mode: the rate limiter ---------------------------------- */

/* Slack for floating-point rounding: a bucket this close to one token holds
 * one, and a wait is not rounded up to an extra millisecond for it. */
#define TOKEN_EPSILON 1e-6

struct ibs_aws_rate_limiter {
    pthread_mutex_t mu; /* guards everything below */
    double (*clock)(void *ctx);
    void *clock_ctx;
    void (*sleep_ms)(void *ctx, long ms);
    void *sleep_ctx;
    bool enabled;
    /* token bucket */
    double fill_rate, max_capacity, capacity, last_refill;
    /* CUBIC */
    double last_max_rate, time_window, last_throttle;
    /* measured send rate */
    double measured_rate, last_tx_bucket;
    uint64_t tx_count;
    /* counters */
    uint64_t acquired, waits, wait_ms;
};

/* Adds the tokens earned since the last refill at the current fill rate. */
static void bucket_refill(struct ibs_aws_rate_limiter *l, double now)
{
    if (now <= l->last_refill)
        return;
    l->capacity += (now - l->last_refill) * l->fill_rate;
    if (l->capacity > l->max_capacity)
        l->capacity = l->max_capacity;
    l->last_refill = now;
}

static void bucket_set_rate(struct ibs_aws_rate_limiter *l, double rate, double now)
{
    /* What accrued so far accrued at the old rate. */
    bucket_refill(l, now);
    l->fill_rate = rate > IBS_AWS_RATE_MIN_FILL ? rate : IBS_AWS_RATE_MIN_FILL;
    l->max_capacity = rate > IBS_AWS_RATE_MIN_CAPACITY ? rate : IBS_AWS_RATE_MIN_CAPACITY;
    if (l->capacity > l->max_capacity)
        l->capacity = l->max_capacity;
}

/* Counts one answered attempt; returns the smoothed send rate. */
static double measure_tx_rate(struct ibs_aws_rate_limiter *l, double now)
{
    double bucket = floor(now / IBS_AWS_RATE_BUCKET_S) * IBS_AWS_RATE_BUCKET_S;

    l->tx_count++;
    if (bucket > l->last_tx_bucket) {
        double current = (double)l->tx_count / (bucket - l->last_tx_bucket);
        l->measured_rate =
            current * IBS_AWS_RATE_SMOOTHING + l->measured_rate * (1 - IBS_AWS_RATE_SMOOTHING);
        l->tx_count = 0;
        l->last_tx_bucket = bucket;
    }
    return l->measured_rate;
}

static double cubic_success(const struct ibs_aws_rate_limiter *l, double now)
{
    double dt = now - l->last_throttle - l->time_window;
    return IBS_AWS_RATE_SCALE_CONSTANT * dt * dt * dt + l->last_max_rate;
}

static double cubic_throttle(struct ibs_aws_rate_limiter *l, double rate, double now)
{
    l->last_max_rate = rate;
    l->time_window = cbrt(rate * (1 - IBS_AWS_RATE_BETA) / IBS_AWS_RATE_SCALE_CONSTANT);
    l->last_throttle = now;
    return rate * IBS_AWS_RATE_BETA;
}

static void limiter_state(struct ibs_aws_rate_limiter_state *out,
                          const struct ibs_aws_rate_limiter *l)
{
    out->enabled = l->enabled;
    out->fill_rate = l->fill_rate;
    out->max_capacity = l->max_capacity;
    out->capacity = l->capacity;
    out->measured_rate = l->measured_rate;
    out->last_max_rate = l->last_max_rate;
    out->time_window = l->time_window;
    out->last_throttle = l->last_throttle;
    out->acquired = l->acquired;
    out->waits = l->waits;
    out->wait_ms = l->wait_ms;
}

int ibs_aws_rate_limiter_new(struct ibs_aws_rate_limiter **out,
                             const struct ibs_aws_rate_limiter_options *opts)
{
    struct ibs_aws_rate_limiter *l;
    double now;

    *out = NULL;
    if (!(l = calloc(1, sizeof(*l))))
        return ibs_error_oom();
    pthread_mutex_init(&l->mu, NULL);
    l->clock = opts && opts->clock ? opts->clock : default_clock;
    l->clock_ctx = opts ? opts->clock_ctx : NULL;
    l->sleep_ms = opts && opts->sleep_ms ? opts->sleep_ms : default_sleep;
    l->sleep_ctx = opts ? opts->sleep_ctx : NULL;
    now = l->clock(l->clock_ctx);
    /* botocore: an empty bucket at 1 token/s, W_max 0, and the first
     * rate bucket at the whole second. */
    l->last_refill = now;
    bucket_set_rate(l, 1, now);
    l->last_throttle = now;
    l->last_tx_bucket = floor(now);
    *out = l;
    return 0;
}

void ibs_aws_rate_limiter_free(struct ibs_aws_rate_limiter *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void ibs_aws_rate_limiter_acquire(long *out_waited_ms, struct ibs_aws_rate_limiter *l)
{
    long waited = 0;

    pthread_mutex_lock(&l->mu);
    if (!l->enabled)
        goto done;
    for (;;) {
        long ms;

        bucket_refill(l, l->clock(l->clock_ctx));
        if (l->capacity >= 1 - TOKEN_EPSILON)
            break;
        ms = (long)ceil((1 - l->capacity) / l->fill_rate * 1000 - TOKEN_EPSILON);
        if (ms < 1)
            ms = 1;
        /* Others may take or add tokens meanwhile: look again after. */
        pthread_mutex_unlock(&l->mu);
        l->sleep_ms(l->sleep_ctx, ms);
        pthread_mutex_lock(&l->mu);
        waited += ms;
    }
    l->capacity -= 1;
    l->acquired++;
    if (waited) {
        l->waits++;
        l->wait_ms += (uint64_t)waited;
    }
done:
    pthread_mutex_unlock(&l->mu);
    if (out_waited_ms)
        *out_waited_ms = waited;
}

void ibs_aws_rate_limiter_update(struct ibs_aws_rate_limiter_state *out,
                                 struct ibs_aws_rate_limiter *l, bool throttled)
{
    double now, measured, rate;

    pthread_mutex_lock(&l->mu);
    now = l->clock(l->clock_ctx);
    measured = measure_tx_rate(l, now);
    if (!throttled) {
        rate = cubic_success(l, now);
    } else {
        /* Once limiting, the rate we were allowed may be below what was
         * measured over the last half second. */
        double base = l->enabled && l->fill_rate < measured ? l->fill_rate : measured;
        rate = cubic_throttle(l, base, now);
        l->enabled = true;
    }
    if (rate > IBS_AWS_RATE_MAX_SCALE * measured)
        rate = IBS_AWS_RATE_MAX_SCALE * measured;
    bucket_set_rate(l, rate, now);
    if (out)
        limiter_state(out, l);
    pthread_mutex_unlock(&l->mu);
}

void ibs_aws_rate_limiter_snapshot(struct ibs_aws_rate_limiter_state *out,
                                   struct ibs_aws_rate_limiter *l)
{
    pthread_mutex_lock(&l->mu);
    bucket_refill(l, l->clock(l->clock_ctx));
    limiter_state(out, l);
    pthread_mutex_unlock(&l->mu);
}

/* ---- lifecycle -------------------------------------------------------- */

static void aws_free(void *self)
{
    struct aws_provider *p = self;

    if (!p)
        return;
    if (p->cfg.credentials_free)
        p->cfg.credentials_free(p->cfg.credentials_ctx);
    ibs_http_client_free(p->http);
    ibs_aws_rate_limiter_free(p->limiter);
    ibs_aws_endpoint_release(&p->endpoint);
    free((char *)p->cfg.http.ca_bundle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static int max_attempts_of(unsigned *out, const struct ibs_aws_config *cfg)
{
    const char *v;
    char *end;
    unsigned long n;

    *out = IBS_AWS_DEFAULT_MAX_ATTEMPTS;
    if (cfg->max_attempts) {
        *out = cfg->max_attempts;
        return 0;
    }
    v = cfg->getenv ? cfg->getenv(cfg->env_ctx, "AWS_MAX_ATTEMPTS") : getenv("AWS_MAX_ATTEMPTS");
    if (!v || !*v)
        return 0;
    errno = 0;
    n = strtoul(v, &end, 10);
    if (*end || errno || n == 0 || n > 1000 || *v == '-' || *v == '+')
        return ibs_error_set(IBS_EINVALID,
                             "AWS_MAX_ATTEMPTS: expected an integer from 1 to 1000, not '%s'", v);
    *out = (unsigned)n;
    return 0;
}

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char cb = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (ca != cb)
            return false;
    }
    return *a == *b;
}

/* cfg->retry_mode, else AWS_RETRY_MODE, else standard (the SDKs' default).
 * Adaptive is opt-in: its rate estimate starts from nothing, so a process
 * throttled in its first half second is held near the 0.5/s floor and
 * recovers slowly (botocore shows the same), which costs more than it saves
 * against sporadic throttling; ibsync's apply also backs off as a whole
 * (reconcile/apply.c). */
static int retry_mode_of(bool *out_adaptive, const struct ibs_aws_config *cfg)
{
    const char *v = cfg->retry_mode, *source = "retry_mode";

    *out_adaptive = false;
    if (!v || !*v) {
        source = "AWS_RETRY_MODE";
        v = cfg->getenv ? cfg->getenv(cfg->env_ctx, source) : getenv(source);
    }
    if (!v || !*v)
        return 0;
    if (ascii_ieq(v, "adaptive")) {
        *out_adaptive = true;
        return 0;
    }
    /* "legacy" is the SDKs' older mode, which the shared config may name
     * for other tools; ibsync's nearest behaviour is standard. */
    if (ascii_ieq(v, "standard") || ascii_ieq(v, "legacy")) {
        *out_adaptive = false;
        return 0;
    }
    return ibs_error_set(IBS_EINVALID, "%s: expected standard, adaptive or legacy, not '%s'",
                         source, v);
}

int ibs_aws_provider_new(struct ibs_provider **out, const struct ibs_aws_config *cfg)
{
    struct aws_provider *p = NULL;
    struct ibs_provider *prov = NULL;
    const char *ca;
    bool adaptive;
    int rc;

    *out = NULL;
    if (!cfg)
        return ibs_error_set(IBS_EINVALID, "aws provider: no configuration");
    if (!(p = calloc(1, sizeof(*p)))) {
        if (cfg->credentials_free)
            cfg->credentials_free(cfg->credentials_ctx);
        return ibs_error_oom();
    }
    pthread_mutex_init(&p->mu, NULL);
    p->cfg = *cfg;
    /* Strings are copied or dropped: the endpoint keeps its own. */
    p->cfg.region = NULL;
    p->cfg.endpoint_url = NULL;
    ca = cfg->http.ca_bundle;
    p->cfg.http.ca_bundle = NULL;
    if (ca && !(p->cfg.http.ca_bundle = strdup(ca))) {
        rc = ibs_error_oom();
        goto done;
    }
    if (!cfg->get_credentials) {
        rc = ibs_error_set(IBS_EINVALID, "aws provider: no credentials source");
        goto done;
    }
    if ((rc = max_attempts_of(&p->max_attempts, cfg)) || (rc = retry_mode_of(&adaptive, cfg)) ||
        (rc = ibs_aws_endpoint_resolve(&p->endpoint, cfg)))
        goto done;
    p->base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : IBS_AWS_RETRY_BASE_MS;
    p->throttle_base_ms = cfg->retry_throttle_base_ms > 0 ? cfg->retry_throttle_base_ms
                                                          : IBS_AWS_RETRY_THROTTLE_BASE_MS;
    p->cap_ms = cfg->retry_cap_ms > 0 ? cfg->retry_cap_ms : IBS_AWS_RETRY_CAP_MS;
    p->quota_max = cfg->retry_quota ? cfg->retry_quota : IBS_AWS_RETRY_QUOTA;
    p->quota = p->quota_max;
    if (!p->cfg.rand01)
        p->cfg.rand01 = default_rand01;
    if (!p->cfg.sleep_ms)
        p->cfg.sleep_ms = default_sleep;
    if (!p->cfg.clock)
        p->cfg.clock = default_clock;
    p->stats.retry_mode = adaptive ? "adaptive" : "standard";
    if (adaptive) {
        struct ibs_aws_rate_limiter_options lo;

        lo.clock = p->cfg.clock;
        lo.clock_ctx = p->cfg.clock_ctx;
        lo.sleep_ms = p->cfg.sleep_ms;
        lo.sleep_ctx = p->cfg.sleep_ctx;
        if ((rc = ibs_aws_rate_limiter_new(&p->limiter, &lo)))
            goto done;
    }
    if ((rc = ibs_http_client_new(&p->http, &p->cfg.http)))
        goto done;
    if (!(prov = calloc(1, sizeof(*prov)))) {
        rc = ibs_error_oom();
        goto done;
    }
    prov->ops = &aws_ops;
    prov->self = p;
    prov->region = p->endpoint.region;
    prov->account = NULL;
    log_line(p, "aws: endpoint %s%s (%s), region %s, %u attempts, %s retry mode",
             p->endpoint.origin, p->endpoint.base_path, p->endpoint.source, p->endpoint.region,
             p->max_attempts, p->stats.retry_mode);
    *out = prov;
    p = NULL;
done:
    aws_free(p);
    return rc;
}

int ibs_aws_provider_stats(struct ibs_aws_stats *out, const struct ibs_provider *prov)
{
    struct aws_provider *p;

    memset(out, 0, sizeof(*out));
    if (!prov || prov->ops != &aws_ops)
        return ibs_error_set(IBS_EINVALID, "not an aws provider");
    p = prov->self;
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    out->retry_quota = p->quota;
    pthread_mutex_unlock(&p->mu);
    if (p->limiter) {
        struct ibs_aws_rate_limiter_state ls;

        ibs_aws_rate_limiter_snapshot(&ls, p->limiter);
        out->fill_rate = ls.enabled ? ls.fill_rate : 0;
        out->measured_rate = ls.measured_rate;
        out->rate_waits = ls.waits;
        out->rate_wait_ms = ls.wait_ms;
    }
    return 0;
}

void ibs_aws_provider_last_call(struct ibs_aws_call_stat *out)
{
    *out = last_call;
}

/* ---- one attempt ------------------------------------------------------ */

/* Replaces every occurrence of each secret (8 bytes or longer) in `s`. */
static void mask(char *s, const char *const *secrets, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        size_t len = secrets[i] ? strlen(secrets[i]) : 0;
        char *hit;

        if (len < 8)
            continue;
        while ((hit = strstr(s, secrets[i]))) {
            memcpy(hit, "***", 3);
            memmove(hit + 3, hit + len, strlen(hit + len) + 1);
        }
    }
}

struct attempt {
    struct ibs_aws_credentials_view creds; /* borrowed until this thread's next get */
    struct ibs_sigv4_result sig;
    struct ibs_http_response resp;
    int transport_rc; /* IBS_EIO / IBS_ETIMEOUT when no response came */
};

/* Signs and sends one attempt. Returns 0 when something came back or the
 * transport failed (a->transport_rc); an error when nothing could be sent. */
static int send_attempt(struct attempt *a, struct aws_provider *p, const struct ibs_aws_request *r,
                        const char *invocation_id, unsigned attempt)
{
    struct ibs_sigv4_credentials sc;
    struct ibs_sigv4_params params;
    struct ibs_sigv4_request sreq;
    struct ibs_sigv4_header sh[MAX_HEADER_MEMBERS + 5];
    struct ibs_http_header hh[MAX_HEADER_MEMBERS + 5 + IBS_SIGV4_MAX_ADDED_HEADERS];
    struct ibs_http_request hreq;
    struct ibs_buf path = IBS_BUF_INIT, url = IBS_BUF_INIT;
    char sdk_request[64];
    size_t n = 0;
    int rc;

    memset(&a->creds, 0, sizeof(a->creds));
    if ((rc = p->cfg.get_credentials(p->cfg.credentials_ctx, &a->creds)))
        goto done;
    if (!a->creds.access_key_id || !*a->creds.access_key_id || !a->creds.secret_access_key ||
        !*a->creds.secret_access_key) {
        rc = ibs_error_set(IBS_EAUTH, "the credentials source returned no access key");
        goto done;
    }
    if (r->nheaders > MAX_HEADER_MEMBERS) {
        rc = ibs_error_set(IBS_EUNSUPPORTED, "%s: too many header members", r->op->name);
        goto done;
    }
    ibs_buf_printf(&path, "%s%s", p->endpoint.base_path, r->path);
    ibs_buf_printf(&url, "%s%s%s%s", p->endpoint.origin, path.ptr, *r->query ? "?" : "", r->query);
    if ((rc = ibs_buf_oom(&path)) || (rc = ibs_buf_oom(&url)))
        goto done;
    snprintf(sdk_request, sizeof(sdk_request), "attempt=%u; max=%u", attempt, p->max_attempts);

    sh[n++] = (struct ibs_sigv4_header){"Host", p->endpoint.host};
    if (r->has_body)
        sh[n++] = (struct ibs_sigv4_header){"Content-Type", "application/json"};
    sh[n++] = (struct ibs_sigv4_header){"User-Agent", USER_AGENT};
    /* The SDKs' attempt headers: one id per call, and the attempt count. */
    sh[n++] = (struct ibs_sigv4_header){"amz-sdk-invocation-id", invocation_id};
    sh[n++] = (struct ibs_sigv4_header){"amz-sdk-request", sdk_request};
    for (size_t i = 0; i < r->nheaders; i++)
        sh[n++] = (struct ibs_sigv4_header){r->headers[i].name, r->headers[i].value};

    memset(&sreq, 0, sizeof(sreq));
    sreq.method = r->op->method;
    sreq.path = path.ptr;
    sreq.query = r->query;
    sreq.headers = sh;
    sreq.nheaders = n;
    sreq.payload = r->body.ptr;
    sreq.payload_len = r->body.size;
    sc.access_key_id = a->creds.access_key_id;
    sc.secret_access_key = a->creds.secret_access_key;
    sc.session_token = a->creds.session_token;
    memset(&params, 0, sizeof(params));
    params.region = p->endpoint.region;
    params.service = IBS_AWS_SERVICE;
    params.time = (int64_t)time(NULL);
    params.normalize_path = true;
    params.double_encode_path = true;
    if ((rc = ibs_sigv4_sign(&a->sig, &sreq, &sc, &params)))
        goto done;

    for (size_t i = 0; i < n; i++)
        hh[i] = (struct ibs_http_header){sh[i].name, sh[i].value};
    for (size_t i = 0; i < a->sig.nheaders; i++)
        hh[n + i] = (struct ibs_http_header){a->sig.headers[i].name, a->sig.headers[i].value};
    memset(&hreq, 0, sizeof(hreq));
    hreq.method = r->op->method;
    hreq.url = url.ptr;
    hreq.headers = hh;
    hreq.nheaders = n + a->sig.nheaders;
    hreq.body = r->has_body ? r->body.ptr : NULL;
    hreq.body_len = r->has_body ? r->body.size : 0;
    rc = ibs_http_send(&a->resp, p->http, &hreq);
    if (rc == IBS_EIO || rc == IBS_ETIMEOUT) {
        a->transport_rc = rc;
        rc = 0;
    }
done:
    ibs_buf_release(&path);
    ibs_buf_release(&url);
    return rc;
}

/* ---- retries ---------------------------------------------------------- */

static bool acquire_quota(struct aws_provider *p, unsigned cost)
{
    bool ok;

    pthread_mutex_lock(&p->mu);
    ok = p->quota >= cost;
    if (ok)
        p->quota -= cost;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void release_quota(struct aws_provider *p, unsigned amount)
{
    pthread_mutex_lock(&p->mu);
    p->quota = p->quota_max - p->quota < amount ? p->quota_max : p->quota + amount;
    pthread_mutex_unlock(&p->mu);
}

/* Full jitter: rand01 * min(cap, base * 2^(attempt-1)). */
static long backoff_ms(const struct aws_provider *p, unsigned attempt, bool throttled)
{
    long ceiling = throttled ? p->throttle_base_ms : p->base_ms;
    double r = p->cfg.rand01(p->cfg.rand_ctx);

    for (unsigned i = 1; i < attempt && ceiling < p->cap_ms; i++)
        ceiling *= 2;
    if (ceiling > p->cap_ms)
        ceiling = p->cap_ms;
    if (!(r >= 0))
        r = 0;
    if (r > 1)
        r = 1;
    return (long)(r * (double)ceiling);
}

static bool not_idempotent(const struct ibs_api_operation *op)
{
    static const char *const verbs[] = {"Create", "Update", "Start", "Import", "Cancel", "Send"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strncmp(op->name, verbs[i], strlen(verbs[i])) == 0)
            return true;
    }
    return false;
}

static void add_stat(struct aws_provider *p, uint64_t *counter)
{
    pthread_mutex_lock(&p->mu);
    (*counter)++;
    pthread_mutex_unlock(&p->mu);
}

/* One call in progress. */
struct call {
    struct aws_provider *p;
    struct ibs_aws_request req;
    char invocation_id[37];
    struct ibs_provider_error last; /* the latest failed attempt */
    unsigned attempts;
    long status;
    long slept_ms;
    long waited_ms;
};

/* Records why attempt `a` failed in c->last; sets *out_retryable,
 * *out_throttled and the quota cost of a retry. */
static int describe_failure(struct call *c, struct attempt *a, bool *out_retryable,
                            bool *out_throttled, unsigned *out_cost)
{
    const char *secrets[3] = {a->creds.secret_access_key, a->creds.session_token, a->sig.signature};
    int rc;

    *out_retryable = false;
    *out_throttled = false;
    *out_cost = IBS_AWS_RETRY_COST;
    ibs_provider_error_release(&c->last);
    if (a->transport_rc) {
        c->last.code = a->transport_rc;
        if (!(c->last.message = strdup(ibs_error_last()->message)))
            return ibs_error_oom();
        *out_retryable = true;
        *out_cost = IBS_AWS_RETRY_TIMEOUT_COST;
        return 0;
    }
    if ((rc = ibs_aws_error_parse(&c->last, &a->resp)))
        return rc;
    mask(c->last.message, secrets, 3);
    *out_throttled = ibs_aws_error_is_throttling(c->last.aws_code, c->last.status);
    *out_retryable = *out_throttled || ibs_aws_error_is_transient(c->last.aws_code, c->last.status);
    return 0;
}

/* Adaptive mode: waits for a send token before an attempt. */
static void limiter_acquire(struct call *c)
{
    long waited;

    if (!c->p->limiter)
        return;
    ibs_aws_rate_limiter_acquire(&waited, c->p->limiter);
    if (waited > 0)
        log_line(c->p, "aws: %s: attempt %u waited %ld ms for a send token", c->req.op->name,
                 c->attempts, waited);
    c->waited_ms += waited;
}

/* Adaptive mode: tells the limiter that an attempt was answered. */
static void limiter_update(struct call *c, bool throttled)
{
    struct ibs_aws_rate_limiter_state ls;

    if (!c->p->limiter)
        return;
    ibs_aws_rate_limiter_update(&ls, c->p->limiter, throttled);
    if (throttled)
        log_line(c->p, "aws: %s: throttled: sending at most %.2f requests/s (measured %.2f)",
                 c->req.op->name, ls.fill_rate, ls.measured_rate);
}

/*
 * Runs attempts until one succeeds (0, *out is the response) or the call
 * fails. On failure c->last describes a failed attempt (status > 0 for a
 * service error, a message for a transport error) or, when nothing could be
 * sent, only carries the code, with the message in the thread's error.
 */
static int run_attempts(struct ibs_value **out, struct call *c)
{
    struct aws_provider *p = c->p;
    struct ibs_buf msg = IBS_BUF_INIT;
    struct attempt a;
    unsigned last_cost = 0;
    bool retried = false;
    int rc = 0;

    memset(&a, 0, sizeof(a));
    ibs_http_response_init(&a.resp);
    for (c->attempts = 1;; c->attempts++) {
        bool retryable, throttled;
        unsigned cost;
        long delay;

        ibs_http_response_release(&a.resp);
        ibs_sigv4_result_release(&a.sig);
        a.transport_rc = 0;
        limiter_acquire(c);
        if ((rc = send_attempt(&a, p, &c->req, c->invocation_id, c->attempts))) {
            ibs_provider_error_release(&c->last);
            c->last.code = rc;
            goto done;
        }
        add_stat(p, &p->stats.attempts);
        c->status = a.resp.status;
        if (!a.transport_rc && a.resp.status >= 200 && a.resp.status < 300) {
            limiter_update(c, false);
            release_quota(p, retried ? last_cost : IBS_AWS_RETRY_SUCCESS_REFUND);
            if ((rc = ibs_aws_response_parse(out, c->req.op, &a.resp)))
                c->last.code = rc;
            goto done;
        }
        if ((rc = describe_failure(c, &a, &retryable, &throttled, &cost))) {
            c->last.code = rc;
            goto done;
        }
        rc = c->last.code;
        limiter_update(c, throttled);
        if (throttled)
            add_stat(p, &p->stats.throttles);
        /* A non-idempotent call without a token could run twice, unless
         * the service refused it outright. */
        if (not_idempotent(c->req.op) && !c->req.client_token && !throttled)
            retryable = false;
        if (!retryable || c->attempts >= p->max_attempts)
            goto done;
        if (!acquire_quota(p, cost)) {
            log_line(p, "aws: %s: not retrying: the retry quota is exhausted", c->req.op->name);
            goto done;
        }
        retried = true;
        last_cost = cost;
        delay = backoff_ms(p, c->attempts, throttled);
        ibs_buf_clear(&msg);
        ibs_aws_error_format(&msg, &c->last);
        log_line(p, "aws: %s: attempt %u of %u failed: %s; retrying in %ld ms", c->req.op->name,
                 c->attempts, p->max_attempts, msg.oom ? "(out of memory)" : msg.ptr, delay);
        add_stat(p, &p->stats.retries);
        if (delay > 0)
            p->cfg.sleep_ms(p->cfg.sleep_ctx, delay);
        c->slept_ms += delay;
    }
done:
    ibs_http_response_release(&a.resp);
    ibs_sigv4_result_release(&a.sig);
    ibs_buf_release(&msg);
    return rc;
}

/* Sets the thread's error from c->last (when it describes a failed attempt)
 * and copies it to *err. Returns the call's error code. */
static int finish_failure(struct ibs_provider_error *err, struct call *c, int rc)
{
    struct ibs_buf msg = IBS_BUF_INIT;

    if (c->last.status > 0 || c->last.message) {
        ibs_aws_error_format(&msg, &c->last);
        rc = msg.oom ? ibs_error_oom() : ibs_error_set(rc, "%s", msg.ptr);
    }
    c->last.code = rc;
    c->last.attempts = c->attempts;
    if (err) {
        ibs_provider_error_release(err);
        *err = c->last;
        ibs_provider_error_init(&c->last);
    }
    ibs_buf_release(&msg);
    return rc;
}

static int aws_call(void *self, struct ibs_value **out, struct ibs_provider_error *err,
                    const char *operation, const struct ibs_value *input)
{
    struct aws_provider *p = self;
    struct call c;
    double start = p->cfg.clock(p->cfg.clock_ctx);
    int rc;

    *out = NULL;
    if (err)
        ibs_provider_error_init(err);
    memset(&c, 0, sizeof(c));
    c.p = p;
    rc = ibs_aws_request_bind(&c.req, operation, input);
    if (!rc)
        rc = ibs_aws_uuid4(c.invocation_id);
    if (!rc)
        rc = run_attempts(out, &c);
    if (rc)
        rc = finish_failure(err, &c, rc);

    pthread_mutex_lock(&c.p->mu);
    c.p->stats.calls++;
    if (rc)
        c.p->stats.failures++;
    pthread_mutex_unlock(&c.p->mu);
    last_call.operation = c.req.op ? c.req.op->name : NULL;
    last_call.code = rc;
    last_call.attempts = c.attempts;
    last_call.status = c.status;
    last_call.slept_ms = c.slept_ms;
    last_call.waited_ms = c.waited_ms;
    last_call.elapsed_ms = lround((p->cfg.clock(p->cfg.clock_ctx) - start) * 1000);
    ibs_aws_request_release(&c.req);
    ibs_provider_error_release(&c.last);
    return rc;
}

static const struct ibs_provider_ops aws_ops = {
    IBS_PROVIDER_VERSION,
    "aws",
    aws_call,
    aws_free,
};
