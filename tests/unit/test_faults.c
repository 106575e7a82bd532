/* Unit tests of the emulator's fault decisions (providers/emulator/faults.c).
 * ibs-test-libs: ibs_emulator ibs_util */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "providers/emulator/faults.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"

#include <stdlib.h>
#include <string.h>

static struct ibs_faults *make(const struct ibs_faults_config *cfg)
{
    struct ibs_faults *f = NULL;
    assert_int_equal(ibs_faults_new(&f, cfg), 0);
    assert_non_null(f);
    return f;
}

static enum ibs_fault decide(struct ibs_faults *f, int64_t now)
{
    struct ibs_fault_decision d;
    ibs_faults_decide(&d, f, now);
    return d.fault;
}

static void expect_invalid(const struct ibs_faults_config *cfg, const char *message)
{
    struct ibs_faults *f = NULL;
    assert_int_equal(ibs_faults_check(cfg), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, message);
    assert_int_equal(ibs_faults_new(&f, cfg), IBS_EINVALID);
    assert_null(f);
}

static void test_check_ranges(void **state)
{
    struct ibs_faults_config cfg = {0};

    (void)state;
    assert_int_equal(ibs_faults_check(&cfg), 0);
    cfg.latency_ms = -1;
    expect_invalid(&cfg, "latencyMs must be between 0 and 600000, not -1");
    cfg.latency_ms = 600001;
    expect_invalid(&cfg, "latencyMs must be between 0 and 600000, not 600001");
    cfg.latency_ms = 600000;
    cfg.throttle_rate = 1.5;
    expect_invalid(&cfg, "throttleRate must be between 0 and 1, not 1.5");
    cfg.throttle_rate = 1;
    cfg.error_rate = -0.25;
    expect_invalid(&cfg, "errorRate must be between 0 and 1, not -0.25");
    cfg.error_rate = 0;
    cfg.drop_rate = 2;
    expect_invalid(&cfg, "dropRate must be between 0 and 1, not 2");
    cfg.drop_rate = 0;
    cfg.rate_limit = -1;
    expect_invalid(&cfg, "rateLimit must be between 0 and 1000000, not -1");
    cfg.rate_limit = 0;
    cfg.seed = -7;
    expect_invalid(&cfg, "seed must not be negative, not -7");
    cfg.seed = 7;
    assert_int_equal(ibs_faults_check(&cfg), 0);
}

static void test_no_faults_and_certain_faults(void **state)
{
    struct ibs_faults_config cfg = {0};
    struct ibs_fault_decision d;
    struct ibs_faults *f;

    (void)state;
    cfg.latency_ms = 25;
    f = make(&cfg);
    for (int i = 0; i < 100; i++) {
        ibs_faults_decide(&d, f, i);
        assert_int_equal(d.fault, IBS_FAULT_NONE);
        assert_int_equal(d.latency_ms, 25);
        assert_int_equal(d.status, 0);
        assert_null(d.aws_code);
        assert_null(d.message);
    }

    cfg.throttle_rate = 1;
    assert_int_equal(ibs_faults_set(f, &cfg), 0);
    ibs_faults_decide(&d, f, 0);
    assert_int_equal(d.fault, IBS_FAULT_THROTTLE);
    assert_int_equal(d.status, 429);
    assert_string_equal(d.aws_code, "CallRateLimitExceededException");
    assert_string_equal(d.message, "You have exceeded the permitted request rate for the specific "
                                   "operation. (injected)");
    assert_int_equal(d.latency_ms, 25);

    /* Throttling comes before errors, errors before drops. */
    cfg.error_rate = 1;
    cfg.drop_rate = 1;
    assert_int_equal(ibs_faults_set(f, &cfg), 0);
    assert_int_equal(decide(f, 0), IBS_FAULT_THROTTLE);
    cfg.throttle_rate = 0;
    assert_int_equal(ibs_faults_set(f, &cfg), 0);
    assert_int_equal(decide(f, 0), IBS_FAULT_ERROR);
    cfg.error_rate = 0;
    assert_int_equal(ibs_faults_set(f, &cfg), 0);
    ibs_faults_decide(&d, f, 0);
    assert_int_equal(d.fault, IBS_FAULT_DROP);
    assert_int_equal(d.status, 0);
    assert_null(d.aws_code);
    ibs_faults_free(f);
    ibs_faults_free(NULL);
}

