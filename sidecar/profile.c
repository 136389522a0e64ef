/* sidecar/profile.c - one captured profile in memory; see profile.h.
 *
 * Interning: frames by address, stacks by their frame list, threads by tid.
 * Each table is an open-addressing array of ids (0 marks an empty slot) that
 * doubles when half full, so probes stay short; the entries themselves live
 * in the profile's arrays, and the tables only point into them. The tables,
 * the capacities of the arrays and the per-frame label cache make up struct
 * profile_index, which profile->index points to.
 *
 * Strings are cleaned when they come in (invalid UTF-8 and control bytes
 * become '?'), so every writer can put them into XML, JSON or protobuf. */
#include "profile.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct idtab {
    uint32_t *slot; /* ids, 0 = empty; owned */
    size_t cap;     /* 0 or a power of two */
    size_t used;
};

/* What a frame's name is. */
enum frame_naming {
    FRAME_UNNAMED,  /* function is NULL */
    FRAME_NAMED,    /* a real name from profile_name_frame */
    FRAME_LABELLED, /* only "module+0xoffset" */
};

struct profile_index {
    struct idtab frames, stacks, threads;
    size_t mappings_cap, frames_cap, stacks_cap, samples_cap, threads_cap, notes_cap;
    unsigned char *naming; /* owned: enum frame_naming per frame, by id - 1 */
    char **labels;         /* owned: per frame, the cached fallback name or NULL */
};

/* ---- strings ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one.
 * Surrogates, overlongs and U+FFFE/U+FFFF (not allowed in XML) are refused. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xef && s[1] == 0xbf && s[2] >= 0xbe)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

/* Clean s in place: invalid UTF-8 and control characters become '?'. A
 * NUL-terminated string ends any sequence early, so utf8_seq never reads
 * past the terminator (a NUL fails every continuation test). */
void profile_text_clean(char *s)
{
    unsigned char *u = (unsigned char *)s;
    while (*u) {
        size_t n = utf8_seq(u);
        if (n == 0 || (n == 1 && (*u < 0x20 || *u == 0x7f))) {
            *u++ = '?';
            continue;
        }
        u += n;
    }
}

static char *text_dup(const char *s)
{
    char *d = xstrdup(s);
    profile_text_clean(d);
    return d;
}

/* Copy s into dst[len], cleaned, cut at a character boundary. */
static void text_copy(char *dst, size_t len, const char *s)
{
    char *c = text_dup(s);
    size_t n = 0;
    while (c[n]) {
        size_t k = utf8_seq((const unsigned char *)c + n);
        if (n + k >= len)
            break;
        n += k;
    }
    memcpy(dst, c, n);
    dst[n] = '\0';
    free(c);
}

/* ---- hashing and the id tables ------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_ids(const uint32_t *ids, uint32_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    for (uint32_t i = 0; i < n; i++)
        h = mix64(h ^ ids[i]);
    return h;
}

/* The tables' callbacks get the table owner as ctx (a profile, or the
 * function table of top_functions) and an id in it. */
static uint64_t hash_frame(const void *ctx, uint32_t id)
{
    const struct profile *p = ctx;
    return mix64(p->frames[id - 1].addr);
}

static uint64_t hash_stack(const void *ctx, uint32_t id)
{
    const struct profile *p = ctx;
    const struct prof_stack *s = &p->stacks[id - 1];
    return hash_ids(s->frames, s->nframes);
}

static uint64_t hash_thread(const void *ctx, uint32_t id)
{
    const struct profile *p = ctx;
    return mix64((uint64_t)(uint32_t)p->threads[id - 1].tid);
}

/* The slot holding an id for which eq(ctx, id, key) holds, or the empty
 * slot where it would go. t->cap must be non-zero. */
static uint32_t *idtab_slot(const struct idtab *t, uint64_t h, const void *ctx,
                            bool (*eq)(const void *, uint32_t, const void *), const void *key)
{
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (t->slot[i] == 0 || eq(ctx, t->slot[i], key))
            return &t->slot[i];
    }
}

/* Make room for one more id, rehashing every id with hash(). */
static void idtab_reserve(struct idtab *t, const void *ctx,
                          uint64_t (*hash)(const void *, uint32_t))
{
    if ((t->used + 1) * 2 <= t->cap)
        return;
    size_t cap = t->cap ? t->cap * 2 : 64;
    uint32_t *slot = xcalloc(cap, sizeof *slot);
    for (size_t i = 0; i < t->cap; i++) {
        uint32_t id = t->slot[i];
        if (id == 0)
            continue;
        size_t j = hash(ctx, id) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = id;
    }
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
}

