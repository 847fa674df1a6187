/*
 * test_resp_reply.c -- resp_reply_len (proto/resp_reply.c): every RESP2 and
 * RESP3 reply type as Redis writes it, nested aggregates, every prefix of a
 * whole reply needs more bytes, bytes after it are not read, and malformed
 * input is refused rather than waited for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/resp_reply.h"

#include <stdio.h>
#include <string.h>

static long long
len_of(const char *s)
{
    return resp_reply_len(s, strlen(s));
}

/* s is one whole reply: its length is strlen(s), every proper prefix asks
 * for more, and trailing bytes do not change the answer. */
static void
whole(const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(resp_reply_len(s, n), (long long)n);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(resp_reply_len(s, k), 0);
    }
    char more[1024];
    snprintf(more, sizeof(more), "%s+OK\r\n", s);
    assert_int_equal(resp_reply_len(more, strlen(more)), (long long)n);
}

static void
test_simple_types(void **state)
{
    (void)state;
    whole("+OK\r\n");
    whole("-ERR unknown command 'X'\r\n");
    whole("-MOVED 3999 127.0.0.1:7001\r\n");
    whole(":-42\r\n");
    whole("_\r\n");
    whole(",3.14\r\n");
    whole("#t\r\n");
    whole("(3492890328409238509324850943850943825024385\r\n");
    whole("+\r\n");
}

static void
test_bulk_types(void **state)
{
    (void)state;
    whole("$5\r\nhello\r\n");
    whole("$0\r\n\r\n");
    whole("$-1\r\n");
    whole("$4\r\na\r\nb\r\n"); /* CRLF inside a bulk is data */
    whole("=15\r\ntxt:Some string\r\n");
    whole("!21\r\nSYNTAX invalid syntax\r\n");
}

static void
test_aggregates(void **state)
{
    (void)state;
    whole("*0\r\n");
    whole("*-1\r\n");
    whole("*3\r\n$1\r\na\r\n$-1\r\n:7\r\n");
    whole("*2\r\n*2\r\n+a\r\n+b\r\n*1\r\n*0\r\n");
    whole("%2\r\n+k1\r\n:1\r\n+k2\r\n$2\r\nv2\r\n");
    whole("~2\r\n+a\r\n+b\r\n");
    whole(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    /* an attribute, then the reply it annotates */
    whole("|1\r\n+ttl\r\n:3600\r\n*2\r\n:1\r\n:2\r\n");
    size_t hdr = 0;
    assert_int_equal(resp_reply_array_count("*3\r\n$1\r\na", 9, &hdr), 3);
    assert_int_equal(hdr, 4);
    assert_int_equal(resp_reply_array_count("*-1\r\n", 5, &hdr), -1);
    assert_int_equal(resp_reply_array_count(":1\r\n", 4, &hdr), -1);
    assert_int_equal(resp_reply_array_count("*1", 2, &hdr), -1);
}

static void
test_malformed(void **state)
{
    (void)state;
    assert_int_equal(len_of("?x\r\n"), -1);          /* unknown type */
    assert_int_equal(len_of("+OK\n"), -1);           /* bare LF */
    assert_int_equal(len_of("+O\rK\r\n"), -1);       /* bare CR */
    assert_int_equal(len_of("$x\r\n"), -1);          /* bad length */
    assert_int_equal(len_of("$-2\r\n"), -1);
    assert_int_equal(len_of("=-1\r\n"), -1);         /* only $ and * have a null */
    assert_int_equal(len_of("%-1\r\n"), -1);
    assert_int_equal(len_of("$3\r\nabcd\r\n"), -1);  /* body longer than said */
    assert_int_equal(len_of("$1234567890123456789\r\n"), -1);
    assert_int_equal(len_of("*1\r\n+a\r\n"), 8);
    /* too deep */
    char deep[4 * (RESP_REPLY_MAX_DEPTH + 2) + 8];
    size_t k = 0;
    for (int i = 0; i < RESP_REPLY_MAX_DEPTH + 1; i++) {
        memcpy(deep + k, "*1\r\n", 4);
        k += 4;
    }
    memcpy(deep + k, ":1\r\n", 4);
    k += 4;
    assert_int_equal(resp_reply_len(deep, k), -1);
    /* exactly at the limit is fine */
    assert_int_equal(resp_reply_len(deep + 4, k - 4), (long long)(k - 4));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_types),
        cmocka_unit_test(test_bulk_types),
        cmocka_unit_test(test_aggregates),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
