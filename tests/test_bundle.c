/* tests/test_bundle.c - the alert bundle (sidecar/bundle): a full bundle from
 * the hand-built inputs of alert_fixture, key by key; NaN as null; redaction
 * of the command line and log lines; the baseline diff; ids. */
#include "alert_fixture.h"

#include <criterion/criterion.h>
#include <math.h>
#include <regex.h>
#include <string.h>

static json_t *get(json_t *o, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
        if (json_is_array(o))
            o = json_array_get(o, strtoul(k, NULL, 10));
        else
            o = json_object_get(o, k);
    }
    cr_assert_not_null(o, "no %s in the bundle", path);
    return o;
}

static const char *str(json_t *o, const char *path)
{
    json_t *v = get(o, path);
    cr_assert(json_is_string(v), "%s is not a string", path);
    return json_string_value(v);
}

static double num(json_t *o, const char *path)
{
    json_t *v = get(o, path);
    cr_assert(json_is_number(v), "%s is not a number", path);
    return json_number_value(v);
}

static bool rfc3339(const char *s)
{
    regex_t re;
    int rc = regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                     REG_EXTENDED | REG_NOSUB);
    cr_assert_eq(rc, 0);
    rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    return rc == 0;
}

/* The bundle of the fixture, and its text as a receiver gets it. */
struct built {
    struct alert_fixture fx;
    json_t *b;
    char *text;
};

static void build(struct built *x)
{
    alert_fixture_init(&x->fx);
    x->b = bundle_build(&x->fx.in);
    cr_assert_not_null(x->b);
    x->text = json_dumps(x->b, BUNDLE_JSON_FLAGS);
    cr_assert_not_null(x->text, "the bundle must serialize (valid UTF-8 everywhere)");
}

static void unbuild(struct built *x)
{
    free(x->text);
    json_decref(x->b);
    alert_fixture_fini(&x->fx);
}

Test(bundle, full_bundle_has_every_top_level_key_receivers_rely_on)
{
    static const char *const keys[] = {
        "schema", "id",      "incident", "created", "severity",      "state",      "rule",
        "target", "metrics", "logs",     "profile", "baseline_diff", "attachments"};
    struct built x;
    build(&x);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert_not_null(json_object_get(x.b, keys[i]), "top-level key %s missing", keys[i]);
    cr_assert_str_eq(str(x.b, "schema"), "stakeout.alert/v1");
    cr_assert_str_eq(str(x.b, "id"), "0b9a3f2e-5c1d-4e8f-9a7b-6c5d4e3f2a1b");
    cr_assert_str_eq(str(x.b, "incident"), FIXTURE_INCIDENT, "the event's key when none given");
    cr_assert_str_eq(str(x.b, "created"), FIXTURE_CREATED_TEXT);
    cr_assert_str_eq(str(x.b, "severity"), "critical");
    cr_assert_str_eq(str(x.b, "state"), "firing");
    cr_assert_str_eq(str(x.b, "kind"), "rule");
    cr_assert(json_is_object(get(x.b, "profile.summary")), "profile with its summary");
    unbuild(&x);
}

