/*
 * test_bus.c -- the cluster bus on loopback, in one libuv loop: requests and
 * replies (at once and later), a call to a closed port, a timeout, an
 * oversized frame, and a stream of frames in order with replies coming back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "cluster/bus.h"

struct srv {
    struct bus_conn *held;
    uint32_t held_reqid;
    unsigned requests;
    unsigned stream_frames;
    uint32_t last_seq;
    bool in_order;
};

static void
handler(void *ctx, struct bus_conn *from, uint32_t reqid, uint8_t type, const uint8_t *p, size_t n)
{
    struct srv *s = ctx;
    s->requests++;
    if (type == 1) { /* echo at once */
        bus_reply(from, reqid, 0x81, p, n);
    } else if (type == 2) { /* answer later */
        bus_conn_hold(from);
        s->held = from;
        s->held_reqid = reqid;
    } else if (type == 3) { /* a stream frame: u32 seq; every 100th is acknowledged */
        uint32_t seq;
        memcpy(&seq, p, 4);
        s->in_order &= seq == s->last_seq + 1;
        s->last_seq = seq;
        s->stream_frames++;
        if (seq % 100 == 0) {
            bus_reply(from, 0, 0x83, p, 4);
        }
    }
    /* type 4: never answered */
}

struct result {
    int calls;
    int status;
    uint8_t type;
    char data[64];
};

static void
on_resp(void *arg, int status, uint8_t type, const uint8_t *p, size_t n)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
    r->type = type;
    if (p != NULL && n < sizeof(r->data)) {
        memcpy(r->data, p, n);
        r->data[n] = '\0';
    }
}

