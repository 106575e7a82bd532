/*
 * Create/Get/Update/Delete of the eight resource kinds, tags and resource
 * policies.
 *
 * A resource is stored as the document its Get operation returns, minus
 * what is computed at read time (dates, tags, image state): Create copies
 * the request (without clientToken and tags; semanticVersion becomes
 * version), adds arn/owner, then fills in what the service derives or
 * defaults. Reads project the document onto the operation's output shape,
 * so members the API does not return for that operation (a component's
 * uri, a container recipe's platformOverride) stay stored but unseen.
 *
 * Service defaults, as Get and List return them on AWS:
 *
 *   kind                         member                         default / derivation
 *   ---------------------------  -----------------------------  -------------------------------
 *   every kind                   owner                          the account id
 *   every kind                   dateCreated                    creation time, ISO-8601 UTC with
 *                                                               milliseconds (lifecycle policy:
 *                                                               epoch seconds, its shape is a
 *                                                               timestamp)
 *   infra/dist/pipeline/lifecycle dateUpdated                   set by the first Update
 *   component                    type                           BUILD when the document has a
 *                                                               build or validate phase, TEST
 *                                                               when it has only test phases
 *                                                               (the service reads the phases)
 *   component                    encrypted                      true: the service always encrypts
 *                                                               component data, with an AWS owned
 *                                                               key when no kmsKeyId is given
 *   component, workflow          parameters                     parsed from the document's
 *                                                               parameters section
 *   image recipe                 type                           AMI
 *   image recipe                 platform                       platform of its first component
 *                                                               in this account, else Windows
 *                                                               when parentImage names Windows,
 *                                                               else Linux (the service reads the
 *                                                               parent image, which we cannot)
 *   container recipe             platform                       platformOverride, else Linux
 *   infrastructure configuration terminateInstanceOnFailure     true (the reference: instances
 *                                                               are terminated on failure unless
 *                                                               told otherwise)
 *   distribution configuration   timeoutMinutes                 720 (required in the output shape;
 *                                                               the service's fixed value)
 *   image pipeline               status                         ENABLED
 *   image pipeline               enhancedImageMetadataEnabled   true ("Enabled by default")
 *   image pipeline               imageTestsConfiguration        {imageTestsEnabled: true,
 *                                                               timeoutMinutes: 720}, missing
 *                                                               members filled in
 *   image pipeline               schedule.pipelineExecution-    EXPRESSION_MATCH_AND_DEPENDENCY_
 *                                StartCondition                 UPDATES_AVAILABLE when a schedule
 *                                                               is given
 *   image pipeline               platform                       the recipe's platform
 *   lifecycle policy             status                         ENABLED
 *   image                        see images.c
 *
 * Update operations replace every mutable member ("UpdateImagePipeline does
 * not support selective updates"): members absent from the request are
 * removed, then the defaults are applied again.
 *
 * References: a recipe's components, a recipe's parent image when it is an
 * image of this account, and a pipeline's recipe, configurations and
 * workflows must exist when they name this account (ARNs of other accounts,
 * such as Amazon-managed components "arn:aws:imagebuilder:<r>:aws:...", are
 * taken as given). They are recorded, and deleting a resource that a
 * recorded reference matches (exactly, or through a version ARN with "x"
 * wildcards) fails with ResourceDependencyException.
 */
#include "providers/emulator/internal.h"

#include "util/diag.h"
#include "util/error.h"
#include "util/json.h"
#include "util/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TIMEOUT_MINUTES 720

static int not_found(struct ibs_emulator_req *req, const char *arn)
{
    return ibs_emulator_fail(req, "ResourceNotFoundException",
                             "The resource ARN '%s' does not exist.", arn);
}

static int invalid_param(struct ibs_emulator_req *req, const char *member, const char *why)
{
    return ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                             "The value supplied for parameter '%s' is not valid. %s", member, why);
}

/* The record with exactly `arn`, which must be of `kind` (IBS_EMU_NO_KIND:
 * any). Records ResourceNotFoundException when absent. */
static int lookup_exact(struct ibs_emulator_record **out, struct ibs_emulator_req *req,
                        enum ibs_emulator_kind_id kind, const char *arn)
{
    int rc = ibs_emulator_store_get(out, req->emu, arn);

    if (rc == IBS_ENOTFOUND || (rc == 0 && kind != IBS_EMU_NO_KIND && (*out)->kind != kind)) {
        ibs_emulator_record_free(*out);
        *out = NULL;
        return not_found(req, arn);
    }
    return rc;
}

static bool is_local(const struct ibs_emulator_req *req, const struct ibs_emulator_arn *a)
{
    return strcmp(a->region, req->emu->region) == 0 && strcmp(a->account, req->emu->account) == 0;
}

/* Whether record `rec` is one that the (parsed) ARN `a` names or matches. */
static bool arn_matches(const struct ibs_emulator_arn *a, const struct ibs_emulator_record *rec)
{
    struct ibs_emulator_semver pattern, v;

    if (a->kind->id != rec->kind || strcmp(a->path, rec->path) != 0)
        return false;
    if (!a->version)
        return true;
    if (!rec->version ||
        !ibs_emulator_semver_parse(&pattern, a->version, strlen(a->version), true) ||
        !ibs_emulator_semver_parse(&v, rec->version, strlen(rec->version), false))
        return false;
    if (!ibs_emulator_semver_match(&pattern, &v))
        return false;
    return a->build == 0 || a->build == rec->build;
}

