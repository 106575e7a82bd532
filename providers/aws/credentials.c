/*
 * The credential chain: credential values and helpers, the environment,
 * profile and web-identity providers, and the caching chain object. The
 * credential_process runner is in credentials_process.c, the container and
 * IMDS fetchers in credentials_http.c, STS in sts.c.
 *
 * Concurrency: a chain has one mutex and one condition variable. The current
 * credentials live in an immutable snapshot with an atomic reference count;
 * the chain holds one reference, every thread that got a view holds one
 * (through a pthread key, so a thread's hold is dropped when it exits). A
 * refresh runs outside the mutex with `refreshing` set, so exactly one
 * thread talks to the providers at a time; the providers themselves
 * therefore need no locking.
 */
#include "providers/aws/credentials.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"
#include "util/vec.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_IMDS_TIMEOUT_MS 1000
#define DEFAULT_IMDS_ATTEMPTS 2
#define DEFAULT_PROCESS_TIMEOUT_MS 60000
/* After a failed refresh, still-valid credentials are used this long before
 * the next attempt, so that a flapping endpoint is not hammered. */
#define REFRESH_RETRY_DELAY 10
/* STS accepts 900 s to 12 h (the role's maximum may be lower). */
#define MIN_DURATION 900
#define MAX_DURATION 43200
/* A web identity token is a JWT: a few KiB. */
#define MAX_TOKEN_FILE (1024 * 1024)

/* ---- credential values ----------------------------------------------- */

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static char *dup_str(const char *s)
{
    char *p = s ? strdup(s) : NULL;
    if (s && !p)
        ibs_error_oom();
    return p;
}

void ibs_aws_credentials_init(struct ibs_aws_credentials *c)
{
    memset(c, 0, sizeof(*c));
}

void ibs_aws_credentials_release(struct ibs_aws_credentials *c)
{
    if (!c)
        return;
    free(c->access_key_id);
    wipe_free(c->secret_access_key);
    wipe_free(c->session_token);
    free(c->source_buf);
    ibs_aws_credentials_init(c);
}

int ibs_aws_credentials_set(struct ibs_aws_credentials *out, const char *access_key_id,
                            const char *secret_access_key, const char *session_token,
                            int64_t expiration, const char *source)
{
    int rc = 0;

    ibs_aws_credentials_init(out);
    if (!access_key_id || !*access_key_id || !secret_access_key || !*secret_access_key) {
        rc = ibs_error_set(IBS_EAUTH, "%s: access key id or secret access key missing",
                           source ? source : "credentials");
        goto done;
    }
    out->access_key_id = dup_str(access_key_id);
    out->secret_access_key = dup_str(secret_access_key);
    if (session_token && *session_token)
        out->session_token = dup_str(session_token);
    if (!out->access_key_id || !out->secret_access_key ||
        (session_token && *session_token && !out->session_token)) {
        rc = IBS_ENOMEM;
        goto done;
    }
    out->expiration = expiration;
    out->source = source;
done:
    if (rc < 0)
        ibs_aws_credentials_release(out);
    return rc;
}

int ibs_aws_credentials_set_profile_source(struct ibs_aws_credentials *c, const char *profile)
{
    struct ibs_buf b = IBS_BUF_INIT;
    char *s;

    ibs_buf_printf(&b, "profile:%s", profile);
    s = ibs_buf_detach(&b);
    if (!s)
        return IBS_ENOMEM;
    free(c->source_buf);
    c->source_buf = s;
    c->source = s;
    return 0;
}

int ibs_aws_credentials_copy(struct ibs_aws_credentials *out, const struct ibs_aws_credentials *c)
{
    int rc = ibs_aws_credentials_set(out, c->access_key_id, c->secret_access_key, c->session_token,
                                     c->expiration, c->source);
    if (rc == 0 && c->source_buf) {
        out->source_buf = dup_str(c->source_buf);
        if (!out->source_buf) {
            ibs_aws_credentials_release(out);
            return IBS_ENOMEM;
        }
        out->source = out->source_buf;
    }
    return rc;
}

/* ---- time ------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

int ibs_aws_credentials_parse_time(int64_t *out, const char *s)
{
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, mo, d, h, mi, se, oh = 0, om = 0;
    const char *p;
    int64_t t;
    int sign = 0;

    *out = 0;
    if (strlen(s) < 19 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &se))
        goto bad;
    p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            goto bad;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        if (!digits(p + 1, 2, &oh))
            goto bad;
        p += 3;
        if (*p == ':')
            p++;
        if (!digits(p, 2, &om))
            goto bad;
        p += 2;
    } else {
        goto bad;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60 ||
        oh > 23 || om > 59)
        goto bad;
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (se == 60 ? 59 : se);
    t -= sign * (int64_t)(oh * 3600 + om * 60);
    *out = t;
    return 0;
bad:
    return ibs_error_set(IBS_EINVALID, "invalid time \"%.40s\" (expected 2024-05-01T10:20:30Z)", s);
}

void ibs_aws_credentials_format_time(char *out, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, IBS_AWS_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, IBS_AWS_TIME_LEN, "@%lld", (long long)t);
}

/* ---- redaction ------------------------------------------------------- */

/* Shorter strings would match ordinary words; real secrets are far longer. */
#define MIN_REDACT_LEN 4

void ibs_aws_credentials_redact_error(const char *const *secrets, size_t n)
{
    const struct ibs_error *e = ibs_error_last();
    struct ibs_buf out = IBS_BUF_INIT;
    const char *p = e->message;
    int code = e->code;
    bool changed = false;

    while (*p) {
        size_t best = 0;
        for (size_t i = 0; i < n; i++) {
            size_t len = secrets[i] ? strlen(secrets[i]) : 0;
            if (len >= MIN_REDACT_LEN && len > best && strncmp(p, secrets[i], len) == 0)
                best = len;
        }
        if (best) {
            ibs_buf_puts(&out, "***");
            p += best;
            changed = true;
        } else {
            ibs_buf_putc(&out, *p++);
        }
    }
    if (changed) {
        if (ibs_buf_oom(&out) == 0)
            ibs_error_set(code, "%s", out.ptr);
        else
            ibs_error_set(code, "(error message withheld: it contained a secret)");
    }
    OPENSSL_cleanse(out.ptr, out.size);
    ibs_buf_release(&out);
}

/* ---- JSON credentials ------------------------------------------------ */

