/*
 * test_config.c -- unit tests of the configuration module (src/conf/config*).
 *
 * Real temp files and real setenv: every test starts from a clean
 * environment (all CRABCACHE_* names of the key table unset). Error messages
 * are compared whole, since they are what users see. The consistency tests
 * keep config/default.toml and docs/configuration.md in step with the key
 * table (ctest runs this binary from the source directory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"
#include "util/glob.h"
#include "conf/config_int.h"
#include "conf/toml.h"

/* ----- helpers ---------------------------------------------------------- */

static void
clear_env(void)
{
    char name[128];
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        struct config_key_info ki;
        config_key_info(id, &ki);
        config_key_env_name(id, name, sizeof(name));
        unsetenv(name);
        for (const char *e = ki.env; e != NULL && *e;) {
            size_t n = strcspn(e, "|");
            snprintf(name, sizeof(name), "%.*s", (int)n, e);
            unsetenv(name);
            e += n + (e[n] == '|');
        }
    }
    unsetenv("CRABCACHE_CONFIG");
}

static int
setup(void **state)
{
    clear_env();
    return 0;
}

static char tmp_paths[8][64];
static int ntmp;

static const char *
write_tmp(const char *text)
{
    char *path = tmp_paths[ntmp++ % 8];
    snprintf(path, 64, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int
teardown(void **state)
{
    for (int i = 0; i < 8; i++) {
        if (tmp_paths[i][0]) {
            unlink(tmp_paths[i]);
            tmp_paths[i][0] = '\0';
        }
    }
    clear_env();
    return 0;
}

/* config_load with argv = {"crabcache", args..., NULL}; output discarded
 * unless out is given. */
static int
load_args(struct config *cfg, struct config_error *err, FILE *out, const char *const *args)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"crabcache";
    for (; args != NULL && *args != NULL; args++) {
        argv[argc++] = (char *)*args;
    }
    argv[argc] = NULL;
    FILE *sink = out ? out : fopen("/dev/null", "w");
    int rc = config_load(cfg, argc, argv, sink, err);
    if (out == NULL) {
        fclose(sink);
    }
    return rc;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Load a file with contents text plus extra args; expect success. */
static void
load_text_ok(struct config *cfg, const char *text, const char *const *extra)
{
    struct config_error err;
    const char *args[32];
    int n = 0;
    args[n++] = "--config";
    args[n++] = write_tmp(text);
    for (; extra != NULL && *extra; extra++) {
        args[n++] = *extra;
    }
    args[n] = NULL;
    int rc = load_args(cfg, &err, NULL, args);
    if (rc != CONFIG_OK) {
        fail_msg("config_load failed (%d): %s", rc, err.msg);
    }
}

/* Expect failure with exactly this message (FILE in want is replaced by the
 * temp file's path) and code. */
static void
expect_err(const char *text, const char *const *extra, int code, const char *want)
{
    struct config cfg;
    struct config_error err;
    const char *args[32];
    char expect[1024];
    int n = 0;
    const char *path = NULL;
    if (text != NULL) {
        path = write_tmp(text);
        args[n++] = "--config";
        args[n++] = path;
    }
    for (; extra != NULL && *extra; extra++) {
        args[n++] = *extra;
    }
    args[n] = NULL;
    int rc = load_args(&cfg, &err, NULL, args);
    config_free(&cfg);
    const char *f = strstr(want, "FILE");
    if (f != NULL && path != NULL) {
        snprintf(expect, sizeof(expect), "%.*s%s%s", (int)(f - want), want, path, f + 4);
    } else {
        snprintf(expect, sizeof(expect), "%s", want);
    }
    if (rc >= 0 || strcmp(err.msg, expect) != 0 || rc != code || err.code != code) {
        fail_msg("\n  got:  (%d) %s\n  want: (%d) %s\n  document: %s", rc, rc < 0 ? err.msg : "",
                 code, expect, text ? text : "(none)");
    }
}

/* ----- defaults and the files that document them ------------------------ */

static void
test_defaults(void **state)
{
    struct config cfg;
    config_defaults(&cfg);
    assert_int_equal(cfg.port, 8000);
    assert_int_equal(cfg.resp_port, 6379);
    assert_int_equal(cfg.metrics_port, 9090);
    assert_string_equal(cfg.bind, "127.0.0.1");
    assert_int_equal(cfg.threads, 0);
    assert_true(cfg.max_memory == 1ull << 30);
    assert_true(cfg.max_value_size == 512ull << 20);
    assert_true(cfg.max_command_size == 1ull << 30);
    assert_int_equal(cfg.max_connections, 10000);
    assert_true(cfg.protected_mode);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(cfg.log_format, CONFIG_LOG_JSON);
    assert_string_equal(cfg.log_file, "");
    assert_false(cfg.wal.enabled);
    assert_int_equal(cfg.wal.sync_policy, CONFIG_SYNC_ASYNC);
    assert_int_equal(cfg.eviction.policy, CONFIG_POLICY_TINYLFU);
    assert_true(cfg.eviction.high_watermark == 0.85);
    assert_true(cfg.eviction.low_watermark == 0.70);
    assert_true(cfg.eviction.window_ratio == 0.005);
    assert_int_equal(cfg.cluster.replication_factor, 3);
    assert_int_equal(cfg.cluster.virtual_nodes, 256);
    assert_int_equal(cfg.cluster.read_strategy, CONFIG_READ_ROUND_ROBIN);
    assert_int_equal(cfg.security.auth_tokens.n, 0);
    assert_false(cfg.security.auth_required);
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        assert_int_equal(cfg.source[id], CONFIG_SRC_DEFAULT);
    }
    config_free(&cfg);

    /* no arguments at all: defaults, nothing else */
    struct config_error err;
    assert_int_equal(load_args(&cfg, &err, NULL, NULL), CONFIG_OK);
    assert_int_equal(cfg.port, 8000);
    assert_null(cfg.config_file);
    assert_true(config_worker_threads(&cfg) >= 1);
    assert_int_equal(config_shard_count(&cfg), 4 * config_worker_threads(&cfg));
    assert_int_equal(config_cluster_port(&cfg), 18000);
    config_free(&cfg);
}

static void
test_default_toml_matches_table(void **state)
{
    char err[512];
    struct toml_value *root = toml_parse_file("config/default.toml", err, sizeof(err));
    if (root == NULL) {
        fail_msg("config/default.toml: %s", err);
    }
    /* every key of the table is in the file under its canonical name */
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        struct config_key_info ki;
        config_key_info(id, &ki);
        if (toml_get_path(root, ki.name) == NULL) {
            fail_msg("config/default.toml lacks %s", ki.name);
        }
    }
    toml_free(root);

    /* loading it changes nothing: every value equals the built-in default */
    struct config def, cfg;
    struct config_error cerr;
    config_defaults(&def);
    int rc = load_args(&cfg, &cerr, NULL, ARGS("--config", "config/default.toml"));
    if (rc != CONFIG_OK) {
        fail_msg("%s", cerr.msg);
    }
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        char a[256], b[256];
        config_format_value(&def, id, a, sizeof(a));
        config_format_value(&cfg, id, b, sizeof(b));
        if (strcmp(a, b) != 0) {
            fail_msg("config/default.toml: %s = %s, built-in default %s", conf__keys[id].name, b, a);
        }
        /* and every key came from the file, under no other name */
        assert_int_equal(cfg.source[id], CONFIG_SRC_FILE);
    }
    config_free(&def);
    config_free(&cfg);

    /* every key line has a comment line right above it */
    FILE *f = fopen("config/default.toml", "r");
    assert_non_null(f);
    char line[512], prev[512] = "";
    int lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (line[0] != '#' && line[0] != '[' && line[0] != '\n' && strchr(line, '=') != NULL &&
            prev[0] != '#') {
            fail_msg("config/default.toml:%d: key without a comment above it", lineno);
        }
        snprintf(prev, sizeof(prev), "%s", line);
    }
    fclose(f);
}

