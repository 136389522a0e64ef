/* sidecar/capture.c - captures on a worker thread; see capture.h. */
#include "capture.h"

#include "clock.h"
#include "flamegraph.h"
#include "folded.h"
#include "memcapture.h"
#include "pprof.h"
#include "profsum.h"
#include "sampler.h"
#include "slog.h"
#include "symbols.h"
#include "units.h"
#include "xalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct job {
    struct job *next;
    enum job_state state;
    volatile sig_atomic_t stop;
    /* what to capture */
    int pid, slot;
    size_t target;
    bool has_event;
    struct event ev;              /* copy of the engine event (on demand: none) */
    char *rule_names[2 + ENGINE_MAX_COFIRING]; /* owned: its rules, by name (see remap_rules) */
    enum profile_type mode;
    unsigned rate_hz;
    int64_t duration_ns;
    uint64_t symbol_cache_max_bytes; /* the config's when the job was made */
    /* what came of it */
    struct profile *profile;      /* owned until handed over */
    char failure[512];
    int64_t start_mono_ns, end_mono_ns;
    char *bufs[4];                /* owned: rendered outputs */
    size_t lens[4];
};

struct capturer {
    struct engine *eng;
    struct alerter *al;
    pthread_mutex_t *dlock;       /* the daemon's lock: engine slots */
    pthread_mutex_t mu;           /* guards the queue */
    pthread_cond_t cv;
    struct job *head, *tail;
    bool quit;
    pthread_t thr;
    bool thr_ok;
    int efd;
    struct symcache *syms;        /* only the worker touches it */
};

_Static_assert(CONFIG_DEFAULT_SYMBOL_CACHE_MAX_BYTES == SYMCACHE_DEFAULT_MAX_BYTES,
               "the rules file's default is the cache's");

static const char *const file_names[4] = {"profile.pb.gz", "profile.folded", "flame.svg",
                                          "summary.json"};
static const char *const file_types[4] = {"application/vnd.google.protobuf+gzip",
                                          "text/plain; charset=utf-8", "image/svg+xml",
                                          "application/json"};

static void job_free(struct job *j)
{
    if (!j)
        return;
    profile_free(j->profile);
    for (int i = 0; i < 4; i++)
        free(j->bufs[i]);
    for (size_t i = 0; i < 2 + ENGINE_MAX_COFIRING; i++)
        free(j->rule_names[i]);
    free(j);
}

/* Render every output of p into memory: no temporary files, the spool
 * writes them once, atomically. */
