/* Kind table and model lifecycle; see model.h. */
#include "reconcile/model.h"

#include "util/buf.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

static const struct ibs_kind_info kinds[IBS_KIND_COUNT] = {
    {IBS_KIND_COMPONENT, "Component", "component", true, "CreateComponent", NULL, "GetComponent",
     "ListComponents", "DeleteComponent", "componentBuildVersionArn", "component"},
    {IBS_KIND_WORKFLOW, "Workflow", "workflow", true, "CreateWorkflow", NULL, "GetWorkflow",
     "ListWorkflows", "DeleteWorkflow", "workflowBuildVersionArn", "workflow"},
    {IBS_KIND_IMAGE_RECIPE, "ImageRecipe", "image-recipe", true, "CreateImageRecipe", NULL,
     "GetImageRecipe", "ListImageRecipes", "DeleteImageRecipe", "imageRecipeArn", "imageRecipe"},
    {IBS_KIND_CONTAINER_RECIPE, "ContainerRecipe", "container-recipe", true,
     "CreateContainerRecipe", NULL, "GetContainerRecipe", "ListContainerRecipes",
     "DeleteContainerRecipe", "containerRecipeArn", "containerRecipe"},
    {IBS_KIND_INFRASTRUCTURE_CONFIGURATION, "InfrastructureConfiguration",
     "infrastructure-configuration", false, "CreateInfrastructureConfiguration",
     "UpdateInfrastructureConfiguration", "GetInfrastructureConfiguration",
     "ListInfrastructureConfigurations", "DeleteInfrastructureConfiguration",
     "infrastructureConfigurationArn", "infrastructureConfiguration"},
    {IBS_KIND_DISTRIBUTION_CONFIGURATION, "DistributionConfiguration", "distribution-configuration",
     false, "CreateDistributionConfiguration", "UpdateDistributionConfiguration",
     "GetDistributionConfiguration", "ListDistributionConfigurations",
     "DeleteDistributionConfiguration", "distributionConfigurationArn",
     "distributionConfiguration"},
    {IBS_KIND_IMAGE_PIPELINE, "ImagePipeline", "image-pipeline", false, "CreateImagePipeline",
     "UpdateImagePipeline", "GetImagePipeline", "ListImagePipelines", "DeleteImagePipeline",
     "imagePipelineArn", "imagePipeline"},
    {IBS_KIND_LIFECYCLE_POLICY, "LifecyclePolicy", "lifecycle-policy", false,
     "CreateLifecyclePolicy", "UpdateLifecyclePolicy", "GetLifecyclePolicy",
     "ListLifecyclePolicies", "DeleteLifecyclePolicy", "lifecyclePolicyArn", "lifecyclePolicy"},
};

static const char *const kind_names[IBS_KIND_COUNT] = {
    "Component",
    "Workflow",
    "ImageRecipe",
    "ContainerRecipe",
    "InfrastructureConfiguration",
    "DistributionConfiguration",
    "ImagePipeline",
    "LifecyclePolicy",
};

const struct ibs_kind_info *ibs_model_kind_info(enum ibs_kind kind)
{
    if ((unsigned)kind >= IBS_KIND_COUNT)
        return NULL;
    return &kinds[kind];
}

int ibs_model_kind_parse(enum ibs_kind *out, const char *name)
{
    for (int i = 0; i < IBS_KIND_COUNT; i++) {
        if (strcmp(kinds[i].name, name) == 0) {
            *out = (enum ibs_kind)i;
            return 0;
        }
    }
    return ibs_error_set(IBS_ENOTFOUND, "unknown kind \"%s\"", name);
}

const char *const *ibs_model_kind_names(void)
{
    return kind_names;
}

void ibs_model_init(struct ibs_model *model)
{
    memset(model, 0, sizeof(*model));
    model->stack.prune = true;
    model->stack.retain_versions = 3;
}

static void ref_free(void *p)
{
    struct ibs_ref *ref = p;
    if (!ref)
        return;
    free(ref->path);
    free(ref->member);
    free(ref->name);
    free(ref->version);
    free(ref);
}

void ibs_model_resource_free(struct ibs_resource *res)
{
    if (!res)
        return;
    free(res->name);
    free(res->version);
    ibs_value_free(res->tags);
    ibs_value_free(res->spec);
    ibs_vec_release_with(&res->refs, ref_free);
    ibs_vec_release_with(&res->files, free);
    free(res);
}

static void resource_free_cb(void *p)
{
    ibs_model_resource_free(p);
}

void ibs_model_release(struct ibs_model *model)
{
    ibs_vec_release_with(&model->resources, resource_free_cb);
    free(model->stack.name);
    free(model->stack.region);
    ibs_value_free(model->stack.tags);
    free(model->commit);
    free(model->source);
    /* File names last: the values above borrow them. */
    ibs_vec_release_with(&model->files, free);
    ibs_model_init(model);
}

struct ibs_resource *ibs_model_find(const struct ibs_model *model, enum ibs_kind kind,
                                    const char *name, const char *version)
{
    for (size_t i = 0; i < model->resources.count; i++) {
        struct ibs_resource *r = model->resources.items[i];
        if (r->kind != kind || strcmp(r->name, name) != 0)
            continue;
        if (version && (!r->version || strcmp(r->version, version) != 0))
            continue;
        return r;
    }
    return NULL;
}

const char *ibs_model_intern_file(struct ibs_model *model, const char *name)
{
    for (size_t i = 0; i < model->files.count; i++)
        if (strcmp(model->files.items[i], name) == 0)
            return model->files.items[i];
    return ibs_model_add_file(model, name);
}

const char *ibs_model_add_file(struct ibs_model *model, const char *name)
{
    char *copy = strdup(name);

    if (!copy) {
        ibs_error_oom();
        return NULL;
    }
    if (ibs_vec_push(&model->files, copy)) {
        free(copy);
        return NULL;
    }
    return copy;
}

int ibs_model_resource_id(char **out, const struct ibs_resource *res)
{
    struct ibs_buf b = IBS_BUF_INIT;

    ibs_buf_printf(&b, "%s/%s", kinds[res->kind].name, res->name);
    if (res->version)
        ibs_buf_printf(&b, "@%s", res->version);
    *out = ibs_buf_detach(&b);
    return *out ? 0 : IBS_ENOMEM;
}
