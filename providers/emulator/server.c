/*
 * The emulator's HTTP server: libmicrohttpd in a thread pool, the
 * REST-JSON binding of the Image Builder API onto the engine, SigV4
 * verification, fault injection and the admin endpoint (server.h).
 *
 * One request goes through these steps; `struct request` carries it:
 *
 *   1. MHD's URI log callback sees the request target exactly as sent
 *      (MHD percent-decodes the URL it passes to the handler, but SigV4
 *      signs the wire form, and /tags/{resourceArn} needs '%2F' kept apart
 *      from '/' until the route is known) and creates the request.
 *   2. The body is accumulated up to max_body; past that the request is
 *      answered 413 once it has been read (or at once when Content-Length
 *      announces it).
 *   3. /_ibsync/... goes to the admin endpoint. Everything else is an API
 *      request: signature check (when credentials are set), route by
 *      method + decoded path, input map from URI label, query string,
 *      headers and JSON body, each converted to its member's shape.
 *   4. The fault decision (faults.h). Injected latency suspends the
 *      connection and a timer thread resumes it when due, so a slow call
 *      does not hold up a worker thread and the other connections on it.
 *   5. The engine call; its answer, an injected error, or for a drop
 *      nothing at all: the handler returns MHD_NO after the engine has
 *      committed, and MHD closes the connection without a response.
 *
 * A request counter (URI log callback up, completion callback down) lets
 * ibs_server_stop() wait for requests in flight after it stopped accepting.
 */
#include "providers/emulator/server.h"

#include "api/api.h"
#include "providers/aws/sigv4.h"
#include "providers/emulator/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"
#include "util/vec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ADMIN_PREFIX "/_ibsync"
#define SIGNING_NAME "imagebuilder"
/* Request headers, query and request line must fit in this per-connection pool. */
#define CONNECTION_MEMORY (128u * 1024u)
/* Idle keep-alive connections are closed after this many seconds. */
#define CONNECTION_TIMEOUT_S 120u

struct timer_entry {
    int64_t due_ms;
    struct MHD_Connection *conn;
    struct timer_entry *next;
};

struct ibs_server {
    struct ibs_emulator *emu; /* borrowed */
    struct MHD_Daemon *daemon;
    struct ibs_faults *faults;
    char *access_key_id; /* NULL: signatures are not checked */
    char *secret_access_key;
    size_t max_body;
    unsigned port;
    char *url;
    int listen_fd; /* handed back by MHD_quiesce_daemon(); -1 before */

    FILE *log;
    pthread_mutex_t log_lock;

    /* Requests in flight; `idle` is signalled when the count drops to 0. */
    pthread_mutex_t lock;
    pthread_cond_t idle;
    size_t active;
    atomic_bool stopping; /* read without the lock by answer() */
    bool stopped;

    /* Calls waiting for their injected latency, sorted by due time. */
    pthread_mutex_t timer_lock;
    pthread_cond_t timer_cond;
    struct timer_entry *timers;
    bool timer_closed; /* no more suspensions: run calls at once */
    bool timer_quit;
    pthread_t timer_thread;
    bool timer_started;
    bool sync_ready; /* the mutexes and conditions above are initialised */
};

enum request_state {
    REQ_HEADERS, /* the handler has not been called yet */
    REQ_BODY,    /* receiving the body */
    REQ_DELAYED, /* prepared; waiting for injected latency (or about to run) */
    REQ_DONE,    /* answered */
};

struct request {
    struct ibs_server *srv;
    char *target; /* request target as received: path and query */
    int64_t start_ms;
    enum request_state state;
    struct ibs_buf body;
    bool too_large;
    /* The call, once prepared. */
    const struct ibs_api_operation *op;
    struct ibs_value *input;
    struct ibs_fault_decision fault;
};

/* A request refused before the engine sees it. */
struct reject {
    int status;
    const char *code;
    char message[512];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_reject(struct reject *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_reject(struct reject *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    r->code = code;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
}

/* A fresh UUID v4 for answers the engine did not produce. */
static void new_request_id(char *out)
{
    if (ibs_emulator_uuid(out, IBS_EMULATOR_REQUEST_ID_SIZE) == 0)
        return;
    /* Only an identifier: a clock-derived value still tells requests apart. */
    snprintf(out, IBS_EMULATOR_REQUEST_ID_SIZE, "00000000-0000-4000-8000-%012" PRIx64,
             (uint64_t)mono_ms() & UINT64_C(0xffffffffffff));
}

/* ---- percent-decoding and the query string ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/*
 * Percent-decodes `len` bytes of `s` into a new string *out. '+' stays a
 * plus: the SDKs encode spaces as %20, and SigV4 signs '+' as a literal.
 * IBS_EINVALID for a bad escape, a NUL byte or invalid UTF-8.
 */
static int pct_decode(char **out, const char *s, size_t len)
{
    char *d;
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    if (!(d = malloc(len + 1)))
        return ibs_error_oom();
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] != '%') {
            d[n++] = s[i];
            continue;
        }
        if (i + 2 >= len) {
            rc = ibs_error_set(IBS_EINVALID, "incomplete percent-escape");
            goto done;
        }
        hi = hex_value(s[i + 1]);
        lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) {
            rc = ibs_error_set(IBS_EINVALID, "invalid percent-escape '%%%c%c'", s[i + 1], s[i + 2]);
            goto done;
        }
        d[n++] = (char)(hi * 16 + lo);
        i += 2;
    }
    d[n] = '\0';
    if (memchr(d, '\0', n) || !utf8_valid((const unsigned char *)d, n)) {
        rc = ibs_error_set(IBS_EINVALID, "the decoded text is not valid UTF-8 without NULs");
        goto done;
    }
    *out = d;
    d = NULL;
