/*
 * run.c -- the load engine of crabcache-bench (see bench.h).
 *
 * Each thread owns an epoll instance and a slice of the connections. A
 * connection keeps a ring of the requests it has in flight (their op, key
 * and the time latency is measured from) and a write buffer; replies are
 * parsed straight out of one per-thread read buffer and matched to the ring
 * in order.
 *
 * Closed loop (no --rate): every connection keeps `pipeline` requests in
 * flight, refilling as soon as replies arrive; latency runs from the moment
 * a request was written. Open loop (--rate R): each thread issues its share
 * of R on a fixed schedule, round-robin over its connections, and latency
 * runs from the *intended* send time, so a stalled server shows up as
 * latency instead of silently lowering the offered load (no coordinated
 * omission). Sleeps use epoll_pwait2 with a nanosecond timeout and 1 us
 * timer slack. With --rate-window W, a wake-up also sends what falls due in
 * the next W us (fewer wake-ups); such an early request is timed from its
 * real send time, a late one from its intended time: t = min(due, now).
 *
 * Request budgets (--requests) and sequential key numbers are handed out in
 * chunks from one atomic counter, so `--requests N --distribution
 * sequential` touches keys 0..N-1 exactly once. A trace is read by the only
 * thread a trace run has.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/mem.h"

#define RBUF_SIZE (256u * 1024)
#define CLAIM_CHUNK 64
#define MAX_EVENTS 128

enum { OP_GET = 0, OP_SET = 1 };

struct slot {
    int64_t t;      /* latency is measured from here (ns) */
    int64_t key;    /* key index or trace key */
    uint8_t op;
    uint8_t traced; /* a trace GET: a miss triggers a SET */
};

struct shared;

struct bconn {
    int fd;
    int dead;
    int pollout;
    struct bench_parser ps;
    struct bench_rng rng;
    struct buf out;
    struct slot *ring;
    uint32_t mask, head, tail;   /* in flight: tail - head */
    uint64_t claim_next, claim_left;
    int done;                    /* the request budget has nothing left for it */
};

struct bthread {
    struct shared *sh;
    const struct bench_cfg *cfg;
    int index;
    pthread_t tid;
    int epfd;
    struct bconn *conns;
    int nconns;
    char *rbuf;
    int exhausted;               /* no more requests to issue */
    double interval_ns;          /* rate mode: time between sends */
    double next_due;             /* rate mode: intended time of the next send */
    uint64_t rr;                 /* rate mode: next connection */
    int64_t last_activity;
    struct bench_result res;
};

struct shared {
    const struct bench_cfg *cfg;
    const struct addrinfo *addr;
    _Atomic uint64_t claimed;
    atomic_int connect_failed;
    pthread_barrier_t ready, go;
    int64_t start_ns, deadline_ns;
    struct bench_zipf zipf;
    char *value;
    struct bench_trace trace;
    int trace_open;
    int trace_failed;
};

int64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
bench_cfg_defaults(struct bench_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->port = NULL;
    cfg->proto = BENCH_PROTO_RESP;
    cfg->threads = 1;
    cfg->conns = 50;
    cfg->pipeline = 1;
    cfg->set_ratio = 1;
    cfg->get_ratio = 10;
    cfg->keys = 100000;
    cfg->key_prefix = "key:";
    cfg->key_prefix_len = 4;
    cfg->dist = BENCH_DIST_UNIFORM;
    cfg->zipf_s = 0.99;
    cfg->value_size = 16;
    cfg->duration_s = 10.0;
    cfg->requests = 0;
    cfg->rate = 0.0;
    cfg->trace = NULL;
    cfg->trace_fmt = BENCH_TRACE_AUTO;
    cfg->seed = 1;
    cfg->connect_timeout_s = 5.0;
    cfg->drain_timeout_s = 10.0;
}

