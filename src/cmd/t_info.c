/*
 * t_info.c -- introspection: INFO, COMMAND, SLOWLOG, LATENCY, and the STATS
 * JSON of the native protocol (also served at /stats).
 *
 * Every figure here comes from the same sources /metrics reads (the summed
 * per-thread counters of cmd/tstats.c, the store's totals, the server's
 * connection atomics), so INFO, STATS and /metrics agree up to the requests
 * that ran between two reads. Per-command latency percentiles (INFO
 * latencystats) and LATENCY HISTOGRAM come from the per-thread log-linear
 * histograms that each call fills (cmd/call.h); the percentiles reported are Redis's
 * default latency-tracking-info-percentiles, 50 99 99.9.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "cmd/info.h"
#include "cmd/pubsub.h"
#include "cmd/keys.h"
#include "cmd/slowlog.h"
#include "cmd/tstats.h"
#include "core/durable.h"
#include "core/server.h"
#include "util/clock.h"
#include "util/mem.h"

size_t
server_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) {
            rss = 0;
        }
        fclose(f);
    }
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static void
human_bytes(char *out, size_t len, size_t n)
{
    double d = (double)n;
    if (n < 1024) {
        snprintf(out, len, "%zuB", n);
    } else if (n < 1024 * 1024) {
        snprintf(out, len, "%.2fK", d / 1024);
    } else if (n < 1024ull * 1024 * 1024) {
        snprintf(out, len, "%.2fM", d / (1024 * 1024));
    } else {
        snprintf(out, len, "%.2fG", d / (1024.0 * 1024 * 1024));
    }
}

static const char *
policy_name(int p)
{
    return p == STORE_NOEVICTION ? "noeviction" : p == STORE_LRU ? "allkeys-lru" : "tinylfu";
}

enum {
    SEC_SERVER = 1 << 0,
    SEC_CLIENTS = 1 << 1,
    SEC_MEMORY = 1 << 2,
    SEC_PERSISTENCE = 1 << 3,
    SEC_STATS = 1 << 4,
    SEC_REPLICATION = 1 << 5,
    SEC_CPU = 1 << 6,
    SEC_COMMANDSTATS = 1 << 7,
    SEC_CLUSTER = 1 << 8,
    SEC_KEYSPACE = 1 << 9,
    SEC_ERRORSTATS = 1 << 10,
    SEC_MODULES = 1 << 11,
    SEC_LATENCYSTATS = 1 << 12,
};
#define SEC_DEFAULT (SEC_SERVER | SEC_CLIENTS | SEC_MEMORY | SEC_PERSISTENCE | SEC_STATS | \
                     SEC_REPLICATION | SEC_CPU | SEC_MODULES | SEC_ERRORSTATS | SEC_CLUSTER | \
                     SEC_KEYSPACE)
#define SEC_ALL (SEC_DEFAULT | SEC_COMMANDSTATS | SEC_LATENCYSTATS)

static const struct {
    const char *name;
    unsigned bit;
} sections[] = {
    {"server", SEC_SERVER},           {"clients", SEC_CLIENTS},
    {"memory", SEC_MEMORY},           {"persistence", SEC_PERSISTENCE},
    {"stats", SEC_STATS},             {"replication", SEC_REPLICATION},
    {"cpu", SEC_CPU},                 {"commandstats", SEC_COMMANDSTATS},
    {"cluster", SEC_CLUSTER},         {"keyspace", SEC_KEYSPACE},
    {"errorstats", SEC_ERRORSTATS},   {"modules", SEC_MODULES},
    {"latencystats", SEC_LATENCYSTATS},
};

/* Redis's latency-tracking-info-percentiles default. */
static const double info_percentiles[] = {50.0, 99.0, 99.9};

/* "50", "99", "99.9": %f with the trailing zeros (and dot) trimmed. */
static void
percentile_name(char *out, size_t len, double p)
{
    snprintf(out, len, "%f", p);
    char *dot = strchr(out, '.');
    if (dot) {
        char *e = out + strlen(out) - 1;
        while (e > dot && *e == '0') {
            *e-- = '\0';
        }
        if (e == dot) {
            *e = '\0';
        }
    }
}

static void
info_latencystats(struct buf *b)
{
    uint64_t (*h)[TSTATS_HIST_BUCKETS] = xmalloc(sizeof(*h) * CMD_COUNT);
    tstats_hist_sum_all(h);
    for (int i = 0; i < CMD_COUNT; i++) {
        if (tstats_hist_count(h[i]) == 0) {
            continue;
        }
        buf_appendf(b, "latency_percentiles_usec_%s:", cmd_table[i].name);
        for (size_t j = 0; j < sizeof(info_percentiles) / sizeof(info_percentiles[0]); j++) {
            char pn[32];
            percentile_name(pn, sizeof(pn), info_percentiles[j]);
            buf_appendf(b, "%sp%s=%.3f", j ? "," : "", pn,
                        tstats_hist_quantile(h[i], info_percentiles[j] / 100.0));
        }
        buf_appendstr(b, "\r\n");
    }
    free(h);
}

