/*
 * conn.c -- one client connection: read, parse, dispatch, reply.
 *
 * Input accumulates in cn->in; every complete request in it is executed in
 * order and its reply appended to cn->out. After the batch, the output is
 * flushed with one uv_try_write; what the socket does not take goes out by
 * uv_write from cn->wbuf, and reading pauses until it has (backpressure: a
 * client that does not read its replies cannot make us buffer without end).
 *
 * A connection on the native port is served in RESP when its first byte is
 * '*', else in the native text protocol. A protocol error gets its error
 * reply, then the connection is closed once the reply is written.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "cmd/pubsub.h"
#include "core/cmdclock.h"
#include "core/durable.h"
#include "core/server.h"
#include "net/internal.h"
#include "util/throttle.h"
#include "store/hint.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define READ_CHUNK (64 * 1024)

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void flush_at(struct conn *cn, int64_t now_ms);
#define flush(cn) flush_at((cn), 0)

static void
fmt_addr(const struct sockaddr_storage *sa, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, len, "%s:%d", ip, port);
}

static bool
is_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) {
            return true;
        }
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            return a->sin6_addr.s6_addr[12] == 127;
        }
    }
    return false;
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct conn *cn = h->data;
    if (cn->tls) {
        b->base = buf_reserve(&cn->raw, READ_CHUNK);
        b->len = cn->raw.cap - cn->raw.len;
        return;
    }
    size_t want = READ_CHUNK;
    if (cn->mode == MODE_RESP) {
        /* Room for the announced bulk, but never more than doubling what
         * is buffered: a "$500000000" header alone must not reserve 500 MB.
         * Growth stays geometric, so a real big value costs O(n) copies. */
        size_t have = buf_unread(&cn->in);
        size_t need = resp_parser_need(&cn->resp);
        size_t cap_growth = cn->in.cap > READ_CHUNK ? cn->in.cap : READ_CHUNK;
        if (need > have && need - have > want) {
            want = need - have < cap_growth ? need - have : cap_growth;
        }
    }
    b->base = buf_reserve(&cn->in, want);
    b->len = cn->in.cap - cn->in.len;
}

static void
on_closed(uv_handle_t *h)
{
    struct conn *cn = h->data;
    buf_deinit(&cn->in);
    buf_deinit(&cn->out);
    buf_deinit(&cn->wbuf);
    buf_deinit(&cn->raw);
    buf_deinit(&cn->tls_out);
    tls_conn_free(cn->tls);
    ratelimit_release(cn->rl);
    resp_parser_deinit(&cn->resp);
    text_parser_deinit(&cn->text);
    free(cn->c.name);
    free(cn);
}

static void
unpark(struct conn *cn)
{
    if (!cn->parked) {
        return;
    }
    struct worker *w = cn->w;
    if (cn->park_prev) {
        cn->park_prev->park_next = cn->park_next;
    } else {
        w->parked = cn->park_next;
    }
    if (cn->park_next) {
        cn->park_next->park_prev = cn->park_prev;
    }
    cn->park_prev = cn->park_next = NULL;
    cn->parked = false;
}

static void
park(struct conn *cn)
{
    if (cn->parked) {
        return;
    }
    struct worker *w = cn->w;
    cn->parked = true;
    cn->park_prev = NULL;
    cn->park_next = w->parked;
    if (w->parked) {
        w->parked->park_prev = cn;
    }
    w->parked = cn;
}

static void on_turn(uv_idle_t *h);

/* Give cn another turn on the next loop iteration (input is left over). */
static void
enqueue(struct conn *cn)
{
    if (cn->queued) {
        return;
    }
    struct worker *w = cn->w;
    cn->queued = true;
    cn->ready_prev = NULL;
    cn->ready_next = w->ready;
    if (w->ready) {
        w->ready->ready_prev = cn;
    }
    w->ready = cn;
    if (!w->turn_active) {
        w->turn_active = true;
        uv_idle_start(&w->turn, on_turn);
    }
}

static void
dequeue(struct conn *cn)
{
    if (!cn->queued) {
        return;
    }
    struct worker *w = cn->w;
    if (cn->ready_prev) {
        cn->ready_prev->ready_next = cn->ready_next;
    } else {
        w->ready = cn->ready_next;
    }
    if (cn->ready_next) {
        cn->ready_next->ready_prev = cn->ready_prev;
    }
    cn->ready_prev = cn->ready_next = NULL;
    cn->queued = false;
}

