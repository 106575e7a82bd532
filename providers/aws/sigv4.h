/*
 * AWS Signature Version 4 (AWS4-HMAC-SHA256): header signing for the Image
 * Builder client, query-string ("presigned") signing, and verification of
 * header-signed requests for the local emulator.
 *
 * The signer works on a plain description of the request (struct
 * ibs_sigv4_request) and returns the headers or query parameters to add, so
 * that it knows nothing about the HTTP library. It follows the rules of the
 * official SigV4 test suite and of the AWS SDKs' signers:
 *
 *   canonical URI    the wire path, dot segments removed and duplicate '/'
 *                    merged when normalize_path, then URI-encoded once more
 *                    when double_encode_path (every service except S3; an
 *                    Image Builder ARN in the path, sent as arn%3Aaws..., is
 *                    signed as arn%253Aaws...)
 *   canonical query  parameters percent-decoded, re-encoded once with the
 *                    RFC 3986 unreserved set, sorted by key then value; a
 *                    parameter without '=' signs as "key="; '+' is a literal
 *                    plus, not a space
 *   headers          names lower-cased, values trimmed with runs of
 *                    whitespace and line breaks folded to one space,
 *                    repeated headers joined by ',' in order, sorted by name
 *   payload hash     hex SHA-256 of the body, or the value of an
 *                    x-amz-content-sha256 header the caller passes
 *
 * Secrets never appear in error messages; derived keys are wiped after use.
 */
#ifndef IBS_PROVIDERS_AWS_SIGV4_H
#define IBS_PROVIDERS_AWS_SIGV4_H

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IBS_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
/* How far a request's date may be from the server's clock (AWS: 5 min). */
#define IBS_SIGV4_DEFAULT_SKEW 300
/* Longest validity of a presigned request (AWS: 7 days). */
#define IBS_SIGV4_MAX_EXPIRES 604800
/* Headers that ibs_sigv4_sign() asks the caller to add, at most. */
#define IBS_SIGV4_MAX_ADDED_HEADERS 4

struct ibs_sigv4_header {
    const char *name;
    const char *value;
};

/* A request to sign or verify; every pointer is borrowed. */
struct ibs_sigv4_request {
    const char *method; /* "GET", "PUT", ... */
    /* The path as sent on the wire, percent-encoded once ("/tags/arn%3A..."). */
    const char *path;
    const char *query; /* raw query string without '?'; NULL or "" when none */
    /*
     * Headers in the order they are sent; repeated names are allowed. When
     * signing they must include Host and must not include Authorization,
     * X-Amz-Date or X-Amz-Security-Token (the signer adds those). Hop-by-hop
     * headers and User-Agent are never signed (proxies change them), so the
     * caller may pass its full header list.
     */
    const struct ibs_sigv4_header *headers;
    size_t nheaders;
    const void *payload; /* may be NULL when payload_len is 0 */
    size_t payload_len;
};

/* Borrowed; the secret key and the token are never copied into messages. */
struct ibs_sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" for long-term keys */
};

struct ibs_sigv4_params {
    const char *region;  /* "us-east-1" */
    const char *service; /* signing name: "imagebuilder" */
    int64_t time;        /* signing time, Unix seconds */
    /* Remove dot segments and merge slashes (true for all but S3). */
    bool normalize_path;
    /* URI-encode the already-encoded path again (true for all but S3). */
    bool double_encode_path;
    /* Header signing: add and sign x-amz-content-sha256 (S3 requires it). */
    bool content_sha256_header;
    /*
     * Send the session token but leave it out of the signature: the token
     * header (or query parameter) is added after signing. Only a few
     * services want this; Image Builder signs the token, so leave it false.
     */
    bool omit_session_token;
};

/*
 * What a signing call produced. Everything is owned by the result and freed
 * by ibs_sigv4_result_release().
 */
struct ibs_sigv4_result {
    char amz_date[17];     /* "20150830T123600Z" */
    char payload_hash[65]; /* hex SHA-256, or the caller's x-amz-content-sha256 */
    char signature[65];    /* lower-case hex */
    /* Header signing: the Authorization header's value; NULL for presign. */
    char *authorization;
    /*
     * Presign: the query string to send (without '?'): the caller's query
     * followed by the X-Amz-* parameters; NULL for header signing.
     */
    char *query;
    char *canonical_request;
    char *string_to_sign;
    char *signed_headers; /* "host;x-amz-date" */
    /*
     * Header signing: the headers to add to the request, in this order:
     * X-Amz-Date, X-Amz-Security-Token (when there is a session token),
     * X-Amz-Content-Sha256 (when content_sha256_header and the caller did
     * not pass one), Authorization. Values point into this result.
     */
    struct ibs_sigv4_header headers[IBS_SIGV4_MAX_ADDED_HEADERS];
    size_t nheaders;
    char *session_token; /* copy backing the X-Amz-Security-Token value */
};

