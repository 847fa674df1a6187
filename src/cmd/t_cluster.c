/*
 * t_cluster.c -- what Redis Cluster clients see on the RESP port: the
 * CLUSTER command, READONLY / READWRITE / ASKING, and the routing of keyed
 * commands (MOVED, CROSSSLOT, CLUSTERDOWN) that dispatch calls when a
 * topology view is published (cluster/cluster.h).
 *
 * Replies are built from the view, in Redis 7.0's formats (captured from a
 * real Redis Cluster with tests/integration/redis_cluster_capture.py). A
 * vbucket is a run of consecutive slots with one replica list, primary
 * first, so what Redis calls a shard is here a distinct replica list, and a
 * node can be the primary of several ranges and a replica of others.
 *
 * With cluster mode off every subcommand answers, as Redis with cluster
 * support disabled does, "ERR This instance has cluster support disabled"
 * once the subcommand's name and arity were checked.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cluster/gate.h"
#include "cmd/args.h"
#include "cmd/call.h"
#include "cmd/cmd.h"
#include "cmd/forward.h"
#include "cmd/later.h"
#include "conf/config.h"
#include "core/server.h"
#include "proto/text.h"
#include "store/hint.h"
#include "store/slot.h"
#include "util/buf.h"
#include "util/mem.h"

#define ERR_DISABLED "ERR This instance has cluster support disabled"

/* Cluster mode: configured, or a view published (the unit tests publish one
 * without a configuration). */
bool
cmd_cluster_enabled(void)
{
    return cluster_view() != NULL || (server.cfg != NULL && server.cfg->cluster.enabled);
}

/* ---- routing -------------------------------------------------------------- */

/* Is node index `self` in the replica list of slot's vbucket (any place)? */
static bool
view_serves(const struct topo_view *v, unsigned slot, uint16_t self)
{
    uint32_t vb = topo_view_vb_of_slot(v, slot);
    const uint16_t *nodes = &v->vb_nodes[(size_t)vb * v->rf];
    for (unsigned i = 0; i < v->vb_n[vb]; i++) {
        if (nodes[i] == self) {
            return true;
        }
    }
    return false;
}

static __attribute__((noinline, cold)) void
reject_moved(struct client *c, const struct cmd *cmd, unsigned slot, const struct topo_node *n,
             bool native)
{
    char err[128];
    snprintf(err, sizeof(err), "MOVED %u %s:%u", slot, n->ip,
             (unsigned)(native ? n->port : n->resp_port));
    cmd_reject(c, cmd, err);
}

/* A write to a vbucket this node is primary of passes its gate (gate.h):
 * false when the vbucket is paused for a handover -- the request is kept and
 * run again when the pause ends, or refused with TRYAGAIN past the bound. */
static bool
pass_gate(struct client *c, const struct cmd *cmd, const struct topo_view *v, unsigned slot)
{
    c->held_ms = 0;
    if (!(cmd->flags & CMD_WRITE)) {
        return true;
    }
    uint32_t vb = topo_view_vb_of_slot(v, slot);
    int64_t since = gate_enter(vb);
    if (since == 0) {
        c->gate_vb = vb + 1;
        return true;
    }
    if (cmd_time_ms() - since > GATE_MAX_PAUSE_MS) {
        cmd_reject(c, cmd, "TRYAGAIN the slot is being handed over to another node");
    } else {
        later_retry(c);
    }
    return false;
}

/*
 * A request for a vbucket that a copy is bringing to this node, which is
 * not its primary yet: the commit is near, and the old primary may already
 * have applied it (and sends clients here). Answering MOVED back would
 * bounce the client between the two until its retries run out; keep the
 * request instead and run it again when the topology changes -- for
 * GATE_MAX_PAUSE_MS at most, then MOVED as usual.
 */
