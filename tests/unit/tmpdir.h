/*
 * tmpdir.h -- scratch directories for unit tests that write files (WAL,
 * snapshots). Include after <cmocka.h>.
 */
#ifndef CRAB_TESTS_TMPDIR_H
#define CRAB_TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

/* A fresh directory /tmp/crab-<tag>-XXXXXX; its path goes to out. */
static inline void
make_tmpdir(char *out, size_t n, const char *tag)
{
    snprintf(out, n, "/tmp/crab-%s-XXXXXX", tag);
    assert_non_null(mkdtemp(out));
}

/* Remove dir and everything in it. */
static inline void
rm_rf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

#endif
