/*
 * test_resp.c -- unit tests of the RESP / inline request parser.
 *
 * Most tests go through drive(): it feeds an input to a parser the way a
 * connection does (first N bytes, then more in steps), moving the unconsumed
 * bytes to a freshly allocated block before every call so that a parser that
 * kept a pointer into an old block trips AddressSanitizer, and writes what
 * came out as a transcript string: "(arg|arg)" per request, then "EAGAIN:<n>"
 * (n = bytes left unconsumed at the end) or "ERR:<text>". Every split of an
 * input must give the transcript of the whole input.
 *
 * Expected outcomes of inline quoting and of the limits were observed on
 * redis-server 7.0.15 with raw sockets (see docs/protocol.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/resp.h"
#include "util/buf.h"
#include "util/mem.h"

/* ---- the driver ------------------------------------------------------------ */

struct drive_opts {
    long long max_bulk_len;  /* 0: default */
    size_t max_inline;       /* 0: default */
    bool unauthenticated;
};

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

/* Replace cur by a new block holding its bytes [drop, have) plus `add` new
 * input bytes. */
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

/* Feed in[0..len): `first` bytes, then `step` at a time (0: all the rest).
 * Returns the transcript; the caller frees it. */
static char *
drive_opt(const struct drive_opts *o, const char *in, size_t len, size_t first, size_t step)
{
    struct resp_parser p;
    struct buf out;
    char *cur = NULL;
    size_t have = 0, delivered;

    resp_parser_init(&p);
    if (o != NULL) {
        if (o->max_bulk_len > 0) {
            p.max_bulk_len = o->max_bulk_len;
        }
        if (o->max_inline > 0) {
            p.max_inline = o->max_inline;
        }
        p.unauthenticated = o->unauthenticated;
    }
    buf_init(&out);
    delivered = first < len ? first : len;
    cur = move_block(cur, &have, 0, in, delivered);
    for (;;) {
        struct proto_req req;
        size_t used = 12345;
        int rc = resp_parse(&p, cur, have, &req, &used);
        assert_true(used <= have);
        if (rc == PROTO_OK) {
            assert_true(req.argc >= 1);
            buf_appendc(&out, '(');
            for (int i = 0; i < req.argc; i++) {
                const struct proto_arg *a = &req.argv[i];
                bool in_buf = a->ptr >= cur && a->ptr + a->len <= cur + used;
                bool in_scratch = p.scratch != NULL && a->ptr >= p.scratch &&
                                  a->ptr + a->len <= p.scratch + p.scratch_cap;
                assert_true(in_buf || in_scratch);
                if (i > 0) {
                    buf_appendc(&out, '|');
                }
                append_arg(&out, a);
            }
            buf_appendc(&out, ')');
            cur = move_block(cur, &have, used, NULL, 0);
            continue;
        }
        if (rc == PROTO_EPROTO) {
            buf_appendf(&out, "ERR:%s", resp_parser_error(&p));
            /* Sticky until reset. */
            assert_int_equal(resp_parse(&p, cur, have, &req, &used), PROTO_EPROTO);
            break;
        }
        assert_int_equal(rc, PROTO_EAGAIN);
        assert_string_equal(resp_parser_error(&p), "");
        if (delivered == len) {
            buf_appendf(&out, "EAGAIN:%zu", have - used);
            break;
        }
        {
            size_t add = step == 0 || step > len - delivered ? len - delivered : step;
            cur = move_block(cur, &have, used, in + delivered, add);
            delivered += add;
        }
    }
    free(cur);
    resp_parser_deinit(&p);
    buf_appendc(&out, '\0');
    return out.data;
}

static char *
drive(const char *in, size_t len, size_t first, size_t step)
{
    return drive_opt(NULL, in, len, first, step);
}

/* The whole input must give `expect`; so must every split point, 1-byte
 * feeding and a few other step sizes. */
static void
check_all_splits_opt(const struct drive_opts *o, const char *in, size_t len, const char *expect)
{
    char *t = drive_opt(o, in, len, len, 0);
    if (strcmp(t, expect) != 0) {
        print_error("input of %zu bytes: got %s want %s\n", len, t, expect);
    }
    assert_string_equal(t, expect);
    free(t);
    for (size_t k = 0; k <= len; k++) {
        t = drive_opt(o, in, len, k, 0);
        if (strcmp(t, expect) != 0) {
            print_error("split at %zu: got %s want %s\n", k, t, expect);
        }
        assert_string_equal(t, expect);
        free(t);
    }
    for (size_t step = 1; step <= 7; step += 2) {
        t = drive_opt(o, in, len, step, step);
        assert_string_equal(t, expect);
        free(t);
    }
}

