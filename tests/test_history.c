/* tests/test_history.c - the sample ring and its window queries (triggers/history). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>

#include "history.h"

#define S 1000000000LL

static void push(struct history *h, int64_t t_s, float rss)
{
    struct sample s;
    sample_init(&s, t_s * S);
    s.v[METRIC_RSS] = rss;
    history_push(h, &s);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

Test(history, ring_keeps_newest_cap_samples_in_order)
{
    struct history h;
    history_init(&h, 4);
    for (int i = 1; i <= 10; i++)
        push(&h, i, (float)i);
    cr_assert_eq(history_len(&h), 4);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(history_at(&h, i)->t_ns, (int64_t)(7 + i) * S);
    cr_assert_eq(history_last(&h)->v[METRIC_RSS], 10.0f);
    cr_assert_null(history_at(&h, 4));
    history_fini(&h);
}

Test(history, out_of_order_sample_is_ignored)
{
    struct history h;
    history_init(&h, 4);
    push(&h, 5, 1);
    push(&h, 5, 2);
    push(&h, 4, 3);
    cr_assert_eq(history_len(&h), 1);
    cr_assert_eq(history_last(&h)->v[METRIC_RSS], 1.0f);
    history_fini(&h);
}

Test(history, stats_cover_only_the_window_and_skip_gaps)
{
    struct history h;
    struct window_stats st;
    history_init(&h, 100);
    for (int i = 1; i <= 20; i++)
        push(&h, i, (float)i);
    struct sample gap;
    sample_init(&gap, 21 * S); /* not measured */
    history_push(&h, &gap);
    /* window (11, 21]: values 12..20 (21 is a gap) */
    cr_assert_eq(history_stats(&h, METRIC_RSS, 21 * S, 10 * S, &st), 9);
    cr_assert_float_eq(st.mean, 16.0, 1e-9);
    cr_assert_float_eq(st.min, 12.0, 1e-9);
    cr_assert_float_eq(st.max, 20.0, 1e-9);
    cr_assert_float_eq(st.last, 20.0, 1e-9);
    cr_assert_float_eq(st.median, 16.0, 1e-9);
    cr_assert_float_eq(st.slope_per_s, 1.0, 1e-9);
    cr_assert_float_eq(st.std, sqrt(60.0 / 9.0), 1e-6);
    cr_assert_eq(st.span_ns, 8 * S);
    cr_assert_eq(history_stats(&h, METRIC_CPU, 21 * S, 10 * S, &st), 0, "cpu never measured");
    cr_assert(isnan(st.mean));
    history_fini(&h);
}

Test(history, median_matches_sorting_for_random_data)
{
    struct history h;
    struct window_stats st;
    float ref[301];
    srand(7);
    for (size_t n = 1; n <= 301; n += 37) {
        history_init(&h, 400);
        for (size_t i = 0; i < n; i++) {
            ref[i] = (float)(rand() % 50); /* many duplicates on purpose */
            push(&h, (int64_t)i + 1, ref[i]);
        }
        qsort(ref, n, sizeof ref[0], cmp_float);
        double want = n % 2 ? ref[n / 2] : 0.5 * (ref[n / 2 - 1] + ref[n / 2]);
        history_stats(&h, METRIC_RSS, (int64_t)n * S, 0, &st);
        cr_assert_float_eq(st.median, want, 1e-9, "n=%zu: %f vs %f", n, st.median, want);
        history_fini(&h);
    }
}

Test(history, slope_is_least_squares_not_endpoints)
{
    struct history h;
    history_init(&h, 200);
    /* a steady 1 MiB/s leak with one 100 MiB spike in the middle */
    for (int i = 0; i < 120; i++)
        push(&h, i + 1, (float)(1048576.0 * i + (i == 60 ? 104857600.0 : 0.0)));
    double slope = history_slope(&h, METRIC_RSS, 120 * S, 120 * S, NULL);
    cr_assert_float_eq(slope, 1048576.0, 1048576.0 * 0.05, "slope %f", slope);
    /* flat with one spike at the end: endpoints would say 100 MiB/2min */
    struct history flat;
    history_init(&flat, 200);
    for (int i = 0; i < 120; i++)
        push(&flat, i + 1, i == 119 ? 104857600.0f : 0.0f);
    slope = history_slope(&flat, METRIC_RSS, 120 * S, 120 * S, NULL);
    cr_assert_lt(slope * 60.0, 1048576.0 * 4.0, "a spike is not a leak: %f/min", slope * 60.0);
    cr_assert(isnan(history_slope(&flat, METRIC_CPU, 120 * S, 0, NULL)));
    history_fini(&h);
    history_fini(&flat);
}

Test(history, copy_returns_window_oldest_first)
{
    struct history h;
    struct sample out[8];
    history_init(&h, 8);
    for (int i = 1; i <= 12; i++)
        push(&h, i, (float)i);
    cr_assert_eq(history_copy(&h, 9 * S, out, 8), 3);
    cr_assert_eq(out[0].t_ns, 10 * S);
    cr_assert_eq(out[2].t_ns, 12 * S);
    cr_assert_eq(history_copy(&h, 0, out, 2), 2, "bounded by max");
    cr_assert_eq(out[0].t_ns, 5 * S, "oldest kept is t=5");
    history_clear(&h);
    cr_assert_eq(history_len(&h), 0);
    cr_assert_null(history_last(&h));
    history_fini(&h);
}
