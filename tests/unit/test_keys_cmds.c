/*
 * test_keys_cmds.c -- unit tests of the keyspace and bit/LCS command
 * handlers (t_keys.c, t_bits.c), called directly on a real sharded store.
 *
 * run() splits a command line on spaces ('' stands for an empty argument),
 * calls the handler and returns the raw reply bytes, which are compared with
 * what redis-server 7.0.15 replied to the same command (observed with raw
 * sockets, RESP2 unless stated).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/keys.h"
#include "core/server.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/mem.h"

static const struct {
    const char *name;
    cmd_fn *fn;
} handlers[] = {
    {"del", cmd_del}, {"unlink", cmd_del}, {"exists", cmd_exists}, {"touch", cmd_touch},
    {"expire", cmd_expire}, {"pexpire", cmd_pexpire}, {"expireat", cmd_expireat},
    {"pexpireat", cmd_pexpireat}, {"ttl", cmd_ttl}, {"pttl", cmd_pttl},
    {"expiretime", cmd_expiretime}, {"pexpiretime", cmd_pexpiretime},
    {"persist", cmd_persist}, {"type", cmd_type}, {"keys", cmd_keys}, {"scan", cmd_scan},
    {"dbsize", cmd_dbsize}, {"flushall", cmd_flushall}, {"flushdb", cmd_flushall},
    {"rename", cmd_rename}, {"renamenx", cmd_renamenx}, {"randomkey", cmd_randomkey},
    {"copy", cmd_copy}, {"setbit", cmd_setbit}, {"getbit", cmd_getbit},
    {"bitcount", cmd_bitcount}, {"lcs", cmd_lcs},
};

static struct buf out;
static struct client cli;
static char *last;

/* Run one command line with the given protocol; returns the reply bytes
 * (valid until the next call). */
static const char *
run_proto(int proto, const char *line)
{
    char *copy = xstrdup(line);
    struct proto_arg argv[32];
    int argc = 0;
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        assert_true(argc < 32);
        if (strcmp(t, "''") == 0) {
            t[0] = '\0';
        }
        argv[argc].ptr = t;
        argv[argc].len = strlen(t);
        argc++;
    }
    cmd_fn *fn = NULL;
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
        if (strlen(handlers[i].name) == argv[0].len &&
            strncasecmp(handlers[i].name, argv[0].ptr, argv[0].len) == 0) {
            fn = handlers[i].fn;
        }
    }
    assert_non_null(fn);
    buf_reset(&out, 0);
    cli.r.proto = proto;
    fn(&cli, argc, argv);
    free(last);
    last = xstrndup(out.data, out.len);
    free(copy);
    return last;
}

static const char *
run(const char *line)
{
    return run_proto(REPLY_RESP2, line);
}

/* Store a key directly (value, absolute expiry in ms or 0). */
static void
put(const char *key, const char *val, int64_t expire)
{
    struct proto_arg k = {key, strlen(key)};
    struct shard *sh = key_lock(&k);
    key_set(sh, &k, val, strlen(val), expire);
    shard_unlock(sh);
}

/* The value of a key, or NULL (copy valid until the next call). */
static const char *
value(const char *key)
{
    static char *v;
    struct proto_arg k = {key, strlen(key)};
    struct shard *sh = key_lock(&k);
    struct item *it = shard_find(sh, k.ptr, k.len, clock_ms());
    free(v);
    v = it ? xstrndup(item_cval(it), item_vlen(it)) : NULL;
    shard_unlock(sh);
    return v;
}

static int
setup(void **state)
{
    (void)state;
    server.store = store_create(8, 0, STORE_NOEVICTION);
    buf_init(&out);
    cli.r.out = &out;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    store_destroy(&server.store);
    buf_deinit(&out);
    free(last);
    last = NULL;
    return 0;
}

static void
test_del_exists_touch(void **state)
{
    (void)state;
    put("a", "1", 0);
    put("b", "2", 0);
    assert_string_equal(run("exists a b nokey a a"), ":4\r\n");
    assert_string_equal(run("touch a nokey b"), ":2\r\n");
    assert_string_equal(run("del a a nokey"), ":1\r\n");
    assert_string_equal(run("unlink b"), ":1\r\n");
    assert_string_equal(run("exists a b"), ":0\r\n");
    /* A key whose time is up is gone for every command. */
    put("old", "v", clock_ms() - 1);
    assert_string_equal(run("exists old"), ":0\r\n");
    assert_string_equal(run("del old"), ":0\r\n");
}

