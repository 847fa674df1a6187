/*
 * test_reply.c -- bulk replies of cmd/reply.c against a reference encoding
 * written with snprintf: every length from 0 to 1100 bytes (the frameless
 * short path up to 16, the digit path under 1000, the general one above),
 * in RESP2, RESP3 and native, appended to a buffer that is empty, nearly
 * full (so that the short path must hand over to the growing one) or holds
 * earlier replies; natively also values that must be quoted.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmd/reply.h"
#include "proto/text.h"
#include "util/buf.h"

#define MAXV 1100

/* The expected bytes of one bulk reply of v[0 .. n). */
static size_t
reference(char *out, int proto, const char *v, size_t n)
{
    size_t k = 0;
    if (proto != REPLY_NATIVE) {
        k = (size_t)sprintf(out, "$%zu\r\n", n);
    } else if (text_needs_quote(v, n)) {
        /* a byte at a time, as docs/protocol.md words the rule */
        out[k++] = '"';
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)v[i];
            if (c == '"' || c == '\\') {
                out[k++] = '\\';
                out[k++] = (char)c;
            } else if (c == '\n' || c == '\r' || c == '\t') {
                out[k++] = '\\';
                out[k++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            } else if (c < 0x20 || c == 0x7f) {
                k += (size_t)sprintf(out + k, "\\x%02x", c);
            } else {
                out[k++] = (char)c;
            }
        }
        out[k++] = '"';
        memcpy(out + k, "\r\n", 2);
        return k + 2;
    }
    memcpy(out + k, v, n);
    memcpy(out + k + n, "\r\n", 2);
    return k + n + 2;
}

/* odd: a value every 7th byte of which is a space, a quote, a tab or
 * 0x7f (natively these are quoted); else letters. */
static void
check_lengths(int proto, size_t prefill, bool odd)
{
    static const char odd_bytes[] = {' ', '"', '\t', '\x7f', '\\'};
    static char v[MAXV], want[4 * MAXV + 64];
    for (size_t i = 0; i < MAXV; i++) {
        v[i] = (char)('a' + i % 26);
        if (odd && i % 7 == 6) {
            v[i] = odd_bytes[i % sizeof(odd_bytes)];
        }
    }
    for (size_t n = 0; n < MAXV; n++) {
        struct buf b;
        buf_init(&b);
        /* earlier output in the buffer, then fill to just under the next
         * capacity step so that every length meets a full buffer somewhere */
        for (size_t i = 0; i < prefill; i++) {
            buf_appendc(&b, 'x');
        }
        size_t before = b.len;
        struct reply r = {&b, proto};
        reply_bulk(&r, v + 1, n); /* an unaligned source */
        size_t wn = reference(want, proto, v + 1, n);
        assert_int_equal(b.len - before, wn);
        assert_memory_equal(b.data + before, want, wn);
        for (size_t i = 0; i < prefill; i++) {
            assert_int_equal(b.data[i], 'x');
        }
        buf_deinit(&b);
    }
}

static void
check_all_lengths(int proto, size_t prefill)
{
    check_lengths(proto, prefill, false);
}

static void
test_bulk_resp2(void **state)
{
    (void)state;
    check_all_lengths(REPLY_RESP2, 0);
    check_all_lengths(REPLY_RESP2, 7);
}

static void
test_bulk_resp3_and_native(void **state)
{
    (void)state;
    check_all_lengths(REPLY_RESP3, 0);
    check_all_lengths(REPLY_NATIVE, 0);
    check_all_lengths(REPLY_NATIVE, 13);
    /* values that need quoting natively (and the same bytes in RESP) */
    check_lengths(REPLY_NATIVE, 0, true);
    check_lengths(REPLY_NATIVE, 13, true);
    check_lengths(REPLY_RESP2, 0, true);
}

/* Every prefill up to a few capacity steps: the short path must fall back
 * whenever the reply does not fit, and write exactly its bytes when it does. */
static void
test_bulk_at_every_fill(void **state)
{
    (void)state;
    static char v[32], want[64];
    memset(v, 'v', sizeof(v));
    for (size_t fill = 0; fill < 600; fill++) {
        for (size_t n = 0; n <= 20; n++) {
            struct buf b;
            buf_init(&b);
            for (size_t i = 0; i < fill; i++) {
                buf_appendc(&b, 'x');
            }
            struct reply r = {&b, REPLY_RESP2};
            reply_bulk(&r, v, n);
            size_t wn = reference(want, REPLY_RESP2, v, n);
            assert_int_equal(b.len, fill + wn);
            assert_memory_equal(b.data + fill, want, wn);
            buf_deinit(&b);
        }
    }
}

/* Several replies in a row land one after the other. */
static void
test_bulk_sequence(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    struct reply r = {&b, REPLY_RESP2};
    reply_bulk(&r, "abc", 3);
    reply_bulk(&r, "", 0);
    reply_bulk(&r, "0123456789abcdef", 16);
    reply_bulk(&r, "0123456789abcdefg", 17);
    reply_null(&r);
    const char *want = "$3\r\nabc\r\n$0\r\n\r\n$16\r\n0123456789abcdef\r\n"
                       "$17\r\n0123456789abcdefg\r\n$-1\r\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_deinit(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bulk_resp2),
        cmocka_unit_test(test_bulk_resp3_and_native),
        cmocka_unit_test(test_bulk_at_every_fill),
        cmocka_unit_test(test_bulk_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
