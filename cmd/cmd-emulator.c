/*
 * ibsync emulator: serves a local, persistent EC2 Image Builder account over
 * HTTP (providers/emulator/server.h) until SIGINT or SIGTERM.
 *
 * The signals are blocked in every thread before the server starts (its
 * threads inherit the mask) and collected here with sigwait(), so shutdown
 * runs in ordinary code: stop accepting, let requests in flight finish,
 * close the database.
 */
#include "cmd/cmd.h"

#include "providers/emulator/emulator.h"
#include "providers/emulator/faults.h"
#include "providers/emulator/server.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EMULATOR_USAGE "--data DIR [--listen HOST:PORT] [options]"

enum {
    OPT_LISTEN = 0x2001,
    OPT_DATA,
    OPT_REGION,
    OPT_ACCOUNT,
    OPT_CREDENTIALS,
    OPT_IMAGE_BUILD_MS,
    OPT_PORT_FILE,
    OPT_THREADS,
    OPT_MAX_BODY,
    OPT_REQUEST_LOG,
    OPT_LATENCY_MS,
    OPT_THROTTLE_RATE,
    OPT_ERROR_RATE,
    OPT_DROP_RATE,
    OPT_RATE_LIMIT,
    OPT_SEED,
};

struct emulator_args {
    struct ibs_emulator_options emu;
    struct ibs_server_options srv;
    const char *port_file;
    char *credentials; /* copy of --credentials, split at the first ':' */
    int seed_given;
};

/* A whole non-negative decimal integer no larger than `max`. */
static int parse_count(int64_t *out, const char *opt, const char *arg, int64_t max)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(arg, &end, 10);
    if (!*arg || *end || errno || v < 0 || v > max)
        return ibs_cmd_usage_error(&ibs_cmd_emulator_entry,
                                   "%s: '%s' is not a whole number between 0 and %lld", opt, arg,
                                   (long long)max);
    *out = v;
    return 0;
}

static int parse_number(double *out, const char *opt, const char *arg)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(arg, &end);
    if (!*arg || *end || errno || !isfinite(v))
        return ibs_cmd_usage_error(&ibs_cmd_emulator_entry, "%s: '%s' is not a number", opt, arg);
    *out = v;
    return 0;
}

static int parse_probability(double *out, const char *opt, const char *arg)
{
    int rc = parse_number(out, opt, arg);

    if (!rc && (*out < 0.0 || *out > 1.0))
        rc = ibs_cmd_usage_error(&ibs_cmd_emulator_entry,
                                 "%s: '%s' is not a probability between 0 and 1", opt, arg);
    return rc;
}

static int parse_option(struct emulator_args *a, int opt, const char *arg)
{
    int64_t n = 0;
    int rc = 0;

    switch (opt) {
    case OPT_LISTEN:
        a->srv.listen = arg;
        break;
    case OPT_DATA:
        a->emu.data_dir = arg;
        break;
    case OPT_REGION:
        a->emu.region = arg;
        break;
    case OPT_ACCOUNT:
        a->emu.account = arg;
        break;
    case OPT_CREDENTIALS: {
        char *colon;
        free(a->credentials);
        if (!(a->credentials = strdup(arg)))
            return ibs_cmd_report_error(NULL);
        colon = strchr(a->credentials, ':');
        if (!colon || colon == a->credentials || !colon[1])
            return ibs_cmd_usage_error(&ibs_cmd_emulator_entry,
                                       "--credentials: expected ACCESS_KEY_ID:SECRET_ACCESS_KEY");
        *colon = '\0';
        a->srv.access_key_id = a->credentials;
        a->srv.secret_access_key = colon + 1;
        break;
    }
    case OPT_IMAGE_BUILD_MS:
        rc = parse_count(&a->emu.image_build_ms, "--image-build-ms", arg, INT64_C(86400000));
        break;
    case OPT_PORT_FILE:
        a->port_file = arg;
        break;
    case OPT_THREADS:
        if (!(rc = parse_count(&n, "--threads", arg, IBS_SERVER_MAX_THREADS)) && n == 0)
            rc = ibs_cmd_usage_error(&ibs_cmd_emulator_entry, "--threads: at least 1");
        a->srv.threads = (unsigned)n;
        break;
    case OPT_MAX_BODY:
        if (!(rc = parse_count(&n, "--max-body", arg, INT64_C(1) << 30)) && n == 0)
            rc = ibs_cmd_usage_error(&ibs_cmd_emulator_entry, "--max-body: at least 1 byte");
        a->srv.max_body = (size_t)n;
        break;
    case OPT_REQUEST_LOG:
        a->srv.request_log = arg;
        break;
    case OPT_LATENCY_MS:
        rc = parse_count(&a->srv.faults.latency_ms, "--latency-ms", arg, IBS_FAULTS_MAX_LATENCY_MS);
        break;
    case OPT_THROTTLE_RATE:
        rc = parse_probability(&a->srv.faults.throttle_rate, "--throttle-rate", arg);
        break;
    case OPT_ERROR_RATE:
        rc = parse_probability(&a->srv.faults.error_rate, "--error-rate", arg);
        break;
    case OPT_DROP_RATE:
        rc = parse_probability(&a->srv.faults.drop_rate, "--drop-rate", arg);
        break;
    case OPT_RATE_LIMIT:
        rc = parse_number(&a->srv.faults.rate_limit, "--rate-limit", arg);
        if (!rc && (a->srv.faults.rate_limit < 0.0 ||
                    a->srv.faults.rate_limit > IBS_FAULTS_MAX_RATE_LIMIT))
            rc =
                ibs_cmd_usage_error(&ibs_cmd_emulator_entry,
                                    "--rate-limit: '%s' is not between 0 and %.0f calls per second",
                                    arg, IBS_FAULTS_MAX_RATE_LIMIT);
        break;
    case OPT_SEED:
        rc = parse_count(&a->srv.faults.seed, "--seed", arg, INT64_MAX);
        a->seed_given = 1;
        break;
    default:
        return -1;
    }
    return rc;
}

