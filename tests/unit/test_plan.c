/* Unit tests of reconcile/plan (+ live, request, diff, render) against the
 * in-process emulator: version choice, retainVersions, conflicts, Retain,
 * --target/--exclude, the plan document round trip, the renderings.
 * ibs-test-libs: ibs_reconcile ibs_emulator ibs_providers ibs_state ibs_api ibs_util */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "providers/emulator/emulator.h"
#include "reconcile/apply.h"
#include "reconcile/loader.h"
#include "reconcile/plan.h"
#include "reconcile/render.h"
#include "reconcile/request.h"
#include "state/digest.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx {
    char dir[64];
    struct ibs_provider *p;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct ibs_emulator *emu = NULL;
    struct ibs_emulator_options eo;
    strcpy(f->dir, "/tmp/ibs-plan-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    memset(&eo, 0, sizeof(eo));
    eo.data_dir = f->dir;
    assert_int_equal(ibs_emulator_open(&emu, &eo), 0);
    assert_int_equal(ibs_emulator_provider_new(&f->p, emu, true), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    ibs_provider_free(f->p);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

#define STACK                                                                                      \
    "apiVersion: ibsync/v1\nkind: Stack\nmetadata: {name: s1}\nspec: {retainVersions: 1}\n---\n"
#define COMP(name, ver, data)                                                                      \
    "apiVersion: ibsync/v1\nkind: Component\nmetadata: {name: " name "}\nspec:\n"                  \
    "  semanticVersion: " ver "\n  platform: Linux\n  data: '" data "'\n---\n"
#define INFRA(name, type)                                                                          \
    "apiVersion: ibsync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: " name "}\n"       \
    "spec: {instanceProfileName: p, instanceTypes: [" type "]}\n---\n"

/* Loads `yaml`, plans against the account and optionally applies. */
static void plan_text(struct fx *f, const char *yaml, const struct ibs_plan_options *po,
                      struct ibs_plan *plan, bool apply)
{
    struct ibs_model model;
    struct ibs_diags diags;
    struct ibs_live live;

    ibs_model_init(&model);
    ibs_diag_init(&diags);
    ibs_live_init(&live);
    ibs_plan_init(plan);
    assert_int_equal(ibs_loader_load_buffer(&model, &diags, "t.yaml", yaml, strlen(yaml), NULL), 0);
    assert_int_equal(ibs_live_read(&live, f->p), 0);
    assert_int_equal(ibs_plan_compute(plan, &model, &live, f->p, po), 0);
    if (apply) {
        struct ibs_apply_result res;
        assert_int_equal(ibs_apply_run(&res, plan, f->p, NULL), 0);
        ibs_apply_result_release(&res);
    }
    ibs_live_release(&live);
    ibs_diag_release(&diags);
    ibs_model_release(&model);
}

static size_t count(const struct ibs_plan *plan, enum ibs_action_type t)
{
    size_t c[IBS_ACTION_TYPE_COUNT];
    ibs_plan_count(plan, c);
    return c[t];
}

static const struct ibs_action *find(const struct ibs_plan *plan, const char *name,
                                     const char *version)
{
    for (size_t i = 0; i < plan->actions.count; i++) {
        const struct ibs_action *a = plan->actions.items[i];
        if (strcmp(a->name, name) == 0 &&
            (!version || (a->version && strcmp(a->version, version) == 0)))
            return a;
    }
    return NULL;
}

static void test_versions_floor_reuse_and_retain(void **state)
{
    struct fx *f = *state;
    struct ibs_plan plan;
    const struct ibs_action *a;

    plan_text(f, STACK COMP("comp-a", "1.0.0", "v1"), NULL, &plan, true);
    assert_int_equal(count(&plan, IBS_ACTION_CREATE), 1);
    ibs_plan_release(&plan);

    /* New content: next patch; the old version is kept (retainVersions 1). */
    plan_text(f, STACK COMP("comp-a", "1.0.0", "v2"), NULL, &plan, true);
    a = find(&plan, "comp-a", "1.0.1");
    assert_non_null(a);
    assert_int_equal(a->type, IBS_ACTION_NEW_VERSION);
    assert_string_equal(a->replaces, "1.0.0");
    assert_int_equal(plan.actions.count, 1);
    ibs_plan_release(&plan);

    /* Third content: 1.0.2; now 1.0.0 is beyond retainVersions and goes. */
    plan_text(f, STACK COMP("comp-a", "1.0.0", "v3"), NULL, &plan, true);
    assert_non_null(find(&plan, "comp-a", "1.0.2"));
    a = find(&plan, "comp-a", "1.0.0");
    assert_non_null(a);
    assert_int_equal(a->type, IBS_ACTION_DELETE);
    assert_string_equal(a->reason, "superseded version beyond retainVersions");
    /* The delete waits for the new version. */
    assert_int_equal(a->ndeps, 1);
    ibs_plan_release(&plan);

    /* Revert to v2: 1.0.1 carries that hash and is reused; nothing new. */
    plan_text(f, STACK COMP("comp-a", "1.0.0", "v2"), NULL, &plan, false);
    assert_int_equal(count(&plan, IBS_ACTION_CREATE) + count(&plan, IBS_ACTION_NEW_VERSION), 0);
    ibs_plan_release(&plan);

    /* A higher floor publishes the floor itself. */
    plan_text(f, STACK COMP("comp-a", "2.0.0", "v2"), NULL, &plan, false);
    a = find(&plan, "comp-a", "2.0.0");
    assert_non_null(a);
    assert_int_equal(a->type, IBS_ACTION_NEW_VERSION);
    ibs_plan_release(&plan);
}

static void test_unmanaged_name_is_a_conflict(void **state)
{
    struct fx *f = *state;
    struct ibs_plan plan;
    struct ibs_value *in = NULL, *out = NULL;
    const char *req = "{\"name\": \"taken\", \"instanceProfileName\": \"p\", "
                      "\"clientToken\": \"outside-1\"}";
    const struct ibs_plan_conflict *c;

    assert_int_equal(ibs_json_parse(&in, req, strlen(req)), 0);
    assert_int_equal(ibs_provider_call(&out, NULL, f->p, "CreateInfrastructureConfiguration", in),
                     0);
    plan_text(f, STACK INFRA("taken", "t3.micro"), NULL, &plan, false);
    assert_int_equal(plan.actions.count, 0);
    assert_int_equal(plan.conflicts.count, 1);
    c = plan.conflicts.items[0];
    assert_non_null(strstr(c->message, "InfrastructureConfiguration \"taken\" exists but is not "
                                       "managed by ibsync; to adopt it, tag it with "
                                       "ibsync:stack=s1"));
    ibs_plan_release(&plan);
    ibs_value_free(in);
    ibs_value_free(out);
}

static void test_prune_retain_and_destroy(void **state)
{
    struct fx *f = *state;
    struct ibs_plan plan;
    struct ibs_plan_options po = {IBS_PLAN_DESTROY, NULL, 0, NULL, 0};
    const char *keep = "apiVersion: ibsync/v1\nkind: InfrastructureConfiguration\n"
                       "metadata: {name: kept, deletionPolicy: Retain}\n"
                       "spec: {instanceProfileName: p}\n---\n";

    plan_text(f, STACK INFRA("gone", "t3.micro") INFRA("stay", "t3.micro"), NULL, &plan, true);
    ibs_plan_release(&plan);
    plan_text(f, STACK INFRA("stay", "t3.micro") "", NULL, &plan, false);
    assert_int_equal(plan.actions.count, 1);
    assert_int_equal(((struct ibs_action *)plan.actions.items[0])->type, IBS_ACTION_DELETE);
    assert_string_equal(((struct ibs_action *)plan.actions.items[0])->name, "gone");
    ibs_plan_release(&plan);

    plan_text(f, STACK INFRA("stay", "t3.micro") "", NULL, &plan, true);
    ibs_plan_release(&plan);
    plan_text(f, STACK INFRA("stay", "t3.micro") "", NULL, &plan, false);
    assert_int_equal(plan.actions.count, 0);
    ibs_plan_release(&plan);

    /* Retain keeps a resource out of prunes and destroys. */
    {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), "%s%s", STACK INFRA("stay", "t3.micro"), keep);
        plan_text(f, yaml, NULL, &plan, true);
        ibs_plan_release(&plan);
        plan_text(f, yaml, &po, &plan, false);
        assert_int_equal(plan.actions.count, 1);
        assert_string_equal(((struct ibs_action *)plan.actions.items[0])->name, "stay");
        ibs_plan_release(&plan);
        plan_text(f, STACK, NULL, &plan, false);
        assert_int_equal(plan.actions.count, 1);
        assert_string_equal(((struct ibs_action *)plan.actions.items[0])->name, "stay");
        ibs_plan_release(&plan);
    }
}

