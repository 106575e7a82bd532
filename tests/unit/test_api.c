/* Unit tests of api/: the generated model (bindings, constraints pinned
 * against the API reference, errors, pagination), routing, the pattern cache
 * and the validator's diagnostics.
 * ibs-test-libs: ibs_api ibs_util */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "util/diag.h"
#include "util/error.h"
#include "util/value.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_NAME "spec.yaml"

/* ---- helpers ---- */

static const struct ibs_api_member *member(const char *shape, const char *name)
{
    const struct ibs_api_shape *s = ibs_api_shape_find(shape);
    assert_non_null(s);
    return ibs_api_member_find(s, name);
}

static struct ibs_value *at(struct ibs_value *v, unsigned line, unsigned col)
{
    assert_non_null(v);
    v->loc.file = FILE_NAME;
    v->loc.line = line;
    v->loc.col = col;
    return v;
}

/* Adds key: v to a map, the key at (line, col) and the value after it. */
static void put(struct ibs_value *map, const char *key, unsigned line, unsigned col,
                struct ibs_value *v)
{
    struct ibs_loc kl = {FILE_NAME, line, col};
    at(v, line, col + (unsigned)strlen(key) + 2);
    assert_int_equal(ibs_value_map_append(map, key, strlen(key), kl, v), 0);
}

static struct ibs_value *str(const char *s)
{
    return ibs_value_new_string(s);
}

static struct ibs_value *repeat(char c, size_t n)
{
    char *buf = malloc(n + 1);
    struct ibs_value *v;
    assert_non_null(buf);
    memset(buf, c, n);
    buf[n] = '\0';
    v = ibs_value_new_string(buf);
    free(buf);
    return v;
}

/* A valid CreateComponent request at line 1, members from line 2. */
static struct ibs_value *component_spec(void)
{
    struct ibs_value *m = at(ibs_value_new_map(), 1, 1);
    put(m, "name", 2, 3, str("my-component"));
    put(m, "semanticVersion", 3, 3, str("1.0.0"));
    put(m, "platform", 4, 3, str("Linux"));
    put(m, "clientToken", 5, 3, str("token-1"));
    put(m, "data", 6, 3, str("name: x\n"));
    return m;
}

static const struct ibs_diag *find_diag(const struct ibs_diags *d, const char *message)
{
    for (size_t i = 0; i < d->count; i++) {
        if (strcmp(d->items[i].message, message) == 0)
            return &d->items[i];
    }
    for (size_t i = 0; i < d->count; i++)
        fprintf(stderr, "  have: %s: %s\n", d->items[i].path, d->items[i].message);
    fail_msg("no diagnostic \"%s\"", message);
    return NULL;
}

/* Asserts a diagnostic with `message` at `path`, line and column. */
static void expect_diag(const struct ibs_diags *d, const char *message, const char *path,
                        unsigned line, unsigned col)
{
    const struct ibs_diag *g = find_diag(d, message);
    assert_int_equal(g->severity, IBS_SEV_ERROR);
    if (path)
        assert_string_equal(g->path, path);
    else
        assert_null(g->path);
    assert_string_equal(g->file, FILE_NAME);
    assert_int_equal(g->line, line);
    assert_int_equal(g->col, col);
}

/* Validates `v` against shape `name` rooted at "spec" and frees it. */
static int validate(struct ibs_diags *d, struct ibs_value *v, const char *name,
                    const struct ibs_api_validate_opts *opts)
{
    const struct ibs_api_shape *shape = ibs_api_shape_find(name);
    int rc;
    assert_non_null(shape);
    ibs_diag_init(d);
    rc = ibs_api_validate(d, v, shape, "spec", opts);
    ibs_value_free(v);
    return rc;
}

/* ---- model ---- */

static void test_operations_sorted_and_found(void **state)
{
    size_t n = 0;
    const struct ibs_api_operation *ops = ibs_api_operations(&n);
    (void)state;
    assert_int_equal(n, 73);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(strcmp(ops[i - 1].name, ops[i].name) < 0);
        assert_ptr_equal(ibs_api_operation_find(ops[i].name), &ops[i]);
        assert_non_null(ops[i].input);
        assert_non_null(ops[i].output);
        assert_non_null(ops[i].errors);
        assert_non_null(ops[i].errors[0].code);
    }
    assert_string_equal(ops[0].name, "CancelImageCreation");
    assert_string_equal(ops[n - 1].name, "UpdateLifecyclePolicy");
    assert_null(ibs_api_operation_find("CreateThing"));
    assert_null(ibs_api_operation_find(NULL));
}

