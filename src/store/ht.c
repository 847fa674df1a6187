/*
 * ht.c -- see ht.h.
 *
 * Growth: when the item count reaches the bucket count (load factor 1) a table
 * twice as large is allocated and items move over a few buckets at a time, on
 * every insert/find and from the shard's cron. Shrink: when the fill drops below
 * 1/8, the cron starts a rehash into a smaller table.
 *
 * Items are named by their 32-bit slab references (item.h): a bucket is 4
 * bytes and the chain link inside the item is 4. Lookups during rehash look
 * in both arrays; inserts always go into the new one.
 */
#include "store/ht.h"

#include <stdlib.h>
#include <xxhash.h>

#include "util/mem.h"

#define HT_MIN_SIZE 16

static uint32_t *buckets_alloc(struct ht *h, size_t n);
static void buckets_free(struct ht *h, uint32_t *t, size_t n);

#define AT(h, ref) item_at((h)->slab, (ref))

uint64_t
ht_hash(const char *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

void
ht_init(struct ht *h, const struct slab *slab)
{
    h->slab = slab;
    h->tab[0] = h->tab[1] = NULL;
    h->size[0] = h->size[1] = 0;
    h->used[0] = h->used[1] = 0;
    h->rehash_idx = (size_t)-1;
    h->mem = 0;
}

void
ht_deinit(struct ht *h)
{
    big_free(h->tab[0], h->size[0] * sizeof(uint32_t));
    big_free(h->tab[1], h->size[1] * sizeof(uint32_t));
    ht_init(h, h->slab);
}

void
ht_reserve(struct ht *h, size_t n)
{
    if (ht_count(h) != 0 || ht_rehashing(h)) {
        return;
    }
    size_t size = HT_MIN_SIZE;
    while (size < n) {
        size <<= 1;
    }
    if (size <= h->size[0]) {
        return;
    }
    buckets_free(h, h->tab[0], h->size[0]);
    h->tab[0] = buckets_alloc(h, size);
    h->size[0] = size;
}

size_t
ht_mem(const struct ht *h)
{
    return h->mem;
}

static uint32_t *
buckets_alloc(struct ht *h, size_t n)
{
    uint32_t *t = big_alloc(n * sizeof(uint32_t));
    h->mem += big_size(t, n * sizeof(uint32_t));
    return t;
}

static void
buckets_free(struct ht *h, uint32_t *t, size_t n)
{
    if (t) {
        h->mem -= big_size(t, n * sizeof(uint32_t));
        big_free(t, n * sizeof(uint32_t));
    }
}

static void
start_resize(struct ht *h, size_t size)
{
    if (size < HT_MIN_SIZE) {
        size = HT_MIN_SIZE;
    }
    h->tab[1] = buckets_alloc(h, size);
    h->size[1] = size;
    h->used[1] = 0;
    h->rehash_idx = 0;
}

static void
finish_rehash(struct ht *h)
{
    buckets_free(h, h->tab[0], h->size[0]);
    h->tab[0] = h->tab[1];
    h->size[0] = h->size[1];
    h->used[0] = h->used[1];
    h->tab[1] = NULL;
    h->size[1] = 0;
    h->used[1] = 0;
    h->rehash_idx = (size_t)-1;
}

bool
ht_rehash(struct ht *h, size_t n)
{
    if (!ht_rehashing(h)) {
        return false;
    }
    size_t empty_visits = n * 10;
    size_t mask1 = h->size[1] - 1;
    while (n-- && h->used[0] > 0) {
        while (h->tab[0][h->rehash_idx] == 0) {
            h->rehash_idx++;
            if (--empty_visits == 0) {
                return true;
            }
        }
        uint32_t ref = h->tab[0][h->rehash_idx];
        while (ref) {
            struct item *it = AT(h, ref);
            uint32_t next = it->hnext;
            size_t idx = ht_hash(item_key(it), item_klen(it)) & mask1;
            it->hnext = h->tab[1][idx];
            h->tab[1][idx] = ref;
            h->used[0]--;
            h->used[1]++;
            ref = next;
        }
        h->tab[0][h->rehash_idx] = 0;
        h->rehash_idx++;
    }
    if (h->used[0] == 0) {
        finish_rehash(h);
        return false;
    }
    return true;
}

void
ht_maybe_shrink(struct ht *h)
{
    if (ht_rehashing(h) || h->size[0] <= HT_MIN_SIZE) {
        return;
    }
    if (h->used[0] * 8 < h->size[0]) {
        size_t size = HT_MIN_SIZE;
        while (size < h->used[0] * 2) {
            size <<= 1;
        }
        if (size < h->size[0]) {
            start_resize(h, size);
        }
    }
}

static void
maybe_grow(struct ht *h)
{
    if (ht_rehashing(h)) {
        return;
    }
    if (h->size[0] == 0) {
        h->tab[0] = buckets_alloc(h, HT_MIN_SIZE);
        h->size[0] = HT_MIN_SIZE;
        return;
    }
    if (h->used[0] >= h->size[0]) {
        start_resize(h, h->size[0] * 2);
    }
}

struct item *
ht_find(struct ht *h, const char *key, size_t klen, uint64_t hash)
{
    if (ht_rehashing(h)) {
        ht_rehash(h, 1);
    }
    for (int t = 0; t < 2; t++) {
        if (h->size[t] == 0) {
            continue;
        }
        uint32_t ref = h->tab[t][hash & (h->size[t] - 1)];
        while (ref) {
            struct item *it = AT(h, ref);
            if (item_key_eq(it, key, klen)) {
                return it;
            }
            ref = it->hnext;
        }
        if (!ht_rehashing(h)) {
            break;
        }
    }
    return NULL;
}

void
ht_insert(struct ht *h, struct item *it, uint64_t hash)
{
    maybe_grow(h);
    if (ht_rehashing(h)) {
        ht_rehash(h, 1);
    }
    int t = ht_rehashing(h) ? 1 : 0;
    size_t idx = hash & (h->size[t] - 1);
    it->hnext = h->tab[t][idx];
    h->tab[t][idx] = item_ref(h->slab, it);
    h->used[t]++;
}

/* Find the link that holds the ref of the item with this key. */
static uint32_t *
find_link(struct ht *h, const char *key, size_t klen, uint64_t hash, int *table)
{
    for (int t = 0; t < 2; t++) {
        if (h->size[t] == 0) {
            continue;
        }
        uint32_t *link = &h->tab[t][hash & (h->size[t] - 1)];
        while (*link) {
            struct item *it = AT(h, *link);
            if (item_key_eq(it, key, klen)) {
                *table = t;
                return link;
            }
            link = &it->hnext;
        }
        if (!ht_rehashing(h)) {
            break;
        }
    }
    return NULL;
}

struct item *
ht_replace(struct ht *h, struct item *nit, uint64_t hash)
{
    if (ht_rehashing(h)) {
        ht_rehash(h, 1);
    }
    int t;
    uint32_t *link = find_link(h, item_key(nit), item_klen(nit), hash, &t);
    if (link == NULL) {
        ht_insert(h, nit, hash);
        return NULL;
    }
    struct item *old = AT(h, *link);
    nit->hnext = old->hnext;
    *link = item_ref(h->slab, nit);
    return old;
}

struct item *
ht_remove(struct ht *h, const char *key, size_t klen, uint64_t hash)
{
    if (ht_rehashing(h)) {
        ht_rehash(h, 1);
    }
    int t;
    uint32_t *link = find_link(h, key, klen, hash, &t);
    if (link == NULL) {
        return NULL;
    }
    struct item *it = AT(h, *link);
    *link = it->hnext;
    it->hnext = 0;
    h->used[t]--;
    return it;
}

static size_t
rev(size_t v)
{
    size_t s = sizeof(v) * 8, mask = ~(size_t)0;
    while ((s >>= 1) > 0) {
        mask ^= (mask << s);
        v = ((v >> s) & mask) | ((v << s) & ~mask);
    }
    return v;
}

static void
visit_chain(const struct ht *h, uint32_t ref, ht_visit_fn fn, void *ctx)
{
    while (ref) {
        struct item *it = AT(h, ref);
        uint32_t next = it->hnext;
        fn(it, ctx);
        ref = next;
    }
}

size_t
ht_scan(struct ht *h, size_t v, ht_visit_fn fn, void *ctx)
{
    if (ht_count(h) == 0) {
        return 0;
    }
    if (!ht_rehashing(h)) {
        size_t m0 = h->size[0] - 1;
        visit_chain(h, h->tab[0][v & m0], fn, ctx);
        v |= ~m0;
        v = rev(v);
        v++;
        v = rev(v);
        return v;
    }
    int small = h->size[0] <= h->size[1] ? 0 : 1;
    int large = 1 - small;
    size_t m0 = h->size[small] - 1, m1 = h->size[large] - 1;
    visit_chain(h, h->tab[small][v & m0], fn, ctx);
    do {
        visit_chain(h, h->tab[large][v & m1], fn, ctx);
        v |= ~m1;
        v = rev(v);
        v++;
        v = rev(v);
    } while (v & (m0 ^ m1));
    return v;
}

struct item *
ht_random(struct ht *h, uint64_t (*rnd)(void *), void *rctx)
{
    if (ht_count(h) == 0) {
        return NULL;
    }
    uint32_t head = 0;
    for (int tries = 0; head == 0; tries++) {
        int t = 0;
        if (ht_rehashing(h)) {
            t = (rnd(rctx) % (h->size[0] + h->size[1])) >= h->size[0] ? 1 : 0;
        }
        if (h->size[t] == 0) {
            continue;
        }
        head = h->tab[t][rnd(rctx) & (h->size[t] - 1)];
        if (tries > 1000000) {
            /* Pathologically sparse: fall back to a linear walk. */
            for (t = 0; t < 2 && !head; t++) {
                for (size_t i = 0; i < h->size[t] && !head; i++) {
                    head = h->tab[t][i];
                }
            }
        }
    }
    size_t len = 0;
    for (uint32_t r = head; r; r = AT(h, r)->hnext) {
        len++;
    }
    size_t pick = rnd(rctx) % len;
    while (pick--) {
        head = AT(h, head)->hnext;
    }
    return AT(h, head);
}

void
ht_clear(struct ht *h, void (*fn)(struct item *it, void *ctx), void *ctx)
{
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < h->size[t]; i++) {
            uint32_t ref = h->tab[t][i];
            while (ref) {
                struct item *it = AT(h, ref);
                uint32_t next = it->hnext;
                fn(it, ctx);
                ref = next;
            }
        }
    }
    ht_deinit(h);
}
