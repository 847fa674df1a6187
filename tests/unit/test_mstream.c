/*
 * test_mstream.c -- the mutation stream (persist/mstream.h) as the write
 * commands feed it (cmd/keys.c prop_*) and as the store feeds it (evictions,
 * lazy and active expirations), on the server's store:
 *  - a test consumer sees every mutation of every write command, with the
 *    key's slot, the resulting state, and strictly increasing offsets;
 *  - evictions and expirations arrive as DELs with their cause;
 *  - the records, replayed in order into a fresh store through the loader
 *    (persist/load.h), give the source's keyspace item for item;
 *  - consumers come and go while worker threads write: each sees strictly
 *    increasing offsets and none is called after it was unregistered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/keys.h"
#include "core/server.h"
#include "persist/load.h"
#include "persist/mstream.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/mem.h"

/* ---- a consumer that keeps a copy of everything -------------------------- */

struct seen {
    uint8_t type, cause;
    uint16_t slot;
    uint64_t offset;
    char *key, *val;
    size_t klen, vlen;
    int64_t expire;
    size_t group; /* records delivered in the same call */
};

struct log {
    struct seen *r;
    size_t n, cap;
    size_t calls;
};

static char *
dup_bytes(const void *p, size_t n)
{
    char *d = xmalloc(n + 1);
    if (n) {
        memcpy(d, p, n);
    }
    d[n] = '\0';
    return d;
}

static int64_t
keep(void *ctx, const struct mstream_rec *recs, size_t n)
{
    struct log *l = ctx;
    l->calls++;
    for (size_t i = 0; i < n; i++) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 256;
            l->r = xrealloc(l->r, l->cap * sizeof(*l->r));
        }
        const struct wal_rec *w = &recs[i].rec;
        l->r[l->n++] = (struct seen){
            .type = (uint8_t)w->type, .cause = recs[i].cause, .slot = recs[i].slot,
            .offset = recs[i].offset, .key = dup_bytes(w->key, w->klen),
            .val = dup_bytes(w->val, w->vlen), .klen = w->klen, .vlen = w->vlen,
            .expire = w->expire_at_ms, .group = n};
    }
    return 0;
}

static void
log_free(struct log *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->r[i].key);
        free(l->r[i].val);
    }
    free(l->r);
    memset(l, 0, sizeof(*l));
}

static struct log LOG;
static int log_id;

/* ---- running commands ------------------------------------------------------ */

static struct buf out;
static struct client cli;

/* Run one command line (split on spaces) through its handler; an error
 * reply fails the test unless errors_ok. */
static void
run_cmd(const char *line, bool errors_ok)
{
    char *copy = xstrdup(line);
    struct proto_arg argv[32];
    int argc = 0;
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        assert_true(argc < 32);
        argv[argc].ptr = t;
        argv[argc].len = strlen(t);
        argc++;
    }
    const struct cmd *cmd = cmd_lookup(argv[0].ptr, argv[0].len);
    assert_non_null(cmd);
    buf_reset(&out, 0);
    cli.r.proto = REPLY_RESP2;
    cli.wal_err = 0;
    prop_begin(&cli);
    cmd->fn(&cli, argc, argv);
    prop_begin(NULL);
    if (!errors_ok && out.len && out.data[0] == '-') {
        fail_msg("%s: %.*s", line, (int)out.len, out.data);
    }
    free(copy);
}

static void
run(const char *line)
{
    run_cmd(line, false);
}

static size_t mark;

/* The records since the last call (checked and consumed by the caller). */
static struct seen *
since(size_t want)
{
    size_t got = LOG.n - mark;
    if (got != want) {
        for (size_t i = mark; i < LOG.n; i++) {
            print_message("  rec type %d cause %d key %s val %s\n", LOG.r[i].type,
                          LOG.r[i].cause, LOG.r[i].key, LOG.r[i].val);
        }
        fail_msg("expected %zu records, got %zu", want, got);
    }
    struct seen *s = &LOG.r[mark];
    mark = LOG.n;
    return s;
}

