/* sidecar/config.c - rules file schema v1: YAML tree -> typed structs, with
 * every mistake reported at its line and column. See config.h.
 *
 * The walk never stops at the first error: each section is checked on its own
 * and a bad value leaves its default in place, so one run shows all problems.
 *
 * Diagnostics quote what the file says, never what ${VAR} expansion made of
 * it: a variable may hold a secret (a Slack webhook URL holds a token, and
 * anything else may too), and diagnostics end up in terminals, CI logs and
 * the daemon's log. The file's text names the variable, which is what the
 * user needs to find the mistake. So a message quotes n->str, the scalar as
 * written, followed by unshown(n, value); names in "target 'x'" and
 * "rule 'x'" are the names as written too. */
#include "config.h"

#include "editdist.h"
#include "engine.h"
#include "privs.h"
#include "units.h"
#include "xalloc.h"
#include "yamldoc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct walk {
    struct diag_list *diags;
    envsubst_lookup_fn lookup;
    void *lookup_ctx;
    struct config *cfg;
    const struct ynode *targets; /* the targets list, once it is known to be one */
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void err_at(struct walk *w, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_at(struct walk *w, const struct ynode *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_add(w->diags, n ? n->line : 0, n ? n->col : 0, "%s", msg);
}

/* "" when value is the text of scalar n as written; else a note, for after
 * the quoted text, that ${VAR} in it were expanded and the result is not
 * shown (see the top of this file). */
static const char *unshown(const struct ynode *n, const char *value)
{
    if (strlen(value) == n->len && memcmp(value, n->str, n->len) == 0)
        return "";
    return " (expanded value not shown)";
}

/* The name of target i as written (the caller knows it has a name). */
static const char *target_name_src(const struct walk *w, size_t i)
{
    const struct ynode *name = ynode_map_get(w->targets->kids[i], "name");
    return name ? name->str : "?";
}

/* ---- shapes ------------------------------------------------------------ */

/* Report keys of map that are not in allowed[], with a suggestion. */
static void check_keys(struct walk *w, const struct ynode *map, const char *where,
                       const char *const *allowed, size_t nallowed)
{
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        const struct ynode *k = map->kids[i];
        bool known = false;
        if (k->type != YNODE_SCALAR)
            continue; /* reported by yamldoc */
        for (size_t j = 0; j < nallowed && !known; j++)
            known = strcmp(k->str, allowed[j]) == 0;
        if (known)
            continue;
        const char *s = editdist_suggest(k->str, k->len, allowed, nallowed);
        if (s)
            err_at(w, k, "unknown key '%s' in %s (did you mean '%s'?)", k->str, where, s);
        else
            err_at(w, k, "unknown key '%s' in %s", k->str, where);
    }
}

static bool want_map(struct walk *w, const struct ynode *n, const char *what)
{
    if (n->type == YNODE_MAP)
        return true;
    err_at(w, n, "%s must be a mapping, found %s", what, ynode_kind(n));
    return false;
}

static bool want_seq(struct walk *w, const struct ynode *n, const char *what)
{
    if (n->type == YNODE_SEQ)
        return true;
    err_at(w, n, "%s must be a list, found %s", what, ynode_kind(n));
    return false;
}

static bool want_scalar(struct walk *w, const struct ynode *n, const char *what,
                        const char *expected)
{
    if (n->type == YNODE_SCALAR && !ynode_is_null(n))
        return true;
    err_at(w, n, "%s must be %s, found %s", what, expected, ynode_kind(n));
    return false;
}

static const struct ynode *require(struct walk *w, const struct ynode *map, const char *key,
                                   const char *where)
{
    const struct ynode *v = ynode_map_get(map, key);
    if (!v)
        err_at(w, map, "%s: missing required key '%s'", where, key);
    return v;
}

/* ---- scalars ----------------------------------------------------------- */

/* A string value with ${VAR} expanded. *out is set only on success. */
static bool get_string(struct walk *w, const struct ynode *n, const char *what, char **out)
{
    char msg[256];
    size_t off = 0;
    char *s = NULL;

    if (!want_scalar(w, n, what, "a string"))
        return false;
    if (memchr(n->str, '\0', n->len)) {
        err_at(w, n, "%s contains a NUL character", what);
        return false;
    }
    if (envsubst(n->str, n->len, w->lookup, w->lookup_ctx, &s, &off, msg, sizeof msg) != 0) {
        unsigned line, col;
        ynode_scalar_pos(n, off, &line, &col);
        diag_add(w->diags, line, col, "%s: %s", what, msg);
        return false;
    }
    free(*out);
    *out = s;
    return true;
}

static bool get_duration(struct walk *w, const struct ynode *n, const char *what, int64_t min_ns,
                         int64_t max_ns, int64_t *out)
{
    char msg[160], a[32], b[32];
    size_t off = 0;
    int64_t ns;

    if (!want_scalar(w, n, what, "a duration such as 30s"))
        return false;
    if (units_parse_duration(n->str, n->len, &ns, &off, msg, sizeof msg) != 0) {
        unsigned line, col;
        ynode_scalar_pos(n, off, &line, &col);
        diag_add(w->diags, line, col, "%s: bad duration '%s': %s", what, n->str, msg);
        return false;
    }
    if (ns < min_ns || ns > max_ns) {
        units_format_duration(min_ns, a, sizeof a);
        units_format_duration(max_ns, b, sizeof b);
        err_at(w, n, "%s %s is out of range (%s to %s)", what, n->str, a, b);
        return false;
    }
    *out = ns;
    return true;
}

