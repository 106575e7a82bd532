/* Unit tests of util/yaml.c: typing, locations, streams, anchors and merge
 * keys, tags, every error message, hostile input, and the emitter.
 * ibs-test-libs: ibs_util */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/buf.h"
#include "util/diag.h"
#include "util/error.h"
#include "util/value.h"
#include "util/vec.h"
#include "util/yaml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILE_NAME "t.yaml"

struct parsed {
    struct ibs_vec docs;
    struct ibs_diags diags;
    int rc;
};

static void free_value(void *v)
{
    ibs_value_free(v);
}

static void parse_n(struct parsed *p, const char *text, size_t len,
                    const struct ibs_yaml_limits *lim)
{
    ibs_vec_init(&p->docs);
    ibs_diag_init(&p->diags);
    p->rc = ibs_yaml_parse(&p->docs, &p->diags, FILE_NAME, text, len, lim);
}

static void parse_lim(struct parsed *p, const char *text, const struct ibs_yaml_limits *lim)
{
    parse_n(p, text, strlen(text), lim);
}

static void parse(struct parsed *p, const char *text)
{
    parse_n(p, text, strlen(text), NULL);
}

static void parsed_release(struct parsed *p)
{
    ibs_vec_release_with(&p->docs, free_value);
    ibs_diag_release(&p->diags);
}

/* Parses a one-document stream that must be valid; the caller frees it. */
static struct ibs_value *parse_one(const char *text)
{
    struct parsed p;
    struct ibs_value *v;

    parse(&p, text);
    if (p.rc != 0 || p.docs.count != 1) {
        struct ibs_buf b = IBS_BUF_INIT;
        ibs_diag_format_all(&b, &p.diags);
        fail_msg("parse of <%s> failed (rc %d, %zu docs): %s", text, p.rc, p.docs.count, b.ptr);
    }
    v = ibs_vec_pop(&p.docs);
    parsed_release(&p);
    return v;
}

/* Asserts that the first diagnostic of a parse is `msg` at line:col (0:0
 * for a file-level one). */
static void assert_first_diag(const struct parsed *p, unsigned line, unsigned col, const char *msg)
{
    assert_int_equal(p->rc, IBS_EINVALID);
    assert_true(p->diags.count >= 1);
    assert_string_equal(p->diags.items[0].message, msg);
    assert_string_equal(p->diags.items[0].file, FILE_NAME);
    assert_int_equal(p->diags.items[0].line, line);
    assert_int_equal(p->diags.items[0].col, col);
    assert_int_equal(p->diags.items[0].severity, IBS_SEV_ERROR);
}

static void expect_error(const char *text, unsigned line, unsigned col, const char *msg)
{
    struct parsed p;
    parse(&p, text);
    assert_first_diag(&p, line, col, msg);
    assert_int_equal(p.docs.count, 0);
    parsed_release(&p);
}

static const struct ibs_value *get(const struct ibs_value *map, const char *key)
{
    const struct ibs_value *v = ibs_value_map_get(map, key);
    if (!v)
        fail_msg("no key \"%s\"", key);
    return v;
}

static void assert_loc(const struct ibs_loc *loc, unsigned line, unsigned col)
{
    assert_string_equal(loc->file, FILE_NAME);
    assert_int_equal(loc->line, line);
    assert_int_equal(loc->col, col);
}

