/* Unit tests of providers/aws/client: request binding of CreateComponent,
 * GetComponent, TagResource, UntagResource and ListComponents (checked on
 * the wire by a loopback server that also verifies every SigV4 signature),
 * AWS error parsing from each source, the standard retry mode (backoff
 * delays with an injected random source and sleep, max attempts, the retry
 * quota, idempotency tokens, dropped connections and timeouts), the
 * adaptive retry mode (the rate limiter's CUBIC rate, token waits, one
 * bucket shared by threads, on a fake clock), endpoint resolution, parallel
 * callers, and the absence of secrets from logs and errors.
 * ibs-test-libs: ibs_testsrv ibs_providers ibs_api ibs_util Threads::Threads */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "providers/aws/client.h"
#include "providers/aws/credentials.h"
#include "providers/aws/sigv4.h"
#include "providers/provider.h"
#include "tests/support/testsrv.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"
#include "util/version.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ACCESS_KEY "AKIDEXAMPLE"
#define SECRET_KEY "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SESSION_TOKEN "IQoJb3JpZ2luX2VjEXAMPLE-SESSION-TOKEN/abc+def=="
#define COMPONENT_ARN "arn:aws:imagebuilder:us-east-1:123456789012:component/my-comp/1.0.0/1"
#define COMPONENT_ARN_ENCODED                                                                      \
    "arn%3Aaws%3Aimagebuilder%3Aus-east-1%3A123456789012%3Acomponent%2Fmy-comp%2F1.0.0%2F1"

/* ---- the fake Image Builder ------------------------------------------- */

struct step {
    int status;             /* 0: close the connection without answering */
    const char *error_type; /* x-amzn-errortype header, or NULL */
    const char *body;       /* NULL: "{}"; "%AUTH%" and "%TOKEN%" echo request headers */
    long delay_ms;
};

struct script {
    pthread_mutex_t mu;
    const struct step *steps; /* after the last step, the last one repeats */
    size_t nsteps;
    size_t next;
    size_t nverified, nrejected;
    char rejection[256]; /* the first verifier message */
};

static int test_secret(struct ibs_buf *out, const char *key, void *ctx)
{
    (void)ctx;
    if (strcmp(key, ACCESS_KEY) != 0)
        return IBS_ENOTFOUND;
    return ibs_buf_puts(out, SECRET_KEY);
}

/* What an AWS endpoint does first: check the signature of what arrived. */
static int verify_request(const struct ibs_testsrv_request *r, char *why, size_t whylen)
{
    struct ibs_sigv4_header h[64];
    struct ibs_sigv4_request req;
    struct ibs_sigv4_verifier v;
    struct ibs_sigv4_verdict verdict;
    size_t n = r->nheaders < 64 ? r->nheaders : 64;
    int rc;

    for (size_t i = 0; i < n; i++) {
        h[i].name = r->headers[i].name;
        h[i].value = r->headers[i].value;
    }
    memset(&req, 0, sizeof(req));
    req.method = r->method;
    req.path = r->path;
    req.query = r->query;
    req.headers = h;
    req.nheaders = n;
    req.payload = r->body;
    req.payload_len = r->body_len;
    memset(&v, 0, sizeof(v));
    v.region = "us-east-1";
    v.service = "imagebuilder";
    v.now = (int64_t)time(NULL);
    v.normalize_path = true;
    v.double_encode_path = true;
    v.get_secret = test_secret;
    rc = ibs_sigv4_verify(&verdict, &req, &v);
    if (rc)
        snprintf(why, whylen, "%s", ibs_error_last()->message);
    return rc;
}

static void replace_all(struct ibs_buf *out, const char *text, const char *pat, const char *with)
{
    const char *hit;
    while ((hit = strstr(text, pat))) {
        ibs_buf_put(out, text, (size_t)(hit - text));
        ibs_buf_puts(out, with ? with : "");
        text = hit + strlen(pat);
    }
    ibs_buf_puts(out, text);
}

static void scripted(void *ctx, const struct ibs_testsrv_request *req,
                     struct ibs_testsrv_response *resp)
{
    struct script *s = ctx;
    const struct step *st;
    char why[256] = "", id[32];
    int rc = verify_request(req, why, sizeof(why));

    pthread_mutex_lock(&s->mu);
    st = &s->steps[s->next < s->nsteps ? s->next : s->nsteps - 1];
    s->next++;
    if (rc == 0) {
        s->nverified++;
    } else if (s->nrejected++ == 0) {
        snprintf(s->rejection, sizeof(s->rejection), "%s", why);
    }
    pthread_mutex_unlock(&s->mu);

    resp->status = st->status;
    resp->delay_ms = st->delay_ms;
    snprintf(id, sizeof(id), "req-%u", req->index + 1);
    ibs_testsrv_response_header(resp, "x-amzn-RequestId", id);
    ibs_testsrv_response_header(resp, "Content-Type", "application/json");
    if (st->error_type)
        ibs_testsrv_response_header(resp, "x-amzn-ErrorType", st->error_type);
    if (st->body) {
        struct ibs_buf tmp = IBS_BUF_INIT;
        ibs_buf_clear(&resp->body);
        replace_all(&tmp, st->body, "%AUTH%", ibs_testsrv_request_header(req, "Authorization"));
        replace_all(&resp->body, tmp.ptr, "%TOKEN%",
                    ibs_testsrv_request_header(req, "X-Amz-Security-Token"));
        ibs_buf_release(&tmp);
    }
}

/* ---- the client side -------------------------------------------------- */

struct creds {
    const char *key, *secret, *token;
    unsigned calls;
};

static int static_credentials(void *ctx, struct ibs_aws_credentials_view *out)
{
    struct creds *c = ctx;
    __atomic_add_fetch(&c->calls, 1, __ATOMIC_SEQ_CST);
    out->access_key_id = c->key;
    out->secret_access_key = c->secret;
    out->session_token = c->token;
    return 0;
}

static int failing_credentials(void *ctx, struct ibs_aws_credentials_view *out)
{
    (void)ctx;
    (void)out;
    return ibs_error_set(IBS_EAUTH, "no credentials found: tried environment");
}

static double half(void *ctx)
{
    (void)ctx;
    return 0.5;
}

/* Sleeps are recorded and move a fake clock, nothing else: no test sleeps
 * for real, and timings are exact. */
#define CLOCK_START 1000.0

struct sleeps {
    pthread_mutex_t mu;
    long ms[64];
    size_t n;
    double now; /* the fake clock, seconds */
};

static void record_sleep(void *ctx, long ms)
{
    struct sleeps *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (s->n < 64)
        s->ms[s->n] = ms;
    s->n++;
    s->now += (double)ms / 1000;
    pthread_mutex_unlock(&s->mu);
}

static double fake_clock(void *ctx)
{
    struct sleeps *s = ctx;
    double now;
    pthread_mutex_lock(&s->mu);
    now = s->now;
    pthread_mutex_unlock(&s->mu);
    return now;
}

static void advance_clock(struct sleeps *s, double seconds)
{
    pthread_mutex_lock(&s->mu);
    s->now += seconds;
    pthread_mutex_unlock(&s->mu);
}

/* Environment from a NULL-terminated "NAME=value" list (the real one is
 * never consulted, so AWS_* variables of the machine cannot interfere). */
static const char *fake_env(void *ctx, const char *name)
{
    const char *const *vars = ctx;
    size_t n = strlen(name);
    for (size_t i = 0; vars && vars[i]; i++) {
        if (strncmp(vars[i], name, n) == 0 && vars[i][n] == '=')
            return vars[i] + n + 1;
    }
    return NULL;
}

struct log_capture {
    pthread_mutex_t mu;
    struct ibs_buf text;
    size_t lines;
};

static void capture_log(void *ctx, const char *line)
{
    struct log_capture *c = ctx;
    pthread_mutex_lock(&c->mu);
    ibs_buf_puts(&c->text, line);
    ibs_buf_putc(&c->text, '\n');
    c->lines++;
    pthread_mutex_unlock(&c->mu);
}

/* Everything one test needs: server, script, provider and recorders. */
struct fixture {
    struct script script;
    struct ibs_testsrv *srv;
    struct creds creds;
    struct sleeps sleeps;
    struct log_capture log;
    const char *const *env;
    struct ibs_aws_config cfg;
    struct ibs_provider *prov;
};

static const char *const no_env[] = {NULL};

static void fixture_start(struct fixture *f, const struct step *steps, size_t nsteps)
{
    struct ibs_testsrv_options o;

    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->script.mu, NULL);
    pthread_mutex_init(&f->sleeps.mu, NULL);
    pthread_mutex_init(&f->log.mu, NULL);
    ibs_buf_init(&f->log.text);
    f->script.steps = steps;
    f->script.nsteps = nsteps;
    memset(&o, 0, sizeof(o));
    o.handler = scripted;
    o.ctx = &f->script;
    assert_int_equal(ibs_testsrv_start(&f->srv, &o), 0);
    f->creds.key = ACCESS_KEY;
    f->creds.secret = SECRET_KEY;
    f->env = no_env;
    f->cfg.region = "us-east-1";
    f->cfg.endpoint_url = ibs_testsrv_url(f->srv);
    f->cfg.rand01 = half;
    f->cfg.sleep_ms = record_sleep;
    f->cfg.sleep_ctx = &f->sleeps;
    f->sleeps.now = CLOCK_START;
    f->cfg.clock = fake_clock;
    f->cfg.clock_ctx = &f->sleeps;
    f->cfg.get_credentials = static_credentials;
    f->cfg.credentials_ctx = &f->creds;
    f->cfg.http.log = capture_log;
    f->cfg.http.log_ctx = &f->log;
}

static void fixture_open(struct fixture *f)
{
    f->cfg.getenv = fake_env;
    f->cfg.env_ctx = (void *)f->env;
    assert_int_equal(ibs_aws_provider_new(&f->prov, &f->cfg), 0);
    assert_string_equal(f->prov->ops->name, "aws");
    assert_string_equal(f->prov->region, "us-east-1");
}

static void fixture_stop(struct fixture *f)
{
    ibs_provider_free(f->prov);
    ibs_testsrv_stop(f->srv);
    ibs_buf_release(&f->log.text);
    pthread_mutex_destroy(&f->script.mu);
    pthread_mutex_destroy(&f->sleeps.mu);
    pthread_mutex_destroy(&f->log.mu);
}