static void
is_rec(const struct seen *s, int type, const char *key, const char *val, int cause)
{
    assert_int_equal(s->type, type);
    assert_int_equal(s->cause, cause);
    if (type == WAL_REC_FLUSHALL) {
        assert_int_equal(s->slot, MSTREAM_NO_SLOT);
        return;
    }
    assert_string_equal(s->key, key);
    assert_int_equal(s->slot, slot_of(key, strlen(key)));
    if (val) {
        assert_string_equal(s->val, val);
    }
}

static void
is_set(const struct seen *s, const char *key, const char *val, bool expiring)
{
    is_rec(s, WAL_REC_SET, key, val, MSTREAM_CLIENT);
    if (expiring) {
        assert_true(s->expire > 0);
    } else {
        assert_int_equal(s->expire, 0);
    }
}

static void
is_del(const struct seen *s, const char *key, int cause)
{
    is_rec(s, WAL_REC_DEL, key, NULL, cause);
}

static void
is_expire(const struct seen *s, const char *key, bool expiring)
{
    is_rec(s, WAL_REC_EXPIRE, key, NULL, MSTREAM_CLIENT);
    if (expiring) {
        assert_true(s->expire > 0);
    } else {
        assert_int_equal(s->expire, 0);
    }
}

/* Offsets strictly increasing over the whole log, consecutive inside a
 * group (only this consumer is registered: no gaps either). */
