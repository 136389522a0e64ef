/* tests/test_config.c - rules file schema v1 (sidecar/config): typed values,
 * defaults, ${VAR} and the all-errors-at-once behaviour. The file-based
 * corpus of malformed files is in test_corpus.c. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *fake_env(const char *name, void *ctx)
{
    (void)ctx;
    if (strcmp(name, "APP_VERSION") == 0)
        return "2.4.1";
    if (strcmp(name, "HOOK_SECRET") == 0)
        return "whsec_c2VjcmV0";
    return NULL;
}

static struct config *parse_ok(const char *text)
{
    struct diag_list d;
    struct config *c = NULL;
    diag_init(&d);
    int rc = config_parse("t.yaml", text, strlen(text), fake_env, NULL, &c, &d);
    if (rc != 0) {
        diag_sort(&d);
        diag_print(&d, "t.yaml", stderr);
    }
    cr_assert_eq(rc, 0, "valid file rejected with %zu errors", d.n);
    cr_assert_eq(d.n, 0);
    diag_fini(&d);
    return c;
}

/* Parse an invalid text; returns the diagnostics (caller finis). */
static struct diag_list parse_bad(const char *text)
{
    struct diag_list d;
    struct config *c = NULL;
    diag_init(&d);
    int rc = config_parse("t.yaml", text, strlen(text), fake_env, NULL, &c, &d);
    cr_assert_neq(rc, 0, "invalid file accepted");
    cr_assert_null(c);
    cr_assert_gt(d.n, 0);
    return d;
}

static void assert_diag(const struct diag_list *d, unsigned line, unsigned col, const char *msg)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->items[i].line == line && d->items[i].col == col && strstr(d->items[i].msg, msg))
            return;
    }
    for (size_t i = 0; i < d->n; i++)
        cr_log_error("have %u:%u: %s", d->items[i].line, d->items[i].col, d->items[i].msg);
    cr_assert_fail("no diagnostic %u:%u: ...%s...", line, col, msg);
}

static const char full[] =
    "version: 1\n"
    "poll_interval: 500ms\n"
    "history: 10m\n"
    "targets:\n"
    "  - name: api\n"
    "    match: { process: '^my-api( |$)' }\n"
    "    labels: { team: payments, version: '${APP_VERSION}' }\n"
    "    logs:\n"
    "      - path: /var/log/api/app.log\n"
    "        format: cri\n"
    "        error_pattern: '\\b(ERROR|FATAL)\\b'\n"
    "      - path: /var/log/api/other.log\n"
    "  - name: worker\n"
    "    match: { pid_file: /run/worker.pid }\n"
    "rules:\n"
    "  - name: cpu-hot\n"
    "    when: cpu > 80%\n"
    "    for: 10s\n"
    "    capture: { profile: cpu, duration: 5s, rate: 199 }\n"
    "    cooldown: 10m\n"
    "    severity: critical\n"
    "    targets: [api]\n"
    "    labels: { team: core }\n"
    "    annotations: { runbook: 'https://runbooks/cpu' }\n"
    "  - name: flaky\n"
    "    when: cpu > 2 sigma and cpu > 1.5x baseline\n"
    "    for: 5 of 15\n"
    "    resolve_when: cpu < 50%\n"
    "    resolve_after: 1m\n"
    "    window: 5m\n"
    "    baseline_window: 2h\n"
    "  - name: baseline\n"
    "    every: 1h\n"
    "    capture: { profile: cpu, duration: 10s }\n"
    "alert:\n"
    "  webhook:\n"
    "    url: http://127.0.0.1:9000/hook\n"
    "    format: alertmanager\n"
    "    secret: '${HOOK_SECRET}'\n"
    "    timeout: 2s\n"
    "  spool_dir: /tmp/spool\n"
    "  max_captures_per_hour: 12\n";

