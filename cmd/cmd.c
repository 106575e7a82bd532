/*
 * Command dispatch: finds the command in the table, handles the global
 * --help/--version flags and prints usage errors with exit code 129.
 */
#include "cmd/cmd.h"

#include "util/error.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
static const struct ibs_cmd_entry *const commands[] = {
    &ibs_cmd_emulator_entry,
    &ibs_cmd_validate_entry,
    &ibs_cmd_plan_entry,
    &ibs_cmd_apply_entry,
    &ibs_cmd_destroy_entry,
    &ibs_cmd_diff_entry,
    &ibs_cmd_reconcile_entry,
    &ibs_cmd_api_entry,
    &ibs_cmd_version_entry,
};
/* clang-format on */

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_main_help(FILE *out)
{
    fprintf(out,
            "usage: ibsync [--version] [--help] <command> [<args>]\n\n"
            "ibsync reconciles AWS EC2 Image Builder resources with desired state kept in git.\n\n"
            "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "\nRun 'ibsync <command> --help' for the options of a command.\n");
}

void ibs_cmd_print_help(FILE *out, const struct ibs_cmd_entry *entry)
{
    fprintf(out, "usage: ibsync %s %s\n\n%s\n", entry->name, entry->usage, entry->summary);
    if (entry->help && *entry->help)
        fprintf(out, "\n%s", entry->help);
}

int ibs_cmd_usage_error(const struct ibs_cmd_entry *entry, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "ibsync %s: ", entry->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: ibsync %s %s\n", entry->name, entry->usage);
    return IBS_EXIT_USAGE;
}

int ibs_cmd_report_error(const char *what)
{
    const struct ibs_error *e = ibs_error_last();
    if (what)
        fprintf(stderr, "ibsync: error: %s: %s\n", what, e->message[0] ? e->message : "failed");
    else
        fprintf(stderr, "ibsync: error: %s\n", e->message[0] ? e->message : "failed");
    return IBS_EXIT_FAILURE;
}

int ibs_cmd_bad_option(const struct ibs_cmd_entry *entry, char **argv, int opt)
{
    const char *arg = argv[optind - 1];

    if (opt == ':')
        return ibs_cmd_usage_error(entry, "option '%s' needs a value", arg);
    if (optopt > 0 && optopt < 128 && arg[0] == '-' && arg[1] != '-')
        return ibs_cmd_usage_error(entry, "unknown option '-%c'", optopt);
    return ibs_cmd_usage_error(entry, "unknown option '%s'", arg);
}

bool ibs_cmd_free_at_exit(void)
{
#ifdef IBS_FREE_AT_EXIT
    return true;
#else
    const char *v = getenv("IBSYNC_FREE_AT_EXIT");
    return v && strcmp(v, "1") == 0;
#endif
}

int ibs_cmd_wants_help(const struct ibs_cmd_entry *entry, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            ibs_cmd_print_help(stdout, entry);
            return 1;
        }
    }
    return 0;
}

int ibs_cmd_main(int argc, char **argv)
{
    const char *name;

    if (argc < 2) {
        print_main_help(stderr);
        return IBS_EXIT_USAGE;
    }
    name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2) {
            for (size_t i = 0; i < NCOMMANDS; i++)
                if (strcmp(commands[i]->name, argv[2]) == 0) {
                    ibs_cmd_print_help(stdout, commands[i]);
                    return IBS_EXIT_OK;
                }
            fprintf(stderr, "ibsync: '%s' is not an ibsync command. See 'ibsync --help'.\n",
                    argv[2]);
            return IBS_EXIT_USAGE;
        }
        print_main_help(stdout);
        return IBS_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
        name = "version";
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i]->name, name) == 0) {
            if (ibs_cmd_wants_help(commands[i], argc - 1, argv + 1))
                return IBS_EXIT_OK;
            return commands[i]->exec(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "ibsync: '%s' is not an ibsync command. See 'ibsync --help'.\n", name);
    return IBS_EXIT_USAGE;
}