static bool
doc_has(const char *doc, const char *word)
{
    /* as a `code` span, so that "port" does not match inside "resp_port" */
    char w[160];
    snprintf(w, sizeof(w), "`%s`", word);
    return strstr(doc, w) != NULL;
}

/* notify-keyspace-events: Redis's letters in its CONFIG GET order, bad ones refused,
 * and CONFIG SET stores the canonical form. */
static void
test_notify_canonical(void **state)
{
    static const char *cases[][2] = {
        {"", ""},         {"KEA", "AKE"},     {"AKE", "AKE"},    {"Kx", "xK"},
        {"E$x", "$xE"},   {"Kg$lshzxetd", "AK"}, {"An", "A"},    {"nK", "nK"},
        {"mKE", "KEm"},   {"eEgK", "geKE"},   {"KK", "K"},
    };
    char out[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(config_notify_canonical(cases[i][0], out), 0);
        assert_string_equal(out, cases[i][1]);
    }
    assert_int_equal(config_notify_canonical("KEq", out), -1);
    assert_int_equal(config_notify_canonical("a", out), -1);
    struct config cfg;
    config_defaults(&cfg);
    char err[512];
    assert_int_equal(config_set_live(&cfg, "notify-keyspace-events", "KEA", err, sizeof(err)), 0);
    assert_string_equal(cfg.pubsub.notify_keyspace_events, "AKE");
    assert_int_equal(config_set_live(&cfg, "notify-keyspace-events", "K?", err, sizeof(err)), -1);
    assert_string_equal(err, "ERR CONFIG SET failed (possibly related to argument "
                             "'notify-keyspace-events') - Invalid event class character. Use "
                             "'Ag$lshzxeKEtmdn'.");
    assert_string_equal(cfg.pubsub.notify_keyspace_events, "AKE");
    config_free(&cfg);
}

static void
test_docs_list_every_name(void **state)
{
    FILE *f = fopen("docs/configuration.md", "r");
    assert_non_null(f);
    static char doc[256 * 1024];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    doc[n] = '\0';
    fclose(f);
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        struct config_key_info ki;
        char env[128], one[128];
        config_key_info(id, &ki);
        config_key_env_name(id, env, sizeof(env));
        if (!doc_has(doc, ki.name) || !doc_has(doc, env)) {
            fail_msg("docs/configuration.md: %s or %s missing", ki.name, env);
        }
        if (ki.redis_name != NULL && !doc_has(doc, ki.redis_name)) {
            fail_msg("docs/configuration.md: redis name %s missing", ki.redis_name);
        }
        for (const char *lists[2] = {ki.aliases, ki.env}, **l = lists; l < lists + 2; l++) {
            for (const char *e = *l; e != NULL && *e;) {
                size_t k = strcspn(e, "|");
                snprintf(one, sizeof(one), "%.*s", (int)k, e);
                if (!doc_has(doc, one)) {
                    fail_msg("docs/configuration.md: %s (of %s) missing", one, ki.name);
                }
                e += k + (e[k] == '|');
            }
        }
    }
}

static void
test_key_table_sane(void **state)
{
    /* every name (canonical, alias, Redis) resolves to its own key only */
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        struct config_key_info ki;
        config_key_info(id, &ki);
        assert_non_null(ki.help);
        assert_true(strlen(ki.help) > 10);
        assert_int_equal(config_key_find(ki.name), id);
        if (ki.redis_name != NULL) {
            assert_int_equal(config_key_find(ki.redis_name), id);
        }
        for (const char *e = ki.aliases; e != NULL && *e;) {
            char one[96];
            size_t k = strcspn(e, "|");
            snprintf(one, sizeof(one), "%.*s", (int)k, e);
            if (config_key_find(one) != id) {
                fail_msg("alias %s of %s resolves to %d", one, ki.name, config_key_find(one));
            }
            e += k + (e[k] == '|');
        }
        for (int j = 0; j < id; j++) {
            struct config_key_info kj;
            config_key_info(j, &kj);
            assert_string_not_equal(ki.name, kj.name);
            if (ki.redis_name && kj.redis_name) {
                assert_string_not_equal(ki.redis_name, kj.redis_name);
            }
        }
    }
    assert_int_equal(config_key_info(-1, &(struct config_key_info){0}), -1);
    assert_int_equal(config_key_info(CONFIG_KEY_COUNT, &(struct config_key_info){0}), -1);
    assert_int_equal(config_key_find("nope"), -1);
    assert_int_equal(config_key_find("enabled"), -2);     /* several sections have one */
    assert_int_equal(config_key_find("tls-port"), CONFIG_KEY_SECURITY_TLS_PORT);
    assert_int_equal(config_key_find("wal_sync_policy"), CONFIG_KEY_WAL_SYNC_POLICY);
    assert_int_equal(config_key_find("SECURITY.TLS-PORT"), CONFIG_KEY_SECURITY_TLS_PORT);
    assert_int_equal(config_key_find("max-requests-per-second"), CONFIG_KEY_RATE_LIMITING_MAX_RPS);
}

/* ----- layers and precedence -------------------------------------------- */