void
conn_close(struct conn *cn)
{
    if (cn->closing) {
        return;
    }
    cn->closing = true;
    pubsub_client_gone(&cn->c);
    unpark(cn);
    later_conn_gone(cn);
    if (cn->retry) {
        for (struct conn **p = &cn->w->retrying; *p; p = &(*p)->retry_next) {
            if (*p == cn) {
                *p = cn->retry_next;
                break;
            }
        }
        cn->retry = false;
    }
    dequeue(cn);
    struct worker *w = cn->w;
    if (cn->prev) {
        cn->prev->next = cn->next;
    } else {
        w->conns = cn->next;
    }
    if (cn->next) {
        cn->next->prev = cn->prev;
    }
    w->nconns--;
    registry_del(cn);
    atomic_fetch_sub(&server.conns_current, 1);
    if (cn->tls) {
        atomic_fetch_sub(&net_shared.tls_conns, 1);
    }
    uv_close((uv_handle_t *)&cn->tcp, on_closed);
    if (w->stopping && w->nconns == 0) {
        worker_drained(w);
    }
}

void
conn_finish(struct conn *cn)
{
    if (cn->closing) {
        return;
    }
    /* Shutdown: no new request is read or run; replies already built (and,
     * under the sync policy, their WAL records) go out, then the close. */
    dequeue(cn);
    if (cn->reading) {
        uv_read_stop((uv_stream_t *)&cn->tcp);
        cn->reading = false;
    }
    cn->c.close_after_reply = true;
    if (!cn->writing) {
        flush(cn);
    }
}

static void
send_and_close(struct conn *cn, const char *msg)
{
    buf_appendstr(&cn->out, msg);
    cn->c.close_after_reply = true;
    flush(cn);
}

static struct log_throttle reject_log;

static void
log_rejected(const char *why, const char *addr)
{
    uint64_t skipped;
    if (log_throttle_allow(&reject_log, 10, &skipped)) {
        log_warn("connection refused", "\"reason\":\"%s\",\"addr\":\"%s\",\"suppressed\":%llu",
                 why, addr, (unsigned long long)skipped);
    }
}

#define PROTECTED_TEXT                                                                       \
    "CrabCache is running in protected mode because protected mode is enabled and no "     \
    "authentication token is set. In this mode connections are only accepted from the "    \
    "loopback interface. Set an auth token, bind to 127.0.0.1, or set protected_mode = "   \
    "false."

