/*
 * config.h -- every setting of the server, and how it gets its value.
 *
 * One key table (conf/config_keys.def) defines each key once: canonical
 * dotted name, aliases (the original CrabCache names, short top-level forms),
 * the Redis name used by CONFIG GET/SET, type, default, range or choices,
 * extra environment variables, whether CONFIG SET may change it live, and a
 * one-line description (used by --help, docs/configuration.md and
 * config/default.toml, which a unit test keeps in step with the table).
 *
 * Precedence, lowest to highest: built-in defaults < TOML file (--config FILE,
 * or CRABCACHE_CONFIG) < environment CRABCACHE_* < command-line flags.
 * Sizes accept bytes or "64mb", "1.5gb", "512KiB" (k/m/g/t = powers of 1024);
 * durations accept a number in the key's unit or "500ms", "30s", "5m", "1h".
 *
 * Thread-safety: config_load / config_free run on one thread before / after
 * the server runs. Afterwards the struct is read-only, except for the keys
 * marked live, which config_set_live stores with atomic word-sized writes
 * (readers on other threads may read them with plain or __atomic loads and see
 * either the old or the new value). config_set_live and config_get_matching
 * must be called from one thread at a time (the server serializes CONFIG).
 */
#ifndef CRAB_CONF_CONFIG_H
#define CRAB_CONF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/log.h"

#ifndef CRABCACHE_VERSION
#define CRABCACHE_VERSION "0.0.0-dev"
#endif

/* Key ids: CONFIG_KEY_PORT, CONFIG_KEY_EVICTION_POLICY, ... (table order). */
enum config_key_id {
#define CONF_KEY(id, ...) CONFIG_KEY_##id,
#include "conf/config_keys.def"
#undef CONF_KEY
    CONFIG_KEY_COUNT
};

enum config_eviction_policy { CONFIG_POLICY_TINYLFU = 0, CONFIG_POLICY_LRU, CONFIG_POLICY_NOEVICTION };
enum config_eviction_strategy { CONFIG_STRATEGY_GRADUAL = 0, CONFIG_STRATEGY_BATCH };
enum config_sync_policy { CONFIG_SYNC_NONE = 0, CONFIG_SYNC_ASYNC, CONFIG_SYNC_SYNC };
enum config_log_format { CONFIG_LOG_JSON = 0, CONFIG_LOG_TEXT };
enum config_read_strategy {
    CONFIG_READ_ROUND_ROBIN = 0,
    CONFIG_READ_WEIGHTED,
    CONFIG_READ_RESOURCE_BASED,
    CONFIG_READ_ADAPTIVE,
};

/* Where a key's current value came from (config.source[id]). */
enum config_source { CONFIG_SRC_DEFAULT = 0, CONFIG_SRC_FILE, CONFIG_SRC_ENV, CONFIG_SRC_FLAG, CONFIG_SRC_LIVE };

/* A list of strings (arrays in TOML; comma/space separated in env and flags). */
struct config_strlist {
    char **items; /* owned */
    size_t n;
};

struct config {
    /* ---- server ---- */
    int64_t port;          /* native text protocol (and RESP on '*'); 0 = off */
    char *bind;            /* space-separated addresses */
    int64_t resp_port;     /* pure RESP; 0 = off */
    int64_t metrics_port;  /* HTTP /metrics /health /stats /dashboard; 0 = off */
    bool metrics_enabled;  /* false forces metrics_port to 0 */
    int64_t threads;       /* workers; 0 = one per core (config_worker_threads) */
    int64_t shards;        /* 0 = auto (config_shard_count) */
    uint64_t max_memory;   /* bytes of data; 0 = no limit. Already multiplied
                              out when max_memory_per_shard is set. Live. */
    uint64_t max_memory_per_shard;
    uint64_t max_value_size;   /* live */
    uint64_t max_command_size; /* one request, all arguments; live */
    int64_t max_connections;   /* live */
    int64_t idle_timeout;      /* seconds, 0 = never; live */
    int64_t tcp_keepalive;     /* seconds, 0 = off */
    bool tcp_nodelay;
    bool protected_mode;       /* live */
    int log_level;             /* enum log_level; live */
    int log_format;            /* enum config_log_format */
    char *log_file;            /* "" = stderr */
    bool log_enable_file;      /* original [logging] enable_file; false clears log_file */
    char *pid_file;            /* "" = none */
    char *save;                /* Redis's "save", for tools that read it; unused */
    int64_t slowlog_log_slower_than; /* microseconds, -1 = off; live */
    int64_t slowlog_max_len;         /* live */