static void
check_all_splits(const char *in, size_t len, const char *expect)
{
    check_all_splits_opt(NULL, in, len, expect);
}

#define CHECK(lit, expect) check_all_splits(lit, sizeof(lit) - 1, expect)

/* ---- valid requests ---------------------------------------------------------- */

static void
test_multibulk_forms(void **state)
{
    (void)state;
    CHECK("*1\r\n$4\r\nPING\r\n", "(PING)EAGAIN:0");
    CHECK("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n", "(SET|k|hello)EAGAIN:0");
    CHECK("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", "(ECHO|)EAGAIN:0");
    /* Binary-safe: CR, LF, NUL and high bytes inside a bulk. */
    CHECK("*2\r\n$3\r\nSET\r\n$6\r\na\r\n\0\xff$\r\n", "(SET|a\\x0d\\x0a\\x00\\xff$)EAGAIN:0");
    /* Big counts are legal as long as they are honest. */
    CHECK("*10\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n"
          "$1\r\nf\r\n$1\r\ng\r\n$1\r\nh\r\n$1\r\ni\r\n$2\r\njj\r\n",
          "(a|b|c|d|e|f|g|h|i|jj)EAGAIN:0");
    /* Incomplete requests leave everything unconsumed. */
    CHECK("*2\r\n$3\r\nGET\r\n$1\r\n", "EAGAIN:17");
    CHECK("*2\r\n$3\r\nGET\r\n$1\r\nk\r", "EAGAIN:19");
    CHECK("*2\r", "EAGAIN:3");
}

static void
test_empty_requests_skipped(void **state)
{
    (void)state;
    CHECK("*0\r\n", "EAGAIN:0");
    CHECK("*-1\r\n", "EAGAIN:0");
    CHECK("*-5\r\n*1\r\n$4\r\nPING\r\n", "(PING)EAGAIN:0");
    CHECK("*-9223372036854775808\r\nPING\r\n", "(PING)EAGAIN:0");
    CHECK("*0\r\n*0\r\n*1\r\n$4\r\nPING\r\n*0\r\n", "(PING)EAGAIN:0");
    CHECK("\r\n\n   \r\n\t\r\nPING\r\n", "(PING)EAGAIN:0");
    /* Skipped empties are consumed even when what follows is incomplete. */
    CHECK("*0\r\n\r\n*1\r\n$4\r\nPI", "EAGAIN:10");
    CHECK("\n\n\nPI", "EAGAIN:2");
}

static void
test_empty_consumed_on_eagain(void **state)
{
    struct resp_parser p;
    struct proto_req req;
    size_t used;
    const char in[] = "*0\r\n\r\n*1\r\n$4\r\nPI";

    (void)state;
    resp_parser_init(&p);
    assert_int_equal(resp_parse(&p, in, sizeof(in) - 1, &req, &used), PROTO_EAGAIN);
    assert_int_equal(used, 6);
    resp_parser_deinit(&p);
}

static void
test_inline_forms(void **state)
{
    (void)state;
    CHECK("PING\r\n", "(PING)EAGAIN:0");
    CHECK("PING\n", "(PING)EAGAIN:0");
    CHECK("SET k v\r\n", "(SET|k|v)EAGAIN:0");
    CHECK("  SET \t k   v  \r\n", "(SET|k|v)EAGAIN:0");
    CHECK("PING\r\r\n", "(PING)EAGAIN:0");
    CHECK("\rPING\r\n", "(PING)EAGAIN:0");
    CHECK("SET k", "EAGAIN:5");
    CHECK("SET k\r", "EAGAIN:6");
    /* Any first byte but '*' means inline. */
    CHECK("$3\r\n", "($3)EAGAIN:0");
}

static void
test_pipeline(void **state)
{
    (void)state;
    CHECK("*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nSET a \"b c\"\n"
          "*1\r\n$4\r\nQUIT\r\n",
          "(PING)(PING)(GET|k)(SET|a|b c)(QUIT)EAGAIN:0");
    CHECK("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI", "(PING)EAGAIN:10");
}

/* Redis skips the byte after a count's '\r' and the two after a bulk
 * without looking at them; observed on redis-server 7.0. */
