/*
 * metrics.c -- /metrics in the Prometheus text format (see metrics.h).
 *
 * Rendering is one function per group of families. Each family's # HELP and
 * # TYPE lines come from the metrics.def table, so a name is spelled in one
 * place; samples are written right after their header. Families whose part
 * of the server is off (the WAL without persistence) are left out entirely
 * rather than exposed empty.
 *
 * Sources, the same INFO and STATS read (so the three agree): the summed
 * per-thread counters (tstats_sum), the merged latency histograms
 * (tstats_hist_sum_all), the store's totals and per-shard figures, the
 * server's connection atomics, and the persistence glue's info.
 */
#include "http/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cluster/cluster.h"
#include "cmd/info.h"
#include "cmd/slowlog.h"
#include "cmd/tstats.h"
#include "core/durable.h"
#include "core/server.h"
#include "util/clock.h"
#include "util/mem.h"

#define PREFIX "crabcache_"

/* Histogram buckets exported: le = 2^k us for k in [LE_FIRST, LE_LAST]. */
#define LE_FIRST 0
#define LE_LAST 23

static const struct metric_info table[METRIC_COUNT] = {
#define METRIC(id, name, type, help) {name, #type, help},
#include "http/metrics.def"
#undef METRIC
};

static const char *const path_names[METRICS_PATH_COUNT] = {
    "/metrics", "/health", "/stats", "/dashboard", "/dashboard/data", "other",
};

/* Status codes the server answers with; anything else is counted as "other". */
static const unsigned codes[] = {200, 401, 404, 405, 503};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

static _Atomic uint64_t http_counts[METRICS_PATH_COUNT][NCODES + 1];
static _Atomic int64_t last_render_us;

const struct metric_info *
metrics_info(enum metric_id id)
{
    return (unsigned)id < METRIC_COUNT ? &table[id] : NULL;
}

void
metrics_count_http(enum metrics_path path, unsigned code)
{
    if ((unsigned)path >= METRICS_PATH_COUNT) {
        path = METRICS_PATH_OTHER;
    }
    size_t i = 0;
    while (i < NCODES && codes[i] != code) {
        i++;
    }
    atomic_fetch_add_explicit(&http_counts[path][i], 1, memory_order_relaxed);
}

/* ---- writing helpers ---------------------------------------------------------- */

static void
family(struct buf *b, enum metric_id id)
{
    const struct metric_info *m = &table[id];
    buf_appendf(b, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", m->name, m->help,
                m->name, m->type);
}

/* name{labels} value -- labels is the inside of the braces or NULL. */
static void
sample_u64(struct buf *b, enum metric_id id, const char *labels, uint64_t v)
{
    if (labels && *labels) {
        buf_appendf(b, PREFIX "%s{%s} %llu\n", table[id].name, labels, (unsigned long long)v);
    } else {
        buf_appendf(b, PREFIX "%s %llu\n", table[id].name, (unsigned long long)v);
    }
}

static void
sample_f(struct buf *b, enum metric_id id, const char *labels, double v)
{
    if (labels && *labels) {
        buf_appendf(b, PREFIX "%s{%s} %.15g\n", table[id].name, labels, v);
    } else {
        buf_appendf(b, PREFIX "%s %.15g\n", table[id].name, v);
    }
}

/* A family with one unlabelled sample. */
static void
one_u64(struct buf *b, enum metric_id id, uint64_t v)
{
    family(b, id);
    sample_u64(b, id, NULL, v);
}

static void
one_f(struct buf *b, enum metric_id id, double v)
{
    family(b, id);
    sample_f(b, id, NULL, v);
}

