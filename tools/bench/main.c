/*
 * main.c -- crabcache-bench: command line, and the human / JSON report.
 *
 * Options become a bench_cfg (bench.h); bench_run() does the work; the
 * merged result is printed as a table or, with --json, as one JSON object
 * on stdout (messages go to stderr either way). Exit status: 0 on a clean
 * run, 1 when a connection was lost, requests timed out or nothing
 * completed, 2 on bad usage. Error replies are counted and reported, not fatal.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>

#include "bench.h"

static void
usage(FILE *f)
{
    fprintf(f,
"Usage: crabcache-bench [options]\n"
"Load generator for CrabCache and Redis: RESP or the native text protocol.\n"
"\n"
"Target\n"
"  -h, --host H          server address (default 127.0.0.1)\n"
"  -p, --port P          server port (default 6379 for resp, 8000 for native)\n"
"  --protocol resp|native  wire protocol (default resp); native sends PUT/GET\n"
"\n"
"Concurrency\n"
"  --threads N           client threads, each with its own event loop (default 1)\n"
"  --connections N       total connections, spread over the threads (default 50)\n"
"  --pipeline N          requests in flight per connection (default 1); with\n"
"                        --rate, the cap on in-flight requests (default 1024)\n"
"\n"
"Workload\n"
"  --ratio S:G           SET:GET weights (default 1:10); 1:0 = only SET, 0:1 = only GET\n"
"  --keys N              key space key:%%012d of 0..N-1 (default 100000)\n"
"  --key-prefix P        keys are P%%012d instead of key:%%012d (1-32 printable\n"
"                        bytes, no spaces); a Redis hash tag such as {t} puts\n"
"                        every key in one cluster slot\n"
"  --distribution D      uniform | zipf | sequential (default uniform); sequential\n"
"                        numbers requests 0,1,2,... and uses key (n %% keys)\n"
"  --sequential          same as --distribution sequential\n"
"  --zipf-exponent S     zipf exponent, > 0 (default 0.99)\n"
"  --value-size B        bytes per SET value (default 16)\n"
"  --load                fill the key space once: SET keys 0..N-1 in order\n"
"                        (= --sequential --ratio 1:0 --requests N, pipeline 16)\n"
"\n"
"Length\n"
"  --duration SEC        run for SEC seconds (default 10 unless --requests is given)\n"
"  --requests N          stop after N requests (with --duration: whichever first)\n"
"  --rate R              open loop: offer R requests/s in total on a fixed schedule;\n"
"                        latency is measured from each request's intended send time\n"
"                        (no coordinated omission)\n"
"  --rate-window US      with --rate, also send what falls due in the next US\n"
"                        microseconds at each wake-up (default 0; fewer wake-ups)\n"
"\n"
"Trace replay\n"
"  --trace FILE          replay a cache trace: GET each key, on a miss SET it\n"
"                        (value of --value-size bytes); reports the hit ratio.\n"
"                        .gz/.xz/.zst/.bz2 are decompressed on the fly. Uses one\n"
"                        thread; with --connections 1 --pipeline 1 (the trace\n"
"                        defaults) the replay order is exact. --requests caps the\n"
"                        number of trace records.\n"
"  --trace-format F      auto | lirs | arc | scarab | cache2k (default auto)\n"
"\n"
"Output and misc\n"
"  --json                print one JSON object instead of the table\n"
"  --seed N              random seed (default 1)\n"
"  --timeout SEC         give up on replies after SEC s of silence (default 10)\n"
"  --connect-timeout SEC connect timeout (default 5)\n"
"  --help                this text (-h is the host, as in redis-benchmark)\n"
"  --version             print the version\n"
"\n"
"Latency percentiles come from a log-linear histogram (64 linear sub-buckets per\n"
"power of two, error < 1 %%), merged over threads; times are in microseconds.\n"
"Examples:\n"
"  crabcache-bench --port 6379 --pipeline 16 --ratio 0:1 --duration 5\n"
"  crabcache-bench --protocol native --port 8000 --load --keys 1000000 --value-size 10\n"
"  crabcache-bench --rate 50000 --duration 10 --json\n"
"  crabcache-bench --trace lirs-loop.trace.gz --port 6379\n");
}

enum {
    OPT_HOST = 256, OPT_PORT, OPT_PROTOCOL, OPT_THREADS, OPT_CONNS, OPT_PIPELINE, OPT_RATIO,
    OPT_KEYS, OPT_KEY_PREFIX, OPT_DIST, OPT_SEQ, OPT_ZIPF, OPT_VSIZE, OPT_LOAD, OPT_DURATION,
    OPT_REQUESTS, OPT_RATE, OPT_RATE_WINDOW, OPT_TRACE, OPT_TRACE_FMT, OPT_JSON, OPT_SEED,
    OPT_TIMEOUT, OPT_CTIMEOUT, OPT_HELP, OPT_VERSION,
};

static const struct option long_opts[] = {
    { "host", required_argument, NULL, OPT_HOST },
    { "port", required_argument, NULL, OPT_PORT },
    { "protocol", required_argument, NULL, OPT_PROTOCOL },
    { "threads", required_argument, NULL, OPT_THREADS },
    { "connections", required_argument, NULL, OPT_CONNS },
    { "pipeline", required_argument, NULL, OPT_PIPELINE },
    { "ratio", required_argument, NULL, OPT_RATIO },
    { "keys", required_argument, NULL, OPT_KEYS },
    { "key-prefix", required_argument, NULL, OPT_KEY_PREFIX },
    { "distribution", required_argument, NULL, OPT_DIST },
    { "sequential", no_argument, NULL, OPT_SEQ },
    { "zipf-exponent", required_argument, NULL, OPT_ZIPF },
    { "value-size", required_argument, NULL, OPT_VSIZE },
    { "load", no_argument, NULL, OPT_LOAD },
    { "duration", required_argument, NULL, OPT_DURATION },
    { "requests", required_argument, NULL, OPT_REQUESTS },
    { "rate", required_argument, NULL, OPT_RATE },
    { "rate-window", required_argument, NULL, OPT_RATE_WINDOW },
    { "trace", required_argument, NULL, OPT_TRACE },
    { "trace-format", required_argument, NULL, OPT_TRACE_FMT },
    { "json", no_argument, NULL, OPT_JSON },
    { "seed", required_argument, NULL, OPT_SEED },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "connect-timeout", required_argument, NULL, OPT_CTIMEOUT },
    { "help", no_argument, NULL, OPT_HELP },
    { "version", no_argument, NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 },
};

static void
die_usage(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "crabcache-bench: --%s %s: %s (see --help)\n", opt, val, why);
    exit(2);
}

static uint64_t
parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        char why[96];
        snprintf(why, sizeof(why), "expected an integer in [%llu, %llu]",
                 (unsigned long long)min, (unsigned long long)max);
        die_usage(opt, s, why);
    }
    return v;
}

static double
parse_pos_double(const char *opt, const char *s, int allow_zero)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || (!allow_zero && v == 0)) {
        die_usage(opt, s, allow_zero ? "expected a number >= 0" : "expected a number > 0");
    }
    return v;
}

struct opts {
    struct bench_cfg cfg;
    int json;
    int set_duration, set_requests, set_conns, set_pipeline, set_threads, set_ratio, set_dist;
    int load;
};

static void
parse_args(int argc, char **argv, struct opts *o)
{
    struct bench_cfg *cfg = &o->cfg;
    int c;
    while ((c = getopt_long(argc, argv, "h:p:", long_opts, NULL)) != -1) {
        const char *name = "";
        for (const struct option *lo = long_opts; lo->name; lo++) {
            if (lo->val == c) {
                name = lo->name;
            }
        }
        switch (c) {
        case 'h': /* -h host, -p port: as redis-benchmark and crabcache-cli */
        case OPT_HOST: cfg->host = optarg; break;
        case 'p': name = "port"; /* fall through */
        case OPT_PORT: parse_u64(name, optarg, 1, 65535); cfg->port = optarg; break;
        case OPT_PROTOCOL:
            if (strcmp(optarg, "resp") == 0) {
                cfg->proto = BENCH_PROTO_RESP;
            } else if (strcmp(optarg, "native") == 0) {
                cfg->proto = BENCH_PROTO_NATIVE;
            } else {
                die_usage(name, optarg, "expected resp or native");
            }
            break;
        case OPT_THREADS: cfg->threads = (int)parse_u64(name, optarg, 1, 256); o->set_threads = 1; break;
        case OPT_CONNS: cfg->conns = (int)parse_u64(name, optarg, 1, 100000); o->set_conns = 1; break;
        case OPT_PIPELINE: cfg->pipeline = (int)parse_u64(name, optarg, 1, 1 << 20); o->set_pipeline = 1; break;
        case OPT_RATIO: {
            unsigned s, g;
            char tail;
            if (sscanf(optarg, "%u:%u%c", &s, &g, &tail) != 2 || s + g == 0 || s > 1000000 ||
                g > 1000000) {
                die_usage(name, optarg, "expected SET:GET weights such as 1:10");
            }
            cfg->set_ratio = s;
            cfg->get_ratio = g;
            o->set_ratio = 1;
            break;
        }
        case OPT_KEYS: cfg->keys = parse_u64(name, optarg, 1, 1000000000000ULL); break;
        case OPT_KEY_PREFIX: {
            size_t n = strlen(optarg);
            if (n == 0 || n > BENCH_KEY_PREFIX_MAX) {
                die_usage(name, optarg, "expected 1 to 32 bytes");
            }
            for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)optarg[i];
                if (ch <= ' ' || ch >= 0x7f) {
                    die_usage(name, optarg, "expected printable bytes without spaces");
                }
            }
            cfg->key_prefix = optarg;
            cfg->key_prefix_len = n;
            break;
        }
        case OPT_DIST:
            if (strcmp(optarg, "uniform") == 0) {
                cfg->dist = BENCH_DIST_UNIFORM;
            } else if (strcmp(optarg, "zipf") == 0) {
                cfg->dist = BENCH_DIST_ZIPF;
            } else if (strcmp(optarg, "sequential") == 0) {
                cfg->dist = BENCH_DIST_SEQUENTIAL;
            } else {
                die_usage(name, optarg, "expected uniform, zipf or sequential");
            }
            o->set_dist = 1;
            break;
        case OPT_SEQ: cfg->dist = BENCH_DIST_SEQUENTIAL; o->set_dist = 1; break;
        case OPT_ZIPF: cfg->zipf_s = parse_pos_double(name, optarg, 0); break;
        case OPT_VSIZE: cfg->value_size = parse_u64(name, optarg, 0, 64u << 20); break;
        case OPT_LOAD: o->load = 1; break;
        case OPT_DURATION: cfg->duration_s = parse_pos_double(name, optarg, 0); o->set_duration = 1; break;
        case OPT_REQUESTS: cfg->requests = parse_u64(name, optarg, 1, UINT64_MAX / 2); o->set_requests = 1; break;
        case OPT_RATE: cfg->rate = parse_pos_double(name, optarg, 0); break;
        case OPT_RATE_WINDOW: cfg->rate_window_us = parse_pos_double(name, optarg, 1); break;
        case OPT_TRACE: cfg->trace = optarg; break;
        case OPT_TRACE_FMT: {
            int f = bench_trace_fmt_parse(optarg);
            if (f < 0) {
                die_usage(name, optarg, "expected auto, lirs, arc, scarab or cache2k");
            }
            cfg->trace_fmt = (enum bench_trace_fmt)f;
            break;
        }
        case OPT_JSON: o->json = 1; break;
        case OPT_SEED: cfg->seed = parse_u64(name, optarg, 0, UINT64_MAX); break;
        case OPT_TIMEOUT: cfg->drain_timeout_s = parse_pos_double(name, optarg, 0); break;
        case OPT_CTIMEOUT: cfg->connect_timeout_s = parse_pos_double(name, optarg, 0); break;
        case OPT_HELP: usage(stdout); exit(0);
        case OPT_VERSION: printf("crabcache-bench %s\n", CRABCACHE_VERSION); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crabcache-bench: unexpected argument '%s' (see --help)\n", argv[optind]);
        exit(2);
    }
    if (!cfg->port) {
        cfg->port = cfg->proto == BENCH_PROTO_NATIVE ? "8000" : "6379";
    }
    if (o->load) {
        if (cfg->trace) {
            fprintf(stderr, "crabcache-bench: --load and --trace exclude each other\n");
            exit(2);
        }
        cfg->dist = BENCH_DIST_SEQUENTIAL;
        cfg->set_ratio = 1;
        cfg->get_ratio = 0;
        if (!o->set_requests) {
            cfg->requests = cfg->keys;
        }
        if (!o->set_duration) {
            cfg->duration_s = 0;
        }
        if (!o->set_pipeline) {
            cfg->pipeline = 16;
        }
    }
    if (cfg->trace) {
        if (o->set_threads && cfg->threads != 1) {
            fprintf(stderr, "crabcache-bench: --trace replays with one thread\n");
            exit(2);
        }
        cfg->threads = 1;
        if (!o->set_conns) {
            cfg->conns = 1;
        }
        if (!o->set_pipeline && cfg->rate <= 0) {
            cfg->pipeline = 1;
        }
        if (!o->set_duration) {
            cfg->duration_s = 0;   /* to the end of the trace */
        }
    }
    if (o->set_requests && !o->set_duration) {
        cfg->duration_s = 0;
    }
    if (cfg->rate > 0 && !o->set_pipeline) {
        cfg->pipeline = 1024;
    }
    if (cfg->threads > cfg->conns) {
        cfg->threads = cfg->conns;
    }
    if (cfg->proto == BENCH_PROTO_NATIVE && cfg->value_size == 0) {
        fprintf(stderr, "crabcache-bench: the native protocol needs --value-size >= 1\n");
        exit(2);
    }
}

