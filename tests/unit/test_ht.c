/*
 * test_ht.c -- the open-addressing index (store/ht.h): grow and find,
 * replace/remove, a randomized model test across growths, shrinks and
 * tombstone rebuilds with incremental steps interleaved, the scan guarantee
 * while the table grows and shrinks, misses that touch no item, memory per
 * key, ht_random's distribution, ht_reserve, ht_clear, ht_prefetch.
 *
 * With CRAB_BENCH_KEYS=n (e.g. 1000000) it also prints ns per insert, hit
 * and miss at n keys (assert nothing about timing). The same benchmark
 * builds against any ht.c with the old API when HT_BENCH_ONLY is defined,
 * to compare with the chained table of an older commit:
 *
 *   git archive <commit> src | tar -x -C /tmp/old
 *   gcc -O2 -DNDEBUG -DHT_BENCH_ONLY -I/tmp/old/src tests/unit/test_ht.c
 *       /tmp/old/src/store/{ht,slab,item}.c /tmp/old/src/util/[a-z]*.c
 *       -lxxhash -lcmocka -o /tmp/bench_old
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "store/ht.h"
#include "util/clock.h"

/* The items live in this slab (main() reserves it). */
static struct slab tslab;

static struct item *
mk(const char *key, const char *val)
{
    struct item *it = item_new(&tslab, key, strlen(key), strlen(val), 0, false);
    memcpy(item_val(it), val, strlen(val));
    return it;
}

static void
free_it(struct item *it, void *ctx)
{
    (void)ctx;
    item_free(&tslab, it);
}

/* 16-byte keys like the benchmark's. */
static size_t
key_of(char *buf, size_t id)
{
    snprintf(buf, 32, "key:%012zu", id);
    return 16;
}

