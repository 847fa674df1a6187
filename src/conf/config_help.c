/*
 * config_help.c -- the --help text, generated from the key table so it
 * lists every key with its flag, default, environment variable and
 * description, and can never disagree with what config_load accepts.
 */
#include "conf/config_int.h"

#include <string.h>

/* The short flag shown for a key: the canonical name when top-level, else
 * its first top-level alias, else its last part when unique, else the
 * canonical dotted name. Dashes for underscores. */
static void
preferred_flag(int id, char *buf, size_t len)
{
    const struct conf_key *k = &conf__keys[id];
    char name[96];
    snprintf(name, sizeof(name), "%s", k->name);
    if (strchr(k->name, '.') != NULL) {
        const char *a = k->aliases;
        bool found = false;
        while (a != NULL && *a && !found) {
            size_t n = strcspn(a, "|");
            if (memchr(a, '.', n) == NULL && n < sizeof(name)) {
                snprintf(name, sizeof(name), "%.*s", (int)n, a);
                found = true;
            }
            a += n + (a[n] == '|');
        }
        const char *leaf = strrchr(k->name, '.') + 1;
        if (!found && config_key_find(leaf) == id) {
            snprintf(name, sizeof(name), "%s", leaf);
        }
    }
    for (char *p = name; *p; p++) {
        if (*p == '_') {
            *p = '-';
        }
    }
    snprintf(buf, len, "--%s", name);
}

static const char *
placeholder(int id)
{
    switch (conf__keys[id].type) {
    case CT_BOOL: return "yes|no";
    case CT_INT: return "N";
    case CT_SIZE: return "SIZE";
    case CT_FLOAT: return "X";
    case CT_STRING: return "STR";
    case CT_ENUM: return conf__keys[id].choices->list;
    case CT_LIST: return "A,B,...";
    case CT_SECONDS: return "SECONDS";
    case CT_MILLIS: return "MS";
    }
    return "VALUE";
}

void
config_print_help(FILE *out, const char *prog)
{
    const char *p = prog && *prog ? prog : "crabcache";
    const char *slash = strrchr(p, '/');
    p = slash ? slash + 1 : p;
    fprintf(out,
            "Usage: %s [--config FILE] [--KEY VALUE | --KEY=VALUE ...]\n"
            "       %s --check-config FILE [--KEY VALUE ...]\n"
            "       %s --help | --version\n"
            "\n"
            "CrabCache %s, an in-memory key-value cache speaking its text protocol and RESP.\n"
            "\n"
            "Settings, lowest to highest precedence: built-in defaults < TOML file (--config\n"
            "FILE, or CRABCACHE_CONFIG) < environment variables CRABCACHE_* < flags.\n"
            "Flags take the key with dashes or underscores, --section.key for keys in TOML\n"
            "tables, an alias, or the Redis name (--maxmemory). Sizes: bytes or 64mb, 1.5gb\n"
            "(k/m/g/t, powers of 1024). Durations: a number in the key's unit, or 500ms,\n"
            "30s, 5m, 1h. Lists: comma-separated. A bad setting exits with status 2.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE         load settings from this TOML file\n"
            "      --check-config FILE   validate FILE (plus env and flags), print the\n"
            "                            settings that differ from the defaults, exit 0 or 2\n"
            "  -h, --help                print this text and exit\n"
            "  -v, --version             print \"crabcache %s\" and exit\n"
            "\n"
            "Settings (flag VALUE [default] / TOML key, environment variable):\n",
            p, p, p, CRABCACHE_VERSION, CRABCACHE_VERSION);
    for (int id = 0; id < CONFIG_KEY_COUNT; id++) {
        const struct conf_key *k = &conf__keys[id];
        char flag[112], env[128], left[200];
        preferred_flag(id, flag, sizeof(flag));
        config_key_env_name(id, env, sizeof(env));
        snprintf(left, sizeof(left), "%s %s", flag, placeholder(id));
        fprintf(out, "  %-44s [%s]\n      %s%s\n      %s, %s", left, *k->def ? k->def : "\"\"",
                k->help, (k->flags & CF_LIVE) ? " (CONFIG SET)" : "", k->name, env);
        if (k->env != NULL) {
            for (const char *e = k->env; *e;) {
                size_t n = strcspn(e, "|");
                fprintf(out, ", %.*s", (int)n, e);
                e += n + (e[n] == '|');
            }
        }
        if (k->redis != NULL) {
            fprintf(out, "; redis: %s", k->redis);
        }
        fputc('\n', out);
    }
    fputs("\n"
          "Signals:\n"
          "  SIGTERM, SIGINT   stop accepting, finish in-flight replies, flush the WAL, exit 0\n"
          "  SIGHUP            reopen log_file (after log rotation)\n"
          "\n"
          "HTTP endpoints (metrics_port):\n"
          "  /metrics (Prometheus), /health, /stats (STATS JSON), /dashboard\n"
          "\n"
          "Exit status:\n"
          "  0  normal shutdown, --help, --version, a valid --check-config\n"
          "  1  start-up failed (a port is taken, recovery failed, ...)\n"
          "  2  bad configuration (the message names the key, and file:line when known)\n",
          out);
}
