/*
 * http.c -- the HTTP port on libmicrohttpd (see http.h).
 *
 * The listening socket is created here (getaddrinfo, SO_REUSEADDR, bind,
 * listen) and handed to MHD with MHD_OPTION_LISTEN_SOCKET, so a port that is
 * taken fails start-up with the real errno rather than MHD's NULL. MHD runs
 * one internal polling thread (epoll when available): requests are served
 * one at a time, which is plenty for scrapes and a few dashboards, and keeps
 * the observability load off the workers entirely. A connection limit and an
 * idle timeout keep a slow or hostile HTTP client from holding it.
 *
 * Every response carries Cache-Control: no-store; the dashboard also gets a
 * Content-Security-Policy that forbids any origin but this server, which is
 * how "no external assets" is enforced in the browser, not just promised.
 */
#include "http/http.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "cmd/info.h"
#include "core/server.h"
#include "http/dashboard.h"
#include "http/metrics.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"

#define HTTP_CONN_LIMIT 64
#define HTTP_IDLE_TIMEOUT_S 15

static struct MHD_Daemon *daemon_;
static char *token;
static int bound_port;

/* ---- responses ---------------------------------------------------------------- */

static enum MHD_Result
respond(struct MHD_Connection *conn, enum metrics_path path, unsigned code,
        const char *ctype, const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (path == METRICS_PATH_DASHBOARD) {
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; "
                                "style-src 'unsafe-inline'; connect-src 'self'; "
                                "img-src 'self' data:; base-uri 'none'; form-action 'none'");
    }
    if (code == MHD_HTTP_UNAUTHORIZED) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"crabcache\"");
    }
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    metrics_count_http(path, code);
    return ret;
}

static enum MHD_Result
respond_text(struct MHD_Connection *conn, enum metrics_path path, unsigned code,
             const char *text)
{
    return respond(conn, path, code, "text/plain; charset=utf-8", text, strlen(text));
}

static enum MHD_Result
respond_buf(struct MHD_Connection *conn, enum metrics_path path, const char *ctype,
            struct buf *b)
{
    enum MHD_Result ret = respond(conn, path, MHD_HTTP_OK, ctype, b->data ? b->data : "", b->len);
    buf_deinit(b);
    return ret;
}

/* ---- authentication ------------------------------------------------------------ */

/* Equal strings, in a time that depends only on the lengths. */
static bool
token_equal(const char *given, const char *want)
{
    size_t gl = strlen(given), wl = strlen(want);
    unsigned char diff = (unsigned char)(gl != wl);
    for (size_t i = 0; i < wl; i++) {
        unsigned char g = i < gl ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)want[i]);
    }
    return diff == 0;
}

static bool
authorized(struct MHD_Connection *conn)
{
    if (token == NULL) {
        return true;
    }
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *t = h + 7;
        while (*t == ' ') {
            t++;
        }
        if (token_equal(t, token)) {
            return true;
        }
    }
    const char *q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
    return q != NULL && token_equal(q, token);
}

/* ---- endpoints ----------------------------------------------------------------- */

