/* log.c -- see log.h. */
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/mem.h"

static struct {
    _Atomic int level;
    bool json;
    int fd;
    char *path;
    pthread_mutex_t lock; /* guards fd and path across reopen */
} L = {LOG_INFO, true, 2, NULL, PTHREAD_MUTEX_INITIALIZER};

static const char *names[] = {"debug", "info", "warn", "error"};

const char *
log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? names[level] : "info";
}

int
log_level_parse(const char *name)
{
    if (!strcasecmp(name, "debug") || !strcasecmp(name, "verbose")) {
        return LOG_DEBUG;
    }
    if (!strcasecmp(name, "info") || !strcasecmp(name, "notice")) {
        return LOG_INFO;
    }
    if (!strcasecmp(name, "warn") || !strcasecmp(name, "warning")) {
        return LOG_WARN;
    }
    if (!strcasecmp(name, "error")) {
        return LOG_ERROR;
    }
    return -1;
}

static int
open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int
log_setup(enum log_level level, bool json, const char *file)
{
    L.level = level;
    L.json = json;
    if (file && *file) {
        int fd = open_file(file);
        if (fd < 0) {
            return fd;
        }
        pthread_mutex_lock(&L.lock);
        if (L.fd > 2) {
            close(L.fd);
        }
        L.fd = fd;
        free(L.path);
        L.path = xstrdup(file);
        pthread_mutex_unlock(&L.lock);
    }
    return 0;
}

void
log_teardown(void)
{
    pthread_mutex_lock(&L.lock);
    if (L.fd > 2) {
        close(L.fd);
    }
    L.fd = 2;
    free(L.path);
    L.path = NULL;
    pthread_mutex_unlock(&L.lock);
}

int
log_reopen(void)
{
    int rc = 0;
    pthread_mutex_lock(&L.lock);
    if (L.path) {
        int fd = open_file(L.path);
        if (fd < 0) {
            rc = fd;
        } else {
            if (L.fd > 2) {
                close(L.fd);
            }
            L.fd = fd;
        }
    }
    pthread_mutex_unlock(&L.lock);
    return rc;
}

void
log_set_level(enum log_level level)
{
    L.level = level;
}

enum log_level
log_get_level(void)
{
    return (enum log_level)L.level;
}

void
log_json_escape(struct buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': buf_append(out, "\\\"", 2); break;
        case '\\': buf_append(out, "\\\\", 2); break;
        case '\n': buf_append(out, "\\n", 2); break;
        case '\r': buf_append(out, "\\r", 2); break;
        case '\t': buf_append(out, "\\t", 2); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                buf_append(out, u, 6);
            } else {
                buf_appendc(out, (char)c);
            }
        }
    }
}

void
log_write(enum log_level level, const char *msg, const char *fields_fmt, ...)
{
    if ((int)level < L.level) {
        return;
    }
    struct timeval tv;
    struct tm tm;
    char ts[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));

    struct buf b;
    buf_init(&b);
    if (L.json) {
        buf_appendf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, names[level]);
        log_json_escape(&b, msg, strlen(msg));
        buf_appendc(&b, '"');
    } else {
        char up[8];
        size_t i;
        for (i = 0; names[level][i] && i < sizeof(up) - 1; i++) {
            up[i] = (char)(names[level][i] - 32);
        }
        up[i] = '\0';
        buf_appendf(&b, "%s %s %s", ts, up, msg);
    }
    if (fields_fmt && *fields_fmt) {
        va_list ap;
        char small[512];
        va_start(ap, fields_fmt);
        int m = vsnprintf(small, sizeof(small), fields_fmt, ap);
        va_end(ap);
        if (m > 0) {
            buf_appendc(&b, L.json ? ',' : ' ');
            if ((size_t)m < sizeof(small)) {
                buf_append(&b, small, (size_t)m);
            } else {
                char *big = xmalloc((size_t)m + 1);
                va_start(ap, fields_fmt);
                vsnprintf(big, (size_t)m + 1, fields_fmt, ap);
                va_end(ap);
                buf_append(&b, big, (size_t)m);
                free(big);
            }
        }
    }
    buf_appendstr(&b, L.json ? "}\n" : "\n");
    pthread_mutex_lock(&L.lock);
    ssize_t w = write(L.fd, b.data, b.len);
    (void)w;
    pthread_mutex_unlock(&L.lock);
    buf_deinit(&b);
}
