/*
 * bus.c -- the cluster bus. See bus.h.
 */
#include "cluster/bus.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/mem.h"

#define HDR 9 /* u32 length, u8 type, u32 request id */

static _Atomic uint64_t frames_sent, frames_received;

void
bus_counts(uint64_t *sent, uint64_t *received)
{
    *sent = atomic_load_explicit(&frames_sent, memory_order_relaxed);
    *received = atomic_load_explicit(&frames_received, memory_order_relaxed);
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
frame(struct buf *out, uint8_t type, uint32_t reqid, const void *p, size_t n)
{
    atomic_fetch_add_explicit(&frames_sent, 1, memory_order_relaxed);
    uint8_t h[HDR];
    put_u32(h, (uint32_t)(n + 5));
    h[4] = type;
    put_u32(h + 5, reqid);
    buf_append(out, h, HDR);
    buf_append(out, p, n);
}

/* A whole frame at the front of in: its total size, 0 if incomplete, -1 if
 * oversized or too short to be one. */
static long
frame_len(const struct buf *in)
{
    if (buf_unread(in) < 4) {
        return 0;
    }
    uint32_t len = get_u32((const uint8_t *)buf_rptr(in));
    if (len < 5 || len > BUS_MAX_FRAME) {
        return -1;
    }
    return buf_unread(in) >= (size_t)len + 4 ? (long)len + 4 : 0;
}

int
bus_parse_addr(const char *addr, struct sockaddr_in *out)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon - addr >= 64) {
        return UV_EINVAL;
    }
    char ip[64];
    memcpy(ip, addr, (size_t)(colon - addr));
    ip[colon - addr] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) {
        return UV_EINVAL;
    }
    return uv_ip4_addr(ip, (int)port, out);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static _Thread_local char slab[64 * 1024];
    (void)h, (void)hint;
    b->base = slab;
    b->len = sizeof(slab);
}

/* ---- server side ------------------------------------------------------------- */

struct bus {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    bus_handler_fn *fn;
    void *ctx;
    struct bus_conn *conns;
    bool closing;
};

struct bus_conn {
    uv_tcp_t tcp;
    struct bus *bus;
    struct buf in;
    int refs;          /* the socket's own + holds */
    bool closed;
    void *data;        /* bus_conn_set_data */
    void (*data_free)(void *);
    struct bus_conn *prev, *next;
};

struct wreq {
    uv_write_t w;
    struct buf data;
};

static void
on_written(uv_write_t *w, int status)
{
    (void)status;
    struct wreq *q = (struct wreq *)w;
    buf_deinit(&q->data);
    free(q);
}

static int
send_buf(uv_stream_t *s, struct buf *data)
{
    struct wreq *q = xcalloc(1, sizeof(*q));
    q->data = *data; /* taken */
    buf_init(data);
    uv_buf_t b = uv_buf_init(q->data.data, (unsigned)q->data.len);
    int rv = uv_write(&q->w, s, &b, 1, on_written);
    if (rv != 0) {
        buf_deinit(&q->data);
        free(q);
    }
    return rv;
}

static void
conn_unref(struct bus_conn *c)
{
    if (--c->refs == 0) {
        if (c->data_free) {
            c->data_free(c->data);
        }
        buf_deinit(&c->in);
        free(c);
    }
}

void *
bus_conn_data(const struct bus_conn *c)
{
    return c->data;
}

void
bus_conn_set_data(struct bus_conn *c, void *data, void (*free_fn)(void *))
{
    c->data = data;
    c->data_free = free_fn;
}

static void
on_conn_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void
conn_close(struct bus_conn *c)
{
    if (c->closed) {
        return;
    }
    c->closed = true;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        c->bus->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

void
bus_conn_hold(struct bus_conn *c)
{
    c->refs++;
}

void
bus_conn_release(struct bus_conn *c)
{
    conn_unref(c);
}

void
bus_reply(struct bus_conn *c, uint32_t reqid, uint8_t type, const void *p, size_t n)
{
    if (c->closed) {
        return;
    }
    struct buf out;
    buf_init(&out);
    frame(&out, type, reqid, p, n);
    if (send_buf((uv_stream_t *)&c->tcp, &out) != 0) {
        conn_close(c);
    }
}

static void
on_server_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct bus_conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    buf_append(&c->in, b->base, (size_t)nread);
    long len;
    /* A handler may close nothing of ours: the connection stays until EOF. */
    c->refs++;
    while (!c->closed && (len = frame_len(&c->in)) != 0) {
        if (len < 0) {
            conn_close(c);
            break;
        }
        const uint8_t *f = (const uint8_t *)buf_rptr(&c->in);
        atomic_fetch_add_explicit(&frames_received, 1, memory_order_relaxed);
        c->bus->fn(c->bus->ctx, c, get_u32(f + 5), f[4], f + HDR, (size_t)len - HDR);
        buf_consume(&c->in, (size_t)len);
    }
    conn_unref(c);
}

