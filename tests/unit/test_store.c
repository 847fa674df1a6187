/*
 * test_store.c -- slots (CRC16, hash tags) and the sharded store
 * (put/find/delete, item layouts, memory accounting, expiry: lazy and
 * active, per-slot counts and visits). The index has test_ht.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "store/ht.h"
#include "store/slot.h"
#include "store/store.h"
/* a white-box test of the store: it reads struct shard (private to src/store/) */
#include "store/store_int.h"

/* An item for a store shard (lock held), in that shard's memory. */
static struct item *
mk_in(struct shard *sh, const char *key, const char *val, int64_t expire)
{
    struct item *it = shard_new_item(sh, key, strlen(key), strlen(val), expire);
    memcpy(item_val(it), val, strlen(val));
    return it;
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
        shard_put(sh, mk_in(sh, key, "0123456789", 0));
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
    shard_put(sh, mk_in(sh, "k", "v", 1000));
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
        shard_put(sh, mk_in(sh, key, "v", (i % 2) ? 500 : 0)); /* half expire at t=500 */
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

/* item_free_mem, and item_free_weighed given item_mem (as the store frees
 * an evicted item with the policy's weight), give back exactly what
 * item_mem says an item holds, for every layout (small, wide, with an
 * expiry field, medium classes, large), and the slab's chunk bytes go back
 * to where they were. item_mem is the class of item_chunk_size for a
 * chunk item. */
static void
test_item_free_mem(void **state)
{
    (void)state;
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    static const size_t klens[] = {1, 16, 300};
    static const size_t vlens[] = {0, 10, 256, 1000, 5000, 15000, 100000};
    const size_t nv = sizeof(vlens) / sizeof(vlens[0]);
    char key[300];
    memset(key, 'k', sizeof(key));
    for (size_t a = 0; a < 3; a++) {
        for (size_t b = 0; b < nv; b++) {
            for (int exp = 0; exp < 2; exp++) {
                size_t before = s.chunk_bytes;
                struct item *it = item_new(&s, key, klens[a], vlens[b], exp ? 99 : 0, exp);
                struct item *it2 = item_new(&s, key, klens[a], vlens[b], exp ? 99 : 0, exp);
                size_t m = item_mem(it);
                assert_true(m >= klens[a] + vlens[b]);
                if (!(ITEM_FLAGS(it) & ITEM_LARGE)) {
                    assert_int_equal(m, slab_class_size(item_chunk_size(klens[a], vlens[b], exp)));
                }
                assert_int_equal(item_mem(it2), m);
                assert_int_equal(item_free_mem(&s, it), m);
                assert_int_equal(item_free_weighed(&s, it2, m), m);
                assert_int_equal(s.chunk_bytes, before);
            }
        }
    }
    slab_deinit(&s);
}

/* The length field: none when both lengths fit a byte, 1 byte (the value
 * length's high byte) for a key of 1..255 bytes and a value of 256..65,535 in
 * a chunk item, 8 bytes otherwise (empty key, long key, large item). */
static void
test_item_length_field(void **state)
{
    (void)state;
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    static char key[300], val[16384];
    memset(key, 'k', sizeof(key));
    for (size_t i = 0; i < sizeof(val); i++) {
        val[i] = (char)(i * 31 + 7);
    }
    static const struct {
        size_t klen, vlen, ext;
    } cases[] = {
        {16, 255, 0}, {16, 256, 1}, {16, 258, 1}, {1, 300, 1}, {255, 4096, 1}, {16, 15000, 1},
        {0, 256, 8}, {256, 10, 8}, {300, 300, 8}, {16, 16360, 8}, /* 3+8+1+16+16360 > 16384 */
    };
    int in_place = 0;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t kl = cases[c].klen, vl = cases[c].vlen;
        for (int exp = 0; exp < 2; exp++) {
            assert_int_equal(item_chunk_size(kl, vl, exp) >= 3 + (exp ? 8 : 0) + cases[c].ext,
                             true);
            if (3 + 8 + cases[c].ext + kl + vl <= SLAB_MAX_CHUNK) {
                assert_int_equal(item_chunk_size(kl, vl, exp),
                                 3 + (exp ? 8 : 0) + cases[c].ext + kl + vl);
            }
            struct item *it = item_new(&s, key, kl, vl, exp ? 1234 : 0, exp);
            memcpy(item_val(it), val, vl);
            assert_int_equal(item_ext_size(it), cases[c].ext);
            assert_int_equal(item_klen(it), kl);
            assert_int_equal(item_vlen(it), vl);
            assert_memory_equal(item_key(it), key, kl);
            assert_memory_equal(item_cval(it), val, vl);
            assert_int_equal(item_expire(it), exp ? 1234 : 0);
            if (cases[c].ext == 1) {
                /* in place within the form and the class, never across forms */
                size_t nv = vl - 1;
                bool same = nv >= 256 && slab_class_size(item_chunk_size(kl, nv, exp)) ==
                                             slab_class_size(item_chunk_size(kl, vl, exp));
                assert_int_equal(item_fits_in_place(it, nv, 0), same);
                if (same) {
                    item_set_vlen(it, nv);
                    assert_int_equal(item_vlen(it), nv);
                    assert_int_equal(item_klen(it), kl);
                    assert_memory_equal(item_key(it), key, kl);
                    assert_memory_equal(item_cval(it), val, nv);
                    in_place++;
                }
                assert_false(item_fits_in_place(it, 255, 0));
            }
            item_free(&s, it);
        }
    }
    assert_true(in_place > 0); /* {16, 258}: 277 bytes in 278's class */
    slab_deinit(&s);
}