void
conn_accept(struct worker *w, uv_stream_t *listener, enum listen_kind kind)
{
    struct conn *cn = xcalloc(1, sizeof(*cn));
    uv_tcp_init(&w->loop, &cn->tcp);
    cn->tcp.data = cn;
    if (uv_accept(listener, (uv_stream_t *)&cn->tcp) != 0) {
        uv_close((uv_handle_t *)&cn->tcp, (uv_close_cb)free);
        return;
    }
    struct sockaddr_storage peer, local;
    int plen = sizeof(peer), llen = sizeof(local);
    memset(&peer, 0, sizeof(peer));
    memset(&local, 0, sizeof(local));
    uv_tcp_getpeername(&cn->tcp, (struct sockaddr *)&peer, &plen);
    uv_tcp_getsockname(&cn->tcp, (struct sockaddr *)&local, &llen);
    if (!acl_ip_allows(&net_shared.acl, (const struct sockaddr *)&peer)) {
        /* Not on the allow-list: closed before anything is read or sent. */
        char addr[64];
        fmt_addr(&peer, addr, sizeof(addr));
        server_count_rejected(SERVER_REJECT_ALLOWLIST);
        log_rejected("allowed_ips", addr);
        uv_close((uv_handle_t *)&cn->tcp, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(&cn->tcp, 1);
    cn->w = w;
    buf_init(&cn->in);
    buf_init(&cn->out);
    buf_init(&cn->wbuf);
    buf_init(&cn->raw);
    buf_init(&cn->tls_out);
    resp_parser_init(&cn->resp);
    text_parser_init(&cn->text);
    cn->text.max_line = w->opt->max_line;
    /* A bulk longer than max_value_size (Redis's proto-max-bulk-len, 512 MiB
     * by default) is a protocol error, as in Redis; max_command_size bounds
     * a whole request. */
    size_t maxbulk = atomic_load(&server.max_value_size);
    size_t maxcmd = atomic_load(&net_shared.max_command_size);
    if (maxcmd && (maxbulk == 0 || maxcmd < maxbulk)) {
        maxbulk = maxcmd;
    }
    if (maxbulk) {
        cn->resp.max_bulk_len = (long long)maxbulk;
    }
    bool resp_only = kind == LISTEN_RESP || kind == LISTEN_PROXY;
    cn->mode = resp_only ? MODE_RESP : MODE_UNKNOWN;
    cn->have_key = acl_ip_key((const struct sockaddr *)&peer, cn->addr_key);
    struct client *c = &cn->c;
    c->id = atomic_fetch_add(&server.next_client_id, 1) + 1;
    c->r.out = &cn->out;
    c->r.proto = REPLY_RESP2;
    c->resp_port = resp_only;
    c->proxy = kind == LISTEN_PROXY;
    c->worker = w;
    c->ctime_ms = c->last_ms = clock_ms();
    cn->write_progress_ms = c->ctime_ms;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&cn->tcp, &fd) == 0) {
        c->fd = fd;
    }
    fmt_addr(&peer, c->addr, sizeof(c->addr));
    fmt_addr(&local, c->laddr, sizeof(c->laddr));

    /* link in before any early close so conn_close can unlink */
    cn->next = w->conns;
    if (w->conns) {
        w->conns->prev = cn;
    }
    w->conns = cn;
    w->nconns++;
    registry_add(cn);
    atomic_fetch_add(&server.conns_total, 1);
    uint64_t cur = atomic_fetch_add(&server.conns_current, 1) + 1;

    if (kind == LISTEN_TLS) {
        cn->tls = tls_conn_new();
        c->tls = true;
        atomic_fetch_add(&net_shared.tls_conns, 1);
        if (cn->tls == NULL) {
            server_count_rejected(SERVER_REJECT_TLS);
            conn_close(cn);
            return;
        }
    }

    cn->reading = true;
    uv_read_start((uv_stream_t *)&cn->tcp, on_alloc, on_read);

    bool resp_form = resp_only;
    uint64_t maxc = atomic_load(&server.max_connections);
    if (maxc && cur > maxc) {
        server_count_rejected(SERVER_REJECT_MAXCLIENTS);
        log_rejected("max_connections", c->addr);
        send_and_close(cn, resp_form ? "-ERR max number of clients reached\r\n"
                                     : "ERROR: max number of clients reached\r\n");
        return;
    }
    bool no_auth = server.auth_tokens == NULL || server.auth_tokens[0] == NULL;
    bool protected_mode = __atomic_load_n(&server.protected_mode, __ATOMIC_RELAXED);
    if (protected_mode && no_auth && !is_loopback(&peer)) {
        server_count_rejected(SERVER_REJECT_PROTECTED);
        log_rejected("protected_mode", c->addr);
        send_and_close(cn, resp_form ? "-DENIED " PROTECTED_TEXT "\r\n"
                                     : "ERROR: DENIED " PROTECTED_TEXT "\r\n");
        return;
    }
    c->authed = no_auth;
}

/* Replies queued for this client and not yet taken by the socket. */
static size_t
queued_output(const struct conn *cn)
{
    return buf_unread(&cn->out) + buf_unread(&cn->wbuf) + buf_unread(&cn->tls_out);
}

static void
on_written(uv_write_t *req, int status)
{
    struct conn *cn = req->data;
    cn->writing = false;
    buf_reset(&cn->wbuf, 1 << 20);
    if (status < 0) {
        conn_close(cn);
        return;
    }
    int64_t now_ms = clock_ms();
    cn->write_progress_ms = now_ms;
    flush_at(cn, now_ms);
}

static void
maybe_resume_reading(struct conn *cn)
{
    if (!cn->reading && !cn->closing && !cn->parked && !cn->queued && !cn->later && !cn->retry) {
        cn->reading = true;
        uv_read_start((uv_stream_t *)&cn->tcp, on_alloc, on_read);
    }
}

/* Send what cn->out holds. now_ms is the current time when the caller has
 * it (stamped as write progress if the socket takes bytes), else 0: the
 * clock is read only then. */
/* sync policy: replies held back for the log beyond which a parked
 * connection stops reading */
#define PARK_READ_MAX (64 * 1024)

