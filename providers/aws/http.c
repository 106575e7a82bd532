/*
 * HTTP transport on libcurl's easy interface (see http.h for the contract).
 *
 * Pool: a client owns up to max_connections easy handles. A caller takes an
 * idle handle (or creates one while fewer than max exist, or waits on the
 * condition variable), runs one transfer, and gives the handle back. Idle
 * handles are a LIFO stack so that sequential calls reuse the most recently
 * used handle and thereby its open connection: each easy handle keeps its
 * own connection cache across curl_easy_reset().
 *
 * Sharing: the handles share one CURLSH for the DNS cache and TLS sessions
 * (resumed handshakes when a handle opens a new connection), with one mutex
 * per lock kind. Connections are deliberately not put in the share: libcurl
 * documents that a shared connection cache must not be used by concurrent
 * threads (curl known bug "A shared connection cache is not thread-safe"),
 * so each pooled handle keeps its own connection instead, which gives the
 * same effect: at most max_connections connections, reused across calls.
 *
 * Transfers are HTTP/1.1 like the AWS SDKs' default clients, with TLS peer
 * and host verification always on, no redirects, and only http/https.
 *
 * Logging: one line per request and per response through options.log. URLs
 * are logged with presigning parameters (X-Amz-Signature,
 * X-Amz-Security-Token) and user information masked; headers and bodies are
 * never logged, only body sizes.
 */
#include "providers/aws/http.h"

#include "util/error.h"

#include <curl/curl.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_CONNECTIONS 8
#define DEFAULT_CONNECT_TIMEOUT_MS 3100L
#define DEFAULT_TIMEOUT_MS 60000L
/* Bodies larger than this are refused rather than buffered (no Image
 * Builder response comes anywhere near it). */
#define MAX_RESPONSE_BODY ((size_t)256 * 1024 * 1024)

struct ibs_http_client {
    struct ibs_http_options opts;
    char *ca_bundle; /* owned copy, or NULL */
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    CURL **idle; /* stack of idle handles, capacity max */
    size_t nidle;
    size_t created; /* handles alive (idle or in use) */
    size_t max;
};

/* What the curl callbacks write into during one transfer. */
struct transfer {
    struct ibs_http_response *resp;
    bool too_large;
    bool oom;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe on every build, hence pthread_once.
 * It is never undone: curl_global_cleanup would break any other user of
 * libcurl in the process, and the process exit reclaims everything. */
static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr)
{
    struct ibs_http_client *c = userptr;
    (void)handle;
    (void)access;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userptr)
{
    struct ibs_http_client *c = userptr;
    (void)handle;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&c->share_locks[data]);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_line(const struct ibs_http_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logf_line(const struct ibs_http_client *c, const char *fmt, ...)
{
    struct ibs_buf line = IBS_BUF_INIT;
    va_list ap;

    if (!c->opts.log)
        return;
    va_start(ap, fmt);
    ibs_buf_vprintf(&line, fmt, ap);
    va_end(ap);
    if (!line.oom)
        c->opts.log(c->opts.log_ctx, line.ptr);
    ibs_buf_release(&line);
}

/* Start and length of the host in `url` (without brackets, port, user). */
static void url_host(const char *url, const char **out_host, size_t *out_len)
{
    const char *p = strstr(url, "://");
    const char *end, *at;

    p = p ? p + 3 : url;
    end = p + strcspn(p, "/?#");
    at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close) {
            *out_host = p + 1;
            *out_len = (size_t)(close - p - 1);
            return;
        }
    }
    *out_host = p;
    *out_len = strcspn(p, ":/?#");
    if (*out_len > (size_t)(end - p))
        *out_len = (size_t)(end - p);
}

static bool is_secret_param(const char *name, size_t len)
{
    static const char *const secret[] = {"X-Amz-Signature", "X-Amz-Security-Token"};
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
        if (strlen(secret[i]) == len && strncasecmp(name, secret[i], len) == 0)
            return true;
    }
    return false;
}

