/*
 * test_evict.c -- the eviction policies: LRU order against a naive model,
 * W-TinyLFU invariants under a random workload with weights, scan
 * resistance, kind switching, noeviction, capacity changes, the climber,
 * that the owner's bytes of the node (user[]) survive every operation, and
 * that on_move keeps a node's place.
 *
 * The items array is the policy's base: an item's ref is the offset of its
 * node from the array's start in EVICT_REF_UNIT units (never 0, as the node
 * is not the item's first member).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "evict/evict.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

struct item {
    uint64_t key;
    uint64_t hash;
    uint64_t weight;
    uint64_t last_use;   /* naive LRU model */
    bool resident;
    struct evict_node node;
};
_Static_assert(sizeof(struct item) % EVICT_REF_UNIT == 0 &&
                   offsetof(struct item, node) % EVICT_REF_UNIT == 0 &&
                   offsetof(struct item, node) != 0,
               "items can be addressed by refs");

static uint64_t
mix(uint64_t k)
{
    k += 0x9e3779b97f4a7c15ULL;
    k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9ULL;
    k = (k ^ (k >> 27)) * 0x94d049bb133111ebULL;
    return k ^ (k >> 31);
}

/* The item whose node a ref names; ctx is the items array (the base). */
static struct item *
ref_item(evict_ref r, void *ctx)
{
    char *node = (char *)ctx + (size_t)r * EVICT_REF_UNIT;

    return container_of((struct evict_node *)(void *)node, struct item, node);
}

static evict_ref
item_ref(const struct item *base, const struct item *e)
{
    return (evict_ref)(((const char *)&e->node - (const char *)base) /
                       EVICT_REF_UNIT);
}

static uint64_t
item_hash(evict_ref r, void *ctx)
{
    return ref_item(r, ctx)->hash;
}

static uint64_t
item_weight(evict_ref r, void *ctx)
{
    return ref_item(r, ctx)->weight;
}

/* The owner's bytes of item i's node: a pattern the policy must keep. */
static uint8_t
user_byte(size_t i, int k)
{
    return (uint8_t)(mix(i * 3 + (size_t)k) | 1);
}

static struct item *
make_items(size_t n)
{
    struct item *it = calloc(n, sizeof(*it));

    assert_non_null(it);
    for (size_t i = 0; i < n; i++) {
        it[i].key = i;
        it[i].hash = mix(i);
        it[i].weight = 1;
        for (int k = 0; k < 3; k++) {
            it[i].node.user[k] = user_byte(i, k);
        }
    }
    return it;
}

static void
check_user_bytes(const struct item *it, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++) {
            assert_int_equal(it[i].node.user[k], user_byte(i, k));
        }
    }
}

/* Params and ops for a policy over the items array `it`. */
static void
setup(struct evict_params *prm, struct evict_ops *ops, struct item *it,
      enum evict_kind kind, uint64_t cap)
{
    evict_params_default(prm);
    prm->kind = kind;
    prm->capacity = cap;
    prm->base = (char *)it;
    *ops = (struct evict_ops){item_hash, item_weight, it};
}

static void
init_policy(struct evict_policy *p, struct item *it, enum evict_kind kind,
            uint64_t cap)
{
    struct evict_params prm;
    struct evict_ops ops;

    setup(&prm, &ops, it, kind, cap);
    assert_int_equal(evict_init(p, &prm, &ops), 0);
}

/* The ref of items[i] in policy p (whose base is the items array). */
static evict_ref
ref_of(const struct evict_policy *p, const struct item *e)
{
    return item_ref((const struct item *)(const void *)p->base, e);
}

static struct item *
item_of(const struct evict_policy *p, evict_ref r)
{
    return container_of(evict_node_at(p, r), struct item, node);
}

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A GET in the replay model: hit -> access, miss -> insert then evict to
 * capacity. Returns true on a hit. */