done:
    free(d);
    return rc;
}

struct query_param {
    char *key;
    char *value;
};

static void query_param_free(void *p)
{
    struct query_param *q = p;
    if (!q)
        return;
    free(q->key);
    free(q->value);
    free(q);
}

/* Splits the raw query string into decoded (key, value) pairs, in order;
 * "k" without '=' has the value "". */
static int parse_query(struct ibs_vec *out, const char *query)
{
    const char *p = query;
    int rc = 0;

    while (p && *p && !rc) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        struct query_param *q = calloc(1, sizeof(*q));
        if (!q) {
            rc = ibs_error_oom();
            break;
        }
        if (len > 0) {
            size_t klen = eq ? (size_t)(eq - p) : len;
            rc = pct_decode(&q->key, p, klen);
            if (!rc)
                rc = eq ? pct_decode(&q->value, eq + 1, len - klen - 1)
                        : pct_decode(&q->value, "", 0);
        }
        if (rc || len == 0 || (rc = ibs_vec_push(out, q)))
            query_param_free(q);
        p += len;
        if (*p == '&')
            p++;
    }
    return rc;
}

/* ---- REST-JSON binding ---- */

/* Parses a whole decimal integer; false if `s` is not one or overflows. */
static bool parse_int64(int64_t *out, const char *s)
{
    char *end;
    long long v;

    if (!*s || (*s != '-' && (*s < '0' || *s > '9')))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/*
 * The value of a scalar member sent as text (URI label, query, header),
 * typed as its shape says. Text that does not convert stays a string, so
 * the engine's validation reports it with the error the operation
 * documents and the member's name, as for a wrong type in a JSON body.
 */
static struct ibs_value *scalar_from_text(const struct ibs_api_shape *shape, const char *s)
{
    int64_t i;
    double d;
    char *end;

    switch (shape ? shape->type : IBS_API_STRING) {
    case IBS_API_INTEGER:
    case IBS_API_LONG:
        if (parse_int64(&i, s))
            return ibs_value_new_int(i);
        break;
    case IBS_API_DOUBLE:
        errno = 0;
        d = strtod(s, &end);
        if (*s && !*end && !errno)
            return ibs_value_new_float(d);
        break;
    case IBS_API_BOOLEAN:
        if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
            return ibs_value_new_bool(s[0] == 't');
        break;
    default:
        break;
    }
    return ibs_value_new_string(s);
}

/* map[key] = item, where item may be NULL from a failed allocation. */
static int put(struct ibs_value *map, const char *key, struct ibs_value *item)
{
    if (!item)
        return IBS_ENOMEM;
    return ibs_value_map_set(map, key, item);
}

/* Whether query parameter `key` is bound to a named member of `shape`. */
static bool query_key_bound(const struct ibs_api_shape *shape, const char *key)
{
    for (size_t i = 0; i < shape->nmembers; i++) {
        const struct ibs_api_member *m = &shape->members[i];
        if (m->location == IBS_API_LOC_QUERYSTRING && m->shape->type != IBS_API_MAP &&
            strcmp(m->location_name, key) == 0)
            return true;
    }
    return false;
}

/* The query-string member `m` from `params`: a list gathers every
 * occurrence of its key (tagKeys=a&tagKeys=b), a map takes the parameters
 * no other member claims, a scalar the first occurrence. */
static int bind_query_member(struct ibs_value *input, const struct ibs_api_member *m,
                             const struct ibs_api_shape *shape, const struct ibs_vec *params)
{
    struct ibs_value *v = NULL;
    int rc = 0;

    if (m->shape->type == IBS_API_LIST || m->shape->type == IBS_API_MAP) {
        bool list = m->shape->type == IBS_API_LIST;
        bool any = false;
        if (!(v = list ? ibs_value_new_list() : ibs_value_new_map()))
            return IBS_ENOMEM;
        for (size_t i = 0; i < params->count && !rc; i++) {
            const struct query_param *q = params->items[i];
            if (list && strcmp(q->key, m->location_name) == 0) {
                struct ibs_value *item = scalar_from_text(m->shape->item, q->value);
                rc = item ? ibs_value_list_append(v, item) : IBS_ENOMEM;
                any = true;
            } else if (!list && !query_key_bound(shape, q->key)) {
                rc = put(v, q->key, scalar_from_text(m->shape->item, q->value));
                any = true;
            }
        }
        if (rc || !any)
            goto done;
    } else {
        for (size_t i = 0; i < params->count && !v; i++) {
            const struct query_param *q = params->items[i];
            if (strcmp(q->key, m->location_name) == 0 &&
                !(v = scalar_from_text(m->shape, q->value)))
                return IBS_ENOMEM;
        }
        if (!v)
            return 0;
    }
    rc = ibs_value_map_set(input, m->name, v);
    v = NULL;
done:
    ibs_value_free(v);
    return rc;
}

/* The name of the {label} in a URI template, into `out` (without a greedy '+'). */
static void uri_label_name(char *out, size_t size, const char *uri)
{
    const char *open = strchr(uri, '{');
    const char *close = open ? strchr(open, '}') : NULL;
    size_t len = open && close ? (size_t)(close - open - 1) : 0;

    if (len && open[len] == '+')
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(out, open ? open + 1 : "", len);
    out[len] = '\0';
}

/*
 * Builds the engine's input map for `req->op`: body members from the JSON
 * body, then the URI label, the query-string and header members under
 * their member names. Protocol errors go to *rej (status set) with rc 0.
 */
static int build_input(struct request *req, struct reject *rej, struct MHD_Connection *conn,
                       const char *label, const char *query)
{
    const struct ibs_api_shape *shape = req->op->input;
    struct ibs_vec params = IBS_VEC_INIT;
    struct ibs_value *input = NULL;
    char label_name[128];
    bool has_body_members = false;
    int rc = 0;

    for (size_t i = 0; shape && i < shape->nmembers; i++)
        has_body_members |= shape->members[i].location == IBS_API_LOC_BODY;
    if (has_body_members && req->body.size > 0) {
        rc = ibs_json_parse(&input, req->body.ptr, req->body.size);
        if (rc == IBS_EINVALID) {
            /* What the service answers for a body that is not JSON. */
            set_reject(rej, 400, "SerializationException", "The request body is not valid JSON: %s",
                       ibs_error_last()->message);
            rc = 0;
            goto done;
        }
        if (rc)
            goto done;
    } else if (!(input = ibs_value_new_map())) {
        rc = IBS_ENOMEM;
        goto done;
    }
    /* A non-object body is the engine's to reject, with the operation's
     * documented validation error. */
    if (input->type != IBS_VALUE_MAP || !shape)
        goto done;
    if ((rc = parse_query(&params, query))) {
        if (rc == IBS_EINVALID) {
            set_reject(rej, 400, "MalformedHttpRequestException", "Malformed query string: %s",
                       ibs_error_last()->message);
            rc = 0;
        }
        goto done;
    }
    uri_label_name(label_name, sizeof(label_name), req->op->uri);
    for (size_t i = 0; i < shape->nmembers && !rc; i++) {
        const struct ibs_api_member *m = &shape->members[i];
        const char *text;
        if (m->location == IBS_API_LOC_BODY)
            continue;
        /* Only the body's own members are read from the body. */
        ibs_value_map_remove(input, m->name);
        switch (m->location) {
        case IBS_API_LOC_URI:
            if (label && strcmp(m->location_name, label_name) == 0)
                rc = put(input, m->name, scalar_from_text(m->shape, label));
            break;
        case IBS_API_LOC_QUERYSTRING:
            rc = bind_query_member(input, m, shape, &params);
            break;
        case IBS_API_LOC_HEADER:
            text = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, m->location_name);
            if (text)
                rc = put(input, m->name, scalar_from_text(m->shape, text));
            break;
        case IBS_API_LOC_BODY:
            break;
        }
    }
done:
    ibs_vec_release_with(&params, query_param_free);
    if (rc || rej->status) {
        ibs_value_free(input);
        input = NULL;
    }
    req->input = input;
    return rc;
}

