/* tests/test_expr.c - the `when` expression language (triggers/expr). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "expr.h"

static struct expr *parse_ok(const char *s)
{
    struct expr *e = NULL;
    struct expr_error err;
    int rc = expr_parse(s, strlen(s), &e, &err);
    cr_assert_eq(rc, 0, "'%s' rejected at %zu: %s", s, err.off, err.msg);
    cr_assert_not_null(e);
    return e;
}

static void assert_canonical(const char *in, const char *want)
{
    char buf[256];
    struct expr *e = parse_ok(in);
    expr_format(e, buf, sizeof buf);
    cr_assert_str_eq(buf, want, "'%s' formats as '%s'", in, buf);
    expr_free(e);
    /* the canonical form parses back to itself */
    e = parse_ok(buf);
    char again[256];
    expr_format(e, again, sizeof again);
    cr_assert_str_eq(again, buf);
    expr_free(e);
}

Test(expr, threshold_has_metric_op_and_canonical_value)
{
    struct expr *e = parse_ok("cpu > 80%");
    cr_assert_eq(e->kind, EXPR_CMP);
    cr_assert_eq(e->metric, METRIC_CPU);
    cr_assert_eq(e->op, EXPR_OP_GT);
    cr_assert_eq(e->ref, EXPR_REF_ABS);
    cr_assert_float_eq(e->value, 80.0, 1e-9);
    cr_assert_eq(e->off, 0);
    cr_assert_eq(e->len, 9);
    expr_free(e);
}

/* Criterion copies parameters into a fresh process: strings are held inline. */
struct unit_case {
    char text[48];
    enum metric metric;
    double value; /* canonical unit */
};