static const struct ibs_testsrv_request *sent(struct fixture *f, size_t i)
{
    const struct ibs_testsrv_request *r = ibs_testsrv_request_at(f->srv, i);
    assert_non_null(r);
    return r;
}

static struct ibs_value *json(const char *text)
{
    struct ibs_value *v = NULL;
    assert_int_equal(ibs_json_parse(&v, text, strlen(text)), 0);
    return v;
}

static int call(struct ibs_value **out, struct ibs_provider_error *err, struct fixture *f,
                const char *op, const char *input_json)
{
    struct ibs_value *in = input_json ? json(input_json) : NULL;
    int rc = ibs_provider_call(out, err, f->prov, op, in);
    ibs_value_free(in);
    return rc;
}

static void assert_uuid4(const char *s)
{
    assert_non_null(s);
    assert_int_equal(strlen(s), 36);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(s[i], '-');
        else
            assert_true(isxdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]));
    }
    assert_int_equal(s[14], '4');
    assert_non_null(strchr("89ab", s[19]));
}

static void assert_all_verified(struct fixture *f, size_t n)
{
    if (f->script.nrejected)
        fail_msg("signature rejected: %s", f->script.rejection);
    assert_int_equal(f->script.nverified, n);
    assert_int_equal(ibs_testsrv_nrequests(f->srv), n);
}

/* ---- binding ---------------------------------------------------------- */

static const struct step ok_step[] = {{200, NULL, NULL, 0}};

static void test_create_component_binding(void **state)
{
    static const struct step steps[] = {
        {200, NULL,
         "{\"requestId\":\"r1\",\"clientToken\":\"t\",\"componentBuildVersionArn\":\"" COMPONENT_ARN
         "\"}",
         0},
    };
    struct fixture f;
    struct ibs_value *out = NULL, *body;
    const struct ibs_testsrv_request *r;
    (void)state;

    fixture_start(&f, steps, 1);
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "CreateComponent",
                          "{\"name\":\"my-comp\",\"semanticVersion\":\"1.0.0\","
                          "\"platform\":\"Linux\",\"data\":\"name: x\\n\","
                          "\"tags\":{\"team\":\"infra\"}}"),
                     0);
    assert_string_equal(ibs_value_map_get_str(out, "componentBuildVersionArn"), COMPONENT_ARN);
    assert_string_equal(ibs_value_map_get_str(out, "requestId"), "r1");

    r = sent(&f, 0);
    assert_string_equal(r->method, "PUT");
    assert_string_equal(r->target, "/CreateComponent");
    assert_string_equal(ibs_testsrv_request_header(r, "Content-Type"), "application/json");
    assert_string_equal(ibs_testsrv_request_header(r, "User-Agent"), "ibsync/" IBS_VERSION);
    assert_string_equal(ibs_testsrv_request_header(r, "amz-sdk-request"), "attempt=1; max=3");
    assert_uuid4(ibs_testsrv_request_header(r, "amz-sdk-invocation-id"));
    assert_non_null(ibs_testsrv_request_header(r, "X-Amz-Date"));
    assert_null(ibs_testsrv_request_header(r, "X-Amz-Security-Token"));
    assert_int_equal(strncmp(ibs_testsrv_request_header(r, "Authorization"),
                             "AWS4-HMAC-SHA256 Credential=" ACCESS_KEY "/",
                             strlen("AWS4-HMAC-SHA256 Credential=" ACCESS_KEY "/")),
                     0);
    body = json(r->body);
    assert_string_equal(ibs_value_map_get_str(body, "name"), "my-comp");
    assert_string_equal(ibs_value_map_get_str(body, "semanticVersion"), "1.0.0");
    assert_string_equal(ibs_value_map_get_str(body, "data"), "name: x\n");
    assert_string_equal(ibs_value_map_get_str(ibs_value_map_get(body, "tags"), "team"), "infra");
    /* No clientToken given: a UUID v4 was made for the call. */
    assert_uuid4(ibs_value_map_get_str(body, "clientToken"));
    assert_int_equal(body->count, 6);
    assert_all_verified(&f, 1);
    ibs_value_free(body);
    ibs_value_free(out);
    fixture_stop(&f);
}

static void test_get_component_binds_the_query(void **state)
{
    struct fixture f;
    struct ibs_value *out = NULL;
    const struct ibs_testsrv_request *r;
    (void)state;

    fixture_start(&f, ok_step, 1);
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     0);
    r = sent(&f, 0);
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->target, "/GetComponent?componentBuildVersionArn=" COMPONENT_ARN_ENCODED);
    assert_int_equal(r->body_len, 0);
    assert_null(ibs_testsrv_request_header(r, "Content-Type"));
    assert_null(ibs_testsrv_request_header(r, "Content-Length"));
    assert_all_verified(&f, 1);
    assert_int_equal(out->type, IBS_VALUE_MAP);
    assert_int_equal(out->count, 0);
    ibs_value_free(out);
    fixture_stop(&f);
}

static void test_tag_resource_encodes_the_arn_in_the_path(void **state)
{
    struct fixture f;
    struct ibs_value *out = NULL;
    const struct ibs_testsrv_request *r;
    (void)state;

    fixture_start(&f, ok_step, 1);
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "TagResource",
                          "{\"resourceArn\":\"" COMPONENT_ARN "\",\"tags\":{\"a b\":\"c/d\"}}"),
                     0);
    r = sent(&f, 0);
    assert_string_equal(r->method, "POST");
    /* ':' and '/' of the ARN go out as %3A and %2F, as the SDKs send them;
     * the signer signs that path encoded once more. */
    assert_string_equal(r->target, "/tags/" COMPONENT_ARN_ENCODED);
    assert_string_equal(r->body, "{\"tags\":{\"a b\":\"c/d\"}}");
    assert_all_verified(&f, 1);
    ibs_value_free(out);
    fixture_stop(&f);
}

static void test_untag_resource_repeats_tag_keys(void **state)
{
    struct fixture f;
    struct ibs_value *out = NULL;
    const struct ibs_testsrv_request *r;
    (void)state;

    fixture_start(&f, ok_step, 1);
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "UntagResource",
                          "{\"resourceArn\":\"" COMPONENT_ARN "\","
                          "\"tagKeys\":[\"team\",\"cost center\",\"a&b=c\"]}"),
                     0);
    r = sent(&f, 0);
    assert_string_equal(r->method, "DELETE");
    assert_string_equal(r->target, "/tags/" COMPONENT_ARN_ENCODED
                                   "?tagKeys=team&tagKeys=cost%20center&tagKeys=a%26b%3Dc");
    assert_int_equal(r->body_len, 0);
    assert_null(ibs_testsrv_request_header(r, "Content-Length"));
    assert_all_verified(&f, 1);
    ibs_value_free(out);
    fixture_stop(&f);
}

static void test_list_components_pagination_binding(void **state)
{
    static const struct step steps[] = {
        {200, NULL,
         "{\"componentVersionList\":[{\"name\":\"a\"},{\"name\":\"b\"}],"
         "\"nextToken\":\"page/2+=\"}",
         0},
        {200, NULL, "{\"componentVersionList\":[{\"name\":\"c\"}]}", 0},
    };
    struct fixture f;
    struct ibs_value *out = NULL, *in, *b0, *b1;
    size_t pages = 0;
    (void)state;

    fixture_start(&f, steps, 2);
    fixture_open(&f);
    in = json("{\"owner\":\"Self\"}");
    assert_int_equal(ibs_provider_list_all(&out, &pages, f.prov, "ListComponents", in), 0);
    assert_int_equal(pages, 2);
    assert_int_equal(out->type, IBS_VALUE_LIST);
    assert_int_equal(out->count, 3);
    assert_string_equal(ibs_value_map_get_str(out->u.items[2], "name"), "c");

    assert_string_equal(sent(&f, 0)->method, "POST");
    assert_string_equal(sent(&f, 0)->target, "/ListComponents");
    b0 = json(sent(&f, 0)->body);
    b1 = json(sent(&f, 1)->body);
    assert_string_equal(ibs_value_map_get_str(b0, "owner"), "Self");
    assert_int_equal(ibs_value_map_get(b0, "maxResults")->num.i, 25);
    assert_null(ibs_value_map_get(b0, "nextToken"));
    assert_string_equal(ibs_value_map_get_str(b1, "nextToken"), "page/2+=");
    assert_int_equal(ibs_value_map_get(b1, "maxResults")->num.i, 25);
    assert_all_verified(&f, 2);
    ibs_value_free(b0);
    ibs_value_free(b1);
    ibs_value_free(in);
    ibs_value_free(out);

    /* No filter at all: still a JSON object, as the SDKs send. */
    assert_int_equal(call(&out, NULL, &f, "ListComponents", NULL), 0);
    assert_string_equal(sent(&f, 2)->body, "{}");
    ibs_value_free(out);
    fixture_stop(&f);
}

static void test_custom_endpoint_path_prefix_is_signed(void **state)
{
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_buf url = IBS_BUF_INIT;
    (void)state;

    fixture_start(&f, ok_step, 1);
    ibs_buf_printf(&url, "%s/prefix/", ibs_testsrv_url(f.srv));
    f.cfg.endpoint_url = url.ptr;
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     0);
    assert_string_equal(sent(&f, 0)->path, "/prefix/GetComponent");
    assert_all_verified(&f, 1);
    ibs_value_free(out);
    ibs_buf_release(&url);
    fixture_stop(&f);
}

static void test_invalid_requests_are_not_sent(void **state)
{
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_provider_error err;
    (void)state;

    fixture_start(&f, ok_step, 1);
    fixture_open(&f);
    assert_int_equal(call(&out, &err, &f, "CreateComponent",
                          "{\"name\":\"x\",\"semanticVersion\":\"1.0.0\",\"platform\":\"Linux\","
                          "\"bogus\":1}"),
                     IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "CreateComponent: unknown request member 'bogus'");
    assert_int_equal(err.code, IBS_EINVALID);
    assert_int_equal(err.attempts, 0);
    assert_int_equal(err.status, 0);
    ibs_provider_error_release(&err);
    assert_int_equal(call(&out, NULL, &f, "TagResource", "{\"tags\":{\"a\":\"b\"}}"), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "TagResource: missing required member 'resourceArn'");
    assert_int_equal(
        call(&out, NULL, &f, "TagResource", "{\"resourceArn\":\"\",\"tags\":{\"a\":\"b\"}}"),
        IBS_EINVALID);
    assert_int_equal(call(&out, NULL, &f, "NoSuchOperation", NULL), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "unknown Image Builder operation NoSuchOperation");
    assert_int_equal(ibs_testsrv_nrequests(f.srv), 0);
    assert_null(out);
    fixture_stop(&f);
}