    struct {
        bool enable_auth;      /* original name: true requires a token */
        char *auth_token;
        struct config_strlist auth_tokens;
        struct config_strlist allowed_ips; /* IPs and CIDRs; empty = all */
        bool enable_tls;       /* original name: true requires tls_port */
        int64_t tls_port;
        char *tls_cert_file;
        char *tls_key_file;
        char *tls_ca_cert_file;
        bool tls_auth_clients;
        uint64_t max_output_buffer; /* per connection; 0 = unlimited; live */
        char *metrics_token;        /* bearer token for the HTTP port; "" = none */
        /* derived by config_load: */
        struct config_strlist tokens; /* auth_token + auth_tokens, deduplicated */
        bool auth_required;           /* tokens.n > 0 */
        bool tls_enabled;             /* tls_port != 0 */
    } security;

    struct {
        char *notify_keyspace_events;     /* Redis's letters, canonical; live */
        uint64_t output_buffer_limit;     /* subscriber hard limit, bytes; live */
        uint64_t output_buffer_soft_limit; /* live */
        int64_t output_buffer_soft_seconds; /* live */
    } pubsub;

    struct {
        bool enabled;                    /* live */
        int64_t max_requests_per_second; /* per client address; live */
        int64_t burst_capacity;          /* live */
    } rate_limiting;

    struct {
        int policy;                  /* enum config_eviction_policy; live */
        bool enabled;                /* original name; false = noeviction */
        double high_watermark;       /* live */
        double low_watermark;        /* live */
        int strategy;                /* enum config_eviction_strategy; live */
        int64_t batch_eviction_size; /* live */
        int64_t min_items_threshold; /* live */
        bool adaptive_eviction;      /* live */
        double admission_threshold_multiplier; /* live */
        double window_ratio;
    } eviction;

    struct {
        bool enabled;
        char *dir;
        int sync_policy; /* enum config_sync_policy */
        uint64_t max_segment_size;
        int64_t flush_interval_ms; /* async policy: fsync at least this often */
        int64_t snapshot_interval_seconds; /* 0 = off */
        uint64_t snapshot_after_bytes;     /* 0 = off */
        bool skip_damaged_records;
    } wal;

    struct {
        bool enabled;
        char *node_id;       /* "" = generated */
        int64_t cluster_port; /* 0 = port + 10000 (config_cluster_port) */
        struct config_strlist seeds; /* "host:port" */
        int64_t replication_factor;
        int64_t virtual_nodes;
        int64_t heartbeat_interval_ms;
        int64_t failover_timeout_ms;
        int read_strategy; /* enum config_read_strategy */
        char *dir;           /* "" = crabcache-cluster-<cluster port> */
        char *cluster_name;
        char *announce_ip;   /* "" = from bind */
        int64_t raft_election_timeout_ms;
        int64_t max_concurrent_migrations;
        int64_t migration_batch_size;
        int64_t proxy_port;  /* 0 = off */
        int64_t forward_timeout_ms;
    } cluster;

    /* ---- bookkeeping ---- */
    char *config_file;                  /* file loaded, NULL for none */
    uint8_t source[CONFIG_KEY_COUNT];   /* enum config_source */
    int line[CONFIG_KEY_COUNT];         /* line in config_file, 0 if not from it */
    /* Called after config_set_live changed a key (NULL = none). */
    void (*on_change)(struct config *cfg, int key_id, void *ctx);
    void *on_change_ctx;
};

/* Return codes. Positive: done, the caller exits 0. Negative: error, the
 * caller prints err->msg to stderr and exits 2 (config_exit_status). */
enum config_status {
    CONFIG_OK = 0,
    CONFIG_EXIT_HELP = 1,    /* --help printed */
    CONFIG_EXIT_VERSION = 2, /* --version printed */
    CONFIG_EXIT_CHECKED = 3, /* --check-config FILE: valid, report printed */
    CONFIG_EUNKNOWN = -1,    /* unknown key or flag */
    CONFIG_ETYPE = -2,       /* value of the wrong type or unparsable */
    CONFIG_ERANGE = -3,      /* out of range, or keys that contradict */
    CONFIG_EFILE = -4,       /* config file unreadable */
    CONFIG_ESYNTAX = -5,     /* config file is not valid TOML */
    CONFIG_EUSAGE = -6,      /* missing flag value, stray argument */
};

struct config_error {
    int code;       /* enum config_status (negative) */
    int line;       /* line in the file, 0 when unknown */
    char key[96];   /* canonical key (or the name given), "" when none */
    char msg[1024]; /* full line: "config error: FILE:LINE: KEY: detail" */
};

/* Fill cfg with the built-in defaults (overwrites; no free of old values).
 * Free with config_free. Never fails. */
void config_defaults(struct config *cfg);