ParameterizedTestParameters(expr, units_convert_to_canonical)
{
    static struct unit_case cases[] = {
        {"cpu > 150", METRIC_CPU, 150.0},
        {"cpu_limit >= 90%", METRIC_CPU_LIMIT, 90.0},
        {"throttled > 25%", METRIC_THROTTLED, 25.0},
        {"rss > 256MiB", METRIC_RSS, 268435456.0},
        {"rss > 1.5GiB", METRIC_RSS, 1610612736.0},
        {"rss > 500MB", METRIC_RSS, 5e8},
        {"rss > 256 MiB", METRIC_RSS, 268435456.0},
        {"rss_growth > 20MiB/min", METRIC_RSS_GROWTH, 20971520.0},
        {"rss_growth > 100KiB/s", METRIC_RSS_GROWTH, 102400.0 * 60},
        {"mem_limit > 90%", METRIC_MEM_LIMIT, 90.0},
        {"oom_eta < 10m", METRIC_OOM_ETA, 600.0},
        {"oom_eta < 1h30m", METRIC_OOM_ETA, 5400.0},
        {"errors > 30/min", METRIC_ERRORS, 30.0},
        {"errors > 2/s", METRIC_ERRORS, 120.0},
        {"errors > 30", METRIC_ERRORS, 30.0},
        {"threads > 500", METRIC_THREADS, 500.0},
        {"fds >= 1000", METRIC_FDS, 1000.0},
        {"psi_cpu > 40%", METRIC_PSI_CPU, 40.0},
        {"psi_memory > 10", METRIC_PSI_MEMORY, 10.0},
    };
    return cr_make_param_array(struct unit_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct unit_case *c, expr, units_convert_to_canonical)
{
    struct expr *e = parse_ok(c->text);
    cr_assert_eq(e->metric, c->metric, "%s", c->text);
    cr_assert_eq(e->ref, EXPR_REF_ABS);
    cr_assert_float_eq(e->value, c->value, 1e-6, "%s: %f", c->text, e->value);
    expr_free(e);
}

Test(expr, baseline_and_sigma_are_relative)
{
    struct expr *e = parse_ok("cpu > 3x baseline");
    cr_assert_eq(e->ref, EXPR_REF_BASELINE);
    cr_assert_float_eq(e->value, 3.0, 1e-9);
    expr_free(e);
    e = parse_ok("cpu > 1.5 x baseline");
    cr_assert_eq(e->ref, EXPR_REF_BASELINE);
    cr_assert_float_eq(e->value, 1.5, 1e-9);
    expr_free(e);
    e = parse_ok("errors > 2 sigma");
    cr_assert_eq(e->ref, EXPR_REF_SIGMA);
    cr_assert_float_eq(e->value, 2.0, 1e-9);
    expr_free(e);
}

Test(expr, and_binds_tighter_than_or)
{
    struct expr *e = parse_ok("cpu > 80% or rss > 1GiB and fds > 10");
    cr_assert_eq(e->kind, EXPR_OR);
    cr_assert_eq(e->lhs->kind, EXPR_CMP);
    cr_assert_eq(e->rhs->kind, EXPR_AND);
    cr_assert_eq(expr_count(e), 3);
    cr_assert_eq(expr_cmp_at(e, 0)->metric, METRIC_CPU);
    cr_assert_eq(expr_cmp_at(e, 1)->metric, METRIC_RSS);
    cr_assert_eq(expr_cmp_at(e, 2)->metric, METRIC_FDS);
    cr_assert_null(expr_cmp_at(e, 3));
    expr_free(e);
}

Test(expr, parentheses_override_precedence)
{
    struct expr *e = parse_ok("(cpu > 80% or rss > 1GiB) and fds > 10");
    cr_assert_eq(e->kind, EXPR_AND);
    cr_assert_eq(e->lhs->kind, EXPR_OR);
    expr_free(e);
}

Test(expr, comparison_spans_point_into_source)
{
    const char *src = "rss_growth > 20MiB/min and (rss > 256MiB)";
    struct expr *e = parse_ok(src);
    const struct expr *a = expr_cmp_at(e, 0), *b = expr_cmp_at(e, 1);
    cr_assert_eq(a->off, 0);
    cr_assert_eq(strncmp(src + a->off, "rss_growth > 20MiB/min", a->len), 0);
    cr_assert_eq(a->len, strlen("rss_growth > 20MiB/min"));
    cr_assert_eq(b->off, 28);
    cr_assert_eq(b->len, strlen("rss > 256MiB"));
    expr_free(e);
}

Test(expr, format_is_canonical_and_reparses)
{
    assert_canonical("cpu>80%", "cpu > 80%");
    /* values that round to a whole number print as one (found by fuzz_expr) */
    assert_canonical("fds > 9.99", "fds > 10");
    assert_canonical("rss > 9.9999B", "rss > 10B");
    assert_canonical("rss > 1023.96B", "rss > 1KiB");
    assert_canonical("rss > 4369188565.6918869x baseline", "rss > 4369188565.69189x baseline");
    assert_canonical("oom_eta > 3d3h35m7s7ms", "oom_eta > 3d3h35m7s7ms");
    assert_canonical("rss > 268435456B", "rss > 256MiB");
    assert_canonical("rss_growth > 20MiB/min and rss > 256MiB",
                     "rss_growth > 20MiB/min and rss > 256MiB");
    assert_canonical("errors > 30/min or cpu > 3x baseline", "errors > 30/min or cpu > 3x baseline");
    assert_canonical("(cpu > 2 sigma or cpu > 90%) and cpu > 1.5x baseline",
                     "(cpu > 2 sigma or cpu > 90%) and cpu > 1.5x baseline");
    assert_canonical("oom_eta < 1h30m", "oom_eta < 1h30m");
    assert_canonical("errors >= 2/s", "errors >= 120/min");
    assert_canonical("cpu > .5", "cpu > 0.5%");
}

Test(expr, uses_reports_metrics_present)
{
    struct expr *e = parse_ok("cpu > 80% and (errors > 5 or rss > 1GiB)");
    cr_assert(expr_uses(e, METRIC_CPU));
    cr_assert(expr_uses(e, METRIC_ERRORS));
    cr_assert(expr_uses(e, METRIC_RSS));
    cr_assert_not(expr_uses(e, METRIC_FDS));
    expr_free(e);
}

Test(expr, cmp_holds_for_each_operator_and_reference)
{
    struct expr *gt = parse_ok("cpu > 80%"), *le = parse_ok("cpu <= 80%");
    struct expr *base = parse_ok("cpu > 3x baseline"), *sig = parse_ok("cpu > 2 sigma");
    cr_assert(expr_cmp_holds(gt, 80.1, NAN, NAN, NAN));
    cr_assert_not(expr_cmp_holds(gt, 80.0, NAN, NAN, NAN));
    cr_assert(expr_cmp_holds(le, 80.0, NAN, NAN, NAN));
    cr_assert_not(expr_cmp_holds(gt, NAN, NAN, NAN, NAN), "a missing value never fires");
    cr_assert(expr_cmp_holds(base, 31.0, 10.0, 0, 0));
    cr_assert_not(expr_cmp_holds(base, 29.0, 10.0, 0, 0));
    cr_assert_not(expr_cmp_holds(base, 100.0, NAN, 0, 0), "no baseline yet: false");
    cr_assert(expr_cmp_holds(sig, 21.0, 0, 10.0, 5.0));
    cr_assert_not(expr_cmp_holds(sig, 20.0, 0, 10.0, 5.0));
    cr_assert_float_eq(expr_cmp_threshold(sig, 0, 10.0, 5.0), 20.0, 1e-12);
    expr_free(gt);
    expr_free(le);
    expr_free(base);
    expr_free(sig);
}

struct bad_case {
    char text[48];
    size_t off;
    char msg[64];
};

ParameterizedTestParameters(expr, bad_expression_reports_offset_and_reason)
{
    static struct bad_case cases[] = {
        {"", 0, "empty expression"},
        {"   ", 0, "empty expression"},
        {"cpux > 80%", 0, "did you mean 'cpu'"},
        {"latency > 5", 0, "unknown metric 'latency'; metrics are"},
        {"cpu 80%", 4, "expected an operator"},
        {"cpu == 80", 4, "'==' is not an operator"},
        {"cpu = 80", 4, "'=' is not an operator"},
        {"cpu > ", 6, "expected a value after '>'"},
        {"cpu > high", 6, "expected a value"},
        {"cpu > 80MiB", 8, "unit 'MiB' does not fit metric 'cpu'"},
        {"rss > 256", 6, "'rss' needs a unit"},
        {"rss > 256mb", 9, "unit 'mb' does not fit"},
        {"rss_growth > 20MiB", 15, "a size per time"},
        {"threads > 5%", 11, "unit '%' does not fit metric 'threads'"},
        {"oom_eta < 10", 10, "'oom_eta' needs a unit"},
        {"oom_eta < 1.5m", 11, "whole numbers"},
        {"oom_eta < 10 m", 10, "without spaces"},
        {"errors > 30/day", 11, "unit '/day' does not fit"},
        {"cpu > 3x foo", 9, "expected 'baseline' after '3x'"},
        {"cpu > 0x baseline", 6, "at least 0.001"},
        {"cpu > 0.0000000001x baseline", 6, "at least 0.001"},
        {"cpu > 80% and", 13, "expected a metric name"},
        {"cpu > 80% or or rss > 1GiB", 13, "expected a metric name"},
        {"cpu > 80% rss > 1GiB", 10, "expected 'and', 'or'"},
        {"cpu > 80% AND rss > 1GiB", 10, "expected 'and', 'or'"},
        {"(cpu > 80%", 10, "expected ')'"},
        {"cpu > 80%)", 9, "unmatched ')'"},
        {"cpu > 80% & rss > 1", 10, "unexpected character '&'"},
        {"cpu > 80\x01", 8, "unexpected byte 0x01"},
        {"cpu > 2000000000000000", 6, "number is too large"},
        {"errors > 25555555555555/s", 9, "value is too large for 'errors'"},
        {"rss > 1000000TiB", 6, "value is too large for 'rss' (at most 512TiB)"},
        {"rss > 999999999999999B", 6, "at most 512TiB"},
        {"rss_growth > 513TiB/min", 13, "at most 512TiB/min"},
        {"oom_eta>150260875m", 8, "value is too large for 'oom_eta' (less than 100000d)"},
    };
    return cr_make_param_array(struct bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_case *c, expr, bad_expression_reports_offset_and_reason)
{
    struct expr *e = NULL;
    struct expr_error err;
    int rc = expr_parse(c->text, strlen(c->text), &e, &err);
    cr_assert_neq(rc, 0, "'%s' accepted", c->text);
    cr_assert_null(e);
    cr_assert(strstr(err.msg, c->msg), "'%s': message '%s' lacks '%s'", c->text, err.msg, c->msg);
    cr_assert_eq(err.off, c->off, "'%s': offset %zu, want %zu (%s)", c->text, err.off, c->off,
                 err.msg);
}

Test(expr, nesting_and_size_limits_are_errors_not_crashes)
{
    char deep[256];
    size_t n = 0;
    for (int i = 0; i < EXPR_MAX_DEPTH + 1; i++)
        deep[n++] = '(';
    memcpy(deep + n, "cpu > 1", 7);
    n += 7;
    for (int i = 0; i < EXPR_MAX_DEPTH + 1; i++)
        deep[n++] = ')';
    struct expr *e = NULL;
    struct expr_error err;
    cr_assert_neq(expr_parse(deep, n, &e, &err), 0);
    cr_assert(strstr(err.msg, "nested too deeply"), "%s", err.msg);

    char many[EXPR_MAX_LEN];
    n = 0;
    for (int i = 0; i < EXPR_MAX_CMP + 1; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%scpu > %d", i ? " or " : "", i);
    cr_assert_neq(expr_parse(many, n, &e, &err), 0);
    cr_assert(strstr(err.msg, "too many comparisons"), "%s", err.msg);

    static char big[EXPR_MAX_LEN + 10];
    memset(big, ' ', sizeof big);
    cr_assert_neq(expr_parse(big, sizeof big, &e, &err), 0);
    cr_assert(strstr(err.msg, "longer than"), "%s", err.msg);
}