/* Appends `url` with user information and secret query values masked. */
static void put_redacted_url(struct ibs_buf *out, const char *url)
{
    const char *p = strstr(url, "://");
    const char *auth = p ? p + 3 : url;
    const char *auth_end = auth + strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', (size_t)(auth_end - auth));
    const char *q;

    if (at) {
        ibs_buf_put(out, url, (size_t)(auth - url));
        ibs_buf_puts(out, "***@");
        url = at + 1;
    }
    q = strchr(url, '?');
    if (!q) {
        ibs_buf_puts(out, url);
        return;
    }
    ibs_buf_put(out, url, (size_t)(q + 1 - url));
    for (p = q + 1; *p;) {
        size_t len = strcspn(p, "&#");
        size_t nlen = strcspn(p, "=&#");
        if (nlen < len && is_secret_param(p, nlen)) {
            ibs_buf_put(out, p, nlen + 1);
            ibs_buf_puts(out, "***");
        } else {
            ibs_buf_put(out, p, len);
        }
        p += len;
        if (*p == '#') {
            ibs_buf_puts(out, p);
            break;
        }
        if (*p == '&')
            ibs_buf_putc(out, *p++);
    }
}

void ibs_http_response_init(struct ibs_http_response *r)
{
    r->status = 0;
    ibs_vec_init(&r->headers);
    ibs_buf_init(&r->body);
    r->elapsed_ms = 0;
}

void ibs_http_response_release(struct ibs_http_response *r)
{
    if (!r)
        return;
    ibs_vec_release_with(&r->headers, free);
    ibs_buf_release(&r->body);
    ibs_http_response_init(r);
}

const char *ibs_http_response_header(const struct ibs_http_response *r, const char *name)
{
    size_t nlen = strlen(name);

    for (size_t i = 0; i < r->headers.count; i++) {
        const char *line = r->headers.items[i];
        const char *colon = strchr(line, ':');
        const char *v;

        if (!colon || (size_t)(colon - line) != nlen || strncasecmp(line, name, nlen) != 0)
            continue;
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        return v;
    }
    return NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t len = size * nmemb;

    if (len > MAX_RESPONSE_BODY - t->resp->body.size) {
        t->too_large = true;
        return 0;
    }
    if (ibs_buf_put(&t->resp->body, data, len)) {
        t->oom = true;
        return 0;
    }
    return len;
}

