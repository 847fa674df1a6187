/*
 * worker.c -- worker threads, their listeners and timers, and the registry
 * of all clients (for CLIENT LIST / CLIENT KILL).
 *
 * Each worker binds its own socket per port with SO_REUSEPORT (libuv 1.44
 * has no flag for it, so the socket is made here and handed to uv_tcp_open).
 * The first worker's bind is done before any thread starts, so a port that
 * is taken fails start-up with a clear message.
 *
 * Cron (cron_hz per second, per worker): active expiry and rehashing of the
 * shards this worker looks after (shard i belongs to worker i mod N), idle
 * client timeout and TLS handshake deadline, and its share of the rate
 * limiter's sweep of idle addresses (once a second). CLIENT KILL requests
 * arrive through the wake handle.
 *
 * Listeners per worker: native `port`, `resp_port`, and `tls_port` (TLS,
 * then both protocols as on the native port).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "cmd/clients.h"
#include "cmd/pubsub.h"
#include "core/cmdclock.h"
#include "core/durable.h"
#include "core/server.h"
#include "net/internal.h"
#include "net/tls.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

static struct {
    struct worker *workers;
    unsigned n;
    struct net_options opt;
    pthread_mutex_t reg_lock;
    struct conn *reg_head;
    pthread_mutex_t wake_lock; /* guards `awake` against net_stop */
    unsigned awake;            /* workers whose wake handle may be signalled */
} N = {.reg_lock = PTHREAD_MUTEX_INITIALIZER, .wake_lock = PTHREAD_MUTEX_INITIALIZER};

struct net_shared net_shared;

/* ---- registry ---------------------------------------------------------- */

void
registry_add(struct conn *cn)
{
    pthread_mutex_lock(&N.reg_lock);
    cn->reg_next = N.reg_head;
    cn->reg_prev = NULL;
    if (N.reg_head) {
        N.reg_head->reg_prev = cn;
    }
    N.reg_head = cn;
    pthread_mutex_unlock(&N.reg_lock);
}

void
registry_del(struct conn *cn)
{
    pthread_mutex_lock(&N.reg_lock);
    if (cn->reg_prev) {
        cn->reg_prev->reg_next = cn->reg_next;
    } else if (N.reg_head == cn) {
        N.reg_head = cn->reg_next;
    }
    if (cn->reg_next) {
        cn->reg_next->reg_prev = cn->reg_prev;
    }
    cn->reg_prev = cn->reg_next = NULL;
    pthread_mutex_unlock(&N.reg_lock);
}

static void
client_line(struct buf *out, struct conn *cn, int64_t now)
{
    struct client *c = &cn->c;
    unsigned nsub = __atomic_load_n(&c->ps_nch, __ATOMIC_RELAXED);
    unsigned npsub = __atomic_load_n(&c->ps_npat, __ATOMIC_RELAXED);
    buf_appendf(out,
                "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=0 "
                "sub=%u psub=%u ssub=0 multi=-1 qbuf=%zu qbuf-free=%zu argv-mem=0 "
                "multi-mem=0 rbs=%zu rbp=0 obl=0 oll=0 omem=%zu tot-mem=%zu events=r "
                "cmd=%s user=default redir=-1 resp=%d\n",
                (unsigned long long)c->id, c->addr, c->laddr, c->fd, c->name ? c->name : "",
                (long long)((now - c->ctime_ms) / 1000), (long long)((now - c->last_ms) / 1000),
                nsub | npsub ? "P" : "N", nsub, npsub, buf_unread(&cn->in), cn->in.cap - cn->in.len, cn->in.cap,
                cn->out.cap + cn->wbuf.cap,
                sizeof(*cn) + cn->in.cap + cn->out.cap + cn->wbuf.cap,
                c->last_cmd ? c->last_cmd : "NULL", c->r.proto == REPLY_RESP3 ? 3 : 2);
}

void
net_client_list(struct buf *out, uint64_t id)
{
    int64_t now = clock_ms();
    pthread_mutex_lock(&N.reg_lock);
    for (struct conn *cn = N.reg_head; cn; cn = cn->reg_next) {
        if (id == 0 || cn->c.id == id) {
            client_line(out, cn, now);
        }
    }
    pthread_mutex_unlock(&N.reg_lock);
}

