/* Unit tests of util/json.c: number typing, strings, locations, every error
 * message, the writer's formats and escaping, and round trips.
 * ibs-test-libs: ibs_util */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ibs_value *parse_ok(const char *text)
{
    struct ibs_value *v = NULL;
    int rc = ibs_json_parse(&v, text, strlen(text));
    if (rc != 0)
        fail_msg("parse of <%s> failed: %s", text, ibs_error_last()->message);
    assert_non_null(v);
    return v;
}

static void expect_error(const char *text, size_t len, const char *msg)
{
    struct ibs_value *v = (struct ibs_value *)1;
    assert_int_equal(ibs_json_parse(&v, text, len), IBS_EINVALID);
    assert_null(v);
    assert_int_equal(ibs_error_last()->code, IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, msg);
}

static void expect_error_s(const char *text, const char *msg)
{
    expect_error(text, strlen(text), msg);
}

static char *write_json(const struct ibs_value *v, unsigned flags)
{
    struct ibs_buf b = IBS_BUF_INIT;
    assert_int_equal(ibs_json_write(&b, v, flags), 0);
    return ibs_buf_detach(&b);
}

static void test_numbers(void **state)
{
    struct ibs_value *v = parse_ok("[0, -0, 42, -17, 9223372036854775807, -9223372036854775808, "
                                   "9223372036854775808, 123456789012345678901234567890, 1.5, "
                                   "1e3, 2E-2, 0.1, -1.25e+2]");
    const struct ibs_value *const *it = (const struct ibs_value *const *)v->u.items;
    (void)state;

    assert_int_equal(v->count, 13);
    assert_int_equal(it[0]->type, IBS_VALUE_INT);
    assert_true(it[0]->num.i == 0);
    assert_int_equal(it[1]->type, IBS_VALUE_INT);
    assert_string_equal(it[1]->str, "-0");
    assert_true(it[2]->num.i == 42);
    assert_true(it[3]->num.i == -17);
    assert_int_equal(it[4]->type, IBS_VALUE_INT);
    assert_true(it[4]->num.i == INT64_MAX);
    assert_int_equal(it[5]->type, IBS_VALUE_INT);
    assert_true(it[5]->num.i == INT64_MIN);
    /* Beyond int64: a float, with the exact text kept. */
    assert_int_equal(it[6]->type, IBS_VALUE_FLOAT);
    assert_true(it[6]->num.d == 9223372036854775808.0);
    assert_string_equal(it[7]->str, "123456789012345678901234567890");
    assert_int_equal(it[7]->type, IBS_VALUE_FLOAT);
    for (size_t i = 8; i < 13; i++)
        assert_int_equal(it[i]->type, IBS_VALUE_FLOAT);
    assert_true(it[8]->num.d == 1.5);
    assert_true(it[9]->num.d == 1000.0);
    assert_string_equal(it[9]->str, "1e3");
    assert_true(it[10]->num.d == 0.02);
    assert_true(it[11]->num.d == 0.1);
    assert_true(it[12]->num.d == -125.0);
    ibs_value_free(v);
}

static void test_strings_literals_and_locations(void **state)
{
    struct ibs_value *v = parse_ok("{\n"
                                   "  \"s\": \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\",\n"
                                   "  \"u\": \"\\u00e9\\u20AC\\ud83d\\ude00 é\",\n"
                                   "  \"t\": true, \"f\": false, \"n\": null,\n"
                                   "  \"é\": [1, {\"x\": []}]\n"
                                   "}\n");
    const struct ibs_value *s, *list;
    const struct ibs_member *m;
    (void)state;

    assert_int_equal(v->type, IBS_VALUE_MAP);
    assert_int_equal(v->count, 6);
    assert_int_equal(v->loc.line, 1);
    assert_int_equal(v->loc.col, 1);
    assert_null(v->loc.file);
    s = ibs_value_map_get(v, "s");
    assert_string_equal(s->str, "a\"b\\c/d\b\f\n\r\t");
    assert_true(s->quoted);
    assert_int_equal(s->loc.line, 2);
    assert_int_equal(s->loc.col, 8);
    assert_string_equal(ibs_value_map_get_str(v, "u"), "é€😀 é");
    assert_int_equal(ibs_value_map_get(v, "t")->type, IBS_VALUE_BOOL);
    assert_true(ibs_value_map_get(v, "t")->num.b);
    assert_string_equal(ibs_value_map_get(v, "t")->str, "true");
    assert_false(ibs_value_map_get(v, "f")->num.b);
    assert_int_equal(ibs_value_map_get(v, "n")->type, IBS_VALUE_NULL);
    assert_int_equal(ibs_value_map_get(v, "n")->loc.line, 4);
    assert_int_equal(ibs_value_map_get(v, "n")->loc.col, 31);
    /* Columns count characters: "é" is one. */
    m = ibs_value_map_member(v, "é");
    assert_int_equal(m->key_loc.line, 5);
    assert_int_equal(m->key_loc.col, 3);
    list = m->value;
    assert_int_equal(list->loc.col, 8);
    assert_int_equal(list->u.items[1]->loc.col, 12);
    assert_int_equal(ibs_value_map_member(list->u.items[1], "x")->key_loc.col, 13);
    ibs_value_free(v);

    v = parse_ok("  \"top\"  ");
    assert_int_equal(v->type, IBS_VALUE_STRING);
    assert_int_equal(v->loc.col, 3);
    ibs_value_free(v);
    /* Duplicate members are kept in order; lookups find the first. */
    v = parse_ok("{\"a\": 1, \"a\": 2}");
    assert_int_equal(v->count, 2);
    assert_true(ibs_value_map_get(v, "a")->num.i == 1);
    ibs_value_free(v);
}

