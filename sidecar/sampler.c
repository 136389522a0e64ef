/* sidecar/sampler.c - one capture: seize every thread, sample their stacks
 * one thread at a time, detach; see sampler.h for the contract.
 *
 * Shape of a capture, each step undone in reverse order on every path:
 *   1. refuse a target that is traced already, or near its memory limit;
 *   2. symbols_snapshot (the target runs);
 *   3. SIGCHLD is blocked (tracee events wake us through sigtimedwait);
 *   4. stackwalk_new: the libunwind address space, once;
 *   5. PTRACE_SEIZE every thread of /proc/PID/task until no new one shows;
 *   6. ticks: read each thread's stat, pick threads (running ones in CPU
 *      mode, all in wall mode), and for each: PTRACE_INTERRUPT, wait for
 *      its stop, copy its registers and live stack (stackwalk_snapshot),
 *      PTRACE_CONT, then unwind the copy to instruction addresses while it
 *      runs (no names: symbols.h names them after the capture); between
 *      ticks, pass on the target's signals and follow its clones and exits;
 *   7. detach every thread: interrupt them all, PTRACE_DETACH each as its
 *      stop comes (handing back a signal it was about to receive);
 *   8. symbols_snapshot again if the target lives; the capture's thread
 *      exits, releasing whatever did not stop in 7.
 * If stakeout dies anywhere in 5-7, the kernel detaches the tracees and
 * resumes them: PTRACE_SEIZE never sent a SIGSTOP, and without
 * PTRACE_O_EXITKILL nothing is killed.
 *
 * Threads are kept as an array of pointers: an event handler may add a
 * thread (clone) or drop one (exit) while a caller holds another's pointer;
 * callers look a thread up by tid again after anything that waits. */
#include "sampler.h"

#include "cgroup.h"
#include "clock.h"
#include "errbuf.h"
#include "fsread.h"
#include "procparse.h"
#include "stackwalk.h"
#include "symbols.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEIZE_OPTIONS                                                                             \
    (PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC)
#define STOP_LATE_NS (2LL * 1000000LL)           /* a running thread stops in microseconds */
#define DETACH_TIMEOUT_NS (3LL * 1000000000LL)   /* for all threads together */
#define NAP_NS (1000000LL)                        /* longest sleep of a polling wait */
#define STOP_SPIN_NS (150LL * 1000LL)             /* see spin_for_stop */
#define CHECK_INTERVAL_NS (200LL * 1000000LL)    /* tracer, cgroup memory */
#define GOVERNOR_WINDOW_NS (500LL * 1000000LL)
#define DEFAULT_DSTATE_NS (1000LL * 1000000LL)
#define DEFAULT_MEM_PCT 95.0
#define ATTACH_PASSES 16
#define SAMPLER_NICE (-10)                        /* during a capture, when allowed */
#define SAMPLER_TIMER_SIGNAL (SIGRTMAX - 1)        /* see sampler.h */

struct thr {
    int tid;
    int stat_fd;                   /* /proc/PID/task/TID/stat, -1: read by path (see add_thr) */
    bool started;                  /* running under us (a new clone: after its first stop) */
    bool stopped;                  /* in a ptrace-stop we have not ended yet */
    bool group_stop;               /* that stop is job control: resume with PTRACE_LISTEN */
    bool interrupted;              /* PTRACE_INTERRUPT sent, its stop not seen yet */
    bool late;                     /* that interrupt is a sample's: take it at the stop */
    int64_t late_tick_ns;          /* the tick it belongs to */
    bool named;
    int pending_sig;               /* signal-delivery-stop: the signal to pass on */
    char state;                    /* from stat at the last tick */
    uint64_t ticks;                /* utime + stime at the last tick */
    uint64_t cpu_acc;              /* ticks since its last sample: the CPU-mode rank */
    int64_t d_since;               /* first tick of its current D state, 0 */
    struct stackwalk_thread *swt;  /* owned, created at its first sample */
};

struct capture {
    const struct sampler_opts *o;
    struct profile *p;             /* owned until returned */
    struct stackwalk *sw;          /* owned */
    int pid;
    pid_t self;
    sigset_t chld;

    struct thr **thr;              /* owned, with every element */
    size_t nthr, cap;
    int *forks;                    /* auto-attached children of forks, to detach */
    size_t nforks;
    int *skipped;                  /* tids that could not be attached */
    size_t nskipped;
    int *early;                    /* fork children detached before their fork event */
    size_t nearly;

    bool gone, execed, forked, abort;
    int fork_child;
    char abort_why[160];

    unsigned rate;
    int64_t interval_ns;           /* mean gap between ticks; see next_gap */
    uint64_t rng;                  /* xorshift64* state for the gaps */
    int64_t start_ns;
    uint64_t ticks, samples;
    int64_t win_start_ns, win_stopped_ns;
    uint64_t win_ticks, win_samples;
    int64_t max_stop_ns;
    uint64_t dstate_skips, late_samples;

    bool have_timer;               /* bounds the blocking wait for a stop */
    bool timer_armed;
    timer_t timer;
    struct sigaction timer_old;

    bool have_cgroup;
    struct cgroup_loc cg;
    struct cgroup_sample cgs;
    int64_t next_check_ns;

    uint64_t ips[SAMPLER_MAX_FRAMES];
};

/* TracerPid of a process or thread, or a negative errno when its status
 * cannot be read (-ENOENT: gone; -EMFILE and the like: we cannot tell). */
