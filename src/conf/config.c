/*
 * config.c -- building struct config: defaults < TOML file < environment <
 * flags, then the checks that involve several keys, and --help.
 *
 * Design: each layer resolves a name to a key id (config_keys.c), parses the
 * value with the parser of that layer (typed for TOML, text for env/flags)
 * and stores it, recording where it came from (source[] and line[]), so a
 * later cross-key error can still say "file:line". Derived fields (the merged
 * token list, auth_required, tls_enabled, max_memory from the per-shard
 * limit) are computed once, in finalize(), after every layer. Original
 * CrabCache keys with no effect here are accepted and ignored
 * (compat_ignored), so an original config file still loads.
 */
#include "conf/config_int.h"

#include "util/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Keys of the original CrabCache that have no effect in this server. */
static const char *const compat_ignored[] = {
    "metrics.path", "rate_limiting.window_seconds", "connection.tcp_recv_buffer_size",
    "connection.tcp_send_buffer_size", "connection.pipeline.enabled",
    "connection.pipeline.max_batch_size", "connection.pipeline.buffer_size",
    "connection.pipeline.timeout_ms", "logging.max_file_size_mb", "logging.max_files",
    "eviction.sketch_width", "eviction.sketch_depth", "eviction.reset_interval_secs",
    "eviction.max_capacity", "wal.buffer_size", "cluster.max_log_entries",
    "cluster.load_balance_threshold", NULL,
};

struct loader {
    struct config *cfg;
    struct config_error *err;
    FILE *out;
    bool check;
};

/* ----- errors ----------------------------------------------------------- */

