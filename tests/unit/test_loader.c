/* Unit tests of the loader and the model: envelope, refs, files, duplicates,
 * cycles, the Stack document.
 * ibs-test-libs: ibs_reconcile ibs_state ibs_api ibs_util */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "reconcile/graph.h"
#include "reconcile/loader.h"
#include "reconcile/model.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct loaded {
    struct ibs_model model;
    struct ibs_diags diags;
    struct ibs_buf text; /* formatted diagnostics */
    int rc;
};

static void load_text(struct loaded *l, const char *yaml)
{
    ibs_model_init(&l->model);
    ibs_diag_init(&l->diags);
    ibs_buf_init(&l->text);
    l->rc = ibs_loader_load_buffer(&l->model, &l->diags, "t.yaml", yaml, strlen(yaml), NULL);
    ibs_diag_format_all(&l->text, &l->diags);
}

static void loaded_release(struct loaded *l)
{
    ibs_model_release(&l->model);
    ibs_diag_release(&l->diags);
    ibs_buf_release(&l->text);
}

#define COMPONENT(name, version)                                                                   \
    "apiVersion: ibsync/v1\nkind: Component\nmetadata:\n  name: " name "\nspec:\n"                 \
    "  semanticVersion: " version "\n  platform: Linux\n  data: 'x'\n"

static void test_valid_component_loads(void **state)
{
    struct loaded l;
    struct ibs_resource *r;
    (void)state;
    load_text(&l, COMPONENT("install-nginx", "1.2.3"));
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.text.ptr, "");
    assert_int_equal(l.model.resources.count, 1);
    r = l.model.resources.items[0];
    assert_int_equal(r->kind, IBS_KIND_COMPONENT);
    assert_string_equal(r->name, "install-nginx");
    assert_string_equal(r->version, "1.2.3");
    assert_string_equal(r->loc.file, "t.yaml");
    assert_int_equal(r->loc.line, 1);
    assert_string_equal(ibs_value_map_get_str(r->spec, "platform"), "Linux");
    assert_null(ibs_value_map_get(r->spec, "name"));
    assert_string_equal(l.model.stack.name, "default");
    assert_true(l.model.stack.prune);
    assert_int_equal(l.model.stack.retain_versions, 3);
    loaded_release(&l);
}

static void test_refs_resolve_to_targets(void **state)
{
    struct loaded l;
    struct ibs_resource *recipe;
    struct ibs_ref *ref;
    (void)state;
    load_text(&l, COMPONENT("comp-a", "1.0.0") "---\n" COMPONENT(
                      "comp-b", "2.0.0") "---\n"
                                         "apiVersion: ibsync/v1\nkind: ImageRecipe\n"
                                         "metadata: {name: rec}\nspec:\n"
                                         "  semanticVersion: 1.0.0\n"
                                         "  parentImage: ami-0123456789abcdef0\n"
                                         "  components:\n"
                                         "    - componentArn: {ref: comp-a}\n"
                                         "    - componentArn: {ref: comp-b, version: 2.0.0}\n");
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.text.ptr, "");
    recipe = ibs_model_find(&l.model, IBS_KIND_IMAGE_RECIPE, "rec", NULL);
    assert_non_null(recipe);
    assert_int_equal(recipe->refs.count, 2);
    ref = recipe->refs.items[0];
    assert_string_equal(ref->path, "components[0].componentArn");
    assert_string_equal(ref->member, "componentArn");
    assert_int_equal(ref->kind, IBS_KIND_COMPONENT);
    assert_ptr_equal(ref->target, ibs_model_find(&l.model, IBS_KIND_COMPONENT, "comp-a", NULL));
    ref = recipe->refs.items[1];
    assert_string_equal(ref->version, "2.0.0");
    assert_ptr_equal(ref->target, ibs_model_find(&l.model, IBS_KIND_COMPONENT, "comp-b", "2.0.0"));
    assert_int_equal(ref->loc.line, 27);
    loaded_release(&l);
}