static void test_error_kinds_and_frequencies(void **state)
{
    struct ibs_faults_config cfg = {0};
    struct ibs_fault_decision d;
    struct ibs_faults *f;
    int n500 = 0, n503 = 0, counts[4] = {0};

    (void)state;
    cfg.error_rate = 1;
    cfg.seed = 99;
    f = make(&cfg);
    for (int i = 0; i < 1000; i++) {
        ibs_faults_decide(&d, f, 0);
        assert_int_equal(d.fault, IBS_FAULT_ERROR);
        if (d.status == 500) {
            assert_string_equal(d.aws_code, "ServiceException");
            assert_string_equal(d.message, "This exception is thrown when the service encounters "
                                           "an unrecoverable exception. (injected)");
            n500++;
        } else {
            assert_int_equal(d.status, 503);
            assert_string_equal(d.aws_code, "ServiceUnavailableException");
            assert_string_equal(d.message,
                                "The service is unable to process your request at this time. "
                                "(injected)");
            n503++;
        }
    }
    /* Even odds: 1000 draws stay well inside 400..600. */
    assert_in_range(n500, 400, 600);
    assert_in_range(n503, 400, 600);

    cfg.error_rate = 0.2;
    cfg.throttle_rate = 0.1;
    cfg.drop_rate = 0.5;
    assert_int_equal(ibs_faults_set(f, &cfg), 0);
    for (int i = 0; i < 20000; i++)
        counts[decide(f, 0)]++;
    /* throttle 10%; error 20% of the other 90%; drop 50% of the rest. */
    assert_in_range(counts[IBS_FAULT_THROTTLE], 1800, 2200);
    assert_in_range(counts[IBS_FAULT_ERROR], 3300, 3900);
    assert_in_range(counts[IBS_FAULT_DROP], 6800, 7600);
    assert_in_range(counts[IBS_FAULT_NONE], 6800, 7600);
    ibs_faults_free(f);
}

