/* triggers/units.c - durations, sizes and rates; see units.h. */
#include "units.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct unit {
    const char *name;
    double factor;
};

/* Duration units in the descending order the grammar requires. */
static const struct unit duration_units[] = {
    {"d", 86400.0}, {"h", 3600.0}, {"m", 60.0}, {"s", 1.0}, {"ms", 0.001},
};
#define N_DURATION_UNITS (sizeof duration_units / sizeof duration_units[0])

static const struct unit size_units[] = {
    {"B", 1.0},          {"KiB", 1024.0},   {"MiB", 1048576.0}, {"GiB", 1073741824.0},
    {"TiB", 1099511627776.0}, {"KB", 1e3},  {"MB", 1e6},        {"GB", 1e9},
    {"TB", 1e12},
};
#define N_SIZE_UNITS (sizeof size_units / sizeof size_units[0])

static const struct unit rate_units[] = {
    {"/s", 60.0}, {"/min", 1.0}, {"/h", 1.0 / 60.0},
};
#define N_RATE_UNITS (sizeof rate_units / sizeof rate_units[0])

static bool span_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static double lookup(const struct unit *units, size_t count, const char *u, size_t n)
{
    for (size_t i = 0; i < count; i++) {
        if (span_eq(u, n, units[i].name))
            return units[i].factor;
    }
    return 0.0;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

size_t units_parse_number(const char *s, size_t n, double *out)
{
    size_t i = 0;
    double v = 0.0;
    bool digits = false;

    while (i < n && s[i] >= '0' && s[i] <= '9') {
        v = v * 10.0 + (s[i] - '0');
        digits = true;
        i++;
    }
    if (i < n && s[i] == '.' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') {
        double scale = 0.1;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            v += (s[i] - '0') * scale;
            scale /= 10.0;
            digits = true;
            i++;
        }
    }
    if (!digits)
        return 0;
    *out = v;
    return i;
}

double units_size_factor(const char *u, size_t n)
{
    return lookup(size_units, N_SIZE_UNITS, u, n);
}

double units_per_minute_factor(const char *u, size_t n)
{
    return lookup(rate_units, N_RATE_UNITS, u, n);
}

double units_duration_factor(const char *u, size_t n)
{
    return lookup(duration_units, N_DURATION_UNITS, u, n);
}

int units_parse_duration(const char *s, size_t n, int64_t *out_ns, size_t *off_out, char *err,
                         size_t errlen)
{
    size_t i = 0;
    size_t last_unit = 0; /* index into duration_units + 1 of the previous part */
    int64_t total = 0;

    if (n == 1 && s[0] == '0') {
        *out_ns = 0;
        return 0;
    }
    if (n == 0) {
        set_err(err, errlen, "empty duration");
        goto fail;
    }
    while (i < n) {
        int64_t part = 0;
        size_t start = i;

        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (part > INT64_MAX / 10 - 9) {
                i = start;
                set_err(err, errlen, "duration is too large");
                goto fail;
            }
            part = part * 10 + (s[i] - '0');
            i++;
        }
        if (i == start) {
            if (s[i] == '.' || s[i] == '-' || s[i] == '+')
                set_err(err, errlen, "a duration is whole numbers with units, such as 1m30s");
            else
                set_err(err, errlen, "expected a number in duration (such as 30s, 5m, 1h30m)");
            goto fail;
        }
        if (i < n && s[i] == '.') {
            set_err(err, errlen, "a duration is whole numbers with units, such as 1m30s");
            goto fail;
        }
        size_t ustart = i;
        while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            i++;
        if (i == ustart) {
            if (i < n && (s[i] == ' ' || s[i] == '\t'))
                set_err(err, errlen, "no space between a number and its unit, such as 5m");
            else
                set_err(err, errlen, "missing unit in duration (ms, s, m, h or d)");
            goto fail;
        }
        size_t k;
        for (k = 0; k < N_DURATION_UNITS; k++) {
            if (span_eq(s + ustart, i - ustart, duration_units[k].name))
                break;
        }
        if (k == N_DURATION_UNITS) {
            i = ustart;
            set_err(err, errlen, "unknown duration unit (use ms, s, m, h or d)");
            goto fail;
        }
        if (last_unit == k + 1) {
            i = ustart;
            set_err(err, errlen, "duration unit repeated");
            goto fail;
        }
        if (last_unit > k) {
            i = ustart;
            set_err(err, errlen, "duration units must go from largest to smallest, such as 1h30m");
            goto fail;
        }
        last_unit = k + 1;
        /* factor in ns is exact for every unit */
        int64_t ns_per = (int64_t)(duration_units[k].factor * 1000.0) * UNITS_NS_PER_MS;
        if (part > (INT64_MAX - total) / ns_per) {
            i = start;
            set_err(err, errlen, "duration is too large");
            goto fail;
        }
        total += part * ns_per;
    }
    *out_ns = total;
    return 0;
fail:
    if (off_out)
        *off_out = i < n ? i : n;
    return -EINVAL;
}

void units_format_duration(int64_t ns, char *buf, size_t len)
{
    size_t used = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    if (ns <= 0) {
        snprintf(buf, len, "0s");
        return;
    }
    int64_t ms = ns / UNITS_NS_PER_MS;
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    for (size_t k = 0; k < N_DURATION_UNITS && used < len; k++) {
        int64_t per = (int64_t)(duration_units[k].factor * 1000.0);
        int64_t part = ms / per;
        if (part == 0)
            continue;
        ms -= part * per;
        int w = snprintf(buf + used, len - used, "%" PRId64 "%s", part, duration_units[k].name);
        if (w < 0)
            return;
        used += (size_t)w;
    }
}

void units_format_size(double bytes, char *buf, size_t len)
{
    static const char *names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t k = 0;
    double v = bytes;

    /* judge the value as it will print, to one decimal: 9.9999 prints as
     * 10 and 1023.96 as 1KiB, so that the text parses back to a value that
     * prints the same way */
    for (;;) {
        double shown = round(v * 10.0) / 10.0;
        if (fabs(shown) >= 1024.0 && k + 1 < sizeof names / sizeof names[0]) {
            v /= 1024.0;
            k++;
            continue;
        }
        v = shown;
        break;
    }
    if (v == floor(v))
        snprintf(buf, len, "%.0f%s", v, names[k]);
    else
        snprintf(buf, len, "%.1f%s", v, names[k]);
}
