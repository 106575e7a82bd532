/*
 * The plan/apply pipeline; see run.h.
 *
 * Crash safety: every action is journalled (state/journal) with its
 * clientToken before it is sent and with its ARN when it completes. A run
 * that finds an unfinished journal for the stack resumes it: a saved plan
 * continues where it stopped; a fresh plan re-sends the interrupted actions
 * with the tokens they were first sent with, so nothing is created twice.
 */
#include "cmd/run.h"

#include "cmd/cmd.h"
#include "reconcile/apply.h"
#include "reconcile/live.h"
#include "reconcile/plan.h"
#include "reconcile/render.h"
#include "state/journal.h"
#include "state/lock.h"
#include "state/cache.h"
#include "state/fsutil.h"
#include "state/planfile.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int ibs_cmd_run_option(struct ibs_cmd_run *run, const char *cmd, int opt, const char *arg)
{
    switch (opt) {
    case 0x1201:
    case 0x1202: {
        const char **list = opt == 0x1201 ? run->targets : run->excludes;
        size_t *n = opt == 0x1201 ? &run->ntargets : &run->nexcludes;
        enum ibs_kind kind;
        const char *slash = strchr(arg, '/');
        char kindname[64];
        if (!slash || slash == arg || !slash[1] || (size_t)(slash - arg) >= sizeof(kindname)) {
            fprintf(stderr, "ibsync %s: %s expects KIND/NAME, e.g. ImagePipeline/web\n", cmd,
                    opt == 0x1201 ? "--target" : "--exclude");
            return IBS_EXIT_USAGE;
        }
        memcpy(kindname, arg, (size_t)(slash - arg));
        kindname[slash - arg] = '\0';
        if (ibs_model_kind_parse(&kind, kindname)) {
            fprintf(stderr, "ibsync %s: unknown kind \"%s\" in '%s'\n", cmd, kindname, arg);
            return IBS_EXIT_USAGE;
        }
        if (*n >= 64) {
            fprintf(stderr, "ibsync %s: too many --target/--exclude options\n", cmd);
            return IBS_EXIT_USAGE;
        }
        list[(*n)++] = arg;
        return 1;
    }
    case 0x1203:
        if (strcmp(arg, "text") == 0)
            run->format = IBS_CMD_FORMAT_TEXT;
        else if (strcmp(arg, "json") == 0)
            run->format = IBS_CMD_FORMAT_JSON;
        else if (strcmp(arg, "markdown") == 0)
            run->format = IBS_CMD_FORMAT_MARKDOWN;
        else {
            fprintf(stderr, "ibsync %s: --format must be text, json or markdown\n", cmd);
            return IBS_EXIT_USAGE;
        }
        return 1;
    case 0x1204: {
        char *end;
        long n = strtol(arg, &end, 10);
        if (*end || n < 1 || n > 64) {
            fprintf(stderr, "ibsync %s: --parallelism must be 1 to 64\n", cmd);
            return IBS_EXIT_USAGE;
        }
        run->parallelism = (unsigned)n;
        return 1;
    }
    case 0x1205:
        run->keep_going = true;
        return 1;
    case 0x1206:
        run->auto_approve = true;
        return 1;
    case 0x1207:
        run->detailed_exitcode = true;
        return 1;
    case 'o':
        run->out_file = arg;
        return 1;
    case 0x1208:
        if (strcmp(arg, "full") == 0) {
            run->refresh_full = true;
        } else if (strcmp(arg, "cached") != 0) {
            fprintf(stderr, "ibsync %s: --refresh must be full or cached\n", cmd);
            return IBS_EXIT_USAGE;
        }
        return 1;
    default:
        return 0;
    }
}

static const char *state_dir(const struct ibs_cmd_run *run)
{
    return run->source.state_dir ? run->source.state_dir : ".ibsync";
}