static void
test_expire_options(void **state)
{
    (void)state;
    put("k", "v", 0);
    assert_string_equal(run("expire k 100 nx xx"),
                        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    assert_string_equal(run("expire k 100 nx lt"),
                        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    assert_string_equal(run("expire k 100 gt lt"),
                        "-ERR GT and LT options at the same time are not compatible\r\n");
    assert_string_equal(run("expire k 100 NX foo"), "-ERR Unsupported option foo\r\n");
    /* Options are checked before the time, the time before the key. */
    assert_string_equal(run("expire k abc foo"), "-ERR Unsupported option foo\r\n");
    assert_string_equal(run("expire nokey abc"),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run("expire nokey 100"), ":0\r\n");

    assert_string_equal(run("expire k 100 xx"), ":0\r\n");  /* no TTL yet */
    assert_string_equal(run("expire k 100 gt"), ":0\r\n");  /* none = infinite */
    assert_string_equal(run("expire k 100 nx"), ":1\r\n");
    assert_string_equal(run("expire k 100 nx"), ":0\r\n");
    assert_string_equal(run("ttl k"), ":100\r\n");
    assert_string_equal(run("expire k 200 gt"), ":1\r\n");
    assert_string_equal(run("expire k 150 gt"), ":0\r\n");
    assert_string_equal(run("expire k 150 lt"), ":1\r\n");
    assert_string_equal(run("expire k 300 lt"), ":0\r\n");
    assert_string_equal(run("expire k 300 xx"), ":1\r\n");
    assert_string_equal(run("ttl k"), ":300\r\n");
    assert_string_equal(run("persist k"), ":1\r\n");
    assert_string_equal(run("persist k"), ":0\r\n");
    assert_string_equal(run("ttl k"), ":-1\r\n");
    /* LT on a key without TTL sets it. */
    assert_string_equal(run("pexpire k 100000 lt"), ":1\r\n");
    assert_string_equal(run("ttl k"), ":100\r\n");
}

/* Option words are compared as C strings, as Redis's strcasecmp does. */
static void
test_option_with_nul(void **state)
{
    (void)state;
    put("k", "v", 0);
    struct proto_arg argv[4] = {{"expire", 6}, {"k", 1}, {"100", 3}, {"nx\0junk", 7}};
    buf_reset(&out, 0);
    cli.r.proto = REPLY_RESP2;
    cmd_expire(&cli, 4, argv);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, ":1\r\n", 4);
    argv[3] = (struct proto_arg){"bad\0junk", 8};
    buf_reset(&out, 0);
    cmd_expire(&cli, 4, argv);
    const char *want = "-ERR Unsupported option bad\r\n";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, strlen(want));
}

static void
test_expire_overflow_and_past(void **state)
{
    (void)state;
    put("k", "v", 0);
    assert_string_equal(run("expire k 9223372036854775807"),
                        "-ERR invalid expire time in 'expire' command\r\n");
    assert_string_equal(run("expire k -9223372036854775808"),
                        "-ERR invalid expire time in 'expire' command\r\n");
    assert_string_equal(run("pexpire k 9223372036854775807"),
                        "-ERR invalid expire time in 'pexpire' command\r\n");
    assert_string_equal(run("expireat k 9223372036854775807"),
                        "-ERR invalid expire time in 'expireat' command\r\n");
    assert_string_equal(run("pexpireat k 9223372036854775807"), ":1\r\n");
    assert_string_equal(run("pexpiretime k"), ":9223372036854775807\r\n");
    assert_string_equal(run("expiretime k"), ":9223372036854776\r\n");
    assert_string_equal(run("pexpireat k 9223372036854775500"), ":1\r\n");
    assert_string_equal(run("expiretime k"), ":9223372036854776\r\n");

    /* A deadline in the past deletes the key and answers 1. */
    assert_string_equal(run("expire k 0"), ":1\r\n");
    assert_string_equal(run("exists k"), ":0\r\n");
    put("k", "v", 0);
    assert_string_equal(run("pexpire k -9223372036854775807"), ":1\r\n");
    assert_string_equal(run("exists k"), ":0\r\n");
    put("k", "v", 0);
    assert_string_equal(run("expireat k 1"), ":1\r\n");
    assert_string_equal(run("ttl k"), ":-2\r\n");
    /* GT with a past time on a key with a TTL fails the GT check. */
    put("k", "v", clock_ms() + 100000);
    assert_string_equal(run("expire k -1 gt"), ":0\r\n");
    assert_string_equal(run("expire k -1 lt"), ":1\r\n");
    assert_string_equal(run("exists k"), ":0\r\n");
}

