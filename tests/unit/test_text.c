/*
 * test_text.c -- unit tests of the native text protocol parser.
 *
 * drive() feeds an input the way a connection does (first N bytes, then more
 * in steps), moving the unconsumed bytes to a freshly allocated block before
 * every call so that a parser keeping a stale pointer trips
 * AddressSanitizer, and writes a transcript: "(tok|tok)" per line ("()" for
 * an empty one), then "EAGAIN:<bytes left>" or "ERR:<text>". Every split of
 * an input must give the transcript of the whole input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/text.h"
#include "util/buf.h"
#include "util/mem.h"

static void
append_arg(struct buf *out, const struct proto_arg *a)
{
    for (size_t i = 0; i < a->len; i++) {
        unsigned char c = (unsigned char)a->ptr[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '|' && c != '(' && c != ')') {
            buf_appendc(out, (char)c);
        } else {
            buf_appendf(out, "\\x%02x", c);
        }
    }
}

static char *
move_block(char *cur, size_t *have, size_t drop, const char *add, size_t addlen)
{
    size_t keep = *have - drop;
    char *next = xmalloc(keep + addlen);
    if (keep > 0) {
        memcpy(next, cur + drop, keep);
    }
    if (addlen > 0) {
        memcpy(next + keep, add, addlen);
    }
    free(cur);
    *have = keep + addlen;
    return next;
}

/* max_line 0: default. */
static char *
drive_opt(size_t max_line, const char *in, size_t len, size_t first, size_t step)
{
    struct text_parser p;
    struct buf out;
    char *cur = NULL;
    size_t have = 0, delivered;

    text_parser_init(&p);
    if (max_line > 0) {
        p.max_line = max_line;
    }
    buf_init(&out);
    delivered = first < len ? first : len;
    cur = move_block(cur, &have, 0, in, delivered);
    for (;;) {
        struct proto_req req;
        size_t used = 777;
        int rc = text_parse(&p, cur, have, &req, &used);
        assert_true(used <= have);
        if (rc == PROTO_OK) {
            assert_true(used >= 1);
            assert_int_equal(cur[used - 1], '\n');
            buf_appendc(&out, '(');
            for (int i = 0; i < req.argc; i++) {
                const struct proto_arg *a = &req.argv[i];
                /* a plain token: non-empty bytes of the line; a quoted
                 * one: the parser's storage, possibly empty */
                bool in_line = a->ptr >= cur && a->ptr + a->len <= cur + used;
                bool in_store = p.store != NULL && a->ptr >= p.store &&
                                a->ptr + a->len <= p.store + p.store_cap;
                assert_true(in_line || in_store);
                assert_true(a->len > 0 || in_store);
                if (i > 0) {
                    buf_appendc(&out, '|');
                }
                append_arg(&out, a);
            }
            buf_appendc(&out, ')');
            cur = move_block(cur, &have, used, NULL, 0);
            continue;
        }
        if (rc == PROTO_EREQ) {
            assert_true(used >= 1);
            assert_int_equal(cur[used - 1], '\n');
            buf_appendf(&out, "[EREQ:%s]", text_parser_error(&p));
            cur = move_block(cur, &have, used, NULL, 0);
            continue;
        }
        assert_int_equal(used, 0);
        if (rc == PROTO_EPROTO) {
            buf_appendf(&out, "ERR:%s", text_parser_error(&p));
            assert_int_equal(text_parse(&p, cur, have, &req, &used), PROTO_EPROTO);
            break;
        }
        assert_int_equal(rc, PROTO_EAGAIN);
        if (delivered == len) {
            buf_appendf(&out, "EAGAIN:%zu", have);
            break;
        }
        {
            size_t add = step == 0 || step > len - delivered ? len - delivered : step;
            cur = move_block(cur, &have, 0, in + delivered, add);
            delivered += add;
        }
    }
    free(cur);
    text_parser_deinit(&p);
    buf_appendc(&out, '\0');
    return out.data;
}