/* Every item layout (short, wide key, wide value, large value, with and
 * without an expiry field) round-trips, survives gaining a TTL (the item
 * moves to a larger chunk) and is accounted exactly. */
static void
test_store_item_layouts(void **state)
{
    (void)state;
    struct store *st = store_create(4, 0, STORE_TINYLFU);
    static const size_t klens[] = {1, 16, 255, 256, 300};
    static const size_t vlens[] = {0, 10, 255, 256, 990, 1000, 2000, 100000};
    char *key = malloc(400), *val = malloc(100000);
    for (size_t a = 0; a < sizeof(klens) / sizeof(klens[0]); a++) {
        for (size_t b = 0; b < sizeof(vlens) / sizeof(vlens[0]); b++) {
            size_t kl = klens[a], vl = vlens[b];
            for (size_t i = 0; i < kl; i++) {
                key[i] = (char)('a' + (i + a + b) % 26);
            }
            for (size_t i = 0; i < vl; i++) {
                val[i] = (char)(i * 7 + b);
            }
            struct shard *sh = shard_lock(st, store_shard_of(st, key, kl));
            struct item *it = shard_new_item(sh, key, kl, vl, 0);
            memcpy(item_val(it), val, vl);
            shard_put(sh, it);
            assert_true(item_mem(it) >= kl + vl);
            it = shard_find(sh, key, kl, 0);
            assert_non_null(it);
            assert_int_equal(item_klen(it), kl);
            assert_int_equal(item_vlen(it), vl);
            assert_memory_equal(item_key(it), key, kl);
            assert_true(vl == 0 || memcmp(item_cval(it), val, vl) == 0);
            assert_int_equal(item_expire(it), 0);
            /* gaining a TTL moves the item; it stays findable, intact */
            it = shard_set_expire(sh, it, 123456);
            assert_int_equal(item_expire(it), 123456);
            assert_ptr_equal(shard_find(sh, key, kl, 0), it);
            assert_int_equal(item_vlen(it), vl);
            assert_true(vl == 0 || memcmp(item_cval(it), val, vl) == 0);
            assert_int_equal(sh->nexpires, 1);
            /* losing it keeps the field */
            assert_ptr_equal(shard_set_expire(sh, it, 0), it);
            assert_int_equal(item_expire(it), 0);
            assert_int_equal(sh->nexpires, 0);
            shard_unlock(sh);
        }
    }
    /* the moves left dead chunks in the policy's queues: the cron's
     * maintenance releases them (they are half of every queue) */
    struct evict_stats es;
    store_evict_stats(st, &es);
    assert_true(es.dead_entries > 0);
    for (int round = 0; round < 4; round++) {
        for (unsigned i = 0; i < st->nshards; i++) {
            store_cron(st, i, 100, 0);
        }
    }
    store_evict_stats(st, &es);
    assert_int_equal(es.dead_entries, 0);
    assert_int_equal(es.count, store_count(st));
    /* the policy's weights are the items' memory, kept exact through moves */
    size_t items_mem = 0;
    for (unsigned i = 0; i < st->nshards; i++) {
        items_mem += st->shards[i].mem - ht_mem(&st->shards[i].ht) - st->shards[i].policy_mem;
    }
    assert_int_equal(es.weight, items_mem);
    /* delete them all: only the tables' memory is left */
    for (size_t a = 0; a < sizeof(klens) / sizeof(klens[0]); a++) {
        for (size_t b = 0; b < sizeof(vlens) / sizeof(vlens[0]); b++) {
            size_t kl = klens[a];
            for (size_t i = 0; i < kl; i++) {
                key[i] = (char)('a' + (i + a + b) % 26);
            }
            struct shard *sh = shard_lock(st, store_shard_of(st, key, kl));
            assert_true(shard_delete(sh, key, kl, 0));
            shard_unlock(sh);
        }
    }
    for (int round = 0; round < 4; round++) {
        for (unsigned i = 0; i < st->nshards; i++) {
            store_cron(st, i, 100, 0);
        }
    }
    for (unsigned i = 0; i < st->nshards; i++) {
        /* the policy's queues and sketch are counted too (by the cron),
         * beyond an empty policy's fixed floor */
        size_t pm = evict_mem(&st->shards[i].policy), floor = st->shards[i].policy_base;
        assert_int_equal(st->shards[i].policy_mem, pm > floor ? pm - floor : 0);
        assert_int_equal(st->shards[i].mem,
                         ht_mem(&st->shards[i].ht) + st->shards[i].policy_mem);
    }
    /* large items freed by a flush too (LeakSanitizer checks) */
    struct shard *sh = shard_lock(st, store_shard_of(st, "big", 3));
    struct item *it = shard_new_item(sh, "big", 3, 50000, 0);
    memset(item_val(it), 'x', 50000);
    shard_put(sh, it);
    shard_unlock(sh);
    store_flush(st);
    assert_int_equal(store_count(st), 0);
    store_destroy(&st);
    free(key);
    free(val);
}

