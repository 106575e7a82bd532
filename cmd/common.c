/* Source options and model loading shared by commands; see common.h. */
#include "cmd/common.h"

#include "cmd/cmd.h"
#include "reconcile/loader.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    case 0x1007:
        args->git_token_file = arg;
        return 1;
    case 0x1008:
        args->git_username = arg;
        return 1;
    case 0x1009:
        args->git_ssh_key = arg;
        return 1;
    case 0x100a:
        args->git_ssh_key_passphrase_file = arg;
        return 1;
    case 0x100b:
        args->git_known_hosts = arg;
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

/* The value of environment variable `name`, or NULL when unset or empty. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/*
 * Fills in the authentication part of `go` from `args` and the environment
 * (which only cmd/ reads): the token from --git-token-file, else
 * $IBSYNC_GIT_TOKEN, else $GIT_TOKEN; the user from --git-username, else
 * $IBSYNC_GIT_USERNAME; known_hosts from --git-known-hosts, else
 * ~/.ssh/known_hosts. The hint names where the credentials came from,
 * for authentication failures. `known_hosts` holds the default path.
 */
static int git_auth_options(struct ibs_git_options *go, struct ibs_buf *known_hosts,
                            const struct ibs_cmd_source_args *args)
{
    const char *home = env_value("HOME");
    bool http = !strncasecmp(args->repo, "http://", 7) || !strncasecmp(args->repo, "https://", 8);

    if (args->git_token_file) {
        go->token_file = args->git_token_file;
        go->auth_hint = "check --git-token-file";
    } else if ((go->token = env_value("IBSYNC_GIT_TOKEN")) != NULL) {
        go->auth_hint = "check IBSYNC_GIT_TOKEN";
    } else if ((go->token = env_value("GIT_TOKEN")) != NULL) {
        go->auth_hint = "check GIT_TOKEN";
    } else {
        go->auth_hint = "give a token with --git-token-file or IBSYNC_GIT_TOKEN";
    }
    go->username = args->git_username ? args->git_username : env_value("IBSYNC_GIT_USERNAME");
    go->ssh_key = args->git_ssh_key;
    go->ssh_key_passphrase_file = args->git_ssh_key_passphrase_file;
    if (!http)
        go->auth_hint = !args->git_ssh_key ? "give a key with --git-ssh-key"
                        : args->git_ssh_key_passphrase_file
                            ? "check --git-ssh-key and --git-ssh-key-passphrase-file"
                            : "check --git-ssh-key";
    go->known_hosts = args->git_known_hosts;
    if (!go->known_hosts && home) {
        ibs_buf_printf(known_hosts, "%s/.ssh/known_hosts", home);
        if (ibs_buf_oom(known_hosts))
            return IBS_ENOMEM;
        go->known_hosts = known_hosts->ptr;
    }
    return 0;
}

int ibs_cmd_source_open(struct ibs_source **out, const struct ibs_cmd_source_args *args)
{
    struct ibs_buf cache = IBS_BUF_INIT, known_hosts = IBS_BUF_INIT;
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
    if ((rc = git_auth_options(&go, &known_hosts, args)))
        goto done;
    rc = ibs_source_open_git(out, &go);
done:
    ibs_buf_release(&known_hosts);
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
