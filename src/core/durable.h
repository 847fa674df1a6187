/*
 * durable.h -- the server's persistence glue: recovery into the store at
 * start-up, the WAL as a consumer of the mutation stream (server.stream),
 * snapshots of the store, and the durability point that `sync` replies wait
 * for.
 *
 * When persistence is off every function here is a cheap no-op and
 * durable_enabled() is false.
 */
#ifndef CRAB_CORE_DURABLE_H
#define CRAB_CORE_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persist/persist.h"

struct config;

/* Called (from the WAL thread) when the durable LSN moves or the WAL error
 * state changes; the network layer wakes its workers. */
typedef void (*durable_wake_fn)(void);

/* Recover dir into server.store, then open the WAL and the snapshot thread.
 * Returns 0, or -1 with a message in err (start-up must stop). */
int durable_open(const struct config *cfg, durable_wake_fn wake, char *err, size_t errlen);
/* Flush and close (SIGTERM). */
void durable_close(void);

/* Whether a write-ahead log is open: set by durable_open before the workers
 * start and cleared by durable_close after they stop. Inline (one load):
 * dispatch asks before every write, to refuse writes while the log fails.
 * Handlers never ask: they report to the mutation stream regardless. */
extern bool durable__on;
static inline bool
durable_enabled(void)
{
    return durable__on;
}
/* The sync policy: replies wait for durable_lsn(). */
bool durable_sync(void);
uint64_t durable_lsn(void);
/* 0, or the WAL's -errno with msg filled. */
int durable_error(char *msg, size_t len);

int durable_bgsave(void);
int durable_save(void);
bool durable_info(struct persist_info *info);

#endif
