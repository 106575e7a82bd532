/* Unit tests of the emulator engine (providers/emulator) through the
 * provider interface, and of the generic provider helpers (providers/provider.c).
 * A few tests reach into the engine's internals (internal.h: random bytes,
 * hashes, MACs) and its SQLite file (query plans of the store's scans).
 * ibs-test-libs: ibs_emulator ibs_providers ibs_api ibs_util sqlite3 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "providers/emulator/emulator.h"
#include "providers/emulator/internal.h"
#include "providers/provider.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ACCOUNT "123456789012"
#define PREFIX "arn:aws:imagebuilder:us-east-1:" ACCOUNT ":"
/* 2023-11-14T22:13:20.000Z */
#define T0 1700000000000LL

struct fixture {
    char dir[64];
    struct ibs_emulator *emu;
    struct ibs_provider *p;
    int64_t now;  /* fake clock, ms */
    int64_t step; /* advance per reading */
};

static int64_t fake_clock(void *ctx)
{
    struct fixture *f = ctx;
    int64_t t = f->now;
    f->now += f->step;
    return t;
}

static void open_emulator(struct fixture *f, int64_t build_ms)
{
    struct ibs_emulator_options opts = {0};

    opts.data_dir = f->dir;
    opts.image_build_ms = build_ms;
    opts.clock_ms = fake_clock;
    opts.clock_ctx = f;
    assert_int_equal(ibs_emulator_open(&f->emu, &opts), 0);
    assert_int_equal(ibs_emulator_provider_new(&f->p, f->emu, true), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/ibs-emu-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->now = T0;
    f->step = 1000;
    open_emulator(f, 0);
    *state = f;
    return 0;
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"imagebuilder.db", "imagebuilder.db-wal",
                                        "imagebuilder.db-shm"};
    char path[256];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ibs_provider_free(f->p);
    remove_dir(f->dir);
    free(f);
    return 0;
}

/* Parses printf-formatted JSON. */
static struct ibs_value *json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct ibs_value *json(const char *fmt, ...)
{
    struct ibs_buf b = IBS_BUF_INIT;
    struct ibs_value *v = NULL;
    va_list ap;

    va_start(ap, fmt);
    ibs_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (ibs_json_parse(&v, b.ptr, b.size) != 0)
        fail_msg("bad test JSON: %s: %s", b.ptr, ibs_error_last()->message);
    ibs_buf_release(&b);
    return v;
}

/* Calls `op` with `input` (consumed) and expects success. */
static struct ibs_value *ok_v(struct fixture *f, const char *op, struct ibs_value *input)
{
    struct ibs_value *out = NULL;
    struct ibs_provider_error err;
    int rc;

    ibs_provider_error_init(&err);
    rc = ibs_provider_call(&out, &err, f->p, op, input);
    if (rc)
        fail_msg("%s failed: %s (%s)", op, ibs_error_last()->message,
                 err.aws_code ? err.aws_code : "-");
    ibs_provider_error_release(&err);
    ibs_value_free(input);
    return out;
}

#define ok(f, op, ...) ok_v(f, op, json(__VA_ARGS__))

/* Calls `op` and expects an AWS error; returns the error code and fills err. */
static int fail_v(struct fixture *f, struct ibs_provider_error *err, const char *op,
                  struct ibs_value *input)
{
    struct ibs_value *out = NULL;
    int rc;

    ibs_provider_error_init(err);
    rc = ibs_provider_call(&out, err, f->p, op, input);
    ibs_value_free(input);
    if (rc == 0)
        fail_msg("%s unexpectedly succeeded", op);
    assert_null(out);
    return rc;
}

#define fails(f, err, op, ...) fail_v(f, err, op, json(__VA_ARGS__))

/* Navigates "a.b[2].c"; NULL when absent. */
static const struct ibs_value *at(const struct ibs_value *v, const char *path)
{
    char key[128];

    while (v && *path) {
        size_t n = strcspn(path, ".[");
        if (n) {
            snprintf(key, sizeof(key), "%.*s", (int)n, path);
            v = ibs_value_map_get(v, key);
            path += n;
        } else if (*path == '[') {
            size_t idx = strtoul(path + 1, NULL, 10);
            v = v->type == IBS_VALUE_LIST && idx < v->count ? v->u.items[idx] : NULL;
            path = strchr(path, ']') + 1;
        }
        if (*path == '.')
            path++;
    }
    return v;
}

/* The text of a scalar at `path` ("(absent)" when missing). */
static const char *S(const struct ibs_value *v, const char *path)
{
    const struct ibs_value *x = at(v, path);
    return x && x->str ? x->str : "(absent)";
}

static size_t count(const struct ibs_value *v, const char *path)
{
    const struct ibs_value *x = at(v, path);
    return x ? x->count : 0;
}

static void assert_uuid4(const char *s)
{
    assert_int_equal(strlen(s), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(s[i], '-');
        else
            assert_true(isxdigit((unsigned char)s[i]));
    }
    assert_int_equal(s[14], '4');
    assert_non_null(strchr("89ab", s[19]));
}

static char *read_data(const char *name)
{
    char path[512];
    FILE *fp;
    char *buf = calloc(1, 65536);
    size_t n;

    snprintf(path, sizeof(path), "%s/emulator/%s", IBS_TEST_DATA, name);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_non_null(buf);
    n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static char *create_component(struct fixture *f, const char *name, const char *version,
                              const char *file)
{
    char *data = read_data(file);
    struct ibs_value *in =
        json("{\"name\": \"%s\", \"semanticVersion\": \"%s\", \"platform\": \"Linux\","
             " \"clientToken\": \"c-%s-%s\", \"tags\": {\"team\": \"core\"}}",
             name, version, name, version);
    struct ibs_value *out;
    char *arn;

    ibs_value_map_set(in, "data", ibs_value_new_string(data));
    free(data);
    out = ok_v(f, "CreateComponent", in);
    arn = strdup(S(out, "componentBuildVersionArn"));
    ibs_value_free(out);
    return arn;
}

static char *create_simple(struct fixture *f, const char *op, const char *member, const char *body)
{
    struct ibs_value *out = ok_v(f, op, json("%s", body));
    char *arn = strdup(S(out, member));
    ibs_value_free(out);
    return arn;
}

static char *create_infra(struct fixture *f, const char *name)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"name\": \"%s\", \"instanceProfileName\": \"ib-role\", \"clientToken\": \"i-%s\"}",
             name, name);
    return create_simple(f, "CreateInfrastructureConfiguration", "infrastructureConfigurationArn",
                         body);
}

static char *create_recipe(struct fixture *f, const char *name, const char *component_arn)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"name\": \"%s\", \"semanticVersion\": \"1.0.0\", \"parentImage\":"
             " \"arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2-x86/x.x.x\","
             " \"components\": [{\"componentArn\": \"%s\"}], \"clientToken\": \"r-%s\","
             " \"blockDeviceMappings\": [{\"deviceName\": \"/dev/xvda\","
             " \"ebs\": {\"volumeSize\": 30, \"volumeType\": \"gp3\"}}]}",
             name, component_arn, name);
    return create_simple(f, "CreateImageRecipe", "imageRecipeArn", body);
}

/* ---- components ---- */

static void test_component_create_get_list_delete(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    char *arn = create_component(f, "Hello_World", "1.0.0", "component-build.yaml");
    struct ibs_value *out;

    assert_string_equal(arn, PREFIX "component/hello_world/1.0.0/1");
    out = ok(f, "GetComponent", "{\"componentBuildVersionArn\": \"%s\"}", arn);
    assert_uuid4(S(out, "requestId"));
    assert_string_equal(S(out, "component.arn"), arn);
    assert_string_equal(S(out, "component.name"), "Hello_World");
    assert_string_equal(S(out, "component.version"), "1.0.0");
    assert_string_equal(S(out, "component.platform"), "Linux");
    assert_string_equal(S(out, "component.type"), "BUILD");
    assert_string_equal(S(out, "component.encrypted"), "true");
    assert_string_equal(S(out, "component.owner"), ACCOUNT);
    assert_string_equal(S(out, "component.dateCreated"), "2023-11-14T22:13:20.000Z");
    assert_string_equal(S(out, "component.tags.team"), "core");
    assert_string_equal(S(out, "component.parameters[0].name"), "Greeting");
    assert_string_equal(S(out, "component.parameters[0].type"), "string");
    assert_string_equal(S(out, "component.parameters[0].defaultValue[0]"), "hello");
    assert_string_equal(S(out, "component.parameters[0].description"), "The text to write.");
    assert_string_equal(S(out, "component.parameters[1].defaultValue[1]"), "b");
    assert_non_null(strstr(S(out, "component.data"), "phases:"));
    /* Request-only members are not part of the Component shape. */
    assert_null(at(out, "component.clientToken"));
    assert_null(at(out, "component.semanticVersion"));
    ibs_value_free(out);

    out = ok(f, "ListComponents", "{}");
    assert_int_equal(count(out, "componentVersionList"), 1);
    assert_string_equal(S(out, "componentVersionList[0].arn"),
                        PREFIX "component/hello_world/1.0.0");
    assert_string_equal(S(out, "componentVersionList[0].type"), "BUILD");
    assert_null(at(out, "componentVersionList[0].data"));
    assert_null(at(out, "componentVersionList[0].tags"));
    assert_null(at(out, "nextToken"));
    ibs_value_free(out);

    out = ok(f, "ListComponentBuildVersions",
             "{\"componentVersionArn\": \"" PREFIX "component/hello_world/1.0.0\"}");
    assert_int_equal(count(out, "componentSummaryList"), 1);
    assert_string_equal(S(out, "componentSummaryList[0].arn"), arn);
    assert_string_equal(S(out, "componentSummaryList[0].tags.team"), "core");
    assert_string_equal(S(out, "componentSummaryList[0].dateCreated"), "2023-11-14T22:13:20.000Z");
    ibs_value_free(out);

    out = ok(f, "DeleteComponent", "{\"componentBuildVersionArn\": \"%s\"}", arn);
    assert_string_equal(S(out, "componentBuildVersionArn"), arn);
    ibs_value_free(out);

    assert_int_equal(fails(f, &err, "GetComponent", "{\"componentBuildVersionArn\": \"%s\"}", arn),
                     IBS_ENOTFOUND);
    assert_string_equal(err.aws_code, "ResourceNotFoundException");
    assert_int_equal(err.status, 404);
    assert_string_equal(err.message, "The resource ARN '" PREFIX
                                     "component/hello_world/1.0.0/1' does not exist.");
    assert_uuid4(err.request_id);
    assert_string_equal(ibs_error_last()->message,
                        "ResourceNotFoundException: The resource ARN '" PREFIX
                        "component/hello_world/1.0.0/1' does not exist.");
    ibs_provider_error_release(&err);
    free(arn);
}

