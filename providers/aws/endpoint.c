/*
 * Endpoint resolution for Image Builder, following the service's endpoint
 * rule set as the SDKs ship it (botocore endpoint-rule-set-1.json) and the
 * SDKs' configured-endpoint precedence. The partition table holds what the
 * rules need from partitions.json: the DNS suffixes and whether FIPS and
 * dual-stack exist. Regions outside every known prefix belong to "aws", as
 * in the SDKs.
 */
#include "providers/aws/client.h"

#include "util/error.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct partition {
    const char *prefix; /* region prefix */
    const char *name;
    const char *dns_suffix;
    const char *dualstack_suffix; /* NULL: no dual-stack */
};

/* Longer prefixes first: us-gov-, us-isob- and us-isof- before us-iso-. */
static const struct partition partitions[] = {
    {"cn-", "aws-cn", "amazonaws.com.cn", "api.amazonwebservices.com.cn"},
    {"us-gov-", "aws-us-gov", "amazonaws.com", "api.aws"},
    {"us-isob-", "aws-iso-b", "sc2s.sgov.gov", NULL},
    {"us-isof-", "aws-iso-f", "csp.hci.ic.gov", NULL},
    {"us-iso-", "aws-iso", "c2s.ic.gov", NULL},
    {"eu-isoe-", "aws-iso-e", "cloud.adc-e.uk", NULL},
};
static const struct partition aws_partition = {"", "aws", "amazonaws.com", "api.aws"};

static const struct partition *partition_of(const char *region)
{
    for (size_t i = 0; i < sizeof(partitions) / sizeof(partitions[0]); i++) {
        if (strncmp(region, partitions[i].prefix, strlen(partitions[i].prefix)) == 0)
            return &partitions[i];
    }
    return &aws_partition;
}

static const char *env(const struct ibs_aws_config *cfg, const char *name)
{
    const char *v = cfg->getenv ? cfg->getenv(cfg->env_ctx, name) : getenv(name);
    return v && *v ? v : NULL;
}

/* An explicit setting, else the environment variable (true/false). */
static int flag(bool *out, const struct ibs_aws_config *cfg, int setting, const char *var)
{
    const char *v;

    *out = setting > 0;
    if (setting != 0 || !(v = env(cfg, var)))
        return 0;
    if (strcasecmp(v, "true") == 0)
        *out = true;
    else if (strcasecmp(v, "false") != 0)
        return ibs_error_set(IBS_EINVALID, "%s: expected true or false, not '%s'", var, v);
    return 0;
}

/* A DNS label, as the endpoint rules require of a region. */
static bool valid_region(const char *r)
{
    size_t n = strlen(r);

    if (n == 0 || n > 63 || r[0] == '-' || r[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)r[i]) && r[i] != '-')
            return false;
    }
    return true;
}

static char *dup_lower(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[n] = '\0';
    return d;
}

/* Whether `url` is http(s)://authority[/path] without user information,
 * query or fragment; gives the lengths of the scheme and the authority. */
static bool url_shape(const char *url, size_t *out_scheme_len, size_t *out_auth_len)
{
    const char *p = strstr(url, "://");
    const char *auth;

    if (!p)
        return false;
    *out_scheme_len = (size_t)(p - url);
    if (!((*out_scheme_len == 5 && strncasecmp(url, "https", 5) == 0) ||
          (*out_scheme_len == 4 && strncasecmp(url, "http", 4) == 0)))
        return false;
    auth = p + 3;
    *out_auth_len = strcspn(auth, "/?#");
    return *out_auth_len > 0 && !memchr(auth, '@', *out_auth_len) && !strpbrk(auth, " \t\r\n?#");
}

/* Splits a configured endpoint URL into origin, Host and base path. */
static int parse_url(struct ibs_aws_endpoint *out, const char *url, const char *source)
{
    struct ibs_buf origin = IBS_BUF_INIT;
    size_t scheme_len, auth_len, path_len;
    const char *auth, *path;
    int rc = 0;

    if (!url_shape(url, &scheme_len, &auth_len))
        return ibs_error_set(
            IBS_EINVALID, "%s: invalid endpoint URL '%s' (expected http(s)://host[:port][/path])",
            source, url);
    auth = url + scheme_len + 3;
    path = auth + auth_len;
    path_len = strlen(path);
    while (path_len > 0 && path[path_len - 1] == '/')
        path_len--;
    if (!(out->host = dup_lower(auth, auth_len)) || !(out->base_path = strndup(path, path_len))) {
        rc = ibs_error_oom();
        goto done;
    }
    for (size_t i = 0; i < scheme_len; i++)
        ibs_buf_putc(&origin, (char)tolower((unsigned char)url[i]));
    ibs_buf_printf(&origin, "://%s", out->host);
    if (!(out->origin = ibs_buf_detach(&origin))) {
        rc = IBS_ENOMEM;
        goto done;
    }
    out->source = source;
done:
    ibs_buf_release(&origin);
    return rc;
}

