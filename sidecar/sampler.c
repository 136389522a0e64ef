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
 * The thread table, the events of the tracees, attach and detach are
 * tracee.h's, shared with the memory capture by ptrace; what is here is
 * the sampling. Look a thread up by tid again after anything that waits:
 * an event handler may add a thread (clone) or drop one (exit). */
#include "sampler.h"

#include "cgroup.h"
#include "clock.h"
#include "errbuf.h"
#include "fsread.h"
#include "procparse.h"
#include "stackwalk.h"
#include "symbols.h"
#include "tracee.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEIZE_OPTIONS                                                                             \
    (PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC)
#define STOP_LATE_NS (2LL * 1000000LL)           /* a running thread stops in microseconds */
#define STOP_SPIN_NS (150LL * 1000LL)             /* see spin_for_stop */
#define CHECK_INTERVAL_NS (200LL * 1000000LL)    /* tracer, cgroup memory */
#define GOVERNOR_WINDOW_NS (500LL * 1000000LL)
#define DEFAULT_DSTATE_NS (1000LL * 1000000LL)
#define DEFAULT_MEM_PCT 95.0

/* A traced thread (tracee.h's part first) and what sampling keeps of it. */
struct thr {
    struct tracee_thread tt;
    int stat_fd;                   /* /proc/PID/task/TID/stat, -1: read by path (see on_added) */
    bool late;                     /* an interrupt is a sample's: take it at the stop */
    int64_t late_tick_ns;          /* the tick it belongs to */
    bool named;
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
    struct tracee_set ts;          /* the threads, and what the target did */

    bool abort;
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

    bool timer_armed;              /* the tracee timer bounds the blocking wait for a stop */

    bool have_cgroup;
    struct cgroup_loc cg;
    struct cgroup_sample cgs;
    int64_t next_check_ns;

    uint64_t ips[SAMPLER_MAX_FRAMES];
};

static struct thr *find_thr(struct capture *c, int tid)
{
    return (struct thr *)tracee_find(&c->ts, tid);
}

/* ---- the thread table's hooks ---- */

/* Stat descriptors kept open for a capture: reading one again is a pread,
 * where a thread without one costs an open and a close at each tick. Enough
 * for most services' threads; a target of thousands of threads must not
 * take the descriptors the daemon needs (polls, HTTP, deliveries). */
#define STAT_FDS_MAX 128

static void on_added(void *ctx, struct tracee_thread *tt)
{
    struct capture *c = ctx;
    struct thr *t = (struct thr *)tt;
    t->stat_fd = -1;
    /* Only while the table is small: every open descriptor belongs to a
     * thread in the table, so at most STAT_FDS_MAX are ever open, however
     * threads come and go. A failed open (the limit) is read by path too. */
    if (c->ts.nthr <= STAT_FDS_MAX) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", c->pid, tt->tid);
        t->stat_fd = open(path, O_RDONLY | O_CLOEXEC);
    }
}

static void on_dropped(void *ctx, struct tracee_thread *tt)
{
    (void)ctx;
    struct thr *t = (struct thr *)tt;
    if (t->stat_fd >= 0)
        close(t->stat_fd);
    stackwalk_thread_free(t->swt);
    t->swt = NULL;
}

static void drain(struct capture *c)
{
    tracee_drain(&c->ts, true);
}

static void nap(struct capture *c, int64_t deadline)
{
    tracee_nap(&c->ts, deadline);
}

/* ---- tracee events ---- */

static void take_sample(struct capture *c, struct thr *t, int64_t t_ns, int64_t since_ns);

/* Resume t, or, when it stopped for a sample taken late, take it (which
 * resumes it). The tracee hook for stops collected by a drain. */
static void on_stopped(void *ctx, struct tracee_thread *tt)
{
    struct capture *c = ctx;
    struct thr *t = (struct thr *)tt;
    if (t->late && tt->stopped && !tt->interrupted) {
        t->late = false;
        if (!tt->group_stop && !c->ts.execed) { /* after an exec the stack is another program's */
            c->late_samples++;
            take_sample(c, t, t->late_tick_ns, clock_mono_ns());
            return;
        }
    }
    tracee_resume(&c->ts, tt);
}

/* Arm the timer to fire in ns (0 disarms). It repeats every
 * TRACEE_NAP_NS after that: an expiry that lands while we are not blocked
 * in waitpid (handling another stop of the thread) interrupts nothing, and
 * a one-shot timer would leave the next waitpid blocked for as long as the
 * thread runs. */
static void timer_arm(struct capture *c, int64_t ns)
{
    tracee_timer_arm(&c->ts, ns, TRACEE_NAP_NS);
}

