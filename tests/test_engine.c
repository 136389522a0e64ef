/* tests/test_engine.c - the trigger engine (triggers/engine) over synthetic
 * series: each test feeds samples poll by poll and asserts the exact events
 * and their times. Rules come from YAML through the real config parser.
 *
 * Expected times are derived from the semantics documented in engine.h, not
 * read off the engine; the comment beside each expectation gives the
 * reasoning. Unless a test says otherwise the poll interval is 1s and the
 * first poll is at t = 1s, so poll index i is at t = i + 1. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"

#define S 1000000000LL
#define MIB (1024.0 * 1024.0)
#define WALL0 (1795000000LL * S) /* any fixed wall clock */
#define MAX_SLOTS 2
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- harness ----------------------------------------------------------- */

/* One recorded event, flattened for assertions. */
struct rec {
    enum event_kind kind;
    size_t slot;   /* index into run.slot */
    char rule[32]; /* "" for EVENT_RESTARTED */
    size_t rule_idx;
    double t; /* seconds */
    enum suppress_reason reason;
    char capture[32]; /* rule whose capture to take, "" for none */
    size_t ncofiring;
    char cofiring[ENGINE_MAX_COFIRING][32];
    size_t cofiring_idx[ENGINE_MAX_COFIRING];
    char cofiring_incident[ENGINE_MAX_COFIRING][160];
    unsigned supp_cooldown, supp_budget;
    char incident[160];
    double true_for;      /* seconds */
    double episode_start; /* seconds */
    int64_t episode_wall_ns;
};

struct run {
    struct config *cfg;
    struct engine *e;
    struct history h[MAX_SLOTS];
    int slot[MAX_SLOTS];
    size_t nslots;
    struct rec *recs; /* owned, grows */
    size_t nrecs, caprecs;
    bool auto_done;       /* finish captures right away */
    int64_t wall_skew_ns; /* added to the wall clock: simulated clock jumps */
};

/* An expected event. Strings are arrays so that tables can be parameters. */
struct want {
    enum event_kind kind;
    char rule[24];
    double t;
};

static int64_t ns_of(double t_s)
{
    return (int64_t)llround(t_s * 1e9);
}

static struct config *parse_rules(const char *targets, const char *rest)
{
    static char text[16384];
    struct config *cfg = NULL;
    struct diag_list d;

    snprintf(text, sizeof text, "version: 1\n%s%s", targets, rest);
    diag_init(&d);
    if (config_parse("t.yaml", text, strlen(text), NULL, NULL, &cfg, &d) != 0) {
        diag_print(&d, "t.yaml", stderr);
        cr_assert_fail("test rules do not parse:\n%s", text);
    }
    diag_fini(&d);
    return cfg;
}

#define APP_TARGET "targets: [{name: app, match: {pid: 1}}]\n"

/* A run over the given targets and rules, with one slot per label; labels
 * are "target:label" pairs such as "app:1". */
static struct run *run_new_slots(const char *targets, const char *rest, const char *const *slots,
                                 size_t nslots)
{
    struct run *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    r->cfg = parse_rules(targets, rest);
    struct engine_params p = {r->cfg->rules, r->cfg->nrules, r->cfg->poll_interval_ns,
                              r->cfg->alert.max_captures_per_hour, 42};
    r->e = engine_new(&p);
    cr_assert_leq(nslots, MAX_SLOTS);
    for (size_t k = 0; k < nslots; k++) {
        char target[64];
        snprintf(target, sizeof target, "%s", slots[k]);
        char *colon = strchr(target, ':');
        cr_assert_not_null(colon);
        *colon = '\0';
        history_init(&r->h[k], (size_t)(r->cfg->history_ns / r->cfg->poll_interval_ns));
        r->slot[k] = engine_slot_add(r->e, target, slots[k]);
    }
    r->nslots = nslots;
    r->auto_done = true;
    return r;
}

static struct run *run_new(const char *rules_and_more)
{
    static const char *const one[] = {"app:1"};
    return run_new_slots(APP_TARGET, rules_and_more, one, 1);
}

static void run_free(struct run *r)
{
    engine_free(r->e);
    for (size_t k = 0; k < r->nslots; k++)
        history_fini(&r->h[k]);
    config_free(r->cfg);
    free(r->recs);
    free(r);
}

static const char *rule_name(const struct run *r, size_t i)
{
    return i == SIZE_MAX ? "" : r->cfg->rules[i].name;
}

static void record(struct run *r, const struct event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r->nrecs == r->caprecs) {
            r->caprecs = r->caprecs ? 2 * r->caprecs : 64;
            r->recs = realloc(r->recs, r->caprecs * sizeof *r->recs);
            cr_assert_not_null(r->recs);
        }
        struct rec *x = &r->recs[r->nrecs++];
        memset(x, 0, sizeof *x);
        x->kind = ev[i].kind;
        for (size_t k = 0; k < r->nslots; k++) {
            if (r->slot[k] == ev[i].slot)
                x->slot = k;
        }
        x->rule_idx = ev[i].rule;
        snprintf(x->rule, sizeof x->rule, "%s", rule_name(r, ev[i].rule));
        x->t = (double)ev[i].t_ns / S;
        x->reason = ev[i].reason;
        snprintf(x->capture, sizeof x->capture, "%s", rule_name(r, ev[i].capture_rule));
        x->ncofiring = ev[i].ncofiring;
        for (size_t k = 0; k < ev[i].ncofiring; k++) {
            x->cofiring_idx[k] = ev[i].cofiring[k].rule;
            snprintf(x->cofiring[k], sizeof x->cofiring[k], "%s",
                     rule_name(r, ev[i].cofiring[k].rule));
            snprintf(x->cofiring_incident[k], sizeof x->cofiring_incident[k], "%s",
                     ev[i].cofiring[k].incident);
        }
        x->supp_cooldown = ev[i].suppressed_cooldown;
        x->supp_budget = ev[i].suppressed_budget;
        snprintf(x->incident, sizeof x->incident, "%s", ev[i].incident);
        x->true_for = (double)ev[i].true_for_ns / S;
        x->episode_start = (double)ev[i].episode_start_ns / S;
        x->episode_wall_ns = ev[i].episode_start_wall_ns;
        if ((ev[i].kind == EVENT_FIRING || ev[i].kind == EVENT_SCHEDULED) &&
            ev[i].capture_rule != SIZE_MAX && r->auto_done)
            engine_capture_done(r->e, ev[i].slot);
    }
}

static struct sample sample_at(double t_s)
{
    struct sample s;
    sample_init(&s, ns_of(t_s));
    return s;
}

/* One poll of slot k at t_s: push s (NULL: no sample at this poll) and step. */
static void step_slot(struct run *r, size_t k, double t_s, const struct sample *s)
{
    const struct event *ev;
    int64_t t_ns = ns_of(t_s);

    if (s) {
        cr_assert_eq(s->t_ns, t_ns);
        history_push(&r->h[k], s);
    }
    size_t n = engine_step(r->e, r->slot[k], &r->h[k], t_ns, WALL0 + t_ns + r->wall_skew_ns, &ev);
    record(r, ev, n);
}

/* Push one poll of slot 0 at t_s with the given metric (others NaN) and step. */
static void poll1(struct run *r, double t_s, enum metric m, double v)
{
    struct sample s = sample_at(t_s);
    s.v[m] = (float)v;
    step_slot(r, 0, t_s, &s);
}

/* Feed values[i] at t = start_s + i * poll for a metric, on slot 0. */
static void feed(struct run *r, double start_s, enum metric m, const double *values, size_t n)
{
    double poll_s = (double)r->cfg->poll_interval_ns / S;
    for (size_t i = 0; i < n; i++)
        poll1(r, start_s + (double)i * poll_s, m, values[i]);
}

/* The process behind slot 0 restarted at t_s: its history starts afresh. */
static void restart(struct run *r, double t_s)
{
    const struct event *ev;
    history_clear(&r->h[0]);
    size_t n = engine_slot_restarted(r->e, r->slot[0], ns_of(t_s), WALL0 + ns_of(t_s), &ev);
    record(r, ev, n);
}

/* Hot reload at t_s: the engine gets the rules of a new file; its events
 * (incidents closed) are recorded with the old rules; the old file goes. */
static void reload(struct run *r, double t_s, const char *rules_and_more)
{
    const struct event *ev;
    struct config *next = parse_rules(APP_TARGET, rules_and_more);
    size_t n = engine_set_rules(r->e, next->rules, next->nrules, ns_of(t_s), &ev);
    record(r, ev, n);
    config_free(r->cfg);
    r->cfg = next;
}

static void explain(const struct run *r, size_t rule, double t_s, struct explain *out)
{
    engine_explain(r->e, r->slot[0], rule, &r->h[0], ns_of(t_s), out);
}