/* ---- answers and the request log ---- */

static void iso8601_now(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    char base[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03ldZ", base, ts.tv_nsec / 1000000L);
}

/* The path part of the request target, as received. */
static size_t target_path_len(const char *target)
{
    return strcspn(target, "?");
}

/* Appends one line to the request log (when there is one). A failure to
 * write is not the client's problem and is not reported to it. */
static void log_request(struct request *req, const char *method, int status, enum ibs_fault fault,
                        const char *request_id)
{
    struct ibs_server *srv = req->srv;
    struct ibs_value *line = NULL;
    struct ibs_buf text = IBS_BUF_INIT;
    char now[48];

    if (!srv->log)
        return;
    iso8601_now(now, sizeof(now));
    if (!(line = ibs_value_new_map()) || put(line, "time", ibs_value_new_string(now)) ||
        put(line, "method", ibs_value_new_string(method)) ||
        put(line, "path", ibs_value_new_stringn(req->target, target_path_len(req->target))) ||
        put(line, "operation",
            req->op ? ibs_value_new_string(req->op->name) : ibs_value_new_null()) ||
        put(line, "status", ibs_value_new_int(status)) ||
        put(line, "latency_ms", ibs_value_new_int(mono_ms() - req->start_ms)) ||
        put(line, "fault", ibs_value_new_string(ibs_faults_name(fault))) ||
        put(line, "requestId", ibs_value_new_string(request_id)))
        goto done;
    if (ibs_json_write(&text, line, 0) || ibs_buf_putc(&text, '\n'))
        goto done;
    pthread_mutex_lock(&srv->log_lock);
    fwrite(text.ptr, 1, text.size, srv->log);
    fflush(srv->log);
    pthread_mutex_unlock(&srv->log_lock);
done:
    ibs_buf_release(&text);
    ibs_value_free(line);
}

/*
 * Queues an answer: `body` (heap JSON text, taken; NULL sends "{}") with
 * status `status`, Content-Type application/json, x-amzn-RequestId and,
 * for an error, x-amzn-ErrorType. The header names are written as the
 * service writes them; HTTP header names are case-insensitive and the SDKs
 * look them up so.
 */
static enum MHD_Result answer(struct request *req, struct MHD_Connection *conn, int status,
                              const char *error_code, char *body, const char *request_id)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    size_t len;

    req->state = REQ_DONE;
    if (!body && !(body = strdup("{}")))
        return MHD_NO;
    len = strlen(body);
    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
            MHD_YES ||
        MHD_add_response_header(resp, "x-amzn-RequestId", request_id) != MHD_YES ||
        (error_code && MHD_add_response_header(resp, "x-amzn-ErrorType", error_code) != MHD_YES)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    if (atomic_load(&req->srv->stopping))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The error body the service sends: {"message": "..."}; heap text or NULL. */
static char *error_body(const char *message)
{
    struct ibs_value *v = ibs_value_new_map();
    struct ibs_buf text = IBS_BUF_INIT;
    char *out = NULL;

    if (v && put(v, "message", ibs_value_new_string(message)) == 0 &&
        ibs_json_write(&text, v, 0) == 0)
        out = ibs_buf_detach(&text);
    ibs_buf_release(&text);
    ibs_value_free(v);
    return out;
}

static enum MHD_Result answer_error(struct request *req, struct MHD_Connection *conn,
                                    const char *method, int status, const char *code,
                                    const char *message, const char *request_id,
                                    enum ibs_fault fault, bool logged)
{
    char *body = error_body(message);

    if (!body)
        return MHD_NO;
    if (logged)
        log_request(req, method, status, fault, request_id);
    return answer(req, conn, status, code, body, request_id);
}

static enum MHD_Result answer_reject(struct request *req, struct MHD_Connection *conn,
                                     const char *method, const struct reject *rej, bool logged)
{
    char rid[IBS_EMULATOR_REQUEST_ID_SIZE];

    new_request_id(rid);
    return answer_error(req, conn, method, rej->status, rej->code, rej->message, rid,
                        IBS_FAULT_NONE, logged);
}

static enum MHD_Result answer_value(struct request *req, struct MHD_Connection *conn,
                                    const struct ibs_value *v, const char *request_id)
{
    struct ibs_buf text = IBS_BUF_INIT;
    char *body;

    if (ibs_json_write(&text, v, 0) || !(body = ibs_buf_detach(&text))) {
        ibs_buf_release(&text);
        return MHD_NO;
    }
    return answer(req, conn, 200, NULL, body, request_id);
}

/* ---- the admin endpoint ---- */

static enum MHD_Result admin_faults(struct request *req, struct MHD_Connection *conn,
                                    const char *method, const char *rid)
{
    struct ibs_faults_config cfg;
    struct ibs_value *patch = NULL, *out = NULL;
    enum MHD_Result ret = MHD_NO;

    if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        if (ibs_json_parse(&patch, req->body.ptr, req->body.size) ||
            ibs_faults_update(req->srv->faults, patch)) {
            ret = answer_error(req, conn, method, 400, "ValidationError", ibs_error_last()->message,
                               rid, IBS_FAULT_NONE, false);
            goto done;
        }
    } else if (strcmp(method, "GET") != 0) {
        ret = answer_error(req, conn, method, 405, "MethodNotAllowed",
                           "Use GET to read the fault settings and POST to change them.", rid,
                           IBS_FAULT_NONE, false);
        goto done;
    }
    ibs_faults_get(&cfg, req->srv->faults);
    if (ibs_faults_to_value(&out, &cfg) == 0)
        ret = answer_value(req, conn, out, rid);
done:
    ibs_value_free(patch);
    ibs_value_free(out);
    return ret;
}

