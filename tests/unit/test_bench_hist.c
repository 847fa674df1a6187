/*
 * test_bench_hist.c -- unit tests of crabcache-bench's log-linear histogram
 * (tools/bench/hist.c) and, since the percentiles it feeds are only as good
 * as the load, of the Zipf sampler beside it (tools/bench/zipf.c).
 *
 * The tool's sources are not part of crabcore, so they are compiled into
 * this test directly.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../tools/bench/hist.c"
#include "../../tools/bench/zipf.c"

static struct bench_hist *
new_hist(void)
{
    struct bench_hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    bench_hist_init(h);
    return h;
}

/* Every value lands in a bucket whose range holds it, indexes never go
 * backwards, and buckets are at most 1/64 of their value wide. */
static void
test_index_ranges(void **state)
{
    (void)state;
    unsigned prev = 0;
    uint64_t v = 0;
    while (v < (UINT64_C(1) << 62)) {
        unsigned idx = bench_hist_index(v);
        assert_true(idx < BENCH_HIST_BUCKETS);
        assert_true(idx >= prev);
        assert_true(bench_hist_bucket_low(idx) <= v);
        assert_true(bench_hist_bucket_high(idx) >= v);
        uint64_t width = bench_hist_bucket_high(idx) - bench_hist_bucket_low(idx) + 1;
        assert_true(width == 1 || width * 64 <= bench_hist_bucket_low(idx));
        prev = idx;
        v = v < 1000 ? v + 1 : v + v / 97 + 1;
    }
    /* values below 128 are exact */
    for (unsigned i = 0; i < 128; i++) {
        assert_int_equal(bench_hist_index(i), i);
    }
    /* adjacent buckets tile the number line */
    for (unsigned i = 0; i + 1 < BENCH_HIST_BUCKETS; i++) {
        assert_true(bench_hist_bucket_high(i) + 1 == bench_hist_bucket_low(i + 1));
    }
    /* the largest values fit */
    assert_int_equal(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS - 1);
}

static void
test_empty_and_single(void **state)
{
    (void)state;
    struct bench_hist *h = new_hist();
    assert_int_equal(bench_hist_percentile(h, 50), 0);
    assert_true(bench_hist_mean(h) == 0.0);
    bench_hist_record(h, 123456);
    assert_int_equal(h->count, 1);
    /* clamped to the exact min/max, so a single value is reported exactly */
    assert_int_equal(bench_hist_percentile(h, 0), 123456);
    assert_int_equal(bench_hist_percentile(h, 50), 123456);
    assert_int_equal(bench_hist_percentile(h, 99.9), 123456);
    assert_int_equal(bench_hist_percentile(h, 100), 123456);
    assert_true(fabs(bench_hist_mean(h) - 123456.0) < 1e-9);
    free(h);
}

/* Percentiles of 1..1,000,000 (uniform) are within 1 % of the exact ranks. */
static void
test_percentile_accuracy(void **state)
{
    (void)state;
    struct bench_hist *h = new_hist();
    const uint64_t n = 1000000;
    for (uint64_t v = 1; v <= n; v++) {
        bench_hist_record(h, v);
    }
    const double ps[] = { 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99 };
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        double exact = ceil(ps[i] / 100.0 * (double)n);
        double got = (double)bench_hist_percentile(h, ps[i]);
        assert_true(fabs(got - exact) / exact < 0.01);
    }
    assert_int_equal(bench_hist_percentile(h, 0), 1);
    assert_int_equal(bench_hist_percentile(h, 100), n);
    assert_true(fabs(bench_hist_mean(h) - (double)(n + 1) / 2.0) < 1e-6);
    free(h);
}

/* A latency-like skewed sample: p99 and p99.9 find the tail, not the body. */
static void
test_tail(void **state)
{
    (void)state;
    struct bench_hist *h = new_hist();
    bench_hist_record_n(h, 50000, 9890);     /* 50 us */
    bench_hist_record_n(h, 2000000, 100);    /* 2 ms */
    bench_hist_record_n(h, 40000000, 10);    /* 40 ms */
    assert_int_equal(h->count, 10000);
    double p50 = (double)bench_hist_percentile(h, 50);
    double p99 = (double)bench_hist_percentile(h, 99);
    double p999 = (double)bench_hist_percentile(h, 99.9);
    assert_true(fabs(p50 - 50000) / 50000 < 0.01);
    assert_true(fabs(p99 - 2000000) / 2000000 < 0.01);
    assert_true(fabs(p999 - 2000000) / 2000000 < 0.01);  /* rank 9990 is the last 2 ms */
    assert_int_equal(bench_hist_percentile(h, 99.91), 40000000);
    assert_int_equal(bench_hist_percentile(h, 100), 40000000);
    bench_hist_record_n(h, 7, 0);   /* no-op */
    assert_int_equal(h->count, 10000);
    free(h);
}

