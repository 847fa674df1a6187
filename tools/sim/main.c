/*
 * main.c -- crabcache-sim: replays the cache traces offline through the
 * eviction module (W-TinyLFU as shipped, and its `lru` kind, a CLOCK), with
 * an exact LRU and Belady's OPT beside them, and compares with the published
 * figures of the traces README.
 *
 *   crabcache-sim [--traces DIR] [--trace NAME]... [--size N]... [--json]
 *                 [--no-opt] [--threads N]
 *                 [--file PATH [--format lirs|arc|scarab|cache2k]]
 *                 [--doorkeeper] [--sketch-counters N] [--fixed-window R]
 *                 [--shards N]
 *
 * With no argument: every trace of the catalogue below at every size the
 * README lists. The last four options are for measurements (docs); the
 * default run is the shipped configuration (evict_params_default). Exit
 * status 1 if any row with a target fails it.
 *
 * Target of a row: the published adaptive W-TinyLFU (Caffeine) hit ratio of
 * the climber Caffeine ships at that size, where the README gives one; and
 * on scarab-recs exact LRU as well (frequency misleads there).
 */
#include "sim.h"

#include "util/mem.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ROWS 24
#define MAX_SIZES 64
#define MAX_FILTER 16
#define NA NAN

struct row_info {
    uint64_t size;
    double caffeine;    /* published adaptive W-TinyLFU, shipped climber */
    double opt;         /* README's OPT for this size, for reference */
};

struct trace_info {
    const char *file;
    const char *url; /* where the file is published (saved under the name `file`) */
    enum trace_format fmt;
    bool lru_target;
    struct row_info rows[MAX_ROWS];
};

/* Figures from the traces' README (docs/eviction.md, "The traces"). */
static const struct trace_info catalogue[] = {
    {"lirs-loop.trace.gz",
     "https://github.com/ben-manes/caffeine/raw/master/simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser/lirs/loop.trace.gz",
     TRACE_LIRS, false,
     {{100, NA, 9.87}, {250, NA, 24.68}, {404, 38.80, 39.88}, {500, NA, 49.36},
      {512, NA, 50.54}, {750, NA, 74.04}, {1000, NA, 98.71},
      {1250, NA, 99.80}}},
    {"lirs-gli.trace.gz",
     "https://github.com/ben-manes/caffeine/raw/master/simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser/lirs/gli.trace.gz",
     TRACE_LIRS, false,
     {{250, NA, 17.71}, {252, 14.55, NA}, {500, NA, 34.33}, {750, NA, 46.13},
      {1000, NA, 53.15}, {1250, NA, 57.31}, {1500, NA, 57.96},
      {1750, NA, 57.96}, {2000, NA, 57.96}}},
    {"lirs-cs.trace.gz",
     "https://github.com/ben-manes/caffeine/raw/master/simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser/lirs/cs.trace.gz",
     TRACE_LIRS, false,
     {{100, NA, 7.73}, {250, NA, 16.58}, {500, NA, 31.32}, {563, 33.42, 35.04},
      {1000, NA, 60.82}, {1500, NA, 79.22}}},
    {"lirs-multi2.trace.gz",
     "https://github.com/ben-manes/caffeine/raw/master/simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser/lirs/multi2.trace.gz",
     TRACE_LIRS, false,
     {{250, NA, 46.65}, {500, NA, 53.62}, {1000, NA, 62.16},
      {1500, NA, 69.76}, {2000, NA, 74.65}, {2500, NA, 77.51},
      {3000, NA, 78.40}}},
    {"arc-OLTP.lis.zst",
     "https://github.com/moka-rs/cache-trace/raw/main/arc/OLTP.lis.zst",
     TRACE_ARC, false,
     {{250, NA, 38.47}, {500, NA, 46.43}, {560, 34.81, 47.64},
      {750, NA, 50.67}, {1000, NA, 53.62}, {1250, NA, 55.84},
      {1500, NA, 57.62}, {1750, NA, 59.13}, {1868, 44.62, 59.76},
      {2000, NA, 60.40}, {2048, 46.4, 60.62}, {5000, NA, 68.27},
      {5606, 57.12, 69.15}, {8192, 60.77, 71.72}, {10000, NA, 73.02},
      {15000, NA, 75.14}, {18688, 67.33, 76.21}, {37376, 71.74, 79.14},
      {74752, 76.16, 79.56}}},
    {"arc-P12.lis.zst",
     "https://github.com/moka-rs/cache-trace/raw/main/arc/P12.lis.zst",
     TRACE_ARC, false,
     {{1024, NA, NA}, {2048, NA, NA}, {4096, NA, NA}, {8192, NA, NA},
      {9459, 6.91, 16.72}, {16384, NA, NA}, {31533, 16.85, 30.16},
      {32768, NA, NA}, {65536, NA, NA}, {94599, 35.32, 49.28},
      {131072, NA, NA}, {262144, NA, NA}, {315331, 53.44, 67.92},
      {524288, NA, NA}, {630662, 62.62, NA}, {1261324, 69.58, NA}}},
    {"scarab-recs.trace.xz",
     "https://github.com/ben-manes/caffeine/raw/master/simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser/scarab/scarab-recs.trace.xz",
     TRACE_SCARAB, true,
     {{4096, NA, 57.75}, {16384, NA, 71.21}, {65536, NA, 79.25},
      {100000, 72.35, 79.25}, {262144, NA, 79.25}}},
    {"cache2k-web07.trace.xz",
     "https://github.com/ben-manes/caffeine/raw/master/simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser/cache2k/web07.trace.xz",
     TRACE_CACHE2K, false,
     {{256, NA, 54.86}, {512, NA, 59.33}, {1024, NA, 63.72},
      {2048, NA, 68.09}, {4096, NA, 71.72}, {8192, NA, 73.09},
      {16384, 72.40, 73.09}}},
};
#define NTRACES (sizeof(catalogue) / sizeof(catalogue[0]))

