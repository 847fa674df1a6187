/*
 * main.c -- argv -> configuration -> server set-up -> run -> teardown.
 *
 * The main thread owns the signal handlers (a libuv loop of its own):
 * SIGTERM/SIGINT stop the workers (they finish what they were doing) and the
 * process exits 0; SIGHUP reopens the log file.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cluster/cluster.h"
#include "cmd/info.h"
#include "cmd/keys.h"
#include "cmd/later.h"
#include "cmd/pubsub.h"
#include "cmd/slowlog.h"
#include "conf/config.h"
#include "core/durable.h"
#include "core/server.h"
#include "http/http.h"
#include "http/sdnotify.h"
#include "net/net.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

static struct config cfg;

static void
on_signal(uv_signal_t *h, int signum)
{
    if (signum == SIGHUP) {
        int rc = log_reopen();
        log_info("SIGHUP: log file reopened", "\"ok\":%s", rc == 0 ? "true" : "false");
        return;
    }
    log_info("shutting down", "\"signal\":\"%s\"", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    uv_stop(h->loop);
}

static enum store_policy
store_policy_of(int p)
{
    switch (p) {
    case CONFIG_POLICY_NOEVICTION:
        return STORE_NOEVICTION;
    case CONFIG_POLICY_LRU:
        return STORE_LRU;
    default:
        return STORE_TINYLFU;
    }
}

static struct store_eviction
eviction_of(const struct config *c)
{
    struct store_eviction ev = {
        .high_watermark = c->eviction.high_watermark,
        .low_watermark = c->eviction.low_watermark,
        .batch = c->eviction.strategy == CONFIG_STRATEGY_BATCH,
        .batch_size = (unsigned)c->eviction.batch_eviction_size,
        .min_items = (uint64_t)c->eviction.min_items_threshold,
        .adaptive = c->eviction.adaptive_eviction,
        .admission_multiplier = c->eviction.admission_threshold_multiplier,
        .window_ratio = c->eviction.window_ratio,
    };
    return ev;
}

/* Pub/Sub: keyspace notifications and the subscribers' output limits. */
static void
apply_pubsub(const struct config *c)
{
    int flags = notify_parse(c->pubsub.notify_keyspace_events);
    notify_set(flags < 0 ? 0 : flags);
    pubsub_set_limits((size_t)c->pubsub.output_buffer_limit,
                      (size_t)c->pubsub.output_buffer_soft_limit,
                      c->pubsub.output_buffer_soft_seconds);
}

/* CONFIG SET hook: copy live settings into the running server. */
static void
on_config_change(struct config *c, int key_id, void *ctx)
{
    (void)key_id;
    (void)ctx;
    struct store *st = server.store;
    struct store_eviction ev = eviction_of(c);
    store_set_eviction(st, &ev);
    if (atomic_load(&st->max_memory) != (size_t)c->max_memory) {
        store_set_max_memory(st, (size_t)c->max_memory);
    }
    if (atomic_load(&st->policy) != (int)store_policy_of(c->eviction.policy)) {
        store_set_policy(st, store_policy_of(c->eviction.policy));
    }
    atomic_store(&server.max_connections, (uint64_t)c->max_connections);
    atomic_store(&server.idle_timeout_s, c->idle_timeout);
    atomic_store(&server.max_value_size, (size_t)c->max_value_size);
    log_set_level((enum log_level)c->log_level);
    slowlog_set_threshold(c->slowlog_log_slower_than);
    slowlog_set_max_len((size_t)c->slowlog_max_len);
    /* security (owner: net/security) */
    __atomic_store_n(&server.protected_mode, c->protected_mode, __ATOMIC_RELAXED);
    struct net_live live = {
        .max_command_size = (size_t)c->max_command_size,
        .max_output_buffer = (size_t)c->security.max_output_buffer,
        .rate_limit = c->rate_limiting.enabled,
        .rate_per_second = (double)c->rate_limiting.max_requests_per_second,
        .rate_burst = (double)c->rate_limiting.burst_capacity,
    };
    net_set_live(&live);
    if (key_id == CONFIG_KEY_PUBSUB_NOTIFY_KEYSPACE_EVENTS ||
        key_id == CONFIG_KEY_PUBSUB_OUTPUT_BUFFER_LIMIT ||
        key_id == CONFIG_KEY_PUBSUB_OUTPUT_BUFFER_SOFT_LIMIT ||
        key_id == CONFIG_KEY_PUBSUB_OUTPUT_BUFFER_SOFT_SECONDS) {
        apply_pubsub(c);
    }
}

/* The accepted tokens, NULL-terminated: every configured token, each split
 * at commas (CRABCACHE_AUTH_TOKEN="t1,t2" configures two tokens; a token
 * therefore cannot contain a comma), empty pieces and duplicates dropped.
 * NULL when there is none. Free with free_tokens. */
