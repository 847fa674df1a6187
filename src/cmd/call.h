/*
 * call.h -- a resolved command's call and its accounting, inline, for the
 * two dispatchers (cmd.c for RESP, native.c for the text protocol). Private
 * to src/cmd: other layers go through cmd_dispatch / cmd_dispatch_native.
 *
 * The caller has done every check (arity, authentication, memory, the
 * write-ahead log); this runs the handler with one "now" (cmd_now_ms), turns
 * a write the log could not take into an error, and counts the call, its
 * duration, its failure and the slow log. Inline because it is on the path of
 * every request: as a call it cost the native path ~30 instructions a request.
 */
#ifndef CRABCACHE_CMD_CALL_H
#define CRABCACHE_CMD_CALL_H

#include <string.h>

#include "cmd/cmd.h"
#include "cmd/forward.h"
#include "cmd/keys.h"
#include "cmd/reply.h"
#include "cmd/slowlog.h"
#include "cmd/tstats.h"
#include "core/cmdclock.h"
#include "core/server.h"

/* Refuse cmd before it runs: reply err and count it as rejected (the
 * commands_rejected_total metric). Out of line (cmd.c). */
__attribute__((noinline, cold)) void cmd_reject(struct client *c, const struct cmd *cmd,
                                                const char *err);

/* A write while the write-ahead log is failing (durable_enabled() true):
 * replies the log's error, counts the command as rejected and returns true;
 * false when the log is fine. Out of line (cmd.c), for both dispatchers. */
__attribute__((noinline)) bool cmd_refuse_failing_write(struct client *c, const struct cmd *cmd);

/* Cluster mode (a view is published): may cmd run here? Computes every
 * key's slot; when the command must not run here it replies CROSSSLOT,
 * CLUSTERDOWN or MOVED, counts the call as rejected and returns false.
 * cmd has keys (first_key > 0). Out of line (t_cluster.c). */
struct topo_view;
__attribute__((noinline)) bool cmd_cluster_route(struct client *c, const struct cmd *cmd,
                                                 const struct topo_view *v, int argc,
                                                 struct proto_arg *argv);
/* The same for a native request whose key is argv[1]: a key owned
 * elsewhere is forwarded to its owner (cmd/forward.h), whose reply comes
 * later; a PEER connection gets MOVED with the owner's native port. */
__attribute__((noinline)) bool cmd_cluster_route_native(struct client *c, const struct cmd *cmd,
                                                        const struct topo_view *v, int argc,
                                                        const struct proto_arg *argv);
/* The same on the proxy port (c->proxy): a command whose keys are owned
 * elsewhere is forwarded, MGET/MSET/DEL/EXISTS/UNLINK/TOUCH across slots are
 * split and gathered (t_proxy.c); CROSSSLOT for other multi-slot commands. */
__attribute__((noinline)) bool cmd_cluster_proxy(struct client *c, const struct cmd *cmd,
                                                 const struct topo_view *v, int argc,
                                                 struct proto_arg *argv);
/* Send req[0 .. len) (a whole request in proto) to slot's owner and give
 * the client its reply when it comes (cmd/later.h). false when the client
 * cannot wait (closing): nothing was sent. t_cluster.c. */
bool cmd_cluster_forward(struct client *c, enum fwd_proto proto, unsigned slot, const char *req,
                         size_t len);
/* After a write that passed a vbucket's gate (c->gate_vb != 0). */
__attribute__((noinline)) void cmd_cluster_gate_exit(struct client *c);
static inline void
gate_leave(struct client *c)
{
    if (__builtin_expect(c->gate_vb != 0, 0)) {
        cmd_cluster_gate_exit(c);
    }
}

static inline __attribute__((always_inline)) void
cmd_call_inline(const struct cmd *cmd, struct client *c, int argc, struct proto_arg *argv)
{
    struct tstats *ts = tstats_self();
    size_t start = c->r.out->len;
    /* One wall-clock time gives both the command's time (expiry decisions)
     * and the start of its duration; within a batch it is the end of the
     * previous command (core/cmdclock.h). A clock step backwards counts as 0. */
    int64_t t0 = cmdclock_start();
    cmd_now_ms = t0 / 1000;
    c->wal_err = 0;
    prop_begin(c);
    cmd->fn(c, argc, argv);
    prop_begin(NULL);
    cmd_now_ms = 0;
    if (c->wal_err != 0) {
        /* Applied in memory but not logged: do not acknowledge it. */
        c->r.out->len = start;
        reply_error(&c->r, "MISCONF write-ahead log failing, this write was not persisted");
    }
    int64_t dt = cmdclock_end() - t0;
    if (dt < 0) {
        dt = 0;
    }
    struct cmd_stat *s = &ts->cmd[cmd->id];
    STAT_INC(s->calls);
    STAT_ADD(s->usec, (uint64_t)dt);
    tstats_record_latency(ts, cmd->id, (uint64_t)dt);
    if (c->r.out->len > start) {
        char first = c->r.out->data[start];
        if (first == '-' || (c->r.proto == REPLY_NATIVE && first == 'E' &&
                             c->r.out->len - start > 6 &&
                             memcmp(c->r.out->data + start, "ERROR:", 6) == 0)) {
            STAT_INC(s->failed);
        }
    }
    c->last_cmd = cmd->name;
    int64_t th = slowlog_threshold();
    if (th >= 0 && dt >= th) {
        slowlog_add(c, argc, argv, dt);
    }
}

#endif