size_t
net_clients_memory(void)
{
    size_t total = 0;
    pthread_mutex_lock(&N.reg_lock);
    for (struct conn *cn = N.reg_head; cn; cn = cn->reg_next) {
        total += sizeof(*cn) + cn->in.cap + cn->out.cap + cn->wbuf.cap;
    }
    pthread_mutex_unlock(&N.reg_lock);
    return total;
}

unsigned
net_client_kill(uint64_t id, const char *addr, const char *laddr, uint64_t skipme_id)
{
    unsigned n = 0;
    pthread_mutex_lock(&N.reg_lock);
    for (struct conn *cn = N.reg_head; cn; cn = cn->reg_next) {
        if (id && cn->c.id != id) {
            continue;
        }
        if (addr && strcmp(addr, cn->c.addr) != 0) {
            continue;
        }
        if (laddr && strcmp(laddr, cn->c.laddr) != 0) {
            continue;
        }
        if (skipme_id && cn->c.id == skipme_id) {
            continue;
        }
        atomic_store(&cn->c.kill, true);
        uv_async_send(&cn->w->wake);
        n++;
    }
    pthread_mutex_unlock(&N.reg_lock);
    return n;
}

/* ---- listeners --------------------------------------------------------- */

static int
open_listener(const char *addr, int port, bool share, int *fd_out)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    int family;
    if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) == 0) {
        family = AF_INET;
        len = sizeof(struct sockaddr_in);
    } else if (uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) == 0) {
        family = AF_INET6;
        len = sizeof(struct sockaddr_in6);
    } else {
        return -EINVAL;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (share) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 511) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    *fd_out = fd;
    return 0;
}

static void
on_connection(uv_stream_t *listener, int status)
{
    struct worker *w = listener->data;
    if (status < 0 || w->stopping) {
        return;
    }
    enum listen_kind kind = LISTEN_NATIVE;
    if (listener == (uv_stream_t *)&w->listen[LISTEN_RESP]) {
        kind = LISTEN_RESP;
    } else if (listener == (uv_stream_t *)&w->listen[LISTEN_TLS]) {
        kind = LISTEN_TLS;
    } else if (listener == (uv_stream_t *)&w->listen[LISTEN_PROXY]) {
        kind = LISTEN_PROXY;
    }
    conn_accept(w, listener, kind);
}

/* ---- timers and wake-ups ----------------------------------------------- */

static void
on_cron(uv_timer_t *t)
{
    struct worker *w = t->data;
    int64_t now = clock_ms();
    struct store *st = server.store;
    if (w->id == 0) {
        cmdclock_calibrate(); /* the TSC factor of the command clock */
    }
    if (atomic_load(&server.active_expire)) {
        for (unsigned i = w->id; i < st->nshards; i += N.n) {
            /* Budget: enough scan steps (one group of 8 slots each) per tick
             * to cover the table about once a second, at least 100. */
            struct store_shard_stats ss;
            store_shard_stats(st, i, &ss);
            size_t buckets = ss.slots / 8 / N.opt.cron_hz + 100;
            store_cron(st, i, buckets, now);
        }
    }
    /* Eviction between the watermarks goes on in the background, in steps
     * spread over the workers' ticks. */
    for (int i = 0; i < 16 && store_evict_step(st) > 0; i++) {
    }
    conn_check_idle(w, now, atomic_load(&server.idle_timeout_s));
    if (ratelimit_entries() > 0 && ++w->cron_ticks % (N.opt.cron_hz ? N.opt.cron_hz : 10) == 0) {
        ratelimit_sweep(w->id, N.n, clock_mono_us());
    }
}

/* Cluster mode: the end of every loop iteration is a quiescent point (no
 * command runs, so no topology view is held); old views are freed once
 * every worker passed one (cluster/view.c). The handle exists only in
 * cluster mode, so without it the request path has nothing added. */
static void
on_quiesce(uv_check_t *h)
{
    struct worker *w = h->data;
    cluster_quiesce(w->qs_slot);
}

