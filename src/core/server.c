/*
 * server.c -- the one mutable global (server.h) and its connection refusal
 * counters.
 */
#include "core/server.h"

#include <stdatomic.h>

struct server server;

const char *
server_reject_name(enum server_reject r)
{
    switch (r) {
    case SERVER_REJECT_MAXCLIENTS:
        return "max_connections";
    case SERVER_REJECT_PROTECTED:
        return "protected_mode";
    case SERVER_REJECT_ALLOWLIST:
        return "allowlist";
    case SERVER_REJECT_TLS:
        return "tls";
    default:
        return "other";
    }
}

void
server_count_rejected(enum server_reject r)
{
    atomic_fetch_add(&server.conns_rejected, 1);
    if ((unsigned)r < SERVER_REJECT_COUNT) {
        atomic_fetch_add(&server.conns_rejected_by[r], 1);
    }
}
