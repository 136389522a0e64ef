/* sidecar/daemon.c - the event loop of `stakeout run`; see daemon.h.
 *
 * One thread runs the loop: polls, rules, reloads, log reading, and the
 * hand-off of finished captures to alerting. Capture threads (capture.c),
 * the delivery thread (deliver.c) and the HTTP listener's thread only meet
 * the loop through the lock below and through the capture eventfd. */
#include "daemon.h"

#include "alerter.h"
#include "capture.h"
#include "clock.h"
#include "collector.h"
#include "config.h"
#include "engine.h"
#include "httpapi.h"
#include "logwatch.h"
#include "privs.h"
#include "promtext.h"
#include "strbuf.h"
#include "units.h"
#include "xalloc.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_LOG_FDS 64
#define STOP_GRACE_NS (4LL * 1000000000LL) /* SIGTERM to exit: "within a few seconds" */

struct daemon {
    const struct daemon_opts *opts;
    struct config *cfg;            /* owned; replaced on reload */
    struct collector *coll;        /* owned */
    struct engine *eng;            /* owned */
    struct logwatch *logs;         /* owned */
    struct capturer *cap;          /* owned: capture threads */
    struct alerter *alert;         /* owned: bundles, spool, delivery */
    struct httpapi *http;          /* owned, NULL without `listen:` */

    int epfd, tfd, sfd, ifd, capfd;
    char cfg_dir[PATH_MAX], cfg_base[NAME_MAX + 1];
    int log_fds[MAX_LOG_FDS];
    size_t nlog_fds;
    bool reload_pending, stopping;

    /* what the HTTP thread reads, under lock */
    pthread_mutex_t lock;
    uint64_t polls, captures_started, captures_suppressed, reloads_failed;
    bool last_reload_ok;
    int64_t last_reload_wall_ns, last_poll_mono_ns, started_wall_ns;
    bool ready;
};

static void i2s(char *buf, size_t len, long long v)
{
    snprintf(buf, len, "%lld", v);
}

/* ---- instances and the engine ---------------------------------------------- */

static const char *target_name(const struct daemon *d, const struct instance *in)
{
    return d->cfg->targets[in->target].name;
}

static void add_slot(struct daemon *d, struct instance *in)
{
    char label[128];
    snprintf(label, sizeof label, "%s:%d", target_name(d, in), in->pid);
    /* under the lock: the engine may move its slots, which the HTTP thread reads */
    pthread_mutex_lock(&d->lock);
    in->slot = engine_slot_add(d->eng, target_name(d, in), label);
    pthread_mutex_unlock(&d->lock);
}

/* The watched process behind an engine slot, NULL when none is. */
static struct instance *instance_of_slot(struct daemon *d, int slot)
{
    for (size_t i = 0; i < collector_count(d->coll); i++) {
        struct instance *in = collector_at(d->coll, i);
        if (in->slot == slot)
            return in;
    }
    return NULL;
}

/* Events of the engine for one instance: alerts, captures, suppressions. */
static void on_engine_events(struct daemon *d, struct instance *in, const struct event *ev,
                             size_t n, int64_t now, int64_t wall)
{
    char pid[16];
    i2s(pid, sizeof pid, in->pid);
    for (size_t i = 0; i < n; i++) {
        const struct event *e = &ev[i];
        const char *rule = e->rule < d->cfg->nrules ? d->cfg->rules[e->rule].name : "-";
        switch (e->kind) {
        case EVENT_FIRING:
        case EVENT_SCHEDULED:
            slog(e->kind == EVENT_FIRING ? SLOG_WARN : SLOG_INFO,
                 e->kind == EVENT_FIRING ? "rule firing" : "baseline capture due", "rule", rule,
                 "target", target_name(d, in), "pid", pid, "incident", e->incident, NULL);
            if (e->capture_rule != SIZE_MAX) {
                int rc = capturer_start(d->cap, in, e, d->cfg);
                pthread_mutex_lock(&d->lock);
                if (rc == 0)
                    d->captures_started++;
                pthread_mutex_unlock(&d->lock);
                if (rc != 0) {
                    /* the alert still goes out, saying why there is no profile */
                    pthread_mutex_lock(&d->lock);
                    engine_capture_done(d->eng, in->slot);
                    pthread_mutex_unlock(&d->lock);
                    alerter_event(d->alert, d->cfg, in, e, NULL, strerror(-rc), now, wall);
                }
            } else {
                alerter_event(d->alert, d->cfg, in, e, NULL, NULL, now, wall);
            }
            break;
        case EVENT_RESOLVED:
            slog(SLOG_INFO, "rule resolved", "rule", rule, "target", target_name(d, in), "pid",
                 pid, "incident", e->incident, NULL);
            alerter_event(d->alert, d->cfg, in, e, NULL, NULL, now, wall);
            break;
        case EVENT_SUPPRESSED:
            pthread_mutex_lock(&d->lock);
            d->captures_suppressed++;
            pthread_mutex_unlock(&d->lock);
            slog(SLOG_INFO, "firing suppressed", "rule", rule, "target", target_name(d, in),
                 "pid", pid, "reason", suppress_reason_name(e->reason), NULL);
            break;
        case EVENT_RESTARTED:
            break; /* the collector's restart event carries what the alert needs */
        }
    }
}

