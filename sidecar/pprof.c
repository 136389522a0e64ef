/* sidecar/pprof.c - a profile as gzipped pprof protobuf; see pprof.h.
 *
 * The message is built in struct pprof_build: protobuf-c structs in arrays
 * allocated once per kind, a string table with a hash for interning, and a
 * hash from (name, file) to function id. Strings are copied into the table
 * (the profile stays const). Location ids are frame ids, so a stack's frame
 * list is its location list; the extra location for an empty stack, when
 * one is needed, takes id nframes + 1. Sample labels are shared: two Label
 * messages per thread, pointed to by all that thread's samples. */
#include "pprof.h"
#include "pprof.pb-c.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Label Label;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;

/* ---- a small map of 64-bit keys to non-zero 32-bit values --------------- */

struct u64map {
    uint64_t *key;
    uint32_t *val; /* 0 = empty slot */
    size_t cap, used;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static size_t u64map_probe(const struct u64map *m, uint64_t key)
{
    size_t mask = m->cap - 1, i = mix64(key) & mask;
    while (m->val[i] && m->key[i] != key)
        i = (i + 1) & mask;
    return i;
}

static uint32_t u64map_get(const struct u64map *m, uint64_t key)
{
    return m->cap ? m->val[u64map_probe(m, key)] : 0;
}

static void u64map_put(struct u64map *m, uint64_t key, uint32_t val)
{
    if ((m->used + 1) * 2 > m->cap) {
        struct u64map n = {.cap = m->cap ? m->cap * 2 : 256};
        n.key = xcalloc(n.cap, sizeof *n.key);
        n.val = xcalloc(n.cap, sizeof *n.val);
        for (size_t i = 0; i < m->cap; i++) {
            if (m->val[i]) {
                size_t j = u64map_probe(&n, m->key[i]);
                n.key[j] = m->key[i];
                n.val[j] = m->val[i];
            }
        }
        n.used = m->used;
        free(m->key);
        free(m->val);
        *m = n;
    }
    size_t i = u64map_probe(m, key);
    if (!m->val[i])
        m->used++;
    m->key[i] = key;
    m->val[i] = val;
}

static void u64map_fini(struct u64map *m)
{
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

/* ---- the string table ---------------------------------------------------- */

struct strtab {
    char **s;           /* owned strings; s[0] is "" */
    size_t n, cap;
    struct u64map hash; /* string hash -> index + 1, first of a chain */
    uint32_t *next;     /* per index: next index + 1 with the same hash, 0 ends */
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static int64_t str_id(struct strtab *t, const char *s)
{
    if (!s)
        s = "";
    uint64_t h = hash_str(s);
    uint32_t head = u64map_get(&t->hash, h);
    for (uint32_t i = head; i; i = t->next[i - 1]) {
        if (!strcmp(t->s[i - 1], s))
            return (int64_t)(i - 1);
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->s = xreallocarray(t->s, t->cap, sizeof *t->s);
        t->next = xreallocarray(t->next, t->cap, sizeof *t->next);
    }
    t->s[t->n] = xstrdup(s);
    t->next[t->n] = head;
    t->n++;
    u64map_put(&t->hash, h, (uint32_t)t->n);
    return (int64_t)(t->n - 1);
}

static void strtab_fini(struct strtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->s[i]);
    free(t->s);
    free(t->next);
    u64map_fini(&t->hash);
    memset(t, 0, sizeof *t);
}

/* ---- building the message ------------------------------------------------ */

#define PPROF_MAX_VALUES 4

struct pprof_build {
    Profile msg;
    struct strtab st;
    ValueType types[PPROF_MAX_VALUES], period_type;
    ValueType *typep[PPROF_MAX_VALUES];
    size_t nvalues;         /* per sample: 2, or 4 for memory */
    Mapping *maps;
    Mapping **mapp;
    Function *funcs;
    Function **funcp;
    size_t nfuncs;
    struct u64map func_ids; /* name index << 32 | file index -> function id */
    Location *locs;
    Location **locp;
    Line *lines;
    Line **linep;
    Sample *samples;
    Sample **samplep;
    uint64_t *locids;       /* every stack's frames as location ids, one run per stack */
    size_t *locrun;         /* per stack: start of its run in locids */
    int64_t *values;        /* nvalues per sample */
    Label *labels;          /* two per thread */
    Label **labelp;
    int64_t *comments;
};

/* Per-thread samples: raw samples merged by (tid, stack). */
struct thread_stack {
    int32_t tid;
    uint32_t stack;
    uint64_t count, value, inuse_count, inuse;
};

static int thread_stack_cmp(const void *a, const void *b)
{
    const struct thread_stack *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return x->stack < y->stack ? -1 : x->stack > y->stack;
}

/* CPU and wall: samples/count and cpu (wall)/nanoseconds. Memory, as Go's
 * heap profiles: alloc_objects/count and alloc_space/bytes (every growth
 * seen: gross), inuse_objects/count and inuse_space/bytes (what of it is
 * still held at the end: net), inuse_space shown by default. */
static void build_types(struct pprof_build *b, const struct profile *p)
{
    static const char *const names[3][PPROF_MAX_VALUES][2] = {
        [PROFILE_TYPE_CPU] = {{"samples", "count"}, {"cpu", "nanoseconds"}},
        [PROFILE_TYPE_WALL] = {{"samples", "count"}, {"wall", "nanoseconds"}},
        [PROFILE_TYPE_MEMORY] = {{"alloc_objects", "count"}, {"alloc_space", "bytes"},
                                 {"inuse_objects", "count"}, {"inuse_space", "bytes"}},
    };
    unsigned t = (unsigned)p->type < 3 ? (unsigned)p->type : PROFILE_TYPE_CPU;
    bool mem = p->type == PROFILE_TYPE_MEMORY;
    b->nvalues = mem ? 4 : 2;
    for (size_t i = 0; i < b->nvalues; i++) {
        perftools__profiles__value_type__init(&b->types[i]);
        b->typep[i] = &b->types[i];
        b->types[i].type = str_id(&b->st, names[t][i][0]);
        b->types[i].unit = str_id(&b->st, names[t][i][1]);
    }
    b->msg.n_sample_type = b->nvalues;
    b->msg.sample_type = b->typep;
    b->msg.default_sample_type = b->types[mem && !p->gross ? 3 : 1].type;

    perftools__profiles__value_type__init(&b->period_type);
    if (mem) {
        b->period_type.type = str_id(&b->st, "space");
        b->period_type.unit = str_id(&b->st, "bytes");
    } else {
        b->period_type = b->types[1];
        b->msg.period = p->period_ns;
    }
    b->msg.period_type = &b->period_type;
}

static void build_mappings(struct pprof_build *b, const struct profile *p)
{
    b->maps = xcalloc(p->nmappings, sizeof *b->maps);
    b->mapp = xcalloc(p->nmappings, sizeof *b->mapp);
    for (uint32_t i = 0; i < p->nmappings; i++) {
        const struct prof_mapping *pm = &p->mappings[i];
        Mapping *m = &b->maps[i];
        perftools__profiles__mapping__init(m);
        m->id = i + 1;
        m->memory_start = pm->start;
        m->memory_limit = pm->limit;
        m->file_offset = pm->offset;
        m->filename = str_id(&b->st, pm->file);
        m->build_id = str_id(&b->st, pm->build_id);
        m->has_functions = pm->has_functions;
        b->mapp[i] = m;
    }
    b->msg.n_mapping = p->nmappings;
    b->msg.mapping = b->mapp;
}

static uint64_t function_id(struct pprof_build *b, const char *name, const char *file)
{
    int64_t n = str_id(&b->st, name), f = str_id(&b->st, file);
    uint64_t key = (uint64_t)n << 32 | (uint64_t)f;
    uint32_t id = u64map_get(&b->func_ids, key);
    if (id)
        return id;
    Function *fn = &b->funcs[b->nfuncs];
    perftools__profiles__function__init(fn);
    fn->id = ++b->nfuncs;
    fn->name = n;
    fn->system_name = n;
    fn->filename = f;
    b->funcp[b->nfuncs - 1] = fn;
    u64map_put(&b->func_ids, key, (uint32_t)fn->id);
    return fn->id;
}

/* Locations and functions; returns the id of the location for an empty
 * stack (0 when no stack is empty). */
static uint64_t build_locations(struct pprof_build *b, const struct profile *p)
{
    bool empty_stack = false;
    for (uint32_t i = 0; i < p->nstacks; i++)
        empty_stack |= p->stacks[i].nframes == 0 && p->stacks[i].count > 0;
    size_t nlocs = p->nframes + (empty_stack ? 1 : 0);
    b->locs = xcalloc(nlocs, sizeof *b->locs);
    b->locp = xcalloc(nlocs, sizeof *b->locp);
    b->lines = xcalloc(nlocs, sizeof *b->lines);
    b->linep = xcalloc(nlocs, sizeof *b->linep);
    b->funcs = xcalloc(nlocs, sizeof *b->funcs);
    b->funcp = xcalloc(nlocs, sizeof *b->funcp);

    for (size_t i = 0; i < nlocs; i++) {
        Location *l = &b->locs[i];
        perftools__profiles__location__init(l);
        perftools__profiles__line__init(&b->lines[i]);
        b->linep[i] = &b->lines[i];
        l->id = i + 1;
        b->locp[i] = l;
        if (i == p->nframes) { /* the empty stack's location */
            b->lines[i].function_id = function_id(b, PROFILE_NO_STACK, NULL);
            l->n_line = 1;
            l->line = &b->linep[i];
            continue;
        }
        const struct prof_frame *f = &p->frames[i];
        l->address = f->addr;
        l->mapping_id = f->mapping <= p->nmappings ? f->mapping : 0;
        if (!profile_frame_named(p, (uint32_t)i + 1))
            continue; /* left for a symbolizer: mapping and address say where */
        b->lines[i].function_id = function_id(b, f->function, f->file);
        b->lines[i].line = f->line;
        l->n_line = 1;
        l->line = &b->linep[i];
        if (l->mapping_id) {
            Mapping *m = &b->maps[l->mapping_id - 1];
            m->has_filenames |= f->file != NULL;
            m->has_line_numbers |= f->line > 0;
        }
    }
    b->msg.n_location = nlocs;
    b->msg.location = b->locp;
    b->msg.n_function = b->nfuncs;
    b->msg.function = b->funcp;
    return empty_stack ? p->nframes + 1 : 0;
}

/* Every stack's location list, leaf first, in one array. */
static void build_stack_runs(struct pprof_build *b, const struct profile *p, uint64_t empty_loc)
{
    size_t total = 0;
    b->locrun = xcalloc(p->nstacks + 1, sizeof *b->locrun);
    for (uint32_t i = 0; i < p->nstacks; i++) {
        b->locrun[i] = total;
        total += p->stacks[i].nframes ? p->stacks[i].nframes : 1;
    }
    b->locrun[p->nstacks] = total;
    b->locids = xcalloc(total, sizeof *b->locids);
    for (uint32_t i = 0; i < p->nstacks; i++) {
        const struct prof_stack *s = &p->stacks[i];
        uint64_t *dst = &b->locids[b->locrun[i]];
        if (s->nframes == 0)
            dst[0] = empty_loc;
        for (uint32_t k = 0; k < s->nframes; k++)
            dst[k] = s->frames[k];
    }
}

static int64_t i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Sample i of stack, with the values of ts (tid unused). */
static void set_sample(struct pprof_build *b, size_t i, const struct thread_stack *ts)
{
    Sample *s = &b->samples[i];
    perftools__profiles__sample__init(s);
    s->n_location_id = b->locrun[ts->stack] - b->locrun[ts->stack - 1];
    s->location_id = &b->locids[b->locrun[ts->stack - 1]];
    int64_t *v = &b->values[b->nvalues * i];
    v[0] = i64(ts->count);
    v[1] = i64(ts->value);
    if (b->nvalues == 4) {
        v[2] = i64(ts->inuse_count);
        v[3] = i64(ts->inuse);
    }
    s->n_value = b->nvalues;
    s->value = v;
    b->samplep[i] = s;
}

static void build_samples(struct pprof_build *b, const struct profile *p)
{
    size_t n = 0;
    for (uint32_t i = 0; i < p->nstacks; i++)
        n += p->stacks[i].count > 0;
    b->samples = xcalloc(n, sizeof *b->samples);
    b->samplep = xcalloc(n, sizeof *b->samplep);
    b->values = xcalloc(b->nvalues * n, sizeof *b->values);
    n = 0;
    for (uint32_t i = 0; i < p->nstacks; i++) {
        const struct prof_stack *st = &p->stacks[i];
        if (st->count > 0) {
            struct thread_stack ts = {0, i + 1, st->count, st->value, st->inuse_count, st->inuse};
            set_sample(b, n, &ts);
            n++;
        }
    }
    b->msg.n_sample = n;
    b->msg.sample = b->samplep;
}

static void build_thread_samples(struct pprof_build *b, const struct profile *p)
{
    struct thread_stack *ts = xcalloc(p->nsamples, sizeof *ts);
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct prof_sample *smp = &p->samples[i];
        ts[i] = (struct thread_stack){smp->tid, smp->stack, 1, smp->value, smp->inuse > 0,
                                      smp->inuse};
    }
    qsort(ts, p->nsamples, sizeof *ts, thread_stack_cmp);
    size_t n = 0;
    for (size_t i = 0; i < p->nsamples; i++) {
        if (n && ts[n - 1].tid == ts[i].tid && ts[n - 1].stack == ts[i].stack) {
            ts[n - 1].count++;
            ts[n - 1].value += ts[i].value;
            ts[n - 1].inuse_count += ts[i].inuse_count;
            ts[n - 1].inuse += ts[i].inuse;
        } else {
            ts[n++] = ts[i];
        }
    }

    /* Two labels per thread; samples of a thread share them. */
    b->labels = xcalloc(2 * (size_t)p->nthreads + 2, sizeof *b->labels);
    b->labelp = xcalloc(2 * (size_t)p->nthreads + 2, sizeof *b->labelp);
    struct u64map thread_at = {0}; /* tid -> label pair index + 1 */
    for (uint32_t i = 0; i < p->nthreads; i++)
        u64map_put(&thread_at, (uint32_t)p->threads[i].tid, i + 1);
    int64_t k_id = str_id(&b->st, "thread_id"), k_name = str_id(&b->st, "thread_name");

    b->samples = xcalloc(n, sizeof *b->samples);
    b->samplep = xcalloc(n, sizeof *b->samplep);
    b->values = xcalloc(b->nvalues * n, sizeof *b->values);
    for (size_t i = 0; i < n; i++) {
        set_sample(b, i, &ts[i]);
        uint32_t at = u64map_get(&thread_at, (uint32_t)ts[i].tid);
        size_t pair = at ? at - 1 : p->nthreads; /* a sample always has its thread */
        Label *l = &b->labels[2 * pair];
        if (l->base.descriptor == NULL) {
            char tid[16];
            snprintf(tid, sizeof tid, "%d", (int)ts[i].tid);
            const char *name = at ? p->threads[at - 1].name : "";
            perftools__profiles__label__init(&l[0]);
            perftools__profiles__label__init(&l[1]);
            l[0].key = k_id;
            l[0].str = str_id(&b->st, tid);
            l[1].key = k_name;
            l[1].str = str_id(&b->st, name);
            b->labelp[2 * pair] = &l[0];
            b->labelp[2 * pair + 1] = &l[1];
        }
        Sample *s = &b->samples[i];
        s->n_label = b->labels[2 * pair + 1].str ? 2 : 1; /* no name: no thread_name */
        s->label = &b->labelp[2 * pair];
    }
    u64map_fini(&thread_at);
    free(ts);
    b->msg.n_sample = n;
    b->msg.sample = b->samplep;
}

static void build_fini(struct pprof_build *b)
{
    strtab_fini(&b->st);
    u64map_fini(&b->func_ids);
    free(b->maps);
    free(b->mapp);
    free(b->funcs);
    free(b->funcp);
    free(b->locs);
    free(b->locp);
    free(b->lines);
    free(b->linep);
    free(b->samples);
    free(b->samplep);
    free(b->locids);
    free(b->locrun);
    free(b->values);
    free(b->labels);
    free(b->labelp);
    free(b->comments);
}

uint8_t *pprof_encode(const struct profile *p, const struct pprof_opts *o, size_t *len)
{
    struct pprof_build b = {0};
    perftools__profiles__profile__init(&b.msg);
    str_id(&b.st, ""); /* string_table[0] must be "" */

    build_types(&b, p);
    build_mappings(&b, p);
    uint64_t empty_loc = build_locations(&b, p);
    build_stack_runs(&b, p, empty_loc);
    if (o && o->per_thread)
        build_thread_samples(&b, p);
    else
        build_samples(&b, p);

    b.comments = xcalloc(p->nnotes, sizeof *b.comments);
    for (size_t i = 0; i < p->nnotes; i++)
        b.comments[i] = str_id(&b.st, p->notes[i]);
    b.msg.n_comment = p->nnotes;
    b.msg.comment = b.comments;
    b.msg.time_nanos = p->start_wall_ns;
    b.msg.duration_nanos = p->duration_ns;

    /* Last: every string is in the table now. */
    b.msg.n_string_table = b.st.n;
    b.msg.string_table = b.st.s;

    size_t n = perftools__profiles__profile__get_packed_size(&b.msg);
    uint8_t *buf = xmalloc(n);
    size_t packed = perftools__profiles__profile__pack(&b.msg, buf);
    build_fini(&b);
    *len = packed;
    return buf;
}

/* ---- gzip ----------------------------------------------------------------- */

static int gzip_to(const uint8_t *data, size_t len, FILE *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer, not zlib's. */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -EIO;
    int rc = 0;
    unsigned char chunk[16384];
    z.next_in = (Bytef *)data;
    int flush = Z_NO_FLUSH;
    for (;;) {
        if (z.avail_in == 0) {
            size_t take = len > 1u << 30 ? 1u << 30 : len;
            z.avail_in = (uInt)take;
            len -= take;
            flush = len == 0 ? Z_FINISH : Z_NO_FLUSH;
        }
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        int zr = deflate(&z, flush);
        if (zr == Z_STREAM_ERROR) {
            rc = -EIO;
            break;
        }
        size_t have = sizeof chunk - z.avail_out;
        if (have && fwrite(chunk, 1, have, out) != have) {
            rc = -EIO;
            break;
        }
        if (zr == Z_STREAM_END)
            break;
    }
    deflateEnd(&z);
    if (rc == 0 && (fflush(out) == EOF || ferror(out)))
        rc = -EIO;
    return rc;
}

int pprof_write_opts(const struct profile *p, const struct pprof_opts *o, FILE *out)
{
    size_t len = 0;
    uint8_t *buf = pprof_encode(p, o, &len);
    int rc = gzip_to(buf, len, out);
    free(buf);
    return rc;
}

int pprof_write(const struct profile *p, FILE *out)
{
    return pprof_write_opts(p, NULL, out);
}

int pprof_write_file(const struct profile *p, const struct pprof_opts *o, const char *path,
                     char *err, size_t errlen)
{
    int rc = 0;
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = NULL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd == -1) {
        rc = -errno;
        if (err)
            snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
        goto out;
    }
    f = fdopen(fd, "wb");
    if (!f) {
        rc = -errno;
        close(fd);
        if (err)
            snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
        goto out_unlink;
    }
    rc = pprof_write_opts(p, o, f);
    if (rc == 0 && fsync(fileno(f)) == -1)
        rc = -errno;
    if (fclose(f) == EOF && rc == 0)
        rc = -errno;
    if (rc < 0) {
        if (err)
            snprintf(err, errlen, "%s: writing: %s", tmp, strerror(-rc));
        goto out_unlink;
    }
    if (rename(tmp, path) == -1) {
        rc = -errno;
        if (err)
            snprintf(err, errlen, "rename %s to %s: %s", tmp, path, strerror(-rc));
        goto out_unlink;
    }
    goto out;
out_unlink:
    unlink(tmp);
out:
    free(tmp);
    return rc;
}