static void test_not_nul_terminated(void **state)
{
    static const char text[] = {'[', '1', ',', '2', ']', '9'};
    struct ibs_value *v = NULL;
    (void)state;

    assert_int_equal(ibs_json_parse(&v, text, 5), 0);
    assert_int_equal(v->count, 2);
    ibs_value_free(v);
    expect_error(text, 6,
                 "invalid JSON at byte offset 5 (line 1): unexpected data after the "
                 "JSON value");
}

static void test_errors(void **state)
{
    char *deep;
    (void)state;

    expect_error_s("", "invalid JSON at byte offset 0 (line 1): unexpected end of input");
    expect_error_s(" \n ", "invalid JSON at byte offset 3 (line 2): unexpected end of input");
    expect_error_s("{\n\"a\" 1}",
                   "invalid JSON at byte offset 6 (line 2): unexpected number; expected ':'");
    expect_error_s("[1,]", "invalid JSON at byte offset 3 (line 1): unexpected ']'; expected a "
                           "value");
    expect_error_s("[1 2]", "invalid JSON at byte offset 3 (line 1): unexpected number; expected "
                            "',' or ']'");
    expect_error_s("{\"a\":1,}", "invalid JSON at byte offset 7 (line 1): unexpected '}'; "
                                 "expected a string key");
    expect_error_s("{1:2}", "invalid JSON at byte offset 1 (line 1): unexpected number; "
                            "expected a string key or '}'");
    expect_error_s("{\"a\":1 \"b\":2}", "invalid JSON at byte offset 7 (line 1): unexpected "
                                        "string; expected ',' or '}'");
    expect_error_s("[1", "invalid JSON at byte offset 2 (line 1): unexpected end of input; "
                         "expected ',' or ']'");
    expect_error_s("[1]]",
                   "invalid JSON at byte offset 3 (line 1): unexpected data after the JSON value");
    expect_error_s("nul", "invalid JSON at byte offset 0 (line 1): unexpected character 'n'");
    expect_error_s("[\x01]", "invalid JSON at byte offset 1 (line 1): unexpected byte 0x01");
    expect_error_s("[01]", "invalid JSON at byte offset 1 (line 1): invalid number");
    expect_error_s("[1.]", "invalid JSON at byte offset 1 (line 1): invalid number");
    expect_error_s("[-]", "invalid JSON at byte offset 1 (line 1): invalid number");
    expect_error_s("[+1]", "invalid JSON at byte offset 1 (line 1): unexpected character '+'");
    expect_error_s("[1e]", "invalid JSON at byte offset 1 (line 1): invalid number");
    expect_error_s("[\"a\\x\"]",
                   "invalid JSON at byte offset 3 (line 1): invalid escape in a string");
    expect_error_s("[\"\\u12\"]", "invalid JSON at byte offset 2 (line 1): invalid \\u escape");
    expect_error_s("[\"\\u0000\"]",
                   "invalid JSON at byte offset 2 (line 1): \\u0000 in strings is not supported");
    expect_error_s("[\"\\ud800\"]", "invalid JSON at byte offset 2 (line 1): unpaired UTF-16 "
                                    "surrogate in \\u escape");
    expect_error_s("[\"\\udc00\"]", "invalid JSON at byte offset 2 (line 1): unpaired UTF-16 "
                                    "surrogate in \\u escape");
    expect_error_s("\"abc", "invalid JSON at byte offset 4 (line 1): unterminated string");
    expect_error_s("[\"a\tb\"]",
                   "invalid JSON at byte offset 3 (line 1): control character in a string");
    expect_error_s("[\"\xc3\x28\"]", "invalid JSON at byte offset 2 (line 1): invalid UTF-8");

    deep = malloc(1201);
    assert_non_null(deep);
    deep[0] = '[';
    memset(deep + 1, '1', 64);
    memcpy(deep + 65, "]", 2);
    expect_error_s(deep,
                   "invalid JSON at byte offset 1 (line 1): number longer than 63 characters");
    deep[64] = ']';
    deep[65] = '\0';
    ibs_value_free(parse_ok(deep));

    assert_non_null(deep);
    memset(deep, '[', 600);
    memset(deep + 600, ']', 600);
    deep[1200] = '\0';
    expect_error_s(deep,
                   "invalid JSON at byte offset 512 (line 1): nesting deeper than 512 levels");
    free(deep);
}

