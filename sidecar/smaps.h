/* sidecar/smaps.h - the mappings of a process with their memory, from
 * /proc/PID/smaps, and what grew between two readings.
 *
 * Owns: struct smaps (smaps_fini frees it) and the arrays smaps_diff
 * returns. Pure but for smaps_read: smaps_parse works on the text, so it is
 * unit-tested on recorded files; smaps_read only reads the file. The text
 * comes from the watched process's kernel view (paths are the target's
 * own names): untrusted, bounded, never trusted to be well formed.
 *
 * Each mapping gets a kind, the way a reader sorts memory: the brk heap,
 * anonymous memory (malloc arenas, mmap'd blocks), stacks (the main one,
 * and a thread's: anonymous memory with a guard page just below it),
 * private file mappings (code, data), shared memory (MAP_SHARED, shmem,
 * SysV), and the kernel's own ([vdso], [vvar]). */
#ifndef STAKEOUT_SMAPS_H
#define STAKEOUT_SMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smaps_kind {
    SMAPS_HEAP,
    SMAPS_ANON,
    SMAPS_STACK,
    SMAPS_FILE,
    SMAPS_SHARED,
    SMAPS_OTHER,
    SMAPS_NKINDS
};

struct smaps_entry {
    uint64_t start, end;
    char perms[5];                 /* "rw-p" */
    uint64_t inode;
    char *path;                    /* owned: "" for anonymous memory */
    enum smaps_kind kind;
    uint64_t rss, pss, anon, swap; /* bytes */
};

struct smaps {
    struct smaps_entry *v;         /* owned, by start */
    size_t n;
    bool truncated;                /* the text ended in the middle (a read cap) */
};

/* Parse the text of /proc/PID/smaps (n bytes, need not end in NUL). Lines
 * that are neither a mapping nor a "Name: N kB" field are skipped; fields
 * before the first mapping are ignored. Returns 0, or -EINVAL when no
 * mapping is found. */
int smaps_parse(const char *buf, size_t n, struct smaps *out) __attribute__((warn_unused_result));
void smaps_fini(struct smaps *s);

/* Read /proc/PID/smaps, at most max_bytes of it (truncated says so).
 * Returns 0 or a negative errno with a message in err. */
int smaps_read(int pid, size_t max_bytes, struct smaps *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

const char *smaps_kind_name(enum smaps_kind k);

/* Resident bytes by kind. */
void smaps_totals(const struct smaps *s, uint64_t rss[SMAPS_NKINDS]);

/* One mapping's change between two readings. A mapping is the same one when
 * it starts at the same address with the same file (inode and path) and
 * kind; one only in after grew from nothing, one only in before is gone. */
struct smaps_change {
    enum smaps_kind kind;
    const char *path;              /* borrowed from after (before when gone) */
    uint64_t start;
    uint64_t size_before, size_after, rss_before, rss_after;
};

/* Every mapping whose size or resident bytes changed, the largest resident
 * growth first (then the largest shrink last). *out is a new array (the
 * caller frees it; paths borrowed from before and after). Returns the
 * count. */
size_t smaps_diff(const struct smaps *before, const struct smaps *after,
                  struct smaps_change **out);

#endif
