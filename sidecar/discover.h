/* sidecar/discover.h - which processes does each target of a rules file name?
 *
 * Owns: the scan state (pids already examined). Borrows: the config. I/O:
 * lists /proc, reads comm and cmdline of processes it has not seen, reads
 * pid files and cgroup.procs. A pid is examined once and remembered until it
 * disappears (every DISCOVER_FULL_EVERY scans all are examined again, so a
 * wrapper that execs the real program is not missed). stakeout never
 * matches itself.
 *
 * A file that cannot be read is not a process gone: only ENOENT and ESRCH
 * say that. Out of descriptors (EMFILE, ENFILE), denied (EACCES) and the
 * like leave what the last scan knew: a pid already examined keeps its
 * matches, a new one is examined again at the next scan, and a pid_file or
 * cgroup target is marked `unknown`. */
#ifndef STAKEOUT_DISCOVER_H
#define STAKEOUT_DISCOVER_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>

#define DISCOVER_FULL_EVERY 12

struct discover;

/* pid lists per target, owned by the discover object until the next scan. */
struct discover_result {
    int *pids;       /* sorted */
    size_t n;
    int err;         /* 0, or a negative errno for pid_file / cgroup problems */
    bool unknown;    /* this scan could not tell (err says why): keep what was known */
};

struct discover *discover_new(const struct config *cfg);
void discover_free(struct discover *d);

/* Borrow a reloaded config with the same targets. */
void discover_set_config(struct discover *d, const struct config *cfg);

/* Scan; res must have cfg->ntargets entries. Returns 0 or a negative errno
 * when /proc cannot be listed. */
int discover_scan(struct discover *d, struct discover_result *res)
    __attribute__((warn_unused_result));

/* Whether pid matches a `process` target: regex on comm, or on the full
 * command line (arguments joined by spaces). */
bool discover_match_process(const struct target_spec *t, const char *comm, const char *cmdline);

#endif
