/* sidecar/bundle.c - the alert bundle, schema stakeout.alert/v1; see bundle.h.
 *
 * Every string that comes from the target (command line, executable path,
 * thread names, log lines) is made valid UTF-8 first, since jansson refuses
 * anything else and a receiver would too; the command line and log lines
 * then go through the redactor. Numbers are rounded to what they mean
 * (bytes and counts whole, percents and rates to 0.01, shares to 0.0001)
 * and a value that was not measured (NaN) is null, never 0. */
#include "bundle.h"

#include "metric.h"
#include "profsum.h"
#include "units.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL

/* ---- JSON values ---------------------------------------------------------- */

/* Insert helpers: a NULL value (jansson's answer to bad input) becomes null
 * instead of a silently missing key. */
static void put(json_t *o, const char *key, json_t *v)
{
    json_object_set_new(o, key, v ? v : json_null());
}

static void push(json_t *a, json_t *v)
{
    json_array_append_new(a, v ? v : json_null());
}

static json_t *jround(double v, int decimals)
{
    if (!isfinite(v))
        return json_null();
    double f = pow(10.0, decimals);
    double r = round(v * f) / f;
    return json_real(r == 0.0 ? 0.0 : r); /* no -0 */
}

static json_t *jint(double v)
{
    return isfinite(v) ? json_integer((json_int_t)llround(v)) : json_null();
}

