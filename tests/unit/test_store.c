/*
 * test_store.c -- the hash table (incremental rehash, scan), slots (CRC16,
 * hash tags), the sharded store (put/find/delete, memory accounting,
 * expiry: lazy and active, per-slot counts and visits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/ht.h"
#include "store/slot.h"
#include "store/store.h"

static struct item *
mk(const char *key, const char *val)
{
    struct item *it = item_create(key, strlen(key), strlen(val));
    memcpy(item_val(it), val, strlen(val));
    return it;
}

static void
free_it(struct item *it, void *ctx)
{
    (void)ctx;
    item_free(it);
}

/* ---- slots ---- */

static void
test_slot_known_values(void **state)
{
    (void)state;
    /* Values from the Redis Cluster specification and CLUSTER KEYSLOT. */
    assert_int_equal(slot_crc16("123456789", 9), 0x31C3);
    assert_int_equal(slot_of("foo", 3), 12182);
    assert_int_equal(slot_of("bar", 3), 5061);
    assert_int_equal(slot_of("hello", 5), 866);
    assert_int_equal(slot_of("", 0), 0);
}

/* Bit-at-a-time CRC16-XMODEM, the definition, against the table version. */
static uint16_t
crc16_bitwise(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

static void
test_slot_crc_matches_definition(void **state)
{
    (void)state;
    unsigned char buf[64];
    uint32_t x = 12345;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)round % sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (unsigned char)(x >> 16);
        }
        assert_int_equal(slot_crc16((const char *)buf, n), crc16_bitwise(buf, n));
    }
}

static void
test_slot_hash_tags(void **state)
{
    (void)state;
    assert_int_equal(slot_of("{user1000}.following", 21), slot_of("user1000", 8));
    assert_int_equal(slot_of("{user1000}.followers", 21), slot_of("user1000", 8));
    /* empty tag: whole key hashed */
    assert_int_equal(slot_of("foo{}{bar}", 10), slot_crc16("foo{}{bar}", 10) & 16383);
    /* only the first { counts */
    assert_int_equal(slot_of("foo{{bar}}zap", 13), slot_of("{bar", 4));
    assert_int_equal(slot_of("foo{bar}{zap}", 13), slot_of("bar", 3));
    /* no closing brace */
    assert_int_equal(slot_of("foo{bar", 7), slot_crc16("foo{bar", 7) & 16383);
}

/* ---- hash table ---- */

static void
test_ht_grow_and_find(void **state)
{
    (void)state;
    struct ht h;
    ht_init(&h);
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        struct item *it = mk(key, "v");
        ht_insert(&h, it, ht_hash(key, strlen(key)));
        /* every key inserted so far is findable, also mid-rehash */
        if (i % 997 == 0) {
            for (int j = 0; j <= i; j += 7) {
                snprintf(key, sizeof(key), "key:%d", j);
                assert_non_null(ht_find(&h, key, strlen(key), ht_hash(key, strlen(key))));
            }
        }
    }
    assert_int_equal(ht_count(&h), 10000);
    while (ht_rehash(&h, 100)) {
    }
    assert_true(h.size[0] >= 10000);
    assert_null(ht_find(&h, "nope", 4, ht_hash("nope", 4)));
    ht_clear(&h, free_it, NULL);
    assert_int_equal(ht_count(&h), 0);
}

static void
test_ht_replace_remove(void **state)
{
    (void)state;
    struct ht h;
    ht_init(&h);
    struct item *a = mk("k", "1");
    uint64_t hk = ht_hash("k", 1);
    assert_null(ht_replace(&h, a, hk));
    struct item *b = mk("k", "2");
    assert_ptr_equal(ht_replace(&h, b, hk), a);
    item_free(a);
    assert_int_equal(ht_count(&h), 1);
    assert_ptr_equal(ht_find(&h, "k", 1, hk), b);
    assert_ptr_equal(ht_remove(&h, "k", 1, hk), b);
    item_free(b);
    assert_null(ht_remove(&h, "k", 1, hk));
    assert_int_equal(ht_count(&h), 0);
    ht_deinit(&h);
}