/* Wipes the strings of a parsed JSON tree before freeing it. */
static void wipe_value(struct ibs_value *v)
{
    if (!v)
        return;
    if (v->str)
        OPENSSL_cleanse(v->str, v->len);
    if (v->type == IBS_VALUE_LIST)
        for (size_t i = 0; i < v->count; i++)
            wipe_value(v->u.items[i]);
    if (v->type == IBS_VALUE_MAP)
        for (size_t i = 0; i < v->count; i++)
            wipe_value(v->u.members[i].value);
}

int ibs_aws_credentials_parse_json(struct ibs_aws_credentials *out, const char *json, size_t len,
                                   const char *token_key, const char *source)
{
    struct ibs_value *doc = NULL;
    const char *akid, *secret, *token, *exp;
    int64_t expiration = 0;
    int rc;

    ibs_aws_credentials_init(out);
    rc = ibs_json_parse(&doc, json, len);
    if (rc < 0) {
        /* The parser quotes the offending character, which could belong to
         * a secret: keep only the position. */
        char msg[256];
        const char *m = ibs_error_last()->message;
        const char *close = strchr(m, ')');
        snprintf(msg, sizeof(msg), "%.*s", close ? (int)(close - m + 1) : 0, m);
        rc = ibs_error_set(IBS_EINVALID, "malformed credentials JSON: %s",
                           msg[0] ? msg : "cannot parse");
        goto done;
    }
    if (doc->type != IBS_VALUE_MAP) {
        rc = ibs_error_set(IBS_EINVALID, "malformed credentials JSON: expected an object, got %s",
                           ibs_value_type_name(doc->type));
        goto done;
    }
    akid = ibs_value_map_get_str(doc, "AccessKeyId");
    secret = ibs_value_map_get_str(doc, "SecretAccessKey");
    token = ibs_value_map_get_str(doc, "Token");
    if (strcmp(token_key, "Token") != 0)
        token = ibs_value_map_get_str(doc, token_key);
    exp = ibs_value_map_get_str(doc, "Expiration");
    if (!akid || !*akid || !secret || !*secret) {
        rc = ibs_error_set(IBS_EINVALID, "malformed credentials JSON: no %s string",
                           !akid || !*akid ? "AccessKeyId" : "SecretAccessKey");
        goto done;
    }
    if (ibs_value_map_get(doc, token_key) && !token) {
        rc = ibs_error_set(IBS_EINVALID, "malformed credentials JSON: %s is not a string",
                           token_key);
        goto done;
    }
    if (exp) {
        rc = ibs_aws_credentials_parse_time(&expiration, exp);
        if (rc < 0) {
            ibs_error_prefix("malformed credentials JSON: Expiration");
            goto done;
        }
    } else if (ibs_value_map_get(doc, "Expiration") &&
               ibs_value_map_get(doc, "Expiration")->type != IBS_VALUE_NULL) {
        rc = ibs_error_set(IBS_EINVALID, "malformed credentials JSON: Expiration is not a string");
        goto done;
    }
    rc = ibs_aws_credentials_set(out, akid, secret, token, expiration, source);
done:
    wipe_value(doc);
    ibs_value_free(doc);
    return rc;
}

/* ---- URLs ------------------------------------------------------------ */

void ibs_aws_credentials_url_release(struct ibs_aws_credentials_url *u)
{
    if (!u)
        return;
    free(u->scheme);
    free(u->host);
    free(u->authority);
    free(u->path);
    memset(u, 0, sizeof(*u));
}

static char *dup_lower(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) {
        ibs_error_oom();
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    p[n] = '\0';
    return p;
}

int ibs_aws_credentials_url_parse(struct ibs_aws_credentials_url *out, const char *url)
{
    const char *sep = strstr(url, "://"), *auth, *end, *host, *hend, *port = NULL;
    struct ibs_buf path = IBS_BUF_INIT;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!sep) {
        rc = ibs_error_set(IBS_EINVALID, "URL \"%s\": expected http:// or https://", url);
        goto done;
    }
    out->scheme = dup_lower(url, (size_t)(sep - url));
    if (!out->scheme) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if (strcmp(out->scheme, "http") != 0 && strcmp(out->scheme, "https") != 0) {
        rc = ibs_error_set(IBS_EINVALID, "URL \"%s\": expected http:// or https://", url);
        goto done;
    }
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(end - auth))) {
        rc = ibs_error_set(IBS_EINVALID, "URL with user information is not allowed");
        goto done;
    }
    host = auth;
    if (*host == '[') {
        hend = memchr(host, ']', (size_t)(end - host));
        if (!hend) {
            rc = ibs_error_set(IBS_EINVALID, "URL \"%s\": expected ']'", url);
            goto done;
        }
        host++;
        if (hend + 1 < end) {
            if (hend[1] != ':') {
                rc = ibs_error_set(IBS_EINVALID, "URL \"%s\": unexpected text after ']'", url);
                goto done;
            }
            port = hend + 2;
        }
    } else {
        hend = memchr(host, ':', (size_t)(end - host));
        if (hend)
            port = hend + 1;
        else
            hend = end;
    }
    if (hend == host) {
        rc = ibs_error_set(IBS_EINVALID, "URL \"%s\" has no host", url);
        goto done;
    }
    out->port = strcmp(out->scheme, "https") == 0 ? 443 : 80;
    if (port) {
        long v = 0;
        if (port == end) {
            rc = ibs_error_set(IBS_EINVALID, "URL \"%s\": empty port", url);
            goto done;
        }
        for (const char *c = port; c < end; c++) {
            if (*c < '0' || *c > '9' || (v = v * 10 + (*c - '0')) > 65535) {
                rc = ibs_error_set(IBS_EINVALID, "URL \"%s\": invalid port", url);
                goto done;
            }
        }
        if (v == 0) {
            rc = ibs_error_set(IBS_EINVALID, "URL \"%s\": invalid port", url);
            goto done;
        }
        out->port = (int)v;
    }
    out->host = dup_lower(host, (size_t)(hend - host));
    out->authority = dup_lower(auth, (size_t)(end - auth));
    if (*end != '/')
        ibs_buf_putc(&path, '/');
    ibs_buf_put(&path, end, strcspn(end, "#"));
    out->path = ibs_buf_detach(&path);
    if (!out->host || !out->authority || !out->path)
        rc = IBS_ENOMEM;
done:
    if (rc < 0)
        ibs_aws_credentials_url_release(out);
    return rc;
}

