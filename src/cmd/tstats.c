/*
 * tstats.c -- per-thread counters and latency histograms (see tstats.h).
 *
 * Each thread that counts gets one block, allocated on first use and linked
 * into a global list that is never shrunk (threads live as long as the
 * server). The block and its histograms are allocated 64-byte aligned and
 * padded to whole cache lines, so two threads never write the same line.
 * Only the owner writes its block (load + store, no read-modify-write bus
 * lock); readers sum the blocks with relaxed loads: a figure may be a few
 * increments behind, never torn on x86-64 or aarch64 for aligned 64-bit
 * words. The registry mutex is taken only to link a new block and to walk
 * the list, never on a worker's hot path.
 */
#include "cmd/tstats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tstats *reg_head;
_Thread_local struct tstats *tstats_tl;

#define LINE 64
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE0(x) __atomic_store_n(&(x), 0, __ATOMIC_RELAXED)

static void *
aligned_zalloc(size_t size)
{
    size_t rounded = (size + LINE - 1) / LINE * LINE;
    void *p = NULL;
    if (posix_memalign(&p, LINE, rounded) != 0) {
        abort();
    }
    memset(p, 0, rounded);
    return p;
}

/* tstats_self()'s first call on a thread (inline in tstats.h). */
struct tstats *
tstats_self_create(void)
{
    struct tstats *self = tstats_tl;
    if (self == NULL) {
        struct tstats *t = aligned_zalloc(sizeof(*t));
        t->lat = aligned_zalloc(sizeof(uint64_t) * TSTATS_HIST_BUCKETS * TSTATS_ROWS);
        pthread_mutex_lock(&reg_lock);
        t->next = reg_head;
        reg_head = t;
        pthread_mutex_unlock(&reg_lock);
        self = tstats_tl = t;
    }
    return self;
}

