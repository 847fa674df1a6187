/*
 * gate.h -- the write gate of each vbucket, for a handover.
 *
 * Before a vbucket's primary role moves, its old primary pauses writes to
 * it, waits until the writes already past the gate are done (their records
 * are then in the copy's stream), sends the last of the stream, and has the
 * move committed. A write that meets a paused gate is not run: the
 * connection keeps it and runs it again when the pause ends (cmd/later.h,
 * later_retry) -- against the new topology, so it gets MOVED. Past
 * GATE_MAX_PAUSE_MS it is answered -TRYAGAIN instead.
 *
 * Workers: gate_enter before running a write on a vbucket this node serves
 * (false: paused), gate_exit after it. The control thread: gate_pause,
 * gate_idle (no write inside), gate_resume. Sequentially consistent order
 * on both sides is what makes it exact: a writer increments, then looks at
 * the pause; the pauser sets the pause, then looks at the count; one of the
 * two sees the other.
 */
#ifndef CRAB_CLUSTER_GATE_H
#define CRAB_CLUSTER_GATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/topo.h"

#define GATE_MAX_PAUSE_MS 2000

struct gate {
    _Atomic uint32_t writers;
    _Atomic int64_t paused_since; /* Unix ms, 0 = open */
};

extern struct gate cluster_gates[TOPO_MAX_VB];

/* 0: enter (call gate_exit after the write); else the pause's start (ms). */
static inline int64_t
gate_enter(uint32_t vb)
{
    struct gate *g = &cluster_gates[vb];
    atomic_fetch_add(&g->writers, 1);
    int64_t since = atomic_load(&g->paused_since);
    if (since != 0) {
        atomic_fetch_sub(&g->writers, 1);
    }
    return since;
}

static inline void
gate_exit(uint32_t vb)
{
    atomic_fetch_sub(&cluster_gates[vb].writers, 1);
}

static inline void
gate_pause(uint32_t vb, int64_t now_ms)
{
    atomic_store(&cluster_gates[vb].paused_since, now_ms ? now_ms : 1);
}

static inline bool
gate_idle(uint32_t vb)
{
    return atomic_load(&cluster_gates[vb].writers) == 0;
}

static inline bool
gate_paused(uint32_t vb)
{
    return atomic_load(&cluster_gates[vb].paused_since) != 0;
}

/* Open the gate; the cluster layer then wakes the kept requests. */
static inline void
gate_resume(uint32_t vb)
{
    atomic_store(&cluster_gates[vb].paused_since, 0);
}

#endif
