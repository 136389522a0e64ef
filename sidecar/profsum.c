/* sidecar/profsum.c - a profile's summary as JSON; see profsum.h. */
#include "profsum.h"
#include "xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(enum profile_type t)
{
    switch (t) {
    case PROFILE_TYPE_CPU: return "cpu";
    case PROFILE_TYPE_WALL: return "wall";
    case PROFILE_TYPE_MEMORY: return "memory";
    }
    return "unknown";
}

/* A share 0..1 as a percentage rounded to hundredths. */
static json_t *percent(double share)
{
    return json_real(round(share * 10000.0) / 100.0);
}

static json_t *u64(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *clean_string(const char *s)
{
    char *c = xstrdup(s);
    profile_text_clean(c);
    json_t *j = json_string(c);
    free(c);
    return j;
}

static int thread_cmp(const void *a, const void *b)
{
    const struct prof_thread *x = *(const struct prof_thread *const *)a;
    const struct prof_thread *y = *(const struct prof_thread *const *)b;
    if (x->samples != y->samples)
        return x->samples < y->samples ? 1 : -1;
    return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static json_t *threads_json(const struct profile *p, uint64_t all, size_t top_n)
{
    const struct prof_thread **t = xcalloc(p->nthreads, sizeof *t);
    for (uint32_t i = 0; i < p->nthreads; i++)
        t[i] = &p->threads[i];
    qsort(t, p->nthreads, sizeof *t, thread_cmp);
    json_t *arr = json_array();
    for (uint32_t i = 0; i < p->nthreads && i < top_n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "tid", json_integer(t[i]->tid));
        json_object_set_new(o, "name", clean_string(t[i]->name));
        json_object_set_new(o, "samples", u64(t[i]->samples));
        json_object_set_new(o, "percent",
                            percent(all ? (double)t[i]->samples / (double)all : 0));
        json_array_append_new(arr, o);
    }
    free(t);
    return arr;
}

static int by_total_cmp(const void *a, const void *b)
{
    const struct prof_func_share *x = a, *y = b;
    if (x->total_count != y->total_count)
        return x->total_count < y->total_count ? 1 : -1;
    if (x->self_count != y->self_count)
        return x->self_count < y->self_count ? 1 : -1;
    return strcmp(x->function, y->function);
}

static json_t *functions_json(const struct prof_func_share *f, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(f[i].function));
        json_object_set_new(o, "self_percent", percent(f[i].self));
        json_object_set_new(o, "total_percent", percent(f[i].total));
        json_object_set_new(o, "self", u64(f[i].self_count));
        json_object_set_new(o, "total", u64(f[i].total_count));
        json_array_append_new(arr, o);
    }
    return arr;
}

json_t *profsum_json(const struct profile *p, size_t top_n)
{
    bool bytes = profile_in_bytes(p);
    uint64_t count = profile_total_count(p), value = profile_total_value(p);
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type_name(p->type)));
    json_object_set_new(o, "pid", json_integer(p->pid));
    json_object_set_new(o, "comm", clean_string(p->comm));
    json_object_set_new(o, "duration_ns", json_integer(p->duration_ns));

    json_t *rate = json_object();
    json_object_set_new(rate, "asked", json_integer(p->rate_hz));
    json_object_set_new(rate, "achieved", json_real(round(p->rate_achieved_hz * 100.0) / 100.0));
    json_object_set_new(o, "rate_hz", rate);

    json_object_set_new(o, "unit", json_string(bytes ? "bytes" : "samples"));
    json_object_set_new(o, "samples", u64(count));
    json_object_set_new(o, "total", u64(value));
    json_object_set_new(o, "idle_samples", u64(p->idle_samples));
    json_object_set_new(o, "failed_unwinds", u64(p->failed_unwinds));
    json_object_set_new(o, "threads_skipped", json_integer(p->threads_skipped));
    json_object_set_new(o, "stopped_ns", json_integer(p->stopped_ns));
    double stopped = p->duration_ns > 0 ? (double)p->stopped_ns / (double)p->duration_ns : 0;
    json_object_set_new(o, "stopped_share", json_real(round(stopped * 1e6) / 1e6));

    json_object_set_new(o, "threads", threads_json(p, count, top_n));

    /* Every function, so the second list can be sorted by total. */
    size_t max = (size_t)p->nframes + 1;
    struct prof_func_share *f = xcalloc(max, sizeof *f);
    size_t n = bytes ? profile_top_functions_by_value(p, f, max)
                     : profile_top_functions(p, f, max);
    json_object_set_new(o, "top_self", functions_json(f, n < top_n ? n : top_n));
    qsort(f, n, sizeof *f, by_total_cmp);
    json_object_set_new(o, "top_total", functions_json(f, n < top_n ? n : top_n));
    free(f);

    json_t *notes = json_array();
    for (size_t i = 0; i < p->nnotes; i++)
        json_array_append_new(notes, json_string(p->notes[i]));
    json_object_set_new(o, "notes", notes);
    json_object_set_new(o, "aborted", json_boolean(p->aborted));
    return o;
}