Test(bundle, rule_holds_definition_observed_values_cofiring_and_suppressed)
{
    struct built x;
    build(&x);
    cr_assert_str_eq(str(x.b, "rule.name"), "cpu-hot");
    cr_assert_str_eq(str(x.b, "rule.expression"), "cpu > 80% or rss > 1GiB");
    cr_assert_str_eq(str(x.b, "rule.for"), "30s");
    cr_assert_str_eq(str(x.b, "rule.labels.team"), "payments");
    cr_assert_str_eq(str(x.b, "rule.annotations.runbook_url"), "https://runbooks.example.com/cpu");
    cr_assert_str_eq(str(x.b, "rule.active_since"), "2026-11-24T16:11:33.250Z");
    cr_assert_float_eq(num(x.b, "rule.true_for_s"), 30.0, 1e-9);

    cr_assert_eq(json_array_size(get(x.b, "rule.observed")), 2);
    cr_assert_str_eq(str(x.b, "rule.observed.0.metric"), "cpu");
    cr_assert_str_eq(str(x.b, "rule.observed.0.op"), ">");
    cr_assert_float_eq(num(x.b, "rule.observed.0.value"), 93.14, 1e-9);
    cr_assert_float_eq(num(x.b, "rule.observed.0.threshold"), 80.0, 1e-9);
    cr_assert(json_is_true(get(x.b, "rule.observed.0.holds")));
    cr_assert_str_eq(str(x.b, "rule.observed.0.condition"), "cpu > 80%");
    cr_assert_str_eq(str(x.b, "rule.observed.0.text"), "cpu 93.1% > 80%");
    cr_assert(json_is_null(get(x.b, "rule.observed.1.value")), "NaN (not measured) is null");
    cr_assert_eq(num(x.b, "rule.observed.1.threshold"), 1073741824.0, "bytes are whole");
    cr_assert(json_is_false(get(x.b, "rule.observed.1.holds")));
    cr_assert_str_eq(str(x.b, "rule.observed.1.condition"), "rss > 1GiB");

    cr_assert_eq(json_array_size(get(x.b, "rule.cofiring")), 1);
    cr_assert_str_eq(str(x.b, "rule.cofiring.0.rule"), "rss-high");
    cr_assert_str_eq(str(x.b, "rule.cofiring.0.severity"), "warning");
    cr_assert_str_eq(str(x.b, "rule.cofiring.0.incident"), FIXTURE_COFIRING_INCIDENT);
    cr_assert_eq(json_integer_value(get(x.b, "rule.suppressed.cooldown")), 2);
    cr_assert_eq(json_integer_value(get(x.b, "rule.suppressed.budget")), 1);
    unbuild(&x);
}

Test(bundle, target_has_metadata_labels_and_a_redacted_command_line)
{
    struct built x;
    build(&x);
    cr_assert_str_eq(str(x.b, "target.name"), "api");
    cr_assert_eq(json_integer_value(get(x.b, "target.pid")), 4242);
    cr_assert_str_eq(str(x.b, "target.comm"), "api");
    cr_assert_str_eq(str(x.b, "target.exe"), "/usr/bin/api");
    cr_assert_str_eq(str(x.b, "target.build_id"), "abcdef0123456789abcdef0123456789");
    cr_assert_str_eq(str(x.b, "target.start_time"), "2026-11-24T15:12:03.000Z");
    cr_assert_float_eq(num(x.b, "target.uptime_s"), 3600.25, 1e-9);
    cr_assert_eq(json_integer_value(get(x.b, "target.restarts")), 1);
    cr_assert_str_eq(str(x.b, "target.container_id"), "c0ffee");
    cr_assert_str_eq(str(x.b, "target.host"), "node-7");
    cr_assert_str_eq(str(x.b, "target.labels.service"), "api");
    cr_assert_str_eq(str(x.b, "target.labels.version"), "2.4.1", "${APP_VERSION} expanded");
    cr_assert(json_is_true(get(x.b, "target.binary_changed")));
    cr_assert(json_is_null(get(x.b, "target.restart")));
    cr_assert_str_eq(str(x.b, "target.cmdline"),
                     "/usr/bin/api --password [REDACTED] --db postgres://app:[REDACTED]@db:5432/api"
                     " --tenant [REDACTED]",
                     "defaults and the file's own pattern (corp-[0-9]+) both apply");
    unbuild(&x);
}

