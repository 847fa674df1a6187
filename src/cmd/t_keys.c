/*
 * t_keys.c -- the keyspace commands: DEL/UNLINK EXISTS TOUCH, the EXPIRE
 * family (EXPIRE PEXPIRE EXPIREAT PEXPIREAT with NX XX GT LT), TTL PTTL
 * EXPIRETIME PEXPIRETIME PERSIST TYPE, KEYS SCAN DBSIZE FLUSHALL/FLUSHDB,
 * RENAME RENAMENX RANDOMKEY COPY.
 *
 * Argument parsing order, error texts and the keyspace hit/miss accounting
 * follow Redis 7.0 (db.c, expire.c), so replies match it byte for byte.
 * Single-key commands lock the key's shard; multi-key commands (DEL, EXISTS,
 * TOUCH) lock each key's shard in turn, which gives per-key atomicity as
 * Redis's cluster mode does. RENAME and COPY lock both shards at once with
 * store_lock_many() so the move is atomic.
 *
 * KEYS walks every shard's table under that shard's lock, so a key is
 * reported once; SCAN uses store_scan()'s opaque cursor, a few buckets per
 * call, with Redis's COUNT heuristic (stop after COUNT keys or 10*COUNT
 * steps). Expired keys that are still in memory are never returned.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "cmd/keys.h"
#include "cmd/tstats.h"
#include "cmd/pubsub.h"
#include "util/clock.h"
#include "util/glob.h"
#include "util/mem.h"

/* ---- DEL / UNLINK / EXISTS / TOUCH ---------------------------------------- */

void
cmd_del(struct client *c, int argc, struct proto_arg *argv)
{
    int64_t now = cmd_time_ms();
    int64_t deleted = 0;
    for (int j = 1; j < argc; j++) {
        struct shard *sh = key_lock(&argv[j]);
        if (shard_delete(sh, argv[j].ptr, argv[j].len, now)) {
            prop_del(c, argv[j].ptr, argv[j].len);
            notify_key(c, NOTIFY_GENERIC, "del", argv[j].ptr, argv[j].len);
            deleted++;
        }
        shard_unlock(sh);
    }
    reply_int(&c->r, deleted);
}

/* EXISTS and TOUCH: count the keys found (duplicates count each time), with
 * hit/miss accounting like Redis's lookupKeyRead. */
static void
count_existing(struct client *c, int argc, struct proto_arg *argv)
{
    int64_t now = cmd_time_ms();
    int64_t found = 0;
    for (int j = 1; j < argc; j++) {
        struct shard *sh = key_lock(&argv[j]);
        if (key_read(sh, &argv[j], now)) {
            found++;
        }
        shard_unlock(sh);
    }
    reply_int(&c->r, found);
}

void
cmd_exists(struct client *c, int argc, struct proto_arg *argv)
{
    count_existing(c, argc, argv);
}

void
cmd_touch(struct client *c, int argc, struct proto_arg *argv)
{
    count_existing(c, argc, argv);
}

/* ---- EXPIRE family ---------------------------------------------------------- */

enum {
    EXP_NX = 1 << 0,
    EXP_XX = 1 << 1,
    EXP_GT = 1 << 2,
    EXP_LT = 1 << 3,
};