static void assert_key_loc(const struct ibs_value *map, const char *key, unsigned line,
                           unsigned col)
{
    const struct ibs_member *m = ibs_value_map_member(map, key);
    assert_non_null(m);
    assert_loc(&m->key_loc, line, col);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ------------------------------------------------------------------------ */

static void test_limits_defaults(void **state)
{
    struct ibs_yaml_limits lim;
    (void)state;
    ibs_yaml_limits_init(&lim);
    assert_int_equal(lim.max_depth, 128);
    assert_int_equal(lim.max_nodes, 2000000);
    assert_int_equal(lim.max_scalar, 16 * 1024 * 1024);
    assert_int_equal(lim.max_input, 64 * 1024 * 1024);
}

struct typing_case {
    const char *text;
    enum ibs_value_type type;
    int64_t i;
    double d;
};

static void test_plain_scalar_typing(void **state)
{
    static const struct typing_case cases[] = {
        {"~", IBS_VALUE_NULL, 0, 0},
        {"null", IBS_VALUE_NULL, 0, 0},
        {"Null", IBS_VALUE_NULL, 0, 0},
        {"NULL", IBS_VALUE_NULL, 0, 0},
        {"nULL", IBS_VALUE_STRING, 0, 0},
        {"true", IBS_VALUE_BOOL, 1, 0},
        {"True", IBS_VALUE_BOOL, 1, 0},
        {"TRUE", IBS_VALUE_BOOL, 1, 0},
        {"false", IBS_VALUE_BOOL, 0, 0},
        {"False", IBS_VALUE_BOOL, 0, 0},
        {"FALSE", IBS_VALUE_BOOL, 0, 0},
        {"yes", IBS_VALUE_STRING, 0, 0},
        {"on", IBS_VALUE_STRING, 0, 0},
        {"0", IBS_VALUE_INT, 0, 0},
        {"-12", IBS_VALUE_INT, -12, 0},
        {"+7", IBS_VALUE_INT, 7, 0},
        {"0755", IBS_VALUE_INT, 755, 0},
        {"0o17", IBS_VALUE_INT, 15, 0},
        {"0x1F", IBS_VALUE_INT, 31, 0},
        {"0x", IBS_VALUE_STRING, 0, 0},
        {"0o8", IBS_VALUE_STRING, 0, 0},
        {"-0x1F", IBS_VALUE_STRING, 0, 0},
        {"9223372036854775807", IBS_VALUE_INT, INT64_MAX, 0},
        {"-9223372036854775808", IBS_VALUE_INT, INT64_MIN, 0},
        {"9223372036854775808", IBS_VALUE_FLOAT, 0, 9223372036854775808.0},
        {"1.5", IBS_VALUE_FLOAT, 0, 1.5},
        {"1.10", IBS_VALUE_FLOAT, 0, 1.1},
        {"-.5", IBS_VALUE_FLOAT, 0, -0.5},
        {"1.", IBS_VALUE_FLOAT, 0, 1.0},
        {"1e3", IBS_VALUE_FLOAT, 0, 1000.0},
        {"2.5E-1", IBS_VALUE_FLOAT, 0, 0.25},
        {".inf", IBS_VALUE_FLOAT, 0, INFINITY},
        {"-.Inf", IBS_VALUE_FLOAT, 0, -INFINITY},
        {"+.INF", IBS_VALUE_FLOAT, 0, INFINITY},
        {"1e", IBS_VALUE_STRING, 0, 0},
        {".", IBS_VALUE_STRING, 0, 0},
        {"1.2.3", IBS_VALUE_STRING, 0, 0},
        {"inf", IBS_VALUE_STRING, 0, 0},
        {"ami-0abc", IBS_VALUE_STRING, 0, 0},
    };
    char text[128];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ibs_value *doc, *v;
        snprintf(text, sizeof(text), "v: %s\n", cases[i].text);
        doc = parse_one(text);
        v = ibs_value_map_get(doc, "v");
        assert_non_null(v);
        if (v->type != cases[i].type)
            fail_msg("%s: got %s", cases[i].text, ibs_value_type_name(v->type));
        assert_string_equal(v->str, cases[i].text);
        assert_int_equal(v->len, strlen(cases[i].text));
        assert_false(v->quoted);
        if (v->type == IBS_VALUE_INT)
            assert_true(v->num.i == cases[i].i);
        if (v->type == IBS_VALUE_BOOL)
            assert_int_equal(v->num.b, cases[i].i);
        if (v->type == IBS_VALUE_FLOAT)
            assert_true(v->num.d == cases[i].d);
        ibs_value_free(doc);
    }
}

static void test_nan_empty_and_quoted(void **state)
{
    struct ibs_value *doc =
        parse_one("nan: .NaN\nempty:\nsq: '12'\ndq: \"true\"\nlit: |\n  1\nfold: >-\n  a\n  b\n"
                  "esc: \"a\\tb\\0c\"\n");
    const struct ibs_value *v;
    (void)state;

    v = get(doc, "nan");
    assert_int_equal(v->type, IBS_VALUE_FLOAT);
    assert_true(isnan(v->num.d));
    v = get(doc, "empty");
    assert_int_equal(v->type, IBS_VALUE_NULL);
    assert_string_equal(v->str, "");
    v = get(doc, "sq");
    assert_int_equal(v->type, IBS_VALUE_STRING);
    assert_true(v->quoted);
    assert_string_equal(v->str, "12");
    v = get(doc, "dq");
    assert_int_equal(v->type, IBS_VALUE_STRING);
    assert_true(v->quoted);
    v = get(doc, "lit");
    assert_int_equal(v->type, IBS_VALUE_STRING);
    assert_true(v->quoted);
    assert_string_equal(v->str, "1\n");
    v = get(doc, "fold");
    assert_string_equal(v->str, "a b");
    v = get(doc, "esc");
    assert_int_equal(v->len, 5);
    assert_memory_equal(v->str, "a\tb\0c", 6);
    ibs_value_free(doc);
}

static void assert_text(const struct ibs_value *map, const char *key, const char *text, size_t len)
{
    const struct ibs_value *v = get(map, key);
    assert_int_equal(v->type, IBS_VALUE_STRING);
    assert_true(v->quoted);
    if (v->len != len || memcmp(v->str, text, len) != 0)
        fail_msg("%s: got \"%s\" (%zu bytes)", key, v->str, v->len);
}

/* Quoted and block scalar text, checked against PyYAML's reading; libfyaml
 * 0.7.12 gets several of these wrong (see decode_scalar()). */
