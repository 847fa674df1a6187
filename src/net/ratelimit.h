/*
 * ratelimit.h -- token buckets per client address ([rate_limiting]).
 *
 * Every client address (IP, port ignored) has one bucket holding up to
 * `burst` tokens, refilled at `rate` tokens per second; a request takes one
 * token, and a request that finds none is refused (the caller replies with
 * an error and keeps the connection). All connections from one address
 * share its bucket, whichever worker thread serves them.
 *
 * Storage: 64 shards, each a chained hash table behind its own mutex. A
 * connection holds a reference to its address's entry from its first
 * request to its close, so the per-request cost is one uncontended lock and
 * a little arithmetic, no lookup. Entries no connection references stay
 * while their bucket is still refilling (so reconnecting does not reset a
 * bucket), and are dropped by ratelimit_sweep once full again, or when a
 * shard holds more than RATELIMIT_MAX_IDLE / 64 of them (a quarter of them
 * dropped in table order, not by age):
 * memory is bounded by live addresses plus RATELIMIT_MAX_IDLE entries.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef CRAB_NET_RATELIMIT_H
#define CRAB_NET_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_SHARDS 64
#define RATELIMIT_MAX_IDLE 65536 /* unreferenced entries kept, all shards */

struct ratelimit_entry;

/* Set the limits (live: CONFIG SET). rate > 0 tokens/s, burst >= 1. A
 * disabled limiter lets everything through and ratelimit_take is not to be
 * called (ratelimit_enabled tells). Existing buckets keep their tokens,
 * clamped to the new burst. */
void ratelimit_configure(bool enabled, double rate, double burst);
bool ratelimit_enabled(void);

/* The entry for a 16-byte address key (acl_ip_key), created with a full
 * bucket if new; the caller holds a reference until ratelimit_release.
 * Never NULL. */
struct ratelimit_entry *ratelimit_acquire(const uint8_t key[16]);
void ratelimit_release(struct ratelimit_entry *e);

/* Take one token at monotonic time now_us. True: allowed. False: refused
 * (the bucket is left as it was, apart from the refill). */
bool ratelimit_take(struct ratelimit_entry *e, int64_t now_us);

/* Drop full, unreferenced entries from shards part, part + nparts, ...
 * (each worker's cron sweeps its share). Returns how many were freed. */
size_t ratelimit_sweep(unsigned part, unsigned nparts, int64_t now_us);

/* Entries currently held (referenced or not). */
size_t ratelimit_entries(void);

/* Free every unreferenced entry (tests, shutdown). */
void ratelimit_clear(void);

#endif