/*
 * Sync policy: the WAL thread says the durable point moved through an
 * eventfd of each worker's own, not through the wake handle. uv_async_send
 * marks the handle busy around its write(2), and the woken loop spins (then
 * sched_yield()s) until the sender is done; on a machine with more runnable
 * threads than cores the sender is often preempted inside that window, once
 * per fdatasync and worker.
 */
static void
on_durable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct worker *w = h->data;
    uint64_t n;
    ssize_t r = read(w->durable_fd, &n, sizeof(n)); /* EAGAIN: already taken */
    (void)r;
    conn_release_parked(w);
}

static void
close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

#define SHUTDOWN_GRACE_MS 2000

static void
on_deadline(uv_timer_t *t)
{
    struct worker *w = t->data;
    for (struct conn *cn = w->conns; cn;) {
        struct conn *next = cn->next;
        conn_close(cn); /* the last one calls worker_drained */
        cn = next;
    }
}

void
worker_drained(struct worker *w)
{
    if (w->drained) {
        return;
    }
    w->drained = true;
    fwd_close(w);
    if (w->deadline.data == w) { /* initialised by on_wake */
        uv_timer_stop(&w->deadline);
        uv_close((uv_handle_t *)&w->deadline, NULL);
    }
    uv_close((uv_handle_t *)&w->wake, NULL);
    pubsub_worker_stop(w->id); /* no more wake-ups of ps_wake: close it */
    uv_close((uv_handle_t *)&w->ps_wake, NULL);
    if (w->durable_fd >= 0) {
        uv_close((uv_handle_t *)&w->durable_poll, NULL);
    }
}

static void
on_ps_wake(uv_async_t *a)
{
    psnet_deliver(a->data);
}

static void
ps_wake_worker(unsigned i)
{
    uv_async_send(&N.workers[i].ps_wake);
}

unsigned
net_worker_index(const struct worker *w)
{
    return w ? w->id : 0;
}

static void
on_wake(uv_async_t *a)
{
    struct worker *w = a->data;
    conn_kill_marked(w);
    conn_release_parked(w);
    later_take_finished(w);
    later_run_retries(w);
    fwd_wake(w);
    if (atomic_load(&server.shutdown_asap) && !w->stopping) {
        w->stopping = true;
        for (int i = 0; i < LISTEN_COUNT; i++) {
            if (w->listening[i]) {
                uv_close((uv_handle_t *)&w->listen[i], NULL);
                w->listening[i] = false;
            }
        }
        /* Finish in-flight replies (SPEC 1): every connection stops reading
         * and closes once what it was sent is written; a deadline closes
         * whatever a stuck client still holds. */
        uv_timer_stop(&w->cron);
        uv_close((uv_handle_t *)&w->cron, NULL);
        uv_idle_stop(&w->turn);
        uv_close((uv_handle_t *)&w->turn, NULL);
        if (w->conns == NULL) {
            worker_drained(w);
            return;
        }
        uv_timer_init(&w->loop, &w->deadline);
        w->deadline.data = w;
        uv_timer_start(&w->deadline, on_deadline, SHUTDOWN_GRACE_MS, 0);
        for (struct conn *cn = w->conns; cn;) {
            struct conn *next = cn->next;
            conn_finish(cn);
            cn = next;
        }
    }
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "crab-worker-%u", w->id);
    pthread_setname_np(pthread_self(), name);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_walk(&w->loop, close_walk, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    return NULL;
}

