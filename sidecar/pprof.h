/* sidecar/pprof.h - write a profile in pprof's format (gzipped protobuf).
 *
 * Owns nothing. Borrows the profile, only for the call. Pure apart from the
 * FILE or file it is given. The message is pprof.proto (our own, from the
 * published field numbers), packed with protobuf-c and gzipped with zlib;
 * Go's `go tool pprof`, Pyroscope and speedscope read it.
 *
 * What goes in:
 *  - sample types: CPU [samples/count, cpu/nanoseconds], wall
 *    [samples/count, wall/nanoseconds], memory [alloc_objects/count,
 *    alloc_space/bytes] (Go's names, which Pyroscope maps), the last one the
 *    default; period_type and period (ns per sample) for CPU and wall.
 *  - every mapping, with its build-id; frames that have a real name become
 *    locations with one line (function, file, line); frames without one keep
 *    only mapping and address, so a symbolizer elsewhere can name them from
 *    the build-id later. An empty stack is one location named
 *    PROFILE_NO_STACK.
 *  - one sample per stack (leaf first), or with per_thread one per stack and
 *    thread with labels thread_id and thread_name (strings, as parca-agent).
 *  - time_nanos, duration_nanos, and the profile's notes as comments. */
#ifndef STAKEOUT_PPROF_H
#define STAKEOUT_PPROF_H

#include "profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct pprof_opts {
    bool per_thread; /* one sample per stack and thread, labelled */
};

/* The serialized message, not compressed; *len set. The caller frees it.
 * o may be NULL (defaults). */
uint8_t *pprof_encode(const struct profile *p, const struct pprof_opts *o, size_t *len);

/* Write the gzipped message to out. Returns 0, or -EIO when writing failed. */
int pprof_write(const struct profile *p, FILE *out) __attribute__((warn_unused_result));
int pprof_write_opts(const struct profile *p, const struct pprof_opts *o, FILE *out)
    __attribute__((warn_unused_result));

/* Write the gzipped message to path: into "path.tmp" (opened without
 * following a symlink, mode 0644 less the umask), then renamed over path, so
 * a reader never sees half a file. Returns 0 or a negative errno with a
 * message in err (may be NULL); on failure path is untouched. */
int pprof_write_file(const struct profile *p, const struct pprof_opts *o, const char *path,
                     char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
