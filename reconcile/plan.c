/*
 * Plan computation; the rules are in plan.h. Desired resources are visited
 * in dependency order so that every ref target's version is chosen before
 * the resources that reference it are hashed.
 */
#include "reconcile/plan.h"

#include "reconcile/diff.h"
#include "reconcile/graph.h"
#include "reconcile/request.h"
#include "state/digest.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What the plan decided for one desired resource. */
struct choice {
    char *version;                  /* chosen version (versioned kinds) */
    const char *arn;                /* live ARN when it already exists (borrowed) */
    struct ibs_action *action;      /* create/new version/update, or NULL */
    struct ibs_live_resource *live; /* the live resource it matches, or NULL */
};

struct planner {
    struct ibs_plan *plan;
    const struct ibs_model *model;
    struct ibs_live *live;
    struct ibs_provider *p;
    const struct ibs_plan_options *opts;
    struct choice *choices;        /* per model resource */
    bool *keep;                    /* per live resource: matched, not to delete */
    bool *conflicted;              /* per live resource */
    char unknown[600];             /* arn_or_symbol()'s answer for an unknown ARN */
    struct ibs_resource **msorted; /* model resources by (kind, name) */
    struct ibs_value_index *symix; /* index of plan->symbols */
};

static const char *const type_names[IBS_ACTION_TYPE_COUNT] = {"create", "new version", "update",
                                                              "tag", "delete"};

const char *ibs_action_type_name(enum ibs_action_type type)
{
    return (unsigned)type < IBS_ACTION_TYPE_COUNT ? type_names[type] : "?";
}

void ibs_plan_init(struct ibs_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
}

static void action_free(void *p)
{
    struct ibs_action *a = p;
    if (!a)
        return;
    free(a->name);
    free(a->version);
    free(a->arn);
    free(a->replaces);
    free(a->reason);
    free(a->hash);
    free(a->key);
    ibs_value_free(a->request);
    ibs_value_free(a->tags);
    ibs_vec_release_with(&a->untag, free);
    ibs_diff_release_all(&a->diffs);
    free(a->deps);
    free(a);
}

static void conflict_free(void *p)
{
    struct ibs_plan_conflict *c = p;
    if (!c)
        return;
    free(c->name);
    free(c->arn);
    free(c->message);
    free(c);
}

void ibs_plan_release(struct ibs_plan *plan)
{
    ibs_vec_release_with(&plan->actions, action_free);
    ibs_vec_release_with(&plan->conflicts, conflict_free);
    ibs_value_free(plan->symbols);
    free(plan->stack);
    free(plan->region);
    free(plan->account);
    free(plan->commit);
    free(plan->source);
    free(plan->fingerprint);
    ibs_plan_init(plan);
}