static bool
get(struct evict_policy *p, struct item *it, uint64_t cap)
{
    evict_ref v;

    if (it->resident) {
        evict_on_access(p, ref_of(p, it), it->hash);
        return true;
    }
    evict_on_miss(p, it->hash);
    evict_on_insert(p, ref_of(p, it), it->hash, it->weight);
    it->resident = true;
    while (evict_weight(p) > cap && (v = evict_one(p)) != 0) {
        struct item *e = item_of(p, v);
        assert_true(e->resident);
        assert_int_equal(evict_node_segment(&e->node), EVICT_SEG_NONE);
        assert_int_equal(e->node.prev, 0);
        assert_int_equal(e->node.next, 0);
        e->resident = false;
    }
    return false;
}

static void
test_node_size_and_parse(void **state)
{
    (void)state;
    assert_int_equal(sizeof(struct evict_node), 12);
    assert_int_equal(alignof(struct evict_node), EVICT_REF_UNIT);
    assert_int_equal(evict_kind_parse("tinylfu"), EVICT_TINYLFU);
    assert_int_equal(evict_kind_parse("lru"), EVICT_LRU);
    assert_int_equal(evict_kind_parse("allkeys-lru"), EVICT_LRU);
    assert_int_equal(evict_kind_parse("noeviction"), EVICT_NOEVICTION);
    assert_int_equal(evict_kind_parse("random"), -1);
    assert_string_equal(evict_kind_name(EVICT_TINYLFU), "tinylfu");
}

static void
test_init_rejects_bad_params(void **state)
{
    struct item *it = make_items(4);
    struct evict_policy p;
    struct evict_params prm;
    struct evict_ops ops;
    struct evict_ops bad = {NULL, item_weight, NULL};

    (void)state;
    setup(&prm, &ops, it, EVICT_TINYLFU, 0);
    assert_int_equal(evict_init(&p, &prm, &ops), -22); /* capacity 0 */
    prm.capacity = 10;
    assert_int_equal(evict_init(&p, &prm, &bad), -22);
    prm.base = NULL;
    assert_int_equal(evict_init(&p, &prm, &ops), -22);
    prm.base = (char *)it;
    prm.window_ratio = 1.5;
    assert_int_equal(evict_init(&p, &prm, &ops), -22);
    prm.window_ratio = 0.01;
    assert_int_equal(evict_init(&p, &prm, &ops), 0);
    evict_deinit(&p);
    free(it);
}

/* LRU: every eviction must be the resident item with the oldest use. */
static void
test_lru_matches_naive_model(void **state)
{
    enum { N = 400, CAP = 64, OPS = 20000 };
    struct item *it = make_items(N);
    struct evict_policy p;
    uint64_t rng = 88172645463325252ULL;
    uint64_t clock = 0;

    (void)state;
    init_policy(&p, it, EVICT_LRU, CAP);
    for (int op = 0; op < OPS; op++) {
        /* Skewed keys so there are hits. */
        uint64_t r = rnd(&rng);
        struct item *e = &it[(r % 4 == 0) ? r % N : r % (N / 8)];
        if (op % 97 == 0 && e->resident) {
            evict_on_remove(&p, ref_of(&p, e));
            e->resident = false;
            continue;
        }
        e->last_use = ++clock;
        if (e->resident) {
            evict_on_access(&p, ref_of(&p, e), e->hash);
            continue;
        }
        evict_on_insert(&p, ref_of(&p, e), e->hash, 1);
        e->resident = true;
        while (evict_count(&p) > CAP) {
            evict_ref v = evict_one(&p);
            struct item *victim;
            assert_int_not_equal(v, 0);
            victim = item_of(&p, v);
            uint64_t oldest = UINT64_MAX;
            for (int i = 0; i < N; i++) {
                if (it[i].resident && it[i].last_use < oldest) {
                    oldest = it[i].last_use;
                }
            }
            assert_true(victim->resident);
            assert_int_equal(victim->last_use, oldest);
            victim->resident = false;
        }
    }
    check_user_bytes(it, N);
    evict_deinit(&p);
    free(it);
}