static int tracer_of(int pid, int tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
    ssize_t n = fsread(path, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    struct proc_status st;
    if (procparse_status(buf, (size_t)n, &st) < 0)
        return -EINVAL;
    return st.tracer_pid;
}

/* ---- the thread table ---- */

static bool is_zombie(const struct thr *t)
{
    return t->state == 'Z' || t->state == 'X';
}


static struct thr *find_thr(struct capture *c, int tid)
{
    for (size_t i = 0; i < c->nthr; i++) {
        if (c->thr[i]->tid == tid)
            return c->thr[i];
    }
    return NULL;
}

/* Stat descriptors kept open for a capture: reading one again is a pread,
 * where a thread without one costs an open and a close at each tick. Enough
 * for most services' threads; a target of thousands of threads must not
 * take the descriptors the daemon needs (polls, HTTP, deliveries). */
#define STAT_FDS_MAX 128

static struct thr *add_thr(struct capture *c, int tid, bool started)
{
    if (c->nthr == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->thr = xreallocarray(c->thr, c->cap, sizeof *c->thr);
    }
    struct thr *t = xcalloc(1, sizeof *t);
    t->tid = tid;
    t->started = started;
    t->state = '?';
    t->stat_fd = -1;
    /* Only while the table is small: every open descriptor belongs to a
     * thread in the table, so at most STAT_FDS_MAX are ever open, however
     * threads come and go. A failed open (the limit) is read by path too. */
    if (c->nthr < STAT_FDS_MAX) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", c->pid, tid);
        t->stat_fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    c->thr[c->nthr++] = t;
    return t;
}

static void drop_thr(struct capture *c, int tid)
{
    for (size_t i = 0; i < c->nthr; i++) {
        struct thr *t = c->thr[i];
        if (t->tid != tid)
            continue;
        if (t->stat_fd >= 0)
            close(t->stat_fd);
        stackwalk_thread_free(t->swt);
        free(t);
        c->thr[i] = c->thr[--c->nthr];
        return;
    }
}

static bool list_has(const int *v, size_t n, int x)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i] == x)
            return true;
    }
    return false;
}

static void list_add(int **v, size_t *n, int x)
{
    if (list_has(*v, *n, x))
        return;
    *v = xreallocarray(*v, *n + 1, sizeof **v);
    (*v)[(*n)++] = x;
}

static void list_del(int *v, size_t *n, int x)
{
    for (size_t i = 0; i < *n; i++) {
        if (v[i] == x) {
            v[i] = v[--*n];
            return;
        }
    }
}

/* ---- tracee events ---- */

static void resume(struct thr *t)
{
    if (!t->stopped)
        return;
    if (t->group_stop)
        ptrace(PTRACE_LISTEN, t->tid, NULL, NULL); /* someone stopped it: it stays stopped */
    else
        ptrace(PTRACE_CONT, t->tid, NULL, (void *)(long)t->pending_sig);
    /* ESRCH: it died meanwhile; its exit is collected by a wait */
    t->stopped = false;
    t->group_stop = false;
    t->pending_sig = 0;
}

static bool is_target_thread(const struct capture *c, int tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d", c->pid, tid);
    return access(path, F_OK) == 0;
}

/* Record what waitpid said about tid. A thread left stopped here is resumed
 * (or detached) by the caller: the sampling path may want it stopped. */
static void on_status(struct capture *c, int tid, int status)
{
    struct thr *t = find_thr(c, tid);
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        if (tid == c->pid) {
            c->gone = true;
            if (c->o->target_status)
                *c->o->target_status = status;
        }
        if (t)
            drop_thr(c, tid);
        list_del(c->forks, &c->nforks, tid);
        return;
    }
    if (!WIFSTOPPED(status))
        return;
    int sig = WSTOPSIG(status), event = status >> 16;
    if (!t) {
        if (!list_has(c->forks, c->nforks, tid) && is_target_thread(c, tid)) {
            t = add_thr(c, tid, false); /* a new thread whose clone event is still queued */
        } else {
            /* a fork's child in its first stop: it is not ours to trace */
            ptrace(PTRACE_DETACH, tid, NULL, NULL);
            list_del(c->forks, &c->nforks, tid);
            list_add(&c->early, &c->nearly, tid); /* its fork event may still come */
            return;
        }
    }
    t->stopped = true;
    t->group_stop = false;
    t->pending_sig = 0;
    /* Any ptrace-stop ends a pending PTRACE_INTERRUPT: the kernel clears
     * the STOP trap at every trap (ptrace_stop: "any trap clears pending
     * STOP trap"). Waiting on for the interrupt's own stop after a clone
     * event would wait for a stop that never comes. */
    t->interrupted = false;
    unsigned long msg = 0;
    switch (event) {
    case PTRACE_EVENT_CLONE:
        if (ptrace(PTRACE_GETEVENTMSG, tid, NULL, &msg) == 0 && !find_thr(c, (int)msg))
            add_thr(c, (int)msg, false);
        break;
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK:
        if (ptrace(PTRACE_GETEVENTMSG, tid, NULL, &msg) == 0) {
            c->forked = true;
            c->fork_child = (int)msg;
            if (!list_has(c->early, c->nearly, (int)msg))
                list_add(&c->forks, &c->nforks, (int)msg);
        }
        break;
    case PTRACE_EVENT_EXEC:
        c->execed = true;
        break;
    case PTRACE_EVENT_STOP:
        /* our interrupt, or a new thread's first stop, or job control */
        t->group_stop = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
        t->started = true;
        break;
    case 0:
        t->pending_sig = sig; /* a signal on its way to the target: passed on at resume */
        break;
    default:
        break;
    }
}