static void
on_accept(uv_stream_t *server, int status)
{
    struct bus *b = server->data;
    if (status != 0 || b->closing) {
        return;
    }
    struct bus_conn *c = xcalloc(1, sizeof(*c));
    c->bus = b;
    c->refs = 1;
    buf_init(&c->in);
    uv_tcp_init(b->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = b->conns;
    if (b->conns) {
        b->conns->prev = c;
    }
    b->conns = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_server_read);
}

struct bus *
bus_listen(uv_loop_t *loop, const char *ip, int port, bus_handler_fn *fn, void *ctx, char *err,
           size_t errlen)
{
    struct sockaddr_in sa;
    int rv = uv_ip4_addr(ip, port, &sa);
    if (rv != 0) {
        snprintf(err, errlen, "cluster bus: %s is not an IPv4 address", ip);
        return NULL;
    }
    struct bus *b = xcalloc(1, sizeof(*b));
    b->loop = loop;
    b->fn = fn;
    b->ctx = ctx;
    uv_tcp_init(loop, &b->tcp);
    b->tcp.data = b;
    rv = uv_tcp_bind(&b->tcp, (const struct sockaddr *)&sa, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&b->tcp, 64, on_accept);
    }
    if (rv != 0) {
        snprintf(err, errlen, "cluster bus: cannot listen on %s:%d: %s", ip, port, uv_strerror(rv));
        b->closing = true;
        uv_close((uv_handle_t *)&b->tcp, (uv_close_cb)free);
        return NULL;
    }
    return b;
}

static void
on_bus_closed(uv_handle_t *h)
{
    free(h->data);
}

void
bus_close(struct bus *b)
{
    b->closing = true;
    while (b->conns) {
        conn_close(b->conns);
    }
    uv_close((uv_handle_t *)&b->tcp, on_bus_closed);
}

/* ---- client side ------------------------------------------------------------- */

struct call {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t timer;
    struct buf out, in;
    bus_resp_fn *fn;
    void *arg;
    int pending_closes;
    int connect_err; /* uv_tcp_connect refused at once */
    bool done;
};

static void
on_call_closed(uv_handle_t *h)
{
    struct call *k = h->data;
    if (--k->pending_closes == 0) {
        buf_deinit(&k->out);
        buf_deinit(&k->in);
        free(k);
    }
}

/* Report (once) and close both handles. */
static void
call_finish(struct call *k, int status, uint8_t type, const uint8_t *p, size_t n)
{
    if (k->done) {
        return;
    }
    k->done = true;
    k->fn(k->arg, status, type, p, n);
    uv_timer_stop(&k->timer);
    uv_close((uv_handle_t *)&k->timer, on_call_closed);
    uv_close((uv_handle_t *)&k->tcp, on_call_closed);
}

static void
on_call_timeout(uv_timer_t *t)
{
    struct call *k = t->data;
    call_finish(k, k->connect_err ? k->connect_err : UV_ETIMEDOUT, 0, NULL, 0);
}

static void
on_call_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct call *k = s->data;
    if (nread < 0) {
        call_finish(k, (int)nread, 0, NULL, 0);
        return;
    }
    buf_append(&k->in, b->base, (size_t)nread);
    long len = frame_len(&k->in);
    if (len < 0) {
        call_finish(k, UV_EPROTO, 0, NULL, 0);
    } else if (len > 0) {
        const uint8_t *f = (const uint8_t *)buf_rptr(&k->in);
        atomic_fetch_add_explicit(&frames_received, 1, memory_order_relaxed);
        call_finish(k, 0, f[4], f + HDR, (size_t)len - HDR);
    }
}

static void
on_call_connected(uv_connect_t *req, int status)
{
    struct call *k = req->data;
    if (k->done) {
        return;
    }
    if (status != 0) {
        call_finish(k, status, 0, NULL, 0);
        return;
    }
    uv_tcp_nodelay(&k->tcp, 1);
    int rv = send_buf((uv_stream_t *)&k->tcp, &k->out);
    if (rv == 0) {
        rv = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_call_read);
    }
    if (rv != 0) {
        call_finish(k, rv, 0, NULL, 0);
    }
}

int
bus_call(uv_loop_t *loop, const char *addr, uint8_t type, const void *p, size_t n,
         unsigned timeout_ms, bus_resp_fn *fn, void *arg)
{
    struct sockaddr_in sa;
    int rv = bus_parse_addr(addr, &sa);
    if (rv != 0) {
        return rv;
    }
    struct call *k = xcalloc(1, sizeof(*k));
    k->fn = fn;
    k->arg = arg;
    buf_init(&k->out);
    buf_init(&k->in);
    frame(&k->out, type, 1, p, n);
    uv_tcp_init(loop, &k->tcp);
    uv_timer_init(loop, &k->timer);
    k->tcp.data = k->timer.data = k->creq.data = k;
    k->pending_closes = 2;
    uv_timer_start(&k->timer, on_call_timeout, timeout_ms, 0);
    rv = uv_tcp_connect(&k->creq, &k->tcp, (const struct sockaddr *)&sa, on_call_connected);
    if (rv != 0) {
        /* Report from the loop, as always. */
        k->connect_err = rv;
        uv_timer_stop(&k->timer);
        uv_timer_start(&k->timer, on_call_timeout, 0, 0);
    }
    return 0;
}

