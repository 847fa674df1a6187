/*
 * net.h -- worker threads, listeners and connections.
 *
 * N worker threads each run a libuv loop. Every worker opens its own
 * listening socket on each client port with SO_REUSEPORT, so the kernel
 * spreads new connections over the workers and a connection stays on the
 * worker that accepted it for its whole life: no locks on the connection
 * path. Requests read in one go are all executed, and their replies leave
 * in one write (uv_try_write first, uv_write for what is left).
 *
 * Security (docs/security.md): connections from addresses outside
 * allowed_ips are closed at accept; past max_connections a client gets an
 * error and is closed; protected mode serves only loopback peers when no
 * token is set; a third listener serves TLS (both protocols, as the native
 * port does); requests may be rate limited per client address; unread input
 * is capped by max_command_size and queued replies by max_output_buffer.
 * Refusals are counted in struct server (conns_rejected_by[reason],
 * auth_failures) and in the per-thread tstats (rate_limited), which the
 * metrics layer reads; net_security_stats gathers them in one place.
 *
 * Thread-safety: net_start/net_stop/net_set_live are for the main thread
 * (net_set_live may also run on the thread serving CONFIG SET); net_client_*
 * and net_security_stats may be called from any thread.
 */
#ifndef CRAB_NET_NET_H
#define CRAB_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct net_options {
    const char *bind;       /* address to bind, IPv4 or IPv6 literal */
    int port;               /* native protocol (RESP when first byte is '*'); 0 = off */
    int resp_port;          /* pure RESP; 0 = off */
    unsigned threads;
    size_t max_command_size;  /* bytes of one request, and unread input */
    size_t max_output_buffer; /* unsent reply bytes before a client is dropped */
    size_t max_line;          /* native protocol line limit */
    unsigned cron_hz;
    bool cluster;             /* cluster.enabled: workers quiesce for the topology view */
    int proxy_port;           /* cluster: RESP routed to each slot's owner; 0 = off */

    /* ---- security ---- */
    char *const *allowed_ips; /* IPs and CIDRs (n_allowed_ips of them); none = all */
    size_t n_allowed_ips;
    int tls_port;             /* TLS, both protocols as on `port`; 0 = off */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_ca_cert_file; /* NULL or "" = none */
    bool tls_auth_clients;
    bool rate_limit;          /* token bucket per client address */
    double rate_per_second;   /* refill rate */
    double rate_burst;        /* bucket size */
};

/* Settings CONFIG SET may change while the server runs. */
struct net_live {
    size_t max_command_size;
    size_t max_output_buffer;
    bool rate_limit;
    double rate_per_second;
    double rate_burst;
};

/* Parse allowed_ips, load the TLS certificate and key, open the listeners
 * (failing early when a port is taken) and start the worker threads.
 * Returns 0, or a negative code with a message in err. */
int net_start(const struct net_options *opt, char *err, size_t errlen);
/* Ask workers to stop accepting, finish in-flight replies and exit; waits
 * for them. */
void net_stop(void);

/* Apply live settings (CONFIG SET); takes effect for the next request. */
void net_set_live(const struct net_live *live);

/* Security figures, for INFO / metrics. Any thread. */
struct net_security_stats {
    uint64_t rejected_maxclients;  /* = server.conns_rejected_by[...] */
    uint64_t rejected_protected;
    uint64_t rejected_ip;
    uint64_t rejected_tls;         /* failed or timed-out TLS handshakes */
    uint64_t rate_limited;         /* requests refused, all threads */
    uint64_t auth_failures;
    uint64_t output_limit_closed;  /* clients dropped by max_output_buffer */
    uint64_t input_limit_closed;   /* clients dropped by max_command_size */
    uint64_t tls_conns;            /* TLS connections open now */
    size_t ratelimit_entries;      /* addresses tracked by the rate limiter */
};
void net_security_stats(struct net_security_stats *out);

/* The index (0 .. threads-1) of a client's worker (struct client.worker). */
struct worker;
unsigned net_worker_index(const struct worker *w);

/* Wake every worker (any thread): used when the WAL's durable point moves,
 * so replies waiting for it go out. */
void net_wake_all(void);
/* The WAL's durable point moved or its error state changed (any thread):
 * every worker releases the replies it held for the log (sync policy). */
void net_wake_durable(void);

/* CLIENT LIST / INFO (registered with the command layer, cmd/clients.h):
 * append one line per client (Redis format) for every
 * client (id == 0) or the one with that id. */
void net_client_list(struct buf *out, uint64_t id);
/* Bytes held by every client connection and its buffers (MEMORY STATS).
 * Any thread. */
size_t net_clients_memory(void);
/* CLIENT KILL: ask the client's worker to close it. Filters: id (0 = any),
 * addr (NULL = any), laddr (NULL = any), skipme_id (0 = none).
 * Returns how many were marked. */
unsigned net_client_kill(uint64_t id, const char *addr, const char *laddr, uint64_t skipme_id);

#endif