static void
test_ttl_family(void **state)
{
    (void)state;
    assert_string_equal(run("ttl nokey"), ":-2\r\n");
    assert_string_equal(run("pttl nokey"), ":-2\r\n");
    assert_string_equal(run("expiretime nokey"), ":-2\r\n");
    assert_string_equal(run("pexpiretime nokey"), ":-2\r\n");
    put("p", "v", 0);
    assert_string_equal(run("pttl p"), ":-1\r\n");
    assert_string_equal(run("expiretime p"), ":-1\r\n");
    put("t", "v", 1700000000123);
    /* Already past: gone. */
    assert_string_equal(run("pexpiretime t"), ":-2\r\n");
    int64_t at = clock_ms() + 3600 * 1000 + 499;
    put("t", "v", at);
    char want[64];
    snprintf(want, sizeof(want), ":%lld\r\n", (long long)at);
    assert_string_equal(run("pexpiretime t"), want);
    snprintf(want, sizeof(want), ":%lld\r\n", (long long)(at / 1000 + (at % 1000 >= 500)));
    assert_string_equal(run("expiretime t"), want);
    assert_string_equal(run("ttl t"), ":3600\r\n");
    assert_string_equal(run("type t"), "+string\r\n");
    assert_string_equal(run("type nokey"), "+none\r\n");
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted multi-bulk elements of a flat array reply, joined by ','. */
static char *
sorted_elems(const char *reply, const char **rest)
{
    const char *p = reply;
    assert_int_equal(*p, '*');
    long n = strtol(p + 1, (char **)&p, 10);
    p += 2;
    char **v = xcalloc((size_t)n + 1, sizeof(*v));
    for (long i = 0; i < n; i++) {
        assert_int_equal(*p, '$');
        long len = strtol(p + 1, (char **)&p, 10);
        p += 2;
        v[i] = xstrndup(p, (size_t)len);
        p += len + 2;
    }
    qsort(v, (size_t)n, sizeof(*v), cmp_str);
    struct buf b;
    buf_init(&b);
    for (long i = 0; i < n; i++) {
        buf_appendstr(&b, v[i]);
        buf_appendc(&b, ',');
        free(v[i]);
    }
    buf_appendc(&b, '\0');
    free(v);
    if (rest) {
        *rest = p;
    }
    return b.data;
}

static void
test_keys_and_dbsize(void **state)
{
    (void)state;
    assert_string_equal(run("keys *"), "*0\r\n");
    put("a", "1", 0);
    put("b", "1", 0);
    put("abc", "1", 0);
    put("x1", "1", 0);
    put("gone", "1", clock_ms() - 10);
    char *s = sorted_elems(run("keys *"), NULL);
    assert_string_equal(s, "a,abc,b,x1,");
    free(s);
    s = sorted_elems(run("keys a*"), NULL);
    assert_string_equal(s, "a,abc,");
    free(s);
    s = sorted_elems(run("keys [ab]"), NULL);
    assert_string_equal(s, "a,b,");
    free(s);
    assert_string_equal(run("keys ?1"), "*1\r\n$2\r\nx1\r\n");
    /* DBSIZE counts keys still in memory, expired or not (as Redis). */
    assert_string_equal(run("dbsize"), ":5\r\n");
}

static void
test_scan(void **state)
{
    (void)state;
    assert_string_equal(run("scan 0x10"), "-ERR invalid cursor\r\n");
    assert_string_equal(run("scan 18446744073709551616"), "-ERR invalid cursor\r\n");
    assert_string_equal(run("scan +"), "-ERR invalid cursor\r\n");
    assert_string_equal(run("scan 0 count 0"), "-ERR syntax error\r\n");
    assert_string_equal(run("scan 0 count abc"),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run("scan 0 count"), "-ERR syntax error\r\n");
    assert_string_equal(run("scan 0 foo bar"), "-ERR syntax error\r\n");
    assert_string_equal(run("scan ''"), "*2\r\n$1\r\n0\r\n*0\r\n");

    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        put(key, "v", 0);
    }
    put("dead", "v", clock_ms() - 1);
    /* A full iteration returns every live key exactly once (no resize in
     * between), in pieces of about COUNT. */
    char *seen = xcalloc(1000, 1);
    char cursor[32] = "0";
    int calls = 0, total = 0;
    do {
        char line[128];
        snprintf(line, sizeof(line), "scan %s count 50 match key:*", cursor);
        const char *p = run(line);
        assert_memory_equal(p, "*2\r\n$", 5);
        long clen = strtol(p + 5, (char **)&p, 10);
        p += 2;
        memcpy(cursor, p, (size_t)clen);
        cursor[clen] = '\0';
        p += clen + 2;
        long n = strtol(p + 1, (char **)&p, 10);
        p += 2;
        for (long i = 0; i < n; i++) {
            long len = strtol(p + 1, (char **)&p, 10);
            p += 2;
            assert_memory_equal(p, "key:", 4);
            int id = atoi(p + 4);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
            total++;
            p += len + 2;
        }
        calls++;
    } while (strcmp(cursor, "0") != 0);
    assert_int_equal(total, 1000);
    assert_true(calls > 5 && calls < 200);
    free(seen);

    /* TYPE compares case-insensitively with "string"; other names match nothing. */
    const char *rest;
    char *s = sorted_elems(strchr(run("scan 0 count 100000 type STRING match key:99*") + 4,
                                  '*'), &rest);
    assert_string_equal(s, "key:99,key:990,key:991,key:992,key:993,key:994,key:995,key:996,"
                           "key:997,key:998,key:999,");
    free(s);
    assert_string_equal(run("scan 0 count 100000 type foo"), "*2\r\n$1\r\n0\r\n*0\r\n");
    assert_string_equal(run("scan 0 count 100000 type none"), "*2\r\n$1\r\n0\r\n*0\r\n");
}

