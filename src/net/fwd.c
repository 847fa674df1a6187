/*
 * fwd.c -- requests sent on to the node that owns their slot (cmd/forward.h).
 *
 * Per worker thread: a list of links, one TCP connection per destination
 * (protocol, ip, port), opened on first use; the requests sent on a link
 * wait in a FIFO for their replies, which arrive in the order sent. Bytes
 * are written as they come and gathered while a write is in flight, so the
 * requests of all the worker's clients in one loop turn leave in one write.
 *
 * A request answered MOVED or TRYAGAIN waits on the worker's `waiting`
 * list, and is routed again when the view names an owner other than the
 * one that refused it (fwd_wake: every published view wakes the workers),
 * or after a back-off (1, 2, 4 ... 64 ms), until the forward timeout. The
 * tick (every FWD_TICK_MS while anything is outstanding) runs the back-offs
 * and fails a link whose oldest request has waited longer than the timeout.
 *
 * Everything here runs on the worker's loop; done callbacks run from I/O,
 * timer or wake callbacks, never from inside fwd_submit.
 */
#include "cmd/forward.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>

#include "cluster/cluster.h"
#include "cmd/args.h"
#include "conf/config.h"
#include "core/server.h"
#include "net/internal.h"
#include "util/throttle.h"
#include "proto/resp_reply.h"
#include "proto/resp_write.h"
#include "proto/text.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define FWD_TICK_MS 10
#define FWD_BACKOFF_MAX_MS 64
/* A reply line or a RESP reply larger than this is not a reply: the link
 * is closed (a GET of a 512 MB value still fits). */
#define FWD_MAX_REPLY ((size_t)600 * 1024 * 1024)

struct fwd_req {
    struct fwd_worker *fw;
    enum fwd_proto proto;
    unsigned slot;
    fwd_done_fn *done;        /* NULL: the link's own preamble (AUTH, PEER, HELLO) */
    void *arg;
    char *bytes;
    size_t len;
    char to_ip[TOPO_IP_LEN];  /* where it was last sent */
    uint16_t to_port;
    unsigned tries;           /* MOVED / TRYAGAIN answers so far */
    int64_t t0_us;            /* submitted (monotonic) */
    int64_t sent_ms;          /* last sent (monotonic) */
    int64_t retry_ms;         /* waiting: send again then at the latest */
    struct fwd_req *next;
};

struct fwd_link {
    uv_tcp_t tcp;             /* first: casts from the handle */
    uv_connect_t creq;
    uv_write_t wreq;
    struct fwd_worker *fw;
    enum fwd_proto proto;
    char ip[TOPO_IP_LEN];
    uint16_t port;
    bool connected, writing, closing;
    const char *why;          /* what failed it */
    struct buf out;           /* requests not handed to uv_write yet */
    struct buf wbuf;          /* the write in flight */
    struct buf in;            /* replies read, not yet whole */
    struct fwd_req *head, *tail;
    struct fwd_link *next;
};

struct fwd_worker {
    struct worker *w;
    struct fwd_link *links;
    struct fwd_req *waiting;
    uv_timer_t tick;
    bool tick_on;
    bool closed;
    unsigned outstanding;     /* requests on links or waiting */
    unsigned handles;         /* links and the tick not closed yet: freed at 0 */
};

static int64_t
mono_ms(void)
{
    return clock_mono_us() / 1000;
}

static int64_t
timeout_ms(void)
{
    int64_t t = server.cfg ? server.cfg->cluster.forward_timeout_ms : 0;
    return t > 0 ? t : 5000;
}

/* ---- replies made here --------------------------------------------------- */

static void
req_free(struct fwd_req *r)
{
    free(r->bytes);
    free(r);
}

/* Give r its reply and free it. */
static void
req_finish(struct fwd_req *r, const char *reply, size_t len, bool failed)
{
    struct fwd_worker *fw = r->fw;
    fw->outstanding--;
    if (r->done != NULL) {
        struct tstats *t = tstats_self();
        int64_t us = clock_mono_us() - r->t0_us;
        STAT_INC(t->fwd_requests);
        STAT_ADD(t->fwd_usec, (uint64_t)(us > 0 ? us : 0));
        if (failed) {
            STAT_INC(t->fwd_failed);
        }
        tstats_record_latency(t, TSTATS_FWD, (uint64_t)(us > 0 ? us : 0));
        r->done(r->arg, reply, len);
    }
    req_free(r);
}