/* ---- errors ----------------------------------------------------------- */

struct error_case {
    struct step step;
    int code;
    const char *aws_code;
    const char *message; /* the service's, or NULL */
    const char *error;   /* the error string */
};

static void test_error_parsing_from_each_source(void **state)
{
    static const struct error_case cases[] = {
        /* x-amzn-errortype wins, cut at ':'. */
        {{404, "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazon.coral/",
          "{\"code\":\"Other\",\"message\":\"no such component\"}", 0},
         IBS_ENOTFOUND,
         "ResourceNotFoundException",
         "no such component",
         "ResourceNotFoundException: no such component (HTTP 404, request id req-1)"},
        /* Body "code". */
        {{409, NULL, "{\"code\":\"ResourceAlreadyExistsException\",\"message\":\"exists\"}", 0},
         IBS_EEXISTS,
         "ResourceAlreadyExistsException",
         "exists",
         "ResourceAlreadyExistsException: exists (HTTP 409, request id req-2)"},
        /* Body "__type" with a namespace and a URI suffix; "Message". */
        {{400, NULL,
          "{\"__type\":\"com.amazonaws.imagebuilder#ResourceDependencyException:http://x/y\","
          "\"Message\":\"in use by a recipe\"}",
          0},
         IBS_EDEPENDENCY,
         "ResourceDependencyException",
         "in use by a recipe",
         "ResourceDependencyException: in use by a recipe (HTTP 400, request id req-3)"},
        {{400, NULL, "{\"__type\":\"ResourceInUseException\"}", 0},
         IBS_EDEPENDENCY,
         "ResourceInUseException",
         NULL,
         "ResourceInUseException (HTTP 400, request id req-4)"},
        {{400, "IdempotentParameterMismatchException", "{\"message\":\"token reused\"}", 0},
         IBS_ECONFLICT,
         "IdempotentParameterMismatchException",
         "token reused",
         "IdempotentParameterMismatchException: token reused (HTTP 400, request id req-5)"},
        {{400, "InvalidParameterValueException", "{\"message\":\"bad version\"}", 0},
         IBS_EINVALID,
         "InvalidParameterValueException",
         "bad version",
         "InvalidParameterValueException: bad version (HTTP 400, request id req-6)"},
        {{400, "ClientException", "{}", 0},
         IBS_EINVALID,
         "ClientException",
         NULL,
         "ClientException (HTTP 400, request id req-7)"},
        {{403, NULL, "{\"__type\":\"aws#InvalidSignatureException\",\"message\":\"bad\"}", 0},
         IBS_EAUTH,
         "InvalidSignatureException",
         "bad",
         "InvalidSignatureException: bad (HTTP 403, request id req-8)"},
        {{401, NULL, "", 0}, IBS_EAUTH, NULL, NULL, "Unauthorized (HTTP 401, request id req-9)"},
        /* A proxy's HTML page: no code, the status decides. */
        {{503, NULL, "<html>busy</html>", 0},
         IBS_ESERVICE,
         NULL,
         NULL,
         "Service Unavailable (HTTP 503, request id req-10)"},
        {{429, NULL, "{}", 0},
         IBS_ETHROTTLED,
         NULL,
         NULL,
         "Too Many Requests (HTTP 429, request id req-11)"},
        {{400, "CallRateLimitExceededException", "{\"message\":\"slow down\"}", 0},
         IBS_ETHROTTLED,
         "CallRateLimitExceededException",
         "slow down",
         "CallRateLimitExceededException: slow down (HTTP 400, request id req-12)"},
        {{402, "ServiceQuotaExceededException", "{}", 0},
         IBS_ERROR,
         "ServiceQuotaExceededException",
         NULL,
         "ServiceQuotaExceededException (HTTP 402, request id req-13)"},
    };
    struct step steps[sizeof(cases) / sizeof(cases[0])];
    const size_t n = sizeof(cases) / sizeof(cases[0]);
    struct fixture f;
    (void)state;

    for (size_t i = 0; i < n; i++)
        steps[i] = cases[i].step;
    fixture_start(&f, steps, n);
    f.cfg.max_attempts = 1;
    fixture_open(&f);
    for (size_t i = 0; i < n; i++) {
        struct ibs_value *out = NULL;
        struct ibs_provider_error err;

        assert_int_equal(call(&out, &err, &f, "GetComponent",
                              "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                         cases[i].code);
        assert_null(out);
        assert_string_equal(ibs_error_last()->message, cases[i].error);
        assert_int_equal(ibs_error_last()->code, cases[i].code);
        assert_int_equal(err.code, cases[i].code);
        assert_int_equal(err.status, cases[i].step.status);
        assert_int_equal(err.attempts, 1);
        if (cases[i].aws_code)
            assert_string_equal(err.aws_code, cases[i].aws_code);
        else
            assert_null(err.aws_code);
        if (cases[i].message)
            assert_string_equal(err.message, cases[i].message);
        else
            assert_null(err.message);
        assert_non_null(err.request_id);
        ibs_provider_error_release(&err);
    }
    fixture_stop(&f);
}

static void test_error_classification(void **state)
{
    (void)state;
    assert_int_equal(ibs_aws_error_code("ThrottlingException", 400), IBS_ETHROTTLED);
    assert_int_equal(ibs_aws_error_code("SlowDown", 503), IBS_ETHROTTLED);
    assert_int_equal(ibs_aws_error_code(NULL, 429), IBS_ETHROTTLED);
    assert_int_equal(ibs_aws_error_code("ExpiredTokenException", 400), IBS_EAUTH);
    assert_int_equal(ibs_aws_error_code("SignatureDoesNotMatch", 400), IBS_EAUTH);
    assert_int_equal(ibs_aws_error_code("InvalidRequestException", 400), IBS_EINVALID);
    assert_int_equal(ibs_aws_error_code("InvalidParameterCombinationException", 400), IBS_EINVALID);
    assert_int_equal(ibs_aws_error_code("ServiceException", 500), IBS_ESERVICE);
    assert_int_equal(ibs_aws_error_code(NULL, 502), IBS_ESERVICE);
    assert_true(ibs_aws_error_is_throttling("PriorRequestNotComplete", 400));
    assert_true(ibs_aws_error_is_throttling("EC2ThrottledException", 400));
    assert_false(ibs_aws_error_is_throttling("ResourceNotFoundException", 404));
    assert_true(ibs_aws_error_is_transient("RequestTimeoutException", 400));
    assert_true(ibs_aws_error_is_transient("InternalError", 400));
    assert_true(ibs_aws_error_is_transient(NULL, 504));
    assert_false(ibs_aws_error_is_transient(NULL, 501));
    assert_false(ibs_aws_error_is_transient("ValidationException", 400));
}

/* ---- retries ---------------------------------------------------------- */

static void assert_sleeps(struct fixture *f, const long *want, size_t n)
{
    assert_int_equal(f->sleeps.n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(f->sleeps.ms[i], want[i]);
}

static void test_throttled_twice_then_success(void **state)
{
    static const struct step steps[] = {
        {400, "ThrottlingException", "{\"message\":\"Rate exceeded\"}", 0},
        {400, NULL, "{\"__type\":\"TooManyRequestsException\"}", 0},
        {200, NULL, "{\"requestId\":\"ok\"}", 0},
    };
    static const long want[] = {500, 1000}; /* 0.5 * 1 s * 2^0, 0.5 * 1 s * 2^1 */
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_aws_stats st;
    struct ibs_aws_call_stat cs;
    (void)state;

    fixture_start(&f, steps, 3);
    /* The standard mode's backoff alone; adaptive mode adds token waits
     * (test_adaptive_throttles_wait_for_tokens). */
    f.cfg.retry_mode = "standard";
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     0);
    assert_string_equal(ibs_value_map_get_str(out, "requestId"), "ok");
    assert_sleeps(&f, want, 2);
    assert_all_verified(&f, 3);
    assert_string_equal(ibs_testsrv_request_header(sent(&f, 1), "amz-sdk-request"),
                        "attempt=2; max=3");
    assert_string_equal(ibs_testsrv_request_header(sent(&f, 2), "amz-sdk-request"),
                        "attempt=3; max=3");
    assert_string_equal(ibs_testsrv_request_header(sent(&f, 0), "amz-sdk-invocation-id"),
                        ibs_testsrv_request_header(sent(&f, 2), "amz-sdk-invocation-id"));
    /* Credentials are asked for on every attempt. */
    assert_int_equal(f.creds.calls, 3);

    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_int_equal(st.calls, 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.attempts, 3);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.throttles, 2);
    /* 500 - 5 - 5, then the last retry's 5 refunded. */
    assert_int_equal(st.retry_quota, 495);
    ibs_aws_provider_last_call(&cs);
    assert_string_equal(cs.operation, "GetComponent");
    assert_int_equal(cs.code, 0);
    assert_int_equal(cs.attempts, 3);
    assert_int_equal(cs.status, 200);
    assert_int_equal(cs.slept_ms, 1500);
    assert_non_null(strstr(f.log.text.ptr, "aws: GetComponent: attempt 1 of 3 failed: "
                                           "ThrottlingException: Rate exceeded (HTTP 400, "
                                           "request id req-1); retrying in 500 ms\n"));
    ibs_value_free(out);
    fixture_stop(&f);
}

static void test_server_error_then_success(void **state)
{
    static const struct step steps[] = {
        {500, "InternalServerException", "{\"message\":\"oops\"}", 0},
        {200, NULL, NULL, 0},
    };
    static const long want[] = {25}; /* 0.5 * 50 ms */
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_aws_stats st;
    (void)state;

    fixture_start(&f, steps, 2);
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     0);
    assert_sleeps(&f, want, 1);
    assert_all_verified(&f, 2);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_int_equal(st.throttles, 0);
    assert_int_equal(st.retries, 1);
    ibs_value_free(out);
    fixture_stop(&f);
}

