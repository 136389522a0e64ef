/* sidecar/tracee.c - the threads of one process under ptrace for one
 * capture; see tracee.h for the contract.
 *
 * Threads are kept as an array of pointers: an event handler may add a
 * thread (clone) or drop one (exit) while a caller holds another's pointer;
 * callers look a thread up by tid again after anything that waits. */
#include "tracee.h"

#include "clock.h"
#include "errbuf.h"
#include "fsread.h"
#include "procparse.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ATTACH_PASSES 16
#define TRACEE_NICE (-10)                         /* during a capture, when allowed */

void tracee_init(struct tracee_set *s, int pid, unsigned options, int resume_req,
                 const struct tracee_ops *ops, int *target_status)
{
    memset(s, 0, sizeof *s);
    s->pid = pid;
    /* the tracer is the thread that seizes: TracerPid names its tid, which
     * is not getpid() when the caller is a worker thread (the daemon) */
    s->self = (int)syscall(SYS_gettid);
    s->options = options;
    s->resume_req = resume_req;
    if (ops)
        s->ops = *ops;
    if (s->ops.thread_size < sizeof(struct tracee_thread))
        s->ops.thread_size = sizeof(struct tracee_thread);
    s->target_status = target_status;
    sigemptyset(&s->chld); /* blocked by tracee_on_thread, for this thread too */
    sigaddset(&s->chld, SIGCHLD);
}

static void timer_teardown(struct tracee_set *s)
{
    if (!s->have_timer)
        return;
    timer_delete(s->timer);
    sigaction(TRACEE_TIMER_SIGNAL, &s->timer_old, NULL);
    s->have_timer = false;
}

void tracee_fini(struct tracee_set *s)
{
    timer_teardown(s);
    while (s->nthr > 0)
        tracee_drop(s, s->thr[0]->tid);
    free(s->thr);
    s->thr = NULL;
    free(s->forks);
    s->forks = NULL;
    free(s->skipped);
    s->skipped = NULL;
    free(s->early);
    s->early = NULL;
}

int tracee_tracer_of(int pid, int tid)
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

bool tracee_is_zombie(const struct tracee_thread *t)
{
    return t->state == 'Z' || t->state == 'X';
}

struct tracee_thread *tracee_find(const struct tracee_set *s, int tid)
{
    for (size_t i = 0; i < s->nthr; i++) {
        if (s->thr[i]->tid == tid)
            return s->thr[i];
    }
    return NULL;
}

struct tracee_thread *tracee_add(struct tracee_set *s, int tid, bool started)
{
    if (s->nthr == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->thr = xreallocarray(s->thr, s->cap, sizeof *s->thr);
    }
    struct tracee_thread *t = xcalloc(1, s->ops.thread_size);
    t->tid = tid;
    t->started = started;
    t->state = '?';
    s->thr[s->nthr++] = t;
    if (s->ops.added)
        s->ops.added(s->ops.ctx, t);
    return t;
}

void tracee_drop(struct tracee_set *s, int tid)
{
    for (size_t i = 0; i < s->nthr; i++) {
        struct tracee_thread *t = s->thr[i];
        if (t->tid != tid)
            continue;
        if (s->ops.dropped)
            s->ops.dropped(s->ops.ctx, t);
        free(t);
        s->thr[i] = s->thr[--s->nthr];
        return;
    }
}