static int
worker_init(struct worker *w, unsigned id, char *err, size_t errlen)
{
    w->id = id;
    w->opt = &N.opt;
    uv_loop_init(&w->loop);
    w->loop.data = w;
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_async_init(&w->loop, &w->ps_wake, on_ps_wake);
    w->ps_wake.data = w;
    uv_timer_init(&w->loop, &w->cron);
    w->cron.data = w;
    uv_idle_init(&w->loop, &w->turn);
    w->turn.data = w;
    w->durable_fd = -1;
    if (durable_sync()) {
        w->durable_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->durable_fd < 0) {
            int e = errno;
            snprintf(err, errlen, "eventfd: %s", strerror(e));
            return -e;
        }
        uv_poll_init(&w->loop, &w->durable_poll, w->durable_fd);
        w->durable_poll.data = w;
        uv_poll_start(&w->durable_poll, UV_READABLE, on_durable);
    }
    unsigned period = 1000 / (N.opt.cron_hz ? N.opt.cron_hz : 10);
    uv_timer_start(&w->cron, on_cron, period, period);
    if (N.opt.cluster) {
        w->qs_slot = cluster_worker_register();
        if (w->qs_slot < 0) {
            snprintf(err, errlen, "too many worker threads for cluster mode (max %d)",
                     CLUSTER_MAX_WORKERS);
            return -EINVAL;
        }
        uv_check_init(&w->loop, &w->quiesce);
        w->quiesce.data = w;
        uv_check_start(&w->quiesce, on_quiesce);
        /* it must not keep the loop alive at shutdown: close_walk closes it */
        uv_unref((uv_handle_t *)&w->quiesce);
    }
    int ports[LISTEN_COUNT] = {N.opt.port, N.opt.resp_port, N.opt.tls_port, N.opt.proxy_port};
    const char *names[LISTEN_COUNT] = {"port", "resp_port", "tls_port", "cluster.proxy_port"};
    for (int i = 0; i < LISTEN_COUNT; i++) {
        if (ports[i] <= 0) {
            continue;
        }
        int fd = -1;
        int rc = open_listener(N.opt.bind, ports[i], true, &fd);
        if (rc < 0) {
            snprintf(err, errlen, "cannot listen on %s:%d (%s): %s", N.opt.bind, ports[i],
                     names[i], strerror(-rc));
            return rc;
        }
        uv_tcp_init(&w->loop, &w->listen[i]);
        w->listen[i].data = w;
        uv_tcp_open(&w->listen[i], fd);
        rc = uv_listen((uv_stream_t *)&w->listen[i], 511, on_connection);
        if (rc < 0) {
            snprintf(err, errlen, "cannot listen on %s:%d (%s): %s", N.opt.bind, ports[i],
                     names[i], uv_strerror(rc));
            return rc;
        }
        w->listening[i] = true;
    }
    return 0;
}

void
net_set_live(const struct net_live *live)
{
    atomic_store(&net_shared.max_command_size, live->max_command_size);
    atomic_store(&net_shared.max_output_buffer, live->max_output_buffer);
    ratelimit_configure(live->rate_limit, live->rate_per_second, live->rate_burst);
}

void
net_security_stats(struct net_security_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->rejected_maxclients = atomic_load(&server.conns_rejected_by[SERVER_REJECT_MAXCLIENTS]);
    out->rejected_protected = atomic_load(&server.conns_rejected_by[SERVER_REJECT_PROTECTED]);
    out->rejected_ip = atomic_load(&server.conns_rejected_by[SERVER_REJECT_ALLOWLIST]);
    out->rejected_tls = atomic_load(&server.conns_rejected_by[SERVER_REJECT_TLS]);
    struct tstats sum;
    tstats_sum(&sum);
    out->rate_limited = sum.rate_limited;
    out->auth_failures = atomic_load(&server.auth_failures);
    out->output_limit_closed = atomic_load(&net_shared.output_limit_closed);
    out->input_limit_closed = atomic_load(&net_shared.input_limit_closed);
    out->tls_conns = atomic_load(&net_shared.tls_conns);
    out->ratelimit_entries = ratelimit_entries();
}

/* The security half of net_start: allow-list, TLS context, limits. */
static int
security_setup(const struct net_options *opt, char *err, size_t errlen)
{
    acl_ip_free(&net_shared.acl);
    if (acl_ip_parse(&net_shared.acl, opt->allowed_ips, opt->n_allowed_ips, err, errlen) != 0) {
        return -EINVAL;
    }
    if (opt->tls_port > 0) {
        struct tls_options to = {
            .cert_file = opt->tls_cert_file,
            .key_file = opt->tls_key_file,
            .ca_cert_file = opt->tls_ca_cert_file,
            .auth_clients = opt->tls_auth_clients,
        };
        if (tls_setup(&to, err, errlen) != 0) {
            return -EINVAL;
        }
        net_shared.tls = true;
    }
    struct net_live live = {
        .max_command_size = opt->max_command_size,
        .max_output_buffer = opt->max_output_buffer,
        .rate_limit = opt->rate_limit,
        .rate_per_second = opt->rate_per_second,
        .rate_burst = opt->rate_burst,
    };
    net_set_live(&live);
    return 0;
}

