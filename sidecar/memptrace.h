/* sidecar/memptrace.h - the target's address-space calls, seen by stopping
 * each of its threads at the entry and the exit of every system call
 * (ptrace), for a memory capture where the syscall tracepoints are refused.
 *
 * Owns: for one capture, the ptrace attachment of every thread of the
 * target (tracee.h) and the copy of the stack of the call being handed
 * over. Borrows the profile it writes its notes and stopped time into, and
 * the callback with its context.
 *
 * I/O: PTRACE_SEIZE of every thread (PTRACE_O_TRACESYSGOOD, and clones
 * followed), each resumed with PTRACE_SYSCALL; at a stop,
 * PTRACE_GET_SYSCALL_INFO, and at the entry of a call that can grow memory
 * PTRACE_GETREGS and one process_vm_readv of the top of its stack. Nothing
 * is installed in the target (no seccomp filter: stakeout cannot add one
 * to another process), so every system call stops the thread that makes
 * it, not only mmap, munmap, brk, mremap and mprotect: a syscall-heavy
 * target pays for each.
 *
 * The governor: the time each thread spends in stops is counted per
 * window of MEMPTRACE_WINDOW_NS: from the stop seen (or, when it waited
 * while the capture was busy, from when that began) to its resume, plus an
 * estimate of the part no clock of ours sees, the kernel switching the
 * thread out and back in (memptrace.c, stop_began), which for a cheap call
 * is most of the cost. The rate cannot be lowered, so when one thread's
 * stops in a window pass max_stopped of the window, the capture ends with
 * what it has and a note saying why and what the share was: over every
 * window the target's threads are stopped at most that share (and one
 * stop). Its first window is judged too: the budget is an allowance of
 * stopped time per window, which a slow first stop or two only draws on.
 *
 * Safety is the CPU sampler's (tracee.h): never ATTACH, never
 * PTRACE_O_EXITKILL; the whole capture runs on a thread of its own that
 * exits at the end; every thread is detached at the end and never left
 * stopped; a signal is passed on, a job-control stop left alone; a fork,
 * vfork or exec of the target ends the capture. If stakeout dies the kernel
 * detaches the threads, which stop at no further call and run on. */
#ifndef STAKEOUT_MEMPTRACE_H
#define STAKEOUT_MEMPTRACE_H

#include "memcall.h"
#include "profile.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMPTRACE_DEFAULT_MAX_STOPPED 0.05 /* share of each window a thread may be stopped */
#define MEMPTRACE_WINDOW_NS (500LL * 1000000LL)

typedef void (*memptrace_fn)(void *ctx, const struct memcall_event *e);

struct memptrace_opts {
    int pid;
    int64_t duration_ns;
    double max_stopped;            /* 0: MEMPTRACE_DEFAULT_MAX_STOPPED */
    volatile sig_atomic_t *stop;   /* may be NULL: set to non-zero to end early */
    void (*progress)(void *ctx, int64_t elapsed_ns, uint64_t calls); /* may be NULL */
    void *progress_ctx;
    int *target_status;            /* may be NULL: as sampler.h */
    /* Each address-space call, in each thread's order, called once the
     * thread runs again (so an unwind in it does not keep the target
     * stopped), on the capture's thread. The event's pointers are valid
     * during the call only. */
    memptrace_fn fn;
    void *ctx;
};

struct memptrace_stats {
    uint64_t stops;                /* ptrace-stops ended (system calls: two each) */
    uint64_t syscalls;             /* system calls seen */
    uint64_t calls;                /* address-space calls handed over */
    double stopped_share;          /* the largest share of a window a thread was stopped */
    bool budget_spent;             /* the capture ended for the governor */
};

/* Capture until the duration, the stop flag, the budget, or the target's
 * exit, exec or fork, handing each call to o->fn; notes (why it ended, the
 * threads skipped or left) go into p, with its stopped_ns and
 * threads_skipped. Returns 0 with *st set, or a negative errno with a
 * message in err: -EBUSY when another tracer holds the target, -EPERM
 * without the right to trace it, -ESRCH when it is gone. The target is
 * never left stopped or traced. SIGCHLD and TRACEE_TIMER_SIGNAL are
 * handled as by sampler_capture (sampler.h). */
int memptrace_run(const struct memptrace_opts *o, struct profile *p, struct memptrace_stats *st,
                  char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