void ibs_plan_count(const struct ibs_plan *plan, size_t counts[IBS_ACTION_TYPE_COUNT])
{
    memset(counts, 0, IBS_ACTION_TYPE_COUNT * sizeof(size_t));
    for (size_t i = 0; i < plan->actions.count; i++)
        counts[((struct ibs_action *)plan->actions.items[i])->type]++;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static struct ibs_action *new_action(struct planner *pl, enum ibs_action_type type,
                                     enum ibs_kind kind, const char *name, const char *version,
                                     const char *arn, const char *reason)
{
    struct ibs_action *a = calloc(1, sizeof(*a));

    if (!a) {
        ibs_error_oom();
        return NULL;
    }
    a->type = type;
    a->kind = kind;
    a->name = strdup(name);
    a->version = dup_or_null(version);
    a->arn = dup_or_null(arn);
    a->reason = strdup(reason);
    if (!a->name || (version && !a->version) || (arn && !a->arn) || !a->reason) {
        action_free(a);
        ibs_error_oom();
        return NULL;
    }
    a->id = pl->plan->actions.count;
    if (ibs_vec_push(&pl->plan->actions, a)) {
        action_free(a);
        return NULL;
    }
    return a;
}

static int add_conflict(struct planner *pl, const struct ibs_live_resource *l)
{
    struct ibs_plan_conflict *c = calloc(1, sizeof(*c));
    struct ibs_buf msg = IBS_BUF_INIT;
    const char *kind = ibs_model_kind_info(l->kind)->name;
    int rc;

    if (!c)
        return ibs_error_oom();
    if (l->stack)
        ibs_buf_printf(&msg, "%s \"%s\" exists and belongs to stack \"%s\", not \"%s\"", kind,
                       l->name, l->stack, pl->plan->stack);
    else
        ibs_buf_printf(&msg,
                       "%s \"%s\" exists but is not managed by ibsync; to adopt it, tag it "
                       "with %s=%s (aws imagebuilder tag-resource --resource-arn %s --tags "
                       "%s=%s), or rename the resource in git",
                       kind, l->name, IBS_TAG_STACK, pl->plan->stack, l->build_arn, IBS_TAG_STACK,
                       pl->plan->stack);
    c->kind = l->kind;
    c->name = strdup(l->name);
    c->arn = strdup(l->arn);
    c->message = ibs_buf_detach(&msg);
    if (!c->name || !c->arn || !c->message) {
        conflict_free(c);
        return ibs_error_oom();
    }
    if ((rc = ibs_vec_push(&pl->plan->conflicts, c)))
        conflict_free(c);
    return rc;
}

static const char *version_of(void *ctx, const struct ibs_resource *target)
{
    struct planner *pl = ctx;
    return pl->choices[target->index].version;
}

/* Placeholder -> ARN for drift comparison: the known ARN, else the symbol
 * itself (which never equals a live value, so it shows as a change). */
static const char *arn_or_symbol(void *ctx, const char *symbol, const char *member)
{
    struct planner *pl = ctx;
    const struct ibs_value *v = ibs_value_index_get(pl->symix, pl->plan->symbols, symbol);
    (void)member;
    if (v && v->type == IBS_VALUE_STRING)
        return v->str;
    snprintf(pl->unknown, sizeof(pl->unknown), "(known after apply: %s)", symbol);
    return pl->unknown;
}

/* The tags a managed resource must carry: stack defaults, its own tags, and
 * ibsync's. */
static int desired_tags(struct ibs_value **out, const struct planner *pl,
                        const struct ibs_resource *r, const char *hash)
{
    struct ibs_value *tags = NULL;
    int rc = 0;

    *out = NULL;
    if (pl->model->stack.tags)
        rc = ibs_value_clone(&tags, pl->model->stack.tags);
    else if (!(tags = ibs_value_new_map()))
        rc = IBS_ENOMEM;
    if (rc)
        return rc;
    for (size_t i = 0; r->tags && i < r->tags->count; i++) {
        const struct ibs_member *m = &r->tags->u.members[i];
        struct ibs_value *v = ibs_value_new_stringn(m->value->str ? m->value->str : "",
                                                    m->value->str ? m->value->len : 0);
        if ((rc = ibs_value_map_set(tags, m->key, v)))
            goto done;
    }
    for (size_t i = 0; i < tags->count; i++) {
        struct ibs_value *v = tags->u.members[i].value;
        if (v->type != IBS_VALUE_STRING) {
            struct ibs_value *s = ibs_value_new_stringn(v->str ? v->str : "", v->str ? v->len : 0);
            if (!s) {
                rc = IBS_ENOMEM;
                goto done;
            }
            ibs_value_free(v);
            tags->u.members[i].value = s;
        }
    }
    if ((rc = ibs_value_map_set(tags, IBS_TAG_STACK, ibs_value_new_string(pl->plan->stack))) ||
        (rc = ibs_value_map_set(tags, IBS_TAG_HASH, ibs_value_new_string(hash))))
        goto done;
    if (r->deletion_policy == IBS_DELETION_RETAIN &&
        (rc = ibs_value_map_set(tags, IBS_TAG_RETAIN, ibs_value_new_string("Retain"))))
        goto done;
    *out = tags;
    tags = NULL;
done:
    ibs_value_free(tags);
    return rc;
}

/* Fills a->tags / a->untag with what differs between desired and live tags.
 * Returns 1 if anything differs. */
static int tag_delta(struct ibs_action *a, const struct ibs_value *want,
                     const struct ibs_value *have)
{
    struct ibs_value *set = ibs_value_new_map();
    int rc = 0, differs = 0;

    if (!set)
        return IBS_ENOMEM;
    for (size_t i = 0; i < want->count; i++) {
        const struct ibs_member *m = &want->u.members[i];
        const struct ibs_value *h = ibs_value_map_get(have, m->key);
        if (h && ibs_value_equal(h, m->value))
            continue;
        struct ibs_value *c = NULL;
        if ((rc = ibs_value_clone(&c, m->value)) || (rc = ibs_value_map_set(set, m->key, c)))
            goto done;
        differs = 1;
    }
    for (size_t i = 0; have && i < have->count; i++) {
        const char *k = have->u.members[i].key;
        char *copy;
        if (ibs_value_map_get(want, k) || strncmp(k, "aws:", 4) == 0)
            continue;
        if (!(copy = strdup(k))) {
            rc = ibs_error_oom();
            goto done;
        }
        if ((rc = ibs_vec_push(&a->untag, copy))) {
            free(copy);
            goto done;
        }
        differs = 1;
    }
    if (set->count) {
        ibs_value_free(a->tags);
        a->tags = set;
        set = NULL;
    }
done:
    ibs_value_free(set);
    return rc ? rc : differs;
}

static int set_request(struct ibs_action *a, const struct planner *pl, const struct ibs_resource *r,
                       struct ibs_value *req, const char *hash, const char *version)
{
    struct ibs_value *tags = NULL;
    int rc;

    if ((rc = ibs_value_map_set(req, "name", ibs_value_new_string(r->name))))
        return rc;
    if (version && (rc = ibs_value_map_set(req, "semanticVersion", ibs_value_new_string(version))))
        return rc;
    if ((rc = desired_tags(&tags, pl, r, hash)))
        return rc;
    if ((rc = ibs_value_map_set(req, "tags", tags)))
        return rc;
    if (!(a->hash = strdup(hash)))
        return ibs_error_oom();
    return 0;
}

static int set_symbol(struct planner *pl, const struct ibs_resource *r, const char *version,
                      const char *arn)
{
    char *sym = NULL;
    int rc;

    if ((rc = ibs_request_symbol(&sym, r->kind, r->name, version)))
        return rc;
    rc = ibs_value_index_set(pl->symix, pl->plan->symbols, sym, ibs_value_new_string(arn));
    free(sym);
    return rc;
}

/* Why a resource whose content changed needs a new version or update:
 * a cascade when a ref target gets a new version, else a spec change. */
static char *change_reason(const struct planner *pl, const struct ibs_resource *r)
{
    struct ibs_buf b = IBS_BUF_INIT;

    for (size_t i = 0; i < r->refs.count; i++) {
        const struct ibs_ref *ref = r->refs.items[i];
        const struct choice *c = &pl->choices[ref->target->index];
        if (!c->action || c->action->type == IBS_ACTION_TAG || c->action->type == IBS_ACTION_UPDATE)
            continue;
        ibs_buf_printf(&b, "%s%s %s",
                       b.size ? "; " : "cascade: ", ibs_model_kind_info(ref->target->kind)->name,
                       ref->target->name);
        if (c->version)
            ibs_buf_printf(&b, " is now version %s", c->version);
        else
            ibs_buf_puts(&b, " is new");
    }
    if (!b.size)
        ibs_buf_puts(&b, "spec changed");
    return ibs_buf_detach(&b);
}

static int diff_against(struct ibs_action *a, struct planner *pl, struct ibs_live_resource *l,
                        const struct ibs_value *req)
{
    const struct ibs_value *detail = NULL;
    struct ibs_value *resolved = NULL;
    int rc;

    if ((rc = ibs_live_detail(&detail, pl->live, pl->p, l)))
        return rc;
    if ((rc = ibs_request_resolve(&resolved, req, arn_or_symbol, pl)))
        return rc;
    /* name, tags and the version are not content. */
    ibs_value_map_remove(resolved, "name");
    ibs_value_map_remove(resolved, "tags");
    ibs_value_map_remove(resolved, "semanticVersion");
    rc = ibs_diff_declared(&a->diffs, resolved, detail, "");
    ibs_value_free(resolved);
    return rc;
}

static int plan_versioned(struct planner *pl, const struct ibs_resource *r, struct ibs_value *req,
                          const char *hash)
{
    struct choice *c = &pl->choices[r->index];
    struct ibs_vec lives = IBS_VEC_INIT;
    struct ibs_semver floor, best = {0, 0, 0}, top = {0, 0, 0};
    struct ibs_live_resource *current = NULL, *latest = NULL;
    bool any_same_minor = false;
    char version[64];
    int rc;

    if ((rc = ibs_semver_parse(&floor, r->version)))
        goto done;
    if ((rc = ibs_live_find(&lives, pl->live, r->kind, r->name)))
        goto done;
    for (size_t i = 0; i < lives.count; i++) {
        struct ibs_live_resource *l = lives.items[i];
        if (!l->stack || strcmp(l->stack, pl->plan->stack) != 0) {
            size_t li = l->index;
            if (!pl->conflicted[li]) {
                pl->conflicted[li] = true;
                if ((rc = add_conflict(pl, l)))
                    goto done;
            }
            rc = 0;
            goto done_conflict;
        }
    }
    for (size_t i = 0; i < lives.count; i++) {
        struct ibs_live_resource *l = lives.items[i];
        struct ibs_semver v;
        if (ibs_semver_parse(&v, l->version))
            continue;
        if (!latest || ibs_semver_compare(&v, &top) > 0) {
            latest = l;
            top = v;
        }
        if (v.major != floor.major || v.minor != floor.minor)
            continue;
        if (!any_same_minor || ibs_semver_compare(&v, &best) > 0)
            best = v;
        any_same_minor = true;
        if (ibs_semver_compare(&v, &floor) >= 0 && l->hash && strcmp(l->hash, hash) == 0) {
            struct ibs_semver cv;
            if (!current ||
                (ibs_semver_parse(&cv, current->version) == 0 && ibs_semver_compare(&v, &cv) > 0))
                current = l;
        }
    }
    if (current) {
        struct ibs_value *want = NULL;
        struct ibs_action probe = {0};
        c->version = strdup(current->version);
        c->arn = current->arn;
        c->live = current;
        if (!c->version) {
            rc = ibs_error_oom();
            goto done;
        }
        pl->keep[current->index] = true;
        if ((rc = set_symbol(pl, r, c->version, current->arn)))
            goto done;
        if ((rc = desired_tags(&want, pl, r, hash)))
            goto done;
        rc = tag_delta(&probe, want, current->tags);
        ibs_value_free(want);
        if (rc > 0) {
            struct ibs_action *a = new_action(pl, IBS_ACTION_TAG, r->kind, r->name, c->version,
                                              current->build_arn, "tags changed");
            if (!a) {
                rc = IBS_ENOMEM;
                ibs_value_free(probe.tags);
                ibs_vec_release_with(&probe.untag, free);
                goto done;
            }
            a->tags = probe.tags;
            a->untag = probe.untag;
            c->action = a;
            rc = 0;
        } else {
            ibs_value_free(probe.tags);
            ibs_vec_release_with(&probe.untag, free);
        }
        goto done;
    }
    {
        struct ibs_semver next = floor;
        struct ibs_action *a;
        char *reason;
        if (any_same_minor && ibs_semver_compare(&best, &floor) >= 0)
            next.patch = best.patch + 1;
        ibs_semver_format(version, sizeof(version), &next);
        reason = lives.count ? change_reason(pl, r) : strdup("new");
        if (!reason) {
            rc = ibs_error_oom();
            goto done;
        }
        a = new_action(pl, lives.count ? IBS_ACTION_NEW_VERSION : IBS_ACTION_CREATE, r->kind,
                       r->name, version, NULL, reason);
        free(reason);
        if (!a) {
            rc = IBS_ENOMEM;
            goto done;
        }
        c->version = strdup(version);
        c->action = a;
        if (!c->version) {
            rc = ibs_error_oom();
            goto done;
        }
        if (latest) {
            if (!(a->replaces = strdup(latest->version))) {
                rc = ibs_error_oom();
                goto done;
            }
            if ((rc = diff_against(a, pl, latest, req)))
                goto done;
        }
        if ((rc = set_request(a, pl, r, req, hash, version)))
            goto done;
        a->request = req;
        req = NULL;
    }
    goto done;
done_conflict:
    c->version = strdup(r->version);
    if (!c->version)
        rc = ibs_error_oom();
done:
    ibs_value_free(req);
    ibs_vec_release(&lives);
    return rc;
}

static int plan_mutable(struct planner *pl, const struct ibs_resource *r, struct ibs_value *req,
                        const char *hash)
{
    struct choice *c = &pl->choices[r->index];
    struct ibs_vec lives = IBS_VEC_INIT;
    struct ibs_live_resource *l;
    struct ibs_action *a = NULL;
    struct ibs_value *want = NULL;
    int rc;

    if ((rc = ibs_live_find(&lives, pl->live, r->kind, r->name)))
        goto done;
    if (lives.count == 0) {
        a = new_action(pl, IBS_ACTION_CREATE, r->kind, r->name, NULL, NULL, "new");
        if (!a) {
            rc = IBS_ENOMEM;
            goto done;
        }
        c->action = a;
        if ((rc = set_request(a, pl, r, req, hash, NULL)))
            goto done;
        a->request = req;
        req = NULL;
        goto done;
    }
    l = lives.items[0];
    if (!l->stack || strcmp(l->stack, pl->plan->stack) != 0) {
        size_t li = l->index;
        if (!pl->conflicted[li]) {
            pl->conflicted[li] = true;
            rc = add_conflict(pl, l);
        }
        goto done;
    }
    pl->keep[l->index] = true;
    c->arn = l->arn;
    c->live = l;
    if ((rc = set_symbol(pl, r, NULL, l->arn)))
        goto done;
    {
        struct ibs_action probe = {0};
        bool changed = !l->hash || strcmp(l->hash, hash) != 0;
        char *reason = NULL;

        if ((rc = diff_against(&probe, pl, l, req))) {
            ibs_diff_release_all(&probe.diffs);
            goto done;
        }
        if (changed || probe.diffs.count) {
            reason = changed ? change_reason(pl, r) : strdup("drift: changed outside ibsync");
            if (!reason) {
                ibs_diff_release_all(&probe.diffs);
                rc = ibs_error_oom();
                goto done;
            }
            a = new_action(pl, IBS_ACTION_UPDATE, r->kind, r->name, NULL, l->arn, reason);
            free(reason);
            if (!a) {
                ibs_diff_release_all(&probe.diffs);
                rc = IBS_ENOMEM;
                goto done;
            }
            a->diffs = probe.diffs;
            c->action = a;
            if ((rc = set_request(a, pl, r, req, hash, NULL)))
                goto done;
            a->request = req;
            req = NULL;
        } else {
            ibs_diff_release_all(&probe.diffs);
        }
    }
    if ((rc = desired_tags(&want, pl, r, hash)))
        goto done;
    {
        struct ibs_action probe = {0};
        rc = tag_delta(&probe, want, l->tags);
        if (rc > 0) {
            if (!a) {
                a = new_action(pl, IBS_ACTION_TAG, r->kind, r->name, NULL, l->arn, "tags changed");
                c->action = a;
            }
            if (!a) {
                ibs_value_free(probe.tags);
                ibs_vec_release_with(&probe.untag, free);
                rc = IBS_ENOMEM;
                goto done;
            }
            ibs_value_free(a->tags);
            a->tags = probe.tags;
            ibs_vec_release_with(&a->untag, free);
            a->untag = probe.untag;
            rc = 0;
        } else {
            ibs_value_free(probe.tags);
            ibs_vec_release_with(&probe.untag, free);
        }
    }
done:
    ibs_value_free(want);
    ibs_value_free(req);
    ibs_vec_release(&lives);
    return rc;
}

static int cmp_res_kind_name(const void *a, const void *b)
{
    const struct ibs_resource *x = *(struct ibs_resource *const *)a;
    const struct ibs_resource *y = *(struct ibs_resource *const *)b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Whether a live resource's (kind, name) is declared: a binary search over
 * the planner's sorted copy of the model. */
static bool declared(const struct planner *pl, const struct ibs_live_resource *l)
{
    struct ibs_resource probe;
    const struct ibs_resource *pp = &probe;
    memset(&probe, 0, sizeof(probe));
    probe.kind = l->kind;
    probe.name = l->name;
    return pl->msorted && bsearch(&pp, pl->msorted, pl->model->resources.count,
                                  sizeof(*pl->msorted), cmp_res_kind_name) != NULL;
}

static int cmp_version_desc(const void *pa, const void *pb)
{
    const struct ibs_live_resource *a = *(struct ibs_live_resource *const *)pa;
    const struct ibs_live_resource *b = *(struct ibs_live_resource *const *)pb;
    struct ibs_semver va = {0, 0, 0}, vb = {0, 0, 0};
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    ibs_semver_parse(&va, a->version);
    ibs_semver_parse(&vb, b->version);
    return -ibs_semver_compare(&va, &vb);
}

/* Component versions that a kept live recipe still uses must stay. */
struct arn_ref {
    const char *arn;
    size_t index;
};

static int cmp_arn_ref(const void *a, const void *b)
{
    return strcmp(((const struct arn_ref *)a)->arn, ((const struct arn_ref *)b)->arn);
}

/* Component versions that a kept live recipe still uses must stay. Only
 * worth the recipe details when some managed component version is a
 * candidate for deletion. */
static int protect_components(struct planner *pl)
{
    struct arn_ref *refs = NULL;
    size_t n = 0;
    bool candidates = false;
    int rc = 0;

    for (size_t i = 0; i < pl->live->resources.count; i++) {
        const struct ibs_live_resource *l = pl->live->resources.items[i];
        if (l->kind == IBS_KIND_COMPONENT && !pl->keep[i] && l->stack &&
            strcmp(l->stack, pl->plan->stack) == 0)
            candidates = true;
    }
    if (!candidates)
        return 0;
    refs = malloc((2 * pl->live->resources.count + 1) * sizeof(*refs));
    if (!refs)
        return ibs_error_oom();
    for (size_t i = 0; i < pl->live->resources.count; i++) {
        const struct ibs_live_resource *l = pl->live->resources.items[i];
        if (l->kind != IBS_KIND_COMPONENT)
            continue;
        refs[n++] = (struct arn_ref){l->arn, i};
        refs[n++] = (struct arn_ref){l->build_arn, i};
    }
    qsort(refs, n, sizeof(*refs), cmp_arn_ref);
    for (size_t i = 0; i < pl->live->resources.count; i++) {
        struct ibs_live_resource *l = pl->live->resources.items[i];
        const struct ibs_value *detail, *components;
        if (!pl->keep[i] ||
            (l->kind != IBS_KIND_IMAGE_RECIPE && l->kind != IBS_KIND_CONTAINER_RECIPE))
            continue;
        if ((rc = ibs_live_detail(&detail, pl->live, pl->p, l)))
            break;
        components = ibs_value_map_get(detail, "components");
        for (size_t k = 0; components && k < components->count; k++) {
            struct arn_ref key = {ibs_value_map_get_str(components->u.items[k], "componentArn"), 0};
            const struct arn_ref *hit;
            if (!key.arn)
                continue;
            hit = bsearch(&key, refs, n, sizeof(*refs), cmp_arn_ref);
            if (hit)
                pl->keep[hit->index] = true;
        }
    }
    free(refs);
    return rc;
}

static int plan_deletes(struct planner *pl)
{
    const bool destroy = pl->opts && (pl->opts->flags & IBS_PLAN_DESTROY);
    struct ibs_vec superseded = IBS_VEC_INIT;
    int rc = 0;

    /* Superseded versions of declared names: keep the newest retainVersions. */
    for (size_t i = 0; !destroy && i < pl->live->resources.count; i++) {
        struct ibs_live_resource *l = pl->live->resources.items[i];
        if (pl->keep[i] || pl->conflicted[i] || !l->version || !l->stack ||
            strcmp(l->stack, pl->plan->stack) != 0 || !declared(pl, l))
            continue;
        if ((rc = ibs_vec_push(&superseded, l)))
            goto done;
    }
    ibs_vec_sort(&superseded, cmp_version_desc);
    for (size_t i = 0, run = 0; i < superseded.count; i++) {
        struct ibs_live_resource *l = superseded.items[i];
        struct ibs_live_resource *prev = i ? superseded.items[i - 1] : NULL;
        run = prev && prev->kind == l->kind && strcmp(prev->name, l->name) == 0 ? run + 1 : 0;
        if (run < (size_t)pl->model->stack.retain_versions)
            pl->keep[l->index] = true;
    }
    if ((rc = protect_components(pl)))
        goto done;
    for (size_t i = 0; i < pl->live->resources.count; i++) {
        struct ibs_live_resource *l = pl->live->resources.items[i];
        const char *reason;
        if (!l->stack || strcmp(l->stack, pl->plan->stack) != 0 || pl->conflicted[i])
            continue;
        if (destroy) {
            if (l->retain)
                continue;
            reason = "destroy";
        } else {
            if (pl->keep[i] || l->retain)
                continue;
            if (declared(pl, l)) {
                reason = "superseded version beyond retainVersions";
            } else {
                if (!pl->model->stack.prune)
                    continue;
                reason = "no longer declared (prune)";
            }
        }
        if (!new_action(pl, IBS_ACTION_DELETE, l->kind, l->name, l->version, l->build_arn,
                        reason)) {
            rc = IBS_ENOMEM;
            goto done;
        }
    }
done:
    ibs_vec_release(&superseded);
    return rc;
}

static int add_dep(struct ibs_action *a, size_t dep)
{
    size_t *p;
    if (dep == a->id)
        return 0;
    for (size_t i = 0; i < a->ndeps; i++)
        if (a->deps[i] == dep)
            return 0;
    p = realloc(a->deps, (a->ndeps + 1) * sizeof(*p));
    if (!p)
        return ibs_error_oom();
    a->deps = p;
    a->deps[a->ndeps++] = dep;
    return 0;
}

/* Whether resources of kind `from` can reference resources of kind `to`. */
static bool can_reference(enum ibs_kind from, enum ibs_kind to)
{
    switch (to) {
    case IBS_KIND_COMPONENT:
        return from == IBS_KIND_IMAGE_RECIPE || from == IBS_KIND_CONTAINER_RECIPE;
    case IBS_KIND_IMAGE_RECIPE:
        return from == IBS_KIND_IMAGE_PIPELINE || from == IBS_KIND_IMAGE_RECIPE;
    case IBS_KIND_CONTAINER_RECIPE:
        return from == IBS_KIND_IMAGE_PIPELINE || from == IBS_KIND_CONTAINER_RECIPE;
    case IBS_KIND_WORKFLOW:
    case IBS_KIND_INFRASTRUCTURE_CONFIGURATION:
    case IBS_KIND_DISTRIBUTION_CONFIGURATION:
        return from == IBS_KIND_IMAGE_PIPELINE;
    default:
        return false;
    }
}

static int plan_dependencies(struct planner *pl)
{
    struct ibs_vec *acts = &pl->plan->actions;
    int rc = 0;

    /* Creates and updates wait for the ref targets they point at. */
    for (size_t i = 0; i < pl->model->resources.count; i++) {
        const struct ibs_resource *r = pl->model->resources.items[i];
        struct ibs_action *a = pl->choices[i].action;
        if (!a || a->type == IBS_ACTION_TAG)
            continue;
        for (size_t k = 0; !rc && k < r->refs.count; k++) {
            const struct ibs_ref *ref = r->refs.items[k];
            struct ibs_action *t = pl->choices[ref->target->index].action;
            if (t && (t->type == IBS_ACTION_CREATE || t->type == IBS_ACTION_NEW_VERSION))
                rc = add_dep(a, t->id);
        }
    }
    /* Deletes wait for everything that could still point at what they
     * delete (updates moving pipelines, deletes of referencing resources),
     * and for the new version that replaces them. */
    for (size_t i = 0; !rc && i < acts->count; i++) {
        struct ibs_action *d = acts->items[i];
        if (d->type != IBS_ACTION_DELETE)
            continue;
        for (size_t j = 0; !rc && j < acts->count; j++) {
            struct ibs_action *o = acts->items[j];
            if (o == d)
                continue;
            if (o->kind == d->kind && strcmp(o->name, d->name) == 0 &&
                (o->type == IBS_ACTION_CREATE || o->type == IBS_ACTION_NEW_VERSION))
                rc = add_dep(d, o->id);
            else if (can_reference(o->kind, d->kind) && o->type != IBS_ACTION_TAG &&
                     !(o->kind == d->kind && o->type == IBS_ACTION_DELETE))
                /* Two deletes of one kind (recipes naming each other as parent
                 * image) are not ordered: that would need every recipe's
                 * details, and the service reports a real dependency. */
                rc = add_dep(d, o->id);
        }
    }
    return rc;
}

static int action_key(struct ibs_action *a)
{
    struct ibs_buf b = IBS_BUF_INIT;
    ibs_buf_printf(&b, "%s %s/%s", ibs_action_type_name(a->type),
                   ibs_model_kind_info(a->kind)->name, a->name);
    if (a->version)
        ibs_buf_printf(&b, "@%s", a->version);
    ibs_buf_printf(&b, " %s", a->hash ? a->hash : a->arn ? a->arn : "");
    a->key = ibs_buf_detach(&b);
    return a->key ? 0 : IBS_ENOMEM;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int ibs_plan_fingerprint(char **out, const struct ibs_live *live, const char *stack)
{
    struct ibs_vec lines = IBS_VEC_INIT;
    struct ibs_buf b = IBS_BUF_INIT;
    char hex[41];
    int rc = 0;

    *out = NULL;
    for (size_t i = 0; !rc && i < live->resources.count; i++) {
        const struct ibs_live_resource *l = live->resources.items[i];
        struct ibs_buf line = IBS_BUF_INIT;
        char *s;
        /* Identity, every tag and the last update: what a plan depends on. */
        ibs_buf_printf(&line, "%s %s ", l->build_arn, l->date_updated ? l->date_updated : "-");
        ibs_json_write(&line, l->tags, IBS_JSON_SORTED);
        (void)stack;
        if (!(s = ibs_buf_detach(&line))) {
            rc = IBS_ENOMEM;
            break;
        }
        if ((rc = ibs_vec_push(&lines, s)))
            free(s);
    }
    if (rc)
        goto done;
    ibs_vec_sort(&lines, cmp_str_ptr);
    for (size_t i = 0; i < lines.count; i++)
        ibs_buf_printf(&b, "%s\n", (char *)lines.items[i]);
    if ((rc = ibs_buf_oom(&b)) || (rc = ibs_digest_hex(hex, b.ptr, b.size)))
        goto done;
    if (!(*out = strdup(hex)))
        rc = ibs_error_oom();
done:
    ibs_vec_release_with(&lines, free);
    ibs_buf_release(&b);
    return rc;
}

static int finish_ids(struct ibs_plan *plan)
{
    struct ibs_buf b = IBS_BUF_INIT;
    struct ibs_vec keys = IBS_VEC_INIT;
    int rc = 0;

    for (size_t i = 0; !rc && i < plan->actions.count; i++) {
        struct ibs_action *a = plan->actions.items[i];
        if (!(rc = action_key(a)))
            rc = ibs_vec_push(&keys, a->key);
    }
    if (rc)
        goto done;
    ibs_vec_sort(&keys, cmp_str_ptr);
    /* A plan id is unique per computation: clientTokens derive from it, and
     * the service answers a token it has seen (for hours) with the first
     * result. Two plans of identical content (apply, destroy, apply again)
     * must therefore not share tokens; an interrupted apply reuses its tokens
     * through the journal or the saved plan instead. */
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ibs_buf_printf(&b, "%lld.%09ld %ld\n", (long long)ts.tv_sec, ts.tv_nsec, (long)getpid());
    }
    ibs_buf_printf(&b, "%s\n%s\n", plan->stack, plan->fingerprint ? plan->fingerprint : "");
    for (size_t i = 0; i < keys.count; i++)
        ibs_buf_printf(&b, "%s\n", (char *)keys.items[i]);
    if ((rc = ibs_buf_oom(&b)) || (rc = ibs_digest_hex(plan->id, b.ptr, b.size)))
        goto done;
    for (size_t i = 0; !rc && i < plan->actions.count; i++) {
        struct ibs_action *a = plan->actions.items[i];
        rc = ibs_request_client_token(a->client_token, plan->id, a->key);
    }
done:
    ibs_vec_release(&keys);
    ibs_buf_release(&b);
    return rc;
}

static bool matches_any(const struct ibs_action *a, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = list[i];
        const char *slash = strchr(s, '/');
        size_t kl = slash ? (size_t)(slash - s) : 0;
        const char *kind = ibs_model_kind_info(a->kind)->name;
        if (slash && strlen(kind) == kl && strncmp(kind, s, kl) == 0 &&
            strcmp(slash + 1, a->name) == 0)
            return true;
    }
    return false;
}

/* --target / --exclude: keep the targeted actions and what they depend on;
 * refuse to exclude something a kept action depends on. */
static int narrow(struct ibs_plan *plan, const struct ibs_plan_options *opts)
{
    size_t n = plan->actions.count;
    bool *keep = NULL;
    size_t *remap = NULL;
    struct ibs_vec kept = IBS_VEC_INIT;
    int rc = 0;

    if (!opts || (!opts->ntargets && !opts->nexcludes))
        return 0;
    keep = calloc(n ? n : 1, sizeof(bool));
    remap = calloc(n ? n : 1, sizeof(size_t));
    if (!keep || !remap) {
        rc = ibs_error_oom();
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        keep[i] =
            !opts->ntargets || matches_any(plan->actions.items[i], opts->targets, opts->ntargets);
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = 0; i < n; i++) {
            struct ibs_action *a = plan->actions.items[i];
            for (size_t k = 0; keep[i] && k < a->ndeps; k++)
                if (!keep[a->deps[k]]) {
                    keep[a->deps[k]] = true;
                    grew = true;
                }
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct ibs_action *a = plan->actions.items[i];
        if (!matches_any(a, opts->excludes, opts->nexcludes))
            continue;
        for (size_t j = 0; j < n; j++) {
            struct ibs_action *o = plan->actions.items[j];
            if (!keep[j] || matches_any(o, opts->excludes, opts->nexcludes))
                continue;
            for (size_t k = 0; k < o->ndeps; k++)
                if (o->deps[k] == i) {
                    rc = ibs_error_set(IBS_EINVALID, "cannot exclude %s/%s: %s %s/%s depends on it",
                                       ibs_model_kind_info(a->kind)->name, a->name,
                                       ibs_action_type_name(o->type),
                                       ibs_model_kind_info(o->kind)->name, o->name);
                    goto done;
                }
        }
        keep[i] = false;
    }
    for (size_t i = 0; i < n; i++) {
        struct ibs_action *a = plan->actions.items[i];
        if (!keep[i]) {
            action_free(a);
            continue;
        }
        remap[i] = kept.count;
        a->id = kept.count;
        if ((rc = ibs_vec_push(&kept, a))) {
            action_free(a);
            goto done;
        }
    }
    for (size_t i = 0; i < kept.count; i++) {
        struct ibs_action *a = kept.items[i];
        for (size_t k = 0; k < a->ndeps; k++)
            a->deps[k] = remap[a->deps[k]];
    }
    ibs_vec_release(&plan->actions);
    plan->actions = kept;
    ibs_vec_init(&kept);
done:
    ibs_vec_release(&kept);
    free(keep);
    free(remap);
    return rc;
}

int ibs_plan_compute(struct ibs_plan *plan, const struct ibs_model *model, struct ibs_live *live,
                     struct ibs_provider *p, const struct ibs_plan_options *opts)
{
    struct planner pl = {plan, model, live, p, opts, NULL, NULL, NULL, {0}, NULL, NULL};
    struct ibs_graph g;
    size_t *order = NULL;
    size_t nres = model->resources.count;
    const bool destroy = opts && (opts->flags & IBS_PLAN_DESTROY);
    int rc;

    memset(&g, 0, sizeof(g));
    plan->stack = strdup(model->stack.name ? model->stack.name : "default");
    plan->symbols = ibs_value_new_map();
    if (!plan->stack || !plan->symbols || ibs_value_index_new(&pl.symix, plan->symbols) ||
        (model->commit && !(plan->commit = strdup(model->commit))) ||
        (model->source && !(plan->source = strdup(model->source))) ||
        (p->region && !(plan->region = strdup(p->region))) ||
        (live->account && !(plan->account = strdup(live->account)))) {
        rc = ibs_error_oom();
        goto done;
    }
    pl.choices = calloc(nres ? nres : 1, sizeof(*pl.choices));
    pl.keep = calloc(live->resources.count + 1, sizeof(bool));
    pl.conflicted = calloc(live->resources.count + 1, sizeof(bool));
    if (!pl.choices || !pl.keep || !pl.conflicted) {
        rc = ibs_error_oom();
        goto done;
    }
    if ((rc = ibs_plan_fingerprint(&plan->fingerprint, live, plan->stack)))
        goto done;
    if (!destroy && (rc = ibs_live_prefetch(live, p, plan->stack)))
        goto done;
    if ((rc = ibs_graph_init(&g, nres)))
        goto done;
    for (size_t i = 0; i < nres; i++) {
        struct ibs_resource *r = model->resources.items[i];
        r->index = i;
    }
    for (size_t i = 0; i < nres; i++) {
        const struct ibs_resource *r = model->resources.items[i];
        for (size_t k = 0; k < r->refs.count; k++) {
            const struct ibs_ref *ref = r->refs.items[k];
            if (ref->target && (rc = ibs_graph_add_edge(&g, i, ref->target->index)))
                goto done;
        }
    }
    if ((rc = ibs_graph_toposort(&order, &g)))
        goto done;
    for (size_t n = 0; !destroy && n < nres; n++) {
        const struct ibs_resource *r = model->resources.items[order[n]];
        struct ibs_value *req = NULL;
        char hash[41];

        if ((rc = ibs_request_build(&req, r, version_of, &pl)))
            goto done;
        rc = ibs_request_hash(hash, r->kind, req, "semanticVersion");
        if (rc) {
            ibs_value_free(req);
            goto done;
        }
        if (ibs_model_kind_info(r->kind)->versioned)
            rc = plan_versioned(&pl, r, req, hash);
        else
            rc = plan_mutable(&pl, r, req, hash);
        if (rc)
            goto done;
    }
    if (nres) {
        pl.msorted = malloc(nres * sizeof(*pl.msorted));
        if (!pl.msorted) {
            rc = ibs_error_oom();
            goto done;
        }
        memcpy(pl.msorted, model->resources.items, nres * sizeof(*pl.msorted));
        qsort(pl.msorted, nres, sizeof(*pl.msorted), cmp_res_kind_name);
    }
    if ((rc = plan_deletes(&pl)))
        goto done;
    if ((rc = plan_dependencies(&pl)))
        goto done;
    if ((rc = narrow(plan, opts)))
        goto done;
    rc = finish_ids(plan);
    plan->live_calls = live->calls;
done:
    for (size_t i = 0; pl.choices && i < nres; i++)
        free(pl.choices[i].version);
    free(pl.choices);
    free(pl.msorted);
    free(pl.keep);
    free(pl.conflicted);
    free(order);
    ibs_value_index_free(pl.symix);
    ibs_graph_release(&g);
    return rc;
}

/* --- the plan document (docs/plan-json.md) -------------------------------- */

static const char *const json_type_names[IBS_ACTION_TYPE_COUNT] = {"create", "new_version",
                                                                   "update", "tag", "delete"};

static int put_str(struct ibs_value *map, const char *key, const char *s)
{
    return ibs_value_map_set(map, key, s ? ibs_value_new_string(s) : ibs_value_new_null());
}

static int put_clone(struct ibs_value *map, const char *key, const struct ibs_value *v)
{
    struct ibs_value *c = NULL;
    int rc;
    if (!v)
        return ibs_value_map_set(map, key, ibs_value_new_null());
    if ((rc = ibs_value_clone(&c, v)))
        return rc;
    return ibs_value_map_set(map, key, c);
}

/*
 * put_clone(), or with `borrow` a null placeholder that swap_views() replaces
 * by the plan's own value once the whole document is built (so that no
 * failure path can free a borrowed value).
 */
static int put_value(struct ibs_value *map, const char *key, const struct ibs_value *v, bool borrow)
{
    return put_clone(map, key, borrow ? NULL : v);
}

/*
 * The member `key` of map `m` holds put_value()'s placeholder or the
 * borrowed `v`: with `attach`, replaces the placeholder by `v` (freeing the
 * placeholder); without, detaches `v` again (leaving NULL, which
 * ibs_value_free skips).
 */
static void swap_view(struct ibs_value *m, const char *key, const struct ibs_value *v, bool attach)
{
    /* m is the view's own (non-const) map: the cast only undoes the getter's const. */
    struct ibs_member *mem = (struct ibs_member *)ibs_value_map_member(m, key);

    if (!mem || !v)
        return;
    if (attach && mem->value && mem->value != v) {
        ibs_value_free(mem->value);
        mem->value = (struct ibs_value *)v; /* read only: nothing writes through a view */
    } else if (!attach && mem->value == v) {
        mem->value = NULL;
    }
}

/* Attaches (or detaches) the plan's values borrowed by a view document. */
static void swap_views(struct ibs_value *doc, const struct ibs_plan *plan, bool attach)
{
    struct ibs_value *actions = (struct ibs_value *)ibs_value_map_get(doc, "actions");

    swap_view(doc, "symbols", plan->symbols, attach);
    for (size_t i = 0; actions && i < actions->count && i < plan->actions.count; i++) {
        const struct ibs_action *a = plan->actions.items[i];
        struct ibs_value *m = actions->u.items[i];
        struct ibs_value *changes = (struct ibs_value *)ibs_value_map_get(m, "changes");

        swap_view(m, "request", a->request, attach);
        swap_view(m, "tags", a->tags, attach);
        for (size_t j = 0; changes && j < changes->count && j < a->diffs.count; j++) {
            const struct ibs_field_diff *d = a->diffs.items[j];
            swap_view(changes->u.items[j], "before", d->before, attach);
            swap_view(changes->u.items[j], "after", d->after, attach);
        }
    }
}

static int action_to_value(struct ibs_value **out, const struct ibs_action *a, bool borrow)
{
    struct ibs_value *m = ibs_value_new_map(), *deps = ibs_value_new_list();
    struct ibs_value *untag = ibs_value_new_list(), *changes = ibs_value_new_list();
    int rc = 0;

    *out = NULL;
    if (!m || !deps || !untag || !changes) {
        rc = IBS_ENOMEM;
        goto done;
    }
    for (size_t i = 0; !rc && i < a->ndeps; i++)
        rc = ibs_value_list_append(deps, ibs_value_new_int((int64_t)a->deps[i]));
    for (size_t i = 0; !rc && i < a->untag.count; i++)
        rc = ibs_value_list_append(untag, ibs_value_new_string(a->untag.items[i]));
    for (size_t i = 0; !rc && i < a->diffs.count; i++) {
        const struct ibs_field_diff *d = a->diffs.items[i];
        struct ibs_value *c = ibs_value_new_map();
        if (!c) {
            rc = IBS_ENOMEM;
            break;
        }
        if ((rc = put_str(c, "path", d->path)) ||
            (rc = put_value(c, "before", d->before, borrow)) ||
            (rc = put_value(c, "after", d->after, borrow))) {
            ibs_value_free(c);
            break;
        }
        rc = ibs_value_list_append(changes, c);
    }
    if (rc)
        goto done;
    if ((rc = ibs_value_map_set(m, "id", ibs_value_new_int((int64_t)a->id))) ||
        (rc = put_str(m, "type", json_type_names[a->type])) ||
        (rc = put_str(m, "kind", ibs_model_kind_info(a->kind)->name)) ||
        (rc = put_str(m, "name", a->name)) || (rc = put_str(m, "version", a->version)) ||
        (rc = put_str(m, "arn", a->arn)) || (rc = put_str(m, "replaces", a->replaces)) ||
        (rc = put_str(m, "reason", a->reason)) || (rc = put_str(m, "hash", a->hash)) ||
        (rc = put_str(m, "key", a->key)) || (rc = put_str(m, "client_token", a->client_token)))
        goto done;
    rc = ibs_value_map_set(m, "depends_on", deps);
    deps = NULL;
    if (rc || (rc = put_value(m, "request", a->request, borrow)) ||
        (rc = put_value(m, "tags", a->tags, borrow)))
        goto done;
    rc = ibs_value_map_set(m, "untag", untag);
    untag = NULL;
    if (rc)
        goto done;
    rc = ibs_value_map_set(m, "changes", changes);
    changes = NULL;
    if (rc)
        goto done;
    *out = m;
    m = NULL;
done:
    ibs_value_free(m);
    ibs_value_free(deps);
    ibs_value_free(untag);
    ibs_value_free(changes);
    return rc;
}

static int plan_to_value(struct ibs_value **out, const struct ibs_plan *plan, bool borrow)
{
    struct ibs_value *doc = ibs_value_new_map(), *actions = ibs_value_new_list();
    struct ibs_value *conflicts = ibs_value_new_list(), *summary = ibs_value_new_map();
    size_t counts[IBS_ACTION_TYPE_COUNT];
    int rc = 0;

    *out = NULL;
    if (!doc || !actions || !conflicts || !summary) {
        rc = IBS_ENOMEM;
        goto done;
    }
    ibs_plan_count(plan, counts);
    for (int t = 0; !rc && t < IBS_ACTION_TYPE_COUNT; t++)
        rc = ibs_value_map_set(summary, json_type_names[t], ibs_value_new_int((int64_t)counts[t]));
    for (size_t i = 0; !rc && i < plan->actions.count; i++) {
        struct ibs_value *a = NULL;
        if (!(rc = action_to_value(&a, plan->actions.items[i], borrow)))
            rc = ibs_value_list_append(actions, a);
    }
    for (size_t i = 0; !rc && i < plan->conflicts.count; i++) {
        const struct ibs_plan_conflict *c = plan->conflicts.items[i];
        struct ibs_value *m = ibs_value_new_map();
        if (!m) {
            rc = IBS_ENOMEM;
            break;
        }
        if ((rc = put_str(m, "kind", ibs_model_kind_info(c->kind)->name)) ||
            (rc = put_str(m, "name", c->name)) || (rc = put_str(m, "arn", c->arn)) ||
            (rc = put_str(m, "message", c->message))) {
            ibs_value_free(m);
            break;
        }
        rc = ibs_value_list_append(conflicts, m);
    }
    if (rc)
        goto done;
    if ((rc = ibs_value_map_set(doc, "format_version",
                                ibs_value_new_int(IBS_PLAN_FORMAT_VERSION))) ||
        (rc = put_str(doc, "plan_id", plan->id)) || (rc = put_str(doc, "stack", plan->stack)) ||
        (rc = put_str(doc, "region", plan->region)) ||
        (rc = put_str(doc, "account", plan->account)) ||
        (rc = put_str(doc, "commit", plan->commit)) ||
        (rc = put_str(doc, "source", plan->source)) ||
        (rc = put_str(doc, "live_fingerprint", plan->fingerprint)))
        goto done;
    rc = ibs_value_map_set(doc, "summary", summary);
    summary = NULL;
    if (rc || (rc = put_value(doc, "symbols", plan->symbols, borrow)))
        goto done;
    rc = ibs_value_map_set(doc, "conflicts", conflicts);
    conflicts = NULL;
    if (rc)
        goto done;
    rc = ibs_value_map_set(doc, "actions", actions);
    actions = NULL;
    if (rc)
        goto done;
    *out = doc;
    doc = NULL;
done:
    ibs_value_free(doc);
    ibs_value_free(actions);
    ibs_value_free(conflicts);
    ibs_value_free(summary);
    return rc;
}

int ibs_plan_to_value(struct ibs_value **out, const struct ibs_plan *plan)
{
    return plan_to_value(out, plan, false);
}

int ibs_plan_to_value_view(struct ibs_value **out, const struct ibs_plan *plan)
{
    int rc = plan_to_value(out, plan, true);
    if (!rc)
        swap_views(*out, plan, true);
    return rc;
}

void ibs_plan_value_view_free(struct ibs_value *doc, const struct ibs_plan *plan)
{
    if (!doc)
        return;
    swap_views(doc, plan, false);
    ibs_value_free(doc);
}

static int get_str(char **out, const struct ibs_value *m, const char *key, bool required)
{
    const struct ibs_value *v = ibs_value_map_get(m, key);
    *out = NULL;
    if (!v || v->type == IBS_VALUE_NULL) {
        if (required)
            return ibs_error_set(IBS_EINVALID, "plan document: missing \"%s\"", key);
        return 0;
    }
    if (v->type != IBS_VALUE_STRING)
        return ibs_error_set(IBS_EINVALID, "plan document: \"%s\" is not a string", key);
    *out = strdup(v->str);
    return *out ? 0 : ibs_error_oom();
}

static int get_clone(struct ibs_value **out, const struct ibs_value *m, const char *key)
{
    const struct ibs_value *v = ibs_value_map_get(m, key);
    *out = NULL;
    if (!v || v->type == IBS_VALUE_NULL)
        return 0;
    return ibs_value_clone(out, v);
}

static int action_from_value(struct ibs_action **out, const struct ibs_value *m, size_t id,
                             size_t nactions)
{
    struct ibs_action *a = calloc(1, sizeof(*a));
    char *type = NULL, *kind = NULL, *token = NULL;
    const struct ibs_value *deps, *untag, *changes;
    int rc = 0;

    *out = NULL;
    if (!a)
        return ibs_error_oom();
    a->id = id;
    if (m->type != IBS_VALUE_MAP) {
        rc = ibs_error_set(IBS_EINVALID, "plan document: action %zu is not a map", id);
        goto done;
    }
    if ((rc = get_str(&type, m, "type", true)) || (rc = get_str(&kind, m, "kind", true)) ||
        (rc = get_str(&a->name, m, "name", true)) ||
        (rc = get_str(&a->version, m, "version", false)) ||
        (rc = get_str(&a->arn, m, "arn", false)) ||
        (rc = get_str(&a->replaces, m, "replaces", false)) ||
        (rc = get_str(&a->reason, m, "reason", true)) ||
        (rc = get_str(&a->hash, m, "hash", false)) || (rc = get_str(&a->key, m, "key", true)) ||
        (rc = get_str(&token, m, "client_token", true)) ||
        (rc = get_clone(&a->request, m, "request")) || (rc = get_clone(&a->tags, m, "tags")))
        goto done;
    rc = IBS_EINVALID;
    for (int t = 0; t < IBS_ACTION_TYPE_COUNT; t++)
        if (strcmp(type, json_type_names[t]) == 0) {
            a->type = (enum ibs_action_type)t;
            rc = 0;
        }
    if (rc) {
        ibs_error_set(rc, "plan document: unknown action type \"%s\"", type);
        goto done;
    }
    if ((rc = ibs_model_kind_parse(&a->kind, kind)))
        goto done;
    if (strlen(token) != 36) {
        rc = ibs_error_set(IBS_EINVALID, "plan document: bad client_token in action %zu", id);
        goto done;
    }
    memcpy(a->client_token, token, 37);
    deps = ibs_value_map_get(m, "depends_on");
    for (size_t i = 0; deps && deps->type == IBS_VALUE_LIST && i < deps->count; i++) {
        const struct ibs_value *d = deps->u.items[i];
        if (d->type != IBS_VALUE_INT || d->num.i < 0 || (size_t)d->num.i >= nactions) {
            rc = ibs_error_set(IBS_EINVALID, "plan document: bad dependency in action %zu", id);
            goto done;
        }
        if ((rc = add_dep(a, (size_t)d->num.i)))
            goto done;
    }
    untag = ibs_value_map_get(m, "untag");
    for (size_t i = 0; untag && untag->type == IBS_VALUE_LIST && i < untag->count; i++) {
        char *k = strdup(untag->u.items[i]->str ? untag->u.items[i]->str : "");
        if (!k || (rc = ibs_vec_push(&a->untag, k))) {
            free(k);
            rc = rc ? rc : ibs_error_oom();
            goto done;
        }
    }
    changes = ibs_value_map_get(m, "changes");
    for (size_t i = 0; changes && changes->type == IBS_VALUE_LIST && i < changes->count; i++) {
        const struct ibs_value *c = changes->u.items[i];
        struct ibs_field_diff *d = calloc(1, sizeof(*d));
        if (!d) {
            rc = ibs_error_oom();
            goto done;
        }
        if ((rc = get_str(&d->path, c, "path", true)) ||
            (rc = get_clone(&d->before, c, "before")) || (rc = get_clone(&d->after, c, "after")) ||
            (rc = ibs_vec_push(&a->diffs, d))) {
            ibs_diff_free(d);
            goto done;
        }
    }
    *out = a;
    a = NULL;
done:
    free(type);
    free(kind);
    free(token);
    action_free(a);
    return rc;
}

int ibs_plan_from_value(struct ibs_plan *plan, const struct ibs_value *doc)
{
    const struct ibs_value *v, *actions;
    char *id = NULL;
    int rc = 0;

    ibs_plan_init(plan);
    if (!doc || doc->type != IBS_VALUE_MAP)
        return ibs_error_set(IBS_EINVALID, "plan document: not a map");
    v = ibs_value_map_get(doc, "format_version");
    if (!v || v->type != IBS_VALUE_INT || v->num.i != IBS_PLAN_FORMAT_VERSION)
        return ibs_error_set(IBS_EINVALID,
                             "plan document: format_version %s is not supported (this ibsync "
                             "reads %d)",
                             v && v->str ? v->str : "(missing)", IBS_PLAN_FORMAT_VERSION);
    if ((rc = get_str(&id, doc, "plan_id", true)))
        goto done;
    if (strlen(id) != 40) {
        rc = ibs_error_set(IBS_EINVALID, "plan document: bad plan_id");
        goto done;
    }
    memcpy(plan->id, id, 41);
    if ((rc = get_str(&plan->stack, doc, "stack", true)) ||
        (rc = get_str(&plan->region, doc, "region", false)) ||
        (rc = get_str(&plan->account, doc, "account", false)) ||
        (rc = get_str(&plan->commit, doc, "commit", false)) ||
        (rc = get_str(&plan->source, doc, "source", false)) ||
        (rc = get_str(&plan->fingerprint, doc, "live_fingerprint", true)) ||
        (rc = get_clone(&plan->symbols, doc, "symbols")))
        goto done;
    if (!plan->symbols && !(plan->symbols = ibs_value_new_map())) {
        rc = IBS_ENOMEM;
        goto done;
    }
    actions = ibs_value_map_get(doc, "actions");
    if (!actions || actions->type != IBS_VALUE_LIST) {
        rc = ibs_error_set(IBS_EINVALID, "plan document: missing \"actions\"");
        goto done;
    }
    for (size_t i = 0; i < actions->count; i++) {
        struct ibs_action *a = NULL;
        if ((rc = action_from_value(&a, actions->u.items[i], i, actions->count)))
            goto done;
        if ((rc = ibs_vec_push(&plan->actions, a))) {
            action_free(a);
            goto done;
        }
    }
done:
    free(id);
    if (rc)
        ibs_plan_release(plan);
    return rc;
}
