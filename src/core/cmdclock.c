/*
 * cmdclock.c -- calibration of the TSC for core/cmdclock.h (the chain
 * itself is inline in the header).
 *
 * The factor is measured against CLOCK_MONOTONIC from one anchor reading
 * (TSC and clock side by side) to the latest: the baseline grows with every
 * call, so after a second the factor is good to about a part per million.
 * Only the calling thread touches the anchor; the factor is published with
 * an atomic store.
 */
#include "core/cmdclock.h"

#include <stdio.h>
#include <string.h>

_Atomic uint64_t cmdclock_mult;
_Thread_local struct cmdclock cmdclock_tl;

#define CAL_MIN_NS 100000000LL /* 100 ms of baseline before the first factor */

static int tsc_ok = -1; /* -1: not checked yet */
static uint64_t anchor_tsc;
static int64_t anchor_ns;

/* The kernel's clocksource is the TSC: it found it invariant and in step
 * across CPUs (else it would have switched to another). */
static bool
kernel_uses_tsc(void)
{
    char name[32] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f == NULL) {
        return false;
    }
    bool ok = fgets(name, sizeof(name), f) != NULL && strcmp(name, "tsc\n") == 0;
    fclose(f);
    return ok;
}

static void
restart(uint64_t tsc, int64_t ns)
{
    anchor_tsc = tsc;
    anchor_ns = ns;
}

void
cmdclock_calibrate(void)
{
    if (!CMDCLOCK_HAVE_TSC) {
        return;
    }
    if (tsc_ok < 0) {
        tsc_ok = kernel_uses_tsc();
    }
    if (!tsc_ok) {
        return;
    }
    uint64_t tsc = cmdclock_tsc();
    int64_t ns = clock_mono_ns();
    if (anchor_ns == 0 || tsc <= anchor_tsc || ns <= anchor_ns) {
        restart(tsc, ns);
        return;
    }
    int64_t dns = ns - anchor_ns;
    if (dns < CAL_MIN_NS) {
        return;
    }
    /* microseconds per tick, 32.32: dns / 1000 / dtsc * 2^32 */
    unsigned __int128 m = ((unsigned __int128)dns << 32) /
                          ((unsigned __int128)(tsc - anchor_tsc) * 1000);
    uint64_t old = atomic_load_explicit(&cmdclock_mult, memory_order_relaxed);
    if (m == 0 || m > UINT32_MAX) {
        /* under one tick per microsecond, or a broken counter */
        atomic_store_explicit(&cmdclock_mult, 0, memory_order_relaxed);
        restart(tsc, ns);
        return;
    }
    if (old != 0 && (m > old + old / 1000 || m < old - old / 1000)) {
        /* the counter's rate moved: stop using it until measured again */
        atomic_store_explicit(&cmdclock_mult, 0, memory_order_relaxed);
        restart(tsc, ns);
        return;
    }
    atomic_store_explicit(&cmdclock_mult, (uint64_t)m, memory_order_relaxed);
}

bool
cmdclock_tsc_active(void)
{
    return atomic_load_explicit(&cmdclock_mult, memory_order_relaxed) != 0;
}