#define RECIPE                                                                                     \
    "apiVersion: ibsync/v1\nkind: ImageRecipe\nmetadata: {name: rec}\nspec:\n"                     \
    "  semanticVersion: 1.0.0\n  parentImage: ami-0123456789abcdef0\n"                             \
    "  components: [{componentArn: {ref: comp-a}}]\n---\n"

static void test_target_and_exclude(void **state)
{
    struct fx *f = *state;
    struct ibs_plan plan;
    const char *targets[] = {"ImageRecipe/rec"};
    const char *excludes[] = {"Component/comp-a"};
    const char *ex_infra[] = {"InfrastructureConfiguration/infra-1"};
    struct ibs_plan_options po = {0, targets, 1, NULL, 0};
    const char *yaml = STACK COMP("comp-a", "1.0.0", "x") RECIPE INFRA("infra-1", "t3.micro");
    struct ibs_model model;
    struct ibs_diags diags;
    struct ibs_live live;

    /* --target pulls in what the target depends on, nothing else. */
    plan_text(f, yaml, &po, &plan, false);
    assert_int_equal(plan.actions.count, 2);
    assert_non_null(find(&plan, "rec", NULL));
    assert_non_null(find(&plan, "comp-a", NULL));
    assert_null(find(&plan, "infra-1", NULL));
    ibs_plan_release(&plan);

    /* --exclude of something a kept action depends on is refused. */
    ibs_model_init(&model);
    ibs_diag_init(&diags);
    ibs_live_init(&live);
    ibs_plan_init(&plan);
    assert_int_equal(ibs_loader_load_buffer(&model, &diags, "t.yaml", yaml, strlen(yaml), NULL), 0);
    assert_int_equal(ibs_live_read(&live, f->p), 0);
    po.targets = NULL;
    po.ntargets = 0;
    po.excludes = excludes;
    po.nexcludes = 1;
    assert_int_equal(ibs_plan_compute(&plan, &model, &live, f->p, &po), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "cannot exclude Component/comp-a: create ImageRecipe/rec depends on it");
    ibs_plan_release(&plan);
    po.excludes = ex_infra;
    assert_int_equal(ibs_plan_compute(&plan, &model, &live, f->p, &po), 0);
    assert_int_equal(plan.actions.count, 2);
    assert_null(find(&plan, "infra-1", NULL));
    ibs_plan_release(&plan);
    ibs_live_release(&live);
    ibs_diag_release(&diags);
    ibs_model_release(&model);
}

