/*
 * sketch.c -- the TinyLFU count-min sketch (see sketch.h).
 *
 * Layout: the table is an array of 64-byte blocks, each eight 64-bit words
 * of sixteen 4-bit counters. A key's mixed hash picks one block (so an
 * update or an estimate touches a single cache line) and, for each of the
 * four rows, one word out of the row's pair of words and one nibble in it.
 * Row r uses words 2r and 2r+1 of the block, so the four counters of a key
 * are always distinct.
 *
 * Aging: every sample_size increments (10 x entries up to
 * SKETCH_LARGE_ENTRIES, 25 x above) all counters are halved with one
 * shift-and-mask per word, and the doorkeeper is cleared.
 */
#include "evict/sketch.h"

#include "util/mem.h"

#include <stdlib.h>
#include <string.h>

#define WORDS_PER_BLOCK 8u
#define COUNTERS_PER_BLOCK (WORDS_PER_BLOCK * 16u)
/* A floor of 8192 counters (4 KiB): small caches get a sketch accurate
 * enough to tell loops apart, at a constant cost per policy. */
#define MIN_COUNTERS 8192u
#define HALF_MASK 0x7777777777777777ULL
/* Increments between two halvings, per entry sized for. Small sketches (the
 * floor above dominates them) forget at 10 x entries like Caffeine's; larger
 * ones keep their history 2.5 times longer: on OLTP and P12 that is worth
 * 0.2-0.3 points for a fixed window (docs/eviction.md), while on the loop
 * traces at a few hundred entries a long memory made ties of stale counts
 * keep the wrong keys (lirs-loop 404: 39.65 -> 36.89 at 20 x). */
#define SAMPLE_SMALL 10u
#define SAMPLE_LARGE 25u

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t
pow2_at_least(uint64_t v)
{
    uint64_t p = 1;
    while (p < v) {
        p <<= 1;
    }
    return p;
}

int
sketch_init(struct sketch *s, size_t entries, unsigned counters_per_entry,
            bool doorkeeper)
{
    uint64_t blocks;
    uint64_t bits;

    sketch_deinit(s);
    if (entries < 16) {
        entries = 16;
    }
    if (counters_per_entry < 4) {
        counters_per_entry = 4;
    }
    blocks = pow2_at_least(((uint64_t)entries * counters_per_entry + MIN_COUNTERS +
                            COUNTERS_PER_BLOCK - 1) / COUNTERS_PER_BLOCK);
    s->table = big_alloc(blocks * WORDS_PER_BLOCK * sizeof(uint64_t));
    s->block_mask = blocks - 1;
    s->door = NULL;
    s->door_mask = 0;
    if (doorkeeper) {
        /* About 8 bits per expected entry, two probes: the filter only has
         * to hold the keys seen once within one sample period. */
        bits = pow2_at_least((uint64_t)entries * 8);
        if (bits < 64) {
            bits = 64;
        }
        s->door = big_alloc(bits / 8);
        s->door_mask = bits - 1;
    }
    s->sample_size = (uint64_t)entries * (entries > SKETCH_LARGE_ENTRIES
                                              ? SAMPLE_LARGE
                                              : SAMPLE_SMALL);
    s->additions = 0;
    s->resets = 0;
    s->entries = entries;
    return 0;
}

void
sketch_deinit(struct sketch *s)
{
    big_free(s->table, (s->block_mask + 1) * WORDS_PER_BLOCK * sizeof(uint64_t));
    big_free(s->door, s->door ? (s->door_mask + 1) / 8 : 0);
    memset(s, 0, sizeof(*s));
}

/* The doorkeeper's two bit positions for a hash. */
static void
door_positions(const struct sketch *s, uint64_t hash, uint64_t pos[2])
{
    uint64_t m = mix64(hash ^ 0x9e3779b97f4a7c15ULL);

    pos[0] = m & s->door_mask;
    pos[1] = (m >> 32 | m << 32) & s->door_mask;
}

static bool
door_test_and_set(struct sketch *s, uint64_t hash)
{
    uint64_t pos[2];
    bool present = true;

    door_positions(s, hash, pos);
    for (int i = 0; i < 2; i++) {
        uint64_t bit = 1ULL << (pos[i] & 63);
        if (!(s->door[pos[i] >> 6] & bit)) {
            present = false;
            s->door[pos[i] >> 6] |= bit;
        }
    }
    return present;
}

