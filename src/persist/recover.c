/*
 * recover.c -- start-up recovery: newest valid snapshot, then the log after it.
 *
 *   1. List snap-*.snap and wal-*.log in the directory (names carry the LSN,
 *      so sorting names sorts by LSN). Stale snap-*.snap.tmp files (a crash
 *      during a snapshot) are ignored; snap_prune() removes them later.
 *   2. From the newest snapshot down: map it, verify it completely, and only
 *      then feed its entries to apply (as SETs, skipping expired ones). A
 *      damaged snapshot is logged and the next older one is tried.
 *   3. expect = snapshot LSN + 1. Segments wholly below expect are skipped
 *      without being read. Each remaining segment is mapped and scanned
 *      (wal_scan); a segment whose header LSN is above expect means LSNs are
 *      missing (damage). Records with LSN < expect are already in the
 *      snapshot and skipped; the rest are applied group by group.
 *
 *      Expiry: a SET or EXPIRE whose absolute time has passed is applied as
 *      DEL (skipping it would let an older value of the key, from the
 *      snapshot or an earlier record, come back), and an expired snapshot
 *      entry is not applied at all. That is only right if no LATER record
 *      extends the key's life: SET k v PX 30 then PERSIST k, replayed a
 *      minute later, must give k = v. So a first, read-only pass over the
 *      log collects the hashes (XXH3) of keys that have an EXPIRE record
 *      with a time still in the future or 0 ("revivable" keys); records and
 *      entries of those keys are applied as they are, past expiry included,
 *      and the store's own expiry hides and reclaims them if they stay
 *      expired. A hash collision only makes a key take that raw path too.
 *   4. Torn tail of the newest segment: unmap, truncate the file at the end
 *      of its last complete group (or unlink a segment whose header itself is
 *      torn), log file, offset and bytes dropped. Damage anywhere else: stop
 *      with "file F offset N: reason", or with skip_damaged, skip and count.
 *   5. next_lsn = max(expect, snapshot LSN + 1): the WAL continues there.
 *
 * Cost: two sequential passes over the snapshot (verify, load) and one over
 * the log, all through read-only mappings (no syscall per record), CRC32C in
 * hardware; the apply callback dominates.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/pfile.h"
#include "persist/persist.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#include <xxhash.h>

struct rcv {
    persist_apply_fn apply;
    void *ctx;
    const struct persist_recover_opts *opts;
    struct persist_report *rep;
    int64_t now_ms;
    uint64_t expect;        /* next LSN to apply */
    int apply_rc;
    int64_t t0_us;
    int64_t next_progress_us;
    const char *phase;
    const char *file;
    uint64_t total_bytes;
    uint64_t bytes_done;    /* files finished so far */
    uint64_t counter;
    /* revivable key hashes: open addressing, 0 = empty slot */
    uint64_t *rv;
    size_t rv_cap, rv_n;
};

static uint64_t
key_hash(const void *key, size_t klen)
{
    uint64_t h = XXH3_64bits(key, klen);
    return h != 0 ? h : 1;
}

static void
rv_insert(struct rcv *r, uint64_t h)
{
    if ((r->rv_n + 1) * 2 > r->rv_cap) {
        size_t ncap = r->rv_cap ? r->rv_cap * 2 : 1024;
        uint64_t *n = xcalloc(ncap, sizeof(*n));
        for (size_t i = 0; i < r->rv_cap; i++) {
            if (r->rv[i] != 0) {
                size_t j = r->rv[i] & (ncap - 1);
                while (n[j] != 0) {
                    j = (j + 1) & (ncap - 1);
                }
                n[j] = r->rv[i];
            }
        }
        free(r->rv);
        r->rv = n;
        r->rv_cap = ncap;
    }
    size_t j = h & (r->rv_cap - 1);
    while (r->rv[j] != 0) {
        if (r->rv[j] == h) {
            return;
        }
        j = (j + 1) & (r->rv_cap - 1);
    }
    r->rv[j] = h;
    r->rv_n++;
}