static void
test_flush_and_randomkey(void **state)
{
    (void)state;
    assert_string_equal(run("randomkey"), "$-1\r\n");
    assert_string_equal(run_proto(REPLY_RESP3, "randomkey"), "_\r\n");
    put("only", "v", 0);
    assert_string_equal(run("randomkey"), "$4\r\nonly\r\n");
    assert_string_equal(run("flushall foo"), "-ERR syntax error\r\n");
    assert_string_equal(run("flushall sync sync"), "-ERR syntax error\r\n");
    assert_string_equal(run("dbsize"), ":1\r\n");
    assert_string_equal(run("flushall ASYNC"), "+OK\r\n");
    assert_string_equal(run("dbsize"), ":0\r\n");
    put("x", "v", 0);
    assert_string_equal(run("flushdb sync"), "+OK\r\n");
    assert_string_equal(run("flushdb"), "+OK\r\n");
    assert_string_equal(run("dbsize"), ":0\r\n");
}

static void
test_rename_copy(void **state)
{
    (void)state;
    assert_string_equal(run("rename nokey nokey"), "-ERR no such key\r\n");
    assert_string_equal(run("renamenx nokey b"), "-ERR no such key\r\n");
    int64_t at = clock_ms() + 1000000;
    put("a", "va", at);
    assert_string_equal(run("rename a a"), "+OK\r\n");
    assert_string_equal(run("renamenx a a"), ":0\r\n");
    /* Across shards (8 shards: some of these pairs are in different ones). */
    const char *names[] = {"b", "c", "d", "e", "f", "g", "h", "i"};
    const char *from = "a";
    for (size_t i = 0; i < 8; i++) {
        char line[64];
        snprintf(line, sizeof(line), "rename %s %s", from, names[i]);
        assert_string_equal(run(line), "+OK\r\n");
        assert_null(value(from));
        assert_string_equal(value(names[i]), "va");
        from = names[i];
    }
    char want[64];
    snprintf(want, sizeof(want), ":%lld\r\n", (long long)at);
    assert_string_equal(run("pexpiretime i"), want);
    put("z", "vz", 0);
    assert_string_equal(run("renamenx i z"), ":0\r\n");
    assert_string_equal(run("rename i z"), "+OK\r\n");
    assert_string_equal(value("z"), "va");
    assert_string_equal(run("pexpiretime z"), want);
    put("q", "vq", 0);
    assert_string_equal(run("rename q z"), "+OK\r\n");
    assert_string_equal(run("ttl z"), ":-1\r\n");
    assert_string_equal(run("renamenx z fresh"), ":1\r\n");

    /* COPY: options first, then same-key, then the lookups. */
    assert_string_equal(run("copy fresh fresh"),
                        "-ERR source and destination objects are the same\r\n");
    assert_string_equal(run("copy nokey x db 1"), "-ERR DB index is out of range\r\n");
    assert_string_equal(run("copy nokey x db -1"), "-ERR DB index is out of range\r\n");
    assert_string_equal(run("copy nokey x db x"),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run("copy nokey x db 99999999999"),
                        "-ERR value is out of range, value must between -2147483648 and "
                        "2147483647\r\n");
    assert_string_equal(run("copy nokey x db"), "-ERR syntax error\r\n");
    assert_string_equal(run("copy nokey x foo"), "-ERR syntax error\r\n");
    assert_string_equal(run("copy nokey x"), ":0\r\n");
    assert_string_equal(run("copy fresh c2"), ":1\r\n");
    assert_string_equal(value("c2"), "vq");
    put("src", "vs", at);
    assert_string_equal(run("copy src c2"), ":0\r\n");
    assert_string_equal(run("copy src c2 db 0 replace"), ":1\r\n");
    assert_string_equal(value("c2"), "vs");
    assert_string_equal(run("pexpiretime c2"), want);
    assert_string_equal(value("src"), "vs");
}

