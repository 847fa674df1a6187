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

#include "conf/config.h"
#include "core/server.h"
#include "util/clock.h"
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

void
dashboard_data_json(struct buf *out)
{
    struct tstats ts;
    tstats_sum(&ts);
    uint64_t total = tstats_calls(&ts);
    uint64_t h[TSTATS_HIST_BUCKETS];
    tstats_hist_sum(-1, h);
    struct store *st = server.store;
    bool cluster = server.cfg && server.cfg->cluster.enabled;

    buf_appendf(out,
                "{\"t_us\":%lld,\"uptime_s\":%lld,\"version\":\"%s\",\"run_id\":\"%s\","
                "\"cluster\":{\"enabled\":%s,\"role\":\"%s\"},\"threads\":%u,"
                "\"port\":%d,\"resp_port\":%d,\"state\":%d,",
                (long long)clock_mono_us(), (long long)((clock_ms() - server.start_ms) / 1000),
                CRABCACHE_VERSION, server.run_id, cluster ? "true" : "false",
                cluster ? "node" : "standalone", server.threads, server.port, server.resp_port,
                atomic_load(&server.state));
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
            struct shard *sh = shard_lock(st, i);
            size_t k = ht_count(&sh->ht), m = sh->mem;
            shard_unlock(sh);
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