static void
flush_at(struct conn *cn, int64_t now_ms)
{
    if (cn->closing || cn->writing) {
        return;
    }
    if (cn->c.wal_lsn && durable_sync() && cn->c.wal_lsn > durable_lsn()) {
        /* sync policy: nothing leaves before the writes it acknowledges are
         * on disk. If the log is failing they never will be: close instead
         * of acknowledging. */
        if (durable_error(NULL, 0) != 0) {
            conn_close(cn);
            return;
        }
        park(cn);
        /* Reading goes on (stopping and restarting it costs two epoll_ctl
         * per request): a pipelining client's next requests join the next
         * group commit, until the replies held back pass PARK_READ_MAX. */
        if (cn->reading && buf_unread(&cn->out) > PARK_READ_MAX) {
            uv_read_stop((uv_stream_t *)&cn->tcp);
            cn->reading = false;
        }
        return;
    }
    struct buf *wire = &cn->out;
    if (cn->tls) {
        if (tls_conn_encrypt(cn->tls, &cn->out, &cn->tls_out) != TLS_OK) {
            log_debug("TLS write failed", "\"addr\":\"%s\",\"error\":\"%s\"", cn->c.addr,
                      tls_conn_error(cn->tls));
            conn_close(cn);
            return;
        }
        if (cn->c.close_after_reply && buf_unread(&cn->out) == 0) {
            tls_conn_shutdown(cn->tls, &cn->tls_out);
        }
        wire = &cn->tls_out;
    }
    size_t n = buf_unread(wire);
    if (n > 0) {
        uv_buf_t b = uv_buf_init((char *)buf_rptr(wire), (unsigned)(n > UINT32_MAX ? UINT32_MAX : n));
        int w = uv_try_write((uv_stream_t *)&cn->tcp, &b, 1);
        if (w > 0) {
            STAT_ADD(tstats_self()->net_out, (uint64_t)w);
            buf_consume(wire, (size_t)w);
            cn->write_progress_ms = now_ms ? now_ms : clock_ms();
        } else if (w < 0 && w != UV_EAGAIN) {
            conn_close(cn);
            return;
        }
        n = buf_unread(wire);
        if (n > 0) {
            /* Hand the rest to uv_write: swap buffers so new replies can
             * accumulate while this one is in flight. */
            struct buf tmp = cn->wbuf;
            cn->wbuf = *wire;
            *wire = tmp;
            cn->c.r.out = &cn->out;
            buf_reset(wire, 1 << 20);
            uv_buf_t wb = uv_buf_init((char *)buf_rptr(&cn->wbuf), (unsigned)buf_unread(&cn->wbuf));
            cn->wreq.data = cn;
            cn->writing = true;
            STAT_ADD(tstats_self()->net_out, buf_unread(&cn->wbuf));
            if (uv_write(&cn->wreq, (uv_stream_t *)&cn->tcp, &wb, 1, on_written) != 0) {
                cn->writing = false;
                conn_close(cn);
                return;
            }
            return;
        }
    }
    buf_reset(wire, 1 << 20);
    if (cn->e2e_n != 0 && buf_unread(&cn->out) == 0) {
        /* every reply so far is in the socket: their end-to-end latency */
        int64_t d = clock_us() - cn->e2e_t;
        tstats_record_e2e(tstats_self(), d > 0 ? (uint64_t)d : 0, cn->e2e_n);
        cn->e2e_n = 0;
    }
    if (cn->c.close_after_reply) {
        if (cn->tls && buf_unread(&cn->out) > 0) {
            /* a reply waiting for the TLS handshake to finish */
            return;
        }
        conn_close(cn);
        return;
    }
    maybe_resume_reading(cn);
}

/* Drop a client whose queued replies passed max_output_buffer. */
static void
output_limit_close(struct conn *cn, size_t q, size_t maxout)
{
    static struct log_throttle t;
    uint64_t skipped;
    if (log_throttle_allow(&t, 10, &skipped)) {
        log_warn("closing client: output buffer limit reached",
                 "\"addr\":\"%s\",\"bytes\":%zu,\"limit\":%zu,\"suppressed\":%llu", cn->c.addr, q,
                 maxout, (unsigned long long)skipped);
    }
    atomic_fetch_add(&net_shared.output_limit_closed, 1);
    conn_close(cn);
}

static bool
output_over_limit(struct conn *cn)
{
    size_t maxout = atomic_load_explicit(&net_shared.max_output_buffer, memory_order_relaxed);
    size_t q = queued_output(cn);
    if (maxout == 0 || q <= maxout) {
        return false;
    }
    output_limit_close(cn, q, maxout);
    return true;
}