/* Redis's parseExtendedExpireArgumentsOrReply: the options after argv[2]. */
static bool
parse_expire_flags(struct client *c, int argc, struct proto_arg *argv, int *flags)
{
    *flags = 0;
    for (int j = 3; j < argc; j++) {
        if (arg_opt_is(&argv[j], "nx")) {
            *flags |= EXP_NX;
        } else if (arg_opt_is(&argv[j], "xx")) {
            *flags |= EXP_XX;
        } else if (arg_opt_is(&argv[j], "gt")) {
            *flags |= EXP_GT;
        } else if (arg_opt_is(&argv[j], "lt")) {
            *flags |= EXP_LT;
        } else {
            static const char prefix[] = "ERR Unsupported option ";
            size_t n = arg_cstr_len(&argv[j]);
            char *msg = xmalloc(sizeof(prefix) + n);
            memcpy(msg, prefix, sizeof(prefix) - 1);
            memcpy(msg + sizeof(prefix) - 1, argv[j].ptr, n);
            msg[sizeof(prefix) - 1 + n] = '\0';
            reply_error(&c->r, msg);
            free(msg);
            return false;
        }
    }
    if ((*flags & EXP_NX) && (*flags & (EXP_XX | EXP_GT | EXP_LT))) {
        reply_error(&c->r, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return false;
    }
    if ((*flags & EXP_GT) && (*flags & EXP_LT)) {
        reply_error(&c->r, "ERR GT and LT options at the same time are not compatible");
        return false;
    }
    return true;
}

/* Whether the NX/XX/GT/LT conditions allow replacing `cur` (0 = no expiry)
 * by `when`. A missing expiry counts as infinite. */
static bool
expire_allowed(int flags, int64_t cur, long long when)
{
    if ((flags & EXP_NX) && cur != 0) {
        return false;
    }
    if ((flags & EXP_XX) && cur == 0) {
        return false;
    }
    if ((flags & EXP_GT) && (cur == 0 || when <= cur)) {
        return false;
    }
    if ((flags & EXP_LT) && cur != 0 && when >= cur) {
        return false;
    }
    return true;
}

/* EXPIRE/PEXPIRE (relative: base = now) and EXPIREAT/PEXPIREAT (base = 0).
 * A deadline already past deletes the key (reported as a delete). */
static void
expire_generic(struct client *c, int argc, struct proto_arg *argv, bool relative,
               bool seconds, const char *name)
{
    int flags;
    if (!parse_expire_flags(c, argc, argv, &flags)) {
        return;
    }
    long long when;
    if (!arg_to_ll(&argv[2], &when)) {
        reply_error(&c->r, ERR_NOT_INT);
        return;
    }
    int64_t now = cmd_time_ms();
    long long base = relative ? now : 0;
    if (seconds) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
            goto bad_time;
        }
        when *= 1000;
    }
    if (when > LLONG_MAX - base) {
        goto bad_time;
    }
    when += base;

    struct shard *sh = key_lock(&argv[1]);
    struct item *it = key_write(sh, &argv[1], now);
    int64_t result = 0;
    if (it && expire_allowed(flags, item_expire(it), when)) {
        if (when <= now) {
            shard_delete(sh, argv[1].ptr, argv[1].len, now);
            prop_del(c, argv[1].ptr, argv[1].len);
            notify_key(c, NOTIFY_GENERIC, "del", argv[1].ptr, argv[1].len);
        } else {
            it = shard_set_expire(sh, it, when);
            prop_expire(c, it);
            notify_key(c, NOTIFY_GENERIC, "expire", argv[1].ptr, argv[1].len);
        }
        result = 1;
    }
    shard_unlock(sh);
    reply_int(&c->r, result);
    return;

bad_time:
    reply_errorf(&c->r, "ERR invalid expire time in '%s' command", name);
}

void
cmd_expire(struct client *c, int argc, struct proto_arg *argv)
{
    expire_generic(c, argc, argv, true, true, "expire");
}

void
cmd_pexpire(struct client *c, int argc, struct proto_arg *argv)
{
    expire_generic(c, argc, argv, true, false, "pexpire");
}

void
cmd_expireat(struct client *c, int argc, struct proto_arg *argv)
{
    expire_generic(c, argc, argv, false, true, "expireat");
}

void
cmd_pexpireat(struct client *c, int argc, struct proto_arg *argv)
{
    expire_generic(c, argc, argv, false, false, "pexpireat");
}

/* TTL PTTL EXPIRETIME PEXPIRETIME: -2 missing, -1 no expiry, else the time
 * left (or the deadline when absolute), in ms or rounded to seconds. */
static void
ttl_generic(struct client *c, struct proto_arg *key, bool ms, bool absolute)
{
    int64_t now = cmd_time_ms();
    struct shard *sh = key_lock(key);
    struct item *it = key_read(sh, key, now);
    int64_t expire = it ? item_expire(it) : 0;
    shard_unlock(sh);
    if (it == NULL) {
        reply_int(&c->r, -2);
        return;
    }
    if (expire == 0) {
        reply_int(&c->r, -1);
        return;
    }
    int64_t t = absolute ? expire : expire - now;
    if (t < 0) {
        t = 0;
    }
    /* (t + 500) / 1000 without overflowing near INT64_MAX. */
    reply_int(&c->r, ms ? t : t / 1000 + (t % 1000 >= 500));
}