/*
 * Inside a provider that is configured, "not found" (a missing token file,
 * an HTTP 404) must not read as "not configured" to the chain, which would
 * then try the next provider: turn it into an authentication failure.
 */
static int not_absent(int rc)
{
    if (rc == IBS_ENOTFOUND) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", ibs_error_last()->message);
        rc = ibs_error_set(IBS_EAUTH, "%s", msg);
    }
    return rc;
}

/* ---- the shared state of the default providers ----------------------- */

struct chain_env {
    struct ibs_aws_config_options config; /* strings point at the copies below */
    char *profile, *region, *service, *home, *config_file, *credentials_file;
    struct ibs_http_options http;
    char *ca_bundle;
    long imds_timeout_ms;
    unsigned imds_attempts;
    long process_timeout_ms;
    int64_t (*clock)(void *ctx);
    void *clock_ctx;
    bool files_loaded;
    struct ibs_aws_shared_config files;
    struct ibs_aws_settings settings;
    struct ibs_http_client *http_client; /* created on first use */
    struct ibs_http_client *imds_client;
};

static int64_t env_now(const struct chain_env *env)
{
    return env->clock ? env->clock(env->clock_ctx) : (int64_t)time(NULL);
}

static const char *env_get(const struct chain_env *env, const char *name)
{
    return ibs_aws_config_getenv(&env->config, name);
}

static int env_http(struct ibs_http_client **out, struct chain_env *env)
{
    struct ibs_http_options o = env->http;
    int rc = 0;

    if (!env->http_client) {
        if (!o.ca_bundle)
            o.ca_bundle = env->settings.ca_bundle;
        rc = ibs_http_client_new(&env->http_client, &o);
    }
    *out = env->http_client;
    return rc;
}

static void chain_env_free(struct chain_env *env)
{
    if (!env)
        return;
    free(env->profile);
    free(env->region);
    free(env->service);
    free(env->home);
    free(env->config_file);
    free(env->credentials_file);
    free(env->ca_bundle);
    ibs_aws_config_release(&env->files);
    ibs_aws_config_settings_release(&env->settings);
    ibs_http_client_free(env->http_client);
    ibs_http_client_free(env->imds_client);
    free(env);
}

static void check_expired_message(const struct ibs_aws_credentials *c, int64_t now)
{
    char exp[IBS_AWS_TIME_LEN], cur[IBS_AWS_TIME_LEN];
    ibs_aws_credentials_format_time(exp, c->expiration);
    ibs_aws_credentials_format_time(cur, now);
    ibs_error_set(IBS_EAUTH, "credentials from %s expired at %s (now %s)", c->source, exp, cur);
}

/* IBS_EAUTH when `c` carries an expiration that has passed. */
static int check_expired(const struct ibs_aws_credentials *c, int64_t now)
{
    if (c->expiration != 0 && c->expiration <= now) {
        check_expired_message(c, now);
        return IBS_EAUTH;
    }
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int ibs_aws_credentials_read_token(char **out, const char *path, const char *what)
{
    struct ibs_buf b = IBS_BUF_INIT;
    FILE *fp = fopen(path, "rb");
    char chunk[4096];
    size_t n, start = 0, end;
    int rc = 0;

    *out = NULL;
    if (!fp) {
        rc = ibs_error_set(errno == ENOENT ? IBS_ENOTFOUND : IBS_EIO, "cannot read %s %s: %s", what,
                           path, strerror(errno));
        goto done;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (b.size + n > MAX_TOKEN_FILE) {
            rc = ibs_error_set(IBS_EINVALID, "%s %s: larger than %d bytes", what, path,
                               MAX_TOKEN_FILE);
            goto done;
        }
        ibs_buf_put(&b, chunk, n);
    }
    OPENSSL_cleanse(chunk, sizeof(chunk));
    rc = ibs_buf_oom(&b);
    if (rc < 0)
        goto done;
    if (ferror(fp)) {
        rc = ibs_error_set(IBS_EIO, "cannot read %s %s", what, path);
        goto done;
    }
    end = b.size;
    while (end > 0 && is_space(b.ptr[end - 1]))
        end--;
    while (start < end && is_space(b.ptr[start]))
        start++;
    if (start == end) {
        rc = ibs_error_set(IBS_EINVALID, "%s %s is empty", what, path);
        goto done;
    }
    if (memchr(b.ptr + start, '\0', end - start)) {
        rc = ibs_error_set(IBS_EINVALID, "%s %s contains a NUL byte", what, path);
        goto done;
    }
    *out = malloc(end - start + 1);
    if (!*out) {
        rc = ibs_error_oom();
        goto done;
    }
    memcpy(*out, b.ptr + start, end - start);
    (*out)[end - start] = '\0';
done:
    if (fp)
        fclose(fp);
    OPENSSL_cleanse(b.ptr, b.asize);
    ibs_buf_release(&b);
    return rc;
}

/* ---- STS helpers shared by the profile and web-identity providers ----- */

static const char *sts_region(const struct chain_env *env)
{
    return env->settings.region ? env->settings.region : IBS_AWS_STS_DEFAULT_REGION;
}

static int default_session_name(char **out, const struct chain_env *env)
{
    struct ibs_buf b = IBS_BUF_INIT;
    ibs_buf_printf(&b, "ibsync-%lld", (long long)env_now(env));
    *out = ibs_buf_detach(&b);
    return *out ? 0 : IBS_ENOMEM;
}

/*
 * AssumeRoleWithWebIdentity for `role_arn` with the token read from
 * `token_file` now (tokens rotate, so it is read on every refresh).
 */
static int web_identity_call(struct ibs_aws_credentials *out, struct chain_env *env,
                             const char *role_arn, const char *token_file, const char *session_name,
                             const char *token_what)
{
    struct ibs_aws_sts_request req;
    struct ibs_http_client *http;
    char *token = NULL, *endpoint = NULL, *path = NULL, *name = NULL;
    int rc;

    memset(&req, 0, sizeof(req));
    path = ibs_aws_config_expand_path(token_file, env->files.home);
    if (!path) {
        rc = IBS_ENOMEM;
        goto done;
    }
    rc = ibs_aws_credentials_read_token(&token, path, token_what);
    if (rc < 0)
        goto done;
    if (!session_name) {
        rc = default_session_name(&name, env);
        if (rc < 0)
            goto done;
        session_name = name;
    }
    rc = ibs_aws_sts_endpoint(&endpoint, &env->files, &env->config, sts_region(env));
    if (rc < 0)
        goto done;
    rc = env_http(&http, env);
    if (rc < 0)
        goto done;
    req.endpoint = endpoint;
    req.region = sts_region(env);
    req.role_arn = role_arn;
    req.role_session_name = session_name;
    req.web_identity_token = token;
    req.now = env_now(env);
    rc = ibs_aws_sts_assume_role(out, http, &req);
    if (rc < 0) {
        const char *secrets[] = {token};
        ibs_aws_credentials_redact_error(secrets, 1);
    }
done:
    wipe_free(token);
    free(endpoint);
    free(path);
    free(name);
    return rc;
}

/* ---- 1. environment -------------------------------------------------- */

static const char *env_first(const struct chain_env *env, const char *a, const char *b)
{
    const char *v = env_get(env, a);
    return v ? v : env_get(env, b);
}

static int env_credentials(struct ibs_aws_credentials *out, struct chain_env *env, const char *what)
{
    const char *akid = env_first(env, "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY");
    const char *secret = env_first(env, "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY");
    const char *token = env_first(env, "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN");
    const char *exp = env_get(env, "AWS_CREDENTIAL_EXPIRATION");
    int64_t expiration = 0;
    int rc;

    if (!akid && !secret)
        return ibs_error_set(IBS_ENOTFOUND, "%s", what);
    if (!akid)
        return ibs_error_set(IBS_EAUTH,
                             "%s: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not", what);
    if (!secret)
        return ibs_error_set(IBS_EAUTH,
                             "%s: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not", what);
    if (exp) {
        rc = ibs_aws_credentials_parse_time(&expiration, exp);
        if (rc < 0)
            return ibs_error_prefix("%s: AWS_CREDENTIAL_EXPIRATION", what);
    }
    return ibs_aws_credentials_set(out, akid, secret, token, expiration, "env");
}

static int env_resolve(struct ibs_aws_credentials *out, void *ctx)
{
    struct chain_env *env = ctx;
    /* The AWS CLI drops the environment provider when --profile is given:
     * an explicit profile beats exported keys. */
    if (strcmp(env->files.profile_source, "--profile") == 0)
        return ibs_error_set(IBS_ENOTFOUND, "environment (ignored with --profile)");
    return env_credentials(out, env, "environment");
}

/* ---- 2. profile ------------------------------------------------------ */

static const char *prof_get(const struct chain_env *env, const char *profile, const char *key)
{
    return ibs_aws_config_get(&env->files, profile, key);
}

static bool in_list(const struct ibs_vec *v, const char *name)
{
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->items[i], name) == 0)
            return true;
    return false;
}

