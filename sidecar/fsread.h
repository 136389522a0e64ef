/* sidecar/fsread.h - read small kernel files (procfs, cgroupfs) in one go.
 *
 * Owns nothing (fsread_alloc's buffer goes to its caller). I/O only: open,
 * read until EOF or the buffer is full, close; EINTR retried. The parsers in procparse.c take what these return. */
#ifndef STAKEOUT_FSREAD_H
#define STAKEOUT_FSREAD_H

#include <stddef.h>
#include <sys/types.h>

/* Read path into buf (at most len - 1 bytes) and NUL-terminate. Returns the
 * byte count or a negative errno. */
ssize_t fsread(const char *path, char *buf, size_t len) __attribute__((warn_unused_result));

/* Read from fd, an open file, into buf the same way; fd stays open. */
ssize_t fsread_fd(int fd, char *buf, size_t len) __attribute__((warn_unused_result));

/* Same, relative to a directory fd (openat). */
ssize_t fsread_at(int dirfd, const char *name, char *buf, size_t len)
    __attribute__((warn_unused_result));

/* Read all of path, or its first max - 1 bytes, into a new NUL-terminated
 * buffer (*out, owned by the caller; *outlen bytes without the NUL), for
 * files of unknown size such as /proc/PID/maps. Returns 0 or a negative
 * errno (-EINVAL: max below 2). */
int fsread_alloc(const char *path, size_t max, char **out, size_t *outlen)
    __attribute__((warn_unused_result));

#endif
