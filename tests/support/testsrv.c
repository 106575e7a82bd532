/*
 * Loopback test server on libmicrohttpd; see testsrv.h.
 *
 * MHD hands the access handler a percent-decoded URL, so the raw request
 * target is taken from the URI log callback, whose return value becomes the
 * per-request state. The access handler is called once when the headers
 * are in, then once per body chunk, then once more with no data: only then
 * is the request complete and the test's handler asked.
 */
#include "tests/support/testsrv.h"

#include "util/error.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

struct ibs_testsrv {
    struct MHD_Daemon *daemon;
    struct ibs_testsrv_options opts;
    char url[64];
    unsigned port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    struct ibs_vec requests; /* struct ibs_testsrv_request * */
    unsigned connections;
    unsigned inflight, max_inflight;
};

/* One request being received. */
struct pending {
    char *target;
    bool started;
    struct ibs_buf body;
};

static void request_free(void *p)
{
    struct ibs_testsrv_request *r = p;
    if (!r)
        return;
    free(r->method);
    free(r->target);
    free(r->path);
    free(r->query);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    free(r);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct pending *p = calloc(1, sizeof(*p));
    (void)cls;
    (void)conn;
    if (!p)
        return NULL;
    ibs_buf_init(&p->body);
    p->target = strdup(uri);
    return p;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct pending *p = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (!p)
        return;
    free(p->target);
    ibs_buf_release(&p->body);
    free(p);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct ibs_testsrv *srv = cls;
    (void)conn;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    pthread_mutex_lock(&srv->mu);
    *socket_context = (void *)(uintptr_t)++srv->connections;
    pthread_mutex_unlock(&srv->mu);
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct ibs_testsrv_request *r = cls;
    struct ibs_testsrv_header *h;
    (void)kind;

    h = realloc(r->headers, (r->nheaders + 1) * sizeof(*h));
    if (!h)
        return MHD_NO;
    r->headers = h;
    h[r->nheaders].name = strdup(key);
    h[r->nheaders].value = strdup(value ? value : "");
    r->nheaders++;
    return MHD_YES;
}

static struct ibs_testsrv_request *record(struct MHD_Connection *conn, const char *method,
                                          struct pending *p)
{
    struct ibs_testsrv_request *r = calloc(1, sizeof(*r));
    const union MHD_ConnectionInfo *info;
    const char *q;

    if (!r)
        return NULL;
    q = strchr(p->target, '?');
    r->method = strdup(method);
    r->target = strdup(p->target);
    r->path = q ? strndup(p->target, (size_t)(q - p->target)) : strdup(p->target);
    r->query = strdup(q ? q + 1 : "");
    r->body_len = p->body.size;
    r->body = malloc(p->body.size + 1);
    if (r->body) {
        memcpy(r->body, p->body.ptr, p->body.size);
        r->body[p->body.size] = '\0';
    }
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header, r);
    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->conn = info ? (unsigned)(uintptr_t)info->socket_context : 0;
    if (!r->method || !r->target || !r->path || !r->query || !r->body) {
        request_free(r);
        return NULL;
    }
    return r;
}

