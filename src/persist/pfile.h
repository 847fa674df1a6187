/*
 * pfile.h -- small file helpers shared by the persist layer (WAL, snapshots,
 * recovery): directory fsync, whole-file read-only mapping, directory listing
 * by name pattern. Internal to src/persist; other layers use wal.h, snap.h
 * and persist.h.
 *
 * All functions return 0 or -errno and are thread-safe (no shared state).
 */
#ifndef CRAB_PERSIST_PFILE_H
#define CRAB_PERSIST_PFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* fsync a directory so that entries created, renamed or removed in it are
 * durable. */
int pfile_fsync_dir(const char *dir);

/* Create dir and any missing parent (mkdir -p). */
int pfile_mkdir(const char *dir);

/* A read-only view of a whole file. data is NULL for an empty file. */
struct pfile_map {
    const uint8_t *data;
    size_t len;
};

/* Map path read-only (MAP_PRIVATE, sequential advice). Unmap with
 * pfile_unmap(). The file must not be truncated while it is mapped. */
int pfile_map(const char *path, struct pfile_map *m);
void pfile_unmap(struct pfile_map *m);

/* Write all n bytes at offset off (pwrite, retrying short writes and EINTR). */
int pfile_pwrite_all(int fd, const void *buf, size_t n, off_t off);

/* Names in dir accepted by match (ctx passed through), each with the u64 the
 * matcher extracted, sorted by that value ascending. *names is an array of
 * xmalloc'd strings; free with pfile_list_free(). Returns the count (>= 0) or
 * -errno. */
struct pfile_entry {
    char *name;
    uint64_t key;
};
typedef bool (*pfile_match_fn)(const char *name, uint64_t *key);
int pfile_list(const char *dir, pfile_match_fn match, struct pfile_entry **out);
void pfile_list_free(struct pfile_entry *list, int n);

/* Parse exactly 16 lower-case hex digits at s (an LSN in a file name). */
bool pfile_hex16(const char *s, uint64_t *v);

/* Join dir and name into out (outlen bytes); returns 0 or -ENAMETOOLONG. */
int pfile_join(char *out, size_t outlen, const char *dir, const char *name);

#endif
