/*
 * slowlog.h -- the slow log: commands that took longer than a threshold,
 * newest first, in a bounded ring (SLOWLOG GET/LEN/RESET), as Redis keeps it.
 *
 * Entry ids grow for the life of the process (SLOWLOG RESET empties the log
 * but does not restart the ids, as in Redis). Arguments are cut as Redis cuts
 * them: at most 32 per entry (the last one says how many more there were) and
 * 128 bytes each (with "... (N more bytes)").
 *
 * Thread-safety: every function may be called from any thread. The ring is
 * behind one mutex, which only slow commands reach: cmd_call_inline compares the
 * duration with slowlog_threshold() (an atomic load) first.
 */
#ifndef CRAB_CMD_SLOWLOG_H
#define CRAB_CMD_SLOWLOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/client.h"
#include "proto/proto.h"

#define SLOWLOG_DEFAULT_THRESHOLD 10000 /* us, Redis's slowlog-log-slower-than */
#define SLOWLOG_DEFAULT_MAX_LEN 128     /* Redis's slowlog-max-len */

/* Threshold in microseconds: commands taking at least this long are logged;
 * 0 logs everything, negative disables the log. */
void slowlog_set_threshold(int64_t usec);
extern _Atomic int64_t slowlog_threshold_us;
static inline int64_t
slowlog_threshold(void)
{
    return atomic_load_explicit(&slowlog_threshold_us, memory_order_relaxed);
}

/* Entries kept (older ones are dropped first). Shrinking drops the oldest
 * entries at once, as Redis does. */
void slowlog_set_max_len(size_t n);
size_t slowlog_max_len(void);

/* Record one command: argv is copied (cut as described above), c->addr and
 * c->name too. The caller keeps ownership of everything it passes. */
void slowlog_add(const struct client *c, int argc, const struct proto_arg *argv, int64_t usec);

/* Entries currently held. */
size_t slowlog_len(void);
/* Drop every entry (ids keep counting). */
void slowlog_reset(void);
/* Append to r the newest count entries (-1 = all), each as Redis 7 replies
 * it: [id, unix time, microseconds, [args...], "ip:port", "client name"]. */
void slowlog_reply(struct reply *r, long long count);

#endif
