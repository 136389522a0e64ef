/* sidecar/collector.c - per-poll measurement of watched processes; see collector.h. */
#include "collector.h"

#include "discover.h"
#include "fsread.h"
#include "procparse.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <libproc2/misc.h>
#include <libproc2/pids.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* libproc2 items, in the order of enum rel below. Only items libproc2 takes
 * from /proc/PID/stat: procps 4.0.2 reads /proc/PID/status once for any pid
 * select, and a second time as soon as one status item is asked for. With
 * stat items only, a poll reads what a bare stat + status read does. */
static enum pids_item items[] = {
    PIDS_ID_PID, PIDS_TICS_ALL, PIDS_TICS_BEGAN, PIDS_FLT_MIN, PIDS_FLT_MAJ,
    PIDS_NLWP,   PIDS_CMD,      PIDS_STATE,      PIDS_RSS,     PIDS_VSIZE_BYTES,
};
enum rel { R_PID, R_TICS, R_BEGAN, R_MINFLT, R_MAJFLT, R_NLWP, R_CMD, R_STATE, R_RSS, R_VSIZE };
/* a private accessor: PIDS_VAL changed arity in procps 4.0.5 */
#define VAL(e, t, s) ((s)->head[(e)].result.t)

/* What libproc2 has no item for, or only from status (the RSS split, swap,
 * context switches, TracerPid), is diagnostic detail rather than a rule
 * metric: /proc/PID/status is read for it every STATUS_EVERY polls, and at
 * every poll while threads are tracked. Cgroup limits and event counters
 * change rarely too. */
#define STATUS_EVERY 10
#define CG_SLOW_EVERY 10

struct thread_ticks {
    int tid;
    uint64_t ticks;
};

struct inst_private {
    bool have_prev;
    int64_t prev_ns;
    uint64_t ticks, minflt, majflt;
    int64_t ctxt_ns;              /* last read of the context-switch counts */
    uint64_t vcs, nvcs;
    bool have_cg_prev;
    uint64_t nr_periods, nr_throttled;
    double throttled;             /* percent, NaN until two reads */
    int last_fds;                 /* -1 until read */
    struct cg_cache *cg;          /* its cgroup, shared (cg_release); NULL: none seen */
    int cg_err;                   /* why none: cg_acquire's error */
    struct thread_ticks *threads; /* sorted by tid, owned */
    size_t nthreads;
    int64_t threads_ns;
    bool warned_fd;
    bool warned_read;             /* libproc2 could not read it (warned once per spell) */
    int64_t died_ns;              /* when it was found gone (NONE while alive) */
    const char *death_reason;
    struct sample *last_window;   /* owned: history copy at death */
    size_t nlast_window;
    struct proc_meta dead_meta;
    struct cg_mem_events dead_events;
};

/* One cgroup, shared by the instances of the processes in it: its
 * directories, open while a live process is in it (they outlive the
 * process; see cgroup.h), and its values, refreshed once per poll (fully
 * every CG_SLOW_EVERY) whatever the number of processes. */
struct cg_cache {
    struct cgroup_loc loc;        /* owned: its descriptors */
    unsigned refs;                /* instances using it; freed at 0 */
    struct cgroup_sample s;
    int rc;
    unsigned long read_poll;      /* poll of the last refresh */
    unsigned long full_poll;      /* poll of the last full read, 0: never */
};

struct collector {
    const struct config *cfg;
    struct pids_info *info;
    long hz;
    long page_size;
    unsigned cpus;
    struct discover *disc;
    struct discover_result *res;
    int64_t next_discover_ns;
    struct instance **inst;       /* owned */
    size_t ninst;
    double *errors;               /* per target, per minute */
    struct coll_event *ev;        /* owned */
    size_t nev, capev;
    struct cg_cache **cgc;        /* owned: the cgroups of the instances */
    size_t ncgc;
    unsigned long polls;
    size_t history_cap;
    bool track_threads;           /* default for new instances */
    int64_t discover_every_ns;
    bool need[METRIC_COUNT];      /* metrics some rule reads: measured every poll */
    bool need_cgroup;             /* a rule reads a cgroup metric */
};

static const int64_t NONE = -1;

/* ---- cgroups, shared by their processes ---------------------------------- */