static void
test_precedence(void **state)
{
    struct config cfg;
    const char *file = write_tmp("# ports\nport = 7001\nresp_port = 7002\nmetrics_port = 7003\n"
                                 "[eviction]\npolicy = \"lru\"\n");
    setenv("CRABCACHE_RESP_PORT", "7102", 1);
    setenv("CRABCACHE_METRICS_PORT", "7103", 1);
    struct config_error err;
    int rc = load_args(&cfg, &err, NULL, ARGS("--config", file, "--metrics-port", "7203"));
    assert_int_equal(rc, CONFIG_OK);
    assert_int_equal(cfg.port, 7001);         /* file */
    assert_int_equal(cfg.resp_port, 7102);    /* env beats file */
    assert_int_equal(cfg.metrics_port, 7203); /* flag beats env */
    assert_int_equal(cfg.eviction.policy, CONFIG_POLICY_LRU);
    assert_int_equal(cfg.source[CONFIG_KEY_PORT], CONFIG_SRC_FILE);
    assert_int_equal(cfg.line[CONFIG_KEY_PORT], 2);
    assert_int_equal(cfg.line[CONFIG_KEY_EVICTION_POLICY], 6);
    assert_int_equal(cfg.source[CONFIG_KEY_RESP_PORT], CONFIG_SRC_ENV);
    assert_int_equal(cfg.source[CONFIG_KEY_METRICS_PORT], CONFIG_SRC_FLAG);
    assert_int_equal(cfg.source[CONFIG_KEY_BIND], CONFIG_SRC_DEFAULT);
    assert_string_equal(cfg.config_file, file);
    config_free(&cfg);

    /* the file named by CRABCACHE_CONFIG, and --config beating it */
    setenv("CRABCACHE_CONFIG", file, 1);
    assert_int_equal(load_args(&cfg, &err, NULL, NULL), CONFIG_OK);
    assert_int_equal(cfg.port, 7001);
    config_free(&cfg);
    const char *other = write_tmp("port = 7501\n");
    assert_int_equal(load_args(&cfg, &err, NULL, ARGS("-c", other)), CONFIG_OK);
    assert_int_equal(cfg.port, 7501);
    config_free(&cfg);
    assert_int_equal(load_args(&cfg, &err, NULL, ARGS("--config=" "/dev/null", "--port=7601")), CONFIG_OK);
    assert_int_equal(cfg.port, 7601);
    config_free(&cfg);
}

static void
test_env_names(void **state)
{
    struct config cfg;
    struct config_error err;
    /* the original CrabCache variables */
    setenv("CRABCACHE_ENABLE_WAL", "true", 1);
    setenv("CRABCACHE_WAL_SYNC_POLICY", "sync", 1);
    setenv("CRABCACHE_WAL_DIR", "/var/lib/crab", 1);
    setenv("CRABCACHE_BIND_ADDR", "0.0.0.0", 1);
    setenv("CRABCACHE_ENABLE_AUTH", "true", 1);
    setenv("CRABCACHE_AUTH_TOKEN", "s3cret", 1);
    setenv("CRABCACHE_ALLOWED_IPS", "127.0.0.1, 192.168.1.0/24", 1);
    setenv("CRABCACHE_ENABLE_RATE_LIMIT", "true", 1);
    setenv("CRABCACHE_MAX_REQUESTS_PER_SECOND", "50", 1);
    setenv("CRABCACHE_NUM_SHARDS", "8", 1);
    setenv("CRABCACHE_MAX_MEMORY_PER_SHARD", "64mb", 1);
    setenv("CRABCACHE_EVICTION_STRATEGY", "batch", 1);
    setenv("CRABCACHE_EVICTION_BATCH_SIZE", "50", 1);
    setenv("CRABCACHE_EVICTION_MIN_ITEMS", "500", 1);
    setenv("CRABCACHE_EVICTION_HIGH_WATERMARK", "0.9", 1);
    setenv("CRABCACHE_EVICTION_ADMISSION_MULTIPLIER", "1.5", 1);
    setenv("CRABCACHE_CONNECTION_TIMEOUT", "30", 1);
    setenv("CRABCACHE_LOG_LEVEL", "warning", 1);
    setenv("CRABCACHE_LOG_FORMAT", "pretty", 1);
    setenv("CRABCACHE_BIN_DIR", "/not/a/setting", 1); /* unknown CRABCACHE_* are ignored */
    assert_int_equal(load_args(&cfg, &err, NULL, NULL), CONFIG_OK);
    assert_true(cfg.wal.enabled);
    assert_int_equal(cfg.wal.sync_policy, CONFIG_SYNC_SYNC);
    assert_string_equal(cfg.wal.dir, "/var/lib/crab");
    assert_string_equal(cfg.bind, "0.0.0.0");
    assert_true(cfg.security.auth_required);
    assert_int_equal(cfg.security.tokens.n, 1);
    assert_string_equal(cfg.security.tokens.items[0], "s3cret");
    assert_int_equal(cfg.security.allowed_ips.n, 2);
    assert_string_equal(cfg.security.allowed_ips.items[1], "192.168.1.0/24");
    assert_true(cfg.rate_limiting.enabled);
    assert_int_equal(cfg.rate_limiting.max_requests_per_second, 50);
    assert_int_equal(cfg.shards, 8);
    assert_true(cfg.max_memory == 8 * (64ull << 20)); /* per shard x shards */
    assert_int_equal(cfg.eviction.strategy, CONFIG_STRATEGY_BATCH);
    assert_int_equal(cfg.eviction.batch_eviction_size, 50);
    assert_int_equal(cfg.eviction.min_items_threshold, 500);
    assert_true(cfg.eviction.high_watermark == 0.9);
    assert_true(cfg.eviction.admission_threshold_multiplier == 1.5);
    assert_int_equal(cfg.idle_timeout, 30);
    assert_int_equal(cfg.log_level, LOG_WARN);
    assert_int_equal(cfg.log_format, CONFIG_LOG_TEXT);
    config_free(&cfg);
    unsetenv("CRABCACHE_BIN_DIR");

    /* the automatic name wins over the extra ones */
    clear_env();
    setenv("CRABCACHE_BIND", "10.0.0.1", 1);
    setenv("CRABCACHE_BIND_ADDR", "10.0.0.2", 1);
    setenv("CRABCACHE_SECURITY_TLS_AUTH_CLIENTS", "no", 1);
    assert_int_equal(load_args(&cfg, &err, NULL, NULL), CONFIG_OK);
    assert_string_equal(cfg.bind, "10.0.0.1");
    config_free(&cfg);
}