static void
check_all_splits_opt(size_t max_line, const char *in, size_t len, const char *expect)
{
    char *t = drive_opt(max_line, in, len, len, 0);
    if (strcmp(t, expect) != 0) {
        print_error("input of %zu bytes: got %s want %s\n", len, t, expect);
    }
    assert_string_equal(t, expect);
    free(t);
    for (size_t k = 0; k <= len; k++) {
        t = drive_opt(max_line, in, len, k, 0);
        if (strcmp(t, expect) != 0) {
            print_error("split at %zu: got %s want %s\n", k, t, expect);
        }
        assert_string_equal(t, expect);
        free(t);
    }
    for (size_t step = 1; step <= 7; step += 2) {
        t = drive_opt(max_line, in, len, step, step);
        assert_string_equal(t, expect);
        free(t);
    }
}

#define CHECK(lit, expect) check_all_splits_opt(0, lit, sizeof(lit) - 1, expect)
#define CHECK_MAX(max, lit, expect) check_all_splits_opt(max, lit, sizeof(lit) - 1, expect)

static void
test_request_forms(void **state)
{
    (void)state;
    CHECK("PING\r\n", "(PING)EAGAIN:0");
    CHECK("PING\n", "(PING)EAGAIN:0");
    CHECK("PUT key value\r\n", "(PUT|key|value)EAGAIN:0");
    CHECK("PUT key value 60\r\n", "(PUT|key|value|60)EAGAIN:0");
    CHECK("GET k\r\n", "(GET|k)EAGAIN:0");
    CHECK("DEL k\n", "(DEL|k)EAGAIN:0");
    CHECK("EXPIRE k 10\r\n", "(EXPIRE|k|10)EAGAIN:0");
    CHECK("TTL k\r\n", "(TTL|k)EAGAIN:0");
    CHECK("AUTH s3cret\r\n", "(AUTH|s3cret)EAGAIN:0");
    CHECK("STATS\r\n", "(STATS)EAGAIN:0");
    CHECK("QUIT\r\n", "(QUIT)EAGAIN:0");
    CHECK("get k\r\n", "(get|k)EAGAIN:0");
}

static void
test_separators(void **state)
{
    (void)state;
    CHECK("  PUT   k\t\tv \t 5  \r\n", "(PUT|k|v|5)EAGAIN:0");
    CHECK("\tGET\tk\t\n", "(GET|k)EAGAIN:0");
    /* A token that starts with a double quote is quoted (test_quoted);
     * single quotes, backslashes outside quotes and quotes inside a plain
     * token are ordinary bytes. */
    CHECK("PUT \"a b\" 'c'\r\n", "(PUT|a b|'c')EAGAIN:0");
    CHECK("PUT 'a b'\r\n", "(PUT|'a|b')EAGAIN:0");
    CHECK("PUT k a\\nb\r\n", "(PUT|k|a\\x5cnb)EAGAIN:0");
    CHECK("PUT {\"a\":1} x\"y\"\r\n", "(PUT|{\"a\":1}|x\"y\")EAGAIN:0");
    /* Only the CR right before LF is part of the terminator. */
    CHECK("PUT k a\rb\r\n", "(PUT|k|a\\x0db)EAGAIN:0");
    CHECK("PUT k v\r\r\n", "(PUT|k|v\\x0d)EAGAIN:0");
    CHECK("\rGET\r\n", "(\\x0dGET)EAGAIN:0");
    /* NUL and high bytes are ordinary bytes. */
    CHECK("PUT k a\0\xff\r\n", "(PUT|k|a\\x00\\xff)EAGAIN:0");
    /* Other whitespace is not a separator. */
    CHECK("PUT k\va\fb\n", "(PUT|k\\x0ba\\x0cb)EAGAIN:0");
}

static void
test_empty_lines(void **state)
{
    (void)state;
    CHECK("\r\n", "()EAGAIN:0");
    CHECK("\n", "()EAGAIN:0");
    CHECK("   \t \r\n", "()EAGAIN:0");
    CHECK("\n\r\nPING\n", "()()(PING)EAGAIN:0");
}