static void on_collector_events(struct daemon *d, const struct coll_event *ev, size_t n,
                                int64_t now, int64_t wall)
{
    for (size_t i = 0; i < n; i++) {
        const struct coll_event *e = &ev[i];
        struct instance *in = e->inst;
        char oldp[16], newp[16];
        i2s(oldp, sizeof oldp, e->old_pid);
        i2s(newp, sizeof newp, e->new_pid);
        switch (e->kind) {
        case COLL_APPEARED:
            add_slot(d, in);
            logwatch_target_pid(d->logs, in->target, in->pid, in->meta.cgroup);
            slog(SLOG_INFO, "target found", "target", target_name(d, in), "pid", newp, "comm",
                 in->meta.comm, "exe", in->meta.exe, "build_id", in->meta.build_id, NULL);
            break;
        case COLL_EXITED:
            slog(SLOG_WARN, "target exited", "target", target_name(d, in), "pid", oldp, "reason",
                 e->reason, NULL);
            capturer_abort_pid(d->cap, e->old_pid);
            break;
        case COLL_RESTARTED: {
            slog(SLOG_WARN, "target restarted", "target", target_name(d, in), "old_pid", oldp,
                 "new_pid", newp, "reason", e->reason, NULL);
            const struct event *eev;
            pthread_mutex_lock(&d->lock);
            size_t k = engine_slot_restarted(d->eng, in->slot, now, wall, &eev);
            pthread_mutex_unlock(&d->lock);
            on_engine_events(d, in, eev, k, now, wall);
            logwatch_target_pid(d->logs, in->target, in->pid, in->meta.cgroup);
            alerter_restart(d->alert, d->cfg, in, e, now, wall);
            break;
        }
        case COLL_MEMORY_EVENT:
            slog(SLOG_WARN, "cgroup memory event", "target", target_name(d, in), "pid", newp,
                 "event", e->what, NULL);
            break;
        case COLL_PROBLEM:
            slog(SLOG_WARN, e->what, "target", in ? target_name(d, in) : "-", NULL);
            break;
        }
    }
}

/* Keep epoll in step with the log followers' inotify descriptors, which
 * change when a target restarts. */
static void sync_log_fds(struct daemon *d)
{
    int now_fds[MAX_LOG_FDS];
    size_t n = logwatch_fds(d->logs, now_fds, MAX_LOG_FDS);
    for (size_t i = 0; i < d->nlog_fds; i++) {
        bool keep = false;
        for (size_t j = 0; j < n && !keep; j++)
            keep = now_fds[j] == d->log_fds[i];
        if (!keep)
            epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->log_fds[i], NULL); /* may be closed already */
    }
    for (size_t j = 0; j < n; j++) {
        bool had = false;
        for (size_t i = 0; i < d->nlog_fds && !had; i++)
            had = d->log_fds[i] == now_fds[j];
        if (!had) {
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = now_fds[j]};
            if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, now_fds[j], &ev) != 0)
                slogf(SLOG_WARN, "cannot watch a log: %s", strerror(errno));
        }
    }
    memcpy(d->log_fds, now_fds, n * sizeof *now_fds);
    d->nlog_fds = n;
}

