/* sidecar/tracee.h - every thread of one process under ptrace for the
 * length of one capture: seize them, follow their clones, collect their
 * stops, pass their signals on, detach them all at the end.
 *
 * Owns: the table of traced threads (each a struct tracee_thread at the
 * head of the user's own per-thread struct, allocated here at the user's
 * size), the fork children to detach, the threads that could not be
 * seized, and, when set up, a timer signal for the calling thread. Borrows:
 * the profile that attach and detach write their notes into, the hooks'
 * context.
 *
 * Shared by the two captures that stop the target: the CPU sampler
 * (sampler.h: stops of its own making, resumed with PTRACE_CONT) and the
 * memory capture by system-call stops (memptrace.h: every thread resumed
 * with PTRACE_SYSCALL). Safety is the same for both: PTRACE_SEIZE only
 * (never ATTACH, never PTRACE_O_EXITKILL); a stop seen is always ended, a
 * signal on its way to the target passed on with it, a job-control stop
 * left to whoever stopped the target (PTRACE_LISTEN); a fork's child is
 * detached at its first stop; at the end every thread is interrupted and
 * detached, handing back a signal it was about to receive. The capture
 * runs on a thread of its own that exits at the end (tracee_on_thread):
 * the kernel releases whatever a thread still traces when it exits, so a
 * tracee that could not be detached (asleep in D past the deadline) runs on
 * once it wakes, and if stakeout dies its tracees are released the same way.
 *
 * Waiting: tracees' events are collected with waitid/waitpid(__WALL), a
 * WNOWAIT peek first, so that a child of the caller that is not a tracee
 * is never reaped, except the target itself when it is the caller's child
 * and exits (target_status). Tracees' SIGCHLD wakes tracee_wait_event;
 * the capture's thread must block SIGCHLD (tracee_on_thread does). Not
 * thread-safe: one thread uses a set, the one that seized. */
#ifndef STAKEOUT_TRACEE_H
#define STAKEOUT_TRACEE_H

#include "profile.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TRACEE_DETACH_TIMEOUT_NS (3LL * 1000000000LL) /* for all threads together */
#define TRACEE_NAP_NS (1000000LL)                     /* longest sleep of a polling wait */
#define TRACEE_TIMER_SIGNAL (SIGRTMAX - 1)            /* see tracee_timer_setup */

struct tracee_thread {
    int tid;
    bool started;                  /* running under us (a new clone: after its first stop) */
    bool stopped;                  /* in a ptrace-stop we have not ended yet */
    bool group_stop;               /* that stop is job control: resume with PTRACE_LISTEN */
    bool syscall_stop;             /* that stop is a system call's entry or exit
                                      (PTRACE_O_TRACESYSGOOD) */
    bool interrupted;              /* PTRACE_INTERRUPT sent, its stop not seen yet */
    int pending_sig;               /* signal-delivery-stop: the signal to pass on */
    char state;                    /* from /proc stat, as the user last read it; '?' */
};

/* What the user adds to the table. */
struct tracee_ops {
    size_t thread_size;            /* of the user's per-thread struct, which begins with a
                                      struct tracee_thread; 0: just that */
    void (*added)(void *ctx, struct tracee_thread *t);   /* may be NULL: t is in the table */
    void (*dropped)(void *ctx, struct tracee_thread *t); /* may be NULL: release the user's
                                                            part of t (t itself is freed here) */
    /* may be NULL: a stop collected by a draining wait that resumes. It must
     * end the stop (tracee_resume, perhaps after work of its own). NULL:
     * tracee_resume. */
    void (*stopped)(void *ctx, struct tracee_thread *t);
    void *ctx;
};

struct tracee_set {
    int pid;
    int self;                      /* the tracing thread (TracerPid names it) */
    unsigned options;              /* PTRACE_O_* given to PTRACE_SEIZE */
    int resume_req;                /* PTRACE_CONT, or PTRACE_SYSCALL: stop at every call */
    struct tracee_ops ops;
    int *target_status;            /* may be NULL: receives the wait status when the target
                                      is the caller's child and exits (it is reaped here) */
    sigset_t chld;                 /* SIGCHLD, for tracee_wait_event */

    struct tracee_thread **thr;    /* owned, with every element */
    size_t nthr, cap;
    int *forks;                    /* auto-attached children of forks, to detach */
    size_t nforks;
    int *skipped;                  /* tids that could not be attached */
    size_t nskipped;
    int *early;                    /* fork children detached before their fork event */
    size_t nearly;

    bool gone, execed, forked;     /* the target exited, called exec, forked */
    int fork_child;