static void disarm(struct capture *c)
{
    if (c->timer_armed) {
        timer_arm(c, 0);
        c->timer_armed = false;
    }
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
            tracee_on_status(&c->ts, tid, st);
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
    if (c->ts.have_timer) {
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
            if (t->tt.stopped) {
                stopped = true;
                break;
            }
            int st;
            pid_t r = waitpid(tid, &st, __WALL);
            if (r == tid) {
                tracee_on_status(&c->ts, tid, st);
                continue;
            }
            if (r == -1 && errno == EINTR && clock_mono_ns() < deadline)
                continue;
            if (r == -1 && errno == ECHILD)
                tracee_poll_one(&c->ts, tid, false); /* gone: drops it */
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
        if (t->tt.stopped)
            return true;
        if (tracee_poll_one(&c->ts, tid, false))
            continue;
        if (!find_thr(c, tid))
            return false;
        if (clock_mono_ns() >= deadline)
            return false;
        nap(c, deadline);
    }
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
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", c->pid, t->tt.tid);
        n = fsread(path, buf, sizeof buf);
    }
    struct proc_stat st;
    if (n <= 0 || procparse_stat(buf, (size_t)n, &st) < 0)
        return false;
    uint64_t ticks = st.utime + st.stime;
    if (ticks > t->ticks)
        t->cpu_acc += ticks - t->ticks;
    t->ticks = ticks;
    t->tt.state = st.state;
    return true;
}

