/*
 * join.c -- becoming a member: a pristine seed's discovery round, the JOIN a
 * node sends until the topology holds it as it is, the leader's side of a
 * JOIN, and an invitation from CLUSTER MEET. See control.c for the rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/ctl.h"
#include "cluster/wire.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"

/* ---- discovery (a pristine seed) ------------------------------------------------ */

static void
on_status(void *arg, int status, uint8_t type, const uint8_t *p, size_t n)
{
    unsigned round = (unsigned)(uintptr_t)arg;
    if (round != ctl.disc_round || ctl.phase != PH_DISCOVER) {
        return;
    }
    ctl.disc_answers++;
    if (status == 0 && type == (BUS_STATUS | BUS_REPLY)) {
        struct wire_rd r = {p, p + n, false};
        uint8_t member = wire_get_u8(&r), known = wire_get_u8(&r);
        if (!r.bad) {
            if (member) {
                ctl.disc_member = true;
                ctl.disc_known |= known != 0;
            } else {
                ctl.disc_pristine++;
            }
        }
    }
}

void
ctl_discover_tick(void)
{
    if (ctl.disc_inflight && ctl.disc_answers < ctl.nseeds - 1) {
        return;
    }
    if (ctl.disc_inflight) {
        /* A round is complete: decide. */
        ctl.disc_inflight = false;
        if (ctl.disc_known) {
            log_warn("cluster: a member knows this node's seed identity but this directory is "
                     "new: joining under a new identity",
                     "\"dir\":\"%s\"", ctl.dir);
            ctl_start_as_joiner();
            return;
        }
        if (ctl.disc_member || ctl.disc_pristine + 1 > ctl.nseeds / 2) {
            ctl_start_as_seed();
            return;
        }
    }
    ctl.disc_round++;
    ctl.disc_inflight = true;
    ctl.disc_answers = ctl.disc_pristine = 0;
    ctl.disc_member = ctl.disc_known = false;
    struct buf q;
    buf_init(&q);
    wire_u64(&q, ctl_seed_raft_id(ctl.bus_addr));
    for (size_t i = 0; i < ctl.nseeds; i++) {
        if ((int)i != ctl.self_seed &&
            bus_call(&ctl.loop, ctl.seeds[i], BUS_STATUS, q.data, q.len, CALL_TIMEOUT_MS,
                     on_status, (void *)(uintptr_t)ctl.disc_round) != 0) {
            ctl.disc_answers++;
        }
    }
    buf_deinit(&q);
}

/* ---- joining ---------------------------------------------------------------------- */

bool
ctl_self_in_topology(void)
{
    const struct topo_node *n = topo_node_by_id(&ctl.topo, ctl.node_id);
    return n && n->raft_id == ctl.raft_id && strcmp(n->ip, ctl.self.ip) == 0 &&
           n->port == ctl.self.port && n->resp_port == ctl.self.resp_port &&
           n->bus_port == ctl.self.bus_port && n->raft_port == ctl.self.raft_port;
}

static void
on_join_reply(void *arg, int status, uint8_t type, const uint8_t *p, size_t n)
{
    (void)arg;
    ctl.join_inflight = false;
    if (status != 0 || type != (BUS_JOIN | BUS_REPLY)) {
        ctl.leader_hint[0] = '\0'; /* gone, or never was: ask around again */
        return;
    }
    struct wire_rd r = {p, p + n, false};
    uint8_t code = wire_get_u8(&r);
    char text[256];
    wire_get_str(&r, text, sizeof(text));
    log_debug("cluster: join answered", "\"code\":%u,\"text\":\"%s\"", code, text);
    if (code == RC_REFUSED) {
        log_warn("cluster: join refused", "\"why\":\"%s\"", text);
    } else if (code == RC_NOT_LEADER) {
        /* The member's idea of the leader, or none (an election): then the
         * next JOIN asks around again. */
        snprintf(ctl.leader_hint, sizeof(ctl.leader_hint), "%.63s", text);
    }
}

static void
join_encode(struct buf *q)
{
    wire_str(q, ctl.name);
    wire_str(q, ctl.node_id);
    wire_u64(q, ctl.raft_id);
    wire_str(q, ctl.self.ip);
    wire_u16(q, ctl.self.port);
    wire_u16(q, ctl.self.resp_port);
    wire_u16(q, ctl.self.bus_port);
    wire_u16(q, ctl.self.raft_port);
}

/* Where to send a JOIN: the leader when Raft names one, else the address a
 * refusal or CLUSTER MEET named, else the seeds in turn. */
