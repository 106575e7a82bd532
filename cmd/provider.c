/* Provider selection for commands; see provider.h. */
#include "cmd/provider.h"

#include "providers/emulator/emulator.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ibs_cmd_provider_option(struct ibs_cmd_provider_args *args, int opt, const char *arg)
{
    switch (opt) {
    case 0x1101:
        args->local = true;
        args->local_dir = arg;
        return 1;
    case 0x1102:
        args->endpoint = arg;
        return 1;
    case 0x1103:
        args->region = arg;
        return 1;
    case 0x1104:
        args->profile = arg;
        return 1;
    case 0x1105:
        args->max_attempts = arg;
        return 1;
    case 0x1106:
        args->debug = true;
        return 1;
    default:
        return 0;
    }
}

static const char *pick_region(const struct ibs_cmd_provider_args *args, const char *stack_region)
{
    const char *r = args->region;
    if (!r || !*r)
        r = stack_region;
    if (!r || !*r)
        r = getenv("AWS_REGION");
    if (!r || !*r)
        r = getenv("AWS_DEFAULT_REGION");
    return r && *r ? r : NULL;
}

static int open_local(struct ibs_provider **out, const struct ibs_cmd_provider_args *args,
                      const char *region, const char *state_dir)
{
    struct ibs_emulator_options eo;
    struct ibs_emulator *emu = NULL;
    struct ibs_buf dir = IBS_BUF_INIT;
    int rc;

    if (!region)
        region = "us-east-1";
    if (args->local_dir)
        ibs_buf_puts(&dir, args->local_dir);
    else
        ibs_buf_printf(&dir, "%s/local/%s", state_dir ? state_dir : ".ibsync", region);
    if ((rc = ibs_buf_oom(&dir)))
        goto done;
    memset(&eo, 0, sizeof(eo));
    eo.data_dir = dir.ptr;
    eo.region = region;
    if ((rc = ibs_emulator_open(&emu, &eo))) {
        ibs_error_prefix("local account in %s", dir.ptr);
        goto done;
    }
    rc = ibs_emulator_provider_new(out, emu, true);
done:
    ibs_buf_release(&dir);
    return rc;
}

int ibs_cmd_provider_open(struct ibs_provider **out, const struct ibs_cmd_provider_args *args,
                          const char *stack_region, const char *state_dir)
{
    const char *region = pick_region(args, stack_region);

    *out = NULL;
    if (args->local)
        return open_local(out, args, region, state_dir);
    return ibs_error_set(IBS_EUNSUPPORTED,
                         "the AWS provider is not built into this ibsync yet; use --local");
}