static void test_scalar_text_decoding(void **state)
{
    static const char dq[] = "A\xc3\xa9\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xc2\x85\xc2\xa0"
                             "\xe2\x80\xa8\xe2\x80\xa9\x1b\a\b\v\f\r/ \t\t|";
    struct ibs_value *doc =
        parse_one("dq: \"\\x41\\u00e9\\U0001F600\\ud83d\\ude00\\N\\_\\L\\P\\e\\a\\b\\v\\f\\r\\/\\ "
                  "\\t\\\t|\"\n"
                  "dqml: \"a  \n  b\n\n  c\\\n   d\\ \n e\"\n"
                  "dqbs: \"\\\\''\"\n"
                  "nul: \"a\\0b\"\n"
                  "sq: 'a'''' b'\n"
                  "sqml: 'x  \n\n  y  \n z'\n"
                  "lit: |\n  x\n\n   y\n  z\n"
                  "fold: >\n  a\n  b\n\n  c\n    more\n  d\n"
                  "keep: |+\n  k\n\n"
                  "strip: >-\n  s\n\n"
                  "seq:\n  - |1\n     one\n  - >2-\n     two\n"
                  "clip: |\n  c\n\n\n"
                  "crlf: \"a\r\n  b\"\r\n"
                  "end: 1\n");
    const struct ibs_value *seq;
    (void)state;

    assert_text(doc, "dq", dq, sizeof(dq) - 1);
    assert_text(doc, "dqml", "a b\ncd  e", 9);
    assert_text(doc, "dqbs", "\\''", 3);
    assert_text(doc, "nul", "a\0b", 3);
    assert_text(doc, "sq", "a'' b", 5);
    assert_text(doc, "sqml", "x\ny z", 5);
    assert_text(doc, "lit", "x\n\n y\nz\n", 8);
    assert_text(doc, "fold", "a b\nc\n  more\nd\n", 15);
    assert_text(doc, "keep", "k\n\n", 3);
    assert_text(doc, "strip", "s", 1);
    assert_text(doc, "clip", "c\n", 2);
    assert_text(doc, "crlf", "a b", 3);
    seq = get(doc, "seq");
    assert_string_equal(seq->u.items[0]->str, "  one\n");
    assert_string_equal(seq->u.items[1]->str, " two");
    ibs_value_free(doc);

    /* Where libfyaml misreads the structure around a block scalar (here it
     * takes "k4: 1" into the empty scalar), the parse fails instead. */
    expect_error("k2:\n  k3: |-\n\n  k4: 1\n", 2, 7,
                 "cannot read this scalar reliably: by the YAML rules it ends at line 4, "
                 "column 3, but the parser reads on to line 5, column 1");
}

static void test_locations(void **state)
{
    static const char text[] = "spec:\n"                          /* 1 */
                               "  name: \"web\"\n"                /* 2 */
                               "  list:\n"                        /* 3 */
                               "    - a\n"                        /* 4 */
                               "    - &anc {x: 1, 'y': [2]}\n"    /* 5 */
                               "  ref: *anc\n"                    /* 6 */
                               "  text: |\n"                      /* 7 */
                               "    hello\n"                      /* 8 */
                               "  empty:\n"                       /* 9 */
                               "  ? complex\n"                    /* 10 */
                               "  : value\n"                      /* 11 */
                               "  tagged: !!str 5\n"              /* 12 */
                               "  é: \"ü\"\n"                     /* 13 */
                               "  folded: >-  # comment | here\n" /* 14 */
                               "    f\n";                         /* 15 */
    struct ibs_value *doc = parse_one(text);
    const struct ibs_value *spec, *list, *item, *ref;
    (void)state;

    assert_loc(&doc->loc, 1, 1);
    assert_key_loc(doc, "spec", 1, 1);
    spec = get(doc, "spec");
    assert_loc(&spec->loc, 2, 3);
    assert_key_loc(spec, "name", 2, 3);
    assert_loc(&get(spec, "name")->loc, 2, 9);
    assert_key_loc(spec, "list", 3, 3);
    list = get(spec, "list");
    assert_loc(&list->loc, 4, 5);
    assert_loc(&list->u.items[0]->loc, 4, 7);
    item = list->u.items[1];
    assert_loc(&item->loc, 5, 7); /* the anchor starts the node */
    assert_key_loc(item, "x", 5, 13);
    assert_loc(&get(item, "x")->loc, 5, 16);
    assert_key_loc(item, "y", 5, 19);
    assert_loc(&get(item, "y")->loc, 5, 24);
    assert_loc(&get(item, "y")->u.items[0]->loc, 5, 25);
    /* An alias copy starts at the alias; its content keeps its origin. */
    ref = get(spec, "ref");
    assert_loc(&ref->loc, 6, 8);
    assert_key_loc(ref, "x", 5, 13);
    assert_loc(&get(spec, "text")->loc, 7, 9);
    assert_string_equal(get(spec, "text")->str, "hello\n");
    /* An empty value has no text: it is placed at its key. */
    assert_loc(&get(spec, "empty")->loc, 9, 3);
    assert_key_loc(spec, "complex", 10, 5);
    assert_loc(&get(spec, "complex")->loc, 11, 5);
    assert_loc(&get(spec, "tagged")->loc, 12, 11);
    /* Columns count characters, not bytes. */
    assert_key_loc(spec, "é", 13, 3);
    assert_loc(&get(spec, "é")->loc, 13, 6);
    assert_loc(&get(spec, "folded")->loc, 14, 11);
    ibs_value_free(doc);
}

static void test_locations_sequences_and_bom(void **state)
{
    struct ibs_value *doc = parse_one("\xef\xbb\xbf"
                                      "- - x\n"
                                      "  - |-\n"
                                      "    y\n"
                                      "- \"q\n"
                                      "  r\"\n"
                                      "- k: v\n");
    const struct ibs_value *inner;
    (void)state;

    assert_int_equal(doc->type, IBS_VALUE_LIST);
    assert_loc(&doc->loc, 1, 1);
    inner = doc->u.items[0];
    assert_loc(&inner->loc, 1, 3);
    assert_loc(&inner->u.items[0]->loc, 1, 5);
    assert_loc(&inner->u.items[1]->loc, 2, 5);
    assert_string_equal(inner->u.items[1]->str, "y");
    assert_loc(&doc->u.items[1]->loc, 4, 3);
    assert_string_equal(doc->u.items[1]->str, "q r");
    assert_loc(&doc->u.items[2]->loc, 6, 3);
    assert_key_loc(doc->u.items[2], "k", 6, 3);
    ibs_value_free(doc);
}