struct seen {
    unsigned char *bits;
    size_t visits;
};

static void
mark_seen(struct item *it, void *ctx)
{
    struct seen *s = ctx;
    int i = atoi(item_key(it) + 4);
    s->bits[i] = 1;
    s->visits++;
}

/* SCAN visits every item present for the whole scan, even when the table
 * grows or shrinks between calls. */
static void
test_ht_scan_during_resize(void **state)
{
    (void)state;
    struct ht h;
    ht_init(&h);
    char key[32];
    enum { N = 5000 };
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        ht_insert(&h, mk(key, "v"), ht_hash(key, strlen(key)));
    }
    while (ht_rehash(&h, 1000)) {
    }
    struct seen s = {calloc(N * 2, 1), 0};
    size_t cursor = 0;
    int step = 0;
    do {
        cursor = ht_scan(&h, cursor, mark_seen, &s);
        /* grow in the middle of the scan */
        if (step++ == 50) {
            for (int i = N; i < 2 * N; i++) {
                snprintf(key, sizeof(key), "key:%d", i);
                ht_insert(&h, mk(key, "v"), ht_hash(key, strlen(key)));
            }
        }
    } while (cursor != 0);
    for (int i = 0; i < N; i++) {
        assert_true(s.bits[i]);
    }
    /* shrink in the middle of a second scan */
    for (int i = 100; i < 2 * N; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        item_free(ht_remove(&h, key, strlen(key), ht_hash(key, strlen(key))));
    }
    memset(s.bits, 0, N * 2);
    cursor = 0;
    step = 0;
    do {
        cursor = ht_scan(&h, cursor, mark_seen, &s);
        if (step++ == 3) {
            ht_maybe_shrink(&h);
            ht_rehash(&h, 5);
        }
    } while (cursor != 0);
    for (int i = 0; i < 100; i++) {
        assert_true(s.bits[i]);
    }
    free(s.bits);
    ht_clear(&h, free_it, NULL);
}

/* ---- store ---- */

static void
test_store_put_find_delete_memory(void **state)
{
    (void)state;
    struct store *st = store_create(8, 0, STORE_NOEVICTION);
    assert_int_equal(st->nshards, 8);
    assert_int_equal(store_used_memory(st), 0);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "key:%012d", i);
        struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
        shard_put(sh, mk(key, "0123456789"));
        shard_unlock(sh);
    }
    assert_int_equal(store_count(st), 1000);
    size_t used = store_memory_exact(st);
    /* at least the payload, and not absurdly more */
    assert_true(used >= 1000 * (16 + 10));
    assert_true(used < 1000 * 200);
    for (int i = 0; i < 1000; i += 2) {
        snprintf(key, sizeof(key), "key:%012d", i);
        struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
        assert_true(shard_delete(sh, key, strlen(key), 0));
        assert_false(shard_delete(sh, key, strlen(key), 0));
        shard_unlock(sh);
    }
    assert_int_equal(store_count(st), 500);
    assert_true(store_memory_exact(st) < used);
    assert_true(store_used_memory(st) <= store_memory_exact(st) + st->nshards * st->mem_step);
    store_flush(st);
    assert_int_equal(store_count(st), 0);
    /* after a flush nothing is accounted but (possibly) nothing */
    assert_int_equal(store_used_memory(st), 0);
    store_destroy(&st);
    assert_null(st);
}

static void
test_store_lazy_expiry(void **state)
{
    (void)state;
    struct store *st = store_create(4, 0, STORE_NOEVICTION);
    struct shard *sh = shard_lock(st, store_shard_of(st, "k", 1));
    struct item *it = mk("k", "v");
    it->expire = 1000;
    shard_put(sh, it);
    assert_int_equal(sh->nexpires, 1);
    assert_non_null(shard_find(sh, "k", 1, 999));
    assert_null(shard_find(sh, "k", 1, 1000));
    assert_int_equal(sh->nexpires, 0);
    assert_int_equal(sh->expired, 1);
    shard_unlock(sh);
    assert_int_equal(store_count(st), 0);
    store_destroy(&st);
}