static bool relevant(struct capture *c, int pid)
{
    if (find_thr(c, pid) || list_has(c->forks, c->nforks, pid) || is_target_thread(c, pid))
        return true;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    ssize_t n = fsread(path, buf, sizeof buf);
    struct proc_status st;
    return n > 0 && procparse_status(buf, (size_t)n, &st) == 0 && st.tracer_pid == c->self;
}

static void take_sample(struct capture *c, struct thr *t, int64_t t_ns, int64_t since_ns);

/* Resume t, or, when it stopped for a sample taken late, take it (which
 * resumes it). */
static void resume_or_sample(struct capture *c, struct thr *t)
{
    if (t->late && t->stopped && !t->interrupted) {
        t->late = false;
        if (!t->group_stop && !c->execed) { /* after an exec the stack is another program's */
            c->late_samples++;
            take_sample(c, t, t->late_tick_ns, clock_mono_ns());
            return;
        }
    }
    resume(t);
}

/* Collect one event of tid, if any; true when there was one. */
static bool poll_one(struct capture *c, int tid, bool resume_it)
{
    int st;
    pid_t r;
    do
        r = waitpid(tid, &st, __WALL | WNOHANG);
    while (r == -1 && errno == EINTR);
    if (r == tid) {
        on_status(c, tid, st);
        struct thr *t = find_thr(c, tid);
        if (t && resume_it)
            resume_or_sample(c, t);
        return true;
    }
    if (r == -1 && errno == ECHILD) {
        /* not traced by us any more: gone through an exec of another thread */
        if (find_thr(c, tid)) {
            drop_thr(c, tid);
            if (tid == c->pid)
                c->gone = true;
        }
        list_del(c->forks, &c->nforks, tid);
    }
    return false;
}

/* Handle every event pending for our tracees, resuming whatever stopped
 * when resume_all is set (else leaving it stopped for the caller: the
 * detach). A WNOWAIT peek first, so a child of the caller that is not ours
 * stays for the caller to reap; when one is in the way, ask each tracee. */
static void drain_events(struct capture *c, bool resume_all)
{
    for (int guard = 0; guard < 100000; guard++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL) == -1) {
            if (errno == EINTR)
                continue;
            return; /* ECHILD: nothing at all to wait for */
        }
        if (si.si_pid == 0)
            return;
        if (!relevant(c, si.si_pid)) {
            for (size_t i = 0; i < c->nthr;) {
                int tid = c->thr[i]->tid;
                poll_one(c, tid, resume_all);
                if (i < c->nthr && c->thr[i]->tid == tid)
                    i++;
            }
            for (size_t i = 0; i < c->nforks; i++)
                poll_one(c, c->forks[i], false);
            return;
        }
        if (!poll_one(c, si.si_pid, resume_all))
            return;
    }
}

static void drain(struct capture *c)
{
    drain_events(c, true);
}

/* Sleep until deadline or a tracee event, whichever comes first. */
static void wait_event(struct capture *c, int64_t deadline)
{
    int64_t left = deadline - clock_mono_ns();
    if (left <= 0)
        return;
    struct timespec ts = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
    sigtimedwait(&c->chld, NULL, &ts); /* SIGCHLD, a timeout, or EINTR from a stop signal */
}

static void on_timer(int sig)
{
    (void)sig; /* only to end a blocking waitpid with EINTR */
}

/* A timer signal for this thread, so that waiting for a stop can
 * block in waitpid (the stop reaches us directly, tens of microseconds
 * sooner than through SIGCHLD) and still give up on a thread that went
 * into uninterruptible sleep. Without it, waits poll with SIGCHLD. */
static void timer_setup(struct capture *c)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_timer;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SAMPLER_TIMER_SIGNAL, &sa, &c->timer_old) == -1)
        return;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SAMPLER_TIMER_SIGNAL;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &c->timer) == -1) {
        sigaction(SAMPLER_TIMER_SIGNAL, &c->timer_old, NULL);
        return;
    }
    c->have_timer = true;
}

static void timer_teardown(struct capture *c)
{
    if (!c->have_timer)
        return;
    timer_delete(c->timer);
    sigaction(SAMPLER_TIMER_SIGNAL, &c->timer_old, NULL);
    c->have_timer = false;
}

/* Arm the timer to fire in ns (0 disarms). It repeats every NAP_NS after
 * that: an expiry that lands while we are not blocked in waitpid (handling
 * another stop of the thread) interrupts nothing, and a one-shot timer
 * would leave the next waitpid blocked for as long as the thread runs. */
static void timer_arm(struct capture *c, int64_t ns)
{
    struct itimerspec it = {.it_value = {.tv_sec = ns / 1000000000LL,
                                         .tv_nsec = ns % 1000000000LL}};
    if (ns > 0)
        it.it_interval.tv_nsec = NAP_NS;
    timer_settime(c->timer, 0, &it, NULL);
}

static void disarm(struct capture *c)
{
    if (c->timer_armed) {
        timer_arm(c, 0);
        c->timer_armed = false;
    }
}

/* wait_event for loops that poll one thread: SIGCHLD goes to the process,
 * and when the capture runs on a worker thread another thread may take it,
 * so never sleep more than a millisecond on it. */
static void nap(struct capture *c, int64_t deadline)
{
    int64_t soon = clock_mono_ns() + NAP_NS;
    wait_event(c, deadline < soon ? deadline : soon);
}

/* A running thread takes PTRACE_INTERRUPT within microseconds. Blocking
 * for it lets this CPU go idle, and waking an idle CPU again (a halted vCPU
 * in a VM above all) costs hundreds of microseconds, every one of them with
 * the target stopped: ask without blocking for a moment first. Whatever
 * status comes is handled as the blocking wait would. */