/* Writes "PORT\n" to `path` through a temporary file and rename(), so that a
 * reader polling for the file never sees it half-written. */
static int write_port_file(const char *path, unsigned port)
{
    struct ibs_buf tmp = IBS_BUF_INIT;
    FILE *f = NULL;
    int rc = 0;

    if (ibs_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid())) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if (!(f = fopen(tmp.ptr, "w")) || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0) {
        rc = ibs_error_set(IBS_EIO, "%s: cannot write the port file: %s", path, strerror(errno));
        f = NULL;
        unlink(tmp.ptr);
        goto done;
    }
    f = NULL;
    if (rename(tmp.ptr, path) != 0) {
        rc = ibs_error_set(IBS_EIO, "%s: cannot write the port file: %s", path, strerror(errno));
        unlink(tmp.ptr);
    }
done:
    ibs_buf_release(&tmp);
    return rc;
}

static int serve(struct emulator_args *a)
{
    struct ibs_emulator *emu = NULL;
    struct ibs_server *srv = NULL;
    sigset_t set;
    int sig = 0, rc = IBS_EXIT_OK;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Block before any thread exists: the server's threads inherit the mask
     * and the signals wait for sigwait() below. A peer closing a socket must
     * not kill the process either. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (ibs_emulator_open(&emu, &a->emu)) {
        rc = ibs_cmd_report_error(a->emu.data_dir);
        goto done;
    }
    if (ibs_server_start(&srv, emu, &a->srv)) {
        rc = ibs_cmd_report_error(NULL);
        goto done;
    }
    if (a->port_file && write_port_file(a->port_file, ibs_server_port(srv))) {
        rc = ibs_cmd_report_error(NULL);
        goto done;
    }
    fprintf(stderr,
            "ibsync emulator: data %s, region %s, account %s, signatures %s, fault seed %lld\n",
            a->emu.data_dir, ibs_emulator_region(emu), ibs_emulator_account(emu),
            a->srv.access_key_id ? "required" : "not checked", (long long)a->srv.faults.seed);
    printf("ibsync emulator listening on %s\n", ibs_server_url(srv));
    fflush(stdout);
    while (sigwait(&set, &sig) != 0)
        ;
    fprintf(stderr, "ibsync emulator: %s received, shutting down\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (ibs_server_stop(srv, IBS_SERVER_DEFAULT_GRACE_MS))
        rc = ibs_cmd_report_error(NULL);
    if (a->port_file)
        unlink(a->port_file);
done:
    ibs_server_free(srv);
    ibs_emulator_free(emu);
    return rc;
}

static int cmd_emulator(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"data", required_argument, NULL, OPT_DATA},
        {"region", required_argument, NULL, OPT_REGION},
        {"account", required_argument, NULL, OPT_ACCOUNT},
        {"credentials", required_argument, NULL, OPT_CREDENTIALS},
        {"image-build-ms", required_argument, NULL, OPT_IMAGE_BUILD_MS},
        {"port-file", required_argument, NULL, OPT_PORT_FILE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {"request-log", required_argument, NULL, OPT_REQUEST_LOG},
        {"latency-ms", required_argument, NULL, OPT_LATENCY_MS},
        {"throttle-rate", required_argument, NULL, OPT_THROTTLE_RATE},
        {"error-rate", required_argument, NULL, OPT_ERROR_RATE},
        {"drop-rate", required_argument, NULL, OPT_DROP_RATE},
        {"rate-limit", required_argument, NULL, OPT_RATE_LIMIT},
        {"seed", required_argument, NULL, OPT_SEED},
        {NULL, 0, NULL, 0},
    };
    struct emulator_args a;
    int opt, rc = IBS_EXIT_OK;

    memset(&a, 0, sizeof(a));
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+:", longopts, NULL)) != -1) {
        int r = parse_option(&a, opt, optarg);
        if (r < 0) {
            rc = ibs_cmd_bad_option(&ibs_cmd_emulator_entry, argv, opt);
            goto done;
        }
        if (r) {
            rc = r;
            goto done;
        }
    }
    if (optind < argc) {
        rc = ibs_cmd_usage_error(&ibs_cmd_emulator_entry, "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    if (!a.emu.data_dir || !*a.emu.data_dir) {
        rc = ibs_cmd_usage_error(&ibs_cmd_emulator_entry, "--data DIR is required");
        goto done;
    }
    if (ibs_faults_check(&a.srv.faults)) {
        rc = ibs_cmd_usage_error(&ibs_cmd_emulator_entry, "%s", ibs_error_last()->message);
        goto done;
    }
    if (!a.seed_given)
        a.srv.faults.seed =
            (int64_t)(((uint64_t)time(NULL) << 16 ^ (uint64_t)getpid()) & (uint64_t)INT64_MAX);
    rc = serve(&a);
done:
    free(a.credentials);
    return rc;
}

