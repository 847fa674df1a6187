/*
 * topo.h -- the cluster topology: a deterministic state machine fed by Raft.
 *
 * The topology is the set of member nodes and, for each vbucket (a run of
 * 16384 / nvb consecutive Redis slots), its replica list: the node numbers
 * that hold it, the primary first. It changes only by applying entries that
 * were committed through Raft, in log order, on every node alike:
 *
 *   topo_apply(t, index, entry) -- no clock, no I/O, no randomness; the same
 *   entries applied in the same order give byte-identical topo_encode()
 *   output on every node. An entry whose expectations do not hold (a vbucket
 *   epoch that moved on, a node that is not there) changes nothing and says
 *   so in its result: proposals are retried with fresh epochs, never merged.
 *
 * Node numbers (`num`, from 1) are given in join order and never reused, so
 * a replica list stays meaningful across joins and leaves. config_epoch is the
 * Raft index of the last entry that changed anything: monotonic and unique.
 *
 * Workers never read struct topo: the control thread builds an immutable
 * struct topo_view from it after each change and publishes that
 * (cluster/cluster.h).
 */
#ifndef CRAB_CLUSTER_TOPO_H
#define CRAB_CLUSTER_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define TOPO_SLOTS 16384
#define TOPO_MAX_RF 16
#define TOPO_MAX_VB 16384
#define TOPO_ID_LEN 40          /* node id: 40 lower-case hex characters, as Redis */
#define TOPO_IP_LEN 46

/* Node flags. */
enum {
    TOPO_NODE_LEAVING = 1u << 0, /* CLUSTER FORGET asked: placed on no vbucket */
};

struct topo_node {
    uint32_t num;                /* 1, 2, ... in join order, never reused */
    char id[TOPO_ID_LEN + 1];
    uint64_t raft_id;
    char ip[TOPO_IP_LEN];        /* announced IPv4 literal */
    uint16_t port;               /* native text protocol port (0 = none) */
    uint16_t resp_port;          /* RESP port: what MOVED and CLUSTER SLOTS give */
    uint16_t bus_port;           /* cluster bus */
    uint16_t raft_port;          /* libraft transport */
    uint32_t flags;
    uint64_t join_epoch;         /* config epoch of its (last) join entry */
};

/* A vbucket's placement. A copy in flight (migrate_*) moves the primary role
 * to `target` when it commits; until then `nodes` is what serves. */
struct topo_vb {
    uint8_t n;                   /* entries of nodes[] in use; 0 = unassigned */
    uint32_t nodes[TOPO_MAX_RF]; /* node nums, primary first */
    uint64_t epoch;              /* config epoch of its last change */
    uint32_t target;             /* node num receiving a copy, 0 = none */
    uint64_t copy_id;            /* the copy in flight, 0 = none */
};

/* The whole state (control thread only). */
struct topo {
    /* cluster-wide parameters, fixed by the first TOPO_E_INIT */
    uint32_t nvb;                /* vbuckets: a power of two, 1..16384 */
    uint32_t rf;                 /* replication factor, 1..TOPO_MAX_RF */
    uint32_t vnodes;             /* ring points per node */
    uint64_t config_epoch;
    uint64_t applied;            /* index of the last entry applied */
    uint32_t next_num;
    size_t nnodes;
    struct topo_node *nodes;     /* sorted by num */
    struct topo_vb *vb;          /* nvb entries (NULL before TOPO_E_INIT) */
};

/* Entry types. Every entry is: u8 type, then its fields, little-endian, no
 * padding; strings as u8 length + bytes. */
enum topo_entry_type {
    TOPO_E_INIT = 1,        /* nvb, rf, vnodes: once; later ones are stale */
    TOPO_E_NODE_JOIN,       /* id, raft_id, ip, ports: new num, or same num and
                               new address when the id is known */
    TOPO_E_NODE_LEAVE,      /* id: set TOPO_NODE_LEAVING */
    TOPO_E_NODE_FORGET,     /* id: remove; refused while it is in a replica list
                               or a copy target */
    TOPO_E_VB_SET,          /* vb, expect_epoch, n, nums[n]: replace the list */
    TOPO_E_MIGRATE_BEGIN,   /* vb, expect_epoch, target num, copy_id */
    TOPO_E_MIGRATE_COMMIT,  /* vb, copy_id, n, nums[n]: the new list (target first) */
    TOPO_E_MIGRATE_ABORT,   /* vb, copy_id */
};