/* The policy's queues and sketch count in used memory once they grow past
 * an empty policy's floor, and the policy's capacity follows the items'
 * share of the shard's memory. */
static void
test_store_policy_memory_counted(void **state)
{
    (void)state;
    struct store *st = store_create(1, 64 << 20, STORE_TINYLFU);
    struct shard *sh = &st->shards[0];
    char key[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "key:%012d", i);
        sh = shard_lock(st, 0);
        shard_put(sh, mk_in(sh, key, "0123456789", 0));
        shard_unlock(sh);
    }
    store_cron(st, 0, 10, 0);
    size_t pm = evict_mem(&sh->policy);
    assert_true(pm > sh->policy_base + 150000); /* 50,000 queue refs at least */
    assert_int_equal(sh->policy_mem, pm - sh->policy_base);
    struct evict_stats es;
    store_evict_stats(st, &es);
    assert_int_equal(sh->mem, es.weight + ht_mem(&sh->ht) + sh->policy_mem);
    /* items are about 32 of every ~44 bytes here: the capacity follows */
    double share = (double)es.weight / (double)sh->mem;
    double cap = 64.0 * (1 << 20) * 0.85 * share;
    assert_true(share < 0.85);
    assert_true((double)es.capacity > cap * 0.93 && (double)es.capacity < cap * 1.07);
    store_destroy(&st);

    /* The same in a small shard (a 64 KiB limit: it holds 40 KiB), once it
     * holds a quarter of its share: a fixed 15/16 there left the policy
     * below its capacity, taking the window unjudged into its main area. */
    st = store_create(1, 64 << 10, STORE_TINYLFU);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "key:%012d", i);
        sh = shard_lock(st, 0);
        shard_put(sh, mk_in(sh, key, "0123456789", 0));
        shard_unlock(sh);
        if (sh->mem > 40 << 10) {
            break;
        }
    }
    store_cron(st, 0, 10, 0);
    store_evict_stats(st, &es);
    share = (double)es.weight / (double)sh->mem;
    cap = 64.0 * (1 << 10) * 0.85 * share;
    assert_true(sh->mem > 40 << 10 && share < 0.85);
    assert_true((double)es.capacity > cap * 0.93 && (double)es.capacity < cap * 1.07);
    store_destroy(&st);
}