static void spin_for_stop(struct capture *c, int tid)
{
    int64_t until = clock_mono_ns() + STOP_SPIN_NS;
    do {
        int st;
        pid_t r = waitpid(tid, &st, __WALL | WNOHANG);
        if (r == tid) {
            on_status(c, tid, st);
            return;
        }
        if (r != 0)
            return; /* ECHILD and the like: the wait below sorts it out */
    } while (clock_mono_ns() < until);
}

/* Wait until tid, sent PTRACE_INTERRUPT while running, stops. Any stop
 * will do: a signal or clone stop on the way ends the interrupt too (see
 * on_status). Returns true with the thread stopped, false when it exited
 * or did not stop in time (its interrupt stays pending; the caller marks
 * it late and drain takes the sample at the stop). */
static bool wait_stop(struct capture *c, int tid, int64_t deadline)
{
    spin_for_stop(c, tid);
    if (c->have_timer) {
        bool own = !c->timer_armed; /* sample_one arms it before the interrupt */
        if (own) {
            int64_t left = deadline - clock_mono_ns();
            timer_arm(c, left > 0 ? left : 1); /* 0 would disarm it */
        }
        bool stopped = false;
        for (;;) {
            struct thr *t = find_thr(c, tid);
            if (!t)
                break;
            if (t->stopped) {
                stopped = true;
                break;
            }
            int st;
            pid_t r = waitpid(tid, &st, __WALL);
            if (r == tid) {
                on_status(c, tid, st);
                continue;
            }
            if (r == -1 && errno == EINTR && clock_mono_ns() < deadline)
                continue;
            if (r == -1 && errno == ECHILD)
                poll_one(c, tid, false); /* gone: drops it */
            break;
        }
        if (own)
            timer_arm(c, 0);
        return stopped;
    }
    for (;;) {
        struct thr *t = find_thr(c, tid);
        if (!t)
            return false;
        if (t->stopped)
            return true;
        if (poll_one(c, tid, false))
            continue;
        if (!find_thr(c, tid))
            return false;
        if (clock_mono_ns() >= deadline)
            return false;
        nap(c, deadline);
    }
}

/* ---- attach ---- */

/* Seize every thread listed in /proc/PID/task, again until a pass finds no
 * new one (threads start while we attach). */
static int attach_all(struct capture *c, char *err, size_t errlen)
{
    char path[64];
    size_t eperm = 0, traced = 0;
    int other_tracer = 0;
    int list_err = 0;
    snprintf(path, sizeof path, "/proc/%d/task", c->pid);
    for (int pass = 0; pass < ATTACH_PASSES; pass++) {
        DIR *d = opendir(path);
        if (!d) {
            list_err = errno;
            break;
        }
        size_t added = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char *end;
            long v = strtol(e->d_name, &end, 10);
            if (*end != '\0' || v <= 0 || v > INT_MAX)
                continue;
            int tid = (int)v;
            if (find_thr(c, tid) || list_has(c->skipped, c->nskipped, tid))
                continue;
            if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(long)SEIZE_OPTIONS) == 0) {
                add_thr(c, tid, true);
                added++;
                continue;
            }
            int saved = errno;
            if (saved == ESRCH)
                continue; /* exited meanwhile */
            int tracer = tracer_of(c->pid, tid);
            if (tracer == c->self) {
                add_thr(c, tid, false); /* followed by TRACECLONE already */
                continue;
            }
            if (tracer > 0) {
                traced++;
                other_tracer = tracer;
            } else {
                eperm++;
            }
            list_add(&c->skipped, &c->nskipped, tid);
        }
        closedir(d);
        drain(c);
        if (added == 0)
            break;
    }
    if (c->nthr > 0 && !c->gone) {
        c->p->threads_skipped = (uint32_t)(eperm + traced);
        if (traced)
            profile_note(c->p, "%zu thread(s) skipped: already traced by pid %d (a debugger?)",
                         traced, other_tracer);
        if (eperm)
            profile_note(c->p, "%zu thread(s) skipped: no permission to trace them", eperm);
        return 0;
    }
    if (traced) {
        errbuf_set(err, errlen, "pid %d is already traced by pid %d (a debugger?); not attaching",
                   c->pid, other_tracer);
        return -EBUSY;
    }
    if (eperm) {
        errbuf_set(err, errlen,
                   "no permission to trace pid %d: ptrace needs the same user and a dumpable "
                   "target, or CAP_SYS_PTRACE (and Yama ptrace_scope allowing it)",
                   c->pid);
        return -EPERM;
    }
    if (list_err && list_err != ENOENT) {
        errbuf_set(err, errlen, "cannot list %s: %s", path, strerror(list_err));
        return -list_err;
    }
    errbuf_set(err, errlen, "pid %d is gone", c->pid);
    return -ESRCH;
}

/* ---- detach ---- */

/* Stop each remaining thread and detach it, handing back a signal it was
 * about to receive. A group-stopped thread stays stopped: someone else
 * stopped it. New threads cloned meanwhile are in the list and go too.
 * Every thread is asked to stop first and each is detached as its stop
 * comes: one that does not stop (uninterruptible sleep) must not keep the
 * others waiting past the deadline, and so stopped. What is still traced
 * at the deadline is released when the capture's thread exits (see
 * sampler_capture). */