static void wait_delay(struct ibs_testsrv *srv, long ms)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->mu);
    while (!srv->stopping) {
        if (pthread_cond_timedwait(&srv->cv, &srv->mu, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&srv->mu);
}

static enum MHD_Result answer(struct ibs_testsrv *srv, struct MHD_Connection *conn,
                              struct ibs_testsrv_response *resp)
{
    struct MHD_Response *mr;
    enum MHD_Result ok;

    if (resp->delay_ms > 0)
        wait_delay(srv, resp->delay_ms);
    if (resp->status == 0)
        return MHD_NO;
    mr = MHD_create_response_from_buffer(resp->body.size, resp->body.ptr, MHD_RESPMEM_MUST_COPY);
    if (!mr)
        return MHD_NO;
    for (size_t i = 0; i < resp->headers.count; i++) {
        char *line = resp->headers.items[i];
        char *colon = strchr(line, ':');
        *colon = '\0';
        MHD_add_response_header(mr, line, colon + 2);
        *colon = ':';
    }
    ok = MHD_queue_response(conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    return ok;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct ibs_testsrv *srv = cls;
    struct pending *p = *con_cls;
    struct ibs_testsrv_request *r;
    struct ibs_testsrv_response resp;
    enum MHD_Result ok;
    (void)url;
    (void)version;

    if (!p || !p->target)
        return MHD_NO;
    if (!p->started) {
        p->started = true;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (ibs_buf_put(&p->body, upload_data, *upload_data_size))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!(r = record(conn, method, p)))
        return MHD_NO;
    pthread_mutex_lock(&srv->mu);
    r->index = (unsigned)srv->requests.count;
    if (ibs_vec_push(&srv->requests, r)) {
        pthread_mutex_unlock(&srv->mu);
        request_free(r);
        return MHD_NO;
    }
    if (++srv->inflight > srv->max_inflight)
        srv->max_inflight = srv->inflight;
    pthread_mutex_unlock(&srv->mu);

    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    ibs_vec_init(&resp.headers);
    ibs_buf_init(&resp.body);
    ibs_buf_puts(&resp.body, "{}");
    if (srv->opts.handler)
        srv->opts.handler(srv->opts.ctx, r, &resp);
    ok = answer(srv, conn, &resp);
    ibs_vec_release_with(&resp.headers, free);
    ibs_buf_release(&resp.body);

    pthread_mutex_lock(&srv->mu);
    srv->inflight--;
    pthread_mutex_unlock(&srv->mu);
    return ok;
}

void ibs_testsrv_stop(struct ibs_testsrv *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    ibs_vec_release_with(&srv->requests, request_free);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cv);
    free(srv);
}

int ibs_testsrv_start(struct ibs_testsrv **out, const struct ibs_testsrv_options *opts)
{
    struct ibs_testsrv *srv = calloc(1, sizeof(*srv));
    struct sockaddr_in addr;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    bool tls;

    *out = NULL;
    if (!srv)
        return ibs_error_oom();
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    ibs_vec_init(&srv->requests);
    if (opts)
        srv->opts = *opts;
    tls = srv->opts.tls_cert_pem && srv->opts.tls_key_pem;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (tls) {
        flags |= MHD_USE_TLS;
        srv->daemon =
            MHD_start_daemon(flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED,
                             on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
                             MHD_OPTION_HTTPS_MEM_KEY, srv->opts.tls_key_pem,
                             MHD_OPTION_HTTPS_MEM_CERT, srv->opts.tls_cert_pem, MHD_OPTION_END);
    } else {
        srv->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_SOCK_ADDR, &addr,
            MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_END);
    }
    if (!srv->daemon) {
        ibs_testsrv_stop(srv);
        return ibs_error_set(IBS_EIO, "test server: MHD_start_daemon failed");
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    snprintf(srv->url, sizeof(srv->url), "%s://127.0.0.1:%u", tls ? "https" : "http", srv->port);
    *out = srv;
    return 0;
}

const char *ibs_testsrv_url(const struct ibs_testsrv *srv)
{
    return srv->url;
}

unsigned ibs_testsrv_port(const struct ibs_testsrv *srv)
{
    return srv->port;
}

size_t ibs_testsrv_nrequests(struct ibs_testsrv *srv)
{
    size_t n;
    pthread_mutex_lock(&srv->mu);
    n = srv->requests.count;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

const struct ibs_testsrv_request *ibs_testsrv_request_at(struct ibs_testsrv *srv, size_t i)
{
    const struct ibs_testsrv_request *r = NULL;
    pthread_mutex_lock(&srv->mu);
    if (i < srv->requests.count)
        r = srv->requests.items[i];
    pthread_mutex_unlock(&srv->mu);
    return r;
}

unsigned ibs_testsrv_connections(struct ibs_testsrv *srv)
{
    unsigned n;
    pthread_mutex_lock(&srv->mu);
    n = srv->connections;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

unsigned ibs_testsrv_max_inflight(struct ibs_testsrv *srv)
{
    unsigned n;
    pthread_mutex_lock(&srv->mu);
    n = srv->max_inflight;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

void ibs_testsrv_reset(struct ibs_testsrv *srv)
{
    pthread_mutex_lock(&srv->mu);
    ibs_vec_release_with(&srv->requests, request_free);
    srv->connections = 0;
    srv->max_inflight = srv->inflight;
    pthread_mutex_unlock(&srv->mu);
}

const char *ibs_testsrv_request_header(const struct ibs_testsrv_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    }
    return NULL;
}

int ibs_testsrv_response_header(struct ibs_testsrv_response *resp, const char *name,
                                const char *value)
{
    struct ibs_buf line = IBS_BUF_INIT;
    char *s;

    ibs_buf_printf(&line, "%s: %s", name, value);
    if (!(s = ibs_buf_detach(&line)))
        return IBS_ENOMEM;
    if (ibs_vec_push(&resp->headers, s)) {
        free(s);
        return IBS_ENOMEM;
    }
    return 0;
}
