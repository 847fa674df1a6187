/*
 * test_tstats.c -- the per-thread latency histograms of core/tstats.c
 * (bucket arithmetic, quantiles, merging the blocks of several threads,
 * reset) and the slow log ring of cmd/slowlog.c (order, ids, cut arguments,
 * resizing, Redis's reply shape).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "cmd/slowlog.h"
#include "cmd/tstats.h"
#include "core/server.h"

/* ---- bucket arithmetic ---- */

static void
test_hist_buckets_cover_every_value(void **state)
{
    (void)state;
    assert_int_equal(tstats_hist_lower(0), 0);
    for (unsigned i = 0; i + 1 < TSTATS_HIST_BUCKETS; i++) {
        assert_true(tstats_hist_lower(i) < tstats_hist_upper(i));
        assert_int_equal(tstats_hist_upper(i), tstats_hist_lower(i + 1));
    }
    /* every value falls in the bucket whose bounds hold it */
    for (uint64_t v = 0; v < 5000; v++) {
        unsigned b = tstats_hist_index(v);
        assert_true(tstats_hist_lower(b) <= v && v < tstats_hist_upper(b));
    }
    for (unsigned k = 3; k < TSTATS_HIST_MAX_LOG2; k++) {
        uint64_t p = (uint64_t)1 << k;
        uint64_t probes[] = {p - 1, p, p + 1, p + p / 3, 2 * p - 1};
        for (size_t j = 0; j < sizeof(probes) / sizeof(probes[0]); j++) {
            unsigned b = tstats_hist_index(probes[j]);
            assert_true(tstats_hist_lower(b) <= probes[j] && probes[j] < tstats_hist_upper(b));
            /* width at most 1/8 of the lower bound: the precision promised */
            assert_true((tstats_hist_upper(b) - tstats_hist_lower(b)) * 8 <=
                        (tstats_hist_lower(b) < 8 ? 8 : tstats_hist_lower(b)));
        }
        /* powers of two are bucket boundaries (what /metrics exports) */
        assert_int_equal(tstats_hist_lower(tstats_hist_index(p)), p);
    }
    /* huge values are clamped into the last bucket */
    assert_int_equal(tstats_hist_index(UINT64_MAX), TSTATS_HIST_BUCKETS - 1);
    assert_int_equal(tstats_hist_index((uint64_t)1 << 40), TSTATS_HIST_BUCKETS - 1);
}

static void
test_hist_quantiles(void **state)
{
    (void)state;
    uint64_t h[TSTATS_HIST_BUCKETS];
    memset(h, 0, sizeof(h));
    assert_true(tstats_hist_quantile(h, 0.5) == 0.0);
    for (uint64_t v = 1; v <= 100000; v++) {
        h[tstats_hist_index(v)]++;
    }
    assert_int_equal(tstats_hist_count(h), 100000);
    double want[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        double q = tstats_hist_quantile(h, want[i]);
        double exact = want[i] * 100000;
        assert_true(q > exact * 0.875 && q < exact * 1.125);
    }
    assert_true(tstats_hist_quantile(h, 0.5) <= tstats_hist_quantile(h, 0.99));
    /* one value: every quantile lies within its bucket */
    memset(h, 0, sizeof(h));
    h[tstats_hist_index(300)] = 1;
    double q = tstats_hist_quantile(h, 0.5);
    assert_true(q >= 288 && q <= 320);
}

/* ---- merging threads ---- */

struct worker_arg {
    unsigned cmd;
    uint64_t usec;
    unsigned n;
};

static void *
worker(void *p)
{
    struct worker_arg *a = p;
    struct tstats *ts = tstats_self();
    for (unsigned i = 0; i < a->n; i++) {
        tstats_record_latency(ts, a->cmd, a->usec);
        ts->cmd[a->cmd].calls++;
        ts->hits++;
    }
    return NULL;
}

static void
test_hist_merge_threads_and_reset(void **state)
{
    (void)state;
    struct worker_arg args[3] = {{0, 5, 1000}, {0, 5000, 10}, {1, 70, 500}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
    }
    uint64_t h[TSTATS_HIST_BUCKETS];
    tstats_hist_sum(0, h);
    assert_int_equal(tstats_hist_count(h), 1010);
    assert_int_equal(h[tstats_hist_index(5)], 1000);
    assert_int_equal(h[tstats_hist_index(5000)], 10);
    tstats_hist_sum(-1, h);
    assert_int_equal(tstats_hist_count(h), 1510);

    uint64_t (*all)[TSTATS_HIST_BUCKETS] = malloc(sizeof(*all) * CMD_COUNT);
    tstats_hist_sum_all(all);
    assert_int_equal(tstats_hist_count(all[1]), 500);
    assert_int_equal(all[1][tstats_hist_index(70)], 500);
    free(all);

    struct tstats sum;
    tstats_sum(&sum);
    assert_int_equal(sum.hits, 1510);
    assert_int_equal(sum.cmd[0].calls, 1010);
    assert_null(sum.lat);

    /* blocks are cache-line aligned: threads never share a written line */
    assert_int_equal((uintptr_t)tstats_self() % 64, 0);
    assert_int_equal((uintptr_t)tstats_self()->lat % 64, 0);

    tstats_reset_all();
    tstats_hist_sum(-1, h);
    assert_int_equal(tstats_hist_count(h), 0);
    tstats_sum(&sum);
    assert_int_equal(sum.hits, 0);
    assert_int_equal(sum.cmd[0].calls, 0);
}

