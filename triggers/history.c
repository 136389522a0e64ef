/* triggers/history.c - ring of samples and window statistics; see history.h. */
#include "history.h"

#include "xalloc.h"

#include <math.h>
#include <string.h>

void sample_init(struct sample *s, int64_t t_ns)
{
    s->t_ns = t_ns;
    for (int i = 0; i < METRIC_COUNT; i++)
        s->v[i] = NAN;
}

void history_init(struct history *h, size_t cap)
{
    if (cap < 2)
        cap = 2;
    h->ring = xcalloc(cap, sizeof *h->ring);
    h->scratch = xcalloc(cap, sizeof *h->scratch);
    h->cap = cap;
    h->head = 0;
    h->n = 0;
}

void history_fini(struct history *h)
{
    free(h->ring);
    free(h->scratch);
    memset(h, 0, sizeof *h);
}

void history_clear(struct history *h)
{
    h->head = 0;
    h->n = 0;
}

size_t history_len(const struct history *h)
{
    return h->n;
}

const struct sample *history_at(const struct history *h, size_t i)
{
    if (i >= h->n)
        return NULL;
    return &h->ring[(h->head + i) % h->cap];
}

const struct sample *history_last(const struct history *h)
{
    return h->n ? history_at(h, h->n - 1) : NULL;
}

void history_push(struct history *h, const struct sample *s)
{
    const struct sample *last = history_last(h);

    if (last && s->t_ns <= last->t_ns)
        return;
    if (h->n < h->cap) {
        h->ring[(h->head + h->n) % h->cap] = *s;
        h->n++;
    } else {
        h->ring[h->head] = *s;
        h->head = (h->head + 1) % h->cap;
    }
}

/* Index (from the oldest) of the first sample with t > since_ns: binary
 * search, since samples are in time order. */
static size_t first_after(const struct history *h, int64_t since_ns)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (history_at(h, mid)->t_ns > since_ns)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static size_t window_start(const struct history *h, int64_t now_ns, int64_t window_ns)
{
    return window_ns > 0 ? first_after(h, now_ns - window_ns) : 0;
}

/* Hoare-style quickselect: the k-th smallest of a[0..n). */
static float select_kth(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = a[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

double history_slope(const struct history *h, enum metric m, int64_t now_ns, int64_t window_ns,
                     int64_t *span_ns)
{
    size_t start = window_start(h, now_ns, window_ns);
    double n = 0, st = 0, sv = 0, stt = 0, stv = 0;
    int64_t t0 = 0, t1 = 0;

    for (size_t i = start; i < h->n; i++) {
        const struct sample *s = history_at(h, i);
        float v = s->v[m];
        if (isnan(v))
            continue;
        if (n == 0)
            t0 = s->t_ns; /* times relative to the first sample keep precision */
        t1 = s->t_ns;
        double t = (double)(s->t_ns - t0) / 1e9;
        n += 1;
        st += t;
        sv += v;
        stt += t * t;
        stv += t * v;
    }
    double den = n * stt - st * st;
    if (span_ns)
        *span_ns = t1 - t0;
    if (n < 2 || den <= 0)
        return NAN;
    return (n * stv - st * sv) / den;
}

size_t history_stats(struct history *h, enum metric m, int64_t now_ns, int64_t window_ns,
                     struct window_stats *out)
{
    size_t start = window_start(h, now_ns, window_ns);
    size_t n = 0;
    double sum = 0, sumsq = 0, mn = INFINITY, mx = -INFINITY, last = NAN;
    int64_t first_t = 0, last_t = 0;

    for (size_t i = start; i < h->n; i++) {
        const struct sample *s = history_at(h, i);
        float v = s->v[m];
        if (isnan(v))
            continue;
        if (n == 0)
            first_t = s->t_ns;
        last_t = s->t_ns;
        h->scratch[n++] = v;
        sum += v;
        sumsq += (double)v * v;
        if (v < mn)
            mn = v;
        if (v > mx)
            mx = v;
        last = v;
    }
    out->n = n;
    if (n == 0) {
        out->last = out->min = out->max = out->mean = out->std = out->median = NAN;
        out->slope_per_s = NAN;
        out->span_ns = 0;
        return 0;
    }
    out->last = last;
    out->min = mn;
    out->max = mx;
    out->mean = sum / (double)n;
    double var = sumsq / (double)n - out->mean * out->mean;
    out->std = var > 0 ? sqrt(var) : 0.0;
    if (n % 2)
        out->median = select_kth(h->scratch, n, n / 2);
    else
        out->median = 0.5 * ((double)select_kth(h->scratch, n, n / 2 - 1) +
                             (double)select_kth(h->scratch, n, n / 2));
    out->slope_per_s = history_slope(h, m, now_ns, window_ns, NULL);
    out->span_ns = last_t - first_t;
    return n;
}

size_t history_copy(const struct history *h, int64_t since_ns, struct sample *out, size_t max)
{
    size_t start = first_after(h, since_ns);
    size_t k = 0;
    for (size_t i = start; i < h->n && k < max; i++)
        out[k++] = *history_at(h, i);
    return k;
}