static void test_multi_document_stream(void **state)
{
    struct parsed p;
    (void)state;

    parse(&p, "a: 1\n---\n---\n- x\n...\n--- |\n  text\n");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.docs.count, 4);
    assert_int_equal(((struct ibs_value *)p.docs.items[0])->type, IBS_VALUE_MAP);
    assert_int_equal(((struct ibs_value *)p.docs.items[1])->type, IBS_VALUE_NULL);
    assert_loc(&((struct ibs_value *)p.docs.items[1])->loc, 2, 1);
    assert_int_equal(((struct ibs_value *)p.docs.items[2])->type, IBS_VALUE_LIST);
    assert_string_equal(((struct ibs_value *)p.docs.items[3])->str, "text\n");
    assert_loc(&((struct ibs_value *)p.docs.items[3])->loc, 6, 5);
    parsed_release(&p);

    /* No documents at all: empty input, a comment, a lone BOM. */
    parse(&p, "");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.docs.count, 0);
    parsed_release(&p);
    parse(&p, "# nothing here\n");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.docs.count, 0);
    parsed_release(&p);
    parse(&p, "\xef\xbb\xbf");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.docs.count, 0);
    parsed_release(&p);

    /* A lone "---" is one empty document. */
    parse(&p, "---\n");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.docs.count, 1);
    assert_int_equal(((struct ibs_value *)p.docs.items[0])->type, IBS_VALUE_NULL);
    parsed_release(&p);
}

static void test_documents_before_error_are_kept(void **state)
{
    struct parsed p;
    (void)state;

    parse(&p, "a: 1\n---\nb: 2\n---\nc: [1\n---\nd: 4\n");
    assert_int_equal(p.rc, IBS_EINVALID);
    assert_int_equal(p.docs.count, 2);
    assert_non_null(ibs_value_map_get(p.docs.items[1], "b"));
    assert_int_equal(p.diags.count, 1);
    assert_int_equal(p.diags.items[0].line, 6);
    parsed_release(&p);

    /* A semantic error drops its document and stops the stream. */
    parse(&p, "a: 1\n---\nb: 1\nb: 2\n---\nc: 3\n");
    assert_first_diag(&p, 4, 1, "duplicate key \"b\" (first at line 3)");
    assert_int_equal(p.docs.count, 1);
    parsed_release(&p);
}

static void test_anchors_and_aliases(void **state)
{
    struct ibs_value *doc =
        parse_one("base: &b {x: 1, y: [1, 2]}\nuse: *b\nkey: &k name\n*k : value\n"
                  "again: &b 2\nlast: *b\n");
    struct ibs_value *use;
    (void)state;

    use = ibs_value_map_get(doc, "use");
    assert_true(ibs_value_equal(use, get(doc, "base")));
    /* A deep copy: changing it leaves the anchored node alone. */
    assert_true(ibs_value_map_remove(use, "x"));
    assert_non_null(ibs_value_map_get(get(doc, "base"), "x"));
    assert_string_equal(get(doc, "name")->str, "value");
    /* A redefined anchor refers to its latest node. */
    assert_int_equal(get(doc, "last")->type, IBS_VALUE_INT);
    assert_true(get(doc, "last")->num.i == 2);
    ibs_value_free(doc);

    expect_error("a: *nope\n", 1, 4, "undefined alias \"*nope\"");
    expect_error("a: &r [1, *r]\n", 1, 11, "alias \"*r\" refers to a node that contains it");
}

static void test_merge_keys(void **state)
{
    struct ibs_value *doc = parse_one("base: &base\n"
                                      "  a: 1\n"
                                      "  b: 2\n"
                                      "other: &o {b: 20, c: 30}\n"
                                      "derived:\n"
                                      "  x: 0\n"
                                      "  <<: [*base, *o]\n"
                                      "  a: 10\n"
                                      "single:\n"
                                      "  <<: *o\n"
                                      "  c: 3\n"
                                      "inline:\n"
                                      "  <<: {k: v}\n"
                                      "quoted:\n"
                                      "  \"<<\": *o\n");
    const struct ibs_value *d;
    static const char *const order[] = {"x", "b", "c", "a"};
    (void)state;

    d = get(doc, "derived");
    assert_int_equal(d->count, 4);
    /* Merged keys take the place of "<<"; explicit keys win, then earlier
     * maps of the list. */
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(d->u.members[i].key, order[i]);
    assert_true(get(d, "a")->num.i == 10);
    assert_true(get(d, "b")->num.i == 2);
    assert_true(get(d, "c")->num.i == 30);
    assert_key_loc(d, "b", 3, 3);
    d = get(doc, "single");
    assert_int_equal(d->count, 2);
    assert_true(get(d, "b")->num.i == 20);
    assert_true(get(d, "c")->num.i == 3);
    assert_string_equal(get(get(doc, "inline"), "k")->str, "v");
    /* A quoted "<<" is an ordinary key. */
    assert_int_equal(get(get(doc, "quoted"), "<<")->type, IBS_VALUE_MAP);
    ibs_value_free(doc);

    expect_error("a: &s text\nb:\n  <<: *s\n", 3, 7,
                 "merge key \"<<\" needs a map or a list of maps, not a string");
    expect_error("b:\n  <<: [{a: 1}, 2]\n", 2, 16,
                 "merge key \"<<\" needs a map or a list of maps, not an integer");
}

