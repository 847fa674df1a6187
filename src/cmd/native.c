/*
 * native.c -- the native text protocol (SPEC 2a) mapped onto the command
 * table.
 *
 *   PING                      PONG
 *   PUT key value [ttl]       OK                      (SET key value [EX ttl])
 *   GET key                   value | NULL            (GET)
 *   DEL key                   OK | NULL               (DEL: 1 -> OK, 0 -> NULL)
 *   EXPIRE key ttl            OK | NULL               (EXPIRE: 1 -> OK, 0 -> NULL)
 *   TTL key                   seconds | -1 | NULL     (TTL: -2 -> NULL)
 *   AUTH token                OK | ERROR: invalid token (no token configured:
 *                             ERROR: AUTH called without any token configured)
 *   STATS                     one line of JSON
 *   QUIT                      OK, then close
 *   PEER                      OK: a cluster node forwarding requests; keys
 *                             owned elsewhere answer MOVED, not forwarded
 *   anything else             ERROR: <message>
 *
 * Handlers render natively (reply.c); verbs whose integer replies mean
 * something else here rewrite that one line afterwards.
 *
 * The verb is found without hashing or string calls: its length picks a
 * few candidates, and its bytes, each OR-ed with 0x20, are compared with
 * the lower-case names as one integer. Every byte of a name is a letter,
 * for which OR 0x20 folds exactly the two cases, so this is the
 * case-insensitive match of strncasecmp().
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cmd/args.h"
#include "cmd/auth.h"
#include "cmd/call.h"
#include "cmd/cmd.h"
#include "cmd/info.h"
#include "cmd/keys.h"
#include "core/durable.h"
#include "proto/text.h"
#include "util/clock.h"

enum int_map { MAP_NONE, MAP_BOOL, MAP_TTL };

enum verb_id { V_PING, V_PUT, V_GET, V_DEL, V_EXPIRE, V_TTL, V_AUTH, V_STATS, V_QUIT, V_PEER };

struct verb {
    int id;          /* command table id, or -1 for verbs handled here */
    int min, max;    /* argc bounds, verb included */
    enum int_map map;
    bool noauth;     /* allowed before AUTH */
    const char *usage;
};

static const struct verb verbs[] = {
    [V_PING] = {-1, 1, 1, MAP_NONE, true, "PING"},
    [V_PUT] = {CMD_ID_set, 3, 4, MAP_NONE, false, "PUT key value [ttl_seconds]"},
    [V_GET] = {CMD_ID_get, 2, 2, MAP_NONE, false, "GET key"},
    [V_DEL] = {CMD_ID_del, 2, 2, MAP_BOOL, false, "DEL key"},
    [V_EXPIRE] = {CMD_ID_expire, 3, 3, MAP_BOOL, false, "EXPIRE key ttl_seconds"},
    [V_TTL] = {CMD_ID_ttl, 2, 2, MAP_TTL, false, "TTL key"},
    [V_AUTH] = {-1, 2, 2, MAP_NONE, true, "AUTH token"},
    [V_STATS] = {-1, 1, 1, MAP_NONE, false, "STATS"},
    [V_QUIT] = {-1, 1, 1, MAP_NONE, true, "QUIT"},
    [V_PEER] = {-1, 1, 1, MAP_NONE, false, "PEER"},
};

/* Little-endian packing of up to 8 lower-case letters, as verb_find builds
 * them from the request. */
#define W3(a, b, c) ((uint64_t)(a) | (uint64_t)(b) << 8 | (uint64_t)(c) << 16)
#define W4(a, b, c, d) (W3(a, b, c) | (uint64_t)(d) << 24)
#define W5(a, b, c, d, e) (W4(a, b, c, d) | (uint64_t)(e) << 32)
#define W6(a, b, c, d, e, f) (W5(a, b, c, d, e) | (uint64_t)(f) << 40)