static void test_client_errors_are_not_retried(void **state)
{
    static const struct step steps[] = {
        {400, "ValidationException", "{\"message\":\"name too long\"}", 0},
        {200, NULL, NULL, 0},
    };
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_provider_error err;
    (void)state;

    fixture_start(&f, steps, 2);
    fixture_open(&f);
    assert_int_equal(call(&out, &err, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     IBS_EINVALID);
    assert_int_equal(err.attempts, 1);
    assert_int_equal(ibs_testsrv_nrequests(f.srv), 1);
    assert_int_equal(f.sleeps.n, 0);
    assert_string_equal(ibs_error_last()->message,
                        "ValidationException: name too long (HTTP 400, request id req-1)");
    ibs_provider_error_release(&err);
    fixture_stop(&f);
}

static void test_exhausted_attempts_report_the_last_error(void **state)
{
    static const struct step steps[] = {
        {503, NULL, "{\"message\":\"first\"}", 0},
        {502, NULL, "{\"message\":\"second\"}", 0},
        {500, "InternalFailure", "{\"message\":\"third\"}", 0},
    };
    static const long want[] = {25, 50};
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_provider_error err;
    struct ibs_aws_stats st;
    (void)state;

    fixture_start(&f, steps, 3);
    fixture_open(&f);
    assert_int_equal(call(&out, &err, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     IBS_ESERVICE);
    assert_int_equal(err.attempts, 3);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.aws_code, "InternalFailure");
    assert_string_equal(err.message, "third");
    assert_string_equal(err.request_id, "req-3");
    assert_string_equal(ibs_error_last()->message,
                        "InternalFailure: third (HTTP 500, request id req-3)");
    assert_sleeps(&f, want, 2);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_int_equal(st.calls, 1);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.retry_quota, 490);
    ibs_provider_error_release(&err);
    fixture_stop(&f);
}

static void test_max_attempts_from_the_environment(void **state)
{
    static const struct step steps[] = {{500, NULL, "{}", 0}};
    static const char *const env5[] = {"AWS_MAX_ATTEMPTS=5", NULL};
    static const char *const bad[] = {"AWS_MAX_ATTEMPTS=three", NULL};
    static const long want[] = {25, 50, 100, 200};
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_provider_error err;
    struct ibs_provider *p = NULL;
    (void)state;

    fixture_start(&f, steps, 1);
    f.env = env5;
    fixture_open(&f);
    assert_int_equal(call(&out, &err, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     IBS_ESERVICE);
    assert_int_equal(err.attempts, 5);
    assert_int_equal(ibs_testsrv_nrequests(f.srv), 5);
    assert_string_equal(ibs_testsrv_request_header(sent(&f, 4), "amz-sdk-request"),
                        "attempt=5; max=5");
    assert_sleeps(&f, want, 4);
    ibs_provider_error_release(&err);

    /* The configuration beats the environment. */
    ibs_provider_free(f.prov);
    f.cfg.max_attempts = 2;
    fixture_open(&f);
    ibs_testsrv_reset(f.srv);
    assert_int_equal(call(&out, &err, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     IBS_ESERVICE);
    assert_int_equal(err.attempts, 2);
    ibs_provider_error_release(&err);

    f.cfg.max_attempts = 0;
    f.cfg.getenv = fake_env;
    f.cfg.env_ctx = (void *)bad;
    assert_int_equal(ibs_aws_provider_new(&p, &f.cfg), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "AWS_MAX_ATTEMPTS: expected an integer from 1 to 1000, not 'three'");
    assert_null(p);
    fixture_stop(&f);
}

static void test_retries_keep_the_client_token(void **state)
{
    static const struct step steps[] = {
        {500, NULL, "{}", 0},
        {503, NULL, "{}", 0},
        {200, NULL, "{\"clientToken\":\"x\"}", 0},
    };
    struct fixture f;
    struct ibs_value *out = NULL, *b[3];
    const char *token;
    (void)state;

    fixture_start(&f, steps, 3);
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "CreateImagePipeline",
                          "{\"name\":\"p\",\"infrastructureConfigurationArn\":\"arn:i\","
                          "\"imageRecipeArn\":\"arn:r\"}"),
                     0);
    ibs_value_free(out);
    assert_all_verified(&f, 3);
    for (size_t i = 0; i < 3; i++)
        b[i] = json(sent(&f, i)->body);
    token = ibs_value_map_get_str(b[0], "clientToken");
    assert_uuid4(token);
    assert_string_equal(ibs_value_map_get_str(b[1], "clientToken"), token);
    assert_string_equal(ibs_value_map_get_str(b[2], "clientToken"), token);
    /* A second call gets a token of its own. */
    ibs_testsrv_reset(f.srv);
    f.script.next = 2;
    assert_int_equal(call(&out, NULL, &f, "CreateImagePipeline",
                          "{\"name\":\"p\",\"infrastructureConfigurationArn\":\"arn:i\","
                          "\"imageRecipeArn\":\"arn:r\"}"),
                     0);
    ibs_value_free(out);
    out = json(sent(&f, 0)->body);
    assert_uuid4(ibs_value_map_get_str(out, "clientToken"));
    assert_string_not_equal(ibs_value_map_get_str(out, "clientToken"), token);
    ibs_value_free(out);
    /* A token the caller gives is sent as is. */
    assert_int_equal(call(&out, NULL, &f, "CreateImagePipeline",
                          "{\"name\":\"p\",\"infrastructureConfigurationArn\":\"arn:i\","
                          "\"imageRecipeArn\":\"arn:r\",\"clientToken\":\"mine-1\"}"),
                     0);
    ibs_value_free(out);
    out = json(sent(&f, 1)->body);
    assert_string_equal(ibs_value_map_get_str(out, "clientToken"), "mine-1");
    ibs_value_free(out);
    for (size_t i = 0; i < 3; i++)
        ibs_value_free(b[i]);
    fixture_stop(&f);
}

static void test_retry_quota_exhaustion(void **state)
{
    static const struct step steps[] = {{500, NULL, "{}", 0}};
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_provider_error err;
    struct ibs_aws_stats st;
    (void)state;

    fixture_start(&f, steps, 1);
    f.cfg.max_attempts = 2;
    fixture_open(&f);
    /* 100 failing calls with one retry each spend the 500 tokens. */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(call(&out, NULL, &f, "GetComponent",
                              "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                         IBS_ESERVICE);
    }
    assert_int_equal(ibs_testsrv_nrequests(f.srv), 200);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_int_equal(st.retry_quota, 0);
    assert_null(strstr(f.log.text.ptr, "retry quota is exhausted"));
    /* Now the next failure is not retried. */
    assert_int_equal(call(&out, &err, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     IBS_ESERVICE);
    assert_int_equal(err.attempts, 1);
    assert_int_equal(ibs_testsrv_nrequests(f.srv), 201);
    assert_non_null(
        strstr(f.log.text.ptr, "aws: GetComponent: not retrying: the retry quota is exhausted\n"));
    ibs_provider_error_release(&err);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_int_equal(st.calls, 101);
    assert_int_equal(st.failures, 101);
    assert_int_equal(st.retries, 100);
    assert_int_equal(st.attempts, 201);
    fixture_stop(&f);
}

static unsigned closed_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_connection_failures_cost_more_quota(void **state)
{
    static const long want[] = {25, 50};
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_provider_error err;
    struct ibs_aws_stats st;
    char url[64];
    (void)state;

    fixture_start(&f, ok_step, 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", closed_port());
    f.cfg.endpoint_url = url;
    f.cfg.retry_quota = 25;
    fixture_open(&f);
    assert_int_equal(call(&out, &err, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     IBS_EIO);
    assert_int_equal(err.attempts, 3);
    assert_int_equal(err.status, 0);
    assert_null(err.aws_code);
    assert_non_null(strstr(ibs_error_last()->message, "GET 127.0.0.1: "));
    assert_sleeps(&f, want, 2);
    ibs_provider_error_release(&err);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_int_equal(st.retry_quota, 5); /* 25 - 10 - 10 */
    /* 5 tokens do not pay for a retry after a connection failure. */
    assert_int_equal(call(&out, &err, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     IBS_EIO);
    assert_int_equal(err.attempts, 1);
    ibs_provider_error_release(&err);
    fixture_stop(&f);
}

static void test_dropped_connection_is_retried(void **state)
{
    static const struct step steps[] = {
        {0, NULL, NULL, 0},
        {200, NULL, "{\"requestId\":\"after-drop\"}", 0},
    };
    static const long want[] = {25};
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_aws_stats st;
    (void)state;

    fixture_start(&f, steps, 2);
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "CreateComponent",
                          "{\"name\":\"c\",\"semanticVersion\":\"1.0.0\",\"platform\":\"Linux\","
                          "\"data\":\"x\"}"),
                     0);
    assert_string_equal(ibs_value_map_get_str(out, "requestId"), "after-drop");
    assert_sleeps(&f, want, 1);
    assert_all_verified(&f, 2);
    /* The connection failure cost 10 and was refunded on success. */
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_int_equal(st.retry_quota, 500);
    assert_string_equal(sent(&f, 0)->body, sent(&f, 1)->body);
    ibs_value_free(out);
    fixture_stop(&f);
}

static void test_timeout_is_retried(void **state)
{
    static const struct step steps[] = {
        {200, NULL, NULL, 2000},
        {200, NULL, "{\"requestId\":\"fast\"}", 0},
    };
    struct fixture f;
    struct ibs_value *out = NULL;
    (void)state;

    fixture_start(&f, steps, 2);
    f.cfg.http.timeout_ms = 200;
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "GetComponent",
                          "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}"),
                     0);
    assert_string_equal(ibs_value_map_get_str(out, "requestId"), "fast");
    assert_int_equal(f.sleeps.n, 1);
    assert_non_null(strstr(f.log.text.ptr, "attempt 1 of 3 failed: GET 127.0.0.1: timed out"));
    ibs_value_free(out);
    fixture_stop(&f);
}

static void test_credential_failures_are_reported(void **state)
{
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_provider_error err;
    (void)state;

    fixture_start(&f, ok_step, 1);
    f.cfg.get_credentials = failing_credentials;
    fixture_open(&f);
    assert_int_equal(call(&out, &err, &f, "ListComponents", NULL), IBS_EAUTH);
    assert_string_equal(ibs_error_last()->message, "no credentials found: tried environment");
    assert_int_equal(err.code, IBS_EAUTH);
    assert_int_equal(err.attempts, 1);
    assert_int_equal(ibs_testsrv_nrequests(f.srv), 0);
    ibs_provider_error_release(&err);
    fixture_stop(&f);
}

/* ---- secrets ---------------------------------------------------------- */

static void assert_absent(const char *haystack, const char *secret, const char *what)
{
    if (haystack && secret && *secret && strstr(haystack, secret))
        fail_msg("%s appears in: %s", what, haystack);
}

static void test_no_secrets_in_logs_or_errors(void **state)
{
    /* The service echoes the token and the Authorization header, as AWS
     * does in some IncompleteSignature and 5xx messages. */
    static const struct step steps[] = {
        {500, NULL, "{\"message\":\"failed for token %TOKEN%\"}", 0},
        {403, "IncompleteSignatureException",
         "{\"message\":\"Authorization=%AUTH% is malformed; token=%TOKEN%\"}", 0},
    };
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_provider_error err;
    const char *texts[3];
    char sigs[2][65];
    (void)state;

    fixture_start(&f, steps, 2);
    f.creds.token = SESSION_TOKEN;
    fixture_open(&f);
    assert_int_equal(call(&out, &err, &f, "TagResource",
                          "{\"resourceArn\":\"" COMPONENT_ARN "\",\"tags\":{\"a\":\"b\"}}"),
                     IBS_EAUTH);
    assert_all_verified(&f, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct ibs_testsrv_request *r = sent(&f, i);
        const char *auth = ibs_testsrv_request_header(r, "Authorization");
        const char *sig = strstr(auth, "Signature=");
        assert_string_equal(ibs_testsrv_request_header(r, "X-Amz-Security-Token"), SESSION_TOKEN);
        assert_non_null(sig);
        snprintf(sigs[i], sizeof(sigs[i]), "%s", sig + 10);
        assert_int_equal(strlen(sigs[i]), 64);
    }
    /* The debug log has the requests and responses, with timing. */
    assert_non_null(strstr(f.log.text.ptr, "> POST http://127.0.0.1:"));
    assert_non_null(strstr(f.log.text.ptr, "/tags/" COMPONENT_ARN_ENCODED "; body 18 bytes\n"));
    assert_non_null(strstr(f.log.text.ptr, "< 500 ("));
    assert_non_null(strstr(f.log.text.ptr, " ms) x-amzn-requestid: req-1; body "));
    assert_non_null(strstr(f.log.text.ptr, "< 403 ("));
    assert_non_null(
        strstr(err.message, "Authorization=AWS4-HMAC-SHA256 Credential=" ACCESS_KEY "/"));
    texts[0] = f.log.text.ptr;
    texts[1] = ibs_error_last()->message;
    texts[2] = err.message;
    for (size_t i = 0; i < 3; i++) {
        assert_absent(texts[i], SECRET_KEY, "the secret key");
        assert_absent(texts[i], SESSION_TOKEN, "the session token");
        assert_absent(texts[i], sigs[0], "the first signature");
        assert_absent(texts[i], sigs[1], "the second signature");
    }
    assert_non_null(strstr(err.message, "Signature=*** is malformed; token=***"));
    assert_non_null(strstr(f.log.text.ptr, "failed for token ***"));
    ibs_provider_error_release(&err);
    fixture_stop(&f);
}

/* ---- parallel callers ------------------------------------------------- */

struct worker {
    struct fixture *f;
    int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 10; i++) {
        struct ibs_value *out = NULL;
        if (call(&out, NULL, w->f, "GetComponent",
                 "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}") != 0)
            w->failures++;
        ibs_value_free(out);
    }
    return NULL;
}