static void
offsets_increase(const struct log *l)
{
    for (size_t i = 1; i < l->n; i++) {
        assert_int_equal(l->r[i].offset, l->r[i - 1].offset + 1);
    }
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int
setup(void **state)
{
    (void)state;
    server.store = store_create(8, 0, STORE_LRU);
    mstream_init(&server.stream, server.store);
    prop_setup();
    buf_init(&out);
    cli.r.out = &out;
    struct mstream_consumer con = {.name = "test", .accept = MSTREAM_ALL, .fn = keep, .ctx = &LOG};
    uint64_t start = 99;
    log_id = mstream_register(&server.stream, &con, &start);
    assert_true(log_id > 0);
    assert_int_equal(start, 0);
    mark = 0;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    if (log_id > 0) {
        assert_int_equal(mstream_unregister(&server.stream, log_id), 0);
        log_id = 0;
    }
    log_free(&LOG);
    mstream_deinit(&server.stream);
    store_destroy(&server.store);
    buf_deinit(&out);
    return 0;
}

/* ---- every write command -------------------------------------------------- */

static void
test_every_write_command(void **state)
{
    (void)state;
    struct seen *s;
    run("set a 1");
    is_set(since(1), "a", "1", false);
    run("set b 2 px 100000");
    is_set(since(1), "b", "2", true);
    run("set a 11 get");
    is_set(since(1), "a", "11", false);
    run("set a 12 nx"); /* exists: nothing */
    since(0);
    run("setnx a x");
    since(0);
    run("setnx c 3");
    is_set(since(1), "c", "3", false);
    run("setex d 100 4");
    is_set(since(1), "d", "4", true);
    run("psetex e 100000 5");
    is_set(since(1), "e", "5", true);
    run("getset a 6");
    is_set(since(1), "a", "6", false);
    run("get a"); /* reads report nothing */
    run("mget a b c");
    run("exists a");
    since(0);

    run("mset k1 v1 {k}2 v2");
    s = since(2);
    is_set(&s[0], "k1", "v1", false);
    is_set(&s[1], "{k}2", "v2", false);
    assert_int_equal(s[0].group, 2);
    assert_int_equal(s[1].group, 2);
    run("msetnx k3 v3 k4 v4");
    s = since(2);
    is_set(&s[0], "k3", "v3", false);
    is_set(&s[1], "k4", "v4", false);
    assert_int_equal(s[0].group, 2);
    run("msetnx k3 x k5 y"); /* k3 exists: nothing */
    since(0);

    run("incr n");
    is_set(since(1), "n", "1", false);
    run("incrby n 5");
    is_set(since(1), "n", "6", false);
    run("decr n");
    is_set(since(1), "n", "5", false);
    run("decrby n 10");
    is_set(since(1), "n", "-5", false);
    run("incrbyfloat n 1.5");
    is_set(since(1), "n", "-3.5", false);
    run("append a xy");
    is_set(since(1), "a", "6xy", false);
    run("append newkey z");
    is_set(since(1), "newkey", "z", false);
    run("setrange a 1 Z");
    is_set(since(1), "a", "6Zy", false);
    run("setbit bits 7 1");
    is_set(since(1), "bits", "\x01", false);
    run("setbit bits 7 1"); /* no change */
    since(0);

    run("expire a 100");
    is_expire(since(1), "a", true);
    run("pexpire a 200000");
    is_expire(since(1), "a", true);
    run("expireat a 99999999999");
    is_expire(since(1), "a", true);
    run("pexpireat a 99999999999000");
    is_expire(since(1), "a", true);
    run("persist a");
    is_expire(since(1), "a", false);
    run("persist a"); /* no TTL: nothing */
    since(0);
    run("expire c -1"); /* in the past: the key goes */
    is_del(since(1), "c", MSTREAM_CLIENT);

    run("getex b px 5000");
    is_expire(since(1), "b", true);
    run("getex b persist");
    is_expire(since(1), "b", false);
    run("getex b");
    since(0);
    run("getex b exat 1");
    is_del(since(1), "b", MSTREAM_CLIENT);
    run("getdel d");
    is_del(since(1), "d", MSTREAM_CLIENT);
    run("getdel d");
    since(0);

    run("del k1 nokey {k}2");
    s = since(2);
    is_del(&s[0], "k1", MSTREAM_CLIENT);
    is_del(&s[1], "{k}2", MSTREAM_CLIENT);
    run("unlink k4");
    is_del(since(1), "k4", MSTREAM_CLIENT);

    run("rename k3 r3");
    s = since(2);
    is_set(&s[0], "r3", "v3", false);
    is_del(&s[1], "k3", MSTREAM_CLIENT);
    assert_int_equal(s[0].group, 2);
    run("renamenx r3 e"); /* e exists: nothing */
    since(0);
    run("renamenx r3 r4");
    s = since(2);
    is_set(&s[0], "r4", "v3", false);
    is_del(&s[1], "r3", MSTREAM_CLIENT);
    run("copy r4 cp");
    is_set(since(1), "cp", "v3", false);
    run("copy r4 cp"); /* exists, no REPLACE */
    since(0);
    run("copy a cp replace");
    is_set(since(1), "cp", "6Zy", false);

    run("flushall");
    is_rec(since(1), WAL_REC_FLUSHALL, NULL, NULL, MSTREAM_CLIENT);
    run("flushdb");
    is_rec(since(1), WAL_REC_FLUSHALL, NULL, NULL, MSTREAM_CLIENT);
    assert_int_equal(store_count(server.store), 0);

    offsets_increase(&LOG);
    assert_int_equal(LOG.r[0].offset, 1);
    struct mstream_stats st;
    mstream_stats(&server.stream, &st);
    assert_int_equal(st.offset, LOG.r[LOG.n - 1].offset);
    assert_int_equal(st.offset, LOG.n); /* only one consumer: it saw every record */
    assert_int_equal(st.consumers, 1);
}

/* ---- the store's own removals ---------------------------------------------- */

static void
test_expirations_are_deletes(void **state)
{
    (void)state;
    struct seen *s;
    run("set lazy v px 1");
    run("set gone v px 1");
    run("set act1 v px 1");
    run("set act2 v px 1");
    run("set stays v px 100000");
    since(5);
    sleep_ms(5);
    /* lazy: a read finds it expired */
    run("get lazy");
    is_del(since(1), "lazy", MSTREAM_EXPIRED);
    /* a DEL of a key whose time is up deletes nothing it can count */
    run("del gone");
    is_del(since(1), "gone", MSTREAM_EXPIRED);
    /* a write over an expired key: the lookup drops it first */
    run("set act2 v px 1");
    sleep_ms(5);
    run("incr act2");
    s = since(3);
    is_set(&s[0], "act2", "v", true);
    is_del(&s[1], "act2", MSTREAM_EXPIRED);
    is_set(&s[2], "act2", "1", false);
    /* active: the cron */
    size_t removed = 0;
    for (unsigned i = 0; i < server.store->nshards; i++) {
        removed += store_cron(server.store, i, 1000, clock_ms());
    }
    assert_int_equal(removed, 1);
    is_del(since(1), "act1", MSTREAM_EXPIRED);
    assert_int_equal(store_expired_total(server.store), 4);
    offsets_increase(&LOG);
}

static void
test_evictions_are_deletes(void **state)
{
    (void)state;
    char line[64];
    /* what dispatch does before a write that may add memory */
    store_set_max_memory(server.store, 64 * 1024);
    for (int i = 0; i < 4000; i++) {
        snprintf(line, sizeof(line), "set key:%d value-%d", i, i);
        assert_true(store_make_room(server.store));
        run(line);
    }
    uint64_t evicted = store_evicted_total(server.store);
    assert_true(evicted > 1000);
    struct seen *s = since(4000 + evicted);
    size_t dels = 0;
    for (uint64_t i = 0; i < 4000 + evicted; i++) {
        if (s[i].type == WAL_REC_SET) {
            assert_int_equal(s[i].cause, MSTREAM_CLIENT);
            continue;
        }
        dels++;
        assert_int_equal(s[i].type, WAL_REC_DEL);
        assert_int_equal(s[i].cause, MSTREAM_EVICTED);
        assert_int_equal(s[i].slot, slot_of(s[i].key, s[i].klen));
        /* it is gone (every key is written once) */
        struct proto_arg k = {s[i].key, s[i].klen};
        struct shard *sh = key_lock(&k);
        assert_null(shard_find(sh, k.ptr, k.len, clock_ms()));
        shard_unlock(sh);
    }
    assert_int_equal(dels, evicted);
    assert_int_equal(store_count(server.store), 4000 - evicted);
    offsets_increase(&LOG);
}

/* A consumer takes only the causes it asked for, and with nobody taking a
 * cause no offset is spent on it. */
static void
test_accept_masks(void **state)
{
    (void)state;
    struct log only_client = {0};
    struct mstream_consumer con = {
        .name = "client-only", .accept = MSTREAM_CLIENT, .fn = keep, .ctx = &only_client};
    uint64_t start;
    int id = mstream_register(&server.stream, &con, &start);
    assert_true(id > 0);
    run("set x v px 1");
    sleep_ms(5);
    run("get x");
    since(2);
    assert_int_equal(only_client.n, 1);
    assert_int_equal(only_client.r[0].offset, start + 1);
    assert_int_equal(mstream_unregister(&server.stream, log_id), 0);
    log_id = 0;
    assert_false(mstream_wants(&server.stream, MSTREAM_EXPIRED));
    assert_true(mstream_wants(&server.stream, MSTREAM_CLIENT));
    run("set y v px 1");
    sleep_ms(5);
    run("get y"); /* its expiry reaches nobody and takes no offset */
    assert_int_equal(only_client.n, 2);
    assert_int_equal(only_client.r[1].offset, start + 3);
    assert_int_equal(mstream_unregister(&server.stream, id), 0);
    assert_int_equal(mstream_unregister(&server.stream, id), -ENOENT);
    assert_false(mstream_wants(&server.stream, MSTREAM_ALL));
    run("set z v");
    assert_int_equal(only_client.n, 2);
    struct mstream_consumer bad = {.name = "bad", .accept = 0, .fn = keep};
    assert_int_equal(mstream_register(&server.stream, &bad, NULL), -EINVAL);
    log_free(&only_client);
}

/* A consumer that needs neither order nor slots, alone, gets no slots; one
 * that needs them brings them back for both. */
static void
test_flags(void **state)
{
    (void)state;
    assert_int_equal(mstream_unregister(&server.stream, log_id), 0);
    log_id = 0;
    struct log lean = {0};
    struct mstream_consumer con = {.name = "lean", .accept = MSTREAM_CLIENT,
                                   .flags = MSTREAM_UNORDERED | MSTREAM_NO_SLOTS,
                                   .fn = keep, .ctx = &lean};
    int id = mstream_register(&server.stream, &con, NULL);
    assert_false(server.stream.ordered);
    run("set a 1");
    run("mset b 2 c 3");
    assert_int_equal(lean.n, 3);
    assert_int_equal(lean.r[0].slot, MSTREAM_NO_SLOT);
    assert_int_equal(lean.r[2].offset, lean.r[1].offset + 1);
    struct log full = {0};
    struct mstream_consumer con2 = {.name = "full", .accept = MSTREAM_CLIENT, .fn = keep,
                                    .ctx = &full};
    int id2 = mstream_register(&server.stream, &con2, NULL);
    assert_true(server.stream.ordered);
    run("set d 4");
    assert_int_equal(lean.n, 4);
    assert_int_equal(full.n, 1);
    assert_int_equal(lean.r[3].slot, slot_of("d", 1));
    assert_int_equal(full.r[0].offset, lean.r[3].offset);
    assert_int_equal(mstream_unregister(&server.stream, id2), 0);
    assert_false(server.stream.ordered);
    run("set e 5");
    assert_int_equal(lean.r[4].slot, MSTREAM_NO_SLOT);
    assert_int_equal(mstream_unregister(&server.stream, id), 0);
    log_free(&lean);
    log_free(&full);
}

/* ---- replaying the stream gives the same keyspace --------------------------- */

struct snap_item {
    char *key, *val;
    size_t klen, vlen;
    int64_t expire;
};

struct snap {
    struct snap_item *it;
    size_t n, cap;
};

static void
snap_visit(struct item *it, void *ctx)
{
    struct snap *s = ctx;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->it = xrealloc(s->it, s->cap * sizeof(*s->it));
    }
    s->it[s->n++] = (struct snap_item){dup_bytes(item_key(it), item_klen(it)),
                                       dup_bytes(item_cval(it), item_vlen(it)), item_klen(it),
                                       item_vlen(it), item_expire(it)};
}

