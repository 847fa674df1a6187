/*
 * view.c -- publishing the topology view to the workers, and freeing old
 * views once no worker can still hold them (quiescent-state reclamation).
 *
 * Readers (workers) load cluster_view_ptr once per command, with no lock and
 * no reference count: the view they got stays valid until their current loop
 * turn ends. Each registered worker owns a counter that it bumps at the end
 * of every loop turn (cluster_quiesce), a point where it holds no view. When
 * a view is replaced it goes on a retire list together with a copy of every
 * worker's counter at that moment; it is freed once each of those counters
 * has moved, i.e. once every worker has passed a quiescent point after the
 * swap, and so can only load the new view (or a later one) from then on.
 *
 * Ordering: the swap is a sequentially consistent exchange and the counters
 * are read with sequentially consistent loads after it; a worker bumps its
 * counter with a sequentially consistent read-modify-write. So a counter
 * seen to have moved was bumped after the swap in the single total order,
 * every view access of that worker before the bump happens before the free
 * (release/acquire through the counter), and every load after the bump sees
 * the new pointer. Worker registration and the retire list are under one
 * mutex, which the publisher also holds around the swap: a worker that
 * registers after a swap cannot hold the old view.
 *
 * An idle worker still turns its loop at least every cron tick (its timer),
 * so retired views wait at most about one tick plus the reclaimer's period.
 *
 * Threads that are not workers (HTTP) read a view under view_lock instead
 * (cluster_view_hold): it cannot be retired, let alone freed, meanwhile.
 *
 * The Raft state shown by CLUSTER INFO is a plain copy under a mutex: it is
 * read by commands that are not on any hot path.
 */
#include "cluster/cluster.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

_Atomic(struct topo_view *) cluster_view_ptr;

/* One vbucket (all slots), unassigned: topo_view_primary is NONE for any slot. */
static uint8_t empty_vb_n[1];
static uint16_t empty_vb_nodes[1];
struct topo_view cluster_view_empty = {
    .nvb = 1,
    .rf = 1,
    .slot_shift = 14,
    .self = TOPO_VIEW_NONE,
    .vb_n = empty_vb_n,
    .vb_nodes = empty_vb_nodes,
};

/* One worker's counter, alone on its cache line: it is written every loop
 * turn by its worker and read only by the reclaimer. */
struct qs_counter {
    _Atomic uint64_t turns;
    char pad[64 - sizeof(uint64_t)];
};

static struct qs_counter qs[CLUSTER_MAX_WORKERS] __attribute__((aligned(64)));

/* A view waiting for every worker to pass a quiescent point. */
struct retired {
    struct topo_view *v;
    struct retired *next;
    int nworkers;        /* workers registered when it was retired */
    uint64_t seen[];     /* their counters then */
};

static pthread_mutex_t view_lock = PTHREAD_MUTEX_INITIALIZER;
static int nworkers;              /* under view_lock */
static struct retired *retired;   /* under view_lock, newest first */
static _Atomic size_t nretired;   /* length of the list, for any thread */

int
cluster_worker_register(void)
{
    pthread_mutex_lock(&view_lock);
    int slot = nworkers < CLUSTER_MAX_WORKERS ? nworkers++ : -1;
    pthread_mutex_unlock(&view_lock);
    return slot;
}

void
cluster_quiesce(int slot)
{
    /* seq_cst RMW: see the header comment (a full barrier on every target) */
    atomic_fetch_add(&qs[slot].turns, 1);
}

/* True when every worker counted in r has moved on since r was retired. */
static bool
all_quiesced(const struct retired *r)
{
    for (int i = 0; i < r->nworkers; i++) {
        if (atomic_load(&qs[i].turns) == r->seen[i]) {
            return false;
        }
    }
    return true;
}

/* Free every retired view whose readers have all quiesced. view_lock held. */
static void
reclaim_locked(void)
{
    struct retired **pp = &retired;
    while (*pp) {
        struct retired *r = *pp;
        if (all_quiesced(r)) {
            *pp = r->next;
            if (r->v != &cluster_view_empty) {
                topo_view_free(r->v);
            }
            free(r);
            atomic_fetch_sub(&nretired, 1);
        } else {
            pp = &r->next;
        }
    }
}

void
cluster_view_publish(struct topo_view *v)
{
    pthread_mutex_lock(&view_lock);
    struct topo_view *old = atomic_exchange(&cluster_view_ptr, v);
    if (old != NULL && old != v) {
        struct retired *r = xmalloc(sizeof(*r) + (size_t)nworkers * sizeof(uint64_t));
        r->v = old;
        r->nworkers = nworkers;
        for (int i = 0; i < nworkers; i++) {
            r->seen[i] = atomic_load(&qs[i].turns);
        }
        r->next = retired;
        retired = r;
        atomic_fetch_add(&nretired, 1);
    }
    reclaim_locked();
    pthread_mutex_unlock(&view_lock);
}

/* A view is retired and freed only under view_lock, so holding it keeps the
 * view loaded here alive whatever the quiescent counters say. */
const struct topo_view *
cluster_view_hold(void)
{
    pthread_mutex_lock(&view_lock);
    return atomic_load(&cluster_view_ptr);
}

void
cluster_view_release(void)
{
    pthread_mutex_unlock(&view_lock);
}

void
cluster_view_reclaim(void)
{
    if (atomic_load_explicit(&nretired, memory_order_relaxed) == 0) {
        return;
    }
    pthread_mutex_lock(&view_lock);
    reclaim_locked();
    pthread_mutex_unlock(&view_lock);
}

size_t
cluster_view_retired(void)
{
    return atomic_load(&nretired);
}

/* ---- Raft state for CLUSTER INFO ------------------------------------------ */

static pthread_mutex_t raft_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cluster_raft_info raft_info = {.role = "unavailable"};

void
cluster_raft_info(struct cluster_raft_info *out)
{
    pthread_mutex_lock(&raft_lock);
    *out = raft_info;
    pthread_mutex_unlock(&raft_lock);
}

void
cluster_raft_info_set(const struct cluster_raft_info *in)
{
    pthread_mutex_lock(&raft_lock);
    raft_info = *in;
    if (raft_info.role == NULL) {
        raft_info.role = "unavailable";
    }
    pthread_mutex_unlock(&raft_lock);
}
