/* sidecar/envsubst.h - ${VAR} expansion in rules-file strings.
 *
 * Owns nothing beyond the string it returns. Pure: variables come from a
 * lookup callback, so tests need not touch the process environment.
 *
 *   ${NAME}            value of NAME; an error when NAME is not set
 *   ${NAME:-default}   value of NAME, or default when unset or empty
 *   $$                 a literal '$'
 *
 * Any other '$' is kept as is (regexes use it as an anchor). */
#ifndef STAKEOUT_ENVSUBST_H
#define STAKEOUT_ENVSUBST_H

#include <stddef.h>

/* Returns the value of name, or NULL when it is not set. */
typedef const char *(*envsubst_lookup_fn)(const char *name, void *ctx);

/* Expand in[0..n). On success returns 0 and *out owns a new NUL-terminated
 * string. On failure returns -EINVAL, *err_off is the offset of the faulty
 * '$' and err holds a message. */
int envsubst(const char *in, size_t n, envsubst_lookup_fn lookup, void *ctx, char **out,
             size_t *err_off, char *err, size_t errlen) __attribute__((warn_unused_result));

/* A lookup that reads the process environment (getenv). */
const char *envsubst_getenv(const char *name, void *ctx);

#endif
