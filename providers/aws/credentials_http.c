/*
 * Credentials over HTTP from the local environment: the container endpoint
 * (ECS task roles, EKS Pod Identity) and EC2 instance metadata (IMDSv2).
 *
 * Container: plain http is only allowed to hosts that cannot be on the
 * network path (loopback) or that are the documented link-local agents, as
 * in the SDKs, because the Authorization token and the credentials would
 * otherwise cross the network in clear text. Hosts are compared as
 * addresses (inet_pton), never resolved.
 *
 * IMDS: a session token from PUT /latest/api/token is sent with every GET;
 * when the PUT is refused with 403/404/405 (IMDSv1-only endpoints, some
 * proxies) the GETs go without it, as the SDKs fall back. Each request gets
 * `attempts` tries; an IMDS that cannot be reached is "not configured" for
 * the chain (IBS_ENOTFOUND), since that is how every non-EC2 host looks.
 */
#include "providers/aws/credentials.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"

#include <openssl/crypto.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECS_HOST "http://169.254.170.2"
#define IMDS_IPV4 "http://169.254.169.254"
#define IMDS_IPV6 "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL "21600"
#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"
#define CONTAINER_ATTEMPTS 2
#define MAX_DETAIL 300

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* ---- container ------------------------------------------------------- */

/* Loopback, the ECS agent, or the EKS Pod Identity agent. */
static bool container_host_allowed(const char *host)
{
    static const uint8_t eks_v6[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0,
                                       0,    0,    0,    0,    0, 0, 0, 0x23};
    struct in_addr a4;
    struct in6_addr a6;

    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        uint32_t ip = ntohl(a4.s_addr);
        return (ip >> 24) == 127 || ip == 0xA9FEAA02u /* 169.254.170.2 */ ||
               ip == 0xA9FEAA17u /* 169.254.170.23 */;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || memcmp(a6.s6_addr, eks_v6, 16) == 0;
    return false;
}