static void
test_setbit_getbit(void **state)
{
    (void)state;
    const char *off_err = "-ERR bit offset is not an integer or out of range\r\n";
    const char *bit_err = "-ERR bit is not an integer or out of range\r\n";
    assert_string_equal(run("setbit b 4294967296 1"), off_err);
    assert_string_equal(run("setbit b -1 1"), off_err);
    assert_string_equal(run("setbit b 01 1"), off_err);
    assert_string_equal(run("setbit b x y"), off_err);
    assert_string_equal(run("setbit b 1 2"), bit_err);
    assert_string_equal(run("setbit b 1 -1"), bit_err);
    assert_string_equal(run("setbit b 1 ''"), bit_err);
    assert_string_equal(run("getbit nokey x"), off_err);
    assert_string_equal(run("getbit nokey 4294967296"), off_err);
    assert_string_equal(run("getbit nokey 4294967295"), ":0\r\n");

    assert_string_equal(run("setbit b 7 1"), ":0\r\n");
    assert_string_equal(run("setbit b 7 1"), ":1\r\n");
    assert_string_equal(value("b"), "\x01");
    assert_string_equal(run("setbit b 1 1"), ":0\r\n");
    assert_string_equal(value("b"), "\x41");
    assert_string_equal(run("setbit b 7 0"), ":1\r\n");
    assert_string_equal(value("b"), "@");
    /* Growing keeps the bytes and the expiry, pads with zeros. */
    int64_t at = clock_ms() + 1000000;
    put("e", "ab", at);
    assert_string_equal(run("setbit e 31 1"), ":0\r\n");
    struct proto_arg k = {"e", 1};
    struct shard *sh = key_lock(&k);
    struct item *it = shard_find(sh, "e", 1, clock_ms());
    assert_non_null(it);
    assert_int_equal(item_vlen(it), 4);
    assert_memory_equal(item_cval(it), "ab\0\x01", 4);
    assert_int_equal(item_expire(it), at);
    shard_unlock(sh);
    assert_string_equal(run("getbit e 31"), ":1\r\n");
    assert_string_equal(run("getbit e 30"), ":0\r\n");
    assert_string_equal(run("getbit e 1"), ":1\r\n");
    assert_string_equal(run("getbit e 9999"), ":0\r\n");
}

