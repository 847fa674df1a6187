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
 * Thread-safety: net_setup/net_run/net_stop are for the main thread;
 * net_client_* may be called from any worker (they take the registry lock).
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
};

/* Open the listeners (failing early when a port is taken) and start the
 * worker threads. Returns 0, or -errno with a message in err. */
int net_start(const struct net_options *opt, char *err, size_t errlen);
/* Ask workers to stop accepting, finish in-flight replies and exit; waits
 * for them. */
void net_stop(void);

/* Wake every worker (any thread): used when the WAL's durable point moves,
 * so replies waiting for it go out. */
void net_wake_all(void);

/* CLIENT LIST / INFO: append one line per client (Redis format) for every
 * client (id == 0) or the one with that id. */
void net_client_list(struct buf *out, uint64_t id);
/* CLIENT KILL: ask the client's worker to close it. Filters: id (0 = any),
 * addr (NULL = any), laddr (NULL = any), skipme_id (0 = none).
 * Returns how many were marked. */
unsigned net_client_kill(uint64_t id, const char *addr, const char *laddr, uint64_t skipme_id);

#endif
