/*
 * test_store_slot.c -- the store seen by cluster slots (store_slot.h): the
 * cursor over a slot range (every key of the range at least once, nothing
 * outside it, the budget kept, under concurrent writes and index resizes),
 * the background drop of a range (exactly the range goes, in several
 * ticks, with memory, policy and per-slot figures equal to those of a store
 * that never had it; its keys not served meanwhile), per-slot bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "store/slot.h"
#include "store/store.h"
#include "store/store_slot.h"
/* a white-box test of the store: it reads struct shard (private to src/store/) */
#include "store/store_int.h"

static void
put(struct store *st, const char *key, const char *val, int64_t expire)
{
    struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
    struct item *it = shard_upsert(sh, key, strlen(key), strlen(val), expire);
    memcpy(item_val(it), val, strlen(val));
    shard_unlock(sh);
}

static bool
del(struct store *st, const char *key)
{
    struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
    bool r = shard_delete(sh, key, strlen(key), 0);
    shard_unlock(sh);
    return r;
}

static bool
present(struct store *st, const char *key, int64_t now)
{
    struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
    bool r = shard_find(sh, key, strlen(key), now) != NULL;
    shard_unlock(sh);
    return r;
}

static unsigned
slot_of_key(const char *key)
{
    return slot_of(key, strlen(key));
}

static bool
in_range(unsigned slot, unsigned first, unsigned last)
{
    return slot >= first && slot <= last;
}

/* What a walk saw: per key id "k:<id>", how often; anything else counted. */
struct walk {
    unsigned first, last;
    unsigned *seen;   /* per stable id */
    size_t nids;
    size_t calls, visits, max_per_call, this_call;
    size_t outside;   /* keys outside the range (must stay 0) */
    size_t bad_value; /* value or expiry not what was written */
    size_t churn;     /* other keys of the range (written meanwhile) */
};

static void
on_entry(const struct store_slot_entry *e, void *ctx)
{
    struct walk *w = ctx;
    char key[64];
    assert_true(e->klen < sizeof(key));
    memcpy(key, e->key, e->klen);
    key[e->klen] = '\0';
    w->visits++;
    w->this_call++;
    if (!in_range(slot_of_key(key), w->first, w->last) || e->slot != slot_of_key(key)) {
        w->outside++;
    }
    if (key[0] != 'k') {
        w->churn++;
        return;
    }
    size_t id = strtoul(key + 2, NULL, 10);
    assert_true(id < w->nids);
    w->seen[id]++;
    /* values are "v<id>", every third key expires at 10^12 + id */
    char want[32];
    snprintf(want, sizeof(want), "v%zu", id);
    int64_t exp = id % 3 == 0 ? (int64_t)1000000000000 + (int64_t)id : 0;
    if (e->vlen != strlen(want) || memcmp(e->val, want, e->vlen) != 0 || e->expire != exp ||
        e->mem < e->klen + e->vlen) {
        w->bad_value++;
    }
}

/* A whole walk of [first, last] with this budget per call. */
static void
walk_range(struct store *st, struct walk *w, size_t max_items, int64_t now)
{
    uint64_t c = 0;
    do {
        w->this_call = 0;
        c = store_slot_scan(st, w->first, w->last, c, max_items, now, on_entry, w);
        w->calls++;
        if (w->this_call > w->max_per_call) {
            w->max_per_call = w->this_call;
        }
        assert_true(w->calls < 10000000);
    } while (c != 0);
}

static void
fill(struct store *st, size_t n)
{
    char key[32], val[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k:%zu", i);
        snprintf(val, sizeof(val), "v%zu", i);
        put(st, key, val, i % 3 == 0 ? (int64_t)1000000000000 + (int64_t)i : 0);
    }
}

/* Keys of the range all visited, exactly once here (no concurrent writes),
 * nothing else; each call within its budget; values and expiries as
 * written; expired keys not visited. Ranges narrower than the shard count
 * (3 slots: 3 shards), wider (64 slots over 8 shards), all slots, and a
 * single-shard store (the cursor without shard bits). */
