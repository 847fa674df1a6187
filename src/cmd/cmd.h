/*
 * cmd.h -- the command table and dispatch.
 *
 * Every command is defined once, in commands.def (name, handler, arity,
 * flags, key positions). Both protocols dispatch through it: RESP requests by
 * name, the native protocol through its own verb table (native.c) that maps
 * verbs onto these handlers. Dispatch checks arity and authentication,
 * refuses writes that need memory when the store is over its limit, counts
 * calls and time per command, then calls the handler.
 */
#ifndef CRAB_CMD_CMD_H
#define CRAB_CMD_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/client.h"
#include "proto/proto.h"
#include "util/clock.h"

enum cmd_flag {
    CMD_WRITE = 1 << 0,
    CMD_READONLY = 1 << 1,
    CMD_DENYOOM = 1 << 2,  /* may add memory: refused when over max_memory */
    CMD_ADMIN = 1 << 3,
    CMD_NOAUTH = 1 << 4,   /* allowed before AUTH */
    CMD_FAST = 1 << 5,
    CMD_LOADING = 1 << 6,
    CMD_STALE = 1 << 7,
    CMD_NOSCRIPT = 1 << 8,
    CMD_ALLOW_BUSY = 1 << 9,
    CMD_PUBSUB = 1 << 10,
};

typedef void cmd_fn(struct client *c, int argc, struct proto_arg *argv);

struct cmd {
    const char *name;  /* lower case */
    cmd_fn *fn;
    int arity;         /* > 0 exact, < 0 at least -arity */
    unsigned flags;
    int first_key, last_key, key_step;
    const char *categories; /* ACL categories, space separated, for COMMAND */
    unsigned id;
};

enum {
#define CMD(name, fn, arity, flags, fk, lk, ks, cats) CMD_ID_##name,
#include "cmd/commands.def"
#undef CMD
    CMD_COUNT
};

extern const struct cmd cmd_table[CMD_COUNT];

const struct cmd *cmd_lookup(const char *name, size_t len);

/* Execute one request and append its reply to c->r. */
void cmd_dispatch(struct client *c, struct proto_req *req);
/* Execute a request on a native-protocol connection (SPEC 2a). */
void cmd_dispatch_native(struct client *c, struct proto_req *req);
/* Redis's error replies for a wrong argument count ("ERR wrong number of
 * arguments for 'name' command"; name is e.g. "get" or "config|get") and for
 * an unknown subcommand ("ERR unknown subcommand 'x'. Try CONFIG HELP."). */
void cmd_reply_arity(struct client *c, const char *name);
void cmd_reply_unknown_subcommand(struct client *c, const struct proto_arg *sub,
                                  const char *cmd);

/* Cluster mode: cluster.enabled, or a topology view published (t_cluster.c).
 * INFO's cluster_enabled, and whether CLUSTER answers. */
bool cmd_cluster_enabled(void);

/* The time of the command being executed, Unix ms: read once per command by
 * the dispatch (cmd/call.h) so that a command sees one "now" (as Redis's command time
 * snapshot); outside a command, the clock. */
extern _Thread_local int64_t cmd_now_ms;
static inline int64_t
cmd_time_ms(void)
{
    return cmd_now_ms ? cmd_now_ms : clock_ms();
}

/* Per-command statistics summed over all threads. */
struct cmd_stat {
    uint64_t calls, usec, rejected, failed;
};
void cmd_stats_reset(void);

/* Handlers, defined in t_string.c, t_keys.c, t_server.c, ... */
#define CMD(name, fn, arity, flags, fk, lk, ks, cats) cmd_fn fn;
#include "cmd/commands.def"
#undef CMD

#endif
