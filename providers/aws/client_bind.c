/*
 * REST-JSON binding for the AWS provider: requests from the API model's
 * member locations, 2xx responses, and AWS error responses.
 *
 * Encoding follows what the SDKs put on the wire (botocore's rest-json
 * serializer, the Java and Go v2 SDKs): a URI label is percent-encoded with
 * only the RFC 3986 unreserved characters left as they are, so an ARN in
 * /tags/{resourceArn} goes out as arn%3Aaws%3Aimagebuilder%3A...%2Fname
 * (a greedy {label+} would keep its '/'); query values likewise, lists as
 * repeated keys (tagKeys=a&tagKeys=b); timestamps as ISO 8601 in URIs and
 * queries and as HTTP dates in headers. The JSON body holds the body
 * members only; an operation with body members always sends an object
 * ("{}" when none is set), one without sends no body at all.
 */
#define _DEFAULT_SOURCE /* timegm() is not POSIX; gmtime_r() is */

#include "providers/aws/client.h"

#include "providers/aws/sigv4.h"
#include "util/error.h"
#include "util/json.h"

#include <openssl/rand.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ibs_aws_request_release(struct ibs_aws_request *r)
{
    if (!r)
        return;
    free(r->path);
    free(r->query);
    for (size_t i = 0; i < r->nheaders; i++)
        free((char *)r->headers[i].value);
    free(r->headers);
    ibs_buf_release(&r->body);
    free(r->client_token);
    memset(r, 0, sizeof(*r));
    ibs_buf_init(&r->body);
}

