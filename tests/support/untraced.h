/* tests/support/untraced.h - whether a process was left as a capture must
 * leave it: every thread untraced and not stopped.
 *
 * Owns nothing. Test support only: reads /proc/PID/task/TID/status. */
#ifndef STAKEOUT_TEST_UNTRACED_H
#define STAKEOUT_TEST_UNTRACED_H

#include <stdbool.h>

/* TracerPid and state of one thread; false when it cannot be read (gone). */
bool support_thread_status(int pid, int tid, int *tracer, char *state);

/* Every thread of pid: alive (not Z or X), TracerPid 0, and within 2 s
 * not in a stop (t or T: a thread just detached may take a moment to
 * run). Fails the test otherwise, or when pid is gone. */
void support_assert_untraced(int pid);

#endif