/* The verb named by a (any case), or -1. */
static int
verb_find(const struct proto_arg *a)
{
    const unsigned char *s = (const unsigned char *)a->ptr;
    uint64_t w;

    if (a->len < 3 || a->len > 6) {
        return -1;
    }
    w = (uint64_t)s[0] | (uint64_t)s[1] << 8 | (uint64_t)s[2] << 16;
    for (size_t i = 3; i < a->len; i++) {
        w |= (uint64_t)s[i] << (8 * i);
    }
    w |= 0x202020202020u >> (8 * (6 - a->len));
    switch (w) {
    case W3('p', 'u', 't'):
        return V_PUT;
    case W3('g', 'e', 't'):
        return V_GET;
    case W3('d', 'e', 'l'):
        return V_DEL;
    case W3('t', 't', 'l'):
        return V_TTL;
    case W4('p', 'i', 'n', 'g'):
        return V_PING;
    case W4('a', 'u', 't', 'h'):
        return V_AUTH;
    case W4('q', 'u', 'i', 't'):
        return V_QUIT;
    case W4('p', 'e', 'e', 'r'):
        return V_PEER;
    case W5('s', 't', 'a', 't', 's'):
        return V_STATS;
    case W6('e', 'x', 'p', 'i', 'r', 'e'):
        return V_EXPIRE;
    default:
        return -1;
    }
}

/* Rewrite the integer line appended since `start` according to the map. */
static void
remap(struct client *c, size_t start, enum int_map map)
{
    struct buf *out = c->r.out;
    size_t n = out->len - start;
    if (n < 3) {
        return;
    }
    long long v;
    if (!arg_ll(out->data + start, n - 2, &v)) {
        return; /* not an integer: an error line, keep it */
    }
    out->len = start;
    if (map == MAP_BOOL) {
        buf_appendstr(out, v ? "OK\r\n" : "NULL\r\n");
    } else if (v == -2) {
        buf_appendstr(out, "NULL\r\n");
    } else {
        buf_append_i64(out, v);
        buf_appendstr(out, "\r\n");
    }
}

/* The verbs answered here rather than by a command: PING, QUIT, AUTH, STATS,
 * PEER. */
static __attribute__((noinline)) void
native_builtin(struct client *c, struct proto_req *req, int vid)
{
    struct reply *r = &c->r;
    if (vid == V_PING) {
        reply_simple(r, "PONG");
    } else if (vid == V_QUIT) {
        reply_ok(r);
        c->close_after_reply = true;
    } else if (vid == V_PEER) {
        c->peer = true;
        reply_ok(r);
    } else if (vid == V_AUTH) {
        if (server.auth_tokens == NULL || server.auth_tokens[0] == NULL) {
            /* as Redis: an error, but not a failed attempt */
            reply_error(r, "ERR AUTH called without any token configured");
        } else if (auth_check_token(c, req->argv[1].ptr, req->argv[1].len)) {
            reply_ok(r);
        } else {
            reply_error(r, "ERR invalid token");
        }
    } else {
        stats_json(r->out);
        buf_appendstr(r->out, "\r\n");
    }
}

/* A request that names no verb, or a verb with the wrong number of
 * arguments: its error. */
static __attribute__((noinline, cold)) void
native_reject(struct client *c, struct proto_req *req, int vid)
{
    struct reply *r = &c->r;
    if (req->argc == 0) {
        reply_error(r, "ERR empty command");
    } else if (vid < 0) {
        int n = req->argv[0].len > 64 ? 64 : (int)req->argv[0].len;
        reply_errorf(r, "ERR unknown command '%.*s'", n, req->argv[0].ptr);
    } else if (req->argc > verbs[vid].max) {
        /* the usual cause: a value with spaces sent unquoted */
        reply_errorf(r,
                     "ERR wrong number of arguments: too many tokens (%d, at most %d): usage: "
                     "%s%s",
                     req->argc, verbs[vid].max, verbs[vid].usage,
                     vid == V_PUT ? "; send a value with spaces as one double-quoted token" : "");
    } else {
        reply_errorf(r, "ERR wrong number of arguments: too few tokens (%d, at least %d): usage: %s",
                     req->argc, verbs[vid].min, verbs[vid].usage);
    }
}