static int
cmp_errstat(const void *a, const void *b)
{
    return strcmp(errstat_name(*(const unsigned *)a), errstat_name(*(const unsigned *)b));
}

/* errorstat_<CODE>:count=N for every code counted, in byte order (Redis
 * keeps them in a radix tree). */
static void
info_errorstats(struct buf *b, const struct tstats *ts)
{
    unsigned idx[ERRSTAT_MAX], k = 0, n = errstat_count();
    for (unsigned i = 0; i < n; i++) {
        if (ts->errs[i] != 0) {
            idx[k++] = i;
        }
    }
    qsort(idx, k, sizeof(idx[0]), cmp_errstat);
    for (unsigned j = 0; j < k; j++) {
        buf_appendf(b, "errorstat_%s:count=%llu\r\n", errstat_name(idx[j]),
                    (unsigned long long)ts->errs[idx[j]]);
    }
}

static void
section(struct buf *b, const char *title)
{
    if (b->len) {
        buf_appendstr(b, "\r\n");
    }
    buf_appendf(b, "# %s\r\n", title);
}

/* Redis's persistence fields (the snapshot standing in for the RDB file) and
 * the write-ahead log's, from the same source as the crabcache_wal_* and
 * crabcache_snapshot* metrics. */
static void
info_persistence(struct buf *b)
{
    struct persist_info pi;
    memset(&pi, 0, sizeof(pi));
    bool on = durable_info(&pi);
    int64_t last_save = on && pi.last_save_ms ? pi.last_save_ms / 1000
                                                : atomic_load(&server.lastsave_s);
    buf_appendf(b,
                "loading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:%llu\r\n"
                "rdb_bgsave_in_progress:%d\r\nrdb_last_save_time:%lld\r\n"
                "rdb_last_bgsave_status:%s\r\nrdb_last_bgsave_time_sec:%lld\r\n"
                "rdb_saves:%llu\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n"
                "wal_enabled:%d\r\n",
                (unsigned long long)(on ? pi.changes_since_save : prop_dirty()),
                on && pi.in_progress, (long long)last_save,
                on && pi.last_status != 0 ? "err" : "ok",
                on && pi.last_save_ms ? (long long)(pi.last_duration_us / 1000000) : -1LL,
                (unsigned long long)pi.snapshots_ok, on);
    if (!on) {
        return;
    }
    const struct wal_stats *w = &pi.wal;
    buf_appendf(b,
                "wal_status:%s\r\nwal_sync_policy:%s\r\nwal_last_lsn:%llu\r\n"
                "wal_durable_lsn:%llu\r\nwal_records:%llu\r\nwal_fsyncs:%llu\r\n"
                "wal_write_errors:%llu\r\nwal_segments:%llu\r\nwal_disk_bytes:%llu\r\n"
                "wal_pending_bytes:%llu\r\nsnapshots_failed:%llu\r\n",
                w->err == 0 ? "ok" : "err", wal_sync_policy_name(w->sync),
                (unsigned long long)w->last_lsn, (unsigned long long)w->durable_lsn,
                (unsigned long long)w->appends, (unsigned long long)w->fsyncs,
                (unsigned long long)w->write_errors, (unsigned long long)w->segments,
                (unsigned long long)w->disk_bytes, (unsigned long long)w->pending_bytes,
                (unsigned long long)pi.snapshots_failed);
}

