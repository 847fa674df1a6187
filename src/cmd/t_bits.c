/*
 * t_bits.c -- SETBIT, GETBIT, BITCOUNT and LCS on string values.
 *
 * Argument parsing order and error texts follow Redis 7.0 (bitops.c and
 * t_string.c's lcsCommand). Two orders matter for byte-exact replies:
 * SETBIT/GETBIT parse the offset before looking the key up, while BITCOUNT
 * looks the key up first, so a missing key answers 0 even with bad
 * arguments.
 *
 * SETBIT changes a bit in place when the value is long enough; otherwise it
 * builds a longer, zero-padded item that keeps the expiry and shard_put()s
 * it. LCS copies both values out under the shard locks, then runs the
 * quadratic dynamic program with no lock held.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "cmd/keys.h"
#include "cmd/pubsub.h"
#include "util/clock.h"
#include "util/mem.h"

#define ERR_BIT_OFFSET "ERR bit offset is not an integer or out of range"
#define ERR_BIT_VALUE "ERR bit is not an integer or out of range"

/* Redis's getBitOffsetFromArgument (no #N form). */
static bool
bit_offset(struct client *c, const struct proto_arg *a, uint64_t *off)
{
    long long v;
    if (!arg_to_ll(a, &v) || v < 0 || (v >> 3) >= arg_max_bulk()) {
        reply_error(&c->r, ERR_BIT_OFFSET);
        return false;
    }
    *off = (uint64_t)v;
    return true;
}

void
cmd_setbit(struct client *c, int argc, struct proto_arg *argv)
{
    uint64_t off;
    long long on;
    if (!bit_offset(c, &argv[2], &off)) {
        return;
    }
    if (!arg_to_ll(&argv[3], &on) || (on & ~1ll)) {
        reply_error(&c->r, ERR_BIT_VALUE);
        return;
    }
    size_t byte = (size_t)(off >> 3);
    unsigned bit = 7 - (unsigned)(off & 7);
    int64_t now = cmd_time_ms();

    struct shard *sh = key_lock(&argv[1]);
    struct item *it = key_write(sh, &argv[1], now);
    bool dirty = false;
    if (it == NULL || item_vlen(it) <= byte) {
        /* Create or grow: a new zero-padded item, keeping the expiry. */
        struct item *nit = shard_new_item(sh, argv[1].ptr, argv[1].len, byte + 1,
                                          it ? item_expire(it) : 0);
        size_t keep = it ? item_vlen(it) : 0;
        if (keep) {
            memcpy(item_val(nit), item_cval(it), keep);
        }
        memset(item_val(nit) + keep, 0, byte + 1 - keep);
        shard_put(sh, nit);
        it = nit;
        dirty = true;
    }
    unsigned char *p = (unsigned char *)item_val(it) + byte;
    int old = (*p >> bit) & 1;
    if (dirty || old != on) {
        *p = (unsigned char)((*p & ~(1u << bit)) | ((unsigned)on << bit));
        prop_set(c, it);
        notify_key(c, NOTIFY_STRING, "setbit", argv[1].ptr, argv[1].len);
    }
    shard_unlock(sh);
    reply_int(&c->r, old);
}

void
cmd_getbit(struct client *c, int argc, struct proto_arg *argv)
{
    uint64_t off;
    if (!bit_offset(c, &argv[2], &off)) {
        return;
    }
    size_t byte = (size_t)(off >> 3);
    unsigned bit = 7 - (unsigned)(off & 7);
    struct shard *sh = key_lock(&argv[1]);
    struct item *it = key_read(sh, &argv[1], cmd_time_ms());
    int v = 0;
    if (it && byte < item_vlen(it)) {
        v = ((unsigned char)item_cval(it)[byte] >> bit) & 1;
    }
    shard_unlock(sh);
    reply_int(&c->r, v);
}

static long long
popcount(const unsigned char *p, size_t n)
{
    long long bits = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        bits += __builtin_popcountll(w);
    }
    for (; i < n; i++) {
        bits += __builtin_popcount(p[i]);
    }
    return bits;
}

/* BITCOUNT on a value of len bytes. Returns NULL and sets *count, or the
 * error text to reply. */