void
bench_result_init(struct bench_result *r)
{
    memset(r, 0, sizeof(*r));
    bench_hist_init(&r->all);
    bench_hist_init(&r->get);
    bench_hist_init(&r->set);
}

void
bench_result_merge(struct bench_result *dst, const struct bench_result *src)
{
    dst->completed += src->completed;
    dst->gets += src->gets;
    dst->sets += src->sets;
    dst->hits += src->hits;
    dst->misses += src->misses;
    dst->errors += src->errors;
    dst->conn_errors += src->conn_errors;
    dst->timeouts += src->timeouts;
    dst->trace_records += src->trace_records;
    if (dst->first_ns == 0 || (src->first_ns && src->first_ns < dst->first_ns)) {
        dst->first_ns = src->first_ns;
    }
    if (src->last_ns > dst->last_ns) {
        dst->last_ns = src->last_ns;
    }
    if (src->late_ns_max > dst->late_ns_max) {
        dst->late_ns_max = src->late_ns_max;
    }
    bench_hist_merge(&dst->all, &src->all);
    bench_hist_merge(&dst->get, &src->get);
    bench_hist_merge(&dst->set, &src->set);
}

/* ---- connections ---------------------------------------------------------------- */

static void
conn_fail(struct bthread *th, struct bconn *c, const char *why)
{
    if (c->dead) {
        return;
    }
    if (th->res.conn_errors < 3) {
        fprintf(stderr, "crabcache-bench: connection lost: %s\n", why);
    }
    c->dead = 1;
    th->res.conn_errors++;
    close(c->fd);
    c->fd = -1;
    c->head = c->tail;
}

static int
conn_open(struct bthread *th, struct bconn *c)
{
    const struct addrinfo *ai = th->sh->addr;
    c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (c->fd < 0) {
        return -errno;
    }
    struct timeval tv;
    tv.tv_sec = (time_t)th->cfg->connect_timeout_s;
    tv.tv_usec = (suseconds_t)((th->cfg->connect_timeout_s - (double)tv.tv_sec) * 1e6);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int e = errno;
        close(c->fd);
        c->fd = -1;
        return -e;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(th->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        int e = errno;
        close(c->fd);
        c->fd = -1;
        return -e;
    }
    return 0;
}

static void
set_pollout(struct bthread *th, struct bconn *c, int on)
{
    if (c->pollout == on) {
        return;
    }
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(th->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->pollout = on;
}

static void
conn_flush(struct bthread *th, struct bconn *c)
{
    while (!c->dead && buf_unread(&c->out) > 0) {
        ssize_t w = write(c->fd, buf_rptr(&c->out), buf_unread(&c->out));
        if (w > 0) {
            buf_consume(&c->out, (size_t)w);
            continue;
        }
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_pollout(th, c, 1);
            return;
        }
        conn_fail(th, c, w < 0 ? strerror(errno) : "write returned 0");
        return;
    }
    if (!c->dead) {
        set_pollout(th, c, 0);
    }
}

static inline uint32_t
inflight(const struct bconn *c)
{
    return c->tail - c->head;
}

/* Encode one request for key (index or trace key) and push its slot. */
static void
push_request(struct bthread *th, struct bconn *c, int op, int64_t key, int traced, int64_t t)
{
    const struct bench_cfg *cfg = th->cfg;
    char kbuf[BENCH_KEY_MAX + 1];
    size_t klen = cfg->trace ? bench_trace_key_format(kbuf, key)
                             : bench_key_format(kbuf, cfg->key_prefix, cfg->key_prefix_len,
                                               (uint64_t)key);
    char *w = buf_reserve(&c->out, klen + cfg->value_size + BENCH_WIRE_OVERHEAD);
    size_t n = op == OP_SET
                   ? bench_wire_set(cfg->proto, w, kbuf, klen, th->sh->value, cfg->value_size)
                   : bench_wire_get(cfg->proto, w, kbuf, klen);
    c->out.len += n;
    struct slot *s = &c->ring[c->tail & c->mask];
    s->t = t;
    s->key = key;
    s->op = (uint8_t)op;
    s->traced = (uint8_t)traced;
    c->tail++;
}