static char **
split_tokens(const struct config_strlist *l)
{
    char **out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        const char *p = l->items[i];
        while (*p) {
            size_t len = strcspn(p, ",");
            bool dup = len == 0;
            for (size_t j = 0; j < n && !dup; j++) {
                dup = strlen(out[j]) == len && memcmp(out[j], p, len) == 0;
            }
            if (!dup) {
                out = xrealloc(out, (n + 2) * sizeof(char *));
                out[n++] = xstrndup(p, len);
                out[n] = NULL;
            }
            p += len;
            if (*p == ',') {
                p++;
            }
        }
    }
    return out;
}

static void
free_tokens(char **t)
{
    for (size_t i = 0; t && t[i]; i++) {
        free(t[i]);
    }
    free(t);
}

static void
make_run_id(char *out)
{
    static const char hex[] = "0123456789abcdef";
    FILE *f = fopen("/dev/urandom", "rb");
    unsigned char raw[20] = {0};
    if (f) {
        if (fread(raw, 1, sizeof(raw), f) != sizeof(raw)) {
            memset(raw, 0x5a, sizeof(raw));
        }
        fclose(f);
    }
    for (int i = 0; i < 20; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[40] = '\0';
}

static bool
is_loopback_bind(const char *b)
{
    return strncmp(b, "127.", 4) == 0 || strcmp(b, "::1") == 0 || strcmp(b, "localhost") == 0;
}

int
main(int argc, char **argv)
{
    struct config_error err;
    memset(&err, 0, sizeof(err));
    int rc = config_load(&cfg, argc, argv, stdout, &err);
    if (rc != CONFIG_OK) {
        if (rc < 0) {
            fprintf(stderr, "%s\n", err.msg);
        }
        config_free(&cfg);
        return config_exit_status(rc);
    }
    if (log_setup((enum log_level)cfg.log_level, cfg.log_format == CONFIG_LOG_JSON,
                  cfg.log_file) < 0) {
        fprintf(stderr, "config error: log_file: cannot open %s: %s\n", cfg.log_file,
                strerror(errno));
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    /* bind may list several addresses; the first one is used. */
    char *bind = xstrdup(cfg.bind && *cfg.bind ? cfg.bind : "127.0.0.1");
    char *sp = strchr(bind, ' ');
    if (sp) {
        *sp = '\0';
    }
    unsigned threads = (unsigned)config_worker_threads(&cfg);
    unsigned shards = (unsigned)config_shard_count(&cfg);

    server.cfg = &cfg;
    server.bind = bind;
    server.port = (int)cfg.port;
    server.resp_port = (int)cfg.resp_port;
    server.threads = threads;
    server.protected_mode = cfg.protected_mode;
    server.max_connections = (uint64_t)cfg.max_connections;
    server.idle_timeout_s = cfg.idle_timeout;
    server.max_value_size = (size_t)cfg.max_value_size;
    /* server.auth_tokens is NULL-terminated, comma lists split (split_tokens). */
    char **tokens = cfg.security.auth_required ? split_tokens(&cfg.security.tokens) : NULL;
    server.auth_tokens = tokens;
    server.start_ms = clock_ms();
    server.lastsave_s = server.start_ms / 1000;
    server.active_expire = true;
    make_run_id(server.run_id);
    server.store = store_create(shards, (size_t)cfg.max_memory,
                                store_policy_of(cfg.eviction.policy));
    struct store_eviction ev = eviction_of(&cfg);
    store_set_eviction(server.store, &ev);
    mstream_init(&server.stream, server.store);
    prop_setup();
    cfg.on_change = on_config_change;
    {
        /* CONFIG GET shows the letters in Redis's canonical form (CONFIG SET
         * stores them so; the file or a flag may not have) */
        char canon[32];
        if (config_notify_canonical(cfg.pubsub.notify_keyspace_events, canon) == 0 &&
            strcmp(canon, cfg.pubsub.notify_keyspace_events) != 0) {
            free(cfg.pubsub.notify_keyspace_events);
            cfg.pubsub.notify_keyspace_events = xstrdup(canon);
        }
    }
    apply_pubsub(&cfg);
    memory_note_startup(); /* before any data is loaded: MEMORY STATS's baseline */
    slowlog_set_threshold(cfg.slowlog_log_slower_than);
    slowlog_set_max_len((size_t)cfg.slowlog_max_len);

    if (server.protected_mode && !is_loopback_bind(bind) && server.auth_tokens == NULL) {
        log_warn("protected mode: bound to a non-loopback address without an auth token; "
                 "only loopback clients are served until auth_token is set or "
                 "protected_mode = false",
                 "\"bind\":\"%s\"", bind);
    }

    char msg[256];
    /* HTTP first, so /health answers 503 "starting" during recovery. */
    server.metrics_port = cfg.metrics_enabled ? (int)cfg.metrics_port : 0;
    struct http_options hopt = {
        .bind = bind,
        .port = server.metrics_port,
        .token = cfg.security.metrics_token,
    };
    if (http_start(&hopt, msg, sizeof(msg)) < 0) {
        log_error("start-up failed", "\"error\":\"%s\"", msg);
        fprintf(stderr, "crabcache: %s\n", msg);
        return 1;
    }
    if (durable_open(&cfg, net_wake_durable, msg, sizeof(msg)) != 0) {
        http_stop();
        log_error("start-up failed", "\"error\":\"%s\"", msg);
        fprintf(stderr, "crabcache: %s\n", msg);
        return 1;
    }
    /* The cluster before the listeners, so that a worker's first request
     * already sees a topology view (an empty one answers CLUSTERDOWN). */
    if (cfg.cluster.enabled &&
        cluster_start(&cfg, server.store, &server.stream, later_retry_wake,
                      durable_enabled() && durable_sync() ? durable_lsn : NULL) != 0) {
        durable_close();
        http_stop();
        fprintf(stderr, "crabcache: the cluster layer did not start (see the log)\n");
        return 1;
    }

    struct net_options nopt = {
        .bind = bind,
        .port = (int)cfg.port,
        .resp_port = (int)cfg.resp_port,
        .threads = threads,
        .max_command_size = (size_t)cfg.max_command_size,
        .max_output_buffer = (size_t)cfg.security.max_output_buffer,
        .max_line = 1024 * 1024,
        .cron_hz = 10,
        .cluster = cfg.cluster.enabled,
        .proxy_port = cfg.cluster.enabled ? (int)cfg.cluster.proxy_port : 0,
        /* security (owner: net/security) */
        .allowed_ips = cfg.security.allowed_ips.items,
        .n_allowed_ips = cfg.security.allowed_ips.n,
        .tls_port = (int)cfg.security.tls_port,
        .tls_cert_file = cfg.security.tls_cert_file,
        .tls_key_file = cfg.security.tls_key_file,
        .tls_ca_cert_file = cfg.security.tls_ca_cert_file,
        .tls_auth_clients = cfg.security.tls_auth_clients,
        .rate_limit = cfg.rate_limiting.enabled,
        .rate_per_second = (double)cfg.rate_limiting.max_requests_per_second,
        .rate_burst = (double)cfg.rate_limiting.burst_capacity,
    };
    if (net_start(&nopt, msg, sizeof(msg)) < 0) {
        http_stop();
        log_error("start-up failed", "\"error\":\"%s\"", msg);
        fprintf(stderr, "crabcache: %s\n", msg);
        return 1;
    }
    if (cfg.security.tls_port || server.auth_tokens || cfg.security.allowed_ips.n ||
        cfg.rate_limiting.enabled) {
        size_t ntok = 0;
        while (server.auth_tokens && server.auth_tokens[ntok]) {
            ntok++;
        }
        log_info("security", "\"auth_tokens\":%zu,\"allowed_ips\":%zu,\"tls_port\":%d,"
                 "\"tls_auth_clients\":%s,\"rate_limit\":%s",
                 ntok, cfg.security.allowed_ips.n, (int)cfg.security.tls_port,
                 cfg.security.tls_auth_clients ? "true" : "false",
                 cfg.rate_limiting.enabled ? "true" : "false");
    }
    log_info("crabcache ready",
             "\"version\":\"%s\",\"bind\":\"%s\",\"port\":%d,\"resp_port\":%d,"
             "\"threads\":%u,\"shards\":%u,\"max_memory\":%llu",
             CRABCACHE_VERSION, bind, server.port, server.resp_port, threads,
             server.store->nshards, (unsigned long long)cfg.max_memory);
    atomic_store(&server.state, SERVER_SERVING);
    sdnotify_send("READY=1\nSTATUS=serving");

    uv_loop_t *loop = uv_default_loop();
    uv_signal_t sigterm, sigint, sighup;
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sighup);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sighup, on_signal, SIGHUP);
    uv_run(loop, UV_RUN_DEFAULT);

    atomic_store(&server.state, SERVER_STOPPING);
    sdnotify_send("STOPPING=1");
    net_stop();
    cluster_stop();
    durable_close();
    http_stop();
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sighup, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    mstream_deinit(&server.stream);
    store_destroy(&server.store);
    log_info("bye", NULL);
    server.auth_tokens = NULL;
    free_tokens(tokens);
    config_free(&cfg);
    free(bind);
    log_teardown();
    return 0;
}
