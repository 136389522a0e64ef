/* tests/test_units.c - durations, sizes, rates (triggers/units). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <string.h>

#include "units.h"

/* Criterion copies parameters into a fresh process: strings are held inline,
 * never as pointers into this one. */
struct dur_case {
    char text[32];
    long long ns;     /* expected, when ok */
    int ok;
    size_t bad_off;   /* offset of the error, when not ok */
    char msg[48];     /* message substring, when not ok */
};

static int64_t parse_ok(const char *s)
{
    int64_t ns = -1;
    char err[128] = "";
    cr_assert_eq(units_parse_duration(s, strlen(s), &ns, NULL, err, sizeof err), 0,
                 "'%s' rejected: %s", s, err);
    return ns;
}

Test(units, duration_simple_units_parse_to_nanoseconds)
{
    cr_assert_eq(parse_ok("250ms"), 250000000LL);
    cr_assert_eq(parse_ok("30s"), 30000000000LL);
    cr_assert_eq(parse_ok("5m"), 300000000000LL);
    cr_assert_eq(parse_ok("2h"), 7200000000000LL);
    cr_assert_eq(parse_ok("1d"), 86400000000000LL);
    cr_assert_eq(parse_ok("0"), 0);
    cr_assert_eq(parse_ok("0s"), 0);
}

Test(units, duration_compound_adds_parts)
{
    cr_assert_eq(parse_ok("1h30m"), 5400000000000LL);
    cr_assert_eq(parse_ok("1m30s500ms"), 90500000000LL);
}

ParameterizedTestParameters(units, duration_bad_is_rejected_at_offset)
{
    static struct dur_case cases[] = {
        {"1.5m", 0, 0, 1, "whole numbers"},
        {"5 m", 0, 0, 1, "unit"},
        {"10x", 0, 0, 2, "unknown duration unit"},
        {"30s1m", 0, 0, 4, "largest to smallest"},
        {"1m1m", 0, 0, 3, "repeated"},
        {"10", 0, 0, 2, "missing unit"},
        {"m", 0, 0, 0, "expected a number"},
        {"-5s", 0, 0, 0, "whole numbers"},
        {"", 0, 0, 0, "empty"},
        {"99999999999999999999s", 0, 0, 0, "too large"},
        {"9999999999999d", 0, 0, 0, "too large"},
    };
    return cr_make_param_array(struct dur_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct dur_case *c, units, duration_bad_is_rejected_at_offset)
{
    int64_t ns = 42;
    size_t off = 999;
    char err[128] = "";
    int rc = units_parse_duration(c->text, strlen(c->text), &ns, &off, err, sizeof err);
    cr_assert_neq(rc, 0, "'%s' accepted as %lld", c->text, (long long)ns);
    cr_assert_eq(ns, 42, "output written on failure");
    cr_assert_eq(off, c->bad_off, "'%s': offset %zu, expected %zu (%s)", c->text, off,
                 c->bad_off, err);
    cr_assert(strstr(err, c->msg), "'%s': message '%s' lacks '%s'", c->text, err, c->msg);
}

Test(units, duration_format_round_trips)
{
    static const char *texts[] = {"250ms", "30s", "1m30s", "1h30m", "2d", "1h0m1s"};
    static const char *canon[] = {"250ms", "30s", "1m30s", "1h30m", "2d", "1h1s"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char buf[32];
        units_format_duration(parse_ok(texts[i]), buf, sizeof buf);
        cr_assert_str_eq(buf, canon[i]);
        cr_assert_eq(parse_ok(buf), parse_ok(texts[i]));
    }
    char buf[32];
    units_format_duration(0, buf, sizeof buf);
    cr_assert_str_eq(buf, "0s");
}

Test(units, size_factors_binary_and_decimal)
{
    cr_assert_eq(units_size_factor("B", 1), 1.0);
    cr_assert_eq(units_size_factor("KiB", 3), 1024.0);
    cr_assert_eq(units_size_factor("MiB", 3), 1048576.0);
    cr_assert_eq(units_size_factor("GiB", 3), 1073741824.0);
    cr_assert_eq(units_size_factor("KB", 2), 1000.0);
    cr_assert_eq(units_size_factor("MB", 2), 1e6);
    cr_assert_eq(units_size_factor("GB", 2), 1e9);
    cr_assert_eq(units_size_factor("mib", 3), 0.0, "units are case-sensitive");
    cr_assert_eq(units_size_factor("Mi", 2), 0.0);
}

Test(units, rate_factors_per_minute)
{
    cr_assert_eq(units_per_minute_factor("/s", 2), 60.0);
    cr_assert_eq(units_per_minute_factor("/min", 4), 1.0);
    cr_assert_eq(units_per_minute_factor("/h", 2), 1.0 / 60.0);
    cr_assert_eq(units_per_minute_factor("/day", 4), 0.0);
    cr_assert_eq(units_per_minute_factor("s", 1), 0.0);
}

Test(units, number_prefix_stops_at_unit)
{
    double v = -1;
    cr_assert_eq(units_parse_number("12.5MiB", 7, &v), 4);
    cr_assert_float_eq(v, 12.5, 1e-12);
    cr_assert_eq(units_parse_number("3x", 2, &v), 1);
    cr_assert_float_eq(v, 3.0, 1e-12);
    cr_assert_eq(units_parse_number("5.", 2, &v), 1, "a trailing dot is not part of the number");
    cr_assert_eq(units_parse_number("MiB", 3, &v), 0);
}

Test(units, size_format_picks_largest_unit)
{
    char buf[32];
    units_format_size(268435456.0, buf, sizeof buf);
    cr_assert_str_eq(buf, "256MiB");
    units_format_size(1536.0 * 1048576.0, buf, sizeof buf);
    cr_assert_str_eq(buf, "1.5GiB");
    units_format_size(17.0, buf, sizeof buf);
    cr_assert_str_eq(buf, "17B");
    /* judged as printed: rounding to one decimal never leaves "10.0B" or
     * "1024.0B", which would parse back and print otherwise */
    units_format_size(9.9999, buf, sizeof buf);
    cr_assert_str_eq(buf, "10B");
    units_format_size(1023.96, buf, sizeof buf);
    cr_assert_str_eq(buf, "1KiB");
    units_format_size(1048575.9, buf, sizeof buf);
    cr_assert_str_eq(buf, "1MiB");
    units_format_size(1.05 * 1024, buf, sizeof buf);
    cr_assert_str_eq(buf, "1.1KiB");
}