static void dump(const struct run *r, const struct want *w, size_t n)
{
    fprintf(stderr, "events (%zu):\n", r->nrecs);
    for (size_t i = 0; i < r->nrecs; i++)
        fprintf(stderr, "  %-10s %-12s t=%.3f reason=%s capture=%s\n",
                event_kind_name(r->recs[i].kind), r->recs[i].rule, r->recs[i].t,
                suppress_reason_name(r->recs[i].reason), r->recs[i].capture);
    fprintf(stderr, "wanted (%zu):\n", n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  %-10s %-12s t=%.3f\n", event_kind_name(w[i].kind), w[i].rule, w[i].t);
}

/* The first n events recorded are w[0..n), in order, at those times; with
 * all, there are no others. */
static void expect_first(const struct run *r, const struct want *w, size_t n, bool all)
{
    bool same = all ? r->nrecs == n : r->nrecs >= n;
    for (size_t i = 0; same && i < n; i++) {
        same = r->recs[i].kind == w[i].kind && strcmp(r->recs[i].rule, w[i].rule) == 0 &&
               fabs(r->recs[i].t - w[i].t) < 1e-6;
    }
    if (!same) {
        dump(r, w, n);
        cr_assert_fail("event sequence differs (see above)");
    }
}

/* The events recorded are exactly w[0..n), in order, at those times. */
static void expect_events(const struct run *r, const struct want *w, size_t n)
{
    expect_first(r, w, n, true);
}

static void expect_none(const struct run *r)
{
    expect_events(r, NULL, 0);
}

/* A small deterministic generator for noise: xorshift64*. */
static uint64_t xs_next(uint64_t *st)
{
    *st ^= *st >> 12;
    *st ^= *st << 25;
    *st ^= *st >> 27;
    return *st * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [-1, 1]. */
static double xs_unit(uint64_t *st)
{
    return (double)(xs_next(st) >> 11) / (double)(1ULL << 53) * 2.0 - 1.0;
}

/* ---- synthetic series, table-driven ------------------------------------ */

enum shape {
    SHAPE_STEADY, /* base, wobbling by up to +6 */
    SHAPE_WINDOW, /* hi on polls [from, to), base elsewhere: a step or a spike */
    SHAPE_RAMP,   /* base + slope * i */
    SHAPE_FLAP,   /* on [from, to): lo on even polls, hi on odd ones; base elsewhere */
    SHAPE_EVERY,  /* on [from, to): hi every period-th poll, base elsewhere */
};

struct series {
    enum shape shape;
    enum metric metric;
    double base, hi, lo, slope;
    int from, to, period;
};

static double series_value(const struct series *s, int i)
{
    bool in = i >= s->from && i < s->to;
    switch (s->shape) {
    case SHAPE_STEADY:
        return s->base + (i % 7);
    case SHAPE_WINDOW:
        return in ? s->hi : s->base;
    case SHAPE_RAMP:
        return s->base + s->slope * i;
    case SHAPE_FLAP:
        return in ? (i % 2 ? s->hi : s->lo) : s->base;
    case SHAPE_EVERY:
        return in && (i - s->from) % s->period == 0 ? s->hi : s->base;
    }
    return NAN;
}

struct shape_case {
    char name[40];
    char rules[320];
    struct series s;
    int npolls;
    struct want want[4];
    size_t nwant;
};

#define HOT "{name: hot, when: 'cpu > 80%'"

ParameterizedTestParameters(engine, series_shape_yields_exact_events)
{
    /* clang-format off */
    static struct shape_case cases[] = {
        /* never above 80 */
        {"steady", "rules: [" HOT ", for: 5s}]\n", {SHAPE_STEADY, METRIC_CPU, .base = 50}, 600,
         {{0}}, 0},
        /* hot from t=11 on: pending 11, `for: 5s` holds at 16 */
        {"step up", "rules: [" HOT ", for: 5s}]\n",
         {SHAPE_WINDOW, METRIC_CPU, .base = 20, .hi = 95, .from = 10, .to = 1000}, 100,
         {{EVENT_FIRING, "hot", 16}}, 1},
        /* hot t=11..30; cool from 31, resolve_after defaults to `for`: 36 */
        {"step up and down", "rules: [" HOT ", for: 5s}]\n",
         {SHAPE_WINDOW, METRIC_CPU, .base = 20, .hi = 95, .from = 10, .to = 30}, 60,
         {{EVENT_FIRING, "hot", 16}, {EVENT_RESOLVED, "hot", 36}}, 2},
        /* cpu = i: first above 80 is 81 at t=82, fires 5s later */
        {"ramp", "rules: [" HOT ", for: 5s}]\n", {SHAPE_RAMP, METRIC_CPU, .slope = 1}, 100,
         {{EVENT_FIRING, "hot", 87}}, 1},
        /* one poll at 99 cannot hold for 5s */
        {"spike with for", "rules: [" HOT ", for: 5s}]\n",
         {SHAPE_WINDOW, METRIC_CPU, .base = 20, .hi = 99, .from = 20, .to = 21}, 100, {{0}}, 0},
        /* without `for` it fires at t=21; resolve_after defaults to 30s: 22 + 30 */
        {"spike without for", "rules: [" HOT "}]\n",
         {SHAPE_WINDOW, METRIC_CPU, .base = 20, .hi = 99, .from = 20, .to = 21}, 100,
         {{EVENT_FIRING, "hot", 21}, {EVENT_RESOLVED, "hot", 52}}, 2},
        /* true at t=21,22,23: 3 of the last 5 at 23; resolve_after = 5 polls from 24 */
        {"short burst, 3 of 5", "rules: [" HOT ", for: 3 of 5}]\n",
         {SHAPE_WINDOW, METRIC_CPU, .base = 20, .hi = 95, .from = 20, .to = 23}, 60,
         {{EVENT_FIRING, "hot", 23}, {EVENT_RESOLVED, "hot", 29}}, 2},
        /* RSS grows 10MiB/min from t=1: rss_growth is NaN until the 2m window is
         * half covered (t=61), then pending for 30s */
        {"rss ramp (leak)", "rules: [{name: leak, when: 'rss_growth > 5MiB/min', for: 30s}]\n",
         {SHAPE_RAMP, METRIC_RSS, .base = 100 * MIB, .slope = 10 * MIB / 60}, 150,
         {{EVENT_FIRING, "leak", 91}}, 1},
        /* 79/81 on every other poll from t=11 to t=200: the first 81 is at t=12;
         * a resolve needs 30s without 81, which only starts at t=201 */
        {"flapping around threshold", "rules: [" HOT "}]\n",
         {SHAPE_FLAP, METRIC_CPU, .base = 50, .lo = 79, .hi = 81, .from = 10, .to = 200}, 300,
         {{EVENT_FIRING, "hot", 12}, {EVENT_RESOLVED, "hot", 231}}, 2},
        /* 40/90 flapping never goes under the resolve threshold (30); from
         * t=201 it does, and resolve_after is 5s */
        {"flapping above resolve_when",
         "rules: [" HOT ", resolve_when: 'cpu < 30%', resolve_after: 5s}]\n",
         {SHAPE_FLAP, METRIC_CPU, .base = 20, .lo = 40, .hi = 90, .from = 10, .to = 200}, 300,
         {{EVENT_FIRING, "hot", 12}, {EVENT_RESOLVED, "hot", 206}}, 2},
        /* a spike every third poll at t=21,24,..,48: `3 of 10` holds at t=27
         * (21, 24, 27 among t=18..27); `for: 3s` needs t..t+3 all true and never
         * fires. burst resolves after 10 false polls in a row: 49 + 10 */
        {"intermittent: N of M vs continuous",
         "rules:\n"
         "  - {name: burst, when: 'cpu > 80%', for: 3 of 10}\n"
         "  - {name: continuous, when: 'cpu > 80%', for: 3s}\n",
         {SHAPE_EVERY, METRIC_CPU, .base = 20, .hi = 95, .from = 20, .to = 50, .period = 3}, 100,
         {{EVENT_FIRING, "burst", 27}, {EVENT_RESOLVED, "burst", 59}}, 2},
    };
    /* clang-format on */
    return cr_make_param_array(struct shape_case, cases, NELEM(cases));
}

ParameterizedTest(struct shape_case *c, engine, series_shape_yields_exact_events)
{
    struct run *r = run_new(c->rules);
    for (int i = 0; i < c->npolls; i++)
        poll1(r, 1 + i, c->s.metric, series_value(&c->s, i));
    if (r->nrecs != c->nwant)
        fprintf(stderr, "case '%s'\n", c->name);
    expect_events(r, c->want, c->nwant);
    run_free(r);
}

/* Polls are read a little late and unevenly. cpu holds from the poll read
 * at t=3.004 (4 ms late); `for: 2s` at 1 s polls fires on the third true
 * poll, read on time at t=5: 1.996 s after the first, within the slack of a
 * tenth of a poll. `for: 2.5s` still waits for the fourth. Resolution
 * (resolve_after defaults to `for`) takes the same slack. */
Test(engine, for_tolerates_poll_jitter_of_a_tenth_of_a_poll)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: two, when: 'cpu > 80%', for: 2s}\n"
                            "  - {name: twohalf, when: 'cpu > 80%', for: 2500ms}\n");
    static const double times[] = {1, 2, 3.004, 4, 5, 6, 7, 8.003, 9, 10, 11};
    for (size_t i = 0; i < NELEM(times); i++)
        poll1(r, times[i], METRIC_CPU, times[i] >= 3 && times[i] < 8 ? 95 : 20);
    static const struct want w[] = {{EVENT_FIRING, "two", 5},
                                    {EVENT_FIRING, "twohalf", 6},
                                    {EVENT_RESOLVED, "two", 10},
                                    {EVENT_RESOLVED, "twohalf", 11}};
    expect_events(r, w, NELEM(w));
    run_free(r);
}

Test(engine, step_firing_carries_episode_capture_and_one_incident)
{
    struct run *r = run_new("rules: [" HOT ", for: 5s, capture: {profile: cpu}}]\n");
    double v[60];
    for (size_t i = 0; i < 60; i++)
        v[i] = (i >= 10 && i < 30) ? 95.0 : 20.0;
    feed(r, 1, METRIC_CPU, v, 60);
    static const struct want w[] = {{EVENT_FIRING, "hot", 16}, {EVENT_RESOLVED, "hot", 36}};
    expect_events(r, w, NELEM(w));
    cr_assert_str_eq(r->recs[0].capture, "hot");
    cr_assert_float_eq(r->recs[0].true_for, 5.0, 1e-9);
    cr_assert_float_eq(r->recs[0].episode_start, 11.0, 1e-9);
    cr_assert_eq(r->recs[0].episode_wall_ns, WALL0 + 11 * S);
    cr_assert_float_eq(r->recs[1].true_for, 25.0, 1e-9, "resolved 25s after the episode began");
    cr_assert_str_eq(r->recs[0].incident, r->recs[1].incident, "one incident per episode");
    cr_assert(strncmp(r->recs[0].incident, "hot/app:1/", 10) == 0, "%s", r->recs[0].incident);
    cr_assert_not(engine_slot_busy(r->e, r->slot[0]), "the harness finished the capture");
    run_free(r);
}

/* ---- detectors from the issue ------------------------------------------ */

/* holmes: min 30%, diff 50%, abs 80%. The baseline is the median of a 1m
 * window (one bucket per poll), ready at t=16: 15s (a quarter of the window)
 * after the first sample at t=1, with 15 >= 10 samples. */
struct holmes_case {
    char name[48];
    double base, level;
    int at, until; /* level on polls at t in [at, until], base elsewhere */
    struct want want[2];
    size_t nwant;
};