static uint64_t
xorshift(void *ctx)
{
    uint64_t *s = ctx;
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---- benchmark (old and new API alike) ---- */

/* The store's batched lookups prefetch ahead (store_prefetch): the table
 * 16 lookups ahead, the item 8 ahead. The old chained table had no
 * ht_prefetch; the store peeked at its buckets the same way. */
static void
bench_prefetch(const struct ht *h, uint64_t hash, int stage)
{
#ifdef HT_GROUP
    ht_prefetch(h, hash, stage);
#else
    for (int t = 0; t < 2; t++) {
        if (h->size[t] == 0) {
            continue;
        }
        uint32_t *b = &h->tab[t][hash & (h->size[t] - 1)];
        if (stage == 0) {
            __builtin_prefetch(b);
        } else if (*b) {
            __builtin_prefetch(item_at(h->slab, *b));
        }
    }
#endif
}

static double
bench_batched(struct ht *h, char (*keys)[16], const uint64_t *hs, size_t n, size_t *hits)
{
    double best = 1e18;
    for (int rep = 0; rep < 5; rep++) {
        *hits = 0;
        double t0 = (double)clock_mono_ns();
        for (size_t i = 0; i < n; i++) {
            if (i + 16 < n) {
                bench_prefetch(h, hs[i + 16], 0);
            }
            if (i + 8 < n) {
                bench_prefetch(h, hs[i + 8], 1);
            }
            *hits += ht_find(h, keys[i], 16, hs[i]) != NULL;
        }
        double t = ((double)clock_mono_ns() - t0) / (double)n;
        best = t < best ? t : best;
    }
    return best;
}

static void
bench(size_t n)
{
    struct ht h;
    ht_init(&h, &tslab);
    struct item **items = malloc(n * sizeof(*items));
    uint64_t *hashes = malloc(n * sizeof(*hashes));
    size_t *order = malloc(n * sizeof(*order));
    char key[32];
    for (size_t i = 0; i < n; i++) {
        key_of(key, i);
        items[i] = item_new(&tslab, key, 16, 10, 0, false);
        memset(item_val(items[i]), 'v', 10);
        hashes[i] = ht_hash(key, 16);
        order[i] = i;
    }
    uint64_t rng = 88172645463325252ull;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = xorshift(&rng) % (i + 1);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    double t0 = (double)clock_mono_ns();
    for (size_t i = 0; i < n; i++) {
        ht_insert(&h, items[i], hashes[i]);
    }
    double t_ins = ((double)clock_mono_ns() - t0) / (double)n;
    while (ht_rehash(&h, 1000)) {
    }
    /* the best of 5 passes (the machine may be shared) */
    size_t found = 0;
    double t_hit = 1e18;
    for (int rep = 0; rep < 5; rep++) {
        found = 0;
        t0 = (double)clock_mono_ns();
        for (size_t i = 0; i < n; i++) {
            size_t k = order[i];
            found += ht_find(&h, item_key(items[k]), 16, hashes[k]) == items[k];
        }
        double t = ((double)clock_mono_ns() - t0) / (double)n;
        t_hit = t < t_hit ? t : t_hit;
    }
    /* misses: keys of the same shape that are not there */
    char (*mkeys)[16] = malloc(n * 16);
    uint64_t *mh = malloc(n * sizeof(*mh));
    for (size_t i = 0; i < n; i++) {
        key_of(key, n + order[i]);
        memcpy(mkeys[i], key, 16);
        mh[i] = ht_hash(key, 16);
    }
    size_t missed = 0;
    double t_miss = 1e18;
    for (int rep = 0; rep < 5; rep++) {
        missed = 0;
        t0 = (double)clock_mono_ns();
        for (size_t i = 0; i < n; i++) {
            missed += ht_find(&h, mkeys[i], 16, mh[i]) == NULL;
        }
        double t = ((double)clock_mono_ns() - t0) / (double)n;
        t_miss = t < t_miss ? t : t_miss;
    }
    /* batched with prefetch: the keys in a separate array, as from the wire */
    char (*hkeys)[16] = malloc(n * 16);
    uint64_t *hh = malloc(n * sizeof(*hh));
    for (size_t i = 0; i < n; i++) {
        memcpy(hkeys[i], item_key(items[order[i]]), 16);
        hh[i] = hashes[order[i]];
    }
    size_t bh = 0, bm = 0;
    double t_bhit = bench_batched(&h, hkeys, hh, n, &bh);
    double t_bmiss = bench_batched(&h, mkeys, mh, n, &bm);
    printf("ht bench, %zu keys: insert %.1f ns, find hit %.1f ns, find miss %.1f ns; "
           "prefetched batch: hit %.1f ns, miss %.1f ns; table %.2f B/key\n",
           n, t_ins, t_hit, t_miss, t_bhit, t_bmiss, (double)ht_mem(&h) / (double)n);
    if (bh != n || bm != 0) {
        printf("ht bench: WRONG (batched hits %zu, misses found %zu)\n", bh, bm);
        exit(1);
    }
    free(hkeys);
    free(hh);
    if (found != n || missed != n) {
        printf("ht bench: WRONG (found %zu, missed %zu)\n", found, missed);
        exit(1);
    }
    ht_clear(&h, free_it, NULL);
    free(items);
    free(hashes);
    free(order);
    free(mkeys);
    free(mh);
}

static size_t
bench_keys(void)
{
    const char *env = getenv("CRAB_BENCH_KEYS");
    return env ? (size_t)strtoull(env, NULL, 10) : 0;
}

#ifdef HT_BENCH_ONLY

int
main(void)
{
    if (slab_init(&tslab, (size_t)1 << 32) != 0) {
        return 1;
    }
    size_t n = bench_keys();
    bench(n ? n : 1000000);
    return 0;
}

#else

/* ---- the old tests ---- */

static void
test_ht_grow_and_find(void **state)
{
    (void)state;
    struct ht h;
    ht_init(&h, &tslab);
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
    assert_true(ht_slots(&h) >= 10000);
    assert_null(ht_find(&h, "nope", 4, ht_hash("nope", 4)));
    ht_clear(&h, free_it, NULL);
    assert_int_equal(ht_count(&h), 0);
    assert_int_equal(ht_mem(&h), 0);
}

static void
test_ht_replace_remove(void **state)
{
    (void)state;
    struct ht h;
    ht_init(&h, &tslab);
    struct item *a = mk("k", "1");
    uint64_t hk = ht_hash("k", 1);
    assert_null(ht_replace(&h, a, hk));
    struct item *b = mk("k", "2");
    assert_ptr_equal(ht_replace(&h, b, hk), a);
    item_free(&tslab, a);
    assert_int_equal(ht_count(&h), 1);
    assert_ptr_equal(ht_find(&h, "k", 1, hk), b);
    assert_ptr_equal(ht_remove(&h, "k", 1, hk), b);
    item_free(&tslab, b);
    assert_null(ht_remove(&h, "k", 1, hk));
    assert_int_equal(ht_count(&h), 0);
    ht_deinit(&h);
}

/* ht_remove_ref: removal by reference and hash, also while the table is
 * migrating (inserts keep growing it), never removing another item. */
static void
test_ht_remove_ref(void **state)
{
    (void)state;
    enum { N = 6000 };
    struct ht h;
    ht_init(&h, &tslab);
    static struct item *items[N];
    char key[32];
    size_t live = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key:%012d", i);
        items[i] = mk(key, "v");
        ht_insert(&h, items[i], ht_hash(key, 16));
        live++;
        if (i % 3 == 2) {
            /* remove an older one: every third, mid-growth */
            int j = i / 3;
            uint64_t hj = ht_hash(item_key(items[j]), 16);
            uint32_t rj = item_ref(&tslab, items[j]);
            assert_true(ht_remove_ref(&h, rj, hj));
            assert_false(ht_remove_ref(&h, rj, hj));
            live--;
            assert_int_equal(ht_count(&h), live);
            snprintf(key, sizeof(key), "key:%012d", j);
            assert_null(ht_find(&h, key, 16, hj));
            item_free(&tslab, items[j]);
            items[j] = NULL;
        }
    }
    /* a live item with a wrong hash, and a ref the table does not hold */
    struct item *other = mk("not-in-table", "v");
    assert_false(ht_remove_ref(&h, item_ref(&tslab, other), ht_hash("not-in-table", 12)));
    item_free(&tslab, other);
    for (int i = 0; i < N; i++) {
        if (items[i] == NULL) {
            continue;
        }
        snprintf(key, sizeof(key), "key:%012d", i);
        assert_ptr_equal(ht_find(&h, key, 16, ht_hash(key, 16)), items[i]);
        assert_true(ht_remove_ref(&h, item_ref(&tslab, items[i]), ht_hash(key, 16)));
        item_free(&tslab, items[i]);
        live--;
    }
    assert_int_equal(ht_count(&h), 0);
    assert_int_equal(live, 0);
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
    char k[32];
    memcpy(k, item_key(it), item_klen(it));
    k[item_klen(it)] = '\0';
    int i = atoi(k + 4);
    if (s->bits[i] < 255) {
        s->bits[i]++;
    }
    s->visits++;
}

