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
            if (ctl.change_inflight) {
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
    if (ctl.vb_inflight > 0) {
        return;
    }
    struct buf plan;
    buf_init(&plan);
    size_t k = topo_plan(&ctl.topo, &plan, MAX_VB_INFLIGHT);
    /* Each VB_SET goes on its own: one vbucket's failure to commit (a stale
     * epoch after a leader change) does not hold back the others. */
    const uint8_t *p = (const uint8_t *)plan.data, *end = p + plan.len;
    for (size_t i = 0; i < k && p < end; i++) {
        size_t len = topo_entry_len(p, (size_t)(end - p));
        if (len == 0) {
            break;
        }
        if (craft_propose(ctl.raft, p, len, on_vb_done, NULL) == 0) {
            ctl.vb_inflight++;
        }
        p += len;
    }
    buf_deinit(&plan);
}