Test(config, full_file_gives_typed_values)
{
    struct config *c = parse_ok(full);
    cr_assert_eq(c->poll_interval_ns, 500000000LL);
    cr_assert_eq(c->history_ns, 600000000000LL);
    cr_assert_eq(c->ntargets, 2);

    const struct target_spec *api = config_target(c, "api");
    cr_assert_not_null(api);
    cr_assert_eq(api->match, MATCH_PROCESS);
    cr_assert_str_eq(api->match_arg, "^my-api( |$)");
    cr_assert_not_null(api->process_re);
    cr_assert_eq(api->nlabels, 2);
    cr_assert_str_eq(api->labels[1].key, "version");
    cr_assert_str_eq(api->labels[1].value, "2.4.1", "${APP_VERSION} expanded");
    cr_assert_eq(api->nlogs, 2);
    cr_assert_eq(api->logs[0].format, LOG_FORMAT_CRI);
    cr_assert_str_eq(api->logs[0].error_pattern, "\\b(ERROR|FATAL)\\b");
    cr_assert_eq(api->logs[1].format, LOG_FORMAT_PLAIN);
    cr_assert_str_eq(api->logs[1].error_pattern, CONFIG_DEFAULT_ERROR_PATTERN);
    cr_assert_not_null(api->logs[1].error_re);
    cr_assert_eq(config_target(c, "worker")->match, MATCH_PID_FILE);

    cr_assert_eq(c->nrules, 3);
    const struct rule_spec *r = &c->rules[0];
    cr_assert_str_eq(r->name, "cpu-hot");
    cr_assert_str_eq(r->when_src, "cpu > 80%");
    cr_assert_eq(r->when->metric, METRIC_CPU);
    cr_assert_not(r->for_count);
    cr_assert_eq(r->for_ns, 10000000000LL);
    cr_assert_eq(r->capture.profile, PROFILE_CPU);
    cr_assert_eq(r->capture.duration_ns, 5000000000LL);
    cr_assert_eq(r->capture.rate_hz, 199);
    cr_assert_eq(r->cooldown_ns, 600000000000LL);
    cr_assert_eq(r->severity, SEVERITY_CRITICAL);
    cr_assert_eq(r->ntargets, 1);
    cr_assert_str_eq(r->targets[0], "api");
    cr_assert_str_eq(r->annotations[0].value, "https://runbooks/cpu");

    r = &c->rules[1];
    cr_assert(r->for_count);
    cr_assert_eq(r->for_n, 5);
    cr_assert_eq(r->for_m, 15);
    cr_assert_not_null(r->resolve_when);
    cr_assert_eq(r->resolve_after_ns, 60000000000LL);
    cr_assert_eq(r->window_ns, 300000000000LL);
    cr_assert_eq(r->baseline_window_ns, 7200000000000LL);
    cr_assert_eq(r->capture.profile, PROFILE_NONE, "no capture: alert only");

    r = &c->rules[2];
    cr_assert_null(r->when);
    cr_assert_eq(r->every_ns, 3600000000000LL);
    cr_assert_eq(r->capture.duration_ns, 10000000000LL);
    cr_assert_eq(r->capture.rate_hz, RULE_DEFAULT_RATE_HZ);

    cr_assert_eq(c->alert.nwebhooks, 1);
    cr_assert_eq(c->alert.webhooks[0].format, WEBHOOK_ALERTMANAGER);
    cr_assert_str_eq(c->alert.webhooks[0].secret, "whsec_c2VjcmV0");
    cr_assert_eq(c->alert.webhooks[0].timeout_ns, 2000000000LL);
    cr_assert_str_eq(c->alert.spool_dir, "/tmp/spool");
    cr_assert_eq(c->alert.max_captures_per_hour, 12);
    config_free(c);
}

