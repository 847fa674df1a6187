/*
 * test_topo_raft.c -- the topology state machine under Raft: libraft's
 * in-memory fixture (simulated time, network and disk) runs 3 voters whose
 * FSM is a struct topo (apply -> topo_apply at the entry's index, snapshot
 * -> topo_encode, restore -> topo_decode).
 *
 * Per seed (each seed draws the order of the servers' election timeouts and
 * their network and disk latencies, and when the faults strike): elect;
 * commit INIT, three joins and the plan; kill the leader with a join in
 * flight and, once another leads, propose that join again; a join and the
 * plan; revive the dead server; cut the leader off in both directions
 * (saturation: CLUSTER.md 1.4, gotcha 19) with a leave in flight, and
 * propose it again to the new leader; a migration and the plan; heal. Then
 * every FSM must hold the same topo_encode bytes, and the plan nothing more.
 * An entry in flight when its leader went may have been committed all the
 * same: the log then holds it twice, and the second copy must be a NOOP.
 * A snapshot threshold of 8 entries (4 kept) makes snapshots frequent and
 * has the servers that were away catch up by InstallSnapshot, so restore
 * runs too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster/topo.h"

#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define N 3

struct node_fsm {
    struct topo t;
    struct raft *raft;
    unsigned applies, snapshots, restores;
};

static struct node_fsm nodes[N];
static struct raft_fsm fsms[N];

/* libraft 0.15's apply gives no index; last_applied is moved past an entry
 * only once the FSM has applied it, so the entry at hand is the next one.
 * The proposer's callback checks this against the index raft_apply gave. */
static int
fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct node_fsm *s = fsm->data;
    uint64_t index = raft_last_applied(s->raft) + 1;
    enum topo_result r = topo_apply(&s->t, index, buf->base, buf->len);
    s->applies++;
    *result = (void *)(uintptr_t)r;
    return 0;
}

static int
fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct node_fsm *s = fsm->data;
    struct buf b;
    buf_init(&b);
    topo_encode(&s->t, &b);
    *bufs = raft_malloc(sizeof(**bufs));
    void *base = raft_malloc(b.len);
    if (*bufs == NULL || base == NULL) {
        raft_free(*bufs);
        raft_free(base);
        buf_deinit(&b);
        return RAFT_NOMEM;
    }
    memcpy(base, b.data, b.len);
    (*bufs)[0].base = base;
    (*bufs)[0].len = b.len;
    *n_bufs = 1;
    buf_deinit(&b);
    s->snapshots++;
    return 0;
}

static int
fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct node_fsm *s = fsm->data;
    enum topo_result r = topo_decode(&s->t, buf->base, buf->len);
    raft_free(buf->base);
    if (r != TOPO_OK) {
        return RAFT_CORRUPT;
    }
    s->restores++;
    return 0;
}

/* ---- proposing -------------------------------------------------------------- */

struct proposal {
    struct raft_apply req;
    bool done;
    int status;
    enum topo_result result;
    unsigned leader;
};

static void
apply_cb(struct raft_apply *req, int status, void *result)
{
    struct proposal *p = req->data;
    p->status = status;
    if (status == 0) {
        p->result = (enum topo_result)(uintptr_t)result;
        /* the FSM applied it at the index the log gave it */
        assert_int_equal(nodes[p->leader].t.applied, req->index);
    }
    p->done = true;
}

static bool
proposal_done(struct raft_fixture *f, void *arg)
{
    (void)f;
    return ((struct proposal *)arg)->done;
}

/* Hand an entry to server i; returns raft_apply's result. */
static int
submit(struct raft_fixture *f, unsigned i, const void *e, size_t len, struct proposal *p)
{
    struct raft_buffer b = { .base = raft_malloc(len), .len = len };
    assert_non_null(b.base);
    memcpy(b.base, e, len);
    memset(p, 0, sizeof(*p));
    p->req.data = p;
    p->leader = i;
    int rv = raft_apply(raft_fixture_get(f, i), &p->req, &b, 1, apply_cb);
    if (rv != 0) {
        raft_free(b.base);
    }
    return rv;
}

/* Over all seeds: proposals retried after raft_apply or its callback failed,
 * and the in-flight entries asked again after a leader change whose first
 * copy had been committed (NOOP) or not (OK). */
static unsigned retries, again_noop, again_ok;

/* Commit one entry through the current leader, again under the next leader
 * when it is lost. Returns the state machine's result. */
static enum topo_result
propose(struct raft_fixture *f, const void *e, size_t len)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        assert_true(raft_fixture_step_until_has_leader(f, 20000));
        struct proposal p;
        if (submit(f, raft_fixture_leader_index(f), e, len, &p) != 0) {
            retries++;
            raft_fixture_step_until_elapsed(f, 100);
            continue;
        }
        assert_true(raft_fixture_step_until(f, proposal_done, &p, 20000));
        if (p.status == 0) {
            return p.result;
        }
        retries++;
    }
    fail_msg("no leader committed the entry");
    return TOPO_EINVAL;
}

