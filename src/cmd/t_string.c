/*
 * t_string.c -- the string commands: GET SET (and variants) GETEX GETDEL
 * GETSET MGET MSET MSETNX INCR/DECR family INCRBYFLOAT APPEND STRLEN
 * GETRANGE SETRANGE. Argument parsing order and error texts follow Redis 7.0,
 * so replies match it byte for byte.
 *
 * Values are replaced through key_set (shard_upsert: the key's item is
 * rewritten in place when its chunk can take the new value, else a new item
 * replaces it); APPEND, SETRANGE and SETBIT build the longer item and
 * shard_put() it. Commands that keep the TTL copy the old expiry over.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "cmd/keys.h"
#include "cmd/pubsub.h"
#include "util/clock.h"
#include "util/mem.h"
#include <stdlib.h>


enum {
    SET_NX = 1 << 0,
    SET_XX = 1 << 1,
    SET_GET = 1 << 2,
    SET_KEEPTTL = 1 << 3,
    SET_EX = 1 << 4,
    SET_PX = 1 << 5,
    SET_EXAT = 1 << 6,
    SET_PXAT = 1 << 7,
    SET_PERSIST = 1 << 8,
};
#define SET_ANY_EXPIRE (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

static bool value_size_ok(struct client *c, long long total);

/* Redis's checkStringLength: size + append within the limit, no overflow. */
static bool
size_sum_ok(struct client *c, long long size, long long append)
{
    long long total = (long long)((uint64_t)size + (uint64_t)append);
    if (total < size || total < append) {
        reply_error(&c->r, ERR_TOO_BIG);
        return false;
    }
    return value_size_ok(c, total);
}

static bool
value_size_ok(struct client *c, long long total)
{
    if (total > arg_max_bulk()) {
        reply_error(&c->r, ERR_TOO_BIG);
        return false;
    }
    return true;
}

static int
expire_opt(const struct proto_arg *a)
{
    if (arg_opt_is(a, "ex")) {
        return SET_EX;
    }
    if (arg_opt_is(a, "px")) {
        return SET_PX;
    }
    if (arg_opt_is(a, "exat")) {
        return SET_EXAT;
    }
    if (arg_opt_is(a, "pxat")) {
        return SET_PXAT;
    }
    return 0;
}

/* Redis's parseExtendedStringArgumentsOrReply for SET (is_get == false) and
 * GETEX (is_get == true). On success *expire_arg points at the time argument
 * (or NULL). */