void
tstats_sum(struct tstats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&reg_lock);
    for (struct tstats *t = reg_head; t; t = t->next) {
        out->hits += LOAD(t->hits);
        out->misses += LOAD(t->misses);
        out->net_in += LOAD(t->net_in);
        out->net_out += LOAD(t->net_out);
        out->rate_limited += LOAD(t->rate_limited);
        out->changes += LOAD(t->changes);
        out->errors += LOAD(t->errors);
        for (unsigned i = 0; i < ERRSTAT_MAX; i++) {
            out->errs[i] += LOAD(t->errs[i]);
        }
        out->e2e_usec += LOAD(t->e2e_usec);
        out->fwd_requests += LOAD(t->fwd_requests);
        out->fwd_failed += LOAD(t->fwd_failed);
        out->fwd_retries += LOAD(t->fwd_retries);
        out->fwd_usec += LOAD(t->fwd_usec);
        for (int i = 0; i < CMD_COUNT; i++) {
            out->cmd[i].calls += LOAD(t->cmd[i].calls);
            out->cmd[i].usec += LOAD(t->cmd[i].usec);
            out->cmd[i].rejected += LOAD(t->cmd[i].rejected);
            out->cmd[i].failed += LOAD(t->cmd[i].failed);
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

void
tstats_hist_sum(int cmd_id, uint64_t out[TSTATS_HIST_BUCKETS])
{
    memset(out, 0, sizeof(uint64_t) * TSTATS_HIST_BUCKETS);
    int first = cmd_id < 0 ? 0 : cmd_id;
    int last = cmd_id < 0 ? CMD_COUNT - 1 : cmd_id;
    if (cmd_id > TSTATS_FWD) {
        return;
    }
    pthread_mutex_lock(&reg_lock);
    for (struct tstats *t = reg_head; t; t = t->next) {
        for (int c = first; c <= last; c++) {
            for (unsigned b = 0; b < TSTATS_HIST_BUCKETS; b++) {
                out[b] += LOAD(t->lat[c][b]);
            }
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

void
tstats_hist_sum_all(uint64_t (*out)[TSTATS_HIST_BUCKETS])
{
    memset(out, 0, sizeof(uint64_t) * TSTATS_HIST_BUCKETS * CMD_COUNT);
    pthread_mutex_lock(&reg_lock);
    for (struct tstats *t = reg_head; t; t = t->next) {
        for (int c = 0; c < CMD_COUNT; c++) {
            for (unsigned b = 0; b < TSTATS_HIST_BUCKETS; b++) {
                out[c][b] += LOAD(t->lat[c][b]);
            }
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

void
tstats_reset_all(void)
{
    pthread_mutex_lock(&reg_lock);
    for (struct tstats *t = reg_head; t; t = t->next) {
        STORE0(t->hits);
        STORE0(t->misses);
        STORE0(t->net_in);
        STORE0(t->net_out);
        STORE0(t->rate_limited);
        STORE0(t->errors);
        for (unsigned i = 0; i < ERRSTAT_MAX; i++) {
            STORE0(t->errs[i]);
        }
        STORE0(t->e2e_usec);
        STORE0(t->fwd_requests);
        STORE0(t->fwd_failed);
        STORE0(t->fwd_retries);
        STORE0(t->fwd_usec);
        for (unsigned b = 0; b < TSTATS_HIST_BUCKETS; b++) {
            STORE0(t->lat[TSTATS_E2E][b]);
            STORE0(t->lat[TSTATS_FWD][b]);
        }
        for (int i = 0; i < CMD_COUNT; i++) {
            STORE0(t->cmd[i].calls);
            STORE0(t->cmd[i].usec);
            STORE0(t->cmd[i].rejected);
            STORE0(t->cmd[i].failed);
            for (unsigned b = 0; b < TSTATS_HIST_BUCKETS; b++) {
                STORE0(t->lat[i][b]);
            }
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

/* ---- error codes ------------------------------------------------------------ */

/* Codes are added under errstat_lock and published by the count (release);
 * readers scan the published prefix without the lock. An error reply is
 * rare next to the requests, so a linear scan is enough. */
static char errstat_names[ERRSTAT_MAX][ERRSTAT_NAME_MAX + 1];
static _Atomic unsigned errstat_n;
static pthread_mutex_t errstat_lock = PTHREAD_MUTEX_INITIALIZER;

static int
errstat_find(const char *code, size_t len, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (strncmp(errstat_names[i], code, len) == 0 && errstat_names[i][len] == '\0') {
            return (int)i;
        }
    }
    return -1;
}

static int
errstat_index(const char *code, size_t len)
{
    int i = errstat_find(code, len, atomic_load_explicit(&errstat_n, memory_order_acquire));
    if (i >= 0) {
        return i;
    }
    pthread_mutex_lock(&errstat_lock);
    unsigned n = atomic_load_explicit(&errstat_n, memory_order_relaxed);
    i = errstat_find(code, len, n);
    if (i < 0 && n < ERRSTAT_MAX) {
        memcpy(errstat_names[n], code, len);
        errstat_names[n][len] = '\0';
        atomic_store_explicit(&errstat_n, n + 1, memory_order_release);
        i = (int)n;
    }
    pthread_mutex_unlock(&errstat_lock);
    return i;
}

void
tstats_count_error(const char *err, size_t len)
{
    struct tstats *ts = tstats_self();
    /* Redis looks for the space within the first 32 bytes of "-CODE ..." */
    size_t lim = len < ERRSTAT_NAME_MAX ? len : ERRSTAT_NAME_MAX;
    const char *sp = memchr(err, ' ', lim);
    int i = sp && sp > err ? errstat_index(err, (size_t)(sp - err)) : errstat_index("ERR", 3);
    __atomic_store_n(&ts->errors, LOAD(ts->errors) + 1, __ATOMIC_RELAXED);
    if (i >= 0) {
        __atomic_store_n(&ts->errs[i], LOAD(ts->errs[i]) + 1, __ATOMIC_RELAXED);
    }
}

unsigned
errstat_count(void)
{
    return atomic_load_explicit(&errstat_n, memory_order_acquire);
}

const char *
errstat_name(unsigned i)
{
    return errstat_names[i];
}

/* ---- histogram arithmetic ----------------------------------------------------- */

uint64_t
tstats_hist_lower(unsigned idx)
{
    if (idx < TSTATS_HIST_SUB) {
        return idx;
    }
    unsigned k = 3 + (idx - TSTATS_HIST_SUB) / TSTATS_HIST_SUB;
    uint64_t sub = (idx - TSTATS_HIST_SUB) % TSTATS_HIST_SUB;
    return (TSTATS_HIST_SUB + sub) << (k - 3);
}

uint64_t
tstats_hist_upper(unsigned idx)
{
    if (idx + 1 >= TSTATS_HIST_BUCKETS) {
        return (uint64_t)1 << TSTATS_HIST_MAX_LOG2;
    }
    return tstats_hist_lower(idx + 1);
}

uint64_t
tstats_hist_count(const uint64_t h[TSTATS_HIST_BUCKETS])
{
    uint64_t n = 0;
    for (unsigned b = 0; b < TSTATS_HIST_BUCKETS; b++) {
        n += h[b];
    }
    return n;
}

double
tstats_hist_quantile(const uint64_t h[TSTATS_HIST_BUCKETS], double q)
{
    uint64_t n = tstats_hist_count(h);
    if (n == 0) {
        return 0.0;
    }
    if (q < 0) {
        q = 0;
    } else if (q > 1) {
        q = 1;
    }
    /* rank of the wanted value, 1-based: the smallest r with r >= q * n */
    double want = q * (double)n;
    if (want < 1) {
        want = 1;
    }
    uint64_t seen = 0;
    for (unsigned b = 0; b < TSTATS_HIST_BUCKETS; b++) {
        if (h[b] == 0) {
            continue;
        }
        if ((double)(seen + h[b]) >= want) {
            double lo = (double)tstats_hist_lower(b), hi = (double)tstats_hist_upper(b);
            double frac = (want - (double)seen) / (double)h[b];
            return lo + (hi - lo) * frac;
        }
        seen += h[b];
    }
    return (double)tstats_hist_upper(TSTATS_HIST_BUCKETS - 1);
}

uint64_t
tstats_calls(const struct tstats *t)
{
    uint64_t n = 0;
    for (int i = 0; i < CMD_COUNT; i++) {
        n += t->cmd[i].calls;
    }
    return n;
}
