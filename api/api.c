/*
 * Lookups over the generated API tables (model_gen.c), the PCRE2 pattern
 * cache, and the validator of ibs_value trees against API shapes.
 *
 * Operations, shapes and errors are sorted by name in the tables, so lookups
 * are binary searches. Compiled patterns live in a small hash table guarded by
 * a mutex; entries are never freed, so a compiled pattern can be used after
 * the lock is released (pcre2_code is read-only while matching, and each
 * match gets its own match data).
 *
 * The validator walks the value along the shape and records every problem
 * as a diagnostic instead of stopping at the first one. A null value for a
 * structure member counts as absent, as a JSON null does for the service.
 */
#include "api/api.h"

#include "api/model_gen.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/text.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lookups ---- */

const struct ibs_api_operation *ibs_api_operations(size_t *out_count)
{
    if (out_count)
        *out_count = ibs_api_gen_noperations;
    return ibs_api_gen_operations;
}

static int compare_operation(const void *key, const void *item)
{
    return strcmp(key, ((const struct ibs_api_operation *)item)->name);
}

const struct ibs_api_operation *ibs_api_operation_find(const char *name)
{
    if (!name)
        return NULL;
    return bsearch(name, ibs_api_gen_operations, ibs_api_gen_noperations,
                   sizeof(ibs_api_gen_operations[0]), compare_operation);
}

/*
 * Matches `path` against the URI template `uri`; a {label} matches one
 * non-empty path segment, except at the end of the template where it takes
 * the rest of the path: the path arrives percent-decoded, and the ARN in
 * /tags/{resourceArn} (".../image-recipe/name/1.0.0") has '/' characters that
 * are then indistinguishable from separators. The generator guarantees at
 * most one label and no query string in a template.
 */
static bool uri_match(const char *uri, const char *path, const char **out_label, size_t *out_len)
{
    const char *open = strchr(uri, '{');
    const char *close, *seg, *suffix;
    size_t prefix, len;

    *out_label = NULL;
    *out_len = 0;
    if (!open)
        return strcmp(uri, path) == 0;
    prefix = (size_t)(open - uri);
    close = strchr(open, '}');
    if (!close || strncmp(uri, path, prefix) != 0)
        return false;
    seg = path + prefix;
    suffix = close + 1;
    if (*suffix == '\0') {
        len = strlen(seg);
    } else {
        len = strcspn(seg, "/");
        if (strcmp(seg + len, suffix) != 0)
            return false;
    }
    if (len == 0)
        return false;
    *out_label = seg;
    *out_len = len;
    return true;
}

const struct ibs_api_operation *ibs_api_operation_route(char **out_label, const char *method,
                                                        const char *path)
{
    const struct ibs_api_operation *found = NULL;
    const char *label = NULL;
    size_t len = 0;

    if (out_label)
        *out_label = NULL;
    if (!method || !path)
        return NULL;
    for (size_t i = 0; i < ibs_api_gen_noperations && !found; i++) {
        const struct ibs_api_operation *op = &ibs_api_gen_operations[i];
        if (strcmp(op->method, method) == 0 && uri_match(op->uri, path, &label, &len))
            found = op;
    }
    if (found && label && out_label) {
        *out_label = strndup(label, len);
        if (!*out_label) {
            ibs_error_oom();
            found = NULL;
        }
    }
    return found;
}

static int compare_shape(const void *key, const void *item)
{
    return strcmp(key, (*(const struct ibs_api_shape *const *)item)->name);
}

const struct ibs_api_shape *ibs_api_shape_find(const char *name)
{
    const struct ibs_api_shape *const *found;

    if (!name)
        return NULL;
    found = bsearch(name, ibs_api_gen_shapes, ibs_api_gen_nshapes, sizeof(ibs_api_gen_shapes[0]),
                    compare_shape);
    return found ? *found : NULL;
}

const struct ibs_api_shape *const *ibs_api_shapes(size_t *out_count)
{
    if (out_count)
        *out_count = ibs_api_gen_nshapes;
    return ibs_api_gen_shapes;
}

