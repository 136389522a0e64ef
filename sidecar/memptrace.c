/* sidecar/memptrace.c - a memory capture's calls by system-call stops; see
 * memptrace.h for the contract.
 *
 * Shape, on the capture's own thread (tracee_on_thread), each step undone
 * in reverse on every path:
 *   1. refuse a target that is traced already; nice -10; the timer signal
 *      that bounds a blocking waitpid;
 *   2. PTRACE_SEIZE every thread (tracee_attach_all), then PTRACE_INTERRUPT
 *      each: at its stop it is resumed with PTRACE_SYSCALL, and from then
 *      on stops at every call (clones are followed and resumed the same
 *      way from their first stop);
 *   3. until the end: wait for a stop of any thread; a system call's: read
 *      what it is (PTRACE_GET_SYSCALL_INFO) and, for the address-space
 *      calls, copy what the callback needs, resume the thread, then hand
 *      the call over; any other stop: resume it (passing a signal on,
 *      PTRACE_LISTEN for job control);
 *   4. detach every thread (tracee_detach_all); the thread exits.
 *
 * Waiting: waitpid(-1, __WALL | __WNOTHREAD) on the capture's thread sees
 * only what that thread traces (its own children would be the only others,
 * and it has none), so a child of the caller is never reaped; it blocks,
 * and the stop wakes it directly, with no SIGCHLD in the way.
 *
 * A syscall-enter-stop is always followed by the call's exit stop, an
 * event stop or the thread's death (ptrace(2)), as long as the thread is
 * resumed with PTRACE_SYSCALL, which it always is: so the exit of a call
 * that is not an address-space call is resumed without a look. */
#include "memptrace.h"

#include "clock.h"
#include "errbuf.h"
#include "tracee.h"
#include "xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEIZE_OPTIONS                                                                             \
    (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |    \
     PTRACE_O_TRACEEXEC)
#define TICK_NS (10LL * 1000000LL)       /* the timer: how late the end or the stop flag is seen */
#define PROGRESS_NS (100LL * 1000000LL)
#define QUICK_CALL_NS (200LL * 1000LL)   /* a round trip this short is mostly the stops' cost */
#define STACK_IOV ((int)(MEMCALL_STACK_BYTES / 4096 + 1)) /* a page each, the first a part */

/* A traced thread (tracee.h's part first) and what the capture keeps of it. */
struct mthr {
    struct tracee_thread tt;
    bool in_call;                  /* its entry seen, the call's exit to come */
    int call;                      /* that call's enum memcall_nr, -1: not an address-space one */
    int64_t resumed_ns;            /* when its last stop ended */
    int64_t stopped_ns;            /* in stops, over the capture */
    int64_t win_stopped_ns;        /* in stops, in the current window */
};

struct mpt {
    const struct memptrace_opts *o;
    struct profile *p;             /* borrowed */
    struct tracee_set ts;
    int64_t start_ns, win_start_ns;
    int64_t busy_since_ns;         /* since when this thread has not waited for a stop */
    int64_t unseen_ns;             /* the part of a stop no clock of ours sees (stop_began);
                                      0 until a quick call is seen */
    int64_t allowance_ns;          /* stopped time a thread may spend per window */
    double max_stopped;
    double max_share;              /* the largest share of a window a thread was stopped */
    uint64_t stops, syscalls, calls;
    bool spent;                    /* the budget: the capture ends */
    int spent_tid;
    int64_t spent_win_ns, spent_at_ns;
    double spent_traced_share;     /* that thread's stopped share while traced */
    long page;
    unsigned char stack[MEMCALL_STACK_BYTES];
};

static struct mthr *find_mthr(struct mpt *m, int tid)
{
    return (struct mthr *)tracee_find(&m->ts, tid);
}

static void note_share(struct mpt *m, const struct mthr *t)
{
    double share = (double)t->win_stopped_ns / (double)MEMPTRACE_WINDOW_NS;
    if (share > m->max_share)
        m->max_share = share;
}

/* ---- the table's hooks ---- */

static void on_added(void *ctx, struct tracee_thread *tt)
{
    (void)ctx;
    ((struct mthr *)tt)->call = -1;
}