static bool
hold_for_commit(struct client *c, const struct topo_view *v, unsigned slot)
{
    if (v->vb_target == NULL || v->self == TOPO_VIEW_NONE ||
        v->vb_target[topo_view_vb_of_slot(v, slot)] != v->self) {
        return false;
    }
    int64_t now = cmd_time_ms();
    if (c->held_ms == 0) {
        c->held_ms = now;
    } else if (now - c->held_ms > GATE_MAX_PAUSE_MS) {
        c->held_ms = 0;
        return false;
    }
    later_retry(c);
    return true;
}

void
cmd_cluster_gate_exit(struct client *c)
{
    gate_exit(c->gate_vb - 1);
    c->gate_vb = 0;
}

bool
cmd_cluster_route(struct client *c, const struct cmd *cmd, const struct topo_view *v, int argc,
                  struct proto_arg *argv)
{
    int last = cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key;
    if (last >= argc) {
        last = argc - 1;
    }
    int slot = -1;
    for (int i = cmd->first_key; i <= last; i += cmd->key_step) {
        /* the first key's slot may come from the look-ahead (hint.h) */
        int s = (int)hint_slot(argv[i].ptr, argv[i].len);
        if (slot < 0) {
            slot = s;
            /* as Redis: an unserved first slot answers before CROSSSLOT */
            if (topo_view_primary(v, (unsigned)s) == TOPO_VIEW_NONE) {
                cmd_reject(c, cmd, "CLUSTERDOWN Hash slot not served");
                return false;
            }
        } else if (s != slot) {
            cmd_reject(c, cmd, "CROSSSLOT Keys in request don't hash to the same slot");
            return false;
        }
    }
    if (slot < 0) {
        return true;
    }
    uint16_t p = topo_view_primary(v, (unsigned)slot);
    if (p == v->self) {
        return pass_gate(c, cmd, v, (unsigned)slot);
    }
    /* READONLY connections read what this node replicates (possibly stale) */
    if (c->readonly && (cmd->flags & CMD_READONLY) && v->self != TOPO_VIEW_NONE &&
        view_serves(v, (unsigned)slot, v->self)) {
        return true;
    }
    if (hold_for_commit(c, v, (unsigned)slot)) {
        return false;
    }
    c->held_ms = 0;
    reject_moved(c, cmd, (unsigned)slot, &v->nodes[p], false);
    return false;
}

/* A forwarded request's reply, relayed as the owner wrote it. */
static void
forwarded(void *arg, const char *reply, size_t len)
{
    later_finish_raw(arg, reply, len);
}

bool
cmd_cluster_forward(struct client *c, enum fwd_proto proto, unsigned slot, const char *req,
                    size_t len)
{
    struct later *l = later_begin(c);
    if (l == NULL) {
        return false;
    }
    if (fwd_submit(c, proto, slot, req, len, forwarded, l) != 0) {
        later_finish(l, "CLUSTERDOWN Hash slot not served");
    }
    return true;
}

/* Send the native request to slot's owner; false when the client cannot
 * wait for a reply (it is closing). */
static bool
forward_native(struct client *c, unsigned slot, int argc, const struct proto_arg *argv)
{
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < argc; i++) {
        if (i > 0) {
            buf_appendc(&b, ' ');
        }
        if (text_needs_quote(argv[i].ptr, argv[i].len)) {
            char *w = buf_reserve(&b, text_quoted_len(argv[i].ptr, argv[i].len));
            b.len += text_quote(argv[i].ptr, argv[i].len, w);
        } else {
            buf_append(&b, argv[i].ptr, argv[i].len);
        }
    }
    buf_append(&b, "\r\n", 2);
    bool ok = cmd_cluster_forward(c, FWD_NATIVE, slot, b.data, b.len);
    buf_deinit(&b);
    return ok;
}

