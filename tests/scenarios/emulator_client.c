/*
 * A small HTTP client for the emulator's scenario tests and benchmark:
 * sends Image Builder REST-JSON requests with libcurl, optionally signed
 * with ibsync's SigV4 signer, and reports what came back.
 *
 * Usage: emulator_client --url URL [--sign AKID:SECRET] [--region R]
 *                        [--time-offset SECONDS] COMMAND ...
 *
 *   call METHOD TARGET [BODY] [--field NAME]
 *       One request. Line 1: "STATUS ERRORTYPE REQUESTID ELAPSED_MS" ("-"
 *       for a missing header; STATUS 0 when no answer came: connection
 *       closed or reset). Line 2: the body, or with --field the value of
 *       that top-level member (empty when absent).
 *   count OPERATION LIST_MEMBER
 *       Pages through a List operation (POST /OPERATION, maxResults 25)
 *       and prints "TOTAL UNIQUE PAGES": items, distinct "arn" values, calls.
 *   load --clients N --requests M --mode MODE [--arn ARN] [--prefix P] [--strict]
 *       N threads, each with one keep-alive connection, send M requests:
 *         mixed   per 5 requests: CreateInfrastructureConfiguration (new
 *                 name), the same create again with the same clientToken
 *                 (must give the same ARN), Get of it, ListInfrastructure-
 *                 Configurations, TagResource on it
 *         create  CreateComponent with a new name each time
 *         get     GetComponent of --arn
 *       Prints "requests=N ok=N failed=N seconds=S rps=R". With --strict,
 *       exits 1 when any request failed (anything but the expected 200).
 *
 * Exit status: 0 when the command ran (whatever the HTTP status), 1 on a
 * failure of the tool itself or a --strict load failure, 2 on bad usage.
 */
#include "providers/aws/sigv4.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"

#include <curl/curl.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_THREADS 64

static const char component_doc[] =
    "name: load\\nschemaVersion: 1.0\\nphases:\\n  - name: build\\n    steps:\\n"
    "      - name: s\\n        action: ExecuteBash\\n        inputs:\\n"
    "          commands: [\\\"true\\\"]\\n";

struct options {
    const char *url;
    char host[256];
    const char *akid;
    const char *secret;
    const char *region;
    long time_offset;
};

struct response {
    long status;
    char errtype[128];
    char reqid[64];
    struct ibs_buf body;
    long elapsed_ms;
    char curl_error[CURL_ERROR_SIZE];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct response *r = ud;
    return ibs_buf_put(&r->body, data, size * n) ? 0 : size * n;
}

/* Copies the value of header `name` from the header line `line` into `out`. */
static void header_value(char *out, size_t cap, const char *line, size_t len, const char *name)
{
    size_t nlen = strlen(name);

    if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return;
    line += nlen + 1;
    len -= nlen + 1;
    while (len && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
        len--;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, line, len);
    out[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct response *r = ud;
    header_value(r->errtype, sizeof(r->errtype), data, size * n, "x-amzn-errortype");
    header_value(r->reqid, sizeof(r->reqid), data, size * n, "x-amzn-requestid");
    return size * n;
}

/* Performs one request on `curl` (reused for keep-alive). Returns 0 when an
 * answer or a connection failure was recorded in *out, -1 on tool errors. */
static int request(CURL *curl, const struct options *o, const char *method, const char *target,
                   const char *body, struct response *out)
{
    struct ibs_sigv4_result sig;
    struct ibs_sigv4_header headers[2];
    struct ibs_sigv4_request sreq;
    struct ibs_sigv4_credentials creds;
    struct ibs_sigv4_params params;
    struct curl_slist *list = NULL;
    struct ibs_buf url = IBS_BUF_INIT, line = IBS_BUF_INIT, path = IBS_BUF_INIT;
    const char *q = strchr(target, '?');
    int64_t start;
    CURLcode cc;
    int rc = -1;

    memset(&sig, 0, sizeof(sig));
    ibs_buf_clear(&out->body);
    out->status = 0;
    strcpy(out->errtype, "-");
    strcpy(out->reqid, "-");
    out->curl_error[0] = '\0';
    ibs_buf_printf(&url, "%s%s", o->url, target);
    ibs_buf_put(&path, target, q ? (size_t)(q - target) : strlen(target));
    if (ibs_buf_oom(&url) || ibs_buf_oom(&path))
        goto done;
    list = curl_slist_append(list, "Content-Type: application/json");
    list = curl_slist_append(list, "Expect:");
    if (o->akid) {
        headers[0].name = "Host";
        headers[0].value = o->host;
        headers[1].name = "Content-Type";
        headers[1].value = "application/json";
        memset(&sreq, 0, sizeof(sreq));
        sreq.method = method;
        sreq.path = path.ptr;
        sreq.query = q ? q + 1 : NULL;
        sreq.headers = headers;
        sreq.nheaders = 2;
        sreq.payload = body;
        sreq.payload_len = body ? strlen(body) : 0;
        memset(&creds, 0, sizeof(creds));
        creds.access_key_id = o->akid;
        creds.secret_access_key = o->secret;
        memset(&params, 0, sizeof(params));
        params.region = o->region;
        params.service = "imagebuilder";
        params.time = (int64_t)time(NULL) + o->time_offset;
        params.normalize_path = true;
        params.double_encode_path = true;
        if (ibs_sigv4_sign(&sig, &sreq, &creds, &params)) {
            fprintf(stderr, "emulator_client: signing: %s\n", ibs_error_last()->message);
            goto done;
        }
        for (size_t i = 0; i < sig.nheaders; i++) {
            ibs_buf_clear(&line);
            ibs_buf_printf(&line, "%s: %s", sig.headers[i].name, sig.headers[i].value);
            list = curl_slist_append(list, line.ptr);
        }
    }
    curl_easy_setopt(curl, CURLOPT_URL, url.ptr);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, out->curl_error);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    start = now_ms();
    cc = curl_easy_perform(curl);
    out->elapsed_ms = (long)(now_ms() - start);
    if (cc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    else if (!out->curl_error[0])
        snprintf(out->curl_error, sizeof(out->curl_error), "%s", curl_easy_strerror(cc));
    rc = 0;
done:
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);
    ibs_sigv4_result_release(&sig);
    ibs_buf_release(&url);
    ibs_buf_release(&line);
    ibs_buf_release(&path);
    return rc;
}