static void
count_visit(struct item *it, void *ctx)
{
    (void)it;
    (*(size_t *)ctx)++;
}

/* Slot counts start on a shard's first store_slot_count (its keys counted
 * then) and follow inserts, overwrites, deletes and evictions after it: at
 * the end every slot's count is what a visit of the slot finds. */
static void
test_store_slot_counts_follow_writes(void **state)
{
    (void)state;
    struct store *st = store_create(4, 256 * 1024, STORE_TINYLFU);
    char key[64];
    char val[100];
    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4000; i++) {
            snprintf(key, sizeof(key), "k:%d", (i * 7 + round * 1000) % 6000);
            assert_true(store_make_room(st));
            struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
            if (i % 5 == 4) {
                shard_delete(sh, key, strlen(key), 0);
            } else {
                struct item *it = shard_upsert(sh, key, strlen(key), i % 2 ? 20 : 90, 0);
                memcpy(item_val(it), val, item_vlen(it));
            }
            shard_unlock(sh);
        }
        /* round 0: the first shard's slots start counting mid-way */
        if (round == 0) {
            (void)store_slot_count(st, 0);
        }
    }
    assert_true(store_evicted_total(st) > 0);
    size_t total = 0;
    for (unsigned sl = 0; sl < SLOT_COUNT; sl++) {
        size_t visited = 0;
        store_slot_visit(st, sl, count_visit, &visited);
        assert_int_equal(store_slot_count(st, sl), visited);
        total += visited;
    }
    assert_int_equal(total, store_count(st));
    store_destroy(&st);
}

/* eviction.min_items_threshold is a floor per shard while memory is under
 * max_memory: with room for about 110 items of 100 bytes a shard under the
 * high watermark, a floor of 125 keeps 125 in every shard (memory sits
 * between the watermark and the limit) and no floor lets them drop below
 * it. A floor that does not fit in max_memory gives way: writes still find
 * room and memory stays under the limit. */
static void
test_store_min_items_per_shard(void **state)
{
    (void)state;
    const size_t max = 64 * 1024;
    const uint64_t floors[] = {0, 125, 100000};
    for (int f = 0; f < 3; f++) {
        struct store *st = store_create(4, max, STORE_TINYLFU);
        struct store_eviction ev = st->ev;
        ev.min_items = floors[f];
        store_set_eviction(st, &ev);
        char key[32];
        for (int i = 0; i < 5000; i++) {
            snprintf(key, sizeof(key), "k:%d", i);
            assert_true(store_make_room(st));
            struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
            struct item *it = shard_upsert(sh, key, strlen(key), 100, 0);
            memset(item_val(it), 'v', item_vlen(it));
            shard_unlock(sh);
        }
        assert_true(store_make_room(st));
        assert_true(store_evicted_total(st) > 0);
        assert_true(store_memory_exact(st) <= max);
        for (unsigned i = 0; i < st->nshards; i++) {
            struct shard *sh = shard_lock(st, i);
            size_t n = ht_count(&sh->ht);
            shard_unlock(sh);
            if (floors[f] == 0) {
                assert_true(n < 125);
            } else if (floors[f] == 125) {
                assert_true(n >= 125);
            } else {
                assert_true(n < 200); /* the floor gave way at the limit */
            }
        }
        store_destroy(&st);
    }
}

