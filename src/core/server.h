/*
 * server.h -- the one mutable global: struct server.
 *
 * Settings are copied here from the configuration at start-up (main.c);
 * fields that CONFIG SET may change at run time are atomics. Counters that
 * every request touches live in per-thread blocks (struct tstats) summed on
 * demand, so worker threads never share a written cache line on the hot path.
 *
 * Latency histograms (per thread, per command, merged on read) are
 * log-linear: values below 8 us get one bucket each, then every power of two
 * [2^k, 2^(k+1)) is cut into 8 equal sub-buckets, up to 2^30 us (about 18
 * minutes; anything longer lands in the last bucket). The relative error of a
 * percentile read from them is below 1/8 (12.5 %) and usually half that, for
 * 224 buckets (1.8 KiB) per command and thread. Every power of two of
 * microseconds is a bucket boundary, which is what /metrics and LATENCY
 * HISTOGRAM export.
 */
#ifndef CRAB_CORE_SERVER_H
#define CRAB_CORE_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd.h"
#include "persist/mstream.h"
#include "store/store.h"

struct config;
struct buf;

/* ---- latency histograms -------------------------------------------------- */

#define TSTATS_HIST_SUB 8                        /* sub-buckets per power of two */
#define TSTATS_HIST_MAX_LOG2 30                  /* last octave starts at 2^29 us */
#define TSTATS_HIST_BUCKETS (TSTATS_HIST_SUB + (TSTATS_HIST_MAX_LOG2 - 3) * TSTATS_HIST_SUB)

/* Bucket of a duration in microseconds. */
static inline unsigned
tstats_hist_index(uint64_t usec)
{
    if (usec < TSTATS_HIST_SUB) {
        return (unsigned)usec;
    }
    unsigned k = 63u - (unsigned)__builtin_clzll(usec); /* >= 3 */
    if (k >= TSTATS_HIST_MAX_LOG2) {
        return TSTATS_HIST_BUCKETS - 1;
    }
    return TSTATS_HIST_SUB + (k - 3) * TSTATS_HIST_SUB +
           (unsigned)((usec >> (k - 3)) & (TSTATS_HIST_SUB - 1));
}

/* Smallest duration (us) of bucket idx, and the first one past it. */
uint64_t tstats_hist_lower(unsigned idx);
uint64_t tstats_hist_upper(unsigned idx);

/*
 * The duration (us) below which a fraction q (0..1) of the values in h fall,
 * interpolated linearly inside the bucket that holds that rank. 0 when h is
 * empty. Pure function of h.
 */
double tstats_hist_quantile(const uint64_t h[TSTATS_HIST_BUCKETS], double q);

/* Number of values in h. */
uint64_t tstats_hist_count(const uint64_t h[TSTATS_HIST_BUCKETS]);

/* ---- per-thread counters ------------------------------------------------- */

/* Error replies are counted per error code (the reply's first word: "ERR",
 * "MOVED", ...), as Redis's INFO errorstats; at most ERRSTAT_MAX codes, as
 * Redis's limit of 128 (later new codes are not counted per code). */
#define ERRSTAT_MAX 128
#define ERRSTAT_NAME_MAX 31

/* The row of tstats.lat holding the end-to-end latency of requests: from
 * the read that brought a request's bytes to the write that handed its
 * reply to the socket (net/conn.c), over every command and both protocols.
 * tstats_hist_sum(TSTATS_E2E, h) reads it. */
#define TSTATS_E2E CMD_COUNT

struct tstats {
    uint64_t hits, misses;
    uint64_t net_in, net_out;
    uint64_t rate_limited;      /* requests refused by the rate limiter */
    uint64_t changes;           /* mutations reported (prop_*); never reset */
    uint64_t e2e_usec;          /* sum of the end-to-end latencies recorded */
    struct cmd_stat cmd[CMD_COUNT];
    uint64_t errs[ERRSTAT_MAX];    /* error replies per code (errstat_name) */
    uint64_t errors;               /* every error reply: total_error_replies */
    /* This thread's CMD_COUNT latency histograms, then the end-to-end one
     * (row TSTATS_E2E) (64-byte aligned, written only by the owner). NULL
     * in the sums tstats_sum fills. */
    uint64_t (*lat)[TSTATS_HIST_BUCKETS];
    struct tstats *next; /* registry of all threads' blocks */
};

/* Commands executed, over every command of a summed block. */
uint64_t tstats_calls(const struct tstats *t);

/* The calling thread's block (created on first use, never freed: threads
 * live as long as the server). Lock-free after the first call, inline: one
 * thread-local load and a test on the hot path. */
extern _Thread_local struct tstats *tstats_tl;
struct tstats *tstats_self_create(void);
static inline struct tstats *
tstats_self(void)
{
    struct tstats *t = tstats_tl;
    return __builtin_expect(t != NULL, 1) ? t : tstats_self_create();
}

/* Sum of every thread's counters into out (out->lat and out->next are left
 * NULL). Reads other threads' blocks with relaxed loads, no lock that a
 * worker takes on its hot path. Any thread. */
