/*
 * test_wal_bench.c -- recovery micro-benchmark (prints figures, asserts only
 * correctness, never timing).
 *
 *   CRAB_BENCH_KEYS=1000000 build/.../tests/test_wal_bench
 *
 * Default 200000 keys so the ctest run stays short. For each source it
 * writes N distinct keys (16-byte key, 32-byte value), then times
 * persist_recover() twice: with a callback that only counts (the cost of
 * recovery itself), and into a simple hash table that mallocs one item per
 * key (a stand-in for the store; the first fill of a fresh heap is the
 * slowest, as after a real restart):
 *   1. WAL only (N SET records);
 *   2. snapshot only (the same N keys, the log compacted away);
 *   3. snapshot of N keys + a WAL tail of N/10 overwrites.
 * Run it from a Release build for meaningful numbers (ASan doubles them).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "persist/persist.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

struct item {
    uint32_t klen, vlen;
    int64_t exp;
    char data[];
};

struct table {
    struct item **slot;
    uint64_t *hash;
    size_t cap, n;
};

static void
table_init(struct table *t, size_t expect)
{
    t->cap = 1;
    while (t->cap < expect * 2) {
        t->cap <<= 1;
    }
    t->slot = xcalloc(t->cap, sizeof(*t->slot));
    t->hash = xcalloc(t->cap, sizeof(*t->hash));
    t->n = 0;
}

static void
table_free(struct table *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slot[i]);
    }
    free(t->slot);
    free(t->hash);
}

static size_t
table_find(struct table *t, const void *key, size_t klen, uint64_t h)
{
    size_t i = h & (t->cap - 1);
    while (t->slot[i] != NULL) {
        if (t->hash[i] == h && t->slot[i]->klen == klen &&
            memcmp(t->slot[i]->data, key, klen) == 0) {
            return i;
        }
        i = (i + 1) & (t->cap - 1);
    }
    return i;
}

static int
table_apply(void *ctx, const struct wal_rec *r)
{
    struct table *t = ctx;
    if (r->type == WAL_REC_FLUSHALL) {
        return 0;
    }
    uint64_t h = XXH3_64bits(r->key, r->klen);
    size_t i = table_find(t, r->key, r->klen, h);
    if (r->type == WAL_REC_SET) {
        struct item *it = xmalloc(sizeof(*it) + r->klen + r->vlen);
        it->klen = (uint32_t)r->klen;
        it->vlen = (uint32_t)r->vlen;
        it->exp = r->expire_at_ms;
        memcpy(it->data, r->key, r->klen);
        memcpy(it->data + r->klen, r->val, r->vlen);
        if (t->slot[i] == NULL) {
            t->n++;
        }
        free(t->slot[i]);
        t->slot[i] = it;
        t->hash[i] = h;
    }
    return 0; /* DEL/EXPIRE are not used by this benchmark */
}

static int
table_iter(void *ctx, struct snap_sink *sink)
{
    struct table *t = ctx;
    for (size_t i = 0; i < t->cap; i++) {
        struct item *it = t->slot[i];
        if (it != NULL) {
            int rc = snap_sink_add(sink, it->data, it->klen, it->data + it->klen, it->vlen,
                                   it->exp);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

static int
count_apply(void *ctx, const struct wal_rec *r)
{
    (void)r;
    (*(size_t *)ctx)++;
    return 0;
}

/* Time recovery alone (a counting callback), then into the table. */
static void
recover_timed(const char *dir, const char *what, size_t nkeys, size_t napplied,
              struct table *out)
{
    struct persist_report rep;
    size_t count = 0;
    int64_t t0 = clock_mono_us();
    assert_int_equal(persist_recover(dir, count_apply, &count, NULL, &rep), 0);
    int64_t us0 = clock_mono_us() - t0;
    assert_int_equal(count, napplied);
    table_init(out, nkeys);
    t0 = clock_mono_us();
    assert_int_equal(persist_recover(dir, table_apply, out, NULL, &rep), 0);
    int64_t us = clock_mono_us() - t0;
    print_message("%-24s %8zu keys %6.1f MB: recovery alone %7.1f ms, into a hash table "
                  "%7.1f ms\n", what, out->n, (double)rep.bytes_read / 1e6, us0 / 1000.0,
                  us / 1000.0);
    assert_int_equal(out->n, nkeys);
}

static void
test_recovery_bench(void **state)
{
    (void)state;
    size_t n = 200000;
    const char *env = getenv("CRAB_BENCH_KEYS");
    if (env != NULL && atol(env) > 0) {
        n = (size_t)atol(env);
    }
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/crab-bench-XXXXXX");
    assert_non_null(mkdtemp(dir));

    /* 1. WAL only */
    struct wal_opts o;
    wal_opts_init(&o);
    o.dir = dir;
    o.sync = WAL_SYNC_NONE;
    struct wal *w;
    assert_int_equal(wal_open(&o, &w), 0);
    char key[32], val[33];
    memset(val, 'v', 32);
    int64_t t0 = clock_mono_us();
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key:%011zu", i);
        struct wal_rec r = { .type = WAL_REC_SET, .key = key, .klen = 16, .val = val, .vlen = 32 };
        assert_true(wal_append(w, &r) > 0);
    }
    wal_close(&w);
    print_message("append + write %zu records: %.1f ms\n", n,
                  (clock_mono_us() - t0) / 1000.0);
    struct table t;
    recover_timed(dir, "WAL only", n, n, &t);

    /* 2. snapshot only: snapshot, then drop the log */
    struct snap_info si;
    t0 = clock_mono_us();
    assert_int_equal(snap_write(dir, n, table_iter, &t, &si), 0);
    print_message("snapshot write %zu keys: %.1f ms, %.1f MB\n", n,
                  (clock_mono_us() - t0) / 1000.0, (double)si.bytes / 1e6);
    o.start_lsn = n + 1;
    assert_int_equal(wal_open(&o, &w), 0);
    assert_true(wal_remove_below(w, n, NULL) >= 1);
    wal_close(&w);
    table_free(&t);
    recover_timed(dir, "snapshot only", n, n, &t);
    table_free(&t);

    /* 3. snapshot + a log tail */
    o.start_lsn = n + 1;
    assert_int_equal(wal_open(&o, &w), 0);
    for (size_t i = 0; i < n / 10; i++) {
        snprintf(key, sizeof(key), "key:%011zu", i * 7 % n);
        struct wal_rec r = { .type = WAL_REC_SET, .key = key, .klen = 16, .val = val, .vlen = 32 };
        assert_true(wal_append(w, &r) > 0);
    }
    wal_close(&w);
    recover_timed(dir, "snapshot + 10% WAL tail", n, n + n / 10, &t);
    table_free(&t);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    log_setup(LOG_WARN, true, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovery_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