static void
test_original_file(void **state)
{
    /* the shape of the original CrabCache config/default.toml */
    struct config cfg;
    load_text_ok(&cfg,
                 "bind_addr = \"0.0.0.0\"\nport = 8000\nnum_shards = 4\n"
                 "max_memory_per_shard = 1073741824  # 1GB\n"
                 "enable_wal = false\nwal_dir = \"./data/wal\"\n"
                 "[wal]\nmax_segment_size = 67108864\nbuffer_size = 4096\nflush_interval_ms = 1000\n"
                 "sync_policy = \"async\"\n"
                 "[metrics]\nenabled = true\npath = \"/metrics\"\nport = 8001\n"
                 "[security]\nenable_auth = false\nallowed_ips = []\nenable_tls = false\n"
                 "max_command_size = 1048576\n"
                 "[rate_limiting]\nenabled = false\nmax_requests_per_second = 1000\n"
                 "burst_capacity = 100\nwindow_seconds = 1\n"
                 "[connection]\nmax_connections = 1000\nconnection_timeout_seconds = 30\n"
                 "keepalive_timeout_seconds = 300\ntcp_nodelay = true\n"
                 "tcp_recv_buffer_size = 65536\ntcp_send_buffer_size = 65536\n"
                 "[connection.pipeline]\nenabled = true\nmax_batch_size = 16\nbuffer_size = 16384\n"
                 "timeout_ms = 100\n"
                 "[logging]\nlevel = \"info\"\nformat = \"json\"\nenable_file = false\n"
                 "file_path = \"./logs/crabcache.log\"\nmax_file_size_mb = 100\nmax_files = 10\n"
                 "[eviction]\nenabled = true\nwindow_ratio = 0.01\nsketch_width = 1024\n"
                 "sketch_depth = 4\nmemory_high_watermark = 0.8\nmemory_low_watermark = 0.6\n"
                 "reset_interval_secs = 3600\nmax_capacity = 10000\neviction_strategy = \"gradual\"\n"
                 "batch_eviction_size = 100\nmin_items_threshold = 10\n"
                 "admission_threshold_multiplier = 1.0\nadaptive_eviction = true\n",
                 NULL);
    assert_string_equal(cfg.bind, "0.0.0.0");
    assert_true(cfg.max_memory == 4ull << 30);
    assert_int_equal(cfg.metrics_port, 8001);
    assert_true(cfg.max_command_size == 1048576);
    assert_int_equal(cfg.max_connections, 1000);
    assert_int_equal(cfg.idle_timeout, 30);
    assert_string_equal(cfg.log_file, ""); /* enable_file = false */
    assert_true(cfg.eviction.high_watermark == 0.8);
    assert_true(cfg.eviction.low_watermark == 0.6);
    assert_int_equal(cfg.eviction.policy, CONFIG_POLICY_TINYLFU);
    config_free(&cfg);

    /* eviction.enabled = false means noeviction; metrics.enabled = false turns HTTP off */
    load_text_ok(&cfg, "[eviction]\nenabled = false\n[metrics]\nenabled = false\n", NULL);
    assert_int_equal(cfg.eviction.policy, CONFIG_POLICY_NOEVICTION);
    assert_int_equal(cfg.metrics_port, 0);
    config_free(&cfg);

    /* [logging] and inline tables */
    load_text_ok(&cfg, "logging = { level = \"debug\", file = \"/tmp/x.log\" }\n"
                       "security = { auth_tokens = [\"a\", \"b\", \"a\"], auth_token = \"b\" }\n", NULL);
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    assert_string_equal(cfg.log_file, "/tmp/x.log");
    assert_int_equal(cfg.security.tokens.n, 2); /* deduplicated */
    assert_true(cfg.security.auth_required);
    config_free(&cfg);
}

static void
test_flags(void **state)
{
    struct config cfg;
    struct config_error err;
    const char *cert = write_tmp("cert");
    const char *key = write_tmp("key");
    int rc = load_args(&cfg, &err, NULL,
                       ARGS("--port", "7000", "--bind", "0.0.0.0 ::1", "--threads", "3", "--max-memory",
                            "64mb", "--eviction-policy", "lru", "--resp-port", "7379", "--metrics-port",
                            "7090", "--wal-dir", "/tmp/w", "--wal-sync-policy", "always", "--auth-token",
                            "tok", "--max-connections", "99", "--tls-port", "7443", "--tls-cert-file",
                            cert, "--tls-key-file", key, "--log-level", "debug", "--log-format", "text"));
    if (rc != CONFIG_OK) {
        fail_msg("%s", err.msg);
    }
    assert_int_equal(cfg.port, 7000);
    assert_string_equal(cfg.bind, "0.0.0.0 ::1");
    assert_int_equal(cfg.threads, 3);
    assert_int_equal(config_shard_count(&cfg), 12);
    assert_true(cfg.max_memory == 64ull << 20);
    assert_int_equal(cfg.eviction.policy, CONFIG_POLICY_LRU);
    assert_int_equal(cfg.resp_port, 7379);
    assert_int_equal(cfg.metrics_port, 7090);
    assert_string_equal(cfg.wal.dir, "/tmp/w");
    assert_int_equal(cfg.wal.sync_policy, CONFIG_SYNC_SYNC);
    assert_string_equal(cfg.security.auth_token, "tok");
    assert_true(cfg.security.auth_required);
    assert_int_equal(cfg.max_connections, 99);
    assert_int_equal(cfg.security.tls_port, 7443);
    assert_true(cfg.security.tls_enabled);
    assert_string_equal(cfg.security.tls_cert_file, cert);
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    assert_int_equal(cfg.log_format, CONFIG_LOG_TEXT);
    config_free(&cfg);

    /* --key=value, --section.key, underscores, Redis names, bools with and without a value */
    rc = load_args(&cfg, &err, NULL,
                   ARGS("--eviction.high_watermark=0.9", "--eviction.low-watermark", "0.5",
                        "--maxmemory", "1.5gb", "--wal.enabled", "--protected-mode", "no",
                        "--cluster.seeds", "10.0.0.1:17000,[::1]:17001", "--security.allowed_ips=",
                        "--idle-timeout", "5m", "--cluster.heartbeat-interval-ms", "1.5s",
                        "--appendonly=yes", "--max_value_size", "1kib", "--tls-auth-clients", "false"));
    if (rc != CONFIG_OK) {
        fail_msg("%s", err.msg);
    }
    assert_true(cfg.eviction.high_watermark == 0.9);
    assert_true(cfg.eviction.low_watermark == 0.5);
    assert_true(cfg.max_memory == 3ull << 29);
    assert_true(cfg.wal.enabled);
    assert_false(cfg.protected_mode);
    assert_int_equal(cfg.cluster.seeds.n, 2);
    assert_string_equal(cfg.cluster.seeds.items[1], "[::1]:17001");
    assert_int_equal(cfg.security.allowed_ips.n, 0);
    assert_int_equal(cfg.idle_timeout, 300);
    assert_int_equal(cfg.cluster.heartbeat_interval_ms, 1500);
    assert_true(cfg.max_value_size == 1024);
    assert_false(cfg.security.tls_auth_clients);
    config_free(&cfg);
}