static void render(struct job *j)
{
    struct profile *p = j->profile;
    char title[160];
    snprintf(title, sizeof title, "%s %d (%s)", p->comm, p->pid,
             p->type == PROFILE_TYPE_MEMORY ? "memory held"
             : p->type == PROFILE_TYPE_WALL ? "wall"
                                            : "cpu");
    for (int i = 0; i < 4; i++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        int rc = -ENOMEM;
        if (f) {
            switch (i) {
            case 0:
                rc = pprof_write(p, f);
                break;
            case 1:
                rc = folded_write(p, f, false);
                break;
            case 2:
                rc = flamegraph_write(p, f, title);
                break;
            case 3: {
                json_t *s = profsum_json(p, 20);
                rc = s && json_dumpf(s, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : -EIO;
                json_decref(s);
                break;
            }
            }
            if (fclose(f) != 0 && rc == 0)
                rc = -EIO;
        }
        if (rc != 0) {
            slog(SLOG_WARN, "cannot render a profile output", "file", file_names[i], NULL);
            free(buf);
            continue;
        }
        j->bufs[i] = buf;
        j->lens[i] = len;
    }
}

static void run_job(struct capturer *c, struct job *j)
{
    char err[512] = "";
    int rc;
    /* a reload may have changed the budget: the cache follows it between
     * captures, never during one */
    symcache_set_max_bytes(c->syms, j->symbol_cache_max_bytes);
    j->start_mono_ns = clock_mono_ns();
    if (j->mode == PROFILE_TYPE_MEMORY) {
        struct memcapture_opts o = {
            .pid = j->pid,
            .duration_ns = j->duration_ns,
            .method = MEMCAPTURE_AUTO,
            .stop = &j->stop,
            .symbols = c->syms,
        };
        rc = memcapture_run(&o, &j->profile, err, sizeof err);
    } else {
        struct sampler_opts o = {
            .pid = j->pid,
            .mode = j->mode,
            .rate_hz = j->rate_hz,
            .duration_ns = j->duration_ns,
            .stop = &j->stop,
            .symbols = c->syms,
        };
        rc = sampler_capture(&o, &j->profile, err, sizeof err);
    }
    j->end_mono_ns = clock_mono_ns();
    if (rc != 0) {
        snprintf(j->failure, sizeof j->failure, "%s", err[0] ? err : strerror(-rc));
        return;
    }
    /* the target runs again: naming never happens with it stopped */
    symbols_resolve(c->syms, j->profile);
    render(j);
}

static void *worker(void *arg)
{
    struct capturer *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        struct job *j = NULL;
        for (struct job *k = c->head; k && !j; k = k->next) {
            if (k->state == JOB_QUEUED)
                j = k;
        }
        if (!j) {
            if (c->quit)
                break;
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&c->mu);
        if (!j->stop)
            run_job(c, j);
        else
            snprintf(j->failure, sizeof j->failure, "aborted before it started");
        pthread_mutex_lock(&c->mu);
        j->state = JOB_DONE;
        uint64_t one = 1;
        if (write(c->efd, &one, sizeof one) != sizeof one)
            slogf(SLOG_WARN, "capture worker: cannot wake the loop: %s", strerror(errno));
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

struct capturer *capturer_new(struct engine *eng, struct alerter *al, pthread_mutex_t *lock,
                              int *efd, char *err, size_t errlen)
{
    struct capturer *c = xcalloc(1, sizeof *c);
    c->eng = eng;
    c->al = al;
    c->dlock = lock;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->syms = symcache_new();
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->efd == -1) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        capturer_free(c);
        return NULL;
    }
    int rc = pthread_create(&c->thr, NULL, worker, c);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the capture thread: %s", strerror(rc));
        capturer_free(c);
        return NULL;
    }
    c->thr_ok = true;
    *efd = c->efd;
    return c;
}

void capturer_free(struct capturer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->quit = true;
    for (struct job *j = c->head; j; j = j->next)
        j->stop = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->thr_ok)
        pthread_join(c->thr, NULL); /* the sampler detaches before returning */
    while (c->head) {
        struct job *j = c->head;
        c->head = j->next;
        job_free(j);
    }
    symcache_free(c->syms);
    if (c->efd >= 0)
        close(c->efd);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void capturer_set_engine(struct capturer *c, struct engine *eng)
{
    /* the slots of jobs under way belong to the old engine */
    pthread_mutex_lock(&c->mu);
    for (struct job *j = c->head; j; j = j->next)
        j->slot = -1;
    pthread_mutex_unlock(&c->mu);
    c->eng = eng;
}

static void enqueue(struct capturer *c, struct job *j)
{
    pthread_mutex_lock(&c->mu);
    if (c->tail)
        c->tail->next = j;
    else
        c->head = j;
    c->tail = j;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static struct job *make_job(struct instance *in, enum profile_kind kind, unsigned rate,
                            int64_t dur, const struct config *cfg)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->pid = in->pid;
    j->slot = in->slot;
    j->target = in->target;
    j->mode = kind == PROFILE_MEMORY ? PROFILE_TYPE_MEMORY : PROFILE_TYPE_CPU;
    j->rate_hz = rate ? rate : SAMPLER_DEFAULT_RATE_HZ;
    j->duration_ns = dur > 0 ? dur : SAMPLER_DEFAULT_DURATION_NS;
    j->symbol_cache_max_bytes = cfg->symbol_cache_max_bytes;
    return j;
}

/* Where an event holds rule indexes (its rule, the capture's, the co-firing
 * ones); returns how many. */
static size_t event_rule_refs(struct event *e, size_t *refs[2 + ENGINE_MAX_COFIRING])
{
    size_t n = 0;
    refs[n++] = &e->rule;
    refs[n++] = &e->capture_rule;
    for (size_t i = 0; i < e->ncofiring && i < ENGINE_MAX_COFIRING; i++)
        refs[n++] = &e->cofiring[i].rule;
    return n;
}

/* Point the event's rule indexes into cfg, by the names kept at the start:
 * SIZE_MAX for a rule that a reload removed meanwhile. */
