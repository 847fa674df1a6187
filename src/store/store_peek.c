/*
 * store_peek.c -- see store_peek.h.
 */
#include "store/store_peek.h"

#include <string.h>

#include "evict/sketch.h"
#include "store/store.h"
#include "store/store_int.h"

bool
store_key_info(struct store *st, const char *key, size_t klen, int64_t now,
               struct store_key_info *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t h = ht_hash(key, klen);
    struct shard *sh = shard_lock(st, store_shard_of(st, key, klen));
    struct item *it = ht_find(&sh->ht, key, klen, h);
    if (it == NULL || item_expired(it, now)) {
        shard_unlock(sh);
        return false;
    }
    out->vlen = item_vlen(it);
    memcpy(out->head, item_val(it), out->vlen < sizeof(out->head) ? out->vlen : sizeof(out->head));
    out->item_mem = item_mem(it);
    size_t n = ht_count(&sh->ht);
    out->index_mem = n ? ht_mem(&sh->ht) / n : 0;
    if (atomic_load(&st->policy) == STORE_TINYLFU) {
        out->freq_valid = true;
        out->freq = sketch_estimate(&sh->policy.sketch, h);
    }
    shard_unlock(sh);
    return true;
}

size_t
store_index_memory(struct store *st)
{
    size_t total = 0;
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        total += ht_mem(&sh->ht);
        shard_unlock(sh);
    }
    return total;
}
