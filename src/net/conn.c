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
#include "core/durable.h"
#include "core/server.h"
#include "net/internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define READ_CHUNK (64 * 1024)

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void flush(struct conn *cn);

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
    size_t want = READ_CHUNK;
    if (cn->mode == MODE_RESP) {
        size_t need = resp_parser_need(&cn->resp);
        if (need > buf_unread(&cn->in) && need - buf_unread(&cn->in) > want) {
            want = need - buf_unread(&cn->in);
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

void
conn_close(struct conn *cn)
{
    if (cn->closing) {
        return;
    }
    cn->closing = true;
    unpark(cn);
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
    uv_close((uv_handle_t *)&cn->tcp, on_closed);
}

static void
send_and_close(struct conn *cn, const char *msg)
{
    buf_appendstr(&cn->out, msg);
    cn->c.close_after_reply = true;
    flush(cn);
}

void
conn_accept(struct worker *w, uv_stream_t *listener, bool resp_port)
{
    struct conn *cn = xcalloc(1, sizeof(*cn));
    uv_tcp_init(&w->loop, &cn->tcp);
    cn->tcp.data = cn;
    if (uv_accept(listener, (uv_stream_t *)&cn->tcp) != 0) {
        uv_close((uv_handle_t *)&cn->tcp, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(&cn->tcp, 1);
    cn->w = w;
    buf_init(&cn->in);
    buf_init(&cn->out);
    buf_init(&cn->wbuf);
    resp_parser_init(&cn->resp);
    text_parser_init(&cn->text);
    cn->text.max_line = w->opt->max_line;
    if (w->opt->max_command_size) {
        cn->resp.max_bulk_len = (long long)w->opt->max_command_size;
    }
    cn->mode = resp_port ? MODE_RESP : MODE_UNKNOWN;
    struct client *c = &cn->c;
    c->id = atomic_fetch_add(&server.next_client_id, 1) + 1;
    c->r.out = &cn->out;
    c->r.proto = REPLY_RESP2;
    c->resp_port = resp_port;
    c->worker = w;
    c->ctime_ms = c->last_ms = clock_ms();
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&cn->tcp, &fd) == 0) {
        c->fd = fd;
    }
    struct sockaddr_storage peer, local;
    int plen = sizeof(peer), llen = sizeof(local);
    memset(&peer, 0, sizeof(peer));
    memset(&local, 0, sizeof(local));
    uv_tcp_getpeername(&cn->tcp, (struct sockaddr *)&peer, &plen);
    uv_tcp_getsockname(&cn->tcp, (struct sockaddr *)&local, &llen);
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

    cn->reading = true;
    uv_read_start((uv_stream_t *)&cn->tcp, on_alloc, on_read);

    uint64_t maxc = atomic_load(&server.max_connections);
    if (maxc && cur > maxc) {
        atomic_fetch_add(&server.conns_rejected, 1);
        send_and_close(cn, resp_port ? "-ERR max number of clients reached\r\n"
                                     : "-ERR max number of clients reached\r\n");
        return;
    }
    bool no_auth = server.auth_tokens == NULL || server.auth_tokens[0] == NULL;
    if (server.protected_mode && no_auth && !is_loopback(&peer)) {
        atomic_fetch_add(&server.conns_rejected, 1);
        send_and_close(cn,
                       "-DENIED CrabCache is running in protected mode because protected "
                       "mode is enabled and no authentication token is set. In this mode "
                       "connections are only accepted from the loopback interface. Set an "
                       "auth token, bind to 127.0.0.1, or set protected_mode = false.\r\n");
        return;
    }
    c->authed = no_auth;
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
    flush(cn);
}

static void
maybe_resume_reading(struct conn *cn)
{
    if (!cn->reading && !cn->closing && !cn->c.close_after_reply) {
        cn->reading = true;
        uv_read_start((uv_stream_t *)&cn->tcp, on_alloc, on_read);
    }
}

static void
flush(struct conn *cn)
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
        if (cn->reading) {
            uv_read_stop((uv_stream_t *)&cn->tcp);
            cn->reading = false;
        }
        return;
    }
    size_t n = buf_unread(&cn->out);
    if (n > 0) {
        uv_buf_t b = uv_buf_init((char *)buf_rptr(&cn->out), (unsigned)(n > UINT32_MAX ? UINT32_MAX : n));
        int w = uv_try_write((uv_stream_t *)&cn->tcp, &b, 1);
        if (w > 0) {
            STAT_ADD(tstats_self()->net_out, (uint64_t)w);
            buf_consume(&cn->out, (size_t)w);
        } else if (w < 0 && w != UV_EAGAIN) {
            conn_close(cn);
            return;
        }
        n = buf_unread(&cn->out);
        if (n > 0) {
            /* Hand the rest to uv_write: swap buffers so new replies can
             * accumulate while this one is in flight. */
            struct buf tmp = cn->wbuf;
            cn->wbuf = cn->out;
            cn->out = tmp;
            cn->c.r.out = &cn->out;
            buf_reset(&cn->out, 1 << 20);
            uv_buf_t wb = uv_buf_init((char *)buf_rptr(&cn->wbuf), (unsigned)buf_unread(&cn->wbuf));
            cn->wreq.data = cn;
            cn->writing = true;
            STAT_ADD(tstats_self()->net_out, buf_unread(&cn->wbuf));
            if (uv_write(&cn->wreq, (uv_stream_t *)&cn->tcp, &wb, 1, on_written) != 0) {
                cn->writing = false;
                conn_close(cn);
                return;
            }
            if (cn->reading) {
                uv_read_stop((uv_stream_t *)&cn->tcp);
                cn->reading = false;
            }
            return;
        }
    }
    buf_reset(&cn->out, 1 << 20);
    if (cn->c.close_after_reply) {
        conn_close(cn);
        return;
    }
    maybe_resume_reading(cn);
}