static int cycle_error(const struct ibs_vec *visited, const char *again)
{
    struct ibs_buf b = IBS_BUF_INIT;
    int rc;
    for (size_t i = 0; i < visited->count; i++)
        ibs_buf_printf(&b, "%s -> ", (const char *)visited->items[i]);
    ibs_buf_puts(&b, again);
    rc = ibs_buf_oom(&b);
    if (rc == 0)
        rc = ibs_error_set(IBS_EINVALID, "profile \"%s\": source_profile cycle: %s",
                           (const char *)visited->items[0], b.ptr);
    ibs_buf_release(&b);
    return rc;
}

static int profile_static(struct ibs_aws_credentials *out, struct chain_env *env,
                          const char *profile)
{
    struct ibs_aws_config_ref ref;
    const char *akid = prof_get(env, profile, "aws_access_key_id");
    const char *secret = prof_get(env, profile, "aws_secret_access_key");
    const char *token = prof_get(env, profile, "aws_session_token");
    int rc;

    if (!akid || !*akid || !secret || !*secret) {
        const char *have = akid && *akid ? "aws_access_key_id" : "aws_secret_access_key";
        const char *miss = akid && *akid ? "aws_secret_access_key" : "aws_access_key_id";
        if (!ibs_aws_config_find(&ref, &env->files, profile, have))
            memset(&ref, 0, sizeof(ref));
        return ibs_error_set(IBS_EAUTH, "%s:%u: profile \"%s\" sets %s but not %s",
                             ref.file ? ref.file : "?", ref.line, profile, have, miss);
    }
    rc = ibs_aws_credentials_set(out, akid, secret, token, 0, "profile");
    if (rc == 0)
        rc = ibs_aws_credentials_set_profile_source(out, profile);
    return rc;
}

static bool profile_has_static(const struct chain_env *env, const char *profile)
{
    const char *a = prof_get(env, profile, "aws_access_key_id");
    const char *s = prof_get(env, profile, "aws_secret_access_key");
    return (a && *a) || (s && *s);
}

static int container_resolve(struct ibs_aws_credentials *out, void *ctx);
static int imds_resolve(struct ibs_aws_credentials *out, void *ctx);

/* credential_source = Environment | Ec2InstanceMetadata | EcsContainer */
static int credential_source(struct ibs_aws_credentials *out, struct chain_env *env,
                             const char *profile, const char *source)
{
    int rc;
    if (strcmp(source, "Environment") == 0)
        rc = env_credentials(out, env, "environment");
    else if (strcmp(source, "Ec2InstanceMetadata") == 0)
        rc = imds_resolve(out, env);
    else if (strcmp(source, "EcsContainer") == 0)
        rc = container_resolve(out, env);
    else
        return ibs_error_set(IBS_EINVALID,
                             "profile \"%s\": credential_source \"%s\" is not one of Environment, "
                             "Ec2InstanceMetadata, EcsContainer",
                             profile, source);
    if (rc == IBS_ENOTFOUND) {
        char why[512];
        snprintf(why, sizeof(why), "%s", ibs_error_last()->message);
        rc = ibs_error_set(IBS_EAUTH, "%s gave no credentials (%s)", source, why);
    }
    if (rc < 0)
        ibs_error_prefix("profile \"%s\": credential_source", profile);
    return rc;
}

static int parse_duration(int *out, const struct chain_env *env, const char *profile)
{
    struct ibs_aws_config_ref ref;
    char *end;
    long v;

    *out = 0;
    if (!ibs_aws_config_find(&ref, &env->files, profile, "duration_seconds") || !ref.value[0])
        return 0;
    errno = 0;
    v = strtol(ref.value, &end, 10);
    if (errno || *end || v < MIN_DURATION || v > MAX_DURATION)
        return ibs_error_set(
            IBS_EINVALID,
            "%s:%u: profile \"%s\": duration_seconds must be an integer from %d to "
            "%d, got \"%s\"",
            ref.file, ref.line, profile, MIN_DURATION, MAX_DURATION, ref.value);
    *out = (int)v;
    return 0;
}