static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    uv_ip4_addr("127.0.0.1", 0, &sa);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static void
run_until(uv_loop_t *loop, const int *flag, int want)
{
    for (int i = 0; i < 2000 && *flag < want; i++) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

/* A loop with a bus listening on a free loopback port. */
struct rig {
    uv_loop_t loop;
    struct srv s;
    int port;
    char addr[64];
    struct bus *b;
};

static void
rig_up(struct rig *g)
{
    char err[256];
    memset(g, 0, sizeof(*g));
    uv_loop_init(&g->loop);
    g->s.in_order = true;
    g->port = free_port();
    g->b = bus_listen(&g->loop, "127.0.0.1", g->port, handler, &g->s, err, sizeof(err));
    assert_non_null(g->b);
    snprintf(g->addr, sizeof(g->addr), "127.0.0.1:%d", g->port);
}

/* Close what is left and check that no handle leaked. */
static void
rig_down(uv_loop_t *loop)
{
    while (uv_run(loop, UV_RUN_NOWAIT)) {
    }
    assert_int_equal(uv_loop_close(loop), 0);
}

static void
test_calls(void **state)
{
    (void)state;
    struct rig g;
    rig_up(&g);
    uv_loop_t *loop = &g.loop;
    struct srv *sp = &g.s;
    const char *addr = g.addr;
    struct bus *b = g.b;

    struct result r = {0};
    assert_int_equal(bus_call(loop, addr, 1, "hello", 5, 2000, on_resp, &r), 0);
    run_until(loop, &r.calls, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.type, 0x81);
    assert_string_equal(r.data, "hello");

    /* Answered later, through a held connection. */
    struct result later = {0};
    assert_int_equal(bus_call(loop, addr, 2, "", 0, 2000, on_resp, &later), 0);
    for (int i = 0; i < 200 && sp->held == NULL; i++) {
        uv_run(loop, UV_RUN_ONCE);
    }
    assert_non_null(sp->held);
    assert_int_equal(later.calls, 0);
    bus_reply(sp->held, sp->held_reqid, 0x82, "done", 4);
    bus_conn_release(sp->held);
    run_until(loop, &later.calls, 1);
    assert_int_equal(later.status, 0);
    assert_string_equal(later.data, "done");

    /* Never answered: the timeout reports once. */
    struct result to = {0};
    assert_int_equal(bus_call(loop, addr, 4, "", 0, 100, on_resp, &to), 0);
    run_until(loop, &to.calls, 1);
    assert_int_equal(to.calls, 1);
    assert_int_equal(to.status, UV_ETIMEDOUT);

    /* Nobody listening. */
    struct result refused = {0};
    char closed[64];
    snprintf(closed, sizeof(closed), "127.0.0.1:%d", free_port());
    assert_int_equal(bus_call(loop, closed, 1, "x", 1, 2000, on_resp, &refused), 0);
    run_until(loop, &refused.calls, 1);
    assert_int_equal(refused.status, UV_ECONNREFUSED);

    /* Not an IPv4 literal: refused at once, no callback. */
    struct result bad = {0};
    assert_true(bus_call(loop, "localhost:1", 1, "x", 1, 100, on_resp, &bad) < 0);
    assert_true(bus_call(loop, "127.0.0.1", 1, "x", 1, 100, on_resp, &bad) < 0);
    assert_int_equal(bad.calls, 0);

    bus_close(b);
    rig_down(loop);
}

/* A frame that announces more than BUS_MAX_FRAME closes the connection; the
 * server keeps serving others. */
static void
test_oversized_frame(void **state)
{
    (void)state;
    struct rig g;
    rig_up(&g);
    uv_loop_t *loop = &g.loop;
    struct srv *sp = &g.s;
    const char *addr = g.addr;
    struct bus *b = g.b;

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", g.port, &sa);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    uint8_t hdr[9] = {0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, 0};
    assert_int_equal(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
    for (int i = 0; i < 50; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    char c;
    assert_int_equal(read(fd, &c, 1), 0); /* closed by the server */
    close(fd);
    assert_int_equal(sp->requests, 0);

    struct result r = {0};
    assert_int_equal(bus_call(loop, addr, 1, "ok", 2, 2000, on_resp, &r), 0);
    run_until(loop, &r.calls, 1);
    assert_string_equal(r.data, "ok");
    bus_close(b);
    rig_down(loop);
}

struct sres {
    int acks;
    uint32_t last_ack;
    int errors;
};

static void
on_stream(void *arg, int status, uint8_t type, const uint8_t *p, size_t n)
{
    struct sres *r = arg;
    if (status != 0) {
        r->errors++;
        return;
    }
    assert_int_equal(type, 0x83);
    assert_int_equal(n, 4);
    memcpy(&r->last_ack, p, 4);
    r->acks++;
}

static void
test_stream(void **state)
{
    (void)state;
    struct rig g;
    rig_up(&g);
    uv_loop_t *loop = &g.loop;
    struct srv *sp = &g.s;
    const char *addr = g.addr;
    struct bus *b = g.b;
    struct sres r = {0};
    struct bus_stream *st = bus_stream_open(loop, addr, on_stream, &r);
    assert_non_null(st);
    /* Sent before the connection is up, then after: all arrive, in order. */
    for (uint32_t seq = 1; seq <= 10000; seq++) {
        bus_stream_send(st, 3, &seq, 4);
        if (seq == 5000) {
            for (int i = 0; i < 20; i++) {
                uv_run(loop, UV_RUN_NOWAIT);
            }
        }
    }
    assert_true(bus_stream_queued(st) > 0);
    run_until(loop, &r.acks, 100);
    assert_int_equal(r.acks, 100);
    assert_int_equal(r.last_ack, 10000);
    assert_int_equal(sp->stream_frames, 10000);
    assert_true(sp->in_order);
    assert_int_equal(bus_stream_queued(st), 0);
    assert_int_equal(r.errors, 0);

    /* The server goes away: the stream reports once. */
    bus_close(b);
    int e0 = r.errors;
    for (int i = 0; i < 200 && r.errors == e0; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(r.errors, 1);
    bus_stream_close(st);
    rig_down(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_oversized_frame),
        cmocka_unit_test(test_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