void ibs_aws_endpoint_release(struct ibs_aws_endpoint *e)
{
    if (!e)
        return;
    free(e->origin);
    free(e->host);
    free(e->base_path);
    free(e->region);
    memset(e, 0, sizeof(*e));
}

int ibs_aws_endpoint_resolve(struct ibs_aws_endpoint *out, const struct ibs_aws_config *cfg)
{
    const struct partition *part;
    const char *region, *url = NULL, *source = NULL, *ignore;
    struct ibs_buf host = IBS_BUF_INIT, origin = IBS_BUF_INIT;
    bool fips, dualstack;
    size_t rlen;
    int rc;

    memset(out, 0, sizeof(*out));
    region = cfg->region && *cfg->region ? cfg->region : env(cfg, "AWS_REGION");
    if (!region)
        region = env(cfg, "AWS_DEFAULT_REGION");
    if (!region)
        return ibs_error_set(IBS_EINVALID,
                             "no AWS region configured: use --region, or set AWS_REGION or "
                             "AWS_DEFAULT_REGION (or the region of the AWS profile)");
    if ((rc = flag(&fips, cfg, cfg->use_fips, "AWS_USE_FIPS_ENDPOINT")) ||
        (rc = flag(&dualstack, cfg, cfg->use_dualstack, "AWS_USE_DUALSTACK_ENDPOINT")))
        return rc;

    /* Legacy pseudo-regions select FIPS (the SDKs still accept them). */
    rlen = strlen(region);
    if (strncmp(region, "fips-", 5) == 0) {
        region += 5;
        rlen -= 5;
        fips = true;
    } else if (rlen > 5 && strcmp(region + rlen - 5, "-fips") == 0) {
        rlen -= 5;
        fips = true;
    }
    if (!(out->region = strndup(region, rlen)))
        return ibs_error_oom();
    if (!valid_region(out->region))
        return ibs_error_set(IBS_EINVALID, "invalid AWS region '%s'", out->region);

    if (cfg->endpoint_url && *cfg->endpoint_url) {
        url = cfg->endpoint_url;
        source = "--endpoint-url";
    } else {
        ignore = env(cfg, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
        if (!ignore || strcasecmp(ignore, "true") != 0) {
            if ((url = env(cfg, "AWS_ENDPOINT_URL_IMAGEBUILDER")))
                source = "AWS_ENDPOINT_URL_IMAGEBUILDER";
            else if ((url = env(cfg, "AWS_ENDPOINT_URL")))
                source = "AWS_ENDPOINT_URL";
        }
    }
    if (url) {
        /* The rule set refuses both with a custom endpoint. */
        if (fips)
            return ibs_error_set(IBS_EINVALID,
                                 "FIPS endpoints cannot be combined with an endpoint URL (%s)",
                                 source);
        if (dualstack)
            return ibs_error_set(
                IBS_EINVALID, "dual-stack endpoints cannot be combined with an endpoint URL (%s)",
                source);
        return parse_url(out, url, source);
    }

    part = partition_of(out->region);
    if (dualstack && !part->dualstack_suffix)
        return ibs_error_set(IBS_EINVALID,
                             "%s is enabled but partition %s (region %s) does not support "
                             "dual-stack",
                             fips ? "FIPS and dual-stack" : "dual-stack", part->name, out->region);
    if (fips && dualstack)
        ibs_buf_printf(&host, "imagebuilder-fips.%s.%s", out->region, part->dualstack_suffix);
    else if (fips && strcmp(part->name, "aws-us-gov") == 0)
        /* GovCloud's regular endpoints are the FIPS ones. */
        ibs_buf_printf(&host, "imagebuilder.%s.amazonaws.com", out->region);
    else if (fips)
        ibs_buf_printf(&host, "imagebuilder-fips.%s.%s", out->region, part->dns_suffix);
    else if (dualstack)
        ibs_buf_printf(&host, "imagebuilder.%s.%s", out->region, part->dualstack_suffix);
    else
        ibs_buf_printf(&host, "imagebuilder.%s.%s", out->region, part->dns_suffix);
    if ((rc = ibs_buf_oom(&host)))
        goto done;
    for (size_t i = 0; i < host.size; i++)
        host.ptr[i] = (char)tolower((unsigned char)host.ptr[i]);
    out->source = "regional";
    if (!(out->base_path = strdup(""))) {
        rc = ibs_error_oom();
        goto done;
    }
    ibs_buf_printf(&origin, "https://%s", host.ptr);
    if (!(out->origin = ibs_buf_detach(&origin)) || !(out->host = ibs_buf_detach(&host)))
        rc = IBS_ENOMEM;
done:
    ibs_buf_release(&host);
    ibs_buf_release(&origin);
    return rc;
}
