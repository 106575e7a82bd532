/* Unit tests of providers/aws/http: connection reuse, the bounded pool
 * under parallel callers, timeouts, refused and dropped connections,
 * request and response headers, bodies per method, TLS with a CA bundle
 * (a self-signed certificate made at test time), and log redaction. Every
 * test talks to a loopback server started in-process (tests/support).
 * ibs-test-libs: ibs_testsrv ibs_providers ibs_api ibs_util PkgConfig::OPENSSL Threads::Threads */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "providers/aws/http.h"
#include "tests/support/testsrv.h"
#include "util/buf.h"
#include "util/error.h"

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

struct log_capture {
    pthread_mutex_t mu;
    struct ibs_buf text; /* every line, '\n'-terminated */
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

static struct ibs_testsrv *start_server(ibs_testsrv_handler_fn *handler, void *ctx)
{
    struct ibs_testsrv_options o;
    struct ibs_testsrv *srv = NULL;

    memset(&o, 0, sizeof(o));
    o.handler = handler;
    o.ctx = ctx;
    assert_int_equal(ibs_testsrv_start(&srv, &o), 0);
    return srv;
}

static struct ibs_http_client *new_client(size_t max_connections, long timeout_ms)
{
    struct ibs_http_options o;
    struct ibs_http_client *c = NULL;