ParameterizedTestParameters(engine, holmes_detector_fires_on_absolute_or_relative_jump)
{
    /* clang-format off */
    static struct holmes_case cases[] = {
        /* 65 > 1.5 * 40 and > 30 */
        {"relative jump above the floor", 40, 65, 100, 120, {{EVENT_FIRING, "holmes", 100}}, 1},
        /* 55 < 60 and < 80 */
        {"jump under 1.5x", 40, 55, 100, 120, {{0}}, 0},
        /* 4 is twice 2 but under the 30% floor */
        {"relative jump under the floor", 2, 4, 100, 120, {{0}}, 0},
        /* 85 < 1.5 * 70 but above the absolute 80 */
        {"absolute over a hot baseline", 70, 85, 100, 120, {{EVENT_FIRING, "holmes", 100}}, 1},
        {"hot but under absolute", 70, 79, 100, 120, {{0}}, 0},
        /* the absolute part needs no baseline */
        {"absolute during warm-up", 10, 90, 5, 120, {{EVENT_FIRING, "holmes", 5}}, 1},
        /* t=5..11 at 50 while warming up: the relative part is false; at t=16
         * the median is 10 again and the value too */
        {"relative jump during warm-up", 10, 50, 5, 11, {{0}}, 0},
        /* at 50 from t=15: false while warming up, true at t=16 (median of
         * t=1..15 is 10); back to 10 at t=26, resolved 30s later */
        {"relative jump as warm-up ends", 10, 50, 15, 25,
         {{EVENT_FIRING, "holmes", 16}, {EVENT_RESOLVED, "holmes", 56}}, 2},
    };
    /* clang-format on */
    return cr_make_param_array(struct holmes_case, cases, NELEM(cases));
}

ParameterizedTest(struct holmes_case *c, engine, holmes_detector_fires_on_absolute_or_relative_jump)
{
    struct run *r = run_new("rules:\n"
                            "  - name: holmes\n"
                            "    when: cpu > 80% or (cpu > 1.5x baseline and cpu > 30%)\n"
                            "    baseline_window: 1m\n");
    for (int t = 1; t <= 120; t++)
        poll1(r, t, METRIC_CPU, t >= c->at && t <= c->until ? c->level : c->base);
    if (r->nrecs != c->nwant)
        fprintf(stderr, "case '%s'\n", c->name);
    expect_events(r, c->want, c->nwant);
    run_free(r);
}

/* StackImpact: at least 5 of the last 15 samples above mean + 2 sigma and
 * above 1.5x the median. Noise is 18..22 (never 1.5x the median of ~20).
 * A burst of 4 spikes (t=100..109, every 3rd poll) is not enough; a burst
 * of 5 (t=200..212) is, on the fifth spike. Each spike stays above mean + 2
 * sigma even with the previous ones in the 59-poll window: with 4 of them,
 * mean ~22.7 and sigma ~10.2, so the threshold is ~43 < 60. The same
 * condition with a continuous `for: 5s` never holds two polls in a row. */
Test(engine, stackimpact_rule_fires_on_five_of_fifteen_outliers_continuous_for_misses)
{
    struct run *r = run_new("rules:\n"
                            "  - name: anomaly\n"
                            "    when: cpu > 2 sigma and cpu > 1.5x baseline\n"
                            "    for: 5 of 15\n"
                            "    baseline_window: 1m\n"
                            "  - name: continuous\n"
                            "    when: cpu > 2 sigma and cpu > 1.5x baseline\n"
                            "    for: 5s\n"
                            "    baseline_window: 1m\n");
    for (int t = 1; t <= 260; t++) {
        bool spike = (t >= 100 && t <= 109 && (t - 100) % 3 == 0) ||
                     (t >= 200 && t <= 212 && (t - 200) % 3 == 0);
        poll1(r, t, METRIC_CPU, spike ? 60.0 : 18.0 + (t * 7) % 5);
        if (t == 109) {
            struct explain x;
            explain(r, 0, t, &x);
            cr_assert_eq(x.reason, EXPLAIN_PENDING);
            cr_assert_eq(x.n_true, 4, "4 spikes among the last 15 polls, not 5");
            cr_assert_eq(x.m, 15);
            cr_assert_eq(x.nobs, 2);
            cr_assert(x.obs[0].holds && x.obs[1].holds, "the 4th spike is an outlier");
            cr_assert_gt(x.obs[0].threshold, 30.0, "sigma rose with the spikes");
        }
    }
    /* the last spike is at t=212; 15 false polls from 213 resolve it */
    static const struct want w[] = {{EVENT_FIRING, "anomaly", 212},
                                    {EVENT_RESOLVED, "anomaly", 228}};
    expect_events(r, w, NELEM(w));
    run_free(r);
}

/* oom_eta comes from the collector in seconds. Falling 20s per poll from
 * 1800, it is 600 at t=61 (not < 10m) and 580 at t=62: fires at 62, half a
 * minute before it would reach 0 (t=91). The held rule needs 5s more. */
Test(engine, oom_eta_under_ten_minutes_fires_on_the_trend_before_oom)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: oom-soon, when: 'oom_eta < 10m'}\n"
                            "  - {name: oom-held, when: 'oom_eta < 10m', for: 5s}\n");
    for (int t = 1; t <= 85; t++)
        poll1(r, t, METRIC_OOM_ETA, 1800.0 - 20.0 * (t - 1));
    static const struct want w[] = {{EVENT_FIRING, "oom-soon", 62}, {EVENT_FIRING, "oom-held", 67}};
    expect_events(r, w, NELEM(w));
    run_free(r);
}

Test(engine, oom_eta_never_or_unmeasured_does_not_fire)
{
    struct run *r = run_new("rules: [{name: oom-soon, when: 'oom_eta < 10m'}]\n");
    for (int t = 1; t <= 60; t++)
        poll1(r, t, METRIC_OOM_ETA, t % 2 ? INFINITY : NAN); /* no growth / no limit */
    expect_none(r);
    run_free(r);
}

/* ---- hysteresis -------------------------------------------------------- */

/* 90 on t=11..20 and t=61..65, 70 in between and until t=80, 40 from t=81.
 * With resolve_when cpu < 50%, the 70s keep the episode firing: one alert,
 * resolved 5s after t=81. With plain `when`, 70 resolves at 21 + 5, and
 * the second hot spell is a refire inside the 10m default cooldown. */
struct hyst_case {
    char name[32];
    char rule[200];
    struct want want[3];
    size_t nwant;
};

ParameterizedTestParameters(engine, resolve_threshold_variant_yields_exact_events)
{
    /* clang-format off */
    static struct hyst_case cases[] = {
        {"resolve_when lower threshold",
         "{name: hot, when: 'cpu > 80%', resolve_when: 'cpu < 50%', resolve_after: 5s}",
         {{EVENT_FIRING, "hot", 11}, {EVENT_RESOLVED, "hot", 86}}, 2},
        {"when false resolves",
         "{name: hot, when: 'cpu > 80%', resolve_after: 5s}",
         {{EVENT_FIRING, "hot", 11}, {EVENT_RESOLVED, "hot", 26}, {EVENT_SUPPRESSED, "hot", 61}},
         3},
        /* the 70s from t=21 hold the resolve condition for 30s at t=51 */
        {"long resolve_after",
         "{name: hot, when: 'cpu > 80%', resolve_after: 30s}",
         {{EVENT_FIRING, "hot", 11}, {EVENT_RESOLVED, "hot", 51}, {EVENT_SUPPRESSED, "hot", 61}},
         3},
    };
    /* clang-format on */
    return cr_make_param_array(struct hyst_case, cases, NELEM(cases));
}

ParameterizedTest(struct hyst_case *c, engine, resolve_threshold_variant_yields_exact_events)
{
    char rules[256];
    snprintf(rules, sizeof rules, "rules: [%s]\n", c->rule);
    struct run *r = run_new(rules);
    for (int t = 1; t <= 120; t++) {
        double v = 20;
        if ((t >= 11 && t <= 20) || (t >= 61 && t <= 65))
            v = 90;
        else if (t > 20 && t <= 80)
            v = 70;
        else if (t > 80)
            v = 40;
        poll1(r, t, METRIC_CPU, v);
    }
    if (r->nrecs != c->nwant)
        fprintf(stderr, "case '%s'\n", c->name);
    expect_events(r, c->want, c->nwant);
    run_free(r);
}

/* ---- noise control ----------------------------------------------------- */

/* Hot on t=10..14, 30..34, 50..54 and 70..74; cooldown 60s from the alert
 * at t=10 ends at t=70. Each episode resolves 3s after it cools. */
Test(engine, cooldown_refire_is_suppressed_and_next_alert_counts_it)
{
    struct run *r = run_new("rules:\n"
                            "  - name: hot\n"
                            "    when: cpu > 80%\n"
                            "    resolve_after: 3s\n"
                            "    cooldown: 60s\n"
                            "    capture: {profile: cpu}\n");
    for (int t = 1; t <= 100; t++) {
        bool hot = t % 20 >= 10 && t % 20 <= 14 && t < 80;
        poll1(r, t, METRIC_CPU, hot ? 95 : 20);
        if (t == 32) {
            struct explain x;
            explain(r, 0, t, &x);
            cr_assert_eq(x.state, RULE_FIRING);
            cr_assert_eq(x.reason, EXPLAIN_COOLING_DOWN);
            cr_assert_eq(x.remaining_ns, 38 * S, "cooldown ends at t=70");
        }
    }
    static const struct want w[] = {
        {EVENT_FIRING, "hot", 10},     {EVENT_RESOLVED, "hot", 18},
        {EVENT_SUPPRESSED, "hot", 30}, /* resolves silently at 38 */
        {EVENT_SUPPRESSED, "hot", 50}, /* and at 58 */
        {EVENT_FIRING, "hot", 70},     {EVENT_RESOLVED, "hot", 78},
    };
    expect_events(r, w, NELEM(w));
    cr_assert_eq(r->recs[0].supp_cooldown, 0);
    cr_assert_eq(r->recs[2].reason, SUPPRESS_COOLDOWN);
    cr_assert_eq(r->recs[3].reason, SUPPRESS_COOLDOWN);
    cr_assert_str_eq(r->recs[2].capture, "", "a suppressed firing takes no capture");
    cr_assert_eq(r->recs[4].supp_cooldown, 2, "the alert after the cooldown reports both");
    cr_assert_str_eq(r->recs[4].capture, "hot");
    cr_assert_str_neq(r->recs[2].incident, r->recs[0].incident, "a new episode");
    cr_assert_str_eq(r->recs[4].incident, r->recs[5].incident);
    run_free(r);
}

