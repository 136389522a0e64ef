/* triggers/metric.c - metric names and units; see metric.h. */
#include "metric.h"

#include "editdist.h"
#include "units.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct metric_info {
    const char *name;
    enum metric_unit unit;
};

static const struct metric_info metrics[METRIC_COUNT] = {
    [METRIC_CPU] = {"cpu", METRIC_UNIT_PERCENT},
    [METRIC_CPU_LIMIT] = {"cpu_limit", METRIC_UNIT_PERCENT},
    [METRIC_THROTTLED] = {"throttled", METRIC_UNIT_PERCENT},
    [METRIC_RSS] = {"rss", METRIC_UNIT_BYTES},
    [METRIC_RSS_GROWTH] = {"rss_growth", METRIC_UNIT_BYTES_PER_MIN},
    [METRIC_MEM_LIMIT] = {"mem_limit", METRIC_UNIT_PERCENT},
    [METRIC_OOM_ETA] = {"oom_eta", METRIC_UNIT_SECONDS},
    [METRIC_ERRORS] = {"errors", METRIC_UNIT_PER_MIN},
    [METRIC_THREADS] = {"threads", METRIC_UNIT_COUNT},
    [METRIC_FDS] = {"fds", METRIC_UNIT_COUNT},
    [METRIC_PSI_CPU] = {"psi_cpu", METRIC_UNIT_PERCENT},
    [METRIC_PSI_MEMORY] = {"psi_memory", METRIC_UNIT_PERCENT},
};

const char *metric_name(enum metric m)
{
    return (unsigned)m < METRIC_COUNT ? metrics[m].name : "?";
}

enum metric_unit metric_unit(enum metric m)
{
    return metrics[m].unit;
}

bool metric_lookup(const char *name, size_t n, enum metric *out)
{
    for (int i = 0; i < METRIC_COUNT; i++) {
        if (strlen(metrics[i].name) == n && memcmp(metrics[i].name, name, n) == 0) {
            *out = (enum metric)i;
            return true;
        }
    }
    return false;
}

const char *metric_suggest(const char *name, size_t n)
{
    const char *names[METRIC_COUNT];

    for (int i = 0; i < METRIC_COUNT; i++)
        names[i] = metrics[i].name;
    return editdist_suggest(name, n, names, METRIC_COUNT);
}

const char *metric_unit_hint(enum metric m)
{
    switch (metrics[m].unit) {
    case METRIC_UNIT_PERCENT:
        return "a percentage such as 80%";
    case METRIC_UNIT_BYTES:
        return "a size such as 512MiB (B, KiB, MiB, GiB, KB, MB, GB)";
    case METRIC_UNIT_BYTES_PER_MIN:
        return "a size per time such as 20MiB/min or 100KiB/s";
    case METRIC_UNIT_SECONDS:
        return "a duration such as 10m (ms, s, m, h, d)";
    case METRIC_UNIT_PER_MIN:
        return "a rate such as 30/min or 2/s";
    case METRIC_UNIT_COUNT:
        return "a plain number";
    }
    return "a number";
}

/* One decimal at most, and none when the value shows as a whole number
 * (9.96 prints as 10, not 10.0): the text parses back to a value that
 * prints the same way. */
static void format_number(double v, const char *suffix, char *buf, size_t len)
{
    double shown = fabs(v) < 1e15 ? round(v * 10.0) / 10.0 : v;
    if (shown == floor(shown) && fabs(shown) < 1e15)
        snprintf(buf, len, "%.0f%s", shown, suffix);
    else
        snprintf(buf, len, "%.1f%s", shown, suffix);
}

void metric_format(enum metric m, double v, char *buf, size_t len)
{
    if (len == 0)
        return;
    if (isnan(v)) {
        snprintf(buf, len, "n/a");
        return;
    }
    switch (metrics[m].unit) {
    case METRIC_UNIT_PERCENT:
        format_number(v, "%", buf, len);
        return;
    case METRIC_UNIT_BYTES:
        units_format_size(v, buf, len);
        return;
    case METRIC_UNIT_BYTES_PER_MIN: {
        char size[32];
        units_format_size(v, size, sizeof size);
        snprintf(buf, len, "%s/min", size);
        return;
    }
    case METRIC_UNIT_SECONDS:
        if (isinf(v) || v >= METRIC_MAX_SECONDS)
            snprintf(buf, len, "never");
        else
            units_format_duration(llround(v * 1e9), buf, len); /* not truncated: 7ms, not 6.999 */
        return;
    case METRIC_UNIT_PER_MIN:
        format_number(v, "/min", buf, len);
        return;
    case METRIC_UNIT_COUNT:
        format_number(v, "", buf, len);
        return;
    }
}
