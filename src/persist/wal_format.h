/*
 * wal_format.h -- the WAL's on-disk format: record codec and segment scanner.
 *
 * Everything here is pure (no I/O, no allocation visible to the caller, no
 * global state), so it is shared by the writer (wal.c), recovery (persist.c),
 * the unit tests and the fuzz target. docs/wal-format.md is the normative
 * byte-by-byte description; in short (all integers little-endian):
 *
 *   segment file "wal-<first_lsn as 16 hex digits>.log":
 *     segment header, 32 bytes:
 *       0  magic "CRABWAL\n"         8 bytes
 *       8  version (1)               u32
 *      12  header size (32)          u32
 *      16  first_lsn                 u64  LSN of the first record in the file
 *      24  flags (0)                 u32
 *      28  crc32c of bytes 0..27     u32
 *     then records, back to back, LSNs consecutive from first_lsn.
 *
 *   record = 24-byte header + payload:
 *       0  payload crc32c            u32
 *       4  payload length            u32
 *       8  lsn                       u64
 *      16  type                      u8   (enum wal_rec_type)
 *      17  flags                     u8   (WAL_F_MORE: the group goes on,
 *                                          WAL_F_CONT: not the group's first)
 *      18  reserved (0)              u16
 *      20  crc32c of bytes 0..19     u32  (the header checksum)
 *
 *   payloads:
 *     SET      expire_at_ms i64 | klen u32 | vlen u32 | key | value
 *     DEL      klen u32 | key
 *     EXPIRE   expire_at_ms i64 | klen u32 | key     (expire_at_ms 0 = PERSIST)
 *     FLUSHALL (empty)
 *
 * Groups: the records of one command (RENAME = DEL src + SET dst, MULTI/EXEC)
 * are appended together; every record but the last carries WAL_F_MORE, every
 * record but the first WAL_F_CONT. Recovery applies a group only once its
 * last record is read and valid, so a torn group is never half-applied; after
 * skipping damage it resumes at a record without WAL_F_CONT, so a group whose
 * head was damaged is dropped whole.
 */
#ifndef CRAB_PERSIST_WAL_FORMAT_H
#define CRAB_PERSIST_WAL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_SEG_MAGIC    "CRABWAL\n"
#define WAL_VERSION      1u
#define WAL_SEG_HDR_SIZE 32u
#define WAL_REC_HDR_SIZE 24u
/* Largest payload a reader accepts (keys and values are each <= 512 MiB). */
#define WAL_MAX_PAYLOAD  0x7fffffffu

enum wal_rec_type {
    WAL_REC_SET = 1,
    WAL_REC_DEL = 2,
    WAL_REC_EXPIRE = 3,
    WAL_REC_FLUSHALL = 4,
};

#define WAL_F_MORE      0x01u /* another record of the same group follows */
#define WAL_F_CONT      0x02u /* this record continues a group (not its first) */
#define WAL_F_KNOWN     0x03u /* every flag bit this version knows */

/* Format errors (below -4096 so they never collide with -errno values). */
enum wal_err {
    WAL_EAGAIN = -5001,  /* the record runs past the end of the data */
    WAL_EHDR = -5002,    /* record header checksum mismatch */
    WAL_EFORMAT = -5003, /* header fields invalid (type, flags, length) */
    WAL_ECRC = -5004,    /* payload checksum mismatch */
    WAL_EPAYLOAD = -5005, /* payload layout inconsistent with its length */
    WAL_ELSN = -5006,    /* LSN out of sequence */
    WAL_ESEGHDR = -5007, /* segment header missing or invalid */
    WAL_EGROUP = -5008,  /* a group is not closed where it must be */
    WAL_ESTOP = -5009,   /* the callback asked to stop */
};

/*
 * One logical record. On encode the caller fills type, key/klen, val/vlen and
 * expire_at_ms (fields a type does not use are ignored); lsn and flags are
 * given separately. On decode every field is set and key/val point INTO the
 * decoded bytes (no copy): they live as long as those bytes.
 */
struct wal_rec {
    enum wal_rec_type type;
    uint8_t flags;
    uint64_t lsn;
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
    int64_t expire_at_ms; /* absolute Unix ms; 0 = no expiry / PERSIST */
};

/* A short English description of a WAL_E* code or -errno. Never NULL. */
const char *wal_strerror(int err);

/* Encoded size (header + payload) of rec, or 0 if it cannot be encoded
 * (unknown type, or payload over WAL_MAX_PAYLOAD). */
size_t wal_rec_size(const struct wal_rec *rec);