/* A thread's share of the window is final when it goes: it stops no more. */
static void on_dropped(void *ctx, struct tracee_thread *tt)
{
    note_share(ctx, (struct mthr *)tt);
}

static void handle_stop(struct mpt *m, struct mthr *t, int64_t since_ns);

/* A stop collected by tracee_drain (while attaching). */
static void on_stopped(void *ctx, struct tracee_thread *tt)
{
    handle_stop(ctx, (struct mthr *)tt, clock_mono_ns());
}

/* ---- the governor ---- */

/* End t's stop and count it from since_ns; the budget is judged at every
 * stop, so a window never holds more than the allowance and one stop. */
static void end_stop(struct mpt *m, struct mthr *t, int64_t since_ns)
{
    tracee_resume(&m->ts, &t->tt);
    int64_t now = clock_mono_ns();
    int64_t d = now > since_ns ? now - since_ns : 0;
    t->resumed_ns = now;
    t->stopped_ns += d;
    t->win_stopped_ns += d;
    m->p->stopped_ns += d;
    m->stops++;
    if (t->win_stopped_ns > m->allowance_ns && !m->spent) {
        m->spent = true;
        m->spent_tid = t->tt.tid;
        m->spent_at_ns = now;
        m->spent_win_ns = now - m->win_start_ns;
        m->spent_traced_share = (double)t->stopped_ns / (double)(now - m->start_ns + 1);
    }
}

static void new_window(struct mpt *m, int64_t now)
{
    for (size_t i = 0; i < m->ts.nthr; i++) {
        struct mthr *t = (struct mthr *)m->ts.thr[i];
        note_share(m, t);
        t->win_stopped_ns = 0;
    }
    m->win_start_ns = now;
}

/* ---- the calls ---- */

/* The top of the stack from sp, into m->stack: the bytes read, 0 when
 * none. A page per element, so that the end of the stack mapping cuts the
 * copy short instead of failing it (process_vm_readv does not split an
 * element). */
static size_t copy_stack(struct mpt *m, int tid, uint64_t sp)
{
    struct iovec local = {.iov_base = m->stack, .iov_len = sizeof m->stack};
    struct iovec remote[STACK_IOV];
    int n = 0;
    uint64_t page = (uint64_t)m->page, at = sp, end = sp + sizeof m->stack;
    while (at < end && n < STACK_IOV) {
        uint64_t next = (at / page + 1) * page;
        if (next > end || n == STACK_IOV - 1)
            next = end;
        remote[n].iov_base = (void *)(uintptr_t)at;
        remote[n].iov_len = (size_t)(next - at);
        n++;
        at = next;
    }
    ssize_t got;
    do
        got = process_vm_readv(tid, &local, 1, remote, (unsigned long)n, 0);
    while (got == -1 && errno == EINTR);
    return got > 0 ? (size_t)got : 0;
}

/* A system call's entry: an address-space call is copied out (its stack
 * when it can grow memory), the thread resumed, the call handed over. */
static void on_entry(struct mpt *m, struct mthr *t, const struct __ptrace_syscall_info *si,
                     int64_t since_ns, int64_t now)
{
    m->syscalls++;
    int nr = memcall_from_syscall((long)si->entry.nr);
    t->in_call = true;
    t->call = nr;
    if (nr < 0) {
        end_stop(m, t, since_ns);
        return;
    }
    struct memcall_event e = {.kind = MEMCALL_ENTER,
                              .exit_follows = nr == MEMCALL_MMAP || nr == MEMCALL_MREMAP};
    e.call.nr = (enum memcall_nr)nr;
    e.call.tid = t->tt.tid;
    e.call.t_ns = now;
    for (int k = 0; k < 5; k++)
        e.call.a[k] = si->entry.args[k]; /* rdi, rsi, rdx, r10, r8 */
    struct user_regs_struct regs;
    if (memcall_grows(e.call.nr) && ptrace(PTRACE_GETREGS, t->tt.tid, NULL, &regs) == 0) {
        e.regs = &regs;
        e.stack = m->stack;
        e.stack_len = copy_stack(m, t->tt.tid, regs.rsp);
    }
    end_stop(m, t, since_ns);
    m->calls++;
    m->o->fn(m->o->ctx, &e); /* the thread runs: unwinding here stops nothing */
}

