/* triggers/metric.h - the metrics a rule can test, their names and units.
 *
 * Owns the static metric table. Pure. The canonical unit of each metric is
 * what collectors store and rules compare against: percent, bytes, bytes per
 * minute, seconds, events per minute, or a plain count. */
#ifndef STAKEOUT_METRIC_H
#define STAKEOUT_METRIC_H

#include <stdbool.h>
#include <stddef.h>

enum metric {
    METRIC_CPU,        /* percent of one core, may exceed 100 */
    METRIC_CPU_LIMIT,  /* percent of the cgroup CPU quota (or of all CPUs) */
    METRIC_THROTTLED,  /* percent of CFS periods throttled */
    METRIC_RSS,        /* bytes */
    METRIC_RSS_GROWTH, /* bytes per minute, least-squares slope */
    METRIC_MEM_LIMIT,  /* percent of the cgroup memory limit */
    METRIC_OOM_ETA,    /* seconds until the memory limit at the current slope */
    METRIC_ERRORS,     /* matching log lines per minute */
    METRIC_THREADS,    /* count */
    METRIC_FDS,        /* count */
    METRIC_PSI_CPU,    /* percent, cpu.pressure some avg10 */
    METRIC_PSI_MEMORY, /* percent, memory.pressure some avg10 */
    METRIC_COUNT
};

enum metric_unit {
    METRIC_UNIT_PERCENT,
    METRIC_UNIT_BYTES,
    METRIC_UNIT_BYTES_PER_MIN,
    METRIC_UNIT_SECONDS,
    METRIC_UNIT_PER_MIN,
    METRIC_UNIT_COUNT,
};

/* Durations from here on print as "never" and are refused in rules: a
 * whole number of days (100000d), below what int64 nanoseconds hold. */
#define METRIC_MAX_SECONDS 8.64e9

/* Name as written in rules ("rss_growth"). */
const char *metric_name(enum metric m);

/* Canonical unit of a metric. */
enum metric_unit metric_unit(enum metric m);

/* Look up a metric by name; false when unknown. */
bool metric_lookup(const char *name, size_t n, enum metric *out);

/* The known metric name nearest to an unknown one, or NULL when none is close. */
const char *metric_suggest(const char *name, size_t n);

/* Units a user may write for this metric, for error messages ("%", "B KiB MiB GiB"). */
const char *metric_unit_hint(enum metric m);

/* Format a value of metric m in its natural unit ("85.2%", "256MiB",
 * "20MiB/min", "9m40s", "31/min", "12"). Always NUL-terminates. */
void metric_format(enum metric m, double v, char *buf, size_t len);

#endif
