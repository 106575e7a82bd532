/*
 * Live state reader; see live.h. One List walk per kind, plus the build
 * versions of components and workflows (their tags live on the builds).
 */
#include "reconcile/live.h"

#include "api/api.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

void ibs_live_init(struct ibs_live *live)
{
    memset(live, 0, sizeof(*live));
}

static void live_resource_free(void *p)
{
    struct ibs_live_resource *r = p;
    if (!r)
        return;
    free(r->arn);
    free(r->build_arn);
    free(r->name);
    free(r->version);
    ibs_value_free(r->tags);
    ibs_value_free(r->summary);
    ibs_value_free(r->detail);
    free(r);
}

void ibs_live_release(struct ibs_live *live)
{
    ibs_vec_release_with(&live->resources, live_resource_free);
    free(live->account);
    ibs_live_init(live);
}

void ibs_live_arn_account(char out[13], const char *arn)
{
    const char *p = arn;
    size_t n;

    out[0] = '\0';
    for (int field = 0; field < 4 && p; field++) {
        p = strchr(p, ':');
        if (p)
            p++;
    }
    if (!p)
        return;
    n = strcspn(p, ":");
    if (n == 12) {
        memcpy(out, p, 12);
        out[12] = '\0';
    }
}

/* The version part of a versioned ARN: ".../name/1.2.3" or ".../name/1.2.3/4". */
static char *arn_version(const char *arn, bool has_build)
{
    const char *end = arn + strlen(arn);
    const char *slash = NULL;
    int skip = has_build ? 2 : 1;

    for (const char *p = end; p > arn; p--) {
        if (p[-1] == '/' && --skip == 0) {
            slash = p;
            break;
        }
    }
    if (!slash)
        return NULL;
    if (has_build) {
        const char *b = strchr(slash, '/');
        return b ? strndup(slash, (size_t)(b - slash)) : NULL;
    }
    return strdup(slash);
}

static int fill_tags(struct ibs_live_resource *r, const struct ibs_value *tags)
{
    int rc;

    ibs_value_free(r->tags);
    r->tags = NULL;
    if (tags && tags->type == IBS_VALUE_MAP) {
        if ((rc = ibs_value_clone(&r->tags, tags)))
            return rc;
    } else if (!(r->tags = ibs_value_new_map())) {
        return IBS_ENOMEM;
    }
    r->stack = ibs_value_map_get_str(r->tags, IBS_TAG_STACK);
    r->hash = ibs_value_map_get_str(r->tags, IBS_TAG_HASH);
    {
        const char *dp = ibs_value_map_get_str(r->tags, IBS_TAG_RETAIN);
        r->retain = dp && strcmp(dp, "Retain") == 0;
    }
    return 0;
}

static int note_account(struct ibs_live *live, const char *arn)
{
    char acct[13];

    if (live->account)
        return 0;
    ibs_live_arn_account(acct, arn);
    if (!acct[0])
        return 0;
    live->account = strdup(acct);
    return live->account ? 0 : ibs_error_oom();
}

static int list(struct ibs_value **out, struct ibs_live *live, struct ibs_provider *p,
                const char *op, struct ibs_value *input)
{
    size_t pages = 0;
    int rc = ibs_provider_list_all(out, &pages, p, op, input);
    live->calls += pages;
    return rc;
}

/* The newest build of a component or workflow version, with its tags. */
static int read_builds(struct ibs_live *live, struct ibs_provider *p, struct ibs_live_resource *r)
{
    const bool component = r->kind == IBS_KIND_COMPONENT;
    const char *op = component ? "ListComponentBuildVersions" : "ListWorkflowBuildVersions";
    struct ibs_value *input = ibs_value_new_map(), *builds = NULL, *best = NULL;
    long best_build = -1;
    int rc;

    if (!input)
        return IBS_ENOMEM;
    if ((rc = ibs_value_map_set(input, component ? "componentVersionArn" : "workflowVersionArn",
                                ibs_value_new_string(r->arn))))
        goto done;
    if ((rc = list(&builds, live, p, op, input)))
        goto done;
    for (size_t i = 0; i < builds->count; i++) {
        struct ibs_value *b = builds->u.items[i];
        const char *arn = ibs_value_map_get_str(b, "arn");
        const char *slash = arn ? strrchr(arn, '/') : NULL;
        long n = slash ? strtol(slash + 1, NULL, 10) : -1;
        if (n > best_build) {
            best_build = n;
            best = b;
        }
    }
    if (best) {
        free(r->build_arn);
        r->build_arn = strdup(ibs_value_map_get_str(best, "arn"));
        if (!r->build_arn) {
            rc = ibs_error_oom();
            goto done;
        }
        rc = fill_tags(r, ibs_value_map_get(best, "tags"));
    }
done:
    ibs_value_free(input);
    ibs_value_free(builds);
    return rc;
}

