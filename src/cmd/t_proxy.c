/*
 * t_proxy.c -- the proxy port (cluster.proxy_port): Redis clients that know
 * nothing of the cluster send any command to any node, which routes it.
 *
 *  - A command whose keys all hash to one slot runs here when this node is
 *    the slot's primary, and is otherwise forwarded to the primary's RESP
 *    port (cmd/forward.h); the client gets the primary's reply.
 *  - MGET, MSET, DEL, EXISTS, UNLINK and TOUCH with keys in several slots
 *    are split into one command per slot, sent to the slots' primaries
 *    (this node's own slots too, through its own RESP port) and their
 *    replies gathered: MGET's values in the order asked, the sum of the
 *    counts, MSET's OK. Not atomic: another client may see some parts done
 *    and not others, and an error in one part (the first, in slot order of
 *    the keys) is the reply while the other parts may have been applied.
 *  - Any other command with keys in several slots: CROSSSLOT, as Redis.
 *  - Commands without keys (PING, INFO, DBSIZE, SCAN, KEYS ...) run here and
 *    see this node's keys only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cmd/args.h"
#include "cmd/call.h"
#include "cmd/cmd.h"
#include "cmd/later.h"
#include "proto/resp_reply.h"
#include "proto/resp_write.h"
#include "store/hint.h"
#include "store/slot.h"
#include "util/buf.h"
#include "util/mem.h"

enum gather_kind { G_MGET, G_MSET, G_SUM };

struct gather;

struct gpart {
    struct gather *g;
    unsigned slot;
    int nkeys;
    char *reply; /* NULL until it came */
    size_t len;
};

struct gather {
    struct later *l;
    enum gather_kind kind;
    int nkeys;
    int nparts, left;
    struct gpart *parts;
    int *key_part; /* per key asked: its part */
    int *key_pos;  /* per key asked: its place among the part's keys */
};

static enum fwd_proto
proto_of(const struct client *c)
{
    return c->r.proto == REPLY_RESP3 ? FWD_RESP3 : FWD_RESP2;
}

static void
gather_free(struct gather *g)
{
    for (int i = 0; i < g->nparts; i++) {
        free(g->parts[i].reply);
    }
    free(g->parts);
    free(g->key_part);
    free(g->key_pos);
    free(g);
}

static bool
is_error(const char *p, size_t n)
{
    return n > 0 && (p[0] == '-' || p[0] == '!');
}

/* MGET: the values in the order asked, from each part's array. */
static bool
compose_mget(struct gather *g, struct buf *out)
{
    /* offsets of every element of every part, in one array */
    size_t **elem = xcalloc((size_t)g->nparts, sizeof(*elem));
    bool ok = true;
    for (int i = 0; i < g->nparts && ok; i++) {
        struct gpart *pt = &g->parts[i];
        size_t hdr;
        long long n = resp_reply_array_count(pt->reply, pt->len, &hdr);
        if (n != pt->nkeys) {
            ok = false;
            break;
        }
        elem[i] = xmalloc(sizeof(size_t) * ((size_t)n + 1));
        size_t at = hdr;
        for (long long k = 0; k < n; k++) {
            long long l = resp_reply_len(pt->reply + at, pt->len - at);
            if (l <= 0) {
                ok = false;
                break;
            }
            elem[i][k] = at;
            at += (size_t)l;
        }
        elem[i][n] = at;
    }
    if (ok) {
        resp_write_array(out, g->nkeys);
        for (int k = 0; k < g->nkeys; k++) {
            struct gpart *pt = &g->parts[g->key_part[k]];
            size_t *e = elem[g->key_part[k]];
            int at = g->key_pos[k];
            buf_append(out, pt->reply + e[at], e[at + 1] - e[at]);
        }
    }
    for (int i = 0; i < g->nparts; i++) {
        free(elem[i]);
    }
    free(elem);
    return ok;
}

/* The counts of DEL, EXISTS, UNLINK and TOUCH, added up. */
static bool
compose_sum(struct gather *g, struct buf *out)
{
    long long sum = 0;
    for (int i = 0; i < g->nparts; i++) {
        struct gpart *pt = &g->parts[i];
        long long v;
        if (pt->len < 4 || pt->reply[0] != ':' || !arg_ll(pt->reply + 1, pt->len - 3, &v)) {
            return false;
        }
        sum += v;
    }
    buf_appendc(out, ':');
    buf_append_i64(out, sum);
    buf_append(out, "\r\n", 2);
    return true;
}

static void
gather_done(struct gather *g)
{
    struct buf out;
    buf_init(&out);
    const struct gpart *err = NULL;
    for (int i = 0; i < g->nparts && err == NULL; i++) {
        if (is_error(g->parts[i].reply, g->parts[i].len)) {
            err = &g->parts[i];
        }
    }
    bool ok = true;
    if (err != NULL) {
        buf_append(&out, err->reply, err->len);
    } else if (g->kind == G_MGET) {
        ok = compose_mget(g, &out);
    } else if (g->kind == G_SUM) {
        ok = compose_sum(g, &out);
    } else {
        buf_append(&out, "+OK\r\n", 5);
    }
    if (ok) {
        later_finish_raw(g->l, out.data, out.len);
    } else {
        later_finish(g->l, "ERR a node answered a part of this command with an unexpected reply");
    }
    buf_deinit(&out);
    gather_free(g);
}

static void
part_done(void *arg, const char *reply, size_t len)
{
    struct gpart *pt = arg;
    pt->reply = xmalloc(len ? len : 1);
    memcpy(pt->reply, reply, len);
    pt->len = len;
    if (--pt->g->left == 0) {
        gather_done(pt->g);
    }
}

