/* sidecar/rootfs.h - opening a path inside a watched process's filesystem,
 * as that process sees it, and never anything outside it.
 *
 * Owns nothing (descriptors go to the caller). I/O: /proc/PID/root and
 * openat2(2). Every path stakeout opens inside a target's filesystem (its
 * log files, its perf map, debug files, cgroup files seen through its root,
 * anything later) goes through here: the process decides what its paths
 * name, so a compromised one could otherwise point them at stakeout's own
 * files. The walk is confined with RESOLVE_IN_ROOT (an absolute symlink or
 * ".." met on the way stays inside the target's root) and
 * RESOLVE_NO_MAGICLINKS (no /proc/self/fd/N jump out of it), and the file
 * must be a regular file: a FIFO or a device in a log's place is refused
 * without ever being opened (its type is read from an O_PATH descriptor,
 * and only a regular file is then opened for reading, through
 * /proc/self/fd, so /proc must be mounted). Kernels without openat2
 * (before 5.6) are refused with -ENOSYS: a plain open cannot be confined. */
#ifndef STAKEOUT_ROOTFS_H
#define STAKEOUT_ROOTFS_H

#include <stdbool.h>

/* A descriptor of pid's root directory (/proc/PID/root, O_PATH), for the
 * calls below; the caller closes it. Returns it, or a negative errno. */
int rootfs_open_root(int pid) __attribute__((warn_unused_result));

/* Open path (absolute, or relative to the target's /) inside the root rootfd
 * for reading: O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, a regular file
 * only. Returns the descriptor, or a negative errno: -ENOENT/-ENOTDIR when
 * it is not there, -EXDEV when the walk tried to leave the root, -ELOOP for
 * a magic link, -EINVAL when it is not a regular file, -ENOSYS without
 * openat2. */
int rootfs_open(int rootfd, const char *path) __attribute__((warn_unused_result));

/* The same for a directory (O_PATH | O_DIRECTORY), to open files in it
 * with rootfs_open_beneath. */
int rootfs_open_dir(int rootfd, const char *path) __attribute__((warn_unused_result));

/* Open name, a path below dirfd, for reading (as rootfs_open), never
 * leaving dirfd and following no symlink at all: for files a directory of
 * a known kind holds (a cgroup's memory.events). */
int rootfs_open_beneath(int dirfd, const char *name) __attribute__((warn_unused_result));

#endif
