/*
 * cmd.c -- the command table (expanded from commands.def) and dispatch.
 *
 * Lookup is a small open-addressing table keyed by the case-folded name
 * packed into two words, built before main(); the hot path folds the
 * request's name with one OR per byte, hashes with one multiplication and
 * compares two words (see lookup_fold). Dispatch follows Redis's order of checks:
 * unknown command, arity, authentication, memory, then the call.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cmd/args.h"
#include "cmd/auth.h"
#include "cmd/call.h"
#include "cmd/slowlog.h"
#include "cmd/keys.h"
#include "cmd/tstats.h"
#include "cmd/pubsub.h"
#include "core/cmdclock.h"
#include "core/durable.h"
#include "core/server.h"
#include "util/clock.h"

_Thread_local int64_t cmd_now_ms;

const struct cmd cmd_table[CMD_COUNT] = {
#define CMD(name, fn, arity, flags, fk, lk, ks, cats) \
    {#name, fn, arity, flags, fk, lk, ks, cats, CMD_ID_##name},
#include "cmd/commands.def"
#undef CMD
};

/*
 * Command lookup without hashing bytes one by one: a name (at most
 * LOOKUP_MAX_LEN bytes) is folded into two 64-bit words, OR-ing 0x20 into
 * every byte. Command names are lower-case ASCII letters only (checked when
 * the table is built), and `c | 0x20` is a lower-case letter exactly when c
 * is that letter in either case, so equal words mean a case-insensitive match;
 * padding bytes are 0 and a folded byte never is. The words are mixed by one
 * multiplication into an open-addressing table of LOOKUP_SIZE slots.
 */
#define LOOKUP_SIZE 256 /* power of two, > 2 * CMD_COUNT */
#define LOOKUP_MAX_LEN 16

struct lookup_slot {
    uint64_t w0, w1;
    const struct cmd *cmd;
};

static struct lookup_slot lookup_tab[LOOKUP_SIZE];

static inline unsigned
lookup_hash(uint64_t w0, uint64_t w1)
{
    return (unsigned)(((w0 ^ (w1 * 0xff51afd7ed558ccdULL)) * 0x9e3779b97f4a7c15ULL) >> 56) &
           (LOOKUP_SIZE - 1);
}

static inline uint64_t
load_u32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint64_t
load_u64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* 0x20 in each of the low n bytes (n <= 8). */
static inline uint64_t
fold_mask(size_t n)
{
    return n >= 8 ? 0x2020202020202020ULL : 0x2020202020202020ULL & ((1ULL << (n * 8)) - 1);
}

/* Fold name[0 .. len) (1 <= len <= LOOKUP_MAX_LEN) into *w0, *w1 (little
 * endian byte order, zero padded). Reads only inside the name: short names
 * are assembled from overlapping loads, whose common bytes are equal and so
 * OR together harmlessly. */
static inline void
lookup_fold(const char *name, size_t len, uint64_t *w0, uint64_t *w1)
{
    uint64_t lo, hi = 0;
    if (len >= 8) {
        lo = load_u64(name);
        if (len > 8) {
            hi = load_u64(name + len - 8) >> ((16 - len) * 8);
        }
    } else if (len >= 4) {
        lo = load_u32(name) | (load_u32(name + len - 4) << ((len - 4) * 8));
    } else {
        lo = (uint64_t)(unsigned char)name[0] |
             (uint64_t)(unsigned char)name[len / 2] << (len / 2 * 8) |
             (uint64_t)(unsigned char)name[len - 1] << ((len - 1) * 8);
    }
    *w0 = lo | fold_mask(len);
    *w1 = hi | (len > 8 ? fold_mask(len - 8) : 0);
}

__attribute__((constructor)) static void
lookup_build(void)
{
    for (int i = 0; i < CMD_COUNT; i++) {
        const char *name = cmd_table[i].name;
        size_t len = strlen(name);
        uint64_t w0, w1;
        if (len == 0 || len > LOOKUP_MAX_LEN) {
            abort(); /* commands.def is wrong: caught by every test run */
        }
        for (size_t j = 0; j < len; j++) {
            if (name[j] < 'a' || name[j] > 'z') {
                abort();
            }
        }
        lookup_fold(name, len, &w0, &w1);
        unsigned h = lookup_hash(w0, w1);
        while (lookup_tab[h].cmd) {
            h = (h + 1) & (LOOKUP_SIZE - 1);
        }
        lookup_tab[h] = (struct lookup_slot){w0, w1, &cmd_table[i]};
    }
}