Test(bundle, metric_history_has_wall_times_and_null_for_not_measured)
{
    struct built x;
    build(&x);
    json_t *before = get(x.b, "metrics.before");
    cr_assert_eq(json_array_size(before), 3);
    cr_assert_str_eq(str(x.b, "metrics.before.0.t"), "2026-11-24T16:12:00.250Z");
    cr_assert_str_eq(str(x.b, "metrics.before.2.t"), "2026-11-24T16:12:02.250Z");
    cr_assert_float_eq(num(x.b, "metrics.before.0.cpu"), 85.0, 1e-9);
    cr_assert(json_is_null(get(x.b, "metrics.before.1.cpu")), "NaN is null, not 0");
    cr_assert_eq(json_integer_value(get(x.b, "metrics.before.0.rss")), 268435456);
    cr_assert(json_is_null(get(x.b, "metrics.before.0.errors")));
    cr_assert_float_eq(num(x.b, "metrics.before.2.errors"), 2.5, 1e-9);
    cr_assert_eq(json_integer_value(get(x.b, "metrics.before.0.threads")), 12);
    cr_assert_eq(json_integer_value(get(x.b, "metrics.before.0.fds")), 40);
    cr_assert(json_is_null(get(x.b, "metrics.before.0.mem_limit")));
    cr_assert_eq(json_array_size(get(x.b, "metrics.during")), 2);
    cr_assert_str_eq(str(x.b, "metrics.during.1.t"), "2026-11-24T16:12:03.000Z");
    cr_assert_str_eq(str(x.b, "metrics.hot_threads.0.name"), "worker-1");
    cr_assert_float_eq(num(x.b, "metrics.hot_threads.0.cpu"), 87.5, 1e-9);
    cr_assert(json_is_null(get(x.b, "metrics.detail.cgroup.limit")), "no limit is null");
    unbuild(&x);
}

Test(bundle, log_matches_carry_context_timestamps_and_redaction)
{
    struct built x;
    build(&x);
    cr_assert_str_eq(str(x.b, "logs.0.path"), "/var/log/api.log");
    cr_assert_eq(json_integer_value(get(x.b, "logs.0.matched")), 2);
    json_t *m = get(x.b, "logs.0.matches");
    cr_assert_eq(json_array_size(m), 2);
    cr_assert_str_eq(str(x.b, "logs.0.matches.0.text"),
                     "ERROR auth failed token=[REDACTED] user=bob");
    cr_assert_eq(json_integer_value(get(x.b, "logs.0.matches.0.lineno")), 4);
    cr_assert_str_eq(str(x.b, "logs.0.matches.0.time"), "2026-11-24T16:11:53.250Z");
    cr_assert_eq(json_array_size(get(x.b, "logs.0.matches.0.before")), 3);
    cr_assert_str_eq(str(x.b, "logs.0.matches.0.before.0.text"), "boot");
    cr_assert_str_eq(str(x.b, "logs.0.matches.0.after.2.text"), "steady");
    /* the invalid byte became U+FFFD: the bundle stays valid JSON */
    cr_assert_str_eq(str(x.b, "logs.0.matches.1.text"), "ERROR bad byte \xEF\xBF\xBD here");
    cr_assert_str_eq(str(x.b, "logs.0.matches.1.after.0.text"), "done");
    unbuild(&x);
}

Test(bundle, no_secret_reaches_the_serialized_bundle)
{
    static const char *const secrets[] = {FIXTURE_SECRET_CMDLINE, FIXTURE_SECRET_URL,
                                          FIXTURE_SECRET_LOG, "corp-991"};
    struct built x;
    build(&x);
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        cr_assert_null(strstr(x.text, secrets[i]), "'%s' leaked into the bundle", secrets[i]);
    unbuild(&x);
}

Test(bundle, profile_has_its_shape_and_summary)
{
    struct built x;
    build(&x);
    cr_assert_str_eq(str(x.b, "profile.type"), "cpu");
    cr_assert_str_eq(str(x.b, "profile.start"), "2026-11-24T16:11:57.250Z");
    cr_assert_float_eq(num(x.b, "profile.duration_s"), 5.0, 1e-9);
    cr_assert_eq(json_integer_value(get(x.b, "profile.samples")), 100);
    cr_assert_eq(json_integer_value(get(x.b, "profile.rate_hz")), 100);
    cr_assert_float_eq(num(x.b, "profile.rate_achieved_hz"), 98.5, 1e-9);
    cr_assert_float_eq(num(x.b, "profile.stopped_share"), 0.005, 1e-9);
    cr_assert_str_eq(str(x.b, "profile.notes.0"), "rate lowered to 99 Hz");
    cr_assert_str_eq(str(x.b, "profile.summary.top_self.0.name"), "beta");
    cr_assert_float_eq(num(x.b, "profile.summary.top_self.0.self_percent"), 60.0, 1e-9);
    cr_assert_str_eq(str(x.b, "profile.summary.top_self.1.name"), "gamma");
    cr_assert_str_eq(str(x.b, "profile.summary.top_total.0.name"), "main");
    cr_assert(json_is_null(get(x.b, "capture_skipped")));
    unbuild(&x);
}