static void
info_build(struct buf *b, unsigned which)
{
    int64_t now = clock_ms();
    struct tstats ts;
    tstats_sum(&ts);
    struct store *st = server.store;
    if (which & SEC_SERVER) {
        struct utsname u;
        uname(&u);
        section(b, "Server");
        buf_appendf(b,
                    "redis_version:7.0.15\r\ncrabcache_version:%s\r\nredis_mode:%s\r\n"
                    "os:%s %s %s\r\narch_bits:64\r\nmultiplexing_api:epoll\r\n"
                    "process_id:%d\r\nrun_id:%s\r\ntcp_port:%d\r\nresp_port:%d\r\n"
                    "server_time_usec:%lld\r\nuptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n"
                    "hz:10\r\nio_threads_active:0\r\nworker_threads:%u\r\nshards:%u\r\n"
                    "executable:crabcache\r\nconfig_file:%s\r\n",
                    CRABCACHE_VERSION, cmd_cluster_enabled() ? "cluster" : "standalone", u.sysname, u.release, u.machine, (int)getpid(),
                    server.run_id, server.port, server.resp_port, (long long)clock_us(),
                    (long long)((now - server.start_ms) / 1000),
                    (long long)((now - server.start_ms) / 86400000), server.threads,
                    st->nshards, "");
    }
    if (which & SEC_CLIENTS) {
        section(b, "Clients");
        buf_appendf(b,
                    "connected_clients:%llu\r\ncluster_connections:0\r\nmaxclients:%llu\r\n"
                    "blocked_clients:0\r\ntracking_clients:0\r\n",
                    (unsigned long long)atomic_load(&server.conns_current),
                    (unsigned long long)atomic_load(&server.max_connections));
    }
    if (which & SEC_MEMORY) {
        size_t used = store_memory_exact(st), rss = server_rss_bytes();
        size_t maxm = atomic_load(&st->max_memory);
        char hu[32], hr[32], hm[32];
        human_bytes(hu, sizeof(hu), used);
        human_bytes(hr, sizeof(hr), rss);
        human_bytes(hm, sizeof(hm), maxm);
        section(b, "Memory");
        buf_appendf(b,
                    "used_memory:%zu\r\nused_memory_human:%s\r\nused_memory_rss:%zu\r\n"
                    "used_memory_rss_human:%s\r\nused_memory_dataset:%zu\r\n"
                    "maxmemory:%zu\r\nmaxmemory_human:%s\r\nmaxmemory_policy:%s\r\n"
                    "mem_fragmentation_ratio:%.2f\r\nmem_allocator:%s\r\n",
                    used, hu, rss, hr, used, maxm, hm, policy_name(atomic_load(&st->policy)),
                    used ? (double)rss / (double)used : 0.0,
#ifdef HAVE_JEMALLOC
                    "jemalloc"
#else
                    "libc"
#endif
        );
    }
    if (which & SEC_PERSISTENCE) {
        section(b, "Persistence");
        info_persistence(b);
    }
    if (which & SEC_STATS) {
        uint64_t total = 0, errors = ts.errors; /* every error reply, as Redis */
        for (int i = 0; i < CMD_COUNT; i++) {
            total += ts.cmd[i].calls;
        }
        section(b, "Stats");
        struct pubsub_stats ps;
        pubsub_stats(&ps);
        buf_appendf(b,
                    "total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
                    "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\n"
                    "rejected_connections:%llu\r\nexpired_keys:%llu\r\nevicted_keys:%llu\r\n"
                    "keyspace_hits:%llu\r\nkeyspace_misses:%llu\r\npubsub_channels:%zu\r\n"
                    "pubsub_patterns:%zu\r\npubsubshard_channels:0\r\nauth_failures:%llu\r\n"
                    "total_error_replies:%llu\r\nrate_limited_requests:%llu\r\n",
                    (unsigned long long)atomic_load(&server.conns_total),
                    (unsigned long long)total, (unsigned long long)ts.net_in,
                    (unsigned long long)ts.net_out,
                    (unsigned long long)atomic_load(&server.conns_rejected),
                    (unsigned long long)store_expired_total(st),
                    (unsigned long long)store_evicted_total(st),
                    (unsigned long long)ts.hits, (unsigned long long)ts.misses, ps.channels,
                    ps.patterns, (unsigned long long)atomic_load(&server.auth_failures),
                    (unsigned long long)errors, (unsigned long long)ts.rate_limited);
        for (int r = 0; r < SERVER_REJECT_COUNT; r++) {
            buf_appendf(b, "rejected_connections_%s:%llu\r\n",
                        server_reject_name((enum server_reject)r),
                        (unsigned long long)atomic_load(&server.conns_rejected_by[r]));
        }
        buf_appendf(b,
                    "pubsub_messages_published:%llu\r\npubsub_messages_delivered:%llu\r\n"
                    "pubsub_clients_dropped:%llu\r\nkeyspace_notifications:%llu\r\n",
                    (unsigned long long)ps.messages, (unsigned long long)ps.deliveries,
                    (unsigned long long)ps.dropped, (unsigned long long)ps.notifications);
    }
    if (which & SEC_REPLICATION) {
        section(b, "Replication");
        buf_appendstr(b, "role:master\r\nconnected_slaves:0\r\n");
    }
    if (which & SEC_CPU) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        section(b, "CPU");
        buf_appendf(b, "used_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n",
                    (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
                    (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    }
    if (which & SEC_MODULES) {
        section(b, "Modules");
    }
    if (which & SEC_COMMANDSTATS) {
        section(b, "Commandstats");
        for (int i = 0; i < CMD_COUNT; i++) {
            const struct cmd_stat *s = &ts.cmd[i];
            if (s->calls == 0 && s->rejected == 0) {
                continue;
            }
            buf_appendf(b,
                        "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,"
                        "rejected_calls=%llu,failed_calls=%llu\r\n",
                        cmd_table[i].name, (unsigned long long)s->calls,
                        (unsigned long long)s->usec,
                        s->calls ? (double)s->usec / (double)s->calls : 0.0,
                        (unsigned long long)s->rejected, (unsigned long long)s->failed);
        }
    }
    if (which & SEC_ERRORSTATS) {
        section(b, "Errorstats");
        info_errorstats(b, &ts);
    }
    if (which & SEC_LATENCYSTATS) {
        section(b, "Latencystats");
        info_latencystats(b);
    }
    if (which & SEC_CLUSTER) {
        section(b, "Cluster");
        buf_appendf(b, "cluster_enabled:%d\r\n", cmd_cluster_enabled() ? 1 : 0);
    }
    if (which & SEC_KEYSPACE) {
        section(b, "Keyspace");
        size_t keys = store_count(st);
        if (keys) {
            buf_appendf(b, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", keys,
                        store_expires_count(st));
        }
    }
}

void
cmd_info(struct client *c, int argc, struct proto_arg *argv)
{
    unsigned which = argc == 1 ? SEC_DEFAULT : 0;
    for (int i = 1; i < argc; i++) {
        if (proto_arg_is(&argv[i], "all") || proto_arg_is(&argv[i], "everything")) {
            which |= SEC_ALL;
        } else if (proto_arg_is(&argv[i], "default")) {
            which |= SEC_DEFAULT;
        } else {
            for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
                if (proto_arg_is(&argv[i], sections[s].name)) {
                    which |= sections[s].bit;
                }
            }
        }
    }
    struct buf b;
    buf_init(&b);
    info_build(&b, which);
    reply_verbatim(&c->r, b.data ? b.data : "", b.len);
    buf_deinit(&b);
}

void
stats_json(struct buf *out)
{
    struct tstats ts;
    tstats_sum(&ts);
    uint64_t total = tstats_calls(&ts);
    struct store *st = server.store;
    buf_appendf(out,
                "{\"keys\":%zu,\"memory\":%zu,\"max_memory\":%zu,\"hits\":%llu,"
                "\"misses\":%llu,\"evictions\":%llu,\"expirations\":%llu,"
                "\"connections\":%llu,\"uptime_seconds\":%lld,\"commands\":%llu,"
                "\"connections_total\":%llu,\"rejected_connections\":%llu,"
                "\"auth_failures\":%llu,\"rate_limited\":%llu,\"shards\":[",
                store_count(st), store_memory_exact(st), atomic_load(&st->max_memory),
                (unsigned long long)ts.hits, (unsigned long long)ts.misses,
                (unsigned long long)store_evicted_total(st),
                (unsigned long long)store_expired_total(st),
                (unsigned long long)atomic_load(&server.conns_current),
                (long long)((clock_ms() - server.start_ms) / 1000), (unsigned long long)total,
                (unsigned long long)atomic_load(&server.conns_total),
                (unsigned long long)atomic_load(&server.conns_rejected),
                (unsigned long long)atomic_load(&server.auth_failures),
                (unsigned long long)ts.rate_limited);
    for (unsigned i = 0; i < st->nshards; i++) {
        struct store_shard_stats ss;
        store_shard_stats(st, i, &ss);
        size_t keys = ss.keys, mem = ss.mem, nexp = ss.expires;
        buf_appendf(out, "%s{\"id\":%u,\"keys\":%zu,\"memory\":%zu,\"expires\":%zu}",
                    i ? "," : "", i, keys, mem, nexp);
    }
    buf_appendstr(out, "]}");
}

/* ---- COMMAND ------------------------------------------------------------ */

static void
flag_names(const struct cmd *cmd, const char **out, size_t *n)
{
    static const struct {
        unsigned bit;
        const char *name;
    } f[] = {{CMD_WRITE, "write"},   {CMD_READONLY, "readonly"}, {CMD_DENYOOM, "denyoom"},
             {CMD_ADMIN, "admin"},   {CMD_PUBSUB, "pubsub"},     {CMD_NOSCRIPT, "noscript"}, {CMD_LOADING, "loading"},
             {CMD_STALE, "stale"},   {CMD_NOAUTH, "no_auth"},    {CMD_FAST, "fast"}};
    *n = 0;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (cmd->flags & f[i].bit) {
            out[(*n)++] = f[i].name;
        }
    }
}

