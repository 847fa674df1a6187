/*
 * client.h -- what the command layer knows about a connection.
 *
 * The network layer embeds a struct client in each connection and hands it
 * to cmd_dispatch(). Fields are owned by the connection's worker thread,
 * except `kill`, which any thread may set (CLIENT KILL) before waking the
 * worker.
 */
#ifndef CRAB_CMD_CLIENT_H
#define CRAB_CMD_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmd/reply.h"

struct worker;
struct ps_sub;

struct client {
    uint64_t id;
    struct reply r;      /* output buffer and reply protocol */
    bool native;         /* native text protocol connection */
    bool authed;
    bool close_after_reply;
    bool resp_port;      /* accepted on the pure-RESP port */
    bool tls;
    bool readonly;       /* READONLY: may read slots this node replicates (cluster) */
    bool proxy;          /* accepted on cluster.proxy_port: routed on the server */
    bool peer;           /* native PEER: a node forwarding to us; never forward again */
    uint32_t gate_vb;    /* cluster: 1 + the vbucket whose write gate the running
                            command passed (cluster/gate.h), 0 = none */
    int64_t held_ms;     /* cluster: when the request being kept (later_retry) was
                            first kept, 0 = not kept */
    int fd;
    char *name;          /* CLIENT SETNAME, NULL if none */
    char addr[64];       /* peer ip:port */
    char laddr[64];      /* local ip:port */
    int64_t ctime_ms;    /* connection time */
    int64_t last_ms;     /* last command time */
    const char *last_cmd;
    uint64_t wal_lsn;    /* highest WAL LSN this client's replies wait for */
    int wal_err;         /* a mutation of the current command was not logged */
    struct worker *worker;
    _Atomic bool kill;   /* set by CLIENT KILL from any thread */
    uint64_t qbuf;       /* unread input bytes, for CLIENT LIST */
    uint64_t obuf;       /* unsent output bytes, for CLIENT LIST */
    struct ps_sub *ps;   /* Pub/Sub state (cmd/pubsub.h), NULL until the first
                            subscription */
    unsigned ps_nch, ps_npat; /* channels, patterns subscribed (written by the
                                 owner thread, read by CLIENT LIST) */
};

#endif