static int
snap_cmp(const void *a, const void *b)
{
    const struct snap_item *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* Every item in st (expired ones not yet reclaimed included), by key. */
static void
snap_take(struct store *st, struct snap *s)
{
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        size_t c = 0;
        do {
            c = shard_scan(sh, c, snap_visit, s);
        } while (c != 0);
        shard_unlock(sh);
    }
    qsort(s->it, s->n, sizeof(*s->it), snap_cmp);
}

static void
snap_free(struct snap *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->it[i].key);
        free(s->it[i].val);
    }
    free(s->it);
}

static void
snap_equal(struct store *a, struct store *b)
{
    struct snap x, y;
    snap_take(a, &x);
    snap_take(b, &y);
    assert_int_equal(x.n, y.n);
    for (size_t i = 0; i < x.n; i++) {
        assert_int_equal(x.it[i].klen, y.it[i].klen);
        assert_memory_equal(x.it[i].key, y.it[i].key, x.it[i].klen);
        assert_int_equal(x.it[i].vlen, y.it[i].vlen);
        assert_memory_equal(x.it[i].val, y.it[i].val, x.it[i].vlen);
        assert_int_equal(x.it[i].expire, y.it[i].expire);
    }
    snap_free(&x);
    snap_free(&y);
}

static void
replay(const struct log *l, struct loader *ld)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct seen *s = &l->r[i];
        struct wal_rec r = {.type = s->type, .key = s->key, .klen = s->klen, .val = s->val,
                            .vlen = s->vlen, .expire_at_ms = s->expire};
        loader_add(ld, &r);
    }
    loader_drain(ld);
}

