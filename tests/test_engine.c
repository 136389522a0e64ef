/* tests/test_engine.c - the trigger engine (triggers/engine) over synthetic
 * series: each test feeds samples poll by poll and asserts the exact events
 * and their times. Rules come from YAML through the real config parser. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "engine.h"

#define S 1000000000LL
#define WALL0 (1795000000LL * S) /* any fixed wall clock */

/* One recorded event, flattened for assertions. */
struct rec {
    enum event_kind kind;
    char rule[32];
    double t;               /* seconds */
    enum suppress_reason reason;
    char capture[32];       /* rule whose capture to take, "" for none */
    size_t ncofiring;
    unsigned supp_cooldown, supp_budget;
    char incident[160];
    double true_for;        /* seconds */
};

struct run {
    struct config *cfg;
    struct engine *e;
    struct history h;
    int slot;
    struct rec recs[4096];
    size_t nrecs;
    bool auto_done;         /* finish captures right away */
};

static struct run *run_new(const char *yaml_rules_and_more)
{
    static char text[16384];
    snprintf(text, sizeof text,
             "version: 1\n"
             "targets: [{name: app, match: {pid: 1}}]\n"
             "%s",
             yaml_rules_and_more);
    struct diag_list d;
    diag_init(&d);
    struct run *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    if (config_parse("t.yaml", text, strlen(text), NULL, NULL, &r->cfg, &d) != 0) {
        diag_print(&d, "t.yaml", stderr);
        cr_assert_fail("test rules do not parse");
    }
    diag_fini(&d);
    struct engine_params p = {r->cfg->rules, r->cfg->nrules, r->cfg->poll_interval_ns,
                              r->cfg->alert.max_captures_per_hour, 42};
    r->e = engine_new(&p);
    history_init(&r->h, (size_t)(r->cfg->history_ns / r->cfg->poll_interval_ns));
    r->slot = engine_slot_add(r->e, "app", "app:1");
    r->auto_done = true;
    return r;
}

static void run_free(struct run *r)
{
    engine_free(r->e);
    history_fini(&r->h);
    config_free(r->cfg);
    free(r);
}

static void record(struct run *r, const struct event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert_lt(r->nrecs, sizeof r->recs / sizeof r->recs[0]);
        struct rec *x = &r->recs[r->nrecs++];
        memset(x, 0, sizeof *x);
        x->kind = ev[i].kind;
        if (ev[i].rule != SIZE_MAX)
            snprintf(x->rule, sizeof x->rule, "%s", r->cfg->rules[ev[i].rule].name);
        x->t = (double)ev[i].t_ns / S;
        x->reason = ev[i].reason;
        if (ev[i].capture_rule != SIZE_MAX)
            snprintf(x->capture, sizeof x->capture, "%s", r->cfg->rules[ev[i].capture_rule].name);
        x->ncofiring = ev[i].ncofiring;
        x->supp_cooldown = ev[i].suppressed_cooldown;
        x->supp_budget = ev[i].suppressed_budget;
        snprintf(x->incident, sizeof x->incident, "%s", ev[i].incident);
        x->true_for = (double)ev[i].true_for_ns / S;
        if ((ev[i].kind == EVENT_FIRING || ev[i].kind == EVENT_SCHEDULED) &&
            ev[i].capture_rule != SIZE_MAX && r->auto_done)
            engine_capture_done(r->e, r->slot);
    }
}

/* Push one poll at t_ms with the given metric (others NaN) and step. */
static void poll1(struct run *r, int64_t t_ms, enum metric m, double v)
{
    struct sample s;
    const struct event *ev;
    sample_init(&s, t_ms * 1000000LL);
    s.v[m] = (float)v;
    history_push(&r->h, &s);
    size_t n = engine_step(r->e, r->slot, &r->h, s.t_ns, WALL0 + s.t_ns, &ev);
    record(r, ev, n);
}

/* Feed values[i] at t = (start_s + i * poll) for a metric. */
static void feed(struct run *r, double start_s, enum metric m, const double *values, size_t n)
{
    int64_t poll_ms = r->cfg->poll_interval_ns / 1000000LL;
    for (size_t i = 0; i < n; i++)
        poll1(r, (int64_t)(start_s * 1000) + (int64_t)i * poll_ms, m, values[i]);
}

static void expect(const struct run *r, size_t i, enum event_kind kind, const char *rule, double t)
{
    cr_assert_lt(i, r->nrecs, "expected event %zu (%s %s at %.1fs), only %zu events", i,
                 event_kind_name(kind), rule, t, r->nrecs);
    const struct rec *x = &r->recs[i];
    cr_assert_eq(x->kind, kind, "event %zu: %s, want %s", i, event_kind_name(x->kind),
                 event_kind_name(kind));
    cr_assert_str_eq(x->rule, rule, "event %zu: rule %s, want %s", i, x->rule, rule);
    cr_assert_float_eq(x->t, t, 1e-6, "event %zu (%s %s): at %.3fs, want %.3fs", i,
                       event_kind_name(kind), rule, x->t, t);
}

Test(engine, steady_below_threshold_never_fires)
{
    struct run *r = run_new("rules: [{name: hot, when: 'cpu > 80%', for: 5s}]\n");
    double v[600];
    for (size_t i = 0; i < 600; i++)
        v[i] = 50.0 + (i % 7);
    feed(r, 1, METRIC_CPU, v, 600);
    cr_assert_eq(r->nrecs, 0);
    cr_assert_eq(engine_rule_state(r->e, r->slot, 0), RULE_INACTIVE);
    run_free(r);
}

Test(engine, step_fires_after_for_and_resolves_after_hysteresis)
{
    struct run *r = run_new("rules: [{name: hot, when: 'cpu > 80%', for: 5s, "
                            "capture: {profile: cpu}}]\n");
    double v[60];
    for (size_t i = 0; i < 60; i++)
        v[i] = (i >= 10 && i < 30) ? 95.0 : 20.0;
    feed(r, 1, METRIC_CPU, v, 60); /* t = 1..60; hot from t=11 to t=30 */
    cr_assert_eq(r->nrecs, 2);
    expect(r, 0, EVENT_FIRING, "hot", 16);
    cr_assert_str_eq(r->recs[0].capture, "hot");
    cr_assert_float_eq(r->recs[0].true_for, 5.0, 1e-9);
    /* cool from t=31; resolve_after defaults to `for` (5s) */
    expect(r, 1, EVENT_RESOLVED, "hot", 36);
    cr_assert_str_eq(r->recs[0].incident, r->recs[1].incident, "one incident per episode");
    cr_assert(strncmp(r->recs[0].incident, "hot/app:1/", 10) == 0, "%s", r->recs[0].incident);
    run_free(r);
}