/* Writes of n keys with vlen-byte values, each after store_make_room, as the
 * commands do. */
static void
write_keys(struct store *st, int n, size_t vlen)
{
    char key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k:%d", i);
        assert_true(store_make_room(st));
        struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
        struct item *it = shard_upsert(sh, key, strlen(key), vlen, 0);
        memset(item_val(it), 'v', item_vlen(it));
        shard_unlock(sh);
    }
}

/* The strategies and adaptive_eviction, seen through store_evict_step (the
 * workers' background step) after writers have filled a 256 KiB store:
 *  - gradual: the writers keep memory under the high watermark, and the
 *    background is paced, one item a step in shards this small, so a step
 *    leaves memory above the low watermark;
 *  - batch: the writers evict batch_eviction_size items at a time, and the
 *    background, unpaced, takes 4 x that a step until memory is at the low
 *    watermark, then stops;
 *  - adaptive: above max_memory itself (here a lowered limit) a background
 *    step takes 4 x 64 items; without it, 32. */
static void
test_store_eviction_strategies(void **state)
{
    (void)state;
    const size_t max = 256 * 1024;
    const size_t drift = 4 * 1024; /* 4 shards x mem_step */

    /* gradual (the default) */
    struct store *st = store_create(4, max, STORE_TINYLFU);
    size_t high = (size_t)((double)max * st->ev.high_watermark);
    size_t low = (size_t)((double)max * st->ev.low_watermark);
    write_keys(st, 4000, 100);
    assert_true(store_evicted_total(st) > 2000);
    assert_true(store_memory_exact(st) <= high + drift + 256);
    assert_true(store_memory_exact(st) > high - drift - 256);
    assert_true(store_evict_step(st) <= 1);
    assert_true(store_memory_exact(st) > low + drift);
    store_destroy(&st);

    /* batch */
    st = store_create(4, max, STORE_TINYLFU);
    struct store_eviction ev = st->ev;
    ev.batch = true;
    ev.batch_size = 50;
    store_set_eviction(st, &ev);
    write_keys(st, 4000, 100);
    assert_true(store_evicted_total(st) > 2000);
    assert_int_equal(store_evicted_total(st) % 50, 0);
    size_t n, steps = 0;
    while ((n = store_evict_step(st)) > 0) {
        assert_int_equal(n, 200);
        assert_true(++steps < 20);
    }
    assert_true(steps >= 1);
    assert_true(store_memory_exact(st) <= low + drift);
    assert_true(store_memory_exact(st) > low / 2);
    store_destroy(&st);

    /* adaptive on (the default) and off, after the limit is cut to 1/4 */
    for (int adaptive = 1; adaptive >= 0; adaptive--) {
        st = store_create(4, max, STORE_TINYLFU);
        ev = st->ev;
        ev.adaptive = adaptive;
        store_set_eviction(st, &ev);
        write_keys(st, 4000, 100);
        store_set_max_memory(st, max / 4);
        assert_int_equal(store_evict_step(st), adaptive ? 256 : 32);
        while (store_evict_step(st) > 0) {
        }
        assert_true(store_memory_exact(st) <= max / 4);
        store_destroy(&st);
    }
}

/* Writes keys "<tag>:<i>" of 100 bytes into st, each after making room,
 * until its evictions have freed `bytes` towards the next purge. */
static void
evict_until_pending(struct store *st, const char *tag, size_t bytes)
{
    char key[32];
    for (int i = 0; atomic_load(&st->purge_pending) < bytes; i++) {
        snprintf(key, sizeof(key), "%s:%d", tag, i);
        assert_true(store_make_room(st));
        struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
        struct item *it = shard_upsert(sh, key, strlen(key), 100, 0);
        memset(item_val(it), 'p', item_vlen(it));
        shard_unlock(sh);
        assert_true(i < 1000000);
    }
}

