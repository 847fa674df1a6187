/*
 * admin.c -- CLUSTER MEET and CLUSTER FORGET: requests other threads submit
 * (cluster_meet, cluster_forget), carried out on the control thread and
 * answered once the topology shows the result, or after ADMIN_TIMEOUT_MS.
 */
#include <pthread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/ctl.h"
#include "cluster/wire.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"

/* An admin request (cluster_meet, cluster_forget) until it is answered. */
struct admin {
    enum { ADM_MEET, ADM_FORGET } kind;
    char ip[64];
    int bus_port;
    char node_id[TOPO_ID_LEN + 1];
    cluster_done_fn *done;
    void *arg;
    uint64_t deadline;         /* loop time, ms */
    enum { AS_START, AS_SENT, AS_WAIT } state;
    bool call_inflight;        /* a bus call holds a pointer to this */
    uint64_t retry_at;
    struct admin *next;
};

/* Submitted by other threads, taken by the loop on its wake-up. */
static pthread_mutex_t admin_lock = PTHREAD_MUTEX_INITIALIZER;
static struct admin *admin_new;

/* ---- admin requests: CLUSTER MEET and FORGET ------------------------------------------ */

static void
admin_submit(struct admin *a)
{
    if (!ctl.started || atomic_load(&ctl.stopping)) {
        a->done(a->arg, "ERR This instance has cluster support disabled");
        free(a);
        return;
    }
    pthread_mutex_lock(&admin_lock);
    a->next = admin_new;
    admin_new = a;
    pthread_mutex_unlock(&admin_lock);
    uv_async_send(&ctl.wake);
}

void
cluster_meet(const char *ip, int bus_port, cluster_done_fn *done, void *arg)
{
    struct admin *a = xcalloc(1, sizeof(*a));
    a->kind = ADM_MEET;
    snprintf(a->ip, sizeof(a->ip), "%s", ip);
    a->bus_port = bus_port;
    a->done = done;
    a->arg = arg;
    admin_submit(a);
}

void
cluster_forget(const char *node_id, cluster_done_fn *done, void *arg)
{
    struct admin *a = xcalloc(1, sizeof(*a));
    a->kind = ADM_FORGET;
    snprintf(a->node_id, sizeof(a->node_id), "%s", node_id);
    a->done = done;
    a->arg = arg;
    admin_submit(a);
}

static void
admin_end(struct admin *a, const char *err)
{
    a->done(a->arg, err);
    a->done = NULL; /* removed from ctl.admins by admin_tick */
}

static void
on_meet_reply(void *arg, int status, uint8_t type, const uint8_t *p, size_t n)
{
    struct admin *a = arg;
    a->call_inflight = false;
    char msg[300];
    if (status != 0 || type != (BUS_MEET | BUS_REPLY)) {
        snprintf(msg, sizeof(msg), "ERR cannot reach the cluster bus at %s:%d: %s", a->ip,
                 a->bus_port, status ? uv_strerror(status) : "bad reply");
        admin_end(a, msg);
        return;
    }
    struct wire_rd r = {p, p + n, false};
    uint8_t code = wire_get_u8(&r);
    char text[256];
    wire_get_str(&r, text, sizeof(text));
    if (code == RC_OK) {
        a->state = AS_WAIT;
    } else if (code == RC_BUSY) {
        a->state = AS_START; /* starting up: ask again */
        a->retry_at = uv_now(&ctl.loop) + 200;
    } else {
        snprintf(msg, sizeof(msg), "ERR %.63s:%d refused: %.200s", a->ip, a->bus_port, text);
        admin_end(a, msg);
    }
}

static void
on_forget_proposed(struct admin *a, int code, int result, const char *text)
{
    a->call_inflight = false;
    if (code == RC_OK && (result == TOPO_OK || result == TOPO_NOOP)) {
        a->state = AS_WAIT;
        return;
    }
    if (code == RC_OK) {
        admin_end(a, "ERR the node cannot leave now");
        return;
    }
    (void)text;
    a->state = AS_START; /* no leader yet, or it changed: again shortly */
    a->retry_at = uv_now(&ctl.loop) + 200;
}

static void
on_forget_local(void *arg, int status, int result)
{
    on_forget_proposed(arg, status == 0 ? RC_OK : RC_BUSY, result, "");
}