static void
test_redis_quirks(void **state)
{
    (void)state;
    CHECK("*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", "(PING)(PING)EAGAIN:0");
    CHECK("*1\rx$4\rxPINGxx", "(PING)EAGAIN:0");
    /* A one-byte bulk followed by "b\r" then "\n": an empty inline line. */
    CHECK("*1\r\n$1\r\nab\r\n", "(a)EAGAIN:0");
}

/* ---- errors ----------------------------------------------------------------------- */

static void
test_error_texts(void **state)
{
    (void)state;
    CHECK("*2147483648\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*9223372036854775807\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*-9223372036854775809\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*+1\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*01\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("* 1\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*1 \r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*-\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*-0\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*1\0\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*1\r\n$-1\r\n", "ERR:Protocol error: invalid bulk length");
    CHECK("*1\r\n$-0\r\n", "ERR:Protocol error: invalid bulk length");
    CHECK("*1\r\n$04\r\nPING\r\n", "ERR:Protocol error: invalid bulk length");
    CHECK("*1\r\n$536870913\r\n", "ERR:Protocol error: invalid bulk length");
    CHECK("*1\r\n$18446744073709551616\r\n", "ERR:Protocol error: invalid bulk length");
    CHECK("*1\r\n$\r\n", "ERR:Protocol error: invalid bulk length");
    CHECK("*1\r\n$1a\r\n", "ERR:Protocol error: invalid bulk length");
    CHECK("*1\r\n$999999999999999999\r\n", "ERR:Protocol error: invalid bulk length");
    CHECK("*1\r\n$9223372036854775807\r\n", "ERR:Protocol error: invalid bulk length");
    CHECK("*1\r\n$9223372036854775808\r\n", "ERR:Protocol error: invalid bulk length");
    CHECK("*99999999999999999\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*999999999999999999\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*1x\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*1\r\nx4\r\n", "ERR:Protocol error: expected '$', got 'x'");
    CHECK("*1\r\n\r\n", "ERR:Protocol error: expected '$', got ' '");
    CHECK("*1\r\n\0\r\n", "ERR:Protocol error: expected '$', got ' '");
    CHECK("\r\n*0\r\n*x\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*1\r\n\n\r\n", "ERR:Protocol error: expected '$', got ' '");
    CHECK("*1\r\n\xff\r\n", "ERR:Protocol error: expected '$', got '\xff'");
    CHECK("*2\r\n$1\r\na\r\n\r\n", "ERR:Protocol error: expected '$', got ' '");
    CHECK("SET \"a\"b\r\n", "ERR:Protocol error: unbalanced quotes in request");
    /* A good request before the bad one is still delivered. */
    CHECK("PING\r\n*1\r\n$x\r\n", "(PING)ERR:Protocol error: invalid bulk length");
    /* Limit on bulk length is an option. */
    {
        struct drive_opts o = { .max_bulk_len = 10 };
        const char ok[] = "*1\r\n$10\r\n0123456789\r\n";
        const char bad[] = "*1\r\n$11\r\n";
        check_all_splits_opt(&o, ok, sizeof(ok) - 1, "(0123456789)EAGAIN:0");
        check_all_splits_opt(&o, bad, sizeof(bad) - 1, "ERR:Protocol error: invalid bulk length");
    }
    /* 512 MiB itself is allowed (and then waits for the data). */
    {
        char *t = drive("*1\r\n$536870912\r\n", 17, 17, 0);
        assert_string_equal(t, "EAGAIN:17");
        free(t);
    }
}

static void
test_unauthenticated_limits(void **state)
{
    struct drive_opts o = { .unauthenticated = true };
    const char mb10[] = "*10\r\n";
    const char mb11[] = "*11\r\n";
    const char b16384[] = "*1\r\n$16384\r\n";
    const char b16385[] = "*1\r\n$16385\r\n";
    const char bad_first[] = "*2147483648\r\n";

    (void)state;
    check_all_splits_opt(&o, mb10, sizeof(mb10) - 1, "EAGAIN:5");
    check_all_splits_opt(&o, mb11, sizeof(mb11) - 1,
                         "ERR:Protocol error: unauthenticated multibulk length");
    check_all_splits_opt(&o, b16384, sizeof(b16384) - 1, "EAGAIN:12");
    check_all_splits_opt(&o, b16385, sizeof(b16385) - 1,
                         "ERR:Protocol error: unauthenticated bulk length");
    /* Invalid beats unauthenticated, as in Redis. */
    check_all_splits_opt(&o, bad_first, sizeof(bad_first) - 1,
                         "ERR:Protocol error: invalid multibulk length");
}

/* Fill n bytes of c after prefix; returns a malloc'ed block. */
static char *
filled(const char *prefix, char c, size_t n, const char *suffix, size_t *outlen)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *s = xmalloc(pl + n + sl);
    memcpy(s, prefix, pl);
    memset(s + pl, c, n);
    memcpy(s + pl + n, suffix, sl);
    *outlen = pl + n + sl;
    return s;
}