/* The text of top-level member `name` of a JSON body (heap; "" when absent). */
static char *body_field(const struct response *r, const char *name)
{
    struct ibs_value *v = NULL, *m;
    char *out;

    if (ibs_json_parse(&v, r->body.ptr, r->body.size) == 0 && (m = ibs_value_map_get(v, name)) &&
        m->str)
        out = strdup(m->str);
    else
        out = strdup("");
    ibs_value_free(v);
    return out;
}

static int cmd_call(const struct options *o, int argc, char **argv)
{
    const char *field = NULL, *args[3] = {NULL, NULL, NULL};
    struct response r;
    CURL *curl;
    int nargs = 0, rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--field") == 0 && i + 1 < argc)
            field = argv[++i];
        else if (nargs < 3)
            args[nargs++] = argv[i];
        else
            return 2;
    }
    if (nargs < 2)
        return 2;
    memset(&r, 0, sizeof(r));
    ibs_buf_init(&r.body);
    if (!(curl = curl_easy_init()))
        return 1;
    rc = request(curl, o, args[0], args[1], args[2], &r);
    curl_easy_cleanup(curl);
    if (rc == 0) {
        printf("%ld %s %s %ld\n", r.status, r.errtype, r.reqid, r.elapsed_ms);
        if (field) {
            char *v = body_field(&r, field);
            printf("%s\n", v ? v : "");
            free(v);
        } else {
            printf("%s\n", r.body.ptr);
        }
        if (r.status == 0)
            fprintf(stderr, "emulator_client: no answer: %s\n", r.curl_error);
    }
    ibs_buf_release(&r.body);
    return rc ? 1 : 0;
}

static int cmd_count(const struct options *o, int argc, char **argv)
{
    struct response r;
    struct ibs_value *seen = ibs_value_new_map();
    struct ibs_buf target = IBS_BUF_INIT, body = IBS_BUF_INIT;
    char *token = NULL;
    long total = 0, pages = 0;
    CURL *curl = NULL;
    int rc = 1;

    if (argc != 2)
        return 2;
    memset(&r, 0, sizeof(r));
    ibs_buf_init(&r.body);
    ibs_buf_printf(&target, "/%s", argv[0]);
    if (!seen || !(curl = curl_easy_init()))
        goto done;
    do {
        struct ibs_value *page = NULL;
        const struct ibs_value *list;
        ibs_buf_clear(&body);
        if (token)
            ibs_buf_printf(&body, "{\"maxResults\": 25, \"nextToken\": \"%s\"}", token);
        else
            ibs_buf_puts(&body, "{\"maxResults\": 25}");
        if (request(curl, o, "POST", target.ptr, body.ptr, &r) || r.status != 200 ||
            ibs_json_parse(&page, r.body.ptr, r.body.size)) {
            fprintf(stderr, "emulator_client: %s failed: %ld %s\n", argv[0], r.status, r.body.ptr);
            goto done;
        }
        pages++;
        list = ibs_value_map_get(page, argv[1]);
        for (size_t i = 0; list && list->type == IBS_VALUE_LIST && i < list->count; i++) {
            const char *arn = ibs_value_map_get_str(list->u.items[i], "arn");
            total++;
            if (arn)
                ibs_value_map_set(seen, arn, ibs_value_new_null());
        }
        free(token);
        token = ibs_value_map_get_str(page, "nextToken")
                    ? strdup(ibs_value_map_get_str(page, "nextToken"))
                    : NULL;
        ibs_value_free(page);
    } while (token);
    printf("%ld %zu %ld\n", total, seen->count, pages);
    rc = 0;
done:
    if (curl)
        curl_easy_cleanup(curl);
    free(token);
    ibs_value_free(seen);
    ibs_buf_release(&target);
    ibs_buf_release(&body);
    ibs_buf_release(&r.body);
    return rc;
}

