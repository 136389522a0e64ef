/* sidecar/clock.h - the time now, in nanoseconds, as the daemon reads it.
 *
 * Owns nothing. The only place the daemon reads clocks from: monotonic time
 * for intervals, deadlines and rates; wall time only for what people and
 * other programs read (timestamps in logs, bundles and profiles) and for
 * deadlines that libc measures on CLOCK_REALTIME. triggers/ never reads a
 * clock: its callers pass the time in. Static inline, so no clock.c. */
#ifndef STAKEOUT_CLOCK_H
#define STAKEOUT_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC: never goes back, unrelated to the date. */
static inline int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CLOCK_REALTIME: nanoseconds since the Unix epoch; may jump. */
static inline int64_t clock_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif
