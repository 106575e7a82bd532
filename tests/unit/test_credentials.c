/* Unit tests of providers/aws/credentials*.c and sts.c: every provider of the
 * chain against loopback fakes (STS, container endpoint, IMDS) served by
 * libmicrohttpd, credential_process with real shell commands, caching and
 * refresh with an injected clock, concurrent refresh from 8 threads, view
 * lifetimes, and that no secret ever reaches an error message.
 * ibs-test-libs: ibs_providers ibs_api ibs_util microhttpd */
#define _XOPEN_SOURCE 700 /* nftw() */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "providers/aws/credentials.h"
#include "providers/aws/sigv4.h"
#include "util/buf.h"
#include "util/error.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* 2024-05-01T10:20:30Z */
#define T0 1714558830
#define MAX_VARS 48
#define MAX_LOG 64
#define MAX_HDRS 40

/* ---- injected environment and clock ----------------------------------- */

struct env {
    const char *vars[MAX_VARS][2];
};

static const char *env_get(void *ctx, const char *name)
{
    const struct env *e = ctx;
    for (size_t i = 0; i < MAX_VARS && e->vars[i][0]; i++)
        if (strcmp(e->vars[i][0], name) == 0)
            return e->vars[i][1];
    return NULL;
}

static void env_set(struct env *e, const char *name, const char *value)
{
    for (size_t i = 0; i < MAX_VARS; i++) {
        if (!e->vars[i][0] || strcmp(e->vars[i][0], name) == 0) {
            e->vars[i][0] = name;
            e->vars[i][1] = value;
            return;
        }
    }
    fail_msg("too many variables");
}

static _Atomic int64_t fake_now = T0;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&fake_now);
}

/* ---- a loopback HTTP server ------------------------------------------ */

struct req {
    char method[16];
    char url[512];
    char *body;
    size_t body_len;
    size_t nh;
    char *hname[MAX_HDRS], *hvalue[MAX_HDRS];
};

struct reply {
    int status;
    struct ibs_buf body;
    int delay_ms;
};

struct srv;
typedef void (*route_fn)(struct srv *s, const struct req *r, struct reply *out);

struct srv {
    struct MHD_Daemon *d;
    int port;
    char base[64]; /* "http://127.0.0.1:PORT" */
    route_fn route;
    pthread_mutex_t mu;
    struct req log[MAX_LOG];
    size_t n;
};

struct conn_state {
    struct ibs_buf body;
};

static const char *req_header(const struct req *r, const char *name)
{
    for (size_t i = 0; i < r->nh; i++)
        if (strcasecmp(r->hname[i], name) == 0)
            return r->hvalue[i];
    return NULL;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct req *r = cls;
    (void)kind;
    if (r->nh < MAX_HDRS) {
        r->hname[r->nh] = strdup(key);
        r->hvalue[r->nh] = strdup(value ? value : "");
        r->nh++;
    }
    return MHD_YES;
}

static void req_free(struct req *r)
{
    for (size_t i = 0; i < r->nh; i++) {
        free(r->hname[i]);
        free(r->hvalue[i]);
    }
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct srv *s = cls;
    struct conn_state *st = *con_cls;
    struct reply rep = {200, IBS_BUF_INIT, 0};
    struct MHD_Response *resp;
    struct req r;
    enum MHD_Result ok;
    (void)version;

    if (!st) {
        st = calloc(1, sizeof(*st));
        ibs_buf_init(&st->body);
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_data_size) {
        ibs_buf_put(&st->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    memset(&r, 0, sizeof(r));
    snprintf(r.method, sizeof(r.method), "%s", method);
    snprintf(r.url, sizeof(r.url), "%s", url);
    r.body = strdup(st->body.ptr);
    r.body_len = st->body.size;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &r);
    s->route(s, &r, &rep);
    pthread_mutex_lock(&s->mu);
    if (s->n < MAX_LOG)
        s->log[s->n++] = r;
    else
        req_free(&r);
    pthread_mutex_unlock(&s->mu);
    if (rep.delay_ms)
        sleep_ms(rep.delay_ms);
    resp = MHD_create_response_from_buffer(rep.body.size, rep.body.ptr, MHD_RESPMEM_MUST_COPY);
    ok = MHD_queue_response(conn, (unsigned)rep.status, resp);
    MHD_destroy_response(resp);
    ibs_buf_release(&rep.body);
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_state *st = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (st) {
        ibs_buf_release(&st->body);
        free(st);
    }
    *con_cls = NULL;
}

static void srv_start(struct srv *s, route_fn route)
{
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;

    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->route = route;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    assert_non_null(s->d);
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    s->port = info->port;
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
}

static void srv_stop(struct srv *s)
{
    if (s->d)
        MHD_stop_daemon(s->d);
    for (size_t i = 0; i < s->n; i++)
        req_free(&s->log[i]);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof(*s));
}