static bool
rv_contains(const struct rcv *r, const void *key, size_t klen)
{
    if (r->rv_n == 0) {
        return false;
    }
    uint64_t h = key_hash(key, klen);
    size_t j = h & (r->rv_cap - 1);
    while (r->rv[j] != 0) {
        if (r->rv[j] == h) {
            return true;
        }
        j = (j + 1) & (r->rv_cap - 1);
    }
    return false;
}

static void
progress(struct rcv *r)
{
    if ((++r->counter & 0xffff) != 0) {
        return;
    }
    int64_t now = clock_mono_us();
    if (now < r->next_progress_us) {
        return;
    }
    r->next_progress_us = now + (int64_t)r->opts->progress_ms * 1000;
    log_info("recovery progress",
             "\"phase\":\"%s\",\"file\":\"%s\",\"keys\":%" PRIu64 ",\"records\":%" PRIu64
             ",\"bytes_done\":%" PRIu64 ",\"bytes_total\":%" PRIu64 ",\"elapsed_ms\":%" PRId64,
             r->phase, r->file, r->rep->snapshot_keys, r->rep->records, r->bytes_done,
             r->total_bytes,
             (now - r->t0_us) / 1000);
}

static int
on_snap_entry(void *ctx, const void *key, size_t klen, const void *val, size_t vlen,
              int64_t expire_at_ms)
{
    struct rcv *r = ctx;
    if (expire_at_ms != 0 && expire_at_ms <= r->now_ms && !rv_contains(r, key, klen)) {
        r->rep->snapshot_expired++;
        return 0;
    }
    struct wal_rec rec = { .type = WAL_REC_SET, .key = key, .klen = klen, .val = val,
                           .vlen = vlen, .expire_at_ms = expire_at_ms };
    int rc = r->apply(r->ctx, &rec);
    if (rc != 0) {
        r->apply_rc = rc;
        return rc;
    }
    r->rep->snapshot_keys++;
    progress(r);
    return 0;
}

static int
on_group(void *ctx, const struct wal_rec *recs, size_t n)
{
    struct rcv *r = ctx;
    for (size_t i = 0; i < n; i++) {
        struct wal_rec x = recs[i];
        if (x.lsn < r->expect) {
            continue; /* already in the snapshot */
        }
        if (x.lsn > r->expect) {
            r->rep->missing_lsns += x.lsn - r->expect; /* resynchronised after damage */
        }
        if ((x.type == WAL_REC_SET || x.type == WAL_REC_EXPIRE) && x.expire_at_ms != 0 &&
            x.expire_at_ms <= r->now_ms && !rv_contains(r, x.key, x.klen)) {
            x.type = WAL_REC_DEL;
            x.val = NULL;
            x.vlen = 0;
            x.expire_at_ms = 0;
            r->rep->expired++;
        }
        int rc = r->apply(r->ctx, &x);
        if (rc != 0) {
            r->apply_rc = rc;
            return 1;
        }
        r->expect = x.lsn + 1;
        r->rep->records++;
        progress(r);
    }
    return 0;
}

/* Pass 1: remember keys whose life a later EXPIRE may extend. */
static int
on_group_collect(void *ctx, const struct wal_rec *recs, size_t n)
{
    struct rcv *r = ctx;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].type == WAL_REC_EXPIRE &&
            (recs[i].expire_at_ms == 0 || recs[i].expire_at_ms > r->now_ms)) {
            rv_insert(r, key_hash(recs[i].key, recs[i].klen));
        }
    }
    return 0;
}

static void
collect_revivable(struct rcv *r, const char *dir, const struct pfile_entry *segs, int start,
                  int n)
{
    for (int i = start; i < n; i++) {
        char path[4096];
        struct pfile_map m;
        if (pfile_join(path, sizeof(path), dir, segs[i].name) < 0 || pfile_map(path, &m) < 0) {
            continue; /* pass 2 reports it */
        }
        struct wal_scan_opts so = { .is_last = true, .skip_damaged = true };
        struct wal_scan_result res;
        wal_scan(m.data, m.len, &so, on_group_collect, r, &res);
        pfile_unmap(&m);
    }
}

