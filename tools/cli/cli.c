/*
 * cli.c -- crabcache-cli, a client for the native text protocol.
 *
 *   crabcache-cli [-h host] [-p port] [-a token] [command args...]
 *
 * With a command on the line it sends that one request, prints the reply and
 * exits (status 1 if the reply is an ERROR line). Each argument is one token:
 * one that needs it (spaces, quotes, control bytes, empty) is sent
 * double-quoted, the way the server quotes GET replies (proto/text.h), so
 * `crabcache-cli PUT k "hello world"` stores `hello world`. Without one it reads
 * requests from standard input, one per line, and prints each reply; on a
 * terminal it shows a prompt. Every native reply is exactly one line.
 */
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/text.h"
#include "util/buf.h"

static int
dial(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res, *ai;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "crabcache-cli: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "crabcache-cli: cannot connect to %s:%s: %s\n", host, port,
                strerror(errno));
    }
    return fd;
}

static bool
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read one reply line (without its terminator) into out. */
static bool
read_line(int fd, struct buf *in, struct buf *out)
{
    for (;;) {
        const char *start = buf_rptr(in);
        const char *nl = buf_unread(in) ? memchr(start, '\n', buf_unread(in)) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - start);
            size_t keep = (n > 0 && start[n - 1] == '\r') ? n - 1 : n;
            out->len = 0;
            buf_append(out, start, keep);
            buf_consume(in, n + 1);
            return true;
        }
        char *w = buf_reserve(in, 64 * 1024);
        ssize_t r = read(fd, w, 64 * 1024);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        in->len += (size_t)r;
    }
}

static int
request(int fd, struct buf *in, const char *line, size_t n, bool *is_error)
{
    struct buf out;
    buf_init(&out);
    buf_append(&out, line, n);
    buf_append(&out, "\r\n", 2);
    if (!send_all(fd, out.data, out.len)) {
        buf_deinit(&out);
        fprintf(stderr, "crabcache-cli: write failed: %s\n", strerror(errno));
        return -1;
    }
    if (!read_line(fd, in, &out)) {
        buf_deinit(&out);
        fprintf(stderr, "crabcache-cli: connection closed by the server\n");
        return -1;
    }
    fwrite(out.data, 1, out.len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    *is_error = out.len >= 6 && memcmp(out.data, "ERROR:", 6) == 0;
    buf_deinit(&out);
    return 0;
}

static void
usage(FILE *f)
{
    fprintf(f, "Usage: crabcache-cli [-h host] [-p port] [-a token] [command [args...]]\n"
               "A client for CrabCache's native text protocol (default 127.0.0.1:8000).\n"
               "  -h host    server address (default 127.0.0.1)\n"
               "  -p port    native protocol port (default 8000)\n"
               "  -a token   send AUTH token first\n"
               "  --help     this text (-h is the host, as in redis-cli)\n"
               "  -v, --version  print the version\n"
               "With a command: send it, print the reply, exit 1 if it is an ERROR.\n"
               "Each argument is one token: one with spaces, quotes or control bytes is\n"
               "sent double-quoted for you (crabcache-cli PUT k \"hello world\").\n"
               "Without: read commands from standard input, one per line, as typed\n"
               "(quote a value with spaces yourself: PUT k \"hello world\").\n"
               "Commands: PING, PUT key value [ttl], GET key, DEL key, EXPIRE key ttl,\n"
               "TTL key, AUTH token, STATS, QUIT.\n");
}

int
main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "8000", *token = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-v") == 0) {
            printf("crabcache-cli %s\n", CRABCACHE_VERSION);
            return 0;
        } else if (strcmp(argv[i], "-h") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
            port = argv[++i];
        } else if (strcmp(argv[i], "-a") == 0 && i + 1 < argc) {
            token = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "-p") == 0 ||
                strcmp(argv[i], "-a") == 0) {
                fprintf(stderr, "crabcache-cli: %s needs a value\n", argv[i]);
            } else {
                fprintf(stderr, "crabcache-cli: unknown option %s (see --help)\n", argv[i]);
            }
            return 2;
        } else {
            break;
        }
    }
    int fd = dial(host, port);
    if (fd < 0) {
        return 1;
    }
    struct buf in;
    buf_init(&in);
    bool err = false;
    int status = 0;
    if (token) {
        struct buf line;
        buf_init(&line);
        buf_appendf(&line, "AUTH %s", token);
        if (request(fd, &in, line.data, line.len, &err) < 0 || err) {
            status = 1;
        }
        buf_deinit(&line);
        if (status) {
            goto done;
        }
    }
    if (i < argc) {
        struct buf line;
        buf_init(&line);
        for (int j = i; j < argc; j++) {
            if (j > i) {
                buf_appendc(&line, ' ');
            }
            size_t n = strlen(argv[j]);
            if (text_needs_quote(argv[j], n)) {
                char *w = buf_reserve(&line, text_quoted_len(argv[j], n));
                line.len += text_quote(argv[j], n, w);
            } else {
                buf_append(&line, argv[j], n);
            }
        }
        if (request(fd, &in, line.data, line.len, &err) < 0 || err) {
            status = 1;
        }
        buf_deinit(&line);
        goto done;
    }
    bool tty = isatty(0);
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        if (tty) {
            printf("%s:%s> ", host, port);
            fflush(stdout);
        }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            n--;
        }
        if (n == 0) {
            continue;
        }
        if (request(fd, &in, line, (size_t)n, &err) < 0) {
            status = 1;
            break;
        }
        if (n == 4 && strncasecmp(line, "quit", 4) == 0) {
            break;
        }
    }
    free(line);
done:
    buf_deinit(&in);
    close(fd);
    return status;
}