/*
 * Key specs. Redis 7.0 describes each command's keys by specs (where the
 * keys start, how they run on, and what the command does with them); ours
 * are the first/last/step of commands.def, one spec, except for the
 * commands Redis gives two (a source key and a destination key, each one
 * argument). The flags are Redis's, per command: COMMAND INFO and COMMAND
 * GETKEYSANDFLAGS show them, and cluster clients read them.
 */
static const char *const keyspec_flags[CMD_COUNT][2] = {
    [CMD_ID_get] = {"RO access"},
    [CMD_ID_set] = {"RW access update variable_flags"},
    [CMD_ID_setnx] = {"OW insert"},
    [CMD_ID_setex] = {"OW update"},
    [CMD_ID_psetex] = {"OW update"},
    [CMD_ID_getex] = {"RW access update"},
    [CMD_ID_getdel] = {"RW access delete"},
    [CMD_ID_getset] = {"RW access update"},
    [CMD_ID_mget] = {"RO access"},
    [CMD_ID_mset] = {"OW update"},
    [CMD_ID_msetnx] = {"OW insert"},
    [CMD_ID_incr] = {"RW access update"},
    [CMD_ID_decr] = {"RW access update"},
    [CMD_ID_incrby] = {"RW access update"},
    [CMD_ID_decrby] = {"RW access update"},
    [CMD_ID_incrbyfloat] = {"RW access update"},
    [CMD_ID_append] = {"RW insert"},
    [CMD_ID_strlen] = {"RO"},
    [CMD_ID_getrange] = {"RO access"},
    [CMD_ID_substr] = {"RO access"},
    [CMD_ID_setrange] = {"RW update"},
    [CMD_ID_setbit] = {"RW access update"},
    [CMD_ID_getbit] = {"RO access"},
    [CMD_ID_bitcount] = {"RO access"},
    [CMD_ID_lcs] = {"RO access"},
    [CMD_ID_del] = {"RM delete"},
    [CMD_ID_unlink] = {"RM delete"},
    [CMD_ID_exists] = {"RO"},
    [CMD_ID_touch] = {"RO"},
    [CMD_ID_expire] = {"RW update"},
    [CMD_ID_pexpire] = {"RW update"},
    [CMD_ID_expireat] = {"RW update"},
    [CMD_ID_pexpireat] = {"RW update"},
    [CMD_ID_ttl] = {"RO access"},
    [CMD_ID_pttl] = {"RO access"},
    [CMD_ID_expiretime] = {"RO access"},
    [CMD_ID_pexpiretime] = {"RO access"},
    [CMD_ID_persist] = {"RW update"},
    [CMD_ID_type] = {"RO"},
    [CMD_ID_rename] = {"RW access delete", "OW update"},
    [CMD_ID_renamenx] = {"RW access delete", "OW insert"},
    [CMD_ID_copy] = {"RO access", "OW update"},
};