/* The lock and journal key: stack@account/region. */
static char *stack_key(const char *stack, const struct ibs_provider *p, const char *account)
{
    struct ibs_buf b = IBS_BUF_INIT;
    ibs_buf_printf(&b, "%s@%s/%s", stack,
                   account      ? account
                   : p->account ? p->account
                                : "aws",
                   p->region ? p->region : "-");
    return ibs_buf_detach(&b);
}

struct resume {
    char *plan_id;            /* plan of the unfinished run, or NULL */
    struct ibs_value *tokens; /* action key -> token of actions started */
    struct ibs_value *done;   /* action key -> ARN of actions completed */
};

static void resume_release(struct resume *r)
{
    free(r->plan_id);
    ibs_value_free(r->tokens);
    ibs_value_free(r->done);
}

/* Reads the journal's unfinished run, if any. */
static int read_resume(struct resume *out, const char *dir, const char *key)
{
    struct ibs_vec recs = IBS_VEC_INIT;
    size_t torn = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = ibs_journal_replay(&recs, dir, key, &torn);
    if (rc == IBS_ENOTFOUND) {
        rc = 0;
        goto done;
    }
    if (rc)
        goto done;
    for (size_t i = 0; i < recs.count; i++) {
        const struct ibs_value *r = recs.items[i];
        const char *ev = ibs_value_map_get_str(r, "event");
        const char *plan = ibs_value_map_get_str(r, "plan");
        const char *action = ibs_value_map_get_str(r, "action");
        if (!ev)
            continue;
        if (strcmp(ev, "complete") == 0) {
            resume_release(out);
            memset(out, 0, sizeof(*out));
            continue;
        }
        if (!plan || !action)
            continue;
        if (!out->plan_id || strcmp(out->plan_id, plan) != 0) {
            free(out->plan_id);
            out->plan_id = strdup(plan);
        }
        if (!out->tokens)
            out->tokens = ibs_value_new_map();
        if (!out->done)
            out->done = ibs_value_new_map();
        if (!out->plan_id || !out->tokens || !out->done) {
            rc = ibs_error_oom();
            goto done;
        }
        if (strcmp(ev, "start") == 0 && ibs_value_map_get_str(r, "token"))
            rc = ibs_value_map_set(out->tokens, action,
                                   ibs_value_new_string(ibs_value_map_get_str(r, "token")));
        else if (strcmp(ev, "done") == 0 && ibs_value_map_get_str(r, "arn"))
            rc = ibs_value_map_set(out->done, action,
                                   ibs_value_new_string(ibs_value_map_get_str(r, "arn")));
        if (rc)
            goto done;
    }
done:
    for (size_t i = 0; i < recs.count; i++)
        ibs_value_free(recs.items[i]);
    ibs_vec_release(&recs);
    return rc;
}

static int journal_record(void *ctx, const struct ibs_value *rec)
{
    return ibs_journal_append(ctx, rec);
}

struct progress {
    bool tty;
    bool json;
    const char *stack;
};

/* One JSON log line: {"time", "level", "event", "stack", ...fields}. Takes
 * ownership of `fields` (a map, may be NULL). */
static void log_json(const char *level, const char *event, const char *stack,
                     struct ibs_value *fields)
{
    struct ibs_value *line = ibs_value_new_map();
    struct ibs_buf out = IBS_BUF_INIT;
    char now[32];
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (line && !ibs_value_map_set(line, "time", ibs_value_new_string(now)) &&
        !ibs_value_map_set(line, "level", ibs_value_new_string(level)) &&
        !ibs_value_map_set(line, "event", ibs_value_new_string(event)) &&
        !ibs_value_map_set(line, "stack", ibs_value_new_string(stack ? stack : ""))) {
        for (size_t i = 0; fields && i < fields->count; i++) {
            struct ibs_member *m = &fields->u.members[i];
            ibs_value_map_set(line, m->key, m->value);
            m->value = NULL;
        }
        if (!ibs_json_write(&out, line, 0))
            printf("%s\n", out.ptr);
    }
    fflush(stdout);
    ibs_buf_release(&out);
    ibs_value_free(line);
    ibs_value_free(fields);
}