static void test_ref_errors(void **state)
{
    struct loaded l;
    (void)state;
    load_text(
        &l, COMPONENT("install-nginx", "1.0.0") "---\n" COMPONENT(
                "install-nginx",
                "2.0.0") "---\n"
                         "apiVersion: ibsync/v1\nkind: ImageRecipe\nmetadata: {name: rec}\nspec:\n"
                         "  semanticVersion: 1.0.0\n  parentImage: ami-0123456789abcdef0\n"
                         "  components:\n"
                         "    - componentArn: {ref: install-ngnix}\n"
                         "    - componentArn: {ref: install-nginx}\n"
                         "    - componentArn: {ref: rec}\n");
    assert_int_equal(l.rc, IBS_EINVALID);
    assert_string_equal(
        l.text.ptr,
        "t.yaml:26:21: error: spec.components[0].componentArn: unresolved ref: no Component named "
        "\"install-ngnix\" is declared; did you mean \"install-nginx\"?\n"
        "t.yaml:27:21: error: spec.components[1].componentArn: ref \"install-nginx\" is "
        "ambiguous: Component \"install-nginx\" is declared in 2 versions; add version: to "
        "choose one (e.g. version: 2.0.0)\n"
        "t.yaml:28:21: error: spec.components[2].componentArn: ref \"rec\" names an ImageRecipe, "
        "but componentArn refers to a Component\n");
    loaded_release(&l);
}

static void test_cycle_reported_once(void **state)
{
    struct loaded l;
    (void)state;
    load_text(&l, "apiVersion: ibsync/v1\nkind: ImageRecipe\nmetadata: {name: rec-a}\nspec:\n"
                  "  semanticVersion: 1.0.0\n  parentImage: {ref: rec-b}\n"
                  "  components: [{componentArn: arn:aws:imagebuilder:us-east-1:aws:component/"
                  "x/1.0.0}]\n"
                  "---\n"
                  "apiVersion: ibsync/v1\nkind: ImageRecipe\nmetadata: {name: rec-b}\nspec:\n"
                  "  semanticVersion: 1.0.0\n  parentImage: {ref: rec-a}\n"
                  "  components: [{componentArn: arn:aws:imagebuilder:us-east-1:aws:component/"
                  "x/1.0.0}]\n");
    assert_int_equal(l.rc, IBS_EINVALID);
    assert_string_equal(l.text.ptr, "t.yaml:6:16: error: reference cycle: ImageRecipe/rec-a -> "
                                    "ImageRecipe/rec-b -> ImageRecipe/rec-a\n");
    loaded_release(&l);
}

static void test_duplicates_name_both_places(void **state)
{
    struct loaded l;
    (void)state;
    load_text(&l,
              COMPONENT("comp-x", "1.0.0") "---\n" COMPONENT("comp-x", "1.0.0") "---\n" COMPONENT(
                  "comp-x", "1.0.1") "---\n"
                                     "apiVersion: ibsync/v1\nkind: InfrastructureConfiguration\n"
                                     "metadata: {name: infra}\nspec: {instanceProfileName: p}\n"
                                     "---\n"
                                     "apiVersion: ibsync/v1\nkind: InfrastructureConfiguration\n"
                                     "metadata: {name: infra}\nspec: {instanceProfileName: q}\n");
    assert_int_equal(l.rc, IBS_EINVALID);
    assert_string_equal(l.text.ptr,
                        "t.yaml:10:1: error: metadata.name: duplicate Component \"comp-x\" version "
                        "1.0.0; first declared at t.yaml:1:1\n"
                        "t.yaml:33:1: error: metadata.name: duplicate InfrastructureConfiguration "
                        "\"infra\"; first declared at t.yaml:28:1\n");
    loaded_release(&l);
}