static void
check_invariants(const struct evict_policy *p, const struct item *it,
                 size_t n)
{
    struct evict_stats st;
    uint64_t weight = 0;
    uint64_t count = 0;

    for (size_t i = 0; i < n; i++) {
        if (it[i].resident) {
            weight += it[i].weight;
            count++;
            assert_int_not_equal(evict_node_segment(&it[i].node),
                                 EVICT_SEG_NONE);
        } else {
            assert_int_equal(evict_node_segment(&it[i].node), EVICT_SEG_NONE);
        }
    }
    check_user_bytes(it, n);
    evict_stats(p, &st);
    assert_int_equal(st.weight, weight);
    assert_int_equal(st.count, count);
    assert_int_equal(st.window_weight + st.probation_weight +
                         st.protected_weight, weight);
    assert_int_equal(st.window_count + st.probation_count + st.protected_count,
                     count);
    assert_true(st.protected_weight <= st.protected_max);
    assert_true(st.window_max + st.protected_max <= st.capacity);
    assert_true(st.window_max <= st.capacity);
}

/* W-TinyLFU with weights: random gets, removals and resizes; check the
 * bookkeeping after every step and that each node leaves exactly once. */
static void
test_tinylfu_invariants(void **state)
{
    enum { N = 3000, CAP = 2000, OPS = 200000 };
    struct item *it = make_items(N);
    struct evict_policy p;
    struct evict_params prm;
    struct evict_ops ops;
    uint64_t rng = 0x243f6a8885a308d3ULL;

    (void)state;
    for (int i = 0; i < N; i++) {
        it[i].weight = 1 + (uint64_t)(mix((uint64_t)i + 77) % 10);
    }
    setup(&prm, &ops, it, EVICT_TINYLFU, CAP);
    prm.expected_entries = CAP / 5;
    assert_int_equal(evict_init(&p, &prm, &ops), 0);
    for (int op = 0; op < OPS; op++) {
        uint64_t r = rnd(&rng);
        /* Shifting hot spot so the climber and admission both work. */
        uint64_t base = (uint64_t)(op / 20000) * 150;
        struct item *e = &it[(r % 3 == 0) ? r % N : (base + r % 300) % N];
        if (r % 101 == 0 && e->resident) {
            evict_on_remove(&p, ref_of(&p, e));
            evict_on_remove(&p, ref_of(&p, e)); /* unlinked: ignored */
            e->resident = false;
        } else if (r % 103 == 0 && e->resident) {
            uint64_t nw = 1 + (r >> 8) % 10;
            uint64_t old = e->weight;
            e->weight = nw;
            evict_on_update(&p, ref_of(&p, e), old, nw);
        } else {
            get(&p, e, CAP);
        }
        if (op % 997 == 0) {
            check_invariants(&p, it, N);
        }
    }
    check_invariants(&p, it, N);
    assert_true(p.climb.samples > 0);
    /* Drain: every resident node comes out exactly once, then 0. */
    for (;;) {
        evict_ref v = evict_one(&p);
        if (v == 0) {
            break;
        }
        struct item *e = item_of(&p, v);
        assert_true(e->resident);
        e->resident = false;
    }
    check_invariants(&p, it, N);
    for (int i = 0; i < N; i++) {
        assert_false(it[i].resident);
    }
    assert_int_equal(evict_count(&p), 0);
    assert_int_equal(evict_weight(&p), 0);
    evict_deinit(&p);
    free(it);
}

/* A hot set survives a one-time scan under W-TinyLFU, not under LRU. */
static int
hot_survivors(enum evict_kind kind)
{
    enum { CAP = 100, HOT = 50, SCAN = 2000 };
    struct item *it = make_items(HOT + SCAN);
    struct evict_policy p;
    int alive = 0;

    init_policy(&p, it, kind, CAP);
    for (int round = 0; round < 10; round++) {
        for (int k = 0; k < HOT; k++) {
            get(&p, &it[k], CAP);
        }
    }
    for (int k = HOT; k < HOT + SCAN; k++) {
        get(&p, &it[k], CAP);
    }
    for (int k = 0; k < HOT; k++) {
        alive += it[k].resident;
    }
    evict_deinit(&p);
    free(it);
    return alive;
}

static void
test_scan_resistance(void **state)
{
    (void)state;
    assert_true(hot_survivors(EVICT_TINYLFU) >= 45);
    assert_int_equal(hot_survivors(EVICT_LRU), 0);
}