static size_t srv_count(struct srv *s)
{
    size_t n;
    pthread_mutex_lock(&s->mu);
    n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- form bodies ------------------------------------------------------ */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* The decoded value of `key` in an x-www-form-urlencoded body, or NULL. */
static char *form_get(const char *body, const char *key)
{
    size_t klen = strlen(key);
    const char *p = body;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            char *out = malloc(n);
            size_t o = 0;
            for (size_t i = klen + 1; i < n; i++) {
                if (p[i] == '%' && i + 2 < n + 1 && hexval(p[i + 1]) >= 0 &&
                    hexval(p[i + 2]) >= 0) {
                    out[o++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
                    i += 2;
                } else {
                    out[o++] = p[i] == '+' ? ' ' : p[i];
                }
            }
            out[o] = '\0';
            return out;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

static void assert_form(const char *body, const char *key, const char *expected)
{
    char *v = form_get(body, key);
    if (!expected) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, expected);
    free(v);
}

/* ---- fake STS --------------------------------------------------------- */

enum sts_mode {
    STS_OK,
    STS_BAD_XML,
    STS_NO_CREDENTIALS,
    STS_INVALID_TOKEN,
    STS_ECHO_SECRET, /* an error message quoting the token (never trust servers) */
};

static struct {
    enum sts_mode mode;
    const char *region; /* expected signing region */
    int issued;
    /* access key -> secret, for signature verification */
    char keys[16][2][64];
    size_t nkeys;
    pthread_mutex_t mu;
} sts = {STS_OK, "us-east-1", 0, {{{0}}}, 0, PTHREAD_MUTEX_INITIALIZER};

static void sts_add_key(const char *akid, const char *secret)
{
    pthread_mutex_lock(&sts.mu);
    assert_true(sts.nkeys < 16);
    snprintf(sts.keys[sts.nkeys][0], 64, "%s", akid);
    snprintf(sts.keys[sts.nkeys][1], 64, "%s", secret);
    sts.nkeys++;
    pthread_mutex_unlock(&sts.mu);
}

static int sts_secret(struct ibs_buf *out, const char *akid, void *ctx)
{
    int rc = IBS_ENOTFOUND;
    (void)ctx;
    pthread_mutex_lock(&sts.mu);
    for (size_t i = 0; i < sts.nkeys; i++) {
        if (strcmp(sts.keys[i][0], akid) == 0) {
            ibs_buf_puts(out, sts.keys[i][1]);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&sts.mu);
    return rc;
}

static void sts_xml_error(struct reply *out, int status, const char *code, const char *msg)
{
    out->status = status;
    ibs_buf_printf(&out->body,
                   "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                   "  <Error>\n    <Type>Sender</Type>\n    <Code>%s</Code>\n"
                   "    <Message>%s</Message>\n  </Error>\n"
                   "  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
                   "</ErrorResponse>\n",
                   code, msg);
}

static void route_sts(struct srv *s, const struct req *r, struct reply *out)
{
    char *action = form_get(r->body, "Action");
    char *token = form_get(r->body, "WebIdentityToken");
    char exp[IBS_AWS_TIME_LEN];
    int n;
    (void)s;

    if (!action || strcmp(r->method, "POST") != 0) {
        sts_xml_error(out, 400, "InvalidAction", "bad request");
        goto done;
    }
    if (strcmp(action, "AssumeRole") == 0) {
        struct ibs_sigv4_header h[MAX_HDRS];
        struct ibs_sigv4_request sreq;
        struct ibs_sigv4_verifier v;
        struct ibs_sigv4_verdict verdict;
        memset(&sreq, 0, sizeof(sreq));
        memset(&v, 0, sizeof(v));
        for (size_t i = 0; i < r->nh; i++)
            h[i] = (struct ibs_sigv4_header){r->hname[i], r->hvalue[i]};
        sreq.method = r->method;
        sreq.path = r->url;
        sreq.headers = h;
        sreq.nheaders = r->nh;
        sreq.payload = r->body;
        sreq.payload_len = r->body_len;
        v.region = sts.region;
        v.service = "sts";
        v.now = atomic_load(&fake_now);
        v.normalize_path = true;
        v.double_encode_path = true;
        v.get_secret = sts_secret;
        if (ibs_sigv4_verify(&verdict, &sreq, &v) != 0) {
            /* STS speaks the Query protocol's names for these */
            const char *code = verdict.aws_code;
            if (strcmp(code, "InvalidSignatureException") == 0)
                code = "SignatureDoesNotMatch";
            else if (strcmp(code, "UnrecognizedClientException") == 0)
                code = "InvalidClientTokenId";
            char msg[1024];
            const char *tok = req_header(r, "X-Amz-Security-Token");
            /* some AWS endpoints quote the canonical request, token included */
            snprintf(msg, sizeof(msg), "%s%s%s", ibs_error_last()->message,
                     sts.mode == STS_ECHO_SECRET ? " x-amz-security-token:" : "",
                     sts.mode == STS_ECHO_SECRET && tok ? tok : "");
            sts_xml_error(out, verdict.status, code, msg);
            goto done;
        }
    } else if (strcmp(action, "AssumeRoleWithWebIdentity") == 0) {
        if (req_header(r, "Authorization")) {
            sts_xml_error(out, 400, "InvalidRequest", "web identity calls are not signed");
            goto done;
        }
    } else {
        sts_xml_error(out, 400, "InvalidAction", action);
        goto done;
    }
    switch (sts.mode) {
    case STS_BAD_XML:
        ibs_buf_puts(&out->body, "<AssumeRoleResponse><AssumeRoleResult><Credentials>");
        goto done;
    case STS_NO_CREDENTIALS:
        ibs_buf_printf(&out->body, "<%sResponse><%sResult/></%sResponse>", action, action, action);
        goto done;
    case STS_INVALID_TOKEN:
        sts_xml_error(out, 400, "InvalidIdentityToken",
                      "Couldn't retrieve verification key from your identity provider");
        goto done;
    case STS_ECHO_SECRET:
        sts_xml_error(out, 400, "InvalidIdentityToken", token ? token : "none");
        goto done;
    case STS_OK:
        break;
    }
    pthread_mutex_lock(&sts.mu);
    n = ++sts.issued;
    pthread_mutex_unlock(&sts.mu);
    {
        char akid[64], secret[64];
        snprintf(akid, sizeof(akid), "ASIASTS%d", n);
        snprintf(secret, sizeof(secret), "STSSECRET%d", n);
        sts_add_key(akid, secret);
        ibs_aws_credentials_format_time(exp, atomic_load(&fake_now) + 3600);
        ibs_buf_printf(&out->body,
                       "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                       "  <%sResult>\n    <Credentials>\n"
                       "      <AccessKeyId>%s</AccessKeyId>\n"
                       "      <SecretAccessKey>%s</SecretAccessKey>\n"
                       "      <SessionToken>STSTOKEN%d</SessionToken>\n"
                       "      <Expiration>%s</Expiration>\n"
                       "    </Credentials>\n  </%sResult>\n"
                       "  <ResponseMetadata><RequestId>r-%d</RequestId></ResponseMetadata>\n"
                       "</%sResponse>\n",
                       action, action, akid, secret, n, exp, action, n, action);
    }
done:
    free(action);
    free(token);
}

/* ---- fake container endpoint and IMDS --------------------------------- */

enum json_mode {
    JSON_OK,
    JSON_BAD,
    JSON_EXPIRED,
    JSON_ERROR_403,
    JSON_NO_SECRET,
};

static struct {
    enum json_mode mode;
    int issued;
    int delay_ms;
    bool imds_v1;      /* IMDS refuses the token PUT (IMDSv1 only) */
    bool imds_no_role; /* no instance profile */
} fake = {JSON_OK, 0, 0, false, false};

static void json_creds(struct reply *out, const char *token_key, bool imds)
{
    char exp[IBS_AWS_TIME_LEN];
    int n = ++fake.issued;
    ibs_aws_credentials_format_time(
        exp, fake.mode == JSON_EXPIRED ? T0 - 60 : atomic_load(&fake_now) + 21600);
    switch (fake.mode) {
    case JSON_BAD:
        ibs_buf_puts(&out->body, "{\"AccessKeyId\": \"AKIDJSON\", \"SecretAccessKey\": SECRETX}");
        return;
    case JSON_ERROR_403:
        out->status = 403;
        ibs_buf_puts(&out->body, "{\"code\": \"AccessDenied\", \"message\": \"Unauthorized\"}");
        return;
    case JSON_NO_SECRET:
        ibs_buf_puts(&out->body, "{\"AccessKeyId\": \"AKIDJSON\"}");
        return;
    default:
        break;
    }
    ibs_buf_printf(&out->body,
                   "{%s\"AccessKeyId\": \"ASIAJSON%d\", \"SecretAccessKey\": \"JSONSECRET%d\", "
                   "\"%s\": \"JSONTOKEN%d\", \"Expiration\": \"%s\"}",
                   imds ? "\"Code\": \"Success\", \"Type\": \"AWS-HMAC\", " : "", n, n, token_key,
                   n, exp);
}

static void route_container(struct srv *s, const struct req *r, struct reply *out)
{
    (void)s;
    out->delay_ms = fake.delay_ms;
    if (strcmp(r->method, "GET") != 0 || strcmp(r->url, "/v1/credentials") != 0) {
        out->status = 404;
        return;
    }
    json_creds(out, "Token", false);
}

#define IMDS_TOKEN "AQAEAImdsSessionToken=="

static void route_imds(struct srv *s, const struct req *r, struct reply *out)
{
    const char *tok = req_header(r, "X-aws-ec2-metadata-token");
    (void)s;
    if (fake.imds_v1) {
        if (strcmp(r->url, "/latest/api/token") == 0) {
            out->status = 405;
            return;
        }
        if (tok) {
            out->status = 400;
            return;
        }
        tok = IMDS_TOKEN;
    }
    if (strcmp(r->url, "/latest/api/token") == 0) {
        const char *ttl = req_header(r, "X-aws-ec2-metadata-token-ttl-seconds");
        if (strcmp(r->method, "PUT") != 0 || !ttl || strcmp(ttl, "21600") != 0) {
            out->status = 400;
            return;
        }
        ibs_buf_puts(&out->body, IMDS_TOKEN);
        return;
    }
    if (!tok || strcmp(tok, IMDS_TOKEN) != 0 || strcmp(r->method, "GET") != 0) {
        out->status = 401;
        return;
    }
    if (strcmp(r->url, "/latest/meta-data/iam/security-credentials/") == 0) {
        if (fake.imds_no_role) {
            out->status = 404;
            return;
        }
        ibs_buf_puts(&out->body, "ibsync-instance-role\n");
        return;
    }
    if (strcmp(r->url, "/latest/meta-data/iam/security-credentials/ibsync-instance-role") == 0) {
        json_creds(out, "Token", true);
        return;
    }
    out->status = 404;
}

/* ---- per-test fixture ------------------------------------------------- */

struct fixture {
    char dir[64];
    char path[256]; /* scratch for fx_path() */
    struct env env;
    struct ibs_aws_chain_options opts;
    struct srv sts_srv;
    char sts_url[64];
};

static struct fixture fx;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static const char *fx_path(const char *name)
{
    snprintf(fx.path, sizeof(fx.path), "%s/%s", fx.dir, name);
    return fx.path;
}

static void fx_write(const char *name, const char *text)
{
    char tmp[300];
    FILE *f;
    const char *path = fx_path(name);
    char *slash;

    snprintf(tmp, sizeof(tmp), "%s", path);
    slash = strrchr(tmp, '/');
    *slash = '\0';
    mkdir(tmp, 0700);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    /* rename: a reader never sees a half-written token file */
    assert_int_equal(rename(tmp, path), 0);
}

static int fx_setup(void **state)
{
    (void)state;
    memset(&fx.env, 0, sizeof(fx.env));
    memset(&fx.opts, 0, sizeof(fx.opts));
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/ibs-credtest-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    atomic_store(&fake_now, T0);
    env_set(&fx.env, "HOME", fx.dir);
    env_set(&fx.env, "AWS_EC2_METADATA_DISABLED", "true");
    fx.opts.config.getenv = env_get;
    fx.opts.config.env_ctx = &fx.env;
    fx.opts.clock = fake_clock;
    fx.opts.http.connect_timeout_ms = 2000;
    fx.opts.http.timeout_ms = 5000;
    fx.opts.imds_timeout_ms = 1000;
    sts.mode = STS_OK;
    sts.region = "us-east-1";
    sts.issued = 0;
    sts.nkeys = 0;
    fake.mode = JSON_OK;
    fake.issued = 0;
    fake.delay_ms = 0;
    fake.imds_v1 = false;
    fake.imds_no_role = false;
    srv_start(&fx.sts_srv, route_sts);
    snprintf(fx.sts_url, sizeof(fx.sts_url), "%s", fx.sts_srv.base);
    env_set(&fx.env, "AWS_ENDPOINT_URL_STS", fx.sts_url);
    return 0;
}

static int fx_teardown(void **state)
{
    (void)state;
    srv_stop(&fx.sts_srv);
    ibs_aws_credentials_thread_release();
    nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Resolves once through a new chain; *out is the copy. */
static int resolve(struct ibs_aws_credentials *out)
{
    struct ibs_aws_credentials_chain *chain = NULL;
    int rc = ibs_aws_credentials_chain_new(&chain, &fx.opts);
    ibs_aws_credentials_init(out);
    if (rc == 0)
        rc = ibs_aws_credentials_chain_copy(out, chain);
    ibs_aws_credentials_chain_free(chain);
    return rc;
}

static void assert_error(int rc, int code, const char *message)
{
    assert_int_equal(rc, code);
    assert_string_equal(ibs_error_last()->message, message);
}

/* ---- values, time, URLs, redaction ------------------------------------ */

static void test_time_parse_and_format(void **state)
{
    int64_t t;
    char buf[IBS_AWS_TIME_LEN];
    (void)state;
    assert_int_equal(ibs_aws_credentials_parse_time(&t, "2024-05-01T10:20:30Z"), 0);
    assert_int_equal(t, T0);
    assert_int_equal(ibs_aws_credentials_parse_time(&t, "2024-05-01T10:20:30.123456Z"), 0);
    assert_int_equal(t, T0);
    assert_int_equal(ibs_aws_credentials_parse_time(&t, "2024-05-01T12:20:30+02:00"), 0);
    assert_int_equal(t, T0);
    assert_int_equal(ibs_aws_credentials_parse_time(&t, "2024-05-01T05:20:30-0500"), 0);
    assert_int_equal(t, T0);
    assert_int_equal(ibs_aws_credentials_parse_time(&t, "1970-01-01T00:00:00Z"), 0);
    assert_int_equal(t, 0);
    assert_int_equal(ibs_aws_credentials_parse_time(&t, "2000-02-29T00:00:00Z"), 0);
    assert_int_equal(t, 951782400);
    assert_error(ibs_aws_credentials_parse_time(&t, "2024-05-01 10:20"), IBS_EINVALID,
                 "invalid time \"2024-05-01 10:20\" (expected 2024-05-01T10:20:30Z)");
    assert_int_equal(ibs_aws_credentials_parse_time(&t, "2024-13-01T10:20:30Z"), IBS_EINVALID);
    assert_int_equal(ibs_aws_credentials_parse_time(&t, "2024-05-01T10:20:30"), IBS_EINVALID);
    assert_int_equal(ibs_aws_credentials_parse_time(&t, "2024-05-01T10:20:30Zjunk"), IBS_EINVALID);
    ibs_aws_credentials_format_time(buf, T0);
    assert_string_equal(buf, "2024-05-01T10:20:30Z");
}

static void test_url_parse(void **state)
{
    struct ibs_aws_credentials_url u;
    (void)state;
    assert_int_equal(ibs_aws_credentials_url_parse(&u, "HTTP://Example.COM:8080/a/b?x=1#frag"), 0);
    assert_string_equal(u.scheme, "http");
    assert_string_equal(u.host, "example.com");
    assert_string_equal(u.authority, "example.com:8080");
    assert_string_equal(u.path, "/a/b?x=1");
    assert_int_equal(u.port, 8080);
    ibs_aws_credentials_url_release(&u);
    assert_int_equal(ibs_aws_credentials_url_parse(&u, "https://[fd00:ec2::23]"), 0);
    assert_string_equal(u.host, "fd00:ec2::23");
    assert_string_equal(u.path, "/");
    assert_int_equal(u.port, 443);
    ibs_aws_credentials_url_release(&u);
    assert_error(ibs_aws_credentials_url_parse(&u, "ftp://x/"), IBS_EINVALID,
                 "URL \"ftp://x/\": expected http:// or https://");
    assert_error(ibs_aws_credentials_url_parse(&u, "http://user:pw@host/"), IBS_EINVALID,
                 "URL with user information is not allowed");
    assert_error(ibs_aws_credentials_url_parse(&u, "http://host:99999/"), IBS_EINVALID,
                 "URL \"http://host:99999/\": invalid port");
    assert_error(ibs_aws_credentials_url_parse(&u, "http:///x"), IBS_EINVALID,
                 "URL \"http:///x\" has no host");
}

static void test_redact_error(void **state)
{
    const char *secrets[] = {"SECRETVALUE", NULL, "ab", "SECRETVALUE2"};
    (void)state;
    ibs_error_set(IBS_EAUTH, "x SECRETVALUE2 y SECRETVALUE ab");
    ibs_aws_credentials_redact_error(secrets, 4);
    assert_error(ibs_error_last()->code, IBS_EAUTH, "x *** y *** ab");
}

/* ---- 1. environment ---------------------------------------------------- */

static void test_env_credentials(void **state)
{
    struct ibs_aws_credentials c;
    (void)state;
    env_set(&fx.env, "AWS_ACCESS_KEY_ID", "AKIDTESTENV");
    env_set(&fx.env, "AWS_SECRET_ACCESS_KEY", "SECRETENV");
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "AKIDTESTENV");
    assert_string_equal(c.secret_access_key, "SECRETENV");
    assert_null(c.session_token);
    assert_int_equal(c.expiration, 0);
    assert_string_equal(c.source, "env");
    ibs_aws_credentials_release(&c);

    env_set(&fx.env, "AWS_SESSION_TOKEN", "TOKENENV");
    env_set(&fx.env, "AWS_CREDENTIAL_EXPIRATION", "2024-05-01T11:20:30Z");
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.session_token, "TOKENENV");
    assert_int_equal(c.expiration, T0 + 3600);
    ibs_aws_credentials_release(&c);

    /* legacy names */
    env_set(&fx.env, "AWS_ACCESS_KEY_ID", "");
    env_set(&fx.env, "AWS_SECRET_ACCESS_KEY", "");
    env_set(&fx.env, "AWS_SESSION_TOKEN", "");
    env_set(&fx.env, "AWS_CREDENTIAL_EXPIRATION", "");
    env_set(&fx.env, "AWS_ACCESS_KEY", "AKIDTESTLEGACY");
    env_set(&fx.env, "AWS_SECRET_KEY", "SECRETLEGACY");
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "AKIDTESTLEGACY");
    ibs_aws_credentials_release(&c);
}

static void test_env_partial_and_profile_override(void **state)
{
    struct ibs_aws_credentials c;
    (void)state;
    env_set(&fx.env, "AWS_ACCESS_KEY_ID", "AKIDTESTENV");
    assert_error(resolve(&c), IBS_EAUTH,
                 "environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");

    /* --profile beats exported keys (AWS CLI); AWS_PROFILE does not */
    env_set(&fx.env, "AWS_SECRET_ACCESS_KEY", "SECRETENV");
    fx_write(".aws/credentials", "[dev]\naws_access_key_id = AKIDTESTDEV\n"
                                 "aws_secret_access_key = SECRETDEV\n");
    env_set(&fx.env, "AWS_PROFILE", "dev");
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "AKIDTESTENV");
    ibs_aws_credentials_release(&c);
    fx.opts.config.profile = "dev";
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "AKIDTESTDEV");
    assert_string_equal(c.source, "profile:dev");
    ibs_aws_credentials_release(&c);
}