static void test_operation_bindings(void **state)
{
    const struct ibs_api_operation *op;
    const struct ibs_api_member *m;
    (void)state;

    op = ibs_api_operation_find("CreateComponent");
    assert_non_null(op);
    assert_string_equal(op->method, "PUT");
    assert_string_equal(op->uri, "/CreateComponent");
    assert_string_equal(op->input->name, "CreateComponentRequest");
    assert_string_equal(op->output->name, "CreateComponentResponse");
    assert_ptr_equal(op->input, ibs_api_shape_find("CreateComponentRequest"));
    m = ibs_api_member_find(op->input, "clientToken");
    assert_non_null(m);
    assert_true(m->required);
    assert_true(m->idempotency_token);
    assert_int_equal(m->location, IBS_API_LOC_BODY);
    assert_null(m->location_name);
    assert_false(ibs_api_member_find(op->input, "description")->required);
    assert_null(ibs_api_member_find(op->input, "Description"));

    op = ibs_api_operation_find("GetComponent");
    assert_string_equal(op->method, "GET");
    assert_string_equal(op->uri, "/GetComponent");
    m = ibs_api_member_find(op->input, "componentBuildVersionArn");
    assert_int_equal(m->location, IBS_API_LOC_QUERYSTRING);
    assert_string_equal(m->location_name, "componentBuildVersionArn");
    assert_true(m->required);

    op = ibs_api_operation_find("TagResource");
    assert_string_equal(op->method, "POST");
    assert_string_equal(op->uri, "/tags/{resourceArn}");
    m = ibs_api_member_find(op->input, "resourceArn");
    assert_int_equal(m->location, IBS_API_LOC_URI);
    assert_string_equal(m->location_name, "resourceArn");
    assert_int_equal(ibs_api_member_find(op->input, "tags")->location, IBS_API_LOC_BODY);
    assert_int_equal(op->output->nmembers, 0);

    op = ibs_api_operation_find("UntagResource");
    assert_string_equal(op->method, "DELETE");
    assert_string_equal(op->uri, "/tags/{resourceArn}");
    m = ibs_api_member_find(op->input, "tagKeys");
    assert_int_equal(m->location, IBS_API_LOC_QUERYSTRING);
    assert_string_equal(m->location_name, "tagKeys");
    assert_int_equal(m->shape->type, IBS_API_LIST);
    assert_int_equal(m->shape->item->type, IBS_API_STRING);
}

static void test_route(void **state)
{
    const char *arn = "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/my-recipe/1.0.0";
    char path[256];
    char *label = (char *)"unset";
    (void)state;

    assert_ptr_equal(ibs_api_operation_route(&label, "PUT", "/CreateComponent"),
                     ibs_api_operation_find("CreateComponent"));
    assert_null(label);
    assert_ptr_equal(ibs_api_operation_route(&label, "POST", "/ListComponents"),
                     ibs_api_operation_find("ListComponents"));
    assert_null(ibs_api_operation_route(&label, "GET", "/CreateComponent"));
    assert_null(ibs_api_operation_route(&label, "PUT", "/CreateComponent/x"));
    assert_null(ibs_api_operation_route(&label, "PUT", "/createcomponent"));

    /* The decoded ARN has '/' characters; the label takes all of them. */
    snprintf(path, sizeof(path), "/tags/%s", arn);
    assert_ptr_equal(ibs_api_operation_route(&label, "POST", path),
                     ibs_api_operation_find("TagResource"));
    assert_string_equal(label, arn);
    free(label);
    assert_ptr_equal(ibs_api_operation_route(&label, "GET", path),
                     ibs_api_operation_find("ListTagsForResource"));
    assert_string_equal(label, arn);
    free(label);
    assert_ptr_equal(ibs_api_operation_route(&label, "DELETE", path),
                     ibs_api_operation_find("UntagResource"));
    assert_string_equal(label, arn);
    free(label);

    assert_null(ibs_api_operation_route(&label, "POST", "/tags/"));
    assert_null(label);
    assert_null(ibs_api_operation_route(&label, "PATCH", path));
    assert_non_null(ibs_api_operation_route(NULL, "GET", path));
}

static void test_constraints_from_reference(void **state)
{
    const struct ibs_api_shape *s;
    (void)state;

    s = member("CreateComponentRequest", "semanticVersion")->shape;
    assert_int_equal(s->type, IBS_API_STRING);
    assert_string_equal(s->pattern, "^[0-9]+\\.[0-9]+\\.[0-9]+$");
    assert_int_equal(s->min, IBS_API_NONE);
    assert_int_equal(s->max, IBS_API_NONE);
    assert_string_equal(s->name, "CreateComponentRequest.semanticVersion");
    assert_ptr_equal(ibs_api_shape_find("CreateComponentRequest.semanticVersion"), s);

    s = member("CreateComponentRequest", "clientToken")->shape;
    assert_int_equal(s->min, 1);
    assert_int_equal(s->max, 36);
    assert_null(s->pattern);

    s = member("Distribution", "region")->shape;
    assert_int_equal(s->type, IBS_API_STRING);
    assert_int_equal(s->min, 1);
    assert_int_equal(s->max, 1024);
    assert_true(member("Distribution", "region")->required);

    /* The reference gives no item counts for the distributions list. */
    s = member("CreateDistributionConfigurationRequest", "distributions")->shape;
    assert_int_equal(s->type, IBS_API_LIST);
    assert_int_equal(s->min, IBS_API_NONE);
    assert_int_equal(s->max, IBS_API_NONE);
    assert_ptr_equal(s->item, ibs_api_shape_find("Distribution"));
    assert_int_equal(s->item->type, IBS_API_STRUCTURE);
    assert_true(member("CreateDistributionConfigurationRequest", "distributions")->required);

    s = member("ListComponentsRequest", "maxResults")->shape;
    assert_int_equal(s->type, IBS_API_INTEGER);
    assert_int_equal(s->min, 1);
    assert_int_equal(s->max, 25);

    s = member("DistributionConfiguration", "timeoutMinutes")->shape;
    assert_int_equal(s->type, IBS_API_INTEGER);
    assert_int_equal(s->min, 30);
    assert_int_equal(s->max, 720);

    s = member("CreateComponentRequest", "platform")->shape;
    assert_non_null(s->enums);
    assert_string_equal(s->enums[0], "Windows");
    assert_string_equal(s->enums[1], "Linux");
    assert_null(s->enums[2]);

    s = member("CreateComponentRequest", "supportedOsVersions")->shape;
    assert_int_equal(s->min, 1);
    assert_int_equal(s->max, 25);
    assert_string_equal(s->item->name, "CreateComponentRequest.supportedOsVersions[]");
    assert_int_equal(s->item->min, 1);

    s = member("CreateComponentRequest", "tags")->shape;
    assert_int_equal(s->type, IBS_API_MAP);
    assert_int_equal(s->max, 50);
    assert_string_equal(s->key->name, "CreateComponentRequest.tags{key}");
    assert_int_equal(s->key->min, 1);
    assert_int_equal(s->key->max, 128);
    assert_string_equal(s->key->pattern, "^(?!aws:)[a-zA-Z+-=._:/]+$");
    assert_string_equal(s->item->name, "CreateComponentRequest.tags{value}");
    assert_int_equal(s->item->max, 256);

    /* Repaired in tools/gen_api.py: the text has "lic-[a-z0-9-_{32}]". */
    s = member("Distribution", "licenseConfigurationArns")->shape->item;
    assert_string_equal(s->pattern, "^arn:aws[^:]*:license-manager:[^:]+:[0-9]{12}"
                                    ":license-configuration:lic-[a-z0-9-_]{32}$");
    assert_null(ibs_api_shape_find("NoSuchShape"));
}

