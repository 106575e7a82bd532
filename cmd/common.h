/*
 * Option handling shared by the commands that read desired state
 * (validate, plan, apply, ...): where the source is and where state lives.
 */
#ifndef IBS_CMD_COMMON_H
#define IBS_CMD_COMMON_H

#include "reconcile/model.h"
#include "state/source.h"
#include "util/diag.h"

#include <getopt.h>

struct ibs_cmd_source_args {
    const char *dir;         /* positional SOURCE directory */
    const char *repo;        /* --repo */
    const char *ref;         /* --ref */
    const char *path;        /* --path */
    const char *state_dir;   /* --state-dir, default .ibsync */
    const char *stack;       /* --stack */
    const char *name_prefix; /* --name-prefix */
    /* Git authentication; the environment fills in what is not given. */
    const char *git_token_file;              /* --git-token-file */
    const char *git_username;                /* --git-username */
    const char *git_ssh_key;                 /* --git-ssh-key */
    const char *git_ssh_key_passphrase_file; /* --git-ssh-key-passphrase-file */
    const char *git_known_hosts;             /* --git-known-hosts */
};

/* Long options for the source arguments, to append to a command's table. */
/* clang-format off */
#define IBS_CMD_SOURCE_OPTIONS \
    {"repo", required_argument, NULL, 0x1001}, \
    {"ref", required_argument, NULL, 0x1002}, \
    {"path", required_argument, NULL, 0x1003}, \
    {"state-dir", required_argument, NULL, 0x1004}, \
    {"stack", required_argument, NULL, 0x1005}, \
    {"name-prefix", required_argument, NULL, 0x1006}, \
    {"git-token-file", required_argument, NULL, 0x1007}, \
    {"git-username", required_argument, NULL, 0x1008}, \
    {"git-ssh-key", required_argument, NULL, 0x1009}, \
    {"git-ssh-key-passphrase-file", required_argument, NULL, 0x100a}, \
    {"git-known-hosts", required_argument, NULL, 0x100b}
/* clang-format on */

#define IBS_CMD_SOURCE_HELP                                                                        \
    "Source of desired state (a directory, or a git repository read without a checkout):\n"        \
    "  SOURCE               a directory holding *.yaml files (default: .)\n"                       \
    "  --repo PATH_OR_URL   a git repository: local path or URL (file, git, http(s), ssh)\n"       \
    "  --ref REF            branch, tag or commit to read (default: HEAD)\n"                       \
    "  --path SUBDIR        sub-directory of the repository holding the desired state\n"           \
    "  --state-dir DIR      state directory (git cache, locks, journals; default: .ibsync)\n"      \
    "  --stack NAME         stack name (default: the Stack document's, else the directory's)\n"    \
    "  --name-prefix PREFIX prefix every resource name (preview stacks; use with --stack)\n"       \
    "Git authentication (secrets are never shown nor stored):\n"                                   \
    "  --git-token-file FILE   http(s): token for basic auth, read on every run (default:\n"       \
    "                          $IBSYNC_GIT_TOKEN, else $GIT_TOKEN)\n"                              \
    "  --git-username NAME     user for the token, or for ssh URLs without one (default:\n"        \
    "                          $IBSYNC_GIT_USERNAME, else x-access-token; ssh: git)\n"             \
    "  --git-ssh-key FILE      ssh: private key file\n"                                            \
    "  --git-ssh-key-passphrase-file FILE  ssh: passphrase of the private key\n"                   \
    "  --git-known-hosts FILE  ssh: known host keys (default: ~/.ssh/known_hosts)\n"

/*
 * Handles one getopt_long result `opt` (with `optarg`) if it is a source
 * option; returns 1 if handled, 0 if not.
 */
int ibs_cmd_source_option(struct ibs_cmd_source_args *args, int opt, const char *arg);

/*
 * Checks the combination of source arguments. Returns 0, or prints a usage
 * error for `cmd` and returns the usage exit code.
 */
int ibs_cmd_source_check(const struct ibs_cmd_source_args *args, const char *cmd,
                         const char *usage);

/* Opens the source described by `args` into *out (caller frees). */
int ibs_cmd_source_open(struct ibs_source **out, const struct ibs_cmd_source_args *args);

/*
 * Opens the source and loads the model (caller releases *out with
 * ibs_model_release even on failure). Diagnostics are printed to stderr.
 * Returns 0, or an exit code (IBS_EXIT_FAILURE).
 */
int ibs_cmd_load_model(struct ibs_model *out, const struct ibs_cmd_source_args *args,
                       size_t *out_errors);

#endif
