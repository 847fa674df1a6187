/*
 * server.h -- the one mutable global: struct server.
 *
 * Settings are copied here from the configuration at start-up (main.c);
 * fields that CONFIG SET may change at run time are atomics. Counters that
 * every request touches are not here: they live in per-thread blocks
 * (struct tstats, cmd/tstats.h) summed on demand, so worker threads never
 * share a written cache line on the hot path.
 */
#ifndef CRAB_CORE_SERVER_H
#define CRAB_CORE_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persist/mstream.h"
#include "store/store.h"

struct config;

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

#endif