struct job {
    struct trace *trace;
    uint64_t size;
    double caffeine;
    bool lru_target;
    struct replay_result ours, lru, clock, opt, rlfu;
    bool has_opt;
    bool has_rlfu;
};

struct options {
    const char *dir;
    const char *filters[MAX_FILTER];
    int nfilters;
    uint64_t sizes[MAX_SIZES];
    int nsizes;
    const char *file;
    int format;
    bool json;
    bool opt;
    bool redis_lfu;
    int threads;
    struct evict_params params;
};

struct pool {
    struct job *jobs;
    size_t njobs;
    atomic_size_t next;
    const struct options *opt;
};

static void *
worker(void *arg)
{
    struct pool *pool = arg;
    size_t i;

    while ((i = atomic_fetch_add(&pool->next, 1)) < pool->njobs) {
        struct job *j = &pool->jobs[i];
        struct replay_config cfg = {EVICT_TINYLFU, j->size, &pool->opt->params};
        replay_policy(j->trace, &cfg, &j->ours);
        replay_lru_exact(j->trace, j->size, &j->lru);
        cfg.kind = EVICT_LRU;
        replay_policy(j->trace, &cfg, &j->clock);
        if (pool->opt->opt) {
            replay_opt(j->trace, j->size, &j->opt);
            j->has_opt = true;
        }
        if (pool->opt->redis_lfu) {
            replay_redis_lfu(j->trace, j->size, &j->rlfu);
            j->has_rlfu = true;
        }
    }
    return NULL;
}

static double
pct(const struct replay_result *r)
{
    return r->requests ? 100.0 * (double)r->hits / (double)r->requests : 0;
}

/* Round to the 0.01 % the README uses before comparing. */
static double
round2(double v)
{
    return round(v * 100.0) / 100.0;
}