static enum MHD_Result admin_health(struct request *req, struct MHD_Connection *conn)
{
    struct ibs_server *srv = req->srv;
    struct ibs_value *v = ibs_value_new_map();
    char rid[IBS_EMULATOR_REQUEST_ID_SIZE];
    enum MHD_Result ret = MHD_NO;
    size_t active;
    bool stopping;

    new_request_id(rid);
    pthread_mutex_lock(&srv->lock);
    active = srv->active;
    pthread_mutex_unlock(&srv->lock);
    stopping = atomic_load(&srv->stopping);
    if (v && put(v, "status", ibs_value_new_string(stopping ? "stopping" : "ok")) == 0 &&
        put(v, "region", ibs_value_new_string(ibs_emulator_region(srv->emu))) == 0 &&
        put(v, "account", ibs_value_new_string(ibs_emulator_account(srv->emu))) == 0 &&
        /* This request is one of them. */
        put(v, "inFlight", ibs_value_new_int((int64_t)(active ? active - 1 : 0))) == 0)
        ret = answer_value(req, conn, v, rid);
    ibs_value_free(v);
    return ret;
}

static enum MHD_Result handle_admin(struct request *req, struct MHD_Connection *conn,
                                    const char *method, const char *path, size_t path_len)
{
    char rid[IBS_EMULATOR_REQUEST_ID_SIZE];

    new_request_id(rid);
    if (req->too_large)
        return answer_error(req, conn, method, 413, "RequestEntityTooLargeException",
                            "The request body is too large.", rid, IBS_FAULT_NONE, false);
    if (path_len == strlen(ADMIN_PREFIX "/faults") &&
        strncmp(path, ADMIN_PREFIX "/faults", path_len) == 0)
        return admin_faults(req, conn, method, rid);
    if (path_len == strlen(ADMIN_PREFIX "/health") &&
        strncmp(path, ADMIN_PREFIX "/health", path_len) == 0) {
        if (strcmp(method, "GET") != 0)
            return answer_error(req, conn, method, 405, "MethodNotAllowed",
                                "Use GET to read the health.", rid, IBS_FAULT_NONE, false);
        return admin_health(req, conn);
    }
    return answer_error(req, conn, method, 404, "UnknownOperationException",
                        "Unknown admin resource; there are " ADMIN_PREFIX
                        "/health and " ADMIN_PREFIX "/faults.",
                        rid, IBS_FAULT_NONE, false);
}

