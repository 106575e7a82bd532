/*
 * STS AssumeRole / AssumeRoleWithWebIdentity over the Query protocol: a
 * form-encoded POST answered in XML (parsed with libxml2, which stays inside
 * this file).
 *
 * AssumeRole is signed with SigV4 (service "sts") using the source
 * credentials; AssumeRoleWithWebIdentity is an unsigned call authenticated
 * by the token in the body. The body holds the token, so it is wiped after
 * sending, as are the XML document's text nodes after parsing.
 *
 * Retries: one more attempt after a transport failure, a 5xx, throttling,
 * or IDPCommunicationError (the identity provider was briefly unreachable;
 * botocore retries it too).
 */
#include "providers/aws/credentials.h"

#include "providers/aws/sigv4.h"
#include "util/buf.h"
#include "util/error.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STS_VERSION "2011-06-15"
#define STS_ATTEMPTS 2
#define STS_RETRY_DELAY_MS 200
/* STS messages are short; cap what a misbehaving endpoint can put in ours. */
#define MAX_MESSAGE 500

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

int ibs_aws_sts_endpoint(char **out, const struct ibs_aws_shared_config *cfg,
                         const struct ibs_aws_config_options *opts, const char *region)
{
    struct ibs_buf b = IBS_BUF_INIT;
    int rc = ibs_aws_config_endpoint(out, cfg, opts, "sts");

    if (rc < 0 || *out)
        return rc;
    if (!region || !*region)
        region = IBS_AWS_STS_DEFAULT_REGION;
    ibs_buf_printf(&b, "https://sts.%s.%s", region,
                   strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com");
    *out = ibs_buf_detach(&b);
    return *out ? 0 : IBS_ENOMEM;
}

/* ---- XML ------------------------------------------------------------- */

static bool named(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* The first element child called `name` (namespaces ignored). */
static xmlNode *child(const xmlNode *parent, const char *name)
{
    if (!parent)
        return NULL;
    for (xmlNode *c = parent->children; c; c = c->next)
        if (named(c, name))
            return c;
    return NULL;
}

/* The element's text, trimmed, as a new string (NULL when absent/empty). */
static char *text_of(const xmlNode *n, bool *oom)
{
    xmlChar *raw;
    const char *s;
    size_t len;
    char *out;

    if (!n)
        return NULL;
    raw = xmlNodeGetContent(n);
    if (!raw) {
        *oom = true;
        return NULL;
    }
    s = (const char *)raw;
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    len = strlen(s);
    while (len > 0 &&
           (s[len - 1] == ' ' || s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == '\t'))
        len--;
    out = NULL;
    if (len > 0) {
        out = malloc(len + 1);
        if (out) {
            memcpy(out, s, len);
            out[len] = '\0';
        } else {
            *oom = true;
        }
    }
    OPENSSL_cleanse(raw, strlen((const char *)raw));
    xmlFree(raw);
    return out;
}

/* Wipes every text node the parser allocated (the credentials are in them). */
static void wipe_doc(xmlDoc *doc, xmlNode *n)
{
    for (; n; n = n->next) {
        if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content &&
            !(doc->dict && xmlDictOwns(doc->dict, n->content)))
            OPENSSL_cleanse(n->content, strlen((const char *)n->content));
        wipe_doc(doc, n->children);
    }
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static int error_code_for(long status, const char *code)
{
    static const char *const throttled[] = {"Throttling", "ThrottlingException",
                                            "RequestLimitExceeded"};
    static const char *const invalid[] = {
        "ValidationError",         "InvalidParameterValue", "InvalidParameterCombination",
        "MalformedPolicyDocument", "PackedPolicyTooLarge",  "MissingParameter"};
    for (size_t i = 0; code && i < sizeof(throttled) / sizeof(throttled[0]); i++)
        if (strcmp(code, throttled[i]) == 0)
            return IBS_ETHROTTLED;
    for (size_t i = 0; code && i < sizeof(invalid) / sizeof(invalid[0]); i++)
        if (strcmp(code, invalid[i]) == 0)
            return IBS_EINVALID;
    if (code && strcmp(code, "IDPCommunicationError") == 0)
        return IBS_ESERVICE;
    if (status == 429)
        return IBS_ETHROTTLED;
    if (status >= 500)
        return IBS_ESERVICE;
    if (status >= 400)
        return IBS_EAUTH;
    return IBS_ERROR;
}

static int parse_error(const char *action, long status, xmlNode *root)
{
    xmlNode *err = named(root, "Error") ? root : child(root, "Error");
    bool oom = false;
    char *code = text_of(child(err, "Code"), &oom);
    char *msg = text_of(child(err, "Message"), &oom);
    int rc;

    if (oom)
        rc = ibs_error_oom();
    else if (code && msg)
        rc = ibs_error_set(error_code_for(status, code), "STS %s failed: %s: %.*s (HTTP %ld)",
                           action, code, MAX_MESSAGE, msg, status);
    else if (code)
        rc = ibs_error_set(error_code_for(status, code), "STS %s failed: %s (HTTP %ld)", action,
                           code, status);
    else
        rc = ibs_error_set(error_code_for(status, NULL), "STS %s failed: HTTP %ld", action, status);
    free(code);
    free(msg);
    return rc;
}

static int parse_credentials(struct ibs_aws_credentials *out, const char *action, xmlNode *root)
{
    char name[64];
    xmlNode *result, *creds;
    char *akid = NULL, *secret = NULL, *token = NULL, *exp = NULL;
    bool oom = false;
    int64_t expiration = 0;
    int rc = 0;

    snprintf(name, sizeof(name), "%sResponse", action);
    if (!named(root, name)) {
        rc = ibs_error_set(IBS_EINVALID, "STS %s: unexpected response element <%s>", action,
                           (const char *)root->name);
        goto done;
    }
    snprintf(name, sizeof(name), "%sResult", action);
    result = child(root, name);
    creds = child(result, "Credentials");
    if (!creds) {
        rc = ibs_error_set(IBS_EINVALID, "STS %s: response has no %s/Credentials", action, name);
        goto done;
    }
    akid = text_of(child(creds, "AccessKeyId"), &oom);
    secret = text_of(child(creds, "SecretAccessKey"), &oom);
    token = text_of(child(creds, "SessionToken"), &oom);
    exp = text_of(child(creds, "Expiration"), &oom);
    if (oom) {
        rc = ibs_error_oom();
        goto done;
    }
    if (!akid || !secret || !token || !exp) {
        rc = ibs_error_set(IBS_EINVALID, "STS %s: Credentials lack %s", action,
                           !akid     ? "AccessKeyId"
                           : !secret ? "SecretAccessKey"
                           : !token  ? "SessionToken"
                                     : "Expiration");
        goto done;
    }
    rc = ibs_aws_credentials_parse_time(&expiration, exp);
    if (rc < 0) {
        ibs_error_prefix("STS %s: Expiration", action);
        goto done;
    }
    rc =
        ibs_aws_credentials_set(out, akid, secret, token, expiration,
                                strcmp(action, "AssumeRole") == 0 ? "assume-role" : "web-identity");
done:
    free(akid);
    wipe_free(secret);
    wipe_free(token);
    free(exp);
    return rc;
}

int ibs_aws_sts_parse(struct ibs_aws_credentials *out, const char *action, long status,
                      const char *xml, size_t len)
{
    xmlDoc *doc = NULL;
    xmlNode *root;
    int rc;

    ibs_aws_credentials_init(out);
    pthread_once(&xml_once, xml_init);
    if (len > 0 && len < (size_t)1 << 30)
        doc = xmlReadMemory(xml, (int)len, "sts-response.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root) {
        if (status >= 200 && status < 300)
            rc = ibs_error_set(IBS_EINVALID, "STS %s: malformed XML in the response (HTTP %ld)",
                               action, status);
        else
            rc = ibs_error_set(error_code_for(status, NULL), "STS %s failed: HTTP %ld", action,
                               status);
        goto done;
    }
    if (status >= 200 && status < 300)
        rc = parse_credentials(out, action, root);
    else
        rc = parse_error(action, status, root);
done:
    if (doc) {
        wipe_doc(doc, doc->children);
        xmlFreeDoc(doc);
    }
    return rc;
}

/* ---- the call -------------------------------------------------------- */

static void form_add(struct ibs_buf *b, const char *key, const char *value)
{
    if (b->size)
        ibs_buf_putc(b, '&');
    ibs_buf_puts(b, key);
    ibs_buf_putc(b, '=');
    ibs_sigv4_uri_encode(b, value, strlen(value), true);
}

static bool retryable(int rc, long status, const struct ibs_http_response *resp)
{
    if (rc == IBS_EIO || rc == IBS_ETIMEOUT)
        return true;
    if (rc < 0)
        return false;
    if (status >= 500 || status == 429)
        return true;
    return status == 400 && (strstr(resp->body.ptr, "<Code>IDPCommunicationError</Code>") ||
                             strstr(resp->body.ptr, "<Code>Throttling</Code>"));
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int ibs_aws_sts_assume_role(struct ibs_aws_credentials *out, struct ibs_http_client *http,
                            const struct ibs_aws_sts_request *req)
{
    const char *action = req->web_identity_token ? "AssumeRoleWithWebIdentity" : "AssumeRole";
    struct ibs_http_header headers[2 + IBS_SIGV4_MAX_ADDED_HEADERS];
    struct ibs_sigv4_header sheaders[2];
    struct ibs_aws_credentials_url url;
    struct ibs_sigv4_result sig;
    struct ibs_http_response resp;
    struct ibs_buf body = IBS_BUF_INIT;
    char *path = NULL, *query;
    size_t nheaders = 0;
    int rc;

    ibs_aws_credentials_init(out);
    memset(&sig, 0, sizeof(sig));
    memset(&url, 0, sizeof(url));
    ibs_http_response_init(&resp);
    if (!req->role_arn || !*req->role_arn || !req->role_session_name || !*req->role_session_name) {
        rc = ibs_error_set(IBS_EINVALID, "STS %s: role ARN and session name are required", action);
        goto done;
    }
    if (!req->web_identity_token && !req->source) {
        rc = ibs_error_set(IBS_EINVALID, "STS AssumeRole: no source credentials to sign with");
        goto done;
    }
    rc = ibs_aws_credentials_url_parse(&url, req->endpoint);
    if (rc < 0) {
        ibs_error_prefix("STS endpoint");
        goto done;
    }
    form_add(&body, "Action", action);
    form_add(&body, "Version", STS_VERSION);
    form_add(&body, "RoleArn", req->role_arn);
    form_add(&body, "RoleSessionName", req->role_session_name);
    if (req->duration_seconds > 0)
        ibs_buf_printf(&body, "&DurationSeconds=%d", req->duration_seconds);
    if (req->external_id && *req->external_id && !req->web_identity_token)
        form_add(&body, "ExternalId", req->external_id);
    if (req->web_identity_token)
        form_add(&body, "WebIdentityToken", req->web_identity_token);
    rc = ibs_buf_oom(&body);
    if (rc < 0)
        goto done;

    headers[nheaders++] = (struct ibs_http_header){"Host", url.authority};
    headers[nheaders++] = (struct ibs_http_header){
        "Content-Type", "application/x-www-form-urlencoded; charset=utf-8"};
    if (!req->web_identity_token) {
        struct ibs_sigv4_request sreq;
        struct ibs_sigv4_credentials screds = {
            req->source->access_key_id, req->source->secret_access_key, req->source->session_token};
        struct ibs_sigv4_params params;

        path = strdup(url.path);
        if (!path) {
            rc = ibs_error_oom();
            goto done;
        }
        query = strchr(path, '?');
        if (query)
            *query++ = '\0';
        memset(&sreq, 0, sizeof(sreq));
        memset(&params, 0, sizeof(params));
        sheaders[0] = (struct ibs_sigv4_header){headers[0].name, headers[0].value};
        sheaders[1] = (struct ibs_sigv4_header){headers[1].name, headers[1].value};
        sreq.method = "POST";
        sreq.path = path;
        sreq.query = query;
        sreq.headers = sheaders;
        sreq.nheaders = 2;
        sreq.payload = body.ptr;
        sreq.payload_len = body.size;
        params.region = req->region && *req->region ? req->region : IBS_AWS_STS_DEFAULT_REGION;
        params.service = "sts";
        params.time = req->now;
        params.normalize_path = true;
        params.double_encode_path = true;
        rc = ibs_sigv4_sign(&sig, &sreq, &screds, &params);
        if (rc < 0) {
            ibs_error_prefix("STS AssumeRole: signing");
            goto done;
        }
        for (size_t i = 0; i < sig.nheaders; i++)
            headers[nheaders++] =
                (struct ibs_http_header){sig.headers[i].name, sig.headers[i].value};
    }

    for (int attempt = 1;; attempt++) {
        struct ibs_http_request hreq = {"POST",   req->endpoint, headers, nheaders,
                                        body.ptr, body.size,     0};
        ibs_http_response_release(&resp);
        ibs_http_response_init(&resp);
        rc = ibs_http_send(&resp, http, &hreq);
        if (attempt >= STS_ATTEMPTS || !retryable(rc, rc == 0 ? resp.status : 0, &resp))
            break;
        sleep_ms(STS_RETRY_DELAY_MS * attempt);
    }
    if (rc < 0) {
        ibs_error_prefix("STS %s", action);
        goto done;
    }
    rc = ibs_aws_sts_parse(out, action, resp.status, resp.body.ptr, resp.body.size);
done:
    if (rc < 0) {
        const char *secrets[] = {req->web_identity_token,
                                 req->source ? req->source->secret_access_key : NULL,
                                 req->source ? req->source->session_token : NULL};
        ibs_aws_credentials_redact_error(secrets, 3);
    }
    OPENSSL_cleanse(body.ptr, body.size);
    ibs_buf_release(&body);
    OPENSSL_cleanse(resp.body.ptr, resp.body.size);
    ibs_http_response_release(&resp);
    ibs_sigv4_result_release(&sig);
    ibs_aws_credentials_url_release(&url);
    free(path);
    return rc;
}