static void
test_too_big_lines(void **state)
{
    size_t n;
    char *s, *t;

    (void)state;
    /* Count line: 65536 bytes without '\r' wait, 65537 fail. */
    s = filled("*", '1', 65535, "", &n);
    t = drive(s, n, n, 0);
    assert_string_equal(t, "EAGAIN:65536");
    free(t);
    free(s);
    s = filled("*", '1', 65536, "", &n);
    t = drive(s, n, n, 0);
    assert_string_equal(t, "ERR:Protocol error: too big mbulk count string");
    free(t);
    /* Same bytes arriving in pieces: same error once over the limit. */
    t = drive(s, n, 1000, 1000);
    assert_string_equal(t, "ERR:Protocol error: too big mbulk count string");
    free(t);
    free(s);
    /* Bulk count line: counted from the '$'. */
    s = filled("*1\r\n$", '1', 65535, "", &n);
    t = drive(s, n, n, 0);
    assert_string_equal(t, "EAGAIN:65540");
    free(t);
    free(s);
    s = filled("*1\r\n$", '1', 65536, "", &n);
    t = drive(s, n, 4096, 4096);
    assert_string_equal(t, "ERR:Protocol error: too big bulk count string");
    free(t);
    free(s);
    /* Inline. */
    s = filled("", 'A', 65536, "", &n);
    t = drive(s, n, n, 0);
    assert_string_equal(t, "EAGAIN:65536");
    free(t);
    free(s);
    s = filled("", 'A', 65537, "", &n);
    t = drive(s, n, 16384, 16384);
    assert_string_equal(t, "ERR:Protocol error: too big inline request");
    free(t);
    free(s);
    /* As in Redis, a longer inline request is fine if its newline is already
     * there when it is parsed. */
    s = filled("ECHO ", 'A', 70000, "\r\n", &n);
    t = drive(s, n, n, 0);
    assert_int_equal(strlen(t), strlen("(ECHO|)EAGAIN:0") + 70000);
    free(t);
    free(s);
    /* The inline limit is an option. */
    {
        struct drive_opts o = { .max_inline = 8 };
        const char a[] = "GET abcd";
        const char b[] = "GET abcde";
        const char c[] = "GET abcdefgh\n";
        check_all_splits_opt(&o, a, sizeof(a) - 1, "EAGAIN:8");
        check_all_splits_opt(&o, b, sizeof(b) - 1, "ERR:Protocol error: too big inline request");
        t = drive_opt(&o, c, sizeof(c) - 1, sizeof(c) - 1, 0);
        assert_string_equal(t, "(GET|abcdefgh)EAGAIN:0");
        free(t);
    }
}

static void
test_reset_clears_error(void **state)
{
    struct resp_parser p;
    struct proto_req req;
    size_t used;

    (void)state;
    resp_parser_init(&p);
    assert_int_equal(resp_parse(&p, "*x\r\n", 4, &req, &used), PROTO_EPROTO);
    assert_string_equal(resp_parser_error(&p), "Protocol error: invalid multibulk length");
    resp_parser_reset(&p);
    assert_string_equal(resp_parser_error(&p), "");
    assert_int_equal(resp_parse(&p, "PING\r\n", 6, &req, &used), PROTO_OK);
    assert_int_equal(req.argc, 1);
    assert_int_equal(used, 6);
    /* reset also drops a partial request. */
    assert_int_equal(resp_parse(&p, "*2\r\n$3\r\nGET\r\n", 13, &req, &used), PROTO_EAGAIN);
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, "*1\r\n$4\r\nPING\r\n", 14, &req, &used), PROTO_OK);
    assert_int_equal(req.argc, 1);
    assert_memory_equal(req.argv[0].ptr, "PING", 4);
    resp_parser_deinit(&p);
}

/* A caller that breaks the contract by passing fewer bytes than last time
 * gets the request parsed afresh, never an out-of-bounds read. */