static bool
parse_set_flags(struct client *c, int argc, struct proto_arg *argv, int first, bool is_getex,
                int *flags, struct proto_arg **expire_arg)
{
    *flags = 0;
    *expire_arg = NULL;
    for (int j = first; j < argc; j++) {
        struct proto_arg *a = &argv[j];
        struct proto_arg *next = (j == argc - 1) ? NULL : &argv[j + 1];
        if (!is_getex && arg_opt_is(a, "nx") && !(*flags & (SET_XX))) {
            *flags |= SET_NX;
        } else if (!is_getex && arg_opt_is(a, "xx") && !(*flags & SET_NX)) {
            *flags |= SET_XX;
        } else if (!is_getex && arg_opt_is(a, "get")) {
            *flags |= SET_GET;
        } else if (!is_getex && arg_opt_is(a, "keepttl") &&
                   !(*flags & (SET_PERSIST | SET_ANY_EXPIRE))) {
            *flags |= SET_KEEPTTL;
        } else if (is_getex && arg_opt_is(a, "persist") &&
                   !(*flags & (SET_ANY_EXPIRE | SET_KEEPTTL))) {
            *flags |= SET_PERSIST;
        } else if (next && expire_opt(a) &&
                   !(*flags & (SET_KEEPTTL | SET_PERSIST | (SET_ANY_EXPIRE & ~expire_opt(a))))) {
            /* Redis lets the same expire option repeat (the last one wins),
             * but not two different ones. */
            *flags = (*flags & ~SET_ANY_EXPIRE) | expire_opt(a);
            *expire_arg = next;
            j++;
        } else {
            reply_error(&c->r, ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

/* Redis's getExpireMillisecondsOrReply: absolute ms deadline from the
 * argument, or an error reply naming the command. */
static bool
expire_ms(struct client *c, const struct proto_arg *arg, int flags, const char *cmdname,
          int64_t now, int64_t *out)
{
    long long v;
    if (!arg_to_ll(arg, &v)) {
        reply_error(&c->r, ERR_NOT_INT);
        return false;
    }
    bool seconds = flags & (SET_EX | SET_EXAT);
    if (v <= 0 || (seconds && v > LLONG_MAX / 1000)) {
        goto bad;
    }
    if (seconds) {
        v *= 1000;
    }
    if (flags & (SET_EX | SET_PX)) {
        if (v > LLONG_MAX - now) {
            goto bad;
        }
        v += now;
    }
    if (v <= 0) {
        goto bad;
    }
    *out = v;
    return true;
bad:
    reply_errorf(&c->r, "ERR invalid expire time in '%s' command", cmdname);
    return false;
}

static void
set_generic(struct client *c, int flags, struct proto_arg *key, struct proto_arg *val,
            struct proto_arg *expire, const char *cmdname, bool reply_int_result)
{
    int64_t now = cmd_time_ms();
    int64_t deadline = 0;
    if (expire && !expire_ms(c, expire, flags, cmdname, now, &deadline)) {
        return;
    }
    if (!value_size_ok(c, (long long)val->len)) {
        return;
    }
    struct shard *sh = key_lock(key);
    struct item *old;
    if (flags & SET_GET) {
        old = key_read(sh, key, now);
        if (old) {
            reply_bulk(&c->r, item_cval(old), item_vlen(old));
        } else {
            reply_null(&c->r);
        }
    } else if (flags & (SET_NX | SET_XX | SET_KEEPTTL)) {
        old = key_write(sh, key, now);
    } else {
        old = NULL; /* a plain SET replaces whatever is there: no lookup */
    }
    if (((flags & SET_NX) && old) || ((flags & SET_XX) && !old)) {
        shard_unlock(sh);
        if (!(flags & SET_GET)) {
            if (reply_int_result) {
                reply_int(&c->r, 0);
            } else {
                reply_null(&c->r);
            }
        }
        return;
    }
    int64_t exp = 0;
    if (expire) {
        exp = deadline;
    } else if ((flags & SET_KEEPTTL) && old) {
        exp = item_expire(old);
    }
    struct item *it = key_set(sh, key, val->ptr, val->len, exp);
    prop_set(c, it);
    notify_key(c, NOTIFY_STRING, "set", key->ptr, key->len);
    if (expire) {
        notify_key(c, NOTIFY_GENERIC, "expire", key->ptr, key->len);
    }
    shard_unlock(sh);
    if (!(flags & SET_GET)) {
        if (reply_int_result) {
            reply_int(&c->r, 1);
        } else {
            reply_ok(&c->r);
        }
    }
}

void
cmd_set(struct client *c, int argc, struct proto_arg *argv)
{
    int flags;
    struct proto_arg *expire;
    if (argc == 3) {
        /* plain SET k v, the common case: no option to parse */
        set_generic(c, 0, &argv[1], &argv[2], NULL, "set", false);
        return;
    }
    if (!parse_set_flags(c, argc, argv, 3, false, &flags, &expire)) {
        return;
    }
    set_generic(c, flags, &argv[1], &argv[2], expire, "set", false);
}

void
cmd_setnx(struct client *c, int argc, struct proto_arg *argv)
{
    set_generic(c, SET_NX, &argv[1], &argv[2], NULL, "setnx", true);
}

void
cmd_setex(struct client *c, int argc, struct proto_arg *argv)
{
    set_generic(c, SET_EX, &argv[1], &argv[3], &argv[2], "setex", false);
}

void
cmd_psetex(struct client *c, int argc, struct proto_arg *argv)
{
    set_generic(c, SET_PX, &argv[1], &argv[3], &argv[2], "psetex", false);
}

void
cmd_get(struct client *c, int argc, struct proto_arg *argv)
{
    struct shard *sh = key_lock(&argv[1]);
    struct item *it = key_read(sh, &argv[1], cmd_time_ms());
    if (it) {
        reply_bulk(&c->r, item_cval(it), item_vlen(it));
    } else {
        reply_null(&c->r);
    }
    shard_unlock(sh);
}

void
cmd_getex(struct client *c, int argc, struct proto_arg *argv)
{
    int flags;
    struct proto_arg *expire;
    if (!parse_set_flags(c, argc, argv, 2, true, &flags, &expire)) {
        return;
    }
    int64_t now = cmd_time_ms();
    struct shard *sh = key_lock(&argv[1]);
    struct item *it = key_read(sh, &argv[1], now);
    if (it == NULL) {
        shard_unlock(sh);
        reply_null(&c->r);
        return;
    }
    /* Redis looks the key up before it validates the time. */
    int64_t deadline = 0;
    if (expire && !expire_ms(c, expire, flags, "getex", now, &deadline)) {
        shard_unlock(sh);
        return;
    }
    reply_bulk(&c->r, item_cval(it), item_vlen(it));
    if (expire && (flags & (SET_EXAT | SET_PXAT)) && deadline <= now) {
        shard_delete(sh, argv[1].ptr, argv[1].len, now);
        prop_del(c, argv[1].ptr, argv[1].len);
        notify_key(c, NOTIFY_GENERIC, "del", argv[1].ptr, argv[1].len);
    } else if (expire) {
        it = shard_set_expire(sh, it, deadline);
        prop_expire(c, it);
        notify_key(c, NOTIFY_GENERIC, "expire", argv[1].ptr, argv[1].len);
    } else if ((flags & SET_PERSIST) && item_expire(it)) {
        it = shard_set_expire(sh, it, 0);
        prop_expire(c, it);
        notify_key(c, NOTIFY_GENERIC, "persist", argv[1].ptr, argv[1].len);
    }
    shard_unlock(sh);
}

void
cmd_getdel(struct client *c, int argc, struct proto_arg *argv)
{
    int64_t now = cmd_time_ms();
    struct shard *sh = key_lock(&argv[1]);
    struct item *it = key_read(sh, &argv[1], now);
    if (it == NULL) {
        shard_unlock(sh);
        reply_null(&c->r);
        return;
    }
    reply_bulk(&c->r, item_cval(it), item_vlen(it));
    shard_delete(sh, argv[1].ptr, argv[1].len, now);
    prop_del(c, argv[1].ptr, argv[1].len);
    notify_key(c, NOTIFY_GENERIC, "del", argv[1].ptr, argv[1].len);
    shard_unlock(sh);
}

void
cmd_getset(struct client *c, int argc, struct proto_arg *argv)
{
    if (!value_size_ok(c, (long long)argv[2].len)) {
        return;
    }
    int64_t now = cmd_time_ms();
    struct shard *sh = key_lock(&argv[1]);
    struct item *old = key_read(sh, &argv[1], now);
    if (old) {
        reply_bulk(&c->r, item_cval(old), item_vlen(old));
    } else {
        reply_null(&c->r);
    }
    struct item *it = key_set(sh, &argv[1], argv[2].ptr, argv[2].len, 0);
    prop_set(c, it);
    notify_key(c, NOTIFY_STRING, "set", argv[1].ptr, argv[1].len);
    shard_unlock(sh);
}

void
cmd_mget(struct client *c, int argc, struct proto_arg *argv)
{
    int64_t now = cmd_time_ms();
    reply_array(&c->r, (size_t)argc - 1);
    for (int i = 1; i < argc; i++) {
        struct shard *sh = key_lock(&argv[i]);
        struct item *it = key_read(sh, &argv[i], now);
        if (it) {
            reply_bulk(&c->r, item_cval(it), item_vlen(it));
        } else {
            reply_null(&c->r);
        }
        shard_unlock(sh);
    }
}

static void
mset_generic(struct client *c, int argc, struct proto_arg *argv, bool nx)
{
    if ((argc % 2) == 0) {
        cmd_reply_arity(c, nx ? "msetnx" : "mset");
        return;
    }
    int npairs = (argc - 1) / 2;
    for (int i = 0; i < npairs; i++) {
        if (!value_size_ok(c, (long long)argv[2 + 2 * i].len)) {
            return;
        }
    }
    unsigned stack_sh[64] = {0}, stack_idx[64] = {0};
    unsigned *shards = npairs <= 64 ? stack_sh : xmalloc(sizeof(unsigned) * (size_t)npairs);
    unsigned *idx = npairs <= 64 ? stack_idx : xmalloc(sizeof(unsigned) * (size_t)npairs);
    for (int i = 0; i < npairs; i++) {
        shards[i] = key_shard(&argv[1 + 2 * i]);
    }
    unsigned nlocked = store_lock_many(server.store, shards, (unsigned)npairs, idx);
    int64_t now = cmd_time_ms();
    bool ok = true;
    if (nx) {
        for (int i = 0; i < npairs && ok; i++) {
            struct shard *sh = store_shard(server.store, shards[i]);
            if (key_write(sh, &argv[1 + 2 * i], now)) {
                ok = false;
            }
        }
    }
    if (ok) {
        prop_group_begin(c); /* recovery applies all the pairs or none */
        for (int i = 0; i < npairs; i++) {
            struct shard *sh = store_shard(server.store, shards[i]);
            struct item *it = key_set(sh, &argv[1 + 2 * i], argv[2 + 2 * i].ptr,
                                       argv[2 + 2 * i].len, 0);
            prop_set(c, it);
            notify_key(c, NOTIFY_STRING, "set", argv[1 + 2 * i].ptr, argv[1 + 2 * i].len);
        }
        prop_group_end(c);
    }
    store_unlock_many(server.store, idx, nlocked);
    if (shards != stack_sh) {
        free(shards);
        free(idx);
    }
    if (nx) {
        reply_int(&c->r, ok ? 1 : 0);
    } else {
        reply_ok(&c->r);
    }
}

void
cmd_mset(struct client *c, int argc, struct proto_arg *argv)
{
    mset_generic(c, argc, argv, false);
}

void
cmd_msetnx(struct client *c, int argc, struct proto_arg *argv)
{
    mset_generic(c, argc, argv, true);
}

static void
incr_generic(struct client *c, struct proto_arg *key, long long incr)
{
    int64_t now = cmd_time_ms();
    struct shard *sh = key_lock(key);
    struct item *old = key_write(sh, key, now);
    long long value = 0;
    if (old && !arg_ll(item_cval(old), item_vlen(old), &value)) {
        shard_unlock(sh);
        reply_error(&c->r, ERR_NOT_INT);
        return;
    }
    if ((incr < 0 && value < 0 && incr < (LLONG_MIN - value)) ||
        (incr > 0 && value > 0 && incr > (LLONG_MAX - value))) {
        shard_unlock(sh);
        reply_error(&c->r, ERR_OVERFLOW);
        return;
    }
    value += incr;
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", value);
    struct item *it = key_set(sh, key, tmp, (size_t)n, old ? item_expire(old) : 0);
    prop_set(c, it);
    notify_key(c, NOTIFY_STRING, "incrby", key->ptr, key->len);
    shard_unlock(sh);
    reply_int(&c->r, value);
}

void
cmd_incr(struct client *c, int argc, struct proto_arg *argv)
{
    incr_generic(c, &argv[1], 1);
}

void
cmd_decr(struct client *c, int argc, struct proto_arg *argv)
{
    incr_generic(c, &argv[1], -1);
}

void
cmd_incrby(struct client *c, int argc, struct proto_arg *argv)
{
    long long incr;
    if (!arg_to_ll(&argv[2], &incr)) {
        reply_error(&c->r, ERR_NOT_INT);
        return;
    }
    incr_generic(c, &argv[1], incr);
}

void
cmd_decrby(struct client *c, int argc, struct proto_arg *argv)
{
    long long incr;
    if (!arg_to_ll(&argv[2], &incr)) {
        reply_error(&c->r, ERR_NOT_INT);
        return;
    }
    if (incr == LLONG_MIN) {
        reply_error(&c->r, "ERR decrement would overflow");
        return;
    }
    incr_generic(c, &argv[1], -incr);
}

void
cmd_incrbyfloat(struct client *c, int argc, struct proto_arg *argv)
{
    int64_t now = cmd_time_ms();
    struct shard *sh = key_lock(&argv[1]);
    struct item *old = key_write(sh, &argv[1], now);
    long double value = 0, incr;
    if (old) {
        struct proto_arg cur = {item_cval(old), item_vlen(old)};
        if (!arg_to_ld(&cur, &value)) {
            shard_unlock(sh);
            reply_error(&c->r, ERR_NOT_FLOAT);
            return;
        }
    }
    if (!arg_to_ld(&argv[2], &incr)) {
        shard_unlock(sh);
        reply_error(&c->r, ERR_NOT_FLOAT);
        return;
    }
    value += incr;
    if (isnan(value) || isinf(value)) {
        shard_unlock(sh);
        reply_error(&c->r, "ERR increment would produce NaN or Infinity");
        return;
    }
    char tmp[5200];
    int n = fmt_ld_human(tmp, sizeof(tmp), value);
    if (n < 0) {
        shard_unlock(sh);
        reply_error(&c->r, ERR_NOT_FLOAT);
        return;
    }
    struct item *it = key_set(sh, &argv[1], tmp, (size_t)n, old ? item_expire(old) : 0);
    prop_set(c, it);
    notify_key(c, NOTIFY_STRING, "incrbyfloat", argv[1].ptr, argv[1].len);
    shard_unlock(sh);
    reply_bulk(&c->r, tmp, (size_t)n);
}

void
cmd_append(struct client *c, int argc, struct proto_arg *argv)
{
    int64_t now = cmd_time_ms();
    struct shard *sh = key_lock(&argv[1]);
    struct item *old = key_write(sh, &argv[1], now);
    size_t oldlen = old ? item_vlen(old) : 0;
    if (old && !value_size_ok(c, (long long)(oldlen + argv[2].len))) {
        shard_unlock(sh);
        return;
    }
    if (!old && !value_size_ok(c, (long long)argv[2].len)) {
        shard_unlock(sh);
        return;
    }
    struct item *it = shard_new_item(sh, argv[1].ptr, argv[1].len, oldlen + argv[2].len,
                                     old ? item_expire(old) : 0);
    if (oldlen) {
        memcpy(item_val(it), item_cval(old), oldlen);
    }
    memcpy(item_val(it) + oldlen, argv[2].ptr, argv[2].len);
    shard_put(sh, it);
    prop_set(c, it);
    notify_key(c, NOTIFY_STRING, "append", argv[1].ptr, argv[1].len);
    size_t len = item_vlen(it);
    shard_unlock(sh);
    reply_int(&c->r, (int64_t)len);
}

void
cmd_strlen(struct client *c, int argc, struct proto_arg *argv)
{
    struct shard *sh = key_lock(&argv[1]);
    struct item *it = key_read(sh, &argv[1], cmd_time_ms());
    int64_t n = it ? item_vlen(it) : 0;
    shard_unlock(sh);
    reply_int(&c->r, n);
}

void
cmd_getrange(struct client *c, int argc, struct proto_arg *argv)
{
    long long start, end;
    if (!arg_to_ll(&argv[2], &start) || !arg_to_ll(&argv[3], &end)) {
        reply_error(&c->r, ERR_NOT_INT);
        return;
    }
    struct shard *sh = key_lock(&argv[1]);
    struct item *it = key_read(sh, &argv[1], cmd_time_ms());
    if (it == NULL) {
        shard_unlock(sh);
        reply_bulk(&c->r, "", 0);
        return;
    }
    long long len = item_vlen(it);
    if (start < 0 && end < 0 && start > end) {
        shard_unlock(sh);
        reply_bulk(&c->r, "", 0);
        return;
    }
    if (start < 0) {
        start = len + start;
    }
    if (end < 0) {
        end = len + end;
    }
    if (start < 0) {
        start = 0;
    }
    if (end < 0) {
        end = 0;
    }
    if (end >= len) {
        end = len - 1;
    }
    if (start > end || len == 0) {
        reply_bulk(&c->r, "", 0);
    } else {
        reply_bulk(&c->r, item_cval(it) + start, (size_t)(end - start + 1));
    }
    shard_unlock(sh);
}

void
cmd_setrange(struct client *c, int argc, struct proto_arg *argv)
{
    long long offset;
    if (!arg_to_ll(&argv[2], &offset)) {
        reply_error(&c->r, ERR_NOT_INT);
        return;
    }
    if (offset < 0) {
        reply_error(&c->r, "ERR offset is out of range");
        return;
    }
    const struct proto_arg *v = &argv[3];
    int64_t now = cmd_time_ms();
    struct shard *sh = key_lock(&argv[1]);
    struct item *old = key_write(sh, &argv[1], now);
    if (old == NULL && v->len == 0) {
        shard_unlock(sh);
        reply_int(&c->r, 0);
        return;
    }
    if (old && v->len == 0) {
        int64_t n = item_vlen(old);
        shard_unlock(sh);
        reply_int(&c->r, n);
        return;
    }
    if (!size_sum_ok(c, offset, (long long)v->len)) {
        shard_unlock(sh);
        return;
    }
    size_t oldlen = old ? item_vlen(old) : 0;
    size_t newlen = (size_t)offset + v->len;
    if (newlen < oldlen) {
        newlen = oldlen;
    }
    struct item *it = shard_new_item(sh, argv[1].ptr, argv[1].len, newlen,
                                     old ? item_expire(old) : 0);
    char *dst = item_val(it);
    if (oldlen) {
        memcpy(dst, item_cval(old), oldlen);
    }
    if ((size_t)offset > oldlen) {
        memset(dst + oldlen, 0, (size_t)offset - oldlen);
    }
    memcpy(dst + offset, v->ptr, v->len);
    shard_put(sh, it);
    prop_set(c, it);
    notify_key(c, NOTIFY_STRING, "setrange", argv[1].ptr, argv[1].len);
    shard_unlock(sh);
    reply_int(&c->r, (int64_t)newlen);
}