/* Take the next request number from the shared budget; -1 when exhausted. */
static int
claim(struct bthread *th, struct bconn *c, uint64_t *seq)
{
    if (c->claim_left == 0) {
        uint64_t limit = th->cfg->requests;
        uint64_t base = atomic_fetch_add(&th->sh->claimed, CLAIM_CHUNK);
        if (limit && base >= limit) {
            return -1;
        }
        c->claim_next = base;
        c->claim_left = limit && limit - base < CLAIM_CHUNK ? limit - base : CLAIM_CHUNK;
    }
    *seq = c->claim_next++;
    c->claim_left--;
    return 0;
}

/* Issue the next request of the workload; -1 when there is none left. */
static int
next_request(struct bthread *th, struct bconn *c, int64_t t)
{
    const struct bench_cfg *cfg = th->cfg;
    struct shared *sh = th->sh;
    if (cfg->trace) {
        int64_t key;
        if (!sh->trace_open || (cfg->requests && th->res.trace_records >= cfg->requests)) {
            return -1;
        }
        int r = bench_trace_next(&sh->trace, &key);
        if (r <= 0) {
            if (r < 0 || bench_trace_close(&sh->trace) < 0) {
                fprintf(stderr, "crabcache-bench: %s\n", sh->trace.err);
                sh->trace_failed = 1;
                bench_trace_close(&sh->trace);
            }
            sh->trace_open = 0;
            return -1;
        }
        th->res.trace_records++;
        push_request(th, c, OP_GET, key, 1, t);
        return 0;
    }
    uint64_t seq = 0;
    if ((cfg->requests || cfg->dist == BENCH_DIST_SEQUENTIAL) && claim(th, c, &seq) < 0) {
        return -1;
    }
    int op = OP_GET;
    if (cfg->set_ratio && (!cfg->get_ratio ||
                           bench_rng_below(&c->rng, cfg->set_ratio + cfg->get_ratio) <
                               cfg->set_ratio)) {
        op = OP_SET;
    }
    uint64_t key;
    switch (cfg->dist) {
    case BENCH_DIST_ZIPF:
        key = bench_zipf_next(&sh->zipf, &c->rng) - 1;
        break;
    case BENCH_DIST_SEQUENTIAL:
        key = seq % cfg->keys;
        break;
    default:
        key = bench_rng_below(&c->rng, cfg->keys);
        break;
    }
    push_request(th, c, op, (int64_t)key, 0, t);
    return 0;
}

/* Closed loop: top the connection up to `pipeline` requests in flight. */
static void
refill(struct bthread *th, struct bconn *c, int64_t now)
{
    while (!th->exhausted && !c->done && inflight(c) < (uint32_t)th->cfg->pipeline) {
        if (next_request(th, c, now) < 0) {
            c->done = 1;
        }
    }
}

/* One reply of class cls arrived on c at time now. */
static void
complete(struct bthread *th, struct bconn *c, int cls, int64_t now)
{
    if (inflight(c) == 0) {
        conn_fail(th, c, "reply without a request");
        return;
    }
    struct slot s = c->ring[c->head & c->mask];
    c->head++;
    uint64_t lat = now > s.t ? (uint64_t)(now - s.t) : 0;
    struct bench_result *r = &th->res;
    r->completed++;
    r->last_ns = now;
    bench_hist_record(&r->all, lat);
    if (cls == BENCH_REPLY_ERROR) {
        r->errors++;
    }
    if (s.op == OP_SET) {
        r->sets++;
        bench_hist_record(&r->set, lat);
        return;
    }
    r->gets++;
    bench_hist_record(&r->get, lat);
    if (cls == BENCH_REPLY_VALUE) {
        r->hits++;
    } else if (cls == BENCH_REPLY_NULL) {
        r->misses++;
        if (s.traced) {
            push_request(th, c, OP_SET, s.key, 0, now);
        }
    }
}

