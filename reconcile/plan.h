/*
 * The plan: what must change in an account for it to match the desired
 * model, as a DAG of actions.
 *
 * Versioned kinds (Component, Workflow, ImageRecipe, ContainerRecipe) are
 * immutable: `semanticVersion` is a floor, and ibsync decides from content.
 * A live version in the same MAJOR.MINOR, at or above the floor, whose
 * ibsync:hash tag equals the hash of the resolved spec is the current one
 * (a revert in git reuses it); otherwise the next free patch version is
 * published (the floor itself when none exists). Refs resolve to the chosen
 * versions before hashing, so a new component version cascades to the
 * recipes that use it and to the pipelines that use those.
 *
 * Mutable kinds are created, or updated in place when their hash tag or a
 * declared field (drift) differs. Managed resources (tag ibsync:stack) that
 * are no longer declared are pruned; superseded versions beyond
 * retainVersions are deleted once nothing desired references them.
 *
 * Ordering: referenced before referencing on create/update; referencing
 * before referenced on delete; new versions before the updates that point
 * at them and before the deletes of what they replace.
 */
#ifndef IBS_RECONCILE_PLAN_H
#define IBS_RECONCILE_PLAN_H

#include "providers/provider.h"
#include "reconcile/live.h"
#include "reconcile/model.h"
#include "util/value.h"
#include "util/vec.h"

#include <stdbool.h>
#include <stddef.h>

enum ibs_action_type {
    IBS_ACTION_CREATE,      /* a new resource (or the first version of a name) */
    IBS_ACTION_NEW_VERSION, /* a new version of a versioned resource */
    IBS_ACTION_UPDATE,      /* update in place (mutable kinds) */
    IBS_ACTION_TAG,         /* tags only */
    IBS_ACTION_DELETE,
    IBS_ACTION_TYPE_COUNT
};

struct ibs_action {
    size_t id; /* index in plan->actions */
    enum ibs_action_type type;
    enum ibs_kind kind;
    char *name;
    char *version;             /* versioned kinds: version created or deleted */
    char *arn;                 /* the live ARN acted on (update, tag, delete), else NULL */
    char *replaces;            /* new version: the version it supersedes, or NULL */
    char *reason;              /* why, for people: "new", "spec changed", ... */
    char *hash;                /* create/new version/update: desired content hash */
    struct ibs_value *request; /* create/new version/update: the request in placeholder
                                  form, with name, tags and semanticVersion set */
    struct ibs_value *tags;    /* tags to set (map), or NULL */
    struct ibs_vec untag;      /* char *: tag keys to remove */
    struct ibs_vec diffs;      /* struct ibs_field_diff * */
    size_t *deps;              /* ids of actions that must complete first */
    size_t ndeps;
    char client_token[37];
    char *key; /* stable identity: "create Component/x@1.0.1 <hash>" */
};

struct ibs_plan_conflict {
    enum ibs_kind kind;
    char *name;
    char *arn;
    char *message;
};

struct ibs_plan {
    char id[41];
    char *stack;
    char *region;
    char *account;
    char *commit;
    char *source;
    char *fingerprint;         /* digest of the live state the plan was computed from */
    struct ibs_vec actions;    /* struct ibs_action * (owned) */
    struct ibs_vec conflicts;  /* struct ibs_plan_conflict * (owned) */
    struct ibs_value *symbols; /* map "Kind/name@version" -> ARN known at plan time */
    size_t live_calls;         /* API calls made reading live state */
};

enum {
    IBS_PLAN_DESTROY = 1 << 0, /* plan the removal of everything the stack manages */
};

struct ibs_plan_options {
    unsigned flags;
    const char *const *targets; /* "Kind/name" to narrow to (with dependencies), or NULL */
    size_t ntargets;
    const char *const *excludes; /* "Kind/name" to leave out, or NULL */
    size_t nexcludes;
};

void ibs_plan_init(struct ibs_plan *plan);
void ibs_plan_release(struct ibs_plan *plan);

/*
 * Computes the plan that makes the account behind `p` match `model`. `live`
 * must have been read with ibs_live_read (details are fetched as needed).
 * `opts` may be NULL. Conflicts (a live resource with a declared name that
 * the stack does not manage) are reported in plan->conflicts, not acted on.
 */
int ibs_plan_compute(struct ibs_plan *plan, const struct ibs_model *model, struct ibs_live *live,
                     struct ibs_provider *p, const struct ibs_plan_options *opts);

/* Number of actions of each type into counts[IBS_ACTION_TYPE_COUNT]. */
void ibs_plan_count(const struct ibs_plan *plan, size_t counts[IBS_ACTION_TYPE_COUNT]);

/* "create", "new version", "update", "tag", "delete". */
const char *ibs_action_type_name(enum ibs_action_type type);

/* The live-state fingerprint of `live` (hex) into *out (caller frees). */
int ibs_plan_fingerprint(char **out, const struct ibs_live *live, const char *stack);

/* Plan <-> the versioned JSON document of docs/plan-json.md (saved plans). */
int ibs_plan_to_value(struct ibs_value **out, const struct ibs_plan *plan);
int ibs_plan_from_value(struct ibs_plan *plan, const struct ibs_value *doc);

/*
 * The document of ibs_plan_to_value() for writing it out, borrowing the
 * plan's requests, tags, changed values and symbols instead of copying them
 * (they are most of a large plan: 40 MB at 10,000 creates). Read it only;
 * free it with ibs_plan_value_view_free() and the same plan, before the
 * plan changes or is released, never with ibs_value_free().
 */
int ibs_plan_to_value_view(struct ibs_value **out, const struct ibs_plan *plan);

/* Frees a document of ibs_plan_to_value_view(), leaving the plan's values. Accepts NULL. */
void ibs_plan_value_view_free(struct ibs_value *doc, const struct ibs_plan *plan);

#define IBS_PLAN_FORMAT_VERSION 1

#endif