/* Orders records by version, then build. */
static int record_cmp_version(const struct ibs_emulator_record *a,
                              const struct ibs_emulator_record *b)
{
    int c = ibs_emulator_semver_cmp(a->version ? a->version : "", b->version ? b->version : "");
    if (c)
        return c;
    return a->build < b->build ? -1 : a->build > b->build;
}

int ibs_emulator_resolve(struct ibs_emulator_record **out, struct ibs_emulator_req *req,
                         enum ibs_emulator_kind_id kind, const char *arn)
{
    struct ibs_emulator_arn a;
    struct ibs_vec recs = IBS_VEC_INIT;
    struct ibs_emulator_record *best = NULL;
    int rc;

    *out = NULL;
    if (!ibs_emulator_arn_parse(&a, arn))
        return IBS_ENOTFOUND;
    if (a.kind->id != kind || !is_local(req, &a)) {
        rc = IBS_ENOTFOUND;
        goto done;
    }
    rc = ibs_emulator_store_get(out, req->emu, arn);
    if (rc != IBS_ENOTFOUND || !a.kind->versioned)
        goto done;
    /* A version ARN (possibly with wildcards) or a versionless ARN: the
     * latest matching build, as the service resolves them. */
    if ((rc = ibs_emulator_store_scan(&recs, req->emu, kind, a.path, NULL, false)))
        goto done;
    for (size_t i = 0; i < recs.count; i++) {
        struct ibs_emulator_record *r = recs.items[i];
        if (arn_matches(&a, r) && (!best || record_cmp_version(r, best) > 0))
            best = r;
    }
    if (!best) {
        rc = IBS_ENOTFOUND;
        goto done;
    }
    if ((rc = ibs_emulator_store_load_doc(req->emu, best)))
        goto done;
    for (size_t i = 0; i < recs.count; i++)
        if (recs.items[i] == best)
            recs.items[i] = NULL;
    *out = best;
done:
    ibs_vec_release_with(&recs, ibs_emulator_record_free_item);
    ibs_emulator_arn_release(&a);
    return rc;
}

int ibs_emulator_view(struct ibs_value **out, struct ibs_emulator_req *req,
                      const struct ibs_emulator_record *rec)
{
    struct ibs_value *view = NULL, *tags = NULL;
    char date[40];
    int rc;

    *out = NULL;
    if ((rc = ibs_value_clone(&view, rec->doc)))
        return rc;
    ibs_emulator_iso8601(date, sizeof(date), rec->created_ms);
    if ((rc = ibs_emulator_set_str(view, "dateCreated", date)))
        goto done;
    if (rec->updated_ms) {
        ibs_emulator_iso8601(date, sizeof(date), rec->updated_ms);
        if ((rc = ibs_emulator_set_str(view, "dateUpdated", date)))
            goto done;
    }
    if ((rc = ibs_emulator_store_tags_get(&tags, req->emu, rec->arn)))
        goto done;
    if ((rc = ibs_value_map_set(view, "tags", tags)))
        goto done;
    if (rec->kind == IBS_EMU_IMAGE && (rc = ibs_emulator_image_decorate(req, view, rec)))
        goto done;
    *out = view;
    view = NULL;
done:
    ibs_value_free(view);
    return rc;
}

/* Component and workflow documents (YAML): phases and parameters. */

static int parse_document(struct ibs_value **out, struct ibs_emulator_req *req, const char *data)
{
    struct ibs_vec docs = IBS_VEC_INIT;
    struct ibs_diags diags;
    int rc;

    *out = NULL;
    ibs_diag_init(&diags);
    rc = ibs_yaml_parse(&docs, &diags, "data", data, strlen(data), NULL);
    if (rc == IBS_EINVALID && diags.count > 0) {
        ibs_diag_sort(&diags);
        rc = ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                               "The value supplied for parameter 'data' is not valid. The "
                               "document is not valid YAML: line %u, column %u: %s",
                               diags.items[0].line, diags.items[0].col, diags.items[0].message);
        goto done;
    }
    if (rc)
        goto done;
    if (docs.count > 0) {
        *out = docs.items[0];
        docs.items[0] = NULL;
    }
done:
    ibs_vec_release_with(&docs, (void (*)(void *))ibs_value_free);
    ibs_diag_release(&diags);
    return rc;
}

static const char *component_type(const struct ibs_value *doc)
{
    const struct ibs_value *phases = ibs_value_map_get(doc, "phases");
    bool test = false;

    if (!phases || phases->type != IBS_VALUE_LIST)
        return "BUILD";
    for (size_t i = 0; i < phases->count; i++) {
        const char *name = ibs_value_map_get_str(phases->u.items[i], "name");
        if (!name)
            continue;
        if (strcasecmp(name, "build") == 0 || strcasecmp(name, "validate") == 0)
            return "BUILD";
        if (strcasecmp(name, "test") == 0)
            test = true;
    }
    return test ? "TEST" : "BUILD";
}