    memset(&o, 0, sizeof(o));
    o.max_connections = max_connections;
    o.timeout_ms = timeout_ms;
    assert_int_equal(ibs_http_client_new(&c, &o), 0);
    return c;
}

static int get(struct ibs_http_response *out, struct ibs_http_client *c, const char *url)
{
    struct ibs_http_request req;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;
    return ibs_http_send(out, c, &req);
}

static char *url_of(struct ibs_testsrv *srv, const char *path)
{
    struct ibs_buf b = IBS_BUF_INIT;
    ibs_buf_printf(&b, "%s%s", ibs_testsrv_url(srv), path);
    return ibs_buf_detach(&b);
}

/* A TCP port on 127.0.0.1 that nothing listens on. */
static unsigned unused_port(void)
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

/* ---- handlers --------------------------------------------------------- */

static void answer_with_headers(void *ctx, const struct ibs_testsrv_request *req,
                                struct ibs_testsrv_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 404;
    ibs_buf_clear(&resp->body);
    ibs_buf_puts(&resp->body, "{\"message\":\"gone\"}");
    ibs_testsrv_response_header(resp, "X-Amzn-RequestId", "req-123");
    ibs_testsrv_response_header(resp, "x-amzn-ErrorType", "ResourceNotFoundException");
    ibs_testsrv_response_header(resp, "Content-Type", "application/json");
}

static void answer_slowly(void *ctx, const struct ibs_testsrv_request *req,
                          struct ibs_testsrv_response *resp)
{
    (void)req;
    resp->delay_ms = *(const long *)ctx;
}

static void drop_connection(void *ctx, const struct ibs_testsrv_request *req,
                            struct ibs_testsrv_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 0;
}

/* ---- tests ------------------------------------------------------------ */

static void test_sequential_requests_reuse_one_connection(void **state)
{
    struct ibs_testsrv *srv = start_server(NULL, NULL);
    struct ibs_http_client *c = new_client(4, 0);
    struct ibs_http_response r;
    char *url = url_of(srv, "/ping");
    (void)state;

    for (int i = 0; i < 10; i++) {
        assert_int_equal(get(&r, c, url), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body.ptr, "{}");
        ibs_http_response_release(&r);
    }
    assert_int_equal(ibs_testsrv_nrequests(srv), 10);
    assert_int_equal(ibs_testsrv_connections(srv), 1);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(ibs_testsrv_request_at(srv, i)->conn, 1);
    free(url);
    ibs_http_client_free(c);
    ibs_testsrv_stop(srv);
}

struct parallel_job {
    struct ibs_http_client *client;
    const char *url;
    int rc;
    long status;
};

static void *parallel_get(void *arg)
{
    struct parallel_job *job = arg;
    struct ibs_http_response r;

    job->rc = get(&r, job->client, job->url);
    job->status = r.status;
    ibs_http_response_release(&r);
    return NULL;
}

static void test_parallel_requests_are_bounded_by_the_pool(void **state)
{
    long delay = 150;
    struct ibs_testsrv *srv = start_server(answer_slowly, &delay);
    struct ibs_http_client *c = new_client(2, 0);
    char *url = url_of(srv, "/slow");
    struct parallel_job jobs[6];
    pthread_t threads[6];
    (void)state;

    for (int i = 0; i < 6; i++) {
        jobs[i].client = c;
        jobs[i].url = url;
        jobs[i].rc = -100;
        assert_int_equal(pthread_create(&threads[i], NULL, parallel_get, &jobs[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
        assert_int_equal(jobs[i].status, 200);
    }
    assert_int_equal(ibs_testsrv_nrequests(srv), 6);
    /* Two at a time, on two connections that the later callers reuse. */
    assert_int_equal(ibs_testsrv_max_inflight(srv), 2);
    assert_int_equal(ibs_testsrv_connections(srv), 2);
    free(url);
    ibs_http_client_free(c);
    ibs_testsrv_stop(srv);
}

static void test_timeouts(void **state)
{
    long delay = 3000;
    struct ibs_testsrv *srv = start_server(answer_slowly, &delay);
    struct ibs_http_client *c = new_client(1, 200);
    struct ibs_http_request req;
    struct ibs_http_response r;
    char *url = url_of(srv, "/slow");
    (void)state;

    assert_int_equal(get(&r, c, url), IBS_ETIMEOUT);
    assert_non_null(strstr(ibs_error_last()->message, "GET 127.0.0.1: timed out after "));
    assert_non_null(strstr(ibs_error_last()->message, "(limit 200 ms)"));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.headers.count, 0);
    assert_true(r.elapsed_ms >= 150 && r.elapsed_ms < 2000);
    ibs_http_response_release(&r);

    /* A per-request timeout overrides the client's. */
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;
    req.timeout_ms = 100;
    assert_int_equal(ibs_http_send(&r, c, &req), IBS_ETIMEOUT);
    assert_non_null(strstr(ibs_error_last()->message, "(limit 100 ms)"));
    ibs_http_response_release(&r);
    free(url);
    ibs_http_client_free(c);
    ibs_testsrv_stop(srv);
}

static void test_connection_refused_is_eio(void **state)
{
    struct ibs_http_client *c = new_client(1, 0);
    struct ibs_http_response r;
    char url[64];
    (void)state;

    snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", unused_port());
    assert_int_equal(get(&r, c, url), IBS_EIO);
    assert_non_null(strstr(ibs_error_last()->message, "GET 127.0.0.1: "));
    assert_non_null(strstr(ibs_error_last()->message, "(curl error 7)"));
    assert_int_equal(r.status, 0);
    ibs_http_response_release(&r);
    ibs_http_client_free(c);
}

static void test_dropped_connection_is_eio(void **state)
{
    struct ibs_testsrv *srv = start_server(drop_connection, NULL);
    struct ibs_http_client *c = new_client(1, 0);
    struct ibs_http_response r;
    char *url = url_of(srv, "/drop");
    (void)state;

    assert_int_equal(get(&r, c, url), IBS_EIO);
    assert_non_null(strstr(ibs_error_last()->message, "(curl error 52)"));
    assert_int_equal(ibs_testsrv_nrequests(srv), 1);
    ibs_http_response_release(&r);
    free(url);
    ibs_http_client_free(c);
    ibs_testsrv_stop(srv);
}

static void test_headers_both_ways(void **state)
{
    struct ibs_testsrv *srv = start_server(answer_with_headers, NULL);
    struct ibs_http_client *c = new_client(1, 0);
    const struct ibs_http_header headers[] = {
        {"X-Amz-Date", "20240501T000000Z"},
        {"X-Empty", ""},
        {"User-Agent", "ibsync/test"},
    };
    const struct ibs_testsrv_request *got;
    struct ibs_http_request req;
    struct ibs_http_response r;
    char *url = url_of(srv, "/GetComponent?componentBuildVersionArn=arn%3Aaws%3Ax");
    (void)state;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;
    req.headers = headers;
    req.nheaders = 3;
    assert_int_equal(ibs_http_send(&r, c, &req), 0);
    /* Any status is a response, not an error. */
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body.ptr, "{\"message\":\"gone\"}");
    assert_string_equal(ibs_http_response_header(&r, "x-amzn-requestid"), "req-123");
    assert_string_equal(ibs_http_response_header(&r, "X-AMZN-ERRORTYPE"),
                        "ResourceNotFoundException");
    assert_null(ibs_http_response_header(&r, "x-amzn"));
    assert_true(r.headers.count >= 3);

    got = ibs_testsrv_request_at(srv, 0);
    assert_string_equal(got->method, "GET");
    /* The target goes out exactly as given: nothing decoded or re-encoded. */
    assert_string_equal(got->path, "/GetComponent");
    assert_string_equal(got->query, "componentBuildVersionArn=arn%3Aaws%3Ax");
    assert_string_equal(ibs_testsrv_request_header(got, "X-Amz-Date"), "20240501T000000Z");
    assert_string_equal(ibs_testsrv_request_header(got, "X-Empty"), "");
    assert_string_equal(ibs_testsrv_request_header(got, "User-Agent"), "ibsync/test");
    assert_string_equal(ibs_testsrv_request_header(got, "Host"),
                        strstr(ibs_testsrv_url(srv), "127.0.0.1"));
    assert_null(ibs_testsrv_request_header(got, "Content-Length"));
    assert_null(ibs_testsrv_request_header(got, "Expect"));
    ibs_http_response_release(&r);
    free(url);
    ibs_http_client_free(c);
    ibs_testsrv_stop(srv);
}

static void test_bodies_per_method(void **state)
{
    struct ibs_testsrv *srv = start_server(NULL, NULL);
    struct ibs_http_client *c = new_client(1, 0);
    const struct ibs_http_header json[] = {{"Content-Type", "application/json"}};
    const char body[] = "{\"name\":\"x\"}";
    const struct ibs_testsrv_request *got;
    struct ibs_http_request req;
    struct ibs_http_response r;
    char *url = url_of(srv, "/CreateComponent");
    (void)state;

    memset(&req, 0, sizeof(req));
    req.method = "PUT";
    req.url = url;
    req.headers = json;
    req.nheaders = 1;
    req.body = body;
    req.body_len = strlen(body);
    assert_int_equal(ibs_http_send(&r, c, &req), 0);
    ibs_http_response_release(&r);
    got = ibs_testsrv_request_at(srv, 0);
    assert_string_equal(got->method, "PUT");
    assert_string_equal(got->body, body);
    assert_string_equal(ibs_testsrv_request_header(got, "Content-Length"), "12");
    assert_string_equal(ibs_testsrv_request_header(got, "Content-Type"), "application/json");
    assert_null(ibs_testsrv_request_header(got, "Expect"));

    /* DELETE without a body sends none. */
    req.method = "DELETE";
    req.headers = NULL;
    req.nheaders = 0;
    req.body = NULL;
    req.body_len = 0;
    assert_int_equal(ibs_http_send(&r, c, &req), 0);
    ibs_http_response_release(&r);
    got = ibs_testsrv_request_at(srv, 1);
    assert_string_equal(got->method, "DELETE");
    assert_int_equal(got->body_len, 0);
    assert_null(ibs_testsrv_request_header(got, "Content-Length"));

    /* An empty POST says Content-Length: 0, and curl adds no form type. */
    req.method = "POST";
    assert_int_equal(ibs_http_send(&r, c, &req), 0);
    ibs_http_response_release(&r);
    got = ibs_testsrv_request_at(srv, 2);
    assert_string_equal(got->method, "POST");
    assert_string_equal(ibs_testsrv_request_header(got, "Content-Length"), "0");
    assert_null(ibs_testsrv_request_header(got, "Content-Type"));
    assert_int_equal(ibs_testsrv_connections(srv), 1);
    free(url);
    ibs_http_client_free(c);
    ibs_testsrv_stop(srv);
}

static void test_invalid_requests_are_refused(void **state)
{
    struct ibs_testsrv *srv = start_server(NULL, NULL);
    struct ibs_http_client *c = new_client(1, 0);
    const struct ibs_http_header smuggle[] = {{"X-Test", "a\r\nX-Injected: 1"}};
    const struct ibs_http_header badname[] = {{"Bad Name", "v"}};
    struct ibs_http_request req;
    struct ibs_http_response r;
    char *url = url_of(srv, "/x");
    (void)state;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;
    req.headers = smuggle;
    req.nheaders = 1;
    assert_int_equal(ibs_http_send(&r, c, &req), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "HTTP request to be sent has an invalid header X-Test");
    req.headers = badname;
    assert_int_equal(ibs_http_send(&r, c, &req), IBS_EINVALID);
    req.headers = NULL;
    req.nheaders = 0;
    req.method = "TRACE";
    assert_int_equal(ibs_http_send(&r, c, &req), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, "HTTP method TRACE is not supported");
    req.method = "GET";
    req.url = "ftp://127.0.0.1/x";
    assert_int_equal(ibs_http_send(&r, c, &req), IBS_EINVALID);
    assert_int_equal(ibs_testsrv_nrequests(srv), 0);
    ibs_http_response_release(&r);
    free(url);
    ibs_http_client_free(c);
    ibs_testsrv_stop(srv);
}

static void test_log_lines_are_redacted(void **state)
{
    struct log_capture cap = {PTHREAD_MUTEX_INITIALIZER, IBS_BUF_INIT, 0};
    struct ibs_testsrv *srv = start_server(answer_with_headers, NULL);
    const struct ibs_http_header headers[] = {
        {"Authorization", "AWS4-HMAC-SHA256 Credential=AKID/x, SignedHeaders=host, "
                          "Signature=deadbeefcafe"},
        {"X-Amz-Security-Token", "TOKEN-SECRET-VALUE"},
    };
    struct ibs_http_options o;
    struct ibs_http_client *c = NULL;
    struct ibs_http_request req;
    struct ibs_http_response r;
    struct ibs_buf want = IBS_BUF_INIT;
    char *url = url_of(srv, "/p?a=1&X-Amz-Signature=abc123&x-amz-security-token=tok9&b=2");
    (void)state;

    memset(&o, 0, sizeof(o));
    o.log = capture_log;
    o.log_ctx = &cap;
    assert_int_equal(ibs_http_client_new(&c, &o), 0);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = headers;
    req.nheaders = 2;
    req.body = "{\"secret\":\"BODY-SECRET\"}";
    req.body_len = strlen(req.body);
    assert_int_equal(ibs_http_send(&r, c, &req), 0);
    ibs_http_response_release(&r);

    assert_int_equal(cap.lines, 2);
    ibs_buf_printf(&want,
                   "> POST %s/p?a=1&X-Amz-Signature=***&x-amz-security-token=***&b=2; body 24 "
                   "bytes\n",
                   ibs_testsrv_url(srv));
    assert_memory_equal(cap.text.ptr, want.ptr, want.size);
    assert_non_null(strstr(cap.text.ptr, "\n< 404 ("));
    assert_non_null(strstr(cap.text.ptr, " ms) x-amzn-requestid: req-123; body 18 bytes\n"));
    assert_null(strstr(cap.text.ptr, "deadbeefcafe"));
    assert_null(strstr(cap.text.ptr, "TOKEN-SECRET-VALUE"));
    assert_null(strstr(cap.text.ptr, "BODY-SECRET"));
    assert_null(strstr(cap.text.ptr, "abc123"));
    assert_null(strstr(cap.text.ptr, "tok9"));
    ibs_buf_release(&want);
    ibs_buf_release(&cap.text);
    free(url);
    ibs_http_client_free(c);
    ibs_testsrv_stop(srv);
}

/* ---- TLS -------------------------------------------------------------- */

struct tls_material {
    char dir[64];
    char bundle[128];
    char *cert_pem;
    char *key_pem;
};

static char *bio_string(BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *s = malloc((size_t)len + 1);

    assert_non_null(s);
    memcpy(s, data, (size_t)len);
    s[len] = '\0';
    return s;
}

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A self-signed P-256 certificate for 127.0.0.1, valid for a day. */
static void make_tls_material(struct tls_material *m)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    BIO *cert_bio = BIO_new(BIO_s_mem()), *key_bio = BIO_new(BIO_s_mem());
    FILE *f;

    assert_non_null(key);
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, NID_subject_alt_name, "IP:127.0.0.1");
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_int_equal(PEM_write_bio_X509(cert_bio, x), 1);
    assert_int_equal(PEM_write_bio_PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL), 1);
    m->cert_pem = bio_string(cert_bio);
    m->key_pem = bio_string(key_bio);

    strcpy(m->dir, "/tmp/ibs-test-http-XXXXXX");
    assert_non_null(mkdtemp(m->dir));
    snprintf(m->bundle, sizeof(m->bundle), "%s/ca.pem", m->dir);
    f = fopen(m->bundle, "w");
    assert_non_null(f);
    fputs(m->cert_pem, f);
    fclose(f);
    BIO_free(cert_bio);
    BIO_free(key_bio);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void free_tls_material(struct tls_material *m)
{
    unlink(m->bundle);
    rmdir(m->dir);
    free(m->cert_pem);
    free(m->key_pem);
}