static void test_seed_reproducible(void **state)
{
    struct ibs_faults_config cfg = {0};
    struct ibs_faults *a, *b, *c;
    enum ibs_fault first[200];
    int differ = 0;

    (void)state;
    cfg.throttle_rate = 0.3;
    cfg.error_rate = 0.3;
    cfg.drop_rate = 0.3;
    cfg.seed = 1234;
    a = make(&cfg);
    b = make(&cfg);
    cfg.seed = 1235;
    c = make(&cfg);
    for (int i = 0; i < 200; i++) {
        first[i] = decide(a, 0);
        assert_int_equal(decide(b, 0), first[i]);
        differ += decide(c, 0) != first[i];
    }
    assert_true(differ > 50);
    /* ibs_faults_set() restarts the sequence from its seed. */
    cfg.seed = 1234;
    assert_int_equal(ibs_faults_set(c, &cfg), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(decide(c, 0), first[i]);
    ibs_faults_free(a);
    ibs_faults_free(b);
    ibs_faults_free(c);
}

/* Every decision draws the same values: turning throttling on changes the
 * fate of the calls it throttles and of no other. */
static void test_rates_do_not_shift_the_sequence(void **state)
{
    struct ibs_faults_config cfg = {0};
    struct ibs_faults *plain, *throttled;
    int throttles = 0;

    (void)state;
    cfg.drop_rate = 0.5;
    cfg.seed = 42;
    plain = make(&cfg);
    cfg.throttle_rate = 0.3;
    throttled = make(&cfg);
    for (int i = 0; i < 500; i++) {
        enum ibs_fault p = decide(plain, 0), t = decide(throttled, 0);
        if (t == IBS_FAULT_THROTTLE)
            throttles++;
        else
            assert_int_equal(t, p);
    }
    assert_in_range(throttles, 100, 200);
    ibs_faults_free(plain);
    ibs_faults_free(throttled);
}

static void test_token_bucket(void **state)
{
    struct ibs_faults_config cfg = {0};
    struct ibs_fault_decision d;
    struct ibs_faults *f;

    (void)state;
    cfg.rate_limit = 10;
    f = make(&cfg);
    /* A full bucket: one second's worth of calls at once. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(decide(f, 1000), IBS_FAULT_NONE);
    ibs_faults_decide(&d, f, 1000);
    assert_int_equal(d.fault, IBS_FAULT_THROTTLE);
    assert_int_equal(d.status, 429);
    assert_string_equal(d.aws_code, "CallRateLimitExceededException");
    assert_string_equal(d.message, "You have exceeded the permitted request rate for the specific "
                                   "operation. (rate limit)");
    /* 10 per second: one token every 100 ms. */
    assert_int_equal(decide(f, 1050), IBS_FAULT_THROTTLE);
    assert_int_equal(decide(f, 1100), IBS_FAULT_NONE);
    assert_int_equal(decide(f, 1100), IBS_FAULT_THROTTLE);
    /* A long pause refills the bucket to its capacity and no further. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(decide(f, 60000), IBS_FAULT_NONE);
    assert_int_equal(decide(f, 60000), IBS_FAULT_THROTTLE);
    /* A clock that goes backwards adds nothing. */
    assert_int_equal(decide(f, 50000), IBS_FAULT_THROTTLE);

    /* Below 1 per second the bucket still holds one call. */
    cfg.rate_limit = 0.5;
    assert_int_equal(ibs_faults_set(f, &cfg), 0);
    assert_int_equal(decide(f, 0), IBS_FAULT_NONE);
    assert_int_equal(decide(f, 1000), IBS_FAULT_THROTTLE);
    assert_int_equal(decide(f, 2000), IBS_FAULT_NONE);
    ibs_faults_free(f);
}

static struct ibs_value *json(const char *text)
{
    struct ibs_value *v = NULL;
    assert_int_equal(ibs_json_parse(&v, text, strlen(text)), 0);
    return v;
}

static void expect_update_error(struct ibs_faults *f, const char *patch, const char *message)
{
    struct ibs_faults_config before, after;
    struct ibs_value *v = json(patch);

    ibs_faults_get(&before, f);
    assert_int_equal(ibs_faults_update(f, v), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, message);
    ibs_faults_get(&after, f);
    assert_memory_equal(&before, &after, sizeof(before));
    ibs_value_free(v);
}

static void test_update_from_json(void **state)
{
    struct ibs_faults_config cfg = {0};
    struct ibs_faults *f;
    struct ibs_value *v, *out = NULL;
    struct ibs_buf text = IBS_BUF_INIT;
    enum ibs_fault seq[50];

    (void)state;
    cfg.seed = 5;
    cfg.drop_rate = 0.5;
    f = make(&cfg);
    for (int i = 0; i < 50; i++)
        seq[i] = decide(f, 0);

    v = json("{\"latencyMs\": 250, \"throttleRate\": 0, \"errorRate\": 0.5}");
    assert_int_equal(ibs_faults_update(f, v), 0);
    ibs_value_free(v);
    ibs_faults_get(&cfg, f);
    assert_int_equal(cfg.latency_ms, 250);
    assert_true(cfg.error_rate == 0.5);
    assert_true(cfg.drop_rate == 0.5); /* untouched */
    assert_int_equal(cfg.seed, 5);

    assert_int_equal(ibs_faults_to_value(&out, &cfg), 0);
    assert_int_equal(ibs_json_write(&text, out, 0), 0);
    assert_string_equal(text.ptr, "{\"latencyMs\":250,\"throttleRate\":0.0,\"errorRate\":0.5,"
                                  "\"dropRate\":0.5,\"rateLimit\":0.0,\"seed\":5}");
    ibs_buf_release(&text);
    ibs_value_free(out);

    expect_update_error(f, "{\"throttleRate\": 0.5, \"colour\": 1}",
                        "unknown member \"colour\" (expected latencyMs, throttleRate, errorRate, "
                        "dropRate, rateLimit or seed)");
    expect_update_error(f, "{\"dropRate\": 3}", "dropRate must be between 0 and 1, not 3");
    expect_update_error(f, "{\"latencyMs\": 1.5}", "latencyMs must be an integer, not a number");
    expect_update_error(f, "{\"errorRate\": \"high\"}", "errorRate must be a number, not a string");
    expect_update_error(f, "{\"seed\": -1}", "seed must not be negative, not -1");
    expect_update_error(f, "[1]", "the fault settings must be a JSON object");
    assert_int_equal(ibs_faults_update(f, NULL), IBS_EINVALID);

    /* "seed" restarts the sequence; other members do not. */
    v = json("{\"errorRate\": 0, \"seed\": 5}");
    assert_int_equal(ibs_faults_update(f, v), 0);
    ibs_value_free(v);
    for (int i = 0; i < 25; i++)
        assert_int_equal(decide(f, 0), seq[i]);
    v = json("{\"latencyMs\": 0}");
    assert_int_equal(ibs_faults_update(f, v), 0);
    ibs_value_free(v);
    for (int i = 25; i < 50; i++)
        assert_int_equal(decide(f, 0), seq[i]);

    /* "rateLimit" refills the bucket. */
    v = json("{\"dropRate\": 0, \"rateLimit\": 2}");
    assert_int_equal(ibs_faults_update(f, v), 0);
    assert_int_equal(decide(f, 0), IBS_FAULT_NONE);
    assert_int_equal(decide(f, 0), IBS_FAULT_NONE);
    assert_int_equal(decide(f, 0), IBS_FAULT_THROTTLE);
    assert_int_equal(ibs_faults_update(f, v), 0);
    assert_int_equal(decide(f, 0), IBS_FAULT_NONE);
    ibs_value_free(v);
    ibs_faults_free(f);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(ibs_faults_name(IBS_FAULT_NONE), "none");
    assert_string_equal(ibs_faults_name(IBS_FAULT_THROTTLE), "throttle");
    assert_string_equal(ibs_faults_name(IBS_FAULT_ERROR), "error");
    assert_string_equal(ibs_faults_name(IBS_FAULT_DROP), "drop");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_ranges),
        cmocka_unit_test(test_no_faults_and_certain_faults),
        cmocka_unit_test(test_error_kinds_and_frequencies),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_rates_do_not_shift_the_sequence),
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_update_from_json),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