static inline __attribute__((always_inline)) const struct cmd *
lookup(const char *name, size_t len)
{
    uint64_t w0, w1;
    if (len == 0 || len > LOOKUP_MAX_LEN) {
        return NULL;
    }
    lookup_fold(name, len, &w0, &w1);
    unsigned h = lookup_hash(w0, w1);
    while (lookup_tab[h].cmd) {
        const struct lookup_slot *s = &lookup_tab[h];
        if (s->w0 == w0 && s->w1 == w1) {
            return s->cmd;
        }
        h = (h + 1) & (LOOKUP_SIZE - 1);
    }
    return NULL;
}

const struct cmd *
cmd_lookup(const char *name, size_t len)
{
    return lookup(name, len);
}

void
cmd_reply_arity(struct client *c, const char *name)
{
    reply_errorf(&c->r, "ERR wrong number of arguments for '%s' command", name);
}

void
cmd_reply_unknown_subcommand(struct client *c, const struct proto_arg *sub, const char *cmd)
{
    int n = sub->len > 128 ? 128 : (int)sub->len;
    reply_errorf(&c->r, "ERR unknown subcommand '%.*s'. Try %s HELP.", n, sub->ptr, cmd);
}

__attribute__((noinline, cold)) void
cmd_reject(struct client *c, const struct cmd *cmd, const char *err)
{
    if (cmd) {
        STAT_INC(tstats_self()->cmd[cmd->id].rejected);
    }
    reply_error(&c->r, err);
}

static __attribute__((noinline, cold)) void
unknown_command(struct client *c, int argc, struct proto_arg *argv)
{
    char args[512];
    size_t n = 0;
    args[0] = '\0';
    for (int i = 1; i < argc && n < 128; i++) {
        int room = 128 - (int)n;
        int len = (int)argv[i].len < room ? (int)argv[i].len : room;
        n += (size_t)snprintf(args + n, sizeof(args) - n, "'%.*s' ", len, argv[i].ptr);
    }
    int nl = argv[0].len > 128 ? 128 : (int)argv[0].len;
    reply_errorf(&c->r, "ERR unknown command '%.*s', with args beginning with: %s", nl,
                 argv[0].ptr, args);
}

bool
cmd_auth_required(const struct client *c)
{
    return server.auth_tokens != NULL && server.auth_tokens[0] != NULL && !c->authed;
}

static __attribute__((noinline, cold)) void
reject_arity(struct client *c, const struct cmd *cmd)
{
    char err[128];
    snprintf(err, sizeof(err), "ERR wrong number of arguments for '%s' command", cmd->name);
    cmd_reject(c, cmd, err);
}

bool
cmd_refuse_failing_write(struct client *c, const struct cmd *cmd)
{
    char msg[200];
    if (durable_error(msg, sizeof(msg)) != 0) {
        char err[300];
        /* RESP's code is Redis's MISCONF; the native protocol drops "ERR" */
        snprintf(err, sizeof(err), "%s write-ahead log failing, writes refused: %s",
                 c->r.proto == REPLY_NATIVE ? "ERR" : "MISCONF", msg);
        cmd_reject(c, cmd, err);
        return true;
    }
    return false;
}

/* Redis 7.0's subcommands of the containers, with their arities: in the
 * subscribed context its refusal names "container|sub", after its own
 * checks of the subcommand (unknown, arity) that come first. */
static const struct {
    unsigned cmd;
    const char *sub;
    int arity;
} subcommands[] = {
    {CMD_ID_pubsub, "channels", -2},     {CMD_ID_pubsub, "numsub", -2},
    {CMD_ID_pubsub, "numpat", 2},        {CMD_ID_pubsub, "help", 2},
    {CMD_ID_pubsub, "shardchannels", -2}, {CMD_ID_pubsub, "shardnumsub", -2},
    {CMD_ID_object, "encoding", 3},      {CMD_ID_object, "freq", 3},
    {CMD_ID_object, "idletime", 3},      {CMD_ID_object, "refcount", 3},
    {CMD_ID_object, "help", 2},          {CMD_ID_memory, "doctor", 2},
    {CMD_ID_memory, "malloc-stats", 2},  {CMD_ID_memory, "purge", 2},
    {CMD_ID_memory, "stats", 2},         {CMD_ID_memory, "usage", -3},
    {CMD_ID_memory, "help", 2},          {CMD_ID_config, "get", -3},
    {CMD_ID_config, "set", -4},          {CMD_ID_config, "resetstat", 2},
    {CMD_ID_config, "rewrite", 2},       {CMD_ID_config, "help", 2},
    {CMD_ID_command, "count", 2},        {CMD_ID_command, "docs", -2},
    {CMD_ID_command, "getkeys", -4},     {CMD_ID_command, "getkeysandflags", -4},
    {CMD_ID_command, "help", 2},         {CMD_ID_command, "info", -2},
    {CMD_ID_command, "list", -2},        {CMD_ID_client, "caching", 3},
    {CMD_ID_client, "getname", 2},       {CMD_ID_client, "getredir", 2},
    {CMD_ID_client, "id", 2},            {CMD_ID_client, "info", 2},
    {CMD_ID_client, "kill", -3},         {CMD_ID_client, "list", -2},
    {CMD_ID_client, "no-evict", 3},      {CMD_ID_client, "pause", -3},
    {CMD_ID_client, "reply", 3},         {CMD_ID_client, "setname", 3},
    {CMD_ID_client, "tracking", -3},     {CMD_ID_client, "trackinginfo", 2},
    {CMD_ID_client, "unblock", -3},      {CMD_ID_client, "unpause", 2},
    {CMD_ID_client, "help", 2},
};