static int resolve_profile(struct ibs_aws_credentials *out, struct chain_env *env,
                           const char *profile, struct ibs_vec *visited, bool is_source);

/* role_arn + source_profile / credential_source: STS AssumeRole. */
static int profile_assume_role(struct ibs_aws_credentials *out, struct chain_env *env,
                               const char *profile, const char *role_arn, struct ibs_vec *visited)
{
    const char *src = prof_get(env, profile, "source_profile");
    const char *csrc = prof_get(env, profile, "credential_source");
    const char *session = prof_get(env, profile, "role_session_name");
    struct ibs_aws_credentials source;
    struct ibs_aws_sts_request req;
    struct ibs_http_client *http;
    char *endpoint = NULL, *name = NULL;
    int rc;

    ibs_aws_credentials_init(&source);
    memset(&req, 0, sizeof(req));
    if (src && csrc) {
        rc = ibs_error_set(IBS_EINVALID,
                           "profile \"%s\": set only one of source_profile and credential_source",
                           profile);
        goto done;
    }
    if (prof_get(env, profile, "mfa_serial")) {
        rc = ibs_error_set(IBS_EUNSUPPORTED,
                           "profile \"%s\": mfa_serial needs an MFA code, which ibsync cannot ask "
                           "for; use credential_process with a tool that can",
                           profile);
        goto done;
    }
    if (src) {
        if (strcmp(src, profile) == 0) {
            /* A profile may name itself as source when it holds static keys
             * (the SDKs allow this for role chaining from one profile). */
            if (!profile_has_static(env, profile)) {
                rc = cycle_error(visited, src);
                goto done;
            }
            rc = profile_static(&source, env, profile);
        } else if (in_list(visited, src)) {
            rc = cycle_error(visited, src);
            goto done;
        } else if (!ibs_aws_config_has_profile(&env->files, src)) {
            rc = ibs_error_set(IBS_EINVALID, "profile \"%s\": source_profile \"%s\" does not exist",
                               profile, src);
            goto done;
        } else {
            rc = resolve_profile(&source, env, src, visited, true);
        }
    } else if (csrc) {
        rc = credential_source(&source, env, profile, csrc);
    } else {
        rc = ibs_error_set(IBS_EINVALID,
                           "profile \"%s\": role_arn needs source_profile, credential_source or "
                           "web_identity_token_file",
                           profile);
    }
    if (rc < 0)
        goto done;
    rc = check_expired(&source, env_now(env));
    if (rc < 0) {
        ibs_error_prefix("profile \"%s\"", profile);
        goto done;
    }
    rc = parse_duration(&req.duration_seconds, env, profile);
    if (rc < 0)
        goto done;
    if (!session) {
        rc = default_session_name(&name, env);
        if (rc < 0)
            goto done;
        session = name;
    }
    rc = ibs_aws_sts_endpoint(&endpoint, &env->files, &env->config, sts_region(env));
    if (rc < 0)
        goto done;
    rc = env_http(&http, env);
    if (rc < 0)
        goto done;
    req.endpoint = endpoint;
    req.region = sts_region(env);
    req.role_arn = role_arn;
    req.role_session_name = session;
    req.external_id = prof_get(env, profile, "external_id");
    req.source = &source;
    req.now = env_now(env);
    rc = ibs_aws_sts_assume_role(out, http, &req);
    if (rc < 0) {
        const char *secrets[] = {source.secret_access_key, source.session_token};
        ibs_aws_credentials_redact_error(secrets, 2);
        ibs_error_prefix("profile \"%s\"", profile);
    }
done:
    ibs_aws_credentials_release(&source);
    free(endpoint);
    free(name);
    return rc;
}

/* Why a profile gave no credentials, for the "tried ..." list. */
static int profile_not_configured(const struct chain_env *env, const char *profile)
{
    const struct ibs_aws_shared_config *f = &env->files;
    if (!ibs_aws_config_has_profile(f, profile)) {
        if (!f->config && !f->credentials)
            return ibs_error_set(IBS_ENOTFOUND, "profile \"%s\" (no %s or %s)", profile,
                                 f->config_name, f->credentials_name);
        if (!f->credentials)
            return ibs_error_set(IBS_ENOTFOUND, "profile \"%s\" (no %s, not in %s)", profile,
                                 f->credentials_name, f->config_name);
        if (!f->config)
            return ibs_error_set(IBS_ENOTFOUND, "profile \"%s\" (not in %s, no %s)", profile,
                                 f->credentials_name, f->config_name);
        return ibs_error_set(IBS_ENOTFOUND, "profile \"%s\" (not in %s or %s)", profile,
                             f->config_name, f->credentials_name);
    }
    if (!f->credentials)
        return ibs_error_set(IBS_ENOTFOUND, "profile \"%s\" (no %s)", profile, f->credentials_name);
    return ibs_error_set(IBS_ENOTFOUND, "profile \"%s\" (no credentials in the profile)", profile);
}

/*
 * Credentials of `profile` in the SDKs' order. For a source_profile
 * (is_source), static keys come first, as in botocore: a source profile
 * with keys and a role_arn of its own provides its keys.
 */
static int resolve_profile(struct ibs_aws_credentials *out, struct chain_env *env,
                           const char *profile, struct ibs_vec *visited, bool is_source)
{
    const char *role_arn = prof_get(env, profile, "role_arn");
    const char *process = prof_get(env, profile, "credential_process");
    int rc = ibs_vec_push(visited, (void *)profile);

    if (rc < 0)
        return rc;
    if (is_source && profile_has_static(env, profile))
        return profile_static(out, env, profile);
    if (role_arn && *role_arn) {
        const char *wit = prof_get(env, profile, "web_identity_token_file");
        if (wit && *wit && !prof_get(env, profile, "source_profile") &&
            !prof_get(env, profile, "credential_source")) {
            rc = web_identity_call(out, env, role_arn, wit,
                                   prof_get(env, profile, "role_session_name"),
                                   "web_identity_token_file");
            if (rc < 0)
                ibs_error_prefix("profile \"%s\": web identity", profile);
            return rc;
        }
        return profile_assume_role(out, env, profile, role_arn, visited);
    }
    if (process && *process) {
        rc = ibs_aws_credentials_process(out, process, env->process_timeout_ms);
        if (rc < 0)
            return ibs_error_prefix("profile \"%s\": credential_process", profile);
        return 0;
    }
    if (profile_has_static(env, profile))
        return profile_static(out, env, profile);
    if (prof_get(env, profile, "sso_session") || prof_get(env, profile, "sso_start_url"))
        return ibs_error_set(IBS_EUNSUPPORTED,
                             "profile \"%s\" uses IAM Identity Center (SSO), which ibsync does not "
                             "support; set credential_process = aws configure export-credentials "
                             "--profile %s --format process in another profile and use that",
                             profile, profile);
    if (!is_source || visited->count < 2)
        return ibs_error_set(IBS_EAUTH, "profile \"%s\" has no credentials", profile);
    return ibs_error_set(IBS_EAUTH, "profile \"%s\" (source_profile of \"%s\") has no credentials",
                         profile, (const char *)visited->items[visited->count - 2]);
}