static void idtab_fini(struct idtab *t)
{
    free(t->slot);
    t->slot = NULL;
    t->cap = t->used = 0;
}

static bool frame_eq(const void *ctx, uint32_t id, const void *key)
{
    const struct profile *p = ctx;
    return p->frames[id - 1].addr == *(const uint64_t *)key;
}

struct stack_key {
    const uint32_t *ids;
    uint32_t n;
};

static bool stack_eq(const void *ctx, uint32_t id, const void *key)
{
    const struct profile *p = ctx;
    const struct stack_key *k = key;
    const struct prof_stack *s = &p->stacks[id - 1];
    return s->nframes == k->n && (k->n == 0 || !memcmp(s->frames, k->ids, k->n * sizeof *k->ids));
}

static bool thread_eq(const void *ctx, uint32_t id, const void *key)
{
    const struct profile *p = ctx;
    return p->threads[id - 1].tid == *(const int32_t *)key;
}

/* Grow an array of elements of size sz so that it holds at least n + 1. */
static void *grow(void *arr, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return arr;
    *cap = *cap ? *cap * 2 : 16;
    return xreallocarray(arr, *cap, sz);
}

static struct profile_index *idx(const struct profile *p)
{
    return p->index;
}

/* ---- lifecycle ---------------------------------------------------------- */

struct profile *profile_new(enum profile_type type, unsigned rate_hz)
{
    struct profile *p = xcalloc(1, sizeof *p);
    p->type = type;
    p->rate_hz = rate_hz;
    p->period_ns = rate_hz ? 1000000000LL / rate_hz : 0;
    p->index = xcalloc(1, sizeof(struct profile_index));
    return p;
}

static void drop_labels(struct profile *p)
{
    struct profile_index *x = idx(p);
    for (uint32_t i = 0; x->labels && i < p->nframes; i++) {
        free(x->labels[i]);
        x->labels[i] = NULL;
    }
}

void profile_free(struct profile *p)
{
    if (!p)
        return;
    struct profile_index *x = idx(p);
    drop_labels(p);
    free(x->labels);
    free(x->naming);
    idtab_fini(&x->frames);
    idtab_fini(&x->stacks);
    idtab_fini(&x->threads);
    free(x);
    for (uint32_t i = 0; i < p->nmappings; i++)
        free(p->mappings[i].file);
    free(p->mappings);
    for (uint32_t i = 0; i < p->nframes; i++) {
        free(p->frames[i].function);
        free(p->frames[i].file);
    }
    free(p->frames);
    for (uint32_t i = 0; i < p->nstacks; i++)
        free(p->stacks[i].frames);
    free(p->stacks);
    free(p->samples);
    free(p->threads);
    if (p->mem) {
        for (size_t i = 0; i < p->mem->nchanges; i++)
            free(p->mem->changes[i].path);
        free(p->mem->changes);
        free(p->mem);
    }
    for (size_t i = 0; i < p->nnotes; i++)
        free(p->notes[i]);
    free(p->notes);
    free(p);
}

/* ---- mappings ----------------------------------------------------------- */

static void copy_build_id(char dst[129], const char *src)
{
    size_t n = 0;
    for (; src && src[n] && n < 128; n++) {
        char c = src[n];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            n = 0; /* not hex: unknown rather than wrong */
            break;
        }
        dst[n] = c;
    }
    dst[n] = '\0';
}

uint32_t profile_add_mapping(struct profile *p, uint64_t start, uint64_t limit, uint64_t offset,
                             const char *file, const char *build_id)
{
    struct profile_index *x = idx(p);
    char *clean = text_dup(file ? file : "");
    /* A second snapshot of the same maps adds nothing new. */
    for (uint32_t i = 0; i < p->nmappings; i++) {
        struct prof_mapping *m = &p->mappings[i];
        if (m->start == start && m->limit == limit && m->offset == offset &&
            !strcmp(m->file, clean)) {
            if (!m->build_id[0])
                copy_build_id(m->build_id, build_id);
            free(clean);
            return i + 1;
        }
    }
    p->mappings = grow(p->mappings, &x->mappings_cap, p->nmappings, sizeof *p->mappings);
    struct prof_mapping *m = &p->mappings[p->nmappings++];
    memset(m, 0, sizeof *m);
    m->start = start;
    m->limit = limit;
    m->offset = offset;
    m->file = clean;
    copy_build_id(m->build_id, build_id);
    uint32_t id = p->nmappings;
    /* Frames seen before their mapping was known belong to it now; their
     * cached labels ("0xaddr") are stale. */
    for (uint32_t i = 0; i < p->nframes; i++) {
        if (p->frames[i].mapping == 0 && start <= p->frames[i].addr && p->frames[i].addr < limit)
            p->frames[i].mapping = id;
    }
    drop_labels(p);
    return id;
}