static void
on_forget_remote(void *arg, int status, uint8_t type, const uint8_t *p, size_t n)
{
    struct wire_rd r = {p, p + n, false};
    uint8_t code = status == 0 && type == (BUS_PROPOSE | BUS_REPLY) ? wire_get_u8(&r) : RC_BUSY;
    uint8_t result = wire_get_u8(&r);
    on_forget_proposed(arg, r.bad ? RC_BUSY : code, result, "");
}

static bool
meet_done(const struct admin *a)
{
    for (size_t i = 0; i < ctl.topo.nnodes; i++) {
        if (strcmp(ctl.topo.nodes[i].ip, a->ip) == 0 && ctl.topo.nodes[i].bus_port == a->bus_port) {
            return true;
        }
    }
    return false;
}

static void
admin_step(struct admin *a, uint64_t now)
{
    if (a->kind == ADM_MEET) {
        if (meet_done(a)) {
            admin_end(a, NULL);
        } else if (a->state == AS_START && now >= a->retry_at) {
            /* Name ourselves as the member to join through (a follower
             * redirects the JOIN to the leader). */
            struct buf q;
            buf_init(&q);
            wire_str(&q, ctl.bus_addr);
            char to[80];
            snprintf(to, sizeof(to), "%s:%d", a->ip, a->bus_port);
            if (bus_call(&ctl.loop, to, BUS_MEET, q.data, q.len, CALL_TIMEOUT_MS, on_meet_reply,
                         a) == 0) {
                a->state = AS_SENT;
                a->call_inflight = true;
            } else {
                admin_end(a, "ERR Invalid node address specified");
            }
            buf_deinit(&q);
        }
        return;
    }
    /* FORGET */
    const struct topo_node *n = topo_node_by_id(&ctl.topo, a->node_id);
    if (a->state == AS_WAIT || a->state == AS_SENT) {
        if (n == NULL && a->state == AS_WAIT) {
            admin_end(a, NULL);
        }
        return;
    }
    if (n == NULL) {
        char msg[100];
        snprintf(msg, sizeof(msg), "ERR Unknown node %s", a->node_id);
        admin_end(a, msg);
        return;
    }
    if (now < a->retry_at) {
        return;
    }
    struct buf e;
    buf_init(&e);
    topo_entry_node_leave(&e, a->node_id);
    int rv = -1;
    if (ctl_is_leader()) {
        rv = craft_propose(ctl.raft, e.data, e.len, on_forget_local, a);
    } else {
        char lb[64];
        ctl_leader_bus_addr(lb, sizeof(lb));
        if (lb[0]) {
            rv = bus_call(&ctl.loop, lb, BUS_PROPOSE, e.data, e.len, CALL_TIMEOUT_MS,
                          on_forget_remote, a);
        }
    }
    buf_deinit(&e);
    if (rv == 0) {
        a->state = AS_SENT;
        a->call_inflight = true;
    } else {
        a->retry_at = now + 200;
    }
}

void
ctl_admin_tick(void)
{
    pthread_mutex_lock(&admin_lock);
    struct admin *fresh = admin_new;
    admin_new = NULL;
    pthread_mutex_unlock(&admin_lock);
    uint64_t now = uv_now(&ctl.loop);
    while (fresh) {
        struct admin *a = fresh;
        fresh = a->next;
        a->deadline = now + ADMIN_TIMEOUT_MS;
        a->next = ctl.admins;
        ctl.admins = a;
    }
    for (struct admin **pa = &ctl.admins; *pa;) {
        struct admin *a = *pa;
        if (a->done && !a->call_inflight) {
            if (now >= a->deadline) {
                admin_end(a, a->kind == ADM_MEET
                                 ? "ERR timed out waiting for the node to join"
                                 : "ERR timed out waiting for the node to leave");
            } else {
                admin_step(a, now);
            }
        }
        if (a->done == NULL && !a->call_inflight) {
            *pa = a->next;
            free(a);
        } else {
            pa = &a->next;
        }
    }
}

/* Stopping: every request still open is answered. Those with a bus call in
 * flight stay listed until the thread ends (the call's callback points at
 * them): control_main frees them after its loop. */
void
ctl_admin_fail_all(void)
{
    ctl_admin_tick();
    for (struct admin *a = ctl.admins; a; a = a->next) {
        if (a->done) {
            a->done(a->arg, "ERR the server is shutting down");
            a->done = NULL;
        }
    }
}

/* After the loop ended: no callback can reach them any more. */
void
ctl_admin_free_all(void)
{
    while (ctl.admins) {
        struct admin *a = ctl.admins;
        ctl.admins = a->next;
        free(a);
    }
}
