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
#define TOPO_MAX_VNODES 1024    /* ring points per node (TOPO_E_INIT's vnodes) */
#define TOPO_MAX_NODES 4096     /* members at once: view indexes are 16-bit */
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
 * padding; strings as u8 length + bytes (printable ASCII without spaces; an
 * id 1..TOPO_ID_LEN bytes, an ip 0..TOPO_IP_LEN - 1); lists as u8 n + u32
 * nums[n]. An entry with bytes missing or left over is TOPO_EINVAL.
 *
 * The rules, in the order they are checked (the first that fails decides):
 *   - index <= applied: TOPO_STALE, and applied is not moved. Otherwise
 *     applied = index whatever the result.
 *   - a bad layout (above; also an unknown type, a list longer than
 *     TOPO_MAX_RF, a JOIN with raft_id 0): TOPO_EINVAL.
 *   - VB_SET and MIGRATE_* before INIT: TOPO_STALE (vbuckets do not exist
 *     yet). NODE_* are accepted before INIT, so nodes can join first.
 *   - fields that contradict the parameters or the node table: TOPO_EINVAL.
 *     INIT with nvb not a power of two up to TOPO_MAX_VB, rf not
 *     1..TOPO_MAX_RF or vnodes not 1..TOPO_MAX_VNODES; a vb >= nvb; a list
 *     longer than rf, naming an unknown num or a num twice; a copy_id of 0;
 *     a MIGRATE_BEGIN target that is unknown; a MIGRATE_COMMIT list that is
 *     empty, or (for the copy in flight) not headed by the copy's target.
 *   - a repeat that would change nothing: TOPO_NOOP (see each type).
 *   - an expectation that does not hold: TOPO_STALE.
 * An entry that changes anything sets config_epoch = index, and one that
 * changes a vbucket sets its epoch = index.
 */
enum topo_entry_type {
    TOPO_E_INIT = 1,        /* nvb, rf, vnodes: once. A second INIT is NOOP if
                               identical, STALE otherwise */
    TOPO_E_NODE_JOIN,       /* id, raft_id, ip, ports: new num, or same num and
                               new address when the id is known (NOOP if the
                               address is the same; flags are kept: a LEAVING
                               node that joins again stays LEAVING). STALE if
                               another node has the raft_id, or at
                               TOPO_MAX_NODES */
    TOPO_E_NODE_LEAVE,      /* id: set TOPO_NODE_LEAVING (NOOP if set; STALE
                               if the id is unknown) */
    TOPO_E_NODE_FORGET,     /* id: remove; refused (STALE) while it is in a
                               replica list or a copy target; NOOP if unknown
                               (forgotten already) */
    TOPO_E_VB_SET,          /* vb, expect_epoch, n, nums[n]: replace the list.
                               NOOP if the list is already that; STALE if the
                               vb's epoch is not expect_epoch or a copy is in
                               flight (only MIGRATE_* change it then) */
    TOPO_E_MIGRATE_BEGIN,   /* vb, expect_epoch, target num, copy_id: start a
                               copy. NOOP if that copy is in flight; STALE if
                               the epoch differs, a copy is in flight, the vb
                               is unassigned, target is its primary already
                               or LEAVING */
    TOPO_E_MIGRATE_COMMIT,  /* vb, copy_id, n, nums[n]: the new list (target
                               first), the copy ends. If copy_id is not the
                               one in flight: NOOP when the list is already
                               that, else STALE */
    TOPO_E_MIGRATE_ABORT,   /* vb, copy_id: the copy ends, the list stays.
                               NOOP if no copy is in flight, STALE if another
                               one is */
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

/* Apply one committed entry at Raft index `index` (> t->applied). Allocation
 * failure aborts (util/mem.h): apply has no partial outcome. */
enum topo_result topo_apply(struct topo *t, uint64_t index, const void *entry, size_t len);

/* Canonical encoding of the whole state (the Raft snapshot), appended to out,
 * and its inverse (replaces t; TOPO_EINVAL on malformed input, or on a state
 * topo_apply could not have produced: t unchanged then). The first byte is
 * the encoding's version. */
void topo_encode(const struct topo *t, struct buf *out);
enum topo_result topo_decode(struct topo *t, const void *data, size_t len);

/* The length of the entry that starts data (entries carry no length: a
 * buffer of several, as topo_plan makes, is split with this), or 0 when data
 * does not start with a well-formed one. */
size_t topo_entry_len(const void *data, size_t len);

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
 * entries appended. Pure function of t. Before INIT, or when every node is
 * LEAVING (there is nowhere to move the data), it plans nothing.
 */
size_t topo_plan(const struct topo *t, struct buf *out, size_t max_entries);

/* The placement topo_plan compares with: for each vbucket, place_n[vb] and
 * place[vb * rf + i] as ring_place gives them over the members that are not
 * LEAVING (place: nvb * rf entries, place_n: nvb). -1 before INIT, with no
 * such member, or on allocation failure. */
int topo_place_all(const struct topo *t, uint32_t *place, uint8_t *place_n);

/* Whether vbucket vb's list is nums[0..n). */
bool topo_vb_list_equal(const struct topo *t, uint32_t vb, unsigned n, const uint32_t *nums);

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
    uint32_t vb_pending;         /* vbuckets not yet where the ring places them, or
                                    with a copy in flight (0 = placement settled);
                                    filled by whoever publishes, 0 from topo_view_build */
    uint16_t *vb_target;         /* nvb: index of the node a copy is bringing the
                                    vbucket to, TOPO_VIEW_NONE; NULL = none at all */
};

/* Build a view of t for the node whose id is self_id (NULL or unknown: no
 * self). Returns NULL only on allocation failure. topo_view_free frees it.
 * Before INIT the view has nvb 0 and every slot unassigned. */
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