static void on_exit_stop(struct mpt *m, struct mthr *t, const struct __ptrace_syscall_info *si,
                         int64_t since_ns, int64_t now)
{
    int nr = t->in_call ? t->call : -1;
    t->in_call = false;
    t->call = -1;
    if (nr != MEMCALL_MMAP && nr != MEMCALL_MREMAP) {
        end_stop(m, t, since_ns);
        return;
    }
    struct memcall_event e = {.kind = MEMCALL_EXIT};
    e.call.nr = (enum memcall_nr)nr;
    e.call.tid = t->tt.tid;
    e.call.t_ns = now;
    e.call.ret = (uint64_t)si->exit.rval;
    e.call.have_ret = true;
    end_stop(m, t, since_ns);
    m->o->fn(m->o->ctx, &e);
}

static void on_syscall_stop(struct mpt *m, struct mthr *t, int64_t since_ns)
{
    if (t->in_call && t->call != MEMCALL_MMAP && t->call != MEMCALL_MREMAP) {
        t->in_call = false; /* an exit whose result is not wanted: see the top */
        t->call = -1;
        end_stop(m, t, since_ns);
        return;
    }
    int64_t now = clock_mono_ns();
    struct __ptrace_syscall_info si;
    memset(&si, 0, sizeof si);
    long n = ptrace(PTRACE_GET_SYSCALL_INFO, t->tt.tid, (void *)sizeof si, &si);
    if (n > 0 && si.op == PTRACE_SYSCALL_INFO_ENTRY)
        on_entry(m, t, &si, since_ns, now);
    else if (n > 0 && si.op == PTRACE_SYSCALL_INFO_EXIT)
        on_exit_stop(m, t, &si, since_ns, now);
    else
        end_stop(m, t, since_ns); /* gone meanwhile (ESRCH): its exit is collected next */
}

/* t is stopped: end the stop, whatever it is. After an exec the target is
 * another program, and the capture ends: its calls are not looked at. */
static void handle_stop(struct mpt *m, struct mthr *t, int64_t since_ns)
{
    if (t->tt.syscall_stop && !m->ts.execed)
        on_syscall_stop(m, t, since_ns);
    else
        end_stop(m, t, since_ns);
}

/* ---- the loop ---- */

/* The next status of a tracee, into *status: its tid, 0 when none came
 * (the timer's tick), -1 when nothing is traced any more. *pending: it was
 * there already when asked (the thread stopped while this one was busy),
 * else it woke this thread. */
static int next_status(struct mpt *m, int64_t deadline, int *status, bool *pending)
{
    pid_t r;
    do
        r = waitpid(-1, status, __WALL | __WNOTHREAD | WNOHANG);
    while (r == -1 && errno == EINTR);
    *pending = r > 0;
    if (r != 0)
        return r > 0 ? r : -1; /* -1: ECHILD */
    if (!m->ts.have_timer) {
        tracee_nap(&m->ts, deadline);
        m->busy_since_ns = clock_mono_ns();
        return 0;
    }
    r = waitpid(-1, status, __WALL | __WNOTHREAD); /* the timer's tick ends it with EINTR */
    m->busy_since_ns = clock_mono_ns();
    if (r == -1)
        return errno == EINTR ? 0 : -1;
    return r;
}

/* When the stop of t, seen at seen_ns, began, at the earliest: the time
 * it is counted from. Before this thread sees a stop, the kernel switches
 * the stopping thread out and wakes this one, and after the resume it
 * wakes the thread and switches it back in: no clock of ours sees that
 * part, which for a cheap system call is most of what the stop costs the
 * target (ten times the call itself). It is estimated as the mean round
 * trip of quick calls - from the resume at a call's entry to its exit's
 * stop waking this thread, when under QUICK_CALL_NS - which holds the
 * call's own work too, so errs towards ending the capture; and it is
 * added to every stop. A stop that was pending while this thread was busy
 * (another thread's stop, a callback's unwind) may have waited since it
 * became busy. Never before the thread's last resume: it ran until then. */