const struct ibs_cmd_entry ibs_cmd_emulator_entry = {
    .name = "emulator",
    .usage = EMULATOR_USAGE,
    .summary = "Serve a local EC2 Image Builder API (REST-JSON, SigV4) for SDKs and tests",
    .help =
        "Runs until SIGINT or SIGTERM, then lets requests in flight finish and closes the\n"
        "database. Prints \"ibsync emulator listening on http://HOST:PORT\" on stdout when ready.\n"
        "\n"
        "Options:\n"
        "  --data DIR             directory of the emulated account's database (required;\n"
        "                         created if missing, reused across restarts)\n"
        "  --listen HOST:PORT     address to listen on (default 127.0.0.1:0); port 0 picks a\n"
        "                         free port; [IPV6]:PORT for IPv6\n"
        "  --port-file FILE       write the port to FILE once listening (removed on exit)\n"
        "  --region REGION        region of the account (default: the database's, else\n"
        "                         us-east-1)\n"
        "  --account ID           12-digit account id (default: the database's, else\n"
        "                         123456789012)\n"
        "  --credentials AKID:SECRET\n"
        "                         require every API request to be SigV4-signed with this key\n"
        "                         (service imagebuilder, the region above); without it,\n"
        "                         requests are accepted signed with anything or unsigned\n"
        "  --image-build-ms N     milliseconds an image stays BUILDING (default 0)\n"
        "  --threads N            worker threads (default 4)\n"
        "  --max-body BYTES       largest request body; larger ones get 413 (default 16 MiB)\n"
        "  --request-log FILE     append one JSON line per API request: time, method, path,\n"
        "                         operation, status, latency_ms, fault, requestId\n"
        "\n"
        "Fault injection (also readable and changeable at run time: GET and POST\n"
        "/_ibsync/faults with a JSON object of latencyMs, throttleRate, errorRate, dropRate,\n"
        "rateLimit, seed; GET /_ibsync/health; neither is signature-checked):\n"
        "  --latency-ms N         add N ms to every API call\n"
        "  --throttle-rate P      answer this fraction of calls 429\n"
        "                         CallRateLimitExceededException, without executing them\n"
        "  --error-rate P         answer this fraction 500 ServiceException or 503\n"
        "                         ServiceUnavailableException, without executing them\n"
        "  --drop-rate P          execute this fraction (writes are committed), then close the\n"
        "                         connection without answering\n"
        "  --rate-limit N         allow N calls per second (token bucket); the excess gets 429\n"
        "  --seed S               seed of the fault PRNG: the same seed and order of calls\n"
        "                         give the same faults (default: from the clock)\n",
    .exec = cmd_emulator,
};
