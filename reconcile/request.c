/*
 * Request building: desired spec -> typed API request with {"$ref"}
 * placeholders -> (at apply time) request with ARNs. See request.h.
 */
#include "reconcile/request.h"

#include "api/api.h"
#include "state/digest.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ibs_request_symbol(char **out, enum ibs_kind kind, const char *name, const char *version)
{
    struct ibs_buf b = IBS_BUF_INIT;

    ibs_buf_printf(&b, "%s/%s", ibs_model_kind_info(kind)->name, name);
    if (version && *version)
        ibs_buf_printf(&b, "@%s", version);
    *out = ibs_buf_detach(&b);
    return *out ? 0 : IBS_ENOMEM;
}

struct build_ctx {
    const struct ibs_resource *res;
    const char *(*version_of)(void *ctx, const struct ibs_resource *target);
    void *ctx;
};

static const struct ibs_ref *find_ref(const struct ibs_resource *res, const struct ibs_value *v)
{
    for (size_t i = 0; i < res->refs.count; i++) {
        const struct ibs_ref *ref = res->refs.items[i];
        if (ref->loc.line == v->loc.line && ref->loc.col == v->loc.col &&
            ref->loc.file == v->loc.file)
            return ref;
    }
    return NULL;
}

static int make_placeholder(struct ibs_value **out, struct build_ctx *bc, const struct ibs_value *v)
{
    const struct ibs_ref *ref = find_ref(bc->res, v);
    const char *version = NULL;
    struct ibs_value *map = NULL, *sym = NULL;
    char *symbol = NULL;
    int rc;

    *out = NULL;
    if (!ref || !ref->target)
        return ibs_error_set(IBS_EINVALID, "unresolved ref at %s:%u:%u",
                             v->loc.file ? v->loc.file : "?", v->loc.line, v->loc.col);
    if (ibs_model_kind_info(ref->target->kind)->versioned) {
        version = bc->version_of(bc->ctx, ref->target);
        if (!version)
            return ibs_error_set(IBS_EINVALID, "no version chosen yet for %s/%s",
                                 ibs_model_kind_info(ref->target->kind)->name, ref->target->name);
    }
    if ((rc = ibs_request_symbol(&symbol, ref->target->kind, ref->target->name, version)))
        return rc;
    map = ibs_value_new_map();
    sym = ibs_value_new_string(symbol);
    if (!map || !sym) {
        ibs_value_free(sym);
        rc = IBS_ENOMEM;
        goto done;
    }
    if ((rc = ibs_value_map_set(map, IBS_REQUEST_REF_KEY, sym)))
        goto done;
    *out = map;
    map = NULL;
done:
    ibs_value_free(map);
    free(symbol);
    return rc;
}

static int convert(struct ibs_value **out, struct build_ctx *bc, const struct ibs_value *v,
                   const struct ibs_api_shape *shape);

static int convert_members(struct ibs_value *into, struct build_ctx *bc, const struct ibs_value *v,
                           const struct ibs_api_shape *shape)
{
    int rc = 0;

    for (size_t i = 0; !rc && i < v->count; i++) {
        const struct ibs_member *m = &v->u.members[i];
        const struct ibs_api_shape *ms = NULL;
        struct ibs_value *c = NULL;

        if (shape->type == IBS_API_STRUCTURE) {
            const struct ibs_api_member *am = ibs_api_member_find(shape, m->key);
            if (!am)
                return ibs_error_set(IBS_EINVALID, "member \"%s\" is not in %s", m->key,
                                     shape->name);
            ms = am->shape;
        } else {
            ms = shape->item;
        }
        if ((rc = convert(&c, bc, m->value, ms)))
            return rc;
        rc = ibs_value_map_append(into, m->key, strlen(m->key), m->key_loc, c);
    }
    return rc;
}

