/*
 * hint.h -- the slot and hash of pipelined keys, computed once.
 *
 * When a connection's input holds several requests, the worker computes the
 * slot (CRC16, slot.h) and the hash (XXH3, ht_hash) of each one's key before
 * running them, to prefetch what the lookups will touch (net/conn.c,
 * prefetch_pipeline). Each command then needs the same key's shard
 * (store_shard_of) and hash (shard_find, shard_upsert, shard_delete,
 * shard_note_miss). This per-thread table hands them the values already
 * computed instead of computing them a second time.
 *
 * Why a hint can never be wrong:
 *  - slot and hash are pure functions of the key's bytes, and hint_fill
 *    computes them itself, from the bytes at (key, klen);
 *  - a lookup hits only an entry with the same pointer AND the same length,
 *    i.e. the very bytes the entry was computed from; so a hint could only
 *    be stale if those bytes changed while the table is filled (selecting
 *    the wrong entry, or a key that is not the one hinted, is a miss);
 *  - the table is filled from a connection's input buffer at the start of a
 *    batch of requests (process_input) and cleared at the end of that batch,
 *    before the buffer can be compacted, reset, freed or read into. During
 *    the batch, parsers and commands only read it (proto.h: arguments point
 *    into the caller's bytes, which must not be overwritten until the
 *    request is done). While the buffer is live no other object has an
 *    address inside it, so any key that is not one of the hinted ones
 *    (MSET's or RENAME's other keys, copies queued by MULTI, the WAL, an
 *    item's own key, a stack buffer) never matches and is computed as before;
 *  - the table is per thread: other threads (recovery, the cron, the other
 *    workers) always find it empty.
 * Debug builds (no NDEBUG) check every hit against a fresh computation.
 *
 * Lookups: the i-th request of the batch runs on the i-th key filled, so the
 * connection selects that entry before running the request (hint_select)
 * and a lookup compares the key with that one entry only: a pointer, a
 * length, no search. Missing is always safe: the caller computes the value.
 */
#ifndef CRAB_STORE_HINT_H
#define CRAB_STORE_HINT_H

#include <stddef.h>
#include <stdint.h>

#include "store/ht.h"
#include "store/slot.h"

#define HINT_MAX 32

struct key_hint {
    const char *key;
    size_t klen;
    uint64_t hash; /* ht_hash(key, klen) */
    unsigned slot; /* slot_of(key, klen) */
};

struct hint_table {
    unsigned n;                 /* entries in e */
    const struct key_hint *cur; /* the selected entry, or NULL */
    struct key_hint e[HINT_MAX];
};

/* The calling thread's table (hint.c); use the functions below. */
extern _Thread_local struct hint_table hint_tl;

/*
 * Replace the calling thread's hints with these n keys (at most HINT_MAX;
 * more are ignored), computing each one's slot and hash; none is selected.
 * Returns the entries (e[i] for key[i]), valid until the next hint_fill or
 * hint_clear on this thread.
 *
 * The caller guarantees that the bytes of every key stay allocated and
 * unchanged until it calls hint_clear(), on this thread.
 */
const struct key_hint *hint_fill(const char *const *key, const size_t *klen, unsigned n);

/* The request about to run is the i-th of the batch: its key, if any, is
 * the i-th filled (none when i >= the number filled). */
static inline void
hint_select(unsigned i)
{
    hint_tl.cur = i < hint_tl.n ? &hint_tl.e[i] : NULL;
}

/* Forget every hint of the calling thread. */
static inline void
hint_clear(void)
{
    hint_tl.n = 0;
    hint_tl.cur = NULL;
}

/* Debug builds: abort unless h holds the slot and hash of its key. */
void hint_verify(const struct key_hint *h);

/* The selected hint if it is for exactly these bytes (same pointer, same
 * length), else NULL. */
static inline const struct key_hint *
hint_find(const char *key, size_t klen)
{
    const struct key_hint *h = hint_tl.cur;
    if (h == NULL || h->key != key || h->klen != klen) {
        return NULL;
    }
#ifndef NDEBUG
    hint_verify(h);
#endif
    return h;
}

/* slot_of(key, klen), from the hint when there is one. */
static inline unsigned
hint_slot(const char *key, size_t klen)
{
    const struct key_hint *h = hint_find(key, klen);
    return h ? h->slot : slot_of(key, klen);
}

/* ht_hash(key, klen), from the hint when there is one. */
static inline uint64_t
hint_hash(const char *key, size_t klen)
{
    const struct key_hint *h = hint_find(key, klen);
    return h ? h->hash : ht_hash(key, klen);
}

#endif
