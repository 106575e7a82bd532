/*
 * A loopback HTTP/1.1 server for unit tests (libmicrohttpd, one thread per
 * connection), plain or TLS, bound to 127.0.0.1 on a free port.
 *
 * Every request is recorded exactly as received (raw request target before
 * percent-decoding, headers in order, body) so that tests can check what a
 * client sent, and the connection it came on is numbered so that tests can
 * count connections. A handler decides the answer: status, headers, body, a
 * delay, or closing the connection without answering.
 */
#ifndef IBS_TESTS_SUPPORT_TESTSRV_H
#define IBS_TESTS_SUPPORT_TESTSRV_H

#include "util/buf.h"
#include "util/vec.h"

#include <stddef.h>

struct ibs_testsrv;

struct ibs_testsrv_header {
    char *name;
    char *value;
};

/* A received request; everything is owned by the server. */
struct ibs_testsrv_request {
    char *method;
    char *target; /* raw request target: path and query, percent-encoded */
    char *path;   /* raw path (the target up to '?') */
    char *query;  /* raw query after '?', "" when none */
    struct ibs_testsrv_header *headers;
    size_t nheaders;
    char *body; /* NUL-terminated */
    size_t body_len;
    unsigned conn;  /* 1-based number of the connection that carried it */
    unsigned index; /* 0-based position among all requests */
};

struct ibs_testsrv_response {
    int status;             /* 0: close the connection without answering */
    struct ibs_vec headers; /* char *: "Name: value" (add with ibs_testsrv_response_header) */
    struct ibs_buf body;
    long delay_ms; /* wait this long before answering; cut short by stop */
};

/*
 * Called on a server thread (concurrently for parallel connections) with
 * `resp` preset to 200, no headers, body "{}".
 */
typedef void ibs_testsrv_handler_fn(void *ctx, const struct ibs_testsrv_request *req,
                                    struct ibs_testsrv_response *resp);

struct ibs_testsrv_options {
    ibs_testsrv_handler_fn *handler; /* NULL: always the preset answer */
    void *ctx;
    const char *tls_cert_pem; /* PEM certificate and key for HTTPS; NULL: plain HTTP */
    const char *tls_key_pem;
};

/* Starts a server; *out is owned by the caller (ibs_testsrv_stop). */
int ibs_testsrv_start(struct ibs_testsrv **out, const struct ibs_testsrv_options *opts);

/* Stops the server (waking delayed handlers) and frees it. Accepts NULL. */
void ibs_testsrv_stop(struct ibs_testsrv *srv);

/* "http://127.0.0.1:PORT" or "https://...", borrowed. */
const char *ibs_testsrv_url(const struct ibs_testsrv *srv);
unsigned ibs_testsrv_port(const struct ibs_testsrv *srv);

/* Requests recorded so far; entries stay valid until stop. */
size_t ibs_testsrv_nrequests(struct ibs_testsrv *srv);
const struct ibs_testsrv_request *ibs_testsrv_request_at(struct ibs_testsrv *srv, size_t i);

/* Connections accepted so far; the most requests in handlers at once. */
unsigned ibs_testsrv_connections(struct ibs_testsrv *srv);
unsigned ibs_testsrv_max_inflight(struct ibs_testsrv *srv);

/* Forgets recorded requests and resets the counters. */
void ibs_testsrv_reset(struct ibs_testsrv *srv);

/* The first header `name` (case-insensitive) of `req`, or NULL. */
const char *ibs_testsrv_request_header(const struct ibs_testsrv_request *req, const char *name);

/* Adds a response header. */
int ibs_testsrv_response_header(struct ibs_testsrv_response *resp, const char *name,
                                const char *value);

#endif