static const char *
dist_name(enum bench_dist d)
{
    return d == BENCH_DIST_ZIPF ? "zipf" : d == BENCH_DIST_SEQUENTIAL ? "sequential" : "uniform";
}

static double
us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void
print_lat_row(const char *name, const struct bench_hist *h)
{
    if (h->count == 0) {
        return;
    }
    printf("  %-4s %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", name,
           us(bench_hist_percentile(h, 0)), us(bench_hist_percentile(h, 50)),
           us(bench_hist_percentile(h, 90)), us(bench_hist_percentile(h, 99)),
           us(bench_hist_percentile(h, 99.9)), us(h->max), bench_hist_mean(h) / 1000.0);
}

static void
json_lat(const char *name, const struct bench_hist *h, int last)
{
    printf("\"%s\":{\"count\":%llu,\"min\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
           "\"p99_9\":%.3f,\"max\":%.3f,\"mean\":%.3f}%s",
           name, (unsigned long long)h->count, us(bench_hist_percentile(h, 0)),
           us(bench_hist_percentile(h, 50)), us(bench_hist_percentile(h, 90)),
           us(bench_hist_percentile(h, 99)), us(bench_hist_percentile(h, 99.9)), us(h->max),
           bench_hist_mean(h) / 1000.0, last ? "" : ",");
}