/* Whether the profile says anything about credentials. */
static bool profile_configured(const struct chain_env *env, const char *profile)
{
    static const char *const keys[] = {"role_arn",          "credential_process",
                                       "sso_session",       "sso_start_url",
                                       "aws_access_key_id", "aws_secret_access_key"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = prof_get(env, profile, keys[i]);
        if (v && *v)
            return true;
    }
    return false;
}

static int profile_resolve(struct ibs_aws_credentials *out, void *ctx)
{
    struct chain_env *env = ctx;
    struct ibs_vec visited = IBS_VEC_INIT;
    int rc;

    if (!ibs_aws_config_has_profile(&env->files, env->files.profile))
        return profile_not_configured(env, env->files.profile);
    if (!profile_configured(env, env->files.profile))
        return profile_not_configured(env, env->files.profile);
    rc = not_absent(resolve_profile(out, env, env->files.profile, &visited, false));
    ibs_vec_release(&visited);
    return rc;
}

/* ---- 3. web identity from the environment ---------------------------- */

static int web_identity_resolve(struct ibs_aws_credentials *out, void *ctx)
{
    struct chain_env *env = ctx;
    char *arn = dup_str(env_get(env, "AWS_ROLE_ARN"));
    char *file = dup_str(env_get(env, "AWS_WEB_IDENTITY_TOKEN_FILE"));
    char *session = dup_str(env_get(env, "AWS_ROLE_SESSION_NAME"));
    int rc;

    if (!arn && !file) {
        rc = ibs_error_set(IBS_ENOTFOUND, "web identity (AWS_ROLE_ARN not set)");
        goto done;
    }
    if (!arn || !file) {
        rc = ibs_error_set(IBS_ENOTFOUND, "web identity (%s set, but not %s)",
                           arn ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE",
                           arn ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN");
        goto done;
    }
    rc = not_absent(web_identity_call(out, env, arn, file, session, "AWS_WEB_IDENTITY_TOKEN_FILE"));
    if (rc < 0)
        ibs_error_prefix("web identity");
done:
    free(arn);
    free(file);
    free(session);
    return rc;
}

/* ---- 4. container, 5. IMDS ------------------------------------------- */

static int container_resolve(struct ibs_aws_credentials *out, void *ctx)
{
    struct chain_env *env = ctx;
    struct ibs_http_client *http;
    char *url = NULL;
    int rc = ibs_aws_credentials_container_url(&url, &env->config);

    free(url);
    if (rc < 0)
        return rc == IBS_ENOTFOUND ? rc : ibs_error_prefix("container");
    rc = env_http(&http, env);
    if (rc < 0)
        return rc;
    rc = not_absent(ibs_aws_credentials_container(out, http, &env->config));
    if (rc < 0)
        ibs_error_prefix("container");
    return rc;
}

static bool env_true(const struct chain_env *env, const char *name)
{
    const char *v = env_get(env, name);
    return v && strcasecmp(v, "true") == 0;
}

static int imds_resolve(struct ibs_aws_credentials *out, void *ctx)
{
    struct chain_env *env = ctx;
    char *url = NULL;
    int rc;

    if (env_true(env, "AWS_EC2_METADATA_DISABLED"))
        return ibs_error_set(IBS_ENOTFOUND, "IMDS (disabled by AWS_EC2_METADATA_DISABLED)");
    rc = ibs_aws_credentials_imds_url(&url, &env->config, &env->files);
    if (rc < 0)
        goto done;
    if (!env->imds_client) {
        struct ibs_http_options o;
        memset(&o, 0, sizeof(o));
        o.max_connections = 1;
        o.connect_timeout_ms = env->imds_timeout_ms;
        o.timeout_ms = env->imds_timeout_ms;
        o.log = env->http.log;
        o.log_ctx = env->http.log_ctx;
        rc = ibs_http_client_new(&env->imds_client, &o);
        if (rc < 0)
            goto done;
    }
    rc = ibs_aws_credentials_imds(out, env->imds_client, url, env->imds_attempts);
done:
    if (rc < 0 && rc != IBS_ENOTFOUND)
        ibs_error_prefix("IMDS");
    free(url);
    return rc;
}

/* ---- the chain ------------------------------------------------------- */

struct snapshot {
    atomic_uint refs;
    struct ibs_aws_credentials creds;
};

struct ibs_aws_credentials_chain {
    struct ibs_aws_credentials_provider *providers;
    size_t nproviders;
    struct chain_env *env;
    int64_t window;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Guarded by lock: */
    struct snapshot *current;
    int64_t refresh_at; /* 0: never */
    bool refreshing;
    bool force;
    unsigned long generation; /* completed refreshes */
    int last_rc;
    char *last_msg;
    int64_t retry_after;
    bool has_active;
    size_t active;
};

static void snapshot_unref(struct snapshot *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        ibs_aws_credentials_release(&s->creds);
        free(s);
    }
}

/* ---- per-thread holds ---- */

static pthread_once_t hold_once = PTHREAD_ONCE_INIT;
static pthread_key_t hold_key;
static bool hold_key_ok;

static void hold_destroy(void *p)
{
    snapshot_unref(p);
}

static void hold_init(void)
{
    hold_key_ok = pthread_key_create(&hold_key, hold_destroy) == 0;
}