/* ---- 2. profiles -------------------------------------------------------- */

static void test_profile_static_precedence(void **state)
{
    struct ibs_aws_credentials c;
    (void)state;
    fx_write(".aws/config", "[default]\nregion = eu-west-1\n"
                            "aws_access_key_id = AKIDTESTCONFIG\n"
                            "aws_secret_access_key = SECRETCONFIG\n"
                            "[profile only-config]\n"
                            "aws_access_key_id = AKIDTESTONLYCONFIG\n"
                            "aws_secret_access_key = SECRETONLYCONFIG\n"
                            "aws_session_token = TOKENONLYCONFIG\n");
    fx_write(".aws/credentials", "[default]\naws_access_key_id = AKIDTESTCREDS\n"
                                 "aws_secret_access_key = SECRETCREDS\n");
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "AKIDTESTCREDS");
    assert_string_equal(c.secret_access_key, "SECRETCREDS");
    assert_string_equal(c.source, "profile:default");
    ibs_aws_credentials_release(&c);

    fx.opts.config.profile = "only-config";
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "AKIDTESTONLYCONFIG");
    assert_string_equal(c.session_token, "TOKENONLYCONFIG");
    ibs_aws_credentials_release(&c);

    /* a half-configured profile is an error, not a fall-through */
    fx_write(".aws/credentials", "[default]\n\n# comment\naws_access_key_id = AKIDTESTHALF\n");
    fx_write(".aws/config", "[default]\n");
    fx.opts.config.profile = NULL;
    assert_error(resolve(&c), IBS_EAUTH,
                 "~/.aws/credentials:4: profile \"default\" sets aws_access_key_id but not "
                 "aws_secret_access_key");
}

static void test_profile_files_from_options(void **state)
{
    struct ibs_aws_credentials c;
    struct ibs_aws_credentials_chain *chain = NULL;
    (void)state;
    fx_write("elsewhere/creds", "[ci]\naws_access_key_id = AKIDTESTCI\n"
                                "aws_secret_access_key = SECRETCI\n");
    fx_write("elsewhere/conf", "[profile ci]\nregion = us-west-2\n");
    fx.opts.config.credentials_file = fx_path("elsewhere/creds");
    env_set(&fx.env, "AWS_CONFIG_FILE", "~/elsewhere/conf");
    env_set(&fx.env, "AWS_PROFILE", "ci");
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "AKIDTESTCI");
    ibs_aws_credentials_release(&c);

    /* a malformed file fails chain creation with file and line */
    fx_write("elsewhere/conf", "[profile ci]\nregion us-west-2\n");
    assert_error(ibs_aws_credentials_chain_new(&chain, &fx.opts), IBS_EINVALID,
                 "~/elsewhere/conf:2: expected 'key = value'");
    assert_null(chain);
}

