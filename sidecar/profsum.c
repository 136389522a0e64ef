/* sidecar/profsum.c - a profile's summary as JSON; see profsum.h. */
#include "profsum.h"
#include "xalloc.h"

#include <math.h>
#include <stdio.h>
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

struct stack_ref {
    uint64_t weight;
    uint32_t idx;
};

static int stack_ref_cmp(const void *a, const void *b)
{
    const struct stack_ref *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight < y->weight ? 1 : -1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Memory: the stacks that hold the most bytes (grew the most with
 * p->gross), leaf first, up to PROFSUM_STACK_FRAMES frames each. */
static json_t *top_stacks_json(const struct profile *p, size_t top_n)
{
    json_t *a = json_array();
    uint64_t all = profile_total_weight(p);
    struct stack_ref *order = xcalloc(p->nstacks ? p->nstacks : 1, sizeof *order);
    for (uint32_t i = 0; i < p->nstacks; i++)
        order[i] = (struct stack_ref){profile_stack_weight(p, i), i};
    qsort(order, p->nstacks, sizeof *order, stack_ref_cmp);
    for (uint32_t i = 0; i < p->nstacks && i < top_n && order[i].weight; i++) {
        const struct prof_stack *s = &p->stacks[order[i].idx];
        json_t *o = json_object(), *frames = json_array();
        json_object_set_new(o, "bytes", u64(s->inuse));
        json_object_set_new(o, "gross_bytes", u64(s->value));
        json_object_set_new(o, "share",
                            json_real(all ? round((double)order[i].weight / (double)all * 1e4) / 1e4
                                          : 0));
        json_object_set_new(o, "samples", u64(s->count));
        for (uint32_t k = 0; k < s->nframes && k < PROFSUM_STACK_FRAMES; k++)
            json_array_append_new(frames, clean_string(profile_frame_name(p, s->frames[k])));
        if (s->nframes == 0)
            json_array_append_new(frames, json_string(PROFILE_NO_STACK));
        json_object_set_new(o, "frames", frames);
        json_array_append_new(a, o);
    }
    free(order);
    return a;
}

/* Memory: how the calls were seen, and what the mappings did. */
static json_t *memory_json(const struct profile *p)
{
    const struct prof_memory *m = p->mem;
    json_t *o = json_object();
    json_object_set_new(o, "method", json_string(m->method));
    json_object_set_new(o, "weighed_by", json_string(p->gross ? "gross" : "net"));
    json_object_set_new(o, "held_counts", json_string(m->resident ? "resident" : "mapped"));
    json_object_set_new(o, "calls", u64(m->calls));
    json_object_set_new(o, "lost_calls", u64(m->lost));
    json_object_set_new(o, "stopped_share", json_real(round(m->stopped_share * 1e6) / 1e6));
    json_object_set_new(o, "stack_bytes_copied", u64(m->stack_bytes));
    json_object_set_new(o, "bytes_grown", u64(m->charged));
    json_object_set_new(o, "bytes_given_back", u64(m->credited));
    json_object_set_new(o, "bytes_net", u64(m->charged - (m->credited < m->charged ? m->credited
                                                                                  : m->charged)));
    json_object_set_new(o, "bytes_released_from_before", u64(m->unseen_released));
    json_object_set_new(o, "rss_before", u64(m->rss_before));
    json_object_set_new(o, "rss_after", u64(m->rss_after));
    json_t *maps = json_array();
    for (size_t i = 0; i < m->nchanges; i++) {
        const struct prof_map_change *c = &m->changes[i];
        json_t *x = json_object();
        json_object_set_new(x, "kind", json_string(c->kind));
        json_object_set_new(x, "path", clean_string(c->path));
        char start[32];
        snprintf(start, sizeof start, "0x%llx", (unsigned long long)c->start);
        json_object_set_new(x, "start", json_string(start));
        json_object_set_new(x, "size_before", u64(c->size_before));
        json_object_set_new(x, "size_after", u64(c->size_after));
        json_object_set_new(x, "rss_before", u64(c->rss_before));
        json_object_set_new(x, "rss_after", u64(c->rss_after));
        json_object_set_new(x, "rss_growth",
                            json_integer((json_int_t)c->rss_after - (json_int_t)c->rss_before));
        json_array_append_new(maps, x);
    }
    json_object_set_new(o, "mappings", maps);
    json_object_set_new(o, "mappings_omitted", u64(m->changes_omitted));
    json_object_set_new(o, "mappings_omitted_rss_growth", json_integer(m->changes_omitted_rss));
    return o;
}

json_t *profsum_json(const struct profile *p, size_t top_n)
{
    bool bytes = profile_in_bytes(p);
    uint64_t count = profile_total_count(p);
    uint64_t value = bytes ? profile_total_weight(p) : profile_total_value(p);
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
    if (bytes) {
        json_object_set_new(o, "top_stacks", top_stacks_json(p, top_n));
        if (p->mem)
            json_object_set_new(o, "memory", memory_json(p));
    }
    return o;
}
