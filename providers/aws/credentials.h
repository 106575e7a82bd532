/*
 * AWS credentials: the default provider chain of the AWS CLI and SDKs, with
 * caching and refresh, for the Image Builder client.
 *
 * Chain order (the first provider that is configured wins; a provider that
 * is configured but fails stops the chain with its error):
 *   1. environment   AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
 *                    (+ AWS_SESSION_TOKEN); skipped when the profile was
 *                    chosen with --profile, as the AWS CLI does
 *   2. profile       from the shared files (config_file.h): role_arn with
 *                    source_profile / credential_source /
 *                    web_identity_token_file (STS), credential_process,
 *                    static keys, in the SDKs' order
 *   3. web identity  AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (STS
 *                    AssumeRoleWithWebIdentity; the token file is read again
 *                    on every refresh, because EKS and CI runners rotate it)
 *   4. container     AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI
 *                    (ECS, EKS Pod Identity)
 *   5. IMDS          EC2 instance metadata, IMDSv2 token flow
 * The provider that answered first is the one asked again on refresh.
 *
 * Caching and lifetime: the chain keeps the current credentials in an
 * immutable, reference-counted snapshot. ibs_aws_credentials_get() fills a
 * view with pointers into a snapshot and makes the calling thread hold a
 * reference to it; the hold moves on the thread's next get (on any chain),
 * ends with ibs_aws_credentials_thread_release() or when the thread exits.
 * So a view stays valid until the same thread calls get again, even if
 * another thread refreshes meanwhile and even after the chain is freed.
 * Credentials are refreshed when they expire within the refresh window
 * (default 5 minutes); one thread refreshes while the others keep using the
 * still-valid snapshot, or wait when there is none.
 *
 * Secrets (secret keys, session tokens, web identity and container
 * authorization tokens) never appear in error messages, and are wiped from
 * memory when released.
 */
#ifndef IBS_PROVIDERS_AWS_CREDENTIALS_H
#define IBS_PROVIDERS_AWS_CREDENTIALS_H

#include "providers/aws/config_file.h"
#include "providers/aws/http.h"

#include <stddef.h>
#include <stdint.h>

/* The SDKs' default: refresh credentials that expire within 5 minutes. */
#define IBS_AWS_CREDENTIALS_REFRESH_WINDOW 300
#define IBS_AWS_STS_DEFAULT_REGION "us-east-1"

/* What a request signer needs; borrowed pointers (lifetime: see above). */
struct ibs_aws_credentials_view {
    const char *access_key_id, *secret_access_key, *session_token;
};

struct ibs_aws_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL for long-term keys */
    int64_t expiration;  /* unix s, 0 = never */
    /*
     * Static string ("env", "web-identity", "container", "imds", "process",
     * "assume-role"), or "profile:NAME" held in `source_buf` (owned).
     */
    const char *source;
    char *source_buf;
};

void ibs_aws_credentials_init(struct ibs_aws_credentials *c);
/* Wipes and frees what `c` owns and re-initialises it. Accepts NULL. */
void ibs_aws_credentials_release(struct ibs_aws_credentials *c);

/*
 * Fills *out (initialised by the call) with copies of the given strings;
 * `session_token` may be NULL or "" (none); `source` is a static string.
 */
int ibs_aws_credentials_set(struct ibs_aws_credentials *out, const char *access_key_id,
                            const char *secret_access_key, const char *session_token,
                            int64_t expiration, const char *source);

/* Deep copy into *out (initialised by the call). */
int ibs_aws_credentials_copy(struct ibs_aws_credentials *out, const struct ibs_aws_credentials *c);

/* Sets c->source to "profile:NAME" (a copy). */
int ibs_aws_credentials_set_profile_source(struct ibs_aws_credentials *c, const char *profile);

/*
 * Parses an ISO 8601 time as AWS services write it ("2024-05-01T10:20:30Z",
 * optional fraction, "Z" or "+hh:mm" / "-hh:mm") into unix seconds.
 */
int ibs_aws_credentials_parse_time(int64_t *out, const char *s);

/* Writes `t` as "2024-05-01T10:20:30Z" into out[IBS_AWS_TIME_LEN]. */
#define IBS_AWS_TIME_LEN 32
void ibs_aws_credentials_format_time(char *out, int64_t t);

/*
 * Removes every occurrence of the `n` strings in `secrets` (NULL and short
 * entries ignored) from the calling thread's error message, replacing them
 * with "***". Keeps the error code.
 */
void ibs_aws_credentials_redact_error(const char *const *secrets, size_t n);

/* The parts of an absolute http(s) URL. */
struct ibs_aws_credentials_url {
    char *scheme;    /* "http" or "https" */
    char *host;      /* lower-case, without IPv6 brackets */
    char *authority; /* host[:port] as written (lower-case): the Host header */
    char *path;      /* path and query, "/" when empty; fragment dropped */
    int port;        /* the explicit port, else 80 / 443 */
};

