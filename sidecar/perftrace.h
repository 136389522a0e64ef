/* sidecar/perftrace.h - the target's address-space calls, seen through the
 * kernel's syscall tracepoints with perf_event_open; the target is never
 * stopped.
 *
 * Owns: the perf events opened on each thread of the target and the ring
 * buffer each thread's events write into (perftrace_close releases them),
 * and the records read out of the rings until they are handed over.
 * Borrows nothing.
 *
 * Per thread, seven tracepoints (syscalls:sys_enter_ of mmap, brk, mremap,
 * mprotect and munmap, sys_exit_ of mmap and mremap), sampled at
 * every hit with the raw record (the call's arguments or result), and, for
 * the calls that can grow memory, the user registers and a copy of the top
 * of the user stack, to be unwound by stakeout afterwards. Each thread
 * costs seven descriptors and a ring of its own: the kernel maps no ring of
 * inherited per-thread events, and lets threads share one only per CPU
 * (descriptors for every thread on every CPU). So events are not inherited:
 * each poll looks for threads started since, and opens theirs (a new
 * thread's calls before that are not seen). perftrace_open refuses a target
 * whose threads would take more than half the descriptors left; threads
 * beyond that budget later are counted as not followed. The rings share a
 * fixed total.
 *
 * If stakeout dies, the kernel closes the events with its descriptors:
 * nothing is left behind in the target. */
#ifndef STAKEOUT_PERFTRACE_H
#define STAKEOUT_PERFTRACE_H

#include "memcall.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>


struct perftrace;

struct perftrace_stats {
    uint64_t records;              /* samples read */
    uint64_t lost;                 /* records the kernel dropped (a ring was full) */
    uint32_t threads;              /* threads with events of their own */
    uint32_t unfollowed;           /* threads started later whose events could not be opened */
    uint64_t ring_bytes;           /* mapped for the rings */
    bool exited, execed;           /* the target exited, or called exec */
};

typedef void (*perftrace_fn)(void *ctx, const struct memcall_event *e);

/* Open the events on every thread of pid (they count from then on).
 * Returns 0 with *out set, or a negative errno with a message in err:
 * -ENOENT without tracefs (the message says what to mount), -EACCES or
 * -EPERM where perf_event_open or its ring is refused (perf_event_paranoid,
 * no CAP_PERFMON, a seccomp filter, perf_event_mlock_kb), -EMFILE for a
 * target with too many threads for the descriptors left, -ESRCH when it is
 * gone. */
int perftrace_open(int pid, struct perftrace **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Wait up to timeout_ms for records, then hand fn every record older than
 * a settling delay (all of them when final), in time order. Records of
 * different threads come from different rings: the delay lets a record
 * that was being written when the rings were read take its place.
 * Threads started since the last poll get their events first. Returns the
 * number of records handed over. */
size_t perftrace_poll(struct perftrace *t, int timeout_ms, bool final, perftrace_fn fn, void *ctx);

void perftrace_stats(const struct perftrace *t, struct perftrace_stats *out);

/* Close every event and unmap the rings. NULL does nothing. */
void perftrace_close(struct perftrace *t);

/* Whether this process may open the tracepoints on pid (tracefs found,
 * perf_event_open allowed): 0, or a negative errno with the reason in
 * why. Opens and closes one event, on pid. */
int perftrace_probe(int pid, char *why, size_t len) __attribute__((warn_unused_result));

#endif
