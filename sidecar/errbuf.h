/* sidecar/errbuf.h - formats a message for humans into a caller's buffer.
 *
 * Owns nothing: err is the caller's (the "char *err, size_t errlen" pair of
 * fallible functions, which may be NULL). Pure: no I/O, no allocation. */
#ifndef STAKEOUT_ERRBUF_H
#define STAKEOUT_ERRBUF_H

#include <stddef.h>

/* printf fmt into err[errlen], cut to fit and always NUL-terminated. Does
 * nothing when err is NULL or errlen is 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