/* Action types as identifiers (log fields, metric labels). */
static const char *const type_keys[IBS_ACTION_TYPE_COUNT] = {"create", "new_version", "update",
                                                             "tag", "delete"};

static struct ibs_value *action_fields(const struct ibs_action *a)
{
    struct ibs_value *f = ibs_value_new_map();
    if (!f)
        return NULL;
    ibs_value_map_set(f, "action", ibs_value_new_string(type_keys[a->type]));
    ibs_value_map_set(f, "kind", ibs_value_new_string(ibs_model_kind_info(a->kind)->name));
    ibs_value_map_set(f, "name", ibs_value_new_string(a->name));
    if (a->version)
        ibs_value_map_set(f, "version", ibs_value_new_string(a->version));
    ibs_value_map_set(f, "reason", ibs_value_new_string(a->reason));
    return f;
}

static void on_progress(void *ctx, const struct ibs_action *a, enum ibs_apply_event ev,
                        const char *detail, long elapsed_ms)
{
    struct progress *pr = ctx;
    const char *kind = ibs_model_kind_info(a->kind)->name;
    const char *verb = ibs_action_type_name(a->type);
    char id[512];

    snprintf(id, sizeof(id), "%s/%s%s%s", kind, a->name, a->version ? "@" : "",
             a->version ? a->version : "");
    if (pr->json) {
        struct ibs_value *f = action_fields(a);
        if (f && detail)
            ibs_value_map_set(f, ev == IBS_APPLY_EVENT_FAILED ? "error" : "arn",
                              ibs_value_new_string(detail));
        if (f && ev != IBS_APPLY_EVENT_START)
            ibs_value_map_set(f, "elapsed_ms", ibs_value_new_int(elapsed_ms));
        log_json(ev == IBS_APPLY_EVENT_FAILED ? "error" : "info",
                 ev == IBS_APPLY_EVENT_START  ? "action_start"
                 : ev == IBS_APPLY_EVENT_DONE ? "action_done"
                                              : "action_failed",
                 pr->stack, f);
        return;
    }
    switch (ev) {
    case IBS_APPLY_EVENT_START:
        printf("%s: %s...\n", id, verb);
        break;
    case IBS_APPLY_EVENT_DONE:
        printf("%s: %s done in %.1fs%s%s%s\n", id, verb, (double)elapsed_ms / 1000.0,
               detail ? " [" : "", detail ? detail : "", detail ? "]" : "");
        break;
    case IBS_APPLY_EVENT_FAILED:
        printf("%s: %s FAILED after %.1fs: %s\n", id, verb, (double)elapsed_ms / 1000.0,
               detail ? detail : "error");
        break;
    }
    fflush(stdout);
}

/* The plan text goes out as it is rendered (ibs_render_text_stream). */
static int write_stdout(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    if (fwrite(data, 1, len, stdout) != len)
        return ibs_error_set(IBS_EIO, "cannot write the plan to standard output: %s",
                             strerror(errno));
    return 0;
}

static const struct ibs_render_sink stdout_sink = {write_stdout, NULL};