static void detach_all(struct capture *c)
{
    int64_t deadline = clock_mono_ns() + DETACH_TIMEOUT_NS;
    for (;;) {
        size_t waiting = 0;
        for (size_t i = 0; i < c->nthr;) {
            struct thr *t = c->thr[i];
            if (t->stopped) {
                int sig = t->group_stop ? 0 : t->pending_sig;
                ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)sig);
                drop_thr(c, t->tid); /* moves the last one here */
                continue;
            }
            /* a zombie leader waits for its group: its exit is reported later */
            if (!is_zombie(t) && !t->interrupted) {
                if (ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL) == 0 || errno == ESRCH)
                    t->interrupted = true; /* ESRCH: exiting; a wait collects it */
            }
            waiting += !is_zombie(t) && t->interrupted;
            i++;
        }
        if (waiting == 0 || clock_mono_ns() >= deadline)
            break;
        nap(c, deadline);
        drain_events(c, false);
    }
    for (size_t i = 0; i < c->nforks; i++) {
        int child = c->forks[i], st;
        int64_t until = clock_mono_ns() + 100LL * 1000000LL;
        while (clock_mono_ns() < until) {
            pid_t r = waitpid(child, &st, __WALL | WNOHANG);
            if (r == child || (r == -1 && errno != EINTR))
                break;
            nap(c, until);
        }
        ptrace(PTRACE_DETACH, child, NULL, NULL);
    }
    c->nforks = 0;
    size_t stuck = 0;
    for (size_t i = 0; i < c->nthr; i++)
        stuck += !is_zombie(c->thr[i]);
    if (stuck)
        profile_note(c->p,
                     "%zu thread(s) did not stop to be detached within %llds (uninterruptible "
                     "sleep): released when the capture ended, they run on once they wake",
                     stuck, (long long)(DETACH_TIMEOUT_NS / 1000000000LL));
    while (c->nthr > 0)
        drop_thr(c, c->thr[0]->tid);
}

/* ---- ticks ---- */

/* The state and CPU ticks of t, into t. False when they cannot be read now
 * (an exiting thread, or no descriptor left): the caller skips the thread
 * for this tick. Exits are known from waitpid only, never from a read. */
static bool read_thread_stat(struct capture *c, struct thr *t)
{
    char buf[1024];
    ssize_t n;
    if (t->stat_fd >= 0) {
        do
            n = pread(t->stat_fd, buf, sizeof buf - 1, 0);
        while (n == -1 && errno == EINTR);
    } else {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", c->pid, t->tid);
        n = fsread(path, buf, sizeof buf);
    }
    struct proc_stat st;
    if (n <= 0 || procparse_stat(buf, (size_t)n, &st) < 0)
        return false;
    uint64_t ticks = st.utime + st.stime;
    if (ticks > t->ticks)
        t->cpu_acc += ticks - t->ticks;
    t->ticks = ticks;
    t->state = st.state;
    return true;
}

static void name_thread(struct capture *c, struct thr *t)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/comm", c->pid, t->tid);
    ssize_t n = fsread(path, buf, sizeof buf);
    if (n <= 0)
        return;
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    profile_thread_name(c->p, t->tid, buf);
    t->named = true;
}

/* t is in the stop of our interrupt: copy its registers and stack, resume
 * it, then unwind the copy and add the sample of tick t_ns. The stop is
 * counted from since_ns to the resume. For a sample taken at once since_ns
 * is the interrupt: an upper bound, which also holds the time the thread
 * took to reach the stop (an inter-processor interrupt, or its wait for a
 * CPU on a crowded machine), so the governor errs towards fewer samples.
 * For a late sample it is when the stop was seen. */
static void take_sample(struct capture *c, struct thr *t, int64_t t_ns, int64_t since_ns)
{
    if (!t->swt)
        t->swt = stackwalk_thread_new(c->sw, t->tid);
    bool snapped = stackwalk_snapshot(c->sw, t->swt) == 0;
    resume(t);
    int64_t stop_ns = clock_mono_ns() - since_ns;
    c->p->stopped_ns += stop_ns;
    c->win_stopped_ns += stop_ns;
    if (stop_ns > c->max_stop_ns)
        c->max_stop_ns = stop_ns;
    c->win_samples++;
    c->samples++;
    t->cpu_acc = 0;
    /* the thread runs again: the unwind works on the copy of its stack */
    uint32_t n = snapped ? stackwalk_unwind(c->sw, t->swt, c->ips, SAMPLER_MAX_FRAMES) : 0;
    /* n == 0 is kept as an empty stack and counted in failed_unwinds by the profile */
    profile_add_sample(c->p, c->ips, n, t->tid, t_ns, (uint64_t)c->interval_ns);
    if (!t->named)
        name_thread(c, t);
}

/* Sample one thread: interrupt it, wait for its stop, take the sample. A
 * thread that does not stop within STOP_LATE_NS is not on a CPU (waiting for
 * one, or throttled by its cgroup's quota): waiting longer would keep this
 * loop from the other threads, so its sample is taken when its stop comes,
 * at the next drain, and counts the time stopped from then. */
static void sample_one(struct capture *c, int tid, int64_t t_ns)
{
    /* the timer is set and cleared outside the stop: two syscalls fewer in it */
    if (c->have_timer) {
        timer_arm(c, STOP_LATE_NS);
        c->timer_armed = true;
    }
    int64_t t0 = clock_mono_ns();
    bool stopped = ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) == 0;
    if (stopped) {
        find_thr(c, tid)->interrupted = true;
        stopped = wait_stop(c, tid, t0 + STOP_LATE_NS);
        struct thr *t = find_thr(c, tid);
        if (!stopped && t && t->interrupted) {
            t->late = true;
            t->late_tick_ns = t_ns;
        }
    } /* else ESRCH: it is exiting; a wait collects it */
    if (!stopped) {
        disarm(c);
        return;
    }
    struct thr *t = find_thr(c, tid);
    if (c->execed) {
        resume(t); /* another program now: the capture ends */
        disarm(c);
        return;
    }
    if (t->group_stop && c->o->mode == PROFILE_TYPE_CPU) {
        resume(t); /* stopped by job control: not running */
        disarm(c);
        c->p->idle_samples++;
        return;
    }
    disarm(c);
    take_sample(c, t, t_ns, t0);
}

