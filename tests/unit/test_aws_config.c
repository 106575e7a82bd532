/* Unit tests of providers/aws/config_file: the INI parser (edge cases and
 * malformed lines with file:line messages), profile lookups over the pair of
 * shared files, and the resolution of region, endpoint and the other client
 * settings. Fixtures in tests/data/credentials.
 * ibs-test-libs: ibs_providers ibs_api ibs_util */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "providers/aws/config_file.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA IBS_TEST_DATA "/credentials"

/* ---- an injected environment ----------------------------------------- */

struct env {
    const char *vars[32][2];
};

static const char *env_get(void *ctx, const char *name)
{
    const struct env *e = ctx;
    for (size_t i = 0; i < 32 && e->vars[i][0]; i++)
        if (strcmp(e->vars[i][0], name) == 0)
            return e->vars[i][1];
    return NULL;
}

static void env_set(struct env *e, const char *name, const char *value)
{
    for (size_t i = 0; i < 32; i++) {
        if (!e->vars[i][0] || strcmp(e->vars[i][0], name) == 0) {
            e->vars[i][0] = name;
            e->vars[i][1] = value;
            return;
        }
    }
    fail_msg("too many variables");
}

/* Options reading the fixture pair, with an empty environment. */
static struct ibs_aws_config_options fixture_opts(struct env *e)
{
    struct ibs_aws_config_options o;
    memset(&o, 0, sizeof(o));
    memset(e, 0, sizeof(*e));
    o.getenv = env_get;
    o.env_ctx = e;
    o.home = "/home/tester";
    o.config_file = DATA "/config";
    o.credentials_file = DATA "/credentials";
    return o;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    assert_non_null(f);
    buf = malloc(65536);
    assert_non_null(buf);
    *len = fread(buf, 1, 65535, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static const struct ibs_aws_config_section *section(const struct ibs_aws_config_file *f, size_t i)
{
    assert_true(i < f->sections.count);
    return f->sections.items[i];
}

static const struct ibs_aws_config_prop *prop(const struct ibs_aws_config_section *s, size_t i)
{
    assert_true(i < s->props.count);
    return s->props.items[i];
}

/* ---- parser ---------------------------------------------------------- */

static void test_parse_edge_cases(void **state)
{
    struct ibs_aws_config_file *f = NULL;
    const struct ibs_aws_config_section *s;
    const struct ibs_aws_config_prop *p;
    size_t len;
    char *text = slurp(DATA "/edge.ini", &len);
    (void)state;

    assert_int_equal(ibs_aws_config_file_parse(&f, "edge.ini", text, len), 0);
    assert_int_equal(f->sections.count, 3);

    s = section(f, 0);
    assert_null(s->type);
    assert_string_equal(s->name, "default");
    assert_int_equal(s->line, 4);
    assert_int_equal(s->props.count, 3);
    assert_string_equal(prop(s, 0)->key, "region");
    assert_string_equal(prop(s, 0)->value, "eu-west-1");
    /* keys are case-insensitive, stored lower-case */
    assert_string_equal(prop(s, 1)->key, "aws_access_key_id");
    assert_string_equal(prop(s, 1)->value, "AKIDTESTDEFAULT");
    /* tabs around '='; ';' without whitespace before it is not a comment;
     * the CRLF's '\r' is gone */
    assert_string_equal(prop(s, 2)->value, "SECRETDEFAULT;not-a-comment");
    assert_int_equal(prop(s, 2)->line, 7);

    s = section(f, 1);
    assert_string_equal(s->type, "profile");
    assert_string_equal(s->name, "spaced");
    assert_int_equal(s->props.count, 4);
    assert_string_equal(prop(s, 0)->value, "json");
    p = prop(s, 1);
    assert_string_equal(p->key, "note");
    assert_string_equal(p->value, "first line\nsecond line\nthird line");
    p = prop(s, 2);
    assert_string_equal(p->key, "s3");
    assert_string_equal(p->value, "");
    assert_int_equal(p->sub.count, 2);
    assert_string_equal(((struct ibs_aws_config_prop *)p->sub.items[0])->key,
                        "max_concurrent_requests");
    assert_string_equal(((struct ibs_aws_config_prop *)p->sub.items[0])->value, "20");
    assert_string_equal(((struct ibs_aws_config_prop *)p->sub.items[1])->value, "path");
    /* the sub-section ends at the next unindented line */
    assert_string_equal(prop(s, 3)->key, "region");
    assert_string_equal(prop(s, 3)->value, "us-west-2");

    s = section(f, 2);
    assert_string_equal(s->name, "spaced");
    assert_string_equal(prop(s, 1)->key, "empty");
    assert_string_equal(prop(s, 1)->value, "");

    ibs_aws_config_file_free(f);
    free(text);
}

struct bad_case {
    const char *text;
    const char *message;
    size_t len; /* 0: strlen(text) */
};

static void test_parse_malformed_lines(void **state)
{
    static const struct bad_case cases[] = {
        {"[default]\nregion = x\njust some words\n", "~/.aws/config:3: expected 'key = value'", 0},
        {"[default]\n = value\n", "~/.aws/config:2: expected 'key = value'", 0},
        {"# c\n\n[profile dev\nregion = x\n",
         "~/.aws/config:3: expected ']' at the end of the section header", 0},
        {"[]\n", "~/.aws/config:1: empty section name", 0},
        {"[  ]\n", "~/.aws/config:1: empty section name", 0},
        {"[default] region = x\n", "~/.aws/config:1: unexpected text after ']'", 0},
        {"region = us-east-1\n[default]\n",
         "~/.aws/config:1: expected a [section] header before 'key = value'", 0},
        {"[default]\nregion = a\0b\n", "~/.aws/config:2: unexpected NUL byte", 23},
        {"[default]\nkey = v\n  indented without equals\n  = x\n", NULL, 0},
        {"[default]\ns3 =\n  no equals here\n", "~/.aws/config:3: expected 'key = value'", 0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ibs_aws_config_file *f = (void *)1;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        int rc = ibs_aws_config_file_parse(&f, "~/.aws/config", cases[i].text, len);
        if (!cases[i].message) {
            /* indented lines after a non-empty value are continuations */
            assert_int_equal(rc, 0);
            assert_string_equal(prop(section(f, 0), 0)->value, "v\nindented without equals\n= x");
            ibs_aws_config_file_free(f);
            continue;
        }
        assert_int_equal(rc, IBS_EINVALID);
        assert_null(f);
        assert_string_equal(ibs_error_last()->message, cases[i].message);
    }
}

static void test_parse_empty_and_bom(void **state)
{
    struct ibs_aws_config_file *f = NULL;
    (void)state;
    assert_int_equal(ibs_aws_config_file_parse(&f, "x", "", 0), 0);
    assert_int_equal(f->sections.count, 0);
    ibs_aws_config_file_free(f);
    assert_int_equal(ibs_aws_config_file_parse(&f, "x", "\xEF\xBB\xBF[a]\r\nk=v\r\n", 13), 0);
    assert_string_equal(section(f, 0)->name, "a");
    assert_string_equal(prop(section(f, 0), 0)->value, "v");
    ibs_aws_config_file_free(f);
    ibs_aws_config_file_free(NULL);
}

static void test_load_missing_and_directory(void **state)
{
    struct ibs_aws_config_file *f = (void *)1;
    (void)state;
    assert_int_equal(ibs_aws_config_file_load(&f, DATA "/nope", "~/.aws/nope"), IBS_ENOTFOUND);
    assert_null(f);
    assert_string_equal(ibs_error_last()->message, "~/.aws/nope: no such file");
    assert_int_equal(ibs_aws_config_file_load(&f, DATA, "the dir"), IBS_EIO);
    assert_string_equal(ibs_error_last()->message, "the dir: is a directory");
}

/* ---- profiles over both files ----------------------------------------- */

static void test_profile_precedence(void **state)
{
    struct env e;
    struct ibs_aws_config_options o = fixture_opts(&e);
    struct ibs_aws_shared_config cfg;
    struct ibs_aws_config_ref ref;
    (void)state;

    o.profile = "dev";
    assert_int_equal(ibs_aws_config_load(&cfg, &o), 0);
    assert_string_equal(cfg.profile, "dev");
    assert_string_equal(cfg.profile_source, "--profile");
    /* the credentials file wins for the same key ... */
    assert_true(ibs_aws_config_find(&ref, &cfg, "dev", "aws_access_key_id"));
    assert_string_equal(ref.value, "AKIDTESTDEVCREDS");
    assert_string_equal(ref.file, DATA "/credentials");
    assert_int_equal(ref.line, 2);
    /* ... and the config file supplies the rest */
    assert_string_equal(ibs_aws_config_get(&cfg, "dev", "region"), "eu-west-2");
    /* [profile default] beats [default] */
    assert_string_equal(ibs_aws_config_get(&cfg, "default", "region"), "eu-central-1");
    assert_null(ibs_aws_config_get(&cfg, "default", "output"));
    /* [staging] in the config file is not a profile */
    assert_false(ibs_aws_config_has_profile(&cfg, "staging"));
    assert_true(ibs_aws_config_has_profile(&cfg, "prod"));
    assert_string_equal(ibs_aws_config_get(&cfg, "prod", "aws_session_token"), "TOKENPROD");
    /* services block (a sub-section) */
    assert_true(ibs_aws_config_find_service(&ref, &cfg, "dev", "sts", "endpoint_url"));
    assert_string_equal(ref.value, "http://127.0.0.1:4567");
    assert_int_equal(ref.line, 24);
    assert_false(ibs_aws_config_find_service(&ref, &cfg, "dev", "s3", "endpoint_url"));
    ibs_aws_config_release(&cfg);
}

static void test_profile_selection(void **state)
{
    struct env e;
    struct ibs_aws_config_options o = fixture_opts(&e);
    struct ibs_aws_shared_config cfg;
    (void)state;

    assert_int_equal(ibs_aws_config_load(&cfg, &o), 0);
    assert_string_equal(cfg.profile, "default");
    assert_string_equal(cfg.profile_source, "default");
    ibs_aws_config_release(&cfg);

    env_set(&e, "AWS_DEFAULT_PROFILE", "dev");
    assert_int_equal(ibs_aws_config_load(&cfg, &o), 0);
    assert_string_equal(cfg.profile, "dev");
    assert_string_equal(cfg.profile_source, "AWS_DEFAULT_PROFILE");
    ibs_aws_config_release(&cfg);

    env_set(&e, "AWS_PROFILE", "prod");
    assert_int_equal(ibs_aws_config_load(&cfg, &o), 0);
    assert_string_equal(cfg.profile, "prod");
    assert_string_equal(cfg.profile_source, "AWS_PROFILE");
    ibs_aws_config_release(&cfg);

    o.profile = "dev";
    assert_int_equal(ibs_aws_config_load(&cfg, &o), 0);
    assert_string_equal(cfg.profile, "dev");
    ibs_aws_config_release(&cfg);
}

static void test_profile_not_found(void **state)
{
    struct env e;
    struct ibs_aws_config_options o = fixture_opts(&e);
    struct ibs_aws_shared_config cfg;
    (void)state;

    o.profile = "staging";
    assert_int_equal(ibs_aws_config_load(&cfg, &o), IBS_ENOTFOUND);
    assert_string_equal(ibs_error_last()->message,
                        "profile \"staging\" (from --profile) not found in " DATA "/config or " DATA
                        "/credentials (" DATA "/config:27 has [staging], but the config file "
                        "names profiles [profile staging])");
    ibs_aws_config_release(&cfg);

    /* default paths under home, neither file present */
    o.config_file = NULL;
    o.credentials_file = NULL;
    o.home = DATA "/no-home/";
    o.profile = NULL;
    env_set(&e, "AWS_PROFILE", "ghost");
    assert_int_equal(ibs_aws_config_load(&cfg, &o), IBS_ENOTFOUND);
    assert_string_equal(ibs_error_last()->message,
                        "profile \"ghost\" (from AWS_PROFILE) not found: no ~/.aws/config or "
                        "~/.aws/credentials");
    ibs_aws_config_release(&cfg);

    /* the default profile may be missing: not an error */
    env_set(&e, "AWS_PROFILE", "");
    assert_int_equal(ibs_aws_config_load(&cfg, &o), 0);
    assert_null(cfg.config);
    assert_null(cfg.credentials);
    assert_string_equal(cfg.config_path, DATA "/no-home/.aws/config");
    assert_string_equal(cfg.config_name, "~/.aws/config");
    ibs_aws_config_release(&cfg);
}

static void test_paths_from_environment(void **state)
{
    struct env e;
    struct ibs_aws_config_options o;
    struct ibs_aws_shared_config cfg;
    (void)state;

    memset(&o, 0, sizeof(o));
    memset(&e, 0, sizeof(e));
    o.getenv = env_get;
    o.env_ctx = &e;
    env_set(&e, "HOME", DATA);
    env_set(&e, "AWS_CONFIG_FILE", "~/config");
    env_set(&e, "AWS_SHARED_CREDENTIALS_FILE", DATA "/credentials");
    assert_int_equal(ibs_aws_config_load(&cfg, &o), 0);
    assert_string_equal(cfg.config_path, DATA "/config");
    assert_string_equal(cfg.config_name, "~/config");
    assert_string_equal(cfg.credentials_name, "~/credentials");
    assert_non_null(cfg.config);
    assert_non_null(cfg.credentials);
    ibs_aws_config_release(&cfg);

    /* a malformed file fails the load with its display name and line */
    env_set(&e, "AWS_CONFIG_FILE", "~/README.md");
    assert_int_equal(ibs_aws_config_load(&cfg, &o), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, "~/README.md:3: expected 'key = value'");
    ibs_aws_config_release(&cfg);
}

/* ---- settings ------------------------------------------------------- */

static void test_region_precedence(void **state)
{
    struct env e;
    struct ibs_aws_config_options o = fixture_opts(&e);
    struct ibs_aws_settings s;
    (void)state;

    o.profile = "dev";
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_string_equal(s.region, "eu-west-2");
    assert_string_equal(s.region_source, "profile");
    ibs_aws_config_settings_release(&s);

    env_set(&e, "AWS_DEFAULT_REGION", "ap-northeast-1");
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_string_equal(s.region, "ap-northeast-1");
    assert_string_equal(s.region_source, "AWS_DEFAULT_REGION");
    ibs_aws_config_settings_release(&s);

    env_set(&e, "AWS_REGION", "sa-east-1");
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_string_equal(s.region, "sa-east-1");
    assert_string_equal(s.region_source, "AWS_REGION");
    ibs_aws_config_settings_release(&s);

    o.region = "ca-central-1";
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_string_equal(s.region, "ca-central-1");
    assert_string_equal(s.region_source, "--region");
    ibs_aws_config_settings_release(&s);

    o.region = "us-east-1/evil";
    assert_int_equal(ibs_aws_config_resolve(&s, &o), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "--region: expected a region name such as us-east-1, got "
                        "\"us-east-1/evil\"");
    ibs_aws_config_settings_release(&s);

    /* no region anywhere */
    o = fixture_opts(&e);
    o.profile = "prod";
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_null(s.region);
    assert_null(s.region_source);
    ibs_aws_config_settings_release(&s);
}

static void test_settings_from_profile_and_env(void **state)
{
    struct env e;
    struct ibs_aws_config_options o = fixture_opts(&e);
    struct ibs_aws_settings s;
    (void)state;

    o.profile = "dev";
    o.service = "imagebuilder";
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_string_equal(s.profile, "dev");
    assert_string_equal(s.endpoint_url, "http://127.0.0.1:4566");
    assert_int_equal(s.max_attempts, 7);
    assert_string_equal(s.retry_mode, "adaptive");
    assert_string_equal(s.ca_bundle, "/home/tester/certs/ca.pem");
    assert_false(s.use_fips_endpoint);
    assert_false(s.use_dualstack_endpoint);
    ibs_aws_config_settings_release(&s);

    /* a service without a services entry falls back to endpoint_url */
    o.service = "ec2";
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_string_equal(s.endpoint_url, "https://global.example.test");
    ibs_aws_config_settings_release(&s);

    /* environment beats the profile, service-specific beats global */
    env_set(&e, "AWS_ENDPOINT_URL", "http://env-global.test");
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_string_equal(s.endpoint_url, "http://env-global.test");
    ibs_aws_config_settings_release(&s);
    o.service = "imagebuilder";
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_string_equal(s.endpoint_url, "http://127.0.0.1:4566");
    ibs_aws_config_settings_release(&s);
    env_set(&e, "AWS_ENDPOINT_URL_IMAGEBUILDER", "http://env-ib.test");
    env_set(&e, "AWS_MAX_ATTEMPTS", "3");
    env_set(&e, "AWS_RETRY_MODE", "Standard");
    env_set(&e, "AWS_CA_BUNDLE", "/etc/ca.pem");
    env_set(&e, "AWS_USE_DUALSTACK_ENDPOINT", "TRUE");
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_string_equal(s.endpoint_url, "http://env-ib.test");
    assert_int_equal(s.max_attempts, 3);
    assert_string_equal(s.retry_mode, "standard");
    assert_string_equal(s.ca_bundle, "/etc/ca.pem");
    assert_true(s.use_dualstack_endpoint);
    ibs_aws_config_settings_release(&s);

    env_set(&e, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true");
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_null(s.endpoint_url);
    ibs_aws_config_settings_release(&s);

    /* [profile default] sets use_fips_endpoint */
    o = fixture_opts(&e);
    assert_int_equal(ibs_aws_config_resolve(&s, &o), 0);
    assert_true(s.use_fips_endpoint);
    assert_string_equal(s.region, "eu-central-1");
    ibs_aws_config_settings_release(&s);
}

static void test_settings_invalid_values(void **state)
{
    struct env e;
    struct ibs_aws_config_options o = fixture_opts(&e);
    struct ibs_aws_settings s;
    (void)state;

    o.profile = "bad";
    assert_int_equal(ibs_aws_config_resolve(&s, &o), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        DATA "/config:31: profile \"bad\": use_dualstack_endpoint: expected true "
                             "or false, got \"maybe\"");
    ibs_aws_config_settings_release(&s);

    env_set(&e, "AWS_USE_DUALSTACK_ENDPOINT", "false");
    assert_int_equal(ibs_aws_config_resolve(&s, &o), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, DATA
                        "/config:32: profile \"bad\": max_attempts: expected an integer from 1 "
                        "to 100, got \"zero\"");
    ibs_aws_config_settings_release(&s);

    env_set(&e, "AWS_MAX_ATTEMPTS", "0");
    assert_int_equal(ibs_aws_config_resolve(&s, &o), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "AWS_MAX_ATTEMPTS: expected an integer from 1 to 100, got \"0\"");
    ibs_aws_config_settings_release(&s);

    env_set(&e, "AWS_MAX_ATTEMPTS", "5");
    env_set(&e, "AWS_RETRY_MODE", "fast");
    assert_int_equal(ibs_aws_config_resolve(&s, &o), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "AWS_RETRY_MODE: expected standard, adaptive or legacy, got \"fast\"");
    ibs_aws_config_settings_release(&s);
}

static void test_expand_path(void **state)
{
    char *p;
    (void)state;
    p = ibs_aws_config_expand_path("~/x/y", "/h");
    assert_string_equal(p, "/h/x/y");
    free(p);
    p = ibs_aws_config_expand_path("~", "/h");
    assert_string_equal(p, "/h");
    free(p);
    p = ibs_aws_config_expand_path("~other/x", "/h");
    assert_string_equal(p, "~other/x");
    free(p);
    p = ibs_aws_config_expand_path("~/x", NULL);
    assert_string_equal(p, "~/x");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_edge_cases),
        cmocka_unit_test(test_parse_malformed_lines),
        cmocka_unit_test(test_parse_empty_and_bom),
        cmocka_unit_test(test_load_missing_and_directory),
        cmocka_unit_test(test_profile_precedence),
        cmocka_unit_test(test_profile_selection),
        cmocka_unit_test(test_profile_not_found),
        cmocka_unit_test(test_paths_from_environment),
        cmocka_unit_test(test_region_precedence),
        cmocka_unit_test(test_settings_from_profile_and_env),
        cmocka_unit_test(test_settings_invalid_values),
        cmocka_unit_test(test_expand_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
