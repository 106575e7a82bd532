/* Unit tests of providers/aws/sigv4: every case of the official SigV4 test
 * suite (tests/data/sigv4, header and query signing, plus verification of
 * each header-signed request), Image Builder requests, and the verifier's
 * rejections.
 * ibs-test-libs: ibs_providers ibs_api ibs_util */
#define _DEFAULT_SOURCE /* timegm(), an implementation independent of sigv4.c's */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "providers/aws/sigv4.h"
#include "util/buf.h"
#include "util/error.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define SUITE_DIR IBS_TEST_DATA "/sigv4"
#define SUITE_CASES 38
#define MAX_HEADERS 32

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define IB_HOST "imagebuilder.us-east-1.amazonaws.com"
#define IB_ARN_WIRE                                                                                \
    "arn%3Aaws%3Aimagebuilder%3Aus-east-1%3A123456789012%3Acomponent%2Fmy-component%2F1.0.0%2F1"
/* 2024-05-01T10:20:30Z, the time of tests/interop/cases.json. */
#define IB_TIME 1714558830
/* 2015-08-30T12:36:00Z, the time of the official suite. */
#define SUITE_TIME 1440938160

#define MSG_MISMATCH                                                                               \
    "The request signature we calculated does not match the signature you provided. Check your "   \
    "AWS Secret Access Key and signing method. Consult the service documentation for details."

/* ---- reading the suite's files ----------------------------------------- */

static char *read_file(const char *dir, const char *name, size_t *out_len)
{
    char path[1024];
    FILE *f;
    char *text = NULL;
    long size;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)size + 1)) != NULL) {
        if (fread(text, 1, (size_t)size, f) != (size_t)size) {
            free(text);
            text = NULL;
        } else {
            text[size] = '\0';
            if (out_len)
                *out_len = (size_t)size;
        }
    }
    fclose(f);
    return text;
}

static char *dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    assert_non_null(p);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* A request as written in request.txt / *-signed-request.txt. */
struct http_msg {
    char *method;
    char *path;
    char *query; /* NULL when the target has no '?' */
    char *target;
    char *names[MAX_HEADERS];
    char *values[MAX_HEADERS];
    struct ibs_sigv4_header headers[MAX_HEADERS];
    size_t nheaders;
    char *body;
    size_t body_len;
};

static void msg_release(struct http_msg *m)
{
    free(m->method);
    free(m->path);
    free(m->query);
    free(m->target);
    for (size_t i = 0; i < m->nheaders; i++) {
        free(m->names[i]);
        free(m->values[i]);
    }
    free(m->body);
    memset(m, 0, sizeof(*m));
}

/*
 * "METHOD target HTTP/1.1", then "Name:value" lines (a line starting with
 * blanks continues the previous value, joined with '\n'), then an empty line
 * and the body. The target may contain spaces ("/example space/").
 */
static void msg_parse(struct http_msg *m, const char *text, size_t len)
{
    const char *end = text + len, *eol, *sp, *http, *q, *p;

    memset(m, 0, sizeof(*m));
    eol = memchr(text, '\n', len);
    assert_non_null(eol);
    sp = memchr(text, ' ', (size_t)(eol - text));
    assert_non_null(sp);
    for (http = eol - 1; http > sp && strncmp(http, " HTTP/", 6) != 0; http--)
        ;
    assert_true(http > sp);
    m->method = dup_range(text, (size_t)(sp - text));
    m->target = dup_range(sp + 1, (size_t)(http - sp - 1));
    q = strchr(m->target, '?');
    m->path = dup_range(m->target, q ? (size_t)(q - m->target) : strlen(m->target));
    m->query = q ? dup_range(q + 1, strlen(q + 1)) : NULL;

    for (p = eol + 1; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n == 0) {
            p++;
            m->body = dup_range(p, (size_t)(end - p));
            m->body_len = (size_t)(end - p);
            break;
        }
        if ((*p == ' ' || *p == '\t') && m->nheaders) {
            char *prev = m->values[m->nheaders - 1];
            size_t plen = strlen(prev);
            char *joined = malloc(plen + 1 + n + 1);
            assert_non_null(joined);
            memcpy(joined, prev, plen);
            joined[plen] = '\n';
            memcpy(joined + plen + 1, p, n);
            joined[plen + 1 + n] = '\0';
            free(prev);
            m->values[m->nheaders - 1] = joined;
        } else {
            const char *colon = memchr(p, ':', n);
            assert_non_null(colon);
            assert_true(m->nheaders < MAX_HEADERS);
            m->names[m->nheaders] = dup_range(p, (size_t)(colon - p));
            m->values[m->nheaders] = dup_range(colon + 1, n - (size_t)(colon - p) - 1);
            m->nheaders++;
        }
        p += n + (nl ? 1 : 0);
    }
    for (size_t i = 0; i < m->nheaders; i++) {
        m->headers[i].name = m->names[i];
        m->headers[i].value = m->values[i];
    }
}