/* Makes the calling thread hold `s` (one reference is handed over). */
static int hold_set(struct snapshot *s)
{
    struct snapshot *old;

    pthread_once(&hold_once, hold_init);
    if (!hold_key_ok) {
        snapshot_unref(s);
        return ibs_error_set(IBS_ERROR, "cannot create the thread-local credentials slot");
    }
    old = pthread_getspecific(hold_key);
    if (pthread_setspecific(hold_key, s) != 0) {
        snapshot_unref(s);
        return ibs_error_oom();
    }
    snapshot_unref(old);
    return 0;
}

void ibs_aws_credentials_thread_release(void)
{
    pthread_once(&hold_once, hold_init);
    if (!hold_key_ok)
        return;
    snapshot_unref(pthread_getspecific(hold_key));
    pthread_setspecific(hold_key, NULL);
}

/* ---- construction ---- */

static int copy_opt(char **out, const char *s)
{
    *out = NULL;
    if (!s)
        return 0;
    *out = dup_str(s);
    return *out ? 0 : IBS_ENOMEM;
}

static int env_new(struct chain_env **out, const struct ibs_aws_chain_options *opts,
                   bool load_files)
{
    struct chain_env *env = calloc(1, sizeof(*env));
    const struct ibs_aws_config_options *c = &opts->config;
    int rc = 0;

    *out = NULL;
    if (!env) {
        rc = ibs_error_oom();
        goto done;
    }
    if ((rc = copy_opt(&env->profile, c->profile)) < 0 ||
        (rc = copy_opt(&env->region, c->region)) < 0 ||
        (rc = copy_opt(&env->service, c->service)) < 0 ||
        (rc = copy_opt(&env->home, c->home)) < 0 ||
        (rc = copy_opt(&env->config_file, c->config_file)) < 0 ||
        (rc = copy_opt(&env->credentials_file, c->credentials_file)) < 0 ||
        (rc = copy_opt(&env->ca_bundle, opts->http.ca_bundle)) < 0)
        goto done;
    env->config.profile = env->profile;
    env->config.region = env->region;
    env->config.service = env->service;
    env->config.getenv = c->getenv;
    env->config.env_ctx = c->env_ctx;
    env->config.home = env->home;
    env->config.config_file = env->config_file;
    env->config.credentials_file = env->credentials_file;
    env->http = opts->http;
    env->http.ca_bundle = env->ca_bundle;
    env->imds_timeout_ms =
        opts->imds_timeout_ms > 0 ? opts->imds_timeout_ms : DEFAULT_IMDS_TIMEOUT_MS;
    env->imds_attempts = opts->imds_attempts > 0 ? opts->imds_attempts : DEFAULT_IMDS_ATTEMPTS;
    env->process_timeout_ms =
        opts->process_timeout_ms > 0 ? opts->process_timeout_ms : DEFAULT_PROCESS_TIMEOUT_MS;
    env->clock = opts->clock;
    env->clock_ctx = opts->clock_ctx;
    if (load_files) {
        env->files_loaded = true;
        rc = ibs_aws_config_load(&env->files, &env->config);
        if (rc < 0)
            goto done;
        rc = ibs_aws_config_settings(&env->settings, &env->files, &env->config);
        if (rc < 0)
            goto done;
    }
    *out = env;
    env = NULL;
done:
    chain_env_free(env);
    return rc;
}

static const struct ibs_aws_credentials_provider default_providers[] = {
    {"environment", env_resolve, NULL, NULL},
    {"profile", profile_resolve, NULL, NULL},
    {"web identity", web_identity_resolve, NULL, NULL},
    {"container", container_resolve, NULL, NULL},
    {"IMDS", imds_resolve, NULL, NULL},
};

int ibs_aws_credentials_chain_new(struct ibs_aws_credentials_chain **out,
                                  const struct ibs_aws_chain_options *opts)
{
    static const struct ibs_aws_chain_options no_opts;
    struct ibs_aws_credentials_chain *chain = NULL;
    const struct ibs_aws_credentials_provider *list = default_providers;
    size_t n = sizeof(default_providers) / sizeof(default_providers[0]);
    bool custom;
    int rc = 0;

    *out = NULL;
    if (!opts)
        opts = &no_opts;
    custom = opts->nproviders > 0;
    if (custom) {
        list = opts->providers;
        n = opts->nproviders;
    }
    chain = calloc(1, sizeof(*chain));
    if (!chain || !(chain->providers = calloc(n, sizeof(*chain->providers)))) {
        rc = ibs_error_oom();
        goto done;
    }
    memcpy(chain->providers, list, n * sizeof(*list));
    chain->nproviders = n;
    if (pthread_mutex_init(&chain->lock, NULL) != 0) {
        rc = ibs_error_set(IBS_ERROR, "cannot create a mutex");
        goto done;
    }
    if (pthread_cond_init(&chain->cond, NULL) != 0) {
        pthread_mutex_destroy(&chain->lock);
        rc = ibs_error_set(IBS_ERROR, "cannot create a condition variable");
        goto done;
    }
    chain->window = opts->refresh_window > 0    ? opts->refresh_window
                    : opts->refresh_window == 0 ? IBS_AWS_CREDENTIALS_REFRESH_WINDOW
                                                : 0;
    rc = env_new(&chain->env, opts, !custom);
    if (rc < 0) {
        pthread_cond_destroy(&chain->cond);
        pthread_mutex_destroy(&chain->lock);
        goto done;
    }
    if (!custom)
        for (size_t i = 0; i < n; i++)
            chain->providers[i].ctx = chain->env;
    *out = chain;
    chain = NULL;
done:
    if (chain) {
        free(chain->providers);
        free(chain);
    }
    if (rc < 0 && custom)
        for (size_t i = 0; i < opts->nproviders; i++)
            if (opts->providers[i].free)
                opts->providers[i].free(opts->providers[i].ctx);
    return rc;
}

void ibs_aws_credentials_chain_free(struct ibs_aws_credentials_chain *chain)
{
    if (!chain)
        return;
    for (size_t i = 0; i < chain->nproviders; i++)
        if (chain->providers[i].free)
            chain->providers[i].free(chain->providers[i].ctx);
    free(chain->providers);
    snapshot_unref(chain->current);
    free(chain->last_msg);
    chain_env_free(chain->env);
    pthread_cond_destroy(&chain->cond);
    pthread_mutex_destroy(&chain->lock);
    free(chain);
}

/* ---- refresh ---- */