/* Results of topo_apply (also the Raft apply result a proposer gets). */
enum topo_result {
    TOPO_OK = 0,       /* applied, config_epoch = index */
    TOPO_NOOP = 1,     /* already so (idempotent repeat): nothing changed */
    TOPO_STALE = 2,    /* an expectation failed: nothing changed */
    TOPO_EINVAL = 3,   /* malformed entry: nothing changed */
};

void topo_init(struct topo *t);
void topo_deinit(struct topo *t);

/* Apply one committed entry at Raft index `index` (> t->applied). */
enum topo_result topo_apply(struct topo *t, uint64_t index, const void *entry, size_t len);

/* Canonical encoding of the whole state (the Raft snapshot), and its inverse
 * (replaces t; TOPO_EINVAL on malformed input, t unchanged then). */
void topo_encode(const struct topo *t, struct buf *out);
enum topo_result topo_decode(struct topo *t, const void *data, size_t len);

/* Entry builders: append one encoded entry to out. */
void topo_entry_init(struct buf *out, uint32_t nvb, uint32_t rf, uint32_t vnodes);
void topo_entry_node_join(struct buf *out, const struct topo_node *n); /* num, flags, join_epoch ignored */
void topo_entry_node_leave(struct buf *out, const char *id);
void topo_entry_node_forget(struct buf *out, const char *id);
void topo_entry_vb_set(struct buf *out, uint32_t vb, uint64_t expect_epoch, unsigned n,
                       const uint32_t *nums);
void topo_entry_migrate_begin(struct buf *out, uint32_t vb, uint64_t expect_epoch,
                              uint32_t target, uint64_t copy_id);
void topo_entry_migrate_commit(struct buf *out, uint32_t vb, uint64_t copy_id, unsigned n,
                               const uint32_t *nums);
void topo_entry_migrate_abort(struct buf *out, uint32_t vb, uint64_t copy_id);

/* Lookups (NULL when absent). */
const struct topo_node *topo_node_by_id(const struct topo *t, const char *id);
const struct topo_node *topo_node_by_num(const struct topo *t, uint32_t num);

/*
 * The leader's plan: the ring placement (cluster/ring.h) of the current
 * members that are not LEAVING, compared with every vbucket's list; one
 * TOPO_E_VB_SET entry appended to out per vbucket that differs and has no
 * copy in flight (at most max_entries; 0 = no limit). Returns the number of
 * entries appended. Pure function of t.
 */
size_t topo_plan(const struct topo *t, struct buf *out, size_t max_entries);

/* ---- the immutable view the data plane reads ------------------------------ */

#define TOPO_VIEW_NONE 0xFFFFu

struct topo_view {
    uint64_t config_epoch;
    uint32_t nvb, rf;
    uint32_t slot_shift;         /* vb = slot >> slot_shift */
    uint16_t self;               /* index of this node in nodes[], TOPO_VIEW_NONE if not a member */
    uint16_t nnodes;
    struct topo_node *nodes;     /* copies, sorted by num */
    /* per vbucket: n, then index into nodes[] of each replica, primary first */
    uint8_t *vb_n;               /* nvb */
    uint16_t *vb_nodes;          /* nvb * rf */
    uint32_t slots_assigned;     /* slots whose vbucket has a primary */
};

/* Build a view of t for the node whose id is self_id (NULL or unknown: no
 * self). Returns NULL only on allocation failure. topo_view_free frees it. */
struct topo_view *topo_view_build(const struct topo *t, const char *self_id);
void topo_view_free(struct topo_view *v);

static inline uint32_t
topo_view_vb_of_slot(const struct topo_view *v, unsigned slot)
{
    return slot >> v->slot_shift;
}

/* Index in v->nodes of the primary of a slot, TOPO_VIEW_NONE when unassigned. */
static inline uint16_t
topo_view_primary(const struct topo_view *v, unsigned slot)
{
    uint32_t vb = slot >> v->slot_shift;
    return v->vb_n[vb] ? v->vb_nodes[(size_t)vb * v->rf] : TOPO_VIEW_NONE;
}

#endif