static void remap_rules(struct job *j, const struct config *cfg)
{
    size_t *idx[2 + ENGINE_MAX_COFIRING];
    size_t n = event_rule_refs(&j->ev, idx);
    for (size_t i = 0; i < n; i++) {
        size_t k = SIZE_MAX;
        for (size_t r = 0; j->rule_names[i] && r < cfg->nrules && k == SIZE_MAX; r++) {
            if (strcmp(cfg->rules[r].name, j->rule_names[i]) == 0)
                k = r;
        }
        *idx[i] = k;
    }
}

int capturer_start(struct capturer *c, struct instance *in, const struct event *e,
                   const struct config *cfg)
{
    if (e->capture_rule >= cfg->nrules)
        return -EINVAL;
    const struct capture_spec *cs = &cfg->rules[e->capture_rule].capture;
    struct job *j = make_job(in, cs->profile, cs->rate_hz, cs->duration_ns, cfg);
    j->has_event = true;
    j->ev = *e;
    /* a reload may move or remove rules before the capture ends: the
     * event's rule indexes are found again by name when it is collected */
    size_t *idx[2 + ENGINE_MAX_COFIRING];
    size_t n = event_rule_refs(&j->ev, idx);
    for (size_t i = 0; i < n; i++)
        j->rule_names[i] = *idx[i] < cfg->nrules ? xstrdup(cfg->rules[*idx[i]].name) : NULL;
    enqueue(c, j);
    return 0;
}

void capturer_tick(struct capturer *c, int64_t now_ns)
{
    (void)c;
    (void)now_ns;
}

static struct instance *find_instance(struct collector *coll, size_t target, int pid)
{
    for (size_t i = 0; i < collector_count(coll); i++) {
        struct instance *in = collector_at(coll, i);
        if (in->target == target && in->pid == pid)
            return in;
    }
    return NULL;
}

/* The instance that owns an engine slot: the same across restarts of its
 * process, when the pid changes. */
static struct instance *slot_owner(struct collector *coll, size_t target, int slot)
{
    for (size_t i = 0; i < collector_count(coll); i++) {
        struct instance *in = collector_at(coll, i);
        if (in->target == target && in->slot == slot)
            return in;
    }
    return NULL;
}

void capturer_collect(struct capturer *c, const struct config *cfg, struct collector *coll,
                      int64_t now_ns, int64_t wall_ns)
{
    uint64_t n;
    if (read(c->efd, &n, sizeof n) < 0 && errno != EAGAIN)
        slogf(SLOG_WARN, "capture eventfd: %s", strerror(errno));
    for (;;) {
        struct job *j = NULL, *prev = NULL;
        pthread_mutex_lock(&c->mu);
        for (struct job *k = c->head; k; prev = k, k = k->next) {
            if (k->state == JOB_DONE) {
                j = k;
                break;
            }
        }
        if (j) {
            if (prev)
                prev->next = j->next;
            else
                c->head = j->next;
            if (c->tail == j)
                c->tail = prev;
        }
        pthread_mutex_unlock(&c->mu);
        if (!j)
            break;

        struct capture_output out = {
            .profile = j->profile,
            .failure = j->failure[0] ? j->failure : NULL,
            .start_mono_ns = j->start_mono_ns,
            .end_mono_ns = j->end_mono_ns,
        };
        for (int i = 0; i < 4; i++) {
            if (!j->bufs[i])
                continue;
            out.names[out.nfiles] = file_names[i];
            out.types[out.nfiles] = file_types[i];
            out.data[out.nfiles] = j->bufs[i];
            out.lens[out.nfiles] = j->lens[i];
            out.nfiles++;
        }
        char pid[16], dur[32] = "";
        snprintf(pid, sizeof pid, "%d", j->pid);
        units_format_duration(j->end_mono_ns - j->start_mono_ns, dur, sizeof dur);
        if (out.failure)
            slog(SLOG_WARN, "capture failed", "pid", pid, "error", out.failure, NULL);
        else
            slog(SLOG_INFO, "capture done", "pid", pid, "duration", dur, NULL);

        /* the instance may be gone (exited, reload): the alert still goes out
         * when it can be described */
        bool known = cfg && coll && j->target < cfg->ntargets;
        struct instance *in = known ? find_instance(coll, j->target, j->pid) : NULL;
        /* the slot is released even when its process restarted meanwhile
         * (a new pid): otherwise it stays busy and the target is never
         * captured again */
        if (known && j->slot >= 0 && slot_owner(coll, j->target, j->slot)) {
            pthread_mutex_lock(c->dlock);
            engine_capture_done(c->eng, j->slot);
            pthread_mutex_unlock(c->dlock);
        }
        if (in && j->has_event)
            remap_rules(j, cfg);
        if (in)
            alerter_event(c->al, cfg, in, j->has_event ? &j->ev : NULL, &out, out.failure,
                          now_ns, wall_ns);
        else
            slog(SLOG_WARN, "capture of a process no longer watched: kept nowhere", "pid", pid,
                 NULL);
        if (out.profile_taken)
            j->profile = NULL;
        job_free(j);
    }
}