/* Encode rec with the given lsn and flags into out, which has room for
 * wal_rec_size(rec) bytes. Returns the bytes written (0 if it cannot be
 * encoded). */
size_t wal_rec_encode(const struct wal_rec *rec, uint64_t lsn, uint8_t flags, uint8_t *out);

/*
 * Decode and verify one record at p (avail bytes readable). On success fills
 * *rec (pointing into p), sets *used to the record's full size and returns 0.
 * Otherwise returns WAL_EAGAIN (incomplete: fewer than a header or the whole
 * payload available), WAL_EHDR, WAL_EFORMAT, WAL_ECRC or WAL_EPAYLOAD.
 * Never reads outside [p, p + avail).
 */
int wal_rec_decode(const uint8_t *p, size_t avail, struct wal_rec *rec, size_t *used);

/* Write a segment header for first_lsn into out (WAL_SEG_HDR_SIZE bytes). */
void wal_seg_hdr_encode(uint64_t first_lsn, uint8_t *out);

/* Verify a segment header; on success stores first_lsn and returns 0, else
 * WAL_ESEGHDR (or WAL_EAGAIN when len < WAL_SEG_HDR_SIZE). */
int wal_seg_hdr_decode(const uint8_t *p, size_t len, uint64_t *first_lsn);

/* Segment file name for first_lsn: "wal-%016llx.log" into out (>= 32 bytes). */
void wal_seg_name(uint64_t first_lsn, char *out, size_t outlen);
/* Parse a segment file name; returns true and sets *first_lsn if it is one. */
bool wal_seg_name_parse(const char *name, uint64_t *first_lsn);

/*
 * The segment scanner: walks an in-memory segment image, verifies every
 * record, and hands complete groups to a callback.
 *
 * Classification of a bad spot at offset N (a record that fails any check):
 *  - if no valid record (header and payload checksums good, lsn >= the one
 *    expected) starts anywhere after N, and opts.is_last is set, the bytes
 *    from the end of the last complete group to the end are a TORN TAIL:
 *    res->torn is set and scanning stops there (status 0);
 *  - otherwise it is DAMAGE: without opts.skip_damaged the scan stops and
 *    returns the error with res->damage_off = N; with it, the scanner drops
 *    any partial group, resynchronises on the next valid record, counts the
 *    skip and goes on.
 * A non-last segment has no torn tail (segments are fsynced before the next
 * one is created), so a bad tail there is damage.
 */
struct wal_scan_opts {
    bool is_last;      /* this is the newest segment: a bad tail is torn */
    bool skip_damaged; /* skip damaged regions instead of stopping */
};

struct wal_scan_result {
    uint64_t first_lsn;       /* from the segment header */
    uint64_t next_lsn;        /* LSN after the last record delivered */
    uint64_t records;         /* records delivered in complete groups */
    uint64_t groups;          /* groups delivered */
    size_t good_end;          /* offset just past the last complete group */
    bool torn;                /* [good_end, len) is a torn tail */
    size_t damage_off;        /* offset of the first damaged spot, if any */
    int damage_err;           /* its WAL_E* reason, 0 if none */
    uint64_t skipped_regions; /* damaged regions skipped (skip_damaged) */
    uint64_t skipped_bytes;
    uint64_t skipped_records; /* valid records dropped with a broken group */
};

/* Called once per complete group, in log order; recs[0..n) point into the
 * segment image. Return 0 to go on, non-zero to stop the scan (the scan then
 * returns WAL_ESTOP). */
typedef int (*wal_group_fn)(void *ctx, const struct wal_rec *recs, size_t n);

/*
 * Scan data[0..len) as one segment. Returns 0 when the whole segment was
 * consumed (possibly with a torn tail or skipped damage, see res), or a
 * WAL_E* code for damage (res->damage_off tells where), or WAL_ESTOP.
 * fn may be NULL (verify only). Thread-safe; allocates only a small group
 * array internally.
 */
int wal_scan(const uint8_t *data, size_t len, const struct wal_scan_opts *opts,
             wal_group_fn fn, void *ctx, struct wal_scan_result *res);

/* Little-endian helpers shared by the persist files. */
static inline void
wal_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void
wal_put_u64(uint8_t *p, uint64_t v)
{
    wal_put_u32(p, (uint32_t)v);
    wal_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t
wal_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
wal_get_u64(const uint8_t *p)
{
    return (uint64_t)wal_get_u32(p) | (uint64_t)wal_get_u32(p + 4) << 32;
}

#endif
