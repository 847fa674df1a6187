/*
 * t_object.c -- OBJECT (ENCODING FREQ IDLETIME REFCOUNT HELP) and MEMORY
 * (USAGE STATS DOCTOR MALLOC-STATS PURGE HELP).
 *
 * Replies have Redis 7.0's shape; the figures are CrabCache's own:
 *  - ENCODING is the one Redis would pick for the value as stored: "int" for
 *    a canonical 64-bit integer of at most 20 characters, "embstr" up to 44
 *    bytes, "raw" above. (Redis also says "raw" for a short value last
 *    changed in place by APPEND, SETRANGE or SETBIT, and "embstr" for an
 *    INCRBYFLOAT result: CrabCache keeps no per-value encoding to tell.)
 *  - FREQ is the W-TinyLFU sketch's estimate of the key's recent accesses
 *    (0..15, 16 with the doorkeeper), read without counting an access;
 *    like Redis without an LFU policy, it is an error under the lru and
 *    noeviction policies.
 *  - IDLETIME: no policy keeps access times, so it is an error: Redis's
 *    text under W-TinyLFU (an LFU policy), a plain one otherwise.
 *  - REFCOUNT is 1: values are never shared.
 *  - MEMORY USAGE is the item's bytes (its slab chunk, plus the body of a
 *    large value) and its share of the shard's index.
 *  - MEMORY STATS reads the allocator (jemalloc's mallctl when linked, the
 *    sanitizer's in test builds, else glibc's mallinfo2), the store's exact
 *    totals, the clients' buffers and the process's RSS.
 */
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/clients.h"
#include "cmd/cmd.h"
#include "cmd/info.h"
#include "core/server.h"
#include "store/store_peek.h"
#include "util/buf.h"

extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));
extern void malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque,
                               const char *opts) __attribute__((weak));
extern int malloc_trim(size_t pad) __attribute__((weak));
/* AddressSanitizer's allocator (test builds): glibc's mallinfo2 sees nothing */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));
extern size_t __sanitizer_get_heap_size(void) __attribute__((weak));

static void
reply_help(struct client *c, const char *const *lines, size_t n)
{
    reply_array(&c->r, n);
    for (size_t i = 0; i < n; i++) {
        reply_simple(&c->r, lines[i]);
    }
}

/* Redis's string2l: optional '-', no '+', no leading zero, no "-0" (on
 * 64 bits a long is a long long: arg_ll is the same test). */
static bool
canonical_long(const char *p, size_t n)
{
    long long v;
    return arg_ll(p, n, &v);
}

/* ---- OBJECT ---------------------------------------------------------------- */

