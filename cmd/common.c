/* Source options and model loading shared by commands; see common.h. */
#include "cmd/common.h"

#include "cmd/cmd.h"
#include "reconcile/loader.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ibs_cmd_source_option(struct ibs_cmd_source_args *args, int opt, const char *arg)
{
    switch (opt) {
    case 0x1001:
        args->repo = arg;
        return 1;
    case 0x1002:
        args->ref = arg;
        return 1;
    case 0x1003:
        args->path = arg;
        return 1;
    case 0x1004:
        args->state_dir = arg;
        return 1;
    case 0x1005:
        args->stack = arg;
        return 1;
    case 0x1006:
        args->name_prefix = arg;
        return 1;
    default:
        return 0;
    }
}

int ibs_cmd_source_check(const struct ibs_cmd_source_args *args, const char *cmd, const char *usage)
{
    const char *bad = NULL;

    if (args->repo && args->dir)
        bad = "give either a SOURCE directory or --repo, not both";
    else if (!args->repo && (args->ref || args->path))
        bad = "--ref and --path need --repo";
    if (!bad)
        return 0;
    fprintf(stderr, "ibsync %s: %s\nusage: ibsync %s %s\n", cmd, bad, cmd, usage);
    return IBS_EXIT_USAGE;
}

int ibs_cmd_source_open(struct ibs_source **out, const struct ibs_cmd_source_args *args)
{
    struct ibs_buf cache = IBS_BUF_INIT;
    struct ibs_git_options go;
    int rc;

    if (!args->repo)
        return ibs_source_open_dir(out, args->dir ? args->dir : ".");
    ibs_buf_printf(&cache, "%s/git", args->state_dir ? args->state_dir : ".ibsync");
    if ((rc = ibs_buf_oom(&cache)))
        goto done;
    memset(&go, 0, sizeof(go));
    go.repo = args->repo;
    go.ref = args->ref;
    go.path = args->path;
    go.cache_dir = cache.ptr;
    rc = ibs_source_open_git(out, &go);
done:
    ibs_buf_release(&cache);
    return rc;
}

int ibs_cmd_load_model(struct ibs_model *out, const struct ibs_cmd_source_args *args,
                       size_t *out_errors)
{
    struct ibs_source *src = NULL;
    struct ibs_diags diags;
    struct ibs_buf text = IBS_BUF_INIT;
    struct ibs_loader_options lo = {0, args->stack, args->name_prefix};
    int rc, exit_code = IBS_EXIT_OK;

    ibs_diag_init(&diags);
    ibs_model_init(out);
    if (out_errors)
        *out_errors = 0;
    if ((rc = ibs_cmd_source_open(&src, args))) {
        exit_code = ibs_cmd_report_error(NULL);
        goto done;
    }
    rc = ibs_loader_load(out, &diags, src, &lo);
    ibs_diag_format_all(&text, &diags);
    fputs(text.ptr, stderr);
    if (out_errors)
        *out_errors = diags.errors;
    if (rc == IBS_EINVALID) {
        fprintf(stderr, "ibsync: %zu error%s in %s\n", diags.errors, diags.errors == 1 ? "" : "s",
                ibs_source_describe(src));
        exit_code = IBS_EXIT_FAILURE;
    } else if (rc) {
        exit_code = ibs_cmd_report_error("loading desired state");
    }
done:
    ibs_buf_release(&text);
    ibs_diag_release(&diags);
    ibs_source_free(src);
    return exit_code;
}