static void
test_switch_kind_keeps_nodes(void **state)
{
    enum { N = 500, CAP = 200 };
    struct item *it = make_items(N);
    struct evict_policy p;
    uint64_t rng = 99;
    struct evict_stats st;

    (void)state;
    init_policy(&p, it, EVICT_TINYLFU, CAP);
    for (int i = 0; i < 5000; i++) {
        get(&p, &it[rnd(&rng) % N], CAP);
    }
    check_invariants(&p, it, N);
    assert_int_equal(evict_set_kind(&p, EVICT_LRU), 0);
    check_invariants(&p, it, N);
    evict_stats(&p, &st);
    assert_int_equal(st.window_count, 0);
    assert_int_equal(st.protected_count, 0);
    assert_int_equal(st.probation_count, CAP);
    for (int i = 0; i < 2000; i++) {
        get(&p, &it[rnd(&rng) % N], CAP);
    }
    check_invariants(&p, it, N);
    assert_int_equal(evict_set_kind(&p, EVICT_NOEVICTION), 0);
    assert_int_equal(evict_one(&p), 0);
    assert_int_equal(evict_set_kind(&p, EVICT_TINYLFU), 0);
    for (int i = 0; i < 5000; i++) {
        get(&p, &it[rnd(&rng) % N], CAP);
    }
    check_invariants(&p, it, N);
    assert_int_equal(evict_set_kind(&p, (enum evict_kind)7), -22);
    evict_deinit(&p);
    free(it);
}

static void
test_noeviction(void **state)
{
    struct item *it = make_items(10);
    struct evict_policy p;

    (void)state;
    init_policy(&p, it, EVICT_NOEVICTION, 5);
    for (int i = 0; i < 10; i++) {
        evict_on_insert(&p, ref_of(&p, &it[i]), it[i].hash, 1);
        it[i].resident = true;
    }
    assert_int_equal(evict_one(&p), 0);
    assert_int_equal(evict_count(&p), 10);
    evict_on_access(&p, ref_of(&p, &it[3]), it[3].hash);
    evict_on_remove(&p, ref_of(&p, &it[3]));
    it[3].resident = false;
    assert_int_equal(evict_count(&p), 9);
    check_invariants(&p, it, 10);
    evict_deinit(&p);
    free(it);
}

static void
test_set_capacity(void **state)
{
    struct item *it = make_items(1);
    struct evict_policy p;
    struct evict_stats st;

    (void)state;
    init_policy(&p, it, EVICT_TINYLFU, 10000);
    evict_stats(&p, &st);
    /* Default window 0.5 %, protected 80 % of the rest. */
    assert_int_equal(st.window_max, 50);
    assert_int_equal(st.protected_max, 7960);
    assert_int_equal(evict_set_capacity(&p, 0), -22);
    assert_int_equal(evict_set_capacity(&p, 20000), 0);
    evict_stats(&p, &st);
    assert_int_equal(st.capacity, 20000);
    assert_int_equal(st.window_max, 100);
    assert_int_equal(st.protected_max, 15920);
    evict_deinit(&p);
    free(it);
}

/* Recency only: every key is used once more, at a random distance up to
 * 40 % of capacity (in new keys), and never again. Frequency tells nothing,
 * a larger window catches more, so the climber must grow it well past its
 * initial 0.5 %. Returns the final window ratio. */
static double
recency_window(uint64_t cap, uint64_t *hits_out)
{
    uint64_t n = cap * 200;
    struct item *it = make_items(n);
    struct evict_policy p;
    struct evict_stats st;
    uint64_t rng = 7;
    uint64_t hits = 0;

    init_policy(&p, it, EVICT_TINYLFU, cap);
    for (uint64_t k = 0; k < n; k++) {
        get(&p, &it[k], cap);
        uint64_t d = 1 + rnd(&rng) % (cap * 4 / 10);
        if (k >= d) {
            hits += get(&p, &it[k - d], cap);
        }
    }
    evict_stats(&p, &st);
    assert_true(st.climber_samples > 10);
    assert_true(st.climber_adjustments > 0);
    if (cap > SKETCH_LARGE_ENTRIES) {
        /* Density law: the ratio kept its sign, so the gain grew from its
         * initial 3 % of capacity per unit of log ratio. */
        assert_true(p.climb.gain > 0.03);
    }
    *hits_out = hits;
    evict_deinit(&p);
    free(it);
    return st.window_ratio;
}

