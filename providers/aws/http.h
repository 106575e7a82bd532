/*
 * HTTP transport for the AWS client and the credential providers (libcurl
 * stays inside providers/aws/http.c). A client owns a bounded pool of
 * connections that parallel callers share; TLS verification is always on
 * (AWS_CA_BUNDLE / options.ca_bundle honoured). One call is one attempt:
 * retries are the caller's business (providers/aws/client.c).
 */
#ifndef IBS_PROVIDERS_AWS_HTTP_H
#define IBS_PROVIDERS_AWS_HTTP_H

#include "util/buf.h"
#include "util/vec.h"

#include <stddef.h>

struct ibs_http_client;

struct ibs_http_options {
    const char *ca_bundle;   /* PEM bundle path, or NULL for the system store */
    size_t max_connections;  /* pool size (0: 8) */
    long connect_timeout_ms; /* 0: 3100 (the SDKs' default) */
    long timeout_ms;         /* whole request; 0: 60000 */
    /* Debug log sink: one line per request and per response, secrets
     * redacted (Authorization signature, security tokens). May be NULL. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
};

struct ibs_http_header {
    const char *name;
    const char *value;
};

struct ibs_http_request {
    const char *method; /* "GET", "PUT", "POST", "DELETE", "PATCH" */
    const char *url;    /* absolute URL, path and query already encoded */
    const struct ibs_http_header *headers;
    size_t nheaders;
    const void *body;
    size_t body_len;
    long timeout_ms; /* overrides the client's when > 0 */
};

struct ibs_http_response {
    long status;            /* HTTP status */
    struct ibs_vec headers; /* char *: "name: value" lines as received (owned) */
    struct ibs_buf body;    /* owned */
    long elapsed_ms;
};

/* Creates a client. `opts` may be NULL for defaults. *out is owned by the
 * caller (ibs_http_client_free). */
int ibs_http_client_new(struct ibs_http_client **out, const struct ibs_http_options *opts);

/*
 * Sends one request and waits for the whole response. Thread-safe: up to
 * max_connections calls proceed in parallel, further callers wait for a free
 * connection; connections are reused. Any HTTP status is a success (0) with
 * *out filled (caller releases with ibs_http_response_release). Transport
 * failures return IBS_EIO (connection refused/reset, DNS, TLS) or
 * IBS_ETIMEOUT, with the error message naming the host but never headers.
 */
int ibs_http_send(struct ibs_http_response *out, struct ibs_http_client *client,
                  const struct ibs_http_request *req);

/* The value of the first header `name` (case-insensitive), borrowed, or NULL. */
const char *ibs_http_response_header(const struct ibs_http_response *r, const char *name);

void ibs_http_response_init(struct ibs_http_response *r);
void ibs_http_response_release(struct ibs_http_response *r);
void ibs_http_client_free(struct ibs_http_client *client);

#endif