static int write_plan_output(const struct ibs_cmd_run *run, const struct ibs_plan *plan)
{
    struct ibs_buf out = IBS_BUF_INIT;
    struct ibs_value *doc = NULL;
    int rc = 0;

    if (run->log_json) {
        size_t c[IBS_ACTION_TYPE_COUNT];
        struct ibs_value *f = ibs_value_new_map();
        ibs_plan_count(plan, c);
        if (f) {
            ibs_value_map_set(f, "plan_id", ibs_value_new_string(plan->id));
            if (plan->commit)
                ibs_value_map_set(f, "commit", ibs_value_new_string(plan->commit));
            for (int t = 0; t < IBS_ACTION_TYPE_COUNT; t++)
                ibs_value_map_set(f, type_keys[t], ibs_value_new_int((int64_t)c[t]));
            ibs_value_map_set(f, "conflicts", ibs_value_new_int((int64_t)plan->conflicts.count));
        }
        log_json("info", "plan", plan->stack, f);
        for (size_t i = 0; i < plan->actions.count; i++)
            log_json("info", "planned", plan->stack, action_fields(plan->actions.items[i]));
        for (size_t i = 0; i < plan->conflicts.count; i++) {
            const struct ibs_plan_conflict *cf = plan->conflicts.items[i];
            struct ibs_value *cfv = ibs_value_new_map();
            if (cfv)
                ibs_value_map_set(cfv, "message", ibs_value_new_string(cf->message));
            log_json("error", "conflict", plan->stack, cfv);
        }
        return 0;
    }

    switch (run->format) {
    case IBS_CMD_FORMAT_TEXT:
        rc = ibs_render_text_stream(&stdout_sink, plan,
                                    isatty(STDOUT_FILENO) ? IBS_RENDER_COLOR : 0);
        break;
    case IBS_CMD_FORMAT_MARKDOWN:
        rc = ibs_render_markdown(&out, plan);
        break;
    case IBS_CMD_FORMAT_JSON:
        if (!(rc = ibs_plan_to_value_view(&doc, plan)))
            rc = ibs_json_write(&out, doc, IBS_JSON_PRETTY);
        ibs_buf_putc(&out, '\n');
        break;
    }
    if (!rc && out.size)
        rc = write_stdout(NULL, out.ptr, out.size);
    fflush(stdout);
    ibs_plan_value_view_free(doc, plan);
    ibs_buf_release(&out);
    return rc;
}

static int confirm(void)
{
    char line[64];

    printf("\nDo you want to apply these actions? Only 'yes' will be accepted: ");
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        return 0;
    return strcmp(line, "yes\n") == 0 || strcmp(line, "yes") == 0;
}

static int apply_plan(struct ibs_cmd_run *run, struct ibs_plan *plan, struct ibs_provider *p,
                      const char *key, const struct resume *res)
{
    struct ibs_journal *journal = NULL;
    struct ibs_apply_result result;
    struct ibs_apply_options ao;
    struct progress pr = {isatty(STDOUT_FILENO) != 0, run->log_json, plan->stack};
    struct ibs_value *complete = NULL;
    struct sigaction sa, old_int, old_term;
    int rc, exit_code = IBS_EXIT_OK;

    memset(&ao, 0, sizeof(ao));
    memset(&result, 0, sizeof(result));
    if ((rc = ibs_journal_open(&journal, state_dir(run), key)))
        return ibs_cmd_report_error("opening the journal");
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    ao.parallelism = run->parallelism;
    ao.keep_going = run->keep_going;
    ao.cancel = &interrupted;
    ao.record = journal_record;
    ao.record_ctx = journal;
    ao.progress = on_progress;
    ao.progress_ctx = &pr;
    ao.completed = res && res->plan_id && strcmp(res->plan_id, plan->id) == 0 ? res->done : NULL;
    rc = ibs_apply_run(&result, plan, p, &ao);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (!run->log_json)
        printf("\nApply %s: %zu done, %zu failed, %zu not run, in %.1fs.\n",
               rc == 0               ? "complete"
               : rc == IBS_ECANCELED ? "interrupted"
                                     : "failed",
               result.done, result.failed, result.skipped, (double)result.elapsed_ms / 1000.0);
    for (size_t i = 0; i < result.n; i++) {
        const struct ibs_action *a = plan->actions.items[i];
        if (result.status[i] == IBS_APPLY_FAILED)
            fprintf(stderr, "ibsync: error: %s %s/%s: %s\n", ibs_action_type_name(a->type),
                    ibs_model_kind_info(a->kind)->name, a->name, result.errors[i]);
    }
    if (rc == 0) {
        if (!(complete = ibs_value_new_map()) ||
            ibs_value_map_set(complete, "event", ibs_value_new_string("complete")) ||
            ibs_value_map_set(complete, "plan", ibs_value_new_string(plan->id)) ||
            ibs_journal_append(journal, complete) || ibs_journal_archive(journal)) {
            exit_code = ibs_cmd_report_error("closing the journal");
        }
    } else {
        if (rc == IBS_ECANCELED)
            fprintf(stderr, "ibsync: interrupted; run the same command again to finish\n");
        exit_code = IBS_EXIT_FAILURE;
    }
    ibs_value_free(complete);
    ibs_journal_close(journal);
    ibs_apply_result_release(&result);
    return exit_code;
}