static void
test_climber_grows_window_for_recency(void **state)
{
    uint64_t hits;
    double w;

    (void)state;
    /* Reactive law (<= 4096 entries). */
    w = recency_window(1000, &hits);
    print_message("reactive: window %.3f hits %llu\n", w,
                  (unsigned long long)hits);
    assert_true(w > 0.3);
    /* Density law. */
    w = recency_window(8192, &hits);
    print_message("density: window %.3f hits %llu\n", w,
                  (unsigned long long)hits);
    assert_true(w > 0.3);
}

/* The policy never writes user[]: a mixed workload (hits, misses, weights,
 * updates, removals, evictions, kind switches, capacity changes, window
 * resizes) with every node's owner bytes checked after each operation. */
static void
test_user_bytes_untouched(void **state)
{
    enum { N = 300, CAP = 120, OPS = 30000 };
    static const enum evict_kind kinds[] = {EVICT_LRU, EVICT_NOEVICTION,
                                            EVICT_TINYLFU};
    struct item *it = make_items(N);
    struct evict_policy p;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    uint64_t cap = CAP;

    (void)state;
    for (int i = 0; i < N; i++) {
        it[i].weight = 1 + (uint64_t)(mix((uint64_t)i + 5) % 4);
        evict_node_init(&it[i].node); /* leaves user[] alone */
    }
    check_user_bytes(it, N);
    init_policy(&p, it, EVICT_TINYLFU, cap);
    for (int op = 0; op < OPS; op++) {
        uint64_t r = rnd(&rng);
        struct item *e = &it[(r % 4 == 0) ? r % N : r % (N / 5)];

        if (r % 53 == 0 && e->resident) {
            evict_on_remove(&p, ref_of(&p, e));
            e->resident = false;
        } else if (r % 59 == 0 && e->resident) {
            uint64_t old = e->weight;
            e->weight = 1 + (r >> 9) % 4;
            evict_on_update(&p, ref_of(&p, e), old, e->weight);
        } else if (r % 2003 == 0) {
            assert_int_equal(evict_set_kind(&p, kinds[(r >> 7) % 3]), 0);
        } else if (r % 2011 == 0) {
            cap = CAP / 2 + (r >> 11) % CAP;
            assert_int_equal(evict_set_capacity(&p, cap), 0);
        } else if (r % 1009 == 0) {
            evict__resize_window(&p, (int64_t)((r >> 13) % 41) - 20);
        } else if (p.kind == EVICT_NOEVICTION && !e->resident &&
                   evict_weight(&p) + e->weight > cap) {
            /* The store would refuse the write. */
            evict_on_miss(&p, e->hash);
        } else {
            get(&p, e, cap);
        }
        check_user_bytes(it, N);
    }
    check_invariants(&p, it, N);
    if (p.kind == EVICT_NOEVICTION) {
        assert_int_equal(evict_set_kind(&p, EVICT_LRU), 0);
    }
    while (evict_one(&p) != 0) {
    }
    assert_int_equal(evict_count(&p), 0);
    check_user_bytes(it, N);
    evict_deinit(&p);
    free(it);
}

/* Copy an item's own fields (not its node) from src to dst. */
static void
copy_item(struct item *dst, const struct item *src)
{
    dst->key = src->key;
    dst->hash = src->hash;
    dst->weight = src->weight;
    dst->last_use = src->last_use;
    dst->resident = src->resident;
}

/* on_move keeps the node's place: policy B, whose items hop between the
 * twin slots k and k + N, evicts exactly the keys policy A (no moves) does,
 * in the same order, with the same figures. */