int
net_start(const struct net_options *opt, char *err, size_t errlen)
{
    N.opt = *opt;
    static const struct cmd_clients clients = {net_client_list, net_client_kill,
                                               net_clients_memory, net_worker_index};
    cmd_clients_register(&clients); /* CLIENT LIST / KILL */
    int src = security_setup(opt, err, errlen);
    if (src < 0) {
        return src;
    }
    /* A port another process listens on: the workers' SO_REUSEPORT would
     * share it with that process (of the same user) without a word, and
     * the kernel would split the connections between the two servers. A
     * socket without SO_REUSEPORT is refused there: bind one first. */
    int ports[LISTEN_COUNT] = {opt->port, opt->resp_port, opt->tls_port, opt->proxy_port};
    const char *names[LISTEN_COUNT] = {"port", "resp_port", "tls_port", "cluster.proxy_port"};
    for (int i = 0; i < LISTEN_COUNT; i++) {
        int fd = -1;
        int rc = ports[i] > 0 ? open_listener(opt->bind, ports[i], false, &fd) : 0;
        if (rc < 0) {
            snprintf(err, errlen, "cannot listen on %s:%d (%s): %s", opt->bind, ports[i],
                     names[i], strerror(-rc));
            return rc;
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    N.n = opt->threads ? opt->threads : 1;
    N.workers = xcalloc(N.n, sizeof(struct worker));
    pubsub_init(N.n, ps_wake_worker);
    for (unsigned i = 0; i < N.n; i++) {
        int rc = worker_init(&N.workers[i], i, err, errlen);
        if (rc < 0) {
            return rc;
        }
    }
    for (unsigned i = 0; i < N.n; i++) {
        if (pthread_create(&N.workers[i].thread, NULL, worker_main, &N.workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread");
            return -EAGAIN;
        }
    }
    pthread_mutex_lock(&N.wake_lock);
    N.awake = N.n;
    pthread_mutex_unlock(&N.wake_lock);
    return 0;
}

void
net_wake_all(void)
{
    pthread_mutex_lock(&N.wake_lock);
    for (unsigned i = 0; i < N.awake; i++) {
        uv_async_send(&N.workers[i].wake);
    }
    pthread_mutex_unlock(&N.wake_lock);
}

void
net_wake_durable(void)
{
    static const uint64_t one = 1;
    pthread_mutex_lock(&N.wake_lock);
    for (unsigned i = 0; i < N.awake; i++) {
        if (N.workers[i].durable_fd >= 0) {
            ssize_t r = write(N.workers[i].durable_fd, &one, sizeof(one));
            (void)r; /* only fails (EAGAIN) with a counter near 2^64: still readable */
        }
    }
    pthread_mutex_unlock(&N.wake_lock);
}

void
net_stop(void)
{
    atomic_store(&server.shutdown_asap, true);
    pthread_mutex_lock(&N.wake_lock);
    for (unsigned i = 0; i < N.awake; i++) {
        uv_async_send(&N.workers[i].wake);
    }
    N.awake = 0;
    pthread_mutex_unlock(&N.wake_lock);
    for (unsigned i = 0; i < N.n; i++) {
        pthread_join(N.workers[i].thread, NULL);
        if (N.workers[i].durable_fd >= 0) {
            close(N.workers[i].durable_fd);
        }
    }
    free(N.workers);
    N.workers = NULL;
    N.n = 0;
    ratelimit_clear();
    acl_ip_free(&net_shared.acl);
    if (net_shared.tls) {
        tls_teardown();
        net_shared.tls = false;
    }
}