static void do_poll(struct daemon *d)
{
    int64_t now = clock_mono_ns(), wall = clock_wall_ns();
    const struct coll_event *cev;

    logwatch_poll(d->logs, now, wall);
    for (size_t t = 0; t < d->cfg->ntargets; t++)
        collector_set_errors(d->coll, t, logwatch_errors_per_min(d->logs, t, now));
    pthread_mutex_lock(&d->lock);
    size_t n = collector_poll(d->coll, now, &cev);
    pthread_mutex_unlock(&d->lock);
    on_collector_events(d, cev, n, now, wall);

    for (size_t i = 0; i < collector_count(d->coll); i++) {
        struct instance *in = collector_at(d->coll, i);
        if (in->slot < 0)
            add_slot(d, in);
        if (!in->alive)
            continue;
        const struct event *ev;
        pthread_mutex_lock(&d->lock);
        size_t k = engine_step(d->eng, in->slot, &in->hist, now, wall, &ev);
        pthread_mutex_unlock(&d->lock);
        on_engine_events(d, in, ev, k, now, wall);
        /* hot threads are read only while something is going on */
        bool active = engine_slot_busy(d->eng, in->slot);
        for (size_t r = 0; r < d->cfg->nrules && !active; r++) {
            enum rule_state s = engine_rule_state(d->eng, in->slot, r);
            active = s == RULE_PENDING || s == RULE_FIRING;
        }
        in->track_threads = active;
    }
    capturer_tick(d->cap, now);
    sync_log_fds(d);
    pthread_mutex_lock(&d->lock);
    d->polls++;
    d->last_poll_mono_ns = now;
    d->ready = true;
    pthread_mutex_unlock(&d->lock);
}

/* ---- reload -------------------------------------------------------------------- */

/* Whether the targets of two configs are the same, so instances, histories
 * and log followers can stay. */
static bool same_targets(const struct config *a, const struct config *b)
{
    if (a->ntargets != b->ntargets || a->poll_interval_ns != b->poll_interval_ns ||
        a->history_ns != b->history_ns)
        return false;
    for (size_t i = 0; i < a->ntargets; i++) {
        const struct target_spec *x = &a->targets[i], *y = &b->targets[i];
        if (strcmp(x->name, y->name) != 0 || x->match != y->match || x->pid != y->pid ||
            strcmp(x->match_arg ? x->match_arg : "", y->match_arg ? y->match_arg : "") != 0 ||
            x->nlogs != y->nlogs)
            return false;
        for (size_t k = 0; k < x->nlogs; k++) {
            if (strcmp(x->logs[k].path, y->logs[k].path) != 0 ||
                x->logs[k].root != y->logs[k].root || x->logs[k].format != y->logs[k].format ||
                strcmp(x->logs[k].error_pattern, y->logs[k].error_pattern) != 0)
                return false;
        }
    }
    return true;
}

static int arm_timer(struct daemon *d)
{
    struct itimerspec its = {0};
    its.it_interval.tv_sec = d->cfg->poll_interval_ns / 1000000000LL;
    its.it_interval.tv_nsec = d->cfg->poll_interval_ns % 1000000000LL;
    its.it_value.tv_nsec = 1; /* first poll at once */
    return timerfd_settime(d->tfd, 0, &its, NULL) == 0 ? 0 : -errno;
}

/* A reload was refused (why: a reason for the log, or NULL when it was
 * logged already): the old rules keep running. */
static void reload_failed(struct daemon *d, const char *why)
{
    slog(SLOG_ERROR, "reload rejected: the old rules keep running", "file", d->opts->config_path,
         why ? "error" : NULL, why, NULL);
    pthread_mutex_lock(&d->lock);
    d->reloads_failed++;
    d->last_reload_ok = false;
    d->last_reload_wall_ns = clock_wall_ns();
    pthread_mutex_unlock(&d->lock);
}

