/* sidecar/profile.h - one captured profile in memory: samples of stacks.
 *
 * Owns: everything reachable from struct profile (profile_free). Pure: no
 * I/O. The sampler adds raw samples (instruction addresses, leaf first, with
 * the thread and the time) while the target runs; names are attached after
 * the capture by the symbolizer, which never runs with the target stopped.
 * The raw samples are kept, so every output format (pprof, folded stacks,
 * flame graph, summary) can be rendered again later from the same profile.
 *
 * Identifiers are 1-based indices (0 means "none"), as in pprof. Frames are
 * interned by address; stacks by their frame list. */
#ifndef STAKEOUT_PROFILE_H
#define STAKEOUT_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum profile_type {
    PROFILE_TYPE_CPU,    /* samples of running threads: samples/count, cpu/nanoseconds */
    PROFILE_TYPE_WALL,   /* samples of every thread: samples/count, wall/nanoseconds */
    PROFILE_TYPE_MEMORY, /* allocation stacks: values in bytes */
};

struct prof_mapping {
    uint64_t start, limit, offset; /* address range in the target and file offset */
    char *file;                    /* owned: path as the target sees it */
    char build_id[129];            /* hex, "" when unknown */
    bool has_functions;            /* at least one frame in it got a name */
};

struct prof_frame {
    uint64_t addr;                 /* absolute address in the target */
    uint32_t mapping;              /* 0: not in a known mapping */
    char *function;                /* owned, NULL until named; "module+0xoff" when unknown */
    char *file;                    /* owned, may be NULL */
    int line;                      /* 0: unknown */
    bool inlined;
};

struct prof_stack {
    uint32_t *frames;              /* owned, leaf first */
    uint32_t nframes;
    uint64_t count;                /* samples with this stack */
    uint64_t value;                /* sum of their values (ns or bytes) */
    uint64_t inuse;                /* memory: sum of their inuse bytes */
    uint64_t inuse_count;          /* memory: samples with inuse bytes left */
};

struct prof_sample {
    uint32_t stack;
    int32_t tid;
    int64_t t_ns;                  /* monotonic time of the sample */
    uint64_t value;                /* ns of CPU/wall per sample, or bytes grown */
    uint64_t inuse;                /* memory: of those bytes, still held at the end (and
                                      resident, when prof_memory.resident says so) */
};

/* A mapping of the target that changed during a memory capture (smaps.h). */
struct prof_map_change {
    char kind[12];                 /* "heap", "anonymous", "stack", "file", "shared", ... */
    char *path;                    /* owned: "" for anonymous memory */
    uint64_t start;
    uint64_t size_before, size_after, rss_before, rss_after;
};

/* What a memory capture adds to a profile: how it saw the calls, and what
 * the mappings did meanwhile. */
struct prof_memory {
    char method[16];               /* "tracepoint" or "ptrace" */
    uint64_t rss_before, rss_after;     /* the whole process, bytes (smaps) */
    struct prof_map_change *changes;    /* owned: the largest changes, growth first */
    size_t nchanges;
    size_t changes_omitted;        /* further changed mappings not listed */
    int64_t changes_omitted_rss;   /* their resident bytes, net */
    uint64_t calls;                /* address-space calls seen */
    uint64_t lost;                 /* calls not seen: the kernel dropped their records */
    uint64_t charged, credited;    /* bytes grown by the calls seen; given back of those */
    uint64_t unseen_released;      /* bytes given back that grew before the capture */
    bool resident;                 /* held bytes count only pages resident at the end */
    uint64_t stack_bytes;          /* user stack copied for the calls that can grow memory
                                      (by the kernel in the target's context, for
                                      tracepoints: most of what a call costs it) */
    double stopped_share;          /* ptrace: the largest share of a governor window
                                      (memptrace.h) any thread of the target spent stopped;
                                      0 for tracepoints, which never stop it */
};

struct prof_thread {
    int32_t tid;
    char name[32];
    uint64_t samples;
};

struct profile {
    enum profile_type type;
    unsigned rate_hz;              /* asked for */
    double rate_achieved_hz;       /* samples per thread per second, on average */
    int64_t start_wall_ns, start_mono_ns, duration_ns;
    int64_t period_ns;             /* value of one sample (1e9 / rate) */
    int pid;
    char comm[64];

    struct prof_mapping *mappings; uint32_t nmappings;
    struct prof_frame *frames;     uint32_t nframes;
    struct prof_stack *stacks;     uint32_t nstacks;
    struct prof_sample *samples;   size_t nsamples;
    struct prof_thread *threads;   uint32_t nthreads;

    /* how the capture went: reported, never silent */
    uint64_t idle_samples;         /* cpu mode: ticks where a thread was not running */
    uint64_t failed_unwinds;       /* samples with no frame at all */
    int64_t stopped_ns;            /* total time target threads spent stopped */
    uint32_t threads_skipped;      /* could not be attached (permission, traced) */
    bool aborted;                  /* ended early */
    char **notes;                  /* owned: "rate lowered to 49 Hz: ..." */
    size_t nnotes;