/* Two stores in one process count the bytes they evict towards the
 * allocator's purge apart (the count was one process-wide static): with
 * 20 KiB evicted from one and 44 KiB from the other (a purge every 64 KiB;
 * a make_room may evict up to ~16 KiB at once here, the lag of the
 * published memory figure) neither asks for a purge, and the first one to
 * get there asks for one without moving the other's count. */
static void
test_store_purge_count_per_store(void **state)
{
    (void)state;
    const size_t max = 1 << 20; /* a purge every 64 KiB evicted */
    struct store *a = store_create(4, max, STORE_TINYLFU);
    struct store *b = store_create(4, max, STORE_TINYLFU);
    evict_until_pending(a, "a", 20 * 1024);
    evict_until_pending(b, "b", 20 * 1024);
    evict_until_pending(a, "a2", 44 * 1024);
    assert_int_equal(atomic_load(&a->purges), 0);
    assert_int_equal(atomic_load(&b->purges), 0);
    size_t b_pending = atomic_load(&b->purge_pending);
    for (int i = 0; i < 10000 && atomic_load(&a->purges) == 0; i++) {
        char key[32];
        snprintf(key, sizeof(key), "a3:%d", i);
        assert_true(store_make_room(a));
        struct shard *sh = shard_lock(a, store_shard_of(a, key, strlen(key)));
        struct item *it = shard_upsert(sh, key, strlen(key), 100, 0);
        memset(item_val(it), 'p', item_vlen(it));
        shard_unlock(sh);
    }
    assert_int_equal(atomic_load(&a->purges), 1);
    assert_int_equal(atomic_load(&b->purges), 0);
    assert_int_equal(atomic_load(&b->purge_pending), b_pending);
    store_destroy(&a);
    store_destroy(&b);
}

/* Two stores pace their background eviction apart (the token bucket was
 * process-wide): right after a store of 16 KB values has spent more than
 * its tokens on one eviction, a store of 100-byte values still has its own
 * 0.2 s worth and evicts. With one bucket the first store's debt left the
 * second nothing. */
static void
test_store_pacing_per_store(void **state)
{
    (void)state;
    const size_t max = 256 * 1024;
    struct store *big = store_create(4, max, STORE_TINYLFU);
    struct store *small = store_create(4, max, STORE_TINYLFU);
    write_keys(big, 40, 16000);
    write_keys(small, 4000, 100);
    /* both between the watermarks, evicting, paced */
    (void)store_evict_step(big);
    (void)store_evict_step(small);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    size_t before = store_memory_exact(big);
    assert_int_equal(store_evict_step(big), 1);
    assert_true(before - store_memory_exact(big) >= 16000); /* > 0.2 s of tokens */
    assert_int_equal(store_evict_step(small), 1);
    store_destroy(&big);
    store_destroy(&small);
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
        shard_put(sh, mk_in(sh, key, "v", 0));
        shard_unlock(sh);
        snprintf(key, sizeof(key), "other:%d", i);
        sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
        shard_put(sh, mk_in(sh, key, "v", 0));
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
        shard_put(sh, mk_in(sh, key, "v", 0));
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
        cmocka_unit_test(test_item_free_mem),
        cmocka_unit_test(test_store_put_find_delete_memory),
        cmocka_unit_test(test_store_lazy_expiry),
        cmocka_unit_test(test_store_active_expiry),
        cmocka_unit_test(test_store_item_layouts),
        cmocka_unit_test(test_item_length_field),
        cmocka_unit_test(test_store_policy_memory_counted),
        cmocka_unit_test(test_store_slots),
        cmocka_unit_test(test_store_min_items_per_shard),
        cmocka_unit_test(test_store_eviction_strategies),
        cmocka_unit_test(test_store_slot_counts_follow_writes),
        cmocka_unit_test(test_store_scan_all_shards),
        cmocka_unit_test(test_store_purge_count_per_store),
        cmocka_unit_test(test_store_pacing_per_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