bool
cmd_cluster_route_native(struct client *c, const struct cmd *cmd, const struct topo_view *v,
                         int argc, const struct proto_arg *argv)
{
    const struct proto_arg *key = &argv[1];
    unsigned slot = hint_slot(key->ptr, key->len);
    uint16_t p = topo_view_primary(v, slot);
    /* unassigned first: a node outside the topology has self == NONE too */
    if (p == TOPO_VIEW_NONE) {
        cmd_reject(c, cmd, "CLUSTERDOWN Hash slot not served");
        return false;
    }
    if (p == v->self) {
        return pass_gate(c, cmd, v, slot);
    }
    if (hold_for_commit(c, v, slot)) {
        return false;
    }
    c->held_ms = 0;
    /* a node forwarding to us routed on an older view: it routes again */
    if (c->peer || !forward_native(c, slot, argc, argv)) {
        reject_moved(c, cmd, slot, &v->nodes[p], true);
    }
    return false;
}

/* ---- READONLY / READWRITE / ASKING --------------------------------------- */

void
cmd_readonly(struct client *c, int argc, struct proto_arg *argv)
{
    if (!cmd_cluster_enabled()) {
        reply_error(&c->r, ERR_DISABLED);
        return;
    }
    c->readonly = true;
    reply_ok(&c->r);
}

void
cmd_readwrite(struct client *c, int argc, struct proto_arg *argv)
{
    if (!cmd_cluster_enabled()) {
        reply_error(&c->r, ERR_DISABLED);
        return;
    }
    c->readonly = false;
    reply_ok(&c->r);
}

/* No slot is ever importing (vbuckets move by copies that commit through
 * Raft, not by ASK redirections), so ASKING changes nothing: +OK as Redis. */
void
cmd_asking(struct client *c, int argc, struct proto_arg *argv)
{
    if (!cmd_cluster_enabled()) {
        reply_error(&c->r, ERR_DISABLED);
        return;
    }
    reply_ok(&c->r);
}

/* ---- views: ranges -------------------------------------------------------- */

/* Cluster mode with no view published (tests; main.c publishes the empty
 * view at start-up): no node, no slot. */
static const struct topo_view *
view_or_empty(void)
{
    const struct topo_view *v = cluster_view();
    return v ? v : &cluster_view_empty;
}

static const uint16_t *
vb_list(const struct topo_view *v, uint32_t vb)
{
    return &v->vb_nodes[(size_t)vb * v->rf];
}

static bool
same_list(const struct topo_view *v, uint32_t a, uint32_t b)
{
    return v->vb_n[a] == v->vb_n[b] &&
           memcmp(vb_list(v, a), vb_list(v, b), v->vb_n[a] * sizeof(uint16_t)) == 0;
}

/* A run of consecutive vbuckets [vb0, vb1] with one (non-empty) list. */
struct range {
    uint32_t vb0, vb1;
};

/* The view's assigned ranges, merged, in slot order (malloc'd, *n set). */
static struct range *
view_ranges(const struct topo_view *v, size_t *n)
{
    struct range *r = xmalloc((v->nvb ? v->nvb : 1) * sizeof(*r));
    size_t k = 0;
    for (uint32_t vb = 0; vb < v->nvb; vb++) {
        if (v->vb_n[vb] == 0) {
            continue;
        }
        if (k > 0 && r[k - 1].vb1 + 1 == vb && same_list(v, r[k - 1].vb0, vb)) {
            r[k - 1].vb1 = vb;
        } else {
            r[k++] = (struct range){vb, vb};
        }
    }
    *n = k;
    return r;
}

static unsigned
range_start(const struct topo_view *v, const struct range *r)
{
    return r->vb0 << v->slot_shift;
}

static unsigned
range_end(const struct topo_view *v, const struct range *r)
{
    return ((r->vb1 + 1) << v->slot_shift) - 1;
}

/* ---- CLUSTER SLOTS / SHARDS / NODES / INFO ------------------------------- */