static void test_duplicate_keys(void **state)
{
    struct ibs_buf b = IBS_BUF_INIT;
    struct parsed p;
    (void)state;

    expect_error("a: 1\nb: 2\nname: x\nc: 3\nname: y\n", 5, 1,
                 "duplicate key \"name\" (first at line 3)");
    expect_error("{a: 1, a: 2}\n", 1, 8, "duplicate key \"a\" (first at line 1)");
    /* Keys compare as text: 1 and "1" are the same key. */
    expect_error("1: a\n\"1\": b\n", 2, 1, "duplicate key \"1\" (first at line 1)");

    /* Large maps use a hash: every duplicate is still found. */
    for (int i = 0; i < 500; i++)
        ibs_buf_printf(&b, "k%d: %d\n", i, i);
    ibs_buf_puts(&b, "k7: again\nk499: again\n");
    parse(&p, b.ptr);
    assert_int_equal(p.rc, IBS_EINVALID);
    assert_int_equal(p.diags.count, 2);
    assert_string_equal(p.diags.items[0].message, "duplicate key \"k7\" (first at line 8)");
    assert_int_equal(p.diags.items[0].line, 501);
    assert_string_equal(p.diags.items[1].message, "duplicate key \"k499\" (first at line 500)");
    parsed_release(&p);
    ibs_buf_release(&b);
}

static void test_tags(void **state)
{
    struct ibs_value *doc =
        parse_one("s: !!str 12\ni: !!int \"0x10\"\nf: !!float 3\nb: !!bool \"false\"\n"
                  "n: !!null \"\"\nm: !!map {a: 1}\nq: !!seq [1]\nx: ! 12\n"
                  "v: !<tag:yaml.org,2002:str> true\n");
    (void)state;

    assert_int_equal(get(doc, "s")->type, IBS_VALUE_STRING);
    assert_false(get(doc, "s")->quoted);
    assert_int_equal(get(doc, "i")->type, IBS_VALUE_INT);
    assert_true(get(doc, "i")->num.i == 16);
    assert_int_equal(get(doc, "f")->type, IBS_VALUE_FLOAT);
    assert_true(get(doc, "f")->num.d == 3.0);
    assert_int_equal(get(doc, "b")->type, IBS_VALUE_BOOL);
    assert_false(get(doc, "b")->num.b);
    assert_int_equal(get(doc, "n")->type, IBS_VALUE_NULL);
    assert_int_equal(get(doc, "m")->type, IBS_VALUE_MAP);
    assert_int_equal(get(doc, "q")->type, IBS_VALUE_LIST);
    assert_int_equal(get(doc, "x")->type, IBS_VALUE_STRING);
    assert_int_equal(get(doc, "v")->type, IBS_VALUE_STRING);
    ibs_value_free(doc);

    expect_error("a: !foo x\n", 1, 4, "unsupported tag \"!foo\"");
    expect_error("a: !!binary aGk=\n", 1, 4, "unsupported tag \"!!binary\"");
    expect_error("a: !foo [1]\n", 1, 4, "unsupported tag \"!foo\"");
    expect_error("%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n", 3, 4,
                 "unsupported tag \"!e!x\"");
    expect_error("a: !!int abc\n", 1, 4, "\"abc\" is not a valid !!int");
    expect_error("a: !!bool yes\n", 1, 4, "\"yes\" is not a valid !!bool");
    expect_error("a: !!null x\n", 1, 4, "\"x\" is not a valid !!null");
    expect_error("a: !!float x\n", 1, 4, "\"x\" is not a valid !!float");
    expect_error("a: !!str [1]\n", 1, 4, "tag \"!!str\" cannot be used on a sequence");
    expect_error("a: !!seq {}\n", 1, 4, "tag \"!!seq\" cannot be used on a mapping");
    expect_error("a: !!map x\n", 1, 4, "tag \"!!map\" cannot be used on a scalar");
}

static void test_non_scalar_keys_and_all_semantic_errors(void **state)
{
    struct parsed p;
    (void)state;

    expect_error("? [a, b]\n: c\n", 1, 3, "mapping key must be a scalar, not a list");
    expect_error("{x: 1}: 2\n", 1, 1, "mapping key must be a scalar, not a map");
    expect_error("\"a\\0b\": 1\n", 1, 1, "mapping key \"a\\x00b\" contains a NUL character");

    /* Semantic errors of one document are all reported. */
    parse(&p, "a: !foo 1\nb: *x\nc: 1\nc: 2\n");
    assert_int_equal(p.rc, IBS_EINVALID);
    assert_int_equal(p.diags.count, 3);
    assert_string_equal(p.diags.items[0].message, "unsupported tag \"!foo\"");
    assert_string_equal(p.diags.items[1].message, "undefined alias \"*x\"");
    assert_string_equal(p.diags.items[2].message, "duplicate key \"c\" (first at line 3)");
    assert_string_equal(ibs_error_last()->message, "t.yaml:1:4: error: unsupported tag \"!foo\"");
    parsed_release(&p);
}