static bool get_uint(struct walk *w, const struct ynode *n, const char *what, unsigned min,
                     unsigned max, unsigned *out)
{
    unsigned long long v = 0;

    if (!want_scalar(w, n, what, "a whole number"))
        return false;
    for (size_t i = 0; i < n->len || i == 0; i++) {
        if (i >= n->len || n->str[i] < '0' || n->str[i] > '9' || v > 100000000000ULL) {
            err_at(w, n, "%s must be a whole number, found '%s'", what, n->str);
            return false;
        }
        v = v * 10 + (unsigned)(n->str[i] - '0');
    }
    if (v < min || v > max) {
        err_at(w, n, "%s %s is out of range (%u to %u)", what, n->str, min, max);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

/* A size: a whole number of bytes, or one with a unit ("1MiB", "500KB"). */
static bool get_size(struct walk *w, const struct ynode *n, const char *what, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    unsigned long long v = 0;
    size_t i = 0;
    char a[32], b[32];

    if (!want_scalar(w, n, what, "a size such as 1MiB"))
        return false;
    while (i < n->len && n->str[i] >= '0' && n->str[i] <= '9') {
        if (v > 1000000000000000ULL) {
            err_at(w, n, "%s %s is out of range", what, n->str);
            return false;
        }
        v = v * 10 + (unsigned)(n->str[i] - '0');
        i++;
    }
    if (i == 0) {
        err_at(w, n, "%s must be a size such as 1MiB or 1048576, found '%s'", what, n->str);
        return false;
    }
    double factor = i < n->len ? units_size_factor(n->str + i, n->len - i) : 1.0;
    if (factor == 0.0) {
        unsigned line, col;
        ynode_scalar_pos(n, i, &line, &col);
        diag_add(w->diags, line, col,
                 "%s: bad size '%s': a whole number with B, KiB, MiB, GiB, TiB, KB, MB, GB or "
                 "TB right after it, such as 1MiB",
                 what, n->str);
        return false;
    }
    double bytes = (double)v * factor;
    if (bytes < (double)min || bytes > (double)max) {
        units_format_size((double)min, a, sizeof a);
        units_format_size((double)max, b, sizeof b);
        err_at(w, n, "%s %s is out of range (%s to %s)", what, n->str, a, b);
        return false;
    }
    *out = (uint64_t)bytes;
    return true;
}

/* true or false, unquoted (as YAML 1.2 and the schema type them). */
static bool get_bool(struct walk *w, const struct ynode *n, const char *what, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};

    if (!want_scalar(w, n, what, "true or false"))
        return false;
    for (size_t i = 0; i < ARRAY_LEN(yes) && n->style == YSTYLE_PLAIN; i++) {
        if (strcmp(n->str, yes[i]) == 0 || strcmp(n->str, no[i]) == 0) {
            *out = strcmp(n->str, yes[i]) == 0;
            return true;
        }
    }
    if (n->style != YSTYLE_PLAIN)
        err_at(w, n, "%s must be true or false without quotes, found '%s'", what, n->str);
    else
        err_at(w, n, "%s must be true or false, found '%s'", what, n->str);
    return false;
}

static bool get_enum(struct walk *w, const struct ynode *n, const char *what,
                     const char *const *names, size_t count, int *out)
{
    char list[160] = "";

    if (!want_scalar(w, n, what, "a name"))
        return false;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(n->str, names[i]) == 0) {
            *out = (int)i;
            return true;
        }
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
    }
    const char *s = editdist_suggest(n->str, n->len, names, count);
    if (s)
        err_at(w, n, "%s: unknown value '%s' (did you mean '%s'?)", what, n->str, s);
    else
        err_at(w, n, "%s: unknown value '%s'; expected one of %s", what, n->str, list);
    return false;
}

/* Compile a PCRE2 pattern; errors carry PCRE2's message and offset. */
static bool get_regex(struct walk *w, const struct ynode *n, const char *what, char **src,
                      pcre2_code **out)
{
    char *pattern = NULL;
    int code;
    PCRE2_SIZE off;

    if (!get_string(w, n, what, &pattern))
        return false;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code,
                                   &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        unsigned line, col;
        pcre2_get_error_message(code, msg, sizeof msg);
        /* the offset maps to the file only when no ${VAR} changed the text */
        if (!*unshown(n, pattern)) {
            ynode_scalar_pos(n, off, &line, &col);
            diag_add(w->diags, line, col, "%s: bad regular expression at offset %zu: %s", what,
                     (size_t)off, (const char *)msg);
        } else {
            ynode_scalar_pos(n, 0, &line, &col);
            diag_add(w->diags, line, col,
                     "%s: '%s'%s: bad regular expression at offset %zu of the expanded text: %s",
                     what, n->str, unshown(n, pattern), (size_t)off, (const char *)msg);
        }
        free(pattern);
        return false;
    }
    free(*src);
    *src = pattern;
    pcre2_code_free(*out);
    *out = re;
    return true;
}

static bool get_expr(struct walk *w, const struct ynode *n, const char *what, char **src,
                     struct expr **out)
{
    char *text = NULL;
    struct expr_error err;
    struct expr *e = NULL;

    if (!get_string(w, n, what, &text))
        return false;
    if (expr_parse(text, strlen(text), &e, &err) != 0) {
        unsigned line, col;
        if (!*unshown(n, text)) {
            ynode_scalar_pos(n, err.off, &line, &col);
            diag_add(w->diags, line, col, "%s: %s", what, err.msg);
        } else {
            /* err.msg quotes the expanded text: say only where it went wrong */
            ynode_scalar_pos(n, 0, &line, &col);
            diag_add(w->diags, line, col,
                     "%s: '%s'%s is not a valid expression: the error is at offset %zu of the "
                     "expanded text",
                     what, n->str, unshown(n, text), err.off);
        }
        free(text);
        return false;
    }
    free(*src);
    *src = text;
    expr_free(*out);
    *out = e;
    return true;
}

/* Names of targets and rules: used in logs, metrics labels and file names. */
static bool check_name(struct walk *w, const struct ynode *n, const char *s, const char *what)
{
    size_t len = strlen(s);
    bool ok = len > 0 && len <= 64;

    for (size_t i = 0; ok && i < len; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             (i > 0 && (c == '-' || c == '_' || c == '.'));
    }
    if (!ok)
        err_at(w, n,
               "%s '%s'%s is not a valid name (1 to 64 letters, digits, '-', '_' or '.', "
               "starting with a letter or digit)",
               what, n->str, unshown(n, s));
    return ok;
}

/* Label and annotation keys follow Prometheus / Alertmanager label names. */
static bool label_key_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static void get_labels(struct walk *w, const struct ynode *n, const char *what,
                       struct label **out, size_t *nout)
{
    if (!want_map(w, n, what))
        return;
    size_t count = ynode_map_size(n);
    struct label *l = xcalloc(count ? count : 1, sizeof *l);
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        const struct ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        char *value = NULL;
        if (k->type != YNODE_SCALAR)
            continue;
        if (!label_key_ok(k->str)) {
            err_at(w, k, "%s: '%s' is not a valid key (letters, digits and '_', not starting "
                         "with a digit)",
                   what, k->str);
            continue;
        }
        char vwhat[128];
        snprintf(vwhat, sizeof vwhat, "%s.%s", what, k->str);
        if (!get_string(w, v, vwhat, &value))
            continue;
        l[used].key = xstrdup(k->str);
        l[used].value = value;
        used++;
    }
    label_free_array(*out, *nout);
    *out = l;
    *nout = used;
}