Test(config, omitted_keys_take_documented_defaults)
{
    struct config *c = parse_ok("version: 1\n"
                                "targets: [{name: a, match: {pid: 1}}]\n"
                                "rules:\n"
                                "  - {name: r, when: 'rss > 1GiB'}\n");
    cr_assert_eq(c->poll_interval_ns, CONFIG_DEFAULT_POLL_NS);
    cr_assert_eq(c->history_ns, CONFIG_DEFAULT_HISTORY_NS);
    const struct rule_spec *r = &c->rules[0];
    cr_assert_eq(r->for_ns, 0);
    cr_assert_lt(r->resolve_after_ns, 0, "default resolve_after is decided by the engine");
    cr_assert_eq(r->cooldown_ns, CONFIG_DEFAULT_COOLDOWN_NS);
    cr_assert_eq(r->window_ns, RULE_DEFAULT_WINDOW_NS);
    cr_assert_eq(r->baseline_window_ns, RULE_DEFAULT_BASELINE_WINDOW_NS);
    cr_assert_eq(r->severity, SEVERITY_WARNING);
    cr_assert_eq(c->targets[0].pid, 1);
    cr_assert_eq(c->alert.nwebhooks, 0);
    cr_assert_str_eq(c->alert.spool_dir, CONFIG_DEFAULT_SPOOL_DIR);
    cr_assert_eq(c->alert.max_captures_per_hour, 6);
    config_free(c);
}

Test(config, default_window_is_clamped_to_short_history)
{
    struct config *c = parse_ok("version: 1\nhistory: 1m\n"
                                "targets: [{name: a, match: {pid: 1}}]\n"
                                "rules: [{name: r, when: 'rss_growth > 1MiB/min'}]\n");
    cr_assert_eq(c->rules[0].window_ns, 60000000000LL);
    config_free(c);
}

Test(config, empty_secret_from_default_means_unsigned)
{
    struct config *c = parse_ok("version: 1\n"
                                "targets: [{name: a, match: {pid: 1}}]\n"
                                "rules: []\n"
                                "alert: {webhook: {url: 'http://127.0.0.1:1/', "
                                "secret: '${NOT_SET:-}'}}\n");
    cr_assert_null(c->alert.webhooks[0].secret);
    config_free(c);
}

Test(config, every_mistake_is_reported_in_one_pass)
{
    struct diag_list d = parse_bad("version: 1\n"
                                   "poll_intervall: 1s\n"
                                   "targets:\n"
                                   "  - name: api\n"
                                   "    match: { process: '(' }\n"
                                   "rules:\n"
                                   "  - name: a\n"
                                   "    when: cpu > 80MiB\n"
                                   "  - name: b\n"
                                   "    when: rss > 1GiB\n"
                                   "    capture: { profile: cpu, rate: 5000 }\n");
    assert_diag(&d, 2, 1, "unknown key 'poll_intervall' in the rules file (did you mean "
                          "'poll_interval'?)");
    assert_diag(&d, 5, 25, "missing closing parenthesis");
    assert_diag(&d, 8, 19, "unit 'MiB' does not fit metric 'cpu'");
    assert_diag(&d, 11, 36, "capture.rate 5000 is out of range (1 to 1000)");
    cr_assert_eq(d.n, 4, "exactly the four mistakes, got %zu", d.n);
    diag_fini(&d);
}

Test(config, log_root_says_whose_filesystem_the_path_is_in)
{
    struct config *c = parse_ok("version: 1\n"
                                "targets:\n"
                                "  - name: api\n"
                                "    match: {pid: 1}\n"
                                "    logs:\n"
                                "      - path: /var/log/api.log\n"
                                "      - path: '/var/log/containers/*-${container_id}.log'\n"
                                "        root: host\n"
                                "        format: cri\n"
                                "      - path: '/var/log/pods/*_${pod_uid}/api/*.log'\n"
                                "        root: host\n"
                                "      - path: '/srv/${APP_VERSION}/x.log'\n"
                                "        root: target\n"
                                "rules: []\n");
    const struct target_spec *t = config_target(c, "api");
    cr_assert_eq(t->nlogs, 4);
    cr_assert_eq(t->logs[0].root, LOG_ROOT_TARGET, "the default");
    cr_assert_eq(t->logs[1].root, LOG_ROOT_HOST);
    cr_assert_str_eq(t->logs[1].path, "/var/log/containers/*-${container_id}.log",
                     "the placeholder is kept for the target's id, not looked up");
    cr_assert_eq(t->logs[1].format, LOG_FORMAT_CRI);
    cr_assert_str_eq(t->logs[2].path, "/var/log/pods/*_${pod_uid}/api/*.log");
    cr_assert_str_eq(t->logs[3].path, "/srv/2.4.1/x.log", "other ${VAR} still expand");
    cr_assert_eq(t->logs[3].root, LOG_ROOT_TARGET);
    config_free(c);
}