/* One parameter: `name` and its attributes map {type, default, description}. */
static int add_parameter(struct ibs_value *list, const char *name, const struct ibs_value *attrs)
{
    struct ibs_value *p = ibs_value_new_map(), *defaults = NULL;
    const struct ibs_value *def = ibs_value_map_get(attrs, "default");
    const char *type = ibs_value_map_get_str(attrs, "type");
    const char *desc = ibs_value_map_get_str(attrs, "description");
    int rc;

    if (!p)
        return IBS_ENOMEM;
    if ((rc = ibs_emulator_set_str(p, "name", name)) ||
        (rc = ibs_emulator_set_str(p, "type", type ? type : "string")))
        goto done;
    if (def && def->type != IBS_VALUE_NULL) {
        if (!(defaults = ibs_value_new_list())) {
            rc = IBS_ENOMEM;
            goto done;
        }
        if (def->type == IBS_VALUE_LIST) {
            for (size_t i = 0; i < def->count && !rc; i++)
                if (def->u.items[i]->str)
                    rc =
                        ibs_value_list_append(defaults, ibs_value_new_string(def->u.items[i]->str));
        } else if (def->str) {
            rc = ibs_value_list_append(defaults, ibs_value_new_string(def->str));
        }
        if (rc) {
            ibs_value_free(defaults);
            goto done;
        }
        if ((rc = ibs_value_map_set(p, "defaultValue", defaults)))
            goto done;
    }
    if (desc && (rc = ibs_emulator_set_str(p, "description", desc)))
        goto done;
    rc = ibs_value_list_append(list, p);
    p = NULL;
done:
    ibs_value_free(p);
    return rc;
}

/*
 * The parameters section of a component document (a list of one-member
 * maps "Name: {type, default, description}") or of a workflow document (a
 * list of maps with a "name" member) as ComponentParameterDetail /
 * WorkflowParameterDetail lists. *out is NULL when there are none.
 */
static int document_parameters(struct ibs_value **out, const struct ibs_value *doc)
{
    const struct ibs_value *params = ibs_value_map_get(doc, "parameters");
    struct ibs_value *list = NULL;
    int rc = 0;

    *out = NULL;
    if (!params || params->type != IBS_VALUE_LIST || params->count == 0)
        return 0;
    if (!(list = ibs_value_new_list()))
        return IBS_ENOMEM;
    for (size_t i = 0; i < params->count; i++) {
        const struct ibs_value *item = params->u.items[i];
        const char *name = ibs_value_map_get_str(item, "name");
        if (name)
            rc = add_parameter(list, name, item);
        else if (item->type == IBS_VALUE_MAP && item->count == 1)
            rc = add_parameter(list, item->u.members[0].key, item->u.members[0].value);
        if (rc)
            goto done;
    }
    *out = list;
    list = NULL;
done:
    ibs_value_free(list);
    return rc;
}

/* data xor uri, as CreateComponent and CreateWorkflow require. */
static int check_data_or_uri(struct ibs_emulator_req *req, const struct ibs_value *doc)
{
    bool data = ibs_value_map_get(doc, "data") != NULL, uri = ibs_value_map_get(doc, "uri") != NULL;

    if (data && uri)
        return ibs_emulator_fail(req, "InvalidParameterCombinationException",
                                 "You can specify either 'data' or 'uri', but not both.");
    if (!data && !uri)
        return ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                                 "You must specify either 'data' or 'uri'.");
    return 0;
}

static int finish_document_kind(struct ibs_emulator_req *req, struct ibs_value *doc)
{
    const char *data = ibs_value_map_get_str(doc, "data");
    struct ibs_value *parsed = NULL, *params = NULL;
    int rc;

    if ((rc = check_data_or_uri(req, doc)))
        return rc;
    if (data && (rc = parse_document(&parsed, req, data)))
        goto done;
    if (req->kind == IBS_EMU_COMPONENT) {
        if ((rc = ibs_emulator_set_str(doc, "type", component_type(parsed))) ||
            (rc = ibs_emulator_set_bool(doc, "encrypted", true)))
            goto done;
    }
    if ((rc = document_parameters(&params, parsed)))
        goto done;
    if (params && (rc = ibs_value_map_set(doc, "parameters", params)))
        goto done;
done:
    ibs_value_free(parsed);
    return rc;
}

/* Platform of an image recipe; see the defaults table. */
static int recipe_platform(struct ibs_emulator_req *req, const struct ibs_value *doc,
                           const char **out)
{
    const struct ibs_value *components = ibs_value_map_get(doc, "components");
    const char *parent = ibs_value_map_get_str(doc, "parentImage");
    int rc;

    *out = NULL;
    for (size_t i = 0; components && components->type == IBS_VALUE_LIST && i < components->count;
         i++) {
        const char *arn = ibs_value_map_get_str(components->u.items[i], "componentArn");
        struct ibs_emulator_record *rec = NULL;
        if (!arn)
            continue;
        rc = ibs_emulator_resolve(&rec, req, IBS_EMU_COMPONENT, arn);
        if (rc == IBS_ENOTFOUND)
            continue;
        if (rc)
            return rc;
        const char *platform = ibs_value_map_get_str(rec->doc, "platform");
        *out = platform && strcmp(platform, "Windows") == 0 ? "Windows" : "Linux";
        ibs_emulator_record_free(rec);
        return 0;
    }
    *out = "Linux";
    for (const char *c = parent; c && *c; c++)
        if (strncasecmp(c, "windows", 7) == 0)
            *out = "Windows";
    return 0;
}