/* The cgroup of pid with one more reference, shared with the instances
 * already in it, or NULL when none is visible (*err: cgroup_locate's
 * error, 0 when it found nothing). Its directories are opened now, while
 * the process lives. */
static struct cg_cache *cg_acquire(struct collector *c, int pid, int *err)
{
    struct cgroup_loc loc;
    *err = cgroup_locate(pid, &loc);
    if (*err != 0)
        return NULL;
    if (loc.mem.fd < 0 && loc.cpu.fd < 0)
        return NULL;
    for (size_t i = 0; i < c->ncgc; i++) {
        if (cgroup_same(&c->cgc[i]->loc, &loc)) {
            cgroup_loc_fini(&loc); /* open already */
            c->cgc[i]->refs++;
            return c->cgc[i];
        }
    }
    struct cg_cache *e = xcalloc(1, sizeof *e);
    e->loc = loc;
    e->refs = 1;
    c->cgc = xreallocarray(c->cgc, c->ncgc + 1, sizeof *c->cgc);
    c->cgc[c->ncgc++] = e;
    return e;
}

/* Drop the reference *e (NULL: none) and set it to NULL; the last one
 * closes the cgroup's directories. */
static void cg_release(struct collector *c, struct cg_cache **e)
{
    struct cg_cache *x = *e;
    *e = NULL;
    if (!x || --x->refs > 0)
        return;
    for (size_t i = 0; i < c->ncgc; i++) {
        if (c->cgc[i] == x) {
            c->cgc[i] = c->cgc[--c->ncgc];
            break;
        }
    }
    cgroup_loc_fini(&x->loc);
    free(x);
}

enum cg_mode {
    CG_CACHED, /* the values of the last read, no I/O */
    CG_POLL,   /* usage, cpu.stat and pressure now; everything every CG_SLOW_EVERY */
    CG_FULL,   /* everything now (memory.events at an exit) */
};

/* A cgroup's values (e may be NULL: none), read at most once per poll
 * whatever the number of its processes. *fresh tells whether they were
 * read at this poll. */
static const struct cgroup_sample *cg_sample(struct collector *c, struct cg_cache *e,
                                             enum cg_mode mode, bool *fresh)
{
    *fresh = false;
    if (!e)
        return NULL;
    if (mode == CG_FULL || e->full_poll == 0 ||
        (mode == CG_POLL && c->polls - e->full_poll >= CG_SLOW_EVERY)) {
        e->rc = cgroup_read(&e->loc, &e->s);
        e->full_poll = e->read_poll = c->polls;
    } else if (mode == CG_POLL && e->read_poll != c->polls) {
        e->rc = cgroup_read_fast(&e->loc, &e->s);
        e->read_poll = c->polls;
    }
    *fresh = e->read_poll == c->polls;
    return e->rc == 0 ? &e->s : NULL;
}

struct collector *collector_new(const struct config *cfg)
{
    struct collector *c = xcalloc(1, sizeof *c);
    c->cfg = cfg;
    if (procps_pids_new(&c->info, items, sizeof items / sizeof items[0]) < 0) {
        free(c);
        return NULL;
    }
    c->hz = procps_hertz_get();
    if (c->hz <= 0)
        c->hz = 100;
    c->cpus = cgroup_online_cpus();
    c->page_size = sysconf(_SC_PAGESIZE);
    if (c->page_size <= 0)
        c->page_size = 4096;
    c->disc = discover_new(cfg);
    c->res = xcalloc(cfg->ntargets ? cfg->ntargets : 1, sizeof *c->res);
    c->errors = xcalloc(cfg->ntargets ? cfg->ntargets : 1, sizeof *c->errors);
    for (size_t i = 0; i < cfg->ntargets; i++)
        c->errors[i] = NAN;
    c->history_cap = (size_t)(cfg->history_ns / cfg->poll_interval_ns);
    c->next_discover_ns = INT64_MIN;
    c->discover_every_ns = COLLECTOR_DISCOVER_EVERY_NS;
    collector_set_rules(c, cfg->rules, cfg->nrules);
    return c;
}

static void coll_event_fini(struct coll_event *e)
{
    procmeta_fini(&e->old_meta);
    free(e->window);
    e->window = NULL;
}

static void instance_free(struct collector *c, struct instance *in)
{
    if (!in)
        return;
    procmeta_fini(&in->meta);
    history_fini(&in->hist);
    if (in->priv) {
        cg_release(c, &in->priv->cg);
        free(in->priv->threads);
        free(in->priv->last_window);
        procmeta_fini(&in->priv->dead_meta);
        free(in->priv);
    }
    free(in);
}