static int64_t stop_began(struct mpt *m, const struct mthr *t, int64_t seen_ns, bool pending)
{
    int64_t run = t && t->resumed_ns > 0 ? seen_ns - t->resumed_ns : INT64_MAX;
    if (!pending && t && t->in_call && run >= 0 && run < QUICK_CALL_NS)
        m->unseen_ns = m->unseen_ns == 0 ? run : m->unseen_ns + (run - m->unseen_ns) / 8;
    int64_t before = m->unseen_ns;
    if (pending) {
        int64_t from = t && t->resumed_ns > m->busy_since_ns ? t->resumed_ns : m->busy_since_ns;
        if (seen_ns - from > before)
            before = seen_ns - from;
    }
    if (before > run)
        before = run;
    return seen_ns - (before > 0 ? before : 0);
}

static void capture_loop(struct mpt *m)
{
    const struct memptrace_opts *o = m->o;
    int64_t end = o->duration_ns > INT64_MAX - m->start_ns ? INT64_MAX /* for its life */
                                                           : m->start_ns + o->duration_ns;
    int64_t next_progress = m->start_ns;
    for (;;) {
        int64_t now = clock_mono_ns();
        if (now >= end || m->ts.gone || m->ts.execed || m->ts.forked || m->spent ||
            m->ts.nthr == 0 || (o->stop && *o->stop))
            break;
        if (now - m->win_start_ns >= MEMPTRACE_WINDOW_NS)
            new_window(m, now);
        if (o->progress && now >= next_progress) {
            o->progress(o->progress_ctx, now - m->start_ns, m->calls);
            next_progress = now + PROGRESS_NS;
        }
        int status;
        bool pending;
        int tid = next_status(m, end, &status, &pending);
        if (tid < 0)
            break;
        if (tid == 0)
            continue;
        int64_t since = stop_began(m, find_mthr(m, tid), clock_mono_ns(), pending);
        tracee_on_status(&m->ts, tid, status);
        struct mthr *t = find_mthr(m, tid);
        if (t && t->tt.stopped)
            handle_stop(m, t, since);
    }
}

/* Every thread seized runs on without stopping at calls until it is
 * resumed with PTRACE_SYSCALL once: interrupt each; handle_stop resumes it
 * so at its stop. Threads followed by TRACECLONE stop on their own. */
static void arm_all(struct mpt *m)
{
    for (size_t i = 0; i < m->ts.nthr; i++) {
        struct tracee_thread *t = m->ts.thr[i];
        if (t->started && !t->stopped && !t->interrupted &&
            ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL) == 0)
            t->interrupted = true; /* else ESRCH: it is exiting; a wait collects it */
    }
}

static void finish_notes(struct mpt *m, int64_t end_ns)
{
    const struct memptrace_opts *o = m->o;
    struct profile *p = m->p;
    double at = (double)(end_ns - m->start_ns) / 1e9;
    if (m->ts.gone) {
        p->aborted = true;
        profile_note(p, "target exited after %.2fs: capture ended with the calls so far", at);
    } else if (m->ts.execed) {
        p->aborted = true;
        profile_note(p, "target called exec after %.2fs: capture ended with the calls so far",
                     at);
    } else if (m->ts.forked) {
        p->aborted = true;
        profile_note(p,
                     "target forked (child pid %d) after %.2fs: capture ended with the calls so "
                     "far",
                     m->ts.fork_child, at);
    } else if (m->spent) {
        p->aborted = true;
        profile_note(p,
                     "capture ended after %.2fs, its budget for stopping the target spent: "
                     "thread %d was stopped over %.1f%% of a %lld ms window (%.1f ms in the "
                     "first %.0f ms of it; %.1f%% of the time it was traced): under ptrace "
                     "every system call stops the thread that makes it",
                     (double)(m->spent_at_ns - m->start_ns) / 1e9, m->spent_tid,
                     m->max_stopped * 100, MEMPTRACE_WINDOW_NS / 1000000,
                     (double)m->allowance_ns / 1e6, (double)m->spent_win_ns / 1e6,
                     m->spent_traced_share * 100);
    } else if (o->stop && *o->stop) {
        p->aborted = true;
        profile_note(p, "capture ended early on request after %.2fs", at);
    }
    if (m->unseen_ns > 0)
        profile_note(p,
                     "%llu system call(s) seen by ptrace, each stopping its thread at entry and "
                     "exit; a stop counts the time to handle it and %.1f us estimated for the "
                     "kernel's part (switching the thread out and back in: the mean round trip "
                     "of quick calls)",
                     (unsigned long long)m->syscalls, (double)m->unseen_ns / 1e3);
    else
        profile_note(p,
                     "%llu system call(s) seen by ptrace, each stopping its thread at entry and "
                     "exit; a stop counts the time to handle it (no quick call came to estimate "
                     "the kernel's part)",
                     (unsigned long long)m->syscalls);
}

