/* sidecar/logtail.h - follows one log file by path, through rotations.
 *
 * Owns: struct logtail, its inotify instance, the file descriptors it reads,
 * its copy of the root it resolves the path in, and a read buffer
 * (logtail_free closes and frees them all). Borrows: the scanner it feeds,
 * which must outlive it. Does I/O but never blocks and never reads the
 * clock: callers pass monotonic and wall time.
 *
 * A file that exists at logtail_new is followed from its end (its history
 * is not counted, nor the rest of a line being written at that moment); a
 * file that appears later is read from its start. Rotation is followed:
 *   - rename: the old file is read to its end, the new one from offset 0;
 *   - copytruncate: a size below the read offset restarts at 0 (lines
 *     written between the last read and the truncation are lost, as with
 *     any reader; a writer that keeps its offset leaves a hole of NUL bytes,
 *     which the scanner takes as one more line);
 *   - deletion: the old file is read to its end, then the path is waited for.
 * A file renamed or deleted away stays open and is still read while its
 * writer keeps writing to it (a writer reopens its log some time after the
 * rename); it is let go after LOGTAIL_DRAIN_NS without new data, or when
 * more than LOGTAIL_MAX_OLD such files pile up.
 *
 * Every file is its own input to the scanner (its own struct logscan_src),
 * and a truncation ends that input (logscan_flush): the context kept around
 * a matching line never takes lines from another file, or from the same
 * file before it was truncated.
 *
 * Events come from one inotify instance (the directory, for the name, and
 * each open file, for its writes). The caller waits on logtail_fd() (in its
 * own epoll loop) and calls logtail_process when it is readable, and calls
 * logtail_poll at every poll interval: inotify misses events on some
 * filesystems and across /proc/PID/root, and the poll re-stats everything.
 *
 * The path is in one of two filesystems. Given a root (a target's, from
 * rootfs_open_root), it is the target's path and every open is rootfs_open
 * in that root, on every reopen too (rotation, truncation, re-creation):
 * what the target makes of its path (an absolute symlink, a ".." climb, a
 * symlink renamed over the log, a FIFO or a device in its place) can never
 * name a file outside its root, nor make stakeout open anything but a
 * regular file. Without one, it is a path of stakeout's own filesystem that
 * the rules file names, opened as named: regular files only, never
 * blocking. Never give a "/proc/PID/root/..." path without a root: the
 * kernel walks it unconfined. */
#ifndef STAKEOUT_LOGTAIL_H
#define STAKEOUT_LOGTAIL_H

#include "logscan.h"

#include <stdbool.h>
#include <stdint.h>

#define LOGTAIL_CHUNK (64 * 1024)             /* bytes per read */
#define LOGTAIL_BUDGET (32 * 1024 * 1024)     /* bytes read per file per call */
#define LOGTAIL_DRAIN_NS (5LL * 1000000000LL) /* quiet time before an old file is let go */
#define LOGTAIL_MAX_OLD 4                     /* rotated files still read */

struct logtail_stats {
    bool following;       /* a file is open at the path */
    size_t draining;      /* rotated or deleted files still open */
    bool behind;          /* the last call stopped at LOGTAIL_BUDGET: call again */
    uint64_t opens;       /* files opened, the first one included */
    uint64_t rotations;   /* the path moved to another file, or went away */
    uint64_t truncations; /* a file got shorter than what was read */
    uint64_t bytes;       /* bytes read and fed to the scanner */
};

struct logtail;

/* Follow path into scan. rootfd: the root path is resolved in (an O_PATH
 * directory; the follower keeps a duplicate of it, the caller closes its
 * own), or -1 for stakeout's own filesystem. The directory need not exist
 * yet. Returns 0 with *out set, or a negative errno (inotify unavailable,
 * path too long, rootfd not a descriptor). */
int logtail_new(int rootfd, const char *path, struct logscan *scan, struct logtail **out)
    __attribute__((warn_unused_result));
void logtail_free(struct logtail *t);

/* The inotify descriptor: readable when logtail_process has work. */
int logtail_fd(const struct logtail *t);

/* Handle pending inotify events and read what they announce. Returns 0, or
 * the first negative errno met (the rest of the work is still done). */
int logtail_process(struct logtail *t, int64_t mono_ns, int64_t wall_ns)
    __attribute__((warn_unused_result));

/* Safety net, once per poll interval: re-stat the path and every open file,
 * read what is new, let go of quiet old files, retry a missing watch.
 * Returns like logtail_process. */
int logtail_poll(struct logtail *t, int64_t mono_ns, int64_t wall_ns)
    __attribute__((warn_unused_result));

void logtail_stats(const struct logtail *t, struct logtail_stats *out);

#endif
