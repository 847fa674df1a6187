/*
 * ident.c -- who this node is: its ids, its addresses, and the file that
 * keeps them (cluster.dir/node.id). See ctl.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <xxhash.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/ctl.h"
#include "cluster/wire.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"

/* ---- small helpers ------------------------------------------------------------ */

void
ctl_raft_addr_of(const char *bus, char *out, size_t len)
{
    const char *colon = strrchr(bus, ':');
    int port = colon ? atoi(colon + 1) : 0;
    snprintf(out, len, "%.*s:%d", colon ? (int)(colon - bus) : 0, bus, port + RAFT_PORT_OFFSET);
}

void
ctl_bus_addr_of_raft(const char *raft, char *out, size_t len)
{
    const char *colon = strrchr(raft, ':');
    int port = colon ? atoi(colon + 1) : 0;
    snprintf(out, len, "%.*s:%d", colon ? (int)(colon - raft) : 0, raft, port - RAFT_PORT_OFFSET);
}

/* The Raft id a seed bootstraps under: a function of the cluster's name and
 * the seed's bus address, so every seed computes the same configuration. */
uint64_t
ctl_seed_raft_id(const char *bus)
{
    char key[256];
    int n = snprintf(key, sizeof(key), "%s/%s", ctl.name, bus);
    uint64_t id = XXH3_64bits(key, (size_t)n) >> 1; /* libraft ids are > 0 */
    return id ? id : 1;
}

static void
random_bytes(void *p, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, p, n) != (ssize_t)n) {
        /* No urandom: time and pid still make collisions unlikely. */
        uint64_t seed = (uint64_t)uv_hrtime() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            ((uint8_t *)p)[i] = (uint8_t)(seed >> 56);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
}

void
ctl_random_node_id(char out[TOPO_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[TOPO_ID_LEN / 2];
    random_bytes(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[TOPO_ID_LEN] = '\0';
}

uint64_t
ctl_random_raft_id(void)
{
    uint64_t id = 0;
    while (id == 0) {
        random_bytes(&id, sizeof(id));
        id >>= 1;
    }
    return id;
}

/* ---- identity on disk ---------------------------------------------------------- */

int
ctl_mkdir_p(const char *path, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0750) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cluster.dir: cannot create %s: %s", tmp, strerror(errno));
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cluster.dir: cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (access(tmp, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "cluster.dir: %s is not writable: %s", tmp, strerror(errno));
        return -1;
    }
    return 0;
}

/* Load cluster.dir/node.id: 1 when found, 0 when absent, -1 when damaged. */
int
ctl_identity_load(char *err, size_t errlen)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/node.id", ctl.dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    char id[64] = "";
    unsigned long long rid = 0;
    int n = fscanf(f, "%63s %llu", id, &rid);
    fclose(f);
    if (n != 2 || rid == 0 || strlen(id) > TOPO_ID_LEN) {
        snprintf(err, errlen, "cluster.dir: %.300s is damaged (expected: node-id raft-id)", path);
        return -1;
    }
    snprintf(ctl.node_id, sizeof(ctl.node_id), "%.40s", id);
    ctl.raft_id = rid;
    return 1;
}

/* Write it atomically: temporary file, fsync, rename, fsync of the directory. */
int
ctl_identity_save(void)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/node.id", ctl.dir);
    snprintf(tmp, sizeof(tmp), "%s/node.id.tmp", ctl.dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        return -1;
    }
    char line[128];
    int n = snprintf(line, sizeof(line), "%s %llu\n", ctl.node_id, (unsigned long long)ctl.raft_id);
    int rc = write(fd, line, (size_t)n) == n && fsync(fd) == 0 ? 0 : -1;
    close(fd);
    if (rc == 0) {
        rc = rename(tmp, path);
    }
    int dfd = open(ctl.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return rc;
}

