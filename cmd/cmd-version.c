/* ibsync version: the release and the git commit the binary was built from. */
#include "cmd/cmd.h"

#include "util/version.h"

static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return ibs_cmd_usage_error(&ibs_cmd_version_entry, "unexpected argument '%s'", argv[1]);
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