uint32_t profile_find_mapping(const struct profile *p, uint64_t addr)
{
    /* Latest first: after dlclose and dlopen, the newer object wins. */
    for (uint32_t i = p->nmappings; i > 0; i--) {
        const struct prof_mapping *m = &p->mappings[i - 1];
        if (m->start <= addr && addr < m->limit)
            return i;
    }
    return 0;
}

/* ---- samples ------------------------------------------------------------ */

static uint32_t intern_frame(struct profile *p, uint64_t addr)
{
    struct profile_index *x = idx(p);
    idtab_reserve(&x->frames, p, hash_frame);
    uint32_t *slot = idtab_slot(&x->frames, mix64(addr), p, frame_eq, &addr);
    if (*slot)
        return *slot;
    size_t cap = x->frames_cap;
    p->frames = grow(p->frames, &x->frames_cap, p->nframes, sizeof *p->frames);
    if (cap != x->frames_cap) {
        x->naming = xreallocarray(x->naming, x->frames_cap, sizeof *x->naming);
        x->labels = xreallocarray(x->labels, x->frames_cap, sizeof *x->labels);
    }
    struct prof_frame *f = &p->frames[p->nframes];
    memset(f, 0, sizeof *f);
    f->addr = addr;
    f->mapping = profile_find_mapping(p, addr);
    x->naming[p->nframes] = FRAME_UNNAMED;
    x->labels[p->nframes] = NULL;
    *slot = ++p->nframes;
    x->frames.used++;
    return *slot;
}

static uint32_t intern_stack(struct profile *p, const uint32_t *ids, uint32_t n)
{
    struct profile_index *x = idx(p);
    struct stack_key key = {ids, n};
    idtab_reserve(&x->stacks, p, hash_stack);
    uint32_t *slot = idtab_slot(&x->stacks, hash_ids(ids, n), p, stack_eq, &key);
    if (*slot)
        return *slot;
    p->stacks = grow(p->stacks, &x->stacks_cap, p->nstacks, sizeof *p->stacks);
    struct prof_stack *s = &p->stacks[p->nstacks];
    memset(s, 0, sizeof *s);
    if (n) {
        s->frames = xreallocarray(NULL, n, sizeof *s->frames);
        memcpy(s->frames, ids, n * sizeof *ids);
    }
    s->nframes = n;
    *slot = ++p->nstacks;
    x->stacks.used++;
    return *slot;
}

static struct prof_thread *intern_thread(struct profile *p, int32_t tid)
{
    struct profile_index *x = idx(p);
    idtab_reserve(&x->threads, p, hash_thread);
    uint32_t *slot = idtab_slot(&x->threads, mix64((uint64_t)(uint32_t)tid), p, thread_eq, &tid);
    if (*slot)
        return &p->threads[*slot - 1];
    p->threads = grow(p->threads, &x->threads_cap, p->nthreads, sizeof *p->threads);
    struct prof_thread *t = &p->threads[p->nthreads];
    memset(t, 0, sizeof *t);
    t->tid = tid;
    *slot = ++p->nthreads;
    x->threads.used++;
    return t;
}

void profile_add_sample(struct profile *p, const uint64_t *ips, uint32_t n, int32_t tid,
                        int64_t t_ns, uint64_t value)
{
    struct profile_index *x = idx(p);
    uint32_t local[256];
    uint32_t *ids = n <= 256 ? local : xreallocarray(NULL, n, sizeof *ids);
    for (uint32_t i = 0; i < n; i++)
        ids[i] = intern_frame(p, ips[i]);
    uint32_t sid = intern_stack(p, ids, n);
    if (ids != local)
        free(ids);

    struct prof_stack *s = &p->stacks[sid - 1];
    bool mem = p->type == PROFILE_TYPE_MEMORY;
    s->count++;
    s->value += value;
    if (mem && value > 0) {
        s->inuse += value;
        s->inuse_count++;
    }
    intern_thread(p, tid)->samples++;
    if (n == 0)
        p->failed_unwinds++;

    p->samples = grow(p->samples, &x->samples_cap, p->nsamples, sizeof *p->samples);
    p->samples[p->nsamples++] = (struct prof_sample){
        .stack = sid, .tid = tid, .t_ns = t_ns, .value = value, .inuse = mem ? value : 0};
}