/* An error reply of r's protocol: "ERROR: msg" or "-ERR msg". */
static void
req_fail(struct fwd_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
req_fail(struct fwd_req *r, const char *fmt, ...)
{
    char msg[256], line[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int n = snprintf(line, sizeof(line), "%s%s\r\n",
                     r->proto == FWD_NATIVE ? "ERROR: " : "-", msg);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        n = (int)sizeof(line) - 1;
        line[n - 2] = '\r';
        line[n - 1] = '\n';
    }
    req_finish(r, line, (size_t)n, true);
}

/* ---- links ---------------------------------------------------------------- */

static void link_flush(struct fwd_link *lk);
static void fw_handle_closed(struct fwd_worker *fw);
static void link_fail(struct fwd_link *lk, const char *why);
static void route(struct fwd_req *r);

static void
on_link_closed(uv_handle_t *h)
{
    struct fwd_link *lk = (struct fwd_link *)h;
    while (lk->head) {
        struct fwd_req *r = lk->head;
        lk->head = r->next;
        req_fail(r, "%sforward to %s:%u failed: %s", r->proto == FWD_NATIVE ? "" : "ERR ", lk->ip,
                 (unsigned)lk->port, lk->why ? lk->why : "connection closed");
    }
    buf_deinit(&lk->out);
    buf_deinit(&lk->wbuf);
    buf_deinit(&lk->in);
    struct fwd_worker *fw = lk->fw;
    free(lk);
    fw_handle_closed(fw);
}

/* Take lk out of use: its requests fail once the handle has closed. */
static void
link_fail(struct fwd_link *lk, const char *why)
{
    if (lk->closing) {
        return;
    }
    lk->closing = true;
    lk->why = why;
    for (struct fwd_link **p = &lk->fw->links; *p; p = &(*p)->next) {
        if (*p == lk) {
            *p = lk->next;
            break;
        }
    }
    static struct log_throttle t;
    uint64_t skipped;
    if (log_throttle_allow(&t, 10, &skipped)) {
        log_warn("forwarding link closed", "\"to\":\"%s:%u\",\"why\":\"%s\",\"suppressed\":%llu",
                 lk->ip, (unsigned)lk->port, why, (unsigned long long)skipped);
    }
    uv_close((uv_handle_t *)&lk->tcp, on_link_closed);
}

static void
on_link_written(uv_write_t *req, int status)
{
    struct fwd_link *lk = req->data;
    lk->writing = false;
    buf_reset(&lk->wbuf, 1 << 16);
    if (status < 0) {
        link_fail(lk, uv_strerror(status));
        return;
    }
    link_flush(lk);
}

static void
link_flush(struct fwd_link *lk)
{
    if (!lk->connected || lk->writing || lk->closing || buf_unread(&lk->out) == 0) {
        return;
    }
    /* swap: what was gathered is written, the next requests gather anew */
    struct buf t = lk->wbuf;
    lk->wbuf = lk->out;
    lk->out = t;
    uv_buf_t b = uv_buf_init((char *)buf_rptr(&lk->wbuf), (unsigned)buf_unread(&lk->wbuf));
    lk->wreq.data = lk;
    int rc = uv_write(&lk->wreq, (uv_stream_t *)&lk->tcp, &b, 1, on_link_written);
    if (rc < 0) {
        link_fail(lk, uv_strerror(rc));
        return;
    }
    lk->writing = true;
}

static void
on_link_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    struct fwd_link *lk = (struct fwd_link *)h;
    char *p = buf_reserve(&lk->in, 64 * 1024);
    *b = uv_buf_init(p, 64 * 1024);
}

static bool
starts(const char *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    return n >= k && memcmp(p, s, k) == 0;
}

/* A refusal that routing again can cure: the slot moved, or is moving. */
static bool
is_redirect(enum fwd_proto proto, const char *p, size_t n)
{
    if (proto == FWD_NATIVE) {
        return starts(p, n, "ERROR: MOVED ") || starts(p, n, "ERROR: TRYAGAIN ");
    }
    return starts(p, n, "-MOVED ") || starts(p, n, "-TRYAGAIN ");
}