static int
fail(struct persist_report *rep, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct persist_report *rep, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->error, sizeof(rep->error), fmt, ap);
    va_end(ap);
    log_error("recovery failed", "\"error\":\"%s\"", rep->error);
    return rc;
}

/* Step 2: the newest snapshot that verifies; left mapped in *m. */
static int
select_snapshot(struct rcv *r, const char *dir, struct pfile_map *m, uint64_t *keys)
{
    struct pfile_entry *list;
    m->data = NULL;
    m->len = 0;
    int n = pfile_list(dir, snap_name_parse, &list);
    if (n < 0) {
        return fail(r->rep, n, "list %s: %s", dir, strerror(-n));
    }
    for (int i = n - 1; i >= 0; i--) {
        char path[4096];
        size_t bad = 0;
        struct snap_info info;
        if (pfile_join(path, sizeof(path), dir, list[i].name) < 0) {
            continue;
        }
        int rc = pfile_map(path, m);
        if (rc == 0) {
            rc = snap_verify(m->data, m->len, &info, &bad);
            if (rc == 0 && info.lsn != list[i].key) {
                rc = SNAP_EHDR;
            }
        }
        if (rc != 0) {
            log_warn("snapshot damaged, trying an older one",
                     "\"file\":\"%s\",\"offset\":%zu,\"error\":\"%s\"", list[i].name, bad,
                     snap_strerror(rc));
            r->rep->snapshots_damaged++;
            pfile_unmap(m);
            continue;
        }
        snprintf(r->rep->snapshot, sizeof(r->rep->snapshot), "%s", list[i].name);
        r->rep->snapshot_lsn = info.lsn;
        *keys = info.keys;
        break;
    }
    pfile_list_free(list, n);
    return 0;
}

/* Step 2, after pass 1: deliver the selected snapshot's entries. */
static int
load_snapshot(struct rcv *r, struct pfile_map *m)
{
    r->phase = "snapshot";
    r->file = r->rep->snapshot;
    int rc = snap_load_mem(m->data, m->len, on_snap_entry, r, NULL, NULL);
    r->rep->bytes_read += m->len;
    r->bytes_done += m->len;
    pfile_unmap(m);
    if (rc != 0) {
        return fail(r->rep, r->apply_rc ? r->apply_rc : rc,
                    "file %s: applying entry failed (%d)", r->rep->snapshot, rc);
    }
    log_info("snapshot loaded", "\"file\":\"%s\",\"lsn\":%" PRIu64 ",\"keys\":%" PRIu64
             ",\"expired\":%" PRIu64, r->rep->snapshot, r->rep->snapshot_lsn,
             r->rep->snapshot_keys, r->rep->snapshot_expired);
    return 0;
}

/* Step 4 for one torn segment. */
static void
drop_torn(struct rcv *r, const char *dir, const char *name, size_t len, size_t good_end,
          bool header_torn)
{
    char path[4096];
    struct persist_report *rep = r->rep;
    rep->torn = true;
    snprintf(rep->torn_file, sizeof(rep->torn_file), "%s", name);
    rep->torn_offset = header_torn ? 0 : good_end;
    rep->torn_bytes = len - rep->torn_offset;
    const char *action = r->opts->read_only ? "none (read-only)"
                                             : header_torn ? "file removed" : "file truncated";
    if (!r->opts->read_only && pfile_join(path, sizeof(path), dir, name) == 0) {
        int rc = header_torn ? unlink(path) : truncate(path, (off_t)good_end);
        if (rc < 0) {
            log_error("cannot drop torn wal tail", "\"file\":\"%s\",\"error\":\"%s\"", name,
                      strerror(errno));
        }
    }
    log_warn("wal torn tail dropped (incomplete last write)",
             "\"file\":\"%s\",\"offset\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"action\":\"%s\"",
             name, rep->torn_offset, rep->torn_bytes, action);
}