static int set_default_bool(struct ibs_value *map, const char *key, bool b)
{
    return ibs_value_map_get(map, key) ? 0 : ibs_emulator_set_bool(map, key, b);
}

static int set_default_str(struct ibs_value *map, const char *key, const char *s)
{
    return ibs_value_map_get(map, key) ? 0 : ibs_emulator_set_str(map, key, s);
}

static int finish_pipeline(struct ibs_emulator_req *req, struct ibs_value *doc)
{
    const char *image_recipe = ibs_value_map_get_str(doc, "imageRecipeArn");
    const char *container_recipe = ibs_value_map_get_str(doc, "containerRecipeArn");
    struct ibs_value *tests, *schedule;
    struct ibs_emulator_record *recipe = NULL;
    const char *platform = "Linux";
    int rc;

    if (!image_recipe == !container_recipe)
        return ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                                 "You must specify exactly one of 'imageRecipeArn' or "
                                 "'containerRecipeArn'.");
    if ((rc = set_default_str(doc, "status", "ENABLED")) ||
        (rc = set_default_bool(doc, "enhancedImageMetadataEnabled", true)))
        return rc;
    tests = ibs_value_map_get(doc, "imageTestsConfiguration");
    if (!tests) {
        if (!(tests = ibs_value_new_map()))
            return IBS_ENOMEM;
        if ((rc = ibs_value_map_set(doc, "imageTestsConfiguration", tests)))
            return rc;
    }
    if ((rc = set_default_bool(tests, "imageTestsEnabled", true)))
        return rc;
    if (!ibs_value_map_get(tests, "timeoutMinutes") &&
        (rc = ibs_emulator_set_int(tests, "timeoutMinutes", DEFAULT_TIMEOUT_MINUTES)))
        return rc;
    schedule = ibs_value_map_get(doc, "schedule");
    if (schedule && schedule->type == IBS_VALUE_MAP &&
        (rc = set_default_str(schedule, "pipelineExecutionStartCondition",
                              "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE")))
        return rc;
    rc = ibs_emulator_resolve(&recipe, req,
                              image_recipe ? IBS_EMU_IMAGE_RECIPE : IBS_EMU_CONTAINER_RECIPE,
                              image_recipe ? image_recipe : container_recipe);
    if (rc == 0) {
        const char *p = ibs_value_map_get_str(recipe->doc, "platform");
        if (p)
            platform = strcmp(p, "Windows") == 0 ? "Windows" : "Linux";
    } else if (rc != IBS_ENOTFOUND) {
        return rc;
    }
    ibs_emulator_record_free(recipe);
    return ibs_emulator_set_str(doc, "platform", platform);
}

/* Kind-specific derivations and defaults (the table at the top). */
static int finish_doc(struct ibs_emulator_req *req, struct ibs_value *doc)
{
    const char *platform = NULL;
    int rc = 0;

    switch (req->kind) {
    case IBS_EMU_COMPONENT:
    case IBS_EMU_WORKFLOW:
        return finish_document_kind(req, doc);
    case IBS_EMU_IMAGE_RECIPE:
        if ((rc = ibs_emulator_set_str(doc, "type", "AMI")) ||
            (rc = recipe_platform(req, doc, &platform)))
            return rc;
        return ibs_emulator_set_str(doc, "platform", platform);
    case IBS_EMU_CONTAINER_RECIPE: {
        const char *override = ibs_value_map_get_str(doc, "platformOverride");
        bool data = ibs_value_map_get(doc, "dockerfileTemplateData") != NULL;
        bool uri = ibs_value_map_get(doc, "dockerfileTemplateUri") != NULL;
        if (data == uri)
            return ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                                     "You must specify exactly one of 'dockerfileTemplateData' "
                                     "or 'dockerfileTemplateUri'.");
        return ibs_emulator_set_str(doc, "platform", override ? override : "Linux");
    }
    case IBS_EMU_INFRA:
        return set_default_bool(doc, "terminateInstanceOnFailure", true);
    case IBS_EMU_DIST:
        if (!ibs_value_map_get(doc, "timeoutMinutes"))
            rc = ibs_emulator_set_int(doc, "timeoutMinutes", DEFAULT_TIMEOUT_MINUTES);
        return rc;
    case IBS_EMU_PIPELINE:
        return finish_pipeline(req, doc);
    case IBS_EMU_LIFECYCLE:
        return set_default_str(doc, "status", "ENABLED");
    default:
        return 0;
    }
}

/* References. */

struct ref {
    char member[96]; /* request member path, for messages */
    const char *arn; /* borrowed from the document */
    enum ibs_emulator_kind_id kind;
};

static int add_ref(struct ibs_vec *refs, const char *member, const char *arn,
                   enum ibs_emulator_kind_id kind)
{
    struct ref *r;

    if (!arn)
        return 0;
    if (!(r = calloc(1, sizeof(*r))))
        return ibs_error_oom();
    snprintf(r->member, sizeof(r->member), "%s", member);
    r->arn = arn;
    r->kind = kind;
    if (ibs_vec_push(refs, r)) {
        free(r);
        return ibs_error_oom();
    }
    return 0;
}