/* Redis 7.0's command tips, space separated. */
static const char *const command_tips[CMD_COUNT] = {
    [CMD_ID_mget] = "request_policy:multi_shard",
    [CMD_ID_mset] = "request_policy:multi_shard response_policy:all_succeeded",
    [CMD_ID_msetnx] = "request_policy:multi_shard response_policy:agg_min",
    [CMD_ID_del] = "request_policy:multi_shard response_policy:agg_sum",
    [CMD_ID_unlink] = "request_policy:multi_shard response_policy:agg_sum",
    [CMD_ID_exists] = "request_policy:multi_shard response_policy:agg_sum",
    [CMD_ID_touch] = "request_policy:multi_shard response_policy:agg_sum",
    [CMD_ID_ttl] = "nondeterministic_output",
    [CMD_ID_pttl] = "nondeterministic_output",
    [CMD_ID_keys] = "request_policy:all_shards nondeterministic_output_order",
    [CMD_ID_scan] = "nondeterministic_output request_policy:special",
    [CMD_ID_dbsize] = "request_policy:all_shards response_policy:agg_sum",
    [CMD_ID_flushall] = "request_policy:all_shards response_policy:all_succeeded",
    [CMD_ID_flushdb] = "request_policy:all_shards response_policy:all_succeeded",
    [CMD_ID_randomkey] = "request_policy:all_shards nondeterministic_output",
    [CMD_ID_ping] = "request_policy:all_shards response_policy:all_succeeded",
    [CMD_ID_info] = "nondeterministic_output request_policy:all_shards response_policy:special",
    [CMD_ID_command] = "nondeterministic_output_order",
    [CMD_ID_time] = "nondeterministic_output",
    [CMD_ID_lastsave] = "nondeterministic_output",
};

/* The two specs Redis annotates. */
static const char *
keyspec_notes(const struct cmd *cmd)
{
    switch (cmd->id) {
    case CMD_ID_set:
        return "RW and ACCESS due to the optional `GET` argument";
    case CMD_ID_getex:
        return "RW and UPDATE because it changes the TTL";
    default:
        return NULL;
    }
}

struct keyspec {
    const char *flags; /* space separated */
    int index, lastkey, keystep;
};

static unsigned
keyspec_count(const struct cmd *cmd)
{
    if (cmd->first_key <= 0) {
        return 0;
    }
    return keyspec_flags[cmd->id][1] ? 2 : 1;
}

static struct keyspec
keyspec_get(const struct cmd *cmd, unsigned i)
{
    const char *flags = keyspec_flags[cmd->id][i];
    if (flags == NULL) { /* a keyed command missing above: its access only */
        flags = (cmd->flags & CMD_WRITE) ? "RW" : "RO";
    }
    if (keyspec_flags[cmd->id][1]) { /* two specs of one key each */
        return (struct keyspec){flags, cmd->first_key + (int)i, 0, 1};
    }
    return (struct keyspec){flags, cmd->first_key,
                            cmd->last_key < 0 ? cmd->last_key : cmd->last_key - cmd->first_key,
                            cmd->key_step};
}

/* A spec's flags as Redis replies them: a set of simple strings. */
static void
reply_keyspec_flags(struct reply *r, const char *flags)
{
    size_t n = 0;
    for (const char *p = flags; *p; p++) {
        n += p == flags || p[-1] == ' ';
    }
    reply_set(r, n);
    for (const char *p = flags; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        buf_appendc(r->out, '+');
        buf_append(r->out, p, len);
        buf_appendstr(r->out, "\r\n");
        p += len + (e != NULL);
    }
}

