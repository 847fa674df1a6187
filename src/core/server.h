/*
 * server.h -- the one mutable global: struct server.
 *
 * Settings are copied here from the configuration at start-up (main.c);
 * fields that CONFIG SET may change at run time are atomics. Counters that
 * every request touches live in per-thread blocks (struct tstats) summed on
 * demand, so worker threads never share a written cache line on the hot path.
 */
#ifndef CRAB_CORE_SERVER_H
#define CRAB_CORE_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd.h"
#include "store/store.h"

struct config;

/* Per-thread counters. */
struct tstats {
    uint64_t hits, misses;
    uint64_t net_in, net_out;
    struct cmd_stat cmd[CMD_COUNT];
    struct tstats *next; /* registry of all threads' blocks */
};

/* The calling thread's block (created on first use). */
struct tstats *tstats_self(void);
/* Sum of every thread's block into out (next is left NULL). */
void tstats_sum(struct tstats *out);
void tstats_reset_all(void);

struct server {
    struct config *cfg;
    struct store *store;

    /* network settings (read-only after start) */
    char *bind;
    int port, resp_port;
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
    _Atomic bool shutdown_asap;
    _Atomic int64_t lastsave_s;
    _Atomic bool active_expire;   /* DEBUG SET-ACTIVE-EXPIRE */

    /* connection figures */
    _Atomic uint64_t conns_current, conns_total, conns_rejected;
    _Atomic uint64_t auth_failures;
    _Atomic uint64_t next_client_id;
};

extern struct server server;

#endif