int ibs_aws_credentials_container_url(char **out, const struct ibs_aws_config_options *env)
{
    const char *rel = ibs_aws_config_getenv(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = ibs_aws_config_getenv(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    struct ibs_aws_credentials_url url;
    struct ibs_buf b = IBS_BUF_INIT;
    int rc = 0;

    *out = NULL;
    memset(&url, 0, sizeof(url));
    /* The SDKs prefer the relative URI when both are set. */
    if (rel) {
        ibs_buf_puts(&b, ECS_HOST);
        if (rel[0] != '/')
            ibs_buf_putc(&b, '/');
        ibs_buf_puts(&b, rel);
        *out = ibs_buf_detach(&b);
        rc = *out ? 0 : IBS_ENOMEM;
        goto done;
    }
    if (!full) {
        rc = ibs_error_set(IBS_ENOTFOUND, "container (not configured)");
        goto done;
    }
    rc = ibs_aws_credentials_url_parse(&url, full);
    if (rc < 0) {
        ibs_error_prefix("AWS_CONTAINER_CREDENTIALS_FULL_URI");
        goto done;
    }
    if (strcmp(url.scheme, "https") != 0 && !container_host_allowed(url.host)) {
        rc = ibs_error_set(IBS_EINVALID,
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI: host \"%s\" is not allowed over "
                           "http (use https, a loopback address, 169.254.170.2, 169.254.170.23 "
                           "or fd00:ec2::23)",
                           url.host);
        goto done;
    }
    *out = strdup(full);
    if (!*out)
        rc = ibs_error_oom();
done:
    ibs_aws_credentials_url_release(&url);
    return rc;
}

/* "HTTP 403 (AccessDenied: ...)" details from a JSON error body. */
static void error_detail(char *out, size_t size, const struct ibs_http_response *resp)
{
    struct ibs_value *doc = NULL;
    const char *code = NULL, *msg = NULL;

    out[0] = '\0';
    if (resp->body.size > 0 && ibs_json_parse(&doc, resp->body.ptr, resp->body.size) == 0 &&
        doc->type == IBS_VALUE_MAP) {
        code = ibs_value_map_get_str(doc, "Code");
        if (!code)
            code = ibs_value_map_get_str(doc, "code");
        msg = ibs_value_map_get_str(doc, "Message");
        if (!msg)
            msg = ibs_value_map_get_str(doc, "message");
    }
    if (code && msg)
        snprintf(out, size, ": %.60s: %.*s", code, MAX_DETAIL, msg);
    else if (code || msg)
        snprintf(out, size, ": %.*s", MAX_DETAIL, code ? code : msg);
    ibs_value_free(doc);
    ibs_error_clear();
}

static int status_error(long status)
{
    if (status == 429)
        return IBS_ETHROTTLED;
    if (status >= 500)
        return IBS_ESERVICE;
    return IBS_EAUTH;
}

int ibs_aws_credentials_container(struct ibs_aws_credentials *out, struct ibs_http_client *http,
                                  const struct ibs_aws_config_options *env)
{
    struct ibs_aws_credentials_url url;
    struct ibs_http_response resp;
    struct ibs_http_header headers[2];
    char *target = NULL, *token = NULL;
    const char *token_file;
    char detail[MAX_DETAIL + 80];
    size_t nheaders = 0;
    int rc;

    ibs_aws_credentials_init(out);
    memset(&url, 0, sizeof(url));
    ibs_http_response_init(&resp);
    rc = ibs_aws_credentials_container_url(&target, env);
    if (rc < 0)
        goto done;
    rc = ibs_aws_credentials_url_parse(&url, target);
    if (rc < 0)
        goto done;
    /* Token file first: EKS Pod Identity rotates it, so read it each time. */
    token_file = ibs_aws_config_getenv(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (token_file) {
        char *path = strdup(token_file);
        if (!path) {
            rc = ibs_error_oom();
            goto done;
        }
        rc = ibs_aws_credentials_read_token(&token, path, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        free(path);
        if (rc < 0)
            goto done;
    } else if (ibs_aws_config_getenv(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
        token = strdup(ibs_aws_config_getenv(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN"));
        if (!token) {
            rc = ibs_error_oom();
            goto done;
        }
    }
    if (token && strpbrk(token, "\r\n")) {
        rc = ibs_error_set(IBS_EINVALID, "the authorization token contains a line break");
        goto done;
    }
    headers[nheaders++] = (struct ibs_http_header){"Accept", "application/json"};
    if (token)
        headers[nheaders++] = (struct ibs_http_header){"Authorization", token};
    for (int attempt = 1;; attempt++) {
        struct ibs_http_request req = {"GET", target, headers, nheaders, NULL, 0, 0};
        ibs_http_response_release(&resp);
        ibs_http_response_init(&resp);
        rc = ibs_http_send(&resp, http, &req);
        if (attempt >= CONTAINER_ATTEMPTS ||
            !(rc == IBS_EIO || rc == IBS_ETIMEOUT || (rc == 0 && resp.status >= 500)))
            break;
    }
    if (rc < 0)
        goto done;
    if (resp.status != 200) {
        error_detail(detail, sizeof(detail), &resp);
        rc = ibs_error_set(status_error(resp.status), "HTTP %ld from %s%s", resp.status,
                           url.authority, detail);
        goto done;
    }
    rc = ibs_aws_credentials_parse_json(out, resp.body.ptr, resp.body.size, "Token", "container");
    if (rc < 0)
        ibs_error_prefix("answer from %s", url.authority);
done:
    if (rc < 0) {
        const char *secrets[] = {token};
        ibs_aws_credentials_redact_error(secrets, 1);
    }
    OPENSSL_cleanse(resp.body.ptr, resp.body.size);
    ibs_http_response_release(&resp);
    ibs_aws_credentials_url_release(&url);
    wipe_free(token);
    free(target);
    return rc;
}

/* ---- IMDS ------------------------------------------------------------ */

int ibs_aws_credentials_imds_url(char **out, const struct ibs_aws_config_options *env,
                                 const struct ibs_aws_shared_config *cfg)
{
    const char *ep = ibs_aws_config_getenv(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = ibs_aws_config_getenv(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    size_t n;

    *out = NULL;
    if (!ep && cfg)
        ep = ibs_aws_config_get(cfg, cfg->profile, "ec2_metadata_service_endpoint");
    if (ep && *ep) {
        n = strlen(ep);
        while (n > 0 && ep[n - 1] == '/')
            n--;
        *out = strndup(ep, n);
        return *out ? 0 : ibs_error_oom();
    }
    if (!mode && cfg)
        mode = ibs_aws_config_get(cfg, cfg->profile, "ec2_metadata_service_endpoint_mode");
    if (!mode || !*mode || ascii_ieq(mode, "IPv4"))
        *out = strdup(IMDS_IPV4);
    else if (ascii_ieq(mode, "IPv6"))
        *out = strdup(IMDS_IPV6);
    else
        return ibs_error_set(IBS_EINVALID,
                             "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: expected IPv4 or IPv6, got "
                             "\"%s\"",
                             mode);
    return *out ? 0 : ibs_error_oom();
}

/* One IMDS request with retries on transport errors and 5xx. */
static int imds_call(struct ibs_http_response *out, struct ibs_http_client *http,
                     const char *method, const char *url, const struct ibs_http_header *headers,
                     size_t nheaders, unsigned attempts)
{
    int rc = 0;
    for (unsigned attempt = 1;; attempt++) {
        struct ibs_http_request req = {method, url, headers, nheaders, NULL, 0, 0};
        ibs_http_response_release(out);
        ibs_http_response_init(out);
        rc = ibs_http_send(out, http, &req);
        if (attempt >= attempts ||
            !(rc == IBS_EIO || rc == IBS_ETIMEOUT || (rc == 0 && out->status >= 500)))
            break;
    }
    return rc;
}

/* IMDS that does not answer is what every non-EC2 machine looks like. */
static int unreachable(int rc)
{
    char msg[512];
    if (rc == IBS_ETIMEOUT)
        return ibs_error_set(IBS_ENOTFOUND, "IMDS (timed out)");
    if (rc == IBS_EIO) {
        snprintf(msg, sizeof(msg), "%s", ibs_error_last()->message);
        return ibs_error_set(IBS_ENOTFOUND, "IMDS (unreachable: %s)", msg);
    }
    return rc;
}

static void trim_body(struct ibs_buf *b)
{
    while (b->size > 0 && (b->ptr[b->size - 1] == '\n' || b->ptr[b->size - 1] == '\r' ||
                           b->ptr[b->size - 1] == ' '))
        ibs_buf_truncate(b, b->size - 1);
}

int ibs_aws_credentials_imds(struct ibs_aws_credentials *out, struct ibs_http_client *http,
                             const char *base_url, unsigned attempts)
{
    struct ibs_http_response resp;
    struct ibs_http_header headers[1];
    struct ibs_buf url = IBS_BUF_INIT;
    char *token = NULL, *role = NULL;
    size_t nheaders = 0;
    int rc;

    ibs_aws_credentials_init(out);
    ibs_http_response_init(&resp);
    if (attempts == 0)
        attempts = 2;

    ibs_buf_printf(&url, "%s/latest/api/token", base_url);
    if ((rc = ibs_buf_oom(&url)) < 0)
        goto done;
    headers[0] = (struct ibs_http_header){"X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL};
    rc = imds_call(&resp, http, "PUT", url.ptr, headers, 1, attempts);
    if (rc < 0) {
        rc = unreachable(rc);
        goto done;
    }
    if (resp.status == 200) {
        trim_body(&resp.body);
        if (resp.body.size == 0) {
            rc = ibs_error_set(IBS_EINVALID, "empty session token from PUT /latest/api/token");
            goto done;
        }
        token = strdup(resp.body.ptr);
        if (!token) {
            rc = ibs_error_oom();
            goto done;
        }
        headers[0] = (struct ibs_http_header){"X-aws-ec2-metadata-token", token};
        nheaders = 1;
    } else if (resp.status != 403 && resp.status != 404 && resp.status != 405) {
        rc = ibs_error_set(status_error(resp.status), "PUT /latest/api/token: HTTP %ld",
                           resp.status);
        goto done;
    }

    ibs_buf_clear(&url);
    ibs_buf_printf(&url, "%s%s", base_url, IMDS_CREDS_PATH);
    if ((rc = ibs_buf_oom(&url)) < 0)
        goto done;
    rc = imds_call(&resp, http, "GET", url.ptr, headers, nheaders, attempts);
    if (rc < 0) {
        rc = unreachable(rc);
        goto done;
    }
    if (resp.status == 404) {
        rc = ibs_error_set(IBS_ENOTFOUND, "IMDS (no IAM role attached to the instance)");
        goto done;
    }
    if (resp.status != 200) {
        rc = ibs_error_set(status_error(resp.status), "GET %s: HTTP %ld", IMDS_CREDS_PATH,
                           resp.status);
        goto done;
    }
    role = strndup(resp.body.ptr, strcspn(resp.body.ptr, "\r\n"));
    if (!role) {
        rc = ibs_error_oom();
        goto done;
    }
    if (!*role) {
        rc = ibs_error_set(IBS_ENOTFOUND, "IMDS (no IAM role attached to the instance)");
        goto done;
    }
    if (strpbrk(role, "/?#% ")) {
        rc = ibs_error_set(IBS_EINVALID, "unexpected role name \"%.100s\"", role);
        goto done;
    }

    ibs_buf_clear(&url);
    ibs_buf_printf(&url, "%s%s%s", base_url, IMDS_CREDS_PATH, role);
    if ((rc = ibs_buf_oom(&url)) < 0)
        goto done;
    rc = imds_call(&resp, http, "GET", url.ptr, headers, nheaders, attempts);
    if (rc < 0) {
        ibs_error_prefix("GET %s%s", IMDS_CREDS_PATH, role);
        goto done;
    }
    if (resp.status != 200) {
        rc = ibs_error_set(status_error(resp.status), "GET %s%s: HTTP %ld", IMDS_CREDS_PATH, role,
                           resp.status);
        goto done;
    }
    {
        struct ibs_value *doc = NULL;
        const char *code = NULL;
        if (ibs_json_parse(&doc, resp.body.ptr, resp.body.size) == 0 && doc->type == IBS_VALUE_MAP)
            code = ibs_value_map_get_str(doc, "Code");
        if (code && strcmp(code, "Success") != 0) {
            rc = ibs_error_set(
                IBS_EAUTH, "role %s: Code \"%.60s\"%s%.*s", role, code,
                ibs_value_map_get_str(doc, "Message") ? ": " : "", MAX_DETAIL,
                ibs_value_map_get_str(doc, "Message") ? ibs_value_map_get_str(doc, "Message") : "");
        }
        if (doc)
            for (size_t i = 0; i < doc->count && doc->type == IBS_VALUE_MAP; i++)
                if (doc->u.members[i].value->str)
                    OPENSSL_cleanse(doc->u.members[i].value->str, doc->u.members[i].value->len);
        ibs_value_free(doc);
        if (rc < 0)
            goto done;
    }
    rc = ibs_aws_credentials_parse_json(out, resp.body.ptr, resp.body.size, "Token", "imds");
    if (rc < 0)
        ibs_error_prefix("role %s", role);
done:
    if (rc < 0) {
        const char *secrets[] = {token};
        ibs_aws_credentials_redact_error(secrets, 1);
    }
    OPENSSL_cleanse(resp.body.ptr, resp.body.size);
    ibs_http_response_release(&resp);
    ibs_buf_release(&url);
    wipe_free(token);
    free(role);
    return rc;
}