void capturer_abort_pid(struct capturer *c, int pid)
{
    pthread_mutex_lock(&c->mu);
    for (struct job *j = c->head; j; j = j->next) {
        if (j->pid == pid)
            j->stop = 1;
    }
    pthread_mutex_unlock(&c->mu);
}

void capturer_abort_all(struct capturer *c)
{
    pthread_mutex_lock(&c->mu);
    for (struct job *j = c->head; j; j = j->next)
        j->stop = 1;
    pthread_mutex_unlock(&c->mu);
}

void capturer_wait(struct capturer *c, int64_t timeout_ns)
{
    /* pthread_cond_timedwait measures on CLOCK_REALTIME */
    int64_t t = clock_wall_ns() + (timeout_ns > 0 ? timeout_ns : 0);
    struct timespec deadline;
    deadline.tv_sec = t / 1000000000LL;
    deadline.tv_nsec = t % 1000000000LL;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        bool busy = false;
        for (struct job *j = c->head; j && !busy; j = j->next)
            busy = j->state != JOB_DONE;
        if (!busy || pthread_cond_timedwait(&c->cv, &c->mu, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&c->mu);
}

int capturer_on_demand(struct capturer *c, const struct config *cfg, struct collector *coll,
                       const char *target, const char *profile, const char *duration,
                       int64_t now_ns, int64_t wall_ns, char *msg, size_t len)
{
    (void)wall_ns;
    int64_t dur = 5LL * 1000000000LL;
    if (!target || !target[0]) {
        snprintf(msg, len, "target=NAME is required\n");
        return 400;
    }
    enum profile_kind kind = PROFILE_CPU;
    if (profile && strcmp(profile, "memory") == 0) {
        kind = PROFILE_MEMORY;
    } else if (profile && strcmp(profile, "cpu") != 0) {
        snprintf(msg, len, "profile=%s: cpu or memory\n", profile);
        return 400;
    }
    if (duration) {
        char err[128];
        if (units_parse_duration(duration, strlen(duration), &dur, NULL, err, sizeof err) != 0 ||
            dur < 100000000LL || dur > 600LL * 1000000000LL) {
            snprintf(msg, len, "duration=%s: a duration from 100ms to 10m, such as 5s\n", duration);
            return 400;
        }
    }
    size_t t;
    for (t = 0; t < cfg->ntargets && strcmp(cfg->targets[t].name, target) != 0; t++)
        ;
    if (t == cfg->ntargets) {
        snprintf(msg, len, "no target named '%s'\n", target);
        return 404;
    }
    struct instance *in = NULL;
    for (size_t i = 0; i < collector_count(coll) && !in; i++) {
        struct instance *k = collector_at(coll, i);
        if (k->target == t && k->alive && k->slot >= 0)
            in = k;
    }
    if (!in) {
        snprintf(msg, len, "target '%s' has no running process\n", target);
        return 409;
    }
    enum suppress_reason why = engine_try_capture(c->eng, in->slot, now_ns);
    if (why == SUPPRESS_BUDGET) {
        snprintf(msg, len, "the capture budget (max_captures_per_hour) is spent\n");
        return 429;
    }
    if (why != SUPPRESS_NONE) {
        snprintf(msg, len, "a capture of '%s' is already running\n", target);
        return 409;
    }
    struct job *j = make_job(in, kind, RULE_DEFAULT_RATE_HZ, dur, cfg);
    enqueue(c, j);
    char d[32];
    units_format_duration(dur, d, sizeof d);
    const char *what = kind == PROFILE_MEMORY ? "memory" : "cpu";
    snprintf(msg, len, "capturing %s of %s (pid %d) for %s; the alert follows\n", what, target,
             in->pid, d);
    slog(SLOG_INFO, "on-demand capture", "target", target, "profile", what, "duration", d, NULL);
    return 202;
}
