/*
 * dashboard.h -- the live dashboard: one self-contained HTML page (inline
 * CSS and JavaScript, canvas charts, no external assets) and the JSON it
 * polls.
 *
 * The page source is src/http/dashboard.html; the build turns it into a C
 * array (src/http/embed.cmake), so the binary serves it with no file around.
 *
 * The JSON (GET /dashboard/data) carries cumulative figures and the merged
 * latency histogram of all commands as [lower_us, upper_us, count] triples
 * of its non-empty buckets; the page subtracts two polls to get rates and the
 * p50/p95/p99 of the last interval, so the server keeps no per-viewer state.
 * Times are the server's (t_us), so rates stay right even when the browser's
 * clock is virtual (headless tests).
 *
 * In cluster mode the JSON also has a "cluster" object (docs/metrics.md,
 * "/dashboard"): the topology view this node applied, read under
 * cluster_view_hold, and the control thread's Raft and copy figures.
 *
 * Thread-safety: both functions may be called from any thread.
 */
#ifndef CRAB_HTTP_DASHBOARD_H
#define CRAB_HTTP_DASHBOARD_H

#include <stddef.h>

#include "util/buf.h"

/* The page (static storage, not NUL-terminated data of *len bytes). */
const char *dashboard_html(size_t *len);

/* Append the live figures as one JSON object to out. */
void dashboard_data_json(struct buf *out);

#endif
