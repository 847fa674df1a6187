/*
 * test_slot.c -- the key slot of store/slot.c against its definitions:
 * CRC16-XMODEM bit by bit for every length 0-300 at every alignment (the
 * carry-less multiply and the table paths), and slot_of's hash-tag rule
 * against a plain byte-by-byte model, with braces at every position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/slot.h"

#include <string.h>

static uint16_t
crc16_bitwise(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

static uint32_t rng_state = 2463534242u;

static unsigned char
rnd_byte(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (unsigned char)(rng_state >> 7);
}

static void
test_crc_every_length_and_alignment(void **state)
{
    unsigned char buf[320];

    (void)state;
    for (size_t n = 0; n <= 300; n++) {
        for (size_t off = 0; off < 8; off++) {
            for (size_t i = 0; i < n; i++) {
                buf[off + i] = rnd_byte();
            }
            assert_int_equal(slot_crc16((const char *)buf + off, n),
                             crc16_bitwise(buf + off, n));
        }
    }
    /* extremes: all ones, all zeros */
    memset(buf, 0xff, sizeof(buf));
    for (size_t n = 0; n <= 64; n++) {
        assert_int_equal(slot_crc16((const char *)buf, n), crc16_bitwise(buf, n));
    }
    memset(buf, 0, sizeof(buf));
    assert_int_equal(slot_crc16((const char *)buf, 40), 0);
}

/* The hash-tag rule written out byte by byte (Redis's keyHashSlot). */
static unsigned
slot_model(const char *key, size_t klen)
{
    size_t s, e;

    for (s = 0; s < klen; s++) {
        if (key[s] == '{') {
            break;
        }
    }
    if (s == klen) {
        return crc16_bitwise((const unsigned char *)key, klen) & 16383;
    }
    for (e = s + 1; e < klen; e++) {
        if (key[e] == '}') {
            break;
        }
    }
    if (e == klen || e == s + 1) {
        return crc16_bitwise((const unsigned char *)key, klen) & 16383;
    }
    return crc16_bitwise((const unsigned char *)key + s + 1, e - s - 1) & 16383;
}

static void
test_slot_of_braces_everywhere(void **state)
{
    char key[48];
    static const char alphabet[] = "ab{}:0{";

    (void)state;
    for (size_t n = 0; n <= 40; n++) {
        /* one '{' (and maybe a '}') at each position, the rest plain */
        for (size_t pos = 0; pos < n; pos++) {
            for (size_t close = pos; close <= n; close++) {
                for (size_t i = 0; i < n; i++) {
                    key[i] = (char)('a' + rnd_byte() % 26);
                }
                key[pos] = '{';
                if (close < n && close != pos) {
                    key[close] = '}';
                }
                assert_int_equal(slot_of(key, n), slot_model(key, n));
            }
        }
        /* random mixes of braces */
        for (int round = 0; round < 200; round++) {
            for (size_t i = 0; i < n; i++) {
                key[i] = alphabet[rnd_byte() % (sizeof(alphabet) - 1)];
            }
            assert_int_equal(slot_of(key, n), slot_model(key, n));
        }
    }
    /* 0x7b pattern neighbours that are not braces: 'z' (0x7a), '|' (0x7c), 0xfb */
    memset(key, 'z', sizeof(key));
    assert_int_equal(slot_of(key, 24), slot_model(key, 24));
    memset(key, '|', sizeof(key));
    assert_int_equal(slot_of(key, 24), slot_model(key, 24));
    memset(key, (char)0xfb, sizeof(key));
    assert_int_equal(slot_of(key, 24), slot_model(key, 24));
    assert_int_equal(slot_of("key:000000012345", 16), slot_model("key:000000012345", 16));
}

static void
test_slot_known_values(void **state)
{
    (void)state;
    /* Values from the Redis Cluster specification and CLUSTER KEYSLOT. */
    assert_int_equal(slot_crc16("123456789", 9), 0x31C3);
    assert_int_equal(slot_of("foo", 3), 12182);
    assert_int_equal(slot_of("bar", 3), 5061);
    assert_int_equal(slot_of("hello", 5), 866);
    assert_int_equal(slot_of("", 0), 0);
}

static void
test_slot_hash_tags(void **state)
{
    (void)state;
    assert_int_equal(slot_of("{user1000}.following", 21), slot_of("user1000", 8));
    assert_int_equal(slot_of("{user1000}.followers", 21), slot_of("user1000", 8));
    /* empty tag: whole key hashed */
    assert_int_equal(slot_of("foo{}{bar}", 10), slot_crc16("foo{}{bar}", 10) & 16383);
    /* only the first { counts */
    assert_int_equal(slot_of("foo{{bar}}zap", 13), slot_of("{bar", 4));
    assert_int_equal(slot_of("foo{bar}{zap}", 13), slot_of("bar", 3));
    /* no closing brace */
    assert_int_equal(slot_of("foo{bar", 7), slot_crc16("foo{bar", 7) & 16383);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_every_length_and_alignment),
        cmocka_unit_test(test_slot_of_braces_everywhere),
        cmocka_unit_test(test_slot_known_values),
        cmocka_unit_test(test_slot_hash_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
