/*
 * Small pieces the emulator engine is built from: the kind table, ARNs as
 * the service forms them, semantic versions with "x" wildcards, timestamps,
 * hashes and random ids, and the projection of stored documents onto the
 * API's output shapes, which is what keeps every response limited to
 * exactly the members the API reference lists.
 *
 * Cryptography: only providers/aws may use OpenSSL, so SHA-256 and
 * HMAC-SHA256 come from its SigV4 module (providers/aws/sigv4.h), which
 * this library already links through ibs_providers for request
 * verification. That adds no dependency, whereas the content digest of
 * state/digest.h would pull the reconciler's state layer and libgit2 into a
 * provider; it also keeps every value the engine derives from a hash the
 * same as before: request hashes stored with client tokens in existing data
 * directories, AMI ids and pagination tokens. Random bytes come from the
 * kernel (getrandom(2), /dev/urandom where the call is missing).
 */
/* getrandom() is a Linux extension outside _POSIX_C_SOURCE. */
#define _DEFAULT_SOURCE

#include "providers/emulator/internal.h"

#include "providers/aws/sigv4.h"
#include "util/error.h"
#include "util/json.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Resource kinds. `arn_member` is the member that names one resource in the
 * kind's Get/Delete requests and Create responses; `doc_member` the member
 * of the Get response that holds it. */
static const struct ibs_emulator_kind kinds[IBS_EMU_KIND_COUNT] = {
    {IBS_EMU_COMPONENT, "component", "Component", true, true, "componentBuildVersionArn",
     "component"},
    {IBS_EMU_WORKFLOW, "workflow", "Workflow", true, true, "workflowBuildVersionArn", "workflow"},
    {IBS_EMU_IMAGE_RECIPE, "image-recipe", "ImageRecipe", true, false, "imageRecipeArn",
     "imageRecipe"},
    {IBS_EMU_CONTAINER_RECIPE, "container-recipe", "ContainerRecipe", true, false,
     "containerRecipeArn", "containerRecipe"},
    {IBS_EMU_INFRA, "infrastructure-configuration", "InfrastructureConfiguration", false, false,
     "infrastructureConfigurationArn", "infrastructureConfiguration"},
    {IBS_EMU_DIST, "distribution-configuration", "DistributionConfiguration", false, false,
     "distributionConfigurationArn", "distributionConfiguration"},
    {IBS_EMU_PIPELINE, "image-pipeline", "ImagePipeline", false, false, "imagePipelineArn",
     "imagePipeline"},
    {IBS_EMU_LIFECYCLE, "lifecycle-policy", "LifecyclePolicy", false, false, "lifecyclePolicyArn",
     "lifecyclePolicy"},
    {IBS_EMU_IMAGE, "image", "Image", true, true, "imageBuildVersionArn", "image"},
};

const struct ibs_emulator_kind *ibs_emulator_kind_get(enum ibs_emulator_kind_id id)
{
    if ((int)id < 0 || id >= IBS_EMU_KIND_COUNT)
        return NULL;
    return &kinds[id];
}

const struct ibs_emulator_kind *ibs_emulator_kind_by_type(const char *type, size_t len)
{
    for (size_t i = 0; i < IBS_EMU_KIND_COUNT; i++)
        if (strlen(kinds[i].type) == len && memcmp(kinds[i].type, type, len) == 0)
            return &kinds[i];
    return NULL;
}

void ibs_emulator_record_free(struct ibs_emulator_record *rec)
{
    if (!rec)
        return;
    free(rec->arn);
    free(rec->name);
    free(rec->path);
    free(rec->version);
    free(rec->owner);
    free(rec->parent);
    ibs_value_free(rec->doc);
    free(rec);
}

void ibs_emulator_record_free_item(void *rec)
{
    ibs_emulator_record_free(rec);
}

char *ibs_emulator_arn_name(const char *s)
{
    char *p = strdup(s);
    if (!p) {
        ibs_error_oom();
        return NULL;
    }
    for (char *c = p; *c; c++)
        *c = *c == ' ' ? '-' : (char)tolower((unsigned char)*c);
    return p;
}