Test(bundle, baseline_diff_lists_growth_largest_first)
{
    struct built x;
    build(&x);
    json_t *f = get(x.b, "baseline_diff.functions");
    cr_assert_str_eq(str(x.b, "baseline_diff.share"), "self");
    cr_assert_str_eq(str(x.b, "baseline_diff.baseline.start"), "2026-11-24T15:12:03.250Z");
    cr_assert(json_is_true(get(x.b, "baseline_diff.binary_changed")));
    cr_assert_eq(json_array_size(f), 2, "alpha shrank: only growth is listed");
    cr_assert_str_eq(str(f, "0.function"), "gamma");
    cr_assert_float_eq(num(f, "0.baseline"), 0.0, 1e-9, "new since the baseline");
    cr_assert_float_eq(num(f, "0.now"), 0.3, 1e-9);
    cr_assert_float_eq(num(f, "0.delta"), 0.3, 1e-9);
    cr_assert_str_eq(str(f, "1.function"), "beta");
    cr_assert_float_eq(num(f, "1.baseline"), 0.5, 1e-9);
    cr_assert_float_eq(num(f, "1.delta"), 0.1, 1e-9);
    unbuild(&x);
}

Test(bundle, baseline_diff_respects_max_and_breaks_ties_by_name)
{
    static const char *const now_leaf[] = {"d", "c", "b", "a"};
    static const unsigned now_count[] = {25, 25, 25, 25};
    static const char *const base_leaf[] = {"z"};
    static const unsigned base_count[] = {10};
    struct profile *now = alert_fixture_profile(now_leaf, now_count, 4);
    struct profile *base = alert_fixture_profile(base_leaf, base_count, 1);
    json_t *d = bundle_baseline_diff(now, base, 3);

    cr_assert_eq(json_array_size(d), 3);
    cr_assert_str_eq(str(d, "0.function"), "a");
    cr_assert_str_eq(str(d, "1.function"), "b");
    cr_assert_str_eq(str(d, "2.function"), "c");
    json_decref(d);
    d = bundle_baseline_diff(base, base, 10);
    cr_assert_eq(json_array_size(d), 0, "nothing grew");
    json_decref(d);
    profile_free(now);
    profile_free(base);
}

Test(bundle, attachments_list_name_type_size_and_hash)
{
    struct built x;
    build(&x);
    cr_assert_eq(json_array_size(get(x.b, "attachments")), 3);
    cr_assert_str_eq(str(x.b, "attachments.0.name"), "profile.pb.gz");
    cr_assert_str_eq(str(x.b, "attachments.0.content_type"),
                     "application/vnd.google.protobuf+gzip");
    cr_assert_eq(json_integer_value(get(x.b, "attachments.0.size")), 100);
    cr_assert_eq(strlen(str(x.b, "attachments.0.sha256")), 64);
    cr_assert_str_eq(str(x.b, "attachments.1.content_type"), "text/plain; charset=utf-8");
    cr_assert_str_eq(str(x.b, "attachments.2.content_type"), "image/svg+xml");
    unbuild(&x);
}

Test(bundle, every_time_is_rfc3339_utc)
{
    static const char *const paths[] = {"created",
                                        "rule.active_since",
                                        "target.start_time",
                                        "metrics.before.0.t",
                                        "metrics.during.0.t",
                                        "logs.0.matches.0.time",
                                        "profile.start",
                                        "baseline_diff.baseline.start"};
    struct built x;
    build(&x);
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        cr_assert(rfc3339(str(x.b, paths[i])), "%s = %s", paths[i], str(x.b, paths[i]));
    unbuild(&x);
}

