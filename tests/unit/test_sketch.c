/*
 * test_sketch.c -- the count-min sketch of the evict layer: counting,
 * saturation at 15, halving (manual and automatic), over-estimation only,
 * the doorkeeper, and the counter layout against a reference model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "evict/sketch.h"

#include <stdlib.h>
#include <string.h>

static uint64_t
key_hash(uint64_t k)
{
    /* Any decent 64-bit mix: the sketch re-mixes internally. */
    k += 0x9e3779b97f4a7c15ULL;
    k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9ULL;
    k = (k ^ (k >> 27)) * 0x94d049bb133111ebULL;
    return k ^ (k >> 31);
}

static void
test_increment_counts(void **state)
{
    struct sketch s;

    (void)state;
    memset(&s, 0, sizeof(s));
    sketch_init(&s, 1024, 8, false);
    assert_int_equal(sketch_estimate(&s, key_hash(1)), 0);
    for (unsigned i = 1; i <= 10; i++) {
        sketch_increment(&s, key_hash(1));
        assert_int_equal(sketch_estimate(&s, key_hash(1)), i);
    }
    /* Another key in a large, nearly empty table is unaffected. */
    assert_int_equal(sketch_estimate(&s, key_hash(2)), 0);
    sketch_deinit(&s);
}

static void
test_saturates_at_15(void **state)
{
    struct sketch s;

    (void)state;
    memset(&s, 0, sizeof(s));
    sketch_init(&s, 1024, 8, false);
    for (int i = 0; i < 100; i++) {
        sketch_increment(&s, key_hash(7));
    }
    assert_int_equal(sketch_estimate(&s, key_hash(7)), SKETCH_MAX_COUNT);
    sketch_deinit(&s);
}

static void
test_halving(void **state)
{
    struct sketch s;

    (void)state;
    memset(&s, 0, sizeof(s));
    sketch_init(&s, 1024, 8, false);
    for (int i = 0; i < 12; i++) {
        sketch_increment(&s, key_hash(3));
    }
    for (int i = 0; i < 7; i++) {
        sketch_increment(&s, key_hash(4));
    }
    sketch_halve(&s);
    assert_int_equal(sketch_estimate(&s, key_hash(3)), 6);
    assert_int_equal(sketch_estimate(&s, key_hash(4)), 3);
    assert_int_equal(s.resets, 1);
    sketch_deinit(&s);
}

static void
test_automatic_halving(void **state)
{
    struct sketch s;
    uint64_t period;

    (void)state;
    memset(&s, 0, sizeof(s));
    sketch_init(&s, 16, 8, false);
    period = s.sample_size;
    assert_int_equal(period, 160);
    /* Saturate one key, then feed distinct keys until a halving. */
    for (int i = 0; i < 15; i++) {
        sketch_increment(&s, key_hash(99));
    }
    assert_int_equal(sketch_estimate(&s, key_hash(99)), 15);
    for (uint64_t k = 1000; s.resets == 0 && k < 1000 + 10 * period; k++) {
        sketch_increment(&s, key_hash(k));
    }
    assert_int_equal(s.resets, 1);
    assert_true(sketch_estimate(&s, key_hash(99)) <= 8);
    assert_true(sketch_estimate(&s, key_hash(99)) >= 7);
    assert_true(s.additions <= period / 2 + 1);
    /* Large sketches age at 25 x entries instead of 10 x. */
    sketch_init(&s, SKETCH_LARGE_ENTRIES, 8, false);
    assert_int_equal(s.sample_size, 10 * SKETCH_LARGE_ENTRIES);
    sketch_init(&s, SKETCH_LARGE_ENTRIES + 1, 8, false);
    assert_int_equal(s.sample_size, 25 * (SKETCH_LARGE_ENTRIES + 1));
    sketch_deinit(&s);
}

static void
test_never_underestimates(void **state)
{
    struct sketch s;
    unsigned truth[300];
    uint64_t rng = 12345;

    (void)state;
    memset(&s, 0, sizeof(s));
    /* Sized so that 300 keys x at most 15 increments never trigger aging;
     * collisions may only raise an estimate (count-min). */
    sketch_init(&s, 512, 4, false);
    assert_true(s.sample_size > 300 * 15);
    for (int k = 0; k < 300; k++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        truth[k] = (unsigned)(rng >> 60); /* 0..15 */
        for (unsigned i = 0; i < truth[k]; i++) {
            sketch_increment(&s, key_hash((uint64_t)k));
        }
    }
    for (int k = 0; k < 300; k++) {
        assert_true(sketch_estimate(&s, key_hash((uint64_t)k)) >= truth[k]);
    }
    sketch_deinit(&s);
}

