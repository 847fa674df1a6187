/*
 * test_load.c -- persist/load.h: state-based records applied to a store
 * passed in (not the server's), one at a time and through the bulk loader
 * with 0, 1 and 3 applier threads, which must all give the same keyspace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "persist/load.h"
#include "store/store.h"
#include "util/clock.h"

static struct wal_rec
rec_set(const char *k, const char *v, int64_t expire)
{
    return (struct wal_rec){.type = WAL_REC_SET, .key = k, .klen = strlen(k), .val = v,
                            .vlen = strlen(v), .expire_at_ms = expire};
}

static struct wal_rec
rec_del(const char *k)
{
    return (struct wal_rec){.type = WAL_REC_DEL, .key = k, .klen = strlen(k)};
}

static struct wal_rec
rec_expire(const char *k, int64_t expire)
{
    return (struct wal_rec){.type = WAL_REC_EXPIRE, .key = k, .klen = strlen(k),
                            .expire_at_ms = expire};
}

/* The value of key in st as "value/expiry", or NULL (static buffer). */
static const char *
get(struct store *st, const char *key)
{
    static char out[256];
    struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
    struct item *it = shard_find(sh, key, strlen(key), 0);
    const char *r = NULL;
    if (it) {
        snprintf(out, sizeof(out), "%.*s/%lld", (int)item_vlen(it), item_cval(it),
                 (long long)item_expire(it));
        r = out;
    }
    shard_unlock(sh);
    return r;
}

static void
test_apply_one(void **state)
{
    (void)state;
    struct store *st = store_create(4, 0, STORE_LRU);
    int64_t later = clock_ms() + 3600 * 1000;
    struct wal_rec r = rec_set("a", "1", 0);
    load_apply(st, &r);
    r = rec_set("a", "22", later); /* replaces */
    load_apply(st, &r);
    char want[64];
    snprintf(want, sizeof(want), "22/%lld", (long long)later);
    assert_string_equal(get(st, "a"), want);
    r = rec_expire("a", 0); /* PERSIST */
    load_apply(st, &r);
    assert_string_equal(get(st, "a"), "22/0");
    r = rec_expire("nokey", later); /* no key: nothing */
    load_apply(st, &r);
    assert_null(get(st, "nokey"));
    r = rec_set("b", "", 0); /* empty value */
    load_apply(st, &r);
    assert_string_equal(get(st, "b"), "/0");
    r = rec_del("a");
    load_apply(st, &r);
    load_apply(st, &r); /* twice: still nothing */
    assert_null(get(st, "a"));
    assert_int_equal(store_count(st), 1);
    r = (struct wal_rec){.type = WAL_REC_FLUSHALL};
    load_apply(st, &r);
    assert_int_equal(store_count(st), 0);
    /* the value need not follow the key in memory */
    char key[] = "kk", val[] = "vv";
    r = (struct wal_rec){.type = WAL_REC_SET, .key = key, .klen = 2, .val = val, .vlen = 2};
    load_apply(st, &r);
    assert_string_equal(get(st, "kk"), "vv/0");
    store_destroy(&st);
}

/* A deterministic stream of records over 2,000 keys, a FLUSHALL in the
 * middle; the same through every loader. */
static void
feed(struct loader *l, unsigned seed, int64_t later)
{
    char k[32], v[64];
    uint64_t x = seed;
    for (int i = 0; i < 30000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        unsigned key = (unsigned)(x >> 33) % 2000, op = (unsigned)(x >> 20) % 10;
        snprintf(k, sizeof(k), "key:%u", key);
        struct wal_rec r;
        if (op < 6) {
            snprintf(v, sizeof(v), "v%d-%u", i, (unsigned)(x >> 40) % 1000);
            r = rec_set(k, v, op == 5 ? later + i : 0);
        } else if (op < 8) {
            r = rec_del(k);
        } else {
            r = rec_expire(k, op == 8 ? 0 : later + 2 * i);
        }
        loader_add(l, &r);
        if (i == 12000) {
            r = (struct wal_rec){.type = WAL_REC_FLUSHALL};
            loader_add(l, &r);
        }
    }
}

static void
test_loader_threads_agree(void **state)
{
    (void)state;
    int64_t later = clock_ms() + 3600 * 1000; /* the same in every feed */
    struct store *ref = store_create(8, 0, STORE_LRU);
    struct loader *l = loader_create(ref, 0);
    feed(l, 7, later);
    loader_destroy(&l);
    assert_null(l);
    size_t n = store_count(ref);
    assert_true(n > 500);
    for (unsigned threads = 1; threads <= 3; threads += 2) {
        struct store *st = store_create(8, 0, STORE_LRU);
        l = loader_create(st, threads);
        feed(l, 7, later);
        loader_drain(l);
        assert_int_equal(store_count(st), n);
        loader_destroy(&l);
        char k[32];
        for (unsigned key = 0; key < 2000; key++) {
            snprintf(k, sizeof(k), "key:%u", key);
            const char *a = get(ref, k);
            char *want = a ? strdup(a) : NULL;
            const char *b = get(st, k);
            if (want == NULL) {
                assert_null(b);
            } else {
                assert_non_null(b);
                assert_string_equal(b, want);
            }
            free(want);
        }
        store_destroy(&st);
    }
    store_destroy(&ref);
    loader_destroy(&l); /* NULL is fine */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_one),
        cmocka_unit_test(test_loader_threads_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
