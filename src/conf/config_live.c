/*
 * config_live.c -- CONFIG GET / CONFIG SET over the key table.
 *
 * Design: keys are listed under their Redis name when they have one (so
 * redis-cli and client libraries find maxmemory, maxclients, ...), else
 * under their canonical dotted name. Only keys flagged CF_LIVE can be set;
 * the new value goes through the same parser and range checks as every
 * other layer, plus the cross-key rule that involves live keys
 * (low_watermark < high_watermark), and is stored with an atomic write.
 * Error texts are Redis 7's, word for word, so RESP clients see what they
 * would see from redis-server.
 */
#include "conf/config_int.h"

#include "util/glob.h"
#include "util/mem.h"

#include <stdlib.h>
#include <string.h>

static const char *
primary_name(int id)
{
    return conf__keys[id].redis ? conf__keys[id].redis : conf__keys[id].name;
}

static bool
has_glob(const char *p)
{
    return strpbrk(p, "*?[\\") != NULL;
}

/* The name under which key id matches pattern, or NULL. */
static const char *
match_name(int id, const char *pattern)
{
    if (glob_match(pattern, strlen(pattern), primary_name(id), strlen(primary_name(id)), true)) {
        return primary_name(id);
    }
    if (!has_glob(pattern) && (conf__name_eq(conf__keys[id].name, pattern) ||
                               conf__list_has(conf__keys[id].aliases, pattern))) {
        return pattern;
    }
    return NULL;
}

static void
emit(const struct config *cfg, int id, const char *name, config_get_cb cb, void *ctx)
{
    char small[256];
    int n = config_format_value(cfg, id, small, sizeof(small));
    if (n >= 0 && (size_t)n < sizeof(small)) {
        cb(name, small, ctx);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    config_format_value(cfg, id, big, (size_t)n + 1);
    cb(name, big, ctx);
    free(big);
}

size_t
config_get_matching(const struct config *cfg, const char *pattern, config_get_cb cb, void *ctx)
{
    return config_get_matching_any(cfg, &pattern, 1, cb, ctx);
}

size_t
config_get_matching_any(const struct config *cfg, const char *const *patterns, size_t n,
                        config_get_cb cb, void *ctx)
{
    size_t count = 0;
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        for (size_t i = 0; i < n; i++) {
            const char *name = match_name(id, patterns[i]);
            if (name != NULL) {
                emit(cfg, id, name, cb, ctx);
                count++;
                break;
            }
        }
    }
    return count;
}

/* ----- CONFIG SET ------------------------------------------------------- */

static int
find_live_name(const char *name)
{
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        if ((conf__keys[id].redis && conf__name_eq(conf__keys[id].redis, name)) ||
            conf__name_eq(conf__keys[id].name, name) || conf__list_has(conf__keys[id].aliases, name)) {
            return id;
        }
    }
    return -1;
}

/* Redis's reason text for a value that does not parse or fit. */
static void
redis_reason(int id, const struct conf_val *val, int rc, char *buf, size_t len)
{
    const struct conf_key *k = &conf__keys[id];
    switch (k->type) {
    case CT_SIZE:
        if (rc == CONFIG_ERANGE) {
            snprintf(buf, len, "argument must be between %llu and %llu inclusive",
                     (unsigned long long)k->min, (unsigned long long)k->max);
        } else {
            snprintf(buf, len, "argument must be a memory value");
        }
        return;
    case CT_INT:
    case CT_SECONDS:
    case CT_MILLIS:
        if (rc == CONFIG_ERANGE) {
            snprintf(buf, len, "argument must be between %lld and %lld inclusive", (long long)k->min,
                     (long long)k->max);
        } else {
            snprintf(buf, len, "argument couldn't be parsed into an integer");
        }
        return;
    case CT_FLOAT:
        if (rc == CONFIG_ERANGE) {
            snprintf(buf, len, "argument must be between %g and %g", k->min, k->max);
        } else {
            snprintf(buf, len, "argument couldn't be parsed into a number");
        }
        return;
    case CT_BOOL:
        snprintf(buf, len, "argument must be 'yes' or 'no'");
        return;
    case CT_ENUM: {
        size_t n = (size_t)snprintf(buf, len, "argument(s) must be one of the following: ");
        for (int i = 0; k->choices->names[i] != NULL && n < len; i++) {
            n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", k->choices->names[i]);
        }
        return;
    }
    default:
        snprintf(buf, len, "invalid argument");
        return;
    }
}

int
config_set_live(struct config *cfg, const char *name, const char *value, char *errbuf, size_t errlen)
{
    char detail[512], reason[256];
    int id = find_live_name(name);
    if (id < 0) {
        snprintf(errbuf, errlen, "ERR Unknown option or number of arguments for CONFIG SET - '%s'", name);
        return -1;
    }
    if (!(conf__keys[id].flags & CF_LIVE)) {
        snprintf(errbuf, errlen,
                 "ERR CONFIG SET failed (possibly related to argument '%s') - can't set immutable config",
                 name);
        return -1;
    }
    struct conf_val val;
    int rc = conf__parse_text(id, value, &val, detail, sizeof(detail));
    if (rc == 0 && id == CONFIG_KEY_EVICTION_LOW_WATERMARK && val.v.f >= cfg->eviction.high_watermark) {
        snprintf(reason, sizeof(reason), "argument must be below eviction.high_watermark (%g)",
                 cfg->eviction.high_watermark);
        rc = CONFIG_ERANGE;
    } else if (rc == 0 && id == CONFIG_KEY_EVICTION_HIGH_WATERMARK &&
               val.v.f <= cfg->eviction.low_watermark) {
        snprintf(reason, sizeof(reason), "argument must be above eviction.low_watermark (%g)",
                 cfg->eviction.low_watermark);
        rc = CONFIG_ERANGE;
    } else if (rc == 0 && id == CONFIG_KEY_PUBSUB_NOTIFY_KEYSPACE_EVENTS) {
        char canon[32];
        if (config_notify_canonical(val.v.s, canon) < 0) {
            snprintf(reason, sizeof(reason),
                     "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
            rc = CONFIG_ERANGE;
        } else {
            free(val.v.s); /* kept as CONFIG GET shows it, as Redis */
            val.v.s = xstrdup(canon);
        }
    } else if (rc < 0) {
        redis_reason(id, &val, rc, reason, sizeof(reason));
    }
    if (rc < 0) {
        conf__val_free(id, &val);
        snprintf(errbuf, errlen, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", name,
                 reason);
        return -1;
    }
    conf__store(cfg, id, &val, true);
    cfg->source[id] = CONFIG_SRC_LIVE;
    cfg->line[id] = 0;
    if (cfg->on_change != NULL) {
        cfg->on_change(cfg, id, cfg->on_change_ctx);
    }
    return 0;
}