static const char *const results[] = {"in_sync", "changed", "drift", "failed"};

/* The textfile-collector metrics of a reconcile run (docs/metrics.md). */
static int write_metrics(const struct ibs_cmd_run *run, const struct ibs_plan *plan,
                         const char *stack, int result, long elapsed_ms,
                         const struct ibs_cmd_provider_stats *st, size_t drift)
{
    struct ibs_buf b = IBS_BUF_INIT;
    size_t c[IBS_ACTION_TYPE_COUNT];
    int rc;

    ibs_plan_count(plan, c);
    ibs_buf_printf(&b,
                   "# HELP ibsync_last_run_timestamp_seconds End of the last reconcile run.\n"
                   "# TYPE ibsync_last_run_timestamp_seconds gauge\n"
                   "ibsync_last_run_timestamp_seconds{stack=\"%s\"} %lld\n"
                   "# HELP ibsync_last_run_success 1 if the last run succeeded.\n"
                   "# TYPE ibsync_last_run_success gauge\n"
                   "ibsync_last_run_success{stack=\"%s\"} %d\n"
                   "# HELP ibsync_last_run_duration_seconds Wall time of the last run.\n"
                   "# TYPE ibsync_last_run_duration_seconds gauge\n"
                   "ibsync_last_run_duration_seconds{stack=\"%s\"} %.3f\n"
                   "# HELP ibsync_last_run_result Result of the last run (1 for the result).\n"
                   "# TYPE ibsync_last_run_result gauge\n",
                   stack, (long long)time(NULL), stack, result != 3, stack,
                   (double)elapsed_ms / 1000.0);
    for (int r = 0; r < 4; r++)
        ibs_buf_printf(&b, "ibsync_last_run_result{stack=\"%s\",result=\"%s\"} %d\n", stack,
                       results[r], r == result);
    ibs_buf_puts(&b, "# HELP ibsync_last_run_actions Actions planned in the last run, by type.\n"
                     "# TYPE ibsync_last_run_actions gauge\n");
    for (int t = 0; t < IBS_ACTION_TYPE_COUNT; t++) {
        char type[32];
        snprintf(type, sizeof(type), "%s", ibs_action_type_name((enum ibs_action_type)t));
        for (char *q = type; *q; q++)
            if (*q == ' ')
                *q = '_';
        ibs_buf_printf(&b, "ibsync_last_run_actions{stack=\"%s\",type=\"%s\"} %zu\n", stack, type,
                       c[t]);
    }
    ibs_buf_printf(&b,
                   "# HELP ibsync_last_run_drift_resources Resources changed outside ibsync.\n"
                   "# TYPE ibsync_last_run_drift_resources gauge\n"
                   "ibsync_last_run_drift_resources{stack=\"%s\"} %zu\n"
                   "# HELP ibsync_last_run_conflicts Declared names taken outside the stack.\n"
                   "# TYPE ibsync_last_run_conflicts gauge\n"
                   "ibsync_last_run_conflicts{stack=\"%s\"} %zu\n"
                   "# HELP ibsync_last_run_api_calls Image Builder API calls in the last run.\n"
                   "# TYPE ibsync_last_run_api_calls gauge\n"
                   "ibsync_last_run_api_calls{stack=\"%s\"} %lu\n"
                   "# HELP ibsync_last_run_api_retries Retried attempts in the last run.\n"
                   "# TYPE ibsync_last_run_api_retries gauge\n"
                   "ibsync_last_run_api_retries{stack=\"%s\"} %lu\n"
                   "# HELP ibsync_last_run_api_throttles Throttled attempts in the last run.\n"
                   "# TYPE ibsync_last_run_api_throttles gauge\n"
                   "ibsync_last_run_api_throttles{stack=\"%s\"} %lu\n",
                   stack, drift, stack, plan->conflicts.count, stack, st->calls, stack, st->retries,
                   stack, st->throttles);
    if ((rc = ibs_buf_oom(&b)))
        goto done;
    rc = ibs_fs_write_atomic(run->metrics_file, b.ptr, b.size, 0644);
done:
    ibs_buf_release(&b);
    return rc;
}

