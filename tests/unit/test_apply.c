/* Unit tests of reconcile/apply: dependency order, parallelism, failure
 * handling (stop vs keep-going), resumption, cancellation, journal records,
 * with a fake provider that records calls.
 * ibs-test-libs: ibs_reconcile ibs_providers ibs_state ibs_api ibs_util */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "reconcile/apply.h"
#include "reconcile/plan.h"
#include "reconcile/request.h"
#include "util/error.h"
#include "util/json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fake {
    pthread_mutex_t lock;
    char log[64][160]; /* "op name" in completion order */
    size_t n;
    const char *fail_name; /* fail any call whose request names this */
    int throttle_first;    /* answer the first N calls "throttled" */
    int delay_ms;
    int running, max_running;
    volatile sig_atomic_t *cancel_after_first;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int fake_call(void *self, struct ibs_value **out, struct ibs_provider_error *err,
                     const char *operation, const struct ibs_value *input)
{
    struct fake *f = self;
    const char *name = ibs_value_map_get_str(input, "name");
    const char *arn = NULL;
    int rc = 0;

    (void)err;
    for (size_t i = 0; !name && i < input->count; i++)
        if (input->u.members[i].value->type == IBS_VALUE_STRING &&
            strstr(input->u.members[i].key, "Arn"))
            arn = input->u.members[i].value->str;
    pthread_mutex_lock(&f->lock);
    f->running++;
    if (f->running > f->max_running)
        f->max_running = f->running;
    pthread_mutex_unlock(&f->lock);
    sleep_ms(f->delay_ms);
    pthread_mutex_lock(&f->lock);
    f->running--;
    if (f->throttle_first > 0) {
        f->throttle_first--;
        rc = ibs_error_set(IBS_ETHROTTLED, "CallRateLimitExceededException: slow down");
    } else if (f->fail_name && name && strcmp(name, f->fail_name) == 0)
        rc = ibs_error_set(IBS_EINVALID, "InvalidRequestException: %s is bad", name);
    else if (f->n < 64)
        snprintf(f->log[f->n++], sizeof(f->log[0]), "%s %s", operation,
                 name  ? name
                 : arn ? arn
                       : "?");
    if (f->cancel_after_first)
        *f->cancel_after_first = 1;
    pthread_mutex_unlock(&f->lock);
    if (rc)
        return rc;
    *out = ibs_value_new_map();
    if (name) {
        char a[128];
        snprintf(a, sizeof(a), "arn:aws:imagebuilder:us-east-1:123456789012:%s/%s/1.0.0/1",
                 operation, name);
        ibs_value_map_set(*out,
                          strncmp(operation, "CreateComponent", 15) == 0
                              ? "componentBuildVersionArn"
                              : "infrastructureConfigurationArn",
                          ibs_value_new_string(a));
    }
    return 0;
}

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
}

static void fake_free(void *self)
{
    (void)self;
}

static const struct ibs_provider_ops fake_ops = {IBS_PROVIDER_VERSION, "fake", fake_call,
                                                 fake_free};

static struct ibs_action *add_action(struct ibs_plan *plan, enum ibs_action_type type,
                                     enum ibs_kind kind, const char *name)
{
    struct ibs_action *a = calloc(1, sizeof(*a));
    char key[128];
    a->id = plan->actions.count;
    a->type = type;
    a->kind = kind;
    a->name = strdup(name);
    a->reason = strdup("test");
    snprintf(key, sizeof(key), "%s %s", ibs_action_type_name(type), name);
    a->key = strdup(key);
    ibs_request_client_token(a->client_token, "0123456789012345678901234567890123456789", key);
    if (type == IBS_ACTION_DELETE || type == IBS_ACTION_UPDATE) {
        a->arn = strdup("arn:aws:imagebuilder:us-east-1:123456789012:x/old");
    } else {
        a->request = ibs_value_new_map();
        ibs_value_map_set(a->request, "name", ibs_value_new_string(name));
    }
    ibs_vec_push(&plan->actions, a);
    return a;
}

