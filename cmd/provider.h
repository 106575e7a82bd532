/*
 * Which account a command talks to: the embedded local emulator
 * (--local[=DIR]), or AWS (optionally at --endpoint-url, e.g. a running
 * `ibsync emulator`). Options shared by plan, apply, destroy, reconcile.
 */
#ifndef IBS_CMD_PROVIDER_H
#define IBS_CMD_PROVIDER_H

#include "providers/provider.h"

#include <getopt.h>
#include <stdbool.h>

struct ibs_cmd_provider_args {
    bool local;               /* --local */
    const char *local_dir;    /* --local=DIR */
    const char *endpoint;     /* --endpoint-url */
    const char *region;       /* --region */
    const char *profile;      /* --profile */
    const char *max_attempts; /* --max-attempts */
    bool debug;               /* --debug */
};

/* clang-format off */
#define IBS_CMD_PROVIDER_OPTIONS \
    {"local", optional_argument, NULL, 0x1101}, \
    {"endpoint-url", required_argument, NULL, 0x1102}, \
    {"region", required_argument, NULL, 0x1103}, \
    {"profile", required_argument, NULL, 0x1104}, \
    {"max-attempts", required_argument, NULL, 0x1105}, \
    {"debug", no_argument, NULL, 0x1106}
/* clang-format on */

#define IBS_CMD_PROVIDER_HELP                                                                      \
    "Account:\n"                                                                                   \
    "  --local[=DIR]        an emulated local account stored in DIR (default:\n"                   \
    "                       STATE_DIR/local/REGION); no AWS credentials needed\n"                  \
    "  --endpoint-url URL   the Image Builder endpoint (e.g. an `ibsync emulator`)\n"              \
    "  --region REGION      region (default: the Stack's spec.region, AWS_REGION,\n"               \
    "                       AWS_DEFAULT_REGION, the profile's region)\n"                           \
    "  --profile NAME       AWS shared config profile (default: AWS_PROFILE)\n"                    \
    "  --max-attempts N     attempts per API call (default: AWS_MAX_ATTEMPTS, else 3)\n"           \
    "  --debug              log every API request and response (secrets redacted)\n"

/* Handles a provider option; returns 1 if `opt` was one. */
int ibs_cmd_provider_option(struct ibs_cmd_provider_args *args, int opt, const char *arg);

/*
 * Opens the provider described by `args` into *out (caller frees with
 * ibs_provider_free). `stack_region` (may be NULL) is the Stack document's
 * region, used when --region is not given. `state_dir` locates the default
 * local account.
 */
int ibs_cmd_provider_open(struct ibs_provider **out, const struct ibs_cmd_provider_args *args,
                          const char *stack_region, const char *state_dir);

/* API calls and retries made through a provider opened here. */
struct ibs_cmd_provider_stats {
    unsigned long calls;
    unsigned long retries;
    unsigned long throttles;
};

/*
 * Wraps *p so that its calls are counted; ibs_cmd_provider_stats() reads
 * the counters. The wrapper owns the wrapped provider (ibs_provider_free
 * frees both).
 */
int ibs_cmd_provider_count(struct ibs_provider **p);
void ibs_cmd_provider_stats(struct ibs_cmd_provider_stats *out, const struct ibs_provider *p);

#endif
