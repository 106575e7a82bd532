/*
 * Applying a plan: the actions run on a pool of worker threads in
 * dependency order. An action starts as soon as everything it depends on is
 * done, so a slow branch never holds up an unrelated one. A failure stops
 * the scheduling of new actions (in-flight ones finish) unless keep_going,
 * which instead skips only what depends on the failure.
 *
 * Every mutating call carries the action's clientToken, and every action is
 * recorded through `record` before it starts (with its token) and when it
 * ends (with the ARN), so an apply killed at any point can be finished by
 * running it again with the same tokens.
 */
#ifndef IBS_RECONCILE_APPLY_H
#define IBS_RECONCILE_APPLY_H

#include "providers/provider.h"
#include "reconcile/plan.h"
#include "util/value.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

enum ibs_apply_status {
    IBS_APPLY_PENDING,
    IBS_APPLY_RUNNING,
    IBS_APPLY_DONE,
    IBS_APPLY_FAILED,
    IBS_APPLY_SKIPPED, /* not run: a dependency failed, or scheduling stopped */
};

enum ibs_apply_event {
    IBS_APPLY_EVENT_START,
    IBS_APPLY_EVENT_DONE,
    IBS_APPLY_EVENT_FAILED,
};

struct ibs_apply_options {
    unsigned parallelism; /* worker threads; 0: 4 */
    bool keep_going;
    /* Set (e.g. by a SIGINT/SIGTERM handler) to stop scheduling new actions. */
    volatile sig_atomic_t *cancel;
    /*
     * Called, serialised, before an action starts and after it ends, with a
     * journal record (a map: event, plan, action, token, arn, error). A
     * failing record call fails the action before it is sent. May be NULL.
     */
    int (*record)(void *ctx, const struct ibs_value *record);
    void *record_ctx;
    /* Progress for people, serialised: `detail` is the ARN or the error. */
    void (*progress)(void *ctx, const struct ibs_action *a, enum ibs_apply_event ev,
                     const char *detail, long elapsed_ms);
    void *progress_ctx;
    /* Actions already completed by an interrupted run of this plan (their
     * keys as map keys, ARNs as values): not run again. May be NULL. */
    const struct ibs_value *completed;
};

struct ibs_apply_result {
    enum ibs_apply_status *status; /* per action */
    char **arns;                   /* per action: ARN acted on or created, or NULL */
    char **errors;                 /* per action: error message, or NULL */
    size_t n;
    size_t done, failed, skipped;
    long elapsed_ms;
};

void ibs_apply_result_release(struct ibs_apply_result *r);

/*
 * Runs `plan` against `p`. Returns 0 when every action is done, IBS_ECANCELED
 * when stopped by `cancel`, or the error of the first failure (the result
 * tells what was done and what was not). *out is filled in every case except
 * allocation failure; the caller releases it.
 */
int ibs_apply_run(struct ibs_apply_result *out, const struct ibs_plan *plan, struct ibs_provider *p,
                  const struct ibs_apply_options *opts);

#endif