/* Step 3 for one segment. */
static int
replay_segment(struct rcv *r, const char *dir, const struct pfile_entry *seg, bool is_last)
{
    char path[4096];
    struct pfile_map m;
    struct persist_report *rep = r->rep;
    bool skip = r->opts->skip_damaged;
    int rc = pfile_join(path, sizeof(path), dir, seg->name);
    if (rc == 0) {
        rc = pfile_map(path, &m);
    }
    if (rc < 0) {
        return fail(rep, rc, "file %s: %s", seg->name, strerror(-rc));
    }
    r->file = seg->name;
    rep->segments++;
    rep->bytes_read += m.len;

    uint64_t first;
    if (wal_seg_hdr_decode(m.data, m.len, &first) == 0) {
        if (first != seg->key) {
            pfile_unmap(&m);
            return fail(rep, WAL_ESEGHDR, "file %s offset 0: header LSN %" PRIu64
                        " does not match the file name", seg->name, first);
        }
        if (first > r->expect) {
            if (!skip) {
                pfile_unmap(&m);
                return fail(rep, WAL_ELSN, "file %s offset 0: LSNs %" PRIu64 "..%" PRIu64
                            " are missing from the log (deleted or lost segment)",
                            seg->name, r->expect, first - 1);
            }
            log_warn("wal LSNs missing, skipped", "\"file\":\"%s\",\"from\":%" PRIu64
                     ",\"to\":%" PRIu64, seg->name, r->expect, first - 1);
            rep->missing_lsns += first - r->expect;
            r->expect = first;
        }
    }

    struct wal_scan_opts so = { .is_last = is_last, .skip_damaged = skip };
    struct wal_scan_result res;
    rc = wal_scan(m.data, m.len, &so, on_group, r, &res);
    size_t len = m.len;
    r->bytes_done += len;
    pfile_unmap(&m);
    if (rc == WAL_ESTOP) {
        return fail(rep, r->apply_rc, "file %s: applying record %" PRIu64 " failed (%d)",
                    seg->name, r->expect, r->apply_rc);
    }
    if (rc == WAL_ESEGHDR && skip) {
        rep->skipped_regions++;
        rep->skipped_bytes += len;
        log_warn("wal damaged segment skipped", "\"file\":\"%s\",\"bytes\":%zu,\"error\":\"%s\"",
                 seg->name, len, wal_strerror(rc));
        return 0;
    }
    if (rc != 0) {
        return fail(rep, rc, "file %s offset %zu: %s (start with the skip-damaged option to "
                    "skip damaged records)", seg->name, res.damage_off, wal_strerror(rc));
    }
    if (res.skipped_regions > 0 || res.skipped_records > 0) {
        rep->skipped_regions += res.skipped_regions;
        rep->skipped_bytes += res.skipped_bytes;
        rep->skipped_records += res.skipped_records;
        log_warn("wal damaged records skipped",
                 "\"file\":\"%s\",\"first_offset\":%zu,\"error\":\"%s\",\"regions\":%" PRIu64
                 ",\"bytes\":%" PRIu64 ",\"records_dropped\":%" PRIu64,
                 seg->name, res.damage_off, wal_strerror(res.damage_err), res.skipped_regions,
                 res.skipped_bytes, res.skipped_records);
    }
    if (res.torn) {
        drop_torn(r, dir, seg->name, len, res.good_end, res.first_lsn == 0);
    }
    return 0;
}