static void
test_scan_visits_the_range(void **state)
{
    (void)state;
    enum { N = 20000 };
    const unsigned ranges[][2] = {{5, 7}, {1000, 1063}, {0, SLOT_COUNT - 1}, {16383, 16383}};
    const unsigned shard_counts[] = {8, 1, 64};
    for (size_t s = 0; s < 3; s++) {
        struct store *st = store_create(shard_counts[s], 0, STORE_TINYLFU);
        fill(st, N);
        for (size_t r = 0; r < 4; r++) {
            const size_t budgets[] = {1, 7, 1000000};
            for (size_t b = 0; b < 3; b++) {
                struct walk w = {.first = ranges[r][0], .last = ranges[r][1], .nids = N};
                w.seen = calloc(N, sizeof(*w.seen));
                walk_range(st, &w, budgets[b], 0);
                size_t want = 0;
                char key[32];
                for (size_t i = 0; i < N; i++) {
                    snprintf(key, sizeof(key), "k:%zu", i);
                    if (in_range(slot_of_key(key), w.first, w.last)) {
                        want++;
                        assert_int_equal(w.seen[i], 1);
                    } else {
                        assert_int_equal(w.seen[i], 0);
                    }
                }
                assert_int_equal(w.visits, want);
                assert_int_equal(w.outside, 0);
                assert_int_equal(w.bad_value, 0);
                assert_true(w.max_per_call <= budgets[b]);
                if (budgets[b] == 1 && want > 1) {
                    assert_true(w.calls >= want);
                }
                free(w.seen);
            }
        }
        /* at a time past the expiries, every third key is not visited */
        struct walk w = {.first = 0, .last = SLOT_COUNT - 1, .nids = N};
        w.seen = calloc(N, sizeof(*w.seen));
        walk_range(st, &w, 50, (int64_t)1000000000000 + N);
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(w.seen[i], i % 3 == 0 ? 0 : 1);
        }
        free(w.seen);
        store_destroy(&st);
    }
    /* a bad range is an empty walk */
    struct store *st = store_create(4, 0, STORE_TINYLFU);
    fill(st, 100);
    struct walk w = {.first = 10, .last = 5, .nids = 100};
    w.seen = calloc(100, sizeof(*w.seen));
    assert_int_equal(store_slot_scan(st, 10, 5, 0, 10, 0, on_entry, &w), 0);
    assert_int_equal(store_slot_scan(st, 0, SLOT_COUNT, 0, 10, 0, on_entry, &w), 0);
    assert_int_equal(w.visits, 0);
    free(w.seen);
    store_destroy(&st);
}

/* ---- concurrent writes ---- */

struct churn {
    struct store *st;
    volatile int stop;
    size_t ops, resizes;
};

/* Another thread: keys "c:<n>" written and deleted in waves of 30,000, so
 * the shards' indexes grow and shrink (the cron's shrink and rehash steps
 * run here too) while the scanner walks. */
static void *
churn_main(void *arg)
{
    struct churn *c = arg;
    char key[32];
    size_t base = 0;
    while (!c->stop) {
        for (size_t i = 0; i < 30000 && !c->stop; i++) {
            snprintf(key, sizeof(key), "c:%zu", base + i);
            put(c->st, key, "x", 0);
            c->ops++;
        }
        for (size_t i = 0; i < 30000 && !c->stop; i++) {
            snprintf(key, sizeof(key), "c:%zu", base + i);
            del(c->st, key);
            c->ops++;
            if (i % 2000 == 0) {
                for (unsigned s = 0; s < c->st->nshards; s++) {
                    store_cron(c->st, s, 50, 0);
                }
                c->resizes++;
            }
        }
        base += 30000;
    }
    return NULL;
}

/* Under concurrent inserts, deletes and resizes: every stable key of the
 * range is visited at least once per walk, nothing outside the range ever,
 * no call beyond its budget. */
static void
test_scan_under_concurrent_writes(void **state)
{
    (void)state;
    enum { N = 8000 };
    struct store *st = store_create(8, 0, STORE_TINYLFU);
    fill(st, N);
    struct churn c = {.st = st};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, churn_main, &c), 0);
    const unsigned ranges[][2] = {{0, 4095}, {8000, 8002}, {0, SLOT_COUNT - 1}};
    size_t churn_seen = 0;
    for (int round = 0; round < 9; round++) {
        struct walk w = {.first = ranges[round % 3][0], .last = ranges[round % 3][1], .nids = N};
        w.seen = calloc(N, sizeof(*w.seen));
        walk_range(st, &w, 3 + (size_t)round, 0);
        char key[32];
        for (size_t i = 0; i < N; i++) {
            snprintf(key, sizeof(key), "k:%zu", i);
            if (in_range(slot_of_key(key), w.first, w.last)) {
                assert_true(w.seen[i] >= 1);
            } else {
                assert_int_equal(w.seen[i], 0);
            }
        }
        assert_int_equal(w.outside, 0);
        assert_int_equal(w.bad_value, 0);
        assert_true(w.max_per_call <= 3 + (size_t)round);
        churn_seen += w.churn;
        free(w.seen);
    }
    c.stop = 1;
    pthread_join(t, NULL);
    /* the writer really ran during the walks */
    assert_true(c.ops > 1000);
    assert_true(churn_seen > 0);
    store_destroy(&st);
}

