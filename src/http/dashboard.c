/*
 * dashboard.c -- the embedded page and its live JSON (see dashboard.h).
 *
 * The JSON is built from the same sources as /metrics and STATS: the summed
 * per-thread counters, the merged latency histogram, and each shard's
 * figures read under its lock, one shard at a time.
 */
#include "http/dashboard.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#include "cluster/cluster.h"
#include "cmd/info.h"
#include "cmd/tstats.h"
#include "conf/config.h"
#include "core/server.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#include "http/dashboard_html.h" /* generated at build time from dashboard.html */

const char *
dashboard_html(size_t *len)
{
    *len = dashboard_page_len;
    return (const char *)dashboard_page;
}

static const char *
policy_name(int p)
{
    return p == STORE_NOEVICTION ? "noeviction" : p == STORE_LRU ? "lru" : "tinylfu";
}

/* The non-empty buckets of h as [lower, upper, count] triples. */
static void
hist_json(struct buf *out, const uint64_t h[TSTATS_HIST_BUCKETS])
{
    bool first = true;
    for (unsigned b = 0; b < TSTATS_HIST_BUCKETS; b++) {
        if (h[b] == 0) {
            continue;
        }
        buf_appendf(out, "%s[%llu,%llu,%llu]", first ? "" : ",",
                    (unsigned long long)tstats_hist_lower(b),
                    (unsigned long long)tstats_hist_upper(b), (unsigned long long)h[b]);
        first = false;
    }
}

/* A JSON string of s (node ids and addresses are printable, but escape anyway). */
static void
json_str(struct buf *out, const char *s)
{
    buf_appendc(out, '"');
    log_json_escape(out, s, strlen(s));
    buf_appendc(out, '"');
}

/*
 * The "cluster" object in cluster mode, from the topology view this node has
 * applied (held for the read: this thread is no worker) and the control
 * thread's copy of its Raft and copy figures. Node indexes in "ring" and
 * "migrations" are positions in "nodes" (join order); -1 = none.
 */
static void
cluster_json(struct buf *out, const struct topo_view *v, const struct cluster_raft_info *ri)
{
    const char *me = cluster_myid();
    uint32_t per_vb = v->nvb ? TOPO_SLOTS / v->nvb : 0;
    buf_appendf(out, "{\"enabled\":true,\"state\":\"%s\",\"slots_assigned\":%u,\"id\":",
                v->slots_assigned == TOPO_SLOTS ? "ok" : "fail", (unsigned)v->slots_assigned);
    json_str(out, me ? me : "");
    buf_appendf(out, ",\"member\":%s,\"role\":", v->self != TOPO_VIEW_NONE ? "true" : "false");
    json_str(out, ri->role ? ri->role : "unavailable");
    buf_appendf(out, ",\"term\":%llu,\"leader\":", (unsigned long long)ri->term);
    if (ri->leader_node_id[0]) {
        json_str(out, ri->leader_node_id);
    } else {
        buf_appendstr(out, "null");
    }
    buf_appendf(out,
                ",\"config_epoch\":%llu,\"commit_index\":%llu,\"applied_index\":%llu,"
                "\"voters\":%u,\"standbys\":%u,\"replication_factor\":%u,\"vbuckets\":%u,"
                "\"slots_per_vbucket\":%u,\"nodes\":[",
                (unsigned long long)v->config_epoch, (unsigned long long)ri->commit_index,
                (unsigned long long)ri->applied_index, ri->voters, ri->standbys, (unsigned)v->rf,
                (unsigned)v->nvb, (unsigned)per_vb);
    uint32_t *owned = xcalloc(v->nnodes ? v->nnodes : 1, sizeof(uint32_t));
    for (uint32_t vb = 0; vb < v->nvb; vb++) {
        if (v->vb_n[vb]) {
            owned[v->vb_nodes[(size_t)vb * v->rf]]++;
        }
    }
    for (uint16_t i = 0; i < v->nnodes; i++) {
        const struct topo_node *nd = &v->nodes[i];
        buf_appendstr(out, i ? ",{\"id\":" : "{\"id\":");
        json_str(out, nd->id);
        buf_appendstr(out, ",\"addr\":");
        char addr[TOPO_IP_LEN + 8];
        snprintf(addr, sizeof(addr), "%s:%u", nd->ip, (unsigned)nd->resp_port);
        json_str(out, addr);
        buf_appendf(out,
                    ",\"bus_port\":%u,\"leaving\":%s,\"self\":%s,\"leader\":%s,"
                    "\"vbuckets\":%u,\"slots\":%u,\"share\":%.4f}",
                    (unsigned)nd->bus_port, nd->flags & TOPO_NODE_LEAVING ? "true" : "false",
                    i == v->self ? "true" : "false",
                    ri->leader_node_id[0] && strcmp(ri->leader_node_id, nd->id) == 0 ? "true"
                                                                                     : "false",
                    (unsigned)owned[i], (unsigned)(owned[i] * per_vb),
                    (double)owned[i] * per_vb / TOPO_SLOTS);
    }
    free(owned);
    buf_appendstr(out, "],\"ring\":[");
    for (uint32_t vb = 0; vb < v->nvb; vb++) {
        int primary = v->vb_n[vb] ? (int)v->vb_nodes[(size_t)vb * v->rf] : -1;
        buf_appendf(out, "%s%d", vb ? "," : "", primary);
    }
    buf_appendstr(out, "],\"migrations\":{\"in_flight\":[");
    bool first = true;
    for (uint32_t vb = 0; v->vb_target && vb < v->nvb; vb++) {
        if (v->vb_target[vb] == TOPO_VIEW_NONE) {
            continue;
        }
        buf_appendf(out,
                    "%s{\"vb\":%u,\"first_slot\":%u,\"last_slot\":%u,\"from\":%d,\"to\":%u",
                    first ? "" : ",", (unsigned)vb, (unsigned)(vb * per_vb),
                    (unsigned)((vb + 1) * per_vb - 1),
                    v->vb_n[vb] ? (int)v->vb_nodes[(size_t)vb * v->rf] : -1,
                    (unsigned)v->vb_target[vb]);
        /* a copy this node sends: how far its walk is */
        const struct cluster_copy_progress *pg = NULL;
        for (unsigned i = 0; i < ri->ncopies; i++) {
            if (ri->copies[i].vb == vb) {
                pg = &ri->copies[i];
            }
        }
        if (pg != NULL) {
            buf_appendf(out, ",\"walked\":%llu,\"total\":%llu}",
                        (unsigned long long)pg->walked, (unsigned long long)pg->total);
        } else {
            buf_appendstr(out, ",\"walked\":null,\"total\":null}");
        }
        first = false;
    }
    buf_appendf(out,
                "],\"active\":%u,\"completed\":%llu,\"keys_migrated\":%llu,"
                "\"bytes_migrated\":%llu},\"bus_sent\":%llu,\"bus_received\":%llu,",
                ri->migrations_active, (unsigned long long)ri->migrations_completed,
                (unsigned long long)ri->keys_migrated, (unsigned long long)ri->bytes_migrated,
                (unsigned long long)ri->bus_sent, (unsigned long long)ri->bus_received);
    /* requests this node forwarded to their owners, and their latency */
    struct tstats ts;
    tstats_sum(&ts);
    uint64_t h[TSTATS_HIST_BUCKETS];
    tstats_hist_sum(TSTATS_FWD, h);
    bool any = tstats_hist_count(h) > 0;
    buf_appendf(out,
                "\"forward\":{\"requests\":%llu,\"failed\":%llu,\"retries\":%llu,"
                "\"p50_us\":%.0f,\"p99_us\":%.0f}}",
                (unsigned long long)ts.fwd_requests, (unsigned long long)ts.fwd_failed,
                (unsigned long long)ts.fwd_retries, any ? tstats_hist_quantile(h, 0.5) : 0.0,
                any ? tstats_hist_quantile(h, 0.99) : 0.0);
}