/* The error of a ttl token that is not a positive integer: the token as
 * received (up to 32 bytes), and when it holds something else than digits
 * and a sign, the likelier cause: a value with spaces sent unquoted. */
static __attribute__((noinline, cold)) void
native_bad_ttl(struct client *c, const struct proto_arg *a)
{
    bool numeric = a->len > 0;
    for (size_t i = 0; i < a->len; i++) {
        char ch = a->ptr[i];
        numeric = numeric && ((ch >= '0' && ch <= '9') || (i == 0 && (ch == '-' || ch == '+')));
    }
    int n = a->len > 32 ? 32 : (int)a->len;
    char shown[32 * 4 + 3];
    size_t w = text_needs_quote(a->ptr, (size_t)n) ? text_quote(a->ptr, (size_t)n, shown)
                                                    : (memcpy(shown, a->ptr, (size_t)n), (size_t)n);
    reply_errorf(&c->r, "ERR invalid ttl %.*s%s: expected a positive number of seconds%s", (int)w,
                 shown, a->len > 32 ? "..." : "",
                 numeric ? "" : " (a value with spaces must be one double-quoted token)");
}

/* PUT key value ttl: SET key value EX ttl. */
static __attribute__((noinline)) void
native_put_ttl(struct client *c, const struct cmd *cmd, struct proto_req *req)
{
    long long ttl;
    if (!arg_to_ll(&req->argv[3], &ttl) || ttl <= 0) {
        native_bad_ttl(c, &req->argv[3]);
        return;
    }
    struct proto_arg argv[5] = {{"SET", 3}, req->argv[1], req->argv[2], {"EX", 2}, req->argv[3]};
    cmd_call_inline(cmd, c, 5, argv);
}

/* Same order of checks as cmd_dispatch: verb, arity, authentication,
 * memory, the write-ahead log, then the call (inline: GET and PUT are the
 * hot path, every error is out of line). */

/* The command of a verb, once routing let it through. */
static void
native_run(struct client *c, const struct verb *v, const struct cmd *cmd, struct proto_req *req)
{
    struct reply *r = &c->r;
    if ((cmd->flags & CMD_DENYOOM) && !store_make_room(server.store)) {
        cmd_reject(c, cmd, ERR_OOM);
        return;
    }
    if ((cmd->flags & CMD_WRITE) && durable_enabled() && cmd_refuse_failing_write(c, cmd)) {
        return;
    }
    if (v->id == CMD_ID_set && req->argc == 4) {
        native_put_ttl(c, cmd, req);
        return;
    }
    size_t start = r->out->len;
    cmd_call_inline(cmd, c, req->argc, req->argv);
    if (v->map != MAP_NONE) {
        remap(c, start, v->map);
    }
}

void
cmd_dispatch_native(struct client *c, struct proto_req *req)
{
    struct reply *r = &c->r;
    int vid = req->argc > 0 ? verb_find(&req->argv[0]) : -1;
    if (__builtin_expect(vid < 0 || req->argc < verbs[vid].min || req->argc > verbs[vid].max,
                         0)) {
        native_reject(c, req, vid);
        return;
    }
    const struct verb *v = &verbs[vid];
    /* authed is set at accept when no token is configured: no call then */
    if (__builtin_expect(!v->noauth && !c->authed && cmd_auth_required(c), 0)) {
        reply_error(r, "ERR authentication required");
        return;
    }
    if (v->id < 0) {
        native_builtin(c, req, vid);
        return;
    }
    const struct cmd *cmd = &cmd_table[v->id];
    /* every verb with a command has its key first; cluster mode off: one
     * load and a predicted branch */
    const struct topo_view *view = cluster_view();
    if (__builtin_expect(view != NULL, 0) &&
        !cmd_cluster_route_native(c, cmd, view, req->argc, req->argv)) {
        return;
    }
    native_run(c, v, cmd, req);
    gate_leave(c);
}