/* ---- drop ---- */

/* Item memory of the store: what every shard holds less its index and its
 * policy's queues (those depend on the store's history, not its keys). Dead
 * chunks (removed items whose queue entry the policy has not dropped yet:
 * it compacts a queue once 1/8 of it is dead) are in it. */
static size_t
items_mem(struct store *st)
{
    size_t m = 0;
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        m += sh->mem - ht_mem(&sh->ht) - sh->policy_mem;
        shard_unlock(sh);
    }
    return m;
}

static void
add_mem(struct item *it, void *ctx)
{
    *(size_t *)ctx += item_mem(it);
}

/* Memory of the live items, by a walk of every key. */
static size_t
live_mem(struct store *st)
{
    size_t m = 0;
    uint64_t c = 0;
    do {
        c = store_scan(st, c, add_mem, &m);
    } while (c != 0);
    return m;
}

static void
cron_all(struct store *st)
{
    for (unsigned i = 0; i < st->nshards; i++) {
        store_cron(st, i, 1000, 0);
    }
}

/* Writes keys 0..n-1 ("k:<i>", values of 20 + i % 200 bytes, some large
 * ones) to st, those whose slot is in [first, last] only if `with_range`. */
static void
fill_mixed(struct store *st, size_t n, unsigned first, unsigned last, bool with_range)
{
    static char val[40000];
    memset(val, 'w', sizeof(val) - 1);
    char key[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k:%zu", i);
        if (!with_range && in_range(slot_of_key(key), first, last)) {
            continue;
        }
        size_t vlen = i % 997 == 0 ? 30000 : 20 + i % 200;
        val[vlen] = '\0';
        put(st, key, val, i % 5 == 0 ? (int64_t)1000000000000 + (int64_t)i : 0);
        val[vlen] = 'w';
    }
}

static void
assert_same_keyspace(struct store *a, struct store *b)
{
    assert_int_equal(store_count(a), store_count(b));
    assert_int_equal(store_expires_count(a), store_expires_count(b));
    for (unsigned s = 0; s < SLOT_COUNT; s++) {
        assert_int_equal(store_slot_count(a, s), store_slot_count(b, s));
        assert_int_equal(store_slot_bytes(a, s), store_slot_bytes(b, s));
    }
    assert_int_equal(live_mem(a), live_mem(b));
    struct evict_stats ea, eb;
    store_evict_stats(a, &ea);
    store_evict_stats(b, &eb);
    assert_int_equal(ea.count, eb.count);
    assert_int_equal(ea.weight, eb.weight);
    assert_int_equal(ea.weight, live_mem(a));
}

/* Everything goes (a drop of every slot) and the policies compact: nothing
 * may be left in the accounts, which shows that no removal before was
 * counted wrong. */
static void
assert_empties_to_zero(struct store *st)
{
    assert_int_equal(store_slot_drop_begin(st, 0, SLOT_COUNT - 1), 0);
    for (int i = 0; i < 200 && store_slot_drops_active(st) > 0; i++) {
        cron_all(st);
    }
    assert_int_equal(store_slot_drops_active(st), 0);
    for (int i = 0; i < 50; i++) {
        cron_all(st);
    }
    assert_int_equal(store_count(st), 0);
    assert_int_equal(store_expires_count(st), 0);
    assert_int_equal(items_mem(st), 0);
    struct evict_stats es;
    store_evict_stats(st, &es);
    assert_int_equal(es.count, 0);
    assert_int_equal(es.weight, 0);
    assert_int_equal(es.dead_entries, 0);
    for (unsigned i = 0; i < st->nshards; i++) {
        assert_int_equal(slab_chunk_bytes(&st->shards[i].slab), 0);
    }
    for (unsigned s = 0; s < SLOT_COUNT; s++) {
        assert_int_equal(store_slot_count(st, s), 0);
        assert_int_equal(store_slot_bytes(st, s), 0);
    }
    assert_true(store_used_memory(st) <= store_memory_exact(st) + st->nshards * st->mem_step);
    assert_true(store_used_memory(st) + st->nshards * st->mem_step >= store_memory_exact(st));
}

/* A drop of a large range empties exactly that range, in several ticks of
 * the cron, with its keys not served from the moment it begins; afterwards
 * the store holds what a store that never had the range holds: the same
 * keys, per-slot counts and bytes, item memory, and policy count and
 * weight; used memory agrees with the shards' exact figure. */
