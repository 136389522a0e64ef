/* sidecar/symbols_int.h - internals of symbols.c that its unit tests reach.
 *
 * Owns nothing. Pure: parsers over a caller's buffer. */
#ifndef STAKEOUT_SYMBOLS_INT_H
#define STAKEOUT_SYMBOLS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One line of /proc/PID/maps. path points into the parsed buffer (not
 * NUL-terminated: path_len bytes, 0 for anonymous memory), without the
 * " (deleted)" the kernel appends to unlinked files. */
struct maps_line {
    uint64_t start, end, offset;
    char perms[5]; /* "r-xp" */
    unsigned dev_major, dev_minor;
    uint64_t inode;
    const char *path; /* borrowed from the buffer */
    size_t path_len;
    bool deleted;
};

/* Parse one line (s[n], with or without its '\n'). Returns 0, or -EINVAL
 * when a field is missing or malformed or start >= end; out is written
 * only on success. */
int symbols_parse_maps_line(const char *s, size_t n, struct maps_line *out)
    __attribute__((warn_unused_result));

#endif