static int set_err(struct config_error *err, int code, const char *where, int line, const char *key,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int
set_err(struct config_error *err, int code, const char *where, int line, const char *key,
        const char *fmt, ...)
{
    size_t n, cap = sizeof(err->msg);
    err->code = code;
    err->line = line;
    snprintf(err->key, sizeof(err->key), "%s", key ? key : "");
    n = (size_t)snprintf(err->msg, cap, "config error: ");
    if (where != NULL && *where && n < cap) {
        if (line > 0) {
            n += (size_t)snprintf(err->msg + n, cap - n, "%s:%d: ", where, line);
        } else {
            n += (size_t)snprintf(err->msg + n, cap - n, "%s: ", where);
        }
    }
    if (key != NULL && *key && n < cap) {
        n += (size_t)snprintf(err->msg + n, cap - n, "%s: ", key);
    }
    if (n < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg + n, cap - n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* An error about key id, placed where its current value came from. */
static int
key_err(struct loader *ld, int id, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
key_err(struct loader *ld, int id, int code, const char *fmt, ...)
{
    char detail[512];
    const char *where = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    switch (ld->cfg->source[id]) {
    case CONFIG_SRC_FILE: where = ld->cfg->config_file; break;
    case CONFIG_SRC_ENV: where = "environment"; break;
    case CONFIG_SRC_FLAG: where = "command line"; break;
    default: break;
    }
    return set_err(ld->err, code, where, ld->cfg->line[id], conf__keys[id].name, "%s", detail);
}

/* ----- defaults and free ------------------------------------------------ */

void
config_defaults(struct config *cfg)
{
    char detail[256];
    memset(cfg, 0, sizeof(*cfg));
    for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
        if (conf__set_text(cfg, i, conf__keys[i].def, detail, sizeof(detail)) < 0) {
            /* A broken table is a programming error: the unit tests catch it. */
            fprintf(stderr, "crabcache: bad built-in default for %s: %s\n", conf__keys[i].name, detail);
            abort();
        }
    }
    cfg->security.auth_required = false;
    cfg->security.tls_enabled = false;
}

void
config_free(struct config *cfg)
{
    for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
        void *f = (char *)cfg + conf__keys[i].offset;
        if (conf__keys[i].type == CT_STRING) {
            free(*(char **)f);
        } else if (conf__keys[i].type == CT_LIST) {
            conf__strlist_free(f);
        }
    }
    conf__strlist_free(&cfg->security.tokens);
    free(cfg->config_file);
    memset(cfg, 0, sizeof(*cfg));
}

/* ----- the TOML file ---------------------------------------------------- */

static bool
is_compat_ignored(const char *path)
{
    for (int i = 0; compat_ignored[i] != NULL; i++) {
        if (conf__name_eq(compat_ignored[i], path)) {
            return true;
        }
    }
    return false;
}

/* Does some key (or ignored key) live under table path? */
static bool
known_section(const char *path)
{
    size_t n = strlen(path);
    for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
        if (strncmp(conf__keys[i].name, path, n) == 0 && conf__keys[i].name[n] == '.') {
            return true;
        }
        const char *a = conf__keys[i].aliases;
        while (a != NULL && *a) {
            if (strncmp(a, path, n) == 0 && a[n] == '.') {
                return true;
            }
            a += strcspn(a, "|");
            a += *a == '|';
        }
    }
    for (int i = 0; compat_ignored[i] != NULL; i++) {
        if (strncmp(compat_ignored[i], path, n) == 0 && compat_ignored[i][n] == '.') {
            return true;
        }
    }
    return false;
}

static int
unknown_key(struct loader *ld, const char *path, int line)
{
    const char *leaf = strrchr(path, '.');
    int hint = config_key_find(leaf ? leaf + 1 : path);
    if (hint >= 0 && strcmp(conf__keys[hint].name, path) != 0) {
        return set_err(ld->err, CONFIG_EUNKNOWN, ld->cfg->config_file, line, path,
                       "unknown key (did you mean %s?)", conf__keys[hint].name);
    }
    return set_err(ld->err, CONFIG_EUNKNOWN, ld->cfg->config_file, line, path, "unknown key");
}

static int
apply_table(struct loader *ld, const struct toml_value *t, const char *prefix)
{
    struct config *cfg = ld->cfg;
    for (size_t i = 0; i < t->u.table.n; i++) {
        const struct toml_pair *pr = &t->u.table.pairs[i];
        char path[256], detail[512], shown[300];
        int n = snprintf(path, sizeof(path), "%s%s%s", prefix ? prefix : "", prefix ? "." : "", pr->key);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            return set_err(ld->err, CONFIG_EUNKNOWN, cfg->config_file, pr->line, NULL,
                           "unknown key (name too long)");
        }
        int id = conf__find_exact(path);
        if (id < 0 && pr->value->type == TOML_TABLE) {
            if (pr->value->u.table.n == 0 && !known_section(path) && !is_compat_ignored(path)) {
                return set_err(ld->err, CONFIG_EUNKNOWN, cfg->config_file, pr->line, path,
                               "unknown table");
            }
            int rc = apply_table(ld, pr->value, path);
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        if (id < 0) {
            if (is_compat_ignored(path)) {
                if (ld->check && ld->out != NULL) {
                    fprintf(ld->out, "note: %s:%d: %s is an original CrabCache key with no effect here\n",
                            cfg->config_file, pr->line, path);
                }
                continue;
            }
            return unknown_key(ld, path, pr->line);
        }
        if (strcmp(path, conf__keys[id].name) == 0) {
            snprintf(shown, sizeof(shown), "%s", path);
        } else {
            snprintf(shown, sizeof(shown), "%s (%s)", path, conf__keys[id].name);
        }
        if (cfg->source[id] == CONFIG_SRC_FILE) {
            return set_err(ld->err, CONFIG_ERANGE, cfg->config_file, pr->line, shown,
                           "already set at line %d (under another name)", cfg->line[id]);
        }
        struct conf_val val;
        int rc = conf__parse_toml(id, pr->value, &val, detail, sizeof(detail));
        if (rc < 0) {
            conf__val_free(id, &val);
            return set_err(ld->err, rc, cfg->config_file, pr->line, shown, "%s", detail);
        }
        conf__store(cfg, id, &val, false);
        cfg->source[id] = CONFIG_SRC_FILE;
        cfg->line[id] = pr->line;
        if (conf__keys[id].check && conf__keys[id].check(cfg, id, detail, sizeof(detail)) < 0) {
            return set_err(ld->err, CONFIG_ERANGE, cfg->config_file, pr->line, shown, "%s", detail);
        }
    }
    return 0;
}

static int
load_file(struct loader *ld, const char *path)
{
    char msg[600];
    FILE *f = fopen(path, "rb");
    ld->cfg->config_file = xstrdup(path);
    if (f == NULL) {
        return set_err(ld->err, CONFIG_EFILE, path, 0, NULL, "cannot read: %s", strerror(errno));
    }
    fclose(f);
    struct toml_value *root = toml_parse_file(path, msg, sizeof(msg));
    if (root == NULL) {
        int code = strstr(msg, ": cannot read: ") ? CONFIG_EFILE : CONFIG_ESYNTAX;
        int line = 0;
        const char *p = msg + strlen(path);
        if (strncmp(msg, path, strlen(path)) == 0 && *p == ':') {
            line = atoi(p + 1);
        }
        ld->err->code = code;
        ld->err->line = line;
        ld->err->key[0] = '\0';
        snprintf(ld->err->msg, sizeof(ld->err->msg), "config error: %s", msg);
        return code;
    }
    int rc = apply_table(ld, root, NULL);
    toml_free(root);
    return rc;
}

/* ----- environment and flags -------------------------------------------- */

static int
apply_env(struct loader *ld)
{
    char name[128], detail[512];
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        const char *val = NULL;
        config_key_env_name(id, name, sizeof(name));
        val = getenv(name);
        for (const char *e = conf__keys[id].env; val == NULL && e != NULL && *e;) {
            size_t n = strcspn(e, "|");
            snprintf(name, sizeof(name), "%.*s", (int)n, e);
            val = getenv(name);
            e += n + (e[n] == '|');
        }
        if (val == NULL) {
            continue;
        }
        char where[160];
        snprintf(where, sizeof(where), "environment variable %s", name);
        int rc = conf__set_text(ld->cfg, id, val, detail, sizeof(detail));
        if (rc < 0) {
            return set_err(ld->err, rc, where, 0, conf__keys[id].name, "%s", detail);
        }
        ld->cfg->source[id] = CONFIG_SRC_ENV;
        ld->cfg->line[id] = 0;
    }
    return 0;
}

