/*
 * Images: StartImagePipelineExecution and CreateImage, and what an image
 * looks like while and after it is "built".
 *
 * Nothing is built. An image is a record named after its recipe, as on AWS:
 * image/<recipe name>/<recipe version>/<build>, build numbers counting up
 * per recipe name and version from 1. Its document snapshots the recipe and
 * the infrastructure and distribution configurations as they were at the
 * start (Get views, with their dates and tags), so later updates of those
 * do not change the image. Its state is computed when read: BUILDING until
 * image_build_ms have passed since creation, then AVAILABLE, with output
 * resources (an AMI per distribution region, or container image URIs)
 * whose ids derive from the image ARN, so they are stable across reads and
 * restarts.
 *
 * Image defaults:
 *   type                          AMI for image recipes, DOCKER for container recipes
 *   platform                      the recipe's platform
 *   enhancedImageMetadataEnabled  true ("Enabled by default")
 *   imageTestsConfiguration       {imageTestsEnabled: true, timeoutMinutes: 720}
 *   buildType                     USER_INITIATED (both operations are user requests)
 *   imageSource                   CUSTOM (built from a recipe of this account)
 *   sourcePipelineName/Arn        the pipeline, for StartImagePipelineExecution
 */
#include "providers/emulator/internal.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MINUTES 720

/* Sets doc[key] to the Get view of the resource `arn` of `kind` (which
 * must exist). */
static int snapshot(struct ibs_emulator_req *req, struct ibs_value *doc, const char *key,
                    enum ibs_emulator_kind_id kind, const char *arn, const char *member,
                    struct ibs_emulator_record **out_rec)
{
    struct ibs_emulator_record *rec = NULL;
    struct ibs_value *view = NULL;
    int rc;

    rc = ibs_emulator_resolve(&rec, req, kind, arn);
    if (rc == IBS_ENOTFOUND)
        return ibs_emulator_fail(req, "ResourceNotFoundException",
                                 "The resource ARN '%s' given in '%s' does not exist.", arn,
                                 member);
    if (rc)
        return rc;
    if ((rc = ibs_emulator_view(&view, req, rec)))
        goto done;
    if ((rc = ibs_value_map_set(doc, key, view)))
        goto done;
    if (out_rec) {
        *out_rec = rec;
        rec = NULL;
    }
done:
    ibs_emulator_record_free(rec);
    return rc;
}

static int copy_member(struct ibs_value *doc, const struct ibs_value *spec, const char *key)
{
    const struct ibs_value *v = ibs_value_map_get(spec, key);
    struct ibs_value *copy = NULL;
    int rc;

    if (!v)
        return 0;
    if ((rc = ibs_value_clone(&copy, v)))
        return rc;
    return ibs_value_map_set(doc, key, copy);
}

/*
 * Creates an image from `spec` (a pipeline document or a CreateImage
 * request); `pipeline` is the source pipeline or NULL, `tags` the image's
 * tags or NULL. *out is the response {imageBuildVersionArn}.
 */
static int build_image(struct ibs_emulator_req *req, const struct ibs_value *spec,
                       const struct ibs_emulator_record *pipeline, const struct ibs_value *tags,
                       struct ibs_value **out)
{
    const char *image_recipe = ibs_value_map_get_str(spec, "imageRecipeArn");
    const char *container_recipe = ibs_value_map_get_str(spec, "containerRecipeArn");
    const char *infra = ibs_value_map_get_str(spec, "infrastructureConfigurationArn");
    const char *dist = ibs_value_map_get_str(spec, "distributionConfigurationArn");
    const struct ibs_value *enhanced = ibs_value_map_get(spec, "enhancedImageMetadataEnabled");
    struct ibs_emulator_record *rec = NULL, *recipe = NULL;
    struct ibs_value *tests = NULL;
    struct ibs_buf arn = IBS_BUF_INIT;
    const char *platform;
    int rc;

