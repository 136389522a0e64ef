/* tests/alert_fixture.c - one alert's inputs, built by hand; see alert_fixture.h. */
#include "alert_fixture.h"

#include "xalloc.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#define S 1000000000LL

static const char rules_yaml[] =
    "version: 1\n"
    "targets:\n"
    "  - name: api\n"
    "    match: {process: '^api$'}\n"
    "    labels: {service: api, version: '${APP_VERSION}'}\n"
    "    logs:\n"
    "      - path: /var/log/api.log\n"
    "rules:\n"
    "  - name: cpu-hot\n"
    "    when: cpu > 80% or rss > 1GiB\n"
    "    for: 30s\n"
    "    severity: critical\n"
    "    capture: {profile: cpu, duration: 5s}\n"
    "    labels: {team: payments}\n"
    "    annotations: {runbook_url: 'https://runbooks.example.com/cpu'}\n"
    "  - name: rss-high\n"
    "    when: rss > 512MiB\n"
    "alert:\n"
    "  redact: ['corp-[0-9]+']\n";

static const char log_text[] = "boot\n"
                               "listening on :8080\n"
                               "request ok\n"
                               "ERROR auth failed token=" FIXTURE_SECRET_LOG " user=bob\n"
                               "retrying\n"
                               "recovered\n"
                               "steady\n"
                               "ERROR bad byte \xff here\n"
                               "done\n";

static const char *fake_env(const char *name, void *ctx)
{
    (void)ctx;
    return strcmp(name, "APP_VERSION") == 0 ? "2.4.1" : NULL;
}

struct profile *alert_fixture_profile(const char *const *leaf, const unsigned *count, size_t n)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    int64_t t = 1;

    p->pid = 4242;
    snprintf(p->comm, sizeof p->comm, "api");
    p->period_ns = 10000000;
    for (size_t i = 0; i < n; i++) {
        uint64_t ips[3] = {0x3000 + 0x100 * i, 0x2000, 0x1000};
        for (unsigned k = 0; k < count[i]; k++)
            profile_add_sample(p, ips, 3, 4243, t++, (uint64_t)p->period_ns);
    }
    for (uint32_t f = 0; f < p->nframes; f++) {
        uint64_t a = p->frames[f].addr;
        const char *name = a == 0x1000 ? "main" : a == 0x2000 ? "work" : leaf[(a - 0x3000) / 0x100];
        profile_name_frame(p, f + 1, name, NULL, 0);
    }
    return p;
}

