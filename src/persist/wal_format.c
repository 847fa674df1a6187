/*
 * wal_format.c -- encode, decode and scan WAL records (see wal_format.h and
 * docs/wal-format.md for the byte layout).
 *
 * Decoding checks, in this order, so that garbage is rejected cheaply and a
 * length field is never trusted before its checksum:
 *   1. at least a header's worth of bytes     (else WAL_EAGAIN)
 *   2. header crc32c over bytes 0..19         (else WAL_EHDR)
 *   3. type known, flags known, reserved 0    (else WAL_EFORMAT)
 *   4. the whole payload available            (else WAL_EAGAIN)
 *   5. payload crc32c                         (else WAL_ECRC)
 *   6. payload layout matches its length      (else WAL_EPAYLOAD)
 *
 * The scanner adds the LSN sequence check and the torn-tail/damage
 * classification: a bad spot is a torn tail only if it is in the newest
 * segment and nothing valid follows it. Resynchronising after damage tries
 * every byte offset, checking the 20-byte header checksum first, so it costs
 * one small CRC per byte of damaged region.
 */
#include "persist/wal_format.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist/crc32c.h"
#include "persist/pfile.h"
#include "util/mem.h"

const char *
wal_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case WAL_EAGAIN: return "record truncated";
    case WAL_EHDR: return "record header checksum mismatch";
    case WAL_EFORMAT: return "invalid record header";
    case WAL_ECRC: return "record payload checksum mismatch";
    case WAL_EPAYLOAD: return "invalid record payload";
    case WAL_ELSN: return "record LSN out of sequence";
    case WAL_ESEGHDR: return "invalid segment header";
    case WAL_EGROUP: return "record group not closed";
    case WAL_ESTOP: return "stopped by callback";
    default: break;
    }
    if (err < 0 && err > -4096) {
        return strerror(-err);
    }
    return "unknown error";
}

static size_t
payload_size(const struct wal_rec *rec)
{
    uint64_t n;
    switch (rec->type) {
    case WAL_REC_SET: n = 16 + (uint64_t)rec->klen + rec->vlen; break;
    case WAL_REC_DEL: n = 4 + (uint64_t)rec->klen; break;
    case WAL_REC_EXPIRE: n = 12 + (uint64_t)rec->klen; break;
    case WAL_REC_FLUSHALL: n = 0; break;
    default: return SIZE_MAX;
    }
    if (rec->klen > UINT32_MAX || rec->vlen > UINT32_MAX || n > WAL_MAX_PAYLOAD) {
        return SIZE_MAX;
    }
    return (size_t)n;
}

size_t
wal_rec_size(const struct wal_rec *rec)
{
    size_t n = payload_size(rec);
    return n == SIZE_MAX ? 0 : WAL_REC_HDR_SIZE + n;
}

size_t
wal_rec_encode(const struct wal_rec *rec, uint64_t lsn, uint8_t flags, uint8_t *out)
{
    size_t plen = payload_size(rec);
    if (plen == SIZE_MAX) {
        return 0;
    }
    uint8_t *p = out + WAL_REC_HDR_SIZE;
    switch (rec->type) {
    case WAL_REC_SET:
        wal_put_u64(p, (uint64_t)rec->expire_at_ms);
        wal_put_u32(p + 8, (uint32_t)rec->klen);
        wal_put_u32(p + 12, (uint32_t)rec->vlen);
        if (rec->klen > 0) {
            memcpy(p + 16, rec->key, rec->klen);
        }
        if (rec->vlen > 0) {
            memcpy(p + 16 + rec->klen, rec->val, rec->vlen);
        }
        break;
    case WAL_REC_DEL:
        wal_put_u32(p, (uint32_t)rec->klen);
        if (rec->klen > 0) {
            memcpy(p + 4, rec->key, rec->klen);
        }
        break;
    case WAL_REC_EXPIRE:
        wal_put_u64(p, (uint64_t)rec->expire_at_ms);
        wal_put_u32(p + 8, (uint32_t)rec->klen);
        if (rec->klen > 0) {
            memcpy(p + 12, rec->key, rec->klen);
        }
        break;
    case WAL_REC_FLUSHALL:
        break;
    }
    wal_put_u32(out, crc32c(0, p, plen));
    wal_put_u32(out + 4, (uint32_t)plen);
    wal_put_u64(out + 8, lsn);
    out[16] = (uint8_t)rec->type;
    out[17] = flags;
    out[18] = 0;
    out[19] = 0;
    wal_put_u32(out + 20, crc32c(0, out, 20));
    return WAL_REC_HDR_SIZE + plen;
}

