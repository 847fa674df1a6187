/*
 * test_cmdclock.c -- the command clock of core/cmdclock.h: chaining within a
 * batch, wall-clock readings outside one, and (where the kernel's
 * clocksource is the TSC) the TSC extrapolation against clock_us().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/cmdclock.h"

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void
spin_us(int64_t us)
{
    int64_t end = clock_mono_us() + us;
    while (clock_mono_us() < end) {
    }
}

/* Calibrate for a while (as worker 0's cron does every tick). */
static void
calibrate(void)
{
    for (int i = 0; i < 4; i++) {
        cmdclock_calibrate();
        sleep_ms(60);
    }
    cmdclock_calibrate();
}

/* The chain: the first start is the begin reading, each end is the next
 * start, times never go back within the batch; outside a batch nothing is
 * chained. */
static void
check_chain(void)
{
    int64_t before = clock_us();
    int64_t b = cmdclock_begin();
    assert_true(b >= before);
    assert_int_equal(cmdclock_last(), b);
    assert_int_equal(cmdclock_start(), b);
    int64_t prev = b;
    for (int i = 0; i < 50; i++) {
        int64_t s = cmdclock_start();
        assert_int_equal(s, prev);
        spin_us(20);
        int64_t e = cmdclock_end();
        assert_true(e >= s + 15); /* 20 us of work, with slack for rounding */
        assert_int_equal(cmdclock_last(), e);
        prev = e;
    }
    int64_t after = clock_us();
    /* 50 x 20 us went by: the chain's end agrees with the wall clock */
    assert_true(prev <= after + 2);
    assert_true(after - prev < 2000);
    cmdclock_break();
    assert_int_equal(cmdclock_last(), 0);
    /* outside a batch: fresh wall-clock readings, nothing chained */
    int64_t s = cmdclock_start();
    int64_t e = cmdclock_end();
    assert_true(s >= after && e >= s);
    assert_int_equal(cmdclock_last(), 0);
}

static void
test_chain_wall_clock(void **state)
{
    (void)state;
    check_chain();
}

static void
test_chain_tsc(void **state)
{
    (void)state;
    calibrate();
    if (!cmdclock_tsc_active()) {
        /* not x86-64, or the kernel does not use the TSC: the wall clock
         * path (checked above) is all there is */
        skip();
    }
    check_chain();
    /* A batch of 5 ms: the extrapolated time stays within a few
     * microseconds of clock_us() all along (20 allows for a preempted calibration). */
    cmdclock_begin();
    int64_t worst = 0;
    for (int i = 0; i < 50; i++) {
        spin_us(100);
        int64_t a = clock_us();
        int64_t t = cmdclock_read();
        int64_t z = clock_us();
        int64_t off = t < a ? a - t : t > z ? t - z : 0;
        if (off > worst) {
            worst = off;
        }
    }
    cmdclock_break();
    assert_true(worst <= 20);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_wall_clock),
        cmocka_unit_test(test_chain_tsc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