/* ---- targets ----------------------------------------------------------- */

static const char *const top_keys[] = {"version",         "poll_interval", "history",
                                       "targets",         "rules",         "alert",
                                       "listen",          "capture_token", "dac_read_search",
                                       "symbol_cache_max_bytes"};
static const char *const target_keys[] = {"name", "match", "labels", "logs"};
static const char *const match_keys[] = {"pid", "pid_file", "process", "cgroup"};
static const char *const log_keys[] = {"path", "root", "format", "error_pattern"};
static const char *const log_roots[] = {"target", "host"};
static const char *const log_formats[] = {"plain", "cri"};
static const char *const log_placeholders[] = {LOG_PLACEHOLDER_CONTAINER_ID,
                                               LOG_PLACEHOLDER_POD_UID};
static const char *const rule_keys[] = {
    "name",     "when",     "every",  "for",    "resolve_when", "resolve_after",   "cooldown",
    "window",   "baseline_window",    "severity", "capture",    "labels",          "annotations",
    "targets"};
static const char *const capture_keys[] = {"profile", "duration", "rate"};
static const char *const profiles[] = {"cpu", "memory"};
static const char *const severities[] = {"info", "warning", "critical"};
static const char *const alert_keys[] = {"webhook",         "webhooks",
                                         "spool_dir",       "spool_max_bytes",
                                         "max_captures_per_hour",
                                         "redact"};
static const char *const webhook_keys[] = {"url",     "format",           "secret",
                                           "timeout", "connect_timeout",  "max_age",
                                           "tls",     "max_inline_bytes"};
static const char *const tls_keys[] = {"insecure_skip_verify", "ca_file"};
static const char *const webhook_formats[] = {"json", "slack", "alertmanager", "multipart"};

/* In a log path, ${container_id} and ${pod_uid} are kept for logwatch to
 * fill in: they name the target's, not environment variables. */
struct path_lookup {
    envsubst_lookup_fn fn;
    void *ctx;
};

static const char *log_path_lookup(const char *name, void *ctx)
{
    const struct path_lookup *env = ctx;
    if (strcmp(name, "container_id") == 0)
        return LOG_PLACEHOLDER_CONTAINER_ID;
    if (strcmp(name, "pod_uid") == 0)
        return LOG_PLACEHOLDER_POD_UID;
    return env->fn(name, env->ctx);
}

/* The log's path, and what can be told wrong with it from the file. */
static void parse_log_path(struct walk *w, const struct ynode *v, struct log_spec *log)
{
    struct path_lookup env = {w->lookup, w->lookup_ctx};
    bool ok;

    w->lookup = log_path_lookup;
    w->lookup_ctx = &env;
    ok = get_string(w, v, "log path", &log->path);
    w->lookup = env.fn;
    w->lookup_ctx = env.ctx;
    if (!ok)
        return;
    const char *p = log->path;
    if (p[0] == '\0') {
        err_at(w, v, "log path is empty");
    } else if (strncmp(p, "/proc/", 6) == 0 || strcmp(p, "/proc") == 0) {
        /* /proc/PID/root/... is walked unconfined: the target's symlinks
         * would lead out of its root */
        err_at(w, v,
               "log path '%s'%s is under /proc: give the path as the target sees it (root: "
               "target, the default), which stakeout opens confined to the target's root",
               v->str, unshown(v, p));
    } else if (log->root == LOG_ROOT_HOST && p[0] != '/') {
        err_at(w, v, "log path '%s'%s must be absolute with root: host", v->str, unshown(v, p));
    } else if (log->root == LOG_ROOT_TARGET) {
        for (size_t i = 0; i < ARRAY_LEN(log_placeholders); i++) {
            if (!strstr(p, log_placeholders[i]))
                continue;
            /* where the file says it; 0 when a variable's value held it */
            const char *at = strstr(v->str, log_placeholders[i]);
            unsigned line, col;
            ynode_scalar_pos(v, at ? (size_t)(at - v->str) : 0, &line, &col);
            diag_add(w->diags, line, col,
                     "log path: %s is known only for a log on the host side: add root: host",
                     log_placeholders[i]);
            break;
        }
    }
}

static void parse_log(struct walk *w, const struct ynode *n, const char *tname,
                      struct log_spec *log)
{
    char where[128];
    const struct ynode *v;

    snprintf(where, sizeof where, "target '%s' log", tname);
    log->format = LOG_FORMAT_PLAIN;
    log->root = LOG_ROOT_TARGET;
    if (!want_map(w, n, where))
        return;
    check_keys(w, n, where, log_keys, ARRAY_LEN(log_keys));
    v = ynode_map_get(n, "root");
    if (v) {
        int r;
        if (get_enum(w, v, "log root", log_roots, ARRAY_LEN(log_roots), &r))
            log->root = (enum log_root)r;
    }
    v = require(w, n, "path", where);
    if (v)
        parse_log_path(w, v, log);
    v = ynode_map_get(n, "format");
    if (v) {
        int f;
        if (get_enum(w, v, "log format", log_formats, ARRAY_LEN(log_formats), &f))
            log->format = (enum log_format)f;
    }
    v = ynode_map_get(n, "error_pattern");
    if (v) {
        get_regex(w, v, "error_pattern", &log->error_pattern, &log->error_re);
    } else {
        struct ynode def = {.type = YNODE_SCALAR,
                            .str = (char *)CONFIG_DEFAULT_ERROR_PATTERN,
                            .len = strlen(CONFIG_DEFAULT_ERROR_PATTERN),
                            .line = n->line,
                            .col = n->col,
                            .end_line = n->line};
        get_regex(w, &def, "error_pattern", &log->error_pattern, &log->error_re);
    }
}

static void parse_match(struct walk *w, const struct ynode *n, const char *tname,
                        struct target_spec *t)
{
    const struct ynode *first = NULL;
    const char *first_key = NULL;