void profile_set_inuse(struct profile *p, size_t i, uint64_t inuse)
{
    if (i >= p->nsamples || p->type != PROFILE_TYPE_MEMORY)
        return;
    struct prof_sample *smp = &p->samples[i];
    struct prof_stack *s = &p->stacks[smp->stack - 1];
    if (inuse > smp->value)
        inuse = smp->value;
    s->inuse -= smp->inuse;
    s->inuse_count -= smp->inuse > 0;
    smp->inuse = inuse;
    s->inuse += inuse;
    s->inuse_count += inuse > 0;
}

struct prof_memory *profile_memory(struct profile *p)
{
    if (!p->mem)
        p->mem = xcalloc(1, sizeof *p->mem);
    return p->mem;
}

void profile_add_map_change(struct profile *p, const struct prof_map_change *c)
{
    struct prof_memory *m = profile_memory(p);
    m->changes = xreallocarray(m->changes, m->nchanges + 1, sizeof *m->changes);
    struct prof_map_change *d = &m->changes[m->nchanges++];
    *d = *c;
    text_copy(d->kind, sizeof d->kind, c->kind);
    d->path = xstrdup(c->path ? c->path : "");
    profile_text_clean(d->path);
}

void profile_thread_name(struct profile *p, int32_t tid, const char *name)
{
    struct prof_thread *t = intern_thread(p, tid);
    text_copy(t->name, sizeof t->name, name ? name : "");
}

/* ---- names -------------------------------------------------------------- */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

/* The "module+0xoffset" label of a frame, or "0xaddr" outside every
 * mapping; a new string. */
static char *frame_label(const struct profile *p, const struct prof_frame *f)
{
    uint32_t mid = f->mapping ? f->mapping : profile_find_mapping(p, f->addr);
    if (mid == 0)
        return xasprintf("0x%llx", (unsigned long long)f->addr);
    const struct prof_mapping *m = &p->mappings[mid - 1];
    const char *mod = m->file[0] ? base_name(m->file) : "[anon]";
    return xasprintf("%s+0x%llx", mod, (unsigned long long)(f->addr - m->start + m->offset));
}

void profile_name_frame(struct profile *p, uint32_t frame, const char *function, const char *file,
                        int line)
{
    if (frame == 0 || frame > p->nframes || !function)
        return;
    struct profile_index *x = idx(p);
    struct prof_frame *f = &p->frames[frame - 1];
    free(f->function);
    free(f->file);
    f->function = text_dup(function);
    f->file = file ? text_dup(file) : NULL;
    f->line = line > 0 ? line : 0;
    if (f->mapping == 0)
        f->mapping = profile_find_mapping(p, f->addr);

    /* A symbolizer that writes the label itself has not named the frame. */
    char *label = frame_label(p, f);
    bool real = strcmp(label, f->function) != 0;
    free(label);
    x->naming[frame - 1] = real ? FRAME_NAMED : FRAME_LABELLED;
    if (real && f->mapping)
        p->mappings[f->mapping - 1].has_functions = true;
}

void profile_name_unknown(struct profile *p)
{
    struct profile_index *x = idx(p);
    for (uint32_t i = 0; i < p->nframes; i++) {
        struct prof_frame *f = &p->frames[i];
        if (f->function)
            continue;
        if (f->mapping == 0)
            f->mapping = profile_find_mapping(p, f->addr);
        f->function = frame_label(p, f);
        x->naming[i] = FRAME_LABELLED;
    }
}

const char *profile_frame_name(const struct profile *p, uint32_t frame)
{
    if (frame == 0 || frame > p->nframes)
        return "?";
    const struct prof_frame *f = &p->frames[frame - 1];
    if (f->function)
        return f->function;
    struct profile_index *x = idx(p);
    if (!x->labels[frame - 1])
        x->labels[frame - 1] = frame_label(p, f);
    return x->labels[frame - 1];
}

bool profile_frame_named(const struct profile *p, uint32_t frame)
{
    return frame >= 1 && frame <= p->nframes && idx(p)->naming[frame - 1] == FRAME_NAMED;
}

void profile_note(struct profile *p, const char *fmt, ...)
{
    struct profile_index *x = idx(p);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    profile_text_clean(s);
    p->notes = grow(p->notes, &x->notes_cap, p->nnotes, sizeof *p->notes);
    p->notes[p->nnotes++] = s;
}

/* ---- totals and top functions ------------------------------------------- */

uint64_t profile_total_value(const struct profile *p)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < p->nstacks; i++)
        v += p->stacks[i].value;
    return v;
}

