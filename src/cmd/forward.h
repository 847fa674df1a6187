/*
 * forward.h -- requests sent on to the node that owns their slot.
 *
 * In cluster mode a native-protocol client may send any key to any node,
 * and a client of the proxy port (cluster.proxy_port) any command: a node
 * that does not own the key's slot sends the request to the slot's primary
 * and relays the reply. Each worker thread keeps one connection per
 * destination (node and protocol), opened on first use, on which the
 * requests of all its clients are pipelined; replies come back in order.
 *
 * A MOVED or TRYAGAIN answer (the owner changed, or the slot is being
 * handed over, since the request was routed) is not relayed: the request
 * is sent again once the local topology names another owner, or after a
 * short back-off, for at most the forward timeout. A destination that does
 * not answer within cluster.forward_timeout_ms, or whose connection fails,
 * fails the requests it holds with an error reply; a failed request may or
 * may not have been applied, as when a client's own connection drops.
 *
 * Native requests are sent to the owner's native port after a PEER line,
 * which makes the owner answer MOVED for keys it does not own instead of
 * forwarding them again; RESP requests go to the owner's RESP port, which
 * answers MOVED as Redis Cluster does. When auth tokens are configured, the
 * connection first authenticates with the first one (nodes of a cluster
 * share their tokens).
 *
 * Declared here, implemented by the network layer (net/fwd.c).
 */
#ifndef CRAB_CMD_FORWARD_H
#define CRAB_CMD_FORWARD_H

#include <stddef.h>

struct client;

enum fwd_proto { FWD_NATIVE, FWD_RESP2, FWD_RESP3 };

/* Called once, on the worker thread of the client that submitted, from an
 * I/O or timer callback (never from within fwd_submit): reply is one whole
 * reply in the request's protocol -- the owner's, or an error made here. */
typedef void fwd_done_fn(void *arg, const char *reply, size_t len);

/* Send req[0 .. len) (one whole request in proto) to the primary of slot in
 * the current topology. Returns 0, or -1 when the slot has no primary (done
 * is then never called). Worker thread of c. */
int fwd_submit(struct client *c, enum fwd_proto proto, unsigned slot, const char *req, size_t len,
               fwd_done_fn *done, void *arg);

#endif