static void reload(struct daemon *d)
{
    struct diag_list diags;
    struct config *next = NULL;

    d->reload_pending = false;
    diag_init(&diags);
    int rc = config_load(d->opts->config_path, CONFIG_TRUST_REQUIRE, &next, &diags);
    if (rc != 0) {
        diag_sort(&diags);
        for (size_t i = 0; i < diags.n; i++) {
            char where[PATH_MAX + 32];
            if (diags.items[i].line)
                snprintf(where, sizeof where, "%s:%u:%u", d->opts->config_path,
                         diags.items[i].line, diags.items[i].col);
            else
                snprintf(where, sizeof where, "%s", d->opts->config_path);
            slog(SLOG_ERROR, diags.items[i].msg, "file", where, NULL);
        }
        diag_fini(&diags);
        reload_failed(d, NULL);
        return;
    }
    diag_fini(&diags);

    bool same = same_targets(d->cfg, next);
    struct logwatch *lw = NULL;
    if (!same) {
        char lerr[256];
        lw = logwatch_new(next, lerr, sizeof lerr);
        if (!lw) {
            reload_failed(d, lerr);
            config_free(next);
            return;
        }
    }
    int64_t now = clock_mono_ns(), wall = clock_wall_ns();
    pthread_mutex_lock(&d->lock);
    /* the new spool first: the one step left that can fail */
    char aerr[512];
    if (alerter_set_config(d->alert, next, aerr, sizeof aerr) != 0) {
        pthread_mutex_unlock(&d->lock);
        reload_failed(d, aerr);
        logwatch_free(lw);
        config_free(next);
        return;
    }
    /* Episodes that alerted under a rule the reload changes or removes (all
     * of them when the targets change) end now: their resolved alerts are
     * told with the old rules and instances, still in place. */
    const struct event *ev;
    size_t k = engine_set_rules(d->eng, same ? next->rules : NULL, same ? next->nrules : 0, now,
                                &ev);
    for (size_t i = 0; i < k; i++) {
        struct instance *in = instance_of_slot(d, ev[i].slot);
        if (in)
            on_engine_events(d, in, &ev[i], 1, now, wall);
    }
    if (same) {
        /* rules change, watching goes on: unchanged rules keep their state */
        collector_set_config(d->coll, next);
        collector_set_rules(d->coll, next->rules, next->nrules);
        logwatch_set_config(d->logs, next);
        slog(SLOG_INFO, "rules reloaded", "file", d->opts->config_path, NULL);
    } else {
        /* other processes to watch: start watching afresh */
        capturer_abort_all(d->cap);
        alerter_set_logs(d->alert, lw);
        logwatch_free(d->logs);
        d->logs = lw;
        collector_free(d->coll);
        d->coll = collector_new(next);
        engine_free(d->eng);
        struct engine_params p = {next->rules, next->nrules, next->poll_interval_ns,
                                  next->alert.max_captures_per_hour, (uint64_t)wall};
        d->eng = engine_new(&p);
        capturer_set_engine(d->cap, d->eng);
        slog(SLOG_INFO, "rules reloaded with new targets: watching starts afresh", "file",
             d->opts->config_path, NULL);
    }
    config_free(d->cfg);
    d->cfg = next;
    d->last_reload_ok = true;
    d->last_reload_wall_ns = clock_wall_ns();
    pthread_mutex_unlock(&d->lock);
    if (arm_timer(d) != 0)
        slogf(SLOG_ERROR, "cannot re-arm the poll timer: %s", strerror(errno));
}

/* ---- HTTP ------------------------------------------------------------------------ */

static double self_cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return NAN;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double self_rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return NAN;
    int got = fscanf(f, "%ld %ld", &pages, &resident);
    fclose(f);
    return got == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : NAN;
}