static void
ensure_tick(struct fwd_worker *fw);

/* One whole reply for the link's oldest request. */
static void
link_reply(struct fwd_link *lk, const char *p, size_t n)
{
    struct fwd_req *r = lk->head;
    lk->head = r->next;
    if (lk->head == NULL) {
        lk->tail = NULL;
    }
    r->next = NULL;
    if (r->done == NULL) {
        /* the preamble: anything but an error is fine */
        if (p[0] == '-' || starts(p, n, "ERROR:")) {
            static struct log_throttle t;
            uint64_t skipped;
            if (log_throttle_allow(&t, 10, &skipped)) {
                log_warn("forwarding link refused", "\"to\":\"%s:%u\",\"reply\":\"%.*s\"", lk->ip,
                         (unsigned)lk->port, (int)(n > 80 ? 80 : n - 2), p);
            }
        }
        lk->fw->outstanding--;
        req_free(r);
        return;
    }
    int64_t now = mono_ms();
    if (is_redirect(r->proto, p, n) &&
        now - (r->t0_us / 1000) < timeout_ms()) {
        /* wait for the view to name another owner, or the back-off */
        r->tries++;
        unsigned shift = r->tries < 7 ? r->tries - 1 : 6;
        int64_t backoff = (int64_t)1 << shift;
        r->retry_ms = now + (backoff < FWD_BACKOFF_MAX_MS ? backoff : FWD_BACKOFF_MAX_MS);
        r->next = lk->fw->waiting;
        lk->fw->waiting = r;
        STAT_INC(tstats_self()->fwd_retries);
        ensure_tick(lk->fw);
        return;
    }
    req_finish(r, p, n, false);
}

static void
on_link_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    struct fwd_link *lk = (struct fwd_link *)s;
    if (nread < 0) {
        link_fail(lk, nread == UV_EOF ? "connection closed by the owner" : uv_strerror((int)nread));
        return;
    }
    lk->in.len += (size_t)nread;
    while (buf_unread(&lk->in) > 0 && !lk->closing) {
        const char *p = buf_rptr(&lk->in);
        size_t n = buf_unread(&lk->in);
        size_t len = 0;
        if (lk->proto == FWD_NATIVE) {
            const char *lf = memchr(p, '\n', n);
            if (lf != NULL) {
                len = (size_t)(lf - p) + 1;
            }
        } else {
            long long l = resp_reply_len(p, n);
            if (l < 0) {
                link_fail(lk, "a reply that is not RESP");
                return;
            }
            len = (size_t)l;
        }
        if (len == 0) {
            if (n > FWD_MAX_REPLY) {
                link_fail(lk, "a reply too large");
            }
            break;
        }
        if (lk->head == NULL) {
            link_fail(lk, "a reply nobody asked for");
            return;
        }
        link_reply(lk, p, len);
        buf_consume(&lk->in, len);
    }
    if (buf_unread(&lk->in) == 0) {
        buf_reset(&lk->in, 1 << 16);
    }
}

static void
on_link_connected(uv_connect_t *req, int status)
{
    struct fwd_link *lk = req->data;
    if (lk->closing) {
        return;
    }
    if (status < 0) {
        link_fail(lk, uv_strerror(status));
        return;
    }
    lk->connected = true;
    uv_tcp_nodelay(&lk->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&lk->tcp, on_link_alloc, on_link_read);
    if (rc < 0) {
        link_fail(lk, uv_strerror(rc));
        return;
    }
    link_flush(lk);
}

/* Append r to lk: its bytes go out with the next write. */
static void
link_send(struct fwd_link *lk, struct fwd_req *r)
{
    r->next = NULL;
    if (lk->tail) {
        lk->tail->next = r;
    } else {
        lk->head = r;
    }
    lk->tail = r;
    snprintf(r->to_ip, sizeof(r->to_ip), "%s", lk->ip);
    r->to_port = lk->port;
    r->sent_ms = mono_ms();
    buf_append(&lk->out, r->bytes, r->len);
    link_flush(lk);
}

