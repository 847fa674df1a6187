/*
 * tclock.c -- the thread-local chain of util/tclock.h (everything else is
 * inline in the header).
 */
#include "util/tclock.h"

_Thread_local int64_t tclock_chain_us;
