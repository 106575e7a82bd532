/* Unit tests of util/: errors, buffers, vectors, values, diagnostics.
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_error_set_and_prefix(void **state)
{
    (void)state;
    ibs_error_clear();
    assert_int_equal(ibs_error_last()->code, IBS_OK);
    assert_string_equal(ibs_error_last()->message, "");
    assert_int_equal(ibs_error_set(IBS_ENOTFOUND, "no %s", "thing"), IBS_ENOTFOUND);
    assert_int_equal(ibs_error_prefix("loading %d", 3), IBS_ENOTFOUND);
    assert_string_equal(ibs_error_last()->message, "loading 3: no thing");
    assert_string_equal(ibs_error_name(IBS_ENOTFOUND), "not found");
}

static void test_buf_append_and_detach(void **state)
{
    struct ibs_buf b = IBS_BUF_INIT;
    char *s;
    (void)state;
    assert_string_equal(b.ptr, "");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ibs_buf_printf(&b, "%d,", i % 10), 0);
    assert_int_equal(b.size, 2000);
    ibs_buf_truncate(&b, 4);
    assert_string_equal(b.ptr, "0,1,");
    ibs_buf_putc(&b, 'x');
    s = ibs_buf_detach(&b);
    assert_string_equal(s, "0,1,x");
    assert_int_equal(b.size, 0);
    free(s);
    s = ibs_buf_detach(&b);
    assert_string_equal(s, "");
    free(s);
    ibs_buf_release(&b);

    /* Text longer than the spare room is formatted again once grown. */
    {
        char big[300];
        memset(big, 'y', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(ibs_buf_puts(&b, "ab"), 0);
        assert_int_equal(ibs_buf_printf(&b, "<%s>%d", big, 42), 0);
        assert_int_equal(b.size, 2 + 1 + 299 + 1 + 2);
        assert_int_equal(strncmp(b.ptr, "ab<yyy", 6), 0);
        assert_string_equal(b.ptr + b.size - 4, "y>42");
        ibs_buf_release(&b);
    }
}

static void test_vec_push_pop(void **state)
{
    struct ibs_vec v = IBS_VEC_INIT;
    static int items[100];
    (void)state;
    for (int i = 0; i < 100; i++)
        assert_int_equal(ibs_vec_push(&v, &items[i]), 0);
    assert_int_equal(v.count, 100);
    assert_ptr_equal(ibs_vec_pop(&v), &items[99]);
    assert_int_equal(v.count, 99);
    ibs_vec_release(&v);
    assert_null(ibs_vec_pop(&v));
}

static struct ibs_value *sample_map(int order)
{
    struct ibs_value *m = ibs_value_new_map();
    struct ibs_value *l = ibs_value_new_list();
    ibs_value_list_append(l, ibs_value_new_int(1));
    ibs_value_list_append(l, ibs_value_new_string("two"));
    if (order) {
        ibs_value_map_set(m, "b", l);
        ibs_value_map_set(m, "a", ibs_value_new_bool(true));
    } else {
        ibs_value_map_set(m, "a", ibs_value_new_bool(true));
        ibs_value_map_set(m, "b", l);
    }
    return m;
}

static void test_value_equality_ignores_member_order(void **state)
{
    struct ibs_value *a = sample_map(0), *b = sample_map(1), *c = NULL;
    (void)state;
    assert_true(ibs_value_equal(a, b));
    assert_int_equal(ibs_value_clone(&c, a), 0);
    assert_true(ibs_value_equal(a, c));
    ibs_value_map_set(c, "a", ibs_value_new_bool(false));
    assert_false(ibs_value_equal(a, c));
    assert_true(ibs_value_compare(c, a) < 0);
    ibs_value_free(a);
    ibs_value_free(b);
    ibs_value_free(c);
}

static void test_value_numbers_compare_by_value(void **state)
{
    struct ibs_value *i = ibs_value_new_int(30), *f = ibs_value_new_float(30.0);
    struct ibs_value *s = ibs_value_new_string("30");
    (void)state;
    assert_true(ibs_value_equal(i, f));
    assert_false(ibs_value_equal(i, s));
    assert_string_equal(i->str, "30");
    ibs_value_free(i);
    ibs_value_free(f);
    ibs_value_free(s);
}

static void test_value_map_take_and_remove(void **state)
{
    struct ibs_value *m = sample_map(0), *t;
    (void)state;
    t = ibs_value_map_take(m, "a");
    assert_non_null(t);
    assert_true(t->num.b);
    assert_int_equal(m->count, 1);
    assert_null(ibs_value_map_get(m, "a"));
    assert_true(ibs_value_map_remove(m, "b"));
    assert_false(ibs_value_map_remove(m, "b"));
    assert_int_equal(m->count, 0);
    ibs_value_free(t);
    ibs_value_free(m);
    ibs_value_free(NULL);
}