void
conn_push_out(struct conn *cn)
{
    if (!cn->closing && !cn->writing) {
        flush(cn);
    }
    if (!cn->closing) {
        output_over_limit(cn);
    }
}

size_t
conn_queued(const struct conn *cn)
{
    return queued_output(cn);
}

/* Rate limiting, when enabled: false (and an error reply) when the client's
 * address has no token left for this request. */
static bool
rate_allows(struct conn *cn)
{
    if (!cn->have_key) {
        return true;
    }
    if (cn->rl == NULL) {
        cn->rl = ratelimit_acquire(cn->addr_key);
    }
    if (ratelimit_take(cn->rl, clock_mono_us())) {
        return true;
    }
    STAT_INC(tstats_self()->rate_limited);
    reply_error(&cn->c.r, "ERR rate limit exceeded, try again later");
    return false;
}

/*
 * Pipelined requests wait on memory: in a real run the index group and the
 * item of each key miss the caches, and those two loads were a third of
 * the server's CPU time at P16. When the input holds several whole requests
 * (RESP or native lines), their keys (argv[1]: resp_peek_keys,
 * text_peek_keys) are found first and the cache lines the
 * lookups will touch are prefetched, so the misses overlap instead of being
 * paid one request at a time. The prefetch runs under each shard's lock
 * (store_prefetch reads the table): stage 0 (index groups) for every key at
 * once, one lock round per shard; stage 1 (the first matching item, which
 * reads the group) PREFETCH_LEAD requests ahead of the one executing, by
 * when its group has arrived (prefetch_ahead). A hint only: nothing is
 * changed, the requests then run exactly as before.
 *
 * The slots and hashes computed here are kept in the thread's key hints
 * (store/hint.h), so the commands that run on these keys in this batch do
 * not compute them again: process_input selects the i-th key's hint for
 * its i-th request, and clears the hints at the end of the batch, before
 * cn->in can be reset or read into (see hint.h for why a hint cannot be
 * stale).
 */
#define PREFETCH_MAX 16 /* <= 32 (a uint32_t marks the keys done), <= HINT_MAX */
/* Item prefetches (stage 1) run this many requests ahead of the one being
 * executed, so that the index group each of them reads has arrived. */
#define PREFETCH_LEAD 4

struct lookahead {
    int n;     /* keys peeked (0: no prefetch this batch) */
    int items; /* keys whose item prefetch has been issued */
    const struct key_hint *hint;
    unsigned shard[PREFETCH_MAX];
};

/* Prefetch stage `stage` for keys [from, to), one lock round per shard. */
static void
prefetch_stage(struct store *st, const struct lookahead *la, int from, int to, int stage)
{
    store_prefetch_keys(st, la->shard + from, la->hint + from, to - from, stage);
}

/* Before request i of the batch runs: issue the item prefetches of the
 * next keys once i comes within PREFETCH_LEAD of the last issued. */
static inline void
prefetch_ahead(struct lookahead *la, int i)
{
    if (la->items < la->n && i + PREFETCH_LEAD > la->items) {
        int to = la->items + PREFETCH_LEAD < la->n ? la->items + PREFETCH_LEAD : la->n;
        prefetch_stage(server.store, la, la->items, to, 1);
        la->items = to;
    }
}

static void
prefetch_pipeline(struct conn *cn, struct lookahead *la)
{
    const char *key[PREFETCH_MAX];
    size_t klen[PREFETCH_MAX];
    int n = cn->mode == MODE_RESP
                ? resp_peek_keys(buf_rptr(&cn->in), buf_unread(&cn->in), key, klen, PREFETCH_MAX)
                : text_peek_keys(buf_rptr(&cn->in), buf_unread(&cn->in), key, klen, PREFETCH_MAX);
    if (n < 2) {
        return; /* one request (or none): nothing to overlap */
    }
    struct store *st = server.store;
    la->hint = hint_fill(key, klen, (unsigned)n);
    for (int i = 0; i < n; i++) {
        la->shard[i] = store_shard_of_slot(st, la->hint[i].slot);
    }
    la->n = n;
    la->items = 0;
    prefetch_stage(st, la, 0, n, 0);
}