static void
test_store_active_expiry(void **state)
{
    (void)state;
    struct store *st = store_create(4, 0, STORE_NOEVICTION);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
        struct item *it = mk(key, "v");
        it->expire = (i % 2) ? 500 : 0; /* half expire at t=500 */
        shard_put(sh, it);
        shard_unlock(sh);
    }
    assert_int_equal(store_expires_count(st), 2500);
    /* before the deadline nothing goes */
    size_t gone = 0;
    for (unsigned s = 0; s < st->nshards; s++) {
        gone += store_cron(st, s, 1000000, 499);
    }
    assert_int_equal(gone, 0);
    /* after it, a full pass reclaims every expired key without touching them */
    for (unsigned s = 0; s < st->nshards; s++) {
        while (st->shards[s].nexpires > 0) {
            gone += store_cron(st, s, 10, 501);
        }
    }
    assert_int_equal(gone, 2500);
    assert_int_equal(store_count(st), 2500);
    assert_int_equal(store_expired_total(st), 2500);
    store_destroy(&st);
}

static void
count_visit(struct item *it, void *ctx)
{
    (void)it;
    (*(size_t *)ctx)++;
}

static void
test_store_slots(void **state)
{
    (void)state;
    struct store *st = store_create(16, 0, STORE_NOEVICTION);
    char key[64];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "{tag}:%d", i);
        struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
        shard_put(sh, mk(key, "v"));
        shard_unlock(sh);
        snprintf(key, sizeof(key), "other:%d", i);
        sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
        shard_put(sh, mk(key, "v"));
        shard_unlock(sh);
    }
    unsigned slot = slot_of("tag", 3);
    assert_true(store_slot_count(st, slot) >= 300);
    size_t visited = 0;
    store_slot_visit(st, slot, count_visit, &visited);
    assert_int_equal(visited, store_slot_count(st, slot));
    size_t total = 0;
    for (unsigned s = 0; s < SLOT_COUNT; s++) {
        total += store_slot_count(st, s);
    }
    assert_int_equal(total, 600);
    store_flush(st);
    assert_int_equal(store_slot_count(st, slot), 0);
    store_destroy(&st);
}

static void
test_store_scan_all_shards(void **state)
{
    (void)state;
    struct store *st = store_create(8, 0, STORE_NOEVICTION);
    enum { N = 2000 };
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
        shard_put(sh, mk(key, "v"));
        shard_unlock(sh);
    }
    struct seen s = {calloc(N, 1), 0};
    uint64_t cursor = 0;
    do {
        cursor = store_scan(st, cursor, mark_seen, &s);
    } while (cursor != 0);
    for (int i = 0; i < N; i++) {
        assert_true(s.bits[i]);
    }
    free(s.bits);
    char *k;
    size_t kl;
    assert_true(store_random_key(st, &k, &kl, 1));
    assert_true(kl > 4 && memcmp(k, "key:", 4) == 0);
    free(k);
    store_destroy(&st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_known_values),
        cmocka_unit_test(test_slot_hash_tags),
        cmocka_unit_test(test_slot_crc_matches_definition),
        cmocka_unit_test(test_ht_grow_and_find),
        cmocka_unit_test(test_ht_replace_remove),
        cmocka_unit_test(test_ht_scan_during_resize),
        cmocka_unit_test(test_store_put_find_delete_memory),
        cmocka_unit_test(test_store_lazy_expiry),
        cmocka_unit_test(test_store_active_expiry),
        cmocka_unit_test(test_store_slots),
        cmocka_unit_test(test_store_scan_all_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
