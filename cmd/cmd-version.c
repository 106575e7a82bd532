/* ibsync version: the release and the git commit the binary was built from. */
#include "cmd/cmd.h"

#include "util/version.h"

#include <getopt.h>

static int cmd_version(int argc, char **argv)
{
    static const struct option longopts[] = {{NULL, 0, NULL, 0}};
    int opt;

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
        return ibs_cmd_bad_option(&ibs_cmd_version_entry, argv, opt);
    if (optind < argc)
        return ibs_cmd_usage_error(&ibs_cmd_version_entry, "unexpected argument '%s'",
                                   argv[optind]);
    printf("ibsync %s (commit %s)\n", IBS_VERSION, IBS_GIT_COMMIT);
    return IBS_EXIT_OK;
}

const struct ibs_cmd_entry ibs_cmd_version_entry = {
    .name = "version",
    .usage = "",
    .summary = "Print the version and the git commit ibsync was built from",
    .help = "",
    .exec = cmd_version,
};
