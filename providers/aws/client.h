/*
 * The AWS provider: EC2 Image Builder's REST-JSON API over HTTPS, behind the
 * provider table of providers/provider.h (name "aws").
 *
 * A call binds the request from the API model (api/api.h): URI labels
 * percent-encoded into the path, querystring and header members, the rest
 * as a JSON body; idempotency tokens are generated once per call. Every
 * attempt is signed with SigV4 (providers/aws/sigv4.h) using the
 * credentials the config's callback returns at that moment. Failed attempts
 * are retried as in the AWS SDKs' "standard" retry mode; in "adaptive" mode
 * (the default) every attempt also takes a token from a send-rate bucket
 * shared by all threads of the provider, whose rate follows the throttling
 * responses (see client.c).
 *
 * Files: client.c (provider, retries, stats), client_bind.c (request
 * binding, responses, AWS errors), endpoint.c (endpoint resolution).
 *
 * Thread-safety: a provider may be called from several threads at once;
 * the config's callbacks must be thread-safe too.
 */
#ifndef IBS_PROVIDERS_AWS_CLIENT_H
#define IBS_PROVIDERS_AWS_CLIENT_H

#include "api/api.h"
#include "providers/aws/http.h"
#include "providers/provider.h"
#include "util/buf.h"
#include "util/value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Signing name and endpoint prefix of Image Builder. */
#define IBS_AWS_SERVICE "imagebuilder"

/* The SDKs' standard retry mode. The two base delays are ibsync's (the
 * brief fixes them): 1 s after throttling, 50 ms after other errors. */
#define IBS_AWS_DEFAULT_MAX_ATTEMPTS 3
#define IBS_AWS_RETRY_BASE_MS 50L
#define IBS_AWS_RETRY_THROTTLE_BASE_MS 1000L
#define IBS_AWS_RETRY_CAP_MS 20000L
#define IBS_AWS_RETRY_QUOTA 500u
#define IBS_AWS_RETRY_COST 5u
#define IBS_AWS_RETRY_TIMEOUT_COST 10u
#define IBS_AWS_RETRY_SUCCESS_REFUND 1u

/* The SDKs' adaptive retry mode (botocore's ClientRateLimiter; see the
 * comment in client.c for the algorithm): CUBIC's beta and scale constant,
 * the smoothing and time bucket of the measured send rate, the floor of the
 * fill rate and of the bucket size, and how far above the measured rate the
 * fill rate may go. */
#define IBS_AWS_RATE_BETA 0.7
#define IBS_AWS_RATE_SCALE_CONSTANT 0.4
#define IBS_AWS_RATE_SMOOTHING 0.8
#define IBS_AWS_RATE_BUCKET_S 0.5
#define IBS_AWS_RATE_MIN_FILL 0.5
#define IBS_AWS_RATE_MIN_CAPACITY 1.0
#define IBS_AWS_RATE_MAX_SCALE 2.0

/* Defined in providers/aws/credentials.h: borrowed key, secret and token. */
struct ibs_aws_credentials_view;