void collector_free(struct collector *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nev; i++)
        coll_event_fini(&c->ev[i]);
    free(c->ev);
    for (size_t i = 0; i < c->ninst; i++)
        instance_free(c, c->inst[i]);
    free(c->inst);
    free(c->errors);
    free(c->res);
    free(c->cgc); /* empty: the instances held the last references */
    discover_free(c->disc);
    procps_pids_unref(&c->info);
    free(c);
}

size_t collector_count(const struct collector *c)
{
    return c->ninst;
}

struct instance *collector_at(struct collector *c, size_t i)
{
    return i < c->ninst ? c->inst[i] : NULL;
}

void collector_set_config(struct collector *c, const struct config *cfg)
{
    c->cfg = cfg;
    discover_set_config(c->disc, cfg);
}

void collector_set_rules(struct collector *c, const struct rule_spec *rules, size_t n)
{
    memset(c->need, 0, sizeof c->need);
    for (size_t i = 0; i < n; i++) {
        for (int m = 0; m < METRIC_COUNT; m++) {
            if (expr_uses(rules[i].when, (enum metric)m) ||
                expr_uses(rules[i].resolve_when, (enum metric)m))
                c->need[m] = true;
        }
    }
    c->need_cgroup = c->need[METRIC_MEM_LIMIT] || c->need[METRIC_OOM_ETA] ||
                     c->need[METRIC_THROTTLED] || c->need[METRIC_PSI_CPU] ||
                     c->need[METRIC_PSI_MEMORY];
}

void collector_discover_every(struct collector *c, int64_t ns)
{
    c->discover_every_ns = ns;
}

void collector_track_threads(struct collector *c, bool on)
{
    c->track_threads = on;
}

unsigned long collector_polls(const struct collector *c)
{
    return c->polls;
}

void collector_set_errors(struct collector *c, size_t target, double per_min)
{
    if (target < c->cfg->ntargets)
        c->errors[target] = per_min;
}