    if (!want_map(w, n, "match"))
        return;
    check_keys(w, n, "match", match_keys, ARRAY_LEN(match_keys));
    for (size_t i = 0; i + 1 < n->nkids; i += 2) {
        const struct ynode *k = n->kids[i], *v = n->kids[i + 1];
        int kind = -1;
        for (size_t j = 0; j < ARRAY_LEN(match_keys); j++) {
            if (k->type == YNODE_SCALAR && strcmp(k->str, match_keys[j]) == 0)
                kind = (int)j;
        }
        if (kind < 0)
            continue;
        if (first) {
            err_at(w, k, "match takes exactly one of pid, pid_file, process, cgroup; found "
                         "both '%s' and '%s'",
                   first_key, k->str);
            continue;
        }
        first = k;
        first_key = k->str;
        t->match = (enum match_kind)kind;
        switch (t->match) {
        case MATCH_PID: {
            unsigned pid;
            if (get_uint(w, v, "match.pid", 1, 4194304, &pid))
                t->pid = (int)pid;
            break;
        }
        case MATCH_PID_FILE:
        case MATCH_CGROUP:
            if (get_string(w, v, k->str, &t->match_arg) && t->match_arg[0] == '\0')
                err_at(w, v, "match.%s is empty", k->str);
            break;
        case MATCH_PROCESS:
            get_regex(w, v, "match.process", &t->match_arg, &t->process_re);
            break;
        }
    }
    if (!first)
        err_at(w, n, "target '%s': match needs one of pid, pid_file, process, cgroup", tname);
}

static void parse_target(struct walk *w, const struct ynode *n, struct target_spec *t)
{
    const struct ynode *v;

    t->line = n->line;
    t->col = n->col;
    if (!want_map(w, n, "a target"))
        return;
    v = require(w, n, "name", "target");
    if (v && get_string(w, v, "target name", &t->name))
        check_name(w, v, t->name, "target name");
    const char *tname = t->name ? v->str : "?"; /* as written */
    char where[128];
    snprintf(where, sizeof where, "target '%s'", tname);
    check_keys(w, n, where, target_keys, ARRAY_LEN(target_keys));
    v = require(w, n, "match", where);
    if (v)
        parse_match(w, v, tname, t);
    v = ynode_map_get(n, "labels");
    if (v)
        get_labels(w, v, "labels", &t->labels, &t->nlabels);
    v = ynode_map_get(n, "logs");
    if (v && want_seq(w, v, "logs")) {
        t->logs = xcalloc(v->nkids ? v->nkids : 1, sizeof *t->logs);
        t->nlogs = v->nkids;
        for (size_t i = 0; i < v->nkids; i++)
            parse_log(w, v->kids[i], tname, &t->logs[i]);
    }
}

/* ---- rules ------------------------------------------------------------- */

/* `for`: a duration, or "N of M". */
static void parse_for(struct walk *w, const struct ynode *n, struct rule_spec *r)
{
    unsigned a, b;
    int used = 0;

    if (!want_scalar(w, n, "for", "a duration such as 30s, or 'N of M'"))
        return;
    /* strictly "N of M": digits, one space, "of", one space, digits */
    if (sscanf(n->str, "%u of %u%n", &a, &b, &used) == 2 && (size_t)used == n->len &&
        n->str[0] >= '0' && n->str[0] <= '9' && strstr(n->str, " of ") &&
        n->str[strcspn(n->str, " ") + 4] >= '0' && n->str[strcspn(n->str, " ") + 4] <= '9') {
        if (a < 1 || b < 1 || b > 1000) {
            err_at(w, n, "for: in 'N of M', M must be 1 to 1000 and N at least 1");
        } else if (a > b) {
            err_at(w, n, "for: %u of %u can never hold (N must not exceed M)", a, b);
        } else {
            r->for_count = true;
            r->for_n = a;
            r->for_m = b;
        }
        return;
    }
    if (strstr(n->str, "of")) {
        err_at(w, n, "for: expected 'N of M' with whole numbers, such as '3 of 5'");
        return;
    }
    get_duration(w, n, "for", 0, 86400LL * UNITS_NS_PER_S, &r->for_ns);
}

/* `window`: its bounds come from other settings, so the message names them. */
static void parse_window(struct walk *w, const struct ynode *n, struct rule_spec *r)
{
    const struct config *c = w->cfg;
    char limit[32];
    int64_t ns;

    if (!get_duration(w, n, "window", 0, INT64_MAX, &ns))
        return;
    if (ns < 2 * c->poll_interval_ns) {
        units_format_duration(2 * c->poll_interval_ns, limit, sizeof limit);
        err_at(w, n, "window %s is shorter than two polls (%s)", n->str, limit);
    } else if (ns > c->history_ns) {
        units_format_duration(c->history_ns, limit, sizeof limit);
        err_at(w, n, "window %s is longer than history %s, the samples kept per target", n->str,
               limit);
    } else {
        r->window_ns = ns;
    }
}

static void parse_capture(struct walk *w, const struct ynode *n, struct capture_spec *c)
{
    const struct ynode *v;
    int p;

    if (!want_map(w, n, "capture"))
        return;
    check_keys(w, n, "capture", capture_keys, ARRAY_LEN(capture_keys));
    v = require(w, n, "profile", "capture");
    if (v && get_enum(w, v, "capture.profile", profiles, ARRAY_LEN(profiles), &p))
        c->profile = p == 0 ? PROFILE_CPU : PROFILE_MEMORY;
    v = ynode_map_get(n, "duration");
    if (v)
        get_duration(w, v, "capture.duration", 100 * UNITS_NS_PER_MS, 600 * UNITS_NS_PER_S,
                     &c->duration_ns);
    v = ynode_map_get(n, "rate");
    if (v)
        get_uint(w, v, "capture.rate", 1, RULE_MAX_RATE_HZ, &c->rate_hz);
}