/* Budget 2 per hour, cooldown 0: a 5-poll hot episode starts every 20s from
 * t=10. The grants at t=10 and t=30 leave the last hour at t=3610 and
 * t=3630 (an hour is (now - 1h, now]), so the episodes at 50..3590 are
 * suppressed (178 of them) and the alert at 3610 reports them. */
Test(engine, budget_exhaustion_suppresses_captures_until_the_hour_passes)
{
    struct run *r = run_new("rules:\n"
                            "  - name: hot\n"
                            "    when: cpu > 80%\n"
                            "    resolve_after: 3s\n"
                            "    cooldown: 0s\n"
                            "    capture: {profile: cpu}\n"
                            "alert: {max_captures_per_hour: 2}\n");
    for (int t = 1; t <= 3720; t++) {
        poll1(r, t, METRIC_CPU, t >= 10 && (t - 10) % 20 < 5 ? 95 : 20);
        if (t == 52) {
            struct explain x;
            explain(r, 0, t, &x);
            cr_assert_eq(x.reason, EXPLAIN_OVER_BUDGET);
            cr_assert_eq(engine_captures_last_hour(r->e, ns_of(t)), 2);
        }
    }
    struct want w[400];
    size_t n = 0;
    for (int t = 10; t <= 3710; t += 20) {
        bool granted = t == 10 || t == 30 || t == 3610 || t == 3630;
        w[n++] = (struct want){granted ? EVENT_FIRING : EVENT_SUPPRESSED, "hot", t};
        if (granted)
            w[n++] = (struct want){EVENT_RESOLVED, "hot", t + 8};
    }
    expect_events(r, w, n);
    for (size_t i = 0; i < r->nrecs; i++) {
        if (r->recs[i].kind == EVENT_SUPPRESSED)
            cr_assert_eq(r->recs[i].reason, SUPPRESS_BUDGET);
        if (r->recs[i].kind == EVENT_FIRING && r->recs[i].t == 3610)
            cr_assert_eq(r->recs[i].supp_budget, 178);
        else if (r->recs[i].kind == EVENT_FIRING)
            cr_assert_eq(r->recs[i].supp_budget, 0, "at t=%.0f", r->recs[i].t);
    }
    cr_assert_eq(engine_captures_last_hour(r->e, ns_of(3720)), 2);
    run_free(r);
}

/* Budget 1: at t=10 both rules fire as one alert with one capture. At t=30
 * the budget is spent: the rule that needs a capture is suppressed, the one
 * that only alerts still does. */
Test(engine, budget_exhaustion_still_alerts_rules_without_capture)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: cap, when: 'cpu > 80%', resolve_after: 3s, cooldown: 0s,\n"
                            "     capture: {profile: cpu}}\n"
                            "  - {name: note, when: 'cpu > 80%', resolve_after: 3s, cooldown: 0s}\n"
                            "alert: {max_captures_per_hour: 1}\n");
    for (int t = 1; t <= 45; t++)
        poll1(r, t, METRIC_CPU, (t >= 10 && t < 15) || (t >= 30 && t < 35) ? 95 : 20);
    static const struct want w[] = {
        {EVENT_FIRING, "cap", 10},     {EVENT_RESOLVED, "cap", 18}, {EVENT_RESOLVED, "note", 18},
        {EVENT_SUPPRESSED, "cap", 30}, {EVENT_FIRING, "note", 30},  {EVENT_RESOLVED, "note", 38},
    };
    expect_events(r, w, NELEM(w));
    cr_assert_eq(r->recs[0].ncofiring, 1);
    cr_assert_str_eq(r->recs[0].cofiring[0], "note");
    /* the co-firing rule's own key: the one its resolution carries */
    cr_assert_str_eq(r->recs[0].cofiring_incident[0], r->recs[2].incident);
    cr_assert_str_neq(r->recs[0].cofiring_incident[0], r->recs[0].incident);
    cr_assert_str_eq(r->recs[0].capture, "cap");
    cr_assert_eq(r->recs[3].reason, SUPPRESS_BUDGET);
    cr_assert_str_eq(r->recs[4].capture, "");
    cr_assert_eq(r->recs[4].ncofiring, 0);
    run_free(r);
}

/* The budget is global: a second process of the target cannot capture
 * once the first has used it. */
Test(engine, budget_is_shared_by_every_slot)
{
    static const char *const slots[] = {"app:1", "app:2"};
    struct run *r =
        run_new_slots(APP_TARGET,
                      "rules: [{name: hot, when: 'cpu > 80%', capture: {profile: cpu}}]\n"
                      "alert: {max_captures_per_hour: 1}\n",
                      slots, 2);
    for (int t = 1; t <= 20; t++) {
        for (size_t k = 0; k < 2; k++) {
            struct sample s = sample_at(t);
            s.v[METRIC_CPU] = t >= (k == 0 ? 10 : 12) ? 95 : 20;
            step_slot(r, k, t, &s);
        }
    }
    static const struct want w[] = {{EVENT_FIRING, "hot", 10}, {EVENT_SUPPRESSED, "hot", 12}};
    expect_events(r, w, NELEM(w));
    cr_assert_eq(r->recs[0].slot, 0);
    cr_assert_eq(r->recs[1].slot, 1);
    cr_assert_eq(r->recs[1].reason, SUPPRESS_BUDGET);
    cr_assert(strncmp(r->recs[1].incident, "hot/app:2/", 10) == 0, "%s", r->recs[1].incident);
    run_free(r);
}

/* Three rules become true at t=10: one alert, led by the highest severity
 * and then the first in the file (crit-note), the others co-firing in file
 * order; the capture is the best-ranked rule that asks for one (crit-mem).
 * `later` fires alone 5s later. */
Test(engine, cofiring_rules_make_one_alert_led_by_severity_then_file_order)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: warm, when: 'cpu > 80%', capture: {profile: cpu}}\n"
                            "  - {name: crit-note, when: 'cpu > 85%', severity: critical}\n"
                            "  - {name: crit-mem, when: 'cpu > 90%', severity: critical,\n"
                            "     capture: {profile: memory}}\n"
                            "  - {name: later, when: 'cpu > 80%', for: 5s}\n");
    for (int t = 1; t <= 30; t++)
        poll1(r, t, METRIC_CPU, t >= 10 ? 95 : 20);
    static const struct want w[] = {{EVENT_FIRING, "crit-note", 10}, {EVENT_FIRING, "later", 15}};
    expect_events(r, w, NELEM(w));
    cr_assert_eq(r->recs[0].ncofiring, 2);
    cr_assert_str_eq(r->recs[0].cofiring[0], "warm");
    cr_assert_str_eq(r->recs[0].cofiring[1], "crit-mem");
    cr_assert_str_eq(r->recs[0].capture, "crit-mem");
    cr_assert_eq(r->recs[1].ncofiring, 0);
    cr_assert_str_eq(r->recs[1].capture, "");
    run_free(r);
}

Test(engine, cofiring_leader_is_first_in_file_among_the_highest_severity)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: b-second, when: 'cpu > 90%', severity: info}\n"
                            "  - {name: a-first, when: 'cpu > 80%', capture: {profile: cpu}}\n"
                            "  - {name: c-third, when: 'cpu > 70%', capture: {profile: memory}}\n");
    for (int t = 1; t <= 12; t++)
        poll1(r, t, METRIC_CPU, t >= 10 ? 95 : 20);
    static const struct want w[] = {{EVENT_FIRING, "a-first", 10}};
    expect_events(r, w, NELEM(w));
    cr_assert_str_eq(r->recs[0].capture, "a-first");
    cr_assert_eq(r->recs[0].ncofiring, 2);
    cr_assert_str_eq(r->recs[0].cofiring[0], "b-second");
    cr_assert_str_eq(r->recs[0].cofiring[1], "c-third");
    run_free(r);
}

/* One capture per process at a time. `a` fires at t=10 and its capture runs
 * until after the poll at t=15. `b` (t=12) and `c` (t=13) wait and fire
 * together at t=16, led by b (same severity, first in file). `e` is true
 * only at t=11 and resolves (2s) while waiting: it never fires. */
Test(engine, rules_firing_during_a_capture_wait_and_fire_when_it_finishes)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: a, when: 'cpu > 80%', capture: {profile: cpu}}\n"
                            "  - {name: b, when: 'threads > 100', capture: {profile: memory}}\n"
                            "  - {name: c, when: 'fds > 1000'}\n"
                            "  - {name: e, when: 'errors > 10/min', resolve_after: 2s}\n");
    r->auto_done = false;
    for (int t = 1; t <= 30; t++) {
        struct sample s = sample_at(t);
        s.v[METRIC_CPU] = t >= 10 ? 90 : 20;
        s.v[METRIC_THREADS] = t >= 12 ? 200 : 50;
        s.v[METRIC_FDS] = t >= 13 ? 2000 : 100;
        s.v[METRIC_ERRORS] = t == 11 ? 20 : 0;
        step_slot(r, 0, t, &s);
        struct explain x;
        if (t == 12) {
            cr_assert(engine_slot_busy(r->e, r->slot[0]));
            explain(r, 1, t, &x);
            cr_assert_eq(x.state, RULE_FIRING);
            cr_assert_eq(x.reason, EXPLAIN_WAITING_CAPTURE);
            explain(r, 3, t, &x);
            cr_assert_eq(x.reason, EXPLAIN_WAITING_CAPTURE);
        }
        if (t == 14)
            cr_assert_eq(engine_rule_state(r->e, r->slot[0], 3), RULE_RESOLVED);
        if (t == 15)
            engine_capture_done(r->e, r->slot[0]);
    }
    static const struct want w[] = {{EVENT_FIRING, "a", 10}, {EVENT_FIRING, "b", 16}};
    expect_events(r, w, NELEM(w));
    cr_assert_str_eq(r->recs[0].capture, "a");
    cr_assert_eq(r->recs[0].ncofiring, 0);
    cr_assert_str_eq(r->recs[1].capture, "b");
    cr_assert_eq(r->recs[1].ncofiring, 1);
    cr_assert_str_eq(r->recs[1].cofiring[0], "c");
    cr_assert_float_eq(r->recs[1].true_for, 4.0, 1e-9, "b has been true since t=12");
    cr_assert(engine_slot_busy(r->e, r->slot[0]), "b's capture is running");
    run_free(r);
}

/* ---- scheduled captures ------------------------------------------------ */

/* The times of the SCHEDULED events of one scheduled rule over steady data
 * polled every second from t=1 to horizon_s, with the given jitter seed. */
