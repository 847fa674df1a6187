/*
 * t_server.c -- connection and server commands: PING ECHO AUTH HELLO SELECT
 * QUIT RESET TIME LASTSAVE SAVE BGSAVE FUNCTION DEBUG CONFIG CLIENT CLUSTER.
 * AUTH and the token check are in auth.c; INFO, COMMAND, SLOWLOG and
 * LATENCY live in t_info.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "cmd/args.h"
#include "cmd/auth.h"
#include "cmd/clients.h"
#include "cmd/cmd.h"
#include "cmd/keys.h"
#include "cmd/pubsub.h"
#include "conf/config.h"
#include "core/durable.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

/* The connections' side of CLIENT (clients.h); none until registered. */
static const struct cmd_clients *clients;

void
cmd_clients_register(const struct cmd_clients *ops)
{
    clients = ops;
}

size_t
cmd_clients_memory(void)
{
    return clients && clients->memory ? clients->memory() : 0;
}

unsigned
cmd_clients_worker_index(const struct worker *w)
{
    return clients && clients->worker_index ? clients->worker_index(w) : 0;
}

static void
clients_list(struct buf *out, uint64_t id)
{
    if (clients) {
        clients->list(out, id);
    }
}

static unsigned
clients_kill(uint64_t id, const char *addr, const char *laddr, uint64_t skipme_id)
{
    return clients ? clients->kill(id, addr, laddr, skipme_id) : 0;
}

void
cmd_hello(struct client *c, int argc, struct proto_arg *argv)
{
    long long ver = 0;
    int next = 1;
    if (argc >= 2) {
        if (!arg_to_ll(&argv[1], &ver)) {
            reply_error(&c->r, "ERR Protocol version is not an integer or out of range");
            return;
        }
        next = 2;
        if (ver < 2 || ver > 3) {
            reply_error(&c->r, "NOPROTO unsupported protocol version");
            return;
        }
    }
    const struct proto_arg *user = NULL, *pass = NULL, *name = NULL;
    for (int j = next; j < argc; j++) {
        int more = argc - j - 1;
        if (proto_arg_is(&argv[j], "auth") && more >= 2) {
            user = &argv[j + 1];
            pass = &argv[j + 2];
            j += 2;
        } else if (proto_arg_is(&argv[j], "setname") && more >= 1) {
            name = &argv[j + 1];
            j++;
        } else {
            int n = argv[j].len > 128 ? 128 : (int)argv[j].len;
            reply_errorf(&c->r, "ERR Syntax error in HELLO option '%.*s'", n, argv[j].ptr);
            return;
        }
    }
    if (user) {
        bool tokens = server.auth_tokens && server.auth_tokens[0];
        bool ok;
        if (!proto_arg_is(user, "default")) {
            auth_failed(c, "HELLO AUTH user");
            ok = false;
        } else {
            ok = !tokens || auth_check_token(c, pass->ptr, pass->len);
        }
        if (!ok) {
            reply_error(&c->r, ERR_WRONGPASS);
            return;
        }
        c->authed = true;
    }
    if (cmd_auth_required(c)) {
        reply_error(&c->r, "NOAUTH HELLO must be called with the client already "
                           "authenticated, otherwise the HELLO AUTH <user> <pass> "
                           "option can be used to authenticate the client and select the "
                           "RESP protocol version at the same time");
        return;
    }
    if (name) {
        for (size_t i = 0; i < name->len; i++) {
            if (name->ptr[i] < '!' || name->ptr[i] > '~') {
                reply_error(&c->r, "ERR Client names cannot contain spaces, newlines or "
                                   "special characters.");
                return;
            }
        }
        free(c->name);
        c->name = name->len ? xstrndup(name->ptr, name->len) : NULL;
    }
    if (ver) {
        c->r.proto = (int)ver;
    }
    struct reply *r = &c->r;
    reply_map(r, 7);
    reply_bulkstr(r, "server");
    reply_bulkstr(r, "redis");
    reply_bulkstr(r, "version");
    reply_bulkstr(r, "7.0.15");
    reply_bulkstr(r, "proto");
    reply_int(r, r->proto == REPLY_RESP3 ? 3 : 2);
    reply_bulkstr(r, "id");
    reply_int(r, (int64_t)c->id);
    reply_bulkstr(r, "mode");
    reply_bulkstr(r, cmd_cluster_enabled() ? "cluster" : "standalone");
    reply_bulkstr(r, "role");
    reply_bulkstr(r, "master");
    reply_bulkstr(r, "modules");
    reply_array(r, 0);
}

/* ---- simple connection commands ------------------------------------------ */

