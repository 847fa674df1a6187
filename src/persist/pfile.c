/*
 * pfile.c -- file helpers for the persist layer.
 *
 * Kept apart from the format code so that wal_format.c stays pure (and
 * fuzzable) and from wal.c so that the snapshot and recovery code can share
 * the same careful primitives: writes that retry short counts, directory
 * fsyncs after every create/rename/unlink that must survive a crash, and
 * read-only mappings so recovery reads a file with no per-record syscall.
 */
#include "persist/pfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/mem.h"

int
pfile_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int
pfile_mkdir(const char *dir)
{
    /* mkdir -p: create missing parents first */
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path)) {
        return n == 0 ? -EINVAL : -ENAMETOOLONG;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (path[i] == '/') {
            path[i] = '\0';
            if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                return -errno;
            }
            path[i] = '/';
        }
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        return -errno;
    }
    struct stat st;
    if (stat(dir, &st) < 0) {
        return -errno;
    }
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int
pfile_map(const char *path, struct pfile_map *m)
{
    m->data = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = -errno;
            close(fd);
            return e;
        }
        madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL | MADV_WILLNEED);
        m->data = p;
        m->len = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

void
pfile_unmap(struct pfile_map *m)
{
    if (m->data != NULL) {
        munmap((void *)m->data, m->len);
    }
    m->data = NULL;
    m->len = 0;
}

int
pfile_pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (w == 0) {
            return -EIO;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
    const struct pfile_entry *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

int
pfile_list(const char *dir, pfile_match_fn match, struct pfile_entry **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -errno;
    }
    struct pfile_entry *list = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t key;
        if (!match(de->d_name, &key)) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            list = xrealloc(list, (size_t)cap * sizeof(*list));
        }
        list[n].name = xstrdup(de->d_name);
        list[n].key = key;
        n++;
    }
    closedir(d);
    if (n > 1) {
        qsort(list, (size_t)n, sizeof(*list), entry_cmp);
    }
    *out = list;
    return n;
}

void
pfile_list_free(struct pfile_entry *list, int n)
{
    for (int i = 0; i < n; i++) {
        free(list[i].name);
    }
    free(list);
}

int
pfile_join(char *out, size_t outlen, const char *dir, const char *name)
{
    int n = snprintf(out, outlen, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= outlen) ? -ENAMETOOLONG : 0;
}

bool
pfile_hex16(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else {
            return false;
        }
        x = x << 4 | (uint64_t)d;
    }
    *v = x;
    return true;
}