/* A request of the link itself, sent before any other. */
static void
link_preamble(struct fwd_link *lk, const char *bytes, size_t len)
{
    struct fwd_req *r = xcalloc(1, sizeof(*r));
    r->fw = lk->fw;
    r->proto = lk->proto;
    r->bytes = xmalloc(len);
    memcpy(r->bytes, bytes, len);
    r->len = len;
    r->t0_us = clock_mono_us();
    lk->fw->outstanding++;
    link_send(lk, r);
}

static void
link_start(struct fwd_link *lk)
{
    const char *tok = server.auth_tokens ? server.auth_tokens[0] : NULL;
    struct buf b;
    buf_init(&b);
    if (lk->proto == FWD_NATIVE) {
        if (tok != NULL) {
            size_t n = strlen(tok);
            buf_appendstr(&b, "AUTH ");
            char *w = buf_reserve(&b, text_quoted_len(tok, n));
            b.len += text_quote(tok, n, w);
            buf_append(&b, "\r\n", 2);
            link_preamble(lk, b.data, b.len);
            buf_reset(&b, 0);
        }
        link_preamble(lk, "PEER\r\n", 6);
    } else {
        if (tok != NULL) {
            buf_appendstr(&b, "*2\r\n");
            resp_write_bulk(&b, "AUTH", 4);
            resp_write_bulk(&b, tok, strlen(tok));
            link_preamble(lk, b.data, b.len);
            buf_reset(&b, 0);
        }
        if (lk->proto == FWD_RESP3) {
            link_preamble(lk, "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", 22);
        }
    }
    buf_deinit(&b);
}

static struct fwd_link *
link_get(struct fwd_worker *fw, enum fwd_proto proto, const char *ip, uint16_t port)
{
    for (struct fwd_link *lk = fw->links; lk; lk = lk->next) {
        if (lk->proto == proto && lk->port == port && strcmp(lk->ip, ip) == 0) {
            return lk;
        }
    }
    struct fwd_link *lk = xcalloc(1, sizeof(*lk));
    lk->fw = fw;
    lk->proto = proto;
    snprintf(lk->ip, sizeof(lk->ip), "%s", ip);
    lk->port = port;
    buf_init(&lk->out);
    buf_init(&lk->wbuf);
    buf_init(&lk->in);
    uv_tcp_init(&fw->w->loop, &lk->tcp);
    fw->handles++;
    lk->next = fw->links;
    fw->links = lk;
    struct sockaddr_in sa;
    int rc = uv_ip4_addr(ip, port, &sa);
    if (rc == 0) {
        lk->creq.data = lk;
        rc = uv_tcp_connect(&lk->creq, &lk->tcp, (const struct sockaddr *)&sa, on_link_connected);
    }
    if (rc < 0) {
        /* its requests fail once the handle has closed (never inline) */
        link_fail(lk, uv_strerror(rc));
        return lk;
    }
    link_start(lk);
    return lk;
}

/* ---- routing -------------------------------------------------------------- */

/* The address of slot's primary for proto, false when it has none. */
static bool
owner_of(enum fwd_proto proto, unsigned slot, const char **ip, uint16_t *port)
{
    const struct topo_view *v = cluster_view();
    if (v == NULL || v->nvb == 0) {
        return false;
    }
    uint16_t p = topo_view_primary(v, slot);
    if (p == TOPO_VIEW_NONE) {
        return false;
    }
    const struct topo_node *n = &v->nodes[p];
    *ip = n->ip;
    *port = proto == FWD_NATIVE ? n->port : n->resp_port;
    return *port != 0;
}

/* Send r to the current owner of its slot (or fail it). */
static void
route(struct fwd_req *r)
{
    const char *ip;
    uint16_t port;
    if (!owner_of(r->proto, r->slot, &ip, &port)) {
        req_fail(r, "CLUSTERDOWN Hash slot not served");
        return;
    }
    /* a link that failed at once (closing) fails r from its close
     * callback with the others it holds: never inline */
    link_send(link_get(r->fw, r->proto, ip, port), r);
}

/* Waiting requests whose owner changed or whose back-off ended go out
 * again; when `all_due` (the tick), those past the timeout are failed. */