    *out = NULL;
    if (!image_recipe == !container_recipe)
        return ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                                 "You must specify exactly one of 'imageRecipeArn' or "
                                 "'containerRecipeArn'.");
    if (!infra)
        return ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                                 "The value supplied for parameter "
                                 "'infrastructureConfigurationArn' is not valid. It is required.");
    if (!(rec = calloc(1, sizeof(*rec))) || !(rec->doc = ibs_value_new_map())) {
        rc = ibs_error_oom();
        goto done;
    }
    rec->kind = IBS_EMU_IMAGE;
    if (image_recipe)
        rc = snapshot(req, rec->doc, "imageRecipe", IBS_EMU_IMAGE_RECIPE, image_recipe,
                      "imageRecipeArn", &recipe);
    else
        rc = snapshot(req, rec->doc, "containerRecipe", IBS_EMU_CONTAINER_RECIPE, container_recipe,
                      "containerRecipeArn", &recipe);
    if (rc)
        goto done;
    if ((rc = snapshot(req, rec->doc, "infrastructureConfiguration", IBS_EMU_INFRA, infra,
                       "infrastructureConfigurationArn", NULL)))
        goto done;
    if (dist && (rc = snapshot(req, rec->doc, "distributionConfiguration", IBS_EMU_DIST, dist,
                               "distributionConfigurationArn", NULL)))
        goto done;
    rec->name = strdup(recipe->name);
    rec->path = strdup(recipe->path);
    rec->version = strdup(recipe->version);
    rec->owner = strdup(req->emu->account);
    rec->parent = pipeline ? strdup(pipeline->arn) : NULL;
    if (!rec->name || !rec->path || !rec->version || !rec->owner || (pipeline && !rec->parent)) {
        rc = ibs_error_oom();
        goto done;
    }
    if ((rc = ibs_emulator_store_next_build(&rec->build, req->emu, IBS_EMU_IMAGE, rec->path,
                                            rec->version)))
        goto done;
    ibs_buf_printf(&arn, "%simage/%s/%s/%lld", req->emu->arn_prefix, rec->path, rec->version,
                   (long long)rec->build);
    if (!(rec->arn = ibs_buf_detach(&arn))) {
        rc = IBS_ENOMEM;
        goto done;
    }
    platform = ibs_value_map_get_str(recipe->doc, "platform");
    if ((rc = ibs_emulator_set_str(rec->doc, "arn", rec->arn)) ||
        (rc = ibs_emulator_set_str(rec->doc, "type", image_recipe ? "AMI" : "DOCKER")) ||
        (rc = ibs_emulator_set_str(rec->doc, "name", rec->name)) ||
        (rc = ibs_emulator_set_str(rec->doc, "version", rec->version)) ||
        (rc = ibs_emulator_set_str(rec->doc, "platform", platform ? platform : "Linux")) ||
        (rc = ibs_emulator_set_str(rec->doc, "owner", rec->owner)) ||
        (rc = ibs_emulator_set_bool(rec->doc, "enhancedImageMetadataEnabled",
                                    !enhanced || enhanced->type != IBS_VALUE_BOOL ||
                                        enhanced->num.b)) ||
        (rc = ibs_emulator_set_str(rec->doc, "buildType", "USER_INITIATED")) ||
        (rc = ibs_emulator_set_str(rec->doc, "imageSource", "CUSTOM")))
        goto done;
    if (pipeline && ((rc = ibs_emulator_set_str(rec->doc, "sourcePipelineName", pipeline->name)) ||
                     (rc = ibs_emulator_set_str(rec->doc, "sourcePipelineArn", pipeline->arn))))
        goto done;
    if ((rc = copy_member(rec->doc, spec, "imageTestsConfiguration")) ||
        (rc = copy_member(rec->doc, spec, "imageScanningConfiguration")) ||
        (rc = copy_member(rec->doc, spec, "workflows")) ||
        (rc = copy_member(rec->doc, spec, "executionRole")))
        goto done;
    tests = ibs_value_map_get(rec->doc, "imageTestsConfiguration");
    if (!tests) {
        if (!(tests = ibs_value_new_map())) {
            rc = IBS_ENOMEM;
            goto done;
        }
        if ((rc = ibs_value_map_set(rec->doc, "imageTestsConfiguration", tests)))
            goto done;
    }
    if (!ibs_value_map_get(tests, "imageTestsEnabled") &&
        (rc = ibs_emulator_set_bool(tests, "imageTestsEnabled", true)))
        goto done;
    if (!ibs_value_map_get(tests, "timeoutMinutes") &&
        (rc = ibs_emulator_set_int(tests, "timeoutMinutes", DEFAULT_TIMEOUT_MINUTES)))
        goto done;
    rec->created_ms = req->now_ms;
    if ((rc = ibs_emulator_store_insert(req->emu, rec)))
        goto done;
    if ((rc = ibs_emulator_store_tags_put(req->emu, rec->arn, tags)))
        goto done;
    if (!(*out = ibs_value_new_map())) {
        rc = IBS_ENOMEM;
        goto done;
    }
    rc = ibs_emulator_set_str(*out, "imageBuildVersionArn", rec->arn);