static void parse_rule(struct walk *w, const struct ynode *n, struct rule_spec *r)
{
    const struct ynode *v, *when, *every;
    int e;

    r->line = n->line;
    r->col = n->col;
    r->resolve_after_ns = -1;
    r->cooldown_ns = CONFIG_DEFAULT_COOLDOWN_NS;
    r->window_ns = RULE_DEFAULT_WINDOW_NS;
    r->baseline_window_ns = RULE_DEFAULT_BASELINE_WINDOW_NS;
    r->severity = SEVERITY_WARNING;
    r->capture = (struct capture_spec){PROFILE_NONE, RULE_DEFAULT_CAPTURE_NS, RULE_DEFAULT_RATE_HZ};
    if (!want_map(w, n, "a rule"))
        return;
    v = require(w, n, "name", "rule");
    if (v && get_string(w, v, "rule name", &r->name))
        check_name(w, v, r->name, "rule name");
    char where[128];
    snprintf(where, sizeof where, "rule '%s'", r->name ? v->str : "?"); /* as written */
    check_keys(w, n, where, rule_keys, ARRAY_LEN(rule_keys));

    when = ynode_map_get(n, "when");
    every = ynode_map_get(n, "every");
    if (when)
        get_expr(w, when, "when", &r->when_src, &r->when);
    if (every)
        get_duration(w, every, "every", 10 * UNITS_NS_PER_S, 7 * 86400LL * UNITS_NS_PER_S,
                     &r->every_ns);
    if (!when && !every)
        err_at(w, n, "%s needs 'when' (a condition) or 'every' (a schedule)", where);
    if (when && every)
        err_at(w, every, "%s has both 'when' and 'every'; a scheduled rule has no condition",
               where);

    v = ynode_map_get(n, "for");
    if (v) {
        if (every && !when)
            err_at(w, v, "'for' applies to rules with 'when', not to scheduled rules");
        else
            parse_for(w, v, r);
    }
    v = ynode_map_get(n, "resolve_when");
    if (v) {
        if (!when)
            err_at(w, v, "'resolve_when' needs a 'when' condition");
        else
            get_expr(w, v, "resolve_when", &r->resolve_src, &r->resolve_when);
    }
    v = ynode_map_get(n, "resolve_after");
    if (v)
        get_duration(w, v, "resolve_after", 0, 86400LL * UNITS_NS_PER_S, &r->resolve_after_ns);
    v = ynode_map_get(n, "cooldown");
    if (v)
        get_duration(w, v, "cooldown", 0, 7 * 86400LL * UNITS_NS_PER_S, &r->cooldown_ns);
    v = ynode_map_get(n, "window");
    if (v)
        parse_window(w, v, r);
    v = ynode_map_get(n, "baseline_window");
    if (v && get_duration(w, v, "baseline_window", 60 * UNITS_NS_PER_S,
                          7 * 86400LL * UNITS_NS_PER_S, &r->baseline_window_ns) &&
        r->baseline_window_ns < ENGINE_WARMUP_MIN_SAMPLES * w->cfg->poll_interval_ns) {
        /* a baseline needs that many samples before it is trusted */
        char need[32];
        units_format_duration(ENGINE_WARMUP_MIN_SAMPLES * w->cfg->poll_interval_ns, need,
                              sizeof need);
        err_at(w, v, "baseline_window %s holds fewer than %d polls; make it at least %s", v->str,
               ENGINE_WARMUP_MIN_SAMPLES, need);
    }
    v = ynode_map_get(n, "severity");
    if (v && get_enum(w, v, "severity", severities, ARRAY_LEN(severities), &e))
        r->severity = (enum severity)e;
    v = ynode_map_get(n, "capture");
    if (v)
        parse_capture(w, v, &r->capture);
    else if (every)
        err_at(w, n, "%s is scheduled ('every') but has no 'capture' to take", where);
    if (every && r->every_ns > 0 && r->capture.duration_ns >= r->every_ns)
        err_at(w, every, "every %s is not longer than the capture it takes", every->str);
    v = ynode_map_get(n, "labels");
    if (v)
        get_labels(w, v, "labels", &r->labels, &r->nlabels);
    v = ynode_map_get(n, "annotations");
    if (v)
        get_labels(w, v, "annotations", &r->annotations, &r->nannotations);
    v = ynode_map_get(n, "targets");
    if (v && want_seq(w, v, "targets")) {
        if (v->nkids == 0)
            err_at(w, v, "%s: targets is empty; leave it out to apply the rule to every target",
                   where);
        r->targets = xcalloc(v->nkids ? v->nkids : 1, sizeof *r->targets);
        for (size_t i = 0; i < v->nkids; i++) {
            char *name = NULL;
            if (!get_string(w, v->kids[i], "targets item", &name))
                continue;
            bool dup = false;
            for (size_t j = 0; j < r->ntargets && !dup; j++)
                dup = strcmp(r->targets[j], name) == 0;
            if (dup) {
                err_at(w, v->kids[i], "%s: target '%s'%s is listed twice", where, v->kids[i]->str,
                       unshown(v->kids[i], name));
                free(name);
                continue;
            }
            if (!config_target(w->cfg, name)) {
                const char *names[64];
                size_t idx[64], nn = 0, k = 0;
                for (size_t j = 0; j < w->cfg->ntargets && nn < ARRAY_LEN(names); j++) {
                    if (w->cfg->targets[j].name) {
                        idx[nn] = j;
                        names[nn++] = w->cfg->targets[j].name;
                    }
                }
                const char *s = editdist_suggest(name, strlen(name), names, nn);
                while (s && names[k] != s)
                    k++;
                if (s)
                    err_at(w, v->kids[i], "%s: unknown target '%s'%s (did you mean '%s'?)", where,
                           v->kids[i]->str, unshown(v->kids[i], name), target_name_src(w, idx[k]));
                else
                    err_at(w, v->kids[i], "%s: unknown target '%s'%s", where, v->kids[i]->str,
                           unshown(v->kids[i], name));
                free(name);
                continue;
            }
            r->targets[r->ntargets++] = name;
        }
    }
}

/* ---- alert ------------------------------------------------------------- */

/* Standard Webhooks secrets are "whsec_" and base64; a typo there would
 * sign with a key no receiver has. The secret itself is never printed. */