void alert_fixture_init(struct alert_fixture *fx)
{
    struct diag_list d;
    char err[256];

    memset(fx, 0, sizeof *fx);
    diag_init(&d);
    int rc =
        config_parse("fixture.yaml", rules_yaml, strlen(rules_yaml), fake_env, NULL, &fx->cfg, &d);
    if (rc != 0)
        diag_print(&d, "fixture.yaml", stderr);
    cr_assert_eq(rc, 0, "the fixture's rules file must parse");
    diag_fini(&d);

    /* the event: cpu held, rss was not measured */
    struct event *ev = &fx->ev;
    ev->kind = EVENT_FIRING;
    ev->rule = 0;
    ev->t_ns = FIXTURE_MONO - 1 * S;
    ev->episode_start_ns = FIXTURE_MONO - 30 * S;
    ev->episode_start_wall_ns = FIXTURE_CREATED - 30 * S;
    ev->true_for_ns = 30 * S;
    snprintf(ev->incident, sizeof ev->incident, "%s", FIXTURE_INCIDENT);
    ev->capture_rule = 0;
    ev->suppressed_cooldown = 2;
    ev->suppressed_budget = 1;
    ev->cofiring[0].rule = 1;
    ev->cofiring[0].episode_start_ns = FIXTURE_MONO - 10 * S;
    snprintf(ev->cofiring[0].incident, sizeof ev->cofiring[0].incident, "%s",
             FIXTURE_COFIRING_INCIDENT);
    ev->ncofiring = 1;
    ev->obs[0] = (struct observed){METRIC_CPU, EXPR_OP_GT, EXPR_REF_ABS, 93.14, 80.0, true, false};
    ev->obs[1] =
        (struct observed){METRIC_RSS, EXPR_OP_GT, EXPR_REF_ABS, NAN, 1073741824.0, false, false};
    ev->nobs = 2;

    /* the process */
    struct instance *in = &fx->inst;
    in->target = 0;
    in->pid = 4242;
    in->alive = true;
    in->slot = 0;
    in->restarts = 1;
    in->meta.pid = 4242;
    in->meta.ppid = 1;
    snprintf(in->meta.comm, sizeof in->meta.comm, "api");
    in->meta.cmdline = xstrdup("/usr/bin/api --password " FIXTURE_SECRET_CMDLINE
                               " --db postgres://app:" FIXTURE_SECRET_URL "@db:5432/api "
                               "--tenant corp-991");
    in->meta.exe = xstrdup("/usr/bin/api");
    snprintf(in->meta.build_id, sizeof in->meta.build_id, "abcdef0123456789abcdef0123456789");
    in->meta.start_wall_ns = FIXTURE_START;
    snprintf(in->meta.container_id, sizeof in->meta.container_id, "c0ffee");
    snprintf(in->meta.cgroup, sizeof in->meta.cgroup, "/kubepods/pod1/c0ffee");
    in->hot[0] = (struct hot_thread){4243, "worker-1", 87.5};
    in->hot[1] = (struct hot_thread){4244, "gc", 5.25};
    in->nhot = 2;
    in->detail.rss_anon = 300u << 20;
    in->detail.have_cg_mem = true;
    in->detail.cg_usage = 400u << 20;
    in->detail.cg_limit = UINT64_MAX;
    in->detail.cpu_quota = 2.0;
    in->detail.state = 'R';

    /* metric history: one poll without a cpu value */
    for (int i = 0; i < 3; i++) {
        sample_init(&fx->before[i], FIXTURE_MONO - (3 - i) * S);
        fx->before[i].v[METRIC_CPU] = 85.0f + (float)i;
        fx->before[i].v[METRIC_RSS] = 268435456.0f;
        fx->before[i].v[METRIC_THREADS] = 12.0f;
        fx->before[i].v[METRIC_FDS] = 40.0f;
    }
    fx->before[1].v[METRIC_CPU] = NAN;
    fx->before[2].v[METRIC_ERRORS] = 2.5f;
    for (int i = 0; i < 2; i++) {
        sample_init(&fx->during[i], FIXTURE_MONO - S / 2 + i * (S / 4));
        fx->during[i].v[METRIC_CPU] = 95.0f;
    }

    /* the log */
    rc = logscan_new(LOG_FORMAT_PLAIN, "\\bERROR\\b", &fx->scan, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    logscan_feed(fx->scan, NULL, log_text, strlen(log_text), FIXTURE_MONO - 10 * S,
                 FIXTURE_CREATED - 10 * S);
    fx->log = (struct alert_log){"/var/log/api.log", fx->scan};

    /* profiles */
    static const char *const now_leaf[] = {"alpha", "beta", "gamma"};
    static const unsigned now_count[] = {10, 60, 30};
    static const char *const base_leaf[] = {"alpha", "beta"};
    static const unsigned base_count[] = {50, 50};
    fx->profile = alert_fixture_profile(now_leaf, now_count, 3);
    fx->profile->start_wall_ns = FIXTURE_CREATED - 6 * S;
    fx->profile->duration_ns = 5 * S;
    fx->profile->stopped_ns = 25000000;
    fx->profile->rate_achieved_hz = 98.5;
    profile_note(fx->profile, "rate lowered to %d Hz", 99);
    fx->baseline = alert_fixture_profile(base_leaf, base_count, 2);
    fx->baseline->start_wall_ns = FIXTURE_CREATED - 3600 * S;
    fx->baseline->duration_ns = 10 * S;

    /* attachments (test_webhook writes the files and fixes sizes and hashes) */
    static const char *const names[] = {"profile.pb.gz", "stacks.folded", "flame.svg"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(fx->att[i].name, sizeof fx->att[i].name, "%s", names[i]);
        fx->att[i].content_type = bundle_content_type(names[i]);
        fx->att[i].size = 100 * (i + 1);
        memset(fx->att[i].sha256, 'a' + (int)i, 64);
    }

    fx->redact = redactor_new((const char *const *)fx->cfg->alert.redact, fx->cfg->alert.nredact,
                              err, sizeof err);
    cr_assert_not_null(fx->redact, "%s", err);

    fx->in = (struct alert_input){
        .kind = ALERT_RULE,
        .state = ALERT_FIRING,
        .id = "0b9a3f2e-5c1d-4e8f-9a7b-6c5d4e3f2a1b",
        .created_wall_ns = FIXTURE_CREATED,
        .created_mono_ns = FIXTURE_MONO,
        .hostname = "node-7",
        .cfg = fx->cfg,
        .rule = &fx->cfg->rules[0],
        .event = &fx->ev,
        .target = &fx->cfg->targets[0],
        .inst = &fx->inst,
        .before = fx->before,
        .nbefore = 3,
        .during = fx->during,
        .nduring = 2,
        .logs = &fx->log,
        .nlogs = 1,
        .profile = fx->profile,
        .baseline = fx->baseline,
        .binary_changed = true,
        .attachments = fx->att,
        .nattachments = 3,
        .redact = fx->redact,
    };
}

void alert_fixture_fini(struct alert_fixture *fx)
{
    redactor_free(fx->redact);
    profile_free(fx->profile);
    profile_free(fx->baseline);
    logscan_free(fx->scan);
    procmeta_fini(&fx->inst.meta);
    config_free(fx->cfg);
    memset(fx, 0, sizeof *fx);
}