void
cmd_ping(struct client *c, int argc, struct proto_arg *argv)
{
    if (argc > 2) {
        cmd_reply_arity(c, "ping");
    } else if (pubsub_context(c) && c->r.proto == REPLY_RESP2) {
        /* subscribed (RESP2): an array, as Redis */
        reply_array(&c->r, 2);
        reply_bulk(&c->r, "pong", 4);
        reply_bulk(&c->r, argc == 2 ? argv[1].ptr : "", argc == 2 ? argv[1].len : 0);
    } else if (argc == 2) {
        reply_bulk(&c->r, argv[1].ptr, argv[1].len);
    } else {
        reply_simple(&c->r, "PONG");
    }
}

void
cmd_echo(struct client *c, int argc, struct proto_arg *argv)
{
    reply_bulk(&c->r, argv[1].ptr, argv[1].len);
}

void
cmd_select(struct client *c, int argc, struct proto_arg *argv)
{
    long long id;
    if (!arg_to_ll(&argv[1], &id) || id < INT32_MIN || id > INT32_MAX) {
        reply_error(&c->r, ERR_NOT_INT);
    } else if (id != 0 && cmd_cluster_enabled()) {
        reply_error(&c->r, "ERR SELECT is not allowed in cluster mode"); /* as Redis */
    } else if (id != 0) {
        reply_error(&c->r, "ERR DB index is out of range");
    } else {
        reply_ok(&c->r);
    }
}

void
cmd_quit(struct client *c, int argc, struct proto_arg *argv)
{
    reply_ok(&c->r);
    c->close_after_reply = true;
}

void
cmd_reset(struct client *c, int argc, struct proto_arg *argv)
{
    if (c->r.proto != REPLY_NATIVE) {
        c->r.proto = REPLY_RESP2;
    }
    free(c->name);
    c->name = NULL;
    c->authed = !(server.auth_tokens && server.auth_tokens[0]);
    c->readonly = false; /* as Redis's RESET: back to READWRITE */
    pubsub_client_reset(c); /* leaves every channel and pattern, no replies */
    reply_simple(&c->r, "RESET");
}

void
cmd_time(struct client *c, int argc, struct proto_arg *argv)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char s[24], u[24];
    int ns = snprintf(s, sizeof(s), "%lld", (long long)tv.tv_sec);
    int nu = snprintf(u, sizeof(u), "%lld", (long long)tv.tv_usec);
    reply_array(&c->r, 2);
    reply_bulk(&c->r, s, (size_t)ns);
    reply_bulk(&c->r, u, (size_t)nu);
}

void
cmd_lastsave(struct client *c, int argc, struct proto_arg *argv)
{
    struct persist_info info;
    if (durable_info(&info) && info.last_save_ms > 0) {
        reply_int(&c->r, info.last_save_ms / 1000);
        return;
    }
    reply_int(&c->r, atomic_load(&server.lastsave_s));
}

#define ERR_NO_PERSIST "ERR persistence is disabled (set wal.enabled = true)"

void
cmd_save(struct client *c, int argc, struct proto_arg *argv)
{
    if (!durable_enabled()) {
        reply_error(&c->r, ERR_NO_PERSIST);
        return;
    }
    int rc = durable_save();
    if (rc == 0) {
        atomic_store(&server.lastsave_s, clock_ms() / 1000);
        prop_dirty_reset();
        reply_ok(&c->r);
    } else if (rc == -EINPROGRESS) {
        reply_error(&c->r, "ERR Background save already in progress");
    } else {
        reply_errorf(&c->r, "ERR snapshot failed: %s", snap_strerror(rc));
    }
}

void
cmd_bgsave(struct client *c, int argc, struct proto_arg *argv)
{
    if (argc > 2 || (argc == 2 && !proto_arg_is(&argv[1], "schedule"))) {
        reply_error(&c->r, ERR_SYNTAX);
        return;
    }
    if (!durable_enabled()) {
        reply_error(&c->r, ERR_NO_PERSIST);
        return;
    }
    int rc = durable_bgsave();
    if (rc == 0) {
        reply_simple(&c->r, "Background saving started");
    } else if (rc == -EINPROGRESS) {
        if (argc == 2) {
            reply_simple(&c->r, "Background saving scheduled");
        } else {
            reply_error(&c->r, "ERR Background save already in progress");
        }
    } else {
        reply_errorf(&c->r, "ERR snapshot failed: %s", snap_strerror(rc));
    }
}