static void
test_doorkeeper(void **state)
{
    struct sketch s;

    (void)state;
    memset(&s, 0, sizeof(s));
    sketch_init(&s, 1024, 8, true);
    assert_non_null(s.door);
    sketch_increment(&s, key_hash(5));
    /* First sighting only in the doorkeeper. */
    assert_int_equal(sketch_estimate(&s, key_hash(5)), 1);
    sketch_increment(&s, key_hash(5));
    sketch_increment(&s, key_hash(5));
    assert_int_equal(sketch_estimate(&s, key_hash(5)), 3);
    sketch_halve(&s);
    /* Counters 2 -> 1, doorkeeper cleared. */
    assert_int_equal(sketch_estimate(&s, key_hash(5)), 1);
    assert_true(sketch_bytes(&s) >= 1024 * 8 / 2 + 1024);
    sketch_deinit(&s);
    assert_null(s.table);
}

static void
test_resize(void **state)
{
    struct sketch s;
    size_t small;

    (void)state;
    memset(&s, 0, sizeof(s));
    sketch_init(&s, 1000, 8, false);
    small = sketch_bytes(&s);
    sketch_increment(&s, key_hash(1));
    sketch_init(&s, 1000000, 8, false);
    assert_true(sketch_bytes(&s) > small);
    assert_int_equal(sketch_estimate(&s, key_hash(1)), 0);
    /* About 4 bytes per entry at 8 counters per entry. */
    assert_true(sketch_bytes(&s) <= 1000000u * 8);
    sketch_deinit(&s);
}

/*
 * Reference model of the counter layout (the specification the sketch must
 * keep bit for bit: the eviction policy's choices depend on it): mix64 of
 * the hash, block = low bits, row r takes five bits from bit 40 + 5r, the
 * low one choosing word 2r or 2r+1, the rest the nibble.
 */
static uint64_t
ref_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static void
ref_slots(uint64_t block_mask, uint64_t hash, uint64_t word[4], unsigned shift[4])
{
    uint64_t m = ref_mix64(hash);
    uint64_t base = (m & block_mask) * 8;
    uint64_t sel = m >> 40;

    for (unsigned r = 0; r < 4; r++) {
        unsigned bits = (unsigned)(sel >> (r * 5)) & 31u;
        word[r] = base + 2 * r + (bits & 1u);
        shift[r] = (bits >> 1) * 4;
    }
}

/* The reference increment on a plain table; true when a counter grew. */
static int
ref_increment(uint64_t *table, uint64_t block_mask, uint64_t hash)
{
    uint64_t word[4];
    unsigned shift[4];
    int added = 0;

    ref_slots(block_mask, hash, word, shift);
    for (unsigned r = 0; r < 4; r++) {
        if (((table[word[r]] >> shift[r]) & 15u) < 15u) {
            table[word[r]] += 1ULL << shift[r];
            added = 1;
        }
    }
    return added;
}

static unsigned
ref_estimate(const uint64_t *table, uint64_t block_mask, uint64_t hash)
{
    uint64_t word[4];
    unsigned shift[4];
    unsigned est = 15;

    ref_slots(block_mask, hash, word, shift);
    for (unsigned r = 0; r < 4; r++) {
        unsigned v = (unsigned)(table[word[r]] >> shift[r]) & 15u;
        est = v < est ? v : est;
    }
    return est;
}

static void
test_matches_reference_layout(void **state)
{
    struct sketch s;
    uint64_t *ref;
    size_t words;
    uint64_t additions = 0;
    uint64_t resets = 0;
    uint64_t rng = 777;

    (void)state;
    memset(&s, 0, sizeof(s));
    sketch_init(&s, 200, 4, false);
    words = (size_t)(s.block_mask + 1) * 8;
    ref = calloc(words, sizeof(*ref));
    assert_non_null(ref);
    /* Skewed keys (many saturate), across several automatic halvings. */
    for (int i = 0; i < 200000; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t k = (rng >> 33) % ((rng >> 62) == 0 ? 5000 : 40);
        uint64_t h = key_hash(k);

        sketch_increment(&s, h);
        if (ref_increment(ref, s.block_mask, h) && ++additions >= s.sample_size) {
            for (size_t w = 0; w < words; w++) {
                ref[w] = (ref[w] >> 1) & 0x7777777777777777ULL;
            }
            additions /= 2;
            resets++;
        }
        if (i % 1000 == 0) {
            assert_memory_equal(s.table, ref, words * sizeof(*ref));
        }
        assert_int_equal(sketch_estimate(&s, h), ref_estimate(ref, s.block_mask, h));
    }
    assert_memory_equal(s.table, ref, words * sizeof(*ref));
    assert_int_equal(s.additions, additions);
    assert_int_equal(s.resets, resets);
    assert_true(resets > 3);
    free(ref);
    sketch_deinit(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_increment_counts),
        cmocka_unit_test(test_saturates_at_15),
        cmocka_unit_test(test_halving),
        cmocka_unit_test(test_automatic_halving),
        cmocka_unit_test(test_never_underestimates),
        cmocka_unit_test(test_doorkeeper),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_matches_reference_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