static void
json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            printf("\\%c", *s);
        } else if ((unsigned char)*s < 0x20) {
            printf("\\u%04x", *s);
        } else {
            putchar(*s);
        }
    }
    putchar('"');
}

static void
report(const struct opts *o, const struct bench_result *r, double cpu_user, double cpu_sys)
{
    const struct bench_cfg *cfg = &o->cfg;
    double secs = r->last_ns > r->first_ns ? (double)(r->last_ns - r->first_ns) / 1e9 : 0.0;
    double rps = secs > 0 ? (double)r->completed / secs : 0.0;
    double hit_ratio = r->gets ? (double)r->hits / (double)r->gets : 0.0;
    const char *proto = cfg->proto == BENCH_PROTO_NATIVE ? "native" : "resp";
    if (o->json) {
        printf("{\"config\":{\"host\":");
        json_str(cfg->host);
        printf(",\"port\":%s,\"protocol\":\"%s\",\"threads\":%d,\"connections\":%d,"
               "\"pipeline\":%d,\"ratio\":\"%u:%u\",\"keys\":%llu,\"key_prefix\":",
               cfg->port, proto, cfg->threads, cfg->conns, cfg->pipeline, cfg->set_ratio,
               cfg->get_ratio, (unsigned long long)cfg->keys);
        json_str(cfg->key_prefix);
        printf(",\"distribution\":\"%s\",\"zipf_exponent\":%g,\"value_size\":%zu,"
               "\"duration_s\":%g,\"requests\":%llu,\"rate\":%g,\"seed\":%llu,\"trace\":",
               dist_name(cfg->dist), cfg->zipf_s, cfg->value_size, cfg->duration_s,
               (unsigned long long)cfg->requests, cfg->rate, (unsigned long long)cfg->seed);
        if (cfg->trace) {
            json_str(cfg->trace);
        } else {
            printf("null");
        }
        printf("},\"requests\":%llu,\"elapsed_s\":%.6f,\"throughput_rps\":%.1f,"
               "\"gets\":%llu,\"sets\":%llu,\"hits\":%llu,\"misses\":%llu,\"hit_ratio\":%.6f,"
               "\"errors\":%llu,\"connection_errors\":%llu,\"timeouts\":%llu,"
               "\"trace_records\":%llu,\"max_send_lag_us\":%.1f,"
               "\"client_cpu_user_s\":%.3f,\"client_cpu_sys_s\":%.3f,\"latency_us\":{",
               (unsigned long long)r->completed, secs, rps, (unsigned long long)r->gets,
               (unsigned long long)r->sets, (unsigned long long)r->hits,
               (unsigned long long)r->misses, hit_ratio, (unsigned long long)r->errors,
               (unsigned long long)r->conn_errors, (unsigned long long)r->timeouts,
               (unsigned long long)r->trace_records, r->late_ns_max / 1000.0, cpu_user,
               cpu_sys);
        json_lat("all", &r->all, 0);
        json_lat("get", &r->get, 0);
        json_lat("set", &r->set, 1);
        printf("}}\n");
        return;
    }
    printf("crabcache-bench  %s:%s %s  threads %d  connections %d  pipeline %d\n", cfg->host,
           cfg->port, proto, cfg->threads, cfg->conns, cfg->pipeline);
    if (cfg->trace) {
        printf("trace     %s (%s), value %zu B\n", cfg->trace,
               bench_trace_fmt_name(cfg->trace_fmt), cfg->value_size);
    } else {
        printf("workload  SET:GET %u:%u  keys %llu (%s%%012d) %s", cfg->set_ratio,
               cfg->get_ratio, (unsigned long long)cfg->keys, cfg->key_prefix,
               dist_name(cfg->dist));
        if (cfg->dist == BENCH_DIST_ZIPF) {
            printf(" (s=%g)", cfg->zipf_s);
        }
        printf("  value %zu B\n", cfg->value_size);
    }
    if (cfg->rate > 0) {
        printf("offered   %.0f req/s (open loop; max send lag %.1f us)\n", cfg->rate,
               r->late_ns_max / 1000.0);
    }
    printf("requests  %llu in %.3f s = %.0f req/s  (GET %llu, SET %llu)\n",
           (unsigned long long)r->completed, secs, rps, (unsigned long long)r->gets,
           (unsigned long long)r->sets);
    if (r->gets) {
        printf("GET       hits %llu, misses %llu, hit ratio %.2f %%\n",
               (unsigned long long)r->hits, (unsigned long long)r->misses, 100.0 * hit_ratio);
    }
    if (cfg->trace) {
        printf("trace     %llu records replayed\n", (unsigned long long)r->trace_records);
    }
    printf("errors    %llu error replies, %llu lost connections, %llu timeouts\n",
           (unsigned long long)r->errors, (unsigned long long)r->conn_errors,
           (unsigned long long)r->timeouts);
    printf("client    cpu %.2f s user + %.2f s sys\n", cpu_user, cpu_sys);
    printf("latency (us)  min        p50        p90        p99      p99.9        max       mean\n");
    print_lat_row("all", &r->all);
    print_lat_row("GET", &r->get);
    print_lat_row("SET", &r->set);
}

int
main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof(o));
    bench_cfg_defaults(&o.cfg);
    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);

    static struct bench_result res;   /* ~90 KiB of histograms: not on the stack */
    if (bench_run(&o.cfg, &res) < 0) {
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double cpu_sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    report(&o, &res, cpu_user, cpu_sys);
    fflush(stdout);
    if (res.conn_errors || res.timeouts || res.completed == 0) {
        return 1;
    }
    return 0;
}
