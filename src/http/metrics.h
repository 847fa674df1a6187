/*
 * metrics.h -- the Prometheus text exposition of /metrics (format 0.0.4).
 *
 * Every family is declared once in http/metrics.def (name, type, help).
 * Names carry the crabcache_ prefix; counters end in _total, sizes in
 * _bytes, durations in _seconds, following the Prometheus conventions.
 * Command latencies are exported as one histogram per command with bucket
 * bounds at powers of two of microseconds (1 us .. 8.4 s), which are exact
 * bounds of the server's internal log-linear histograms (cmd/tstats.h).
 *
 * Cost: one pass over every worker's counter block and histograms (relaxed
 * loads, no lock a worker takes on its hot path) and each shard lock taken
 * once, briefly, to read its key and memory figures. Workers never wait on
 * a scrape.
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef CRAB_HTTP_METRICS_H
#define CRAB_HTTP_METRICS_H

#include <stdint.h>

#include "util/buf.h"

enum metric_id {
#define METRIC(id, name, type, help) METRIC_##id,
#include "http/metrics.def"
#undef METRIC
    METRIC_COUNT
};

struct metric_info {
    const char *name; /* without the crabcache_ prefix */
    const char *type; /* "counter", "gauge", "histogram" */
    const char *help;
};

/* The table entry of a family (id < METRIC_COUNT). */
const struct metric_info *metrics_info(enum metric_id id);

/* HTTP endpoints, for crabcache_http_requests_total{path}. */
enum metrics_path {
    METRICS_PATH_METRICS = 0,
    METRICS_PATH_HEALTH,
    METRICS_PATH_STATS,
    METRICS_PATH_DASHBOARD,
    METRICS_PATH_DASHBOARD_DATA,
    METRICS_PATH_OTHER,
    METRICS_PATH_COUNT
};

/* Count one HTTP response with its status code. */
void metrics_count_http(enum metrics_path path, unsigned code);

/* Append the whole exposition to out. */
void metrics_render(struct buf *out);

#endif