static void
test_replay_gives_same_keyspace(void **state)
{
    (void)state;
    /* a source that holds data before the consumer joins: the copy starts
     * from the same state, as a vbucket copy starts from its snapshot */
    char line[400];
    for (int i = 0; i < 300; i++) {
        snprintf(line, sizeof(line), "set pre:%d before-%d", i, i);
        run(line);
    }
    struct store *copy[2] = {store_create(4, 0, STORE_LRU), store_create(8, 0, STORE_LRU)};
    for (int c = 0; c < 2; c++) {
        struct loader *ld = loader_create(copy[c], 0);
        replay(&LOG, ld);
        loader_destroy(&ld);
    }
    assert_int_equal(mstream_unregister(&server.stream, log_id), 0);
    log_free(&LOG);
    struct mstream_consumer con = {.name = "copy", .accept = MSTREAM_ALL, .fn = keep, .ctx = &LOG};
    uint64_t start;
    log_id = mstream_register(&server.stream, &con, &start);
    assert_int_equal(start, 300);

    uint64_t x = 12345;
    /* room for about half of what the workload writes: evictions */
    store_set_max_memory(server.store, store_memory_exact(server.store) + 16 * 1024);
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        unsigned k = (unsigned)(x >> 33) % 600, k2 = (unsigned)(x >> 45) % 600;
        if (k2 == k) {
            k2 = (k + 1) % 600; /* COPY refuses a key onto itself */
        }
        unsigned op = (unsigned)(x >> 20) % 23;
        switch (op) {
        case 0: case 1: case 2: case 3:
            snprintf(line, sizeof(line), "set k%u v%d-%u", k, i, k2);
            break;
        case 4:
            snprintf(line, sizeof(line), "set k%u short%d px %u", k, i, 1 + k2 % 4);
            break;
        case 5:
            snprintf(line, sizeof(line), "set k%u long%d ex 1000", k, i);
            break;
        case 6:
            snprintf(line, sizeof(line), "del k%u k%u", k, k2);
            break;
        case 7:
            snprintf(line, sizeof(line), "pexpire k%u %u", k, 1 + k2 % 3);
            break;
        case 8:
            snprintf(line, sizeof(line), "persist k%u", k);
            break;
        case 9:
            snprintf(line, sizeof(line), "incr n%u", k % 50);
            break;
        case 10:
            snprintf(line, sizeof(line), "append k%u +%u", k, k2);
            break;
        case 11:
            snprintf(line, sizeof(line), "mset k%u m%d k%u m%d", k, i, k2, i);
            break;
        case 12:
            snprintf(line, sizeof(line), "copy k%u k%u replace", k, k2);
            break;
        case 13:
            snprintf(line, sizeof(line), "getdel k%u", k);
            break;
        case 14:
            snprintf(line, sizeof(line), "getex k%u px %u", k, 2 + k2);
            break;
        case 15:
            snprintf(line, sizeof(line), "setrange k%u %u r", k, k2 % 5);
            break;
        case 16:
            snprintf(line, sizeof(line), "get k%u", k);
            break;
        case 17:
            snprintf(line, sizeof(line), "setbit b%u %u 1", k % 40, k2);
            break;
        case 18:
            snprintf(line, sizeof(line), "set big%u %0*d", k % 30, 100 + (int)(k2 % 200), i);
            break;
        case 19:
            snprintf(line, sizeof(line), "expire k%u -1", k);
            break;
        default:
            /* its source may be missing (or have expired): an error then */
            snprintf(line, sizeof(line), "rename k%u k%u", k, k2);
            break;
        }
        if (i == 9000) {
            snprintf(line, sizeof(line), "flushall");
        }
        if (i % 64 == 0) {
            /* what a worker does between requests */
            store_make_room(server.store);
            store_evict_step(server.store);
        }
        if (i % 1000 == 999) {
            sleep_ms(2);
            for (unsigned s = 0; s < server.store->nshards; s++) {
                store_cron(server.store, s, 64, clock_ms());
            }
        }
        run_cmd(line, true);
    }
    print_message("evicted %llu expired %llu records %zu keys %zu\n",
                  (unsigned long long)store_evicted_total(server.store),
                  (unsigned long long)store_expired_total(server.store), LOG.n,
                  store_count(server.store));
    assert_true(store_evicted_total(server.store) > 100);
    assert_true(store_expired_total(server.store) > 100);
    size_t evicted = 0, expired = 0;
    for (size_t i = 0; i < LOG.n; i++) {
        evicted += LOG.r[i].cause == MSTREAM_EVICTED;
        expired += LOG.r[i].cause == MSTREAM_EXPIRED;
    }
    assert_int_equal(evicted, store_evicted_total(server.store));
    assert_true(expired > 100);
    offsets_increase(&LOG);
    assert_int_equal(LOG.r[0].offset, start + 1);

    /* one copy applied record by record, one through three appliers */
    struct loader *ld = loader_create(copy[0], 0);
    replay(&LOG, ld);
    loader_destroy(&ld);
    ld = loader_create(copy[1], 3);
    replay(&LOG, ld);
    loader_destroy(&ld);
    snap_equal(server.store, copy[0]);
    snap_equal(server.store, copy[1]);
    store_destroy(&copy[0]);
    store_destroy(&copy[1]);
}