/* SCAN visits every item present for the whole scan, even when the table
 * grows or shrinks between calls. */
static void
test_ht_scan_during_resize(void **state)
{
    (void)state;
    struct ht h;
    ht_init(&h, &tslab);
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
        assert_int_equal(s.bits[i], 1);
    }
    /* shrink in the middle of a second scan */
    for (int i = 100; i < 2 * N; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        item_free(&tslab, ht_remove(&h, key, strlen(key), ht_hash(key, strlen(key))));
    }
    memset(s.bits, 0, N * 2);
    cursor = 0;
    step = 0;
    do {
        cursor = ht_scan(&h, cursor, mark_seen, &s);
        if (step++ == 3) {
            ht_maybe_shrink(&h);
            assert_true(ht_rehashing(&h));
            ht_rehash(&h, 5);
        }
    } while (cursor != 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(s.bits[i], 1);
    }
    free(s.bits);
    ht_clear(&h, free_it, NULL);
}

/* ht_scan_at resumed midway through its intervals, as store_slot_scan does
 * when its caller's budget runs out: a walk that takes at most 3 items a
 * step and resumes at the hash of the first item it left (every resumed
 * position rounded down to 2^4, as a packed cursor drops those bits) visits
 * every key present for the whole walk, while the table grows and then
 * shrinks between steps; each such key once, as long as no two of them
 * share a rounded position (a key of a shared one may come twice). */
struct at_step {
    struct item *it[64];
    uint64_t hash[64];
    size_t n;
};

static void
at_collect(struct item *it, uint64_t hash, void *ctx)
{
    struct at_step *a = ctx;
    assert_int_equal(hash, ht_hash(item_key(it), item_klen(it)));
    assert_true(a->n < 64);
    /* kept in hash order: the walk resumes after the last one taken */
    size_t i = a->n++;
    while (i > 0 && a->hash[i - 1] > hash) {
        a->hash[i] = a->hash[i - 1];
        a->it[i] = a->it[i - 1];
        i--;
    }
    a->hash[i] = hash;
    a->it[i] = it;
}