void
cmd_function(struct client *c, int argc, struct proto_arg *argv)
{
    if (proto_arg_is(&argv[1], "flush")) {
        if (argc > 3) {
            cmd_reply_arity(c, "function|flush");
        } else if (argc == 3 && !proto_arg_is(&argv[2], "async") &&
                   !proto_arg_is(&argv[2], "sync")) {
            reply_error(&c->r, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
        } else {
            reply_ok(&c->r);
        }
    } else if (proto_arg_is(&argv[1], "list")) {
        reply_array(&c->r, 0);
    } else {
        cmd_reply_unknown_subcommand(c, &argv[1], "FUNCTION");
    }
}

void
cmd_debug(struct client *c, int argc, struct proto_arg *argv)
{
    if (proto_arg_is(&argv[1], "log") && argc >= 3) {
        log_warn("DEBUG LOG", "\"text\":\"%.*s\"", (int)(argv[2].len > 512 ? 512 : argv[2].len),
                 argv[2].ptr);
        reply_ok(&c->r);
    } else if (proto_arg_is(&argv[1], "sleep") && argc >= 3) {
        long double secs;
        if (!arg_to_ld(&argv[2], &secs) || secs < 0) {
            reply_error(&c->r, ERR_NOT_FLOAT);
            return;
        }
        usleep((useconds_t)(secs * 1000000));
        reply_ok(&c->r);
    } else if (proto_arg_is(&argv[1], "set-active-expire") && argc >= 3) {
        long long v;
        if (!arg_to_ll(&argv[2], &v)) {
            reply_error(&c->r, ERR_NOT_INT);
            return;
        }
        atomic_store(&server.active_expire, v != 0);
        reply_ok(&c->r);
    } else {
        reply_error(&c->r, "ERR DEBUG command not allowed. If the enable-debug-command "
                           "option is set to \"no\", you can't run it at all. "
                           "CrabCache supports DEBUG LOG, SLEEP and SET-ACTIVE-EXPIRE only.");
    }
}

/* ---- CONFIG -------------------------------------------------------------- */

struct cfg_pairs {
    struct buf names;  /* NUL-separated name\0value\0 */
    size_t n;
};

static void
collect_pair(const char *name, const char *value, void *ctx)
{
    struct cfg_pairs *p = ctx;
    buf_append(&p->names, name, strlen(name) + 1);
    buf_append(&p->names, value, strlen(value) + 1);
    p->n++;
}

void
cmd_config(struct client *c, int argc, struct proto_arg *argv)
{
    struct proto_arg *sub = &argv[1];
    if (proto_arg_is(sub, "get")) {
        if (argc < 3) {
            cmd_reply_arity(c, "config|get");
            return;
        }
        const char *pats[64];
        char *owned[64];
        int np = 0;
        for (int i = 2; i < argc && np < 64; i++) {
            owned[np] = xstrndup(argv[i].ptr, argv[i].len);
            pats[np] = owned[np];
            np++;
        }
        struct cfg_pairs pairs = {{0}, 0};
        buf_init(&pairs.names);
        if (server.cfg) {
            config_get_matching_any(server.cfg, pats, (size_t)np, collect_pair, &pairs);
        }
        reply_map(&c->r, pairs.n);
        const char *p = pairs.names.data;
        for (size_t i = 0; i < pairs.n * 2; i++) {
            reply_bulkstr(&c->r, p);
            p += strlen(p) + 1;
        }
        buf_deinit(&pairs.names);
        for (int i = 0; i < np; i++) {
            free(owned[i]);
        }
    } else if (proto_arg_is(sub, "set")) {
        if (argc < 4 || (argc % 2) != 0) {
            cmd_reply_arity(c, "config|set");
            return;
        }
        for (int i = 2; i < argc; i += 2) {
            char *name = xstrndup(argv[i].ptr, argv[i].len);
            char *value = xstrndup(argv[i + 1].ptr, argv[i + 1].len);
            char err[512];
            int rc = server.cfg ? config_set_live(server.cfg, name, value, err, sizeof(err)) : -1;
            free(name);
            free(value);
            if (rc != 0) {
                reply_error(&c->r, server.cfg ? err : "ERR no configuration");
                return;
            }
        }
        reply_ok(&c->r);
    } else if (proto_arg_is(sub, "resetstat")) {
        if (argc != 2) {
            cmd_reply_arity(c, "config|resetstat");
            return;
        }
        cmd_stats_reset();
        reply_ok(&c->r);
    } else if (proto_arg_is(sub, "rewrite")) {
        reply_error(&c->r, "ERR The server is running without a config file");
    } else if (proto_arg_is(sub, "help")) {
        static const char *help[] = {
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Print this help."};
        size_t n = sizeof(help) / sizeof(help[0]);
        reply_array(&c->r, n);
        for (size_t i = 0; i < n; i++) {
            reply_simple(&c->r, help[i]);
        }
    } else {
        cmd_reply_unknown_subcommand(c, sub, "CONFIG");
    }
}

/* ---- CLIENT -------------------------------------------------------------- */

void
cmd_client(struct client *c, int argc, struct proto_arg *argv)
{
    struct proto_arg *sub = &argv[1];
    if (proto_arg_is(sub, "id")) {
        if (argc != 2) {
            cmd_reply_arity(c, "client|id");
            return;
        }
        reply_int(&c->r, (int64_t)c->id);
    } else if (proto_arg_is(sub, "setname")) {
        if (argc != 3) {
            cmd_reply_arity(c, "client|setname");
            return;
        }
        for (size_t i = 0; i < argv[2].len; i++) {
            if (argv[2].ptr[i] < '!' || argv[2].ptr[i] > '~') {
                reply_error(&c->r, "ERR Client names cannot contain spaces, newlines or "
                                   "special characters.");
                return;
            }
        }
        free(c->name);
        c->name = argv[2].len ? xstrndup(argv[2].ptr, argv[2].len) : NULL;
        reply_ok(&c->r);
    } else if (proto_arg_is(sub, "getname")) {
        if (argc != 2) {
            cmd_reply_arity(c, "client|getname");
            return;
        }
        if (c->name) {
            reply_bulkstr(&c->r, c->name);
        } else {
            reply_null(&c->r);
        }
    } else if (proto_arg_is(sub, "list") || proto_arg_is(sub, "info")) {
        bool info = proto_arg_is(sub, "info");
        if (info && argc != 2) {
            cmd_reply_arity(c, "client|info");
            return;
        }
        uint64_t only = info ? c->id : 0;
        if (!info && argc > 2) {
            if (argc == 4 && proto_arg_is(&argv[2], "type")) {
                if (!proto_arg_is(&argv[3], "normal")) {
                    reply_array(&c->r, 0);
                    return;
                }
            } else if (argc == 4 && proto_arg_is(&argv[2], "id")) {
                long long id;
                if (!arg_to_ll(&argv[3], &id) || id <= 0) {
                    reply_error(&c->r, "ERR Invalid client ID");
                    return;
                }
                only = (uint64_t)id;
            } else {
                reply_error(&c->r, ERR_SYNTAX);
                return;
            }
        }
        struct buf out;
        buf_init(&out);
        clients_list(&out, only);
        if (!info && only && out.len == 0) {
            reply_bulk(&c->r, "", 0);
        } else {
            reply_verbatim(&c->r, out.data ? out.data : "", out.len);
        }
        buf_deinit(&out);
    } else if (proto_arg_is(sub, "kill")) {
        if (argc == 3) {
            char *addr = xstrndup(argv[2].ptr, argv[2].len);
            unsigned n = clients_kill(0, addr, NULL, 0);
            free(addr);
            if (n == 0) {
                reply_error(&c->r, "ERR No such client");
            } else {
                reply_ok(&c->r);
            }
            return;
        }
        if (argc < 4 || (argc % 2) != 0) {
            reply_error(&c->r, ERR_SYNTAX);
            return;
        }
        uint64_t id = 0;
        char *addr = NULL, *laddr = NULL;
        bool skipme = true;
        for (int i = 2; i < argc; i += 2) {
            struct proto_arg *k = &argv[i], *v = &argv[i + 1];
            long long n;
            if (proto_arg_is(k, "id")) {
                if (!arg_to_ll(v, &n) || n <= 0) {
                    reply_error(&c->r, "ERR client-id should be greater than 0");
                    goto kill_done;
                }
                id = (uint64_t)n;
            } else if (proto_arg_is(k, "addr")) {
                free(addr);
                addr = xstrndup(v->ptr, v->len);
            } else if (proto_arg_is(k, "laddr")) {
                free(laddr);
                laddr = xstrndup(v->ptr, v->len);
            } else if (proto_arg_is(k, "skipme")) {
                if (proto_arg_is(v, "yes")) {
                    skipme = true;
                } else if (proto_arg_is(v, "no")) {
                    skipme = false;
                } else {
                    reply_error(&c->r, ERR_SYNTAX);
                    goto kill_done;
                }
            } else if (proto_arg_is(k, "type") || proto_arg_is(k, "user")) {
                /* every client is a normal client of the default user */
            } else {
                reply_error(&c->r, ERR_SYNTAX);
                goto kill_done;
            }
        }
        reply_int(&c->r, clients_kill(id, addr, laddr, skipme ? c->id : 0));
kill_done:
        free(addr);
        free(laddr);
    } else if (proto_arg_is(sub, "no-evict") || proto_arg_is(sub, "no-touch")) {
        if (argc != 3) {
            cmd_reply_arity(c, proto_arg_is(sub, "no-evict") ? "client|no-evict"
                                                              : "client|no-touch");
        } else if (proto_arg_is(&argv[2], "on") || proto_arg_is(&argv[2], "off")) {
            reply_ok(&c->r);
        } else {
            reply_error(&c->r, ERR_SYNTAX);
        }
    } else {
        cmd_reply_unknown_subcommand(c, sub, "CLIENT");
    }
}
