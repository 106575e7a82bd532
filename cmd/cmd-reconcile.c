/*
 * ibsync reconcile: the unattended loop body for a Kubernetes CronJob or a
 * scheduled CI job. Fetch desired state (reusing the git cache), plan, apply
 * without asking, and exit; optionally as JSON log lines and with Prometheus
 * textfile metrics. With --dry-run it only reports drift.
 */
#include "cmd/cmd.h"
#include "cmd/run.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define RECONCILE_USAGE                                                                            \
    "[SOURCE | --repo PATH_OR_URL [--ref REF] [--path SUBDIR]] [--dry-run] [options]"

static int cmd_reconcile(int argc, char **argv)
{
    static const struct option longopts[] = {
        IBS_CMD_SOURCE_OPTIONS,
        IBS_CMD_PROVIDER_OPTIONS,
        IBS_CMD_RUN_OPTIONS,
        {"dry-run", no_argument, NULL, 'n'},
        {"log-format", required_argument, NULL, 'L'},
        {"metrics-file", required_argument, NULL, 'M'},
        {NULL, 0, NULL, 0},
    };
    struct ibs_cmd_run run;
    int opt, r;

    memset(&run, 0, sizeof(run));
    run.reconcile = true;
    run.auto_approve = true;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":n", longopts, NULL)) != -1) {
        if (ibs_cmd_source_option(&run.source, opt, optarg) ||
            ibs_cmd_provider_option(&run.provider, opt, optarg))
            continue;
        switch (opt) {
        case 'n':
            run.dry_run = true;
            continue;
        case 'M':
            run.metrics_file = optarg;
            continue;
        case 'L':
            if (strcmp(optarg, "json") == 0)
                run.log_json = true;
            else if (strcmp(optarg, "text") != 0)
                return ibs_cmd_usage_error(&ibs_cmd_reconcile_entry,
                                           "--log-format must be text or json");
            continue;
        case 'o':
            return ibs_cmd_usage_error(&ibs_cmd_reconcile_entry,
                                       "-o/--out is an option of ibsync plan");
        default:
            break;
        }
        r = ibs_cmd_run_option(&run, "reconcile", opt, optarg);
        if (r == 1)
            continue;
        if (r == IBS_EXIT_USAGE)
            return r;
        return ibs_cmd_bad_option(&ibs_cmd_reconcile_entry, argv, opt);
    }
    if (optind < argc)
        run.source.dir = argv[optind++];
    if (optind < argc)
        return ibs_cmd_usage_error(&ibs_cmd_reconcile_entry, "unexpected argument '%s'",
                                   argv[optind]);
    if ((r = ibs_cmd_source_check(&run.source, "reconcile", RECONCILE_USAGE)))
        return r;
    run.apply = !run.dry_run;
    return ibs_cmd_run_reconcile(&run);
}

const struct ibs_cmd_entry ibs_cmd_reconcile_entry = {
    .name = "reconcile",
    .usage = RECONCILE_USAGE,
    .summary = "Fetch, plan and apply without asking (CronJob / scheduled CI)",
    .help = IBS_CMD_SOURCE_HELP IBS_CMD_PROVIDER_HELP
    "Reconcile:\n"
    "  --dry-run            plan and report drift, change nothing\n"
    "  --log-format FORMAT  text (default) or json: one JSON object per line\n"
    "  --metrics-file FILE  write Prometheus textfile-collector metrics (docs/metrics.md)\n"
    "  --detailed-exitcode  0 in sync, 2 changes applied, 3 drift found (--dry-run),\n"
    "                       1 failed (without it: 0 unless failed)\n"
    "  --target KIND/NAME, --exclude KIND/NAME, --parallelism N, --keep-going\n"
    "                       as for ibsync apply\n",
    .exec = cmd_reconcile,
};