static void
test_shorter_input_restarts(void **state)
{
    struct resp_parser p;
    struct proto_req req;
    size_t used;

    (void)state;
    resp_parser_init(&p);
    assert_int_equal(resp_parse(&p, "*2\r\n$3\r\nGET\r\n", 13, &req, &used), PROTO_EAGAIN);
    assert_int_equal(resp_parse(&p, "PING\r\n", 6, &req, &used), PROTO_OK);
    assert_int_equal(req.argc, 1);
    assert_int_equal(used, 6);
    resp_parser_deinit(&p);
}

/* ---- inline quoting, as redis-server 7.0.15 split these lines ----------------- */

struct inline_case {
    const char *line; /* after "RPUSH L " */
    size_t len;
    const char *expect;
};

#define IC(lit, exp) { lit, sizeof(lit) - 1, exp }

static const struct inline_case inline_cases[] = {
    IC("a b  c", "(RPUSH|L|a|b|c)"),
    IC("\ta\t\tb", "(RPUSH|L|a|b)"),
    IC("a\vb", "(RPUSH|L|a\\x0bb)"),
    IC("\va \fb", "(RPUSH|L|a|b)"),
    IC("\"a b\" c", "(RPUSH|L|a b|c)"),
    IC("\"a\\nb\\r\\t\\b\\a\\\\\\\"z\"", "(RPUSH|L|a\\x0ab\\x0d\\x09\\x08\\x07\\x5c\"z)"),
    IC("\"\\x41\\x4a\\xzz\\x4\"", "(RPUSH|L|AJxzzx4)"),
    IC("\"\\q\\0\"", "(RPUSH|L|q0)"),
    IC("'a\\'b\\n'", "(RPUSH|L|a'b\\x5cn)"),
    IC("'a\"b'", "(RPUSH|L|a\"b)"),
    IC("\"a\"b", "ERR:Protocol error: unbalanced quotes in request"),
    IC("'a'b", "ERR:Protocol error: unbalanced quotes in request"),
    IC("\"a\"\vb", "(RPUSH|L|a|b)"),
    IC("\"a\"\fb", "(RPUSH|L|a|b)"),
    IC("ab\"cd\"", "(RPUSH|L|abcd)"),
    IC("ab'cd' e", "(RPUSH|L|abcd|e)"),
    IC("\"unterminated", "ERR:Protocol error: unbalanced quotes in request"),
    IC("'unterminated", "ERR:Protocol error: unbalanced quotes in request"),
    IC("\"ends\\", "ERR:Protocol error: unbalanced quotes in request"),
    IC("\"\"", "(RPUSH|L|)"),
    IC("''", "(RPUSH|L|)"),
    IC("\"\" x", "(RPUSH|L||x)"),
    IC("a\"b c\"d", "ERR:Protocol error: unbalanced quotes in request"),
    IC("a\"b c\" d", "(RPUSH|L|ab c|d)"),
    IC("x\r y", "(RPUSH|L|x|y)"),
    IC("x\ry", "(RPUSH|L|x|y)"),
    IC("\"\\x\"", "(RPUSH|L|x)"),
    IC("\"\\xG1\"", "(RPUSH|L|xG1)"),
    IC("\"a\\", "ERR:Protocol error: unbalanced quotes in request"),
    IC("\"\\xAf\\xfF\"", "(RPUSH|L|\\xaf\\xff)"),
    IC("'\\\\'", "ERR:Protocol error: unbalanced quotes in request"),
    IC("'\\'", "ERR:Protocol error: unbalanced quotes in request"),
    IC("\"\\'\"", "(RPUSH|L|')"),
    IC("a\\nb", "(RPUSH|L|a\\x5cnb)"),
    IC("\"a\r\"", "(RPUSH|L|a\\x0d)"),
    IC("'a'\t\"b\"", "(RPUSH|L|a|b)"),
};

static void
test_inline_quoting_like_redis(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(inline_cases) / sizeof(inline_cases[0]); i++) {
        const struct inline_case *c = &inline_cases[i];
        size_t n = 8 + c->len + 2;
        char *in = xmalloc(n);
        struct buf want;

        memcpy(in, "RPUSH L ", 8);
        memcpy(in + 8, c->line, c->len);
        memcpy(in + 8 + c->len, "\r\n", 2);
        buf_init(&want);
        buf_appendstr(&want, c->expect);
        if (c->expect[0] == '(') {
            buf_appendstr(&want, "EAGAIN:0");
        }
        buf_appendc(&want, '\0');
        check_all_splits(in, n, want.data);
        buf_deinit(&want);
        free(in);
    }
}