static const char *msg_header(const struct http_msg *m, const char *name)
{
    for (size_t i = 0; i < m->nheaders; i++)
        if (strcasecmp(m->names[i], name) == 0)
            return m->values[i];
    return NULL;
}

/*
 * The value of "key" in context.json as a new string: the text of a JSON
 * string without its quotes, or the bare token (true, 3600). The suite's
 * keys are unique across nesting levels and its strings have no escapes.
 */
static char *json_get(const char *json, const char *key)
{
    char pattern[64];
    const char *p, *end;

    snprintf(pattern, sizeof(pattern), "\"%s\"", key);
    p = strstr(json, pattern);
    if (!p)
        return NULL;
    p += strlen(pattern);
    p += strspn(p, " \t\r\n");
    if (*p++ != ':')
        return NULL;
    p += strspn(p, " \t\r\n");
    if (*p == '"') {
        end = strchr(++p, '"');
        return end ? dup_range(p, (size_t)(end - p)) : NULL;
    }
    end = p + strcspn(p, ",}\r\n \t");
    return dup_range(p, (size_t)(end - p));
}

static bool json_bool(const char *json, const char *key)
{
    char *v = json_get(json, key);
    bool b = v && strcmp(v, "true") == 0;
    free(v);
    return b;
}

static int64_t iso_to_unix(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_int_equal(sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/* ---- running the suite ------------------------------------------------- */

struct suite_case {
    const char *dir;
    const char *name;
    char *context;
    struct http_msg req;
    struct ibs_sigv4_request sreq;
    struct ibs_sigv4_credentials creds;
    struct ibs_sigv4_params params;
    char *akid, *secret, *token, *region, *service, *timestamp, *expires;
};

static void case_load(struct suite_case *c, const char *dir, const char *name)
{
    size_t len = 0;
    char *text;

    memset(c, 0, sizeof(*c));
    c->dir = dir;
    c->name = name;
    c->context = read_file(dir, "context.json", NULL);
    assert_non_null(c->context);
    text = read_file(dir, "request.txt", &len);
    assert_non_null(text);
    msg_parse(&c->req, text, len);
    free(text);

    c->akid = json_get(c->context, "access_key_id");
    c->secret = json_get(c->context, "secret_access_key");
    c->token = json_get(c->context, "token");
    c->region = json_get(c->context, "region");
    c->service = json_get(c->context, "service");
    c->timestamp = json_get(c->context, "timestamp");
    c->expires = json_get(c->context, "expiration_in_seconds");
    assert_non_null(c->akid);
    assert_non_null(c->secret);
    assert_non_null(c->region);
    assert_non_null(c->service);
    assert_non_null(c->timestamp);
    assert_non_null(c->expires);

    c->sreq.method = c->req.method;
    c->sreq.path = c->req.path;
    c->sreq.query = c->req.query;
    c->sreq.headers = c->req.headers;
    c->sreq.nheaders = c->req.nheaders;
    c->sreq.payload = c->req.body;
    c->sreq.payload_len = c->req.body_len;
    c->creds.access_key_id = c->akid;
    c->creds.secret_access_key = c->secret;
    c->creds.session_token = c->token;
    c->params.region = c->region;
    c->params.service = c->service;
    c->params.time = iso_to_unix(c->timestamp);
    c->params.normalize_path = json_bool(c->context, "normalize");
    /* The suite runs with the defaults of every service but S3. */
    c->params.double_encode_path = true;
    c->params.content_sha256_header = json_bool(c->context, "sign_body");
    c->params.omit_session_token = json_bool(c->context, "omit_session_token");
}

static void case_release(struct suite_case *c)
{
    msg_release(&c->req);
    free(c->context);
    free(c->akid);
    free(c->secret);
    free(c->token);
    free(c->region);
    free(c->service);
    free(c->timestamp);
    free(c->expires);
}

/* Compares `got` with the content of `file`; prints a diff-like report. */
static int expect_file(const struct suite_case *c, const char *file, const char *got)
{
    char *want = read_file(c->dir, file, NULL);
    int bad = !want || !got || strcmp(want, got) != 0;
    if (bad)
        print_error("%s/%s differs\n--- expected\n%s\n--- got\n%s\n---\n", c->name, file,
                    want ? want : "(missing)", got ? got : "(null)");
    free(want);
    return bad;
}

/* The headers of the signed request must be the request's plus ours, no more. */
static int expect_signed_headers(const struct suite_case *c, const struct http_msg *signed_msg,
                                 const struct ibs_sigv4_result *res)
{
    size_t expected = c->req.nheaders + res->nheaders;
    int bad = 0;

    for (size_t i = 0; i < signed_msg->nheaders; i++) {
        bool found = false;
        for (size_t j = 0; j < c->req.nheaders && !found; j++)
            found = strcmp(signed_msg->names[i], c->req.names[j]) == 0 &&
                    strcmp(signed_msg->values[i], c->req.values[j]) == 0;
        for (size_t j = 0; j < res->nheaders && !found; j++)
            found = strcasecmp(signed_msg->names[i], res->headers[j].name) == 0 &&
                    strcmp(signed_msg->values[i], res->headers[j].value) == 0;
        if (!found) {
            print_error("%s: signed request header %s:%s not produced\n", c->name,
                        signed_msg->names[i], signed_msg->values[i]);
            bad = 1;
        }
    }
    if (signed_msg->nheaders != expected) {
        print_error("%s: signed request has %zu headers, expected %zu\n", c->name,
                    signed_msg->nheaders, expected);
        bad = 1;
    }
    return bad;
}

static int get_suite_secret(struct ibs_buf *out, const char *akid, void *ctx)
{
    if (strcmp(akid, AKID) != 0)
        return IBS_ENOTFOUND;
    return ibs_buf_puts(out, ctx);
}

static int run_header_case(const struct suite_case *c)
{
    struct ibs_sigv4_result res;
    struct ibs_sigv4_verdict verdict;
    struct ibs_sigv4_verifier verifier;
    struct http_msg signed_msg;
    struct ibs_sigv4_request received;
    const char *auth;
    char *text;
    size_t len = 0;
    int bad = 0;

    if (ibs_sigv4_sign(&res, &c->sreq, &c->creds, &c->params)) {
        print_error("%s: sign failed: %s\n", c->name, ibs_error_last()->message);
        return 1;
    }
    bad |= expect_file(c, "header-canonical-request.txt", res.canonical_request);
    bad |= expect_file(c, "header-string-to-sign.txt", res.string_to_sign);
    bad |= expect_file(c, "header-signature.txt", res.signature);

    text = read_file(c->dir, "header-signed-request.txt", &len);
    assert_non_null(text);
    msg_parse(&signed_msg, text, len);
    free(text);
    auth = msg_header(&signed_msg, "Authorization");
    if (!auth || strcmp(auth, res.authorization) != 0) {
        print_error("%s: Authorization\n  want %s\n  got  %s\n", c->name, auth ? auth : "(none)",
                    res.authorization);
        bad = 1;
    }
    bad |= expect_signed_headers(c, &signed_msg, &res);

    /* What the server receives must verify, one second later. */
    received = c->sreq;
    received.headers = signed_msg.headers;
    received.nheaders = signed_msg.nheaders;
    memset(&verifier, 0, sizeof(verifier));
    verifier.region = c->region;
    verifier.service = c->service;
    verifier.now = c->params.time + 1;
    verifier.normalize_path = c->params.normalize_path;
    verifier.double_encode_path = true;
    verifier.get_secret = get_suite_secret;
    verifier.ctx = c->secret;
    if (ibs_sigv4_verify(&verdict, &received, &verifier) != 0) {
        print_error("%s: verify rejected the signed request: %s (%s)\n", c->name,
                    ibs_error_last()->message, verdict.aws_code);
        bad = 1;
    }
    msg_release(&signed_msg);
    ibs_sigv4_result_release(&res);
    return bad;
}

static int run_query_case(const struct suite_case *c)
{
    struct ibs_sigv4_result res;
    struct http_msg signed_msg;
    struct ibs_buf target = IBS_BUF_INIT;
    char *text;
    size_t len = 0;
    int bad = 0;

    if (ibs_sigv4_presign(&res, &c->sreq, &c->creds, &c->params, atoll(c->expires))) {
        print_error("%s: presign failed: %s\n", c->name, ibs_error_last()->message);
        return 1;
    }
    bad |= expect_file(c, "query-canonical-request.txt", res.canonical_request);
    bad |= expect_file(c, "query-string-to-sign.txt", res.string_to_sign);
    bad |= expect_file(c, "query-signature.txt", res.signature);

    text = read_file(c->dir, "query-signed-request.txt", &len);
    assert_non_null(text);
    msg_parse(&signed_msg, text, len);
    free(text);
    ibs_buf_printf(&target, "%s?%s", c->req.path, res.query);
    assert_int_equal(ibs_buf_oom(&target), 0);
    if (strcmp(signed_msg.target, target.ptr) != 0) {
        print_error("%s: presigned target\n  want %s\n  got  %s\n", c->name, signed_msg.target,
                    target.ptr);
        bad = 1;
    }
    if (res.authorization || res.nheaders || signed_msg.nheaders != c->req.nheaders) {
        print_error("%s: presigning must not add headers\n", c->name);
        bad = 1;
    }
    ibs_buf_release(&target);
    msg_release(&signed_msg);
    ibs_sigv4_result_release(&res);
    return bad;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_official_suite(void **state)
{
    DIR *d = opendir(SUITE_DIR);
    struct dirent *e;
    char *names[128] = {0};
    size_t n = 0, failed = 0;

    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[1024];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", SUITE_DIR, e->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        assert_true(n < sizeof(names) / sizeof(names[0]));
        names[n] = strdup(e->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), name_cmp);

    for (size_t i = 0; i < n; i++) {
        char dir[1024];
        struct suite_case c;
        int bad;
        snprintf(dir, sizeof(dir), "%s/%s", SUITE_DIR, names[i]);
        case_load(&c, dir, names[i]);
        bad = run_header_case(&c);
        bad |= run_query_case(&c);
        if (bad) {
            print_error("FAILED %s\n", names[i]);
            failed++;
        }
        case_release(&c);
        free(names[i]);
    }
    print_message("SigV4 suite: %zu cases, %zu failed\n", n, failed);
    assert_int_equal(failed, 0);
    assert_true(n >= SUITE_CASES);
}

/* ---- Image Builder requests --------------------------------------------- */

static const struct ibs_sigv4_credentials ib_creds = {AKID, SECRET, NULL};

static struct ibs_sigv4_params ib_params(void)
{
    struct ibs_sigv4_params p;
    memset(&p, 0, sizeof(p));
    p.region = "us-east-1";
    p.service = "imagebuilder";
    p.time = IB_TIME;
    p.normalize_path = true;
    p.double_encode_path = true;
    return p;
}

static void test_tag_resource_double_encodes_arn_path(void **state)
{
    static const char body[] = "{\"tags\":{\"team\":\"platform\"}}";
    const struct ibs_sigv4_header headers[] = {
        {"Host", IB_HOST},
        {"Content-Type", "application/json"},
    };
    struct ibs_sigv4_request req = {"POST", "/tags/" IB_ARN_WIRE, NULL, headers, 2,
                                    body,   sizeof(body) - 1};
    struct ibs_sigv4_params params = ib_params();
    struct ibs_sigv4_result res;

    (void)state;
    assert_int_equal(ibs_sigv4_sign(&res, &req, &ib_creds, &params), 0);
    assert_string_equal(res.canonical_request,
                        "POST\n"
                        "/tags/arn%253Aaws%253Aimagebuilder%253Aus-east-1%253A123456789012"
                        "%253Acomponent%252Fmy-component%252F1.0.0%252F1\n"
                        "\n"
                        "content-type:application/json\n"
                        "host:" IB_HOST "\n"
                        "x-amz-date:20240501T102030Z\n"
                        "\n"
                        "content-type;host;x-amz-date\n"
                        /* sha256sum of the body */
                        "e77254bfe53ed92a8e24417929f34a3704cec07c109c915c6589c65e1f2c0cfb");
    /* Recorded from @smithy/signature-v4 5.7.5 (tests/interop, case TagResource). */
    assert_string_equal(res.signature,
                        "e406b7efa9ffab2d81ad2f91ecc15523a2c4e3a33c643b9b65a43b19bb78ce03");
    assert_string_equal(
        res.authorization,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/imagebuilder/"
        "aws4_request, SignedHeaders=content-type;host;x-amz-date, "
        "Signature=e406b7efa9ffab2d81ad2f91ecc15523a2c4e3a33c643b9b65a43b19bb78ce03");
    assert_int_equal(res.nheaders, 2);
    assert_string_equal(res.headers[0].name, "X-Amz-Date");
    assert_string_equal(res.headers[0].value, "20240501T102030Z");
    assert_string_equal(res.headers[1].name, "Authorization");
    assert_ptr_equal(res.headers[1].value, res.authorization);
    ibs_sigv4_result_release(&res);

    /* Without double encoding (S3 style) the wire path is signed as is. */
    params.double_encode_path = false;
    assert_int_equal(ibs_sigv4_sign(&res, &req, &ib_creds, &params), 0);
    assert_non_null(strstr(res.canonical_request, "\n/tags/" IB_ARN_WIRE "\n"));
    ibs_sigv4_result_release(&res);
}

static void test_get_component_arn_in_query(void **state)
{
    const struct ibs_sigv4_header headers[] = {{"Host", IB_HOST}};
    struct ibs_sigv4_request req = {
        "GET", "/GetComponent", "componentBuildVersionArn=" IB_ARN_WIRE, headers, 1, NULL, 0};
    struct ibs_sigv4_params params = ib_params();
    struct ibs_sigv4_result res;
    char *first;

    (void)state;
    assert_int_equal(ibs_sigv4_sign(&res, &req, &ib_creds, &params), 0);
    /* Query values are encoded once only (decoded first), unlike the path. */
    assert_string_equal(res.canonical_request,
                        "GET\n/GetComponent\ncomponentBuildVersionArn=" IB_ARN_WIRE "\n"
                        "host:" IB_HOST "\nx-amz-date:20240501T102030Z\n\nhost;x-amz-date\n"
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* Recorded from @smithy/signature-v4 5.7.5 (tests/interop, case GetComponent). */
    assert_string_equal(res.signature,
                        "7dc4f9ef86cefc602d92b6339ad058d162883c961b1474e8f9e4f5a6b4de24c1");
    first = strdup(res.signature);
    assert_non_null(first);
    ibs_sigv4_result_release(&res);

    /* The same ARN sent unencoded canonicalises to the same request. */
    req.query = "componentBuildVersionArn=arn:aws:imagebuilder:us-east-1:123456789012:component/"
                "my-component/1.0.0/1";
    assert_int_equal(ibs_sigv4_sign(&res, &req, &ib_creds, &params), 0);
    assert_string_equal(res.signature, first);
    ibs_sigv4_result_release(&res);
    free(first);
}

static void test_session_token_is_signed(void **state)
{
    const struct ibs_sigv4_header headers[] = {{"Host", IB_HOST}, {"User-Agent", "ibsync/0.1"}};
    struct ibs_sigv4_request req = {
        "GET", "/GetComponent", "componentBuildVersionArn=" IB_ARN_WIRE, headers, 2, NULL, 0};
    struct ibs_sigv4_credentials creds = {AKID, SECRET, "FwoGZXIvYXdzEXAMPLE+token/=="};
    struct ibs_sigv4_params params = ib_params();
    struct ibs_sigv4_result res;

    (void)state;
    assert_int_equal(ibs_sigv4_sign(&res, &req, &creds, &params), 0);
    /* User-Agent is never signed; the token is. */
    assert_string_equal(res.signed_headers, "host;x-amz-date;x-amz-security-token");
    assert_non_null(
        strstr(res.canonical_request, "\nx-amz-security-token:FwoGZXIvYXdzEXAMPLE+token/==\n"));
    assert_int_equal(res.nheaders, 3);
    assert_string_equal(res.headers[1].name, "X-Amz-Security-Token");
    assert_string_equal(res.headers[1].value, "FwoGZXIvYXdzEXAMPLE+token/==");
    assert_ptr_not_equal(res.headers[1].value, creds.session_token);
    ibs_sigv4_result_release(&res);

    /* omit_session_token: still sent, not signed. */
    params.omit_session_token = true;
    assert_int_equal(ibs_sigv4_sign(&res, &req, &creds, &params), 0);
    assert_string_equal(res.signed_headers, "host;x-amz-date");
    assert_int_equal(res.nheaders, 3);
    assert_string_equal(res.headers[1].name, "X-Amz-Security-Token");
    ibs_sigv4_result_release(&res);
}

static void test_canonical_query_rules(void **state)
{
    struct ibs_buf b = IBS_BUF_INIT;

    (void)state;
    /* Empty values are kept as "key=", a lone key gets '='. */
    assert_int_equal(ibs_sigv4_canonical_query(&b, "tagKeys=&flag"), 0);
    assert_string_equal(b.ptr, "flag=&tagKeys=");
    ibs_buf_clear(&b);
    /* Repeated keys sort by value; space and '+' are encoded, never swapped. */
    assert_int_equal(ibs_sigv4_canonical_query(&b, "tagKeys=team&tagKeys=cost%20center&a=1+2"), 0);
    assert_string_equal(b.ptr, "a=1%2B2&tagKeys=cost%20center&tagKeys=team");
    ibs_buf_clear(&b);
    /* Lower-case escapes become upper-case; a stray '%' is encoded; && skipped. */
    assert_int_equal(ibs_sigv4_canonical_query(&b, "k=%3a%zz&&X-Amz-Signature=abc"), 0);
    assert_string_equal(b.ptr, "k=%3A%25zz");
    ibs_buf_clear(&b);
    assert_int_equal(ibs_sigv4_canonical_query(&b, NULL), 0);
    assert_string_equal(b.ptr, "");
    ibs_buf_release(&b);
}

static void test_uri_encode_and_canonical_uri(void **state)
{
    struct ibs_buf b = IBS_BUF_INIT;

    (void)state;
    assert_int_equal(ibs_sigv4_uri_encode(&b, "a b/~*\xc3\xa9", 8, true), 0);
    assert_string_equal(b.ptr, "a%20b%2F~%2A%C3%A9");
    ibs_buf_clear(&b);
    assert_int_equal(ibs_sigv4_uri_encode(&b, "a b/c", 5, false), 0);
    assert_string_equal(b.ptr, "a%20b/c");
    ibs_buf_clear(&b);
    assert_int_equal(ibs_sigv4_canonical_uri(&b, "/a/./b/../c//d%2F/", true, true), 0);
    assert_string_equal(b.ptr, "/a/c/d%252F/");
    ibs_buf_clear(&b);
    assert_int_equal(ibs_sigv4_canonical_uri(&b, "/a/./b", false, false), 0);
    assert_string_equal(b.ptr, "/a/./b");
    ibs_buf_clear(&b);
    assert_int_equal(ibs_sigv4_canonical_uri(&b, "/..", true, true), 0);
    assert_string_equal(b.ptr, "/");
    ibs_buf_release(&b);
}

static void test_dates(void **state)
{
    char s[17];
    int64_t t = 0;

    (void)state;
    assert_int_equal(ibs_sigv4_format_date(s, IB_TIME), 0);
    assert_string_equal(s, "20240501T102030Z");
    assert_int_equal(ibs_sigv4_format_date(s, 951782400), 0); /* leap day 2000 */
    assert_string_equal(s, "20000229T000000Z");
    assert_int_equal(ibs_sigv4_format_date(s, -1), 0);
    assert_string_equal(s, "19691231T235959Z");
    assert_int_equal(ibs_sigv4_parse_date(&t, "20150830T123600Z"), 0);
    assert_int_equal(t, SUITE_TIME);
    assert_int_equal(ibs_sigv4_parse_date(&t, "20240229T000000Z"), 0);
    assert_int_equal(ibs_sigv4_parse_date(&t, "20230229T000000Z"), IBS_EINVALID);
    assert_int_equal(ibs_sigv4_parse_date(&t, "20151330T123600Z"), IBS_EINVALID);
    assert_int_equal(ibs_sigv4_parse_date(&t, "2015-08-30T12:36"), IBS_EINVALID);
    assert_int_equal(ibs_sigv4_parse_date(&t, "20150830T123600"), IBS_EINVALID);
    assert_int_equal(ibs_sigv4_format_date(s, INT64_MAX), IBS_EINVALID);
}

static void test_sign_rejects_bad_input(void **state)
{
    const struct ibs_sigv4_header no_host[] = {{"Content-Type", "application/json"}};
    const struct ibs_sigv4_header with_auth[] = {{"Host", IB_HOST}, {"authorization", "x"}};
    const struct ibs_sigv4_header with_date[] = {{"Host", IB_HOST}, {"X-Amz-Date", "x"}};
    struct ibs_sigv4_request req = {"GET", "/", NULL, no_host, 1, NULL, 0};
    struct ibs_sigv4_params params = ib_params();
    struct ibs_sigv4_credentials empty = {AKID, "", NULL};
    struct ibs_sigv4_result res;

    (void)state;
    assert_int_equal(ibs_sigv4_sign(&res, &req, &ib_creds, &params), IBS_EINVALID);
    assert_null(res.authorization);
    req.headers = with_auth;
    req.nheaders = 2;
    assert_int_equal(ibs_sigv4_sign(&res, &req, &ib_creds, &params), IBS_EINVALID);
    req.headers = with_date;
    assert_int_equal(ibs_sigv4_sign(&res, &req, &ib_creds, &params), IBS_EINVALID);
    req.headers = with_auth;
    req.nheaders = 1;
    assert_int_equal(ibs_sigv4_sign(&res, &req, &empty, &params), IBS_EINVALID);
    params.region = "us-east-1/x";
    assert_int_equal(ibs_sigv4_sign(&res, &req, &ib_creds, &params), IBS_EINVALID);
    params = ib_params();
    assert_int_equal(ibs_sigv4_presign(&res, &req, &ib_creds, &params, 0), IBS_EINVALID);
    assert_int_equal(ibs_sigv4_presign(&res, &req, &ib_creds, &params, IBS_SIGV4_MAX_EXPIRES + 1),
                     IBS_EINVALID);
    assert_int_equal(ibs_sigv4_presign(&res, &req, &ib_creds, &params, 60), 0);
    assert_non_null(strstr(res.query, "X-Amz-Expires=60&X-Amz-Signature="));
    ibs_sigv4_result_release(&res);
    ibs_sigv4_result_release(&res);
    assert_null(strstr(ibs_error_last()->message, SECRET));
}

/* ---- verification ------------------------------------------------------ */

static const char ib_body[] = "{\"name\":\"my-component\",\"semanticVersion\":\"1.0.0\"}";

/* A signed CreateComponent request as the emulator receives it. */
struct received {
    struct ibs_sigv4_header headers[8];
    struct ibs_sigv4_request req;
    struct ibs_sigv4_result res;
};

static void make_received(struct received *r, bool content_sha256)
{
    struct ibs_sigv4_params params = ib_params();
    const struct ibs_sigv4_header base[] = {
        {"Host", IB_HOST},
        {"Content-Type", "application/json"},
        {"User-Agent", "ibsync/0.1"},
    };

    memset(r, 0, sizeof(*r));
    params.time = SUITE_TIME;
    params.content_sha256_header = content_sha256;
    r->req.method = "PUT";
    r->req.path = "/CreateComponent";
    r->req.headers = base;
    r->req.nheaders = 3;
    r->req.payload = ib_body;
    r->req.payload_len = sizeof(ib_body) - 1;
    assert_int_equal(ibs_sigv4_sign(&r->res, &r->req, &ib_creds, &params), 0);
    memcpy(r->headers, base, sizeof(base));
    for (size_t i = 0; i < r->res.nheaders; i++)
        r->headers[3 + i] = r->res.headers[i];
    r->req.headers = r->headers;
    r->req.nheaders = 3 + r->res.nheaders;
}

struct keyring {
    const char *akid;
    const char *secret;
};

static int get_ring_secret(struct ibs_buf *out, const char *akid, void *ctx)
{
    const struct keyring *ring = ctx;
    if (strcmp(akid, ring->akid) != 0)
        return IBS_ENOTFOUND;
    return ibs_buf_puts(out, ring->secret);
}

static struct keyring good_ring = {AKID, SECRET};

static struct ibs_sigv4_verifier ib_verifier(int64_t now)
{
    struct ibs_sigv4_verifier v;
    memset(&v, 0, sizeof(v));
    v.region = "us-east-1";
    v.service = "imagebuilder";
    v.now = now;
    v.normalize_path = true;
    v.double_encode_path = true;
    v.get_secret = get_ring_secret;
    v.ctx = &good_ring;
    return v;
}

static void expect_reject(const struct ibs_sigv4_request *req, const struct ibs_sigv4_verifier *v,
                          int status, const char *code, const char *message)
{
    struct ibs_sigv4_verdict verdict;
    assert_int_equal(ibs_sigv4_verify(&verdict, req, v), IBS_EAUTH);
    assert_int_equal(verdict.status, status);
    assert_string_equal(verdict.aws_code, code);
    assert_string_equal(ibs_error_last()->message, message);
}

static void test_verify_valid(void **state)
{
    struct received r;
    struct ibs_sigv4_verdict verdict;
    struct ibs_sigv4_verifier v = ib_verifier(SUITE_TIME + 299);

    (void)state;
    make_received(&r, false);
    assert_int_equal(ibs_sigv4_verify(&verdict, &r.req, &v), 0);
    assert_int_equal(verdict.status, 0);
    assert_null(verdict.aws_code);
    assert_string_equal(verdict.access_key_id, AKID);
    /* A path the client sent in another but equivalent form still verifies. */
    r.req.path = "/./CreateComponent";
    assert_int_equal(ibs_sigv4_verify(&verdict, &r.req, &v), 0);
    ibs_sigv4_result_release(&r.res);

    make_received(&r, true);
    assert_int_equal(ibs_sigv4_verify(&verdict, &r.req, &v), 0);
    ibs_sigv4_result_release(&r.res);
}

static void test_verify_wrong_secret(void **state)
{
    struct received r;
    struct keyring ring = {AKID, "not-the-secret"};
    struct ibs_sigv4_verifier v = ib_verifier(SUITE_TIME);

    (void)state;
    make_received(&r, false);
    v.ctx = &ring;
    expect_reject(&r.req, &v, 403, "InvalidSignatureException", MSG_MISMATCH);
    assert_null(strstr(ibs_error_last()->message, r.res.signature));
    ibs_sigv4_result_release(&r.res);
}

static void test_verify_tampered(void **state)
{
    static const char other[] = "{\"name\":\"my-component\",\"semanticVersion\":\"9.9.9\"}";
    struct received r;
    struct ibs_sigv4_verdict verdict;
    struct ibs_buf auth = IBS_BUF_INIT;
    struct ibs_sigv4_verifier v = ib_verifier(SUITE_TIME);

    (void)state;
    make_received(&r, false);
    r.req.payload = other;
    expect_reject(&r.req, &v, 403, "InvalidSignatureException", MSG_MISMATCH);
    r.req.payload = ib_body;
    r.req.query = "extra=1";
    expect_reject(&r.req, &v, 403, "InvalidSignatureException", MSG_MISMATCH);
    r.req.query = NULL;
    r.req.method = "POST";
    expect_reject(&r.req, &v, 403, "InvalidSignatureException", MSG_MISMATCH);
    r.req.method = "PUT";
    r.headers[1].value = "text/plain";
    expect_reject(&r.req, &v, 403, "InvalidSignatureException", MSG_MISMATCH);
    r.headers[1].value = "application/json";
    /* SignedHeaders naming a header that was not sent: the list is signed too. */
    assert_int_equal(ibs_buf_printf(&auth,
                                    "AWS4-HMAC-SHA256 Credential=" AKID
                                    "/20150830/us-east-1/imagebuilder/aws4_request, "
                                    "SignedHeaders=%s;x-not-sent, Signature=%s",
                                    r.res.signed_headers, r.res.signature),
                     0);
    r.headers[r.req.nheaders - 1].value = auth.ptr;
    expect_reject(&r.req, &v, 403, "InvalidSignatureException", MSG_MISMATCH);
    r.headers[r.req.nheaders - 1].value = r.res.authorization;
    assert_int_equal(ibs_sigv4_verify(&verdict, &r.req, &v), 0);
    ibs_buf_release(&auth);
    ibs_sigv4_result_release(&r.res);

    /* With x-amz-content-sha256 the body is checked against the header first. */
    make_received(&r, true);
    r.req.payload = other;
    expect_reject(&r.req, &v, 400, "XAmzContentSHA256Mismatch",
                  "The provided 'x-amz-content-sha256' header does not match what was computed.");
    ibs_sigv4_result_release(&r.res);
}

static void test_verify_skew(void **state)
{
    struct received r;
    struct ibs_sigv4_verifier v = ib_verifier(SUITE_TIME + 15 * 60);

    (void)state;
    make_received(&r, false);
    expect_reject(&r.req, &v, 403, "InvalidSignatureException",
                  "Signature expired: 20150830T123600Z is now earlier than 20150830T124600Z "
                  "(20150830T125100Z - 5 min.)");
    v.now = SUITE_TIME - 6 * 60;
    expect_reject(&r.req, &v, 403, "InvalidSignatureException",
                  "Signature not yet current: 20150830T123600Z is still later than "
                  "20150830T123500Z (20150830T123000Z + 5 min.)");
    ibs_sigv4_result_release(&r.res);
}

static void test_verify_scope(void **state)
{
    struct received r;
    struct ibs_sigv4_verifier v = ib_verifier(SUITE_TIME);

    (void)state;
    make_received(&r, false);
    v.region = "us-west-2";
    expect_reject(&r.req, &v, 403, "InvalidSignatureException",
                  "Credential should be scoped to a valid region.");
    v.region = "us-east-1";
    v.service = "ec2";
    expect_reject(&r.req, &v, 403, "InvalidSignatureException",
                  "Credential should be scoped to correct service: 'ec2'.");
    ibs_sigv4_result_release(&r.res);
}

static void test_verify_unknown_key(void **state)
{
    struct received r;
    struct keyring ring = {"AKIDOTHER", SECRET};
    struct ibs_sigv4_verifier v = ib_verifier(SUITE_TIME);

    (void)state;
    make_received(&r, false);
    v.ctx = &ring;
    expect_reject(&r.req, &v, 403, "UnrecognizedClientException",
                  "The security token included in the request is invalid.");
    ibs_sigv4_result_release(&r.res);
}

static void test_verify_missing_or_malformed_authorization(void **state)
{
    struct received r;
    struct ibs_sigv4_verifier v = ib_verifier(SUITE_TIME);
    struct ibs_sigv4_header *auth;

    (void)state;
    make_received(&r, false);
    auth = &r.headers[r.req.nheaders - 1];
    assert_string_equal(auth->name, "Authorization");
    r.req.nheaders--;
    expect_reject(&r.req, &v, 403, "MissingAuthenticationTokenException",
                  "Missing Authentication Token");
    r.req.nheaders++;
    auth->value = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/imagebuilder/"
                  "aws4_request, SignedHeaders=host;x-amz-date";
    expect_reject(&r.req, &v, 403, "IncompleteSignatureException",
                  "Authorization header requires 'Signature' parameter.");
    auth->value = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/imagebuilder/"
                  "aws4_request, SignedHeaders=content-type;x-amz-date, Signature=00";
    expect_reject(&r.req, &v, 403, "IncompleteSignatureException",
                  "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    auth->value = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/imagebuilder/"
                  "aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
    expect_reject(&r.req, &v, 403, "InvalidSignatureException",
                  "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                  "date from HTTP: '20150831' != '20150830', from '20150830T123600Z'.");
    auth->value = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1, "
                  "SignedHeaders=host;x-amz-date, Signature=00";
    expect_reject(&r.req, &v, 403, "IncompleteSignatureException",
                  "Credential should have exactly 5 slash-separated parts "
                  "(key/date/region/service/aws4_request), not 3.");
    ibs_sigv4_result_release(&r.res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_official_suite),
        cmocka_unit_test(test_tag_resource_double_encodes_arn_path),
        cmocka_unit_test(test_get_component_arn_in_query),
        cmocka_unit_test(test_session_token_is_signed),
        cmocka_unit_test(test_canonical_query_rules),
        cmocka_unit_test(test_uri_encode_and_canonical_uri),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_sign_rejects_bad_input),
        cmocka_unit_test(test_verify_valid),
        cmocka_unit_test(test_verify_wrong_secret),
        cmocka_unit_test(test_verify_tampered),
        cmocka_unit_test(test_verify_skew),
        cmocka_unit_test(test_verify_scope),
        cmocka_unit_test(test_verify_unknown_key),
        cmocka_unit_test(test_verify_missing_or_malformed_authorization),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
