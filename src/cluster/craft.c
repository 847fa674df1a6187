/*
 * craft.c -- libraft behind craft.h. See craft.h.
 */
#include "cluster/craft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/uv.h>

#include "util/buf.h"
#include "util/mem.h"

struct craft {
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm fsm;
    struct craft_fsm app;
    bool io_ready, transport_ready, raft_ready;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* One proposal or change in flight; freed by its callback. */
struct craft_req {
    union {
        struct raft_apply apply;
        struct raft_change change;
        struct raft_transfer transfer;
    } u;
    craft_done_fn *cb;
    void *arg;
};

/* ---- the state machine, as libraft calls it ---------------------------------- */

/*
 * libraft stores entries in 8-byte words and asserts that every entry's
 * length is a multiple of 8 (uvSegmentBufferAppend): unpadded entries made
 * followers read past the buffer (entryCopy) and leaders abort. So an entry
 * is framed: u32 length of the data (little-endian), 4 zero bytes, the data,
 * zeros up to a multiple of 8.
 */
#define FRAME_HDR 8
/* Upper bound of the Raft heartbeat interval (see craft_create). */
#define CRAFT_HEARTBEAT_MAX_MS 20

static int
fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *b, void **result)
{
    struct craft *c = fsm->data;
    /* libraft 0.15 applies entries one by one and sets last_applied after
     * each (commands, barriers and configurations alike), so the entry being
     * applied is the next index. */
    uint64_t index = raft_last_applied(&c->raft) + 1;
    const uint8_t *p = b->base;
    size_t len = b->len >= FRAME_HDR ? (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
                                           (size_t)p[3] << 24
                                     : 0;
    if (b->len < FRAME_HDR || len > b->len - FRAME_HDR) {
        len = 0; /* not ours: the state machine sees an empty (malformed) entry */
    }
    int rc = c->app.apply(c->app.ctx, index, p + FRAME_HDR, len);
    *result = (void *)(intptr_t)rc;
    return 0;
}

static int
fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    struct craft *c = fsm->data;
    struct buf out;
    buf_init(&out);
    c->app.snapshot(c->app.ctx, &out);
    /* Framed as entries are: the snapshot travels in InstallSnapshot
     * messages, which libraft also lays out in 8-byte words. */
    size_t framed = (FRAME_HDR + out.len + 7) & ~(size_t)7;
    struct raft_buffer *rb = raft_malloc(sizeof(*rb));
    uint8_t *copy = raft_malloc(framed);
    if (rb == NULL || copy == NULL || out.len > UINT32_MAX - 16) {
        raft_free(rb);
        raft_free(copy);
        buf_deinit(&out);
        return RAFT_NOMEM;
    }
    memset(copy, 0, framed);
    copy[0] = (uint8_t)out.len, copy[1] = (uint8_t)(out.len >> 8),
    copy[2] = (uint8_t)(out.len >> 16), copy[3] = (uint8_t)(out.len >> 24);
    memcpy(copy + FRAME_HDR, out.data, out.len);
    rb->base = copy;
    rb->len = framed;
    buf_deinit(&out);
    *bufs = rb;
    *n = 1;
    return 0;
}