struct ibs_aws_config {
    /* Region; NULL: AWS_REGION, then AWS_DEFAULT_REGION. Required. */
    const char *region;
    /* --endpoint-url; NULL: AWS_ENDPOINT_URL_IMAGEBUILDER, AWS_ENDPOINT_URL,
     * then the regional endpoint. */
    const char *endpoint_url;
    /* >0 on, <0 off, 0: AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT
     * ("true"/"false"; default off). */
    int use_fips;
    int use_dualstack;
    /* Attempts per call (first try included); 0: AWS_MAX_ATTEMPTS, else 3. */
    unsigned max_attempts;
    /* Backoff bases and cap in ms; 0: the IBS_AWS_RETRY_* defaults. */
    long retry_base_ms;
    long retry_throttle_base_ms;
    long retry_cap_ms;
    /* Initial retry quota in tokens; 0: IBS_AWS_RETRY_QUOTA. */
    unsigned retry_quota;
    /* "adaptive" (client-side rate limiting on top of the standard retries)
     * or "standard"; "legacy" counts as "standard"; case does not matter.
     * NULL or "": AWS_RETRY_MODE, else "adaptive". */
    const char *retry_mode;
    /* Uniform random number in [0, 1) for the backoff jitter; NULL: OpenSSL's RNG. */
    double (*rand01)(void *ctx);
    void *rand_ctx;
    /* Sleeps `ms` milliseconds between attempts and while waiting for a
     * send token; NULL: nanosleep(). */
    void (*sleep_ms)(void *ctx, long ms);
    void *sleep_ctx;
    /* Monotonic time in seconds (any origin) for the adaptive rate limiter
     * and the call timings; NULL: CLOCK_MONOTONIC. */
    double (*clock)(void *ctx);
    void *clock_ctx;
    /* Environment lookup; NULL: getenv(). "" counts as unset. */
    const char *(*getenv)(void *ctx, const char *name);
    void *env_ctx;
    /* Transport: CA bundle (NULL: AWS_CA_BUNDLE of the process environment,
     * else the system store), timeouts, pool size, debug log. The log also
     * receives the endpoint when the provider is created and one line per
     * retry; like every callback here it is called from several threads. */
    struct ibs_http_options http;
    /*
     * Credentials for each attempt: fills *out with pointers valid until
     * the next call on the same thread (ibs_aws_credentials_chain_callback
     * fits). Required.
     */
    int (*get_credentials)(void *ctx, struct ibs_aws_credentials_view *out);
    void *credentials_ctx;
    /* Called on credentials_ctx when the provider is freed; may be NULL. */
    void (*credentials_free)(void *ctx);
};

/*
 * Creates the "aws" provider. Strings in `cfg` are copied; callbacks and
 * their contexts must outlive the provider. When cfg->credentials_free is
 * set, the provider owns credentials_ctx from this call on, even when it
 * fails. *out is owned by the caller (ibs_provider_free). Errors:
 * IBS_EINVALID for a missing credentials callback, a missing or malformed
 * region, a bad endpoint URL, FIPS or dual-stack with a custom endpoint or
 * in a partition without them, an invalid AWS_MAX_ATTEMPTS,
 * AWS_USE_*_ENDPOINT, or retry mode (cfg->retry_mode or AWS_RETRY_MODE);
 * IBS_EINVALID from the HTTP client for an unreadable CA bundle.
 */
int ibs_aws_provider_new(struct ibs_provider **out, const struct ibs_aws_config *cfg);

/* Counters of one provider since its creation, for metrics. */
struct ibs_aws_stats {
    uint64_t calls;       /* calls finished (success or failure) */
    uint64_t failures;    /* calls that returned an error */
    uint64_t attempts;    /* HTTP attempts made */
    uint64_t retries;     /* attempts after the first */
    uint64_t throttles;   /* attempts answered with a throttling error */
    unsigned retry_quota; /* tokens left in the retry quota */

    /* static: "adaptive" or "standard" */
    const char *retry_mode;
    /* Adaptive mode: the send bucket's fill rate in requests per second, 0
     * while no attempt is limited (before the first throttle, and always in
     * standard mode); the smoothed send rate the limiter measured; attempts
     * that waited for a token, and the time they waited. */
    double fill_rate;
    double measured_rate;
    uint64_t rate_waits;
    uint64_t rate_wait_ms;
};

/* Copies the counters of `p`; IBS_EINVALID when `p` is not an "aws" provider. */
int ibs_aws_provider_stats(struct ibs_aws_stats *out, const struct ibs_provider *p);

/* What the calling thread's last call through any "aws" provider took. */
struct ibs_aws_call_stat {
    const char *operation; /* static (API table); NULL before the first call */
    int code;              /* 0 or the error returned */
    unsigned attempts;
    long status;     /* HTTP status of the last attempt; 0 when none answered */
    long elapsed_ms; /* the whole call, backoff sleeps and token waits included */
    long slept_ms;   /* backoff sleeps */
    long waited_ms;  /* waits for a send token (adaptive mode) */
};