static int add_list_refs(struct ibs_vec *refs, const struct ibs_value *doc, const char *list,
                         const char *member, enum ibs_emulator_kind_id kind)
{
    const struct ibs_value *items = ibs_value_map_get(doc, list);
    char path[96];
    int rc;

    for (size_t i = 0; items && items->type == IBS_VALUE_LIST && i < items->count; i++) {
        snprintf(path, sizeof(path), "%s[%zu].%s", list, i, member);
        if ((rc = add_ref(refs, path, ibs_value_map_get_str(items->u.items[i], member), kind)))
            return rc;
    }
    return 0;
}

/* The references a document of the request's kind makes. */
static int collect_refs(struct ibs_vec *refs, enum ibs_emulator_kind_id kind,
                        const struct ibs_value *doc)
{
    const char *parent = ibs_value_map_get_str(doc, "parentImage");
    int rc = 0;

    switch (kind) {
    case IBS_EMU_IMAGE_RECIPE:
    case IBS_EMU_CONTAINER_RECIPE:
        if ((rc = add_list_refs(refs, doc, "components", "componentArn", IBS_EMU_COMPONENT)))
            return rc;
        if (parent && strncmp(parent, "arn:", 4) == 0)
            rc = add_ref(refs, "parentImage", parent, IBS_EMU_IMAGE);
        return rc;
    case IBS_EMU_PIPELINE:
    case IBS_EMU_IMAGE:
        if ((rc = add_ref(refs, "imageRecipeArn", ibs_value_map_get_str(doc, "imageRecipeArn"),
                          IBS_EMU_IMAGE_RECIPE)) ||
            (rc = add_ref(refs, "containerRecipeArn",
                          ibs_value_map_get_str(doc, "containerRecipeArn"),
                          IBS_EMU_CONTAINER_RECIPE)) ||
            (rc = add_ref(refs, "infrastructureConfigurationArn",
                          ibs_value_map_get_str(doc, "infrastructureConfigurationArn"),
                          IBS_EMU_INFRA)) ||
            (rc =
                 add_ref(refs, "distributionConfigurationArn",
                         ibs_value_map_get_str(doc, "distributionConfigurationArn"), IBS_EMU_DIST)))
            return rc;
        return add_list_refs(refs, doc, "workflows", "workflowArn", IBS_EMU_WORKFLOW);
    default:
        return 0;
    }
}

/*
 * Checks that every reference to this account exists; on success
 * `local_arns` (borrowed strings) holds the references to record.
 */
static int check_refs(struct ibs_emulator_req *req, const struct ibs_vec *refs,
                      struct ibs_vec *local_arns)
{
    int rc = 0;

    for (size_t i = 0; i < refs->count && !rc; i++) {
        const struct ref *r = refs->items[i];
        struct ibs_emulator_arn a;
        struct ibs_emulator_record *rec = NULL;

        if (!ibs_emulator_arn_parse(&a, r->arn))
            return invalid_param(req, r->member, "The value must be an Image Builder ARN.");
        if (a.kind->id != r->kind) {
            char why[160];
            snprintf(why, sizeof(why), "The ARN must name a %s, not a %s.",
                     ibs_emulator_kind_get(r->kind)->label, a.kind->label);
            ibs_emulator_arn_release(&a);
            return invalid_param(req, r->member, why);
        }
        if (is_local(req, &a)) {
            rc = ibs_emulator_resolve(&rec, req, r->kind, r->arn);
            if (rc == IBS_ENOTFOUND)
                rc = ibs_emulator_fail(req, "ResourceNotFoundException",
                                       "The resource ARN '%s' given in '%s' does not exist.",
                                       r->arn, r->member);
            else if (!rc && ibs_vec_push(local_arns, (void *)r->arn))
                rc = ibs_error_oom();
            ibs_emulator_record_free(rec);
        }
        ibs_emulator_arn_release(&a);
    }
    return rc;
}

static void free_item(void *p)
{
    free(p);
}

/* Checks and records the references of `doc` made by resource `arn`. */
static int update_refs(struct ibs_emulator_req *req, const char *arn, const struct ibs_value *doc)
{
    struct ibs_vec refs = IBS_VEC_INIT, local = IBS_VEC_INIT;
    int rc;

    if ((rc = collect_refs(&refs, req->kind, doc)) || (rc = check_refs(req, &refs, &local)))
        goto done;
    if (req->kind != IBS_EMU_IMAGE)
        rc = ibs_emulator_store_refs_set(req->emu, arn, &local);
done:
    ibs_vec_release(&local);
    ibs_vec_release_with(&refs, free_item);
    return rc;
}

