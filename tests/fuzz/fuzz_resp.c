/*
 * fuzz_resp.c -- libFuzzer target for the RESP / inline request parser.
 *
 * The first input byte picks options (unauthenticated or not, a small
 * max_bulk_len or the default); the rest is the byte stream a client sends.
 * It is parsed the way a connection does, and every result is checked:
 *   - *consumed <= the bytes given; on PROTO_OK argc >= 1 and every argument
 *     lies inside the consumed bytes or inside the parser's scratch storage;
 *   - on PROTO_EAGAIN resp_parser_need() is 0 or more than what is there;
 *   - on PROTO_EPROTO the text is one of Redis's "Protocol error: ..." and
 *     the error is sticky;
 *   - feeding the same stream whole, one byte at a time or in pseudo-random
 *     pieces, moving the unconsumed bytes to a new block before every call
 *     (ASan catches a parser that kept a stale pointer), gives the same
 *     sequence of requests and the same ending.
 *   - resp_peek_keys (the prefetch look-ahead) reads nothing outside the input
 *     (an exactly-sized copy: ASan) and, for every request it found that
 *     resp_parse then accepts, found that request's argv[1].
 * The "too big" limits depend, as in Redis, on how much has arrived when no
 * terminator is in sight, so the equivalence check runs on inputs shorter
 * than those limits; a second pass with a tiny max_inline checks only the
 * per-call invariants.
 *
 * resp.c is #included so that libFuzzer's coverage instrumentation covers it
 * (the crabcore library is built without it).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/proto/resp.c"
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

struct opts {
    bool unauth;
    long long max_bulk;
    size_t max_inline;
};

/* Cheap deterministic piece sizes. */
static uint32_t
next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void
check_error_text(const char *e)
{
    static const char *const known[] = {
        "Protocol error: invalid multibulk length",
        "Protocol error: invalid bulk length",
        "Protocol error: too big mbulk count string",
        "Protocol error: too big bulk count string",
        "Protocol error: too big inline request",
        "Protocol error: unbalanced quotes in request",
        "Protocol error: unauthenticated multibulk length",
        "Protocol error: unauthenticated bulk length",
    };
    if (strncmp(e, "Protocol error: expected '$', got '", 35) == 0) {
        if (strlen(e) != 37 || e[36] != '\'') {
            abort();
        }
        return;
    }
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(e, known[i]) == 0) {
            return;
        }
    }
    abort();
}

/*
 * Feed in[0..len) in pieces: mode 0 whole, 1 one byte at a time, otherwise
 * pseudo-random piece sizes from seed `mode`. Writes the transcript to o.
 */
static void
drive(const struct opts *op, const uint8_t *in, size_t len, uint32_t mode, struct out *o)
{
    struct resp_parser p;
    char *cur = xmalloc(1);
    size_t have = 0, delivered = 0;
    uint32_t seed = mode | 1;

    resp_parser_init(&p);
    p.unauthenticated = op->unauth;
    p.max_bulk_len = op->max_bulk;
    p.max_inline = op->max_inline;
    for (;;) {
        struct proto_req req;
        size_t used = (size_t)-1;
        int rc = resp_parse(&p, cur, have, &req, &used);
        char *next;

        if (used > have) {
            abort();
        }
        if (rc == PROTO_OK) {
            if (req.argc < 1 || used == 0) {
                abort();
            }
            out_put(o, "O", 1);
            out_size(o, (size_t)req.argc);
            for (int i = 0; i < req.argc; i++) {
                const struct proto_arg *a = &req.argv[i];
                bool in_buf = a->ptr >= cur && a->len <= used &&
                              a->ptr + a->len <= cur + used;
                bool in_scratch = p.scratch != NULL && a->ptr >= p.scratch &&
                                  a->len <= p.scratch_cap &&
                                  a->ptr + a->len <= p.scratch + p.scratch_cap;
                if (!in_buf && !in_scratch) {
                    abort();
                }
                out_size(o, a->len);
                out_put(o, a->ptr, a->len);
            }
        } else if (rc == PROTO_EPROTO) {
            const char *e = resp_parser_error(&p);
            check_error_text(e);
            out_put(o, "E", 1);
            out_put(o, e, strlen(e));
            if (resp_parse(&p, cur, have, &req, &used) != PROTO_EPROTO || used != 0) {
                abort();
            }
            break;
        } else if (rc == PROTO_EAGAIN) {
            size_t need = resp_parser_need(&p);
            if (need != 0 && need <= have - used) {
                abort();
            }
            if (delivered == len) {
                out_put(o, "A", 1);
                out_size(o, have - used);
                break;
            }
        } else {
            abort();
        }
        /* Drop what was consumed; on EAGAIN add the next piece. Always into a
         * new block, so stale pointers into the old one are caught. */
        {
            size_t add = 0;
            size_t keep = have - used;
            if (rc == PROTO_EAGAIN) {
                add = len - delivered;
                if (mode == 1) {
                    add = 1;
                } else if (mode > 1) {
                    size_t r = next_rand(&seed) % 64 + 1;
                    add = r < add ? r : add;
                }
            }
            next = xmalloc(keep + add + 1);
            memcpy(next, cur + used, keep);
            memcpy(next + keep, in + delivered, add);
            free(cur);
            cur = next;
            have = keep + add;
            delivered += add;
        }
    }
    free(cur);
    resp_parser_deinit(&p);
}

static int
parse_one(void *ctx, const char *buf, size_t len, struct proto_req *req, size_t *used)
{
    return resp_parse(ctx, buf, len, req, used);
}

/* resp_peek_keys against resp_parse (peek_check.h), on a copy of the input
 * of exactly its size (so that reading past it is caught). */
static void
check_peek(const uint8_t *in, size_t len)
{
    char *buf = xmalloc(len ? len : 1);
    memcpy(buf, in, len);
    struct resp_parser p;
    resp_parser_init(&p);
    peek_check(buf, len, resp_peek_keys, parse_one, &p, 0);
    resp_parser_deinit(&p);
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct opts op;
    struct out whole = { 0 }, other = { 0 };
    uint32_t modes[3] = { 1, 2, 0 };

    if (size < 1) {
        return 0;
    }
    op.unauth = data[0] & 1;
    op.max_bulk = (data[0] & 2) ? (long long)(data[0] >> 2) : RESP_DEFAULT_MAX_BULK_LEN;
    op.max_inline = RESP_DEFAULT_MAX_INLINE;
    data++;
    size--;
    check_peek(data, size);

    if (size < RESP_DEFAULT_MAX_INLINE) {
        drive(&op, data, size, 0, &whole);
        modes[2] = 3 + (uint32_t)size * 2654435761u;
        for (int m = 0; m < 3; m++) {
            if (modes[m] == 1 && size > 256) {
                continue; /* quadratic copying (a block per byte); random pieces cover it */
            }
            other.len = 0;
            drive(&op, data, size, modes[m], &other);
            if (other.len != whole.len || memcmp(other.p, whole.p, whole.len) != 0) {
                fprintf(stderr, "transcripts differ in mode %u\n", modes[m]);
                abort();
            }
        }
    }
    /* Tiny inline/count limit: per-call invariants only. */
    op.max_inline = 16;
    other.len = 0;
    drive(&op, data, size, 5, &other);

    free(whole.p);
    free(other.p);
    return 0;
}
