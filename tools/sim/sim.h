/*
 * sim.h -- shared declarations of crabcache-sim, the offline trace
 * simulator (tools/sim/).
 *
 * A trace is decoded once into a sequence of dense key ids (0..nkeys-1) with
 * one 64-bit key hash per id; every replay (policy, size) then indexes an
 * array of entries by id, which is the simulator's key -> entry map. The
 * decoded trace is read-only, so replays of one trace run in parallel.
 */
#ifndef CRAB_TOOLS_SIM_H
#define CRAB_TOOLS_SIM_H

#include "evict/evict.h"

#include <stddef.h>
#include <stdint.h>

enum trace_format {
    TRACE_LIRS = 0,     /* text, one key a line, '*' and blank lines skipped */
    TRACE_ARC,          /* text "start count ignored reqno", count expanded */
    TRACE_SCARAB,       /* binary big-endian int64 keys */
    TRACE_CACHE2K,      /* binary big-endian int32 keys */
};

struct trace {
    char *name;
    uint32_t *ids;      /* requests, as dense key ids */
    size_t nreq;
    uint64_t *hashes;   /* per key id: the key's hash (XXH3 of the int64) */
    uint32_t nkeys;
    uint32_t *next_use; /* per request: index of the next request of the same
                           key, UINT32_MAX if none (for OPT); lazily built */
};

/* Guess the format from the file name (lirs-, arc-, scarab-, cache2k-);
 * -1 if none fits. */
int trace_format_guess(const char *path);
int trace_format_parse(const char *name);

/* Decode a trace file (.gz/.xz/.zst are piped through gzip/xz/zstd -dc).
 * Returns 0 or a negative errno-style code, with a message on stderr. */
int trace_load(struct trace *t, const char *path, enum trace_format fmt);
void trace_free(struct trace *t);

/* Fill t->next_use (idempotent; not thread-safe: call before replays). */
void trace_build_next_use(struct trace *t);

struct replay_config {
    enum evict_kind kind;
    uint64_t size;                  /* capacity in entries */
    const struct evict_params *base; /* shipped params; size/kind overridden */
};

struct replay_result {
    uint64_t hits;
    uint64_t requests;
    double window_ratio;            /* at the end of the run */
    uint64_t admissions;
    uint64_t rejections;
};

/* Replay the trace through the evict module (kind, size). Thread-safe for
 * distinct results. Returns 0. */
int replay_policy(const struct trace *t, const struct replay_config *cfg,
                  struct replay_result *out);

/* Exact LRU, a list of its own (the reference for the README's LRU figures;
 * the module's `lru` kind is a CLOCK approximation). Returns 0. */
int replay_lru_exact(const struct trace *t, uint64_t size,
                     struct replay_result *out);

/* Belady's OPT with bypass (evict the resident key, or refuse the incoming
 * one, whose next use is farthest). Needs trace_build_next_use first. */
int replay_opt(const struct trace *t, uint64_t size, struct replay_result *out);

/* A model of Redis 7's allkeys-lfu (redis_lfu.c): logarithmic counters
 * from 5, 5 samples into a pool of 16. Returns 0. */
int replay_redis_lfu(const struct trace *t, uint64_t size,
                     struct replay_result *out);

#endif