static bool
is_bool_word(const char *s)
{
    static const char *const w[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        if (strcasecmp(s, w[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool
flag_is(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static int
apply_flags(struct loader *ld, int argc, char **argv)
{
    char detail[512], where[160], name[128];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 || flag_is(a, "--config") || flag_is(a, "--check-config")) {
            i += strchr(a, '=') == NULL; /* value checked in the first pass */
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            return set_err(ld->err, CONFIG_EUSAGE, "command line", 0, NULL,
                           "unexpected argument '%s' (settings are given as --key value)", a);
        }
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        snprintf(name, sizeof(name), "%.*s", (int)n, a + 2);
        snprintf(where, sizeof(where), "flag --%s", name);
        int id = config_key_find(name);
        if (id == -2) {
            return set_err(ld->err, CONFIG_EUNKNOWN, where, 0, NULL,
                           "ambiguous option (give the section: --section.%s)", name);
        }
        if (id < 0) {
            char hint[64];
            if (config_key_suggest(name, hint, sizeof(hint))) {
                return set_err(ld->err, CONFIG_EUNKNOWN, where, 0, NULL,
                               "unknown option (did you mean --%s?)", hint);
            }
            return set_err(ld->err, CONFIG_EUNKNOWN, where, 0, NULL, "unknown option (see --help)");
        }
        const char *val;
        if (eq != NULL) {
            val = eq + 1;
        } else if (conf__keys[id].type == CT_BOOL) {
            val = (i + 1 < argc && is_bool_word(argv[i + 1])) ? argv[++i] : "yes";
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            val = argv[++i];
        } else {
            return set_err(ld->err, CONFIG_EUSAGE, where, 0, conf__keys[id].name, "missing value");
        }
        int rc = conf__set_text(ld->cfg, id, val, detail, sizeof(detail));
        if (rc < 0) {
            return set_err(ld->err, rc, where, 0, conf__keys[id].name, "%s", detail);
        }
        ld->cfg->source[id] = CONFIG_SRC_FLAG;
        ld->cfg->line[id] = 0;
    }
    return 0;
}

/* ----- cross-key rules and derived values ------------------------------- */

static void
add_token(struct config_strlist *l, const char *t)
{
    if (t == NULL || *t == '\0') {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i], t) == 0) {
            return;
        }
    }
    l->items = xrealloc(l->items, (l->n + 1) * sizeof(char *));
    l->items[l->n++] = xstrdup(t);
}

static int
check_file(struct loader *ld, int id, const char *path, const char *why)
{
    if (path == NULL || *path == '\0') {
        return key_err(ld, id, CONFIG_ERANGE, "required %s", why);
    }
    if (access(path, R_OK) != 0) {
        return key_err(ld, id, CONFIG_EFILE, "cannot read \"%s\": %s", path, strerror(errno));
    }
    return 0;
}

static int
check_tls(struct loader *ld)
{
    struct config *cfg = ld->cfg;
    int rc;
    cfg->security.tls_enabled = cfg->security.tls_port != 0;
    if (cfg->security.enable_tls && cfg->security.tls_port == 0) {
        return key_err(ld, CONFIG_KEY_SECURITY_ENABLE_TLS, CONFIG_ERANGE,
                       "TLS is enabled but security.tls_port is 0");
    }
    if (!cfg->security.tls_enabled) {
        return 0;
    }
    if ((rc = check_file(ld, CONFIG_KEY_SECURITY_TLS_CERT_FILE, cfg->security.tls_cert_file,
                         "when security.tls_port is set")) < 0 ||
        (rc = check_file(ld, CONFIG_KEY_SECURITY_TLS_KEY_FILE, cfg->security.tls_key_file,
                         "when security.tls_port is set")) < 0) {
        return rc;
    }
    if (cfg->security.tls_auth_clients || *cfg->security.tls_ca_cert_file) {
        return check_file(ld, CONFIG_KEY_SECURITY_TLS_CA_CERT_FILE, cfg->security.tls_ca_cert_file,
                          "when security.tls_auth_clients is true");
    }
    return 0;
}

static int
check_ports(struct loader *ld)
{
    struct config *cfg = ld->cfg;
    struct {
        int id;
        int64_t port;
    } p[5] = {
        {CONFIG_KEY_PORT, cfg->port},
        {CONFIG_KEY_RESP_PORT, cfg->resp_port},
        {CONFIG_KEY_METRICS_PORT, cfg->metrics_port},
        {CONFIG_KEY_SECURITY_TLS_PORT, cfg->security.tls_enabled ? cfg->security.tls_port : 0},
        {CONFIG_KEY_CLUSTER_PORT, cfg->cluster.enabled ? config_cluster_port(cfg) : 0},
    };
    if (cfg->cluster.enabled && p[4].port > 65535) {
        return key_err(ld, CONFIG_KEY_CLUSTER_PORT, CONFIG_ERANGE,
                       "port + 10000 = %lld is above 65535; set cluster.cluster_port",
                       (long long)p[4].port);
    }
    if (cfg->cluster.enabled && p[4].port + 10000 > 65535) {
        return key_err(ld, CONFIG_KEY_CLUSTER_PORT, CONFIG_ERANGE,
                       "the Raft port (cluster port + 10000 = %lld) is above 65535",
                       (long long)p[4].port + 10000);
    }
    for (int i = 1; i < 5; i++) {
        for (int j = 0; j < i; j++) {
            if (p[i].port != 0 && p[i].port == p[j].port) {
                int later = cfg->source[p[i].id] >= cfg->source[p[j].id] ? i : j;
                return key_err(ld, p[later].id, CONFIG_ERANGE, "port %lld is also used by %s",
                               (long long)p[i].port, conf__keys[p[later == i ? j : i].id].name);
            }
        }
    }
    return 0;
}

static int
finalize(struct loader *ld)
{
    struct config *cfg = ld->cfg;
    if (!cfg->eviction.enabled) {
        cfg->eviction.policy = CONFIG_POLICY_NOEVICTION;
    }
    if (!cfg->metrics_enabled) {
        cfg->metrics_port = 0;
    }
    if (!cfg->log_enable_file && *cfg->log_file) {
        cfg->log_file[0] = '\0';
    }
    conf__strlist_free(&cfg->security.tokens);
    add_token(&cfg->security.tokens, cfg->security.auth_token);
    for (size_t i = 0; i < cfg->security.auth_tokens.n; i++) {
        add_token(&cfg->security.tokens, cfg->security.auth_tokens.items[i]);
    }
    if (cfg->security.enable_auth && cfg->security.tokens.n == 0) {
        return key_err(ld, CONFIG_KEY_SECURITY_ENABLE_AUTH, CONFIG_ERANGE,
                       "authentication is enabled but no security.auth_token or auth_tokens is set");
    }
    cfg->security.auth_required = cfg->security.tokens.n > 0;
    int rc = check_tls(ld);
    if (rc < 0) {
        return rc;
    }
    if (cfg->eviction.low_watermark >= cfg->eviction.high_watermark) {
        return key_err(ld, CONFIG_KEY_EVICTION_LOW_WATERMARK, CONFIG_ERANGE,
                       "must be below eviction.high_watermark (%g), got %g", cfg->eviction.high_watermark,
                       cfg->eviction.low_watermark);
    }
    if (cfg->max_memory_per_shard != 0) {
        unsigned __int128 total = (unsigned __int128)cfg->max_memory_per_shard * (unsigned)config_shard_count(cfg);
        if (total > (unsigned __int128)conf__keys[CONFIG_KEY_MAX_MEMORY].max) {
            return key_err(ld, CONFIG_KEY_MAX_MEMORY_PER_SHARD, CONFIG_ERANGE,
                           "times %d shards is more than max_memory allows", config_shard_count(cfg));
        }
        cfg->max_memory = (uint64_t)total;
    }
    if (cfg->cluster.failover_timeout_ms <= cfg->cluster.heartbeat_interval_ms) {
        return key_err(ld, CONFIG_KEY_CLUSTER_FAILOVER_MS, CONFIG_ERANGE,
                       "must be longer than cluster.heartbeat_interval_ms (%lld)",
                       (long long)cfg->cluster.heartbeat_interval_ms);
    }
    if (cfg->wal.enabled && *cfg->wal.dir == '\0') {
        return key_err(ld, CONFIG_KEY_WAL_DIR, CONFIG_ERANGE, "must be set when the WAL is enabled");
    }
    return check_ports(ld);
}

/* ----- config_load ------------------------------------------------------ */

/* "valid", then every key whose value differs from its built-in default. */
static void
print_check_report(struct loader *ld, const char *file)
{
    char val[256], def[256];
    struct config defaults;
    config_defaults(&defaults);
    fprintf(ld->out, "crabcache: configuration %s is valid\n", file);
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        static const char *const src[] = {"default", "file", "env", "flag", "live"};
        config_format_value(ld->cfg, id, val, sizeof(val));
        config_format_value(&defaults, id, def, sizeof(def));
        if (strcmp(val, def) == 0) {
            continue;
        }
        if (strstr(conf__keys[id].name, "token") != NULL) {
            snprintf(val, sizeof(val), "(hidden)");
        }
        fprintf(ld->out, "  %s = %s  (%s", conf__keys[id].name, val, src[ld->cfg->source[id]]);
        if (ld->cfg->line[id] > 0) {
            fprintf(ld->out, " line %d", ld->cfg->line[id]);
        }
        fprintf(ld->out, ")\n");
    }
    config_free(&defaults);
}

