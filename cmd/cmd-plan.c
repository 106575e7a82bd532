/* ibsync plan / apply / destroy: the command descriptors over cmd/run.c. */
#include "cmd/cmd.h"
#include "cmd/run.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PLAN_USAGE "[SOURCE | --repo PATH_OR_URL [--ref REF] [--path SUBDIR]] [options]"
#define APPLY_USAGE "[SOURCE | PLANFILE | --repo PATH_OR_URL [--ref REF] [--path SUBDIR]] [options]"

static int parse(struct ibs_cmd_run *run, const struct ibs_cmd_entry *entry, int argc, char **argv)
{
    static const struct option longopts[] = {
        IBS_CMD_SOURCE_OPTIONS,
        IBS_CMD_PROVIDER_OPTIONS,
        IBS_CMD_RUN_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    int opt, r;

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":o:", longopts, NULL)) != -1) {
        if (ibs_cmd_source_option(&run->source, opt, optarg) ||
            ibs_cmd_provider_option(&run->provider, opt, optarg))
            continue;
        r = ibs_cmd_run_option(run, entry->name, opt, optarg);
        if (r == 1)
            continue;
        if (r == IBS_EXIT_USAGE)
            return r;
        return ibs_cmd_bad_option(entry, argv, opt);
    }
    if (optind < argc)
        run->source.dir = argv[optind++];
    if (optind < argc)
        return ibs_cmd_usage_error(entry, "unexpected argument '%s'", argv[optind]);
    if (run->out_file && run->apply)
        return ibs_cmd_usage_error(entry, "-o/--out is an option of ibsync plan");
    if (run->detailed_exitcode && run->apply)
        return ibs_cmd_usage_error(entry, "--detailed-exitcode is an option of ibsync plan");
    return ibs_cmd_source_check(&run->source, entry->name, entry->usage);
}

static int cmd_plan(int argc, char **argv)
{
    struct ibs_cmd_run run;
    int rc;

    memset(&run, 0, sizeof(run));
    if ((rc = parse(&run, &ibs_cmd_plan_entry, argc, argv)))
        return rc;
    return ibs_cmd_run_reconcile(&run);
}

static int apply_or_destroy(const struct ibs_cmd_entry *entry, bool destroy, int argc, char **argv)
{
    struct ibs_cmd_run run;
    struct stat st;
    int rc;

    memset(&run, 0, sizeof(run));
    run.apply = true;
    run.destroy = destroy;
    if ((rc = parse(&run, entry, argc, argv)))
        return rc;
    /* A file argument is a saved plan; a directory is desired state. */
    if (!destroy && run.source.dir && stat(run.source.dir, &st) == 0 && S_ISREG(st.st_mode)) {
        run.plan_file = run.source.dir;
        run.source.dir = NULL;
        if (run.ntargets || run.nexcludes)
            return ibs_cmd_usage_error(entry, "--target and --exclude cannot narrow a saved plan");
    }
    return ibs_cmd_run_reconcile(&run);
}

static int cmd_apply(int argc, char **argv)
{
    return apply_or_destroy(&ibs_cmd_apply_entry, false, argc, argv);
}

static int cmd_destroy(int argc, char **argv)
{
    return apply_or_destroy(&ibs_cmd_destroy_entry, true, argc, argv);
}

#define RUN_HELP                                                                                   \
    "  --target KIND/NAME   only this resource and what it depends on (repeatable)\n"              \
    "  --exclude KIND/NAME  leave this resource out; refused when a kept action\n"                 \
    "                       depends on it (repeatable)\n"                                          \
    "  --format FORMAT      text (default), json (docs/plan-json.md) or markdown\n"                \
    "  --refresh=full       read everything from the account, ignoring the cache of\n"             \
    "                       immutable versions and unchanged details\n"

const struct ibs_cmd_entry ibs_cmd_plan_entry = {
    .name = "plan",
    .usage = PLAN_USAGE,
    .summary = "Show what apply would change in the account (changes nothing)",
    .help = IBS_CMD_SOURCE_HELP IBS_CMD_PROVIDER_HELP
    "Plan:\n" RUN_HELP
    "  -o, --out FILE       save the plan, to apply exactly it later with ibsync apply FILE\n"
    "  --detailed-exitcode  exit 0 without changes, 2 with changes, 1 on error\n",
    .exec = cmd_plan,
};

const struct ibs_cmd_entry ibs_cmd_apply_entry = {
    .name = "apply",
    .usage = APPLY_USAGE,
    .summary = "Plan and apply changes so the account matches desired state",
    .help = IBS_CMD_SOURCE_HELP IBS_CMD_PROVIDER_HELP
    "Apply:\n"
    "  PLANFILE             a plan saved by ibsync plan -o: applied exactly, refused\n"
    "                       if the account changed since it was made\n" RUN_HELP
    "  --auto-approve       do not ask for confirmation (required without a terminal)\n"
    "  --parallelism N      actions run at once (default 4)\n"
    "  --keep-going         after a failure, finish every branch that does not depend on it\n",
    .exec = cmd_apply,
};

const struct ibs_cmd_entry ibs_cmd_destroy_entry = {
    .name = "destroy",
    .usage = PLAN_USAGE,
    .summary = "Delete everything the stack manages (metadata.deletionPolicy: Retain is kept)",
    .help = IBS_CMD_SOURCE_HELP IBS_CMD_PROVIDER_HELP
    "Destroy:\n" RUN_HELP
    "  --auto-approve       do not ask for confirmation (required without a terminal)\n"
    "  --parallelism N      actions run at once (default 4)\n"
    "  --keep-going         after a failure, finish every branch that does not depend on it\n",
    .exec = cmd_destroy,
};