static void depend(struct ibs_action *a, const struct ibs_action *on)
{
    a->deps = realloc(a->deps, (a->ndeps + 1) * sizeof(size_t));
    a->deps[a->ndeps++] = on->id;
}

static void setup_plan(struct ibs_plan *plan)
{
    ibs_plan_init(plan);
    memset(plan->id, 'a', 40);
    plan->stack = strdup("s");
    plan->symbols = ibs_value_new_map();
}

static size_t position(const struct fake *f, const char *entry)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->log[i], entry) == 0)
            return i;
    return SIZE_MAX;
}

static void test_dependencies_run_first_and_in_parallel(void **state)
{
    struct fake f;
    struct ibs_provider p = {&fake_ops, &f, "us-east-1", "123456789012"};
    struct ibs_plan plan;
    struct ibs_apply_result res;
    struct ibs_apply_options ao = {0};
    struct ibs_action *c1, *c2, *c3, *i1;
    (void)state;
    fake_init(&f);
    setup_plan(&plan);
    f.delay_ms = 30;
    c1 = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "c1");
    c2 = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "c2");
    c3 = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "c3");
    i1 = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_INFRASTRUCTURE_CONFIGURATION, "i1");
    depend(i1, c1);
    depend(i1, c2);
    (void)c3;
    ao.parallelism = 4;
    assert_int_equal(ibs_apply_run(&res, &plan, &p, &ao), 0);
    assert_int_equal(res.done, 4);
    assert_int_equal(f.n, 4);
    assert_true(position(&f, "CreateInfrastructureConfiguration i1") == 3);
    assert_true(f.max_running >= 2 && f.max_running <= 3);
    assert_string_equal(res.arns[0],
                        "arn:aws:imagebuilder:us-east-1:123456789012:CreateComponent/c1/1.0.0");
    ibs_apply_result_release(&res);
    ibs_plan_release(&plan);
}

static void test_parallelism_one_is_sequential(void **state)
{
    struct fake f;
    struct ibs_provider p = {&fake_ops, &f, "us-east-1", "123456789012"};
    struct ibs_plan plan;
    struct ibs_apply_result res;
    struct ibs_apply_options ao = {0};
    (void)state;
    fake_init(&f);
    setup_plan(&plan);
    f.delay_ms = 5;
    for (int i = 0; i < 6; i++) {
        char n[8];
        snprintf(n, sizeof(n), "c%d", i);
        add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, n);
    }
    ao.parallelism = 1;
    assert_int_equal(ibs_apply_run(&res, &plan, &p, &ao), 0);
    assert_int_equal(f.max_running, 1);
    assert_int_equal(res.done, 6);
    ibs_apply_result_release(&res);
    ibs_plan_release(&plan);
}

static void test_failure_stops_scheduling(void **state)
{
    struct fake f;
    struct ibs_provider p = {&fake_ops, &f, "us-east-1", "123456789012"};
    struct ibs_plan plan;
    struct ibs_apply_result res;
    struct ibs_apply_options ao = {0};
    struct ibs_action *bad, *after, *other;
    (void)state;
    fake_init(&f);
    setup_plan(&plan);
    bad = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "bad");
    after = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_INFRASTRUCTURE_CONFIGURATION, "after");
    other = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_INFRASTRUCTURE_CONFIGURATION, "other");
    depend(after, bad);
    depend(other, bad); /* with one worker nothing else can start */
    f.fail_name = "bad";
    ao.parallelism = 1;
    assert_int_equal(ibs_apply_run(&res, &plan, &p, &ao), IBS_EINVALID);
    assert_int_equal(res.failed, 1);
    assert_int_equal(res.done, 0);
    assert_int_equal(res.skipped, 2);
    assert_int_equal(res.status[0], IBS_APPLY_FAILED);
    assert_string_equal(res.errors[0], "InvalidRequestException: bad is bad");
    assert_int_equal(res.status[1], IBS_APPLY_SKIPPED);
    ibs_apply_result_release(&res);
    ibs_plan_release(&plan);
}