/* ResourceDependencyException when a recorded reference matches `rec`. */
static int check_dependents(struct ibs_emulator_req *req, const struct ibs_emulator_record *rec)
{
    const struct ibs_emulator_kind *kind = ibs_emulator_kind_get(rec->kind);
    struct ibs_vec from = IBS_VEC_INIT, to = IBS_VEC_INIT;
    struct ibs_buf prefix = IBS_BUF_INIT;
    int rc;

    ibs_buf_printf(&prefix, "%s%s/%s", req->emu->arn_prefix, kind->type, rec->path);
    if ((rc = ibs_buf_oom(&prefix)))
        goto done;
    if ((rc = ibs_emulator_store_refs_find(&from, &to, req->emu, prefix.ptr)))
        goto done;
    for (size_t i = 0; i < to.count; i++) {
        struct ibs_emulator_arn a;
        bool match;
        if (strcmp(from.items[i], rec->arn) == 0 || !ibs_emulator_arn_parse(&a, to.items[i]))
            continue;
        match = arn_matches(&a, rec);
        ibs_emulator_arn_release(&a);
        if (match) {
            rc = ibs_emulator_fail(req, "ResourceDependencyException",
                                   "Resource dependency error: The resource ARN '%s' has other "
                                   "resources depended on it.",
                                   rec->arn);
            goto done;
        }
    }
done:
    ibs_buf_release(&prefix);
    ibs_vec_release_with(&from, free_item);
    ibs_vec_release_with(&to, free_item);
    return rc;
}

/* Handlers. */

/* JSON nulls in a request mean "not given": drop them (recursively) so
 * that they are neither stored nor answered. */
static void strip_nulls(struct ibs_value *v)
{
    if (v->type == IBS_VALUE_LIST) {
        for (size_t i = 0; i < v->count; i++)
            strip_nulls(v->u.items[i]);
        return;
    }
    if (v->type != IBS_VALUE_MAP)
        return;
    for (size_t i = v->count; i-- > 0;) {
        if (v->u.members[i].value->type == IBS_VALUE_NULL)
            ibs_value_map_remove(v, v->u.members[i].key);
        else
            strip_nulls(v->u.members[i].value);
    }
}

static int arn_response(struct ibs_value **out, const char *member, const char *arn)
{
    struct ibs_value *resp = ibs_value_new_map();
    int rc;

    *out = NULL;
    if (!resp)
        return IBS_ENOMEM;
    if ((rc = ibs_emulator_set_str(resp, member, arn))) {
        ibs_value_free(resp);
        return rc;
    }
    *out = resp;
    return 0;
}

/* The duplicate-name error: the reference documents ResourceAlreadyExists
 * for most Create operations, ResourceInUse for components and workflows. */
static int already_exists(struct ibs_emulator_req *req, const char *label, const char *arn)
{
    const char *code = ibs_emulator_op_documents(req->op, "ResourceAlreadyExistsException")
                           ? "ResourceAlreadyExistsException"
                           : "ResourceInUseException";
    return ibs_emulator_fail(req, code, "The following resource '%s' already exists: '%s'.", label,
                             arn);
}

int ibs_emulator_op_create(struct ibs_emulator_req *req, struct ibs_value **out)
{
    const struct ibs_emulator_kind *kind = ibs_emulator_kind_get(req->kind);
    const struct ibs_value *in = req->input;
    const char *name = ibs_value_map_get_str(in, "name");
    const char *version = kind->versioned ? ibs_value_map_get_str(in, "semanticVersion") : NULL;
    struct ibs_emulator_record *rec = NULL;
    struct ibs_emulator_semver sv;
    struct ibs_vec existing = IBS_VEC_INIT;
    struct ibs_buf buf = IBS_BUF_INIT;
    char *lname = NULL;
    int rc;

    *out = NULL;
    if (!name || (kind->versioned && !version))
        return ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                                 "The request must name the resource%s.",
                                 kind->versioned ? " and its semanticVersion" : "");
    if (version && !ibs_emulator_semver_parse(&sv, version, strlen(version), false))
        return ibs_emulator_fail(req,
                                 ibs_emulator_op_documents(req->op, "InvalidVersionNumberException")
                                     ? "InvalidVersionNumberException"
                                     : ibs_emulator_validation_error(req->op),
                                 "The semantic version '%s' is not valid: it must be "
                                 "<major>.<minor>.<patch>, each node at most 1073741823.",
                                 version);
    if (!(rec = calloc(1, sizeof(*rec))) || !(lname = ibs_emulator_arn_name(name))) {
        rc = ibs_error_oom();
        goto done;
    }
    rec->kind = req->kind;
    if (req->kind == IBS_EMU_WORKFLOW) {
        const char *type = ibs_value_map_get_str(in, "type");
        char *ltype = ibs_emulator_arn_name(type ? type : "build");
        if (!ltype) {
            rc = IBS_ENOMEM;
            goto done;
        }
        ibs_buf_printf(&buf, "%s/%s", ltype, lname);
        free(ltype);
        rec->path = ibs_buf_detach(&buf);
    } else {
        rec->path = strdup(lname);
    }
    rec->name = strdup(name);
    rec->owner = strdup(req->emu->account);
    rec->version = version ? strdup(version) : NULL;
    if (!rec->path || !rec->name || !rec->owner || (version && !rec->version)) {
        rc = ibs_error_oom();
        goto done;
    }
    /* Names are unique per kind (versioned kinds: per name and version). */
    if ((rc = ibs_emulator_store_scan(&existing, req->emu, req->kind, rec->path, NULL, false)))
        goto done;
    for (size_t i = 0; i < existing.count; i++) {
        const struct ibs_emulator_record *e = existing.items[i];
        if (!version || (e->version && strcmp(e->version, version) == 0)) {
            ibs_buf_printf(&buf, "%s%s/%s", req->emu->arn_prefix, kind->type, rec->path);
            if (version)
                ibs_buf_printf(&buf, "/%s", version);
            if ((rc = ibs_buf_oom(&buf)))
                goto done;
            rc = already_exists(req, kind->label, buf.ptr);
            goto done;
        }
    }
    if (kind->builds &&
        (rc = ibs_emulator_store_next_build(&rec->build, req->emu, req->kind, rec->path, version)))
        goto done;
    ibs_buf_printf(&buf, "%s%s/%s", req->emu->arn_prefix, kind->type, rec->path);
    if (version)
        ibs_buf_printf(&buf, "/%s", version);
    if (rec->build)
        ibs_buf_printf(&buf, "/%lld", (long long)rec->build);
    if (!(rec->arn = ibs_buf_detach(&buf))) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if ((rc = ibs_value_clone(&rec->doc, in)))
        goto done;
    strip_nulls(rec->doc);
    ibs_value_map_remove(rec->doc, "clientToken");
    ibs_value_map_remove(rec->doc, "tags");
    ibs_value_map_remove(rec->doc, "semanticVersion");
    if ((rc = ibs_emulator_set_str(rec->doc, "arn", rec->arn)) ||
        (rc = ibs_emulator_set_str(rec->doc, "owner", rec->owner)))
        goto done;
    if (version && (rc = ibs_emulator_set_str(rec->doc, "version", version)))
        goto done;
    if ((rc = finish_doc(req, rec->doc)))
        goto done;
    rec->created_ms = req->now_ms;
    if ((rc = ibs_emulator_store_insert(req->emu, rec)))
        goto done;
    if ((rc = update_refs(req, rec->arn, rec->doc)))
        goto done;
    if ((rc = ibs_emulator_store_tags_put(req->emu, rec->arn, ibs_value_map_get(in, "tags"))))
        goto done;
    rc = arn_response(out, kind->arn_member, rec->arn);