const struct ibs_api_member *ibs_api_member_find(const struct ibs_api_shape *shape,
                                                 const char *name)
{
    if (!shape || !name)
        return NULL;
    for (size_t i = 0; i < shape->nmembers; i++) {
        if (strcmp(shape->members[i].name, name) == 0)
            return &shape->members[i];
    }
    return NULL;
}

static int compare_error(const void *key, const void *item)
{
    return strcmp(key, ((const struct ibs_api_error *)item)->code);
}

int ibs_api_error_status(const char *code)
{
    const struct ibs_api_error *found;

    if (!code)
        return 400;
    found = bsearch(code, ibs_api_gen_errors, ibs_api_gen_nerrors, sizeof(ibs_api_gen_errors[0]),
                    compare_error);
    return found ? found->status : 400;
}

/* ---- pattern cache ---- */

#define IBS_API_PATTERN_BUCKETS 128

struct pattern_entry {
    struct pattern_entry *next;
    pcre2_code *code; /* NULL when the pattern does not compile */
    int error;        /* PCRE2 error code when code is NULL */
    PCRE2_SIZE offset;
    char pattern[];
};

static struct pattern_entry *pattern_buckets[IBS_API_PATTERN_BUCKETS];
static pthread_mutex_t pattern_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t pattern_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % IBS_API_PATTERN_BUCKETS;
}

/*
 * The cache entry of `pattern`, compiled on first use (under the lock, so
 * that each pattern is compiled once). Patterns are compiled as UTF-8 (the
 * service counts characters, not bytes) and JIT-compiled when PCRE2 has a
 * JIT for this machine; without one pcre2_match() interprets.
 */
static int pattern_get(struct pattern_entry **out, const char *pattern)
{
    size_t bucket = pattern_hash(pattern);
    size_t len = strlen(pattern);
    struct pattern_entry *e;
    int err = 0;

    pthread_mutex_lock(&pattern_lock);
    for (e = pattern_buckets[bucket]; e; e = e->next) {
        if (strcmp(e->pattern, pattern) == 0)
            goto done;
    }
    e = malloc(sizeof(*e) + len + 1);
    if (!e) {
        err = ibs_error_oom();
        goto done;
    }
    memcpy(e->pattern, pattern, len + 1);
    e->error = 0;
    e->offset = 0;
    e->code = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF, &e->error, &e->offset, NULL);
    if (e->code)
        pcre2_jit_compile(e->code, PCRE2_JIT_COMPLETE);
    e->next = pattern_buckets[bucket];
    pattern_buckets[bucket] = e;
done:
    pthread_mutex_unlock(&pattern_lock);
    *out = e;
    return err;
}

int ibs_api_pattern_compile(const char *pattern)
{
    struct pattern_entry *e;
    PCRE2_UCHAR msg[256];
    int rc;

    if (!pattern)
        return ibs_error_set(IBS_EINVALID, "no pattern");
    rc = pattern_get(&e, pattern);
    if (rc)
        return rc;
    if (e->code)
        return 0;
    if (pcre2_get_error_message(e->error, msg, sizeof(msg)) < 0)
        snprintf((char *)msg, sizeof(msg), "error %d", e->error);
    return ibs_error_set(IBS_EINVALID, "pattern %s: %s at offset %zu", pattern, (char *)msg,
                         (size_t)e->offset);
}