/* SET's spec says variable_flags: its key is read too only with GET, which
 * Redis's setGetKeys finds as an argument equal to "get" as a C string. */
static const char *
set_key_flags(int n, const struct proto_arg *cargv)
{
    for (int i = 3; i < n; i++) {
        const char *a = cargv[i].ptr;
        if (cargv[i].len >= 3 && (a[0] | 0x20) == 'g' && (a[1] | 0x20) == 'e' &&
            (a[2] | 0x20) == 't' && (cargv[i].len == 3 || a[3] == '\0')) {
            return "RW access update";
        }
    }
    return "OW update";
}

/* COMMAND GETKEYS / GETKEYSANDFLAGS: argv[2..] is a command line; reply its
 * keys (with their spec's flags), as Redis's getKeysSubcommandImpl. */
static void
command_getkeys(struct client *c, int argc, struct proto_arg *argv, bool with_flags)
{
    struct reply *r = &c->r;
    if (argc < 4) {
        cmd_reply_arity(c, with_flags ? "command|getkeysandflags" : "command|getkeys");
        return;
    }
    const struct cmd *cmd = cmd_lookup(argv[2].ptr, argv[2].len);
    int n = argc - 2;
    if (cmd == NULL) {
        reply_error(r, "ERR Invalid command specified");
        return;
    }
    if (cmd->first_key <= 0) {
        reply_error(r, "ERR The command has no key arguments");
        return;
    }
    if ((cmd->arity > 0 && cmd->arity != n) || n < -cmd->arity) {
        reply_error(r, "ERR Invalid number of arguments specified for command");
        return;
    }
    struct proto_arg *cargv = argv + 2;
    int last = cmd->last_key < 0 ? n + cmd->last_key : cmd->last_key;
    if (last >= n) {
        last = n - 1;
    }
    size_t nkeys = 0;
    for (int i = cmd->first_key; i <= last; i += cmd->key_step) {
        nkeys++;
    }
    reply_array(r, nkeys);
    for (int i = cmd->first_key; i <= last; i += cmd->key_step) {
        if (with_flags) {
            unsigned spec = keyspec_count(cmd) == 2 ? (unsigned)(i - cmd->first_key) : 0;
            reply_array(r, 2);
            reply_bulk(r, cargv[i].ptr, cargv[i].len);
            const char *flags = keyspec_get(cmd, spec).flags;
            if (cmd->id == CMD_ID_set) {
                flags = set_key_flags(n, cargv);
            }
            reply_keyspec_flags(r, flags);
        } else {
            reply_bulk(r, cargv[i].ptr, cargv[i].len);
        }
    }
}

static void
command_info(struct reply *r, const struct cmd *cmd)
{
    const char *flags[16];
    size_t nf;
    flag_names(cmd, flags, &nf);
    reply_array(r, 10);
    reply_bulkstr(r, cmd->name);
    reply_int(r, cmd->arity);
    reply_set(r, nf);
    for (size_t i = 0; i < nf; i++) {
        reply_simple(r, flags[i]);
    }
    reply_int(r, cmd->first_key);
    reply_int(r, cmd->last_key);
    reply_int(r, cmd->key_step);
    /* ACL categories */
    const char *cats = cmd->categories;
    size_t ncat = 0;
    for (const char *p = cats; *p; p++) {
        if (*p == '@') {
            ncat++;
        }
    }
    reply_set(r, ncat);
    const char *p = cats;
    while (*p) {
        while (*p == ' ') {
            p++;
        }
        const char *e = p;
        while (*e && *e != ' ') {
            e++;
        }
        if (e > p) {
            buf_appendc(r->out, '+');
            buf_append(r->out, p, (size_t)(e - p));
            buf_appendstr(r->out, "\r\n");
        }
        p = e;
    }
    /* tips (Redis's, for cluster clients and proxies) */
    const char *tip = command_tips[cmd->id];
    size_t ntips = 0;
    for (const char *t = tip; t && *t; t++) {
        ntips += t == tip || t[-1] == ' ';
    }
    reply_set(r, ntips); /* Redis 7.0: tips, key specs and subcommands are sets */
    for (const char *t = tip; t && *t;) {
        const char *e = strchr(t, ' ');
        size_t len = e ? (size_t)(e - t) : strlen(t);
        reply_bulk(r, t, len);
        t += len + (e != NULL);
    }
    unsigned nspec = keyspec_count(cmd);
    reply_set(r, nspec);
    for (unsigned i = 0; i < nspec; i++) {
        struct keyspec ks = keyspec_get(cmd, i);
        const char *notes = keyspec_notes(cmd);
        reply_map(r, notes ? 4 : 3); /* [notes], flags, begin_search, find_keys */
        if (notes) {
            reply_bulkstr(r, "notes");
            reply_bulkstr(r, notes);
        }
        reply_bulkstr(r, "flags");
        reply_keyspec_flags(r, ks.flags);
        reply_bulkstr(r, "begin_search");
        reply_map(r, 2);
        reply_bulkstr(r, "type");
        reply_bulkstr(r, "index");
        reply_bulkstr(r, "spec");
        reply_map(r, 1);
        reply_bulkstr(r, "index");
        reply_int(r, ks.index);
        reply_bulkstr(r, "find_keys");
        reply_map(r, 2);
        reply_bulkstr(r, "type");
        reply_bulkstr(r, "range");
        reply_bulkstr(r, "spec");
        reply_map(r, 3);
        reply_bulkstr(r, "lastkey");
        reply_int(r, ks.lastkey);
        reply_bulkstr(r, "keystep");
        reply_int(r, ks.keystep);
        reply_bulkstr(r, "limit");
        reply_int(r, 0);
    }
    reply_set(r, 0); /* subcommands */
}