/* ---- assume role ------------------------------------------------------ */

static void test_assume_role_source_profile(void **state)
{
    struct ibs_aws_credentials c;
    const struct req *r;
    (void)state;
    sts_add_key("AKIDTESTBASE", "SECRETBASE");
    sts.region = "eu-west-1";
    fx_write(".aws/config", "[profile base]\nregion = us-east-2\n"
                            "[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/Admin\n"
                            "source_profile = base\nrole_session_name = ibsync-test\n"
                            "external_id = ext-42\nduration_seconds = 1800\nregion = eu-west-1\n"
                            "[profile deploy]\nrole_arn = arn:aws:iam::210987654321:role/Deploy\n"
                            "source_profile = admin\nregion = eu-west-1\n");
    fx_write(".aws/credentials", "[base]\naws_access_key_id = AKIDTESTBASE\n"
                                 "aws_secret_access_key = SECRETBASE\n");
    fx.opts.config.profile = "admin";
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "ASIASTS1");
    assert_string_equal(c.secret_access_key, "STSSECRET1");
    assert_string_equal(c.session_token, "STSTOKEN1");
    assert_int_equal(c.expiration, T0 + 3600);
    assert_string_equal(c.source, "assume-role");
    ibs_aws_credentials_release(&c);
    assert_int_equal(srv_count(&fx.sts_srv), 1);
    r = &fx.sts_srv.log[0];
    assert_string_equal(r->method, "POST");
    assert_form(r->body, "Action", "AssumeRole");
    assert_form(r->body, "Version", "2011-06-15");
    assert_form(r->body, "RoleArn", "arn:aws:iam::123456789012:role/Admin");
    assert_form(r->body, "RoleSessionName", "ibsync-test");
    assert_form(r->body, "ExternalId", "ext-42");
    assert_form(r->body, "DurationSeconds", "1800");
    assert_form(r->body, "WebIdentityToken", NULL);
    assert_non_null(strstr(req_header(r, "Authorization"),
                           "Credential=AKIDTESTBASE/20240501/eu-west-1/sts/aws4_request"));
    assert_null(req_header(r, "X-Amz-Security-Token"));

    /* role chaining: deploy <- admin <- base; the second call is signed
     * with the first call's session credentials */
    fx.opts.config.profile = "deploy";
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "ASIASTS3");
    ibs_aws_credentials_release(&c);
    assert_int_equal(srv_count(&fx.sts_srv), 3);
    r = &fx.sts_srv.log[2];
    assert_form(r->body, "RoleArn", "arn:aws:iam::210987654321:role/Deploy");
    assert_non_null(strstr(req_header(r, "Authorization"), "Credential=ASIASTS2/"));
    assert_string_equal(req_header(r, "X-Amz-Security-Token"), "STSTOKEN2");
    /* default session name */
    {
        char *name = form_get(r->body, "RoleSessionName");
        assert_string_equal(name, "ibsync-1714558830");
        free(name);
    }
}

static void test_assume_role_errors(void **state)
{
    struct ibs_aws_credentials c;
    (void)state;
    fx_write(".aws/config",
             "[profile a]\nrole_arn = arn:aws:iam::1:role/A\nsource_profile = b\n"
             "[profile b]\nrole_arn = arn:aws:iam::1:role/B\nsource_profile = c\n"
             "[profile c]\nrole_arn = arn:aws:iam::1:role/C\nsource_profile = a\n"
             "[profile self]\nrole_arn = arn:aws:iam::1:role/S\nsource_profile = self\n"
             "[profile selfkeys]\nrole_arn = arn:aws:iam::1:role/S\nsource_profile = selfkeys\n"
             "aws_access_key_id = AKIDTESTSELF\naws_secret_access_key = SECRETSELF\n"
             "[profile dangling]\nrole_arn = arn:aws:iam::1:role/D\nsource_profile = nowhere\n"
             "[profile nosource]\nrole_arn = arn:aws:iam::1:role/N\n"
             "[profile both]\nrole_arn = arn:aws:iam::1:role/N\nsource_profile = selfkeys\n"
             "credential_source = Environment\n"
             "[profile mfa]\nrole_arn = arn:aws:iam::1:role/N\nsource_profile = selfkeys\n"
             "mfa_serial = arn:aws:iam::1:mfa/me\n"
             "[profile long]\nrole_arn = arn:aws:iam::1:role/N\nsource_profile = selfkeys\n"
             "duration_seconds = 99999\n"
             "[profile empty-source]\nrole_arn = arn:aws:iam::1:role/N\nsource_profile = quiet\n"
             "[profile quiet]\nregion = us-east-1\n"
             "[profile denied]\nrole_arn = arn:aws:iam::1:role/N\nsource_profile = intruder\n"
             "[profile intruder]\naws_access_key_id = AKIDTESTUNKNOWN\n"
             "aws_secret_access_key = SECRETUNKNOWN\n");

    fx.opts.config.profile = "a";
    assert_error(resolve(&c), IBS_EINVALID,
                 "profile \"a\": source_profile cycle: a -> b -> c -> a");
    fx.opts.config.profile = "self";
    assert_error(resolve(&c), IBS_EINVALID, "profile \"self\": source_profile cycle: self -> self");
    fx.opts.config.profile = "dangling";
    assert_error(resolve(&c), IBS_EINVALID,
                 "profile \"dangling\": source_profile \"nowhere\" does not exist");
    fx.opts.config.profile = "nosource";
    assert_error(resolve(&c), IBS_EINVALID,
                 "profile \"nosource\": role_arn needs source_profile, credential_source or "
                 "web_identity_token_file");
    fx.opts.config.profile = "both";
    assert_error(resolve(&c), IBS_EINVALID,
                 "profile \"both\": set only one of source_profile and credential_source");
    fx.opts.config.profile = "mfa";
    assert_int_equal(resolve(&c), IBS_EUNSUPPORTED);
    fx.opts.config.profile = "long";
    assert_error(resolve(&c), IBS_EINVALID,
                 "~/.aws/config:34: profile \"long\": duration_seconds must be an integer from "
                 "900 to 43200, got \"99999\"");
    fx.opts.config.profile = "empty-source";
    assert_error(resolve(&c), IBS_EAUTH,
                 "profile \"quiet\" (source_profile of \"empty-source\") has no credentials");
    assert_int_equal(srv_count(&fx.sts_srv), 0);

    /* STS rejects a key it does not know: the service's answer, verbatim */
    fx.opts.config.profile = "denied";
    assert_error(resolve(&c), IBS_EAUTH,
                 "profile \"denied\": STS AssumeRole failed: InvalidClientTokenId: The "
                 "security token included in the request is invalid. (HTTP 403)");

    /* a profile may name itself as source when it has keys */
    sts_add_key("AKIDTESTSELF", "SECRETSELF");
    fx.opts.config.profile = "selfkeys";
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.source, "assume-role");
    ibs_aws_credentials_release(&c);
    assert_non_null(strstr(req_header(&fx.sts_srv.log[srv_count(&fx.sts_srv) - 1], "Authorization"),
                           "Credential=AKIDTESTSELF/"));
}

static void test_assume_role_credential_source(void **state)
{
    struct ibs_aws_credentials c;
    (void)state;
    sts_add_key("AKIDTESTENVSRC", "SECRETENVSRC");
    fx_write(".aws/config", "[profile ci]\nrole_arn = arn:aws:iam::1:role/CI\n"
                            "credential_source = Environment\n"
                            "[profile bogus]\nrole_arn = arn:aws:iam::1:role/CI\n"
                            "credential_source = Somewhere\n");
    fx.opts.config.profile = "ci";
    assert_error(resolve(&c), IBS_EAUTH,
                 "profile \"ci\": credential_source: Environment gave no credentials "
                 "(environment)");
    env_set(&fx.env, "AWS_ACCESS_KEY_ID", "AKIDTESTENVSRC");
    env_set(&fx.env, "AWS_SECRET_ACCESS_KEY", "SECRETENVSRC");
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "ASIASTS1");
    ibs_aws_credentials_release(&c);
    fx.opts.config.profile = "bogus";
    assert_error(resolve(&c), IBS_EINVALID,
                 "profile \"bogus\": credential_source \"Somewhere\" is not one of Environment, "
                 "Ec2InstanceMetadata, EcsContainer");
}

