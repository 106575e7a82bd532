/*
 * List operations.
 *
 * Every list is built from the records of one kind in creation order
 * (`seq`), grouped into entries, filtered, then paged:
 *
 *   - per record: recipes, configurations, pipelines, lifecycle policies,
 *     and the *BuildVersions / ListImagePipelineImages lists (build ARNs);
 *   - per version: ListComponents, ListWorkflows and ListImages answer every
 *     version, with its version ARN ("component/x/1.2.0");
 *   - per name: the same with byName=true answer the latest version of each
 *     name (the AWS CLI's --by-name).
 *
 * An entry's position is the smallest seq in its group: new versions of a
 * name do not move it (only deleting the group's oldest member does). A
 * page holds the entries whose position is after the one in nextToken, so
 * resources created between pages (with higher positions) come at the end
 * and nothing is skipped or repeated.
 *
 * Grouping sorts the records by (path, version, seq) so that each group is
 * a run, then sorts the entries by position: O(n log n) for the thousands
 * of resources a benchmark lists. The records are scanned without their
 * JSON documents; a document is loaded only for an entry after the token's
 * position that a filter or the page needs, so a page costs one pass over
 * the kind's index rows plus the documents it shows, not a parse of every
 * document of the kind.
 *
 * nextToken is base64url(position || MAC), the MAC an HMAC-SHA256 with the
 * database's secret over the operation, the request parameters other than
 * maxResults and nextToken, and the position. A token that was altered, is
 * from another database or another operation, or comes with other filters
 * is an InvalidPaginationTokenException. Being signed, tokens need no
 * server-side storage and stay valid across restarts (the secret is kept in
 * the database).
 *
 * owner (where the operation has it) defaults to Self; this account shares
 * nothing and has no Amazon-managed or third-party resources, so Shared,
 * Amazon and ThirdParty answer empty lists. Filters: values of one filter
 * are alternatives, filters combine with AND; "version" values may use "x"
 * wildcards; "supportedOsVersion" matches any of a component's versions;
 * a filter name the operation does not document is an invalid parameter.
 */
#include "providers/emulator/internal.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESULTS_DEFAULT 25
#define MAX_RESULTS_LIMIT 25
#define TOKEN_MAC_LEN 16
#define TOKEN_LEN (8 + TOKEN_MAC_LEN)

enum grouping {
    GROUP_RECORD,
    GROUP_BY_NAME, /* every version; the latest per name with byName */
};

/* The filter names each List operation documents. */
static const char *const component_filters[] = {
    "description", "name", "platform", "supportedOsVersion", "type", "version", NULL};
static const char *const workflow_filters[] = {"name", "type", "version", NULL};
static const char *const image_filters[] = {"name", "osVersion", "platform",
                                            "type", "version",   NULL};
static const char *const image_recipe_filters[] = {"name", "parentImage", "platform", NULL};
static const char *const container_recipe_filters[] = {"containerType", "name", "parentImage",
                                                       "platform", NULL};
static const char *const name_filters[] = {"name", NULL};
static const char *const pipeline_filters[] = {"description",
                                               "distributionConfigurationArn",
                                               "imageRecipeArn",
                                               "infrastructureConfigurationArn",
                                               "name",
                                               "status",
                                               NULL};
static const char *const lifecycle_filters[] = {"name", "status", NULL};
static const char *const pipeline_image_filters[] = {"name", "version", NULL};

