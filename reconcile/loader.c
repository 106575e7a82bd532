/*
 * Loader: source files -> YAML documents -> struct ibs_model.
 *
 * Passes:
 *   1. parse every .yaml or .yml file (diagnostics kept per file);
 *   2. collect the paths used through {file: PATH}: those files are data,
 *      so their documents and parse errors are dropped;
 *   3. check each remaining document (envelope, metadata, spec against the
 *      API model), replacing {file:} maps by the file's text and recording
 *      {ref:} maps;
 *   4. across documents: duplicates, the Stack document, ref resolution and
 *      reference cycles.
 * Every problem becomes a diagnostic; nothing stops at the first error.
 */
#include "reconcile/loader.h"

#include "api/api.h"
#include "reconcile/graph.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/text.h"
#include "util/yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IBS_LOADER_DEFAULT_MAX_FILE (16u * 1024u * 1024u)

struct parsed_file {
    const char *name; /* interned in the model */
    struct ibs_vec docs;
    struct ibs_diags diags;
    bool is_data; /* used through {file:} */
};

struct loader {
    struct ibs_model *model;
    struct ibs_diags *diags;
    struct ibs_source *src; /* NULL for load_buffer */
    size_t max_file_size;
    struct ibs_vec files;      /* struct parsed_file * */
    struct ibs_vec data_paths; /* char *: normalised {file:} targets */
    const struct ibs_value *stack_doc;
};

/* Members that accept {ref: NAME}, and the kind they refer to. parentImage
 * depends on the referencing kind: an image recipe builds on the images of
 * another image recipe, a container recipe on another container recipe. */
struct ref_member {
    const char *member;
    enum ibs_kind kind;
};

static const struct ref_member ref_members[] = {
    {"componentArn", IBS_KIND_COMPONENT},
    {"imageRecipeArn", IBS_KIND_IMAGE_RECIPE},
    {"containerRecipeArn", IBS_KIND_CONTAINER_RECIPE},
    {"infrastructureConfigurationArn", IBS_KIND_INFRASTRUCTURE_CONFIGURATION},
    {"distributionConfigurationArn", IBS_KIND_DISTRIBUTION_CONFIGURATION},
    {"workflowArn", IBS_KIND_WORKFLOW},
    {"parentImage", IBS_KIND_IMAGE_RECIPE},
};

/* Members whose value is a document that may be kept in its own file. */
static const char *const file_members[] = {"data", "dockerfileTemplateData"};

static const char *const envelope_keys[] = {"apiVersion", "kind", "metadata", "spec"};
static const char *const metadata_keys[] = {"name", "tags", "deletionPolicy"};
static const char *const stack_spec_keys[] = {"region", "prune", "retainVersions", "tags"};
static const char *const spec_skip[] = {"name", "tags", "clientToken", NULL};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void parsed_file_free(void *p)
{
    struct parsed_file *f = p;
    if (!f)
        return;
    for (size_t i = 0; i < f->docs.count; i++)
        ibs_value_free(f->docs.items[i]);
    ibs_vec_release(&f->docs);
    ibs_diag_release(&f->diags);
    free(f);
}