void ibs_aws_provider_last_call(struct ibs_aws_call_stat *out);

/* ---- adaptive retry mode: the client-side rate limiter (client.c) ------ */

/* One send-rate bucket with its CUBIC rate control; thread-safe. */
struct ibs_aws_rate_limiter;

struct ibs_aws_rate_limiter_options {
    double (*clock)(void *ctx); /* monotonic seconds; NULL: CLOCK_MONOTONIC */
    void *clock_ctx;
    void (*sleep_ms)(void *ctx, long ms); /* NULL: nanosleep() */
    void *sleep_ctx;
};

/* What a limiter holds at one moment (see client.c for the meaning). */
struct ibs_aws_rate_limiter_state {
    bool enabled;         /* a throttle was seen: every acquire takes a token */
    double fill_rate;     /* tokens per second */
    double max_capacity;  /* tokens the bucket holds at most */
    double capacity;      /* tokens in the bucket at its last refill */
    double measured_rate; /* smoothed send rate, requests per second */
    double last_max_rate; /* CUBIC's W_max: the rate used at the last throttle */
    double time_window;   /* CUBIC's K: seconds to grow back to W_max */
    double last_throttle; /* clock time of the last throttle (or of creation) */
    uint64_t acquired;    /* tokens handed out */
    uint64_t waits;       /* acquisitions that had to wait */
    uint64_t wait_ms;     /* milliseconds slept waiting */
};

/*
 * Creates a limiter, disabled (acquire returns at once) until the first
 * throttle. `opts` may be NULL; its callbacks and contexts must outlive the
 * limiter. *out is owned by the caller (ibs_aws_rate_limiter_free). Errors:
 * IBS_ENOMEM.
 */
int ibs_aws_rate_limiter_new(struct ibs_aws_rate_limiter **out,
                             const struct ibs_aws_rate_limiter_options *opts);

void ibs_aws_rate_limiter_free(struct ibs_aws_rate_limiter *l);

/*
 * Before an attempt: once enabled, takes one token, sleeping while the
 * bucket holds less than one. *out_waited_ms (may be NULL) gets the time
 * slept, 0 when a token was there.
 */
void ibs_aws_rate_limiter_acquire(long *out_waited_ms, struct ibs_aws_rate_limiter *l);

/*
 * After an attempt that got an answer (or a transport failure): measures
 * the send rate and sets the fill rate from it, down after a throttling
 * response, along the cubic curve otherwise. *out (may be NULL) gets the
 * state that results.
 */
void ibs_aws_rate_limiter_update(struct ibs_aws_rate_limiter_state *out,
                                 struct ibs_aws_rate_limiter *l, bool throttled);

/* Copies the current state (capacity refilled up to now). */
void ibs_aws_rate_limiter_snapshot(struct ibs_aws_rate_limiter_state *out,
                                   struct ibs_aws_rate_limiter *l);

/* ---- endpoint (endpoint.c) --------------------------------------------- */

struct ibs_aws_endpoint {
    char *origin;    /* "https://imagebuilder.us-east-1.amazonaws.com" */
    char *host;      /* the Host header: the origin's authority, lower-case */
    char *base_path; /* path of a custom endpoint without trailing '/', often "" */
    char *region;    /* the signing region */
    /* Static: "--endpoint-url", "AWS_ENDPOINT_URL_IMAGEBUILDER",
     * "AWS_ENDPOINT_URL" or "regional". */
    const char *source;
};

/*
 * Resolves the endpoint for cfg (region, endpoint_url, use_fips,
 * use_dualstack, getenv): an endpoint URL (cfg, then
 * AWS_ENDPOINT_URL_IMAGEBUILDER, then AWS_ENDPOINT_URL, both ignored when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), else the regional endpoint of
 * the region's partition:
 *   https://imagebuilder.{region}.amazonaws.com       (.amazonaws.com.cn in cn-*)
 *   https://imagebuilder-fips.{region}.amazonaws.com  FIPS
 *   https://imagebuilder.{region}.api.aws             dual-stack
 *   https://imagebuilder-fips.{region}.api.aws        both
 * as the SDKs' endpoint rules give them (GovCloud FIPS is the plain
 * regional name). Legacy pseudo-regions "fips-X" / "X-fips" mean X with
 * FIPS. *out needs no initialisation; release it with
 * ibs_aws_endpoint_release() (also after a failure).
 */