static enum MHD_Result
serve_health(struct MHD_Connection *conn)
{
    int st = atomic_load(&server.state);
    const char *status = st == SERVER_SERVING ? "healthy"
                         : st == SERVER_STARTING ? "starting"
                                                 : "stopping";
    char body[320], cl[160] = "";
    struct cluster_raft_info ri;
    cluster_raft_info(&ri);
    const struct topo_view *v = cluster_view_hold(); /* this thread is no worker */
    if (v != NULL) {
        /* Cluster mode: the slots this node's topology covers, and its Raft role. */
        snprintf(cl, sizeof(cl),
                 ",\"cluster\":{\"state\":\"%s\",\"slots_assigned\":%u,\"known_nodes\":%u,"
                 "\"raft_role\":\"%s\"}",
                 v->slots_assigned == TOPO_SLOTS ? "ok" : "fail", (unsigned)v->slots_assigned,
                 (unsigned)v->nnodes, ri.role ? ri.role : "unavailable");
    }
    cluster_view_release();
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"%s\",\"service\":\"crabcache\",\"version\":\"%s\"%s}",
                     status, CRABCACHE_VERSION, cl);
    return respond(conn, METRICS_PATH_HEALTH,
                   st == SERVER_SERVING ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                   "application/json", body, (size_t)n);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size,
           void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    /* First call per request: headers only. Answer on the second, once any
     * body has been skipped. */
    if (*con_cls == NULL) {
        *con_cls = (void *)1;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* bodies are not used: discard */
        return MHD_YES;
    }
    enum metrics_path path = strcmp(url, "/metrics") == 0          ? METRICS_PATH_METRICS
                             : strcmp(url, "/health") == 0         ? METRICS_PATH_HEALTH
                             : strcmp(url, "/stats") == 0          ? METRICS_PATH_STATS
                             : strcmp(url, "/dashboard") == 0      ? METRICS_PATH_DASHBOARD
                             : strcmp(url, "/dashboard/") == 0     ? METRICS_PATH_DASHBOARD
                             : strcmp(url, "/") == 0               ? METRICS_PATH_DASHBOARD
                             : strcmp(url, "/dashboard/data") == 0 ? METRICS_PATH_DASHBOARD_DATA
                                                                   : METRICS_PATH_OTHER;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return respond_text(conn, path, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if (path == METRICS_PATH_HEALTH) {
        return serve_health(conn);
    }
    if (path == METRICS_PATH_OTHER) {
        return respond_text(conn, path, MHD_HTTP_NOT_FOUND,
                            "not found; try /metrics /health /stats /dashboard\n");
    }
    if (!authorized(conn)) {
        return respond_text(conn, path, MHD_HTTP_UNAUTHORIZED,
                            "unauthorized: send Authorization: Bearer <metrics_token>\n");
    }
    struct buf b;
    buf_init(&b);
    switch (path) {
    case METRICS_PATH_METRICS:
        metrics_render(&b);
        return respond_buf(conn, path, "text/plain; version=0.0.4; charset=utf-8", &b);
    case METRICS_PATH_STATS:
        stats_json(&b);
        buf_appendc(&b, '\n');
        return respond_buf(conn, path, "application/json", &b);
    case METRICS_PATH_DASHBOARD_DATA:
        dashboard_data_json(&b);
        return respond_buf(conn, path, "application/json", &b);
    default: {
        size_t len;
        const char *page = dashboard_html(&len);
        return respond(conn, METRICS_PATH_DASHBOARD, MHD_HTTP_OK, "text/html; charset=utf-8",
                       page, len);
    }
    }
}

/* ---- life cycle ------------------------------------------------------------------ */

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    struct buf b;
    buf_init(&b);
    log_json_escape(&b, msg, n);
    buf_appendc(&b, '\0');
    log_warn("http: libmicrohttpd", "\"detail\":\"%s\"", b.data);
    buf_deinit(&b);
}

static int
open_listener(const char *addr, int port, bool *v6, char *err, size_t errlen)
{
    const char *host = addr;
    if (host == NULL || *host == '\0' || strcmp(host, "*") == 0) {
        host = "0.0.0.0";
    }
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "metrics_port %d: cannot resolve bind address '%s': %s", port,
                 host, gai_strerror(gai));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
    } else {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (res->ai_family == AF_INET6) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        }
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
            rc = -errno;
            close(fd);
        }
    }
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    if (rc < 0) {
        snprintf(err, errlen, "metrics_port %d on %s: %s", port, host, strerror(-rc));
        return rc;
    }
    return fd;
}

int
http_start(const struct http_options *opt, char *err, size_t errlen)
{
    if (opt->port <= 0) {
        return 0;
    }
    bool v6 = false;
    int fd = open_listener(opt->bind, opt->port, &v6, err, errlen);
    if (fd < 0) {
        return fd;
    }
    token = opt->token && *opt->token ? xstrdup(opt->token) : NULL;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (v6) {
        flags |= MHD_USE_IPv6;
    }
    /* The logger goes first, so every MHD message reaches our log. */
    daemon_ = MHD_start_daemon(flags, (uint16_t)opt->port, NULL, NULL, on_request, NULL,
                               MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                               MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_LIMIT,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
                               MHD_OPTION_END);
    if (daemon_ == NULL) {
        close(fd);
        free(token);
        token = NULL;
        snprintf(err, errlen, "metrics_port %d: libmicrohttpd could not start", opt->port);
        return -EIO;
    }
    bound_port = opt->port;
    log_info("http listening", "\"port\":%d,\"token\":%s", opt->port,
             token ? "true" : "false");
    bool loopback = opt->bind && (strncmp(opt->bind, "127.", 4) == 0 ||
                                  strcmp(opt->bind, "::1") == 0 ||
                                  strcmp(opt->bind, "localhost") == 0);
    if (!loopback && token == NULL) {
        log_warn("http: /metrics, /stats and /dashboard are served on a non-loopback "
                 "address without security.metrics_token",
                 "\"bind\":\"%s\",\"port\":%d", opt->bind ? opt->bind : "*", opt->port);
    }
    return 0;
}

void
http_stop(void)
{
    if (daemon_ == NULL) {
        return;
    }
    MHD_stop_daemon(daemon_);
    daemon_ = NULL;
    bound_port = 0;
    free(token);
    token = NULL;
}

int
http_port(void)
{
    return bound_port;
}