static int
decode_payload(const uint8_t *p, size_t plen, struct wal_rec *rec)
{
    rec->key = NULL;
    rec->klen = 0;
    rec->val = NULL;
    rec->vlen = 0;
    rec->expire_at_ms = 0;
    switch (rec->type) {
    case WAL_REC_SET: {
        if (plen < 16) {
            return WAL_EPAYLOAD;
        }
        uint64_t klen = wal_get_u32(p + 8), vlen = wal_get_u32(p + 12);
        if (16 + klen + vlen != plen) {
            return WAL_EPAYLOAD;
        }
        rec->expire_at_ms = (int64_t)wal_get_u64(p);
        rec->key = p + 16;
        rec->klen = (size_t)klen;
        rec->val = p + 16 + klen;
        rec->vlen = (size_t)vlen;
        break;
    }
    case WAL_REC_DEL:
        if (plen < 4 || 4 + (uint64_t)wal_get_u32(p) != plen) {
            return WAL_EPAYLOAD;
        }
        rec->key = p + 4;
        rec->klen = plen - 4;
        break;
    case WAL_REC_EXPIRE:
        if (plen < 12 || 12 + (uint64_t)wal_get_u32(p + 8) != plen) {
            return WAL_EPAYLOAD;
        }
        rec->expire_at_ms = (int64_t)wal_get_u64(p);
        rec->key = p + 12;
        rec->klen = plen - 12;
        break;
    case WAL_REC_FLUSHALL:
        if (plen != 0) {
            return WAL_EPAYLOAD;
        }
        break;
    default:
        return WAL_EFORMAT;
    }
    if (rec->expire_at_ms < 0) {
        return WAL_EPAYLOAD;
    }
    return 0;
}

int
wal_rec_decode(const uint8_t *p, size_t avail, struct wal_rec *rec, size_t *used)
{
    if (avail < WAL_REC_HDR_SIZE) {
        return WAL_EAGAIN;
    }
    if (crc32c(0, p, 20) != wal_get_u32(p + 20)) {
        return WAL_EHDR;
    }
    uint32_t plen = wal_get_u32(p + 4);
    uint8_t type = p[16], flags = p[17];
    if (type < WAL_REC_SET || type > WAL_REC_FLUSHALL || (flags & ~WAL_F_KNOWN) != 0 ||
        p[18] != 0 || p[19] != 0 || plen > WAL_MAX_PAYLOAD) {
        return WAL_EFORMAT;
    }
    if (avail - WAL_REC_HDR_SIZE < plen) {
        return WAL_EAGAIN;
    }
    const uint8_t *pl = p + WAL_REC_HDR_SIZE;
    if (crc32c(0, pl, plen) != wal_get_u32(p)) {
        return WAL_ECRC;
    }
    rec->type = (enum wal_rec_type)type;
    rec->flags = flags;
    rec->lsn = wal_get_u64(p + 8);
    int r = decode_payload(pl, plen, rec);
    if (r != 0) {
        return r;
    }
    *used = WAL_REC_HDR_SIZE + (size_t)plen;
    return 0;
}

void
wal_seg_hdr_encode(uint64_t first_lsn, uint8_t *out)
{
    memcpy(out, WAL_SEG_MAGIC, 8);
    wal_put_u32(out + 8, WAL_VERSION);
    wal_put_u32(out + 12, WAL_SEG_HDR_SIZE);
    wal_put_u64(out + 16, first_lsn);
    wal_put_u32(out + 24, 0);
    wal_put_u32(out + 28, crc32c(0, out, 28));
}

int
wal_seg_hdr_decode(const uint8_t *p, size_t len, uint64_t *first_lsn)
{
    if (len < WAL_SEG_HDR_SIZE) {
        return WAL_EAGAIN;
    }
    if (memcmp(p, WAL_SEG_MAGIC, 8) != 0 || wal_get_u32(p + 8) != WAL_VERSION ||
        wal_get_u32(p + 12) != WAL_SEG_HDR_SIZE || wal_get_u32(p + 24) != 0 ||
        crc32c(0, p, 28) != wal_get_u32(p + 28) || wal_get_u64(p + 16) == 0) {
        return WAL_ESEGHDR;
    }
    *first_lsn = wal_get_u64(p + 16);
    return 0;
}

void
wal_seg_name(uint64_t first_lsn, char *out, size_t outlen)
{
    snprintf(out, outlen, "wal-%016" PRIx64 ".log", first_lsn);
}