static void
test_drop_empties_the_range_exactly(void **state)
{
    (void)state;
    enum { N = 60000 };
    const unsigned first = 2000, last = 5999; /* a quarter of the slots */
    struct store *a = store_create(8, 0, STORE_TINYLFU);
    struct store *b = store_create(8, 0, STORE_TINYLFU);
    /* slot counts kept from the start in a, counted at the end in b */
    for (unsigned s = 0; s < 8; s++) {
        (void)store_slot_count(a, s);
    }
    fill_mixed(a, N, first, last, true);
    fill_mixed(b, N, first, last, false);
    size_t in_range_keys = store_count(a) - store_count(b);
    assert_true(in_range_keys > N / 5);
    assert_int_equal(store_slot_range_count(a, first, last), in_range_keys);
    assert_int_equal(store_slot_range_count(b, first, last), 0);
    size_t range_bytes = store_slot_range_bytes(a, first, last);
    assert_true(range_bytes > in_range_keys * 20);

    a->drop_work = 2048;
    assert_int_equal(store_slot_drop_begin(a, first, last), 0);
    assert_true(store_slot_drop_pending(a, first, last));
    assert_false(store_slot_drop_pending(a, 0, first - 1));
    assert_int_equal(store_slot_drops_active(a), 8);
    /* not served while being dropped; the rest is */
    char key[32];
    size_t hidden = 0, kept = 0;
    for (size_t i = 0; i < N; i += 7) {
        snprintf(key, sizeof(key), "k:%zu", i);
        if (in_range(slot_of_key(key), first, last)) {
            assert_true(store_slot_dropping(a, slot_of_key(key)));
            assert_false(present(a, key, 0));
            hidden++;
        } else {
            assert_false(store_slot_dropping(a, slot_of_key(key)));
            assert_true(present(a, key, 0));
            kept++;
        }
    }
    assert_true(hidden > 100 && kept > 100);
    /* a delete of such a key reports it absent */
    for (size_t i = 1; i < N; i += 7) {
        snprintf(key, sizeof(key), "k:%zu", i);
        if (in_range(slot_of_key(key), first, last)) {
            assert_false(del(a, key));
            break;
        }
    }
    /* a walk of the range sees nothing */
    struct walk w = {.first = first, .last = last, .nids = N};
    w.seen = calloc(N, sizeof(*w.seen));
    walk_range(a, &w, 100, 0);
    assert_int_equal(w.visits, 0);
    free(w.seen);

    size_t ticks = 0;
    while (store_slot_drops_active(a) > 0) {
        cron_all(a);
        ticks++;
        assert_true(ticks < 1000);
        /* the rest of the store is untouched at every tick */
        assert_true(store_count(a) >= store_count(b));
    }
    assert_true(ticks >= 4); /* ~7,500 keys a shard at 2,048 a tick */
    assert_false(store_slot_drop_pending(a, first, last));
    assert_int_equal(store_dropped_total(a), in_range_keys);
    size_t keys = 0, dropped = 0;
    for (unsigned i = 0; i < a->nshards; i++) {
        struct store_shard_stats ss;
        store_shard_stats(a, i, &ss);
        assert_true(ss.slots >= ss.keys && ss.mem > 0);
        keys += ss.keys;
        dropped += ss.dropped;
    }
    assert_int_equal(keys, store_count(a));
    assert_int_equal(dropped, in_range_keys);
    assert_int_equal(store_slot_range_count(a, first, last), 0);
    assert_int_equal(store_slot_range_bytes(a, first, last), 0);
    /* the policies release the dead chunks a bounded number a tick */
    for (int i = 0; i < 50; i++) {
        cron_all(a);
        cron_all(b);
    }
    assert_same_keyspace(a, b);
    assert_true(store_used_memory(a) <= store_memory_exact(a) + a->nshards * a->mem_step);
    assert_true(store_used_memory(a) + a->nshards * a->mem_step >= store_memory_exact(a));
    /* the slots serve again once the drop is over */
    for (size_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "k:%zu", i);
        if (in_range(slot_of_key(key), first, last)) {
            put(a, key, "back", 0);
            assert_true(present(a, key, 0));
            assert_int_equal(store_slot_count(a, slot_of_key(key)), 1);
            break;
        }
    }
    assert_empties_to_zero(a);
    assert_empties_to_zero(b);
    store_destroy(&a);
    store_destroy(&b);
}

/* A range marked while a sweep is under way in its shards (one inside the
 * first range, and a disjoint one) is dropped whole: the sweep goes round
 * again (without that, the keys of 10000..11999 in the half already swept
 * would stay). Ranges narrower than the shard count sweep only their
 * shards. */