static void
test_sizes_and_durations(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0}, {"10", 10}, {"10b", 10}, {"512kb", 512ull << 10}, {"512KB", 512ull << 10},
        {"64mb", 64ull << 20}, {"64m", 64ull << 20}, {"1gb", 1ull << 30}, {"1GiB", 1ull << 30},
        {"1.5gb", 3ull << 29}, {"0.5k", 512}, {"2t", 2ull << 40}, {"1 gb", 1ull << 30},
        {"18446744073709551615", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;
        if (conf__parse_size(ok[i].s, &v) != 0 || v != ok[i].v) {
            fail_msg("size %s: got %llu", ok[i].s, (unsigned long long)v);
        }
    }
    static const char *const bad[] = {"", "mb", "-1", "1.5.5gb", "1xb", "1gbb", ".5gb", "1.gb",
                                      "99999999999tb", "18446744073709551616", "1e9", " 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v;
        if (conf__parse_size(bad[i], &v) == 0) {
            fail_msg("size \"%s\" accepted as %llu", bad[i], (unsigned long long)v);
        }
    }
    int64_t d;
    assert_int_equal(conf__parse_duration("500ms", 1, &d), 0);
    assert_int_equal(d, 500);
    assert_int_equal(conf__parse_duration("1.5s", 1, &d), 0);
    assert_int_equal(d, 1500);
    assert_int_equal(conf__parse_duration("30", 1000, &d), 0);
    assert_int_equal(d, 30);
    assert_int_equal(conf__parse_duration("5m", 1000, &d), 0);
    assert_int_equal(d, 300);
    assert_int_equal(conf__parse_duration("2h", 1000, &d), 0);
    assert_int_equal(d, 7200);
    assert_int_equal(conf__parse_duration("1d", 1, &d), 0);
    assert_int_equal(d, 86400000);
    assert_int_equal(conf__parse_duration("1500ms", 1000, &d), -1); /* not whole seconds */
    assert_int_equal(conf__parse_duration("5 weeks", 1000, &d), -1);
    assert_int_equal(conf__parse_duration("-5", 1000, &d), -1);

    /* sizes in the file: integer bytes or strings */
    struct config cfg;
    load_text_ok(&cfg, "max_memory = 1048576\nmax_value_size = \"1mb\"\n[wal]\nmax_segment_size = \"2MiB\"\n",
                 NULL);
    assert_true(cfg.max_memory == 1048576);
    assert_true(cfg.max_value_size == 1048576);
    assert_true(cfg.wal.max_segment_size == 2097152);
    config_free(&cfg);
}

/* ----- --help, --version, --check-config -------------------------------- */

static void
test_help_version_check(void **state)
{
    struct config cfg;
    struct config_error err;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_int_equal(load_args(&cfg, &err, out, ARGS("--port", "1", "--help")), CONFIG_EXIT_HELP);
    fclose(out);
    config_free(&cfg);
    assert_non_null(strstr(text, "Usage: crabcache"));
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        struct config_key_info ki;
        char want[256];
        config_key_info(id, &ki);
        snprintf(want, sizeof(want), "[%s]\n      %s", *ki.default_value ? ki.default_value : "\"\"", ki.help);
        if (strstr(text, want) == NULL || strstr(text, ki.name) == NULL) {
            fail_msg("--help lacks %s (%s)", ki.name, want);
        }
    }
    /* the short flags of SPEC section 1 are the ones shown */
    static const char *const shown[] = {"--port N", "--bind STR", "--threads N", "--max-memory SIZE",
                                        "--eviction-policy tinylfu|lru|noeviction", "--resp-port N",
                                        "--metrics-port N", "--wal-dir STR", "--wal-sync-policy",
                                        "--auth-token STR", "--max-connections N", "--tls-port N",
                                        "--tls-cert-file STR", "--tls-key-file STR", "--log-level",
                                        "--log-format", "--eviction.enabled yes|no"};
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        if (strstr(text, shown[i]) == NULL) {
            fail_msg("--help lacks \"%s\"", shown[i]);
        }
    }
    free(text);

    out = open_memstream(&text, &len);
    assert_int_equal(load_args(&cfg, &err, out, ARGS("-v")), CONFIG_EXIT_VERSION);
    fclose(out);
    config_free(&cfg);
    assert_string_equal(text, "crabcache " CRABCACHE_VERSION "\n");
    free(text);
    assert_int_equal(config_exit_status(CONFIG_EXIT_HELP), 0);
    assert_int_equal(config_exit_status(CONFIG_EXIT_VERSION), 0);
    assert_int_equal(config_exit_status(CONFIG_EXIT_CHECKED), 0);
    assert_int_equal(config_exit_status(CONFIG_OK), 0);
    assert_int_equal(config_exit_status(CONFIG_ETYPE), 2);

    /* --check-config: valid file with a note about an original key */
    const char *file = write_tmp("port = 7001\n[metrics]\npath = \"/metrics\"\n[security]\nauth_token = \"x\"\n");
    out = open_memstream(&text, &len);
    assert_int_equal(load_args(&cfg, &err, out, ARGS("--check-config", file, "--resp-port", "0")),
                     CONFIG_EXIT_CHECKED);
    fclose(out);
    config_free(&cfg);
    char want[256];
    snprintf(want, sizeof(want), "note: %s:3: metrics.path is an original CrabCache key with no effect here\n"
                                 "crabcache: configuration %s is valid\n"
                                 "  port = 7001  (file line 1)\n"
                                 "  resp_port = 0  (flag)\n"
                                 "  security.auth_token = (hidden)  (file line 5)\n", file, file);
    assert_string_equal(text, want);
    free(text);
    /* values equal to the defaults are not listed, wherever they came from */
    out = open_memstream(&text, &len);
    assert_int_equal(load_args(&cfg, &err, out, ARGS("--check-config", "config/default.toml", "--port", "8000")),
                     CONFIG_EXIT_CHECKED);
    fclose(out);
    config_free(&cfg);
    assert_string_equal(text, "crabcache: configuration config/default.toml is valid\n");
    free(text);
    /* --check-config with an invalid file is an ordinary error */
    const char *bad = write_tmp("\nport = -1\n");
    assert_int_equal(load_args(&cfg, &err, NULL, ARGS("--check-config", bad)), CONFIG_ERANGE);
    config_free(&cfg);
    snprintf(want, sizeof(want), "config error: %s:2: port: -1 is out of range 0..65535", bad);
    assert_string_equal(err.msg, want);
    assert_int_equal(err.line, 2);
    assert_string_equal(err.key, "port");
}

/* ----- every error path ------------------------------------------------- */