void ibs_emulator_iso8601(char *buf, size_t size, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm);
 * timegm() is not POSIX. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool ibs_emulator_parse_iso8601(int64_t *out, const char *s)
{
    int y, mo, d, h, mi, sec, msec = 0, n = 0;

    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return false;
    s += n;
    if (*s == '.') {
        int digits = 0;
        for (s++; isdigit((unsigned char)*s); s++, digits++)
            if (digits < 3)
                msec = msec * 10 + (*s - '0');
        if (digits == 0)
            return false;
        for (; digits < 3; digits++)
            msec *= 10;
    }
    if (strcmp(s, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return false;
    *out = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + msec;
    return true;
}

/* Fills `out` from /dev/urandom, for kernels without getrandom(2). */
static int urandom(unsigned char *out, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    int rc = 0;

    if (fd < 0)
        return ibs_error_set(IBS_EIO, "no random bytes available: /dev/urandom: %s",
                             strerror(errno));
    while (got < len) {
        ssize_t n = read(fd, out + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = ibs_error_set(IBS_EIO, "no random bytes available: /dev/urandom: %s",
                               n < 0 ? strerror(errno) : "end of file");
            goto done;
        }
        got += (size_t)n;
    }
done:
    close(fd);
    return rc;
}

int ibs_emulator_random(unsigned char *out, size_t len)
{
    size_t got = 0;

    while (got < len) {
        /* Blocks only until the kernel's pool is first initialised (early
         * boot); requests over 256 bytes may return short, hence the loop. */
        ssize_t n = getrandom(out + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ENOSYS)
            return urandom(out + got, len - got);
        if (n < 0)
            return ibs_error_set(IBS_EIO, "no random bytes available: getrandom: %s",
                                 strerror(errno));
        got += (size_t)n;
    }
    return 0;
}

int ibs_emulator_uuid(char *buf, size_t size)
{
    unsigned char b[16];
    int rc = ibs_emulator_random(b, sizeof(b));

    if (rc)
        return rc;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(buf, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

int ibs_emulator_sha256_hex(char *hex, const void *data, size_t len)
{
    return ibs_sigv4_sha256_hex(hex, data, len);
}

int ibs_emulator_hmac(unsigned char *mac, const unsigned char *key, size_t keylen, const void *data,
                      size_t len)
{
    return ibs_sigv4_hmac_sha256(mac, key, keylen, data, len);
}

bool ibs_emulator_mem_equal(const void *a, const void *b, size_t len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;

    /* No early exit: the time taken does not tell how many leading bytes of
     * a forged MAC were right. */
    for (size_t i = 0; i < len; i++)
        diff |= (unsigned char)(x[i] ^ y[i]);
    return diff == 0;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int ibs_emulator_b64url_encode(struct ibs_buf *out, const unsigned char *data, size_t len)
{
    for (size_t i = 0; i < len; i += 3) {
        uint32_t n = (uint32_t)data[i] << 16;
        size_t rem = len - i;
        if (rem > 1)
            n |= (uint32_t)data[i + 1] << 8;
        if (rem > 2)
            n |= data[i + 2];
        ibs_buf_putc(out, b64url[(n >> 18) & 63]);
        ibs_buf_putc(out, b64url[(n >> 12) & 63]);
        if (rem > 1)
            ibs_buf_putc(out, b64url[(n >> 6) & 63]);
        if (rem > 2)
            ibs_buf_putc(out, b64url[n & 63]);
    }
    return ibs_buf_oom(out);
}

long ibs_emulator_b64url_decode(unsigned char *out, size_t cap, const char *s)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;

    for (; *s; s++) {
        const char *p = strchr(b64url, *s);
        if (!p)
            return -1;
        acc = (acc << 6) | (uint32_t)(p - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            out[n++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    /* Leftover bits must be zero padding of a canonical encoding, so that
     * every token has exactly one spelling. */
    if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)n;
}

int ibs_emulator_to_json(char **out, const struct ibs_value *v, unsigned flags)
{
    struct ibs_buf buf = IBS_BUF_INIT;
    int rc;

    *out = NULL;
    rc = ibs_json_write(&buf, v, flags);
    if (rc)
        goto done;
    *out = ibs_buf_detach(&buf);
    if (!*out)
        rc = IBS_ENOMEM;
done:
    ibs_buf_release(&buf);
    return rc;
}

int ibs_emulator_request_hash(char *hex, const struct ibs_value *v, const char *const *skip)
{
    struct ibs_value *copy = NULL;
    char *json = NULL;
    int rc;

    rc = ibs_value_clone(&copy, v);
    if (rc)
        goto done;
    for (size_t i = 0; skip && skip[i]; i++)
        ibs_value_map_remove(copy, skip[i]);
    rc = ibs_emulator_to_json(&json, copy, IBS_JSON_SORTED);
    if (rc)
        goto done;
    rc = ibs_emulator_sha256_hex(hex, json, strlen(json));
done:
    free(json);
    ibs_value_free(copy);
    return rc;
}

/* Semantic versions: each node 0..2^30-1 as the reference allows. */
#define SEMVER_NODE_MAX 1073741823

bool ibs_emulator_semver_parse(struct ibs_emulator_semver *out, const char *s, size_t len,
                               bool wildcards)
{
    size_t i = 0;
    bool wild = false;

    for (int node = 0; node < 3; node++) {
        if (node > 0) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
        if (i < len && s[i] == 'x' && wildcards) {
            out->node[node] = -1;
            wild = true;
            i++;
            continue;
        }
        /* After a wildcard every node to the right must be a wildcard too. */
        if (wild || i >= len || !isdigit((unsigned char)s[i]))
            return false;
        int64_t n = 0;
        for (; i < len && isdigit((unsigned char)s[i]); i++) {
            n = n * 10 + (s[i] - '0');
            if (n > SEMVER_NODE_MAX)
                return false;
        }
        out->node[node] = n;
    }
    return i == len;
}

bool ibs_emulator_semver_match(const struct ibs_emulator_semver *pattern,
                               const struct ibs_emulator_semver *v)
{
    for (int i = 0; i < 3; i++)
        if (pattern->node[i] >= 0 && pattern->node[i] != v->node[i])
            return false;
    return true;
}

int ibs_emulator_semver_cmp(const char *a, const char *b)
{
    struct ibs_emulator_semver x, y;

    if (!ibs_emulator_semver_parse(&x, a, strlen(a), false) ||
        !ibs_emulator_semver_parse(&y, b, strlen(b), false))
        return strcmp(a, b) < 0 ? -1 : strcmp(a, b) > 0;
    for (int i = 0; i < 3; i++)
        if (x.node[i] != y.node[i])
            return x.node[i] < y.node[i] ? -1 : 1;
    return 0;
}

/* Splits out->buf in place; false when it is not an Image Builder ARN. */
static bool split_arn(struct ibs_emulator_arn *out)
{
    char *seg[5] = {NULL};
    size_t nseg = 0, path_segs;
    char *p = out->buf, *slash, *end;

    /* arn:<partition>:imagebuilder:<region>:<account>:<type>/<rest> */
    for (int field = 0; field < 5; field++) {
        char *colon = strchr(p, ':');
        if (!colon)
            return false;
        *colon = '\0';
        if (field == 2 && strcmp(p, "imagebuilder") != 0)
            return false;
        if (field == 3)
            out->region = p;
        if (field == 4)
            out->account = p;
        p = colon + 1;
    }
    slash = strchr(p, '/');
    if (!slash)
        return false;
    *slash = '\0';
    out->type = p;
    out->kind = ibs_emulator_kind_by_type(p, strlen(p));
    if (!out->kind || !*out->region || !*out->account)
        return false;
    for (p = slash + 1; p && nseg < 5; nseg++) {
        seg[nseg] = p;
        p = strchr(p, '/');
        if (p)
            *p++ = '\0';
    }
    /* Workflows have their type in the path: workflow/build/<name>/... */
    path_segs = out->kind->id == IBS_EMU_WORKFLOW ? 2 : 1;
    if (p || nseg < path_segs || nseg > path_segs + 2 ||
        (!out->kind->versioned && nseg != path_segs))
        return false;
    for (size_t i = 0; i < nseg; i++)
        if (!*seg[i])
            return false;
    if (path_segs == 2)
        seg[0][strlen(seg[0])] = '/'; /* rejoin "build/name" */
    out->path = seg[0];
    if (nseg > path_segs)
        out->version = seg[path_segs];
    if (nseg > path_segs + 1) {
        if (!isdigit((unsigned char)*seg[path_segs + 1]))
            return false;
        out->build = strtoll(seg[path_segs + 1], &end, 10);
        if (*end || out->build <= 0)
            return false;
    }
    return true;
}

bool ibs_emulator_arn_parse(struct ibs_emulator_arn *out, const char *arn)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(arn, "arn:aws", 7) != 0)
        return false;
    out->buf = strdup(arn);
    if (!out->buf)
        return false;
    if (!split_arn(out)) {
        ibs_emulator_arn_release(out);
        return false;
    }
    return true;
}

void ibs_emulator_arn_release(struct ibs_emulator_arn *arn)
{
    free(arn->buf);
    memset(arn, 0, sizeof(*arn));
}

const struct ibs_api_shape *ibs_emulator_member_shape(const struct ibs_api_shape *shape,
                                                      const char *name)
{
    const struct ibs_api_member *m;

    if (!shape || shape->type != IBS_API_STRUCTURE)
        return NULL;
    m = ibs_api_member_find(shape, name);
    return m ? m->shape : NULL;
}

static struct ibs_value *timestamp_value(const struct ibs_value *v)
{
    int64_t ms;

    if (v->type != IBS_VALUE_STRING || !ibs_emulator_parse_iso8601(&ms, v->str))
        return NULL;
    if (ms % 1000 == 0)
        return ibs_value_new_int(ms / 1000);
    return ibs_value_new_float((double)ms / 1000.0);
}

int ibs_emulator_project(struct ibs_value **out, const struct ibs_value *v,
                         const struct ibs_api_shape *shape)
{
    struct ibs_value *copy = NULL, *child = NULL;
    int rc = 0;

    *out = NULL;
    if (!shape)
        return ibs_value_clone(out, v);
    if (shape->type == IBS_API_TIMESTAMP && (copy = timestamp_value(v)) != NULL) {
        *out = copy;
        return 0;
    }
    if (shape->type == IBS_API_STRUCTURE && v->type == IBS_VALUE_MAP) {
        copy = ibs_value_new_map();
        if (!copy)
            return IBS_ENOMEM;
        for (size_t i = 0; i < v->count; i++) {
            const struct ibs_member *m = &v->u.members[i];
            const struct ibs_api_member *am = ibs_api_member_find(shape, m->key);
            if (!am)
                continue;
            if ((rc = ibs_emulator_project(&child, m->value, am->shape)))
                goto done;
            if ((rc = ibs_value_map_set(copy, m->key, child)))
                goto done;
        }
    } else if ((shape->type == IBS_API_LIST && v->type == IBS_VALUE_LIST) ||
               (shape->type == IBS_API_MAP && v->type == IBS_VALUE_MAP)) {
        copy = ibs_value_new(v->type);
        if (!copy)
            return IBS_ENOMEM;
        for (size_t i = 0; i < v->count; i++) {
            const struct ibs_value *item =
                v->type == IBS_VALUE_LIST ? v->u.items[i] : v->u.members[i].value;
            if ((rc = ibs_emulator_project(&child, item, shape->item)))
                goto done;
            if (v->type == IBS_VALUE_LIST)
                rc = ibs_value_list_append(copy, child);
            else
                rc = ibs_value_map_set(copy, v->u.members[i].key, child);
            if (rc)
                goto done;
        }
    } else {
        return ibs_value_clone(out, v);
    }
    *out = copy;
    copy = NULL;
done:
    ibs_value_free(copy);
    return rc;
}

int ibs_emulator_set_str(struct ibs_value *map, const char *key, const char *s)
{
    struct ibs_value *v = ibs_value_new_string(s);
    if (!v)
        return IBS_ENOMEM;
    return ibs_value_map_set(map, key, v);
}

int ibs_emulator_set_bool(struct ibs_value *map, const char *key, bool b)
{
    struct ibs_value *v = ibs_value_new_bool(b);
    if (!v)
        return IBS_ENOMEM;
    return ibs_value_map_set(map, key, v);
}

int ibs_emulator_set_int(struct ibs_value *map, const char *key, int64_t i)
{
    struct ibs_value *v = ibs_value_new_int(i);
    if (!v)
        return IBS_ENOMEM;
    return ibs_value_map_set(map, key, v);
}
