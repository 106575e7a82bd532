/*
 * The plan/apply pipeline shared by `ibsync plan`, `apply` and `destroy`:
 * load desired state, open the account, take the stack lock, read live
 * state, plan, show, confirm, apply with a journal.
 */
#ifndef IBS_CMD_RUN_H
#define IBS_CMD_RUN_H

#include "cmd/common.h"
#include "cmd/provider.h"

#include <stdbool.h>
#include <stddef.h>

enum ibs_cmd_format {
    IBS_CMD_FORMAT_TEXT,
    IBS_CMD_FORMAT_JSON,
    IBS_CMD_FORMAT_MARKDOWN,
};

struct ibs_cmd_run {
    struct ibs_cmd_source_args source;
    struct ibs_cmd_provider_args provider;
    const char *plan_file; /* apply: a saved plan instead of a source */
    const char *out_file;  /* plan -o */
    enum ibs_cmd_format format;
    bool detailed_exitcode; /* plan: 0 no changes, 2 changes, 1 error */
    bool apply;             /* apply the plan */
    bool destroy;           /* plan the removal of everything managed */
    bool auto_approve;
    bool keep_going;
    bool refresh_full;        /* --refresh=full: ignore the live-state cache */
    bool reconcile;           /* ibsync reconcile: unattended, result event, metrics */
    bool dry_run;             /* reconcile --dry-run: report, change nothing */
    bool log_json;            /* --log-format json: one JSON object per line */
    const char *metrics_file; /* --metrics-file: Prometheus textfile */
    unsigned parallelism;
    const char *targets[64];
    size_t ntargets;
    const char *excludes[64];
    size_t nexcludes;
};

/* Runs the pipeline; returns the process exit code. */
int ibs_cmd_run_reconcile(struct ibs_cmd_run *run);

/*
 * Handles the options shared by plan/apply/destroy (--target, --exclude,
 * --format, --parallelism, ...); returns 1 if handled, 0 if not, or
 * IBS_EXIT_USAGE (after printing) for a bad value.
 */
int ibs_cmd_run_option(struct ibs_cmd_run *run, const char *cmd, int opt, const char *arg);

/* clang-format off */
#define IBS_CMD_RUN_OPTIONS \
    {"target", required_argument, NULL, 0x1201}, \
    {"exclude", required_argument, NULL, 0x1202}, \
    {"format", required_argument, NULL, 0x1203}, \
    {"parallelism", required_argument, NULL, 0x1204}, \
    {"keep-going", no_argument, NULL, 0x1205}, \
    {"auto-approve", no_argument, NULL, 0x1206}, \
    {"detailed-exitcode", no_argument, NULL, 0x1207}, \
    {"out", required_argument, NULL, 'o'}, \
    {"refresh", required_argument, NULL, 0x1208}
/* clang-format on */

#endif