/* Splits `url`; IBS_EINVALID for anything but http(s)://host[:port][/path]
 * (user information is refused). *out is released on failure. */
int ibs_aws_credentials_url_parse(struct ibs_aws_credentials_url *out, const char *url);
void ibs_aws_credentials_url_release(struct ibs_aws_credentials_url *u);

/* ---- providers ------------------------------------------------------- */

/*
 * A credentials provider. resolve() fills *out (initialised by the caller)
 * with fresh credentials and returns 0; returns IBS_ENOTFOUND when the
 * provider is not configured, with a message that names it and says why
 * ("web identity (AWS_ROLE_ARN not set)"), used in the chain's "no
 * credentials found" error; any other negative code is a failure that stops
 * the chain.
 */
struct ibs_aws_credentials_provider {
    const char *name; /* for messages: "environment", "container", ... */
    int (*resolve)(struct ibs_aws_credentials *out, void *ctx);
    void (*free)(void *ctx); /* called by the chain on ctx; may be NULL */
    void *ctx;
};

struct ibs_aws_chain_options {
    /* Profile, region, environment, home and file paths (config_file.h). */
    struct ibs_aws_config_options config;
    /* Transport for STS and container calls; a NULL ca_bundle falls back to
     * AWS_CA_BUNDLE / the profile's ca_bundle. */
    struct ibs_http_options http;
    long imds_timeout_ms;        /* connect and per-request timeout; 0: 1000 */
    unsigned imds_attempts;      /* 0: 2 (one retry) */
    long process_timeout_ms;     /* credential_process; 0: 60000 */
    int64_t refresh_window;      /* seconds; 0: IBS_AWS_CREDENTIALS_REFRESH_WINDOW, <0: none */
    int64_t (*clock)(void *ctx); /* unix seconds; NULL: time() */
    void *clock_ctx;
    /*
     * When nproviders > 0, these providers replace the default chain. The
     * chain copies the array and owns each ctx from then on (it calls free
     * on it), even when chain_new fails.
     */
    const struct ibs_aws_credentials_provider *providers;
    size_t nproviders;
};

struct ibs_aws_credentials_chain;

/*
 * Creates a chain. Loads the shared files now, so that a malformed file or a
 * --profile / AWS_PROFILE that does not exist fails here; credentials are
 * resolved on the first get. Strings in `opts` are copied; the getenv and
 * clock callbacks and their contexts must outlive the chain. `opts` may be
 * NULL. *out is owned by the caller (ibs_aws_credentials_chain_free).
 */
int ibs_aws_credentials_chain_new(struct ibs_aws_credentials_chain **out,
                                  const struct ibs_aws_chain_options *opts);

/* Frees the chain; views other threads still hold stay valid (see top). */
void ibs_aws_credentials_chain_free(struct ibs_aws_credentials_chain *chain);

/*
 * Current credentials, refreshed first when they expire within the refresh
 * window. Thread-safe. *out borrows from a snapshot the calling thread holds
 * until its next get. Errors: IBS_EAUTH "no credentials found: tried ..."
 * or "<source>: credentials expired at <time>", or the failing provider's
 * error. When a refresh fails while the cached credentials have not yet
 * expired, those are returned (as the SDKs do).
 */
int ibs_aws_credentials_get(struct ibs_aws_credentials_view *out,
                            struct ibs_aws_credentials_chain *chain);

/* ibs_aws_credentials_get() with the AWS client's callback signature. */
int ibs_aws_credentials_chain_callback(void *chain_ctx, struct ibs_aws_credentials_view *out);

/*
 * Like ibs_aws_credentials_get(), but copies the credentials, their source
 * and expiration into *out (caller-owned, initialised by the call).
 */
int ibs_aws_credentials_chain_copy(struct ibs_aws_credentials *out,
                                   struct ibs_aws_credentials_chain *chain);

/*
 * Makes the next get refresh (e.g. after the service answered ExpiredToken).
 * Views already handed out stay valid.
 */
void ibs_aws_credentials_chain_invalidate(struct ibs_aws_credentials_chain *chain);

/* Drops the calling thread's hold on the snapshot its last get returned. */
void ibs_aws_credentials_thread_release(void);

/* ---- building blocks (used by the chain, usable on their own) -------- */

/*
 * Reads a token file (web identity, container authorization) into a new
 * string, surrounding whitespace trimmed; `what` names it in messages
 * ("AWS_WEB_IDENTITY_TOKEN_FILE"). The caller frees *out after wiping it
 * (the content is a secret). IBS_ENOTFOUND / IBS_EIO when unreadable,
 * IBS_EINVALID when empty.
 */
int ibs_aws_credentials_read_token(char **out, const char *path, const char *what);