static void test_shapes_sorted(void **state)
{
    size_t n = 0;
    const struct ibs_api_shape *const *all = ibs_api_shapes(&n);
    (void)state;
    assert_true(n > 500);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(all[i]->name);
        if (i > 0)
            assert_true(strcmp(all[i - 1]->name, all[i]->name) < 0);
        assert_ptr_equal(ibs_api_shape_find(all[i]->name), all[i]);
        if (all[i]->type == IBS_API_LIST || all[i]->type == IBS_API_MAP)
            assert_non_null(all[i]->item);
        if (all[i]->type == IBS_API_MAP)
            assert_non_null(all[i]->key);
    }
}

static void test_every_pattern_compiles(void **state)
{
    size_t n = 0, patterns = 0;
    const struct ibs_api_shape *const *all = ibs_api_shapes(&n);
    (void)state;
    for (size_t i = 0; i < n; i++) {
        if (!all[i]->pattern)
            continue;
        patterns++;
        if (ibs_api_pattern_compile(all[i]->pattern) != 0)
            fail_msg("%s: %s", all[i]->name, ibs_error_last()->message);
    }
    assert_true(patterns > 100);

    assert_int_equal(ibs_api_pattern_compile("^[a-"), IBS_EINVALID);
    assert_non_null(strstr(ibs_error_last()->message, "missing terminating ] for character class"));
    assert_false(ibs_api_pattern_match("^[a-", "a", 1));
    /* PCRE2 has no \u escape; the text's "\u002B" is repaired by the generator. */
    assert_int_equal(ibs_api_pattern_compile("[a-z\\u002B]"), IBS_EINVALID);
}

static void test_pattern_match(void **state)
{
    const char *semver = member("CreateComponentRequest", "semanticVersion")->shape->pattern;
    const char *tagkey = member("CreateComponentRequest", "tags")->shape->key->pattern;
    const char *arn = member("TagResourceRequest", "resourceArn")->shape->pattern;
    const char *name = member("CreateComponentRequest", "name")->shape->pattern;
    (void)state;

    assert_true(ibs_api_pattern_match(semver, "1.0.0", 5));
    assert_true(ibs_api_pattern_match(semver, "2021.01.01", 10));
    assert_false(ibs_api_pattern_match(semver, "1.0", 3));
    assert_false(ibs_api_pattern_match(semver, "1.0.0", 3)); /* length is honoured */
    assert_true(ibs_api_pattern_match(tagkey, "team", 4));
    assert_false(ibs_api_pattern_match(tagkey, "aws:owner", 9));
    assert_true(ibs_api_pattern_match(name, "my pipeline", 11));
    assert_false(ibs_api_pattern_match(name, "a", 1));

    const char *ok[] = {
        "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/my-recipe/1.0.0",
        "arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x",
        "arn:aws:imagebuilder:eu-west-1:123456789012:workflow/build/my-flow/1.0.0/1",
        "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/nightly",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (!ibs_api_pattern_match(arn, ok[i], strlen(ok[i])))
            fail_msg("%s does not match", ok[i]);
    }
    assert_false(ibs_api_pattern_match(arn, "arn:aws:s3:::bucket", 19));
    assert_false(ibs_api_pattern_match(arn, "arn:aws:imagebuilder:us-east-1:1:image/x", 40));
}