enum load_mode { MODE_MIXED, MODE_CREATE, MODE_GET };

struct load {
    const struct options *o;
    enum load_mode mode;
    int requests;
    const char *arn;
    const char *prefix;
    pthread_mutex_t lock;
    long ok;
    long failed;
    int reported;
};

struct worker {
    struct load *load;
    int id;
};

static void load_problem(struct load *l, const char *what, const struct response *r)
{
    pthread_mutex_lock(&l->lock);
    l->failed++;
    if (l->reported++ < 5)
        fprintf(stderr, "emulator_client: %s: status %ld %s %s%s\n", what, r->status, r->errtype,
                r->body.ptr, r->curl_error);
    pthread_mutex_unlock(&l->lock);
}

/* One step of the mixed workload; `arn` keeps the ARN created at step 0. */
static void mixed_step(struct load *l, CURL *curl, int id, int i, char *arn, size_t arn_cap,
                       struct response *r)
{
    struct ibs_buf body = IBS_BUF_INIT, target = IBS_BUF_INIT;
    int group = i / 5;
    char *got = NULL;
    bool good = false;

    switch (i % 5) {
    case 0:
    case 1:
        ibs_buf_printf(&body,
                       "{\"name\": \"%s-%d-%d\", \"instanceProfileName\": \"role\","
                       " \"clientToken\": \"%s-%d-%d\"}",
                       l->prefix, id, group, l->prefix, id, group);
        if (request(curl, l->o, "PUT", "/CreateInfrastructureConfiguration", body.ptr, r) == 0 &&
            r->status == 200) {
            got = body_field(r, "infrastructureConfigurationArn");
            if (i % 5 == 0 && got && *got) {
                snprintf(arn, arn_cap, "%s", got);
                good = true;
            } else {
                good = got && strcmp(got, arn) == 0;
            }
        }
        break;
    case 2:
        ibs_buf_puts(&target, "/GetInfrastructureConfiguration?infrastructureConfigurationArn=");
        ibs_sigv4_uri_encode(&target, arn, strlen(arn), true);
        good = request(curl, l->o, "GET", target.ptr, NULL, r) == 0 && r->status == 200;
        break;
    case 3:
        good = request(curl, l->o, "POST", "/ListInfrastructureConfigurations",
                       "{\"maxResults\": 25}", r) == 0 &&
               r->status == 200;
        break;
    default:
        ibs_buf_puts(&target, "/tags/");
        ibs_sigv4_uri_encode(&target, arn, strlen(arn), true);
        ibs_buf_printf(&body, "{\"tags\": {\"step\": \"%d\"}}", i);
        good = request(curl, l->o, "POST", target.ptr, body.ptr, r) == 0 && r->status == 200;
        break;
    }
    if (good) {
        pthread_mutex_lock(&l->lock);
        l->ok++;
        pthread_mutex_unlock(&l->lock);
    } else {
        load_problem(l, "mixed", r);
    }
    free(got);
    ibs_buf_release(&body);
    ibs_buf_release(&target);
}

static void *load_main(void *arg)
{
    struct worker *w = arg;
    struct load *l = w->load;
    struct ibs_buf body = IBS_BUF_INIT, target = IBS_BUF_INIT;
    struct response r;
    char arn[512] = "";
    CURL *curl = curl_easy_init();

    memset(&r, 0, sizeof(r));
    ibs_buf_init(&r.body);
    if (l->mode == MODE_GET) {
        ibs_buf_puts(&target, "/GetComponent?componentBuildVersionArn=");
        ibs_sigv4_uri_encode(&target, l->arn, strlen(l->arn), true);
    }
    for (int i = 0; curl && i < l->requests; i++) {
        bool good;
        if (l->mode == MODE_MIXED) {
            mixed_step(l, curl, w->id, i, arn, sizeof(arn), &r);
            continue;
        }
        if (l->mode == MODE_CREATE) {
            ibs_buf_clear(&body);
            ibs_buf_printf(&body,
                           "{\"name\": \"%s-%d-%d\", \"semanticVersion\": \"1.0.0\","
                           " \"platform\": \"Linux\", \"data\": \"%s\","
                           " \"clientToken\": \"%s-%d-%d\"}",
                           l->prefix, w->id, i, component_doc, l->prefix, w->id, i);
            good = request(curl, l->o, "PUT", "/CreateComponent", body.ptr, &r) == 0 &&
                   r.status == 200;
        } else {
            good = request(curl, l->o, "GET", target.ptr, NULL, &r) == 0 && r.status == 200;
        }
        if (good) {
            pthread_mutex_lock(&l->lock);
            l->ok++;
            pthread_mutex_unlock(&l->lock);
        } else {
            load_problem(l, l->mode == MODE_CREATE ? "create" : "get", &r);
        }
    }
    if (curl)
        curl_easy_cleanup(curl);
    ibs_buf_release(&r.body);
    ibs_buf_release(&body);
    ibs_buf_release(&target);
    return NULL;
}

