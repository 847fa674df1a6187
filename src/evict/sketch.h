/*
 * sketch.h -- count-min frequency sketch with 4-bit counters, periodic
 * halving ("aging") and an optional doorkeeper, for TinyLFU admission.
 *
 * A key is given by its 64-bit hash (the caller hashes; the sketch never
 * sees keys). Each key maps to one 64-byte block of the table (one cache
 * line) and to four 4-bit counters inside it, one per "row"; the estimate is
 * the minimum of the four. After sample_size recorded increments (10 or 25
 * per entry, see sketch_init), every counter is halved, so the sketch
 * forgets old popularity.
 *
 * The optional doorkeeper is a small Bloom filter in front of the counters:
 * the first sighting of a key (since the last halving) only sets its
 * doorkeeper bits; later sightings increment the counters. The estimate is
 * counters + 1 when the doorkeeper holds the key. It keeps the one-hit
 * wonders out of the counters, so a smaller table does as well.
 *
 * Memory: the table takes about counters_per_entry / 2 bytes per expected
 * entry (rounded up to a power of two of 64-byte blocks), plus one bit per
 * expected entry for the doorkeeper if enabled.
 *
 * Not thread-safe: the owner (one policy, under its shard lock) serialises
 * every call.
 */
#ifndef CRAB_EVICT_SKETCH_H
#define CRAB_EVICT_SKETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SKETCH_MAX_COUNT 15u
/* Sketches sized for more entries than this age more slowly (below). */
#define SKETCH_LARGE_ENTRIES 4096u

struct sketch {
    uint64_t *table;        /* 4-bit counters, 16 per word, 8 words a block */
    uint64_t block_mask;    /* number of blocks - 1 (power of two) */
    uint64_t *door;         /* doorkeeper bits, NULL when disabled */
    uint64_t door_mask;     /* doorkeeper bits - 1 (power of two) */
    uint64_t sample_size;   /* increments between two halvings */
    uint64_t additions;     /* increments since the last halving */
    uint64_t resets;        /* halvings done, for figures */
    size_t entries;         /* the number of entries it was sized for */
};

/*
 * Size the sketch for `entries` distinct hot keys: the table gets about
 * `counters_per_entry` counters per entry (>= 4, rounded up to a power of two
 * of blocks), the sample period is 10 x entries increments (25 x entries
 * above SKETCH_LARGE_ENTRIES), and a doorkeeper
 * is added when `doorkeeper` is true. `s` must be zeroed or previously
 * initialised: any previous contents are freed, so call it again to resize
 * (the counts are lost). Allocates with xmalloc (aborts on failure).
 * Returns 0.
 */
int sketch_init(struct sketch *s, size_t entries, unsigned counters_per_entry,
                bool doorkeeper);

/* Free the table; the struct may be re-initialised afterwards. */
void sketch_deinit(struct sketch *s);

/*
 * Record one access of the key with this hash. Counters saturate at 15.
 * May trigger a halving of all counters (O(table size), once every
 * sample_size increments).
 */
static inline void sketch_increment(struct sketch *s, uint64_t hash);

/* Internals of sketch_increment (inline below), not for other callers:
 * add one to the key's four counters (those below 15), true when any grew;
 * and the increment of a sketch with a doorkeeper. */
bool sketch__increment_counters(struct sketch *s, uint64_t hash);
void sketch__increment_door(struct sketch *s, uint64_t hash);

/* Ask the CPU for the cache line of the key's counters (one block), ahead of
 * an increment or estimate. A hint: changes nothing. */
void sketch_prefetch(const struct sketch *s, uint64_t hash);

/* The estimated access count of the key, 0..16 (16 only with doorkeeper). */
unsigned sketch_estimate(const struct sketch *s, uint64_t hash);

/* Halve every counter and clear the doorkeeper now (done automatically). */
void sketch_halve(struct sketch *s);

/* Bytes of memory the sketch holds. */
size_t sketch_bytes(const struct sketch *s);

static inline void
sketch_increment(struct sketch *s, uint64_t hash)
{
    if (s->door != NULL) {
        sketch__increment_door(s, hash);
    } else if (sketch__increment_counters(s, hash) &&
               ++s->additions >= s->sample_size) {
        sketch_halve(s);
    }
}

#endif
