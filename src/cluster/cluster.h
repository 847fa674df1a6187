/*
 * cluster.h -- the cluster layer as the rest of the server sees it.
 *
 * A control thread (its own libuv loop) runs Raft for the topology
 * (cluster/craft.c), the cluster bus and the leader's placement. After each
 * applied change it builds an immutable struct topo_view and publishes it
 * through an atomic pointer: workers read it with one load and no lock, and
 * a view stays valid until the reading worker's current loop turn ends
 * (cluster_quiesce; old views are freed once every worker has passed one).
 *
 * With cluster.enabled = false nothing of this runs and cluster_view()
 * returns NULL.
 */
#ifndef CRAB_CLUSTER_CLUSTER_H
#define CRAB_CLUSTER_CLUSTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/topo.h"

struct config;

extern _Atomic(struct topo_view *) cluster_view_ptr;

/* The current view, NULL when cluster mode is off (or before the first
 * view). Valid until the calling worker's turn ends. */
static inline const struct topo_view *
cluster_view(void)
{
    return atomic_load_explicit(&cluster_view_ptr, memory_order_acquire);
}

/* For a thread that is not a registered worker (the HTTP thread): the
 * current view (NULL when cluster mode is off), kept from being freed until
 * cluster_view_release. It holds the lock publishing takes, so read it
 * briefly (no I/O) and always release, also after a NULL. */
const struct topo_view *cluster_view_hold(void);
void cluster_view_release(void);

/* Replace the published view (control thread; tests). The old one is
 * retired and freed (topo_view_free) after every registered worker has
 * quiesced; publishing also frees what can be freed by then. v may be NULL. */
void cluster_view_publish(struct topo_view *v);

/* A view with no node and no slot assigned (every key answers CLUSTERDOWN),
 * published at start-up in cluster mode so that nothing is served before the
 * first topology arrives. Static: publishing over it never frees it. */
extern struct topo_view cluster_view_empty;

/* Free the retired views every worker has quiesced past (control thread,
 * periodically: a view retired while a worker was mid-turn waits for it).
 * Cheap when nothing is retired. */
void cluster_view_reclaim(void);

/* Views retired and not freed yet (tests, metrics). Any thread. */
size_t cluster_view_retired(void);

/* Workers: register once (returns a slot, -1 when CLUSTER_MAX_WORKERS are
 * registered), then call cluster_quiesce(slot) at the end of every loop
 * turn, where the worker holds no view. A worker that never quiesces keeps
 * every view retired after its registration alive. */
#define CLUSTER_MAX_WORKERS 1024
int cluster_worker_register(void);
void cluster_quiesce(int slot);

/* Raft's state as last seen by the control thread (for CLUSTER INFO, INFO,
 * /metrics). Any thread. */
#define CLUSTER_INFO_COPIES 64
struct cluster_raft_info {
    const char *role;            /* "leader", "follower", "candidate", "unavailable" (static) */
    uint64_t raft_id;
    uint64_t leader_raft_id;     /* 0 = none known */
    char leader_node_id[TOPO_ID_LEN + 1];
    uint64_t term, commit_index, applied_index;
    unsigned voters, standbys;
    /* vbucket copies (migrate.c): in flight from this node, handed over
     * from it, and what those carried */
    unsigned migrations_active;
    uint64_t migrations_completed, keys_migrated, bytes_migrated;
    /* cluster bus frames this node sent and received */
    uint64_t bus_sent, bus_received;
    /* the copies this node is sending now (the first CLUSTER_INFO_COPIES):
     * keys walked of the keys the vbucket held when the copy started (walked
     * may pass total: keys written meanwhile are walked too) */
    unsigned ncopies;
    struct cluster_copy_progress {
        uint32_t vb;
        uint64_t walked, total;
    } copies[CLUSTER_INFO_COPIES];
};
void cluster_raft_info(struct cluster_raft_info *out);
/* The control thread's update of what cluster_raft_info returns. */
void cluster_raft_info_set(const struct cluster_raft_info *in);

/*
 * Admin requests, answered later through done(arg, err) -- err NULL on
 * success -- called once, from the control thread.
 *  cluster_meet: invite the node whose bus listens on ip:bus_port; done
 *    once it is a member of the committed topology (or on failure/timeout).
 *  cluster_forget: the node leaves: its vbuckets are placed elsewhere, then
 *    it is removed from Raft and the topology; done once it is gone.
 * Any thread.
 */
typedef void cluster_done_fn(void *arg, const char *err);
void cluster_meet(const char *ip, int bus_port, cluster_done_fn *done, void *arg);
void cluster_forget(const char *node_id, cluster_done_fn *done, void *arg);

/* This node's id (kept in cluster.dir), also before it is a member; NULL
 * when cluster mode is off. Any thread, after cluster_start. */
const char *cluster_myid(void);

/* Start and stop the cluster layer (main.c). cluster_start returns 0, or -1
 * with a message logged (bad cluster.dir, address, ...). The store is the
 * one vbucket copies read and load, the stream its mutation stream;
 * wake_retries runs the requests a paused write gate kept (later_retry_wake);
 * synced_lsn (NULL: no write-ahead log with the sync policy) gives the
 * log's durable position, which a node receiving a copy waits for before it
 * confirms the copy (the source drops its data after the handover). */
struct mstream;
struct store;
int cluster_start(struct config *cfg, struct store *store, struct mstream *stream,
                  void (*wake_retries)(void), uint64_t (*synced_lsn)(void));
void cluster_stop(void);

#endif
