/*
 * ibsync api OPERATION [JSON]: one raw Image Builder API call through the
 * selected account (--local, --endpoint-url or AWS), printing the JSON
 * answer. For scripts and tests that check an account independently of the
 * plan/apply machinery; List operations can follow every page (--all).
 */
#include "cmd/cmd.h"
#include "cmd/provider.h"

#include "api/api.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define API_USAGE "OPERATION [JSON] [--all] [--local[=DIR] | --endpoint-url URL] [options]"

static int cmd_api(int argc, char **argv)
{
    static const struct option longopts[] = {
        IBS_CMD_PROVIDER_OPTIONS,
        {"state-dir", required_argument, NULL, 's'},
        {"all", no_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    struct ibs_cmd_provider_args pa;
    struct ibs_provider *p = NULL;
    struct ibs_provider_error err;
    struct ibs_value *input = NULL, *answer = NULL;
    struct ibs_buf out = IBS_BUF_INIT;
    const char *state_dir = ".ibsync", *op, *json = "{}";
    int opt, all = 0, rc, exit_code = IBS_EXIT_OK;

    memset(&pa, 0, sizeof(pa));
    ibs_provider_error_init(&err);
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (ibs_cmd_provider_option(&pa, opt, optarg))
            continue;
        if (opt == 's')
            state_dir = optarg;
        else if (opt == 'a')
            all = 1;
        else
            return ibs_cmd_bad_option(&ibs_cmd_api_entry, argv, opt);
    }
    if (optind >= argc)
        return ibs_cmd_usage_error(&ibs_cmd_api_entry, "missing OPERATION");
    op = argv[optind++];
    if (optind < argc)
        json = argv[optind++];
    if (optind < argc)
        return ibs_cmd_usage_error(&ibs_cmd_api_entry, "unexpected argument '%s'", argv[optind]);
    if (!ibs_api_operation_find(op))
        return ibs_cmd_usage_error(&ibs_cmd_api_entry, "unknown operation '%s'", op);
    if (ibs_json_parse(&input, json, strlen(json))) {
        fprintf(stderr, "ibsync api: the request is not JSON: %s\n", ibs_error_last()->message);
        return IBS_EXIT_USAGE;
    }
    if ((rc = ibs_cmd_provider_open(&p, &pa, NULL, state_dir))) {
        exit_code = ibs_cmd_report_error("opening the account");
        goto done;
    }
    if (all)
        rc = ibs_provider_list_all(&answer, NULL, p, op, input);
    else
        rc = ibs_provider_call(&answer, &err, p, op, input);
    if (rc) {
        exit_code = ibs_cmd_report_error(op);
        goto done;
    }
    if (!(rc = ibs_json_write(&out, answer, IBS_JSON_PRETTY | IBS_JSON_SORTED)))
        printf("%s\n", out.ptr);
    else
        exit_code = ibs_cmd_report_error(NULL);
done:
    ibs_buf_release(&out);
    ibs_value_free(input);
    ibs_value_free(answer);
    ibs_provider_error_release(&err);
    ibs_provider_free(p);
    return exit_code;
}

const struct ibs_cmd_entry ibs_cmd_api_entry = {
    .name = "api",
    .usage = API_USAGE,
    .summary = "Call one Image Builder API operation and print its JSON answer",
    .help = "  OPERATION            an API operation, e.g. ListComponents, GetImagePipeline\n"
            "  JSON                 the request, e.g. '{\"owner\": \"Self\"}' (default {})\n"
            "  --all                follow nextToken and print every item of a List\n"
            "  --state-dir DIR      where the default local account lives (default "
            ".ibsync)\n" IBS_CMD_PROVIDER_HELP,
    .exec = cmd_api,
};
