/* sidecar/sampler.h - attach to a running process for a moment and sample the
 * stacks of its threads.
 *
 * Owns: the ptrace attachment for the length of one capture, the libunwind
 * address space and its caches. Produces a profile (profile.h) with raw
 * instruction addresses; naming them is symbols.h's job, after the target
 * runs again.
 *
 * Safety, on every path: PTRACE_SEIZE only (never ATTACH, never
 * PTRACE_O_EXITKILL), one thread stopped at a time (PTRACE_INTERRUPT, unwind,
 * resume), every thread detached before returning. The capture runs on a
 * thread of its own that exits at the end, so a target thread that could
 * not be detached (asleep in D past the deadline) is released by the
 * kernel then, and runs on when it wakes; if stakeout itself dies, the
 * kernel detaches its tracees the same way. A target that is already
 * traced is refused; threads that cannot be attached are skipped and
 * counted; a target that exits, execs or forks ends the capture with what it
 * has. A governor keeps the time the target spends stopped under a share of
 * wall time, lowering the rate (and saying so in the profile) when needed. */
#ifndef STAKEOUT_SAMPLER_H
#define STAKEOUT_SAMPLER_H

#include "profile.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define SAMPLER_MAX_RATE_HZ 1000u
#define SAMPLER_DEFAULT_RATE_HZ 99u
#define SAMPLER_DEFAULT_DURATION_NS (5LL * 1000000000LL)
#define SAMPLER_DEFAULT_MAX_STOPPED 0.01 /* share of wall time the target may be stopped */
#define SAMPLER_MAX_FRAMES 256

struct symcache; /* symbols.h */

struct sampler_opts {
    int pid;
    enum profile_type mode;        /* PROFILE_TYPE_CPU (running threads) or _WALL (all) */
    unsigned rate_hz;              /* 1..SAMPLER_MAX_RATE_HZ, per thread */
    int64_t duration_ns;
    double max_stopped;            /* 0: SAMPLER_DEFAULT_MAX_STOPPED */
    double abort_mem_limit_pct;    /* abort when the cgroup memory use is above this; 0: 95 */
    volatile sig_atomic_t *stop;   /* may be NULL: set to non-zero to end early */
    void (*progress)(void *ctx, int64_t elapsed_ns, uint64_t samples); /* may be NULL */
    void *progress_ctx;

    struct symcache *symbols;      /* may be NULL: when set, symbols_snapshot runs before
                                      the attach and again after the detach (the target
                                      running both times); naming stays the caller's job */
    int64_t abort_dstate_ns;       /* abort when a thread stays in uninterruptible sleep
                                      (D) this long; 0: 1 s */
    int *target_status;            /* may be NULL: receives the wait status when the
                                      target is the caller's child and exits during the
                                      capture (the capture reaps it; cmd_record -- CMD) */
};

/* Capture. On success returns 0 and *out owns a new profile (possibly short,
 * with notes saying why). Returns a negative errno with a message in err when
 * nothing could be captured: -EBUSY when another tracer holds the target
 * (a debugger), -EPERM without the right to trace it, -ESRCH when it is gone.
 * The target is never left stopped or traced. */
int sampler_capture(const struct sampler_opts *o, struct profile **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Waiting for tracees: the capture blocks SIGCHLD in the calling thread
 * while it runs (restoring the mask afterwards; its own thread inherits
 * the mask) and collects its tracees'
 * events with waitid/waitpid(__WALL). It never reaps a child of the caller
 * that is not a tracee (a WNOWAIT peek comes first), except the target
 * itself when it is the caller's child and exits (see target_status).
 * Tracees' SIGCHLD goes to the process: when other threads of the caller
 * do not block it, the capture still works but notices a signal on its way
 * to the target (held in a ptrace stop until passed on) at its next tick
 * rather than at once; blocking SIGCHLD in every thread avoids that.
 * While it runs it also holds SIGRTMAX - 1 (a no-op handler, for a timer
 * that bounds each wait for a stop; the old action is restored) and, when
 * allowed, runs its thread at nice -10: a stopped target thread waits for
 * it to be scheduled. The progress callback is called on that thread. */

#endif
