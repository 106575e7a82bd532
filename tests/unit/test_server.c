/* Unit tests of the emulator's HTTP server (providers/emulator/server.c),
 * in-process, spoken to with libcurl.
 * ibs-test-libs: ibs_emulator ibs_providers ibs_api ibs_util PkgConfig::CURL */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "providers/aws/sigv4.h"
#include "providers/emulator/emulator.h"
#include "providers/emulator/faults.h"
#include "providers/emulator/server.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"

#include <curl/curl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define PREFIX "arn:aws:imagebuilder:us-east-1:123456789012:"
#define INFRA_BODY(name, token)                                                                    \
    "{\"name\": \"" name "\", \"instanceProfileName\": \"role\", \"clientToken\": \"" token "\"}"

struct fixture {
    char dir[64];
    char log[96];
    struct ibs_emulator *emu;
    struct ibs_server *srv;
};

struct reply {
    long status; /* 0: no answer */
    CURLcode cc;
    char errtype[128];
    char reqid[64];
    char ctype[64];
    struct ibs_buf body;
    long ms;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void remove_tree(struct fixture *f)
{
    static const char *const files[] = {"imagebuilder.db", "imagebuilder.db-wal",
                                        "imagebuilder.db-shm", "requests.log"};
    char path[160];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
        unlink(path);
    }
    rmdir(f->dir);
}

