/* sidecar/redact.h - hide secrets in text that goes into alerts.
 *
 * Owns: the compiled patterns. Pure. Every match of a pattern is replaced by
 * "[REDACTED]" (or, when the pattern has a capture group named "secret",
 * only that group), so a bearer token, a password in a URL or a key=value
 * secret never leaves the host in an alert. Defaults cover those three; the
 * rules file may add its own (alert.redact). */
#ifndef STAKEOUT_REDACT_H
#define STAKEOUT_REDACT_H

#include <stddef.h>

struct redactor;

/* Compile the defaults plus n extra patterns. Returns NULL with a message
 * in err when an extra pattern does not compile. */
struct redactor *redactor_new(const char *const *extra, size_t n, char *err, size_t errlen);
void redactor_free(struct redactor *r);

/* A new string: text with every secret replaced. NULL redactor: a copy. */
char *redact(const struct redactor *r, const char *text);

#endif