static const char *
bitcount_value(const unsigned char *p, long long len, int argc, struct proto_arg *argv,
               long long *count)
{
    long long start, end;
    unsigned char first_mask = 0, last_mask = 0;
    *count = 0;
    if (argc == 4 || argc == 5) {
        long long total = len;
        bool isbit = false;
        if (!arg_to_ll(&argv[2], &start) || !arg_to_ll(&argv[3], &end)) {
            return ERR_NOT_INT;
        }
        if (start < 0 && end < 0 && start > end) {
            return NULL;
        }
        if (argc == 5) {
            if (arg_opt_is(&argv[4], "bit")) {
                isbit = true;
            } else if (!arg_opt_is(&argv[4], "byte")) {
                return ERR_SYNTAX;
            }
        }
        if (isbit) {
            total <<= 3;
        }
        if (start < 0) {
            start += total;
        }
        if (end < 0) {
            end += total;
        }
        if (start < 0) {
            start = 0;
        }
        if (end < 0) {
            end = 0;
        }
        if (end >= total) {
            end = total - 1;
        }
        if (isbit && start <= end) {
            /* Bits of the edge bytes outside the range, to subtract. */
            first_mask = (unsigned char)(~((1u << (8 - (start & 7))) - 1) & 0xff);
            last_mask = (unsigned char)((1u << (7 - (end & 7))) - 1);
            start >>= 3;
            end >>= 3;
        }
    } else if (argc == 2) {
        start = 0;
        end = len - 1;
    } else {
        return ERR_SYNTAX;
    }
    if (start > end) {
        return NULL;
    }
    *count = popcount(p + start, (size_t)(end - start + 1));
    if (first_mask) {
        *count -= __builtin_popcount(p[start] & first_mask);
    }
    if (last_mask) {
        *count -= __builtin_popcount(p[end] & last_mask);
    }
    return NULL;
}

void
cmd_bitcount(struct client *c, int argc, struct proto_arg *argv)
{
    struct shard *sh = key_lock(&argv[1]);
    struct item *it = key_read(sh, &argv[1], cmd_time_ms());
    long long count = 0;
    const char *err = NULL;
    if (it) {
        err = bitcount_value((const unsigned char *)item_cval(it), item_vlen(it), argc, argv,
                             &count);
    }
    shard_unlock(sh);
    if (err) {
        reply_error(&c->r, err);
    } else {
        reply_int(&c->r, count);
    }
}

/* ---- LCS ---------------------------------------------------------------------- */

struct lcs_opts {
    bool len, idx, withmatchlen;
    long long minmatchlen;
};

/* Copy a value out (an empty string for a missing key). */
static char *
value_copy(struct shard *sh, const struct proto_arg *k, int64_t now, uint32_t *len)
{
    struct item *it = key_read(sh, k, now);
    *len = it ? item_vlen(it) : 0;
    char *p = xmalloc(*len + 1);
    if (*len) {
        memcpy(p, item_cval(it), *len);
    }
    return p;
}

static bool
lcs_parse(struct client *c, int argc, struct proto_arg *argv, struct lcs_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int j = 3; j < argc; j++) {
        bool more = j + 1 < argc;
        if (arg_opt_is(&argv[j], "idx")) {
            o->idx = true;
        } else if (arg_opt_is(&argv[j], "len")) {
            o->len = true;
        } else if (arg_opt_is(&argv[j], "withmatchlen")) {
            o->withmatchlen = true;
        } else if (more && arg_opt_is(&argv[j], "minmatchlen")) {
            if (!arg_to_ll(&argv[j + 1], &o->minmatchlen)) {
                reply_error(&c->r, ERR_NOT_INT);
                return false;
            }
            if (o->minmatchlen < 0) {
                o->minmatchlen = 0;
            }
            j++;
        } else {
            reply_error(&c->r, ERR_SYNTAX);
            return false;
        }
    }
    if (o->idx && o->len) {
        reply_error(&c->r, "ERR If you want both the length and indexes, please just use IDX.");
        return false;
    }
    return true;
}

/* The DP table and the backward walk, as Redis: L[i][j] is the LCS length
 * of a[0..i) and b[0..j). Matches are emitted from the end of the strings
 * towards the start, into m (a side reply) when IDX was asked. */