/* ---- SigV4 ---- */

struct header_list {
    struct ibs_sigv4_header *items;
    size_t count;
    size_t cap;
    bool oom;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct header_list *h = cls;

    (void)kind;
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct ibs_sigv4_header *items = realloc(h->items, cap * sizeof(*items));
        if (!items) {
            h->oom = true;
            return MHD_NO;
        }
        h->items = items;
        h->cap = cap;
    }
    h->items[h->count].name = key;
    h->items[h->count].value = value ? value : "";
    h->count++;
    return MHD_YES;
}

static int get_secret(struct ibs_buf *out, const char *access_key_id, void *ctx)
{
    const struct ibs_server *srv = ctx;

    if (strcmp(access_key_id, srv->access_key_id) != 0)
        return IBS_ENOTFOUND;
    return ibs_buf_puts(out, srv->secret_access_key);
}

/* Checks the request's signature; a rejection goes to *rej. */
static int verify_signature(struct request *req, struct reject *rej, struct MHD_Connection *conn,
                            const char *method)
{
    struct ibs_server *srv = req->srv;
    struct header_list headers = {NULL, 0, 0, false};
    struct ibs_sigv4_verdict verdict;
    struct ibs_sigv4_verifier verifier;
    struct ibs_sigv4_request sreq;
    char *path = NULL;
    const char *query;
    size_t path_len = target_path_len(req->target);
    int rc = 0;

    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &headers);
    if (headers.oom || !(path = strndup(req->target, path_len))) {
        rc = ibs_error_oom();
        goto done;
    }
    query = req->target[path_len] == '?' ? req->target + path_len + 1 : NULL;
    memset(&sreq, 0, sizeof(sreq));
    sreq.method = method;
    sreq.path = path;
    sreq.query = query;
    sreq.headers = headers.items;
    sreq.nheaders = headers.count;
    sreq.payload = req->body.ptr;
    sreq.payload_len = req->body.size;
    memset(&verifier, 0, sizeof(verifier));
    verifier.region = ibs_emulator_region(srv->emu);
    verifier.service = SIGNING_NAME;
    verifier.now = (int64_t)time(NULL);
    verifier.max_skew = IBS_SIGV4_DEFAULT_SKEW;
    /* Image Builder, like every service but S3, signs the normalised path
     * encoded once more (the ARN in /tags/... signs as arn%253A...). */
    verifier.normalize_path = true;
    verifier.double_encode_path = true;
    verifier.get_secret = get_secret;
    verifier.ctx = srv;
    rc = ibs_sigv4_verify(&verdict, &sreq, &verifier);
    if (rc == IBS_EAUTH || (rc && verdict.aws_code)) {
        set_reject(rej, verdict.status ? verdict.status : 403,
                   verdict.aws_code ? verdict.aws_code : "InvalidSignatureException", "%s",
                   ibs_error_last()->message);
        rc = 0;
    }
done:
    free(headers.items);
    free(path);
    return rc;
}

/* ---- API calls ---- */

/* Suspends the connection until `due_ms`; false when the server is stopping
 * (or out of memory): the call then runs at once. */
static bool delay_call(struct ibs_server *srv, struct MHD_Connection *conn, int64_t due_ms)
{
    struct timer_entry *e, **pp;
    bool queued = false;

    pthread_mutex_lock(&srv->timer_lock);
    if (!srv->timer_closed && (e = malloc(sizeof(*e))) != NULL) {
        e->due_ms = due_ms;
        e->conn = conn;
        for (pp = &srv->timers; *pp && (*pp)->due_ms <= due_ms; pp = &(*pp)->next)
            ;
        e->next = *pp;
        *pp = e;
        MHD_suspend_connection(conn);
        pthread_cond_signal(&srv->timer_cond);
        queued = true;
    }
    pthread_mutex_unlock(&srv->timer_lock);
    return queued;
}

/* The CLOCK_MONOTONIC time `ms` from now, for pthread_cond_timedwait(). */
static void deadline_after(struct timespec *out, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, out);
    out->tv_sec += (time_t)(ms / 1000);
    out->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (out->tv_nsec >= 1000000000L) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000L;
    }
}

/* Resumes suspended connections when their latency has passed. */
static void *timer_main(void *arg)
{
    struct ibs_server *srv = arg;

    pthread_mutex_lock(&srv->timer_lock);
    for (;;) {
        struct timer_entry *e = srv->timers;
        int64_t now = mono_ms();
        if (!e) {
            if (srv->timer_quit)
                break;
            pthread_cond_wait(&srv->timer_cond, &srv->timer_lock);
        } else if (e->due_ms <= now) {
            srv->timers = e->next;
            pthread_mutex_unlock(&srv->timer_lock);
            MHD_resume_connection(e->conn);
            free(e);
            pthread_mutex_lock(&srv->timer_lock);
        } else {
            struct timespec ts;
            deadline_after(&ts, e->due_ms - now);
            pthread_cond_timedwait(&srv->timer_cond, &srv->timer_lock, &ts);
        }
    }
    pthread_mutex_unlock(&srv->timer_lock);
    return NULL;
}

