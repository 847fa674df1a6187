/*
 * cmd.c -- the command table (expanded from commands.def) and dispatch.
 *
 * Lookup is a small open-addressing table keyed by the case-folded name,
 * built once; a request's name is folded into a stack buffer and hashed, so
 * the hot path does no allocation. Dispatch follows Redis's order of checks:
 * unknown command, arity, authentication, memory, then the call.
 */
#include "cmd/cmd.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/slowlog.h"
#include "cmd/keys.h"
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

#define LOOKUP_SIZE 256 /* power of two, > 2 * CMD_COUNT */
static const struct cmd *lookup_tab[LOOKUP_SIZE];
static pthread_once_t lookup_once = PTHREAD_ONCE_INIT;

static unsigned
name_hash(const char *s, size_t n)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    }
    return h;
}

static void
lookup_build(void)
{
    for (int i = 0; i < CMD_COUNT; i++) {
        const char *name = cmd_table[i].name;
        unsigned h = name_hash(name, strlen(name)) & (LOOKUP_SIZE - 1);
        while (lookup_tab[h]) {
            h = (h + 1) & (LOOKUP_SIZE - 1);
        }
        lookup_tab[h] = &cmd_table[i];
    }
}

const struct cmd *
cmd_lookup(const char *name, size_t len)
{
    char low[32];
    if (len == 0 || len >= sizeof(low)) {
        return NULL;
    }
    pthread_once(&lookup_once, lookup_build);
    for (size_t i = 0; i < len; i++) {
        low[i] = (char)tolower((unsigned char)name[i]);
    }
    unsigned h = name_hash(low, len) & (LOOKUP_SIZE - 1);
    while (lookup_tab[h]) {
        const struct cmd *c = lookup_tab[h];
        if (strlen(c->name) == len && memcmp(c->name, low, len) == 0) {
            return c;
        }
        h = (h + 1) & (LOOKUP_SIZE - 1);
    }
    return NULL;
}

void
cmd_call(const struct cmd *cmd, struct client *c, int argc, struct proto_arg *argv)
{
    struct tstats *ts = tstats_self();
    size_t start = c->r.out->len;
    /* One wall-clock read gives both the command's time (expiry decisions)
     * and the start of its duration; a clock step backwards counts as 0. */
    int64_t t0 = clock_us();
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
    int64_t dt = clock_us() - t0;
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

static void
reject(struct client *c, const struct cmd *cmd, const char *err)
{
    if (cmd) {
        STAT_INC(tstats_self()->cmd[cmd->id].rejected);
    }
    reply_error(&c->r, err);
}

static void
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

bool cmd_auth_required(const struct client *c);

bool
cmd_auth_required(const struct client *c)
{
    return server.auth_tokens != NULL && server.auth_tokens[0] != NULL && !c->authed;
}

void
cmd_dispatch(struct client *c, struct proto_req *req)
{
    if (req->argc == 0) {
        return;
    }
    struct proto_arg *argv = req->argv;
    const struct cmd *cmd = cmd_lookup(argv[0].ptr, argv[0].len);
    if (cmd == NULL) {
        unknown_command(c, req->argc, argv);
        return;
    }
    if ((cmd->arity > 0 && req->argc != cmd->arity) ||
        (cmd->arity < 0 && req->argc < -cmd->arity)) {
        char err[128];
        snprintf(err, sizeof(err), "ERR wrong number of arguments for '%s' command",
                 cmd->name);
        reject(c, cmd, err);
        return;
    }
    if (cmd_auth_required(c) && !(cmd->flags & CMD_NOAUTH)) {
        reject(c, cmd, "NOAUTH Authentication required.");
        return;
    }
    if ((cmd->flags & CMD_DENYOOM) && !store_make_room(server.store)) {
        reject(c, cmd, ERR_OOM);
        return;
    }
    if ((cmd->flags & CMD_WRITE) && durable_enabled()) {
        char msg[200];
        if (durable_error(msg, sizeof(msg)) != 0) {
            char err[300];
            snprintf(err, sizeof(err), "MISCONF write-ahead log failing, writes refused: %s",
                     msg);
            reject(c, cmd, err);
            return;
        }
    }
    cmd_call(cmd, c, req->argc, argv);
}

void
cmd_stats_reset(void)
{
    tstats_reset_all();
}