static int convert(struct ibs_value **out, struct build_ctx *bc, const struct ibs_value *v,
                   const struct ibs_api_shape *shape)
{
    struct ibs_value *c = NULL;
    int rc = 0;

    *out = NULL;
    if (v->type == IBS_VALUE_MAP && ibs_value_map_get(v, "ref") && shape->type == IBS_API_STRING)
        return make_placeholder(out, bc, v);
    switch (shape->type) {
    case IBS_API_STRING:
    case IBS_API_TIMESTAMP:
        if (!ibs_value_is_scalar(v))
            return ibs_error_set(IBS_EINVALID, "expected a string for %s", shape->name);
        c = ibs_value_new_stringn(v->str, v->len);
        break;
    case IBS_API_INTEGER:
    case IBS_API_LONG:
        if (v->type != IBS_VALUE_INT)
            return ibs_error_set(IBS_EINVALID, "expected an integer for %s", shape->name);
        c = ibs_value_new_int(v->num.i);
        break;
    case IBS_API_DOUBLE:
        if (v->type == IBS_VALUE_INT)
            c = ibs_value_new_int(v->num.i);
        else if (v->type == IBS_VALUE_FLOAT)
            c = ibs_value_new_float(v->num.d);
        else
            return ibs_error_set(IBS_EINVALID, "expected a number for %s", shape->name);
        break;
    case IBS_API_BOOLEAN:
        if (v->type != IBS_VALUE_BOOL)
            return ibs_error_set(IBS_EINVALID, "expected a boolean for %s", shape->name);
        c = ibs_value_new_bool(v->num.b);
        break;
    case IBS_API_LIST:
        if (v->type != IBS_VALUE_LIST)
            return ibs_error_set(IBS_EINVALID, "expected a list for %s", shape->name);
        if (!(c = ibs_value_new_list()))
            break;
        rc = ibs_value_reserve(c, v->count);
        for (size_t i = 0; !rc && i < v->count; i++) {
            struct ibs_value *item = NULL;
            if ((rc = convert(&item, bc, v->u.items[i], shape->item)))
                break;
            rc = ibs_value_list_append(c, item);
        }
        break;
    case IBS_API_MAP:
    case IBS_API_STRUCTURE:
        if (v->type != IBS_VALUE_MAP)
            return ibs_error_set(IBS_EINVALID, "expected a map for %s", shape->name);
        if (!(c = ibs_value_new_map()))
            break;
        if (!(rc = ibs_value_reserve(c, v->count)))
            rc = convert_members(c, bc, v, shape);
        break;
    }
    if (!c)
        return IBS_ENOMEM;
    if (rc) {
        ibs_value_free(c);
        return rc;
    }
    c->loc = v->loc;
    *out = c;
    return 0;
}

int ibs_request_build(struct ibs_value **out, const struct ibs_resource *res,
                      const char *(*version_of)(void *ctx, const struct ibs_resource *target),
                      void *ctx)
{
    const struct ibs_kind_info *info = ibs_model_kind_info(res->kind);
    const struct ibs_api_shape *shape;
    struct build_ctx bc = {res, version_of, ctx};
    char name[96];

    *out = NULL;
    snprintf(name, sizeof(name), "%sRequest", info->create_op);
    shape = ibs_api_shape_find(name);
    if (!shape)
        return ibs_error_set(IBS_ERROR, "API model has no %s", name);
    return convert(out, &bc, res->spec, shape);
}

bool ibs_request_is_ref(const struct ibs_value *v, const char **out_symbol)
{
    const struct ibs_value *s;

    if (!v || v->type != IBS_VALUE_MAP || v->count != 1)
        return false;
    s = ibs_value_map_get(v, IBS_REQUEST_REF_KEY);
    if (!s || s->type != IBS_VALUE_STRING)
        return false;
    if (out_symbol)
        *out_symbol = s->str;
    return true;
}