static void test_sts_parse_answers(void **state)
{
    struct ibs_aws_credentials c;
    (void)state;
    assert_error(ibs_aws_sts_parse(&c, "AssumeRole", 200, "<AssumeRoleResponse>", 20), IBS_EINVALID,
                 "STS AssumeRole: malformed XML in the response (HTTP 200)");
    assert_error(ibs_aws_sts_parse(&c, "AssumeRole", 200, "", 0), IBS_EINVALID,
                 "STS AssumeRole: malformed XML in the response (HTTP 200)");
    assert_error(ibs_aws_sts_parse(&c, "AssumeRole", 200, "<Other/>", 8), IBS_EINVALID,
                 "STS AssumeRole: unexpected response element <Other>");
    {
        const char *x = "<AssumeRoleResponse><AssumeRoleResult><Credentials>"
                        "<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
                        "<SessionToken>T</SessionToken><Expiration>soon</Expiration>"
                        "</Credentials></AssumeRoleResult></AssumeRoleResponse>";
        assert_error(ibs_aws_sts_parse(&c, "AssumeRole", 200, x, strlen(x)), IBS_EINVALID,
                     "STS AssumeRole: Expiration: invalid time \"soon\" (expected "
                     "2024-05-01T10:20:30Z)");
    }
    {
        const char *x = "<AssumeRoleResponse><AssumeRoleResult><Credentials>"
                        "<AccessKeyId>A</AccessKeyId></Credentials></AssumeRoleResult>"
                        "</AssumeRoleResponse>";
        assert_error(ibs_aws_sts_parse(&c, "AssumeRole", 200, x, strlen(x)), IBS_EINVALID,
                     "STS AssumeRole: Credentials lack SecretAccessKey");
    }
    assert_error(ibs_aws_sts_parse(&c, "AssumeRole", 503, "Service Unavailable", 19), IBS_ESERVICE,
                 "STS AssumeRole failed: HTTP 503");
    {
        const char *x = "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded"
                        "</Message></Error></ErrorResponse>";
        assert_error(ibs_aws_sts_parse(&c, "AssumeRole", 400, x, strlen(x)), IBS_ETHROTTLED,
                     "STS AssumeRole failed: Throttling: Rate exceeded (HTTP 400)");
    }
    /* no external entities: the parser must not read files */
    {
        const char *x = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e SYSTEM "
                        "\"file:///etc/passwd\">]><ErrorResponse><Error><Code>X</Code>"
                        "<Message>&e;</Message></Error></ErrorResponse>";
        assert_int_equal(ibs_aws_sts_parse(&c, "AssumeRole", 400, x, strlen(x)), IBS_EAUTH);
        assert_null(strstr(ibs_error_last()->message, "root:"));
    }
}

static void test_sts_endpoint(void **state)
{
    struct ibs_aws_shared_config cfg;
    char *url = NULL;
    (void)state;
    env_set(&fx.env, "AWS_ENDPOINT_URL_STS", "");
    assert_int_equal(ibs_aws_config_load(&cfg, &fx.opts.config), 0);
    assert_int_equal(ibs_aws_sts_endpoint(&url, &cfg, &fx.opts.config, "eu-north-1"), 0);
    assert_string_equal(url, "https://sts.eu-north-1.amazonaws.com");
    free(url);
    assert_int_equal(ibs_aws_sts_endpoint(&url, &cfg, &fx.opts.config, "cn-north-1"), 0);
    assert_string_equal(url, "https://sts.cn-north-1.amazonaws.com.cn");
    free(url);
    assert_int_equal(ibs_aws_sts_endpoint(&url, &cfg, &fx.opts.config, NULL), 0);
    assert_string_equal(url, "https://sts.us-east-1.amazonaws.com");
    free(url);
    env_set(&fx.env, "AWS_ENDPOINT_URL", "http://localhost:4566");
    assert_int_equal(ibs_aws_sts_endpoint(&url, &cfg, &fx.opts.config, "eu-north-1"), 0);
    assert_string_equal(url, "http://localhost:4566");
    free(url);
    env_set(&fx.env, "AWS_ENDPOINT_URL_STS", "http://localhost:9999");
    assert_int_equal(ibs_aws_sts_endpoint(&url, &cfg, &fx.opts.config, "eu-north-1"), 0);
    assert_string_equal(url, "http://localhost:9999");
    free(url);
    /* without files: the environment only */
    assert_int_equal(ibs_aws_sts_endpoint(&url, NULL, &fx.opts.config, "eu-north-1"), 0);
    assert_string_equal(url, "http://localhost:9999");
    free(url);
    ibs_aws_config_release(&cfg);
}

/* ---- credential_process ----------------------------------------------- */

static void test_credential_process(void **state)
{
    struct ibs_aws_credentials c;
    char buf[1024];
    (void)state;
    snprintf(buf, sizeof(buf),
             "[profile proc]\ncredential_process = printf '%%s' '{\"Version\": 1, "
             "\"AccessKeyId\": \"AKIDTESTPROC\", \"SecretAccessKey\": \"SECRETPROC\", "
             "\"SessionToken\": \"TOKENPROC\", \"Expiration\": \"2024-05-01T12:00:00Z\"}'\n"
             "[profile fail]\ncredential_process = echo '  first line' >&2; echo second >&2; "
             "exit 3\n"
             "[profile garbage]\ncredential_process = echo not json\n"
             "[profile version]\ncredential_process = echo '{\"Version\": 2}'\n"
             "[profile slow]\ncredential_process = sleep 5\n"
             "[profile expired]\ncredential_process = echo '{\"Version\": 1, \"AccessKeyId\": "
             "\"AKIDTESTOLD\", \"SecretAccessKey\": \"SECRETOLD\", \"Expiration\": "
             "\"2020-01-01T00:00:00Z\"}'\n"
             "[profile nokey]\ncredential_process = echo '{\"Version\": 1, \"AccessKeyId\": "
             "\"AKIDTESTX\"}'\n");
    fx_write(".aws/config", buf);
    fx.opts.process_timeout_ms = 300;

    fx.opts.config.profile = "proc";
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "AKIDTESTPROC");
    assert_string_equal(c.secret_access_key, "SECRETPROC");
    assert_string_equal(c.session_token, "TOKENPROC");
    assert_int_equal(c.expiration, T0 + 5970);
    assert_string_equal(c.source, "process");
    ibs_aws_credentials_release(&c);

    fx.opts.config.profile = "fail";
    assert_error(resolve(&c), IBS_EAUTH,
                 "profile \"fail\": credential_process: the command exited with status 3: "
                 "\"first line second\"");
    fx.opts.config.profile = "garbage";
    assert_error(resolve(&c), IBS_EINVALID,
                 "profile \"garbage\": credential_process: malformed credentials JSON: invalid "
                 "JSON at byte offset 0 (line 1)");
    fx.opts.config.profile = "version";
    assert_error(resolve(&c), IBS_EINVALID,
                 "profile \"version\": credential_process: unsupported \"Version\" 2 (expected "
                 "1)");
    fx.opts.config.profile = "nokey";
    assert_error(resolve(&c), IBS_EINVALID,
                 "profile \"nokey\": credential_process: malformed credentials JSON: no "
                 "SecretAccessKey string");
    fx.opts.config.profile = "expired";
    assert_error(resolve(&c), IBS_EAUTH,
                 "credentials from process expired at 2020-01-01T00:00:00Z (now "
                 "2024-05-01T10:20:30Z)");
    {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        fx.opts.config.profile = "slow";
        assert_error(resolve(&c), IBS_ETIMEOUT,
                     "profile \"slow\": credential_process: the command did not finish within "
                     "300 ms");
        clock_gettime(CLOCK_MONOTONIC, &b);
        assert_true(b.tv_sec - a.tv_sec < 3);
    }
}

/* ---- 3. web identity --------------------------------------------------- */

static void test_web_identity_rereads_token(void **state)
{
    struct ibs_aws_credentials_chain *chain = NULL;
    struct ibs_aws_credentials_view v;
    char *tok;
    (void)state;
    fx_write("token", "eyJ.first.token\n");
    env_set(&fx.env, "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci");
    env_set(&fx.env, "AWS_WEB_IDENTITY_TOKEN_FILE", fx_path("token"));
    env_set(&fx.env, "AWS_ROLE_SESSION_NAME", "gh-run-7");
    assert_int_equal(ibs_aws_credentials_chain_new(&chain, &fx.opts), 0);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_string_equal(v.access_key_id, "ASIASTS1");
    assert_string_equal(v.session_token, "STSTOKEN1");
    assert_int_equal(srv_count(&fx.sts_srv), 1);
    assert_form(fx.sts_srv.log[0].body, "Action", "AssumeRoleWithWebIdentity");
    assert_form(fx.sts_srv.log[0].body, "RoleSessionName", "gh-run-7");
    assert_form(fx.sts_srv.log[0].body, "WebIdentityToken", "eyJ.first.token");
    assert_null(req_header(&fx.sts_srv.log[0], "Authorization"));

    /* the token rotates; before the refresh window nothing is fetched */
    fx_write("token", "eyJ.second.token");
    atomic_store(&fake_now, T0 + 3000);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_string_equal(v.access_key_id, "ASIASTS1");
    assert_int_equal(srv_count(&fx.sts_srv), 1);

    /* inside the 5-minute window: refreshed with the new token */
    atomic_store(&fake_now, T0 + 3301);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_string_equal(v.access_key_id, "ASIASTS2");
    assert_int_equal(srv_count(&fx.sts_srv), 2);
    tok = form_get(fx.sts_srv.log[1].body, "WebIdentityToken");
    assert_string_equal(tok, "eyJ.second.token");
    free(tok);
    ibs_aws_credentials_chain_free(chain);
}