bool ibs_api_pattern_match(const char *pattern, const char *s, size_t len)
{
    struct pattern_entry *e;
    pcre2_match_data *md;
    int rc;

    if (!pattern || pattern_get(&e, pattern) || !e->code)
        return false;
    md = pcre2_match_data_create_from_pattern(e->code, NULL);
    if (!md)
        return false;
    rc = pcre2_match(e->code, (PCRE2_SPTR)(s ? s : ""), s ? len : 0, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* ---- validation ---- */

struct validator {
    struct ibs_diags *diags;
    const struct ibs_api_validate_opts *opts;
    struct ibs_buf path; /* member path of the node being checked */
    struct ibs_buf text; /* scratch for quoted values */
    int rc;              /* IBS_ENOMEM once an allocation failed */
};

static void report(struct validator *vd, const struct ibs_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct validator *vd, const struct ibs_loc *loc, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (vd->rc)
        return;
    if (ibs_buf_oom(&vd->path) || ibs_buf_oom(&vd->text)) {
        vd->rc = IBS_ENOMEM;
        return;
    }
    va_start(ap, fmt);
    rc = ibs_diag_vadd(vd->diags, IBS_SEV_ERROR, loc, vd->path.ptr, fmt, ap);
    va_end(ap);
    if (rc)
        vd->rc = rc;
}

/* Shows a string value in a message: quoted, escaped, and cut after 64
 * characters so that a 16000-character document does not flood the output. */
static const char *quoted(struct validator *vd, const char *s, size_t len)
{
    size_t chars = 0;

    ibs_buf_clear(&vd->text);
    ibs_buf_putc(&vd->text, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80 && ++chars > 64) {
            ibs_buf_puts(&vd->text, "...");
            break;
        }
        if (c == '"' || c == '\\')
            ibs_buf_printf(&vd->text, "\\%c", c);
        else if (c == '\n')
            ibs_buf_puts(&vd->text, "\\n");
        else if (c == '\t')
            ibs_buf_puts(&vd->text, "\\t");
        else if (c < 0x20 || c == 0x7F)
            ibs_buf_printf(&vd->text, "\\x%02x", c);
        else
            ibs_buf_putc(&vd->text, (char)c);
    }
    ibs_buf_putc(&vd->text, '"');
    return vd->text.ptr;
}

static const char *expected_name(enum ibs_api_type type)
{
    switch (type) {
    case IBS_API_STRING:
        return "a string";
    case IBS_API_INTEGER:
    case IBS_API_LONG:
        return "an integer";
    case IBS_API_DOUBLE:
        return "a number";
    case IBS_API_BOOLEAN:
        return "a boolean";
    case IBS_API_TIMESTAMP:
        return "a timestamp";
    case IBS_API_LIST:
        return "a list";
    case IBS_API_MAP:
    case IBS_API_STRUCTURE:
        return "a map";
    }
    return "a value";
}

static const char *value_name(enum ibs_value_type type)
{
    switch (type) {
    case IBS_VALUE_NULL:
        return "null";
    case IBS_VALUE_BOOL:
        return "a boolean";
    case IBS_VALUE_INT:
        return "an integer";
    case IBS_VALUE_FLOAT:
        return "a number";
    case IBS_VALUE_STRING:
        return "a string";
    case IBS_VALUE_LIST:
        return "a list";
    case IBS_VALUE_MAP:
        return "a map";
    }
    return "a value";
}

static void type_error(struct validator *vd, const struct ibs_value *v,
                       const struct ibs_api_shape *shape)
{
    report(vd, &v->loc, "expected %s, got %s", expected_name(shape->type), value_name(v->type));
}

/* Characters (code points) in UTF-8 text: the service's lengths count
 * characters. Invalid sequences count one per byte that is not a
 * continuation byte. */
static size_t utf8_length(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    }
    return n;
}

static void check_string_text(struct validator *vd, const struct ibs_loc *loc, const char *s,
                              size_t len, const struct ibs_api_shape *shape)
{
    /* Characters lie between len / 4 and len: count them only when a bound is that close. */
    bool need_count = (shape->min != IBS_API_NONE && (len + 3) / 4 < (uint64_t)shape->min) ||
                      (shape->max != IBS_API_NONE && len > (uint64_t)shape->max);
    size_t chars = need_count ? utf8_length(s, len) : len;

    if (shape->enums) {
        bool ok = false;
        for (const char *const *e = shape->enums; *e && !ok; e++)
            ok = strlen(*e) == len && memcmp(*e, s, len) == 0;
        if (!ok) {
            struct ibs_buf list = IBS_BUF_INIT;
            for (const char *const *e = shape->enums; *e; e++)
                ibs_buf_printf(&list, "%s%s", e == shape->enums ? "" : ", ", *e);
            if (ibs_buf_oom(&list))
                vd->rc = IBS_ENOMEM;
            report(vd, loc, "%s is not a valid value; expected one of: %s", quoted(vd, s, len),
                   list.ptr);
            ibs_buf_release(&list);
        }
    }
    if (shape->min != IBS_API_NONE && chars < (uint64_t)shape->min)
        report(vd, loc, "length %zu is less than the minimum length %" PRId64, chars, shape->min);
    if (shape->max != IBS_API_NONE && chars > (uint64_t)shape->max)
        report(vd, loc, "length %zu is more than the maximum length %" PRId64, chars, shape->max);
    if (shape->pattern && !ibs_api_pattern_match(shape->pattern, s, len))
        report(vd, loc, "%s does not match the pattern %s", quoted(vd, s, len), shape->pattern);
}