int ibs_aws_uuid4(char *out)
{
    unsigned char b[16];

    if (RAND_bytes(b, (int)sizeof(b)) != 1)
        return ibs_error_set(IBS_ERROR, "no random bytes for a UUID (OpenSSL RAND_bytes failed)");
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

static bool present(const struct ibs_value *v)
{
    return v && v->type != IBS_VALUE_NULL;
}

/*
 * The text of a scalar for a URI, query or header. Numbers given for a
 * timestamp member are Unix seconds and are formatted; strings are sent as
 * written.
 */
static int scalar_text(struct ibs_buf *out, const char *op, const struct ibs_api_member *m,
                       const struct ibs_value *v, bool header)
{
    if (!ibs_value_is_scalar(v) || v->type == IBS_VALUE_NULL)
        return ibs_error_set(IBS_EINVALID, "%s: member %s must be a scalar, not a %s", op, m->name,
                             ibs_value_type_name(v->type));
    if (m->shape && m->shape->type == IBS_API_TIMESTAMP &&
        (v->type == IBS_VALUE_INT || v->type == IBS_VALUE_FLOAT)) {
        double d = v->type == IBS_VALUE_INT ? (double)v->num.i : v->num.d;
        time_t t = (time_t)floor(d);
        struct tm tm;
        char text[64];

        if (!isfinite(d) || !gmtime_r(&t, &tm))
            return ibs_error_set(IBS_EINVALID, "%s: member %s is not a valid time", op, m->name);
        strftime(text, sizeof(text), header ? "%a, %d %b %Y %H:%M:%S GMT" : "%Y-%m-%dT%H:%M:%SZ",
                 &tm);
        return ibs_buf_puts(out, text);
    }
    return ibs_buf_put(out, v->str, v->len);
}

static int add_query(struct ibs_buf *q, const char *op, const struct ibs_api_member *m,
                     const char *key, const struct ibs_value *v)
{
    struct ibs_buf text = IBS_BUF_INIT;
    int rc;

    if ((rc = scalar_text(&text, op, m, v, false)))
        goto done;
    if (q->size)
        ibs_buf_putc(q, '&');
    ibs_sigv4_uri_encode(q, key, strlen(key), true);
    ibs_buf_putc(q, '=');
    ibs_sigv4_uri_encode(q, text.ptr, text.size, true);
    rc = ibs_buf_oom(q);
done:
    ibs_buf_release(&text);
    return rc;
}

static int bind_query(struct ibs_buf *q, const char *op, const struct ibs_api_member *m,
                      const struct ibs_value *v)
{
    int rc = 0;

    if (v->type == IBS_VALUE_LIST) {
        for (size_t i = 0; i < v->count && !rc; i++)
            rc = add_query(q, op, m, m->location_name, v->u.items[i]);
    } else if (v->type == IBS_VALUE_MAP) {
        /* A map bound to the query string spreads its entries as parameters. */
        for (size_t i = 0; i < v->count && !rc; i++)
            rc = add_query(q, op, m, v->u.members[i].key, v->u.members[i].value);
    } else {
        rc = add_query(q, op, m, m->location_name, v);
    }
    return rc;
}

static int bind_header(struct ibs_aws_request *r, const char *op, const struct ibs_api_member *m,
                       const struct ibs_value *v)
{
    struct ibs_buf text = IBS_BUF_INIT;
    struct ibs_http_header *h;
    int rc = 0;

    if (v->type == IBS_VALUE_MAP)
        return ibs_error_set(IBS_EUNSUPPORTED, "%s: header map member %s is not supported", op,
                             m->name);
    if (v->type == IBS_VALUE_LIST) {
        for (size_t i = 0; i < v->count && !rc; i++) {
            if (i)
                ibs_buf_putc(&text, ',');
            rc = scalar_text(&text, op, m, v->u.items[i], true);
        }
    } else {
        rc = scalar_text(&text, op, m, v, true);
    }
    if (rc || (rc = ibs_buf_oom(&text)))
        goto done;
    if (!(h = realloc(r->headers, (r->nheaders + 1) * sizeof(*h)))) {
        rc = ibs_error_oom();
        goto done;
    }
    r->headers = h;
    h[r->nheaders].name = m->location_name;
    if (!(h[r->nheaders].value = ibs_buf_detach(&text))) {
        rc = IBS_ENOMEM;
        goto done;
    }
    r->nheaders++;
done:
    ibs_buf_release(&text);
    return rc;
}

/* The member bound to URI label `label` (length n). */
static const struct ibs_api_member *uri_member(const struct ibs_api_shape *s, const char *label,
                                               size_t n)
{
    for (size_t i = 0; i < s->nmembers; i++) {
        const struct ibs_api_member *m = &s->members[i];
        if (m->location == IBS_API_LOC_URI && m->location_name && strlen(m->location_name) == n &&
            strncmp(m->location_name, label, n) == 0)
            return m;
    }
    return NULL;
}

static int bind_path(struct ibs_buf *path, const struct ibs_api_operation *op,
                     const struct ibs_value *input)
{
    const char *p = op->uri;

    while (*p) {
        const char *close;
        const struct ibs_api_member *m;
        const struct ibs_value *v;
        size_t n;
        bool greedy;

        if (*p != '{') {
            ibs_buf_putc(path, *p++);
            continue;
        }
        if (!(close = strchr(p, '}')))
            return ibs_error_set(IBS_ERROR, "%s: malformed URI template %s", op->name, op->uri);
        n = (size_t)(close - p - 1);
        greedy = n > 0 && p[n] == '+';
        if (greedy)
            n--;
        if (!(m = uri_member(op->input, p + 1, n)))
            return ibs_error_set(IBS_ERROR, "%s: no member for URI label %.*s", op->name, (int)n,
                                 p + 1);
        v = ibs_value_map_get(input, m->name);
        if (!present(v) || !ibs_value_is_scalar(v) || v->len == 0)
            return ibs_error_set(IBS_EINVALID,
                                 "%s: member %s is required and must be a non-empty string",
                                 op->name, m->name);
        /* Labels are encoded whole (':' and '/' included) unless greedy. */
        ibs_sigv4_uri_encode(path, v->str, v->len, !greedy);
        p = close + 1;
    }
    return ibs_buf_oom(path);
}

static const struct ibs_api_member *token_member(const struct ibs_api_shape *s)
{
    for (size_t i = 0; s && i < s->nmembers; i++) {
        if (s->members[i].idempotency_token)
            return &s->members[i];
    }
    return NULL;
}

static bool has_body_members(const struct ibs_api_shape *s)
{
    for (size_t i = 0; s && i < s->nmembers; i++) {
        if (s->members[i].location == IBS_API_LOC_BODY)
            return true;
    }
    return false;
}

/* Unknown members and missing required ones, as the SDKs' parameter
 * validation reports them before anything is sent. */
static int check_members(const struct ibs_api_operation *op, const struct ibs_value *input,
                         const struct ibs_api_member *token)
{
    for (size_t i = 0; input && i < input->count; i++) {
        if (!ibs_api_member_find(op->input, input->u.members[i].key))
            return ibs_error_set(IBS_EINVALID, "%s: unknown request member '%s'", op->name,
                                 input->u.members[i].key);
    }
    for (size_t i = 0; i < op->input->nmembers; i++) {
        const struct ibs_api_member *m = &op->input->members[i];
        if (m->required && m != token && !present(ibs_value_map_get(input, m->name)))
            return ibs_error_set(IBS_EINVALID, "%s: missing required member '%s'", op->name,
                                 m->name);
    }
    return 0;
}

int ibs_aws_request_bind(struct ibs_aws_request *out, const char *operation,
                         const struct ibs_value *input)
{
    const struct ibs_api_member *token;
    struct ibs_buf path = IBS_BUF_INIT, query = IBS_BUF_INIT;
    struct ibs_value *body = NULL, *copy;
    const struct ibs_value *given;
    int rc;

    memset(out, 0, sizeof(*out));
    ibs_buf_init(&out->body);
    if (!(out->op = ibs_api_operation_find(operation ? operation : "")))
        return ibs_error_set(IBS_EINVALID, "unknown Image Builder operation %s",
                             operation ? operation : "(null)");
    if (input && input->type != IBS_VALUE_MAP)
        return ibs_error_set(IBS_EINVALID, "%s: the request must be a map, not a %s", operation,
                             ibs_value_type_name(input->type));
    token = token_member(out->op->input);
    if ((rc = check_members(out->op, input, token)) || (rc = bind_path(&path, out->op, input)))
        goto done;

    out->has_body = has_body_members(out->op->input);
    if (out->has_body && !(body = ibs_value_new_map())) {
        rc = IBS_ENOMEM;
        goto done;
    }
    for (size_t i = 0; input && i < input->count; i++) {
        const struct ibs_member *im = &input->u.members[i];
        const struct ibs_api_member *m = ibs_api_member_find(out->op->input, im->key);

        if (!present(im->value))
            continue;
        switch (m->location) {
        case IBS_API_LOC_URI:
            break;
        case IBS_API_LOC_QUERYSTRING:
            rc = bind_query(&query, operation, m, im->value);
            break;
        case IBS_API_LOC_HEADER:
            rc = bind_header(out, operation, m, im->value);
            break;
        case IBS_API_LOC_BODY:
            if (m == token)
                break;
            if (!(rc = ibs_value_clone(&copy, im->value)))
                rc = ibs_value_map_set(body, m->name, copy);
            break;
        }
        if (rc)
            goto done;
    }

    /* The token is fixed here, once per call, and so is the same on every
     * retry: that is what makes retrying a Create* safe. */
    if (token) {
        given = ibs_value_map_get(input, token->name);
        if (present(given)) {
            if (given->type != IBS_VALUE_STRING) {
                rc = ibs_error_set(IBS_EINVALID, "%s: %s must be a string", operation, token->name);
                goto done;
            }
            out->client_token = strndup(given->str, given->len);
        } else {
            out->client_token = malloc(37);
            out->token_generated = true;
            if (out->client_token && (rc = ibs_aws_uuid4(out->client_token)))
                goto done;
        }
        if (!out->client_token) {
            rc = ibs_error_oom();
            goto done;
        }
        if (token->location == IBS_API_LOC_BODY && body) {
            if (!(copy = ibs_value_new_string(out->client_token))) {
                rc = IBS_ENOMEM;
                goto done;
            }
            if ((rc = ibs_value_map_set(body, token->name, copy)))
                goto done;
        }
    }
    if (body && (rc = ibs_json_write(&out->body, body, 0)))
        goto done;
    if ((rc = ibs_buf_oom(&query)) || (rc = ibs_buf_oom(&path)))
        goto done;
    out->path = ibs_buf_detach(&path);
    out->query = ibs_buf_detach(&query);
    if (!out->path || !out->query)
        rc = IBS_ENOMEM;
done:
    ibs_value_free(body);
    ibs_buf_release(&path);
    ibs_buf_release(&query);
    return rc;
}

/* ---- responses -------------------------------------------------------- */

static int header_value(struct ibs_value **out, const struct ibs_api_member *m, const char *text)
{
    char *end;

    *out = NULL;
    switch (m->shape ? m->shape->type : IBS_API_STRING) {
    case IBS_API_INTEGER:
    case IBS_API_LONG: {
        long long n = strtoll(text, &end, 10);
        *out = *end ? ibs_value_new_string(text) : ibs_value_new_int((int64_t)n);
        break;
    }
    case IBS_API_BOOLEAN:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
            *out = ibs_value_new_bool(text[0] == 't');
        else
            *out = ibs_value_new_string(text);
        break;
    default:
        *out = ibs_value_new_string(text);
        break;
    }
    return *out ? 0 : IBS_ENOMEM;
}

int ibs_aws_response_parse(struct ibs_value **out, const struct ibs_api_operation *op,
                           const struct ibs_http_response *resp)
{
    struct ibs_value *v = NULL, *hv;
    int rc = 0;

    *out = NULL;
    if (resp->body.size == 0) {
        if (!(v = ibs_value_new_map()))
            return IBS_ENOMEM;
    } else {
        if ((rc = ibs_json_parse(&v, resp->body.ptr, resp->body.size))) {
            char *why = rc == IBS_ENOMEM ? NULL : strdup(ibs_error_last()->message);
            if (rc != IBS_ENOMEM)
                rc = ibs_error_set(IBS_ESERVICE, "%s: the response (HTTP %ld) is not JSON: %s",
                                   op->name, resp->status, why ? why : "?");
            free(why);
            goto done;
        }
        if (v->type != IBS_VALUE_MAP) {
            rc = ibs_error_set(IBS_ESERVICE, "%s: the response is a JSON %s, not an object",
                               op->name, ibs_value_type_name(v->type));
            goto done;
        }
    }
    for (size_t i = 0; op->output && i < op->output->nmembers; i++) {
        const struct ibs_api_member *m = &op->output->members[i];
        const char *text;

        if (m->location != IBS_API_LOC_HEADER || !m->location_name)
            continue;
        if (!(text = ibs_http_response_header(resp, m->location_name)))
            continue;
        if ((rc = header_value(&hv, m, text)) || (rc = ibs_value_map_set(v, m->name, hv)))
            goto done;
    }
    *out = v;
    v = NULL;
done:
    ibs_value_free(v);
    return rc;
}

/* ---- errors ----------------------------------------------------------- */

static const char *const throttling_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "CallRateLimitExceededException",
};

