/* triggers/history.h - a bounded ring of metric samples for one watched process.
 *
 * Owns: the ring and a scratch buffer (history_fini frees both). Pure: the
 * caller stamps each sample with its monotonic time. Memory is fixed at
 * init (history / poll_interval samples); appending is O(1) and never
 * allocates. Window queries scan only the samples inside the window.
 *
 * Values are floats: 24 bits of mantissa keep RSS to within 64 bytes per
 * GiB and halve the memory of a 1,000-target daemon. NaN means "not measured
 * at this poll" (a gap), and every query skips it. */
#ifndef STAKEOUT_HISTORY_H
#define STAKEOUT_HISTORY_H

#include "metric.h"

#include <stddef.h>
#include <stdint.h>

struct sample {
    int64_t t_ns;             /* monotonic time of the poll */
    float v[METRIC_COUNT];    /* NaN: not measured */
};

struct history {
    struct sample *ring;      /* owned, cap entries */
    float *scratch;           /* owned, cap entries: for medians */
    size_t cap;
    size_t head;              /* index of the oldest sample */
    size_t n;                 /* samples held, <= cap */
};

struct window_stats {
    size_t n;                 /* samples with a value in the window */
    double last, min, max, mean, std;
    double median;
    double slope_per_s;       /* least-squares slope, units per second; NaN if n < 2 */
    int64_t span_ns;          /* time between first and last sample used */
};

/* Reserve room for cap samples (cap >= 2). */
void history_init(struct history *h, size_t cap);
void history_fini(struct history *h);

/* Forget every sample (target restarted). */
void history_clear(struct history *h);

/* Append; the oldest sample is dropped when full. Samples must come in
 * time order; one older than the newest is ignored. */
void history_push(struct history *h, const struct sample *s);

size_t history_len(const struct history *h);

/* Sample i counted from the oldest (0) to the newest (len - 1). */
const struct sample *history_at(const struct history *h, size_t i);

/* The newest sample, or NULL when empty. */
const struct sample *history_last(const struct history *h);

/* Statistics of metric m over samples with t > now_ns - window_ns (all of
 * them when window_ns <= 0). Returns the number of samples used; with 0 every
 * field but n is NaN. The median costs O(n) in the window; the rest is one
 * pass. */
size_t history_stats(struct history *h, enum metric m, int64_t now_ns, int64_t window_ns,
                     struct window_stats *out);

/* Least-squares slope of metric m per second over the window, NaN with fewer
 * than two samples. One pass, no median. *span_ns (may be NULL) receives the
 * time between the first and last sample used. */
double history_slope(const struct history *h, enum metric m, int64_t now_ns, int64_t window_ns,
                     int64_t *span_ns);

/* Copy the samples with t > since_ns, oldest first, into out (at most max).
 * Returns how many were copied. */
size_t history_copy(const struct history *h, int64_t since_ns, struct sample *out, size_t max);

/* A sample with every value NaN, stamped t_ns. */
void sample_init(struct sample *s, int64_t t_ns);

#endif