/* Execute every complete request in cn->in. Returns false when the
 * connection must stop processing (protocol error or QUIT). */
static void
process_input(struct conn *cn)
{
    struct proto_req req;
    struct client *c = &cn->c;
    while (buf_unread(&cn->in) > 0 && !c->close_after_reply && !cn->closing) {
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
            size_t limit = cn->w->opt->max_command_size;
            if (limit && buf_unread(&cn->in) > limit) {
                log_warn("closing client: request larger than max_command_size",
                         "\"addr\":\"%s\",\"bytes\":%zu", c->addr, buf_unread(&cn->in));
                if (c->native) {
                    buf_appendstr(&cn->out, "ERROR: request too large\r\n");
                } else {
                    buf_appendstr(&cn->out, "-ERR Protocol error: request too large\r\n");
                }
                c->close_after_reply = true;
            }
            break;
        }
        if (rc == PROTO_EPROTO) {
            if (cn->mode == MODE_RESP) {
                reply_errorf(&c->r, "ERR %s", resp_parser_error(&cn->resp));
            } else {
                buf_appendstr(&cn->out, "ERROR: ");
                buf_appendstr(&cn->out, text_parser_error(&cn->text));
                buf_appendstr(&cn->out, "\r\n");
            }
            c->close_after_reply = true;
            break;
        }
        STAT_ADD(tstats_self()->net_in, used);
        c->last_ms = clock_ms();
        if (cn->mode == MODE_RESP) {
            cmd_dispatch(c, &req);
        } else {
            cmd_dispatch_native(c, &req);
        }
        /* args point into the consumed bytes: drop them only after dispatch */
        buf_consume(&cn->in, used);
        size_t maxout = cn->w->opt->max_output_buffer;
        if (maxout && buf_unread(&cn->out) > maxout) {
            log_warn("closing client: output buffer limit reached",
                     "\"addr\":\"%s\",\"bytes\":%zu", c->addr, buf_unread(&cn->out));
            buf_reset(&cn->out, 0);
            conn_close(cn);
            return;
        }
    }
    if (buf_unread(&cn->in) == 0) {
        buf_reset(&cn->in, 1 << 20);
    }
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
    cn->in.len += (size_t)n;
    process_input(cn);
    if (!cn->closing) {
        flush(cn);
    }
}

void
conn_check_idle(struct worker *w, int64_t now_ms, int64_t idle_s)
{
    struct conn *cn = w->conns;
    while (cn) {
        struct conn *next = cn->next;
        if (idle_s > 0 && !cn->writing && now_ms - cn->c.last_ms > idle_s * 1000) {
            conn_close(cn);
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
