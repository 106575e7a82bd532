/*
 * ibsync diff: what a pull request changes in desired state, from git alone.
 *
 * The base ref is applied to a throw-away emulated account, then the head ref
 * is planned against it. The result is exactly the plan the merge would make
 * against an account that matches the base: resources added, removed and
 * changed field by field, the versions that will be published and the
 * cascades they trigger. No AWS access, no credentials.
 */
#define _XOPEN_SOURCE 700
#include "cmd/cmd.h"
#include "cmd/common.h"

#include "providers/emulator/emulator.h"
#include "reconcile/apply.h"
#include "reconcile/live.h"
#include "reconcile/plan.h"
#include "reconcile/render.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIFF_USAGE "--repo PATH_OR_URL --base REF [--head REF] [--path SUBDIR] [options]"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int load(struct ibs_model *out, const struct ibs_cmd_source_args *base_args, const char *ref)
{
    struct ibs_cmd_source_args a = *base_args;
    a.ref = ref;
    return ibs_cmd_load_model(out, &a, NULL);
}

/* Plans `model` against the account and applies it (base) or returns the
 * plan (head). */
static int plan_against(struct ibs_plan *plan, const struct ibs_model *model,
                        struct ibs_provider *p, bool apply)
{
    struct ibs_live live;
    struct ibs_apply_result res;
    int rc;

    ibs_live_init(&live);
    ibs_plan_init(plan);
    if ((rc = ibs_live_read(&live, p)) || (rc = ibs_plan_compute(plan, model, &live, p, NULL)))
        goto done;
    if (apply) {
        rc = ibs_apply_run(&res, plan, p, NULL);
        ibs_apply_result_release(&res);
    }
done:
    ibs_live_release(&live);
    return rc;
}

static int cmd_diff(int argc, char **argv)
{
    static const struct option longopts[] = {
        IBS_CMD_SOURCE_OPTIONS,
        {"base", required_argument, NULL, 'b'},
        {"head", required_argument, NULL, 'H'},
        {"format", required_argument, NULL, 'f'},
        {"detailed-exitcode", no_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct ibs_cmd_source_args args;
    const char *base = NULL, *head = "HEAD", *format = "text";
    struct ibs_model bm, hm;
    struct ibs_plan bp, hp;
    struct ibs_emulator *emu = NULL;
    struct ibs_emulator_options eo;
    struct ibs_provider *p = NULL;
    struct ibs_buf out = IBS_BUF_INIT;
    struct ibs_value *doc = NULL;
    char dir[] = "/tmp/ibsync-diff-XXXXXX";
    bool made_dir = false, detailed = false;
    int opt, rc, exit_code = IBS_EXIT_OK;

    memset(&args, 0, sizeof(args));
    ibs_model_init(&bm);
    ibs_model_init(&hm);
    ibs_plan_init(&bp);
    ibs_plan_init(&hp);
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (ibs_cmd_source_option(&args, opt, optarg))
            continue;
        switch (opt) {
        case 'b':
            base = optarg;
            break;
        case 'H':
            head = optarg;
            break;
        case 'd':
            detailed = true;
            break;
        case 'f':
            if (strcmp(optarg, "text") && strcmp(optarg, "json") && strcmp(optarg, "markdown"))
                return ibs_cmd_usage_error(&ibs_cmd_diff_entry,
                                           "--format must be text, json or markdown");
            format = optarg;
            break;
        default:
            return ibs_cmd_bad_option(&ibs_cmd_diff_entry, argv, opt);
        }
    }
    if (optind < argc)
        return ibs_cmd_usage_error(&ibs_cmd_diff_entry, "unexpected argument '%s'", argv[optind]);
    if (!args.repo || !base)
        return ibs_cmd_usage_error(&ibs_cmd_diff_entry, "--repo and --base are required");
    if (args.ref)
        return ibs_cmd_usage_error(&ibs_cmd_diff_entry, "use --base and --head, not --ref");

    if ((exit_code = load(&bm, &args, base)) || (exit_code = load(&hm, &args, head)))
        goto done;
    if (!mkdtemp(dir)) {
        exit_code = ibs_cmd_report_error(NULL);
        goto done;
    }
    made_dir = true;
    memset(&eo, 0, sizeof(eo));
    eo.data_dir = dir;
    eo.region = hm.stack.region ? hm.stack.region : bm.stack.region;
    if ((rc = ibs_emulator_open(&emu, &eo)) || (rc = ibs_emulator_provider_new(&p, emu, true))) {
        exit_code = ibs_cmd_report_error("opening a scratch account");
        goto done;
    }
    /* The head's stack name must own what the base created. */
    free(bm.stack.name);
    if (!(bm.stack.name = strdup(hm.stack.name))) {
        exit_code = ibs_cmd_report_error(NULL);
        goto done;
    }
    if ((rc = plan_against(&bp, &bm, p, true))) {
        exit_code = ibs_cmd_report_error("replaying the base");
        goto done;
    }
    if ((rc = plan_against(&hp, &hm, p, false))) {
        exit_code = ibs_cmd_report_error("planning the head");
        goto done;
    }
    free(hp.source);
    ibs_buf_printf(&out, "%s@%s..%s%s%s", args.repo, base, head, args.path ? ":" : "",
                   args.path ? args.path : "");
    hp.source = ibs_buf_detach(&out);
    free(hp.account);
    hp.account = NULL;
    if (strcmp(format, "json") == 0) {
        if (!(rc = ibs_plan_to_value(&doc, &hp)))
            rc = ibs_json_write(&out, doc, IBS_JSON_PRETTY);
        ibs_buf_putc(&out, '\n');
    } else if (strcmp(format, "markdown") == 0) {
        rc = ibs_render_markdown(&out, &hp);
    } else {
        rc = ibs_render_text(&out, &hp, isatty(STDOUT_FILENO) ? IBS_RENDER_COLOR : 0);
    }
    if (rc) {
        exit_code = ibs_cmd_report_error(NULL);
        goto done;
    }
    fputs(out.ptr, stdout);
    if (detailed && hp.actions.count)
        exit_code = IBS_EXIT_CHANGES;
done:
    ibs_provider_free(p);
    if (made_dir)
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    ibs_value_free(doc);
    ibs_buf_release(&out);
    ibs_plan_release(&bp);
    ibs_plan_release(&hp);
    ibs_model_release(&bm);
    ibs_model_release(&hm);
    return exit_code;
}

const struct ibs_cmd_entry ibs_cmd_diff_entry = {
    .name = "diff",
    .usage = DIFF_USAGE,
    .summary = "Show what changes between two refs of desired state (no AWS access)",
    .help = "  --repo PATH_OR_URL   the git repository\n"
            "  --base REF           the ref to compare against (e.g. origin/main)\n"
            "  --head REF           the ref with the changes (default: HEAD)\n"
            "  --path SUBDIR        sub-directory holding the desired state\n"
            "  --state-dir DIR      git cache location (default .ibsync)\n"
            "  --stack NAME         stack name override\n"
            "  --format FORMAT      text (default), json or markdown\n"
            "  --detailed-exitcode  exit 0 without changes, 2 with changes, 1 on error\n",
    .exec = cmd_diff,
};