static size_t scheduled_times(const char *rules, uint64_t seed, int horizon_s, double *out,
                              size_t max)
{
    struct config *cfg = parse_rules(APP_TARGET, rules);
    struct engine_params p = {cfg->rules, cfg->nrules, cfg->poll_interval_ns, 3600, seed};
    struct engine *e = engine_new(&p);
    struct history h;
    history_init(&h, 64);
    int slot = engine_slot_add(e, "app", "app:1");
    size_t n = 0;
    for (int t = 1; t <= horizon_s; t++) {
        struct sample s = sample_at(t);
        s.v[METRIC_CPU] = 20;
        history_push(&h, &s);
        const struct event *ev;
        size_t nev = engine_step(e, slot, &h, ns_of(t), WALL0 + ns_of(t), &ev);
        for (size_t i = 0; i < nev; i++) {
            cr_assert_eq(ev[i].kind, EVENT_SCHEDULED);
            cr_assert_eq(ev[i].capture_rule, 0);
            cr_assert_lt(n, max);
            out[n++] = (double)ev[i].t_ns / S;
            engine_capture_done(e, slot);
        }
    }
    history_fini(&h);
    engine_free(e);
    config_free(cfg);
    return n;
}

/* every: 100s, for 20 seeds: the first capture within 10% of every (10s) of
 * the first poll at t=1, then every 100s plus up to 10s of jitter (at the
 * first poll at or after the due time). The seed alone decides the jitter. */
Test(engine, scheduled_rule_fires_first_within_a_tenth_then_every_period_with_jitter)
{
    static const char rules[] = "rules: [{name: base, every: 100s, capture: {profile: cpu}}]\n";
    double t[32], again[32];
    bool jittered = false, first_varies = false;
    double first0 = -1;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        size_t n = scheduled_times(rules, seed, 1200, t, NELEM(t));
        cr_assert(n >= 10 && n <= 12, "seed %llu: %zu captures in 1200s", (unsigned long long)seed,
                  n);
        cr_assert(t[0] >= 1 && t[0] <= 11, "seed %llu: first at t=%.0f, want t=1..11",
                  (unsigned long long)seed, t[0]);
        for (size_t i = 1; i < n; i++) {
            double d = t[i] - t[i - 1];
            cr_assert(d >= 100 && d <= 110, "capture %zu after %.0fs, want 100s..110s", i, d);
            jittered |= d > 100;
        }
        first_varies |= first0 >= 0 && t[0] != first0;
        first0 = t[0];
        cr_assert_eq(scheduled_times(rules, seed, 1200, again, NELEM(again)), n);
        cr_assert_arr_eq(t, again, n * sizeof t[0], "same seed, same times");
    }
    cr_assert(jittered, "the jitter moves some captures");
    cr_assert(first_varies, "the jitter moves the first capture");
}

/* every: 1h: min(10% of 1h, 60s) is 60s, whatever the seed. */
Test(engine, scheduled_rule_with_long_period_fires_first_within_a_minute)
{
    static const char rules[] = "rules: [{name: hourly, every: 1h, capture: {profile: cpu}}]\n";
    double t[4];
    for (uint64_t seed = 1; seed <= 20; seed++) {
        size_t n = scheduled_times(rules, seed, 200, t, NELEM(t));
        cr_assert_eq(n, 1, "seed %llu: one capture, then none for an hour",
                     (unsigned long long)seed);
        cr_assert(t[0] >= 1 && t[0] <= 61, "seed %llu: first at t=%.0f", (unsigned long long)seed,
                  t[0]);
    }
    struct run *r = run_new(rules);
    for (int k = 1; k <= 200; k++)
        poll1(r, k, METRIC_CPU, 20);
    cr_assert_eq(r->nrecs, 1);
    struct explain x;
    explain(r, 0, 200, &x);
    cr_assert_eq(x.reason, EXPLAIN_SCHEDULED);
    cr_assert(x.remaining_ns >= ns_of(r->recs[0].t + 3600 - 200) &&
                  x.remaining_ns < ns_of(r->recs[0].t + 3960 - 200),
              "next in %.0fs: an hour plus up to 6m after the first", (double)x.remaining_ns / S);
    run_free(r);
}

/* hot is pending from t=1, fires at 21, cools at 41 and resolves at 46: the
 * baseline capture, due within 10s of t=1, waits until nothing is pending
 * or firing and goes at t=46. */
Test(engine, scheduled_rule_waits_while_another_rule_is_pending_or_firing)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: hot, when: 'cpu > 80%', for: 20s, resolve_after: 5s}\n"
                            "  - {name: base, every: 100s, capture: {profile: cpu}}\n");
    for (int t = 1; t <= 140; t++) {
        poll1(r, t, METRIC_CPU, t <= 40 ? 95 : 20);
        if (t == 30) {
            struct explain x;
            explain(r, 1, t, &x);
            cr_assert_eq(x.reason, EXPLAIN_SCHEDULED);
            cr_assert_eq(x.remaining_ns, 0, "overdue");
        }
    }
    static const struct want w[] = {
        {EVENT_FIRING, "hot", 21}, {EVENT_RESOLVED, "hot", 46}, {EVENT_SCHEDULED, "base", 46}};
    expect_events(r, w, NELEM(w));
    run_free(r);
}

/* The alert at t=21 starts a capture that ends after the poll at t=60: the
 * baseline capture waits for it too. */
Test(engine, scheduled_rule_waits_for_a_running_capture)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: hot, when: 'cpu > 80%', for: 20s, resolve_after: 5s,\n"
                            "     capture: {profile: cpu}}\n"
                            "  - {name: base, every: 100s, capture: {profile: cpu}}\n");
    r->auto_done = false;
    for (int t = 1; t <= 140; t++) {
        poll1(r, t, METRIC_CPU, t <= 40 ? 95 : 20);
        if (t == 60)
            engine_capture_done(r->e, r->slot[0]);
    }
    static const struct want w[] = {
        {EVENT_FIRING, "hot", 21}, {EVENT_RESOLVED, "hot", 46}, {EVENT_SCHEDULED, "base", 61}};
    expect_events(r, w, NELEM(w));
    run_free(r);
}

/* Budget 1: the alert at t=1 spends it until t=3601 (it resolves at 4;
 * the baseline waits for that). A baseline capture is granted only when no
 * capture was granted in the hour before it; the others are suppressed for
 * the budget and counted in the next granted one. */
Test(engine, scheduled_capture_over_budget_is_suppressed_and_counted)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: hot, when: 'cpu > 80%', resolve_after: 2s,\n"
                            "     capture: {profile: cpu}}\n"
                            "  - {name: base, every: 10m, capture: {profile: cpu}}\n"
                            "alert: {max_captures_per_hour: 1}\n");
    for (int t = 1; t <= 8000; t++)
        poll1(r, t, METRIC_CPU, t == 1 ? 95 : 20);
    static const struct want w[] = {{EVENT_FIRING, "hot", 1}, {EVENT_RESOLVED, "hot", 4}};
    expect_first(r, w, NELEM(w), false);

    double granted = 1, prev = -1;
    unsigned suppressed = 0, ngranted = 0;
    for (size_t i = 2; i < r->nrecs; i++) {
        const struct rec *x = &r->recs[i];
        cr_assert_str_eq(x->rule, "base");
        if (prev < 0)
            cr_assert(x->t >= 4 && x->t <= 61, "first baseline at t=%.0f", x->t);
        else
            cr_assert(x->t - prev >= 600 && x->t - prev <= 660, "%.0f after", x->t - prev);
        prev = x->t;
        if (x->t - granted >= 3600) {
            cr_assert_eq(x->kind, EVENT_SCHEDULED, "t=%.0f: the budget has room", x->t);
            cr_assert_eq(x->supp_budget, suppressed, "t=%.0f", x->t);
            granted = x->t;
            suppressed = 0;
            ngranted++;
        } else {
            cr_assert_eq(x->kind, EVENT_SUPPRESSED, "t=%.0f: over budget", x->t);
            cr_assert_eq(x->reason, SUPPRESS_BUDGET);
            suppressed++;
        }
    }
    cr_assert_geq(ngranted, 1);
    run_free(r);
}

/* Explain's remaining time is exact: the next capture comes at the first
 * poll at or after it, when nothing else is going on. */
Test(engine, explain_scheduled_remaining_time_predicts_the_next_capture)
{
    struct run *r = run_new("rules: [{name: base, every: 100s, capture: {profile: cpu}}]\n");
    double predicted = -1;
    for (int t = 1; t <= 400; t++) {
        size_t before = r->nrecs;
        poll1(r, t, METRIC_CPU, 20);
        if (r->nrecs > before) {
            if (predicted >= 0)
                cr_assert_float_eq(r->recs[before].t, predicted, 1e-9);
            struct explain x;
            explain(r, 0, t, &x);
            cr_assert_eq(x.reason, EXPLAIN_SCHEDULED);
            predicted = t + ceil((double)x.remaining_ns / S);
        }
    }
    cr_assert_geq(r->nrecs, 3);
    run_free(r);
}

/* ---- restarts ---------------------------------------------------------- */

/* hot is pending from t=40 (would fire at 50); the process restarts at 45.5:
 * pending starts over at the next poll (46) and fires at 56. The baseline
 * of `rel` starts over too. */
Test(engine, restart_mid_pending_starts_for_over_and_resets_baselines)
{
    struct run *r =
        run_new("rules:\n"
                "  - {name: hot, when: 'cpu > 80%', for: 10s}\n"
                "  - {name: rel, when: 'threads > 3x baseline', baseline_window: 1m}\n");
    struct explain x;
    for (int t = 1; t <= 70; t++) {
        if (t == 46) {
            explain(r, 1, 45, &x);
            cr_assert_eq(x.reason, EXPLAIN_FALSE, "warmed up before the restart");
            restart(r, 45.5);
        }
        struct sample s = sample_at(t);
        s.v[METRIC_CPU] = t >= 40 ? 95 : 20;
        s.v[METRIC_THREADS] = 10;
        step_slot(r, 0, t, &s);
        if (t == 46) {
            explain(r, 1, t, &x);
            cr_assert_eq(x.reason, EXPLAIN_WARMING_UP);
            cr_assert_eq(x.remaining_ns, 15 * S, "a quarter of 1m from the first new sample");
            explain(r, 0, t, &x);
            cr_assert_eq(x.reason, EXPLAIN_PENDING);
            cr_assert_eq(x.remaining_ns, 10 * S);
        }
    }
    static const struct want w[] = {{EVENT_RESTARTED, "", 45.5}, {EVENT_FIRING, "hot", 56}};
    expect_events(r, w, NELEM(w));
    cr_assert_eq(r->recs[0].rule_idx, SIZE_MAX);
    cr_assert_str_eq(r->recs[0].incident, "restart/app:1");
    cr_assert_float_eq(r->recs[1].episode_start, 46.0, 1e-9);
    run_free(r);
}