/* Label value escaping of the text format: backslash, quote, newline. */
static void
label_escape(char *out, size_t len, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < len; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

/* ---- groups of families ----------------------------------------------------- */

static void
render_process(struct buf *b)
{
    char ver[64];
    label_escape(ver, sizeof(ver), CRABCACHE_VERSION);
    family(b, METRIC_BUILD_INFO);
    buf_appendf(b, PREFIX "%s{version=\"%s\",redis_version=\"7.0.15\"} 1\n",
                table[METRIC_BUILD_INFO].name, ver);
    one_f(b, METRIC_START_TIME, (double)server.start_ms / 1000.0);
    one_f(b, METRIC_UPTIME, (double)(clock_ms() - server.start_ms) / 1000.0);
    one_u64(b, METRIC_UP, atomic_load(&server.state) == SERVER_SERVING);
    one_u64(b, METRIC_WORKER_THREADS, server.threads);
    one_u64(b, METRIC_SHARDS, server.store ? server.store->nshards : 0);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    family(b, METRIC_CPU);
    sample_f(b, METRIC_CPU, "mode=\"user\"",
             (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6);
    sample_f(b, METRIC_CPU, "mode=\"system\"",
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    one_u64(b, METRIC_MEMORY_RSS, server_rss_bytes());
}

/* One histogram without labels from a tstats row (TSTATS_E2E, TSTATS_FWD):
 * cumulative buckets at powers of two microseconds, the sum of the exact
 * times counted beside it. */
static void
render_histogram(struct buf *b, int metric, int row, uint64_t usec_sum)
{
    uint64_t e[TSTATS_HIST_BUCKETS];
    tstats_hist_sum(row, e);
    const char *name = table[metric].name;
    family(b, metric);
    uint64_t cum = 0;
    unsigned bi = 0;
    for (unsigned k = LE_FIRST; k <= LE_LAST; k++) {
        uint64_t bound = (uint64_t)1 << k;
        while (bi < TSTATS_HIST_BUCKETS && tstats_hist_upper(bi) <= bound) {
            cum += e[bi++];
        }
        buf_appendf(b, PREFIX "%s_bucket{le=\"%.9g\"} %llu\n", name, (double)bound / 1e6,
                    (unsigned long long)cum);
    }
    buf_appendf(b, PREFIX "%s_bucket{le=\"+Inf\"} %llu\n", name,
                (unsigned long long)tstats_hist_count(e));
    buf_appendf(b, PREFIX "%s_sum %.9g\n", name, (double)usec_sum / 1e6);
    buf_appendf(b, PREFIX "%s_count %llu\n", name, (unsigned long long)tstats_hist_count(e));
}

static void
render_commands(struct buf *b, const struct tstats *ts)
{
    uint64_t (*h)[TSTATS_HIST_BUCKETS] = xmalloc(sizeof(*h) * CMD_COUNT);
    tstats_hist_sum_all(h);
    char lab[96];

    family(b, METRIC_COMMANDS);
    for (int i = 0; i < CMD_COUNT; i++) {
        const struct cmd_stat *s = &ts->cmd[i];
        if (s->calls || s->rejected) {
            snprintf(lab, sizeof(lab), "cmd=\"%s\"", cmd_table[i].name);
            sample_u64(b, METRIC_COMMANDS, lab, s->calls);
        }
    }
    family(b, METRIC_COMMANDS_FAILED);
    for (int i = 0; i < CMD_COUNT; i++) {
        const struct cmd_stat *s = &ts->cmd[i];
        if (s->calls || s->rejected) {
            snprintf(lab, sizeof(lab), "cmd=\"%s\"", cmd_table[i].name);
            sample_u64(b, METRIC_COMMANDS_FAILED, lab, s->failed);
        }
    }
    family(b, METRIC_COMMANDS_REJECTED);
    for (int i = 0; i < CMD_COUNT; i++) {
        const struct cmd_stat *s = &ts->cmd[i];
        if (s->calls || s->rejected) {
            snprintf(lab, sizeof(lab), "cmd=\"%s\"", cmd_table[i].name);
            sample_u64(b, METRIC_COMMANDS_REJECTED, lab, s->rejected);
        }
    }

    const char *name = table[METRIC_COMMAND_DURATION].name;
    family(b, METRIC_COMMAND_DURATION);
    for (int i = 0; i < CMD_COUNT; i++) {
        uint64_t n = tstats_hist_count(h[i]);
        if (n == 0) {
            continue;
        }
        const char *cn = cmd_table[i].name;
        uint64_t cum = 0;
        unsigned bi = 0;
        for (unsigned k = LE_FIRST; k <= LE_LAST; k++) {
            uint64_t bound = (uint64_t)1 << k;
            while (bi < TSTATS_HIST_BUCKETS && tstats_hist_upper(bi) <= bound) {
                cum += h[i][bi++];
            }
            buf_appendf(b, PREFIX "%s_bucket{cmd=\"%s\",le=\"%.9g\"} %llu\n", name, cn,
                        (double)bound / 1e6, (unsigned long long)cum);
        }
        buf_appendf(b, PREFIX "%s_bucket{cmd=\"%s\",le=\"+Inf\"} %llu\n", name, cn,
                    (unsigned long long)n);
        /* The sum is the exact time counted beside the calls; its count can
         * trail the histogram's by the calls of the last microseconds. */
        buf_appendf(b, PREFIX "%s_sum{cmd=\"%s\"} %.9g\n", name, cn,
                    (double)ts->cmd[i].usec / 1e6);
        buf_appendf(b, PREFIX "%s_count{cmd=\"%s\"} %llu\n", name, cn, (unsigned long long)n);
    }
    free(h);

    /* end-to-end: read to reply written, one histogram for every request */
    render_histogram(b, METRIC_REQUEST_DURATION, TSTATS_E2E, ts->e2e_usec);
}

static void
render_keyspace(struct buf *b, const struct tstats *ts)
{
    struct store *st = server.store;
    one_u64(b, METRIC_HITS, ts->hits);
    one_u64(b, METRIC_MISSES, ts->misses);
    if (st == NULL) {
        return;
    }
    /* Per shard, each lock held just long enough to copy three numbers. */
    unsigned n = st->nshards;
    size_t *keys = xcalloc(n, sizeof(size_t)), *mem = xcalloc(n, sizeof(size_t));
    size_t total_keys = 0, expiring = 0;
    for (unsigned i = 0; i < n; i++) {
        struct store_shard_stats ss;
        store_shard_stats(st, i, &ss);
        keys[i] = ss.keys;
        mem[i] = ss.mem;
        expiring += ss.expires;
        total_keys += keys[i];
    }
    one_u64(b, METRIC_KEYS, total_keys);
    one_u64(b, METRIC_KEYS_EXPIRING, expiring);
    char lab[32];
    family(b, METRIC_SHARD_KEYS);
    for (unsigned i = 0; i < n; i++) {
        snprintf(lab, sizeof(lab), "shard=\"%u\"", i);
        sample_u64(b, METRIC_SHARD_KEYS, lab, keys[i]);
    }
    one_u64(b, METRIC_MEMORY_USED, store_memory_exact(st));
    one_u64(b, METRIC_MEMORY_MAX, atomic_load(&st->max_memory));
    family(b, METRIC_SHARD_MEMORY);
    for (unsigned i = 0; i < n; i++) {
        snprintf(lab, sizeof(lab), "shard=\"%u\"", i);
        sample_u64(b, METRIC_SHARD_MEMORY, lab, mem[i]);
    }
    free(keys);
    free(mem);
}

static const char *
policy_label(int p)
{
    return p == STORE_NOEVICTION ? "noeviction" : p == STORE_LRU ? "lru" : "tinylfu";
}

static void
render_eviction(struct buf *b)
{
    struct store *st = server.store;
    if (st == NULL) {
        return;
    }
    struct evict_stats es;
    store_evict_stats(st, &es);
    uint64_t evicted = store_evicted_total(st);
    uint64_t rejected = es.rejections < evicted ? es.rejections : evicted;
    char lab[48];

    family(b, METRIC_EVICTION_POLICY);
    snprintf(lab, sizeof(lab), "policy=\"%s\"", policy_label(atomic_load(&st->policy)));
    sample_u64(b, METRIC_EVICTION_POLICY, lab, 1);
    family(b, METRIC_EVICTIONS);
    sample_u64(b, METRIC_EVICTIONS, "reason=\"admission_rejected\"", rejected);
    sample_u64(b, METRIC_EVICTIONS, "reason=\"capacity\"", evicted - rejected);
    one_u64(b, METRIC_EVICT_ADMISSIONS, es.admissions);
    family(b, METRIC_EVICT_SEGMENT_KEYS);
    sample_u64(b, METRIC_EVICT_SEGMENT_KEYS, "segment=\"window\"", es.window_count);
    sample_u64(b, METRIC_EVICT_SEGMENT_KEYS, "segment=\"probation\"", es.probation_count);
    sample_u64(b, METRIC_EVICT_SEGMENT_KEYS, "segment=\"protected\"", es.protected_count);
    family(b, METRIC_EVICT_SEGMENT_BYTES);
    sample_u64(b, METRIC_EVICT_SEGMENT_BYTES, "segment=\"window\"", es.window_weight);
    sample_u64(b, METRIC_EVICT_SEGMENT_BYTES, "segment=\"probation\"", es.probation_weight);
    sample_u64(b, METRIC_EVICT_SEGMENT_BYTES, "segment=\"protected\"", es.protected_weight);
    one_f(b, METRIC_EVICT_WINDOW_RATIO,
          es.capacity ? (double)es.window_max / (double)es.capacity : 0.0);
    one_u64(b, METRIC_EVICT_SKETCH_BYTES, es.sketch_bytes);
    one_u64(b, METRIC_EXPIRATIONS, store_expired_total(st));
}

static void
render_connections(struct buf *b, const struct tstats *ts)
{
    one_u64(b, METRIC_CONNECTIONS, atomic_load(&server.conns_current));
    one_u64(b, METRIC_CONNECTIONS_MAX, atomic_load(&server.max_connections));
    one_u64(b, METRIC_CONNECTIONS_RECEIVED, atomic_load(&server.conns_total));
    family(b, METRIC_CONNECTIONS_REJECTED);
    uint64_t total = atomic_load(&server.conns_rejected), attributed = 0;
    char lab[48];
    for (int r = 0; r < SERVER_REJECT_COUNT; r++) {
        uint64_t v = atomic_load(&server.conns_rejected_by[r]);
        attributed += v;
        snprintf(lab, sizeof(lab), "reason=\"%s\"", server_reject_name((enum server_reject)r));
        sample_u64(b, METRIC_CONNECTIONS_REJECTED, lab, v);
    }
    sample_u64(b, METRIC_CONNECTIONS_REJECTED, "reason=\"other\"",
               total > attributed ? total - attributed : 0);
    one_u64(b, METRIC_RATE_LIMITED, ts->rate_limited);
    one_u64(b, METRIC_AUTH_FAILURES, atomic_load(&server.auth_failures));
    one_u64(b, METRIC_NET_INPUT, ts->net_in);
    one_u64(b, METRIC_NET_OUTPUT, ts->net_out);
    one_u64(b, METRIC_SLOWLOG_ENTRIES, slowlog_len());
}

static void
render_wal(struct buf *b)
{
    struct persist_info pi;
    memset(&pi, 0, sizeof(pi));
    bool on = durable_info(&pi);
    one_u64(b, METRIC_WAL_ENABLED, on);
    if (!on) {
        return;
    }
    const struct wal_stats *w = &pi.wal;
    one_u64(b, METRIC_WAL_HEALTHY, w->err == 0);
    one_u64(b, METRIC_WAL_RECORDS, w->appends);
    one_u64(b, METRIC_WAL_APPEND_BYTES, w->append_bytes);
    one_u64(b, METRIC_WAL_WRITE_BYTES, w->write_bytes);
    one_u64(b, METRIC_WAL_WRITES, w->writes);
    one_u64(b, METRIC_WAL_FSYNCS, w->fsyncs);
    one_f(b, METRIC_WAL_FSYNC_SECONDS, (double)w->fsync_us_total / 1e6);
    one_f(b, METRIC_WAL_FSYNC_MAX, (double)w->fsync_us_max / 1e6);
    one_u64(b, METRIC_WAL_WRITE_ERRORS, w->write_errors);
    one_u64(b, METRIC_WAL_SEGMENTS, w->segments);
    one_u64(b, METRIC_WAL_DISK, w->disk_bytes);
    one_u64(b, METRIC_WAL_PENDING, w->pending_bytes);
    one_u64(b, METRIC_WAL_LSN_LAG,
            w->last_lsn > w->durable_lsn ? w->last_lsn - w->durable_lsn : 0);
    family(b, METRIC_SNAPSHOTS);
    sample_u64(b, METRIC_SNAPSHOTS, "result=\"ok\"", pi.snapshots_ok);
    sample_u64(b, METRIC_SNAPSHOTS, "result=\"failed\"", pi.snapshots_failed);
    one_u64(b, METRIC_SNAPSHOT_IN_PROGRESS, pi.in_progress);
    one_f(b, METRIC_SNAPSHOT_LAST_SUCCESS, (double)pi.last_save_ms / 1000.0);
    one_f(b, METRIC_SNAPSHOT_LAST_DURATION, (double)pi.last_duration_us / 1e6);
    one_u64(b, METRIC_CHANGES_SINCE_SNAPSHOT, pi.changes_since_save);
}

static void
render_http(struct buf *b)
{
    family(b, METRIC_HTTP_REQUESTS);
    for (int p = 0; p < METRICS_PATH_COUNT; p++) {
        for (size_t c = 0; c <= NCODES; c++) {
            uint64_t v = atomic_load_explicit(&http_counts[p][c], memory_order_relaxed);
            if (v == 0) {
                continue;
            }
            char lab[80], code[8];
            if (c < NCODES) {
                snprintf(code, sizeof(code), "%u", codes[c]);
            } else {
                snprintf(code, sizeof(code), "other");
            }
            snprintf(lab, sizeof(lab), "path=\"%s\",code=\"%s\"", path_names[p], code);
            sample_u64(b, METRIC_HTTP_REQUESTS, lab, v);
        }
    }
    one_f(b, METRIC_SCRAPE_DURATION, (double)atomic_load(&last_render_us) / 1e6);
}

/* Cluster mode only: the topology as this node applied it, Raft, copies. */
static void
render_cluster_view(struct buf *b, const struct tstats *ts, const struct topo_view *v,
                    const struct cluster_raft_info *rip)
{
    one_u64(b, METRIC_CLUSTER_ENABLED, v != NULL);
    if (v == NULL) {
        return;
    }
    struct cluster_raft_info ri = *rip;
    unsigned active = 0, vbs = 0;
    for (unsigned i = 0; i < v->nnodes; i++) {
        active += !(v->nodes[i].flags & TOPO_NODE_LEAVING);
    }
    for (uint32_t vb = 0; vb < v->nvb; vb++) {
        vbs += v->self != TOPO_VIEW_NONE && v->vb_n[vb] && v->vb_nodes[(size_t)vb * v->rf] == v->self;
    }
    one_u64(b, METRIC_CLUSTER_STATE_OK, v->slots_assigned == TOPO_SLOTS);
    one_u64(b, METRIC_CLUSTER_NODES, v->nnodes);
    one_u64(b, METRIC_CLUSTER_NODES_ACTIVE, active);
    one_u64(b, METRIC_CLUSTER_RF, v->rf);
    one_u64(b, METRIC_CLUSTER_CONFIG_EPOCH, v->config_epoch);
    family(b, METRIC_CLUSTER_RAFT_ROLE);
    char lab[64];
    snprintf(lab, sizeof(lab), "role=\"%s\"", ri.role ? ri.role : "unavailable");
    sample_u64(b, METRIC_CLUSTER_RAFT_ROLE, lab, 1);
    one_u64(b, METRIC_CLUSTER_RAFT_TERM, ri.term);
    one_u64(b, METRIC_CLUSTER_RAFT_COMMIT, ri.commit_index);
    one_u64(b, METRIC_CLUSTER_RAFT_APPLIED, ri.applied_index);
    family(b, METRIC_CLUSTER_RAFT_VOTERS);
    sample_u64(b, METRIC_CLUSTER_RAFT_VOTERS, "kind=\"voter\"", ri.voters);
    sample_u64(b, METRIC_CLUSTER_RAFT_VOTERS, "kind=\"standby\"", ri.standbys);
    one_u64(b, METRIC_CLUSTER_VBUCKETS_OWNED, vbs);
    one_u64(b, METRIC_CLUSTER_SLOTS_OWNED, v->nvb ? (uint64_t)vbs * (TOPO_SLOTS / v->nvb) : 0);
    uint64_t moved = 0;
    for (unsigned i = 0; i < errstat_count() && i < ERRSTAT_MAX; i++) {
        if (strcmp(errstat_name(i), "MOVED") == 0) {
            moved = ts->errs[i];
        }
    }
    one_u64(b, METRIC_CLUSTER_MOVED, moved);
    one_u64(b, METRIC_CLUSTER_MIGRATIONS_ACTIVE, ri.migrations_active);
    one_u64(b, METRIC_CLUSTER_MIGRATIONS_DONE, ri.migrations_completed);
    one_u64(b, METRIC_CLUSTER_KEYS_MIGRATED, ri.keys_migrated);
    one_u64(b, METRIC_CLUSTER_BYTES_MIGRATED, ri.bytes_migrated);
    family(b, METRIC_CLUSTER_BUS_FRAMES);
    sample_u64(b, METRIC_CLUSTER_BUS_FRAMES, "dir=\"sent\"", ri.bus_sent);
    sample_u64(b, METRIC_CLUSTER_BUS_FRAMES, "dir=\"received\"", ri.bus_received);
    one_u64(b, METRIC_CLUSTER_FORWARDED, ts->fwd_requests);
    one_u64(b, METRIC_CLUSTER_FORWARD_FAILED, ts->fwd_failed);
    one_u64(b, METRIC_CLUSTER_FORWARD_RETRIES, ts->fwd_retries);
    render_histogram(b, METRIC_CLUSTER_FORWARD_DURATION, TSTATS_FWD, ts->fwd_usec);
}

/* This thread is no worker: the view is held (cluster_view_hold) while read. */
static void
render_cluster(struct buf *b, const struct tstats *ts)
{
    struct cluster_raft_info ri;
    cluster_raft_info(&ri);
    const struct topo_view *v = cluster_view_hold();
    render_cluster_view(b, ts, v, &ri);
    cluster_view_release();
}

void
metrics_render(struct buf *out)
{
    int64_t t0 = clock_mono_us();
    struct tstats ts;
    tstats_sum(&ts);
    render_process(out);
    render_commands(out, &ts);
    render_keyspace(out, &ts);
    render_eviction(out);
    render_connections(out, &ts);
    render_wal(out);
    render_http(out);
    render_cluster(out, &ts);
    atomic_store(&last_render_us, clock_mono_us() - t0);
}