static const struct {
    const char *operation;
    enum grouping grouping;
    const char *const *filters;
} list_specs[] = {
    {"ListComponents", GROUP_BY_NAME, component_filters},
    {"ListWorkflows", GROUP_BY_NAME, workflow_filters},
    {"ListImages", GROUP_BY_NAME, image_filters},
    {"ListImageRecipes", GROUP_RECORD, image_recipe_filters},
    {"ListContainerRecipes", GROUP_RECORD, container_recipe_filters},
    {"ListDistributionConfigurations", GROUP_RECORD, name_filters},
    {"ListInfrastructureConfigurations", GROUP_RECORD, name_filters},
    {"ListImagePipelines", GROUP_RECORD, pipeline_filters},
    {"ListLifecyclePolicies", GROUP_RECORD, lifecycle_filters},
    {"ListComponentBuildVersions", GROUP_RECORD, NULL},
    {"ListWorkflowBuildVersions", GROUP_RECORD, NULL},
    {"ListImageBuildVersions", GROUP_RECORD, image_filters},
    {"ListImagePipelineImages", GROUP_RECORD, pipeline_image_filters},
};

struct entry {
    int64_t pos;
    struct ibs_emulator_record *rep; /* borrowed from the record vector */
    bool version_arn;                /* answer the version ARN, not the build ARN */
};

static const char *const token_skip[] = {"nextToken", "maxResults", NULL};

static int token_mac(struct ibs_emulator_req *req, unsigned char *mac, const unsigned char *pos)
{
    unsigned char full[32];
    char hash[65];
    struct ibs_buf msg = IBS_BUF_INIT;
    int rc;

    if ((rc = ibs_emulator_request_hash(hash, req->input, token_skip)))
        return rc;
    ibs_buf_printf(&msg, "%s\n%s\n", req->op->name, hash);
    ibs_buf_put(&msg, pos, 8);
    if ((rc = ibs_buf_oom(&msg)))
        goto done;
    if ((rc = ibs_emulator_hmac(full, req->emu->secret, sizeof(req->emu->secret), msg.ptr,
                                msg.size)))
        goto done;
    memcpy(mac, full, TOKEN_MAC_LEN);
done:
    ibs_buf_release(&msg);
    return rc;
}

static int token_encode(struct ibs_value *resp, struct ibs_emulator_req *req, int64_t pos)
{
    unsigned char raw[TOKEN_LEN];
    struct ibs_buf b = IBS_BUF_INIT;
    int rc;

    for (int i = 0; i < 8; i++)
        raw[i] = (unsigned char)((uint64_t)pos >> (56 - 8 * i));
    if ((rc = token_mac(req, raw + 8, raw)))
        return rc;
    if ((rc = ibs_emulator_b64url_encode(&b, raw, sizeof(raw))) == 0)
        rc = ibs_emulator_set_str(resp, "nextToken", b.ptr);
    ibs_buf_release(&b);
    return rc;
}

static int token_decode(int64_t *out, struct ibs_emulator_req *req)
{
    const char *token = ibs_value_map_get_str(req->input, "nextToken");
    unsigned char raw[TOKEN_LEN + 1], mac[TOKEN_MAC_LEN];
    uint64_t pos = 0;
    int rc;

    *out = 0;
    if (!token)
        return 0;
    if (ibs_emulator_b64url_decode(raw, sizeof(raw), token) == TOKEN_LEN) {
        if ((rc = token_mac(req, mac, raw)))
            return rc;
        if (ibs_emulator_mem_equal(mac, raw + 8, TOKEN_MAC_LEN)) {
            for (int i = 0; i < 8; i++)
                pos = (pos << 8) | raw[i];
            *out = (int64_t)pos;
            return 0;
        }
    }
    return ibs_emulator_fail(req, "InvalidPaginationTokenException",
                             "The pagination token is not valid for this request.");
}

static bool value_equals(const struct ibs_value *v, const char *s)
{
    return v && ibs_value_is_scalar(v) && v->str && strcmp(v->str, s) == 0;
}