Test(bundle, restart_alert_has_no_rule_and_says_what_ended)
{
    struct built x;
    struct coll_event ce;

    alert_fixture_init(&x.fx);
    memset(&ce, 0, sizeof ce);
    ce.kind = COLL_RESTARTED;
    ce.old_pid = 4100;
    ce.new_pid = 4242;
    ce.reason = "oom-killed";
    ce.died_ns = FIXTURE_MONO - 2 * 1000000000LL;
    snprintf(ce.old_meta.build_id, sizeof ce.old_meta.build_id, "0000");
    ce.events.have = true;
    ce.events.oom_kill = 1;
    x.fx.in.kind = ALERT_RESTARTED;
    x.fx.in.rule = NULL;
    x.fx.in.event = NULL;
    x.fx.in.incident = "restart/api";
    x.fx.in.profile = NULL;
    x.fx.in.capture_skipped = "target exited";
    x.fx.in.restart = &ce;
    x.b = bundle_build(&x.fx.in);
    x.text = NULL;
    cr_assert(json_is_null(get(x.b, "rule")));
    cr_assert(json_is_null(get(x.b, "profile")));
    cr_assert(json_is_null(get(x.b, "baseline_diff")), "no profile, nothing to compare");
    cr_assert_str_eq(str(x.b, "kind"), "restarted");
    cr_assert_str_eq(str(x.b, "severity"), "warning");
    cr_assert_str_eq(str(x.b, "incident"), "restart/api");
    cr_assert_str_eq(str(x.b, "capture_skipped"), "target exited");
    cr_assert_str_eq(str(x.b, "target.restart.reason"), "oom-killed");
    cr_assert_eq(json_integer_value(get(x.b, "target.restart.old_pid")), 4100);
    cr_assert_str_eq(str(x.b, "target.restart.died_at"), "2026-11-24T16:12:01.250Z");
    cr_assert(json_is_true(get(x.b, "target.restart.binary_changed")));
    cr_assert_eq(json_integer_value(get(x.b, "target.restart.memory_events.oom_kill")), 1);
    unbuild(&x);
}

Test(bundle, resolved_state_and_missing_inputs_are_null_not_absent)
{
    struct alert_input in;
    memset(&in, 0, sizeof in);
    in.kind = ALERT_ON_DEMAND;
    in.state = ALERT_RESOLVED;
    snprintf(in.id, sizeof in.id, "x");
    json_t *b = bundle_build(&in);
    cr_assert_str_eq(str(b, "state"), "resolved");
    cr_assert_str_eq(str(b, "severity"), "info");
    cr_assert(json_is_null(get(b, "created")), "an unknown time is null");
    cr_assert(json_is_null(get(b, "incident")));
    cr_assert(json_is_null(get(b, "target.pid")));
    cr_assert_eq(json_array_size(get(b, "logs")), 0);
    cr_assert_eq(json_array_size(get(b, "attachments")), 0);
    json_decref(b);
}