static void test_parallel_calls_share_one_provider(void **state)
{
    struct fixture f;
    struct worker w[6];
    pthread_t t[6];
    struct ibs_aws_stats st;
    (void)state;

    fixture_start(&f, ok_step, 1);
    f.cfg.http.max_connections = 3;
    fixture_open(&f);
    for (int i = 0; i < 6; i++) {
        w[i].f = &f;
        w[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_all_verified(&f, 60);
    assert_true(ibs_testsrv_connections(f.srv) <= 3);
    assert_true(ibs_testsrv_max_inflight(f.srv) <= 3);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_int_equal(st.calls, 60);
    assert_int_equal(st.attempts, 60);
    assert_int_equal(st.retry_quota, 500);
    fixture_stop(&f);
}

/* ---- adaptive retry mode ---------------------------------------------- */

static const char *const get_component_input =
    "{\"componentBuildVersionArn\":\"" COMPONENT_ARN "\"}";

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-9 * (fabs(want) > 1 ? fabs(want) : 1))
        fail_msg("got %.12g, expected %.12g", got, want);
}

/* The CUBIC rate at time t after a throttle at t_throttle that set W_max,
 * capped at twice the measured rate, floored at 0.5 (client.c). */
static double expected_rate(double t, double t_throttle, double w_max, double measured)
{
    double k = cbrt(w_max * (1 - 0.7) / 0.4);
    double rate = 0.4 * pow(t - t_throttle - k, 3) + w_max;
    if (rate > 2 * measured)
        rate = 2 * measured;
    return rate < 0.5 ? 0.5 : rate;
}

static void test_retry_mode_selection(void **state)
{
    static const char *const env_standard[] = {"AWS_RETRY_MODE=standard", NULL};
    static const char *const env_legacy[] = {"AWS_RETRY_MODE=Legacy", NULL};
    static const char *const env_bad[] = {"AWS_RETRY_MODE=fast", NULL};
    struct {
        const char *cfg_mode;
        const char *const *env;
        const char *want; /* NULL: IBS_EINVALID with `error` */
        const char *error;
    } cases[] = {
        {NULL, no_env, "standard", NULL},
        {NULL, env_standard, "standard", NULL},
        {NULL, env_legacy, "standard", NULL},
        {"ADAPTIVE", env_standard, "adaptive", NULL},
        {"standard", no_env, "standard", NULL},
        {"", env_standard, "standard", NULL},
        {NULL, env_bad, NULL, "AWS_RETRY_MODE: expected standard, adaptive or legacy, not 'fast'"},
        {"cubic", no_env, NULL, "retry_mode: expected standard, adaptive or legacy, not 'cubic'"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fixture f;
        struct ibs_aws_stats st;
        struct ibs_provider *p = NULL;
        char line[64];

        fixture_start(&f, ok_step, 1);
        f.cfg.retry_mode = cases[i].cfg_mode;
        f.cfg.getenv = fake_env;
        f.cfg.env_ctx = (void *)cases[i].env;
        if (!cases[i].want) {
            assert_int_equal(ibs_aws_provider_new(&p, &f.cfg), IBS_EINVALID);
            assert_null(p);
            assert_string_equal(ibs_error_last()->message, cases[i].error);
            fixture_stop(&f);
            continue;
        }
        f.env = cases[i].env;
        fixture_open(&f);
        assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
        if (strcmp(st.retry_mode, cases[i].want) != 0)
            fail_msg("case %zu: %s, expected %s", i, st.retry_mode, cases[i].want);
        snprintf(line, sizeof(line), ", 3 attempts, %s retry mode\n", cases[i].want);
        assert_non_null(strstr(f.log.text.ptr, line));
        assert_true(st.fill_rate == 0);
        fixture_stop(&f);
    }
}

/* The bucket starts empty and, after an early throttle, fills at the
 * minimum 0.5 tokens/s: each attempt waits (1 - tokens) / rate. */
static void test_adaptive_throttles_wait_for_tokens(void **state)
{
    static const struct step steps[] = {
        {400, "ThrottlingException", "{\"message\":\"Rate exceeded\"}", 0},
        {400, NULL, "{\"__type\":\"TooManyRequestsException\"}", 0},
        {200, NULL, "{\"requestId\":\"ok\"}", 0},
    };
    /* t=1000: throttled, measured rate 0: 0.5 tokens/s, bucket empty.
     * Backoff 500 ms; at 1000.5 the bucket holds 0.25: wait 1500 ms.
     * t=1002: throttled again: measured 0.8 (2 answers over 2 s, smoothed),
     * the rate min(0.8, 0.5) * 0.7 is below the floor: 0.5 again. Backoff
     * 1000 ms, then 0.5 tokens there: wait 1000 ms. */
    static const long want[] = {500, 1500, 1000, 1000};
    struct fixture f;
    struct ibs_value *out = NULL;
    struct ibs_aws_stats st;
    struct ibs_aws_call_stat cs;
    (void)state;

    fixture_start(&f, steps, 3);
    f.cfg.retry_mode = "adaptive";
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "GetComponent", get_component_input), 0);
    ibs_value_free(out);
    assert_sleeps(&f, want, 4);
    assert_all_verified(&f, 3);
    ibs_aws_provider_last_call(&cs);
    assert_int_equal(cs.attempts, 3);
    assert_int_equal(cs.slept_ms, 1500);
    assert_int_equal(cs.waited_ms, 2500);
    assert_int_equal(cs.elapsed_ms, 4000);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_string_equal(st.retry_mode, "adaptive");
    assert_int_equal(st.throttles, 2);
    assert_int_equal(st.rate_waits, 2);
    assert_int_equal(st.rate_wait_ms, 2500);
    /* The success at t=1004: measured 0.8 * 1/2 + 0.2 * 0.8 = 0.56; the
     * cubic rate 0.4 * (2 - cbrt(0.5 * 0.3 / 0.4))^3 + 0.5 = 1.34 is capped
     * at twice that. */
    assert_near(st.measured_rate, 0.56);
    assert_near(st.fill_rate, 1.12);
    assert_near(expected_rate(CLOCK_START + 4, CLOCK_START + 2, 0.5, 0.56), 1.12);
    assert_non_null(strstr(f.log.text.ptr, "aws: GetComponent: throttled: sending at most "
                                           "0.50 requests/s (measured 0.00)\n"));
    assert_non_null(
        strstr(f.log.text.ptr, "aws: GetComponent: attempt 2 waited 1500 ms for a send token\n"));
    assert_non_null(
        strstr(f.log.text.ptr, "aws: GetComponent: attempt 3 waited 1000 ms for a send token\n"));

    /* The next call finds the bucket empty at 1.12 tokens/s: 1/1.12 s. */
    assert_int_equal(call(&out, NULL, &f, "GetComponent", get_component_input), 0);
    ibs_value_free(out);
    assert_int_equal(f.sleeps.n, 5);
    assert_int_equal(f.sleeps.ms[4], 893);
    ibs_aws_provider_last_call(&cs);
    assert_int_equal(cs.attempts, 1);
    assert_int_equal(cs.slept_ms, 0);
    assert_int_equal(cs.waited_ms, 893);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_int_equal(st.rate_waits, 3);
    assert_int_equal(st.rate_wait_ms, 3393);
    fixture_stop(&f);
}

