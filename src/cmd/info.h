/*
 * info.h -- introspection that the HTTP side shares with INFO and the native
 * STATS verb (cmd/t_info.c).
 */
#ifndef CRAB_CMD_INFO_H
#define CRAB_CMD_INFO_H

#include <stddef.h>

struct buf;

/* The STATS JSON of the native protocol and /stats: one object, no newline,
 * appended to out. Takes each shard lock briefly. Any thread. */
void stats_json(struct buf *out);

/* Resident set size of the process in bytes (0 if unknown). */
size_t server_rss_bytes(void);

/* Record the allocator's figure before any data is loaded: MEMORY STATS's
 * startup.allocated (cmd/t_object.c). */
void memory_note_startup(void);

#endif