void
cmd_ttl(struct client *c, int argc, struct proto_arg *argv)
{
    ttl_generic(c, &argv[1], false, false);
}

void
cmd_pttl(struct client *c, int argc, struct proto_arg *argv)
{
    ttl_generic(c, &argv[1], true, false);
}

void
cmd_expiretime(struct client *c, int argc, struct proto_arg *argv)
{
    ttl_generic(c, &argv[1], false, true);
}

void
cmd_pexpiretime(struct client *c, int argc, struct proto_arg *argv)
{
    ttl_generic(c, &argv[1], true, true);
}

void
cmd_persist(struct client *c, int argc, struct proto_arg *argv)
{
    int64_t now = cmd_time_ms();
    struct shard *sh = key_lock(&argv[1]);
    struct item *it = key_write(sh, &argv[1], now);
    int64_t result = 0;
    if (it && item_expire(it) != 0) {
        it = shard_set_expire(sh, it, 0);
        prop_expire(c, it);
        notify_key(c, NOTIFY_GENERIC, "persist", argv[1].ptr, argv[1].len);
        result = 1;
    }
    shard_unlock(sh);
    reply_int(&c->r, result);
}

void
cmd_type(struct client *c, int argc, struct proto_arg *argv)
{
    struct shard *sh = key_lock(&argv[1]);
    bool found = key_read(sh, &argv[1], cmd_time_ms()) != NULL;
    shard_unlock(sh);
    reply_simple(&c->r, found ? "string" : "none");
}

/* ---- KEYS / SCAN / DBSIZE / RANDOMKEY ------------------------------------------ */

/* Replies are gathered in a side buffer while shard locks are held, then
 * appended behind the array header once the count is known. */
struct gather {
    struct reply r;      /* encodes into buf with the client's protocol */
    struct buf buf;
    size_t n;            /* keys gathered */
    size_t visited;      /* keys looked at (SCAN's COUNT heuristic) */
    const struct proto_arg *pat; /* NULL = every key */
    const struct proto_arg *type; /* SCAN TYPE, or NULL */
    struct tstats *ts;
    int64_t now;
};

static void
gather_init(struct gather *g, const struct client *c, int64_t now)
{
    memset(g, 0, sizeof(*g));
    buf_init(&g->buf);
    g->r.out = &g->buf;
    g->r.proto = c->r.proto;
    g->now = now;
}

static void
gather_visit(struct item *it, void *ctx)
{
    struct gather *g = ctx;
    g->visited++;
    if (g->pat && !glob_match(g->pat->ptr, g->pat->len, item_key(it), item_klen(it), false)) {
        return;
    }
    bool expired = item_expired(it, g->now);
    if (g->type) {
        /* Redis looks the key up to learn its type: a hit or a miss, and
         * an expired key has type "none", which then is filtered anyway. */
        if (expired) {
            STAT_INC(g->ts->misses);
        } else {
            STAT_INC(g->ts->hits);
        }
        if (!arg_opt_is(g->type, expired ? "none" : "string")) {
            return;
        }
    }
    if (expired) {
        return;
    }
    reply_bulk(&g->r, item_key(it), item_klen(it));
    g->n++;
}

void
cmd_keys(struct client *c, int argc, struct proto_arg *argv)
{
    struct gather g;
    gather_init(&g, c, cmd_time_ms());
    if (!(argv[1].len == 1 && argv[1].ptr[0] == '*')) {
        g.pat = &argv[1];
    }
    struct store *st = server.store;
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        size_t cur = 0;
        do {
            cur = shard_scan(sh, cur, gather_visit, &g);
        } while (cur != 0);
        shard_unlock(sh);
    }
    reply_array(&c->r, g.n);
    buf_append(c->r.out, g.buf.data, g.buf.len);
    buf_deinit(&g.buf);
}