/* A RESP2 client with subscriptions may only run these (Redis 7.0's list). */
static __attribute__((noinline, cold)) bool
refuse_in_pubsub(struct client *c, const struct cmd *cmd, int argc, struct proto_arg *argv)
{
    switch (cmd->id) {
    case CMD_ID_ping:
    case CMD_ID_subscribe:
    case CMD_ID_unsubscribe:
    case CMD_ID_psubscribe:
    case CMD_ID_punsubscribe:
    case CMD_ID_quit:
    case CMD_ID_reset:
        return false;
    default:
        break;
    }
    char name[64], err[300];
    snprintf(name, sizeof(name), "%s", cmd->name);
    bool container = false;
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (subcommands[i].cmd != cmd->id) {
            continue;
        }
        container = true;
        if (proto_arg_is(&argv[1], subcommands[i].sub)) {
            int a = subcommands[i].arity;
            snprintf(name, sizeof(name), "%s|%s", cmd->name, subcommands[i].sub);
            if ((a > 0 && argc != a) || (a < 0 && argc < -a)) {
                snprintf(err, sizeof(err), "ERR wrong number of arguments for '%s' command",
                         name);
                cmd_reject(c, cmd, err);
                return true;
            }
            container = false;
            break;
        }
    }
    if (container) { /* a subcommand Redis does not know */
        char upper[32];
        size_t n = strlen(cmd->name) < sizeof(upper) - 1 ? strlen(cmd->name) : sizeof(upper) - 1;
        for (size_t i = 0; i < n; i++) {
            upper[i] = (char)(cmd->name[i] - 'a' + 'A');
        }
        upper[n] = '\0';
        int sl = argv[1].len > 128 ? 128 : (int)argv[1].len;
        snprintf(err, sizeof(err), "ERR unknown subcommand '%.*s'. Try %s HELP.", sl, argv[1].ptr,
                 upper);
        cmd_reject(c, cmd, err);
        return true;
    }
    snprintf(err, sizeof(err),
             "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
             "RESET are allowed in this context",
             name);
    cmd_reject(c, cmd, err);
    return true;
}

void
cmd_dispatch(struct client *c, struct proto_req *req)
{
    if (req->argc == 0) {
        return;
    }
    struct proto_arg *argv = req->argv;
    const struct cmd *cmd = lookup(argv[0].ptr, argv[0].len);
    if (__builtin_expect(cmd == NULL, 0)) {
        unknown_command(c, req->argc, argv);
        return;
    }
    if (__builtin_expect((cmd->arity > 0 && req->argc != cmd->arity) ||
                             (cmd->arity < 0 && req->argc < -cmd->arity),
                         0)) {
        reject_arity(c, cmd);
        return;
    }
    if (__builtin_expect(cmd_auth_required(c) && !(cmd->flags & CMD_NOAUTH), 0)) {
        cmd_reject(c, cmd, "NOAUTH Authentication required.");
        return;
    }
    /* Cluster routing, where Redis checks it (after authentication, before
     * memory). Cluster mode off: one load of a pointer that is always NULL
     * and a branch that is always predicted. */
    const struct topo_view *view = cluster_view();
    if (__builtin_expect(view != NULL, 0) && cmd->first_key > 0 &&
        !(c->proxy ? cmd_cluster_proxy(c, cmd, view, req->argc, argv)
                   : cmd_cluster_route(c, cmd, view, req->argc, argv))) {
        return;
    }
    if ((cmd->flags & CMD_DENYOOM) && !store_make_room(server.store)) {
        cmd_reject(c, cmd, ERR_OOM);
        gate_leave(c);
        return;
    }
    if ((cmd->flags & CMD_WRITE) && durable_enabled() && cmd_refuse_failing_write(c, cmd)) {
        gate_leave(c);
        return;
    }
    if (__builtin_expect(pubsub_context(c), 0) && c->r.proto == REPLY_RESP2 &&
        refuse_in_pubsub(c, cmd, req->argc, argv)) {
        gate_leave(c);
        return;
    }
    cmd_call_inline(cmd, c, req->argc, argv);
    gate_leave(c);
}

void
cmd_stats_reset(void)
{
    tstats_reset_all();
}