Test(config, log_root_mistakes_point_at_the_value)
{
    struct diag_list d = parse_bad("version: 1\n"
                                   "targets:\n"
                                   "  - name: api\n"
                                   "    match: {pid: 1}\n"
                                   "    logs:\n"
                                   "      - {path: /var/log/a.log, root: hots}\n"
                                   "      - {path: '/var/log/${container_id}.log'}\n"
                                   "      - {path: /proc/1/root/var/log/a.log}\n"
                                   "      - {path: var/log/a.log, root: host}\n"
                                   "rules: []\n");
    assert_diag(&d, 6, 38, "log root: unknown value 'hots'; expected one of target, host");
    assert_diag(&d, 7, 26, "log path: ${container_id} is known only for a log on the host "
                           "side: add root: host");
    assert_diag(&d, 8, 16, "log path '/proc/1/root/var/log/a.log' is under /proc: give the path "
                           "as the target sees it");
    assert_diag(&d, 9, 16, "log path 'var/log/a.log' must be absolute with root: host");
    cr_assert_eq(d.n, 4, "exactly the four mistakes, got %zu", d.n);
    diag_fini(&d);
}

Test(config, malformed_yaml_reports_libyaml_position_one_based)
{
    struct diag_list d = parse_bad("version: 1\ntargets:\n  - name: a\n bad: x\n");
    cr_assert_eq(d.n, 1);
    cr_assert_eq(d.items[0].line, 4);
    cr_assert_eq(d.items[0].col, 2);
    cr_assert(strstr(d.items[0].msg, "did not find expected"), "%s", d.items[0].msg);
    diag_fini(&d);
}

Test(config, expression_error_column_accounts_for_quotes)
{
    struct diag_list d = parse_bad("version: 1\n"
                                   "targets: [{name: a, match: {pid: 1}}]\n"
                                   "rules:\n"
                                   "  - name: q\n"
                                   "    when: \"cpu > 80% and rsx > 1GiB\"\n");
    /* the opening quote is column 11; 'rsx' is offset 14 in the value */
    assert_diag(&d, 5, 26, "unknown metric 'rsx'");
    diag_fini(&d);
}

Test(config, missing_variable_points_at_dollar)
{
    struct diag_list d = parse_bad("version: 1\n"
                                   "targets:\n"
                                   "  - name: a\n"
                                   "    match: {pid: 1}\n"
                                   "    labels: {v: 'x-${NOT_SET}'}\n"
                                   "rules: []\n");
    assert_diag(&d, 5, 20, "NOT_SET is not set");
    diag_fini(&d);
}

Test(config, oversized_input_is_refused)
{
    size_t n = CONFIG_MAX_FILE_BYTES + 2;
    char *big = malloc(n);
    cr_assert_not_null(big);
    memset(big, '#', n);
    struct diag_list d;
    struct config *c = NULL;
    diag_init(&d);
    cr_assert_neq(config_parse("big.yaml", big, n, fake_env, NULL, &c, &d), 0);
    cr_assert_not_null(diag_find(&d, "larger than"));
    diag_fini(&d);
    free(big);
}

Test(config, load_reports_unreadable_file)
{
    struct diag_list d;
    struct config *c = NULL;
    diag_init(&d);
    int rc = config_load("/nonexistent/stakeout.yaml", CONFIG_TRUST_ANY, &c, &d);
    cr_assert_eq(rc, -ENOENT);
    cr_assert_not_null(diag_find(&d, "No such file"));
    diag_fini(&d);
    diag_init(&d);
    cr_assert_eq(config_load("/", CONFIG_TRUST_ANY, &c, &d), -EISDIR);
    diag_fini(&d);
}

