/*
 * config_int.h -- internals shared by config.c, config_keys.c and
 * config_live.c (not for other modules: use config.h).
 */
#ifndef CRAB_CONF_CONFIG_INT_H
#define CRAB_CONF_CONFIG_INT_H

#include "conf/config.h"
#include "conf/toml.h"

enum conf_type {
    CT_BOOL,
    CT_INT,
    CT_SIZE,
    CT_FLOAT,
    CT_STRING,
    CT_ENUM,
    CT_LIST,
    CT_SECONDS,
    CT_MILLIS,
};

#define CF_NONE 0u
#define CF_LIVE 0x1u /* CONFIG SET may change it */
#define CF_MINX 0x2u /* min is exclusive */

struct conf_enum {
    const char *list;        /* "a|b|c", for help and docs */
    const char *names[8];    /* value i is names[i]; NULL-terminated */
    const char *aliases[24]; /* pairs: alias, canonical name; NULL-terminated */
};

/* Extra validation after a value was parsed into cfg; returns 0 or -1 with a
 * message in detail. */
typedef int (*conf_check_fn)(const struct config *cfg, int id, char *detail, size_t len);

struct conf_key {
    const char *name;
    enum conf_type type;
    const struct conf_enum *choices;
    double min, max;
    unsigned flags;
    const char *def;
    const char *redis;
    const char *aliases;
    const char *env;
    conf_check_fn check;
    const char *help;
    size_t offset;
};

extern const struct conf_key conf__keys[CONFIG_KEY_COUNT];

/* A value parsed but not yet stored. */
struct conf_val {
    union {
        int64_t i;
        uint64_t u;
        double f;
        bool b;
        int e;
        char *s;                  /* owned */
        struct config_strlist l; /* owned */
    } v;
};

/* Parse text (env, flag, default, CONFIG SET) for key id. Returns 0, or
 * CONFIG_ETYPE / CONFIG_ERANGE with a message in detail. *out is owned by the
 * caller on success (conf__val_free or conf__store). */
int conf__parse_text(int id, const char *text, struct conf_val *out, char *detail, size_t len);

/* Same for a TOML value (types are checked strictly). */
int conf__parse_toml(int id, const struct toml_value *tv, struct conf_val *out, char *detail,
                     size_t len);

/* Store a parsed value into cfg (frees the old one; takes *val). With atomic,
 * scalar stores use __atomic_store_n (live changes). */
void conf__store(struct config *cfg, int id, struct conf_val *val, bool atomic);
void conf__val_free(int id, struct conf_val *val);
/* Free a string list's items and array; leaves it empty. */
void conf__strlist_free(struct config_strlist *l);

/* Parse + store + run the key's check. Returns 0 or a negative code. */
int conf__set_text(struct config *cfg, int id, const char *text, char *detail, size_t len);

/* Case-insensitive comparison treating '-' and '_' as the same. */
bool conf__name_eq(const char *a, const char *b);
/* Does the '|'-separated list contain name (conf__name_eq)? */
bool conf__list_has(const char *list, const char *name);

/* Exact resolution for file keys (canonical or alias, '-'/'_' and case
 * ignored); -1 if none. */
int conf__find_exact(const char *name);

/* Address checks used by key checks and tests. */
int conf__check_bind(const struct config *cfg, int id, char *detail, size_t len);
int conf__check_notify(const struct config *cfg, int id, char *detail, size_t len);
int conf__check_ips(const struct config *cfg, int id, char *detail, size_t len);
int conf__check_seeds(const struct config *cfg, int id, char *detail, size_t len);
int conf__check_node_id(const struct config *cfg, int id, char *detail, size_t len);

/* Sizes ("64mb") and durations ("30s") as in config.h; 0 or -1. */
int conf__parse_size(const char *s, uint64_t *out);
int conf__parse_duration(const char *s, int64_t unit_ms, int64_t *out);

extern const struct conf_enum conf__enum_log_level, conf__enum_log_format, conf__enum_policy,
    conf__enum_strategy, conf__enum_sync, conf__enum_read;

#endif