/* Header lines arrive one per call, CRLF included. A status line starts a
 * new response (after "100 Continue" or an interim answer), so the headers
 * gathered so far are dropped; obsolete folded lines extend the previous
 * header. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    struct ibs_vec *h = &t->resp->headers;
    size_t len = size * nmemb, n = len;
    char *line;

    while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
        n--;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        ibs_vec_release_with(h, free);
        return len;
    }
    if (n == 0)
        return len;
    if ((data[0] == ' ' || data[0] == '\t') && h->count > 0) {
        char *prev = h->items[h->count - 1];
        size_t plen = strlen(prev);
        char *joined = realloc(prev, plen + n + 1);
        if (!joined) {
            t->oom = true;
            return 0;
        }
        joined[plen] = ' ';
        while (n > 0 && (*data == ' ' || *data == '\t')) {
            data++;
            n--;
        }
        memcpy(joined + plen + 1, data, n);
        joined[plen + 1 + n] = '\0';
        h->items[h->count - 1] = joined;
        return len;
    }
    if (!(line = malloc(n + 1))) {
        t->oom = true;
        return 0;
    }
    memcpy(line, data, n);
    line[n] = '\0';
    if (ibs_vec_push(h, line)) {
        free(line);
        t->oom = true;
        return 0;
    }
    return len;
}

void ibs_http_client_free(struct ibs_http_client *client)
{
    if (!client)
        return;
    for (size_t i = 0; i < client->nidle; i++)
        curl_easy_cleanup(client->idle[i]);
    if (client->share)
        curl_share_cleanup(client->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&client->share_locks[i]);
    pthread_mutex_destroy(&client->mu);
    pthread_cond_destroy(&client->cv);
    free(client->idle);
    free(client->ca_bundle);
    free(client);
}

int ibs_http_client_new(struct ibs_http_client **out, const struct ibs_http_options *opts)
{
    struct ibs_http_client *c = NULL;
    const char *ca;
    int rc = 0;

    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return ibs_error_set(IBS_ERROR, "libcurl initialisation failed: %s",
                             curl_easy_strerror(global_rc));
    if (!(c = calloc(1, sizeof(*c))))
        return ibs_error_oom();
    /* The mutexes are initialised before anything can fail, so that
     * ibs_http_client_free() can always destroy them. */
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_locks[i], NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (opts)
        c->opts = *opts;
    c->opts.ca_bundle = NULL;
    c->max = c->opts.max_connections ? c->opts.max_connections : DEFAULT_MAX_CONNECTIONS;
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (c->opts.timeout_ms <= 0)
        c->opts.timeout_ms = DEFAULT_TIMEOUT_MS;

    ca = opts && opts->ca_bundle && *opts->ca_bundle ? opts->ca_bundle : getenv("AWS_CA_BUNDLE");
    if (ca && *ca) {
        /* Checked now: curl would only say "error setting certificate file"
         * at the first request. */
        if (access(ca, R_OK) != 0) {
            rc = ibs_error_set(IBS_EINVALID, "CA bundle %s: %s", ca, strerror(errno));
            goto done;
        }
        if (!(c->ca_bundle = strdup(ca))) {
            rc = ibs_error_oom();
            goto done;
        }
    }
    if (!(c->idle = calloc(c->max, sizeof(*c->idle)))) {
        rc = ibs_error_oom();
        goto done;
    }
    if (!(c->share = curl_share_init())) {
        rc = ibs_error_oom();
        goto done;
    }
    if (curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        rc = ibs_error_set(IBS_ERROR, "libcurl: cannot set up the shared cache");
        goto done;
    }
    *out = c;
    c = NULL;
done:
    ibs_http_client_free(c);
    return rc;
}

/* Takes an idle handle, creates one, or waits for one to come back. */
static int pool_acquire(CURL **out, struct ibs_http_client *c)
{
    CURL *h = NULL;
    bool create = false;

    pthread_mutex_lock(&c->mu);
    while (c->nidle == 0 && c->created >= c->max)
        pthread_cond_wait(&c->cv, &c->mu);
    if (c->nidle > 0) {
        h = c->idle[--c->nidle];
    } else {
        c->created++;
        create = true;
    }
    pthread_mutex_unlock(&c->mu);
    if (create && !(h = curl_easy_init())) {
        pthread_mutex_lock(&c->mu);
        c->created--;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        return ibs_error_oom();
    }
    *out = h;
    return 0;
}

static void pool_release(struct ibs_http_client *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    c->idle[c->nidle++] = h;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static bool valid_method(const char *m)
{
    static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(m, methods[i]) == 0)
            return true;
    }
    return false;
}

/* Header names are tokens; values must not smuggle line breaks. */
static bool valid_header(const struct ibs_http_header *h)
{
    if (!h->name || !*h->name || !h->value)
        return false;
    for (const char *p = h->name; *p; p++) {
        if (*p <= ' ' || *p == ':' || *p == 0x7f)
            return false;
    }
    return strpbrk(h->value, "\r\n") == NULL;
}