/* ---- alert delivery: several hooks, caps, TLS, redaction -------------------- */

#define HEAD "version: 1\ntargets: [{name: a, match: {pid: 1}}]\nrules: []\n"

Test(config, webhooks_list_gives_each_hook_its_settings)
{
    struct config *c = parse_ok(HEAD "alert:\n"
                                     "  webhooks:\n"
                                     "    - url: https://hooks.slack.com/services/T/B/x\n"
                                     "      format: slack\n"
                                     "    - url: https://recv.example.com/alerts\n"
                                     "      secret: '${HOOK_SECRET}'\n"
                                     "      timeout: 30s\n"
                                     "      connect_timeout: 2s\n"
                                     "      max_age: 12h\n"
                                     "      max_inline_bytes: 2MiB\n"
                                     "      tls: {ca_file: /etc/stakeout/ca.pem}\n"
                                     "    - url: https://lab.example.com/\n"
                                     "      format: multipart\n"
                                     "      max_inline_bytes: 0\n"
                                     "      tls: {insecure_skip_verify: true}\n"
                                     "  spool_max_bytes: 1GiB\n"
                                     "  redact: ['corp-[0-9]+', '(?i)pin=(?<secret>\\d+)']\n");
    cr_assert_eq(c->alert.nwebhooks, 3);
    const struct webhook_spec *h = c->alert.webhooks;
    cr_assert_eq(h[0].format, WEBHOOK_SLACK);
    cr_assert_null(h[0].secret);
    cr_assert_eq(h[1].format, WEBHOOK_JSON);
    cr_assert_str_eq(h[1].secret, "whsec_c2VjcmV0");
    cr_assert_eq(h[1].timeout_ns, 30000000000LL);
    cr_assert_eq(h[1].connect_timeout_ns, 2000000000LL);
    cr_assert_eq(h[1].max_age_ns, 12 * 3600000000000LL);
    cr_assert_eq(h[1].max_inline_bytes, 2 * 1048576);
    cr_assert_str_eq(h[1].tls.ca_file, "/etc/stakeout/ca.pem");
    cr_assert_not(h[1].tls.insecure_skip_verify);
    cr_assert_eq(h[2].max_inline_bytes, 0);
    cr_assert(h[2].tls.insecure_skip_verify);
    cr_assert_null(h[2].tls.ca_file);
    cr_assert_eq(h[2].line, 15);
    cr_assert_eq(c->alert.spool_max_bytes, 1073741824ULL);
    cr_assert_eq(c->alert.nredact, 2);
    cr_assert_str_eq(c->alert.redact[1], "(?i)pin=(?<secret>\\d+)");
    config_free(c);
}

Test(config, webhook_delivery_keys_take_documented_defaults)
{
    struct config *c = parse_ok(HEAD "alert: {webhook: {url: 'http://127.0.0.1:1/'}}\n");
    const struct webhook_spec *h = &c->alert.webhooks[0];
    cr_assert_eq(h->timeout_ns, CONFIG_DEFAULT_WEBHOOK_TIMEOUT_NS);
    cr_assert_eq(h->connect_timeout_ns, CONFIG_DEFAULT_CONNECT_TIMEOUT_NS);
    cr_assert_eq(h->max_age_ns, 86400000000000LL);
    cr_assert_eq(h->max_inline_bytes, 1048576);
    cr_assert_not(h->tls.insecure_skip_verify);
    cr_assert_null(h->tls.ca_file);
    cr_assert_eq(c->alert.spool_max_bytes, 256ULL << 20);
    cr_assert_eq(c->alert.nredact, 0);
    config_free(c);

    /* the default connect_timeout never outlasts a shorter timeout */
    c = parse_ok(HEAD "alert: {webhook: {url: 'http://127.0.0.1:1/', timeout: 1s}}\n");
    cr_assert_eq(c->alert.webhooks[0].connect_timeout_ns, 1000000000LL);
    config_free(c);
}