static void
test_ht_scan_at_resumes_midway(void **state)
{
    (void)state;
    enum { N = 3000, EXTRA = 6000 };
    const unsigned res = 4;
    const uint64_t mask = ~((UINT64_C(1) << res) - 1);
    struct ht h;
    ht_init(&h, &tslab);
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        ht_insert(&h, mk(key, "v"), ht_hash(key, strlen(key)));
    }
    struct seen s = {calloc(N + EXTRA, 1), 0};
    uint64_t pos = 0;
    size_t steps = 0, partial = 0, added = 0;
    do {
        struct at_step a = {.n = 0};
        uint64_t end = ht_scan_at(&h, pos, res, at_collect, &a);
        assert_true(end == 0 || end > pos);
        assert_int_equal(end & ~mask, 0);
        size_t take = a.n;
        if (a.n > 3) {
            take = 3;
            end = a.hash[3] & mask;
            while (take > 0 && (a.hash[take - 1] & mask) == end) {
                take--; /* the resumed step visits these */
            }
            assert_true(end > pos || take == 0);
            if (end <= pos) {
                /* four or more share pos's rounded position: take them all */
                take = 0;
                while (take < a.n && (a.hash[take] & mask) == pos) {
                    take++;
                }
                end = take < a.n ? a.hash[take] & mask : end;
            }
            partial++;
        }
        for (size_t i = 0; i < take; i++) {
            mark_seen(a.it[i], &s);
        }
        pos = end;
        steps++;
        if (steps % 3 == 0 && added < EXTRA) {
            for (int k = 0; k < 40 && added < EXTRA; k++, added++) {
                snprintf(key, sizeof(key), "key:%zu", N + added);
                ht_insert(&h, mk(key, "v"), ht_hash(key, strlen(key)));
            }
        } else if (added >= EXTRA && ht_count(&h) > N) {
            /* then the extra keys go, and the cron shrinks the table */
            for (size_t k = 0; k < 200 && added > 0; k++) {
                added--;
                snprintf(key, sizeof(key), "key:%zu", N + added);
                item_free(&tslab, ht_remove(&h, key, strlen(key), ht_hash(key, strlen(key))));
            }
            ht_maybe_shrink(&h);
            ht_rehash(&h, 3);
        }
        assert_true(steps < 100000);
    } while (pos != 0);
    assert_true(partial > 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(s.bits[i], 1);
    }
    free(s.bits);
    ht_clear(&h, free_it, NULL);
}

/* ---- randomized model test ---- */

struct model {
    struct ht h;
    struct item **cur; /* per key id: the item in the table, or NULL */
    size_t nkeys;
    size_t count;
    uint64_t rng;
    size_t grows, shrinks, rebuilds;
};

static uint64_t
hash_id(size_t id, char *key)
{
    key_of(key, id);
    return ht_hash(key, 16);
}

/* Note how a resize that just started compares with the table before. */
static void
note_resize(struct model *m, bool was, size_t groups_before)
{
    if (was || !ht_rehashing(&m->h)) {
        return;
    }
    size_t n = m->h.t[1].ngroups;
    if (n > groups_before) {
        m->grows++;
    } else if (n < groups_before) {
        m->shrinks++;
    } else {
        m->rebuilds++;
    }
}

static void
model_op(struct model *m, int op, size_t id)
{
    char key[32];
    uint64_t hash = hash_id(id, key);
    bool was = ht_rehashing(&m->h);
    size_t groups = m->h.t[0].ngroups;
    switch (op) {
    case 0: /* insert or replace */
        if (m->cur[id] == NULL) {
            struct item *it = mk(key, "a");
            if (xorshift(&m->rng) & 1) {
                ht_insert(&m->h, it, hash);
            } else {
                assert_null(ht_replace(&m->h, it, hash));
            }
            m->cur[id] = it;
            m->count++;
        } else {
            struct item *it = mk(key, "b");
            assert_ptr_equal(ht_replace(&m->h, it, hash), m->cur[id]);
            item_free(&tslab, m->cur[id]);
            m->cur[id] = it;
        }
        break;
    case 1: /* remove */
        assert_ptr_equal(ht_remove(&m->h, key, 16, hash), m->cur[id]);
        if (m->cur[id]) {
            item_free(&tslab, m->cur[id]);
            m->cur[id] = NULL;
            m->count--;
        }
        break;
    default: /* find */
        assert_ptr_equal(ht_find(&m->h, key, 16, hash), m->cur[id]);
        break;
    }
    note_resize(m, was, groups);
    assert_int_equal(ht_count(&m->h), m->count);
}