static void
test_file_errors(void **state)
{
    expect_err("port = 8000\nfoo = 1\n", NULL, CONFIG_EUNKNOWN, "config error: FILE:2: foo: unknown key");
    expect_err("[server]\nport = 1\n", NULL, CONFIG_EUNKNOWN,
               "config error: FILE:2: server.port: unknown key (did you mean port?)");
    expect_err("[nope]\n", NULL, CONFIG_EUNKNOWN, "config error: FILE:1: nope: unknown table");
    expect_err("port = \"abc\"\n", NULL, CONFIG_ETYPE,
               "config error: FILE:1: port: expected an integer, got string \"abc\"");
    expect_err("port = 80.5\n", NULL, CONFIG_ETYPE, "config error: FILE:1: port: expected an integer, got float");
    expect_err("\nport = 70000\n", NULL, CONFIG_ERANGE,
               "config error: FILE:2: port: 70000 is out of range 0..65535");
    expect_err("# x\n[eviction]\npolicy = \"lfu\"\n", NULL, CONFIG_ERANGE,
               "config error: FILE:3: eviction.policy: expected one of tinylfu, lru, noeviction, got \"lfu\"");
    expect_err("eviction_policy = 3\n", NULL, CONFIG_ETYPE,
               "config error: FILE:1: eviction_policy (eviction.policy): expected a string, got integer 3");
    expect_err("[eviction]\nhigh_watermark = 1.5\n", NULL, CONFIG_ERANGE,
               "config error: FILE:2: eviction.high_watermark: 1.5 is out of range (0, 1]");
    expect_err("[eviction]\nhigh_watermark = 0\n", NULL, CONFIG_ERANGE,
               "config error: FILE:2: eviction.high_watermark: 0 is out of range (0, 1]");
    expect_err("[eviction]\nwindow_ratio = nan\n", NULL, CONFIG_ERANGE,
               "config error: FILE:2: eviction.window_ratio: nan is out of range (0, 0.5]");
    expect_err("max_memory = \"12xb\"\n", NULL, CONFIG_ETYPE,
               "config error: FILE:1: max_memory: expected a size (bytes, or like \"64mb\", \"1.5gb\"), got \"12xb\"");
    expect_err("max_memory = true\n", NULL, CONFIG_ETYPE,
               "config error: FILE:1: max_memory: expected a size (bytes, or a string like \"64mb\"), got boolean true");
    expect_err("max_memory = -1\n", NULL, CONFIG_ETYPE,
               "config error: FILE:1: max_memory: expected a size (bytes, or a string like \"64mb\"), got integer -1");
    expect_err("max_value_size = \"8gb\"\n", NULL, CONFIG_ERANGE,
               "config error: FILE:1: max_value_size: 8589934592 is out of range 1..4gb");
    expect_err("protected_mode = \"yes\"\n", NULL, CONFIG_ETYPE,
               "config error: FILE:1: protected_mode: expected a boolean (true or false), got string \"yes\"");
    expect_err("idle_timeout = \"1500ms\"\n", NULL, CONFIG_ETYPE,
               "config error: FILE:1: idle_timeout: expected a duration in whole seconds (or like \"5m\"), got \"1500ms\"");
    expect_err("bind = [\"a\"]\n", NULL, CONFIG_ETYPE,
               "config error: FILE:1: bind: expected a string, got array");
    expect_err("bind = \"localhost nonsense\"\n", NULL, CONFIG_ERANGE,
               "config error: FILE:1: bind: \"nonsense\" is not an IPv4 or IPv6 address");
    expect_err("bind = \"  \"\n", NULL, CONFIG_ERANGE, "config error: FILE:1: bind: needs at least one address");
    expect_err("[security]\nallowed_ips = [1]\n", NULL, CONFIG_ETYPE,
               "config error: FILE:2: security.allowed_ips: expected an array of strings, item 1 is integer 1");
    expect_err("allowed_ips = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n", NULL, CONFIG_ERANGE,
               "config error: FILE:1: allowed_ips (security.allowed_ips): \"10.0.0.0/33\" is not an IP address or CIDR (like 10.0.0.0/8)");
    expect_err("[cluster]\nseeds = [\"host\"]\n", NULL, CONFIG_ERANGE,
               "config error: FILE:2: cluster.seeds: \"host\" is not host:port (IPv6 as [addr]:port)");
    expect_err("[cluster]\nnode_id = \"a b\"\n", NULL, CONFIG_ERANGE,
               "config error: FILE:2: cluster.node_id: only letters, digits, '-', '_' and '.' are allowed");
    expect_err("bind = \"::1\"\nbind_addr = \"::1\"\n", NULL, CONFIG_ERANGE,
               "config error: FILE:2: bind_addr (bind): already set at line 1 (under another name)");
    expect_err("log_file = \"a\\u0000b\"\n", NULL, CONFIG_ETYPE,
               "config error: FILE:1: log_file: string contains a NUL character");
    /* syntax and file errors */
    expect_err("port = 80 80\n", NULL, CONFIG_ESYNTAX,
               "config error: FILE:1: unexpected text after the value (expected a newline)");
    expect_err("a = 1\na = 2\n", NULL, CONFIG_ESYNTAX,
               "config error: FILE:2: duplicate key 'a' (first defined at line 1)");
    expect_err(NULL, ARGS("--config", "/nonexistent/crab.toml"), CONFIG_EFILE,
               "config error: /nonexistent/crab.toml: cannot read: No such file or directory");
    expect_err(NULL, ARGS("--config", "/tmp"), CONFIG_EFILE, "config error: /tmp: cannot read: Is a directory");
}

static void
test_env_and_flag_errors(void **state)
{
    setenv("CRABCACHE_PORT", "abc", 1);
    expect_err(NULL, NULL, CONFIG_ETYPE,
               "config error: environment variable CRABCACHE_PORT: port: expected an integer, got \"abc\"");
    clear_env();
    setenv("CRABCACHE_ENABLE_WAL", "maybe", 1);
    expect_err(NULL, NULL, CONFIG_ETYPE,
               "config error: environment variable CRABCACHE_ENABLE_WAL: wal.enabled: expected true or false (or yes/no), got \"maybe\"");
    clear_env();
    setenv("CRABCACHE_WAL_SYNC_POLICY", "often", 1);
    expect_err(NULL, NULL, CONFIG_ERANGE,
               "config error: environment variable CRABCACHE_WAL_SYNC_POLICY: wal.sync_policy: expected one of none, async, sync, got \"often\"");
    clear_env();
    expect_err(NULL, ARGS("--nope", "1"), CONFIG_EUNKNOWN, "config error: flag --nope: unknown option (see --help)");
    /* a mistyped flag: the closest spelling, as a flag (issue 18.8) */
    expect_err(NULL, ARGS("--maxmemroy", "1gb"), CONFIG_EUNKNOWN,
               "config error: flag --maxmemroy: unknown option (did you mean --max-memory?)");
    expect_err(NULL, ARGS("--wal-sync-polcy", "sync"), CONFIG_EUNKNOWN,
               "config error: flag --wal-sync-polcy: unknown option (did you mean --wal-sync-policy?)");
    expect_err(NULL, ARGS("--evcition-policy", "lru"), CONFIG_EUNKNOWN,
               "config error: flag --evcition-policy: unknown option (did you mean --eviction-policy?)");
    expect_err(NULL, ARGS("--prot", "1"), CONFIG_EUNKNOWN,
               "config error: flag --prot: unknown option (did you mean --port?)");
    expect_err(NULL, ARGS("--zzzzzzzz", "1"), CONFIG_EUNKNOWN,
               "config error: flag --zzzzzzzz: unknown option (see --help)");
    expect_err(NULL, ARGS("--port"), CONFIG_EUSAGE, "config error: flag --port: port: missing value");
    expect_err(NULL, ARGS("--port", "--bind", "::1"), CONFIG_EUSAGE, "config error: flag --port: port: missing value");
    expect_err(NULL, ARGS("--enabled"), CONFIG_EUNKNOWN,
               "config error: flag --enabled: ambiguous option (give the section: --section.enabled)");
    expect_err(NULL, ARGS("8000"), CONFIG_EUSAGE,
               "config error: command line: unexpected argument '8000' (settings are given as --key value)");
    expect_err(NULL, ARGS("--config"), CONFIG_EUSAGE, "config error: command line: --config: missing file name");
    expect_err(NULL, ARGS("--check-config"), CONFIG_EUSAGE,
               "config error: command line: --check-config: missing file name");
    expect_err(NULL, ARGS("--max-memory", "lots"), CONFIG_ETYPE,
               "config error: flag --max-memory: max_memory: expected a size (bytes, or like \"64mb\", \"1.5gb\"), got \"lots\"");
    expect_err(NULL, ARGS("--threads=2000"), CONFIG_ERANGE,
               "config error: flag --threads: threads: 2000 is out of range 0..1024");
    expect_err(NULL, ARGS("--port", " 80"), CONFIG_ETYPE,
               "config error: flag --port: port: expected an integer, got \" 80\"");
}