/* Calls at 20/s: a throttle cuts the fill rate to 0.7 times the measured
 * rate, the next calls wait for tokens, and between throttles the rate
 * grows back along the cubic curve, past the old rate after K seconds. */
static void test_adaptive_rate_drops_and_recovers(void **state)
{
    struct step steps[23];
    struct fixture f;
    struct ibs_aws_stats st;
    struct ibs_value *out = NULL;
    double w_max, t_throttle, k, first_after, last = 0;
    uint64_t waits_before;
    (void)state;

    for (size_t i = 0; i < 23; i++)
        steps[i] = (struct step){200, NULL, NULL, 0};
    steps[21] = (struct step){400, "ThrottlingException", "{\"message\":\"Rate exceeded\"}", 0};
    fixture_start(&f, steps, 23);
    f.cfg.max_attempts = 1;
    f.cfg.retry_mode = "adaptive";
    fixture_open(&f);
    for (int i = 0; i < 21; i++) {
        assert_int_equal(call(&out, NULL, &f, "GetComponent", get_component_input), 0);
        ibs_value_free(out);
        advance_clock(&f.sleeps, 0.05);
    }
    /* Not limited before the first throttle. */
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_true(st.fill_rate == 0);
    assert_int_equal(st.rate_waits, 0);
    assert_int_equal(f.sleeps.n, 0);
    assert_true(st.measured_rate > 15 && st.measured_rate < 25);

    assert_int_equal(call(&out, NULL, &f, "GetComponent", get_component_input), IBS_ETHROTTLED);
    assert_null(out);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    w_max = st.measured_rate;
    t_throttle = fake_clock(&f.sleeps);
    k = cbrt(w_max * 0.3 / 0.4);
    assert_near(st.fill_rate, 0.7 * w_max);
    waits_before = st.rate_waits;

    first_after = -1;
    while (fake_clock(&f.sleeps) < t_throttle + 4) {
        double t;

        advance_clock(&f.sleeps, 0.05);
        assert_int_equal(call(&out, NULL, &f, "GetComponent", get_component_input), 0);
        ibs_value_free(out);
        t = fake_clock(&f.sleeps);
        assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
        assert_near(st.fill_rate, expected_rate(t, t_throttle, w_max, st.measured_rate));
        if (first_after < 0)
            first_after = st.fill_rate;
        /* Below the old rate until K seconds have passed, not after. */
        if (t < t_throttle + k - 0.01)
            assert_true(st.fill_rate < w_max);
        else if (t > t_throttle + k + 0.01)
            assert_true(st.fill_rate > w_max);
        last = st.fill_rate;
    }
    assert_true(first_after < 0.75 * w_max);
    assert_true(last > w_max);
    /* Sending at 20/s with less than that allowed: the limiter made calls wait. */
    assert_true(st.rate_waits > waits_before + 10);
    assert_int_equal(st.rate_waits, f.sleeps.n);
    fixture_stop(&f);
}

/* Standard mode: throttles are retried with backoff, but nothing limits
 * the attempts that follow. */
static void test_standard_mode_does_not_throttle(void **state)
{
    static const char *const env_standard[] = {"AWS_RETRY_MODE=standard", NULL};
    static const struct step steps[] = {
        {400, "ThrottlingException", "{\"message\":\"Rate exceeded\"}", 0},
        {429, NULL, "{}", 0},
        {200, NULL, "{}", 0},
    };
    static const long want[] = {500, 1000};
    struct fixture f;
    struct ibs_aws_stats st;
    struct ibs_aws_call_stat cs;
    (void)state;

    fixture_start(&f, steps, 3);
    f.env = env_standard;
    fixture_open(&f);
    for (int i = 0; i < 20; i++) {
        struct ibs_value *out = NULL;
        assert_int_equal(call(&out, NULL, &f, "GetComponent", get_component_input), 0);
        ibs_value_free(out);
        ibs_aws_provider_last_call(&cs);
        assert_int_equal(cs.waited_ms, 0);
    }
    /* Only the first call's two backoffs; the 19 calls after the throttles
     * went out at once, at the same instant. */
    assert_sleeps(&f, want, 2);
    assert_all_verified(&f, 22);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_string_equal(st.retry_mode, "standard");
    assert_int_equal(st.throttles, 2);
    assert_true(st.fill_rate == 0);
    assert_true(st.measured_rate == 0);
    assert_int_equal(st.rate_waits, 0);
    assert_int_equal(st.rate_wait_ms, 0);
    assert_null(strstr(f.log.text.ptr, "send token"));
    assert_null(strstr(f.log.text.ptr, "requests/s"));
    fixture_stop(&f);
}

/* The limiter alone on a fake clock: botocore's numbers step by step. */
static void test_rate_limiter_follows_cubic(void **state)
{
    struct sleeps clk;
    struct ibs_aws_rate_limiter_options o;
    struct ibs_aws_rate_limiter *l = NULL;
    struct ibs_aws_rate_limiter_state s;
    double k = cbrt(33.6 * 0.3 / 0.4), prev;
    long waited = -1;
    (void)state;

    memset(&clk, 0, sizeof(clk));
    pthread_mutex_init(&clk.mu, NULL);
    clk.now = CLOCK_START;
    memset(&o, 0, sizeof(o));
    o.clock = fake_clock;
    o.clock_ctx = &clk;
    o.sleep_ms = record_sleep;
    o.sleep_ctx = &clk;
    assert_int_equal(ibs_aws_rate_limiter_new(&l, &o), 0);
    ibs_aws_rate_limiter_snapshot(&s, l);
    assert_false(s.enabled);
    assert_near(s.fill_rate, 1);
    assert_near(s.max_capacity, 1);
    assert_near(s.capacity, 0);

    /* Disabled: no token taken, no wait. */
    ibs_aws_rate_limiter_acquire(&waited, l);
    assert_int_equal(waited, 0);
    ibs_aws_rate_limiter_snapshot(&s, l);
    assert_int_equal(s.acquired, 0);

    /* 21 answers in the first half second: 42/s, smoothed 0.8 * 42. */
    for (int i = 0; i < 20; i++)
        ibs_aws_rate_limiter_update(NULL, l, false);
    advance_clock(&clk, 0.5);
    ibs_aws_rate_limiter_update(&s, l, false);
    assert_near(s.measured_rate, 33.6);
    assert_false(s.enabled);

    /* A throttle: W_max = 33.6, rate 0.7 * 33.6; the 0.25 tokens earned
     * at 0.5/s over the half second stay. */
    ibs_aws_rate_limiter_update(&s, l, true);
    assert_true(s.enabled);
    assert_near(s.last_max_rate, 33.6);
    assert_near(s.time_window, k);
    assert_near(s.last_throttle, CLOCK_START + 0.5);
    assert_near(s.fill_rate, 23.52);
    assert_near(s.max_capacity, 23.52);
    assert_near(s.capacity, 0.25);

    /* 0.75 tokens short at 23.52/s: 31.9 ms, rounded up. */
    ibs_aws_rate_limiter_acquire(&waited, l);
    assert_int_equal(waited, 32);
    assert_int_equal(clk.n, 1);
    assert_int_equal(clk.ms[0], 32);
    ibs_aws_rate_limiter_snapshot(&s, l);
    assert_int_equal(s.acquired, 1);
    assert_int_equal(s.waits, 1);
    assert_int_equal(s.wait_ms, 32);
    assert_near(s.capacity, 0.25 + 0.032 * 23.52 - 1);

    /* 40 answers/s for 5 s: the rate climbs back along the curve, is at
     * W_max after K = cbrt(33.6 * 0.3 / 0.4) s, and beyond it after. */
    prev = 23.52;
    for (int step = 1; step <= 50; step++) {
        double t;

        advance_clock(&clk, 0.1);
        for (int i = 0; i < 4; i++)
            ibs_aws_rate_limiter_update(&s, l, false);
        t = fake_clock(&clk);
        assert_near(s.fill_rate, expected_rate(t, CLOCK_START + 0.5, 33.6, s.measured_rate));
        assert_true(s.measured_rate > 30);
        assert_true(s.fill_rate > prev);
        if (t - (CLOCK_START + 0.5) < k)
            assert_true(s.fill_rate < 33.6);
        else
            assert_true(s.fill_rate > 33.6);
        prev = s.fill_rate;
    }
    /* 5 s of answers after the 32 ms wait. */
    assert_near(fake_clock(&clk), CLOCK_START + 0.5 + 0.032 + 5);
    assert_near(prev, 0.4 * pow(0.032 + 5 - k, 3) + 33.6);

    /* Throttled while limiting: W_max is the lower of the measured rate
     * and the fill rate, and the bucket shrinks with the rate. */
    assert_true(prev < s.measured_rate);
    ibs_aws_rate_limiter_update(&s, l, true);
    assert_near(s.last_max_rate, prev);
    assert_near(s.fill_rate, 0.7 * prev);
    assert_near(s.max_capacity, 0.7 * prev);
    assert_true(s.capacity <= s.max_capacity);

    ibs_aws_rate_limiter_free(l);
    ibs_aws_rate_limiter_free(NULL);
    pthread_mutex_destroy(&clk.mu);
}

/*
 * Virtual time for several threads: the clock stands still while any
 * worker runs and, once all of them sleep, jumps to the earliest wake-up.
 * Waits cost no real time, and the elapsed time is what the sleeps along
 * the critical path add up to, as on a real clock.
 */
struct sleeper {
    double wake;
    bool released;
};

struct vtime {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    double now;
    int running; /* workers not asleep */
    struct sleeper *asleep[16];
    size_t nasleep;
};