/* After a reconcile run: the result event, the metrics, the exit code. */
static int finish_reconcile(const struct ibs_cmd_run *run, const struct ibs_plan *plan,
                            const char *stack, int exit_code, long elapsed_ms,
                            const struct ibs_provider *p)
{
    struct ibs_cmd_provider_stats st;
    size_t drift = 0;
    int result;

    ibs_cmd_provider_stats(&st, p);
    for (size_t i = 0; i < plan->actions.count; i++) {
        const struct ibs_action *a = plan->actions.items[i];
        drift += strncmp(a->reason, "drift", 5) == 0;
    }
    if (exit_code != IBS_EXIT_OK && exit_code != IBS_EXIT_CHANGES)
        result = 3;
    else if (!plan->actions.count)
        result = 0;
    else if (run->dry_run)
        result = 2;
    else
        result = 1;
    if (run->log_json) {
        struct ibs_value *f = ibs_value_new_map();
        if (f) {
            ibs_value_map_set(f, "result", ibs_value_new_string(results[result]));
            ibs_value_map_set(f, "actions", ibs_value_new_int((int64_t)plan->actions.count));
            ibs_value_map_set(f, "drift", ibs_value_new_int((int64_t)drift));
            ibs_value_map_set(f, "api_calls", ibs_value_new_int((int64_t)st.calls));
            ibs_value_map_set(f, "api_retries", ibs_value_new_int((int64_t)st.retries));
            ibs_value_map_set(f, "elapsed_ms", ibs_value_new_int(elapsed_ms));
            if (result == 3)
                ibs_value_map_set(f, "error", ibs_value_new_string(ibs_error_last()->message));
        }
        log_json(result == 3 ? "error" : "info", "result", stack, f);
    }
    if (run->metrics_file && write_metrics(run, plan, stack, result, elapsed_ms, &st, drift)) {
        ibs_cmd_report_error(run->metrics_file);
        return IBS_EXIT_FAILURE;
    }
    if (result == 3)
        return IBS_EXIT_FAILURE;
    if (!run->detailed_exitcode)
        return IBS_EXIT_OK;
    return result == 0 ? IBS_EXIT_OK : result == 1 ? IBS_EXIT_CHANGES : IBS_EXIT_DRIFT;
}

/* The live-state cache of a stack key. */
static char *cache_key(const char *key)
{
    struct ibs_buf b = IBS_BUF_INIT;
    ibs_buf_printf(&b, "live-%s", key);
    return ibs_buf_detach(&b);
}

/* Tags of versions just changed by TAG actions: their cached tags are stale. */
static void forget_tagged(struct ibs_cache *cache, const struct ibs_plan *plan)
{
    for (size_t i = 0; cache && i < plan->actions.count; i++) {
        const struct ibs_action *a = plan->actions.items[i];
        struct ibs_buf k = IBS_BUF_INIT;
        const char *slash;
        if (a->type != IBS_ACTION_TAG || !a->arn ||
            (a->kind != IBS_KIND_COMPONENT && a->kind != IBS_KIND_WORKFLOW))
            continue;
        slash = strrchr(a->arn, '/');
        ibs_buf_printf(&k, "builds %.*s", (int)(slash ? slash - a->arn : (long)strlen(a->arn)),
                       a->arn);
        if (!ibs_buf_oom(&k))
            ibs_cache_remove(cache, k.ptr);
        ibs_buf_release(&k);
    }
}