done:
    ibs_buf_release(&buf);
    ibs_vec_release_with(&existing, ibs_emulator_record_free_item);
    ibs_emulator_record_free(rec);
    free(lname);
    return rc;
}

int ibs_emulator_op_get(struct ibs_emulator_req *req, struct ibs_value **out)
{
    const struct ibs_emulator_kind *kind = ibs_emulator_kind_get(req->kind);
    const char *arn = ibs_value_map_get_str(req->input, kind->arn_member);
    struct ibs_emulator_record *rec = NULL;
    struct ibs_value *view = NULL, *projected = NULL, *resp = NULL;
    int rc;

    *out = NULL;
    rc = ibs_emulator_resolve(&rec, req, req->kind, arn ? arn : "");
    if (rc == IBS_ENOTFOUND)
        return not_found(req, arn ? arn : "");
    if (rc)
        return rc;
    if ((rc = ibs_emulator_view(&view, req, rec)))
        goto done;
    if ((rc = ibs_emulator_project(&projected, view,
                                   ibs_emulator_member_shape(req->op->output, kind->doc_member))))
        goto done;
    if (!(resp = ibs_value_new_map())) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if ((rc = ibs_value_map_set(resp, kind->doc_member, projected))) {
        projected = NULL;
        goto done;
    }
    projected = NULL;
    *out = resp;
    resp = NULL;
done:
    ibs_value_free(resp);
    ibs_value_free(projected);
    ibs_value_free(view);
    ibs_emulator_record_free(rec);
    return rc;
}

int ibs_emulator_op_update(struct ibs_emulator_req *req, struct ibs_value **out)
{
    const struct ibs_emulator_kind *kind = ibs_emulator_kind_get(req->kind);
    const char *arn = ibs_value_map_get_str(req->input, kind->arn_member);
    const struct ibs_api_shape *in_shape = req->op->input;
    struct ibs_emulator_record *rec = NULL;
    struct ibs_value *copy = NULL;
    int rc;

    *out = NULL;
    if ((rc = lookup_exact(&rec, req, req->kind, arn ? arn : "")))
        return rc;
    /* Every member the Update request can carry is replaced or removed. */
    for (size_t i = 0; in_shape && i < in_shape->nmembers; i++) {
        const struct ibs_api_member *m = &in_shape->members[i];
        const struct ibs_value *v = ibs_value_map_get(req->input, m->name);
        if (m->idempotency_token || strcmp(m->name, kind->arn_member) == 0)
            continue;
        ibs_value_map_remove(rec->doc, m->name);
        if (!v || v->type == IBS_VALUE_NULL)
            continue;
        if ((rc = ibs_value_clone(&copy, v)))
            goto done;
        strip_nulls(copy);
        if ((rc = ibs_value_map_set(rec->doc, m->name, copy)))
            goto done;
    }
    if ((rc = finish_doc(req, rec->doc)))
        goto done;
    if ((rc = update_refs(req, rec->arn, rec->doc)))
        goto done;
    rec->updated_ms = req->now_ms;
    if ((rc = ibs_emulator_store_update(req->emu, rec)))
        goto done;
    rc = arn_response(out, kind->arn_member, rec->arn);
done:
    ibs_emulator_record_free(rec);
    return rc;
}

