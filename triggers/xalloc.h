/* triggers/xalloc.h - allocation that cannot fail.
 *
 * Owns nothing. Running out of memory in a sidecar is not a condition worth
 * plumbing through every caller: these print a message and abort, so callers
 * never check for NULL. Shared by the triggers and sidecar libraries. */
#ifndef STAKEOUT_XALLOC_H
#define STAKEOUT_XALLOC_H

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* realloc for an array of count elements of size bytes, checking overflow. */
void *xreallocarray(void *p, size_t count, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
