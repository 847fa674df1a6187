/*
 * store_slot.h -- the keyspace seen by cluster slots: per-slot counts, a
 * bounded cursor over the keys of a slot range (a vbucket), and the
 * background drop of a slot range.
 *
 * A slot lives in exactly one shard (shard = slot mod S), so a range of n
 * slots touches min(n, S) shards and nothing here visits another one.
 *
 * Threads: every function takes the shard locks it needs itself and must be
 * called with no shard lock held, from any thread. Callbacks run with one
 * shard lock held: they must not call into the store.
 */
#ifndef CRAB_STORE_STORE_SLOT_H
#define CRAB_STORE_STORE_SLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/ht.h"

struct store;

/* ---- counts ---- */

/* Keys in one slot. The per-slot counts are kept per shard from the first
 * store_slot_count of one of its slots on: that first call counts the
 * shard's keys under its lock (O(keys in the shard), once); a store nobody
 * asks costs its writes no CRC16 of the key for them. Expired keys not yet
 * reclaimed are counted (as store_count does), keys of a slot being dropped
 * until the drop reaches them. */
size_t store_slot_count(struct store *st, unsigned slot);
/* Bytes of item memory (store_used_memory's items part: chunks and large
 * bodies, not the index or the policy) in one slot; kept and started with
 * the counts above. */
size_t store_slot_bytes(struct store *st, unsigned slot);
/* Sums of the two over the slots first..last. */
size_t store_slot_range_count(struct store *st, unsigned first, unsigned last);
size_t store_slot_range_bytes(struct store *st, unsigned first, unsigned last);

/* Every item of one slot, under its shard's lock (held for the whole visit:
 * for small slots, e.g. CLUSTER GETKEYSINSLOT). */
void store_slot_visit(struct store *st, unsigned slot, ht_visit_fn fn, void *ctx);

/* ---- a cursor over a slot range ---- */

/* What a copy of an item needs. The pointers are valid during the callback
 * only (the shard's lock is held). */
struct store_slot_entry {
    const char *key;
    size_t klen;
    const char *val;
    size_t vlen;
    int64_t expire; /* absolute Unix ms, 0 = none */
    unsigned slot;
    size_t mem;     /* bytes of item memory it holds (as store_slot_bytes) */
};
typedef void (*store_slot_fn)(const struct store_slot_entry *e, void *ctx);

/*
 * One bounded step of a walk over the live keys of slots first..last: calls
 * fn for at most max_items of them (> 0) and returns the cursor to pass next
 * time (start with 0), 0 when the walk is over. Like SCAN: every key present
 * for the whole walk is visited at least once, whatever inserts, deletes and
 * index resizes happen between (and during) calls; a key added or removed
 * meanwhile may or may not be. A key is visited twice only if it shares the
 * cursor's resolution (2^-(64 - log2 S) of hash space) with the key where a
 * step stopped, and only then may a step visit more than max_items keys (all
 * the keys sharing one position: practically never).
 *
 * Not visited: keys outside the range, expired keys (at `now`, Unix ms), keys
 * of slots being dropped. A step walks hash space in a bounded number of
 * index groups (STORE_SLOT_SCAN_GROUPS) even if it finds fewer keys: a call
 * may visit none and still return a cursor that is not 0. Each shard lock is
 * held for at most STORE_SLOT_LOCK_GROUPS groups at a time. The cursor is
 * valid for the same store and range only.
 */
#define STORE_SLOT_SCAN_GROUPS 1024 /* ~0.75 ms of walking (measured as above) */
#define STORE_SLOT_LOCK_GROUPS 64
uint64_t store_slot_scan(struct store *st, unsigned first, unsigned last, uint64_t cursor,
                         size_t max_items, int64_t now, store_slot_fn fn, void *ctx);

/* ---- dropping a slot range in the background ---- */

/*
 * Drop every key of slots first..last (a vbucket this node no longer owns).
 * Returns at once (-EINVAL for a bad range, else 0): the slots are marked,
 * and each of their shards is swept in the background by store_cron (or by
 * store_slot_drop_step), a bounded amount per tick, so that dropping a
 * million keys never stalls requests. Memory, the policy's bookkeeping and
 * per-slot counts follow every removal exactly, as for DEL.
 *
 * While a slot is marked its keys are not served: shard_find finds no key
 * of it (and reclaims the one it met, as it does an expired key),
 * shard_delete reports it absent, store_slot_scan skips it. Writes into a
 * marked slot are the caller's mistake (the cluster layer routes the slot
 * elsewhere before it drops it, and copies into it again only once
 * store_slot_drop_pending says the drop is over): a key written behind the
 * sweep survives it. Iterators over the whole keyspace (store_scan,
 * store_random_key, the snapshot walk) and store_count still see keys the
 * sweep has not reached; store_slot_dropping() tells them apart.
 * Marking a range that is being dropped again, or one that overlaps it,
 * is allowed: a shard swept partly already is swept again from the start.
 */
int store_slot_drop_begin(struct store *st, unsigned first, unsigned last);
/* Items a shard's sweep examines per cron tick (st->drop_work). The cron
 * runs in a worker's loop, so this is a pause of that worker's requests:
 * 8,192 took 1.0 ms a shard (1M keys in 8 shards, release build, this
 * shared 2-core machine under load), 4,096 about 0.5 ms, and at 10 ticks a
 * second a shard of a million keys is swept in about 25 s. */
#define STORE_DROP_WORK 4096
/* Whether slot is marked for dropping (lock-free, any thread). */
bool store_slot_dropping(const struct store *st, unsigned slot);
/* Whether any slot of first..last is still being dropped (lock-free). */
bool store_slot_drop_pending(const struct store *st, unsigned first, unsigned last);
/* Shards with a drop sweep still going on (0 = every drop is over). */
unsigned store_slot_drops_active(const struct store *st);
/* One bounded part of shard idx's sweep: examines about `work` items (at
 * least one index group) and removes those of marked slots, taking the
 * shard's lock for STORE_SLOT_LOCK_GROUPS groups at a time. Returns the
 * keys removed. store_cron calls it with st->drop_work; tests and a caller
 * in a hurry may call it directly. */
size_t store_slot_drop_step(struct store *st, unsigned idx, size_t work);
/* Keys removed by drops so far. */
uint64_t store_dropped_total(struct store *st);

#endif