static int by_cpu_desc(const void *a, const void *b)
{
    const struct thr *x = *(struct thr *const *)a, *y = *(struct thr *const *)b;
    return x->cpu_acc < y->cpu_acc ? 1 : x->cpu_acc > y->cpu_acc ? -1 : 0;
}

static void tick(struct capture *c, int64_t now)
{
    size_t n = c->nthr, picked = 0;
    struct thr **pick = xcalloc(n ? n : 1, sizeof *pick);
    int64_t dstate_limit = c->o->abort_dstate_ns > 0 ? c->o->abort_dstate_ns : DEFAULT_DSTATE_NS;
    for (size_t i = 0; i < n; i++) {
        struct thr *t = c->thr[i];
        if (!t->started || t->stopped)
            continue;
        if (!read_thread_stat(c, t))
            continue;
        /* a late thread is only watched for a long D: its sample is to come */
        if (t->state == 'D') {
            if (t->d_since == 0)
                t->d_since = now;
            else if (now - t->d_since > dstate_limit && !c->abort) {
                c->abort = true;
                snprintf(c->abort_why, sizeof c->abort_why,
                         "thread %d in uninterruptible sleep (D) for over %lld ms", t->tid,
                         (long long)(dstate_limit / 1000000));
            }
            if (t->late)
                continue;
            c->dstate_skips++; /* an interrupt would only land when the sleep ends */
            if (c->o->mode == PROFILE_TYPE_CPU)
                c->p->idle_samples++;
            continue;
        }
        t->d_since = 0;
        if (t->late)
            continue;
        bool running = t->state == 'R';
        bool alive = !is_zombie(t);
        if (c->o->mode == PROFILE_TYPE_CPU ? running : alive)
            pick[picked++] = t;
        else if (c->o->mode == PROFILE_TYPE_CPU)
            c->p->idle_samples++;
    }
    qsort(pick, picked, sizeof *pick, by_cpu_desc);
    int *tids = xcalloc(picked ? picked : 1, sizeof *tids);
    for (size_t i = 0; i < picked; i++)
        tids[i] = pick[i]->tid;
    free(pick);
    for (size_t i = 0; i < picked && !c->gone && !c->execed; i++) {
        if (find_thr(c, tids[i]))
            sample_one(c, tids[i], now);
    }
    free(tids);
    c->ticks++;
    c->win_ticks++;
}

/* Keep the share of time a sampled thread spends stopped under the limit:
 * mean stop times ticks per second, over windows of GOVERNOR_WINDOW_NS.
 * The first window is warm-up (a thread's first stops cost milliseconds
 * here and there) and is not judged. Lowers the rate, never raises it. */
static void governor(struct capture *c, int64_t now)
{
    int64_t win = now - c->win_start_ns;
    if (win < GOVERNOR_WINDOW_NS)
        return;
    bool warmup = c->win_start_ns == c->start_ns;
    if (c->win_samples >= 5 && c->win_ticks > 0) {
        double mean_stop = (double)c->win_stopped_ns / (double)c->win_samples;
        double ticks_per_s = (double)c->win_ticks * 1e9 / (double)win;
        double share = mean_stop * ticks_per_s / 1e9;
        double limit = c->o->max_stopped > 0 ? c->o->max_stopped : SAMPLER_DEFAULT_MAX_STOPPED;
        if (!warmup && share > limit && c->rate > 1) {
            unsigned rate = (unsigned)floor((double)c->rate * limit / share * 0.9);
            if (rate < 1)
                rate = 1;
            if (rate < c->rate) {
                profile_note(c->p,
                             "rate lowered from %u Hz to %u Hz: target threads were stopped "
                             "%.2f%% of the time (limit %.2f%%, %.0f us per stop)",
                             c->rate, rate, share * 100, limit * 100, mean_stop / 1000);
                c->rate = rate;
                c->interval_ns = 1000000000LL / rate;
            }
        }
    }
    c->win_start_ns = now;
    c->win_stopped_ns = 0;
    c->win_ticks = c->win_samples = 0;
}

static bool mem_near_limit(struct capture *c, double *pct)
{
    if (!c->have_cgroup || !c->cgs.have_mem || c->cgs.mem_limit == UINT64_MAX ||
        c->cgs.mem_limit == 0)
        return false;
    double limit = c->o->abort_mem_limit_pct > 0 ? c->o->abort_mem_limit_pct : DEFAULT_MEM_PCT;
    *pct = 100.0 * (double)c->cgs.mem_usage / (double)c->cgs.mem_limit;
    return *pct >= limit;
}

/* Every CHECK_INTERVAL: a second tracer, the cgroup's memory. */
static void checks(struct capture *c, int64_t now)
{
    if (now < c->next_check_ns)
        return;
    c->next_check_ns = now + CHECK_INTERVAL_NS;
    int tracer = tracer_of(c->pid, c->pid);
    if (tracer > 0 && tracer != c->self && !c->abort) {
        c->abort = true;
        snprintf(c->abort_why, sizeof c->abort_why, "another tracer (pid %d) appeared", tracer);
    }
    double pct;
    if (c->have_cgroup && cgroup_read_fast(&c->cg, &c->cgs) == 0 && mem_near_limit(c, &pct) &&
        !c->abort) {
        c->abort = true;
        snprintf(c->abort_why, sizeof c->abort_why,
                 "the target's cgroup memory is at %.1f%% of its limit", pct);
    }
}