static void test_depth_512_accepted(void **state)
{
    char text[1025];
    struct ibs_value *v;
    (void)state;

    memset(text, '[', 512);
    memset(text + 512, ']', 512);
    text[1024] = '\0';
    v = parse_ok(text);
    assert_int_equal(v->type, IBS_VALUE_LIST);
    ibs_value_free(v);
}

static struct ibs_value *sample(void)
{
    struct ibs_value *m = ibs_value_new_map(), *inner = ibs_value_new_map();
    struct ibs_value *l = ibs_value_new_list();

    ibs_value_map_set(m, "b", ibs_value_new_int(-3));
    ibs_value_map_set(m, "a", ibs_value_new_string("x\"y\\z\n\t\x01\x1f\x7f é"));
    ibs_value_map_set(m, "B", ibs_value_new_float(0.1));
    ibs_value_map_set(m, "\xc3\xa9", ibs_value_new_bool(true));
    ibs_value_list_append(l, ibs_value_new_null());
    ibs_value_list_append(l, ibs_value_new_float(100.0));
    ibs_value_list_append(l, ibs_value_new_float(NAN));
    ibs_value_list_append(l, ibs_value_new_float(-INFINITY));
    ibs_value_list_append(l, ibs_value_new_float(1e21));
    ibs_value_list_append(l, ibs_value_new_list());
    ibs_value_list_append(l, ibs_value_new_map());
    ibs_value_map_set(inner, "k", l);
    ibs_value_map_set(m, "aa", inner);
    return m;
}

static void test_write_compact_and_sorted(void **state)
{
    struct ibs_value *m = sample();
    char *text;
    (void)state;

    text = write_json(m, 0);
    assert_string_equal(text, "{\"b\":-3,\"a\":\"x\\\"y\\\\z\\n\\t\\u0001\\u001f\x7f é\","
                              "\"B\":0.1,\"é\":true,\"aa\":{\"k\":[null,100.0,null,null,1e+21,[],"
                              "{}]}}");
    free(text);
    /* Sorted bytewise: "B" < "a" < "aa" < "b" < "é". */
    text = write_json(m, IBS_JSON_SORTED);
    assert_string_equal(text, "{\"B\":0.1,\"a\":\"x\\\"y\\\\z\\n\\t\\u0001\\u001f\x7f é\","
                              "\"aa\":{\"k\":[null,100.0,null,null,1e+21,[],{}]},\"b\":-3,"
                              "\"é\":true}");
    free(text);
    ibs_value_free(m);

    /* Small maps (insertion sort) and large ones (qsort) give the same
     * order: bytewise, duplicate keys in their stored order. */
    for (size_t n = 3; n <= 40; n += 37) {
        struct ibs_buf want = IBS_BUF_INIT;
        struct ibs_loc none = {NULL, 0, 0};
        char key[32];

        m = ibs_value_new_map();
        for (size_t i = n; i-- > 0;) {
            snprintf(key, sizeof(key), "k%02zu", i / 2);
            assert_int_equal(
                ibs_value_map_append(m, key, strlen(key), none, ibs_value_new_int((int64_t)i)), 0);
        }
        for (size_t i = 0; i < n; i++) {
            /* k00 holds 1 then 0 (stored in that order), k01 holds 3 then 2, ... */
            size_t v = (i % 2 == 0) ? (i + 1 < n ? i + 1 : i) : i - 1;
            ibs_buf_printf(&want, "%s\"k%02zu\":%zu", i ? "," : "{", i / 2, v);
        }
        ibs_buf_putc(&want, '}');
        text = write_json(m, IBS_JSON_SORTED);
        assert_string_equal(text, want.ptr);
        free(text);
        ibs_buf_release(&want);
        ibs_value_free(m);
    }
}