/*
 * Build the configuration: defaults < TOML file < CRABCACHE_* < argv flags
 * (argv[0] is the program name). Flags: --key value, --key=value, dashes or
 * underscores, --section.key, aliases, Redis names, and the key's last part
 * alone when no other key ends the same way (--tls-port). Bool flags given
 * without a yes/no/true/false word mean true. Special flags: --config/-c FILE,
 * --check-config FILE, --help/-h, --version/-v (help and version go to out).
 *
 * Returns CONFIG_OK, a positive CONFIG_EXIT_* (caller exits 0), or a negative
 * code with err filled (err may be NULL). cfg is always left initialized and
 * must be released with config_free, whatever the result.
 */
int config_load(struct config *cfg, int argc, char **argv, FILE *out, struct config_error *err);

/* 0 for CONFIG_OK and the CONFIG_EXIT_* codes, 2 for errors. */
int config_exit_status(int rc);

/* Redis's notify-keyspace-events letters in their canonical order (as its
 * CONFIG GET shows them: "KEA" is "AKE") into out (>= 20 bytes); -1 on a
 * letter Redis refuses. */
int config_notify_canonical(const char *in, char *out);

/* Print the usage text (every key, default, flag, env, description). */
void config_print_help(FILE *out, const char *prog);

/* Free every string and list held by cfg; cfg may then be reused. */
void config_free(struct config *cfg);

/* Worker threads: threads, or the number of online CPUs when 0. */
int config_worker_threads(const struct config *cfg);
/* Store shards: shards, or 4 x worker threads (DESIGN.md) when 0. */
int config_shard_count(const struct config *cfg);
/* Cluster bus port: cluster.cluster_port, or port + 10000 when 0. */
int config_cluster_port(const struct config *cfg);

/* ---- introspection (help, docs, tests) ---- */

struct config_key_info {
    const char *name;          /* canonical, e.g. "eviction.policy" */
    const char *redis_name;    /* "maxmemory-policy", or NULL */
    const char *aliases;       /* "eviction_policy|..." or NULL */
    const char *env;           /* extra env names "A|B" or NULL (the automatic
                                  one comes from config_key_env_name) */
    const char *default_value; /* as written in the table, e.g. "1gb" */
    const char *type;          /* "integer", "size", "bool", ... */
    const char *choices;       /* "tinylfu|lru|noeviction" for enums, else NULL */
    const char *help;
    double min, max;           /* numeric range (inclusive unless min_exclusive) */
    bool min_exclusive;
    bool live;                 /* CONFIG SET can change it */
};

/* Fill *out for key id; returns 0, or -1 if id is out of range. */
int config_key_info(int id, struct config_key_info *out);

/* The automatic environment variable of a key: CRABCACHE_ + the canonical name
 * upper-cased with '.' as '_' (CRABCACHE_EVICTION_POLICY). */
void config_key_env_name(int id, char *buf, size_t len);

/* Resolve a name as flags do (canonical, alias, Redis name, unique last part;
 * case and '-'/'_' ignored). Returns the key id, -1 unknown, -2 ambiguous. */
int config_key_find(const char *name);
/* The spelling of the setting closest to the unknown name (edit distance,
 * case, '-', '_' and '.' alike): a flag form ("max-memory",
 * "wal.sync-policy") written into buf, true; false when nothing is close
 * (within 2 edits, or a third of the name for long ones). */
bool config_key_suggest(const char *name, char *buf, size_t len);

/* The current value of key id as text, the way CONFIG GET shows it (bools
 * yes/no, sizes in bytes, lists space-separated). Returns the length that
 * was needed (like snprintf), or -1 for a bad id. */
int config_format_value(const struct config *cfg, int id, char *buf, size_t len);

/* ---- live settings (CONFIG GET / CONFIG SET); patterns use util/glob.h ---- */

typedef void (*config_get_cb)(const char *name, const char *value, void *ctx);

/*
 * Call cb(name, value) for every key whose Redis name (or, for keys without
 * one, canonical name) matches the glob pattern, case-insensitively, in table
 * order. A pattern without glob characters also finds a key by canonical name
 * or alias (reported under the name given). Returns the number of calls.
 */
size_t config_get_matching(const struct config *cfg, const char *pattern, config_get_cb cb,
                           void *ctx);

/* Same for several patterns at once; each key is reported at most once. */
size_t config_get_matching_any(const struct config *cfg, const char *const *patterns, size_t n,
                               config_get_cb cb, void *ctx);

/*
 * CONFIG SET name value for one key (Redis name, canonical name or alias).
 * Returns 0 (and calls cfg->on_change) or -1 with a Redis-worded error in
 * errbuf (without the leading '-'), e.g.
 *   ERR Unknown option or number of arguments for CONFIG SET - 'foo'
 *   ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config
 *   ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value
 */
int config_set_live(struct config *cfg, const char *name, const char *value, char *errbuf,
                    size_t errlen);

#endif