static bool filter_value_matches(const char *filter, const struct ibs_emulator_record *rep,
                                 const char *value)
{
    const struct ibs_value *field;

    if (strcmp(filter, "version") == 0) {
        struct ibs_emulator_semver pattern, v;
        if (!rep->version)
            return false;
        if (ibs_emulator_semver_parse(&pattern, value, strlen(value), true) &&
            ibs_emulator_semver_parse(&v, rep->version, strlen(rep->version), false))
            return ibs_emulator_semver_match(&pattern, &v);
        return strcmp(value, rep->version) == 0;
    }
    if (strcmp(filter, "supportedOsVersion") == 0) {
        field = ibs_value_map_get(rep->doc, "supportedOsVersions");
        for (size_t i = 0; field && field->type == IBS_VALUE_LIST && i < field->count; i++)
            if (value_equals(field->u.items[i], value))
                return true;
        return false;
    }
    if (strcmp(filter, "name") == 0)
        return strcmp(rep->name, value) == 0;
    return value_equals(ibs_value_map_get(rep->doc, filter), value);
}

static bool entry_matches(const struct ibs_value *filters, const struct ibs_emulator_record *rep)
{
    for (size_t i = 0; filters && i < filters->count; i++) {
        const char *name = ibs_value_map_get_str(filters->u.items[i], "name");
        const struct ibs_value *values = ibs_value_map_get(filters->u.items[i], "values");
        bool any = false;
        for (size_t j = 0; name && values && values->type == IBS_VALUE_LIST && j < values->count;
             j++)
            if (values->u.items[j]->type == IBS_VALUE_STRING &&
                filter_value_matches(name, rep, values->u.items[j]->str))
                any = true;
        if (!any)
            return false;
    }
    return true;
}

static int check_filters(struct ibs_emulator_req *req, const char *const *allowed,
                         const struct ibs_value **out)
{
    const struct ibs_value *filters = ibs_value_map_get(req->input, "filters");
    struct ibs_buf names = IBS_BUF_INIT;
    int rc = 0;

    *out = NULL;
    if (!filters)
        return 0;
    for (size_t i = 0; filters->type == IBS_VALUE_LIST && i < filters->count; i++) {
        const char *name = ibs_value_map_get_str(filters->u.items[i], "name");
        bool ok = false;
        for (size_t j = 0; name && allowed && allowed[j]; j++)
            ok = ok || strcmp(allowed[j], name) == 0;
        if (ok)
            continue;
        for (size_t j = 0; allowed && allowed[j]; j++)
            ibs_buf_printf(&names, "%s%s", j ? ", " : "", allowed[j]);
        if ((rc = ibs_buf_oom(&names)))
            goto done;
        rc = ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                               "The value supplied for parameter 'filters[%zu].name' is not "
                               "valid. Valid filter names for %s are: %s.",
                               i, req->op->name, names.size ? names.ptr : "(none)");
        goto done;
    }
    *out = filters->type == IBS_VALUE_LIST ? filters : NULL;
done:
    ibs_buf_release(&names);
    return rc;
}

static int max_results(struct ibs_emulator_req *req, int64_t *out)
{
    const struct ibs_value *v = ibs_value_map_get(req->input, "maxResults");

    *out = MAX_RESULTS_DEFAULT;
    if (!v)
        return 0;
    /* ibs_api_validate enforces the documented range already; this keeps
     * the engine safe when called with a model lacking it. */
    if (v->type != IBS_VALUE_INT || v->num.i < 1 || v->num.i > MAX_RESULTS_LIMIT)
        return ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                                 "The value supplied for parameter 'maxResults' is not valid. "
                                 "Member must have value between 1 and %d.",
                                 MAX_RESULTS_LIMIT);
    *out = v->num.i;
    return 0;
}

/* Latest-first comparison of two records of one name. */
static bool newer(const struct ibs_emulator_record *a, const struct ibs_emulator_record *b)
{
    int c = ibs_emulator_semver_cmp(a->version ? a->version : "", b->version ? b->version : "");
    return c > 0 || (c == 0 && a->build > b->build);
}