/* Indentation past the writer's ready-made run of spaces (16 levels). */
static void test_write_pretty_deep(void **state)
{
    struct ibs_value *root = ibs_value_new_list(), *cur = root;
    char *text, want[128];
    (void)state;

    for (int i = 1; i < 20; i++) {
        struct ibs_value *l = ibs_value_new_list();
        assert_int_equal(ibs_value_list_append(cur, l), 0);
        cur = l;
    }
    assert_int_equal(ibs_value_list_append(cur, ibs_value_new_int(7)), 0);
    text = write_json(root, IBS_JSON_PRETTY);
    /* The 7 sits at depth 20: a newline and 40 spaces before it. */
    snprintf(want, sizeof(want), "\n%40s7\n%38s]", "", "");
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof(want), "\n%32s[\n", "");
    assert_non_null(strstr(text, want));
    free(text);
    ibs_value_free(root);
}

static void test_write_pretty(void **state)
{
    struct ibs_value *m = sample();
    char *text;
    (void)state;

    ibs_value_map_remove(m, "a");
    text = write_json(m, IBS_JSON_PRETTY | IBS_JSON_SORTED);
    assert_string_equal(text, "{\n"
                              "  \"B\": 0.1,\n"
                              "  \"aa\": {\n"
                              "    \"k\": [\n"
                              "      null,\n"
                              "      100.0,\n"
                              "      null,\n"
                              "      null,\n"
                              "      1e+21,\n"
                              "      [],\n"
                              "      {}\n"
                              "    ]\n"
                              "  },\n"
                              "  \"b\": -3,\n"
                              "  \"é\": true\n"
                              "}");
    free(text);
    ibs_value_free(m);

    m = ibs_value_new_stringn("a\0b", 3);
    text = write_json(m, IBS_JSON_PRETTY);
    assert_string_equal(text, "\"a\\u0000b\"");
    free(text);
    ibs_value_free(m);
}

static void test_write_appends(void **state)
{
    struct ibs_buf b = IBS_BUF_INIT;
    struct ibs_value *v = ibs_value_new_int(7);
    (void)state;

    ibs_buf_puts(&b, "x=");
    assert_int_equal(ibs_json_write(&b, v, 0), 0);
    assert_string_equal(b.ptr, "x=7");
    ibs_buf_release(&b);
    ibs_value_free(v);
}

static void test_roundtrip(void **state)
{
    static const char *const docs[] = {
        "{\"a\":[1,2.5,-0.001,9223372036854775807,-9223372036854775808],\"b\":{\"c\":null}}",
        "[\"\\u0001\\u001f\",\"\\\"\",\"😀\",\"\\ud83d\\ude00\",\"tab\\tnl\\n\",true,false]",
        "[1e300,-1e-300,0.30000000000000004,123456789.123456789,5e-324]",
        "{}",
        "[]",
        "\"\"",
        "0",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        for (unsigned flags = 0; flags < 4; flags++) {
            struct ibs_value *v = parse_ok(docs[i]), *again;
            char *text = write_json(v, flags);
            char *text2;
            again = parse_ok(text);
            if (!ibs_value_equal(v, again))
                fail_msg("<%s> came back as <%s>", docs[i], text);
            /* Types survive too: floats stay floats, integers integers. */
            for (size_t k = 0; k < v->count && v->type == IBS_VALUE_LIST; k++)
                assert_int_equal(v->u.items[k]->type, again->u.items[k]->type);
            /* Writing is deterministic. */
            text2 = write_json(again, flags);
            assert_string_equal(text, text2);
            free(text);
            free(text2);
            ibs_value_free(v);
            ibs_value_free(again);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings_literals_and_locations),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_depth_512_accepted),
        cmocka_unit_test(test_write_compact_and_sorted),
        cmocka_unit_test(test_write_pretty),
        cmocka_unit_test(test_write_pretty_deep),
        cmocka_unit_test(test_write_appends),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