static struct coll_event *ev_new(struct collector *c, enum coll_event_kind kind,
                                 struct instance *in)
{
    if (c->nev == c->capev) {
        c->capev = c->capev ? 2 * c->capev : 8;
        c->ev = xreallocarray(c->ev, c->capev, sizeof *c->ev);
    }
    struct coll_event *e = &c->ev[c->nev++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->inst = in;
    e->old_pid = e->new_pid = in ? in->pid : 0;
    return e;
}

/* ---- instances ------------------------------------------------------------ */

static struct instance *instance_new(struct collector *c, size_t target, int pid)
{
    struct instance *in = xcalloc(1, sizeof *in);
    in->target = target;
    in->pid = pid;
    in->slot = -1;
    in->track_threads = c->track_threads;
    in->priv = xcalloc(1, sizeof *in->priv);
    in->priv->died_ns = NONE;
    history_init(&in->hist, c->history_cap);
    c->inst = xreallocarray(c->inst, c->ninst + 1, sizeof *c->inst);
    c->inst[c->ninst++] = in;
    return in;
}

static void reset_deltas(struct collector *c, struct instance *in)
{
    struct inst_private *p = in->priv;
    p->have_prev = false;
    p->have_cg_prev = false;
    p->ctxt_ns = NONE;
    p->throttled = NAN;
    p->last_fds = -1;
    free(p->threads);
    p->threads = NULL;
    p->nthreads = 0;
    cg_release(c, &p->cg);
    p->cg = cg_acquire(c, in->pid, &p->cg_err);
    in->nhot = 0;
}

/* Start watching pid in an instance (new, or a dead one being reused). */
static int instance_attach(struct collector *c, struct instance *in, int pid)
{
    struct proc_meta meta;
    int rc = procmeta_read(pid, &meta);
    if (rc != 0)
        return rc;
    procmeta_fini(&in->meta);
    in->meta = meta;
    in->pid = pid;
    in->alive = true;
    in->priv->died_ns = NONE;
    reset_deltas(c, in);
    if (meta.exe_errno) {
        struct coll_event *e = ev_new(c, COLL_PROBLEM, in);
        snprintf(e->what, sizeof e->what,
                 "cannot read the executable of pid %d: %s (profiles need CAP_SYS_PTRACE or "
                 "the same user)",
                 pid, strerror(meta.exe_errno));
    }
    return 0;
}

/* The process of an alive instance is gone at now_ns. */
static void instance_died(struct collector *c, struct instance *in, int64_t now_ns,
                          const char *why)
{
    struct inst_private *p = in->priv;
    /* a full read: memory.events tells an OOM kill from a plain exit. The
     * directory was opened while the process lived: its root is gone now. */
    bool fresh;
    const struct cgroup_sample *cg = cg_sample(c, p->cg, CG_FULL, &fresh);

    in->alive = false;
    p->died_ns = now_ns;
    p->death_reason = why;
    /* an OOM kill shows as oom_kill going up in the cgroup */
    if (cg && cg->events.have && in->detail.events.have &&
        cg->events.oom_kill > in->detail.events.oom_kill)
        p->death_reason = "oom-killed";
    p->dead_events = cg && cg->events.have ? cg->events : in->detail.events;
    /* a successor in the same cgroup counts its memory events from here */
    in->detail.events = p->dead_events;
    cg_release(c, &p->cg); /* a successor locates its own */
    free(p->last_window);
    p->nlast_window = history_len(&in->hist);
    p->last_window = xcalloc(p->nlast_window ? p->nlast_window : 1, sizeof *p->last_window);
    p->nlast_window = history_copy(&in->hist, INT64_MIN, p->last_window, p->nlast_window);
    procmeta_fini(&p->dead_meta);
    procmeta_copy(&p->dead_meta, &in->meta);

    struct coll_event *e = ev_new(c, COLL_EXITED, in);
    e->reason = p->death_reason;
    e->died_ns = now_ns;
    e->events = p->dead_events;
    procmeta_copy(&e->old_meta, &in->meta);
    e->nwindow = p->nlast_window;
    e->window = xcalloc(e->nwindow ? e->nwindow : 1, sizeof *e->window);
    memcpy(e->window, p->last_window, e->nwindow * sizeof *e->window);
}

/* A dead instance gets a successor: a restart. */
static void instance_restarted(struct collector *c, struct instance *in, int new_pid,
                               int64_t now_ns, const char *reason)
{
    struct inst_private *p = in->priv;
    int old_pid = in->pid;
    if (instance_attach(c, in, new_pid) != 0)
        return;
    in->restarts++;
    struct coll_event *e = ev_new(c, COLL_RESTARTED, in);
    e->old_pid = old_pid;
    e->new_pid = new_pid;
    e->reason = reason ? reason : p->death_reason;
    e->died_ns = p->died_ns != NONE ? p->died_ns : now_ns;
    e->events = p->dead_events;
    procmeta_copy(&e->old_meta, &p->dead_meta);
    e->nwindow = p->nlast_window;
    e->window = p->last_window; /* moves to the event */
    p->last_window = NULL;
    p->nlast_window = 0;
    history_clear(&in->hist);
}

static bool pid_in(const struct discover_result *r, int pid)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->pids[i] == pid)
            return true;
    }
    return false;
}

static struct instance *alive_with_pid(struct collector *c, size_t target, int pid)
{
    for (size_t i = 0; i < c->ninst; i++) {
        if (c->inst[i]->target == target && c->inst[i]->alive && c->inst[i]->pid == pid)
            return c->inst[i];
    }
    return NULL;
}

static struct instance *dead_of(struct collector *c, size_t target)
{
    for (size_t i = 0; i < c->ninst; i++) {
        if (c->inst[i]->target == target && !c->inst[i]->alive)
            return c->inst[i];
    }
    return NULL;
}

static void reconcile(struct collector *c, int64_t now_ns)
{
    for (size_t t = 0; t < c->cfg->ntargets; t++) {
        const struct discover_result *r = &c->res[t];
        if (r->unknown)
            continue; /* its pid file or cgroup could not be read: nothing learnt */
        /* gone from the target's list (a cgroup target losing a member) */
        for (size_t i = 0; i < c->ninst; i++) {
            struct instance *in = c->inst[i];
            if (in->target == t && in->alive && !pid_in(r, in->pid))
                instance_died(c, in, now_ns, "exited");
        }
        for (size_t k = 0; k < r->n; k++) {
            int pid = r->pids[k];
            if (alive_with_pid(c, t, pid))
                continue;
            struct instance *dead = dead_of(c, t);
            if (dead) {
                instance_restarted(c, dead, pid, now_ns, NULL);
                continue;
            }
            struct instance *in = instance_new(c, t, pid);
            if (instance_attach(c, in, pid) != 0) {
                /* gone again before we could look: forget it */
                c->ninst--;
                instance_free(c, in);
                continue;
            }
            ev_new(c, COLL_APPEARED, in);
        }
    }
}