/* ---- streams --------------------------------------------------------------- */

struct bus_stream {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct buf pending;   /* frames before the connection is up */
    struct buf in;
    size_t queued;        /* bytes handed to uv_write, not yet written */
    bool connected, failed, closed;
    bus_resp_fn *fn;
    void *arg;
};

struct swreq {
    uv_write_t w;
    struct bus_stream *s;
    struct buf data;
};

static void
stream_fail(struct bus_stream *s, int status)
{
    if (s->failed || s->closed) {
        return;
    }
    s->failed = true;
    s->fn(s->arg, status, 0, NULL, 0);
}

static void
on_stream_written(uv_write_t *w, int status)
{
    struct swreq *q = (struct swreq *)w;
    if (q->s) {
        q->s->queued -= q->data.len;
        if (status != 0) {
            stream_fail(q->s, status);
        }
    }
    buf_deinit(&q->data);
    free(q);
}

static void
stream_write(struct bus_stream *s, struct buf *data)
{
    struct swreq *q = xcalloc(1, sizeof(*q));
    q->s = s;
    q->data = *data;
    buf_init(data);
    s->queued += q->data.len;
    uv_buf_t b = uv_buf_init(q->data.data, (unsigned)q->data.len);
    int rv = uv_write(&q->w, (uv_stream_t *)&s->tcp, &b, 1, on_stream_written);
    if (rv != 0) {
        s->queued -= q->data.len;
        buf_deinit(&q->data);
        free(q);
        stream_fail(s, rv);
    }
}

static void
on_stream_read(uv_stream_t *t, ssize_t nread, const uv_buf_t *b)
{
    struct bus_stream *s = t->data;
    if (nread < 0) {
        stream_fail(s, (int)nread);
        return;
    }
    buf_append(&s->in, b->base, (size_t)nread);
    long len;
    while (!s->failed && !s->closed && (len = frame_len(&s->in)) != 0) {
        if (len < 0) {
            stream_fail(s, UV_EPROTO);
            return;
        }
        const uint8_t *f = (const uint8_t *)buf_rptr(&s->in);
        atomic_fetch_add_explicit(&frames_received, 1, memory_order_relaxed);
        s->fn(s->arg, 0, f[4], f + HDR, (size_t)len - HDR);
        buf_consume(&s->in, (size_t)len);
    }
}

static void
on_stream_connected(uv_connect_t *req, int status)
{
    struct bus_stream *s = req->data;
    if (s->closed) {
        return;
    }
    if (status != 0) {
        stream_fail(s, status);
        return;
    }
    s->connected = true;
    uv_tcp_nodelay(&s->tcp, 1);
    if (s->pending.len) {
        stream_write(s, &s->pending);
    }
    uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_stream_read);
}

struct bus_stream *
bus_stream_open(uv_loop_t *loop, const char *addr, bus_resp_fn *fn, void *arg)
{
    struct sockaddr_in sa;
    if (bus_parse_addr(addr, &sa) != 0) {
        return NULL;
    }
    struct bus_stream *s = xcalloc(1, sizeof(*s));
    s->fn = fn;
    s->arg = arg;
    buf_init(&s->pending);
    buf_init(&s->in);
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s->creq.data = s;
    if (uv_tcp_connect(&s->creq, &s->tcp, (const struct sockaddr *)&sa, on_stream_connected) != 0) {
        bus_stream_close(s);
        return NULL;
    }
    return s;
}

void
bus_stream_send(struct bus_stream *s, uint8_t type, const void *p, size_t n)
{
    if (s->failed || s->closed) {
        return;
    }
    struct buf f;
    buf_init(&f);
    frame(&f, type, 0, p, n);
    if (s->connected) {
        stream_write(s, &f);
    } else {
        buf_append(&s->pending, f.data, f.len);
        buf_deinit(&f);
    }
}

size_t
bus_stream_queued(const struct bus_stream *s)
{
    return s->connected ? s->queued : s->pending.len;
}

static void
on_stream_closed(uv_handle_t *h)
{
    struct bus_stream *s = h->data;
    buf_deinit(&s->pending);
    buf_deinit(&s->in);
    free(s);
}

void
bus_stream_close(struct bus_stream *s)
{
    s->closed = true;
    uv_close((uv_handle_t *)&s->tcp, on_stream_closed);
}