static const char *const transient_codes[] = {
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
};

/* Errors about the request's signature or the caller's identity. */
static const char *const auth_codes[] = {
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "ForbiddenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "NotAuthorized",
    "RequestExpired",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
};

static bool in_list(const char *code, const char *const *list, size_t n)
{
    for (size_t i = 0; code && i < n; i++) {
        if (strcmp(code, list[i]) == 0)
            return true;
    }
    return false;
}

#define IN_LIST(code, list) in_list((code), (list), sizeof(list) / sizeof((list)[0]))

bool ibs_aws_error_is_throttling(const char *aws_code, long status)
{
    return status == 429 || IN_LIST(aws_code, throttling_codes);
}

bool ibs_aws_error_is_transient(const char *aws_code, long status)
{
    return status == 500 || status == 502 || status == 503 || status == 504 ||
           IN_LIST(aws_code, transient_codes);
}

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

int ibs_aws_error_code(const char *c, long status)
{
    if (ibs_aws_error_is_throttling(c, status))
        return IBS_ETHROTTLED;
    if (c && strcmp(c, "ResourceNotFoundException") == 0)
        return IBS_ENOTFOUND;
    if (c && strcmp(c, "ResourceAlreadyExistsException") == 0)
        return IBS_EEXISTS;
    if (c &&
        (strcmp(c, "ResourceDependencyException") == 0 || strcmp(c, "ResourceInUseException") == 0))
        return IBS_EDEPENDENCY;
    if (c && strcmp(c, "IdempotentParameterMismatchException") == 0)
        return IBS_ECONFLICT;
    if (IN_LIST(c, auth_codes) || status == 401 || status == 403)
        return IBS_EAUTH;
    if (starts_with(c, "InvalidRequest") || starts_with(c, "InvalidParameter") ||
        (c && (strcmp(c, "ClientException") == 0 || strcmp(c, "ValidationException") == 0 ||
               strcmp(c, "InvalidPaginationTokenException") == 0 ||
               strcmp(c, "InvalidVersionNumberException") == 0)))
        return IBS_EINVALID;
    if (status >= 500)
        return IBS_ESERVICE;
    return IBS_ERROR;
}