static void
test_pipeline_and_partial(void **state)
{
    (void)state;
    CHECK("PUT a 1\r\nGET a\nDEL a\r\nGET a\r\nQUIT\r\n",
          "(PUT|a|1)(GET|a)(DEL|a)(GET|a)(QUIT)EAGAIN:0");
    CHECK("GET a\r\nGET b", "(GET|a)EAGAIN:5");
    CHECK("GET a\r\nGET b\r", "(GET|a)EAGAIN:6");
    CHECK("", "EAGAIN:0");
}

static void
test_line_too_long(void **state)
{
    (void)state;
    /* max_line counts the content, terminator excluded. */
    CHECK_MAX(5, "12345\r\n", "(12345)EAGAIN:0");
    CHECK_MAX(5, "12345\n", "(12345)EAGAIN:0");
    CHECK_MAX(5, "123456\r\n", "ERR:line too long");
    CHECK_MAX(5, "123456\n", "ERR:line too long");
    /* Known before the end of line arrives, the same for every split. */
    CHECK_MAX(5, "123456", "ERR:line too long");
    CHECK_MAX(5, "12345\r", "EAGAIN:6");
    CHECK_MAX(5, "12345", "EAGAIN:5");
    CHECK_MAX(5, "12345\rx", "ERR:line too long");
    CHECK_MAX(5, "GET a\r\n123456789", "(GET|a)ERR:line too long");
    CHECK_MAX(5, "a b c\r\nd e f\n", "(a|b|c)(d|e|f)EAGAIN:0");
}

static void
test_default_limit(void **state)
{
    struct text_parser p;
    struct proto_req req;
    size_t used;
    size_t n = TEXT_DEFAULT_MAX_LINE;
    char *s = xmalloc(n + 3);

    (void)state;
    memset(s, 'x', n + 3);
    text_parser_init(&p);
    memcpy(s + n, "\r\n", 2);
    assert_int_equal(text_parse(&p, s, n + 2, &req, &used), PROTO_OK);
    assert_int_equal(req.argc, 1);
    assert_int_equal(req.argv[0].len, n);
    assert_int_equal(used, n + 2);
    memcpy(s + n, "x\n", 2);
    assert_int_equal(text_parse(&p, s, n + 2, &req, &used), PROTO_EPROTO);
    assert_string_equal(text_parser_error(&p), "line too long");
    assert_int_equal(used, 0);
    /* Sticky until reset. */
    assert_int_equal(text_parse(&p, "PING\n", 5, &req, &used), PROTO_EPROTO);
    text_parser_reset(&p);
    assert_string_equal(text_parser_error(&p), "");
    assert_int_equal(text_parse(&p, "PING\n", 5, &req, &used), PROTO_OK);
    text_parser_deinit(&p);
    free(s);
}

static void
test_reset_drops_partial(void **state)
{
    struct text_parser p;
    struct proto_req req;
    size_t used;

    (void)state;
    text_parser_init(&p);
    assert_int_equal(text_parse(&p, "GET abcdef", 10, &req, &used), PROTO_EAGAIN);
    text_parser_reset(&p);
    /* A shorter, different input now: must be searched from its start. */
    assert_int_equal(text_parse(&p, "A\nB\n", 4, &req, &used), PROTO_OK);
    assert_int_equal(used, 2);
    assert_int_equal(req.argc, 1);
    assert_memory_equal(req.argv[0].ptr, "A", 1);
    text_parser_deinit(&p);
}