static int cmd_load(const struct options *o, int argc, char **argv)
{
    struct load l;
    struct worker workers[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    int clients = 1, started = 0;
    bool strict = false;
    int64_t start;
    double seconds;

    memset(&l, 0, sizeof(l));
    l.o = o;
    l.requests = 100;
    l.prefix = "load";
    l.mode = MODE_MIXED;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--strict") == 0) {
            strict = true;
            continue;
        }
        if (!v)
            return 2;
        i++;
        if (strcmp(a, "--clients") == 0)
            clients = atoi(v);
        else if (strcmp(a, "--requests") == 0)
            l.requests = atoi(v);
        else if (strcmp(a, "--arn") == 0)
            l.arn = v;
        else if (strcmp(a, "--prefix") == 0)
            l.prefix = v;
        else if (strcmp(a, "--mode") == 0 && strcmp(v, "mixed") == 0)
            l.mode = MODE_MIXED;
        else if (strcmp(a, "--mode") == 0 && strcmp(v, "create") == 0)
            l.mode = MODE_CREATE;
        else if (strcmp(a, "--mode") == 0 && strcmp(v, "get") == 0)
            l.mode = MODE_GET;
        else
            return 2;
    }
    if (clients < 1 || clients > MAX_THREADS || l.requests < 1 || (l.mode == MODE_GET && !l.arn))
        return 2;
    pthread_mutex_init(&l.lock, NULL);
    start = now_ms();
    for (int i = 0; i < clients; i++) {
        workers[i].load = &l;
        workers[i].id = i;
        if (pthread_create(&threads[i], NULL, load_main, &workers[i]) != 0)
            break;
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    seconds = (double)(now_ms() - start) / 1000.0;
    pthread_mutex_destroy(&l.lock);
    printf("requests=%ld ok=%ld failed=%ld seconds=%.3f rps=%.0f\n", l.ok + l.failed, l.ok,
           l.failed, seconds, seconds > 0 ? (double)(l.ok + l.failed) / seconds : 0.0);
    if (started != clients)
        return 1;
    return strict && l.failed ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: emulator_client --url URL [--sign AKID:SECRET] [--region R]"
                    " [--time-offset S] (call|count|load) ...\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct options o;
    char *creds = NULL;
    int i, rc;

    memset(&o, 0, sizeof(o));
    o.region = "us-east-1";
    for (i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--url") == 0) {
            o.url = argv[i + 1];
        } else if (strcmp(argv[i], "--sign") == 0) {
            free(creds);
            creds = strdup(argv[i + 1]);
        } else if (strcmp(argv[i], "--region") == 0) {
            o.region = argv[i + 1];
        } else if (strcmp(argv[i], "--time-offset") == 0) {
            o.time_offset = atol(argv[i + 1]);
        } else {
            free(creds);
            return usage();
        }
    }
    if (!o.url || i >= argc || strncmp(o.url, "http://", 7) != 0) {
        free(creds);
        return usage();
    }
    snprintf(o.host, sizeof(o.host), "%.*s", (int)strcspn(o.url + 7, "/"), o.url + 7);
    if (creds) {
        char *colon = strchr(creds, ':');
        if (!colon) {
            free(creds);
            return usage();
        }
        *colon = '\0';
        o.akid = creds;
        o.secret = colon + 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(argv[i], "call") == 0)
        rc = cmd_call(&o, argc - i - 1, argv + i + 1);
    else if (strcmp(argv[i], "count") == 0)
        rc = cmd_count(&o, argc - i - 1, argv + i + 1);
    else if (strcmp(argv[i], "load") == 0)
        rc = cmd_load(&o, argc - i - 1, argv + i + 1);
    else
        rc = 2;
    if (rc == 2)
        usage();
    curl_global_cleanup();
    free(creds);
    return rc;
}