/* "ns#Code:http://..." → "Code"; *out stays NULL when nothing is left. */
static int clean_code(char **out, const char *raw)
{
    size_t n = strcspn(raw, ":");
    const char *start = raw;

    for (size_t i = 0; i < n; i++) {
        if (raw[i] == '#')
            start = raw + i + 1;
    }
    n -= (size_t)(start - raw);
    while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
        n--;
    while (n > 0 && (*start == ' ' || *start == '\t')) {
        start++;
        n--;
    }
    if (n && !(*out = strndup(start, n)))
        return ibs_error_oom();
    return 0;
}

int ibs_aws_error_parse(struct ibs_provider_error *out, const struct ibs_http_response *resp)
{
    struct ibs_value *body = NULL;
    const char *code, *message, *id;
    int rc = 0;

    ibs_provider_error_init(out);
    out->status = (int)resp->status;
    /* Non-JSON bodies (a proxy's HTML page) simply carry no code. */
    if (resp->body.size && ibs_json_parse(&body, resp->body.ptr, resp->body.size) == 0 &&
        body->type != IBS_VALUE_MAP) {
        ibs_value_free(body);
        body = NULL;
    }
    ibs_error_clear();
    code = ibs_http_response_header(resp, "x-amzn-errortype");
    if (!code || !*code)
        code = ibs_value_map_get_str(body, "code");
    if (!code || !*code)
        code = ibs_value_map_get_str(body, "__type");
    message = ibs_value_map_get_str(body, "message");
    if (!message)
        message = ibs_value_map_get_str(body, "Message");
    id = ibs_http_response_header(resp, "x-amzn-requestid");
    if (!id)
        id = ibs_http_response_header(resp, "x-amz-request-id");

    if (code && (rc = clean_code(&out->aws_code, code)))
        goto done;
    if ((message && !(out->message = strdup(message))) ||
        (id && *id && !(out->request_id = strdup(id)))) {
        rc = ibs_error_oom();
        goto done;
    }
    out->code = ibs_aws_error_code(out->aws_code, resp->status);
done:
    if (rc)
        ibs_provider_error_release(out);
    ibs_value_free(body);
    return rc;
}

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status >= 500 ? "Server Error" : "Client Error";
    }
}

int ibs_aws_error_format(struct ibs_buf *out, const struct ibs_provider_error *err)
{
    if (err->status == 0) {
        ibs_buf_puts(out, err->message ? err->message : "no response");
        return ibs_buf_oom(out);
    }
    ibs_buf_puts(out, err->aws_code ? err->aws_code : status_text(err->status));
    if (err->message && *err->message)
        ibs_buf_printf(out, ": %s", err->message);
    ibs_buf_printf(out, " (HTTP %d", err->status);
    if (err->request_id)
        ibs_buf_printf(out, ", request id %s", err->request_id);
    ibs_buf_putc(out, ')');
    return ibs_buf_oom(out);
}