static void
test_many_tokens_and_reuse(void **state)
{
    struct text_parser p;
    struct proto_req req;
    size_t used;
    struct buf in;

    (void)state;
    buf_init(&in);
    for (int i = 0; i < 10000; i++) {
        buf_appendf(&in, "%d ", i);
    }
    buf_appendc(&in, '\n');
    text_parser_init(&p);
    assert_int_equal(text_parse(&p, in.data, in.len, &req, &used), PROTO_OK);
    assert_int_equal(req.argc, 10000);
    assert_int_equal(used, in.len);
    assert_memory_equal(req.argv[9999].ptr, "9999", 4);
    /* Big storage is released when the next line starts ... */
    assert_int_equal(text_parse(&p, "GET k\n", 6, &req, &used), PROTO_OK);
    assert_true(p.argv_cap <= 4096);
    /* ... and small lines reuse the same storage. */
    {
        struct proto_arg *before = p.argv;
        for (int i = 0; i < 100; i++) {
            assert_int_equal(text_parse(&p, "PUT k v 10\r\n", 12, &req, &used), PROTO_OK);
            assert_int_equal(req.argc, 4);
        }
        assert_ptr_equal(p.argv, before);
    }
    text_parser_deinit(&p);
    buf_deinit(&in);
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A 1 MiB line arriving 1 KiB at a time (1024 calls): each byte is searched
 * for the newline once; rescanning would visit ~540 MB. */
static void
test_long_line_linear(void **state)
{
    const size_t n = TEXT_DEFAULT_MAX_LINE;
    struct text_parser p;
    struct proto_req req;
    size_t used;
    char *s = xmalloc(n + 1);
    double t0;
    size_t have;

    (void)state;
    memset(s, 'v', n);
    s[n] = '\n';
    text_parser_init(&p);
    t0 = now_s();
    for (have = 1024; have <= n; have += 1024) {
        assert_int_equal(text_parse(&p, s, have, &req, &used), PROTO_EAGAIN);
    }
    assert_int_equal(text_parse(&p, s, n + 1, &req, &used), PROTO_OK);
    assert_true(now_s() - t0 < 0.5);
    assert_int_equal(req.argv[0].len, n);
    text_parser_deinit(&p);
    free(s);
}

/* The no-rescan contract, observed directly: the second call breaks it on
 * purpose by planting a '\n' in bytes the first call already searched; a
 * parser that rescans would stop there. */
static void
test_no_rescan(void **state)
{
    struct text_parser p;
    struct proto_req req;
    size_t used;

    (void)state;
    text_parser_init(&p);
    assert_int_equal(text_parse(&p, "GET aaaa", 8, &req, &used), PROTO_EAGAIN);
    assert_int_equal(text_parse(&p, "GET\naaa b\n", 10, &req, &used), PROTO_OK);
    assert_int_equal(used, 10);
    assert_int_equal(req.argc, 2);
    assert_memory_equal(req.argv[0].ptr, "GET\naaa", 7);
    text_parser_deinit(&p);
}

/* Lines of 16 bytes and more start on the one-pass fast path; these put
 * separators, '\r' and '\n' on both sides of its 16-byte block edges and
 * in the overlapping last block. Every split also runs the general path. */
static void
test_fast_path_blocks(void **state)
{
    (void)state;
    /* '\n' at offsets 15, 16, 17: the end of the first block, the start of
     * the second. */
    CHECK("GET 0123456789\r\n", "(GET|0123456789)EAGAIN:0");
    CHECK("GET 01234567890\r\n", "(GET|01234567890)EAGAIN:0");
    CHECK("GET 012345678901\r\n", "(GET|012345678901)EAGAIN:0");
    CHECK("GET 0123456789a\n", "(GET|0123456789a)EAGAIN:0");
    CHECK("GET 0123456789ab\n", "(GET|0123456789ab)EAGAIN:0");
    /* '\r' the last byte of a block, its '\n' the first of the next. */
    CHECK("PUT k 0123456789\r\n", "(PUT|k|0123456789)EAGAIN:0");
    CHECK("PUT k 012345678 \r\n", "(PUT|k|012345678)EAGAIN:0");
    CHECK("PUT k 0123456789 \r\nGET k\r\n", "(PUT|k|0123456789)(GET|k)EAGAIN:0");
    /* A separator on each side of a block edge, tokens across it. */
    CHECK("PUT abcdefghijklm nopqrstuvwxyz 60\r\n",
          "(PUT|abcdefghijklm|nopqrstuvwxyz|60)EAGAIN:0");
    CHECK("PUT abcdefghijkl mnopqrstuvwxyz\t60\r\n",
          "(PUT|abcdefghijkl|mnopqrstuvwxyz|60)EAGAIN:0");
    CHECK("PUT abcdefghijk \tlmnopqrstuvwxyz 60\n",
          "(PUT|abcdefghijk|lmnopqrstuvwxyz|60)EAGAIN:0");
    /* A '\r' not before '\n' at a block edge is a byte of its token. */
    CHECK("PUT k 012345678\rab\r\n", "(PUT|k|012345678\\x0dab)EAGAIN:0");
    CHECK("PUT k 01234567\r\r\n", "(PUT|k|01234567\\x0d)EAGAIN:0");
    /* Leading and trailing blanks, a blank or empty line in a pipeline. */
    CHECK("                \r\n", "()EAGAIN:0");
    CHECK("\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\tx\n", "(x)EAGAIN:0");
    CHECK("\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nPING\n",
          "()()()()()()()()()()()()()()()()(PING)EAGAIN:0");
    CHECK("\r\nGET k\r\n\r\nGET 0123456789abcdef\r\n",
          "()(GET|k)()(GET|0123456789abcdef)EAGAIN:0");
    /* More tokens than argv holds at first (8) and than a block has (16). */
    CHECK("a b c d e f g h i j k l m n o p q r s t\r\n",
          "(a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q|r|s|t)EAGAIN:0");
    /* No end of line yet: how much is left over. */
    CHECK("GET a\r\nPUT 0123456789abcdef v", "(GET|a)EAGAIN:22");
    CHECK("PUT 0123456789abcdef v\r", "EAGAIN:23");
    /* A line ending within the first 32 bytes takes one 32-bit mask: '\n' at
     * offsets 31 (with and without '\r'), then at 32 (the block loop). */
    CHECK("PUT k 0123456789abcdefghijklmn\r\nGET k\r\n",
          "(PUT|k|0123456789abcdefghijklmn)(GET|k)EAGAIN:0");
    CHECK("PUT k 0123456789abcdefghijklmno\nGET k\n",
          "(PUT|k|0123456789abcdefghijklmno)(GET|k)EAGAIN:0");
    CHECK("PUT k 0123456789abcdefghijklmno\r\nGET k\r\n",
          "(PUT|k|0123456789abcdefghijklmno)(GET|k)EAGAIN:0");
    CHECK("  GET\t\tk  \r\n PUT\tk v\r\n GET 0123456789\r\n",
          "(GET|k)(PUT|k|v)(GET|0123456789)EAGAIN:0");
    /* NUL and high bytes inside blocks. */
    CHECK("PUT k \x00\xff\x80 \x0b\x0c\x01 end\n",
          "(PUT|k|\\x00\\xff\\x80|\\x0b\\x0c\\x01|end)EAGAIN:0");
}

/* The limit on the fast path: it looks at min(len, max_line + 2) bytes,
 * and leaves a max_line below 14 to the general path. */
static void
test_fast_path_limit(void **state)
{
    (void)state;
    CHECK_MAX(20, "PUT k 0123456789abcd\r\n", "(PUT|k|0123456789abcd)EAGAIN:0");
    CHECK_MAX(20, "PUT k 0123456789abcd\n", "(PUT|k|0123456789abcd)EAGAIN:0");
    CHECK_MAX(20, "PUT k 0123456789abcde\r\n", "ERR:line too long");
    CHECK_MAX(20, "PUT k 0123456789abcde\n", "ERR:line too long");
    CHECK_MAX(20, "PUT k 0123456789abcd\r", "EAGAIN:21");
    CHECK_MAX(20, "PUT k 0123456789abcd\rx", "ERR:line too long");
    CHECK_MAX(20, "PUT k 0123456789abcdefghijklmnop\r\nPING\r\n", "ERR:line too long");
    CHECK_MAX(20, "GET k\r\nPUT k 0123456789abcdefghij", "(GET|k)ERR:line too long");
    CHECK_MAX(20, "GET 0123456789abcd\r\nGET 0123456789abcd\r\n",
              "(GET|0123456789abcd)(GET|0123456789abcd)EAGAIN:0");
    CHECK_MAX(14, "0123456789abcd\r\n0123456789abcde\r\n", "(0123456789abcd)ERR:line too long");
    CHECK_MAX(13, "0123456789abc\r\n0123456789abcd\r\n", "(0123456789abc)ERR:line too long");
    CHECK_MAX(1, "a\nbb\n", "(a)ERR:line too long");
}

/* Fast path against general path: random lines over an alphabet of
 * separators, CR, LF and token bytes, each parsed from the whole input
 * (the fast path wherever 16 bytes remain) and one byte at a time (the
 * general path only: a line is never whole when it starts), with the
 * default limit and with small ones. */
static void
test_fast_path_matches_general(void **state)
{
    static const char alphabet[] = {' ',  '\t', '\r', '\n', 'a', 'b',
                                    '\0', '\xff', '\x0b', '"', '\\'};
    /* weights: mostly token bytes, some separators, fewer CR and LF, quotes */
    static const int pick[] = {0, 0, 1, 2, 3, 4, 4, 4, 4, 5, 5, 5, 6, 7, 8, 9, 10};
    char in[200];
    unsigned seed = 12345;

    (void)state;
    for (int iter = 0; iter < 3000; iter++) {
        size_t len, max_line;
        char *whole, *bytes;
        seed = seed * 1103515245u + 12345u;
        len = (seed >> 16) % sizeof(in);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = alphabet[pick[(seed >> 16) % (sizeof(pick) / sizeof(pick[0]))]];
        }
        seed = seed * 1103515245u + 12345u;
        max_line = (seed >> 16) % 3 == 0 ? 1 + (seed >> 18) % 40 : 0;
        whole = drive_opt(max_line, in, len, len, 0);
        bytes = drive_opt(max_line, in, len, 1, 1);
        if (strcmp(whole, bytes) != 0) {
            print_error("iteration %d, %zu bytes, max_line %zu: whole %s, bytewise %s\n", iter,
                        len, max_line, whole, bytes);
        }
        assert_string_equal(whole, bytes);
        free(whole);
        free(bytes);
    }
}

