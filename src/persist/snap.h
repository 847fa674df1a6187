/*
 * snap.h -- snapshot files: a point-in-time-ish copy of every live key,
 * written in the background, that lets the WAL before it be deleted.
 *
 * A snapshot records the WAL LSN read BEFORE the iteration started
 * ("snapshot LSN"). It reflects every record with LSN <= that and possibly
 * some later ones (it is fuzzy: shards are copied one after another while
 * clients keep writing). Recovery loads it and then replays the log records
 * with LSN > snapshot LSN; because records are state-based (SET carries the
 * whole value, DEL/EXPIRE/FLUSHALL set a state, none is relative), replaying
 * a record whose effect is already in the snapshot converges to the same
 * final state. docs/wal-format.md gives the argument and the byte layout:
 *
 *   file "snap-<lsn as 16 hex digits>.snap" (written as ".snap.tmp", fsync,
 *   rename, directory fsync):
 *     header, 40 bytes: magic "CRABSNP\n" | version u32 (1) | header size u32
 *       (40) | lsn u64 | created_ms u64 | flags u32 (0) | crc32c(0..35) u32
 *     blocks: payload_len u32 | count u32 | payload crc32c u32 |
 *       crc32c(block header 0..11) u32 | payload
 *       payload = count entries: expire_at_ms i64 | klen u32 | vlen u32 |
 *                 key | value
 *     trailer: a block with count 0 whose 16-byte payload is
 *       total entries u64 | data blocks u64; the file ends right after it.
 *
 * Thread-safety: no shared state; each call works on its own file.
 */
#ifndef CRAB_PERSIST_SNAP_H
#define CRAB_PERSIST_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC        "CRABSNP\n"
#define SNAP_VERSION      1u
#define SNAP_HDR_SIZE     40u
#define SNAP_BLK_HDR_SIZE 16u

enum snap_err {
    SNAP_EHDR = -5101,     /* file header missing or invalid */
    SNAP_EBLOCK = -5102,   /* block header invalid or truncated */
    SNAP_ECRC = -5103,     /* block payload checksum mismatch */
    SNAP_EENTRY = -5104,   /* entry layout inconsistent */
    SNAP_ETRAILER = -5105, /* trailer missing, wrong, or bytes after it */
};

/* A short description of a SNAP_E* code (or of -errno / WAL_E*). */
const char *snap_strerror(int err);

struct snap_info {
    uint64_t lsn;        /* snapshot LSN */
    int64_t created_ms;  /* Unix ms when the snapshot started */
    uint64_t keys;       /* entries in the file */
    uint64_t bytes;      /* file size */
    int64_t duration_us; /* snap_write: time spent */
};

/* Where the iterator puts entries; owned by snap_write(). */
struct snap_sink;

/*
 * Add one live key. Copies key and value (so the caller may add straight from
 * a chunk it copied under a shard lock, or from the store while holding the
 * lock: it does a memcpy and, every ~1 MiB, one write(2)). Returns 0 or
 * -errno of a failed write (the iterator should then return it).
 */
int snap_sink_add(struct snap_sink *sink, const void *key, size_t klen, const void *val,
                  size_t vlen, int64_t expire_at_ms);

/* The server's iterator: call snap_sink_add() for every live key, shard by
 * shard, taking each shard lock only briefly. Return 0, or non-zero to abort
 * the snapshot (that value is returned by snap_write). Runs on the thread
 * that called snap_write. */
typedef int (*snap_iter_fn)(void *ctx, struct snap_sink *sink);

/*
 * Write dir/snap-<lsn>.snap: a temporary file, the iterator's entries, the
 * trailer, fsync, rename, fsync of dir. On any failure the temporary file is
 * removed and an existing snapshot is left untouched. Returns 0 (and fills
 * *info if not NULL) or -errno / the iterator's code. Blocks (background
 * thread only).
 */
int snap_write(const char *dir, uint64_t lsn, snap_iter_fn iter, void *ctx,
               struct snap_info *info);

/* Called for each entry on load; key/val point into the mapped file. Return
 * 0 to go on, non-zero to stop (snap_load then returns that value). */
typedef int (*snap_entry_fn)(void *ctx, const void *key, size_t klen, const void *val,
                             size_t vlen, int64_t expire_at_ms);

/*
 * Verify a whole snapshot image in memory (header, every block checksum,
 * every entry layout, trailer). Returns 0 and fills *info (if not NULL), or
 * a SNAP_E* code with *bad_off (if not NULL) the offset of the bad spot.
 * Pure and fuzzable.
 */
int snap_verify(const uint8_t *data, size_t len, struct snap_info *info, size_t *bad_off);

/* Verify, then call fn for every entry, in file order. Nothing is delivered
 * from an image that fails verification. Returns as snap_verify, or fn's
 * non-zero value. */
int snap_load_mem(const uint8_t *data, size_t len, snap_entry_fn fn, void *ctx,
                  struct snap_info *info, size_t *bad_off);

/* snap_load_mem on a file (mapped read-only). Also returns -errno. */
int snap_load(const char *path, snap_entry_fn fn, void *ctx, struct snap_info *info,
              size_t *bad_off);

/* "snap-%016llx.snap" for lsn into out (>= 32 bytes). */
void snap_name(uint64_t lsn, char *out, size_t outlen);
/* Parse a snapshot file name (not the .tmp ones). */
bool snap_name_parse(const char *name, uint64_t *lsn);

/*
 * Keep the newest `keep` (>= 1) snapshots in dir, delete older ones and any
 * leftover "snap-*.snap.tmp". Stores the LSN of the oldest snapshot kept in
 * *oldest_kept (0 if none). Returns the number of files removed or -errno.
 */
int snap_prune(const char *dir, unsigned keep, uint64_t *oldest_kept);

#endif