void
dashboard_data_json(struct buf *out)
{
    struct tstats ts;
    tstats_sum(&ts);
    uint64_t total = tstats_calls(&ts);
    uint64_t h[TSTATS_HIST_BUCKETS];
    tstats_hist_sum(-1, h);
    struct store *st = server.store;

    buf_appendf(out,
                "{\"t_us\":%lld,\"uptime_s\":%lld,\"version\":\"%s\",\"run_id\":\"%s\","
                "\"cluster\":",
                (long long)clock_mono_us(), (long long)((clock_ms() - server.start_ms) / 1000),
                CRABCACHE_VERSION, server.run_id);
    struct cluster_raft_info ri;
    cluster_raft_info(&ri);
    const struct topo_view *v = cluster_view_hold(); /* NULL: cluster mode is off */
    if (v == NULL && server.cfg && server.cfg->cluster.enabled) {
        v = &cluster_view_empty; /* starting: no topology yet */
    }
    if (v != NULL) {
        cluster_json(out, v, &ri);
    } else {
        buf_appendstr(out, "{\"enabled\":false,\"role\":\"standalone\"}");
    }
    cluster_view_release();
    buf_appendf(out, ",\"threads\":%u,\"port\":%d,\"resp_port\":%d,\"state\":%d,",
                server.threads, server.port, server.resp_port, atomic_load(&server.state));
    buf_appendf(out,
                "\"commands\":%llu,\"hits\":%llu,\"misses\":%llu,\"connections\":%llu,"
                "\"connections_total\":%llu,\"rejected\":%llu,\"rss\":%zu,",
                (unsigned long long)total, (unsigned long long)ts.hits,
                (unsigned long long)ts.misses,
                (unsigned long long)atomic_load(&server.conns_current),
                (unsigned long long)atomic_load(&server.conns_total),
                (unsigned long long)atomic_load(&server.conns_rejected), server_rss_bytes());
    if (st) {
        buf_appendf(out,
                    "\"memory\":%zu,\"max_memory\":%zu,\"policy\":\"%s\",\"evictions\":%llu,"
                    "\"expirations\":%llu,\"shards\":[",
                    store_memory_exact(st), atomic_load(&st->max_memory),
                    policy_name(atomic_load(&st->policy)),
                    (unsigned long long)store_evicted_total(st),
                    (unsigned long long)store_expired_total(st));
        size_t keys = 0;
        for (unsigned i = 0; i < st->nshards; i++) {
            struct store_shard_stats ss;
            store_shard_stats(st, i, &ss);
            size_t k = ss.keys, m = ss.mem;
            keys += k;
            buf_appendf(out, "%s{\"keys\":%zu,\"memory\":%zu}", i ? "," : "", k, m);
        }
        buf_appendf(out, "],\"keys\":%zu,", keys);
    }
    buf_appendf(out, "\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"lat\":[",
                tstats_hist_quantile(h, 0.50), tstats_hist_quantile(h, 0.95),
                tstats_hist_quantile(h, 0.99));
    hist_json(out, h);
    /* end to end: read to reply written (crabcache_request_duration_seconds) */
    tstats_hist_sum(TSTATS_E2E, h);
    buf_appendf(out, "],\"e2e_p50\":%.3f,\"e2e_p95\":%.3f,\"e2e_p99\":%.3f,\"e2e\":[",
                tstats_hist_quantile(h, 0.50), tstats_hist_quantile(h, 0.95),
                tstats_hist_quantile(h, 0.99));
    hist_json(out, h);
    buf_appendstr(out, "]}");
}