static int resolve(struct ibs_value *v, const char *member,
                   const char *(*arn_of)(void *ctx, const char *symbol, const char *member),
                   void *ctx)
{
    int rc = 0;

    for (size_t i = 0; !rc && i < v->count; i++) {
        struct ibs_value **slot;
        const char *m = member;
        const char *symbol;
        if (v->type == IBS_VALUE_LIST) {
            slot = &v->u.items[i];
        } else if (v->type == IBS_VALUE_MAP) {
            slot = &v->u.members[i].value;
            m = v->u.members[i].key;
        } else {
            break;
        }
        if (ibs_request_is_ref(*slot, &symbol)) {
            const char *arn = arn_of(ctx, symbol, m);
            struct ibs_value *s;
            if (!arn)
                return ibs_error_set(IBS_ENOTFOUND, "no ARN known for %s (%s)", symbol, m);
            if (!(s = ibs_value_new_string(arn)))
                return IBS_ENOMEM;
            ibs_value_free(*slot);
            *slot = s;
        } else {
            rc = resolve(*slot, m, arn_of, ctx);
        }
    }
    return rc;
}

int ibs_request_resolve(struct ibs_value **out, const struct ibs_value *request,
                        const char *(*arn_of)(void *ctx, const char *symbol, const char *member),
                        void *ctx)
{
    struct ibs_value *copy = NULL;
    int rc;

    *out = NULL;
    if ((rc = ibs_value_clone(&copy, request)))
        return rc;
    if ((rc = resolve(copy, "", arn_of, ctx))) {
        ibs_value_free(copy);
        return rc;
    }
    *out = copy;
    return 0;
}

int ibs_request_hash(char out[41], enum ibs_kind kind, const struct ibs_value *request,
                     const char *skip)
{
    struct ibs_buf b = IBS_BUF_INIT;
    struct ibs_value view;
    struct ibs_member *kept = NULL;
    int rc;

    /* Leaving `skip` out: a shallow view of the map (the same children,
     * fewer members) rather than a copy of the whole request. */
    view = *request;
    if (skip && request->type == IBS_VALUE_MAP && ibs_value_map_get(request, skip)) {
        kept = malloc(request->count * sizeof(*kept));
        if (!kept) {
            rc = ibs_error_oom();
            goto done;
        }
        view.count = 0;
        for (size_t i = 0; i < request->count; i++)
            if (strcmp(request->u.members[i].key, skip) != 0)
                kept[view.count++] = request->u.members[i];
        view.cap = view.count;
        view.u.members = kept;
    }
    ibs_buf_puts(&b, ibs_model_kind_info(kind)->name);
    ibs_buf_putc(&b, '\n');
    if ((rc = ibs_json_write(&b, &view, IBS_JSON_SORTED)))
        goto done;
    rc = ibs_digest_hex(out, b.ptr, b.size);
done:
    free(kept);
    ibs_buf_release(&b);
    return rc;
}

int ibs_request_client_token(char out[37], const char *plan_id, const char *action_key)
{
    struct ibs_buf b = IBS_BUF_INIT;
    char hex[41];
    int rc;

    ibs_buf_printf(&b, "%s\n%s", plan_id, action_key);
    if ((rc = ibs_buf_oom(&b)))
        goto done;
    if ((rc = ibs_digest_hex(hex, b.ptr, b.size)))
        goto done;
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
done:
    ibs_buf_release(&b);
    return rc;
}

static int parse_part(unsigned long *out, const char **p)
{
    char *end;
    if (**p < '0' || **p > '9')
        return IBS_EINVALID;
    errno = 0;
    *out = strtoul(*p, &end, 10);
    if (errno || *out > 1073741823ul)
        return IBS_EINVALID;
    *p = end;
    return 0;
}

int ibs_semver_parse(struct ibs_semver *out, const char *s)
{
    const char *p = s;

    if (parse_part(&out->major, &p) || *p++ != '.' || parse_part(&out->minor, &p) || *p++ != '.' ||
        parse_part(&out->patch, &p) || *p != '\0')
        return ibs_error_set(IBS_EINVALID, "\"%s\" is not a semantic version MAJOR.MINOR.PATCH", s);
    return 0;
}

int ibs_semver_compare(const struct ibs_semver *a, const struct ibs_semver *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch)
        return a->patch < b->patch ? -1 : 1;
    return 0;
}

void ibs_semver_format(char *out, size_t size, const struct ibs_semver *v)
{
    snprintf(out, size, "%lu.%lu.%lu", v->major, v->minor, v->patch);
}
