/* sidecar/cmd_status.c - `stakeout status -c FILE [--json]`.
 *
 * Polls every target twice, one poll interval apart (CPU is a delta), and
 * prints each matched process with its metrics and what every rule thinks
 * of it (the engine's explanation: false with values, warming up, pending).
 * This is how a user checks that a rules file matches the right processes.
 * Nothing is captured and no process is touched beyond reading /proc. */
#include "cmd.h"

#include "clock.h"
#include "collector.h"
#include "config.h"
#include "engine.h"
#include "memcapture.h"
#include "logwatch.h"
#include "slog.h"
#include "units.h"
#include "xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: stakeout status -c FILE [--json]\n"
            "\n"
            "Poll the targets of a rules file twice, one poll interval apart, and print\n"
            "each matched process with its metrics and the state of every rule.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE   rules file (required)\n"
            "  -j, --json          print JSON: {\"targets\": [{\"name\", \"pid\", \"comm\",\n"
            "                      \"metrics\": {...}, \"rules\": [...]}]}\n"
            "  -h, --help          show this help\n");
}

static void sleep_until(int64_t t_ns)
{
    for (;;) {
        int64_t left = t_ns - clock_mono_ns();
        if (left <= 0)
            return;
        struct timespec ts = {left / 1000000000LL, left % 1000000000LL};
        nanosleep(&ts, NULL);
    }
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *metrics_json(const struct instance *in)
{
    const struct sample *s = history_last(&in->hist);
    json_t *m = json_object();
    for (int k = 0; k < METRIC_COUNT; k++) {
        double v = s ? s->v[k] : NAN;
        if (k == METRIC_RSS || k == METRIC_THREADS || k == METRIC_FDS)
            json_object_set_new(m, metric_name(k),
                                isfinite(v) ? json_integer((json_int_t)v) : json_null());
        else
            json_object_set_new(m, metric_name(k), num_or_null(v));
    }
    const struct inst_detail *d = &in->detail;
    json_object_set_new(m, "rss_anon", json_integer((json_int_t)d->rss_anon));
    json_object_set_new(m, "rss_file", json_integer((json_int_t)d->rss_file));
    json_object_set_new(m, "rss_shmem", json_integer((json_int_t)d->rss_shmem));
    json_object_set_new(m, "swap", json_integer((json_int_t)d->swap));
    json_object_set_new(m, "vm_size", json_integer((json_int_t)d->vm_size));
    json_object_set_new(m, "voluntary_ctxt_per_s", json_real(d->voluntary_ctxt_per_s));
    json_object_set_new(m, "involuntary_ctxt_per_s", json_real(d->involuntary_ctxt_per_s));
    json_object_set_new(m, "minflt_per_s", json_real(d->minflt_per_s));
    json_object_set_new(m, "majflt_per_s", json_real(d->majflt_per_s));
    if (d->have_cg_mem) {
        json_object_set_new(m, "cgroup_memory", json_integer((json_int_t)d->cg_usage));
        json_object_set_new(m, "cgroup_memory_limit", d->cg_limit == UINT64_MAX
                                                          ? json_null()
                                                          : json_integer((json_int_t)d->cg_limit));
    }
    return m;
}

static json_t *rule_json(const struct config *cfg, size_t r, const struct explain *x)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(cfg->rules[r].name));
    json_object_set_new(o, "state", json_string(rule_state_name(x->state)));
    json_object_set_new(o, "reason", json_string(explain_reason_name(x->reason)));
    if (x->remaining_ns > 0)
        json_object_set_new(o, "remaining_s", json_real((double)x->remaining_ns / 1e9));
    if (x->m)
        json_object_set_new(o, "true_polls", json_pack("{s:i,s:i}", "n", (int)x->n_true, "of",
                                                       (int)x->m));
    json_t *conds = json_array();
    for (unsigned i = 0; i < x->nobs; i++) {
        const struct observed *ob = &x->obs[i];
        json_t *c = json_object();
        json_object_set_new(c, "metric", json_string(metric_name(ob->metric)));
        json_object_set_new(c, "op", json_string(expr_op_name(ob->op)));
        json_object_set_new(c, "value", num_or_null(ob->value));
        json_object_set_new(c, "threshold", num_or_null(ob->threshold));
        json_object_set_new(c, "holds", json_boolean(ob->holds));
        if (ob->warming_up)
            json_object_set_new(c, "warming_up", json_true());
        json_array_append_new(conds, c);
    }
    json_object_set_new(o, "conditions", conds);
    return o;
}