int ibs_emulator_op_delete(struct ibs_emulator_req *req, struct ibs_value **out)
{
    const struct ibs_emulator_kind *kind = ibs_emulator_kind_get(req->kind);
    const char *arn = ibs_value_map_get_str(req->input, kind->arn_member);
    struct ibs_emulator_record *rec = NULL;
    int rc;

    *out = NULL;
    if ((rc = lookup_exact(&rec, req, req->kind, arn ? arn : "")))
        return rc;
    if ((rc = check_dependents(req, rec)))
        goto done;
    if ((rc = ibs_emulator_store_delete(req->emu, rec->arn)))
        goto done;
    rc = arn_response(out, kind->arn_member, rec->arn);
done:
    ibs_emulator_record_free(rec);
    return rc;
}

/* Tags: TagResource/UntagResource/ListTagsForResource take any resource ARN. */

static int tag_target(struct ibs_emulator_record **out, struct ibs_emulator_req *req)
{
    const char *arn = ibs_value_map_get_str(req->input, "resourceArn");
    return lookup_exact(out, req, IBS_EMU_NO_KIND, arn ? arn : "");
}

int ibs_emulator_op_tag(struct ibs_emulator_req *req, struct ibs_value **out)
{
    struct ibs_emulator_record *rec = NULL;
    int rc;

    *out = NULL;
    if ((rc = tag_target(&rec, req)))
        return rc;
    rc = ibs_emulator_store_tags_put(req->emu, rec->arn, ibs_value_map_get(req->input, "tags"));
    if (!rc && !(*out = ibs_value_new_map()))
        rc = IBS_ENOMEM;
    ibs_emulator_record_free(rec);
    return rc;
}

int ibs_emulator_op_untag(struct ibs_emulator_req *req, struct ibs_value **out)
{
    struct ibs_emulator_record *rec = NULL;
    int rc;

    *out = NULL;
    if ((rc = tag_target(&rec, req)))
        return rc;
    rc = ibs_emulator_store_tags_remove(req->emu, rec->arn,
                                        ibs_value_map_get(req->input, "tagKeys"));
    if (!rc && !(*out = ibs_value_new_map()))
        rc = IBS_ENOMEM;
    ibs_emulator_record_free(rec);
    return rc;
}

int ibs_emulator_op_list_tags(struct ibs_emulator_req *req, struct ibs_value **out)
{
    struct ibs_emulator_record *rec = NULL;
    struct ibs_value *tags = NULL, *resp = NULL;
    int rc;

    *out = NULL;
    if ((rc = tag_target(&rec, req)))
        return rc;
    if ((rc = ibs_emulator_store_tags_get(&tags, req->emu, rec->arn)))
        goto done;
    if (!(resp = ibs_value_new_map())) {
        ibs_value_free(tags);
        rc = IBS_ENOMEM;
        goto done;
    }
    if ((rc = ibs_value_map_set(resp, "tags", tags)))
        goto done;
    *out = resp;
    resp = NULL;
done:
    ibs_value_free(resp);
    ibs_emulator_record_free(rec);
    return rc;
}

/* Resource policies (Get/Put{Component,Image,ImageRecipe,ContainerRecipe}Policy). */

static const char *policy_member(enum ibs_emulator_kind_id kind)
{
    switch (kind) {
    case IBS_EMU_COMPONENT:
        return "componentArn";
    case IBS_EMU_IMAGE:
        return "imageArn";
    case IBS_EMU_IMAGE_RECIPE:
        return "imageRecipeArn";
    default:
        return "containerRecipeArn";
    }
}

int ibs_emulator_op_put_policy(struct ibs_emulator_req *req, struct ibs_value **out)
{
    const char *member = policy_member(req->kind);
    const char *arn = ibs_value_map_get_str(req->input, member);
    const char *policy = ibs_value_map_get_str(req->input, "policy");
    struct ibs_emulator_record *rec = NULL;
    struct ibs_value *parsed = NULL;
    int rc;

    *out = NULL;
    if ((rc = lookup_exact(&rec, req, req->kind, arn ? arn : "")))
        return rc;
    /* The service checks that the policy is a JSON policy document. */
    if (!policy || ibs_json_parse(&parsed, policy, strlen(policy)) != 0 ||
        parsed->type != IBS_VALUE_MAP || !ibs_value_map_get(parsed, "Statement")) {
        rc = invalid_param(req, "policy",
                           "The policy must be a JSON policy document with a Statement.");
        goto done;
    }
    if ((rc = ibs_emulator_store_policy_put(req->emu, rec->arn, policy)))
        goto done;
    rc = arn_response(out, member, rec->arn);
done:
    ibs_value_free(parsed);
    ibs_emulator_record_free(rec);
    return rc;
}

int ibs_emulator_op_get_policy(struct ibs_emulator_req *req, struct ibs_value **out)
{
    const char *arn = ibs_value_map_get_str(req->input, policy_member(req->kind));
    struct ibs_emulator_record *rec = NULL;
    char *policy = NULL;
    int rc;

    *out = NULL;
    if ((rc = lookup_exact(&rec, req, req->kind, arn ? arn : "")))
        return rc;
    rc = ibs_emulator_store_policy_get(&policy, req->emu, rec->arn);
    if (rc == IBS_ENOTFOUND)
        rc = ibs_emulator_fail(req, "ResourceNotFoundException",
                               "The resource ARN '%s' has no policy.", rec->arn);
    if (!rc)
        rc = arn_response(out, "policy", policy);
    free(policy);
    ibs_emulator_record_free(rec);
    return rc;
}
