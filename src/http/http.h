/*
 * http.h -- the observability HTTP port (SPEC 7), served by libmicrohttpd on
 * one thread of its own:
 *
 *   GET /metrics         Prometheus text format (http/metrics.h)
 *   GET /health          {"status":"healthy","service":"crabcache","version":"..."};
 *                        503 with status "starting" or "stopping" when the
 *                        server is not serving clients
 *   GET /stats           the STATS JSON of the native protocol
 *   GET /dashboard       a self-contained live page (no external assets)
 *   GET /dashboard/data  the JSON the page polls (http/dashboard.h)
 *
 * With a token set (security.metrics_token), every endpoint but /health
 * wants it, as "Authorization: Bearer TOKEN" or as the query parameter
 * ?token=TOKEN (so a browser can open the dashboard); others get 401. The
 * comparison takes the same time wherever the first difference is. Only GET
 * and HEAD are served (405 otherwise). Responses are never cached.
 *
 * Thread-safety: http_start and http_stop are for the main thread, once
 * each. Requests run on the HTTP thread and read the server's figures the
 * way INFO does (no lock a worker holds on its hot path).
 */
#ifndef CRAB_HTTP_HTTP_H
#define CRAB_HTTP_HTTP_H

#include <stddef.h>

struct http_options {
    const char *bind;  /* IPv4/IPv6 literal or host name; "*" = 0.0.0.0, "::" = all IPv6 */
    int port;          /* 0 = do not start */
    const char *token; /* NULL or "" = no token */
};

/*
 * Bind, listen and start the HTTP thread. Returns 0 (also when port is 0:
 * nothing to start) or -errno with a one-line message in err (for example
 * "metrics_port 9090 on 127.0.0.1: Address already in use").
 */
int http_start(const struct http_options *opt, char *err, size_t errlen);

/* Stop serving, close the socket and join the thread (no-op when not
 * started). In-flight responses are finished first. */
void http_stop(void);

/* The port actually bound (after http_start; 0 if not serving). */
int http_port(void);

#endif