Test(bundle, new_ids_are_distinct_version_4_uuids)
{
    char a[BUNDLE_ID_LEN], b[BUNDLE_ID_LEN];
    regex_t re;

    bundle_new_id(a);
    bundle_new_id(b);
    cr_assert_eq(regcomp(&re,
                         "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
    cr_assert_eq(regexec(&re, a, 0, NULL, 0), 0, "%s", a);
    cr_assert_eq(regexec(&re, b, 0, NULL, 0), 0, "%s", b);
    regfree(&re);
    cr_assert_str_neq(a, b);
}

Test(bundle, content_types_follow_file_names)
{
    cr_assert_str_eq(bundle_content_type("cpu.pb.gz"), "application/vnd.google.protobuf+gzip");
    cr_assert_str_eq(bundle_content_type("flame.svg"), "image/svg+xml");
    cr_assert_str_eq(bundle_content_type("x.folded"), "text/plain; charset=utf-8");
    cr_assert_str_eq(bundle_content_type("core"), "application/octet-stream");
}

/* Every key of want appears in have and back, recursively (first items of
 * arrays); values of other types (null for an object) are not compared, nor
 * the free-form keys of labels and annotations. */
static void same_keys(json_t *have, json_t *want, const char *where)
{
    char sub[512];
    const char *last = strrchr(where, '.');

    if (last && (strcmp(last, ".labels") == 0 || strcmp(last, ".annotations") == 0))
        return;
    if (json_is_object(have) && json_is_object(want)) {
        const char *k;
        json_t *v;
        json_object_foreach (want, k, v) {
            snprintf(sub, sizeof sub, "%s.%s", where, k);
            cr_assert_not_null(json_object_get(have, k), "%s is not in the README example", sub);
            same_keys(json_object_get(have, k), v, sub);
        }
        json_object_foreach (have, k, v) {
            snprintf(sub, sizeof sub, "%s.%s", where, k);
            cr_assert_not_null(json_object_get(want, k),
                               "the README example has %s; the bundle "
                               "has no such key",
                               sub);
        }
    } else if (json_is_array(have) && json_is_array(want) && json_array_size(have) &&
               json_array_size(want)) {
        snprintf(sub, sizeof sub, "%s[0]", where);
        same_keys(json_array_get(have, 0), json_array_get(want, 0), sub);
    }
}

Test(bundle, readme_example_has_the_keys_bundle_build_writes)
{
    const char *src = getenv("STAKEOUT_SOURCE_DIR");
    char path[4096];
    json_error_t e;
    struct built x;

    cr_assert_not_null(src, "STAKEOUT_SOURCE_DIR is not set (run the tests through ctest)");
    snprintf(path, sizeof path, "%s/README.md", src);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *start = strstr(text, "<!-- bundle example");
    cr_assert_not_null(start, "README has no bundle example marker");
    start = strstr(start, "```json\n");
    cr_assert_not_null(start);
    start += strlen("```json\n");
    char *end = strstr(start, "\n```");
    cr_assert_not_null(end);
    json_t *example = json_loadb(start, (size_t)(end - start), 0, &e);
    cr_assert_not_null(example, "README example is not JSON: %s at line %d", e.text, e.line);

    build(&x);
    same_keys(example, x.b, "bundle");
    json_decref(example);
    unbuild(&x);
}

Test(bundle, memory_profile_summary_lists_top_stacks_by_bytes)
{
    struct built x;
    struct profile *mem = profile_new(PROFILE_TYPE_MEMORY, 1);
    uint64_t parse[] = {0x3000, 0x2000, 0x1000}, load[] = {0x3100, 0x2100, 0x1000};

    for (int i = 0; i < 3; i++)
        profile_add_sample(mem, parse, 3, 1, i + 1, 1000);
    profile_add_sample(mem, load, 3, 1, 10, 5000);
    for (uint32_t f = 0; f < mem->nframes; f++) {
        uint64_t a = mem->frames[f].addr;
        profile_name_frame(mem, f + 1,
                           a == 0x1000   ? "main"
                           : a == 0x2000 ? "parse"
                           : a == 0x2100 ? "load"
                                         : "xmalloc",
                           NULL, 0);
    }
    alert_fixture_init(&x.fx);
    x.fx.in.profile = mem;
    x.b = bundle_build(&x.fx.in);
    x.text = NULL;
    cr_assert_str_eq(str(x.b, "profile.type"), "memory");
    cr_assert_eq(json_integer_value(get(x.b, "profile.bytes")), 8000);
    cr_assert_eq(json_integer_value(get(x.b, "profile.summary.top_stacks.0.bytes")), 5000);
    cr_assert_float_eq(num(x.b, "profile.summary.top_stacks.0.share"), 0.625, 1e-9);
    cr_assert_str_eq(str(x.b, "profile.summary.top_stacks.0.frames.0"), "xmalloc", "leaf first");
    cr_assert_str_eq(str(x.b, "profile.summary.top_stacks.0.frames.1"), "load");
    cr_assert_eq(json_integer_value(get(x.b, "profile.summary.top_stacks.1.samples")), 3);
    cr_assert(json_is_null(get(x.b, "baseline_diff")), "a CPU baseline says nothing of memory");
    unbuild(&x);
    profile_free(mem);
}