/* The gap to the next tick: interval_ns on average, drawn uniformly from
 * [interval/2, 3*interval/2). A fixed period samples anything periodic in
 * the target (a 10 ms timer loop; a round of the test target that fits a
 * tick a whole number of times) in lockstep, at the same few instructions
 * every tick, and the profile is wrong with any number of samples; random
 * gaps see every phase. The mean, so the rate and the weight of a sample,
 * is unchanged. */
static int64_t next_gap(struct capture *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    uint64_t r = (c->rng * 2685821657736338717ULL) >> 11;
    return c->interval_ns / 2 + (int64_t)(r % (uint64_t)c->interval_ns);
}

static void capture_loop(struct capture *c)
{
    const struct sampler_opts *o = c->o;
    int64_t end = o->duration_ns > INT64_MAX - c->start_ns ? INT64_MAX /* "for its life" */
                                                           : c->start_ns + o->duration_ns;
    int64_t next = c->start_ns;
    int64_t next_progress = c->start_ns;
    c->win_start_ns = c->start_ns;
    c->next_check_ns = c->start_ns + CHECK_INTERVAL_NS;
    for (;;) {
        int64_t now = clock_mono_ns();
        if (now >= end || c->gone || c->execed || c->forked || c->abort || c->nthr == 0 ||
            (o->stop && *o->stop))
            break;
        if (now >= next) {
            tick(c, now);
            drain(c);
            next += next_gap(c);
            if (next <= now)
                next = now + next_gap(c); /* behind: skip ticks rather than burst */
            governor(c, now);
            checks(c, now);
            if (o->progress && now >= next_progress) {
                o->progress(o->progress_ctx, now - c->start_ns, c->samples);
                next_progress = now + 100LL * 1000000LL;
            }
            continue;
        }
        wait_event(c, next < end ? next : end);
        drain(c);
    }
}

/* ---- the capture ---- */

static void finish_notes(struct capture *c, int64_t end_ns)
{
    const struct sampler_opts *o = c->o;
    struct profile *p = c->p;
    double at = (double)(end_ns - c->start_ns) / 1e9;
    if (c->gone) {
        p->aborted = true;
        profile_note(p, "target exited after %.2fs: capture ended with the samples so far", at);
    } else if (c->execed) {
        p->aborted = true;
        profile_note(p, "target called exec after %.2fs: capture ended with the samples so far",
                     at);
    } else if (c->forked) {
        p->aborted = true;
        profile_note(p,
                     "target forked (child pid %d) after %.2fs: capture ended with the samples "
                     "so far",
                     c->fork_child, at);
    } else if (c->abort) {
        p->aborted = true;
        profile_note(p, "capture aborted after %.2fs: %s", at, c->abort_why);
    } else if (o->stop && *o->stop) {
        p->aborted = true;
        profile_note(p, "capture ended early on request after %.2fs", at);
    }
    if (c->late_samples)
        profile_note(p,
                     "%llu sample(s) taken late: the thread was waiting for a CPU (or its "
                     "cgroup's CPU quota) and stopped when it next ran",
                     (unsigned long long)c->late_samples);
    if (c->dstate_skips && o->mode == PROFILE_TYPE_WALL)
        profile_note(p, "%llu sample(s) of threads in uninterruptible sleep (D) not unwound",
                     (unsigned long long)c->dstate_skips);
}

static void read_comm(struct capture *c)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/comm", c->pid);
    ssize_t n = fsread(path, buf, sizeof buf);
    if (n <= 0)
        return;
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    snprintf(c->p->comm, sizeof c->p->comm, "%s", buf);
    profile_text_clean(c->p->comm);
}

static int check_opts(const struct sampler_opts *o, char *err, size_t errlen)
{
    if (o->pid <= 0) {
        errbuf_set(err, errlen, "invalid pid %d", o->pid);
        return -EINVAL;
    }
    if (o->mode != PROFILE_TYPE_CPU && o->mode != PROFILE_TYPE_WALL) {
        errbuf_set(err, errlen, "the sampler captures CPU or wall profiles only");
        return -EINVAL;
    }
    if (o->rate_hz < 1 || o->rate_hz > SAMPLER_MAX_RATE_HZ) {
        errbuf_set(err, errlen, "rate %u Hz is outside 1..%u", o->rate_hz, SAMPLER_MAX_RATE_HZ);
        return -EINVAL;
    }
    if (o->duration_ns <= 0) {
        errbuf_set(err, errlen, "the duration must be positive");
        return -EINVAL;
    }
    if (o->pid == getpid()) {
        errbuf_set(err, errlen, "stakeout cannot profile itself");
        return -EINVAL;
    }
    return 0;
}