/* An alerted episode ends with the restart (RESOLVED, then RESTARTED). The
 * cooldown from t=10 survives: still hot at t=21, the rule is suppressed;
 * the next episode after the cooldown (t=80) alerts and counts it. */
Test(engine, restart_while_firing_resolves_the_episode_and_keeps_the_cooldown)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: hot, when: 'cpu > 80%', cooldown: 60s,\n"
                            "     capture: {profile: cpu}}\n");
    for (int t = 1; t <= 100; t++) {
        if (t == 21)
            restart(r, 20.5);
        poll1(r, t, METRIC_CPU, (t >= 10 && t < 30) || t >= 80 ? 95 : 20);
    }
    static const struct want w[] = {
        {EVENT_FIRING, "hot", 10},     {EVENT_RESOLVED, "hot", 20.5}, {EVENT_RESTARTED, "", 20.5},
        {EVENT_SUPPRESSED, "hot", 21}, {EVENT_FIRING, "hot", 80},
    };
    expect_events(r, w, NELEM(w));
    cr_assert_str_eq(r->recs[1].incident, r->recs[0].incident);
    cr_assert_eq(r->recs[3].reason, SUPPRESS_COOLDOWN);
    cr_assert_eq(r->recs[4].supp_cooldown, 1);
    run_free(r);
}

/* A crash loop must not become a capture loop: a scheduled capture keeps
 * its timer across restarts. every: 10m makes the first capture within 60s
 * of start; restarts at t=100, 200 and 300 bring no new one before the next
 * scheduled time (600s later, plus up to 10% jitter). */
Test(engine, restart_keeps_the_schedule_of_baseline_captures)
{
    struct run *r = run_new("rules: [{name: base, every: 10m, capture: {profile: cpu}}]\n");
    double first = -1;
    for (int t = 1; t <= 650; t++) {
        if (t == 100 || t == 200 || t == 300)
            restart(r, t - 0.5);
        poll1(r, t, METRIC_CPU, 20);
    }
    for (size_t i = 0; i < r->nrecs; i++) {
        if (r->recs[i].kind != EVENT_SCHEDULED)
            continue;
        if (first < 0) {
            first = r->recs[i].t;
            continue;
        }
        cr_assert_geq(r->recs[i].t, first + 600, "a restart brought a capture forward to %.0f",
                      r->recs[i].t);
    }
    cr_assert_geq(first, 1);
    cr_assert_leq(first, 61, "first capture shortly after start: %.0f", first);
    run_free(r);
}

/* ---- gaps -------------------------------------------------------------- */

/* A pattern gives one character per poll slot at t = 1, 2, 3...:
 *   H  a sample with cpu 95      c  a sample with cpu 20
 *   l  a sample with cpu 5       n  a sample with cpu not measured (NaN)
 *   -  a poll without a sample   .  no poll at all */
struct gap_case {
    char name[48];
    char rule[160];
    char pattern[48];
    struct want want[3];
    size_t nwant;
};

ParameterizedTestParameters(engine, gap_never_makes_a_condition_true)
{
    /* clang-format off */
    static struct gap_case cases[] = {
        {"no gap", "{name: hot, when: 'cpu > 80%', for: 3s}", "HHHHHH",
         {{EVENT_FIRING, "hot", 4}}, 1},
        /* a poll without data resets `for`: pending again from t=4 */
        {"missing sample", "{name: hot, when: 'cpu > 80%', for: 3s}", "HH-HHHHH",
         {{EVENT_FIRING, "hot", 7}}, 1},
        {"unmeasured value", "{name: hot, when: 'cpu > 80%', for: 3s}", "HHnHHHHH",
         {{EVENT_FIRING, "hot", 7}}, 1},
        /* t=2 then t=5: three intervals apart, a gap: pending again from 5 */
        {"polls three intervals apart", "{name: hot, when: 'cpu > 80%', for: 3s}", "HH..HHHHH",
         {{EVENT_FIRING, "hot", 8}}, 1},
        /* t=2 then t=4: two intervals apart is jitter, not a gap */
        {"polls two intervals apart", "{name: hot, when: 'cpu > 80%', for: 3s}", "HH.HHH",
         {{EVENT_FIRING, "hot", 4}}, 1},
        /* t=3..5 missed count as false: H H F F F H has 2 of the last 5 */
        {"missed polls in N of M", "{name: hot, when: 'cpu > 80%', for: 3 of 5}", "HH...H",
         {{0}}, 0},
        /* H H F F H: 3 of 5, the two missed polls counted as false */
        {"missed polls in N of M, enough", "{name: hot, when: 'cpu > 80%', for: 3 of 5}",
         "HH..H", {{EVENT_FIRING, "hot", 5}}, 1},
        /* no data is not "low" either */
        {"below-threshold rule, no data", "{name: idle, when: 'cpu < 10%'}", "cc--nn..n-cc",
         {{0}}, 0},
        {"below-threshold rule, data", "{name: idle, when: 'cpu < 10%'}", "cc--l",
         {{EVENT_FIRING, "idle", 5}}, 1},
        /* firing from t=1; resolving at t=3,4; no data at 5; from 6 it takes 3s */
        {"missing sample delays resolve",
         "{name: hot, when: 'cpu > 80%', resolve_after: 3s}", "HHcc-cccccc",
         {{EVENT_FIRING, "hot", 1}, {EVENT_RESOLVED, "hot", 9}}, 2},
        /* the same with cpu not measured at t=5 */
        {"unmeasured value delays resolve",
         "{name: hot, when: 'cpu > 80%', resolve_after: 3s}", "HHccncccccc",
         {{EVENT_FIRING, "hot", 1}, {EVENT_RESOLVED, "hot", 9}}, 2},
        /* resolving at t=3,4, then nothing until t=10: the unobserved 6s do
         * not count, the resolve takes 3s from t=10 */
        {"gap delays resolve", "{name: hot, when: 'cpu > 80%', resolve_after: 3s}",
         "HHcc.....cccccc", {{EVENT_FIRING, "hot", 1}, {EVENT_RESOLVED, "hot", 13}}, 2},
    };
    /* clang-format on */
    return cr_make_param_array(struct gap_case, cases, NELEM(cases));
}

ParameterizedTest(struct gap_case *c, engine, gap_never_makes_a_condition_true)
{
    char rules[256];
    snprintf(rules, sizeof rules, "rules: [%s]\n", c->rule);
    struct run *r = run_new(rules);
    for (size_t i = 0; c->pattern[i]; i++) {
        double t = (double)i + 1;
        struct sample s = sample_at(t);
        switch (c->pattern[i]) {
        case 'H':
            s.v[METRIC_CPU] = 95;
            break;
        case 'c':
            s.v[METRIC_CPU] = 20;
            break;
        case 'l':
            s.v[METRIC_CPU] = 5;
            break;
        case 'n':
            break;
        case '-':
            step_slot(r, 0, t, NULL);
            continue;
        case '.':
            continue;
        default:
            cr_assert_fail("bad pattern character '%c'", c->pattern[i]);
        }
        step_slot(r, 0, t, &s);
    }
    if (r->nrecs != c->nwant)
        fprintf(stderr, "case '%s'\n", c->name);
    expect_events(r, c->want, c->nwant);
    run_free(r);
}

/* ---- clocks ------------------------------------------------------------ */

/* The same series with the wall clock jumping back an hour while pending,
 * then forward a day while firing: the same events at the same (monotonic)
 * times; only the incident names follow the wall clock. */
Test(engine, wall_clock_jumps_neither_fire_nor_hide_a_rule)
{
    static const char rules[] = "rules:\n"
                                "  - {name: hot, when: 'cpu > 80%', for: 10s, resolve_after: 10s}\n"
                                "  - {name: rel, when: 'cpu > 2x baseline', baseline_window: 1m,\n"
                                "     for: 5s}\n";
    struct run *steady = run_new(rules), *jumpy = run_new(rules);
    for (int t = 1; t <= 120; t++) {
        double v = t >= 40 && t < 70 ? 95 : 20;
        if (t == 45)
            jumpy->wall_skew_ns = -3600 * S;
        if (t == 60)
            jumpy->wall_skew_ns = 86400 * S;
        poll1(steady, t, METRIC_CPU, v);
        poll1(jumpy, t, METRIC_CPU, v);
    }
    /* both pending from 40; rel (2x the median 20) fires at 45, hot at 50;
     * cool from 70: hot resolves at 80, rel 5s after it (its `for`) at 75 */
    static const struct want w[] = {{EVENT_FIRING, "rel", 45},
                                    {EVENT_FIRING, "hot", 50},
                                    {EVENT_RESOLVED, "rel", 75},
                                    {EVENT_RESOLVED, "hot", 80}};
    expect_events(steady, w, NELEM(w));
    expect_events(jumpy, w, NELEM(w));
    for (size_t i = 0; i < NELEM(w); i++) {
        cr_assert_eq(steady->recs[i].episode_wall_ns, WALL0 + 40 * S);
        cr_assert_eq(jumpy->recs[i].episode_wall_ns, WALL0 + 40 * S,
                     "the episode began before the jumps");
    }
    run_free(steady);
    run_free(jumpy);
}

/* ---- explain ----------------------------------------------------------- */

Test(engine, explain_false_condition_reports_each_comparison)
{
    struct run *r = run_new("rules: [{name: big, when: 'cpu > 80% and rss > 1GiB'}]\n");
    struct sample s = sample_at(1);
    s.v[METRIC_CPU] = 50;
    s.v[METRIC_RSS] = (float)(2048 * MIB);
    step_slot(r, 0, 1, &s);
    struct explain x;
    explain(r, 0, 1, &x);
    cr_assert_eq(x.state, RULE_INACTIVE);
    cr_assert_eq(x.reason, EXPLAIN_FALSE);
    cr_assert_eq(x.nobs, 2);
    cr_assert_eq(x.obs[0].metric, METRIC_CPU);
    cr_assert_eq(x.obs[0].op, EXPR_OP_GT);
    cr_assert_eq(x.obs[0].ref, EXPR_REF_ABS);
    cr_assert_float_eq(x.obs[0].value, 50.0, 1e-9);
    cr_assert_float_eq(x.obs[0].threshold, 80.0, 1e-9);
    cr_assert_not(x.obs[0].holds);
    cr_assert_eq(x.obs[1].metric, METRIC_RSS);
    cr_assert_float_eq(x.obs[1].value, 2048 * MIB, 1e-3);
    cr_assert_float_eq(x.obs[1].threshold, 1024 * MIB, 1e-3);
    cr_assert(x.obs[1].holds);
    cr_assert_not(x.obs[1].warming_up);
    expect_none(r);
    run_free(r);
}