/* Plain tokens point into the input, quoted ones into the parser. */
static void
test_inline_pointers(void **state)
{
    struct resp_parser p;
    struct proto_req req;
    size_t used;
    const char in[] = "SET key \"v a l\" tail\r\n";

    (void)state;
    resp_parser_init(&p);
    assert_int_equal(resp_parse(&p, in, sizeof(in) - 1, &req, &used), PROTO_OK);
    assert_int_equal(used, sizeof(in) - 1);
    assert_int_equal(req.argc, 4);
    assert_ptr_equal(req.argv[0].ptr, in);
    assert_ptr_equal(req.argv[1].ptr, in + 4);
    assert_true(req.argv[2].ptr < in || req.argv[2].ptr >= in + sizeof(in));
    assert_memory_equal(req.argv[2].ptr, "v a l", 5);
    assert_ptr_equal(req.argv[3].ptr, in + 16);
    resp_parser_deinit(&p);
}

/* ---- storage and performance ---------------------------------------------------- */

static void
test_many_args_and_reuse(void **state)
{
    struct resp_parser p;
    struct proto_req req;
    size_t used;
    struct buf in;
    const int n = 5000;

    (void)state;
    buf_init(&in);
    buf_appendf(&in, "*%d\r\n", n);
    for (int i = 0; i < n; i++) {
        char tmp[16];
        int l = snprintf(tmp, sizeof(tmp), "%d", i);
        buf_appendf(&in, "$%d\r\n%s\r\n", l, tmp);
    }
    resp_parser_init(&p);
    assert_int_equal(resp_parse(&p, in.data, in.len, &req, &used), PROTO_OK);
    assert_int_equal(used, in.len);
    assert_int_equal(req.argc, n);
    assert_memory_equal(req.argv[4999].ptr, "4999", 4);
    assert_ptr_equal(req.argv[0].ptr, in.data + 11);
    /* The next small request still works (and big storage was released). */
    assert_int_equal(resp_parse(&p, "*1\r\n$4\r\nPING\r\n", 14, &req, &used), PROTO_OK);
    assert_true(p.argv_cap <= 4096);
    /* Steady state: the same storage is reused. */
    {
        struct proto_arg *before = p.argv;
        for (int i = 0; i < 100; i++) {
            assert_int_equal(resp_parse(&p, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 20, &req, &used),
                             PROTO_OK);
        }
        assert_ptr_equal(p.argv, before);
    }
    resp_parser_deinit(&p);
    buf_deinit(&in);
}