static int read_kind(struct ibs_live *live, struct ibs_provider *p, enum ibs_kind kind)
{
    const struct ibs_kind_info *info = ibs_model_kind_info(kind);
    struct ibs_value *input = ibs_value_new_map(), *items = NULL;
    const struct ibs_api_operation *op = ibs_api_operation_find(info->list_op);
    struct ibs_live_resource *r = NULL;
    int rc = 0;

    if (!input)
        return IBS_ENOMEM;
    if (!op)
        return ibs_error_set(IBS_ERROR, "API model lacks %s", info->list_op);
    if (ibs_api_member_find(op->input, "owner") &&
        (rc = ibs_value_map_set(input, "owner", ibs_value_new_string("Self"))))
        goto done;
    if (ibs_api_member_find(op->input, "byName") &&
        (rc = ibs_value_map_set(input, "byName", ibs_value_new_bool(false))))
        goto done;
    if ((rc = list(&items, live, p, info->list_op, input)))
        goto done;
    for (size_t i = 0; i < items->count; i++) {
        struct ibs_value *item = items->u.items[i];
        const char *arn = ibs_value_map_get_str(item, "arn");
        const char *name = ibs_value_map_get_str(item, "name");
        const struct ibs_value *date = ibs_value_map_get(item, "dateUpdated");

        if (!arn || !name)
            continue;
        r = calloc(1, sizeof(*r));
        if (!r) {
            rc = ibs_error_oom();
            goto done;
        }
        r->kind = kind;
        r->arn = strdup(arn);
        r->build_arn = strdup(arn);
        r->name = strdup(name);
        if (!r->arn || !r->build_arn || !r->name) {
            rc = ibs_error_oom();
            goto done;
        }
        if (info->versioned) {
            const char *v = ibs_value_map_get_str(item, "version");
            r->version = v ? strdup(v) : arn_version(arn, false);
            if (!r->version) {
                rc = ibs_error_set(IBS_EINVALID, "cannot read the version of %s", arn);
                goto done;
            }
        }
        if ((rc = ibs_value_clone(&r->summary, item)))
            goto done;
        if (date && date->type == IBS_VALUE_STRING)
            r->date_updated = ibs_value_map_get_str(r->summary, "dateUpdated");
        if ((rc = fill_tags(r, ibs_value_map_get(item, "tags"))))
            goto done;
        if ((rc = note_account(live, arn)))
            goto done;
        if (kind == IBS_KIND_COMPONENT || kind == IBS_KIND_WORKFLOW) {
            if ((rc = read_builds(live, p, r)))
                goto done;
        }
        if ((rc = ibs_vec_push(&live->resources, r)))
            goto done;
        r = NULL;
    }
done:
    live_resource_free(r);
    ibs_value_free(input);
    ibs_value_free(items);
    return rc;
}

int ibs_live_read(struct ibs_live *live, struct ibs_provider *p)
{
    int rc;

    for (int k = 0; k < IBS_KIND_COUNT; k++) {
        if ((rc = read_kind(live, p, (enum ibs_kind)k)))
            return ibs_error_prefix("reading %s", ibs_model_kind_info((enum ibs_kind)k)->list_op);
    }
    if (!live->account && p->account && !(live->account = strdup(p->account)))
        return ibs_error_oom();
    return 0;
}

int ibs_live_detail(const struct ibs_value **out, struct ibs_live *live, struct ibs_provider *p,
                    struct ibs_live_resource *r)
{
    const struct ibs_kind_info *info = ibs_model_kind_info(r->kind);
    struct ibs_value *input = NULL, *answer = NULL;
    int rc;

    *out = NULL;
    if (r->detail) {
        *out = r->detail;
        return 0;
    }
    input = ibs_value_new_map();
    if (!input)
        return IBS_ENOMEM;
    if ((rc = ibs_value_map_set(input, info->arn_member, ibs_value_new_string(r->build_arn))))
        goto done;
    live->calls++;
    if ((rc = ibs_provider_call(&answer, NULL, p, info->get_op, input)))
        goto done;
    r->detail = ibs_value_map_take(answer, info->get_key);
    if (!r->detail) {
        rc = ibs_error_set(IBS_EINVALID, "%s answered without \"%s\"", info->get_op, info->get_key);
        goto done;
    }
    *out = r->detail;
done:
    ibs_value_free(input);
    ibs_value_free(answer);
    return rc;
}

int ibs_live_find(struct ibs_vec *out, const struct ibs_live *live, enum ibs_kind kind,
                  const char *name)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < live->resources.count; i++) {
        struct ibs_live_resource *r = live->resources.items[i];
        if (r->kind == kind && strcmp(r->name, name) == 0)
            rc = ibs_vec_push(out, r);
    }
    return rc;
}