static void print_rule_line(const struct config *cfg, size_t r, const struct explain *x)
{
    char rem[32] = "";
    printf("    %-18s %-9s %s", cfg->rules[r].name, rule_state_name(x->state),
           explain_reason_name(x->reason));
    if (x->remaining_ns > 0) {
        units_format_duration(x->remaining_ns, rem, sizeof rem);
        printf(" (%s left)", rem);
    }
    if (x->m)
        printf(" [%u of last %u polls]", x->n_true, x->m);
    for (unsigned i = 0; i < x->nobs; i++) {
        const struct observed *ob = &x->obs[i];
        char v[48], t[48];
        metric_format(ob->metric, ob->value, v, sizeof v);
        metric_format(ob->metric, ob->threshold, t, sizeof t);
        printf("%s %s %s %s %s%s", i ? ";" : ":", metric_name(ob->metric), v, expr_op_name(ob->op),
               ob->warming_up ? "baseline" : t, ob->holds ? " (true)" : "");
    }
    printf("\n");
}

static void print_table(const struct config *cfg, struct collector *c, struct engine *e,
                        int64_t now_ns)
{
    printf("%-16s %7s %-16s %7s %9s %8s %6s %10s\n", "TARGET", "PID", "COMM", "CPU%", "RSS",
           "THREADS", "FDS", "ERRORS/MIN");
    for (size_t t = 0; t < cfg->ntargets; t++) {
        bool any = false;
        for (size_t i = 0; i < collector_count(c); i++) {
            struct instance *in = collector_at(c, i);
            if (in->target != t || !in->alive)
                continue;
            any = true;
            const struct sample *s = history_last(&in->hist);
            char cpu[16], rss[32], thr[16], fds[16], err[16];
            metric_format(METRIC_CPU, s ? s->v[METRIC_CPU] : NAN, cpu, sizeof cpu);
            metric_format(METRIC_RSS, s ? s->v[METRIC_RSS] : NAN, rss, sizeof rss);
            metric_format(METRIC_THREADS, s ? s->v[METRIC_THREADS] : NAN, thr, sizeof thr);
            metric_format(METRIC_FDS, s ? s->v[METRIC_FDS] : NAN, fds, sizeof fds);
            snprintf(err, sizeof err, "%s",
                     s && !isnan(s->v[METRIC_ERRORS]) ? "" : "-");
            if (s && !isnan(s->v[METRIC_ERRORS]))
                snprintf(err, sizeof err, "%.0f", (double)s->v[METRIC_ERRORS]);
            if (strchr(cpu, '%'))
                *strchr(cpu, '%') = '\0';
            printf("%-16s %7d %-16s %7s %9s %8s %6s %10s\n", cfg->targets[t].name, in->pid,
                   in->meta.comm, cpu, rss, thr, fds, err);
            for (size_t k = 0; k < in->nhot; k++)
                printf("    thread %d %-16s %.1f%%\n", in->hot[k].tid, in->hot[k].name,
                       in->hot[k].cpu);
            for (size_t r = 0; r < cfg->nrules; r++) {
                struct explain x;
                engine_explain(e, in->slot, r, &in->hist, now_ns, &x);
                if (x.reason != EXPLAIN_NOT_APPLICABLE)
                    print_rule_line(cfg, r, &x);
            }
        }
        if (!any)
            printf("%-16s %7s (no process matches %s yet)\n", cfg->targets[t].name, "-",
                   match_kind_name(cfg->targets[t].match));
    }
}

static json_t *status_json(const struct config *cfg, struct collector *c, struct engine *e,
                           int64_t now_ns)
{
    json_t *targets = json_array();
    for (size_t t = 0; t < cfg->ntargets; t++) {
        bool any = false;
        for (size_t i = 0; i < collector_count(c); i++) {
            struct instance *in = collector_at(c, i);
            if (in->target != t || !in->alive)
                continue;
            any = true;
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(cfg->targets[t].name));
            json_object_set_new(o, "pid", json_integer(in->pid));
            json_object_set_new(o, "comm", json_string(in->meta.comm));
            json_object_set_new(o, "cmdline", json_string(in->meta.cmdline));
            json_object_set_new(o, "exe", json_string(in->meta.exe));
            json_object_set_new(o, "build_id", json_string(in->meta.build_id));
            json_object_set_new(o, "container_id", json_string(in->meta.container_id));
            json_object_set_new(o, "metrics", metrics_json(in));
            json_t *hot = json_array();
            for (size_t k = 0; k < in->nhot; k++)
                json_array_append_new(hot, json_pack("{s:i,s:s,s:f}", "tid", in->hot[k].tid,
                                                     "name", in->hot[k].name, "cpu",
                                                     in->hot[k].cpu));
            json_object_set_new(o, "hot_threads", hot);
            json_t *rules = json_array();
            for (size_t r = 0; r < cfg->nrules; r++) {
                struct explain x;
                engine_explain(e, in->slot, r, &in->hist, now_ns, &x);
                if (x.reason != EXPLAIN_NOT_APPLICABLE)
                    json_array_append_new(rules, rule_json(cfg, r, &x));
            }
            json_object_set_new(o, "rules", rules);
            json_array_append_new(targets, o);
        }
        if (!any) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(cfg->targets[t].name));
            json_object_set_new(o, "pid", json_null());
            json_object_set_new(o, "comm", json_null());
            json_object_set_new(o, "metrics", json_object());
            json_object_set_new(o, "rules", json_array());
            json_array_append_new(targets, o);
        }
    }
    return json_pack("{s:o}", "targets", targets);
}