static void metrics_text(struct daemon *d, struct strbuf *b)
{
    static const struct {
        enum metric m;
        const char *name, *help;
    } gauges[] = {
        {METRIC_CPU, "stakeout_target_cpu_percent", "CPU of the process, percent of one core"},
        {METRIC_RSS, "stakeout_target_rss_bytes", "Resident memory of the process"},
        {METRIC_ERRORS, "stakeout_target_error_lines_per_minute", "Matching log lines per minute"},
        {METRIC_THREADS, "stakeout_target_threads", "Threads of the process"},
        {METRIC_FDS, "stakeout_target_open_fds", "Open file descriptors of the process"},
        {METRIC_MEM_LIMIT, "stakeout_target_memory_limit_percent",
         "Cgroup memory use, percent of its limit"},
        {METRIC_CPU_LIMIT, "stakeout_target_cpu_limit_percent",
         "CPU of the process, percent of the cgroup quota"},
    };
    const struct config *cfg = d->cfg;

    promtext_family(b, "stakeout_build_info", "Version of stakeout", PROMTEXT_GAUGE);
    const char *bi[] = {"version", STAKEOUT_VERSION, NULL};
    promtext_sample(b, "stakeout_build_info", bi, 1);
    promtext_family(b, "stakeout_target_up", "1 when a process of the target is watched",
                    PROMTEXT_GAUGE);
    for (size_t t = 0; t < cfg->ntargets; t++) {
        bool up = false;
        for (size_t i = 0; i < collector_count(d->coll); i++)
            up |= collector_at(d->coll, i)->target == t && collector_at(d->coll, i)->alive;
        const char *l[] = {"target", cfg->targets[t].name, NULL};
        promtext_sample(b, "stakeout_target_up", l, up);
    }
    for (size_t g = 0; g < sizeof gauges / sizeof gauges[0]; g++) {
        promtext_family(b, gauges[g].name, gauges[g].help, PROMTEXT_GAUGE);
        for (size_t i = 0; i < collector_count(d->coll); i++) {
            struct instance *in = collector_at(d->coll, i);
            const struct sample *s = history_last(&in->hist);
            if (!in->alive || !s)
                continue;
            char pid[16];
            i2s(pid, sizeof pid, in->pid);
            const char *l[] = {"target", target_name(d, in), "pid", pid, NULL};
            promtext_sample(b, gauges[g].name, l, s->v[gauges[g].m]);
        }
    }
    promtext_family(b, "stakeout_target_restarts_total", "Restarts seen of the target's process",
                    PROMTEXT_COUNTER);
    /* one series per target: its processes' restarts summed (a series per
     * instance would repeat the same labels, which Prometheus rejects) */
    for (size_t t = 0; t < cfg->ntargets; t++) {
        unsigned long restarts = 0;
        for (size_t i = 0; i < collector_count(d->coll); i++) {
            if (collector_at(d->coll, i)->target == t)
                restarts += collector_at(d->coll, i)->restarts;
        }
        const char *l[] = {"target", cfg->targets[t].name, NULL};
        promtext_sample(b, "stakeout_target_restarts_total", l, (double)restarts);
    }
    promtext_family(b, "stakeout_rule_state",
                    "State of a rule for a process: 0 inactive, 1 pending, 2 firing, 3 resolved",
                    PROMTEXT_GAUGE);
    for (size_t i = 0; i < collector_count(d->coll); i++) {
        struct instance *in = collector_at(d->coll, i);
        if (!in->alive || in->slot < 0)
            continue;
        char pid[16];
        i2s(pid, sizeof pid, in->pid);
        for (size_t r = 0; r < cfg->nrules; r++) {
            struct explain x;
            engine_explain(d->eng, in->slot, r, &in->hist, d->last_poll_mono_ns, &x);
            if (x.reason == EXPLAIN_NOT_APPLICABLE)
                continue;
            const char *l[] = {"rule", cfg->rules[r].name, "target", target_name(d, in), "pid",
                               pid, NULL};
            promtext_sample(b, "stakeout_rule_state", l, (double)x.state);
        }
    }
    struct alerter_stats as;
    alerter_stats(d->alert, &as);
    struct {
        const char *name, *help;
        double v;
    } counters[] = {
        {"stakeout_polls_total", "Polls done", (double)d->polls},
        {"stakeout_captures_total", "Captures started", (double)d->captures_started},
        {"stakeout_captures_suppressed_total", "Firings suppressed by cooldown or budget",
         (double)d->captures_suppressed},
        {"stakeout_alerts_delivered_total", "Alert deliveries acknowledged with a 2xx",
         (double)as.delivered},
        {"stakeout_alert_delivery_failures_total", "Delivery attempts that failed",
         (double)as.failures},
        {"stakeout_config_reload_failures_total", "Reloads rejected", (double)d->reloads_failed},
    };
    for (size_t k = 0; k < sizeof counters / sizeof counters[0]; k++) {
        promtext_family(b, counters[k].name, counters[k].help, PROMTEXT_COUNTER);
        promtext_sample(b, counters[k].name, NULL, counters[k].v);
    }
    promtext_family(b, "stakeout_alerts_pending", "Deliveries not yet acknowledged",
                    PROMTEXT_GAUGE);
    promtext_sample(b, "stakeout_alerts_pending", NULL, (double)as.pending);
    promtext_family(b, "stakeout_spool_bytes", "Bytes in the spool directory", PROMTEXT_GAUGE);
    promtext_sample(b, "stakeout_spool_bytes", NULL, (double)as.spool_bytes);
    promtext_family(b, "stakeout_config_last_reload_successful",
                    "1 when the last reload of the rules file was accepted", PROMTEXT_GAUGE);
    promtext_sample(b, "stakeout_config_last_reload_successful", NULL, d->last_reload_ok);
    promtext_family(b, "stakeout_process_cpu_seconds_total", "CPU time of stakeout itself",
                    PROMTEXT_COUNTER);
    promtext_sample(b, "stakeout_process_cpu_seconds_total", NULL, self_cpu_seconds());
    promtext_family(b, "stakeout_process_resident_memory_bytes", "RSS of stakeout itself",
                    PROMTEXT_GAUGE);
    promtext_sample(b, "stakeout_process_resident_memory_bytes", NULL, self_rss_bytes());
    promtext_family(b, "stakeout_process_start_time_seconds", "Start of stakeout, Unix time",
                    PROMTEXT_GAUGE);
    promtext_sample(b, "stakeout_process_start_time_seconds", NULL,
                    (double)d->started_wall_ns / 1e9);
}