static void
cluster_slots(struct client *c, const struct topo_view *v)
{
    size_t n;
    struct range *r = view_ranges(v, &n);
    reply_array(&c->r, n);
    for (size_t i = 0; i < n; i++) {
        unsigned cnt = v->vb_n[r[i].vb0];
        const uint16_t *list = vb_list(v, r[i].vb0);
        reply_array(&c->r, 2 + cnt);
        reply_int(&c->r, range_start(v, &r[i]));
        reply_int(&c->r, range_end(v, &r[i]));
        for (unsigned j = 0; j < cnt; j++) {
            const struct topo_node *nd = &v->nodes[list[j]];
            reply_array(&c->r, 4);
            reply_bulkstr(&c->r, nd->ip);
            reply_int(&c->r, nd->resp_port);
            reply_bulkstr(&c->r, nd->id);
            reply_map(&c->r, 0); /* Redis 7's metadata: hostname, when announced */
        }
    }
    free(r);
}

static _Thread_local const struct topo_view *sort_view; /* for cmp_range_list (qsort has no context) */

/* Ranges grouped by replica list, then in slot order. */
static int
cmp_range_list(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    const struct topo_view *v = sort_view;
    unsigned nx = v->vb_n[x->vb0], ny = v->vb_n[y->vb0];
    int d = memcmp(vb_list(v, x->vb0), vb_list(v, y->vb0),
                   (nx < ny ? nx : ny) * sizeof(uint16_t));
    if (d == 0) {
        d = (int)nx - (int)ny;
    }
    if (d == 0) {
        d = x->vb0 < y->vb0 ? -1 : x->vb0 > y->vb0;
    }
    return d;
}

static void
shard_node(struct reply *r, const struct topo_node *nd, bool primary)
{
    reply_map(r, 7);
    reply_bulkstr(r, "id");
    reply_bulkstr(r, nd->id);
    reply_bulkstr(r, "port");
    reply_int(r, nd->resp_port);
    reply_bulkstr(r, "ip");
    reply_bulkstr(r, nd->ip);
    reply_bulkstr(r, "endpoint");
    reply_bulkstr(r, nd->ip);
    reply_bulkstr(r, "role");
    reply_bulkstr(r, primary ? "master" : "replica");
    reply_bulkstr(r, "replication-offset");
    reply_int(r, 0);
    reply_bulkstr(r, "health");
    reply_bulkstr(r, "online");
}

/* One shard per distinct replica list, ordered by its first slot. */
static void
cluster_shards(struct client *c, const struct topo_view *v)
{
    size_t n;
    struct range *r = view_ranges(v, &n);
    sort_view = v;
    qsort(r, n, sizeof(*r), cmp_range_list);
    /* groups [g, e) of one list; emitted in the order of their first slot */
    size_t *first = xmalloc((n ? n : 1) * sizeof(*first));
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || !same_list(v, r[i - 1].vb0, r[i].vb0)) {
            first[ng++] = i;
        }
    }
    /* order the groups by their first range's start (insertion sort: few) */
    for (size_t i = 1; i < ng; i++) {
        size_t g = first[i], j = i;
        while (j > 0 && r[first[j - 1]].vb0 > r[g].vb0) {
            first[j] = first[j - 1];
            j--;
        }
        first[j] = g;
    }
    /* nodes in no replica list (just joined, or leaving) are shards of their
     * own with no slot, as Redis shows a master without slots */
    bool *listed = xcalloc(v->nnodes ? v->nnodes : 1, sizeof(bool));
    size_t nlone = v->nnodes;
    for (size_t gi = 0; gi < ng; gi++) {
        const uint16_t *list = vb_list(v, r[first[gi]].vb0);
        for (unsigned j = 0; j < v->vb_n[r[first[gi]].vb0]; j++) {
            if (!listed[list[j]]) {
                listed[list[j]] = true;
                nlone--;
            }
        }
    }
    reply_array(&c->r, ng + nlone);
    for (size_t gi = 0; gi < ng; gi++) {
        size_t g = first[gi], e = g + 1;
        while (e < n && same_list(v, r[g].vb0, r[e].vb0)) {
            e++;
        }
        reply_map(&c->r, 2);
        reply_bulkstr(&c->r, "slots");
        reply_array(&c->r, 2 * (e - g));
        for (size_t i = g; i < e; i++) {
            reply_int(&c->r, range_start(v, &r[i]));
            reply_int(&c->r, range_end(v, &r[i]));
        }
        reply_bulkstr(&c->r, "nodes");
        unsigned cnt = v->vb_n[r[g].vb0];
        const uint16_t *list = vb_list(v, r[g].vb0);
        reply_array(&c->r, cnt);
        for (unsigned j = 0; j < cnt; j++) {
            shard_node(&c->r, &v->nodes[list[j]], j == 0);
        }
    }
    for (uint16_t i = 0; i < v->nnodes; i++) {
        if (!listed[i]) {
            reply_map(&c->r, 2);
            reply_bulkstr(&c->r, "slots");
            reply_array(&c->r, 0);
            reply_bulkstr(&c->r, "nodes");
            reply_array(&c->r, 1);
            shard_node(&c->r, &v->nodes[i], true);
        }
    }
    free(listed);
    free(first);
    free(r);
}