int
config_load(struct config *cfg, int argc, char **argv, FILE *out, struct config_error *err)
{
    struct config_error local;
    struct loader ld = {.cfg = cfg, .err = err ? err : &local, .out = out};
    const char *file = NULL;
    int rc;

    memset(ld.err, 0, sizeof(*ld.err));
    config_defaults(cfg);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            config_print_help(out ? out : stdout, argv[0]);
            return CONFIG_EXIT_HELP;
        }
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-v") == 0) {
            fprintf(out ? out : stdout, "crabcache %s\n", CRABCACHE_VERSION);
            return CONFIG_EXIT_VERSION;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool check = flag_is(a, "--check-config");
        if (!check && strcmp(a, "-c") != 0 && !flag_is(a, "--config")) {
            continue;
        }
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq == NULL && i + 1 >= argc) {
            return set_err(ld.err, CONFIG_EUSAGE, "command line", 0, NULL, "%s: missing file name", a);
        }
        file = eq ? eq + 1 : argv[++i];
        ld.check |= check;
    }
    if (file == NULL && getenv("CRABCACHE_CONFIG") != NULL && *getenv("CRABCACHE_CONFIG")) {
        file = getenv("CRABCACHE_CONFIG");
    }
    if (file != NULL && (rc = load_file(&ld, file)) < 0) {
        return rc;
    }
    if ((rc = apply_env(&ld)) < 0 || (rc = apply_flags(&ld, argc, argv)) < 0 ||
        (rc = finalize(&ld)) < 0) {
        return rc;
    }
    if (ld.check) {
        if (out != NULL) {
            print_check_report(&ld, file);
        }
        return CONFIG_EXIT_CHECKED;
    }
    return CONFIG_OK;
}

int
config_exit_status(int rc)
{
    return rc < 0 ? 2 : 0;
}

/* ----- derived counts --------------------------------------------------- */

int
config_worker_threads(const struct config *cfg)
{
    if (cfg->threads > 0) {
        return (int)cfg->threads;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int
config_shard_count(const struct config *cfg)
{
    return cfg->shards > 0 ? (int)cfg->shards : 4 * config_worker_threads(cfg);
}

int
config_cluster_port(const struct config *cfg)
{
    return cfg->cluster.cluster_port ? (int)cfg->cluster.cluster_port : (int)cfg->port + 10000;
}
