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
#include "state/planfile.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

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
};

static void on_progress(void *ctx, const struct ibs_action *a, enum ibs_apply_event ev,
                        const char *detail, long elapsed_ms)
{
    struct progress *pr = ctx;
    const char *kind = ibs_model_kind_info(a->kind)->name;
    const char *verb = ibs_action_type_name(a->type);
    char id[512];

    snprintf(id, sizeof(id), "%s/%s%s%s", kind, a->name, a->version ? "@" : "",
             a->version ? a->version : "");
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
    (void)pr;
    fflush(stdout);
}

static int write_plan_output(const struct ibs_cmd_run *run, const struct ibs_plan *plan)
{
    struct ibs_buf out = IBS_BUF_INIT;
    struct ibs_value *doc = NULL;
    int rc = 0;

    switch (run->format) {
    case IBS_CMD_FORMAT_TEXT:
        rc = ibs_render_text(&out, plan, isatty(STDOUT_FILENO) ? IBS_RENDER_COLOR : 0);
        break;
    case IBS_CMD_FORMAT_MARKDOWN:
        rc = ibs_render_markdown(&out, plan);
        break;
    case IBS_CMD_FORMAT_JSON:
        if (!(rc = ibs_plan_to_value(&doc, plan)))
            rc = ibs_json_write(&out, doc, IBS_JSON_PRETTY);
        ibs_buf_putc(&out, '\n');
        break;
    }
    if (!rc)
        fputs(out.ptr, stdout);
    fflush(stdout);
    ibs_value_free(doc);
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
    struct progress pr = {isatty(STDOUT_FILENO) != 0};
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
    char *key = NULL;
    const char *cmd = run->destroy ? "destroy" : run->apply ? "apply" : "plan";
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
        if ((rc = ibs_plan_to_value(&doc, &plan)) ||
            (rc = ibs_planfile_write(run->out_file, doc))) {
            ibs_value_free(doc);
            exit_code = ibs_cmd_report_error(run->out_file);
            goto done;
        }
        ibs_value_free(doc);
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
done:
    resume_release(&res);
    ibs_value_free(saved);
    ibs_plan_release(&plan);
    ibs_live_release(&live);
    ibs_lock_release(lock);
    ibs_provider_free(p);
    ibs_model_release(&model);
    free(key);
    return exit_code;
}