static void
count_visit(struct item *it, void *ctx)
{
    struct seen *s = ctx;
    char k[32];
    memcpy(k, item_key(it), 16);
    k[16] = '\0';
    size_t id = (size_t)strtoull(k + 4, NULL, 10);
    s->bits[id]++;
    s->visits++;
}

static void
model_check(struct model *m)
{
    char key[32];
    for (size_t id = 0; id < m->nkeys; id++) {
        uint64_t hash = hash_id(id, key);
        assert_ptr_equal(ht_find(&m->h, key, 16, hash), m->cur[id]);
    }
    /* a full scan visits exactly the model's items, once each */
    struct seen s = {calloc(m->nkeys, 1), 0};
    size_t c = 0;
    do {
        c = ht_scan(&m->h, c, count_visit, &s);
    } while (c != 0);
    for (size_t id = 0; id < m->nkeys; id++) {
        assert_int_equal(s.bits[id], m->cur[id] ? 1 : 0);
    }
    free(s.bits);
}

static void
model_phase(struct model *m, size_t ops, int p_insert, int p_remove, size_t id_range)
{
    for (size_t i = 0; i < ops; i++) {
        int r = (int)(xorshift(&m->rng) % 100);
        int op = r < p_insert ? 0 : r < p_insert + p_remove ? 1 : 2;
        model_op(m, op, (size_t)(xorshift(&m->rng) % id_range));
        if (i % 97 == 0) {
            bool was = ht_rehashing(&m->h);
            size_t groups = m->h.t[0].ngroups;
            if (was) {
                ht_rehash(&m->h, xorshift(&m->rng) % 4);
            } else {
                ht_maybe_shrink(&m->h);
            }
            note_resize(m, was, groups);
        }
        if (i % 5003 == 0) {
            model_check(m);
        }
    }
    model_check(m);
    print_message("phase: %zu keys, %zu slots, %zu deleted, %zu/%zu/%zu\n", m->count,
                  ht_slots(&m->h), m->h.t[0].deleted, m->grows, m->shrinks, m->rebuilds);
}

static void
test_ht_model(void **state)
{
    (void)state;
    struct model m = {.nkeys = 40000, .rng = 0x9e3779b97f4a7c15ull};
    m.cur = calloc(m.nkeys, sizeof(*m.cur));
    ht_init(&m.h, &tslab);
    /* grow to ~20k keys */
    model_phase(&m, 60000, 60, 10, 40000);
    /* churn at a steady count (tombstones) */
    model_phase(&m, 100000, 45, 45, 40000);
    /* shrink to about a thousand, by steps */
    model_phase(&m, 150000, 2, 80, 40000);
    /* churn in a small table */
    model_phase(&m, 100000, 50, 50, 2000);
    /* grow again */
    model_phase(&m, 60000, 70, 5, 40000);
    print_message("model: %zu grows, %zu shrinks, %zu rebuilds\n", m.grows, m.shrinks,
                  m.rebuilds);
    assert_true(m.grows >= 10);
    assert_true(m.shrinks >= 2);
    assert_true(m.rebuilds >= 2);
    ht_clear(&m.h, free_it, NULL);
    for (size_t id = 0; id < m.nkeys; id++) {
        m.cur[id] = NULL;
    }
    free(m.cur);
}

/* ---- the scan guarantee under growth and shrink ---- */

/* Keys 0..N-1 stay for the whole scan; keys N.. come and go: the table
 * grows several times, then shrinks several times, with incremental steps
 * interleaved. Every stable key is visited exactly once, no other key of
 * the table is visited more than once. */
/* A full scan of a table caught in every state of a migration (each key
 * looked up before it is inserted, as SET does, which moves groups at its
 * own pace) visits every item exactly once. The run at the migration front
 * used to overlap the groups the first walk had just visited: 2 keys of
 * 1000 came back twice through SCAN. */