static void
run_waiting(struct fwd_worker *fw, bool tick)
{
    if (fw->waiting == NULL) {
        return;
    }
    int64_t now = mono_ms(), limit = timeout_ms();
    struct fwd_req *list = fw->waiting, *keep = NULL;
    fw->waiting = NULL;
    while (list) {
        struct fwd_req *r = list;
        list = r->next;
        const char *ip;
        uint16_t port;
        bool moved = owner_of(r->proto, r->slot, &ip, &port) &&
                     (port != r->to_port || strcmp(ip, r->to_ip) != 0);
        if (now - r->t0_us / 1000 >= limit) {
            req_fail(r, "%sforward timed out: the slot's owner kept refusing it",
                     r->proto == FWD_NATIVE ? "" : "ERR ");
        } else if (moved || (tick && now >= r->retry_ms)) {
            route(r);
        } else {
            r->next = keep;
            keep = r;
        }
    }
    /* route() may have queued new waiters: keep both */
    while (keep) {
        struct fwd_req *r = keep;
        keep = r->next;
        r->next = fw->waiting;
        fw->waiting = r;
    }
}

static void
on_tick(uv_timer_t *t)
{
    struct fwd_worker *fw = t->data;
    run_waiting(fw, true);
    /* a destination that stopped answering */
    int64_t now = mono_ms(), limit = timeout_ms();
    for (struct fwd_link *lk = fw->links, *next; lk; lk = next) {
        next = lk->next;
        if (lk->head && now - lk->head->sent_ms >= limit) {
            link_fail(lk, "no reply within cluster.forward_timeout_ms");
        }
    }
    if (fw->outstanding == 0) {
        uv_timer_stop(&fw->tick);
        fw->tick_on = false;
    }
}

static void
ensure_tick(struct fwd_worker *fw)
{
    if (!fw->tick_on && !fw->closed) {
        uv_timer_start(&fw->tick, on_tick, FWD_TICK_MS, FWD_TICK_MS);
        fw->tick_on = true;
    }
}

/* ---- the interface -------------------------------------------------------- */

static struct fwd_worker *
fwd_of(struct worker *w)
{
    if (w->fwd == NULL) {
        struct fwd_worker *fw = xcalloc(1, sizeof(*fw));
        fw->w = w;
        uv_timer_init(&w->loop, &fw->tick);
        fw->tick.data = fw;
        fw->handles = 1;
        w->fwd = fw;
    }
    return w->fwd;
}

int
fwd_submit(struct client *c, enum fwd_proto proto, unsigned slot, const char *req, size_t len,
           fwd_done_fn *done, void *arg)
{
    const char *ip;
    uint16_t port;
    if (!owner_of(proto, slot, &ip, &port)) {
        return -1;
    }
    struct conn *cn = (struct conn *)((char *)c - offsetof(struct conn, c));
    if (cn->w->drained) {
        return -1; /* stopping: its links are closed (fwd_close) */
    }
    struct fwd_worker *fw = fwd_of(cn->w);
    struct fwd_req *r = xcalloc(1, sizeof(*r));
    r->fw = fw;
    r->proto = proto;
    r->slot = slot;
    r->done = done;
    r->arg = arg;
    r->bytes = xmalloc(len);
    memcpy(r->bytes, req, len);
    r->len = len;
    r->t0_us = clock_mono_us();
    fw->outstanding++;
    ensure_tick(fw);
    route(r);
    return 0;
}

void
fwd_wake(struct worker *w)
{
    if (w->fwd != NULL) {
        run_waiting(w->fwd, false);
    }
}

static void
fw_handle_closed(struct fwd_worker *fw)
{
    if (--fw->handles == 0) {
        free(fw);
    }
}

static void
on_tick_closed(uv_handle_t *h)
{
    fw_handle_closed(h->data);
}

void
fwd_close(struct worker *w)
{
    struct fwd_worker *fw = w->fwd;
    if (fw == NULL || fw->closed) {
        return;
    }
    fw->closed = true;
    while (fw->links) {
        link_fail(fw->links, "the server is stopping");
    }
    while (fw->waiting) {
        struct fwd_req *r = fw->waiting;
        fw->waiting = r->next;
        req_fail(r, "%sthe server is stopping", r->proto == FWD_NATIVE ? "" : "ERR ");
    }
    uv_timer_stop(&fw->tick);
    w->fwd = NULL;
    uv_close((uv_handle_t *)&fw->tick, on_tick_closed);
}