static void test_component_type_and_versions(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    char *t = create_component(f, "smoke", "2.1.0", "component-test.yaml");
    char *v1 = create_component(f, "lib", "1.0.0", "component-build.yaml");
    char *v2 = create_component(f, "lib", "1.10.0", "component-build.yaml");
    char *v3 = create_component(f, "lib", "1.9.0", "component-build.yaml");
    struct ibs_value *out;
    char *again;

    out = ok(f, "GetComponent", "{\"componentBuildVersionArn\": \"%s\"}", t);
    assert_string_equal(S(out, "component.type"), "TEST");
    assert_null(at(out, "component.parameters"));
    ibs_value_free(out);

    /* A wildcard version ARN names the latest matching version (1.10 > 1.9). */
    out =
        ok(f, "GetComponent", "{\"componentBuildVersionArn\": \"" PREFIX "component/lib/1.x.x\"}");
    assert_string_equal(S(out, "component.arn"), v2);
    ibs_value_free(out);

    /* The same name and version again: CreateComponent documents
     * ResourceInUseException, not ResourceAlreadyExistsException. */
    assert_int_equal(fails(f, &err, "CreateComponent",
                           "{\"name\": \"lib\", \"semanticVersion\": \"1.0.0\", \"platform\":"
                           " \"Linux\", \"data\": \"phases: []\", \"clientToken\": \"dup\"}"),
                     IBS_ECONFLICT);
    assert_string_equal(err.aws_code, "ResourceInUseException");
    assert_int_equal(err.status, 400);
    assert_string_equal(err.message, "The following resource 'Component' already exists: '" PREFIX
                                     "component/lib/1.0.0'.");
    ibs_provider_error_release(&err);

    /* Build numbers are never reused: recreating a deleted version gives /2. */
    ibs_value_free(ok(f, "DeleteComponent", "{\"componentBuildVersionArn\": \"%s\"}", v1));
    again = create_simple(f, "CreateComponent", "componentBuildVersionArn",
                          "{\"name\": \"lib\", \"semanticVersion\": \"1.0.0\", \"platform\":"
                          " \"Linux\", \"uri\": \"s3://bucket/lib.yaml\", \"clientToken\": \"x\"}");
    assert_string_equal(again, PREFIX "component/lib/1.0.0/2");

    /* data and uri together. */
    assert_int_equal(fails(f, &err, "CreateComponent",
                           "{\"name\": \"both\", \"semanticVersion\": \"1.0.0\", \"platform\":"
                           " \"Linux\", \"data\": \"a: 1\", \"uri\": \"s3://b/k\","
                           " \"clientToken\": \"both\"}"),
                     IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidParameterCombinationException");
    ibs_provider_error_release(&err);

    /* A version node above 2^30-1. */
    assert_int_equal(fails(f, &err, "CreateComponent",
                           "{\"name\": \"big\", \"semanticVersion\": \"1.0.1073741824\","
                           " \"platform\": \"Linux\", \"data\": \"a: 1\", \"clientToken\": \"b\"}"),
                     IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidVersionNumberException");
    ibs_provider_error_release(&err);

    /* Invalid YAML in data names the member. */
    assert_int_equal(fails(f, &err, "CreateComponent",
                           "{\"name\": \"bad\", \"semanticVersion\": \"1.0.0\", \"platform\":"
                           " \"Linux\", \"data\": \"a: [1, 2\", \"clientToken\": \"bad\"}"),
                     IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidRequestException");
    assert_non_null(strstr(err.message, "The value supplied for parameter 'data' is not valid."));
    ibs_provider_error_release(&err);

    free(t);
    free(v1);
    free(v2);
    free(v3);
    free(again);
}

static void test_list_by_name_filters_owner(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    const char *versions[] = {"1.0.0", "2.0.0", "1.1.0"};
    struct ibs_value *out;

    for (int i = 0; i < 3; i++)
        free(create_component(f, "alpha", versions[i], "component-build.yaml"));
    free(create_component(f, "beta", "1.0.0", "component-test.yaml"));

    /* With byName: the latest version of each name, in creation order. */
    out = ok(f, "ListComponents", "{\"byName\": true}");
    assert_int_equal(count(out, "componentVersionList"), 2);
    assert_string_equal(S(out, "componentVersionList[0].arn"), PREFIX "component/alpha/2.0.0");
    assert_string_equal(S(out, "componentVersionList[1].arn"), PREFIX "component/beta/1.0.0");
    ibs_value_free(out);

    out = ok(f, "ListComponents", "{}");
    assert_int_equal(count(out, "componentVersionList"), 4);
    assert_string_equal(S(out, "componentVersionList[2].version"), "1.1.0");
    ibs_value_free(out);

    out = ok(f, "ListComponents",
             "{\"byName\": false, \"filters\": [{\"name\": \"name\", \"values\": [\"alpha\"]},"
             " {\"name\": \"version\", \"values\": [\"1.x.x\"]}]}");
    assert_int_equal(count(out, "componentVersionList"), 2);
    assert_string_equal(S(out, "componentVersionList[0].version"), "1.0.0");
    assert_string_equal(S(out, "componentVersionList[1].version"), "1.1.0");
    ibs_value_free(out);

    out = ok(f, "ListComponents", "{\"filters\": [{\"name\": \"type\", \"values\": [\"TEST\"]}]}");
    assert_int_equal(count(out, "componentVersionList"), 1);
    assert_string_equal(S(out, "componentVersionList[0].name"), "beta");
    ibs_value_free(out);

    out = ok(f, "ListComponents", "{\"owner\": \"Amazon\"}");
    assert_int_equal(count(out, "componentVersionList"), 0);
    ibs_value_free(out);
    out = ok(f, "ListComponents", "{\"owner\": \"Self\"}");
    assert_int_equal(count(out, "componentVersionList"), 4);
    ibs_value_free(out);

    assert_int_equal(fails(f, &err, "ListComponents",
                           "{\"filters\": [{\"name\": \"colour\", \"values\": [\"red\"]}]}"),
                     IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidRequestException");
    assert_string_equal(err.message,
                        "The value supplied for parameter 'filters[0].name' is not valid. Valid "
                        "filter names for ListComponents are: description, name, platform, "
                        "supportedOsVersion, type, version.");
    ibs_provider_error_release(&err);

    assert_int_equal(fails(f, &err, "ListComponents", "{\"owner\": \"Everyone\"}"), IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidRequestException");
    assert_non_null(strstr(err.message, "The value supplied for parameter 'owner' is not valid:"));
    ibs_provider_error_release(&err);
}

/* ---- the other kinds, defaults, updates ---- */

static void test_workflow_arn_and_builds(void **state)
{
    struct fixture *f = *state;
    char *arn = create_simple(f, "CreateWorkflow", "workflowBuildVersionArn",
                              "{\"name\": \"Deploy Flow\", \"semanticVersion\": \"1.0.0\","
                              " \"type\": \"DISTRIBUTION\", \"uri\": \"s3://b/wf.yaml\","
                              " \"clientToken\": \"wf\"}");
    struct ibs_value *out;

    /* Lower-cased, the space as a hyphen, the type in the path. */
    assert_string_equal(arn, PREFIX "workflow/distribution/deploy-flow/1.0.0/1");
    out = ok(f, "GetWorkflow", "{\"workflowBuildVersionArn\": \"%s\"}", arn);
    assert_string_equal(S(out, "workflow.name"), "Deploy Flow");
    assert_string_equal(S(out, "workflow.type"), "DISTRIBUTION");
    /* GetWorkflow's output shape has no requestId. */
    assert_null(at(out, "requestId"));
    assert_null(at(out, "workflow.uri"));
    ibs_value_free(out);

    out = ok(f, "ListWorkflowBuildVersions",
             "{\"workflowVersionArn\": \"" PREFIX "workflow/distribution/deploy-flow/1.0.0\"}");
    assert_int_equal(count(out, "workflowSummaryList"), 1);
    assert_string_equal(S(out, "workflowSummaryList[0].arn"), arn);
    ibs_value_free(out);

    out = ok(f, "ListWorkflows", "{}");
    assert_string_equal(S(out, "workflowVersionList[0].arn"),
                        PREFIX "workflow/distribution/deploy-flow/1.0.0");
    ibs_value_free(out);
    free(arn);
}

static void test_infrastructure_defaults_and_update(void **state)
{
    struct fixture *f = *state;
    char *arn;
    struct ibs_value *out;

    arn = create_simple(f, "CreateInfrastructureConfiguration", "infrastructureConfigurationArn",
                        "{\"name\": \"Build-Infra\", \"instanceProfileName\": \"ib-role\","
                        " \"description\": \"first\", \"instanceTypes\": [\"t3.micro\"],"
                        " \"keyPair\": null, \"logging\": {\"s3Logs\": {\"s3KeyPrefix\": null}},"
                        " \"tags\": {\"env\": \"dev\"}, \"clientToken\": \"infra-1\"}");
    assert_string_equal(arn, PREFIX "infrastructure-configuration/build-infra");
    out = ok(f, "GetInfrastructureConfiguration", "{\"infrastructureConfigurationArn\": \"%s\"}",
             arn);
    assert_string_equal(S(out, "infrastructureConfiguration.terminateInstanceOnFailure"), "true");
    assert_string_equal(S(out, "infrastructureConfiguration.description"), "first");
    assert_string_equal(S(out, "infrastructureConfiguration.name"), "Build-Infra");
    assert_string_equal(S(out, "infrastructureConfiguration.tags.env"), "dev");
    assert_null(at(out, "infrastructureConfiguration.dateUpdated"));
    assert_null(at(out, "infrastructureConfiguration.owner"));
    /* JSON nulls mean "not given". */
    assert_null(at(out, "infrastructureConfiguration.keyPair"));
    assert_int_equal(count(out, "infrastructureConfiguration.logging.s3Logs"), 0);
    ibs_value_free(out);

    /* Update replaces every mutable member: description goes away. */
    out = ok(f, "UpdateInfrastructureConfiguration",
             "{\"infrastructureConfigurationArn\": \"%s\", \"instanceProfileName\": \"other\","
             " \"terminateInstanceOnFailure\": false, \"clientToken\": \"infra-2\"}",
             arn);
    assert_string_equal(S(out, "infrastructureConfigurationArn"), arn);
    assert_string_equal(S(out, "clientToken"), "infra-2");
    ibs_value_free(out);
    out = ok(f, "GetInfrastructureConfiguration", "{\"infrastructureConfigurationArn\": \"%s\"}",
             arn);
    assert_string_equal(S(out, "infrastructureConfiguration.instanceProfileName"), "other");
    assert_string_equal(S(out, "infrastructureConfiguration.terminateInstanceOnFailure"), "false");
    assert_null(at(out, "infrastructureConfiguration.description"));
    assert_null(at(out, "infrastructureConfiguration.instanceTypes"));
    assert_string_equal(S(out, "infrastructureConfiguration.dateCreated"),
                        "2023-11-14T22:13:20.000Z");
    assert_string_equal(S(out, "infrastructureConfiguration.dateUpdated"),
                        "2023-11-14T22:13:22.000Z");
    assert_string_equal(S(out, "infrastructureConfiguration.tags.env"), "dev");
    ibs_value_free(out);

    out = ok(f, "ListInfrastructureConfigurations", "{}");
    assert_int_equal(count(out, "infrastructureConfigurationSummaryList"), 1);
    assert_string_equal(S(out, "infrastructureConfigurationSummaryList[0].instanceProfileName"),
                        "other");
    assert_string_equal(S(out, "infrastructureConfigurationSummaryList[0].tags.env"), "dev");
    assert_null(at(out, "infrastructureConfigurationSummaryList[0].terminateInstanceOnFailure"));
    ibs_value_free(out);

    ibs_value_free(ok(f, "DeleteInfrastructureConfiguration",
                      "{\"infrastructureConfigurationArn\": \"%s\"}", arn));
    out = ok(f, "ListInfrastructureConfigurations", "{}");
    assert_int_equal(count(out, "infrastructureConfigurationSummaryList"), 0);
    ibs_value_free(out);
    free(arn);
}

static void test_distribution_and_recipes(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    char *comp = create_component(f, "base", "1.0.0", "component-build.yaml");
    char *dist, *recipe, *crecipe;
    struct ibs_value *out;

    dist = create_simple(f, "CreateDistributionConfiguration", "distributionConfigurationArn",
                         "{\"name\": \"dist\", \"distributions\": [{\"region\": \"us-east-1\","
                         " \"amiDistributionConfiguration\": {\"name\": \"golden\"}},"
                         " {\"region\": \"eu-west-1\", \"amiDistributionConfiguration\": {}}],"
                         " \"clientToken\": \"d1\"}");
    assert_string_equal(dist, PREFIX "distribution-configuration/dist");
    out = ok(f, "GetDistributionConfiguration", "{\"distributionConfigurationArn\": \"%s\"}", dist);
    assert_string_equal(S(out, "distributionConfiguration.timeoutMinutes"), "720");
    assert_string_equal(S(out, "distributionConfiguration.distributions[1].region"), "eu-west-1");
    ibs_value_free(out);
    out = ok(f, "ListDistributionConfigurations", "{}");
    assert_int_equal(count(out, "distributionConfigurationSummaryList[0].regions"), 2);
    assert_string_equal(S(out, "distributionConfigurationSummaryList[0].regions[1]"), "eu-west-1");
    assert_null(at(out, "distributionConfigurationSummaryList[0].distributions"));
    ibs_value_free(out);
    out = ok(f, "UpdateDistributionConfiguration",
             "{\"distributionConfigurationArn\": \"%s\", \"description\": \"two\","
             " \"distributions\": [{\"region\": \"us-west-2\", \"amiDistributionConfiguration\":"
             " {}}], \"clientToken\": \"d2\"}",
             dist);
    ibs_value_free(out);
    out = ok(f, "GetDistributionConfiguration", "{\"distributionConfigurationArn\": \"%s\"}", dist);
    assert_string_equal(S(out, "distributionConfiguration.description"), "two");
    assert_int_equal(count(out, "distributionConfiguration.distributions"), 1);
    assert_non_null(at(out, "distributionConfiguration.dateUpdated"));
    ibs_value_free(out);

    recipe = create_recipe(f, "Golden-Recipe", comp);
    assert_string_equal(recipe, PREFIX "image-recipe/golden-recipe/1.0.0");
    out = ok(f, "GetImageRecipe", "{\"imageRecipeArn\": \"%s\"}", recipe);
    assert_string_equal(S(out, "imageRecipe.type"), "AMI");
    assert_string_equal(S(out, "imageRecipe.platform"), "Linux");
    assert_string_equal(S(out, "imageRecipe.version"), "1.0.0");
    assert_string_equal(S(out, "imageRecipe.components[0].componentArn"), comp);
    assert_string_equal(S(out, "imageRecipe.blockDeviceMappings[0].ebs.volumeSize"), "30");
    assert_string_equal(S(out, "imageRecipe.owner"), ACCOUNT);
    ibs_value_free(out);

    /* Image recipes document ResourceAlreadyExistsException. */
    assert_int_equal(fails(f, &err, "CreateImageRecipe",
                           "{\"name\": \"golden-recipe\", \"semanticVersion\": \"1.0.0\","
                           " \"parentImage\": \"ami-0123456789abcdef0\", \"components\":"
                           " [{\"componentArn\": \"%s\"}], \"clientToken\": \"dup\"}",
                           comp),
                     IBS_EEXISTS);
    assert_string_equal(err.aws_code, "ResourceAlreadyExistsException");
    assert_string_equal(err.message, "The following resource 'ImageRecipe' already exists: '" PREFIX
                                     "image-recipe/golden-recipe/1.0.0'.");
    ibs_provider_error_release(&err);

    crecipe = create_simple(
        f, "CreateContainerRecipe", "containerRecipeArn",
        "{\"containerType\": \"DOCKER\", \"name\": \"svc\", \"semanticVersion\": \"2.0.0\","
        " \"components\": [{\"componentArn\": \"arn:aws:imagebuilder:us-east-1:aws:component/"
        "update-linux/x.x.x\"}], \"parentImage\": \"amazonlinux:latest\","
        " \"dockerfileTemplateData\": \"FROM {{{ imagebuilder:parentImage }}}\","
        " \"targetRepository\": {\"service\": \"ECR\", \"repositoryName\": \"svc\"},"
        " \"clientToken\": \"cr\"}");
    assert_string_equal(crecipe, PREFIX "container-recipe/svc/2.0.0");
    out = ok(f, "ListContainerRecipes", "{}");
    assert_int_equal(count(out, "containerRecipeSummaryList"), 1);
    assert_string_equal(S(out, "containerRecipeSummaryList[0].containerType"), "DOCKER");
    assert_string_equal(S(out, "containerRecipeSummaryList[0].platform"), "Linux");
    assert_string_equal(S(out, "containerRecipeSummaryList[0].parentImage"), "amazonlinux:latest");
    ibs_value_free(out);
    out = ok(f, "ListImageRecipes",
             "{\"filters\": [{\"name\": \"platform\", \"values\":"
             " [\"Linux\"]}]}");
    assert_int_equal(count(out, "imageRecipeSummaryList"), 1);
    assert_string_equal(S(out, "imageRecipeSummaryList[0].arn"), recipe);
    ibs_value_free(out);

    ibs_value_free(ok(f, "DeleteContainerRecipe", "{\"containerRecipeArn\": \"%s\"}", crecipe));
    ibs_value_free(ok(f, "DeleteImageRecipe", "{\"imageRecipeArn\": \"%s\"}", recipe));
    ibs_value_free(ok(f, "DeleteDistributionConfiguration",
                      "{\"distributionConfigurationArn\": \"%s\"}", dist));
    free(comp);
    free(dist);
    free(recipe);
    free(crecipe);
}

static void test_pipeline_defaults_update_dependencies(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    char *comp = create_component(f, "base", "1.0.0", "component-build.yaml");
    char *infra = create_infra(f, "infra");
    char *recipe = create_recipe(f, "recipe", comp);
    char *wf = create_simple(f, "CreateWorkflow", "workflowBuildVersionArn",
                             "{\"name\": \"build-wf\", \"semanticVersion\": \"1.0.0\", \"type\":"
                             " \"BUILD\", \"data\": \"name: wf\\nschemaVersion: 1.0\\nsteps: []\","
                             " \"clientToken\": \"wf\"}");
    char *pipe;
    struct ibs_value *out;

    {
        struct ibs_buf b = IBS_BUF_INIT;
        ibs_buf_printf(&b,
                       "{\"name\": \"Nightly\", \"imageRecipeArn\": \"%s\","
                       " \"infrastructureConfigurationArn\": \"%s\","
                       " \"schedule\": {\"scheduleExpression\": \"cron(0 0 * * ? *)\"},"
                       " \"workflows\": [{\"workflowArn\": \"%s\"}], \"clientToken\": \"p1\"}",
                       recipe, infra, wf);
        pipe = create_simple(f, "CreateImagePipeline", "imagePipelineArn", b.ptr);
        ibs_buf_release(&b);
    }
    assert_string_equal(pipe, PREFIX "image-pipeline/nightly");
    out = ok(f, "GetImagePipeline", "{\"imagePipelineArn\": \"%s\"}", pipe);
    assert_string_equal(S(out, "imagePipeline.status"), "ENABLED");
    assert_string_equal(S(out, "imagePipeline.enhancedImageMetadataEnabled"), "true");
    assert_string_equal(S(out, "imagePipeline.imageTestsConfiguration.imageTestsEnabled"), "true");
    assert_string_equal(S(out, "imagePipeline.imageTestsConfiguration.timeoutMinutes"), "720");
    assert_string_equal(S(out, "imagePipeline.schedule.pipelineExecutionStartCondition"),
                        "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE");
    assert_string_equal(S(out, "imagePipeline.platform"), "Linux");
    assert_string_equal(S(out, "imagePipeline.name"), "Nightly");
    assert_null(at(out, "imagePipeline.owner"));
    ibs_value_free(out);

    /* Everything the pipeline uses is protected from deletion. */
    assert_int_equal(fails(f, &err, "DeleteImageRecipe", "{\"imageRecipeArn\": \"%s\"}", recipe),
                     IBS_EDEPENDENCY);
    assert_string_equal(err.aws_code, "ResourceDependencyException");
    assert_int_equal(err.status, 400);
    assert_string_equal(err.message, "Resource dependency error: The resource ARN '" PREFIX
                                     "image-recipe/recipe/1.0.0' has other resources depended "
                                     "on it.");
    ibs_provider_error_release(&err);
    assert_int_equal(fails(f, &err, "DeleteInfrastructureConfiguration",
                           "{\"infrastructureConfigurationArn\": \"%s\"}", infra),
                     IBS_EDEPENDENCY);
    ibs_provider_error_release(&err);
    assert_int_equal(fails(f, &err, "DeleteWorkflow", "{\"workflowBuildVersionArn\": \"%s\"}", wf),
                     IBS_EDEPENDENCY);
    ibs_provider_error_release(&err);
    assert_int_equal(
        fails(f, &err, "DeleteComponent", "{\"componentBuildVersionArn\": \"%s\"}", comp),
        IBS_EDEPENDENCY);
    assert_string_equal(err.aws_code, "ResourceDependencyException");
    ibs_provider_error_release(&err);

    /* Update: no selective updates; the schedule and workflows go away. */
    ibs_value_free(ok(f, "UpdateImagePipeline",
                      "{\"imagePipelineArn\": \"%s\", \"imageRecipeArn\": \"%s\","
                      " \"infrastructureConfigurationArn\": \"%s\", \"status\": \"DISABLED\","
                      " \"clientToken\": \"p2\"}",
                      pipe, recipe, infra));
    out = ok(f, "GetImagePipeline", "{\"imagePipelineArn\": \"%s\"}", pipe);
    assert_string_equal(S(out, "imagePipeline.status"), "DISABLED");
    assert_null(at(out, "imagePipeline.schedule"));
    assert_null(at(out, "imagePipeline.workflows"));
    assert_non_null(at(out, "imagePipeline.dateUpdated"));
    ibs_value_free(out);
    /* The workflow is no longer referenced. */
    ibs_value_free(ok(f, "DeleteWorkflow", "{\"workflowBuildVersionArn\": \"%s\"}", wf));

    out = ok(f, "ListImagePipelines",
             "{\"filters\": [{\"name\": \"status\", \"values\": [\"DISABLED\"]}]}");
    assert_int_equal(count(out, "imagePipelineList"), 1);
    assert_string_equal(S(out, "imagePipelineList[0].arn"), pipe);
    assert_string_equal(S(out, "imagePipelineList[0].imageRecipeArn"), recipe);
    ibs_value_free(out);

    ibs_value_free(ok(f, "DeleteImagePipeline", "{\"imagePipelineArn\": \"%s\"}", pipe));
    ibs_value_free(ok(f, "DeleteImageRecipe", "{\"imageRecipeArn\": \"%s\"}", recipe));
    ibs_value_free(ok(f, "DeleteComponent", "{\"componentBuildVersionArn\": \"%s\"}", comp));
    ibs_value_free(ok(f, "DeleteInfrastructureConfiguration",
                      "{\"infrastructureConfigurationArn\": \"%s\"}", infra));
    free(comp);
    free(infra);
    free(recipe);
    free(wf);
    free(pipe);
}

static void test_missing_references(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    char *comp = create_component(f, "base", "1.0.0", "component-build.yaml");
    char *recipe = create_recipe(f, "recipe", comp);

    assert_int_equal(fails(f, &err, "CreateImagePipeline",
                           "{\"name\": \"pipe\", \"imageRecipeArn\": \"%s\","
                           " \"infrastructureConfigurationArn\": \"" PREFIX
                           "infrastructure-configuration/nope\", \"clientToken\": \"p\"}",
                           recipe),
                     IBS_ENOTFOUND);
    assert_string_equal(err.aws_code, "ResourceNotFoundException");
    assert_string_equal(err.message,
                        "The resource ARN '" PREFIX "infrastructure-configuration/nope' given in "
                        "'infrastructureConfigurationArn' does not exist.");
    ibs_provider_error_release(&err);

    assert_int_equal(
        fails(f, &err, "CreateImageRecipe",
              "{\"name\": \"r-two\", \"semanticVersion\": \"1.0.0\", \"parentImage\":"
              " \"ami-0123456789abcdef0\", \"components\": [{\"componentArn\": \"%s\"},"
              " {\"componentArn\": \"" PREFIX "component/ghost/1.0.0/1\"}],"
              " \"clientToken\": \"r2\"}",
              comp),
        IBS_ENOTFOUND);
    assert_string_equal(err.message, "The resource ARN '" PREFIX
                                     "component/ghost/1.0.0/1' given in 'components[1]."
                                     "componentArn' does not exist.");
    ibs_provider_error_release(&err);

    /* A failed call leaves nothing behind. */
    assert_int_equal(fails(f, &err, "GetImageRecipe",
                           "{\"imageRecipeArn\": \"" PREFIX "image-recipe/r-two/1.0.0\"}"),
                     IBS_ENOTFOUND);
    ibs_provider_error_release(&err);

    assert_int_equal(fails(f, &err, "DeleteLifecyclePolicy",
                           "{\"lifecyclePolicyArn\": \"" PREFIX "lifecycle-policy/none\"}"),
                     IBS_ENOTFOUND);
    assert_string_equal(err.aws_code, "ResourceNotFoundException");
    assert_int_equal(err.status, 404);
    ibs_provider_error_release(&err);
    free(comp);
    free(recipe);
}

static void test_lifecycle_policy(void **state)
{
    struct fixture *f = *state;
    char *arn = create_simple(
        f, "CreateLifecyclePolicy", "lifecyclePolicyArn",
        "{\"name\": \"Cleanup\", \"executionRole\": \"ib-lifecycle\", \"resourceType\":"
        " \"AMI_IMAGE\", \"policyDetails\": [{\"action\": {\"type\": \"DELETE\"}, \"filter\":"
        " {\"type\": \"COUNT\", \"value\": 5}}], \"resourceSelection\": {\"tagMap\":"
        " {\"env\": \"dev\"}}, \"clientToken\": \"lp\"}");
    struct ibs_value *out;

    assert_string_equal(arn, PREFIX "lifecycle-policy/cleanup");
    out = ok(f, "GetLifecyclePolicy", "{\"lifecyclePolicyArn\": \"%s\"}", arn);
    assert_string_equal(S(out, "lifecyclePolicy.status"), "ENABLED");
    /* LifecyclePolicy.dateCreated is a timestamp: epoch seconds on the wire. */
    assert_int_equal(at(out, "lifecyclePolicy.dateCreated")->type, IBS_VALUE_INT);
    assert_int_equal(at(out, "lifecyclePolicy.dateCreated")->num.i, T0 / 1000);
    assert_string_equal(S(out, "lifecyclePolicy.policyDetails[0].filter.value"), "5");
    ibs_value_free(out);

    ibs_value_free(ok(f, "UpdateLifecyclePolicy",
                      "{\"lifecyclePolicyArn\": \"%s\", \"status\": \"DISABLED\","
                      " \"executionRole\": \"ib-lifecycle\", \"resourceType\": \"AMI_IMAGE\","
                      " \"policyDetails\": [{\"action\": {\"type\": \"DELETE\"}, \"filter\":"
                      " {\"type\": \"COUNT\", \"value\": 3}}], \"resourceSelection\":"
                      " {\"tagMap\": {\"env\": \"dev\"}}, \"clientToken\": \"lp2\"}",
                      arn));
    out = ok(f, "ListLifecyclePolicies",
             "{\"filters\": [{\"name\": \"status\", \"values\": [\"DISABLED\"]}]}");
    assert_int_equal(count(out, "lifecyclePolicySummaryList"), 1);
    assert_string_equal(S(out, "lifecyclePolicySummaryList[0].name"), "Cleanup");
    assert_int_equal(at(out, "lifecyclePolicySummaryList[0].dateUpdated")->type, IBS_VALUE_INT);
    ibs_value_free(out);
    ibs_value_free(ok(f, "DeleteLifecyclePolicy", "{\"lifecyclePolicyArn\": \"%s\"}", arn));
    free(arn);
}

/* ---- idempotency, validation ---- */

static void test_idempotency(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    const char *body = "{\"name\": \"same\", \"instanceProfileName\": \"role\","
                       " \"clientToken\": \"token-1\"}";
    struct ibs_value *a = ok(f, "CreateInfrastructureConfiguration", "%s", body);
    struct ibs_value *b = ok(f, "CreateInfrastructureConfiguration", "%s", body);
    struct ibs_value *list;

    assert_string_equal(S(a, "infrastructureConfigurationArn"),
                        S(b, "infrastructureConfigurationArn"));
    assert_string_equal(S(b, "clientToken"), "token-1");
    /* A replay is a new request. */
    assert_string_not_equal(S(a, "requestId"), S(b, "requestId"));
    list = ok(f, "ListInfrastructureConfigurations", "{}");
    assert_int_equal(count(list, "infrastructureConfigurationSummaryList"), 1);
    ibs_value_free(list);

    assert_int_equal(fails(f, &err, "CreateInfrastructureConfiguration",
                           "{\"name\": \"same\", \"instanceProfileName\": \"other-role\","
                           " \"clientToken\": \"token-1\"}"),
                     IBS_ECONFLICT);
    assert_string_equal(err.aws_code, "IdempotentParameterMismatchException");
    assert_int_equal(err.status, 400);
    assert_string_equal(err.message, "The client token 'token-1' was already used with different "
                                     "parameters for CreateInfrastructureConfiguration.");
    ibs_provider_error_release(&err);

    /* Without the token it is a second create of the same name. */
    assert_int_equal(fails(f, &err, "CreateInfrastructureConfiguration",
                           "{\"name\": \"same\", \"instanceProfileName\": \"role\","
                           " \"clientToken\": \"token-2\"}"),
                     IBS_EEXISTS);
    assert_string_equal(err.aws_code, "ResourceAlreadyExistsException");
    ibs_provider_error_release(&err);
    ibs_value_free(a);
    ibs_value_free(b);
}

static void test_validation_errors(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    struct ibs_value *out = NULL;

    assert_int_equal(fails(f, &err, "ListComponents", "{\"maxResults\": 0}"), IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidRequestException");
    assert_int_equal(err.status, 400);
    assert_non_null(
        strstr(err.message, "The value supplied for parameter 'maxResults' is not valid:"));
    ibs_provider_error_release(&err);

    assert_int_equal(fails(f, &err, "ListInfrastructureConfigurations", "{\"maxResults\": 26}"),
                     IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidRequestException");
    assert_non_null(
        strstr(err.message, "The value supplied for parameter 'maxResults' is not valid:"));
    ibs_provider_error_release(&err);

    assert_int_equal(fails(f, &err, "CreateInfrastructureConfiguration",
                           "{\"instanceProfileName\": \"r\", \"clientToken\": \"t\"}"),
                     IBS_EINVALID);
    assert_string_equal(err.message, "The value supplied for parameter 'name' is not valid: The "
                                     "member is required.");
    ibs_provider_error_release(&err);

    /* Put*Policy documents InvalidParameterValueException. */
    assert_int_equal(fails(f, &err, "PutComponentPolicy",
                           "{\"componentArn\": \"nope\","
                           " \"policy\": \"{}\"}"),
                     IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidParameterValueException");
    assert_non_null(
        strstr(err.message, "The value supplied for parameter 'componentArn' is not valid:"));
    ibs_provider_error_release(&err);

    assert_int_equal(
        fails(f, &err, "CreateImageRecipe",
              "{\"name\": \"xyz\", \"semanticVersion\": \"1.0.0\", \"parentImage\": \"a\","
              " \"components\": [{\"componentArn\": \"" PREFIX
              "component/c/1.0.0/1\"}], \"clientToken\": \"t\", \"colour\": 1}"),
        IBS_EINVALID);
    assert_non_null(strstr(err.message, "parameter 'colour'"));
    ibs_provider_error_release(&err);

    assert_int_equal(fails(f, &err, "DescribeEverything", "{}"), IBS_EUNSUPPORTED);
    assert_string_equal(err.aws_code, "UnknownOperationException");
    assert_int_equal(err.status, 404);
    ibs_provider_error_release(&err);

    assert_int_equal(fails(f, &err, "ImportVmImage",
                           "{\"name\": \"vm\", \"semanticVersion\": \"1.0.0\", \"platform\":"
                           " \"Linux\", \"vmImportTaskId\": \"import-ami-1\","
                           " \"clientToken\": \"vm\"}"),
                     IBS_EINVALID);
    assert_string_equal(err.message, "The operation ImportVmImage is not supported by the "
                                     "emulator.");
    ibs_provider_error_release(&err);

    /* A NULL request is an empty one. */
    assert_int_equal(ibs_provider_call(&out, NULL, f->p, "ListImages", NULL), 0);
    assert_int_equal(count(out, "imageVersionList"), 0);
    ibs_value_free(out);
}

/* ---- pagination ---- */

static void test_pagination_stable_with_creations(void **state)
{
    struct fixture *f = *state;
    struct ibs_value *seen = ibs_value_new_list(), *all = NULL;
    char name[32], *token = NULL;
    int created = 0, pages = 0;
    size_t npages = 0;

    for (; created < 60; created++) {
        snprintf(name, sizeof(name), "infra-%03d", created);
        free(create_infra(f, name));
    }
    do {
        struct ibs_value *out;
        if (token)
            out = ok(f, "ListInfrastructureConfigurations",
                     "{\"maxResults\": 25, \"nextToken\": \"%s\"}", token);
        else
            out = ok(f, "ListInfrastructureConfigurations", "{\"maxResults\": 25}");
        const struct ibs_value *list = at(out, "infrastructureConfigurationSummaryList");
        assert_non_null(list);
        assert_true(list->count <= 25);
        for (size_t i = 0; i < list->count; i++)
            ibs_value_list_append(seen, ibs_value_new_string(S(list->u.items[i], "name")));
        free(token);
        token = at(out, "nextToken") ? strdup(S(out, "nextToken")) : NULL;
        ibs_value_free(out);
        pages++;
        /* Resources created between pages come at the end, once. */
        for (int k = 0; k < 3 && token; k++, created++) {
            snprintf(name, sizeof(name), "infra-%03d", created);
            free(create_infra(f, name));
        }
    } while (token);
    assert_int_equal(seen->count, (size_t)created);
    for (int i = 0; i < created; i++) {
        snprintf(name, sizeof(name), "infra-%03d", i);
        assert_string_equal(seen->u.items[i]->str, name);
    }
    assert_int_equal(pages, 3);
    ibs_value_free(seen);

    assert_int_equal(
        ibs_provider_list_all(&all, &npages, f->p, "ListInfrastructureConfigurations", NULL), 0);
    assert_int_equal(all->count, (size_t)created);
    assert_int_equal(npages, 3);
    assert_string_equal(S(all, "[65].name"), "infra-065");
    ibs_value_free(all);
}

static void test_pagination_forged_tokens(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    struct ibs_value *out;
    char name[32], *token, *forged;
    struct fixture other = {0};

    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "cfg%d", i);
        free(create_infra(f, name));
    }
    out = ok(f, "ListInfrastructureConfigurations", "{\"maxResults\": 1}");
    token = strdup(S(out, "nextToken"));
    ibs_value_free(out);

    /* The genuine token works, twice (tokens are not single-use). */
    for (int i = 0; i < 2; i++) {
        out = ok(f, "ListInfrastructureConfigurations",
                 "{\"maxResults\": 1, \"nextToken\": \"%s\"}", token);
        assert_string_equal(S(out, "infrastructureConfigurationSummaryList[0].name"), "cfg1");
        ibs_value_free(out);
    }

    /* One character changed. */
    forged = strdup(token);
    forged[3] = forged[3] == 'A' ? 'B' : 'A';
    assert_int_equal(
        fails(f, &err, "ListInfrastructureConfigurations", "{\"nextToken\": \"%s\"}", forged),
        IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidPaginationTokenException");
    assert_int_equal(err.status, 400);
    assert_string_equal(err.message, "The pagination token is not valid for this request.");
    ibs_provider_error_release(&err);
    free(forged);

    /* Garbage, another operation, other filters. */
    assert_int_equal(
        fails(f, &err, "ListInfrastructureConfigurations", "{\"nextToken\": \"not-a-token!\"}"),
        IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidPaginationTokenException");
    ibs_provider_error_release(&err);
    assert_int_equal(
        fails(f, &err, "ListDistributionConfigurations", "{\"nextToken\": \"%s\"}", token),
        IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidPaginationTokenException");
    ibs_provider_error_release(&err);
    assert_int_equal(fails(f, &err, "ListInfrastructureConfigurations",
                           "{\"nextToken\": \"%s\", \"filters\": [{\"name\": \"name\","
                           " \"values\": [\"cfg2\"]}]}",
                           token),
                     IBS_EINVALID);
    ibs_provider_error_release(&err);

    /* A token of another database (another secret). */
    snprintf(other.dir, sizeof(other.dir), "/tmp/ibs-emu-XXXXXX");
    assert_non_null(mkdtemp(other.dir));
    other.now = T0;
    other.step = 1;
    open_emulator(&other, 0);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "cfg%d", i);
        free(create_infra(&other, name));
    }
    assert_int_equal(fails(&other, &err, "ListInfrastructureConfigurations",
                           "{\"maxResults\": 1, \"nextToken\": \"%s\"}", token),
                     IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidPaginationTokenException");
    ibs_provider_error_release(&err);
    ibs_provider_free(other.p);
    remove_dir(other.dir);
    free(token);
}

/* ---- listing many resources ---- */

#define GROUP_NAMES 40
#define GROUP_ROUNDS 3

/*
 * Creates versions of GROUP_NAMES components in an interleaved order: round
 * r creates versions[r] of every name i with (i + r) % 4 != 0, visiting the
 * names in the order (k * step[r] + 5) % GROUP_NAMES. Fills `order` with the
 * version ARNs in creation order and `first` with each name's creation
 * index of its first version; returns the number created.
 */
static size_t create_interleaved(struct fixture *f, char order[][96], size_t first[GROUP_NAMES])
{
    static const char *const versions[GROUP_ROUNDS] = {"1.9.0", "1.10.0", "0.1.0"};
    static const int step[GROUP_ROUNDS] = {7, 11, 3};
    size_t n = 0;
    char name[16];

    for (int i = 0; i < GROUP_NAMES; i++)
        first[i] = SIZE_MAX;
    for (int r = 0; r < GROUP_ROUNDS; r++)
        for (int k = 0; k < GROUP_NAMES; k++) {
            int i = (k * step[r] + 5) % GROUP_NAMES;
            if ((i + r) % 4 == 0)
                continue;
            snprintf(name, sizeof(name), "n%02d", i);
            free(create_component(f, name, versions[r], "component-build.yaml"));
            snprintf(order[n], sizeof(order[n]), PREFIX "component/%s/%s", name, versions[r]);
            if (first[i] == SIZE_MAX)
                first[i] = n;
            n++;
        }
    return n;
}

/* Pages through ListComponents with `extra` members and maxResults 7;
 * returns the version ARNs as a list (caller frees). */
static struct ibs_value *list_components_paged(struct fixture *f, const char *extra, int *out_pages)
{
    struct ibs_value *arns = ibs_value_new_list(), *out;
    char *token = NULL;

    *out_pages = 0;
    do {
        if (token)
            out = ok(f, "ListComponents", "{\"maxResults\": 7, %s\"nextToken\": \"%s\"}", extra,
                     token);
        else
            out = ok(f, "ListComponents", "{%s\"maxResults\": 7}", extra);
        const struct ibs_value *list = at(out, "componentVersionList");
        assert_non_null(list);
        assert_true(list->count <= 7);
        for (size_t i = 0; i < list->count; i++)
            assert_int_equal(
                ibs_value_list_append(arns, ibs_value_new_string(S(list->u.items[i], "arn"))), 0);
        free(token);
        token = at(out, "nextToken") ? strdup(S(out, "nextToken")) : NULL;
        ibs_value_free(out);
        (*out_pages)++;
        assert_true(*out_pages < 100);
    } while (token);
    return arns;
}

/* The byName list expected after create_interleaved(): every name at the
 * position of its first version, answering its latest version. */
static void expect_by_name(const struct ibs_value *arns, const size_t first[GROUP_NAMES])
{
    char expected[96];
    size_t prev = 0;

    assert_int_equal(arns->count, GROUP_NAMES);
    for (size_t j = 0; j < arns->count; j++) {
        int name = -1;
        size_t best = SIZE_MAX;
        /* The j-th name in order of first creation. */
        for (int i = 0; i < GROUP_NAMES; i++)
            if (first[i] != SIZE_MAX && (j == 0 || first[i] > prev) && first[i] < best) {
                best = first[i];
                name = i;
            }
        assert_true(name >= 0);
        prev = best;
        /* Names that skip round 1 have no 1.10.0; semantic order puts
         * 1.10.0 above 1.9.0 above 0.1.0. */
        snprintf(expected, sizeof(expected), PREFIX "component/n%02d/%s", name,
                 (name + 1) % 4 == 0 ? "1.9.0" : "1.10.0");
        assert_string_equal(arns->u.items[j]->str, expected);
    }
}

static void test_list_grouping_interleaved(void **state)
{
    struct fixture *f = *state;
    char order[GROUP_NAMES * GROUP_ROUNDS][96], build_arn[128];
    size_t first[GROUP_NAMES];
    size_t created = create_interleaved(f, order, first);
    struct ibs_value *arns;
    int pages;

    assert_int_equal(created, GROUP_NAMES * GROUP_ROUNDS * 3 / 4);

    /* Every version, in creation order, across pages. */
    arns = list_components_paged(f, "", &pages);
    assert_int_equal(arns->count, created);
    assert_int_equal(pages, (int)((created + 6) / 7));
    for (size_t i = 0; i < created; i++)
        assert_string_equal(arns->u.items[i]->str, order[i]);
    ibs_value_free(arns);

    /* byName: the latest version of each name at its first position. */
    arns = list_components_paged(f, "\"byName\": true, ", &pages);
    expect_by_name(arns, first);
    assert_int_equal(pages, (GROUP_NAMES + 6) / 7);
    ibs_value_free(arns);

    /* A filter that reads the stored documents, across pages: same list. */
    arns = list_components_paged(
        f, "\"byName\": true, \"filters\": [{\"name\": \"platform\", \"values\": [\"Linux\"]}], ",
        &pages);
    expect_by_name(arns, first);
    ibs_value_free(arns);
    arns = list_components_paged(
        f, "\"filters\": [{\"name\": \"platform\", \"values\": [\"Windows\"]}], ", &pages);
    assert_int_equal(arns->count, 0);
    assert_int_equal(pages, 1);
    ibs_value_free(arns);

    /* Deleting a name's oldest version moves the name to its next one. */
    snprintf(build_arn, sizeof(build_arn), "%s/1", order[0]);
    ibs_value_free(ok(f, "DeleteComponent", "{\"componentBuildVersionArn\": \"%s\"}", build_arn));
    for (size_t i = 1; i < created; i++)
        if (strncmp(order[i], order[0], strlen(PREFIX "component/n00/")) == 0) {
            int n = atoi(order[0] + strlen(PREFIX "component/n"));
            first[n] = i;
            break;
        }
    arns = list_components_paged(f, "\"byName\": true, ", &pages);
    expect_by_name(arns, first);
    ibs_value_free(arns);
}

/* EXPLAIN QUERY PLAN of `sql` on the emulator's database, one line per step. */
static void query_plan(char *buf, size_t size, const char *dir, const char *sql)
{
    char path[256], query[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    size_t used = 0;

    snprintf(path, sizeof(path), "%s/imagebuilder.db", dir);
    snprintf(query, sizeof(query), "EXPLAIN QUERY PLAN %s", sql);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, query, -1, &st, NULL), SQLITE_OK);
    buf[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW && used < size)
        used += (size_t)snprintf(buf + used, size - used, "%s\n", sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_store_scans_use_indexes(void **state)
{
    struct fixture *f = *state;
    char plan[512], path[256];
    sqlite3 *db = NULL;

    free(create_component(f, "comp", "1.0.0", "component-build.yaml"));
    /* The statements of ibs_emulator_store_scan() for List (all records of
     * a kind, images of a pipeline) and for resolving a version ARN. */
    query_plan(plan, sizeof(plan), f->dir,
               "SELECT seq, doc FROM resources WHERE kind = ?1 ORDER BY seq");
    assert_string_equal(plan, "SEARCH resources USING INDEX resources_by_kind (kind=?)\n");
    query_plan(plan, sizeof(plan), f->dir,
               "SELECT seq, doc FROM resources WHERE kind = ?1 AND path = ?2 ORDER BY seq");
    assert_string_equal(
        plan, "SEARCH resources USING INDEX resources_by_kind_path (kind=? AND path=?)\n");
    query_plan(plan, sizeof(plan), f->dir,
               "SELECT seq, doc FROM resources WHERE kind = ?1 AND parent = ?3 ORDER BY seq");
    assert_string_equal(plan, "SEARCH resources USING INDEX resources_by_parent (parent=?)\n");
    query_plan(plan, sizeof(plan), f->dir,
               "SELECT from_arn FROM refs WHERE to_arn >= ?1 AND to_arn < ?2 ORDER BY from_arn");
    assert_non_null(strstr(plan, "USING INDEX refs_by_target (to_arn>? AND to_arn<?)"));

    /* A database from before the index gets it when opened. */
    ibs_provider_free(f->p);
    f->p = NULL;
    snprintf(path, sizeof(path), "%s/imagebuilder.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DROP INDEX resources_by_kind_path", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    query_plan(plan, sizeof(plan), f->dir,
               "SELECT seq, doc FROM resources WHERE kind = ?1 AND path = ?2 ORDER BY seq");
    assert_string_equal(plan, "SEARCH resources USING INDEX resources_by_kind (kind=?)\n");
    open_emulator(f, 0);
    query_plan(plan, sizeof(plan), f->dir,
               "SELECT seq, doc FROM resources WHERE kind = ?1 AND path = ?2 ORDER BY seq");
    assert_string_equal(
        plan, "SEARCH resources USING INDEX resources_by_kind_path (kind=? AND path=?)\n");
}

static void test_dependents_by_name_prefix(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    char *base = create_component(f, "base", "1.0.0", "component-build.yaml");
    char *base2 = create_component(f, "base-2", "1.0.0", "component-build.yaml");
    char *base3 = create_component(f, "basf", "1.0.0", "component-build.yaml");
    char *r1 = create_recipe(f, "recipe-1", PREFIX "component/base-2/1.0.0/1");
    char *r2 = create_recipe(f, "recipe-2", PREFIX "component/basf/1.x.x");

    /* "base-2" and "basf" share or follow the prefix of "base"; references
     * to them do not keep "base" alive, while a wildcard ARN keeps "basf". */
    ibs_value_free(ok(f, "DeleteComponent", "{\"componentBuildVersionArn\": \"%s\"}", base));
    assert_int_equal(
        fails(f, &err, "DeleteComponent", "{\"componentBuildVersionArn\": \"%s\"}", base2),
        IBS_EDEPENDENCY);
    ibs_provider_error_release(&err);
    assert_int_equal(
        fails(f, &err, "DeleteComponent", "{\"componentBuildVersionArn\": \"%s\"}", base3),
        IBS_EDEPENDENCY);
    assert_string_equal(err.message, "Resource dependency error: The resource ARN '" PREFIX
                                     "component/basf/1.0.0/1' has other resources depended on "
                                     "it.");
    ibs_provider_error_release(&err);
    ibs_value_free(ok(f, "DeleteImageRecipe", "{\"imageRecipeArn\": \"%s\"}", r2));
    ibs_value_free(ok(f, "DeleteComponent", "{\"componentBuildVersionArn\": \"%s\"}", base3));
    free(base);
    free(base2);
    free(base3);
    free(r1);
    free(r2);
}

/* ---- hashes, MACs and random ids without OpenSSL in this module ---- */

static void hex(char *out, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void test_hashes_macs_random(void **state)
{
    unsigned char mac[32], a[1000], b[32], c[32];
    char buf[65], id1[IBS_EMULATOR_REQUEST_ID_SIZE], id2[IBS_EMULATOR_REQUEST_ID_SIZE];
    struct ibs_value *v = NULL;
    static const char *const skip[] = {"clientToken", NULL};
    static const char request[] = "{\"clientToken\": \"t\", \"b\": [1, true], \"a\": \"x\"}";
    size_t zeros = 0;

    (void)state;
    /* FIPS 180-2 "abc" and RFC 4231 test case 2. */
    assert_int_equal(ibs_emulator_sha256_hex(buf, "abc", 3), 0);
    assert_string_equal(buf, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(ibs_emulator_hmac(mac, (const unsigned char *)"Jefe", 4,
                                       "what do ya want for nothing?", 28),
                     0);
    hex(buf, mac, sizeof(mac));
    assert_string_equal(buf, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* The idempotency hash is the SHA-256 of the sorted compact JSON, as
     * stored in existing data directories. */
    assert_int_equal(ibs_json_parse(&v, request, strlen(request)), 0);
    assert_int_equal(ibs_emulator_request_hash(buf, v, skip), 0);
    assert_string_equal(buf, "cc6fd764215aaace774f5539e49158f38569b8b5ef4346d8e9295227169bbb73");
    ibs_value_free(v);

    assert_true(ibs_emulator_mem_equal(mac, mac, sizeof(mac)));
    assert_true(ibs_emulator_mem_equal("a", "b", 0));
    memcpy(b, mac, sizeof(b));
    b[31] ^= 1;
    assert_false(ibs_emulator_mem_equal(mac, b, sizeof(b)));
    b[31] ^= 1;
    b[0] ^= 0x80;
    assert_false(ibs_emulator_mem_equal(mac, b, sizeof(b)));

    /* More than getrandom() hands out in one call for large requests. */
    memset(a, 0, sizeof(a));
    assert_int_equal(ibs_emulator_random(a, sizeof(a)), 0);
    for (size_t i = 0; i < sizeof(a); i++)
        zeros += a[i] == 0;
    assert_true(zeros < 30);
    assert_int_equal(ibs_emulator_random(b, sizeof(b)), 0);
    assert_int_equal(ibs_emulator_random(c, sizeof(c)), 0);
    assert_memory_not_equal(b, c, sizeof(b));

    assert_int_equal(ibs_emulator_uuid(id1, sizeof(id1)), 0);
    assert_int_equal(ibs_emulator_uuid(id2, sizeof(id2)), 0);
    assert_uuid4(id1);
    assert_uuid4(id2);
    assert_string_not_equal(id1, id2);
}

/* ---- tags and policies ---- */

static void test_tags_round_trip(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    char *arn = create_infra(f, "tagged");
    struct ibs_value *out;

    out = ok(f, "TagResource", "{\"resourceArn\": \"%s\", \"tags\": {\"a\": \"1\", \"b\": \"2\"}}",
             arn);
    assert_int_equal(out->count, 0);
    ibs_value_free(out);
    ibs_value_free(
        ok(f, "TagResource", "{\"resourceArn\": \"%s\", \"tags\": {\"a\": \"3\"}}", arn));
    ibs_value_free(
        ok(f, "UntagResource", "{\"resourceArn\": \"%s\", \"tagKeys\": [\"b\", \"zz\"]}", arn));
    out = ok(f, "ListTagsForResource", "{\"resourceArn\": \"%s\"}", arn);
    assert_int_equal(count(out, "tags"), 1);
    assert_string_equal(S(out, "tags.a"), "3");
    ibs_value_free(out);
    out = ok(f, "GetInfrastructureConfiguration", "{\"infrastructureConfigurationArn\": \"%s\"}",
             arn);
    assert_int_equal(count(out, "infrastructureConfiguration.tags"), 1);
    assert_string_equal(S(out, "infrastructureConfiguration.tags.a"), "3");
    ibs_value_free(out);

    assert_int_equal(fails(f, &err, "TagResource",
                           "{\"resourceArn\": \"" PREFIX "image-pipeline/ghost\", \"tags\":"
                           " {\"a\": \"1\"}}"),
                     IBS_ENOTFOUND);
    assert_string_equal(err.aws_code, "ResourceNotFoundException");
    ibs_provider_error_release(&err);
    /* The tagging operations document InvalidParameterException. */
    assert_int_equal(fails(f, &err, "TagResource",
                           "{\"resourceArn\": \"%s\", \"tags\": {\"aws:reserved\": \"1\"}}", arn),
                     IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidParameterException");
    ibs_provider_error_release(&err);

    /* Deleting a resource drops its tags. */
    ibs_value_free(ok(f, "DeleteInfrastructureConfiguration",
                      "{\"infrastructureConfigurationArn\": \"%s\"}", arn));
    /* (A new client token: the old one would replay the first create.) */
    free(create_simple(f, "CreateInfrastructureConfiguration", "infrastructureConfigurationArn",
                       "{\"name\": \"tagged\", \"instanceProfileName\": \"r\","
                       " \"clientToken\": \"again\"}"));
    out = ok(f, "ListTagsForResource", "{\"resourceArn\": \"%s\"}", arn);
    assert_int_equal(count(out, "tags"), 0);
    ibs_value_free(out);
    free(arn);
}

static void test_policies(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    char *comp = create_component(f, "shared", "1.0.0", "component-build.yaml");
    const char *policy = "{\\\"Version\\\": \\\"2012-10-17\\\", \\\"Statement\\\": []}";
    struct ibs_value *out;

    assert_int_equal(fails(f, &err, "GetComponentPolicy", "{\"componentArn\": \"%s\"}", comp),
                     IBS_ENOTFOUND);
    assert_string_equal(err.aws_code, "ResourceNotFoundException");
    assert_string_equal(err.message,
                        "The resource ARN '" PREFIX "component/shared/1.0.0/1' has no policy.");
    ibs_provider_error_release(&err);

    out =
        ok(f, "PutComponentPolicy", "{\"componentArn\": \"%s\", \"policy\": \"%s\"}", comp, policy);
    assert_string_equal(S(out, "componentArn"), comp);
    assert_uuid4(S(out, "requestId"));
    ibs_value_free(out);
    out = ok(f, "GetComponentPolicy", "{\"componentArn\": \"%s\"}", comp);
    assert_string_equal(S(out, "policy"), "{\"Version\": \"2012-10-17\", \"Statement\": []}");
    ibs_value_free(out);

    assert_int_equal(fails(f, &err, "PutComponentPolicy",
                           "{\"componentArn\": \"%s\", \"policy\": \"not json\"}", comp),
                     IBS_EINVALID);
    assert_string_equal(err.aws_code, "InvalidParameterValueException");
    assert_string_equal(err.message, "The value supplied for parameter 'policy' is not valid. The "
                                     "policy must be a JSON policy document with a Statement.");
    ibs_provider_error_release(&err);

    assert_int_equal(fails(f, &err, "PutImageRecipePolicy",
                           "{\"imageRecipeArn\": \"" PREFIX "image-recipe/none/1.0.0\","
                           " \"policy\": \"%s\"}",
                           policy),
                     IBS_ENOTFOUND);
    ibs_provider_error_release(&err);
    free(comp);
}

/* ---- images ---- */

static void test_images_from_pipeline(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    char *comp, *infra, *recipe, *pipe, *img1, *img2, *img3;
    struct ibs_value *out;
    struct ibs_buf b = IBS_BUF_INIT;

    /* Images take 10 minutes to build; the clock only moves when told. */
    ibs_provider_free(f->p);
    f->step = 0;
    open_emulator(f, 600000);
    comp = create_component(f, "base", "1.0.0", "component-build.yaml");
    infra = create_infra(f, "infra");
    recipe = create_recipe(f, "App-Recipe", comp);
    ibs_buf_printf(&b,
                   "{\"name\": \"pipe\", \"imageRecipeArn\": \"%s\","
                   " \"infrastructureConfigurationArn\": \"%s\", \"clientToken\": \"p\"}",
                   recipe, infra);
    pipe = create_simple(f, "CreateImagePipeline", "imagePipelineArn", b.ptr);
    ibs_buf_release(&b);

    ibs_buf_printf(&b, "{\"imagePipelineArn\": \"%s\", \"clientToken\": \"run-1\"}", pipe);
    img1 = create_simple(f, "StartImagePipelineExecution", "imageBuildVersionArn", b.ptr);
    /* Retrying with the same token starts nothing new. */
    img2 = create_simple(f, "StartImagePipelineExecution", "imageBuildVersionArn", b.ptr);
    assert_string_equal(img1, img2);
    free(img2);
    ibs_buf_clear(&b);
    ibs_buf_printf(&b, "{\"imagePipelineArn\": \"%s\", \"clientToken\": \"run-2\"}", pipe);
    img2 = create_simple(f, "StartImagePipelineExecution", "imageBuildVersionArn", b.ptr);
    ibs_buf_release(&b);
    assert_string_equal(img1, PREFIX "image/app-recipe/1.0.0/1");
    assert_string_equal(img2, PREFIX "image/app-recipe/1.0.0/2");

    out = ok(f, "GetImage", "{\"imageBuildVersionArn\": \"%s\"}", img1);
    assert_string_equal(S(out, "image.state.status"), "BUILDING");
    assert_null(at(out, "image.outputResources"));
    assert_string_equal(S(out, "image.name"), "App-Recipe");
    assert_string_equal(S(out, "image.type"), "AMI");
    assert_string_equal(S(out, "image.sourcePipelineArn"), pipe);
    assert_string_equal(S(out, "image.sourcePipelineName"), "pipe");
    assert_string_equal(S(out, "image.imageRecipe.arn"), recipe);
    assert_string_equal(S(out, "image.infrastructureConfiguration.arn"), infra);
    assert_string_equal(S(out, "image.imageTestsConfiguration.timeoutMinutes"), "720");
    assert_string_equal(S(out, "image.buildType"), "USER_INITIATED");
    ibs_value_free(out);

    f->now += 600000;
    out = ok(f, "GetImage", "{\"imageBuildVersionArn\": \"%s\"}", img1);
    assert_string_equal(S(out, "image.state.status"), "AVAILABLE");
    assert_string_equal(S(out, "image.outputResources.amis[0].region"), "us-east-1");
    assert_string_equal(S(out, "image.outputResources.amis[0].accountId"), ACCOUNT);
    assert_int_equal(strlen(S(out, "image.outputResources.amis[0].image")), 21);
    assert_memory_equal(S(out, "image.outputResources.amis[0].image"), "ami-", 4);
    ibs_value_free(out);

    out = ok(f, "ListImagePipelineImages", "{\"imagePipelineArn\": \"%s\"}", pipe);
    assert_int_equal(count(out, "imageSummaryList"), 2);
    assert_string_equal(S(out, "imageSummaryList[1].arn"), img2);
    assert_string_equal(S(out, "imageSummaryList[0].state.status"), "AVAILABLE");
    ibs_value_free(out);
    out = ok(f, "ListImages", "{}");
    assert_int_equal(count(out, "imageVersionList"), 1);
    assert_string_equal(S(out, "imageVersionList[0].arn"), PREFIX "image/app-recipe/1.0.0");
    ibs_value_free(out);
    out = ok(f, "ListImageBuildVersions",
             "{\"imageVersionArn\": \"" PREFIX "image/app-recipe/1.0.0\"}");
    assert_int_equal(count(out, "imageSummaryList"), 2);
    ibs_value_free(out);

    /* CreateImage: a third build, not from the pipeline. */
    ibs_buf_printf(&b,
                   "{\"imageRecipeArn\": \"%s\", \"infrastructureConfigurationArn\": \"%s\","
                   " \"tags\": {\"via\": \"create\"}, \"clientToken\": \"ci\"}",
                   recipe, infra);
    img3 = create_simple(f, "CreateImage", "imageBuildVersionArn", b.ptr);
    ibs_buf_release(&b);
    assert_string_equal(img3, PREFIX "image/app-recipe/1.0.0/3");
    out = ok(f, "GetImage", "{\"imageBuildVersionArn\": \"%s\"}", img3);
    assert_null(at(out, "image.sourcePipelineArn"));
    assert_string_equal(S(out, "image.tags.via"), "create");
    assert_string_equal(S(out, "image.state.status"), "BUILDING");
    ibs_value_free(out);

    /* An image used as a parent image cannot be deleted; others can. */
    ibs_buf_printf(&b,
                   "{\"name\": \"child\", \"semanticVersion\": \"1.0.0\", \"parentImage\":"
                   " \"%s\", \"components\": [{\"componentArn\": \"%s\"}],"
                   " \"clientToken\": \"child\"}",
                   img1, comp);
    free(create_simple(f, "CreateImageRecipe", "imageRecipeArn", b.ptr));
    ibs_buf_release(&b);
    assert_int_equal(fails(f, &err, "DeleteImage", "{\"imageBuildVersionArn\": \"%s\"}", img1),
                     IBS_EDEPENDENCY);
    ibs_provider_error_release(&err);
    ibs_value_free(ok(f, "DeleteImage", "{\"imageBuildVersionArn\": \"%s\"}", img2));
    out = ok(f, "ListImagePipelineImages", "{\"imagePipelineArn\": \"%s\"}", pipe);
    assert_int_equal(count(out, "imageSummaryList"), 1);
    assert_string_equal(S(out, "imageSummaryList[0].arn"), img1);
    ibs_value_free(out);
    free(img3);

    free(comp);
    free(infra);
    free(recipe);
    free(pipe);
    free(img1);
    free(img2);
}

static void test_serve_reports_request_id(void **state)
{
    struct fixture *f = *state;
    char *arn = create_infra(f, "traced");
    char rid[IBS_EMULATOR_REQUEST_ID_SIZE] = "stale";
    struct ibs_value *in = json("{\"resourceArn\": \"%s\", \"tags\": {\"a\": \"b\"}}", arn);
    struct ibs_value *out = NULL;
    struct ibs_provider_error err;

    /* TagResource's output has no requestId member; the transport still
     * gets one for x-amzn-requestid. */
    assert_int_equal(ibs_emulator_serve(f->emu, &out, rid, NULL, "TagResource", in), 0);
    assert_uuid4(rid);
    assert_int_equal(out->count, 0);
    ibs_value_free(out);
    ibs_value_free(in);

    in = json("{\"resourceArn\": \"" PREFIX "image/none/1.0.0/1\"}");
    ibs_provider_error_init(&err);
    assert_int_equal(ibs_emulator_serve(f->emu, &out, rid, &err, "ListTagsForResource", in),
                     IBS_ENOTFOUND);
    assert_string_equal(rid, err.request_id);
    ibs_provider_error_release(&err);
    ibs_value_free(in);
    free(arn);
}

/* ---- persistence and concurrency ---- */

static void test_acknowledged_write_survives_kill9(void **state)
{
    struct fixture *f = *state;
    struct ibs_value *out;
    int status = 0;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child opens its own connection (never the parent's), creates,
         * and dies without closing anything. */
        struct fixture child = *f;
        struct ibs_value *in = json("{\"name\": \"survivor\", \"instanceProfileName\":"
                                    " \"r\", \"clientToken\": \"k9\"}");
        struct ibs_value *resp = NULL;
        struct ibs_emulator_options opts = {0};
        opts.data_dir = child.dir;
        if (ibs_emulator_open(&child.emu, &opts) != 0 ||
            ibs_emulator_call(child.emu, &resp, NULL, "CreateInfrastructureConfiguration", in))
            _exit(1);
        kill(getpid(), SIGKILL);
        _exit(2);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    ibs_provider_free(f->p);
    open_emulator(f, 0);
    out = ok(f, "GetInfrastructureConfiguration",
             "{\"infrastructureConfigurationArn\": \"" PREFIX
             "infrastructure-configuration/survivor\"}");
    assert_string_equal(S(out, "infrastructureConfiguration.name"), "survivor");
    ibs_value_free(out);
}

static void test_persistence_across_reopen(void **state)
{
    struct fixture *f = *state;
    struct ibs_provider_error err;
    struct ibs_emulator_options opts = {0};
    struct ibs_emulator *emu = NULL;
    char *arn = create_infra(f, "kept"), *token;
    struct ibs_value *out;

    free(create_infra(f, "kept-2"));
    out = ok(f, "ListInfrastructureConfigurations", "{\"maxResults\": 1}");
    token = strdup(S(out, "nextToken"));
    ibs_value_free(out);

    ibs_provider_free(f->p);
    open_emulator(f, 0);
    out = ok(f, "GetInfrastructureConfiguration", "{\"infrastructureConfigurationArn\": \"%s\"}",
             arn);
    assert_string_equal(S(out, "infrastructureConfiguration.name"), "kept");
    assert_string_equal(S(out, "infrastructureConfiguration.dateCreated"),
                        "2023-11-14T22:13:20.000Z");
    ibs_value_free(out);
    /* The token secret survives too. */
    out = ok(f, "ListInfrastructureConfigurations", "{\"maxResults\": 1, \"nextToken\": \"%s\"}",
             token);
    assert_string_equal(S(out, "infrastructureConfigurationSummaryList[0].name"), "kept-2");
    ibs_value_free(out);
    /* Client tokens too. */
    assert_int_equal(fails(f, &err, "CreateInfrastructureConfiguration",
                           "{\"name\": \"changed\", \"instanceProfileName\": \"ib-role\","
                           " \"clientToken\": \"i-kept\"}"),
                     IBS_ECONFLICT);
    ibs_provider_error_release(&err);

    /* The stored identity wins; a conflicting one is refused. */
    opts.data_dir = f->dir;
    opts.account = "210987654321";
    assert_int_equal(ibs_emulator_open(&emu, &opts), IBS_EINVALID);
    assert_null(emu);
    assert_non_null(strstr(ibs_error_last()->message,
                           "the data directory holds account 123456789012, not 210987654321"));
    assert_string_equal(ibs_emulator_region(f->emu), "us-east-1");
    assert_string_equal(ibs_emulator_account(f->emu), ACCOUNT);
    assert_string_equal(f->p->account, ACCOUNT);
    free(arn);
    free(token);
}

static void test_open_options_and_schema_version(void **state)
{
    struct fixture *f = *state;
    struct ibs_emulator_options opts = {0};
    struct ibs_emulator *emu = NULL;
    char nested[128], path[256];
    unsigned char version[4] = {0, 0, 0, 99};
    FILE *fp;

    /* Missing parents are created; region and account default. */
    snprintf(nested, sizeof(nested), "%s/a/b", f->dir);
    opts.data_dir = nested;
    opts.region = "eu-west-1";
    assert_int_equal(ibs_emulator_open(&emu, &opts), 0);
    assert_string_equal(ibs_emulator_region(emu), "eu-west-1");
    assert_string_equal(ibs_emulator_account(emu), ACCOUNT);
    ibs_emulator_free(emu);
    emu = NULL;

    /* A database written by a newer emulator (PRAGMA user_version, bytes
     * 60..63 of the header) is refused. */
    snprintf(path, sizeof(path), "%s/imagebuilder.db", nested);
    fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 60, SEEK_SET), 0);
    assert_int_equal(fwrite(version, 1, 4, fp), 4);
    fclose(fp);
    opts.region = NULL;
    assert_int_equal(ibs_emulator_open(&emu, &opts), IBS_EINVALID);
    assert_null(emu);
    snprintf(path, sizeof(path),
             "%s/imagebuilder.db: database schema version 99 is newer than this emulator (1)",
             nested);
    assert_string_equal(ibs_error_last()->message, path);

    opts.data_dir = NULL;
    assert_int_equal(ibs_emulator_open(&emu, &opts), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, "emulator: no data directory given");
    remove_dir(nested);
    snprintf(path, sizeof(path), "%s/a", f->dir);
    rmdir(path);
}

struct worker {
    struct fixture *f;
    int id;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char body[256];
    struct ibs_value *in, *out;

    for (int i = 0; i < 100; i++) {
        snprintf(body, sizeof(body),
                 "{\"name\": \"w%d-%03d\", \"instanceProfileName\": \"r\","
                 " \"clientToken\": \"w%d-%d\"}",
                 w->id, i, w->id, i);
        in = json("%s", body);
        if (ibs_provider_call(&out, NULL, w->f->p, "CreateInfrastructureConfiguration", in))
            w->failures++;
        ibs_value_free(in);
        /* Half the calls read: a Get of what was just created or a List page. */
        snprintf(body, sizeof(body), "{\"infrastructureConfigurationArn\": \"%s\"}",
                 out ? ibs_value_map_get_str(out, "infrastructureConfigurationArn") : "x");
        ibs_value_free(out);
        in = json("%s", i % 2 ? body : "{\"maxResults\": 5}");
        if (ibs_provider_call(
                &out, NULL, w->f->p,
                i % 2 ? "GetInfrastructureConfiguration" : "ListInfrastructureConfigurations", in))
            w->failures++;
        ibs_value_free(in);
        ibs_value_free(out);
    }
    return NULL;
}

static void test_concurrent_calls(void **state)
{
    struct fixture *f = *state;
    pthread_t threads[8];
    struct worker workers[8];
    struct ibs_value *all = NULL;
    char name[32];

    for (int i = 0; i < 8; i++) {
        workers[i].f = f;
        workers[i].id = i;
        workers[i].failures = 0;
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(workers[i].failures, 0);
    }
    assert_int_equal(
        ibs_provider_list_all(&all, NULL, f->p, "ListInfrastructureConfigurations", NULL), 0);
    assert_int_equal(all->count, 800);
    /* Every name exactly once. */
    for (int t = 0; t < 8; t++)
        for (int i = 0; i < 100; i++) {
            int seen = 0;
            snprintf(name, sizeof(name), "w%d-%03d", t, i);
            for (size_t k = 0; k < all->count; k++)
                seen += strcmp(S(all->u.items[k], "name"), name) == 0;
            assert_int_equal(seen, 1);
        }
    ibs_value_free(all);
}

/* ---- provider helpers ---- */

static int fake_calls;

static int fake_call(void *self, struct ibs_value **out, struct ibs_provider_error *err,
                     const char *operation, const struct ibs_value *input)
{
    (void)self;
    (void)err;
    (void)operation;
    (void)input;
    fake_calls++;
    /* Always answers the same token: list_all must stop. */
    static const char page[] =
        "{\"componentVersionList\": [{\"name\": \"x\"}], \"nextToken\": \"t\"}";
    return ibs_json_parse(out, page, sizeof(page) - 1);
}

static void test_provider_helpers(void **state)
{
    static const struct ibs_provider_ops old_ops = {0, "old", fake_call, NULL};
    static const struct ibs_provider_ops loop_ops = {IBS_PROVIDER_VERSION, "loop", fake_call, NULL};
    struct ibs_provider p = {&old_ops, NULL, "us-east-1", NULL};
    struct ibs_provider_error err;
    struct ibs_value *out = (struct ibs_value *)&p;
    size_t pages = 99;
    (void)state;

    assert_int_equal(ibs_provider_call(&out, NULL, &p, "ListComponents", NULL), IBS_EUNSUPPORTED);
    assert_null(out);
    assert_string_equal(ibs_error_last()->message,
                        "provider old: table version 0, this build expects 1");

    p.ops = &loop_ops;
    fake_calls = 0;
    assert_int_equal(ibs_provider_list_all(&out, &pages, &p, "ListComponents", NULL), IBS_ESERVICE);
    assert_null(out);
    assert_int_equal(fake_calls, 2);
    assert_int_equal(pages, 0);
    assert_string_equal(ibs_error_last()->message,
                        "ListComponents returned the same pagination token twice");

    assert_int_equal(ibs_provider_list_all(&out, NULL, &p, "GetComponent", NULL), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, "provider: GetComponent does not paginate");

    ibs_provider_error_init(&err);
    err.aws_code = strdup("X");
    err.message = strdup("y");
    ibs_provider_error_release(&err);
    assert_null(err.aws_code);
    assert_null(err.message);
    ibs_provider_error_release(NULL);
    ibs_provider_free(NULL);
    ibs_emulator_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_component_create_get_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_component_type_and_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_by_name_filters_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workflow_arn_and_builds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_infrastructure_defaults_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_distribution_and_recipes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_defaults_update_dependencies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination_stable_with_creations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination_forged_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_grouping_interleaved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_scans_use_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dependents_by_name_prefix, setup, teardown),
        cmocka_unit_test(test_hashes_macs_random),
        cmocka_unit_test_setup_teardown(test_tags_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_from_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serve_reports_request_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acknowledged_write_survives_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_options_and_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_calls, setup, teardown),
        cmocka_unit_test(test_provider_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