static void test_web_identity_errors(void **state)
{
    struct ibs_aws_credentials c;
    (void)state;
    env_set(&fx.env, "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci");
    env_set(&fx.env, "AWS_WEB_IDENTITY_TOKEN_FILE", fx_path("missing-token"));
    {
        char expect[512];
        snprintf(expect, sizeof(expect),
                 "web identity: cannot read AWS_WEB_IDENTITY_TOKEN_FILE %s/missing-token: No "
                 "such file or directory",
                 fx.dir);
        assert_error(resolve(&c), IBS_EAUTH, expect);
    }
    fx_write("token", " \n");
    env_set(&fx.env, "AWS_WEB_IDENTITY_TOKEN_FILE", fx_path("token"));
    {
        char expect[512];
        snprintf(expect, sizeof(expect),
                 "web identity: AWS_WEB_IDENTITY_TOKEN_FILE %s/token is empty", fx.dir);
        assert_error(resolve(&c), IBS_EINVALID, expect);
    }
    assert_int_equal(srv_count(&fx.sts_srv), 0);
    fx_write("token", "eyJ.token");
    sts.mode = STS_INVALID_TOKEN;
    assert_error(resolve(&c), IBS_EAUTH,
                 "web identity: STS AssumeRoleWithWebIdentity failed: InvalidIdentityToken: "
                 "Couldn't retrieve verification key from your identity provider (HTTP 400)");
    sts.mode = STS_BAD_XML;
    assert_error(resolve(&c), IBS_EINVALID,
                 "web identity: STS AssumeRoleWithWebIdentity: malformed XML in the response "
                 "(HTTP 200)");
    sts.mode = STS_NO_CREDENTIALS;
    assert_error(resolve(&c), IBS_EINVALID,
                 "web identity: STS AssumeRoleWithWebIdentity: response has no "
                 "AssumeRoleWithWebIdentityResult/Credentials");

    /* from a profile: role_arn + web_identity_token_file */
    sts.mode = STS_OK;
    env_set(&fx.env, "AWS_ROLE_ARN", "");
    env_set(&fx.env, "AWS_WEB_IDENTITY_TOKEN_FILE", "");
    fx_write(".aws/config", "[default]\nrole_arn = arn:aws:iam::1:role/P\n"
                            "web_identity_token_file = ~/token\nrole_session_name = prof\n");
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.source, "web-identity");
    ibs_aws_credentials_release(&c);
    assert_form(fx.sts_srv.log[srv_count(&fx.sts_srv) - 1].body, "RoleSessionName", "prof");
}

/* ---- 4. container ------------------------------------------------------ */

