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
 *   anything else             ERROR: <message>
 *
 * Handlers render natively (reply.c); verbs whose integer replies mean
 * something else here rewrite that one line afterwards.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "cmd/keys.h"
#include "util/clock.h"

bool cmd_auth_required(const struct client *c);
bool auth_check_token(struct client *c, const char *tok, size_t len);
void stats_json(struct buf *out);

enum int_map { MAP_NONE, MAP_BOOL, MAP_TTL };

struct verb {
    const char *name;
    int id;          /* command table id, or -1 for verbs handled here */
    int min, max;    /* argc bounds, verb included */
    enum int_map map;
    const char *usage;
};

static const struct verb verbs[] = {
    {"PING", -1, 1, 1, MAP_NONE, "PING"},
    {"PUT", CMD_ID_set, 3, 4, MAP_NONE, "PUT key value [ttl_seconds]"},
    {"GET", CMD_ID_get, 2, 2, MAP_NONE, "GET key"},
    {"DEL", CMD_ID_del, 2, 2, MAP_BOOL, "DEL key"},
    {"EXPIRE", CMD_ID_expire, 3, 3, MAP_BOOL, "EXPIRE key ttl_seconds"},
    {"TTL", CMD_ID_ttl, 2, 2, MAP_TTL, "TTL key"},
    {"AUTH", -1, 2, 2, MAP_NONE, "AUTH token"},
    {"STATS", -1, 1, 1, MAP_NONE, "STATS"},
    {"QUIT", -1, 1, 1, MAP_NONE, "QUIT"},
};

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

void
cmd_dispatch_native(struct client *c, struct proto_req *req)
{
    struct reply *r = &c->r;
    if (req->argc == 0) {
        reply_error(r, "ERR empty command");
        return;
    }
    const struct verb *v = NULL;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (proto_arg_is(&req->argv[0], verbs[i].name)) {
            v = &verbs[i];
            break;
        }
    }
    if (v == NULL) {
        int n = req->argv[0].len > 64 ? 64 : (int)req->argv[0].len;
        reply_errorf(r, "ERR unknown command '%.*s'", n, req->argv[0].ptr);
        return;
    }
    if (req->argc < v->min || req->argc > v->max) {
        reply_errorf(r, "ERR wrong number of arguments: usage: %s", v->usage);
        return;
    }
    bool auth_ok = !cmd_auth_required(c);
    if (!auth_ok && strcmp(v->name, "PING") != 0 && strcmp(v->name, "AUTH") != 0 &&
        strcmp(v->name, "QUIT") != 0) {
        reply_error(r, "ERR authentication required");
        return;
    }
    if (v->id < 0) {
        if (strcmp(v->name, "PING") == 0) {
            reply_simple(r, "PONG");
        } else if (strcmp(v->name, "QUIT") == 0) {
            reply_ok(r);
            c->close_after_reply = true;
        } else if (strcmp(v->name, "AUTH") == 0) {
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
        return;
    }
    const struct cmd *cmd = &cmd_table[v->id];
    if ((cmd->flags & CMD_DENYOOM) && !store_make_room(server.store)) {
        reply_error(r, ERR_OOM);
        return;
    }
    if (v->id == CMD_ID_set && req->argc == 4) {
        /* PUT key value ttl -> SET key value EX ttl */
        long long ttl;
        if (!arg_to_ll(&req->argv[3], &ttl) || ttl <= 0) {
            reply_error(r, "ERR invalid ttl: expected a positive number of seconds");
            return;
        }
        struct proto_arg argv[5] = {
            {"SET", 3}, req->argv[1], req->argv[2], {"EX", 2}, req->argv[3]};
        cmd_call(cmd, c, 5, argv);
        return;
    }
    size_t start = r->out->len;
    cmd_call(cmd, c, req->argc, req->argv);
    if (v->map != MAP_NONE) {
        remap(c, start, v->map);
    }
}