static int
fsm_restore(struct raft_fsm *fsm, struct raft_buffer *b)
{
    struct craft *c = fsm->data;
    const uint8_t *p = b->base;
    size_t len = b->len >= FRAME_HDR ? (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
                                           (size_t)p[3] << 24
                                     : 0;
    int rc = b->len < FRAME_HDR || len > b->len - FRAME_HDR
                 ? -1
                 : c->app.restore(c->app.ctx, p + FRAME_HDR, len);
    raft_free(b->base); /* ours now (raft.h) */
    return rc == 0 ? 0 : RAFT_MALFORMED;
}

/* ---- set-up ----------------------------------------------------------------- */

struct craft *
craft_create(uv_loop_t *loop, const char *dir, uint64_t id, const char *addr,
             const struct craft_fsm *fsm, const struct craft_opts *o, char *err, size_t errlen)
{
    struct craft *c = xcalloc(1, sizeof(*c));
    c->app = *fsm;
    c->fsm = (struct raft_fsm){
        .version = 1, .data = c,
        .apply = fsm_apply, .snapshot = fsm_snapshot, .restore = fsm_restore,
    };
    int rv = raft_uv_tcp_init(&c->transport, loop);
    if (rv != 0) {
        snprintf(err, errlen, "raft transport: %s", raft_strerror(rv));
        goto fail;
    }
    c->transport_ready = true;
    rv = raft_uv_init(&c->io, loop, dir, &c->transport);
    if (rv != 0) {
        snprintf(err, errlen, "raft storage in %s: %s", dir, c->io.errmsg);
        goto fail;
    }
    c->io_ready = true;
    /* The topology log is tiny: small segments instead of 3 x 8 MiB. */
    raft_uv_set_segment_size(&c->io, 256 * 1024);
    /* Restarted peers are found again within 50 ms, not 1 s. */
    raft_uv_set_connect_retry_delay(&c->io, 50);
    rv = raft_init(&c->raft, &c->io, &c->fsm, id, addr);
    if (rv != 0) {
        snprintf(err, errlen, "raft: %s", raft_errmsg(&c->raft));
        goto fail;
    }
    c->raft_ready = true;
    c->raft.data = c;
    unsigned et = o->election_ms ? o->election_ms : 1000;
    raft_set_election_timeout(&c->raft, et);
    /* Followers learn that an entry committed from the leader's next message:
     * a vbucket handover's paused writes wait for it on the old primary. So
     * heartbeats every 20 ms at most (a tenth of the election timeout when
     * that is shorter), not every 100 ms at the default 1 s: a few small
     * frames a second per follower. */
    unsigned hb = et / 10 ? et / 10 : 1;
    raft_set_heartbeat_timeout(&c->raft, hb < CRAFT_HEARTBEAT_MAX_MS ? hb : CRAFT_HEARTBEAT_MAX_MS);
    raft_set_pre_vote(&c->raft, true);
    if (o->snapshot_threshold) {
        raft_set_snapshot_threshold(&c->raft, o->snapshot_threshold);
        raft_set_snapshot_trailing(&c->raft, o->snapshot_threshold / 2 + 1);
    }
    return c;
fail:
    /* Nothing was started: the handles libraft opened so far close with the
     * loop's next run (raft_uv_close / raft_uv_tcp_close only schedule). */
    if (c->io_ready) {
        raft_uv_close(&c->io);
    }
    if (c->transport_ready) {
        raft_uv_tcp_close(&c->transport);
    }
    free(c);
    return NULL;
}

static int
raft_role_of(enum craft_role r)
{
    switch (r) {
    case CRAFT_VOTER:
        return RAFT_VOTER;
    case CRAFT_STANDBY:
        return RAFT_STANDBY;
    default:
        return RAFT_SPARE;
    }
}

int
craft_bootstrap(struct craft *c, const struct craft_member *m, size_t n, char *err, size_t errlen)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    for (size_t i = 0; i < n && rv == 0; i++) {
        rv = raft_configuration_add(&conf, m[i].id, m[i].addr, raft_role_of(m[i].role));
    }
    if (rv == 0) {
        rv = raft_bootstrap(&c->raft, &conf);
    }
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
        return 1;
    }
    if (rv != 0) {
        snprintf(err, errlen, "raft bootstrap: %s", raft_strerror(rv));
        return -1;
    }
    return 0;
}

int
craft_start(struct craft *c, char *err, size_t errlen)
{
    int rv = raft_start(&c->raft);
    if (rv != 0) {
        snprintf(err, errlen, "raft start: %s%s%s", raft_strerror(rv),
                 *raft_errmsg(&c->raft) ? ": " : "", raft_errmsg(&c->raft));
        return -1;
    }
    return 0;
}

/* ---- proposals and changes ---------------------------------------------------- */

static void
on_applied(struct raft_apply *a, int status, void *result)
{
    struct craft_req *q = (struct craft_req *)a;
    if (q->cb) {
        q->cb(q->arg, status, status == 0 ? (int)(intptr_t)result : 0);
    }
    free(q);
}

int
craft_propose(struct craft *c, const void *data, size_t len, craft_done_fn *cb, void *arg)
{
    if (len > UINT32_MAX - 16) {
        return RAFT_TOOBIG;
    }
    size_t framed = (FRAME_HDR + len + 7) & ~(size_t)7;
    struct raft_buffer b = {.base = raft_malloc(framed), .len = framed};
    if (b.base == NULL) {
        return RAFT_NOMEM;
    }
    uint8_t *p = b.base;
    memset(p, 0, framed);
    p[0] = (uint8_t)len, p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)(len >> 16),
    p[3] = (uint8_t)(len >> 24);
    memcpy(p + FRAME_HDR, data, len);
    struct craft_req *q = xcalloc(1, sizeof(*q));
    q->cb = cb;
    q->arg = arg;
    int rv = raft_apply(&c->raft, &q->u.apply, &b, 1, on_applied);
    if (rv != 0) {
        raft_free(b.base); /* not taken on failure */
        free(q);
    }
    return rv;
}