static void test_keep_going_finishes_independent_branches(void **state)
{
    struct fake f;
    struct ibs_provider p = {&fake_ops, &f, "us-east-1", "123456789012"};
    struct ibs_plan plan;
    struct ibs_apply_result res;
    struct ibs_apply_options ao = {0};
    struct ibs_action *bad, *child, *grandchild;
    (void)state;
    fake_init(&f);
    setup_plan(&plan);
    bad = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "bad");
    child = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_INFRASTRUCTURE_CONFIGURATION, "child");
    grandchild = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_INFRASTRUCTURE_CONFIGURATION, "gc");
    add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "free1");
    add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "free2");
    depend(child, bad);
    depend(grandchild, child);
    f.fail_name = "bad";
    ao.parallelism = 1;
    ao.keep_going = true;
    assert_int_equal(ibs_apply_run(&res, &plan, &p, &ao), IBS_EINVALID);
    assert_int_equal(res.failed, 1);
    assert_int_equal(res.done, 2);
    assert_int_equal(res.skipped, 2);
    assert_int_equal(res.status[2], IBS_APPLY_SKIPPED);
    assert_true(position(&f, "CreateComponent free2") != SIZE_MAX);
    ibs_apply_result_release(&res);
    ibs_plan_release(&plan);
}

static int records;
static char last_event[32];

static int count_record(void *ctx, const struct ibs_value *rec)
{
    (void)ctx;
    records++;
    snprintf(last_event, sizeof(last_event), "%s", ibs_value_map_get_str(rec, "event"));
    assert_non_null(ibs_value_map_get_str(rec, "token"));
    assert_int_equal(strlen(ibs_value_map_get_str(rec, "token")), 36);
    return 0;
}

static void test_completed_actions_are_not_resent(void **state)
{
    struct fake f;
    struct ibs_provider p = {&fake_ops, &f, "us-east-1", "123456789012"};
    struct ibs_plan plan;
    struct ibs_apply_result res;
    struct ibs_apply_options ao = {0};
    struct ibs_value *done = ibs_value_new_map();
    struct ibs_action *c1, *i1;
    (void)state;
    fake_init(&f);
    setup_plan(&plan);
    c1 = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "c1");
    i1 = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_INFRASTRUCTURE_CONFIGURATION, "i1");
    depend(i1, c1);
    ibs_value_map_set(done, c1->key, ibs_value_new_string("arn:done"));
    ao.completed = done;
    ao.record = count_record;
    records = 0;
    assert_int_equal(ibs_apply_run(&res, &plan, &p, &ao), 0);
    assert_int_equal(f.n, 1);
    assert_string_equal(f.log[0], "CreateInfrastructureConfiguration i1");
    assert_string_equal(res.arns[0], "arn:done");
    assert_int_equal(records, 2);
    assert_string_equal(last_event, "done");
    ibs_value_free(done);
    ibs_apply_result_release(&res);
    ibs_plan_release(&plan);
}

static void test_cancel_stops_new_actions(void **state)
{
    struct fake f;
    struct ibs_provider p = {&fake_ops, &f, "us-east-1", "123456789012"};
    struct ibs_plan plan;
    struct ibs_apply_result res;
    struct ibs_apply_options ao = {0};
    volatile sig_atomic_t cancel = 0;
    (void)state;
    fake_init(&f);
    setup_plan(&plan);
    for (int i = 0; i < 5; i++) {
        char n[8];
        snprintf(n, sizeof(n), "c%d", i);
        add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, n);
    }
    f.cancel_after_first = &cancel;
    ao.cancel = &cancel;
    ao.parallelism = 1;
    assert_int_equal(ibs_apply_run(&res, &plan, &p, &ao), IBS_ECANCELED);
    assert_int_equal(res.done, 1);
    assert_int_equal(res.skipped, 4);
    ibs_apply_result_release(&res);
    ibs_plan_release(&plan);
}