    bool have_timer;               /* tracee_timer_setup succeeded */
    timer_t timer;
    struct sigaction timer_old;
};

/* Prepare s for pid, traced by the calling thread. Nothing is attached. */
void tracee_init(struct tracee_set *s, int pid, unsigned options, int resume_req,
                 const struct tracee_ops *ops, int *target_status);

/* Free what s holds: the threads left in the table (after
 * tracee_detach_all there are none), the lists, the timer. */
void tracee_fini(struct tracee_set *s);

/* TracerPid of thread tid of process pid, or a negative errno when its
 * status cannot be read (-ENOENT: gone; -EMFILE and the like: we cannot
 * tell). */
int tracee_tracer_of(int pid, int tid);

bool tracee_is_zombie(const struct tracee_thread *t);

/* The thread table. An event handler may add a thread (clone) or drop one
 * (exit) while a caller holds another's pointer: look a thread up by tid
 * again after anything that waits. */
struct tracee_thread *tracee_find(const struct tracee_set *s, int tid);
struct tracee_thread *tracee_add(struct tracee_set *s, int tid, bool started);
void tracee_drop(struct tracee_set *s, int tid);

/* Read the state of each thread from /proc (for tracee_detach_all, which
 * waits for no zombie). */
void tracee_read_states(struct tracee_set *s);

/* End t's stop, if it is in one: PTRACE_LISTEN for job control, else
 * resume_req with the signal it was about to receive. */
void tracee_resume(struct tracee_set *s, struct tracee_thread *t);

/* Record what a wait said about tid: an exit drops the thread (and marks
 * the target gone when it is the leader), a stop marks it stopped with its
 * kind and follows clones, forks and exec. A thread left stopped here is
 * the caller's to resume or detach. A fork's child at its first stop is
 * detached here. */
void tracee_on_status(struct tracee_set *s, int tid, int status);

/* Collect one event of tid, if any, resuming it after (through
 * ops.stopped) when resume_it is set; true when there was one. */
bool tracee_poll_one(struct tracee_set *s, int tid, bool resume_it);

/* Handle every event pending for our tracees, resuming whatever stopped
 * when resume_all is set (else leaving it stopped for the caller). */
void tracee_drain(struct tracee_set *s, bool resume_all);

/* Sleep until deadline (monotonic ns) or a tracee event, whichever comes
 * first; tracee_nap sleeps at most TRACEE_NAP_NS (SIGCHLD goes to the
 * process, and another thread may take it). */
void tracee_wait_event(struct tracee_set *s, int64_t deadline);
void tracee_nap(struct tracee_set *s, int64_t deadline);

/* Seize every thread of the target, again until a pass finds no new one.
 * Threads that cannot be seized are counted in p and noted. Returns 0 with
 * at least one thread traced, or a negative errno with a message in err:
 * -EBUSY (another tracer), -EPERM, -ESRCH, or why /proc/PID/task could
 * not be listed (-EMFILE: out of descriptors). */
int tracee_attach_all(struct tracee_set *s, struct profile *p, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Interrupt every thread and detach each as its stop comes (handing back
 * a pending signal; a job-control stop stays), within
 * TRACEE_DETACH_TIMEOUT_NS; then the fork children. What did not stop is
 * noted in p and released when the tracing thread exits. Empties the
 * table. */
void tracee_detach_all(struct tracee_set *s, struct profile *p);

/* A timer signal for the calling thread (TRACEE_TIMER_SIGNAL, a no-op
 * handler without SA_RESTART), so that a blocking waitpid can be bounded:
 * it ends with EINTR when the timer fires. The old action is restored by
 * tracee_fini. Without it (s->have_timer false), waits poll. */
void tracee_timer_setup(struct tracee_set *s);

/* Arm the timer to fire in ns (0 disarms); it then repeats every period_ns
 * (0: once). */
void tracee_timer_arm(struct tracee_set *s, int64_t ns, int64_t period_ns);

/* While a target thread is stopped it waits for the tracing thread to be
 * scheduled: raise the calling thread's priority (nice -10, when allowed)
 * for the capture. Returns whether it did, with the old value in *old. */
bool tracee_nice_up(int *old);
void tracee_nice_restore(bool done, int old);

/* Run fn(arg, err, errlen) on a thread of its own, with SIGCHLD blocked in
 * the caller and in it, and return what fn returned (its message in err).
 * A capture must never trace from the caller's thread: see the top. */
int tracee_on_thread(int (*fn)(void *arg, char *err, size_t errlen), void *arg, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

#endif