static int build_headers(struct curl_slist **out, const struct ibs_http_request *req, bool has_body)
{
    struct curl_slist *list = NULL, *next;
    struct ibs_buf line = IBS_BUF_INIT;
    bool content_type = false;
    int rc = 0;

    for (size_t i = 0; i < req->nheaders; i++) {
        const struct ibs_http_header *h = &req->headers[i];
        if (!valid_header(h)) {
            rc = ibs_error_set(IBS_EINVALID, "HTTP request to be sent has an invalid header %s",
                               h->name && *h->name ? h->name : "(unnamed)");
            goto done;
        }
        if (strcasecmp(h->name, "Content-Type") == 0)
            content_type = true;
        ibs_buf_clear(&line);
        /* curl drops "Name:" (empty value); "Name;" sends an empty header. */
        if (*h->value)
            ibs_buf_printf(&line, "%s: %s", h->name, h->value);
        else
            ibs_buf_printf(&line, "%s;", h->name);
        if ((rc = ibs_buf_oom(&line)))
            goto done;
        if (!(next = curl_slist_append(list, line.ptr))) {
            rc = ibs_error_oom();
            goto done;
        }
        list = next;
    }
    /* No "Expect: 100-continue" round trip for large bodies, and no
     * form-encoded Content-Type made up by curl for bodies without one. */
    if (!(next = curl_slist_append(list, "Expect:"))) {
        rc = ibs_error_oom();
        goto done;
    }
    list = next;
    if (has_body && !content_type) {
        if (!(next = curl_slist_append(list, "Content-Type:"))) {
            rc = ibs_error_oom();
            goto done;
        }
        list = next;
    }
    *out = list;
    list = NULL;
done:
    curl_slist_free_all(list);
    ibs_buf_release(&line);
    return rc;
}

#define SETOPT(h, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK)                                       \
            setopt_failed = true;                                                                  \
    } while (0)

/* GET, HEAD and a body-less DELETE send no body; PUT, POST and PATCH
 * always send one, if empty, so that Content-Length: 0 goes out (some
 * endpoints answer 411 Length Required without it). */
static bool sends_body(const struct ibs_http_request *req)
{
    return req->body_len > 0 ||
           (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0 &&
            strcmp(req->method, "DELETE") != 0);
}

static int configure(CURL *h, struct ibs_http_client *c, const struct ibs_http_request *req,
                     struct curl_slist *headers, struct transfer *t, char *errbuf)
{
    bool setopt_failed = false;
    long timeout = req->timeout_ms > 0 ? req->timeout_ms : c->opts.timeout_ms;

    /* Keeps the handle's connection cache; clears every option. */
    curl_easy_reset(h);
    SETOPT(h, CURLOPT_URL, req->url);
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_SHARE, c->share);
    SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_bundle)
        SETOPT(h, CURLOPT_CAINFO, c->ca_bundle);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    SETOPT(h, CURLOPT_TIMEOUT_MS, timeout);
    SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(h, CURLOPT_HTTPHEADER, headers);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(h, CURLOPT_WRITEDATA, t);
    SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(h, CURLOPT_HEADERDATA, t);
    SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);

    if (strcmp(req->method, "GET") == 0) {
        SETOPT(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "HEAD") == 0) {
        SETOPT(h, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(req->method, "POST") == 0)
            SETOPT(h, CURLOPT_POST, 1L);
        else
            SETOPT(h, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (sends_body(req)) {
        SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(h, CURLOPT_POSTFIELDS, req->body_len ? (const char *)req->body : "");
    }
    if (setopt_failed)
        return ibs_error_set(IBS_ERROR, "libcurl refused an option of a %s request", req->method);
    return 0;
}

static int transfer_error(CURLcode cc, const struct transfer *t, const char *errbuf,
                          const struct ibs_http_request *req, long elapsed, long timeout)
{
    const char *host;
    size_t hlen;
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);

    url_host(req->url, &host, &hlen);
    if (t->oom || cc == CURLE_OUT_OF_MEMORY)
        return ibs_error_oom();
    if (t->too_large)
        return ibs_error_set(IBS_EIO, "%s %.*s: response body larger than %zu bytes", req->method,
                             (int)hlen, host, MAX_RESPONSE_BODY);
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return ibs_error_set(IBS_ETIMEOUT, "%s %.*s: timed out after %ld ms (limit %ld ms)",
                             req->method, (int)hlen, host, elapsed, timeout);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return ibs_error_set(IBS_EINVALID, "%s %.*s: invalid URL: %s", req->method, (int)hlen, host,
                             why);
    default:
        return ibs_error_set(IBS_EIO, "%s %.*s: %s (curl error %d)", req->method, (int)hlen, host,
                             why, (int)cc);
    }
}