/* The reply just appended to out ends in CRLF: make it LF. */
__attribute__((noinline, cold)) void
conn_native_bare_lf(struct buf *out)
{
    if (out->len >= 2 && out->data[out->len - 2] == '\r' && out->data[out->len - 1] == '\n') {
        out->data[out->len - 2] = '\n';
        out->len--;
    }
}

/* Execute the complete requests in cn->in, for at most TURN_BUDGET_US.
 * Stops at a protocol error or QUIT (close_after_reply), and when the client
 * was dropped. Returns true when the turn ended with input left over (the
 * caller queues the connection for another turn).
 *
 * Per-request work is kept to parsing and dispatch: the settings read here
 * (rate limiting on/off, max_output_buffer), the idle clock (c->last_ms) and
 * the input byte counter are read or written once per turn, and the output
 * limit is checked per request against the bytes queued before the turn
 * (wbuf and tls_out do not change while requests run) plus cn->out.
 *
 * Clock: the turn reads the wall clock once (cmdclock_begin); the commands
 * chain their readings from it (core/cmdclock.h), the idle stamp and the
 * turn budget use it, and *end_ms is the time the turn ended (for the
 * write-progress stamp of the flush after it), from the chain. */
static bool
process_input(struct conn *cn, int64_t *end_ms)
{
    struct proto_req req;
    struct client *c = &cn->c;
    /* Commands of this turn time themselves back to back. */
    int64_t t0 = cmdclock_begin();
    /* when this input was read: now, unless an earlier turn left it */
    int64_t t_in = cn->left_t ? cn->left_t : t0;
    cn->left_t = 0;
    unsigned done = 0, nreq = 0;
    bool stamped = false;
    bool rate_limited = ratelimit_enabled();
    size_t maxout = atomic_load_explicit(&net_shared.max_output_buffer, memory_order_relaxed);
    size_t queued_before = buf_unread(&cn->wbuf) + buf_unread(&cn->tls_out);
    uint64_t in_bytes = 0;
    bool more = false;
    struct lookahead la = {0, 0, NULL, {0}};
    if (cn->mode != MODE_UNKNOWN && c->authed && !c->close_after_reply && !cn->closing) {
        prefetch_pipeline(cn, &la); /* fills the key hints ... */
    }
    /* A command waiting for a later reply holds back every request after
     * it (cmd/later.h): replies stay in order. */
    cn->running = true;
    while (buf_unread(&cn->in) > 0 && !c->close_after_reply && !cn->closing && !cn->later &&
           !cn->retry) {
        if (++done % TURN_CHECK == 0 && cmdclock_read() - t0 > TURN_BUDGET_US) {
            more = true;
            break;
        }
        if (cn->mode == MODE_UNKNOWN) {
            cn->mode = buf_rptr(&cn->in)[0] == '*' ? MODE_RESP : MODE_NATIVE;
            c->native = cn->mode == MODE_NATIVE;
            c->r.proto = c->native ? REPLY_NATIVE : REPLY_RESP2;
        }
        size_t used = 0;
        int rc;
        if (cn->mode == MODE_RESP) {
            cn->resp.unauthenticated = !c->authed;
            rc = resp_parse(&cn->resp, buf_rptr(&cn->in), buf_unread(&cn->in), &req, &used);
        } else {
            rc = text_parse(&cn->text, buf_rptr(&cn->in), buf_unread(&cn->in), &req, &used);
        }
        if (rc == PROTO_EAGAIN) {
            buf_consume(&cn->in, used);
            size_t limit = atomic_load_explicit(&net_shared.max_command_size, memory_order_relaxed);
            if (limit && buf_unread(&cn->in) > limit) {
                static struct log_throttle t;
                uint64_t skipped;
                if (log_throttle_allow(&t, 10, &skipped)) {
                    log_warn("closing client: request larger than max_command_size",
                             "\"addr\":\"%s\",\"bytes\":%zu,\"suppressed\":%llu", c->addr,
                             buf_unread(&cn->in), (unsigned long long)skipped);
                }
                atomic_fetch_add(&net_shared.input_limit_closed, 1);
                if (c->native) {
                    buf_appendstr(&cn->out, cn->bare_lf ? "ERROR: request too large\n"
                                                        : "ERROR: request too large\r\n");
                } else {
                    buf_appendstr(&cn->out, "-ERR Protocol error: request too large\r\n");
                }
                c->close_after_reply = true;
                buf_reset(&cn->in, 0);
            }
            break;
        }
        if (rc == PROTO_EPROTO) {
            if (cn->mode == MODE_RESP) {
                reply_errorf(&c->r, "ERR %s", resp_parser_error(&cn->resp));
            } else {
                buf_appendstr(&cn->out, "ERROR: ");
                buf_appendstr(&cn->out, text_parser_error(&cn->text));
                buf_appendstr(&cn->out, cn->bare_lf ? "\n" : "\r\n");
            }
            c->close_after_reply = true;
            break;
        }
        in_bytes += used;
        if (!stamped) {
            /* idle timeout: seconds; the turn's start is close enough */
            c->last_ms = t0 / 1000;
            stamped = true;
        }
        size_t out_before = cn->out.len;
        if (!rate_limited || rate_allows(cn)) {
            prefetch_ahead(&la, (int)done - 1);
            hint_select(done - 1); /* this request's key, if prefetched */
            if (cn->mode == MODE_RESP) {
                cmd_dispatch(c, &req);
            } else if (__builtin_expect(rc == PROTO_OK, 1)) {
                cmd_dispatch_native(c, &req);
            } else {
                /* PROTO_EREQ: a line with bad quoting; answered, not fatal */
                reply_errorf(&c->r, "ERR %s", text_parser_error(&cn->text));
            }
        }
        if (__builtin_expect(cn->retry, 0)) {
            /* Not run (later_retry): keep the request for the next try. */
            later_keep_retry(cn);
            break;
        }
        if (cn->mode == MODE_NATIVE) {
            /* Reply with the client's line ending (SPEC 2a): every native
             * reply is one line the reply layer ended in CRLF; after a line
             * that ended in a bare LF, that CRLF becomes LF. */
            const char *line = buf_rptr(&cn->in);
            bool bare = used < 2 || line[used - 2] != '\r';
            if (__builtin_expect(bare, 0) && cn->out.len > out_before) {
                conn_native_bare_lf(&cn->out);
            }
            cn->bare_lf = bare;
        }
        nreq++;
        /* args point into the consumed bytes: drop them only after dispatch
         * (buf_consume's reset of an emptied buffer is done once, after the
         * loop) */
        cn->in.rpos += used;
        if (maxout != 0 && !cn->closing) {
            size_t q = queued_before + buf_unread(&cn->out);
            if (q > maxout) {
                output_limit_close(cn, q, maxout);
                break;
            }
        }
    }
    cn->running = false;
    /* ... which point into cn->in: forget them before it can change */
    hint_clear();
    if (nreq != 0) {
        if (cn->e2e_n == 0) {
            cn->e2e_t = t_in;
        }
        cn->e2e_n += nreq;
    }
    if (more) {
        cn->left_t = t_in;
    }
    if (cn->in.rpos >= cn->in.len) {
        cn->in.rpos = cn->in.len = 0;
    }
    *end_ms = cmdclock_last() / 1000;
    cmdclock_break();
    if (in_bytes != 0) {
        STAT_ADD(tstats_self()->net_in, in_bytes);
    }
    if (cn->closing) {
        return false;
    }
    if (!more && buf_unread(&cn->in) == 0) {
        buf_reset(&cn->in, 1 << 20);
    }
    return more;
}