static const char *
join_target(char *buf, size_t len)
{
    struct craft_status st;
    craft_status(ctl.raft, &st);
    if (st.leader_addr && st.leader_id != ctl.raft_id) {
        ctl_bus_addr_of_raft(st.leader_addr, buf, len);
        return buf;
    }
    if (st.leader) {
        return ctl.bus_addr; /* ourselves: the leader takes its own JOIN too */
    }
    if (ctl.leader_hint[0]) {
        return ctl.leader_hint; /* a member named the leader */
    }
    /* Nobody named a leader yet: the CLUSTER MEET address and the seeds
     * (but ourselves) in turn. */
    size_t n = ctl.nseeds + (ctl.meet_target[0] ? 1 : 0);
    for (size_t k = 0; k < n; k++) {
        size_t i = ctl.join_rr++ % n;
        if (i == ctl.nseeds) {
            return ctl.meet_target;
        }
        if ((int)i != ctl.self_seed) {
            return ctl.seeds[i];
        }
    }
    return NULL;
}

void
ctl_join_tick(void)
{
    if (ctl.join_inflight || ctl_self_in_topology()) {
        return;
    }
    char buf[64];
    const char *to = join_target(buf, sizeof(buf));
    if (to == NULL) {
        return;
    }
    struct buf q;
    buf_init(&q);
    join_encode(&q);
    if (bus_call(&ctl.loop, to, BUS_JOIN, q.data, q.len, CALL_TIMEOUT_MS * 3, on_join_reply,
                 NULL) == 0) {
        ctl.join_inflight = true;
    }
    buf_deinit(&q);
}

/* ---- the leader's side of a JOIN ---------------------------------------------------- */

struct join_op {
    struct bus_conn *from;
    uint32_t reqid;
    struct topo_node n;
    int step; /* -1 remove a stale id, 0 add, 1 assign standby, 2 commit NODE_JOIN */
};

static void join_step(struct join_op *op);

static void
join_op_end(struct join_op *op, uint8_t code, const char *text)
{
    ctl_reply_code(op->from, op->reqid, BUS_JOIN, code, text);
    bus_conn_release(op->from);
    ctl.change_inflight = false;
    free(op);
}

static void
on_join_step(void *arg, int status, int result)
{
    struct join_op *op = arg;
    log_debug("cluster: join step done", "\"node_id\":\"%s\",\"step\":%d,\"status\":%d",
              op->n.id, op->step, status);
    if (status != 0) {
        join_op_end(op, craft_is_not_leader(status) ? RC_NOT_LEADER : RC_BUSY,
                    craft_strerror(status));
        return;
    }
    if (op->step == 2) {
        join_op_end(op, result == TOPO_EINVAL ? RC_REFUSED : RC_OK,
                    result == TOPO_EINVAL ? "malformed join" : "");
        return;
    }
    op->step++;
    join_step(op);
}

/* A member of the Raft configuration at addr under another id, or 0. */
static uint64_t
stale_member(const char *addr, uint64_t id)
{
    struct craft_member m[256];
    size_t n = craft_members(ctl.raft, m, 256);
    for (size_t i = 0; i < n; i++) {
        if (m[i].id != id && strcmp(m[i].addr, addr) == 0) {
            return m[i].id;
        }
    }
    return 0;
}

static void
on_retired(void *arg, int status, int result)
{
    (void)arg, (void)status, (void)result;
}

/* The topology node of a retired Raft id leaves: its vbuckets are placed
 * elsewhere, then leader.c forgets it. */
static void
retire_identity(uint64_t raft_id)
{
    for (size_t i = 0; i < ctl.topo.nnodes; i++) {
        const struct topo_node *n = &ctl.topo.nodes[i];
        if (n->raft_id == raft_id && !(n->flags & TOPO_NODE_LEAVING)) {
            log_warn("cluster: a new identity took over an address: the old one leaves",
                     "\"old_node_id\":\"%s\",\"address\":\"%s:%u\"", n->id, n->ip,
                     n->raft_port);
            struct buf e;
            buf_init(&e);
            topo_entry_node_leave(&e, n->id);
            craft_propose(ctl.raft, e.data, e.len, on_retired, NULL);
            buf_deinit(&e);
        }
    }
}