static void vtime_advance(struct vtime *v)
{
    double next;
    size_t kept = 0;

    if (v->running > 0 || v->nasleep == 0)
        return;
    next = v->asleep[0]->wake;
    for (size_t i = 1; i < v->nasleep; i++) {
        if (v->asleep[i]->wake < next)
            next = v->asleep[i]->wake;
    }
    if (next > v->now)
        v->now = next;
    for (size_t i = 0; i < v->nasleep; i++) {
        if (v->asleep[i]->wake <= v->now) {
            v->asleep[i]->released = true;
            v->running++;
        } else {
            v->asleep[kept++] = v->asleep[i];
        }
    }
    v->nasleep = kept;
    pthread_cond_broadcast(&v->cv);
}

static void vtime_sleep(void *ctx, long ms)
{
    struct vtime *v = ctx;
    struct sleeper me;

    pthread_mutex_lock(&v->mu);
    me.wake = v->now + (double)ms / 1000;
    me.released = false;
    v->asleep[v->nasleep++] = &me;
    v->running--;
    vtime_advance(v);
    while (!me.released)
        pthread_cond_wait(&v->cv, &v->mu);
    pthread_mutex_unlock(&v->mu);
}

static double vtime_clock(void *ctx)
{
    struct vtime *v = ctx;
    double now;

    pthread_mutex_lock(&v->mu);
    now = v->now;
    pthread_mutex_unlock(&v->mu);
    return now;
}

/* A worker leaves: time may move on for the others. */
static void vtime_done(struct vtime *v)
{
    pthread_mutex_lock(&v->mu);
    v->running--;
    vtime_advance(v);
    pthread_mutex_unlock(&v->mu);
}

static void vtime_init(struct vtime *v, int workers)
{
    memset(v, 0, sizeof(*v));
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cv, NULL);
    v->now = CLOCK_START;
    v->running = workers;
}

static void vtime_destroy(struct vtime *v)
{
    pthread_cond_destroy(&v->cv);
    pthread_mutex_destroy(&v->mu);
}

/* Grants counted against what the bucket can have earned by then. */
struct grant_check {
    struct vtime *vt;
    pthread_mutex_t mu;
    double t0, capacity0, rate;
    unsigned grants;
    unsigned violations;
    double worst; /* largest grants - allowed seen */
};

static void grant_check_count(struct grant_check *g)
{
    double now = vtime_clock(g->vt), allowed;

    pthread_mutex_lock(&g->mu);
    g->grants++;
    allowed = g->capacity0 + g->rate * (now - g->t0);
    if ((double)g->grants > allowed + 1e-6) {
        g->violations++;
        if ((double)g->grants - allowed > g->worst)
            g->worst = (double)g->grants - allowed;
    }
    pthread_mutex_unlock(&g->mu);
}

#define THREADS 8
#define ACQUIRES_PER_THREAD 25

struct limiter_worker {
    struct ibs_aws_rate_limiter *l;
    struct grant_check *check;
};

static void *limiter_work(void *arg)
{
    struct limiter_worker *w = arg;

    for (int i = 0; i < ACQUIRES_PER_THREAD; i++) {
        ibs_aws_rate_limiter_acquire(NULL, w->l);
        grant_check_count(w->check);
    }
    vtime_done(w->check->vt);
    return NULL;
}