void tracee_read_states(struct tracee_set *s)
{
    for (size_t i = 0; i < s->nthr; i++) {
        struct tracee_thread *t = s->thr[i];
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", s->pid, t->tid);
        ssize_t n = fsread(path, buf, sizeof buf);
        struct proc_stat st;
        if (n > 0 && procparse_stat(buf, (size_t)n, &st) == 0)
            t->state = st.state;
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

void tracee_resume(struct tracee_set *s, struct tracee_thread *t)
{
    if (!t->stopped)
        return;
    if (t->group_stop)
        ptrace(PTRACE_LISTEN, t->tid, NULL, NULL); /* someone stopped it: it stays stopped */
    else
        ptrace((enum __ptrace_request)s->resume_req, t->tid, NULL, (void *)(long)t->pending_sig);
    /* ESRCH: it died meanwhile; its exit is collected by a wait */
    t->stopped = false;
    t->group_stop = false;
    t->syscall_stop = false;
    t->pending_sig = 0;
}

static bool is_target_thread(const struct tracee_set *s, int tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d", s->pid, tid);
    return access(path, F_OK) == 0;
}

void tracee_on_status(struct tracee_set *s, int tid, int status)
{
    struct tracee_thread *t = tracee_find(s, tid);
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        if (tid == s->pid) {
            s->gone = true;
            if (s->target_status)
                *s->target_status = status;
        }
        if (t)
            tracee_drop(s, tid);
        list_del(s->forks, &s->nforks, tid);
        return;
    }
    if (!WIFSTOPPED(status))
        return;
    int sig = WSTOPSIG(status), event = status >> 16;
    if (!t) {
        if (!list_has(s->forks, s->nforks, tid) && is_target_thread(s, tid)) {
            t = tracee_add(s, tid, false); /* a new thread whose clone event is still queued */
        } else {
            /* a fork's child in its first stop: it is not ours to trace */
            ptrace(PTRACE_DETACH, tid, NULL, NULL);
            list_del(s->forks, &s->nforks, tid);
            list_add(&s->early, &s->nearly, tid); /* its fork event may still come */
            return;
        }
    }
    t->stopped = true;
    t->group_stop = false;
    t->syscall_stop = false;
    t->pending_sig = 0;
    /* Any ptrace-stop ends a pending PTRACE_INTERRUPT: the kernel clears
     * the STOP trap at every trap (ptrace_stop: "any trap clears pending
     * STOP trap"). Waiting on for the interrupt's own stop after a clone
     * event would wait for a stop that never comes. */
    t->interrupted = false;
    unsigned long msg = 0;
    switch (event) {
    case PTRACE_EVENT_CLONE:
        if (ptrace(PTRACE_GETEVENTMSG, tid, NULL, &msg) == 0 && !tracee_find(s, (int)msg))
            tracee_add(s, (int)msg, false);
        break;
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK:
        if (ptrace(PTRACE_GETEVENTMSG, tid, NULL, &msg) == 0) {
            s->forked = true;
            s->fork_child = (int)msg;
            if (!list_has(s->early, s->nearly, (int)msg))
                list_add(&s->forks, &s->nforks, (int)msg);
        }
        break;
    case PTRACE_EVENT_EXEC:
        s->execed = true;
        break;
    case PTRACE_EVENT_STOP:
        /* our interrupt, or a new thread's first stop, or job control */
        t->group_stop = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
        t->started = true;
        break;
    case 0:
        /* with PTRACE_O_TRACESYSGOOD a system call's stop is SIGTRAP | 0x80,
         * never a signal: passing it on would be refused (EIO) */
        if (sig == (SIGTRAP | 0x80) && (s->options & PTRACE_O_TRACESYSGOOD))
            t->syscall_stop = true;
        else
            t->pending_sig = sig; /* a signal on its way to the target: passed on at resume */
        break;
    default:
        break;
    }
}

static bool relevant(const struct tracee_set *s, int pid)
{
    if (tracee_find(s, pid) || list_has(s->forks, s->nforks, pid) || is_target_thread(s, pid))
        return true;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    ssize_t n = fsread(path, buf, sizeof buf);
    struct proc_status st;
    return n > 0 && procparse_status(buf, (size_t)n, &st) == 0 && st.tracer_pid == s->self;
}

bool tracee_poll_one(struct tracee_set *s, int tid, bool resume_it)
{
    int st;
    pid_t r;
    do
        r = waitpid(tid, &st, __WALL | WNOHANG);
    while (r == -1 && errno == EINTR);
    if (r == tid) {
        tracee_on_status(s, tid, st);
        struct tracee_thread *t = tracee_find(s, tid);
        if (t && resume_it) {
            if (s->ops.stopped)
                s->ops.stopped(s->ops.ctx, t);
            else
                tracee_resume(s, t);
        }
        return true;
    }
    if (r == -1 && errno == ECHILD) {
        /* not traced by us any more: gone through an exec of another thread */
        if (tracee_find(s, tid)) {
            tracee_drop(s, tid);
            if (tid == s->pid)
                s->gone = true;
        }
        list_del(s->forks, &s->nforks, tid);
    }
    return false;
}

/* A WNOWAIT peek first, so a child of the caller that is not ours stays
 * for the caller to reap; when one is in the way, ask each tracee. */
void tracee_drain(struct tracee_set *s, bool resume_all)
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
        if (!relevant(s, si.si_pid)) {
            for (size_t i = 0; i < s->nthr;) {
                int tid = s->thr[i]->tid;
                tracee_poll_one(s, tid, resume_all);
                if (i < s->nthr && s->thr[i]->tid == tid)
                    i++;
            }
            for (size_t i = 0; i < s->nforks; i++)
                tracee_poll_one(s, s->forks[i], false);
            return;
        }
        if (!tracee_poll_one(s, si.si_pid, resume_all))
            return;
    }
}