static json_t *juint(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* A value of metric m, rounded as its unit deserves. */
static json_t *jmetric(enum metric m, double v)
{
    switch (metric_unit(m)) {
    case METRIC_UNIT_BYTES:
    case METRIC_UNIT_BYTES_PER_MIN:
    case METRIC_UNIT_COUNT:
        return jint(v);
    case METRIC_UNIT_SECONDS:
        return jround(v, 1);
    case METRIC_UNIT_PERCENT:
    case METRIC_UNIT_PER_MIN:
        break;
    }
    return jround(v, 2);
}

/* Valid UTF-8 copy of s[0..len): NUL and every byte that does not start a
 * well-formed sequence (overlong forms and surrogates included) become
 * U+FFFD. */
static char *utf8_clean(const char *s, size_t len)
{
    static const char repl[] = "\xEF\xBF\xBD";
    char *out = xmalloc(3 * len + 1);
    size_t o = 0;

    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = 0;
        uint32_t cp = 0, min = 0;

        if (c >= 0x01 && c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        }
        bool ok = n > 0 && i + n < len;
        for (size_t k = 1; ok && k <= n; k++) {
            unsigned char d = (unsigned char)s[i + k];
            ok = (d & 0xC0) == 0x80;
            cp = cp << 6 | (d & 0x3F);
        }
        if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
            ok = false;
        if (ok) {
            memcpy(out + o, s + i, n + 1);
            o += n + 1;
            i += n + 1;
        } else {
            memcpy(out + o, repl, 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

static json_t *jtextn(const char *s, size_t len)
{
    char *clean = utf8_clean(s, len);
    json_t *v = json_string(clean);
    free(clean);
    return v;
}

/* Text, or null for NULL. */
static json_t *jtext(const char *s)
{
    return s ? jtextn(s, strlen(s)) : json_null();
}

/* Text, or null for NULL and "" (unknown). */
static json_t *jtext_or_null(const char *s)
{
    return s && *s ? jtext(s) : json_null();
}

/* Text from the target that may hold a secret. */
static json_t *jredacted(const struct redactor *r, const char *s, size_t len)
{
    char *clean = utf8_clean(s, len);
    char *safe = redact(r, clean);
    json_t *v = json_string(safe);
    free(safe);
    free(clean);
    return v ? v : json_string(REDACT_MARK);
}

static bool format_time(int64_t wall_ns, char *buf, size_t len)
{
    struct tm tm;
    time_t secs = (time_t)(wall_ns / NS_PER_S);

    if (wall_ns <= 0 || !gmtime_r(&secs, &tm))
        return false;
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ns % NS_PER_S / 1000000));
    return true;
}

/* RFC 3339 UTC with milliseconds, or null for an unknown (<= 0) time. */
static json_t *jtime(int64_t wall_ns)
{
    char buf[64];
    return format_time(wall_ns, buf, sizeof buf) ? json_string(buf) : json_null();
}

/* Wall time of a monotonic stamp, by the pair of clocks at creation. */
static json_t *jmono_time(const struct alert_input *in, int64_t mono_ns)
{
    if (in->created_mono_ns <= 0 || mono_ns <= 0)
        return json_null();
    return jtime(in->created_wall_ns - (in->created_mono_ns - mono_ns));
}

static json_t *labels_json(const struct label *l, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        put(o, l[i].key, jtext(l[i].value));
    return o;
}

/* ---- names ------------------------------------------------------------------ */

const char *alert_kind_name(enum alert_kind k)
{
    switch (k) {
    case ALERT_RULE:
        return "rule";
    case ALERT_BASELINE:
        return "baseline";
    case ALERT_RESTARTED:
        return "restarted";
    case ALERT_ON_DEMAND:
        return "on_demand";
    }
    return "?";
}

const char *alert_state_name(enum alert_state s)
{
    return s == ALERT_RESOLVED ? "resolved" : "firing";
}

static const char *profile_type_name(enum profile_type t)
{
    switch (t) {
    case PROFILE_TYPE_CPU:
        return "cpu";
    case PROFILE_TYPE_WALL:
        return "wall";
    case PROFILE_TYPE_MEMORY:
        return "memory";
    }
    return "?";
}

static const char *ref_name(enum expr_ref r)
{
    switch (r) {
    case EXPR_REF_ABS:
        return "absolute";
    case EXPR_REF_BASELINE:
        return "baseline";
    case EXPR_REF_SIGMA:
        return "sigma";
    }
    return "?";
}

const char *bundle_content_type(const char *name)
{
    static const struct {
        const char *suffix, *type;
    } types[] = {
        {".pb.gz", "application/vnd.google.protobuf+gzip"},
        {".folded", "text/plain; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".json", "application/json"},
        {".gz", "application/gzip"},
    };
    size_t len = strlen(name);

    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t sl = strlen(types[i].suffix);
        if (len > sl && strcmp(name + len - sl, types[i].suffix) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

/* ---- rule and event ------------------------------------------------------- */

static json_t *observed_json(const struct rule_spec *r, const struct observed *ob, unsigned i)
{
    const struct expr *cmp = r->when ? expr_cmp_at(r->when, i) : NULL;
    json_t *o = json_object();
    char value[48], threshold[48], text[160];

    put(o, "metric", json_string(metric_name(ob->metric)));
    put(o, "op", json_string(expr_op_name(ob->op)));
    put(o, "ref", json_string(ref_name(ob->ref)));
    put(o, "value", jmetric(ob->metric, ob->value));
    put(o, "threshold", jmetric(ob->metric, ob->threshold));
    put(o, "holds", json_boolean(ob->holds));
    put(o, "warming_up", json_boolean(ob->warming_up));
    if (cmp && r->when_src && cmp->off + cmp->len <= strlen(r->when_src))
        put(o, "condition", jtextn(r->when_src + cmp->off, cmp->len));
    else
        put(o, "condition", json_null());
    metric_format(ob->metric, ob->value, value, sizeof value);
    metric_format(ob->metric, ob->threshold, threshold, sizeof threshold);
    if (isnan(ob->value))
        snprintf(text, sizeof text, "%s: no data", metric_name(ob->metric));
    else if (isnan(ob->threshold))
        snprintf(text, sizeof text, "%s %s %s baseline (warming up)", metric_name(ob->metric),
                 value, expr_op_name(ob->op));
    else
        snprintf(text, sizeof text, "%s %s %s %s", metric_name(ob->metric), value,
                 expr_op_name(ob->op), threshold);
    put(o, "text", json_string(text));
    return o;
}

static json_t *rule_json(const struct alert_input *in)
{
    const struct rule_spec *r = in->rule;
    const struct event *ev = in->event;
    json_t *o = json_object();
    char buf[64];

    put(o, "name", jtext(r->name));
    put(o, "expression", jtext(r->when_src));
    put(o, "resolve_expression", jtext(r->resolve_src));
    if (r->every_ns > 0) {
        units_format_duration(r->every_ns, buf, sizeof buf);
        put(o, "every", json_string(buf));
    } else {
        put(o, "every", json_null());
    }
    if (!r->when) {
        put(o, "for", json_null());
    } else if (r->for_count) {
        snprintf(buf, sizeof buf, "%u of %u", r->for_n, r->for_m);
        put(o, "for", json_string(buf));
    } else {
        units_format_duration(r->for_ns, buf, sizeof buf);
        put(o, "for", json_string(buf));
    }
    put(o, "severity", json_string(severity_name(r->severity)));
    put(o, "labels", labels_json(r->labels, r->nlabels));
    put(o, "annotations", labels_json(r->annotations, r->nannotations));

    json_t *obs = json_array(), *cof = json_array();
    if (ev) {
        for (unsigned i = 0; i < ev->nobs && i < EXPR_MAX_CMP; i++)
            push(obs, observed_json(r, &ev->obs[i], i));
        for (size_t i = 0; i < ev->ncofiring && i < ENGINE_MAX_COFIRING; i++) {
            const struct cofiring *c = &ev->cofiring[i];
            const struct rule_spec *cr =
                in->cfg && c->rule < in->cfg->nrules ? &in->cfg->rules[c->rule] : NULL;
            json_t *x = json_object();
            put(x, "rule", cr ? jtext(cr->name) : json_null());
            put(x, "severity", cr ? json_string(severity_name(cr->severity)) : json_null());
            put(x, "incident", jtext_or_null(c->incident));
            push(cof, x);
        }
    }
    put(o, "active_since", ev ? jtime(ev->episode_start_wall_ns) : json_null());
    put(o, "true_for_s",
        ev && ev->true_for_ns > 0 ? jround((double)ev->true_for_ns / NS_PER_S, 3) : json_null());
    put(o, "observed", obs);
    put(o, "cofiring", cof);
    json_t *sup = json_object();
    put(sup, "cooldown", json_integer(ev ? ev->suppressed_cooldown : 0));
    put(sup, "budget", json_integer(ev ? ev->suppressed_budget : 0));
    put(o, "suppressed", sup);
    return o;
}

/* ---- target ------------------------------------------------------------------ */

static json_t *mem_events_json(const struct cg_mem_events *e)
{
    if (!e->have)
        return json_null();
    json_t *o = json_object();
    put(o, "high", juint(e->high));
    put(o, "max", juint(e->max));
    put(o, "oom", juint(e->oom));
    put(o, "oom_kill", juint(e->oom_kill));
    return o;
}

static json_t *restart_json(const struct alert_input *in, const struct coll_event *ce)
{
    const struct proc_meta *old = &ce->old_meta;
    const char *new_build = in->inst ? in->inst->meta.build_id : "";
    json_t *o = json_object();

    put(o, "old_pid", json_integer(ce->old_pid));
    put(o, "new_pid", ce->new_pid > 0 ? json_integer(ce->new_pid) : json_null());
    put(o, "reason", jtext(ce->reason));
    put(o, "died_at", jmono_time(in, ce->died_ns));
    put(o, "old_comm", jtext_or_null(old->comm));
    put(o, "old_exe", jtext_or_null(old->exe));
    put(o, "old_build_id", jtext_or_null(old->build_id));
    put(o, "old_start_time", jtime(old->start_wall_ns));
    put(o, "binary_changed",
        json_boolean(old->build_id[0] && new_build[0] && strcmp(old->build_id, new_build) != 0));
    put(o, "memory_events", mem_events_json(&ce->events));
    return o;
}

static json_t *target_json(const struct alert_input *in)
{
    const struct instance *inst = in->inst;
    const struct proc_meta *m = inst ? &inst->meta : NULL;
    json_t *o = json_object();

    put(o, "name", in->target ? jtext(in->target->name) : json_null());
    put(o, "pid", m ? json_integer(m->pid) : json_null());
    put(o, "ppid", m ? json_integer(m->ppid) : json_null());
    put(o, "comm", m ? jtext_or_null(m->comm) : json_null());
    if (m && m->cmdline)
        put(o, "cmdline", jredacted(in->redact, m->cmdline, strlen(m->cmdline)));
    else
        put(o, "cmdline", json_null());
    put(o, "exe", m ? jtext_or_null(m->exe) : json_null());
    put(o, "build_id", m ? jtext_or_null(m->build_id) : json_null());
    put(o, "start_time", m ? jtime(m->start_wall_ns) : json_null());
    if (m && m->start_wall_ns > 0 && in->created_wall_ns >= m->start_wall_ns)
        put(o, "uptime_s", jround((double)(in->created_wall_ns - m->start_wall_ns) / NS_PER_S, 3));
    else
        put(o, "uptime_s", json_null());
    put(o, "restarts", inst ? json_integer(inst->restarts) : json_null());
    put(o, "container_id", m ? jtext_or_null(m->container_id) : json_null());
    put(o, "cgroup", m ? jtext_or_null(m->cgroup) : json_null());
    put(o, "host", jtext_or_null(in->hostname));
    put(o, "labels",
        in->target ? labels_json(in->target->labels, in->target->nlabels) : json_object());
    put(o, "binary_changed", json_boolean(in->binary_changed));
    put(o, "restart", in->restart ? restart_json(in, in->restart) : json_null());
    return o;
}

/* ---- metrics ----------------------------------------------------------------- */

static json_t *samples_json(const struct alert_input *in, const struct sample *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        put(o, "t", jmono_time(in, s[i].t_ns));
        put(o, "cpu", jmetric(METRIC_CPU, s[i].v[METRIC_CPU]));
        put(o, "rss", jmetric(METRIC_RSS, s[i].v[METRIC_RSS]));
        put(o, "errors", jmetric(METRIC_ERRORS, s[i].v[METRIC_ERRORS]));
        put(o, "threads", jmetric(METRIC_THREADS, s[i].v[METRIC_THREADS]));
        put(o, "fds", jmetric(METRIC_FDS, s[i].v[METRIC_FDS]));
        put(o, "mem_limit", jmetric(METRIC_MEM_LIMIT, s[i].v[METRIC_MEM_LIMIT]));
        push(a, o);
    }
    return a;
}

static json_t *detail_json(const struct inst_detail *d)
{
    json_t *o = json_object();
    char state[2] = {d->state, '\0'};

    put(o, "rss_anon", juint(d->rss_anon));
    put(o, "rss_file", juint(d->rss_file));
    put(o, "rss_shmem", juint(d->rss_shmem));
    put(o, "swap", juint(d->swap));
    put(o, "vm_size", juint(d->vm_size));
    put(o, "voluntary_ctxt_per_s", jround(d->voluntary_ctxt_per_s, 2));
    put(o, "involuntary_ctxt_per_s", jround(d->involuntary_ctxt_per_s, 2));
    put(o, "minflt_per_s", jround(d->minflt_per_s, 2));
    put(o, "majflt_per_s", jround(d->majflt_per_s, 2));
    put(o, "state", d->state ? jtext(state) : json_null());
    put(o, "tracer_pid", json_integer(d->tracer_pid));
    if (d->have_cg_mem) {
        json_t *cg = json_object();
        put(cg, "usage", juint(d->cg_usage));
        put(cg, "limit", d->cg_limit == UINT64_MAX ? json_null() : juint(d->cg_limit));
        put(cg, "cpu_quota", d->cpu_quota > 0 ? jround(d->cpu_quota, 3) : json_null());
        put(cg, "memory_events", mem_events_json(&d->events));
        put(o, "cgroup", cg);
    } else {
        put(o, "cgroup", json_null());
    }
    return o;
}

static json_t *metrics_json(const struct alert_input *in)
{
    json_t *o = json_object();
    json_t *hot = json_array();

    put(o, "before", samples_json(in, in->before, in->before ? in->nbefore : 0));
    put(o, "during", samples_json(in, in->during, in->during ? in->nduring : 0));
    for (size_t i = 0; in->inst && i < in->inst->nhot && i < COLLECTOR_HOT_THREADS; i++) {
        const struct hot_thread *t = &in->inst->hot[i];
        json_t *x = json_object();
        put(x, "tid", json_integer(t->tid));
        put(x, "name", jtextn(t->name, strnlen(t->name, sizeof t->name)));
        put(x, "cpu", jround(t->cpu, 2));
        push(hot, x);
    }
    put(o, "hot_threads", hot);
    put(o, "detail", in->inst ? detail_json(&in->inst->detail) : json_null());
    return o;
}

/* ---- logs ---------------------------------------------------------------------- */

static json_t *line_json(const struct alert_input *in, const struct logscan_line *l)
{
    json_t *o = json_object();
    put(o, "time", jtime(l->wall_ns));
    put(o, "lineno", juint(l->lineno));
    put(o, "text", jredacted(in->redact, l->text ? l->text : "", l->text ? l->len : 0));
    put(o, "cut", json_boolean(l->cut));
    return o;
}

static json_t *logs_json(const struct alert_input *in)
{
    json_t *a = json_array();

    for (size_t i = 0; in->logs && i < in->nlogs; i++) {
        const struct alert_log *lg = &in->logs[i];
        json_t *o = json_object(), *matches = json_array();
        struct logscan_stats st = {0};
        size_t n = 0;

        if (lg->scan) {
            logscan_stats(lg->scan, &st);
            n = logscan_nmatches(lg->scan);
        }
        for (size_t k = n > BUNDLE_LOG_MATCHES ? n - BUNDLE_LOG_MATCHES : 0; k < n; k++) {
            const struct logscan_match *m = logscan_match_at(lg->scan, k);
            json_t *x = line_json(in, &m->line), *before = json_array(), *after = json_array();
            for (size_t b = 0; b < m->nbefore && b < LOGSCAN_CONTEXT; b++)
                push(before, line_json(in, &m->before[b]));
            for (size_t b = 0; b < m->nafter && b < LOGSCAN_CONTEXT; b++)
                push(after, line_json(in, &m->after[b]));
            put(x, "before", before);
            put(x, "after", after);
            push(matches, x);
        }
        put(o, "path", jtext(lg->path));
        put(o, "lines", juint(st.lines));
        put(o, "matched", juint(st.matched));
        put(o, "matches", matches);
        push(a, o);
    }
    return a;
}

/* ---- profile ------------------------------------------------------------------- */

/* Every function of p with its shares (sorted by self, then total), by
 * what profsum weighs it by: bytes for memory, samples otherwise. */
static size_t all_functions(const struct profile *p, struct prof_func_share **out)
{
    size_t cap = (size_t)p->nframes + 1; /* + the empty stack of failed unwinds */
    *out = xcalloc(cap, sizeof **out);
    return profile_in_bytes(p) ? profile_top_functions_by_value(p, *out, cap)
                               : profile_top_functions(p, *out, cap);
}

/* profsum's summary (top_self, top_total, threads; for memory the top
 * stacks and the mappings). */
static json_t *summary_json(const struct profile *p)
{
    return profsum_json(p, BUNDLE_TOP_FUNCTIONS);
}

static json_t *profile_json(const struct profile *p)
{
    json_t *o = json_object(), *notes = json_array();

    put(o, "type", json_string(profile_type_name(p->type)));
    put(o, "pid", json_integer(p->pid));
    put(o, "start", jtime(p->start_wall_ns));
    put(o, "duration_s", jround((double)p->duration_ns / NS_PER_S, 3));
    put(o, "samples", juint(profile_total_count(p)));
    put(o, "bytes", p->type == PROFILE_TYPE_MEMORY ? juint(profile_total_value(p)) : json_null());
    put(o, "rate_hz", json_integer(p->rate_hz));
    put(o, "rate_achieved_hz", jround(p->rate_achieved_hz, 2));
    put(o, "threads", json_integer(p->nthreads));
    put(o, "stopped_share",
        p->duration_ns > 0 ? jround((double)p->stopped_ns / (double)p->duration_ns, 4)
                           : json_null());
    put(o, "idle_samples", juint(p->idle_samples));
    put(o, "failed_unwinds", juint(p->failed_unwinds));
    put(o, "threads_skipped", json_integer(p->threads_skipped));
    put(o, "aborted", json_boolean(p->aborted));
    for (size_t i = 0; i < p->nnotes; i++)
        push(notes, jtext(p->notes[i]));
    put(o, "notes", notes);
    put(o, "summary", summary_json(p));
    return o;
}

/* ---- baseline diff ------------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct prof_func_share *)a)->function,
                  ((const struct prof_func_share *)b)->function);
}

struct growth {
    const char *function;
    double before, now, delta;
};

static int growth_cmp(const void *a, const void *b)
{
    const struct growth *x = a, *y = b;
    if (x->delta != y->delta)
        return x->delta < y->delta ? 1 : -1;
    return strcmp(x->function, y->function);
}

json_t *bundle_baseline_diff(const struct profile *now, const struct profile *baseline, size_t max)
{
    struct prof_func_share *cur = NULL, *base = NULL;
    size_t ncur = all_functions(now, &cur), nbase = all_functions(baseline, &base);
    struct growth *g = xcalloc(ncur ? ncur : 1, sizeof *g);
    size_t ng = 0;
    json_t *a = json_array();

    qsort(base, nbase, sizeof *base, name_cmp);
    for (size_t i = 0; i < ncur; i++) {
        struct prof_func_share key = {.function = cur[i].function};
        const struct prof_func_share *b = bsearch(&key, base, nbase, sizeof *base, name_cmp);
        double before = b ? b->self : 0.0;
        /* below a hundredth of a percent is noise, and would print as 0 */
        if (cur[i].self - before >= 0.00005)
            g[ng++] = (struct growth){cur[i].function, before, cur[i].self, cur[i].self - before};
    }
    qsort(g, ng, sizeof *g, growth_cmp);
    for (size_t i = 0; i < ng && i < max; i++) {
        json_t *o = json_object();
        put(o, "function", jtext(g[i].function));
        put(o, "baseline", jround(g[i].before, 4));
        put(o, "now", jround(g[i].now, 4));
        put(o, "delta", jround(g[i].delta, 4));
        push(a, o);
    }
    free(g);
    free(base);
    free(cur);
    return a;
}

static json_t *baseline_json(const struct alert_input *in)
{
    const struct profile *p = in->profile, *b = in->baseline;

    /* a CPU profile says nothing about a memory baseline, and back */
    if (!p || !b || (p->type == PROFILE_TYPE_MEMORY) != (b->type == PROFILE_TYPE_MEMORY))
        return json_null();
    json_t *o = json_object(), *info = json_object();
    put(info, "type", json_string(profile_type_name(b->type)));
    put(info, "start", jtime(b->start_wall_ns));
    put(info, "duration_s", jround((double)b->duration_ns / NS_PER_S, 3));
    put(info, "samples", juint(profile_total_count(b)));
    put(o, "baseline", info);
    put(o, "share", json_string("self"));
    put(o, "binary_changed", json_boolean(in->binary_changed));
    put(o, "functions", bundle_baseline_diff(p, b, BUNDLE_DIFF_FUNCTIONS));
    return o;
}

/* ---- the bundle ------------------------------------------------------------------ */

static const char *severity_of(const struct alert_input *in)
{
    if (in->rule)
        return severity_name(in->rule->severity);
    return in->kind == ALERT_RESTARTED ? "warning" : "info";
}

json_t *bundle_build(const struct alert_input *in)
{
    json_t *b = json_object(), *att = json_array();
    const char *incident = in->incident;

    if (!incident && in->event && in->event->incident[0])
        incident = in->event->incident;
    put(b, "schema", json_string(BUNDLE_SCHEMA));
    put(b, "id", jtext(in->id));
    put(b, "kind", json_string(alert_kind_name(in->kind)));
    put(b, "incident", jtext_or_null(incident));
    put(b, "created", jtime(in->created_wall_ns));
    put(b, "severity", json_string(severity_of(in)));
    put(b, "state", json_string(alert_state_name(in->state)));
    put(b, "rule", in->rule ? rule_json(in) : json_null());
    put(b, "target", target_json(in));
    put(b, "metrics", metrics_json(in));
    put(b, "logs", logs_json(in));
    put(b, "profile", in->profile ? profile_json(in->profile) : json_null());
    put(b, "capture_skipped", jtext_or_null(in->capture_skipped));
    put(b, "baseline_diff", baseline_json(in));
    for (size_t i = 0; in->attachments && i < in->nattachments; i++) {
        const struct alert_attachment *a = &in->attachments[i];
        json_t *o = json_object();
        put(o, "name", jtextn(a->name, strnlen(a->name, sizeof a->name)));
        put(o, "content_type",
            json_string(a->content_type ? a->content_type : bundle_content_type(a->name)));
        put(o, "size", juint(a->size));
        put(o, "sha256", jtextn(a->sha256, strnlen(a->sha256, sizeof a->sha256)));
        push(att, o);
    }
    put(b, "attachments", att);
    return b;
}

/* ---- ids ------------------------------------------------------------------------- */

static void random_bytes(unsigned char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1)
            break;
        got += (size_t)r;
    }
    if (got == n)
        return;
    /* no getrandom (old kernel, seccomp): the device */
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd != -1 && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (fd != -1)
        close(fd);
    if (got < n) {
        /* an id that may repeat would merge two alerts at the receiver */
        fprintf(stderr, "stakeout: no source of random numbers\n");
        abort();
    }
}

void bundle_new_id(char id[BUNDLE_ID_LEN])
{
    unsigned char u[16];

    random_bytes(u, sizeof u);
    u[6] = (unsigned char)((u[6] & 0x0F) | 0x40); /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    snprintf(id, BUNDLE_ID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}