void
cmd_command(struct client *c, int argc, struct proto_arg *argv)
{
    struct reply *r = &c->r;
    if (argc == 1) {
        reply_array(r, CMD_COUNT);
        for (int i = 0; i < CMD_COUNT; i++) {
            command_info(r, &cmd_table[i]);
        }
        return;
    }
    struct proto_arg *sub = &argv[1];
    if (proto_arg_is(sub, "count")) {
        if (argc != 2) {
            cmd_reply_arity(c, "command|count");
            return;
        }
        reply_int(r, CMD_COUNT);
    } else if (proto_arg_is(sub, "info")) {
        if (argc == 2) {
            reply_array(r, CMD_COUNT);
            for (int i = 0; i < CMD_COUNT; i++) {
                command_info(r, &cmd_table[i]);
            }
            return;
        }
        reply_array(r, (size_t)argc - 2);
        for (int i = 2; i < argc; i++) {
            const struct cmd *cmd = cmd_lookup(argv[i].ptr, argv[i].len);
            if (cmd) {
                command_info(r, cmd);
            } else {
                reply_null_array(r);
            }
        }
    } else if (proto_arg_is(sub, "docs")) {
        size_t n = 0;
        const struct cmd *list[CMD_COUNT];
        if (argc == 2) {
            for (int i = 0; i < CMD_COUNT; i++) {
                list[n++] = &cmd_table[i];
            }
        } else {
            for (int i = 2; i < argc && n < CMD_COUNT; i++) {
                const struct cmd *cmd = cmd_lookup(argv[i].ptr, argv[i].len);
                if (cmd) {
                    list[n++] = cmd;
                }
            }
        }
        reply_map(r, n);
        for (size_t i = 0; i < n; i++) {
            reply_bulkstr(r, list[i]->name);
            reply_map(r, 1);
            reply_bulkstr(r, "summary");
            reply_bulkstr(r, list[i]->categories);
        }
    } else if (proto_arg_is(sub, "getkeys")) {
        command_getkeys(c, argc, argv, false);
    } else if (proto_arg_is(sub, "getkeysandflags")) {
        command_getkeys(c, argc, argv, true);
    } else if (proto_arg_is(sub, "list")) {
        reply_array(r, CMD_COUNT);
        for (int i = 0; i < CMD_COUNT; i++) {
            reply_bulkstr(r, cmd_table[i].name);
        }
    } else {
        cmd_reply_unknown_subcommand(c, sub, "COMMAND");
    }
}

/* ---- SLOWLOG / LATENCY --------------------------------------------------- */