/* Redis's parseScanCursorOrReply: strtoul() on the C string, so an empty
 * cursor is 0, a sign is accepted ("-1" wraps), leading spaces, trailing
 * junk and overflow are refused. */
static bool
parse_cursor(const struct proto_arg *a, uint64_t *out)
{
    size_t n = arg_cstr_len(a);
    const char *p = a->ptr;
    *out = 0;
    if (n == 0) {
        return true;
    }
    if (isspace((unsigned char)p[0])) {
        return false;
    }
    size_t i = 0;
    bool neg = false;
    if (p[0] == '+' || p[0] == '-') {
        neg = p[0] == '-';
        i = 1;
    }
    if (i == n || !isdigit((unsigned char)p[i])) {
        return false; /* no digits: strtoul stops at the first byte */
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) {
            return false;
        }
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false; /* ERANGE */
        }
        v = v * 10 + d;
    }
    *out = neg ? 0 - v : v;
    return true;
}

void
cmd_scan(struct client *c, int argc, struct proto_arg *argv)
{
    uint64_t cursor;
    if (!parse_cursor(&argv[1], &cursor)) {
        reply_error(&c->r, "ERR invalid cursor");
        return;
    }
    long long count = 10;
    const struct proto_arg *pat = NULL, *type = NULL;
    for (int i = 2; i < argc; i += 2) {
        bool more = argc - i >= 2;
        if (more && arg_opt_is(&argv[i], "count")) {
            if (!arg_to_ll(&argv[i + 1], &count)) {
                reply_error(&c->r, ERR_NOT_INT);
                return;
            }
            if (count < 1) {
                reply_error(&c->r, ERR_SYNTAX);
                return;
            }
        } else if (more && arg_opt_is(&argv[i], "match")) {
            pat = &argv[i + 1];
            if (pat->len == 1 && pat->ptr[0] == '*') {
                pat = NULL;
            }
        } else if (more && arg_opt_is(&argv[i], "type")) {
            type = &argv[i + 1];
        } else {
            reply_error(&c->r, ERR_SYNTAX);
            return;
        }
    }

    struct gather g;
    gather_init(&g, c, cmd_time_ms());
    g.pat = pat;
    g.type = type;
    g.ts = tstats_self();
    /* Like Redis: stop once COUNT keys were seen, or after 10*COUNT steps
     * (empty buckets and shards cost a step too). */
    unsigned long long steps = (unsigned long long)count * 10;
    do {
        cursor = store_scan(server.store, cursor, gather_visit, &g);
    } while (cursor != 0 && --steps > 0 && g.visited < (unsigned long long)count);

    char num[24];
    int len = snprintf(num, sizeof(num), "%llu", (unsigned long long)cursor);
    reply_array(&c->r, 2);
    reply_bulk(&c->r, num, (size_t)len);
    reply_array(&c->r, g.n);
    buf_append(c->r.out, g.buf.data, g.buf.len);
    buf_deinit(&g.buf);
}

void
cmd_dbsize(struct client *c, int argc, struct proto_arg *argv)
{
    reply_int(&c->r, (int64_t)store_count(server.store));
}

void
cmd_randomkey(struct client *c, int argc, struct proto_arg *argv)
{
    char *key;
    size_t klen;
    if (store_random_key(server.store, &key, &klen, cmd_time_ms())) {
        reply_bulk(&c->r, key, klen);
        free(key);
    } else {
        reply_null(&c->r);
    }
}

/* FLUSHALL / FLUSHDB [ASYNC|SYNC]: there is one database, so both empty the
 * whole store; freeing is always synchronous. */
void
cmd_flushall(struct client *c, int argc, struct proto_arg *argv)
{
    if (argc > 2 ||
        (argc == 2 && !arg_opt_is(&argv[1], "sync") && !arg_opt_is(&argv[1], "async"))) {
        reply_error(&c->r, ERR_SYNTAX);
        return;
    }
    prop_flush(c);
    store_flush(server.store);
    reply_ok(&c->r);
}

/* ---- RENAME / RENAMENX / COPY ------------------------------------------------------ */

/* Lock the shards of two keys; *n receives how many distinct shards. */
static void
lock_pair(const struct proto_arg *a, const struct proto_arg *b, unsigned idx[2], unsigned *n)
{
    unsigned sh[2] = {key_shard(a), key_shard(b)};
    *n = store_lock_many(server.store, sh, 2, idx);
}