/* Threads matching (and so compiling) the same fresh patterns at once. */
static void *match_many(void *arg)
{
    int *bad = arg;
    char pattern[32];
    for (int i = 0; i < 200; i++) {
        bool want = i % 50 == 7;
        snprintf(pattern, sizeof(pattern), "^t%d-[0-9]+$", i % 50);
        if (ibs_api_pattern_match(pattern, "t7-1", 4) != want)
            (*bad)++;
        if (ibs_api_pattern_match(pattern, "x", 1))
            (*bad)++;
    }
    return NULL;
}

static void test_pattern_cache_threads(void **state)
{
    pthread_t threads[4];
    int bad[4] = {0, 0, 0, 0};
    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, match_many, &bad[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(bad[i], 0);
    }
}

static void test_pagination(void **state)
{
    const struct ibs_api_operation *op = ibs_api_operation_find("ListComponents");
    (void)state;
    assert_string_equal(op->input_token, "nextToken");
    assert_string_equal(op->output_token, "nextToken");
    assert_string_equal(op->limit_key, "maxResults");
    assert_string_equal(op->result_key, "componentVersionList");
    assert_non_null(ibs_api_member_find(op->output, op->result_key));

    op = ibs_api_operation_find("CreateComponent");
    assert_null(op->input_token);
    assert_null(op->output_token);
    assert_null(op->limit_key);
    assert_null(op->result_key);
}

static void test_errors(void **state)
{
    const struct ibs_api_operation *op;
    bool found = false;
    (void)state;

    assert_int_equal(ibs_api_error_status("CallRateLimitExceededException"), 429);
    assert_int_equal(ibs_api_error_status("ResourceNotFoundException"), 404);
    assert_int_equal(ibs_api_error_status("ServiceQuotaExceededException"), 402);
    assert_int_equal(ibs_api_error_status("ServiceUnavailableException"), 503);
    assert_int_equal(ibs_api_error_status("ForbiddenException"), 403);
    assert_int_equal(ibs_api_error_status("ThrottlingException"), 400); /* common error */
    assert_int_equal(ibs_api_error_status("RequestEntityTooLargeException"), 413);
    assert_int_equal(ibs_api_error_status("NoSuchException"), 400);
    assert_int_equal(ibs_api_error_status(NULL), 400);

    op = ibs_api_operation_find("CreateComponent");
    assert_string_equal(op->errors[0].code, "CallRateLimitExceededException");
    assert_int_equal(op->errors[0].status, 429);
    for (const struct ibs_api_error *e = op->errors; e->code; e++)
        found |= strcmp(e->code, "ServiceQuotaExceededException") == 0 && e->status == 402;
    assert_true(found);

    /* The reference lost the heading of ListTagsForResource; its errors survive. */
    op = ibs_api_operation_find("ListTagsForResource");
    assert_string_equal(op->errors[0].code, "InvalidParameterException");
    assert_string_equal(op->errors[1].code, "ResourceNotFoundException");
    assert_int_equal(op->errors[1].status, 404);
    assert_string_equal(op->errors[2].code, "ServiceException");
    assert_null(op->errors[3].code);
}

/* ---- validation ---- */

static void test_validate_valid(void **state)
{
    struct ibs_diags d;
    (void)state;
    assert_int_equal(validate(&d, component_spec(), "CreateComponentRequest", NULL), 0);
    assert_int_equal(d.count, 0);
    ibs_diag_release(&d);
}