static void
test_drop_marked_during_a_sweep(void **state)
{
    (void)state;
    enum { N = 30000 };
    struct store *a = store_create(8, 0, STORE_TINYLFU);
    struct store *b = store_create(8, 0, STORE_TINYLFU);
    fill_mixed(a, N, 0, 0, true);
    char key[32];
    /* b: what a keeps once [100, 3099], [3000, 3002] (inside it) and
     * [10000, 11999] are gone */
    fill_mixed(b, N, 100, 3099, false);
    assert_int_equal(store_slot_drop_begin(a, 100, 3099), 0);
    for (unsigned i = 0; i < 8; i++) {
        store_slot_drop_step(a, i, 2000); /* about half swept */
    }
    assert_int_equal(store_slot_drops_active(a), 8);
    assert_int_equal(store_slot_drop_begin(a, 3000, 3002), 0);
    assert_int_equal(store_slot_drop_begin(a, 10000, 11999), 0);
    size_t steps = 0;
    while (store_slot_drops_active(a) > 0) {
        for (unsigned i = 0; i < 8; i++) {
            store_slot_drop_step(a, i, 500);
        }
        assert_true(++steps < 10000);
    }
    assert_int_equal(store_slot_range_count(a, 100, 3099), 0);
    assert_int_equal(store_slot_range_count(a, 10000, 11999), 0);
    /* b loses 10000..11999 by plain deletes */
    for (size_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "k:%zu", i);
        if (in_range(slot_of_key(key), 10000, 11999)) {
            assert_true(del(b, key));
        }
    }
    for (int i = 0; i < 50; i++) {
        cron_all(a);
        cron_all(b);
    }
    assert_same_keyspace(a, b);
    /* a drop of one slot touches one shard only */
    assert_int_equal(store_slot_drop_begin(a, 77, 77), 0);
    assert_int_equal(store_slot_drops_active(a), 1);
    assert_int_equal(store_slot_drop_begin(a, 1, 0), -EINVAL);
    assert_int_equal(store_slot_drop_begin(a, 0, SLOT_COUNT), -EINVAL);
    /* a flush ends every drop */
    store_flush(a);
    assert_int_equal(store_slot_drops_active(a), 0);
    assert_false(store_slot_dropping(a, 77));
    store_destroy(&a);
    store_destroy(&b);
}

/* Per-slot bytes follow overwrites (in place and to another chunk class),
 * TTLs that move an item, deletes and evictions: at the end every slot's
 * figure is the sum of its items' memory. */
static void
sum_bytes(struct item *it, void *ctx)
{
    *(size_t *)ctx += item_mem(it);
}

static void
test_slot_bytes_follow_writes(void **state)
{
    (void)state;
    struct store *st = store_create(4, 512 * 1024, STORE_TINYLFU);
    char key[32];
    static char val[20000];
    memset(val, 'b', sizeof(val));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4000; i++) {
            snprintf(key, sizeof(key), "k:%d", (i * 13 + round * 777) % 5000);
            assert_true(store_make_room(st));
            struct shard *sh = shard_lock(st, store_shard_of(st, key, strlen(key)));
            if (i % 7 == 3) {
                shard_delete(sh, key, strlen(key), 0);
            } else {
                size_t vlen = i % 101 == 0 ? 18000 : (size_t)(i % 3 == 0 ? 10 : 300);
                struct item *it = shard_upsert(sh, key, strlen(key), vlen, 0);
                memcpy(item_val(it), val, vlen);
                if (i % 11 == 0) {
                    shard_set_expire(sh, it, (int64_t)1000000000000);
                }
            }
            shard_unlock(sh);
        }
        if (round == 0) {
            (void)store_slot_bytes(st, 1); /* shard 1 starts counting mid-way */
        }
    }
    assert_true(store_evicted_total(st) > 0);
    size_t total = 0;
    for (unsigned sl = 0; sl < SLOT_COUNT; sl++) {
        size_t bytes = 0;
        store_slot_visit(st, sl, sum_bytes, &bytes);
        assert_int_equal(store_slot_bytes(st, sl), bytes);
        total += bytes;
    }
    assert_true(total > 0);
    store_destroy(&st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_visits_the_range),
        cmocka_unit_test(test_scan_under_concurrent_writes),
        cmocka_unit_test(test_drop_empties_the_range_exactly),
        cmocka_unit_test(test_drop_marked_during_a_sweep),
        cmocka_unit_test(test_slot_bytes_follow_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
