/*
 * psnet.c -- Pub/Sub delivery on a subscriber's worker (cmd/pubsub.h).
 *
 * Publishers on any thread leave (subscriber, message) items in this
 * worker's mailbox and wake its ps_wake handle; here, on the worker that
 * owns the subscribers' connections, each message is encoded into its
 * connection's output and every connection that got one is flushed once.
 * A subscriber whose unsent output passes the pub/sub limits is closed
 * (as Redis's client-output-buffer-limit pubsub): its publishers never wait
 * for it.
 */
#include <stddef.h>
#include <stdlib.h>

#include "cmd/pubsub.h"
#include "net/internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/throttle.h"

#define CONN_OF(cl) ((struct conn *)((char *)(cl) - offsetof(struct conn, c)))

void
psnet_deliver(struct worker *w)
{
    struct ps_item *items;
    size_t n;
    pubsub_take(w->id, &items, &n);
    if (n == 0) {
        return;
    }
    /* the connections written to, each once (ps_touched marks them) */
    struct conn **touched = xmalloc(n * sizeof(*touched));
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        struct client *c = pubsub_item_client(&items[i]);
        if (c == NULL) {
            continue;
        }
        struct conn *cn = CONN_OF(c);
        if (cn->closing) {
            continue;
        }
        pubsub_item_write(&items[i], c);
        if (!cn->ps_touched) {
            cn->ps_touched = true;
            touched[nt++] = cn;
        }
    }
    int64_t now = clock_ms();
    for (size_t i = 0; i < nt; i++) {
        struct conn *cn = touched[i];
        cn->ps_touched = false;
        if (cn->closing) {
            continue;
        }
        conn_push_out(cn);
        if (cn->closing) {
            continue;
        }
        size_t q = conn_queued(cn);
        if (pubsub_over_limit(&cn->c, q, now)) {
            static struct log_throttle t;
            uint64_t skipped;
            if (log_throttle_allow(&t, 10, &skipped)) {
                log_warn("closing subscriber: pubsub output buffer limit reached",
                         "\"addr\":\"%s\",\"bytes\":%zu,\"suppressed\":%llu", cn->c.addr, q,
                         (unsigned long long)skipped);
            }
            pubsub_count_dropped();
            conn_close(cn);
        }
    }
    for (size_t i = 0; i < n; i++) {
        pubsub_item_done(&items[i]);
    }
    free(touched);
    free(items);
}