static void test_container_full_uri_token_file(void **state)
{
    struct srv c_srv;
    struct ibs_aws_credentials_chain *chain = NULL;
    struct ibs_aws_credentials_view v;
    char url[128];
    (void)state;
    srv_start(&c_srv, route_container);
    snprintf(url, sizeof(url), "%s/v1/credentials", c_srv.base);
    env_set(&fx.env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    env_set(&fx.env, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "should-not-be-used");
    fx_write("eks-token", "pod-token-1\n");
    env_set(&fx.env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", fx_path("eks-token"));
    assert_int_equal(ibs_aws_credentials_chain_new(&chain, &fx.opts), 0);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_string_equal(v.access_key_id, "ASIAJSON1");
    assert_string_equal(v.secret_access_key, "JSONSECRET1");
    assert_string_equal(v.session_token, "JSONTOKEN1");
    assert_int_equal(srv_count(&c_srv), 1);
    assert_string_equal(req_header(&c_srv.log[0], "Authorization"), "pod-token-1");

    fx_write("eks-token", "pod-token-2");
    ibs_aws_credentials_chain_invalidate(chain);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_string_equal(v.access_key_id, "ASIAJSON2");
    assert_int_equal(srv_count(&c_srv), 2);
    assert_string_equal(req_header(&c_srv.log[1], "Authorization"), "pod-token-2");
    ibs_aws_credentials_chain_free(chain);

    /* the plain token when there is no file */
    env_set(&fx.env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "");
    {
        struct ibs_aws_credentials c;
        assert_int_equal(resolve(&c), 0);
        assert_string_equal(c.source, "container");
        ibs_aws_credentials_release(&c);
        assert_string_equal(req_header(&c_srv.log[2], "Authorization"), "should-not-be-used");
    }
    srv_stop(&c_srv);
}

static void test_container_urls(void **state)
{
    char *url = NULL;
    struct ibs_aws_credentials c;
    static const char *const allowed[] = {"http://127.0.0.1/x",       "http://127.1.2.3:8080/x",
                                          "http://localhost/x",       "http://[::1]:80/x",
                                          "http://169.254.170.2/x",   "http://169.254.170.23/v1",
                                          "http://[fd00:ec2::23]/v1", "https://creds.example.com/"};
    (void)state;

    assert_error(ibs_aws_credentials_container_url(&url, &fx.opts.config), IBS_ENOTFOUND,
                 "container (not configured)");
    env_set(&fx.env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc-123");
    env_set(&fx.env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/ignored");
    assert_int_equal(ibs_aws_credentials_container_url(&url, &fx.opts.config), 0);
    assert_string_equal(url, "http://169.254.170.2/v2/credentials/abc-123");
    free(url);
    env_set(&fx.env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "");
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        env_set(&fx.env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", allowed[i]);
        assert_int_equal(ibs_aws_credentials_container_url(&url, &fx.opts.config), 0);
        assert_string_equal(url, allowed[i]);
        free(url);
    }
    env_set(&fx.env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.169.254/creds");
    assert_error(ibs_aws_credentials_container_url(&url, &fx.opts.config), IBS_EINVALID,
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI: host \"169.254.169.254\" is not allowed "
                 "over http (use https, a loopback address, 169.254.170.2, 169.254.170.23 or "
                 "fd00:ec2::23)");
    /* through the chain: a configured but unusable container stops it */
    env_set(&fx.env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://creds.example.com/");
    assert_error(resolve(&c), IBS_EINVALID,
                 "container: AWS_CONTAINER_CREDENTIALS_FULL_URI: host \"creds.example.com\" is "
                 "not allowed over http (use https, a loopback address, 169.254.170.2, "
                 "169.254.170.23 or fd00:ec2::23)");
}

static void test_container_bad_answers(void **state)
{
    struct srv c_srv;
    struct ibs_aws_credentials c;
    char url[128], expect[256];
    (void)state;
    srv_start(&c_srv, route_container);
    snprintf(url, sizeof(url), "%s/v1/credentials", c_srv.base);
    env_set(&fx.env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", url);

    fake.mode = JSON_BAD;
    snprintf(expect, sizeof(expect),
             "container: answer from 127.0.0.1:%d: malformed credentials JSON: invalid JSON at "
             "byte offset 47 (line 1)",
             c_srv.port);
    assert_error(resolve(&c), IBS_EINVALID, expect);
    fake.mode = JSON_NO_SECRET;
    snprintf(expect, sizeof(expect),
             "container: answer from 127.0.0.1:%d: malformed credentials JSON: no "
             "SecretAccessKey string",
             c_srv.port);
    assert_error(resolve(&c), IBS_EINVALID, expect);
    fake.mode = JSON_ERROR_403;
    snprintf(expect, sizeof(expect),
             "container: HTTP 403 from 127.0.0.1:%d: AccessDenied: Unauthorized", c_srv.port);
    assert_error(resolve(&c), IBS_EAUTH, expect);
    fake.mode = JSON_EXPIRED;
    assert_error(resolve(&c), IBS_EAUTH,
                 "credentials from container expired at 2024-05-01T10:19:30Z (now "
                 "2024-05-01T10:20:30Z)");
    srv_stop(&c_srv);
}

/* ---- 5. IMDS ----------------------------------------------------------- */

static void test_imds_v2_flow(void **state)
{
    struct srv i_srv;
    struct ibs_aws_credentials c;
    const struct req *r;
    (void)state;
    srv_start(&i_srv, route_imds);
    env_set(&fx.env, "AWS_EC2_METADATA_DISABLED", "false");
    env_set(&fx.env, "AWS_EC2_METADATA_SERVICE_ENDPOINT", i_srv.base);
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "ASIAJSON1");
    assert_string_equal(c.session_token, "JSONTOKEN1");
    assert_int_equal(c.expiration, T0 + 21600);
    assert_string_equal(c.source, "imds");
    ibs_aws_credentials_release(&c);
    assert_int_equal(srv_count(&i_srv), 3);
    r = &i_srv.log[0];
    assert_string_equal(r->method, "PUT");
    assert_string_equal(r->url, "/latest/api/token");
    assert_string_equal(req_header(r, "X-aws-ec2-metadata-token-ttl-seconds"), "21600");
    r = &i_srv.log[1];
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->url, "/latest/meta-data/iam/security-credentials/");
    assert_string_equal(req_header(r, "X-aws-ec2-metadata-token"), IMDS_TOKEN);
    r = &i_srv.log[2];
    assert_string_equal(r->url, "/latest/meta-data/iam/security-credentials/ibsync-instance-role");
    assert_string_equal(req_header(r, "X-aws-ec2-metadata-token"), IMDS_TOKEN);

    /* an IMDSv1-only endpoint refuses the PUT: the GETs go without token */
    fake.imds_v1 = true;
    assert_int_equal(resolve(&c), 0);
    assert_string_equal(c.access_key_id, "ASIAJSON2");
    ibs_aws_credentials_release(&c);
    assert_int_equal(srv_count(&i_srv), 6);
    assert_null(req_header(&i_srv.log[4], "X-aws-ec2-metadata-token"));

    /* an instance without a role: the chain ends without credentials */
    fake.imds_v1 = false;
    fake.imds_no_role = true;
    assert_error(resolve(&c), IBS_EAUTH,
                 "no credentials found: tried environment, profile \"default\" (no "
                 "~/.aws/config or ~/.aws/credentials), web identity (AWS_ROLE_ARN not set), "
                 "container (not configured), IMDS (no IAM role attached to the instance)");
    fake.imds_no_role = false;
    srv_stop(&i_srv);
}

static void test_imds_urls(void **state)
{
    char *url = NULL;
    (void)state;
    assert_int_equal(ibs_aws_credentials_imds_url(&url, &fx.opts.config, NULL), 0);
    assert_string_equal(url, "http://169.254.169.254");
    free(url);
    env_set(&fx.env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6");
    assert_int_equal(ibs_aws_credentials_imds_url(&url, &fx.opts.config, NULL), 0);
    assert_string_equal(url, "http://[fd00:ec2::254]");
    free(url);
    env_set(&fx.env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv5");
    assert_error(ibs_aws_credentials_imds_url(&url, &fx.opts.config, NULL), IBS_EINVALID,
                 "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: expected IPv4 or IPv6, got \"IPv5\"");
    env_set(&fx.env, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://10.0.0.1:1338/");
    assert_int_equal(ibs_aws_credentials_imds_url(&url, &fx.opts.config, NULL), 0);
    assert_string_equal(url, "http://10.0.0.1:1338");
    free(url);
}

/* A listening socket that never accepts: requests to it time out. */
static int black_hole(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_no_credentials_message(void **state)
{
    struct ibs_aws_credentials c;
    char endpoint[64];
    int port, fd;
    (void)state;
    /* IMDS disabled, no files */
    assert_error(resolve(&c), IBS_EAUTH,
                 "no credentials found: tried environment, profile \"default\" (no "
                 "~/.aws/config or ~/.aws/credentials), web identity (AWS_ROLE_ARN not set), "
                 "container (not configured), IMDS (disabled by AWS_EC2_METADATA_DISABLED)");

    /* a config file without credentials, IMDS that never answers */
    fx_write(".aws/config", "[default]\nregion = eu-west-1\n");
    fd = black_hole(&port);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
    env_set(&fx.env, "AWS_EC2_METADATA_DISABLED", "");
    env_set(&fx.env, "AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint);
    fx.opts.imds_timeout_ms = 200;
    assert_error(resolve(&c), IBS_EAUTH,
                 "no credentials found: tried environment, profile \"default\" (no "
                 "~/.aws/credentials), web identity (AWS_ROLE_ARN not set), container (not "
                 "configured), IMDS (timed out)");
    close(fd);

    fx_write(".aws/credentials", "[other]\naws_access_key_id = A\n");
    env_set(&fx.env, "AWS_EC2_METADATA_DISABLED", "TRUE");
    env_set(&fx.env, "AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token");
    assert_error(resolve(&c), IBS_EAUTH,
                 "no credentials found: tried environment, profile \"default\" (no credentials "
                 "in the profile), web identity (AWS_WEB_IDENTITY_TOKEN_FILE set, but not "
                 "AWS_ROLE_ARN), container (not configured), IMDS (disabled by "
                 "AWS_EC2_METADATA_DISABLED)");
}

/* ---- caching, refresh, concurrency ------------------------------------- */

struct counting {
    atomic_int calls;
    int sleep_ms;
    int64_t lifetime; /* 0: no expiration */
    bool fail;
};

static int counting_resolve(struct ibs_aws_credentials *out, void *ctx)
{
    struct counting *p = ctx;
    char akid[32], secret[32];
    int n = atomic_fetch_add(&p->calls, 1) + 1;
    if (p->sleep_ms)
        sleep_ms(p->sleep_ms);
    if (p->fail)
        return ibs_error_set(IBS_EIO, "counting: endpoint down (call %d)", n);
    snprintf(akid, sizeof(akid), "AKIDCOUNT%d", n);
    snprintf(secret, sizeof(secret), "SECRETCOUNT%d", n);
    return ibs_aws_credentials_set(out, akid, secret, "TOKENCOUNT",
                                   p->lifetime ? atomic_load(&fake_now) + p->lifetime : 0,
                                   "custom");
}

static struct ibs_aws_credentials_chain *counting_chain(struct counting *p, int64_t window)
{
    struct ibs_aws_credentials_provider prov = {"counting", counting_resolve, NULL, p};
    struct ibs_aws_credentials_chain *chain = NULL;
    fx.opts.providers = &prov;
    fx.opts.nproviders = 1;
    fx.opts.refresh_window = window;
    assert_int_equal(ibs_aws_credentials_chain_new(&chain, &fx.opts), 0);
    fx.opts.providers = NULL;
    fx.opts.nproviders = 0;
    return chain;
}

static void test_refresh_before_expiry(void **state)
{
    struct counting p = {0, 0, 3600, false};
    struct ibs_aws_credentials_chain *chain = counting_chain(&p, 0);
    struct ibs_aws_credentials_view v;
    struct ibs_aws_credentials c;
    (void)state;

    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_string_equal(v.access_key_id, "AKIDCOUNT1");
    atomic_store(&fake_now, T0 + 3299);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_string_equal(v.access_key_id, "AKIDCOUNT1");
    assert_int_equal(atomic_load(&p.calls), 1);
    atomic_store(&fake_now, T0 + 3300);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_string_equal(v.access_key_id, "AKIDCOUNT2");
    assert_int_equal(atomic_load(&p.calls), 2);

    /* a failed refresh keeps still-valid credentials ... */
    p.fail = true;
    atomic_store(&fake_now, T0 + 3300 + 3400);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_string_equal(v.access_key_id, "AKIDCOUNT2");
    assert_int_equal(atomic_load(&p.calls), 3);
    /* ... without hammering the provider ... */
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_int_equal(atomic_load(&p.calls), 3);
    /* ... until they expire */
    atomic_store(&fake_now, T0 + 3300 + 3600);
    assert_error(ibs_aws_credentials_get(&v, chain), IBS_EIO, "counting: endpoint down (call 4)");
    assert_null(v.access_key_id);
    p.fail = false;
    assert_int_equal(ibs_aws_credentials_chain_copy(&c, chain), 0);
    assert_string_equal(c.access_key_id, "AKIDCOUNT5");
    assert_string_equal(c.source, "custom");
    assert_int_equal(c.expiration, T0 + 3300 + 3600 + 3600);
    ibs_aws_credentials_release(&c);
    ibs_aws_credentials_chain_free(chain);

    /* credentials without expiration are never refreshed; a custom window */
    p.lifetime = 0;
    atomic_store(&p.calls, 0);
    chain = counting_chain(&p, 60);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    atomic_store(&fake_now, T0 + 10 * 86400);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_int_equal(atomic_load(&p.calls), 1);
    ibs_aws_credentials_chain_free(chain);

    p.lifetime = 600;
    atomic_store(&p.calls, 0);
    chain = counting_chain(&p, 60);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    atomic_store(&fake_now, atomic_load(&fake_now) + 539);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_int_equal(atomic_load(&p.calls), 1);
    atomic_store(&fake_now, atomic_load(&fake_now) + 1);
    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_int_equal(atomic_load(&p.calls), 2);
    ibs_aws_credentials_chain_free(chain);
}

struct worker {
    struct ibs_aws_credentials_chain *chain;
    pthread_barrier_t *barrier;
    int rc;
    char akid[32];
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ibs_aws_credentials_view v;
    pthread_barrier_wait(w->barrier);
    w->rc = ibs_aws_credentials_get(&v, w->chain);
    if (w->rc == 0)
        snprintf(w->akid, sizeof(w->akid), "%s", v.access_key_id);
    return NULL;
}

static void run_workers(struct ibs_aws_credentials_chain *chain, struct worker *w, size_t n)
{
    pthread_t t[8];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)n);
    for (size_t i = 0; i < n; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].chain = chain;
        w[i].barrier = &barrier;
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
}

static void test_concurrent_single_refresh(void **state)
{
    struct counting p = {0, 200, 3600, false};
    struct ibs_aws_credentials_chain *chain = counting_chain(&p, 0);
    struct worker w[8];
    (void)state;

    /* nothing cached: one thread resolves, seven wait for it */
    run_workers(chain, w, 8);
    assert_int_equal(atomic_load(&p.calls), 1);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(w[i].rc, 0);
        assert_string_equal(w[i].akid, "AKIDCOUNT1");
    }
    /* inside the window: one refresh; the others may use the old, still
     * valid snapshot meanwhile */
    atomic_store(&fake_now, T0 + 3400);
    run_workers(chain, w, 8);
    assert_int_equal(atomic_load(&p.calls), 2);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(w[i].rc, 0);
        assert_true(strcmp(w[i].akid, "AKIDCOUNT1") == 0 || strcmp(w[i].akid, "AKIDCOUNT2") == 0);
    }
    /* expired and failing: one attempt, everyone gets its error */
    p.fail = true;
    atomic_store(&fake_now, T0 + 3400 + 3600);
    run_workers(chain, w, 8);
    assert_true(atomic_load(&p.calls) >= 3);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(w[i].rc, IBS_EIO);
    ibs_aws_credentials_chain_free(chain);
}

static void *refresh_other_thread(void *arg)
{
    struct ibs_aws_credentials_view v;
    ibs_aws_credentials_chain_invalidate(arg);
    if (ibs_aws_credentials_get(&v, arg) != 0)
        return arg;
    return NULL;
}

static void test_view_lifetime(void **state)
{
    struct counting p = {0, 0, 3600, false};
    struct ibs_aws_credentials_chain *chain = counting_chain(&p, 0);
    struct ibs_aws_credentials_view v, v2;
    pthread_t t;
    void *res;
    (void)state;

    assert_int_equal(ibs_aws_credentials_get(&v, chain), 0);
    assert_string_equal(v.access_key_id, "AKIDCOUNT1");
    /* another thread refreshes: our view still points at valid memory */
    assert_int_equal(pthread_create(&t, NULL, refresh_other_thread, chain), 0);
    pthread_join(t, &res);
    assert_null(res);
    assert_int_equal(atomic_load(&p.calls), 2);
    assert_string_equal(v.access_key_id, "AKIDCOUNT1");
    assert_string_equal(v.secret_access_key, "SECRETCOUNT1");
    /* our next get moves to the new snapshot */
    assert_int_equal(ibs_aws_credentials_chain_callback(chain, &v2), 0);
    assert_string_equal(v2.access_key_id, "AKIDCOUNT2");
    /* and survives the chain */
    ibs_aws_credentials_chain_free(chain);
    assert_string_equal(v2.session_token, "TOKENCOUNT");
    ibs_aws_credentials_thread_release();
}

static void free_counter(void *ctx)
{
    free(ctx);
}

/* A heap counter that the chain will own. */
static void *new_counter(void)
{
    void *p = calloc(1, sizeof(struct counting));
    assert_non_null(p);
    return p;
}

static void test_custom_provider_ownership(void **state)
{
    struct ibs_aws_credentials_chain *chain = NULL;
    struct ibs_aws_credentials_provider prov = {"owned", counting_resolve, free_counter, NULL};
    struct ibs_aws_credentials c;
    (void)state;
    prov.ctx = new_counter();
    fx.opts.providers = &prov;
    fx.opts.nproviders = 1;
    assert_int_equal(ibs_aws_credentials_chain_new(&chain, &fx.opts), 0);
    assert_int_equal(ibs_aws_credentials_chain_copy(&c, chain), 0);
    assert_string_equal(c.access_key_id, "AKIDCOUNT1");
    ibs_aws_credentials_release(&c);
    ibs_aws_credentials_chain_free(chain); /* frees ctx: ASan checks the leak */
    ibs_aws_credentials_chain_free(NULL);
    ibs_aws_credentials_release(NULL);
    /* cppcheck cannot see that the chain freed prov.ctx */
    // cppcheck-suppress memleak
}

/* ---- secrets stay out of messages -------------------------------------- */

static const char *const secrets[] = {
    "SECRETLEAK1",         "TOKENLEAK1",     "eyJ.web.identity.LEAK",
    "container-auth-LEAK", "SECRETPROCLEAK", "TOKENPROCLEAK",
    "STSSECRET",           "STSTOKEN",
};

static void assert_no_secret(const char *msg)
{
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(msg, secrets[i]))
            fail_msg("secret \"%s\" in message: %s", secrets[i], msg);
}

static void test_no_secret_in_messages(void **state)
{
    struct srv c_srv;
    struct ibs_aws_credentials c;
    char url[128];
    (void)state;

    /* STS quoting the web identity token in its error */
    fx_write("token", "eyJ.web.identity.LEAK");
    env_set(&fx.env, "AWS_ROLE_ARN", "arn:aws:iam::1:role/x");
    env_set(&fx.env, "AWS_WEB_IDENTITY_TOKEN_FILE", fx_path("token"));
    sts.mode = STS_ECHO_SECRET;
    assert_error(resolve(&c), IBS_EAUTH,
                 "web identity: STS AssumeRoleWithWebIdentity failed: InvalidIdentityToken: *** "
                 "(HTTP 400)");
    assert_no_secret(ibs_error_last()->message);
    env_set(&fx.env, "AWS_ROLE_ARN", "");
    env_set(&fx.env, "AWS_WEB_IDENTITY_TOKEN_FILE", "");
    sts.mode = STS_OK;

    /* STS rejecting a signature made with a wrong secret and a token */
    fx_write(".aws/credentials", "[src]\naws_access_key_id = AKIDTESTLEAK\n"
                                 "aws_secret_access_key = SECRETLEAK1\n"
                                 "aws_session_token = TOKENLEAK1\n");
    fx_write(".aws/config", "[profile role]\nrole_arn = arn:aws:iam::1:role/r\n"
                            "source_profile = src\n"
                            "[profile proc]\ncredential_process = echo '{\"Version\": 1, "
                            "\"AccessKeyId\": \"AKIDTESTP\", \"SecretAccessKey\": "
                            "\"SECRETPROCLEAK\", \"SessionToken\": \"TOKENPROCLEAK\"}'; "
                            "echo 'debug: SECRETPROCLEAK TOKENPROCLEAK' >&2; exit 1\n");
    sts_add_key("AKIDTESTLEAK", "a-different-secret");
    fx.opts.config.profile = "role";
    sts.mode = STS_ECHO_SECRET;
    assert_int_equal(resolve(&c), IBS_EAUTH);
    assert_non_null(strstr(ibs_error_last()->message, "SignatureDoesNotMatch"));
    assert_non_null(strstr(ibs_error_last()->message, "x-amz-security-token:***"));
    assert_no_secret(ibs_error_last()->message);
    sts.mode = STS_OK;

    /* a failing credential_process that prints the secrets on stderr */
    fx.opts.config.profile = "proc";
    assert_error(resolve(&c), IBS_EAUTH,
                 "profile \"proc\": credential_process: the command exited with status 1: "
                 "\"debug: *** ***\"");
    assert_no_secret(ibs_error_last()->message);
    fx.opts.config.profile = NULL;
    unlink(fx_path(".aws/credentials"));
    unlink(fx_path(".aws/config"));

    /* the container endpoint echoing the authorization token */
    srv_start(&c_srv, route_container);
    snprintf(url, sizeof(url), "%s/elsewhere", c_srv.base);
    env_set(&fx.env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    env_set(&fx.env, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-auth-LEAK");
    assert_int_equal(resolve(&c), IBS_EAUTH);
    assert_no_secret(ibs_error_last()->message);
    env_set(&fx.env, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "bad\r\nInjected: container-auth-LEAK");
    assert_error(resolve(&c), IBS_EINVALID,
                 "container: the authorization token contains a line break");
    srv_stop(&c_srv);

    /* expired credentials: the message names source and time only */
    env_set(&fx.env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "");
    env_set(&fx.env, "AWS_ACCESS_KEY_ID", "AKIDTESTLEAK");
    env_set(&fx.env, "AWS_SECRET_ACCESS_KEY", "SECRETLEAK1");
    env_set(&fx.env, "AWS_SESSION_TOKEN", "TOKENLEAK1");
    env_set(&fx.env, "AWS_CREDENTIAL_EXPIRATION", "2024-05-01T10:00:00Z");
    assert_error(resolve(&c), IBS_EAUTH,
                 "credentials from env expired at 2024-05-01T10:00:00Z (now "
                 "2024-05-01T10:20:30Z)");
    assert_no_secret(ibs_error_last()->message);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse_and_format),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_redact_error),
        T(test_env_credentials),
        T(test_env_partial_and_profile_override),
        T(test_profile_static_precedence),
        T(test_profile_files_from_options),
        T(test_assume_role_source_profile),
        T(test_assume_role_errors),
        T(test_assume_role_credential_source),
        T(test_sts_parse_answers),
        T(test_sts_endpoint),
        T(test_credential_process),
        T(test_web_identity_rereads_token),
        T(test_web_identity_errors),
        T(test_container_full_uri_token_file),
        T(test_container_urls),
        T(test_container_bad_answers),
        T(test_imds_v2_flow),
        T(test_imds_urls),
        T(test_no_credentials_message),
        T(test_refresh_before_expiry),
        T(test_concurrent_single_refresh),
        T(test_view_lifetime),
        T(test_custom_provider_ownership),
        T(test_no_secret_in_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