/* Quoted tokens: escapes, the empty token, spaces inside, and the errors,
 * which take the line (EREQ) and leave the next one alone. Each input is
 * fed whole and in every split, so the fast and general paths agree. */
static void
test_quoted(void **state)
{
    (void)state;
    CHECK("PUT empty \"\"\r\n", "(PUT|empty|)EAGAIN:0");
    CHECK("PUT k \"\" 60\n", "(PUT|k||60)EAGAIN:0");
    CHECK("PUT user:124 \"{\\\"name\\\": \\\"Alice\\\"}\"\r\n",
          "(PUT|user:124|{\"name\": \"Alice\"})EAGAIN:0");
    CHECK("PUT k \"a\\\\b\\n\\r\\t\\x41\\x4a\\xzz\\q\\b\\a\"\r\n",
          "(PUT|k|a\\x5cb\\x0a\\x0d\\x09AJxzzq\\x08\\x07)EAGAIN:0");
    CHECK("\"GET\" \"k y\"\r\n", "(GET|k y)EAGAIN:0");
    CHECK("PUT k \"a\tb  c\"\t\r\n", "(PUT|k|a\\x09b  c)EAGAIN:0");
    CHECK("PUT k \"a\rb\"\r\n", "(PUT|k|a\\x0db)EAGAIN:0");
    /* a quote inside a quoted token is escaped; at the end of one, \x
     * needs two hex digits */
    CHECK("PUT k \"\\x4\"\r\n", "(PUT|k|x4)EAGAIN:0");
    /* long quoted lines take the fast path's hand-over (32+ bytes) */
    CHECK("PUT somewhat-longer-key-0001 \"value with   spaces inside it\" 600\r\nGET k\r\n",
          "(PUT|somewhat-longer-key-0001|value with   spaces inside it|600)(GET|k)EAGAIN:0");
    /* errors: the line is answered, the next is parsed */
    CHECK("PUT k \"abc\r\nPING\r\n",
          "[EREQ:unbalanced quotes: the quote at byte 7 is not closed; send a value with spaces "
          "as one double-quoted token](PING)EAGAIN:0");
    CHECK("PUT k \"a\"b\r\nPING\n",
          "[EREQ:unbalanced quotes: the closing quote at byte 9 is followed by 'b', not a space "
          "or the end of the line; send a value with spaces as one double-quoted token](PING)"
          "EAGAIN:0");
    CHECK("PUT user:124 {\"name\": \"Alice\"}\r\n",
          "[EREQ:unbalanced quotes: the closing quote at byte 29 is followed by '}', not a space "
          "or the end of the line; send a value with spaces as one double-quoted token]EAGAIN:0");
    CHECK("PUT k \"ab\\\"\r\n",
          "[EREQ:unbalanced quotes: the quote at byte 7 is not closed; send a value with spaces "
          "as one double-quoted token]EAGAIN:0");
    CHECK("PUT k \"ab\\\r\n",
          "[EREQ:unbalanced quotes: the quote at byte 7 is not closed; send a value with spaces "
          "as one double-quoted token]EAGAIN:0");
    /* a quote never makes a line span a newline (and inside a plain token,
     * as b" here, it is an ordinary byte) */
    CHECK("PUT k \"a\nb\"\n",
          "[EREQ:unbalanced quotes: the quote at byte 7 is not closed; send a value with spaces "
          "as one double-quoted token](b\")EAGAIN:0");
    /* the line limit counts the bytes as sent */
    CHECK_MAX(8, "PUT \"a\"\r\nPUT \"\\x41\"\r\n", "(PUT|a)ERR:line too long");
}