static void
test_cross_key_errors(void **state)
{
    expect_err("[eviction]\nhigh_watermark = 0.8\nlow_watermark = 0.9\n", NULL, CONFIG_ERANGE,
               "config error: FILE:3: eviction.low_watermark: must be below eviction.high_watermark (0.8), got 0.9");
    expect_err(NULL, ARGS("--resp-port", "8000"), CONFIG_ERANGE,
               "config error: command line: resp_port: port 8000 is also used by port");
    expect_err("metrics_port = 6379\n", NULL, CONFIG_ERANGE,
               "config error: FILE:1: metrics_port: port 6379 is also used by resp_port");
    expect_err("[security]\nenable_auth = true\n", NULL, CONFIG_ERANGE,
               "config error: FILE:2: security.enable_auth: authentication is enabled but no security.auth_token or auth_tokens is set");
    expect_err("[security]\nenable_tls = true\n", NULL, CONFIG_ERANGE,
               "config error: FILE:2: security.enable_tls: TLS is enabled but security.tls_port is 0");
    expect_err(NULL, ARGS("--tls-port", "6380"), CONFIG_ERANGE,
               "config error: security.tls_cert_file: required when security.tls_port is set");
    expect_err(NULL, ARGS("--tls-port", "6380", "--tls-cert-file", "/nonexistent.pem", "--tls-key-file", "/x"),
               CONFIG_EFILE,
               "config error: command line: security.tls_cert_file: cannot read \"/nonexistent.pem\": No such file or directory");
    const char *pem = write_tmp("pem");
    char line[256];
    snprintf(line, sizeof(line), "[security]\ntls_port = 6380\ntls_cert_file = \"%s\"\ntls_key_file = \"%s\"\n"
                                 "tls_auth_clients = true\n", pem, pem);
    expect_err(line, NULL, CONFIG_ERANGE,
               "config error: security.tls_ca_cert_file: required when security.tls_auth_clients is true");
    expect_err("[cluster]\nheartbeat_interval_ms = 5000\n", NULL, CONFIG_ERANGE,
               "config error: cluster.failover_timeout_ms: must be longer than cluster.heartbeat_interval_ms (5000)");
    expect_err("[cluster]\nenabled = true\n", ARGS("--port", "60000"), CONFIG_ERANGE,
               "config error: cluster.cluster_port: port + 10000 = 70000 is above 65535; set cluster.cluster_port");
    expect_err("[wal]\nenabled = true\ndir = \"\"\n", NULL, CONFIG_ERANGE,
               "config error: FILE:3: wal.dir: must be set when the WAL is enabled");
    expect_err("max_memory_per_shard = \"1tb\"\nshards = 4096\n", NULL, CONFIG_ERANGE,
               "config error: FILE:1: max_memory_per_shard: times 4096 shards is more than max_memory allows");
}

/* ----- CONFIG GET / SET ------------------------------------------------- */

static void
test_glob(void **state)
{
    static const struct {
        const char *p, *s;
        bool nocase, want;
    } cases[] = {
        {"*", "", false, true}, {"*", "anything", false, true}, {"max*", "maxmemory", false, true},
        {"*memory*", "maxmemory-policy", false, true}, {"a?c", "abc", false, true},
        {"a?c", "ac", false, false}, {"[abc]x", "bx", false, true}, {"[abc]x", "dx", false, false},
        {"[^a]x", "bx", false, true}, {"[^a]x", "ax", false, false}, {"[a-c]", "b", false, true},
        {"[c-a]", "b", false, true}, {"[a-c]", "d", false, false}, {"\\*", "*", false, true},
        {"\\*", "a", false, false}, {"[\\]]", "]", false, true}, {"MAXMEM*", "maxmemory", true, true},
        {"MAXMEM*", "maxmemory", false, false}, {"[A-Z]x", "bx", true, true}, {"a*b*c", "aXbYc", false, true},
        {"a*b*c", "aXbY", false, false}, {"*.port", "cluster.port", false, true}, {"abc", "abcd", false, false},
        {"[abc", "b", false, true}, {"x\\", "x", false, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (glob_match(cases[i].p, strlen(cases[i].p), cases[i].s, strlen(cases[i].s),
                       cases[i].nocase) != cases[i].want) {
            fail_msg("glob %s ~ %s: expected %d", cases[i].p, cases[i].s, cases[i].want);
        }
    }
    /* a pathological pattern stays linear */
    char pat[200] = "", str[400];
    for (int i = 0; i < 60; i++) {
        strcat(pat, "*a");
    }
    strcat(pat, "b");
    memset(str, 'a', sizeof(str) - 1);
    str[sizeof(str) - 1] = '\0';
    assert_false(glob_match(pat, strlen(pat), str, strlen(str), false));
}

struct got {
    char names[CONFIG_KEY_COUNT + 4][64];
    char values[CONFIG_KEY_COUNT + 4][256];
    size_t n;
};

static void
collect(const char *name, const char *value, void *ctx)
{
    struct got *g = ctx;
    assert_true(g->n < CONFIG_KEY_COUNT + 4);
    snprintf(g->names[g->n], sizeof(g->names[0]), "%s", name);
    snprintf(g->values[g->n], sizeof(g->values[0]), "%s", value);
    g->n++;
}

static void
test_config_get(void **state)
{
    struct config cfg;
    struct got g = {0};
    load_text_ok(&cfg, "[security]\nallowed_ips = [\"10.0.0.0/8\", \"::1\"]\n", NULL);
    assert_int_equal(config_get_matching(&cfg, "maxmemory", collect, &g), 1);
    assert_string_equal(g.names[0], "maxmemory");
    assert_string_equal(g.values[0], "1073741824");
    g.n = 0;
    assert_int_equal(config_get_matching(&cfg, "MAXMEMORY*", collect, &g), 2);
    assert_string_equal(g.names[1], "maxmemory-policy");
    assert_string_equal(g.values[1], "tinylfu");
    g.n = 0;
    assert_int_equal(config_get_matching(&cfg, "*", collect, &g), CONFIG_KEY_COUNT);
    g.n = 0;
    config_get_matching(&cfg, "protected-mode", collect, &g);
    assert_string_equal(g.values[0], "yes");
    g.n = 0;
    config_get_matching(&cfg, "security.allowed_ips", collect, &g);
    assert_string_equal(g.values[0], "10.0.0.0/8 ::1");
    g.n = 0;
    config_get_matching(&cfg, "eviction.high_watermark", collect, &g);
    assert_string_equal(g.values[0], "0.85");
    g.n = 0;
    /* canonical names and aliases without glob characters find keys too */
    assert_int_equal(config_get_matching(&cfg, "eviction.policy", collect, &g), 1);
    assert_string_equal(g.names[0], "eviction.policy");
    assert_string_equal(g.values[0], "tinylfu");
    g.n = 0;
    assert_int_equal(config_get_matching(&cfg, "bind_addr", collect, &g), 1);
    assert_string_equal(g.values[0], "127.0.0.1");
    g.n = 0;
    assert_int_equal(config_get_matching(&cfg, "nothing*", collect, &g), 0);
    /* several patterns: each key once */
    const char *pats[] = {"maxmemory", "max*", "maxclients"};
    g.n = 0;
    size_t n = config_get_matching_any(&cfg, pats, 3, collect, &g);
    assert_int_equal(n, g.n);
    for (size_t i = 0; i < g.n; i++) {
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(g.names[i], g.names[j]);
        }
    }
    assert_int_equal(n, 4); /* maxmemory, max_memory_per_shard, maxclients, maxmemory-policy */
    config_free(&cfg);
}

