/*
 * leader.c -- what the Raft leader does on each tick: commit INIT once, keep
 * 3 (or 5) voters, commit topo_plan's placement differences, and take
 * leaving nodes out of Raft and the topology once they hold nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/ctl.h"
#include "cluster/wire.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"

/* ---- the leader's duties ----------------------------------------------------------- */

static void
on_init_done(void *arg, int status, int result)
{
    (void)arg, (void)status, (void)result;
    ctl.init_inflight = false;
}

static void
on_vb_done(void *arg, int status, int result)
{
    (void)arg, (void)status, (void)result;
    ctl.vb_inflight--;
}

static void
on_promoted(void *arg, int status, int result)
{
    (void)arg, (void)result;
    ctl.change_inflight = false;
    if (status != 0) {
        log_warn("cluster: promoting a standby failed", "\"error\":\"%s\"",
                 craft_strerror(status));
    }
}

/* Voters: 3, or 5 once there are 5 members; standbys that are members of
 * the topology are promoted one at a time while fewer. */
static void
keep_voters(void)
{
    if (ctl.change_inflight) {
        return;
    }
    struct craft_member m[256];
    size_t n = craft_members(ctl.raft, m, 256);
    unsigned voters = 0, eligible = 0;
    uint64_t candidate = 0;
    for (size_t i = 0; i < n; i++) {
        bool member = false;
        for (size_t k = 0; k < ctl.topo.nnodes; k++) {
            member |= ctl.topo.nodes[k].raft_id == m[i].id &&
                      !(ctl.topo.nodes[k].flags & TOPO_NODE_LEAVING);
        }
        if (m[i].role == CRAFT_VOTER) {
            voters++;
        } else if (member && m[i].role == CRAFT_STANDBY) {
            eligible++;
            candidate = candidate ? candidate : m[i].id;
        }
    }
    unsigned want = voters + eligible >= 5 ? 5 : 3;
    if (voters < want && candidate) {
        ctl.change_inflight = true;
        if (craft_assign(ctl.raft, candidate, CRAFT_VOTER, on_promoted, NULL) != 0) {
            ctl.change_inflight = false;
        }
    }
}

static void
on_removed(void *arg, int status, int result)
{
    (void)arg, (void)result;
    ctl.change_inflight = false;
    if (status != 0) {
        log_warn("cluster: removing a node from Raft failed", "\"error\":\"%s\"",
                 craft_strerror(status));
    }
}

static void
on_forgotten(void *arg, int status, int result)
{
    (void)arg, (void)status, (void)result;
    ctl.forget_inflight = false;
}

static bool
node_placed(const struct topo_node *n)
{
    for (uint32_t vb = 0; vb < ctl.topo.nvb; vb++) {
        const struct topo_vb *v = &ctl.topo.vb[vb];
        for (unsigned i = 0; i < v->n; i++) {
            if (v->nodes[i] == n->num) {
                return true;
            }
        }
        if (v->target == n->num) {
            return true;
        }
    }
    return false;
}

/*
 * Whether a node can still send or take a vbucket's data: it is in the Raft
 * configuration (a retired identity, whose directory was wiped, is not) and
 * answers the bus. The leader asks the nodes it needs this of (STATUS, once
 * a second); one that has not answered for PROBE_DEAD_MS is taken as gone,
 * so that the vbuckets of a dead node that is forgotten are placed again
 * (empty) instead of waiting for a copy that cannot start. The failure
 * detector of the next stage replaces this.
 */
#define PROBE_EVERY_MS 1000
#define PROBE_DEAD_MS 5000

struct probe {
    uint32_t num;
    uint64_t first_ms, ok_ms, sent_ms;
    uint64_t epoch;  /* the config epoch it had applied, from its last answer */
    bool asking;
};
static struct probe probes[64];

static void
on_probe(void *arg, int status, uint8_t type, const uint8_t *p, size_t n)
{
    struct probe *pr = arg;
    pr->asking = false;
    if (status != 0 || type != (BUS_STATUS | BUS_REPLY)) {
        return;
    }
    /* STATUS: u8 member, u8 known, str leader, u64 config epoch */
    struct wire_rd r = {p, p + n, false};
    char lb[64];
    wire_get_u8(&r);
    wire_get_u8(&r);
    wire_get_str(&r, lb, sizeof(lb));
    uint64_t epoch = wire_get_u64(&r);
    if (!r.bad) {
        pr->ok_ms = uv_now(&ctl.loop);
        pr->epoch = epoch;
    }
}