    struct prof_memory *mem;       /* owned: memory profiles only (profile_memory) */
    bool gross;                    /* memory: writers weigh by bytes grown, not held */

    void *index;                   /* owned: interning tables (profile.c) */
};

struct profile *profile_new(enum profile_type type, unsigned rate_hz);
void profile_free(struct profile *p);

/* Add a mapping of the target; returns its id (>= 1). Strings copied. */
uint32_t profile_add_mapping(struct profile *p, uint64_t start, uint64_t limit, uint64_t offset,
                             const char *file, const char *build_id);

/* The mapping holding addr, 0 when none. */
uint32_t profile_find_mapping(const struct profile *p, uint64_t addr);

/* Record one sample: ips[0] is the leaf. Frames are interned by address.
 * value is its weight (period_ns for CPU/wall, bytes grown for memory; a
 * memory sample holds all of them until profile_set_inuse says less). */
void profile_add_sample(struct profile *p, const uint64_t *ips, uint32_t n, int32_t tid,
                        int64_t t_ns, uint64_t value);

/* Memory: of the bytes sample i grew, inuse are still held at the end of the
 * capture (at most its value). */
void profile_set_inuse(struct profile *p, size_t i, uint64_t inuse);

/* The memory part of p, made on first use. */
struct prof_memory *profile_memory(struct profile *p);

/* A changed mapping for the memory part (strings copied). */
void profile_add_map_change(struct profile *p, const struct prof_map_change *c);

/* Name a thread (last name wins). */
void profile_thread_name(struct profile *p, int32_t tid, const char *name);

/* Attach a name to a frame (strings copied; file may be NULL). */
void profile_name_frame(struct profile *p, uint32_t frame, const char *function, const char *file,
                        int line);

/* Frames still without a name get "module+0xoffset" (or "0xaddr" outside
 * every mapping): a frame is never dropped. */
void profile_name_unknown(struct profile *p);

/* A note for the reader ("rate lowered to 49 Hz: target stopped 1.3%"). */
void profile_note(struct profile *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Total of all sample values, and of sample counts. */
uint64_t profile_total_value(const struct profile *p);
uint64_t profile_total_count(const struct profile *p);

/* Per-function shares, for summaries: self (leaf) and total (anywhere on the
 * stack, counted once per stack) as fractions of all samples, sorted by
 * self then total, descending. Returns the number written (at most max). */
struct prof_func_share {
    const char *function;          /* borrowed from the profile */
    double self, total;            /* 0..1 */
    uint64_t self_count, total_count;
};
size_t profile_top_functions(const struct profile *p, struct prof_func_share *out, size_t max);

/* ---- for the writers (pprof.h, folded.h, flamegraph.h, profsum.h) ----
 *
 * profile_add_sample with n == 0 keeps the sample under an empty stack and
 * counts it in failed_unwinds (the caller does not count it again); writers
 * show that stack as one frame named PROFILE_NO_STACK. Every string a
 * profile holds is valid UTF-8 without control characters: invalid bytes
 * and controls are replaced by '?' when copied in, so writers need not. */
#define PROFILE_NO_STACK "[unwind failed]"

/* Make s what profile strings are, in place: invalid UTF-8 and control
 * characters become '?'. For strings that do not pass through the functions
 * above (comm, which the sampler copies in itself; a caller's title). */
void profile_text_clean(char *s);

/* The name writers show for a frame: its function, or while it has none its
 * "module+0xoffset" ("0xaddr" outside every mapping) label, made once and
 * kept in the profile's index (so not to be called on one profile from two
 * threads at once). Borrowed: valid until the profile is changed. */
const char *profile_frame_name(const struct profile *p, uint32_t frame);

/* True when the frame got a real name from profile_name_frame; false when
 * it has none or only its "module+0xoffset" label (profile_name_unknown, or
 * profile_name_frame given exactly that label). pprof leaves those frames
 * unsymbolized, with mapping and address, for a symbolizer elsewhere. */
bool profile_frame_named(const struct profile *p, uint32_t frame);

/* What the writers weigh stacks by: bytes for memory profiles, sample
 * counts for CPU and wall profiles. */
bool profile_in_bytes(const struct profile *p);

/* The weight of stack i (0-based) and of sample i: the sample count (1 for
 * a sample) for CPU and wall profiles; for memory profiles the bytes still
 * held at the end (net growth), or the bytes grown when p->gross is set.
 * profile_total_weight sums the stacks. */
uint64_t profile_stack_weight(const struct profile *p, uint32_t i);
uint64_t profile_sample_weight(const struct profile *p, size_t i);
uint64_t profile_total_weight(const struct profile *p);

/* profile_top_functions weighted by profile_stack_weight instead of counts
 * (bytes of a memory profile); self_count and total_count then hold byte
 * sums. */
size_t profile_top_functions_by_value(const struct profile *p, struct prof_func_share *out,
                                      size_t max);

#endif