static void
join_step(struct join_op *op)
{
    char raddr[64];
    snprintf(raddr, sizeof(raddr), "%s:%u", op->n.ip, op->n.raft_port);
    enum craft_role role = craft_role_of(ctl.raft, op->n.raft_id);
    int rv = 0;
    if (op->step == 0 && role != CRAFT_NONE) {
        op->step = 1;
    }
    if (op->step == 1 && (role == CRAFT_STANDBY || role == CRAFT_VOTER)) {
        op->step = 2;
    }
    uint64_t stale = op->step == 0 ? stale_member(raddr, op->n.raft_id) : 0;
    switch (op->step) {
    case 0:
        if (stale) {
            /* Another Raft id at this very address: an identity whose
             * directory was wiped (this node could bind the address, so that
             * process is gone for good). Raft refuses a duplicate address:
             * take the old id out of Raft and let it leave the topology,
             * then add the new one (on_join_step comes back to step 0). */
            retire_identity(stale);
            op->step = -1;
            rv = craft_remove(ctl.raft, stale, on_join_step, op);
            break;
        }
        rv = craft_add(ctl.raft, op->n.raft_id, raddr, on_join_step, op);
        break;
    case 1:
        rv = craft_assign(ctl.raft, op->n.raft_id, CRAFT_STANDBY, on_join_step, op);
        break;
    default: {
        struct buf e;
        buf_init(&e);
        topo_entry_node_join(&e, &op->n);
        rv = craft_propose(ctl.raft, e.data, e.len, on_join_step, op);
        buf_deinit(&e);
    }
    }
    if (rv != 0) {
        log_debug("cluster: join step refused", "\"node_id\":\"%s\",\"step\":%d,\"error\":\"%s\"",
                  op->n.id, op->step, craft_strerror(rv));
        join_op_end(op, craft_is_not_leader(rv) ? RC_NOT_LEADER : RC_BUSY, craft_strerror(rv));
    }
}

void
ctl_handle_join(struct bus_conn *from, uint32_t reqid, const uint8_t *p, size_t n)
{
    struct wire_rd r = {p, p + n, false};
    char name[128];
    struct topo_node nd;
    memset(&nd, 0, sizeof(nd));
    wire_get_str(&r, name, sizeof(name));
    wire_get_str(&r, nd.id, sizeof(nd.id));
    nd.raft_id = wire_get_u64(&r);
    wire_get_str(&r, nd.ip, sizeof(nd.ip));
    nd.port = wire_get_u16(&r);
    nd.resp_port = wire_get_u16(&r);
    nd.bus_port = wire_get_u16(&r);
    nd.raft_port = wire_get_u16(&r);
    if (r.bad || nd.id[0] == '\0' || nd.raft_id == 0) {
        ctl_reply_code(from, reqid, BUS_JOIN, RC_REFUSED, "malformed join");
        return;
    }
    if (strcmp(name, ctl.name) != 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "cluster name is '%.80s', not '%.80s'", ctl.name, name);
        ctl_reply_code(from, reqid, BUS_JOIN, RC_REFUSED, msg);
        return;
    }
    if (!ctl_is_leader()) {
        char lb[64];
        ctl_leader_bus_addr(lb, sizeof(lb));
        ctl_reply_code(from, reqid, BUS_JOIN, RC_NOT_LEADER, lb);
        return;
    }
    if (ctl.change_inflight) {
        ctl_reply_code(from, reqid, BUS_JOIN, RC_BUSY, "another membership change is in flight");
        return;
    }
    ctl.change_inflight = true;
    struct join_op *op = xcalloc(1, sizeof(*op));
    op->from = from;
    op->reqid = reqid;
    op->n = nd;
    bus_conn_hold(from);
    join_step(op);
}

void
ctl_handle_meet(struct bus_conn *from, uint32_t reqid, const uint8_t *p, size_t n)
{
    struct wire_rd r = {p, p + n, false};
    char member[64];
    wire_get_str(&r, member, sizeof(member));
    struct sockaddr_in sa;
    if (r.bad || bus_parse_addr(member, &sa) != 0) {
        ctl_reply_code(from, reqid, BUS_MEET, RC_REFUSED, "malformed meet");
        return;
    }
    if (ctl.phase == PH_WAIT_MEET) {
        snprintf(ctl.meet_target, sizeof(ctl.meet_target), "%s", member);
        ctl_start_as_joiner();
    } else if (ctl.phase == PH_DISCOVER) {
        ctl_reply_code(from, reqid, BUS_MEET, RC_BUSY, "forming from its seed list");
        return;
    } else if (ctl.topo.nnodes == 0 && !ctl_self_in_topology()) {
        /* Joining and no topology seen yet: one more way in. */
        snprintf(ctl.meet_target, sizeof(ctl.meet_target), "%s", member);
    } else {
        ctl_reply_code(from, reqid, BUS_MEET, RC_REFUSED, "already a member of a cluster");
        return;
    }
    ctl_reply_code(from, reqid, BUS_MEET, RC_OK, "");
}

