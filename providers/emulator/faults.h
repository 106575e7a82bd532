/*
 * Fault injection for the emulator's HTTP server (providers/emulator/server.h).
 *
 * Clients of Image Builder must survive throttling, server errors, slow
 * answers and lost responses; the emulator produces them on demand so that
 * ibsync's retry and journal logic (and any SDK) can be tested against
 * them. A struct ibs_faults holds the settings and decides, call by call,
 * what happens to an API call, in this order:
 *
 *   rate limit   a token bucket of `rate_limit` calls per second (burst:
 *                one second's worth, at least 1); an empty bucket answers
 *                429 CallRateLimitExceededException before executing
 *   throttle     with probability `throttle_rate`, the same 429
 *   error        with probability `error_rate`, 500 ServiceException or
 *                503 ServiceUnavailableException (even odds), before
 *                executing
 *   drop         with probability `drop_rate`, the call is executed (a
 *                write is committed) and the connection is then closed
 *                without an answer: the case of a response lost on the way
 *   latency      `latency_ms` is added to every call, whatever the outcome
 *
 * The random draws come from one seeded PRNG shared by all threads under a
 * mutex, and every decision draws the same number of values whatever the
 * settings and the outcome, so a given seed and a given order of calls give
 * the same faults on every run (the token bucket depends on the clock and
 * is the only part that is not reproducible).
 *
 * The settings can be replaced while the server runs (the admin endpoint
 * POST /_ibsync/faults); they are exchanged as JSON with the member names
 * of ibs_faults_to_value().
 */
#ifndef IBS_PROVIDERS_EMULATOR_FAULTS_H
#define IBS_PROVIDERS_EMULATOR_FAULTS_H

#include "util/value.h"

#include <stdint.h>

/* Upper bounds accepted by ibs_faults_check(). */
#define IBS_FAULTS_MAX_LATENCY_MS 600000
#define IBS_FAULTS_MAX_RATE_LIMIT 1000000.0

struct ibs_faults_config {
    int64_t latency_ms;   /* JSON latencyMs: 0 .. IBS_FAULTS_MAX_LATENCY_MS */
    double throttle_rate; /* JSON throttleRate: probability 0 .. 1 */
    double error_rate;    /* JSON errorRate: probability 0 .. 1 */
    double drop_rate;     /* JSON dropRate: probability 0 .. 1 */
    double rate_limit;    /* JSON rateLimit: calls per second, 0 for no limit */
    int64_t seed;         /* JSON seed: PRNG seed, >= 0 */
};

enum ibs_fault {
    IBS_FAULT_NONE,
    IBS_FAULT_THROTTLE, /* answered 429 before executing (throttle_rate or rate_limit) */
    IBS_FAULT_ERROR,    /* answered 500 or 503 before executing */
    IBS_FAULT_DROP,     /* executed, then the connection is closed without an answer */
};

/* What to do with one call. Strings are static. */
struct ibs_fault_decision {
    enum ibs_fault fault;
    int64_t latency_ms;   /* to wait before answering */
    int status;           /* THROTTLE/ERROR: the HTTP status to answer; else 0 */
    const char *aws_code; /* THROTTLE/ERROR: the error code; else NULL */
    const char *message;  /* THROTTLE/ERROR: the error message; else NULL */
};

struct ibs_faults;

/*
 * Checks the settings: rates are probabilities, latency and rate limit in
 * range, seed not negative. Returns 0 or IBS_EINVALID with a message naming
 * the JSON member ("throttleRate must be between 0 and 1, not 1.5").
 */
int ibs_faults_check(const struct ibs_faults_config *cfg);

/*
 * Creates the fault state with settings `cfg` (copied; checked as by
 * ibs_faults_check()) and the PRNG seeded with cfg->seed. On success *out is
 * freed by the caller with ibs_faults_free().
 */
int ibs_faults_new(struct ibs_faults **out, const struct ibs_faults_config *cfg);

/* Frees the fault state. Accepts NULL. */
void ibs_faults_free(struct ibs_faults *f);

/* Copies the current settings into *out. Thread-safe. */
void ibs_faults_get(struct ibs_faults_config *out, struct ibs_faults *f);

/*
 * Replaces every setting with `cfg` (checked first: on IBS_EINVALID nothing
 * changes), re-seeds the PRNG with cfg->seed and refills the token bucket.
 * Thread-safe.
 */
int ibs_faults_set(struct ibs_faults *f, const struct ibs_faults_config *cfg);

/*
 * Applies the JSON object `patch` (borrowed), as sent to the admin
 * endpoint: only the members present change; the PRNG is re-seeded only
 * when "seed" is present; the token bucket is refilled when "rateLimit" is
 * present. Unknown members, wrong types and out-of-range values fail with
 * IBS_EINVALID naming the member, and then nothing changes. Thread-safe.
 */
int ibs_faults_update(struct ibs_faults *f, const struct ibs_value *patch);

/*
 * Decides the fate of one call arriving at `now_ms` (a monotonic clock in
 * milliseconds, used by the token bucket) into *out. Thread-safe.
 */
void ibs_faults_decide(struct ibs_fault_decision *out, struct ibs_faults *f, int64_t now_ms);

/*
 * The settings as a JSON-shaped map {"latencyMs", "throttleRate",
 * "errorRate", "dropRate", "rateLimit", "seed"}; *out is new (caller frees).
 */
int ibs_faults_to_value(struct ibs_value **out, const struct ibs_faults_config *cfg);

/* "none", "throttle", "error" or "drop" (the request log's "fault" member). */
const char *ibs_faults_name(enum ibs_fault fault);

#endif