static void
test_ht_scan_mid_migration_once(void **state)
{
    (void)state;
    char key[32];
    for (size_t n = 20; n <= 600; n += 7) {
        for (int lookups = 0; lookups < 3; lookups++) {
            struct ht h;
            ht_init(&h, &tslab);
            for (size_t i = 0; i < n; i++) {
                snprintf(key, sizeof(key), "key:%zu", i * 7919 % 100003);
                size_t kl = strlen(key);
                uint64_t hv = ht_hash(key, kl);
                for (int l = 0; l < lookups; l++) {
                    assert_null(ht_find(&h, key, kl, hv));
                }
                assert_null(ht_replace(&h, mk(key, "v"), hv));
            }
            struct seen sn = {calloc(100003, 1), 0};
            size_t cursor = 0;
            do {
                cursor = ht_scan(&h, cursor, mark_seen, &sn);
            } while (cursor != 0);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(sn.bits[i * 7919 % 100003], 1);
            }
            assert_int_equal(sn.visits, n);
            free(sn.bits);
            ht_clear(&h, free_it, NULL);
        }
    }
}

static void
test_ht_scan_grow_and_shrink(void **state)
{
    (void)state;
    enum { N = 20000, EXTRA = 200000 };
    struct ht h;
    ht_init(&h, &tslab);
    struct item **extra = calloc(EXTRA, sizeof(*extra));
    char key[32];
    for (size_t i = 0; i < N; i++) {
        key_of(key, i);
        ht_insert(&h, mk(key, "s"), ht_hash(key, 16));
    }
    for (int round = 0; round < 3; round++) {
        struct seen s = {calloc(N + EXTRA, 1), 0};
        size_t c = 0, calls = 0, next = 0;
        size_t grows = 0, shrinks = 0;
        bool was = ht_rehashing(&h);
        do {
            c = ht_scan(&h, c, count_visit, &s);
            calls++;
            if (calls < 1500 + (size_t)round * 500) {
                /* growing: 100 new keys per call */
                for (int k = 0; k < 100 && next < EXTRA; k++, next++) {
                    key_of(key, N + next);
                    extra[next] = mk(key, "x");
                    ht_insert(&h, extra[next], ht_hash(key, 16));
                }
            } else {
                /* shrinking: drop the extra keys, shrink from the "cron" */
                for (int k = 0; k < 400 && next > 0; k++) {
                    next--;
                    key_of(key, N + next);
                    assert_ptr_equal(ht_remove(&h, key, 16, ht_hash(key, 16)), extra[next]);
                    item_free(&tslab, extra[next]);
                    extra[next] = NULL;
                }
                ht_maybe_shrink(&h);
            }
            if (ht_rehashing(&h) && !was) {
                if (h.t[1].ngroups > h.t[0].ngroups) {
                    grows++;
                } else {
                    shrinks++;
                }
            }
            ht_rehash(&h, calls % 3);
            was = ht_rehashing(&h);
        } while (c != 0);
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(s.bits[i], 1);
        }
        for (size_t i = N; i < N + EXTRA; i++) {
            assert_true(s.bits[i] <= 1);
        }
        print_message("scan round %d: %zu calls; %zu grows, %zu shrinks during the scan\n",
                      round, calls, grows, shrinks);
        assert_true(grows >= 3);
        assert_true(shrinks >= 2);
        free(s.bits);
        while (next > 0) {
            next--;
            key_of(key, N + next);
            item_free(&tslab, ht_remove(&h, key, 16, ht_hash(key, 16)));
        }
    }
    free(extra);
    ht_clear(&h, free_it, NULL);
}

/* ---- misses touch no item ---- */

static void
test_ht_misses_touch_no_item(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct ht h;
    ht_init(&h, &tslab);
    char key[32];
    for (size_t i = 0; i < N; i++) {
        key_of(key, i);
        ht_insert(&h, mk(key, "v"), ht_hash(key, 16));
    }
    while (ht_rehash(&h, 1000)) {
    }
    uint64_t before = h.key_cmps;
    for (size_t i = N; i < 2 * N; i++) {
        key_of(key, i);
        assert_null(ht_find(&h, key, 16, ht_hash(key, 16)));
    }
    double per_miss = (double)(h.key_cmps - before) / N;
    before = h.key_cmps;
    for (size_t i = 0; i < N; i++) {
        key_of(key, i);
        assert_non_null(ht_find(&h, key, 16, ht_hash(key, 16)));
    }
    double per_hit = (double)(h.key_cmps - before) / N;
    print_message("load %.3f: %.4f key compares per miss, %.4f per hit\n",
                  (double)ht_count(&h) / (double)ht_slots(&h), per_miss, per_hit);
    /* a tag matches a foreign slot with probability 1/128 */
    assert_true(per_miss < 0.15);
    assert_true(per_hit < 1.1);
    ht_clear(&h, free_it, NULL);
}