static int capture_run(void *arg, char *err, size_t errlen)
{
    struct mpt *m = arg;
    const struct memptrace_opts *o = m->o;
    struct tracee_ops ops = {.thread_size = sizeof(struct mthr), .added = on_added,
                             .dropped = on_dropped, .stopped = on_stopped, .ctx = m};
    tracee_init(&m->ts, o->pid, SEIZE_OPTIONS, PTRACE_SYSCALL, &ops, o->target_status);
    int leader_tracer = tracee_tracer_of(o->pid, o->pid);
    if (leader_tracer == -ENOENT || leader_tracer == -ESRCH) {
        errbuf_set(err, errlen, "pid %d does not exist", o->pid);
        return -ESRCH;
    }
    if (leader_tracer < 0) {
        errbuf_set(err, errlen, "cannot read /proc/%d/status: %s", o->pid,
                   strerror(-leader_tracer));
        return leader_tracer;
    }
    if (leader_tracer > 0) {
        errbuf_set(err, errlen, "pid %d is already traced by pid %d (a debugger?); not attaching",
                   o->pid, leader_tracer);
        return -EBUSY;
    }
    /* a stopped thread waits for this one to be scheduled: see tracee.h */
    int old_nice = 0;
    bool reniced = tracee_nice_up(&old_nice);
    tracee_timer_setup(&m->ts);

    m->start_ns = m->win_start_ns = m->busy_since_ns = clock_mono_ns();
    int rc = tracee_attach_all(&m->ts, m->p, err, errlen);
    if (rc < 0)
        goto out;
    arm_all(m);
    m->busy_since_ns = clock_mono_ns(); /* no interrupt's stop began before */
    tracee_timer_arm(&m->ts, TICK_NS, TICK_NS);
    capture_loop(m);
    tracee_timer_arm(&m->ts, 0, 0);
    finish_notes(m, clock_mono_ns());
out:
    tracee_read_states(&m->ts); /* detach waits for no zombie */
    tracee_detach_all(&m->ts, m->p);
    tracee_fini(&m->ts);
    tracee_nice_restore(reniced, old_nice);
    return rc;
}

int memptrace_run(const struct memptrace_opts *o, struct profile *p, struct memptrace_stats *st,
                  char *err, size_t errlen)
{
    if (o->pid <= 0 || o->pid == getpid() || o->duration_ns <= 0 || !o->fn ||
        o->max_stopped < 0 || o->max_stopped > 1) {
        errbuf_set(err, errlen, "invalid options for a capture by ptrace");
        return -EINVAL;
    }
    struct mpt *m = xcalloc(1, sizeof *m); /* the stack copy: not on a thread's stack */
    m->o = o;
    m->p = p;
    m->page = sysconf(_SC_PAGESIZE);
    if (m->page <= 0)
        m->page = 4096;
    m->max_stopped = o->max_stopped > 0 ? o->max_stopped : MEMPTRACE_DEFAULT_MAX_STOPPED;
    m->allowance_ns = (int64_t)(m->max_stopped * (double)MEMPTRACE_WINDOW_NS);
    int rc = tracee_on_thread(capture_run, m, err, errlen);
    if (rc == 0) {
        *st = (struct memptrace_stats){.stops = m->stops,
                                       .syscalls = m->syscalls,
                                       .calls = m->calls,
                                       .stopped_share = m->max_share,
                                       .budget_spent = m->spent};
    }
    free(m);
    return rc;
}