static bool whsec_ok(const char *secret)
{
    const char *b = secret + strlen("whsec_");
    size_t len = strlen(b), pad = 0;

    if (len == 0 || len % 4 != 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = b[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (c == '=' && i >= len - 2)
            pad++;
        else if (pad || !(alnum || c == '+' || c == '/'))
            return false;
    }
    return true;
}

static void parse_tls(struct walk *w, const struct ynode *n, struct webhook_tls *t)
{
    const struct ynode *v, *skip;

    if (!want_map(w, n, "webhook tls"))
        return;
    check_keys(w, n, "webhook tls", tls_keys, ARRAY_LEN(tls_keys));
    skip = ynode_map_get(n, "insecure_skip_verify");
    if (skip)
        get_bool(w, skip, "tls.insecure_skip_verify", &t->insecure_skip_verify);
    v = ynode_map_get(n, "ca_file");
    if (v && get_string(w, v, "tls.ca_file", &t->ca_file)) {
        if (t->ca_file[0] == '\0')
            err_at(w, v, "tls.ca_file is empty");
        else if (t->insecure_skip_verify)
            err_at(w, v, "tls.ca_file has no effect with insecure_skip_verify: true; keep one "
                         "of them");
    }
}

static void parse_webhook(struct walk *w, const struct ynode *n, const char *what,
                          struct webhook_spec *h)
{
    const struct ynode *v, *timeout, *connect;
    int f;

    h->format = WEBHOOK_JSON;
    h->timeout_ns = CONFIG_DEFAULT_WEBHOOK_TIMEOUT_NS;
    h->connect_timeout_ns = CONFIG_DEFAULT_CONNECT_TIMEOUT_NS;
    h->max_age_ns = CONFIG_DEFAULT_MAX_AGE_NS;
    h->max_inline_bytes = CONFIG_DEFAULT_MAX_INLINE_BYTES;
    h->line = n->line;
    h->col = n->col;
    if (!want_map(w, n, what))
        return;
    check_keys(w, n, "webhook", webhook_keys, ARRAY_LEN(webhook_keys));
    v = require(w, n, "url", "webhook");
    if (v && get_string(w, v, "webhook url", &h->url)) {
        CURLU *u = curl_url();
        CURLUcode rc = curl_url_set(u, CURLUPART_URL, h->url, 0);
        char *scheme = NULL;
        bool http = false;
        if (rc == CURLUE_OK && curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK)
            http = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;
        /* no scheme, or one libcurl does not know (mailto:), is the same mistake as ftp:// */
        if (rc != CURLUE_OK && rc != CURLUE_UNSUPPORTED_SCHEME && rc != CURLUE_BAD_SCHEME)
            err_at(w, v, "webhook url '%s'%s is not a valid URL: %s", v->str, unshown(v, h->url),
                   curl_url_strerror(rc));
        else if (!http)
            err_at(w, v, "webhook url must start with http:// or https://");
        curl_free(scheme);
        curl_url_cleanup(u);
    }
    v = ynode_map_get(n, "format");
    if (v && get_enum(w, v, "webhook format", webhook_formats, ARRAY_LEN(webhook_formats), &f))
        h->format = (enum webhook_format)f;
    v = ynode_map_get(n, "secret");
    if (v && get_string(w, v, "webhook secret", &h->secret)) {
        if (h->secret[0] == '\0') {
            free(h->secret); /* "${SECRET:-}" left empty: deliveries go unsigned */
            h->secret = NULL;
        } else if (strncmp(h->secret, "whsec_", 6) == 0 && !whsec_ok(h->secret)) {
            err_at(w, v, "webhook secret starts with 'whsec_' but the rest is not base64 "
                         "(a Standard Webhooks secret is whsec_ and the base64 of the key)");
        }
    }
    timeout = ynode_map_get(n, "timeout");
    if (timeout)
        get_duration(w, timeout, "webhook timeout", 100 * UNITS_NS_PER_MS, 300 * UNITS_NS_PER_S,
                     &h->timeout_ns);
    connect = ynode_map_get(n, "connect_timeout");
    if (connect) {
        if (get_duration(w, connect, "webhook connect_timeout", 100 * UNITS_NS_PER_MS,
                         300 * UNITS_NS_PER_S, &h->connect_timeout_ns) &&
            h->connect_timeout_ns > h->timeout_ns) {
            char t[32];
            units_format_duration(h->timeout_ns, t, sizeof t);
            err_at(w, connect, "webhook connect_timeout %s is longer than the hook's timeout %s, "
                               "which includes connecting",
                   connect->str, t);
        }
    } else if (h->connect_timeout_ns > h->timeout_ns) {
        h->connect_timeout_ns = h->timeout_ns;
    }
    v = ynode_map_get(n, "max_age");
    if (v)
        get_duration(w, v, "webhook max_age", 60 * UNITS_NS_PER_S, 7 * 86400LL * UNITS_NS_PER_S,
                     &h->max_age_ns);
    v = ynode_map_get(n, "max_inline_bytes");
    if (v)
        get_size(w, v, "webhook max_inline_bytes", 0, 64ULL * 1024 * 1024,
                 &h->max_inline_bytes);
    v = ynode_map_get(n, "tls");
    if (v)
        parse_tls(w, v, &h->tls);
}

static void parse_alert(struct walk *w, const struct ynode *n, struct alert_spec *a)
{
    const struct ynode *v, *one, *many;

    if (!want_map(w, n, "alert"))
        return;
    check_keys(w, n, "alert", alert_keys, ARRAY_LEN(alert_keys));
    one = ynode_map_get(n, "webhook");
    many = ynode_map_get(n, "webhooks");
    if (one && many) {
        err_at(w, many, "alert has both 'webhook' and 'webhooks'; list every hook under "
                        "'webhooks'");
    } else if (one) {
        a->webhooks = xcalloc(1, sizeof *a->webhooks);
        a->nwebhooks = 1;
        parse_webhook(w, one, "alert.webhook", &a->webhooks[0]);
    } else if (many && want_seq(w, many, "alert.webhooks")) {
        if (many->nkids == 0)
            err_at(w, many, "alert.webhooks is empty; leave it out to keep bundles in spool_dir");
        else if (many->nkids > CONFIG_MAX_WEBHOOKS)
            err_at(w, many, "alert.webhooks has %zu hooks; at most %d", many->nkids,
                   CONFIG_MAX_WEBHOOKS);
        a->webhooks = xcalloc(many->nkids ? many->nkids : 1, sizeof *a->webhooks);
        a->nwebhooks = many->nkids;
        for (size_t i = 0; i < many->nkids; i++) {
            struct webhook_spec *h = &a->webhooks[i];
            parse_webhook(w, many->kids[i], "alert.webhooks item", h);
            /* the same endpoint twice gets every alert twice; the url is not
             * printed, it may hold a token (Slack) */
            for (size_t j = 0; j < i && h->url; j++) {
                if (a->webhooks[j].url && strcmp(a->webhooks[j].url, h->url) == 0 &&
                    a->webhooks[j].format == h->format)
                    err_at(w, many->kids[i], "alert.webhooks: hook %zu has the same url and "
                                             "format as hook %zu (line %u)",
                           i + 1, j + 1, a->webhooks[j].line);
            }
        }
    }
    v = ynode_map_get(n, "spool_dir");
    if (v && get_string(w, v, "spool_dir", &a->spool_dir) && a->spool_dir[0] == '\0')
        err_at(w, v, "spool_dir is empty");
    v = ynode_map_get(n, "spool_max_bytes");
    if (v)
        get_size(w, v, "spool_max_bytes", 1024 * 1024, 1024ULL * 1024 * 1024 * 1024,
                 &a->spool_max_bytes);
    v = ynode_map_get(n, "max_captures_per_hour");
    if (v)
        get_uint(w, v, "max_captures_per_hour", 0, 3600, &a->max_captures_per_hour);
    v = ynode_map_get(n, "redact");
    if (v && want_seq(w, v, "alert.redact")) {
        a->redact = xcalloc(v->nkids ? v->nkids : 1, sizeof *a->redact);
        for (size_t i = 0; i < v->nkids; i++) {
            char *src = NULL;
            pcre2_code *re = NULL;
            if (get_regex(w, v->kids[i], "alert.redact pattern", &src, &re))
                a->redact[a->nredact++] = src;
            pcre2_code_free(re);
        }
    }
}

/* ---- top level --------------------------------------------------------- */

/* `listen: HOST:PORT` for the HTTP endpoint: an IPv4 address (or localhost)
 * and a port. */
static void check_listen(struct walk *w, const struct ynode *n, const char *s)
{
    const char *colon = strrchr(s, ':');
    unsigned a, b, c4, d, port;
    char tail;
    bool host_ok = false;
    if (colon) {
        size_t hl = (size_t)(colon - s);
        host_ok = (hl == 9 && strncmp(s, "localhost", 9) == 0) ||
                  (sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c4, &d, &tail) == 5 && tail == ':' &&
                   a < 256 && b < 256 && c4 < 256 && d < 256);
    }
    if (!colon || !host_ok) {
        err_at(w, n, "listen '%s'%s must be IPV4:PORT, such as 127.0.0.1:9464 or 0.0.0.0:9464",
               n->str, unshown(n, s));
        return;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || p < 0 || p > 65535) {
        err_at(w, n, "listen '%s'%s: the port must be 0 to 65535", n->str, unshown(n, s));
        return;
    }
    port = (unsigned)p;
    (void)port;
}