/* A hostile count does not make the parser allocate for it. */
static void
test_huge_count_small_reservation(void **state)
{
    struct resp_parser p;
    struct proto_req req;
    size_t used;

    (void)state;
    resp_parser_init(&p);
    assert_int_equal(resp_parse(&p, "*2147483647\r\n$1\r\na\r\n", 20, &req, &used), PROTO_EAGAIN);
    assert_true(p.argv_cap <= 1024);
    resp_parser_deinit(&p);
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 100 MB bulk arriving in 64 KB reads, buffer reserved once from the hint,
 * as a connection would: must be linear (well under a second even with ASan;
 * rescanning would be ~80 GB of work). */
static void
test_big_bulk_linear(void **state)
{
    const size_t big = 100u * 1024 * 1024;
    const size_t chunk = 64 * 1024;
    struct resp_parser p;
    struct proto_req req;
    size_t used = 0, have = 0, total, cap;
    char head[64];
    int hl = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%zu\r\n", big);
    char *stream, *buf;
    int rc = PROTO_EAGAIN;
    double t0;

    (void)state;
    total = (size_t)hl + big + 2;
    stream = xmalloc(total);
    memcpy(stream, head, (size_t)hl);
    memset(stream + hl, 'v', big);
    memcpy(stream + hl + big, "\r\n", 2);

    resp_parser_init(&p);
    cap = chunk;
    buf = xmalloc(cap);
    t0 = now_s();
    while (have < total) {
        size_t add = total - have < chunk ? total - have : chunk;
        size_t need;
        if (have + add > cap) {
            need = resp_parser_need(&p);
            cap = need > have + add ? need : (have + add) * 2;
            buf = xrealloc(buf, cap);
        }
        memcpy(buf + have, stream + have, add);
        have += add;
        rc = resp_parse(&p, buf, have, &req, &used);
        if (rc != PROTO_OK) {
            assert_int_equal(rc, PROTO_EAGAIN);
            assert_int_equal(used, 0);
            if (have > (size_t)hl) {
                assert_int_equal(resp_parser_need(&p), total);
            }
        }
    }
    assert_int_equal(rc, PROTO_OK);
    assert_true(now_s() - t0 < 2.0);
    assert_int_equal(used, total);
    assert_int_equal(req.argc, 3);
    assert_int_equal(req.argv[2].len, big);
    assert_ptr_equal(req.argv[2].ptr, buf + hl);
    /* The buffer was grown once to the hinted size, not doubled repeatedly. */
    assert_int_equal(cap, total);
    free(buf);
    free(stream);
    resp_parser_deinit(&p);
}

/* A 60 KB inline request and a 60 KB count line fed one byte at a time:
 * each byte is searched once (quadratic would be 1.8e9 byte visits). */
static void
test_trickle_linear(void **state)
{
    const size_t n = 60000;
    struct resp_parser p;
    struct proto_req req;
    size_t used;
    char *s = xmalloc(n + 2);
    double t0;

    (void)state;
    memset(s, 'a', n);
    memcpy(s + n, "\r\n", 2);
    resp_parser_init(&p);
    t0 = now_s();
    for (size_t have = 1; have <= n + 1; have++) {
        assert_int_equal(resp_parse(&p, s, have, &req, &used), PROTO_EAGAIN);
    }
    assert_int_equal(resp_parse(&p, s, n + 2, &req, &used), PROTO_OK);
    assert_int_equal(req.argc, 1);
    assert_int_equal(req.argv[0].len, n);
    assert_true(now_s() - t0 < 1.0);
    resp_parser_deinit(&p);
    free(s);
}

/*
 * The no-rescan contract, observed directly: bytes already searched for a
 * terminator are not searched again. To make that visible, the second call
 * breaks the contract on purpose by changing bytes the first call saw: a
 * parser that rescans finds the newly planted '\n' and stops early.
 */
static void
test_no_rescan(void **state)
{
    struct resp_parser p;
    struct proto_req req;
    size_t used;

    (void)state;
    resp_parser_init(&p);
    assert_int_equal(resp_parse(&p, "GET aaaa", 8, &req, &used), PROTO_EAGAIN);
    assert_int_equal(resp_parse(&p, "GET\naaa b\n", 10, &req, &used), PROTO_OK);
    assert_int_equal(used, 10);
    assert_int_equal(req.argc, 3);

    /* Count and bulk-count lines remember how far they were searched. */
    assert_int_equal(resp_parse(&p, "*12", 3, &req, &used), PROTO_EAGAIN);
    assert_int_equal(p.scan, 3);
    assert_int_equal(resp_parse(&p, "*12\r", 4, &req, &used), PROTO_EAGAIN);
    assert_int_equal(p.scan, 3);
    assert_int_equal(resp_parse(&p, "*12\r\n$10", 8, &req, &used), PROTO_EAGAIN);
    assert_int_equal(p.scan, 8);
    assert_int_equal(resp_parse(&p, "*12\r\n$10\r\n0123", 14, &req, &used), PROTO_EAGAIN);
    assert_int_equal(resp_parser_need(&p), 22);
    resp_parser_deinit(&p);
}

/*
 * The whole-request fast path (resp_parse_whole) must agree with the general
 * state machine on every input. Fed one byte at a time, a request never
 * starts with 4 bytes present, so only the general path runs; fed whole,
 * the fast path takes every request it can. Random inputs are built from
 * fragments that sit on the fast path's edges: counts and lengths of 0, with
 * leading zeros, signs, 18 to 20 digits, lengths that do not match the data,
 * and every auth / bulk-limit combination.
 */
static void
test_fast_path_matches_general(void **state)
{
    static const char *const counts[] = {"1", "2", "3", "0", "01", "-1", "+2", "10", "11",
                                         "1024", "1025", "", "2 ", "999999999999999999",
                                         "9999999999999999999", "99999999999999999999"};
    static const char *const lens[] = {"0", "1", "3", "00", "03", "-1", "", "16384", "16385",
                                       "5x", "100000000000000000", "1000000000000000000"};
    static const char *const datas[] = {"", "a", "abc", "hello", "\r\n", "x\r\ny", "abcdefgh"};
    unsigned seed = 12345;

    (void)state;
    for (int iter = 0; iter < 3000; iter++) {
        struct buf in;
        struct drive_opts o = {0};
        int nreq;

        buf_init(&in);
        seed = seed * 1103515245u + 12345u;
        o.unauthenticated = (seed >> 16) & 1;
        o.max_bulk_len = ((seed >> 17) & 1) ? 4 : 0;
        nreq = 1 + (int)((seed >> 18) % 3);
        for (int r = 0; r < nreq; r++) {
            int nargs;
            seed = seed * 1103515245u + 12345u;
            if ((seed >> 16) % 4 == 0) {
                const char *cs = counts[(seed >> 8) % (sizeof(counts) / sizeof(counts[0]))];
                buf_appendf(&in, "*%s\r\n", cs);
                nargs = atoi(cs) > 0 && atoi(cs) < 4 ? atoi(cs) : 2;
            } else {
                nargs = 1 + (int)((seed >> 20) % 3);
                buf_appendf(&in, "*%d\r\n", nargs);
            }
            for (int a = 0; a < nargs; a++) {
                const char *d;
                seed = seed * 1103515245u + 12345u;
                d = datas[(seed >> 8) % (sizeof(datas) / sizeof(datas[0]))];
                if ((seed >> 16) % 5 == 0) {
                    buf_appendf(&in, "$%s\r\n%s\r\n",
                                lens[(seed >> 20) % (sizeof(lens) / sizeof(lens[0]))], d);
                } else if ((seed >> 16) % 7 == 1) {
                    buf_appendf(&in, "$%zu\r\n%sXY", strlen(d), d); /* unchecked CRLF */
                } else if ((seed >> 16) % 11 == 2) {
                    buf_appendf(&in, "%zu\r\n%s\r\n", strlen(d), d); /* no '$' */
                } else {
                    buf_appendf(&in, "$%zu\r\n%s\r\n", strlen(d), d);
                }
            }
        }
        char *whole = drive_opt(&o, in.data, in.len, in.len, 0);
        char *bytewise = drive_opt(&o, in.data, in.len, 1, 1);
        if (strcmp(whole, bytewise) != 0) {
            print_error("input %.*s: whole %s, byte by byte %s\n", (int)in.len, in.data, whole,
                        bytewise);
        }
        assert_string_equal(whole, bytewise);
        free(whole);
        free(bytewise);
        buf_deinit(&in);
    }
}

/* resp_peek_keys: the keys of the whole requests in front, stopping at a
 * partial one, an inline one or one without a key. */
static void
test_peek_keys(void **state)
{
    (void)state;
    const char *key[4];
    size_t klen[4];
    const char in[] = "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                      "*3\r\n$3\r\nSET\r\n$2\r\nbc\r\n$1\r\nv\r\n"
                      "*2\r\n$3\r\nGET\r\n$3\r\nde";
    assert_int_equal(resp_peek_keys(in, strlen(in), key, klen, 4), 2);
    assert_int_equal(klen[0], 1);
    assert_memory_equal(key[0], "a", 1);
    assert_int_equal(klen[1], 2);
    assert_memory_equal(key[1], "bc", 2);
    assert_int_equal(resp_peek_keys(in, strlen(in), key, klen, 1), 1);
    const char *stops[] = {"*1\r\n$4\r\nPING\r\n", "GET a\r\n", "*2\r\n$-1\r\n", ""};
    for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
        assert_int_equal(resp_peek_keys(stops[i], strlen(stops[i]), key, klen, 4), 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk_forms),
        cmocka_unit_test(test_empty_requests_skipped),
        cmocka_unit_test(test_empty_consumed_on_eagain),
        cmocka_unit_test(test_inline_forms),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_redis_quirks),
        cmocka_unit_test(test_error_texts),
        cmocka_unit_test(test_unauthenticated_limits),
        cmocka_unit_test(test_too_big_lines),
        cmocka_unit_test(test_reset_clears_error),
        cmocka_unit_test(test_shorter_input_restarts),
        cmocka_unit_test(test_inline_quoting_like_redis),
        cmocka_unit_test(test_inline_pointers),
        cmocka_unit_test(test_many_args_and_reuse),
        cmocka_unit_test(test_huge_count_small_reservation),
        cmocka_unit_test(test_big_bulk_linear),
        cmocka_unit_test(test_trickle_linear),
        cmocka_unit_test(test_no_rescan),
        cmocka_unit_test(test_peek_keys),
        cmocka_unit_test(test_fast_path_matches_general),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