static json_t *rules_json(struct daemon *d)
{
    const struct config *cfg = d->cfg;
    json_t *rules = json_array();
    for (size_t r = 0; r < cfg->nrules; r++) {
        const struct rule_spec *rs = &cfg->rules[r];
        char text[EXPR_MAX_LEN * 2] = "";
        expr_format(rs->when, text, sizeof text);
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(rs->name));
        if (rs->when)
            json_object_set_new(o, "when", json_string(text));
        if (rs->every_ns > 0) {
            units_format_duration(rs->every_ns, text, sizeof text);
            json_object_set_new(o, "every", json_string(text));
        }
        json_object_set_new(o, "severity", json_string(severity_name(rs->severity)));
        json_t *states = json_array();
        for (size_t i = 0; i < collector_count(d->coll); i++) {
            struct instance *in = collector_at(d->coll, i);
            if (!in->alive || in->slot < 0)
                continue;
            struct explain x;
            engine_explain(d->eng, in->slot, r, &in->hist, d->last_poll_mono_ns, &x);
            if (x.reason == EXPLAIN_NOT_APPLICABLE)
                continue;
            json_t *s = json_pack("{s:s,s:i,s:s,s:s}", "target", target_name(d, in), "pid",
                                  in->pid, "state", rule_state_name(x.state), "reason",
                                  explain_reason_name(x.reason));
            if (x.remaining_ns > 0)
                json_object_set_new(s, "remaining_s", json_real((double)x.remaining_ns / 1e9));
            json_array_append_new(states, s);
        }
        json_object_set_new(o, "states", states);
        json_array_append_new(rules, o);
    }
    return json_pack("{s:o}", "rules", rules);
}

static bool token_ok(const struct daemon *d, const struct http_req *req)
{
    const char *want = d->cfg->capture_token;
    const char *auth = http_req_header(req, "Authorization");
    if (!want || !want[0] || !auth || strncmp(auth, "Bearer ", 7) != 0)
        return false;
    /* constant time over the token's length; never past the end of a
     * shorter header value */
    const char *got = auth + 7;
    size_t n = strlen(want), glen = strlen(got);
    unsigned char diff = glen != n;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(want[i] ^ (i < glen ? got[i] : 0));
    return diff == 0;
}

static void on_http(void *ctx, const struct http_req *req, struct http_resp *resp)
{
    struct daemon *d = ctx;
    const char *path = http_req_path(req), *method = http_req_method(req);

    pthread_mutex_lock(&d->lock);
    if (strcmp(method, "GET") == 0 && strcmp(path, "/metrics") == 0) {
        struct strbuf b;
        strbuf_init(&b);
        metrics_text(d, &b);
        resp->status = 200;
        snprintf(resp->content_type, sizeof resp->content_type, "%s", PROMTEXT_CONTENT_TYPE);
        resp->len = b.len;
        resp->body = strbuf_take(&b);
        strbuf_fini(&b);
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/healthz") == 0) {
        /* alive: the loop polled recently */
        bool ok = clock_mono_ns() - d->last_poll_mono_ns < 3 * d->cfg->poll_interval_ns + 2000000000LL;
        http_resp_text(resp, ok ? 200 : 503, "text/plain", ok ? "ok\n" : "event loop stalled\n");
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/readyz") == 0) {
        http_resp_text(resp, d->ready ? 200 : 503, "text/plain", d->ready ? "ready\n" : "starting\n");
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/rules") == 0) {
        json_t *j = rules_json(d);
        char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        http_resp_text(resp, 200, "application/json", text ? text : "{}");
        free(text);
    } else if (strcmp(path, "/capture") == 0) {
        if (strcmp(method, "POST") != 0) {
            http_resp_text(resp, 405, "text/plain", "use POST\n");
        } else if (!token_ok(d, req)) {
            http_resp_text(resp, 401, "text/plain", "a bearer token is needed\n");
            snprintf(resp->www_authenticate, sizeof resp->www_authenticate, "Bearer");
        } else {
            char msg[256];
            int status = capturer_on_demand(d->cap, d->cfg, d->coll, http_req_query(req, "target"),
                                            http_req_query(req, "profile"),
                                            http_req_query(req, "duration"), clock_mono_ns(), clock_wall_ns(),
                                            msg, sizeof msg);
            http_resp_text(resp, status, "text/plain", msg);
        }
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/") == 0) {
        http_resp_text(resp, 200, "text/html",
                       "<html><body><h1>stakeout</h1><a href=\"/metrics\">metrics</a> "
                       "<a href=\"/rules\">rules</a></body></html>\n");
    } else {
        http_resp_text(resp, 404, "text/plain", "not found\n");
    }
    pthread_mutex_unlock(&d->lock);
}