/* The content hash is the digest of "Kind\n" and the sorted JSON, without
 * the skipped member; the request itself is left as it was. */
static void test_request_hash_skips_a_member(void **state)
{
    const char *canon = "Component\n{\"data\":\"d\",\"name\":\"x\"}";
    struct ibs_value *req = ibs_value_new_map();
    char h1[41], h2[41], want[41];
    (void)state;

    ibs_value_map_set(req, "name", ibs_value_new_string("x"));
    ibs_value_map_set(req, "semanticVersion", ibs_value_new_string("1.0.0"));
    ibs_value_map_set(req, "data", ibs_value_new_string("d"));
    assert_int_equal(ibs_digest_hex(want, canon, strlen(canon)), 0);
    assert_int_equal(ibs_request_hash(h1, IBS_KIND_COMPONENT, req, "semanticVersion"), 0);
    assert_string_equal(h1, want);
    assert_int_equal(req->count, 3);
    assert_string_equal(req->u.members[1].key, "semanticVersion");
    /* A member that is not there changes nothing; without skip, it counts. */
    assert_int_equal(ibs_request_hash(h2, IBS_KIND_COMPONENT, req, "absent"), 0);
    assert_string_not_equal(h2, want);
    ibs_value_map_remove(req, "semanticVersion");
    assert_int_equal(ibs_request_hash(h2, IBS_KIND_COMPONENT, req, NULL), 0);
    assert_string_equal(h2, want);
    ibs_value_free(req);
}

/* A view document writes the same JSON as a copied one, and freeing it
 * leaves the plan whole (requests, tags, changed values, symbols). */
static void test_document_view_borrows(void **state)
{
    struct fx *f = *state;
    struct ibs_plan plan;
    struct ibs_value *copy = NULL, *view = NULL;
    struct ibs_buf a = IBS_BUF_INIT, b = IBS_BUF_INIT, t1 = IBS_BUF_INIT, t2 = IBS_BUF_INIT;
    const struct ibs_action *up;

    plan_text(f, STACK INFRA("box", "t3.micro") COMP("comp-a", "1.0.0", "x"), NULL, &plan, true);
    ibs_plan_release(&plan);
    plan_text(f, STACK INFRA("box", "t3.large") COMP("comp-a", "1.0.0", "y") RECIPE, NULL, &plan,
              false);
    up = find(&plan, "box", NULL);
    assert_non_null(up);
    assert_true(up->diffs.count > 0);
    assert_int_equal(ibs_render_text(&t1, &plan, 0), 0);

    assert_int_equal(ibs_plan_to_value(&copy, &plan), 0);
    assert_int_equal(ibs_plan_to_value_view(&view, &plan), 0);
    assert_int_equal(ibs_json_write(&a, copy, IBS_JSON_PRETTY | IBS_JSON_SORTED), 0);
    assert_int_equal(ibs_json_write(&b, view, IBS_JSON_PRETTY | IBS_JSON_SORTED), 0);
    assert_string_equal(a.ptr, b.ptr);
    assert_non_null(strstr(b.ptr, "\"t3.large\""));
    ibs_plan_value_view_free(view, &plan);
    ibs_plan_value_view_free(NULL, &plan);

    /* The plan is untouched: the same text, the same document. */
    assert_int_equal(ibs_render_text(&t2, &plan, 0), 0);
    assert_string_equal(t1.ptr, t2.ptr);
    ibs_buf_clear(&b);
    assert_int_equal(ibs_plan_to_value_view(&view, &plan), 0);
    assert_int_equal(ibs_json_write(&b, view, IBS_JSON_PRETTY | IBS_JSON_SORTED), 0);
    assert_string_equal(a.ptr, b.ptr);
    ibs_plan_value_view_free(view, &plan);

    ibs_value_free(copy);
    ibs_buf_release(&a);
    ibs_buf_release(&b);
    ibs_buf_release(&t1);
    ibs_buf_release(&t2);
    ibs_plan_release(&plan);
}