/* n's probe, asked again if its last question is old enough; NULL when
 * every probe is busy (no room to ask now). */
static const struct probe *
probe(const struct topo_node *n)
{
    uint64_t now = uv_now(&ctl.loop);
    struct probe *pr = NULL, *oldest = &probes[0];
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        if (probes[i].num == n->num) {
            pr = &probes[i];
            break;
        }
        if (!probes[i].asking && probes[i].sent_ms < oldest->sent_ms) {
            oldest = &probes[i];
        }
    }
    if (pr == NULL) {
        if (oldest->asking) {
            return NULL;
        }
        pr = oldest;
        memset(pr, 0, sizeof(*pr));
        pr->num = n->num;
        pr->first_ms = now;
    }
    if (!pr->asking && now - pr->sent_ms >= PROBE_EVERY_MS) {
        char to[80];
        snprintf(to, sizeof(to), "%s:%u", n->ip, n->bus_port);
        uint8_t q[8] = {0};
        pr->sent_ms = now;
        pr->asking = bus_call(&ctl.loop, to, BUS_STATUS, q, sizeof(q), PROBE_EVERY_MS, on_probe,
                              pr) == 0;
    }
    return pr;
}

static bool
node_reachable(const struct topo_node *n)
{
    if (n->raft_id == ctl.raft_id) {
        return true;
    }
    const struct probe *pr = probe(n);
    if (pr == NULL) {
        return true; /* no room to ask now: do not condemn it */
    }
    uint64_t last = pr->ok_ms ? pr->ok_ms : pr->first_ms;
    return uv_now(&ctl.loop) - last < PROBE_DEAD_MS;
}

static bool
node_alive(uint32_t num)
{
    const struct topo_node *n = topo_node_by_num(&ctl.topo, num);
    return n != NULL && craft_role_of(ctl.raft, n->raft_id) != CRAFT_NONE && node_reachable(n);
}

/*
 * Whether a leaving node has applied the topology in which it holds nothing:
 * once out of Raft it would never learn it, and would keep a paused
 * vbucket's writes waiting and its keys in memory. Its probe's STATUS
 * answers carry its config epoch; a node that stops answering is gone
 * (node_reachable) and is let go too.
 */
static struct {
    uint32_t num;
    uint64_t want_epoch;
} leaving;

static bool
let_go(const struct topo_node *n)
{
    if (n->raft_id == ctl.raft_id || !node_reachable(n)) {
        return true;
    }
    if (leaving.num != n->num) {
        leaving.num = n->num;
        leaving.want_epoch = ctl.topo.config_epoch;
    }
    const struct probe *pr = probe(n);
    return pr != NULL && pr->ok_ms != 0 && pr->epoch >= leaving.want_epoch;
}

/* A leaving node that holds no vbucket any more: out of Raft (after handing
 * over leadership if it is us), then out of the topology. */
static void
remove_leavers(void)
{
    for (size_t i = 0; i < ctl.topo.nnodes; i++) {
        const struct topo_node *n = &ctl.topo.nodes[i];
        if (!(n->flags & TOPO_NODE_LEAVING) || node_placed(n)) {
            continue;
        }
        if (craft_role_of(ctl.raft, n->raft_id) != CRAFT_NONE) {
            if (ctl.change_inflight || !let_go(n)) {
                return;
            }
            ctl.change_inflight = true;
            int rv = n->raft_id == ctl.raft_id
                         ? craft_transfer(ctl.raft, 0, on_removed, NULL)
                         : craft_remove(ctl.raft, n->raft_id, on_removed, NULL);
            if (rv != 0) {
                ctl.change_inflight = false;
            }
            return;
        }
        if (!ctl.forget_inflight) {
            struct buf e;
            buf_init(&e);
            topo_entry_node_forget(&e, n->id);
            ctl.forget_inflight = craft_propose(ctl.raft, e.data, e.len, on_forgotten, NULL) == 0;
            buf_deinit(&e);
        }
        return;
    }
}

#define COPY_ABORT_MS 150000 /* longer than a source's own timeout (migrate.c) */

/* The copy in flight of each vbucket as this leader first saw it, and when. */
static uint64_t copy_seen[TOPO_MAX_VB];
static uint64_t copy_since[TOPO_MAX_VB];

static void
propose_entry(const struct buf *e)
{
    if (craft_propose(ctl.raft, e->data, e->len, on_vb_done, NULL) == 0) {
        ctl.vb_inflight++;
    }
}