static const char *
verdict(const struct job *j)
{
    bool has = false;
    bool ok = true;

    if (!isnan(j->caffeine)) {
        has = true;
        ok = ok && round2(pct(&j->ours)) >= j->caffeine;
    }
    if (j->lru_target) {
        has = true;
        ok = ok && round2(pct(&j->ours)) >= round2(pct(&j->lru));
    }
    return !has ? "-" : ok ? "PASS" : "FAIL";
}

static void
print_num(double v, bool json)
{
    if (isnan(v)) {
        printf(json ? "null" : "%8s", json ? "" : "-");
    } else {
        printf(json ? "%.2f" : "%8.2f", v);
    }
}

static void
print_results(const struct job *jobs, size_t n, bool json)
{
    if (json) {
        printf("[\n");
    } else {
        printf("%-24s %8s %8s %8s %8s %8s %8s %9s %6s  %s\n", "trace", "size",
               "ours", "lru", "clock", "caffeine", "opt", "redis-lfu", "win%",
               "target");
    }
    for (size_t i = 0; i < n; i++) {
        const struct job *j = &jobs[i];
        double opt = j->has_opt ? pct(&j->opt) : NA;
        double rlfu = j->has_rlfu ? pct(&j->rlfu) : NA;
        if (json) {
            printf("  {\"trace\":\"%s\",\"size\":%llu,\"ours\":", j->trace->name,
                   (unsigned long long)j->size);
            print_num(pct(&j->ours), true);
            printf(",\"lru\":");
            print_num(pct(&j->lru), true);
            printf(",\"clock\":");
            print_num(pct(&j->clock), true);
            printf(",\"caffeine\":");
            print_num(j->caffeine, true);
            printf(",\"opt\":");
            print_num(opt, true);
            printf(",\"redis_lfu\":");
            print_num(rlfu, true);
            printf(",\"window\":%.4f,\"admissions\":%llu,\"rejections\":%llu,"
                   "\"result\":\"%s\"}%s\n",
                   j->ours.window_ratio,
                   (unsigned long long)j->ours.admissions,
                   (unsigned long long)j->ours.rejections, verdict(j),
                   i + 1 < n ? "," : "");
        } else {
            printf("%-24s %8llu ", j->trace->name, (unsigned long long)j->size);
            print_num(pct(&j->ours), false);
            printf(" ");
            print_num(pct(&j->lru), false);
            printf(" ");
            print_num(pct(&j->clock), false);
            printf(" ");
            print_num(j->caffeine, false);
            printf(" ");
            print_num(opt, false);
            printf("  ");
            print_num(rlfu, false);
            printf(" %6.1f  %s\n", 100.0 * j->ours.window_ratio, verdict(j));
        }
    }
    if (json) {
        printf("]\n");
    }
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: crabcache-sim [--traces DIR] [--trace NAME]... [--size N]...\n"
            "                     [--json] [--no-opt] [--redis-lfu] [--threads N]\n"
            "                     [--file PATH [--format lirs|arc|scarab|cache2k]]\n"
            "                     [--doorkeeper] [--sketch-counters N]"
            " [--fixed-window R]\n"
            "                     [--shards N]  (ours and clock split over N"
            " policies, as the server's shards)\n"
            "\n"
            "Replays public cache traces offline through CrabCache's eviction policy\n"
            "(W-TinyLFU, the evict module the server runs) and, on the same traces and\n"
            "sizes, through LRU, CLOCK, Belady's OPT and optionally Redis's LFU; prints\n"
            "each hit ratio beside the published W-TinyLFU (Caffeine) figure. Exit\n"
            "status 1 when ours falls short of a published figure, 2 on a usage error\n"
            "or a missing trace.\n"
            "\n"
            "  --traces DIR   where the eight trace files are (default: $CRABCACHE_TRACES,\n"
            "                 else ./traces, else ../shared/traces, relative to the\n"
            "                 current directory)\n"
            "  --trace NAME   only the traces whose file name contains NAME\n"
            "  --size N       only these cache sizes (entries)\n"
            "  --file PATH    replay one trace file of your own at the --size given\n"
            "  --json         one JSON object per row\n"
            "  -h, --help     this text (crabcache-sim has no host)\n"
            "  --version      print the version\n"
            "\n"
            "The traces are not in the repository; each is published on its own (the\n"
            "file names here are the saved names):\n");
    for (size_t k = 0; k < NTRACES; k++) {
        fprintf(f, "  %-24s %s\n", catalogue[k].file, catalogue[k].url);
    }
    fprintf(f, "docs/eviction.md (\"The traces\") says how to fetch them.\n");
}