Test(config, sizes_take_units_and_plain_byte_counts)
{
    struct config *c = parse_ok(HEAD "alert:\n"
                                     "  webhook: {url: 'http://h/', max_inline_bytes: 500000}\n"
                                     "  spool_max_bytes: 2GB\n");
    cr_assert_eq(c->alert.webhooks[0].max_inline_bytes, 500000);
    cr_assert_eq(c->alert.spool_max_bytes, 2000000000ULL);
    config_free(c);
}

Test(config, webhook_and_webhooks_together_are_refused)
{
    struct diag_list d = parse_bad(HEAD "alert:\n"
                                        "  webhook: {url: 'http://a/'}\n"
                                        "  webhooks: [{url: 'http://b/'}]\n");
    assert_diag(&d, 6, 13, "alert has both 'webhook' and 'webhooks'");
    diag_fini(&d);
}

Test(config, webhooks_empty_or_repeated_is_refused)
{
    struct diag_list d = parse_bad(HEAD "alert: {webhooks: []}\n");
    assert_diag(&d, 4, 19, "alert.webhooks is empty");
    diag_fini(&d);
    d = parse_bad(HEAD "alert:\n"
                       "  webhooks:\n"
                       "    - {url: 'https://x.example.com/h', format: slack}\n"
                       "    - {url: 'https://x.example.com/h', format: json}\n"
                       "    - {url: 'https://x.example.com/h', format: slack}\n");
    assert_diag(&d, 8, 7, "hook 3 has the same url and format as hook 1 (line 6)");
    cr_assert_eq(d.n, 1, "the same url in another format is another message");
    cr_assert_null(diag_find(&d, "x.example.com"), "urls may hold tokens: never printed");
    diag_fini(&d);
}

Test(config, tls_options_are_checked)
{
    struct diag_list d = parse_bad(HEAD "alert:\n"
                                        "  webhook:\n"
                                        "    url: 'https://h/'\n"
                                        "    tls: {insecure_skip_verify: yes, ca_file: ''}\n");
    assert_diag(&d, 7, 33, "tls.insecure_skip_verify must be true or false, found 'yes'");
    assert_diag(&d, 7, 47, "tls.ca_file is empty");
    diag_fini(&d);
    d = parse_bad(HEAD "alert: {webhook: {url: 'https://h/', tls: true}}\n");
    assert_diag(&d, 4, 43, "webhook tls must be a mapping");
    diag_fini(&d);
}

Test(config, connect_timeout_longer_than_timeout_is_refused)
{
    struct diag_list d = parse_bad(HEAD "alert:\n"
                                        "  webhook: {url: 'http://h/', timeout: 2s, "
                                        "connect_timeout: 3s}\n");
    assert_diag(&d, 5, 61, "connect_timeout 3s is longer than the hook's timeout 2s");
    diag_fini(&d);
}

Test(config, bad_sizes_point_at_the_mistake)
{
    struct diag_list d = parse_bad(HEAD "alert:\n"
                                        "  webhook: {url: 'http://h/', max_inline_bytes: 10 MiB}\n"
                                        "  spool_max_bytes: lots\n");
    assert_diag(&d, 5, 51, "bad size '10 MiB'");
    assert_diag(&d, 6, 20, "spool_max_bytes must be a size such as 1MiB or 1048576, found 'lots'");
    diag_fini(&d);
}

Test(config, whsec_secret_must_be_base64_and_is_never_printed)
{
    struct diag_list d = parse_bad(HEAD "alert: {webhook: {url: 'http://h/', "
                                        "secret: 'whsec_abc$$def'}}\n");
    assert_diag(&d, 4, 45, "starts with 'whsec_' but the rest is not base64");
    cr_assert_null(diag_find(&d, "abc"), "the secret stays out of messages");
    diag_fini(&d);
}