int ibs_cmd_run_reconcile(struct ibs_cmd_run *run)
{
    struct ibs_model model;
    struct ibs_provider *p = NULL;
    struct ibs_lock *lock = NULL;
    struct ibs_live live;
    struct ibs_plan plan;
    struct ibs_plan_options po;
    struct ibs_value *saved = NULL;
    struct resume res;
    struct ibs_cache *cache = NULL;
    char *cache_name = NULL;
    char *key = NULL;
    const char *cmd = run->reconcile ? "reconcile"
                      : run->destroy ? "destroy"
                      : run->apply   ? "apply"
                                     : "plan";
    long started = now_ms();
    int rc, exit_code = IBS_EXIT_OK;

    ibs_model_init(&model);
    ibs_live_init(&live);
    ibs_plan_init(&plan);
    memset(&res, 0, sizeof(res));
    memset(&po, 0, sizeof(po));

    if (run->plan_file) {
        if ((rc = ibs_planfile_read(&saved, run->plan_file)) ||
            (rc = ibs_plan_from_value(&plan, saved))) {
            exit_code = ibs_cmd_report_error(NULL);
            goto done;
        }
        if ((rc = ibs_cmd_provider_open(&p, &run->provider, plan.region, state_dir(run)))) {
            exit_code = ibs_cmd_report_error("opening the account");
            goto done;
        }
    } else {
        if (run->destroy && run->source.stack && !run->source.dir && !run->source.repo) {
            /* destroy --stack NAME needs no desired state: everything tagged
             * with the stack goes. */
            if (!(model.stack.name = strdup(run->source.stack))) {
                exit_code = ibs_cmd_report_error(NULL);
                goto done;
            }
        } else if ((exit_code = ibs_cmd_load_model(&model, &run->source, NULL))) {
            goto done;
        }
        if ((rc = ibs_cmd_provider_open(&p, &run->provider, model.stack.region, state_dir(run)))) {
            exit_code = ibs_cmd_report_error("opening the account");
            goto done;
        }
    }
    if ((rc = ibs_cmd_provider_count(&p))) {
        exit_code = ibs_cmd_report_error(NULL);
        goto done;
    }
    if (!(key = stack_key(run->plan_file ? plan.stack : model.stack.name, p, NULL))) {
        exit_code = ibs_cmd_report_error(NULL);
        goto done;
    }
    if (run->apply) {
        char holder[128];
        snprintf(holder, sizeof(holder), "ibsync %s", cmd);
        if ((rc = ibs_lock_acquire(&lock, state_dir(run), key, holder, 0))) {
            exit_code = ibs_cmd_report_error(NULL);
            goto done;
        }
        if ((rc = read_resume(&res, state_dir(run), key))) {
            exit_code = ibs_cmd_report_error("reading the journal");
            goto done;
        }
    }
    if (!(cache_name = cache_key(key)) ||
        ibs_cache_open(&cache, state_dir(run), cache_name) == IBS_ENOMEM) {
        exit_code = ibs_cmd_report_error(NULL);
        goto done;
    }
    if (cache && ibs_cache_warning(cache) && !run->log_json)
        fprintf(stderr, "ibsync: warning: %s; reading everything\n", ibs_cache_warning(cache));
    live.cache = cache;
    live.refresh_full = run->refresh_full;
    if ((rc = ibs_live_read(&live, p))) {
        exit_code = ibs_cmd_report_error("reading the account");
        goto done;
    }
    if (run->plan_file) {
        char *fp = NULL;
        bool resuming = res.plan_id && strcmp(res.plan_id, plan.id) == 0;
        if ((rc = ibs_plan_fingerprint(&fp, &live, plan.stack))) {
            exit_code = ibs_cmd_report_error(NULL);
            goto done;
        }
        if (!resuming && strcmp(fp, plan.fingerprint) != 0) {
            fprintf(stderr,
                    "ibsync: error: %s is stale: the account changed since the plan was made "
                    "(live state %.12s, plan made against %.12s); run ibsync plan again\n",
                    run->plan_file, fp, plan.fingerprint);
            free(fp);
            exit_code = IBS_EXIT_FAILURE;
            goto done;
        }
        if (resuming)
            printf("Resuming the interrupted apply of plan %.12s.\n", plan.id);
        free(fp);
    } else {
        po.flags = run->destroy ? IBS_PLAN_DESTROY : 0;
        po.targets = run->targets;
        po.ntargets = run->ntargets;
        po.excludes = run->excludes;
        po.nexcludes = run->nexcludes;
        if ((rc = ibs_plan_compute(&plan, &model, &live, p, &po))) {
            exit_code = ibs_cmd_report_error("planning");
            goto done;
        }
        /* Re-send actions an interrupted run started with their first token. */
        for (size_t i = 0; res.tokens && i < plan.actions.count; i++) {
            struct ibs_action *a = plan.actions.items[i];
            const char *tok = ibs_value_map_get_str(res.tokens, a->key);
            if (tok && strlen(tok) == 36)
                memcpy(a->client_token, tok, 37);
        }
    }
    if ((rc = write_plan_output(run, &plan))) {
        exit_code = ibs_cmd_report_error(NULL);
        goto done;
    }
    if (plan.conflicts.count) {
        fprintf(stderr,
                "ibsync: error: %zu conflict%s: resources with declared names exist "
                "outside this stack (see above)\n",
                plan.conflicts.count, plan.conflicts.count == 1 ? "" : "s");
        exit_code = IBS_EXIT_FAILURE;
        goto done;
    }
    if (run->out_file) {
        struct ibs_value *doc = NULL;
        if ((rc = ibs_plan_to_value_view(&doc, &plan)) ||
            (rc = ibs_planfile_write(run->out_file, doc))) {
            ibs_plan_value_view_free(doc, &plan);
            exit_code = ibs_cmd_report_error(run->out_file);
            goto done;
        }
        ibs_plan_value_view_free(doc, &plan);
        fprintf(stderr, "Saved the plan to %s; apply it with: ibsync apply %s\n", run->out_file,
                run->out_file);
    }
    if (!run->apply) {
        if (run->detailed_exitcode && plan.actions.count)
            exit_code = IBS_EXIT_CHANGES;
        goto done;
    }
    if (!plan.actions.count)
        goto done;
    /* A saved plan was reviewed when it was made: applying it is the approval. */
    if (!run->auto_approve && !run->plan_file) {
        if (!isatty(STDIN_FILENO)) {
            fprintf(stderr,
                    "ibsync %s: refusing to change the account without --auto-approve "
                    "when standard input is not a terminal\n",
                    cmd);
            exit_code = IBS_EXIT_FAILURE;
            goto done;
        }
        if (!confirm()) {
            fprintf(stderr, "ibsync %s: cancelled; nothing was changed\n", cmd);
            exit_code = IBS_EXIT_FAILURE;
            goto done;
        }
    }
    exit_code = apply_plan(run, &plan, p, key, &res);
    forget_tagged(cache, &plan);
done:
    /* A cache that cannot be saved only makes the next plan slower. */
    if (cache && ibs_cache_save(cache) && !run->log_json)
        fprintf(stderr, "ibsync: warning: %s\n", ibs_error_last()->message);
    ibs_cache_free(cache);
    free(cache_name);
    if (run->reconcile)
        exit_code = finish_reconcile(run, &plan,
                                     model.stack.name    ? model.stack.name
                                     : run->source.stack ? run->source.stack
                                                         : "",
                                     exit_code, now_ms() - started, p);
    resume_release(&res);
    ibs_value_free(saved);
    ibs_lock_release(lock);
    ibs_provider_free(p);
    if (ibs_cmd_free_at_exit()) {
        ibs_plan_release(&plan);
        ibs_live_release(&live);
        ibs_model_release(&model);
    }
    free(key);
    return exit_code;
}