/* text_needs_quote / text_quote: the reply of any value, sent back as a
 * token, parses to the same bytes; plain values are left alone. */
static void
test_quote_round_trip(void **state)
{
    (void)state;
    static const char *plain[] = {"a", "hello", "{\"a\":1}", "x\"", "a\\b", "\xc3\xa9t\xc3\xa9",
                                  "NULLX", "null", "ERROR", "12345678901234567"};
    static const char *quoted[] = {"", "\"", "\"a\"", "a b", "a\tb", "a\r", "\n", "NULL",
                                   "ERROR: x", "ERROR:", "0123456789abcdef\x7f",
                                   "0123456789abcdef0123 "};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        assert_false(text_needs_quote(plain[i], strlen(plain[i])));
    }
    for (size_t i = 0; i < sizeof(quoted) / sizeof(quoted[0]); i++) {
        assert_true(text_needs_quote(quoted[i], strlen(quoted[i])));
    }
    char out[4 * 40 + 2];
    size_t n = text_quote("a\"b\\c\n\r\t\x01\x7f\xff d", 13, out);
    assert_int_equal(n, text_quoted_len("a\"b\\c\n\r\t\x01\x7f\xff d", 13));
    assert_memory_equal(out, "\"a\\\"b\\\\c\\n\\r\\t\\x01\\x7f\xff d\"", n);

    /* random values over a hostile alphabet, every length up to 40 */
    static const char alphabet[] = {' ', '\t', '\r', '\n', '"', '\\', 'x', '4', 'a', '\0', '\x7f',
                                    '\xff', 'N', 'U', 'L'};
    unsigned seed = 99;
    struct text_parser p;
    text_parser_init(&p);
    for (int iter = 0; iter < 20000; iter++) {
        char v[40], line[4 * 40 + 16];
        size_t len;
        seed = seed * 1103515245u + 12345u;
        len = (seed >> 16) % sizeof(v);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            v[i] = alphabet[(seed >> 16) % sizeof(alphabet)];
        }
        size_t w = 0;
        memcpy(line, "PUT k ", 6);
        w = 6;
        if (text_needs_quote(v, len)) {
            w += text_quote(v, len, line + w);
        } else {
            memcpy(line + w, v, len);
            w += len;
        }
        memcpy(line + w, "\r\n", 2);
        w += 2;
        struct proto_req req;
        size_t used;
        assert_int_equal(text_parse(&p, line, w, &req, &used), PROTO_OK);
        assert_int_equal(used, w);
        assert_int_equal(req.argc, 3);
        assert_int_equal(req.argv[2].len, len);
        assert_memory_equal(req.argv[2].ptr, v, len);
    }
    text_parser_deinit(&p);
}