bool
wal_seg_name_parse(const char *name, uint64_t *first_lsn)
{
    if (strlen(name) != 24 || memcmp(name, "wal-", 4) != 0 || strcmp(name + 20, ".log") != 0) {
        return false;
    }
    return pfile_hex16(name + 4, first_lsn);
}

/* ---- scanner ------------------------------------------------------------ */

struct group {
    struct wal_rec *recs;
    size_t n, cap;
};

static void
group_push(struct group *g, const struct wal_rec *rec)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 8;
        g->recs = xrealloc(g->recs, g->cap * sizeof(*g->recs));
    }
    g->recs[g->n++] = *rec;
}

/* First offset > from where a fully valid record with lsn >= min_lsn starts,
 * or len if there is none. */
static size_t
find_next_valid(const uint8_t *data, size_t len, size_t from, uint64_t min_lsn)
{
    for (size_t off = from; off + WAL_REC_HDR_SIZE <= len; off++) {
        const uint8_t *p = data + off;
        if (crc32c(0, p, 20) != wal_get_u32(p + 20)) {
            continue;
        }
        struct wal_rec rec;
        size_t used;
        if (wal_rec_decode(p, len - off, &rec, &used) == 0 && rec.lsn >= min_lsn) {
            return off;
        }
    }
    return len;
}

int
wal_scan(const uint8_t *data, size_t len, const struct wal_scan_opts *opts,
         wal_group_fn fn, void *ctx, struct wal_scan_result *res)
{
    struct group g = { 0 };
    int status = 0;
    memset(res, 0, sizeof(*res));

    uint64_t first;
    int r = wal_seg_hdr_decode(data, len, &first);
    if (r != 0) {
        /* A header that never made it to disk (crash right after creating the
         * newest segment) is a torn tail; otherwise the file is unusable. */
        if (opts->is_last && find_next_valid(data, len, 0, 1) == len) {
            res->torn = true;
            return 0;
        }
        res->damage_err = WAL_ESEGHDR;
        return WAL_ESEGHDR;
    }
    res->first_lsn = first;
    res->next_lsn = first;
    res->good_end = WAL_SEG_HDR_SIZE;
    uint64_t expect = first;
    size_t off = WAL_SEG_HDR_SIZE;

    while (off < len) {
        struct wal_rec rec;
        size_t used = 0;
        r = wal_rec_decode(data + off, len - off, &rec, &used);
        if (r == 0 && rec.lsn != expect) {
            r = WAL_ELSN;
        }
        if (r == 0 && ((rec.flags & WAL_F_CONT) != 0) != (g.n > 0)) {
            r = WAL_EGROUP;
        }
        if (r == 0) {
            group_push(&g, &rec);
            off += used;
            expect = rec.lsn + 1;
            if ((rec.flags & WAL_F_MORE) == 0) {
                if (fn != NULL && fn(ctx, g.recs, g.n) != 0) {
                    status = WAL_ESTOP;
                    goto out;
                }
                res->records += g.n;
                res->groups++;
                res->next_lsn = expect;
                res->good_end = off;
                g.n = 0;
            }
            continue;
        }
        size_t next = find_next_valid(data, len, off + 1, expect);
        if (next == len && opts->is_last) {
            res->torn = true;
            goto out;
        }
        if (res->damage_err == 0) {
            res->damage_off = off;
            res->damage_err = r;
        }
        if (!opts->skip_damaged) {
            status = r;
            goto out;
        }
        res->skipped_regions++;
        res->skipped_bytes += next - off;
        res->skipped_records += g.n;
        g.n = 0;
        off = next;
        /* Resume at the head of a group: the tail of a group whose head was
         * damaged is dropped too. */
        while (off < len) {
            if (wal_rec_decode(data + off, len - off, &rec, &used) != 0 || rec.lsn < expect) {
                break; /* the main loop treats it as damage */
            }
            expect = rec.lsn;
            if ((rec.flags & WAL_F_CONT) == 0) {
                break;
            }
            res->skipped_records++;
            off += used;
            expect = rec.lsn + 1;
        }
    }
    if (g.n > 0) {
        /* The file ends inside a group. */
        if (opts->is_last) {
            res->torn = true;
        } else {
            if (res->damage_err == 0) {
                res->damage_off = off;
                res->damage_err = WAL_EGROUP;
            }
            if (!opts->skip_damaged) {
                status = WAL_EGROUP;
                goto out;
            }
            res->skipped_regions++;
            res->skipped_records += g.n;
        }
    }
out:
    free(g.recs);
    return status;
}