static void test_dependency_cycle_is_reported(void **state)
{
    struct fake f;
    struct ibs_provider p = {&fake_ops, &f, "us-east-1", "123456789012"};
    struct ibs_plan plan;
    struct ibs_apply_result res;
    struct ibs_action *a, *b;
    (void)state;
    fake_init(&f);
    setup_plan(&plan);
    a = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "a");
    b = add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "b");
    depend(a, b);
    depend(b, a);
    assert_int_equal(ibs_apply_run(&res, &plan, &p, NULL), IBS_ECONFLICT);
    assert_int_equal(res.skipped, 2);
    assert_int_equal(f.n, 0);
    ibs_apply_result_release(&res);
    ibs_plan_release(&plan);
}

static void test_throttled_actions_pause_everything_and_retry(void **state)
{
    struct fake f;
    struct ibs_provider p = {&fake_ops, &f, "us-east-1", "123456789012"};
    struct ibs_plan plan;
    struct ibs_apply_result res;
    struct ibs_apply_options ao = {0};
    (void)state;
    fake_init(&f);
    setup_plan(&plan);
    add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "c1");
    add_action(&plan, IBS_ACTION_CREATE, IBS_KIND_COMPONENT, "c2");
    f.throttle_first = 2; /* still throttled after the client's own retries */
    ao.parallelism = 1;
    assert_int_equal(ibs_apply_run(&res, &plan, &p, &ao), 0);
    assert_int_equal(res.done, 2);
    assert_int_equal(res.failed, 0);
    assert_int_equal(f.n, 2);
    /* Two pauses of at least half the base each. */
    assert_true(res.elapsed_ms >= 1000);
    ibs_apply_result_release(&res);
    /* Throttled past the limit: the action fails. */
    f.throttle_first = 10;
    f.n = 0;
    assert_int_equal(ibs_apply_run(&res, &plan, &p, &ao), IBS_ETHROTTLED);
    assert_int_equal(res.failed, 1);
    assert_string_equal(res.errors[0], "CallRateLimitExceededException: slow down");
    ibs_apply_result_release(&res);
    ibs_plan_release(&plan);
}

static void test_client_tokens_are_deterministic_uuids(void **state)
{
    char t1[37], t2[37], t3[37];
    (void)state;
    assert_int_equal(ibs_request_client_token(t1, "plan-a", "create Component/x@1.0.0 h"), 0);
    assert_int_equal(ibs_request_client_token(t2, "plan-a", "create Component/x@1.0.0 h"), 0);
    assert_int_equal(ibs_request_client_token(t3, "plan-b", "create Component/x@1.0.0 h"), 0);
    assert_string_equal(t1, t2);
    assert_string_not_equal(t1, t3);
    assert_int_equal(strlen(t1), 36);
    assert_int_equal(t1[8], '-');
    assert_int_equal(t1[13], '-');
    assert_int_equal(t1[18], '-');
    assert_int_equal(t1[23], '-');
}

static void test_semver(void **state)
{
    struct ibs_semver a, b;
    char s[64];
    (void)state;
    assert_int_equal(ibs_semver_parse(&a, "1.10.0"), 0);
    assert_int_equal(ibs_semver_parse(&b, "1.9.7"), 0);
    assert_true(ibs_semver_compare(&a, &b) > 0);
    ibs_semver_format(s, sizeof(s), &b);
    assert_string_equal(s, "1.9.7");
    assert_int_equal(ibs_semver_parse(&a, "1.0"), IBS_EINVALID);
    assert_int_equal(ibs_semver_parse(&a, "1.0.0/1"), IBS_EINVALID);
    assert_int_equal(ibs_semver_parse(&a, "1.0.1073741824"), IBS_EINVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dependencies_run_first_and_in_parallel),
        cmocka_unit_test(test_parallelism_one_is_sequential),
        cmocka_unit_test(test_failure_stops_scheduling),
        cmocka_unit_test(test_keep_going_finishes_independent_branches),
        cmocka_unit_test(test_completed_actions_are_not_resent),
        cmocka_unit_test(test_cancel_stops_new_actions),
        cmocka_unit_test(test_dependency_cycle_is_reported),
        cmocka_unit_test(test_throttled_actions_pause_everything_and_retry),
        cmocka_unit_test(test_client_tokens_are_deterministic_uuids),
        cmocka_unit_test(test_semver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