/* The default trace directory: $CRABCACHE_TRACES, else the first of
 * ./traces and ../shared/traces that exists (so "./traces" is what a
 * missing-trace message names when none does). */
static const char *
default_trace_dir(void)
{
    const char *env = getenv("CRABCACHE_TRACES");
    if (env != NULL && env[0] != '\0') {
        return env;
    }
    if (access("traces", R_OK) == 0) {
        return "traces";
    }
    if (access("../shared/traces", R_OK) == 0) {
        return "../shared/traces";
    }
    return "traces";
}

static int
parse_args(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->dir = default_trace_dir();
    o->opt = true;
    o->format = -1;
    o->threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    evict_params_default(&o->params);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--no-opt") == 0) {
            o->opt = false;
        } else if (strcmp(a, "--redis-lfu") == 0) {
            o->redis_lfu = true;
        } else if (strcmp(a, "--doorkeeper") == 0) {
            o->params.doorkeeper = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("crabcache-sim %s\n", CRABCACHE_VERSION);
            exit(0);
        } else if (v == NULL) {
            usage(stderr);
            return -1;
        } else if (strcmp(a, "--traces") == 0) {
            o->dir = v;
            i++;
        } else if (strcmp(a, "--trace") == 0 && o->nfilters < MAX_FILTER) {
            o->filters[o->nfilters++] = v;
            i++;
        } else if (strcmp(a, "--size") == 0 && o->nsizes < MAX_SIZES) {
            o->sizes[o->nsizes++] = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            o->threads = atoi(v);
            i++;
        } else if (strcmp(a, "--file") == 0) {
            o->file = v;
            i++;
        } else if (strcmp(a, "--format") == 0) {
            o->format = trace_format_parse(v);
            i++;
        } else if (strcmp(a, "--sketch-counters") == 0) {
            o->params.sketch_counters = (unsigned)atoi(v);
            i++;
        } else if (strcmp(a, "--shards") == 0 && v != NULL && atoi(v) >= 1) {
            o->params.shards = (unsigned)atoi(v);
            i++;
        } else if (strcmp(a, "--fixed-window") == 0) {
            o->params.window_ratio = atof(v);
            o->params.adaptive = false;
            i++;
        } else {
            usage(stderr);
            return -1;
        }
    }
    if (o->threads < 1) {
        o->threads = 1;
    }
    if (o->file != NULL && o->format < 0) {
        o->format = trace_format_guess(o->file);
    }
    if (o->file != NULL && (o->format < 0 || o->nsizes == 0)) {
        fprintf(stderr, "crabcache-sim: --file needs --format (or a known "
                        "name prefix) and at least one --size\n");
        return -1;
    }
    return 0;
}

static bool
selected(const struct options *o, const char *file)
{
    if (o->nfilters == 0) {
        return true;
    }
    for (int i = 0; i < o->nfilters; i++) {
        if (strstr(file, o->filters[i]) != NULL) {
            return true;
        }
    }
    return false;
}

static bool
size_selected(const struct options *o, uint64_t size)
{
    if (o->nsizes == 0) {
        return true;
    }
    for (int i = 0; i < o->nsizes; i++) {
        if (o->sizes[i] == size) {
            return true;
        }
    }
    return false;
}