static void test_stack_document(void **state)
{
    struct loaded l;
    (void)state;
    load_text(&l, "apiVersion: ibsync/v1\nkind: Stack\nmetadata: {name: golden}\n"
                  "spec: {region: eu-west-1, prune: false, retainVersions: 7, tags: {team: a}}\n");
    assert_int_equal(l.rc, 0);
    assert_true(l.model.stack.declared);
    assert_string_equal(l.model.stack.name, "golden");
    assert_string_equal(l.model.stack.region, "eu-west-1");
    assert_false(l.model.stack.prune);
    assert_int_equal(l.model.stack.retain_versions, 7);
    assert_string_equal(ibs_value_map_get_str(l.model.stack.tags, "team"), "a");
    loaded_release(&l);
}

static void test_envelope_errors(void **state)
{
    struct loaded l;
    (void)state;
    load_text(&l, "kind: Component\nmetadata: {name: a}\nspec: {}\n"
                  "---\n"
                  "apiVersion: ibsync/v2\nkind: Component\n"
                  "---\n"
                  "apiVersion: ibsync/v1\nkind: Recipe\nmetadata: {name: a}\nspec: {}\n"
                  "---\n"
                  "apiVersion: ibsync/v1\nkind: Component\nmetadta: {name: a}\nspec: {}\n"
                  "---\n"
                  "---\n"
                  "[1, 2]\n");
    assert_int_equal(l.rc, IBS_EINVALID);
    assert_string_equal(l.text.ptr,
                        "t.yaml:1:1: error: missing required member \"apiVersion\" (expected "
                        "\"ibsync/v1\")\n"
                        "t.yaml:5:13: error: apiVersion: unsupported apiVersion \"ibsync/v2\"; "
                        "expected \"ibsync/v1\"\n"
                        "t.yaml:9:7: error: kind: unknown kind \"Recipe\"; expected one of: "
                        "Component, Workflow, ImageRecipe, ContainerRecipe, "
                        "InfrastructureConfiguration, DistributionConfiguration, ImagePipeline, "
                        "LifecyclePolicy, Stack\n"
                        "t.yaml:13:1: error: missing required member \"metadata\"\n"
                        "t.yaml:15:1: error: unknown member \"metadta\"; did you mean "
                        "\"metadata\"?\n"
                        "t.yaml:16:7: error: spec: missing required member \"platform\"\n"
                        "t.yaml:16:7: error: spec: missing required member \"semanticVersion\"\n"
                        "t.yaml:19:1: error: expected a resource document (a map with apiVersion, "
                        "kind, metadata and spec), got a list\n");
    loaded_release(&l);
}

/* A temporary directory source with a {file:} reference. */
static char tmpdir[64];

static void write_file(const char *rel, const char *text)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_file_directive_reads_data(void **state)
{
    struct ibs_source *src = NULL;
    struct ibs_model model;
    struct ibs_diags diags;
    struct ibs_buf text = IBS_BUF_INIT;
    struct ibs_resource *r;
    char sub[128], cmd[128];
    (void)state;
    strcpy(tmpdir, "/tmp/ibs-loader-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(sub, sizeof(sub), "%s/c", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file("c/comp.yaml", "apiVersion: ibsync/v1\nkind: Component\nmetadata: {name: comp-c}\n"
                              "spec:\n  semanticVersion: 1.0.0\n  platform: Linux\n"
                              "  data: {file: doc.yaml}\n"
                              "---\n"
                              "apiVersion: ibsync/v1\nkind: Component\nmetadata: {name: comp-d}\n"
                              "spec:\n  semanticVersion: 1.0.0\n  platform: Linux\n"
                              "  data: {file: ../../outside.yaml}\n");
    write_file("c/doc.yaml", "name: c\nschemaVersion: 1.0\nphases: []\n");
    ibs_model_init(&model);
    ibs_diag_init(&diags);
    assert_int_equal(ibs_source_open_dir(&src, tmpdir), 0);
    assert_int_equal(ibs_loader_load(&model, &diags, src, NULL), IBS_EINVALID);
    ibs_diag_format_all(&text, &diags);
    assert_string_equal(text.ptr, "c/comp.yaml:15:16: error: spec.data: path "
                                  "\"../../outside.yaml\" leaves the source root\n");
    r = ibs_model_find(&model, IBS_KIND_COMPONENT, "comp-c", NULL);
    assert_non_null(r);
    assert_string_equal(ibs_value_map_get_str(r->spec, "data"),
                        "name: c\nschemaVersion: 1.0\nphases: []\n");
    assert_int_equal(r->files.count, 1);
    assert_string_equal(r->files.items[0], "c/doc.yaml");
    /* The stack is named after the directory. */
    assert_string_equal(model.stack.name, strrchr(tmpdir, '/') + 1);
    ibs_buf_release(&text);
    ibs_diag_release(&diags);
    ibs_model_release(&model);
    ibs_source_free(src);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
}

