/* sidecar/memcapture.h - a memory profile of a running process: the growth
 * of its address space during the capture, charged to the call stacks that
 * caused it, net of what they gave back, with what its mappings did.
 *
 * Owns: for one capture, the ledger (memledger.h), the unwinder
 * (stackwalk.h) and the method that sees the calls; produces a profile
 * (profile.h, PROFILE_TYPE_MEMORY) with raw addresses, named afterwards by
 * symbols.h like a CPU profile. Borrows the options.
 *
 * I/O: /proc/PID/smaps at the start and the end (the mappings that grew),
 * and the target's mmap, munmap, brk, mremap and mprotect calls,
 * each with its user stack when it can grow memory, seen by one of two
 * methods, the best available first:
 *   tracepoint: the kernel's syscall tracepoints through perf_event_open
 *     (perftrace.h); the target is never stopped;
 *   ptrace: system-call stops of every thread (memptrace.h): every system
 *     call of the target stops the thread that makes it, so a governor
 *     bounds the share of time its threads spend stopped and ends the
 *     capture early when the budget is spent.
 * Nothing allocated before the capture is seen; the smaps growth and the
 * RSS history say the whole trend. */
#ifndef STAKEOUT_MEMCAPTURE_H
#define STAKEOUT_MEMCAPTURE_H

#include "profile.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

enum memcapture_method {
    MEMCAPTURE_AUTO,               /* tracepoints where allowed, else ptrace */
    MEMCAPTURE_TRACEPOINT,
    MEMCAPTURE_PTRACE,
};

#define MEMCAPTURE_MAX_MAP_CHANGES 20 /* mappings listed in the profile; the rest summed */

struct symcache;

struct memcapture_opts {
    int pid;
    int64_t duration_ns;
    enum memcapture_method method;
    volatile sig_atomic_t *stop;   /* may be NULL: set to non-zero to end early */
    void (*progress)(void *ctx, int64_t elapsed_ns, uint64_t calls); /* may be NULL */
    void *progress_ctx;
    struct symcache *symbols;      /* may be NULL: snapshots before and after, as sampler.h */
    double max_stopped;            /* ptrace: share of each window a thread may be stopped;
                                      0: MEMPTRACE_DEFAULT_MAX_STOPPED */
    int *target_status;            /* may be NULL: ptrace, as sampler.h */
};

/* Capture. On success returns 0 and *out owns a new profile (possibly
 * short, with notes saying why; MEMCAPTURE_AUTO notes why it took ptrace).
 * Returns a negative errno with a message in err when nothing could be
 * captured: -ESRCH when the target is gone, -ENOTSUP when no method is
 * allowed here (err says why for each), -EBUSY when ptrace was to be used
 * and another tracer holds the target, -EPERM when ptrace was asked for
 * and is not allowed. Runs as
 * sampler_capture does (sampler.h) with ptrace: SIGCHLD and
 * TRACEE_TIMER_SIGNAL are held while it runs. */
int memcapture_run(const struct memcapture_opts *o, struct profile **out, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/* The method a capture of pid would use here (MEMCAPTURE_AUTO resolved),
 * and why, for `status` and the logs. */
enum memcapture_method memcapture_choose(int pid, char *why, size_t len);

const char *memcapture_method_name(enum memcapture_method m);

/* "tracepoint", "ptrace" or "auto"; false for anything else. */
bool memcapture_method_parse(const char *s, enum memcapture_method *out);

#endif