/* After a turn: queue the connection if input is left (and stop reading
 * meanwhile: the client cannot outrun us into memory), then flush. */
static void
end_turn(struct conn *cn, bool more, int64_t now_ms)
{
    if ((cn->later || cn->retry) && cn->reading) {
        /* Waiting for a reply from elsewhere: read nothing meanwhile. */
        uv_read_stop((uv_stream_t *)&cn->tcp);
        cn->reading = false;
    }
    if (more && !cn->closing) {
        enqueue(cn);
        if (cn->reading) {
            uv_read_stop((uv_stream_t *)&cn->tcp);
            cn->reading = false;
        }
    }
    if (!cn->closing) {
        flush_at(cn, now_ms);
    }
    /* flush may have handed replies to uv_write while reading goes on:
     * a client that never reads them is caught here too */
    if (!cn->closing) {
        output_over_limit(cn);
    }
}

void
conn_resume(struct conn *cn)
{
    if (cn->closing) {
        return;
    }
    int64_t now_ms = 0;
    bool more = cn->c.close_after_reply ? false : process_input(cn, &now_ms);
    end_turn(cn, more, now_ms);
    if (!more && !cn->closing) {
        maybe_resume_reading(cn);
    }
}

/* The worker's idle handle: one more turn for every queued connection. */
static void
on_turn(uv_idle_t *h)
{
    struct worker *w = h->data;
    struct conn *list = w->ready;
    w->ready = NULL;
    for (struct conn *cn = list; cn; cn = cn->ready_next) {
        cn->queued = false; /* detached; ready_next still walks the old list */
    }
    while (list) {
        struct conn *cn = list;
        list = cn->ready_next;
        cn->ready_prev = cn->ready_next = NULL;
        if (list) {
            list->ready_prev = NULL;
        }
        if (cn->closing) {
            continue;
        }
        int64_t now_ms;
        bool more = process_input(cn, &now_ms);
        end_turn(cn, more, now_ms);
        if (!more && !cn->closing) {
            maybe_resume_reading(cn);
        }
    }
    if (w->ready == NULL) {
        w->turn_active = false;
        uv_idle_stop(&w->turn);
    }
}

