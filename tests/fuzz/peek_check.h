/*
 * peek_check.h -- the fuzz targets' check of a protocol's look-ahead
 * (resp_peek_keys, text_peek_keys) against its parser, for fuzz_resp.c and
 * fuzz_text.c.
 *
 * The peek must stay inside the input, report at most `max` keys, and agree
 * with the parser on every request the parser accepts: parsing the input
 * request by request, the i-th accepted request's argv[1] is the i-th key
 * peeked. A peek may run ahead of what the parser accepts (it is a hint);
 * it must never disagree.
 */
#ifndef CRAB_FUZZ_PEEK_CHECK_H
#define CRAB_FUZZ_PEEK_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "../../src/proto/proto.h"

typedef int (*peek_keys_fn)(const char *buf, size_t len, const char **key, size_t *klen,
                            int max);
/* One request of buf[0..len) by the caller's parser (ctx): PROTO_OK and
 * *used, or anything else to stop. */
typedef int (*parse_one_fn)(void *ctx, const char *buf, size_t len, struct proto_req *req,
                            size_t *used);

static void
peek_check(const char *buf, size_t len, peek_keys_fn peek, parse_one_fn parse, void *ctx,
           int min_klen)
{
    enum { MAX = 32 };
    const char *key[MAX];
    size_t klen[MAX];
    int n = peek(buf, len, key, klen, MAX);
    if (n < 0 || n > MAX) {
        abort();
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        struct proto_req req;
        size_t used = 0;
        if (key[i] < buf || klen[i] < (size_t)min_klen || key[i] + klen[i] > buf + len) {
            abort();
        }
        if (parse(ctx, buf + off, len - off, &req, &used) != PROTO_OK) {
            break; /* a hint may run ahead of what the parser accepts */
        }
        if (req.argc < 2 || req.argv[1].len != klen[i] ||
            memcmp(req.argv[1].ptr, key[i], klen[i]) != 0) {
            abort();
        }
        off += used;
    }
}

#endif