/* Redis's node line: id ip:port@cport flags master ping-sent pong-recv
 * config-epoch link-state slot-range... Every node is shown as a master
 * with the ranges it is the primary of: a vbucket's replicas are not the
 * replicas of one node, which this format cannot say. */
static void
cluster_nodes(struct client *c, const struct topo_view *v)
{
    struct buf b;
    buf_init(&b);
    for (uint16_t i = 0; i < v->nnodes; i++) {
        const struct topo_node *nd = &v->nodes[i];
        buf_appendf(&b, "%s %s:%u@%u %s - 0 0 %llu connected", nd->id, nd->ip,
                    (unsigned)nd->resp_port, (unsigned)nd->bus_port,
                    i == v->self ? "myself,master" : "master",
                    (unsigned long long)v->config_epoch);
        uint32_t vb = 0;
        while (vb < v->nvb) {
            if (v->vb_n[vb] == 0 || vb_list(v, vb)[0] != i) {
                vb++;
                continue;
            }
            uint32_t e = vb;
            while (e + 1 < v->nvb && v->vb_n[e + 1] != 0 && vb_list(v, e + 1)[0] == i) {
                e++;
            }
            unsigned s0 = vb << v->slot_shift, s1 = ((e + 1) << v->slot_shift) - 1;
            if (s0 == s1) {
                buf_appendf(&b, " %u", s0);
            } else {
                buf_appendf(&b, " %u-%u", s0, s1);
            }
            vb = e + 1;
        }
        buf_appendc(&b, '\n');
    }
    reply_verbatim(&c->r, b.data, b.len);
    buf_deinit(&b);
}

