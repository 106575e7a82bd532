/*
 * The desired-state model: what the loader builds from YAML and what diff,
 * plan and apply work from. Eight Image Builder resource kinds plus the one
 * optional Stack document. See docs/format.md for the user-facing format.
 *
 * Ownership: a struct ibs_model owns its resources, their specs and tags, and
 * the file names that every struct ibs_loc in the model borrows.
 */
#ifndef IBS_RECONCILE_MODEL_H
#define IBS_RECONCILE_MODEL_H

#include "util/value.h"
#include "util/vec.h"

#include <stdbool.h>
#include <stddef.h>

enum ibs_kind {
    IBS_KIND_COMPONENT,
    IBS_KIND_WORKFLOW,
    IBS_KIND_IMAGE_RECIPE,
    IBS_KIND_CONTAINER_RECIPE,
    IBS_KIND_INFRASTRUCTURE_CONFIGURATION,
    IBS_KIND_DISTRIBUTION_CONFIGURATION,
    IBS_KIND_IMAGE_PIPELINE,
    IBS_KIND_LIFECYCLE_POLICY,
    IBS_KIND_COUNT
};

/* Static facts about a kind: its API operations and ARN resource type. */
struct ibs_kind_info {
    enum ibs_kind kind;
    const char *name;       /* "Component": the `kind:` of desired state */
    const char *arn_type;   /* "component": the ARN resource type */
    bool versioned;         /* immutable, versioned by semanticVersion */
    const char *create_op;  /* "CreateComponent" */
    const char *update_op;  /* "UpdateInfrastructureConfiguration", or NULL */
    const char *get_op;     /* "GetComponent" */
    const char *list_op;    /* "ListComponents" */
    const char *delete_op;  /* "DeleteComponent" */
    const char *arn_member; /* request member naming the resource in Get/Delete */
    const char *get_key;    /* member of the Get response holding the resource */
};

/* The table entry of `kind`; never NULL for a valid kind. */
const struct ibs_kind_info *ibs_model_kind_info(enum ibs_kind kind);

/* Looks a kind up by its desired-state name ("ImageRecipe"); IBS_ENOTFOUND. */
int ibs_model_kind_parse(enum ibs_kind *out, const char *name);

/* All kind names (for suggestions), IBS_KIND_COUNT entries. */
const char *const *ibs_model_kind_names(void);

/* A {ref: NAME} in a spec, resolved by the loader. */
struct ibs_ref {
    char *path;                  /* member path in the spec: "components[0].componentArn" */
    char *member;                /* the member name: "componentArn" */
    enum ibs_kind kind;          /* kind the member refers to */
    char *name;                  /* the referenced resource's name */
    char *version;               /* optional `version:` in the ref, else NULL */
    struct ibs_loc loc;          /* location of the {ref:} map */
    struct ibs_resource *target; /* resolved target (borrowed), NULL until resolved */
};

enum ibs_deletion_policy {
    IBS_DELETION_DELETE, /* pruned when removed from desired state (default) */
    IBS_DELETION_RETAIN, /* never pruned or destroyed by ibsync */
};

struct ibs_resource {
    enum ibs_kind kind;
    char *name;             /* metadata.name */
    char *version;          /* spec.semanticVersion for versioned kinds, else NULL */
    struct ibs_value *tags; /* metadata.tags (map), or NULL */
    struct ibs_value *spec; /* spec map; {file:} already replaced by the file text;
                               {ref:} maps still in place (see refs) */
    enum ibs_deletion_policy deletion_policy;
    struct ibs_loc loc;   /* start of the document */
    struct ibs_vec refs;  /* struct ibs_ref * (owned) */
    struct ibs_vec files; /* char *: source paths read through {file:} (owned) */
    size_t index;         /* position in model->resources */
};

struct ibs_stack {
    char *name;             /* metadata.name, default: the source directory name */
    char *region;           /* spec.region, or NULL */
    bool prune;             /* spec.prune, default true */
    long retain_versions;   /* spec.retainVersions, default 3 */
    struct ibs_value *tags; /* spec.tags (map), or NULL */
    bool declared;          /* a Stack document was present */
    struct ibs_loc loc;
};

struct ibs_model {
    struct ibs_stack stack;
    struct ibs_vec resources; /* struct ibs_resource * (owned), in source order */
    struct ibs_vec files;     /* char *: every file name used in locations (owned) */
    char *commit;             /* git commit the model was read from, or NULL */
    char *source;             /* description of the source */
};

void ibs_model_init(struct ibs_model *model);
void ibs_model_release(struct ibs_model *model);

/* Frees a resource and everything it owns. Accepts NULL. */
void ibs_model_resource_free(struct ibs_resource *res);

/*
 * The resource of `kind` called `name` (and `version` when not NULL), or
 * NULL. Borrowed. Names compare exactly.
 */
struct ibs_resource *ibs_model_find(const struct ibs_model *model, enum ibs_kind kind,
                                    const char *name, const char *version);

/* Copies `name` into the model's file-name table and returns the stable
 * copy (borrowed from the model), or NULL when out of memory. */
const char *ibs_model_intern_file(struct ibs_model *model, const char *name);

/* Like ibs_model_intern_file() for a name known to be new (no search). */
const char *ibs_model_add_file(struct ibs_model *model, const char *name);

/* "Component/install-nginx" or "Component/install-nginx@1.0.0" into out. */
int ibs_model_resource_id(char **out, const struct ibs_resource *res);

#endif