done:
    if (rc) {
        ibs_value_free(*out);
        *out = NULL;
    }
    ibs_buf_release(&arn);
    ibs_emulator_record_free(recipe);
    ibs_emulator_record_free(rec);
    return rc;
}

int ibs_emulator_op_start_pipeline(struct ibs_emulator_req *req, struct ibs_value **out)
{
    const char *arn = ibs_value_map_get_str(req->input, "imagePipelineArn");
    struct ibs_emulator_record *pipeline = NULL;
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
    rc = build_image(req, pipeline->doc, pipeline, NULL, out);
done:
    ibs_emulator_record_free(pipeline);
    return rc;
}

int ibs_emulator_op_create_image(struct ibs_emulator_req *req, struct ibs_value **out)
{
    return build_image(req, req->input, NULL, ibs_value_map_get(req->input, "tags"), out);
}

/* "ami-" and 17 hex digits, derived from the image and region. */
static int ami_id(char *buf, size_t size, const char *arn, const char *region)
{
    char hex[65];
    struct ibs_buf key = IBS_BUF_INIT;
    int rc;

    ibs_buf_printf(&key, "%s|%s", arn, region);
    if (!(rc = ibs_buf_oom(&key)) && !(rc = ibs_emulator_sha256_hex(hex, key.ptr, key.size)))
        snprintf(buf, size, "ami-%.17s", hex);
    ibs_buf_release(&key);
    return rc;
}

static int add_ami(struct ibs_value *amis, struct ibs_emulator_req *req,
                   const struct ibs_emulator_record *rec, const char *region,
                   const struct ibs_value *ami_config)
{
    struct ibs_value *ami = ibs_value_new_map(), *state = ibs_value_new_map();
    const char *name = ibs_value_map_get_str(ami_config, "name");
    const char *desc = ibs_value_map_get_str(ami_config, "description");
    char id[32], date[40], dflt[300];
    int rc;

    if (!ami || !state) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if ((rc = ami_id(id, sizeof(id), rec->arn, region)))
        goto done;
    ibs_emulator_iso8601(date, sizeof(date), rec->created_ms);
    for (char *c = date; *c; c++)
        if (*c == ':')
            *c = '-';
    snprintf(dflt, sizeof(dflt), "%s %s", rec->name, date);
    if ((rc = ibs_emulator_set_str(state, "status", "AVAILABLE")) ||
        (rc = ibs_emulator_set_str(ami, "region", region)) ||
        (rc = ibs_emulator_set_str(ami, "image", id)) ||
        (rc = ibs_emulator_set_str(ami, "name", name ? name : dflt)) ||
        (desc && (rc = ibs_emulator_set_str(ami, "description", desc))))
        goto done;
    rc = ibs_value_map_set(ami, "state", state);
    state = NULL;
    if (rc || (rc = ibs_emulator_set_str(ami, "accountId", req->emu->account)))
        goto done;
    rc = ibs_value_list_append(amis, ami);
    ami = NULL;
done:
    ibs_value_free(ami);
    ibs_value_free(state);
    return rc;
}