/* ---- setup and loop ---------------------------------------------------------------- */

/* Take all the descriptors the hard limit allows. Services start with a
 * soft limit of 1,024 (systemd's default, kept low for programs that still
 * use select(2)); nothing here uses select(2), and polls, captures, symbol
 * files, deliveries and HTTP clients all take descriptors. Raising the soft
 * limit up to the hard one needs no privilege. desc gets the limit in force
 * afterwards, for the log. */
static void raise_fd_limit(char *desc, size_t len)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        snprintf(desc, len, "unknown (%s)", strerror(errno));
        return;
    }
    unsigned long long soft = rl.rlim_cur, hard = rl.rlim_max;
    if (soft < hard) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            snprintf(desc, len, "%llu (cannot raise to %llu: %s)", soft, hard, strerror(errno));
            return;
        }
        soft = hard;
    }
    snprintf(desc, len, "%llu", soft);
}

static int watch_config_dir(struct daemon *d)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", d->opts->config_path);
    char *slash = strrchr(tmp, '/');
    if (slash) {
        *slash = '\0';
        snprintf(d->cfg_dir, sizeof d->cfg_dir, "%s", tmp[0] ? tmp : "/");
        snprintf(d->cfg_base, sizeof d->cfg_base, "%.255s", slash + 1);
    } else {
        snprintf(d->cfg_dir, sizeof d->cfg_dir, ".");
        snprintf(d->cfg_base, sizeof d->cfg_base, "%.255s", tmp);
    }
    d->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->ifd == -1)
        return -errno;
    /* the directory: editors replace files, Kubernetes swaps a ..data symlink */
    if (inotify_add_watch(d->ifd, d->cfg_dir,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) == -1)
        return -errno;
    return 0;
}

static void drain_config_events(struct daemon *d)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(d->ifd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->len && (strcmp(ev->name, d->cfg_base) == 0 || strcmp(ev->name, "..data") == 0))
                d->reload_pending = true; /* applied at the next poll: editors write twice */
            p += sizeof *ev + ev->len;
        }
    }
}