static void test_validate_unknown_member(void **state)
{
    struct ibs_diags d;
    struct ibs_value *v = component_spec();
    (void)state;
    ibs_value_map_remove(v, "platform");
    put(v, "platfrom", 7, 3, str("Linux"));
    put(v, "zzzz", 8, 3, str("x"));
    put(v, "SemanticVersion", 9, 3, str("1.0.0"));
    assert_int_equal(validate(&d, v, "CreateComponentRequest", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 4);
    assert_int_equal(d.errors, 4);
    expect_diag(&d, "unknown member \"platfrom\"; did you mean \"platform\"?", "spec.platfrom", 7,
                3);
    expect_diag(&d, "unknown member \"zzzz\"", "spec.zzzz", 8, 3);
    expect_diag(&d, "unknown member \"SemanticVersion\"; did you mean \"semanticVersion\"?",
                "spec.SemanticVersion", 9, 3);
    /* Missing members are reported at the map that lacks them. */
    expect_diag(&d, "missing required member \"platform\"", "spec", 1, 1);
    assert_string_equal(ibs_error_last()->message, "4 problems with spec");
    ibs_diag_release(&d);
}

static void test_validate_types(void **state)
{
    struct ibs_diags d;
    struct ibs_value *v = component_spec();
    struct ibs_value *list = ibs_value_new_list();
    (void)state;
    assert_int_equal(ibs_value_list_append(list, at(str("x"), 10, 7)), 0);
    put(v, "description", 10, 3, list);
    put(v, "supportedOsVersions", 11, 3, str("Amazon Linux 2"));
    put(v, "tags", 12, 3, ibs_value_new_list());
    ibs_value_map_remove(v, "semanticVersion");
    put(v, "semanticVersion", 13, 3, ibs_value_new_int(1));
    assert_int_equal(validate(&d, v, "CreateComponentRequest", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 4);
    expect_diag(&d, "expected a string, got a list", "spec.description", 10, 16);
    expect_diag(&d, "expected a list, got a string", "spec.supportedOsVersions", 11, 24);
    expect_diag(&d, "expected a map, got a list", "spec.tags", 12, 9);
    expect_diag(&d, "expected a string, got an integer", "spec.semanticVersion", 13, 20);
    ibs_diag_release(&d);

    v = at(ibs_value_new_map(), 1, 1);
    put(v, "maxResults", 2, 3, str("10"));
    put(v, "byName", 3, 3, str("true"));
    put(v, "filters", 4, 3, ibs_value_new_float(1.5));
    assert_int_equal(validate(&d, v, "ListComponentsRequest", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 3);
    expect_diag(&d, "expected an integer, got a string", "spec.maxResults", 2, 15);
    expect_diag(&d, "expected a boolean, got a string", "spec.byName", 3, 11);
    expect_diag(&d, "expected a list, got a number", "spec.filters", 4, 12);
    ibs_diag_release(&d);

    v = at(ibs_value_new_map(), 1, 1);
    put(v, "baseScore", 2, 3, str("high"));
    put(v, "source", 3, 3, ibs_value_new_int(7));
    put(v, "version", 4, 3, ibs_value_new_bool(true));
    assert_int_equal(validate(&d, v, "CvssScore", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 3);
    expect_diag(&d, "expected a number, got a string", "spec.baseScore", 2, 14);
    expect_diag(&d, "expected a string, got an integer", "spec.source", 3, 11);
    expect_diag(&d, "expected a string, got a boolean", "spec.version", 4, 12);
    ibs_diag_release(&d);

    assert_int_equal(validate(&d, at(str("x"), 1, 1), "CreateComponentRequest", NULL),
                     IBS_EINVALID);
    expect_diag(&d, "expected a map, got a string", "spec", 1, 1);
    ibs_diag_release(&d);
}

static void test_validate_enum_length_pattern(void **state)
{
    struct ibs_diags d;
    struct ibs_value *v = component_spec();
    (void)state;
    ibs_value_map_remove(v, "platform");
    ibs_value_map_remove(v, "clientToken");
    ibs_value_map_remove(v, "semanticVersion");
    put(v, "platform", 7, 3, str("linux"));
    put(v, "clientToken", 8, 3, str(""));
    put(v, "semanticVersion", 9, 3, str("1.0"));
    put(v, "description", 10, 3, repeat('d', 1500));
    put(v, "kmsKeyId", 11, 3, str("\xc3\xa9"));
    assert_int_equal(validate(&d, v, "CreateComponentRequest", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 4);
    expect_diag(&d, "\"linux\" is not a valid value; expected one of: Windows, Linux",
                "spec.platform", 7, 13);
    expect_diag(&d, "length 0 is less than the minimum length 1", "spec.clientToken", 8, 16);
    expect_diag(&d, "\"1.0\" does not match the pattern ^[0-9]+\\.[0-9]+\\.[0-9]+$",
                "spec.semanticVersion", 9, 20);
    expect_diag(&d, "length 1500 is more than the maximum length 1024", "spec.description", 10, 16);
    ibs_diag_release(&d);
}

/* Lengths are in characters: 1,024 two-byte characters fit a 1,024 limit. */
static void test_validate_length_counts_characters(void **state)
{
    struct ibs_diags d;
    struct ibs_value *v = component_spec();
    struct ibs_value *s = repeat('x', 2 * 1025);
    (void)state;
    for (size_t i = 0; i < s->len; i += 2)
        memcpy(s->str + i, "\xc3\xa9", 2);
    s->str[2 * 1024] = '\0';
    s->len = 2 * 1024;
    put(v, "description", 10, 3, s);
    assert_int_equal(validate(&d, v, "CreateComponentRequest", NULL), 0);
    assert_int_equal(d.count, 0);
    ibs_diag_release(&d);

    v = component_spec(); /* validate() took the first one */
    s = repeat('x', 2 * 1025);
    for (size_t i = 0; i < s->len; i += 2)
        memcpy(s->str + i, "\xc3\xa9", 2);
    put(v, "description", 10, 3, s);
    assert_int_equal(validate(&d, v, "CreateComponentRequest", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 1);
    expect_diag(&d, "length 1025 is more than the maximum length 1024", "spec.description", 10, 16);
    ibs_diag_release(&d);
}

static void test_validate_long_value_is_cut(void **state)
{
    struct ibs_diags d;
    struct ibs_value *v = component_spec();
    (void)state;
    ibs_value_map_remove(v, "semanticVersion");
    put(v, "semanticVersion", 7, 3, repeat('v', 100));
    assert_int_equal(validate(&d, v, "CreateComponentRequest", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0].message,
                        "\"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv...\" "
                        "does not match the pattern ^[0-9]+\\.[0-9]+\\.[0-9]+$");
    ibs_diag_release(&d);
}

static void test_validate_ranges(void **state)
{
    struct ibs_diags d;
    struct ibs_value *v = at(ibs_value_new_map(), 1, 1);
    (void)state;
    put(v, "timeoutMinutes", 2, 3, ibs_value_new_int(10));
    assert_int_equal(validate(&d, v, "DistributionConfiguration", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 1);
    expect_diag(&d, "value 10 is less than the minimum 30", "spec.timeoutMinutes", 2, 19);
    ibs_diag_release(&d);

    v = at(ibs_value_new_map(), 1, 1);
    put(v, "timeoutMinutes", 2, 3, ibs_value_new_int(800));
    assert_int_equal(validate(&d, v, "DistributionConfiguration", NULL), IBS_EINVALID);
    expect_diag(&d, "value 800 is more than the maximum 720", "spec.timeoutMinutes", 2, 19);
    ibs_diag_release(&d);

    v = at(ibs_value_new_map(), 1, 1);
    put(v, "timeoutMinutes", 2, 3, ibs_value_new_int(720));
    assert_int_equal(validate(&d, v, "DistributionConfiguration", NULL), 0);
    ibs_diag_release(&d);

    v = at(ibs_value_new_map(), 1, 1);
    put(v, "baseScore", 2, 3, ibs_value_new_float(-0.5));
    assert_int_equal(validate(&d, v, "CvssScore", NULL), IBS_EINVALID);
    expect_diag(&d, "value -0.5 is less than the minimum 0", "spec.baseScore", 2, 14);
    ibs_diag_release(&d);
}

static void test_validate_integer_fits_int32(void **state)
{
    static const struct ibs_api_shape int32 = {
        "T", IBS_API_INTEGER, IBS_API_NONE, IBS_API_NONE, NULL, NULL, NULL, NULL, NULL, 0};
    static const struct ibs_api_shape int64 = {"L",  IBS_API_LONG, IBS_API_NONE, IBS_API_NONE, NULL,
                                               NULL, NULL,         NULL,         NULL,         0};
    struct ibs_diags d;
    struct ibs_value *v = at(ibs_value_new_int(3000000000), 4, 5);
    (void)state;
    ibs_diag_init(&d);
    assert_int_equal(ibs_api_validate(&d, v, &int32, "x", NULL), IBS_EINVALID);
    expect_diag(&d, "value 3000000000 is more than the maximum 2147483647", "x", 4, 5);
    assert_int_equal(ibs_api_validate(&d, v, &int64, "x", NULL), 0);
    v->num.i = -3000000000;
    assert_int_equal(ibs_api_validate(&d, v, &int32, "x", NULL), IBS_EINVALID);
    expect_diag(&d, "value -3000000000 is less than the minimum -2147483648", "x", 4, 5);
    assert_int_equal(d.count, 2);
    ibs_value_free(v);
    ibs_diag_release(&d);
}

static void test_validate_list_and_map_sizes(void **state)
{
    struct ibs_diags d;
    struct ibs_value *v = component_spec();
    struct ibs_value *os = ibs_value_new_list();
    struct ibs_value *tags = ibs_value_new_map();
    char key[16];
    (void)state;
    for (int i = 0; i < 30; i++)
        assert_int_equal(ibs_value_list_append(os, at(str("Linux"), 20, 5)), 0);
    for (int i = 0; i < 51; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        put(tags, key, 30 + (unsigned)i, 5, str("v"));
    }
    put(v, "supportedOsVersions", 7, 3, os);
    put(v, "tags", 8, 3, tags);
    assert_int_equal(validate(&d, v, "CreateComponentRequest", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 2);
    expect_diag(&d, "has 30 items; the maximum is 25", "spec.supportedOsVersions", 7, 24);
    expect_diag(&d, "has 51 items; the maximum is 50", "spec.tags", 8, 9);
    ibs_diag_release(&d);

    v = component_spec();
    put(v, "supportedOsVersions", 7, 3, ibs_value_new_list());
    assert_int_equal(validate(&d, v, "CreateComponentRequest", NULL), IBS_EINVALID);
    expect_diag(&d, "has 0 items; the minimum is 1", "spec.supportedOsVersions", 7, 24);
    ibs_diag_release(&d);
}

static void test_validate_nested_paths(void **state)
{
    struct ibs_diags d;
    struct ibs_value *v = at(ibs_value_new_map(), 1, 1);
    struct ibs_value *list = ibs_value_new_list();
    struct ibs_value *d0 = at(ibs_value_new_map(), 4, 5);
    struct ibs_value *d1 = at(ibs_value_new_map(), 6, 5);
    struct ibs_value *ami = ibs_value_new_map();
    struct ibs_value *tags = ibs_value_new_map();
    (void)state;
    put(v, "name", 2, 3, str("dist"));
    put(v, "clientToken", 3, 3, str("t"));
    put(d0, "region", 4, 7, str(""));
    put(d1, "amiDistributionConfiguration", 7, 7, ami);
    put(ami, "amiTags", 8, 9, tags);
    put(tags, "team", 9, 11, repeat('x', 257));
    put(tags, "aws:owner", 10, 11, str("me"));
    assert_int_equal(ibs_value_list_append(list, d0), 0);
    assert_int_equal(ibs_value_list_append(list, d1), 0);
    put(v, "distributions", 3, 3, list);
    assert_int_equal(validate(&d, v, "CreateDistributionConfigurationRequest", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 4);
    expect_diag(&d, "length 0 is less than the minimum length 1", "spec.distributions[0].region", 4,
                15);
    expect_diag(&d, "missing required member \"region\"", "spec.distributions[1]", 6, 5);
    expect_diag(&d, "length 257 is more than the maximum length 256",
                "spec.distributions[1].amiDistributionConfiguration.amiTags.team", 9, 17);
    /* A bad key is reported at the key. */
    expect_diag(&d, "\"aws:owner\" does not match the pattern ^(?!aws:)[a-zA-Z+-=._:/]+$",
                "spec.distributions[1].amiDistributionConfiguration.amiTags.aws:owner", 10, 11);
    ibs_diag_release(&d);
}

static void test_validate_coerce_scalars(void **state)
{
    struct ibs_api_validate_opts opts = {IBS_API_VALIDATE_COERCE_SCALARS, NULL, NULL, NULL};
    struct ibs_diags d;
    struct ibs_value *v;
    (void)state;

    /* semanticVersion: 1.10 read from YAML as a float keeps its text. */
    v = component_spec();
    ibs_value_map_remove(v, "semanticVersion");
    put(v, "semanticVersion", 7, 3, ibs_value_new_float(1.1));
    free(ibs_value_map_get(v, "semanticVersion")->str);
    ibs_value_map_get(v, "semanticVersion")->str = strdup("1.10");
    ibs_value_map_get(v, "semanticVersion")->len = 4;
    put(v, "description", 8, 3, ibs_value_new_bool(true));
    assert_int_equal(validate(&d, v, "CreateComponentRequest", &opts), IBS_EINVALID);
    assert_int_equal(d.count, 1);
    expect_diag(&d, "\"1.10\" does not match the pattern ^[0-9]+\\.[0-9]+\\.[0-9]+$",
                "spec.semanticVersion", 7, 20);
    ibs_diag_release(&d);

    /* Without the flag the same scalars are type errors. */
    v = component_spec();
    put(v, "description", 8, 3, ibs_value_new_bool(true));
    assert_int_equal(validate(&d, v, "CreateComponentRequest", NULL), IBS_EINVALID);
    expect_diag(&d, "expected a string, got a boolean", "spec.description", 8, 16);
    ibs_diag_release(&d);

    /* A number given where a string is expected is accepted by its text. */
    v = component_spec();
    ibs_value_map_remove(v, "name");
    put(v, "name", 7, 3, ibs_value_new_int(12345));
    assert_int_equal(validate(&d, v, "CreateComponentRequest", &opts), 0);
    ibs_diag_release(&d);

    /* Coercion is one way: a string holding a number is not an integer. */
    v = at(ibs_value_new_map(), 1, 1);
    put(v, "maxResults", 2, 3, str("10"));
    assert_int_equal(validate(&d, v, "ListComponentsRequest", &opts), IBS_EINVALID);
    expect_diag(&d, "expected an integer, got a string", "spec.maxResults", 2, 15);
    ibs_diag_release(&d);
}

static void test_validate_timestamps(void **state)
{
    const struct ibs_api_shape *ts = ibs_api_shape_find("LifecycleExecution.startTime");
    const char *good[] = {"2024-05-27", "2024-05-27T10:00:00Z", "2024-05-27T10:00:00.123Z",
                          "2024-02-29T23:59+02:00", "2024-05-27T10:00:00-0700"};
    const char *bad[] = {
        "yesterday", "2024-02-30", "2023-02-29", "2024-05-27T25:00:00Z", "2024-05-27T10:00:00Zjunk",
        "2024-5-27"};
    struct ibs_diags d;
    struct ibs_value *v;
    char msg[96];
    (void)state;
    assert_non_null(ts);
    assert_int_equal(ts->type, IBS_API_TIMESTAMP);
    ibs_diag_init(&d);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = at(str(good[i]), 1, 1);
        if (ibs_api_validate(&d, v, ts, "t", NULL) != 0)
            fail_msg("%s rejected", good[i]);
        ibs_value_free(v);
    }
    v = at(ibs_value_new_int(1716800000), 1, 1);
    assert_int_equal(ibs_api_validate(&d, v, ts, "t", NULL), 0);
    ibs_value_free(v);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = at(str(bad[i]), 2, (unsigned)i + 1);
        assert_int_equal(ibs_api_validate(&d, v, ts, "t", NULL), IBS_EINVALID);
        snprintf(msg, sizeof(msg), "\"%s\" is not an ISO-8601 timestamp", bad[i]);
        expect_diag(&d, msg, "t", 2, (unsigned)i + 1);
        ibs_value_free(v);
    }
    v = at(ibs_value_new_list(), 3, 1);
    assert_int_equal(ibs_api_validate(&d, v, ts, "t", NULL), IBS_EINVALID);
    expect_diag(&d, "expected a timestamp, got a list", "t", 3, 1);
    ibs_value_free(v);
    ibs_diag_release(&d);
}

struct accepted {
    int calls;
    char path[128];
};

/* Claims {ref: NAME} maps, as the desired-state loader does. */
static bool accept_refs(void *ctx, const struct ibs_value *v, const struct ibs_api_shape *shape,
                        const char *path)
{
    struct accepted *a = ctx;
    (void)shape;
    if (v->type != IBS_VALUE_MAP || !ibs_value_map_get(v, "ref"))
        return false;
    a->calls++;
    snprintf(a->path, sizeof(a->path), "%s", path);
    return true;
}

static struct ibs_value *recipe_spec(void)
{
    struct ibs_value *v = at(ibs_value_new_map(), 1, 1);
    struct ibs_value *components = ibs_value_new_list();
    struct ibs_value *c0 = at(ibs_value_new_map(), 5, 5);
    struct ibs_value *ref = ibs_value_new_map();
    put(v, "semanticVersion", 2, 3, str("1.0.0"));
    put(v, "parentImage", 3, 3, str("ami-0123456789abcdef0"));
    put(ref, "ref", 5, 20, str("my-component"));
    put(c0, "componentArn", 5, 7, ref);
    assert_int_equal(ibs_value_list_append(components, c0), 0);
    put(v, "components", 4, 3, components);
    return v;
}

static void test_validate_accept_and_skip(void **state)
{
    static const char *const skip[] = {"name", "tags", "clientToken", NULL};
    struct accepted a = {0, ""};
    struct ibs_api_validate_opts opts = {0, skip, accept_refs, &a};
    struct ibs_diags d;
    struct ibs_value *v;
    (void)state;

    assert_int_equal(validate(&d, recipe_spec(), "CreateImageRecipeRequest", &opts), 0);
    assert_int_equal(d.count, 0);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.path, "spec.components[0].componentArn");
    ibs_diag_release(&d);

    /* Without the options: the ref is a type error, name/clientToken missing. */
    assert_int_equal(validate(&d, recipe_spec(), "CreateImageRecipeRequest", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 3);
    expect_diag(&d, "expected a string, got a map", "spec.components[0].componentArn", 5, 21);
    expect_diag(&d, "missing required member \"name\"", "spec", 1, 1);
    expect_diag(&d, "missing required member \"clientToken\"", "spec", 1, 1);
    ibs_diag_release(&d);

    /* Skipped members are not in the schema of the spec. */
    v = recipe_spec();
    put(v, "tags", 6, 3, ibs_value_new_map());
    put(v, "Name", 7, 3, str("x"));
    assert_int_equal(validate(&d, v, "CreateImageRecipeRequest", &opts), IBS_EINVALID);
    assert_int_equal(d.count, 2);
    expect_diag(&d, "unknown member \"tags\"", "spec.tags", 6, 3);
    expect_diag(&d, "unknown member \"Name\"", "spec.Name", 7, 3);
    ibs_diag_release(&d);
}

static void test_validate_no_required_and_null(void **state)
{
    struct ibs_api_validate_opts opts = {IBS_API_VALIDATE_NO_REQUIRED, NULL, NULL, NULL};
    struct ibs_diags d;
    struct ibs_value *v;
    (void)state;

    v = at(ibs_value_new_map(), 1, 1);
    put(v, "platform", 2, 3, str("Windows"));
    assert_int_equal(validate(&d, v, "CreateComponentRequest", &opts), 0);
    ibs_diag_release(&d);

    /* A null member is absent: not checked, and missing when required. */
    v = component_spec();
    ibs_value_map_remove(v, "platform");
    put(v, "platform", 7, 3, ibs_value_new_null());
    put(v, "description", 8, 3, ibs_value_new_null());
    assert_int_equal(validate(&d, v, "CreateComponentRequest", NULL), IBS_EINVALID);
    assert_int_equal(d.count, 1);
    expect_diag(&d, "missing required member \"platform\"", "spec", 1, 1);
    ibs_diag_release(&d);
}

static void test_validate_without_path_and_limit(void **state)
{
    struct ibs_diags d;
    struct ibs_value *v = at(ibs_value_new_map(), 1, 1);
    (void)state;
    put(v, "x", 2, 3, str("y"));
    ibs_diag_init(&d);
    d.limit = 1;
    assert_int_equal(
        ibs_api_validate(&d, v, ibs_api_shape_find("CreateComponentRequest"), NULL, NULL),
        IBS_EINVALID);
    /* Everything is counted even when only the first is recorded. */
    assert_int_equal(d.count, 1);
    assert_int_equal(d.errors, 5);
    assert_int_equal(d.dropped, 4);
    assert_string_equal(d.items[0].path, "x");
    assert_string_equal(d.items[0].message, "unknown member \"x\"");
    ibs_diag_release(&d);
    assert_int_equal(ibs_api_validate(&d, v, NULL, NULL, NULL), IBS_EINVALID);
    ibs_value_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operations_sorted_and_found),
        cmocka_unit_test(test_operation_bindings),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_constraints_from_reference),
        cmocka_unit_test(test_shapes_sorted),
        cmocka_unit_test(test_every_pattern_compiles),
        cmocka_unit_test(test_pattern_match),
        cmocka_unit_test(test_pattern_cache_threads),
        cmocka_unit_test(test_pagination),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_validate_valid),
        cmocka_unit_test(test_validate_unknown_member),
        cmocka_unit_test(test_validate_types),
        cmocka_unit_test(test_validate_enum_length_pattern),
        cmocka_unit_test(test_validate_length_counts_characters),
        cmocka_unit_test(test_validate_long_value_is_cut),
        cmocka_unit_test(test_validate_ranges),
        cmocka_unit_test(test_validate_integer_fits_int32),
        cmocka_unit_test(test_validate_list_and_map_sizes),
        cmocka_unit_test(test_validate_nested_paths),
        cmocka_unit_test(test_validate_coerce_scalars),
        cmocka_unit_test(test_validate_timestamps),
        cmocka_unit_test(test_validate_accept_and_skip),
        cmocka_unit_test(test_validate_no_required_and_null),
        cmocka_unit_test(test_validate_without_path_and_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