static int capture_run(const struct sampler_opts *o, struct profile **out, char *err,
                       size_t errlen)
{
    int rc;
    /* the tracer is the thread that seizes: TracerPid names its tid, which
     * is not getpid() when the caller is a worker thread (the daemon) */
    struct capture c = {.o = o, .pid = o->pid, .self = (int)syscall(SYS_gettid),
                        .rate = o->rate_hz};
    c.interval_ns = 1000000000LL / o->rate_hz;
    c.rng = (uint64_t)clock_mono_ns() ^ ((uint64_t)o->pid << 32) ^ 0x9e3779b97f4a7c15ULL;
    if (c.rng == 0) /* xorshift stays at 0 */
        c.rng = 1;

    int leader_tracer = tracer_of(o->pid, o->pid);
    if (leader_tracer == -ENOENT || leader_tracer == -ESRCH) {
        errbuf_set(err, errlen, "pid %d does not exist", o->pid);
        return -ESRCH;
    }
    if (leader_tracer < 0) {
        /* out of descriptors, no access to /proc: not a reason to think it gone */
        errbuf_set(err, errlen, "cannot read /proc/%d/status: %s", o->pid,
                   strerror(-leader_tracer));
        return leader_tracer;
    }
    if (leader_tracer > 0) {
        errbuf_set(err, errlen, "pid %d is already traced by pid %d (a debugger?); not attaching",
                   o->pid, leader_tracer);
        return -EBUSY;
    }

    c.p = profile_new(o->mode, o->rate_hz);
    c.p->pid = o->pid;
    c.p->period_ns = c.interval_ns;
    read_comm(&c);
    c.have_cgroup = cgroup_locate(o->pid, &c.cg) == 0 && cgroup_read(&c.cg, &c.cgs) == 0;
    double pct;
    if (mem_near_limit(&c, &pct)) {
        c.p->aborted = true;
        profile_note(c.p,
                     "capture skipped: the target's cgroup memory is at %.1f%% of its limit",
                     pct);
        c.p->start_wall_ns = clock_wall_ns();
        c.p->start_mono_ns = clock_mono_ns();
        *out = c.p;
        return 0;
    }
    if (o->symbols && symbols_snapshot(o->symbols, o->pid, c.p) < 0)
        profile_note(c.p, "could not read the target's mappings before the capture");

    /* While a target thread is stopped, it waits for this thread to be
     * scheduled: on a busy machine that wait, not the work, is most of the
     * stop. Run ahead of the target for the capture, when allowed
     * (CAP_SYS_NICE); the work done at this priority is a few syscalls per
     * sample. */
    pid_t self_tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int old_nice = getpriority(PRIO_PROCESS, (id_t)self_tid);
    bool reniced = errno == 0 && old_nice > SAMPLER_NICE &&
                   setpriority(PRIO_PROCESS, (id_t)self_tid, SAMPLER_NICE) == 0;

    sigemptyset(&c.chld); /* blocked by sampler_capture, for this thread too */
    sigaddset(&c.chld, SIGCHLD);

    timer_setup(&c);
    rc = stackwalk_new(o->pid, &c.sw, err, errlen);
    if (rc < 0)
        goto out_mask;

    c.p->start_wall_ns = clock_wall_ns();
    c.start_ns = c.p->start_mono_ns = clock_mono_ns();
    rc = attach_all(&c, err, errlen);
    if (rc < 0)
        goto out_detach;

    capture_loop(&c);
    int64_t end = clock_mono_ns();
    c.p->duration_ns = end - c.start_ns;
    c.p->rate_achieved_hz = c.p->duration_ns > 0 ? (double)c.ticks * 1e9 / (double)c.p->duration_ns
                                                 : 0;
    finish_notes(&c, end);

out_detach:
    detach_all(&c);
    stackwalk_free(c.sw);
    c.sw = NULL;
out_mask:
    timer_teardown(&c);
    if (reniced)
        setpriority(PRIO_PROCESS, (id_t)self_tid, old_nice);
    free(c.thr);
    free(c.forks);
    free(c.skipped);
    free(c.early);
    if (rc < 0) {
        profile_free(c.p);
        return rc;
    }
    if (o->symbols && !c.gone && kill(o->pid, 0) == 0 &&
        symbols_snapshot(o->symbols, o->pid, c.p) < 0)
        profile_note(c.p, "could not read the target's mappings after the capture");
    *out = c.p;
    return 0;
}

/* The capture runs on a thread of its own that ends with it. A tracee is
 * bound to the thread that seized it, and the kernel releases whatever a
 * thread still traces when that thread exits (exit_ptrace: pending
 * interrupts cleared, stopped tracees woken). A thread that stays in
 * uninterruptible sleep past the detach deadline (vfork, a frozen cgroup,
 * a hung NFS read), or a fork child that never reached its first stop, is
 * thus released at the end of the capture and runs on once it wakes; on the
 * caller's thread, which lives on, it would stop in a tracing stop when it
 * woke and stay there for as long as stakeout runs. */
struct run {
    const struct sampler_opts *o;
    struct profile *p;
    int rc;
    char err[512];
};

static void *capture_thread(void *arg)
{
    struct run *r = arg;
    r->rc = capture_run(r->o, &r->p, r->err, sizeof r->err);
    return NULL;
}

int sampler_capture(const struct sampler_opts *o, struct profile **out, char *err, size_t errlen)
{
    int rc = check_opts(o, err, errlen);
    if (rc < 0)
        return rc;
    /* SIGCHLD blocked here too, as before: the capture thread inherits the
     * mask, and the caller is no more likely than it was to take a
     * tracee's SIGCHLD meant to wake the capture */
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, &old);
    struct run r = {.o = o};
    pthread_t th;
    int e = pthread_create(&th, NULL, capture_thread, &r);
    if (e != 0) {
        /* never capture on the caller's thread: see struct run */
        errbuf_set(err, errlen, "cannot start the capture's thread: %s", strerror(e));
        rc = -e;
    } else {
        pthread_join(th, NULL);
        rc = r.rc;
        if (rc < 0)
            errbuf_set(err, errlen, "%s", r.err);
        else
            *out = r.p;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