static int add_fd(int epfd, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static void teardown(struct daemon *d)
{
    httpapi_stop(d->http);
    d->http = NULL;
    capturer_free(d->cap);
    alerter_free(d->alert);
    logwatch_free(d->logs);
    engine_free(d->eng);
    collector_free(d->coll);
    config_free(d->cfg);
    int fds[] = {d->epfd, d->tfd, d->sfd, d->ifd, d->capfd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    pthread_mutex_destroy(&d->lock);
}

int daemon_run(const struct daemon_opts *o)
{
    struct daemon dd = {0}, *d = &dd;
    struct diag_list diags;
    char err[512], kept[96] = "all (--keep-privileges)";
    int rc = 1;

    d->opts = o;
    d->epfd = d->tfd = d->sfd = d->ifd = d->capfd = -1;
    pthread_mutex_init(&d->lock, NULL);
    d->started_wall_ns = clock_wall_ns();
    d->last_reload_ok = true;
    slog_setup(o->log_level, o->log_format, -1);

    diag_init(&diags);
    if (config_load(o->config_path, CONFIG_TRUST_REQUIRE, &d->cfg, &diags) != 0) {
        diag_sort(&diags);
        diag_print(&diags, o->config_path, stderr);
        diag_fini(&diags);
        slog(SLOG_ERROR, "refusing to start", "file", o->config_path, NULL);
        goto out;
    }
    diag_fini(&diags);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGPIPE);
    /* blocked before any thread starts, so every thread inherits the mask */
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
        goto out;
    if (!o->keep_privileges) {
        int prc = privs_drop(d->cfg->dac_read_search, kept, sizeof kept);
        if (prc != 0) {
            slogf(SLOG_ERROR, "cannot drop privileges: %s", strerror(-prc));
            goto out;
        }
    }
    char max_fds[128];
    raise_fd_limit(max_fds, sizeof max_fds);
    slog(SLOG_INFO, "starting", "version", STAKEOUT_VERSION, "rules", o->config_path,
         "capabilities", kept, "max_fds", max_fds, NULL);
    /* only now: alerter_new starts the delivery thread, which must inherit
     * the blocked signals (SIGHUP or SIGTERM delivered to it would kill the
     * daemon) and the reduced capabilities (they are per thread). The spool
     * is written without privileges from here on anyway. */
    d->alert = alerter_new(d->cfg, err, sizeof err);
    if (!d->alert) {
        slog(SLOG_ERROR, "cannot start alert delivery", "error", err, NULL);
        goto out;
    }

    d->coll = collector_new(d->cfg);
    struct engine_params p = {d->cfg->rules, d->cfg->nrules, d->cfg->poll_interval_ns,
                              d->cfg->alert.max_captures_per_hour, (uint64_t)clock_wall_ns()};
    d->eng = engine_new(&p);
    d->logs = logwatch_new(d->cfg, err, sizeof err);
    if (!d->coll || !d->logs) {
        slog(SLOG_ERROR, "cannot start", "error", d->coll ? err : "libproc2", NULL);
        goto out;
    }
    alerter_set_logs(d->alert, d->logs);
    d->cap = capturer_new(d->eng, d->alert, &d->lock, &d->capfd, err, sizeof err);
    if (!d->cap) {
        slog(SLOG_ERROR, "cannot start the capture worker", "error", err, NULL);
        goto out;
    }

    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    d->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d->epfd == -1 || d->tfd == -1 || d->sfd == -1 || watch_config_dir(d) != 0 ||
        arm_timer(d) != 0 || add_fd(d->epfd, d->tfd) != 0 || add_fd(d->epfd, d->sfd) != 0 ||
        add_fd(d->epfd, d->ifd) != 0 || add_fd(d->epfd, d->capfd) != 0) {
        slogf(SLOG_ERROR, "cannot set up the event loop: %s", strerror(errno));
        goto out;
    }
    if (d->cfg->listen) {
        if (httpapi_start(d->cfg->listen, on_http, d, &d->http, err, sizeof err) != 0) {
            slog(SLOG_ERROR, "cannot start the HTTP listener", "error", err, NULL);
            goto out;
        }
        char port[16];
        i2s(port, sizeof port, httpapi_port(d->http));
        slog(SLOG_INFO, "listening", "address", d->cfg->listen, "port", port, NULL);
    }

    int64_t stop_deadline = 0;
    while (!d->stopping) {
        struct epoll_event evs[16];
        int n = epoll_wait(d->epfd, evs, 16, -1);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            slogf(SLOG_ERROR, "epoll_wait: %s", strerror(errno));
            goto out;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == d->tfd) {
                uint64_t ticks;
                if (read(d->tfd, &ticks, sizeof ticks) > 0) {
                    if (d->reload_pending)
                        reload(d);
                    do_poll(d);
                }
            } else if (fd == d->sfd) {
                struct signalfd_siginfo si;
                while (read(d->sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGHUP) {
                        slog(SLOG_INFO, "SIGHUP: reloading", NULL);
                        reload(d);
                    } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                        slog(SLOG_INFO, "stopping", "signal",
                             si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
                        d->stopping = true;
                    }
                }
            } else if (fd == d->ifd) {
                drain_config_events(d);
            } else if (fd == d->capfd) {
                capturer_collect(d->cap, d->cfg, d->coll, clock_mono_ns(), clock_wall_ns());
            } else {
                logwatch_ready(d->logs, fd, clock_mono_ns(), clock_wall_ns());
            }
        }
    }

    /* stop: no more polls; running captures end now, detaching cleanly; what
     * they got and everything spooled is handed to delivery */
    stop_deadline = clock_mono_ns() + STOP_GRACE_NS;
    capturer_abort_all(d->cap);
    capturer_wait(d->cap, stop_deadline - clock_mono_ns());
    capturer_collect(d->cap, d->cfg, d->coll, clock_mono_ns(), clock_wall_ns());
    alerter_flush(d->alert, stop_deadline - clock_mono_ns());
    slog(SLOG_INFO, "stopped", NULL);
    rc = 0;
out:
    teardown(d);
    return rc;
}