void tracee_wait_event(struct tracee_set *s, int64_t deadline)
{
    int64_t left = deadline - clock_mono_ns();
    if (left <= 0)
        return;
    struct timespec ts = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
    sigtimedwait(&s->chld, NULL, &ts); /* SIGCHLD, a timeout, or EINTR from a stop signal */
}

void tracee_nap(struct tracee_set *s, int64_t deadline)
{
    int64_t soon = clock_mono_ns() + TRACEE_NAP_NS;
    tracee_wait_event(s, deadline < soon ? deadline : soon);
}

/* ---- attach ---- */

int tracee_attach_all(struct tracee_set *s, struct profile *p, char *err, size_t errlen)
{
    char path[64];
    size_t eperm = 0, traced = 0;
    int other_tracer = 0;
    int list_err = 0;
    snprintf(path, sizeof path, "/proc/%d/task", s->pid);
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
            if (tracee_find(s, tid) || list_has(s->skipped, s->nskipped, tid))
                continue;
            if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(long)s->options) == 0) {
                tracee_add(s, tid, true);
                added++;
                continue;
            }
            int saved = errno;
            if (saved == ESRCH)
                continue; /* exited meanwhile */
            int tracer = tracee_tracer_of(s->pid, tid);
            if (tracer == s->self) {
                tracee_add(s, tid, false); /* followed by TRACECLONE already */
                continue;
            }
            if (tracer > 0) {
                traced++;
                other_tracer = tracer;
            } else {
                eperm++;
            }
            list_add(&s->skipped, &s->nskipped, tid);
        }
        closedir(d);
        tracee_drain(s, true);
        if (added == 0)
            break;
    }
    if (s->nthr > 0 && !s->gone) {
        p->threads_skipped = (uint32_t)(eperm + traced);
        if (traced)
            profile_note(p, "%zu thread(s) skipped: already traced by pid %d (a debugger?)",
                         traced, other_tracer);
        if (eperm)
            profile_note(p, "%zu thread(s) skipped: no permission to trace them", eperm);
        return 0;
    }
    if (traced) {
        errbuf_set(err, errlen, "pid %d is already traced by pid %d (a debugger?); not attaching",
                   s->pid, other_tracer);
        return -EBUSY;
    }
    if (eperm) {
        errbuf_set(err, errlen,
                   "no permission to trace pid %d: ptrace needs the same user and a dumpable "
                   "target, or CAP_SYS_PTRACE (and Yama ptrace_scope allowing it)",
                   s->pid);
        return -EPERM;
    }
    if (list_err && list_err != ENOENT) {
        errbuf_set(err, errlen, "cannot list %s: %s", path, strerror(list_err));
        return -list_err;
    }
    errbuf_set(err, errlen, "pid %d is gone", s->pid);
    return -ESRCH;
}

/* ---- detach ---- */

/* A group-stopped thread stays stopped: someone else stopped it. New
 * threads cloned meanwhile are in the list and go too. Every thread is
 * asked to stop first and each is detached as its stop comes: one that
 * does not stop (uninterruptible sleep) must not keep the others waiting
 * past the deadline, and so stopped. */
void tracee_detach_all(struct tracee_set *s, struct profile *p)
{
    int64_t deadline = clock_mono_ns() + TRACEE_DETACH_TIMEOUT_NS;
    for (;;) {
        size_t waiting = 0;
        for (size_t i = 0; i < s->nthr;) {
            struct tracee_thread *t = s->thr[i];
            if (t->stopped) {
                int sig = t->group_stop ? 0 : t->pending_sig;
                ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)sig);
                tracee_drop(s, t->tid); /* moves the last one here */
                continue;
            }
            /* a zombie leader waits for its group: its exit is reported later */
            if (!tracee_is_zombie(t) && !t->interrupted) {
                if (ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL) == 0 || errno == ESRCH)
                    t->interrupted = true; /* ESRCH: exiting; a wait collects it */
            }
            waiting += !tracee_is_zombie(t) && t->interrupted;
            i++;
        }
        if (waiting == 0 || clock_mono_ns() >= deadline)
            break;
        tracee_nap(s, deadline);
        tracee_drain(s, false);
    }
    for (size_t i = 0; i < s->nforks; i++) {
        int child = s->forks[i], st;
        int64_t until = clock_mono_ns() + 100LL * 1000000LL;
        while (clock_mono_ns() < until) {
            pid_t r = waitpid(child, &st, __WALL | WNOHANG);
            if (r == child || (r == -1 && errno != EINTR))
                break;
            tracee_nap(s, until);
        }
        ptrace(PTRACE_DETACH, child, NULL, NULL);
    }
    s->nforks = 0;
    size_t stuck = 0;
    for (size_t i = 0; i < s->nthr; i++)
        stuck += !tracee_is_zombie(s->thr[i]);
    if (stuck)
        profile_note(p,
                     "%zu thread(s) did not stop to be detached within %llds (uninterruptible "
                     "sleep): released when the capture ended, they run on once they wake",
                     stuck, (long long)(TRACEE_DETACH_TIMEOUT_NS / 1000000000LL));
    while (s->nthr > 0)
        tracee_drop(s, s->thr[0]->tid);
}