static void
test_bitcount(void **state)
{
    (void)state;
    /* The key is looked up first: a missing key is 0 whatever follows. */
    assert_string_equal(run("bitcount nokey a b c d e"), ":0\r\n");
    assert_string_equal(run("bitcount nokey 1"), ":0\r\n");
    put("bc", "foobar", 0);
    assert_string_equal(run("bitcount bc"), ":26\r\n");
    assert_string_equal(run("bitcount bc 1"), "-ERR syntax error\r\n");
    assert_string_equal(run("bitcount bc 1 2 3 4"), "-ERR syntax error\r\n");
    assert_string_equal(run("bitcount bc a 1"),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run("bitcount bc -1 -2 foo"), ":0\r\n");
    assert_string_equal(run("bitcount bc 1 2 foo"), "-ERR syntax error\r\n");
    assert_string_equal(run("bitcount bc 0 0"), ":4\r\n");
    assert_string_equal(run("bitcount bc 1 1"), ":6\r\n");
    assert_string_equal(run("bitcount bc 1 1 byte"), ":6\r\n");
    assert_string_equal(run("bitcount bc 5 30 BIT"), ":17\r\n");
    assert_string_equal(run("bitcount bc 0 -1 bit"), ":26\r\n");
    /* Both ends clamp to byte 0. */
    assert_string_equal(run("bitcount bc -100 -99"), ":4\r\n");
    assert_string_equal(run("bitcount bc -9223372036854775808 9223372036854775807 bit"),
                        ":26\r\n");
    assert_string_equal(run("bitcount bc 3 1"), ":0\r\n");
    put("empty", "", 0);
    assert_string_equal(run("bitcount empty 0 -1 bit"), ":0\r\n");
}

static void
test_lcs(void **state)
{
    (void)state;
    put("key1", "ohmytext", 0);
    put("key2", "mynewtext", 0);
    assert_string_equal(run("lcs key1 key2"), "$6\r\nmytext\r\n");
    assert_string_equal(run("lcs key1 key2 LEN"), ":6\r\n");
    assert_string_equal(run("lcs key1 key2 idx"),
                        "*4\r\n$7\r\nmatches\r\n*2\r\n"
                        "*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n"
                        "*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n"
                        "$3\r\nlen\r\n:6\r\n");
    assert_string_equal(run("lcs key1 key2 idx minmatchlen 4 withmatchlen"),
                        "*4\r\n$7\r\nmatches\r\n*1\r\n"
                        "*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n"
                        "$3\r\nlen\r\n:6\r\n");
    assert_string_equal(run_proto(REPLY_RESP3, "lcs key1 key2 idx minmatchlen 3"),
                        "%2\r\n$7\r\nmatches\r\n*1\r\n"
                        "*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n"
                        "$3\r\nlen\r\n:6\r\n");
    assert_string_equal(run("lcs key1 key2 len idx"),
                        "-ERR If you want both the length and indexes, please just use IDX.\r\n");
    assert_string_equal(run("lcs key1 key2 idx len foo"), "-ERR syntax error\r\n");
    assert_string_equal(run("lcs key1 key2 minmatchlen"), "-ERR syntax error\r\n");
    assert_string_equal(run("lcs key1 key2 minmatchlen x"),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run("lcs nokey nokey2"), "$0\r\n\r\n");
    assert_string_equal(run("lcs nokey nokey2 idx"),
                        "*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n");

    /* The transient table is bounded like proto-max-bulk-len. */
    char *big = xmalloc(12001);
    memset(big, 'a', 12000);
    big[12000] = '\0';
    put("big1", big, 0);
    put("big2", big, 0);
    free(big);
    assert_string_equal(run("lcs big1 big2 len"),
                        "-ERR Insufficient memory, transient memory for LCS exceeds "
                        "proto-max-bulk-len\r\n");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_del_exists_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_with_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_overflow_and_past, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_and_dbsize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_and_randomkey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setbit_getbit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bitcount, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lcs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