/* held: true at t=5, false at 6 and 7, true from 8: pending since 8.
 * count: t=2..4 were missed (false), so its last 5 polls at t=8 are
 * t=4..8 = F T F F T, and at t=9 T F F T T: 3 of 5, it fires. */
Test(engine, explain_pending_reports_remaining_time_or_n_of_m)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: held, when: 'cpu > 80%', for: 10s}\n"
                            "  - {name: count, when: 'cpu > 80%', for: 3 of 5}\n");
    struct explain x;
    poll1(r, 1, METRIC_CPU, 20);
    explain(r, 0, 1, &x);
    cr_assert_eq(x.reason, EXPLAIN_FALSE);
    for (int t = 5; t <= 8; t++)
        poll1(r, t, METRIC_CPU, t == 5 || t == 8 ? 95 : 20);
    explain(r, 0, 8, &x);
    cr_assert_eq(x.state, RULE_PENDING);
    cr_assert_eq(x.reason, EXPLAIN_PENDING);
    cr_assert_eq(x.remaining_ns, 10 * S, "pending since t=8");
    explain(r, 1, 8, &x);
    cr_assert_eq(x.reason, EXPLAIN_PENDING);
    cr_assert_eq(x.n_true, 2);
    cr_assert_eq(x.m, 5);
    poll1(r, 9, METRIC_CPU, 95);
    explain(r, 0, 9, &x);
    cr_assert_eq(x.remaining_ns, 9 * S);
    explain(r, 1, 9, &x);
    cr_assert_eq(x.reason, EXPLAIN_FIRING);
    cr_assert_eq(x.n_true, 3);
    static const struct want w[] = {{EVENT_FIRING, "count", 9}};
    expect_events(r, w, NELEM(w));
    run_free(r);
}

Test(engine, explain_warming_up_reports_time_until_the_baseline_is_ready)
{
    struct run *r = run_new("rules: [{name: rel, when: 'cpu > 3x baseline', "
                            "baseline_window: 1m}]\n");
    struct explain x;
    for (int t = 1; t <= 10; t++)
        poll1(r, t, METRIC_CPU, 20);
    explain(r, 0, 10, &x);
    cr_assert_eq(x.reason, EXPLAIN_WARMING_UP);
    cr_assert_eq(x.remaining_ns, 6 * S, "ready at t=16: a quarter of 1m after t=1");
    cr_assert(x.obs[0].warming_up);
    cr_assert(isnan(x.obs[0].threshold));
    for (int t = 11; t <= 15; t++)
        poll1(r, t, METRIC_CPU, 20);
    poll1(r, 16, METRIC_CPU, 59);
    explain(r, 0, 16, &x);
    cr_assert_eq(x.reason, EXPLAIN_FALSE);
    cr_assert_not(x.obs[0].warming_up);
    cr_assert_float_eq(x.obs[0].threshold, 60.0, 1e-9, "3x the median 20");
    poll1(r, 17, METRIC_CPU, 61);
    static const struct want w[] = {{EVENT_FIRING, "rel", 17}};
    expect_events(r, w, NELEM(w));
    explain(r, 0, 17, &x);
    cr_assert_eq(x.reason, EXPLAIN_FIRING);
    run_free(r);
}

/* Polls every 2s from t=2: a quarter of 1m is 15s, but 10 samples take
 * until t=22 (10 closed buckets: t=2..20), and that is what explain says. */
Test(engine, explain_warming_up_counts_the_minimum_samples_too)
{
    struct run *r = run_new("poll_interval: 2s\n"
                            "rules: [{name: rel, when: 'cpu > 3x baseline', "
                            "baseline_window: 1m}]\n");
    struct explain x;
    poll1(r, 2, METRIC_CPU, 20);
    explain(r, 0, 2, &x);
    cr_assert_eq(x.reason, EXPLAIN_WARMING_UP);
    cr_assert_eq(x.remaining_ns, 20 * S);
    for (int t = 4; t <= 20; t += 2)
        poll1(r, t, METRIC_CPU, 20);
    explain(r, 0, 20, &x);
    cr_assert_eq(x.reason, EXPLAIN_WARMING_UP, "9 samples at t=20");
    cr_assert_eq(x.remaining_ns, 2 * S);
    poll1(r, 22, METRIC_CPU, 99);
    static const struct want w[] = {{EVENT_FIRING, "rel", 22}};
    expect_events(r, w, NELEM(w));
    run_free(r);
}

Test(engine, explain_without_a_sample_reports_no_data)
{
    struct run *r = run_new("rules: [" HOT "}]\n");
    struct explain x;
    poll1(r, 1, METRIC_CPU, 20);
    step_slot(r, 0, 2, NULL);
    explain(r, 0, 2, &x);
    cr_assert_eq(x.reason, EXPLAIN_NO_DATA);
    cr_assert(isnan(x.obs[0].value));
    run_free(r);
}

Test(engine, explain_rule_of_another_target_is_not_applicable)
{
    static const char *const slots[] = {"app:1"};
    struct run *r =
        run_new_slots("targets: [{name: app, match: {pid: 1}}, "
                      "{name: db, match: {pid: 2}}]\n",
                      "rules: [{name: dbonly, when: 'cpu > 80%', targets: [db]}]\n", slots, 1);
    for (int t = 1; t <= 5; t++)
        poll1(r, t, METRIC_CPU, 95);
    struct explain x;
    explain(r, 0, 5, &x);
    cr_assert_eq(x.reason, EXPLAIN_NOT_APPLICABLE);
    expect_none(r);
    run_free(r);
}

/* ---- hot reload -------------------------------------------------------- */

/* From t=5 cpu is 95: notes fires at once, keep and change are pending.
 * The reload at t=8.5 moves rules around, changes only an annotation of
 * notes and the `for` of change: keep and notes keep their state (keep
 * fires at 15, notes does not alert again), change starts over at t=9 and
 * fires 12s later. */
Test(engine, reload_keeps_state_of_unchanged_rules_and_resets_changed_ones)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: keep, when: 'cpu > 80%', for: 10s}\n"
                            "  - {name: change, when: 'cpu > 80%', for: 10s}\n"
                            "  - {name: notes, when: 'cpu > 50%', annotations: {runbook: a}}\n");
    for (int t = 1; t <= 40; t++) {
        if (t == 9)
            reload(r, 8.5, "rules:\n"
                      "  - {name: notes, when: 'cpu > 50%', annotations: {runbook: b}}\n"
                      "  - {name: change, when: 'cpu > 80%', for: 12s}\n"
                      "  - {name: keep, when: 'cpu > 80%', for: 10s}\n");
        poll1(r, t, METRIC_CPU, t >= 5 ? 95 : 20);
        if (t == 9) {
            cr_assert_eq(engine_rule_state(r->e, r->slot[0], 0), RULE_FIRING, "notes");
            cr_assert_eq(engine_rule_state(r->e, r->slot[0], 1), RULE_PENDING, "change");
        }
    }
    static const struct want w[] = {
        {EVENT_FIRING, "notes", 5}, {EVENT_FIRING, "keep", 15}, {EVENT_FIRING, "change", 21}};
    expect_events(r, w, NELEM(w));
    cr_assert_float_eq(r->recs[1].episode_start, 5.0, 1e-9);
    cr_assert_float_eq(r->recs[2].episode_start, 9.0, 1e-9);
    run_free(r);
}

/* keep, change and drop all fire at t=3 (one event: keep leads, the others
 * co-fire, each with its own incident key). The reload at t=10.5 keeps
 * keep, changes change's threshold and removes drop: the episodes of change
 * and drop end there with EVENT_RESOLVED under their old incident keys (a
 * receiver closes them); keep goes on firing without a new event and
 * change, now a new rule that holds, fires again at the next poll. */
Test(engine, reload_resolves_alerted_episodes_of_changed_and_removed_rules)
{
    struct run *r = run_new("rules:\n"
                            "  - {name: keep, when: 'cpu > 80%'}\n"
                            "  - {name: change, when: 'cpu > 80%'}\n"
                            "  - {name: drop, when: 'cpu > 80%'}\n");
    for (int t = 1; t <= 15; t++) {
        if (t == 11)
            reload(r, 10.5, "rules:\n"
                            "  - {name: change, when: 'cpu > 70%'}\n"
                            "  - {name: keep, when: 'cpu > 80%'}\n");
        poll1(r, t, METRIC_CPU, t >= 3 ? 95 : 20);
    }
    static const struct want w[] = {{EVENT_FIRING, "keep", 3},
                                    {EVENT_RESOLVED, "change", 10.5},
                                    {EVENT_RESOLVED, "drop", 10.5},
                                    {EVENT_FIRING, "change", 11}};
    expect_events(r, w, NELEM(w));
    cr_assert_eq(r->recs[0].ncofiring, 2);
    cr_assert_str_eq(r->recs[0].cofiring[0], "change");
    cr_assert_str_eq(r->recs[0].cofiring[1], "drop");
    cr_assert_str_eq(r->recs[1].incident, r->recs[0].cofiring_incident[0],
                     "the episode's own key");
    cr_assert_str_eq(r->recs[2].incident, r->recs[0].cofiring_incident[1]);
    cr_assert_str_neq(r->recs[3].incident, r->recs[1].incident, "a new episode, a new key");
    run_free(r);
}

/* ---- rss_growth -------------------------------------------------------- */

/* RSS at 200MiB with one sample 300MiB higher at t=200. The least-squares
 * slope over a full 2m window (120 samples) of a single outlier is at most
 * 300MiB * 59.5 / 143990 per second, ~7.4MiB/min: under 10MiB/min wherever
 * it sits in the window. */
