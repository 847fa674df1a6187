/*
 * store_slot.c -- the keyspace seen by cluster slots: per-slot key counts
 * and a visit of one slot's keys.
 *
 * A slot lives in exactly one shard (shard = slot mod S), so everything
 * about a slot is found under one shard lock and by walking only that
 * shard's index.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <stdatomic.h>

static void
count_slot(struct item *it, void *ctx)
{
    struct store *st = ctx;
    unsigned slot = slot_of(item_key(it), item_klen(it));
    uint32_t v = atomic_load_explicit(&st->slot_keys[slot], memory_order_relaxed);
    atomic_store_explicit(&st->slot_keys[slot], v + 1, memory_order_relaxed);
}

size_t
store_slot_count(struct store *st, unsigned slot)
{
    slot &= SLOT_COUNT - 1;
    struct shard *sh = &st->shards[store_shard_of_slot(st, slot)];
    if (!atomic_load_explicit(&sh->slots_counted, memory_order_acquire)) {
        /* first question about this shard's slots: count its keys (all of
         * its slots, no other shard's) and keep the counts from now on */
        shard_lock(st, store_shard_of_slot(st, slot));
        if (!atomic_load_explicit(&sh->slots_counted, memory_order_relaxed)) {
            for (unsigned s = slot & st->mask; s < SLOT_COUNT; s += st->nshards) {
                atomic_store_explicit(&st->slot_keys[s], 0, memory_order_relaxed);
            }
            size_t c = 0;
            do {
                c = ht_scan(&sh->ht, c, count_slot, st);
            } while (c != 0);
            atomic_store_explicit(&sh->slots_counted, true, memory_order_release);
        }
        shard_unlock(sh);
    }
    return atomic_load_explicit(&st->slot_keys[slot], memory_order_relaxed);
}

struct slot_visit {
    unsigned slot;
    ht_visit_fn fn;
    void *ctx;
};

static void
slot_filter(struct item *it, void *ctx)
{
    struct slot_visit *v = ctx;
    if (slot_of(item_key(it), item_klen(it)) == v->slot) {
        v->fn(it, v->ctx);
    }
}

void
store_slot_visit(struct store *st, unsigned slot, ht_visit_fn fn, void *ctx)
{
    struct slot_visit v = {slot & (SLOT_COUNT - 1), fn, ctx};
    struct shard *sh = shard_lock(st, store_shard_of_slot(st, v.slot));
    size_t c = 0;
    do {
        c = ht_scan(&sh->ht, c, slot_filter, &v);
    } while (c != 0);
    shard_unlock(sh);
}