static void test_value_reserve_and_shrink(void **state)
{
    struct ibs_value *l = ibs_value_new_list(), *m = ibs_value_new_map(), *s;
    struct ibs_loc none = {NULL, 0, 0};
    (void)state;

    /* Exactly the reserved room on a new array; appending beyond it grows. */
    assert_int_equal(ibs_value_reserve(l, 3), 0);
    assert_int_equal(l->cap, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ibs_value_list_append(l, ibs_value_new_int(i)), 0);
    assert_int_equal(l->cap, 3);
    assert_int_equal(ibs_value_list_append(l, ibs_value_new_int(3)), 0);
    assert_true(l->cap >= 4);
    assert_int_equal(ibs_value_reserve(l, 2), 0); /* never shrinks */
    assert_true(l->cap >= 4);
    for (int i = 4; i < 5; i++)
        assert_int_equal(ibs_value_list_append(l, ibs_value_new_int(i)), 0);
    ibs_value_shrink(l);
    assert_int_equal(l->cap, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(l->u.items[i]->num.i, i);

    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(ibs_value_map_append(m, key, strlen(key), none, ibs_value_new_int(i)), 0);
    }
    assert_int_equal(m->cap, 8); /* doubled from 4 */
    ibs_value_shrink(m);
    assert_int_equal(m->cap, 5);
    assert_int_equal(ibs_value_map_get(m, "k4")->num.i, 4);
    assert_int_equal(ibs_value_map_append(m, "k5", 2, none, ibs_value_new_int(5)), 0);
    assert_int_equal(ibs_value_map_get(m, "k5")->num.i, 5);

    s = ibs_value_new_string("x");
    assert_int_equal(ibs_value_reserve(s, 2), IBS_EINVALID);
    ibs_value_shrink(s); /* scalars and NULL: nothing to do */
    ibs_value_shrink(NULL);
    ibs_value_free(s);
    ibs_value_free(l);
    ibs_value_free(m);
}

/* The index answers as the linear lookups do, through growth, replacement
 * and duplicate keys (the first one wins, as for ibs_value_map_get). */
static void test_value_index(void **state)
{
    struct ibs_value *m = ibs_value_new_map(), *s = ibs_value_new_string("x");
    struct ibs_value_index *ix = NULL;
    struct ibs_loc none = {NULL, 0, 0};
    char key[32];
    (void)state;

    assert_int_equal(ibs_value_index_new(&ix, s), IBS_EINVALID);
    assert_null(ix);
    /* A map that already holds members, one key twice. */
    assert_int_equal(ibs_value_map_append(m, "dup", 3, none, ibs_value_new_int(1)), 0);
    assert_int_equal(ibs_value_map_append(m, "dup", 3, none, ibs_value_new_int(2)), 0);
    assert_int_equal(ibs_value_index_new(&ix, m), 0);
    assert_int_equal(ibs_value_index_get(ix, m, "dup")->num.i, 1);
    assert_null(ibs_value_index_get(ix, m, "absent"));

    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "Component/c-%d@1.0.%d", i, i % 7);
        assert_int_equal(ibs_value_index_set(ix, m, key, ibs_value_new_int(i)), 0);
    }
    assert_int_equal(m->count, 1002);
    /* Replacing keeps the member where it is. */
    assert_int_equal(ibs_value_index_set(ix, m, "Component/c-500@1.0.3", ibs_value_new_int(-5)), 0);
    assert_int_equal(m->count, 1002);
    assert_string_equal(m->u.members[502].key, "Component/c-500@1.0.3");
    assert_int_equal(m->u.members[502].value->num.i, -5);
    assert_int_equal(ibs_value_index_set(ix, m, "dup", ibs_value_new_int(3)), 0);
    assert_int_equal(m->u.members[0].value->num.i, 3);
    assert_int_equal(m->u.members[1].value->num.i, 2);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "Component/c-%d@1.0.%d", i, i % 7);
        assert_ptr_equal(ibs_value_index_get(ix, m, key), ibs_value_map_get(m, key));
    }
    assert_null(ibs_value_index_get(ix, m, "Component/c-1000@1.0.6"));
    ibs_value_index_free(ix);
    ibs_value_index_free(NULL);
    ibs_value_free(m);
    ibs_value_free(s);
}

static void test_diags_sorted_and_formatted(void **state)
{
    struct ibs_diags d;
    struct ibs_buf out = IBS_BUF_INIT;
    struct ibs_loc l1 = {"b.yaml", 3, 5}, l2 = {"a.yaml", 10, 1}, l3 = {"a.yaml", 2, 7};
    (void)state;
    ibs_diag_init(&d);
    ibs_diag_add(&d, IBS_SEV_ERROR, &l1, "spec.x", "bad %s", "x");
    ibs_diag_add(&d, IBS_SEV_WARNING, &l2, NULL, "meh");
    ibs_diag_add(&d, IBS_SEV_ERROR, &l3, "metadata.name", "missing");
    assert_int_equal(d.errors, 2);
    ibs_diag_sort(&d);
    assert_int_equal(ibs_diag_format_all(&out, &d), 0);
    assert_string_equal(out.ptr, "a.yaml:2:7: error: metadata.name: missing\n"
                                 "a.yaml:10:1: warning: meh\n"
                                 "b.yaml:3:5: error: spec.x: bad x\n");
    ibs_buf_release(&out);
    ibs_diag_release(&d);
}

static void test_diags_limit_counts_dropped(void **state)
{
    struct ibs_diags d;
    (void)state;
    ibs_diag_init(&d);
    d.limit = 2;
    for (int i = 0; i < 5; i++)
        ibs_diag_add(&d, IBS_SEV_ERROR, NULL, NULL, "e%d", i);
    assert_int_equal(d.count, 2);
    assert_int_equal(d.dropped, 3);
    assert_int_equal(d.errors, 5);
    ibs_diag_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_and_prefix),
        cmocka_unit_test(test_buf_append_and_detach),
        cmocka_unit_test(test_vec_push_pop),
        cmocka_unit_test(test_value_equality_ignores_member_order),
        cmocka_unit_test(test_value_numbers_compare_by_value),
        cmocka_unit_test(test_value_map_take_and_remove),
        cmocka_unit_test(test_value_reserve_and_shrink),
        cmocka_unit_test(test_value_index),
        cmocka_unit_test(test_diags_sorted_and_formatted),
        cmocka_unit_test(test_diags_limit_counts_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