static void
on_readable(struct bthread *th, struct bconn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, th->rbuf, RBUF_SIZE);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                conn_fail(th, c, strerror(errno));
            }
            break;
        }
        if (n == 0) {
            conn_fail(th, c, "closed by the server");
            return;
        }
        int64_t now = bench_now_ns();
        th->last_activity = now;
        const char *p = th->rbuf, *end = th->rbuf + n;
        while (p < end) {
            int r = bench_parser_next(&c->ps, &p, end);
            if (r == BENCH_REPLY_MORE) {
                break;
            }
            if (r == BENCH_REPLY_BAD) {
                conn_fail(th, c, "malformed reply");
                return;
            }
            complete(th, c, r, now);
            if (c->dead) {
                return;
            }
        }
        if (th->cfg->rate <= 0.0) {
            if (th->sh->deadline_ns && now >= th->sh->deadline_ns) {
                th->exhausted = 1;
            }
            refill(th, c, now);
        }
        if ((size_t)n < RBUF_SIZE) {
            break;
        }
    }
    conn_flush(th, c);
}

/* Open loop: send everything due by now. */
static void
rate_issue(struct bthread *th, int64_t now)
{
    const struct bench_cfg *cfg = th->cfg;
    uint32_t cap = (uint32_t)cfg->pipeline;
    double horizon = (double)now + th->cfg->rate_window_us * 1000.0;
    while (!th->exhausted && th->next_due <= horizon) {
        int64_t due = (int64_t)th->next_due;
        if (th->sh->deadline_ns && due >= th->sh->deadline_ns) {
            th->exhausted = 1;
            break;
        }
        struct bconn *c = NULL;
        for (int i = 0; i < th->nconns; i++) {
            struct bconn *cand = &th->conns[(th->rr + (uint64_t)i) % (uint64_t)th->nconns];
            if (!cand->dead && !cand->done && inflight(cand) < cap) {
                c = cand;
                th->rr += (uint64_t)i + 1;
                break;
            }
        }
        if (!c) {
            break;   /* every connection is full: stays due, latency keeps counting */
        }
        double late = (double)(now - due);
        if (late > 0 && late > th->res.late_ns_max) {
            th->res.late_ns_max = late;
        }
        if (next_request(th, c, due < now ? due : now) < 0) {
            c->done = 1;
            continue;
        }
        th->next_due += th->interval_ns;
    }
    for (int i = 0; i < th->nconns; i++) {
        if (buf_unread(&th->conns[i].out) > 0 && !th->conns[i].pollout) {
            conn_flush(th, &th->conns[i]);
        }
    }
}

/* Returns whether requests are in flight; *live counts usable connections,
 * *issuing those that may still send. */
static int
live_inflight(const struct bthread *th, int *live, int *issuing)
{
    int busy = 0;
    *live = 0;
    *issuing = 0;
    for (int i = 0; i < th->nconns; i++) {
        if (!th->conns[i].dead) {
            (*live)++;
            if (!th->conns[i].done) {
                (*issuing)++;
            }
            if (inflight(&th->conns[i]) > 0) {
                busy = 1;
            }
        }
    }
    return busy;
}