static void
propose_buf(struct raft_fixture *f, struct buf *b, enum topo_result want)
{
    assert_int_equal(propose(f, b->data, b->len), want);
    buf_reset(b, 0);
}

/* The leader's plan, entry by entry, until it has nothing more to say. */
static size_t
propose_plan(struct raft_fixture *f)
{
    size_t total = 0;
    for (int round = 0; round < 5; round++) {
        assert_true(raft_fixture_step_until_has_leader(f, 20000));
        struct buf plan;
        buf_init(&plan);
        size_t n = topo_plan(&nodes[raft_fixture_leader_index(f)].t, &plan, 0);
        for (size_t off = 0; off < plan.len;) {
            size_t len = topo_entry_len(plan.data + off, plan.len - off);
            assert_true(len > 0);
            enum topo_result r = propose(f, plan.data + off, len);
            /* a leader change can leave the plan a step behind: stale then */
            assert_true(r == TOPO_OK || r == TOPO_NOOP || r == TOPO_STALE);
            off += len;
        }
        buf_deinit(&plan);
        total += n;
        if (n == 0) {
            return total;
        }
    }
    fail_msg("the plan did not converge");
    return total;
}

static struct topo_node
mk_node(unsigned i)
{
    struct topo_node n;
    memset(&n, 0, sizeof(n));
    snprintf(n.id, sizeof(n.id), "%040x", 0xc0ffee00u + i);
    n.raft_id = i;
    snprintf(n.ip, sizeof(n.ip), "10.1.0.%u", i);
    n.resp_port = 6379;
    n.bus_port = 16379;
    n.raft_port = 17379;
    return n;
}

/* ---- the scenario ----------------------------------------------------------- */

static uint64_t rng;

static unsigned
rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static bool
all_applied(struct raft_fixture *f, void *arg)
{
    raft_index want = *(raft_index *)arg;
    for (unsigned i = 0; i < N; i++) {
        if (raft_last_applied(raft_fixture_get(f, i)) < want) {
            return false;
        }
    }
    return true;
}

static unsigned long long entries;
static unsigned all_snapshots, all_restores;