/* Starts a server on 127.0.0.1:0 with `opts` (listen and log filled in). */
static void start(struct fixture *f, struct ibs_server_options *opts)
{
    struct ibs_emulator_options eopts = {0};

    eopts.data_dir = f->dir;
    assert_int_equal(ibs_emulator_open(&f->emu, &eopts), 0);
    opts->listen = "127.0.0.1:0";
    opts->request_log = f->log;
    assert_int_equal(ibs_server_start(&f->srv, f->emu, opts), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/ibs-srv-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->log, sizeof(f->log), "%s/requests.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ibs_server_free(f->srv);
    ibs_emulator_free(f->emu);
    remove_tree(f);
    free(f);
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    return ibs_buf_put(&r->body, data, size * n) ? 0 : size * n;
}

static void copy_header(char *out, size_t cap, const char *line, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    if (len <= nlen + 1 || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return;
    line += nlen + 1;
    len -= nlen + 1;
    while (len && *line == ' ') {
        line++;
        len--;
    }
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    snprintf(out, cap, "%.*s", (int)len, line);
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    copy_header(r->errtype, sizeof(r->errtype), data, size * n, "x-amzn-errortype");
    copy_header(r->reqid, sizeof(r->reqid), data, size * n, "x-amzn-requestid");
    copy_header(r->ctype, sizeof(r->ctype), data, size * n, "content-type");
    return size * n;
}

/* Sends METHOD TARGET with BODY (may be NULL); `extra` headers may be NULL. */
static void http(struct reply *r, struct ibs_server *srv, const char *method, const char *target,
                 const char *body, struct curl_slist *extra)
{
    struct ibs_buf url = IBS_BUF_INIT;
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(extra, "Expect:");
    int64_t start = mono_ms();

    memset(r, 0, sizeof(*r));
    ibs_buf_init(&r->body);
    assert_non_null(curl);
    ibs_buf_printf(&url, "%s%s", ibs_server_url(srv), target);
    curl_easy_setopt(curl, CURLOPT_URL, url.ptr);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    r->cc = curl_easy_perform(curl);
    if (r->cc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    r->ms = (long)(mono_ms() - start);
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    ibs_buf_release(&url);
}

static void reply_release(struct reply *r)
{
    ibs_buf_release(&r->body);
}

/* Asserts an AWS error answer: status, x-amzn-ErrorType, {"message": ...}. */
static void assert_error(struct reply *r, long status, const char *code, const char *message)
{
    struct ibs_value *v = NULL;

    assert_int_equal(r->status, status);
    assert_string_equal(r->errtype, code);
    assert_string_equal(r->ctype, "application/json");
    assert_int_equal(strlen(r->reqid), 36);
    assert_int_equal(ibs_json_parse(&v, r->body.ptr, r->body.size), 0);
    assert_int_equal(v->count, 1);
    if (message)
        assert_string_equal(ibs_value_map_get_str(v, "message"), message);
    else
        assert_non_null(ibs_value_map_get_str(v, "message"));
    ibs_value_free(v);
}

/* The string member `name` of the reply's JSON body (heap copy). */
static char *field(struct reply *r, const char *name)
{
    struct ibs_value *v = NULL;
    char *out;

    assert_int_equal(ibs_json_parse(&v, r->body.ptr, r->body.size), 0);
    assert_non_null(ibs_value_map_get_str(v, name));
    out = strdup(ibs_value_map_get_str(v, name));
    ibs_value_free(v);
    return out;
}

static char *encode(const char *s)
{
    struct ibs_buf b = IBS_BUF_INIT;
    ibs_sigv4_uri_encode(&b, s, strlen(s), true);
    return ibs_buf_detach(&b);
}

static size_t count_infra(struct fixture *f)
{
    struct ibs_value *out = NULL;
    size_t n;
    assert_int_equal(
        ibs_emulator_call(f->emu, &out, NULL, "ListInfrastructureConfigurations", NULL), 0);
    n = ibs_value_map_get(out, "infrastructureConfigurationSummaryList")->count;
    ibs_value_free(out);
    return n;
}

static void test_start_port_and_health(void **state)
{
    struct fixture *f = *state;
    struct ibs_server_options opts = {0};
    struct reply r;
    char expected[64];

    start(f, &opts);
    assert_true(ibs_server_port(f->srv) > 0);
    snprintf(expected, sizeof(expected), "http://127.0.0.1:%u", ibs_server_port(f->srv));
    assert_string_equal(ibs_server_url(f->srv), expected);
    http(&r, f->srv, "GET", "/_ibsync/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    assert_int_equal(strlen(r.reqid), 36);
    assert_string_equal(r.body.ptr, "{\"status\":\"ok\",\"region\":\"us-east-1\",\"account\":"
                                    "\"123456789012\",\"inFlight\":0}");
    reply_release(&r);
    assert_int_equal(ibs_server_stop(f->srv, 1000), 0);
    assert_int_equal(ibs_server_stop(f->srv, 1000), 0);
    http(&r, f->srv, "GET", "/_ibsync/health", NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.cc, CURLE_COULDNT_CONNECT);
    reply_release(&r);
}

static void test_start_errors(void **state)
{
    struct fixture *f = *state;
    struct ibs_emulator_options eopts = {0};
    struct ibs_server_options opts = {0};
    struct ibs_server *srv = (struct ibs_server *)&opts;

    eopts.data_dir = f->dir;
    assert_int_equal(ibs_emulator_open(&f->emu, &eopts), 0);
    opts.listen = "127.0.0.1";
    assert_int_equal(ibs_server_start(&srv, f->emu, &opts), IBS_EINVALID);
    assert_null(srv);
    assert_string_equal(ibs_error_last()->message,
                        "listen address '127.0.0.1': expected HOST:PORT");
    opts.listen = "127.0.0.1:70000";
    assert_int_equal(ibs_server_start(&srv, f->emu, &opts), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "listen address '127.0.0.1:70000': '70000' is not a port (0-65535)");
    opts.listen = "[::1:80";
    assert_int_equal(ibs_server_start(&srv, f->emu, &opts), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "listen address '[::1:80': expected [IPV6]:PORT");
    opts.listen = NULL;
    opts.access_key_id = AKID;
    assert_int_equal(ibs_server_start(&srv, f->emu, &opts), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "server: credentials need both an access key id and a secret key");
    opts.access_key_id = NULL;
    opts.faults.drop_rate = 2;
    assert_int_equal(ibs_server_start(&srv, f->emu, &opts), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, "dropRate must be between 0 and 1, not 2");
    opts.faults.drop_rate = 0;
    opts.request_log = "/nonexistent-dir/requests.log";
    assert_int_equal(ibs_server_start(&srv, f->emu, &opts), IBS_EIO);
    assert_non_null(strstr(ibs_error_last()->message, "cannot open the request log"));
    ibs_server_free(NULL);
}

static void test_rest_json_binding(void **state)
{
    struct fixture *f = *state;
    struct ibs_server_options opts = {0};
    struct reply r;
    char target[512], *arn, *enc, *rid;

    start(f, &opts);
    http(&r, f->srv, "PUT", "/CreateInfrastructureConfiguration",
         "{\"name\": \"bound\", \"instanceProfileName\": \"role\", \"clientToken\": \"b1\","
         " \"tags\": {\"a\": \"1\", \"b\": \"2\", \"c\": \"3\"}}",
         NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    assert_string_equal(r.errtype, "");
    arn = field(&r, "infrastructureConfigurationArn");
    rid = field(&r, "requestId");
    /* The header and the body carry the same request id. */
    assert_string_equal(rid, r.reqid);
    assert_string_equal(arn, PREFIX "infrastructure-configuration/bound");
    reply_release(&r);
    enc = encode(arn);

    /* A query-string member. */
    snprintf(target, sizeof(target),
             "/GetInfrastructureConfiguration?infrastructureConfigurationArn=%s&ignored=1", enc);
    http(&r, f->srv, "GET", target, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.ptr, "\"name\":\"bound\""));
    reply_release(&r);

    /* The URI label: an ARN with '/' sent as %2F; a repeated query key. */
    snprintf(target, sizeof(target), "/tags/%s?tagKeys=a&tagKeys=c", enc);
    http(&r, f->srv, "DELETE", target, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.ptr, "{}");
    reply_release(&r);
    snprintf(target, sizeof(target), "/tags/%s", enc);
    http(&r, f->srv, "GET", target, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.ptr, "{\"tags\":{\"b\":\"2\"}}");
    reply_release(&r);

    /* Members bound elsewhere are not read from the body. */
    http(&r, f->srv, "POST", target, "{\"tags\": {\"d\": \"4\"}, \"resourceArn\": \"nope\"}", NULL);
    assert_int_equal(r.status, 200);
    reply_release(&r);
    http(&r, f->srv, "GET", target, NULL, NULL);
    assert_string_equal(r.body.ptr, "{\"tags\":{\"b\":\"2\",\"d\":\"4\"}}");
    reply_release(&r);

    /* A GET's body is no part of its input. */
    snprintf(target, sizeof(target),
             "/GetInfrastructureConfiguration?infrastructureConfigurationArn=%s", enc);
    http(&r, f->srv, "GET", target, "not even JSON", NULL);
    assert_int_equal(r.status, 200);
    reply_release(&r);

    /* An empty body is an empty request. */
    http(&r, f->srv, "POST", "/ListInfrastructureConfigurations", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.ptr, "\"infrastructureConfigurationSummaryList\":[{"));
    reply_release(&r);
    free(arn);
    free(enc);
    free(rid);
}

static void test_protocol_errors(void **state)
{
    struct fixture *f = *state;
    struct ibs_server_options opts = {0};
    struct reply r;
    char big[3000];

    opts.max_body = 2048;
    start(f, &opts);
    http(&r, f->srv, "GET",
         "/GetInfrastructureConfiguration?infrastructureConfigurationArn=" PREFIX
         "infrastructure-configuration/ghost",
         NULL, NULL);
    assert_error(&r, 404, "ResourceNotFoundException",
                 "The resource ARN '" PREFIX "infrastructure-configuration/ghost' does not exist.");
    reply_release(&r);

    http(&r, f->srv, "GET", "/DescribeEverything", NULL, NULL);
    assert_error(&r, 404, "UnknownOperationException",
                 "No Image Builder operation is bound to GET /DescribeEverything.");
    reply_release(&r);
    /* The method is part of the route. */
    http(&r, f->srv, "GET", "/CreateInfrastructureConfiguration", NULL, NULL);
    assert_error(&r, 404, "UnknownOperationException", NULL);
    reply_release(&r);

    http(&r, f->srv, "PUT", "/CreateInfrastructureConfiguration", "{\"name\": ", NULL);
    assert_error(&r, 400, "SerializationException", NULL);
    assert_non_null(strstr(r.body.ptr, "The request body is not valid JSON: "));
    reply_release(&r);

    http(&r, f->srv, "PUT", "/CreateInfrastructureConfiguration", "[1, 2]", NULL);
    assert_error(&r, 400, "InvalidRequestException", "The request body must be a JSON object.");
    reply_release(&r);

    http(&r, f->srv, "GET", "/GetComponent?componentBuildVersionArn=%zz", NULL, NULL);
    assert_error(&r, 400, "MalformedHttpRequestException",
                 "Malformed query string: invalid percent-escape '%zz'");
    reply_release(&r);
    http(&r, f->srv, "GET", "/tags/arn%00x", NULL, NULL);
    assert_error(&r, 400, "MalformedHttpRequestException",
                 "Malformed request path: the decoded text is not valid UTF-8 without NULs");
    reply_release(&r);
    http(&r, f->srv, "GET", "/tags/%C3%28", NULL, NULL);
    assert_error(&r, 400, "MalformedHttpRequestException", NULL);
    reply_release(&r);

    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    http(&r, f->srv, "POST", "/ListComponents", big, NULL);
    assert_error(&r, 413, "RequestEntityTooLargeException",
                 "The request body is larger than 2048 bytes.");
    reply_release(&r);
    /* Exactly the limit is fine. */
    big[2047 - 1] = '}';
    big[2047] = '\0';
    http(&r, f->srv, "POST", "/ListComponents", big, NULL);
    assert_int_equal(r.status, 200);
    reply_release(&r);

    {
        struct curl_slist *h = curl_slist_append(NULL, "Content-Encoding: gzip");
        http(&r, f->srv, "POST", "/ListComponents", "{}", h);
        assert_error(&r, 400, "MalformedHttpRequestException",
                     "The Content-Encoding of the request is not supported.");
        reply_release(&r);
    }
}

/* Signs and sends a request with credentials `akid`/`secret`. */
static void signed_http(struct reply *r, struct ibs_server *srv, const char *akid,
                        const char *secret, int64_t skew, const char *method, const char *target,
                        const char *body)
{
    struct ibs_sigv4_header headers[2];
    struct ibs_sigv4_request req = {0};
    struct ibs_sigv4_credentials creds = {0};
    struct ibs_sigv4_params params = {0};
    struct ibs_sigv4_result res;
    struct curl_slist *list = NULL;
    char host[64], path[512], line[1024];
    const char *q = strchr(target, '?');

    snprintf(host, sizeof(host), "127.0.0.1:%u", ibs_server_port(srv));
    snprintf(path, sizeof(path), "%.*s", (int)(q ? q - target : (long)strlen(target)), target);
    headers[0].name = "Host";
    headers[0].value = host;
    headers[1].name = "Content-Type";
    headers[1].value = "application/json";
    req.method = method;
    req.path = path;
    req.query = q ? q + 1 : NULL;
    req.headers = headers;
    req.nheaders = 2;
    req.payload = body;
    req.payload_len = body ? strlen(body) : 0;
    creds.access_key_id = akid;
    creds.secret_access_key = secret;
    params.region = "us-east-1";
    params.service = "imagebuilder";
    params.time = (int64_t)time(NULL) + skew;
    params.normalize_path = true;
    params.double_encode_path = true;
    assert_int_equal(ibs_sigv4_sign(&res, &req, &creds, &params), 0);
    list = curl_slist_append(list, "Content-Type: application/json");
    for (size_t i = 0; i < res.nheaders; i++) {
        snprintf(line, sizeof(line), "%s: %s", res.headers[i].name, res.headers[i].value);
        list = curl_slist_append(list, line);
    }
    http(r, srv, method, target, body, list);
    ibs_sigv4_result_release(&res);
}

static void test_signatures(void **state)
{
    struct fixture *f = *state;
    struct ibs_server_options opts = {0};
    struct reply r;
    char target[512], *arn, *enc;

    opts.access_key_id = AKID;
    opts.secret_access_key = SECRET;
    start(f, &opts);
    signed_http(&r, f->srv, AKID, SECRET, 0, "PUT", "/CreateInfrastructureConfiguration",
                INFRA_BODY("signed", "s1"));
    assert_int_equal(r.status, 200);
    arn = field(&r, "infrastructureConfigurationArn");
    reply_release(&r);
    enc = encode(arn);
    snprintf(target, sizeof(target), "/tags/%s?tagKeys=x&tagKeys=y", enc);
    signed_http(&r, f->srv, AKID, SECRET, 0, "DELETE", target, NULL);
    assert_int_equal(r.status, 200);
    reply_release(&r);

    signed_http(&r, f->srv, AKID, "wrong", 0, "POST", "/ListComponents", "{}");
    assert_error(&r, 403, "InvalidSignatureException", NULL);
    assert_non_null(strstr(r.body.ptr, "The request signature we calculated does not match"));
    reply_release(&r);
    signed_http(&r, f->srv, "AKIDOTHER", SECRET, 0, "POST", "/ListComponents", "{}");
    assert_error(&r, 403, "UnrecognizedClientException", NULL);
    reply_release(&r);
    signed_http(&r, f->srv, AKID, SECRET, -400, "POST", "/ListComponents", "{}");
    assert_error(&r, 403, "InvalidSignatureException", NULL);
    reply_release(&r);
    /* Within the 5 minutes of skew. */
    signed_http(&r, f->srv, AKID, SECRET, -200, "POST", "/ListComponents", "{}");
    assert_int_equal(r.status, 200);
    reply_release(&r);
    http(&r, f->srv, "POST", "/ListComponents", "{}", NULL);
    assert_error(&r, 403, "MissingAuthenticationTokenException", NULL);
    reply_release(&r);
    http(&r, f->srv, "POST", "/ListComponents", "{}",
         curl_slist_append(NULL, "Authorization: AWS4-HMAC-SHA256 garbage"));
    assert_error(&r, 403, "IncompleteSignatureException", NULL);
    reply_release(&r);
    /* Signatures are checked before routing. */
    http(&r, f->srv, "GET", "/Nothing", NULL, NULL);
    assert_error(&r, 403, "MissingAuthenticationTokenException", NULL);
    reply_release(&r);
    /* The admin endpoint is never checked. */
    http(&r, f->srv, "GET", "/_ibsync/faults", NULL, NULL);
    assert_int_equal(r.status, 200);
    reply_release(&r);
    free(arn);
    free(enc);
}

static void test_injected_faults_and_log(void **state)
{
    struct fixture *f = *state;
    struct ibs_server_options opts = {0};
    struct ibs_faults_config cfg = {0};
    struct reply r;
    char line[1024];
    FILE *log;
    int lines = 0;

    start(f, &opts);
    cfg.throttle_rate = 1;
    assert_int_equal(ibs_faults_set(ibs_server_faults(f->srv), &cfg), 0);
    http(&r, f->srv, "PUT", "/CreateInfrastructureConfiguration", INFRA_BODY("t", "t1"), NULL);
    assert_error(&r, 429, "CallRateLimitExceededException", NULL);
    reply_release(&r);
    cfg.throttle_rate = 0;
    cfg.error_rate = 1;
    assert_int_equal(ibs_faults_set(ibs_server_faults(f->srv), &cfg), 0);
    http(&r, f->srv, "PUT", "/CreateInfrastructureConfiguration", INFRA_BODY("t", "t1"), NULL);
    assert_true(r.status == 500 || r.status == 503);
    assert_string_equal(r.errtype,
                        r.status == 500 ? "ServiceException" : "ServiceUnavailableException");
    reply_release(&r);
    /* Refused calls were not executed. */
    assert_int_equal(count_infra(f), 0);

    cfg.error_rate = 0;
    cfg.drop_rate = 1;
    assert_int_equal(ibs_faults_set(ibs_server_faults(f->srv), &cfg), 0);
    http(&r, f->srv, "PUT", "/CreateInfrastructureConfiguration", INFRA_BODY("dropped", "d1"),
         NULL);
    assert_int_equal(r.status, 0);
    assert_true(r.cc == CURLE_GOT_NOTHING || r.cc == CURLE_RECV_ERROR);
    reply_release(&r);
    /* ... but the dropped one was. */
    assert_int_equal(count_infra(f), 1);

    log = fopen(f->log, "r");
    assert_non_null(log);
    while (fgets(line, sizeof(line), log)) {
        struct ibs_value *v = NULL;
        static const char *const faults[] = {"throttle", "error", "drop"};
        assert_int_equal(ibs_json_parse(&v, line, strlen(line)), 0);
        assert_string_equal(ibs_value_map_get_str(v, "operation"),
                            "CreateInfrastructureConfiguration");
        assert_string_equal(ibs_value_map_get_str(v, "method"), "PUT");
        assert_string_equal(ibs_value_map_get_str(v, "path"), "/CreateInfrastructureConfiguration");
        assert_string_equal(ibs_value_map_get_str(v, "fault"), faults[lines]);
        assert_int_equal(strlen(ibs_value_map_get_str(v, "requestId")), 36);
        assert_int_equal(strlen(ibs_value_map_get_str(v, "time")), 24);
        assert_non_null(ibs_value_map_get(v, "latency_ms"));
        if (lines == 0)
            assert_string_equal(ibs_value_map_get(v, "status")->str, "429");
        if (lines == 2)
            assert_string_equal(ibs_value_map_get(v, "status")->str, "200");
        ibs_value_free(v);
        lines++;
    }
    fclose(log);
    assert_int_equal(lines, 3);
}

struct slow_call {
    struct ibs_server *srv;
    struct reply r;
};

static void *slow_call_main(void *arg)
{
    struct slow_call *c = arg;
    http(&c->r, c->srv, "PUT", "/CreateInfrastructureConfiguration", INFRA_BODY("slow", "s1"),
         NULL);
    return NULL;
}

/* Latency suspends the call; the only worker thread keeps serving others. */
static void test_latency_does_not_block_a_worker(void **state)
{
    struct fixture *f = *state;
    struct ibs_server_options opts = {0};
    struct slow_call c;
    pthread_t t;
    struct reply r;

    opts.threads = 1;
    opts.faults.latency_ms = 600;
    start(f, &opts);
    c.srv = f->srv;
    assert_int_equal(pthread_create(&t, NULL, slow_call_main, &c), 0);
    sleep_ms(150);
    http(&r, f->srv, "GET", "/_ibsync/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(r.ms < 300);
    assert_non_null(strstr(r.body.ptr, "\"inFlight\":1"));
    reply_release(&r);
    pthread_join(t, NULL);
    assert_int_equal(c.r.status, 200);
    assert_true(c.r.ms >= 600);
    reply_release(&c.r);
}

/* Stopping lets a delayed call in flight finish, at once. */
static void test_stop_finishes_requests_in_flight(void **state)
{
    struct fixture *f = *state;
    struct ibs_server_options opts = {0};
    struct slow_call c;
    pthread_t t;
    int64_t start_ms;

    opts.faults.latency_ms = 5000;
    start(f, &opts);
    c.srv = f->srv;
    assert_int_equal(pthread_create(&t, NULL, slow_call_main, &c), 0);
    sleep_ms(200);
    start_ms = mono_ms();
    assert_int_equal(ibs_server_stop(f->srv, 3000), 0);
    assert_true(mono_ms() - start_ms < 2000);
    pthread_join(t, NULL);
    assert_int_equal(c.r.status, 200);
    assert_true(c.r.ms < 3000);
    reply_release(&c.r);
    assert_int_equal(count_infra(f), 1);
}

static void test_admin_endpoint(void **state)
{
    struct fixture *f = *state;
    struct ibs_server_options opts = {0};
    struct ibs_faults_config cfg;
    struct reply r;

    opts.faults.seed = 3;
    start(f, &opts);
    http(&r, f->srv, "POST", "/_ibsync/faults", "{\"errorRate\": 0.5, \"latencyMs\": 10}", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.ptr, "{\"latencyMs\":10,\"throttleRate\":0.0,\"errorRate\":0.5,"
                                    "\"dropRate\":0.0,\"rateLimit\":0.0,\"seed\":3}");
    reply_release(&r);
    ibs_faults_get(&cfg, ibs_server_faults(f->srv));
    assert_int_equal(cfg.latency_ms, 10);
    assert_true(cfg.error_rate == 0.5);

    http(&r, f->srv, "POST", "/_ibsync/faults", "{\"errorRate\": 5}", NULL);
    assert_error(&r, 400, "ValidationError", "errorRate must be between 0 and 1, not 5");
    reply_release(&r);
    http(&r, f->srv, "PUT", "/_ibsync/faults", "{\"errorRate\": 0}", NULL);
    assert_int_equal(r.status, 200);
    reply_release(&r);
    http(&r, f->srv, "DELETE", "/_ibsync/faults", NULL, NULL);
    assert_error(&r, 405, "MethodNotAllowed", NULL);
    reply_release(&r);
    http(&r, f->srv, "POST", "/_ibsync/health", "{}", NULL);
    assert_error(&r, 405, "MethodNotAllowed", NULL);
    reply_release(&r);
    http(&r, f->srv, "GET", "/_ibsync/other", NULL, NULL);
    assert_error(&r, 404, "UnknownOperationException", NULL);
    reply_release(&r);
    /* Admin calls are not API calls: the request log stays empty. */
    {
        FILE *log = fopen(f->log, "r");
        assert_non_null(log);
        assert_int_equal(fgetc(log), EOF);
        fclose(log);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_port_and_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_json_binding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signatures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injected_faults_and_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latency_does_not_block_a_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_finishes_requests_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_endpoint, setup, teardown),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