static int add_container(struct ibs_value *containers, const struct ibs_emulator_req *req,
                         const struct ibs_emulator_record *rec, const char *region,
                         const char *repository)
{
    struct ibs_value *c = ibs_value_new_map(), *uris = ibs_value_new_list();
    struct ibs_buf uri = IBS_BUF_INIT;
    int rc;

    if (!c || !uris) {
        rc = IBS_ENOMEM;
        goto done;
    }
    ibs_buf_printf(&uri, "%s.dkr.ecr.%s.amazonaws.com/%s:%s-%lld", req->emu->account, region,
                   repository, rec->version, (long long)rec->build);
    if ((rc = ibs_buf_oom(&uri)))
        goto done;
    if ((rc = ibs_value_list_append(uris, ibs_value_new_string(uri.ptr))))
        goto done;
    if ((rc = ibs_emulator_set_str(c, "region", region)))
        goto done;
    rc = ibs_value_map_set(c, "imageUris", uris);
    uris = NULL;
    if (rc)
        goto done;
    rc = ibs_value_list_append(containers, c);
    c = NULL;
done:
    ibs_buf_release(&uri);
    ibs_value_free(c);
    ibs_value_free(uris);
    return rc;
}

/* OutputResources of an available image: one entry per distribution, or
 * one in this region without a distribution configuration. */
static int output_resources(struct ibs_value **out, struct ibs_emulator_req *req,
                            const struct ibs_value *view, const struct ibs_emulator_record *rec)
{
    const struct ibs_value *dists =
        ibs_value_map_get(ibs_value_map_get(view, "distributionConfiguration"), "distributions");
    bool docker =
        strcmp(ibs_value_map_get_str(view, "type") ? ibs_value_map_get_str(view, "type") : "AMI",
               "DOCKER") == 0;
    const char *recipe_repo = ibs_value_map_get_str(
        ibs_value_map_get(ibs_value_map_get(view, "containerRecipe"), "targetRepository"),
        "repositoryName");
    struct ibs_value *res = ibs_value_new_map(), *list = ibs_value_new_list();
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    if (!res || !list) {
        rc = IBS_ENOMEM;
        goto done;
    }
    for (size_t i = 0; dists && dists->type == IBS_VALUE_LIST && i < dists->count && !rc; i++) {
        const struct ibs_value *d = dists->u.items[i];
        const char *region = ibs_value_map_get_str(d, "region");
        if (!region)
            continue;
        if (docker) {
            const char *repo = ibs_value_map_get_str(
                ibs_value_map_get(ibs_value_map_get(d, "containerDistributionConfiguration"),
                                  "targetRepository"),
                "repositoryName");
            if (repo || recipe_repo)
                rc = add_container(list, req, rec, region, repo ? repo : recipe_repo);
        } else {
            rc = add_ami(list, req, rec, region,
                         ibs_value_map_get(d, "amiDistributionConfiguration"));
        }
        n++;
    }
    if (!rc && n == 0) {
        if (docker && recipe_repo)
            rc = add_container(list, req, rec, req->emu->region, recipe_repo);
        else if (!docker)
            rc = add_ami(list, req, rec, req->emu->region, NULL);
    }
    if (rc)
        goto done;
    rc = ibs_value_map_set(res, docker ? "containers" : "amis", list);
    list = NULL;
    if (rc)
        goto done;
    *out = res;
    res = NULL;
done:
    ibs_value_free(res);
    ibs_value_free(list);
    return rc;
}

int ibs_emulator_image_decorate(struct ibs_emulator_req *req, struct ibs_value *view,
                                const struct ibs_emulator_record *rec)
{
    bool available = req->now_ms - rec->created_ms >= req->emu->image_build_ms;
    struct ibs_value *state = ibs_value_new_map(), *res = NULL;
    int rc;

    if (!state)
        return IBS_ENOMEM;
    if ((rc = ibs_emulator_set_str(state, "status", available ? "AVAILABLE" : "BUILDING"))) {
        ibs_value_free(state);
        return rc;
    }
    if ((rc = ibs_value_map_set(view, "state", state)))
        return rc;
    if (!available)
        return 0;
    if ((rc = output_resources(&res, req, view, rec)))
        return rc;
    return ibs_value_map_set(view, "outputResources", res);
}