void
cmd_object(struct client *c, int argc, struct proto_arg *argv)
{
    struct proto_arg *sub = &argv[1];
    static const char *const subs[] = {"encoding", "freq", "idletime", "refcount"};
    if (proto_arg_is(sub, "help")) {
        if (argc != 2) {
            cmd_reply_arity(c, "object|help");
            return;
        }
        static const char *const help[] = {
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Prints this help."};
        reply_help(c, help, sizeof(help) / sizeof(help[0]));
        return;
    }
    int which = -1;
    for (int i = 0; i < 4; i++) {
        if (proto_arg_is(sub, subs[i])) {
            which = i;
        }
    }
    if (which < 0) {
        cmd_reply_unknown_subcommand(c, sub, "OBJECT");
        return;
    }
    if (argc != 3) {
        char name[32];
        snprintf(name, sizeof(name), "object|%s", subs[which]);
        cmd_reply_arity(c, name);
        return;
    }
    struct store_key_info ki;
    if (!store_key_info(server.store, argv[2].ptr, argv[2].len, cmd_time_ms(), &ki)) {
        reply_null(&c->r);
        return;
    }
    switch (which) {
    case 0:
        if (ki.vlen <= 20 && canonical_long(ki.head, ki.vlen)) {
            reply_bulkstr(&c->r, "int");
        } else {
            reply_bulkstr(&c->r, ki.vlen <= 44 ? "embstr" : "raw");
        }
        break;
    case 1:
        if (!ki.freq_valid) {
            reply_error(&c->r, "ERR An LFU maxmemory policy is not selected, access frequency "
                               "not tracked. Please note that when switching between policies "
                               "at runtime LRU and LFU data will take some time to adjust.");
        } else {
            reply_int(&c->r, ki.freq);
        }
        break;
    case 2:
        if (ki.freq_valid) {
            reply_error(&c->r, "ERR An LFU maxmemory policy is selected, idle time not "
                               "tracked. Please note that when switching between policies at "
                               "runtime LRU and LFU data will take some time to adjust.");
        } else {
            reply_error(&c->r, "ERR idle time not tracked: the eviction policy keeps no "
                               "access times.");
        }
        break;
    default:
        reply_int(&c->r, 1);
        break;
    }
}

/* ---- MEMORY ----------------------------------------------------------------- */

struct mem_figures {
    size_t allocated, active, resident; /* the allocator's */
    size_t rss;
    size_t peak, startup;
    size_t dataset;  /* the store: items and index */
    size_t index;    /* the index tables */
    size_t clients;  /* client buffers */
    size_t keys;
};

static _Atomic size_t mem_peak;
static _Atomic size_t mem_startup;

static void
allocator_figures(size_t *allocated, size_t *active, size_t *resident)
{
    *allocated = *active = *resident = 0;
    if (mallctl) {
        uint64_t epoch = 1;
        size_t sz = sizeof(epoch);
        mallctl("epoch", &epoch, &sz, &epoch, sz);
        sz = sizeof(size_t);
        mallctl("stats.allocated", allocated, &sz, NULL, 0);
        sz = sizeof(size_t);
        mallctl("stats.active", active, &sz, NULL, 0);
        sz = sizeof(size_t);
        mallctl("stats.resident", resident, &sz, NULL, 0);
        return;
    }
    if (__sanitizer_get_current_allocated_bytes && __sanitizer_get_heap_size) {
        *allocated = __sanitizer_get_current_allocated_bytes();
        *active = *resident = __sanitizer_get_heap_size();
        return;
    }
    struct mallinfo2 mi = mallinfo2();
    *allocated = mi.uordblks + mi.hblkhd;
    *active = mi.arena + mi.hblkhd;
    *resident = *active;
}

void
memory_note_startup(void)
{
    size_t a, b, r;
    allocator_figures(&a, &b, &r);
    atomic_store(&mem_startup, a);
}

static void
mem_figures(struct mem_figures *m)
{
    memset(m, 0, sizeof(*m));
    allocator_figures(&m->allocated, &m->active, &m->resident);
    m->rss = server_rss_bytes();
    struct store_totals t;
    store_totals(server.store, &t);
    m->keys = t.keys;
    m->dataset = t.mem;
    m->index = store_index_memory(server.store);
    m->clients = cmd_clients_memory();
    m->startup = atomic_load(&mem_startup);
    size_t peak = atomic_load(&mem_peak);
    while (m->allocated > peak && !atomic_compare_exchange_weak(&mem_peak, &peak, m->allocated)) {
    }
    m->peak = m->allocated > peak ? m->allocated : peak;
}

static double
ratio(size_t a, size_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

static void
memory_stats(struct client *c)
{
    struct mem_figures m;
    mem_figures(&m);
    size_t overhead = m.startup + m.clients + m.index;
    size_t net = m.allocated > m.startup ? m.allocated - m.startup : 0;
    size_t dataset = m.allocated > overhead ? m.allocated - overhead : 0;
    reply_map(&c->r, 28);
    reply_bulkstr(&c->r, "peak.allocated");
    reply_int(&c->r, (int64_t)m.peak);
    reply_bulkstr(&c->r, "total.allocated");
    reply_int(&c->r, (int64_t)m.allocated);
    reply_bulkstr(&c->r, "startup.allocated");
    reply_int(&c->r, (int64_t)m.startup);
    reply_bulkstr(&c->r, "replication.backlog");
    reply_int(&c->r, 0);
    reply_bulkstr(&c->r, "clients.slaves");
    reply_int(&c->r, 0);
    reply_bulkstr(&c->r, "clients.normal");
    reply_int(&c->r, (int64_t)m.clients);
    reply_bulkstr(&c->r, "cluster.links");
    reply_int(&c->r, 0);
    reply_bulkstr(&c->r, "aof.buffer");
    reply_int(&c->r, 0);
    reply_bulkstr(&c->r, "lua.caches");
    reply_int(&c->r, 0);
    reply_bulkstr(&c->r, "functions.caches");
    reply_int(&c->r, 0);
    reply_bulkstr(&c->r, "db.0");
    reply_map(&c->r, 3);
    reply_bulkstr(&c->r, "overhead.hashtable.main");
    reply_int(&c->r, (int64_t)m.index);
    reply_bulkstr(&c->r, "overhead.hashtable.expires");
    reply_int(&c->r, 0); /* expiry lives in the items, no second table */
    reply_bulkstr(&c->r, "overhead.hashtable.slot-to-keys");
    reply_int(&c->r, 0);
    reply_bulkstr(&c->r, "overhead.total");
    reply_int(&c->r, (int64_t)overhead);
    reply_bulkstr(&c->r, "keys.count");
    reply_int(&c->r, (int64_t)m.keys);
    reply_bulkstr(&c->r, "keys.bytes-per-key");
    reply_int(&c->r, m.keys ? (int64_t)(net / m.keys) : 0);
    reply_bulkstr(&c->r, "dataset.bytes");
    reply_int(&c->r, (int64_t)dataset);
    reply_bulkstr(&c->r, "dataset.percentage");
    reply_double(&c->r, net ? (double)dataset * 100.0 / (double)net : 0.0);
    reply_bulkstr(&c->r, "peak.percentage");
    reply_double(&c->r, m.peak ? (double)m.allocated * 100.0 / (double)m.peak : 0.0);
    reply_bulkstr(&c->r, "allocator.allocated");
    reply_int(&c->r, (int64_t)m.allocated);
    reply_bulkstr(&c->r, "allocator.active");
    reply_int(&c->r, (int64_t)m.active);
    reply_bulkstr(&c->r, "allocator.resident");
    reply_int(&c->r, (int64_t)m.resident);
    reply_bulkstr(&c->r, "allocator-fragmentation.ratio");
    reply_double(&c->r, ratio(m.active, m.allocated));
    reply_bulkstr(&c->r, "allocator-fragmentation.bytes");
    reply_int(&c->r, (int64_t)m.active - (int64_t)m.allocated);
    reply_bulkstr(&c->r, "allocator-rss.ratio");
    reply_double(&c->r, ratio(m.resident, m.active));
    reply_bulkstr(&c->r, "allocator-rss.bytes");
    reply_int(&c->r, (int64_t)m.resident - (int64_t)m.active);
    reply_bulkstr(&c->r, "rss-overhead.ratio");
    reply_double(&c->r, ratio(m.rss, m.resident));
    reply_bulkstr(&c->r, "rss-overhead.bytes");
    reply_int(&c->r, (int64_t)m.rss - (int64_t)m.resident);
    reply_bulkstr(&c->r, "fragmentation");
    reply_double(&c->r, ratio(m.rss, m.allocated));
    reply_bulkstr(&c->r, "fragmentation.bytes");
    reply_int(&c->r, (int64_t)m.rss - (int64_t)m.allocated);
}

static void
memory_doctor(struct client *c)
{
    struct mem_figures m;
    mem_figures(&m);
    struct buf b;
    buf_init(&b);
    if (m.allocated < 5u << 20) {
        buf_appendstr(&b, "Hi Sam, this instance is empty or is using very little memory, my "
                          "issues detector can't be used in these conditions. Please, leave "
                          "for your mission on Earth and fill it with some data. The new Sam "
                          "and I will be back to our programming as soon as I finished "
                          "rebooting.\n");
    } else {
        int issues = 0;
        struct buf r;
        buf_init(&r);
        if ((double)m.peak > 1.5 * (double)m.allocated) {
            issues++;
            buf_appendf(&r,
                        " * Peak memory: %zu bytes were allocated at the peak, more than 150%% "
                        "of the %zu allocated now. The allocator keeps much of what a peak "
                        "took; MEMORY PURGE asks it to give back what it can.\n\n",
                        m.peak, m.allocated);
        }
        double frag = ratio(m.rss, m.allocated);
        if (frag > 1.4) {
            issues++;
            buf_appendf(&r,
                        " * High total RSS: the process's resident set is %.2f times what is "
                        "allocated (%zu of %zu bytes), after a memory peak or because the "
                        "workload fragments the allocator's pages. The allocator is \"%s\".\n\n",
                        frag, m.rss, m.allocated, mallctl ? "jemalloc" : "libc");
        }
        if (ratio(m.active, m.allocated) > 1.1 && m.active - m.allocated > (10u << 20)) {
            issues++;
            buf_appendf(&r,
                        " * High allocator fragmentation: %zu bytes of active pages hold "
                        "%zu bytes of allocations.\n\n",
                        m.active, m.allocated);
        }
        if (m.keys && m.clients > m.dataset / 2 && m.clients > (200u << 20)) {
            issues++;
            buf_appendf(&r,
                        " * Big client buffers: clients' input and output buffers hold %zu "
                        "bytes, more than half the dataset's %zu.\n\n",
                        m.clients, m.dataset);
        }
        if (issues == 0) {
            buf_appendstr(&b, "Hi Sam, I can't find any memory issue in your instance. I can "
                              "only account for what occurs on this base.\n");
        } else {
            buf_appendstr(&b, "Sam, I detected a few issues in this CrabCache instance memory "
                              "implants:\n\n");
            buf_append(&b, r.data, r.len);
            buf_appendstr(&b, "I'm here to keep you safe, Sam. I want to help you.\n");
        }
        buf_deinit(&r);
    }
    reply_verbatim(&c->r, b.data, b.len);
    buf_deinit(&b);
}

static void
stats_cb(void *ctx, const char *s)
{
    buf_appendstr(ctx, s);
}

void
cmd_memory(struct client *c, int argc, struct proto_arg *argv)
{
    struct proto_arg *sub = &argv[1];
    if (proto_arg_is(sub, "usage")) {
        if (argc < 3) {
            cmd_reply_arity(c, "memory|usage");
            return;
        }
        for (int j = 3; j < argc; j++) {
            if (proto_arg_is(&argv[j], "samples") && j + 1 < argc) {
                long long n;
                if (!arg_to_ll(&argv[j + 1], &n)) {
                    reply_error(&c->r, ERR_NOT_INT);
                    return;
                }
                if (n < 0) {
                    reply_error(&c->r, ERR_SYNTAX);
                    return;
                }
                j++; /* strings have nothing to sample */
            } else {
                reply_error(&c->r, ERR_SYNTAX);
                return;
            }
        }
        struct store_key_info ki;
        if (!store_key_info(server.store, argv[2].ptr, argv[2].len, cmd_time_ms(), &ki)) {
            reply_null(&c->r);
            return;
        }
        reply_int(&c->r, (int64_t)(ki.item_mem + ki.index_mem));
        return;
    }
    static const char *const subs[] = {"stats", "doctor", "malloc-stats", "purge", "help"};
    int which = -1;
    for (int i = 0; i < 5; i++) {
        if (proto_arg_is(sub, subs[i])) {
            which = i;
        }
    }
    if (which < 0) {
        cmd_reply_unknown_subcommand(c, sub, "MEMORY");
        return;
    }
    if (argc != 2) {
        char name[32];
        snprintf(name, sizeof(name), "memory|%s", subs[which]);
        cmd_reply_arity(c, name);
        return;
    }
    switch (which) {
    case 0:
        memory_stats(c);
        break;
    case 1:
        memory_doctor(c);
        break;
    case 2:
        if (malloc_stats_print) {
            struct buf b;
            buf_init(&b);
            malloc_stats_print(stats_cb, &b, NULL);
            reply_verbatim(&c->r, b.data ? b.data : "", b.len);
            buf_deinit(&b);
        } else {
            reply_verbatim(&c->r, "Stats not supported for the current allocator", 45);
        }
        break;
    case 3:
        if (mallctl) {
            mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
        } else if (malloc_trim) {
            malloc_trim(0);
        }
        reply_ok(&c->r);
        break;
    default: {
        static const char *const help[] = {
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Prints this help."};
        reply_help(c, help, sizeof(help) / sizeof(help[0]));
        break;
    }
    }
}