static struct trace *
load(const char *path, enum trace_format fmt, const char *name, bool opt)
{
    struct trace *t = xmalloc(sizeof(*t));

    if (trace_load(t, path, fmt) != 0) {
        free(t);
        return NULL;
    }
    t->name = xstrdup(name);
    if (opt) {
        trace_build_next_use(t);
    }
    return t;
}

int
main(int argc, char **argv)
{
    struct options o;
    struct pool pool;
    struct trace *traces[NTRACES + 1] = {0};
    size_t ntr = 0;
    struct job *jobs;
    size_t nj = 0;
    pthread_t tid[64];
    int fails = 0;
    int status = 2;
    char path[4096];

    if (parse_args(argc, argv, &o) != 0) {
        return 2;
    }
    jobs = xcalloc(NTRACES * MAX_ROWS + MAX_SIZES, sizeof(*jobs));
    if (o.file != NULL) {
        const char *base = strrchr(o.file, '/');
        struct trace *t = load(o.file, (enum trace_format)o.format,
                               base ? base + 1 : o.file, o.opt);
        if (t == NULL) {
            goto out;
        }
        traces[ntr++] = t;
        for (int i = 0; i < o.nsizes; i++) {
            jobs[nj++] = (struct job){.trace = t, .size = o.sizes[i],
                                      .caffeine = NA};
        }
    }
    /* Every selected trace must be there: name each missing one and where
     * it is published, before any work. */
    int missing = 0;
    for (size_t k = 0; k < NTRACES && o.file == NULL; k++) {
        const struct trace_info *ti = &catalogue[k];
        if (!selected(&o, ti->file)) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", o.dir, ti->file);
        if (access(path, R_OK) != 0) {
            fprintf(stderr, "crabcache-sim: trace %s: %s\n    published at %s (save it as %s)\n",
                    path, strerror(errno), ti->url, ti->file);
            missing++;
        }
    }
    if (missing > 0) {
        fprintf(stderr,
                "crabcache-sim: %d trace%s missing in %s; put them there, or point --traces DIR "
                "or $CRABCACHE_TRACES at where they are (docs/eviction.md, \"The traces\")\n",
                missing, missing > 1 ? "s" : "", o.dir);
        goto out;
    }
    for (size_t k = 0; k < NTRACES && o.file == NULL; k++) {
        const struct trace_info *ti = &catalogue[k];
        struct trace *t;
        if (!selected(&o, ti->file)) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", o.dir, ti->file);
        t = load(path, ti->fmt, ti->file, o.opt);
        if (t == NULL) {
            goto out;
        }
        traces[ntr++] = t;
        for (int r = 0; r < MAX_ROWS && ti->rows[r].size != 0; r++) {
            if (!size_selected(&o, ti->rows[r].size)) {
                continue;
            }
            jobs[nj++] = (struct job){.trace = t, .size = ti->rows[r].size,
                                      .caffeine = ti->rows[r].caffeine,
                                      .lru_target = ti->lru_target};
        }
    }
    pool.jobs = jobs;
    pool.njobs = nj;
    atomic_init(&pool.next, 0);
    pool.opt = &o;
    if (o.threads > 64) {
        o.threads = 64;
    }
    for (int i = 0; i < o.threads; i++) {
        pthread_create(&tid[i], NULL, worker, &pool);
    }
    for (int i = 0; i < o.threads; i++) {
        pthread_join(tid[i], NULL);
    }
    print_results(jobs, nj, o.json);
    for (size_t i = 0; i < nj; i++) {
        fails += strcmp(verdict(&jobs[i]), "FAIL") == 0;
    }
    if (!o.json) {
        fflush(stdout);
        fprintf(stderr, "%d row(s) below target\n", fails);
    }
    status = fails ? 1 : 0;
out:
    for (size_t i = 0; i < ntr; i++) {
        trace_free(traces[i]);
        free(traces[i]);
    }
    free(jobs);
    return status;
}