/* Asks one provider; checks what it returned. */
static int ask(struct ibs_aws_credentials *out, const struct ibs_aws_credentials_provider *p,
               int64_t now)
{
    int rc;
    ibs_aws_credentials_init(out);
    rc = p->resolve(out, p->ctx);
    if (rc == 0 && (!out->access_key_id || !*out->access_key_id || !out->secret_access_key ||
                    !*out->secret_access_key))
        rc = ibs_error_set(IBS_EAUTH, "%s: returned no access key", p->name);
    if (rc == 0 && !out->source)
        out->source = p->name;
    if (rc == 0)
        rc = check_expired(out, now);
    if (rc < 0)
        ibs_aws_credentials_release(out);
    return rc;
}

/* Runs the providers (outside the lock; `refreshing` keeps others out). */
static int refresh(struct snapshot **out, struct ibs_aws_credentials_chain *chain, int64_t now)
{
    struct ibs_buf tried = IBS_BUF_INIT;
    struct snapshot *s = calloc(1, sizeof(*s));
    int rc = IBS_ENOTFOUND;

    *out = NULL;
    if (!s) {
        rc = ibs_error_oom();
        goto done;
    }
    atomic_init(&s->refs, 1);
    if (chain->has_active) {
        rc = ask(&s->creds, &chain->providers[chain->active], now);
        /* The provider that answered before is gone (its variables were
         * unset): walk the whole chain again. */
        if (rc != IBS_ENOTFOUND)
            goto done;
        chain->has_active = false;
    }
    for (size_t i = 0; i < chain->nproviders; i++) {
        rc = ask(&s->creds, &chain->providers[i], now);
        if (rc == 0) {
            chain->has_active = true;
            chain->active = i;
            goto done;
        }
        if (rc != IBS_ENOTFOUND)
            goto done;
        ibs_buf_printf(&tried, "%s%s", tried.size ? ", " : "", ibs_error_last()->message);
    }
    rc = ibs_buf_oom(&tried);
    if (rc == 0)
        rc = ibs_error_set(IBS_EAUTH, "no credentials found: tried %s", tried.ptr);
done:
    ibs_buf_release(&tried);
    if (rc < 0) {
        snapshot_unref(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int64_t chain_now(const struct ibs_aws_credentials_chain *chain)
{
    return env_now(chain->env);
}

static bool usable(const struct snapshot *s, int64_t now)
{
    return s && (s->creds.expiration == 0 || now < s->creds.expiration);
}

static int64_t refresh_time(const struct ibs_aws_credentials_chain *chain, int64_t exp, int64_t now)
{
    int64_t at;
    if (exp == 0)
        return 0;
    at = exp - chain->window;
    /* Credentials that arrive already inside the window (a short-lived
     * process result) are used for half their remaining life. */
    if (at <= now)
        at = now + (exp - now) / 2;
    return at;
}

static bool fresh(const struct ibs_aws_credentials_chain *chain, int64_t now)
{
    return chain->current && !chain->force && (chain->refresh_at == 0 || now < chain->refresh_at);
}

/* A reference to a current snapshot, refreshing first when needed. */
static int acquire(struct snapshot **out, struct ibs_aws_credentials_chain *chain)
{
    struct snapshot *s = NULL, *old = NULL;
    int rc = 0;

    *out = NULL;
    pthread_mutex_lock(&chain->lock);
    for (;;) {
        int64_t now = chain_now(chain);
        if (fresh(chain, now)) {
            s = chain->current;
            break;
        }
        if (chain->refreshing) {
            unsigned long gen = chain->generation;
            /* Someone else refreshes: keep using what is still valid. */
            if (usable(chain->current, now)) {
                s = chain->current;
                break;
            }
            while (chain->refreshing)
                pthread_cond_wait(&chain->cond, &chain->lock);
            if (chain->generation != gen && chain->last_rc < 0 &&
                !usable(chain->current, chain_now(chain))) {
                rc =
                    ibs_error_set(chain->last_rc, "%s",
                                  chain->last_msg ? chain->last_msg : "credentials refresh failed");
                break;
            }
            continue;
        }
        if (!chain->force && usable(chain->current, now) && now < chain->retry_after) {
            s = chain->current;
            break;
        }
        chain->refreshing = true;
        chain->force = false;
        pthread_mutex_unlock(&chain->lock);
        rc = refresh(&s, chain, now);
        pthread_mutex_lock(&chain->lock);
        chain->refreshing = false;
        chain->generation++;
        if (rc == 0) {
            old = chain->current;
            chain->current = s;
            chain->refresh_at = refresh_time(chain, s->creds.expiration, now);
            chain->last_rc = 0;
            chain->retry_after = 0;
        } else {
            free(chain->last_msg);
            chain->last_msg = dup_str(ibs_error_last()->message);
            chain->last_rc = rc;
            chain->retry_after = now + REFRESH_RETRY_DELAY;
            s = NULL;
            /* As the SDKs do: a failed refresh is not fatal while the
             * cached credentials have not expired. */
            if (usable(chain->current, now)) {
                s = chain->current;
                rc = 0;
            }
        }
        pthread_cond_broadcast(&chain->cond);
        break;
    }
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&chain->lock);
    snapshot_unref(old);
    *out = s;
    return rc;
}

int ibs_aws_credentials_get(struct ibs_aws_credentials_view *out,
                            struct ibs_aws_credentials_chain *chain)
{
    struct snapshot *s;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = acquire(&s, chain);
    if (rc < 0)
        return rc;
    rc = hold_set(s);
    if (rc < 0)
        return rc;
    out->access_key_id = s->creds.access_key_id;
    out->secret_access_key = s->creds.secret_access_key;
    out->session_token = s->creds.session_token;
    return 0;
}

int ibs_aws_credentials_chain_callback(void *chain_ctx, struct ibs_aws_credentials_view *out)
{
    return ibs_aws_credentials_get(out, chain_ctx);
}

int ibs_aws_credentials_chain_copy(struct ibs_aws_credentials *out,
                                   struct ibs_aws_credentials_chain *chain)
{
    struct snapshot *s;
    int rc;

    ibs_aws_credentials_init(out);
    rc = acquire(&s, chain);
    if (rc < 0)
        return rc;
    rc = ibs_aws_credentials_copy(out, &s->creds);
    snapshot_unref(s);
    return rc;
}

void ibs_aws_credentials_chain_invalidate(struct ibs_aws_credentials_chain *chain)
{
    pthread_mutex_lock(&chain->lock);
    chain->force = true;
    pthread_mutex_unlock(&chain->lock);
}