static int cmp_seq(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

static int cmp_version(const struct ibs_emulator_record *a, const struct ibs_emulator_record *b)
{
    return strcmp(a->version ? a->version : "", b->version ? b->version : "");
}

/* qsort() orders of record pointers: by name, then creation. */
static int by_path(const void *a, const void *b)
{
    const struct ibs_emulator_record *x = *(struct ibs_emulator_record *const *)a;
    const struct ibs_emulator_record *y = *(struct ibs_emulator_record *const *)b;
    int c = strcmp(x->path, y->path);
    return c ? c : cmp_seq(x->seq, y->seq);
}

/* ... by name, then version (as written), then creation. */
static int by_path_version(const void *a, const void *b)
{
    const struct ibs_emulator_record *x = *(struct ibs_emulator_record *const *)a;
    const struct ibs_emulator_record *y = *(struct ibs_emulator_record *const *)b;
    int c = strcmp(x->path, y->path);
    if (!c)
        c = cmp_version(x, y);
    return c ? c : cmp_seq(x->seq, y->seq);
}

static int by_pos(const void *a, const void *b)
{
    return cmp_seq(((const struct entry *)a)->pos, ((const struct entry *)b)->pos);
}

/*
 * Groups the records (creation order) into entries in position order:
 * *out is a new array of *out_count entries (caller frees) whose records
 * are borrowed from `recs`.
 */
static int group(struct entry **out, size_t *out_count, const struct ibs_vec *recs,
                 enum grouping grouping, bool by_name)
{
    struct ibs_emulator_record **sorted = NULL;
    struct entry *entries;
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    *out_count = 0;
    if (!(entries = calloc(recs->count ? recs->count : 1, sizeof(*entries))))
        return ibs_error_oom();
    if (grouping == GROUP_RECORD) {
        for (; n < recs->count; n++) {
            entries[n].pos = ((struct ibs_emulator_record *)recs->items[n])->seq;
            entries[n].rep = recs->items[n];
        }
        goto done;
    }
    if (!(sorted = malloc((recs->count ? recs->count : 1) * sizeof(*sorted)))) {
        rc = ibs_error_oom();
        goto done;
    }
    if (recs->count)
        memcpy(sorted, recs->items, recs->count * sizeof(*sorted));
    qsort(sorted, recs->count, sizeof(*sorted), by_name ? by_path : by_path_version);
    /* Each group is now a run in creation order: its first record has the
     * smallest seq, which is the entry's position. */
    for (size_t i = 0; i < recs->count; i++) {
        struct ibs_emulator_record *r = sorted[i];
        struct entry *e = n ? &entries[n - 1] : NULL;
        if (e && strcmp(e->rep->path, r->path) == 0 && (by_name || cmp_version(e->rep, r) == 0)) {
            if (newer(r, e->rep))
                e->rep = r;
            continue;
        }
        entries[n].pos = r->seq;
        entries[n].rep = r;
        entries[n].version_arn = true;
        n++;
    }
    qsort(entries, n, sizeof(*entries), by_pos);
done:
    free(sorted);
    if (rc) {
        free(entries);
        return rc;
    }
    *out = entries;
    *out_count = n;
    return 0;
}

/* Whether a filter looks into the stored document (the name and the
 * version are columns of the record). */
static bool filters_need_doc(const struct ibs_value *filters)
{
    for (size_t i = 0; filters && i < filters->count; i++) {
        const char *name = ibs_value_map_get_str(filters->u.items[i], "name");
        if (!name || (strcmp(name, "name") != 0 && strcmp(name, "version") != 0))
            return true;
    }
    return false;
}

/* The list item for one entry: its view with the summary's derived members,
 * projected onto the result list's item shape. */
static int summary(struct ibs_value **out, struct ibs_emulator_req *req, const struct entry *e,
                   const struct ibs_api_shape *item_shape)
{
    struct ibs_value *view = NULL;
    int rc;

    *out = NULL;
    if ((rc = ibs_emulator_view(&view, req, e->rep)))
        return rc;
    if (e->version_arn && e->rep->version) {
        struct ibs_buf arn = IBS_BUF_INIT;
        ibs_buf_printf(&arn, "%s%s/%s/%s", req->emu->arn_prefix,
                       ibs_emulator_kind_get(e->rep->kind)->type, e->rep->path, e->rep->version);
        rc = ibs_buf_oom(&arn);
        if (!rc)
            rc = ibs_emulator_set_str(view, "arn", arn.ptr);
        ibs_buf_release(&arn);
        if (rc)
            goto done;
    }
    if (e->rep->kind == IBS_EMU_DIST) {
        /* DistributionConfigurationSummary.regions: the distributions' regions. */
        const struct ibs_value *dists = ibs_value_map_get(view, "distributions");
        struct ibs_value *regions = ibs_value_new_list();
        if (!regions) {
            rc = IBS_ENOMEM;
            goto done;
        }
        for (size_t i = 0; dists && dists->type == IBS_VALUE_LIST && i < dists->count && !rc; i++) {
            const char *region = ibs_value_map_get_str(dists->u.items[i], "region");
            if (region)
                rc = ibs_value_list_append(regions, ibs_value_new_string(region));
        }
        if (rc) {
            ibs_value_free(regions);
            goto done;
        }
        if ((rc = ibs_value_map_set(view, "regions", regions)))
            goto done;
    }
    rc = ibs_emulator_project(out, view, item_shape);
done:
    ibs_value_free(view);
    return rc;
}

/* Pages `recs` into the response. */
static int respond(struct ibs_emulator_req *req, struct ibs_vec *recs, struct ibs_value **out)
{
    const char *const *allowed = NULL;
    enum grouping grouping = GROUP_RECORD;
    const struct ibs_value *filters = NULL, *by_name = ibs_value_map_get(req->input, "byName");
    const char *owner = ibs_value_map_get_str(req->input, "owner");
    const char *result_key = req->op->result_key;
    const struct ibs_api_shape *list_shape;
    struct entry *entries = NULL;
    struct ibs_value *resp = NULL, *list = NULL, *item = NULL;
    int64_t limit = 0, after = 0, last_pos = 0;
    size_t taken = 0, nentries = 0;
    bool need_doc;
    int rc;

    *out = NULL;
    for (size_t i = 0; i < sizeof(list_specs) / sizeof(list_specs[0]); i++)
        if (strcmp(list_specs[i].operation, req->op->name) == 0) {
            grouping = list_specs[i].grouping;
            allowed = list_specs[i].filters;
        }
    if (!result_key)
        return ibs_error_set(IBS_ERROR, "%s: no result key in the API model", req->op->name);
    list_shape = ibs_emulator_member_shape(req->op->output, result_key);
    if ((rc = max_results(req, &limit)) || (rc = token_decode(&after, req)) ||
        (rc = check_filters(req, allowed, &filters)))
        return rc;
    need_doc = filters_need_doc(filters);
    if (!(resp = ibs_value_new_map()) || !(list = ibs_value_new_list())) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if ((rc = ibs_value_map_set(resp, result_key, list)))
        goto done;
    /* Owners other than Self own nothing here. */
    if ((!owner || strcmp(owner, "Self") == 0) &&
        (rc = group(&entries, &nentries, recs, grouping,
                    by_name && by_name->type == IBS_VALUE_BOOL && by_name->num.b)))
        goto done;
    for (size_t i = 0; i < nentries; i++) {
        const struct entry *e = &entries[i];
        if (e->pos <= after)
            continue;
        if (need_doc && (rc = ibs_emulator_store_load_doc(req->emu, e->rep)))
            goto done;
        if (!entry_matches(filters, e->rep))
            continue;
        if (taken == (size_t)limit) {
            /* More entries follow: the token resumes after the last one. */
            if ((rc = token_encode(resp, req, last_pos)))
                goto done;
            break;
        }
        if ((rc = ibs_emulator_store_load_doc(req->emu, e->rep)) ||
            (rc = summary(&item, req, e, list_shape ? list_shape->item : NULL)))
            goto done;
        if ((rc = ibs_value_list_append(list, item)))
            goto done;
        taken++;
        last_pos = e->pos;
    }
    *out = resp;
    resp = NULL;
done:
    free(entries);
    ibs_value_free(resp);
    return rc;
}

int ibs_emulator_op_list(struct ibs_emulator_req *req, struct ibs_value **out)
{
    struct ibs_vec recs = IBS_VEC_INIT;
    int rc;

    *out = NULL;
    if (!(rc = ibs_emulator_store_scan(&recs, req->emu, req->kind, NULL, NULL, false)))
        rc = respond(req, &recs, out);
    ibs_vec_release_with(&recs, ibs_emulator_record_free_item);
    return rc;
}

int ibs_emulator_op_list_builds(struct ibs_emulator_req *req, struct ibs_value **out)
{
    const char *member = req->kind == IBS_EMU_COMPONENT  ? "componentVersionArn"
                         : req->kind == IBS_EMU_WORKFLOW ? "workflowVersionArn"
                                                         : "imageVersionArn";
    const char *arn = ibs_value_map_get_str(req->input, member);
    struct ibs_vec recs = IBS_VEC_INIT;
    struct ibs_emulator_arn a;
    bool parsed = arn && ibs_emulator_arn_parse(&a, arn);
    int rc = 0;

    *out = NULL;
    /* A version ARN of another kind, region or account lists nothing. */
    if (parsed && a.kind->id == req->kind && strcmp(a.region, req->emu->region) == 0 &&
        strcmp(a.account, req->emu->account) == 0) {
        if ((rc = ibs_emulator_store_scan(&recs, req->emu, req->kind, a.path, NULL, false)))
            goto done;
        for (size_t i = 0; i < recs.count; i++) {
            struct ibs_emulator_record *r = recs.items[i];
            struct ibs_emulator_semver pattern, v;
            bool keep = !a.version ||
                        (ibs_emulator_semver_parse(&pattern, a.version, strlen(a.version), true) &&
                         ibs_emulator_semver_parse(&v, r->version, strlen(r->version), false) &&
                         ibs_emulator_semver_match(&pattern, &v));
            if (!keep) {
                ibs_emulator_record_free(r);
                recs.items[i] = NULL;
            }
        }
        size_t n = 0;
        for (size_t i = 0; i < recs.count; i++)
            if (recs.items[i])
                recs.items[n++] = recs.items[i];
        recs.count = n;
    }
    rc = respond(req, &recs, out);
done:
    if (parsed)
        ibs_emulator_arn_release(&a);
    ibs_vec_release_with(&recs, ibs_emulator_record_free_item);
    return rc;
}

int ibs_emulator_op_list_pipeline_images(struct ibs_emulator_req *req, struct ibs_value **out)
{
    const char *arn = ibs_value_map_get_str(req->input, "imagePipelineArn");
    struct ibs_emulator_record *pipeline = NULL;
    struct ibs_vec recs = IBS_VEC_INIT;
    int rc;

    *out = NULL;
    rc = ibs_emulator_store_get(&pipeline, req->emu, arn ? arn : "");
    if (rc == IBS_ENOTFOUND || (!rc && pipeline->kind != IBS_EMU_PIPELINE)) {
        rc = ibs_emulator_fail(req, "ResourceNotFoundException",
                               "The resource ARN '%s' does not exist.", arn ? arn : "");
        goto done;
    }
    if (rc)
        goto done;
    if (!(rc = ibs_emulator_store_scan(&recs, req->emu, IBS_EMU_IMAGE, NULL, pipeline->arn, false)))
        rc = respond(req, &recs, out);
done:
    ibs_vec_release_with(&recs, ibs_emulator_record_free_item);
    ibs_emulator_record_free(pipeline);
    return rc;
}
