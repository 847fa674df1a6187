/*
 * test_sketch.c -- the count-min sketch of the evict layer: counting,
 * saturation at 15, halving (manual and automatic), over-estimation only,
 * and the doorkeeper.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "evict/sketch.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