static void test_https_needs_the_ca_bundle(void **state)
{
    struct tls_material m;
    struct ibs_testsrv_options so;
    struct ibs_testsrv *srv = NULL;
    struct ibs_http_options o;
    struct ibs_http_client *c = NULL;
    struct ibs_http_response r;
    char *url;
    (void)state;

    if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
        fail_msg("libmicrohttpd was built without TLS");
    make_tls_material(&m);
    memset(&so, 0, sizeof(so));
    so.tls_cert_pem = m.cert_pem;
    so.tls_key_pem = m.key_pem;
    assert_int_equal(ibs_testsrv_start(&srv, &so), 0);
    url = url_of(srv, "/secure");
    assert_int_equal(strncmp(url, "https://127.0.0.1:", 18), 0);
    unsetenv("AWS_CA_BUNDLE");

    /* With the bundle: verified and answered. */
    memset(&o, 0, sizeof(o));
    o.ca_bundle = m.bundle;
    assert_int_equal(ibs_http_client_new(&c, &o), 0);
    assert_int_equal(get(&r, c, url), 0);
    assert_int_equal(r.status, 200);
    ibs_http_response_release(&r);
    ibs_http_client_free(c);

    /* Without it the system store does not know the certificate. */
    c = new_client(1, 0);
    assert_int_equal(get(&r, c, url), IBS_EIO);
    assert_non_null(strstr(ibs_error_last()->message, "GET 127.0.0.1: "));
    assert_non_null(strstr(ibs_error_last()->message, "(curl error 60)"));
    ibs_http_response_release(&r);
    ibs_http_client_free(c);

    /* AWS_CA_BUNDLE is honoured when the options name none. */
    setenv("AWS_CA_BUNDLE", m.bundle, 1);
    c = new_client(1, 0);
    assert_int_equal(get(&r, c, url), 0);
    assert_int_equal(r.status, 200);
    ibs_http_response_release(&r);
    ibs_http_client_free(c);
    unsetenv("AWS_CA_BUNDLE");

    assert_int_equal(ibs_testsrv_nrequests(srv), 2);
    free(url);
    ibs_testsrv_stop(srv);
    free_tls_material(&m);
}

static void test_missing_ca_bundle_is_refused_early(void **state)
{
    struct ibs_http_options o;
    struct ibs_http_client *c = NULL;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.ca_bundle = "/nonexistent/ibs-ca.pem";
    assert_int_equal(ibs_http_client_new(&c, &o), IBS_EINVALID);
    assert_null(c);
    assert_string_equal(ibs_error_last()->message,
                        "CA bundle /nonexistent/ibs-ca.pem: No such file or directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_requests_reuse_one_connection),
        cmocka_unit_test(test_parallel_requests_are_bounded_by_the_pool),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_connection_refused_is_eio),
        cmocka_unit_test(test_dropped_connection_is_eio),
        cmocka_unit_test(test_headers_both_ways),
        cmocka_unit_test(test_bodies_per_method),
        cmocka_unit_test(test_invalid_requests_are_refused),
        cmocka_unit_test(test_log_lines_are_redacted),
        cmocka_unit_test(test_https_needs_the_ca_bundle),
        cmocka_unit_test(test_missing_ca_bundle_is_refused_early),
    };
    unsetenv("AWS_CA_BUNDLE");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