/*
 * Bring every vbucket to the ring's placement. A vbucket whose primary
 * changes and whose current primary can still send its data is copied
 * (MIGRATE_BEGIN; migrate.c does the rest), at most max_migrations at once
 * across the cluster; any other difference (a new vbucket, replicas only, a
 * primary that is gone) is set directly. Each entry goes on its own: one
 * vbucket's stale epoch after a leader change does not hold back the others.
 */
static void
place_vbuckets(void)
{
    uint32_t nvb = ctl.topo.nvb, rf = ctl.topo.rf;
    uint32_t *place = xmalloc((size_t)nvb * rf * sizeof(*place));
    uint8_t *place_n = xmalloc(nvb);
    if (topo_place_all(&ctl.topo, place, place_n) != 0) {
        free(place);
        free(place_n);
        return;
    }
    unsigned copying = 0;
    struct buf e;
    buf_init(&e);
    uint64_t now = uv_now(&ctl.loop);
    for (uint32_t vb = 0; vb < nvb; vb++) {
        const struct topo_vb *v = &ctl.topo.vb[vb];
        if (v->copy_id == 0) {
            continue;
        }
        copying++;
        /* A copy whose source or target is gone, or that has run for too
         * long (its source may have restarted and forgotten it), is
         * aborted: the source keeps the vbucket and the plan tries again. */
        if (copy_seen[vb] != v->copy_id) {
            copy_seen[vb] = v->copy_id;
            copy_since[vb] = now;
        }
        if (!node_alive(v->nodes[0]) || !node_alive(v->target) ||
            now - copy_since[vb] > COPY_ABORT_MS) {
            buf_reset(&e, 256);
            topo_entry_migrate_abort(&e, vb, v->copy_id);
            propose_entry(&e);
            copy_since[vb] = now; /* not again before the next period */
        }
    }
    for (uint32_t vb = 0; vb < nvb && ctl.vb_inflight < MAX_VB_INFLIGHT; vb++) {
        const struct topo_vb *v = &ctl.topo.vb[vb];
        const uint32_t *want = place + (size_t)vb * rf;
        if (v->copy_id != 0 || topo_vb_list_equal(&ctl.topo, vb, place_n[vb], want)) {
            continue;
        }
        buf_reset(&e, 256);
        bool moves = v->n > 0 && place_n[vb] > 0 && v->nodes[0] != want[0];
        if (moves && node_alive(v->nodes[0])) {
            if (copying >= ctl.max_migrations) {
                continue;
            }
            uint64_t copy_id = ctl_random_raft_id();
            topo_entry_migrate_begin(&e, vb, v->epoch, want[0], copy_id);
            copying++;
        } else {
            topo_entry_vb_set(&e, vb, v->epoch, place_n[vb], want);
        }
        propose_entry(&e);
    }
    buf_deinit(&e);
    free(place);
    free(place_n);
}

/*
 * The first placement waits, FORM_GRACE_MS at most, until every server of
 * the Raft configuration (the seed list when forming) has joined the
 * topology: placing on the first member alone and then moving most
 * vbuckets as the others arrive would only cost copies.
 */
#define FORM_GRACE_MS 3000

static bool
ready_to_place(void)
{
    static uint64_t waiting_since;
    for (uint32_t vb = 0; vb < ctl.topo.nvb; vb++) {
        if (ctl.topo.vb[vb].n > 0) {
            return true;
        }
    }
    uint64_t now = uv_now(&ctl.loop);
    if (waiting_since == 0) {
        waiting_since = now;
    }
    if (now - waiting_since >= FORM_GRACE_MS) {
        return true;
    }
    struct craft_member m[256];
    size_t n = craft_members(ctl.raft, m, 256);
    for (size_t i = 0; i < n; i++) {
        bool joined = false;
        for (size_t k = 0; k < ctl.topo.nnodes && !joined; k++) {
            joined = ctl.topo.nodes[k].raft_id == m[i].id;
        }
        if (!joined) {
            return false;
        }
    }
    return true;
}

void
ctl_leader_tick(void)
{
    if (ctl.topo.nvb == 0) {
        if (!ctl.init_inflight) {
            struct buf e;
            buf_init(&e);
            topo_entry_init(&e, DEFAULT_VBUCKETS, ctl.rf, ctl.vnodes);
            ctl.init_inflight = craft_propose(ctl.raft, e.data, e.len, on_init_done, NULL) == 0;
            buf_deinit(&e);
        }
        return;
    }
    remove_leavers();
    keep_voters();
    if (ctl.vb_inflight > 0 || !ready_to_place()) {
        return;
    }
    place_vbuckets();
}