static void check_string(struct validator *vd, const struct ibs_value *v,
                         const struct ibs_api_shape *shape)
{
    bool coerce =
        (vd->opts->flags & IBS_API_VALIDATE_COERCE_SCALARS) && !v->quoted &&
        (v->type == IBS_VALUE_INT || v->type == IBS_VALUE_FLOAT || v->type == IBS_VALUE_BOOL);

    if (v->type != IBS_VALUE_STRING && !coerce) {
        type_error(vd, v, shape);
        return;
    }
    check_string_text(vd, &v->loc, v->str ? v->str : "", v->str ? v->len : 0, shape);
}

static void check_integer(struct validator *vd, const struct ibs_value *v,
                          const struct ibs_api_shape *shape)
{
    int64_t lo = shape->min, hi = shape->max;
    bool has_lo = lo != IBS_API_NONE, has_hi = hi != IBS_API_NONE;

    if (v->type != IBS_VALUE_INT) {
        type_error(vd, v, shape);
        return;
    }
    /* An Integer is a 32-bit int on the wire (Java Integer in the service). */
    if (shape->type == IBS_API_INTEGER) {
        if (!has_lo || lo < INT32_MIN)
            lo = INT32_MIN;
        if (!has_hi || hi > INT32_MAX)
            hi = INT32_MAX;
        has_lo = has_hi = true;
    }
    if (has_lo && v->num.i < lo)
        report(vd, &v->loc, "value %" PRId64 " is less than the minimum %" PRId64, v->num.i, lo);
    if (has_hi && v->num.i > hi)
        report(vd, &v->loc, "value %" PRId64 " is more than the maximum %" PRId64, v->num.i, hi);
}

static void check_number(struct validator *vd, const struct ibs_value *v,
                         const struct ibs_api_shape *shape)
{
    double d;

    if (v->type == IBS_VALUE_INT) {
        d = (double)v->num.i;
    } else if (v->type == IBS_VALUE_FLOAT) {
        d = v->num.d;
    } else {
        type_error(vd, v, shape);
        return;
    }
    if (!isfinite(d)) {
        report(vd, &v->loc, "value %s is not a finite number", v->str);
        return;
    }
    if (shape->min != IBS_API_NONE && d < (double)shape->min)
        report(vd, &v->loc, "value %s is less than the minimum %" PRId64, v->str, shape->min);
    if (shape->max != IBS_API_NONE && d > (double)shape->max)
        report(vd, &v->loc, "value %s is more than the maximum %" PRId64, v->str, shape->max);
}

/* Parses exactly `n` digits at *p. */
static bool digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (*p >= end || **p < '0' || **p > '9')
            return false;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return true;
}

/*
 * ISO-8601 as the service writes and accepts it: a date (2024-05-27), or a
 * date and time (2024-05-27T10:00, seconds and fraction optional) with an
 * optional zone (Z, +02, +02:00, +0200).
 */