static void
thread_loop(struct bthread *th)
{
    const struct bench_cfg *cfg = th->cfg;
    struct epoll_event evs[MAX_EVENTS];
    int64_t drain_start = 0;
    int64_t now = th->sh->start_ns;
    th->last_activity = now;
    if (cfg->rate > 0.0) {
        prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);   /* wake within 1 us, not 50 */
        rate_issue(th, now);
    } else {
        for (int i = 0; i < th->nconns; i++) {
            refill(th, &th->conns[i], now);
            conn_flush(th, &th->conns[i]);
        }
    }
    for (;;) {
        now = bench_now_ns();
        if (th->sh->deadline_ns && now >= th->sh->deadline_ns) {
            th->exhausted = 1;
        }
        if (cfg->rate > 0.0) {
            rate_issue(th, now);
        }
        int live, issuing;
        int busy = live_inflight(th, &live, &issuing);
        if (live == 0) {
            break;
        }
        if (issuing == 0) {
            th->exhausted = 1;
        }
        if (th->exhausted && !busy) {
            break;
        }
        if (th->exhausted && drain_start == 0) {
            drain_start = now;
        }
        /* give up on replies that do not come */
        int64_t idle_limit = (int64_t)(cfg->drain_timeout_s * 1e9);
        if ((drain_start && now - drain_start > idle_limit) ||
            (busy && now - th->last_activity > idle_limit)) {
            for (int i = 0; i < th->nconns; i++) {
                if (!th->conns[i].dead) {
                    th->res.timeouts += inflight(&th->conns[i]);
                }
            }
            if (th->res.timeouts) {
                fprintf(stderr, "crabcache-bench: %llu requests unanswered after %.1f s\n",
                        (unsigned long long)th->res.timeouts, cfg->drain_timeout_s);
            }
            break;
        }
        int64_t wait = 100000000;   /* 100 ms: re-check the deadline and idleness */
        if (!th->exhausted && th->sh->deadline_ns && th->sh->deadline_ns - now < wait) {
            wait = th->sh->deadline_ns - now;
        }
        if (cfg->rate > 0.0 && !th->exhausted && (int64_t)th->next_due - now < wait) {
            wait = (int64_t)th->next_due - now;   /* < 0 when all connections are full */
        }
        if (wait < 0) {
            wait = 0;
        }
        struct timespec ts = { .tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000 };
        int n = epoll_pwait2(th->epfd, evs, MAX_EVENTS, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            perror("crabcache-bench: epoll_pwait2");
            break;
        }
        for (int i = 0; i < n; i++) {
            struct bconn *c = evs[i].data.ptr;
            if (c->dead) {
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                on_readable(th, c);
            }
            if (!c->dead && (evs[i].events & EPOLLOUT)) {
                conn_flush(th, c);
            }
        }
    }
}

static void *
thread_main(void *arg)
{
    struct bthread *th = arg;
    struct shared *sh = th->sh;
    for (int i = 0; i < th->nconns; i++) {
        int rc = conn_open(th, &th->conns[i]);
        if (rc < 0) {
            if (atomic_fetch_add(&sh->connect_failed, 1) == 0) {
                fprintf(stderr, "crabcache-bench: cannot connect to %s:%s: %s\n",
                        th->cfg->host, th->cfg->port, strerror(-rc));
            }
            th->conns[i].dead = 1;
            break;
        }
    }
    pthread_barrier_wait(&sh->ready);
    pthread_barrier_wait(&sh->go);   /* main has set start_ns and the deadline */
    if (atomic_load(&sh->connect_failed) == 0) {
        th->res.first_ns = sh->start_ns;
        if (th->cfg->rate > 0.0) {
            double share = th->cfg->rate * th->nconns / th->cfg->conns;
            th->interval_ns = 1e9 / share;
            th->next_due = (double)sh->start_ns + th->interval_ns * th->index / th->cfg->threads;
        }
        thread_loop(th);
    }
    for (int i = 0; i < th->nconns; i++) {
        if (th->conns[i].fd >= 0) {
            close(th->conns[i].fd);
            th->conns[i].fd = -1;
        }
    }
    return NULL;
}

static uint32_t
ring_size(uint32_t need)
{
    uint32_t n = 2;
    while (n < need) {
        n <<= 1;
    }
    return n;
}