/* Merging per-thread histograms equals recording everything in one. */
static void
test_merge(void **state)
{
    (void)state;
    struct bench_hist *a = new_hist(), *b = new_hist(), *all = new_hist(), *empty = new_hist();
    struct bench_rng r;
    bench_rng_seed(&r, 42);
    for (int i = 0; i < 100000; i++) {
        uint64_t v = bench_rng_below(&r, 10000000) + 1;
        bench_hist_record(i % 3 ? a : b, v);
        bench_hist_record(all, v);
    }
    bench_hist_merge(a, b);
    bench_hist_merge(a, empty);
    assert_int_equal(a->count, all->count);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    assert_memory_equal(a->bucket, all->bucket, sizeof(a->bucket));
    assert_int_equal(bench_hist_percentile(a, 99), bench_hist_percentile(all, 99));
    /* merging into an empty histogram copies min and max */
    bench_hist_merge(empty, all);
    assert_int_equal(empty->min, all->min);
    assert_int_equal(empty->max, all->max);
    free(a);
    free(b);
    free(all);
    free(empty);
}

/* Huge values are clamped, not out of range. */
static void
test_clamp(void **state)
{
    (void)state;
    struct bench_hist *h = new_hist();
    bench_hist_record(h, UINT64_MAX);
    assert_int_equal(h->max, (uint64_t)INT64_MAX);
    assert_int_equal(bench_hist_percentile(h, 50), (uint64_t)INT64_MAX);
    free(h);
}

/* Zipf: frequencies of the top ranks follow 1/k^s within sampling error,
 * every draw is in range, and s = 1 (the singular case of the formulas)
 * works as well as s != 1. */
static void
check_zipf(uint64_t n, double s)
{
    struct bench_zipf z;
    struct bench_rng r;
    assert_int_equal(bench_zipf_init(&z, n, s), 0);
    bench_rng_seed(&r, 7);
    double norm = 0;
    for (uint64_t k = 1; k <= n; k++) {
        norm += pow((double)k, -s);
    }
    const int draws = 400000;
    uint64_t counts[6] = { 0 };
    for (int i = 0; i < draws; i++) {
        uint64_t k = bench_zipf_next(&z, &r);
        assert_true(k >= 1 && k <= n);
        if (k <= 5) {
            counts[k]++;
        }
    }
    for (uint64_t k = 1; k <= 5 && k <= n; k++) {
        double expect = draws * pow((double)k, -s) / norm;
        double sigma = sqrt(expect);
        assert_true(fabs((double)counts[k] - expect) < 5 * sigma + 1);
    }
}

static void
test_zipf(void **state)
{
    (void)state;
    check_zipf(1000, 0.99);
    check_zipf(1000, 1.0);
    check_zipf(100000, 0.8);
    check_zipf(50, 1.5);
    check_zipf(1, 1.2);
    struct bench_zipf z;
    assert_int_equal(bench_zipf_init(&z, 0, 1.0), -1);
    assert_int_equal(bench_zipf_init(&z, 10, 0.0), -1);
    assert_int_equal(bench_zipf_init(&z, 10, -1.0), -1);
}

static void
test_rng_below(void **state)
{
    (void)state;
    struct bench_rng r;
    bench_rng_seed(&r, 0);
    uint64_t counts[10] = { 0 };
    for (int i = 0; i < 100000; i++) {
        uint64_t v = bench_rng_below(&r, 10);
        assert_true(v < 10);
        counts[v]++;
    }
    for (int i = 0; i < 10; i++) {
        assert_true(counts[i] > 9500 && counts[i] < 10500);
    }
    double d = bench_rng_double(&r);
    assert_true(d >= 0.0 && d < 1.0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_ranges),
        cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_percentile_accuracy),
        cmocka_unit_test(test_tail),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_clamp),
        cmocka_unit_test(test_zipf),
        cmocka_unit_test(test_rng_below),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