static bool is_iso8601(const char *s, size_t len)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s, *end = s + len;
    int y, mo, d, h, mi, sec, zh, zm;

    if (!digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !digits(&p, end, 2, &mo) ||
        p >= end || *p++ != '-' || !digits(&p, end, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return false;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    if (p == end)
        return true;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return false;
    p++;
    if (!digits(&p, end, 2, &h) || p >= end || *p++ != ':' || !digits(&p, end, 2, &mi))
        return false;
    if (h > 23 || mi > 59)
        return false;
    if (p < end && *p == ':') {
        p++;
        if (!digits(&p, end, 2, &sec) || sec > 60)
            return false;
        if (p < end && *p == '.') {
            const char *frac = ++p;
            while (p < end && *p >= '0' && *p <= '9')
                p++;
            if (p == frac)
                return false;
        }
    }
    if (p == end)
        return true;
    if (*p == 'Z' || *p == 'z')
        return p + 1 == end;
    if (*p != '+' && *p != '-')
        return false;
    p++;
    if (!digits(&p, end, 2, &zh) || zh > 23)
        return false;
    if (p == end)
        return true;
    if (*p == ':')
        p++;
    return digits(&p, end, 2, &zm) && zm <= 59 && p == end;
}

static void check_timestamp(struct validator *vd, const struct ibs_value *v,
                            const struct ibs_api_shape *shape)
{
    if (v->type == IBS_VALUE_INT || v->type == IBS_VALUE_FLOAT)
        return;
    if (v->type != IBS_VALUE_STRING) {
        type_error(vd, v, shape);
        return;
    }
    if (!is_iso8601(v->str, v->len))
        report(vd, &v->loc, "%s is not an ISO-8601 timestamp", quoted(vd, v->str, v->len));
}

static void check_count(struct validator *vd, const struct ibs_value *v,
                        const struct ibs_api_shape *shape)
{
    const char *noun = v->count == 1 ? "item" : "items";

    if (shape->min != IBS_API_NONE && v->count < (uint64_t)shape->min)
        report(vd, &v->loc, "has %zu %s; the minimum is %" PRId64, v->count, noun, shape->min);
    if (shape->max != IBS_API_NONE && v->count > (uint64_t)shape->max)
        report(vd, &v->loc, "has %zu %s; the maximum is %" PRId64, v->count, noun, shape->max);
}

static void check_value(struct validator *vd, const struct ibs_value *v,
                        const struct ibs_api_shape *shape, bool top);

static void check_list(struct validator *vd, const struct ibs_value *v,
                       const struct ibs_api_shape *shape)
{
    size_t mark = vd->path.size;

    if (v->type != IBS_VALUE_LIST) {
        type_error(vd, v, shape);
        return;
    }
    check_count(vd, v, shape);
    for (size_t i = 0; i < v->count && !vd->rc; i++) {
        ibs_buf_printf(&vd->path, "[%zu]", i);
        check_value(vd, v->u.items[i], shape->item, false);
        ibs_buf_truncate(&vd->path, mark);
    }
}

static void push_member(struct validator *vd, const char *name)
{
    if (vd->path.size)
        ibs_buf_putc(&vd->path, '.');
    ibs_buf_puts(&vd->path, name);
}

static const struct ibs_loc *key_loc(const struct ibs_member *m)
{
    return m->key_loc.line ? &m->key_loc : &m->value->loc;
}

static void check_map(struct validator *vd, const struct ibs_value *v,
                      const struct ibs_api_shape *shape)
{
    size_t mark = vd->path.size;

    if (v->type != IBS_VALUE_MAP) {
        type_error(vd, v, shape);
        return;
    }
    check_count(vd, v, shape);
    for (size_t i = 0; i < v->count && !vd->rc; i++) {
        const struct ibs_member *m = &v->u.members[i];
        push_member(vd, m->key);
        if (shape->key)
            check_string_text(vd, key_loc(m), m->key, strlen(m->key), shape->key);
        check_value(vd, m->value, shape->item, false);
        ibs_buf_truncate(&vd->path, mark);
    }
}

static bool is_skipped(const struct validator *vd, const char *name, bool top)
{
    if (!top || !vd->opts->skip_members)
        return false;
    for (const char *const *s = vd->opts->skip_members; *s; s++) {
        if (strcmp(*s, name) == 0)
            return true;
    }
    return false;
}

static void unknown_member(struct validator *vd, const struct ibs_member *m,
                           const struct ibs_api_shape *shape, bool top)
{
    const char **names = NULL;
    const char *suggestion = NULL;
    size_t n = 0;

    if (shape->nmembers) {
        names = malloc(shape->nmembers * sizeof(*names));
        if (!names) {
            vd->rc = ibs_error_oom();
            return;
        }
        for (size_t i = 0; i < shape->nmembers; i++) {
            if (!is_skipped(vd, shape->members[i].name, top))
                names[n++] = shape->members[i].name;
        }
        suggestion = ibs_text_suggest(m->key, names, n);
    }
    if (suggestion)
        report(vd, key_loc(m), "unknown member %s; did you mean \"%s\"?",
               quoted(vd, m->key, strlen(m->key)), suggestion);
    else
        report(vd, key_loc(m), "unknown member %s", quoted(vd, m->key, strlen(m->key)));
    free(names);
}

static void check_structure(struct validator *vd, const struct ibs_value *v,
                            const struct ibs_api_shape *shape, bool top)
{
    size_t mark = vd->path.size;

    if (v->type != IBS_VALUE_MAP) {
        type_error(vd, v, shape);
        return;
    }
    for (size_t i = 0; i < v->count && !vd->rc; i++) {
        const struct ibs_member *m = &v->u.members[i];
        const struct ibs_api_member *am =
            is_skipped(vd, m->key, top) ? NULL : ibs_api_member_find(shape, m->key);
        push_member(vd, m->key);
        if (!am)
            unknown_member(vd, m, shape, top);
        else if (m->value->type != IBS_VALUE_NULL)
            check_value(vd, m->value, am->shape, false);
        ibs_buf_truncate(&vd->path, mark);
    }
    if (vd->opts->flags & IBS_API_VALIDATE_NO_REQUIRED)
        return;
    for (size_t i = 0; i < shape->nmembers && !vd->rc; i++) {
        const struct ibs_api_member *am = &shape->members[i];
        const struct ibs_value *present;
        if (!am->required || is_skipped(vd, am->name, top))
            continue;
        present = ibs_value_map_get(v, am->name);
        if (!present || present->type == IBS_VALUE_NULL)
            report(vd, &v->loc, "missing required member \"%s\"", am->name);
    }
}

static void check_value(struct validator *vd, const struct ibs_value *v,
                        const struct ibs_api_shape *shape, bool top)
{
    if (vd->rc)
        return;
    /* The caller claims values it resolves itself ({ref: NAME} where the API
     * wants an ARN) before they are type-checked. */
    if (shape->type == IBS_API_STRING && vd->opts->accept &&
        vd->opts->accept(vd->opts->ctx, v, shape, vd->path.ptr))
        return;
    switch (shape->type) {
    case IBS_API_STRING:
        check_string(vd, v, shape);
        break;
    case IBS_API_INTEGER:
    case IBS_API_LONG:
        check_integer(vd, v, shape);
        break;
    case IBS_API_DOUBLE:
        check_number(vd, v, shape);
        break;
    case IBS_API_BOOLEAN:
        if (v->type != IBS_VALUE_BOOL)
            type_error(vd, v, shape);
        break;
    case IBS_API_TIMESTAMP:
        check_timestamp(vd, v, shape);
        break;
    case IBS_API_LIST:
        check_list(vd, v, shape);
        break;
    case IBS_API_MAP:
        check_map(vd, v, shape);
        break;
    case IBS_API_STRUCTURE:
        check_structure(vd, v, shape, top);
        break;
    }
}

int ibs_api_validate(struct ibs_diags *diags, const struct ibs_value *v,
                     const struct ibs_api_shape *shape, const char *path,
                     const struct ibs_api_validate_opts *opts)
{
    static const struct ibs_api_validate_opts defaults = {0};
    struct validator vd = {diags, opts ? opts : &defaults, IBS_BUF_INIT, IBS_BUF_INIT, 0};
    size_t before;
    int rc;

    if (!diags || !v || !shape)
        return ibs_error_set(IBS_EINVALID, "ibs_api_validate: no %s",
                             !diags ? "diagnostics"
                             : !v   ? "value"
                                    : "shape");
    before = diags->errors;
    if (path)
        ibs_buf_puts(&vd.path, path);
    check_value(&vd, v, shape, true);
    if (!vd.rc && (ibs_buf_oom(&vd.path) || ibs_buf_oom(&vd.text)))
        vd.rc = IBS_ENOMEM;
    if (vd.rc)
        rc = vd.rc == IBS_ENOMEM ? ibs_error_oom() : vd.rc;
    else if (diags->errors > before)
        rc = ibs_error_set(IBS_EINVALID, "%zu problems with %s", diags->errors - before,
                           path && *path ? path : shape->name);
    else
        rc = 0;
    ibs_buf_release(&vd.path);
    ibs_buf_release(&vd.text);
    return rc;
}
