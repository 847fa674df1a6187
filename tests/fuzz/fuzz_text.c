/*
 * fuzz_text.c -- libFuzzer target for the native text protocol parser.
 *
 * The first input byte picks max_line (small values, or the 1 MiB default);
 * the rest is the byte stream a client sends. It is parsed the way a
 * connection does and every result is checked:
 *   - *consumed <= the bytes given, and is 0 unless PROTO_OK or PROTO_EREQ;
 *     such a line ends in '\n' and is at most max_line + 2 bytes; plain
 *     tokens are non-empty, lie inside the line and contain no space, tab
 *     or '\n'; quoted ones lie in the parser's storage; a PROTO_EREQ's
 *     text is an "unbalanced quotes" one;
 *   - quoting round trip: the tokens of every accepted line, each written
 *     as a reply would (text_needs_quote / text_quote), parse back to the
 *     same tokens;
 *   - the error is "line too long" and sticky;
 *   - feeding the same stream whole, one byte at a time or in pseudo-random
 *     pieces, moving the unconsumed bytes to a new block before every call,
 *     gives the same lines and the same ending. The line limit is decided
 *     independently of how the bytes arrive, so this holds for every limit;
 *   - text_peek_keys (the prefetch look-ahead) reads nothing outside the
 *     input (an exactly-sized copy: ASan) and, for every line it found that
 *     text_parse then accepts, found that line's argv[1].
 *
 * text.c is #included so that libFuzzer's coverage instrumentation covers it
 * (the crabcore library is built without it).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/proto/text.c"
#include "peek_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
    char *p;
    size_t len, cap;
};

static void
out_put(struct out *o, const void *src, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2 + 64;
        o->p = xrealloc(o->p, o->cap);
    }
    memcpy(o->p + o->len, src, n);
    o->len += n;
}

static void
out_size(struct out *o, size_t v)
{
    out_put(o, &v, sizeof(v));
}

static uint32_t
next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* The tokens of req written as replies write values (quoted when
 * text_needs_quote), space-separated, parse back to the same tokens. */
static void
check_round_trip(const struct proto_req *req)
{
    struct out line = { 0 };
    for (int i = 0; i < req->argc; i++) {
        const struct proto_arg *a = &req->argv[i];
        if (i > 0) {
            out_put(&line, " ", 1);
        }
        if (text_needs_quote(a->ptr, a->len)) {
            char *q = xmalloc(text_quoted_len(a->ptr, a->len));
            size_t n = text_quote(a->ptr, a->len, q);
            if (n != text_quoted_len(a->ptr, a->len)) {
                abort();
            }
            out_put(&line, q, n);
            free(q);
        } else {
            out_put(&line, a->ptr, a->len);
        }
    }
    out_put(&line, "\r\n", 2);
    struct text_parser p;
    struct proto_req back;
    size_t used;
    text_parser_init(&p);
    p.max_line = line.len;
    if (text_parse(&p, line.p, line.len, &back, &used) != PROTO_OK || used != line.len ||
        back.argc != req->argc) {
        abort();
    }
    for (int i = 0; i < req->argc; i++) {
        if (back.argv[i].len != req->argv[i].len ||
            memcmp(back.argv[i].ptr, req->argv[i].ptr, req->argv[i].len) != 0) {
            abort();
        }
    }
    text_parser_deinit(&p);
    free(line.p);
}

