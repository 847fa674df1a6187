/*
 * bench.h -- crabcache-bench: configuration, per-thread results, the run.
 *
 * main.c parses the options into a bench_cfg, bench_run() starts cfg.threads
 * threads, each with its own epoll loop over its share of the connections,
 * and returns per-thread results that main.c merges and prints. Nothing here
 * is shared between threads except the read-only configuration and a few
 * atomics inside bench_run().
 */
#ifndef CRAB_BENCH_BENCH_H
#define CRAB_BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "trace.h"
#include "wire.h"
#include "zipf.h"

enum bench_dist { BENCH_DIST_UNIFORM = 0, BENCH_DIST_ZIPF, BENCH_DIST_SEQUENTIAL };

struct bench_cfg {
    const char *host;
    const char *port;
    enum bench_proto proto;
    int threads;
    int conns;              /* total connections, spread over the threads */
    int pipeline;           /* requests in flight per connection */
    unsigned set_ratio;     /* SET:GET weights */
    unsigned get_ratio;
    uint64_t keys;          /* key space: <key_prefix>%012d of 0..keys-1 */
    const char *key_prefix; /* "key:" unless --key-prefix */
    size_t key_prefix_len;
    enum bench_dist dist;
    double zipf_s;
    size_t value_size;
    double duration_s;      /* 0: run until `requests` are done */
    uint64_t requests;      /* 0: no count limit */
    double rate;            /* offered requests/s, 0: closed loop */
    double rate_window_us;  /* rate mode: send what is due this much early */
    const char *trace;      /* trace file, or NULL */
    enum bench_trace_fmt trace_fmt;
    uint64_t seed;
    double connect_timeout_s;
    double drain_timeout_s; /* wait for in-flight replies after the end */
};

/* Fill cfg with the defaults documented in --help. */
void bench_cfg_defaults(struct bench_cfg *cfg);

/* Counters and histograms of one thread (summed over threads by bench_result_merge). */
struct bench_result {
    uint64_t completed;     /* replies received */
    uint64_t gets, sets;
    uint64_t hits, misses;  /* GET replies with a value / null */
    uint64_t errors;        /* error replies */
    uint64_t conn_errors;   /* connections lost or protocol violations */
    uint64_t timeouts;      /* requests still unanswered at the end */
    uint64_t trace_records; /* trace keys replayed */
    int64_t first_ns;       /* run start (monotonic ns) */
    int64_t last_ns;        /* time of the last reply (monotonic ns) */
    double late_ns_max;     /* rate mode: worst lag of a send behind schedule */
    struct bench_hist all, get, set;
};

void bench_result_init(struct bench_result *r);
void bench_result_merge(struct bench_result *dst, const struct bench_result *src);

/*
 * Run the benchmark described by cfg. On success returns 0 and stores the
 * merged result in *out; prints a message to stderr and returns -1 when a
 * connection cannot be made or the trace cannot be opened. Errors during
 * the run (lost connections) are counted in out->conn_errors, not fatal.
 */
int bench_run(const struct bench_cfg *cfg, struct bench_result *out);

/* Monotonic time in nanoseconds. */
int64_t bench_now_ns(void);

#endif
