/*
 * slowlog.h -- the slow log: commands that took longer than a threshold,
 * newest first, in a bounded ring (SLOWLOG GET/LEN/RESET). Thread-safe.
 */
#ifndef CRAB_CMD_SLOWLOG_H
#define CRAB_CMD_SLOWLOG_H

#include <stddef.h>
#include <stdint.h>

#include "cmd/client.h"
#include "proto/proto.h"

/* Threshold in microseconds (default 10000, as Redis); negative disables. */
void slowlog_set_threshold(int64_t usec);
int64_t slowlog_threshold(void);
void slowlog_add(const struct client *c, int argc, const struct proto_arg *argv, int64_t usec);
size_t slowlog_len(void);
void slowlog_reset(void);
/* Reply the newest count entries (-1 = all) in Redis's format. */
void slowlog_reply(struct reply *r, long long count);

#endif