static void test_rate_limiter_threads_share_one_bucket(void **state)
{
    struct vtime vt;
    struct grant_check check;
    struct ibs_aws_rate_limiter_options o;
    struct ibs_aws_rate_limiter *l = NULL;
    struct ibs_aws_rate_limiter_state s;
    struct limiter_worker w[THREADS];
    pthread_t t[THREADS];
    const unsigned total = THREADS * ACQUIRES_PER_THREAD;
    double elapsed;
    (void)state;

    vtime_init(&vt, 1);
    memset(&o, 0, sizeof(o));
    o.clock = vtime_clock;
    o.clock_ctx = &vt;
    o.sleep_ms = vtime_sleep;
    o.sleep_ctx = &vt;
    assert_int_equal(ibs_aws_rate_limiter_new(&l, &o), 0);
    /* 21 answers in half a second, then a throttle: 23.52 tokens/s. */
    for (int i = 0; i < 20; i++)
        ibs_aws_rate_limiter_update(NULL, l, false);
    vt.now += 0.5;
    ibs_aws_rate_limiter_update(NULL, l, false);
    ibs_aws_rate_limiter_update(&s, l, true);
    assert_near(s.fill_rate, 23.52);
    assert_near(s.capacity, 0.25);

    memset(&check, 0, sizeof(check));
    pthread_mutex_init(&check.mu, NULL);
    check.vt = &vt;
    check.t0 = vt.now;
    check.capacity0 = s.capacity;
    check.rate = s.fill_rate;
    vt.running = THREADS;
    for (int i = 0; i < THREADS; i++) {
        w[i].l = l;
        w[i].check = &check;
        assert_int_equal(pthread_create(&t[i], NULL, limiter_work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);

    if (check.violations)
        fail_msg("%u grants beyond capacity + rate x elapsed (worst by %.6f)", check.violations,
                 check.worst);
    assert_int_equal(check.grants, total);
    ibs_aws_rate_limiter_snapshot(&s, l);
    assert_int_equal(s.acquired, total);
    /* Nobody got a token for free, and the waiters kept the bucket busy:
     * the rate achieved is within 5% of the fill rate. */
    elapsed = vt.now - check.t0;
    assert_true((double)total <= check.capacity0 + check.rate * elapsed + 1e-6);
    assert_true((double)total >= 0.95 * check.rate * elapsed);
    assert_true(s.waits >= total - 1);
    ibs_aws_rate_limiter_free(l);
    pthread_mutex_destroy(&check.mu);
    vtime_destroy(&vt);
}

struct provider_worker {
    struct fixture *f;
    struct grant_check *check;
    unsigned throttled;
};

static void *provider_work(void *arg)
{
    struct provider_worker *w = arg;

    for (int i = 0; i < 4; i++) {
        struct ibs_value *out = NULL;
        if (call(&out, NULL, w->f, "GetComponent", get_component_input) == IBS_ETHROTTLED)
            w->throttled++;
        ibs_value_free(out);
        /* One attempt per call: it was sent when its token came. */
        grant_check_count(w->check);
    }
    vtime_done(w->check->vt);
    return NULL;
}

/* Eight workers throttled on every attempt through one provider: after the
 * first throttle, all of their attempts together keep to the one bucket's
 * 0.5 tokens/s, not 0.5/s each. */
static void test_adaptive_threads_share_the_provider_bucket(void **state)
{
    static const struct step steps[] = {{429, NULL, "{}", 0}};
    struct fixture f;
    struct vtime vt;
    struct grant_check check;
    struct provider_worker w[THREADS];
    pthread_t t[THREADS];
    struct ibs_aws_stats st;
    struct ibs_value *out = NULL;
    (void)state;

    fixture_start(&f, steps, 1);
    vtime_init(&vt, 1);
    f.cfg.max_attempts = 1;
    f.cfg.clock = vtime_clock;
    f.cfg.clock_ctx = &vt;
    f.cfg.sleep_ms = vtime_sleep;
    f.cfg.sleep_ctx = &vt;
    f.cfg.retry_mode = "adaptive";
    fixture_open(&f);
    assert_int_equal(call(&out, NULL, &f, "GetComponent", get_component_input), IBS_ETHROTTLED);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_near(st.fill_rate, 0.5);

    memset(&check, 0, sizeof(check));
    pthread_mutex_init(&check.mu, NULL);
    check.vt = &vt;
    check.t0 = vt.now;
    check.capacity0 = 0; /* the bucket was empty when the throttle came */
    check.rate = 0.5;
    vt.running = THREADS;
    for (int i = 0; i < THREADS; i++) {
        w[i].f = &f;
        w[i].check = &check;
        w[i].throttled = 0;
        assert_int_equal(pthread_create(&t[i], NULL, provider_work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].throttled, 4);
    }
    if (check.violations)
        fail_msg("%u attempts beyond capacity + rate x elapsed (worst by %.6f)", check.violations,
                 check.worst);
    assert_int_equal(ibs_aws_provider_stats(&st, f.prov), 0);
    assert_int_equal(st.attempts, 1 + THREADS * 4);
    assert_int_equal(st.throttles, 1 + THREADS * 4);
    /* Still the floor: every throttle takes min(measured, 0.5) * 0.7. */
    assert_near(st.fill_rate, 0.5);
    /* One token every 2 s, each attempt waiting for its own. */
    assert_near(vt.now - check.t0, 2.0 * THREADS * 4);
    assert_int_equal(st.rate_waits, THREADS * 4);
    assert_all_verified(&f, 1 + THREADS * 4);
    fixture_stop(&f);
    pthread_mutex_destroy(&check.mu);
    vtime_destroy(&vt);
}

/* ---- endpoints -------------------------------------------------------- */

struct endpoint_case {
    const char *region;
    const char *endpoint_url;
    int fips, dualstack;
    const char *env[4];
    const char *origin; /* NULL: an error is expected */
    const char *detail; /* host and signing region, or the error message */
};

static void test_endpoint_resolution(void **state)
{
    static const struct endpoint_case cases[] = {
        {"us-east-1",
         NULL,
         0,
         0,
         {NULL},
         "https://imagebuilder.us-east-1.amazonaws.com",
         "imagebuilder.us-east-1.amazonaws.com us-east-1 regional"},
        {"eu-west-3",
         NULL,
         1,
         0,
         {NULL},
         "https://imagebuilder-fips.eu-west-3.amazonaws.com",
         "imagebuilder-fips.eu-west-3.amazonaws.com eu-west-3 regional"},
        {"us-west-2",
         NULL,
         0,
         1,
         {NULL},
         "https://imagebuilder.us-west-2.api.aws",
         "imagebuilder.us-west-2.api.aws us-west-2 regional"},
        {"us-west-2",
         NULL,
         1,
         1,
         {NULL},
         "https://imagebuilder-fips.us-west-2.api.aws",
         "imagebuilder-fips.us-west-2.api.aws us-west-2 regional"},
        {"cn-north-1",
         NULL,
         0,
         0,
         {NULL},
         "https://imagebuilder.cn-north-1.amazonaws.com.cn",
         "imagebuilder.cn-north-1.amazonaws.com.cn cn-north-1 regional"},
        {"cn-northwest-1",
         NULL,
         0,
         1,
         {NULL},
         "https://imagebuilder.cn-northwest-1.api.amazonwebservices.com.cn",
         "imagebuilder.cn-northwest-1.api.amazonwebservices.com.cn cn-northwest-1 regional"},
        {"us-gov-west-1",
         NULL,
         1,
         0,
         {NULL},
         "https://imagebuilder.us-gov-west-1.amazonaws.com",
         "imagebuilder.us-gov-west-1.amazonaws.com us-gov-west-1 regional"},
        {"us-iso-east-1",
         NULL,
         0,
         0,
         {NULL},
         "https://imagebuilder.us-iso-east-1.c2s.ic.gov",
         "imagebuilder.us-iso-east-1.c2s.ic.gov us-iso-east-1 regional"},
        {"us-iso-east-1",
         NULL,
         0,
         1,
         {NULL},
         NULL,
         "dual-stack is enabled but partition aws-iso (region us-iso-east-1) does not support "
         "dual-stack"},
        {"fips-us-east-2",
         NULL,
         0,
         0,
         {NULL},
         "https://imagebuilder-fips.us-east-2.amazonaws.com",
         "imagebuilder-fips.us-east-2.amazonaws.com us-east-2 regional"},
        /* Environment. */
        {NULL,
         NULL,
         0,
         0,
         {"AWS_REGION=ap-south-1", "AWS_DEFAULT_REGION=eu-central-1", NULL},
         "https://imagebuilder.ap-south-1.amazonaws.com",
         "imagebuilder.ap-south-1.amazonaws.com ap-south-1 regional"},
        {NULL,
         NULL,
         0,
         0,
         {"AWS_DEFAULT_REGION=eu-central-1", NULL},
         "https://imagebuilder.eu-central-1.amazonaws.com",
         "imagebuilder.eu-central-1.amazonaws.com eu-central-1 regional"},
        {"us-east-1",
         NULL,
         0,
         0,
         {"AWS_USE_FIPS_ENDPOINT=true", NULL},
         "https://imagebuilder-fips.us-east-1.amazonaws.com",
         "imagebuilder-fips.us-east-1.amazonaws.com us-east-1 regional"},
        {"us-east-1",
         NULL,
         -1,
         0,
         {"AWS_USE_FIPS_ENDPOINT=true", NULL},
         "https://imagebuilder.us-east-1.amazonaws.com",
         "imagebuilder.us-east-1.amazonaws.com us-east-1 regional"},
        {"us-east-1",
         NULL,
         0,
         0,
         {"AWS_USE_DUALSTACK_ENDPOINT=TRUE", NULL},
         "https://imagebuilder.us-east-1.api.aws",
         "imagebuilder.us-east-1.api.aws us-east-1 regional"},
        {"us-east-1",
         NULL,
         0,
         0,
         {"AWS_USE_FIPS_ENDPOINT=yes", NULL},
         NULL,
         "AWS_USE_FIPS_ENDPOINT: expected true or false, not 'yes'"},
        {"us-east-1",
         NULL,
         0,
         0,
         {"AWS_ENDPOINT_URL=http://general:1", "AWS_ENDPOINT_URL_IMAGEBUILDER=http://ib:2/", NULL},
         "http://ib:2",
         "ib:2 us-east-1 AWS_ENDPOINT_URL_IMAGEBUILDER"},
        {"us-east-1",
         NULL,
         0,
         0,
         {"AWS_ENDPOINT_URL=HTTP://General:1/base//", NULL},
         "http://general:1",
         "general:1 us-east-1 AWS_ENDPOINT_URL /base"},
        {"us-east-1",
         "http://127.0.0.1:4566",
         0,
         0,
         {"AWS_ENDPOINT_URL=http://general:1", NULL},
         "http://127.0.0.1:4566",
         "127.0.0.1:4566 us-east-1 --endpoint-url"},
        {"us-east-1",
         NULL,
         0,
         0,
         {"AWS_ENDPOINT_URL=http://general:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true", NULL},
         "https://imagebuilder.us-east-1.amazonaws.com",
         "imagebuilder.us-east-1.amazonaws.com us-east-1 regional"},
        {"us-east-1",
         "http://[::1]:8080/",
         0,
         0,
         {NULL},
         "http://[::1]:8080",
         "[::1]:8080 us-east-1 --endpoint-url"},
        /* Errors. */
        {NULL,
         NULL,
         0,
         0,
         {NULL},
         NULL,
         "no AWS region configured: use --region, or set AWS_REGION or AWS_DEFAULT_REGION (or "
         "the region of the AWS profile)"},
        {"us east 1", NULL, 0, 0, {NULL}, NULL, "invalid AWS region 'us east 1'"},
        {"us-east-1",
         "http://localhost:1",
         1,
         0,
         {NULL},
         NULL,
         "FIPS endpoints cannot be combined with an endpoint URL (--endpoint-url)"},
        {"us-east-1",
         NULL,
         0,
         0,
         {"AWS_ENDPOINT_URL=http://x:1", "AWS_USE_DUALSTACK_ENDPOINT=true", NULL},
         NULL,
         "dual-stack endpoints cannot be combined with an endpoint URL (AWS_ENDPOINT_URL)"},
        {"us-east-1",
         "ftp://host",
         0,
         0,
         {NULL},
         NULL,
         "--endpoint-url: invalid endpoint URL 'ftp://host' (expected "
         "http(s)://host[:port][/path])"},
        {"us-east-1",
         "https://user:pw@host",
         0,
         0,
         {NULL},
         NULL,
         "--endpoint-url: invalid endpoint URL 'https://user:pw@host' (expected "
         "http(s)://host[:port][/path])"},
        {"us-east-1",
         "https://host/x?y=1",
         0,
         0,
         {NULL},
         NULL,
         "--endpoint-url: invalid endpoint URL 'https://host/x?y=1' (expected "
         "http(s)://host[:port][/path])"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct endpoint_case *c = &cases[i];
        struct ibs_aws_config cfg;
        struct ibs_aws_endpoint e;
        char detail[256];
        int rc;

        memset(&cfg, 0, sizeof(cfg));
        cfg.region = c->region;
        cfg.endpoint_url = c->endpoint_url;
        cfg.use_fips = c->fips;
        cfg.use_dualstack = c->dualstack;
        cfg.getenv = fake_env;
        cfg.env_ctx = (void *)c->env;
        rc = ibs_aws_endpoint_resolve(&e, &cfg);
        if (!c->origin) {
            if (rc != IBS_EINVALID)
                fail_msg("case %zu: expected an error, got %d", i, rc);
            assert_string_equal(ibs_error_last()->message, c->detail);
        } else {
            if (rc != 0)
                fail_msg("case %zu: %s", i, ibs_error_last()->message);
            assert_string_equal(e.origin, c->origin);
            snprintf(detail, sizeof(detail), "%s %s %s%s%s", e.host, e.region, e.source,
                     *e.base_path ? " " : "", e.base_path);
            assert_string_equal(detail, c->detail);
        }
        ibs_aws_endpoint_release(&e);
    }
}

static void test_provider_needs_credentials_and_region(void **state)
{
    struct ibs_aws_config cfg;
    struct ibs_provider *p = NULL;
    struct ibs_aws_stats st;
    (void)state;

    memset(&cfg, 0, sizeof(cfg));
    cfg.region = "us-east-1";
    cfg.getenv = fake_env;
    cfg.env_ctx = (void *)no_env;
    assert_int_equal(ibs_aws_provider_new(&p, &cfg), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, "aws provider: no credentials source");
    cfg.get_credentials = failing_credentials;
    cfg.region = NULL;
    assert_int_equal(ibs_aws_provider_new(&p, &cfg), IBS_EINVALID);
    assert_null(p);
    cfg.region = "eu-west-1";
    assert_int_equal(ibs_aws_provider_new(&p, &cfg), 0);
    assert_string_equal(p->region, "eu-west-1");
    assert_int_equal(ibs_aws_provider_stats(&st, p), 0);
    assert_int_equal(st.retry_quota, IBS_AWS_RETRY_QUOTA);
    ibs_provider_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_component_binding),
        cmocka_unit_test(test_get_component_binds_the_query),
        cmocka_unit_test(test_tag_resource_encodes_the_arn_in_the_path),
        cmocka_unit_test(test_untag_resource_repeats_tag_keys),
        cmocka_unit_test(test_list_components_pagination_binding),
        cmocka_unit_test(test_custom_endpoint_path_prefix_is_signed),
        cmocka_unit_test(test_invalid_requests_are_not_sent),
        cmocka_unit_test(test_error_parsing_from_each_source),
        cmocka_unit_test(test_error_classification),
        cmocka_unit_test(test_throttled_twice_then_success),
        cmocka_unit_test(test_server_error_then_success),
        cmocka_unit_test(test_client_errors_are_not_retried),
        cmocka_unit_test(test_exhausted_attempts_report_the_last_error),
        cmocka_unit_test(test_max_attempts_from_the_environment),
        cmocka_unit_test(test_retries_keep_the_client_token),
        cmocka_unit_test(test_retry_quota_exhaustion),
        cmocka_unit_test(test_connection_failures_cost_more_quota),
        cmocka_unit_test(test_dropped_connection_is_retried),
        cmocka_unit_test(test_timeout_is_retried),
        cmocka_unit_test(test_credential_failures_are_reported),
        cmocka_unit_test(test_no_secrets_in_logs_or_errors),
        cmocka_unit_test(test_parallel_calls_share_one_provider),
        cmocka_unit_test(test_retry_mode_selection),
        cmocka_unit_test(test_adaptive_throttles_wait_for_tokens),
        cmocka_unit_test(test_adaptive_rate_drops_and_recovers),
        cmocka_unit_test(test_standard_mode_does_not_throttle),
        cmocka_unit_test(test_rate_limiter_follows_cubic),
        cmocka_unit_test(test_rate_limiter_threads_share_one_bucket),
        cmocka_unit_test(test_adaptive_threads_share_the_provider_bucket),
        cmocka_unit_test(test_endpoint_resolution),
        cmocka_unit_test(test_provider_needs_credentials_and_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