uint64_t profile_total_count(const struct profile *p)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < p->nstacks; i++)
        v += p->stacks[i].count;
    return v;
}

bool profile_in_bytes(const struct profile *p)
{
    return p->type == PROFILE_TYPE_MEMORY;
}

uint64_t profile_stack_weight(const struct profile *p, uint32_t i)
{
    const struct prof_stack *s = &p->stacks[i];
    if (!profile_in_bytes(p))
        return s->count;
    return p->gross ? s->value : s->inuse;
}

uint64_t profile_sample_weight(const struct profile *p, size_t i)
{
    const struct prof_sample *s = &p->samples[i];
    if (!profile_in_bytes(p))
        return 1;
    return p->gross ? s->value : s->inuse;
}

uint64_t profile_total_weight(const struct profile *p)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < p->nstacks; i++)
        v += profile_stack_weight(p, i);
    return v;
}

/* One function's accumulator; functions are told apart by name. */
struct func_acc {
    const char *name;
    uint64_t self, total;
    uint32_t last_stack; /* the stack that last added to total */
};

struct func_tab {
    struct func_acc *acc;
    size_t n, cap;
    struct idtab tab;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static bool func_eq(const void *ctx, uint32_t id, const void *key)
{
    const struct func_tab *ft = ctx;
    return !strcmp(ft->acc[id - 1].name, key);
}

static uint64_t func_hash(const void *ctx, uint32_t id)
{
    const struct func_tab *ft = ctx;
    return hash_str(ft->acc[id - 1].name);
}

static struct func_acc *func_get(struct func_tab *ft, const char *name)
{
    idtab_reserve(&ft->tab, ft, func_hash);
    uint32_t *slot = idtab_slot(&ft->tab, hash_str(name), ft, func_eq, name);
    if (*slot)
        return &ft->acc[*slot - 1];
    ft->acc = grow(ft->acc, &ft->cap, ft->n, sizeof *ft->acc);
    ft->acc[ft->n] = (struct func_acc){.name = name};
    *slot = (uint32_t)++ft->n;
    ft->tab.used++;
    return &ft->acc[ft->n - 1];
}

static int share_cmp(const void *a, const void *b)
{
    const struct prof_func_share *x = a, *y = b;
    if (x->self_count != y->self_count)
        return x->self_count < y->self_count ? 1 : -1;
    if (x->total_count != y->total_count)
        return x->total_count < y->total_count ? 1 : -1;
    return strcmp(x->function, y->function);
}

static size_t top_functions(const struct profile *p, bool by_value, struct prof_func_share *out,
                            size_t max)
{
    uint64_t all = by_value ? profile_total_weight(p) : profile_total_count(p);
    if (all == 0 || max == 0)
        return 0;
    struct func_tab ft = {0};
    for (uint32_t si = 0; si < p->nstacks; si++) {
        const struct prof_stack *s = &p->stacks[si];
        uint64_t w = by_value ? profile_stack_weight(p, si) : s->count;
        if (w == 0)
            continue;
        if (s->nframes == 0) {
            struct func_acc *a = func_get(&ft, PROFILE_NO_STACK);
            a->self += w;
            a->total += w;
            continue;
        }
        for (uint32_t k = 0; k < s->nframes; k++) {
            struct func_acc *a = func_get(&ft, profile_frame_name(p, s->frames[k]));
            if (k == 0)
                a->self += w;
            /* Recursion: a function counts once per stack in total. */
            if (a->last_stack != si + 1) {
                a->total += w;
                a->last_stack = si + 1;
            }
        }
    }
    struct prof_func_share *all_shares = xreallocarray(NULL, ft.n, sizeof *all_shares);
    for (size_t i = 0; i < ft.n; i++) {
        all_shares[i] = (struct prof_func_share){
            .function = ft.acc[i].name,
            .self = (double)ft.acc[i].self / (double)all,
            .total = (double)ft.acc[i].total / (double)all,
            .self_count = ft.acc[i].self,
            .total_count = ft.acc[i].total,
        };
    }
    qsort(all_shares, ft.n, sizeof *all_shares, share_cmp);
    size_t n = ft.n < max ? ft.n : max;
    memcpy(out, all_shares, n * sizeof *out);
    free(all_shares);
    free(ft.acc);
    idtab_fini(&ft.tab);
    return n;
}

size_t profile_top_functions(const struct profile *p, struct prof_func_share *out, size_t max)
{
    return top_functions(p, false, out, max);
}

size_t profile_top_functions_by_value(const struct profile *p, struct prof_func_share *out,
                                      size_t max)
{
    return top_functions(p, true, out, max);
}