int
bench_run(const struct bench_cfg *cfg, struct bench_result *out)
{
    struct shared sh;
    memset(&sh, 0, sizeof(sh));
    sh.cfg = cfg;
    atomic_init(&sh.claimed, 0);
    atomic_init(&sh.connect_failed, 0);
    if (cfg->dist == BENCH_DIST_ZIPF && bench_zipf_init(&sh.zipf, cfg->keys, cfg->zipf_s) < 0) {
        fprintf(stderr, "crabcache-bench: bad zipf parameters\n");
        return -1;
    }
    if (cfg->trace) {
        if (bench_trace_open(&sh.trace, cfg->trace, cfg->trace_fmt) < 0) {
            fprintf(stderr, "crabcache-bench: %s\n", sh.trace.err);
            return -1;
        }
        sh.trace_open = 1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(cfg->host, cfg->port, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "crabcache-bench: cannot resolve %s:%s: %s\n", cfg->host, cfg->port,
                gai_strerror(gai));
        if (sh.trace_open) {
            bench_trace_close(&sh.trace);
        }
        return -1;
    }
    sh.addr = res;
    sh.value = xmalloc(cfg->value_size + 1);
    for (size_t i = 0; i < cfg->value_size; i++) {
        sh.value[i] = (char)('a' + i % 26);
    }
    pthread_barrier_init(&sh.ready, NULL, (unsigned)cfg->threads + 1);
    pthread_barrier_init(&sh.go, NULL, (unsigned)cfg->threads + 1);

    int nth = cfg->threads;
    struct bthread *ths = xcalloc((size_t)nth, sizeof(*ths));
    uint32_t rsize = ring_size((uint32_t)cfg->pipeline + 2);
    for (int t = 0; t < nth; t++) {
        struct bthread *th = &ths[t];
        th->sh = &sh;
        th->cfg = cfg;
        th->index = t;
        th->epfd = epoll_create1(EPOLL_CLOEXEC);
        th->nconns = cfg->conns / nth + (t < cfg->conns % nth ? 1 : 0);
        th->conns = xcalloc((size_t)th->nconns, sizeof(struct bconn));
        th->rbuf = xmalloc(RBUF_SIZE);
        bench_result_init(&th->res);
        for (int i = 0; i < th->nconns; i++) {
            struct bconn *c = &th->conns[i];
            c->fd = -1;
            bench_parser_init(&c->ps, cfg->proto);
            bench_rng_seed(&c->rng, cfg->seed * 0x100000001b3ULL + (uint64_t)t * 65536 + (uint64_t)i);
            buf_init(&c->out);
            c->ring = xcalloc(rsize, sizeof(struct slot));
            c->mask = rsize - 1;
        }
    }
    for (int t = 0; t < nth; t++) {
        if (pthread_create(&ths[t].tid, NULL, thread_main, &ths[t]) != 0) {
            fprintf(stderr, "crabcache-bench: cannot start thread\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&sh.ready);
    sh.start_ns = bench_now_ns();
    if (cfg->duration_s > 0) {
        sh.deadline_ns = sh.start_ns + (int64_t)(cfg->duration_s * 1e9);
    }
    pthread_barrier_wait(&sh.go);
    bench_result_init(out);
    for (int t = 0; t < nth; t++) {
        pthread_join(ths[t].tid, NULL);
        bench_result_merge(out, &ths[t].res);
    }
    int failed = atomic_load(&sh.connect_failed) != 0 || sh.trace_failed;
    for (int t = 0; t < nth; t++) {
        for (int i = 0; i < ths[t].nconns; i++) {
            buf_deinit(&ths[t].conns[i].out);
            free(ths[t].conns[i].ring);
        }
        free(ths[t].conns);
        free(ths[t].rbuf);
        close(ths[t].epfd);
    }
    free(ths);
    free(sh.value);
    freeaddrinfo(res);
    if (sh.trace_open) {
        bench_trace_close(&sh.trace);
    }
    pthread_barrier_destroy(&sh.ready);
    pthread_barrier_destroy(&sh.go);
    return failed ? -1 : 0;
}