static void
move_matches(enum evict_kind kind)
{
    enum { N = 400, CAP = 150, OPS = 40000 };
    struct item *a = make_items(N);
    struct item *b = make_items(2 * N);
    uint32_t slot[N];
    struct evict_policy pa, pb;
    struct evict_stats sa, sb;
    uint64_t rng = 0x2545f4914f6cdd1dULL;

    for (int k = 0; k < N; k++) {
        slot[k] = (uint32_t)k;
        a[k].weight = 1 + (uint64_t)(mix((uint64_t)k + 3) % 3);
        copy_item(&b[k], &a[k]);
    }
    init_policy(&pa, a, kind, CAP);
    init_policy(&pb, b, kind, CAP);
    for (int op = 0; op < OPS; op++) {
        uint64_t r = rnd(&rng);
        uint32_t k = (uint32_t)((r % 3 == 0) ? r % N : r % (N / 6));
        struct item *ea = &a[k];
        struct item *eb = &b[slot[k]];

        if (r % 7 == 0) {
            /* Move (linked or not) to the twin slot. */
            uint32_t to = slot[k] < N ? slot[k] + N : slot[k] - N;
            copy_item(&b[to], eb);
            evict_on_move(&pb, ref_of(&pb, eb), ref_of(&pb, &b[to]));
            assert_int_equal(evict_node_segment(&eb->node), EVICT_SEG_NONE);
            assert_int_equal(evict_node_segment(&b[to].node),
                             evict_node_segment(&ea->node));
            eb->resident = false;
            slot[k] = to;
            continue;
        }
        if (ea->resident) {
            evict_on_access(&pa, ref_of(&pa, ea), ea->hash);
            evict_on_access(&pb, ref_of(&pb, eb), eb->hash);
            continue;
        }
        evict_on_miss(&pa, ea->hash);
        evict_on_miss(&pb, eb->hash);
        evict_on_insert(&pa, ref_of(&pa, ea), ea->hash, ea->weight);
        evict_on_insert(&pb, ref_of(&pb, eb), eb->hash, eb->weight);
        ea->resident = eb->resident = true;
        while (evict_weight(&pa) > CAP) {
            struct item *va = item_of(&pa, evict_one(&pa));
            struct item *vb = item_of(&pb, evict_one(&pb));
            assert_int_equal(va->key, vb->key);
            assert_ptr_equal(vb, &b[slot[vb->key]]);
            va->resident = vb->resident = false;
        }
    }
    evict_stats(&pa, &sa);
    evict_stats(&pb, &sb);
    assert_int_equal(sa.window_count, sb.window_count);
    assert_int_equal(sa.probation_weight, sb.probation_weight);
    assert_int_equal(sa.protected_weight, sb.protected_weight);
    assert_int_equal(sa.admissions, sb.admissions);
    check_invariants(&pa, a, N);
    check_invariants(&pb, b, 2 * N);
    /* Drain both: the same keys in the same order. */
    for (evict_ref ra; (ra = evict_one(&pa)) != 0;) {
        evict_ref rb = evict_one(&pb);
        assert_int_not_equal(rb, 0);
        assert_int_equal(item_of(&pa, ra)->key, item_of(&pb, rb)->key);
    }
    assert_int_equal(evict_one(&pb), 0);
    check_user_bytes(b, 2 * N);
    evict_deinit(&pa);
    evict_deinit(&pb);
    free(a);
    free(b);
}

static void
test_move_keeps_place(void **state)
{
    (void)state;
    move_matches(EVICT_TINYLFU);
    move_matches(EVICT_LRU);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_size_and_parse),
        cmocka_unit_test(test_init_rejects_bad_params),
        cmocka_unit_test(test_lru_matches_naive_model),
        cmocka_unit_test(test_tinylfu_invariants),
        cmocka_unit_test(test_scan_resistance),
        cmocka_unit_test(test_switch_kind_keeps_nodes),
        cmocka_unit_test(test_noeviction),
        cmocka_unit_test(test_set_capacity),
        cmocka_unit_test(test_climber_grows_window_for_recency),
        cmocka_unit_test(test_user_bytes_untouched),
        cmocka_unit_test(test_move_keeps_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