static void
lcs_run(struct client *c, const char *a, uint32_t alen, const char *b, uint32_t blen,
        const struct lcs_opts *o, uint32_t *lcs)
{
#define L(i, j) lcs[(size_t)(j) + (size_t)(i) * ((size_t)blen + 1)]
    for (uint32_t i = 0; i <= alen; i++) {
        for (uint32_t j = 0; j <= blen; j++) {
            if (i == 0 || j == 0) {
                L(i, j) = 0;
            } else if (a[i - 1] == b[j - 1]) {
                L(i, j) = L(i - 1, j - 1) + 1;
            } else {
                uint32_t l1 = L(i - 1, j), l2 = L(i, j - 1);
                L(i, j) = l1 > l2 ? l1 : l2;
            }
        }
    }
    uint32_t total = L(alen, blen);
    if (o->len) {
        reply_int(&c->r, total);
        return;
    }

    char *result = xmalloc((size_t)total + 1);
    struct buf mbuf;
    buf_init(&mbuf);
    struct reply m = {&mbuf, c->r.proto};
    size_t nmatches = 0;
    uint32_t idx = total;
    uint32_t as = alen, ae = 0, bs = 0, be = 0; /* as == alen: no range open */
    uint32_t i = alen, j = blen;
    while (i > 0 && j > 0) {
        bool emit = false;
        if (a[i - 1] == b[j - 1]) {
            result[idx - 1] = a[i - 1];
            if (as == alen) {
                as = ae = i - 1;
                bs = be = j - 1;
            } else if (as == i && bs == j) {
                as--;
                bs--;
            } else {
                emit = true;
            }
            if (as == 0 || bs == 0) {
                emit = true;
            }
            idx--;
            i--;
            j--;
        } else {
            if (L(i - 1, j) > L(i, j - 1)) {
                i--;
            } else {
                j--;
            }
            if (as != alen) {
                emit = true;
            }
        }
        if (emit) {
            uint32_t mlen = ae - as + 1;
            if (o->idx && (o->minmatchlen == 0 || (long long)mlen >= o->minmatchlen)) {
                reply_array(&m, 2 + (o->withmatchlen ? 1 : 0));
                reply_array(&m, 2);
                reply_int(&m, as);
                reply_int(&m, ae);
                reply_array(&m, 2);
                reply_int(&m, bs);
                reply_int(&m, be);
                if (o->withmatchlen) {
                    reply_int(&m, mlen);
                }
                nmatches++;
            }
            as = alen;
        }
    }
#undef L
    if (o->idx) {
        reply_map(&c->r, 2);
        reply_bulkstr(&c->r, "matches");
        reply_array(&c->r, nmatches);
        buf_append(c->r.out, mbuf.data, mbuf.len);
        reply_bulkstr(&c->r, "len");
        reply_int(&c->r, total);
    } else {
        reply_bulk(&c->r, result, total);
    }
    buf_deinit(&mbuf);
    free(result);
}

void
cmd_lcs(struct client *c, int argc, struct proto_arg *argv)
{
    int64_t now = cmd_time_ms();
    unsigned shards[2] = {key_shard(&argv[1]), key_shard(&argv[2])}, idx[2];
    unsigned n = store_lock_many(server.store, shards, 2, idx);
    uint32_t alen, blen;
    char *a = value_copy(store_shard(server.store, shards[0]), &argv[1], now, &alen);
    char *b = value_copy(store_shard(server.store, shards[1]), &argv[2], now, &blen);
    store_unlock_many(server.store, idx, n);

    struct lcs_opts o;
    if (!lcs_parse(c, argc, argv, &o)) {
        goto out;
    }
    if (alen >= UINT32_MAX - 1 || blen >= UINT32_MAX - 1) {
        reply_error(&c->r, "ERR String too long for LCS");
        goto out;
    }
    unsigned long long cells = ((unsigned long long)alen + 1) * ((unsigned long long)blen + 1);
    unsigned long long bytes = cells * sizeof(uint32_t);
    uint32_t *lcs = NULL;
    if (bytes < SIZE_MAX && bytes / cells == sizeof(uint32_t)) {
        if (bytes > (unsigned long long)arg_max_bulk()) {
            reply_error(&c->r, "ERR Insufficient memory, transient memory for LCS exceeds "
                               "proto-max-bulk-len");
            goto out;
        }
        /* Plain malloc: a failed transient table is an error reply, as in
         * Redis (ztrymalloc), not an abort. */
        lcs = malloc((size_t)bytes);
    }
    if (lcs == NULL) {
        reply_error(&c->r, "ERR Insufficient memory, failed allocating transient memory for LCS");
        goto out;
    }
    lcs_run(c, a, alen, b, blen, &o, lcs);
    free(lcs);
out:
    free(a);
    free(b);
}