static void
cluster_info(struct client *c, const struct topo_view *v)
{
    struct cluster_raft_info ri;
    cluster_raft_info(&ri);
    /* nodes that are the primary of at least one slot */
    unsigned size = 0;
    if (v->nnodes > 0) {
        bool *primary = xcalloc(v->nnodes, sizeof(bool));
        for (uint32_t vb = 0; vb < v->nvb; vb++) {
            if (v->vb_n[vb] != 0 && !primary[vb_list(v, vb)[0]]) {
                primary[vb_list(v, vb)[0]] = true;
                size++;
            }
        }
        free(primary);
    }
    struct buf b;
    buf_init(&b);
    unsigned long long epoch = (unsigned long long)v->config_epoch;
    buf_appendf(&b,
                "cluster_state:%s\r\ncluster_slots_assigned:%u\r\ncluster_slots_ok:%u\r\n"
                "cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:%u\r\n"
                "cluster_size:%u\r\ncluster_current_epoch:%llu\r\ncluster_my_epoch:%llu\r\n"
                /* Redis prints a per-type message line only for types it
                 * counted; the bus has its own figures (not these) */
                "cluster_stats_messages_sent:%llu\r\ncluster_stats_messages_received:%llu\r\n"
                "total_cluster_links_buffer_limit_exceeded:0\r\n"
                "raft_role:%s\r\nraft_leader_id:%s\r\nraft_term:%llu\r\n"
                "raft_commit_index:%llu\r\nraft_applied_index:%llu\r\n"
                "cluster_migrations_active:%u\r\ncluster_migrations_completed:%llu\r\n"
                "cluster_keys_migrated:%llu\r\ncluster_bytes_migrated:%llu\r\n"
                "cluster_vbuckets_pending:%u\r\n",
                v->slots_assigned == TOPO_SLOTS ? "ok" : "fail", (unsigned)v->slots_assigned,
                (unsigned)v->slots_assigned, (unsigned)v->nnodes, size, epoch, epoch,
                (unsigned long long)ri.bus_sent, (unsigned long long)ri.bus_received,
                ri.role ? ri.role : "unavailable", ri.leader_node_id,
                (unsigned long long)ri.term, (unsigned long long)ri.commit_index,
                (unsigned long long)ri.applied_index, ri.migrations_active,
                (unsigned long long)ri.migrations_completed,
                (unsigned long long)ri.keys_migrated, (unsigned long long)ri.bytes_migrated,
                (unsigned)v->vb_pending);
    struct tstats ts;
    tstats_sum(&ts);
    buf_appendf(&b,
                "cluster_forwarded_requests:%llu\r\ncluster_forward_failed:%llu\r\n"
                "cluster_forward_retries:%llu\r\ncluster_forward_usec_per_call:%.2f\r\n",
                (unsigned long long)ts.fwd_requests, (unsigned long long)ts.fwd_failed,
                (unsigned long long)ts.fwd_retries,
                ts.fwd_requests ? (double)ts.fwd_usec / (double)ts.fwd_requests : 0.0);
    reply_verbatim(&c->r, b.data, b.len);
    buf_deinit(&b);
}

/* ---- CLUSTER --------------------------------------------------------------- */

struct keys_out {
    struct reply *r;
    long long left;
    size_t n;
    struct buf keys; /* length-prefixed copies, replied after the lock is gone */
};

static void
collect_key(struct item *it, void *ctx)
{
    struct keys_out *k = ctx;
    if (k->left <= 0) {
        return;
    }
    k->left--;
    k->n++;
    size_t len = item_klen(it);
    buf_append(&k->keys, &len, sizeof(len));
    buf_append(&k->keys, item_key(it), len);
}

static const char *const cluster_help[] = {
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "HELP",
    "    Prints this help.",
    NULL,
};

enum csub {
    CS_INFO, CS_MYID, CS_SLOTS, CS_SHARDS, CS_NODES, CS_KEYSLOT, CS_COUNTKEYSINSLOT,
    CS_GETKEYSINSLOT, CS_HELP, CS_MEET, CS_FORGET, CS_OTHER,
};

/* ---- MEET and FORGET: answered once Raft has committed the change --------- */

static void
on_admin_done(void *arg, const char *err)
{
    later_finish(arg, err);
}

/* CLUSTER MEET ip port [bus-port]: Redis's errors for a bad address or port;
 * the bus port defaults to port + 10000 as in Redis. */
