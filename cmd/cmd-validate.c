/* ibsync validate: load desired state and report every problem in it. */
#include "cmd/cmd.h"
#include "cmd/common.h"

#include <getopt.h>
#include <stdio.h>

#define VALIDATE_USAGE "[SOURCE | --repo PATH_OR_URL [--ref REF] [--path SUBDIR]] [options]"

static int cmd_validate(int argc, char **argv)
{
    static const struct option longopts[] = {
        IBS_CMD_SOURCE_OPTIONS,
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    struct ibs_cmd_source_args args = {0};
    struct ibs_model model;
    int quiet = 0, opt, rc;
    size_t counts[IBS_KIND_COUNT] = {0};

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":q", longopts, NULL)) != -1) {
        if (ibs_cmd_source_option(&args, opt, optarg))
            continue;
        if (opt == 'q') {
            quiet = 1;
            continue;
        }
        return ibs_cmd_bad_option(&ibs_cmd_validate_entry, argv, opt);
    }
    if (optind < argc)
        args.dir = argv[optind++];
    if (optind < argc)
        return ibs_cmd_usage_error(&ibs_cmd_validate_entry, "unexpected argument '%s'",
                                   argv[optind]);
    if ((rc = ibs_cmd_source_check(&args, "validate", VALIDATE_USAGE)))
        return rc;
    rc = ibs_cmd_load_model(&model, &args, NULL);
    if (rc == IBS_EXIT_OK && !quiet) {
        for (size_t i = 0; i < model.resources.count; i++)
            counts[((struct ibs_resource *)model.resources.items[i])->kind]++;
        printf("%s: valid, stack \"%s\", %zu resource%s", model.source, model.stack.name,
               model.resources.count, model.resources.count == 1 ? "" : "s");
        for (int k = 0, first = 1; k < IBS_KIND_COUNT; k++) {
            if (!counts[k])
                continue;
            printf("%s%zu %s", first ? " (" : ", ", counts[k],
                   ibs_model_kind_info((enum ibs_kind)k)->name);
            first = 0;
        }
        printf("%s\n", model.resources.count ? ")" : "");
    }
    if (ibs_cmd_free_at_exit())
        ibs_model_release(&model);
    return rc;
}

const struct ibs_cmd_entry ibs_cmd_validate_entry = {
    .name = "validate",
    .usage = VALIDATE_USAGE,
    .summary = "Check desired state: schema, references, duplicates (no AWS access)",
    .help = IBS_CMD_SOURCE_HELP "Options:\n"
                                "  -q, --quiet          print only problems\n",
    .exec = cmd_validate,
};