/* Ciphertext arrived: run it through TLS into cn->in. False when the
 * connection was closed. */
static bool
tls_input(struct conn *cn, size_t n)
{
    cn->raw.len += n;
    bool was = tls_conn_established(cn->tls);
    int rc = tls_conn_feed(cn->tls, buf_rptr(&cn->raw), buf_unread(&cn->raw), &cn->in,
                           &cn->tls_out);
    buf_reset(&cn->raw, 64 * 1024);
    if (rc == TLS_ERROR) {
        if (!was) {
            server_count_rejected(SERVER_REJECT_TLS);
            log_rejected("tls_handshake", cn->c.addr);
        }
        log_debug("TLS error", "\"addr\":\"%s\",\"error\":\"%s\"", cn->c.addr,
                  tls_conn_error(cn->tls));
        /* best effort: the alert OpenSSL prepared, then close */
        if (buf_unread(&cn->tls_out) > 0 && !cn->writing) {
            uv_buf_t b = uv_buf_init((char *)buf_rptr(&cn->tls_out),
                                     (unsigned)buf_unread(&cn->tls_out));
            uv_try_write((uv_stream_t *)&cn->tcp, &b, 1);
        }
        conn_close(cn);
        return false;
    }
    if (rc == TLS_CLOSED) {
        conn_close(cn);
        return false;
    }
    return true;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *cn = s->data;
    if (n < 0) {
        conn_close(cn);
        return;
    }
    if (n == 0) {
        return;
    }
    if (cn->tls) {
        if (!tls_input(cn, (size_t)n)) {
            return;
        }
    } else {
        cn->in.len += (size_t)n;
    }
    bool more = false;
    int64_t now_ms = 0;
    if (cn->c.close_after_reply) {
        /* closing once the last reply is out: later input is dropped */
        buf_reset(&cn->in, 0);
    } else {
        more = process_input(cn, &now_ms);
    }
    end_turn(cn, more, now_ms);
}

void
conn_check_idle(struct worker *w, int64_t now_ms, int64_t idle_s)
{
    struct conn *cn = w->conns;
    while (cn) {
        struct conn *next = cn->next;
        if (cn->tls && !tls_conn_established(cn->tls) &&
            now_ms - cn->c.ctime_ms > TLS_HANDSHAKE_TIMEOUT_MS) {
            server_count_rejected(SERVER_REJECT_TLS);
            log_rejected("tls_handshake_timeout", cn->c.addr);
            conn_close(cn);
        } else if (idle_s > 0 && !cn->parked) {
            /* Idle: no complete request for idle_s, or (a client that
             * stopped reading) no byte of output taken for idle_s. */
            int64_t since = cn->writing ? cn->write_progress_ms : cn->c.last_ms;
            if (now_ms - since > idle_s * 1000) {
                conn_close(cn);
            }
        }
        cn = next;
    }
}

void
conn_kill_marked(struct worker *w)
{
    struct conn *cn = w->conns;
    while (cn) {
        struct conn *next = cn->next;
        if (atomic_load(&cn->c.kill)) {
            conn_close(cn);
        }
        cn = next;
    }
}

void
conn_release_parked(struct worker *w)
{
    if (w->parked == NULL) {
        return;
    }
    uint64_t durable = durable_lsn();
    bool failed = durable_error(NULL, 0) != 0;
    struct conn *cn = w->parked;
    while (cn) {
        struct conn *next = cn->park_next;
        if (cn->c.wal_lsn <= durable || failed) {
            unpark(cn);
            flush(cn);
        }
        cn = next;
    }
}