Test(engine, rss_growth_single_allocation_spike_is_not_a_leak)
{
    struct run *r = run_new("rules: [{name: leak, when: 'rss_growth > 10MiB/min'}]\n");
    double most = -INFINITY;
    for (int t = 1; t <= 300; t++) {
        poll1(r, t, METRIC_RSS, (t == 200 ? 500 : 200) * MIB);
        struct explain x;
        explain(r, 0, t, &x);
        if (!isnan(x.obs[0].value) && x.obs[0].value > most)
            most = x.obs[0].value;
    }
    expect_none(r);
    cr_assert(most > 5 * MIB && most < 7.5 * MIB, "largest growth seen %.2fMiB/min", most / MIB);
    run_free(r);
}

/* Slot 0 leaks 2MiB/min under uniform noise of +-256KiB (7x what it leaks in
 * a poll); slot 1 has the same kind of noise and no leak. Over n >= 61
 * evenly spaced samples the noise moves the slope by at most
 * A * sum|t - mean| / sum (t - mean)^2 ~ 2.95 A per minute = 0.74MiB/min:
 * the leak reads above 1MiB/min from t=61 (the window half covered) and
 * fires a minute later; the noise alone never does, whatever the seed. */
Test(engine, rss_growth_slow_leak_under_noise_fires_once_the_window_is_half_covered)
{
    static const char *const slots[] = {"app:1", "app:2"};
    struct run *r = run_new_slots(
        APP_TARGET, "rules: [{name: leak, when: 'rss_growth > 1MiB/min', for: 1m}]\n", slots, 2);
    uint64_t rng = 0x5eed5eed1234ULL;
    for (int t = 1; t <= 400; t++) {
        for (size_t k = 0; k < 2; k++) {
            struct sample s = sample_at(t);
            double leak = k == 0 ? 2 * MIB / 60 * t : 0;
            s.v[METRIC_RSS] = (float)(512 * MIB + leak + 0.25 * MIB * xs_unit(&rng));
            step_slot(r, k, t, &s);
        }
        struct explain x;
        if (t == 60) {
            explain(r, 0, t, &x);
            cr_assert(isnan(x.obs[0].value), "59s of a 2m window: no trend yet");
            cr_assert_eq(x.reason, EXPLAIN_FALSE);
        }
        if (t == 61) {
            explain(r, 0, t, &x);
            cr_assert_eq(x.reason, EXPLAIN_PENDING);
            cr_assert(fabs(x.obs[0].value - 2 * MIB) < 0.75 * MIB, "%.2fMiB/min",
                      x.obs[0].value / MIB);
        }
    }
    static const struct want w[] = {{EVENT_FIRING, "leak", 121}};
    expect_events(r, w, NELEM(w));
    cr_assert_eq(r->recs[0].slot, 0);
    run_free(r);
}

/* ---- baselines --------------------------------------------------------- */

/* 20 until t=100, 40 from t=101. The 1m median (the 59 closed one-poll
 * buckets before now) stays 20 while fewer than 30 of them are 40, i.e.
 * until t=130: the rule is true t=101..130, fires at 111 and resolves 10s
 * after t=131. At 40 the new normal never fires again. */
Test(engine, baseline_shift_fires_once_then_adapts)
{
    struct run *r = run_new("rules: [{name: shift, when: 'cpu > 1.5x baseline', for: 10s, "
                            "baseline_window: 1m}]\n");
    for (int t = 1; t <= 400; t++)
        poll1(r, t, METRIC_CPU, t <= 100 ? 20 : 40);
    static const struct want w[] = {{EVENT_FIRING, "shift", 111}, {EVENT_RESOLVED, "shift", 141}};
    expect_events(r, w, NELEM(w));
    run_free(r);
}

/* A spike of 99 at t=15 (before the baseline is ready) cannot fire; the
 * same spike at t=16 (ready: a quarter of 1m and 15 samples) does. */
Test(engine, baseline_warm_up_keeps_relative_rules_false_until_ready)
{
    static const int spike_at[] = {15, 16};
    static const double want_t[] = {0, 16};
    for (size_t i = 0; i < NELEM(spike_at); i++) {
        struct run *r = run_new("rules: [{name: rel, when: 'cpu > 3x baseline', "
                                "baseline_window: 1m}]\n");
        for (int t = 1; t <= 30; t++)
            poll1(r, t, METRIC_CPU, t == spike_at[i] ? 99 : 20);
        if (want_t[i] == 0) {
            expect_none(r);
        } else {
            struct want w[] = {{EVENT_FIRING, "rel", want_t[i]}};
            expect_events(r, w, 1);
        }
        run_free(r);
    }
}

/* ---- properties -------------------------------------------------------- */

/* 10,000 random samples (regimes of random length and level, noise, missing
 * samples, gaps, restarts, captures lasting 0-20s): however the series goes,
 *  - a rule alerts (leading or co-firing) at most once per cooldown,
 *  - no more than max_captures_per_hour captures start in any hour,
 *  - no capture starts while another runs on the slot,
 * and the run is not vacuous: alerts, suppressions and captures happen. */
struct prop_case {
    uint64_t seed;
    int cooldown_s;
    unsigned budget;
};

ParameterizedTestParameters(engine, random_series_never_exceeds_cooldown_or_budget)
{
    /* clang-format off */
    static struct prop_case cases[] = {
        {1, 60, 3}, {2, 300, 6}, {3, 30, 20}, {4, 600, 1}, {5, 45, 3600},
    };
    /* clang-format on */
    return cr_make_param_array(struct prop_case, cases, NELEM(cases));
}

ParameterizedTest(struct prop_case *c, engine, random_series_never_exceeds_cooldown_or_budget)
{
    char rules[1024];
    snprintf(rules, sizeof rules,
             "rules:\n"
             "  - {name: hot, when: 'cpu > 80%%', cooldown: %ds, capture: {profile: cpu}}\n"
             "  - {name: jump, when: 'cpu > 2x baseline', for: 2 of 4, cooldown: %ds,\n"
             "     baseline_window: 5m, capture: {profile: memory}}\n"
             "  - {name: note, when: 'cpu > 70%%', for: 3s, cooldown: %ds, severity: critical}\n"
             "  - {name: low, when: 'cpu < 10%%', resolve_when: 'cpu > 30%%', cooldown: %ds}\n"
             "  - {name: base, every: 10m, capture: {profile: cpu}}\n"
             "alert: {max_captures_per_hour: %u}\n",
             c->cooldown_s, 2 * c->cooldown_s, c->cooldown_s, c->cooldown_s, c->budget);
    struct run *r = run_new(rules);
    r->auto_done = false;
    uint64_t rng = c->seed * 0x9e3779b97f4a7c15ULL + 1;
    double level = 20, done_at = -1;
    int regime_left = 0, t = 0;
    size_t nsamples = 0, ncaptures = 0;

    while (nsamples < 10000) {
        t += xs_next(&rng) % 100 == 0 ? 2 + (int)(xs_next(&rng) % 5) : 1; /* 1%: a gap */
        if (done_at >= 0 && t >= done_at) {
            engine_capture_done(r->e, r->slot[0]);
            done_at = -1;
        }
        if (xs_next(&rng) % 2500 == 0)
            restart(r, t - 0.5);
        if (regime_left-- <= 0) {
            static const double levels[] = {5, 20, 50, 75, 90};
            level = levels[xs_next(&rng) % NELEM(levels)];
            regime_left = 5 + (int)(xs_next(&rng) % 120);
        }
        bool busy = engine_slot_busy(r->e, r->slot[0]);
        size_t before = r->nrecs;
        if (xs_next(&rng) % 50 == 0) {
            step_slot(r, 0, t, NULL); /* 2%: no sample */
        } else {
            double v = level + 10 * xs_unit(&rng);
            poll1(r, t, METRIC_CPU, v < 0 ? 0 : v);
            nsamples++;
        }
        for (size_t i = before; i < r->nrecs; i++) {
            const struct rec *x = &r->recs[i];
            if ((x->kind == EVENT_FIRING || x->kind == EVENT_SCHEDULED) && x->capture[0]) {
                cr_assert_not(busy, "capture at t=%.0f while one runs", x->t);
                cr_assert_lt(done_at, 0, "two captures at t=%.0f", x->t);
                busy = true;
                done_at = t + (double)(xs_next(&rng) % 21);
                ncaptures++;
            }
        }
    }

    /* cooldown: per rule, the times it alerted */
    size_t alerts = 0, suppressed = 0;
    for (size_t rule = 0; rule < r->cfg->nrules; rule++) {
        double cooldown = (double)r->cfg->rules[rule].cooldown_ns / S, last = -1e18;
        size_t n = 0;
        for (size_t i = 0; i < r->nrecs; i++) {
            const struct rec *x = &r->recs[i];
            if (x->kind == EVENT_SUPPRESSED && x->rule_idx == rule)
                suppressed++;
            if (x->kind != EVENT_FIRING)
                continue;
            bool mine = x->rule_idx == rule;
            for (size_t k = 0; k < x->ncofiring; k++)
                mine |= x->cofiring_idx[k] == rule;
            if (!mine)
                continue;
            cr_assert_geq(x->t - last, cooldown, "%s alerted at %.0f and %.0f, cooldown %.0fs",
                          r->cfg->rules[rule].name, last, x->t, cooldown);
            last = x->t;
            n++;
        }
        cr_assert_leq(n, (size_t)(t / cooldown) + 1);
        alerts += n;
    }
    /* budget: captures i and i + budget are at least an hour apart */
    double *cap = calloc(ncaptures + 1, sizeof *cap);
    size_t ncap = 0;
    for (size_t i = 0; i < r->nrecs; i++) {
        const struct rec *x = &r->recs[i];
        if ((x->kind == EVENT_FIRING || x->kind == EVENT_SCHEDULED) && x->capture[0])
            cap[ncap++] = x->t;
    }
    cr_assert_eq(ncap, ncaptures);
    for (size_t i = 0; i + c->budget < ncap; i++)
        cr_assert_geq(cap[i + c->budget] - cap[i], 3600.0, "%u captures between t=%.0f and t=%.0f",
                      c->budget + 1, cap[i], cap[i + c->budget]);
    cr_assert_leq(ncap, (size_t)c->budget * (size_t)(t / 3600 + 1));
    free(cap);

    cr_assert_gt(alerts, 2, "the series is not vacuous");
    cr_assert_gt(ncaptures, 0);
    cr_assert_gt(suppressed, 0);
    run_free(r);
}