/* ---- measuring ------------------------------------------------------------ */

static int fd_count(int pid, int *err)
{
    char p[64];
    struct stat st;
    snprintf(p, sizeof p, "/proc/%d/fd", pid);
    /* Linux >= 6.2 reports the number of open fds as the size of the dir */
    if (stat(p, &st) == -1) {
        *err = errno;
        return -1;
    }
    if (st.st_size > 0)
        return (int)st.st_size;
    DIR *d = opendir(p);
    if (!d) {
        *err = errno;
        return -1;
    }
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n;
}

static int cmp_tid(const void *a, const void *b)
{
    const struct thread_ticks *x = a, *y = b;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

static int cmp_hot(const void *a, const void *b)
{
    const struct hot_thread *x = a, *y = b;
    return (x->cpu < y->cpu) - (x->cpu > y->cpu);
}

/* Per-thread CPU since the previous call, the hottest first. */
static void update_threads(struct collector *c, struct instance *in, int64_t now_ns)
{
    struct inst_private *p = in->priv;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", in->pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct thread_ticks *cur = NULL;
    struct hot_thread *hot = NULL;
    size_t n = 0, cap = 0, nhot = 0;
    double dt = p->threads_ns != NONE && p->threads ? (double)(now_ns - p->threads_ns) / 1e9 : 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long tid = strtol(de->d_name, &end, 10);
        if (*end || tid <= 0)
            continue;
        char sp[96], buf[1024];
        struct proc_stat st;
        snprintf(sp, sizeof sp, "/proc/%d/task/%ld/stat", in->pid, tid);
        ssize_t r = fsread(sp, buf, sizeof buf);
        if (r <= 0 || procparse_stat(buf, (size_t)r, &st) != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            cur = xreallocarray(cur, cap, sizeof *cur);
            hot = xreallocarray(hot, cap, sizeof *hot);
        }
        cur[n] = (struct thread_ticks){(int)tid, st.utime + st.stime};
        if (dt > 0) {
            struct thread_ticks key = {(int)tid, 0};
            struct thread_ticks *prev =
                bsearch(&key, p->threads, p->nthreads, sizeof *p->threads, cmp_tid);
            if (prev && cur[n].ticks >= prev->ticks) {
                hot[nhot].tid = (int)tid;
                snprintf(hot[nhot].name, sizeof hot[nhot].name, "%.31s", st.comm);
                hot[nhot].cpu = (double)(cur[n].ticks - prev->ticks) / (double)c->hz / dt * 100.0;
                nhot++;
            }
        }
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(cur, n, sizeof *cur, cmp_tid);
    free(p->threads);
    p->threads = cur;
    p->nthreads = n;
    p->threads_ns = now_ns;
    if (dt > 0) {
        qsort(hot, nhot, sizeof *hot, cmp_hot);
        in->nhot = nhot < COLLECTOR_HOT_THREADS ? nhot : COLLECTOR_HOT_THREADS;
        memcpy(in->hot, hot, in->nhot * sizeof *hot);
    }
    free(hot);
}

/* Slope-derived metrics over the history, NaN until half the window is seen. */
static double growth_per_min(const struct history *h, enum metric m, int64_t now_ns)
{
    int64_t span = 0;
    double slope = history_slope(h, m, now_ns, COLLECTOR_GROWTH_WINDOW_NS, &span);
    if (span * 2 < COLLECTOR_GROWTH_WINDOW_NS)
        return NAN;
    return slope * 60.0;
}

static void read_status_detail(struct instance *in, int64_t now_ns)
{
    struct inst_private *p = in->priv;
    char path[64], buf[4096];
    struct proc_status st;

    snprintf(path, sizeof path, "/proc/%d/status", in->pid);
    ssize_t n = fsread(path, buf, sizeof buf);
    if (n <= 0 || procparse_status(buf, (size_t)n, &st) != 0)
        return;
    in->detail.tracer_pid = st.tracer_pid;
    in->detail.rss_anon = st.rss_anon;
    in->detail.rss_file = st.rss_file;
    in->detail.rss_shmem = st.rss_shmem;
    in->detail.swap = st.swap;
    if (p->ctxt_ns != NONE && now_ns > p->ctxt_ns) {
        double dt = (double)(now_ns - p->ctxt_ns) / 1e9;
        in->detail.voluntary_ctxt_per_s = (double)(st.voluntary_ctxt - p->vcs) / dt;
        in->detail.involuntary_ctxt_per_s = (double)(st.nonvoluntary_ctxt - p->nvcs) / dt;
    }
    p->ctxt_ns = now_ns;
    p->vcs = st.voluntary_ctxt;
    p->nvcs = st.nonvoluntary_ctxt;
}

static void measure(struct collector *c, struct instance *in, struct pids_stack *ps,
                    int64_t now_ns)
{
    struct inst_private *p = in->priv;
    struct sample s;

    sample_init(&s, now_ns);
    uint64_t ticks = VAL(R_TICS, ull_int, ps);
    uint64_t minflt = VAL(R_MINFLT, ul_int, ps), majflt = VAL(R_MAJFLT, ul_int, ps);
    in->detail.state = VAL(R_STATE, s_ch, ps);
    s.v[METRIC_THREADS] = (float)VAL(R_NLWP, s_int, ps);
    /* stat's rss is in pages */
    s.v[METRIC_RSS] = (float)((double)VAL(R_RSS, ul_int, ps) * (double)c->page_size);
    in->detail.vm_size = VAL(R_VSIZE, ul_int, ps);

    /* What no rule reads is refreshed every STATUS_EVERY polls for context
     * (status, alerts) and carried in between; the rules' metrics every poll. */
    bool detail_poll = in->track_threads || p->ctxt_ns == NONE || c->polls % STATUS_EVERY == 0;
    int fderr = 0;
    int fds = c->need[METRIC_FDS] || detail_poll ? fd_count(in->pid, &fderr) : p->last_fds;
    if (fds >= 0) {
        s.v[METRIC_FDS] = (float)fds;
        p->last_fds = fds;
    } else if (!p->warned_fd && (fderr == EACCES || fderr == EPERM)) {
        p->warned_fd = true;
        struct coll_event *e = ev_new(c, COLL_PROBLEM, in);
        snprintf(e->what, sizeof e->what,
                 "cannot count the open files of pid %d: %s (needs CAP_SYS_PTRACE or the same "
                 "user); fds stays empty",
                 in->pid, strerror(fderr));
    }

    if (p->have_prev && now_ns > p->prev_ns) {
        double dt = (double)(now_ns - p->prev_ns) / 1e9;
        if (ticks >= p->ticks) {
            double cpu = (double)(ticks - p->ticks) / (double)c->hz / dt * 100.0;
            s.v[METRIC_CPU] = (float)cpu;
        }
        in->detail.minflt_per_s = (double)(minflt - p->minflt) / dt;
        in->detail.majflt_per_s = (double)(majflt - p->majflt) / dt;
    }
    p->have_prev = true;
    p->prev_ns = now_ns;
    p->ticks = ticks;
    p->minflt = minflt;
    p->majflt = majflt;
    if (detail_poll)
        read_status_detail(in, now_ns);

    if (!p->cg && (p->cg_err == -EMFILE || p->cg_err == -ENFILE))
        p->cg = cg_acquire(c, in->pid, &p->cg_err); /* descriptors may be back */
    bool cg_fresh = false;
    const struct cgroup_sample *cg =
        cg_sample(c, p->cg, c->need_cgroup || detail_poll ? CG_POLL : CG_CACHED, &cg_fresh);
    double quota = cg && cg->cpu_quota > 0 ? cg->cpu_quota : (double)c->cpus;
    in->detail.cpu_quota = cg ? cg->cpu_quota : 0;
    if (!isnan(s.v[METRIC_CPU]))
        s.v[METRIC_CPU_LIMIT] = (float)(s.v[METRIC_CPU] / quota);
    in->detail.have_cg_mem = cg && cg->have_mem;
    if (cg) {
        if (cg->cpu.have && cg_fresh) {
            /* a delta only between two reads; carried in between */
            if (p->have_cg_prev && cg->cpu.nr_periods > p->nr_periods)
                p->throttled = 100.0 * (double)(cg->cpu.nr_throttled - p->nr_throttled) /
                               (double)(cg->cpu.nr_periods - p->nr_periods);
            else if (p->have_cg_prev)
                p->throttled = 0.0;
            p->have_cg_prev = true;
            p->nr_periods = cg->cpu.nr_periods;
            p->nr_throttled = cg->cpu.nr_throttled;
        }
        s.v[METRIC_THROTTLED] = (float)p->throttled;
        if (cg->have_mem) {
            in->detail.cg_usage = cg->mem_usage;
            in->detail.cg_limit = cg->mem_limit;
            if (cg->mem_limit != UINT64_MAX && cg->mem_limit > 0)
                s.v[METRIC_MEM_LIMIT] = (float)(100.0 * (double)cg->mem_usage / (double)cg->mem_limit);
        }
        /* A zombie has exited: an OOM kill that raised the counters is its
         * death's reason, told at the exit against the counters before. */
        if (cg->events.have && in->detail.state != 'Z') {
            static const char *names[] = {"high", "max", "oom", "oom_kill"};
            const uint64_t now_v[] = {cg->events.high, cg->events.max, cg->events.oom,
                                      cg->events.oom_kill};
            const uint64_t old_v[] = {in->detail.events.high, in->detail.events.max,
                                      in->detail.events.oom, in->detail.events.oom_kill};
            for (int k = 0; k < 4 && in->detail.events.have; k++) {
                if (now_v[k] > old_v[k]) {
                    struct coll_event *e = ev_new(c, COLL_MEMORY_EVENT, in);
                    snprintf(e->what, sizeof e->what, "%s +%llu", names[k],
                             (unsigned long long)(now_v[k] - old_v[k]));
                    e->events = cg->events;
                }
            }
            in->detail.events = cg->events;
        }
        s.v[METRIC_PSI_CPU] = (float)cg->psi_cpu;
        s.v[METRIC_PSI_MEMORY] = (float)cg->psi_memory;
    }
    s.v[METRIC_ERRORS] = (float)c->errors[in->target];

    history_push(&in->hist, &s);
    /* derived from the history, including this sample */
    struct sample *last = (struct sample *)history_last(&in->hist);
    if (last && last->t_ns == now_ns) {
        last->v[METRIC_RSS_GROWTH] = (float)growth_per_min(&in->hist, METRIC_RSS, now_ns);
        if (!isnan(last->v[METRIC_MEM_LIMIT])) {
            double slope = growth_per_min(&in->hist, METRIC_MEM_LIMIT, now_ns) / 60.0;
            double left = 100.0 - last->v[METRIC_MEM_LIMIT];
            last->v[METRIC_OOM_ETA] = slope > 0 ? (float)(left > 0 ? left / slope : 0.0)
                                     : isnan(slope) ? NAN : INFINITY;
        }
    }
    if (in->track_threads)
        update_threads(c, in, now_ns);
}

/* libproc2 returned nothing for pid: gone, or not readable now. It says
 * the same for both (out of descriptors above all: EMFILE, ENFILE), so only
 * a pid whose /proc directory is gone counts as an exit; stat(2) needs no
 * descriptor. Otherwise *err is the errno of a read of its stat now (0 when
 * that read works: libproc2 failed for a moment). */
static bool pid_gone(int pid, int *err)
{
    char p[64], buf[1024];
    struct stat st;
    snprintf(p, sizeof p, "/proc/%d", pid);
    if (stat(p, &st) == -1 && (errno == ENOENT || errno == ESRCH))
        return true;
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    ssize_t n = fsread(p, buf, sizeof buf);
    *err = n < 0 ? (int)-n : 0;
    return false;
}

/* One instance at one poll, given its libproc2 stack (NULL: libproc2 has
 * nothing for it). */
static void poll_instance(struct collector *c, struct instance *in, struct pids_stack *ps,
                          int64_t now_ns)
{
    if (!ps) {
        int err = 0;
        if (pid_gone(in->pid, &err)) {
            instance_died(c, in, now_ns, "exited");
        } else if (err != 0 && !in->priv->warned_read) {
            /* no sample at this poll; the process is still there */
            in->priv->warned_read = true;
            struct coll_event *e = ev_new(c, COLL_PROBLEM, in);
            snprintf(e->what, sizeof e->what,
                     "cannot read pid %d: %s; not taken for an exit, measured again at the next "
                     "poll",
                     in->pid, strerror(err));
        }
        return;
    }
    in->priv->warned_read = false;
    if (VAL(R_BEGAN, ull_int, ps) != in->meta.start_ticks) {
        /* same pid, another process: the old one ended */
        int pid = in->pid;
        instance_died(c, in, now_ns, "exited");
        if (pid_in(&c->res[in->target], pid) || c->cfg->targets[in->target].match == MATCH_PID)
            instance_restarted(c, in, pid, now_ns, "pid reused");
        return;
    }
    const char *comm = VAL(R_CMD, str, ps);
    if (comm && strcmp(comm, in->meta.comm) != 0) {
        /* exec: a new program in the same process */
        struct proc_meta m;
        if (procmeta_read(in->pid, &m) == 0) {
            bool changed = strcmp(m.exe, in->meta.exe) != 0 ||
                           strcmp(m.build_id, in->meta.build_id) != 0;
            procmeta_fini(&m);
            if (changed) {
                int pid = in->pid;
                instance_died(c, in, now_ns, "exec");
                instance_restarted(c, in, pid, now_ns, "exec");
                return;
            }
            snprintf(in->meta.comm, sizeof in->meta.comm, "%s", comm);
        }
    }
    measure(c, in, ps, now_ns);
}

size_t collector_poll(struct collector *c, int64_t now_ns, const struct coll_event **events)
{
    for (size_t i = 0; i < c->nev; i++)
        coll_event_fini(&c->ev[i]);
    c->nev = 0;
    c->polls++;

    /* Discovery: at start, while a target waits, and every few seconds. */
    bool waiting = false;
    for (size_t t = 0; t < c->cfg->ntargets && !waiting; t++) {
        bool have = false;
        for (size_t i = 0; i < c->ninst && !have; i++)
            have = c->inst[i]->target == t && c->inst[i]->alive;
        waiting = !have;
    }
    if (waiting || now_ns >= c->next_discover_ns) {
        if (discover_scan(c->disc, c->res) == 0)
            reconcile(c, now_ns);
        int64_t every = c->cfg->poll_interval_ns > c->discover_every_ns
                            ? c->cfg->poll_interval_ns
                            : c->discover_every_ns;
        c->next_discover_ns = now_ns + every;
    }

    /* libproc2 fetches for every alive instance, in batches: procps 4.0.2
     * refuses a select of more than 255 pids. */
    unsigned *pids = xcalloc(c->ninst ? c->ninst : 1, sizeof *pids);
    struct instance **batch = xcalloc(c->ninst ? c->ninst : 1, sizeof *batch);
    size_t ninst = c->ninst; /* instances added below are measured next poll */
    size_t npids = 0;
    for (size_t i = 0; i < ninst; i++) {
        if (c->inst[i]->alive) {
            batch[npids] = c->inst[i];
            pids[npids++] = (unsigned)c->inst[i]->pid;
        }
    }
    for (size_t b0 = 0; b0 < npids; b0 += COLLECTOR_SELECT_BATCH) {
        size_t bn = npids - b0 < COLLECTOR_SELECT_BATCH ? npids - b0 : COLLECTOR_SELECT_BATCH;
        struct pids_fetch *f = procps_pids_select(c->info, pids + b0, (int)bn, PIDS_SELECT_PID);
        if (!f || !f->counts) {
            /* a failed fetch says nothing about the processes: skip this poll */
            struct coll_event *e = ev_new(c, COLL_PROBLEM, NULL);
            snprintf(e->what, sizeof e->what, "libproc2 could not read %zu processes", bn);
            continue;
        }
        int total = f->counts->total, k = 0;
        for (size_t j = 0; j < bn; j++) {
            struct instance *in = batch[b0 + j];
            struct pids_stack *ps = NULL;
            /* results come in the order asked, minus the vanished */
            for (int m = k; m < total; m++) {
                if (VAL(R_PID, s_int, f->stacks[m]) == in->pid) {
                    ps = f->stacks[m];
                    k = m + 1;
                    break;
                }
            }
            poll_instance(c, in, ps, now_ns);
        }
    }
    free(batch);
    free(pids);
    *events = c->ev;
    return c->nev;
}