/* Performs the prepared call (after any latency) and answers it. */
static enum MHD_Result run_call(struct request *req, struct MHD_Connection *conn,
                                const char *method)
{
    struct ibs_provider_error err;
    struct ibs_value *out = NULL;
    char rid[IBS_EMULATOR_REQUEST_ID_SIZE];
    enum MHD_Result ret;
    int rc, status;

    if (req->fault.fault == IBS_FAULT_THROTTLE || req->fault.fault == IBS_FAULT_ERROR) {
        new_request_id(rid);
        return answer_error(req, conn, method, req->fault.status, req->fault.aws_code,
                            req->fault.message, rid, req->fault.fault, true);
    }
    ibs_provider_error_init(&err);
    rc = ibs_emulator_serve(req->srv->emu, &out, rid, &err, req->op->name, req->input);
    status = rc ? (err.status ? err.status : 500) : 200;
    if (req->fault.fault == IBS_FAULT_DROP) {
        /* The engine has committed; losing the answer is the fault. */
        log_request(req, method, status, IBS_FAULT_DROP, rid);
        req->state = REQ_DONE;
        ret = MHD_NO;
    } else if (rc) {
        ret = answer_error(
            req, conn, method, status, err.aws_code ? err.aws_code : "ServiceException",
            err.message ? err.message : ibs_error_last()->message, rid, IBS_FAULT_NONE, true);
    } else {
        log_request(req, method, status, IBS_FAULT_NONE, rid);
        ret = answer_value(req, conn, out, rid);
    }
    ibs_provider_error_release(&err);
    ibs_value_free(out);
    return ret;
}

static bool content_encoding_ok(struct MHD_Connection *conn)
{
    const char *enc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
    return !enc || !*enc || strcasecmp(enc, "identity") == 0;
}

/* An API request whose body has been read: authenticate, route, bind, decide. */
static enum MHD_Result handle_api(struct request *req, struct MHD_Connection *conn,
                                  const char *method)
{
    struct reject rej = {0, NULL, ""};
    char *path = NULL, *label = NULL;
    const char *query;
    size_t path_len = target_path_len(req->target);
    enum MHD_Result ret = MHD_NO;
    char decode_error[256] = "";
    int rc = 0, decode_rc;

    if (req->too_large) {
        set_reject(&rej, 413, "RequestEntityTooLargeException",
                   "The request body is larger than %zu bytes.", req->srv->max_body);
        goto done;
    }
    /* Route first, so that even a request refused for its signature is
     * logged with its operation; but answer for the signature first, as
     * the service does. */
    decode_rc = pct_decode(&path, req->target, path_len);
    if (decode_rc == IBS_EINVALID)
        snprintf(decode_error, sizeof(decode_error), "%s", ibs_error_last()->message);
    if (decode_rc == 0)
        req->op = ibs_api_operation_route(&label, method, path);
    else if (decode_rc != IBS_EINVALID)
        rc = decode_rc;
    if (rc || (req->srv->access_key_id && (rc = verify_signature(req, &rej, conn, method))) ||
        rej.status)
        goto done;
    if (decode_rc == IBS_EINVALID) {
        set_reject(&rej, 400, "MalformedHttpRequestException", "Malformed request path: %s",
                   decode_error);
        goto done;
    }
    if (!req->op) {
        set_reject(&rej, 404, "UnknownOperationException",
                   "No Image Builder operation is bound to %s %.300s.", method, path);
        goto done;
    }
    if (!content_encoding_ok(conn)) {
        set_reject(&rej, 400, "MalformedHttpRequestException",
                   "The Content-Encoding of the request is not supported.");
        goto done;
    }
    query = req->target[path_len] == '?' ? req->target + path_len + 1 : NULL;
    if ((rc = build_input(req, &rej, conn, label, query)) || rej.status)
        goto done;
    ibs_faults_decide(&req->fault, req->srv->faults, mono_ms());
    req->state = REQ_DELAYED;
    if (req->fault.latency_ms > 0 &&
        delay_call(req->srv, conn, mono_ms() + req->fault.latency_ms)) {
        ret = MHD_YES;
        goto done;
    }
    ret = run_call(req, conn, method);
done:
    if (rc)
        set_reject(&rej, 500, "ServiceException", "%s", ibs_error_last()->message);
    if (rej.status)
        ret = answer_reject(req, conn, method, &rej, true);
    free(path);
    free(label);
    return ret;
}

/* ---- libmicrohttpd callbacks ---- */

static void *on_request_start(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct ibs_server *srv = cls;
    struct request *req = calloc(1, sizeof(*req));

    (void)conn;
    if (!req)
        return NULL;
    if (!(req->target = strdup(uri ? uri : ""))) {
        free(req);
        return NULL;
    }
    req->srv = srv;
    req->start_ms = mono_ms();
    req->state = REQ_HEADERS;
    ibs_buf_init(&req->body);
    pthread_mutex_lock(&srv->lock);
    srv->active++;
    pthread_mutex_unlock(&srv->lock);
    return req;
}

static void on_request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode toe)
{
    struct ibs_server *srv = cls;
    struct request *req = *con_cls;

    (void)conn;
    (void)toe;
    if (!req)
        return;
    *con_cls = NULL;
    ibs_buf_release(&req->body);
    ibs_value_free(req->input);
    free(req->target);
    free(req);
    pthread_mutex_lock(&srv->lock);
    if (srv->active > 0 && --srv->active == 0)
        pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->lock);
}

/* Whether a Content-Length header announces more than `max` bytes. */
static bool announced_too_large(struct MHD_Connection *conn, size_t max)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    unsigned long long n;
    char *end;

    if (!cl || !*cl)
        return false;
    errno = 0;
    n = strtoull(cl, &end, 10);
    return errno == ERANGE || (!*end && n > (unsigned long long)max);
}