/* ---- memory per key ---- */

static void
test_ht_memory_per_key(void **state)
{
    (void)state;
    enum { N = 125000 };
    struct ht h;
    ht_init(&h, &tslab);
    char key[32];
    double sum = 0, sum_one = 0; /* sum_one: the new table only */
    size_t samples = 0;
    double next_sample = 1000;
    for (size_t i = 0; i < N; i++) {
        key_of(key, i);
        ht_insert(&h, mk(key, "v"), ht_hash(key, 16));
        /* log-uniform samples from 1000 keys on, one per 1% */
        if ((double)(i + 1) >= next_sample) {
            sum += (double)ht_mem(&h) / (double)(i + 1);
            size_t g = ht_rehashing(&h) ? h.t[1].ngroups : h.t[0].ngroups;
            sum_one += (double)g * sizeof(struct ht_group) / (double)(i + 1);
            samples++;
            next_sample *= 1.01;
        }
    }
    double at_n = (double)ht_mem(&h) / N;
    while (ht_rehash(&h, 1000)) {
    }
    double settled = (double)ht_mem(&h) / N;
    double avg = sum / (double)samples;
    print_message("index: %.2f B/key at %d keys (%.2f after migration); averaged over "
                  "growth (1k..125k keys): %.2f B/key, %.2f without the old table while "
                  "migrating\n",
                  at_n, N, settled, avg, sum_one / (double)samples);
    assert_true(avg < 8.5);
    assert_true(settled < 9.0);
    ht_clear(&h, free_it, NULL);

    /* sized up front as the store does (1/8 slack for uneven shards) */
    ht_init(&h, &tslab);
    ht_reserve(&h, N + N / 8 + 16);
    for (size_t i = 0; i < N; i++) {
        key_of(key, i);
        ht_insert(&h, mk(key, "v"), ht_hash(key, 16));
    }
    double reserved = (double)ht_mem(&h) / N;
    print_message("index: %.2f B/key at %d keys with ht_reserve(n + n/8)\n", reserved, N);
    assert_true(reserved < 6.6);
    ht_clear(&h, free_it, NULL);
}

/* ---- random ---- */

static void
test_ht_random_distribution(void **state)
{
    (void)state;
    enum { N = 1000, DRAWS = 200000 };
    struct ht h;
    ht_init(&h, &tslab);
    char key[32];
    for (size_t i = 0; i < N; i++) {
        key_of(key, i);
        ht_insert(&h, mk(key, "v"), ht_hash(key, 16));
    }
    uint64_t rng = 12345;
    for (int mid = 0; mid < 2; mid++) {
        if (mid) {
            /* most removed, then a shrink in progress */
            for (size_t i = N / 5; i < N; i++) {
                key_of(key, i);
                item_free(&tslab, ht_remove(&h, key, 16, ht_hash(key, 16)));
            }
            ht_maybe_shrink(&h);
            assert_true(ht_rehashing(&h));
            ht_rehash(&h, 1);
            assert_true(ht_rehashing(&h));
        } else {
            while (ht_rehash(&h, 1000)) {
            }
        }
        size_t live = ht_count(&h);
        unsigned *cnt = calloc(N, sizeof(*cnt));
        for (int d = 0; d < DRAWS; d++) {
            struct item *it = ht_random(&h, xorshift, &rng);
            assert_non_null(it);
            char k[32];
            memcpy(k, item_key(it), 16);
            k[16] = '\0';
            cnt[strtoull(k + 4, NULL, 10)]++;
        }
        double expect = (double)DRAWS / (double)live, chi = 0;
        for (size_t i = 0; i < N; i++) {
            if (i >= live) {
                assert_int_equal(cnt[i], 0);
                continue;
            }
            double d = cnt[i] - expect;
            chi += d * d / expect;
        }
        /* chi-square with live-1 degrees of freedom: mean live, sd ~sqrt(2 live) */
        print_message("random (%s): chi2 %.0f for %zu keys\n", mid ? "mid-shrink" : "settled",
                      chi, live);
        double over = chi - (double)live; /* under 6 sd (no libm) */
        assert_true(over < 0 || over * over < 36 * 2.0 * (double)live);
        free(cnt);
    }
    ht_clear(&h, free_it, NULL);
    assert_null(ht_random(&h, xorshift, &rng));
}