static void name_thread(struct capture *c, struct thr *t)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/comm", c->pid, t->tt.tid);
    ssize_t n = fsread(path, buf, sizeof buf);
    if (n <= 0)
        return;
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    profile_thread_name(c->p, t->tt.tid, buf);
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
        t->swt = stackwalk_thread_new(c->sw, t->tt.tid);
    bool snapped = stackwalk_snapshot(c->sw, t->swt) == 0;
    tracee_resume(&c->ts, &t->tt);
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
    profile_add_sample(c->p, c->ips, n, t->tt.tid, t_ns, (uint64_t)c->interval_ns);
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
    if (c->ts.have_timer) {
        timer_arm(c, STOP_LATE_NS);
        c->timer_armed = true;
    }
    int64_t t0 = clock_mono_ns();
    bool stopped = ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) == 0;
    if (stopped) {
        find_thr(c, tid)->tt.interrupted = true;
        stopped = wait_stop(c, tid, t0 + STOP_LATE_NS);
        struct thr *t = find_thr(c, tid);
        if (!stopped && t && t->tt.interrupted) {
            t->late = true;
            t->late_tick_ns = t_ns;
        }
    } /* else ESRCH: it is exiting; a wait collects it */
    if (!stopped) {
        disarm(c);
        return;
    }
    struct thr *t = find_thr(c, tid);
    if (c->ts.execed) {
        tracee_resume(&c->ts, &t->tt); /* another program now: the capture ends */
        disarm(c);
        return;
    }
    if (t->tt.group_stop && c->o->mode == PROFILE_TYPE_CPU) {
        tracee_resume(&c->ts, &t->tt); /* stopped by job control: not running */
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
    size_t n = c->ts.nthr, picked = 0;
    struct thr **pick = xcalloc(n ? n : 1, sizeof *pick);
    int64_t dstate_limit = c->o->abort_dstate_ns > 0 ? c->o->abort_dstate_ns : DEFAULT_DSTATE_NS;
    for (size_t i = 0; i < n; i++) {
        struct thr *t = (struct thr *)c->ts.thr[i];
        if (!t->tt.started || t->tt.stopped)
            continue;
        if (!read_thread_stat(c, t))
            continue;
        /* a late thread is only watched for a long D: its sample is to come */
        if (t->tt.state == 'D') {
            if (t->d_since == 0)
                t->d_since = now;
            else if (now - t->d_since > dstate_limit && !c->abort) {
                c->abort = true;
                snprintf(c->abort_why, sizeof c->abort_why,
                         "thread %d in uninterruptible sleep (D) for over %lld ms", t->tt.tid,
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
        bool running = t->tt.state == 'R';
        bool alive = !tracee_is_zombie(&t->tt);
        if (c->o->mode == PROFILE_TYPE_CPU ? running : alive)
            pick[picked++] = t;
        else if (c->o->mode == PROFILE_TYPE_CPU)
            c->p->idle_samples++;
    }
    qsort(pick, picked, sizeof *pick, by_cpu_desc);
    int *tids = xcalloc(picked ? picked : 1, sizeof *tids);
    for (size_t i = 0; i < picked; i++)
        tids[i] = pick[i]->tt.tid;
    free(pick);
    for (size_t i = 0; i < picked && !c->ts.gone && !c->ts.execed; i++) {
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
    int tracer = tracee_tracer_of(c->pid, c->pid);
    if (tracer > 0 && tracer != c->ts.self && !c->abort) {
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
        if (now >= end || c->ts.gone || c->ts.execed || c->ts.forked || c->abort ||
            c->ts.nthr == 0 || (o->stop && *o->stop))
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
        tracee_wait_event(&c->ts, next < end ? next : end);
        drain(c);
    }
}

/* ---- the capture ---- */

static void finish_notes(struct capture *c, int64_t end_ns)
{
    const struct sampler_opts *o = c->o;
    struct profile *p = c->p;
    double at = (double)(end_ns - c->start_ns) / 1e9;
    if (c->ts.gone) {
        p->aborted = true;
        profile_note(p, "target exited after %.2fs: capture ended with the samples so far", at);
    } else if (c->ts.execed) {
        p->aborted = true;
        profile_note(p, "target called exec after %.2fs: capture ended with the samples so far",
                     at);
    } else if (c->ts.forked) {
        p->aborted = true;
        profile_note(p,
                     "target forked (child pid %d) after %.2fs: capture ended with the samples "
                     "so far",
                     c->ts.fork_child, at);
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
    struct capture c = {.o = o, .pid = o->pid, .rate = o->rate_hz};
    struct tracee_ops ops = {.thread_size = sizeof(struct thr), .added = on_added,
                             .dropped = on_dropped, .stopped = on_stopped, .ctx = &c};
    tracee_init(&c.ts, o->pid, SEIZE_OPTIONS, PTRACE_CONT, &ops, o->target_status);
    c.interval_ns = 1000000000LL / o->rate_hz;
    c.rng = (uint64_t)clock_mono_ns() ^ ((uint64_t)o->pid << 32) ^ 0x9e3779b97f4a7c15ULL;
    if (c.rng == 0) /* xorshift stays at 0 */
        c.rng = 1;

    int leader_tracer = tracee_tracer_of(o->pid, o->pid);
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
    if (cgroup_locate(o->pid, &c.cg) == 0) {
        c.have_cgroup = cgroup_read(&c.cg, &c.cgs) == 0;
        if (!c.have_cgroup)
            cgroup_loc_fini(&c.cg);
    }
    double pct;
    if (mem_near_limit(&c, &pct)) {
        c.p->aborted = true;
        profile_note(c.p,
                     "capture skipped: the target's cgroup memory is at %.1f%% of its limit",
                     pct);
        c.p->start_wall_ns = clock_wall_ns();
        c.p->start_mono_ns = clock_mono_ns();
        cgroup_loc_fini(&c.cg); /* have_cgroup: mem_near_limit read it */
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
    int old_nice = 0;
    bool reniced = tracee_nice_up(&old_nice);

    tracee_timer_setup(&c.ts);
    rc = stackwalk_new(o->pid, &c.sw, err, errlen);
    if (rc < 0)
        goto out_mask;

    c.p->start_wall_ns = clock_wall_ns();
    c.start_ns = c.p->start_mono_ns = clock_mono_ns();
    rc = tracee_attach_all(&c.ts, c.p, err, errlen);
    if (rc < 0)
        goto out_detach;

    capture_loop(&c);
    int64_t end = clock_mono_ns();
    c.p->duration_ns = end - c.start_ns;
    c.p->rate_achieved_hz = c.p->duration_ns > 0 ? (double)c.ticks * 1e9 / (double)c.p->duration_ns
                                                 : 0;
    finish_notes(&c, end);

out_detach:
    tracee_detach_all(&c.ts, c.p);
    stackwalk_free(c.sw);
    c.sw = NULL;
out_mask:
    tracee_fini(&c.ts); /* frees, and keeps what the target did */
    tracee_nice_restore(reniced, old_nice);
    if (c.have_cgroup)
        cgroup_loc_fini(&c.cg);
    if (rc < 0) {
        profile_free(c.p);
        return rc;
    }
    if (o->symbols && !c.ts.gone && kill(o->pid, 0) == 0 &&
        symbols_snapshot(o->symbols, o->pid, c.p) < 0)
        profile_note(c.p, "could not read the target's mappings after the capture");
    *out = c.p;
    return 0;
}

struct run {
    const struct sampler_opts *o;
    struct profile *p;
};

static int run_capture(void *arg, char *err, size_t errlen)
{
    struct run *r = arg;
    return capture_run(r->o, &r->p, err, errlen);
}

/* The capture runs on a thread of its own that ends with it: see
 * tracee_on_thread. */
int sampler_capture(const struct sampler_opts *o, struct profile **out, char *err, size_t errlen)
{
    int rc = check_opts(o, err, errlen);
    if (rc < 0)
        return rc;
    struct run r = {.o = o};
    rc = tracee_on_thread(run_capture, &r, err, errlen);
    if (rc < 0)
        return rc;
    *out = r.p;
    return 0;
}