/* ---- consumers that come and go under load ------------------------------- */

struct watcher {
    _Atomic bool gone;      /* set once unregister returned */
    _Atomic uint64_t late;  /* calls after that */
    uint64_t last, backwards, seen;
};

static int64_t
watch(void *ctx, const struct mstream_rec *recs, size_t n)
{
    struct watcher *w = ctx;
    if (atomic_load(&w->gone)) {
        atomic_fetch_add(&w->late, 1);
    }
    for (size_t i = 0; i < n; i++) {
        if (recs[i].offset <= w->last) {
            w->backwards++;
        }
        w->last = recs[i].offset;
        w->seen++;
    }
    return 0;
}

static _Atomic bool writers_stop;

static void *
writer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    struct client c = {0};
    struct buf b;
    buf_init(&b);
    c.r.out = &b;
    c.r.proto = REPLY_RESP2;
    char key[32];
    for (unsigned i = 0; !atomic_load(&writers_stop); i++) {
        snprintf(key, sizeof(key), "w%u:%u", id, i % 5000);
        struct proto_arg argv[3] = {{"set", 3}, {key, strlen(key)}, {"v", 1}};
        buf_reset(&b, 0);
        cmd_lookup("set", 3)->fn(&c, 3, argv);
        if (i % 7 == 0) {
            struct proto_arg d[2] = {{"del", 3}, {key, strlen(key)}};
            cmd_lookup("del", 3)->fn(&c, 2, d);
        }
    }
    buf_deinit(&b);
    return NULL;
}

static void
test_register_under_load(void **state)
{
    (void)state;
    pthread_t t[2];
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)(uintptr_t)i), 0);
    }
    uint64_t total = 0;
    for (int round = 0; round < 40; round++) {
        struct watcher w = {0};
        struct mstream_consumer con = {.name = "watch", .accept = MSTREAM_CLIENT, .fn = watch,
                                       .ctx = &w};
        uint64_t start;
        int id = mstream_register(&server.stream, &con, &start);
        assert_true(id > 0);
        w.last = start;
        sleep_ms(2);
        assert_int_equal(mstream_unregister(&server.stream, id), 0);
        atomic_store(&w.gone, true);
        sleep_ms(1);
        assert_int_equal(atomic_load(&w.late), 0);
        assert_int_equal(w.backwards, 0);
        total += w.seen;
    }
    atomic_store(&writers_stop, true);
    for (unsigned i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    assert_true(total > 0);
    /* the long-lived consumer saw the same records in the same order */
    offsets_increase(&LOG);
    struct mstream_stats st;
    mstream_stats(&server.stream, &st);
    assert_int_equal(st.offset, LOG.r[LOG.n - 1].offset);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_write_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expirations_are_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evictions_are_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_masks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_gives_same_keyspace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_under_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
