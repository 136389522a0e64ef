/* tests/bench/bench_engine.c - trigger engine cost per rule evaluation.
 *
 * 1,000 watched processes x 10 rules, polled 600 times with a realistic mix
 * (thresholds with for, N of M, baselines and sigma, rss_growth, resolve_when,
 * a schedule). The floor is the same loop that pushes the same samples into
 * the same histories and reads them back, without the engine. Reported: ns
 * per rule evaluation = (engine - floor) / (polls x processes x rules).
 * Goal: under 1,000 ns. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "engine.h"

#define SLOTS 1000
#define POLLS 600
#define S 1000000000LL

static const char rules_yaml[] =
    "version: 1\n"
    "poll_interval: 1s\n"
    "history: 15m\n"
    "targets: [{name: app, match: {process: app}}]\n"
    "rules:\n"
    "  - {name: cpu-hot, when: 'cpu > 90%', for: 10s, capture: {profile: cpu}}\n"
    "  - {name: cpu-spiky, when: 'cpu > 95%', for: 3 of 5}\n"
    "  - {name: cpu-baseline, when: 'cpu > 3x baseline and cpu > 50%', baseline_window: 10m}\n"
    "  - {name: cpu-sigma, when: 'cpu > 2 sigma and cpu > 1.5x baseline', for: 5 of 15,\n"
    "     baseline_window: 10m}\n"
    "  - {name: leak, when: 'rss_growth > 20MiB/min and rss > 1GiB', for: 2m}\n"
    "  - {name: big, when: 'rss > 4GiB', resolve_when: 'rss < 3GiB'}\n"
    "  - {name: errors, when: 'errors > 30/min or errors > 3 sigma', baseline_window: 10m}\n"
    "  - {name: fds, when: 'fds > 10000 or threads > 5000'}\n"
    "  - {name: oom, when: 'oom_eta < 10m or mem_limit > 95%', severity: critical}\n"
    "  - {name: baseline, every: 1h, capture: {profile: cpu, duration: 5s}}\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void make_sample(struct sample *s, int slot, int poll, unsigned *seed)
{
    sample_init(s, (int64_t)(poll + 1) * S);
    s->v[METRIC_CPU] = 20.0f + (float)(rand_r(seed) % 30);
    s->v[METRIC_RSS] = (float)(512.0 * 1048576.0 + (slot % 7) * 1048576.0 * poll / 60.0);
    s->v[METRIC_ERRORS] = (float)(rand_r(seed) % 5);
    s->v[METRIC_FDS] = 40.0f;
    s->v[METRIC_THREADS] = 20.0f;
    s->v[METRIC_MEM_LIMIT] = 40.0f;
    s->v[METRIC_OOM_ETA] = INFINITY;
}

int main(void)
{
    struct diag_list d;
    struct config *cfg = NULL;
    static struct history h[SLOTS];
    int slots[SLOTS];
    volatile double sink = 0;

    diag_init(&d);
    if (config_parse("bench.yaml", rules_yaml, strlen(rules_yaml), NULL, NULL, &cfg, &d) != 0) {
        diag_print(&d, "bench.yaml", stderr);
        return 1;
    }
    diag_fini(&d);
    size_t cap = (size_t)(cfg->history_ns / cfg->poll_interval_ns);

    /* floor: push the same samples and read them back */
    for (int i = 0; i < SLOTS; i++)
        history_init(&h[i], cap);
    unsigned seed = 1;
    double t0 = now_s();
    for (int p = 0; p < POLLS; p++) {
        for (int i = 0; i < SLOTS; i++) {
            struct sample s;
            make_sample(&s, i, p, &seed);
            history_push(&h[i], &s);
            const struct sample *last = history_last(&h[i]);
            for (int m = 0; m < METRIC_COUNT; m++)
                sink += last->v[m];
        }
    }
    double floor_s = now_s() - t0;
    for (int i = 0; i < SLOTS; i++)
        history_fini(&h[i]);

    /* engine */
    struct engine_params params = {cfg->rules, cfg->nrules, cfg->poll_interval_ns,
                                   cfg->alert.max_captures_per_hour, 7};
    struct engine *e = engine_new(&params);
    for (int i = 0; i < SLOTS; i++) {
        char label[32];
        snprintf(label, sizeof label, "app:%d", 1000 + i);
        history_init(&h[i], cap);
        slots[i] = engine_slot_add(e, "app", label);
    }
    seed = 1;
    size_t events = 0;
    t0 = now_s();
    for (int p = 0; p < POLLS; p++) {
        for (int i = 0; i < SLOTS; i++) {
            struct sample s;
            const struct event *ev;
            make_sample(&s, i, p, &seed);
            history_push(&h[i], &s);
            size_t n = engine_step(e, slots[i], &h[i], s.t_ns, s.t_ns, &ev);
            for (size_t k = 0; k < n; k++) {
                if (ev[k].capture_rule != SIZE_MAX)
                    engine_capture_done(e, slots[i]);
            }
            events += n;
        }
    }
    double engine_s = now_s() - t0;
    double evals = (double)POLLS * SLOTS * (double)cfg->nrules;
    double per_eval_ns = (engine_s - floor_s) / evals * 1e9;
    printf("bench_engine: %d processes x %zu rules x %d polls: engine %.3fs, floor %.3fs "
           "(ratio %.1fx), %.0f ns per rule evaluation (goal < 1000 ns), %zu events\n",
           SLOTS, cfg->nrules, POLLS, engine_s, floor_s, engine_s / floor_s, per_eval_ns, events);
    for (int i = 0; i < SLOTS; i++)
        history_fini(&h[i]);
    engine_free(e);
    config_free(cfg);
    (void)sink;
    return 0;
}