static void
on_changed(struct raft_change *ch, int status)
{
    struct craft_req *q = (struct craft_req *)ch;
    if (q->cb) {
        q->cb(q->arg, status, 0);
    }
    free(q);
}

static struct craft_req *
change_req(craft_done_fn *cb, void *arg)
{
    struct craft_req *q = xcalloc(1, sizeof(*q));
    q->cb = cb;
    q->arg = arg;
    return q;
}

int
craft_add(struct craft *c, uint64_t id, const char *addr, craft_done_fn *cb, void *arg)
{
    struct craft_req *q = change_req(cb, arg);
    int rv = raft_add(&c->raft, &q->u.change, id, addr, on_changed);
    if (rv != 0) {
        free(q);
    }
    return rv;
}

int
craft_assign(struct craft *c, uint64_t id, enum craft_role role, craft_done_fn *cb, void *arg)
{
    struct craft_req *q = change_req(cb, arg);
    int rv = raft_assign(&c->raft, &q->u.change, id, raft_role_of(role), on_changed);
    if (rv != 0) {
        free(q);
    }
    return rv;
}

int
craft_remove(struct craft *c, uint64_t id, craft_done_fn *cb, void *arg)
{
    struct craft_req *q = change_req(cb, arg);
    int rv = raft_remove(&c->raft, &q->u.change, id, on_changed);
    if (rv != 0) {
        free(q);
    }
    return rv;
}

static void
on_transferred(struct raft_transfer *t)
{
    struct craft_req *q = (struct craft_req *)t;
    if (q->cb) {
        q->cb(q->arg, 0, 0);
    }
    free(q);
}

int
craft_transfer(struct craft *c, uint64_t id, craft_done_fn *cb, void *arg)
{
    struct craft_req *q = change_req(cb, arg);
    int rv = raft_transfer(&c->raft, &q->u.transfer, id, on_transferred);
    if (rv != 0) {
        free(q);
    }
    return rv;
}

/* ---- state ------------------------------------------------------------------ */

void
craft_status(struct craft *c, struct craft_status *out)
{
    static const char *const names[] = {"unavailable", "follower", "candidate", "leader"};
    int st = raft_state(&c->raft);
    memset(out, 0, sizeof(*out));
    out->role = st >= 0 && st <= 3 ? names[st] : "unavailable";
    out->leader = st == RAFT_LEADER;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&c->raft, &lid, &laddr);
    out->leader_id = lid;
    out->leader_addr = laddr;
    out->term = c->raft.current_term;
    out->commit_index = c->raft.commit_index;
    out->applied_index = raft_last_applied(&c->raft);
    const struct raft_configuration *conf = &c->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        switch (conf->servers[i].role) {
        case RAFT_VOTER:
            out->voters++;
            break;
        case RAFT_STANDBY:
            out->standbys++;
            break;
        default:
            out->spares++;
        }
    }
}

enum craft_role
craft_role_of(struct craft *c, uint64_t id)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            switch (conf->servers[i].role) {
            case RAFT_VOTER:
                return CRAFT_VOTER;
            case RAFT_STANDBY:
                return CRAFT_STANDBY;
            default:
                return CRAFT_SPARE;
            }
        }
    }
    return CRAFT_NONE;
}

size_t
craft_members(struct craft *c, struct craft_member *out, size_t max)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    size_t n = 0;
    for (unsigned i = 0; i < conf->n && n < max; i++, n++) {
        out[n].id = conf->servers[i].id;
        out[n].addr = conf->servers[i].address;
        out[n].role = craft_role_of(c, conf->servers[i].id);
    }
    return n;
}

const char *
craft_strerror(int status)
{
    return raft_strerror(status);
}

bool
craft_is_not_leader(int status)
{
    return status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST;
}

/* ---- shutdown ---------------------------------------------------------------- */

static void
on_raft_closed(struct raft *r)
{
    struct craft *c = r->data;
    /* raft_close closed the io's activity; the handles themselves close here. */
    raft_uv_close(&c->io);
    raft_uv_tcp_close(&c->transport);
    if (c->close_cb) {
        c->close_cb(c->close_arg);
    }
}

void
craft_close(struct craft *c, void (*cb)(void *arg), void *arg)
{
    c->close_cb = cb;
    c->close_arg = arg;
    raft_close(&c->raft, on_raft_closed);
}

void
craft_destroy(struct craft *c)
{
    free(c);
}
