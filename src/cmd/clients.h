/*
 * clients.h -- what CLIENT LIST, CLIENT INFO and CLIENT KILL need from the
 * layer that holds the connections.
 *
 * The command layer does not know the connections: the network layer
 * registers these functions when it starts (net_start), as net/later.c
 * implements cmd/later.h. Until then (unit tests without a network) there
 * are no clients: LIST is empty and KILL finds none.
 */
#ifndef CRAB_CMD_CLIENTS_H
#define CRAB_CMD_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct worker;

struct cmd_clients {
    /* Append one line per client (Redis format) for every client (id == 0)
     * or the one with that id. Any thread. */
    void (*list)(struct buf *out, uint64_t id);
    /* Ask the matching clients' workers to close them. Filters: id (0 = any),
     * addr (NULL = any), laddr (NULL = any), skipme_id (0 = none). Returns how
     * many were marked. Any thread. */
    unsigned (*kill)(uint64_t id, const char *addr, const char *laddr, uint64_t skipme_id);
    /* Bytes held by every client connection and its buffers (MEMORY STATS).
     * Any thread. */
    size_t (*memory)(void);
    /* The index (0 .. threads-1) of a client's worker (struct client.worker):
     * Pub/Sub's per-worker mailboxes. */
    unsigned (*worker_index)(const struct worker *w);
};

/* Register ops (kept, not copied). Main thread, before the workers start. */
void cmd_clients_register(const struct cmd_clients *ops);

/* ops->memory() and ops->worker_index(w), 0 before anything is registered. */
size_t cmd_clients_memory(void);
unsigned cmd_clients_worker_index(const struct worker *w);

#endif
