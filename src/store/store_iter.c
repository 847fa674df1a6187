/*
 * store_iter.c -- walks of the whole keyspace: SCAN over all shards and a
 * random key.
 */
#include "store/store.h"
#include "store/store_int.h"

#include "util/mem.h"

uint64_t
store_scan(struct store *st, uint64_t cursor, ht_visit_fn fn, void *ctx)
{
    unsigned bits = 0;
    while ((1u << bits) < st->nshards) {
        bits++;
    }
    unsigned idx = (unsigned)(cursor & st->mask);
    uint64_t c = cursor >> bits;
    struct shard *sh = shard_lock(st, idx);
    c = ht_scan(&sh->ht, c, fn, ctx);
    shard_unlock(sh);
    if (c == 0) {
        idx++;
        if (idx >= st->nshards) {
            return 0;
        }
    }
    return (c << bits) | idx;
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

bool
store_random_key(struct store *st, char **key, size_t *klen, int64_t now)
{
    size_t total = store_count(st);
    if (total == 0) {
        return false;
    }
    uint64_t seed = (uint64_t)now * 0x9e3779b97f4a7c15ull | 1;
    for (int tries = 0; tries < 100; tries++) {
        /* Pick a shard weighted by its size, then a random item in it. */
        uint64_t r = xorshift(&seed) % total;
        for (unsigned i = 0; i < st->nshards; i++) {
            struct shard *sh = shard_lock(st, i);
            size_t n = ht_count(&sh->ht);
            if (r < n) {
                struct item *it = ht_random(&sh->ht, xorshift, &sh->rng);
                if (it && !item_expired(it, now)) {
                    *key = xstrndup(item_key(it), item_klen(it));
                    *klen = item_klen(it);
                    shard_unlock(sh);
                    return true;
                }
                shard_unlock(sh);
                break;
            }
            r -= n;
            shard_unlock(sh);
        }
        total = store_count(st);
        if (total == 0) {
            return false;
        }
    }
    return false;
}