void tstats_sum(struct tstats *out);

/*
 * Merged latency histograms. tstats_hist_sum: of one command (cmd_id), or of
 * all commands together when cmd_id < 0, or the end-to-end one
 * (TSTATS_E2E). tstats_hist_sum_all: every
 * command's, into out[CMD_COUNT] (caller-provided, about 140 KiB: allocate
 * it). Both overwrite out. Any thread.
 */
void tstats_hist_sum(int cmd_id, uint64_t out[TSTATS_HIST_BUCKETS]);
void tstats_hist_sum_all(uint64_t (*out)[TSTATS_HIST_BUCKETS]);

/* Count one error reply err ("CODE message", without RESP's '-') for the
 * calling thread: its code (the part before the first space within 32 bytes,
 * else "ERR", as Redis). Called by reply_error for every error reply. */
void tstats_count_error(const char *err, size_t len);

/* The error codes seen so far (index i of tstats.errs), in first-seen order.
 * Any thread. */
unsigned errstat_count(void);
const char *errstat_name(unsigned i);

/* Zero every per-thread counter and histogram (CONFIG RESETSTAT; Redis
 * resets its net byte totals too, and so does this). Any thread; an increment
 * racing with the reset may survive it. */
void tstats_reset_all(void);

/* Record one call of command cmd_id that took usec microseconds. Owner
 * thread only (ts must be tstats_self()). */
static inline void
tstats_record_latency(struct tstats *ts, unsigned cmd_id, uint64_t usec)
{
    uint64_t *b = &ts->lat[cmd_id][tstats_hist_index(usec)];
    __atomic_store_n(b, __atomic_load_n(b, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* Record n requests whose replies were written usec microseconds after
 * their bytes were read. Owner thread only. */
static inline void
tstats_record_e2e(struct tstats *ts, uint64_t usec, uint64_t n)
{
    uint64_t *b = &ts->lat[TSTATS_E2E][tstats_hist_index(usec)];
    __atomic_store_n(b, __atomic_load_n(b, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
    __atomic_store_n(&ts->e2e_usec, __atomic_load_n(&ts->e2e_usec, __ATOMIC_RELAXED) + usec * n,
                     __ATOMIC_RELAXED);
}

/* ---- the server ------------------------------------------------------------ */

/* Life cycle, for /health and readiness. */
enum server_state {
    SERVER_STARTING = 0, /* loading, listeners not open yet */
    SERVER_SERVING,      /* accepting and serving clients */
    SERVER_STOPPING,     /* shutdown requested */
};

/* Why a connection was refused right after accept (crabcache_connections_
 * rejected_total{reason}). Rejections counted only through the plain
 * conns_rejected counter show up as reason "other". */
enum server_reject {
    SERVER_REJECT_MAXCLIENTS = 0, /* max_connections reached */
    SERVER_REJECT_PROTECTED,      /* protected mode, non-loopback peer */
    SERVER_REJECT_ALLOWLIST,      /* peer not in security.allowed_ips */
    SERVER_REJECT_TLS,            /* TLS handshake failed */
    SERVER_REJECT_COUNT
};

/* "max_connections", "protected_mode", "allowlist", "tls". */
const char *server_reject_name(enum server_reject r);

/* Count one refused connection: conns_rejected and its reason. Any thread. */
void server_count_rejected(enum server_reject r);

struct server {
    struct config *cfg;
    struct store *store;
    /* The store's mutations, to the WAL and any other consumer
     * (persist/mstream.h); set up with the store. */
    struct mstream stream;

    /* network settings (read-only after start) */
    char *bind;
    int port, resp_port, metrics_port;
    unsigned threads;
    bool protected_mode;

    /* live settings */
    _Atomic uint64_t max_connections;
    _Atomic int64_t idle_timeout_s;
    _Atomic size_t max_value_size;

    /* auth: tokens (NULL-terminated); none = no auth */
    char **auth_tokens;

    /* state */
    int64_t start_ms;
    char run_id[41];
    _Atomic int state;            /* enum server_state */
    _Atomic bool shutdown_asap;
    _Atomic int64_t lastsave_s;
    _Atomic bool active_expire;   /* DEBUG SET-ACTIVE-EXPIRE */

    /* connection figures */
    _Atomic uint64_t conns_current, conns_total, conns_rejected;
    _Atomic uint64_t conns_rejected_by[SERVER_REJECT_COUNT];
    _Atomic uint64_t auth_failures;
    _Atomic uint64_t next_client_id;
};

extern struct server server;

/* ---- introspection (cmd/t_info.c) ---------------------------------------- */

/* The STATS JSON of the native protocol and /stats: one object, no newline,
 * appended to out. Takes each shard lock briefly. Any thread. */
void stats_json(struct buf *out);

/* Resident set size of the process in bytes (0 if unknown). */
size_t server_rss_bytes(void);

/* Record the allocator's figure before any data is loaded: MEMORY STATS's
 * startup.allocated (cmd/t_object.c). */
void memory_note_startup(void);

#endif