/* mode 0: whole; 1: one byte at a time; else pseudo-random pieces. */
static void
drive(size_t max_line, const uint8_t *in, size_t len, uint32_t mode, struct out *o)
{
    struct text_parser p;
    char *cur = xmalloc(1);
    size_t have = 0, delivered = 0;
    uint32_t seed = mode | 1;

    text_parser_init(&p);
    p.max_line = max_line;
    for (;;) {
        struct proto_req req;
        size_t used = (size_t)-1;
        int rc = text_parse(&p, cur, have, &req, &used);
        size_t add = 0, keep;
        char *next;

        if (used > have) {
            abort();
        }
        if (rc == PROTO_EREQ) {
            if (used == 0 || cur[used - 1] != '\n' || used > max_line + 2 ||
                strncmp(text_parser_error(&p), "unbalanced quotes", 17) != 0) {
                abort();
            }
            out_put(o, "Q", 1);
            out_size(o, used);
        } else if (rc == PROTO_OK) {
            if (used == 0 || cur[used - 1] != '\n' || used > max_line + 2 || req.argc < 0) {
                abort();
            }
            out_put(o, "O", 1);
            out_size(o, (size_t)req.argc);
            for (int i = 0; i < req.argc; i++) {
                const struct proto_arg *a = &req.argv[i];
                if (p.store != NULL && a->ptr >= p.store && a->ptr + a->len <= p.store + p.store_cap) {
                    /* quoted: any bytes */
                } else if (a->len == 0 || a->ptr < cur || a->len >= used ||
                           a->ptr + a->len > cur + used - 1) {
                    abort();
                } else if (memchr(a->ptr, ' ', a->len) || memchr(a->ptr, '\t', a->len) ||
                           memchr(a->ptr, '\n', a->len)) {
                    abort();
                }
                out_size(o, a->len);
                out_put(o, a->ptr, a->len);
            }
            if (mode == 0) {
                check_round_trip(&req);
            }
        } else if (rc == PROTO_EPROTO) {
            if (used != 0 || strcmp(text_parser_error(&p), "line too long") != 0) {
                abort();
            }
            /* Only when the line really is too long. */
            if (have <= max_line) {
                abort();
            }
            out_put(o, "E", 1);
            if (text_parse(&p, cur, have, &req, &used) != PROTO_EPROTO || used != 0) {
                abort();
            }
            break;
        } else if (rc == PROTO_EAGAIN) {
            if (used != 0 || memchr(cur, '\n', have) != NULL) {
                abort();
            }
            if (delivered == len) {
                out_put(o, "A", 1);
                out_size(o, have);
                break;
            }
            add = len - delivered;
            if (mode == 1) {
                add = 1;
            } else if (mode > 1) {
                size_t r = next_rand(&seed) % 64 + 1;
                add = r < add ? r : add;
            }
        } else {
            abort();
        }
        keep = have - used;
        next = xmalloc(keep + add + 1);
        memcpy(next, cur + used, keep);
        memcpy(next + keep, in + delivered, add);
        free(cur);
        cur = next;
        have = keep + add;
        delivered += add;
    }
    free(cur);
    text_parser_deinit(&p);
}

static int
parse_one(void *ctx, const char *buf, size_t len, struct proto_req *req, size_t *used)
{
    return text_parse(ctx, buf, len, req, used);
}

/* text_peek_keys against text_parse (peek_check.h), on a copy of the input
 * of exactly its size; a peeked key is never empty. */
static void
check_peek(const uint8_t *in, size_t len, size_t max_line)
{
    char *buf = xmalloc(len ? len : 1);
    memcpy(buf, in, len);
    struct text_parser p;
    text_parser_init(&p);
    p.max_line = max_line;
    peek_check(buf, len, text_peek_keys, parse_one, &p, 1);
    text_parser_deinit(&p);
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct out whole = { 0 }, other = { 0 };
    uint32_t modes[3] = { 1, 2, 0 };
    size_t max_line;

    if (size < 1) {
        return 0;
    }
    max_line = data[0] < 200 ? (size_t)data[0] : TEXT_DEFAULT_MAX_LINE;
    data++;
    size--;
    check_peek(data, size, max_line);

    drive(max_line, data, size, 0, &whole);
    modes[2] = 3 + (uint32_t)size * 2654435761u;
    for (int m = 0; m < 3; m++) {
        if (modes[m] == 1 && size > 256) {
            continue;
        }
        other.len = 0;
        drive(max_line, data, size, modes[m], &other);
        if (other.len != whole.len || memcmp(other.p, whole.p, whole.len) != 0) {
            fprintf(stderr, "transcripts differ in mode %u\n", modes[m]);
            abort();
        }
    }
    free(whole.p);
    free(other.p);
    return 0;
}