/*
 * Credentials from the JSON that credential_process, container endpoints and
 * IMDS return: AccessKeyId, SecretAccessKey, the session token under
 * `token_key` ("SessionToken" or "Token"), optional Expiration. Messages
 * never quote the body. `source` is a static string.
 */
int ibs_aws_credentials_parse_json(struct ibs_aws_credentials *out, const char *json, size_t len,
                                   const char *token_key, const char *source);

/*
 * Runs `command` with /bin/sh -c, captures its stdout (the credential_process
 * JSON: Version 1, AccessKeyId, SecretAccessKey, SessionToken, Expiration)
 * and stderr (quoted, truncated, in the error when it fails), and kills it
 * after `timeout_ms` (0: 60000). Source "process".
 */
int ibs_aws_credentials_process(struct ibs_aws_credentials *out, const char *command,
                                long timeout_ms);

/*
 * The container endpoint URL from AWS_CONTAINER_CREDENTIALS_FULL_URI or
 * http://169.254.170.2 + AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, checked:
 * plain http only to loopback, ECS (169.254.170.2) or EKS Pod Identity
 * (169.254.170.23, fd00:ec2::23) hosts. IBS_ENOTFOUND "container (not
 * configured)" when neither variable is set.
 */
int ibs_aws_credentials_container_url(char **out, const struct ibs_aws_config_options *env);

/*
 * Fetches container credentials with `http`, sending the Authorization
 * header from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read on every call) or
 * AWS_CONTAINER_AUTHORIZATION_TOKEN. Source "container".
 */
int ibs_aws_credentials_container(struct ibs_aws_credentials *out, struct ibs_http_client *http,
                                  const struct ibs_aws_config_options *env);

/*
 * The IMDS base URL: AWS_EC2_METADATA_SERVICE_ENDPOINT, else by
 * AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE (IPv4: http://169.254.169.254,
 * IPv6: http://[fd00:ec2::254]); the profile's ec2_metadata_service_endpoint
 * and _mode are used when the variables are not set. `cfg` may be NULL.
 */
int ibs_aws_credentials_imds_url(char **out, const struct ibs_aws_config_options *env,
                                 const struct ibs_aws_shared_config *cfg);

/*
 * Fetches instance credentials from IMDS at `base_url` with `http` (which
 * should have short timeouts): PUT /latest/api/token (falling back to
 * IMDSv1 when the token call is refused with 403/404/405), the role name,
 * then the role's credentials, each call tried `attempts` times (0: 2).
 * IBS_ENOTFOUND "IMDS (...)" when IMDS cannot be reached or the instance has
 * no role. Disabled by AWS_EC2_METADATA_DISABLED=true: checked by the
 * caller (the chain). Source "imds".
 */
int ibs_aws_credentials_imds(struct ibs_aws_credentials *out, struct ibs_http_client *http,
                             const char *base_url, unsigned attempts);

/* ---- STS (sts.c) ----------------------------------------------------- */

struct ibs_aws_sts_request {
    const char *endpoint; /* "https://sts.us-east-1.amazonaws.com" */
    const char *region;   /* signing region */
    const char *role_arn;
    const char *role_session_name;
    const char *external_id; /* AssumeRole only; may be NULL */
    int duration_seconds;    /* 0: the role's default */
    /* Non-NULL: AssumeRoleWithWebIdentity (an unsigned call) with this token. */
    const char *web_identity_token;
    /* AssumeRole: the credentials that sign the call. */
    const struct ibs_aws_credentials *source;
    int64_t now; /* signing time */
};

/*
 * Calls STS AssumeRole or AssumeRoleWithWebIdentity. Source "assume-role" or
 * "web-identity". Errors name the action and carry the STS error code and
 * message and the HTTP status: "STS AssumeRoleWithWebIdentity failed:
 * InvalidIdentityToken: ... (HTTP 400)"; 4xx auth failures are IBS_EAUTH,
 * throttling IBS_ETHROTTLED, 5xx IBS_ESERVICE.
 */
int ibs_aws_sts_assume_role(struct ibs_aws_credentials *out, struct ibs_http_client *http,
                            const struct ibs_aws_sts_request *req);

/*
 * Parses an STS response body for `action` ("AssumeRole") answered with
 * HTTP `status`; on 2xx the credentials, else the error as above.
 */
int ibs_aws_sts_parse(struct ibs_aws_credentials *out, const char *action, long status,
                      const char *xml, size_t len);

/*
 * The STS endpoint: a configured one (AWS_ENDPOINT_URL_STS, the profile's
 * services block, AWS_ENDPOINT_URL, endpoint_url), else the regional
 * https://sts.REGION.amazonaws.com (.amazonaws.com.cn in China regions);
 * REGION NULL: us-east-1. `cfg` may be NULL.
 */
int ibs_aws_sts_endpoint(char **out, const struct ibs_aws_shared_config *cfg,
                         const struct ibs_aws_config_options *opts, const char *region);

#endif