static void parse_top(struct walk *w, const struct ynode *root)
{
    struct config *c = w->cfg;
    const struct ynode *v;
    unsigned version;

    check_keys(w, root, "the rules file", top_keys, ARRAY_LEN(top_keys));
    v = require(w, root, "version", "rules file");
    if (v && get_uint(w, v, "version", 0, 1000000, &version) && version != 1)
        err_at(w, v, "unsupported version %u; this stakeout reads version 1", version);
    v = ynode_map_get(root, "poll_interval");
    if (v)
        get_duration(w, v, "poll_interval", CONFIG_MIN_POLL_NS, 3600 * UNITS_NS_PER_S,
                     &c->poll_interval_ns);
    v = ynode_map_get(root, "history");
    if (v && get_duration(w, v, "history", 0, 7 * 86400LL * UNITS_NS_PER_S, &c->history_ns)) {
        int64_t samples = c->history_ns / c->poll_interval_ns;
        if (samples < 2)
            err_at(w, v, "history %s holds fewer than 2 polls", v->str);
        else if (samples > CONFIG_MAX_HISTORY_SAMPLES)
            err_at(w, v,
                   "history %s at this poll_interval is %lld samples per target; at most %d",
                   v->str, (long long)samples, CONFIG_MAX_HISTORY_SAMPLES);
    }

    v = require(w, root, "targets", "rules file");
    if (v && want_seq(w, v, "targets")) {
        w->targets = v;
        if (v->nkids == 0)
            err_at(w, v, "targets is empty: name at least one process to watch");
        c->targets = xcalloc(v->nkids ? v->nkids : 1, sizeof *c->targets);
        c->ntargets = v->nkids;
        for (size_t i = 0; i < v->nkids; i++) {
            parse_target(w, v->kids[i], &c->targets[i]);
            const struct ynode *name = ynode_map_get(v->kids[i], "name");
            for (size_t j = 0; j < i && c->targets[i].name; j++) {
                if (c->targets[j].name && strcmp(c->targets[j].name, c->targets[i].name) == 0)
                    err_at(w, v->kids[i], "duplicate target name '%s'%s (first at line %u)",
                           name->str, unshown(name, c->targets[i].name), c->targets[j].line);
            }
        }
    }

    v = require(w, root, "rules", "rules file");
    if (v && want_seq(w, v, "rules")) {
        c->rules = xcalloc(v->nkids ? v->nkids : 1, sizeof *c->rules);
        c->nrules = v->nkids;
        for (size_t i = 0; i < v->nkids; i++) {
            parse_rule(w, v->kids[i], &c->rules[i]);
            const struct ynode *name = ynode_map_get(v->kids[i], "name");
            for (size_t j = 0; j < i && c->rules[i].name; j++) {
                if (c->rules[j].name && strcmp(c->rules[j].name, c->rules[i].name) == 0)
                    err_at(w, v->kids[i], "duplicate rule name '%s'%s (first at line %u)",
                           name->str, unshown(name, c->rules[i].name), c->rules[j].line);
            }
        }
    }

    v = ynode_map_get(root, "listen");
    if (v && get_string(w, v, "listen", &c->listen))
        check_listen(w, v, c->listen);
    v = ynode_map_get(root, "capture_token");
    if (v && get_string(w, v, "capture_token", &c->capture_token)) {
        if (c->capture_token[0] == '\0') {
            free(c->capture_token); /* "${TOKEN:-}" left empty: on-demand captures off */
            c->capture_token = NULL;
        } else if (strlen(c->capture_token) < 16) {
            err_at(w, v, "capture_token is shorter than 16 characters: too easy to guess");
        }
    }
    v = ynode_map_get(root, "dac_read_search");
    if (v)
        get_bool(w, v, "dac_read_search", &c->dac_read_search);
    v = ynode_map_get(root, "symbol_cache_max_bytes");
    if (v)
        get_size(w, v, "symbol_cache_max_bytes", CONFIG_MIN_SYMBOL_CACHE_MAX_BYTES,
                 CONFIG_MAX_SYMBOL_CACHE_MAX_BYTES, &c->symbol_cache_max_bytes);

    c->alert.max_captures_per_hour = 6;
    c->alert.spool_max_bytes = CONFIG_DEFAULT_SPOOL_MAX_BYTES;
    v = ynode_map_get(root, "alert");
    if (v)
        parse_alert(w, v, &c->alert);
    if (!c->alert.spool_dir)
        c->alert.spool_dir = xstrdup(CONFIG_DEFAULT_SPOOL_DIR);
}