Test(config, redact_patterns_are_compiled_with_positions)
{
    struct diag_list d = parse_bad(HEAD "alert:\n"
                                        "  redact: ['ok', 'a(b']\n");
    assert_diag(&d, 5, 22, "alert.redact pattern: bad regular expression at offset 3: missing "
                           "closing parenthesis");
    diag_fini(&d);
}

/* ---- expanded values stay out of diagnostics ------------------------------- */

#define SECRET "s3cr3t" /* in every value below, and in no file's text */

static const char *secret_env(const char *name, void *ctx)
{
    static const char *const vars[][2] = {
        {"HOOK_URL", "https://hooks.slack.com:99999/services/T0/B0/" SECRET},
        {"SECRET_NAME", SECRET " name"},
        {"SECRET_LISTEN", SECRET ":80"},
        {"SECRET_WHEN", "cpu > " SECRET},
        {"SECRET_RE", SECRET "("},
        {"SECRET_TARGET", "api-" SECRET},
        {"SECRET_RULE", "rule-" SECRET},
    };
    (void)ctx;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        if (strcmp(name, vars[i][0]) == 0)
            return vars[i][1];
    }
    return NULL;
}

/* Arrays, not pointers: Criterion may run each case in a fresh process. */
struct unshown_case {
    char text[200];
    unsigned line, col;
    char msg[100]; /* expected there, quoting the file's text */
};

#define T1 "version: 1\ntargets: [{name: api, match: {pid: 1}}]\n"

ParameterizedTestParameters(config, expanded_values_are_never_quoted)
{
    static struct unshown_case cases[] = {
        {T1 "rules: []\nalert: {webhook: {url: '${HOOK_URL}'}}\n", 4, 24,
         "webhook url '${HOOK_URL}' (expanded value not shown) is not a valid URL"},
        {T1 "rules: []\nlisten: '${SECRET_LISTEN}'\n", 4, 9,
         "listen '${SECRET_LISTEN}' (expanded value not shown) must be IPV4:PORT"},
        {"version: 1\ntargets: [{name: '${SECRET_NAME}', match: {pid: 1}}]\nrules: []\n", 2, 18,
         "target name '${SECRET_NAME}' (expanded value not shown) is not a valid name"},
        {T1 "rules: [{name: '${SECRET_NAME}', when: cpu > 1%}]\n", 3, 16,
         "rule name '${SECRET_NAME}' (expanded value not shown) is not a valid name"},
        {T1 "rules: [{name: r, when: '${SECRET_WHEN}'}]\n", 3, 26,
         "when: '${SECRET_WHEN}' (expanded value not shown) is not a valid expression"},
        {"version: 1\ntargets: [{name: a, match: {pid: 1}, logs: [{path: /x, error_pattern: "
         "'${SECRET_RE}'}]}]\nrules: []\n",
         2, 72, "error_pattern: '${SECRET_RE}' (expanded value not shown): bad regular expression"},
        {"version: 1\ntargets: [{name: '${SECRET_TARGET}', match: {pid: 1}, logs: [{format: "
         "plain}]}]\nrules: []\n",
         2, 62, "target '${SECRET_TARGET}' log: missing required key 'path'"},
        {"version: 1\ntargets: [{name: '${SECRET_TARGET}', match: {}}]\nrules: []\n", 2, 45,
         "target '${SECRET_TARGET}': match needs one of"},
        {"version: 1\ntargets: [{name: '${SECRET_TARGET}', match: {pid: 1}},\n"
         "          {name: '${SECRET_TARGET}', match: {pid: 2}}]\nrules: []\n",
         3, 11, "duplicate target name '${SECRET_TARGET}' (expanded value not shown)"},
        {T1 "rules: [{name: '${SECRET_RULE}'}]\n", 3, 9,
         "rule '${SECRET_RULE}' needs 'when' (a condition) or 'every'"},
        {T1 "rules: [{name: '${SECRET_RULE}', when: cpu > 1%},\n"
            "        {name: '${SECRET_RULE}', when: cpu > 2%}]\n",
         4, 9, "duplicate rule name '${SECRET_RULE}' (expanded value not shown)"},
        {"version: 1\ntargets: [{name: '${SECRET_TARGET}', match: {pid: 1}}]\n"
         "rules: [{name: r, when: cpu > 1%, targets: [api-s3cr3]}]\n",
         3, 45, "unknown target 'api-s3cr3' (did you mean '${SECRET_TARGET}'?)"},
        {T1 "rules: [{name: r, when: cpu > 1%, targets: ['${SECRET_RULE}']}]\n", 3, 45,
         "rule 'r': unknown target '${SECRET_RULE}' (expanded value not shown)"},
        {"version: 1\ntargets: [{name: '${SECRET_TARGET}', match: {pid: 1}}]\n"
         "rules: [{name: r, when: cpu > 1%, targets: ['${SECRET_TARGET}', '${SECRET_TARGET}']}]\n",
         3, 65, "target '${SECRET_TARGET}' (expanded value not shown) is listed twice"},
    };
    return cr_make_param_array(struct unshown_case, cases, sizeof cases / sizeof cases[0]);
}

