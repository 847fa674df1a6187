/*
 * trace.h -- cache-trace readers for crabcache-bench --trace.
 *
 * Formats (of the public traces: docs/eviction.md, "The traces"):
 *   lirs     text, one non-negative integer key per line; lines holding only
 *            `*` and empty lines are skipped; CRLF or LF.
 *   arc      text, `start count ignored ignored` per line, standing for the
 *            count keys start, start+1, ... in that order.
 *   scarab   binary, big-endian signed 64-bit keys, no header.
 *   cache2k  binary, big-endian signed 32-bit keys, no header.
 * Files ending in .gz, .xz, .zst/.zstd, .bz2 are read through `gzip -dc`,
 * `xz -dc`, `zstd -dc`, `bzip2 -dc` (a child process); others directly.
 * With BENCH_TRACE_AUTO the format is chosen from the file name (lirs, .lis,
 * scarab, cache2k) and otherwise sniffed from the first bytes (text with one
 * field: lirs, with four: arc); binary data needs an explicit format.
 *
 * A reader is owned by one thread at a time.
 */
#ifndef CRAB_BENCH_TRACE_H
#define CRAB_BENCH_TRACE_H

#include <stdint.h>
#include <stdio.h>

enum bench_trace_fmt {
    BENCH_TRACE_AUTO = 0,
    BENCH_TRACE_LIRS,
    BENCH_TRACE_ARC,
    BENCH_TRACE_SCARAB,
    BENCH_TRACE_CACHE2K,
};

struct bench_trace {
    FILE *f;
    int is_pipe;
    enum bench_trace_fmt fmt;
    char *buf;            /* read buffer */
    size_t len, pos;      /* valid bytes, read cursor */
    int eof;              /* the stream has no more bytes beyond buf */
    int64_t arc_next;     /* ARC expansion: next key and keys left */
    int64_t arc_left;
    uint64_t line;        /* text line number, for messages */
    uint64_t records;     /* keys returned so far */
    char err[160];        /* last error message */
};

/* Parse a format name (auto, lirs, arc, scarab|int64be, cache2k|int32be);
 * returns -1 when unknown. */
int bench_trace_fmt_parse(const char *name);
const char *bench_trace_fmt_name(enum bench_trace_fmt fmt);

/*
 * Open path for reading with the given (or detected) format. Returns 0, or
 * -1 with t->err set (the reader is then closed already).
 */
int bench_trace_open(struct bench_trace *t, const char *path, enum bench_trace_fmt fmt);

/*
 * Next key of the trace. Returns 1 with *key set, 0 at the end of the trace,
 * -1 on a malformed record or a failed decompressor (t->err set).
 */
int bench_trace_next(struct bench_trace *t, int64_t *key);

/* Close the reader and reap the decompressor; safe on a closed reader.
 * Returns 0, or -1 when the decompressor failed. */
int bench_trace_close(struct bench_trace *t);

#endif