static bool
door_test(const struct sketch *s, uint64_t hash)
{
    uint64_t pos[2];

    door_positions(s, hash, pos);
    for (int i = 0; i < 2; i++) {
        if (!(s->door[pos[i] >> 6] & (1ULL << (pos[i] & 63)))) {
            return false;
        }
    }
    return true;
}

/*
 * A key's counters: mix64 of its hash picks the block (low bits) and, in the
 * 20 bits from bit 40, five bits per row r: the low bit chooses word 2r or
 * 2r+1 of the block, the other four the nibble in it. The four words are
 * distinct, so the rows are updated independently, without branches.
 *
 * With sel = m >> 40, row r's word is blk + 2r + (sel >> 5r & 1) and its
 * nibble's shift 4 * (sel >> (5r + 1) & 15). The macros take both from the
 * unshifted mix m, one shift and one mask each: the word's byte offset in the
 * row pair and the nibble's shift.
 */
#define ROW_WORD_M(blk, m, r)                                                   \
    ((uint64_t *)(void *)((char *)((blk) + 2u * (r)) + (((m) >> (37u + 5u * (r))) & 8u)))
#define ROW_SHIFT_M(m, r) ((unsigned)((m) >> (39u + 5u * (r))) & 60u)

bool
sketch__increment_counters(struct sketch *s, uint64_t hash)
{
    uint64_t m = mix64(hash);
    uint64_t *blk = s->table + (m & s->block_mask) * WORDS_PER_BLOCK;
    uint64_t added = 0;

#define ROW_INC(r)                                                        \
    do {                                                                  \
        uint64_t *w_ = ROW_WORD_M(blk, m, r);                             \
        unsigned sh_ = ROW_SHIFT_M(m, r);                                 \
        uint64_t inc_ = (uint64_t)(((*w_ >> sh_) & 15u) != SKETCH_MAX_COUNT) \
                        << sh_;                                           \
        *w_ += inc_;                                                      \
        added |= inc_;                                                    \
    } while (0)
    ROW_INC(0);
    ROW_INC(1);
    ROW_INC(2);
    ROW_INC(3);
#undef ROW_INC
    return added != 0;
}

void
sketch__increment_door(struct sketch *s, uint64_t hash)
{
    if (door_test_and_set(s, hash)) {
        if (!sketch__increment_counters(s, hash)) {
            return;
        }
    }
    if (++s->additions >= s->sample_size) {
        sketch_halve(s);
    }
}

void
sketch_prefetch(const struct sketch *s, uint64_t hash)
{
    uint64_t m = mix64(hash);
    __builtin_prefetch(s->table + (m & s->block_mask) * WORDS_PER_BLOCK, 1);
}

unsigned
sketch_estimate(const struct sketch *s, uint64_t hash)
{
    uint64_t m = mix64(hash);
    uint64_t *blk = s->table + (m & s->block_mask) * WORDS_PER_BLOCK;
    /* the four rows unrolled, as in sketch__increment_counters: one shift and
     * one mask for each word and nibble, no loop (an estimate is two of the
     * instructions an eviction's duel costs) */
#define ROW_GET(r) ((unsigned)(*ROW_WORD_M(blk, m, r) >> ROW_SHIFT_M(m, r)) & 15u)
    unsigned a = ROW_GET(0), b = ROW_GET(1), c = ROW_GET(2), d = ROW_GET(3);
#undef ROW_GET
    a = a < b ? a : b;
    c = c < d ? c : d;
    unsigned est = a < c ? a : c;
    if (s->door != NULL && door_test(s, hash)) {
        est++;
    }
    return est;
}

void
sketch_halve(struct sketch *s)
{
    uint64_t words = (s->block_mask + 1) * WORDS_PER_BLOCK;

    for (uint64_t i = 0; i < words; i++) {
        s->table[i] = (s->table[i] >> 1) & HALF_MASK;
    }
    if (s->door != NULL) {
        memset(s->door, 0, (s->door_mask + 1) / 8);
    }
    s->additions /= 2;
    s->resets++;
}

size_t
sketch_bytes(const struct sketch *s)
{
    size_t n = (size_t)(s->block_mask + 1) * WORDS_PER_BLOCK * sizeof(uint64_t);

    if (s->door != NULL) {
        n += (size_t)(s->door_mask + 1) / 8;
    }
    return n;
}