/* One poll: collect, then give every instance's sample to the engine. */
static void poll_once(const struct config *cfg, struct collector *c, struct engine *e,
                      int64_t now_ns)
{
    const struct coll_event *ev;
    const struct event *eev;
    size_t n = collector_poll(c, now_ns, &ev);
    for (size_t i = 0; i < n; i++) {
        if (ev[i].kind == COLL_PROBLEM)
            slog(SLOG_WARN, ev[i].what, "target",
                 ev[i].inst ? cfg->targets[ev[i].inst->target].name : "-", NULL);
    }
    for (size_t i = 0; i < collector_count(c); i++) {
        struct instance *in = collector_at(c, i);
        if (in->slot < 0) {
            char label[96];
            snprintf(label, sizeof label, "%s:%d", cfg->targets[in->target].name, in->pid);
            in->slot = engine_slot_add(e, cfg->targets[in->target].name, label);
        }
        if (in->alive)
            engine_step(e, in->slot, &in->hist, now_ns, clock_wall_ns(), &eev);
    }
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool json = false;
    int ch;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "+c:jh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!path || optind < argc) {
        fprintf(stderr, "stakeout status: %s\n", path ? "unexpected argument" : "-c FILE is required");
        usage(stderr);
        return EXIT_USAGE;
    }

    struct diag_list d;
    struct config *cfg = NULL;
    diag_init(&d);
    if (config_load(path, CONFIG_TRUST_REQUIRE, &cfg, &d) != 0) {
        diag_sort(&d);
        diag_print(&d, path, stderr);
        diag_fini(&d);
        return 1;
    }
    diag_fini(&d);

    struct collector *c = collector_new(cfg);
    if (!c) {
        fprintf(stderr, "stakeout status: cannot start libproc2\n");
        config_free(cfg);
        return 1;
    }
    struct engine_params p = {cfg->rules, cfg->nrules, cfg->poll_interval_ns,
                              cfg->alert.max_captures_per_hour, (uint64_t)clock_wall_ns()};
    struct engine *e = engine_new(&p);
    collector_track_threads(c, true); /* hot threads from the two polls */

    char err[256];
    struct logwatch *lw = logwatch_new(cfg, err, sizeof err);
    if (!lw) {
        fprintf(stderr, "stakeout status: %s\n", err);
        engine_free(e);
        collector_free(c);
        config_free(cfg);
        return 1;
    }

    int64_t t0 = clock_mono_ns();
    poll_once(cfg, c, e, t0);
    /* logs are followed from now: their error rate is measured over the
     * interval between the two polls and scaled to a minute */
    for (size_t i = 0; i < collector_count(c); i++) {
        struct instance *in = collector_at(c, i);
        if (in->alive)
            logwatch_target_pid(lw, in->target, in->pid, in->meta.cgroup);
    }
    logwatch_poll(lw, t0, clock_wall_ns());
    sleep_until(t0 + cfg->poll_interval_ns);
    int64_t t1 = clock_mono_ns();
    logwatch_poll(lw, t1, clock_wall_ns());
    double scale = 60e9 / (double)(t1 - t0);
    for (size_t t = 0; t < cfg->ntargets; t++)
        collector_set_errors(c, t, logwatch_errors_per_min(lw, t, t1) * (scale > 1 ? scale : 1));
    poll_once(cfg, c, e, t1);

    /* which way a memory capture would see the target's calls here */
    char why[512];
    enum memcapture_method method = memcapture_choose(0, why, sizeof why);
    int rc = 0;
    if (json) {
        json_t *root = status_json(cfg, c, e, t1);
        json_object_set_new(root, "memory_capture",
                            json_pack("{s:s,s:s}", "method", memcapture_method_name(method),
                                      "why", why));
        if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
            rc = 1;
        printf("\n");
        json_decref(root);
    } else {
        print_table(cfg, c, e, t1);
        printf("memory captures: by %s (%s)\n", memcapture_method_name(method), why);
    }
    logwatch_free(lw);
    engine_free(e);
    collector_free(c);
    config_free(cfg);
    return rc;
}