static int collect_cycle(void *ctx, const size_t *cycle, size_t len)
{
    struct ibs_buf *b = ctx;
    for (size_t i = 0; i < len; i++)
        ibs_buf_printf(b, "%zu ", cycle[i]);
    ibs_buf_putc(b, '|');
    return 0;
}

static void test_graph_order_and_cycles(void **state)
{
    struct ibs_graph g;
    struct ibs_buf b = IBS_BUF_INIT;
    size_t *order = NULL;
    (void)state;
    assert_int_equal(ibs_graph_init(&g, 5), 0);
    /* 0 depends on 3, 3 on 1, 4 on 2 */
    assert_int_equal(ibs_graph_add_edge(&g, 0, 3), 0);
    assert_int_equal(ibs_graph_add_edge(&g, 3, 1), 0);
    assert_int_equal(ibs_graph_add_edge(&g, 4, 2), 0);
    assert_int_equal(ibs_graph_add_edge(&g, 4, 2), 0);
    assert_int_equal(ibs_graph_add_edge(&g, 4, 9), IBS_EINVALID);
    assert_int_equal(ibs_graph_toposort(&order, &g), 0);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 3);
    assert_int_equal(order[3], 0);
    assert_int_equal(order[4], 4);
    free(order);
    assert_int_equal(ibs_graph_cycles(&g, collect_cycle, &b), 0);
    assert_int_equal(ibs_graph_add_edge(&g, 1, 0), 0);
    assert_int_equal(ibs_graph_add_edge(&g, 2, 2), 0);
    assert_int_equal(ibs_graph_toposort(&order, &g), IBS_ECONFLICT);
    assert_null(order);
    assert_int_equal(ibs_graph_cycles(&g, collect_cycle, &b), 2);
    assert_string_equal(b.ptr, "0 3 1 |2 |");
    ibs_buf_release(&b);
    ibs_graph_release(&g);
}

static void test_deep_graph_has_no_recursion_limit(void **state)
{
    struct ibs_graph g;
    size_t n = 200000, *order = NULL;
    (void)state;
    assert_int_equal(ibs_graph_init(&g, n), 0);
    for (size_t i = 0; i + 1 < n; i++)
        assert_int_equal(ibs_graph_add_edge(&g, i, i + 1), 0);
    assert_int_equal(ibs_graph_cycles(&g, NULL, NULL), 0);
    assert_int_equal(ibs_graph_toposort(&order, &g), 0);
    assert_int_equal(order[0], n - 1);
    assert_int_equal(order[n - 1], 0);
    free(order);
    ibs_graph_release(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_component_loads),
        cmocka_unit_test(test_refs_resolve_to_targets),
        cmocka_unit_test(test_ref_errors),
        cmocka_unit_test(test_cycle_reported_once),
        cmocka_unit_test(test_duplicates_name_both_places),
        cmocka_unit_test(test_stack_document),
        cmocka_unit_test(test_envelope_errors),
        cmocka_unit_test(test_file_directive_reads_data),
        cmocka_unit_test(test_graph_order_and_cycles),
        cmocka_unit_test(test_deep_graph_has_no_recursion_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