/* text_peek_keys: the second token of each whole line in front, stopping at
 * a partial line or one without a key. */
static void
test_peek_keys(void **state)
{
    (void)state;
    const char *key[4];
    size_t klen[4];
    const char in[] = "GET a\r\n  PUT\t bc v 60\nGET de";
    assert_int_equal(text_peek_keys(in, strlen(in), key, klen, 4), 2);
    assert_int_equal(klen[0], 1);
    assert_memory_equal(key[0], "a", 1);
    assert_int_equal(klen[1], 2);
    assert_memory_equal(key[1], "bc", 2);
    /* lines with 32 bytes or more after their start take the SSE2 path */
    const char in2[] = "  GET  k1  \r\nPUT\tk22 v\r\nGET k333\rx\r\nPING\r\nPING\r\nPING\r\n";
    assert_int_equal(text_peek_keys(in2, strlen(in2), key, klen, 4), 3);
    assert_int_equal(klen[0], 2);
    assert_memory_equal(key[0], "k1", 2);
    assert_int_equal(klen[1], 3);
    assert_memory_equal(key[1], "k22", 3);
    assert_int_equal(klen[2], 6);
    assert_memory_equal(key[2], "k333\rx", 6);
    /* a quoted key or command name stops the look-ahead (both paths); a
     * quoted value does not */
    const char in3[] = "GET a\r\nPUT b \"v w\"\r\nGET \"c d\"\r\nGET e\r\n";
    assert_int_equal(text_peek_keys(in3, strlen(in3), key, klen, 4), 2);
    assert_memory_equal(key[1], "b", 1);
    const char in4[] = "GET a\r\n\"GET\" b\r\nGET e\r\n";
    assert_int_equal(text_peek_keys(in4, strlen(in4), key, klen, 4), 1);
    const char in5[] = "GET \"quoted key, a line of more than 32 bytes\"\r\n";
    assert_int_equal(text_peek_keys(in5, strlen(in5), key, klen, 4), 0);
    const char in6[] = "GET \"k\"\r\n";
    assert_int_equal(text_peek_keys(in6, strlen(in6), key, klen, 4), 0);
    const char *stops[] = {"PING\r\nGET a\r\n", "\r\n", "GET a", ""};
    for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
        assert_int_equal(text_peek_keys(stops[i], strlen(stops[i]), key, klen, 4), 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_forms),
        cmocka_unit_test(test_separators),
        cmocka_unit_test(test_empty_lines),
        cmocka_unit_test(test_pipeline_and_partial),
        cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_default_limit),
        cmocka_unit_test(test_reset_drops_partial),
        cmocka_unit_test(test_many_tokens_and_reuse),
        cmocka_unit_test(test_long_line_linear),
        cmocka_unit_test(test_no_rescan),
        cmocka_unit_test(test_fast_path_blocks),
        cmocka_unit_test(test_fast_path_limit),
        cmocka_unit_test(test_peek_keys),
        cmocka_unit_test(test_quoted),
        cmocka_unit_test(test_quote_round_trip),
        cmocka_unit_test(test_fast_path_matches_general),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