static int has_yaml_ext(const char *path)
{
    size_t n = strlen(path);
    return (n > 5 && strcmp(path + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(path + n - 4, ".yml") == 0);
}

static bool is_file_member(const char *member)
{
    for (size_t i = 0; i < NELEM(file_members); i++)
        if (strcmp(member, file_members[i]) == 0)
            return true;
    return false;
}

static const struct ref_member *find_ref_member(const char *member)
{
    for (size_t i = 0; i < NELEM(ref_members); i++)
        if (strcmp(member, ref_members[i].member) == 0)
            return &ref_members[i];
    return NULL;
}

/* A map with exactly the key `key` (plus, for refs, an optional version). */
static bool is_directive(const struct ibs_value *v, const char *key)
{
    return v && v->type == IBS_VALUE_MAP && v->count >= 1 && ibs_value_map_get(v, key) != NULL;
}

static int diag(struct loader *ld, const struct ibs_loc *loc, const char *path, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static int diag(struct loader *ld, const struct ibs_loc *loc, const char *path, const char *fmt,
                ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = ibs_diag_vadd(ld->diags, IBS_SEV_ERROR, loc, path, fmt, ap);
    va_end(ap);
    return rc;
}

static int unknown_key(struct loader *ld, const struct ibs_member *m, const char *path,
                       const char *const *known, size_t nknown)
{
    const char *s = ibs_text_suggest(m->key, known, nknown);
    if (s)
        return diag(ld, &m->key_loc, path, "unknown member \"%s\"; did you mean \"%s\"?", m->key,
                    s);
    return diag(ld, &m->key_loc, path, "unknown member \"%s\"", m->key);
}

/* --- pass 1: parse ------------------------------------------------------- */

static int parse_file(struct loader *ld, const char *path, const char *data, size_t len)
{
    struct parsed_file *f = NULL;
    struct ibs_yaml_limits limits;
    int rc;

    f = calloc(1, sizeof(*f));
    if (!f)
        return ibs_error_oom();
    ibs_diag_init(&f->diags);
    /* Listed paths are unique: no need to search the file table. */
    f->name = ibs_model_add_file(ld->model, path);
    if (!f->name) {
        rc = IBS_ENOMEM;
        goto done;
    }
    ibs_yaml_limits_init(&limits);
    if (limits.max_input > ld->max_file_size)
        limits.max_input = ld->max_file_size;
    rc = ibs_yaml_parse(&f->docs, &f->diags, f->name, data, len, &limits);
    if (rc == IBS_EINVALID)
        rc = 0;
    if (rc)
        goto done;
    rc = ibs_vec_push(&ld->files, f);
    if (!rc)
        f = NULL;
done:
    parsed_file_free(f);
    return rc;
}

static int read_and_parse(struct loader *ld, const char *path)
{
    char *data = NULL;
    size_t len = 0;
    int rc = ibs_source_read(&data, &len, ld->src, path, ld->max_file_size);

    if (rc == IBS_ENOMEM)
        return rc;
    if (rc) {
        struct ibs_loc loc = {ibs_model_intern_file(ld->model, path), 0, 0};
        rc = diag(ld, &loc, NULL, "cannot read file: %s", ibs_error_last()->message);
        goto done;
    }
    rc = parse_file(ld, path, data, len);
done:
    free(data);
    return rc;
}

/* --- pass 2: {file:} targets ---------------------------------------------- */

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_data_path(const struct loader *ld, const char *path)
{
    const char *key = path;
    return ld->data_paths.count && bsearch(&key, ld->data_paths.items, ld->data_paths.count,
                                           sizeof(char *), cmp_str_ptr) != NULL;
}

/* Walks every value of a document and records the normalised target of each
 * {file: PATH} directive. Iterative, so hostile nesting cannot overflow. */
static int collect_file_refs(struct loader *ld, const char *file, const struct ibs_value *root)
{
    struct ibs_vec stack = IBS_VEC_INIT;
    int rc = 0;

    if ((rc = ibs_vec_push(&stack, (void *)root)))
        goto done;
    while (stack.count) {
        const struct ibs_value *v = ibs_vec_pop(&stack);
        if (v->type == IBS_VALUE_LIST) {
            for (size_t i = 0; i < v->count; i++)
                if ((rc = ibs_vec_push(&stack, v->u.items[i])))
                    goto done;
        } else if (v->type == IBS_VALUE_MAP) {
            const struct ibs_value *target = ibs_value_map_get(v, "file");
            if (v->count == 1 && target && target->type == IBS_VALUE_STRING) {
                char *norm = NULL;
                if (ibs_source_normalize(&norm, file, target->str) == 0) {
                    if ((rc = ibs_vec_push(&ld->data_paths, norm))) {
                        free(norm);
                        goto done;
                    }
                } else if (ibs_error_last()->code == IBS_ENOMEM) {
                    rc = IBS_ENOMEM;
                    goto done;
                }
                continue;
            }
            for (size_t i = 0; i < v->count; i++)
                if ((rc = ibs_vec_push(&stack, v->u.members[i].value)))
                    goto done;
        }
    }
done:
    ibs_vec_release(&stack);
    return rc;
}

/* --- pass 3: documents ----------------------------------------------------- */

struct path_frame {
    struct ibs_value *v;
    size_t next;        /* the next child to visit */
    size_t path_len;    /* length of this value's path in the walk's buffer */
    const char *member; /* the member name this value is under (borrowed) */
};

/* Resolves {file: PATH} at `v` (a map) into a string value replacing it in
 * its parent slot `*slot`. */
static int resolve_file(struct loader *ld, struct ibs_resource *res, const char *doc_file,
                        struct ibs_value **slot, const char *path, const char *member)
{
    struct ibs_value *v = *slot;
    const struct ibs_value *target = ibs_value_map_get(v, "file");
    struct ibs_value *text = NULL;
    char *norm = NULL, *data = NULL;
    size_t len = 0;
    int rc = 0;

    if (v->count != 1 || !target || target->type != IBS_VALUE_STRING) {
        rc = diag(ld, &v->loc, path, "{file:} takes exactly one member, file: PATH (a string)");
        goto done;
    }
    if (!is_file_member(member)) {
        rc = diag(ld, &v->loc, path,
                  "{file:} is not supported for member \"%s\"; it is supported for data and "
                  "dockerfileTemplateData",
                  member);
        goto done;
    }
    if (ibs_source_normalize(&norm, doc_file, target->str)) {
        if (ibs_error_last()->code == IBS_ENOMEM) {
            rc = IBS_ENOMEM;
            goto done;
        }
        rc = diag(ld, &target->loc, path, "%s", ibs_error_last()->message);
        goto done;
    }
    if (!ld->src) {
        rc = diag(ld, &target->loc, path, "file \"%s\" not found", target->str);
        goto done;
    }
    rc = ibs_source_read(&data, &len, ld->src, norm, ld->max_file_size);
    if (rc == IBS_ENOMEM)
        goto done;
    if (rc == IBS_ENOTFOUND) {
        rc = diag(ld, &target->loc, path, "file \"%s\" not found (looked for \"%s\")", target->str,
                  norm);
        goto done;
    }
    if (rc) {
        rc = diag(ld, &target->loc, path, "cannot read \"%s\": %s", target->str,
                  ibs_error_last()->message);
        goto done;
    }
    if (memchr(data, '\0', len)) {
        rc = diag(ld, &target->loc, path, "file \"%s\" is binary (contains a NUL byte)",
                  target->str);
        goto done;
    }
    text = ibs_value_new_stringn(data, len);
    if (!text) {
        rc = IBS_ENOMEM;
        goto done;
    }
    text->loc = v->loc;
    text->quoted = true;
    if ((rc = ibs_vec_push(&res->files, norm)))
        goto done;
    norm = NULL;
    ibs_value_free(*slot);
    *slot = text;
    text = NULL;
done:
    ibs_value_free(text);
    free(norm);
    free(data);
    return rc;
}

static int record_ref(struct loader *ld, struct ibs_resource *res, const struct ibs_value *v,
                      const char *path, const char *member)
{
    const struct ref_member *rm = find_ref_member(member);
    const struct ibs_value *name = ibs_value_map_get(v, "ref");
    const struct ibs_value *version = ibs_value_map_get(v, "version");
    struct ibs_ref *ref = NULL;
    bool ok = true;
    int rc = 0;

    if (!rm) {
        return diag(ld, &v->loc, path,
                    "{ref:} is not supported for member \"%s\"; it is supported for componentArn, "
                    "imageRecipeArn, containerRecipeArn, infrastructureConfigurationArn, "
                    "distributionConfigurationArn, workflowArn and parentImage",
                    member);
    }
    for (size_t i = 0; i < v->count; i++) {
        const struct ibs_member *m = &v->u.members[i];
        if (strcmp(m->key, "ref") && strcmp(m->key, "version")) {
            static const char *const ref_keys[] = {"ref", "version"};
            if ((rc = unknown_key(ld, m, path, ref_keys, 2)))
                return rc;
            ok = false;
        }
    }
    if (name->type != IBS_VALUE_STRING || name->len == 0) {
        rc = diag(ld, &name->loc, path, "ref: expects the name of a resource (a non-empty string)");
        ok = false;
    }
    if (version && version->type != IBS_VALUE_STRING && version->type != IBS_VALUE_FLOAT &&
        version->type != IBS_VALUE_INT) {
        rc = diag(ld, &version->loc, path, "version: expects a semantic version such as 1.0.0");
        ok = false;
    }
    if (rc || !ok)
        return rc;
    ref = calloc(1, sizeof(*ref));
    if (!ref)
        return ibs_error_oom();
    ref->kind = rm->kind;
    if (strcmp(member, "parentImage") == 0 && res->kind == IBS_KIND_CONTAINER_RECIPE)
        ref->kind = IBS_KIND_CONTAINER_RECIPE;
    ref->path = strdup(path + strlen("spec."));
    ref->member = strdup(member);
    ref->name = strdup(name->str);
    ref->version = version ? strdup(version->str) : NULL;
    ref->loc = v->loc;
    if (!ref->path || !ref->member || !ref->name || (version && !ref->version)) {
        rc = ibs_error_oom();
        goto done;
    }
    rc = ibs_vec_push(&res->refs, ref);
    if (!rc)
        ref = NULL;
done:
    if (ref) {
        free(ref->path);
        free(ref->member);
        free(ref->name);
        free(ref->version);
        free(ref);
    }
    return rc;
}

static char *child_path(const char *parent, const char *key, size_t index, bool is_index)
{
    struct ibs_buf b = IBS_BUF_INIT;
    if (is_index)
        ibs_buf_printf(&b, "%s[%zu]", parent, index);
    else
        ibs_buf_printf(&b, "%s.%s", parent, key);
    return ibs_buf_detach(&b);
}

static int cmp_ref_loc(const void *pa, const void *pb)
{
    const struct ibs_ref *a = *(const struct ibs_ref *const *)pa;
    const struct ibs_ref *b = *(const struct ibs_ref *const *)pb;
    if (a->loc.line != b->loc.line)
        return a->loc.line < b->loc.line ? -1 : 1;
    return a->loc.col < b->loc.col ? -1 : a->loc.col > b->loc.col;
}

/*
 * Walks the spec depth-first in source order: replaces {file:} directives
 * and records {ref:} ones. One path buffer is extended and cut back as the
 * walk goes, so no node costs an allocation; an explicit stack rather than
 * recursion, as nesting is only bounded by the YAML reader's limits.
 */
static int walk_spec(struct loader *ld, struct ibs_resource *res, const char *doc_file)
{
    struct path_frame *frames = NULL;
    struct ibs_buf path = IBS_BUF_INIT;
    size_t depth = 0, cap = 0;
    int rc;

    rc = ibs_buf_puts(&path, "spec");
    if (!rc && (res->spec->type == IBS_VALUE_LIST || res->spec->type == IBS_VALUE_MAP)) {
        cap = 16;
        frames = malloc(cap * sizeof(*frames));
        if (!frames)
            rc = ibs_error_oom();
        else
            frames[depth++] = (struct path_frame){res->spec, 0, path.size, "spec"};
    }
    while (!rc && depth) {
        struct path_frame *fr;
        struct ibs_value **slot;
        const char *member;

        if (depth == cap) {
            struct path_frame *p = realloc(frames, cap * 2 * sizeof(*frames));
            if (!p) {
                rc = ibs_error_oom();
                break;
            }
            frames = p;
            cap *= 2;
        }
        fr = &frames[depth - 1];
        if (fr->next == fr->v->count) {
            depth--;
            continue;
        }
        ibs_buf_truncate(&path, fr->path_len);
        if (fr->v->type == IBS_VALUE_LIST) {
            slot = &fr->v->u.items[fr->next];
            member = fr->member;
            ibs_buf_printf(&path, "[%zu]", fr->next);
        } else {
            slot = &fr->v->u.members[fr->next].value;
            member = fr->v->u.members[fr->next].key;
            ibs_buf_putc(&path, '.');
            ibs_buf_puts(&path, member);
        }
        fr->next++;
        rc = ibs_buf_oom(&path);
        if (rc)
            break;
        if (is_directive(*slot, "file") && (*slot)->count == 1)
            rc = resolve_file(ld, res, doc_file, slot, path.ptr, member);
        else if (is_directive(*slot, "ref"))
            rc = record_ref(ld, res, *slot, path.ptr, member);
        else if ((*slot)->type == IBS_VALUE_LIST || (*slot)->type == IBS_VALUE_MAP)
            frames[depth++] = (struct path_frame){*slot, 0, path.size, member};
    }
    /* Directives inside aliases may come out of order: keep refs in source order. */
    if (!rc)
        ibs_vec_sort(&res->refs, cmp_ref_loc);
    free(frames);
    ibs_buf_release(&path);
    return rc;
}

/* The api validator asks before checking a value: {ref:} and {file:} maps
 * are ours, already checked by walk_spec. */
static bool accept_directives(void *ctx, const struct ibs_value *v,
                              const struct ibs_api_shape *shape, const char *path)
{
    (void)ctx;
    (void)shape;
    (void)path;
    return is_directive(v, "ref") || (is_directive(v, "file") && v->count == 1);
}

static int validate_member(struct loader *ld, const struct ibs_api_shape *request,
                           const char *member, const struct ibs_value *v, const char *path)
{
    const struct ibs_api_member *m = ibs_api_member_find(request, member);
    struct ibs_api_validate_opts vo = {IBS_API_VALIDATE_COERCE_SCALARS, NULL, NULL, NULL};
    int rc;

    if (!m)
        return 0;
    rc = ibs_api_validate(ld->diags, v, m->shape, path, &vo);
    return rc == IBS_EINVALID ? 0 : rc;
}

static int check_tags(struct loader *ld, const struct ibs_value *tags, const char *path)
{
    int rc = 0;

    if (tags->type != IBS_VALUE_MAP)
        return diag(ld, &tags->loc, path, "expected a map of tag keys to values, got a %s",
                    ibs_value_type_name(tags->type));
    for (size_t i = 0; !rc && i < tags->count; i++) {
        const struct ibs_member *m = &tags->u.members[i];
        if (strncmp(m->key, "ibsync:", 7) == 0)
            rc = diag(ld, &m->key_loc, path,
                      "tag key \"%s\" is reserved: ibsync sets ibsync:* tags itself", m->key);
    }
    if (rc)
        return rc;
    /* Keys and values follow the API's tag rules; CreateComponent's tags
     * shape is the same map shape every kind uses. */
    return validate_member(ld, ibs_api_shape_find("CreateComponentRequest"), "tags", tags, path);
}

static int check_metadata(struct loader *ld, struct ibs_resource *res, const struct ibs_value *doc,
                          const struct ibs_api_shape *request)
{
    const struct ibs_member *mm = ibs_value_map_member(doc, "metadata");
    const struct ibs_value *md = mm ? mm->value : NULL;
    const struct ibs_value *name, *tags, *policy;
    int rc = 0;

    if (!md)
        return diag(ld, &doc->loc, NULL, "missing required member \"metadata\"");
    if (md->type != IBS_VALUE_MAP)
        return diag(ld, &md->loc, "metadata", "expected a map, got a %s",
                    ibs_value_type_name(md->type));
    for (size_t i = 0; !rc && i < md->count; i++) {
        const struct ibs_member *m = &md->u.members[i];
        bool known = false;
        for (size_t k = 0; k < NELEM(metadata_keys); k++)
            known = known || strcmp(m->key, metadata_keys[k]) == 0;
        if (!known)
            rc = unknown_key(ld, m, "metadata", metadata_keys, NELEM(metadata_keys));
    }
    if (rc)
        return rc;
    name = ibs_value_map_get(md, "name");
    if (!name) {
        rc = diag(ld, &md->loc, "metadata", "missing required member \"name\"");
    } else if (!ibs_value_is_scalar(name) || name->type == IBS_VALUE_NULL) {
        rc = diag(ld, &name->loc, "metadata.name", "expected a string, got a %s",
                  ibs_value_type_name(name->type));
    } else {
        if (request && (rc = validate_member(ld, request, "name", name, "metadata.name")))
            return rc;
        res->name = strdup(name->str);
        if (!res->name)
            return ibs_error_oom();
    }
    if (rc)
        return rc;
    tags = ibs_value_map_get(md, "tags");
    if (tags && tags->type != IBS_VALUE_NULL) {
        if ((rc = check_tags(ld, tags, "metadata.tags")))
            return rc;
        if (tags->type == IBS_VALUE_MAP && (rc = ibs_value_clone(&res->tags, tags)))
            return rc;
    }
    policy = ibs_value_map_get(md, "deletionPolicy");
    if (policy) {
        if (policy->type == IBS_VALUE_STRING && strcmp(policy->str, "Retain") == 0)
            res->deletion_policy = IBS_DELETION_RETAIN;
        else if (policy->type == IBS_VALUE_STRING && strcmp(policy->str, "Delete") == 0)
            res->deletion_policy = IBS_DELETION_DELETE;
        else
            rc = diag(ld, &policy->loc, "metadata.deletionPolicy",
                      "\"%s\" is not a valid value; expected one of: Delete, Retain",
                      policy->str ? policy->str : ibs_value_type_name(policy->type));
    }
    return rc;
}

static int check_stack(struct loader *ld, const struct ibs_value *doc)
{
    struct ibs_stack *st = &ld->model->stack;
    const struct ibs_value *md = ibs_value_map_get(doc, "metadata");
    const struct ibs_value *spec = ibs_value_map_get(doc, "spec");
    const struct ibs_value *v;
    int rc = 0;

    if (ld->stack_doc) {
        const struct ibs_loc *first = &ld->stack_doc->loc;
        return diag(ld, &doc->loc, NULL, "more than one Stack document; the first is at %s:%u:%u",
                    first->file ? first->file : "?", first->line, first->col);
    }
    ld->stack_doc = doc;
    st->declared = true;
    st->loc = doc->loc;
    if (md && md->type != IBS_VALUE_MAP)
        return diag(ld, &md->loc, "metadata", "expected a map, got a %s",
                    ibs_value_type_name(md->type));
    for (size_t i = 0; md && !rc && i < md->count; i++) {
        const struct ibs_member *m = &md->u.members[i];
        if (strcmp(m->key, "name") != 0)
            rc = unknown_key(ld, m, "metadata", metadata_keys, 1);
    }
    v = ibs_value_map_get(md, "name");
    if (v) {
        bool ok = v->type == IBS_VALUE_STRING && v->len >= 1 && v->len <= 128;
        for (size_t i = 0; ok && i < v->len; i++) {
            char c = v->str[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        }
        if (!ok)
            rc = diag(ld, &v->loc, "metadata.name",
                      "a stack name is 1 to 128 letters, digits, '-', '_' or '.'");
        else if (!(st->name = strdup(v->str)))
            return ibs_error_oom();
    }
    if (rc || !spec)
        return rc;
    if (spec->type != IBS_VALUE_MAP)
        return diag(ld, &spec->loc, "spec", "expected a map, got a %s",
                    ibs_value_type_name(spec->type));
    for (size_t i = 0; !rc && i < spec->count; i++) {
        const struct ibs_member *m = &spec->u.members[i];
        bool known = false;
        for (size_t k = 0; k < NELEM(stack_spec_keys); k++)
            known = known || strcmp(m->key, stack_spec_keys[k]) == 0;
        if (!known)
            rc = unknown_key(ld, m, "spec", stack_spec_keys, NELEM(stack_spec_keys));
    }
    if ((v = ibs_value_map_get(spec, "region"))) {
        bool ok = v->type == IBS_VALUE_STRING && v->len >= 1 && v->len <= 64;
        for (size_t i = 0; ok && i < v->len; i++)
            ok = (v->str[i] >= 'a' && v->str[i] <= 'z') || (v->str[i] >= '0' && v->str[i] <= '9') ||
                 v->str[i] == '-';
        if (!ok)
            rc = diag(ld, &v->loc, "spec.region", "expected an AWS region name such as us-east-1");
        else if (!(st->region = strdup(v->str)))
            return ibs_error_oom();
    }
    if ((v = ibs_value_map_get(spec, "prune"))) {
        if (v->type != IBS_VALUE_BOOL)
            rc = diag(ld, &v->loc, "spec.prune", "expected a boolean, got a %s",
                      ibs_value_type_name(v->type));
        else
            st->prune = v->num.b;
    }
    if ((v = ibs_value_map_get(spec, "retainVersions"))) {
        if (v->type != IBS_VALUE_INT)
            rc = diag(ld, &v->loc, "spec.retainVersions", "expected an integer, got a %s",
                      ibs_value_type_name(v->type));
        else if (v->num.i < 0 || v->num.i > 1000)
            rc = diag(ld, &v->loc, "spec.retainVersions",
                      "value %lld is out of range; expected 0 to 1000", (long long)v->num.i);
        else
            st->retain_versions = (long)v->num.i;
    }
    if ((v = ibs_value_map_get(spec, "tags")) && v->type != IBS_VALUE_NULL) {
        if ((rc = check_tags(ld, v, "spec.tags")))
            return rc;
        if (v->type == IBS_VALUE_MAP && (rc = ibs_value_clone(&st->tags, v)))
            return rc;
    }
    return rc;
}

static int check_document(struct loader *ld, const char *file, struct ibs_value *doc)
{
    const struct ibs_value *api, *kindv, *spec;
    const struct ibs_kind_info *info;
    const struct ibs_api_shape *request;
    struct ibs_resource *res = NULL;
    struct ibs_api_validate_opts vo = {IBS_API_VALIDATE_COERCE_SCALARS, spec_skip,
                                       accept_directives, NULL};
    enum ibs_kind kind;
    size_t errors_before = ld->diags->errors;
    int rc = 0;

    if (doc->type == IBS_VALUE_NULL)
        return 0; /* an empty document, e.g. a trailing "---" */
    if (doc->type != IBS_VALUE_MAP)
        return diag(ld, &doc->loc, NULL,
                    "expected a resource document (a map with apiVersion, kind, metadata and "
                    "spec), got a %s",
                    ibs_value_type_name(doc->type));
    for (size_t i = 0; i < doc->count; i++) {
        const struct ibs_member *m = &doc->u.members[i];
        bool known = false;
        for (size_t k = 0; k < NELEM(envelope_keys); k++)
            known = known || strcmp(m->key, envelope_keys[k]) == 0;
        if (!known && (rc = unknown_key(ld, m, NULL, envelope_keys, NELEM(envelope_keys))))
            return rc;
    }
    api = ibs_value_map_get(doc, "apiVersion");
    if (!api)
        return diag(ld, &doc->loc, NULL,
                    "missing required member \"apiVersion\" (expected \"" IBS_LOADER_API_VERSION
                    "\")");
    if (api->type != IBS_VALUE_STRING || strcmp(api->str, IBS_LOADER_API_VERSION) != 0)
        return diag(ld, &api->loc, "apiVersion", "unsupported apiVersion \"%s\"; expected \"%s\"",
                    api->str ? api->str : ibs_value_type_name(api->type), IBS_LOADER_API_VERSION);
    kindv = ibs_value_map_get(doc, "kind");
    if (!kindv)
        return diag(ld, &doc->loc, NULL, "missing required member \"kind\"");
    if (kindv->type == IBS_VALUE_STRING && strcmp(kindv->str, "Stack") == 0)
        return check_stack(ld, doc);
    if (kindv->type != IBS_VALUE_STRING || ibs_model_kind_parse(&kind, kindv->str)) {
        const char *names[IBS_KIND_COUNT + 1];
        const char *s;
        memcpy(names, ibs_model_kind_names(), IBS_KIND_COUNT * sizeof(char *));
        names[IBS_KIND_COUNT] = "Stack";
        s = kindv->str ? ibs_text_suggest(kindv->str, names, IBS_KIND_COUNT + 1) : NULL;
        if (s)
            return diag(ld, &kindv->loc, "kind", "unknown kind \"%s\"; did you mean \"%s\"?",
                        kindv->str, s);
        return diag(ld, &kindv->loc, "kind",
                    "unknown kind \"%s\"; expected one of: Component, Workflow, ImageRecipe, "
                    "ContainerRecipe, InfrastructureConfiguration, DistributionConfiguration, "
                    "ImagePipeline, LifecyclePolicy, Stack",
                    kindv->str ? kindv->str : ibs_value_type_name(kindv->type));
    }
    info = ibs_model_kind_info(kind);
    request = NULL;
    {
        char shape_name[96];
        snprintf(shape_name, sizeof(shape_name), "%sRequest", info->create_op);
        request = ibs_api_shape_find(shape_name);
    }
    if (!request)
        return ibs_error_set(IBS_ERROR, "API model has no request shape for %s", info->create_op);

    res = calloc(1, sizeof(*res));
    if (!res)
        return ibs_error_oom();
    res->kind = kind;
    res->loc = doc->loc;
    if ((rc = check_metadata(ld, res, doc, request)))
        goto done;
    spec = ibs_value_map_get(doc, "spec");
    if (!spec) {
        rc = diag(ld, &doc->loc, NULL, "missing required member \"spec\"");
        goto done;
    }
    if (spec->type != IBS_VALUE_MAP) {
        rc = diag(ld, &spec->loc, "spec", "expected a map, got a %s",
                  ibs_value_type_name(spec->type));
        goto done;
    }
    /* The parsed document is not used again: move its spec into the
     * resource instead of copying it (specs hold whole documents). */
    res->spec = ibs_value_map_take(doc, "spec");
    if ((rc = walk_spec(ld, res, file)))
        goto done;
    rc = ibs_api_validate(ld->diags, res->spec, request, "spec", &vo);
    if (rc == IBS_EINVALID)
        rc = 0;
    if (rc)
        goto done;
    if (info->versioned) {
        const char *v = ibs_value_map_get_str(res->spec, "semanticVersion");
        if (v && !(res->version = strdup(v))) {
            rc = ibs_error_oom();
            goto done;
        }
    }
    /* Keep only documents that can take part in cross-document checks. */
    if (!res->name || (info->versioned && !res->version && ld->diags->errors > errors_before))
        goto done;
    if ((rc = ibs_vec_push(&ld->model->resources, res)))
        goto done;
    res = NULL;
done:
    ibs_model_resource_free(res);
    return rc;
}

static const char *article(const char *word)
{
    return strchr("AEIOU", word[0]) ? "an" : "a";
}

/* --- pass 4: across documents ---------------------------------------------- */

static int cmp_identity(const struct ibs_resource *a, const struct ibs_resource *b)
{
    int c;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    c = strcmp(a->name, b->name);
    if (c)
        return c;
    if (!a->version || !b->version)
        return (a->version != NULL) - (b->version != NULL);
    return strcmp(a->version, b->version);
}

static int cmp_res_ptr(const void *pa, const void *pb)
{
    const struct ibs_resource *a = *(const struct ibs_resource *const *)pa;
    const struct ibs_resource *b = *(const struct ibs_resource *const *)pb;
    int c = cmp_identity(a, b);
    if (c)
        return c;
    /* Equal identities: source order (file, line) so the first is first. */
    c = strcmp(a->loc.file ? a->loc.file : "", b->loc.file ? b->loc.file : "");
    if (c)
        return c;
    return a->loc.line < b->loc.line ? -1 : a->loc.line > b->loc.line;
}

static int check_duplicates(struct loader *ld, struct ibs_resource **sorted, size_t n)
{
    int rc = 0;
    for (size_t i = 1; !rc && i < n; i++) {
        const struct ibs_resource *a = sorted[i - 1], *b = sorted[i];
        const struct ibs_kind_info *info = ibs_model_kind_info(b->kind);
        if (cmp_identity(a, b) != 0)
            continue;
        if (b->version)
            rc = diag(ld, &b->loc, "metadata.name",
                      "duplicate %s \"%s\" version %s; first declared at %s:%u:%u", info->name,
                      b->name, b->version, a->loc.file, a->loc.line, a->loc.col);
        else
            rc = diag(ld, &b->loc, "metadata.name",
                      "duplicate %s \"%s\"; first declared at %s:%u:%u", info->name, b->name,
                      a->loc.file, a->loc.line, a->loc.col);
    }
    return rc;
}

/* First index in `sorted` with (kind, name) >= the key. */
static size_t lower_bound(struct ibs_resource **sorted, size_t n, enum ibs_kind kind,
                          const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct ibs_resource *r = sorted[mid];
        int c = r->kind != kind ? (r->kind < kind ? -1 : 1) : strcmp(r->name, name);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int resolve_ref(struct loader *ld, struct ibs_resource *res, struct ibs_ref *ref,
                       struct ibs_resource **sorted, size_t n)
{
    const struct ibs_kind_info *want = ibs_model_kind_info(ref->kind);
    char *path = child_path("spec", ref->path, 0, false);
    size_t i = lower_bound(sorted, n, ref->kind, ref->name);
    size_t matches = 0;
    struct ibs_resource *found = NULL;
    int rc = 0;

    (void)res;
    if (!path)
        return IBS_ENOMEM;
    for (; i < n && sorted[i]->kind == ref->kind && strcmp(sorted[i]->name, ref->name) == 0; i++) {
        struct ibs_resource *r = sorted[i];
        if (ref->version && (!r->version || strcmp(r->version, ref->version) != 0))
            continue;
        matches++;
        if (!found)
            found = r;
        /* Several versions: keep the last in sort order for the hint. */
        else if (r->version)
            found = r;
    }
    /* Unversioned kinds cannot match twice except as duplicates, which are
     * already reported: the first declaration is the target then. */
    if (matches == 1 || (matches > 1 && !found->version)) {
        ref->target = matches == 1 ? found : sorted[lower_bound(sorted, n, ref->kind, ref->name)];
        goto done;
    }
    if (matches > 1) {
        rc = diag(ld, &ref->loc, path,
                  "ref \"%s\" is ambiguous: %s \"%s\" is declared in %zu versions; add "
                  "version: to choose one (e.g. version: %s)",
                  ref->name, want->name, ref->name, matches, found->version);
        goto done;
    }
    if (ref->version && ibs_model_find(ld->model, ref->kind, ref->name, NULL)) {
        rc = diag(ld, &ref->loc, path, "no version %s of %s \"%s\" is declared", ref->version,
                  want->name, ref->name);
        goto done;
    }
    /* Same name under another kind? */
    for (int k = 0; k < IBS_KIND_COUNT; k++) {
        if ((enum ibs_kind)k != ref->kind &&
            ibs_model_find(ld->model, (enum ibs_kind)k, ref->name, NULL)) {
            rc = diag(ld, &ref->loc, path, "ref \"%s\" names %s %s, but %s refers to %s %s",
                      ref->name, article(ibs_model_kind_info((enum ibs_kind)k)->name),
                      ibs_model_kind_info((enum ibs_kind)k)->name, ref->member, article(want->name),
                      want->name);
            goto done;
        }
    }
    {
        const char **names = NULL;
        size_t count = 0;
        const char *s = NULL;
        size_t start = lower_bound(sorted, n, ref->kind, "");
        names = malloc((n ? n : 1) * sizeof(*names));
        if (!names) {
            rc = ibs_error_oom();
            goto done;
        }
        for (size_t j = start; j < n && sorted[j]->kind == ref->kind; j++)
            names[count++] = sorted[j]->name;
        s = ibs_text_suggest(ref->name, names, count);
        if (s)
            rc = diag(ld, &ref->loc, path,
                      "unresolved ref: no %s named \"%s\" is declared; did you mean \"%s\"?",
                      want->name, ref->name, s);
        else
            rc = diag(ld, &ref->loc, path, "unresolved ref: no %s named \"%s\" is declared",
                      want->name, ref->name);
        free(names);
    }
done:
    free(path);
    return rc;
}

struct cycle_ctx {
    struct loader *ld;
};

static int report_cycle(void *ctx, const size_t *cycle, size_t len)
{
    struct cycle_ctx *cc = ctx;
    struct ibs_buf msg = IBS_BUF_INIT;
    struct ibs_resource *first = cc->ld->model->resources.items[cycle[0]];
    struct ibs_loc loc = first->loc;
    int rc;

    ibs_buf_puts(&msg, "reference cycle: ");
    for (size_t i = 0; i <= len; i++) {
        struct ibs_resource *r = cc->ld->model->resources.items[cycle[i % len]];
        ibs_buf_printf(&msg, "%s%s/%s", i ? " -> " : "", ibs_model_kind_info(r->kind)->name,
                       r->name);
    }
    /* Point at the ref in the first resource that leads into the cycle. */
    for (size_t k = 0; k < first->refs.count; k++) {
        struct ibs_ref *ref = first->refs.items[k];
        if (len > 1 && ref->target == cc->ld->model->resources.items[cycle[1]])
            loc = ref->loc;
        else if (len == 1 && ref->target == first)
            loc = ref->loc;
    }
    if ((rc = ibs_buf_oom(&msg)))
        goto done;
    rc = diag(cc->ld, &loc, NULL, "%s", msg.ptr);
done:
    ibs_buf_release(&msg);
    return rc;
}

static int check_cycles(struct loader *ld)
{
    struct ibs_model *m = ld->model;
    struct ibs_graph g;
    struct cycle_ctx cc = {ld};
    int rc;

    if ((rc = ibs_graph_init(&g, m->resources.count)))
        return rc;
    for (size_t i = 0; i < m->resources.count; i++) {
        struct ibs_resource *r = m->resources.items[i];
        for (size_t k = 0; k < r->refs.count; k++) {
            struct ibs_ref *ref = r->refs.items[k];
            if (ref->target && (rc = ibs_graph_add_edge(&g, i, ref->target->index)))
                goto done;
        }
    }
    rc = ibs_graph_cycles(&g, report_cycle, &cc);
    if (rc > 0)
        rc = 0;
done:
    ibs_graph_release(&g);
    return rc;
}

static int cross_checks(struct loader *ld)
{
    struct ibs_model *m = ld->model;
    struct ibs_resource **sorted = NULL;
    size_t n = m->resources.count;
    int rc = 0;

    if (n == 0)
        return 0;
    sorted = malloc(n * sizeof(*sorted));
    if (!sorted)
        return ibs_error_oom();
    for (size_t i = 0; i < n; i++)
        ((struct ibs_resource *)m->resources.items[i])->index = i;
    memcpy(sorted, m->resources.items, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_res_ptr);
    if ((rc = check_duplicates(ld, sorted, n)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        struct ibs_resource *r = m->resources.items[i];
        for (size_t k = 0; k < r->refs.count; k++)
            if ((rc = resolve_ref(ld, r, r->refs.items[k], sorted, n)))
                goto done;
    }
    rc = check_cycles(ld);
done:
    free(sorted);
    return rc;
}

/* --- preview stacks --------------------------------------------------------- */

/* Renames every resource to PREFIX+name (refs follow, since they point at
 * resources), including recipe names in lifecycle policy selections, and
 * checks the new names against the API's rules. */
static int apply_prefix(struct loader *ld, const char *prefix)
{
    struct ibs_model *m = ld->model;
    int rc = 0;

    for (size_t i = 0; !rc && i < m->resources.count; i++) {
        struct ibs_resource *r = m->resources.items[i];
        const struct ibs_kind_info *info = ibs_model_kind_info(r->kind);
        char shape_name[96];
        const struct ibs_api_shape *request;
        struct ibs_value *name;
        struct ibs_buf b = IBS_BUF_INIT;

        ibs_buf_printf(&b, "%s%s", prefix, r->name);
        if (!(name = ibs_value_new_string(b.ptr))) {
            ibs_buf_release(&b);
            return IBS_ENOMEM;
        }
        name->loc = r->loc;
        free(r->name);
        r->name = ibs_buf_detach(&b);
        if (!r->name) {
            ibs_value_free(name);
            return IBS_ENOMEM;
        }
        snprintf(shape_name, sizeof(shape_name), "%sRequest", info->create_op);
        request = ibs_api_shape_find(shape_name);
        if (request)
            rc = validate_member(ld, request, "name", name, "metadata.name");
        ibs_value_free(name);
    }
    for (size_t i = 0; !rc && i < m->resources.count; i++) {
        struct ibs_resource *r = m->resources.items[i];
        const struct ibs_value *sel = ibs_value_map_get(r->spec, "resourceSelection");
        struct ibs_value *recipes = (struct ibs_value *)ibs_value_map_get(sel, "recipes");
        if (r->kind != IBS_KIND_LIFECYCLE_POLICY || !recipes || recipes->type != IBS_VALUE_LIST)
            continue;
        for (size_t k = 0; !rc && k < recipes->count; k++) {
            struct ibs_value *item = recipes->u.items[k];
            const char *n = ibs_value_map_get_str(item, "name");
            struct ibs_buf b = IBS_BUF_INIT;
            char orig[256];
            if (!n)
                continue;
            snprintf(orig, sizeof(orig), "%s%s", prefix, n);
            if (!ibs_model_find(m, IBS_KIND_IMAGE_RECIPE, orig, NULL) &&
                !ibs_model_find(m, IBS_KIND_CONTAINER_RECIPE, orig, NULL))
                continue;
            ibs_buf_puts(&b, orig);
            if ((rc = ibs_buf_oom(&b)))
                break;
            rc = ibs_value_map_set(item, "name", ibs_value_new_string(b.ptr));
            ibs_buf_release(&b);
        }
    }
    return rc;
}

/* --- driver ---------------------------------------------------------------- */

static int merge_diags(struct ibs_diags *into, const struct ibs_diags *from)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < from->count; i++) {
        const struct ibs_diag *d = &from->items[i];
        struct ibs_loc loc = {d->file, d->line, d->col};
        rc = ibs_diag_add(into, d->severity, &loc, d->path, "%s", d->message);
    }
    return rc;
}

static int run(struct loader *ld, const char *default_name, const struct ibs_loader_options *opts)
{
    struct ibs_model *m = ld->model;
    int rc = 0;

    for (size_t i = 0; i < ld->files.count; i++) {
        struct parsed_file *f = ld->files.items[i];
        for (size_t d = 0; d < f->docs.count; d++)
            if ((rc = collect_file_refs(ld, f->name, f->docs.items[d])))
                return rc;
    }
    ibs_vec_sort(&ld->data_paths, cmp_str_ptr);
    for (size_t i = 0; i < ld->files.count; i++) {
        struct parsed_file *f = ld->files.items[i];
        f->is_data = is_data_path(ld, f->name);
        if (f->is_data)
            continue;
        if ((rc = merge_diags(ld->diags, &f->diags)))
            return rc;
        for (size_t d = 0; d < f->docs.count; d++)
            if ((rc = check_document(ld, f->name, f->docs.items[d])))
                return rc;
    }
    if ((rc = cross_checks(ld)))
        return rc;
    if (opts && opts->name_prefix && *opts->name_prefix &&
        (rc = apply_prefix(ld, opts->name_prefix)))
        return rc;
    if (opts && opts->stack_name) {
        free(m->stack.name);
        m->stack.name = strdup(opts->stack_name);
        if (!m->stack.name)
            return ibs_error_oom();
    } else if (!m->stack.name && default_name) {
        m->stack.name = strdup(default_name);
        if (!m->stack.name)
            return ibs_error_oom();
    }
    return 0;
}

static void loader_init(struct loader *ld, struct ibs_model *model, struct ibs_diags *diags,
                        struct ibs_source *src, const struct ibs_loader_options *opts)
{
    memset(ld, 0, sizeof(*ld));
    ld->model = model;
    ld->diags = diags;
    ld->src = src;
    ld->max_file_size =
        opts && opts->max_file_size ? opts->max_file_size : IBS_LOADER_DEFAULT_MAX_FILE;
}

static void loader_release(struct loader *ld)
{
    ibs_vec_release_with(&ld->files, parsed_file_free);
    ibs_vec_release_with(&ld->data_paths, free);
}

static int finish(struct loader *ld, int rc)
{
    if (rc == 0 && ld->diags->errors)
        rc = IBS_EINVALID;
    if (rc == IBS_EINVALID)
        ibs_error_set(IBS_EINVALID, "desired state has %zu error%s", ld->diags->errors,
                      ld->diags->errors == 1 ? "" : "s");
    ibs_diag_sort(ld->diags);
    return rc;
}

int ibs_loader_load(struct ibs_model *model, struct ibs_diags *diags, struct ibs_source *src,
                    const struct ibs_loader_options *opts)
{
    struct loader ld;
    struct ibs_vec paths = IBS_VEC_INIT;
    const char *commit = ibs_source_commit(src);
    int rc;

    loader_init(&ld, model, diags, src, opts);
    if ((commit && !(model->commit = strdup(commit))) ||
        !(model->source = strdup(ibs_source_describe(src)))) {
        rc = ibs_error_oom();
        goto done;
    }
    if ((rc = ibs_source_list(&paths, src)))
        goto done;
    for (size_t i = 0; i < paths.count; i++) {
        if (!has_yaml_ext(paths.items[i]))
            continue;
        if ((rc = read_and_parse(&ld, paths.items[i])))
            goto done;
    }
    rc = run(&ld, ibs_source_name(src), opts);
done:
    rc = finish(&ld, rc);
    ibs_vec_release_with(&paths, free);
    loader_release(&ld);
    return rc;
}

int ibs_loader_load_buffer(struct ibs_model *model, struct ibs_diags *diags, const char *file,
                           const char *data, size_t len, const struct ibs_loader_options *opts)
{
    struct loader ld;
    int rc;

    loader_init(&ld, model, diags, NULL, opts);
    if (!(model->source = strdup(file))) {
        rc = ibs_error_oom();
        goto done;
    }
    if (len > ld.max_file_size) {
        struct ibs_loc loc = {ibs_model_intern_file(model, file), 0, 0};
        rc = ibs_diag_add(diags, IBS_SEV_ERROR, &loc, NULL, "file is %zu bytes; the limit is %zu",
                          len, ld.max_file_size);
        goto done;
    }
    if ((rc = parse_file(&ld, file, data, len)))
        goto done;
    rc = run(&ld, "default", opts);
done:
    rc = finish(&ld, rc);
    loader_release(&ld);
    return rc;
}