/*
 * Signs `req` in the Authorization header. *out needs no initialisation; on
 * success it holds the result (release it with ibs_sigv4_result_release()),
 * on failure it is left empty and releasing it is harmless. Returns
 * IBS_EINVALID for a malformed request (missing Host, a header the signer
 * sets itself, empty region/service/keys, a date outside years 0-9999).
 */
int ibs_sigv4_sign(struct ibs_sigv4_result *out, const struct ibs_sigv4_request *req,
                   const struct ibs_sigv4_credentials *creds,
                   const struct ibs_sigv4_params *params);

/*
 * Signs `req` in the query string, valid for `expires` seconds (1 to
 * IBS_SIGV4_MAX_EXPIRES). Signs the request's headers (Host at least) but no
 * X-Amz-Date header; params->content_sha256_header is ignored. The payload
 * hash is computed as for header signing. out->query is the query string to
 * send. Ownership and errors as for ibs_sigv4_sign().
 */
int ibs_sigv4_presign(struct ibs_sigv4_result *out, const struct ibs_sigv4_request *req,
                      const struct ibs_sigv4_credentials *creds,
                      const struct ibs_sigv4_params *params, int64_t expires);

/* Frees what a result owns and empties it. Accepts an empty result. */
void ibs_sigv4_result_release(struct ibs_sigv4_result *r);

/* How a server checks header-signed requests. */
struct ibs_sigv4_verifier {
    const char *region;  /* the region the credential scope must name */
    const char *service; /* the signing name the scope must name */
    int64_t now;         /* the server's clock, Unix seconds */
    int64_t max_skew;    /* seconds; 0 means IBS_SIGV4_DEFAULT_SKEW */
    bool normalize_path;
    bool double_encode_path;
    /*
     * Appends the secret access key of `access_key_id` to `out` and returns
     * 0, or returns IBS_ENOTFOUND when the key is unknown. Any other negative
     * code stops the verification and is returned as is.
     */
    int (*get_secret)(struct ibs_buf *out, const char *access_key_id, void *ctx);
    void *ctx;
};

/* Why a request was rejected, in the terms an AWS endpoint would answer. */
struct ibs_sigv4_verdict {
    int status;           /* HTTP status to answer with; 0 when valid */
    const char *aws_code; /* static string ("InvalidSignatureException"); NULL when valid */
    /* The access key the request names, "" when it could not be parsed. */
    char access_key_id[129];
};

/*
 * Verifies the Authorization header of a received request: `req` holds the
 * method, the raw path and query as received, all received headers and the
 * body. Returns 0 when the signature is valid; IBS_EAUTH when it is not,
 * with the AWS-style message in ibs_error_last() and the code and HTTP
 * status to send in *out:
 *   MissingAuthenticationTokenException  no Authorization header
 *   IncompleteSignatureException         malformed header, no date, Host unsigned
 *   InvalidSignatureException            mismatch, expired, wrong scope
 *   UnrecognizedClientException          get_secret() does not know the key
 *   XAmzContentSHA256Mismatch            x-amz-content-sha256 is not the body's hash
 * Signatures are compared in constant time. Other negative codes (out of
 * memory, a get_secret() failure) come with aws_code "InternalFailure".
 */
int ibs_sigv4_verify(struct ibs_sigv4_verdict *out, const struct ibs_sigv4_request *req,
                     const struct ibs_sigv4_verifier *verifier);

/*
 * Appends `len` bytes of `s` to `out`, percent-encoding (upper-case hex)
 * every byte outside the RFC 3986 unreserved set A-Z a-z 0-9 - . _ ~, and
 * '/' too when `encode_slash`.
 */
int ibs_sigv4_uri_encode(struct ibs_buf *out, const char *s, size_t len, bool encode_slash);

/* Appends the canonical URI of the wire path `path` (rules at the top). */
int ibs_sigv4_canonical_uri(struct ibs_buf *out, const char *path, bool normalize,
                            bool double_encode);

/*
 * Appends the canonical query string of the raw query `query` (may be NULL).
 * X-Amz-Signature parameters are left out, as every signer does.
 */
int ibs_sigv4_canonical_query(struct ibs_buf *out, const char *query);

/* Writes the lower-case hex SHA-256 of `len` bytes of `data` into out[65]. */
int ibs_sigv4_sha256_hex(char *out, const void *data, size_t len);

/* Writes the HMAC-SHA256 of `len` bytes of `data` (NULL when len is 0) with
 * `key` into out[32]; the emulator signs its pagination tokens with it. */
int ibs_sigv4_hmac_sha256(unsigned char *out, const void *key, size_t keylen, const void *data,
                          size_t len);

/* Writes `t` (Unix seconds) as "YYYYMMDDTHHMMSSZ" into out[17]. */
int ibs_sigv4_format_date(char *out, int64_t t);

/* Parses a "YYYYMMDDTHHMMSSZ" date into Unix seconds; IBS_EINVALID if malformed. */
int ibs_sigv4_parse_date(int64_t *out, const char *s);

#endif