static void
run_seed(uint64_t seed)
{
    struct raft_fixture f;
    struct raft_configuration conf;
    struct buf e;
    buf_init(&e);
    rng = seed * 0x9E3779B97F4A7C15ull + 1;

    memset(&f, 0, sizeof(f));
    assert_int_equal(raft_fixture_initialize(&f), 0);
    /* The fixture gives a server the same "randomized" election timeout every
     * time: two whose timeouts are closer than a vote's round trip split the
     * vote forever. So the seed picks the order of the servers' timeouts and
     * a jitter, and the timeouts stay 300 ms apart (a round trip is < 160). */
    unsigned order[N] = { 0, 1, 2 };
    for (unsigned i = N - 1; i > 0; i--) {
        unsigned j = rnd(i + 1), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    for (unsigned i = 0; i < N; i++) {
        topo_init(&nodes[i].t);
        nodes[i].applies = nodes[i].snapshots = nodes[i].restores = 0;
        fsms[i] = (struct raft_fsm){ .version = 1, .data = &nodes[i], .apply = fsm_apply,
                                     .snapshot = fsm_snapshot, .restore = fsm_restore };
        assert_int_equal(raft_fixture_grow(&f, &fsms[i]), 0);
        struct raft *r = raft_fixture_get(&f, i);
        nodes[i].raft = r;
        raft_set_snapshot_threshold(r, 8);
        raft_set_snapshot_trailing(r, 4);
        raft_set_pre_vote(r, true);
        raft_fixture_set_randomized_election_timeout(&f, i, 1000 + 300 * order[i] + rnd(100));
        raft_fixture_set_network_latency(&f, i, 5 + rnd(35));
        raft_fixture_set_disk_latency(&f, i, 2 + rnd(20));
    }
    assert_int_equal(raft_fixture_configuration(&f, N, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&f), 0);
    assert_true(raft_fixture_step_until_has_leader(&f, 20000));

    topo_entry_init(&e, 64, 2, 32);
    propose_buf(&f, &e, TOPO_OK);
    for (unsigned i = 1; i <= 3; i++) {
        struct topo_node n = mk_node(i);
        topo_entry_node_join(&e, &n);
        propose_buf(&f, &e, TOPO_OK);
    }
    assert_true(propose_plan(&f) >= 64);

    /* the leader dies with a join in flight, which the next leader is asked
     * again: its first copy may have been committed (NOOP then) or not */
    unsigned dead = raft_fixture_leader_index(&f);
    struct topo_node n4 = mk_node(4);
    topo_entry_node_join(&e, &n4);
    struct proposal killed;
    assert_int_equal(submit(&f, dead, e.data, e.len, &killed), 0);
    raft_fixture_step_n(&f, 1 + rnd(30)); /* step_n(f, 0) does not return */
    raft_fixture_kill(&f, dead);
    assert_true(raft_fixture_step_until_has_no_leader(&f, 20000));
    assert_true(raft_fixture_step_until_has_leader(&f, 20000));
    assert_int_not_equal(raft_fixture_leader_index(&f), dead);
    enum topo_result r = propose(&f, e.data, e.len);
    assert_true(r == TOPO_OK || r == TOPO_NOOP);
    again_noop += r == TOPO_NOOP;
    again_ok += r == TOPO_OK;
    buf_reset(&e, 0);
    struct topo_node n5 = mk_node(5);
    topo_entry_node_join(&e, &n5);
    propose_buf(&f, &e, TOPO_OK);
    assert_true(propose_plan(&f) > 0);
    raft_fixture_revive(&f, dead);

    /* the leader is cut off (both directions) with a leave in flight: asked
     * again of the new leader */
    unsigned cut = raft_fixture_leader_index(&f);
    struct topo_node n1 = mk_node(1);
    topo_entry_node_leave(&e, n1.id);
    struct proposal lost;
    assert_int_equal(submit(&f, cut, e.data, e.len, &lost), 0);
    raft_fixture_step_n(&f, 1 + rnd(30)); /* step_n(f, 0) does not return */
    for (unsigned i = 0; i < N; i++) {
        if (i != cut) {
            raft_fixture_saturate(&f, cut, i);
            raft_fixture_saturate(&f, i, cut);
        }
    }
    assert_true(raft_fixture_step_until_has_no_leader(&f, 20000));
    assert_true(raft_fixture_step_until_has_leader(&f, 20000));
    unsigned now = raft_fixture_leader_index(&f);
    assert_int_not_equal(now, cut);
    r = propose(&f, e.data, e.len);
    assert_true(r == TOPO_OK || r == TOPO_NOOP);
    again_noop += r == TOPO_NOOP;
    again_ok += r == TOPO_OK;
    buf_reset(&e, 0);

    now = raft_fixture_leader_index(&f);
    const struct topo_vb *vb5 = &nodes[now].t.vb[5];
    uint32_t to = 2;
    while (to == vb5->nodes[0] || to == vb5->nodes[1]) {
        to++;
    }
    uint32_t moved[2] = { to, vb5->nodes[0] };
    topo_entry_migrate_begin(&e, 5, vb5->epoch, to, 1000 + seed);
    propose_buf(&f, &e, TOPO_OK);
    topo_entry_migrate_commit(&e, 5, 1000 + seed, 2, moved);
    propose_buf(&f, &e, TOPO_OK);
    assert_true(propose_plan(&f) > 0);

    /* heal; everyone applies the leader's log */
    for (unsigned i = 0; i < N; i++) {
        if (i != cut) {
            raft_fixture_desaturate(&f, cut, i);
            raft_fixture_desaturate(&f, i, cut);
        }
    }
    assert_true(raft_fixture_step_until_has_leader(&f, 20000));
    raft_index last = raft_last_index(raft_fixture_get(&f, raft_fixture_leader_index(&f)));
    assert_true(raft_fixture_step_until(&f, all_applied, &last, 20000));
    assert_true(killed.done);
    assert_true(lost.done);

    struct buf ref, other;
    buf_init(&ref);
    buf_init(&other);
    topo_encode(&nodes[0].t, &ref);
    for (unsigned i = 1; i < N; i++) {
        buf_reset(&other, 0);
        topo_encode(&nodes[i].t, &other);
        assert_int_equal(other.len, ref.len);
        assert_memory_equal(other.data, ref.data, ref.len);
    }
    struct buf plan;
    buf_init(&plan);
    assert_int_equal(topo_plan(&nodes[0].t, &plan, 0), 0);
    assert_int_equal(nodes[0].t.nnodes, 5);

    unsigned snapshots = 0, restores = 0;
    for (unsigned i = 0; i < N; i++) {
        snapshots += nodes[i].snapshots;
        restores += nodes[i].restores;
    }
    assert_true(snapshots > 0);
    entries += last;
    all_snapshots += snapshots;
    all_restores += restores;

    buf_deinit(&plan);
    buf_deinit(&ref);
    buf_deinit(&other);
    buf_deinit(&e);
    raft_fixture_close(&f);
    for (unsigned i = 0; i < N; i++) {
        topo_deinit(&nodes[i].t);
    }
}

static void
test_converge(void **state)
{
    (void)state;
    const unsigned seeds = 48;
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        run_seed(seed);
    }
    print_message("%u seeds: %llu log entries, %u snapshots, %u restores, %u retries; "
                  "in-flight entries asked again: %u already committed, %u not\n",
                  seeds, entries, all_snapshots, all_restores, retries, again_noop,
                  again_ok);
    /* servers that were away catch up from a snapshot (4 trailing entries) */
    assert_true(all_restores >= seeds);
    /* the cut points are drawn so that both cases happen */
    assert_true(again_noop > 0 && again_ok > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_converge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