int ibs_aws_endpoint_resolve(struct ibs_aws_endpoint *out, const struct ibs_aws_config *cfg);

void ibs_aws_endpoint_release(struct ibs_aws_endpoint *e);

/* ---- request binding and errors (client_bind.c) ----------------------- */

/* A request bound from the API model; everything owned. */
struct ibs_aws_request {
    const struct ibs_api_operation *op;
    char *path;  /* URI with labels encoded: "/tags/arn%3Aaws%3A..." */
    char *query; /* encoded query string without '?', "" when none */
    /* Header members as name/value pairs (names static, values owned). */
    struct ibs_http_header *headers;
    size_t nheaders;
    bool has_body;
    struct ibs_buf body; /* JSON; empty when !has_body */
    /* The idempotency token sent (the caller's or generated), or NULL. */
    char *client_token;
    bool token_generated;
};

/*
 * Binds `input` (a map shaped like the operation's request, or NULL) for
 * `operation`. Members are placed by their location in the model; body
 * members go into a JSON object, sent whenever the operation has body
 * members (an empty "{}" if none is set) and never otherwise. A missing
 * idempotency token is generated (UUID v4). Errors: IBS_EINVALID for an
 * unknown operation, a member the request does not have, a missing required
 * member, or a value of the wrong kind for a URI, query or header member.
 * *out needs no initialisation; release it with ibs_aws_request_release()
 * (also after a failure).
 */
int ibs_aws_request_bind(struct ibs_aws_request *out, const char *operation,
                         const struct ibs_value *input);

void ibs_aws_request_release(struct ibs_aws_request *r);

/*
 * Parses a 2xx response of `op` into *out (a new map, caller frees): the
 * JSON body ({} when empty) plus output members bound to headers.
 * IBS_ESERVICE when the body is not a JSON object.
 */
int ibs_aws_response_parse(struct ibs_value **out, const struct ibs_api_operation *op,
                           const struct ibs_http_response *resp);

/*
 * Fills *out (initialised by the call) from an error response: status; the
 * AWS code from the x-amzn-errortype header, else the body's "code", else
 * "__type", each cut at ':' and after the last '#'; the message from the
 * body's "message" or "Message"; the request id from x-amzn-requestid (or
 * x-amz-request-id). out->code gets the mapped ibs_error_code (see
 * ibs_aws_error_code). Returns 0 or IBS_ENOMEM.
 */
int ibs_aws_error_parse(struct ibs_provider_error *out, const struct ibs_http_response *resp);

/*
 * The enum ibs_error_code for an AWS error code (may be NULL) and HTTP
 * status: not found, exists, dependency, conflict (idempotency mismatch),
 * throttled, invalid, auth, service (5xx); IBS_ERROR for anything else.
 */
int ibs_aws_error_code(const char *aws_code, long status);

/* Whether the error is a throttling error (by code, or HTTP 429). */
bool ibs_aws_error_is_throttling(const char *aws_code, long status);

/* Whether the error is transient: RequestTimeout(Exception), InternalError,
 * HTTP 500, 502, 503, 504. */
bool ibs_aws_error_is_transient(const char *aws_code, long status);

/*
 * Appends the one-line description of `err`:
 * "<AwsCode>: <message> (HTTP <status>, request id <id>)"; without a code
 * the status text stands in ("Service Unavailable"); parts that are
 * missing are left out.
 */
int ibs_aws_error_format(struct ibs_buf *out, const struct ibs_provider_error *err);

/* Writes a random UUID v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") into out[37]. */
int ibs_aws_uuid4(char *out);

#endif
