/* tests/support/tracefs.h - tracefs for the tests of memory captures by
 * syscall tracepoints.
 *
 * Owns nothing. Test support only: where tracefs is not mounted (a fresh
 * machine), it is mounted at /sys/kernel/tracing when the test runs as
 * root; a test that still cannot have it skips, or fails when CI is set
 * (CI runs as root here: a skip would hide the method from the suite). */
#ifndef STAKEOUT_TEST_TRACEFS_H
#define STAKEOUT_TEST_TRACEFS_H

/* Mount tracefs if it is missing; skip or fail the test without it. */
void support_tracefs_require(void);

#endif
