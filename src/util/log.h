/*
 * log.h -- one log line per event, JSON (default) or text.
 *
 * JSON lines look like
 *   {"ts":"2026-11-25T07:22:06.123Z","level":"info","msg":"listening","port":8000}
 * Fields after the message are given as a printf-style fragment of JSON members
 * (without braces), e.g. log_info("listening", "\"port\":%d", port); pass NULL
 * for none. In text format the same line is
 *   2026-11-25T07:22:06.123Z INFO listening "port":8000
 *
 * Each line is written with one write(2), so lines from several threads never
 * interleave. Thread-safe. log_reopen() is for SIGHUP after log rotation.
 */
#ifndef CRAB_UTIL_LOG_H
#define CRAB_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Configure logging; file NULL or "" means stderr. Returns 0 or -errno. */
int log_setup(enum log_level level, bool json, const char *file);
void log_teardown(void);
int log_reopen(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "debug" | "info" | "warn"/"warning" | "error" (also Redis's "verbose",
 * "notice"); returns -1 for anything else. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append s to out as the inside of a JSON string (no quotes), escaped. */
struct buf;
void log_json_escape(struct buf *out, const char *s, size_t n);

#define log_debug(msg, ...) \
    do { if (log_get_level() <= LOG_DEBUG) log_write(LOG_DEBUG, msg, __VA_ARGS__); } while (0)
#define log_info(msg, ...) log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
