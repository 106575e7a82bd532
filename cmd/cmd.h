/*
 * The command table of the ibsync CLI (after tmux's cmd-*.c descriptors and
 * libgit2's src/cli): one file per command, each exporting a descriptor.
 * Commands print; libraries never do.
 */
#ifndef IBS_CMD_CMD_H
#define IBS_CMD_CMD_H

#include <stdbool.h>
#include <stdio.h>

/* Exit codes shared by every command (documented in docs/exit-codes.md). */
enum {
    IBS_EXIT_OK = 0,
    IBS_EXIT_FAILURE = 1, /* an error, or invalid desired state */
    IBS_EXIT_CHANGES = 2, /* --detailed-exitcode: the plan has changes (reconcile: applied) */
    IBS_EXIT_DRIFT = 3,   /* reconcile --dry-run --detailed-exitcode: changes found */
    IBS_EXIT_USAGE = 129, /* bad command line (as git) */
};

struct ibs_cmd_entry {
    const char *name;
    const char *usage;                  /* arguments after the command name */
    const char *summary;                /* one line for `ibsync --help` */
    const char *help;                   /* the options, printed by `ibsync CMD --help` */
    int (*exec)(int argc, char **argv); /* argv[0] is the command name */
};

extern const struct ibs_cmd_entry ibs_cmd_version_entry;
extern const struct ibs_cmd_entry ibs_cmd_emulator_entry;
extern const struct ibs_cmd_entry ibs_cmd_validate_entry;
extern const struct ibs_cmd_entry ibs_cmd_plan_entry;
extern const struct ibs_cmd_entry ibs_cmd_apply_entry;
extern const struct ibs_cmd_entry ibs_cmd_destroy_entry;
extern const struct ibs_cmd_entry ibs_cmd_api_entry;
extern const struct ibs_cmd_entry ibs_cmd_diff_entry;
extern const struct ibs_cmd_entry ibs_cmd_reconcile_entry;

/* Runs the CLI; returns the process exit code. */
int ibs_cmd_main(int argc, char **argv);

/* Prints `ibsync CMD --help` text for `entry` to `out`. */
void ibs_cmd_print_help(FILE *out, const struct ibs_cmd_entry *entry);

/*
 * Reports a usage error for `entry` on stderr ("ibsync CMD: message" and the
 * usage line) and returns IBS_EXIT_USAGE.
 */
int ibs_cmd_usage_error(const struct ibs_cmd_entry *entry, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Prints the thread's last library error as "ibsync: error: ..." and returns
 * IBS_EXIT_FAILURE.
 */
int ibs_cmd_report_error(const char *what);

/*
 * Reports the option getopt_long() just rejected (`opt` is '?' or ':', with
 * ":" leading the optstring) as a usage error; returns IBS_EXIT_USAGE.
 */
int ibs_cmd_bad_option(const struct ibs_cmd_entry *entry, char **argv, int opt);

/* Returns 1 if argv holds -h or --help before a "--" (and prints help). */
int ibs_cmd_wants_help(const struct ibs_cmd_entry *entry, int argc, char **argv);

/*
 * Whether a command frees its large in-memory structures (the model, the
 * live state, the plan) before the process exits. Walking and freeing the
 * trees of 10,000 resources is a tenth of a plan's CPU time, for memory the
 * kernel takes back at exit anyway (clang skips it too, -disable-free).
 * Files, locks, journals, caches and databases are always closed. Builds
 * with IBS_FREE_AT_EXIT (the sanitizer builds: LeakSanitizer and ASan check
 * the release paths) and runs with IBSYNC_FREE_AT_EXIT=1 in the environment
 * (for valgrind) free everything. Only for structures a command builds once
 * per process.
 */
bool ibs_cmd_free_at_exit(void);

#endif