static bool is_admin_path(const char *target)
{
    size_t n = strlen(ADMIN_PREFIX);
    return strncmp(target, ADMIN_PREFIX, n) == 0 &&
           (target[n] == '/' || target[n] == '\0' || target[n] == '?');
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct ibs_server *srv = cls;
    struct request *req = *con_cls;

    (void)url;
    (void)version;
    if (!req)
        return MHD_NO;
    switch (req->state) {
    case REQ_HEADERS:
        req->state = REQ_BODY;
        if (announced_too_large(conn, srv->max_body)) {
            /* Answer before reading it; MHD then closes the connection. */
            req->too_large = true;
            if (is_admin_path(req->target))
                return handle_admin(req, conn, method, req->target, target_path_len(req->target));
            return handle_api(req, conn, method);
        }
        return MHD_YES;
    case REQ_BODY:
        if (*upload_data_size) {
            if (!req->too_large && req->body.size + *upload_data_size > srv->max_body) {
                req->too_large = true;
                ibs_buf_release(&req->body);
            }
            if (!req->too_large && ibs_buf_put(&req->body, upload_data, *upload_data_size))
                return MHD_NO;
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (is_admin_path(req->target))
            return handle_admin(req, conn, method, req->target, target_path_len(req->target));
        return handle_api(req, conn, method);
    case REQ_DELAYED:
        return run_call(req, conn, method);
    case REQ_DONE:
        break;
    }
    return MHD_NO;
}

/* ---- lifecycle ---- */

/* Resolves opts->listen into *out / *out_len. */
static int resolve_listen(struct sockaddr_storage *out, const char *listen)
{
    struct addrinfo hints, *res = NULL;
    char host[256];
    const char *port, *colon;
    size_t host_len;
    int64_t port_num;
    int rc = 0, gai;

    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return ibs_error_set(IBS_EINVALID, "listen address '%s': expected [IPV6]:PORT", listen);
        host_len = (size_t)(close - listen - 1);
        if (host_len >= sizeof(host))
            return ibs_error_set(IBS_EINVALID, "listen address '%s': host too long", listen);
        memcpy(host, listen + 1, host_len);
        port = close + 2;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return ibs_error_set(IBS_EINVALID, "listen address '%s': expected HOST:PORT", listen);
        host_len = (size_t)(colon - listen);
        if (host_len >= sizeof(host))
            return ibs_error_set(IBS_EINVALID, "listen address '%s': host too long", listen);
        memcpy(host, listen, host_len);
        port = colon + 1;
    }
    host[host_len] = '\0';
    if (!parse_int64(&port_num, port) || port_num < 0 || port_num > 65535)
        return ibs_error_set(IBS_EINVALID, "listen address '%s': '%s' is not a port (0-65535)",
                             listen, port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    gai = getaddrinfo(host_len ? host : NULL, port, &hints, &res);
    if (gai != 0)
        return ibs_error_set(IBS_EINVALID, "listen address '%s': %s", listen, gai_strerror(gai));
    if (!res || res->ai_addrlen > sizeof(*out)) {
        rc = ibs_error_set(IBS_EINVALID, "listen address '%s': no usable address", listen);
        goto done;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out, res->ai_addr, res->ai_addrlen);
done:
    freeaddrinfo(res);
    return rc;
}

static int make_url(struct ibs_server *srv, const struct sockaddr_storage *addr)
{
    struct ibs_buf url = IBS_BUF_INIT;
    char text[INET6_ADDRSTRLEN];

    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof(text));
        ibs_buf_printf(&url, "http://[%s]:%u", text, srv->port);
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &a4->sin_addr, text, sizeof(text));
        ibs_buf_printf(&url, "http://%s:%u", text, srv->port);
    }
    srv->url = ibs_buf_detach(&url);
    return srv->url ? 0 : IBS_ENOMEM;
}

static int init_sync(struct ibs_server *srv)
{
    pthread_condattr_t attr;
    int ok = 1;

    if (pthread_condattr_init(&attr) != 0)
        return ibs_error_set(IBS_ERROR, "server: cannot initialise a condition");
    /* Timed waits use the monotonic clock: a wall-clock step must not
     * stretch or cut injected latencies and the shutdown grace period. */
    ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0;
    if (ok && pthread_mutex_init(&srv->log_lock, NULL) == 0) {
        if (pthread_mutex_init(&srv->lock, NULL) == 0) {
            if (pthread_cond_init(&srv->idle, &attr) == 0) {
                if (pthread_mutex_init(&srv->timer_lock, NULL) == 0) {
                    if (pthread_cond_init(&srv->timer_cond, &attr) == 0) {
                        srv->sync_ready = true;
                        pthread_condattr_destroy(&attr);
                        return 0;
                    }
                    pthread_mutex_destroy(&srv->timer_lock);
                }
                pthread_cond_destroy(&srv->idle);
            }
            pthread_mutex_destroy(&srv->lock);
        }
        pthread_mutex_destroy(&srv->log_lock);
    }
    pthread_condattr_destroy(&attr);
    return ibs_error_set(IBS_ERROR, "server: cannot initialise locks");
}