/* Split a multi-slot MGET/MSET/DEL/EXISTS/UNLINK/TOUCH into one command per
 * slot and send each to its slot's primary. slots[k]: the slot of key k. */
static void
scatter(struct client *c, enum gather_kind kind, struct proto_arg *argv, const unsigned *slots,
        int nkeys)
{
    int step = kind == G_MSET ? 2 : 1;
    struct gather *g = xcalloc(1, sizeof(*g));
    g->kind = kind;
    g->nkeys = nkeys;
    g->parts = xcalloc((size_t)nkeys, sizeof(*g->parts));
    g->key_part = xcalloc((size_t)nkeys, sizeof(int));
    g->key_pos = xcalloc((size_t)nkeys, sizeof(int));
    /* part of each slot: a linear probe over the parts made so far would be
     * quadratic in the slots; a map of the 16384 slots is not */
    int *part_of = xmalloc(sizeof(int) * SLOT_COUNT);
    for (int k = 0; k < nkeys; k++) {
        part_of[slots[k]] = -1;
    }
    for (int k = 0; k < nkeys; k++) {
        int p = part_of[slots[k]];
        if (p < 0) {
            p = part_of[slots[k]] = g->nparts++;
            g->parts[p].g = g;
            g->parts[p].slot = slots[k];
        }
        g->key_part[k] = p;
        g->key_pos[k] = g->parts[p].nkeys++;
    }
    free(part_of);
    g->left = g->nparts;
    g->l = later_begin(c);
    if (g->l == NULL) {
        gather_free(g);
        return; /* the client is closing: it gets nothing */
    }
    /* one request per part: the command's name, then its keys (and values) */
    struct buf b;
    buf_init(&b);
    enum fwd_proto proto = proto_of(c);
    int sent = 0;
    for (int p = 0; p < g->nparts; p++) {
        buf_reset(&b, 0);
        resp_write_array(&b, 1 + (int64_t)g->parts[p].nkeys * step);
        resp_write_bulk(&b, argv[0].ptr, argv[0].len);
        for (int k = 0; k < nkeys; k++) {
            if (g->key_part[k] == p) {
                for (int j = 0; j < step; j++) {
                    const struct proto_arg *a = &argv[1 + k * step + j];
                    resp_write_bulk(&b, a->ptr, a->len);
                }
            }
        }
        if (fwd_submit(c, proto, g->parts[p].slot, b.data, b.len, part_done, &g->parts[p]) != 0) {
            /* no primary for this slot: that part's answer is the error */
            static const char e[] = "-CLUSTERDOWN Hash slot not served\r\n";
            g->parts[p].reply = xmalloc(sizeof(e));
            memcpy(g->parts[p].reply, e, sizeof(e) - 1);
            g->parts[p].len = sizeof(e) - 1;
            g->left--;
        } else {
            sent++;
        }
    }
    buf_deinit(&b);
    if (sent == 0) {
        /* nothing went out: answer now (the handle delivers it on the wake) */
        gather_done(g);
    }
}

static bool
gatherable(const struct cmd *cmd, enum gather_kind *kind)
{
    int id = (int)(cmd - cmd_table);
    if (id == CMD_ID_mget) {
        *kind = G_MGET;
    } else if (id == CMD_ID_mset) {
        *kind = G_MSET;
    } else if (id == CMD_ID_del || id == CMD_ID_unlink || id == CMD_ID_exists ||
               id == CMD_ID_touch) {
        *kind = G_SUM;
    } else {
        return false;
    }
    return true;
}

bool
cmd_cluster_proxy(struct client *c, const struct cmd *cmd, const struct topo_view *v, int argc,
                  struct proto_arg *argv)
{
    int last = cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key;
    if (last >= argc) {
        last = argc - 1;
    }
    int slot = -1;
    bool multi = false;
    for (int i = cmd->first_key; i <= last; i += cmd->key_step) {
        int s = (int)hint_slot(argv[i].ptr, argv[i].len);
        if (slot < 0) {
            slot = s;
        } else if (s != slot) {
            multi = true;
            break;
        }
    }
    if (slot < 0) {
        return true;
    }
    if (!multi) {
        uint16_t p = topo_view_primary(v, (unsigned)slot);
        if (p == TOPO_VIEW_NONE) {
            cmd_reject(c, cmd, "CLUSTERDOWN Hash slot not served");
            return false;
        }
        if (p == v->self) {
            /* here: the write gate and the hold of a vbucket arriving */
            return cmd_cluster_route(c, cmd, v, argc, argv);
        }
        struct buf b;
        buf_init(&b);
        resp_write_array(&b, argc);
        for (int i = 0; i < argc; i++) {
            resp_write_bulk(&b, argv[i].ptr, argv[i].len);
        }
        if (!cmd_cluster_forward(c, proto_of(c), (unsigned)slot, b.data, b.len)) {
            cmd_reject(c, cmd, "ERR the client is closing");
        }
        buf_deinit(&b);
        return false;
    }
    enum gather_kind kind;
    if (!gatherable(cmd, &kind)) {
        cmd_reject(c, cmd, "CROSSSLOT Keys in request don't hash to the same slot");
        return false;
    }
    if (kind == G_MSET && (argc - 1) % 2 != 0) {
        return true; /* MSET's own arity error */
    }
    int step = cmd->key_step;
    int nkeys = (last - cmd->first_key) / step + 1;
    unsigned *slots = xmalloc(sizeof(unsigned) * (size_t)nkeys);
    for (int k = 0; k < nkeys; k++) {
        const struct proto_arg *a = &argv[cmd->first_key + k * step];
        slots[k] = slot_of(a->ptr, a->len);
    }
    scatter(c, kind, argv, slots, nkeys);
    free(slots);
    return false;
}