/* ---- the timer ---- */

static void on_timer(int sig)
{
    (void)sig; /* only to end a blocking waitpid with EINTR */
}

/* A timer signal for this thread, so that waiting for a stop can block in
 * waitpid (the stop reaches us directly, tens of microseconds sooner than
 * through SIGCHLD) and still give up on a thread that went into
 * uninterruptible sleep. */
void tracee_timer_setup(struct tracee_set *s)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_timer;
    sigemptyset(&sa.sa_mask);
    if (sigaction(TRACEE_TIMER_SIGNAL, &sa, &s->timer_old) == -1)
        return;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = TRACEE_TIMER_SIGNAL;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &s->timer) == -1) {
        sigaction(TRACEE_TIMER_SIGNAL, &s->timer_old, NULL);
        return;
    }
    s->have_timer = true;
}

void tracee_timer_arm(struct tracee_set *s, int64_t ns, int64_t period_ns)
{
    if (!s->have_timer)
        return;
    struct itimerspec it = {.it_value = {.tv_sec = ns / 1000000000LL,
                                         .tv_nsec = ns % 1000000000LL}};
    if (ns > 0) {
        it.it_interval.tv_sec = period_ns / 1000000000LL;
        it.it_interval.tv_nsec = period_ns % 1000000000LL;
    }
    timer_settime(s->timer, 0, &it, NULL);
}

/* ---- the capture's thread ---- */

bool tracee_nice_up(int *old)
{
    pid_t self = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int v = getpriority(PRIO_PROCESS, (id_t)self);
    if (errno != 0 || v <= TRACEE_NICE || setpriority(PRIO_PROCESS, (id_t)self, TRACEE_NICE) != 0)
        return false;
    *old = v;
    return true;
}

void tracee_nice_restore(bool done, int old)
{
    if (done)
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), old);
}

/* A tracee is bound to the thread that seized it, and the kernel releases
 * whatever a thread still traces when that thread exits (exit_ptrace:
 * pending interrupts cleared, stopped tracees woken). A thread that stays
 * in uninterruptible sleep past the detach deadline (vfork, a frozen
 * cgroup, a hung NFS read), or a fork child that never reached its first
 * stop, is thus released at the end of the capture and runs on once it
 * wakes; on the caller's thread, which lives on, it would stop in a tracing
 * stop when it woke and stay there for as long as stakeout runs. */
struct run {
    int (*fn)(void *arg, char *err, size_t errlen);
    void *arg;
    int rc;
    char err[512];
};

static void *run_thread(void *arg)
{
    struct run *r = arg;
    r->rc = r->fn(r->arg, r->err, sizeof r->err);
    return NULL;
}

int tracee_on_thread(int (*fn)(void *arg, char *err, size_t errlen), void *arg, char *err,
                     size_t errlen)
{
    /* SIGCHLD blocked here too: the capture thread inherits the mask, and
     * the caller is no more likely than it was to take a tracee's SIGCHLD
     * meant to wake the capture */
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, &old);
    struct run r = {.fn = fn, .arg = arg};
    pthread_t th;
    int rc;
    int e = pthread_create(&th, NULL, run_thread, &r);
    if (e != 0) {
        /* never capture on the caller's thread: see struct run */
        errbuf_set(err, errlen, "cannot start the capture's thread: %s", strerror(e));
        rc = -e;
    } else {
        pthread_join(th, NULL);
        rc = r.rc;
        if (rc < 0)
            errbuf_set(err, errlen, "%s", r.err);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