static int copy_options(struct ibs_server *srv, const struct ibs_server_options *opts)
{
    bool has_id = opts->access_key_id && *opts->access_key_id;
    bool has_secret = opts->secret_access_key && *opts->secret_access_key;

    if (has_id != has_secret)
        return ibs_error_set(IBS_EINVALID,
                             "server: credentials need both an access key id and a secret key");
    if (opts->threads > IBS_SERVER_MAX_THREADS)
        return ibs_error_set(IBS_EINVALID, "server: at most %d threads, not %u",
                             IBS_SERVER_MAX_THREADS, opts->threads);
    if (has_id && (!(srv->access_key_id = strdup(opts->access_key_id)) ||
                   !(srv->secret_access_key = strdup(opts->secret_access_key))))
        return ibs_error_oom();
    srv->max_body = opts->max_body ? opts->max_body : IBS_SERVER_DEFAULT_MAX_BODY;
    if (opts->request_log && !(srv->log = fopen(opts->request_log, "a")))
        return ibs_error_set(IBS_EIO, "%s: cannot open the request log: %s", opts->request_log,
                             strerror(errno));
    return 0;
}

int ibs_server_start(struct ibs_server **out, struct ibs_emulator *emu,
                     const struct ibs_server_options *opts)
{
    struct ibs_server *srv = NULL;
    struct sockaddr_storage addr;
    const union MHD_DaemonInfo *info;
    unsigned threads;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME;
    int rc;

    *out = NULL;
    if (!emu || !opts)
        return ibs_error_set(IBS_EINVALID, "server: no emulator or options given");
    if ((rc = resolve_listen(&addr, opts->listen ? opts->listen : "127.0.0.1:0")))
        return rc;
    if (!(srv = calloc(1, sizeof(*srv))))
        return ibs_error_oom();
    srv->emu = emu;
    srv->listen_fd = -1;
    if ((rc = init_sync(srv)) || (rc = copy_options(srv, opts)) ||
        (rc = ibs_faults_new(&srv->faults, &opts->faults)))
        goto done;
    if (pthread_create(&srv->timer_thread, NULL, timer_main, srv) != 0) {
        rc = ibs_error_set(IBS_ERROR, "server: cannot start the timer thread");
        goto done;
    }
    srv->timer_started = true;
    threads = opts->threads ? opts->threads : IBS_SERVER_DEFAULT_THREADS;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_URI_LOG_CALLBACK, on_request_start, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_request_done, srv, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
        MHD_OPTION_END);
    if (!srv->daemon) {
        rc = ibs_error_set(IBS_EIO, "cannot listen on %s (address in use or not available)",
                           opts->listen ? opts->listen : "127.0.0.1:0");
        goto done;
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    if ((rc = make_url(srv, &addr)))
        goto done;
    *out = srv;
    srv = NULL;
done:
    ibs_server_free(srv);
    return rc;
}

unsigned ibs_server_port(const struct ibs_server *srv)
{
    return srv->port;
}

const char *ibs_server_url(const struct ibs_server *srv)
{
    return srv->url;
}

struct ibs_faults *ibs_server_faults(struct ibs_server *srv)
{
    return srv->faults;
}

/* Closes the timer: no more suspensions, waiting calls resume now. */
static void close_timer(struct ibs_server *srv)
{
    struct timer_entry *list;

    if (!srv->timer_started)
        return;
    pthread_mutex_lock(&srv->timer_lock);
    srv->timer_closed = true;
    srv->timer_quit = true;
    list = srv->timers;
    srv->timers = NULL;
    pthread_cond_signal(&srv->timer_cond);
    pthread_mutex_unlock(&srv->timer_lock);
    while (list) {
        struct timer_entry *next = list->next;
        MHD_resume_connection(list->conn);
        free(list);
        list = next;
    }
    pthread_join(srv->timer_thread, NULL);
    srv->timer_started = false;
}

int ibs_server_stop(struct ibs_server *srv, int64_t grace_ms)
{
    struct timespec deadline;
    int rc = 0;

    if (!srv || srv->stopped)
        return 0;
    srv->stopped = true;
    atomic_store(&srv->stopping, true);
    if (srv->daemon)
        srv->listen_fd = (int)MHD_quiesce_daemon(srv->daemon);
    close_timer(srv);
    if (srv->daemon) {
        deadline_after(&deadline, grace_ms > 0 ? grace_ms : 0);
        pthread_mutex_lock(&srv->lock);
        while (srv->active > 0 && rc == 0)
            if (pthread_cond_timedwait(&srv->idle, &srv->lock, &deadline) == ETIMEDOUT &&
                srv->active > 0)
                rc =
                    ibs_error_set(IBS_ETIMEOUT, "server: %zu request%s still running after %lld ms",
                                  srv->active, srv->active == 1 ? "" : "s", (long long)grace_ms);
        pthread_mutex_unlock(&srv->lock);
        MHD_stop_daemon(srv->daemon);
        srv->daemon = NULL;
    }
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
    return rc;
}

void ibs_server_free(struct ibs_server *srv)
{
    if (!srv)
        return;
    ibs_server_stop(srv, IBS_SERVER_DEFAULT_GRACE_MS);
    close_timer(srv);
    if (srv->log)
        fclose(srv->log);
    if (srv->sync_ready) {
        pthread_cond_destroy(&srv->timer_cond);
        pthread_mutex_destroy(&srv->timer_lock);
        pthread_cond_destroy(&srv->idle);
        pthread_mutex_destroy(&srv->lock);
        pthread_mutex_destroy(&srv->log_lock);
    }
    ibs_faults_free(srv->faults);
    free(srv->access_key_id);
    free(srv->secret_access_key);
    free(srv->url);
    free(srv);
}
