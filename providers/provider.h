/*
 * The provider interface: how the reconcile engine talks to an Image Builder
 * account without knowing whether it is real AWS (providers/aws), the
 * emulator over HTTP (also providers/aws, with an endpoint override) or the
 * emulator engine in-process (providers/emulator, `--local`).
 *
 * Like curl's TLS backend table or libgit2's ODB backends, a provider is a
 * versioned table of functions plus an opaque state pointer. Calls are made
 * by API operation name with the request as an ibs_value map shaped exactly
 * like the API's JSON request (URI and query members included by their
 * member names, e.g. {"componentBuildVersionArn": "arn:..."}); the answer is
 * the API's JSON response as an ibs_value map.
 */
#ifndef IBS_PROVIDERS_PROVIDER_H
#define IBS_PROVIDERS_PROVIDER_H

#include "util/value.h"

#include <stddef.h>

#define IBS_PROVIDER_VERSION 1

/* What the service said when a call failed. All strings are owned by the
 * struct (ibs_provider_error_release frees them). */
struct ibs_provider_error {
    int code;          /* enum ibs_error_code mapped from the AWS error */
    int status;        /* HTTP status, 0 when no response was received */
    char *aws_code;    /* "ResourceNotFoundException", or NULL */
    char *message;     /* the service's message, or NULL */
    char *request_id;  /* x-amzn-requestid, or NULL */
    unsigned attempts; /* how many attempts the call took */
};

struct ibs_provider_ops {
    unsigned version; /* IBS_PROVIDER_VERSION */
    const char *name; /* "aws", "emulator" */
    /*
     * Performs `operation` with `input` (borrowed). On success *out is the
     * response map (caller frees). On failure returns a negative code, sets
     * ibs_error_set() to "<AwsCode>: <message>" and, when `err` is not NULL,
     * fills it (caller releases).
     */
    int (*call)(void *self, struct ibs_value **out, struct ibs_provider_error *err,
                const char *operation, const struct ibs_value *input);
    /* Releases the provider state. */
    void (*free)(void *self);
};

struct ibs_provider {
    const struct ibs_provider_ops *ops;
    void *self;
    const char *region;  /* borrowed from the provider state */
    const char *account; /* borrowed; may be NULL until known */
};

void ibs_provider_error_init(struct ibs_provider_error *err);
void ibs_provider_error_release(struct ibs_provider_error *err);

/* Calls through the table; see struct ibs_provider_ops.call. */
int ibs_provider_call(struct ibs_value **out, struct ibs_provider_error *err,
                      struct ibs_provider *p, const char *operation, const struct ibs_value *input);

/*
 * Calls a paginated List operation until the last page, with maxResults 25
 * (the API's maximum), and appends every element of the operation's result
 * list to the list value *out (created here; caller frees). `input` may be
 * NULL. *out_pages (may be NULL) receives the number of calls made.
 */
int ibs_provider_list_all(struct ibs_value **out, size_t *out_pages, struct ibs_provider *p,
                          const char *operation, const struct ibs_value *input);

/* Frees the provider (calls ops->free) and the struct. Accepts NULL. */
void ibs_provider_free(struct ibs_provider *p);

#endif