/* ---- reserve, clear, prefetch ---- */

static void
test_ht_reserve(void **state)
{
    (void)state;
    enum { N = 50000 };
    struct ht h;
    ht_init(&h, &tslab);
    ht_reserve(&h, N);
    size_t mem = ht_mem(&h);
    assert_true(mem >= N * 5);
    assert_true(ht_slots(&h) * 7 / 8 >= N);
    char key[32];
    for (size_t i = 0; i < N; i++) {
        key_of(key, i);
        ht_insert(&h, mk(key, "v"), ht_hash(key, 16));
        assert_false(ht_rehashing(&h));
    }
    assert_int_equal(ht_mem(&h), mem);
    /* no-op on a table that holds items */
    ht_reserve(&h, 4 * N);
    assert_int_equal(ht_mem(&h), mem);
    ht_clear(&h, free_it, NULL);
    /* a smaller reserve than the table is a no-op too */
    ht_reserve(&h, 1000);
    mem = ht_mem(&h);
    ht_reserve(&h, 10);
    assert_int_equal(ht_mem(&h), mem);
    ht_deinit(&h);
}

static void
count_free(struct item *it, void *ctx)
{
    (*(size_t *)ctx)++;
    item_free(&tslab, it);
}

static void
test_ht_clear(void **state)
{
    (void)state;
    struct ht h;
    ht_init(&h, &tslab);
    char key[32];
    /* clear in the middle of a migration: items of both tables, once */
    size_t n = 0;
    while (!ht_rehashing(&h) || ht_count(&h) < 3000) {
        key_of(key, n++);
        ht_insert(&h, mk(key, "v"), ht_hash(key, 16));
    }
    assert_true(ht_rehashing(&h));
    size_t freed = 0;
    ht_clear(&h, count_free, &freed);
    assert_int_equal(freed, n);
    assert_int_equal(ht_count(&h), 0);
    assert_int_equal(ht_mem(&h), 0);
    assert_false(ht_rehashing(&h));
    /* usable again */
    ht_insert(&h, mk("again", "v"), ht_hash("again", 5));
    assert_non_null(ht_find(&h, "again", 5, ht_hash("again", 5)));
    ht_clear(&h, free_it, NULL);
}

static void
test_ht_prefetch(void **state)
{
    (void)state;
    struct ht h;
    ht_init(&h, &tslab);
    /* harmless on an empty table and mid-migration */
    ht_prefetch(&h, 42, 0);
    ht_prefetch(&h, 42, 1);
    char key[32];
    for (size_t i = 0; i < 5000; i++) {
        key_of(key, i);
        uint64_t hash = ht_hash(key, 16);
        ht_prefetch(&h, hash, 0);
        ht_prefetch(&h, hash, 1);
        ht_insert(&h, mk(key, "v"), hash);
        ht_prefetch(&h, hash, 1);
    }
    ht_clear(&h, free_it, NULL);
}

static void
test_ht_bench(void **state)
{
    (void)state;
    size_t n = bench_keys();
    if (n == 0) {
        skip();
    }
    bench(n);
}

int
main(void)
{
    if (slab_init(&tslab, (size_t)1 << 32) != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ht_grow_and_find),
        cmocka_unit_test(test_ht_replace_remove),
        cmocka_unit_test(test_ht_remove_ref),
        cmocka_unit_test(test_ht_scan_during_resize),
        cmocka_unit_test(test_ht_scan_at_resumes_midway),
        cmocka_unit_test(test_ht_model),
        cmocka_unit_test(test_ht_scan_grow_and_shrink),
        cmocka_unit_test(test_ht_scan_mid_migration_once),
        cmocka_unit_test(test_ht_misses_touch_no_item),
        cmocka_unit_test(test_ht_memory_per_key),
        cmocka_unit_test(test_ht_random_distribution),
        cmocka_unit_test(test_ht_reserve),
        cmocka_unit_test(test_ht_clear),
        cmocka_unit_test(test_ht_prefetch),
        cmocka_unit_test(test_ht_bench),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    slab_deinit(&tslab);
    return rc;
}

#endif