/* Clamp defaults that depend on other settings once everything is read. */
static void finish(struct config *c)
{
    for (size_t i = 0; i < c->nrules; i++) {
        struct rule_spec *r = &c->rules[i];
        if (r->window_ns > c->history_ns)
            r->window_ns = c->history_ns;
    }
}

int config_parse(const char *name, const char *buf, size_t len, envsubst_lookup_fn lookup,
                 void *lookup_ctx, struct config **out, struct diag_list *diags)
{
    struct ydoc *doc = NULL;
    size_t errors_before = diags->n;
    struct config *c = xcalloc(1, sizeof *c);
    struct walk w = {.diags = diags,
                     .lookup = lookup ? lookup : envsubst_getenv,
                     .lookup_ctx = lookup_ctx,
                     .cfg = c};
    int rc = -EINVAL;

    c->path = xstrdup(name);
    c->poll_interval_ns = CONFIG_DEFAULT_POLL_NS;
    c->history_ns = CONFIG_DEFAULT_HISTORY_NS;
    c->symbol_cache_max_bytes = CONFIG_DEFAULT_SYMBOL_CACHE_MAX_BYTES;

    if (len > CONFIG_MAX_FILE_BYTES) {
        diag_add(diags, 0, 0, "file is larger than %d bytes", CONFIG_MAX_FILE_BYTES);
        goto out;
    }
    if (ydoc_parse(buf, len, &doc, diags) != 0)
        goto out;
    if (!doc->root || ynode_is_null(doc->root)) {
        diag_add(diags, 1, 1, "empty rules file: expected a mapping with version, targets "
                              "and rules");
        goto out;
    }
    if (doc->root->type != YNODE_MAP) {
        err_at(&w, doc->root, "the rules file must be a mapping (version, targets, rules, "
                              "...), found %s", ynode_kind(doc->root));
        goto out;
    }
    parse_top(&w, doc->root);
    if (diags->n > errors_before)
        goto out;
    finish(c);
    *out = c;
    c = NULL;
    rc = 0;
out:
    ydoc_free(doc);
    config_free(c);
    return rc;
}

int config_load(const char *path, enum config_trust trust, struct config **out,
                struct diag_list *diags)
{
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int rc;
    /* O_NONBLOCK: a FIFO put in its place must not hang the daemon in open;
     * the check refuses it. check reads pipes (/dev/stdin) as they come. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | (trust == CONFIG_TRUST_REQUIRE ? O_NONBLOCK : 0));

    if (fd == -1) {
        rc = -errno;
        diag_add(diags, 0, 0, "cannot open: %s", strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) == -1) {
        rc = -errno;
        diag_add(diags, 0, 0, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        diag_add(diags, 0, 0, "is a directory, not a rules file");
        goto out;
    }
    if (trust != CONFIG_TRUST_ANY) {
        char why[2 * PATH_MAX];
        int trc = privs_check_rules_fd(fd, path, why, sizeof why);
        if (trc != 0 && trust == CONFIG_TRUST_REQUIRE) {
            rc = trc;
            diag_add(diags, 0, 0, "%s", why);
            goto out;
        }
        if (trc != 0)
            diag_add(diags, 0, 0, "warning: stakeout run would refuse this file: %s", why);
    }
    buf = xmalloc(CONFIG_MAX_FILE_BYTES + 1);
    for (;;) {
        ssize_t r = read(fd, buf + len, CONFIG_MAX_FILE_BYTES + 1 - len);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            rc = -errno;
            diag_add(diags, 0, 0, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > CONFIG_MAX_FILE_BYTES)
            break;
    }
    rc = config_parse(path, buf, len, NULL, NULL, out, diags);
out:
    free(buf);
    close(fd);
    return rc;
}

static void target_fini(struct target_spec *t)
{
    free(t->name);
    free(t->match_arg);
    pcre2_code_free(t->process_re);
    label_free_array(t->labels, t->nlabels);
    for (size_t i = 0; i < t->nlogs; i++) {
        free(t->logs[i].path);
        free(t->logs[i].error_pattern);
        pcre2_code_free(t->logs[i].error_re);
    }
    free(t->logs);
}

void config_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ntargets; i++)
        target_fini(&c->targets[i]);
    free(c->targets);
    for (size_t i = 0; i < c->nrules; i++)
        rule_spec_fini(&c->rules[i]);
    free(c->rules);
    for (size_t i = 0; i < c->alert.nwebhooks; i++) {
        free(c->alert.webhooks[i].url);
        free(c->alert.webhooks[i].secret);
        free(c->alert.webhooks[i].tls.ca_file);
    }
    free(c->alert.webhooks);
    for (size_t i = 0; i < c->alert.nredact; i++)
        free(c->alert.redact[i]);
    free(c->alert.redact);
    free(c->alert.spool_dir);
    free(c->listen);
    free(c->capture_token);
    free(c->path);
    free(c);
}

const struct target_spec *config_target(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->ntargets; i++) {
        if (c->targets[i].name && strcmp(c->targets[i].name, name) == 0)
            return &c->targets[i];
    }
    return NULL;
}

const char *webhook_format_name(enum webhook_format f)
{
    return (unsigned)f < ARRAY_LEN(webhook_formats) ? webhook_formats[f] : "?";
}

const char *match_kind_name(enum match_kind m)
{
    return (unsigned)m < ARRAY_LEN(match_keys) ? match_keys[m] : "?";
}