/* Redis's addReplyHelp: header, the lines, then HELP. */
static void
reply_help(struct client *c, const struct proto_arg *name, const char *const *lines)
{
    size_t n = 0;
    while (lines[n]) {
        n++;
    }
    char up[32];
    size_t len = name->len < sizeof(up) - 1 ? name->len : sizeof(up) - 1;
    for (size_t i = 0; i < len; i++) {
        char ch = name->ptr[i];
        up[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
    }
    up[len] = '\0';
    reply_array(&c->r, n + 3);
    char head[96];
    snprintf(head, sizeof(head), "%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
             up);
    reply_simple(&c->r, head);
    for (size_t i = 0; i < n; i++) {
        reply_simple(&c->r, lines[i]);
    }
    reply_simple(&c->r, "HELP");
    reply_simple(&c->r, "    Prints this help.");
}

static const char *const slowlog_help[] = {
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    NULL,
};

void
cmd_slowlog(struct client *c, int argc, struct proto_arg *argv)
{
    struct proto_arg *sub = &argv[1];
    if (proto_arg_is(sub, "len")) {
        if (argc != 2) {
            cmd_reply_arity(c, "slowlog|len");
            return;
        }
        reply_int(&c->r, (int64_t)slowlog_len());
    } else if (proto_arg_is(sub, "reset")) {
        if (argc != 2) {
            cmd_reply_arity(c, "slowlog|reset");
            return;
        }
        slowlog_reset();
        reply_ok(&c->r);
    } else if (proto_arg_is(sub, "get")) {
        if (argc > 3) {
            int n = sub->len > 128 ? 128 : (int)sub->len;
            reply_errorf(&c->r,
                         "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                         "Try SLOWLOG HELP.",
                         n, sub->ptr);
            return;
        }
        long long count = 10;
        if (argc == 3 && (!arg_to_ll(&argv[2], &count) || count < -1)) {
            reply_error(&c->r, "ERR count should be greater than or equal to -1");
            return;
        }
        slowlog_reply(&c->r, count);
    } else if (proto_arg_is(sub, "help")) {
        if (argc != 2) {
            cmd_reply_arity(c, "slowlog|help");
            return;
        }
        reply_help(c, &argv[0], slowlog_help);
    } else {
        cmd_reply_unknown_subcommand(c, sub, "SLOWLOG");
    }
}

static const char *const latency_help[] = {
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the "
    "specified command names.",
    "    If no commands are specified then all histograms are replied.",
    NULL,
};

/*
 * One command's entry of LATENCY HISTOGRAM: calls, then the cumulative count
 * at every power-of-two bound (us) where it grew, as Redis 7 replies it.
 * The bound 2^k counts the calls that took less than 2^k us.
 */
static void
latency_histogram_entry(struct reply *r, const char *name, const uint64_t *h)
{
    uint64_t bound_count[TSTATS_HIST_MAX_LOG2 + 1];
    size_t nb = 0;
    uint64_t cum = 0, prev = 0;
    unsigned b = 0;
    uint64_t keys[TSTATS_HIST_MAX_LOG2 + 1];
    for (unsigned k = 0; k <= TSTATS_HIST_MAX_LOG2; k++) {
        uint64_t bound = (uint64_t)1 << k;
        while (b < TSTATS_HIST_BUCKETS && tstats_hist_upper(b) <= bound) {
            cum += h[b++];
        }
        if (cum > prev) {
            keys[nb] = bound;
            bound_count[nb++] = cum;
        }
        prev = cum;
    }
    reply_bulkstr(r, name);
    reply_map(r, 2);
    reply_bulkstr(r, "calls");
    reply_int(r, (int64_t)tstats_hist_count(h));
    reply_bulkstr(r, "histogram_usec");
    reply_map(r, nb);
    for (size_t i = 0; i < nb; i++) {
        reply_int(r, (int64_t)keys[i]);
        reply_int(r, (int64_t)bound_count[i]);
    }
}

static void
latency_histogram(struct client *c, int argc, struct proto_arg *argv)
{
    uint64_t (*h)[TSTATS_HIST_BUCKETS] = xmalloc(sizeof(*h) * CMD_COUNT);
    tstats_hist_sum_all(h);
    bool want[CMD_COUNT];
    memset(want, argc == 2, sizeof(want));
    for (int i = 2; i < argc; i++) {
        const struct cmd *cmd = cmd_lookup(argv[i].ptr, argv[i].len);
        if (cmd) {
            want[cmd->id] = true;
        }
    }
    size_t n = 0;
    for (int i = 0; i < CMD_COUNT; i++) {
        if (want[i] && tstats_hist_count(h[i]) > 0) {
            n++;
        }
    }
    reply_map(&c->r, n);
    for (int i = 0; i < CMD_COUNT; i++) {
        if (want[i] && tstats_hist_count(h[i]) > 0) {
            latency_histogram_entry(&c->r, cmd_table[i].name, h[i]);
        }
    }
    free(h);
}

void
cmd_latency(struct client *c, int argc, struct proto_arg *argv)
{
    struct proto_arg *sub = &argv[1];
    if (proto_arg_is(sub, "histogram")) {
        latency_histogram(c, argc, argv);
    } else if (proto_arg_is(sub, "latest")) {
        if (argc != 2) {
            cmd_reply_arity(c, "latency|latest");
            return;
        }
        reply_array(&c->r, 0); /* no latency monitor events */
    } else if (proto_arg_is(sub, "history")) {
        if (argc != 3) {
            cmd_reply_arity(c, "latency|history");
            return;
        }
        reply_array(&c->r, 0);
    } else if (proto_arg_is(sub, "reset")) {
        reply_int(&c->r, 0);
    } else if (proto_arg_is(sub, "graph")) {
        if (argc != 3) {
            cmd_reply_arity(c, "latency|graph");
            return;
        }
        int n = argv[2].len > 128 ? 128 : (int)argv[2].len;
        reply_errorf(&c->r, "ERR No samples available for event '%.*s'", n, argv[2].ptr);
    } else if (proto_arg_is(sub, "doctor")) {
        if (argc != 2) {
            cmd_reply_arity(c, "latency|doctor");
            return;
        }
        static const char doctor[] =
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this "
            "CrabCache instance. Per-command latency percentiles are always tracked: see "
            "INFO latencystats, LATENCY HISTOGRAM and the crabcache_command_duration_seconds "
            "histogram on the HTTP port's /metrics.";
        reply_verbatim(&c->r, doctor, sizeof(doctor) - 1);
    } else if (proto_arg_is(sub, "help")) {
        if (argc != 2) {
            cmd_reply_arity(c, "latency|help");
            return;
        }
        reply_help(c, &argv[0], latency_help);
    } else {
        cmd_reply_unknown_subcommand(c, sub, "LATENCY");
    }
}