static bool
same_key(const struct proto_arg *a, const struct proto_arg *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

static void
rename_generic(struct client *c, struct proto_arg *argv, bool nx)
{
    struct proto_arg *src = &argv[1], *dst = &argv[2];
    int64_t now = cmd_time_ms();
    unsigned idx[2], n;
    lock_pair(src, dst, idx, &n);
    struct shard *ssh = store_shard(server.store, key_shard(src));
    struct shard *dsh = store_shard(server.store, key_shard(dst));

    enum { R_NOKEY, R_DONE, R_EXISTS } res;
    struct item *it = key_write(ssh, src, now);
    if (it == NULL) {
        res = R_NOKEY;
    } else if (same_key(src, dst)) {
        res = R_DONE;
    } else if (nx && key_write(dsh, dst, now) != NULL) {
        res = R_EXISTS;
    } else {
        /* replaces any old dst */
        struct item *nit = key_set(dsh, dst, item_cval(it), item_vlen(it), item_expire(it));
        prop_group_begin(c); /* recovery applies both or neither */
        prop_set(c, nit);
        shard_delete(ssh, src->ptr, src->len, now);
        prop_del(c, src->ptr, src->len);
        prop_group_end(c);
        notify_key(c, NOTIFY_GENERIC, "rename_from", src->ptr, src->len);
        notify_key(c, NOTIFY_GENERIC, "rename_to", dst->ptr, dst->len);
        res = R_DONE;
    }
    store_unlock_many(server.store, idx, n);

    if (res == R_NOKEY) {
        reply_error(&c->r, ERR_NO_KEY);
    } else if (nx) {
        reply_int(&c->r, res == R_DONE && !same_key(src, dst));
    } else {
        reply_ok(&c->r);
    }
}

void
cmd_rename(struct client *c, int argc, struct proto_arg *argv)
{
    rename_generic(c, argv, false);
}

void
cmd_renamenx(struct client *c, int argc, struct proto_arg *argv)
{
    rename_generic(c, argv, true);
}

/* COPY src dst [DB n] [REPLACE]. There is a single database: DB 0 is
 * accepted, any other index is out of range (as Redis with `databases 1`). */
void
cmd_copy(struct client *c, int argc, struct proto_arg *argv)
{
    struct proto_arg *src = &argv[1], *dst = &argv[2];
    bool replace = false;
    for (int j = 3; j < argc; j++) {
        if (arg_opt_is(&argv[j], "replace")) {
            replace = true;
        } else if (arg_opt_is(&argv[j], "db") && j + 1 < argc) {
            long long db;
            if (!arg_to_ll(&argv[j + 1], &db)) {
                reply_error(&c->r, ERR_NOT_INT);
                return;
            }
            if (db < INT_MIN || db > INT_MAX) {
                reply_errorf(&c->r, "ERR value is out of range, value must between %d and %d",
                             INT_MIN, INT_MAX);
                return;
            }
            if (db != 0) {
                reply_error(&c->r, "ERR DB index is out of range");
                return;
            }
            j++;
        } else {
            reply_error(&c->r, ERR_SYNTAX);
            return;
        }
    }
    if (same_key(src, dst)) {
        reply_error(&c->r, "ERR source and destination objects are the same");
        return;
    }

    int64_t now = cmd_time_ms();
    unsigned idx[2], n;
    lock_pair(src, dst, idx, &n);
    struct shard *ssh = store_shard(server.store, key_shard(src));
    struct shard *dsh = store_shard(server.store, key_shard(dst));
    int64_t result = 0;
    struct item *it = key_read(ssh, src, now);
    if (it && (replace || key_write(dsh, dst, now) == NULL)) {
        struct item *nit = key_set(dsh, dst, item_cval(it), item_vlen(it), item_expire(it));
        prop_set(c, nit);
        notify_key(c, NOTIFY_GENERIC, "copy_to", dst->ptr, dst->len);
        result = 1;
    }
    store_unlock_many(server.store, idx, n);
    reply_int(&c->r, result);
}