static int changes;
static int last_changed;

static void
on_change(struct config *cfg, int id, void *ctx)
{
    changes++;
    last_changed = id;
    assert_ptr_equal(ctx, &changes);
}

static void
expect_set_err(struct config *cfg, const char *name, const char *value, const char *want)
{
    char err[256];
    assert_int_equal(config_set_live(cfg, name, value, err, sizeof(err)), -1);
    if (strcmp(err, want) != 0) {
        fail_msg("\n  got:  %s\n  want: %s", err, want);
    }
}

static void
test_config_set(void **state)
{
    struct config cfg;
    char err[256];
    config_defaults(&cfg);
    cfg.on_change = on_change;
    cfg.on_change_ctx = &changes;
    changes = 0;
    assert_int_equal(config_set_live(&cfg, "maxmemory", "64mb", err, sizeof(err)), 0);
    assert_true(cfg.max_memory == 64ull << 20);
    assert_int_equal(changes, 1);
    assert_int_equal(last_changed, CONFIG_KEY_MAX_MEMORY);
    assert_int_equal(cfg.source[CONFIG_KEY_MAX_MEMORY], CONFIG_SRC_LIVE);
    assert_int_equal(config_set_live(&cfg, "max_memory", "100", err, sizeof(err)), 0);
    assert_true(cfg.max_memory == 100);
    assert_int_equal(config_set_live(&cfg, "maxmemory-policy", "allkeys-lru", err, sizeof(err)), 0);
    assert_int_equal(cfg.eviction.policy, CONFIG_POLICY_LRU);
    assert_int_equal(config_set_live(&cfg, "eviction.policy", "NOEVICTION", err, sizeof(err)), 0);
    assert_int_equal(cfg.eviction.policy, CONFIG_POLICY_NOEVICTION);
    assert_int_equal(config_set_live(&cfg, "loglevel", "warning", err, sizeof(err)), 0);
    assert_int_equal(cfg.log_level, LOG_WARN);
    assert_int_equal(config_set_live(&cfg, "timeout", "60", err, sizeof(err)), 0);
    assert_int_equal(cfg.idle_timeout, 60);
    assert_int_equal(config_set_live(&cfg, "maxclients", "5", err, sizeof(err)), 0);
    assert_int_equal(cfg.max_connections, 5);
    assert_int_equal(config_set_live(&cfg, "protected-mode", "no", err, sizeof(err)), 0);
    assert_false(cfg.protected_mode);
    assert_int_equal(config_set_live(&cfg, "rate_limiting.max_requests_per_second", "77", err, sizeof(err)), 0);
    assert_int_equal(cfg.rate_limiting.max_requests_per_second, 77);
    assert_int_equal(config_set_live(&cfg, "eviction.high_watermark", "0.95", err, sizeof(err)), 0);
    assert_true(cfg.eviction.high_watermark == 0.95);
    assert_int_equal(changes, 10);

    expect_set_err(&cfg, "foo", "1", "ERR Unknown option or number of arguments for CONFIG SET - 'foo'");
    expect_set_err(&cfg, "port", "1",
                   "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config");
    expect_set_err(&cfg, "appendonly", "yes",
                   "ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set immutable config");
    expect_set_err(&cfg, "maxmemory", "abc",
                   "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value");
    expect_set_err(&cfg, "maxmemory-policy", "lfu",
                   "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: tinylfu, lru, noeviction");
    expect_set_err(&cfg, "loglevel", "loud",
                   "ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, info, warn, error");
    expect_set_err(&cfg, "timeout", "-1",
                   "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 31536000 inclusive");
    expect_set_err(&cfg, "timeout", "x",
                   "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer");
    expect_set_err(&cfg, "maxclients", "0",
                   "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 1000000 inclusive");
    expect_set_err(&cfg, "protected-mode", "maybe",
                   "ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'");
    expect_set_err(&cfg, "eviction.low_watermark", "0.96",
                   "ERR CONFIG SET failed (possibly related to argument 'eviction.low_watermark') - argument must be below eviction.high_watermark (0.95)");
    expect_set_err(&cfg, "eviction.high_watermark", "0.5",
                   "ERR CONFIG SET failed (possibly related to argument 'eviction.high_watermark') - argument must be above eviction.low_watermark (0.7)");
    expect_set_err(&cfg, "eviction.high_watermark", "2",
                   "ERR CONFIG SET failed (possibly related to argument 'eviction.high_watermark') - argument must be between 0 and 1");
    expect_set_err(&cfg, "proto-max-bulk-len", "0",
                   "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1 and 4294967296 inclusive");
    assert_int_equal(changes, 10); /* failures change nothing */
    assert_true(cfg.max_memory == 100);
    config_free(&cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_toml_matches_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_docs_list_every_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_table_sane, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_original_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sizes_and_durations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_version_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_and_flag_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_key_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_glob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_canonical, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