int
persist_recover(const char *dir, persist_apply_fn apply, void *ctx,
                const struct persist_recover_opts *opts_in, struct persist_report *rep)
{
    struct persist_recover_opts opts = { 0 };
    if (opts_in != NULL) {
        opts = *opts_in;
    }
    if (opts.progress_ms == 0) {
        opts.progress_ms = 1000;
    }
    memset(rep, 0, sizeof(*rep));
    struct rcv r = { .apply = apply, .ctx = ctx, .opts = &opts, .rep = rep };
    r.now_ms = opts.now_ms != 0 ? opts.now_ms : clock_ms();
    r.t0_us = clock_mono_us();
    r.next_progress_us = r.t0_us + (int64_t)opts.progress_ms * 1000;
    r.file = "";

    if (access(dir, F_OK) < 0 && errno == ENOENT) {
        rep->next_lsn = 1;
        log_info("recovery: no data directory, starting empty", "\"dir\":\"%s\"", dir);
        return 0;
    }
    struct pfile_map snap;
    uint64_t snap_keys = 0;
    int rc = select_snapshot(&r, dir, &snap, &snap_keys);
    if (rc != 0) {
        return rc;
    }
    r.expect = rep->snapshot_lsn + 1;

    struct pfile_entry *segs;
    int n = pfile_list(dir, wal_seg_name_parse, &segs);
    if (n < 0) {
        pfile_unmap(&snap);
        return fail(rep, n, "list %s: %s", dir, strerror(-n));
    }
    int start = 0;
    while (start + 1 < n && segs[start + 1].key <= r.expect) {
        start++;
    }
    uint64_t wal_bytes = 0;
    for (int i = start; i < n; i++) {
        char path[4096];
        struct stat st;
        if (pfile_join(path, sizeof(path), dir, segs[i].name) == 0 && stat(path, &st) == 0) {
            wal_bytes += (uint64_t)st.st_size;
        }
    }
    r.total_bytes = snap.len + wal_bytes;
    if (opts.hint != NULL) {
        opts.hint(ctx, snap_keys, wal_bytes);
    }
    collect_revivable(&r, dir, segs, start, n);
    if (snap.data != NULL) {
        rc = load_snapshot(&r, &snap);
        if (rc != 0) {
            pfile_list_free(segs, n);
            free(r.rv);
            return rc;
        }
    }
    if (n > 0 && rep->snapshot[0] == '\0' && segs[0].key > 1) {
        if (!opts.skip_damaged) {
            rc = fail(rep, WAL_ELSN, "file %s offset 0: the log starts at LSN %" PRIu64
                      " but no valid snapshot covers the LSNs before it%s", segs[0].name,
                      segs[0].key, rep->snapshots_damaged ? " (snapshots damaged)" : "");
            pfile_list_free(segs, n);
            free(r.rv);
            return rc;
        }
        log_warn("wal: no snapshot covers the start of the log, recovering what exists",
                 "\"first_lsn\":%" PRIu64, segs[0].key);
        rep->missing_lsns += segs[0].key - 1;
        r.expect = segs[0].key;
    }
    r.phase = "wal";
    for (int i = start; i < n; i++) {
        rc = replay_segment(&r, dir, &segs[i], i == n - 1);
        if (rc != 0) {
            break;
        }
    }
    pfile_list_free(segs, n);
    free(r.rv);
    if (rc != 0) {
        return rc;
    }
    rep->last_lsn = r.expect - 1;
    rep->next_lsn = r.expect;
    rep->elapsed_us = clock_mono_us() - r.t0_us;
    log_info("recovery done",
             "\"snapshot\":\"%s\",\"snapshot_lsn\":%" PRIu64 ",\"snapshot_keys\":%" PRIu64
             ",\"records\":%" PRIu64 ",\"expired\":%" PRIu64 ",\"torn_bytes\":%" PRIu64
             ",\"skipped_regions\":%" PRIu64 ",\"skipped_records\":%" PRIu64
             ",\"next_lsn\":%" PRIu64 ",\"elapsed_ms\":%" PRId64,
             rep->snapshot, rep->snapshot_lsn, rep->snapshot_keys, rep->records,
             rep->expired + rep->snapshot_expired, rep->torn_bytes, rep->skipped_regions,
             rep->skipped_records, rep->next_lsn, rep->elapsed_us / 1000);
    return 0;
}