static void
cluster_meet_cmd(struct client *c, int argc, struct proto_arg *argv)
{
    char ip[64];
    long long port, bus;
    if (argc > 5) {
        reply_error(&c->r, "ERR syntax error");
        return;
    }
    if (argv[2].len >= sizeof(ip)) {
        reply_errorf(&c->r, "ERR Invalid node address specified: %.*s:%.*s", (int)argv[2].len,
                     argv[2].ptr, (int)argv[3].len, argv[3].ptr);
        return;
    }
    memcpy(ip, argv[2].ptr, argv[2].len);
    ip[argv[2].len] = '\0';
    if (!arg_to_ll(&argv[3], &port) || port < 0 || port > 65535) {
        reply_errorf(&c->r, "ERR Invalid base port specified: %.*s", (int)argv[3].len,
                     argv[3].ptr);
        return;
    }
    bus = port + 10000;
    if (argc == 5 && (!arg_to_ll(&argv[4], &bus) || bus < 0 || bus > 65535)) {
        reply_errorf(&c->r, "ERR Invalid bus port specified: %.*s", (int)argv[4].len,
                     argv[4].ptr);
        return;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, ip, &a) != 1 || bus == 0 || bus > 65535) {
        reply_errorf(&c->r, "ERR Invalid node address specified: %s:%lld", ip, port);
        return;
    }
    struct later *l = later_begin(c);
    if (l == NULL) {
        reply_error(&c->r, "ERR the connection is closing");
        return;
    }
    cluster_meet(ip, (int)bus, on_admin_done, l);
}

static void
cluster_forget_cmd(struct client *c, const struct topo_view *v, const struct proto_arg *id)
{
    char nid[TOPO_ID_LEN + 1];
    if (id->len > TOPO_ID_LEN) {
        reply_errorf(&c->r, "ERR Unknown node %.*s", (int)id->len, id->ptr);
        return;
    }
    memcpy(nid, id->ptr, id->len);
    nid[id->len] = '\0';
    if (v->self != TOPO_VIEW_NONE && strcmp(v->nodes[v->self].id, nid) == 0) {
        reply_error(&c->r, "ERR I tried hard but I can't forget myself...");
        return;
    }
    struct later *l = later_begin(c);
    if (l == NULL) {
        reply_error(&c->r, "ERR the connection is closing");
        return;
    }
    cluster_forget(nid, on_admin_done, l);
}

/* Redis 7.0's CLUSTER subcommands and arities (what it checks before
 * anything else, cluster mode or not). */
static const struct {
    const char *name;
    int arity;
    enum csub id;
} csubs[] = {
    {"addslots", -3, CS_OTHER},        {"addslotsrange", -4, CS_OTHER},
    {"bumpepoch", 2, CS_OTHER},        {"count-failure-reports", 3, CS_OTHER},
    {"countkeysinslot", 3, CS_COUNTKEYSINSLOT},
    {"delslots", -3, CS_OTHER},        {"delslotsrange", -4, CS_OTHER},
    {"failover", -2, CS_OTHER},        {"flushslots", 2, CS_OTHER},
    {"forget", 3, CS_FORGET},           {"getkeysinslot", 4, CS_GETKEYSINSLOT},
    {"help", 2, CS_HELP},              {"info", 2, CS_INFO},
    {"keyslot", 3, CS_KEYSLOT},        {"links", 2, CS_OTHER},
    {"meet", -4, CS_MEET},             {"myid", 2, CS_MYID},
    {"nodes", 2, CS_NODES},            {"replicas", 3, CS_OTHER},
    {"replicate", 3, CS_OTHER},        {"reset", -2, CS_OTHER},
    {"saveconfig", 2, CS_OTHER},       {"set-config-epoch", 3, CS_OTHER},
    {"setslot", -4, CS_OTHER},         {"shards", 2, CS_SHARDS},
    {"slaves", 3, CS_OTHER},           {"slots", 2, CS_SLOTS},
};

/* Redis's addReplyHelp for CLUSTER. */
static void
reply_cluster_help(struct client *c)
{
    size_t n = 0;
    while (cluster_help[n]) {
        n++;
    }
    reply_array(&c->r, n + 1);
    reply_simple(&c->r, "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    for (size_t i = 0; i < n; i++) {
        reply_simple(&c->r, cluster_help[i]);
    }
}