static void test_syntax_errors_are_diagnostics_and_silent(void **state)
{
    static const char *const bad[] = {
        "a: [1, 2\nb: c\n", "a:\n\tb: 1\n", "- a\nb: c\n", "a: 'x\n", "{a: 1}}\n", "&a\n*a\n",
    };
    char path[] = "/tmp/ibs-test-yaml-XXXXXX";
    int fd = mkstemp(path), saved;
    off_t size;
    struct parsed p;
    (void)state;

    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse(&p, bad[i]);
        if (p.rc != IBS_EINVALID || p.diags.count == 0)
            fail_msg("<%s> was accepted", bad[i]);
        parsed_release(&p);
    }
    parse(&p, "a: [1, 2\nb: c\n");
    fflush(stderr);
    size = lseek(fd, 0, SEEK_END);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    assert_int_equal(size, 0); /* libfyaml printed nothing */
    assert_first_diag(&p, 3, 1, "flow sequence without a closing bracket");
    assert_string_equal(ibs_error_last()->message,
                        "t.yaml:3:1: error: flow sequence without a closing bracket");
    parsed_release(&p);

    expect_error("a:\n\tb: 1\n", 2, 1, "tab character may not be used as indentation");
    /* libfyaml crashes on this one (a double free); it is refused first.
     * The same characters in quotes, comments or block scalars are fine. */
    expect_error("? b:\t:\n", 1, 5, "cannot use tab for indentation of block entry");
    expect_error("k:\n  - x:\t- y\n", 2, 7, "cannot use tab for indentation of block entry");
    {
        struct ibs_value *doc =
            parse_one("a: \"x:\t:\"\nb: |\n  y:\t:\nc: z # w:\t:\nd: [e,\t? f]\ng:\th\n");
        assert_string_equal(get(doc, "a")->str, "x:\t:");
        assert_string_equal(get(doc, "b")->str, "y:\t:\n");
        assert_string_equal(get(doc, "g")->str, "h");
        ibs_value_free(doc);
    }
    /* libfyaml misreads these; they are refused instead. */
    expect_error("--- |\na\n  x\n", 1, 5, "a top-level block scalar must be indented");
}

static void test_input_validation(void **state)
{
    static const char nul[] = "a: 1\nb: \0\n";
    struct ibs_yaml_limits lim;
    struct parsed p;
    (void)state;

    parse_n(&p, nul, sizeof(nul) - 1, NULL);
    assert_first_diag(&p, 0, 0, "binary data (NUL byte at offset 8) is not YAML");
    parsed_release(&p);

    expect_error("a: 1\nb: é\xc3\x28\n", 0, 0, "invalid UTF-8 at line 2, column 5");
    expect_error("a: \xed\xa0\x80\n", 0, 0, "invalid UTF-8 at line 1, column 4"); /* surrogate */
    expect_error("a: \xc0\xaf\n", 0, 0, "invalid UTF-8 at line 1, column 4");     /* overlong */
    expect_error("a: 1\r\nb: \xff\n", 0, 0, "invalid UTF-8 at line 2, column 4"); /* CRLF */
    expect_error("\xef\xbb\xbf"
                 "a: \xe2\x82\n",
                 0, 0, "invalid UTF-8 at line 1, column 4");
    /* Long ASCII runs (read eight bytes at a time) around valid multi-byte text. */
    expect_error("averyveryverylongkey: 0123456789abcdef\r\n"
                 "b: 0123456789\xc3\xa9"
                 "0123\xc3\x28xxxxxxxxxxxxxxxx\n",
                 0, 0, "invalid UTF-8 at line 2, column 19");
    expect_error("k: 0123456789abcdef0123456789\xe2\x82\xac\xe2\x82\xac 0123456789abcdef\xf0\n", 0,
                 0, "invalid UTF-8 at line 1, column 49");

    ibs_yaml_limits_init(&lim);
    lim.max_input = 10;
    parse_lim(&p, "a: 1234567890\n", &lim);
    assert_first_diag(&p, 0, 0, "file is 14 bytes; the limit is 10");
    parsed_release(&p);
}

/* Builds `levels` levels of nesting: flow "[[...]]" or block "- - ...". */
static char *deep_text(size_t levels, bool flow)
{
    struct ibs_buf b = IBS_BUF_INIT;
    for (size_t i = 0; i < levels; i++) {
        if (flow) {
            ibs_buf_putc(&b, '[');
        } else {
            for (size_t s = 0; s < i; s++)
                ibs_buf_putc(&b, ' ');
            ibs_buf_puts(&b, "-\n");
        }
    }
    for (size_t i = 0; flow && i < levels; i++)
        ibs_buf_putc(&b, ']');
    ibs_buf_putc(&b, '\n');
    return ibs_buf_detach(&b);
}

static void test_depth_limit(void **state)
{
    struct ibs_yaml_limits lim;
    struct parsed p;
    char *text;
    (void)state;

    text = deep_text(10000, true);
    parse(&p, text);
    assert_first_diag(&p, 1, 129, "nesting deeper than 128 levels");
    assert_int_equal(p.diags.count, 1);
    parsed_release(&p);
    free(text);

    text = deep_text(10000, false);
    parse(&p, text);
    assert_first_diag(&p, 129, 129, "nesting deeper than 128 levels");
    parsed_release(&p);
    free(text);

    /* Exactly at the limit is fine. */
    text = deep_text(128, true);
    parse(&p, text);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.docs.count, 1);
    parsed_release(&p);
    free(text);

    /* An alias may not nest its copy deeper than the limit either. */
    ibs_yaml_limits_init(&lim);
    lim.max_depth = 4;
    parse_lim(&p, "a: &a [[1]]\nb: [[*a]]\n", &lim);
    assert_first_diag(&p, 2, 6, "nesting deeper than 4 levels");
    parsed_release(&p);
    parse_lim(&p, "a: &a [[1]]\nb: [*a]\n", &lim);
    assert_int_equal(p.rc, 0);
    parsed_release(&p);
}