static void log_request(const struct ibs_http_client *c, const struct ibs_http_request *req)
{
    struct ibs_buf line = IBS_BUF_INIT;

    if (!c->opts.log)
        return;
    ibs_buf_printf(&line, "> %s ", req->method);
    put_redacted_url(&line, req->url);
    if (req->body_len)
        ibs_buf_printf(&line, "; body %zu bytes", req->body_len);
    if (!line.oom)
        c->opts.log(c->opts.log_ctx, line.ptr);
    ibs_buf_release(&line);
}

static void log_response(const struct ibs_http_client *c, const struct ibs_http_response *r)
{
    const char *id = ibs_http_response_header(r, "x-amzn-requestid");
    const char *id_name = "x-amzn-requestid";

    if (!id) {
        id = ibs_http_response_header(r, "x-amz-request-id");
        id_name = "x-amz-request-id";
    }
    if (id)
        logf_line(c, "< %ld (%ld ms) %s: %s; body %zu bytes", r->status, r->elapsed_ms, id_name, id,
                  r->body.size);
    else
        logf_line(c, "< %ld (%ld ms); body %zu bytes", r->status, r->elapsed_ms, r->body.size);
}

int ibs_http_send(struct ibs_http_response *out, struct ibs_http_client *client,
                  const struct ibs_http_request *req)
{
    struct curl_slist *headers = NULL;
    struct transfer t;
    char errbuf[CURL_ERROR_SIZE];
    CURL *h = NULL;
    CURLcode cc;
    long start, timeout;
    int rc;

    ibs_http_response_init(out);
    t.resp = out;
    t.too_large = false;
    t.oom = false;
    if (!client || !req || !req->method || !req->url)
        return ibs_error_set(IBS_EINVALID, "HTTP request without client, method or URL");
    if (!valid_method(req->method))
        return ibs_error_set(IBS_EINVALID, "HTTP method %s is not supported", req->method);
    if (req->body_len && !req->body)
        return ibs_error_set(IBS_EINVALID, "HTTP request body length without a body");
    if ((rc = build_headers(&headers, req, sends_body(req))))
        goto done;
    if ((rc = pool_acquire(&h, client)))
        goto done;
    errbuf[0] = '\0';
    if ((rc = configure(h, client, req, headers, &t, errbuf)))
        goto done;

    log_request(client, req);
    timeout = req->timeout_ms > 0 ? req->timeout_ms : client->opts.timeout_ms;
    start = now_ms();
    cc = curl_easy_perform(h);
    out->elapsed_ms = now_ms() - start;
    if (cc != CURLE_OK) {
        rc = transfer_error(cc, &t, errbuf, req, out->elapsed_ms, timeout);
        logf_line(client, "< failed (%ld ms): %s", out->elapsed_ms, ibs_error_last()->message);
        goto done;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    log_response(client, out);
done:
    if (h) {
        /* The handle must not keep pointers into this call's stack. */
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        pool_release(client, h);
    }
    curl_slist_free_all(headers);
    if (rc) {
        /* A failed call leaves no status, headers or body, but says how
         * long the attempt took (callers report it). */
        long elapsed = out->elapsed_ms;
        ibs_http_response_release(out);
        out->elapsed_ms = elapsed;
    }
    return rc;
}