static void
test_rejected_reasons(void **state)
{
    (void)state;
    uint64_t before = atomic_load(&server.conns_rejected);
    server_count_rejected(SERVER_REJECT_PROTECTED);
    server_count_rejected(SERVER_REJECT_MAXCLIENTS);
    server_count_rejected(SERVER_REJECT_MAXCLIENTS);
    assert_int_equal(atomic_load(&server.conns_rejected), before + 3);
    assert_int_equal(atomic_load(&server.conns_rejected_by[SERVER_REJECT_MAXCLIENTS]), 2);
    assert_string_equal(server_reject_name(SERVER_REJECT_PROTECTED), "protected_mode");
    assert_string_equal(server_reject_name(SERVER_REJECT_COUNT), "other");
}

/* ---- slow log ---- */

static struct client *
fake_client(const char *name)
{
    static struct client c;
    memset(&c, 0, sizeof(c));
    snprintf(c.addr, sizeof(c.addr), "127.0.0.1:4242");
    c.name = (char *)name;
    return &c;
}

static void
add(const char *cmd, int64_t usec)
{
    struct proto_arg a[2] = {{cmd, strlen(cmd)}, {"k", 1}};
    slowlog_add(fake_client("me"), 2, a, usec);
}

static size_t
reply_of(long long n, char *out, size_t len)
{
    struct buf b;
    buf_init(&b);
    struct reply r = {&b, REPLY_RESP2};
    slowlog_reply(&r, n);
    size_t got = b.len < len - 1 ? b.len : len - 1;
    memcpy(out, b.data, got);
    out[got] = '\0';
    buf_deinit(&b);
    return got;
}

static void
test_slowlog_ring(void **state)
{
    (void)state;
    slowlog_reset();
    slowlog_set_max_len(SLOWLOG_DEFAULT_MAX_LEN);
    assert_int_equal(slowlog_threshold(), SLOWLOG_DEFAULT_THRESHOLD);
    add("first", 11000);
    add("second", 12000);
    add("third", 13000);
    assert_int_equal(slowlog_len(), 3);

    char out[4096];
    reply_of(1, out, sizeof(out));
    /* [[id, time, usec, [args], addr, name]]; newest first */
    assert_non_null(strstr(out, "*1\r\n*6\r\n:"));
    assert_non_null(strstr(out, ":13000\r\n*2\r\n$5\r\nthird\r\n$1\r\nk\r\n"
                                "$14\r\n127.0.0.1:4242\r\n$2\r\nme\r\n"));
    assert_null(strstr(out, "second"));

    /* shrinking keeps the newest */
    slowlog_set_max_len(2);
    assert_int_equal(slowlog_len(), 2);
    reply_of(-1, out, sizeof(out));
    assert_non_null(strstr(out, "third"));
    assert_non_null(strstr(out, "second"));
    assert_null(strstr(out, "first"));
    add("fourth", 14000);
    assert_int_equal(slowlog_len(), 2);
    reply_of(-1, out, sizeof(out));
    assert_true(strstr(out, "fourth") < strstr(out, "third"));

    /* growing keeps everything, ids keep counting after a reset */
    slowlog_set_max_len(10);
    assert_int_equal(slowlog_len(), 2);
    slowlog_reset();
    assert_int_equal(slowlog_len(), 0);
    add("fifth", 15000);
    reply_of(-1, out, sizeof(out));
    assert_non_null(strstr(out, "*1\r\n*6\r\n:4\r\n")); /* the fifth entry has id 4 */

    /* long arguments are cut as Redis cuts them */
    char big[300];
    memset(big, 'x', sizeof(big));
    struct proto_arg a[2] = {{"set", 3}, {big, sizeof(big)}};
    slowlog_add(fake_client(NULL), 2, a, 20000);
    reply_of(1, out, sizeof(out));
    assert_non_null(strstr(out, "... (172 more bytes)"));
    assert_non_null(strstr(out, "$0\r\n\r\n")); /* no client name */

    slowlog_set_max_len(0);
    add("dropped", 1);
    assert_int_equal(slowlog_len(), 0);
    slowlog_set_max_len(SLOWLOG_DEFAULT_MAX_LEN);
    slowlog_set_threshold(-1);
    assert_int_equal(slowlog_threshold(), -1);
    slowlog_set_threshold(SLOWLOG_DEFAULT_THRESHOLD);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets_cover_every_value),
        cmocka_unit_test(test_hist_quantiles),
        cmocka_unit_test(test_hist_merge_threads_and_reset),
        cmocka_unit_test(test_rejected_reasons),
        cmocka_unit_test(test_slowlog_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