static int collect_sink(void *ctx, const char *data, size_t len)
{
    return ibs_buf_put(ctx, data, len);
}

static int failing_sink(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return ibs_error_set(IBS_EIO, "disk full");
}

static void test_document_round_trip_and_renderings(void **state)
{
    struct fx *f = *state;
    struct ibs_plan plan, back;
    struct ibs_value *doc = NULL, *doc2 = NULL;
    struct ibs_buf a = IBS_BUF_INIT, b = IBS_BUF_INIT, md = IBS_BUF_INIT;
    const char *yaml = STACK COMP("comp-a", "1.0.0", "x") RECIPE;

    plan_text(f, yaml, NULL, &plan, false);
    assert_int_equal(ibs_plan_to_value(&doc, &plan), 0);
    assert_int_equal(ibs_plan_from_value(&back, doc), 0);
    assert_int_equal(ibs_plan_to_value(&doc2, &back), 0);
    /* Conflicts are not part of a saved plan's replay; everything else is. */
    assert_true(
        ibs_value_equal(ibs_value_map_get(doc, "actions"), ibs_value_map_get(doc2, "actions")));
    assert_string_equal(back.id, plan.id);
    assert_int_equal(ibs_value_map_get(doc, "format_version")->num.i, 1);

    assert_int_equal(ibs_render_text(&a, &plan, 0), 0);
    assert_non_null(strstr(a.ptr, "  + Component/comp-a@1.0.0  # create: new\n"));
    assert_non_null(strstr(a.ptr, "+ components: [{componentArn: (known after apply: "
                                  "Component/comp-a@1.0.0)}]"));
    assert_non_null(
        strstr(a.ptr, "Plan: 2 to create, 0 new versions, 0 to update, 0 to tag, 0 to delete.\n"));
    assert_int_equal(ibs_render_text(&b, &back, 0), 0);
    assert_string_equal(a.ptr, b.ptr);

    /* Streamed, the same text arrives; a sink's error stops the rendering. */
    {
        struct ibs_buf streamed = IBS_BUF_INIT;
        struct ibs_render_sink sink = {collect_sink, &streamed};
        assert_int_equal(ibs_render_text_stream(&sink, &plan, 0), 0);
        assert_string_equal(streamed.ptr, a.ptr);
        sink.write = failing_sink;
        assert_int_equal(ibs_render_text_stream(&sink, &plan, 0), IBS_EIO);
        ibs_buf_release(&streamed);
    }

    assert_int_equal(ibs_render_markdown(&md, &plan), 0);
    assert_int_equal(strncmp(md.ptr, "<!-- ibsync-plan stack=s1 -->\n", 30), 0);
    assert_non_null(strstr(md.ptr, "| Component | 1 | 0 | 0 | 0 | 0 |\n"));
    assert_non_null(strstr(md.ptr, "<details><summary><code>+ ImageRecipe/rec@1.0.0</code>"));

    /* A bad document is refused with a reason. */
    ibs_value_map_set(doc, "format_version", ibs_value_new_int(9));
    ibs_plan_release(&back);
    assert_int_equal(ibs_plan_from_value(&back, doc), IBS_EINVALID);
    assert_non_null(strstr(ibs_error_last()->message, "format_version 9 is not supported"));

    ibs_buf_release(&a);
    ibs_buf_release(&b);
    ibs_buf_release(&md);
    ibs_value_free(doc);
    ibs_value_free(doc2);
    ibs_plan_release(&back);
    ibs_plan_release(&plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_versions_floor_reuse_and_retain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmanaged_name_is_a_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_retain_and_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target_and_exclude, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_round_trip_and_renderings, setup, teardown),
        cmocka_unit_test(test_request_hash_skips_a_member),
        cmocka_unit_test_setup_teardown(test_document_view_borrows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