/* The value of a variable may be a secret (a Slack webhook URL is one):
 * messages quote the file's text, which names the variable, at the place of
 * the mistake. */
ParameterizedTest(struct unshown_case *c, config, expanded_values_are_never_quoted)
{
    struct diag_list d;
    struct config *cfg = NULL;
    diag_init(&d);
    cr_assert_neq(config_parse("t.yaml", c->text, strlen(c->text), secret_env, NULL, &cfg, &d), 0,
                  "accepted: %s", c->text);
    assert_diag(&d, c->line, c->col, c->msg);
    for (size_t i = 0; i < d.n; i++)
        cr_assert_null(strstr(d.items[i].msg, SECRET), "an expanded value is quoted: %u:%u: %s",
                       d.items[i].line, d.items[i].col, d.items[i].msg);
    diag_fini(&d);
}

/* libyaml names a line after the last when the text ends without a line
 * break in the middle of a key; the diagnostic points at the end of the
 * text instead (found by fuzz_config, which checks every position). */
Test(config, error_at_the_end_of_a_text_without_a_final_break_points_inside_it)
{
    struct diag_list d = parse_bad("version: 1\ntargets:\n  - cess: api}\nrules: []\nhour");
    cr_assert_geq(d.n, 1);
    cr_expect_eq(d.items[0].line, 5, "line %u: %s", d.items[0].line, d.items[0].msg);
    cr_expect_eq(d.items[0].col, 5, "col %u: %s", d.items[0].col, d.items[0].msg);
    diag_fini(&d);
}

Test(config, symbol_cache_max_bytes_defaults_to_64mib_and_takes_units)
{
    struct config *c = parse_ok(HEAD);
    cr_assert_eq(c->symbol_cache_max_bytes, 64ULL << 20);
    config_free(c);
    c = parse_ok(HEAD "symbol_cache_max_bytes: 24MiB\n");
    cr_assert_eq(c->symbol_cache_max_bytes, 24ULL << 20);
    config_free(c);
    c = parse_ok(HEAD "symbol_cache_max_bytes: 1048576\n");
    cr_assert_eq(c->symbol_cache_max_bytes, 1ULL << 20);
    config_free(c);
}

Test(config, symbol_cache_max_bytes_out_of_range_or_not_a_size_is_refused)
{
    struct diag_list d = parse_bad(HEAD "symbol_cache_max_bytes: 512KiB\n");
    assert_diag(&d, 4, 25, "symbol_cache_max_bytes 512KiB is out of range (1MiB to 64GiB)");
    diag_fini(&d);
    d = parse_bad(HEAD "symbol_cache_max_bytes: 1.5GiB\n");
    assert_diag(&d, 4, 26, "symbol_cache_max_bytes: bad size '1.5GiB'");
    diag_fini(&d);
    d = parse_bad(HEAD "symbol_cache_max_bytes: [64MiB]\n");
    assert_diag(&d, 4, 25, "symbol_cache_max_bytes must be a size such as 1MiB, found a list");
    diag_fini(&d);
}