static void test_alias_bomb(void **state)
{
    struct ibs_buf b = IBS_BUF_INIT;
    struct ibs_yaml_limits lim;
    struct timespec t0;
    struct parsed p;
    (void)state;

    ibs_buf_puts(&b, "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < 20; i++)
        ibs_buf_printf(&b,
                       "l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
                       i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    parse(&p, b.ptr);
    assert_true(seconds_since(&t0) < 1.0);
    /* 7 copies of l3 (11,111 nodes each) fit in the budget, the 8th not. */
    assert_first_diag(&p, 5, 45,
                      "aliases expand to more than 100000 nodes (the document itself has 21; "
                      "an alias bomb?)");
    assert_int_equal(p.docs.count, 0);
    parsed_release(&p);

    /* max_nodes counts the copies too. */
    ibs_yaml_limits_init(&lim);
    lim.max_nodes = 1000;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    parse_n(&p, b.ptr, b.size, &lim);
    assert_true(seconds_since(&t0) < 1.0);
    assert_first_diag(&p, 3, 45, "too many nodes (more than 1000, counting alias expansions)");
    parsed_release(&p);
    ibs_buf_release(&b);

    lim.max_nodes = 10;
    parse_lim(&p, "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n", &lim);
    assert_first_diag(&p, 1, 29, "too many nodes (more than 10, counting alias expansions)");
    parsed_release(&p);

    /* Merge keys copy nodes as well. */
    lim.max_nodes = 16;
    parse_lim(&p, "a: &a {x: 1, y: 2}\nb: {<<: *a}\nc: {<<: *a}\n", &lim);
    assert_first_diag(&p, 2, 5, "too many nodes (more than 16, counting alias expansions)");
    parsed_release(&p);
}

static void test_scalar_limit(void **state)
{
    size_t n = 20u * 1024 * 1024;
    char *text = malloc(n + 16);
    struct ibs_yaml_limits lim;
    struct parsed p;
    (void)state;

    assert_non_null(text);
    memcpy(text, "key: ", 5);
    memset(text + 5, 'x', n);
    memcpy(text + 5 + n, "\n", 2);
    ibs_yaml_limits_init(&lim);
    lim.max_scalar = 1024 * 1024;
    parse_n(&p, text, n + 6, &lim);
    assert_first_diag(&p, 1, 6, "scalar is 20971520 bytes; the limit is 1048576");
    parsed_release(&p);
    free(text);
}

/* A valid YAML list of records with ~400-byte descriptions. */
static char *big_yaml(size_t target, size_t *count)
{
    struct ibs_buf b = IBS_BUF_INIT;
    char desc[401];

    memset(desc, 'd', 400);
    desc[400] = '\0';
    *count = 0;
    while (b.size < target && !b.oom) {
        ibs_buf_printf(&b, "- name: image-%zu\n  version: 1.0.%zu\n  description: \"%s\"\n", *count,
                       *count, desc);
        (*count)++;
    }
    return ibs_buf_detach(&b);
}

static void test_big_input(void **state)
{
    struct ibs_yaml_limits lim;
    struct timespec t0;
    struct parsed p;
    size_t count, len;
    char *text = big_yaml(50u * 1000 * 1000, &count);
    const struct ibs_value *last;
    (void)state;

    assert_non_null(text);
    len = strlen(text);
    /* Rejected up front by max_input, without parsing. */
    ibs_yaml_limits_init(&lim);
    lim.max_input = 16u * 1024 * 1024;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    parse_n(&p, text, len, &lim);
    assert_true(seconds_since(&t0) < 0.5);
    {
        char msg[96];
        snprintf(msg, sizeof(msg), "file is %zu bytes; the limit is 16777216", len);
        assert_first_diag(&p, 0, 0, msg);
    }
    parsed_release(&p);

    /* Within the default limits the whole 50 MB parses. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    parse_n(&p, text, len, NULL);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.docs.count, 1);
    assert_int_equal(((struct ibs_value *)p.docs.items[0])->count, count);
    last = ((struct ibs_value *)p.docs.items[0])->u.items[count - 1];
    assert_int_equal(get(last, "version")->type, IBS_VALUE_STRING);
    assert_int_equal(get(last, "description")->len, 400);
    assert_loc(&get(last, "description")->loc, (unsigned)(3 * count), 16);
    print_message("parsed %zu bytes in %.2f s\n", len, seconds_since(&t0));
    parsed_release(&p);
    free(text);
}

/* ------------------------------------------------------------------------ */
/* Emitter                                                                  */

static char *emit(const struct ibs_value *v)
{
    struct ibs_buf b = IBS_BUF_INIT;
    assert_int_equal(ibs_yaml_emit(&b, v), 0);
    return ibs_buf_detach(&b);
}

static void assert_roundtrip(const struct ibs_value *v)
{
    char *text = emit(v);
    struct ibs_value *again = parse_one(text);
    if (!ibs_value_equal(v, again))
        fail_msg("emitted text does not read back the same:\n%s", text);
    ibs_value_free(again);
    free(text);
}

static void test_emit_block_style(void **state)
{
    struct ibs_value *doc =
        parse_one("name: web\n"
                  "count: 3\n"
                  "ratio: 0.5\n"
                  "on: true\n"
                  "none: ~\n"
                  "version: \"1.10\"\n"
                  "list:\n"
                  "  - a\n"
                  "  - {k: v, k2: [1, 2]}\n"
                  "  - [x, y]\n"
                  "  - []\n"
                  "empty: {}\n"
                  "script: |\n"
                  "  echo hi\n"
                  "  exit 0\n"
                  "special: [\"a: b\", \"#x\", \"- y\", \"\", \" pad\", \"null\", "
                  "\"it's\", \"tab\\there\", \"<<\"]\n");
    char *text = emit(doc);
    (void)state;

    assert_string_equal(text, "name: web\n"
                              "count: 3\n"
                              "ratio: 0.5\n"
                              "'on': true\n"
                              "none: null\n"
                              "version: '1.10'\n"
                              "list:\n"
                              "  - a\n"
                              "  - k: v\n"
                              "    k2:\n"
                              "      - 1\n"
                              "      - 2\n"
                              "  - - x\n"
                              "    - 'y'\n"
                              "  - []\n"
                              "empty: {}\n"
                              "script: |\n"
                              "  echo hi\n"
                              "  exit 0\n"
                              "special:\n"
                              "  - 'a: b'\n"
                              "  - '#x'\n"
                              "  - '- y'\n"
                              "  - ''\n"
                              "  - ' pad'\n"
                              "  - 'null'\n"
                              "  - it's\n"
                              "  - \"tab\\there\"\n"
                              "  - '<<'\n");
    assert_roundtrip(doc);
    free(text);
    ibs_value_free(doc);
}

static void test_emit_scalars_and_roundtrip(void **state)
{
    static const char *const strings[] = {
        "plain",    "true",        "1",        "0x1F",     "1e3",
        ".inf",     "~",           "",         "-",        "-x",
        "---",      "...x",        "a\nb",     "a\nb\n",   "a\n\n\n",
        "\nlead",   " lead\nx",    "x\n  y\n", "x\n \ny",  "tab\tin",
        "\ttab\nx", "cr\r\nlf",    "é ü 中",   "\xc2\x85", "\xe2\x80\xa8",
        "q'uote\"", "back\\slash", "#c",       "k: v",     "a #b",
        "trail ",   "x:",          "%p",       "@a",       "`b",
        "!t",       "&a",          "*a",       "|",        ">",
        "[x]",      "{x}",         "?",        "? x",      ":x",
        "<<",       "yes",
    };
    struct ibs_value *list = ibs_value_new_list(), *map = ibs_value_new_map();
    struct ibs_value *nested;
    char *text;
    char longkey[1200];
    (void)state;

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        assert_int_equal(ibs_value_list_append(list, ibs_value_new_string(strings[i])), 0);
        assert_int_equal(ibs_value_map_set(map, strings[i], ibs_value_new_string(strings[i])), 0);
    }
    ibs_value_list_append(list, ibs_value_new_stringn("nul\0in", 6));
    ibs_value_list_append(list, ibs_value_new_int(INT64_MIN));
    ibs_value_list_append(list, ibs_value_new_float(0.1));
    ibs_value_list_append(list, ibs_value_new_float(100.0));
    ibs_value_list_append(list, ibs_value_new_float(-0.0));
    ibs_value_list_append(list, ibs_value_new_float(1e300));
    ibs_value_list_append(list, ibs_value_new_float(-INFINITY));
    ibs_value_list_append(list, ibs_value_new_bool(false));
    ibs_value_list_append(list, ibs_value_new_null());
    assert_roundtrip(list);
    assert_roundtrip(map);

    /* Nested literal blocks in lists and maps keep their indentation. */
    nested = ibs_value_new_list();
    ibs_value_list_append(nested, list);
    ibs_value_map_set(map, "list", nested);
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    ibs_value_map_set(map, longkey, ibs_value_new_string("long key"));
    assert_roundtrip(map);

    text = emit(list);
    assert_non_null(strstr(text, "- \"nul\\0in\"\n"));
    assert_non_null(strstr(text, "- -9223372036854775808\n- 0.1\n- 100.0\n- -0.0\n- 1e+300\n"
                                 "- -.inf\n- false\n- null\n"));
    assert_non_null(strstr(text, "- |-\n  a\n  b\n- |\n  a\n  b\n- |+\n  a\n\n\n"));
    free(text);
    text = emit(map);
    assert_non_null(strstr(text, "? kkkk"));
    free(text);
    ibs_value_free(map);
}

static void test_emit_top_level_scalars(void **state)
{
    struct ibs_value *v = ibs_value_new_string("two\nlines");
    char *text = emit(v);
    (void)state;

    assert_string_equal(text, "|-\n  two\n  lines\n");
    assert_roundtrip(v);
    free(text);
    ibs_value_free(v);
    v = ibs_value_new_map();
    text = emit(v);
    assert_string_equal(text, "{}\n");
    free(text);
    ibs_value_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_defaults),
        cmocka_unit_test(test_plain_scalar_typing),
        cmocka_unit_test(test_nan_empty_and_quoted),
        cmocka_unit_test(test_scalar_text_decoding),
        cmocka_unit_test(test_locations),
        cmocka_unit_test(test_locations_sequences_and_bom),
        cmocka_unit_test(test_multi_document_stream),
        cmocka_unit_test(test_documents_before_error_are_kept),
        cmocka_unit_test(test_anchors_and_aliases),
        cmocka_unit_test(test_merge_keys),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_non_scalar_keys_and_all_semantic_errors),
        cmocka_unit_test(test_syntax_errors_are_diagnostics_and_silent),
        cmocka_unit_test(test_input_validation),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_scalar_limit),
        cmocka_unit_test(test_big_input),
        cmocka_unit_test(test_emit_block_style),
        cmocka_unit_test(test_emit_scalars_and_roundtrip),
        cmocka_unit_test(test_emit_top_level_scalars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