void
cmd_cluster(struct client *c, int argc, struct proto_arg *argv)
{
    const struct proto_arg *sub = &argv[1];
    size_t k = 0, ns = sizeof(csubs) / sizeof(csubs[0]);
    while (k < ns && !proto_arg_is(sub, csubs[k].name)) {
        k++;
    }
    if (k == ns) {
        cmd_reply_unknown_subcommand(c, sub, "CLUSTER");
        return;
    }
    int arity = csubs[k].arity;
    if ((arity > 0 && argc != arity) || (arity < 0 && argc < -arity)) {
        char name[48];
        snprintf(name, sizeof(name), "cluster|%s", csubs[k].name);
        cmd_reply_arity(c, name);
        return;
    }
    if (!cmd_cluster_enabled()) {
        reply_error(&c->r, ERR_DISABLED);
        return;
    }
    const struct topo_view *v = view_or_empty();
    long long slot, count;
    switch (csubs[k].id) {
    case CS_INFO:
        cluster_info(c, v);
        break;
    case CS_MYID:
        if (v->self != TOPO_VIEW_NONE) {
            reply_bulkstr(&c->r, v->nodes[v->self].id);
        } else if (cluster_myid() != NULL) {
            reply_bulkstr(&c->r, cluster_myid());
        } else if (server.cfg && server.cfg->cluster.node_id && server.cfg->cluster.node_id[0]) {
            reply_bulkstr(&c->r, server.cfg->cluster.node_id);
        } else {
            reply_error(&c->r, "CLUSTERDOWN this node has not joined a cluster yet");
        }
        break;
    case CS_SLOTS:
        cluster_slots(c, v);
        break;
    case CS_SHARDS:
        cluster_shards(c, v);
        break;
    case CS_NODES:
        cluster_nodes(c, v);
        break;
    case CS_KEYSLOT:
        reply_int(&c->r, slot_of(argv[2].ptr, argv[2].len));
        break;
    case CS_COUNTKEYSINSLOT:
        if (!arg_to_ll(&argv[2], &slot)) {
            reply_error(&c->r, "ERR value is not an integer or out of range");
        } else if (slot < 0 || slot >= SLOT_COUNT) {
            reply_error(&c->r, "ERR Invalid slot");
        } else {
            reply_int(&c->r, (int64_t)store_slot_count(server.store, (unsigned)slot));
        }
        break;
    case CS_GETKEYSINSLOT:
        if (!arg_to_ll(&argv[2], &slot) || !arg_to_ll(&argv[3], &count)) {
            reply_error(&c->r, "ERR value is not an integer or out of range");
        } else if (slot < 0 || slot >= SLOT_COUNT || count < 0) {
            reply_error(&c->r, "ERR Invalid slot or number of keys");
        } else {
            struct keys_out ko = {&c->r, count, 0, {0}};
            buf_init(&ko.keys);
            if (count > 0) {
                store_slot_visit(server.store, (unsigned)slot, collect_key, &ko);
            }
            reply_array(&c->r, ko.n);
            for (size_t off = 0; off < ko.keys.len;) {
                size_t len;
                memcpy(&len, ko.keys.data + off, sizeof(len));
                reply_bulk(&c->r, ko.keys.data + off + sizeof(len), len);
                off += sizeof(len) + len;
            }
            buf_deinit(&ko.keys);
        }
        break;
    case CS_HELP:
        reply_cluster_help(c);
        break;
    case CS_MEET:
        cluster_meet_cmd(c, argc, argv);
        break;
    case CS_FORGET:
        cluster_forget_cmd(c, v, &argv[2]);
        break;
    case CS_OTHER: {
        /* the placement is the Raft leader's: slots are not assigned by hand */
        char err[96];
        char up[32];
        size_t n = strlen(csubs[k].name);
        for (size_t i = 0; i <= n; i++) {
            char ch = csubs[k].name[i];
            up[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
        }
        snprintf(err, sizeof(err), "ERR CLUSTER %s is not supported by CrabCache", up);
        reply_error(&c->r, err);
        break;
    }
    }
}
